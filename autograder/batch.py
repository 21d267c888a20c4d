"""Grading many submissions: discovery, resume, parallel and distributed runs.

TRUSTED. Finds the submissions named on the command line, skips those whose
report in the grade directory already matches the file's sha256, grades the
rest serially, in a pool of local worker processes (`workers`), or on a Dask
cluster (`scheduler`), and writes every report as soon as it arrives. Only
this process writes the grade directory; workers return `Report` objects.

Surviving a kill (SIGKILL included) at any moment:

* Files in the grade directory are written atomically (`report.write_atomic`),
  so a kill leaves at most a stale `.<name>.<random>.tmp` beside them, never
  a half-written report.
* While a batch runs it holds an exclusive `flock` on the grade directory
  itself (no lock file), so a second grader on the same directory stops
  with a clear error instead of racing the first; the kernel drops the lock
  when the process dies.
* Every temporary directory the run creates on this machine (the sandboxes'
  trees, in the grader or its local workers) is created inside one run
  directory, `$TMPDIR/mlp-autograde-run-<pid>-<random>`, which the grader
  flocks while it lives. (Dask workers are other machines' processes: they
  outlive the client by design, and clean up after each task themselves.)
* A tiny janitor process (stdlib only, its own session so that a signal to
  the grader's process group spares it) waits for end-of-file on a pipe
  whose only writer is the grader. When the grader ends, however it ends,
  the janitor removes the run directory and the stale `.tmp` files in the
  grade directory, then exits.
* Worker processes are the grader's own children (`spawn`) and ask the kernel
  for SIGKILL when their parent dies (`PR_SET_PDEATHSIG`, checked against a
  race with `getppid`); the sandbox children of a worker do the same with
  respect to the worker, and bubblewrap's `--die-with-parent` takes the rest
  of the sandbox with them. So nothing runs on after the grader.
* Should the janitor itself have been killed too, the next run sweeps the
  stale `.tmp` files of its grade directory and every run directory whose
  flock is free (its owner is dead), before grading.

Parallelism: with `workers` > 1, that many `spawn`ed worker processes each
grade one submission at a time (so each runs one sandbox child at a time),
with single-threaded BLAS: on a 2-core machine a multi-threaded OpenBLAS made
the grader's small matrix products several times slower, and N workers
already keep N cores busy. At most two submissions per worker are in flight,
so a kill loses little and the pool's queues stay small.

Resuming: a report is reused when its JSON names the same assignment and
file sha256 and its Markdown and HTML feedback exist; reports that record an
internal error of the grader are graded again. The class files
(`grades.csv`, `summary.json`, `summary.html`) are always rewritten from all reports, in
the order of the submissions, so an interrupted-then-resumed run ends with
the same grade directory as an uninterrupted one (timings apart).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.sandbox.limits import Limits

if TYPE_CHECKING:
    from autograder.results import Report
    from autograder.course.spec import AssignmentSpec

_SAFE_ID = re.compile(r'[^A-Za-z0-9._@+-]+')

#: Prefix of the per-run temporary directory (in `tempfile.gettempdir()`).
RUN_DIR_PREFIX = 'mlp-autograde-run-'

#: Words that mark a report as the grader's own failure (graded again on resume).
INTERNAL_ERROR_MARK = 'internal error'

#: Temporary files `report.write_atomic` and the CLI's write probe leave if killed.
_STALE_FILE = re.compile(r'^\..+\.[a-z0-9_]{8}\.tmp$|^\.write-test$')

#: Submissions in flight per worker thread: enough to keep workers busy, few
#: enough that a kill loses little and a Dask client holds little.
_IN_FLIGHT_PER_WORKER = 2

#: Environment for local worker processes: parallelism comes from grading
#: several submissions at once, so BLAS threads would only oversubscribe the
#: cores (on a 2-core machine a multi-threaded OpenBLAS made the grader's
#: small matrix products several times slower).
_SINGLE_THREADED_BLAS = {'OPENBLAS_NUM_THREADS': '1', 'OMP_NUM_THREADS': '1',
                         'MKL_NUM_THREADS': '1'}

#: Seconds to wait for a Dask scheduler to answer before giving up.
DASK_CONNECT_TIMEOUT = 30

_PR_SET_PDEATHSIG = 1


class BatchError(Exception):
    """The batch cannot run (grade directory busy, scheduler unreachable, ...)."""


@dataclass(frozen=True)
class Submission:
    """One file to grade and whose it is."""

    student: str
    path: Path


# --------------------------------------------------------------------------
# Discovery and resume
# --------------------------------------------------------------------------


def _student_id(raw: str) -> str:
    cleaned = _SAFE_ID.sub('_', raw).strip('._') or 'student'
    return cleaned[:100]


def find_submissions(paths: list[Path], assignment: str) -> list[Submission]:
    """Expands command-line paths into submissions.

    A file is graded as given (a non-notebook is rejected later, not skipped).
    A folder is searched for an nbgrader `submitted/<student>/<assignment>/`
    tree (itself, or a course folder containing `submitted/`), where a
    student folder without a notebook is graded as the folder (and so
    rejected, saying what it holds); otherwise the `.ipynb` files directly
    in it are taken, student id = file stem.
    Duplicate student ids get a numeric suffix.

    Args:
        paths: Files and folders from the command line.
        assignment: The assignment name (the nbgrader folder name).

    Returns:
        The submissions, in a stable order (arguments in order, files sorted).
    """
    found: list[Submission] = []
    for path in map(Path, paths):
        if path.is_dir():
            submitted = path / 'submitted' if (path / 'submitted').is_dir() else path
            nbgrader = sorted(submitted.glob('*/{0}/*.ipynb'.format(assignment)))
            if nbgrader:
                found += [Submission(_student_id(p.parent.parent.name), p) for p in nbgrader]
                # A student whose folder holds no notebook still gets a (rejected) report.
                with_notebook = {p.parent for p in nbgrader}
                found += [Submission(_student_id(folder.parent.name), folder)
                          for folder in sorted(submitted.glob('*/{0}'.format(assignment)))
                          if folder.is_dir() and folder not in with_notebook]
            else:
                found += [Submission(_student_id(p.stem), p) for p in sorted(path.glob('*.ipynb'))]
        else:
            found.append(Submission(_student_id(path.stem), path))
    seen: dict[str, int] = {}
    unique = []
    for submission in found:
        count = seen.get(submission.student, 0)
        seen[submission.student] = count + 1
        student = submission.student if count == 0 else '{0}-{1}'.format(submission.student, count + 1)
        unique.append(Submission(student, submission.path))
    return unique


def _open_regular_file(path: Path):
    """Opens a submission for reading, or returns None if it is not a regular file.

    A FIFO, device or socket (or a link to one) could block or never end;
    O_NONBLOCK makes the open itself return at once, and the type is checked
    on the opened descriptor, so a swap between check and use cannot fool it.
    """
    try:
        descriptor = os.open(str(path), os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        return None
    return os.fdopen(descriptor, 'rb')


def file_sha256(path: Path) -> str:
    """sha256 of a regular file's bytes ('' if it is not one or cannot be read)."""
    digest = hashlib.sha256()
    handle = _open_regular_file(path)
    if handle is None:
        return ''
    try:
        with handle:
            for block in iter(lambda: handle.read(1 << 20), b''):
                digest.update(block)
    except OSError:
        return ''
    return digest.hexdigest()


def read_submission_bytes(path: Path) -> bytes | None:
    """A regular file's bytes, or None (the grader then rejects the path with its reason)."""
    handle = _open_regular_file(path)
    if handle is None:
        return None
    try:
        with handle:
            return handle.read()
    except OSError:
        return None


def is_internal_failure(report: Report) -> bool:
    """True when the report records a failure of the grader, not of the submission."""
    return INTERNAL_ERROR_MARK in report.error


def _report_from_json(data: dict) -> Report:
    from autograder.results import CheckResult, Report
    tests = [CheckResult(**{k: t[k] for k in ('grade_id', 'name', 'target', 'kind', 'status',
                                              'score', 'max_score', 'output')},
                         diagnosis=t.get('diagnosis', '')) for t in data['tests']]
    return Report(student=data['student'], assignment=data['assignment'],
                  submission=data['submission'], sha256=data['sha256'], status=data['status'],
                  score=data['score'], max_score=data['max_score'], isolation=data['isolation'],
                  execution_time=data['execution_time'], tests=tests, error=data.get('error', ''),
                  notes=data.get('notes', []))


def existing_report(out_dir: Path, submission: Submission, spec: AssignmentSpec) -> Report | None:
    """The report already in `out_dir` for this exact file, if it can be reused.

    Returns:
        The report, or None when there is none, it is unreadable, it is for
        another assignment or another version of the file (sha256), its
        feedback file is missing, or it records an internal grader error.
    """
    path = out_dir / '{0}.json'.format(submission.student)
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
        if data.get('assignment') != spec.name or data.get('sha256') != file_sha256(submission.path):
            return None
        for suffix in ('md', 'html'):
            if not (out_dir / '{0}.{1}'.format(submission.student, suffix)).is_file():
                return None
        report = _report_from_json(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None if is_internal_failure(report) else report


# --------------------------------------------------------------------------
# Grading one submission (in the parent, a local worker or a Dask worker)
# --------------------------------------------------------------------------


def _spec(assignment: str, course_root: str) -> AssignmentSpec:
    """The assignment's spec, loaded once per version of its files.

    A long-lived worker (a Dask worker serves many runs) must notice when the
    instructor edits the spec or the source notebook between two runs.
    """
    from autograder.course.spec import SPEC_DIR
    stamps = []
    for path in [SPEC_DIR / '{0}.json'.format(assignment),
                 *sorted((Path(course_root) / 'source' / assignment).glob('*.ipynb'))]:
        try:
            stamps.append((str(path), path.stat().st_mtime_ns))
        except OSError:
            stamps.append((str(path), None))
    return _spec_version(assignment, course_root, tuple(stamps))


@lru_cache(maxsize=8)
def _spec_version(assignment: str, course_root: str, stamps: tuple) -> AssignmentSpec:
    from autograder.course.spec import load_spec
    return load_spec(assignment, Path(course_root))


def _internal_failure_report(spec: AssignmentSpec, student: str, path: str, sha256: str,
                             error: BaseException | str) -> Report:
    from autograder.grade import rejected_report
    what = error if isinstance(error, str) else '{0}: {1}'.format(type(error).__name__, error)
    return rejected_report(spec, student, path, sha256,
                           'The grader failed on this file ({0}: {1}); please tell your '
                           'instructor.'.format(INTERNAL_ERROR_MARK, what))


def grade_one(assignment: str, course_root: str, student: str, path: str,
              limits: Limits, public_only: bool = False, content: bytes | None = None) -> Report:
    """Grades one submission; safe to run in a worker process or on a Dask worker.

    Any failure of the harness itself becomes a rejected report saying so
    (an "internal error", graded again on the next run), so one bad
    submission never stops a batch.

    Args:
        assignment: Assignment name.
        course_root: Course folder (source/ and release/) as seen by the
            process running this function.
        student: Student id for the report.
        path: The submission's path, as shown in the report; also the file
            read when `content` is None.
        limits: Sandbox limits.
        public_only: Run only the public checks.
        content: The file's bytes, for workers that cannot see `path` (Dask);
            they are written to a private temporary file and graded from there.

    Returns:
        The submission's report.
    """
    from autograder.grade import grade_submission
    spec = _spec(assignment, str(course_root))
    try:
        if content is None:
            return grade_submission(Path(path), spec, student=student, limits=limits,
                                    public_only=public_only, display_path=path)
        with tempfile.TemporaryDirectory(prefix='mlp-autograde-submission-') as folder:
            copy = Path(folder) / (Path(path).name or 'submission.ipynb')
            copy.write_bytes(content)
            return grade_submission(copy, spec, student=student, limits=limits,
                                    public_only=public_only, display_path=path)
    except Exception as error:  # noqa: BLE001 - a batch must survive harness bugs.
        sha256 = hashlib.sha256(content).hexdigest() if content is not None else file_sha256(Path(path))
        return _internal_failure_report(spec, student, path, sha256, error)


def write_report_files(out_dir: Path, report: Report) -> None:
    """Writes a student's JSON report and Markdown feedback atomically (feedback first).

    The JSON goes last because its presence (with the feedback) is what a
    resumed run takes as "done".
    """
    from autograder.outputs import feedback_html
    from autograder.outputs import report as report_files
    report_files.write_atomic(out_dir / '{0}.md'.format(report.student),
                              report_files.feedback_markdown(report))
    # HTML from the in-memory report: its training plots need CheckResult.details.
    report_files.write_atomic(out_dir / '{0}.html'.format(report.student),
                              feedback_html.student_page(report))
    report_files.write_atomic(out_dir / '{0}.json'.format(report.student),
                              report_files.report_json(report))


# --------------------------------------------------------------------------
# Leaving nothing behind: grade-directory lock, run directory, janitor
# --------------------------------------------------------------------------


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


@contextlib.contextmanager
def _locked_directory(path: Path) -> Iterator[None]:
    """Holds an exclusive flock on the directory itself while the block runs.

    Raises:
        BatchError: Another process holds it (a grader already writing there).
    """
    fd = os.open(str(path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        if not _try_flock(fd):
            raise BatchError('another mlp-autograde process is writing {0}; wait for it to '
                             'finish or choose another --out'.format(path))
        yield
    finally:
        os.close(fd)


def remove_stale_files(out_dir: Path) -> list[str]:
    """Removes temporary files an interrupted run left in the grade directory.

    Only call it while holding the grade directory's lock.

    Returns:
        The names removed.
    """
    removed = []
    for entry in os.scandir(out_dir):
        if entry.is_file(follow_symlinks=False) and _STALE_FILE.match(entry.name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(entry.name)
    return removed


def remove_stale_run_dirs(temp_root: str | None = None) -> list[str]:
    """Removes run directories whose grader is dead (their flock is free).

    Args:
        temp_root: Where run directories live (default: `tempfile.gettempdir()`).

    Returns:
        The paths removed.
    """
    temp_root = temp_root or tempfile.gettempdir()
    removed = []
    try:
        entries = list(os.scandir(temp_root))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(RUN_DIR_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.geteuid():
                continue
            fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            if _try_flock(fd):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.path)
        finally:
            os.close(fd)
    return removed


#: The janitor: stdlib only, run with `python -I -S`. argv: run_dir out_dir stale-file-pattern.
_JANITOR_SOURCE = r'''
import fcntl, os, re, shutil, sys, time
run_dir, out_dir = sys.argv[1], sys.argv[2]
stale = re.compile(sys.argv[3])
try:
    while os.read(0, 4096):
        pass
except OSError:
    pass
for attempt in range(100):
    shutil.rmtree(run_dir, ignore_errors=True)
    if not os.path.lexists(run_dir):
        break
    time.sleep(0.05)
try:
    fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
except OSError:
    sys.exit(0)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    sys.exit(0)
for name in os.listdir(out_dir):
    if stale.match(name):
        try:
            os.unlink(os.path.join(out_dir, name))
        except OSError:
            pass
'''


@contextlib.contextmanager
def _run_directory(out_dir: Path) -> Iterator[str]:
    """A flocked per-run temporary directory, removed at the end or by the janitor.

    Yields:
        The run directory's path.
    """
    run_dir = tempfile.mkdtemp(prefix='{0}{1}-'.format(RUN_DIR_PREFIX, os.getpid()))
    fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    janitor = None
    try:
        janitor = subprocess.Popen(
            [os.path.realpath(sys.executable), '-I', '-S', '-c', _JANITOR_SOURCE,
             run_dir, str(out_dir.resolve()), _STALE_FILE.pattern],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True)
        yield run_dir
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
        os.close(fd)
        if janitor is not None:
            janitor.stdin.close()
            try:
                janitor.wait(timeout=10)
            except subprocess.TimeoutExpired:
                janitor.kill()
                janitor.wait()


@contextlib.contextmanager
def _temporary_files_in(folder: str) -> Iterator[None]:
    """Makes this process's `tempfile` put new temporary files in `folder`."""
    previous = tempfile.tempdir
    tempfile.tempdir = folder
    try:
        yield
    finally:
        tempfile.tempdir = previous


def _die_with_parent(parent_pid: int) -> None:
    """Asks the kernel to SIGKILL this process when its parent dies (Linux).

    Exits at once if the parent is already gone (it died before the request).
    """
    if sys.platform.startswith('linux'):
        libc = ctypes.CDLL(ctypes.util.find_library('c') or None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def _init_local_worker(parent_pid: int, run_dir: str) -> None:
    """Initialiser of a local worker process: die with the grader, temp files in the run dir.

    Ctrl-C is left to the grader, which stops the pool itself.
    """
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tempfile.tempdir = run_dir
    # As in autograder.cli: jsonschema's optional IRI checker costs ~2 s to import and
    # checks a format no notebook uses. (nbformat is not imported yet at this point.)
    sys.modules.setdefault('rfc3987_syntax', None)


# --------------------------------------------------------------------------
# Running jobs: in this process, in a local pool, on a Dask cluster
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """What a worker needs to grade one submission (plain, picklable data)."""

    assignment: str
    course_root: str
    student: str
    path: str

    def arguments(self) -> tuple[str, str, str, str]:
        return (self.assignment, self.course_root, self.student, self.path)


Outcome = tuple[_Job, 'Report | BaseException']


def _run_serial(jobs: list[_Job], limits: Limits, run_dir: str) -> Iterator[Outcome]:
    with _temporary_files_in(run_dir):
        for job in jobs:
            yield job, grade_one(*job.arguments(), limits)


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Sets the BLAS thread counts to 1 (unless set) for processes started in the block."""
    added = {name: value for name, value in _SINGLE_THREADED_BLAS.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _windowed(submit: Callable[[_Job], concurrent.futures.Future], jobs: list[_Job],
              window: int) -> Iterator[Outcome]:
    """Keeps at most `window` jobs submitted; yields (job, report or exception) as they finish.

    A job that cannot even be submitted (e.g. the pool broke because a
    worker was killed) is yielded with that exception.
    """
    pending: dict[concurrent.futures.Future, _Job] = {}
    queue = iter(jobs)

    def refill() -> Iterator[Outcome]:
        for job in queue:
            try:
                pending[submit(job)] = job
            except Exception as error:  # noqa: BLE001 - reported per submission.
                yield job, error
            if len(pending) >= window:
                return

    yield from refill()
    while pending:
        done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
        for future in done:
            job = pending.pop(future)
            error = future.exception()
            yield job, (error if error is not None else future.result())
        yield from refill()


def _run_local(jobs: list[_Job], workers: int, limits: Limits, run_dir: str) -> Iterator[Outcome]:
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context('spawn'),
        initializer=_init_local_worker, initargs=(os.getpid(), run_dir))
    try:
        with _single_threaded_blas():
            yield from _windowed(lambda job: pool.submit(grade_one, *job.arguments(), limits),
                                 jobs, workers * _IN_FLIGHT_PER_WORKER)
    except BaseException:
        # Interrupted (Ctrl-C, or the consumer stopped): do not wait for running grades.
        pool.shutdown(wait=False, cancel_futures=True)
        for process in list((getattr(pool, '_processes', None) or {}).values()):
            with contextlib.suppress(OSError):
                process.kill()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_dask(jobs: list[_Job], scheduler: str, limits: Limits) -> Iterator[Outcome]:
    """Grades on a Dask cluster; each submission's bytes travel with its task.

    The workers need this package installed and the course folder at the
    same path (specs, source and release notebooks); they need not see the
    submissions. Only this process writes the grade directory.
    """
    try:
        from dask.distributed import Client, as_completed
    except ImportError as error:
        raise BatchError('--scheduler needs dask.distributed: {0}'.format(error)) from error
    try:
        client = Client(scheduler, set_as_default=False, timeout=DASK_CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as error:
        raise BatchError('cannot reach the Dask scheduler at {0}: {1}'.format(scheduler, error)) from error
    with client:
        window = max(1, sum(client.nthreads().values())) * _IN_FLIGHT_PER_WORKER
        queue = iter(jobs)
        job_of = {}

        def submit(job: _Job):
            content = read_submission_bytes(Path(job.path))  # None: graded from the path, which rejects it
            future = client.submit(grade_one, *job.arguments(), limits, False, content, pure=False,
                                   key='grade-{0}-{1}'.format(job.student, os.urandom(6).hex()))
            job_of[future.key] = job
            return future

        finished = as_completed([submit(job) for _, job in zip(range(window), queue)], loop=client.loop)
        for future in finished:
            job = job_of.pop(future.key)
            try:
                outcome = future.result()
            except Exception as error:  # noqa: BLE001 - e.g. a worker died: report, go on.
                outcome = error
            future.release()
            yield job, outcome
            following = next(queue, None)
            if following is not None:
                finished.add(submit(following))


# --------------------------------------------------------------------------
# The batch
# --------------------------------------------------------------------------


def grade_batch(spec: AssignmentSpec, submissions: list[Submission], out_dir: Path, *,
                workers: int = 1, scheduler: str | None = None, limits: Limits | None = None,
                progress: bool = True) -> tuple[list[Report], dict]:
    """Grades submissions into `out_dir`, resuming where reports already match.

    Args:
        spec: The assignment's spec.
        submissions: What to grade (see `find_submissions`).
        out_dir: The grade directory (created if missing).
        workers: 1 grades in this process; N > 1 in N local worker processes.
        scheduler: Address of a Dask scheduler; overrides `workers`.
        limits: Sandbox limits (defaults if None).
        progress: Show a progress bar on stderr.

    Returns:
        (all reports in the order of `submissions`, as read back from their
        JSON files, the summary dict written to summary.json). Reports are
        not held in memory while grading, and the class files are made from
        the JSON files, so a resumed run ends exactly like an uninterrupted one.

    Raises:
        BatchError: The grade directory is in use by another grader, or the
            Dask scheduler cannot be reached.

    Note:
        Local workers are started with `multiprocessing`'s "spawn" method, so
        a script calling this with workers > 1 needs the usual
        `if __name__ == '__main__':` guard.
    """
    from autograder.outputs import report as report_files
    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    limits = limits or Limits()
    with _locked_directory(out_dir):
        remove_stale_files(out_dir)
        remove_stale_run_dirs()
        todo: list[_Job] = []
        for submission in submissions:
            if existing_report(out_dir, submission, spec) is None:
                todo.append(_Job(spec.name, str(spec.course_root), submission.student,
                                 str(submission.path)))
        with _run_directory(out_dir) as run_dir:
            _grade_into(out_dir, spec, todo, _outcomes(todo, workers, scheduler, limits, run_dir),
                        progress)
        reports = [_read_report(out_dir, submission.student) for submission in submissions]
        summary = report_files.summary(spec, reports, time.monotonic() - started, len(todo))
        report_files.write_atomic(out_dir / 'grades.csv', report_files.grades_csv(spec, reports))
        report_files.write_atomic(out_dir / 'summary.json', json.dumps(summary, indent=2) + '\n')
        from autograder.outputs import feedback_html
        report_files.write_atomic(out_dir / 'summary.html', feedback_html.summary_page(spec, reports, summary))
    return reports, summary


def _outcomes(jobs: list[_Job], workers: int, scheduler: str | None, limits: Limits,
              run_dir: str) -> Iterator[Outcome]:
    if scheduler:
        return _run_dask(jobs, scheduler, limits)
    if workers > 1 and len(jobs) > 1:
        return _run_local(jobs, min(workers, len(jobs)), limits, run_dir)
    return _run_serial(jobs, limits, run_dir)


def _grade_into(out_dir: Path, spec: AssignmentSpec, jobs: list[_Job],
                outcomes: Iterator[Outcome], progress: bool) -> None:
    """Writes each report as it arrives; keeps none in memory (the class files re-read them)."""
    bar = _progress(progress, len(jobs))
    try:
        for job, outcome in outcomes:
            if isinstance(outcome, BaseException):
                outcome = _internal_failure_report(spec, job.student, job.path,
                                                   file_sha256(Path(job.path)), outcome)
            write_report_files(out_dir, outcome)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        outcomes.close()


def _read_report(out_dir: Path, student: str) -> Report:
    """A report as written to the grade directory (what the class files are made from)."""
    path = out_dir / '{0}.json'.format(student)
    try:
        return _report_from_json(json.loads(path.read_text(encoding='utf-8')))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BatchError('cannot read back {0}: {1}'.format(path, error)) from error


def _progress(enabled: bool, total: int):
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc='grading', unit='notebook')
