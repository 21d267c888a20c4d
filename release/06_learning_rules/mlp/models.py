"""Models: compositions of layers with a forward pass and parameter gradients.

A model also reports `params_penalty()`, the sum of its layers' parameter
penalties (see `mlp.penalties`), the part of the minimised error that
depends on the parameters alone.
"""

from mlp.layers import LayerWithParameters, StochasticLayer


def params_penalty_of(component):
    """Returns `component.params_penalty()`, or 0 if it has no such method.

    Layers without parameters, and layers or models written without the
    method, carry no penalty.
    """
    params_penalty = getattr(component, 'params_penalty', None)
    return 0. if params_penalty is None else params_penalty()


class SingleLayerModel(object):
    """A model made of one layer with parameters."""

    def __init__(self, layer):
        """Creates the model.

        Args:
            layer: The model's only layer (a `LayerWithParameters`).
        """
        self.layer = layer

    @property
    def params(self):
        """The layer's list of parameter arrays."""
        return self.layer.params

    def fprop(self, inputs, evaluation=False):
        """Returns the activations [inputs, outputs].

        Args:
            inputs: Array of shape (batch_size, input_dim).
            evaluation: Unused here; kept so all models share one signature.
        """
        return [inputs, self.layer.fprop(inputs)]

    def grads_wrt_params(self, activations, grads_wrt_outputs):
        """Returns the gradients of the error with respect to `params`.

        Args:
            activations: The list returned by `fprop`.
            grads_wrt_outputs: dE/d(outputs), shape (batch_size, output_dim).
        """
        return self.layer.grads_wrt_params(activations[0], grads_wrt_outputs)

    def params_penalty(self):
        """Returns the layer's parameter penalty (0 if it has none)."""
        return params_penalty_of(self.layer)

    def __repr__(self):
        return 'SingleLayerModel(' + str(self.layer) + ')'


class MultipleLayerModel(object):
    """A model that applies a list of layers in order."""

    def __init__(self, layers):
        """Creates the model.

        Args:
            layers: List of layers, first applied first.
        """
        self.layers = layers

    @property
    def params(self):
        """All parameter arrays, layer by layer in order."""
        params = []
        for layer in self.layers:
            if isinstance(layer, LayerWithParameters):
                params += layer.params
        return params

    def fprop(self, inputs, evaluation=False):
        """Forward propagates through every layer.

        Args:
            inputs: Array of shape (batch_size, input_dim).
            evaluation: If True, stochastic layers apply their deterministic
                evaluation-time transformation.

        Returns:
            List of len(layers) + 1 arrays: the inputs, then each layer's outputs.
        """
        activations = [inputs]
        for layer in self.layers:
            if isinstance(layer, StochasticLayer):
                outputs = layer.fprop(activations[-1], stochastic=not evaluation)
            else:
                outputs = layer.fprop(activations[-1])
            activations.append(outputs)
        return activations

    def grads_wrt_params(self, activations, grads_wrt_outputs):
        """Back-propagates dE/d(outputs) and collects the parameter gradients.

        Args:
            activations: The list returned by `fprop`.
            grads_wrt_outputs: dE/d(final outputs), shape (batch_size, output_dim).

        Returns:
            List of gradient arrays in the same order as `params`.
        """
        grads_per_layer = []
        grads = grads_wrt_outputs
        for i, layer in reversed(list(enumerate(self.layers))):
            inputs, outputs = activations[i], activations[i + 1]
            if isinstance(layer, LayerWithParameters):
                grads_per_layer.append(layer.grads_wrt_params(inputs, grads))
            if i > 0:
                grads = layer.bprop(inputs, outputs, grads)
        return [grad for layer_grads in reversed(grads_per_layer) for grad in layer_grads]

    def params_penalty(self):
        """Returns the sum of every layer's parameter penalty (0 without penalties)."""
        return sum((params_penalty_of(layer) for layer in self.layers), 0.)

    def __repr__(self):
        return 'MultipleLayerModel(\n    ' + '\n    '.join(
            str(layer) for layer in self.layers) + '\n)'
