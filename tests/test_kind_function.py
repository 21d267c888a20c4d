"""The function kind (checks/function.py) through the real sandbox: lab 2's forward function and
gradient-descent step written the ways students write them, right and wrong."""

import pytest

from kind_harness import by_item, failed_outputs, grade, kind_spec

FUNCTIONS = {
    'single_layer_fprop': {'kind': 'function',
                           'reference': 'autograder.course.reference_functions.single_layer_fprop'},
    'gradient_descent_step': {'kind': 'function', 'batch_axis_args': [],
                              'reference': 'autograder.course.reference_functions.gradient_descent_step'},
}
CASES = {
    'fn_public': {'public': True, 'args': [[[1.0, 2.0, 3.0], [-1.0, 0.0, 0.5]],
                                           [[0.5, -0.5, 1.0], [2.0, 0.0, -1.0]], [0.1, -0.2]]},
    'fn_random': {'seed': 2, 'arg_shapes': [[6, 3], [2, 3], [2]], 'scale': 2.0},
    'gd_public': {'public': True, 'args': [[[1.0, 2.0], [3.0, 4.0]], [0.5, -0.5],
                                           [[0.1, 0.2], [0.3, 0.4]], [1.0, -1.0], 0.5]},
    'gd_random': {'seed': 3, 'arg_shapes': [[3, 4], [3], [3, 4], [3], 0.05], 'scale': 1.0},
}
ITEMS = [
    {'grade_id': 'fprop', 'target': 'single_layer_fprop', 'checks': ['fixed:fn_public', 'fixed:fn_random', 'property']},
    {'grade_id': 'step', 'target': 'gradient_descent_step', 'checks': ['fixed:gd_public', 'fixed:gd_random', 'property']},
]

FPROP = {
    'dot': 'def single_layer_fprop(inputs, weights, biases):\n    return inputs.dot(weights.T) + biases\n',
    'loops': '''
def single_layer_fprop(inputs, weights, biases):
    outputs = np.zeros((inputs.shape[0], weights.shape[0]))
    for b in range(inputs.shape[0]):
        for k in range(weights.shape[0]):
            outputs[b, k] = biases[k] + sum(weights[k, d] * inputs[b, d] for d in range(inputs.shape[1]))
    return outputs
''',
    'einsum-transposed': '''
def single_layer_fprop(inputs, weights, biases):
    return (weights @ inputs.T).T + biases[None, :]
''',
}
STEP = {
    'tuple': '''
def gradient_descent_step(weights, biases, grads_wrt_weights, grads_wrt_biases, learning_rate):
    return weights - learning_rate * grads_wrt_weights, biases - learning_rate * grads_wrt_biases
''',
    'list': '''
def gradient_descent_step(weights, biases, grads_wrt_weights, grads_wrt_biases, learning_rate):
    new_weights = weights.copy()
    new_weights -= learning_rate * grads_wrt_weights
    return [new_weights, biases - learning_rate * grads_wrt_biases]
''',
}


@pytest.fixture(scope='module')
def spec(tmp_path_factory):
    return kind_spec(tmp_path_factory.mktemp('functions'), functions=FUNCTIONS, cases=CASES, items=ITEMS)


@pytest.mark.parametrize('fprop', sorted(FPROP))
@pytest.mark.parametrize('step', sorted(STEP))
def test_correct_variants_get_full_marks(spec, fprop, step, tmp_path):
    report = grade(spec, FPROP[fprop] + STEP[step], tmp_path)
    assert by_item(report) == {'fprop': (1.0, []), 'step': (1.0, [])}


def test_a_missing_bias_loses_the_function_only(spec, tmp_path):
    wrong = 'def single_layer_fprop(inputs, weights, biases):\n    return inputs.dot(weights.T)\n'
    report = grade(spec, wrong + STEP['tuple'], tmp_path)
    assert by_item(report)['fprop'][0] == 0.0 and by_item(report)['step'] == (1.0, [])
    assert 'got' in failed_outputs(report, 'fprop')  # the public case shows where


def test_a_shape_error_is_reported_not_raised(spec, tmp_path):
    wrong = 'def single_layer_fprop(inputs, weights, biases):\n    return inputs.dot(weights) + biases\n'
    report = grade(spec, wrong + STEP['tuple'], tmp_path)
    assert by_item(report)['fprop'][0] == 0.0
    assert 'ValueError' in failed_outputs(report, 'fprop')


def test_a_step_with_the_wrong_sign_fails(spec, tmp_path):
    report = grade(spec, FPROP['dot'] + STEP['tuple'].replace('weights - learning_rate', 'weights + learning_rate'),
                   tmp_path)
    assert by_item(report)['step'][0] == 0.0 and by_item(report)['fprop'] == (1.0, [])


def test_a_step_that_also_updates_its_arguments_loses_the_property_share(spec, tmp_path):
    in_place = '''
def gradient_descent_step(weights, biases, grads_wrt_weights, grads_wrt_biases, learning_rate):
    weights -= learning_rate * grads_wrt_weights
    biases -= learning_rate * grads_wrt_biases
    return weights, biases
'''
    report = grade(spec, FPROP['dot'] + in_place, tmp_path)
    assert 0.5 < by_item(report)['step'][0] < 1.0
    assert 'modifies its argument argument 0 in place' in failed_outputs(report, 'step')
