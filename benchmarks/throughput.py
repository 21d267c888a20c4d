"""Benchmark: grading a class with `mlp-autograde grade` and with `nbgrader autograde`, equal work.

Both graders get exactly the same submissions (COUNT completed lab-3 notebooks: the released
notebook with the solution filled in, each under its own student id), in the same environment
(one BLAS thread on both sides: OPENBLAS_NUM_THREADS=1 reaches nbgrader's kernel too), each as
the whole command a user types, start-up included. nbgrader runs as shipped: the course's own
`nbgrader_config.py` (so its default cell timeout), a gradebook, and the student copy of `mlp/`
next to every submitted notebook, as README tells nbgrader users to set it up.

Two comparisons, each run RUNS times per side, taking turns (ours, nbgrader, ours, ...):

* full: nbgrader executes the notebooks as written (the training cells at full length);
* smoke: nbgrader's kernel gets MLP_SMOKE_TEST=1, README's advice to nbgrader users, which cuts
  every training cell to a few batches. Our grader does the same work in both modes (it never
  runs the notebook's experiments), so only the nbgrader side changes.

nbgrader grades one submission at a time, so the ratio that compares equal resources is ours at
1 worker against it; ours at N workers is printed beside, as what a user of this machine gets.
Min and median of the runs are printed for every figure, with the BLAS kernel and the load
average before and after: on a shared machine the load matters as much as the numbers.

Usage (MNIST in $MLP_DATA_DIR or ../shared/data/mnist):
    python benchmarks/throughput.py [--count 4] [--runs 3] [--workers N] [--modes smoke,full]

Nothing is asserted; the numbers are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from machine import blas_kernel, cpu_model, load_average

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO_ROOT.parent / 'shared' / 'data' / 'mnist'
ASSIGNMENT = '03_multiple_layer_models'
NOTEBOOK = '03_Multiple_layer_models.ipynb'


def completed_class(folder: Path, count: int) -> list[str]:
    """Writes `count` completed submissions (student_k.ipynb); returns the student ids."""
    sys.path.insert(0, str(REPO_ROOT))
    from autograder.demo import submission_notebook
    folder.mkdir(parents=True)
    students = ['student{0}'.format(k) for k in range(count)]
    for student in students:
        nbformat.write(submission_notebook(REPO_ROOT, ASSIGNMENT), str(folder / (student + '.ipynb')))
    return students


def ours(submissions: Path, out_dir: Path, workers: int, env: dict[str, str]) -> float:
    """Wall-clock seconds of `mlp-autograde grade` on a fresh grade directory."""
    command = [sys.executable, '-m', 'autograder', 'grade', '--assignment', ASSIGNMENT,
               '--out', str(out_dir), '--workers', str(workers), '--no-progress', str(submissions)]
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, cwd=out_dir.parent)
    seconds = time.perf_counter() - started
    summary = json.loads((out_dir / 'summary.json').read_text())
    if summary['graded_this_run'] != summary['submissions']:
        raise RuntimeError('{0} was not a fresh grade directory'.format(out_dir))
    return seconds


def nbgrader_course(work: Path, submissions: Path, students: list[str], env: dict[str, str]) -> Path:
    """An nbgrader course as README describes it, with every student's notebook submitted."""
    course = work / 'nbgrader-course'
    (course / 'source' / ASSIGNMENT).mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / 'source' / ASSIGNMENT / NOTEBOOK, course / 'source' / ASSIGNMENT / NOTEBOOK)
    shutil.copyfile(REPO_ROOT / 'nbgrader_config.py', course / 'nbgrader_config.py')  # root = its folder
    generated = subprocess.run([sys.executable, '-m', 'nbgrader', 'generate_assignment', ASSIGNMENT, '--force'],
                               cwd=course, env=env, capture_output=True, text=True)
    if generated.returncode != 0:
        raise RuntimeError('nbgrader generate_assignment failed:\n' + generated.stderr[-3000:])
    for student in students:
        folder = course / 'submitted' / student / ASSIGNMENT
        folder.mkdir(parents=True)
        shutil.copyfile(submissions / (student + '.ipynb'), folder / NOTEBOOK)
        shutil.copytree(REPO_ROOT / 'release' / ASSIGNMENT / 'mlp', folder / 'mlp')
    return course


def nbgrader(course: Path, env: dict[str, str]) -> float:
    """Wall-clock seconds of `nbgrader autograde` over the whole class (its autograded/ removed first)."""
    shutil.rmtree(course / 'autograded', ignore_errors=True)
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, '-m', 'nbgrader', 'autograde', ASSIGNMENT, '--create', '--force'],
                               cwd=course, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError('nbgrader autograde failed:\n' + completed.stderr[-3000:])
    return seconds


def spread(values: list[float]) -> str:
    return 'min {0:7.2f}  median {1:7.2f}'.format(min(values), statistics.median(values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--count', type=int, default=4, help='completed submissions in the class')
    parser.add_argument('--runs', type=int, default=3, help='runs of each configuration, on each side')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--modes', default='smoke,full', help='comma-separated: smoke, full')
    args = parser.parse_args()
    modes = [mode for mode in args.modes.split(',') if mode]

    work = Path(tempfile.mkdtemp(prefix='mlp-benchmark-'))
    env = dict(os.environ, OPENBLAS_NUM_THREADS='1')
    if 'MLP_DATA_DIR' not in env and SHARED_MNIST.is_dir():
        env['MLP_DATA_DIR'] = str(SHARED_MNIST)
    env.pop('MLP_COURSE_ROOT', None)
    # nbgrader runs `alembic` and its kernel from PATH: this environment's scripts first.
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    try:
        submissions = work / 'submissions'
        students = completed_class(submissions, args.count)
        course = nbgrader_course(work, submissions, students, env)
        print('machine: {0}, {1} cores, {2}; Python {3}'.format(
            platform.machine(), os.cpu_count(), cpu_model(), platform.python_version()))
        print('BLAS (both sides): {0}'.format(blas_kernel(env)))
        print('load average at start: {0}'.format(load_average()))
        print('class: {0} completed lab-3 submissions, the same files on both sides; {1} runs each\n'.format(
            args.count, args.runs))
        for mode in modes:
            nb_env = dict(env)
            nb_env.pop('MLP_SMOKE_TEST', None)
            if mode == 'smoke':
                nb_env['MLP_SMOKE_TEST'] = '1'
            timings = {'ours, 1 worker': [], 'ours, {0} workers'.format(args.workers): [], 'nbgrader': []}
            for run in range(args.runs):
                for workers in (1, args.workers):
                    out = work / 'grades-{0}-{1}-{2}'.format(mode, workers, run)
                    timings['ours, {0} worker{1}'.format(workers, '' if workers == 1 else 's')].append(
                        ours(submissions, out, workers, env))
                timings['nbgrader'].append(nbgrader(course, nb_env))
            print('{0} mode (nbgrader {1}); seconds per submission:'.format(
                mode, 'with MLP_SMOKE_TEST=1' if mode == 'smoke' else 'running the notebooks as written'))
            per_submission = {label: [s / args.count for s in values] for label, values in timings.items()}
            for label, values in per_submission.items():
                print('  {0:<22} {1}'.format(label, spread(values)))
            nb = per_submission['nbgrader']
            for label in list(per_submission)[:2]:
                mine = per_submission[label]
                print('  nbgrader / {0:<20} {1:5.1f}x (min / min)  {2:5.1f}x (median / median)'.format(
                    label, min(nb) / min(mine), statistics.median(nb) / statistics.median(mine)))
            print()
        print('load average at end: {0}'.format(load_average()))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    raise SystemExit(main())
