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
  the janitor kills any process whose command line still names the run
  directory (a sandbox caught half-started, e.g. a bubblewrap whose parent
  died before `--die-with-parent` took effect), removes the run directory and
  the stale `.tmp` files in the grade directory, then exits.
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
    """One file to grade, whose it is, and the folder it was found in.

    Attributes:
        student: The student id (unique in the batch, never a class file's name).
        path: The submitted file (or folder, to be rejected with its reason).
        root: The folder the grader was given, which `path` must be inside with
            no symbolic link on the way (None: the folder holding `path`); see
            `autograder.submission.files`.
    """

    student: str
    path: Path
    root: Path | None = None


# --------------------------------------------------------------------------
# Discovery and resume
# --------------------------------------------------------------------------


#: Longest student id (before a de-duplicating suffix).
MAX_ID_CHARS = 100


def _student_id(raw: str) -> str:
    """A file-name-safe id from a folder or file name: ASCII letters, digits and ``._@+-``.

    Never empty and never starting with a dot (no hidden files, no ``..``).
    """
    cleaned = _SAFE_ID.sub('_', raw).strip('._') or 'student'
    return cleaned[:MAX_ID_CHARS]


def unique_student_ids(wanted: list[str]) -> list[str]:
    """Ids unique in the batch by construction, none of them a class file's name.

    Ids are compared case-insensitively (the grade directory may be on a
    case-insensitive file system) and against
    `report.RESERVED_STUDENT_IDS` (the stems of grades.csv, summary.json,
    summary.html). Every id that is free keeps its name, the first of equal
    ids included; the others (and reserved ones) get the smallest suffix
    ``-2``, ``-3``, ... that is free among ALL ids, original and generated, so
    a generated ``carol-2`` never takes the name of a real student ``carol-2``.

    Args:
        wanted: Cleaned ids (`_student_id`), one per submission, in order.

    Returns:
        The ids to use, in the same order.
    """
    from autograder.outputs.report import RESERVED_STUDENT_IDS
    taken = {reserved.casefold() for reserved in RESERVED_STUDENT_IDS}
    chosen: list[str | None] = []
    for student in wanted:
        key = student.casefold()
        chosen.append(None if key in taken else student)
        taken.add(key)
    for index, student in enumerate(wanted):
        if chosen[index] is None:
            number = 2
            while '{0}-{1}'.format(student, number).casefold() in taken:
                number += 1
            chosen[index] = '{0}-{1}'.format(student, number)
            taken.add(chosen[index].casefold())
    return [student for student in chosen if student is not None]


def find_submissions(paths: list[Path], assignment: str) -> list[Submission]:
    """Expands command-line paths into submissions.

    A file is graded as given (a non-notebook is rejected later, not skipped).
    A folder is searched for an nbgrader `submitted/<student>/<assignment>/`
    tree (itself, or a course folder containing `submitted/`), where a
    student folder without a notebook is graded as the folder (and so
    rejected, saying what it holds); otherwise the `.ipynb` files directly
    in it are taken, student id = file stem. Links are listed too (a folder
    never drops a file silently): `autograder.submission.files` rejects them,
    each with its own report. Ids are made unique by `unique_student_ids`.

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
                found += [Submission(_student_id(p.parent.parent.name), p, submitted) for p in nbgrader]
                # A student whose folder holds no notebook still gets a (rejected) report.
                with_notebook = {p.parent for p in nbgrader}
                found += [Submission(_student_id(folder.parent.name), folder, submitted)
                          for folder in sorted(submitted.glob('*/{0}'.format(assignment)))
                          if folder.is_dir() and folder not in with_notebook]
            else:
                found += [Submission(_student_id(p.stem), p, path) for p in sorted(path.glob('*.ipynb'))]
        else:
            found.append(Submission(_student_id(path.stem), path))
    ids = unique_student_ids([submission.student for submission in found])
    return [Submission(student, submission.path, submission.root) for student, submission in zip(ids, found)]


def _open_regular_file(path: Path, root: Path | None = None):
    """Opens a submission for reading, or returns None if it may not be graded.

    The one rule of `autograder.submission.files` decides (a regular file
    inside `root`, no symbolic link on the way): a FIFO, a device or a link
    to either is never opened for reading, so hashing cannot block or run
    forever.
    """
    from autograder.submission.files import SubmissionFileError, open_submission
    try:
        return os.fdopen(open_submission(path, root), 'rb')
    except SubmissionFileError:
        return None


def file_sha256(path: Path, root: Path | None = None) -> str:
    """sha256 of a submission's bytes ('' if it may not be graded or cannot be read)."""
    digest = hashlib.sha256()
    handle = _open_regular_file(path, root)
    if handle is None:
        return ''
    try:
        with handle:
            for block in iter(lambda: handle.read(1 << 20), b''):
                digest.update(block)
    except OSError:
        return ''
    return digest.hexdigest()


def read_submission_bytes(path: Path, root: Path | None = None) -> bytes | None:
    """A submission's bytes, or None (the grader then rejects the path with its reason)."""
    handle = _open_regular_file(path, root)
    if handle is None:
        return None
    try:
        with handle:
            return handle.read()
    except OSError:
        return None


def is_internal_failure(report: Report) -> bool:
    """True when the report records a failure of the grader, not of the submission.

    That is `Report.harness_failed` (status 'error', or a check that could not
    run for the harness's sake), or a report of an older version that said
    "internal error". Such reports are never reused by a resumed run.
    """
    return report.harness_failed or (report.status == 'rejected' and INTERNAL_ERROR_MARK in report.error)


def _report_from_json(data: dict) -> Report:
    from autograder.results import CheckResult, Report
    tests = [CheckResult(**{k: t[k] for k in ('grade_id', 'name', 'target', 'kind', 'status',
                                              'score', 'max_score', 'output')},
                         diagnosis=t.get('diagnosis', ''), harness=t.get('harness_error') is True)
             for t in data['tests']]
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
        if data.get('assignment') != spec.name or data.get('sha256') != file_sha256(submission.path, submission.root):
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
    """A report with status 'error': the harness failed on this submission, not the student.

    Built from plain values only (no isolation probe, no file access), so
    that it can always be made, whatever failed.
    """
    from autograder.results import Report, harness_message
    if isinstance(error, BaseException):
        what = '{0}: {1}'.format(type(error).__name__, str(error)[:500])
    else:
        what = error
    return Report(student=student, assignment=spec.name, submission=path, sha256=sha256,
                  status='error', error=harness_message('{0}, {1}'.format(INTERNAL_ERROR_MARK, what)),
                  score=0.0, max_score=spec.max_score, isolation=_known_isolation(),
                  execution_time=0.0)


def _known_isolation() -> str:
    """The isolation level if this process knows it already, else 'rlimits' (the schema needs one)."""
    from autograder.sandbox import isolation
    return getattr(isolation, '_detected_level', None) or 'rlimits'


#: (isolation level, student mlp folder) pairs whose sandbox started in this process.
_WORKING_SANDBOXES: set[tuple[str, str]] = set()


def require_working_sandbox(spec: AssignmentSpec, limits: Limits) -> None:
    """Starts one empty sandbox per process, level and student copy; raises if it cannot.

    A broken install (no student copy of mlp, a sandbox that cannot import
    numpy, bubblewrap failing on this machine) would otherwise look like
    every student's code failing to load. Only success is remembered, so a
    machine that recovers is used again.

    Raises:
        SandboxUnavailable: The sandbox does not start here (a `HarnessError`).
    """
    from autograder.sandbox import isolation
    key = (isolation.detect_isolation(), str(spec.student_mlp_dir))
    if key in _WORKING_SANDBOXES:
        return
    try:
        outcome = isolation.exec_untrusted('', [], student_mlp_dir=spec.student_mlp_dir, limits=limits)
    except ValueError as error:  # e.g. the student copy of mlp is missing
        raise isolation.SandboxUnavailable('the sandbox cannot be prepared: {0}'.format(error)) from error
    if not outcome.setup.ok:
        raise isolation.SandboxUnavailable('an empty sandbox does not start on this machine ({0}): {1}{2}'.format(
            outcome.isolation, outcome.setup.message,
            '; it printed: ' + outcome.stderr_tail.strip()[-300:] if outcome.stderr_tail.strip() else ''))
    _WORKING_SANDBOXES.add(key)


def grade_one(assignment: str, course_root: str, student: str, path: str,
              limits: Limits, public_only: bool = False, content: bytes | None = None,
              root: str | None = None) -> Report:
    """Grades one submission; safe to run in a worker process or on a Dask worker.

    Any failure of the harness itself (a bug, a `HarnessError` such as a
    sandbox that does not start here) becomes a report with status 'error'
    saying so, graded again on the next run, so one submission never stops
    a batch and a broken machine never fails a student.

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
        root: The folder the grader was given (see `Submission.root`).

    Returns:
        The submission's report.
    """
    from autograder.grade import grade_submission
    spec = _spec(assignment, str(course_root))
    root_path = Path(root) if root is not None else None
    try:
        require_working_sandbox(spec, limits)
        if content is None:
            return grade_submission(Path(path), spec, student=student, limits=limits,
                                    public_only=public_only, display_path=path, root=root_path)
        with tempfile.TemporaryDirectory(prefix='mlp-autograde-submission-') as folder:
            copy = Path(folder) / (Path(path).name or 'submission.ipynb')
            copy.write_bytes(content)
            return grade_submission(copy, spec, student=student, limits=limits,
                                    public_only=public_only, display_path=path)
    except Exception as error:  # noqa: BLE001 - a batch must survive harness bugs.
        sha256 = hashlib.sha256(content).hexdigest() if content is not None else file_sha256(Path(path), root_path)
        return _internal_failure_report(spec, student, path, sha256, error)


def write_report_files(out_dir: Path, report: Report) -> None:
    """Writes a student's JSON report and Markdown feedback atomically (feedback first).

    The JSON goes last because its presence (with the feedback) is what a
    resumed run takes as "done".
    """
    from autograder.outputs import feedback_html
    from autograder.outputs import report as report_files
    # Render all three before writing any, so a failure leaves no mixed set.
    texts = [('md', report_files.feedback_markdown(report)),
             # HTML from the in-memory report: its training plots need CheckResult.details.
             ('html', feedback_html.student_page(report)),
             ('json', report_files.report_json(report))]
    for suffix, text in texts:
        report_files.write_atomic(out_dir / '{0}.{1}'.format(report.student, suffix), text)


def write_report_files_or_error(out_dir: Path, spec: AssignmentSpec, report: Report) -> None:
    """`write_report_files`, falling back to a harness `error` report if that fails.

    Rendering or writing one submission's files (a plot that matplotlib
    cannot draw, a text no writer expected) must not stop the batch: the
    submission then gets an 'error' report saying the grader failed, the CLI
    exits non-zero, and the next run grades it again. Only a failure to
    write even that report (the grade directory is unwritable) is raised.
    """
    try:
        write_report_files(out_dir, report)
    except Exception as error:  # noqa: BLE001 - one submission never stops the batch.
        failure = _internal_failure_report(
            spec, report.student, report.submission, report.sha256,
            'writing the feedback failed ({0}: {1})'.format(type(error).__name__, str(error)[:300]))
        write_report_files(out_dir, failure)


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
import fcntl, os, re, shutil, signal, sys, time
run_dir, out_dir = sys.argv[1], sys.argv[2]
stale = re.compile(sys.argv[3])
try:
    while os.read(0, 4096):
        pass
except OSError:
    pass
# Stragglers: any process whose command line names the run directory (a sandbox, or a
# bubblewrap caught half-started when its parent died) is killed, so nothing runs on.
needle = run_dir.encode()
for sweep in range(20):
    found = False
    for entry in os.listdir('/proc') if os.path.isdir('/proc') else ():
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open('/proc/%s/cmdline' % entry, 'rb') as handle:
                named = needle in handle.read()
        except OSError:
            continue
        if named:
            try:
                os.kill(int(entry), signal.SIGKILL)
                found = True
            except OSError:
                pass
    if not found:
        break
    time.sleep(0.05)
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
    # Passable, not listable, by others: a root grader's sandbox uid must reach the sandbox
    # trees made inside it (`isolation.sandbox_parent`), each under an unguessable name.
    os.chmod(run_dir, 0o711)
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
    root: str | None = None

    def arguments(self) -> tuple[str, str, str, str]:
        return (self.assignment, self.course_root, self.student, self.path)


def _root(job: _Job) -> Path | None:
    return Path(job.root) if job.root is not None else None


Outcome = tuple[_Job, 'Report | BaseException']


def _run_serial(jobs: list[_Job], limits: Limits, run_dir: str) -> Iterator[Outcome]:
    with _temporary_files_in(run_dir):
        for job in jobs:
            yield job, grade_one(*job.arguments(), limits, root=job.root)


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
            yield from _windowed(lambda job: pool.submit(grade_one, *job.arguments(), limits, root=job.root),
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
        failed_on: dict[str, set[str]] = {}  # student -> workers whose harness failed for them

        def submit(job: _Job, avoid=frozenset()):
            content = read_submission_bytes(Path(job.path), _root(job))  # None: graded from the path, which rejects it
            others = [address for address in client.nthreads() if address not in avoid]
            placement = {'workers': others, 'allow_other_workers': False} if avoid else {}
            future = client.submit(grade_one, *job.arguments(), limits, False, content, job.root, pure=False,
                                   key='grade-{0}-{1}'.format(job.student, os.urandom(6).hex()), **placement)
            job_of[future.key] = job
            return future

        finished = as_completed([submit(job) for _, job in zip(range(window), queue)], loop=client.loop)
        for future in finished:
            job = job_of.pop(future.key)
            try:
                outcome = future.result()
            except Exception as error:  # noqa: BLE001 - e.g. a worker died: report, go on.
                outcome = error
            retry_away_from = _harness_failed_on(client, future, outcome, failed_on.setdefault(job.student, set()))
            future.release()
            if retry_away_from:
                finished.add(submit(job, avoid=retry_away_from))
                continue
            yield job, outcome
            following = next(queue, None)
            if following is not None:
                finished.add(submit(following))


def _harness_failed_on(client, future, outcome, tried: set[str]) -> frozenset:
    """The workers to avoid when `outcome` is a harness failure another worker may not share.

    A report that records a failure of the grader (no MNIST on that worker, a sandbox that
    cannot start there) is graded again on a worker that has not failed for this submission
    yet, with a line on stderr naming the worker; once every worker has failed, or when the
    cluster has only one, the report stands (and says so, and the run's exit status too).
    Returns the workers to avoid, or an empty set to keep the outcome.
    """
    if isinstance(outcome, Exception) or not is_internal_failure(outcome):
        return frozenset()
    where = client.who_has(future).get(future.key) or ()
    tried.update(where)
    if not where or not set(client.nthreads()) - tried:
        return frozenset()
    from autograder.outputs.report import terminal_text
    print('mlp-autograde: the grader failed on worker {0} for {1} ({2}); grading it again on '
          'another worker'.format(', '.join(sorted(where)), terminal_text(outcome.student),
                                  terminal_text(_harness_reason(outcome))[:300]), file=sys.stderr)
    return frozenset(tried)


def _harness_reason(report: Report) -> str:
    """The first harness failure a report records, in one line."""
    if report.status == 'error':
        return report.error
    return next((test.output for test in report.tests if test.harness), 'a harness error')


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
    from autograder.outputs import feedback_html
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
                                 str(submission.path),
                                 str(submission.root) if submission.root is not None else None))
        if todo:
            feedback_html.start_loading_matplotlib()  # while the first submissions are graded
        with _run_directory(out_dir) as run_dir:
            _grade_into(out_dir, spec, todo, _outcomes(todo, workers, scheduler, limits, run_dir),
                        progress)
        reports = [_read_report(out_dir, submission.student) for submission in submissions]
        summary = report_files.summary(spec, reports, time.monotonic() - started, len(todo))
        report_files.write_atomic(out_dir / 'grades.csv', report_files.grades_csv(spec, reports))
        report_files.write_atomic(out_dir / 'summary.json', json.dumps(summary, indent=2) + '\n')
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
                                                   file_sha256(Path(job.path), _root(job)), outcome)
            write_report_files_or_error(out_dir, spec, outcome)
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
