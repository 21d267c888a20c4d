"""Large read-only request arrays handed to every child through sealed memory files.

TRUSTED. Runs in the grading parent. A training request carries the same
MNIST subset (tens of MB of float64) for every submission; copying it through
the request pipe costs more than the training itself. Instead each such array
is written once per process into a Linux memory file (``memfd_create``) that
is then *sealed*: no process, the parent included, can write, shrink or grow
it again, nor remove the seals (``F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW |
F_SEAL_SEAL``). The file's descriptor is inherited by each child, which maps
it read-only and copies it into its own memory (see
``child_runner._shared_arrays``), so one submission can neither change the
data another submission trains on nor learn anything it could not read from
the request itself.

Only read-only arrays are shared (their bytes cannot change under the cache,
which is keyed by the array object and holds a reference to it). Where
sealing is unavailable (not Linux, an old kernel) :func:`seal` returns None
and the request's arrays go through the pipe as before.
"""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass

import numpy as np

#: The seals every shared file carries; F_SEAL_SEAL last, so none can be lifted.
_SEALS = (getattr(fcntl, "F_SEAL_WRITE", 0) | getattr(fcntl, "F_SEAL_SHRINK", 0)
          | getattr(fcntl, "F_SEAL_GROW", 0) | getattr(fcntl, "F_SEAL_SEAL", 0))

_lock = threading.Lock()
_sealed: dict[int, tuple[np.ndarray, SealedArray | None]] = {}


@dataclass(frozen=True)
class SealedArray:
    """A float64 array in a sealed memory file.

    Attributes:
        fd: The file's descriptor in this process (and, inherited, in the child).
        shape: The array's shape; the file holds ``prod(shape)`` little-endian
            float64 values in C order.
    """

    fd: int
    shape: tuple[int, ...]

    def descriptor(self) -> dict:
        """What the request header tells the child: ``{"fd", "shape"}``."""
        return {"fd": self.fd, "shape": list(self.shape)}


def seal(array: np.ndarray) -> SealedArray | None:
    """The sealed file holding ``array`` (made once per process and array), or None to use the pipe.

    Args:
        array: A non-empty, read-only float64 array (``array.flags.writeable``
            False); anything else gives None.
    """
    if (not isinstance(array, np.ndarray) or array.flags.writeable or array.dtype != np.float64
            or not array.size or not _SEALS or not hasattr(os, "memfd_create")):
        return None
    with _lock:
        known = _sealed.get(id(array))
        if known is not None and known[0] is array:
            return known[1]
        sealed = _write_sealed(array)
        _sealed[id(array)] = (array, sealed)  # the reference keeps id(array) from being reused
        return sealed


def _write_sealed(array: np.ndarray) -> SealedArray | None:
    data = np.ascontiguousarray(array, dtype="<f8").data.cast("B")
    try:
        fd = os.memfd_create("mlp-autograde-shared-array", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    except OSError:
        return None
    try:
        os.ftruncate(fd, len(data))
        written = 0
        while written < len(data):
            written += os.pwrite(fd, data[written:], written)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
        if fcntl.fcntl(fd, fcntl.F_GET_SEALS) & _SEALS != _SEALS:
            raise OSError("the memory file did not keep its seals")
    except OSError:
        os.close(fd)
        return None
    return SealedArray(fd, tuple(int(n) for n in array.shape))


def sealed_so_far() -> tuple[SealedArray, ...]:
    """Every sealed file this process has made, the ones a child started now inherits."""
    with _lock:
        return tuple(sealed for _, sealed in _sealed.values() if sealed is not None)
