"""Tests of mlp.initialisers: shapes, ranges and statistics, reproducibility, RNG use."""

import numpy as np
import pytest

from mlp import initialisers as init

WEIGHT_SHAPE = (300, 500)  # (output_dim, input_dim): fan_in 500, fan_out 300.


def make_all(seed):
    """One of every initialiser; the random ones share a RandomState seeded with `seed`."""
    rng = np.random.RandomState(seed)
    return {
        'ConstantInit': init.ConstantInit(0.5),
        'UniformInit': init.UniformInit(-0.2, 0.3, rng=rng),
        'NormalInit': init.NormalInit(1., 2., rng=rng),
        'GlorotUniformInit': init.GlorotUniformInit(gain=1.5, rng=rng),
        'GlorotNormalInit': init.GlorotNormalInit(gain=0.5, rng=rng),
    }


@pytest.mark.parametrize('name', sorted(make_all(0)))
@pytest.mark.parametrize('shape', [(3, 4), (10, 2), (2, 3, 5)], ids=str)
def test_shapes(name, shape):
    values = make_all(0)[name](shape)
    assert values.shape == shape
    assert values.dtype == np.float64


@pytest.mark.parametrize('name', ['ConstantInit', 'UniformInit', 'NormalInit'])
def test_one_dimensional_shapes_for_biases(name):
    assert make_all(0)[name](7).shape == (7,)


def test_constant_init_values():
    np.testing.assert_array_equal(init.ConstantInit(-1.5)((2, 3)), np.full((2, 3), -1.5))


def test_uniform_init_range_and_statistics():
    values = init.UniformInit(-0.2, 0.3, rng=np.random.RandomState(1))(WEIGHT_SHAPE)
    assert values.min() >= -0.2 and values.max() < 0.3
    assert values.min() < -0.199 and values.max() > 0.299
    # 150,000 draws: standard error of the mean ~ 0.5 / sqrt(12 * 150000) ~ 4e-4.
    assert values.mean() == pytest.approx(0.05, abs=3e-3)
    assert values.std() == pytest.approx(0.5 / np.sqrt(12.), rel=1e-2)


def test_normal_init_statistics():
    values = init.NormalInit(1., 2., rng=np.random.RandomState(2))(WEIGHT_SHAPE)
    assert values.mean() == pytest.approx(1., abs=0.02)
    assert values.std() == pytest.approx(2., rel=1e-2)


@pytest.mark.parametrize('gain', [1., 2.])
def test_glorot_uniform_bound(gain):
    values = init.GlorotUniformInit(gain=gain, rng=np.random.RandomState(3))(WEIGHT_SHAPE)
    bound = gain * np.sqrt(6. / (500 + 300))
    assert np.all(np.abs(values) <= bound)
    assert values.max() > 0.999 * bound and values.min() < -0.999 * bound
    assert values.std() == pytest.approx(bound / np.sqrt(3.), rel=1e-2)


def test_glorot_uniform_bound_with_receptive_field():
    # Shape (output_dim, input_dim, 5): trailing axes multiply both fans by 5.
    values = init.GlorotUniformInit(rng=np.random.RandomState(4))((4, 6, 5))
    bound = np.sqrt(6. / (6 * 5 + 4 * 5))
    assert np.all(np.abs(values) <= bound) and np.abs(values).max() > 0.9 * bound


@pytest.mark.parametrize('gain', [1., 0.5])
def test_glorot_normal_std(gain):
    values = init.GlorotNormalInit(gain=gain, rng=np.random.RandomState(5))(WEIGHT_SHAPE)
    assert values.mean() == pytest.approx(0., abs=0.02 * gain * np.sqrt(2. / 800.))
    assert values.std() == pytest.approx(gain * np.sqrt(2. / 800.), rel=1e-2)


@pytest.mark.parametrize('initialiser', [init.GlorotUniformInit, init.GlorotNormalInit])
def test_glorot_rejects_one_dimensional_shapes(initialiser):
    with pytest.raises(ValueError, match='at least two axes'):
        initialiser()((5,))


@pytest.mark.parametrize('name', sorted(make_all(0)))
def test_same_seed_gives_same_values(name):
    first = make_all(42)[name]((6, 7))
    second = make_all(42)[name]((6, 7))
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize('name', ['UniformInit', 'NormalInit', 'GlorotUniformInit',
                                  'GlorotNormalInit'])
def test_different_seeds_or_calls_give_different_values(name):
    initialiser = make_all(42)[name]
    first, second = initialiser((6, 7)), initialiser((6, 7))
    assert not np.array_equal(first, second)
    assert not np.array_equal(make_all(43)[name]((6, 7)), make_all(42)[name]((6, 7)))


def test_reseeding_the_injected_rng_reproduces_values():
    rng = np.random.RandomState(7)
    initialiser = init.UniformInit(-1., 1., rng=rng)
    first = initialiser((3, 3))
    rng.seed(7)
    np.testing.assert_array_equal(initialiser((3, 3)), first)


def test_no_global_rng_use():
    np.random.seed(99)
    before = np.random.get_state()
    for with_rng in (True, False):
        rng = np.random.RandomState(0) if with_rng else None
        for initialiser in [init.UniformInit(0., 1., rng=rng), init.NormalInit(0., 1., rng=rng),
                            init.GlorotUniformInit(rng=rng), init.GlorotNormalInit(rng=rng),
                            init.ConstantInit(1.)]:
            initialiser((4, 5))
    after = np.random.get_state()
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2:] == after[2:]


def test_default_rng_is_fixed_seed():
    np.testing.assert_array_equal(init.UniformInit(0., 1.)((3, 3)), init.UniformInit(0., 1.)((3, 3)))
