"""Resource limits for one sandboxed child process.

Runs TRUSTED (in the grading parent): the values are applied by
:mod:`autograder.sandbox.isolation` before the child's interpreter starts.
"""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


@dataclass(frozen=True)
class Limits:
    """What one sandboxed child may use, and how long the parent waits for it.

    The operating-system limits (``cpu_seconds`` ... ``processes``) are set
    with ``setrlimit`` in the child before it executes anything. The time
    limits are enforced by the parent, which kills the child's whole process
    group when one is reached. A child that is killed is replaced by a fresh
    one (at most ``max_restarts`` times per submission) so that the remaining
    requests still get answers.

    Attributes:
        cpu_seconds: RLIMIT_CPU of one child, in CPU seconds summed over all
            its requests. The kernel sends SIGXCPU at this value and SIGKILL
            one second later.
        address_space_bytes: RLIMIT_AS (virtual memory) of one child. The
            runner with numpy and single-threaded OpenBLAS peaks at about
            100 MiB of address space before any student code runs (measured
            with numpy 2.4), so 512 MiB is a sensible minimum.
        file_size_bytes: RLIMIT_FSIZE, the largest file the child may write.
            Its stdout and stderr are pipes, so this does not cap prints.
        open_files: RLIMIT_NOFILE, the number of file descriptors the child
            may hold (the runner keeps its two private pipe ends just below
            this number).
        processes: RLIMIT_NPROC for the child's user, effective only when the
            child runs as an unprivileged user (bwrap mode under root, or a
            non-root grader). Stops fork bombs. The count covers every sandbox
            at once (they share one uid); lab code never forks, so a small
            number keeps a fork bomb from slowing the submissions graded
            beside it.
        wall_seconds: Wall-clock budget of one child from its start to its
            last answer, setup included.
        setup_seconds: Wall-clock budget for starting the child, importing
            numpy and executing the submission's top-level statements.
        request_seconds: Default wall-clock budget for answering one request
            (a request may ask for a different budget, e.g. a training run).
        output_bytes: How much of the child's stdout, and separately stderr,
            is kept (half from the start, half from the end); the rest is
            read and discarded so that the child never blocks on a full pipe.
        response_bytes: Largest total array payload of one response frame;
            a larger one is refused before being read (and the child is
            replaced, as the stream cannot be followed past it).
        total_response_bytes: Most array bytes accepted from all of one
            submission's replies together; a reply beyond it is "malformed
            data" for its request (see :mod:`autograder.sandbox.answers`).
            Bounds the grader's memory per submission.
        max_restarts: How many times a crashed or timed-out child is replaced
            by a fresh one for the remaining requests of one submission.
    """

    cpu_seconds: int = 120
    address_space_bytes: int = 2 * GIB
    file_size_bytes: int = 16 * MIB
    open_files: int = 64
    processes: int = 64
    wall_seconds: float = 300.0
    setup_seconds: float = 30.0
    request_seconds: float = 10.0
    output_bytes: int = 64 * KIB
    response_bytes: int = 256 * MIB
    total_response_bytes: int = 128 * MIB
    max_restarts: int = 3

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "address_space_bytes", "file_size_bytes", "open_files",
                     "processes", "output_bytes", "response_bytes", "total_response_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive")
        for name in ("wall_seconds", "setup_seconds", "request_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Limits.{name} must be positive")
        if self.open_files < 16:
            raise ValueError("Limits.open_files must be at least 16 (the interpreter needs a few)")
        if self.max_restarts < 0:
            raise ValueError("Limits.max_restarts must be zero or more")
