"""Result records of grading: one `CheckResult` per check, one `Report` per submission.

TRUSTED: built and serialised only by the grading parent. The JSON layout is
the public report contract `mlp-autograde/report/1` (DESIGN section 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field

REPORT_SCHEMA = 'mlp-autograde/report/1'
CHECK_KINDS = ('fixed', 'gradcheck', 'property', 'training', 'manual')
CHECK_STATUSES = ('passed', 'failed', 'error', 'timeout', 'pending')


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

    def to_json(self) -> dict:
        """The report-schema form of this result."""
        data = {
            'grade_id': self.grade_id, 'name': self.name, 'target': self.target,
            'kind': self.kind, 'status': self.status, 'score': round(self.score, 4),
            'max_score': round(self.max_score, 4), 'output': self.output,
        }
        if self.diagnosis:
            data['diagnosis'] = self.diagnosis
        return data


@dataclass
class Report:
    """Everything the grader says about one submission."""

    student: str
    assignment: str
    submission: str
    sha256: str
    status: str  # 'graded' or 'rejected'
    score: float
    max_score: float
    isolation: str
    execution_time: float
    tests: list[CheckResult] = field(default_factory=list)
    error: str = ''
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """The `mlp-autograde/report/1` form of this report."""
        data = {
            'schema': REPORT_SCHEMA, 'student': self.student, 'assignment': self.assignment,
            'submission': self.submission, 'sha256': self.sha256, 'status': self.status,
        }
        if self.status == 'rejected':
            data['error'] = self.error
        data.update({
            'score': round(self.score, 4), 'max_score': round(self.max_score, 4),
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
