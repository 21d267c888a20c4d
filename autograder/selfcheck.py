"""The student self-check: what the public checks say, and what grading adds.

TRUSTED. Runs the same pipeline as grading (same sandbox, same check
library) restricted to public checks, then tells the student which kinds
of hidden checks the grader will also run, without showing them.
"""

from __future__ import annotations

from collections import Counter

from autograder.results import Report
from autograder.course.spec import AssignmentSpec

# Check kinds the self-check does not run (gradcheck and property checks are public).
_KIND_WORDS = {'fixed': 'hidden fixed test cases (edge values such as 0 and large magnitudes)',
               'training': 'a short MNIST training run using your class'}


def format_self_check(spec: AssignmentSpec, report: Report) -> str:
    """Text for the terminal (or a notebook cell) summarising a self-check."""
    if report.status == 'rejected':
        return 'Your notebook cannot be graded: {0}'.format(report.error)
    lines = ['Self-check of {0} for {1} (public checks only; isolation: {2})'.format(
        report.submission, spec.name, report.isolation), '']
    for test in report.tests:
        if test.kind == 'manual':
            continue
        mark = 'ok  ' if test.status == 'passed' else test.status.upper()
        lines.append('[{0}] {1}'.format(mark, test.name))
        if test.status != 'passed' and test.output:
            lines.append('       ' + test.output)
    passed = sum(t.status == 'passed' for t in report.tests if t.kind != 'manual')
    total = sum(1 for t in report.tests if t.kind != 'manual')
    lines += ['', '{0} of {1} public checks passed.'.format(passed, total)]
    hidden = Counter()
    for item in spec.items:
        for check in item.checks:
            kind = check.split(':')[0]
            if kind == 'fixed' and spec.cases[check.split(':', 1)[1]].public:
                continue
            if kind in _KIND_WORDS:
                hidden[kind] += 1
    if hidden:
        lines.append('When grading, the grader also runs: ' + '; '.join(
            '{0} ({1})'.format(_KIND_WORDS[kind], count) for kind, count in sorted(hidden.items())) + '.')
    manual = [item.grade_id for item in spec.items if 'manual' in item.checks]
    if manual:
        lines.append('Written answers ({0}) are graded by your instructor.'.format(', '.join(manual)))
    return '\n'.join(lines)
