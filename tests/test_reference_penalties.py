"""Tests of mlp.penalties: values, central-difference gradients, shapes, bad coefficients."""

import numpy as np
import pytest

from mlp.penalties import L1Penalty, L2Penalty

STEP = 1e-6

# A hand-checked case: sum |w| = 1 + 2 + 0.5 + 0 = 3.5 and sum w^2 = 1 + 4 + 0.25 + 0 = 5.25.
HAND_PARAMETER = np.array([[1., -2.], [0.5, 0.]])


def central_difference_gradient(function, parameter, step=STEP):
    """Estimates d function / d parameter element by element: (f(w + h e_i) - f(w - h e_i)) / 2h.

    Written here, apart from the code under test, so that the check is independent.
    """
    estimate = np.zeros_like(parameter)
    for index in np.ndindex(*parameter.shape):
        plus, minus = parameter.copy(), parameter.copy()
        plus[index] += step
        minus[index] -= step
        estimate[index] = (function(plus) - function(minus)) / (2. * step)
    return estimate


def away_from_zero(rng, shape):
    """Values with |w| in [0.1, 2) and random signs: |w| is smooth there."""
    return rng.choice([-1., 1.], size=shape) * rng.uniform(0.1, 2., size=shape)


def test_l1_value_on_hand_checked_case():
    assert L1Penalty(0.1)(HAND_PARAMETER) == pytest.approx(0.35, rel=1e-12)


def test_l2_value_on_hand_checked_case():
    assert L2Penalty(0.1)(HAND_PARAMETER) == pytest.approx(0.2625, rel=1e-12)


def test_gradients_on_hand_checked_case():
    np.testing.assert_allclose(L1Penalty(0.1).grad(HAND_PARAMETER),
                               [[0.1, -0.1], [0.1, 0.]], rtol=1e-12)
    np.testing.assert_allclose(L2Penalty(0.1).grad(HAND_PARAMETER),
                               [[0.1, -0.2], [0.05, 0.]], rtol=1e-12)


@pytest.mark.parametrize('shape', [(5,), (3, 4), (2, 3, 2, 2)], ids=str)
@pytest.mark.parametrize('penalty_type', [L1Penalty, L2Penalty], ids=lambda t: t.__name__)
def test_grad_matches_central_differences(penalty_type, shape, rng):
    penalty = penalty_type(0.3)
    parameter = away_from_zero(rng, shape)
    grad = penalty.grad(parameter)
    assert grad.shape == parameter.shape
    np.testing.assert_allclose(grad, central_difference_gradient(penalty, parameter),
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize('penalty_type', [L1Penalty, L2Penalty], ids=lambda t: t.__name__)
def test_value_is_a_scalar_proportional_to_the_coefficient(penalty_type, rng):
    parameter = rng.normal(size=(4, 3))
    small, large = penalty_type(0.01)(parameter), penalty_type(0.04)(parameter)
    assert np.ndim(small) == 0
    assert large == pytest.approx(4. * small, rel=1e-12)
    assert small > 0.


@pytest.mark.parametrize('penalty_type', [L1Penalty, L2Penalty], ids=lambda t: t.__name__)
def test_parameter_is_not_modified(penalty_type, rng):
    parameter = rng.normal(size=(3, 3))
    original = parameter.copy()
    penalty = penalty_type(0.5)
    penalty(parameter)
    penalty.grad(parameter)
    np.testing.assert_array_equal(parameter, original)


def test_zero_parameter_has_zero_penalty_and_gradient():
    zeros = np.zeros((2, 3))
    for penalty in (L1Penalty(1.), L2Penalty(1.)):
        assert penalty(zeros) == 0.
        np.testing.assert_array_equal(penalty.grad(zeros), zeros)


def test_l1_gradient_does_not_grow_with_the_parameter_but_l2_does():
    parameter = np.array([0.5, 5., -50.])
    np.testing.assert_allclose(L1Penalty(2.).grad(parameter), [2., 2., -2.])
    np.testing.assert_allclose(L2Penalty(2.).grad(parameter), [1., 10., -100.])


@pytest.mark.parametrize('coefficient', [0., -0.1, float('nan'), 'strong', None])
@pytest.mark.parametrize('penalty_type', [L1Penalty, L2Penalty], ids=lambda t: t.__name__)
def test_bad_coefficient_is_a_clear_value_error(penalty_type, coefficient):
    with pytest.raises(ValueError, match='coefficient'):
        penalty_type(coefficient)


def test_reprs_name_penalty_and_coefficient():
    assert repr(L1Penalty(0.001)) == 'L1Penalty(0.001)'
    assert repr(L2Penalty(0.25)) == 'L2Penalty(0.25)'
