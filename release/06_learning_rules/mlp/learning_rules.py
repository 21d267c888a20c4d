"""Learning rules: how parameters change given their gradients.

A learning rule is given the model's list of parameter arrays once
(`initialise`) and then updates those arrays in place, one step per call to
`update_params(grads_wrt_params)`. `reset()` clears any state (momenta,
running averages) without touching the parameters.

Part of the student-facing `mlp` package: it runs wherever students run it,
and in the grader only INSIDE THE SANDBOX. Exercise regions: as in `mlp.layers`.
"""

import numpy as np


def _check_decay_rate(name, value):
    """Refuses a decay rate of a running average outside [0, 1)."""
    if not 0. <= value < 1.:
        raise ValueError('{0} must be in [0, 1), got {1!r}.'.format(name, value))


def _check_epsilon(value):
    """Refuses an epsilon that cannot keep a division finite."""
    if not value > 0.:
        raise ValueError('epsilon must be positive, got {0!r}.'.format(value))


class GradientDescentLearningRule(object):
    """Plain gradient descent: p <- p - eta dE/dp."""

    def __init__(self, learning_rate=1e-3):
        """Creates the rule.

        Args:
            learning_rate: Step size eta > 0.
        """
        if learning_rate <= 0.:
            raise ValueError('learning_rate must be positive, got {0}.'.format(learning_rate))
        self.learning_rate = learning_rate

    def initialise(self, params):
        """Records the list of parameter arrays to update in place."""
        self.params = params

    def reset(self):
        """Clears state; plain gradient descent has none."""

    def update_params(self, grads_wrt_params):
        """Takes one step.

        Args:
            grads_wrt_params: List of gradient arrays, one per parameter.
        """
        for param, grad in zip(self.params, grads_wrt_params):
            param -= self.learning_rate * grad


class AdaGradLearningRule(GradientDescentLearningRule):
    """AdaGrad (Duchi et al., 2011): p <- p - eta g / (sqrt(sum of past g^2) + eps)."""

    def __init__(self, learning_rate=1e-2, epsilon=1e-8):
        """Creates the rule.

        Args:
            learning_rate: Step size eta > 0.
            epsilon: Small constant that keeps the division finite.
        """
        super(AdaGradLearningRule, self).__init__(learning_rate)
        _check_epsilon(epsilon)
        self.epsilon = epsilon

    def initialise(self, params):
        super(AdaGradLearningRule, self).initialise(params)
        self.sum_sq_grads = [np.zeros_like(param) for param in self.params]

    def reset(self):
        for sum_sq in self.sum_sq_grads:
            sum_sq *= 0.

    def update_params(self, grads_wrt_params):
        for param, sum_sq, grad in zip(self.params, self.sum_sq_grads, grads_wrt_params):
            sum_sq += grad ** 2
            param -= self.learning_rate * grad / (np.sqrt(sum_sq) + self.epsilon)
