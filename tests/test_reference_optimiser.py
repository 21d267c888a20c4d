"""Tests of mlp.optimisers: training statistics, logging format, progress bar switch."""

import logging
import re
import sys

import numpy as np
import pytest

from mlp import optimisers
from mlp.data_providers import OneOfKDataProvider
from mlp.errors import CrossEntropySoftmaxError
from mlp.initialisers import UniformInit
from mlp.layers import AffineLayer
from mlp.learning_rules import GradientDescentLearningRule
from mlp.models import SingleLayerModel

LOGGER_NAME = 'mlp.optimisers'
NUMBER = r'\d\.\d{2}e[+-]\d{2}'
STATS_LOG = re.compile(
    r'^Epoch (\d+): \d+\.\ds to complete\n'
    r' error\(train\)=' + NUMBER + r', acc\(train\)=' + NUMBER +
    r', error\(valid\)=' + NUMBER + r', acc\(valid\)=' + NUMBER + r'$')


def accuracy(outputs, targets):
    return (outputs.argmax(-1) == targets.argmax(-1)).mean()


def make_optimiser(seed=0, **kwargs):
    """A softmax regression on a small separable 3-class problem."""
    rng = np.random.RandomState(seed)
    centres = rng.normal(scale=3., size=(3, 4))
    labels = rng.randint(3, size=90)
    inputs = centres[labels] + rng.normal(size=(90, 4))
    train = OneOfKDataProvider(inputs[:60], labels[:60], 10, rng=rng)
    valid = OneOfKDataProvider(inputs[60:], labels[60:], 10, rng=rng)
    init = UniformInit(-0.1, 0.1, rng=rng)
    model = SingleLayerModel(AffineLayer(4, 3, init, init))
    return optimisers.Optimiser(
        model, CrossEntropySoftmaxError(), GradientDescentLearningRule(0.1), train, valid,
        data_monitors={'acc': accuracy}, **kwargs)


def test_train_returns_stats_keys_and_time():
    optimiser = make_optimiser(use_progress_bar=False)
    stats, keys, run_time = optimiser.train(num_epochs=6, stats_interval=2)
    assert stats.shape == (4, 4)
    assert keys == {'error(train)': 0, 'acc(train)': 1, 'error(valid)': 2, 'acc(valid)': 3}
    assert run_time >= 0.
    # Training on a separable problem lowers the error and raises accuracy.
    assert stats[-1, keys['error(train)']] < stats[0, keys['error(train)']]
    assert stats[-1, keys['acc(valid)']] >= stats[0, keys['acc(valid)']]


def test_row_zero_is_measured_before_training():
    optimiser = make_optimiser(use_progress_bar=False)
    model, valid = optimiser.model, optimiser.valid_dataset
    error = CrossEntropySoftmaxError()
    expected = np.mean([error(model.fprop(x)[-1], t) for x, t in valid])
    stats, keys, _ = optimiser.train(num_epochs=1, stats_interval=1)
    assert stats[0, keys['error(valid)']] == pytest.approx(expected, rel=1e-12)
    assert stats[1, keys['error(valid)']] != pytest.approx(expected, rel=1e-6)


def test_num_epochs_below_stats_interval_gives_only_the_initial_row(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    optimiser = make_optimiser(use_progress_bar=False)
    weights_before = optimiser.model.params[0].copy()
    stats, keys, _ = optimiser.train(num_epochs=3, stats_interval=5)
    assert stats.shape == (1, 4) and len(keys) == 4
    assert not np.array_equal(optimiser.model.params[0], weights_before)  # It did train.
    assert caplog.records == []


def test_without_validation_set_only_train_keys():
    optimiser = make_optimiser(use_progress_bar=False)
    optimiser.valid_dataset = None
    stats, keys, _ = optimiser.train(num_epochs=2, stats_interval=1)
    assert keys == {'error(train)': 0, 'acc(train)': 1} and stats.shape == (3, 2)


def test_log_lines_format(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    stats, keys, _ = make_optimiser(use_progress_bar=False).train(num_epochs=10, stats_interval=5)
    messages = [record.getMessage() for record in caplog.records if record.name == LOGGER_NAME]
    assert len(messages) == 2
    for epoch, (message, row) in zip((5, 10), zip(messages, stats[1:])):
        match = STATS_LOG.match(message)
        assert match, message
        assert int(match.group(1)) == epoch
        # The numbers logged are the stats recorded, to 3 significant figures.
        logged = [float(x) for x in re.findall(NUMBER, message.split('\n')[1])]
        np.testing.assert_allclose(logged, row, rtol=5e-3)
    assert all(record.levelno == logging.INFO for record in caplog.records)


def test_same_seed_same_stats():
    first = make_optimiser(seed=3, use_progress_bar=False).train(4, 2)[0]
    second = make_optimiser(seed=3, use_progress_bar=False).train(4, 2)[0]
    np.testing.assert_array_equal(first, second)


# Progress bar.

def test_progress_bar_switched_off_by_argument(capsys):
    optimiser = make_optimiser(use_progress_bar=False)
    assert optimiser._progress_bar is None
    optimiser.train(num_epochs=1, stats_interval=1)
    assert capsys.readouterr().err == ''


def test_progress_bar_switched_off_by_environment(monkeypatch, capsys):
    monkeypatch.setenv('MLP_PROGRESS_BAR', '0')
    optimiser = make_optimiser()
    assert optimiser._progress_bar is None
    optimiser.train(num_epochs=1, stats_interval=1)
    assert capsys.readouterr().err == ''


def test_progress_bar_on_by_default_when_tqdm_installed(monkeypatch):
    pytest.importorskip('tqdm')
    monkeypatch.delenv('MLP_PROGRESS_BAR', raising=False)
    assert make_optimiser()._progress_bar is not None


def test_progress_bar_forced_on_writes_to_stderr(monkeypatch, capsys):
    pytest.importorskip('tqdm')
    monkeypatch.setenv('MLP_PROGRESS_BAR', '0')  # The argument wins over the environment.
    optimiser = make_optimiser(use_progress_bar=True)
    optimiser.train(num_epochs=1, stats_interval=1)
    captured = capsys.readouterr()
    assert 'batches' in captured.err
    assert 'batches' not in captured.out


def test_progress_bar_absent_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, 'tqdm.auto', None)  # Makes the import fail.
    optimiser = make_optimiser(use_progress_bar=True)
    assert optimiser._progress_bar is None
    stats, _, _ = optimiser.train(num_epochs=1, stats_interval=1)
    assert stats.shape == (2, 4)
