"""Run untrusted student code in an isolated child process and collect plain-data answers.

Runs TRUSTED (in the grading parent). This module holds the project's one
unsafe entry point, :func:`exec_untrusted`: the only place where code that
came from a submission is executed, and only ever in a child process.

The parent never imports, execs or unpickles anything from the child. It
sends requests (JSON header + float64 arrays, see :mod:`autograder.sandbox.wire`) on
the child's stdin, reads one response frame per request from a separate pipe,
and validates every frame (type, id, counts, dtype float64, shapes, byte
lengths) before handing it on. The child runs ``child_runner.py`` under a
fresh interpreter (``python -I -S -B``) with a scrubbed environment, an empty
working directory, resource limits, its own process group and
``PR_SET_PDEATHSIG``, inside the strongest isolation the machine offers:

* ``bwrap``: bubblewrap with new pid, network, ipc and uts namespaces, a
  read-only view of only the system libraries, the interpreter and its
  standard library, numpy, the runner and the student copy of ``mlp``, with
  every package folder emptied, whatever the install layout (see
  :mod:`autograder.sandbox.host_view`); a private, size-capped /tmp and
  working directory (the only writable places), and an unprivileged uid (65534).
* ``unshare``: ``unshare`` with user, pid, network and mount namespaces (no
  network, no view of other processes; the file system is NOT hidden).
* ``rlimits``: a plain child process with resource limits only.

A child that crashes or overruns a deadline is killed (whole process group)
and replaced by a fresh one for the remaining requests, at most
``Limits.max_restarts`` times.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.util
import json
import logging
import os
import py_compile
import queue
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from autograder.results import HarnessError
from autograder.sandbox import answers, host_view, shared_memory, wire
from autograder.sandbox.limits import Limits

logger = logging.getLogger(__name__)

#: Isolation levels, strongest first.
ISOLATION_LEVELS = ("bwrap", "unshare", "rlimits")

#: The uid/gid the child runs as where the grader is root ("nobody" on most systems).
SANDBOX_UID = 65534

#: Environment variable naming the strongest isolation level to use (default: the strongest).
ISOLATION_ENV = "MLP_SANDBOX_ISOLATION"

_SETPRIV = "/usr/bin/setpriv"

#: Largest response header accepted from the child (bytes).
MAX_RESPONSE_HEADER_BYTES = 8 * 1024 * 1024

#: Messages that come from the child are cut to this many characters.
MAX_MESSAGE_CHARS = 4000

#: A setup reply listing more names or statement errors than this is malformed
#: (the runner caps both at 2000), as is a name longer than MAX_NAME_CHARS.
MAX_SETUP_ITEMS = 2000
MAX_NAME_CHARS = 1000

#: Size of each writable tmpfs under bwrap (its /tmp and its working
#: directory), so that a submission can fill neither the host's disk nor much
#: of its memory.
SANDBOX_TMPFS_BYTES = 64 * 1024 * 1024

#: Characters that could corrupt a report or the terminal showing it: C0 and
#: C1 controls other than tab and newline, and bidirectional overrides.
_UNSAFE_CHARACTERS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

#: Where things appear inside the bwrap sandbox.
_BWRAP_ROOT = "/sandbox"

# The files the child runs, relative to the autograder package; copied flat into its runner folder.
_RUNNER_FILES = ("sandbox/child_runner.py", "sandbox/wire.py", "checks/recipes.py")
#: Starts child_runner.py as a module, not as a script, so that it too runs from
#: the bytecode `_SandboxDirs` placed beside it (a script is always compiled anew).
_RUNNER_BOOTSTRAP = ("import importlib.util, sys; "
                     "spec = importlib.util.spec_from_file_location('child_runner', sys.argv[1]); "
                     "runner = importlib.util.module_from_spec(spec); spec.loader.exec_module(runner); "
                     "sys.exit(runner.main(sys.argv[1:]))")
# The child's malloc keeps what it frees: arrays under 4 MiB come from the heap, not from a
# fresh mmap, and the heap is not given back to the system on every free. Training allocates
# and frees the same few hundred-kB temporaries thousands of times; with glibc's defaults each
# one is a new mapping whose pages fault in again, which made a short training run 1.7x slower.
# The peak memory (what the limits bound) is unchanged.
CHILD_MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=268435456"

# Requests sent ahead of the reply in hand (see _Child.send_ahead): enough that the child
# never waits for the parent's round trip, few enough to bound what sits in the pipe.
PIPELINE_DEPTH = 32
_PR_SET_PDEATHSIG = 1
_SHELL_INIT = '"$@"; exit $?'  # keeps the shell as pid 1 so the runner's exit signal is reported


# --------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------


class SandboxUnavailable(HarnessError):
    """No sandboxed child could be started: a failure of the machine, never of a submission."""


@dataclass
class Request:
    """One request for the child.

    Attributes:
        header: The request header, e.g. ``{"type": "call", "id": "tanh-1",
            "target": "TanhLayer", "method": "fprop", "args": [{"array": 0}]}``
            (see :mod:`autograder.sandbox.child_runner` for all keys). Must have a
            unique string ``"id"`` and a ``"type"`` of ``"call"``, ``"sequence"`` or ``"train"``.
        arrays: The arrays the header refers to by index; sent as float64.
        timeout: Wall-clock seconds allowed for this request, or None for
            ``Limits.request_seconds`` (e.g. a training run may need longer).
        hidden: Its arrays are secret (the inputs of a hidden test case).
            :func:`exec_untrusted` answers every non-hidden request before
            the first hidden one is sent, and marks every response the
            sandbox gives from then on as ``tainted``.
        shared: Its arrays are the same large, read-only, public data for
            every submission (the training set): they reach the child in
            sealed memory files (:mod:`autograder.sandbox.shared_memory`)
            instead of the pipe, where the system allows. The child sees
            the same arrays either way.
    """

    header: dict
    arrays: list[np.ndarray] = field(default_factory=list)
    timeout: float | None = None
    hidden: bool = False
    shared: bool = False

    @property
    def id(self) -> str:
        return self.header["id"]


@dataclass
class StatementError:
    """A top-level statement of the submission that raised an exception.

    Attributes:
        line: Line number of the statement in the extracted source.
        error: ``"ExceptionType: message"``.
    """

    line: int
    error: str


@dataclass
class SetupResult:
    """How loading the submission in the child went.

    Attributes:
        ok: False if the source could not be parsed or the child could not be
            started or did not finish loading it (crash, timeout, bad reply).
        errors: Top-level statements that raised (loading carried on).
        names: Top-level names the submission defined: "class", "function"
            or "other".
        message: A sentence describing the outcome.
    """

    ok: bool
    errors: list[StatementError] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    message: str = ""


@dataclass
class Response:
    """The validated answer to one request.

    Attributes:
        id: The request id.
        status: ``"ok"`` (the child answered with valid arrays), ``"error"``
            (the student's code raised or returned something unusable, the
            reply was malformed, or the request could not be run),
            ``"timeout"`` or ``"crashed"`` (the child died).
        header: The child's validated response header (empty if none).
            For ``"ok"``: ``returned`` ("array" | "list" | "scalar"),
            ``num_returned``, ``num_inputs``. For a student error: ``error``,
            ``error_kind``, ``traceback``.
        arrays: float64 arrays: the returned ones followed by the inputs as
            they were after the call (when the request asked for them).
        message: For anything but ``"ok"``, what happened, in a sentence.
        tainted: The answer was given after hidden inputs had reached the
            sandbox (this request's or an earlier one's), so every word of it
            (message, error, traceback) may carry them: show none of them.
        seconds: Wall-clock seconds the child had the request: from when it
            could start on it (its sending, or the reply to the request
            before it, whichever came later) to its answer, measured by the
            parent (0 for a request that was never sent).
    """

    id: str
    status: str
    header: dict = field(default_factory=dict)
    arrays: list[np.ndarray] = field(default_factory=list)
    message: str = ""
    tainted: bool = False
    seconds: float = 0.0

    @property
    def returned(self) -> list[np.ndarray]:
        """The arrays the method returned (empty unless status is "ok")."""
        return self.arrays[: self.header.get("num_returned", 0)] if self.status == "ok" else []

    @property
    def inputs_after(self) -> list[np.ndarray]:
        """The array arguments as they were after the call (if requested)."""
        if self.status != "ok":
            return []
        return self.arrays[self.header.get("num_returned", 0):]


@dataclass
class SandboxOutcome:
    """Everything :func:`exec_untrusted` learned from running a submission.

    Attributes:
        isolation: The isolation level used: "bwrap", "unshare" or "rlimits".
        setup: How loading the submission went (first child that loaded it).
        responses: One validated :class:`Response` per request id.
        stdout_tail: The student's stdout (capped: start and end are kept),
            up to the moment the first hidden request was sent.
        stderr_tail: The student's stderr (capped and cut off likewise).
        restarts: How many times a fresh child replaced a dead one.
        wall_time: Seconds spent in :func:`exec_untrusted`.
    """

    isolation: str
    setup: SetupResult
    responses: dict[str, Response]
    stdout_tail: str
    stderr_tail: str
    restarts: int
    wall_time: float


# --------------------------------------------------------------------------
# Isolation detection
# --------------------------------------------------------------------------

_detect_lock = threading.Lock()
_detected_level: str | None = None
_warned_levels: set[str] = set()


def detect_isolation() -> str:
    """Find the strongest isolation level that actually works on this machine.

    Tries a trivial interpreter run under bwrap (with the same file-system
    layout real runs use), then under ``unshare``; falls back to "rlimits".
    ``$MLP_SANDBOX_ISOLATION`` (a level name) makes that level the strongest
    one tried, e.g. to see how a machine without bubblewrap grades.
    The answer is cached for the life of the process.

    Returns:
        "bwrap", "unshare" or "rlimits".

    Raises:
        SandboxUnavailable: If bubblewrap works but would show the course's
            secrets in this install layout (never a silent fall-back to a
            level that shows even more).
    """
    global _detected_level
    with _detect_lock:
        if _detected_level is None:
            strongest = os.environ.get(ISOLATION_ENV, ISOLATION_LEVELS[0])
            if strongest not in ISOLATION_LEVELS:
                logger.warning("ignoring %s=%r (expected one of %s)", ISOLATION_ENV, strongest, ISOLATION_LEVELS)
                strongest = ISOLATION_LEVELS[0]
            tried = ISOLATION_LEVELS[ISOLATION_LEVELS.index(strongest):]
            _detected_level = next((level for level in tried[:-1] if _probe(level)), tried[-1])
            logger.debug("sandbox isolation level: %s", _detected_level)
        return _detected_level


def _probe(level: str) -> bool:
    """Run ``python -c pass`` under ``level``; True if it exits cleanly."""
    if level == "bwrap" and shutil.which("bwrap") is None:
        return False
    if level == "unshare" and shutil.which("unshare") is None:
        return False
    try:
        with _SandboxDirs(None, level) as dirs:
            argv = _wrap_command(level, dirs, [_interpreter(), "-I", "-S", "-c", "pass"])
            completed = subprocess.run(
                argv, cwd=dirs.work, env=_child_environment(dirs.inside(dirs.work, level)),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                timeout=30, start_new_session=True,
            )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("isolation %s unavailable: %s", level, exc)
        return False
    if completed.returncode != 0:
        logger.debug("isolation %s unavailable: %s", level, completed.stderr.decode(errors="replace")[-500:])
    return completed.returncode == 0


def _warn_if_weak(level: str) -> None:
    with _detect_lock:
        if level != ISOLATION_LEVELS[0] and level not in _warned_levels:
            _warned_levels.add(level)
            logger.warning(
                "student code runs with weaker isolation (%s) than bubblewrap: %s", level,
                "no network and no view of other processes, but the file system is visible"
                if level == "unshare" else "resource limits only; no namespaces, the file system is visible",
            )


# --------------------------------------------------------------------------
# The unsafe entry point
# --------------------------------------------------------------------------


def exec_untrusted(
    source: str,
    requests: list[Request],
    *,
    student_mlp_dir: Path,
    limits: Limits | None = None,
    isolation: str | None = None,
) -> SandboxOutcome:
    """Execute a submission's source in a sandboxed child and answer requests against it.

    THIS RUNS UNTRUSTED CODE, only ever in a child process. The source is
    loaded one top-level statement at a time (see
    :mod:`autograder.sandbox.child_runner`); then the requests are sent in order,
    up to ``PIPELINE_DEPTH`` ahead of the reply being read, and each response
    is validated as it arrives. Crashes, timeouts and malformed replies are
    recorded per request, never raised; requests in flight when a child dies
    go to its successor.

    Hidden inputs never reach words that are shown: every request not marked
    ``hidden`` is answered, and its response read in full, before the first
    hidden request is sent (the order is kept within each group). No sandbox
    process can know a hidden input before it is sent, so nothing said
    before then can carry one. From that moment on everything the sandbox
    says may: its responses are marked ``tainted``, its output is no longer
    kept, and a restarted child's setup is not reported.

    Args:
        source: The submission's extracted Python source.
        requests: Requests with unique string ids, answered in order, the
            non-hidden ones first.
        student_mlp_dir: The directory that CONTAINS the student copy of the
            ``mlp`` package (copied for each call, so no child can alter it).
        limits: Resource and time limits (defaults: ``Limits()``).
        isolation: "bwrap", "unshare" or "rlimits"; None picks the strongest
            available (:func:`detect_isolation`).

    Returns:
        The outcome, with one response per request id.

    Raises:
        ValueError: For a bad argument from the caller (unknown isolation
            level, duplicate or missing request ids, a header that is not
            plain JSON, a non-numeric array, no ``mlp`` package in
            ``student_mlp_dir``).
        OSError: If the private temporary directory cannot be prepared (a
            problem of the grading machine, not of the submission).
        SandboxUnavailable: If a child cannot be started at all (a
            `HarnessError`: the machine's failure, not the submission's).

    Note:
        Call it from a thread that outlives the call: the child is killed
        when the thread that started it ends (``PR_SET_PDEATHSIG``).
    """
    with Sandbox(student_mlp_dir=student_mlp_dir, limits=limits, isolation=isolation) as sandbox:
        return sandbox.run(source, requests)


class Sandbox:
    """A sandbox whose first child starts before the submission is known.

    ``with Sandbox(...) as sandbox: ...; outcome = sandbox.run(source, requests)``
    does what :func:`exec_untrusted` does, but the child boots (the
    interpreter, numpy and the runner: most of a small submission's time)
    while the caller reads the notebook and plans its requests. Nothing of
    the submission reaches the child before :meth:`run`. The child inherits
    the sealed memory files this process had made when it started
    (:mod:`autograder.sandbox.shared_memory`); a shared request whose files
    came later goes through the pipe. Leaving the ``with`` block kills
    every child and removes the private tree.

    Args:
        student_mlp_dir: As for :func:`exec_untrusted`, which documents the
            outcome, the limits and the exceptions (raised here on entering,
            or by :meth:`run` for a bad request).
        limits: As for :func:`exec_untrusted`.
        isolation: As for :func:`exec_untrusted`.

    Note:
        Enter it and run it from one thread that outlives both: the child is
        killed when the thread that started it ends (``PR_SET_PDEATHSIG``).
    """

    def __init__(self, *, student_mlp_dir: Path, limits: Limits | None = None,
                 isolation: str | None = None) -> None:
        self.started = time.monotonic()
        self.limits = limits if limits is not None else Limits()
        self.level = isolation if isolation is not None else detect_isolation()
        if self.level not in ISOLATION_LEVELS:
            raise ValueError(f"unknown isolation level {self.level!r}; expected one of {ISOLATION_LEVELS}")
        self.mlp_package = Path(student_mlp_dir) / "mlp"
        if not self.mlp_package.is_dir():
            raise ValueError(f"{student_mlp_dir} does not contain an 'mlp' package folder")
        _warn_if_weak(self.level)
        self.stdout = _CappedCapture(self.limits.output_bytes)
        self.stderr = _CappedCapture(self.limits.output_bytes)
        self.budget = answers.ResponseBudget(self.limits.total_response_bytes)  # all children of this submission
        self.inherited = shared_memory.sealed_so_far()
        self._dirs: _SandboxDirs | None = None
        self._child: _Child | None = None  # started, not yet given the submission
        self._ran = False

    def __enter__(self) -> "Sandbox":
        self._dirs = _SandboxDirs(self.mlp_package, self.level)
        self._dirs.__enter__()
        try:
            self._child = self._new_child()
        except BaseException:
            self._dirs.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        if self._child is not None:
            self._child.kill()
            self._child = None
        self._dirs.__exit__(*exc_info)

    def _new_child(self) -> "_Child":
        child = _Child(self.level, self._dirs, self.limits, self.stdout, self.stderr, self.budget,
                       self.inherited)
        child.start()
        return child

    def run(self, source: str, requests: list[Request],
            on_response: Callable[[Response], None] | None = None) -> SandboxOutcome:
        """Load ``source`` in the child and answer ``requests`` (once per sandbox).

        Args:
            source: The submission's extracted Python source.
            requests: Requests with unique string ids, answered in order, the
                non-hidden ones first.
            on_response: Called in this thread with each response as soon as
                it is final (each request's exactly once, in the order they
                are settled), while the child goes on with the next requests:
                the caller can judge what is answered meanwhile. The time it
                takes is the parent's, not the child's: it counts against no
                request's budget, nor the whole child's. What it raises ends
                the run (the child is killed) and propagates.

        Returns:
            The outcome, with one response per request id.
        """
        if self._ran:
            raise ValueError("a Sandbox runs one submission")
        self._ran = True
        limits, stdout, stderr = self.limits, self.stdout, self.stderr
        _check_requests(requests)
        responses: dict[str, Response] = {}
        setup: SetupResult | None = None
        restarts = 0
        remaining = [request for request in requests if not request.hidden]
        remaining += [request for request in requests if request.hidden]
        tainted = False  # whether a hidden request has been sent
        sealed = _sealed_arrays(requests, self.inherited)

        def settle(response: Response, child: _Child | None = None) -> None:
            responses[response.id] = response
            if on_response is not None:
                began = time.monotonic()
                on_response(response)
                if child is not None:
                    child.excuse(time.monotonic() - began)

        while True:
            child, self._child = self._child or self._new_child(), None
            child.sealed = sealed
            try:
                child_setup, failure = child.setup(source)
                if not tainted and (setup is None or not setup.ok):
                    setup = child_setup
                if failure is not None:
                    for request in remaining:
                        settle(Response(request.id, failure.status, tainted=tainted,
                                        message=f"not run: {failure.message}"))
                    break
                while remaining:
                    if remaining[0].hidden and not tainted:  # nothing is in flight here
                        tainted = True
                        stdout.seal()
                        stderr.seal()
                    child.send_ahead(remaining, hidden=tainted)
                    response = child.collect()
                    response.tainted = tainted
                    remaining.pop(0)
                    settle(response, child)
                    if child.broken:
                        break
                if not remaining:
                    break
            finally:
                # Also when every request is answered: nothing the child could still do is
                # wanted, and killing it saves the interpreter's tear-down (tens of ms).
                child.kill()
            if restarts >= limits.max_restarts:
                for request in remaining:
                    settle(Response(
                        request.id, "error", tainted=tainted,
                        message=f"not run: the sandbox was already restarted {restarts} times "
                                f"after crashes or timeouts (the limit)"))
                break
            restarts += 1
            stdout.note("\n[... the sandbox was restarted ...]\n")
            stderr.note("\n[... the sandbox was restarted ...]\n")
        return SandboxOutcome(
            isolation=self.level,
            setup=setup if setup is not None else SetupResult(False, message="the sandbox did not start"),
            responses=responses,
            stdout_tail=stdout.text(),
            stderr_tail=stderr.text(),
            restarts=restarts,
            wall_time=time.monotonic() - self.started,
        )


def _sealed_arrays(requests: list[Request], inherited: tuple[shared_memory.SealedArray, ...]
                   ) -> dict[str, list[shared_memory.SealedArray]]:
    """The sealed memory files of each shared request whose arrays a child inherits, by request id.

    Every array of a shared request is sealed (once per process, so that the
    children of later submissions inherit it); a request is answered from
    the files only when all of them are among ``inherited``.
    """
    fds = {file.fd for file in inherited}
    sealed = {}
    for request in requests:
        if request.shared and request.arrays:
            files = [shared_memory.seal(array) for array in request.arrays]
            if all(file is not None and file.fd in fds for file in files):
                sealed[request.id] = files
    return sealed


def _check_requests(requests: list[Request]) -> None:
    seen = set()
    for request in requests:
        request_id = request.header.get("id")
        if not isinstance(request_id, str) or not request_id:
            raise ValueError(f"every request needs a non-empty string 'id': {request.header!r}")
        if request_id in seen:
            raise ValueError(f"duplicate request id {request_id!r}")
        if request.header.get("type") not in ("call", "sequence", "train"):
            raise ValueError(f"request {request_id!r}: 'type' must be 'call', 'sequence' or 'train'")
        for reserved in ("arrays", "shared"):
            if reserved in request.header:
                raise ValueError(f"request {request_id!r}: the header key {reserved!r} is reserved")
        try:
            json.dumps(request.header, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"request {request_id!r}: the header is not plain JSON: {exc}") from exc
        for index, array in enumerate(request.arrays):
            try:
                np.asarray(array, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"request {request_id!r}: array {index} is not numeric: {exc}") from exc
        seen.add(request_id)


# --------------------------------------------------------------------------
# One child process
# --------------------------------------------------------------------------


@dataclass
class _Failure:
    status: str
    message: str


class _Child:
    """One sandboxed interpreter running ``child_runner.py``; used by one thread."""

    def __init__(self, level: str, dirs: _SandboxDirs, limits: Limits,
                 stdout: _CappedCapture, stderr: _CappedCapture,
                 budget: answers.ResponseBudget | None = None,
                 inherited: tuple[shared_memory.SealedArray, ...] = ()) -> None:
        self.budget = budget if budget is not None else answers.ResponseBudget(limits.total_response_bytes)
        # What each frame the child owes may be, oldest first, judged before its arrays are
        # read: the reader thread takes the head for every frame. The first is the runner's
        # ready signal, owed before the child exists, since the reader judges that frame as
        # soon as it arrives; each request's is added before the request is sent.
        self._owed: deque[answers.Acceptor] = deque([answers.ready_acceptor()])
        self._in_flight: deque[tuple[Request, float]] = deque()  # sent, not yet collected
        self._last_answer = 0.0  # monotonic time the previous reply was collected
        self.inherited = inherited  # sealed memory files the child inherits
        self.sealed: dict[str, list[shared_memory.SealedArray]] = {}  # request id -> its arrays' files
        self.level = level
        self.dirs = dirs
        self.limits = limits
        self.stdout = stdout
        self.stderr = stderr
        self.process: subprocess.Popen | None = None
        self.broken = False
        self.deadline = 0.0
        self._threads: list[threading.Thread] = []
        self._frames: queue.Queue = queue.Queue(maxsize=1)
        self._outbox: queue.Queue = queue.Queue()
        self._stop = threading.Event()

    # -- life cycle ---------------------------------------------------------

    def start(self) -> None:
        """Start the child (it boots while the caller goes on); raise if it cannot be started.

        Raises:
            SandboxUnavailable: The process could not be created.
        """
        try:
            self._start()
        except (OSError, subprocess.SubprocessError) as exc:
            raise SandboxUnavailable(f"the sandbox could not be started ({self.level}): {exc}") from exc

    def setup(self, source: str) -> tuple[SetupResult, _Failure | None]:
        """Wait for the started child to be ready, then load the source; report failures, never raise."""
        self._await_ready()
        self._owed.append(answers.setup_acceptor())
        self._send({"type": "setup", "source": source, "filename": "submission.py"}, [])
        item = self._receive(min(time.monotonic() + self.limits.setup_seconds, self.deadline))
        if isinstance(item, answers.Rejected):
            item = _Failure("error", f"the sandbox returned malformed data ({item.reason})")
        if isinstance(item, _Failure):
            self.broken = True
            if item.status == "timeout":
                item.message = (f"loading the submission did not finish within "
                                f"{self.limits.setup_seconds:g} s (endless top-level code?)")
            else:
                item.message = f"loading the submission failed: {item.message}"
            return SetupResult(False, message=item.message), item
        header, arrays = item
        setup = _validate_setup(header, arrays)
        if setup is None:
            message = "loading the submission failed: the sandbox returned malformed data"
            self.broken = True
            return SetupResult(False, message=message), _Failure("error", message)
        return setup, None

    def _await_ready(self) -> None:
        """Wait for the runner's ready frame, sent before it reads the student's code.

        Whatever stops a child before that frame (an interpreter, runner or
        numpy the sandbox cannot reach or read, a wrapper that cannot exec, a
        mount bwrap refuses) is the machine's failure, not the submission's.

        Raises:
            SandboxUnavailable: If the child ended, timed out or sent anything else first.
        """
        item = self._receive(min(time.monotonic() + self.limits.setup_seconds, self.deadline))
        if isinstance(item, tuple):
            return
        self.broken = True
        self.kill()
        if isinstance(item, answers.Rejected):
            reason = item.reason
        elif item.status == "timeout":
            reason = f"the runner was not ready within {self.limits.setup_seconds:g} s"
        else:
            reason = f"the runner ended before it was ready (exit status {self.process.poll()})"
        detail = self.stderr.text().strip()[-300:]
        raise SandboxUnavailable(f"the sandbox could not be started ({self.level}): {reason}"
                                 + (f"; its error output ends: {detail}" if detail else ""))

    def _start(self) -> None:
        response_read, response_write = os.pipe()
        try:
            inner = [
                _interpreter(), "-I", "-S", "-B", "-c", _RUNNER_BOOTSTRAP,
                self.dirs.inside(self.dirs.runner, self.level) + "/child_runner.py",
                json.dumps({
                    "response_fd": response_write,
                    "path": [self.dirs.inside(self.dirs.work, self.level),
                             self.dirs.inside(self.dirs.student, self.level),
                             self.dirs.inside(self.dirs.site, self.level)],
                    "student_dirs": [self.dirs.inside(self.dirs.student, self.level)],
                }),
            ]
            inner = _process_limit_prefix(self.limits, self.level) + inner
            argv = _wrap_command(self.level, self.dirs, inner)
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(response_write, *sorted({file.fd for file in self.inherited})),
                cwd=self.dirs.work,
                env=_child_environment(self.dirs.inside(self.dirs.work, self.level)),
                start_new_session=True,
                preexec_fn=_limit_setter(self.limits, os.getpid(), self.level),
            )
        except BaseException:
            os.close(response_read)
            raise
        finally:
            os.close(response_write)
        self.deadline = time.monotonic() + self.limits.wall_seconds
        responses = open(response_read, "rb")
        self._spawn(self._read_frames, responses)
        self._spawn(self._drain, self.process.stdout, self.stdout)
        self._spawn(self._drain, self.process.stderr, self.stderr)
        self._spawn(self._write_requests, self.process.stdin)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True,
                                  name=f"sandbox-{target.__name__}")
        thread.start()
        self._threads.append(thread)

    def kill(self) -> None:
        """Kill the child's whole process group and stop the helper threads."""
        self._stop.set()
        self._outbox.put(None)
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                logger.error("sandbox child %d did not die after SIGKILL", self.process.pid)
        for thread in self._threads:
            thread.join(timeout=2)
        # Unblock a reader stuck on put() and drop anything left over.
        while not self._frames.empty():
            self._frames.get_nowait()

    # -- requests -------------------------------------------------------------

    def send_ahead(self, remaining: list[Request], *, hidden: bool) -> None:
        """Send the next requests of ``remaining`` not yet sent, up to ``PIPELINE_DEPTH`` in flight.

        The child answers them one after another while the parent reads and
        checks the replies, so no request waits for the round trip of the one
        before it. Only requests whose ``hidden`` flag equals ``hidden`` are
        sent: a hidden request never leaves before every shown one is collected.

        Args:
            remaining: The requests still unanswered, in order; those in flight
                are its first ones.
            hidden: Whether hidden requests are being sent now.
        """
        for request in remaining[len(self._in_flight):PIPELINE_DEPTH]:
            if request.hidden != hidden:
                break
            self._owed.append(answers.acceptor(request, self.budget))
            if request.id in self.sealed:
                self._send(dict(request.header, shared=[file.descriptor() for file in self.sealed[request.id]]), [])
            else:
                self._send(request.header, request.arrays)
            self._in_flight.append((request, time.monotonic()))

    def collect(self) -> Response:
        """The validated reply to the oldest request in flight (never raises).

        Its time budget (and ``Response.seconds``) starts when the child could
        start on it: when it was sent, or when the reply before it was collected.
        """
        request, sent = self._in_flight.popleft()
        started = max(sent, self._last_answer)
        budget = request.timeout if request.timeout is not None else self.limits.request_seconds
        request_deadline = started + budget
        item = self._receive(min(request_deadline, self.deadline))
        self._last_answer = time.monotonic()
        response = self._response_of(request, item, budget, request_deadline)
        response.seconds = self._last_answer - started
        return response

    def excuse(self, seconds: float) -> None:
        """Leave out of the child's clocks ``seconds`` the parent just spent on its own work.

        The next request's time (its budget and ``Response.seconds``) starts
        no earlier than now, and the whole child's wall budget moves on by as
        much: a slow step of the grader never times a submission out.
        """
        self._last_answer += seconds
        self.deadline += seconds

    def _response_of(self, request: Request, item: Any, budget: float, request_deadline: float) -> Response:
        """The Response for what `_receive` gave for ``request``; marks the child broken when out of step."""
        request_id = request.id
        label = _request_label(request.header)
        if isinstance(item, answers.Rejected):  # refused unread
            self.broken = not item.answers(request_id)  # a forged frame: the stream is out of step
            return Response(request_id, "error",
                            message=f"{label}: the sandbox returned malformed data ({item.reason})")
        if isinstance(item, _Failure):
            self.broken = True
            if item.status == "timeout" and self.deadline < request_deadline:
                item.message = (f"{label}: the sandbox's total time budget of "
                                f"{self.limits.wall_seconds:g} s ran out")
            elif item.status == "timeout":
                item.message = f"{label} did not answer within {budget:g} s (an endless loop?)"
            else:
                item.message = f"{label}: {item.message}"
            return Response(request_id, item.status, message=item.message)
        header, arrays = item
        response = _validate_result(request, header, arrays)
        if response is None:
            self.broken = True
            return Response(request_id, "error",
                            message=f"{label}: the sandbox returned malformed data")
        return response

    def _send(self, header: dict, arrays: list) -> None:
        self._outbox.put((header, arrays))

    def _receive(self, deadline: float) -> tuple[dict, list[np.ndarray]] | _Failure:
        """Wait for the next frame until ``deadline``; a _Failure on death, timeout or garbage."""
        try:
            item = self._frames.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            self.kill()
            return _Failure("timeout", "timed out")
        if isinstance(item, (_Failure, answers.Rejected)):
            return item
        if item is None:  # the response pipe closed: the child ended or closed it
            return _Failure("crashed", self._death_message())
        return item

    def _death_message(self) -> str:
        try:
            returncode = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            return "the sandbox closed its response channel and was stopped"
        return _describe_exit(returncode, wrapped=self.level != "rlimits", limits=self.limits)

    # -- helper threads -------------------------------------------------------

    def _write_requests(self, stream) -> None:
        try:
            while not self._stop.is_set():
                item = self._outbox.get()
                if item is None:
                    break
                header, arrays = item
                wire.write_frame(stream, header, arrays)
        except (OSError, ValueError, wire.WireError):
            pass  # the child is gone (the reader reports it), or a caller's array is unusable
        finally:
            try:
                stream.close()
            except OSError:
                pass

    def _read_frames(self, stream) -> None:
        try:
            while not self._stop.is_set():
                try:
                    item = wire.read_frame(stream, max_header_bytes=MAX_RESPONSE_HEADER_BYTES,
                                           max_array_bytes=self.limits.response_bytes,
                                           accept=self._judge)
                except wire.WireEOF:
                    item = None
                except wire.WireRejected as exc:
                    logger.info("refused frame from the sandbox: %s", exc.reason)
                    self._put(answers.Rejected(exc.reason, exc.header))
                    continue
                except wire.WireError as exc:
                    logger.info("malformed frame from the sandbox: %s", exc)
                    item = _Failure("error", "the sandbox returned malformed data")
                self._put(item)
                if not isinstance(item, tuple):
                    break
        finally:
            stream.close()

    def _judge(self, header: dict, shapes: list[tuple[int, ...]]) -> str | None:
        """Judge a frame's header by what the oldest owed frame may be (reader thread)."""
        try:
            accept = self._owed.popleft()
        except IndexError:
            return "a frame the grader did not ask for"
        return accept(header, shapes)

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._frames.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    @staticmethod
    def _drain(stream, capture: _CappedCapture) -> None:
        try:
            while True:
                chunk = stream.read1(65536)
                if not chunk:
                    break
                capture.add(chunk)
        except (OSError, ValueError):
            pass
        finally:
            stream.close()


def _request_label(header: dict) -> str:
    if header.get("type") == "train":
        return "training"
    target, method = header.get("target"), header.get("method")
    return f"{target}.{method}" if method else str(target)


# --------------------------------------------------------------------------
# Validation of what the child sends
# --------------------------------------------------------------------------

_NAME_KINDS = {"class", "function", "other"}


def _validate_setup(header: dict, arrays: list[np.ndarray]) -> SetupResult | None:
    """A SetupResult from a setup reply, or None if the reply is malformed."""
    if arrays or header.get("type") != "setup" or type(header.get("ok")) is not bool:
        return None
    errors, names, message = header.get("errors"), header.get("names"), header.get("message", "")
    if not isinstance(errors, list) or not isinstance(names, dict) or not isinstance(message, str):
        return None
    if len(errors) > MAX_SETUP_ITEMS or len(names) > MAX_SETUP_ITEMS:  # more than the runner sends
        return None
    if any(len(name) > MAX_NAME_CHARS for name in names):
        return None
    statement_errors = []
    for item in errors:
        if (not isinstance(item, dict) or type(item.get("line")) is not int
                or not isinstance(item.get("error"), str)):
            return None
        statement_errors.append(StatementError(item["line"], _clip(item["error"])))
    if not all(isinstance(kind, str) and kind in _NAME_KINDS for kind in names.values()):
        return None
    return SetupResult(header["ok"], statement_errors, dict(names), _clip(message))


def _clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """A message from the child, cut to ``limit`` characters and safe to write anywhere.

    Lone surrogates (valid in JSON, but not encodable as UTF-8, so writing the
    report would fail) become "?", as do control characters and
    bidirectional overrides.
    """
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return _UNSAFE_CHARACTERS.sub("?", text.encode("utf-8", "replace").decode("utf-8"))



def _validate_result(request: Request, header: dict, arrays: list[np.ndarray]) -> Response | None:
    """A Response from a result reply, or None if the reply is malformed."""
    if header.get("type") != "result" or header.get("id") != request.id:
        return None
    ok = header.get("ok")
    if ok is False:
        error = header.get("error")
        trace = header.get("traceback", "")
        if arrays or not isinstance(error, str) or not isinstance(trace, str):
            return None
        if not isinstance(header.get("error_kind", ""), str):
            return None
        message = f"{_clip(error)}\n{_clip(trace)}" if trace else _clip(error)
        header = {**header, "error": _clip(error), "traceback": _clip(trace)}
        return Response(request.id, "error", header=header, message=message)
    if ok is not True:
        return None
    returned, num_returned, num_inputs = header.get("returned"), header.get("num_returned"), header.get("num_inputs")
    if type(num_returned) is not int or type(num_inputs) is not int or num_returned < 0 or num_inputs < 0:
        return None
    if num_returned + num_inputs != len(arrays):
        return None
    if returned not in ("array", "list", "scalar"):
        return None
    if returned in ("array", "scalar") and num_returned != 1:
        return None
    if returned == "scalar" and arrays[0].shape != ():
        return None
    if not request.header.get("return_inputs") and num_inputs:
        return None
    if any(a.dtype != np.float64 for a in arrays):
        return None
    if request.header.get("type") == "train" and not _train_shapes_ok(request, arrays, num_returned):
        return None
    return Response(request.id, "ok", header=header, arrays=arrays)


def _train_shapes_ok(request: Request, arrays: list[np.ndarray], num_returned: int) -> bool:
    if num_returned != 2 or len(arrays) != 2 or len(request.arrays) != 3:
        return False
    eval_outputs, epoch_errors = arrays
    expected_rows = np.shape(request.arrays[2])[0]
    return (eval_outputs.ndim == 2 and eval_outputs.shape[0] == expected_rows
            and epoch_errors.shape == (request.header.get("num_epochs"),))


def _describe_exit(returncode: int, *, wrapped: bool, limits: Limits) -> str:
    """Explain how the child ended, with the likely cause for the usual signals."""
    signal_number = None
    if returncode < 0:
        signal_number = -returncode
    elif wrapped and 128 < returncode < 128 + 65:
        signal_number = returncode - 128
    if signal_number is None:
        return (f"the sandbox process ended with exit status {returncode} before answering "
                f"(did the code call os._exit or kill its own process?)")
    try:
        name = signal.Signals(signal_number).name
    except ValueError:
        name = f"signal {signal_number}"
    memory = _format_bytes(limits.address_space_bytes)
    hints = {
        signal.SIGKILL: f"the memory limit of {memory} was probably exceeded, or the process killed itself",
        signal.SIGXCPU: f"the CPU-time limit of {limits.cpu_seconds} s was exceeded",
        signal.SIGSEGV: f"a segmentation fault, e.g. endless recursion or exhausting the {memory} memory limit",
        signal.SIGXFSZ: f"it wrote a file larger than the limit of {_format_bytes(limits.file_size_bytes)}",
        signal.SIGABRT: "the interpreter aborted, e.g. after running out of memory",
    }
    hint = hints.get(signal_number, "")
    return f"the sandbox process was killed by {name}" + (f": {hint}" if hint else "")


def _format_bytes(size: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} bytes"


# --------------------------------------------------------------------------
# Output capture
# --------------------------------------------------------------------------


class _CappedCapture:
    """Keeps the first and last ``cap // 2`` bytes of a stream; drops the middle.

    Once sealed, it keeps nothing more (what follows may carry hidden inputs).
    """

    def __init__(self, cap: int) -> None:
        self._half = max(1, cap // 2)
        self._head = bytearray()
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self._dropped = 0
        self._sealed = False
        self._lock = threading.Lock()

    def seal(self) -> None:
        """Drop everything added from now on."""
        with self._lock:
            self._sealed = True

    def add(self, chunk: bytes) -> None:
        with self._lock:
            if self._sealed:
                return
            room = self._half - len(self._head)
            if room > 0:
                self._head += chunk[:room]
                chunk = chunk[room:]
            if not chunk:
                return
            self._tail.append(chunk)
            self._tail_size += len(chunk)
            while self._tail_size > self._half:
                excess = self._tail_size - self._half
                first = self._tail[0]
                if len(first) <= excess:
                    self._tail.popleft()
                    self._tail_size -= len(first)
                    self._dropped += len(first)
                else:
                    self._tail[0] = first[excess:]
                    self._tail_size -= excess
                    self._dropped += excess

    def note(self, text: str) -> None:
        """Append a marker of ours (e.g. a restart), if anything was captured."""
        with self._lock:
            has_output = bool(self._head)
        if has_output:
            self.add(text.encode())

    def text(self) -> str:
        with self._lock:
            middle = f"\n[... {self._dropped} bytes omitted ...]\n".encode() if self._dropped else b""
            data = bytes(self._head) + middle + b"".join(self._tail)
        return data.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------
# Files, command lines, environment, limits
# --------------------------------------------------------------------------


class _SandboxDirs:
    """A private temporary tree for one :class:`Sandbox` (one :func:`exec_untrusted` call).

    Layout (outside paths; under bwrap they appear below ``/sandbox``)::

        <tmp>/runner/   copies of child_runner.py and wire.py  (read-only inside)
        <tmp>/student/  a copy of the student's mlp package     (read-only inside)
        <tmp>/site/     symlinks to numpy (and numpy.libs)      (not under bwrap, which
                                                                 shows numpy at its own path)
        <tmp>/work/     empty working directory                 (writable)
        <tmp>/masks/N/  bwrap only: the empty folders shown instead of package folders
        <tmp>/scratch/  bwrap without tmpfs sizes only: the sandbox's /tmp
    """

    def __init__(self, mlp_package: Path | None, level: str) -> None:
        self._mlp_package = mlp_package
        self._level = level
        self.root = ""

    def __enter__(self) -> _SandboxDirs:
        self.root = tempfile.mkdtemp(prefix="mlp-sandbox-", dir=sandbox_parent())
        try:
            self._populate()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def runner(self) -> str:
        return os.path.join(self.root, "runner")

    @property
    def student(self) -> str:
        return os.path.join(self.root, "student")

    @property
    def site(self) -> str:
        return os.path.join(self.root, "site")

    @property
    def work(self) -> str:
        return os.path.join(self.root, "work")

    @property
    def scratch(self) -> str:
        return os.path.join(self.root, "scratch")

    def mask(self, index: int) -> str:
        """The empty folder shown instead of the host view's ``index``-th package folder."""
        return os.path.join(self.root, "masks", str(index))

    def inside(self, path: str, level: str) -> str:
        """Where ``path`` (one of the four directories) appears to the child."""
        if level == "bwrap":
            if path == self.site:
                return _host_view().numpy_home
            return f"{_BWRAP_ROOT}/{os.path.basename(path)}"
        return path

    def _populate(self) -> None:
        here = Path(__file__).resolve().parent.parent
        for directory in (self.runner, self.student, self.site, self.work):
            os.mkdir(directory, 0o755)
        for name in _RUNNER_FILES:
            shutil.copyfile(here / name, os.path.join(self.runner, os.path.basename(name)))
        if self._mlp_package is not None:
            shutil.copytree(self._mlp_package, os.path.join(self.student, "mlp"),
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            _place_bytecode(os.path.join(self.student, "mlp"))
        _place_bytecode(self.runner)
        for name, target in _numpy_locations().items():
            os.symlink(target, os.path.join(self.site, name))
        if self._level == "bwrap":
            for index, (_, mount_points) in enumerate(_host_view().masks):
                os.makedirs(self.mask(index), 0o755)
                for mount_point in mount_points:
                    os.makedirs(os.path.join(self.mask(index), mount_point), 0o755)
            if not _bwrap_supports_size():
                os.mkdir(self.scratch, 0o755)
        for top in (self.runner, self.student, self.site, os.path.join(self.root, "masks")):
            _make_world_readable(top)
        os.chmod(self.root, 0o755)
        if self._level in ISOLATION_LEVELS and _drops_uid(self._level):
            os.chown(self.work, SANDBOX_UID, SANDBOX_UID)
            if os.path.isdir(self.scratch):
                os.chown(self.scratch, SANDBOX_UID, SANDBOX_UID)


#: Shared temporary folders tried, in order, when the temporary folder is private.
_SHARED_TEMP_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")


def sandbox_parent() -> str:
    """The folder each sandbox tree is made in.

    The temporary folder (``TMPDIR``), unless the grader is root and that
    folder has an ancestor SANDBOX_UID cannot pass through (``pam_tmpdir``'s
    ``/tmp/user/0``, pytest's ``/tmp/pytest-of-root``, any 0700 folder): the
    dropped child could then not read its own runner. There the first shared
    temporary folder every uid can reach is used instead; the tree itself is
    made by ``mkdtemp`` (unguessable name, owner root) either way.
    """
    preferred = tempfile.gettempdir()
    if os.geteuid() != 0 or _reachable_by_everyone(preferred):
        return preferred
    return next((folder for folder in _SHARED_TEMP_FOLDERS if _reachable_by_everyone(folder)), preferred)


def _reachable_by_everyone(folder: str) -> bool:
    """Whether every folder on ``folder``'s real path grants search (x) permission to other uids."""
    path = Path(os.path.realpath(folder))
    try:
        return path.is_dir() and all(os.stat(part).st_mode & 0o001 for part in (path, *path.parents))
    except OSError:
        return False


def _place_bytecode(folder: str) -> None:
    """Put compiled bytecode beside every ``.py`` file of ``folder`` (not below it).

    The child runs with ``-B`` (it never writes bytecode), so without this it
    would compile the runner and the student copy of ``mlp`` again for every
    submission. The bytecode is compiled once per process and source text
    (`_compiled_bytecode`, kept in memory) as an unchecked-hash ``.pyc``: the
    interpreter uses it without comparing time stamps, which the copies do
    not keep. Only the grader's own trusted files get here; a child that
    replaces its copy's bytecode changes its own sandbox only, as it could
    with the sources.
    """
    for name in os.listdir(folder):
        if name.endswith(".py"):
            path = os.path.join(folder, name)
            compiled = _compiled_bytecode(Path(path).read_bytes())
            if compiled is not None:
                cache_path = importlib.util.cache_from_source(path)
                os.makedirs(os.path.dirname(cache_path), 0o755, exist_ok=True)
                Path(cache_path).write_bytes(compiled)


@functools.lru_cache(maxsize=128)
def _compiled_bytecode(source: bytes) -> bytes | None:
    """The unchecked-hash ``.pyc`` contents of ``source``, or None if it does not compile.

    (The file name compiled in is replaced by the real one when the child loads it.)
    """
    with tempfile.TemporaryDirectory(prefix="mlp-sandbox-bytecode-") as folder:
        source_copy, target = os.path.join(folder, "module.py"), os.path.join(folder, "module.pyc")
        Path(source_copy).write_bytes(source)
        try:
            py_compile.compile(source_copy, cfile=target, doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        except py_compile.PyCompileError:
            return None
        return Path(target).read_bytes()


def _make_world_readable(top: str) -> None:
    for directory, subdirs, files in os.walk(top):
        os.chmod(directory, 0o755)
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644)


def _numpy_locations() -> dict[str, str]:
    """The parent's numpy package directory and its vendored-library directory, by name."""
    spec = importlib.util.find_spec("numpy")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("numpy is not importable in the grading process")
    package = os.path.realpath(list(spec.submodule_search_locations)[0])
    locations = {"numpy": package}
    vendored = os.path.join(os.path.dirname(package), "numpy.libs")
    if os.path.isdir(vendored):
        locations["numpy.libs"] = os.path.realpath(vendored)
    return locations


def _interpreter() -> str:
    """The real interpreter binary (outside any venv, so ``-I -S`` sees only the stdlib)."""
    return os.path.realpath(sys.executable)


def _child_environment(home: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "GLIBC_TUNABLES": CHILD_MALLOC_TUNABLES,
    }


def _bwrap_switches_uid() -> bool:
    """Under root, bwrap runs without a user namespace and ``setpriv`` drops to uid 65534.

    A user namespace would map the sandbox uid back onto root, which owns most
    files; dropping to the real "nobody" uid makes root-only files unreadable.
    """
    return os.geteuid() == 0 and os.path.exists("/usr/bin/setpriv")


def _setpriv_prefix() -> list[str]:
    """argv prefix that runs the rest as SANDBOX_UID, with no groups, capabilities or new privileges.

    Changing the uid clears the parent-death signal ``preexec_fn`` set, so setpriv sets it again.
    """
    return [_SETPRIV, f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--pdeathsig=KILL", "--"]


def _uid_drop_works() -> bool:
    """Whether a root grader can run the child as SANDBOX_UID at "unshare" and "rlimits" (probed once per folder)."""
    return _uid_drop_works_in(sandbox_parent())


@functools.lru_cache(maxsize=8)
def _uid_drop_works_in(parent: str) -> bool:
    """Whether a root grader can run the child as SANDBOX_UID, sandbox trees being made in ``parent``.

    There the child sees the host's file system, so it must not be root (issue
    10 class 6: it could rewrite the grader before the grader imports the rest
    of itself, or its results). The probe imports numpy as that uid, the way
    the child does, so an interpreter or numpy it cannot read (under an
    owner-only /root, say) counts as "no".
    """
    if os.geteuid() != 0 or not os.access(_SETPRIV, os.X_OK):
        return False
    try:
        with _SandboxDirs(None, "") as dirs:
            code = f"import sys; sys.path.insert(0, {dirs.site!r}); import numpy"
            # The chain real runs use (setpriv, prlimit, python): setpriv itself may exec a binary
            # that the uid it switched to cannot, so python must be started by a process of that uid.
            processes = Limits().processes
            prlimit = [_PRLIMIT, f"--nproc={processes}:{processes}", "--"] if os.access(_PRLIMIT, os.X_OK) else []
            completed = subprocess.run(
                _setpriv_prefix() + prlimit + [_interpreter(), "-I", "-S", "-c", code], cwd=dirs.site,
                env=_child_environment(dirs.work), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, timeout=60, start_new_session=True,
            )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("no uid drop: %s", exc)
        return False
    if completed.returncode != 0:
        logger.debug("no uid drop: %s", completed.stderr.decode(errors="replace")[-500:])
    return completed.returncode == 0


def _drops_uid(level: str) -> bool:
    """Whether the child runs as the host's SANDBOX_UID at ``level``."""
    if level == "bwrap":
        return _bwrap_switches_uid()
    return _uid_drop_works()


def student_uid(level: str) -> int:
    """The host uid student code runs as at ``level``.

    SANDBOX_UID where the grader is root and can drop the child to it (at
    every level); else the grader's own uid (under bwrap then mapped to
    SANDBOX_UID inside a user namespace, the host's file system hidden).
    """
    return SANDBOX_UID if _drops_uid(level) else os.geteuid()


def _wrap_command(level: str, dirs: _SandboxDirs, inner: list[str]) -> list[str]:
    """The full argv running ``inner`` under the given isolation level."""
    if level == "rlimits":
        return (_setpriv_prefix() if _drops_uid(level) else []) + inner
    if level == "unshare":
        # As root, namespaces need no user namespace, and one mapping root onto root would
        # leave the child real root: it drops to SANDBOX_UID instead.
        user = [] if _drops_uid(level) else ["--user", "--map-root-user"]
        return ["unshare", *user, "--pid", "--fork", "--kill-child",
                "--net", "--mount", "--mount-proc", "--", "/bin/sh", "-c", _SHELL_INIT, "sandbox-init",
                *(_setpriv_prefix() if _drops_uid(level) else []), *inner]
    if level == "bwrap":
        return _bwrap_arguments(dirs) + inner
    raise ValueError(f"unknown isolation level {level!r}")


def _bwrap_arguments(dirs: _SandboxDirs) -> list[str]:
    """bwrap options: namespaces, the student's world only (read-only), capped scratch space, the uid switch.

    The file system is :func:`autograder.sandbox.host_view.host_view`: system
    libraries, the interpreter and its standard library, numpy, all read-only,
    with every package folder inside them emptied; then the runner and the
    student copy of ``mlp``. The only writable places are ``/tmp`` and the
    working directory, tmpfs mounts of ``SANDBOX_TMPFS_BYTES`` each; the
    root and ``/dev`` (tmpfs mounts bwrap makes, owned by the sandbox's user
    when the grader is not root, and uncapped) are made read-only last.

    Raises:
        SandboxUnavailable: If the view would still show one of the course's
            secrets (a layout nobody foresaw): fail closed.
    """
    view = _host_view()
    exposed = host_view.exposed_secrets(view)
    if exposed:
        raise SandboxUnavailable(
            "bubblewrap would show the course's secrets to student code in this install layout: "
            + ", ".join(exposed) + " (see SECURITY.md, 'Install layouts')")
    args = ["bwrap", "--die-with-parent", "--new-session",
            "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "sandbox"]
    if not _bwrap_switches_uid():
        args += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    made = {"/"}
    shown: list[str] = []  # mounted folders: what lies inside them exists already

    def mount(option: str, source: str, target: str) -> None:
        # bwrap would create missing parent folders owner-only; make them world-readable.
        for ancestor in reversed(Path(target).parents):
            folder = str(ancestor)
            if folder not in made and not any(host_view.within(folder, top) for top in shown):
                args.extend(["--perms", "0755", "--dir", folder])
                made.add(folder)
        args.extend([option, source, target])
        made.add(target)
        shown.append(target)

    for path, target in view.links:
        args.extend(["--symlink", target, path])
        made.add(path)
    args.extend(["--proc", "/proc", "--dev", "/dev"])
    made.update({"/proc", "/dev"})
    tmpfs_size = ["--size", str(SANDBOX_TMPFS_BYTES)] if _bwrap_supports_size() else []
    if tmpfs_size:  # capped tmpfs mounts, not host folders: writes fill neither the disk nor memory
        args.extend(["--perms", "1777", *tmpfs_size, "--tmpfs", "/tmp"])
        made.add("/tmp")
    else:  # an old bwrap: a host folder of the private tree, bounded by the time limits only
        mount("--bind", dirs.scratch, "/tmp")
    # Mounted after /tmp, so that what lives below the host's /tmp shows through.
    for tree in view.trees:
        mount("--ro-bind", tree, tree)
    for path in view.files:
        mount("--ro-bind", path, path)
    for index, (folder, _) in enumerate(view.masks):
        mount("--ro-bind", dirs.mask(index), folder)
    for source, target in view.numpy:
        mount("--ro-bind", source, target)
    mount("--ro-bind", dirs.runner, dirs.inside(dirs.runner, "bwrap"))
    mount("--ro-bind", dirs.student, dirs.inside(dirs.student, "bwrap"))
    work = dirs.inside(dirs.work, "bwrap")
    if tmpfs_size:
        args.extend(["--perms", "1777", *tmpfs_size, "--tmpfs", work])
        made.add(work)
    else:
        mount("--bind", dirs.work, work)
    args.extend(["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", work])
    if _bwrap_switches_uid():
        args.extend(["--", "/usr/bin/setpriv", f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}",
                     "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"])
    else:
        args.append("--")
    return args


def _host_view() -> host_view.HostView:
    """What bwrap shows of the host for this interpreter (and ``setpriv``/``prlimit`` when used)."""
    programs = ("/usr/bin/setpriv", _PRLIMIT) if _bwrap_switches_uid() else ()
    return host_view.host_view(_interpreter(), tuple(p for p in programs if os.path.exists(p)))


@functools.lru_cache(maxsize=1)
def _bwrap_supports_size() -> bool:
    """Whether the installed bwrap has ``--size`` (size-capped tmpfs mounts; bwrap >= 0.5)."""
    try:
        shown = subprocess.run(["bwrap", "--help"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return b"--size" in shown.stdout + shown.stderr


_prctl = getattr(ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True), "prctl", None)


def _limit_setter(limits: Limits, parent_pid: int, level: str):
    """A ``preexec_fn`` that applies the resource limits and the parent-death signal.

    It runs in the forked child between fork and exec, so it only calls
    ``setrlimit``, ``prctl``, ``getppid`` and writes ``/proc/self/oom_score_adj``.
    RLIMIT_NPROC is normally left to :func:`_process_limit_prefix`.
    """
    settings = [
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1),
        (resource.RLIMIT_AS, limits.address_space_bytes, limits.address_space_bytes),
        (resource.RLIMIT_FSIZE, limits.file_size_bytes, limits.file_size_bytes),
        (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
    ]
    if _drops_uid(level) and not _process_limit_prefix(limits, level):
        # Counted per real uid, so only meaningful when the child gets its own uid.
        settings.append((resource.RLIMIT_NPROC, limits.processes, limits.processes))

    def apply() -> None:
        for which, soft, hard in settings:
            _, current_hard = resource.getrlimit(which)
            if current_hard != resource.RLIM_INFINITY:
                hard = min(hard, current_hard)
                soft = min(soft, hard)
            resource.setrlimit(which, (soft, hard))
        _volunteer_for_the_oom_killer()
        if _prctl is not None:  # Linux only
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return apply


def _volunteer_for_the_oom_killer() -> None:
    """Make this process, and everything it starts, the OOM killer's first choice.

    RLIMIT_AS bounds one process, not a submission that forks many; should
    they exhaust the machine's memory together, the kernel then kills
    sandbox processes (the largest first), not the grader or the host's
    services. Raising one's own score needs no privilege.
    """
    try:
        descriptor = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
    except OSError:
        return
    try:
        os.write(descriptor, b"1000")
    except OSError:
        pass
    finally:
        os.close(descriptor)


_PRLIMIT = "/usr/bin/prlimit"


def _process_limit_prefix(limits: Limits, level: str) -> list[str]:
    """``prlimit`` to run right after bwrap's uid switch: RLIMIT_NPROC for the sandbox uid.

    RLIMIT_NPROC counts every process of the sandbox uid, in all sandboxes at
    once. Set before ``setpriv`` switches to that uid (in ``preexec_fn``), the
    kernel marks the switch as over the limit whenever another submission's
    fork bomb holds the uid's count at the limit, and the following exec of
    Python fails with EAGAIN: an innocent submission graded at the same moment
    would not even start. Set after the switch, the limit still stops every
    fork of a full sandbox, while starting a new one always works.

    Returns:
        The argv prefix, or [] when it does not apply (not bwrap as root, or
        no prlimit; ``preexec_fn`` then sets the limit itself).
    """
    if not _drops_uid(level) or not os.access(_PRLIMIT, os.X_OK):
        return []
    return [_PRLIMIT, f"--nproc={limits.processes}:{limits.processes}", "--"]
