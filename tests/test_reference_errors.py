"""Tests of mlp.errors: values, finite-difference gradients, numerical stability."""

import numpy as np
import pytest

from mlp import checks
from mlp import errors

BATCH_SHAPES = [(1, 3), (4, 5), (6, 2)]


def one_of_k(rng, shape):
    targets = np.zeros(shape)
    targets[np.arange(shape[0]), rng.randint(shape[1], size=shape[0])] = 1.
    return targets


def probabilities(rng, shape):
    logits = rng.normal(size=shape)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def binary_targets(rng, shape):
    return (rng.uniform(size=shape) < 0.5).astype(float)


# name -> (error, outputs sampler, targets sampler); outputs lie in each error's domain.
ERRORS = {
    'SumOfSquaredDiffsError': (errors.SumOfSquaredDiffsError(),
                               lambda rng, shape: rng.normal(size=shape),
                               lambda rng, shape: rng.normal(size=shape)),
    'CrossEntropyError': (errors.CrossEntropyError(), probabilities, one_of_k),
    'CrossEntropySoftmaxError': (errors.CrossEntropySoftmaxError(),
                                 lambda rng, shape: 3. * rng.normal(size=shape), one_of_k),
    'BinaryCrossEntropyError': (errors.BinaryCrossEntropyError(),
                                lambda rng, shape: rng.uniform(0.05, 0.95, size=shape),
                                binary_targets),
    'BinaryCrossEntropySigmoidError': (errors.BinaryCrossEntropySigmoidError(),
                                       lambda rng, shape: 3. * rng.normal(size=shape),
                                       binary_targets),
}


@pytest.mark.parametrize('shape', BATCH_SHAPES, ids=str)
@pytest.mark.parametrize('name', sorted(ERRORS))
def test_grad_matches_finite_differences(name, shape, rng):
    error, sample_outputs, sample_targets = ERRORS[name]
    outputs, targets = sample_outputs(rng, shape), sample_targets(rng, shape)
    estimate = checks.numerical_gradient(lambda y: error(y, targets), outputs, np.array(1.))
    got = error.grad(outputs, targets)
    assert got.shape == outputs.shape
    comparison = checks.compare_arrays(got, estimate, name + '.grad', checks.GRADCHECK_RTOL,
                                       checks.GRADCHECK_ATOL)
    assert comparison.ok, comparison.message


@pytest.mark.parametrize('name', sorted(ERRORS))
def test_error_is_a_scalar_batch_mean(name, rng):
    error, sample_outputs, sample_targets = ERRORS[name]
    outputs, targets = sample_outputs(rng, (6, 4)), sample_targets(rng, (6, 4))
    value = error(outputs, targets)
    assert np.ndim(value) == 0
    per_example = [error(outputs[i:i + 1], targets[i:i + 1]) for i in range(6)]
    np.testing.assert_allclose(value, np.mean(per_example), rtol=1e-12)


def test_sum_of_squared_diffs_value():
    outputs = np.array([[1., 2.], [0., 0.]])
    targets = np.array([[0., 0.], [0., 3.]])
    # Per example: 0.5 * (1 + 4) = 2.5 and 0.5 * 9 = 4.5; mean 3.5.
    assert errors.SumOfSquaredDiffsError()(outputs, targets) == pytest.approx(3.5)


def test_cross_entropy_value():
    outputs = np.array([[0.2, 0.8], [0.5, 0.5]])
    targets = np.array([[0., 1.], [1., 0.]])
    expected = -(np.log(0.8) + np.log(0.5)) / 2.
    assert errors.CrossEntropyError()(outputs, targets) == pytest.approx(expected)


def test_cross_entropy_softmax_equals_cross_entropy_of_softmax(rng):
    logits = rng.normal(size=(5, 4))
    targets = one_of_k(rng, (5, 4))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(errors.CrossEntropySoftmaxError()(logits, targets),
                               errors.CrossEntropyError()(probs, targets), rtol=1e-12)
    np.testing.assert_allclose(errors.CrossEntropySoftmaxError().grad(logits, targets),
                               (probs - targets) / 5., rtol=1e-12, atol=1e-15)


def test_binary_cross_entropy_sigmoid_equals_binary_cross_entropy_of_sigmoid(rng):
    logits = rng.normal(size=(5, 3))
    targets = binary_targets(rng, (5, 3))
    probs = 1. / (1. + np.exp(-logits))
    np.testing.assert_allclose(errors.BinaryCrossEntropySigmoidError()(logits, targets),
                               errors.BinaryCrossEntropyError()(probs, targets), rtol=1e-12)
    np.testing.assert_allclose(errors.BinaryCrossEntropySigmoidError().grad(logits, targets),
                               (probs - targets) / 5., rtol=1e-10, atol=1e-15)


def test_reprs():
    for name, (error, _, _) in ERRORS.items():
        assert repr(error) == name


# Numerical stability: magnitude-1e3 logits for the errors that take logits, and
# probabilities at the edge of (0, 1) for those that take probabilities.

@pytest.mark.parametrize('name', ['SumOfSquaredDiffsError', 'CrossEntropySoftmaxError',
                                  'BinaryCrossEntropySigmoidError'])
def test_errors_on_large_logits_are_finite(name, rng, strict_floats):
    error, _, sample_targets = ERRORS[name]
    outputs = rng.choice([-1e3, 1e3], size=(4, 5)) * rng.uniform(0.5, 1., size=(4, 5))
    targets = sample_targets(rng, (4, 5))
    with strict_floats():
        value = error(outputs, targets)
        grad = error.grad(outputs, targets)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


def test_cross_entropy_softmax_of_large_logits_is_exact(strict_floats):
    error = errors.CrossEntropySoftmaxError()
    outputs = np.array([[1000., 1000., -1000.], [1000., -1000., 0.]])
    targets = np.array([[1., 0., 0.], [0., 1., 0.]])
    with strict_floats():
        value = error(outputs, targets)
        grad = error.grad(outputs, targets)
    np.testing.assert_allclose(value, (np.log(2.) + 2000.) / 2., rtol=1e-12)
    np.testing.assert_allclose(grad, [[-0.25, 0.25, 0.], [0.5, -0.5, 0.]], atol=1e-15)


def test_binary_cross_entropy_sigmoid_of_large_logits_is_exact(strict_floats):
    error = errors.BinaryCrossEntropySigmoidError()
    outputs = np.array([[1000., -1000.]])
    with strict_floats():
        assert error(outputs, np.array([[1., 0.]])) == 0.
        assert error(outputs, np.array([[0., 1.]])) == pytest.approx(2000.)
        np.testing.assert_array_equal(error.grad(outputs, np.array([[0., 1.]])), [[1., -1.]])


@pytest.mark.parametrize('name', ['CrossEntropyError', 'BinaryCrossEntropyError'])
def test_errors_on_extreme_probabilities_are_finite(name, rng, strict_floats):
    error, _, sample_targets = ERRORS[name]
    outputs = np.where(rng.uniform(size=(4, 5)) < 0.5, 1e-12, 1. - 1e-12)
    targets = sample_targets(rng, (4, 5))
    with strict_floats():
        value = error(outputs, targets)
        grad = error.grad(outputs, targets)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
