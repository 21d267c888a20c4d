"""Reference solutions of the notebook-level functions that assignments grade.

TRUSTED. Some exercises are plain functions defined in a notebook rather
than classes of the `mlp` package (lab 2's forward function and its
gradient-descent step). The `function` target kind judges them against the
functions here, which a spec names by dotted path, e.g.
``"reference": "autograder.course.reference_functions.single_layer_fprop"``.
They reuse the reference `mlp` wherever it has the same computation.
"""

import numpy as np


def single_layer_fprop(inputs, weights, biases):
    """Outputs y^(b) = W x^(b) + b of a single affine layer.

    Args:
        inputs: Array (batch_size, input_dim).
        weights: Array (output_dim, input_dim).
        biases: Array (output_dim,).

    Returns:
        Array (batch_size, output_dim).
    """
    from mlp.layers import AffineLayer
    layer = AffineLayer(np.shape(weights)[1], np.shape(weights)[0])
    layer.params = [np.asarray(weights, dtype=float), np.asarray(biases, dtype=float)]
    return layer.fprop(np.asarray(inputs, dtype=float))


def gradient_descent_step(weights, biases, grads_wrt_weights, grads_wrt_biases, learning_rate):
    """One step of gradient descent, p <- p - eta dE/dp, returning new arrays.

    Args:
        weights: Array (output_dim, input_dim).
        biases: Array (output_dim,).
        grads_wrt_weights: dE/dW, shaped like `weights`.
        grads_wrt_biases: dE/db, shaped like `biases`.
        learning_rate: The step size eta > 0.

    Returns:
        (new_weights, new_biases); the arguments are left unmodified.
    """
    return (weights - learning_rate * grads_wrt_weights,
            biases - learning_rate * grads_wrt_biases)
