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


class MomentumLearningRule(GradientDescentLearningRule):
    """Gradient descent with momentum: v <- alpha v - eta dE/dp; p <- p + v."""

    def __init__(self, learning_rate=1e-3, mom_coeff=0.9):
        """Creates the rule.

        Args:
            learning_rate: Step size eta > 0.
            mom_coeff: Momentum coefficient alpha in [0, 1].
        """
        super(MomentumLearningRule, self).__init__(learning_rate)
        if not 0. <= mom_coeff <= 1.:
            raise ValueError('mom_coeff must be in [0, 1], got {0}.'.format(mom_coeff))
        self.mom_coeff = mom_coeff

    def initialise(self, params):
        super(MomentumLearningRule, self).initialise(params)
        self.moms = [np.zeros_like(param) for param in self.params]

    def reset(self):
        for mom in self.moms:
            mom *= 0.

    def update_params(self, grads_wrt_params):
        for param, mom, grad in zip(self.params, self.moms, grads_wrt_params):
            mom *= self.mom_coeff
            mom -= self.learning_rate * grad
            param += mom


class RMSPropLearningRule(GradientDescentLearningRule):
    """RMSProp (Tieleman and Hinton, 2012).

    s <- beta s + (1 - beta) g^2; p <- p - eta g / (sqrt(s) + eps).
    """

    def __init__(self, learning_rate=1e-3, beta=0.9, epsilon=1e-8):
        """Creates the rule.

        Args:
            learning_rate: Step size eta > 0.
            beta: Decay rate of the running mean of squared gradients, in [0, 1).
            epsilon: Small constant that keeps the division finite.
        """
        super(RMSPropLearningRule, self).__init__(learning_rate)
        _check_decay_rate('beta', beta)
        _check_epsilon(epsilon)
        self.beta = beta
        self.epsilon = epsilon

    def initialise(self, params):
        super(RMSPropLearningRule, self).initialise(params)
        self.mean_sq_grads = [np.zeros_like(param) for param in self.params]

    def reset(self):
        for mean_sq in self.mean_sq_grads:
            mean_sq *= 0.

    def update_params(self, grads_wrt_params):
        for param, mean_sq, grad in zip(self.params, self.mean_sq_grads, grads_wrt_params):
            mean_sq *= self.beta
            mean_sq += (1. - self.beta) * grad ** 2
            param -= self.learning_rate * grad / (np.sqrt(mean_sq) + self.epsilon)


class AdamLearningRule(GradientDescentLearningRule):
    """Adam (Kingma and Ba, 2015).

    m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2;
    p <- p - eta m_hat / (sqrt(v_hat) + eps), where m_hat = m / (1 - b1^t)
    and v_hat = v / (1 - b2^t) correct the zero initialisation of m and v.
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        """Creates the rule.

        Args:
            learning_rate: Step size eta > 0.
            beta_1: Decay rate of the first-moment estimate, in [0, 1).
            beta_2: Decay rate of the second-moment estimate, in [0, 1).
            epsilon: Small constant that keeps the division finite.
        """
        super(AdamLearningRule, self).__init__(learning_rate)
        _check_decay_rate('beta_1', beta_1)
        _check_decay_rate('beta_2', beta_2)
        _check_epsilon(epsilon)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def initialise(self, params):
        super(AdamLearningRule, self).initialise(params)
        self.moms_1 = [np.zeros_like(param) for param in self.params]
        self.moms_2 = [np.zeros_like(param) for param in self.params]
        self.step_count = 0

    def reset(self):
        for mom_1, mom_2 in zip(self.moms_1, self.moms_2):
            mom_1 *= 0.
            mom_2 *= 0.
        self.step_count = 0

    def update_params(self, grads_wrt_params):
        self.step_count += 1
        correction_1 = 1. - self.beta_1 ** self.step_count
        correction_2 = 1. - self.beta_2 ** self.step_count
        for param, mom_1, mom_2, grad in zip(
                self.params, self.moms_1, self.moms_2, grads_wrt_params):
            mom_1 *= self.beta_1
            mom_1 += (1. - self.beta_1) * grad
            mom_2 *= self.beta_2
            mom_2 += (1. - self.beta_2) * grad ** 2
            param -= (self.learning_rate * (mom_1 / correction_1)
                      / (np.sqrt(mom_2 / correction_2) + self.epsilon))


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
