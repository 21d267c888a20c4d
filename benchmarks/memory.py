"""Benchmark: peak memory of grading one submission, and of a 500-submission batch.

Runs `mlp-autograde grade` as a user would and samples its process tree every
SAMPLE_SECONDS from /proc: each process's peak resident memory (VmHWM) and
the sum of the tree's proportional set sizes (PSS: shared pages split among
the processes sharing them).

1. One submission (the demo's `alice_solution`), 1 worker: the grader's own
   peak (it grades in-process) and the sandbox child's peak.
2. The soak class of tests/test_soak.py (default 500 submissions: correct,
   typical mistakes, hostile), N workers: the grader's peak (it only
   coordinates and writes), each worker's peak, the largest sandbox child's
   peak, and the peak of the whole tree at one moment (PSS). Also the growth of
   the grader's and the workers' resident memory between the first and last
   thirds of the run (a leak shows as growth).

Usage (MNIST in $MLP_DATA_DIR or ../shared/data/mnist):
    python benchmarks/memory.py [--class-size 500] [--workers 2]

Nothing is asserted; the numbers are printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO_ROOT.parent / 'shared' / 'data' / 'mnist'
ASSIGNMENT = '03_multiple_layer_models'
SAMPLE_SECONDS = 0.05
MIB = 1024 * 1024

sys.path.insert(0, str(REPO_ROOT / 'tests'))  # for procfs here, and test_soak in main()
from machine import load_average  # noqa: E402
from procfs import cmdline, memory_status, process_tree  # noqa: E402


def _pss(pid: int) -> int:
    """Proportional set size: resident memory with shared pages split among their sharers.

    Summed over a tree it does not count pages shared after fork() many times
    over (a fork bomb's thousands of children share almost all their memory).
    """
    try:
        with open('/proc/{0}/smaps_rollup'.format(pid)) as handle:
            for line in handle:
                if line.startswith('Pss:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class Profile:
    """Memory seen while a command ran."""

    seconds: float = 0.0
    peaks: dict[int, int] = field(default_factory=dict)  # pid -> VmHWM
    roles: dict[int, str] = field(default_factory=dict)  # pid -> grader | worker | sandbox | other
    tree_peak: int = 0  # largest sum of PSS over the tree at one sample
    grader_rss: list[int] = field(default_factory=list)
    worker_rss: dict[int, list[int]] = field(default_factory=dict)

    def peak(self, role: str) -> int:
        return max([value for pid, value in self.peaks.items() if self.roles.get(pid) == role] or [0])


def _role(command: str, parent: int, grader: int) -> str:
    """What a process is, from its command line (read again each sample: right after
    fork() a child still shows its parent's command line)."""
    if 'spawn_main' in command and parent == grader:
        return 'worker'
    if 'child_runner.py' in command and not command.startswith('bwrap'):
        return 'sandbox'
    return 'other'


def profile(command: list[str], env: dict[str, str]) -> Profile:
    """Runs `command` to completion, sampling the memory of its process tree."""
    result = Profile()
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
    result.roles[process.pid] = 'grader'
    while process.poll() is None:
        tree = process_tree(process.pid)
        total = _pss(process.pid)
        for pid, parent in tree.items():
            role = _role(cmdline(pid), parent, process.pid)
            if result.roles.get(pid, 'other') == 'other':
                result.roles[pid] = role
            status = memory_status(pid)
            total += _pss(pid)
            result.peaks[pid] = max(result.peaks.get(pid, 0), status.get('VmHWM', 0))
            if result.roles[pid] == 'worker':
                result.worker_rss.setdefault(pid, []).append(status.get('VmRSS', 0))
        grader = memory_status(process.pid)
        result.grader_rss.append(grader.get('VmRSS', 0))
        result.peaks[process.pid] = max(result.peaks.get(process.pid, 0), grader.get('VmHWM', 0))
        result.tree_peak = max(result.tree_peak, total)
        time.sleep(SAMPLE_SECONDS)
    result.seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError('{0} exited with {1}'.format(' '.join(command), process.returncode))
    return result


def growth(values: list[int]) -> int:
    """Largest value of the last third minus that of the first third, after a 10% warm-up."""
    steady = values[len(values) // 10:]
    if len(steady) < 3:
        return 0
    third = len(steady) // 3
    return max(steady[-third:]) - max(steady[:third])


def grade_command(out_dir: Path, workers: int, paths: list[Path]) -> list[str]:
    return [sys.executable, '-m', 'autograder', 'grade', '--assignment', ASSIGNMENT, '--out', str(out_dir),
            '--workers', str(workers), '--timeout', '8', '--no-progress'] + [str(p) for p in paths]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--class-size', type=int, default=500)
    parser.add_argument('--workers', type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    from autograder.demo import write_example_submissions
    from test_soak import write_soak_class

    work = Path(tempfile.mkdtemp(prefix='mlp-benchmark-'))
    env = dict(os.environ, TMPDIR=str(work))
    if 'MLP_DATA_DIR' not in env and SHARED_MNIST.is_dir():
        env['MLP_DATA_DIR'] = str(SHARED_MNIST)
    env.pop('MLP_COURSE_ROOT', None)
    print('machine: {0}, {1} cores; Python {2}; load average {3}'.format(
        platform.machine(), os.cpu_count(), platform.python_version(), load_average()))
    try:
        demo = write_example_submissions(REPO_ROOT, work / 'demo')
        one = profile(grade_command(work / 'grades-one', 1, [demo[0]]), env)
        print('one submission ({0}), 1 worker, {1:.1f} s: grader peak {2:.0f} MiB, sandbox child peak '
              '{3:.0f} MiB, whole tree peak {4:.0f} MiB (PSS)'.format(
                  demo[0].name, one.seconds, one.peak('grader') / MIB, one.peak('sandbox') / MIB,
                  one.tree_peak / MIB))
        kinds = write_soak_class(work / 'class', args.class_size)
        batch = profile(grade_command(work / 'grades-class', args.workers, [work / 'class']), env)
        print('{0} submissions, {1} workers, {2:.0f} s ({3:.2f} s each):'.format(
            len(kinds), args.workers, batch.seconds, batch.seconds / len(kinds)))
        print('  grader peak {0:.0f} MiB (growth first->last third {1:+.1f} MiB)'.format(
            batch.peak('grader') / MIB, growth(batch.grader_rss) / MIB))
        for pid, series in sorted(batch.worker_rss.items()):
            print('  worker {0}: peak {1:.0f} MiB (growth first->last third {2:+.1f} MiB)'.format(
                pid, batch.peaks.get(pid, 0) / MIB, growth(series) / MIB))
        print('  largest sandbox child peak {0:.0f} MiB; whole tree peak {1:.0f} MiB (PSS)'.format(
            batch.peak('sandbox') / MIB, batch.tree_peak / MIB))
        print('load average at end: {0}'.format(load_average()))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    raise SystemExit(main())
