"""Grade small submissions of one target kind through the real pipeline (tests of checks/<kind>.py).

`kind_spec` builds an `AssignmentSpec` from plain data (as a spec JSON would give it) whose
student copy of mlp is the reference package (so helper classes such as SigmoidLayer or
GradientDescentLearningRule exist in the sandbox); `grade` writes a one-cell notebook with
the given source and grades it with `grade_submission`, i.e. extraction, the sandbox
(child runner, wire format) and the judges, exactly as for a student.
"""

from __future__ import annotations

from pathlib import Path

from autograder.course.spec import spec_from_data
from autograder.grade import grade_submission
from notebook_factory import make_notebook, write_notebook

REFERENCE_DIR = Path(__file__).resolve().parents[1] / 'reference'
TRAINING = {'seed': 1234, 'hidden_dim': 32, 'num_train': 1000, 'num_eval': 300, 'num_epochs': 2,
            'batch_size': 50, 'learning_rate': 0.5, 'init_scale': 0.1, 'accuracy_tolerance': 0.03}


def kind_spec(tmp_path: Path, *, classes=None, functions=None, cases=None, items=(), training=None,
              name: str = 'kind_test'):
    """A spec whose items all score 1 point; the student copy of mlp is the reference."""
    release = tmp_path / 'course' / 'release' / name
    release.mkdir(parents=True, exist_ok=True)
    if not (release / 'mlp').exists():
        (release / 'mlp').symlink_to(REFERENCE_DIR / 'mlp', target_is_directory=True)
    raw = {'assignment': name, 'notebook': 'unused.ipynb', 'classes': classes or {},
           'functions': functions or {}, 'cases': cases or {}, 'items': list(items),
           'training': dict(TRAINING, **(training or {}))}
    points = {item['grade_id']: 1.0 for item in items}
    return spec_from_data(raw, name, tmp_path / 'course', points)


def grade(spec, source: str, tmp_path: Path, *, public_only: bool = False, student: str = 'student'):
    """Grades a notebook whose only code cell is `source`; returns the report."""
    path = write_notebook(make_notebook(['import numpy as np', source]), tmp_path / (student + '.ipynb'))
    return grade_submission(path, spec, student=student, public_only=public_only)


def by_item(report) -> dict:
    """grade_id -> (score, [outputs of the failed checks])."""
    scores = report.item_scores()
    return {grade_id: (score, [t.output for t in report.tests if t.grade_id == grade_id
                               and t.status != 'passed'])
            for grade_id, score in scores.items()}


def failed_outputs(report, grade_id: str) -> str:
    return ' | '.join(t.output for t in report.tests if t.grade_id == grade_id and t.status != 'passed')
