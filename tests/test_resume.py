"""Killing the grader with SIGKILL mid-batch, then running the same command again.

The grader runs as `python -m autograder grade ...` in its own process
group, with TMPDIR pointing at a private folder. While it runs, the test
records every descendant process (workers, sandbox children, the janitor).
After the kill: no descendant survives, no temporary folder or `.tmp` file
remains, and every report present is whole. Re-running the same command
grades only what is missing, and the grade directory then equals that of an
uninterrupted run, apart from timing fields.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import batch
from autograder.batch import RUN_DIR_PREFIX
from autograder.demo import DEMO_ASSIGNMENT, write_example_submissions
from autograder.course.spec import default_course_root
from grade_dirs import comparable
from procfs import cmdline, process_tree, start_time, survivors, wait_until

DEADLINE_SECONDS = 240


def descendants(pid: int) -> dict[int, tuple[str, str]]:
    """Every live descendant of `pid`: pid -> (start time, command line)."""
    found = {}
    for child in process_tree(pid):
        start = start_time(child)
        if start is not None:
            found[child] = (start, cmdline(child))
    return found


@pytest.fixture(scope='module')
def a_class(tmp_path_factory):
    """The demo class twice over (16 submissions), so a kill lands mid-batch."""
    folder = tmp_path_factory.mktemp('class')
    for path in write_example_submissions(default_course_root(), folder):
        shutil.copyfile(path, folder / (path.stem + '_again' + path.suffix))
    return folder


def grade_command(submissions: Path, out_dir: Path, workers: int) -> list[str]:
    return [sys.executable, '-m', 'autograder', 'grade', '--assignment', DEMO_ASSIGNMENT,
            '--out', str(out_dir), '--workers', str(workers), '--no-progress', str(submissions)]


def environment(mnist_dir: Path, temp: Path) -> dict[str, str]:
    env = dict(os.environ, MLP_DATA_DIR=str(mnist_dir), TMPDIR=str(temp))
    env.pop('MLP_COURSE_ROOT', None)
    return env


@pytest.fixture(scope='module')
def uninterrupted(a_class, mnist_dir, tmp_path_factory, reachable_tmp):
    out_dir = tmp_path_factory.mktemp('uninterrupted') / 'grades'
    temp = reachable_tmp.mktemp('uninterrupted')
    subprocess.run(grade_command(a_class, out_dir, 2), env=environment(mnist_dir, temp), check=True,
                   stdout=subprocess.DEVNULL, timeout=DEADLINE_SECONDS)
    assert list(temp.iterdir()) == []
    return out_dir


@pytest.mark.parametrize('workers', [2, 1])
def test_sigkill_mid_batch_leaves_nothing_behind_and_a_rerun_completes_it(
        workers, a_class, uninterrupted, mnist_dir, tmp_path, reachable_tmp):
    out_dir = tmp_path / 'grades'
    temp = reachable_tmp.mktemp('interrupted')
    env = environment(mnist_dir, temp)
    grader = subprocess.Popen(grade_command(a_class, out_dir, workers), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    seen: dict[int, tuple[str, str]] = {}
    try:
        def some_reports_written() -> bool:
            seen.update(descendants(grader.pid))
            return grader.poll() is not None or len(list(out_dir.glob('*.json'))) >= 3

        assert wait_until(some_reports_written, DEADLINE_SECONDS)
        assert grader.poll() is None, 'the batch finished before it could be killed'
        os.kill(grader.pid, signal.SIGKILL)
        grader.wait()
    finally:
        if grader.poll() is None:
            os.killpg(grader.pid, signal.SIGKILL)
            grader.wait()
    commands = [command for _, command in seen.values()]
    assert any('child_runner.py' in command for command in commands), commands
    assert any(RUN_DIR_PREFIX in command and ' -c ' in command for command in commands), 'no janitor seen'
    if workers > 1:
        assert sum('multiprocessing' in command for command in commands) >= workers, commands

    assert wait_until(lambda: not survivors(seen), 20), 'processes outlived the grader: {0}'.format(
        [seen[pid][1] for pid in survivors(seen)])
    assert wait_until(lambda: list(temp.iterdir()) == [], 20), list(temp.rglob('*'))[:10]
    assert wait_until(lambda: not [p for p in out_dir.iterdir() if p.name.startswith('.')], 20)
    complete = []
    for report in out_dir.glob('*.json'):
        data = json.loads(report.read_text(encoding='utf-8'))  # whole, or this raises
        assert (out_dir / (report.stem + '.md')).is_file()
        complete.append(data['student'])
    total = len(list(a_class.glob('*.ipynb')))
    assert 0 < len(complete) < total
    assert not (out_dir / 'summary.json').exists()

    rerun = subprocess.run(grade_command(a_class, out_dir, workers), env=env, capture_output=True,
                           text=True, timeout=DEADLINE_SECONDS)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads((out_dir / 'summary.json').read_text())
    assert summary['graded_this_run'] == total - len(complete)
    assert comparable(out_dir) == comparable(uninterrupted)
    assert list(temp.iterdir()) == []



def test_the_janitor_kills_whatever_still_names_the_run_directory(tmp_path):
    """A sandbox process the kernel did not take down with the grader is swept by the janitor.

    (Seen for real: a bubblewrap SIGKILLed with its grader half-way through starting left
    its inner process waiting forever.) The stand-in straggler names the run directory on
    its command line, as every sandbox process does; a bystander that does not is spared.
    """
    run_dir = tmp_path / (RUN_DIR_PREFIX + 'test')
    run_dir.mkdir()
    out_dir = tmp_path / 'grades'
    out_dir.mkdir()
    sleeper = 'import time; time.sleep(120)'
    straggler = subprocess.Popen([sys.executable, '-c', sleeper, str(run_dir / 'mlp-sandbox-x' / 'runner')])
    bystander = subprocess.Popen([sys.executable, '-c', sleeper, str(tmp_path / 'elsewhere')])
    janitor = subprocess.Popen([sys.executable, '-I', '-S', '-c', batch._JANITOR_SOURCE, str(run_dir),
                                str(out_dir), batch._STALE_FILE.pattern], stdin=subprocess.PIPE)
    try:
        janitor.stdin.close()  # the grader is gone
        assert janitor.wait(timeout=30) == 0
        assert straggler.wait(timeout=10) == -signal.SIGKILL
        assert bystander.poll() is None
        assert not run_dir.exists()
    finally:
        for process in (straggler, bystander):
            if process.poll() is None:
                process.kill()
                process.wait()
