"""Parameter initialisers.

An initialiser is a callable object: given an array shape it returns a new
array of that shape holding initial parameter values. Random initialisers
draw from a `numpy.random.RandomState` injected at construction, so that a
run can be reproduced by re-seeding that generator.
"""

import numpy as np

from mlp import DEFAULT_SEED


def _default_rng(rng):
    """Returns `rng`, or a generator seeded with `DEFAULT_SEED` when it is None."""
    return np.random.RandomState(DEFAULT_SEED) if rng is None else rng


class ConstantInit(object):
    """Fills the parameter array with one constant value."""

    def __init__(self, value):
        """Creates a constant initialiser.

        Args:
            value: The value every element of the parameter array is set to.
        """
        self.value = value

    def __call__(self, shape):
        return np.ones(shape=shape) * self.value


class UniformInit(object):
    """Draws each parameter independently from a uniform distribution on [low, high)."""

    def __init__(self, low, high, rng=None):
        """Creates a uniform initialiser.

        Args:
            low: Lower bound of the interval (inclusive).
            high: Upper bound of the interval (exclusive).
            rng: A `numpy.random.RandomState`; a fixed-seed one if None.
        """
        self.low = low
        self.high = high
        self.rng = _default_rng(rng)

    def __call__(self, shape):
        return self.rng.uniform(low=self.low, high=self.high, size=shape)


class NormalInit(object):
    """Draws each parameter independently from a normal distribution N(mean, std^2)."""

    def __init__(self, mean, std, rng=None):
        """Creates a normal initialiser.

        Args:
            mean: Mean of the distribution.
            std: Standard deviation of the distribution.
            rng: A `numpy.random.RandomState`; a fixed-seed one if None.
        """
        self.mean = mean
        self.std = std
        self.rng = _default_rng(rng)

    def __call__(self, shape):
        return self.rng.normal(loc=self.mean, scale=self.std, size=shape)


def _fan_in_and_out(shape):
    """Returns (fan_in, fan_out) of a weight array shaped (output_dim, input_dim, ...)."""
    if len(shape) < 2:
        raise ValueError(
            'Glorot initialisation needs a weight shape with at least two axes '
            '(output_dim, input_dim); got {0}.'.format(shape))
    receptive_field = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive_field, shape[0] * receptive_field


class GlorotUniformInit(object):
    """Glorot and Bengio's (2010) uniform initialisation.

    Weights are drawn from U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)),
    which keeps the variance of activations and of back-propagated gradients
    roughly constant from layer to layer. Weight shapes follow the framework's
    `(output_dim, input_dim)` convention.
    """

    def __init__(self, gain=1., rng=None):
        """Creates a Glorot uniform initialiser.

        Args:
            gain: Multiplier on the bound, e.g. to suit a particular non-linearity.
            rng: A `numpy.random.RandomState`; a fixed-seed one if None.
        """
        self.gain = gain
        self.rng = _default_rng(rng)

    def __call__(self, shape):
        fan_in, fan_out = _fan_in_and_out(shape)
        bound = self.gain * np.sqrt(6. / (fan_in + fan_out))
        return self.rng.uniform(low=-bound, high=bound, size=shape)


class GlorotNormalInit(object):
    """Glorot and Bengio's (2010) normal initialisation.

    Weights are drawn from N(0, s^2) with s = gain * sqrt(2 / (fan_in + fan_out)).
    """

    def __init__(self, gain=1., rng=None):
        """Creates a Glorot normal initialiser.

        Args:
            gain: Multiplier on the standard deviation.
            rng: A `numpy.random.RandomState`; a fixed-seed one if None.
        """
        self.gain = gain
        self.rng = _default_rng(rng)

    def __call__(self, shape):
        fan_in, fan_out = _fan_in_and_out(shape)
        std = self.gain * np.sqrt(2. / (fan_in + fan_out))
        return self.rng.normal(loc=0., scale=std, size=shape)
