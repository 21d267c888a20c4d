"""The short training run behind 'training' checks, shared by parent and sandbox.

Runs in BOTH places, so it imports only numpy and whichever `mlp` is on the
path: inside the sandbox that is the student copy (with the student's class
passed in by the child runner); in the trusted parent it is the reference.
The parent copies this file into the sandbox next to the child runner.

A recipe is plain data:
    {"seed": int, "layers": [LAYER, ...], "learning_rate": float,
     "batch_size": int, "num_epochs": int, "error": name,
     "error_source": "mlp.errors" | "submission"        (optional),
     "learning_rule": PIECE                              (optional),
     "scheduler": PIECE                                  (optional)}
    LAYER = {"class": str, "source": "mlp.layers" | "submission",
             "kwargs": {...}, "init_scale": float | None,
             "penalties": {"weights_penalty": PIECE, ...}  (optional)}
    PIECE = {"class": str, "source": "mlp.<module>" | "submission", "kwargs": {...}}
(The parent adds "reference_source" to student pieces: the reference module
that stands for them in the reference run; the child ignores it.)

The model is trained with that error (e.g. `CrossEntropySoftmaxError`) and
the learning rule (gradient descent at `learning_rate` by default) on
shuffled mini-batches, every random choice drawn from one RandomState(seed).
A scheduler, when given, sets the rule's learning rate before every epoch
(`update_learning_rule(rule, epoch)`, epochs counted from 0). Layers with a
`stochastic` flag in fprop (dropout) run stochastically in training and
deterministically for the evaluation outputs, which are computed a training
batch at a time.
"""

import numpy as np


def _piece(piece, resolve_class, **extra):
    """Instantiates a PIECE (penalty, learning rule, scheduler) of the recipe."""
    cls = resolve_class(piece['class'], piece.get('source', 'mlp.layers'))
    kwargs = dict(piece.get('kwargs') or {})
    kwargs.update(extra)
    return cls(**kwargs)


def build_layers(recipe, resolve_class, rng):
    """Instantiates the recipe's layers.

    Args:
        recipe: The recipe dict (see module docstring).
        resolve_class: Callable (class_name, source) -> class.
        rng: RandomState for the affine layers' uniform initialisation (and
            the random choices of stochastic layers, which take an `rng`).

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
        for name, piece in sorted((layer_spec.get('penalties') or {}).items()):
            kwargs[name] = _piece(piece, resolve_class)
        if layer_spec.get('stochastic'):
            kwargs['rng'] = rng
        cls = resolve_class(layer_spec['class'], layer_spec.get('source', 'mlp.layers'))
        layers.append(cls(**kwargs))
    return layers


def _evaluation_outputs(model, recipe, eval_inputs):
    """The model's outputs on held-out inputs, stochastic layers in their deterministic mode.

    The inputs go through the model `batch_size` rows at a time, as the
    course's optimiser evaluates a data set batch by batch: the same outputs
    for layers that treat each row on its own, with temporaries the size of
    a training batch instead of the whole set's.

    Returns:
        Array (M, K): the final layer's outputs, rows in the order of `eval_inputs` (M, D).
    """
    stochastic = any(layer_spec.get('stochastic') for layer_spec in recipe['layers'])
    size = max(1, int(recipe['batch_size']))
    outputs = []
    for start in range(0, max(1, len(eval_inputs)), size):  # an empty set: one empty batch
        batch = eval_inputs[start:start + size]
        outputs.append(model.fprop(batch, evaluation=True)[-1] if stochastic else model.fprop(batch)[-1])
    return np.concatenate(outputs, axis=0)


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
    from mlp.data_providers import DataProvider
    from mlp.models import MultipleLayerModel

    rng = np.random.RandomState(recipe['seed'])
    model = MultipleLayerModel(build_layers(recipe, resolve_class, rng))
    error = _piece({'class': recipe['error'], 'source': recipe.get('error_source', 'mlp.errors')},
                   resolve_class)
    rule = recipe.get('learning_rule') or {
        'class': 'GradientDescentLearningRule', 'source': 'mlp.learning_rules',
        'kwargs': {'learning_rate': recipe['learning_rate']}}
    learning_rule = _piece(rule, resolve_class)
    learning_rule.initialise(model.params)
    scheduler = _piece(recipe['scheduler'], resolve_class) if recipe.get('scheduler') else None
    data = DataProvider(train_inputs, train_targets, recipe['batch_size'], rng=rng)
    train_errors = []
    for epoch in range(recipe['num_epochs']):
        if scheduler is not None:
            scheduler.update_learning_rule(learning_rule, epoch)
        epoch_error, num_batches = 0., 0
        for inputs_batch, targets_batch in data:
            num_batches += 1
            activations = model.fprop(inputs_batch)
            epoch_error += error(activations[-1], targets_batch)
            grads = error.grad(activations[-1], targets_batch)
            learning_rule.update_params(model.grads_wrt_params(activations, grads))
        train_errors.append(epoch_error / num_batches if num_batches else float('nan'))
    eval_outputs = _evaluation_outputs(model, recipe, eval_inputs)
    return eval_outputs, np.array(train_errors, dtype=float)
