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


class CosineAnnealingWithWarmRestarts(object):
    """Cosine annealing with warm restarts (SGDR; Loshchilov and Hutter, 2017).

    The run is split into periods. Period i = 0, 1, 2, ... lasts
    T_i = T_0 m^i epochs, starts at epoch S_i = T_0 + T_1 + ... + T_{i-1}
    (S_0 = 0) and has the maximum rate eta_max^(i) = eta_max d^i, where
    T_0 = total_iters_per_period, m = period_iteration_expansion_factor and
    d = max_learning_rate_discount_factor. At epoch t of period i, with
    t_cur = t - S_i epochs since the restart,

        eta(t) = eta_min + (eta_max^(i) - eta_min) (1 + cos(pi t_cur / T_i)) / 2,

    which starts the period at eta_max^(i) (t_cur = 0) and falls along half a
    cosine towards eta_min, reached as t_cur approaches T_i. Then the next
    period restarts at its (discounted) maximum.
    """

    def __init__(self, min_learning_rate, max_learning_rate, total_iters_per_period,
                 max_learning_rate_discount_factor, period_iteration_expansion_factor):
        """Creates the scheduler.

        Args:
            min_learning_rate: eta_min >= 0, the rate approached at the end of
                every period.
            max_learning_rate: eta_max >= eta_min, the rate at the first epoch.
            total_iters_per_period: T_0 > 0, the number of epochs of the
                first period.
            max_learning_rate_discount_factor: d > 0; each restart multiplies
                the maximum rate by d (d = 1 restarts at eta_max every time).
            period_iteration_expansion_factor: m >= 1; each period lasts m
                times as long as the one before (m = 1: equal periods).

        Raises:
            ValueError: If an argument is out of its range.
        """
        if not 0. <= min_learning_rate <= max_learning_rate:
            raise ValueError(
                'Need 0 <= min_learning_rate <= max_learning_rate, got {0!r} and {1!r}.'.format(
                    min_learning_rate, max_learning_rate))
        if not total_iters_per_period > 0:
            raise ValueError('total_iters_per_period must be positive, got {0!r}.'.format(
                total_iters_per_period))
        if not max_learning_rate_discount_factor > 0.:
            raise ValueError('max_learning_rate_discount_factor must be positive, got {0!r}.'
                             .format(max_learning_rate_discount_factor))
        if not period_iteration_expansion_factor >= 1.:
            raise ValueError('period_iteration_expansion_factor must be at least 1 (periods '
                             'that shrink would end the schedule), got {0!r}.'.format(
                                 period_iteration_expansion_factor))
        self.min_learning_rate = min_learning_rate
        self.max_learning_rate = max_learning_rate
        self.total_iters_per_period = total_iters_per_period
        self.max_learning_rate_discount_factor = max_learning_rate_discount_factor
        self.period_iteration_expansion_factor = period_iteration_expansion_factor

    def period_of(self, epoch_number):
        """Locates an epoch in the schedule.

        Args:
            epoch_number: 0-based epoch number t >= 0.

        Returns:
            (i, t_cur, T_i): the period's index, the epochs since its start
            and its length.
        """
        length = float(self.total_iters_per_period)
        if self.period_iteration_expansion_factor == 1.:
            index, since_start = divmod(epoch_number, length)
            return int(index), since_start, length
        index, start = 0, 0.
        while epoch_number >= start + length:  # lengths grow geometrically: few steps
            start += length
            length *= self.period_iteration_expansion_factor
            index += 1
        return index, epoch_number - start, length

    def update_learning_rule(self, learning_rule, epoch_number):
        """Sets `learning_rule.learning_rate` to eta(epoch_number).

        Args:
            learning_rule: The learning rule being used for training.
            epoch_number: 0-based number t >= 0 of the epoch about to run.

        Returns:
            The learning rate set.

        Raises:
            ValueError: If epoch_number is negative.
        """
        if epoch_number < 0:
            raise ValueError('epoch_number must be >= 0, got {0!r}.'.format(epoch_number))
        index, since_start, length = self.period_of(epoch_number)
        period_max = self.max_learning_rate * self.max_learning_rate_discount_factor ** index
        learning_rate = self.min_learning_rate + 0.5 * (period_max - self.min_learning_rate) * (
            1. + math.cos(math.pi * since_start / length))
        learning_rule.learning_rate = learning_rate
        return learning_rate

    def __repr__(self):
        return ('CosineAnnealingWithWarmRestarts(min_learning_rate={0}, max_learning_rate={1}, '
                'total_iters_per_period={2}, max_learning_rate_discount_factor={3}, '
                'period_iteration_expansion_factor={4})').format(
                    self.min_learning_rate, self.max_learning_rate, self.total_iters_per_period,
                    self.max_learning_rate_discount_factor,
                    self.period_iteration_expansion_factor)


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
