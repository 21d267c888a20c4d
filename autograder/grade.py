"""The grading pipeline for one submission: load -> extract -> sandbox -> judge -> report.

TRUSTED. This module never runs student code itself: it hands the extracted
source and the planned requests to a `sandbox.isolation.Sandbox` (started
first, so that its child boots while the notebook is read and planned) and
judges the plain-data responses with `checks`, each check as soon as its
responses are in (while the child works on the next requests).
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import dataclasses
import functools
import re
import time
from collections import Counter
from pathlib import Path

from autograder.checks import plan as checks
from autograder.submission.extract import extract_code
from autograder.sandbox.limits import Limits
from autograder.submission.load import Rejection, load_submission
from autograder.results import CheckResult, Report
from autograder.sandbox.isolation import Sandbox, detect_isolation
from autograder.course.spec import AssignmentSpec, Item


def rejected_report(spec: AssignmentSpec, student: str, submission: str, sha256: str,
                    reason: str, isolation: str | None = None) -> Report:
    """A report for a file that could not be graded at all.

    Its isolation is the level the grader runs student code under on this
    machine (the report schema allows only 'bwrap', 'unshare' or 'rlimits').
    """
    return Report(student=student, assignment=spec.name, submission=submission, sha256=sha256,
                  status='rejected', error=reason, score=0.0, max_score=spec.max_score,
                  isolation=isolation or detect_isolation(), execution_time=0.0)


def _manual_result(item: Item) -> CheckResult:
    return CheckResult(grade_id=item.grade_id, name=checks.CHECK_TITLES['manual'],
                       target=item.target, kind='manual', status='pending', score=0.0,
                       max_score=item.points, output='Graded by your instructor.', public=True)


def _missing_class_results(plans, item_points, message) -> list[CheckResult]:
    return [CheckResult(grade_id=plan.item.grade_id, name=plan.name, target=plan.item.target,
                        kind=plan.kind, status='error', score=0.0,
                        max_score=item_points[plan.item.grade_id] / len(plan.item.checks),
                        output=message, public=plan.public) for plan in plans]


def _missing_message(class_name: str, extraction) -> str:
    message = '{0} is not defined in your notebook'.format(class_name)
    suggestions = extraction.near_misses.get(class_name) or []
    if suggestions:
        message += ' (did you mean {0}?)'.format(', '.join(suggestions))
    syntax = getattr(extraction, 'syntax_errors', None) or []
    if syntax:
        message += '; note that {0} code cell(s) have syntax errors and were skipped: {1}'.format(
            len(syntax), '; '.join(_describe_syntax(error) for error in syntax[:3]))
    return message + '.'


def _describe_syntax(issue) -> str:
    """'syntax error in cell 23, line 18: invalid syntax' for an extraction SyntaxIssue."""
    return 'syntax error in {0}'.format(issue.describe())


#: At most this many notes of one kind (syntax errors, failed statements) go
#: into a report: a hostile notebook can produce thousands of them, each up to
#: a few thousand characters long.
MAX_NOTES_PER_KIND = 10


def _capped(notes: list[str], more: str) -> list[str]:
    """The first MAX_NOTES_PER_KIND notes, then one saying how many were left out."""
    if len(notes) <= MAX_NOTES_PER_KIND:
        return notes
    return notes[:MAX_NOTES_PER_KIND] + ['... and {0} more {1}.'.format(len(notes) - MAX_NOTES_PER_KIND, more)]


#: A class whose checks keep the sandbox busy longer than this gets a note: its
#: code is probably correct but loop-based (a vectorised solution of any lab
#: needs well under a second). It costs no points; the budgets
#: (`Limits.request_seconds`, `Limits.wall_seconds`) are what stop endless loops.
SLOW_CLASS_SECONDS = 3.0


def _slowness_notes(plans, responses: dict) -> list[str]:
    """A note per class whose requests took more than SLOW_CLASS_SECONDS of sandbox time.

    The time is the parent's own measure (`Response.seconds`), summed over
    every request of the class's checks, rounded to a tenth of a second: no
    finer timing than the report's `execution_time` already gives.
    """
    seconds: dict[str, float] = {}
    checks_run: dict[str, int] = {}
    for plan in plans:
        name = plan.item.class_name
        seconds[name] = seconds.get(name, 0.0) + sum(
            getattr(responses.get(request.id), 'seconds', 0.0) for request in plan.requests)
        checks_run[name] = checks_run.get(name, 0) + 1
    return ['Speed: your {0} kept the grader busy for {1:.1f} s over its {2} checks (a vectorised '
            'version takes well under a second). No points were taken off for this, but code this '
            'slow makes training impractical: Python loops over array elements (pixels, kernel '
            'positions, batch items) can usually be replaced by numpy operations on whole arrays, '
            'e.g. numpy.einsum or numpy.tensordot over a numpy.lib.stride_tricks.sliding_window_view, '
            'or one matrix product.'.format(name, total, checks_run[name])
            for name, total in seconds.items() if total > SLOW_CLASS_SECONDS]


_BUILTIN_EXCEPTIONS = frozenset(name for name, value in vars(builtins).items()
                                if isinstance(value, type) and issubclass(value, BaseException))


#: Kinds of check whose inputs are never secret, even when the check is not
#: public (a training run's inputs are MNIST images). The inputs of every other
#: check that is not public are hidden.
_KINDS_WITH_OPEN_INPUTS = frozenset({'training'})


def _has_hidden_inputs(plan) -> bool:
    """Whether a plan's requests carry secret inputs (those of a hidden test case)."""
    return not plan.public and plan.kind not in _KINDS_WITH_OPEN_INPUTS


def _requests_of(plans) -> list:
    """The plans' requests for the sandbox, those carrying hidden inputs marked ``hidden``.

    The sandbox answers every unmarked request before it sends the first
    marked one, so the words of the public checks (shown in full) are all
    said before any hidden input exists in the sandbox, and it marks every
    answer given after that as tainted (see `_responses_for`).
    """
    return [dataclasses.replace(request, hidden=_has_hidden_inputs(plan))
            for plan in plans for request in plan.requests]


class _JudgeAsAnswered:
    """Judges each plan as soon as the sandbox has settled all its requests.

    The child answers requests one after another; a plan whose responses are
    all in is judged while the child works on the next ones (a lab's last
    training run, typically), so that little judging is left once the child
    is done. Judging sees the same whenever it runs: a request is settled
    once (`Sandbox.run`), and a judge is given its own plan's responses only.

    Args:
        plans: The runnable plans, in report order.
        item_points: grade_id -> the item's points, shared among its checks.
    """

    def __init__(self, plans: list, item_points: dict[str, float]) -> None:
        self._plans = plans
        self._item_points = item_points
        self._responses: dict = {}
        self._unsettled = [len(plan.requests) for plan in plans]
        self._plan_of = {request.id: index for index, plan in enumerate(plans) for request in plan.requests}
        self._results: list[CheckResult | None] = [None] * len(plans)

    def answered(self, response) -> None:
        """Takes one settled response; judges its plan if that was the plan's last."""
        self._responses[response.id] = response
        index = self._plan_of[response.id]
        self._unsettled[index] -= 1
        if self._unsettled[index] == 0:
            self._judge(index)

    def results(self) -> list[CheckResult]:
        """Every plan's result in plan order (plans without requests are judged now)."""
        for index, result in enumerate(self._results):
            if result is None:
                self._judge(index)
        return list(self._results)

    def _judge(self, index: int) -> None:
        plan = self._plans[index]
        own = {request.id: self._responses[request.id] for request in plan.requests
               if request.id in self._responses}
        share = self._item_points[plan.item.grade_id] / len(plan.item.checks)
        self._results[index] = checks.judge_plan(plan, _responses_for(plan, own), share)


def _responses_for(plan, responses: dict) -> dict:
    """The responses a plan's judge sees: what a child that had seen hidden inputs said is withheld.

    Once a hidden input has reached the sandbox, anything it sends back as
    an error (its message, its traceback, even the name of an exception class
    or of a function) can carry hidden inputs into the feedback. So for every
    tainted response (all those of hidden cases; public checks never get one)
    only the exception's type is reported, when it is a built-in one; the
    same error on the notebook's public test arrays is shown in full.
    Failures the parent observes itself (timeouts, crashes, malformed replies)
    are reported as they are.
    """
    if not any(getattr(responses.get(request.id), 'tainted', False) for request in plan.requests):
        return responses
    shown = dict(responses)
    for request in plan.requests:
        response = responses.get(request.id)
        if response is not None and response.tainted and response.status == 'error' and response.header:
            kind = str(response.header.get('error', '')).split(':', 1)[0].strip()
            if kind not in _BUILTIN_EXCEPTIONS:  # a class of its own: its name can be anything
                kind = 'an exception'
            header = dict(response.header, error='{0}: (withheld)'.format(kind), traceback='')
            shown[request.id] = dataclasses.replace(response, header=header, message=(
                '{0} on this hidden case; its message is withheld so that hidden inputs stay hidden '
                '(the public checks show such errors in full)'.format(
                    'raised ' + kind if kind != 'an exception' else 'failed')))
    return shown


_CONTROL_CHARACTERS = re.compile('[\x00-\x08\x0b-\x1f\x7f-\x9f]')


def _last_lines(text: str, limit: int = 800) -> str:
    """The end of the sandbox's stderr (why loading failed), short and free of control characters."""
    text = text.strip()
    if len(text) > limit:
        text = '...' + text[-limit:]
    return _CONTROL_CHARACTERS.sub('?', text)


def _cell_start(cells, index: int, form: str = ', in the cell starting "{0}"') -> str:
    """', in the cell starting "class TanhLayer(Layer):"': Jupyter shows no cell numbers, so name the cell too."""
    try:
        lines = [line.strip() for line in str(cells[index].source).splitlines() if line.strip()]
    except (IndexError, AttributeError, TypeError):
        return ''
    if not lines:
        return ''
    first = _CONTROL_CHARACTERS.sub('?', lines[0]).replace('"', "'")
    return form.format(first if len(first) <= 60 else first[:57] + '...')


def _extraction_note(extraction) -> str:
    """In plain words: which classes the grade is based on, and that the rest of the notebook was not run."""
    found = ['{0} (cell {1})'.format(name, where.cell_index + 1) for name, where in extraction.found.items()]
    text = ('Your grade is based on {0} and the imports and helper code around them'.format(
        ', '.join(found)) if found else 'The grader found none of the classes this assignment asks for')
    reasons = [reason for reason, _ in Counter(item.reason for item in extraction.skipped).most_common()]
    if reasons:
        text += ('; the rest of your notebook ({0}) was not run by the grader and does not change '
                 'your score'.format(', '.join(reasons)))
    return text + '.'


def _release_sources(spec: AssignmentSpec) -> frozenset:
    """The code cells of the released notebook, as given to students (stripped), or none if unreadable."""
    import nbformat
    try:
        notebook = nbformat.read(str(spec.student_mlp_dir / spec.notebook), as_version=4)
    except Exception:  # no release here (a test's spec): nothing counts as the course's code
        return frozenset()
    return frozenset(cell.source.strip() for cell in notebook.cells if cell.cell_type == 'code')


def _load_failure_note(extraction, cells, error, release_sources) -> str:
    """A statement that failed when loaded, not blaming the student for a cell the course wrote."""
    place = extraction.locate(error.line) if hasattr(extraction, 'locate') else None
    where = _statement_place(extraction, error.line, cells)
    if place is not None and release_sources:
        try:
            course_cell = str(cells[place[0]].source).strip() in release_sources
        except (IndexError, AttributeError, TypeError):
            course_cell = False
        if course_cell:
            return ('A cell that came with the assignment, unchanged, failed when the grader loaded it '
                    '({0}): {1}. This is not a mistake of yours and costs no points by itself (the grader '
                    'loads only definitions, not the whole notebook in order).'.format(where, error.error))
    return 'A statement of your notebook failed when loaded ({0}): {1}'.format(where, error.error)


def _syntax_notes(extraction, cells=()) -> list[str]:
    """One note per code cell skipped for a syntax error (cells counted from 1), capped."""
    return _capped(['Cell {0}{1} was not graded because it has a syntax error at line {2}: {3}.'.format(
        issue.cell_index + 1, _cell_start(cells, issue.cell_index, ' (the one starting "{0}")'), issue.line,
        issue.message)
        for issue in extraction.syntax_errors], 'cells with syntax errors, not graded either')


_SUBMISSION_FRAME = re.compile(r'File "submission\.py", line (\d+)')


def _in_notebook_terms(text: str, extraction, cells=()) -> str:
    """Rewrites 'File "submission.py", line N' of sandbox tracebacks as 'cell C, line L'.

    The sandbox runs the extracted source as one file; students know their
    notebook's cells, so tracebacks point there when the line maps back.
    """
    def replace(match):
        place = extraction.locate(int(match.group(1))) if hasattr(extraction, 'locate') else None
        if place is None:
            return match.group(0)
        return 'Notebook cell {0}, line {1}{2}'.format(place[0] + 1, place[1], _cell_start(cells, place[0]))
    return _SUBMISSION_FRAME.sub(replace, text) if text else text


def _statement_place(extraction, line: int, cells=()) -> str:
    """Where a line of the extracted source came from: 'cell 23, line 5 (the cell starting "...")' if known."""
    place = extraction.locate(line) if hasattr(extraction, 'locate') else None
    if place is None:
        return 'line {0} of the extracted code'.format(line)
    return 'cell {0}, line {1}{2}'.format(place[0] + 1, place[1], _cell_start(cells, place[0]))


def _harmless_import_error(error: str) -> bool:
    """True for a failed import of a module the grader does not provide (matplotlib, ...).

    The sandbox offers only numpy and the student copy of mlp; notebooks
    import plotting and other tools for their experiments, which are not run.
    """
    return error.startswith('ModuleNotFoundError') and "'mlp" not in error


@functools.lru_cache(maxsize=1)
def _openblas_thread_functions():
    """(set, get) of the thread count of numpy's bundled OpenBLAS, or (None, None)."""
    try:
        import numpy
        libs_dir = Path(numpy.__file__).resolve().parent.parent / 'numpy.libs'
        for library_path in sorted(libs_dir.glob('*openblas*')):
            library = ctypes.CDLL(str(library_path))  # already loaded by numpy: same handle
            for prefix, suffix in (('scipy_openblas', '64_'), ('scipy_openblas', ''), ('openblas', '')):
                setter = getattr(library, '{0}_set_num_threads{1}'.format(prefix, suffix), None)
                getter = getattr(library, '{0}_get_num_threads{1}'.format(prefix, suffix), None)
                if setter is not None and getter is not None:
                    setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
                    return setter, getter
    except (OSError, AttributeError):
        pass
    return None, None


@contextlib.contextmanager
def single_threaded_blas():
    """Runs the block with numpy's OpenBLAS limited to one thread (best effort).

    The parent's linear algebra is small (reference training runs on batches
    of 50 x 784); several BLAS threads per grading process, times several
    worker processes, only fight over the cores: a reference training run
    took 0.1-0.2 s single-threaded and 0.8-5 s with two threads on a busy
    2-core machine. The previous thread count is restored afterwards.
    """
    setter, getter = _openblas_thread_functions()
    if setter is None:
        yield
        return
    previous = getter()
    setter(1)
    try:
        yield
    finally:
        setter(max(1, previous))


def grade_submission(path: Path, spec: AssignmentSpec, *, student: str, limits: Limits | None = None,
                     public_only: bool = False, display_path: str | None = None,
                     root: Path | None = None) -> Report:
    """Grades one notebook file.

    Args:
        path: The submitted file (any file: unreadable ones are rejected).
        spec: The assignment's grading spec.
        student: Student id for the report.
        limits: Sandbox limits (defaults if None).
        public_only: Run only the public checks (the student self-check).
        display_path: Path to show in the report (defaults to `path`).
        root: The folder the grader was given; `path` must be inside it with no
            symbolic link on the way (default: the folder holding `path`).

    Returns:
        The submission's `Report`; never raises for anything in the file.
    """
    with single_threaded_blas():
        return _grade(Path(path), spec, student=student, limits=limits, public_only=public_only,
                      display_path=display_path, root=root)


def _grade(path: Path, spec: AssignmentSpec, *, student: str, limits: Limits | None,
           public_only: bool, display_path: str | None, root: Path | None = None) -> Report:
    started = time.monotonic()
    shown = display_path or str(path)
    loaded = load_submission(Path(path), root=root)
    if isinstance(loaded, Rejection):
        return rejected_report(spec, student, shown, loaded.sha256 or '', loaded.reason)
    # The sandbox's child boots (interpreter, numpy) while the notebook is read and planned.
    with Sandbox(student_mlp_dir=spec.student_mlp_dir, limits=limits or Limits()) as sandbox:
        extraction = extract_code(loaded.notebook, spec.classes.keys())
        cells = loaded.notebook.cells
        notes = list(loaded.warnings) + [_extraction_note(extraction)] + _syntax_notes(extraction, cells)
        items = [item for item in spec.items if not (public_only and 'manual' in item.checks)]
        item_points = {item.grade_id: item.points for item in items}

        runnable, results = [], []
        for item in items:
            if 'manual' in item.checks:
                results.append(_manual_result(item))
                continue
            plans = checks.plan_item(spec, item, public_only=public_only)
            if item.class_name in extraction.found:
                runnable.extend(plans)
            else:
                results.extend(_missing_class_results(
                    plans, item_points, _missing_message(item.class_name, extraction)))

        judged = _JudgeAsAnswered(runnable, item_points)
        outcome = sandbox.run(extraction.source, _requests_of(runnable), on_response=judged.answered)
    if not outcome.setup.ok:
        notes.append('Your code could not be loaded: {0}'.format(outcome.setup.message))
        if outcome.stderr_tail.strip():
            notes.append('The last lines it printed to stderr: {0}'.format(_last_lines(outcome.stderr_tail)))
    errors = [error for error in outcome.setup.errors or [] if not _harmless_import_error(error.error)]
    release_sources = _release_sources(spec) if errors else frozenset()
    failures = [_load_failure_note(extraction, cells, error, release_sources) for error in errors]
    notes.extend(_capped(failures, 'statements that failed when loaded'))
    for result in judged.results():
        result.output = _in_notebook_terms(result.output, extraction, cells)
        results.append(result)

    notes.extend(_slowness_notes(runnable, outcome.responses))
    order = {item.grade_id: index for index, item in enumerate(spec.items)}
    results.sort(key=lambda result: order[result.grade_id])
    max_score = sum(item_points.values())
    return Report(student=student, assignment=spec.name, submission=shown, sha256=loaded.sha256,
                  status='graded', score=sum(result.score for result in results),
                  max_score=max_score, isolation=outcome.isolation,
                  execution_time=time.monotonic() - started, tests=results, notes=notes)
