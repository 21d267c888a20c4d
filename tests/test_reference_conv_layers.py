"""Tests of the reference convolutional-network layers of mlp.layers (issue 13).

ConvolutionalLayer, MaxPooling2DLayer, BatchNormalizationLayer and
ReshapeLayer as the bridge between image batches and affine layers. The
oracles are independent of the code under test: naive loops written here,
central differences computed here (not mlp.checks), and values published
by the course.
"""

import numpy as np
import pytest

from mlp import layers
from mlp.initialisers import UniformInit
from mlp.models import MultipleLayerModel

STEP = 1e-5  # Central-difference step; float64 values of order 1.
GRAD_RTOL = 1e-5
GRAD_ATOL = 1e-7

# (batch, in channels, out channels, dim_1, dim_2, kernel_dim_1, kernel_dim_2):
# one channel and several, square and non-square kernels, batch of one, odd
# sizes, a kernel as large as the input along one axis, 1x1 and 1xK kernels.
CONV_SHAPES = [
    (1, 1, 1, 5, 5, 3, 3),
    (2, 3, 2, 4, 4, 2, 2),
    (3, 2, 4, 7, 5, 3, 2),
    (1, 1, 3, 6, 7, 1, 4),
    (2, 2, 2, 5, 3, 5, 3),
    (4, 1, 2, 9, 8, 4, 3),
    (2, 3, 1, 3, 3, 1, 1),
]


def central_differences(function, x, grads_wrt_outputs, step=STEP):
    """Estimates d/dx of E(x) = sum(grads_wrt_outputs * function(x)) element by element."""
    x = np.array(x, dtype=float)
    estimate = np.zeros(x.shape)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + step
        plus = np.sum(grads_wrt_outputs * function(x))
        x[index] = original - step
        minus = np.sum(grads_wrt_outputs * function(x))
        x[index] = original
        estimate[index] = (plus - minus) / (2. * step)
    return estimate


def param_gradient_estimates(layer, fprop, grads_wrt_outputs):
    """Central-difference estimates of dE/dparam for each of layer.params (restored after)."""
    original = [np.array(param, dtype=float) for param in layer.params]
    estimates = []
    for i in range(len(original)):
        def fprop_of_param(value, i=i):
            layer.params = [value if j == i else param.copy() for j, param in enumerate(original)]
            return fprop()
        estimates.append(central_differences(fprop_of_param, original[i], grads_wrt_outputs))
    layer.params = [param.copy() for param in original]
    return estimates


def naive_convolution(inputs, kernels, biases):
    """Valid 2-D convolution (kernel flipped) with explicit loops over every index."""
    batch_size, channels, dim_1, dim_2 = inputs.shape
    num_maps, _, kernel_1, kernel_2 = kernels.shape
    outputs = np.zeros((batch_size, num_maps, dim_1 - kernel_1 + 1, dim_2 - kernel_2 + 1))
    for n in range(batch_size):
        for f in range(num_maps):
            for i in range(outputs.shape[2]):
                for j in range(outputs.shape[3]):
                    total = biases[f]
                    for c in range(channels):
                        for p in range(kernel_1):
                            for q in range(kernel_2):
                                total += (inputs[n, c, i + p, j + q]
                                          * kernels[f, c, kernel_1 - 1 - p, kernel_2 - 1 - q])
                    outputs[n, f, i, j] = total
    return outputs


def naive_max_pooling(inputs, size):
    """Max over each non-overlapping size x size window, with explicit loops."""
    batch_size, channels, dim_1, dim_2 = inputs.shape
    outputs = np.zeros((batch_size, channels, dim_1 // size, dim_2 // size))
    for n in range(batch_size):
        for c in range(channels):
            for i in range(dim_1 // size):
                for j in range(dim_2 // size):
                    outputs[n, c, i, j] = inputs[n, c, i * size:(i + 1) * size,
                                                 j * size:(j + 1) * size].max()
    return outputs


def make_conv_layer(rng, shape):
    _, channels, maps, dim_1, dim_2, kernel_1, kernel_2 = shape
    return layers.ConvolutionalLayer(
        channels, maps, dim_1, dim_2, kernel_1, kernel_2,
        kernels_init=UniformInit(-1., 1., rng=rng), biases_init=UniformInit(-1., 1., rng=rng))


def conv_inputs(rng, shape):
    batch_size, channels, _, dim_1, dim_2, _, _ = shape
    return rng.uniform(-2., 2., size=(batch_size, channels, dim_1, dim_2))


# --- ConvolutionalLayer ---------------------------------------------------------------------


def test_conv_fprop_reproduces_the_course_published_values():
    # The course's fprop test: arange inputs (2, 3, 4, 4), kernels
    # arange(-12, 12) as (2, 3, 2, 2), biases [0, 1]; its expected outputs are
    # those of a convolution (kernels flipped). Rows copied from that test.
    layer = layers.ConvolutionalLayer(3, 2, 4, 4, 2, 2)
    layer.params = [np.arange(-12, 12).reshape((2, 3, 2, 2)).astype(float), np.arange(2.)]
    outputs = layer.fprop(np.arange(96.).reshape((2, 3, 4, 4)))
    assert outputs.shape == (2, 2, 3, 3)
    np.testing.assert_allclose(outputs[0, 0], [[-958., -1036., -1114.],
                                               [-1270., -1348., -1426.],
                                               [-1582., -1660., -1738.]])
    np.testing.assert_allclose(outputs[0, 1], [[1707., 1773., 1839.],
                                               [1971., 2037., 2103.],
                                               [2235., 2301., 2367.]])
    np.testing.assert_allclose(outputs[1, 0, 0], [-4702., -4780., -4858.])
    np.testing.assert_allclose(outputs[1, 1, 0], [4875., 4941., 5007.])


def test_conv_is_a_convolution_not_a_cross_correlation():
    # One 2x2 kernel [[1, 0], [0, 0]] on a 1-channel image: a convolution
    # picks the bottom-right pixel of each patch, a cross-correlation the top-left.
    layer = layers.ConvolutionalLayer(1, 1, 3, 3, 2, 2)
    layer.params = [np.array([[[[1., 0.], [0., 0.]]]]), np.zeros(1)]
    image = np.arange(9.).reshape((1, 1, 3, 3))
    np.testing.assert_array_equal(layer.fprop(image)[0, 0], [[4., 5.], [7., 8.]])


@pytest.mark.parametrize('shape', CONV_SHAPES)
def test_conv_fprop_matches_naive_loops(shape):
    rng = np.random.RandomState(1)
    layer = make_conv_layer(rng, shape)
    inputs = conv_inputs(rng, shape)
    outputs = layer.fprop(inputs)
    batch_size, _, maps, dim_1, dim_2, kernel_1, kernel_2 = shape
    assert outputs.shape == (batch_size, maps, dim_1 - kernel_1 + 1, dim_2 - kernel_2 + 1)
    np.testing.assert_allclose(outputs, naive_convolution(inputs, layer.kernels, layer.biases),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('shape', CONV_SHAPES)
def test_conv_bprop_matches_central_differences(shape):
    rng = np.random.RandomState(2)
    layer = make_conv_layer(rng, shape)
    inputs = conv_inputs(rng, shape)
    outputs = layer.fprop(inputs)
    grads_wrt_outputs = rng.normal(size=outputs.shape)
    got = layer.bprop(inputs, outputs, grads_wrt_outputs)
    assert got.shape == inputs.shape
    np.testing.assert_allclose(
        got, central_differences(layer.fprop, inputs, grads_wrt_outputs),
        rtol=GRAD_RTOL, atol=GRAD_ATOL)


@pytest.mark.parametrize('shape', CONV_SHAPES)
def test_conv_grads_wrt_params_match_central_differences(shape):
    rng = np.random.RandomState(3)
    layer = make_conv_layer(rng, shape)
    inputs = conv_inputs(rng, shape)
    grads_wrt_outputs = rng.normal(size=layer.fprop(inputs).shape)
    grads = layer.grads_wrt_params(inputs, grads_wrt_outputs)
    estimates = param_gradient_estimates(layer, lambda: layer.fprop(inputs), grads_wrt_outputs)
    assert [grad.shape for grad in grads] == [param.shape for param in layer.params]
    for grad, estimate in zip(grads, estimates):
        np.testing.assert_allclose(grad, estimate, rtol=GRAD_RTOL, atol=GRAD_ATOL)


def test_conv_leaves_its_arguments_unmodified_and_is_batch_independent():
    rng = np.random.RandomState(4)
    shape = CONV_SHAPES[2]
    layer = make_conv_layer(rng, shape)
    inputs = conv_inputs(rng, shape)
    grads_wrt_outputs = rng.normal(size=layer.fprop(inputs).shape)
    inputs_copy, grads_copy = inputs.copy(), grads_wrt_outputs.copy()
    outputs = layer.fprop(inputs)
    layer.bprop(inputs, outputs, grads_wrt_outputs)
    layer.grads_wrt_params(inputs, grads_wrt_outputs)
    np.testing.assert_array_equal(inputs, inputs_copy)
    np.testing.assert_array_equal(grads_wrt_outputs, grads_copy)
    one_by_one = np.concatenate([layer.fprop(inputs[n:n + 1]) for n in range(len(inputs))])
    np.testing.assert_allclose(outputs, one_by_one, rtol=1e-12, atol=1e-12)
    bprop_one_by_one = np.concatenate([
        layer.bprop(inputs[n:n + 1], outputs[n:n + 1], grads_wrt_outputs[n:n + 1])
        for n in range(len(inputs))])
    np.testing.assert_allclose(layer.bprop(inputs, outputs, grads_wrt_outputs),
                               bprop_one_by_one, rtol=1e-12, atol=1e-12)


class SquaredPenalty(object):
    """A stand-in penalty, duck-typed like mlp.penalties: P(w) = c sum(w^2)."""

    def __init__(self, coefficient):
        self.coefficient = coefficient

    def __call__(self, parameter):
        return self.coefficient * np.sum(parameter ** 2)

    def grad(self, parameter):
        return 2. * self.coefficient * parameter


def test_conv_penalties_add_their_values_and_gradients():
    rng = np.random.RandomState(5)
    shape = CONV_SHAPES[1]
    plain = make_conv_layer(np.random.RandomState(6), shape)
    penalised = make_conv_layer(np.random.RandomState(6), shape)
    penalised.kernels_penalty = SquaredPenalty(0.1)
    penalised.biases_penalty = SquaredPenalty(0.3)
    inputs = conv_inputs(rng, shape)
    grads_wrt_outputs = rng.normal(size=plain.fprop(inputs).shape)
    plain_grads = plain.grads_wrt_params(inputs, grads_wrt_outputs)
    penalised_grads = penalised.grads_wrt_params(inputs, grads_wrt_outputs)
    np.testing.assert_allclose(penalised_grads[0], plain_grads[0] + 0.2 * plain.kernels)
    np.testing.assert_allclose(penalised_grads[1], plain_grads[1] + 0.6 * plain.biases)
    assert plain.params_penalty() == 0
    assert penalised.params_penalty() == pytest.approx(
        0.1 * np.sum(plain.kernels ** 2) + 0.3 * np.sum(plain.biases ** 2))


def test_conv_default_parameters_and_repr():
    layer = layers.ConvolutionalLayer(2, 3, 6, 5, 3, 2)
    assert layer.kernels.shape == (3, 2, 3, 2)
    assert np.all(np.abs(layer.kernels) <= 0.01) and np.any(layer.kernels != 0.)
    np.testing.assert_array_equal(layer.biases, np.zeros(3))
    assert layer.params[0] is layer.kernels and layer.params[1] is layer.biases
    assert isinstance(layer, layers.LayerWithParameters)
    assert repr(layer) == ('ConvolutionalLayer(num_input_channels=2, num_output_channels=3, '
                           'input_dim_1=6, input_dim_2=5, kernel_dim_1=3, kernel_dim_2=2)')


def test_conv_keeps_float32_as_float32():
    rng = np.random.RandomState(7)
    layer = layers.ConvolutionalLayer(1, 2, 5, 5, 3, 3)
    layer.params = [param.astype(np.float32) for param in layer.params]
    inputs = rng.normal(size=(2, 1, 5, 5)).astype(np.float32)
    outputs = layer.fprop(inputs)
    grads = np.ones_like(outputs)
    assert outputs.dtype == np.float32
    assert layer.bprop(inputs, outputs, grads).dtype == np.float32
    assert [g.dtype for g in layer.grads_wrt_params(inputs, grads)] == [np.float32] * 2


@pytest.mark.parametrize('bad_shape', [(2, 1, 5), (2, 2, 5, 5), (2, 1, 5, 6), (2, 1, 6, 5),
                                       (1, 5, 5)])
def test_conv_rejects_inputs_of_the_wrong_shape(bad_shape):
    layer = layers.ConvolutionalLayer(1, 2, 5, 5, 3, 3)
    with pytest.raises(ValueError, match='expects inputs of shape'):
        layer.fprop(np.zeros(bad_shape))
    with pytest.raises(ValueError, match='expects inputs of shape'):
        layer.grads_wrt_params(np.zeros(bad_shape), np.zeros((2, 2, 3, 3)))


@pytest.mark.parametrize('arguments, message', [
    ((1, 1, 4, 4, 5, 3), 'do not fit'),
    ((1, 1, 4, 4, 3, 5), 'do not fit'),
    ((0, 1, 4, 4, 3, 3), 'num_input_channels must be a positive integer'),
    ((1, 2.5, 4, 4, 3, 3), 'num_output_channels must be a positive integer'),
    ((1, 1, 4, 4, 3, -1), 'kernel_dim_2 must be a positive integer'),
])
def test_conv_rejects_bad_sizes(arguments, message):
    with pytest.raises(ValueError, match=message):
        layers.ConvolutionalLayer(*arguments)


# --- MaxPooling2DLayer ----------------------------------------------------------------------

POOL_SHAPES = [((1, 1, 2, 2), 2), ((2, 3, 4, 6), 2), ((1, 2, 6, 9), 3), ((3, 1, 3, 5), 1),
               ((2, 2, 8, 4), 4)]


def distinct_values(rng, shape):
    """Values at least 0.1 apart, so that no finite-difference step changes a maximum."""
    return 0.1 * rng.permutation(int(np.prod(shape))).reshape(shape) - 1.


@pytest.mark.parametrize('shape, size', POOL_SHAPES)
def test_max_pooling_fprop_matches_naive_loops(shape, size):
    rng = np.random.RandomState(8)
    inputs = rng.normal(size=shape)
    layer = layers.MaxPooling2DLayer(size)
    np.testing.assert_array_equal(layer.fprop(inputs), naive_max_pooling(inputs, size))


@pytest.mark.parametrize('shape, size', POOL_SHAPES)
def test_max_pooling_bprop_matches_central_differences(shape, size):
    rng = np.random.RandomState(9)
    inputs = distinct_values(rng, shape)
    layer = layers.MaxPooling2DLayer(size)
    outputs = layer.fprop(inputs)
    grads_wrt_outputs = rng.normal(size=outputs.shape)
    got = layer.bprop(inputs, outputs, grads_wrt_outputs)
    assert got.shape == inputs.shape
    np.testing.assert_allclose(
        got, central_differences(layer.fprop, inputs, grads_wrt_outputs),
        rtol=GRAD_RTOL, atol=GRAD_ATOL)


def test_max_pooling_sends_a_tied_windows_gradient_to_its_first_maximum_only():
    # Window 1: all equal; window 2: maximum 3 at (0, 1) and (1, 0);
    # window 3: maximum 5 at (1, 0) and (1, 1); window 4: a unique maximum.
    inputs = np.array([[[[2., 2., 1., 3.],
                         [2., 2., 3., 0.],
                         [0., 1., 7., 6.],
                         [5., 5., 4., 6.5]]]])
    layer = layers.MaxPooling2DLayer(2)
    outputs = layer.fprop(inputs)
    np.testing.assert_array_equal(outputs, [[[[2., 3.], [5., 7.]]]])
    grads_wrt_outputs = np.array([[[[10., 20.], [30., 40.]]]])
    expected = np.array([[[[10., 0., 0., 20.],
                           [0., 0., 0., 0.],
                           [0., 0., 40., 0.],
                           [30., 0., 0., 0.]]]])
    np.testing.assert_array_equal(layer.bprop(inputs, outputs, grads_wrt_outputs), expected)


def test_max_pooling_gradient_sums_are_kept_per_window():
    rng = np.random.RandomState(10)
    inputs = rng.randint(0, 3, size=(3, 2, 6, 6)).astype(float)  # many ties
    layer = layers.MaxPooling2DLayer(3)
    outputs = layer.fprop(inputs)
    grads_wrt_outputs = rng.uniform(1., 2., size=outputs.shape)
    grads = layer.bprop(inputs, outputs, grads_wrt_outputs)
    windows = grads.reshape(3, 2, 2, 3, 2, 3)
    np.testing.assert_allclose(windows.sum(axis=(3, 5)), grads_wrt_outputs)
    assert np.all((windows != 0).sum(axis=(3, 5)) == 1)
    # Each window's gradient lands on one of its maximal elements.
    at_maxima = inputs.reshape(windows.shape) == outputs[:, :, :, None, :, None]
    assert np.all(at_maxima[windows != 0])


def test_max_pooling_leaves_inputs_unmodified():
    rng = np.random.RandomState(11)
    inputs = rng.normal(size=(2, 2, 4, 4))
    copy = inputs.copy()
    layer = layers.MaxPooling2DLayer(2)
    outputs = layer.fprop(inputs)
    layer.bprop(inputs, outputs, np.ones(outputs.shape))
    np.testing.assert_array_equal(inputs, copy)


@pytest.mark.parametrize('shape, size', [((1, 1, 5, 4), 2), ((1, 1, 4, 5), 2), ((2, 3, 6, 6), 4)])
def test_max_pooling_rejects_sizes_that_are_not_multiples(shape, size):
    with pytest.raises(ValueError, match='multiples of {0}'.format(size)):
        layers.MaxPooling2DLayer(size).fprop(np.zeros(shape))


def test_max_pooling_rejects_inputs_that_are_not_4d_and_bad_pool_sizes():
    with pytest.raises(ValueError, match='batch_size, channels, dim_1, dim_2'):
        layers.MaxPooling2DLayer(2).fprop(np.zeros((4, 4)))
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match='pool_size must be a positive integer'):
            layers.MaxPooling2DLayer(bad)
    assert repr(layers.MaxPooling2DLayer(3)) == 'MaxPooling2DLayer(pool_size=3)'


# --- ReshapeLayer as the bridge ---------------------------------------------------------------


def test_reshape_layer_bridges_image_batches_and_vectors_both_ways():
    rng = np.random.RandomState(12)
    images = rng.normal(size=(3, 2, 4, 5))
    flatten = layers.ReshapeLayer()
    vectors = flatten.fprop(images)
    assert vectors.shape == (3, 40)
    np.testing.assert_array_equal(vectors[1], images[1].ravel())
    grads = rng.normal(size=vectors.shape)
    np.testing.assert_array_equal(flatten.bprop(images, vectors, grads),
                                  grads.reshape(images.shape))
    unflatten = layers.ReshapeLayer((2, 4, 5))
    np.testing.assert_array_equal(unflatten.fprop(vectors), images)
    image_grads = rng.normal(size=images.shape)
    np.testing.assert_array_equal(unflatten.bprop(vectors, images, image_grads),
                                  image_grads.reshape(vectors.shape))


# --- BatchNormalizationLayer ------------------------------------------------------------------

BN_SHAPES = [(2, 3), (5, 4), (7, 1), (3, 6)]


def make_batch_norm(rng, dim):
    layer = layers.BatchNormalizationLayer(dim)
    layer.params = [rng.uniform(0.5, 2., size=dim), rng.uniform(-1., 1., size=dim)]
    return layer


@pytest.mark.parametrize('shape', BN_SHAPES)
def test_batch_norm_training_fprop_uses_batch_statistics(shape):
    rng = np.random.RandomState(13)
    layer = make_batch_norm(rng, shape[1])
    inputs = rng.normal(loc=3., scale=2., size=shape)
    gamma, beta = layer.params
    expected = np.zeros(shape)
    for d in range(shape[1]):
        column = inputs[:, d]
        mean = sum(column) / len(column)
        variance = sum((value - mean) ** 2 for value in column) / len(column)
        expected[:, d] = gamma[d] * (column - mean) / np.sqrt(variance + 1e-5) + beta[d]
    np.testing.assert_allclose(layer.fprop(inputs), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.fprop(inputs, stochastic=True), expected,
                               rtol=1e-10, atol=1e-12)


def test_batch_norm_running_averages_and_inference_mode():
    rng = np.random.RandomState(14)
    layer = make_batch_norm(rng, 3)
    gamma, beta = layer.params
    first, second = rng.normal(1., 2., size=(4, 3)), rng.normal(-1., 0.5, size=(6, 3))
    np.testing.assert_array_equal(layer.running_mean, np.zeros(3))
    np.testing.assert_array_equal(layer.running_var, np.ones(3))
    layer.fprop(first)
    layer.fprop(second, stochastic=True)
    decay = layer.decay
    expected_mean = (1 - decay) * (decay * first.mean(0) + second.mean(0))
    expected_var = (decay ** 2 + (1 - decay) * (decay * first.var(0) + second.var(0)))
    np.testing.assert_allclose(layer.running_mean, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, expected_var, rtol=1e-12)
    test_inputs = rng.normal(size=(5, 3))
    outputs = layer.fprop(test_inputs, stochastic=False)
    np.testing.assert_allclose(
        outputs, gamma * (test_inputs - expected_mean) / np.sqrt(expected_var + 1e-5) + beta,
        rtol=1e-12)
    # Inference neither updates the averages nor depends on the rest of the batch.
    np.testing.assert_allclose(layer.running_mean, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(layer.fprop(test_inputs[2:3], stochastic=False), outputs[2:3],
                               rtol=1e-12)


@pytest.mark.parametrize('decay, epsilon', [(0.5, 1e-3), (0., 1e-5)])
def test_batch_norm_decay_and_epsilon_are_honoured(decay, epsilon):
    rng = np.random.RandomState(15)
    inputs = rng.normal(size=(4, 2))
    layer = layers.BatchNormalizationLayer(2, decay=decay, epsilon=epsilon)
    outputs = layer.fprop(inputs)
    np.testing.assert_allclose(
        outputs, (inputs - inputs.mean(0)) / np.sqrt(inputs.var(0) + epsilon), rtol=1e-12)
    np.testing.assert_allclose(layer.running_mean, (1 - decay) * inputs.mean(0), rtol=1e-12)


@pytest.mark.parametrize('shape', BN_SHAPES)
def test_batch_norm_bprop_matches_central_differences(shape):
    rng = np.random.RandomState(16)
    layer = make_batch_norm(rng, shape[1])
    inputs = rng.normal(size=shape)
    outputs = layer.fprop(inputs)
    grads_wrt_outputs = rng.normal(size=shape)
    got = layer.bprop(inputs, outputs, grads_wrt_outputs)
    assert got.shape == shape
    np.testing.assert_allclose(
        got, central_differences(layer.fprop, inputs, grads_wrt_outputs),
        rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('shape', BN_SHAPES)
def test_batch_norm_grads_wrt_params_match_central_differences(shape):
    rng = np.random.RandomState(17)
    layer = make_batch_norm(rng, shape[1])
    inputs = rng.normal(size=shape)
    grads_wrt_outputs = rng.normal(size=shape)
    grads = layer.grads_wrt_params(inputs, grads_wrt_outputs)
    estimates = param_gradient_estimates(layer, lambda: layer.fprop(inputs), grads_wrt_outputs)
    assert [grad.shape for grad in grads] == [(shape[1],)] * 2
    for grad, estimate in zip(grads, estimates):
        np.testing.assert_allclose(grad, estimate, rtol=GRAD_RTOL, atol=GRAD_ATOL)


def test_batch_norm_of_a_batch_of_one_and_of_a_constant_feature_stays_finite():
    rng = np.random.RandomState(18)
    layer = make_batch_norm(rng, 3)
    single = rng.normal(size=(1, 3))
    outputs = layer.fprop(single)
    np.testing.assert_allclose(outputs, layer.beta[None, :])
    np.testing.assert_allclose(layer.bprop(single, outputs, np.ones((1, 3))), np.zeros((1, 3)))
    constant = np.ones((4, 3))
    constant[:, 1] = rng.normal(size=4)
    outputs = layer.fprop(constant)
    assert np.all(np.isfinite(outputs))
    np.testing.assert_allclose(outputs[:, 0], layer.beta[0])


def test_batch_norm_defaults_interface_and_repr():
    layer = layers.BatchNormalizationLayer(4)
    np.testing.assert_array_equal(layer.gamma, np.ones(4))
    np.testing.assert_array_equal(layer.beta, np.zeros(4))
    assert layer.params[0] is layer.gamma and layer.params[1] is layer.beta
    assert layer.epsilon == 1e-5
    assert isinstance(layer, layers.LayerWithParameters)
    assert isinstance(layer, layers.StochasticLayer)
    assert repr(layer) == 'BatchNormalizationLayer(input_dim=4)'


def test_batch_norm_rejects_bad_inputs_and_arguments():
    layer = layers.BatchNormalizationLayer(4)
    for bad_shape in [(2, 3), (2, 4, 1, 1), (4,)]:
        with pytest.raises(ValueError, match=r'expects inputs of shape \(batch_size, 4\)'):
            layer.fprop(np.zeros(bad_shape))
        with pytest.raises(ValueError, match=r'expects inputs of shape \(batch_size, 4\)'):
            layer.fprop(np.zeros(bad_shape), stochastic=False)
    with pytest.raises(ValueError, match='input_dim'):
        layers.BatchNormalizationLayer(0)
    with pytest.raises(ValueError, match='decay'):
        layers.BatchNormalizationLayer(3, decay=1.)
    with pytest.raises(ValueError, match='epsilon'):
        layers.BatchNormalizationLayer(3, epsilon=0.)


def test_batch_norm_follows_the_models_evaluation_flag():
    rng = np.random.RandomState(19)
    norm = layers.BatchNormalizationLayer(3)
    model = MultipleLayerModel([layers.AffineLayer(2, 3), norm])
    inputs = rng.normal(size=(5, 2))
    model.fprop(inputs, evaluation=True)
    np.testing.assert_array_equal(norm.running_mean, np.zeros(3))
    model.fprop(inputs)
    assert np.any(norm.running_mean != 0.)
    assert len(model.params) == 4


# --- the layers together in a model -----------------------------------------------------------


def test_a_convolutional_model_has_correct_parameter_gradients():
    rng = np.random.RandomState(20)
    model = MultipleLayerModel([
        layers.ConvolutionalLayer(2, 3, 7, 6, 2, 3, UniformInit(-1., 1., rng=rng),
                                  UniformInit(-1., 1., rng=rng)),
        layers.MaxPooling2DLayer(2),
        layers.ReshapeLayer(),
        layers.BatchNormalizationLayer(18),
        layers.AffineLayer(18, 4, UniformInit(-1., 1., rng=rng)),
    ])
    inputs = distinct_values(rng, (4, 2, 7, 6))
    activations = model.fprop(inputs)
    assert activations[1].shape == (4, 3, 6, 4)
    assert activations[2].shape == (4, 3, 3, 2)
    grads_wrt_outputs = rng.normal(size=activations[-1].shape)
    grads = model.grads_wrt_params(activations, grads_wrt_outputs)
    params = model.params
    assert [grad.shape for grad in grads] == [param.shape for param in params]
    for param, grad in zip(params, grads):
        def model_outputs(value, param=param):
            saved = param.copy()
            param[...] = value
            outputs = model.fprop(inputs)[-1]
            param[...] = saved
            return outputs
        np.testing.assert_allclose(
            grad, central_differences(model_outputs, param, grads_wrt_outputs),
            rtol=1e-4, atol=1e-6)


def test_release_removes_these_layers_before_lab_7_and_keeps_the_bridge():
    from pathlib import Path

    from autograder.course.release import strip_exercise_regions
    text = Path(layers.__file__).read_text(encoding='utf-8')
    for assignment in ('03_multiple_layer_models', '07_convolutional_networks'):
        student = strip_exercise_regions(text, assignment)
        for name in ('ConvolutionalLayer', 'MaxPooling2DLayer', 'BatchNormalizationLayer'):
            assert 'class {0}('.format(name) not in student
        assert 'class ReshapeLayer(' in student
        assert 'class StochasticLayerWithParameters(' in student
    later = strip_exercise_regions(text, '08_later_lab')
    assert 'class ConvolutionalLayer(' in later and 'EXERCISE 07' not in later
