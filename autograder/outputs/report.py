"""Writing the grade directory: per-student JSON and feedback, grades.csv, summary.json.

TRUSTED. Only the grading parent writes here, and every file is written
atomically (a temporary file in the same directory, then `os.replace`), so
an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import Counter
from pathlib import Path

from autograder.atomic import atomic_output
from autograder.results import Report
from autograder.course.spec import AssignmentSpec

_STATUS_MARK = {'passed': 'PASS', 'failed': 'FAIL', 'error': 'ERROR', 'timeout': 'TIMEOUT',
                'pending': 'PENDING'}


def write_atomic(path: Path, text: str) -> None:
    """Writes `text` to `path` so readers see either the old file or the whole new one."""
    with atomic_output(path) as temp_file:
        temp_file.write(text)


def report_json(report: Report) -> str:
    """The JSON text of a report (stable key order, trailing newline)."""
    return json.dumps(report.to_json(), indent=2) + '\n'


def feedback_markdown(report: Report) -> str:
    """Feedback for the student: score, a table of items, then what to fix."""
    lines = ['# Feedback: {0}'.format(report.assignment), '',
             'Student: `{0}`  '.format(report.student),
             'Submission: `{0}` (sha256 {1}...)'.format(Path(report.submission).name, report.sha256[:12]), '']
    if report.status == 'rejected':
        lines += ['**Your file could not be graded.** {0}'.format(report.error), '',
                  'Score: 0 / {0:g}'.format(report.max_score), '']
        return '\n'.join(lines)
    lines += ['**Score: {0:g} / {1:g}**'.format(round(report.score, 2), report.max_score), '',
              '| item | points | checks passed |', '|---|---|---|']
    by_item: dict[str, list] = {}
    for test in report.tests:
        by_item.setdefault(test.grade_id, []).append(test)
    for grade_id, tests in by_item.items():
        earned = sum(t.score for t in tests)
        available = sum(t.max_score for t in tests)
        if tests[0].kind == 'manual':
            passed = 'graded by your instructor'
            earned_text = 'pending'
        else:
            passed = '{0} of {1}'.format(sum(t.status == 'passed' for t in tests), len(tests))
            earned_text = '{0:g}'.format(round(earned, 2))
        lines.append('| {0} | {1} / {2:g} | {3} |'.format(grade_id, earned_text, available, passed))
    problems = [t for t in report.tests if t.status not in ('passed', 'pending')]
    lines += ['']
    if problems:
        lines += ['## What to look at', '']
        for test in problems:
            lines.append('- **{0}** ({1}, {2}): {3}'.format(
                test.target, _STATUS_MARK[test.status], test.name, test.output or 'no details'))
        lines.append('')
    else:
        lines += ['Every automatic check passed.', '']
    if report.notes:
        lines += ['## Notes from the grader', ''] + ['- ' + note for note in report.notes] + ['']
    lines += ['Hidden test cases are summarised, not shown. Run `mlp-autograde check <notebook>` '
              'to rerun the public checks yourself.', '']
    return '\n'.join(lines)


def grades_csv(spec: AssignmentSpec, reports: list[Report]) -> str:
    """One row per student: student, score, max_score, status, then points per grade id."""
    grade_ids = [item.grade_id for item in spec.items]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    writer.writerow(['student', 'score', 'max_score', 'status'] + grade_ids)
    for report in sorted(reports, key=lambda r: r.student):
        scores = report.item_scores()
        writer.writerow([report.student, _number(report.score), _number(report.max_score),
                         report.status] + [_number(scores.get(g, 0.0)) for g in grade_ids])
    return buffer.getvalue()


def _number(value: float) -> str:
    return '{0:g}'.format(round(value, 4))


def summary(spec: AssignmentSpec, reports: list[Report], wall_time: float, graded_now: int) -> dict:
    """Class-level counts, score distribution, per-item pass rates and timing."""
    graded = [r for r in reports if r.status == 'graded']
    scores = [r.score for r in graded]
    item_rates = {}
    for item in spec.items:
        tests = [t for r in graded for t in r.tests if t.grade_id == item.grade_id]
        if tests and tests[0].kind != 'manual':
            item_rates[item.grade_id] = round(sum(t.status == 'passed' for t in tests) / len(tests), 4)
    diagnoses = Counter(t.diagnosis for r in graded for t in r.tests if t.diagnosis)
    times = [r.execution_time for r in graded]
    return {
        'schema': 'mlp-autograde/summary/1',
        'assignment': spec.name,
        'submissions': len(reports),
        'graded': len(graded),
        'rejected': len(reports) - len(graded),
        'graded_this_run': graded_now,
        'max_score': spec.max_score,
        'scores': {
            'mean': round(statistics.fmean(scores), 4) if scores else None,
            'median': round(statistics.median(scores), 4) if scores else None,
            'min': min(scores) if scores else None,
            'max': max(scores) if scores else None,
            'histogram': _histogram(scores, spec.max_score),
        },
        'item_pass_rates': item_rates,
        'common_diagnoses': [{'diagnosis': d, 'count': n} for d, n in diagnoses.most_common(10)],
        'isolation': sorted({r.isolation for r in graded}),
        'timing': {
            'wall_seconds': round(wall_time, 3),
            'mean_seconds_per_submission': round(statistics.fmean(times), 3) if times else None,
        },
    }


def _histogram(scores: list[float], max_score: float, bins: int = 10) -> list[dict]:
    if max_score <= 0:
        return []
    width = max_score / bins
    counts = [0] * bins
    for score in scores:
        counts[min(bins - 1, int(score / width))] += 1
    return [{'from': round(i * width, 4), 'to': round((i + 1) * width, 4), 'count': c}
            for i, c in enumerate(counts)]


def class_table(spec: AssignmentSpec, reports: list[Report]) -> str:
    """A plain-text table of the class for the terminal."""
    width = max([len('student')] + [len(r.student) for r in reports])
    lines = ['{0:<{w}}  {1:>13}  {2}'.format('student', 'score', 'status', w=width)]
    for report in sorted(reports, key=lambda r: r.student):
        detail = report.error if report.status == 'rejected' else ''
        lines.append('{0:<{w}}  {1:>6g} / {2:<4g}  {3} {4}'.format(
            report.student, round(report.score, 2), report.max_score, report.status, detail,
            w=width).rstrip())
    return '\n'.join(lines)
