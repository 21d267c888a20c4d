"""A correct convolution written as four nested Python loops keeps full marks on lab 7.

The loops give the right values but are slow (tens of seconds for the grader's cases and its
training run), so lab 7's hidden cases and training run are sized for them to finish inside
the budgets instead of timing out. The faster correct variants of lab 7 are graded with the
other assignments' in tests/test_assignments_end_to_end.py.
"""

from pathlib import Path

import nbformat
import pytest

from autograder import batch, demo
from autograder.course.spec import load_spec

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = '07_convolutional_networks'
LOOPS = Path(__file__).resolve().parent / 'fixtures' / 'variants_07' / 'conv_loops.py'


@pytest.mark.slow
def test_a_loop_based_convolution_keeps_full_marks(tmp_path, mnist_dir, monkeypatch):
    monkeypatch.setenv('MLP_DATA_DIR', str(mnist_dir))
    folder = tmp_path / 'class'
    folder.mkdir()
    cell = LOOPS.read_text(encoding='utf-8')
    nbformat.write(demo.submission_notebook(REPO_ROOT, ASSIGNMENT, cell), str(folder / 'loops.ipynb'))
    spec = load_spec(ASSIGNMENT)
    reports, _ = batch.grade_batch(spec, batch.find_submissions([folder], spec.name), tmp_path / 'grades',
                                   workers=1, progress=False)
    report, = reports
    assert report.status == 'graded', report.error
    autograded = [test for test in report.tests if test.kind != 'manual']
    assert autograded and all(test.status == 'passed' for test in autograded), [
        (test.grade_id, test.status, test.output) for test in autograded if test.status != 'passed']
    assert report.score == pytest.approx(sum(test.max_score for test in autograded))
