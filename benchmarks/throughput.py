"""Benchmark: grading throughput of `mlp-autograde grade`, against `nbgrader autograde`.

Measured side by side in one run, each as the command a user types, so that
start-up (interpreter, imports, worker processes, the sandbox) is included:

1. the demo class (`autograder.demo.write_example_submissions`: seven
   notebooks and one file that is not a notebook) graded with 1 worker and
   with N workers (default: the number of cores);
2. a larger class, the demo class repeated COPIES times, at 1 and N workers,
   for the steady-state rate once workers are warm;
3. the same completed lab-3 submission (the demo's `alice_solution`: the
   released notebook with the solution filled in, so its Exercise 1 and 2
   training cells run at full length, 100 + 100 + 20 epochs on all of MNIST)
   graded by `nbgrader autograde` in a temporary nbgrader course. A full-length
   run takes minutes, so ONE submission is graded and its time is the
   per-submission figure (every completed submission runs the same cells);
   the output says so.

It prints seconds per submission, submissions per minute and the ratios.
Targets (issue 6): at least 20x faster per submission than nbgrader, and
under 1 s per submission with 2 workers on 2 cores.

Usage (MNIST in $MLP_DATA_DIR or ../shared/data/mnist):
    python benchmarks/throughput.py [--workers N] [--copies 8] [--repeats 3] [--skip-nbgrader]

Nothing is asserted; the numbers are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model, load_average

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO_ROOT.parent / 'shared' / 'data' / 'mnist'
ASSIGNMENT = '03_multiple_layer_models'
NOTEBOOK = '03_Multiple_layer_models.ipynb'

_NBGRADER_CONFIG = '''c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = 'mlp-benchmark'
c.Execute.timeout = {timeout}
c.Execute.interrupt_on_timeout = True
'''


def grade(submissions: Path, out_dir: Path, workers: int, env: dict[str, str]) -> float:
    """Runs `mlp-autograde grade` and returns its wall-clock seconds."""
    command = [sys.executable, '-m', 'autograder', 'grade', '--assignment', ASSIGNMENT,
               '--out', str(out_dir), '--workers', str(workers), '--no-progress', str(submissions)]
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    summary = json.loads((out_dir / 'summary.json').read_text())
    if summary['graded_this_run'] != summary['submissions']:
        raise RuntimeError('{0} was not a fresh grade directory'.format(out_dir))
    return seconds


def nbgrader_autograde(notebook: Path, work: Path, env: dict[str, str], timeout: int) -> tuple[float, str]:
    """Grades one notebook with `nbgrader autograde` in a fresh course; (seconds, score text)."""
    course = work / 'nbgrader-course'
    (course / 'source' / ASSIGNMENT).mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / 'source' / ASSIGNMENT / NOTEBOOK, course / 'source' / ASSIGNMENT / NOTEBOOK)
    (course / 'nbgrader_config.py').write_text(_NBGRADER_CONFIG.format(root=str(course), timeout=timeout))
    nbgrader = [sys.executable, '-m', 'nbgrader']
    # nbgrader runs `alembic` (and the kernel) from PATH: put this environment's scripts first.
    env = dict(env, PATH=os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', ''))
    generated = subprocess.run(nbgrader + ['generate_assignment', ASSIGNMENT, '--force'], cwd=course,
                               env=env, capture_output=True, text=True)
    if generated.returncode != 0:
        raise RuntimeError('nbgrader generate_assignment failed:\n' + generated.stderr[-3000:])
    submitted = course / 'submitted' / 'alice' / ASSIGNMENT
    submitted.mkdir(parents=True)
    shutil.copyfile(notebook, submitted / NOTEBOOK)
    started = time.perf_counter()
    completed = subprocess.run(nbgrader + ['autograde', ASSIGNMENT, '--student', 'alice', '--create'],
                               cwd=course, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError('nbgrader autograde failed:\n' + completed.stderr[-3000:])
    score = subprocess.run(
        [sys.executable, '-c', 'from nbgrader.api import Gradebook\n'
         'with Gradebook("sqlite:///gradebook.db") as gb:\n'
         '    s = gb.find_submission({0!r}, "alice")\n'
         '    print("{{0:g}} / {{1:g}}".format(s.score, s.max_score))'.format(ASSIGNMENT)],
        cwd=course, env=env, capture_output=True, text=True).stdout.strip()
    return seconds, score or 'unknown'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--copies', type=int, default=8, help='repeats of the demo class for the larger class')
    parser.add_argument('--repeats', type=int, default=3, help='runs of each configuration (best kept)')
    parser.add_argument('--skip-nbgrader', action='store_true')
    parser.add_argument('--nbgrader-timeout', type=int, default=3600, help='seconds allowed per notebook cell')
    args = parser.parse_args()

    sys.path.insert(0, str(REPO_ROOT))
    from autograder.demo import write_example_submissions

    work = Path(tempfile.mkdtemp(prefix='mlp-benchmark-'))
    env = dict(os.environ)
    if 'MLP_DATA_DIR' not in env and SHARED_MNIST.is_dir():
        env['MLP_DATA_DIR'] = str(SHARED_MNIST)
    env.pop('MLP_COURSE_ROOT', None)
    try:
        demo = work / 'demo'
        paths = write_example_submissions(REPO_ROOT, demo)
        larger = work / 'larger'
        larger.mkdir()
        for copy in range(args.copies):
            for path in paths:
                shutil.copyfile(path, larger / '{0}_{1}{2}'.format(path.stem, copy, path.suffix))
        print('machine: {0}, {1} cores, {2}; Python {3}; load average {4}'.format(
            platform.machine(), os.cpu_count(), cpu_model(), platform.python_version(),
            load_average()))
        rows = []
        for label, folder, count in (('demo class', demo, len(paths)),
                                     ('demo class x{0}'.format(args.copies), larger, len(paths) * args.copies)):
            for workers in sorted({1, args.workers}):
                seconds = min(grade(folder, work / 'grades-{0}-{1}-{2}'.format(folder.name, workers, repeat),
                                    workers, env) for repeat in range(args.repeats))
                rows.append((label, count, workers, seconds))
        print()
        print('best of {0} runs each (the machine may be shared: the best run is the least disturbed)'.format(
            args.repeats))
        print('{0:<18} {1:>11} {2:>8} {3:>9} {4:>13} {5:>16}'.format(
            'mlp-autograde', 'submissions', 'workers', 'wall', 's/submission', 'submissions/min'))
        for label, count, workers, seconds in rows:
            print('{0:<18} {1:>11} {2:>8} {3:>8.1f}s {4:>13.2f} {5:>16.1f}'.format(
                label, count, workers, seconds, seconds / count, 60 * count / seconds))
        if args.skip_nbgrader:
            return 0
        print()
        print('nbgrader autograde: one full-length submission (the notebook\'s training cells as written); '
              'this takes minutes ...', flush=True)
        seconds, score = nbgrader_autograde(demo / 'alice_solution.ipynb', work, env, args.nbgrader_timeout)
        print('nbgrader autograde: {0:.1f} s for one submission (score {1}); per-submission time '
              'extrapolated to a class, since every completed submission runs the same cells.'.format(
                  seconds, score))
        print()
        print('{0:<40} {1:>12}'.format('per submission, nbgrader / mlp-autograde', 'ratio'))
        for label, count, workers, ours in rows:
            print('{0:<40} {1:>11.0f}x'.format('{0}, {1} worker(s)'.format(label, workers),
                                               seconds / (ours / count)))
        print()
        print('load average at end: {0}'.format(load_average()))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    raise SystemExit(main())
