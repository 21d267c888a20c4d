"""The oracle: answers computed with the reference framework in the grading parent.

TRUSTED. Imports the reference `mlp` (never a student copy: `reference_layer`
refuses a package that lacks the class) and the real MNIST files. Nothing
here runs student code.
"""

from __future__ import annotations

import functools

import numpy as np

from autograder.checks import recipes


class OracleError(Exception):
    """The reference framework or the data it needs is not available."""


def reference_layers_module():
    """Returns `mlp.layers` as imported by the grader (the reference; see `reference_layer`)."""
    import mlp.layers
    return mlp.layers


def reference_layer(class_name: str, init_kwargs: dict):
    """Builds a reference layer.

    Raises:
        OracleError: The imported `mlp` has no such class (e.g. the grader
            was started in a folder holding a student copy of `mlp`).
    """
    layers = reference_layers_module()
    cls = getattr(layers, class_name, None)
    if cls is None:
        raise OracleError(
            'the reference mlp.layers at {0} has no {1}: the grader must import the '
            'reference framework, not a student copy'.format(layers.__file__, class_name))
    return cls(**init_kwargs)


def one_sided_zero_inputs(inputs: np.ndarray, side: float) -> np.ndarray:
    """Replaces exact zeros by a tiny number of the given sign (for kinks at 0)."""
    nudged = np.array(inputs, dtype=float)
    nudged[nudged == 0.] = side * 1e-300
    return nudged


def leading_rows(npz_path, key: str, num_rows: int) -> np.ndarray:
    """The first rows of one array in an .npz file, read without loading the rest.

    The member is streamed: only its header and the first `num_rows` rows are
    decompressed (the full training split would cost about a second and
    100 MiB in every grading process). Falls back to loading the whole array
    for layouts it does not stream (Fortran order, object dtype).
    """
    import zipfile
    with zipfile.ZipFile(npz_path) as archive, archive.open(key + '.npy') as member:
        major, _ = np.lib.format.read_magic(member)
        read_header = (np.lib.format.read_array_header_1_0 if major == 1
                       else np.lib.format.read_array_header_2_0)
        shape, fortran_order, dtype = read_header(member)
        if not fortran_order and not dtype.hasobject and shape:
            rows = min(num_rows, shape[0])
            row_items = int(np.prod(shape[1:], dtype=np.int64))
            data = member.read(rows * row_items * dtype.itemsize)
            return np.frombuffer(data, dtype=dtype).reshape((rows,) + tuple(shape[1:]))
    with np.load(npz_path, allow_pickle=False) as arrays:
        return arrays[key][:num_rows]


@functools.lru_cache(maxsize=4)
def mnist_subset(num_train: int, num_eval: int):
    """Loads the training subset and held-out evaluation subset for training checks.

    Returns:
        (train_inputs (N, 784), train_targets one-of-k (N, 10), eval_inputs
        (M, 784), eval_labels (M,)), the first N training and first M
        validation images, as float64.

    Raises:
        OracleError: MNIST is not available; the message names the fix.
    """
    from mlp.data_providers import mnist_file
    try:
        train_path, valid_path = mnist_file('train'), mnist_file('valid')
    except FileNotFoundError as error:
        raise OracleError(str(error)) from error
    train_inputs = leading_rows(train_path, 'inputs', num_train).astype(float)
    train_labels = leading_rows(train_path, 'targets', num_train).astype(int)
    eval_inputs = leading_rows(valid_path, 'inputs', num_eval).astype(float)
    eval_labels = leading_rows(valid_path, 'targets', num_eval).astype(int)
    train_targets = np.zeros((num_train, 10))
    train_targets[np.arange(num_train), train_labels] = 1.
    return train_inputs, train_targets, eval_inputs, eval_labels


def _resolve_reference_class(class_name: str, source: str):
    return getattr(reference_layers_module(), class_name)


@functools.lru_cache(maxsize=32)
def _reference_run_cached(recipe_json: str, num_train: int, num_eval: int):
    import json
    recipe = json.loads(recipe_json)
    train_inputs, train_targets, eval_inputs, eval_labels = mnist_subset(num_train, num_eval)
    outputs, errors = recipes.train_and_predict(
        recipe, _resolve_reference_class, train_inputs, train_targets, eval_inputs)
    return float(np.mean(outputs.argmax(-1) == eval_labels)), tuple(errors)


def reference_training_run(recipe: dict, num_train: int, num_eval: int):
    """Runs a training recipe with reference classes only (cached per recipe).

    Returns:
        (accuracy on the evaluation subset, tuple of per-epoch training errors).
    """
    import json
    return _reference_run_cached(json.dumps(recipe, sort_keys=True), num_train, num_eval)
