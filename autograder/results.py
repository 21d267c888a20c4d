"""Result records of grading: one `CheckResult` per check, one `Report` per submission.

TRUSTED: built and serialised only by the grading parent. The JSON layout is
the public report contract `mlp-autograde/report/1` (DESIGN section 5).

Text is cleaned once, here, where it enters a record: every string of a
`CheckResult` or `Report` (student id, file name, messages that carry what a
submission or its sandbox said) goes through `clean_text`, so no writer ever
meets a lone surrogate (not encodable as UTF-8), a NUL, a terminal escape or
a bidirectional override. Each output format then escapes the clean text
for itself (Markdown, CSV, HTML, terminal: `autograder.outputs`).

A failure of the grader or of the machine (missing MNIST, a sandbox that
cannot start, a bug) is never the student's: the code that meets it raises
`HarnessError`, and it is recorded as a check with ``harness=True`` or, for
the whole submission, a report with status ``'error'``. `Report.harness_failed`
is the one test of both: such reports make the CLI exit non-zero and are
graded again on the next run, never reused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

REPORT_SCHEMA = 'mlp-autograde/report/1'
CHECK_KINDS = ('fixed', 'gradcheck', 'property', 'training', 'manual')
CHECK_STATUSES = ('passed', 'failed', 'error', 'timeout', 'pending')

#: 'graded'; 'rejected' (the file is not a gradable notebook: the student's to
#: fix); 'error' (the grader failed on it: the harness's, graded again next run).
REPORT_STATUSES = ('graded', 'rejected', 'error')

#: How a harness failure starts its message, in checks and reports alike.
HARNESS_FAILURE = 'The grader failed (a harness error, not a problem with your submission)'

#: C0 and C1 control characters except tab and newline, DEL, bidirectional
#: overrides and isolates, and the line/paragraph separators.
_UNSAFE_CHARACTERS = re.compile('[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]')


class HarnessError(Exception):
    """The grader or the grading machine failed (missing data, no sandbox, a broken install).

    Raise it (or a subclass) wherever such a failure is met; the pipeline
    records it as a harness error, never as the student's failure.
    """


def clean_text(value: object) -> str:
    """Valid, printable text: what every string of a result is made of.

    Lone surrogates (from JSON, or file names that are not UTF-8) become
    '?'; control characters other than tab and newline, carriage returns,
    bidirectional controls and Unicode line separators become '?'.

    Args:
        value: Any value (non-strings are formatted with `str`).

    Returns:
        The cleaned text (equal to `value` when it was clean already).
    """
    text = value if isinstance(value, str) else str(value)
    if not text.isascii():
        text = text.encode('utf-8', 'replace').decode('utf-8')
    return _UNSAFE_CHARACTERS.sub('?', text)


def harness_message(what: object) -> str:
    """'The grader failed (a harness error, ...): <what>; please tell your instructor.'"""
    return '{0}: {1}; please tell your instructor.'.format(HARNESS_FAILURE, clean_text(what).rstrip('.'))


@dataclass
class CheckResult:
    """The outcome of one check of one graded item.

    Attributes:
        grade_id: The nbgrader grade id of the item the check belongs to.
        name: What was checked, in a phrase a student understands.
        target: 'Class.method' or 'Class' (training runs).
        kind: One of CHECK_KINDS.
        status: One of CHECK_STATUSES.
        score: Points earned.
        max_score: Points available.
        output: What the student should know (redacted for hidden cases).
        public: Whether the check's inputs may be shown to the student.
        diagnosis: A recognised common mistake, or ''.
        details: Extra plain data for rich feedback (e.g. training curves);
            not part of the JSON report.
        harness: True when the check could not run because the grader or
            the machine failed (`HarnessError`): status 'error', 0 points,
            ``"harness_error": true`` in the JSON, graded again next run.
    """

    grade_id: str
    name: str
    target: str
    kind: str
    status: str
    score: float
    max_score: float
    output: str = ''
    public: bool = False
    diagnosis: str = ''
    details: dict = field(default_factory=dict)
    harness: bool = False

    def __post_init__(self) -> None:
        for name in ('grade_id', 'name', 'target', 'kind', 'status', 'output', 'diagnosis'):
            setattr(self, name, clean_text(getattr(self, name)))

    def to_json(self) -> dict:
        """The report-schema form of this result."""
        data = {
            'grade_id': self.grade_id, 'name': self.name, 'target': self.target,
            'kind': self.kind, 'status': self.status, 'score': round(self.score, 10),
            'max_score': round(self.max_score, 10), 'output': self.output,
        }
        if self.diagnosis:
            data['diagnosis'] = self.diagnosis
        if self.harness:
            data['harness_error'] = True
        return data


@dataclass
class Report:
    """Everything the grader says about one submission.

    `status` is one of REPORT_STATUSES; `error` says why, for 'rejected' (what
    is wrong with the file) and 'error' (what failed in the grader).
    """

    student: str
    assignment: str
    submission: str
    sha256: str
    status: str  # one of REPORT_STATUSES
    score: float
    max_score: float
    isolation: str
    execution_time: float
    tests: list[CheckResult] = field(default_factory=list)
    error: str = ''
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ('student', 'assignment', 'submission', 'sha256', 'status', 'isolation', 'error'):
            setattr(self, name, clean_text(getattr(self, name)))
        self.notes = [clean_text(note) for note in self.notes]

    @property
    def harness_failed(self) -> bool:
        """True when the grader, not the submission, failed somewhere in this report."""
        return self.status == 'error' or any(test.harness for test in self.tests)

    def to_json(self) -> dict:
        """The `mlp-autograde/report/1` form of this report."""
        data = {
            'schema': REPORT_SCHEMA, 'student': self.student, 'assignment': self.assignment,
            'submission': self.submission, 'sha256': self.sha256, 'status': self.status,
        }
        if self.status in ('rejected', 'error'):
            data['error'] = self.error
        data.update({
            'score': round(self.score, 10), 'max_score': round(self.max_score, 10),
            'isolation': self.isolation, 'execution_time': round(self.execution_time, 3),
            'notes': list(self.notes),
            'tests': [test.to_json() for test in self.tests],
        })
        return data

    def item_scores(self) -> dict[str, float]:
        """Points earned per grade id, summed over that item's checks."""
        scores: dict[str, float] = {}
        for test in self.tests:
            scores[test.grade_id] = scores.get(test.grade_id, 0.0) + test.score
        return scores
