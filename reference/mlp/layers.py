"""Layers: the transformations that models are built from.

Every layer maps a batch of inputs to a batch of outputs with `fprop` and
maps gradients of a scalar error with respect to its outputs back to
gradients with respect to its inputs with `bprop` (the chain rule). Arrays
are batch-first: inputs of shape `(batch_size, input_dim)` and outputs of
shape `(batch_size, output_dim)` unless a layer says otherwise.

Layers with parameters also give the gradients of the error with respect
to their parameters (`grads_wrt_params`) and expose the parameters as the
list `params`, in a fixed order that learning rules rely on.

Exercise regions: classes that an assignment asks students to write sit
between `# BEGIN EXERCISE <assignment>` and `# END EXERCISE <assignment>`
comment lines. `mlp-autograde release` removes those regions from the
student copy of the framework; nothing else differs between the two.
"""

import numpy as np

from mlp import DEFAULT_SEED
from mlp import initialisers as init


class Layer(object):
    """Abstract base class for a layer without parameters."""

    def fprop(self, inputs):
        """Forward propagates activations through the layer.

        Args:
            inputs: Array of layer inputs of shape (batch_size, input_dim).

        Returns:
            outputs: Array of layer outputs of shape (batch_size, output_dim).
        """
        raise NotImplementedError()

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        """Back propagates gradients through the layer.

        With inputs x, outputs y and a scalar error E, computes
        dE/dx_d = sum_k dE/dy_k * dy_k/dx_d for every example in the batch.

        Args:
            inputs: Array of layer inputs of shape (batch_size, input_dim).
            outputs: Array of layer outputs of shape (batch_size, output_dim),
                as returned by `fprop(inputs)`.
            grads_wrt_outputs: Array of gradients dE/dy of shape
                (batch_size, output_dim).

        Returns:
            Array of gradients dE/dx of shape (batch_size, input_dim).
        """
        raise NotImplementedError()


class LayerWithParameters(Layer):
    """Abstract base class for a layer with learnable parameters."""

    def grads_wrt_params(self, inputs, grads_wrt_outputs):
        """Computes the gradients of the error with respect to the parameters.

        Args:
            inputs: Array of layer inputs of shape (batch_size, input_dim).
            grads_wrt_outputs: Array of gradients dE/dy of shape
                (batch_size, output_dim).

        Returns:
            List of arrays, one per parameter in the order of `params`, each
            the shape of its parameter. A layer with penalties includes their
            gradients.
        """
        raise NotImplementedError()

    def params_penalty(self):
        """Returns the sum of the layer's parameter penalties (a float).

        The penalties are part of the error the model minimises; the
        optimiser adds the model's total to the error it reports. A layer
        without penalties, as here, contributes 0.
        """
        return 0.

    @property
    def params(self):
        """List of the layer's parameter arrays, in a fixed order."""
        raise NotImplementedError()

    @params.setter
    def params(self, values):
        raise NotImplementedError()


class StochasticLayer(Layer):
    """Abstract base class for a layer whose forward pass is random in training."""

    def __init__(self, rng=None):
        """Creates a stochastic layer.

        Args:
            rng: A `numpy.random.RandomState` used for the random choices; a
                fixed-seed one if None.
        """
        self.rng = np.random.RandomState(DEFAULT_SEED) if rng is None else rng

    def fprop(self, inputs, stochastic=True):
        """Forward propagates activations through the layer.

        Args:
            inputs: Array of layer inputs of shape (batch_size, input_dim).
            stochastic: If True, sample the random transformation (training);
                if False, apply its deterministic expectation (evaluation).

        Returns:
            outputs: Array of layer outputs of shape (batch_size, output_dim).
        """
        raise NotImplementedError()

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        """Back propagates gradients through the last sampled transformation.

        Uses the random choices made by the most recent stochastic `fprop`.
        """
        raise NotImplementedError()


# BEGIN EXERCISE 02_single_layer_models
class AffineLayer(LayerWithParameters):
    """Affine transformation y = W x + b of each input vector.

    Optional penalties P_W(W) and P_b(b) (see `mlp.penalties`) make the layer's
    share of the error E + P_W(W) + P_b(b): their gradients are added in
    `grads_wrt_params` and their values reported by `params_penalty`.
    """

    def __init__(self, input_dim, output_dim,
                 weights_initialiser=None, biases_initialiser=None,
                 weights_penalty=None, biases_penalty=None):
        """Creates an affine layer.

        Args:
            input_dim: Dimension D of each input vector.
            output_dim: Dimension K of each output vector.
            weights_initialiser: Callable mapping a shape to initial weights;
                by default uniform on [-0.1, 0.1).
            biases_initialiser: Callable mapping a shape to initial biases;
                zeros by default.
            weights_penalty: Penalty on the weights (callable with a `grad`
                method, e.g. `L2Penalty(1e-3)`), or None for no penalty.
            biases_penalty: Penalty on the biases, or None for no penalty.
        """
        self.input_dim = input_dim
        self.output_dim = output_dim
        if weights_initialiser is None:
            weights_initialiser = init.UniformInit(-0.1, 0.1)
        if biases_initialiser is None:
            biases_initialiser = init.ConstantInit(0.)
        self.weights = weights_initialiser((self.output_dim, self.input_dim))
        self.biases = biases_initialiser(self.output_dim)
        self.weights_penalty = weights_penalty
        self.biases_penalty = biases_penalty

    def fprop(self, inputs):
        """Computes y^(b) = W x^(b) + b for each input x^(b).

        Args:
            inputs: Array of shape (batch_size, input_dim).

        Returns:
            Array of shape (batch_size, output_dim).
        """
        return inputs.dot(self.weights.T) + self.biases

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        """Computes dE/dx_d = sum_k dE/dy_k W_kd, i.e. grads_wrt_outputs . W.

        Args:
            inputs: Array of shape (batch_size, input_dim).
            outputs: Array of shape (batch_size, output_dim).
            grads_wrt_outputs: Array of shape (batch_size, output_dim).

        Returns:
            Array of shape (batch_size, input_dim).
        """
        return grads_wrt_outputs.dot(self.weights)

    def grads_wrt_params(self, inputs, grads_wrt_outputs):
        """Computes dE/dW = sum_b dE/dy^(b) x^(b)T and dE/db = sum_b dE/dy^(b).

        With penalties, dP_W/dW and dP_b/db are added to those sums.

        Args:
            inputs: Array of shape (batch_size, input_dim).
            grads_wrt_outputs: Array of shape (batch_size, output_dim).

        Returns:
            [grads_wrt_weights (output_dim, input_dim), grads_wrt_biases (output_dim,)].
        """
        grads_wrt_weights = grads_wrt_outputs.T.dot(inputs)
        grads_wrt_biases = grads_wrt_outputs.sum(axis=0)
        if self.weights_penalty is not None:
            grads_wrt_weights = grads_wrt_weights + self.weights_penalty.grad(self.weights)
        if self.biases_penalty is not None:
            grads_wrt_biases = grads_wrt_biases + self.biases_penalty.grad(self.biases)
        return [grads_wrt_weights, grads_wrt_biases]

    def params_penalty(self):
        """Returns P_W(W) + P_b(b), counting an absent penalty as 0."""
        total = 0.
        if self.weights_penalty is not None:
            total += self.weights_penalty(self.weights)
        if self.biases_penalty is not None:
            total += self.biases_penalty(self.biases)
        return total

    @property
    def params(self):
        """[weights (output_dim, input_dim), biases (output_dim,)]."""
        return [self.weights, self.biases]

    @params.setter
    def params(self, values):
        self.weights = values[0]
        self.biases = values[1]

    def __repr__(self):
        return 'AffineLayer(input_dim={0}, output_dim={1})'.format(
            self.input_dim, self.output_dim)
# END EXERCISE 02_single_layer_models


class SigmoidLayer(Layer):
    """Element-wise logistic sigmoid y = 1 / (1 + exp(-x))."""

    def fprop(self, inputs):
        """Computes y = 1 / (1 + exp(-x)) element-wise.

        Written as 0.5 * (1 + tanh(x / 2)), the same function, so that large
        negative inputs do not overflow exp.
        """
        return 0.5 * (1. + np.tanh(0.5 * inputs))

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        """Uses dy/dx = y (1 - y)."""
        return grads_wrt_outputs * outputs * (1. - outputs)

    def __repr__(self):
        return 'SigmoidLayer'


# BEGIN EXERCISE 03_multiple_layer_models
class TanhLayer(Layer):
    """Element-wise hyperbolic tangent y = tanh(x)."""

    def fprop(self, inputs):
        """Computes y = tanh(x) element-wise.

        Args:
            inputs: Array of shape (batch_size, input_dim).

        Returns:
            Array of the same shape.
        """
        return np.tanh(inputs)

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        """Uses dy/dx = 1 - y^2, so dE/dx = dE/dy * (1 - y^2)."""
        return grads_wrt_outputs * (1. - outputs ** 2)

    def __repr__(self):
        return 'TanhLayer'


class ReluLayer(Layer):
    """Element-wise rectified linear function y = max(0, x)."""

    def fprop(self, inputs):
        """Computes y = max(0, x) element-wise.

        Args:
            inputs: Array of shape (batch_size, input_dim).

        Returns:
            Array of the same shape.
        """
        return np.maximum(inputs, 0.)

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        """Uses dy/dx = 1 where x > 0 and 0 where x < 0 (0 is taken at x = 0)."""
        return grads_wrt_outputs * (inputs > 0.)

    def __repr__(self):
        return 'ReluLayer'
# END EXERCISE 03_multiple_layer_models


# BEGIN EXERCISE 05_activation_functions
class LeakyReluLayer(Layer):
    """Element-wise leaky rectifier y = x for x > 0, y = alpha x otherwise."""

    def __init__(self, alpha=0.01):
        """Creates a leaky ReLU layer.

        Args:
            alpha: Slope for negative inputs.
        """
        self.alpha = alpha

    def fprop(self, inputs):
        """Computes y = max(x, 0) + alpha min(x, 0) element-wise."""
        return np.where(inputs > 0., inputs, self.alpha * inputs)

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        """Uses dy/dx = 1 for x > 0 and alpha for x <= 0."""
        return grads_wrt_outputs * np.where(inputs > 0., 1., self.alpha)

    def __repr__(self):
        return 'LeakyReluLayer(alpha={0})'.format(self.alpha)


class ELULayer(Layer):
    """Exponential linear unit: y = x for x > 0, y = alpha (exp(x) - 1) otherwise."""

    def __init__(self, alpha=1.):
        """Creates an ELU layer.

        Args:
            alpha: Scale of the negative saturation value -alpha.
        """
        self.alpha = alpha

    def fprop(self, inputs):
        """Computes the ELU element-wise.

        exp is only evaluated on min(x, 0), so large positive inputs cannot
        overflow it.
        """
        return np.where(
            inputs > 0., inputs, self.alpha * np.expm1(np.minimum(inputs, 0.)))

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        """Uses dy/dx = 1 for x > 0 and alpha exp(x) = y + alpha for x <= 0."""
        return grads_wrt_outputs * np.where(inputs > 0., 1., outputs + self.alpha)

    def __repr__(self):
        return 'ELULayer(alpha={0})'.format(self.alpha)


class SELULayer(Layer):
    """Scaled exponential linear unit (Klambauer et al., 2017).

    y = lambda x for x > 0 and y = lambda alpha (exp(x) - 1) otherwise, with
    the constants that make zero mean and unit variance a fixed point of
    the layer-to-layer activation statistics.
    """

    alpha = 1.6732632423543772
    scale = 1.0507009873554805

    def fprop(self, inputs):
        """Computes the SELU element-wise (exp only of min(x, 0), to avoid overflow)."""
        return self.scale * np.where(
            inputs > 0., inputs, self.alpha * np.expm1(np.minimum(inputs, 0.)))

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        """Uses dy/dx = lambda for x > 0 and y + lambda alpha for x <= 0."""
        return grads_wrt_outputs * np.where(
            inputs > 0., self.scale, outputs + self.scale * self.alpha)

    def __repr__(self):
        return 'SELULayer'


class ParametricReluLayer(LayerWithParameters):
    """Parametric rectifier (He et al., 2015) with one learnable negative slope.

    y = x for x > 0 and y = a x otherwise, where the scalar slope a is a
    parameter shared by all units and trained with the rest of the model.
    """

    def __init__(self, alpha=0.25):
        """Creates a PReLU layer.

        Args:
            alpha: Initial value of the negative slope a.
        """
        self.alpha = np.array([alpha], dtype=float)

    def fprop(self, inputs):
        """Computes y = max(x, 0) + a min(x, 0) element-wise."""
        return np.where(inputs > 0., inputs, self.alpha[0] * inputs)

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        """Uses dy/dx = 1 for x > 0 and a for x <= 0."""
        return grads_wrt_outputs * np.where(inputs > 0., 1., self.alpha[0])

    def grads_wrt_params(self, inputs, grads_wrt_outputs):
        """Uses dy/da = min(x, 0), so dE/da = sum over batch and units of dE/dy min(x, 0).

        Returns:
            [grads_wrt_alpha] with grads_wrt_alpha of shape (1,).
        """
        return [np.array([np.sum(grads_wrt_outputs * np.minimum(inputs, 0.))])]

    @property
    def params(self):
        """[alpha] with alpha of shape (1,)."""
        return [self.alpha]

    @params.setter
    def params(self, values):
        self.alpha = np.asarray(values[0], dtype=float).reshape(1)

    def __repr__(self):
        return 'ParametricReluLayer(alpha={0})'.format(self.alpha[0])
# END EXERCISE 05_activation_functions


class SoftmaxLayer(Layer):
    """Softmax over the last axis: y_k = exp(x_k) / sum_j exp(x_j)."""

    def fprop(self, inputs):
        """Computes the softmax of each input vector.

        The row maximum is subtracted first: softmax is unchanged by a shift
        and exp can then neither overflow nor make every term underflow.
        """
        exp_inputs = np.exp(inputs - inputs.max(axis=-1, keepdims=True))
        return exp_inputs / exp_inputs.sum(axis=-1, keepdims=True)

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        """Uses dy_k/dx_d = y_k (delta_kd - y_d).

        So dE/dx_d = y_d (dE/dy_d - sum_k dE/dy_k y_k).
        """
        weighted = (grads_wrt_outputs * outputs).sum(axis=-1, keepdims=True)
        return outputs * (grads_wrt_outputs - weighted)

    def __repr__(self):
        return 'SoftmaxLayer'


class RadialBasisFunctionLayer(Layer):
    """Expands each input dimension on a grid of Gaussian radial basis functions.

    For input x of shape (batch_size, input_dim) and a grid of G centres
    c_{d,1..G} per dimension with width s_d (the grid spacing),
    y[b, d * G + g] = exp(-(x[b, d] - c[d, g])^2 / s_d^2),
    so the output has shape (batch_size, input_dim * G).
    """

    def __init__(self, grid_dim, intervals=None):
        """Creates a radial basis function layer.

        Args:
            grid_dim: Number G of centres per input dimension (at least 2).
            intervals: List of [low, high] pairs, one per input dimension or a
                single pair shared by all; centres are spaced evenly on each
                interval. Defaults to [[0., 1.]].
        """
        if intervals is None:
            intervals = [[0., 1.]]
        if grid_dim < 2:
            raise ValueError('grid_dim must be at least 2, got {0}.'.format(grid_dim))
        self.grid_dim = grid_dim
        self.intervals = [list(interval) for interval in intervals]
        self.centres = np.array(
            [np.linspace(low, high, grid_dim) for low, high in self.intervals])
        self.scales = np.array(
            [(high - low) / (grid_dim - 1.) for low, high in self.intervals])

    def _scaled_offsets(self, inputs):
        """Returns (x[b, d] - c[d, g]) / s_d with shape (batch_size, input_dim, G)."""
        return ((inputs[:, :, None] - self.centres[None, :, :])
                / self.scales[None, :, None])

    def fprop(self, inputs):
        """Computes the basis function responses, shape (batch_size, input_dim * G)."""
        offsets = self._scaled_offsets(inputs)
        return np.exp(-offsets ** 2).reshape((inputs.shape[0], -1))

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        """Uses dy[b, d, g]/dx[b, d] = -2 y[b, d, g] (x[b, d] - c[d, g]) / s_d^2."""
        offsets = self._scaled_offsets(inputs)
        shape = offsets.shape
        local = (-2. * outputs.reshape(shape) * offsets
                 / self.scales[None, :, None])
        return (grads_wrt_outputs.reshape(shape) * local).sum(axis=-1)

    def __repr__(self):
        return 'RadialBasisFunctionLayer(grid_dim={0})'.format(self.grid_dim)


# BEGIN EXERCISE 04_regularisation
class DropoutLayer(StochasticLayer):
    """Dropout (Srivastava et al., 2014): keeps each unit with probability incl_prob.

    In training each input is multiplied by an independent mask value
    m ~ Bernoulli(p); in evaluation by its expectation p, so that a unit's
    expected input to the next layer is the same in both modes.
    """

    def __init__(self, rng=None, incl_prob=0.5, share_across_batch=True):
        """Creates a dropout layer.

        Args:
            rng: A `numpy.random.RandomState` for sampling masks.
            incl_prob: Probability p of keeping a unit, in (0, 1].
            share_across_batch: If True one mask is sampled per batch and
                shared by all its examples; otherwise one per example.
        """
        super(DropoutLayer, self).__init__(rng)
        if not 0. < incl_prob <= 1.:
            raise ValueError('incl_prob must be in (0, 1], got {0}.'.format(incl_prob))
        self.incl_prob = incl_prob
        self.share_across_batch = share_across_batch
        self._mask = None

    def fprop(self, inputs, stochastic=True):
        """Training: y = m * x with m ~ Bernoulli(p); evaluation: y = p x.

        Args:
            inputs: Array of shape (batch_size, input_dim).
            stochastic: Whether to sample a mask (training) or scale by p.

        Returns:
            Array of the same shape.
        """
        if not stochastic:
            return inputs * self.incl_prob
        mask_shape = ((1,) + inputs.shape[1:] if self.share_across_batch
                      else inputs.shape)
        self._mask = self.rng.uniform(size=mask_shape) < self.incl_prob
        return inputs * self._mask

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        """Uses dy/dx = m, the mask of the last stochastic fprop."""
        if self._mask is None:
            raise RuntimeError('DropoutLayer.bprop called before a stochastic fprop.')
        return grads_wrt_outputs * self._mask

    def __repr__(self):
        return 'DropoutLayer(incl_prob={0:.1f})'.format(self.incl_prob)
# END EXERCISE 04_regularisation


class MaxPoolingLayer(Layer):
    """Maximum over non-overlapping groups of consecutive features (as in maxout).

    With pool size k, inputs x of shape (batch_size, input_dim) and
    input_dim = k * output_dim, y[b, j] = max_{i < k} x[b, j * k + i], so the
    outputs have shape (batch_size, output_dim). Any leading axes are kept;
    the pooling is over the last one.
    """

    def __init__(self, pool_size=2):
        """Creates a max-pooling layer.

        Args:
            pool_size: Number k of consecutive features per group, a positive
                integer that divides the input dimension.
        """
        if isinstance(pool_size, bool) or not isinstance(pool_size, (int, np.integer)) \
                or pool_size < 1:
            raise ValueError('pool_size must be a positive integer, got {0!r}.'.format(pool_size))
        self.pool_size = int(pool_size)

    def _grouped(self, inputs):
        """Returns inputs viewed with shape (..., input_dim // k, k)."""
        input_dim = inputs.shape[-1]
        if input_dim % self.pool_size != 0:
            raise ValueError(
                'MaxPoolingLayer(pool_size={0}) needs an input dimension that is a multiple '
                'of {0}, got inputs of shape {1}.'.format(self.pool_size, inputs.shape))
        return inputs.reshape(inputs.shape[:-1] + (input_dim // self.pool_size, self.pool_size))

    def fprop(self, inputs):
        """Computes the maximum of each group.

        Args:
            inputs: Array of shape (batch_size, input_dim), input_dim a
                multiple of pool_size.

        Returns:
            Array of shape (batch_size, input_dim // pool_size).

        Raises:
            ValueError: If input_dim is not a multiple of pool_size.
        """
        return self._grouped(inputs).max(axis=-1)

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        """Routes each output gradient to the element that was the group's maximum.

        dy[b, j]/dx[b, j * k + i] is 1 for the maximal element and 0 for the
        others. Where several elements tie for the maximum the max has no
        derivative; the whole gradient goes to the first of them (one valid
        subgradient), so the gradients still sum to those of the outputs.

        Args:
            inputs: Array of shape (batch_size, input_dim).
            outputs: Array of shape (batch_size, input_dim // pool_size).
            grads_wrt_outputs: Array of shape (batch_size, input_dim // pool_size).

        Returns:
            Array of shape (batch_size, input_dim).
        """
        grouped = self._grouped(inputs)
        winners = grouped.argmax(axis=-1)[..., None]
        grads_wrt_grouped = np.zeros(grouped.shape, dtype=np.result_type(grads_wrt_outputs, float))
        np.put_along_axis(grads_wrt_grouped, winners, grads_wrt_outputs[..., None], axis=-1)
        return grads_wrt_grouped.reshape(inputs.shape)

    def __repr__(self):
        return 'MaxPoolingLayer(pool_size={0})'.format(self.pool_size)


class ReshapeLayer(Layer):
    """Reshapes each example, keeping the batch axis."""

    def __init__(self, output_shape=None):
        """Creates a reshape layer.

        Args:
            output_shape: Tuple giving each example's new shape, possibly with
                one -1; the default (-1,) flattens each example.
        """
        self.output_shape = (-1,) if output_shape is None else tuple(output_shape)

    def fprop(self, inputs):
        """Returns inputs reshaped to (batch_size,) + output_shape."""
        return inputs.reshape((inputs.shape[0],) + self.output_shape)

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        """Reshapes the gradients back to the input shape."""
        return grads_wrt_outputs.reshape(inputs.shape)

    def __repr__(self):
        return 'ReshapeLayer(output_shape={0})'.format(self.output_shape)


class StochasticLayerWithParameters(LayerWithParameters, StochasticLayer):
    """Abstract base class for a layer with parameters whose forward pass has a training mode.

    It is both a `LayerWithParameters` (it has `params` and `grads_wrt_params`)
    and a `StochasticLayer` (its `fprop` takes the `stochastic` flag, True in
    training and False in evaluation), so models pass it the flag and collect
    its parameters.
    """

    def __init__(self, rng=None):
        """Creates the layer.

        Args:
            rng: A `numpy.random.RandomState`; a fixed-seed one if None.
        """
        StochasticLayer.__init__(self, rng)


# BEGIN EXERCISE 07_convolutional_networks
class ConvolutionalLayer(LayerWithParameters):
    """Two-dimensional convolution of multi-channel image batches, plus one bias per output map.

    Inputs x have shape (batch_size, C, D1, D2), kernels K shape (F, C, K1, K2)
    and biases b shape (F,). There is no padding and the stride is one, so
    outputs y have shape (batch_size, F, D1 - K1 + 1, D2 - K2 + 1): one value
    for each position where the kernel lies wholly inside the input.

    This is a true CONVOLUTION, the operation whose values the course's own
    fprop test lists (that test takes a flag for layers that cross-correlate
    instead): the kernel is flipped along both spatial axes before it slides
    over the input,

        y[n, f, i, j] = b[f] + sum_{c, p, q} x[n, c, i + p, j + q] K[f, c, K1 - 1 - p, K2 - 1 - q].

    (A cross-correlation, which deep learning libraries such as PyTorch call
    "convolution", uses K[f, c, p, q] instead; it equals this layer with
    every kernel rotated by 180 degrees.)

    Implementation: im2col. The K1 K2 shifted copies of the input that a
    kernel meets are gathered from a strided view into one array `columns` of
    shape (batch_size, C K1 K2, P), P = (D1 - K1 + 1)(D2 - K2 + 1), so that the
    convolution becomes one matrix product per example with the flipped
    kernels flattened to shape (F, C K1 K2).
    """

    def __init__(self, num_input_channels, num_output_channels,
                 input_dim_1, input_dim_2, kernel_dim_1, kernel_dim_2,
                 kernels_init=None, biases_init=None,
                 kernels_penalty=None, biases_penalty=None):
        """Creates a convolutional layer.

        Args:
            num_input_channels: Number C of channels of each input image.
            num_output_channels: Number F of output channels (feature maps).
            input_dim_1: Size D1 of the first spatial axis of the inputs.
            input_dim_2: Size D2 of the second spatial axis of the inputs.
            kernel_dim_1: Size K1 of the kernels along the first axis (K1 <= D1).
            kernel_dim_2: Size K2 of the kernels along the second axis (K2 <= D2).
            kernels_init: Callable mapping a shape to initial kernels; by
                default uniform on [-0.01, 0.01).
            biases_init: Callable mapping a shape to initial biases; zeros
                by default.
            kernels_penalty: Penalty on the kernels (a callable with a `grad`
                method, as in `mlp.penalties`), or None.
            biases_penalty: Penalty on the biases, or None.

        Raises:
            ValueError: If a size is not a positive integer or a kernel is
                larger than the input.
        """
        sizes = dict(num_input_channels=num_input_channels,
                     num_output_channels=num_output_channels,
                     input_dim_1=input_dim_1, input_dim_2=input_dim_2,
                     kernel_dim_1=kernel_dim_1, kernel_dim_2=kernel_dim_2)
        for name, value in sizes.items():
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError('{0} must be a positive integer, got {1!r}.'.format(name, value))
        if kernel_dim_1 > input_dim_1 or kernel_dim_2 > input_dim_2:
            raise ValueError(
                'Kernels of size {0}x{1} do not fit in inputs of size {2}x{3} '
                '(no padding is applied).'.format(
                    kernel_dim_1, kernel_dim_2, input_dim_1, input_dim_2))
        self.num_input_channels = num_input_channels
        self.num_output_channels = num_output_channels
        self.input_dim_1 = input_dim_1
        self.input_dim_2 = input_dim_2
        self.kernel_dim_1 = kernel_dim_1
        self.kernel_dim_2 = kernel_dim_2
        self.output_dim_1 = input_dim_1 - kernel_dim_1 + 1
        self.output_dim_2 = input_dim_2 - kernel_dim_2 + 1
        if kernels_init is None:
            kernels_init = init.UniformInit(-0.01, 0.01)
        if biases_init is None:
            biases_init = init.ConstantInit(0.)
        self.kernels = kernels_init(
            (num_output_channels, num_input_channels, kernel_dim_1, kernel_dim_2))
        self.biases = biases_init(num_output_channels)
        self.kernels_penalty = kernels_penalty
        self.biases_penalty = biases_penalty

    def _check_inputs(self, inputs):
        """Raises ValueError unless inputs has shape (batch_size, C, D1, D2)."""
        expected = (self.num_input_channels, self.input_dim_1, self.input_dim_2)
        if np.ndim(inputs) != 4 or tuple(np.shape(inputs)[1:]) != expected:
            raise ValueError(
                'ConvolutionalLayer expects inputs of shape (batch_size, {0}, {1}, {2}), '
                'got {3}.'.format(*(expected + (np.shape(inputs),))))

    def _columns(self, inputs):
        """Gathers every kernel-sized patch of the inputs (im2col).

        Args:
            inputs: Array of shape (batch_size, C, D1, D2).

        Returns:
            Array of shape (batch_size, C K1 K2, P) whose entry [n, (c, p, q), (i, j)]
            is x[n, c, i + p, j + q]; P = (D1 - K1 + 1)(D2 - K2 + 1).
        """
        self._check_inputs(inputs)
        windows = np.lib.stride_tricks.sliding_window_view(
            inputs, (self.kernel_dim_1, self.kernel_dim_2), axis=(2, 3))
        # windows[n, c, i, j, p, q] = x[n, c, i + p, j + q]; the reshape copies it
        # with (i, j) last, where neighbouring entries are neighbours in memory.
        return windows.transpose(0, 1, 4, 5, 2, 3).reshape(
            inputs.shape[0], -1, self.output_dim_1 * self.output_dim_2)

    def _flat_flipped_kernels(self):
        """Returns the kernels rotated by 180 degrees, flattened to shape (F, C K1 K2)."""
        return self.kernels[:, :, ::-1, ::-1].reshape(self.num_output_channels, -1)

    def fprop(self, inputs):
        """Computes y[n, f] = b[f] + sum_c conv2d_valid(x[n, c], K[f, c]) for each n and f.

        Args:
            inputs: Array of shape (batch_size, C, D1, D2).

        Returns:
            Array of shape (batch_size, F, D1 - K1 + 1, D2 - K2 + 1).

        Raises:
            ValueError: If inputs does not have that shape.
        """
        outputs = (np.matmul(self._flat_flipped_kernels(), self._columns(inputs))
                   + self.biases[:, None])
        return outputs.reshape(inputs.shape[0], self.num_output_channels,
                               self.output_dim_1, self.output_dim_2)

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        """Computes the gradients with respect to the inputs.

        dE/dx[n, c, m, l] = sum_{f, i, j} dE/dy[n, f, i, j] K[f, c, K1 - 1 - m + i, K2 - 1 - l + j].
        The sum runs over the output positions (i, j) whose patch contains
        input position (m, l). Each patch position (p, q) is handled at once
        for the whole batch: the gradients of the patch entries,
        flipped kernels^T . dE/dy, are added to the input positions they came
        from (col2im), in K1 K2 vectorised steps.

        Args:
            inputs: Array of shape (batch_size, C, D1, D2).
            outputs: Array of shape (batch_size, F, D1 - K1 + 1, D2 - K2 + 1).
            grads_wrt_outputs: Array of gradients dE/dy of the outputs' shape.

        Returns:
            Array of gradients dE/dx of shape (batch_size, C, D1, D2).
        """
        self._check_inputs(inputs)
        batch_size = inputs.shape[0]
        grads = grads_wrt_outputs.reshape(batch_size, self.num_output_channels, -1)
        grads_wrt_columns = np.matmul(self._flat_flipped_kernels().T, grads).reshape(
            batch_size, self.num_input_channels, self.kernel_dim_1, self.kernel_dim_2,
            self.output_dim_1, self.output_dim_2)
        grads_wrt_inputs = np.zeros(inputs.shape, dtype=grads_wrt_columns.dtype)
        for p in range(self.kernel_dim_1):
            for q in range(self.kernel_dim_2):
                grads_wrt_inputs[:, :, p:p + self.output_dim_1, q:q + self.output_dim_2] += (
                    grads_wrt_columns[:, :, p, q])
        return grads_wrt_inputs

    def grads_wrt_params(self, inputs, grads_wrt_outputs):
        """Computes the gradients with respect to the kernels and biases.

        dE/dK[f, c, K1 - 1 - p, K2 - 1 - q] = sum_{n, i, j} dE/dy[n, f, i, j] x[n, c, i + p, j + q]
        and dE/db[f] = sum_{n, i, j} dE/dy[n, f, i, j], plus the penalties'
        gradients if penalties are set.

        Args:
            inputs: Array of shape (batch_size, C, D1, D2).
            grads_wrt_outputs: Array of shape (batch_size, F, D1 - K1 + 1, D2 - K2 + 1).

        Returns:
            [grads_wrt_kernels (F, C, K1, K2), grads_wrt_biases (F,)].
        """
        columns = self._columns(inputs)
        grads = grads_wrt_outputs.reshape(inputs.shape[0], self.num_output_channels, -1)
        # One (F, P) x (P, C K1 K2) product per example, summed over the batch:
        # faster than a single product, which would need transposed copies.
        grads_wrt_flipped = np.matmul(grads, columns.transpose(0, 2, 1)).sum(axis=0).reshape(
            self.kernels.shape)
        grads_wrt_kernels = grads_wrt_flipped[:, :, ::-1, ::-1].copy()
        grads_wrt_biases = grads.sum(axis=(0, 2))
        if self.kernels_penalty is not None:
            grads_wrt_kernels = grads_wrt_kernels + self.kernels_penalty.grad(self.kernels)
        if self.biases_penalty is not None:
            grads_wrt_biases = grads_wrt_biases + self.biases_penalty.grad(self.biases)
        return [grads_wrt_kernels, grads_wrt_biases]

    def params_penalty(self):
        """Returns P_K(K) + P_b(b), counting an absent penalty as 0."""
        total = 0.
        if self.kernels_penalty is not None:
            total += self.kernels_penalty(self.kernels)
        if self.biases_penalty is not None:
            total += self.biases_penalty(self.biases)
        return total

    @property
    def params(self):
        """[kernels (F, C, K1, K2), biases (F,)]."""
        return [self.kernels, self.biases]

    @params.setter
    def params(self, values):
        self.kernels = values[0]
        self.biases = values[1]

    def __repr__(self):
        return ('ConvolutionalLayer(num_input_channels={0}, num_output_channels={1}, '
                'input_dim_1={2}, input_dim_2={3}, kernel_dim_1={4}, kernel_dim_2={5})'.format(
                    self.num_input_channels, self.num_output_channels, self.input_dim_1,
                    self.input_dim_2, self.kernel_dim_1, self.kernel_dim_2))


class MaxPooling2DLayer(Layer):
    """Max pooling over non-overlapping square windows of the two spatial axes.

    Inputs x of shape (batch_size, C, D1, D2), with D1 and D2 multiples of the
    pool size s, give outputs of shape (batch_size, C, D1 / s, D2 / s):

        y[n, c, i, j] = max_{0 <= p, q < s} x[n, c, s i + p, s j + q].

    Each window is laid out as s * s consecutive features of the last axis,
    in row-major order (entry p s + q is x[n, c, s i + p, s j + q]), and
    pooled by a `MaxPoolingLayer` with groups of s * s.
    """

    def __init__(self, pool_size=2):
        """Creates a max pooling layer.

        Args:
            pool_size: Side s of the square pooling windows (a positive integer).

        Raises:
            ValueError: If pool_size is not a positive integer.
        """
        if isinstance(pool_size, bool) or not isinstance(pool_size, (int, np.integer)) \
                or pool_size < 1:
            raise ValueError('pool_size must be a positive integer, got {0!r}.'.format(pool_size))
        self.pool_size = int(pool_size)
        self._groups = MaxPoolingLayer(self.pool_size ** 2)

    def _windows(self, inputs):
        """Returns the windows side by side, shape (batch_size, C, D1 / s, (D2 / s) s^2).

        Raises:
            ValueError: If inputs is not 4-D or D1 or D2 is not a multiple of s.
        """
        if np.ndim(inputs) != 4:
            raise ValueError(
                'MaxPooling2DLayer expects inputs of shape (batch_size, channels, dim_1, '
                'dim_2), got {0}.'.format(np.shape(inputs)))
        batch_size, channels, dim_1, dim_2 = inputs.shape
        size = self.pool_size
        if dim_1 % size or dim_2 % size:
            raise ValueError(
                'MaxPooling2DLayer(pool_size={0}) needs spatial sizes that are multiples '
                'of {0}, got inputs of shape {1}.'.format(size, inputs.shape))
        return (inputs.reshape(batch_size, channels, dim_1 // size, size, dim_2 // size, size)
                .transpose(0, 1, 2, 4, 3, 5)
                .reshape(batch_size, channels, dim_1 // size, -1))

    def fprop(self, inputs):
        """Computes the maximum of each window.

        Args:
            inputs: Array of shape (batch_size, C, D1, D2).

        Returns:
            Array of shape (batch_size, C, D1 / s, D2 / s).

        Raises:
            ValueError: If inputs does not have that form.
        """
        return self._groups.fprop(self._windows(inputs))

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        """Sends each output's gradient to one maximal element of its window.

        y = max of a window has gradient 1 with respect to the maximal element
        and 0 with respect to the others. When several elements tie for the
        maximum, the whole gradient goes to the FIRST of them in row-major
        order within the window (smallest row offset p, then smallest column
        offset q). Any single maximal element gives a valid subgradient;
        splitting the gradient between them or copying it to each does not
        preserve the sum of the gradients.

        Args:
            inputs: Array of shape (batch_size, C, D1, D2).
            outputs: Array of shape (batch_size, C, D1 / s, D2 / s).
            grads_wrt_outputs: Array of the outputs' shape.

        Returns:
            Array of gradients dE/dx of shape (batch_size, C, D1, D2).
        """
        windows = self._windows(inputs)
        grads_wrt_windows = self._groups.bprop(windows, outputs, grads_wrt_outputs)
        batch_size, channels, dim_1, dim_2 = inputs.shape
        size = self.pool_size
        return (grads_wrt_windows
                .reshape(batch_size, channels, dim_1 // size, dim_2 // size, size, size)
                .transpose(0, 1, 2, 4, 3, 5)
                .reshape(inputs.shape))

    def __repr__(self):
        return 'MaxPooling2DLayer(pool_size={0})'.format(self.pool_size)


class BatchNormalizationLayer(StochasticLayerWithParameters):
    """Batch normalisation (Ioffe and Szegedy, 2015) of each input feature.

    For inputs x of shape (batch_size, D) and learnable gamma, beta of shape (D,),

        y = gamma * (x - mu) / sqrt(sigma^2 + epsilon) + beta,

    element-wise per feature d. In training (`stochastic=True`) mu and sigma^2
    are the mean and the biased variance (divided by batch_size) of the batch
    over axis 0, and the running averages are updated,

        running_mean <- decay * running_mean + (1 - decay) * mu,
        running_var  <- decay * running_var  + (1 - decay) * sigma^2;

    at evaluation (`stochastic=False`) the running averages are used instead
    and nothing is updated. epsilon keeps the division finite for a feature
    that is constant over the batch (a batch of one, say).

    `bprop` and `grads_wrt_params` differentiate the training transformation,
    in which mu and sigma^2 depend on the inputs; they recompute the batch
    statistics from their `inputs` argument.
    """

    def __init__(self, input_dim, rng=None, decay=0.9, epsilon=1e-5):
        """Creates a batch normalisation layer.

        Args:
            input_dim: Number D of features.
            rng: A `numpy.random.RandomState`; unused (the layer is
                deterministic given its mode) and kept for the course's interface.
            decay: Weight of the old value in the running averages, in [0, 1).
            epsilon: Positive constant added to the variance.

        Raises:
            ValueError: If input_dim, decay or epsilon is out of range.
        """
        super(BatchNormalizationLayer, self).__init__(rng)
        if isinstance(input_dim, bool) or not isinstance(input_dim, (int, np.integer)) \
                or input_dim < 1:
            raise ValueError('input_dim must be a positive integer, got {0!r}.'.format(input_dim))
        if not 0. <= decay < 1.:
            raise ValueError('decay must be in [0, 1), got {0!r}.'.format(decay))
        if not epsilon > 0.:
            raise ValueError('epsilon must be positive, got {0!r}.'.format(epsilon))
        self.input_dim = input_dim
        self.decay = decay
        self.epsilon = epsilon
        self.gamma = np.ones(input_dim)
        self.beta = np.zeros(input_dim)
        self.running_mean = np.zeros(input_dim)
        self.running_var = np.ones(input_dim)

    def _check_inputs(self, inputs):
        """Raises ValueError unless inputs has shape (batch_size, D)."""
        if np.ndim(inputs) != 2 or np.shape(inputs)[1] != self.input_dim:
            raise ValueError(
                'BatchNormalizationLayer expects inputs of shape (batch_size, {0}), got {1}; '
                'flatten image batches with a ReshapeLayer first.'.format(
                    self.input_dim, np.shape(inputs)))

    def _normalise_with_batch_statistics(self, inputs):
        """Returns x_hat, mu, sigma^2 and 1 / sqrt(sigma^2 + epsilon) of a batch (x_hat like x)."""
        self._check_inputs(inputs)
        mean = inputs.mean(axis=0)
        centred = inputs - mean
        variance = (centred ** 2).mean(axis=0)
        inverse_std = 1. / np.sqrt(variance + self.epsilon)
        return centred * inverse_std, mean, variance, inverse_std

    def fprop(self, inputs, stochastic=True):
        """Normalises each feature, then scales by gamma and shifts by beta.

        Args:
            inputs: Array of shape (batch_size, D).
            stochastic: True in training (batch statistics; the running
                averages are updated), False at evaluation (running averages).

        Returns:
            Array of shape (batch_size, D).

        Raises:
            ValueError: If inputs does not have that shape.
        """
        if not stochastic:
            self._check_inputs(inputs)
            normalised = ((inputs - self.running_mean)
                          / np.sqrt(self.running_var + self.epsilon))
            return self.gamma * normalised + self.beta
        normalised, mean, variance, _ = self._normalise_with_batch_statistics(inputs)
        self.running_mean = self.decay * self.running_mean + (1. - self.decay) * mean
        self.running_var = self.decay * self.running_var + (1. - self.decay) * variance
        return self.gamma * normalised + self.beta

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        """Back-propagates through the training transformation.

        With N = batch_size, g = dE/dy and g_hat = gamma * g (the gradient
        with respect to x_hat), differentiating through mu and sigma^2 gives

            dE/dx = (1 / sqrt(sigma^2 + epsilon))
                    * (g_hat - mean_n(g_hat) - x_hat * mean_n(g_hat * x_hat)),

        where mean_n averages over the batch axis.

        Args:
            inputs: Array of shape (batch_size, D).
            outputs: Array of shape (batch_size, D).
            grads_wrt_outputs: Array of shape (batch_size, D).

        Returns:
            Array of gradients dE/dx of shape (batch_size, D).
        """
        normalised, _, _, inverse_std = self._normalise_with_batch_statistics(inputs)
        grads_wrt_normalised = grads_wrt_outputs * self.gamma
        return inverse_std * (
            grads_wrt_normalised
            - grads_wrt_normalised.mean(axis=0)
            - normalised * (grads_wrt_normalised * normalised).mean(axis=0))

    def grads_wrt_params(self, inputs, grads_wrt_outputs):
        """Computes dE/dgamma = sum_n dE/dy * x_hat and dE/dbeta = sum_n dE/dy.

        Args:
            inputs: Array of shape (batch_size, D).
            grads_wrt_outputs: Array of shape (batch_size, D).

        Returns:
            [grads_wrt_gamma (D,), grads_wrt_beta (D,)].
        """
        normalised = self._normalise_with_batch_statistics(inputs)[0]
        return [(grads_wrt_outputs * normalised).sum(axis=0), grads_wrt_outputs.sum(axis=0)]

    @property
    def params(self):
        """[gamma (D,), beta (D,)]."""
        return [self.gamma, self.beta]

    @params.setter
    def params(self, values):
        self.gamma = values[0]
        self.beta = values[1]

    def __repr__(self):
        return 'BatchNormalizationLayer(input_dim={0})'.format(self.input_dim)
# END EXERCISE 07_convolutional_networks
