"""Fidelity: the reference framework reproduces the seed notebook's Exercise 1 numbers.

The seed trains a softmax regression on MNIST (20 epochs, stats every 5) with
a fixed seeding recipe and prints four statistics lines. The reference must
print exactly those lines, and the variant with the softmax folded into the
error (CrossEntropySoftmaxError on a SingleLayerModel) must give the same
statistics up to floating-point rounding.
"""

import logging

import numpy as np
import pytest

from mlp.data_providers import MNISTDataProvider
from mlp.errors import CrossEntropyError, CrossEntropySoftmaxError
from mlp.initialisers import UniformInit
from mlp.layers import AffineLayer, SoftmaxLayer
from mlp.learning_rules import GradientDescentLearningRule
from mlp.models import MultipleLayerModel, SingleLayerModel
from mlp.optimisers import Optimiser

SEED = 6102016
EXPECTED_STATS_LINES = [
    ' error(train)=3.11e-01, acc(train)=9.13e-01, error(valid)=2.92e-01, acc(valid)=9.18e-01',
    ' error(train)=2.89e-01, acc(train)=9.20e-01, error(valid)=2.77e-01, acc(valid)=9.23e-01',
    ' error(train)=2.79e-01, acc(train)=9.22e-01, error(valid)=2.70e-01, acc(valid)=9.24e-01',
    ' error(train)=2.72e-01, acc(train)=9.24e-01, error(valid)=2.66e-01, acc(valid)=9.26e-01',
]


def run_exercise_one(data_dir, softmax_in_error):
    """Runs the seed's Exercise 1 recipe.

    Args:
        data_dir: Directory holding the MNIST files.
        softmax_in_error: If False, the seed's model (affine + softmax layer,
            cross entropy); if True, affine only with CrossEntropySoftmaxError.

    Returns:
        The (stats, keys, run_time) tuple of `Optimiser.train`.
    """
    rng = np.random.RandomState(SEED)
    train_data = MNISTDataProvider('train', rng=rng, data_dir=data_dir)
    valid_data = MNISTDataProvider('valid', rng=rng, data_dir=data_dir)
    rng.seed(SEED)
    train_data.reset()
    valid_data.reset()
    train_data.batch_size = 100
    valid_data.batch_size = 100
    param_init = UniformInit(-0.1, 0.1, rng=rng)
    affine = AffineLayer(784, 10, param_init, param_init)
    if softmax_in_error:
        model, error = SingleLayerModel(affine), CrossEntropySoftmaxError()
    else:
        model, error = MultipleLayerModel([affine, SoftmaxLayer()]), CrossEntropyError()
    optimiser = Optimiser(
        model, error, GradientDescentLearningRule(0.1), train_data, valid_data,
        data_monitors={'acc': lambda y, t: (y.argmax(-1) == t.argmax(-1)).mean()},
        use_progress_bar=False)
    return optimiser.train(num_epochs=20, stats_interval=5)


@pytest.fixture(scope='module')
def seed_run(mnist_dir):
    """Runs the seed's model once, capturing the optimiser's log messages."""
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger('mlp.optimisers')
    handler, old_level = Collect(level=logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        result = run_exercise_one(mnist_dir, softmax_in_error=False)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return result, records


def test_seed_exercise_one_prints_the_seed_numbers(seed_run):
    _, messages = seed_run
    assert len(messages) == 4
    for epoch, message, expected in zip((5, 10, 15, 20), messages, EXPECTED_STATS_LINES):
        first_line, stats_line = message.split('\n')
        assert first_line.startswith('Epoch {0}: '.format(epoch))
        assert first_line.endswith('s to complete')
        assert stats_line == expected


def test_seed_exercise_one_stats_array(seed_run):
    (stats, keys, _), _ = seed_run
    assert stats.shape == (5, 4)
    assert list(keys) == ['error(train)', 'acc(train)', 'error(valid)', 'acc(valid)']
    # Before training: small random weights, so chance accuracy and an error near log(10).
    assert 2. < stats[0, keys['error(train)']] < 3.
    assert 0.05 < stats[0, keys['acc(valid)']] < 0.15
    # Training only improves things in this run.
    assert np.all(np.diff(stats[:, keys['error(valid)']]) < 0.)


def test_softmax_folded_into_error_gives_the_same_stats(seed_run, mnist_dir):
    (stats, keys, _), _ = seed_run
    folded_stats, folded_keys, _ = run_exercise_one(mnist_dir, softmax_in_error=True)
    assert folded_keys == keys
    # Measured: the two runs agree to ~2e-16 relative (rounding only); accuracies exactly.
    np.testing.assert_allclose(folded_stats, stats, rtol=1e-10, atol=0.)
    np.testing.assert_array_equal(folded_stats[:, keys['acc(valid)']],
                                  stats[:, keys['acc(valid)']])
