"""Benchmark: grading the demo class, serially and in parallel, against running the notebook.

Writes the demo class of lab 3 (`autograder.demo.write_example_submissions`:
seven notebooks and one file that is not a notebook) into a temporary folder
and grades it twice into fresh grade directories: with one worker and with
two. Then it executes the instructor's solution notebook (the released
notebook with the solution filled in) top to bottom with nbclient, as a
grader that runs notebooks would, and prints how long that takes compared
with grading one submission.

The full-length notebook (Exercise 1 trains for 100 + 100 + 20 epochs on all
of MNIST) is tried first within FULL_RUN_BUDGET seconds; if it does not finish
in time it is stopped and the notebook is timed in smoke-test mode
(MLP_SMOKE_TEST=1: every training run of the helper cut to 2 epochs of 5
batches), and the output says so.

Usage (MNIST in $MLP_DATA_DIR or the shared folder):
    MLP_DATA_DIR=/path/to/mnist python benchmarks/grade_demo_class.py

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

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO_ROOT.parent / 'shared' / 'data' / 'mnist'
FULL_RUN_BUDGET = 180.0  # seconds allowed for the full-length notebook run
ASSIGNMENT = '03_multiple_layer_models'

_EXECUTE = '''
import sys
import nbformat
from nbclient import NotebookClient
notebook = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(notebook, timeout=None, kernel_name='python3', allow_errors=False,
               resources={'metadata': {'path': sys.argv[2]}}).execute()
'''


def machine_description() -> str:
    """Cores, platform, Python and numpy versions, sandbox isolation and current load."""
    import numpy

    from autograder.sandbox.isolation import detect_isolation
    usable = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    load = ', '.join('{0:.2f}'.format(x) for x in os.getloadavg())
    return ('machine: {0} cores ({1} usable), {2} {3}, Python {4}, numpy {5}, isolation {6}, '
            'load average {7}'.format(os.cpu_count(), usable, platform.system(), platform.machine(),
                                      platform.python_version(), numpy.__version__,
                                      detect_isolation(), load))


def _grade_here(folder: Path, out: Path, workers: int) -> None:
    """Grades every submission in `folder` into `out` and prints the timing as JSON."""
    from autograder import batch
    from autograder.course.spec import load_spec

    spec = load_spec(ASSIGNMENT, REPO_ROOT)
    submissions = batch.find_submissions([folder], spec.name)
    started = time.perf_counter()
    reports, _ = batch.grade_batch(spec, submissions, out, workers=workers, progress=False)
    seconds = time.perf_counter() - started
    graded = [r for r in reports if r.status == 'graded']
    print(json.dumps({'seconds': seconds, 'submissions': len(reports), 'graded': len(graded),
                      'mean_execution_time': sum(r.execution_time for r in graded) / max(1, len(graded))}))


def grade_class(folder: Path, out: Path, workers: int) -> dict:
    """Grades the class in a fresh interpreter, so every mode starts cold (no warm caches).

    Returns:
        {'seconds': wall time of grade_batch, 'submissions', 'graded',
         'mean_execution_time': mean report execution_time of graded notebooks}.
    """
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), '--grade', str(workers), str(folder), str(out)],
        capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError('grading failed:\n' + completed.stderr[-3000:])
    return json.loads(completed.stdout.strip().splitlines()[-1])


def execute_notebook(notebook: Path, smoke: bool, budget: float | None) -> float | None:
    """Runs a notebook top to bottom in a fresh kernel; seconds taken, or None past `budget`.

    The notebook runs in a copy of the released folder, so it imports the
    student copy of `mlp` next to it, as a student's notebook does.
    """
    with tempfile.TemporaryDirectory(prefix='mlp-bench-run-') as workdir:
        shutil.copytree(REPO_ROOT / 'release' / ASSIGNMENT / 'mlp', Path(workdir) / 'mlp')
        target = Path(workdir) / notebook.name
        shutil.copy(notebook, target)
        env = dict(os.environ, MLP_PROGRESS_BAR='0', OPENBLAS_NUM_THREADS='1')
        env.pop('MLP_SMOKE_TEST', None)
        if smoke:
            env['MLP_SMOKE_TEST'] = '1'
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, '-c', _EXECUTE, str(target), workdir], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        try:
            _, stderr = process.communicate(timeout=budget)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.communicate()
            return None
        if process.returncode != 0:
            raise RuntimeError('the notebook failed:\n' + stderr[-3000:])
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--skip-full', action='store_true',
                        help='do not try the full-length notebook run; time smoke-test mode only')
    parser.add_argument('--copies', type=int, default=1,
                        help='grade this many copies of the demo class (default 1: 8 submissions)')
    parser.add_argument('--grade', nargs=3, metavar=('WORKERS', 'FOLDER', 'OUT'),
                        help=argparse.SUPPRESS)  # internal: one grading run in a fresh interpreter
    args = parser.parse_args(argv)
    if not os.environ.get('MLP_DATA_DIR') and SHARED_MNIST.is_dir():
        os.environ['MLP_DATA_DIR'] = str(SHARED_MNIST)
    if args.grade:
        _grade_here(Path(args.grade[1]), Path(args.grade[2]), int(args.grade[0]))
        return 0

    from autograder.demo import write_example_submissions

    print(machine_description())
    with tempfile.TemporaryDirectory(prefix='mlp-bench-') as temp:
        temp = Path(temp)
        paths = write_example_submissions(REPO_ROOT, temp / 'submissions')
        for copy in range(2, args.copies + 1):
            for path in paths:
                shutil.copy(path, path.with_name('{0}-{1}{2}'.format(path.stem, copy, path.suffix)))
        serial_run = grade_class(temp / 'submissions', temp / 'serial', workers=1)
        parallel_run = grade_class(temp / 'submissions', temp / 'parallel', workers=2)
        count, graded = serial_run['submissions'], serial_run['graded']
        serial, parallel = serial_run['seconds'], parallel_run['seconds']
        print('demo class: {0} submissions ({1} graded, {2} rejected); each mode graded from a cold '
              'start in a fresh interpreter'.format(count, graded, count - graded))
        for label, seconds in (('grading serially (1 worker): ', serial),
                               ('grading with 2 workers:      ', parallel)):
            print('{0} {1:6.2f} s, {2:.2f} s per submission ({3:.2f} s per graded notebook)'.format(
                label, seconds, seconds / count, seconds / max(1, graded)))
        print('speed-up of 2 workers over 1: {0:.2f}x'.format(serial / parallel))
        print('mean grading time of one notebook (execution_time in its report, serial run): '
              '{0:.2f} s'.format(serial_run['mean_execution_time']))

        solution = temp / 'submissions' / 'alice_solution.ipynb'
        seconds, mode = None, 'full length'
        if not args.skip_full:
            seconds = execute_notebook(solution, smoke=False, budget=FULL_RUN_BUDGET)
            if seconds is None:
                print('executing the solution notebook at full length did not finish within '
                      '{0:.0f} s; stopped it'.format(FULL_RUN_BUDGET))
        if seconds is None:
            seconds, mode = execute_notebook(solution, smoke=True, budget=None), 'MLP_SMOKE_TEST=1'
        print('executing the solution notebook top to bottom with nbclient ({0}): {1:.2f} s'.format(
            mode, seconds))
        per_notebook = serial / max(1, graded)
        print('executing vs grading one notebook (serial): {0:.2f} s / {1:.2f} s = {2:.1f}x'.format(
            seconds, per_notebook, seconds / per_notebook))
    print('load average at the end: ' + ', '.join('{0:.2f}'.format(x) for x in os.getloadavg()))
    return 0


if __name__ == '__main__':
    sys.path.insert(0, str(REPO_ROOT))
    sys.exit(main())
