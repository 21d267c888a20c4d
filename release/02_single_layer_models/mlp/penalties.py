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


def _checked_coefficient(coefficient):
    """Returns the coefficient as a float, refusing values that are not positive."""
    try:
        value = float(coefficient)
    except (TypeError, ValueError):
        raise ValueError('coefficient must be a positive number, got {0!r}.'.format(coefficient))
    if not value > 0.:
        raise ValueError('coefficient must be positive, got {0!r}.'.format(coefficient))
    return value
