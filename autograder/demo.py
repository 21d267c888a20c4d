"""`mlp-autograde demo [--assignment NAME]`: release, write a small class of submissions, grade.

TRUSTED. The example submissions are made from the released student
notebook: the instructor's solution, the untouched release, a few typical
mistakes (each a later cell that redefines one method, as students do),
and a file that is not a notebook; lab 3's class (the default) also has a
notebook whose classes were moved into a fresh notebook with experiments
left in, and a hostile notebook. `EXAMPLE_MISTAKES` lists the one-bug
students of every assignment with the items each must (and may) lose.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat

DEMO_ASSIGNMENT = '03_multiple_layer_models'

_TANH_BPROP_SLIP = '''class TanhLayer(TanhLayer):
    def bprop(self, inputs, outputs, grads_wrt_outputs):
        return grads_wrt_outputs * (1. - outputs)
'''
_RELU_FPROP_ABS = '''class ReluLayer(ReluLayer):
    def fprop(self, inputs):
        return np.abs(inputs)
'''
_RELU_FORGOT_GRADS = '''class ReluLayer(ReluLayer):
    def bprop(self, inputs, outputs, grads_wrt_outputs):
        return (inputs > 0).astype(float)
'''
_HOSTILE = '''import numpy as np
np.allclose = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
from mlp.layers import Layer

class TanhLayer(Layer):
    def fprop(self, inputs):
        return inputs
    def bprop(self, inputs, outputs, grads_wrt_outputs):
        return grads_wrt_outputs

class ReluLayer(TanhLayer):
    pass

try:
    import mlp.layers as _layers
    from autograder.checks import oracle  # the grader's own package: not importable in the sandbox
except Exception:
    pass
'''
_EXPERIMENT = '''# my long experiment, left in the notebook
train_data = MNISTDataProvider('train', rng=rng)
for hidden in [50, 100, 200, 400]:
    for epoch in range(100):
        pass
'''


# Typical one-bug submissions of each assignment, beside lab 3's demo class: (student, the
# later cell that redefines one method or function as students do, the items it must cost
# points on, the items it may also cost). A wrong piece costs points on its own item (all of
# them unless the bug spares some of the item's checks, as a dropout bug in evaluation mode
# only spares the training-mode properties); the training item that uses the piece may go
# too; every other item keeps its marks.
EXAMPLE_MISTAKES = {
    '02_single_layer_models': [
        ('fprop_forgot_biases',
         'def single_layer_fprop(inputs, weights, biases):\n    return inputs.dot(weights.T)\n',
         ['single_layer_fprop'], []),
        ('error_grad_without_batch_mean',
         'class SumOfSquaredDiffsError(SumOfSquaredDiffsError):\n'
         '    def grad(self, outputs, targets):\n        return outputs - targets\n',
         ['sum_of_squared_diffs_grad'], []),
        ('affine_bias_grads_averaged',
         'class AffineLayer(AffineLayer):\n'
         '    def grads_wrt_params(self, inputs, grads_wrt_outputs):\n'
         '        return [grads_wrt_outputs.T.dot(inputs), grads_wrt_outputs.mean(axis=0)]\n',
         ['affine_grads_wrt_params'], ['affine_training']),
        ('step_uphill',
         'def gradient_descent_step(weights, biases, grads_wrt_weights, grads_wrt_biases,\n'
         '                          learning_rate):\n'
         '    return (weights + learning_rate * grads_wrt_weights,\n'
         '            biases + learning_rate * grads_wrt_biases)\n',
         ['gradient_descent_step'], []),
    ],
    '03_multiple_layer_models': [
        ('tanh_bprop_slip',
         'class TanhLayer(TanhLayer):\n    def bprop(self, inputs, outputs, grads_wrt_outputs):\n'
         '        return grads_wrt_outputs * (1. - outputs)\n',
         ['tanh_bprop'], ['tanh_training']),
        ('relu_fprop_abs',
         'class ReluLayer(ReluLayer):\n    def fprop(self, inputs):\n        return np.abs(inputs)\n',
         ['relu_fprop'], ['relu_training']),
    ],
    '04_regularisation': [
        ('l1_grad_without_coefficient',
         'class L1Penalty(L1Penalty):\n    def grad(self, parameter):\n'
         '        return np.sign(parameter)\n',
         ['l1_grad'], ['l1_training']),
        ('l2_value_without_half',
         'class L2Penalty(L2Penalty):\n    def __call__(self, parameter):\n'
         '        return self.coefficient * (parameter ** 2).sum()\n',
         ['l2_call'], ['l2_training']),
        ('dropout_evaluation_unscaled',
         'class DropoutLayer(DropoutLayer):\n    def fprop(self, inputs, stochastic=True):\n'
         '        if not stochastic:\n            return inputs\n'
         '        return super().fprop(inputs, stochastic)\n',
         ['dropout_fprop'], ['dropout_training']),
        ('dropout_bprop_new_mask',
         'class DropoutLayer(DropoutLayer):\n'
         '    def bprop(self, inputs, outputs, grads_wrt_outputs):\n'
         '        return grads_wrt_outputs * (self.rng.uniform(size=inputs.shape) < self.incl_prob)\n',
         ['dropout_bprop'], ['dropout_training']),
    ],
    '05_activation_functions': [
        ('elu_bprop_without_alpha',
         'class ELULayer(ELULayer):\n    def bprop(self, inputs, outputs, grads_wrt_outputs):\n'
         '        return grads_wrt_outputs * np.where(inputs > 0, 1., outputs)\n',
         ['elu_bprop'], ['elu_training']),
        ('prelu_grads_without_min',
         'class ParametricReluLayer(ParametricReluLayer):\n'
         '    def grads_wrt_params(self, inputs, grads_wrt_outputs):\n'
         '        return [np.array([(grads_wrt_outputs * inputs).sum()])]\n',
         ['prelu_grads_wrt_params'], ['prelu_training']),
    ],
    '06_learning_rules': [
        ('momentum_wrong_sign',
         'class MomentumLearningRule(MomentumLearningRule):\n'
         '    def update_params(self, grads_wrt_params):\n'
         '        for param, mom, grad in zip(self.params, self.moms, grads_wrt_params):\n'
         '            mom *= self.mom_coeff\n'
         '            mom += self.learning_rate * grad\n'
         '            param += mom\n',
         ['momentum_learning_rule'], ['momentum_training']),
        ('rmsprop_not_in_place',
         'class RMSPropLearningRule(RMSPropLearningRule):\n'
         '    def update_params(self, grads_wrt_params):\n'
         '        for param, mean_sq, grad in zip(self.params, self.mean_sq_grads, grads_wrt_params):\n'
         '            mean_sq *= self.beta\n'
         '            mean_sq += (1. - self.beta) * grad ** 2\n'
         '            param = param - self.learning_rate * grad / (np.sqrt(mean_sq) + self.epsilon)\n',
         ['rmsprop_learning_rule'], ['rmsprop_training']),
        ('adam_without_bias_correction',
         'class AdamLearningRule(AdamLearningRule):\n'
         '    def update_params(self, grads_wrt_params):\n'
         '        for param, mom_1, mom_2, grad in zip(\n'
         '                self.params, self.moms_1, self.moms_2, grads_wrt_params):\n'
         '            mom_1 *= self.beta_1\n'
         '            mom_1 += (1. - self.beta_1) * grad\n'
         '            mom_2 *= self.beta_2\n'
         '            mom_2 += (1. - self.beta_2) * grad ** 2\n'
         '            param -= self.learning_rate * mom_1 / (np.sqrt(mom_2) + self.epsilon)\n',
         ['adam_learning_rule'], ['adam_training']),
        ('cosine_without_discount',
         'class CosineAnnealingWithWarmRestarts(CosineAnnealingWithWarmRestarts):\n'
         '    def update_learning_rule(self, learning_rule, epoch_number):\n'
         '        discount = self.max_learning_rate_discount_factor\n'
         '        self.max_learning_rate_discount_factor = 1.\n'
         '        try:\n'
         '            return super().update_learning_rule(learning_rule, epoch_number)\n'
         '        finally:\n'
         '            self.max_learning_rate_discount_factor = discount\n',
         ['cosine_scheduler'], []),
    ],
    '07_convolutional_networks': [
        ('conv_fprop_cross_correlation',
         'class ConvolutionalLayer(ConvolutionalLayer):\n'
         '    def fprop(self, inputs):\n'
         '        windows = sliding_window_view(inputs, self.kernels.shape[2:], axis=(2, 3))\n'
         '        return (np.einsum("ncijpq,fcpq->nfij", windows, self.kernels)\n'
         '                + self.biases[None, :, None, None])\n',
         ['conv_fprop'], ['conv_training']),
        ('conv_bprop_kernel_not_flipped',
         'class ConvolutionalLayer(ConvolutionalLayer):\n'
         '    def bprop(self, inputs, outputs, grads_wrt_outputs):\n'
         '        grads = np.zeros(inputs.shape)\n'
         '        out_1, out_2 = grads_wrt_outputs.shape[2:]\n'
         '        for p in range(self.kernel_dim_1):\n'
         '            for q in range(self.kernel_dim_2):\n'
         '                grads[:, :, p:p + out_1, q:q + out_2] += np.einsum(\n'
         '                    "nfij,fc->ncij", grads_wrt_outputs, self.kernels[:, :, p, q])\n'
         '        return grads\n',
         ['conv_bprop'], []),
        ('conv_bias_grads_averaged',
         'class ConvolutionalLayer(ConvolutionalLayer):\n'
         '    def grads_wrt_params(self, inputs, grads_wrt_outputs):\n'
         '        grads = super().grads_wrt_params(inputs, grads_wrt_outputs)\n'
         '        return [grads[0], grads_wrt_outputs.mean(axis=(0, 2, 3))]\n',
         ['conv_grads_wrt_params'], ['conv_training']),
        ('pool_bprop_to_every_element',
         'class MaxPooling2DLayer(MaxPooling2DLayer):\n'
         '    def bprop(self, inputs, outputs, grads_wrt_outputs):\n'
         '        s = self.pool_size\n'
         '        return np.repeat(np.repeat(grads_wrt_outputs, s, axis=2), s, axis=3)\n',
         ['pool_bprop'], []),
        ('pool_bprop_to_every_tied_maximum',
         'class MaxPooling2DLayer(MaxPooling2DLayer):\n'
         '    def bprop(self, inputs, outputs, grads_wrt_outputs):\n'
         '        s = self.pool_size\n'
         '        up = np.repeat(np.repeat(outputs, s, axis=2), s, axis=3)\n'
         '        return np.repeat(np.repeat(grads_wrt_outputs, s, axis=2), s, axis=3) * (inputs == up)\n',
         ['pool_bprop'], []),
        ('bn_statistics_over_features',
         'class BatchNormalizationLayer(BatchNormalizationLayer):\n'
         '    def fprop(self, inputs, stochastic=True):\n'
         '        mean = inputs.mean(axis=1, keepdims=True)\n'
         '        var = inputs.var(axis=1, keepdims=True)\n'
         '        return self.gamma * (inputs - mean) / np.sqrt(var + self.epsilon) + self.beta\n',
         ['bn_fprop'], []),
        ('bn_bprop_ignores_batch_statistics',
         'class BatchNormalizationLayer(BatchNormalizationLayer):\n'
         '    def bprop(self, inputs, outputs, grads_wrt_outputs):\n'
         '        return grads_wrt_outputs * self.gamma / np.sqrt(inputs.var(axis=0) + self.epsilon)\n',
         ['bn_bprop'], []),
    ],
}


def _is_solution_cell(cell) -> bool:
    """An exercise cell: nbgrader `solution` code that is not itself graded."""
    meta = cell.get('metadata', {}).get('nbgrader', {})
    return cell.cell_type == 'code' and bool(meta.get('solution')) and not meta.get('grade')


def solution_sources(course_root: Path, assignment: str = DEMO_ASSIGNMENT) -> dict[str, str]:
    """The exercise cells' model answers from an assignment's source notebook, markers removed.

    Returns:
        grade_id -> code, in notebook order (lab 3 has one such cell, lab 2 four).
    """
    from autograder.course.spec import load_spec
    spec = load_spec(assignment, course_root)
    notebook = nbformat.read(str(spec.source_notebook), as_version=4)
    sources = {cell.metadata.nbgrader.grade_id:
               re.sub(r'^\s*### (BEGIN|END) SOLUTION\s*$\n?', '', cell.source, flags=re.M)
               for cell in notebook.cells if _is_solution_cell(cell)}
    if not sources:
        raise RuntimeError('the source notebook of {0} has no exercise (solution) cell'.format(
            assignment))
    return sources


def solution_source(course_root: Path, assignment: str = DEMO_ASSIGNMENT) -> str:
    """All of an assignment's model answers as one piece of code (one cell's worth).

    For a lab with one exercise cell (labs 3 and 5) this is that cell's code;
    otherwise the cells' codes one after the other, as a student who put
    everything into one cell would have it.
    """
    return '\n\n\n'.join(solution_sources(course_root, assignment).values())


def _with_solution(student_notebook, solution, *extra_cells: str):
    """The student notebook with its exercise cells filled in, plus `extra_cells` at the end.

    Args:
        student_notebook: The released notebook.
        solution: grade_id -> code for each exercise cell, or one piece of code for the
            first exercise cell (the other exercise cells are then emptied, so that their
            stubs do not redefine what the code defines).
        *extra_cells: Code cells appended at the end.
    """
    notebook = nbformat.from_dict(student_notebook)
    exercise_cells = [cell for cell in notebook.cells if _is_solution_cell(cell)]
    if isinstance(solution, str):
        for index, cell in enumerate(exercise_cells):
            cell.source = solution if index == 0 else ''
    else:
        for cell in exercise_cells:
            cell.source = solution.get(cell.metadata.nbgrader.grade_id, cell.source)
    for source in extra_cells:
        notebook.cells.append(nbformat.v4.new_code_cell(source))
    return notebook


def released_notebook(course_root: Path, assignment: str = DEMO_ASSIGNMENT):
    """The released student notebook of an assignment (as students receive it)."""
    from autograder.course.spec import load_spec
    spec = load_spec(assignment, course_root)
    return nbformat.read(str(spec.student_mlp_dir / spec.notebook), as_version=4)


def submission_notebook(course_root: Path, assignment: str = DEMO_ASSIGNMENT, *extra_cells: str,
                        solution: str | None = None):
    """A typical submission: the released notebook with its solution cell filled in.

    Args:
        course_root: The course folder (holds source/ and release/).
        assignment: The assignment name.
        *extra_cells: Code cells appended at the end (e.g. a later cell that
            redefines one method, as students do).
        solution: The code put into the first exercise cell, the others emptied
            (default: each exercise cell gets the instructor's solution).

    Returns:
        An nbformat notebook.
    """
    solution = solution_sources(course_root, assignment) if solution is None else solution
    return _with_solution(released_notebook(course_root, assignment), solution, *extra_cells)


def _with_stable_cell_ids(notebook, name: str, release_ids: set[str]):
    """The notebook with the same cell ids on every run, so that a second demo regrades nothing.

    Cells copied from the release keep its ids (the release is deterministic); cells the
    demo adds would get random ids from nbformat, and get ids from their place instead.
    """
    stem = re.sub(r'[^A-Za-z0-9]+', '-', name)[:40]
    for index, cell in enumerate(notebook.cells):
        if cell.get('id') not in release_ids:
            cell['id'] = 'demo-{0}-{1}'.format(stem, index)
    return notebook


def write_example_submissions(course_root: Path, folder: Path,
                              assignment: str = DEMO_ASSIGNMENT) -> list[Path]:
    """Writes the demo class of an assignment into `folder` and returns the files.

    Lab 3's class shows the grader's range (mistakes, moved cells, a hostile notebook, a
    file that is not a notebook). Any other assignment's class is the instructor's solution,
    the untouched release, one student per entry of `EXAMPLE_MISTAKES` and the file that is
    not a notebook.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if assignment != DEMO_ASSIGNMENT:
        return _write_assignment_class(course_root, folder, assignment)
    release = course_root / 'release' / DEMO_ASSIGNMENT / '03_Multiple_layer_models.ipynb'
    student = nbformat.read(str(release), as_version=4)
    solution = solution_source(course_root)
    release_ids = {cell.get('id') for cell in student.cells}
    moved = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell('My lab 3 work (copied into a new notebook)'),
        nbformat.v4.new_code_cell('import numpy as np\nfrom mlp.layers import Layer\n'
                                  'from mlp.data_providers import MNISTDataProvider\n'
                                  'rng = np.random.RandomState(1)'),
        nbformat.v4.new_code_cell(_EXPERIMENT),
        nbformat.v4.new_code_cell('%matplotlib inline\n!ls -la\n' + solution),
        nbformat.v4.new_code_cell(_EXPERIMENT),
    ])
    notebooks = {
        'alice_solution': _with_solution(student, solution),
        'bob_untouched': student,
        'carol_tanh_bprop_slip': _with_solution(student, solution, _TANH_BPROP_SLIP),
        'dave_relu_abs': _with_solution(student, solution, _RELU_FPROP_ABS),
        'erin_relu_forgot_grads': _with_solution(student, solution, _RELU_FORGOT_GRADS),
        'frank_moved_cells': moved,
        'mallory_hostile': _with_solution(student, _HOSTILE),
    }
    return _write_class(folder, notebooks, release_ids)


def _write_class(folder: Path, notebooks: dict, release_ids: set[str]) -> list[Path]:
    """Writes each notebook as <student>.ipynb with stable cell ids, then a file that is no notebook."""
    paths = []
    for name, notebook in notebooks.items():
        path = folder / '{0}.ipynb'.format(name)
        nbformat.write(_with_stable_cell_ids(notebook, name, release_ids), str(path))
        paths.append(path)
    broken = folder / 'oscar_not_a_notebook.ipynb'
    broken.write_text('These are my answers, I could not get Jupyter to work.\n', encoding='utf-8')
    paths.append(broken)
    return paths


def _write_assignment_class(course_root: Path, folder: Path, assignment: str) -> list[Path]:
    student = released_notebook(course_root, assignment)
    solutions = solution_sources(course_root, assignment)
    release_ids = {cell.get('id') for cell in student.cells}
    notebooks = {'alice_solution': _with_solution(student, solutions),
                 'bob_untouched': student}
    for name, cell, _, _ in EXAMPLE_MISTAKES.get(assignment, []):
        notebooks['student_' + name] = _with_solution(student, solutions, cell)
    return _write_class(folder, notebooks, release_ids)


def demo_course(source_root: Path, out: Path, assignment: str = DEMO_ASSIGNMENT) -> Path:
    """OUT/course: a copy of what a release reads (nbgrader_config.py, source/<assignment>, reference/mlp).

    The demo releases and grades there, so that it writes only under its own output folder
    (never into the course's release/, where students or instructors may keep files).
    """
    course = out / 'course'
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '.ipynb_checkpoints')
    course.mkdir(parents=True, exist_ok=True)
    shutil.copy(source_root / 'nbgrader_config.py', course / 'nbgrader_config.py')
    for part in (Path('source') / assignment, Path('reference') / 'mlp'):
        target = course / part
        if target.exists():
            shutil.rmtree(target)  # the demo's own copy, rewritten from the course each time
        shutil.copytree(source_root / part, target, ignore=ignore)
    return course


def main_demo(out: Path, assignment: str = DEMO_ASSIGNMENT) -> int:
    """Releases an assignment (lab 3 by default) into OUT/course, writes its example class into OUT/submissions and grades it into OUT/grades."""
    import sys

    from autograder import batch
    from autograder.course.release import release_assignment
    from autograder.outputs.report import class_table
    from autograder.course.spec import default_course_root, list_assignments, load_spec

    known = list_assignments()
    if assignment not in known:
        print('mlp-autograde demo: unknown assignment {0!r}; the course has: {1}.'.format(
            assignment, ', '.join(known)), file=sys.stderr)
        return 2
    course_root = demo_course(default_course_root(), out, assignment)
    print('Releasing {0} with nbgrader into {1} ...'.format(assignment, course_root / 'release'))
    release_assignment(assignment, course_root=course_root)
    submissions_dir = out / 'submissions'
    written = set(write_example_submissions(course_root, submissions_dir, assignment))
    for stale in submissions_dir.glob('*.ipynb'):  # left by a demo of another assignment
        if stale not in written:
            stale.unlink()
    spec = load_spec(assignment, course_root)
    submissions = batch.find_submissions([submissions_dir], spec.name)
    print('Grading {0} example submissions into {1} ...'.format(len(submissions), out / 'grades'))
    reports, summary = batch.grade_batch(spec, submissions, out / 'grades', workers=2)
    print(class_table(spec, reports))
    from autograder.cli import class_summary
    print(class_summary(spec, reports, summary, out / 'grades'))
    print('Feedback for each student: {0}/<student>.md; class sheet: {0}/grades.csv'.format(out / 'grades'))
    print('Isolation: {0}; {1:.2f} s per submission on average.'.format(
        ', '.join(summary['isolation']), summary['timing']['mean_seconds_per_submission'] or 0))
    return 0
