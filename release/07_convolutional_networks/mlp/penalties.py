"""Penalties: scalar functions of a parameter array added to a model's error.

A penalty is a callable `penalty(parameter)` returning a float and has
`grad(parameter)`, the derivative of that float with respect to every
element of the parameter (an array of the parameter's shape). Penalties act
on whole parameter arrays, not on batches: unlike the errors they involve no
batch average. A layer given a penalty (for example `AffineLayer(...,
weights_penalty=L2Penalty(1e-3))`) adds its gradient to the gradients it
returns and its value to `params_penalty()`.

Part of the student-facing `mlp` package: it runs wherever students run it,
and in the grader only INSIDE THE SANDBOX.

Exercise regions: as in `mlp.layers`.
"""

import numpy as np


class L1Penalty(object):
    """L1 penalty: P(w) = lambda sum_i |w_i|.

    It pulls every parameter towards zero by the same amount whatever its
    size, which tends to make many parameters exactly zero (sparse models).
    """

    def __init__(self, coefficient):
        """Creates the penalty.

        Args:
            coefficient: The strength lambda > 0.
        """
        self.coefficient = _checked_coefficient(coefficient)

    def __call__(self, parameter):
        """Returns lambda sum_i |w_i| for a parameter array of any shape."""
        return self.coefficient * np.abs(parameter).sum()

    def grad(self, parameter):
        """Returns dP/dw_i = lambda sign(w_i), an array of the parameter's shape.

        |w| has no derivative at 0; sign(0) = 0 is taken there (the
        subgradient in [-lambda, lambda] closest to zero).
        """
        return self.coefficient * np.sign(parameter)

    def __repr__(self):
        return 'L1Penalty({0})'.format(self.coefficient)


class L2Penalty(object):
    """L2 penalty (weight decay): P(w) = lambda / 2 sum_i w_i^2.

    The factor 1/2 makes the gradient simply lambda w, so under gradient
    descent each step shrinks the parameters by the factor (1 - eta lambda).
    """

    def __init__(self, coefficient):
        """Creates the penalty.

        Args:
            coefficient: The strength lambda > 0.
        """
        self.coefficient = _checked_coefficient(coefficient)

    def __call__(self, parameter):
        """Returns lambda / 2 sum_i w_i^2 for a parameter array of any shape."""
        return 0.5 * self.coefficient * (parameter ** 2).sum()

    def grad(self, parameter):
        """Returns dP/dw_i = lambda w_i, an array of the parameter's shape."""
        return self.coefficient * parameter

    def __repr__(self):
        return 'L2Penalty({0})'.format(self.coefficient)


def _checked_coefficient(coefficient):
    """Returns the coefficient as a float, refusing values that are not positive."""
    try:
        value = float(coefficient)
    except (TypeError, ValueError):
        raise ValueError('coefficient must be a positive number, got {0!r}.'.format(coefficient))
    if not value > 0.:
        raise ValueError('coefficient must be positive, got {0!r}.'.format(coefficient))
    return value
