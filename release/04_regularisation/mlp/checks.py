"""Checks for layer implementations, shared by notebooks and the grader.

One library serves three places: the visible test cells of the course
notebooks (which call `check_fprop`, `check_bprop`, ... on a student's layer
in the student's own kernel), the student self-check, and the trusted
grader, which uses the pure functions here (`compare_arrays`,
`perturbed_inputs`, `central_differences`) on values that a sandboxed child
returned. Everything is numpy-only.

Finite differences: for a layer f and fixed output gradients g, the scalar
E(x) = sum(g * f(x)) has dE/dx = bprop(x, f(x), g). Its central-difference
estimate at element i is (E(x + h e_i) - E(x - h e_i)) / (2 h), accurate to
O(h^2), which for float64 and h = 1e-5 leaves errors around 1e-9 for
smooth layers.
"""

from dataclasses import dataclass

import numpy as np

DEFAULT_RTOL = 1e-5  # Relative tolerance of array comparisons (as np.allclose).
DEFAULT_ATOL = 1e-8  # Absolute tolerance of array comparisons (as np.allclose).
GRADCHECK_STEP = 1e-5  # Step h of central differences.
GRADCHECK_RTOL = 1e-4  # Finite differences carry O(h^2) and rounding error.
GRADCHECK_ATOL = 1e-6


@dataclass
class Comparison:
    """The outcome of comparing an array with the expected one.

    Attributes:
        ok: True when shapes match and every element is within tolerance.
        message: One sentence a student can act on ('' when ok).
        max_abs_error: Largest |got - expected| (inf on shape mismatch or NaN).
        worst_index: Index of the largest error, or None.
        got_value: The returned value at `worst_index`, or None.
        expected_value: The expected value at `worst_index`, or None.
        wrong_fraction: Fraction of elements out of tolerance.
    """

    ok: bool
    message: str = ''
    max_abs_error: float = 0.0
    worst_index: tuple = None
    got_value: float = None
    expected_value: float = None
    wrong_fraction: float = 0.0


def compare_arrays(got, expected, what, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL,
                   reveal=True):
    """Compares an array with the expected one, element by element.

    An element passes when |got - expected| <= atol + rtol * |expected|, the
    rule of `np.allclose`; NaN or infinite values never pass unless expected,
    and an expected infinity is matched only by the same infinity.

    Args:
        got: The array to judge (anything array-like; it is not modified).
        expected: The correct array.
        what: What is being compared, e.g. 'TanhLayer.bprop', for messages.
        rtol: Relative tolerance.
        atol: Absolute tolerance.
        reveal: If False, messages do not show values or positions (for
            hidden cases).

    Returns:
        A `Comparison`.
    """
    expected = np.asarray(expected, dtype=float)
    try:
        got = np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return Comparison(False, '{0} returned a value that is not a numeric array.'.format(what),
                          max_abs_error=float('inf'))
    if got.shape != expected.shape:
        return Comparison(
            False, '{0} returned an array of shape {1}, expected shape {2}.'.format(
                what, got.shape, expected.shape),
            max_abs_error=float('inf'), wrong_fraction=1.0)
    if got.size == 0:
        return Comparison(True)
    both_nan = np.isnan(got) & np.isnan(expected)
    same_inf = np.isinf(got) & (got == expected)
    with np.errstate(invalid='ignore', over='ignore'):
        error = np.abs(got - expected)
        # An infinite expected value would make the tolerance infinite: only
        # the same infinity matches it.
        within = np.isfinite(expected) & (error <= atol + rtol * np.abs(expected))
        close = within | both_nan | same_inf
    if close.all():
        # Matching NaNs and infinities count as an error of 0, not NaN.
        return Comparison(True, max_abs_error=float(np.max(
            np.where(np.isfinite(error), error, 0.))))
    error_for_ranking = np.where(close, -1., np.where(np.isfinite(error), error, np.inf))
    worst = np.unravel_index(int(np.argmax(error_for_ranking)), got.shape)
    max_error = float(error_for_ranking[worst])
    wrong_fraction = float(1. - close.mean())
    if not np.all(np.isfinite(got[~close])):
        summary = '{0} returned NaN or infinite values'.format(what)
    else:
        summary = '{0} returned wrong values'.format(what)
    if reveal:
        message = '{0} at {1}: got {2:.6g}, expected {3:.6g} (max abs error {4:.3g}; {5:.0%} of entries wrong).'.format(
            summary, list(int(i) for i in worst), got[worst], expected[worst], max_error,
            wrong_fraction)
    else:
        message = '{0} ({1:.0%} of entries wrong).'.format(summary, wrong_fraction)
    return Comparison(False, message, max_error, tuple(int(i) for i in worst),
                      float(got[worst]), float(expected[worst]), wrong_fraction)


def perturbed_inputs(inputs, step=GRADCHECK_STEP):
    """Lists the inputs of a central-difference gradient estimate.

    Args:
        inputs: Array x of any shape, float64.
        step: The step h.

    Returns:
        List of (index, x + h e_index, x - h e_index), one per element of x,
        in C order.
    """
    inputs = np.asarray(inputs, dtype=float)
    perturbed = []
    for index in np.ndindex(*inputs.shape):
        plus, minus = inputs.copy(), inputs.copy()
        plus[index] += step
        minus[index] -= step
        perturbed.append((index, plus, minus))
    return perturbed


def central_differences(shape, outputs_plus, outputs_minus, grads_wrt_outputs,
                        step=GRADCHECK_STEP):
    """Estimates dE/dx for E(x) = sum(g * f(x)) from perturbed outputs.

    Args:
        shape: Shape of x.
        outputs_plus: List of f(x + h e_i), in the order of `perturbed_inputs`.
        outputs_minus: List of f(x - h e_i), same order.
        grads_wrt_outputs: The fixed output gradients g, shaped like f(x).
        step: The step h used.

    Returns:
        Array of the shape of x with (E(x + h e_i) - E(x - h e_i)) / (2 h).
    """
    grads_wrt_outputs = np.asarray(grads_wrt_outputs, dtype=float)
    estimate = np.empty(int(np.prod(shape)))
    for i, (plus, minus) in enumerate(zip(outputs_plus, outputs_minus)):
        estimate[i] = np.sum(grads_wrt_outputs * (np.asarray(plus) - np.asarray(minus))) / (2. * step)
    return estimate.reshape(shape)


def numerical_gradient(function, inputs, grads_wrt_outputs, step=GRADCHECK_STEP):
    """Central-difference estimate of d sum(g * function(x)) / dx.

    Args:
        function: Callable mapping an array shaped like `inputs` to outputs.
        inputs: The point x, float64 array.
        grads_wrt_outputs: Output gradients g, shaped like function(x).
        step: The step h.

    Returns:
        Array shaped like `inputs`.
    """
    perturbed = perturbed_inputs(inputs, step)
    return central_differences(
        np.shape(inputs), [function(plus) for _, plus, _ in perturbed],
        [function(minus) for _, _, minus in perturbed], grads_wrt_outputs, step)


class CheckFailed(AssertionError):
    """Raised by the notebook checks when a layer method gives a wrong answer."""


def _report(comparison, success_message):
    """Prints the verdict of a notebook check and raises on failure."""
    if not comparison.ok:
        raise CheckFailed(comparison.message)
    if success_message:
        print(success_message)


def _layer_name(layer):
    return type(layer).__name__


def check_fprop(layer, inputs, expected_outputs):
    """Notebook check: does `layer.fprop(inputs)` give `expected_outputs`?

    Prints a confirmation, or raises `CheckFailed` saying where it differs.
    """
    what = _layer_name(layer) + '.fprop'
    _report(compare_arrays(layer.fprop(np.array(inputs, dtype=float)), expected_outputs, what),
            '{0} gives the expected outputs.'.format(what))


def check_bprop(layer, inputs, grads_wrt_outputs, expected_grads_wrt_inputs):
    """Notebook check: does `layer.bprop` give the expected input gradients?

    The outputs passed to bprop are the layer's own `fprop(inputs)`.
    """
    what = _layer_name(layer) + '.bprop'
    inputs = np.array(inputs, dtype=float)
    outputs = layer.fprop(inputs.copy())
    got = layer.bprop(inputs, outputs, np.array(grads_wrt_outputs, dtype=float))
    _report(compare_arrays(got, expected_grads_wrt_inputs, what),
            '{0} gives the expected gradients with respect to the inputs.'.format(what))


def check_grads_wrt_params(layer, inputs, grads_wrt_outputs, expected_grads):
    """Notebook check: does `layer.grads_wrt_params` give the expected list?"""
    what = _layer_name(layer) + '.grads_wrt_params'
    got = layer.grads_wrt_params(np.array(inputs, dtype=float),
                                 np.array(grads_wrt_outputs, dtype=float))
    if len(got) != len(expected_grads):
        raise CheckFailed('{0} returned {1} arrays, expected {2} (one per parameter).'.format(
            what, len(got), len(expected_grads)))
    for i, (got_grad, expected_grad) in enumerate(zip(got, expected_grads)):
        _report(compare_arrays(got_grad, expected_grad, '{0}[{1}]'.format(what, i)), '')
    print('{0} gives the expected parameter gradients.'.format(what))


def check_gradients(layer, input_shape=(3, 4), seed=2017, scale=2.):
    """Notebook check: are `bprop` (and `grads_wrt_params`) derivatives of `fprop`?

    Compares them with central differences at random inputs drawn from
    U(-scale, scale), using random output gradients.

    Args:
        layer: The layer to check.
        input_shape: Shape of the random inputs.
        seed: Seed of the random inputs.
        scale: Half-width of the input interval.
    """
    rng = np.random.RandomState(seed)
    inputs = rng.uniform(-scale, scale, size=input_shape)
    outputs = layer.fprop(inputs.copy())
    grads_wrt_outputs = rng.normal(size=np.shape(outputs))
    what = _layer_name(layer)
    estimate = numerical_gradient(layer.fprop, inputs, grads_wrt_outputs)
    got = layer.bprop(inputs, outputs, grads_wrt_outputs)
    _report(compare_arrays(got, estimate, what + '.bprop (against finite differences of fprop)',
                           GRADCHECK_RTOL, GRADCHECK_ATOL), '')
    if hasattr(layer, 'grads_wrt_params'):
        params = [param.copy() for param in layer.params]
        for i, grad in enumerate(layer.grads_wrt_params(inputs, grads_wrt_outputs)):
            def fprop_of_param(value, i=i):
                layer.params = [value if j == i else param for j, param in enumerate(params)]
                return layer.fprop(inputs)
            estimate = numerical_gradient(fprop_of_param, params[i], grads_wrt_outputs)
            layer.params = params
            _report(compare_arrays(
                grad, estimate,
                '{0}.grads_wrt_params[{1}] (against finite differences of fprop)'.format(what, i),
                GRADCHECK_RTOL, GRADCHECK_ATOL), '')
    print('{0}: gradients agree with finite differences of fprop.'.format(what))


def check_values(got, expected, what, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL):
    """Notebook check: is a returned value (number, array, or list of arrays) the expected one?

    For checks that are not about one layer method: functions, errors, penalties,
    parameters after learning-rule steps, learning rates of a schedule. A list or
    tuple in `expected` is compared item by item (e.g. [weights, biases]).

    Args:
        got: The value to judge.
        expected: The correct value, or a list/tuple of correct arrays.
        what: What is being compared, for the messages.
        rtol: Relative tolerance.
        atol: Absolute tolerance.
    """
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)) or len(got) != len(expected):
            raise CheckFailed('{0} should be a list of {1} arrays, got {2!r:.80}.'.format(
                what, len(expected), got))
        for i, (got_item, expected_item) in enumerate(zip(got, expected)):
            _report(compare_arrays(got_item, expected_item, '{0}[{1}]'.format(what, i),
                                   rtol, atol), '')
    else:
        _report(compare_arrays(got, expected, what, rtol, atol), '')
    print('{0} gives the expected values.'.format(what))


def check_scalar_gradient(function, gradient, point, what):
    """Notebook check: is `gradient(x)` the derivative of the scalar `function(x)`?

    Compares it with central differences of `function` at `point` (used for
    errors, with the targets fixed, and for penalties).

    Args:
        function: Callable mapping an array shaped like `point` to a number.
        gradient: Callable mapping the same array to an array of its shape.
        point: The array x at which to compare.
        what: Name of the gradient, for the messages.
    """
    point = np.array(point, dtype=float)
    estimate = numerical_gradient(function, point, 1.)
    _report(compare_arrays(gradient(point.copy()), estimate,
                           what + ' (against finite differences)', GRADCHECK_RTOL,
                           GRADCHECK_ATOL), '')
    print('{0}: agrees with finite differences.'.format(what))
