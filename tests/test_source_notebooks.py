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

import mlp.errors as reference_errors
import mlp.layers as reference_layers
import mlp.learning_rules as reference_learning_rules
import mlp.penalties as reference_penalties
import mlp.schedulers as reference_schedulers

REPO_ROOT = Path(__file__).resolve().parent.parent

NOTEBOOKS = {
    '02_single_layer_models': 'source/02_single_layer_models/02_Single_layer_models.ipynb',
    '03_multiple_layer_models': 'source/03_multiple_layer_models/03_Multiple_layer_models.ipynb',
    '05_activation_functions': 'source/05_activation_functions/05_Activation_functions.ipynb',
    '04_regularisation': 'source/04_regularisation/04_Regularisation.ipynb',
    '06_learning_rules': 'source/06_learning_rules/06_Learning_rules.ipynb',
    '07_convolutional_networks': 'source/07_convolutional_networks/07_Convolutional_networks.ipynb',
}

# grade_id -> (points, kind); kind 'auto' = autograded test cell, 'manual' = written answer.
GRADED_ITEMS = {
    '02_single_layer_models': {
        'single_layer_fprop': (2, 'auto'),
        'sum_of_squared_diffs_call': (1, 'auto'), 'sum_of_squared_diffs_grad': (2, 'auto'),
        'affine_fprop': (1, 'auto'), 'affine_bprop': (2, 'auto'),
        'affine_grads_wrt_params': (2, 'auto'), 'affine_training': (1, 'auto'),
        'gradient_descent_step': (1, 'auto'),
        'single_layer_answers': (4, 'manual'),
    },
    '04_regularisation': {
        'l1_call': (1, 'auto'), 'l1_grad': (1, 'auto'), 'l2_call': (1, 'auto'), 'l2_grad': (1, 'auto'),
        'l1_training': (1, 'auto'), 'l2_training': (1, 'auto'),
        'dropout_fprop': (2, 'auto'), 'dropout_bprop': (2, 'auto'), 'dropout_training': (1, 'auto'),
        'overfitting_answer': (4, 'manual'),
    },
    '06_learning_rules': {
        'momentum_learning_rule': (2, 'auto'), 'rmsprop_learning_rule': (2, 'auto'),
        'adam_learning_rule': (3, 'auto'),
        'momentum_training': (1, 'auto'), 'rmsprop_training': (1, 'auto'), 'adam_training': (1, 'auto'),
        'cosine_scheduler': (2, 'auto'),
        'learning_rules_answer': (4, 'manual'),
    },
    '07_convolutional_networks': {
        'conv_fprop': (3, 'auto'), 'conv_bprop': (3, 'auto'), 'conv_grads_wrt_params': (3, 'auto'),
        'conv_training': (2, 'auto'), 'pool_fprop': (1, 'auto'), 'pool_bprop': (2, 'auto'),
        'bn_fprop': (2, 'auto'), 'bn_bprop': (2, 'auto'), 'bn_grads_wrt_params': (2, 'auto'),
        'conv_answer': (3, 'manual'),
    },
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

# The exercise cells (nbgrader solution cells), in notebook order.
SOLUTION_CELLS = {
    '02_single_layer_models': ['forward_solution', 'error_solution', 'affine_solution',
                               'step_solution'],
    '03_multiple_layer_models': ['tanh_relu_solution'],
    '04_regularisation': ['penalties_solution', 'dropout_solution'],
    '05_activation_functions': ['activations_solution'],
    '06_learning_rules': ['learning_rules_solution', 'scheduler_solution'],
    '07_convolutional_networks': ['conv_solution', 'pool_solution', 'bn_solution'],
}

# The layer classes of the activation-function labs, compared with the reference after a run.
EXERCISE_CLASSES = {
    '03_multiple_layer_models': ['TanhLayer', 'ReluLayer'],
    '05_activation_functions': ['LeakyReluLayer', 'ELULayer', 'SELULayer', 'ParametricReluLayer'],
}

# Every method or function a student writes: each has a solution region and a stub.
STUBBED_TARGETS = {
    '02_single_layer_models': [
        'single_layer_fprop', 'SumOfSquaredDiffsError.__call__', 'SumOfSquaredDiffsError.grad',
        'AffineLayer.fprop', 'AffineLayer.bprop', 'AffineLayer.grads_wrt_params',
        'gradient_descent_step'],
    '03_multiple_layer_models': [
        'TanhLayer.fprop', 'TanhLayer.bprop', 'ReluLayer.fprop', 'ReluLayer.bprop'],
    '04_regularisation': [
        'L1Penalty.__call__', 'L1Penalty.grad', 'L2Penalty.__call__', 'L2Penalty.grad',
        'DropoutLayer.fprop', 'DropoutLayer.bprop'],
    '05_activation_functions': [
        '{0}.{1}'.format(name, method)
        for name in EXERCISE_CLASSES['05_activation_functions'] for method in ('fprop', 'bprop')
    ] + ['ParametricReluLayer.grads_wrt_params'],
    '06_learning_rules': [
        '{0}.{1}'.format(name, method)
        for name in ('MomentumLearningRule', 'RMSPropLearningRule', 'AdamLearningRule')
        for method in ('initialise', 'reset', 'update_params')
    ] + ['CosineAnnealingWithWarmRestarts.update_learning_rule'],
    '07_convolutional_networks': [
        'ConvolutionalLayer.fprop', 'ConvolutionalLayer.bprop', 'ConvolutionalLayer.grads_wrt_params',
        'MaxPooling2DLayer.fprop', 'MaxPooling2DLayer.bprop', 'BatchNormalizationLayer.fprop',
        'BatchNormalizationLayer.bprop', 'BatchNormalizationLayer.grads_wrt_params'],
}

# Read-only cells students must not edit: helpers, test arrays and question prompts.
LOCKED_CELLS = {
    '03_multiple_layer_models': {'training_helper', 'deeper_models_questions',
                                 'exercise3_test_arrays', 'short_training_helper'},
    '05_activation_functions': {'training_helper', 'test_arrays', 'short_training_helper',
                                'activation_comparison_questions'},
    '02_single_layer_models': {'training_helper', 'test_arrays', 'short_training_helper',
                               'single_layer_questions'},
    '04_regularisation': {'training_helper', 'test_arrays', 'short_training_helper',
                          'overfitting_questions'},
    '06_learning_rules': {'training_helper', 'test_arrays', 'short_training_helper',
                          'learning_rules_questions'},
    '07_convolutional_networks': {'training_helper', 'test_arrays', 'short_training_helper',
                                  'experiment_questions'},
}

TEST_ARRAY_CELLS = {
    '02_single_layer_models': 'test_arrays',
    '03_multiple_layer_models': 'exercise3_test_arrays',
    '04_regularisation': 'test_arrays',
    '05_activation_functions': 'test_arrays',
    '06_learning_rules': 'test_arrays',
    '07_convolutional_networks': 'test_arrays',
}

# The statement after a solution region (joined if it spans lines): names a method or a function.
STUB = re.compile(r"^raise NotImplementedError\("
                  r"'Exercise (?P<number>\d+): implement (?P<target>(\w+\.)?\w+)'\)$")


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


def test_solution_cells_and_the_locked_cells(assignment):
    cells = nbgrader_cells(read_source(assignment))
    solutions = [grade_id for grade_id, cell in cells.items()
                 if cell.metadata.nbgrader.solution and not cell.metadata.nbgrader.grade]
    assert solutions == SOLUTION_CELLS[assignment]
    for grade_id in solutions:
        solution = cells[grade_id]
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


def _definitions_by_line(source):
    """Maps each line number of a cell to 'Class.method' or 'function' defined there."""
    names = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            names.update(dict.fromkeys(range(node.lineno, node.end_lineno + 1), node.name))
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    names.update(dict.fromkeys(range(item.lineno, item.end_lineno + 1),
                                               '{0}.{1}'.format(node.name, item.name)))
    return names


def _statement_at(lines, index):
    """The statement starting on lines[index], its continuation lines joined."""
    statement, index = lines[index].strip(), index + 1
    while statement.count('(') > statement.count(')'):
        statement, index = statement + lines[index].strip(), index + 1
    return statement


def test_solution_regions_end_with_a_stub_naming_the_exercise(assignment):
    """Each region is followed by `raise NotImplementedError('Exercise N: implement C.m')`.

    nbgrader replaces the region with `# YOUR CODE HERE` (nbgrader_config.py); the raise after
    it is what makes the student version fail loudly, so it must name the enclosing method (or
    function, named alone).
    """
    cells = nbgrader_cells(read_source(assignment))
    stubbed = []
    for grade_id in SOLUTION_CELLS[assignment]:
        source = cells[grade_id].source
        lines = source.split('\n')
        definitions = _definitions_by_line(source)
        for index, line in enumerate(lines):
            if line.strip() == '### BEGIN SOLUTION':
                end = next(i for i in range(index, len(lines))
                           if lines[i].strip() == '### END SOLUTION')
                match = STUB.match(_statement_at(lines, end + 1))
                assert match is not None, '{0}: no stub after line {1}'.format(grade_id, end + 1)
                indent = line[:len(line) - len(line.lstrip())]
                assert lines[end + 1].startswith(indent + 'raise'), (grade_id, end + 1)
                assert match.group('target') == definitions[end + 2]
                stubbed.append(match.group('target'))
    assert sorted(stubbed) == sorted(STUBBED_TARGETS[assignment])


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


def test_the_generic_notebook_checks_pass_right_and_fail_wrong_answers(capsys):
    from mlp.checks import CheckFailed, check_scalar_gradient, check_values

    weights, biases = np.array([[1., -2.], [0.5, 3.]]), np.array([0.25, -1.])
    check_values((weights, biases), [weights.copy(), biases.copy()], 'pair')
    check_values(0.5, 0.5 + 1e-9, 'number')
    assert capsys.readouterr().out.count('gives the expected values') == 2
    with pytest.raises(CheckFailed, match=r'pair\[1\] returned wrong values at \[1\]'):
        check_values([weights, biases + [0., 1.]], [weights, biases], 'pair')
    with pytest.raises(CheckFailed, match='list of 2 arrays'):
        check_values(weights, [weights, biases], 'pair')
    with pytest.raises(CheckFailed, match='expected shape'):
        check_values(weights.T[:1], weights, 'matrix')
    # A kept fraction within an absolute tolerance, as the dropout checks use it.
    check_values(0.705, 0.7, 'fraction', rtol=0., atol=0.01)
    with pytest.raises(CheckFailed):
        check_values(0.72, 0.7, 'fraction', rtol=0., atol=0.01)

    def squares(w):
        return 0.5 * 3. * np.sum(w ** 2)

    point = np.array([[0.3, -1.2, 2.], [0.7, -0.1, 1.5]])
    check_scalar_gradient(squares, lambda w: 3. * w, point, 'grad')
    with pytest.raises(CheckFailed, match='against finite differences'):
        check_scalar_gradient(squares, lambda w: w, point, 'grad')  # the coefficient forgotten


def test_visible_arrays_of_lab_2_follow_the_formulas():
    arrays = _test_arrays('02_single_layer_models')
    x, w, b = arrays['test_inputs'], arrays['test_weights'], arrays['test_biases']
    y, t, g = arrays['test_outputs'], arrays['test_targets'], arrays['test_grads_wrt_outputs']
    batch_size = x.shape[0]
    assert x.shape == (3, 4) and w.shape == (2, 4) and b.shape == (2,)
    # The formulas of the notebook's background section, written out element by element.
    expected_y = np.array([[sum(w[k, d] * x[n, d] for d in range(4)) + b[k] for k in range(2)]
                           for n in range(batch_size)])
    np.testing.assert_allclose(y, expected_y, rtol=1e-9)
    squared = sum((y[n, k] - t[n, k]) ** 2 for n in range(batch_size) for k in range(2))
    np.testing.assert_allclose(arrays['test_error'], 0.5 * squared / batch_size, rtol=1e-9)
    np.testing.assert_allclose(arrays['test_error_grad'], (y - t) / batch_size, rtol=1e-9)
    np.testing.assert_allclose(arrays['test_grads_wrt_inputs'], np.einsum('nk,kd->nd', g, w),
                               rtol=1e-9)
    np.testing.assert_allclose(arrays['test_grads_wrt_weights'], np.einsum('nk,nd->kd', g, x),
                               rtol=1e-9)
    np.testing.assert_allclose(arrays['test_grads_wrt_biases'], g.sum(axis=0), rtol=1e-9)
    rate = arrays['test_learning_rate']
    np.testing.assert_allclose(arrays['test_stepped_weights'],
                               w - rate * np.einsum('nk,nd->kd', g, x), rtol=1e-9)
    np.testing.assert_allclose(arrays['test_stepped_biases'], b - rate * g.sum(axis=0), rtol=1e-9)
    # ... and the reference framework agrees.
    layer = reference_layers.AffineLayer(4, 2)
    layer.params = [w, b]
    np.testing.assert_allclose(layer.fprop(x), y, rtol=1e-9)
    assert reference_errors.SumOfSquaredDiffsError()(y, t) == pytest.approx(arrays['test_error'])


def test_visible_arrays_of_lab_4_follow_the_formulas():
    arrays = _test_arrays('04_regularisation')
    w = arrays['test_parameter']
    assert (w != 0).all()  # sign(0) conventions differ; the visible case avoids them
    l1, l2 = arrays['test_l1_coefficient'], arrays['test_l2_coefficient']
    np.testing.assert_allclose(arrays['test_l1_value'], l1 * sum(abs(v) for v in w.flat))
    np.testing.assert_allclose(arrays['test_l1_grad'], np.where(w > 0, l1, -l1))
    np.testing.assert_allclose(arrays['test_l2_value'], 0.5 * l2 * sum(v * v for v in w.flat))
    np.testing.assert_allclose(arrays['test_l2_grad'], l2 * w)
    assert reference_penalties.L1Penalty(l1)(w) == pytest.approx(arrays['test_l1_value'])
    assert reference_penalties.L2Penalty(l2)(w) == pytest.approx(arrays['test_l2_value'])
    # "Output is its input or 0" can only be told apart when no input is 0.
    assert (arrays['test_dropout_inputs'] != 0).all()
    assert arrays['test_dropout_grads_wrt_outputs'].shape == arrays['test_dropout_inputs'].shape
    assert 0 < arrays['test_dropout_incl_prob'] < 1


def _independent_steps(rule, weights, biases, grads_sequence, **hyper):
    """The three learning rules of lab 6, straight from the formulas, on copies."""
    params = [weights.copy(), biases.copy()]
    state = [[np.zeros_like(p) for p in params] for _ in range(2)]
    history = []
    for step, grads in enumerate(grads_sequence, 1):
        for i, grad in enumerate(grads):
            if rule == 'momentum':
                state[0][i] = hyper['mom_coeff'] * state[0][i] - hyper['learning_rate'] * grad
                params[i] = params[i] + state[0][i]
            elif rule == 'rmsprop':
                state[0][i] = hyper['beta'] * state[0][i] + (1 - hyper['beta']) * grad ** 2
                params[i] = params[i] - hyper['learning_rate'] * grad / (
                    np.sqrt(state[0][i]) + hyper['epsilon'])
            else:
                state[0][i] = hyper['beta_1'] * state[0][i] + (1 - hyper['beta_1']) * grad
                state[1][i] = hyper['beta_2'] * state[1][i] + (1 - hyper['beta_2']) * grad ** 2
                m_hat = state[0][i] / (1 - hyper['beta_1'] ** step)
                v_hat = state[1][i] / (1 - hyper['beta_2'] ** step)
                params[i] = params[i] - hyper['learning_rate'] * m_hat / (
                    np.sqrt(v_hat) + hyper['epsilon'])
        history.append([p.copy() for p in params])
    return history


def test_visible_arrays_of_lab_6_follow_the_formulas():
    arrays = _test_arrays('06_learning_rules')
    w, b, grads = arrays['test_weights'], arrays['test_biases'], arrays['test_grads']
    hyper = {
        'momentum': dict(learning_rate=0.1, mom_coeff=0.9),
        'rmsprop': dict(learning_rate=0.01, beta=0.9, epsilon=1e-8),
        'adam': dict(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-8),
    }
    for rule, kwargs in hyper.items():
        expected = _independent_steps(rule, w, b, grads, **kwargs)
        got = arrays['test_{0}_params'.format(rule)]
        assert len(got) == 3
        for step in range(3):
            for got_param, expected_param in zip(got[step], expected[step]):
                np.testing.assert_allclose(got_param, expected_param, rtol=1e-9, atol=1e-12)
    # The schedule: periods of 3, 6 and 12 epochs start at epochs 0, 3 and 9.
    kwargs = arrays['test_scheduler_kwargs']
    assert (kwargs['total_iters_per_period'], kwargs['period_iteration_expansion_factor']) == (3, 2.)
    eta_min, eta_max = kwargs['min_learning_rate'], kwargs['max_learning_rate']
    discount = kwargs['max_learning_rate_discount_factor']
    expected_rates = []
    for epoch in range(12):
        index, start, length = [(0, 0, 3), (1, 3, 6), (2, 9, 12)][(epoch >= 3) + (epoch >= 9)]
        top = eta_max * discount ** index
        expected_rates.append(eta_min + 0.5 * (top - eta_min) * (
            1 + np.cos(np.pi * (epoch - start) / length)))
    np.testing.assert_allclose(arrays['test_scheduler_rates'], expected_rates, rtol=1e-9)
    reference = reference_schedulers.CosineAnnealingWithWarmRestarts(**kwargs)
    rule = reference_learning_rules.GradientDescentLearningRule(0.5)
    np.testing.assert_allclose(
        arrays['test_scheduler_rates'],
        [reference.update_learning_rule(rule, epoch) for epoch in range(12)], rtol=1e-9)


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


# Labs 2, 4 and 6: the notebook's classes and functions against the reference framework (or the
# formula, for the notebook-level functions of lab 2) on inputs the notebook never used.
COMPARE_LAB_2 = '''
import json as _json
import numpy as _np
import mlp.errors as _errors_module
import mlp.layers as _layers_module
_rng = _np.random.RandomState(20021)
_x, _w, _b = _rng.normal(size=(6, 5)), _rng.normal(size=(3, 5)), _rng.normal(size=3)
_g, _t = _rng.normal(size=(6, 3)), _rng.normal(size=(6, 3))
_mine, _theirs = AffineLayer(5, 3), _layers_module.AffineLayer(5, 3)
_mine.params = [_w.copy(), _b.copy()]
_theirs.params = [_w.copy(), _b.copy()]
_y = _theirs.fprop(_x)
_gw, _gb = _theirs.grads_wrt_params(_x, _g)
_new_w, _new_b = gradient_descent_step(_w, _b, _gw, _gb, 0.3)
_sse, _ref_sse = SumOfSquaredDiffsError(), _errors_module.SumOfSquaredDiffsError()
_errors = {
    'AffineLayer': [float(_np.abs(_mine.fprop(_x) - _y).max()),
                    float(_np.abs(_mine.bprop(_x, _y, _g) - _theirs.bprop(_x, _y, _g)).max())]
                   + [float(_np.abs(a - b).max()) for a, b in zip(
                       _mine.grads_wrt_params(_x, _g), [_gw, _gb])],
    'SumOfSquaredDiffsError': [abs(float(_sse(_y, _t) - _ref_sse(_y, _t))),
                               float(_np.abs(_sse.grad(_y, _t) - _ref_sse.grad(_y, _t)).max())],
    'single_layer_fprop': [float(_np.abs(single_layer_fprop(_x, _w, _b) - _y).max())],
    'gradient_descent_step': [float(_np.abs(_new_w - (_w - 0.3 * _gw)).max()),
                              float(_np.abs(_new_b - (_b - 0.3 * _gb)).max())],
}
print(_json.dumps(_errors))
'''

COMPARE_LAB_4 = '''
import json as _json
import numpy as _np
import mlp.layers as _layers_module
import mlp.penalties as _penalties_module
_rng = _np.random.RandomState(40041)
_p = _rng.normal(size=(4, 6))
_errors = {}
for _name, _coefficient in [('L1Penalty', 0.07), ('L2Penalty', 0.3)]:
    _mine = globals()[_name](_coefficient)
    _theirs = getattr(_penalties_module, _name)(_coefficient)
    _errors[_name] = [abs(float(_mine(_p) - _theirs(_p))),
                      float(_np.abs(_mine.grad(_p) - _theirs.grad(_p)).max())]
# The model answer draws its masks exactly as the reference does: same seed, same masks.
_x, _g = _rng.normal(size=(7, 9)), _rng.normal(size=(7, 9))
_errors['DropoutLayer'] = []
for _share in (True, False):
    _mine = DropoutLayer(_np.random.RandomState(3), incl_prob=0.6, share_across_batch=_share)
    _theirs = _layers_module.DropoutLayer(
        _np.random.RandomState(3), incl_prob=0.6, share_across_batch=_share)
    _y_mine, _y_theirs = _mine.fprop(_x), _theirs.fprop(_x)
    _errors['DropoutLayer'] += [
        float(_np.abs(_y_mine - _y_theirs).max()),
        float(_np.abs(_mine.bprop(_x, _y_mine, _g) - _theirs.bprop(_x, _y_theirs, _g)).max()),
        float(_np.abs(_mine.fprop(_x, stochastic=False)
                      - _theirs.fprop(_x, stochastic=False)).max())]
print(_json.dumps(_errors))
'''

COMPARE_LAB_6 = '''
import json as _json
import numpy as _np
import mlp.learning_rules as _rules_module
import mlp.schedulers as _schedulers_module
_errors = {}
for _name, _kwargs in [('MomentumLearningRule', dict(learning_rate=0.05, mom_coeff=0.8)),
                       ('RMSPropLearningRule', dict(learning_rate=0.01, beta=0.8)),
                       ('AdamLearningRule', dict(learning_rate=0.01, beta_1=0.7, beta_2=0.9))]:
    _rng = _np.random.RandomState(60061)
    _start = [_rng.normal(size=(3, 4)), _rng.normal(size=4)]
    _mine_params, _their_params = [p.copy() for p in _start], [p.copy() for p in _start]
    _mine, _theirs = globals()[_name](**_kwargs), getattr(_rules_module, _name)(**_kwargs)
    _mine.initialise(_mine_params)
    _theirs.initialise(_their_params)
    _worst = 0.
    for _step in range(30):
        _grads = [_rng.normal(size=(3, 4)), _rng.normal(size=4)]
        _mine.update_params(_grads)
        _theirs.update_params(_grads)
        if _step == 14:
            _mine.reset()
            _theirs.reset()
        _worst = max([_worst] + [float(_np.abs(a - b).max())
                                 for a, b in zip(_mine_params, _their_params)])
    _errors[_name] = [_worst]
_kwargs = dict(min_learning_rate=0.002, max_learning_rate=0.3, total_iters_per_period=2.5,
               max_learning_rate_discount_factor=0.7, period_iteration_expansion_factor=1.5)
_mine = CosineAnnealingWithWarmRestarts(**_kwargs)
_theirs = _schedulers_module.CosineAnnealingWithWarmRestarts(**_kwargs)
_rule = GradientDescentLearningRule(learning_rate=1.)
_rates = []
for _epoch in range(40):
    _mine.update_learning_rule(_rule, _epoch)
    _rates.append(abs(_rule.learning_rate - _theirs.update_learning_rule(_rule, _epoch)))
_errors['CosineAnnealingWithWarmRestarts'] = [max(_rates)]
print(_json.dumps(_errors))
'''

COMPARE_LAB_7 = '''
import json as _json
import numpy as _np
import mlp.layers as _layers
_rng = _np.random.RandomState(70070)
_errors = {}
_pairs = [('ConvolutionalLayer', (2, 3, 5, 6, 3, 2), (3, 2, 5, 6)),
          ('MaxPooling2DLayer', (2,), (3, 2, 4, 6)),
          ('BatchNormalizationLayer', (5,), (7, 5))]
for _name, _args, _shape in _pairs:
    _mine, _theirs = globals()[_name](*_args), getattr(_layers, _name)(*_args)
    if _name != 'MaxPooling2DLayer':
        _params = [_rng.normal(size=_np.shape(p)) for p in _theirs.params]
        _mine.params, _theirs.params = [p.copy() for p in _params], [p.copy() for p in _params]
    _x = _rng.normal(size=_shape)
    _y_mine, _y_theirs = _mine.fprop(_x), _theirs.fprop(_x)
    _g = _rng.normal(size=_y_theirs.shape)
    _worst = [float(_np.abs(_y_mine - _y_theirs).max()),
              float(_np.abs(_mine.bprop(_x, _y_mine, _g) - _theirs.bprop(_x, _y_theirs, _g)).max())]
    if hasattr(_theirs, 'grads_wrt_params'):
        _worst += [float(_np.abs(a - b).max()) for a, b in zip(
            _mine.grads_wrt_params(_x, _g), _theirs.grads_wrt_params(_x, _g))]
    _errors[_name] = _worst
print(_json.dumps(_errors))
'''

# Per assignment: the appended comparison cell, the names it reports, and a graded cell whose
# hidden region prints a confirmation of its own (proof that the hidden tests ran).
COMPARISONS = {
    '02_single_layer_models': (COMPARE_LAB_2, ['AffineLayer', 'SumOfSquaredDiffsError',
                                               'single_layer_fprop', 'gradient_descent_step']),
    '03_multiple_layer_models': (COMPARE_WITH_REFERENCE % (
        EXERCISE_CLASSES['03_multiple_layer_models'],), EXERCISE_CLASSES['03_multiple_layer_models']),
    '04_regularisation': (COMPARE_LAB_4, ['L1Penalty', 'L2Penalty', 'DropoutLayer']),
    '05_activation_functions': (COMPARE_WITH_REFERENCE % (
        EXERCISE_CLASSES['05_activation_functions'],), EXERCISE_CLASSES['05_activation_functions']),
    '06_learning_rules': (COMPARE_LAB_6, ['MomentumLearningRule', 'RMSPropLearningRule',
                                          'AdamLearningRule', 'CosineAnnealingWithWarmRestarts']),
    '07_convolutional_networks': (COMPARE_LAB_7, ['ConvolutionalLayer', 'MaxPooling2DLayer',
                                                  'BatchNormalizationLayer']),
}
HIDDEN_CONFIRMATIONS = {
    '02_single_layer_models': ('sum_of_squared_diffs_grad', 'agrees with finite differences'),
    '03_multiple_layer_models': ('tanh_bprop', 'agree with finite differences'),
    '04_regularisation': ('dropout_fprop', 'fraction kept'),
    '05_activation_functions': ('selu_bprop', 'agree with finite differences'),
    '06_learning_rules': ('adam_learning_rule', 'after 25 steps'),
    '07_convolutional_networks': ('conv_bprop', 'agree with finite differences'),
}

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
    comparison, compared_names = COMPARISONS[assignment]
    notebook.cells.append(nbformat.v4.new_code_cell(comparison))
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
    grade_id, confirmation = HIDDEN_CONFIRMATIONS[assignment]
    assert confirmation in stdout_of(cells[grade_id])
    # The notebook's model solution is the reference framework's.
    errors = json.loads(stdout_of(notebook.cells[-1]).strip().splitlines()[-1])
    assert sorted(errors) == sorted(compared_names)
    for name, values in errors.items():
        assert max(values) < 1e-9, (name, values)
    # Smoke-test mode really was on: the helper caps runs at two epochs.
    helper_runs = [stdout_of(cell) for cell in notebook.cells if 'Trained for' in stdout_of(cell)]
    assert helper_runs and all('Trained for 2 epochs' in text for text in helper_runs)
    assert os.listdir(tmp_path) == []  # the notebook writes nothing into its folder
