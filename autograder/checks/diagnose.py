"""Recognising common mistakes from wrong answers.

TRUSTED. Each known mistake is a formula a student might have written
instead of the right one; when a wrong answer matches such a formula on the
inputs the parent chose, feedback can say what probably happened. The
formulas are evaluated here, in the parent, on the parent's own arrays.
"""

from __future__ import annotations

import numpy as np

from mlp.checks import DEFAULT_ATOL, DEFAULT_RTOL

# Each entry: (formula(x, y, g) -> array, what the student probably did).
# x: inputs, y: correct outputs, g: grads_wrt_outputs.
_GENERIC_BPROP = [
    (lambda x, y, g: g, 'it returns grads_wrt_outputs unchanged: multiply by the derivative dy/dx'),
    (lambda x, y, g: -g, 'it returns -grads_wrt_outputs'),
]
_GENERIC_FPROP = [
    (lambda x: x, 'it returns its inputs unchanged'),
]

_BPROP_MISTAKES = {
    'TanhLayer': [
        (lambda x, y, g: g * (1. - y), 'looks like d tanh/dx was taken as 1 - y instead of 1 - y^2'),
        (lambda x, y, g: g * (1. - x ** 2), 'looks like 1 - x^2 was used: the derivative is 1 - y^2 with y = tanh(x)'),
        (lambda x, y, g: 1. - y ** 2, 'looks like the derivative 1 - y^2 was returned without multiplying by grads_wrt_outputs'),
        (lambda x, y, g: g * y * (1. - y), 'looks like the sigmoid derivative y (1 - y) was used instead of 1 - y^2'),
        (lambda x, y, g: g * (1. + y ** 2), 'looks like 1 + y^2 was used instead of 1 - y^2'),
    ],
    'ReluLayer': [
        (lambda x, y, g: (x > 0).astype(float), 'looks like the mask (x > 0) was returned without multiplying by grads_wrt_outputs'),
        (lambda x, y, g: g * x, 'looks like grads_wrt_outputs was multiplied by x instead of by the step function (x > 0)'),
        (lambda x, y, g: g * y, 'looks like grads_wrt_outputs was multiplied by the outputs instead of by (x > 0)'),
        (lambda x, y, g: g * (x < 0), 'the mask is reversed: the gradient passes where x > 0, not where x < 0'),
    ],
    'LeakyReluLayer': [
        (lambda x, y, g: g * (x > 0), 'looks like the plain ReLU derivative was used: for x <= 0 it is alpha, not 0'),
    ],
    'ELULayer': [
        (lambda x, y, g: g * np.where(x > 0, 1., y), 'looks like y was used for x <= 0: the derivative there is y + alpha'),
        (lambda x, y, g: g * np.where(x > 0, 1., np.exp(np.minimum(x, 0))), 'looks like exp(x) was used for x <= 0 without the factor alpha'),
    ],
    'SELULayer': [
        (lambda x, y, g: g * np.where(x > 0, 1., y + 1.6732632423543772), 'the scale lambda seems to be missing from the derivative'),
    ],
}

_FPROP_MISTAKES = {
    'TanhLayer': [
        (lambda x: 1. / (1. + np.exp(-np.clip(x, -500, 500))), 'looks like the logistic sigmoid was computed instead of tanh'),
    ],
    'ReluLayer': [
        (lambda x: np.abs(x), 'looks like abs(x) was computed: negative inputs should give 0'),
        (lambda x: np.minimum(x, 0.), 'looks like min(x, 0) was computed instead of max(0, x)'),
    ],
    'LeakyReluLayer': [
        (lambda x: np.maximum(x, 0.), 'looks like a plain ReLU: negative inputs should be multiplied by alpha'),
    ],
    'ELULayer': [
        (lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))), 'the factor alpha seems to be missing for x <= 0'),
    ],
}


def _matches(got: np.ndarray, candidate: np.ndarray) -> bool:
    with np.errstate(all='ignore'):
        return (candidate.shape == got.shape
                and bool(np.allclose(got, candidate, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL)))


def diagnose_fprop(class_name: str, inputs: np.ndarray, got: np.ndarray) -> str:
    """Returns what the student probably did wrong in fprop, or ''."""
    if getattr(got, 'shape', None) == () or got.ndim == 0 or got.shape != inputs.shape:
        if got.size == 1 or (got.ndim == 1 and got.shape[0] in inputs.shape):
            return 'the result was reduced over an axis (np.max/np.sum?): use element-wise functions such as np.maximum'
        return ''
    for formula, message in _FPROP_MISTAKES.get(class_name, []) + _GENERIC_FPROP:
        with np.errstate(all='ignore'):
            if _matches(got, formula(inputs)):
                return message
    return ''


def diagnose_bprop(class_name: str, inputs: np.ndarray, outputs: np.ndarray,
                   grads_wrt_outputs: np.ndarray, got: np.ndarray) -> str:
    """Returns what the student probably did wrong in bprop, or ''."""
    if got.shape != inputs.shape:
        if got.shape == inputs.shape[::-1]:
            return 'the result is transposed'
        return ''
    for formula, message in _BPROP_MISTAKES.get(class_name, []) + _GENERIC_BPROP:
        with np.errstate(all='ignore'):
            if _matches(got, formula(inputs, outputs, grads_wrt_outputs)):
                return message
    return ''


# Scalar objectives (errors and penalties) ----------------------------------------------


def scaled_by(got, expected, factors) -> str:
    """The message of the first (factor, message) with got == factor * expected, else ''.

    Many slips in errors and penalties scale the right answer: a sum where
    the course averages, a missing 1/2 or coefficient, a flipped sign.
    """
    got = np.asarray(got, dtype=float)
    expected = np.asarray(expected, dtype=float)
    if got.shape != expected.shape or not np.any(expected != 0.):
        return ''
    for factor, message in factors:
        if factor != 1. and _matches(got, factor * expected):
            return message
    return ''


def diagnose_error_value(outputs: np.ndarray, got: float, expected: float) -> str:
    """What a wrong error value probably comes from (outputs: (B, K)), or ''."""
    batch_size, units = outputs.shape[0], int(np.prod(outputs.shape[1:]))
    return scaled_by(got, expected, [
        (float(batch_size), 'it sums over the batch: the course averages the error over the batch '
                            '(divide by the batch size)'),
        (1. / units, 'it averages over the output units too: average over the batch only, and '
                     'sum over the units'),
        (2., 'the factor 1/2 of the course\'s definition is missing'),
        (0.5, 'there is an extra factor 1/2'),
        (1. / batch_size, 'it divides by the batch size twice'),
        (-1., 'the sign is flipped'),
    ])


def diagnose_error_grad(outputs: np.ndarray, got: np.ndarray, expected: np.ndarray) -> str:
    """What a wrong error gradient probably comes from, or ''."""
    batch_size = outputs.shape[0]
    if got.shape != expected.shape:
        return 'the result is transposed' if got.shape == expected.shape[::-1] else ''
    return scaled_by(got, expected, [
        (float(batch_size), 'it is not divided by the batch size: the error is a batch mean, so '
                            'its gradient carries a factor 1/B'),
        (-1., 'the sign is flipped (the gradient is proportional to y - t, not t - y)'),
        (2., 'there is an extra factor 2 (the 1/2 of the error cancels the 2 of the square)'),
        (1. / batch_size, 'it divides by the batch size twice'),
    ])


def diagnose_penalty_value(class_name: str, parameter: np.ndarray, coefficient: float,
                           got: float, expected: float) -> str:
    """What a wrong penalty value probably comes from, or ''."""
    factors = [
        (1. / coefficient, 'the coefficient is missing: multiply by it'),
        (2., 'the factor 1/2 of the course\'s L2 penalty (lambda / 2 sum w^2) is missing'),
        (1. / parameter.size, 'it averages over the parameter\'s entries: penalties sum them '
                              '(there is no batch here)'),
        (-1., 'the sign is flipped'),
    ]
    found = scaled_by(got, expected, factors)
    if found:
        return found
    swapped = {'L1Penalty': (coefficient * np.sum(parameter ** 2), 'looks like the L2 form '
                             '(squares) was used: the L1 penalty is lambda sum |w|'),
               'L2Penalty': (coefficient * np.sum(np.abs(parameter)), 'looks like the L1 form '
                             '(absolute values) was used: the L2 penalty is lambda / 2 sum w^2')}
    if class_name in swapped and _matches(np.asarray(got), np.asarray(swapped[class_name][0])):
        return swapped[class_name][1]
    if class_name == 'L1Penalty' and _matches(np.asarray(got), np.asarray(coefficient * np.sum(parameter))):
        return 'the absolute value is missing: sum |w|, not w'
    return ''


def diagnose_penalty_grad(class_name: str, parameter: np.ndarray, coefficient: float,
                          got: np.ndarray, expected: np.ndarray) -> str:
    """What a wrong penalty gradient probably comes from, or ''."""
    if got.shape != expected.shape:
        return ''
    candidates = {
        'L1Penalty': [(np.sign(parameter), 'the coefficient is missing: the gradient is lambda sign(w)'),
                      (coefficient * parameter, 'looks like the L2 gradient lambda w: the L1 '
                                                'gradient is lambda sign(w)')],
        'L2Penalty': [(parameter, 'the coefficient is missing: the gradient is lambda w'),
                      (2. * coefficient * parameter, 'looks like the gradient of lambda sum w^2: with '
                                                     'the course\'s 1/2 convention it is lambda w'),
                      (coefficient * np.sign(parameter), 'looks like the L1 gradient lambda sign(w): '
                                                         'the L2 gradient is lambda w')],
    }
    for candidate, message in candidates.get(class_name, []):
        if _matches(got, candidate):
            return message
    return scaled_by(got, expected, [
        (1. / coefficient, 'the coefficient is missing'),
        (-1., 'the sign is flipped'),
        (1. / parameter.size, 'it is divided by the number of entries: penalties sum, they do not average'),
    ])


# Learning rules ------------------------------------------------------------------------
#
# A mistaken learning rule is simulated in the parent as a variant of the right update:
# each variant maps (hyperparameters, state, param, grad, step count) to the new param, and
# the whole sequence of steps is replayed; a student's trajectory that matches a variant's
# says what happened.


def _momentum_variant(wrong_sign=False, no_decay=False):
    def step(h, state, index, param, grad, count):
        mom = state.setdefault(index, np.zeros_like(param))
        mom[...] = (mom if no_decay else h.get('mom_coeff', 0.9) * mom) + (
            1. if wrong_sign else -1.) * h.get('learning_rate', 1e-3) * grad
        return param + mom
    return step


def _rmsprop_variant(no_one_minus_beta=False, no_sqrt=False, epsilon_inside=False):
    def step(h, state, index, param, grad, count):
        beta, eps = h.get('beta', 0.9), h.get('epsilon', 1e-8)
        mean_sq = state.setdefault(index, np.zeros_like(param))
        mean_sq[...] = beta * mean_sq + (1. if no_one_minus_beta else 1. - beta) * grad ** 2
        if epsilon_inside:
            return param - h.get('learning_rate', 1e-3) * grad / np.sqrt(mean_sq + eps)
        scale = mean_sq if no_sqrt else np.sqrt(mean_sq)
        return param - h.get('learning_rate', 1e-3) * grad / (scale + eps)
    return step


def _adam_variant(bias_correction=True, count_per_parameter=False, epsilon_inside=False,
                  step_size_form=False):
    def step(h, state, index, param, grad, count):
        b1, b2, eps = h.get('beta_1', 0.9), h.get('beta_2', 0.999), h.get('epsilon', 1e-8)
        rate = h.get('learning_rate', 1e-3)
        m, v = state.setdefault(index, (np.zeros_like(param), np.zeros_like(param)))
        m[...] = b1 * m + (1. - b1) * grad
        v[...] = b2 * v + (1. - b2) * grad ** 2
        if step_size_form:  # Kingma and Ba's "more efficient" order: the correction in the step size
            return param - rate * np.sqrt(1. - b2 ** count) / (1. - b1 ** count) * m / (np.sqrt(v) + eps)
        m_hat, v_hat = m, v
        if bias_correction:
            m_hat, v_hat = m / (1. - b1 ** count), v / (1. - b2 ** count)
        if epsilon_inside:
            return param - rate * m_hat / np.sqrt(v_hat + eps)
        return param - rate * m_hat / (np.sqrt(v_hat) + eps)
    step.count_per_parameter = count_per_parameter
    return step


#: Forms of a rule that differ from the reference only by where epsilon enters; they are right
#: (published implementations use them), so a trajectory matching one of them passes.
LEARNING_RULE_EQUIVALENTS = {
    'RMSPropLearningRule': [_rmsprop_variant(epsilon_inside=True)],
    'AdamLearningRule': [_adam_variant(epsilon_inside=True), _adam_variant(step_size_form=True)],
}


_LEARNING_RULE_MISTAKES = {
    'MomentumLearningRule': [
        (_momentum_variant(wrong_sign=True), 'the gradient is added with the wrong sign: the velocity '
                                             'is v = alpha v - eta g, then p = p + v'),
        (_momentum_variant(no_decay=True), 'the velocity is not multiplied by mom_coeff before the '
                                           'gradient step is added'),
    ],
    'RMSPropLearningRule': [
        (_rmsprop_variant(no_one_minus_beta=True), 'the running mean of squared gradients misses the '
                                                   'factor (1 - beta) on g^2'),
        (_rmsprop_variant(no_sqrt=True), 'the step divides by the mean of squared gradients instead '
                                         'of its square root'),
    ],
    'AdamLearningRule': [
        (_adam_variant(bias_correction=False), 'the bias correction is missing: divide the moments by '
                                               '(1 - beta_1^t) and (1 - beta_2^t), t the number of steps so far'),
        (_adam_variant(count_per_parameter=True), 'the step count t is increased once per parameter '
                                                  'instead of once per call of update_params'),
    ],
}


def simulate_learning_rule(step, hyperparameters, params, grads_per_step, reset_after=(),
                           honour_reset=True):
    """Replays a (possibly mistaken) update rule; returns the params after every step."""
    params = [np.array(p, dtype=float) for p in params]
    state, count, trajectory = {}, 0, []
    per_parameter = getattr(step, 'count_per_parameter', False)
    for number, grads in enumerate(grads_per_step, start=1):
        if not per_parameter:
            count += 1
        for index, grad in enumerate(grads):
            if per_parameter:
                count += 1
            with np.errstate(all='ignore'):
                params[index] = step(hyperparameters, state, index, params[index], np.asarray(grad), count)
        trajectory.append([p.copy() for p in params])
        if honour_reset and number in reset_after:
            state, count = {}, 0
    return trajectory


def _same_trajectory(got, candidate) -> bool:
    return len(got) == len(candidate) and all(
        len(g) == len(c) and all(_matches(np.asarray(a), b) for a, b in zip(g, c))
        for g, c in zip(got, candidate))


def diagnose_learning_rule(class_name: str, hyperparameters: dict, params, grads_per_step,
                           reset_after, got, reference_without_reset=None) -> str:
    """What a learning rule's wrong trajectory probably comes from, or ''.

    Args:
        got: The student's params after every step (list of lists of arrays).
        reference_without_reset: The right trajectory when reset() is ignored.
    """
    if reference_without_reset is not None and reset_after and _same_trajectory(got, reference_without_reset):
        return 'reset() does not clear the state (velocities, moments, step count)'
    for step, message in _LEARNING_RULE_MISTAKES.get(class_name, []):
        if _same_trajectory(got, simulate_learning_rule(step, hyperparameters, params, grads_per_step,
                                                        reset_after)):
            return message
    return ''


# Schedulers ----------------------------------------------------------------------------


def diagnose_schedule(rates: np.ndarray, kwargs: dict, replay) -> str:
    """What a wrong learning-rate schedule probably misses, or ''.

    Args:
        rates: The rates the student's scheduler set for epochs 0..N-1.
        kwargs: The scheduler's constructor arguments.
        replay: Callable (num_epochs, **changed kwargs) -> the reference's rates.
    """
    num_epochs = rates.shape[0]

    def same(candidate):
        return candidate.shape == rates.shape and np.allclose(rates, candidate, rtol=1e-6, atol=1e-12)

    variants = [
        ({'max_learning_rate_discount_factor': 1.}, 'the maximum rate is not discounted at restarts '
                                                    '(multiply it by max_learning_rate_discount_factor each period)'),
        ({'period_iteration_expansion_factor': 1.}, 'the periods do not grow (multiply each period\'s '
                                                    'length by period_iteration_expansion_factor)'),
    ]
    for changes, message in variants:
        if set(changes) <= set(kwargs):
            try:
                if same(replay(num_epochs, **changes)):
                    return message
            except (ValueError, ZeroDivisionError, OverflowError):
                continue
    longer = replay(num_epochs + 1)
    if same(longer[1:]):
        return 'the rates are one epoch early: epoch_number counts from 0 (the first epoch gets the maximum rate)'
    if num_epochs > 1 and np.allclose(rates[1:], longer[:num_epochs - 1], rtol=1e-6, atol=1e-12):
        return 'the rates are one epoch late: set the rate of epoch_number itself, counted from 0'
    return ''


# Stochastic layers (dropout) -----------------------------------------------------------


def diagnose_dropout_evaluation(inputs: np.ndarray, got: np.ndarray) -> str:
    """What a wrong deterministic-mode dropout output probably comes from, or ''."""
    if got.shape == inputs.shape and _matches(got, inputs):
        return ('in the deterministic mode the outputs must be scaled by incl_prob (the expected '
                'value of the mask), not returned unchanged')
    return ''


def diagnose_dropout_bprop(outputs: np.ndarray, grads_wrt_outputs: np.ndarray, got: np.ndarray,
                           incl_prob: float) -> str:
    """What a wrong dropout bprop probably does, given the outputs of the fprop before it, or ''."""
    if got.shape != grads_wrt_outputs.shape:
        return ''
    if _matches(got, grads_wrt_outputs):
        return 'bprop ignores the mask: multiply grads_wrt_outputs by the mask of the last fprop'
    if _matches(got, grads_wrt_outputs * incl_prob):
        return 'bprop scales by incl_prob (the deterministic mode) instead of using the mask'
    passes_or_zero = (got == 0.) | np.isclose(got, grads_wrt_outputs)
    if np.all(passes_or_zero) and np.any((got == 0.) != (outputs == 0.)):
        return ('bprop zeroes other units than fprop dropped: reuse the mask stored by the last '
                'fprop instead of drawing a new one')
    return ''
