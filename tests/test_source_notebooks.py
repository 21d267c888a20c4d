"""Tests of the nbgrader source notebooks under source/.

Checks that the notebooks carry the grading contract in their nbgrader metadata (ids, points,
cell kinds; these are the grader's single source of truth), that every code solution region is
followed by the hand-written stub students will see, that the visible test arrays agree with the
reference framework, and that each notebook runs top to bottom, hidden tests included, with the
smoke-test switch on.
"""

import ast
import json
import os
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

import mlp.layers as reference_layers

REPO_ROOT = Path(__file__).resolve().parent.parent

NOTEBOOKS = {
    '03_multiple_layer_models': 'source/03_multiple_layer_models/03_Multiple_layer_models.ipynb',
    '05_activation_functions': 'source/05_activation_functions/05_Activation_functions.ipynb',
}

# grade_id -> (points, kind); kind 'auto' = autograded test cell, 'manual' = written answer.
GRADED_ITEMS = {
    '03_multiple_layer_models': {
        'tanh_fprop': (2, 'auto'), 'tanh_bprop': (2, 'auto'),
        'relu_fprop': (2, 'auto'), 'relu_bprop': (2, 'auto'),
        'tanh_training': (1, 'auto'), 'relu_training': (1, 'auto'),
        'deeper_models_answer': (3, 'manual'),
    },
    '05_activation_functions': {
        'leaky_relu_fprop': (1, 'auto'), 'leaky_relu_bprop': (1, 'auto'),
        'elu_fprop': (1, 'auto'), 'elu_bprop': (1, 'auto'),
        'selu_fprop': (1, 'auto'), 'selu_bprop': (1, 'auto'),
        'prelu_fprop': (1, 'auto'), 'prelu_bprop': (1, 'auto'),
        'prelu_grads_wrt_params': (2, 'auto'),
        'leaky_relu_training': (1, 'auto'), 'elu_training': (1, 'auto'),
        'selu_training': (1, 'auto'), 'prelu_training': (1, 'auto'),
        'activation_comparison_answer': (4, 'manual'),
    },
}

SOLUTION_CELLS = {
    '03_multiple_layer_models': 'tanh_relu_solution',
    '05_activation_functions': 'activations_solution',
}

EXERCISE_CLASSES = {
    '03_multiple_layer_models': ['TanhLayer', 'ReluLayer'],
    '05_activation_functions': ['LeakyReluLayer', 'ELULayer', 'SELULayer', 'ParametricReluLayer'],
}

# Read-only cells students must not edit: helpers, test arrays and question prompts.
LOCKED_CELLS = {
    '03_multiple_layer_models': {'training_helper', 'deeper_models_questions',
                                 'exercise3_test_arrays', 'short_training_helper'},
    '05_activation_functions': {'training_helper', 'test_arrays', 'short_training_helper',
                                'activation_comparison_questions'},
}

TEST_ARRAY_CELLS = {
    '03_multiple_layer_models': 'exercise3_test_arrays',
    '05_activation_functions': 'test_arrays',
}

STUB = re.compile(r"^(?P<indent>[ \t]*)raise NotImplementedError\("
                  r"'Exercise (?P<number>\d+): implement (?P<target>\w+\.\w+)'\)$")


def read_source(assignment):
    return nbformat.read(str(REPO_ROOT / NOTEBOOKS[assignment]), as_version=4)


def nbgrader_cells(notebook):
    return {cell.metadata.nbgrader.grade_id: cell for cell in notebook.cells
            if 'nbgrader' in cell.metadata}


@pytest.fixture(params=sorted(NOTEBOOKS), scope='module')
def assignment(request):
    return request.param


def test_every_source_folder_is_covered_here():
    folders = sorted(path.name for path in (REPO_ROOT / 'source').iterdir() if path.is_dir())
    assert folders == sorted(NOTEBOOKS)


def test_metadata_is_valid_nbgrader_schema_3(assignment):
    from nbgrader.nbgraderformat import MetadataValidator

    notebook = read_source(assignment)
    MetadataValidator().validate_nb(notebook)
    for cell in notebook.cells:
        if 'nbgrader' in cell.metadata:
            assert cell.metadata.nbgrader.schema_version == 3
            assert cell.metadata.nbgrader.task is False


def test_graded_items_are_exactly_the_contract(assignment):
    cells = nbgrader_cells(read_source(assignment))
    graded = {grade_id: cell for grade_id, cell in cells.items() if cell.metadata.nbgrader.grade}
    assert sorted(graded) == sorted(GRADED_ITEMS[assignment])
    for grade_id, (points, kind) in GRADED_ITEMS[assignment].items():
        cell = graded[grade_id]
        meta = cell.metadata.nbgrader
        assert meta.points == points, grade_id
        if kind == 'auto':
            assert cell.cell_type == 'code', grade_id
            assert (meta.solution, meta.locked) == (False, True), grade_id
        else:
            assert cell.cell_type == 'markdown', grade_id
            assert (meta.solution, meta.locked) == (True, False), grade_id


def test_one_solution_cell_and_the_locked_cells(assignment):
    cells = nbgrader_cells(read_source(assignment))
    solutions = [grade_id for grade_id, cell in cells.items()
                 if cell.metadata.nbgrader.solution and not cell.metadata.nbgrader.grade]
    assert solutions == [SOLUTION_CELLS[assignment]]
    solution = cells[SOLUTION_CELLS[assignment]]
    assert solution.cell_type == 'code' and solution.metadata.nbgrader.locked is False
    read_only = {grade_id for grade_id, cell in cells.items()
                 if cell.metadata.nbgrader.locked and not cell.metadata.nbgrader.grade}
    assert read_only == LOCKED_CELLS[assignment]


def test_no_outputs_are_stored(assignment):
    for cell in read_source(assignment).cells:
        if cell.cell_type == 'code':
            assert cell.outputs == [] and cell.execution_count is None, cell.id


def test_cells_have_ids_and_grade_cells_have_hidden_tests(assignment):
    notebook = read_source(assignment)
    assert all(cell.get('id') for cell in notebook.cells)
    for grade_id, (_, kind) in GRADED_ITEMS[assignment].items():
        if kind == 'auto':
            source = nbgrader_cells(notebook)[grade_id].source
            assert '### BEGIN HIDDEN TESTS' in source and '### END HIDDEN TESTS' in source


def test_solution_regions_end_with_a_stub_naming_the_exercise(assignment):
    """Each region is followed by `raise NotImplementedError('Exercise N: implement C.m')`.

    nbgrader replaces the region with `# YOUR CODE HERE` (nbgrader_config.py); the raise after
    it is what makes the student version fail loudly, so it must name the enclosing method.
    """
    source = nbgrader_cells(read_source(assignment))[SOLUTION_CELLS[assignment]].source
    lines = source.split('\n')
    methods = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    for number in range(item.lineno, item.end_lineno + 1):
                        methods[number] = '{0}.{1}'.format(node.name, item.name)
    stubbed = []
    for index, line in enumerate(lines):
        if line.strip() == '### BEGIN SOLUTION':
            end = next(i for i in range(index, len(lines)) if lines[i].strip() == '### END SOLUTION')
            match = STUB.match(lines[end + 1])
            assert match is not None, 'no stub after the region ending on line {0}'.format(end + 1)
            assert match.group('indent') == line[:len(line) - len(line.lstrip())]
            assert match.group('target') == methods[end + 2]
            stubbed.append(match.group('target'))
    expected_methods = {'fprop', 'bprop'}
    expected = sorted('{0}.{1}'.format(name, method) for name in EXERCISE_CLASSES[assignment]
                      for method in expected_methods)
    if assignment == '05_activation_functions':
        expected = sorted(expected + ['ParametricReluLayer.grads_wrt_params'])
    assert sorted(stubbed) == expected


def test_only_the_training_helper_reads_the_smoke_test_switch(assignment):
    notebook = read_source(assignment)
    readers = [cell.metadata.get('nbgrader', {}).get('grade_id', cell.id)
               for cell in notebook.cells if 'MLP_SMOKE_TEST' in cell.source]
    assert readers == ['training_helper']


def _test_arrays(assignment):
    namespace = {'np': np}
    source = nbgrader_cells(read_source(assignment))[TEST_ARRAY_CELLS[assignment]].source
    exec(compile(source, TEST_ARRAY_CELLS[assignment], 'exec'), namespace)  # instructor's code
    return namespace


def test_visible_arrays_of_lab_3_agree_with_the_reference():
    arrays = _test_arrays('03_multiple_layer_models')
    inputs, grads = arrays['test_inputs'], arrays['test_grads_wrt_outputs']
    np.testing.assert_allclose(inputs, [[0.1, -0.2, 0.3], [-0.4, 0.5, -0.6]])
    np.testing.assert_allclose(grads, [[5., 10., -10.], [-5., 0., 10.]])
    for name, layer in (('tanh', reference_layers.TanhLayer()),
                        ('relu', reference_layers.ReluLayer())):
        outputs = layer.fprop(inputs)
        np.testing.assert_allclose(arrays['test_{0}_outputs'.format(name)], outputs,
                                   rtol=1e-7, atol=1e-8)
        np.testing.assert_allclose(arrays['test_{0}_grads_wrt_inputs'.format(name)],
                                   layer.bprop(inputs, outputs, grads), rtol=1e-7, atol=1e-8)


def test_visible_arrays_of_lab_5_agree_with_the_reference():
    arrays = _test_arrays('05_activation_functions')
    inputs, grads = arrays['test_inputs'], arrays['test_grads_wrt_outputs']
    assert inputs.shape == grads.shape == (2, 3)
    assert (inputs == 0).any() and (inputs < 0).any() and (inputs > 0).any()
    # Where an input is exactly 0 its output gradient is 0: either derivative convention passes.
    assert (grads[inputs == 0] == 0).all()
    layers = {'leaky_relu': reference_layers.LeakyReluLayer(), 'elu': reference_layers.ELULayer(),
              'selu': reference_layers.SELULayer(), 'prelu': reference_layers.ParametricReluLayer()}
    for name, layer in layers.items():
        outputs = layer.fprop(inputs)
        np.testing.assert_allclose(arrays['test_{0}_outputs'.format(name)], outputs,
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(arrays['test_{0}_grads_wrt_inputs'.format(name)],
                                   layer.bprop(inputs, outputs, grads), rtol=1e-9, atol=1e-12)
    expected = layers['prelu'].grads_wrt_params(inputs, grads)
    got = arrays['test_prelu_grads_wrt_params']
    assert len(got) == 1 and got[0].shape == (1,)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-9)


# --- execution -----------------------------------------------------------------------------

COMPARE_WITH_REFERENCE = '''
import json as _json
import numpy as _np
import mlp.layers as _reference
_rng = _np.random.RandomState(20161006)
_inputs = _rng.uniform(-4., 4., size=(5, 7))
_inputs[0, :3] = [0., 60., -60.]
_grads = _rng.normal(size=(5, 7))
_grads[0, 0] = 0.  # input exactly 0: either derivative convention is fine
_errors = {}
for _name in %r:
    _mine, _theirs = globals()[_name](), getattr(_reference, _name)()
    _y_mine, _y_theirs = _mine.fprop(_inputs.copy()), _theirs.fprop(_inputs.copy())
    _errors[_name] = [
        float(_np.abs(_y_mine - _y_theirs).max()),
        float(_np.abs(_mine.bprop(_inputs, _y_mine, _grads)
                      - _theirs.bprop(_inputs, _y_theirs, _grads)).max())]
    if hasattr(_theirs, 'grads_wrt_params'):
        _errors[_name].append(float(_np.abs(
            _mine.grads_wrt_params(_inputs, _grads)[0]
            - _theirs.grads_wrt_params(_inputs, _grads)[0]).max()))
print(_json.dumps(_errors))
'''


def execute_notebook(notebook, workdir, allow_errors):
    """Runs a notebook with nbclient in `workdir` (the kernel's cwd) and returns it."""
    from nbclient import NotebookClient

    NotebookClient(notebook, timeout=300, kernel_name='python3', allow_errors=allow_errors,
                   resources={'metadata': {'path': str(workdir)}}).execute()
    return notebook


@pytest.fixture
def kernel_env(monkeypatch, mnist_dir):
    """Environment inherited by the notebook kernels: smoke-test mode, data, quiet and lean."""
    monkeypatch.setenv('MLP_SMOKE_TEST', '1')
    monkeypatch.setenv('MLP_DATA_DIR', str(mnist_dir))
    monkeypatch.setenv('MLP_PROGRESS_BAR', '0')
    monkeypatch.setenv('PYTHONDONTWRITEBYTECODE', '1')
    monkeypatch.setenv('OPENBLAS_NUM_THREADS', '1')


def stdout_of(cell):
    return ''.join(output.get('text', '') for output in cell.get('outputs', [])
                   if output.output_type == 'stream' and output.name == 'stdout')


@pytest.mark.timeout(300)
def test_source_notebook_runs_top_to_bottom_with_hidden_tests(assignment, kernel_env, tmp_path):
    notebook = read_source(assignment)
    notebook.cells.append(nbformat.v4.new_code_cell(
        COMPARE_WITH_REFERENCE % (EXERCISE_CLASSES[assignment],)))
    execute_notebook(notebook, tmp_path, allow_errors=False)

    for cell in notebook.cells:
        assert not any(output.output_type == 'error' for output in cell.get('outputs', [])), cell.id
    cells = nbgrader_cells(notebook)
    for grade_id, (_, kind) in GRADED_ITEMS[assignment].items():
        if kind == 'auto':
            assert stdout_of(cells[grade_id]).strip(), grade_id
            # nbgrader's autograde gives 0 points to a test cell that writes to stderr.
            assert not any(output.output_type == 'stream' and output.name == 'stderr'
                           for output in cells[grade_id].outputs), grade_id
    # The hidden regions ran too: their checks print their own confirmations.
    assert 'agree with finite differences' in stdout_of(cells[
        'tanh_bprop' if assignment.startswith('03') else 'selu_bprop'])
    # The notebook's model solution is the reference framework's.
    errors = json.loads(stdout_of(notebook.cells[-1]).strip().splitlines()[-1])
    assert sorted(errors) == sorted(EXERCISE_CLASSES[assignment])
    for name, values in errors.items():
        assert max(values) < 1e-9, (name, values)
    # Smoke-test mode really was on: the helper caps runs at two epochs.
    helper_runs = [stdout_of(cell) for cell in notebook.cells if 'Trained for' in stdout_of(cell)]
    assert helper_runs and all('Trained for 2 epochs' in text for text in helper_runs)
    assert os.listdir(tmp_path) == []  # the notebook writes nothing into its folder
