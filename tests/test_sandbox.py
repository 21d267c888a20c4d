"""Tests for autograder.sandbox.isolation and autograder.sandbox.child_runner: running hostile code safely.

Most tests run once per isolation level that works on this machine
("rlimits" always; "unshare" and "bwrap" when available).
"""

from __future__ import annotations

import importlib.util
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from autograder.sandbox import isolation as sandbox
from autograder.sandbox.limits import GIB, Limits
from autograder.sandbox.isolation import ISOLATION_LEVELS, Request, exec_untrusted
from procfs import descriptors_taken_below, processes_with, wait_until

AVAILABLE_LEVELS = [level for level in ISOLATION_LEVELS if level == "rlimits" or sandbox._probe(level)]
NAMESPACED_LEVELS = [level for level in AVAILABLE_LEVELS if level != "rlimits"]
BEST_LEVEL = AVAILABLE_LEVELS[0]
REPO_ROOT = Path(__file__).resolve().parents[1]

per_level = pytest.mark.parametrize("level", AVAILABLE_LEVELS)


# --------------------------------------------------------------------------
# A tiny student copy of mlp: enough to train, and deliberately without TanhLayer
# --------------------------------------------------------------------------

FAKE_MLP = {
    "__init__.py": "STUDENT_COPY = True\n",
    "layers.py": '''
        import numpy as np

        class AffineLayer:
            def __init__(self, input_dim, output_dim, weights_initialiser=None, biases_initialiser=None):
                self.weights = weights_initialiser((output_dim, input_dim))
                self.biases = biases_initialiser((output_dim,))

            def fprop(self, inputs):
                return inputs @ self.weights.T + self.biases

            def bprop(self, inputs, outputs, grads_wrt_outputs):
                return grads_wrt_outputs @ self.weights

            def grads_wrt_params(self, inputs, grads_wrt_outputs):
                return [grads_wrt_outputs.T @ inputs, grads_wrt_outputs.sum(0)]

            @property
            def params(self):
                return [self.weights, self.biases]

            @params.setter
            def params(self, values):
                self.weights, self.biases = values

        def helper_in_student_mlp(x):
            raise ValueError("raised inside the student mlp copy")
    ''',
    "initialisers.py": '''
        class UniformInit:
            def __init__(self, low, high, rng):
                self.low, self.high, self.rng = low, high, rng

            def __call__(self, shape):
                return self.rng.uniform(self.low, self.high, shape)
    ''',
    "models.py": '''
        class MultipleLayerModel:
            def __init__(self, layers):
                self.layers = layers

            @property
            def params(self):
                return [p for layer in self.layers if hasattr(layer, "params") for p in layer.params]

            def fprop(self, inputs):
                activations = [inputs]
                for layer in self.layers:
                    activations.append(layer.fprop(activations[-1]))
                return activations

            def grads_wrt_params(self, activations, grads_wrt_outputs):
                grads = []
                for i, layer in list(enumerate(self.layers))[::-1]:
                    inputs, outputs = activations[i], activations[i + 1]
                    if hasattr(layer, "params"):
                        grads = layer.grads_wrt_params(inputs, grads_wrt_outputs) + grads
                    grads_wrt_outputs = layer.bprop(inputs, outputs, grads_wrt_outputs)
                return grads
    ''',
    "errors.py": '''
        import numpy as np

        def _softmax(x):
            e = np.exp(x - x.max(-1, keepdims=True))
            return e / e.sum(-1, keepdims=True)

        class CrossEntropySoftmaxError:
            def __call__(self, outputs, targets):
                return -np.mean(np.sum(targets * np.log(_softmax(outputs)), axis=1))

            def grad(self, outputs, targets):
                return (_softmax(outputs) - targets) / outputs.shape[0]
    ''',
    "learning_rules.py": '''
        class GradientDescentLearningRule:
            def __init__(self, learning_rate):
                self.learning_rate = learning_rate

            def initialise(self, params):
                self.params = params

            def update_params(self, grads):
                for param, grad in zip(self.params, grads):
                    param -= self.learning_rate * grad
    ''',
    "data_providers.py": '''
        class DataProvider:
            def __init__(self, inputs, targets, batch_size, rng):
                self.inputs, self.targets, self.batch_size, self.rng = inputs, targets, batch_size, rng

            def __iter__(self):
                order = self.rng.permutation(self.inputs.shape[0])
                for start in range(0, len(order) - self.batch_size + 1, self.batch_size):
                    batch = order[start:start + self.batch_size]
                    yield self.inputs[batch], self.targets[batch]
    ''',
}


@pytest.fixture(scope="module")
def student_mlp_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("student_release")
    (root / "mlp").mkdir()
    for name, text in FAKE_MLP.items():
        (root / "mlp" / name).write_text(textwrap.dedent(text))
    return root


def _limits(**limit_overrides) -> Limits:
    return Limits(**limit_overrides) if limit_overrides else Limits(request_seconds=20.0)


def run(source: str, requests: list[Request], mlp_dir: Path, level: str, **limit_overrides) -> sandbox.SandboxOutcome:
    return exec_untrusted(textwrap.dedent(source), requests, student_mlp_dir=mlp_dir,
                          limits=_limits(**limit_overrides), isolation=level)


def call(request_id: str, target: str, method: str | None = None, *arrays, args=None, timeout=None,
         **header) -> Request:
    """A call request whose args default to the given arrays, in order."""
    full = {"type": "call", "id": request_id, "target": target, "method": method,
            "args": args if args is not None else [{"array": i} for i in range(len(arrays))]}
    full.update(header)
    return Request(full, list(arrays), timeout=timeout)


TANH_SOURCE = """
    import numpy as np

    class TanhLayer:
        def fprop(self, inputs):
            return np.tanh(inputs)

        def bprop(self, inputs, outputs, grads_wrt_outputs):
            return (1.0 - outputs ** 2) * grads_wrt_outputs

        def grads_wrt_params(self, inputs, grads_wrt_outputs):
            return []

    def echo(*values):
        return values[0]

    def loop_forever(x):
        while True:
            pass

    def hard_exit(x):
        import os
        os._exit(0)
"""


# --------------------------------------------------------------------------
# Correct results
# --------------------------------------------------------------------------


@per_level
def test_student_tanh_layer_returns_correct_arrays(student_mlp_dir, level):
    rng = np.random.RandomState(1)
    x, grads = rng.randn(4, 5), rng.randn(4, 5)
    outcome = run(TANH_SOURCE, [
        call("fprop", "TanhLayer", "fprop", x),
        call("bprop", "TanhLayer", "bprop", x, np.tanh(x), grads),
        call("params", "TanhLayer", "grads_wrt_params", x, grads),
    ], student_mlp_dir, level)
    assert outcome.isolation == level
    assert outcome.setup.ok and outcome.setup.errors == []
    assert outcome.setup.names["TanhLayer"] == "class" and outcome.setup.names["echo"] == "function"
    fprop, bprop, params = (outcome.responses[k] for k in ("fprop", "bprop", "params"))
    assert fprop.status == "ok", fprop.message
    assert fprop.header["returned"] == "array"
    np.testing.assert_allclose(fprop.returned[0], np.tanh(x), rtol=0, atol=1e-15)
    np.testing.assert_allclose(bprop.returned[0], (1 - np.tanh(x) ** 2) * grads, rtol=1e-14)
    assert params.status == "ok" and params.header["returned"] == "list" and params.returned == []
    assert outcome.restarts == 0


@per_level
def test_inputs_after_the_call_reveal_in_place_modification(student_mlp_dir, level):
    source = """
        import numpy as np

        class Sneaky:
            def fprop(self, inputs):
                np.tanh(inputs, out=inputs)
                return inputs

        class Polite:
            def fprop(self, inputs):
                return np.tanh(inputs)
    """
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    outcome = run(source, [call("sneaky", "Sneaky", "fprop", x, return_inputs=True),
                           call("polite", "Polite", "fprop", x, return_inputs=True)], student_mlp_dir, level)
    sneaky, polite = outcome.responses["sneaky"], outcome.responses["polite"]
    assert sneaky.status == polite.status == "ok"
    np.testing.assert_allclose(sneaky.inputs_after[0], np.tanh(x))
    np.testing.assert_array_equal(polite.inputs_after[0], x)
    np.testing.assert_array_equal(x, np.linspace(-1, 1, 6).reshape(2, 3))  # the parent's copy is intact


def test_init_arguments_rng_seed_params_and_scalars(student_mlp_dir):
    source = """
        import numpy as np

        class Scaled:
            def __init__(self, factor, offset=0.0, rng=None):
                self.factor, self.offset = factor, offset
                self.noise = rng.uniform(size=3) if rng is not None else None

            def fprop(self, inputs, power=1):
                return self.factor * inputs ** power + self.offset

            def get_noise(self):
                return self.noise

            def param_sum(self):
                return float(sum(p.sum() for p in self.params))
    """
    x = np.arange(3.0)
    outcome = run(source, [
        call("fprop", "Scaled", "fprop", x, init={"args": [2.0], "kwargs": {"offset": 1.0}},
             kwargs={"power": 2}),
        call("noise", "Scaled", "get_noise", init={"args": [1.0], "rng_seed": 42}),
        call("params", "Scaled", "param_sum", np.ones((2, 2)), np.full(3, 2.0),
             init={"args": [1.0]}, params=[0, 1], args=[]),
    ], student_mlp_dir, BEST_LEVEL)
    np.testing.assert_array_equal(outcome.responses["fprop"].returned[0], 2 * x ** 2 + 1)
    np.testing.assert_array_equal(outcome.responses["noise"].returned[0], np.random.RandomState(42).uniform(size=3))
    params = outcome.responses["params"]
    assert params.header["returned"] == "scalar" and params.returned[0].shape == ()
    assert float(params.returned[0]) == 10.0


def test_class_can_be_taken_from_the_student_mlp_copy(student_mlp_dir):
    weights, biases, x = np.eye(2, 3), np.array([1.0, -1.0]), np.arange(6.0).reshape(2, 3)
    outcome = run("", [call("affine", "AffineLayer", "fprop", weights, biases, x, source="mlp.layers",
                            init={"args": [3, 2], "kwargs": {"weights_initialiser": None}}, params=[0, 1],
                            args=[{"array": 2}])], student_mlp_dir, BEST_LEVEL)
    # weights_initialiser None makes the constructor fail: the student copy's code really ran.
    assert outcome.responses["affine"].status == "error"
    assert "TypeError" in outcome.responses["affine"].message
    assert 'mlp/layers.py' in outcome.responses["affine"].message


def test_returned_values_are_converted_strictly(student_mlp_dir):
    source = """
        import os
        import numpy as np

        class Sub(np.ndarray):
            pass

        class Trap:
            def __array__(self, *args, **kwargs):
                os._exit(7)

        class Returns:
            def nothing(self, x):
                return None
            def subclass(self, x):
                return x.view(Sub)
            def matrix(self, x):
                return np.asmatrix(x)
            def array_like(self, x):
                return Trap()
            def mixed_list(self, x):
                return [x, Trap()]
            def objects(self, x):
                return np.array([None, "text"], dtype=object)
            def complex(self, x):
                return x + 1j
            def ints(self, x):
                return np.arange(3, dtype=np.int16)
            def pair(self, x):
                return (x, 2 * x)
            def number(self, x):
                return np.float32(1.5)
            def huge_int(self, x):
                return 10 ** 400
    """
    x = np.ones(3)
    methods = ["nothing", "subclass", "matrix", "array_like", "mixed_list", "objects", "complex", "ints",
               "pair", "number", "huge_int"]
    outcome = run(source, [call(m, "Returns", m, x) for m in methods], student_mlp_dir, BEST_LEVEL)
    r = outcome.responses
    assert r["nothing"].status == "error"
    assert r["nothing"].message == "Returns.nothing returned NoneType, expected a numpy array"
    assert r["subclass"].status == "error" and "Sub" in r["subclass"].message
    assert r["matrix"].status == "error" and "matrix" in r["matrix"].message
    # __array__ was never called: calling it would have ended the process (status "crashed").
    assert r["array_like"].status == "error" and "Trap" in r["array_like"].message
    assert r["mixed_list"].status == "error" and "item 1" in r["mixed_list"].message
    assert r["objects"].status == "error" and "dtype object" in r["objects"].message
    assert r["complex"].status == "error" and "complex" in r["complex"].message
    assert r["ints"].status == "ok" and r["ints"].returned[0].dtype == np.float64
    np.testing.assert_array_equal(r["ints"].returned[0], [0.0, 1.0, 2.0])
    assert r["pair"].status == "ok" and r["pair"].header["returned"] == "list" and len(r["pair"].returned) == 2
    assert r["number"].status == "ok" and float(r["number"].returned[0]) == 1.5
    assert r["huge_int"].status == "error"
    assert outcome.restarts == 0


def test_student_exceptions_carry_a_traceback_of_student_frames_only(student_mlp_dir):
    source = """
        import numpy as np
        from mlp.layers import helper_in_student_mlp

        class Broken:
            def fprop(self, inputs):
                return self._inner(inputs)

            def _inner(self, inputs):
                return np.dot(inputs, np.ones((7, 7)))

            def bprop(self, inputs, outputs, grads):
                raise NotImplementedError("bprop is not written yet")

            def via_mlp(self, inputs):
                return helper_in_student_mlp(inputs)
    """
    x = np.ones((2, 3))
    outcome = run(source, [call("fprop", "Broken", "fprop", x), call("bprop", "Broken", "bprop", x, x, x),
                           call("mlp", "Broken", "via_mlp", x), call("missing", "Absent", "fprop", x)],
                  student_mlp_dir, BEST_LEVEL)
    fprop = outcome.responses["fprop"]
    assert fprop.status == "error" and fprop.header["error_kind"] == "student"
    assert fprop.header["error"].startswith("ValueError: shapes (2,3) and (7,7) not aligned")
    trace = fprop.header["traceback"]
    assert 'File "submission.py", line 7, in fprop' in trace and "line 10, in _inner" in trace
    assert "child_runner" not in trace and "numpy" not in trace
    assert outcome.responses["bprop"].message.startswith("NotImplementedError: bprop is not written yet")
    assert 'File "mlp/layers.py"' in outcome.responses["mlp"].header["traceback"]
    missing = outcome.responses["missing"]
    assert missing.status == "error" and "does not define Absent" in missing.message


# --------------------------------------------------------------------------
# Loading the submission
# --------------------------------------------------------------------------


def test_setup_records_each_failing_statement_and_keeps_going(student_mlp_dir):
    source = "\n".join([
        "import numpy as np",                      # 1
        "import a_module_that_does_not_exist",     # 2
        "value = 1 / 0",                           # 3
        "class TanhLayer:",                        # 4
        "    def fprop(self, inputs):",            # 5
        "        return np.tanh(inputs)",          # 6
        "raise SystemExit(3)",                     # 7
        "def helper():",                           # 8
        "    return 1",                            # 9
        "answer = 42",                             # 10
    ])
    outcome = run(source, [call("fprop", "TanhLayer", "fprop", np.zeros(2))], student_mlp_dir, BEST_LEVEL)
    setup = outcome.setup
    assert setup.ok
    assert [(e.line, e.error) for e in setup.errors] == [
        (2, "ModuleNotFoundError: No module named 'a_module_that_does_not_exist'"),
        (3, "ZeroDivisionError: division by zero"),
        (7, "SystemExit: 3"),
    ]
    assert setup.names == {"np": "other", "TanhLayer": "class", "helper": "function", "answer": "other"}
    assert outcome.responses["fprop"].status == "ok"


def test_future_imports_apply_to_later_statements(student_mlp_dir):
    source = """
        from __future__ import annotations

        def f(x: NotDefinedAnywhere) -> NotDefinedEither:
            return x
    """
    outcome = run(source, [], student_mlp_dir, BEST_LEVEL)
    assert outcome.setup.ok and outcome.setup.errors == []
    assert outcome.setup.names == {"annotations": "other", "f": "function"}


def test_syntax_error_fails_setup_and_requests_say_why(student_mlp_dir):
    outcome = run("class TanhLayer:\n    def fprop(self x):\n        pass\n",
                  [call("fprop", "TanhLayer", "fprop", np.zeros(2))], student_mlp_dir, BEST_LEVEL)
    assert not outcome.setup.ok
    assert "SyntaxError" in outcome.setup.message
    response = outcome.responses["fprop"]
    assert response.status == "error"
    assert "does not define TanhLayer" in response.message and "SyntaxError" in response.message


def test_top_level_exit_is_reported_as_a_failed_setup(student_mlp_dir):
    outcome = run("import os\nos._exit(0)\n", [call("a", "X", "f"), call("b", "X", "g")],
                  student_mlp_dir, BEST_LEVEL)
    assert not outcome.setup.ok and "exit status 0" in outcome.setup.message
    assert {r.status for r in outcome.responses.values()} == {"crashed"}
    assert outcome.responses["a"].message.startswith("not run: loading the submission failed")


def test_endless_top_level_code_times_out_setup(student_mlp_dir):
    outcome = run("while True:\n    pass\n", [call("a", "X", "f")], student_mlp_dir, BEST_LEVEL,
                  setup_seconds=1.0)
    assert not outcome.setup.ok and "did not finish within 1 s" in outcome.setup.message
    assert outcome.responses["a"].status == "timeout"


# --------------------------------------------------------------------------
# What the child can see
# --------------------------------------------------------------------------

PROBE_SOURCE = """
    import importlib
    import os
    import resource
    import numpy as np

    def can_import(name, attribute=None):
        try:
            module = importlib.import_module(name)
            if attribute is not None:
                getattr(module, attribute)
            return 1.0
        except Exception:
            return 0.0

    def imports(x):
        import mlp
        return np.array([can_import("autograder"), can_import("mlp.layers", "TanhLayer"),
                         float(getattr(mlp, "STUDENT_COPY", False)), can_import("nbformat"),
                         can_import("mlp_autograde")])

    def environment(x):
        return np.array([float("MLP_SANDBOX_TEST_SECRET" in os.environ),
                         float(os.environ.get("OPENBLAS_NUM_THREADS") == "1"),
                         float(os.environ.get("PATH") == "/usr/bin:/bin"),
                         float(os.listdir(".") == []),
                         float(os.environ.get("HOME") == os.getcwd())])

    def write_and_read_back(x):
        with open("scratch.bin", "wb") as handle:
            handle.write(np.asarray(x, dtype=float).tobytes())
        with open(os.path.join(os.environ["HOME"], "scratch.bin"), "rb") as handle:
            return np.frombuffer(handle.read(), dtype=float).copy()

    def limits(x):
        return np.array([resource.getrlimit(r)[0] for r in
                         (resource.RLIMIT_AS, resource.RLIMIT_NOFILE, resource.RLIMIT_FSIZE,
                          resource.RLIMIT_CPU, resource.RLIMIT_CORE)], dtype=float)

    def read_file(path):
        with open(path, "rb") as handle:
            return np.array([float(len(handle.read()))])

    def identity(x):
        return np.array([float(os.getuid()), float(os.getpid())])

    def connect(port):
        import socket
        with socket.create_connection(("127.0.0.1", int(port)), timeout=3):
            return np.array([1.0])
"""


@per_level
def test_child_cannot_import_the_grader_or_the_reference(student_mlp_dir, level):
    # Both are importable here, in the parent.
    assert importlib.util.find_spec("autograder") is not None
    reference_layers = pytest.importorskip("mlp.layers")
    assert hasattr(reference_layers, "TanhLayer")
    outcome = run(PROBE_SOURCE, [call("imports", "imports", None, args=[0])], student_mlp_dir, level)
    response = outcome.responses["imports"]
    assert response.status == "ok", response.message
    can_autograder, can_tanh, student_copy, can_nbformat, can_editable = response.returned[0]
    assert can_autograder == 0.0
    assert can_tanh == 0.0
    assert student_copy == 1.0
    assert can_nbformat == 0.0 and can_editable == 0.0


@per_level
def test_environment_is_scrubbed_and_workdir_empty(student_mlp_dir, level, monkeypatch):
    monkeypatch.setenv("MLP_SANDBOX_TEST_SECRET", "do-not-leak")
    outcome = run(PROBE_SOURCE, [call("env", "environment", None, args=[0])], student_mlp_dir, level)
    np.testing.assert_array_equal(outcome.responses["env"].returned[0], [0.0, 1.0, 1.0, 1.0, 1.0])


@per_level
def test_working_directory_is_writable(student_mlp_dir, level):
    x = np.array([1.5, -2.0])
    outcome = run(PROBE_SOURCE, [call("write", "write_and_read_back", None, x)], student_mlp_dir, level)
    assert outcome.responses["write"].status == "ok", outcome.responses["write"].message
    np.testing.assert_array_equal(outcome.responses["write"].returned[0], x)


@per_level
def test_resource_limits_are_applied(student_mlp_dir, level):
    outcome = run(PROBE_SOURCE, [call("limits", "limits", None, args=[0])], student_mlp_dir, level,
                  address_space_bytes=1 * GIB, open_files=40, file_size_bytes=1 << 20, cpu_seconds=30)
    np.testing.assert_array_equal(outcome.responses["limits"].returned[0], [1 * GIB, 40, 1 << 20, 30, 0])


@pytest.mark.parametrize("level", NAMESPACED_LEVELS or
                         [pytest.param("none", marks=pytest.mark.skip(reason="no namespace isolation here"))])
def test_network_is_unreachable_in_namespaces(student_mlp_dir, level):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        outcome = run(PROBE_SOURCE, [call("net", "connect", None, args=[port])], student_mlp_dir, level)
    response = outcome.responses["net"]
    assert response.status == "error", "the sandbox reached a port on the grader's machine"
    assert "Error" in response.message


def test_network_probe_does_connect_without_namespaces(student_mlp_dir):
    """The probe above is able to fail: under rlimits only, the connection succeeds."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        outcome = run(PROBE_SOURCE, [call("net", "connect", None, args=[port])], student_mlp_dir, "rlimits")
    assert outcome.responses["net"].status == "ok"


@pytest.mark.skipif("bwrap" not in AVAILABLE_LEVELS, reason="bubblewrap is not available")
def test_bwrap_hides_the_repository_and_runs_unprivileged(student_mlp_dir):
    reference_file = REPO_ROOT / "pyproject.toml"
    assert reference_file.is_file()
    requests = [call("repo", "read_file", None, args=[str(reference_file)]),
                call("grader", "read_file", None, args=[sandbox.__file__]),
                call("shadow", "read_file", None, args=["/etc/shadow"]),
                call("who", "identity", None, args=[0])]
    outcome = run(PROBE_SOURCE, requests, student_mlp_dir, "bwrap")
    for key in ("repo", "grader", "shadow"):
        assert outcome.responses[key].status == "error"
        assert "FileNotFoundError" in outcome.responses[key].message
    uid, pid = outcome.responses["who"].returned[0]
    assert pid < 10  # its own pid namespace
    if os.geteuid() == 0:
        assert uid == sandbox.SANDBOX_UID


def test_repository_is_visible_without_bwrap(student_mlp_dir):
    """The bwrap test above is able to fail: without file-system hiding the file is read."""
    outcome = run(PROBE_SOURCE, [call("repo", "read_file", None, args=[str(REPO_ROOT / "pyproject.toml")])],
                  student_mlp_dir, "rlimits")
    assert outcome.responses["repo"].status == "ok"


def test_the_student_mlp_copy_cannot_be_modified_by_a_submission(student_mlp_dir):
    source = """
        import mlp, os
        def vandalise(x):
            path = os.path.join(os.path.dirname(mlp.__file__), "layers.py")
            with open(path, "w") as handle:
                handle.write("broken")
            return x
    """
    before = (student_mlp_dir / "mlp" / "layers.py").read_text()
    outcome = run(source, [call("v", "vandalise", None, np.ones(1))], student_mlp_dir, "rlimits")
    if sandbox.student_uid("rlimits") == sandbox.SANDBOX_UID:
        assert "PermissionError" in outcome.responses["v"].message  # its copy is read-only to it
    else:
        assert outcome.responses["v"].status == "ok"  # it wrote to its private copy
    assert (student_mlp_dir / "mlp" / "layers.py").read_text() == before


WRITE_PROBE_SOURCE = """
    import os

    def writable(x):
        found = []
        for folder in ("/", "/dev", "/dev/shm", "/usr", "/etc", "/sandbox", "/proc", "/tmp", "."):
            path = os.path.join(folder, "write-probe")
            try:
                with open(path, "w") as handle:
                    handle.write("x")
                os.unlink(path)
                found.append(folder)
            except OSError:
                pass
        raise ValueError("writable: " + " ".join(found) + " :end")
"""


@pytest.mark.skipif("bwrap" not in AVAILABLE_LEVELS, reason="bubblewrap is not available")
@pytest.mark.parametrize("grader_is_root", [True, False], ids=["uid-switch", "user-namespace"])
def test_under_bwrap_only_the_capped_scratch_folders_are_writable(student_mlp_dir, grader_is_root, monkeypatch):
    """Without the uid switch, bwrap's own root and /dev belong to the sandbox user: they are made read-only."""
    if grader_is_root and not sandbox._bwrap_switches_uid():
        pytest.skip("the uid switch needs root")
    monkeypatch.setattr(sandbox, "_bwrap_switches_uid", lambda: grader_is_root)
    outcome = run(WRITE_PROBE_SOURCE, [call("w", "writable", None, np.ones(1))], student_mlp_dir, "bwrap")
    assert "writable: /tmp . :end" in outcome.responses["w"].message, outcome.responses["w"].message


@pytest.mark.skipif("bwrap" not in AVAILABLE_LEVELS, reason="bubblewrap is not available")
def test_the_bwrap_view_shows_the_standard_library_and_numpy_but_no_package_folder():
    import site
    from autograder.sandbox import host_view

    view = sandbox._host_view()
    assert view.shows(os.__file__) and view.shows(np.__file__) and view.shows(sandbox._interpreter())
    folders = [entry for entry in sys.path + site.getsitepackages()
               if os.path.basename(entry) in host_view.PACKAGE_DIR_NAMES]
    assert folders
    for folder in folders:
        assert not view.shows(os.path.join(folder, "mlp", "layers.py"))
        assert not view.shows(os.path.join(folder, "autograder", "course", "specs"))
    assert host_view.exposed_secrets(view) == []
    assert not view.shows(str(REPO_ROOT / "autograder" / "course" / "specs"))


@pytest.mark.skipif("bwrap" not in AVAILABLE_LEVELS, reason="bubblewrap is not available")
def test_bwrap_refuses_to_start_when_the_view_would_show_a_secret(student_mlp_dir, monkeypatch):
    """A layout nobody foresaw fails closed: a harness error, never a sandbox that shows the specs."""
    from autograder.sandbox import host_view

    monkeypatch.setattr(host_view, "course_secrets", lambda: ["/usr/lib/a-course-installed-here"])
    with pytest.raises(sandbox.SandboxUnavailable, match="a-course-installed-here"):
        run(TANH_SOURCE, [call("t", "TanhLayer", "fprop", np.ones(2))], student_mlp_dir, "bwrap")


# --------------------------------------------------------------------------
# Hostile or broken code: timeouts, crashes, memory, output, forged replies
# --------------------------------------------------------------------------


@per_level
def test_endless_loop_times_out_and_a_fresh_child_answers_the_rest(student_mlp_dir, level):
    x = np.ones(3)
    outcome = run(TANH_SOURCE, [call("loop", "loop_forever", None, x, timeout=1.0),
                                call("after", "TanhLayer", "fprop", x)], student_mlp_dir, level)
    loop, after = outcome.responses["loop"], outcome.responses["after"]
    assert loop.status == "timeout"
    assert loop.message == "loop_forever did not answer within 1 s (an endless loop?)"
    assert after.status == "ok"
    np.testing.assert_allclose(after.returned[0], np.tanh(x))
    assert outcome.restarts == 1 and outcome.setup.ok


@per_level
def test_os_exit_in_a_method_is_a_crash_and_the_rest_still_run(student_mlp_dir, level):
    x = np.ones(3)
    outcome = run(TANH_SOURCE, [call("exit", "hard_exit", None, x), call("after", "TanhLayer", "fprop", x)],
                  student_mlp_dir, level)
    assert outcome.responses["exit"].status == "crashed"
    assert "exit status 0" in outcome.responses["exit"].message
    assert outcome.responses["after"].status == "ok"
    assert outcome.restarts == 1


def _run_with_callback(source, requests, mlp_dir, on_response, **limit_overrides):
    with sandbox.Sandbox(student_mlp_dir=mlp_dir, limits=_limits(**limit_overrides), isolation=BEST_LEVEL) as box:
        return box.run(textwrap.dedent(source), requests, on_response=on_response)


def test_each_response_is_handed_over_once_as_soon_as_it_is_final(student_mlp_dir, monkeypatch):
    events = []
    collect = sandbox._Child.collect

    def recording_collect(self):
        response = collect(self)
        events.append(("collected", response.id))
        return response

    monkeypatch.setattr(sandbox._Child, "collect", recording_collect)
    x = np.ones(3)
    requests = [call("a", "TanhLayer", "fprop", x), call("exit", "hard_exit", None, x),
                call("b", "TanhLayer", "fprop", x), call("c", "TanhLayer", "fprop", x)]
    outcome = _run_with_callback(TANH_SOURCE, requests, student_mlp_dir,
                                 lambda response: events.append(("handed", response.id, response.status)))
    # Each one is handed over before the next reply is read (the caller works while the child
    # does), the crash's too, and the requests that went to the restarted child after it.
    expected = []
    for request_id, status in [("a", "ok"), ("exit", "crashed"), ("b", "ok"), ("c", "ok")]:
        expected += [("collected", request_id), ("handed", request_id, status)]
    assert events == expected
    assert outcome.restarts == 1


def test_responses_never_answered_are_handed_over_too(student_mlp_dir):
    handed = []
    x = np.ones(3)
    outcome = _run_with_callback("raise SystemExit('no')\n", [call("a", "T", "f", x), call("b", "T", "f", x)],
                                 student_mlp_dir, handed.append)
    assert [response.id for response in handed] == ["a", "b"]
    assert all(response is outcome.responses[response.id] for response in handed)
    bounded = []
    _run_with_callback(TANH_SOURCE, [call(f"exit{i}", "hard_exit", None, x) for i in range(3)],
                       student_mlp_dir, bounded.append, max_restarts=1)
    assert [(response.id, response.status) for response in bounded] == [
        ("exit0", "crashed"), ("exit1", "crashed"), ("exit2", "error")]


def test_time_the_caller_spends_on_a_response_is_never_the_childs(student_mlp_dir):
    """A slow judge between two answers times out no request and eats no budget of the child's."""
    x = np.ones(3)
    requests = [call(f"r{i}", "TanhLayer", "fprop", x, timeout=1.0) for i in range(4)]
    outcome = _run_with_callback(TANH_SOURCE, requests, student_mlp_dir, lambda response: time.sleep(1.2),
                                 request_seconds=1.0, wall_seconds=3.0)
    assert [outcome.responses[f"r{i}"].status for i in range(4)] == ["ok"] * 4  # 4.8 s of sleeping
    assert all(outcome.responses[f"r{i}"].seconds < 1.0 for i in range(4))
    assert outcome.restarts == 0


def test_a_child_that_stalls_while_the_caller_judges_still_times_out(student_mlp_dir):
    x = np.ones(3)
    requests = [call("a", "TanhLayer", "fprop", x), call("loop", "loop_forever", None, x, timeout=1.0),
                call("after", "TanhLayer", "fprop", x)]
    outcome = _run_with_callback(TANH_SOURCE, requests, student_mlp_dir, lambda response: time.sleep(0.5))
    assert [outcome.responses[r].status for r in ("a", "loop", "after")] == ["ok", "timeout", "ok"]
    assert "did not answer within 1 s" in outcome.responses["loop"].message


def test_what_the_callback_raises_ends_the_run_and_kills_the_child(student_mlp_dir, monkeypatch):
    class Stop(Exception):
        pass

    def stop(response):
        raise Stop(response.id)

    pids = []
    start = sandbox._Child._start

    def recording_start(self):
        start(self)
        pids.append(self.process.pid)

    monkeypatch.setattr(sandbox._Child, "_start", recording_start)
    x = np.ones(3)
    started = time.monotonic()
    with pytest.raises(Stop, match="a"):
        _run_with_callback("import time\n" + textwrap.dedent(TANH_SOURCE) + "\ndef nap(x):\n    time.sleep(30)\n",
                           [call("a", "TanhLayer", "fprop", x), call("nap", "nap", None, x, timeout=60.0)],
                           student_mlp_dir, stop)
    assert time.monotonic() - started < 20  # the 30 s nap was not waited for
    assert len(pids) == 1 and not os.path.exists(f"/proc/{pids[0]}")  # killed and reaped


def test_restarts_are_bounded(student_mlp_dir):
    x = np.ones(3)
    outcome = run(TANH_SOURCE, [call(f"exit{i}", "hard_exit", None, x) for i in range(3)],
                  student_mlp_dir, BEST_LEVEL, max_restarts=1)
    statuses = [outcome.responses[f"exit{i}"].status for i in range(3)]
    assert statuses == ["crashed", "crashed", "error"]
    assert "restarted 1 times" in outcome.responses["exit2"].message
    assert outcome.restarts == 1


@per_level
def test_cpu_limit_kills_a_busy_child_with_a_clear_message(student_mlp_dir, level):
    outcome = run(TANH_SOURCE, [call("busy", "loop_forever", None, np.ones(1), timeout=30.0)],
                  student_mlp_dir, level, cpu_seconds=1)
    busy = outcome.responses["busy"]
    assert busy.status == "crashed"
    assert "SIGXCPU" in busy.message and "CPU-time limit of 1 s" in busy.message


def test_whole_child_wall_budget(student_mlp_dir):
    outcome = run("import time\ndef nap(x):\n    time.sleep(60)\n",
                  [call("nap", "nap", None, np.ones(1))], student_mlp_dir, BEST_LEVEL,
                  wall_seconds=1.5, request_seconds=30.0)
    assert outcome.responses["nap"].status == "timeout"
    assert "total time budget of 1.5 s" in outcome.responses["nap"].message


@per_level
def test_a_4_gb_allocation_fails_in_the_child_only(student_mlp_dir, level):
    source = """
        import numpy as np
        def allocate(x):
            big = np.ones(4 * 1024 ** 3 // 8)
            return big[:3]
    """
    parent_peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcome = run(textwrap.dedent(source) + textwrap.dedent(TANH_SOURCE),
                  [call("big", "allocate", None, np.ones(1)),
                                         call("after", "TanhLayer", "fprop", np.ones(2))], student_mlp_dir, level)
    big = outcome.responses["big"]
    assert big.status in ("error", "crashed")
    assert "MemoryError" in big.message or "memory" in big.message
    assert outcome.responses["after"].status == "ok"
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - parent_peak_before
    assert grown_kib < 512 * 1024


@per_level
def test_a_flood_of_output_is_capped(student_mlp_dir, level):
    source = """
        import sys
        import numpy as np
        def shout(x):
            sys.stdout.write("FIRST-LINE\\n")
            line = "y" * (1 << 20)
            for _ in range(100):
                sys.stdout.write(line)
                sys.stderr.write(line)
            sys.stdout.write("\\nLAST-LINE\\n")
            return x
    """
    outcome = run(source, [call("shout", "shout", None, np.ones(1))], student_mlp_dir, level,
                  output_bytes=4096)
    assert outcome.responses["shout"].status == "ok"
    assert len(outcome.stdout_tail) < 4096 + 100 and len(outcome.stderr_tail) < 4096 + 100
    assert outcome.stdout_tail.startswith("FIRST-LINE") and outcome.stdout_tail.endswith("LAST-LINE\n")
    assert "bytes omitted" in outcome.stdout_tail


GARBAGE_SOURCE = """
    import json
    import os
    import resource
    import struct
    import numpy as np

    RESPONSE_FD = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1

    def garbage(x):
        os.write(RESPONSE_FD, b"\\x10\\x00\\x00\\x00this is no json!")
        return x

    def forge(header_json):
        header = json.loads(header_json)
        data = json.dumps(header).encode()
        os.write(RESPONSE_FD, struct.pack("<I", len(data)) + data + b"\\0" * 8 * 3)
        return np.ones(1)

    def close_channel(x):
        os.close(RESPONSE_FD)
        return x

    def fine(x):
        return x
"""


@per_level
def test_garbage_on_the_response_channel_is_an_error_not_an_exception(student_mlp_dir, level):
    x = np.ones(2)
    outcome = run(GARBAGE_SOURCE, [call("garbage", "garbage", None, x), call("after", "fine", None, x)],
                  student_mlp_dir, level)
    assert outcome.responses["garbage"].status == "error"
    assert outcome.responses["garbage"].message == "garbage: the sandbox returned malformed data"
    assert outcome.responses["after"].status == "ok"


@pytest.mark.parametrize("forged", [
    {"type": "result", "id": "other", "ok": True, "returned": "array", "num_returned": 1, "num_inputs": 0,
     "arrays": [{"shape": [3], "dtype": "<f8"}]},
    {"type": "result", "id": "forge", "ok": True, "returned": "array", "num_returned": 2, "num_inputs": 0,
     "arrays": [{"shape": [1], "dtype": "<f8"}, {"shape": [2], "dtype": "<f8"}]},
    {"type": "result", "id": "forge", "ok": True, "returned": "array", "num_returned": 1, "num_inputs": 0,
     "arrays": [{"shape": [6], "dtype": "<f4"}]},
    {"type": "result", "id": "forge", "ok": "yes", "arrays": []},
])
def test_forged_frames_are_rejected(student_mlp_dir, forged):
    import json

    outcome = run(GARBAGE_SOURCE, [call("forge", "forge", None, args=[json.dumps(forged)]),
                                   call("after", "fine", None, np.ones(2))], student_mlp_dir, BEST_LEVEL)
    assert outcome.responses["forge"].status == "error"
    assert "malformed" in outcome.responses["forge"].message
    assert outcome.responses["after"].status == "ok"


def test_closing_the_response_channel_is_handled(student_mlp_dir):
    outcome = run(GARBAGE_SOURCE, [call("close", "close_channel", None, np.ones(1)),
                                   call("after", "fine", None, np.ones(1))], student_mlp_dir, BEST_LEVEL)
    assert outcome.responses["close"].status == "crashed"
    assert outcome.responses["after"].status == "ok"


def test_reading_stdin_cannot_swallow_requests(student_mlp_dir):
    source = """
        import sys
        def slurp(x):
            sys.stdin.read()
            return x
    """
    outcome = run(source, [call(f"s{i}", "slurp", None, np.ones(1)) for i in range(3)],
                  student_mlp_dir, BEST_LEVEL)
    assert [outcome.responses[f"s{i}"].status for i in range(3)] == ["ok", "ok", "ok"]


# --------------------------------------------------------------------------
# Requests sent ahead of the reply in hand (the pipeline)
# --------------------------------------------------------------------------

PIPELINE_SOURCE = """
    import os
    import time

    def scaled(x, k):
        return x * k

    def slow(x):
        time.sleep(0.6)
        return x

    def crash(x):
        os._exit(5)
"""


def test_more_requests_than_the_pipeline_holds_each_get_their_own_answer(student_mlp_dir):
    count = 3 * sandbox.PIPELINE_DEPTH + 5
    requests = [call(f"r{i}", "scaled", None, np.full(3, float(i)), args=[{"array": 0}, i]) for i in range(count)]
    outcome = run(PIPELINE_SOURCE, requests, student_mlp_dir, BEST_LEVEL)
    assert outcome.restarts == 0
    for i in range(count):
        np.testing.assert_array_equal(outcome.responses[f"r{i}"].arrays[0], np.full(3, float(i * i)))


def test_a_request_sent_ahead_is_timed_from_the_answer_before_it(student_mlp_dir):
    """Three 0.6 s requests, sent together, each within a 1.2 s budget: none times out.

    Timed from its sending, the third would have used 1.8 s of its budget.
    """
    requests = [call(f"s{i}", "slow", None, np.ones(1)) for i in range(3)]
    outcome = run(PIPELINE_SOURCE, requests, student_mlp_dir, BEST_LEVEL, request_seconds=1.2)
    for i in range(3):
        response = outcome.responses[f"s{i}"]
        assert response.status == "ok", response.message
        assert 0.55 < response.seconds < 1.2


def test_requests_in_flight_when_the_child_dies_go_to_its_successor(student_mlp_dir):
    requests = [call("a", "scaled", None, np.ones(2), args=[{"array": 0}, 2]),
                call("boom", "crash", None, np.ones(1))]
    requests += [call(f"after{i}", "scaled", None, np.ones(2), args=[{"array": 0}, i]) for i in range(5)]
    outcome = run(PIPELINE_SOURCE, requests, student_mlp_dir, BEST_LEVEL)
    assert outcome.restarts == 1
    assert outcome.responses["boom"].status == "crashed"
    np.testing.assert_array_equal(outcome.responses["a"].arrays[0], np.full(2, 2.0))
    for i in range(5):
        np.testing.assert_array_equal(outcome.responses[f"after{i}"].arrays[0], np.full(2, float(i)))


def test_an_early_reply_to_a_request_sent_ahead_is_refused(student_mlp_dir):
    """The child knows the ids in flight; answering one out of turn puts it out of step."""
    import json

    forged = {"type": "result", "id": "after", "ok": True, "returned": "array", "num_returned": 1,
              "num_inputs": 0, "arrays": [{"shape": [3], "dtype": "<f8"}]}
    outcome = run(GARBAGE_SOURCE, [call("forge", "forge", None, args=[json.dumps(forged)]),
                                   call("after", "fine", None, np.full(2, 7.0))], student_mlp_dir, BEST_LEVEL)
    assert outcome.responses["forge"].status == "error"
    assert "malformed" in outcome.responses["forge"].message
    assert outcome.restarts == 1  # replaced, and "after" answered afresh
    np.testing.assert_array_equal(outcome.responses["after"].arrays[0], np.full(2, 7.0))


# --------------------------------------------------------------------------
# Hidden inputs never reach words that are shown
# --------------------------------------------------------------------------

REMEMBERING_SOURCE = """
    import os
    import sys
    import numpy as np
    from mlp.layers import AffineLayer

    _seen = []

    def remember(x):
        note = "SEEN<%g>" % x[0]
        _seen.append(note)                                       # a module global
        AffineLayer.seen = getattr(AffineLayer, "seen", "") + note  # a class attribute
        os.environ["SEEN"] = os.environ.get("SEEN", "") + note   # the environment
        with open("seen.txt", "a") as handle:                    # the working directory
            handle.write(note)
        print(note)
        print(note, file=sys.stderr)
        with open("seen.txt") as handle:
            raise ValueError(" ".join(_seen) + AffineLayer.seen + os.environ["SEEN"] + handle.read())

    def crash(x):
        os._exit(3)

    def pause(x):
        import time
        time.sleep(0.3)  # lets the grader read what was printed before
        return x
"""


def hidden(request: Request) -> Request:
    request.hidden = True
    return request


@per_level
def test_public_requests_are_answered_before_any_hidden_input_is_sent(student_mlp_dir, level):
    requests = [hidden(call("h1", "remember", None, np.array([101.0]))),
                call("p1", "remember", None, np.array([1.0])),
                hidden(call("h2", "remember", None, np.array([102.0]))),
                call("p2", "remember", None, np.array([2.0])),
                call("pause", "pause", None, np.array([0.0]))]
    outcome = run(REMEMBERING_SOURCE, requests, student_mlp_dir, level)
    responses = outcome.responses
    assert all(responses[key].status == "error" for key in ("h1", "p1", "h2", "p2"))
    for key in ("p1", "p2"):
        assert not responses[key].tainted
        assert "SEEN<1>" in responses[key].message  # what it remembered is shown, ...
        assert "SEEN<10" not in responses[key].message  # ... and it never saw a hidden input
    assert "SEEN<2>" in responses["p2"].message  # the public ones, in order
    for key in ("h1", "h2"):
        assert responses[key].tainted
    assert "SEEN<101>" in responses["h1"].message and "SEEN<102>" in responses["h2"].message
    assert "SEEN<2>" in outcome.stdout_tail and "SEEN<2>" in outcome.stderr_tail
    assert "SEEN<10" not in outcome.stdout_tail + outcome.stderr_tail


@per_level
def test_without_hidden_requests_nothing_is_tainted_or_reordered(student_mlp_dir, level):
    outcome = run(REMEMBERING_SOURCE, [call("a", "remember", None, np.array([5.0])),
                                       call("b", "remember", None, np.array([6.0]))], student_mlp_dir, level)
    assert not any(response.tainted for response in outcome.responses.values())
    assert "SEEN<5>" in outcome.responses["b"].message


def test_answers_of_a_child_restarted_after_hidden_inputs_stay_tainted(student_mlp_dir):
    requests = [hidden(call("h1", "crash", None, np.array([101.0]))),
                hidden(call("h2", "remember", None, np.array([102.0]))),
                call("p1", "remember", None, np.array([1.0]))]
    outcome = run(REMEMBERING_SOURCE, requests, student_mlp_dir, "rlimits")
    assert outcome.restarts == 1 and outcome.setup.ok
    assert outcome.responses["h1"].status == "crashed" and outcome.responses["h1"].tainted
    assert outcome.responses["h2"].tainted and "SEEN<102>" in outcome.responses["h2"].message
    assert not outcome.responses["p1"].tainted


# --------------------------------------------------------------------------
# Validation of replies, unit level
# --------------------------------------------------------------------------

CALL = Request({"type": "call", "id": "r", "target": "T", "method": "f"}, [np.ones(2)])
TRAIN = Request({"type": "train", "id": "t", "num_epochs": 3}, [np.ones((5, 2)), np.ones((5, 2)), np.ones((4, 2))])


@pytest.mark.parametrize("request_, header, arrays, valid", [
    (CALL, {"type": "result", "id": "r", "ok": True, "returned": "array", "num_returned": 1, "num_inputs": 0},
     [np.ones(2)], True),
    (CALL, {"type": "result", "id": "x", "ok": True, "returned": "array", "num_returned": 1, "num_inputs": 0},
     [np.ones(2)], False),
    (CALL, {"type": "setup", "id": "r", "ok": True, "returned": "array", "num_returned": 1, "num_inputs": 0},
     [np.ones(2)], False),
    (CALL, {"type": "result", "id": "r", "ok": True, "returned": "array", "num_returned": 1, "num_inputs": 1},
     [np.ones(2), np.ones(2)], False),  # inputs that were not asked for
    (CALL, {"type": "result", "id": "r", "ok": True, "returned": "array", "num_returned": 2, "num_inputs": 0},
     [np.ones(2)], False),
    (CALL, {"type": "result", "id": "r", "ok": True, "returned": "scalar", "num_returned": 1, "num_inputs": 0},
     [np.ones(2)], False),
    (CALL, {"type": "result", "id": "r", "ok": True, "returned": "dict", "num_returned": 1, "num_inputs": 0},
     [np.ones(2)], False),
    (CALL, {"type": "result", "id": "r", "ok": True, "returned": "list", "num_returned": True, "num_inputs": 0},
     [np.ones(2)], False),
    (CALL, {"type": "result", "id": "r", "ok": 1}, [], False),
    (CALL, {"type": "result", "id": "r", "ok": False, "error": "E: x"}, [], True),
    (CALL, {"type": "result", "id": "r", "ok": False, "error": "E: x"}, [np.ones(1)], False),
    (CALL, {"type": "result", "id": "r", "ok": False, "error": 3}, [], False),
    (TRAIN, {"type": "result", "id": "t", "ok": True, "returned": "list", "num_returned": 2, "num_inputs": 0},
     [np.ones((4, 3)), np.ones(3)], True),
    (TRAIN, {"type": "result", "id": "t", "ok": True, "returned": "list", "num_returned": 2, "num_inputs": 0},
     [np.ones((5, 3)), np.ones(3)], False),
    (TRAIN, {"type": "result", "id": "t", "ok": True, "returned": "list", "num_returned": 2, "num_inputs": 0},
     [np.ones((4, 3)), np.ones(2)], False),
])
def test_result_validation(request_, header, arrays, valid):
    response = sandbox._validate_result(request_, header, arrays)
    assert (response is not None) == valid
    if valid and header["ok"]:
        assert response.status == "ok"


def test_setup_validation_rejects_unknown_kinds_and_bad_errors():
    good = {"type": "setup", "ok": True, "errors": [{"line": 2, "error": "E: x"}], "names": {"A": "class"}}
    assert sandbox._validate_setup(good, []).errors[0].line == 2
    assert sandbox._validate_setup({**good, "names": {"A": "module"}}, []) is None
    assert sandbox._validate_setup({**good, "errors": [{"line": "2", "error": "E"}]}, []) is None
    assert sandbox._validate_setup(good, [np.ones(1)]) is None
    assert sandbox._validate_setup({**good, "names": {f"n{i}": "other" for i in range(2001)}}, []) is None
    assert sandbox._validate_setup({**good, "ok": "true"}, []) is None


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


def training_request(request_id: str, seed: int, tanh_source: str = "submission", num_epochs: int = 5,
                     data_seed: int = 0) -> Request:
    rng = np.random.RandomState(data_seed)
    centres = rng.randn(3, 4) * 3
    labels = rng.randint(0, 3, size=120)
    inputs = centres[labels] + rng.randn(120, 4)
    targets = np.eye(3)[labels]
    eval_inputs = centres[[0, 1, 2, 0]] + 0.1 * rng.randn(4, 4)
    header = {"type": "train", "id": request_id, "seed": seed, "error": "CrossEntropySoftmaxError",
              "learning_rate": 0.2, "batch_size": 10, "num_epochs": num_epochs,
              "layers": [{"class": "AffineLayer", "source": "mlp.layers",
                          "kwargs": {"input_dim": 4, "output_dim": 8}, "init_scale": 0.5},
                         {"class": "TanhLayer", "source": tanh_source, "kwargs": {}, "init_scale": None},
                         {"class": "AffineLayer", "source": "mlp.layers",
                          "kwargs": {"input_dim": 8, "output_dim": 3}, "init_scale": 0.5}]}
    return Request(header, [inputs, targets, eval_inputs], timeout=30.0)


def test_training_run_with_the_student_class(student_mlp_dir):
    requests = [training_request("a", seed=3), training_request("b", seed=3), training_request("c", seed=4)]
    outcome = run(TANH_SOURCE, requests, student_mlp_dir, BEST_LEVEL)
    a, b, c = (outcome.responses[k] for k in "abc")
    assert a.status == "ok", a.message
    eval_outputs, epoch_errors = a.returned
    assert eval_outputs.shape == (4, 3) and epoch_errors.shape == (5,)
    assert epoch_errors[-1] < 0.5 * epoch_errors[0]
    np.testing.assert_array_equal(eval_outputs.argmax(1), [0, 1, 2, 0])
    np.testing.assert_array_equal(a.arrays[0], b.arrays[0])  # same seed, same run
    assert not np.array_equal(a.arrays[0], c.arrays[0])


def test_training_reports_a_broken_student_class(student_mlp_dir):
    source = "class TanhLayer:\n    def fprop(self, inputs):\n        raise NotImplementedError('todo')\n"
    outcome = run(source, [training_request("t", seed=0), training_request("m", seed=0, tanh_source="mlp.layers")],
                  student_mlp_dir, BEST_LEVEL)
    assert outcome.responses["t"].status == "error"
    assert outcome.responses["t"].message.startswith("NotImplementedError: todo")
    assert 'File "submission.py", line 3, in fprop' in outcome.responses["t"].message
    assert outcome.responses["m"].status == "error"
    assert "mlp.layers.TanhLayer cannot be loaded" in outcome.responses["m"].message


def _reference_training_parts():
    try:
        from mlp import data_providers, errors, initialisers, layers, learning_rules, models
    except ImportError as exc:
        pytest.skip(f"the reference mlp is not complete: {exc}")
    return data_providers, errors, initialisers, layers, learning_rules, models


def test_training_with_the_reference_copy_matches_the_same_run_in_the_parent(tmp_path):
    data_providers, errors, initialisers, layers, learning_rules, models = _reference_training_parts()
    shutil.copytree(REPO_ROOT / "reference" / "mlp", tmp_path / "mlp")
    request = training_request("ref", seed=11, num_epochs=3)
    outcome = run(TANH_SOURCE, [request], tmp_path, BEST_LEVEL)
    response = outcome.responses["ref"]
    assert response.status == "ok", response.message

    # The same procedure, in the parent, with the reference classes.
    header, (inputs, targets, eval_inputs) = request.header, request.arrays
    rng = np.random.RandomState(header["seed"])
    built = []
    for spec in header["layers"]:
        kwargs = dict(spec["kwargs"])
        if spec["init_scale"] is not None:
            scale = spec["init_scale"]
            kwargs["weights_initialiser"] = initialisers.UniformInit(-scale, scale, rng=rng)
            kwargs["biases_initialiser"] = initialisers.UniformInit(-scale, scale, rng=rng)
        built.append(getattr(layers, spec["class"])(**kwargs))
    model = models.MultipleLayerModel(built)
    error = errors.CrossEntropySoftmaxError()
    rule = learning_rules.GradientDescentLearningRule(learning_rate=header["learning_rate"])
    rule.initialise(model.params)
    provider = data_providers.DataProvider(inputs, targets, header["batch_size"], rng=rng)
    expected_errors = []
    for _ in range(header["num_epochs"]):
        batch_errors = []
        for x, t in provider:
            activations = model.fprop(x)
            batch_errors.append(error(activations[-1], t))
            rule.update_params(model.grads_wrt_params(activations, error.grad(activations[-1], t)))
        expected_errors.append(np.mean(batch_errors))
    np.testing.assert_allclose(response.returned[1], expected_errors, rtol=1e-12)
    np.testing.assert_allclose(response.returned[0], model.fprop(eval_inputs)[-1], rtol=1e-12)


# --------------------------------------------------------------------------
# Clean-up and the life cycle of children
# --------------------------------------------------------------------------


@per_level
def test_no_processes_or_temporary_files_are_left_behind(student_mlp_dir, level, tmp_path, monkeypatch):
    marker = f"{4000 + os.getpid() % 1000}.{AVAILABLE_LEVELS.index(level) + 1}"
    source = f"""
        import subprocess
        def spawn(x):
            subprocess.Popen(["sleep", "{marker}"])
            return x
    """
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))  # private: other runs may share /tmp
    outcome = run(source, [call("spawn", "spawn", None, np.ones(1))], student_mlp_dir, level)
    assert outcome.responses["spawn"].status == "ok", outcome.responses["spawn"].message
    assert wait_until(lambda: not processes_with(f"sleep {marker}"), 5.0)
    assert list(temp_root.iterdir()) == []


@per_level
def test_a_sandbox_boots_its_child_before_it_is_given_the_submission(student_mlp_dir, level, reachable_tmp, monkeypatch):
    temp_root = reachable_tmp.mktemp(f"early-{level}")  # where a child of any uid can run from
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    with sandbox.Sandbox(student_mlp_dir=student_mlp_dir, isolation=level) as early:
        assert wait_until(lambda: bool(processes_with(str(temp_root))), 30.0)  # running, with no source yet
        outcome = early.run(textwrap.dedent(TANH_SOURCE), [call("t", "TanhLayer", "fprop", np.zeros((2, 2)))])
        with pytest.raises(ValueError, match="one submission"):
            early.run("", [])
    assert outcome.setup.ok and outcome.responses["t"].status == "ok"
    assert wait_until(lambda: not processes_with(str(temp_root)), 10.0)
    assert list(temp_root.iterdir()) == []


@per_level
def test_a_sandbox_left_unused_leaves_nothing_behind(student_mlp_dir, level, reachable_tmp, monkeypatch):
    """A grader that fails between starting the sandbox and running it (a planning error) loses nothing."""
    temp_root = reachable_tmp.mktemp(f"early-{level}")  # where a child of any uid can run from
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    with pytest.raises(RuntimeError, match="planning failed"):
        with sandbox.Sandbox(student_mlp_dir=student_mlp_dir, isolation=level):
            assert wait_until(lambda: bool(processes_with(str(temp_root))), 30.0)
            raise RuntimeError("planning failed")
    assert wait_until(lambda: not processes_with(str(temp_root)), 10.0)
    assert list(temp_root.iterdir()) == []


@per_level
def test_the_runner_can_start_whichever_descriptor_its_response_pipe_gets(student_mlp_dir, level):
    """A response pipe that already sits at the runner's chosen slot (just below the limit) stays there."""
    with descriptors_taken_below(30):
        read_end, write_end = os.pipe()  # the numbers the child's response pipe gets next
        os.close(read_end)
        os.close(write_end)
        outcome = run(TANH_SOURCE, [call("t", "TanhLayer", "fprop", np.zeros((2, 2)))], student_mlp_dir, level,
                      open_files=write_end + 1, request_seconds=20.0)
    assert outcome.setup.ok, outcome.setup.message
    assert outcome.responses["t"].status == "ok", outcome.responses["t"].message


GRADER_SCRIPT = """
import sys
from pathlib import Path
from autograder.sandbox.limits import Limits
from autograder.sandbox.isolation import Request, exec_untrusted

source = '''
import subprocess
def spin(x):
    if {spawn!r}:
        subprocess.Popen(["sleep", "{marker}"])
    if {flag!r}:
        open({flag!r}, "w").close()
    while True:
        pass
'''
exec_untrusted(source, [Request({{"type": "call", "id": "a", "target": "spin", "args": [0]}})],
               student_mlp_dir=Path(sys.argv[1]), isolation={level!r},
               limits=Limits(request_seconds=300, wall_seconds=300))
"""


@per_level
def test_children_die_with_the_grader(student_mlp_dir, level, tmp_path, reachable_tmp):
    """Killing the grading process with SIGKILL (no clean-up code runs) still ends the child."""
    marker = f"{5000 + os.getpid() % 1000}.{AVAILABLE_LEVELS.index(level) + 1}"
    private_tmp = reachable_tmp.mktemp(f"grader-tmp-{level}")
    # The child signals that the student's code is running: by a file where the file system is
    # shared, by a `sleep` grandchild where a pid namespace will take it down (not under rlimits,
    # where a grandchild has no parent-death signal).
    flag_folder = reachable_tmp.mktemp(f"flag-{level}")
    flag_folder.chmod(0o1777)  # the child may run as an unprivileged uid
    flag = str(flag_folder / "spinning") if level != "bwrap" else ""
    spawn = level != "rlimits"
    script = tmp_path / "grader.py"
    script.write_text(GRADER_SCRIPT.format(spawn=spawn, flag=flag, marker=marker, level=level))
    env = {**os.environ, "TMPDIR": str(private_tmp)}
    log = tmp_path / "grader.log"
    with open(log, "wb") as log_file:
        grader = subprocess.Popen([sys.executable, str(script), str(student_mlp_dir)], env=env,
                                  stdout=log_file, stderr=subprocess.STDOUT)
    started = lambda: grader.poll() is not None or (  # noqa: E731
        (not flag or os.path.exists(flag)) and (not spawn or bool(processes_with(f"sleep {marker}"))))
    try:
        # Generous: on a loaded machine the grader needs a while to import numpy and start.
        assert wait_until(started, 90.0) and grader.poll() is None, log.read_text()
        if flag:
            assert processes_with(str(private_tmp))  # the runner's command line names its folder
    finally:
        grader.send_signal(signal.SIGKILL)
        grader.wait()
    assert wait_until(lambda: not processes_with(str(private_tmp)), 10.0)
    assert wait_until(lambda: not processes_with(f"sleep {marker}"), 10.0)


# --------------------------------------------------------------------------
# Arguments and start-up failures
# --------------------------------------------------------------------------


def test_caller_mistakes_raise_value_error(student_mlp_dir, tmp_path):
    with pytest.raises(ValueError, match="isolation"):
        exec_untrusted("", [], student_mlp_dir=student_mlp_dir, isolation="chroot")
    with pytest.raises(ValueError, match="duplicate"):
        exec_untrusted("", [call("a", "T", "f"), call("a", "T", "g")], student_mlp_dir=student_mlp_dir)
    with pytest.raises(ValueError, match="mlp"):
        exec_untrusted("", [], student_mlp_dir=tmp_path)
    with pytest.raises(ValueError, match="reserved"):
        exec_untrusted("", [call("a", "T", "f", arrays=[])], student_mlp_dir=student_mlp_dir)
    with pytest.raises(ValueError, match="plain JSON"):
        exec_untrusted("", [call("a", "T", "f", args=[float("nan")])], student_mlp_dir=student_mlp_dir)
    with pytest.raises(ValueError, match="not numeric"):
        exec_untrusted("", [call("a", "T", "f", np.array(["x"]))], student_mlp_dir=student_mlp_dir)
    with pytest.raises(ValueError, match="type"):
        exec_untrusted("", [Request({"id": "a", "type": "setup"})], student_mlp_dir=student_mlp_dir)


@per_level
@pytest.mark.parametrize("interpreter", ["/nonexistent/python", "/bin/false"])
def test_a_child_that_cannot_start_is_a_harness_error(student_mlp_dir, monkeypatch, level, interpreter):
    """A sandbox that cannot start is the machine's failure, never the submission's (issue 10, class 9).

    At every level, also where a wrapper (bwrap, unshare, setpriv) starts but
    cannot run the interpreter, or the interpreter ends before the runner is
    ready: the runner's ready frame, sent before any student code, tells the two apart.
    """
    sandbox.student_uid(level)  # probe the uid drop with the real interpreter first
    monkeypatch.setattr(sandbox, "_interpreter", lambda: interpreter)
    with pytest.raises(sandbox.SandboxUnavailable, match="could not be started"):
        exec_untrusted("x = 1", [call("a", "T", "f")], student_mlp_dir=student_mlp_dir, isolation=level)


def test_a_submission_that_ends_its_own_process_is_not_a_harness_error(student_mlp_dir):
    """The ready frame comes before the student's code: ending the process while loading is theirs."""
    outcome = run("import os\nos._exit(3)\n", [call("a", "T", "f")], student_mlp_dir, BEST_LEVEL)
    assert not outcome.setup.ok
    assert outcome.responses["a"].status == "crashed"
    assert "exit status 3" in outcome.responses["a"].message


def test_sandbox_trees_are_made_where_the_child_uid_can_reach_them(tmp_path, reachable_tmp, monkeypatch):
    """An owner-only TMPDIR (pam_tmpdir's /tmp/user/0, pytest's folders) is not used by a root grader."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "inner").mkdir(mode=0o755)  # open itself, but below a closed folder
    monkeypatch.setattr(tempfile, "tempdir", str(private / "inner"))
    parent = sandbox.sandbox_parent()
    if os.geteuid() == 0:
        assert parent != str(private / "inner")
        assert sandbox._reachable_by_everyone(parent)
    else:
        assert parent == str(private / "inner")  # the child runs as the grader's uid anyway
    assert not sandbox._reachable_by_everyone(str(private / "inner"))
    open_folder = reachable_tmp.mktemp("open")
    monkeypatch.setattr(tempfile, "tempdir", str(open_folder))
    assert sandbox.sandbox_parent() == str(open_folder)
    assert sandbox._reachable_by_everyone(str(open_folder))


WHERE_SOURCE = PROBE_SOURCE + """
    def where(x):
        raise RuntimeError("cwd=" + os.getcwd())
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid drop happens only where the grader is root")
@pytest.mark.parametrize("level", [level for level in AVAILABLE_LEVELS if level != "bwrap"])
def test_a_root_grader_with_a_private_tmpdir_still_drops_the_child(student_mlp_dir, tmp_path, monkeypatch, level):
    """The bug this guards: the dropped child could not read its runner below a 0700 TMPDIR."""
    if not sandbox._uid_drop_works_in(sandbox.sandbox_parent()):
        pytest.skip("this interpreter or numpy is not readable by the sandbox uid")
    private = tmp_path / "private-tmp"
    private.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    outcome = run(WHERE_SOURCE, [call("who", "identity", None, args=[0]), call("where", "where", None, args=[0])],
                  student_mlp_dir, level)
    assert outcome.setup.ok, outcome.setup.message
    assert outcome.responses["who"].returned[0][0] == sandbox.SANDBOX_UID
    work = outcome.responses["where"].message.split("cwd=", 1)[1].split()[0]
    assert not work.startswith(str(private))
    assert not os.path.exists(work)  # the tree is removed as usual
    assert list(private.iterdir()) == []


def test_detect_isolation_returns_the_strongest_working_level():
    assert sandbox.detect_isolation() == BEST_LEVEL


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_the_probe_finds_bwrap_wherever_bwrap_itself_runs(tmp_path):
    """A bug in the sandbox's own set-up must not pass for a machine without bubblewrap.

    If bwrap runs a plain command here but the probe says no, the grader would fall
    back to a weaker level and every test above would quietly run there.
    """
    plain = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-pid", "--", "/bin/true"],
                           capture_output=True, timeout=60)
    if plain.returncode != 0:
        pytest.skip("bwrap itself does not run here: " + plain.stderr.decode(errors="replace")[-200:])
    assert sandbox._probe("bwrap")
    assert "bwrap" in AVAILABLE_LEVELS


ECHO_SOURCE = """
    def echo(x):
        return x
"""


def test_a_ready_frame_that_arrives_before_the_parent_waits_for_it_is_accepted(student_mlp_dir, monkeypatch):
    """The reader thread judges the first frame as soon as it comes: it must expect "ready" from the start."""
    real_start = sandbox._Child._start

    def slow_parent(self):
        real_start(self)
        time.sleep(0.5)  # the child is ready long before the parent looks

    monkeypatch.setattr(sandbox._Child, "_start", slow_parent)
    outcome = run(ECHO_SOURCE, [call("e", "echo", None, np.ones(3))], student_mlp_dir, BEST_LEVEL)
    assert outcome.setup.ok, outcome.setup.message
    assert outcome.responses["e"].status == "ok"


def test_the_sandbox_starts_after_the_temporary_folder_it_first_used_is_gone(student_mlp_dir, reachable_tmp,
                                                                              monkeypatch):
    """A batch removes its run directory (the grader's TMPDIR while it grades); later sandboxes still start."""
    first = reachable_tmp.mktemp("vanishing")
    monkeypatch.setattr(tempfile, "tempdir", str(first))
    sandbox._compiled_bytecode.cache_clear()
    outcome = run(ECHO_SOURCE, [call("e", "echo", None, np.ones(3))], student_mlp_dir, BEST_LEVEL)
    assert outcome.responses["e"].status == "ok"
    shutil.rmtree(first)
    monkeypatch.setattr(tempfile, "tempdir", str(reachable_tmp.mktemp("next")))
    outcome = run(ECHO_SOURCE, [call("e", "echo", None, np.ones(3))], student_mlp_dir, BEST_LEVEL)
    assert outcome.setup.ok, outcome.setup.message
    assert outcome.responses["e"].status == "ok"


def test_the_child_finds_unchecked_bytecode_beside_the_student_copy(student_mlp_dir):
    """The student copy of mlp has a .pyc the interpreter uses without checking time stamps."""
    source = """
        import numpy as np
        import mlp

        def cached(x):
            with open(mlp.__spec__.cached, "rb") as handle:
                header = handle.read(8)
            return np.array([float(int.from_bytes(header[4:8], "little"))])
    """
    outcome = run(source, [call("c", "cached", None, np.ones(1))], student_mlp_dir, BEST_LEVEL)
    assert outcome.responses["c"].status == "ok", outcome.responses["c"].message
    assert list(outcome.responses["c"].returned[0]) == [1.0]  # PEP 552: hash-based, not checked
