"""The layer kind (checks/layer.py) beyond activation layers: layers with parameters given by the
spec (AffineLayer, with a training run of the student's own affine layers) and 4-D layers whose
inputs and parameters come from spec-given shapes (a convolutional layer)."""

import pytest

from kind_harness import by_item, failed_outputs, grade, kind_spec

AFFINE = {'AffineLayer': {'kind': 'layer', 'kwargs': {'input_dim': 4, 'output_dim': 3},
                          'params': {'seed': 5, 'scale': 0.5}, 'input_shape': [3, 4],
                          'training_layers': [
                              {'class': '$target', 'kwargs': {'input_dim': 784, 'output_dim': 32}, 'init_scale': 0.1},
                              {'class': 'SigmoidLayer'},
                              {'class': '$target', 'kwargs': {'input_dim': 32, 'output_dim': 10}, 'init_scale': 0.1}]}}
AFFINE_CASES = {
    'public': {'public': True, 'inputs': [[1.0, -1.0, 0.5, 2.0], [0.0, 0.25, -2.0, 1.0]],
               'bprop_inputs': [[0.5, 1.0, -1.0, 0.0], [2.0, -0.5, 0.25, 1.5]],
               'grads_wrt_outputs': [[1.0, -2.0, 0.5], [0.25, 1.0, -1.0]]},
    'random': {'seed': 9, 'shape': [6, 4], 'scale': 2.0},
}
AFFINE_ITEMS = [
    {'grade_id': 'fprop', 'target': 'AffineLayer.fprop', 'checks': ['fixed:public', 'fixed:random', 'property']},
    {'grade_id': 'bprop', 'target': 'AffineLayer.bprop',
     'checks': ['fixed:public', 'fixed:random', 'gradcheck', 'property']},
    {'grade_id': 'grads', 'target': 'AffineLayer.grads_wrt_params',
     'checks': ['fixed:public', 'fixed:random', 'gradcheck']},
    {'grade_id': 'training', 'target': 'AffineLayer', 'checks': ['training']},
]


def affine(fprop='inputs.dot(self.weights.T) + self.biases', bprop='grads_wrt_outputs.dot(self.weights)',
           grads='[grads_wrt_outputs.T.dot(inputs), grads_wrt_outputs.sum(axis=0)]'):
    return '''
from mlp.layers import LayerWithParameters
from mlp.initialisers import UniformInit, ConstantInit

class AffineLayer(LayerWithParameters):
    def __init__(self, input_dim, output_dim, weights_initialiser=UniformInit(-0.1, 0.1),
                 biases_initialiser=ConstantInit(0.), weights_penalty=None, biases_penalty=None):
        self.input_dim, self.output_dim = input_dim, output_dim
        self.weights = weights_initialiser((output_dim, input_dim))
        self.biases = biases_initialiser(output_dim)

    def fprop(self, inputs):
        return {0}

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        return {1}

    def grads_wrt_params(self, inputs, grads_wrt_outputs):
        return {2}

    @property
    def params(self):
        return [self.weights, self.biases]

    @params.setter
    def params(self, values):
        self.weights, self.biases = values
'''.format(fprop, bprop, grads)


LOOPED = affine(
    fprop='np.array([[self.biases[k] + np.dot(self.weights[k], x) for k in range(self.output_dim)] for x in inputs])',
    grads='[sum(np.outer(g, x) for g, x in zip(grads_wrt_outputs, inputs)), np.sum(grads_wrt_outputs, 0)]')


@pytest.fixture(scope='module')
def affine_spec(tmp_path_factory, mnist_env):
    return kind_spec(tmp_path_factory.mktemp('affine'), classes=AFFINE, cases=AFFINE_CASES, items=AFFINE_ITEMS)


@pytest.mark.parametrize('source', [affine(), LOOPED], ids=['vectorised', 'loops'])
def test_correct_affine_layers_get_full_marks(affine_spec, source, tmp_path):
    report = grade(affine_spec, source, tmp_path)
    assert by_item(report) == {item['grade_id']: (1.0, []) for item in AFFINE_ITEMS}


def test_a_batch_mean_in_the_weight_gradient_loses_grads_and_training(affine_spec, tmp_path):
    report = grade(affine_spec, affine(
        grads='[grads_wrt_outputs.T.dot(inputs) / len(inputs), grads_wrt_outputs.sum(axis=0)]'), tmp_path)
    scores = {grade_id: score for grade_id, (score, _) in by_item(report).items()}
    assert scores == {'fprop': 1.0, 'bprop': 1.0, 'grads': 0.0, 'training': 0.0}, [
        t.output for t in report.tests if t.status != 'passed']


def test_mean_instead_of_sum_for_the_bias_gradient_loses_grads(affine_spec, tmp_path):
    report = grade(affine_spec, affine(grads='[grads_wrt_outputs.T.dot(inputs), grads_wrt_outputs.mean(axis=0)]'),
                   tmp_path)
    assert by_item(report)['grads'][0] == 0.0
    assert 'grads_wrt_params[1]' in failed_outputs(report, 'grads')


def test_a_forgotten_bias_fails_fprop_where_the_public_case_shows(affine_spec, tmp_path):
    report = grade(affine_spec, affine(fprop='inputs.dot(self.weights.T)'), tmp_path)
    assert by_item(report)['fprop'][0] == 0.0
    assert 'got' in failed_outputs(report, 'fprop') and by_item(report)['bprop'] == (1.0, [])


CONV_KWARGS = {'num_input_channels': 2, 'num_output_channels': 2, 'input_dim_1': 4, 'input_dim_2': 4,
               'kernel_dim_1': 2, 'kernel_dim_2': 2}
CONV = {'ConvolutionalLayer': {'kind': 'layer', 'kwargs': CONV_KWARGS, 'params': {'seed': 1, 'scale': 0.5},
                               'input_shape': [2, 2, 4, 4]}}
CONV_CASES = {'random4d': {'seed': 4, 'shape': [3, 2, 4, 4], 'scale': 1.0}}
CONV_ITEMS = [
    {'grade_id': 'conv_fprop', 'target': 'ConvolutionalLayer.fprop', 'checks': ['fixed:random4d', 'property']},
    {'grade_id': 'conv_bprop', 'target': 'ConvolutionalLayer.bprop', 'checks': ['fixed:random4d', 'gradcheck']},
    {'grade_id': 'conv_grads', 'target': 'ConvolutionalLayer.grads_wrt_params', 'checks': ['fixed:random4d', 'gradcheck']},
]
REFERENCE_CONV = 'from mlp.layers import ConvolutionalLayer as _Reference\n\nclass ConvolutionalLayer(_Reference):\n    pass\n'


def test_a_4d_layer_with_spec_given_shapes_just_works(tmp_path):
    spec = kind_spec(tmp_path, classes=CONV, cases=CONV_CASES, items=CONV_ITEMS)
    report = grade(spec, REFERENCE_CONV, tmp_path, student='right')
    assert by_item(report) == {item['grade_id']: (1.0, []) for item in CONV_ITEMS}
    cross_correlation = REFERENCE_CONV.replace('    pass\n', '''    def _flat_flipped_kernels(self):
        return self.kernels.reshape(self.kernels.shape[0], -1)
''')
    report = grade(spec, cross_correlation, tmp_path, student='wrong')
    assert by_item(report)['conv_fprop'][0] == 0.0


# The finite differences of a gradient check share a layer, several fprop calls per request.

GRADCHECK_ITEMS = [item for item in CONV_ITEMS if item['grade_id'] != 'conv_fprop']


def with_fprop(body: str) -> str:
    """The reference convolution with an fprop that runs `body` (indented code) first."""
    return REFERENCE_CONV.replace('    pass\n', '    def fprop(self, inputs):\n' + body
                                  + '        return _Reference.fprop(self, inputs)\n')


@pytest.mark.parametrize('body', [
    '        self.calls = getattr(self, "calls", 0) + 1\n        self.last_inputs = inputs\n',
    '        self.kernels = self.kernels.copy()\n',
    '        self.kernels, self.biases = self.params\n',
], ids=['counts-and-caches', 'copies-its-kernels', 'reassigns-its-params'])
def test_state_a_right_fprop_keeps_between_calls_costs_nothing(tmp_path, body):
    spec = kind_spec(tmp_path, classes=CONV, cases=CONV_CASES, items=GRADCHECK_ITEMS)
    assert by_item(grade(spec, with_fprop(body), tmp_path)) == {
        item['grade_id']: (1.0, []) for item in GRADCHECK_ITEMS}


def test_with_a_right_fprop_the_gradients_are_judged_by_its_own_finite_differences(tmp_path):
    """The batched and the per-layer estimates are read back right: neither falls back for a good fprop."""
    spec = kind_spec(tmp_path, classes=CONV, cases=CONV_CASES, items=GRADCHECK_ITEMS)
    doubled = REFERENCE_CONV.replace('    pass\n', '''    def bprop(self, inputs, outputs, grads_wrt_outputs):
        return 2 * _Reference.bprop(self, inputs, outputs, grads_wrt_outputs)

    def grads_wrt_params(self, inputs, grads_wrt_outputs):
        return [2 * grads for grads in _Reference.grads_wrt_params(self, inputs, grads_wrt_outputs)]
''')
    report = grade(spec, doubled, tmp_path)
    for grade_id in ('conv_bprop', 'conv_grads'):
        assert by_item(report)[grade_id][0] == 0.0
        assert 'compared with finite differences of your fprop' in failed_outputs(report, grade_id), grade_id


def test_a_fprop_that_drifts_from_call_to_call_does_not_cost_right_gradients(tmp_path):
    """Its finite differences disagree with the reference derivative, which then judges the gradients."""
    spec = kind_spec(tmp_path, classes=CONV, cases=CONV_CASES, items=GRADCHECK_ITEMS)
    drifting = REFERENCE_CONV.replace('    pass\n', '''    def fprop(self, inputs):
        self.calls = getattr(self, "calls", 0) + 1
        return _Reference.fprop(self, inputs) + 1e-3 * (self.calls - 1)
''')
    assert by_item(grade(spec, drifting, tmp_path, student='drifting')) == {
        item['grade_id']: (1.0, []) for item in GRADCHECK_ITEMS}
    wrong_grads = drifting + '''
    def grads_wrt_params(self, inputs, grads_wrt_outputs):
        return [2 * grads for grads in _Reference.grads_wrt_params(self, inputs, grads_wrt_outputs)]
'''
    report = grade(spec, wrong_grads, tmp_path, student='wrong_grads')
    assert by_item(report)['conv_grads'][0] == 0.0
    assert 'compared with the reference derivative' in failed_outputs(report, 'conv_grads')


def test_a_fprop_that_mixes_the_examples_of_a_batch_does_not_cost_a_right_bprop(tmp_path):
    """The perturbed inputs of bprop's check go in one batch; an fprop that is not row by row
    spoils their differences, and the reference derivative judges bprop instead."""
    spec = kind_spec(tmp_path, classes=CONV, cases=CONV_CASES, items=GRADCHECK_ITEMS)
    mixing = 'import numpy as np\n' + REFERENCE_CONV.replace('    pass\n', '''    def fprop(self, inputs):
        outputs = _Reference.fprop(self, inputs)
        return outputs * (1 + 1e-3 * np.arange(len(outputs)).reshape((-1,) + (1,) * (outputs.ndim - 1)))
''')
    assert by_item(grade(spec, mixing, tmp_path, student='mixing'))['conv_bprop'] == (1.0, [])
    wrong_bprop = mixing + '''
    def bprop(self, inputs, outputs, grads_wrt_outputs):
        return 2 * _Reference.bprop(self, inputs, outputs, grads_wrt_outputs)
'''
    report = grade(spec, wrong_bprop, tmp_path, student='wrong_bprop')
    assert by_item(report)['conv_bprop'][0] == 0.0
    assert 'compared with the reference derivative' in failed_outputs(report, 'conv_bprop')


def test_a_fprop_that_fails_late_does_not_cost_a_right_bprop(tmp_path):
    spec = kind_spec(tmp_path, classes=CONV, cases=CONV_CASES, items=GRADCHECK_ITEMS)
    late = with_fprop('        self.calls = getattr(self, "calls", 0) + 1\n'
                      '        if self.calls > 20:\n            raise ValueError("tired")\n')
    assert by_item(grade(spec, late, tmp_path)) == {item['grade_id']: (1.0, []) for item in GRADCHECK_ITEMS}


def test_a_gradient_check_sends_its_forward_values_in_few_requests(tmp_path):
    """bprop's: one fprop of every perturbed input stacked; the parameters': a few dozen calls per layer."""
    from autograder.checks import layer
    from autograder.checks.plan import plan_item
    spec = kind_spec(tmp_path, classes=CONV, cases=CONV_CASES, items=GRADCHECK_ITEMS)
    by_id = {item.grade_id: item for item in spec.items}
    elements = 2 * 2 * 4 * 4
    stacked = [request for plan in plan_item(spec, by_id['conv_bprop']) for request in plan.requests
               if 'differences' in request.id]
    assert [request.header['type'] for request in stacked] == ['call']
    assert stacked[0].arrays[0].shape == (2 * elements * 2, 2, 4, 4)
    sequences = [request for plan in plan_item(spec, by_id['conv_grads']) for request in plan.requests
                 if 'differences' in request.id]
    fprops = [step for request in sequences for step in request.header['steps'] if step['method'] == 'fprop']
    assert len(fprops) == 2 * (2 * 2 * 2 * 2 + 2)
    assert len(sequences) == -(-len(fprops) // layer.FORWARD_CALLS_PER_LAYER)
    assert all(request.header['type'] == 'sequence' for request in sequences)


# A case's "layer" entry with helper objects (penalties) as constructor arguments.

PENALTIES = {'kernels_penalty': {'class': 'L2Penalty', 'source': 'mlp.penalties', 'kwargs': {'coefficient': 0.5}},
             'biases_penalty': {'class': 'L1Penalty', 'source': 'mlp.penalties', 'kwargs': {'coefficient': 0.25}}}
PENALISED_CASES = dict(CONV_CASES, penalised={
    'seed': 5, 'shape': [2, 2, 4, 4], 'scale': 1.0,
    'layer': {'kwargs': CONV_KWARGS, 'params': {'seed': 6, 'scale': 1.0}, 'objects': PENALTIES}})
PENALISED_ITEMS = [{'grade_id': 'conv_grads', 'target': 'ConvolutionalLayer.grads_wrt_params',
                    'checks': ['fixed:random4d', 'fixed:penalised']}]


@pytest.mark.parametrize('grads, right', [
    ('kernels_penalty.grad(self.kernels)', True),
    (None, False),
    ('kernels_penalty(self.kernels)', False),
], ids=['penalty-gradient-added', 'penalties-ignored', 'penalty-value-added'])
def test_a_case_can_build_the_layer_with_penalties(tmp_path, grads, right):
    spec = kind_spec(tmp_path, classes=CONV, cases=PENALISED_CASES, items=PENALISED_ITEMS)
    added = '' if grads is None else '''
        if self.kernels_penalty is not None:
            kernels = kernels + self.{0}
        if self.biases_penalty is not None:
            biases = biases + self.{1}'''.format(grads, grads.replace('kernels', 'biases'))
    source = REFERENCE_CONV.replace('    pass\n', '''    def grads_wrt_params(self, inputs, grads_wrt_outputs):
        penalties = self.kernels_penalty, self.biases_penalty
        self.kernels_penalty = self.biases_penalty = None
        kernels, biases = _Reference.grads_wrt_params(self, inputs, grads_wrt_outputs)
        self.kernels_penalty, self.biases_penalty = penalties{0}
        return [kernels, biases]
'''.format(added))
    report = grade(spec, source, tmp_path)
    failed = [t.name for t in report.tests if t.status != 'passed']
    if right:
        assert by_item(report) == {'conv_grads': (1.0, [])}
    else:
        assert failed and all('"penalised"' in name for name in failed), failed


# A case of the evaluation mode after training-mode calls (batch normalisation's running averages).

BN = {'BatchNormalizationLayer': {'kind': 'layer', 'kwargs': {'input_dim': 3}, 'input_shape': [4, 3]}}
BN_CASES = {'batch': {'seed': 7, 'shape': [4, 3], 'scale': 2.0},
            'evaluation': {'seed': 8, 'shape': [5, 3], 'scale': 2.0, 'evaluation_after': 3}}
BN_ITEMS = [{'grade_id': 'bn_fprop', 'target': 'BatchNormalizationLayer.fprop',
             'checks': ['fixed:batch', 'fixed:evaluation']}]
REFERENCE_BN = ('from mlp.layers import BatchNormalizationLayer as _Reference\n\n'
                'class BatchNormalizationLayer(_Reference):\n    pass\n')


@pytest.mark.parametrize('change, right', [
    (None, True),
    ('        self.running_mean, self.running_var = mean, var', False),
    ('        self.running_mean, self.running_var = 0 * mean, 0 * var + 1', False),
], ids=['running-averages', 'last-batch-statistics', 'never-updated'])
def test_an_evaluation_case_runs_training_mode_calls_first(tmp_path, change, right):
    spec = kind_spec(tmp_path, classes=BN, cases=BN_CASES, items=BN_ITEMS)
    source = REFERENCE_BN
    if change is not None:
        source = REFERENCE_BN.replace('    pass\n', '''    def fprop(self, inputs, stochastic=True):
        if not stochastic:
            return _Reference.fprop(self, inputs, stochastic=False)
        mean, var = inputs.mean(axis=0), inputs.var(axis=0)
        outputs = self.gamma * (inputs - mean) / np.sqrt(var + self.epsilon) + self.beta
{0}
        return outputs
'''.format(change))
    report = grade(spec, 'import numpy as np\n' + source, tmp_path)
    if right:
        assert by_item(report) == {'bn_fprop': (1.0, [])}
    else:
        assert by_item(report)['bn_fprop'][0] == 0.5
        assert 'stochastic=False, after 3 training-mode calls' in failed_outputs(report, 'bn_fprop')


def test_batch_normalisation_gets_the_properties_it_has(tmp_path):
    """No batch-size independence (its statistics are the batch's), but arguments left unmodified."""
    items = [{'grade_id': 'bn_bprop', 'target': 'BatchNormalizationLayer.bprop', 'checks': ['property']}]
    spec = kind_spec(tmp_path, classes=BN, cases=BN_CASES, items=items)
    assert by_item(grade(spec, REFERENCE_BN, tmp_path, student='right')) == {'bn_bprop': (1.0, [])}
    in_place = REFERENCE_BN.replace('    pass\n', '''    def bprop(self, inputs, outputs, grads_wrt_outputs):
        grads = _Reference.bprop(self, inputs, outputs, grads_wrt_outputs)
        grads_wrt_outputs *= 2.
        return grads
''')
    report = grade(spec, 'import numpy as np\n' + in_place, tmp_path, student='in_place')
    assert 'modifies its argument grads_wrt_outputs in place' in failed_outputs(report, 'bn_bprop')
    assert 'batch size changes' not in failed_outputs(report, 'bn_bprop')


def test_batch_normalisation_gets_its_bprop_differences_one_call_at_a_time(tmp_path):
    """Its statistics are the batch's: stacking the perturbed inputs would change what it computes."""
    from autograder.checks.plan import plan_item
    items = [{'grade_id': 'bn_bprop', 'target': 'BatchNormalizationLayer.bprop', 'checks': ['gradcheck']}]
    spec = kind_spec(tmp_path, classes=BN, cases=BN_CASES, items=items)
    requests = [request for plan in plan_item(spec, spec.items[0]) for request in plan.requests
                if 'differences' in request.id]
    assert requests and all(request.header['type'] == 'sequence' for request in requests)
    assert by_item(grade(spec, REFERENCE_BN, tmp_path)) == {'bn_bprop': (1.0, [])}
