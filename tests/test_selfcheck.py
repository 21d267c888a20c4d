"""Tests of the student self-check: public checks only, and a word on what grading adds."""

from pathlib import Path

import nbformat
import pytest

from autograder import demo
from autograder.grade import grade_submission
from autograder.selfcheck import format_self_check
from autograder.course.spec import load_spec

LAB3 = '03_multiple_layer_models'
LAB5 = '05_activation_functions'
REPO_ROOT = Path(__file__).resolve().parents[1]
SLIP = '''class TanhLayer(TanhLayer):
    def bprop(self, inputs, outputs, grads_wrt_outputs):
        return grads_wrt_outputs * (1. - outputs)
'''


@pytest.fixture(scope='module')
def checked(tmp_path_factory):
    """Self-check reports (public checks only) of a few lab 3 notebooks."""
    spec = load_spec(LAB3)
    folder = tmp_path_factory.mktemp('selfcheck')
    notebooks = {
        'solution': demo.submission_notebook(REPO_ROOT, LAB3),
        'release': demo.released_notebook(REPO_ROOT, LAB3),
        'slip': demo.submission_notebook(REPO_ROOT, LAB3, SLIP),
    }
    reports = {}
    for name, notebook in notebooks.items():
        path = folder / '{0}.ipynb'.format(name)
        nbformat.write(notebook, str(path))
        reports[name] = grade_submission(path, spec, student=name, public_only=True)
    return spec, reports


def test_self_check_runs_public_checks_only(checked):
    spec, reports = checked
    for report in reports.values():
        assert report.tests
        for test in report.tests:
            assert test.public, test.name
            assert test.kind in ('fixed', 'gradcheck', 'property'), test.kind
            assert 'hidden' not in test.name
    # Every method item has its notebook case, a property check, and bprop a gradcheck.
    kinds = sorted(t.kind for t in reports['solution'].tests if t.grade_id == 'tanh_bprop')
    assert kinds == ['fixed', 'gradcheck', 'property']


def test_self_check_of_the_solution(checked):
    spec, reports = checked
    text = format_self_check(spec, reports['solution'])
    total = len(reports['solution'].tests)
    assert '{0} of {0} public checks passed.'.format(total) in text
    assert text.count('[ok  ]') == total
    assert 'public checks only; isolation: ' in text


def test_self_check_says_which_hidden_kinds_grading_adds_without_showing_them(checked):
    spec, reports = checked
    text = format_self_check(spec, reports['solution'])
    assert 'When grading, the grader also runs: hidden fixed test cases' in text
    assert 'a short MNIST training run using your class (2)' in text
    assert '(8)' in text  # 4 method items x 2 hidden cases
    assert 'Written answers (deeper_models_answer) are graded by your instructor.' in text
    for secret in ('"edges"', '"random"', '700', '1e-07'):
        assert secret not in text


def test_self_check_of_the_release_shows_what_is_missing(checked):
    spec, reports = checked
    text = format_self_check(spec, reports['release'])
    assert '0 of {0} public checks passed.'.format(len(reports['release'].tests)) in text
    assert '[ERROR]' in text and 'NotImplementedError' in text


def test_self_check_of_a_slip_shows_the_visible_values_and_the_diagnosis(checked):
    spec, reports = checked
    text = format_self_check(spec, reports['slip'])
    assert '[FAILED] TanhLayer.bprop matches the reference on the notebook\'s test arrays' in text
    assert 'got' in text and 'expected' in text and 'looks like d tanh/dx was taken as 1 - y' in text
    assert '[ok  ] TanhLayer.fprop' in text


def test_self_check_of_a_file_that_is_not_a_notebook(tmp_path):
    spec = load_spec(LAB5)
    path = tmp_path / '05_Activation_functions.ipynb'
    path.write_bytes(b'')
    report = grade_submission(path, spec, student='x', public_only=True)
    text = format_self_check(spec, report)
    assert text.startswith('Your notebook cannot be graded: ')
    assert 'empty' in text


def test_lab5_hidden_kinds_are_counted_from_its_spec():
    spec = load_spec(LAB5)
    solution = spec.items[0]
    report_stub = type('R', (), {'status': 'graded', 'tests': [], 'submission': 'x.ipynb',
                                 'isolation': 'bwrap'})()
    text = format_self_check(spec, report_stub)
    assert 'hidden fixed test cases (edge values such as 0 and large magnitudes) (18)' in text
    assert 'a short MNIST training run using your class (4)' in text
    assert 'activation_comparison_answer' in text
    assert solution.grade_id == 'leaky_relu_fprop'
