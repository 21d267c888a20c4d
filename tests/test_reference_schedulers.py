"""Tests of mlp.schedulers: the learning rate of every epoch, restarts, resuming, bad arguments."""

import numpy as np
import pytest

from mlp.learning_rules import AdamLearningRule, GradientDescentLearningRule
from mlp.schedulers import ConstantLearningRateScheduler, CosineAnnealingWithWarmRestarts


def cosine(min_rate=0., max_rate=1., period=4, discount=1., expansion=1.):
    return CosineAnnealingWithWarmRestarts(
        min_learning_rate=min_rate, max_learning_rate=max_rate, total_iters_per_period=period,
        max_learning_rate_discount_factor=discount, period_iteration_expansion_factor=expansion)


def rates(scheduler, epochs, learning_rule=None):
    learning_rule = GradientDescentLearningRule() if learning_rule is None else learning_rule
    return np.array([scheduler.update_learning_rule(learning_rule, epoch) for epoch in epochs])


def expected_sgdr_rates(min_rate, max_rate, period, discount, expansion, num_epochs):
    """The SGDR schedule from its definition, vectorised (independent of the scheduler's search).

    Period i lasts T_i = T_0 m^i and starts at S_i = T_0 + ... + T_{i-1}; a period of
    non-integer length ends between two epochs, so the next one can start mid-way.
    """
    lengths = float(period) * float(expansion) ** np.arange(num_epochs + 1)
    starts = np.concatenate([[0.], np.cumsum(lengths)[:-1]])
    epochs = np.arange(num_epochs, dtype=float)
    index = np.searchsorted(starts, epochs, side='right') - 1
    tops = max_rate * discount ** index
    return min_rate + 0.5 * (tops - min_rate) * (
        1. + np.cos(np.pi * (epochs - starts[index]) / lengths[index]))


def test_constant_scheduler_sets_and_returns_the_rate_every_epoch():
    learning_rule = GradientDescentLearningRule(learning_rate=0.5)
    scheduler = ConstantLearningRateScheduler(0.02)
    for epoch in (0, 1, 7, 1000):
        assert scheduler.update_learning_rule(learning_rule, epoch) == 0.02
        assert learning_rule.learning_rate == 0.02


def test_cosine_first_period_by_hand():
    # Period 4 from 1 to 0: cos(0), cos(pi/4), cos(pi/2), cos(3pi/4) mapped to [0, 1].
    got = rates(cosine(), range(4))
    np.testing.assert_allclose(got, [1., (1. + 2. ** -0.5) / 2., 0.5, (1. - 2. ** -0.5) / 2.],
                               rtol=1e-12, atol=1e-15)


def test_cosine_restarts_at_the_maximum_after_each_period():
    got = rates(cosine(min_rate=0.1, max_rate=0.9, period=5), range(20))
    np.testing.assert_allclose(got[[0, 5, 10, 15]], 0.9, rtol=1e-12)
    np.testing.assert_allclose(got[:5], got[5:10], rtol=1e-12)


def test_cosine_is_decreasing_within_a_period_and_stays_between_min_and_max():
    got = rates(cosine(min_rate=1e-4, max_rate=1e-2, period=10), range(30))
    for start in (0, 10, 20):
        assert np.all(np.diff(got[start:start + 10]) < 0.)
    assert np.all((got > 1e-4) & (got <= 1e-2))


def test_cosine_discounts_the_maximum_at_every_restart():
    got = rates(cosine(min_rate=0., max_rate=1., period=3, discount=0.5), range(9))
    np.testing.assert_allclose(got[[0, 3, 6]], [1., 0.5, 0.25], rtol=1e-12)
    # Mid-period of the third period: halfway between its maximum 0.25 and the minimum 0.
    np.testing.assert_allclose(got[6:9] / 0.25, got[0:3], rtol=1e-12)


def test_cosine_expands_the_periods():
    # Periods of 2, 4, 8 epochs start at epochs 0, 2, 6.
    got = rates(cosine(min_rate=0., max_rate=1., period=2, discount=1., expansion=2.), range(14))
    restarts = [epoch for epoch in range(1, 14) if got[epoch] > got[epoch - 1]]
    assert restarts == [2, 6]
    np.testing.assert_allclose(got[[0, 2, 6]], 1., rtol=1e-12)
    np.testing.assert_allclose(got[[1, 4, 10]], 0.5, rtol=1e-12, atol=1e-15)  # period midpoints


@pytest.mark.parametrize('settings', [
    (1e-4, 1e-2, 100., 0.9, 1.),   # the course's coursework settings
    (0.01, 0.5, 7, 0.8, 1.5),       # periods of non-integer length
    (0., 0.1, 3, 1., 2.),
    (0.05, 0.05, 4, 1., 1.),        # min = max: constant
], ids=str)
def test_cosine_matches_the_sgdr_schedule_over_several_restarts(settings):
    num_epochs = 300
    got = rates(cosine(*settings), range(num_epochs))
    np.testing.assert_allclose(got, expected_sgdr_rates(*settings, num_epochs), rtol=1e-10,
                               atol=1e-15)


def test_cosine_rate_depends_on_the_epoch_alone():
    """A resumed run (or any call order) gets the same rate for an epoch as a full run."""
    in_order = rates(cosine(1e-4, 1e-2, 100., 0.9, 1.), range(3000))
    jumped = rates(cosine(1e-4, 1e-2, 100., 0.9, 1.), list(range(2000, 3000)) + list(range(1000)))
    np.testing.assert_array_equal(jumped, np.concatenate([in_order[2000:], in_order[:1000]]))


def test_cosine_sets_the_learning_rule_rate():
    learning_rule = AdamLearningRule()
    returned = cosine(min_rate=0.001, max_rate=0.1, period=10).update_learning_rule(
        learning_rule, epoch_number=5)
    assert learning_rule.learning_rate == returned
    assert returned == pytest.approx(0.001 + 0.5 * 0.099, rel=1e-12)


@pytest.mark.parametrize('settings, word', [
    ((0.2, 0.1, 10, 1., 1.), 'min_learning_rate'),
    ((-0.1, 0.1, 10, 1., 1.), 'min_learning_rate'),
    ((0., 0.1, 0, 1., 1.), 'total_iters_per_period'),
    ((0., 0.1, 10, 0., 1.), 'discount'),
    ((0., 0.1, 10, 1., 0.5), 'expansion'),
], ids=lambda value: str(value))
def test_cosine_rejects_bad_settings(settings, word):
    with pytest.raises(ValueError, match=word):
        cosine(*settings)


def test_cosine_rejects_negative_epochs():
    with pytest.raises(ValueError, match='epoch_number'):
        cosine().update_learning_rule(GradientDescentLearningRule(), -1)


def test_constant_scheduler_rejects_non_positive_rate():
    with pytest.raises(ValueError, match='learning_rate'):
        ConstantLearningRateScheduler(0.)


def test_reprs_name_the_schedulers():
    assert repr(ConstantLearningRateScheduler(0.1)) == (
        'ConstantLearningRateScheduler(learning_rate=0.1)')
    assert 'total_iters_per_period=4' in repr(cosine())
