"""Diagnoses of the image layers' common mistakes (autograder/checks/diagnose_image.py).

Each wrong answer below is computed the way a student's wrong code would compute it, written
out here independently of the diagnosis module's own formulas; the right answer (from the
reference) must get no diagnosis at all.
"""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from autograder.checks.diagnose_image import (diagnose_image_bprop, diagnose_image_fprop,
                                              diagnose_image_grads)
from mlp.layers import BatchNormalizationLayer, ConvolutionalLayer, MaxPooling2DLayer

RNG = np.random.RandomState(7)


def conv_layer():
    layer = ConvolutionalLayer(2, 3, 5, 6, 3, 2)
    layer.params = [RNG.normal(size=(3, 2, 3, 2)), RNG.normal(size=3)]
    return layer


def correlate(inputs, kernels, biases):
    """A student's 'convolution' that forgets to flip: four loops, no numpy tricks."""
    n, _, d1, d2 = inputs.shape
    f, _, k1, k2 = kernels.shape
    out = np.zeros((n, f, d1 - k1 + 1, d2 - k2 + 1))
    for a in range(n):
        for b in range(f):
            for i in range(d1 - k1 + 1):
                for j in range(d2 - k2 + 1):
                    out[a, b, i, j] = (inputs[a, :, i:i + k1, j:j + k2] * kernels[b]).sum() + biases[b]
    return out


def test_a_cross_correlation_is_recognised():
    layer, inputs = conv_layer(), RNG.normal(size=(2, 2, 5, 6))
    got = correlate(inputs, layer.kernels, layer.biases)
    assert 'cross-correlation' in diagnose_image_fprop(layer, inputs, got)
    assert diagnose_image_fprop(layer, inputs, layer.fprop(inputs)) == ''


def test_missing_biases_and_output_sizes_are_recognised():
    layer, inputs = conv_layer(), RNG.normal(size=(2, 2, 5, 6))
    right = layer.fprop(inputs)
    assert diagnose_image_fprop(layer, inputs, right - layer.biases[None, :, None, None]) == 'the biases are not added'
    assert 'swapped' in diagnose_image_fprop(layer, inputs, right.transpose(0, 1, 3, 2))
    assert 'padded' in diagnose_image_fprop(layer, inputs, np.zeros((2, 3, 5, 6)))
    assert 'one position short' in diagnose_image_fprop(layer, inputs, right[:, :, :-1, :-1])


def test_a_bprop_with_the_unflipped_kernel_is_recognised():
    layer, inputs = conv_layer(), RNG.normal(size=(2, 2, 5, 6))
    grads = RNG.normal(size=(2, 3, 3, 5))
    got = np.zeros(inputs.shape)
    for i in range(3):
        for j in range(5):
            got[:, :, i:i + 3, j:j + 2] += np.einsum('nf,fcpq->ncpq', grads[:, :, i, j], layer.kernels)
    assert diagnose_image_bprop(layer, inputs, grads, layer.bprop(inputs, None, grads)) == ''
    assert 'not flipped in bprop' in diagnose_image_bprop(layer, inputs, grads, got)


def test_parameter_gradient_slips_are_recognised():
    layer, inputs = conv_layer(), RNG.normal(size=(2, 2, 5, 6))
    grads = RNG.normal(size=(2, 3, 3, 5))
    windows = sliding_window_view(inputs, (3, 2), axis=(2, 3))
    unflipped = np.einsum('nfij,ncijpq->fcpq', grads, windows)   # forgot to flip the result back
    right = layer.grads_wrt_params(inputs, grads)
    assert diagnose_image_grads(layer, inputs, grads, right) == ''
    assert 'rotated' in diagnose_image_grads(layer, inputs, grads, [unflipped, grads.sum(axis=(0, 2, 3))])
    assert 'average' in diagnose_image_grads(layer, inputs, grads, [right[0], np.mean(grads, axis=(0, 2, 3))])


def test_pooling_gradients_sent_to_the_wrong_elements_are_recognised():
    layer = MaxPooling2DLayer(2)
    inputs, grads = RNG.normal(size=(2, 3, 4, 6)), RNG.normal(size=(2, 3, 2, 3))
    everywhere = np.kron(grads, np.ones((2, 2)))
    assert 'every element' in diagnose_image_bprop(layer, inputs, grads, everywhere)
    assert 'average pooling' in diagnose_image_bprop(layer, inputs, grads, everywhere / 4.)
    assert diagnose_image_bprop(layer, inputs, grads, layer.bprop(inputs, layer.fprop(inputs), grads)) == ''
    tied = np.array([[[[2., 0.], [2., 1.]]]])
    assert 'share the maximum' in diagnose_image_bprop(layer, tied, np.array([[[[3.]]]]), np.array([[[[3., 0.], [3., 0.]]]]))


def test_average_pooling_in_fprop_is_recognised():
    layer, inputs = MaxPooling2DLayer(2), RNG.normal(size=(1, 2, 4, 4))
    got = np.array([[[[inputs[0, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean() for j in range(2)]
                      for i in range(2)] for c in range(2)]])
    assert 'average pooling' in diagnose_image_fprop(layer, inputs, got)


@pytest.fixture
def bn():
    layer = BatchNormalizationLayer(4)
    layer.params = [np.array([1.5, -0.5, 2., 1.]), np.array([0.1, 0., -0.3, 0.2])]
    return layer


def test_batch_norm_statistics_slips_are_recognised(bn):
    inputs = RNG.normal(size=(6, 4))
    per_example = (inputs - inputs.mean(1)[:, None]) / np.sqrt(inputs.var(1)[:, None] + 1e-5)
    assert 'features (axis 1)' in diagnose_image_fprop(bn, inputs, bn.gamma * per_example + bn.beta)
    unbiased = (inputs - inputs.mean(0)) / np.sqrt(inputs.var(0, ddof=1) + 1e-5)
    assert 'N - 1' in diagnose_image_fprop(bn, inputs, bn.gamma * unbiased + bn.beta)
    assert diagnose_image_fprop(bn, inputs, bn.fprop(inputs)) == ''


def test_batch_norm_without_epsilon_is_recognised(bn):
    inputs = RNG.normal(size=(3, 4))
    inputs[:, 2] = 1.5
    with np.errstate(all='ignore'):
        got = bn.gamma * (inputs - inputs.mean(0)) / np.sqrt(inputs.var(0)) + bn.beta
    assert 'epsilon' in diagnose_image_fprop(bn, inputs, got)


def test_batch_norm_bprop_with_constant_statistics_is_recognised(bn):
    inputs, grads = RNG.normal(size=(5, 4)), RNG.normal(size=(5, 4))
    got = grads * bn.gamma / np.sqrt(inputs.var(0) + bn.epsilon)
    assert 'treated as constants' in diagnose_image_bprop(bn, inputs, grads, got)
    assert diagnose_image_bprop(bn, inputs, grads, bn.bprop(inputs, None, grads)) == ''
