"""Tests of mlp.models: activations, parameter order, gradients against finite differences."""

import numpy as np
import pytest

from mlp import checks
from mlp import errors
from mlp import layers
from mlp.initialisers import UniformInit
from mlp.models import MultipleLayerModel, SingleLayerModel
from mlp.penalties import L1Penalty, L2Penalty


def two_hidden_layer_model(rng, hidden_layer_types=(layers.TanhLayer, layers.SigmoidLayer)):
    """4 -> 5 -> 6 -> 3 affine layers with two non-linearities between them."""
    weights, biases = UniformInit(-0.7, 0.7, rng=rng), UniformInit(-0.3, 0.3, rng=rng)
    first, second = hidden_layer_types
    return MultipleLayerModel([
        layers.AffineLayer(4, 5, weights, biases), first(),
        layers.AffineLayer(5, 6, weights, biases), second(),
        layers.AffineLayer(6, 3, weights, biases),
    ])


def error_gradient_check(model, error, inputs, targets):
    """Asserts model.grads_wrt_params equals central differences of the error."""
    params = model.params
    activations = model.fprop(inputs)
    grads = model.grads_wrt_params(activations, error.grad(activations[-1], targets))
    assert len(grads) == len(params)
    for i, (param, grad) in enumerate(zip(params, grads)):
        assert grad.shape == param.shape
        original = param.copy()

        def error_of_param(value):
            param[...] = value
            return error(model.fprop(inputs)[-1], targets)

        estimate = checks.numerical_gradient(error_of_param, original, np.array(1.))
        param[...] = original
        comparison = checks.compare_arrays(grad, estimate, 'grads_wrt_params[{0}]'.format(i),
                                           checks.GRADCHECK_RTOL, checks.GRADCHECK_ATOL)
        assert comparison.ok, comparison.message


@pytest.mark.parametrize('hidden', [(layers.TanhLayer, layers.SigmoidLayer),
                                    (layers.ReluLayer, layers.TanhLayer),
                                    (layers.ELULayer, layers.SoftmaxLayer)],
                         ids=lambda types: '-'.join(t.__name__ for t in types))
@pytest.mark.parametrize('error', [errors.CrossEntropySoftmaxError(),
                                   errors.SumOfSquaredDiffsError(),
                                   errors.BinaryCrossEntropySigmoidError()], ids=repr)
def test_two_hidden_layer_model_gradients_match_finite_differences(hidden, error, rng):
    model = two_hidden_layer_model(rng, hidden)
    inputs = rng.normal(size=(7, 4))
    targets = np.eye(3)[rng.randint(3, size=7)]
    error_gradient_check(model, error, inputs, targets)


def test_single_layer_model_gradients_match_finite_differences(rng):
    model = SingleLayerModel(layers.AffineLayer(4, 3, UniformInit(-1., 1., rng=rng),
                                                UniformInit(-1., 1., rng=rng)))
    inputs = rng.normal(size=(5, 4))
    targets = np.eye(3)[rng.randint(3, size=5)]
    error_gradient_check(model, errors.CrossEntropySoftmaxError(), inputs, targets)


def test_model_with_parametric_relu_and_softmax_output(rng):
    weights = UniformInit(-0.7, 0.7, rng=rng)
    model = MultipleLayerModel([layers.AffineLayer(3, 4, weights), layers.ParametricReluLayer(0.2),
                                layers.AffineLayer(4, 3, weights), layers.SoftmaxLayer()])
    assert len(model.params) == 5
    inputs = rng.normal(size=(6, 3))
    targets = np.eye(3)[rng.randint(3, size=6)]
    error_gradient_check(model, errors.CrossEntropyError(), inputs, targets)


def test_fprop_returns_inputs_then_each_layer_output(rng):
    model = two_hidden_layer_model(rng)
    inputs = rng.normal(size=(2, 4))
    activations = model.fprop(inputs)
    assert len(activations) == len(model.layers) + 1
    assert activations[0] is inputs
    expected = inputs
    for layer, activation in zip(model.layers, activations[1:]):
        expected = layer.fprop(expected)
        np.testing.assert_array_equal(activation, expected)
    assert [a.shape for a in activations] == [(2, 4), (2, 5), (2, 5), (2, 6), (2, 6), (2, 3)]


def test_single_layer_model_fprop_and_params(rng):
    layer = layers.AffineLayer(3, 2)
    model = SingleLayerModel(layer)
    inputs = rng.normal(size=(4, 3))
    activations = model.fprop(inputs)
    assert len(activations) == 2 and activations[0] is inputs
    np.testing.assert_array_equal(activations[1], layer.fprop(inputs))
    assert model.params[0] is layer.weights and model.params[1] is layer.biases
    assert repr(model) == 'SingleLayerModel(AffineLayer(input_dim=3, output_dim=2))'


def test_params_are_the_layer_arrays_in_layer_order(rng):
    model = two_hidden_layer_model(rng)
    affine = [layer for layer in model.layers if isinstance(layer, layers.AffineLayer)]
    expected = [array for layer in affine for array in (layer.weights, layer.biases)]
    assert len(model.params) == 6
    assert all(got is want for got, want in zip(model.params, expected))


def test_multiple_layer_model_repr_lists_layers(rng):
    text = repr(two_hidden_layer_model(rng))
    assert text.startswith('MultipleLayerModel(')
    for name in ['AffineLayer(input_dim=4, output_dim=5)', 'TanhLayer', 'SigmoidLayer',
                 'AffineLayer(input_dim=6, output_dim=3)']:
        assert name in text
    assert text.index('TanhLayer') < text.index('SigmoidLayer')


def test_dropout_is_stochastic_in_training_and_deterministic_in_evaluation(rng):
    model = MultipleLayerModel([layers.DropoutLayer(rng, incl_prob=0.5),
                                layers.AffineLayer(6, 2)])
    inputs = np.ones((3, 6))
    np.testing.assert_allclose(model.fprop(inputs, evaluation=True)[1], 0.5 * inputs)
    training = model.fprop(inputs)[1]
    assert set(np.unique(training)) <= {0., 1.}
    # Gradients flow through the sampled mask.
    activations = model.fprop(inputs)
    grads = model.grads_wrt_params(activations, np.ones((3, 2)))
    np.testing.assert_allclose(grads[0], np.ones((2, 3)).dot(activations[1]))


def test_params_penalty_sums_the_layers_penalties(rng):
    init = UniformInit(-1., 1., rng=rng)
    first = layers.AffineLayer(4, 6, init, init, weights_penalty=L2Penalty(0.1))
    second = layers.AffineLayer(3, 2, init, init, weights_penalty=L1Penalty(0.2),
                                biases_penalty=L2Penalty(0.3))
    model = MultipleLayerModel([first, layers.MaxPoolingLayer(2), second, layers.SoftmaxLayer()])
    expected = (0.05 * np.sum(first.weights ** 2) + 0.2 * np.sum(np.abs(second.weights))
                + 0.15 * np.sum(second.biases ** 2))
    assert model.params_penalty() == pytest.approx(expected, rel=1e-12)
    assert SingleLayerModel(second).params_penalty() == pytest.approx(second.params_penalty())


def test_models_without_penalties_have_zero_params_penalty(rng):
    assert two_hidden_layer_model(rng).params_penalty() == 0.
    assert SingleLayerModel(layers.AffineLayer(2, 2)).params_penalty() == 0.

    class OwnLayer(object):  # a layer written without params_penalty
        def fprop(self, inputs):
            return inputs

    assert MultipleLayerModel([OwnLayer(), layers.AffineLayer(2, 2)]).params_penalty() == 0.


def test_maxout_model_with_penalties_gradients_match_finite_differences(rng):
    """Gradients of error + params_penalty through affine -> max-pooling -> affine."""
    init = UniformInit(-1., 1., rng=rng)
    model = MultipleLayerModel([
        layers.AffineLayer(4, 6, init, init, weights_penalty=L2Penalty(0.2)),
        layers.MaxPoolingLayer(3),
        layers.AffineLayer(2, 3, init, init, weights_penalty=L1Penalty(0.1),
                           biases_penalty=L2Penalty(0.05)),
    ])
    for param in model.params:
        param[np.abs(param) < 0.1] = 0.4  # clear of the kink of |w|
    inputs = rng.normal(size=(5, 4))
    targets = np.eye(3)[rng.randint(3, size=5)]

    class PenalisedError(object):
        """The objective training minimises: the error plus the model's penalty."""

        def __call__(self, outputs, targets):
            return errors.CrossEntropySoftmaxError()(outputs, targets) + model.params_penalty()

        def grad(self, outputs, targets):
            return errors.CrossEntropySoftmaxError().grad(outputs, targets)

    error_gradient_check(model, PenalisedError(), inputs, targets)
