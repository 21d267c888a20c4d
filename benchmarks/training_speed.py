"""Benchmark: one training epoch of the reference `mlp`, against PyTorch and a hand-fused loop.

One epoch = one pass of gradient descent over the 50,000 MNIST training
images in batches of 100 (500 steps, learning rate 0.1, cross entropy of the
softmax), for two models:

* affine + softmax:         784 -> 10
* sigmoid MLP:              784 -> 100 -> sigmoid -> 100 -> sigmoid -> 10

Each model is trained by

* `reference`: the course framework (`mlp.optimisers.Optimiser.do_training_epoch`,
  exactly what a student's notebook runs), data from `MNISTDataProvider`;
* `fused`: a minimal numpy loop of the same maths written for speed (float64
  data converted once, transposes and temporaries kept to a minimum): the
  practical floor for numpy;
* `torch`: the same model, loss and plain SGD in PyTorch on the CPU, float64
  like the reference (and float32 for information), if PyTorch is installed.

All three use one BLAS thread (the grader's setting; set before numpy loads).
Each epoch is timed REPEATS times and the best time is kept. The script prints
the times, the ratios to the fused loop and to PyTorch, and which BLAS library
and kernel ran (OPENBLAS_CORETYPE, when set, forces an older kernel: see the
note printed).

Usage:
    MLP_DATA_DIR=/path/to/mnist python benchmarks/training_speed.py [--repeats 3]

Nothing is asserted. Targets (issue 6): reference no slower than PyTorch and
within 1.3x of the fused loop.
"""

from __future__ import annotations

import os

for _name in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_name, '1')

import argparse  # noqa: E402 - the thread settings must come before numpy loads
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from machine import blas_description, cpu_model, load_average  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO_ROOT.parent / 'shared' / 'data' / 'mnist'
BATCH_SIZE = 100
LEARNING_RATE = 0.1
INIT_SCALE = 0.1
SEED = 20161006
MODELS = {'affine+softmax': (784, 10), 'sigmoid 784-100-100-10': (784, 100, 100, 10)}


# --- the BLAS in use ----------------------------------------------------------------------


def coretype_note() -> str:
    forced = {name: os.environ[name] for name in ('OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE')
              if name in os.environ}
    if not forced:
        return 'OPENBLAS_CORETYPE not set: OpenBLAS picked the kernel for this CPU.'
    return ('{0} set in the environment: OpenBLAS was forced onto that kernel; unset both to '
            'benchmark the kernel a current numpy would pick.'.format(forced))


# --- data -----------------------------------------------------------------------------------


def mnist_provider(rng: np.random.RandomState):
    from mlp.data_providers import MNISTDataProvider
    return MNISTDataProvider('train', batch_size=BATCH_SIZE, rng=rng)


# --- reference ------------------------------------------------------------------------------


def reference_model(dims: tuple[int, ...], rng: np.random.RandomState):
    from mlp.initialisers import ConstantInit, UniformInit
    from mlp.layers import AffineLayer, SigmoidLayer
    from mlp.models import MultipleLayerModel
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        if index > 0:
            layers.append(SigmoidLayer())
        layers.append(AffineLayer(fan_in, fan_out, UniformInit(-INIT_SCALE, INIT_SCALE, rng=rng),
                                  ConstantInit(0.)))
    return MultipleLayerModel(layers)


def time_reference(dims: tuple[int, ...], repeats: int) -> float:
    from mlp.errors import CrossEntropySoftmaxError
    from mlp.learning_rules import GradientDescentLearningRule
    from mlp.optimisers import Optimiser
    rng = np.random.RandomState(SEED)
    optimiser = Optimiser(reference_model(dims, rng), CrossEntropySoftmaxError(),
                          GradientDescentLearningRule(LEARNING_RATE), mnist_provider(rng),
                          use_progress_bar=False)
    return best_of(repeats, optimiser.do_training_epoch)


# --- hand-fused numpy ------------------------------------------------------------------------


def time_fused(dims: tuple[int, ...], repeats: int) -> float:
    rng = np.random.RandomState(SEED)
    provider = mnist_provider(rng)
    inputs = provider.inputs.astype(np.float64)
    labels = provider.targets
    weights = [rng.uniform(-INIT_SCALE, INIT_SCALE, (fan_in, fan_out))  # stored as W^T
               for fan_in, fan_out in zip(dims[:-1], dims[1:])]
    biases = [np.zeros(fan_out) for fan_out in dims[1:]]
    rows = np.arange(BATCH_SIZE)

    def epoch() -> None:
        order = rng.permutation(inputs.shape[0])
        for start in range(0, inputs.shape[0], BATCH_SIZE):
            batch = order[start:start + BATCH_SIZE]
            activations = [inputs[batch]]
            for layer, (weight, bias) in enumerate(zip(weights, biases)):
                pre = activations[-1] @ weight
                pre += bias
                if layer < len(weights) - 1:
                    np.negative(pre, out=pre)
                    np.exp(pre, out=pre)
                    pre += 1.
                    np.reciprocal(pre, out=pre)
                activations.append(pre)
            logits = activations[-1]
            logits -= logits.max(axis=1, keepdims=True)
            np.exp(logits, out=logits)
            logits /= logits.sum(axis=1, keepdims=True)
            logits[rows, labels[batch]] -= 1.
            delta = logits
            delta *= LEARNING_RATE / BATCH_SIZE  # fold the step size into the output gradient
            for layer in range(len(weights) - 1, -1, -1):
                below = activations[layer]
                if layer > 0:
                    back = delta @ weights[layer].T
                    back *= below
                    back *= 1. - below
                weights[layer] -= below.T @ delta
                biases[layer] -= delta.sum(axis=0)
                if layer > 0:
                    delta = back

    return best_of(repeats, epoch)


# --- PyTorch ------------------------------------------------------------------------------------


def time_torch(dims: tuple[int, ...], repeats: int, dtype_name: str) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    dtype = getattr(torch, dtype_name)
    rng = np.random.RandomState(SEED)
    provider = mnist_provider(rng)
    inputs = torch.from_numpy(provider.inputs).to(dtype)
    labels = torch.from_numpy(provider.targets)
    torch.manual_seed(SEED)
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        if index > 0:
            layers.append(torch.nn.Sigmoid())
        linear = torch.nn.Linear(fan_in, fan_out, dtype=dtype)
        torch.nn.init.uniform_(linear.weight, -INIT_SCALE, INIT_SCALE)
        torch.nn.init.zeros_(linear.bias)
        layers.append(linear)
    model = torch.nn.Sequential(*layers)
    optimiser = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loss_function = torch.nn.CrossEntropyLoss()

    def epoch() -> None:
        order = torch.randperm(inputs.shape[0])
        for start in range(0, inputs.shape[0], BATCH_SIZE):
            batch = order[start:start + BATCH_SIZE]
            optimiser.zero_grad(set_to_none=True)
            loss = loss_function(model(inputs[batch]), labels[batch])
            loss.backward()
            optimiser.step()

    return best_of(repeats, epoch)


# --- driver ---------------------------------------------------------------------------------


def best_of(repeats: int, function) -> float:
    function()  # warm-up: first-touch of memory, lazy imports
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=3, help='timed epochs per trainer (best kept)')
    args = parser.parse_args()
    if 'MLP_DATA_DIR' not in os.environ and SHARED_MNIST.is_dir():
        os.environ['MLP_DATA_DIR'] = str(SHARED_MNIST)
    print('machine: {0}, {1} cores, {2}; Python {3}, numpy {4}'.format(
        platform.processor() or platform.machine(), os.cpu_count(), cpu_model(),
        platform.python_version(), np.__version__))
    print('BLAS: {0}'.format(blas_description()))
    print(coretype_note())
    print('load average at start: {0}'.format(load_average()))
    try:
        import torch
        print('PyTorch {0} ({1} thread)'.format(torch.__version__, 1))
    except ImportError:
        print('PyTorch not installed: its columns are skipped (pip install torch to add them).')
    print()
    print('{0:<24} {1:>10} {2:>10} {3:>10} {4:>10} {5:>11} {6:>11}'.format(
        'one epoch, batch 100', 'reference', 'fused', 'torch f64', 'torch f32', 'ref/fused', 'ref/torch'))
    for name, dims in MODELS.items():
        reference = time_reference(dims, args.repeats)
        fused = time_fused(dims, args.repeats)
        torch64 = time_torch(dims, args.repeats, 'float64')
        torch32 = time_torch(dims, args.repeats, 'float32')
        print('{0:<24} {1:>9.3f}s {2:>9.3f}s {3:>10} {4:>10} {5:>10.2f}x {6:>11}'.format(
            name, reference, fused, _seconds(torch64), _seconds(torch32), reference / fused,
            '{0:.2f}x'.format(reference / torch64) if torch64 else 'n/a'))
    print()
    print('load average at end: {0}'.format(load_average()))
    print('Targets: ref/fused <= 1.3x; ref/torch (float64) <= 1.0x.')
    return 0


def _seconds(value: float | None) -> str:
    return 'n/a' if value is None else '{0:.3f}s'.format(value)


if __name__ == '__main__':
    raise SystemExit(main())
