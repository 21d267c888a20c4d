"""Schedulers: how a learning rule's hyperparameters change over a training run.

A scheduler has `update_learning_rule(learning_rule, epoch_number)`, which the
optimiser calls before every epoch with the 0-based number of the epoch about
to run. It sets the learning rule's hyperparameters for that epoch (here the
attribute `learning_rate`) and returns the learning rate it set. The rate
depends on the epoch number alone, so a run can be resumed at any epoch.

Part of the student-facing `mlp` package: it runs wherever students run it,
and in the grader only INSIDE THE SANDBOX.

Exercise regions: as in `mlp.layers`.
"""

import math


class ConstantLearningRateScheduler(object):
    """Keeps the learning rate at one value for every epoch."""

    def __init__(self, learning_rate):
        """Creates the scheduler.

        Args:
            learning_rate: The learning rate to set, > 0.
        """
        if not learning_rate > 0.:
            raise ValueError('learning_rate must be positive, got {0!r}.'.format(learning_rate))
        self.learning_rate = learning_rate

    def update_learning_rule(self, learning_rule, epoch_number):
        """Sets `learning_rule.learning_rate` for the epoch about to run.

        Args:
            learning_rule: The learning rule being used for training.
            epoch_number: 0-based number of the epoch about to run (unused).

        Returns:
            The learning rate set.
        """
        learning_rule.learning_rate = self.learning_rate
        return self.learning_rate

    def __repr__(self):
        return 'ConstantLearningRateScheduler(learning_rate={0})'.format(self.learning_rate)
