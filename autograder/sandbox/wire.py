"""Framing of plain-data messages between the grader and the sandbox.

Runs on BOTH sides: TRUSTED (in the grading parent) and INSIDE THE SANDBOX (a
copy of this file sits next to ``child_runner.py``). It therefore imports only
the standard library and numpy, and nothing from the ``autograder`` package.

A frame is::

    +-------------------+----------------------+----------------------------+
    | header length L   | header (L bytes)     | array bytes, in order      |
    | 4 bytes, uint32 LE| UTF-8 JSON object    | sum of prod(shape) * 8     |
    +-------------------+----------------------+----------------------------+

The header is a JSON object. Its key ``"arrays"`` is reserved: a list with one
``{"shape": [d0, d1, ...], "dtype": "<f8"}`` entry per array that follows. Only
little-endian float64 arrays travel, in C order, so a reader needs no pickle
and no dtype negotiation: it checks the declared sizes against its limits,
reads exactly that many bytes and rebuilds each array with
``np.frombuffer(...).reshape(...).copy()``. Every other header key is free
JSON (no NaN or infinity in the header itself; arrays may hold any float64
value, NaN and infinity included).

A reader facing a hostile writer gets a :class:`WireError` for anything that
is not a well-formed frame within its limits, never a crash or an unbounded
allocation. A reader that knows what it asked for passes ``accept``: it sees
the header and the declared shapes BEFORE any array byte is read, and a frame
it refuses is skipped without being held in memory (:class:`WireRejected`:
the stream stays in step, so the writer may answer the next request).
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any, BinaryIO, Callable

import numpy as np

#: The only array dtype allowed on the wire: little-endian IEEE-754 float64.
WIRE_DTYPE = "<f8"

#: Bytes per array element (float64).
ITEM_BYTES = 8

#: Maximum number of dimensions of one array (numpy's own limit is 64).
MAX_NDIM = 32

#: Largest element count of one array, ignoring zero-sized dimensions: numpy
#: cannot build every shape whose product is 0 (``[2**62, 2**62, 0]``), and
#: such a frame must be refused, not crash the reader.
MAX_ELEMENTS = 2**40

#: Chunk in which a refused payload is read and dropped.
_DISCARD_CHUNK = 1 << 20

_LENGTH = struct.Struct("<I")


class WireError(Exception):
    """A frame could not be written or read (malformed, truncated or too large)."""


class WireEOF(WireError):
    """The stream ended cleanly before the first byte of a frame."""


class WireRejected(WireError):
    """A well-formed frame that the reader's ``accept`` refused; its payload was skipped.

    The stream is positioned at the next frame. ``header`` is the refused
    frame's header (without ``"arrays"``), for the caller's message.
    """

    def __init__(self, reason: str, header: dict) -> None:
        super().__init__(reason)
        self.reason = reason
        self.header = header


def write_frame(stream: BinaryIO, header: dict, arrays: list | tuple = ()) -> None:
    """Write one frame (header plus arrays) to a binary stream and flush it.

    Args:
        stream: A writable binary stream (file object with ``write``/``flush``).
        header: JSON-serialisable dict. Must not contain the reserved key
            ``"arrays"``, nor NaN or infinite floats.
        arrays: Arrays to send, in order. Anything that is not a float64
            array is converted with ``np.asarray(x, dtype='<f8')``; each is
            sent in C order. Shapes of any rank (including 0-d) are allowed.

    Raises:
        WireError: If the header is not a dict, uses the reserved key, or is
            not JSON-serialisable, or an array has too many dimensions.
        OSError: If the stream cannot be written (e.g. the peer has gone).
    """
    if not isinstance(header, dict):
        raise WireError(f"the header must be a dict, not {type(header).__name__}")
    if "arrays" in header:
        raise WireError("the header key 'arrays' is reserved for the array list")
    converted = [np.asarray(a, dtype=WIRE_DTYPE, order="C") for a in arrays]
    for array in converted:
        if array.ndim > MAX_NDIM:
            raise WireError(f"an array has {array.ndim} dimensions; at most {MAX_NDIM} allowed")
    full_header = dict(header)
    full_header["arrays"] = [
        {"shape": [int(n) for n in array.shape], "dtype": WIRE_DTYPE} for array in converted
    ]
    try:
        encoded = json.dumps(full_header, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise WireError(f"the header is not plain JSON: {exc}") from exc
    if len(encoded) >= 2**32:
        raise WireError("the header is too large to frame")
    stream.write(_LENGTH.pack(len(encoded)))
    stream.write(encoded)
    for array in converted:
        if array.size:
            stream.write(array.tobytes(order="C"))
    stream.flush()


def read_frame(
    stream: BinaryIO, *, max_header_bytes: int, max_array_bytes: int,
    accept: Callable[[dict, list[tuple[int, ...]]], str | None] | None = None,
) -> tuple[dict, list[np.ndarray]]:
    """Read and validate one frame from a binary stream.

    Args:
        stream: A readable binary stream. Short reads are retried until the
            frame is complete or the stream ends.
        max_header_bytes: Largest accepted header length L (bytes).
        max_array_bytes: Largest accepted total size of the frame's arrays
            (bytes), checked against the declared shapes BEFORE reading them.
        accept: Called with the header (without ``"arrays"``) and the declared
            shapes before any array byte is read; returns None to accept the
            frame, or a reason to refuse it (its payload is then read in
            chunks and dropped, and :class:`WireRejected` is raised).

    Returns:
        ``(header, arrays)``: the header dict without the ``"arrays"`` key,
        and the float64 arrays, each a fresh, writable, C-ordered copy with
        the declared shape.

    Raises:
        WireEOF: If the stream ends before the first byte of the frame.
        WireError: If the frame is truncated, the header length is zero or
            above ``max_header_bytes``, the header is not a UTF-8 JSON object
            (or holds NaN/infinity), the array list is malformed, a dtype is
            not ``"<f8"``, a shape is not a list of non-negative integers, or
            the arrays exceed ``max_array_bytes``.
        WireRejected: ``accept`` refused the frame (the stream is in step).
    """
    prefix = _read_exactly(stream, _LENGTH.size, what="the header length", eof_ok=True)
    if prefix is None:
        raise WireEOF("the stream ended before a frame")
    (length,) = _LENGTH.unpack(prefix)
    if length == 0:
        raise WireError("the header length is zero")
    if length > max_header_bytes:
        raise WireError(f"the header length {length} exceeds the limit of {max_header_bytes} bytes")
    raw_header = _read_exactly(stream, length, what="the header")
    header = _decode_header(raw_header)
    specs = header.pop("arrays", None)
    shapes = _validate_array_specs(specs, max_array_bytes)
    if accept is not None:
        reason = accept(header, shapes)
        if reason is not None:
            _discard_exactly(stream, sum(math.prod(shape) for shape in shapes) * ITEM_BYTES)
            raise WireRejected(reason, header)
    arrays = []
    for shape in shapes:
        count = math.prod(shape)
        data = _read_exactly(stream, count * ITEM_BYTES, what="array data")
        try:
            arrays.append(np.frombuffer(data, dtype=WIRE_DTYPE, count=count).reshape(shape).copy())
        except (ValueError, MemoryError) as exc:  # e.g. a shape numpy cannot build
            raise WireError(f"an array of shape {list(shape)} cannot be built: {exc}") from exc
    return header, arrays


def _discard_exactly(stream: BinaryIO, size: int) -> None:
    """Read and drop ``size`` bytes in bounded chunks, or raise WireError on a short stream."""
    left = size
    while left:
        _read_exactly(stream, min(left, _DISCARD_CHUNK), what="refused array data")
        left -= min(left, _DISCARD_CHUNK)


def _read_exactly(stream: BinaryIO, size: int, *, what: str, eof_ok: bool = False) -> bytes | None:
    """Read exactly ``size`` bytes, or raise WireError on a short stream.

    Returns None only when ``eof_ok`` and the stream ended before any byte.
    """
    buffer = bytearray(size)
    view = memoryview(buffer)
    filled = 0
    while filled < size:
        try:
            chunk = stream.read(size - filled)
        except OSError as exc:
            raise WireError(f"reading {what} failed: {exc}") from exc
        if not chunk:
            if filled == 0 and eof_ok:
                return None
            raise WireError(f"truncated frame: {what} ended after {filled} of {size} bytes")
        view[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
    return bytes(buffer)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a header")


def _decode_header(raw: bytes) -> dict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(f"the header is not UTF-8: {exc}") from exc
    try:
        header = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise WireError(f"the header is not valid JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise WireError(f"the header must be a JSON object, not {type(header).__name__}")
    return header


def _validate_array_specs(specs: Any, max_array_bytes: int) -> list[tuple[int, ...]]:
    """Check the header's array list and return the shapes it declares."""
    if not isinstance(specs, list):
        raise WireError("the header has no 'arrays' list")
    shapes = []
    total_bytes = 0
    for index, spec in enumerate(specs):
        if not isinstance(spec, dict) or set(spec) != {"shape", "dtype"}:
            raise WireError(f"array {index}: expected exactly the keys 'shape' and 'dtype'")
        if spec["dtype"] != WIRE_DTYPE:
            raise WireError(f"array {index}: dtype {spec['dtype']!r} is not allowed (only {WIRE_DTYPE!r})")
        shape = spec["shape"]
        if not isinstance(shape, list) or len(shape) > MAX_NDIM:
            raise WireError(f"array {index}: the shape must be a list of at most {MAX_NDIM} sizes")
        for size in shape:
            # bool is an int subclass: reject it explicitly.
            if type(size) is not int or size < 0:
                raise WireError(f"array {index}: invalid dimension {size!r} in shape {str(shape)[:200]}")
        total_bytes += math.prod(shape) * ITEM_BYTES
        if total_bytes > max_array_bytes:
            raise WireError(f"the arrays exceed the limit of {max_array_bytes} bytes")
        if math.prod(size for size in shape if size) > MAX_ELEMENTS:
            raise WireError(f"array {index}: shape {str(shape)[:200]} is larger than any array the protocol carries")
        shapes.append(tuple(shape))
    return shapes
