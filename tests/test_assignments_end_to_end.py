"""Every assignment of the course, graded end to end through the real sandbox.

For each of the six assignments (02 to 07) a small class is built as students make
submissions (autograder.demo: the RELEASED notebook with its exercise cells filled in, plus a
later cell redefining one method or function) and graded once, in one batch with two workers:

* the instructor's solution scores full marks on every autograded item;
* the untouched release scores 0 on every autograded item;
* each one-bug submission of `autograder.demo.EXAMPLE_MISTAKES` loses points on the item of
  the wrong piece, may lose the training item that uses that piece, and keeps full marks on
  every other item;
* correct answers written differently from the model answer (`CORRECT_VARIANTS`) keep full
  marks.

Manual (written-answer) items stay pending throughout. The demo command's `--assignment` is
checked here too, for an assignment other than lab 3.
"""

from pathlib import Path

import nbformat
import pytest

from autograder import batch, demo
from autograder.course.spec import load_spec

REPO_ROOT = Path(__file__).resolve().parents[1]
VARIANTS_07 = Path(__file__).resolve().parent / 'fixtures' / 'variants_07'
ASSIGNMENTS = ['02_single_layer_models', '03_multiple_layer_models', '04_regularisation',
               '05_activation_functions', '06_learning_rules', '07_convolutional_networks']


# Correct answers written the way students write them, differently from the model answer (loops,
# np.where, einsum, other rng calls, epsilon inside the square root, Adam's step-size form of the
# bias correction); each is a later cell on top of the solution and must keep full marks.
CORRECT_VARIANTS = {
    '02_single_layer_models': [
        ('fprop_loops',
         'def single_layer_fprop(inputs, weights, biases):\n'
         '    outputs = np.zeros((inputs.shape[0], weights.shape[0]))\n'
         '    for b in range(inputs.shape[0]):\n'
         '        for k in range(weights.shape[0]):\n'
         '            outputs[b, k] = np.sum(weights[k] * inputs[b]) + biases[k]\n'
         '    return outputs\n'),
        ('error_and_affine_other_forms',
         'class SumOfSquaredDiffsError(SumOfSquaredDiffsError):\n'
         '    def __call__(self, outputs, targets):\n'
         '        return np.square(outputs - targets).sum() / (2. * len(outputs))\n'
         '    def grad(self, outputs, targets):\n'
         '        return (outputs - targets) * (1. / outputs.shape[0])\n'
         'class AffineLayer(AffineLayer):\n'
         '    def fprop(self, inputs):\n'
         '        return np.einsum("kd,bd->bk", self.weights, inputs) + self.biases[None, :]\n'
         '    def grads_wrt_params(self, inputs, grads_wrt_outputs):\n'
         '        return [np.einsum("bk,bd->kd", grads_wrt_outputs, inputs),\n'
         '                np.sum(grads_wrt_outputs, axis=0)]\n'),
        ('step_with_copies',
         'def gradient_descent_step(weights, biases, grads_wrt_weights, grads_wrt_biases,\n'
         '                          learning_rate):\n'
         '    new_weights, new_biases = weights.copy(), biases.copy()\n'
         '    new_weights -= learning_rate * grads_wrt_weights\n'
         '    new_biases -= learning_rate * grads_wrt_biases\n'
         '    return new_weights, new_biases\n'),
    ],
    '03_multiple_layer_models': [
        ('relu_where',
         'class ReluLayer(ReluLayer):\n    def fprop(self, inputs):\n'
         '        return np.where(inputs > 0, inputs, 0.)\n'),
    ],
    '04_regularisation': [
        ('penalties_where',
         'class L1Penalty(L1Penalty):\n    def grad(self, parameter):\n'
         '        return np.where(parameter > 0, self.coefficient,\n'
         '                        np.where(parameter < 0, -self.coefficient, 0.))\n'
         'class L2Penalty(L2Penalty):\n    def __call__(self, parameter):\n'
         '        return self.coefficient * np.sum(parameter * parameter) / 2.\n'),
        ('dropout_binomial_mask',
         'class DropoutLayer(DropoutLayer):\n    def fprop(self, inputs, stochastic=True):\n'
         '        if not stochastic:\n            return self.incl_prob * inputs\n'
         '        shape = (1, inputs.shape[1]) if self.share_across_batch else inputs.shape\n'
         '        self._mask = self.rng.binomial(1, self.incl_prob, size=shape)\n'
         '        return np.where(self._mask == 1, inputs, 0.)\n'),
    ],
    '05_activation_functions': [
        ('leaky_relu_maximum',
         'class LeakyReluLayer(LeakyReluLayer):\n    def fprop(self, inputs):\n'
         '        return np.maximum(inputs, self.alpha * inputs)\n'),
    ],
    '06_learning_rules': [
        ('momentum_slice_assignment',
         'class MomentumLearningRule(MomentumLearningRule):\n'
         '    def update_params(self, grads_wrt_params):\n'
         '        for i, grad in enumerate(grads_wrt_params):\n'
         '            self.moms[i] = self.mom_coeff * self.moms[i] - self.learning_rate * grad\n'
         '            self.params[i][...] = self.params[i] + self.moms[i]\n'),
        ('rmsprop_epsilon_inside',
         'class RMSPropLearningRule(RMSPropLearningRule):\n'
         '    def update_params(self, grads_wrt_params):\n'
         '        for param, mean_sq, grad in zip(self.params, self.mean_sq_grads, grads_wrt_params):\n'
         '            mean_sq[:] = self.beta * mean_sq + (1. - self.beta) * grad ** 2\n'
         '            param -= self.learning_rate * grad / np.sqrt(mean_sq + self.epsilon)\n'),
        ('adam_step_size_form',
         'class AdamLearningRule(AdamLearningRule):\n'
         '    def update_params(self, grads_wrt_params):\n'
         '        self.step_count += 1\n'
         '        t = self.step_count\n'
         '        alpha = self.learning_rate * np.sqrt(1. - self.beta_2 ** t) / (1. - self.beta_1 ** t)\n'
         '        for param, m, v, g in zip(self.params, self.moms_1, self.moms_2, grads_wrt_params):\n'
         '            m *= self.beta_1\n'
         '            m += (1. - self.beta_1) * g\n'
         '            v *= self.beta_2\n'
         '            v += (1. - self.beta_2) * g * g\n'
         '            param -= alpha * m / (np.sqrt(v) + self.epsilon)\n'),
    ],
    # Lab 7's variants are cells kept as files (tests/fixtures/variants_07/); the slow one, a
    # convolution in four Python loops, has a test of its own (test_assignment_07_variants.py).
    '07_convolutional_networks': [
        (name, (VARIANTS_07 / (name + '.py')).read_text(encoding='utf-8'))
        for name in ('pool_loops', 'pool_last_maximum', 'bn_other_forms')],
}


def automatic_items(spec):
    return [item for item in spec.items if 'manual' not in item.checks]


def class_of(assignment):
    """student -> notebook: solution, untouched release, one student per example mistake."""
    notebooks = {'solution': demo.submission_notebook(REPO_ROOT, assignment),
                 'release': demo.released_notebook(REPO_ROOT, assignment)}
    for name, cell, _, _ in demo.EXAMPLE_MISTAKES[assignment]:
        notebooks['mistake_' + name] = demo.submission_notebook(REPO_ROOT, assignment, cell)
    for name, cell in CORRECT_VARIANTS[assignment]:
        notebooks['variant_' + name] = demo.submission_notebook(REPO_ROOT, assignment, cell)
    return notebooks


@pytest.fixture(scope='module', params=ASSIGNMENTS)
def graded(request, tmp_path_factory, mnist_dir):
    """(spec, student -> report) for one assignment's class, graded once."""
    assignment = request.param
    patch = pytest.MonkeyPatch()
    patch.setenv('MLP_DATA_DIR', str(mnist_dir))
    try:
        folder = tmp_path_factory.mktemp(assignment + '-class')
        for student, notebook in class_of(assignment).items():
            nbformat.write(notebook, str(folder / '{0}.ipynb'.format(student)))
        spec = load_spec(assignment)
        submissions = batch.find_submissions([folder], spec.name)
        reports, _ = batch.grade_batch(spec, submissions, tmp_path_factory.mktemp(assignment + '-grades'),
                                       workers=2, progress=False)
    finally:
        patch.undo()
    return spec, {report.student: report for report in reports}


def outputs(report, grade_id):
    return [test.output for test in report.tests if test.grade_id == grade_id]


def test_every_assignment_has_example_mistakes_naming_its_items():
    for assignment in ASSIGNMENTS:
        spec = load_spec(assignment)
        automatic = {item.grade_id for item in automatic_items(spec)}
        training = {item.grade_id for item in spec.items if 'training' in item.checks}
        mistakes = demo.EXAMPLE_MISTAKES[assignment]
        assert len(mistakes) >= 2, assignment
        for name, cell, must_lose, may_lose in mistakes:
            compile(cell, name, 'exec')
            assert must_lose and set(must_lose) <= automatic, (assignment, name)
            assert set(may_lose) <= training, (assignment, name)


def test_the_solution_scores_full_marks(graded):
    spec, reports = graded
    report = reports['solution']
    assert report.status == 'graded', report.error
    scores = report.item_scores()
    for item in automatic_items(spec):
        assert scores[item.grade_id] == pytest.approx(item.points), (
            item.grade_id, outputs(report, item.grade_id))
    for test in report.tests:
        if test.kind == 'manual':
            assert (test.status, test.score) == ('pending', 0.0)
        else:
            assert test.status == 'passed', (test.grade_id, test.output)
    manual_points = sum(item.points for item in spec.items if 'manual' in item.checks)
    assert report.score == pytest.approx(spec.max_score - manual_points)


def test_correct_variants_keep_full_marks(graded):
    spec, reports = graded
    for name, _ in CORRECT_VARIANTS[spec.name]:
        report = reports['variant_' + name]
        assert report.status == 'graded', (name, report.error)
        scores = report.item_scores()
        for item in automatic_items(spec):
            assert scores[item.grade_id] == pytest.approx(item.points), (
                name, item.grade_id, outputs(report, item.grade_id))


def test_the_untouched_release_scores_zero(graded):
    spec, reports = graded
    report = reports['release']
    assert report.status == 'graded', report.error
    scores = report.item_scores()
    for item in automatic_items(spec):
        assert scores[item.grade_id] == 0.0, (item.grade_id, outputs(report, item.grade_id))
    assert report.score == 0.0
    for test in report.tests:
        if test.kind == 'manual':
            assert test.status == 'pending'
        else:
            assert test.status in ('failed', 'error'), test
            assert 'internal error' not in test.output
    # The stubs are what fails: their message names the exercise.
    assert any('NotImplementedError' in test.output and 'Exercise' in test.output
               for test in report.tests)
    assert not any('could not be loaded' in note for note in report.notes), report.notes


def test_one_wrong_piece_loses_its_item_and_at_most_its_training_item(graded):
    spec, reports = graded
    for name, _, must_lose, may_lose in demo.EXAMPLE_MISTAKES[spec.name]:
        report = reports['mistake_' + name]
        assert report.status == 'graded', (name, report.error)
        scores = report.item_scores()
        for item in automatic_items(spec):
            if item.grade_id in must_lose:
                assert scores[item.grade_id] < item.points, (name, item.grade_id)
                assert any(test.status in ('failed', 'error') for test in report.tests
                           if test.grade_id == item.grade_id)
            elif item.grade_id not in may_lose:
                assert scores[item.grade_id] == pytest.approx(item.points), (
                    name, item.grade_id, outputs(report, item.grade_id))
        for test in report.tests:
            if test.kind == 'manual':
                assert test.status == 'pending'


def test_example_class_of_another_assignment(tmp_path):
    paths = demo.write_example_submissions(REPO_ROOT, tmp_path, '06_learning_rules')
    names = sorted(path.stem for path in paths)
    expected = sorted(['alice_solution', 'bob_untouched', 'oscar_not_a_notebook'] + [
        'student_' + name for name, _, _, _ in demo.EXAMPLE_MISTAKES['06_learning_rules']])
    assert names == expected
    solution = nbformat.read(str(tmp_path / 'alice_solution.ipynb'), as_version=4)
    release = demo.released_notebook(REPO_ROOT, '06_learning_rules')
    sources = demo.solution_sources(REPO_ROOT, '06_learning_rules')
    filled = [cell.source for cell in solution.cells if cell.source in sources.values()]
    assert filled == list(sources.values())  # each exercise cell got its own model answer
    assert len(solution.cells) == len(release.cells)


@pytest.mark.timeout(600)
def test_demo_command_grades_another_assignment(tmp_path, monkeypatch, mnist_dir, capsys):
    monkeypatch.setenv('MLP_DATA_DIR', str(mnist_dir))
    assert demo.main_demo(tmp_path / 'out', '02_single_layer_models') == 0
    printed = capsys.readouterr().out
    assert 'Releasing 02_single_layer_models' in printed
    grades = tmp_path / 'out' / 'grades'
    assert (grades / 'grades.csv').is_file()
    assert (grades / 'alice_solution.md').is_file()
    assert demo.main_demo(tmp_path / 'out2', '09_no_such_lab') == 2
    assert 'unknown assignment' in capsys.readouterr().err
