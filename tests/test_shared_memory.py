"""Tests of autograder.sandbox.shared_memory: the training data reaches every child, unchangeable.

The training set goes to each child in sealed memory files instead of the
request pipe. The promise is the pipe's: each child gets the same arrays, as
its own writable copies, and no child (nor anything else) can change what the
next child receives.
"""

import fcntl
import mmap
import os
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from autograder.sandbox import isolation as sandbox
from autograder.sandbox import shared_memory
from autograder.sandbox.isolation import Request, Sandbox, exec_untrusted
from autograder.sandbox.limits import Limits
from procfs import descriptors_taken_below

REPO_ROOT = Path(__file__).resolve().parents[1]
LEVELS = [level for level in sandbox.ISOLATION_LEVELS if level == "rlimits" or sandbox._probe(level)]

TAMPERING_SOURCE = """
import fcntl, mmap, os
import numpy as np

def tamper(data):
    data[:] = -1.0  # its own copy: allowed, and invisible to anyone else
    attempts = 0
    for fd in range(3, 256):
        for attempt in (lambda: os.pwrite(fd, b"\\xff" * 64, 0),
                        lambda: os.ftruncate(fd, 8),
                        lambda: mmap.mmap(fd, 64, flags=mmap.MAP_SHARED, prot=mmap.PROT_WRITE),
                        lambda: fcntl.fcntl(fd, 1033, 0)):  # F_ADD_SEALS with nothing new
            try:
                attempt()
                attempts += 1
            except Exception:
                pass
    return np.array([data.sum(), float(data.flags.writeable)])

def total(data):
    return np.array([data.sum()])
"""


@pytest.fixture(scope="module")
def student_mlp_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("student")
    shutil.copytree(REPO_ROOT / "release" / "03_multiple_layer_models" / "mlp", root / "mlp")
    return root


def training_like(rows=300, seed=3):
    data = np.random.default_rng(seed).random((rows, 784))
    data.flags.writeable = False
    return data


def ask(source, requests, student_mlp_dir, level):
    return exec_untrusted(textwrap.dedent(source), requests, student_mlp_dir=student_mlp_dir,
                          limits=Limits(request_seconds=30.0), isolation=level)


def call(request_id, function, array, shared):
    return Request({"type": "call", "id": request_id, "target": function, "method": None,
                    "args": [{"array": 0}]}, [array], shared=shared)


def test_a_read_only_array_is_sealed_once_per_process():
    data = training_like()
    sealed = shared_memory.seal(data)
    assert sealed is not None and sealed.shape == data.shape
    assert shared_memory.seal(data) is sealed
    seals = fcntl.fcntl(sealed.fd, fcntl.F_GET_SEALS)
    for seal in (fcntl.F_SEAL_WRITE, fcntl.F_SEAL_SHRINK, fcntl.F_SEAL_GROW, fcntl.F_SEAL_SEAL):
        assert seals & seal
    with mmap.mmap(sealed.fd, data.nbytes, prot=mmap.PROT_READ) as mapped:
        assert np.frombuffer(mapped, dtype="<f8").tobytes() == data.tobytes()


def test_the_sealed_file_cannot_be_changed_even_by_the_grader():
    sealed = shared_memory.seal(training_like(seed=4))
    with pytest.raises(PermissionError):
        os.pwrite(sealed.fd, b"\0" * 8, 0)
    with pytest.raises(PermissionError):
        os.ftruncate(sealed.fd, 8)
    with pytest.raises(PermissionError):
        mmap.mmap(sealed.fd, 8, flags=mmap.MAP_SHARED, prot=mmap.PROT_WRITE)


@pytest.mark.parametrize("array, read_only", [(np.zeros((3, 3)), False), (np.zeros((0, 4)), True),
                                              (np.zeros(4, dtype=np.float32), True)],
                         ids=["writable", "empty", "float32"])
def test_arrays_that_could_change_or_are_not_float64_use_the_pipe(array, read_only):
    array.flags.writeable = not read_only
    assert shared_memory.seal(array) is None


@pytest.mark.parametrize("level", LEVELS)
def test_a_shared_request_gets_the_same_arrays_as_a_piped_one(student_mlp_dir, level):
    data = training_like(seed=5)
    outcome = ask(TAMPERING_SOURCE, [call("piped", "total", data, False), call("shared", "total", data, True)],
                  student_mlp_dir, level)
    piped, shared = outcome.responses["piped"], outcome.responses["shared"]
    assert piped.status == shared.status == "ok", (piped.message, shared.message)
    assert shared.returned[0][0] == piped.returned[0][0] == data.sum()


@pytest.mark.parametrize("level", LEVELS)
def test_a_child_cannot_change_what_the_next_child_trains_on(student_mlp_dir, level):
    """Every way to write the inherited files fails; the child's own copy is writable and private."""
    data = training_like(seed=6)
    assert shared_memory.seal(data) is not None  # sealed before the first child starts: it inherits the file
    first = ask(TAMPERING_SOURCE, [call("tamper", "tamper", data, True)], student_mlp_dir, level)
    response = first.responses["tamper"]
    assert response.status == "ok", response.message
    assert response.returned[0][0] == -data.size  # it changed its copy
    assert response.returned[0][1] == 1.0  # which was writable
    second = ask(TAMPERING_SOURCE, [call("total", "total", data, True)], student_mlp_dir, level)
    assert second.responses["total"].returned[0][0] == data.sum()
    with mmap.mmap(shared_memory.seal(data).fd, data.nbytes, prot=mmap.PROT_READ) as mapped:
        assert np.frombuffer(mapped, dtype="<f8").tobytes() == data.tobytes()


@pytest.mark.parametrize("level", LEVELS)
def test_a_child_inherits_the_files_sealed_before_it_started(student_mlp_dir, level):
    """The first child for an array gets it through the pipe, every later child from the file."""
    data = training_like(rows=290 + LEVELS.index(level), seed=7)  # a shape no other test seals
    with Sandbox(student_mlp_dir=student_mlp_dir, isolation=level) as sandbox:
        assert not any(file.shape == data.shape for file in sandbox.inherited)
        first = sandbox.run(TAMPERING_SOURCE, [call("total", "total", data, True)])
    sealed = shared_memory.seal(data)
    with Sandbox(student_mlp_dir=student_mlp_dir, isolation=level) as sandbox:
        assert sealed in sandbox.inherited
        second = sandbox.run(TAMPERING_SOURCE, [call("total", "total", data, True)])
    assert first.responses["total"].returned[0][0] == second.responses["total"].returned[0][0] == data.sum()


@pytest.mark.parametrize("level", LEVELS)
def test_the_runner_never_takes_the_descriptor_of_an_inherited_file(student_mlp_dir, level):
    """However high a sealed file's descriptor, the runner's pipes go elsewhere and the data arrives whole."""
    data = training_like(rows=280 + LEVELS.index(level), seed=8)
    with descriptors_taken_below(30) as slot:
        sealed = shared_memory.seal(data)  # at the runner's first choice under a limit of slot + 1
    assert sealed is not None and sealed.fd == slot
    outcome = exec_untrusted(textwrap.dedent(TAMPERING_SOURCE), [call("total", "total", data, True)],
                             student_mlp_dir=student_mlp_dir,
                             limits=Limits(request_seconds=30.0, open_files=slot + 1), isolation=level)
    response = outcome.responses["total"]
    assert response.status == "ok", (outcome.setup.message, response.message)
    assert response.returned[0][0] == data.sum()

def test_the_header_key_shared_is_reserved(student_mlp_dir):
    request = Request({"type": "call", "id": "a", "target": "total", "shared": []}, [])
    with pytest.raises(ValueError, match="reserved"):
        exec_untrusted("", [request], student_mlp_dir=student_mlp_dir)
