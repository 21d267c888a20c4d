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
