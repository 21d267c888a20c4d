"""The optimiser: trains a model by mini-batch gradient descent and logs progress."""

import logging
import os
import time
from collections import OrderedDict

import numpy as np

logger = logging.getLogger(__name__)


def _progress_bar_factory(enabled):
    """Returns a callable wrapping an iterable in a progress bar, or None.

    The bar comes from `tqdm.auto` (a widget in notebooks, text in terminals)
    when tqdm is installed; the framework itself needs only numpy. `enabled`
    None means: on unless the environment variable MLP_PROGRESS_BAR is '0'.
    """
    if enabled is None:
        enabled = os.environ.get('MLP_PROGRESS_BAR', '1') != '0'
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class Optimiser(object):
    """Trains a model with a learning rule, recording monitors on data sets."""

    def __init__(self, model, error, learning_rule, train_dataset,
                 valid_dataset=None, data_monitors=None, use_progress_bar=None):
        """Creates an optimiser.

        Args:
            model: The model to train (has `params`, `fprop`, `grads_wrt_params`).
            error: Error function to minimise (callable with a `grad` method).
            learning_rule: Rule that updates `model.params` from gradients.
            train_dataset: Data provider iterated over once per epoch.
            valid_dataset: Optional provider whose monitors are also recorded.
            data_monitors: Optional dict name -> callable(outputs, targets)
                of extra quantities to record (e.g. accuracy); the error is
                always recorded as 'error'.
            use_progress_bar: True/False to force a per-epoch progress bar
                over batches on or off; None: see `_progress_bar_factory`.
        """
        self.model = model
        self.error = error
        self.learning_rule = learning_rule
        self.learning_rule.initialise(self.model.params)
        self.train_dataset = train_dataset
        self.valid_dataset = valid_dataset
        self.data_monitors = OrderedDict([('error', error)])
        if data_monitors is not None:
            self.data_monitors.update(data_monitors)
        self._progress_bar = _progress_bar_factory(use_progress_bar)

    def do_training_epoch(self):
        """Takes one learning-rule step per batch of the training set."""
        batches = self.train_dataset
        if self._progress_bar is not None:
            batches = self._progress_bar(
                batches, total=self.train_dataset.num_batches, leave=False, desc='batches')
        for inputs_batch, targets_batch in batches:
            activations = self.model.fprop(inputs_batch)
            grads_wrt_outputs = self.error.grad(activations[-1], targets_batch)
            grads_wrt_params = self.model.grads_wrt_params(activations, grads_wrt_outputs)
            self.learning_rule.update_params(grads_wrt_params)

    def eval_monitors(self, dataset, label):
        """Averages every monitor over the batches of a data set.

        Args:
            dataset: Provider to evaluate on.
            label: Suffix for the keys, e.g. '(train)'.

        Returns:
            OrderedDict key + label -> batch-averaged monitor value.
        """
        totals = OrderedDict((key + label, 0.) for key in self.data_monitors)
        for inputs_batch, targets_batch in dataset:
            outputs = self.model.fprop(inputs_batch, evaluation=True)[-1]
            for key, monitor in self.data_monitors.items():
                totals[key + label] += monitor(outputs, targets_batch)
        for key in totals:
            totals[key] /= dataset.num_batches
        return totals

    def get_epoch_stats(self):
        """Returns the monitors on the training and (if any) validation set."""
        stats = OrderedDict()
        stats.update(self.eval_monitors(self.train_dataset, '(train)'))
        if self.valid_dataset is not None:
            stats.update(self.eval_monitors(self.valid_dataset, '(valid)'))
        return stats

    def log_stats(self, epoch, epoch_time, stats):
        """Logs one interval's statistics at INFO level."""
        logger.info('Epoch {0}: {1:.1f}s to complete\n {2}'.format(
            epoch, epoch_time,
            ', '.join('{0}={1:.2e}'.format(key, value) for key, value in stats.items())))

    def train(self, num_epochs, stats_interval=5):
        """Trains for a number of epochs, recording statistics at intervals.

        Args:
            num_epochs: Number of passes through the training set.
            stats_interval: Record and log the monitors every this many epochs.

        Returns:
            (stats, keys, run_time): `stats` is an array of shape
            (1 + num_epochs // stats_interval, num_monitors) whose row 0 is
            measured before training; `keys` maps each monitor name (e.g.
            'acc(valid)') to its column; `run_time` is the total seconds.
        """
        start = time.time()
        initial = self.get_epoch_stats()
        keys = {key: column for column, key in enumerate(initial)}
        run_stats = [list(initial.values())]
        for epoch in range(1, num_epochs + 1):
            epoch_start = time.time()
            self.do_training_epoch()
            epoch_time = time.time() - epoch_start
            if epoch % stats_interval == 0:
                stats = self.get_epoch_stats()
                self.log_stats(epoch, epoch_time, stats)
                run_stats.append(list(stats.values()))
        return np.array(run_stats), keys, time.time() - start
