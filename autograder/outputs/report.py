"""Writing the grade directory: per-student JSON and feedback, grades.csv, summary.json.

TRUSTED. Only the grading parent writes here, and every file is written
atomically (a temporary file in the same directory, then `os.replace`), so
an interrupted run never leaves a half-written file behind.

Layout (DESIGN section 5): ``DIR/<student>.json``, ``.md`` and ``.html`` per
student, and the class files `CLASS_FILES` beside them. Student ids never
take a class file's stem (`RESERVED_STUDENT_IDS`, enforced where ids are given
out, `autograder.batch.unique_student_ids`), so the two can never meet.

The text in reports is clean already (`autograder.results.clean_text`); each
format escapes it again for itself here: Markdown puts every text a
submission can influence in code spans or fenced blocks (`md_code`,
`md_block`), CSV cells never start like a formula
(`autograder.outputs.roster.spreadsheet_safe`, with or without a roster), and
the terminal gets printable characters only (`terminal_text`).
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from pathlib import Path

from autograder.atomic import atomic_output
from autograder.results import Report
from autograder.course.spec import AssignmentSpec

_STATUS_MARK = {'passed': 'PASS', 'failed': 'FAIL', 'error': 'ERROR', 'timeout': 'TIMEOUT',
                'pending': 'PENDING'}

#: The class files of a grade directory (written by `autograder.batch`).
CLASS_FILES = ('grades.csv', 'summary.json', 'summary.html')

#: Suffixes of a student's own files: DIR/<student>.<suffix>.
STUDENT_SUFFIXES = ('json', 'md', 'html')

#: Ids no student gets (compared case-insensitively): the stems of the class
#: files, so that DIR/<student>.json can never be summary.json. A new class
#: file adds its stem here.
RESERVED_STUDENT_IDS = frozenset([name.split('.', 1)[0] for name in CLASS_FILES]
                                 + ['similarity'])  # similarity.json, .html and folder (instructor only)


def md_code(text: object) -> str:
    """`text` as one Markdown code span, whatever backticks it holds (shown, never rendered).

    Newlines become spaces (a span is inline); the fence is one backtick
    longer than the longest run inside, and padded when the text starts or
    ends with a backtick.
    """
    inner = str(text).replace('\n', ' ')
    longest = max((len(run) for run in re.findall('`+', inner)), default=0)
    fence = '`' * (longest + 1)
    if inner.startswith('`') or inner.endswith('`') or not inner.strip():
        inner = ' {0} '.format(inner)
    return '{0}{1}{0}'.format(fence, inner)


def md_block(text: object, indent: str = '') -> list[str]:
    """`text` as a fenced Markdown code block (lines), fenced longer than any run of backticks."""
    body = str(text)
    longest = max((len(run) for run in re.findall('`{3,}', body)), default=0)
    fence = '`' * max(3, longest + 1)
    return [indent + fence] + [indent + line for line in body.split('\n')] + [indent + fence]


def terminal_text(value: object) -> str:
    """Printable characters only (anything else, newlines included, becomes '?')."""
    return ''.join(char if char.isprintable() else '?' for char in str(value))


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
             'Student: {0}  '.format(md_code(report.student)),
             'Submission: {0} (sha256 {1}...)'.format(md_code(Path(report.submission).name),
                                                     md_code(report.sha256[:12])), '']
    if report.status == 'rejected':
        lines += ['**Your file could not be graded.**', ''] + md_block(report.error) + [
            '', 'Score: 0 / {0:g}'.format(report.max_score), '']
        return '\n'.join(lines)
    if report.status == 'error':
        lines += ['**The grader failed on your file; this is not a problem with your work.** '
                  'Your instructor has been told and it will be graded again.', ''] + md_block(report.error) + ['']
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
            mark = 'GRADER ERROR' if test.harness else _STATUS_MARK.get(test.status, 'ERROR')
            # Target and name come from the spec (trusted); the output may carry a submission's words.
            lines.append('- **{0}** ({1}, {2}):'.format(test.target, mark, test.name))
            lines += [''] + md_block(test.output or 'no details', indent='  ') + ['']
        lines.append('')
    else:
        lines += ['Every automatic check passed.', '']
    if report.notes:
        lines += ['## Notes from the grader', ''] + md_block('\n'.join(report.notes)) + ['']
    lines += ['Hidden test cases are summarised, not shown. Run `mlp-autograde check <notebook>` '
              'to rerun the public checks yourself.', '']
    return '\n'.join(lines)


def grades_csv(spec: AssignmentSpec, reports: list[Report]) -> str:
    """One row per student: student, score, max_score, status, points (or `pending`) per grade id,
    then the pending and late-work columns (`autograder.outputs.roster` writes the sheet)."""
    from autograder.outputs.roster import grades_csv_with_roster
    return grades_csv_with_roster(spec, reports, roster=None)


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
        'rejected': sum(r.status == 'rejected' for r in reports),
        'errors': sum(r.status == 'error' for r in reports),
        'harness_failures': sorted(r.student for r in reports if r.harness_failed),
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
    """A plain-text table of the class for the terminal, ending with the points awaiting manual grading."""
    from autograder.outputs.roster import pending_points
    width = max([len('student')] + [len(r.student) for r in reports])
    lines = ['{0:<{w}}  {1:>13}  {2}'.format('student', 'score', 'status', w=width)]
    for report in sorted(reports, key=lambda r: r.student):
        detail = report.error if report.status in ('rejected', 'error') else ''
        if report.status == 'graded' and report.harness_failed:
            detail = 'grader error in {0} check(s): graded again on the next run'.format(
                sum(test.harness for test in report.tests))
        waiting = pending_points(report)
        if waiting:
            detail = '(+{0:g} pending manual grading)'.format(round(waiting, 2))
        lines.append(terminal_text('{0:<{w}}  {1:>6g} / {2:<4g}  {3} {4}'.format(
            report.student, round(report.score, 2), report.max_score, report.status, detail,
            w=width).rstrip()))
    waiting = [pending_points(r) for r in reports]
    students = sum(1 for points in waiting if points)
    if students:
        lines.append('{0:g} points await manual grading ({1} student{2}); scores above are the automatic '
                     'part'.format(round(sum(waiting), 2), students, '' if students == 1 else 's'))
    return '\n'.join(lines)
