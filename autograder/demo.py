"""`mlp-autograde demo`: release lab 3, write a small class of submissions, grade it.

TRUSTED. The example submissions are made from the released student
notebook: the instructor's solution, the untouched release, a few typical
mistakes (each a later cell that redefines one method, as students do),
a notebook whose classes were moved into a fresh notebook with experiments
left in, a hostile notebook, and a file that is not a notebook.
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


def _first_class(assignment: str, course_root: Path) -> str:
    from autograder.course.spec import load_spec
    return next(iter(load_spec(assignment, course_root).classes))


def solution_source(course_root: Path, assignment: str = DEMO_ASSIGNMENT) -> str:
    """The solution cell's code from an assignment's source notebook, markers removed.

    The solution cell is the code cell that defines the first class of the
    assignment's grading spec (for lab 3, the cell with TanhLayer and ReluLayer).
    """
    from autograder.course.spec import load_spec
    spec = load_spec(assignment, course_root)
    first_class = next(iter(spec.classes))
    notebook = nbformat.read(str(spec.source_notebook), as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == 'code' and 'class {0}'.format(first_class) in cell.source:
            return re.sub(r'^\s*### (BEGIN|END) SOLUTION\s*$\n?', '', cell.source, flags=re.M)
    raise RuntimeError('the source notebook of {0} has no cell defining {1}'.format(assignment, first_class))


def _with_solution(student_notebook, solution: str, *extra_cells: str, class_name: str = 'TanhLayer'):
    notebook = nbformat.from_dict(student_notebook)
    for cell in notebook.cells:
        if cell.cell_type == 'code' and 'class {0}'.format(class_name) in cell.source:
            cell.source = solution
            break
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
        solution: The code put into the solution cell (default: the
            instructor's solution).

    Returns:
        An nbformat notebook.
    """
    solution = solution_source(course_root, assignment) if solution is None else solution
    return _with_solution(released_notebook(course_root, assignment), solution, *extra_cells,
                          class_name=_first_class(assignment, course_root))


def write_example_submissions(course_root: Path, folder: Path) -> list[Path]:
    """Writes the demo class into `folder` and returns the files."""
    folder.mkdir(parents=True, exist_ok=True)
    release = course_root / 'release' / DEMO_ASSIGNMENT / '03_Multiple_layer_models.ipynb'
    student = nbformat.read(str(release), as_version=4)
    solution = solution_source(course_root)
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
    paths = []
    for name, notebook in notebooks.items():
        path = folder / '{0}.ipynb'.format(name)
        nbformat.write(notebook, str(path))
        paths.append(path)
    broken = folder / 'oscar_not_a_notebook.ipynb'
    broken.write_text('These are my answers, I could not get Jupyter to work.\n', encoding='utf-8')
    paths.append(broken)
    return paths


def main_demo(out: Path) -> int:
    """Releases lab 3, writes the example class into OUT/submissions and grades it into OUT/grades."""
    from autograder import batch
    from autograder.course.release import release_assignment
    from autograder.outputs.report import class_table
    from autograder.course.spec import default_course_root, load_spec

    course_root = default_course_root()
    print('Releasing {0} with nbgrader ...'.format(DEMO_ASSIGNMENT))
    release_assignment(DEMO_ASSIGNMENT, course_root=course_root)
    submissions_dir = out / 'submissions'
    if submissions_dir.exists():
        shutil.rmtree(submissions_dir)
    write_example_submissions(course_root, submissions_dir)
    spec = load_spec(DEMO_ASSIGNMENT, course_root)
    submissions = batch.find_submissions([submissions_dir], spec.name)
    print('Grading {0} example submissions into {1} ...'.format(len(submissions), out / 'grades'))
    reports, summary = batch.grade_batch(spec, submissions, out / 'grades', workers=2)
    print(class_table(spec, reports))
    print('Feedback for each student: {0}/<student>.md; class sheet: {0}/grades.csv'.format(out / 'grades'))
    print('Isolation: {0}; {1:.2f} s per submission on average.'.format(
        ', '.join(summary['isolation']), summary['timing']['mean_seconds_per_submission'] or 0))
    return 0
