"""Tests of mlp.optimisers: statistics, logging, progress bar, schedulers, penalties in the error."""

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
from mlp.penalties import L1Penalty, L2Penalty
from mlp.schedulers import CosineAnnealingWithWarmRestarts

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


# Schedulers and parameter penalties.

class RecordingRule(GradientDescentLearningRule):
    """Gradient descent that records the learning rate of every update."""

    def __init__(self, learning_rate=0.1):
        super(RecordingRule, self).__init__(learning_rate)
        self.rates = []

    def update_params(self, grads_wrt_params):
        self.rates.append(self.learning_rate)
        super(RecordingRule, self).update_params(grads_wrt_params)


class RecordingScheduler(object):
    """Sets the rate 0.01 * (epoch + 1) and records the epoch numbers it is given."""

    def __init__(self):
        self.epochs = []

    def update_learning_rule(self, learning_rule, epoch_number):
        self.epochs.append(epoch_number)
        learning_rule.learning_rate = 0.01 * (epoch_number + 1)
        return learning_rule.learning_rate


def test_schedulers_run_once_before_each_epoch_with_its_zero_based_number():
    scheduler = RecordingScheduler()
    optimiser = make_optimiser(use_progress_bar=False, schedulers=[scheduler])
    rule = RecordingRule()
    optimiser.learning_rule = rule
    rule.initialise(optimiser.model.params)
    optimiser.train(num_epochs=3, stats_interval=1)
    batches = optimiser.train_dataset.num_batches
    assert scheduler.epochs == [0, 1, 2]
    assert rule.rates == [0.01] * batches + [0.02] * batches + [pytest.approx(0.03)] * batches


def test_cosine_scheduler_sets_every_epochs_rate_in_training():
    schedule = dict(min_learning_rate=0.01, max_learning_rate=0.2, total_iters_per_period=2,
                    max_learning_rate_discount_factor=0.5, period_iteration_expansion_factor=1.)
    optimiser = make_optimiser(use_progress_bar=False,
                               schedulers=CosineAnnealingWithWarmRestarts(**schedule))
    rule = RecordingRule()
    optimiser.learning_rule = rule
    rule.initialise(optimiser.model.params)
    optimiser.train(num_epochs=4, stats_interval=2)
    per_epoch = rule.rates[::optimiser.train_dataset.num_batches]
    # Epochs 0..3: max 0.2, midpoint, restart at 0.1, midpoint of the second period.
    np.testing.assert_allclose(per_epoch, [0.2, 0.105, 0.1, 0.055], rtol=1e-12)


def test_without_schedulers_the_rate_is_left_alone():
    optimiser = make_optimiser(use_progress_bar=False)
    assert optimiser.schedulers == []
    optimiser.train(num_epochs=2, stats_interval=1)
    assert optimiser.learning_rule.learning_rate == 0.1


@pytest.mark.parametrize('schedulers', [[object()], 3, ['fast']], ids=repr)
def test_bad_schedulers_are_a_clear_type_error(schedulers):
    with pytest.raises(TypeError, match='update_learning_rule'):
        make_optimiser(use_progress_bar=False, schedulers=schedulers)


def raw_error_optimiser(**kwargs):
    """make_optimiser with the unpenalised error also recorded, as 'raw'."""
    optimiser = make_optimiser(use_progress_bar=False, **kwargs)
    optimiser.data_monitors['raw'] = CrossEntropySoftmaxError()
    return optimiser


def test_reported_error_includes_the_models_params_penalty():
    optimiser = raw_error_optimiser()
    layer = optimiser.model.layer
    layer.weights_penalty, layer.biases_penalty = L2Penalty(0.5), L1Penalty(0.1)
    initial_penalty = optimiser.model.params_penalty()
    assert initial_penalty > 0.
    stats, keys, _ = optimiser.train(num_epochs=2, stats_interval=2)
    final_penalty = optimiser.model.params_penalty()
    assert final_penalty != pytest.approx(initial_penalty)
    for label in ('(train)', '(valid)'):
        added = stats[:, keys['error' + label]] - stats[:, keys['raw' + label]]
        np.testing.assert_allclose(added, [initial_penalty, final_penalty], rtol=1e-9)
        # Accuracy is a property of the outputs alone.
        assert np.all(stats[:, keys['acc' + label]] <= 1.)


def test_reported_error_without_penalties_is_the_error_alone_bit_for_bit():
    stats, keys, _ = raw_error_optimiser().train(num_epochs=2, stats_interval=1)
    for label in ('(train)', '(valid)'):
        np.testing.assert_array_equal(stats[:, keys['error' + label]],
                                      stats[:, keys['raw' + label]])
