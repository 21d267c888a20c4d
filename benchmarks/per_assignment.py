"""Benchmark: the cost of grading one completed submission of every assignment.

For each assignment under source/, a class of COUNT copies of the completed submission (the
released notebook with the instructor's solution filled in) is graded by `grade_batch` at
1 worker and at N workers (default 2), in this process, RUNS times each. Beside it, in the same
run, the floor: a bare sandbox at the level the grader uses, starting Python and importing
numpy (`exec_untrusted` on `import numpy` with no requests). Each floor run starts COUNT such
sandboxes in a row and gives the mean, as a class run gives the mean over its COUNT submissions,
and the floor's runs are taken in turns with the 1-worker runs (the host's load drifts within
minutes), so that both sides are the same statistic under the same load. The ratios to it are
what issue 16 states its targets in (serial cost per submission at most 2.5x the floor), and
the per-submission time at N workers is issue 12's and 13's figure (under 1 s, lab 7 under 2 s).

Usage (MNIST in $MLP_DATA_DIR or ../shared/data/mnist):
    python benchmarks/per_assignment.py [--count 6] [--runs 2] [--workers 2] [--floor-runs 9]
                                        [--assignment NAME ...]

Nothing is asserted; the numbers are printed with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from machine import blas_kernel, cpu_model, load_average

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO_ROOT.parent / 'shared' / 'data' / 'mnist'


def bare_sandbox_seconds(spec, runs: int, block: int) -> tuple[list[float], str]:
    """(seconds per start of each run, isolation level) of sandboxes that only import numpy.

    A run is `block` starts one after another, timed together: the same statistic as a
    class run (a mean over its submissions), so that min/min compares like with like.
    """
    from autograder.sandbox.isolation import exec_untrusted
    seconds, level = [], ''
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(block):
            level = exec_untrusted('import numpy\n', [], student_mlp_dir=spec.student_mlp_dir).isolation
        seconds.append((time.perf_counter() - started) / block)
    return seconds, level


def min_median(values: list[float]) -> str:
    return '{0:.3f}/{1:.3f}'.format(min(values), statistics.median(values))


def class_seconds(spec, folder: Path, out_root: Path, workers: int, runs: int) -> list[float]:
    """Wall-clock seconds per submission of grading `folder` afresh, one figure per run."""
    from autograder import batch
    submissions = batch.find_submissions([folder], spec.name)
    per_submission = []
    for run in range(runs):
        out_dir = Path(tempfile.mkdtemp(prefix='grades-{0}-{1}-{2}-'.format(spec.name, workers, run),
                                        dir=out_root))  # a fresh folder: nothing to resume
        started = time.perf_counter()
        batch.grade_batch(spec, submissions, out_dir, workers=workers, progress=False)
        per_submission.append((time.perf_counter() - started) / len(submissions))
    return per_submission


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--count', type=int, default=6, help='completed submissions per class')
    parser.add_argument('--runs', type=int, default=2)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--floor-runs', type=int, default=9,
                        help='runs of the floor, each COUNT bare sandboxes in a row')
    parser.add_argument('--assignment', action='append', help='only these (repeatable)')
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
    if 'MLP_DATA_DIR' not in os.environ and SHARED_MNIST.is_dir():
        os.environ['MLP_DATA_DIR'] = str(SHARED_MNIST)
    from autograder.course.spec import list_assignments, load_spec
    from autograder.demo import submission_notebook

    print('machine: {0} cores, {1}; BLAS {2}'.format(os.cpu_count(), cpu_model(), blas_kernel()))
    print('load average at start: {0}'.format(load_average()))
    print('seconds as min/median; serial/floor as min/min and median/median')
    print('{0:<26} {1:>13} {2:>15} {3:>15} {4:>13}'.format(
        'assignment', 'floor s', '1 worker s/sub', '{0} workers s/sub'.format(args.workers),
        'serial/floor'))
    with tempfile.TemporaryDirectory(prefix='mlp-per-assignment-') as work:
        for name in args.assignment or list_assignments():
            spec = load_spec(name)
            folder = Path(work) / name
            folder.mkdir()
            notebook = submission_notebook(REPO_ROOT, name)
            for k in range(args.count):
                nbformat.write(notebook, str(folder / 'student{0}.ipynb'.format(k)))
            floor, serial, level = [], [], ''
            for run in range(args.runs):  # in turns, so that a change of load reaches both sides
                share = args.floor_runs // args.runs + (run < args.floor_runs % args.runs)
                seconds, used = bare_sandbox_seconds(spec, share, args.count)
                floor, level = floor + seconds, used or level
                serial += class_seconds(spec, folder, Path(work), 1, 1)
            parallel = class_seconds(spec, folder, Path(work), args.workers, args.runs)
            print('{0:<26} {1:>13} {2:>15} {3:>15} {4:>5.1f}x/{5:.1f}x  ({6}; {7} floor runs of {9}, {8} class runs)'.format(
                name, min_median(floor), min_median(serial), min_median(parallel),
                min(serial) / min(floor), statistics.median(serial) / statistics.median(floor),
                level, args.floor_runs, args.runs, args.count))
    print('load average at end: {0}'.format(load_average()))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
