"""Tests of mlp.data_providers: batching, shuffling, one-of-k targets, MNIST lookup."""

import pathlib

import numpy as np
import pytest

from mlp import data_providers as dp


def toy_data(num_data=23, input_dim=3):
    """Inputs whose first column is the example's index, and matching targets."""
    inputs = np.tile(np.arange(num_data, dtype=float)[:, None], (1, input_dim))
    targets = np.arange(num_data) % 4
    return inputs, targets


def collect_epoch(provider):
    return [(inputs.copy(), targets.copy()) for inputs, targets in provider]


def test_batches_in_order_without_shuffling():
    inputs, targets = toy_data(23)
    provider = dp.DataProvider(inputs, targets, batch_size=5, shuffle_order=False)
    batches = collect_epoch(provider)
    assert provider.num_batches == 4 and len(batches) == 4
    for i, (inputs_batch, targets_batch) in enumerate(batches):
        assert inputs_batch.shape == (5, 3) and targets_batch.shape == (5,)
        np.testing.assert_array_equal(inputs_batch[:, 0], np.arange(5 * i, 5 * i + 5))
        np.testing.assert_array_equal(targets_batch, np.arange(5 * i, 5 * i + 5) % 4)


def test_partial_final_batch_is_dropped():
    inputs, targets = toy_data(23)
    provider = dp.DataProvider(inputs, targets, batch_size=5, shuffle_order=False)
    seen = np.concatenate([batch[:, 0] for batch, _ in collect_epoch(provider)])
    np.testing.assert_array_equal(seen, np.arange(20))


def test_iteration_restarts_for_the_next_epoch():
    inputs, targets = toy_data(12)
    provider = dp.DataProvider(inputs, targets, batch_size=4, shuffle_order=False)
    first, second = collect_epoch(provider), collect_epoch(provider)
    assert len(first) == len(second) == 3
    for (a, _), (b, _) in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_next_alias_and_stop_iteration():
    inputs, targets = toy_data(8)
    provider = dp.DataProvider(inputs, targets, batch_size=4, shuffle_order=False)
    assert provider.next()[0][0, 0] == 0.
    assert next(provider)[0][0, 0] == 4.
    with pytest.raises(StopIteration):
        next(provider)
    assert iter(provider) is provider


@pytest.mark.parametrize('max_num_batches, expected', [(-1, 4), (1, 1), (3, 3), (10, 4)])
def test_max_num_batches(max_num_batches, expected):
    inputs, targets = toy_data(23)
    provider = dp.DataProvider(inputs, targets, 5, max_num_batches=max_num_batches)
    assert provider.num_batches == expected
    assert len(collect_epoch(provider)) == expected
    assert provider.max_num_batches == max_num_batches


def test_batch_size_setter_updates_num_batches():
    inputs, targets = toy_data(23)
    provider = dp.DataProvider(inputs, targets, 5, shuffle_order=False)
    provider.batch_size = 7
    assert provider.batch_size == 7 and provider.num_batches == 3
    batches = collect_epoch(provider)
    assert [b.shape[0] for b, _ in batches] == [7, 7, 7]
    provider.max_num_batches = 2
    assert provider.num_batches == 2


@pytest.mark.parametrize('kwargs', [
    {'batch_size': 0}, {'batch_size': -3}, {'batch_size': 2.5},
    {'batch_size': 5, 'max_num_batches': 0}, {'batch_size': 5, 'max_num_batches': -2},
], ids=str)
def test_bad_arguments_raise_value_error(kwargs):
    inputs, targets = toy_data(10)
    with pytest.raises(ValueError):
        dp.DataProvider(inputs, targets, **kwargs)


def test_bad_setter_values_raise_value_error():
    inputs, targets = toy_data(10)
    provider = dp.DataProvider(inputs, targets, 2)
    with pytest.raises(ValueError):
        provider.batch_size = 0
    with pytest.raises(ValueError):
        provider.max_num_batches = 0
    assert provider.batch_size == 2 and provider.max_num_batches == -1


def test_mismatched_lengths_raise_value_error():
    inputs, targets = toy_data(10)
    with pytest.raises(ValueError, match='same number of examples'):
        dp.DataProvider(inputs, targets[:-1], 2)


def test_shuffle_uses_injected_rng_reproducibly():
    inputs, targets = toy_data(30)
    np.random.seed(5)
    global_state = np.random.get_state()
    first = dp.DataProvider(inputs, targets, 10, rng=np.random.RandomState(11))
    second = dp.DataProvider(inputs, targets, 10, rng=np.random.RandomState(11))
    other = dp.DataProvider(inputs, targets, 10, rng=np.random.RandomState(12))
    for _ in range(2):  # Two epochs: reshuffled between them, identically.
        a, b, c = collect_epoch(first), collect_epoch(second), collect_epoch(other)
        for (x, t), (y, u) in zip(a, b):
            np.testing.assert_array_equal(x, y)
            np.testing.assert_array_equal(t, u)
        assert not all(np.array_equal(x, z) for (x, _), (z, _) in zip(a, c))
    np.testing.assert_array_equal(np.random.get_state()[1], global_state[1])


def test_shuffle_keeps_inputs_and_targets_paired_and_is_a_permutation():
    inputs, targets = toy_data(40)
    provider = dp.DataProvider(inputs, targets, 40, rng=np.random.RandomState(1))
    (inputs_batch, targets_batch), = collect_epoch(provider)
    np.testing.assert_array_equal(targets_batch, inputs_batch[:, 0].astype(int) % 4)
    np.testing.assert_array_equal(np.sort(inputs_batch[:, 0]), np.arange(40))
    assert not np.array_equal(inputs_batch[:, 0], np.arange(40))


def test_epochs_are_reshuffled():
    inputs, targets = toy_data(40)
    provider = dp.DataProvider(inputs, targets, 40, rng=np.random.RandomState(1))
    (first, _), = collect_epoch(provider)
    (second, _), = collect_epoch(provider)
    assert not np.array_equal(first, second)


def test_reset_restores_original_order():
    inputs, targets = toy_data(30)
    provider = dp.DataProvider(inputs, targets, 10, shuffle_order=True,
                               rng=np.random.RandomState(3))
    collect_epoch(provider)
    provider.shuffle_order = False
    provider.reset()
    batches = collect_epoch(provider)
    np.testing.assert_array_equal(np.concatenate([b[:, 0] for b, _ in batches]), np.arange(30))
    np.testing.assert_array_equal(np.concatenate([t for _, t in batches]), np.arange(30) % 4)


def test_reset_then_reseed_reproduces_a_fresh_provider():
    """The seed notebooks' idiom: rng.seed(s); provider.reset() gives a known order."""
    inputs, targets = toy_data(30)
    rng = np.random.RandomState(8)
    provider = dp.DataProvider(inputs, targets, 10, rng=rng)
    collect_epoch(provider)
    collect_epoch(provider)
    rng.seed(8)
    provider.reset()
    fresh = dp.DataProvider(inputs, targets, 10, rng=np.random.RandomState(8))
    # The fresh provider shuffled once on construction; so did reset.
    for (x, _), (y, _) in zip(collect_epoch(provider), collect_epoch(fresh)):
        np.testing.assert_array_equal(x, y)


class WholeCopyProvider:
    """The course's provider as it was first written: each shuffle copies the whole arrays."""

    def __init__(self, inputs, targets, batch_size, rng):
        self.inputs, self.targets, self.batch_size, self.rng = inputs, targets, batch_size, rng
        self.shuffle()

    def shuffle(self):
        perm = self.rng.permutation(self.inputs.shape[0])
        self.inputs, self.targets = self.inputs[perm], self.targets[perm]

    def epoch(self):
        batches = [(self.inputs[k:k + self.batch_size], self.targets[k:k + self.batch_size])
                   for k in range(0, self.inputs.shape[0] - self.batch_size + 1, self.batch_size)]
        self.shuffle()
        return batches


def test_batches_and_whole_arrays_match_a_provider_that_copies_on_every_shuffle():
    inputs, targets = toy_data(37)
    provider = dp.DataProvider(inputs, targets, 5, rng=np.random.RandomState(4))
    copying = WholeCopyProvider(inputs, targets, 5, np.random.RandomState(4))
    for epoch in range(4):
        if epoch == 2:  # reading the whole arrays mid-run changes nothing
            np.testing.assert_array_equal(provider.inputs, copying.inputs)
            np.testing.assert_array_equal(provider.targets, copying.targets)
        for (x, t), (y, u) in zip(collect_epoch(provider), copying.epoch(), strict=True):
            np.testing.assert_array_equal(x, y)
            np.testing.assert_array_equal(t, u)


def test_read_only_data_is_served_and_never_written():
    inputs, targets = toy_data(20)
    inputs.flags.writeable = False
    targets.flags.writeable = False
    provider = dp.DataProvider(inputs, targets, 4, rng=np.random.RandomState(2))
    for inputs_batch, _ in provider:
        inputs_batch *= -1  # a careless layer writing into its batch
    np.testing.assert_array_equal(inputs, toy_data(20)[0])
    np.testing.assert_array_equal(np.sort(provider.inputs[:, 0]), np.arange(20))


def test_setting_the_arrays_takes_them_in_the_current_order():
    inputs, targets = toy_data(12)
    provider = dp.DataProvider(inputs, targets, 12, rng=np.random.RandomState(6))
    shuffled = provider.inputs.copy()
    provider.inputs = shuffled * 10
    (batch, batch_targets), = collect_epoch(provider)
    np.testing.assert_array_equal(batch, shuffled * 10)
    np.testing.assert_array_equal(batch_targets, shuffled[:, 0].astype(int) % 4)  # still paired
    provider.shuffle_order = False
    provider.reset()
    np.testing.assert_array_equal(provider.inputs[:, 0], np.arange(12) * 10)


def test_default_rng_does_not_touch_global_state():
    inputs, targets = toy_data(10)
    before = np.random.get_state()
    collect_epoch(dp.DataProvider(inputs, targets, 2))
    np.testing.assert_array_equal(np.random.get_state()[1], before[1])


# OneOfKDataProvider.

def test_one_of_k_targets():
    inputs, targets = toy_data(12)
    provider = dp.OneOfKDataProvider(inputs, targets, 4, shuffle_order=False)
    assert provider.num_classes == 4
    for inputs_batch, targets_batch in provider:
        assert targets_batch.shape == (4, 4) and targets_batch.dtype == float
        np.testing.assert_array_equal(targets_batch.sum(axis=1), 1.)
        np.testing.assert_array_equal(targets_batch.argmax(axis=1), inputs_batch[:, 0] % 4)


def test_one_of_k_with_explicit_num_classes():
    inputs, targets = toy_data(8)
    provider = dp.OneOfKDataProvider(inputs, targets, 8, num_classes=7, shuffle_order=False)
    _, targets_batch = provider.next()
    assert targets_batch.shape == (8, 7)
    np.testing.assert_array_equal(provider.to_one_of_k(np.array([2, 0])),
                                  [[0, 0, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0]])


# MNISTDataProvider and data-directory lookup.

def test_mnist_shapes_and_types(mnist_dir):
    train = dp.MNISTDataProvider('train', rng=np.random.RandomState(0), data_dir=mnist_dir)
    assert train.inputs.shape == (50000, 784) and train.inputs.dtype == np.float32
    assert train.num_batches == 500 and train.num_classes == 10
    assert train.inputs.min() >= 0. and train.inputs.max() <= 1.
    inputs_batch, targets_batch = train.next()
    assert inputs_batch.shape == (100, 784)
    assert targets_batch.shape == (100, 10) and targets_batch.dtype == np.float64
    assert set(np.unique(targets_batch)) == {0., 1.}
    np.testing.assert_array_equal(targets_batch.sum(axis=1), 1.)
    assert repr(train) == "MNISTDataProvider(which_set='train', batch_size=100)"
    for which_set in ('valid', 'test'):
        provider = dp.MNISTDataProvider(which_set, batch_size=50, data_dir=mnist_dir)
        assert provider.inputs.shape == (10000, 784) and provider.num_batches == 200


def test_mnist_rejects_unknown_set(tmp_path):
    with pytest.raises(ValueError, match='which_set'):
        dp.MNISTDataProvider('training', data_dir=tmp_path)


def write_fake_mnist(directory, num_data):
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(num_data)
    np.savez(directory / 'mnist-train.npz',
             inputs=rng.uniform(size=(num_data, 784)).astype(np.float32),
             targets=np.arange(num_data) % 10)


@pytest.fixture
def isolated_env(monkeypatch, tmp_path):
    """No MLP_DATA_DIR and a cache root inside tmp_path."""
    monkeypatch.delenv('MLP_DATA_DIR', raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    return tmp_path


def test_missing_data_names_the_fetch_command(isolated_env):
    with pytest.raises(FileNotFoundError, match='mlp-autograde data fetch') as raised:
        dp.MNISTDataProvider('valid')
    assert str(isolated_env / 'cache' / 'mlp' / 'mnist' / 'mnist-valid.npz') in str(raised.value)


def test_missing_explicit_dir_raises_file_not_found(isolated_env):
    with pytest.raises(FileNotFoundError, match='mlp-autograde data fetch'):
        dp.MNISTDataProvider('train', data_dir=isolated_env / 'nowhere')


def test_lookup_order(isolated_env, monkeypatch):
    explicit, from_env = isolated_env / 'explicit', isolated_env / 'env'
    cache = isolated_env / 'cache' / 'mlp' / 'mnist'
    write_fake_mnist(explicit, 30)
    write_fake_mnist(from_env, 40)
    write_fake_mnist(cache, 50)
    assert dp.user_cache_dir() == cache
    # The user cache when nothing else is given.
    assert dp.MNISTDataProvider('train', batch_size=10).inputs.shape[0] == 50
    # $MLP_DATA_DIR beats the cache.
    monkeypatch.setenv('MLP_DATA_DIR', str(from_env))
    assert dp.MNISTDataProvider('train', batch_size=10).inputs.shape[0] == 40
    # An explicit data_dir beats both.
    provider = dp.MNISTDataProvider('train', batch_size=10, data_dir=explicit)
    assert provider.inputs.shape[0] == 30
    assert dp.resolve_data_dir(str(explicit)) == explicit
    assert dp.resolve_data_dir() == from_env


def test_user_cache_dir_defaults_to_home_cache(monkeypatch, tmp_path):
    monkeypatch.delenv('XDG_CACHE_HOME', raising=False)
    monkeypatch.setenv('HOME', str(tmp_path))
    assert dp.user_cache_dir() == pathlib.Path(tmp_path) / '.cache' / 'mlp' / 'mnist'
