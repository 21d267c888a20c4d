"""Load one submitted notebook file, or say in one sentence why it cannot be graded.

Runs TRUSTED, in the grading parent. Nothing in the file is executed: the file is
opened as :mod:`autograder.submission.files` allows (a regular file inside the folder
given, no symbolic link on the way), its bytes are hashed, decoded as UTF-8, parsed as
JSON and, without the outputs and oversized metadata grading never reads, turned into
an ``nbformat`` node; every step is bounded (size, values, depth, cells, schema
problems; see SECURITY.md). Every
way a file can be unusable (missing, a link, a folder, empty, too large, UTF-16, binary, not
JSON, nested absurdly deep, JSON that is not a notebook, notebook format 3, a cell
without readable source) becomes a :class:`Rejection` whose ``reason`` a student can
act on. Problems that do not stop us reading the code cells (duplicate or missing
cell ids, extra metadata, odd outputs) are repaired or ignored and listed in
:attr:`LoadedNotebook.warnings`.

The two results are plain dataclasses::

    result = load_submission(Path("alice.ipynb"))
    if isinstance(result, Rejection):
        ...  # report status "rejected" with result.reason
    else:
        ...  # result.notebook is an nbformat NotebookNode (v4)
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat.corpus.words import generate_corpus_id

from autograder.submission.files import SubmissionFileError, open_submission

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_JSON_ITEMS",
    "LoadedNotebook",
    "Rejection",
    "load_submission",
]

#: Largest file we read (100 MiB). Notebooks with many embedded plots stay well below.
DEFAULT_MAX_BYTES = 100 * 2**20

#: Deepest JSON nesting we accept. Real notebooks stay below 20 (rich outputs included);
#: a hard limit keeps nbformat's recursive helpers far from Python's recursion limit.
MAX_JSON_DEPTH = 100

#: Upper bound on JSON values, estimated from the count of ``,``, ``[`` and ``{`` bytes
#: before parsing. A file under the size limit made of tiny values (``[{},{},...]``)
#: would otherwise expand to gigabytes of Python objects in the grader. A 10,000-cell
#: notebook has a few hundred thousand; plotted images add almost none.
MAX_JSON_ITEMS = 4_000_000

#: Most validation problems copied into ``LoadedNotebook.warnings``; validation
#: stops at the first one beyond them.
MAX_REPORTED_PROBLEMS = 5

#: Most cells a notebook may have. Lab notebooks have a few hundred at most;
#: every cell costs the grader time in nbformat's conversion and validation.
MAX_CELLS = 10_000

#: Most JSON values kept in one metadata object (the notebook's or a cell's);
#: larger ones are emptied before nbformat sees them (grading never reads them).
MAX_METADATA_VALUES = 1_000

_READ_CHUNK = 2**20

# Signatures of files students upload by mistake instead of the .ipynb.
_FILE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a zip archive; unzip it and submit the .ipynb file inside"),
    (b"%PDF", "a PDF document; submit the .ipynb file itself, not a PDF export"),
    (b"\x89PNG", "a PNG image, not a notebook"),
    (b"\xff\xd8\xff", "a JPEG image, not a notebook"),
    (b"\x1f\x8b", "a gzip-compressed file; decompress it and submit the .ipynb inside"),
)


@dataclass(frozen=True)
class LoadedNotebook:
    """A submission that parsed as a Jupyter notebook (format 4).

    Attributes:
        path: The file that was read.
        sha256: Hex SHA-256 of the file's raw bytes (identifies the submission).
        notebook: The notebook as an ``nbformat.NotebookNode``; every cell's ``source``
            is a single string and every cell has a unique id when the format has ids.
        warnings: Problems that were repaired or ignored, one sentence each.
    """

    path: Path
    sha256: str
    notebook: nbformat.NotebookNode
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Rejection:
    """A submission that cannot be graded.

    Attributes:
        path: The file that was given.
        sha256: Hex SHA-256 of the raw bytes, or None when the file could not be read.
        reason: One sentence for the student saying what is wrong and, where possible,
            how to fix it.
    """

    path: Path
    sha256: str | None
    reason: str


class _Reject(Exception):
    """Internal: stop loading with a student-facing reason (and the hash, if known)."""

    def __init__(self, reason: str, sha256: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sha256 = sha256


def load_submission(
    path: Path | str, *, root: Path | str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> LoadedNotebook | Rejection:
    """Read a submitted ``.ipynb`` file and parse it as a format-4 notebook.

    The file is read once; its SHA-256 is taken over the raw bytes. Nothing from the
    file is executed.

    Args:
        path: The submitted file.
        root: The folder the grader was given, which ``path`` must be inside with no
            symbolic link on the way (default: the folder holding ``path``); see
            :mod:`autograder.submission.files`.
        max_bytes: Largest accepted file size in bytes.

    Returns:
        A :class:`LoadedNotebook`, or a :class:`Rejection` with one clear sentence when
        the file is missing or unreadable, a symbolic link or below one, a folder, empty, larger than ``max_bytes``,
        not UTF-8 text, not JSON, nested too deeply, not a notebook, in notebook format
        older than 4, or structurally broken so that its code cells cannot be read.
    """
    path = Path(path)
    name = path.name or str(path)
    try:
        data, sha256 = _read_bytes(path, Path(root) if root is not None else None, name, max_bytes)
    except _Reject as rejected:
        return Rejection(path, rejected.sha256, rejected.reason)
    try:
        notebook, warnings = _parse_notebook(data, name)
    except _Reject as rejected:
        return Rejection(path, sha256, rejected.reason)
    except RecursionError:
        return Rejection(path, sha256, _too_deep(name))
    except MemoryError:
        return Rejection(path, sha256, f"{name} is too large to be read as a notebook.")
    return LoadedNotebook(path, sha256, notebook, warnings)


# --------------------------------------------------------------------------- reading


def _read_bytes(path: Path, root: Path | None, name: str, max_bytes: int) -> tuple[bytes, str]:
    """Open ``path`` as :func:`~autograder.submission.files.open_submission` allows, read and hash it.

    Raises:
        _Reject: The path may not be graded (missing, unreadable, a link or below one,
            a folder, not a regular file), or the file is larger than ``max_bytes``
            (then the whole file is still hashed, in chunks, so a re-run recognises it).
    """
    try:
        fd = open_submission(path, root)
    except SubmissionFileError as problem:
        raise _Reject(problem.reason) from None
    info = os.fstat(fd)
    with open(fd, "rb", buffering=0, closefd=True) as handle:
        digest = hashlib.sha256()
        try:
            if info.st_size > max_bytes:
                total = _hash_rest(handle, digest, 0)
                raise _Reject(_too_large(name, total, max_bytes), digest.hexdigest())
            # Ask for one byte more than fstat promised, to notice a file that grows.
            chunks = [handle.read(info.st_size + 1)]
            total = len(chunks[0])
            while total <= max_bytes and (chunk := handle.read(min(_READ_CHUNK, max_bytes + 1 - total))):
                chunks.append(chunk)
                total += len(chunk)
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            if total > max_bytes:
                digest.update(data)
                total = _hash_rest(handle, digest, total)
                raise _Reject(_too_large(name, total, max_bytes), digest.hexdigest())
        except OSError as err:
            raise _Reject(f"{name} could not be read ({err.strerror or err}).") from None
    digest.update(data)
    return data, digest.hexdigest()


def _hash_rest(handle: io.FileIO, digest: Any, already: int) -> int:
    """Feed the rest of an open file to ``digest`` in chunks; return the total size."""
    total = already
    while chunk := handle.read(_READ_CHUNK):
        digest.update(chunk)
        total += len(chunk)
    return total


def _too_large(name: str, size: int, limit: int) -> str:
    return (
        f"{name} is {_megabytes(size)}, larger than the {_megabytes(limit)} limit; "
        "clear the outputs (Edit > Clear All Outputs), save and submit it again."
    )


def _megabytes(size: int) -> str:
    """``"120 MB"``, ``"1.5 MB"``, ``"12 KB"`` or ``"100 bytes"`` (binary units)."""
    if size < 1024:
        return f"{size} bytes"
    if size < 2**20:
        return f"{size / 1024:.0f} KB"
    mb = size / 2**20
    if mb >= 10 or mb == int(mb):
        return f"{mb:.0f} MB"
    return f"{mb:.1f} MB"


def _too_deep(name: str) -> str:
    return (
        f"{name} is nested too deeply to be a notebook "
        f"(more than {MAX_JSON_DEPTH} levels of JSON lists and objects)."
    )


# --------------------------------------------------------------------------- decoding


def _decode_text(data: bytes, name: str) -> tuple[str, list[str]]:
    """Decode the raw bytes as UTF-8, naming the likely encoding when it is not.

    Returns:
        The text and any warnings (a UTF-8 byte-order mark is accepted and dropped).

    Raises:
        _Reject: The file is empty, binary, UTF-16/32 or otherwise not UTF-8.
    """
    warnings: list[str] = []
    if not data:
        raise _Reject(f"{name} is empty (0 bytes); save the notebook in Jupyter and submit it again.")
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise _Reject(_wrong_encoding(name, "UTF-32"))
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _Reject(_wrong_encoding(name, "UTF-16"))
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
        warnings.append("The file starts with a UTF-8 byte-order mark, which was ignored.")
    head = data[:8192]
    if _looks_like_utf16(head):
        raise _Reject(_wrong_encoding(name, "UTF-16"))
    for signature, what in _FILE_SIGNATURES:
        if head.startswith(signature):
            raise _Reject(f"{name} is {what}.")
    if b"\x00" in head:
        raise _Reject(f"{name} is a binary file, not a Jupyter notebook (a notebook is JSON text).")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        bad = data[err.start : err.start + 1].hex().upper()
        raise _Reject(
            f"{name} is not UTF-8 text (byte 0x{bad} at offset {err.start} is invalid); "
            "save it again from Jupyter, which writes UTF-8."
        ) from None
    if not text.strip():
        raise _Reject(f"{name} contains only blank space; save the notebook in Jupyter and submit it again.")
    return text, warnings


def _looks_like_utf16(head: bytes) -> bool:
    """True when the first bytes alternate ASCII and NUL, as UTF-16 text without a BOM does."""
    sample = head[:64]
    if len(sample) < 4:
        return False
    even_nuls = sample[0::2].count(0)
    odd_nuls = sample[1::2].count(0)
    half = len(sample) // 2
    return max(even_nuls, odd_nuls) >= 0.75 * half and min(even_nuls, odd_nuls) == 0


def _wrong_encoding(name: str, encoding: str) -> str:
    return (
        f"{name} is saved as {encoding} text, not UTF-8; "
        "open it in Jupyter and save it again (Jupyter writes UTF-8)."
    )


# --------------------------------------------------------------------------- JSON


def _parse_json(data: bytes, text: str, name: str) -> object:
    """Parse JSON with bounded memory and nesting, turning every failure into a reason."""
    items = data.count(b",") + data.count(b"[") + data.count(b"{")
    if items > MAX_JSON_ITEMS:
        raise _Reject(
            f"{name} holds about {items / 1e6:.0f} million JSON values, far more than a "
            f"notebook (limit {MAX_JSON_ITEMS / 1e6:.0f} million), so it was not read."
        )
    if text.lstrip()[:1] == "<":
        raise _Reject(
            f"{name} is an HTML or XML page, not a notebook; submit the .ipynb file "
            "itself, not an export or a web page saved from the browser."
        )
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        message = err.msg[:1].lower() + err.msg[1:]
        raise _Reject(
            f"{name} is not valid JSON (line {err.lineno}, column {err.colno}: {message}); "
            "the file may be truncated or edited outside Jupyter."
        ) from None
    except RecursionError:
        raise _Reject(_too_deep(name)) from None
    except ValueError as err:  # e.g. integers longer than Python's digit limit
        raise _Reject(f"{name} is not JSON that can be read ({err}).") from None
    if _json_depth(obj) > MAX_JSON_DEPTH:
        raise _Reject(_too_deep(name))
    return obj


def _json_depth(obj: object) -> int:
    """Nesting depth of lists and dicts, computed without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > deepest:
            deepest = depth
            if deepest > MAX_JSON_DEPTH:
                return deepest
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


# --------------------------------------------------------------------------- notebook


def _parse_notebook(data: bytes, name: str) -> tuple[nbformat.NotebookNode, list[str]]:
    """Bytes -> validated NotebookNode plus warnings, or :class:`_Reject`."""
    text, warnings = _decode_text(data, name)
    obj = _parse_json(data, text, name)
    _check_is_notebook(obj, name)
    cells = obj["cells"]
    _check_cells(cells, name)
    if _more_values_than(obj.get("metadata"), MAX_METADATA_VALUES):
        obj["metadata"] = {}
    try:
        notebook = nbformat.from_dict(obj)
    except RecursionError:
        raise _Reject(_too_deep(name)) from None
    except Exception as err:  # noqa: BLE001 - any failure here means "not readable"
        raise _Reject(f"{name} could not be read as a notebook ({type(err).__name__}: {err}).") from None
    warnings.extend(_repair_cell_ids(notebook))
    warnings.extend(_validation_problems(notebook))
    return notebook, warnings


def _check_is_notebook(obj: object, name: str) -> None:
    """Require a JSON object with an integer ``nbformat`` of 4 and a ``cells`` list."""
    if not isinstance(obj, dict):
        kind = _json_kind(obj)
        raise _Reject(
            f'{name} is JSON but not a Jupyter notebook (it holds {kind}, not an object '
            'with "cells" and "nbformat").'
        )
    if "nbformat" not in obj:
        if "cells" in obj:
            raise _Reject(f'{name} is JSON but not a Jupyter notebook (it has no "nbformat" version).')
        raise _Reject(f'{name} is JSON but not a Jupyter notebook (it has no "cells" or "nbformat").')
    version = obj["nbformat"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise _Reject(f'{name} is not a valid notebook: its "nbformat" version is {_json_kind(version)}, not a number.')
    if version < 1:
        raise _Reject(f'{name} is not a valid notebook: its "nbformat" version is not a format number.')
    if version < 4:
        raise _Reject(
            f"{name} is saved in notebook format {version}; open and re-save it in "
            "Jupyter 4+ (any current Jupyter converts it when saving)."
        )
    if version > 4:
        shown = str(version) if version < 1000 else "from the future"
        raise _Reject(
            f"{name} is saved in notebook format {shown}, which this grader cannot "
            "read yet; save it from a Jupyter that writes notebook format 4."
        )
    if "cells" not in obj:
        raise _Reject(f'{name} is not a valid notebook: it has no "cells" list.')
    if not isinstance(obj["cells"], list):
        raise _Reject(
            f'{name} is not a valid notebook: its "cells" field is {_json_kind(obj["cells"])}, not a list.'
        )
    minor = obj.get("nbformat_minor", 0)
    if not isinstance(minor, int) or isinstance(minor, bool):
        obj["nbformat_minor"] = 0


def _check_cells(cells: list, name: str) -> None:
    """Require each cell to be an object with a cell type; code cells need text source.

    A code cell's ``source`` may be a string or a list of strings (the file format
    splits lines); lists are joined here so every consumer sees one string.

    What grading never reads is dropped here, before nbformat converts and
    validates the notebook (which costs time per JSON value): code cells'
    outputs, and metadata objects of more than ``MAX_METADATA_VALUES`` values.
    So the cost of loading depends on the cells and their text, not on a
    million tiny outputs under the size limit.
    """
    if len(cells) > MAX_CELLS:
        raise _Reject(
            f"{name} has {len(cells)} cells, more than the {MAX_CELLS} a notebook may have here; "
            "merge or delete cells and submit it again."
        )
    for index, cell in enumerate(cells):
        number = index + 1
        if not isinstance(cell, dict):
            raise _Reject(f"{name} is not a valid notebook: cell {number} is {_json_kind(cell)}, not a cell.")
        cell_type = cell.get("cell_type")
        if not isinstance(cell_type, str):
            raise _Reject(f"{name} is not a valid notebook: cell {number} has no cell type.")
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            cell["source"] = "".join(source)
        elif not isinstance(source, str) and cell_type == "code":
            raise _Reject(f"{name} is not a valid notebook: the source of code cell {number} is not text.")
        if not isinstance(cell.get("metadata", {}), dict) or _more_values_than(cell.get("metadata"), MAX_METADATA_VALUES):
            cell["metadata"] = {}
        if cell_type == "code" and cell.get("outputs"):
            cell["outputs"] = []
        if isinstance(cell.get("attachments"), dict):
            cell.pop("attachments")


def _more_values_than(value: object, limit: int) -> bool:
    """Whether a JSON value holds more than ``limit`` values (stops counting there)."""
    stack = [value]
    seen = 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return "a number"


def _repair_cell_ids(notebook: nbformat.NotebookNode) -> list[str]:
    """Give every cell a unique id when the format (4.5+) has ids; report what changed.

    Grading never uses cell ids, but nbformat's validator insists on them; students
    copy cells between notebooks, which duplicates ids.
    """
    if (notebook.get("nbformat"), notebook.get("nbformat_minor", 0)) < (4, 5):
        return []
    seen: set[str] = set()
    missing = duplicated = 0
    for cell in notebook.cells:
        cell_id = cell.get("id")
        if not isinstance(cell_id, str):
            missing += 1
        elif cell_id in seen:
            duplicated += 1
        else:
            seen.add(cell_id)
            continue
        new_id = generate_corpus_id()
        while new_id in seen:
            new_id = generate_corpus_id()
        cell["id"] = new_id
        seen.add(new_id)
    warnings = []
    if duplicated:
        warnings.append(f"{_cells(duplicated)} had a duplicate cell id; new ids were given (grading does not use them).")
    if missing:
        warnings.append(f"{_cells(missing)} had no cell id; ids were added (grading does not use them).")
    return warnings


def _cells(count: int) -> str:
    return "1 cell" if count == 1 else f"{count} cells"


def _validation_problems(notebook: nbformat.NotebookNode) -> list[str]:
    """Schema problems as short warnings; none of them stops us reading code cells."""
    found: list[str] = []
    total = 0
    try:
        for error in nbformat.validator.iter_validate(notebook):
            total += 1
            if len(found) >= MAX_REPORTED_PROBLEMS:
                break  # the rest would not be shown: stop validating
            found.append(_describe_validation_error(error))
    except RecursionError:
        return ["The notebook could not be fully checked against the nbformat schema (nested too deeply)."]
    except Exception as err:  # noqa: BLE001 - the validator is a courtesy, never fatal
        return [f"The notebook could not be checked against the nbformat schema ({type(err).__name__})."]
    warnings = [f"Ignored a problem with the nbformat schema: {problem}." for problem in found]
    if total > len(found):
        warnings.append("Ignored more problems with the nbformat schema.")
    return warnings


def _describe_validation_error(error: Exception) -> str:
    """``cells[3].outputs[0]: 'data' is a required property`` from a schema error."""
    lines = str(getattr(error, "message", None) or error).splitlines()
    message = lines[0] if lines else type(error).__name__
    if len(message) > 160:
        message = message[:157] + "..."
    where = ""
    try:
        parts = list(getattr(error, "relative_path", None) or [])
    except Exception:  # noqa: BLE001 - a missing path only shortens the message
        parts = []
    for part in parts:
        if isinstance(part, int):
            where += f"[{part}]"
        else:
            where += f".{part}" if where else str(part)
    return f"{where}: {message}" if where else message
