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


