"""What a submission may be on disk: the one place that decides, and opens it.

Runs TRUSTED, in the grading parent (and in Gradescope's harness). A submission is
a path below a folder the grader was given (a flat folder of notebooks, an nbgrader
``submitted/`` tree, Gradescope's ``submission/``). It may be graded only if it is

* a **regular file** (not a folder, FIFO, device or socket),
* **inside that folder** (no ``..`` leading out of it), and
* reached **without a symbolic link** anywhere on its path below the folder: the
  file itself and every folder between it and the root.

The check and the use are the same operation: the path is walked from the root one
component at a time with ``openat`` and ``O_NOFOLLOW`` (so a link is refused by the
kernel, not by an earlier ``lstat`` that a swap could fool), the file is opened
with ``O_NONBLOCK`` (a FIFO cannot block the open) and its type is read with
``fstat`` on the open descriptor, whose inode must be the one ``lstat`` sees at the
name. Whoever reads a submission's bytes (loading, hashing for resume, shipping to a
Dask worker) gets them through :func:`open_submission`, so a link to the course's
source notebook, to ``/dev/zero`` or to another student's folder is never read, and
a link to a folder never has its listing shown. The root itself is the grader's
argument and may be a link (an instructor's choice, not a student's).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = ["SubmissionFileError", "open_submission", "read_submission", "submission_problem"]

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

#: Entries of a (real) submission folder named in its rejection.
_LISTED_ENTRIES = 5


class SubmissionFileError(Exception):
    """The path cannot be graded; ``reason`` is one sentence for the student."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _parts_below(path: Path, root: Path) -> list[str]:
    """The components of ``path`` below ``root`` (lexically), or raise if it is outside."""
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    parts = [] if relative == os.curdir else relative.split(os.sep)
    if not parts or parts[0] == os.pardir:
        raise SubmissionFileError(
            f"{path.name or path} is not inside the submissions folder {root}, so it was not read."
        )
    return parts


def _is_link(name: str, folder_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=folder_fd).st_mode)
    except OSError:
        return False


def _link_reason(shown: str, is_file: bool) -> str:
    what = "symbolic link" if is_file else "symbolic link to a folder"
    return (
        f"{shown} is a {what}, not a file of your own; submit the notebook itself "
        "(links are never followed, so the grader does not read what they point to)."
    )


def open_submission(path: Path | str, root: Path | str | None = None) -> int:
    """Open a submission for reading, if it may be graded at all.

    Args:
        path: The submission, inside ``root``.
        root: The folder the grader was given (default: the folder holding ``path``).

    Returns:
        A read-only file descriptor (non-blocking, close-on-exec) of a regular file;
        the caller closes it.

    Raises:
        SubmissionFileError: The path is outside ``root``, missing, unreadable, a
            symbolic link (or below one), a folder (the reason lists what a real
            folder holds), or a FIFO, device or socket.
    """
    path = Path(path)
    root = Path(root) if root is not None else (path.parent if str(path.parent) else Path("."))
    name = path.name or str(path)
    parts = _parts_below(path, root)
    try:
        folder_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise SubmissionFileError(f"The folder of {name} could not be opened ({err.strerror or err}).") from None
    try:
        shown = ""
        for part in parts[:-1]:
            shown = os.path.join(shown, part)
            try:
                next_fd = os.open(part, _DIRECTORY_FLAGS, dir_fd=folder_fd)
            except OSError as err:
                raise _open_error(err, shown, part, folder_fd, is_file=False) from None
            os.close(folder_fd)
            folder_fd = next_fd
        try:
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=folder_fd)
        except OSError as err:
            raise _open_error(err, name, parts[-1], folder_fd, is_file=True) from None
        try:
            _require_regular(fd, parts[-1], folder_fd, name)
        except BaseException:
            os.close(fd)
            raise
        return fd
    finally:
        os.close(folder_fd)


def _open_error(err: OSError, shown: str, part: str, folder_fd: int, *, is_file: bool) -> SubmissionFileError:
    if err.errno in (errno.ELOOP, errno.EMLINK) or (err.errno == errno.ENOTDIR and _is_link(part, folder_fd)):
        return SubmissionFileError(_link_reason(shown, is_file))
    if err.errno == errno.ENOENT:
        return SubmissionFileError(f"The submission file {shown} does not exist.")
    if err.errno == errno.ENOTDIR:
        return SubmissionFileError(f"{shown} is not a folder, so the submission below it does not exist.")
    if err.errno == errno.EACCES:
        return SubmissionFileError(f"{shown} could not be read: permission denied.")
    if err.errno == errno.ENXIO:  # a socket, or a FIFO opened for writing
        return SubmissionFileError(f"{shown} is not a regular file (it is a device, pipe or socket).")
    return SubmissionFileError(f"{shown} could not be read ({err.strerror or err}).")


def _require_regular(fd: int, part: str, folder_fd: int, name: str) -> None:
    info = os.fstat(fd)
    try:
        at_name = os.lstat(part, dir_fd=folder_fd)
    except OSError:
        at_name = None
    if at_name is None or (at_name.st_dev, at_name.st_ino) != (info.st_dev, info.st_ino):
        raise SubmissionFileError(f"{name} changed while it was being opened; submit it again.")
    if stat.S_ISDIR(info.st_mode):
        raise SubmissionFileError(_folder_reason(fd, name))
    if not stat.S_ISREG(info.st_mode):
        raise SubmissionFileError(f"{name} is not a regular file (it is a device, pipe or socket).")


def _folder_reason(fd: int, name: str) -> str:
    """Why a (real, link-free) folder was refused, naming what it holds."""
    try:
        entries = sorted(entry.name for entry in os.scandir(fd) if not entry.name.startswith("."))
    except OSError:
        entries = []
    if not entries:
        return f"{name} is an empty folder: no notebook (.ipynb) was submitted."
    shown = ", ".join(entries[:_LISTED_ENTRIES])
    if len(entries) > _LISTED_ENTRIES:
        shown += f" and {len(entries) - _LISTED_ENTRIES} more"
    return f"{name} is a folder without a notebook (.ipynb); it holds {shown}."


def submission_problem(path: Path | str, root: Path | str | None = None) -> str | None:
    """Why ``path`` may not be graded (one sentence), or None when it may."""
    try:
        os.close(open_submission(path, root))
    except SubmissionFileError as problem:
        return problem.reason
    return None


def read_submission(path: Path | str, root: Path | str | None = None, *, max_bytes: int | None = None) -> bytes:
    """The bytes of a submission that may be graded (see :func:`open_submission`).

    Args:
        path: The submission.
        root: The folder the grader was given (default: the folder holding ``path``).
        max_bytes: Read at most this many bytes plus one (so the caller can tell a
            file that is too large); None reads all.

    Raises:
        SubmissionFileError: As :func:`open_submission`, or the read failed.
    """
    fd = open_submission(path, root)
    chunks = []
    total = 0
    try:
        while max_bytes is None or total <= max_bytes:
            want = 1 << 20 if max_bytes is None else min(1 << 20, max_bytes + 1 - total)
            chunk = os.read(fd, want)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as err:
        raise SubmissionFileError(f"{Path(path).name} could not be read ({err.strerror or err}).") from None
    finally:
        os.close(fd)
    return b"".join(chunks)
