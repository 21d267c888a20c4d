"""Error functions: scalar measures of how far model outputs are from targets.

Each error is a callable `error(outputs, targets)` returning the mean over
the batch of a per-example error, and has `grad(outputs, targets)`, the exact
derivative of that mean with respect to `outputs`. Arrays are shaped
(batch_size, output_dim); `targets` are one-of-k (or, for the binary errors,
0/1) arrays of the same shape.
"""

import numpy as np

from mlp.layers import SigmoidLayer, SoftmaxLayer


class SumOfSquaredDiffsError(object):
    """E = 1/B sum_b 1/2 ||y^(b) - t^(b)||^2."""

    def __call__(self, outputs, targets):
        """Returns the batch mean of half the summed squared differences."""
        return 0.5 * np.mean(np.sum((outputs - targets) ** 2, axis=1))

    def grad(self, outputs, targets):
        """Returns dE/dy = (y - t) / B, shape (batch_size, output_dim)."""
        return (outputs - targets) / outputs.shape[0]

    def __repr__(self):
        return 'SumOfSquaredDiffsError'


class CrossEntropyError(object):
    """E = -1/B sum_b sum_k t_k^(b) log y_k^(b), for outputs that are probabilities."""

    def __call__(self, outputs, targets):
        """Returns the batch-mean cross entropy."""
        return -np.mean(np.sum(targets * np.log(outputs), axis=1))

    def grad(self, outputs, targets):
        """Returns dE/dy = -t / (B y)."""
        return -(targets / outputs) / outputs.shape[0]

    def __repr__(self):
        return 'CrossEntropyError'


class CrossEntropySoftmaxError(object):
    """Cross entropy of softmax(outputs): E = -1/B sum_b sum_k t_k log softmax_k(y^(b)).

    Folding the softmax into the error gives the simple gradient
    (softmax(y) - t) / B, and the log-sum-exp form below stays finite for
    logits of any magnitude.
    """

    def __call__(self, outputs, targets):
        """Returns the batch-mean cross entropy of the softmax of the logits."""
        shifted = outputs - outputs.max(axis=-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        return -np.mean(np.sum(targets * log_probs, axis=1))

    def grad(self, outputs, targets):
        """Returns dE/dy = (softmax(y) - t) / B."""
        return (SoftmaxLayer().fprop(outputs) - targets) / outputs.shape[0]

    def __repr__(self):
        return 'CrossEntropySoftmaxError'


class BinaryCrossEntropyError(object):
    """E = -1/B sum_b sum_k [t_k log y_k + (1 - t_k) log(1 - y_k)], outputs in (0, 1)."""

    def __call__(self, outputs, targets):
        """Returns the batch mean of the per-example summed binary cross entropy."""
        return -np.mean(np.sum(
            targets * np.log(outputs) + (1. - targets) * np.log(1. - outputs), axis=1))

    def grad(self, outputs, targets):
        """Returns dE/dy = ((1 - t) / (1 - y) - t / y) / B."""
        return ((1. - targets) / (1. - outputs) - targets / outputs) / outputs.shape[0]

    def __repr__(self):
        return 'BinaryCrossEntropyError'


class BinaryCrossEntropySigmoidError(object):
    """Binary cross entropy of sigmoid(outputs), with the sigmoid folded in.

    log sigmoid(y) = -log(1 + exp(-y)) and log(1 - sigmoid(y)) = -log(1 + exp(y))
    are computed with `np.logaddexp(0, .)`, which never overflows.
    """

    def __call__(self, outputs, targets):
        """Returns the batch mean of the summed binary cross entropy of sigmoid(y)."""
        per_unit = (targets * np.logaddexp(0., -outputs)
                    + (1. - targets) * np.logaddexp(0., outputs))
        return np.mean(np.sum(per_unit, axis=1))

    def grad(self, outputs, targets):
        """Returns dE/dy = (sigmoid(y) - t) / B."""
        return (SigmoidLayer().fprop(outputs) - targets) / outputs.shape[0]

    def __repr__(self):
        return 'BinaryCrossEntropySigmoidError'
