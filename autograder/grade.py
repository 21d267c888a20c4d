"""The grading pipeline for one submission: load -> extract -> sandbox -> judge -> report.

TRUSTED. This module never runs student code itself: it hands the extracted
source and the planned requests to `sandbox.exec_untrusted` and judges the
plain-data responses with `checks`.
"""

from __future__ import annotations

import time
from pathlib import Path

from autograder import checks
from autograder.extract import extract_code
from autograder.limits import Limits
from autograder.load import Rejection, load_submission
from autograder.results import CheckResult, Report
from autograder.sandbox import exec_untrusted
from autograder.spec import AssignmentSpec, Item


def rejected_report(spec: AssignmentSpec, student: str, submission: str, sha256: str,
                    reason: str, isolation: str = 'none') -> Report:
    """A report for a file that could not be graded at all."""
    return Report(student=student, assignment=spec.name, submission=submission, sha256=sha256,
                  status='rejected', error=reason, score=0.0, max_score=spec.max_score,
                  isolation=isolation, execution_time=0.0)


def _manual_result(item: Item) -> CheckResult:
    return CheckResult(grade_id=item.grade_id, name=checks._CHECK_TITLES['manual'],
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
            len(syntax), '; '.join(str(error) for error in syntax[:3]))
    return message + '.'


def _harmless_import_error(error: str) -> bool:
    """True for a failed import of a module the grader does not provide (matplotlib, ...).

    The sandbox offers only numpy and the student copy of mlp; notebooks
    import plotting and other tools for their experiments, which are not run.
    """
    return error.startswith('ModuleNotFoundError') and "'mlp" not in error


def grade_submission(path: Path, spec: AssignmentSpec, *, student: str, limits: Limits | None = None,
                     public_only: bool = False, display_path: str | None = None) -> Report:
    """Grades one notebook file.

    Args:
        path: The submitted file (any file: unreadable ones are rejected).
        spec: The assignment's grading spec.
        student: Student id for the report.
        limits: Sandbox limits (defaults if None).
        public_only: Run only the public checks (the student self-check).
        display_path: Path to show in the report (defaults to `path`).

    Returns:
        The submission's `Report`; never raises for anything in the file.
    """
    started = time.monotonic()
    shown = display_path or str(path)
    loaded = load_submission(Path(path))
    if isinstance(loaded, Rejection):
        return rejected_report(spec, student, shown, loaded.sha256 or '', loaded.reason)
    extraction = extract_code(loaded.notebook, spec.classes.keys())
    notes = list(loaded.warnings) + [extraction.summary()]
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

    requests = [request for plan in runnable for request in plan.requests]
    outcome = exec_untrusted(extraction.source, requests, student_mlp_dir=spec.student_mlp_dir,
                             limits=limits or Limits())
    if not outcome.setup.ok:
        notes.append('Your code could not be loaded: {0}'.format(outcome.setup.message))
    for error in outcome.setup.errors or []:
        if _harmless_import_error(error.error):
            continue
        notes.append('A statement of your notebook failed when loaded (line {0} of the extracted code): {1}'.format(
            error.line, error.error))
    for plan in runnable:
        share = item_points[plan.item.grade_id] / len(plan.item.checks)
        results.append(checks.judge_plan(plan, outcome.responses, share))

    order = {item.grade_id: index for index, item in enumerate(spec.items)}
    results.sort(key=lambda result: order[result.grade_id])
    max_score = sum(item_points.values())
    return Report(student=student, assignment=spec.name, submission=shown, sha256=loaded.sha256,
                  status='graded', score=sum(result.score for result in results),
                  max_score=max_score, isolation=outcome.isolation,
                  execution_time=time.monotonic() - started, tests=results, notes=notes)
