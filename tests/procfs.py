"""Watching processes through /proc (Linux): trees, command lines, memory, survivors.

Used by the tests that check the grader leaves no process behind
(test_resume.py, test_sandbox.py, test_soak.py) and by benchmarks/memory.py,
which puts this folder on ``sys.path``. Every reader tolerates a process that
ends while it is being read: it answers as if the process were gone.

A process is named by its pid together with its kernel start time, since a pid
may be reused by a later process.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable


def stat_fields(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, or None if the process is gone.

    Field 0 is the state (``b'Z'`` for a zombie), field 1 the parent's pid,
    field 19 the start time in clock ticks since boot.
    """
    try:
        with open('/proc/{0}/stat'.format(pid), 'rb') as handle:
            return handle.read().rsplit(b')', 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid: int) -> str | None:
    """The kernel's start time of a live process, or None if it is gone or a zombie.

    Tells a process from a later one that reuses its pid.
    """
    fields = stat_fields(pid)
    return None if fields is None or fields[0] == b'Z' else fields[19].decode()


def cmdline(pid: int) -> str:
    """The command line of a process, arguments joined by spaces ('' if it is gone)."""
    try:
        with open('/proc/{0}/cmdline'.format(pid), 'rb') as handle:
            return handle.read().replace(b'\0', b' ').decode(errors='replace')
    except OSError:
        return ''


def memory_status(pid: int) -> dict[str, int]:
    """Resident memory of a process from ``/proc/<pid>/status``, in bytes.

    Returns:
        ``{'VmRSS': current, 'VmHWM': peak}``; a key is missing when the process
        is gone (empty dict) or is a zombie.
    """
    values = {}
    try:
        with open('/proc/{0}/status'.format(pid)) as handle:
            for line in handle:
                if line.startswith(('VmRSS:', 'VmHWM:')):
                    values[line.split(':')[0]] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return values


def process_tree(root: int) -> dict[int, int]:
    """Every live (not zombie) descendant of `root`: pid -> parent pid."""
    parents = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            fields = stat_fields(int(entry))
            if fields is not None and fields[0] != b'Z':
                parents[int(entry)] = int(fields[1])
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, stack = {}, [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found[child] = parents[child]
            stack.append(child)
    return found


def processes_with(fragment: str) -> list[int]:
    """The pids of every process whose command line contains `fragment`."""
    return [int(entry) for entry in os.listdir('/proc')
            if entry.isdigit() and fragment in cmdline(int(entry))]


def survivors(seen: dict[int, tuple[str, str]]) -> list[int]:
    """The pids of `seen` (pid -> (start time, command line)) that are still the same live process."""
    return [pid for pid, (start, _) in seen.items() if start_time(pid) == start]


def wait_until(condition: Callable[[], bool], seconds: float, interval: float = 0.05) -> bool:
    """Polls `condition` every `interval` seconds for up to `seconds`; returns its last answer."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


@contextlib.contextmanager
def descriptors_taken_below(number: int):
    """Holds every free descriptor below ``number`` open; yields the lowest free one from ``number`` on.

    The next descriptor the process makes (a pipe's read end, a memory file)
    gets the number yielded.
    """
    held = []
    try:
        while True:
            fd = os.open(os.devnull, os.O_RDONLY)
            if fd >= number:
                os.close(fd)
                break
            held.append(fd)
        yield fd
    finally:
        for fd in held:
            os.close(fd)
