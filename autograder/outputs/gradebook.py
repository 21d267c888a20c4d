"""Writing our grades into an nbgrader course's gradebook, so nbgrader's own tools work on top.

TRUSTED. Runs in the grading parent after `mlp-autograde grade` has graded an
nbgrader `submitted/<student>/<assignment>/` tree. Nothing here executes a
notebook: nbgrader's `Autograde` converter is run with its execution step
replaced by `RecordMlpGrades`, which takes the scores from our reports.

For each graded student that gives exactly what `nbgrader autograde` would
have left behind:

* the student and the submission in `gradebook.db` (nbgrader's
  `Gradebook.update_or_create_submission` mirrors every grade and comment
  cell), with the submission time from `timestamp.txt` and nbgrader's late
  penalty;
* `autograded/<student>/<assignment>/<notebook>.ipynb`: the submitted notebook
  with locked cells restored from the gradebook (nbgrader's `OverwriteCells`),
  hidden-test code removed (nbgrader's `ClearHiddenTests`; our hidden cases
  live in the grading spec and are summarised, never shown), and under every
  test cell our verdict on that item as the cell's output;
* an automatic score (`Grade.auto_score`) on every automatically graded cell,
  equal to our points for that grade id, and our feedback as the automatic
  comment (`Comment.auto_comment`) of the solution cell that defines the class;
* written answers left for formgrader: no score is set, except the zero that
  nbgrader itself gives an answer cell left untouched ("No response.").
  Manual scores already entered in formgrader are never changed, and neither
  is formgrader's "needs manual grade" flag of a cell an instructor has graded,
  unless our automatic score of that cell changes (then it asks for review, as
  nbgrader does). So a re-run that grades nothing new changes nothing in the
  gradebook.

So `nbgrader export`, formgrader and `nbgrader generate_feedback` work as after
`nbgrader autograde`. A student whose notebook nbgrader cannot convert (not a
notebook, renamed, broken cell metadata) still gets the submission and the
scores through the gradebook API, and is listed in `GradebookResult.without_notebook`
(formgrader cannot show that notebook); its submission still gets the time of its
folder's `timestamp.txt` and the course's late penalty (`autograder.outputs.late`).
"""

from __future__ import annotations

import logging
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from autograder.results import CheckResult, Report
from autograder.course.spec import AssignmentSpec

GRADEBOOK_FILE = 'gradebook.db'
CONFIG_FILE = 'nbgrader_config.py'
FEEDBACK_HEADER = 'mlp-autograde'


class GradebookError(Exception):
    """The gradebook cannot take these grades (missing, or made from another source notebook)."""


@dataclass
class GradebookResult:
    """What `write_gradebook` did.

    Attributes:
        gradebook: The gradebook file written.
        course_root: The nbgrader course folder (holding `submitted/`).
        students: nbgrader student ids whose grades were written.
        without_notebook: Of those, students with no autograded notebook
            (scores written through the API only).
        skipped: Report student ids not written: not from the course's
            `submitted/` tree, or the grader itself failed (regraded next run).
        warnings: nbgrader's errors, for the terminal.
    """

    gradebook: Path
    course_root: Path
    students: list[str] = field(default_factory=list)
    without_notebook: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def submission_owner(report: Report, assignment: str) -> tuple[Path, str] | None:
    """(course root, nbgrader student id) of a report graded from `<root>/<submitted>/<student>/<assignment>/x.ipynb`."""
    path = Path(report.submission).resolve()
    if len(path.parts) < 4 or path.parent.name != assignment:
        return None
    return path.parents[3], path.parents[1].name


def find_course_root(reports: list[Report], assignment: str) -> Path:
    """The nbgrader course folder the reports were graded from.

    Raises:
        GradebookError: No report comes from a `submitted/<student>/<assignment>/` tree,
            or they come from several courses.
    """
    roots = {owner[0].resolve() for owner in (submission_owner(r, assignment) for r in reports) if owner}
    if not roots:
        raise GradebookError('--gradebook needs submissions from an nbgrader course '
                             '(<course>/submitted/<student>/{0}/*.ipynb)'.format(assignment))
    if len(roots) > 1:
        raise GradebookError('the submissions come from several nbgrader courses ({0}); grade one course '
                             'at a time with --gradebook'.format(', '.join(sorted(map(str, roots)))))
    return roots.pop()


def _internal_failure(report: Report) -> bool:
    """A report of the grader failing (regraded next run): left out of the gradebook."""
    from autograder.batch import is_internal_failure
    return is_internal_failure(report)


def item_kinds(spec: AssignmentSpec) -> tuple[set[str], set[str]]:
    """(automatic grade ids, manual grade ids) of an assignment."""
    manual = {item.grade_id for item in spec.items if 'manual' in item.checks}
    return {item.grade_id for item in spec.items} - manual, manual


def check_gradebook_matches(gradebook, spec: AssignmentSpec) -> str:
    """Checks that the gradebook knows the assignment with the same grade cells and points.

    Returns:
        The gradebook's notebook name (the source notebook's file stem).

    Raises:
        GradebookError: Saying what differs and how to fix it.
    """
    from nbgrader.api import MissingEntry

    notebook = Path(spec.notebook).stem
    try:
        gradebook.find_assignment(spec.name)
        stored = gradebook.find_notebook(notebook, spec.name)
    except MissingEntry as error:
        raise GradebookError('the gradebook has no {0}/{1} ({2}); run `nbgrader generate_assignment {0}` '
                             'in the course first'.format(spec.name, notebook, error)) from error
    cells = {cell.name: float(cell.max_score) for cell in stored.grade_cells}
    cells.update({cell.name: float(cell.max_score) for cell in stored.task_cells})
    ours = {item.grade_id: float(item.points) for item in spec.items}
    if cells != ours:
        differ = sorted(g for g in set(cells) | set(ours) if cells.get(g) != ours.get(g))
        raise GradebookError('the gradebook\'s {0} was generated from a different source notebook: grade '
                             'cells differ on {1} (gradebook {2}, grader {3}); regenerate the assignment '
                             'with nbgrader'.format(notebook, ', '.join(differ),
                                                    {g: cells.get(g) for g in differ},
                                                    {g: ours.get(g) for g in differ}))
    return notebook


def _item_tests(report: Report) -> dict[str, list[CheckResult]]:
    by_item: dict[str, list[CheckResult]] = {}
    for test in report.tests:
        by_item.setdefault(test.grade_id, []).append(test)
    return by_item


def item_feedback(grade_id: str, tests: list[CheckResult]) -> str:
    """Our verdict on one item, as plain text (hidden cases are already redacted in `output`)."""
    earned = sum(t.score for t in tests)
    available = sum(t.max_score for t in tests)
    lines = ['{0}: {1} {2:g} / {3:g} points'.format(FEEDBACK_HEADER, grade_id, round(earned, 2), available)]
    for test in tests:
        mark = 'pass' if test.status == 'passed' else test.status.upper()
        line = '[{0}] {1}'.format(mark, test.name)
        if test.status != 'passed' and test.output:
            line += ': ' + test.output
        lines.append(line)
    return '\n'.join(lines) + '\n'


def solution_comment(report: Report, grade_ids: list[str]) -> str:
    """The automatic comment for a solution cell: the score and what failed in its items."""
    if report.status == 'rejected':
        return '{0}: not graded: {1}'.format(FEEDBACK_HEADER, report.error)
    by_item = _item_tests(report)
    lines = []
    for grade_id in grade_ids:
        tests = by_item.get(grade_id, [])
        problems = [t for t in tests if t.status != 'passed']
        earned = sum(t.score for t in tests)
        available = sum(t.max_score for t in tests)
        lines.append('{0}: {1:g} / {2:g}{3}'.format(grade_id, round(earned, 2), available,
                                                     '' if problems else ' (all checks passed)'))
        lines += ['  - {0}'.format(t.output or t.name) for t in problems]
    return '{0} automatic checks\n{1}'.format(FEEDBACK_HEADER, '\n'.join(lines))


def _solution_cells_for_items(gradebook, spec: AssignmentSpec, notebook: str) -> dict[str, list[str]]:
    """Code solution cell name -> automatic grade ids whose class that cell defines.

    Items whose class no solution cell defines go to the first code solution cell.
    """
    from nbgrader.api import MissingEntry

    automatic, _ = item_kinds(spec)
    stored = gradebook.find_notebook(notebook, spec.name)
    code_cells = []
    for cell in stored.solution_cells:
        try:
            source = gradebook.find_source_cell(cell.name, notebook, spec.name)
        except MissingEntry:  # a cell without saved source just gets no comment
            continue
        if source.cell_type == 'code':
            code_cells.append((cell.name, source.source or ''))
    mapping: dict[str, list[str]] = {name: [] for name, _ in code_cells}
    for item in spec.items:
        if item.grade_id not in automatic or not code_cells:
            continue
        pattern = re.compile(r'^\s*class\s+{0}\b'.format(re.escape(item.class_name)), re.M)
        owner = next((name for name, source in code_cells if pattern.search(source)), code_cells[0][0])
        mapping[owner].append(item.grade_id)
    return mapping


def record_report(gradebook, spec: AssignmentSpec, notebook: str, student: str, report: Report,
                  answer_cells: dict | None = None) -> None:
    """Writes one report's scores and comments into an existing submission of the gradebook.

    Args:
        gradebook: An open `nbgrader.api.Gradebook`.
        spec: The assignment's grading spec.
        notebook: The gradebook's notebook name.
        student: The nbgrader student id.
        report: Our report for that student's notebook.
        answer_cells: grade id -> the submitted notebook's cell, for written
            answers (so nbgrader's own rule can give an untouched answer 0);
            None when the notebook could not be read.
    """
    from nbgrader import utils

    automatic, manual = item_kinds(spec)
    scores = report.item_scores()
    submitted = gradebook.find_submission_notebook(notebook, spec.name, student)
    for grade in submitted.grades:
        if grade.name in automatic:
            _set_auto_score(grade, float(scores.get(grade.name, 0.0)) if report.status == 'graded' else 0.0,
                            needs_person=False)
        elif grade.name in manual:
            cell = (answer_cells or {}).get(grade.name)
            if report.status == 'rejected':
                _set_auto_score(grade, 0.0, needs_person=False)
            elif cell is not None and utils.is_grade(cell):
                auto_score, _ = utils.determine_grade(cell)
                _set_auto_score(grade, auto_score, needs_person=auto_score is None)
            else:
                _set_auto_score(grade, None, needs_person=True)
    owners = _solution_cells_for_items(gradebook, spec, notebook)
    for comment in submitted.comments:
        if comment.name in owners:
            comment.auto_comment = solution_comment(report, owners[comment.name])
        elif comment.name in manual:
            cell = (answer_cells or {}).get(comment.name)
            untouched = (cell is not None and cell.metadata.nbgrader.get('checksum') is not None
                         and cell.metadata.nbgrader['checksum'] == utils.compute_checksum(cell))
            comment.auto_comment = 'No response.' if untouched else None
    gradebook.db.commit()


def _set_auto_score(grade, auto_score: float | None, needs_person: bool) -> None:
    """Sets a cell's automatic score, and whether formgrader should list it as needing a person.

    A cell the instructor has scored (`manual_score` set) keeps the flag formgrader left,
    unless the automatic score changed (a new verdict under a manual override: review it).
    A cell nobody has scored needs a person exactly when no automatic score decides it.
    """
    changed = (grade.auto_score is None) != (auto_score is None) or (
        auto_score is not None and abs(float(grade.auto_score) - auto_score) > 1e-9)
    grade.auto_score = auto_score
    if grade.manual_score is None:
        grade.needs_manual_grade = needs_person
    elif changed:
        grade.needs_manual_grade = True


def _record_late_submission(opened, spec: AssignmentSpec, notebook: str, student: str, report: Report,
                            policy) -> None:
    """The submission time from the folder's timestamp.txt, and the course's late penalty, for a
    submission nbgrader itself did not convert (e.g. a renamed notebook)."""
    from autograder.outputs.late import FROM_NBGRADER, apply_policy, format_time
    outcome = apply_policy(policy, report, spec.name)
    if outcome.time.source != FROM_NBGRADER:
        return
    opened.update_or_create_submission(spec.name, student, timestamp=format_time(outcome.time.when))
    submitted = opened.find_submission_notebook(notebook, spec.name, student)
    penalty = outcome.penalty if outcome.seconds_late > 0 else 0.0
    if (submitted.late_submission_penalty or 0.0) != penalty:
        submitted.late_submission_penalty = penalty
    opened.db.commit()


def _annotate_test_cell(cell, tests: list[CheckResult], grade_id: str) -> None:
    """Puts our verdict on an item into its test cell's output, as nbgrader shows test results."""
    import nbformat

    failed = any(t.status != 'passed' for t in tests)
    cell.outputs = [nbformat.v4.new_output('stream', name='stderr' if failed else 'stdout',
                                           text=item_feedback(grade_id, tests))]
    cell.execution_count = None


def _make_recorder(spec: AssignmentSpec, reports: dict[str, Report], handled: set[str], course_id: str):
    """An nbgrader preprocessor (instance) standing in for Execute + SaveAutoGrades."""
    from nbgrader import utils
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import NbGraderPreprocessor

    automatic, manual = item_kinds(spec)

    class RecordMlpGrades(NbGraderPreprocessor):
        """Records mlp-autograde's scores for the notebook being autograded; runs no code."""

        def preprocess(self, nb, resources):
            info = resources['nbgrader']
            student = info['student']
            report = reports[student]
            by_item = _item_tests(report)
            answers = {}
            for cell in nb.cells:
                meta = cell.metadata.get('nbgrader', {})
                grade_id = meta.get('grade_id')
                if cell.cell_type == 'code' and utils.is_grade(cell) and grade_id in automatic:
                    _annotate_test_cell(cell, by_item.get(grade_id, []), grade_id)
                if grade_id in manual:
                    answers[grade_id] = cell
            with Gradebook(info['db_url'], course_id) as gradebook:
                record_report(gradebook, spec, info['notebook'], student, report, answers)
            handled.add(student)
            return nb, resources

    return RecordMlpGrades()


class _LogRecorder(logging.Handler):
    """Keeps nbgrader's errors (its warnings are routine: e.g. every locked cell with hidden
    tests "has changed", because the release's checksum is taken after the tests are removed)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def course_config(course_root: Path, gradebook: Path):
    """The course's nbgrader configuration (its nbgrader_config.py if any), rooted at `course_root`."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    if (course_root / CONFIG_FILE).is_file():
        config = PyFileConfigLoader(CONFIG_FILE, path=str(course_root)).load_config()
    config.CourseDirectory.root = str(course_root)
    config.CourseDirectory.db_url = 'sqlite:///{0}'.format(gradebook.resolve())
    return config


def _remove_autograded(config, assignment: str, student: str) -> None:
    """Deletes an autograded copy left from an earlier run (as nbgrader does when autograding fails),
    so formgrader never shows a notebook that the current grades do not come from."""
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    folder = Path(coursedir.format_path(coursedir.autograded_directory, student, assignment))
    if folder.is_dir():
        shutil.rmtree(folder)


def _convert(course_root: Path, gradebook: Path, spec: AssignmentSpec, student: str, recorder,
             log: logging.Logger) -> None:
    """Runs nbgrader's Autograde converter for one student, with `recorder` instead of execution."""
    from nbgrader.converters import Autograde
    from nbgrader.converters.base import NbGraderException
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import AssignLatePenalties, CheckCellMetadata, ClearHiddenTests

    config = course_config(course_root, gradebook)
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = spec.name
    coursedir.student_id = student
    converter = Autograde(coursedir=coursedir, config=config, log=log)
    converter.force = True
    converter.autograde_preprocessors = [ClearHiddenTests, recorder, AssignLatePenalties, CheckCellMetadata]
    try:
        converter.start()
    except NbGraderException as error:
        log.error('nbgrader could not convert the notebook of %s: %s', student, error)


def write_gradebook(spec: AssignmentSpec, reports: list[Report], gradebook: Path | None = None,
                    course_root: Path | None = None) -> GradebookResult:
    """Writes every report of an nbgrader course into its gradebook (see the module docstring).

    Not thread-safe: nbgrader changes the working directory while it converts.

    Args:
        spec: The assignment's grading spec.
        reports: Reports graded from `<course>/submitted/<student>/<assignment>/`.
        gradebook: The gradebook file (default `<course>/gradebook.db`); it must exist
            and know the assignment (`nbgrader generate_assignment`).
        course_root: The nbgrader course folder (default: the gradebook's folder when it
            holds `submitted/`, else found from the reports' paths).

    Returns:
        A `GradebookResult`.

    Raises:
        GradebookError: No such gradebook, no nbgrader submissions, or a gradebook made
            from a different version of the source notebook.
    """
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    if course_root is None and gradebook is not None and (Path(gradebook).resolve().parent / 'submitted').is_dir():
        course_root = Path(gradebook).resolve().parent
    course_root = Path(course_root).resolve() if course_root else find_course_root(reports, spec.name)
    gradebook = Path(gradebook) if gradebook else course_root / GRADEBOOK_FILE
    if not gradebook.is_file():
        raise GradebookError('no nbgrader gradebook at {0}; run `nbgrader generate_assignment {1}` in the '
                             'course, or pass --gradebook PATH'.format(gradebook, spec.name))
    result = GradebookResult(gradebook=gradebook, course_root=course_root)
    by_student: dict[str, Report] = {}
    for report in reports:
        owner = submission_owner(report, spec.name)
        if owner is None or owner[0].resolve() != course_root or _internal_failure(report):
            result.skipped.append(report.student)
        elif owner[1] in by_student and Path(by_student[owner[1]].submission).stem == Path(spec.notebook).stem:
            result.skipped.append(report.student)  # a second notebook in the folder: nbgrader's name wins
        else:
            if owner[1] in by_student:
                result.skipped.append(by_student[owner[1]].student)
            by_student[owner[1]] = report
    db_url = 'sqlite:///{0}'.format(gradebook.resolve())
    config = course_config(course_root, gradebook)
    course_id = config.CourseDirectory.get('course_id', 'default_course')
    with Gradebook(db_url, course_id) as opened:
        notebook = check_gradebook_matches(opened, spec)
    from autograder.outputs.late import LatePolicyError, policy_from_nbgrader
    try:
        late_policy = policy_from_nbgrader(course_root, gradebook, spec.name)
    except LatePolicyError as error:
        raise GradebookError(str(error)) from error

    log = logging.getLogger(__name__ + '.nbgrader')
    log.propagate = False
    recorder_log = _LogRecorder()
    log.addHandler(recorder_log)
    handled: set[str] = set()
    recorder = _make_recorder(spec, by_student, handled, course_id)
    with warnings.catch_warnings():
        # nbgrader's add_submission trips a harmless SQLAlchemy autoflush warning.
        warnings.simplefilter('ignore', category=SAWarning)
        try:
            for student, report in sorted(by_student.items()):
                if report.status == 'graded' and Path(report.submission).stem == notebook:
                    _convert(course_root, gradebook, spec, student, recorder, log)
        finally:
            log.removeHandler(recorder_log)
        with Gradebook(db_url, course_id) as opened:
            for student, report in sorted(by_student.items()):
                if student not in handled:
                    _remove_autograded(config, spec.name, student)
                    opened.update_or_create_student(student)
                    opened.update_or_create_submission(spec.name, student)
                    record_report(opened, spec, notebook, student, report, None)
                    _record_late_submission(opened, spec, notebook, student, report, late_policy)
                    result.without_notebook.append(student)
                result.students.append(student)
    result.warnings = recorder_log.messages
    return result


def course_of(paths: list[Path]) -> Path | None:
    """The nbgrader course named on the command line: a folder holding `submitted/`, or a `submitted/` folder."""
    for path in (Path(p).resolve() for p in paths):
        if (path / 'submitted').is_dir():
            return path
        if path.is_dir() and path.name == 'submitted':
            return path.parent
    return None


def preflight(spec: AssignmentSpec, paths: list[Path], gradebook: str | None) -> Path:
    """Before grading: the gradebook to write, checked to know this assignment.

    Args:
        spec: The assignment's grading spec.
        paths: The command line's submission paths.
        gradebook: The `--gradebook` value: a path, or '' for `<course>/gradebook.db`.

    Raises:
        GradebookError: No course or gradebook found, or a gradebook that disagrees with the spec.
    """
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    course = course_of(paths)
    if gradebook:
        path = Path(gradebook)
        course = course or path.resolve().parent
    else:
        if course is None:
            raise GradebookError('--gradebook without a path needs an nbgrader course folder (holding '
                                 'submitted/ and gradebook.db) among the paths to grade')
        path = course / GRADEBOOK_FILE
    if not path.is_file():
        raise GradebookError('no nbgrader gradebook at {0}; run `nbgrader generate_assignment {1}` in the '
                             'course first'.format(path, spec.name))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', category=SAWarning)
        course_id = course_config(course, path).CourseDirectory.get('course_id', 'default_course')
        with Gradebook('sqlite:///{0}'.format(path.resolve()), course_id) as opened:
            check_gradebook_matches(opened, spec)
    return path


def print_result(result: GradebookResult, assignment: str) -> None:
    """Tells the instructor what was written and what to do next."""
    print('nbgrader gradebook {0}: grades of {1} student(s) written'.format(
        result.gradebook, len(result.students)))
    if result.without_notebook:
        print('  no autograded notebook for {0} (scores written; formgrader cannot open these '
              'notebooks)'.format(', '.join(result.without_notebook)))
    if result.skipped:
        print('  not in the course\'s submitted/ tree, not written: {0}'.format(', '.join(result.skipped)))
    for message in result.warnings:
        print('  nbgrader: {0}'.format(message))
    print('  next (in {0}): `nbgrader export`; written answers in formgrader (`jupyter lab` or '
          '`jupyter notebook` there, then Nbgrader > Formgrader); `nbgrader generate_feedback {1}`'.format(
              result.course_root, assignment))
