"""Tests for autograder.sandbox.wire: frame round trips and every rejection."""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import shutil
import struct
import sys

import numpy as np
import pytest

from autograder.sandbox import wire
from autograder.sandbox.wire import WireEOF, WireError, read_frame, write_frame

LIMITS = dict(max_header_bytes=1 << 16, max_array_bytes=1 << 20)


def roundtrip(header, arrays, **limits):
    stream = io.BytesIO()
    write_frame(stream, header, arrays)
    stream.seek(0)
    return read_frame(stream, **(limits or LIMITS))


def raw_frame(header_bytes: bytes, payload: bytes = b"") -> io.BytesIO:
    return io.BytesIO(struct.pack("<I", len(header_bytes)) + header_bytes + payload)


def json_frame(header: dict, payload: bytes = b"") -> io.BytesIO:
    return raw_frame(json.dumps(header).encode(), payload)


class TrickleStream(io.RawIOBase):
    """A stream that hands out at most one byte per read, like a slow pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(1 if size != 0 else 0)


# -- round trips ---------------------------------------------------------------


def test_roundtrip_keeps_header_and_arrays_of_any_rank():
    rng = np.random.RandomState(0)
    arrays = [rng.randn(3, 4), np.array(2.5), np.zeros((0, 7)), rng.randn(2, 3, 4), np.arange(5.0)]
    header = {"type": "call", "id": "x", "nested": {"a": [1, 2, None, "é"]}}
    got_header, got_arrays = roundtrip(header, arrays)
    assert got_header == header
    assert len(got_arrays) == len(arrays)
    for got, sent in zip(got_arrays, arrays):
        assert got.dtype == np.float64
        assert got.shape == sent.shape
        np.testing.assert_array_equal(got, sent)


def test_roundtrip_preserves_nan_and_infinities_bit_for_bit():
    values = np.array([np.nan, np.inf, -np.inf, -0.0, 5e-324, 1.7976931348623157e308])
    _, (got,) = roundtrip({}, [values])
    assert got.tobytes() == values.astype("<f8").tobytes()


def test_non_float64_inputs_are_converted_to_float64():
    _, arrays = roundtrip({}, [np.arange(4, dtype=np.int32), np.ones(2, dtype=np.float32),
                               [[1, 2], [3, 4]], np.array([True, False]), 3])
    assert all(a.dtype == np.float64 for a in arrays)
    np.testing.assert_array_equal(arrays[2], [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(arrays[3], [1.0, 0.0])
    assert arrays[4].shape == ()


def test_big_endian_and_non_contiguous_arrays_arrive_as_native_values():
    big_endian = np.arange(6, dtype=">f8").reshape(2, 3)
    strided = np.arange(20.0).reshape(4, 5)[::2, ::-2]
    _, (a, b) = roundtrip({}, [big_endian, strided])
    np.testing.assert_array_equal(a, big_endian)
    np.testing.assert_array_equal(b, strided)


def test_read_arrays_are_writable_copies():
    _, (array,) = roundtrip({}, [np.ones(3)])
    array[0] = 7.0  # would raise on a read-only frombuffer view
    assert array.flags.owndata and array.flags.writeable


def test_several_frames_in_a_row_then_clean_eof():
    stream = io.BytesIO()
    for i in range(3):
        write_frame(stream, {"i": i}, [np.full((i, 2), float(i))])
    stream.seek(0)
    for i in range(3):
        header, (array,) = read_frame(stream, **LIMITS)
        assert header == {"i": i} and array.shape == (i, 2)
    with pytest.raises(WireEOF):
        read_frame(stream, **LIMITS)


def test_short_reads_are_retried():
    stream = io.BytesIO()
    write_frame(stream, {"k": "v"}, [np.arange(10.0)])
    header, (array,) = read_frame(TrickleStream(stream.getvalue()), **LIMITS)
    assert header == {"k": "v"}
    np.testing.assert_array_equal(array, np.arange(10.0))


def test_header_lists_little_endian_float64_specs():
    stream = io.BytesIO()
    write_frame(stream, {"a": 1}, [np.ones((2, 3), dtype=np.float32)])
    data = stream.getvalue()
    (length,) = struct.unpack("<I", data[:4])
    header = json.loads(data[4:4 + length])
    assert header["arrays"] == [{"shape": [2, 3], "dtype": "<f8"}]
    assert len(data) == 4 + length + 6 * 8


# -- writer rejections -----------------------------------------------------------


@pytest.mark.parametrize("header", [{"arrays": []}, {"x": float("nan")}, {"x": float("inf")},
                                    {"x": object()}, ["not", "a", "dict"]])
def test_write_rejects_bad_headers(header):
    with pytest.raises(WireError):
        write_frame(io.BytesIO(), header, [])


# -- reader rejections -----------------------------------------------------------

GOOD_SPEC = {"shape": [2], "dtype": "<f8"}
GOOD_PAYLOAD = np.ones(2).tobytes()


@pytest.mark.parametrize(
    "stream, fragment",
    [
        (io.BytesIO(b"\x05\x00"), "truncated"),
        (io.BytesIO(struct.pack("<I", 50) + b'{"arr'), "truncated"),
        (json_frame({"arrays": [GOOD_SPEC]}, GOOD_PAYLOAD[:11]), "truncated"),
        (json_frame({"arrays": [GOOD_SPEC, GOOD_SPEC]}, GOOD_PAYLOAD), "truncated"),
        (io.BytesIO(struct.pack("<I", 0)), "zero"),
        (io.BytesIO(struct.pack("<I", 0xFFFFFFFF) + b"{}"), "exceeds"),
        (raw_frame(b"{not json"), "not valid JSON"),
        (raw_frame(b'{"arrays": [], "x": NaN}'), "not valid JSON"),
        (raw_frame(b'{"arrays": [], "x": Infinity}'), "not valid JSON"),
        (raw_frame(b"\xff\xfe{}"), "not UTF-8"),
        (raw_frame(b"[1, 2]"), "JSON object"),
        (raw_frame(b"[" * 30000 + b"]" * 30000), "not valid JSON"),
        (json_frame({"x": 1}), "no 'arrays' list"),
        (json_frame({"arrays": {"shape": [1]}}), "no 'arrays' list"),
        (json_frame({"arrays": [{"shape": [2]}]}), "exactly the keys"),
        (json_frame({"arrays": [{"shape": [2], "dtype": "<f8", "offset": 3}]}), "exactly the keys"),
        (json_frame({"arrays": [{"shape": [2], "dtype": "<f4"}]}, GOOD_PAYLOAD), "dtype"),
        (json_frame({"arrays": [{"shape": [2], "dtype": ">f8"}]}, GOOD_PAYLOAD), "dtype"),
        (json_frame({"arrays": [{"shape": [2], "dtype": "|O"}]}, GOOD_PAYLOAD), "dtype"),
        (json_frame({"arrays": [{"shape": [-2], "dtype": "<f8"}]}), "invalid dimension"),
        (json_frame({"arrays": [{"shape": [2.0], "dtype": "<f8"}]}), "invalid dimension"),
        (json_frame({"arrays": [{"shape": [True], "dtype": "<f8"}]}), "invalid dimension"),
        (json_frame({"arrays": [{"shape": ["2"], "dtype": "<f8"}]}), "invalid dimension"),
        (json_frame({"arrays": [{"shape": 2, "dtype": "<f8"}]}), "shape must be a list"),
        (json_frame({"arrays": [{"shape": [1] * 33, "dtype": "<f8"}]}), "shape must be a list"),
        (json_frame({"arrays": [{"shape": [1 << 40, 1 << 40], "dtype": "<f8"}]}), "exceed the limit"),
        (json_frame({"arrays": [{"shape": [100000], "dtype": "<f8"}] * 2}), "exceed the limit"),
    ],
)
def test_read_rejects_malformed_frames(stream, fragment):
    with pytest.raises(WireError, match=fragment) as info:
        read_frame(stream, **LIMITS)
    assert not isinstance(info.value, WireEOF)


def test_header_longer_than_the_limit_is_rejected_before_reading_it():
    stream = io.BytesIO()
    write_frame(stream, {"padding": "x" * 1000}, [])
    stream.seek(0)
    with pytest.raises(WireError, match="exceeds the limit"):
        read_frame(stream, max_header_bytes=100, max_array_bytes=1 << 20)


def test_array_limit_is_checked_against_declared_sizes_before_any_payload_is_read():
    # The declared array (8 MiB) exceeds the limit; there is no payload at all, so a
    # reader that tried to read it would report truncation instead.
    stream = json_frame({"arrays": [{"shape": [1024, 1024], "dtype": "<f8"}]})
    with pytest.raises(WireError, match="exceed the limit"):
        read_frame(stream, max_header_bytes=1 << 16, max_array_bytes=1 << 20)


def test_array_exactly_at_the_limit_is_accepted():
    _, (array,) = roundtrip({}, [np.zeros(128)], max_header_bytes=1 << 16, max_array_bytes=128 * 8)
    assert array.shape == (128,)


def test_empty_stream_is_a_clean_eof_and_a_partial_length_is_not():
    with pytest.raises(WireEOF):
        read_frame(io.BytesIO(b""), **LIMITS)
    with pytest.raises(WireError) as info:
        read_frame(io.BytesIO(b"\x01"), **LIMITS)
    assert not isinstance(info.value, WireEOF)


# -- standalone use inside the sandbox -------------------------------------------------


def imported_top_level_modules(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module_file", ["wire.py", "child_runner.py"])
def test_sandbox_side_modules_import_only_stdlib_and_numpy(module_file):
    from pathlib import Path

    path = Path(wire.__file__).with_name(module_file)
    foreign = {name for name in imported_top_level_modules(path)
               if name not in sys.stdlib_module_names and name not in {"numpy", "__future__"}}
    assert not foreign, f"{module_file} imports {foreign}"


def test_wire_works_as_a_standalone_copy(tmp_path):
    copy = tmp_path / "wire.py"
    shutil.copyfile(wire.__file__, copy)
    spec = importlib.util.spec_from_file_location("standalone_wire", copy)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stream = io.BytesIO()
    module.write_frame(stream, {"id": "a"}, [np.eye(2)])
    stream.seek(0)
    header, (array,) = read_frame(stream, **LIMITS)  # read by the package's copy
    assert header == {"id": "a"}
    np.testing.assert_array_equal(array, np.eye(2))


# --------------------------------------------------------------------------- issue 10, class 2
# Every reply is judged on its header and declared shapes before its arrays are read.

import textwrap  # noqa: E402
from pathlib import Path  # noqa: E402

from autograder.sandbox import answers  # noqa: E402
from autograder.sandbox.isolation import ISOLATION_LEVELS, Request, _probe, exec_untrusted  # noqa: E402
from autograder.sandbox.limits import Limits  # noqa: E402


class CountingStream(io.BytesIO):
    """A stream that records the largest single read asked of it."""

    largest_read = 0

    def read(self, size=-1):
        self.largest_read = max(self.largest_read, size if size is not None and size >= 0 else 1 << 62)
        return super().read(size)


def test_a_refused_frame_is_skipped_in_bounded_reads_and_the_next_frame_is_read():
    buffer = io.BytesIO()
    write_frame(buffer, {"type": "result", "id": "a"}, [np.zeros((1024, 1024))])  # 8 MiB
    write_frame(buffer, {"type": "result", "id": "b"}, [np.ones(3)])
    stream = CountingStream(buffer.getvalue())
    seen = []

    def accept(header, shapes):
        seen.append((header["id"], shapes))
        return "too large" if header["id"] == "a" else None

    with pytest.raises(wire.WireRejected, match="too large"):
        read_frame(stream, max_header_bytes=4096, max_array_bytes=16 << 20, accept=accept)
    assert stream.largest_read <= 1 << 20  # never the whole 8 MiB at once
    header, arrays = read_frame(stream, max_header_bytes=4096, max_array_bytes=16 << 20, accept=accept)
    assert header["id"] == "b" and arrays[0].tolist() == [1.0, 1.0, 1.0]
    assert seen == [("a", [(1024, 1024)]), ("b", [(3,)])]


@pytest.mark.parametrize("shape", [[2**62, 2**62, 0], [0, 2**41], [2**40, 2**20, 0, 2**20]])
def test_a_shape_numpy_cannot_build_is_a_wire_error_not_a_crash(shape):
    stream = json_frame({"arrays": [{"shape": shape, "dtype": "<f8"}]})
    with pytest.raises(WireError):
        read_frame(stream, max_header_bytes=4096, max_array_bytes=1 << 20)


def _request(request_id="r", *arrays, **header):
    return Request(dict({"type": "call", "id": request_id, "target": "T", "method": "fprop"}, **header),
                   list(arrays))


def _ok(request_id="r", num_returned=1, num_inputs=0, returned="array", **extra):
    return dict({"type": "result", "id": request_id, "ok": True, "returned": returned,
                 "num_returned": num_returned, "num_inputs": num_inputs}, **extra)


def test_honest_replies_are_accepted():
    x = np.zeros((4, 3))
    budget = answers.ResponseBudget(1 << 20)
    assert answers.acceptor(_request("r", x), budget)(_ok(), [(4, 3)]) is None
    assert answers.acceptor(_request("r", x), budget)(_ok(returned="scalar"), [()]) is None
    assert answers.acceptor(_request("r", x), budget)(_ok(num_returned=2, returned="list"), [(3, 4), (3,)]) is None
    with_inputs = _request("r", x, return_inputs=True)
    assert answers.acceptor(with_inputs, budget)(_ok(num_inputs=1), [(4, 5), (4, 3)]) is None
    failure = {"type": "result", "id": "r", "ok": False, "error": "ValueError: x", "error_kind": "student",
               "traceback": "..."}
    assert answers.acceptor(_request("r", x), budget)(failure, []) is None
    train = Request({"type": "train", "id": "t", "num_epochs": 2},
                    [np.zeros((20, 784)), np.zeros((20, 10)), np.zeros((7, 784))])
    assert answers.acceptor(train, budget)(_ok("t", num_returned=2, returned="list"), [(7, 10), (2,)]) is None
    # A wrongly shaped but small answer is read, so that the judge can explain it.
    assert answers.acceptor(_request("r", x), budget)(_ok(), [(4, 30)]) is None


@pytest.mark.parametrize("header, shapes, fragment", [
    (_ok("other"), [(4, 3)], "does not answer"),
    (dict(_ok(), type="setup"), [(4, 3)], "does not answer"),
    (dict(_ok(), padding="x"), [(4, 3)], "unknown header keys"),
    (_ok(num_returned=2), [(4, 3)], "announces"),
    (_ok(num_returned=True), [(4, 3)], "not counts"),
    (_ok(num_inputs=1), [(4, 3), (4, 3)], "inputs sent back"),
    ({"type": "result", "id": "r", "ok": False, "error": "e"}, [(1,)], "failure reply"),
    (_ok(), [(4096, 4096)], "at most"),
    (_ok(num_returned=3, returned="list"), [(1000, 1000)] * 3, "at most"),
])
def test_replies_other_than_the_answer_asked_for_are_refused(header, shapes, fragment):
    reason = answers.acceptor(_request("r", np.zeros((4, 3))), answers.ResponseBudget(1 << 30))(header, shapes)
    assert reason is not None and fragment in reason


@pytest.mark.parametrize("shapes", [[(7, 10)], [(8, 10), (2,)], [(7, 10), (3,)], [(7, 5000), (2,)],
                                    [(7,), (2,)]])
def test_training_replies_must_have_the_rows_and_epochs_asked_for(shapes):
    train = Request({"type": "train", "id": "t", "num_epochs": 2},
                    [np.zeros((20, 784)), np.zeros((20, 10)), np.zeros((7, 784))])
    header = _ok("t", num_returned=len(shapes), returned="list")
    assert answers.acceptor(train, answers.ResponseBudget(1 << 30))(header, shapes) is not None


def test_the_budget_of_one_submission_trips_and_stays_tripped():
    budget = answers.ResponseBudget(3 * 8 * 100)
    accept = answers.acceptor(_request("r", np.zeros(100)), budget)
    assert [accept(_ok(), [(100,)]) is None for _ in range(4)] == [True, True, True, False]
    assert "MiB the grader accepts from one submission" in accept(_ok(), [(1,)])
    assert budget.remaining == 0
    assert accept(dict(_ok(), ok=False, error="e"), []) is None  # failures carry no arrays: always fine


def test_an_explicit_answer_bound_of_the_planner_wins():
    request = _request("r", np.zeros((100, 100)))
    request.answer_bytes = 8 * 10
    accept = answers.acceptor(request, answers.ResponseBudget(1 << 30))
    assert accept(_ok(), [(10,)]) is None and accept(_ok(), [(11,)]) is not None


FLOOD_SOURCE = '''
import numpy as np
calls = []

class Flood:
    def fprop(self, x):
        calls.append(1)
        if len(calls) <= 3:
            return np.zeros((4000, 4000))  # 128 MB per reply
        return x * 2
'''


@pytest.mark.parametrize("level", [level for level in ISOLATION_LEVELS if level == "rlimits" or _probe(level)])
def test_a_child_flooding_every_reply_is_refused_unread_and_keeps_answering(level, tmp_path):
    mlp = tmp_path / "release"
    (mlp / "mlp").mkdir(parents=True)
    (mlp / "mlp" / "__init__.py").write_text("")
    requests = [Request({"type": "call", "id": f"c{i}", "target": "Flood", "method": "fprop",
                         "args": [{"array": 0}]}, [np.full((2, 3), float(i))]) for i in range(5)]
    outcome = exec_untrusted(textwrap.dedent(FLOOD_SOURCE), requests, student_mlp_dir=mlp, isolation=level,
                             limits=Limits(request_seconds=20.0, response_bytes=256 << 20))
    statuses = [outcome.responses[f"c{i}"].status for i in range(5)]
    assert statuses == ["error"] * 3 + ["ok"] * 2, [r.message for r in outcome.responses.values()]
    assert all("malformed data" in outcome.responses[f"c{i}"].message for i in range(3))
    assert outcome.restarts == 0  # refused frames keep the stream in step
    assert outcome.responses["c4"].returned[0].tolist() == (np.full((2, 3), 4.0) * 2).tolist()
