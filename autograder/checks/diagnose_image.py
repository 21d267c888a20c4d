"""Recognising common mistakes in the image layers of lab 7 (convolution, pooling, batch norm).

TRUSTED. As in :mod:`autograder.checks.diagnose`, each known mistake is another formula a
student might have written; here the formulas need the layer itself (its kernels, its pool size,
its gamma), so each is a function of the REFERENCE layer, configured as the student's was, and of
the parent's own arrays. A wrong answer that matches one of them, to the usual tolerances, gets
that mistake's explanation as its diagnosis.

A candidate that fails to compute (a shape the mistake cannot produce) simply does not match.
"""

from __future__ import annotations

import copy

import numpy as np

from autograder.checks.diagnose import _matches


def _rotated(layer):
    """A copy of a convolutional layer whose kernels are rotated by 180 degrees."""
    twin = copy.deepcopy(layer)
    twin.kernels = np.ascontiguousarray(layer.kernels[:, :, ::-1, ::-1])
    return twin


def _without_biases(layer):
    twin = copy.deepcopy(layer)
    twin.biases = np.zeros_like(layer.biases)
    return twin


def _pool_windows(layer, inputs):
    """(n, c, d1 / s, s, d2 / s, s) view of pooling inputs."""
    n, c, d1, d2 = inputs.shape
    s = layer.pool_size
    return inputs.reshape(n, c, d1 // s, s, d2 // s, s)


def _spread(layer, grads_wrt_outputs, weights):
    """Each output gradient copied to its whole window, times `weights` (same shape as inputs)."""
    s = layer.pool_size
    return np.repeat(np.repeat(grads_wrt_outputs, s, axis=2), s, axis=3) * weights


def _to_all_maxima(layer, inputs, grads_wrt_outputs):
    windows = _pool_windows(layer, inputs)
    is_max = windows == windows.max(axis=(3, 5), keepdims=True)
    return _spread(layer, grads_wrt_outputs, is_max.reshape(inputs.shape))


def _batch_norm(layer, inputs, axis, ddof=0, epsilon=None):
    """Training-mode batch norm with statistics over `axis` (the mistakes differ in it)."""
    epsilon = layer.epsilon if epsilon is None else epsilon
    mean = inputs.mean(axis=axis, keepdims=True)
    var = inputs.var(axis=axis, keepdims=True, ddof=ddof)
    return layer.gamma * (inputs - mean) / np.sqrt(var + epsilon) + layer.beta


def _batch_norm_constant_statistics(layer, grads_wrt_outputs, inputs):
    return grads_wrt_outputs * layer.gamma / np.sqrt(inputs.var(axis=0) + layer.epsilon)


# class name -> method -> [(formula, message)]; formulas take (layer, inputs, grads_wrt_outputs).
_FPROP = {
    'ConvolutionalLayer': [
        (lambda layer, x, g: _rotated(layer).fprop(x),
         'the kernels were not flipped: this is a cross-correlation, and the lab asks for a '
         'convolution (use kernels[:, :, ::-1, ::-1])'),
        (lambda layer, x, g: _without_biases(layer).fprop(x), 'the biases are not added'),
        (lambda layer, x, g: _rotated(_without_biases(layer)).fprop(x),
         'the kernels were not flipped (a cross-correlation) and the biases are not added'),
    ],
    'MaxPooling2DLayer': [
        (lambda layer, x, g: _pool_windows(layer, x).mean(axis=(3, 5)),
         'this is average pooling: take the maximum of each window'),
        (lambda layer, x, g: np.abs(_pool_windows(layer, x)).max(axis=(3, 5)),
         'this takes the largest magnitude (np.abs) of each window, not its maximum'),
    ],
    'BatchNormalizationLayer': [
        (lambda layer, x, g: _batch_norm(layer, x, axis=1),
         'the mean and variance were taken over the features (axis 1): take them over the batch '
         '(axis 0), one mean and one variance per feature'),
        (lambda layer, x, g: _batch_norm(layer, x, axis=0, ddof=1),
         'the variance divides by N - 1: the course uses the biased variance (np.var, divided by N)'),
        (lambda layer, x, g: (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + layer.epsilon),
         'gamma and beta are not applied after normalising'),
    ],
}
_BPROP = {
    'ConvolutionalLayer': [
        (lambda layer, x, g: _rotated(layer).bprop(x, _rotated(layer).fprop(x), g),
         'the kernels were not flipped in bprop: the gradient spreads each output gradient back '
         'over its patch weighted by the same (flipped) kernel that fprop used'),
    ],
    'MaxPooling2DLayer': [
        (lambda layer, x, g: _spread(layer, g, 1.),
         'the gradient was copied to every element of its window: it goes to the maximal element only'),
        (lambda layer, x, g: _spread(layer, g, 1. / layer.pool_size ** 2),
         'this is the gradient of average pooling: send each gradient to the maximal element only'),
        (lambda layer, x, g: _to_all_maxima(layer, x, g),
         'where several elements share the maximum, each got the whole gradient: send it to one of them'),
    ],
    'BatchNormalizationLayer': [
        (lambda layer, x, g: _batch_norm_constant_statistics(layer, g, x),
         'the batch mean and variance were treated as constants: they depend on every input of '
         'the batch, which adds two terms to the gradient'),
    ],
}
_GRADS = {
    'ConvolutionalLayer': [
        (lambda layer, x, g: [layer.grads_wrt_params(x, g)[0], g.mean(axis=(0, 2, 3))],
         'the bias gradients average over the batch and positions: sum them'),
        (lambda layer, x, g: [layer.grads_wrt_params(x, g)[0][:, :, ::-1, ::-1], g.sum(axis=(0, 2, 3))],
         'the kernel gradients are rotated by 180 degrees: flip them back to the orientation of the kernels'),
        (lambda layer, x, g: [layer.grads_wrt_params(x, g)[0] / x.shape[0], g.sum(axis=(0, 2, 3)) / x.shape[0]],
         'the gradients are divided by the batch size: the error gradients already carry that factor'),
    ],
    'BatchNormalizationLayer': [
        (lambda layer, x, g: [(g * x).sum(axis=0), g.sum(axis=0)],
         'the gamma gradient uses the raw inputs: it needs the normalised inputs (x - mean) / sqrt(var + epsilon)'),
    ],
}


def _same(arrays, others) -> bool:
    return len(arrays) == len(others) and all(
        _matches(np.asarray(a), np.asarray(b)) for a, b in zip(arrays, others))


def _first_match(candidates, layer, inputs, grads, got_arrays, right) -> str:
    """The message of the first candidate that gives `got_arrays` and differs from `right`.

    A candidate that coincides with the right answer on these inputs (all-maxima pooling
    without ties, say) says nothing about the student's mistake, so it is passed over.
    """
    for formula, message in candidates:
        try:
            with np.errstate(all='ignore'):
                expected = formula(layer, inputs, grads)
        except Exception:  # noqa: BLE001 - a mistake that cannot happen for these shapes
            continue
        expected = expected if isinstance(expected, list) else [expected]
        if _same(got_arrays, expected) and not _same(expected, right):
            return message
    return ''


def _shape_hint(layer, inputs, got) -> str:
    """Output-size slips of a convolution: padding, off by one, swapped spatial axes."""
    if type(layer).__name__ != 'ConvolutionalLayer' or np.ndim(got) != 4:
        return ''
    n, _, d1, d2 = inputs.shape
    k1, k2 = layer.kernel_dim_1, layer.kernel_dim_2
    right = (n, layer.num_output_channels, d1 - k1 + 1, d2 - k2 + 1)
    got_shape = tuple(np.shape(got))
    if got_shape == right:
        return ''
    if got_shape == right[:2] + right[2:][::-1]:
        return 'the two spatial axes of the output are swapped'
    if got_shape[2:] in ((d1, d2), (d1 + k1 - 1, d2 + k2 - 1)):
        return 'the output is padded: without padding it has D - K + 1 positions along each axis'
    if got_shape[2:] == (d1 - k1, d2 - k2):
        return 'the output is one position short along each axis: it has D - K + 1 positions'
    return ''


def _epsilon_hint(layer, inputs, got) -> str:
    """Batch norm without epsilon: not finite exactly where a feature is constant over the batch."""
    if type(layer).__name__ != 'BatchNormalizationLayer' or np.shape(got) != np.shape(inputs):
        return ''
    constant = np.broadcast_to(inputs.var(axis=0) == 0., inputs.shape)
    not_finite = ~np.isfinite(got)
    if constant.any() and not_finite.any() and not (not_finite & ~constant).any():
        return ('the result is not finite for a feature that is constant over the batch: add '
                'epsilon to the variance before the square root')
    return ''


def diagnose_image_fprop(layer, inputs, got) -> str:
    """What a wrong fprop of an image layer probably comes from, or ''."""
    if type(layer).__name__ not in _FPROP:
        return ''
    return (_shape_hint(layer, inputs, got) or _epsilon_hint(layer, inputs, got)
            or _first_match(_FPROP.get(type(layer).__name__, []), layer, inputs, None, [got],
                            [layer.fprop(inputs)]))


def diagnose_image_bprop(layer, inputs, grads_wrt_outputs, got) -> str:
    """What a wrong bprop of an image layer probably comes from, or ''."""
    if type(layer).__name__ not in _BPROP:
        return ''
    right = [layer.bprop(inputs, layer.fprop(inputs), grads_wrt_outputs)]
    return _first_match(_BPROP.get(type(layer).__name__, []), layer, inputs, grads_wrt_outputs, [got], right)


def diagnose_image_grads(layer, inputs, grads_wrt_outputs, got_arrays) -> str:
    """What wrong parameter gradients of an image layer probably come from, or ''."""
    if type(layer).__name__ not in _GRADS:
        return ''
    right = layer.grads_wrt_params(inputs, grads_wrt_outputs)
    return _first_match(_GRADS.get(type(layer).__name__, []), layer, inputs, grads_wrt_outputs,
                        list(got_arrays), right)
