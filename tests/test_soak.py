"""Soak: a class of 500 generated submissions graded by the command line, with two workers.

Slow (about five minutes on two cores), so marked `slow` and skipped by
default; run it with `pytest -m slow tests/test_soak.py`.

The class mixes correct solutions, typical mistakes and hostile notebooks
(fork bomb, memory hog, print flood, an endless loop, a sleeping grandchild,
`os._exit`, a kill of the parent, monkeypatched numpy, a file that is not a
notebook). While the grader runs, the test samples its process tree every
half second: the grader's and each worker's resident memory, the grader's
open file descriptors, and every descendant process. It checks that

* every submission has its report and feedback, and the class files list all;
* correct solutions score what the instructor's solution scores, the untouched
  release scores nothing, each mistake loses points (no interference between
  submissions graded side by side);
* memory stays flat: no growth between the first and last thirds of the run
  beyond a small allowance, for the grader and for each worker;
* the grader's open file descriptors stay stable;
* nothing is left: no descendant process outlives the grader and the private
  TMPDIR is empty.

`write_soak_class` and `sample_run` are also used by benchmarks/memory.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from autograder.demo import DEMO_ASSIGNMENT, _with_solution, solution_source, write_example_submissions
from autograder.course.spec import default_course_root
from procfs import cmdline, memory_status, process_tree, start_time, survivors, wait_until

pytestmark = pytest.mark.slow

CLASS_SIZE = 500
WORKERS = 2
#: Wall-clock seconds per sandboxed run (`--timeout`): the endless loops end soon, while a
#: correct submission (under a second on an idle machine) has room on a busy one.
SANDBOX_TIMEOUT = 20
#: Allowed growth of resident memory between the first and last thirds of the run.
GRADER_GROWTH_BYTES = 24 * 1024 * 1024
WORKER_GROWTH_BYTES = 48 * 1024 * 1024
#: Allowed spread of the grader's open file descriptors once the workers run.
FD_SPREAD = 8

# A later cell that redefines one class, as students do; each is hostile in its own way.
_HOSTILE_CELLS = {
    'fork_bomb': '''class TanhLayer(TanhLayer):
    import os as _os, time as _time
    for _ in range(2000):
        try:
            if _os.fork() == 0:
                _time.sleep(60)
                _os._exit(0)
        except OSError:
            break
''',
    'memory_hog': '''class ReluLayer(ReluLayer):
    def fprop(self, inputs):
        hog = [np.empty(1 << 26) for _ in range(64)]
        return np.maximum(inputs, 0.)
''',
    'print_flood': '''class TanhLayer(TanhLayer):
    def fprop(self, inputs):
        for _ in range(2000):
            print('x' * 10000)
        return np.tanh(inputs)
''',
    'endless_loop': '''class ReluLayer(ReluLayer):
    while True:
        pass
''',
    'grandchild': '''class TanhLayer(TanhLayer):
    import subprocess as _subprocess
    _sleeper = _subprocess.Popen(['sleep', '600'], start_new_session=True)
''',
    'exit_early': '''class ReluLayer(ReluLayer):
    import os as _os
    _os._exit(0)
''',
    'kill_parent': '''class TanhLayer(TanhLayer):
    import os as _os, signal as _signal
    _os.kill(_os.getppid(), _signal.SIGKILL)
''',
    'patch_numpy': '''np.allclose = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
class ReluLayer(ReluLayer):
    def fprop(self, inputs):
        return inputs
''',
}

_MISTAKE_STEMS = ('carol_tanh_bprop_slip', 'dave_relu_abs', 'erin_relu_forgot_grads')

#: The endless loop costs a whole sandbox timeout, so it is rarer: every 100th student.
_RARE = 'endless_loop'
#: One period of the class: every 25 students, in this order.
_PATTERN = (['solution'] * 9 + ['untouched', 'moved'] + list(_MISTAKE_STEMS) * 2
            + [name for name in sorted(_HOSTILE_CELLS) if name != _RARE] + ['not_a_notebook'])
#: Hostile notebooks whose attack breaks their own code (the others may score full marks).
_SELF_DEFEATING = ('memory_hog', 'endless_loop', 'exit_early', 'patch_numpy')


def kind_of(index: int) -> str:
    """The kind of the index-th submission of the soak class."""
    if index % 100 == 57:
        return _RARE
    return _PATTERN[index % len(_PATTERN)]


def write_soak_class(folder: Path, count: int = CLASS_SIZE) -> dict[str, str]:
    """Writes `count` submissions into `folder`.

    Returns:
        student id -> kind ('solution', 'untouched', 'moved', a mistake's demo
        stem, a hostile cell's name, or 'not_a_notebook').
    """
    folder.mkdir(parents=True, exist_ok=True)
    course_root = default_course_root()
    demo = folder / '.demo'
    write_example_submissions(course_root, demo)
    release = course_root / 'release' / DEMO_ASSIGNMENT / '03_Multiple_layer_models.ipynb'
    student = nbformat.read(str(release), as_version=4)
    solution = solution_source(course_root)
    base = {
        'solution': nbformat.read(str(demo / 'alice_solution.ipynb'), as_version=4),
        'untouched': student,
        'moved': nbformat.read(str(demo / 'frank_moved_cells.ipynb'), as_version=4),
    }
    for stem in _MISTAKE_STEMS:
        base[stem] = nbformat.read(str(demo / (stem + '.ipynb')), as_version=4)
    for name, cell in _HOSTILE_CELLS.items():
        base[name] = _with_solution(student, solution, cell)
    kinds = {}
    for index in range(count):
        kind = kind_of(index)
        name = 's{0:03d}_{1}'.format(index, kind)
        path = folder / (name + '.ipynb')
        if kind == 'not_a_notebook':
            path.write_bytes(os.urandom(64 + index))
        else:
            notebook = nbformat.from_dict(base[kind])
            notebook.cells.insert(0, nbformat.v4.new_markdown_cell('Student {0}'.format(index)))
            nbformat.write(notebook, str(path))
        kinds[name] = kind
    for path in demo.iterdir():
        path.unlink()
    demo.rmdir()
    return kinds


# --- sampling a process tree -------------------------------------------------------------


@dataclass
class Sampled:
    """What `sample_run` saw."""

    returncode: int
    seconds: float
    times: list[float] = field(default_factory=list)
    grader_rss: list[int] = field(default_factory=list)
    tree_rss: list[int] = field(default_factory=list)
    grader_fds: list[int] = field(default_factory=list)
    worker_rss: dict[int, list[tuple[float, int]]] = field(default_factory=dict)
    seen: dict[int, tuple[str, str]] = field(default_factory=dict)  # pid -> (start time, command)
    stderr: str = ''

    def survivors(self) -> list[str]:
        """Command lines of recorded descendants that are still alive."""
        return [self.seen[pid][1] for pid in survivors(self.seen)]


def sample_run(command: list[str], env: dict[str, str], interval: float = 0.5,
               timeout: float = 1800) -> Sampled:
    """Runs `command`, sampling its process tree every `interval` seconds until it ends."""
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    sampled = Sampled(returncode=-1, seconds=0.0)
    stderr_chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: stderr_chunks.append(process.stderr.read()), daemon=True)
    reader.start()
    try:
        while process.poll() is None:
            now = time.monotonic() - started
            if now > timeout:
                raise TimeoutError('the grader did not finish within {0} s'.format(timeout))
            tree = process_tree(process.pid)
            for pid in tree:
                if pid not in sampled.seen:
                    start = start_time(pid)
                    if start is not None:
                        sampled.seen[pid] = (start, cmdline(pid))
            try:
                fds = len(os.listdir('/proc/{0}/fd'.format(process.pid)))
            except OSError:
                break
            sampled.times.append(now)
            sampled.grader_rss.append(memory_status(process.pid).get('VmRSS', 0))
            sampled.grader_fds.append(fds)
            total = sampled.grader_rss[-1]
            for pid, parent in tree.items():
                rss = memory_status(pid).get('VmRSS', 0)
                total += rss
                if parent == process.pid and 'spawn_main' in sampled.seen.get(pid, ('', ''))[1]:
                    sampled.worker_rss.setdefault(pid, []).append((now, rss))
            sampled.tree_rss.append(total)
            time.sleep(interval)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
        process.wait()
        reader.join(timeout=10)
    sampled.returncode = process.returncode
    sampled.seconds = time.monotonic() - started
    sampled.stderr = b''.join(stderr_chunks).decode(errors='replace')
    return sampled


def growth(values: list[int]) -> int:
    """Largest value of the last third minus largest value of the first third (after warm-up)."""
    steady = values[len(values) // 10:]
    third = max(1, len(steady) // 3)
    return max(steady[-third:]) - max(steady[:third])


# --- the soak ------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def soak(tmp_path_factory, mnist_dir, reachable_tmp):
    root = tmp_path_factory.mktemp('soak')
    kinds = write_soak_class(root / 'class')
    temp = reachable_tmp.mktemp('soak')
    env = dict(os.environ, MLP_DATA_DIR=str(mnist_dir), TMPDIR=str(temp))
    env.pop('MLP_COURSE_ROOT', None)
    out_dir = root / 'grades'
    command = [sys.executable, '-m', 'autograder', 'grade', '--assignment', DEMO_ASSIGNMENT,
               '--out', str(out_dir), '--workers', str(WORKERS), '--timeout', str(SANDBOX_TIMEOUT),
               '--no-progress', str(root / 'class')]
    sampled = sample_run(command, env)
    print('\nsoak: {0} submissions in {1:.0f} s with {2} workers ({3:.2f} s each); '
          'grader RSS {4:.0f}-{5:.0f} MiB; tree peak {6:.0f} MiB'.format(
              len(kinds), sampled.seconds, WORKERS, sampled.seconds / len(kinds),
              min(sampled.grader_rss) / 2**20, max(sampled.grader_rss) / 2**20,
              max(sampled.tree_rss) / 2**20))
    return kinds, out_dir, temp, sampled


def test_the_grader_succeeds_and_every_submission_has_its_files(soak):
    kinds, out_dir, _, sampled = soak
    assert sampled.returncode == 0, sampled.stderr[-3000:]
    for student in kinds:
        report = json.loads((out_dir / (student + '.json')).read_text(encoding='utf-8'))
        assert report['student'] == student
        assert (out_dir / (student + '.md')).is_file()
    rows = (out_dir / 'grades.csv').read_text(encoding='utf-8').splitlines()[1:]
    assert sorted(row.split(',')[0] for row in rows) == sorted(kinds)
    summary = json.loads((out_dir / 'summary.json').read_text(encoding='utf-8'))
    assert summary['submissions'] == summary['graded_this_run'] == len(kinds)


def test_scores_do_not_depend_on_what_was_graded_alongside(soak):
    kinds, out_dir, _, _ = soak
    scores = {student: json.loads((out_dir / (student + '.json')).read_text())['score'] for student in kinds}
    full = {scores[s] for s, kind in kinds.items() if kind in ('solution', 'moved')}
    assert len(full) == 1 and full.pop() > 0, 'correct solutions scored differently'
    best = max(scores.values())
    for student, kind in kinds.items():
        if kind in ('untouched', 'not_a_notebook'):
            assert scores[student] == 0, student
        elif kind in _MISTAKE_STEMS or kind in _SELF_DEFEATING:
            assert scores[student] < best, student
        else:
            assert scores[student] <= best, student


def test_memory_stays_flat(soak):
    _, _, _, sampled = soak
    assert len(sampled.grader_rss) >= 30, 'too few samples to judge'
    assert growth(sampled.grader_rss) < GRADER_GROWTH_BYTES, [r // 2**20 for r in sampled.grader_rss[::10]]
    workers = [series for series in sampled.worker_rss.values() if len(series) >= 30]
    assert len(workers) == WORKERS
    for series in workers:
        rss = [value for _, value in series]
        assert growth(rss) < WORKER_GROWTH_BYTES, [r // 2**20 for r in rss[::10]]


def test_open_file_descriptors_stay_stable(soak):
    _, _, _, sampled = soak
    fds = sampled.grader_fds
    steady = fds[len(fds) // 10:len(fds) - len(fds) // 20]  # workers running: not start-up, not shut-down
    assert max(steady) - min(steady) <= FD_SPREAD, steady


def test_nothing_is_left_behind(soak):
    _, out_dir, temp, sampled = soak
    assert any('child_runner.py' in command for _, command in sampled.seen.values())
    assert wait_until(lambda: not sampled.survivors(), 20, interval=0.1), sampled.survivors()
    assert wait_until(lambda: list(temp.iterdir()) == [], 20, interval=0.1), list(temp.iterdir())
    assert not [path.name for path in out_dir.iterdir() if path.name.startswith('.')]
