"""The oracle: answers computed with the reference framework in the grading parent.

TRUSTED. Imports the reference `mlp` (never a student copy: `reference_layer`
refuses a package that lacks the class) and the real MNIST files. Nothing
here runs student code.
"""

from __future__ import annotations

import functools

import numpy as np

from autograder.checks import recipes
from autograder.results import HarnessError


class OracleError(HarnessError):
    """The reference framework or the data it needs is not available (a harness failure)."""


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
    return reference_object('mlp.layers.' + class_name)(**init_kwargs)


#: Modules a spec may name as the home of a reference class or function.
REFERENCE_PREFIXES = ('mlp.', 'autograder.course.reference_functions.')


def reference_object(dotted: str):
    """The reference class or function at a dotted path ('mlp.errors.SumOfSquaredDiffsError').

    Raises:
        OracleError: The path is outside the reference modules, or names
            nothing there (e.g. the grader imported a student copy of mlp).
    """
    import importlib
    module_name, _, name = dotted.rpartition('.')
    if not any(dotted.startswith(prefix) for prefix in REFERENCE_PREFIXES) or not name:
        raise OracleError('{0!r} is not in a reference module ({1})'.format(
            dotted, ', '.join(REFERENCE_PREFIXES)))
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise OracleError('the reference module {0} cannot be imported: {1}'.format(
            module_name, error)) from error
    found = getattr(module, name, None)
    if found is None:
        raise OracleError(
            'the reference {0} at {1} has no {2}: the grader must import the '
            'reference framework, not a student copy'.format(
                module_name, getattr(module, '__file__', '?'), name))
    return found


def reference_path(target, default_module: str) -> str:
    """The dotted path of a target's reference: its spec's `reference`, else the kind's module."""
    return target.option('reference') or '{0}.{1}'.format(default_module, target.name)


def missing_references(spec) -> list[str]:
    """The targets of a spec whose reference the imported `mlp` lacks (a student copy?)."""
    from autograder.checks import registry
    missing = []
    for name, target in spec.targets.items():
        try:
            reference_object(reference_path(target, registry.planner_class(target.kind).reference_module))
        except OracleError:
            missing.append(name)
    return missing


def reference_instance(target, default_module: str):
    """A fresh reference instance of a class target built with the spec's kwargs (a function as is)."""
    found = reference_object(reference_path(target, default_module))
    return found(**target.kwargs) if isinstance(found, type) else found


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
        validation images, as float64, read-only (the same arrays for every
        call, and for every child: see `autograder.sandbox.shared_memory`).

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
    subset = (train_inputs, train_targets, eval_inputs, eval_labels)
    for array in subset:  # cached and shared with every child: never changed again
        array.flags.writeable = False
    return subset


def _resolve_reference_class(class_name: str, source: str):
    """A recipe's class in the reference run ('submission' was replaced by its reference module)."""
    module = source if source.startswith('mlp') else 'mlp.layers'
    return reference_object('{0}.{1}'.format(module, class_name))


def reference_recipe(recipe: dict) -> dict:
    """The recipe with every student piece replaced by its reference (`reference_source`)."""
    def swap(entry):
        if not isinstance(entry, dict):
            return entry
        entry = {key: swap(value) if isinstance(value, dict) else
                 [swap(v) for v in value] if isinstance(value, list) else value
                 for key, value in entry.items()}
        if entry.get('source') == 'submission':
            entry['source'] = entry.get('reference_source', 'mlp.layers')
        return entry
    return swap(recipe)


@functools.lru_cache(maxsize=32)
def _reference_run_cached(recipe_json: str, num_train: int, num_eval: int):
    import json
    recipe = json.loads(recipe_json)
    train_inputs, train_targets, eval_inputs, eval_labels = mnist_subset(num_train, num_eval)
    outputs, errors = recipes.train_and_predict(
        reference_recipe(recipe), _resolve_reference_class, train_inputs, train_targets, eval_inputs)
    return float(np.mean(outputs.argmax(-1) == eval_labels)), tuple(errors)


def reference_training_run(recipe: dict, num_train: int, num_eval: int):
    """Runs a training recipe with reference classes only (cached per recipe).

    Returns:
        (accuracy on the evaluation subset, tuple of per-epoch training errors).
    """
    import json
    return _reference_run_cached(json.dumps(recipe, sort_keys=True), num_train, num_eval)
