"""Tests of mlp.layers: values, finite-difference gradients, numerical stability."""

import numpy as np
import pytest

from mlp import checks
from mlp import layers
from mlp.initialisers import ConstantInit, UniformInit
from mlp.penalties import L1Penalty, L2Penalty

BATCH_SHAPES = [(1, 3), (4, 5), (7, 2)]

# The seed notebook's test arrays for TanhLayer and ReluLayer.
NOTEBOOK_INPUTS = np.array([[0.1, -0.2, 0.3], [-0.4, 0.5, -0.6]])
NOTEBOOK_GRADS = np.array([[5., 10., -10.], [-5., 0., 10.]])
NOTEBOOK_TANH_OUTPUTS = np.array([[0.09966799, -0.19737532, 0.29131261],
                                  [-0.37994896, 0.46211716, -0.53704957]])
NOTEBOOK_TANH_GRADS = np.array([[4.95033145, 9.61042983, -9.15136962],
                                [-4.27819393, 0., 7.11577763]])
NOTEBOOK_RELU_OUTPUTS = np.array([[0.1, 0., 0.3], [0., 0.5, 0.]])
NOTEBOOK_RELU_GRADS = np.array([[5., 0., -10.], [-0., 0., 0.]])


def away_from_zero(rng, shape, low=0.1, high=2.):
    """Random values with |x| in [low, high) and random signs (clear of a kink at 0)."""
    return rng.choice([-1., 1.], size=shape) * rng.uniform(low, high, size=shape)


def assert_close_to_estimate(got, estimate, what):
    comparison = checks.compare_arrays(got, estimate, what, checks.GRADCHECK_RTOL,
                                       checks.GRADCHECK_ATOL)
    assert comparison.ok, comparison.message


def check_layer_gradients(layer, inputs, rng):
    """Asserts that bprop and grads_wrt_params match central differences of fprop."""
    outputs = layer.fprop(inputs.copy())
    grads_wrt_outputs = rng.normal(size=outputs.shape)
    estimate = checks.numerical_gradient(layer.fprop, inputs, grads_wrt_outputs)
    got = layer.bprop(inputs, outputs, grads_wrt_outputs)
    assert got.shape == inputs.shape
    assert_close_to_estimate(got, estimate, repr(layer) + '.bprop')
    if isinstance(layer, layers.LayerWithParameters):
        original = [param.copy() for param in layer.params]
        grads = layer.grads_wrt_params(inputs, grads_wrt_outputs)
        assert len(grads) == len(original)
        for i, grad in enumerate(grads):
            def fprop_of_param(value, i=i):
                layer.params = [value if j == i else param for j, param in enumerate(original)]
                return layer.fprop(inputs)
            estimate = checks.numerical_gradient(fprop_of_param, original[i], grads_wrt_outputs)
            layer.params = [param.copy() for param in original]
            assert grad.shape == original[i].shape
            assert_close_to_estimate(grad, estimate, '{0}.grads_wrt_params[{1}]'.format(layer, i))


# Each entry: name -> (layer factory taking (rng, input_dim), input sampler (rng, shape)).
SMOOTH = lambda rng, shape: rng.uniform(-2., 2., size=shape)
DETERMINISTIC_LAYERS = {
    'AffineLayer': (lambda rng, dim: layers.AffineLayer(
        dim, 4, UniformInit(-0.5, 0.5, rng=rng), UniformInit(-0.5, 0.5, rng=rng)), SMOOTH),
    'SigmoidLayer': (lambda rng, dim: layers.SigmoidLayer(), SMOOTH),
    'TanhLayer': (lambda rng, dim: layers.TanhLayer(), SMOOTH),
    'ReluLayer': (lambda rng, dim: layers.ReluLayer(), away_from_zero),
    'LeakyReluLayer': (lambda rng, dim: layers.LeakyReluLayer(alpha=0.1), away_from_zero),
    'ELULayer': (lambda rng, dim: layers.ELULayer(alpha=1.5), away_from_zero),
    'SELULayer': (lambda rng, dim: layers.SELULayer(), away_from_zero),
    'ParametricReluLayer': (lambda rng, dim: layers.ParametricReluLayer(alpha=0.3),
                            away_from_zero),
    'SoftmaxLayer': (lambda rng, dim: layers.SoftmaxLayer(), SMOOTH),
    'RadialBasisFunctionLayer': (
        lambda rng, dim: layers.RadialBasisFunctionLayer(4, intervals=[[-2., 2.]]), SMOOTH),
    'RadialBasisFunctionLayer(per-dimension intervals)': (
        lambda rng, dim: layers.RadialBasisFunctionLayer(
            3, intervals=[[-1. - d, 1. + 0.5 * d] for d in range(dim)]), SMOOTH),
    'ReshapeLayer': (lambda rng, dim: layers.ReshapeLayer((dim, 1)), SMOOTH),
}


@pytest.mark.parametrize('shape', BATCH_SHAPES, ids=str)
@pytest.mark.parametrize('name', sorted(DETERMINISTIC_LAYERS))
def test_gradients_match_finite_differences(name, shape, rng):
    make_layer, sample = DETERMINISTIC_LAYERS[name]
    layer = make_layer(rng, shape[1])
    check_layer_gradients(layer, sample(rng, shape), rng)


@pytest.mark.parametrize('output_shape', [None, (-1,), (6, 2), (3, -1)], ids=str)
def test_reshape_layer_gradients_for_multi_axis_inputs(output_shape, rng):
    layer = layers.ReshapeLayer(output_shape)
    inputs = rng.normal(size=(3, 4, 3))
    outputs = layer.fprop(inputs)
    expected_shape = (3, 12) if output_shape in (None, (-1,)) else (3,) + tuple(
        12 // 3 if n == -1 else n for n in output_shape)
    assert outputs.shape == expected_shape
    check_layer_gradients(layer, inputs, rng)


@pytest.mark.parametrize('name', ['AffineLayer', 'TanhLayer', 'SigmoidLayer', 'SoftmaxLayer'])
def test_check_gradients_accepts_reference_smooth_layers(name, capsys):
    make_layer, _ = DETERMINISTIC_LAYERS[name]
    checks.check_gradients(make_layer(np.random.RandomState(1), 4), input_shape=(3, 4))
    assert 'gradients agree with finite differences' in capsys.readouterr().out


# The seed notebook's arrays.

def test_tanh_layer_matches_notebook_arrays():
    layer = layers.TanhLayer()
    outputs = layer.fprop(NOTEBOOK_INPUTS)
    np.testing.assert_allclose(outputs, NOTEBOOK_TANH_OUTPUTS, rtol=1e-7)
    np.testing.assert_allclose(layer.bprop(NOTEBOOK_INPUTS, outputs, NOTEBOOK_GRADS),
                               NOTEBOOK_TANH_GRADS, rtol=1e-7, atol=1e-12)


def test_relu_layer_matches_notebook_arrays():
    layer = layers.ReluLayer()
    outputs = layer.fprop(NOTEBOOK_INPUTS)
    np.testing.assert_array_equal(outputs, NOTEBOOK_RELU_OUTPUTS)
    np.testing.assert_array_equal(layer.bprop(NOTEBOOK_INPUTS, outputs, NOTEBOOK_GRADS),
                                  NOTEBOOK_RELU_GRADS)


def test_notebook_checks_pass_for_reference_tanh_and_relu(capsys):
    checks.check_fprop(layers.TanhLayer(), NOTEBOOK_INPUTS, NOTEBOOK_TANH_OUTPUTS)
    checks.check_bprop(layers.TanhLayer(), NOTEBOOK_INPUTS, NOTEBOOK_GRADS, NOTEBOOK_TANH_GRADS)
    checks.check_fprop(layers.ReluLayer(), NOTEBOOK_INPUTS, NOTEBOOK_RELU_OUTPUTS)
    checks.check_bprop(layers.ReluLayer(), NOTEBOOK_INPUTS, NOTEBOOK_GRADS, NOTEBOOK_RELU_GRADS)
    out = capsys.readouterr().out
    assert 'TanhLayer.bprop gives the expected' in out
    assert 'ReluLayer.fprop gives the expected' in out


# Values of individual layers.

def test_affine_layer_values_and_params():
    weights = np.array([[1., 2., 3.], [-1., 0., 0.5]])
    biases = np.array([0.5, -1.])
    layer = layers.AffineLayer(3, 2)
    layer.params = [weights, biases]
    inputs = np.array([[1., 0., -1.], [2., 1., 0.]])
    np.testing.assert_allclose(layer.fprop(inputs), [[-1.5, -2.5], [4.5, -3.]])
    grads = np.array([[1., 0.], [0., 2.]])
    np.testing.assert_allclose(layer.bprop(inputs, None, grads), [[1., 2., 3.], [-2., 0., 1.]])
    grads_w, grads_b = layer.grads_wrt_params(inputs, grads)
    np.testing.assert_allclose(grads_w, [[1., 0., -1.], [4., 2., 0.]])
    np.testing.assert_allclose(grads_b, [1., 2.])
    assert layer.params[0] is weights and layer.params[1] is biases
    assert repr(layer) == 'AffineLayer(input_dim=3, output_dim=2)'


def test_affine_layer_initialisers_and_shapes():
    layer = layers.AffineLayer(5, 3, ConstantInit(2.), ConstantInit(-1.))
    assert layer.weights.shape == (3, 5) and layer.biases.shape == (3,)
    assert np.all(layer.weights == 2.) and np.all(layer.biases == -1.)
    default = layers.AffineLayer(20, 10)
    assert np.all(np.abs(default.weights) <= 0.1) and np.all(default.biases == 0.)


def test_sigmoid_layer_values():
    inputs = np.array([[0., 2., -3.]])
    np.testing.assert_allclose(layers.SigmoidLayer().fprop(inputs), 1. / (1. + np.exp(-inputs)),
                               rtol=1e-12)


@pytest.mark.parametrize('layer, expected', [
    (layers.LeakyReluLayer(alpha=0.1), [[-0.2, 0., 3.]]),
    (layers.ELULayer(alpha=2.), [[2. * np.expm1(-2.), 0., 3.]]),
    (layers.SELULayer(), [[1.0507009873554805 * 1.6732632423543772 * np.expm1(-2.), 0., 3.1521029620664415]]),
    (layers.ParametricReluLayer(alpha=0.5), [[-1., 0., 3.]]),
], ids=repr)
def test_rectifier_family_values(layer, expected):
    np.testing.assert_allclose(layer.fprop(np.array([[-2., 0., 3.]])), expected, rtol=1e-12)


def test_parametric_relu_params_round_trip():
    layer = layers.ParametricReluLayer(alpha=0.25)
    assert len(layer.params) == 1 and layer.params[0].shape == (1,)
    layer.params = [np.array([0.7])]
    np.testing.assert_allclose(layer.fprop(np.array([[-1., 1.]])), [[-0.7, 1.]])
    grads = layer.grads_wrt_params(np.array([[-1., 2.], [-3., 4.]]), np.array([[1., 1.], [2., 1.]]))
    np.testing.assert_allclose(grads[0], [-7.])


def test_softmax_rows_are_distributions(rng):
    outputs = layers.SoftmaxLayer().fprop(rng.normal(size=(5, 7)) * 10.)
    assert np.all(outputs >= 0.)
    np.testing.assert_allclose(outputs.sum(axis=1), 1.)


def test_radial_basis_function_layer_shape_and_centres():
    layer = layers.RadialBasisFunctionLayer(3, intervals=[[0., 1.], [-2., 2.]])
    inputs = np.array([[0.5, -2.]])
    outputs = layer.fprop(inputs)
    assert outputs.shape == (1, 6)
    # 0.5 is the middle centre of [0, 1] and -2 the first centre of [-2, 2].
    assert outputs[0, 1] == 1. and outputs[0, 3] == 1.
    np.testing.assert_allclose(outputs[0, 0], np.exp(-1.))
    np.testing.assert_allclose(outputs[0, 4], np.exp(-1.))


def test_radial_basis_function_layer_rejects_small_grid():
    with pytest.raises(ValueError):
        layers.RadialBasisFunctionLayer(1)


def test_reprs_name_the_layers():
    for layer in [layers.SigmoidLayer(), layers.TanhLayer(), layers.ReluLayer(),
                  layers.SoftmaxLayer(), layers.SELULayer()]:
        assert repr(layer) == type(layer).__name__
    assert 'alpha=0.1' in repr(layers.LeakyReluLayer(0.1))
    assert 'incl_prob=0.8' in repr(layers.DropoutLayer(incl_prob=0.8))


def test_abstract_layers_raise_not_implemented():
    with pytest.raises(NotImplementedError):
        layers.Layer().fprop(np.zeros((1, 1)))
    with pytest.raises(NotImplementedError):
        layers.LayerWithParameters().grads_wrt_params(np.zeros((1, 1)), np.zeros((1, 1)))


# DropoutLayer.

@pytest.mark.parametrize('share_across_batch', [True, False])
@pytest.mark.parametrize('shape', BATCH_SHAPES, ids=str)
def test_dropout_bprop_matches_finite_differences_under_fixed_mask(shape, share_across_batch):
    layer = layers.DropoutLayer(np.random.RandomState(3), incl_prob=0.6,
                                share_across_batch=share_across_batch)
    state = layer.rng.get_state()

    def fprop_with_fixed_mask(inputs):
        layer.rng.set_state(state)
        return layer.fprop(inputs, stochastic=True)

    rng = np.random.RandomState(4)
    inputs = away_from_zero(rng, shape)
    grads_wrt_outputs = rng.normal(size=shape)
    estimate = checks.numerical_gradient(fprop_with_fixed_mask, inputs, grads_wrt_outputs)
    outputs = fprop_with_fixed_mask(inputs)
    got = layer.bprop(inputs, outputs, grads_wrt_outputs)
    assert_close_to_estimate(got, estimate, 'DropoutLayer.bprop')
    # The gradient passes exactly where the unit was kept.
    kept = outputs != 0.
    np.testing.assert_array_equal(got, np.where(kept, grads_wrt_outputs, 0.))
    np.testing.assert_array_equal(outputs, np.where(kept, inputs, 0.))


def test_dropout_mask_sharing(rng):
    inputs = np.ones((50, 40))
    shared = layers.DropoutLayer(np.random.RandomState(1), incl_prob=0.5).fprop(inputs)
    assert np.all(shared == shared[0])
    per_example = layers.DropoutLayer(np.random.RandomState(1), incl_prob=0.5,
                                      share_across_batch=False).fprop(inputs)
    assert not np.all(per_example == per_example[0])


def test_dropout_keeps_units_with_probability_incl_prob():
    layer = layers.DropoutLayer(np.random.RandomState(2), incl_prob=0.3, share_across_batch=False)
    kept_fraction = layer.fprop(np.ones((200, 100))).mean()
    assert abs(kept_fraction - 0.3) < 0.01  # 20,000 Bernoulli draws: sd ~0.003.


def test_dropout_evaluation_scales_by_incl_prob(rng):
    layer = layers.DropoutLayer(rng, incl_prob=0.8)
    inputs = rng.normal(size=(4, 6))
    state = layer.rng.get_state()
    np.testing.assert_allclose(layer.fprop(inputs, stochastic=False), 0.8 * inputs)
    # Evaluation draws no random numbers.
    assert layer.rng.get_state()[2] == state[2]
    np.testing.assert_array_equal(layer.rng.get_state()[1], state[1])


def test_dropout_is_reproducible_with_same_seed():
    inputs = np.arange(24.).reshape(4, 6) + 1.
    first = layers.DropoutLayer(np.random.RandomState(9), share_across_batch=False).fprop(inputs)
    second = layers.DropoutLayer(np.random.RandomState(9), share_across_batch=False).fprop(inputs)
    np.testing.assert_array_equal(first, second)


def test_dropout_with_incl_prob_one_is_identity(rng):
    inputs = rng.normal(size=(3, 4))
    np.testing.assert_array_equal(layers.DropoutLayer(rng, incl_prob=1.).fprop(inputs), inputs)


@pytest.mark.parametrize('incl_prob', [0., -0.1, 1.5])
def test_dropout_rejects_bad_incl_prob(incl_prob):
    with pytest.raises(ValueError):
        layers.DropoutLayer(incl_prob=incl_prob)


def test_dropout_bprop_before_fprop_raises():
    layer = layers.DropoutLayer()
    with pytest.raises(RuntimeError):
        layer.bprop(np.ones((1, 2)), np.ones((1, 2)), np.ones((1, 2)))


def test_default_stochastic_rng_does_not_touch_global_state():
    before = np.random.get_state()
    layers.DropoutLayer().fprop(np.ones((3, 3)))
    after = np.random.get_state()
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2] == after[2]


# Numerical stability.

def all_layers_for_stability(rng, dim):
    layer_list = [make(rng, dim) for make, _ in DETERMINISTIC_LAYERS.values()]
    layer_list.append(layers.DropoutLayer(rng, incl_prob=0.5))
    return layer_list


@pytest.mark.parametrize('magnitude', [1e3, -1e3, 'mixed'], ids=str)
def test_layers_are_stable_for_large_inputs(magnitude, rng, strict_floats):
    if magnitude == 'mixed':
        inputs = away_from_zero(rng, (4, 5), 5e2, 1e3)
    else:
        inputs = magnitude * rng.uniform(0.5, 1., size=(4, 5))
    for layer in all_layers_for_stability(rng, 5):
        with strict_floats():
            outputs = layer.fprop(inputs)
            grads = layer.bprop(inputs, outputs, rng.normal(size=outputs.shape))
            if isinstance(layer, layers.LayerWithParameters):
                param_grads = layer.grads_wrt_params(inputs, rng.normal(size=outputs.shape))
                assert all(np.all(np.isfinite(g)) for g in param_grads), repr(layer)
            if isinstance(layer, layers.StochasticLayer):
                assert np.all(np.isfinite(layer.fprop(inputs, stochastic=False)))
        assert np.all(np.isfinite(outputs)), repr(layer)
        assert np.all(np.isfinite(grads)), repr(layer)


def test_saturated_layers_give_exact_limits(strict_floats):
    inputs = np.array([[1e3, -1e3]])
    with strict_floats():
        np.testing.assert_array_equal(layers.SigmoidLayer().fprop(inputs), [[1., 0.]])
        np.testing.assert_array_equal(layers.TanhLayer().fprop(inputs), [[1., -1.]])
        np.testing.assert_array_equal(layers.ELULayer(alpha=1.).fprop(inputs), [[1e3, -1.]])


def test_softmax_of_large_logits_is_exact(strict_floats):
    layer = layers.SoftmaxLayer()
    inputs = np.array([[1000., 1000., -1000.]])
    with strict_floats():
        outputs = layer.fprop(inputs)
        grads = layer.bprop(inputs, outputs, np.array([[1., -1., 2.]]))
    np.testing.assert_array_equal(outputs, [[0.5, 0.5, 0.]])
    np.testing.assert_allclose(grads, [[0.5, -0.5, 0.]])


# AffineLayer with penalties, params_penalty.

def scalar_central_differences(function, parameter, step=1e-6):
    """(f(w + h e_i) - f(w - h e_i)) / 2h for every element i of `parameter`, changed in place."""
    estimate = np.zeros_like(parameter)
    for index in np.ndindex(*parameter.shape):
        saved = parameter[index]
        parameter[index] = saved + step
        plus = function()
        parameter[index] = saved - step
        minus = function()
        parameter[index] = saved
        estimate[index] = (plus - minus) / (2. * step)
    return estimate


@pytest.mark.parametrize('weights_penalty, biases_penalty', [
    (L2Penalty(0.3), None), (None, L2Penalty(0.7)), (L1Penalty(0.2), L2Penalty(0.5)),
    (L1Penalty(0.4), L1Penalty(0.1)),
], ids=repr)
def test_penalised_affine_grads_match_central_differences_of_error_plus_penalty(
        weights_penalty, biases_penalty, rng):
    """grads_wrt_params is the gradient of E = sum(g * y) + params_penalty()."""
    layer = layers.AffineLayer(
        5, 3, UniformInit(-1., 1., rng=rng), UniformInit(-1., 1., rng=rng),
        weights_penalty=weights_penalty, biases_penalty=biases_penalty)
    # Keep every parameter clear of 0, where |w| has a kink.
    for param in layer.params:
        param[np.abs(param) < 0.1] = 0.5
    inputs = rng.normal(size=(4, 5))
    grads_wrt_outputs = rng.normal(size=(4, 3))

    def penalised_error():
        return np.sum(grads_wrt_outputs * layer.fprop(inputs)) + layer.params_penalty()

    grads = layer.grads_wrt_params(inputs, grads_wrt_outputs)
    for param, grad in zip(layer.params, grads):
        assert grad.shape == param.shape
        np.testing.assert_allclose(grad, scalar_central_differences(penalised_error, param),
                                   rtol=1e-6, atol=1e-7)


def test_penalties_add_exactly_their_gradients_and_values(rng):
    plain = layers.AffineLayer(4, 2, UniformInit(-1., 1., rng=rng), UniformInit(-1., 1., rng=rng))
    penalised = layers.AffineLayer(4, 2, weights_penalty=L2Penalty(0.1),
                                   biases_penalty=L1Penalty(0.2))
    penalised.params = [param.copy() for param in plain.params]
    inputs, grads_wrt_outputs = rng.normal(size=(3, 4)), rng.normal(size=(3, 2))
    plain_grads = plain.grads_wrt_params(inputs, grads_wrt_outputs)
    penalised_grads = penalised.grads_wrt_params(inputs, grads_wrt_outputs)
    np.testing.assert_allclose(penalised_grads[0] - plain_grads[0], 0.1 * plain.weights,
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(penalised_grads[1] - plain_grads[1], 0.2 * np.sign(plain.biases),
                               rtol=1e-12, atol=1e-15)
    expected = 0.05 * np.sum(plain.weights ** 2) + 0.2 * np.sum(np.abs(plain.biases))
    assert penalised.params_penalty() == pytest.approx(expected, rel=1e-12)
    # Penalties do not change the forward or backward pass.
    np.testing.assert_array_equal(penalised.fprop(inputs), plain.fprop(inputs))
    np.testing.assert_array_equal(penalised.bprop(inputs, None, grads_wrt_outputs),
                                  plain.bprop(inputs, None, grads_wrt_outputs))


def test_layers_without_penalties_have_zero_params_penalty(rng):
    assert layers.AffineLayer(3, 2).params_penalty() == 0.
    assert layers.ParametricReluLayer(alpha=0.3).params_penalty() == 0.
    assert layers.AffineLayer(3, 2).weights_penalty is None


def test_affine_layer_accepts_the_course_keyword_arguments():
    layer = layers.AffineLayer(input_dim=3, output_dim=2, weights_initialiser=ConstantInit(1.),
                               biases_initialiser=ConstantInit(0.), weights_penalty=L2Penalty(1.),
                               biases_penalty=None)
    assert layer.params_penalty() == pytest.approx(3.)


# MaxPoolingLayer.

def test_max_pooling_values_by_hand():
    inputs = np.array([[1., 3., -2., -5., 0., 4.], [6., -1., 2., 2., -3., -7.]])
    np.testing.assert_array_equal(layers.MaxPoolingLayer(2).fprop(inputs),
                                  [[3., -2., 4.], [6., 2., -3.]])
    np.testing.assert_array_equal(layers.MaxPoolingLayer(3).fprop(inputs), [[3., 4.], [6., 2.]])
    np.testing.assert_array_equal(layers.MaxPoolingLayer(1).fprop(inputs), inputs)


def test_max_pooling_bprop_by_hand():
    inputs = np.array([[1., 3., -2., -5., 0., 4.]])
    grads = layers.MaxPoolingLayer(2).bprop(inputs, None, np.array([[10., 20., 30.]]))
    np.testing.assert_array_equal(grads, [[0., 10., 20., 0., 0., 30.]])


@pytest.mark.parametrize('pool_size, input_dim', [(2, 6), (3, 9), (4, 4), (1, 3)])
def test_max_pooling_bprop_matches_finite_differences(pool_size, input_dim, rng):
    layer = layers.MaxPoolingLayer(pool_size)
    # A permutation of well-separated values: no ties, and the max stays put under small steps.
    inputs = rng.permutation(np.arange(5 * input_dim, dtype=float)).reshape(5, input_dim) * 0.1
    outputs = layer.fprop(inputs)
    assert outputs.shape == (5, input_dim // pool_size)
    grads_wrt_outputs = rng.normal(size=outputs.shape)
    got = layer.bprop(inputs, outputs, grads_wrt_outputs)
    assert got.shape == inputs.shape
    estimate = checks.numerical_gradient(layer.fprop, inputs, grads_wrt_outputs)
    assert_close_to_estimate(got, estimate, repr(layer) + '.bprop')


def test_max_pooling_ties_send_the_gradient_to_one_element():
    inputs = np.array([[2., 2., 5., 5., 5., -1.]])
    grads = layers.MaxPoolingLayer(3).bprop(inputs, None, np.array([[7., -3.]]))
    groups = grads.reshape(2, 3)
    assert np.count_nonzero(groups[0]) == 1 and groups[0].sum() == 7.
    assert np.count_nonzero(groups[1]) == 1 and groups[1].sum() == -3.
    # The chosen element is a maximal one.
    assert inputs.reshape(2, 3)[0][groups[0] != 0.] == 5.


def test_max_pooling_keeps_leading_axes(rng):
    inputs = rng.normal(size=(2, 3, 8))
    layer = layers.MaxPoolingLayer(4)
    outputs = layer.fprop(inputs)
    np.testing.assert_array_equal(outputs, inputs.reshape(2, 3, 2, 4).max(axis=-1))
    assert layer.bprop(inputs, outputs, np.ones(outputs.shape)).shape == inputs.shape


def test_max_pooling_rejects_input_dim_not_a_multiple_of_pool_size():
    layer = layers.MaxPoolingLayer(4)
    with pytest.raises(ValueError, match='multiple of 4'):
        layer.fprop(np.zeros((2, 6)))
    with pytest.raises(ValueError, match='multiple of 4'):
        layer.bprop(np.zeros((2, 6)), None, np.zeros((2, 1)))


@pytest.mark.parametrize('pool_size', [0, -2, 1.5, '2', True, None])
def test_max_pooling_rejects_bad_pool_size(pool_size):
    with pytest.raises(ValueError, match='pool_size'):
        layers.MaxPoolingLayer(pool_size)


def test_max_pooling_repr_and_default():
    assert repr(layers.MaxPoolingLayer()) == 'MaxPoolingLayer(pool_size=2)'
    assert not isinstance(layers.MaxPoolingLayer(), layers.LayerWithParameters)
