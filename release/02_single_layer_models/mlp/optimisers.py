"""The optimiser: trains a model by mini-batch gradient descent and logs progress.

Before each epoch the optimiser lets its schedulers (`mlp.schedulers`) set
the learning rule's hyperparameters; the error it reports includes the
model's parameter penalties (`mlp.penalties`), the objective being minimised.
"""

import logging
import os
import time
from collections import OrderedDict

import numpy as np

from mlp.models import params_penalty_of

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


def _scheduler_list(schedulers):
    """Returns the schedulers as a list: None gives [], a single scheduler [it]."""
    if schedulers is None:
        return []
    if hasattr(schedulers, 'update_learning_rule'):
        return [schedulers]
    try:
        schedulers = list(schedulers)
    except TypeError:
        schedulers = [schedulers]  # not a list: the check below says what is wrong
    for scheduler in schedulers:
        if not callable(getattr(scheduler, 'update_learning_rule', None)):
            raise TypeError(
                'Every scheduler needs an update_learning_rule(learning_rule, epoch_number) '
                'method; got {0!r}.'.format(scheduler))
    return schedulers


class Optimiser(object):
    """Trains a model with a learning rule, recording monitors on data sets."""

    def __init__(self, model, error, learning_rule, train_dataset,
                 valid_dataset=None, data_monitors=None, use_progress_bar=None,
                 schedulers=None):
        """Creates an optimiser.

        Args:
            model: The model to train (has `params`, `fprop`, `grads_wrt_params`).
            error: Error function to minimise (callable with a `grad` method).
            learning_rule: Rule that updates `model.params` from gradients.
            train_dataset: Data provider iterated over once per epoch.
            valid_dataset: Optional provider whose monitors are also recorded.
            data_monitors: Optional dict name -> callable(outputs, targets)
                of extra quantities to record (e.g. accuracy); the error is
                always recorded as 'error', including the model's parameter
                penalty (`model.params_penalty()`) when it has one.
            use_progress_bar: True/False to force a per-epoch progress bar
                over batches on or off; None: see `_progress_bar_factory`.
            schedulers: Optional list of schedulers (see `mlp.schedulers`),
                or a single one; before each epoch every scheduler's
                `update_learning_rule(learning_rule, epoch_number)` is called
                with the 0-based number of the epoch about to run.

        Raises:
            TypeError: If a scheduler has no `update_learning_rule` method.
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
        self.schedulers = _scheduler_list(schedulers)

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
            OrderedDict key + label -> batch-averaged monitor value. The
            'error' entry is the objective the training minimises: the
            batch-averaged error plus `model.params_penalty()` (which does
            not depend on the data, so it is added once, not per batch).
        """
        totals = OrderedDict((key + label, 0.) for key in self.data_monitors)
        for inputs_batch, targets_batch in dataset:
            outputs = self.model.fprop(inputs_batch, evaluation=True)[-1]
            for key, monitor in self.data_monitors.items():
                totals[key + label] += monitor(outputs, targets_batch)
        for key in totals:
            totals[key] /= dataset.num_batches
        penalty = params_penalty_of(self.model)
        if penalty != 0.:  # a model without penalties reports the error alone, bit for bit
            totals['error' + label] += penalty
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
            for scheduler in self.schedulers:
                scheduler.update_learning_rule(self.learning_rule, epoch - 1)
            epoch_start = time.time()
            self.do_training_epoch()
            epoch_time = time.time() - epoch_start
            if epoch % stats_interval == 0:
                stats = self.get_epoch_stats()
                self.log_stats(epoch, epoch_time, stats)
                run_stats.append(list(stats.values()))
        return np.array(run_stats), keys, time.time() - start
