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


