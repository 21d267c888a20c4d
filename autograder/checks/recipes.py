"""The short training run behind 'training' checks, shared by parent and sandbox.

Runs in BOTH places, so it imports only numpy and whichever `mlp` is on the
path: inside the sandbox that is the student copy (with the student's class
passed in by the child runner); in the trusted parent it is the reference.
The parent copies this file into the sandbox next to the child runner.

A recipe is plain data:
    {"seed": int, "layers": [{"class": str, "source": "mlp.layers" | "submission",
     "kwargs": {...}, "init_scale": float | None}, ...], "learning_rate": float,
     "batch_size": int, "num_epochs": int, "error": name in mlp.errors}
The model is trained with that error (e.g. `CrossEntropySoftmaxError`) and
gradient descent on shuffled mini-batches, every random choice drawn from
one RandomState(seed).
"""

import numpy as np


def build_layers(recipe, resolve_class, rng):
    """Instantiates the recipe's layers.

    Args:
        recipe: The recipe dict (see module docstring).
        resolve_class: Callable (class_name, source) -> class.
        rng: RandomState for the affine layers' uniform initialisation.

    Returns:
        List of layer instances, in order.
    """
    from mlp.initialisers import UniformInit

    layers = []
    for layer_spec in recipe['layers']:
        kwargs = dict(layer_spec.get('kwargs') or {})
        scale = layer_spec.get('init_scale')
        if scale is not None:
            initialiser = UniformInit(-scale, scale, rng=rng)
            kwargs['weights_initialiser'] = initialiser
            kwargs['biases_initialiser'] = initialiser
        cls = resolve_class(layer_spec['class'], layer_spec.get('source', 'mlp.layers'))
        layers.append(cls(**kwargs))
    return layers


def train_and_predict(recipe, resolve_class, train_inputs, train_targets, eval_inputs):
    """Trains the recipe's model and predicts on held-out inputs.

    Args:
        recipe: The recipe dict.
        resolve_class: Callable (class_name, source) -> class.
        train_inputs: Array (N, D) of training inputs.
        train_targets: Array (N, K) of one-of-k training targets.
        eval_inputs: Array (M, D) of inputs whose labels the trainer never sees.

    Returns:
        (eval_outputs (M, K), train_errors (num_epochs,)): the model's final
        outputs on `eval_inputs` and the mean training error of each epoch.
    """
    import mlp.errors
    from mlp.data_providers import DataProvider
    from mlp.learning_rules import GradientDescentLearningRule
    from mlp.models import MultipleLayerModel

    rng = np.random.RandomState(recipe['seed'])
    model = MultipleLayerModel(build_layers(recipe, resolve_class, rng))
    error = getattr(mlp.errors, recipe['error'])()
    learning_rule = GradientDescentLearningRule(recipe['learning_rate'])
    learning_rule.initialise(model.params)
    data = DataProvider(train_inputs, train_targets, recipe['batch_size'], rng=rng)
    train_errors = []
    for _ in range(recipe['num_epochs']):
        epoch_error, num_batches = 0., 0
        for inputs_batch, targets_batch in data:
            num_batches += 1
            activations = model.fprop(inputs_batch)
            epoch_error += error(activations[-1], targets_batch)
            grads = error.grad(activations[-1], targets_batch)
            learning_rule.update_params(model.grads_wrt_params(activations, grads))
        train_errors.append(epoch_error / num_batches if num_batches else float('nan'))
    eval_outputs = model.fprop(eval_inputs)[-1]
    return eval_outputs, np.array(train_errors, dtype=float)
