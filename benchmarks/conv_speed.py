"""Benchmark: one step of the reference ConvolutionalLayer, against PyTorch and an im2col loop.

One step = `fprop`, `bprop` and `grads_wrt_params` of a convolutional layer
on a batch of 100 MNIST-size images: 1 -> 8 channels, 5x5 kernels, 28x28
inputs, so outputs of shape (100, 8, 24, 24). Three implementations do the
same step (same inputs, kernels and output gradients):

* `reference`: `mlp.layers.ConvolutionalLayer`, what the grader runs;
* `im2col`: a minimal numpy loop written below for speed (patches copied
  into one (C K1 K2, N P) matrix, one matrix product per stage, col2im by
  K1 K2 slice additions): a practical floor for numpy;
* `torch`: `torch.nn.functional.conv2d` with autograd on the CPU (it computes
  a cross-correlation, so it gets the kernels rotated by 180 degrees), if
  PyTorch is installed; it is skipped with a note otherwise.

Everything runs on one thread (OPENBLAS_NUM_THREADS=1 and friends, set before
numpy loads; torch.set_num_threads(1)), in float64 and in float32. The
implementations take turns within each repeat, so that a change in the
machine's load hits all of them alike; the script prints the minimum and
median over the repeats, the ratios, and how far the results agree.

Usage (PyTorch in a separate environment; the reference framework on the path):
    PYTHONPATH=reference python benchmarks/conv_speed.py [--repeats 30]

Nothing is asserted. Target (issue 13): reference within 2x of PyTorch.
"""

from __future__ import annotations

import os

for _name in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_name, '1')

import argparse  # noqa: E402 - the thread settings must come before numpy loads
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from machine import cpu_model, load_average  # noqa: E402
from machine import blas_description  # noqa: E402
from training_speed import coretype_note  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO_ROOT.parent / 'shared' / 'data' / 'mnist'
BATCH_SIZE, IN_CHANNELS, OUT_CHANNELS, IMAGE_SIDE, KERNEL_SIDE = 100, 1, 8, 28, 5
SEED = 20161006


# --- data -----------------------------------------------------------------------------------


def image_batch(rng: np.random.RandomState) -> tuple[np.ndarray, str]:
    """The first 100 MNIST training images as (100, 1, 28, 28) float64, or random ones."""
    directory = Path(os.environ.get('MLP_DATA_DIR', SHARED_MNIST))
    path = directory / 'mnist-train.npz'
    if path.is_file():
        with np.load(path) as data:
            images = data['inputs'][:BATCH_SIZE].astype(np.float64)
        return images.reshape(BATCH_SIZE, IN_CHANNELS, IMAGE_SIDE, IMAGE_SIDE), str(path)
    shape = (BATCH_SIZE, IN_CHANNELS, IMAGE_SIDE, IMAGE_SIDE)
    return rng.uniform(0., 1., size=shape), 'uniform random (no {0})'.format(path)


# --- the three implementations ----------------------------------------------------------------


def reference_step(inputs, kernels, biases, grads_wrt_outputs):
    """Returns a function doing one fprop + bprop + grads_wrt_params of the reference layer."""
    from mlp.layers import ConvolutionalLayer
    layer = ConvolutionalLayer(IN_CHANNELS, OUT_CHANNELS, IMAGE_SIDE, IMAGE_SIDE,
                               KERNEL_SIDE, KERNEL_SIDE)
    layer.params = [kernels, biases]

    def step():
        outputs = layer.fprop(inputs)
        grads_wrt_inputs = layer.bprop(inputs, outputs, grads_wrt_outputs)
        grads_wrt_kernels, grads_wrt_biases = layer.grads_wrt_params(inputs, grads_wrt_outputs)
        return outputs, grads_wrt_inputs, grads_wrt_kernels, grads_wrt_biases
    return step


def im2col_step(inputs, kernels, biases, grads_wrt_outputs):
    """Returns a function doing the same step with a minimal hand-written im2col loop."""
    batch_size, channels, side_1, side_2 = inputs.shape
    maps, _, kernel_1, kernel_2 = kernels.shape
    out_1, out_2 = side_1 - kernel_1 + 1, side_2 - kernel_2 + 1

    def step():
        flipped = kernels[:, :, ::-1, ::-1].reshape(maps, -1)
        grads = grads_wrt_outputs.transpose(1, 0, 2, 3).reshape(maps, -1)
        columns = np.empty((channels, kernel_1, kernel_2, batch_size, out_1, out_2),
                           dtype=inputs.dtype)
        by_channel = inputs.transpose(1, 0, 2, 3)
        for p in range(kernel_1):
            for q in range(kernel_2):
                columns[:, p, q] = by_channel[:, :, p:p + out_1, q:q + out_2]
        columns = columns.reshape(channels * kernel_1 * kernel_2, -1)
        outputs = (flipped.dot(columns) + biases[:, None]).reshape(
            maps, batch_size, out_1, out_2).transpose(1, 0, 2, 3)
        grads_wrt_columns = flipped.T.dot(grads).reshape(
            channels, kernel_1, kernel_2, batch_size, out_1, out_2)
        grads_by_channel = np.zeros((channels, batch_size, side_1, side_2), dtype=inputs.dtype)
        for p in range(kernel_1):
            for q in range(kernel_2):
                grads_by_channel[:, :, p:p + out_1, q:q + out_2] += grads_wrt_columns[:, p, q]
        grads_wrt_kernels = grads.dot(columns.T).reshape(kernels.shape)[:, :, ::-1, ::-1]
        return (outputs, grads_by_channel.transpose(1, 0, 2, 3), grads_wrt_kernels,
                grads.sum(axis=1))
    return step


def torch_step(inputs, kernels, biases, grads_wrt_outputs):
    """Returns a function doing the same step with PyTorch's conv2d and autograd."""
    import torch
    torch.set_num_threads(1)
    inputs_t = torch.tensor(inputs, requires_grad=True)
    kernels_t = torch.tensor(np.ascontiguousarray(kernels[:, :, ::-1, ::-1]), requires_grad=True)
    biases_t = torch.tensor(biases, requires_grad=True)
    grads_t = torch.tensor(grads_wrt_outputs)

    def step():
        for tensor in (inputs_t, kernels_t, biases_t):
            tensor.grad = None
        outputs = torch.nn.functional.conv2d(inputs_t, kernels_t, biases_t)
        outputs.backward(grads_t)
        return (outputs.detach().numpy(), inputs_t.grad.numpy(),
                kernels_t.grad.numpy()[:, :, ::-1, ::-1], biases_t.grad.numpy())
    return step


def torch_description() -> str | None:
    """PyTorch's version and CPU capability, or None if it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    capability = getattr(torch.backends.cpu, 'get_cpu_capability', lambda: 'unknown')()
    return 'PyTorch {0}, CPU capability {1}, {2} thread(s)'.format(
        torch.__version__, capability, torch.get_num_threads())


# --- timing ---------------------------------------------------------------------------------


def time_in_turns(steps: dict, repeats: int) -> dict[str, list[float]]:
    """Runs each step once per repeat, in turn (after one warm-up run each); returns the times."""
    for step in steps.values():
        step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return times


def largest_difference(results, expected) -> float:
    """The largest relative difference between two steps' results (outputs and gradients)."""
    return max(float(np.max(np.abs(got - want)) / (np.max(np.abs(want)) or 1.))
               for got, want in zip(results, expected))


def run(dtype, repeats: int, have_torch: bool) -> None:
    rng = np.random.RandomState(SEED)
    images, _ = image_batch(rng)
    inputs = images.astype(dtype)
    kernels = rng.uniform(-0.1, 0.1, size=(OUT_CHANNELS, IN_CHANNELS, KERNEL_SIDE, KERNEL_SIDE))
    kernels = kernels.astype(dtype)
    biases = rng.uniform(-0.1, 0.1, size=OUT_CHANNELS).astype(dtype)
    out_side = IMAGE_SIDE - KERNEL_SIDE + 1
    grads_wrt_outputs = rng.normal(size=(BATCH_SIZE, OUT_CHANNELS, out_side, out_side))
    grads_wrt_outputs = grads_wrt_outputs.astype(dtype)
    steps = {'reference': reference_step(inputs, kernels, biases, grads_wrt_outputs),
             'im2col': im2col_step(inputs, kernels, biases, grads_wrt_outputs)}
    if have_torch:
        steps['torch'] = torch_step(inputs, kernels, biases, grads_wrt_outputs)
    expected = steps['reference']()
    times = time_in_turns(steps, repeats)

    print('\n{0}: one fprop + bprop + grads_wrt_params, {1} runs each'.format(
        np.dtype(dtype).name, repeats))
    print('  {0:<10} {1:>9} {2:>9}   {3}'.format('', 'min ms', 'median ms',
                                                 'max rel. difference from reference'))
    for name, values in times.items():
        difference = ('-' if name == 'reference'
                      else '{0:.1e}'.format(largest_difference(steps[name](), expected)))
        print('  {0:<10} {1:>9.2f} {2:>9.2f}   {3}'.format(
            name, 1e3 * min(values), 1e3 * statistics.median(values), difference))
    for other in [name for name in times if name != 'reference']:
        print('  reference / {0}: {1:.2f}x (min), {2:.2f}x (median)'.format(
            other, min(times['reference']) / min(times[other]),
            statistics.median(times['reference']) / statistics.median(times[other])))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=30, help='timed runs per implementation')
    args = parser.parse_args()
    torch_info = torch_description()
    _, data_source = image_batch(np.random.RandomState(SEED))
    print('machine: {0}, {1} CPU(s) (nproc), Python {2}, numpy {3}'.format(
        cpu_model(), os.cpu_count(), platform.python_version(), np.__version__))
    print('BLAS: {0}'.format(blas_description()))
    print(coretype_note())
    print(torch_info or 'PyTorch is not installed: the torch column is skipped '
          '(pip install torch in a separate environment to include it).')
    print('data: {0}'.format(data_source))
    print('layer: {0} images {1}x{2}x{2}, {3} kernels {4}x{4} -> outputs {3}x{5}x{5}'.format(
        BATCH_SIZE, IN_CHANNELS, IMAGE_SIDE, OUT_CHANNELS, KERNEL_SIDE,
        IMAGE_SIDE - KERNEL_SIDE + 1))
    print('load average at start: {0}'.format(load_average()))
    for dtype in (np.float64, np.float32):
        run(dtype, args.repeats, torch_info is not None)
    print('\nload average at end: {0}'.format(load_average()))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
