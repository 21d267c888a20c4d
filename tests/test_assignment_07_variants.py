"""A correct convolution written as four nested Python loops keeps full marks on lab 7.

The loops give the right values but are slow (tens of seconds for the grader's cases and its
training run), so lab 7's hidden cases and training run are sized for them to finish inside
the budgets instead of timing out. The faster correct variants of lab 7 are graded with the
other assignments' in tests/test_assignments_end_to_end.py.

The slowness is said in the report as feedback (`grade._slowness_notes`), never as lost
points or a timeout; a vectorised solution gets no such note.
"""

from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from autograder import batch, demo, grade
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
    speed = [note for note in report.notes if note.startswith('Speed:')]
    assert len(speed) == 1 and 'ConvolutionalLayer' in speed[0] and 'No points were taken off' in speed[0]


def _graded_solution(tmp_path, mnist_dir, monkeypatch):
    monkeypatch.setenv('MLP_DATA_DIR', str(mnist_dir))
    path = tmp_path / 'solution.ipynb'
    nbformat.write(demo.submission_notebook(REPO_ROOT, ASSIGNMENT), str(path))
    return grade.grade_submission(path, load_spec(ASSIGNMENT), student='solution')


def test_a_vectorised_solution_gets_no_speed_note(tmp_path, mnist_dir, monkeypatch):
    report = _graded_solution(tmp_path, mnist_dir, monkeypatch)
    assert report.status == 'graded'
    assert not [note for note in report.notes if note.startswith('Speed:')], report.notes


def _plan(class_name, *request_ids):
    return SimpleNamespace(item=SimpleNamespace(class_name=class_name),
                           requests=[SimpleNamespace(id=request_id) for request_id in request_ids])


def test_the_speed_note_sums_every_check_of_a_class_and_names_only_slow_ones():
    plans = [_plan('SlowLayer', 'a', 'b'), _plan('SlowLayer', 'c'), _plan('FastLayer', 'd'),
             _plan('NeverRun', 'e')]
    third = grade.SLOW_CLASS_SECONDS / 3
    responses = {'a': SimpleNamespace(seconds=third), 'b': SimpleNamespace(seconds=third),
                 'c': SimpleNamespace(seconds=third * 1.1), 'd': SimpleNamespace(seconds=third * 2)}
    notes = grade._slowness_notes(plans, responses)
    assert len(notes) == 1
    assert 'SlowLayer' in notes[0] and 'over its 2 checks' in notes[0]
    assert grade._slowness_notes(plans[:1], responses) == []  # 2/3 of the threshold
