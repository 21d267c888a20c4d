"""Request loop that runs a student's code and answers the grader with plain data.

Runs INSIDE THE SANDBOX. The grader copies this file and ``wire.py`` into a
fresh runner directory and starts::

    python -I -S -B child_runner.py '<config JSON>'

where the config is ``{"response_fd": int, "path": [dir, ...],
"student_dirs": [dir, ...]}``: the inherited file descriptor for responses, the
directories to put in front of the standard library on ``sys.path`` (the
student's working directory, the directory that holds the student copy of
``mlp``, and a directory that holds only numpy), and the directories whose
frames count as "student code" in tracebacks. It imports only the standard
library, numpy, ``wire.py`` (loaded from its own directory) and, on request,
the student copy of ``mlp``.

Protocol (every message is a :mod:`wire` frame): requests arrive on stdin,
responses leave on the private response descriptor (stdout and stderr belong
to the student's prints). One response, flushed, per request:

* ``{"type": "setup", "source": str, "filename": str}`` executes the source
  one top-level statement at a time into a fresh module ``submission``,
  recording each statement's exception and carrying on. Answers
  ``{"type": "setup", "ok", "errors": [{"line", "error"}], "names", "message"}``.
* ``{"type": "call", "id", "target", "source", "init", "params", "method",
  "args", "kwargs", "return_inputs"}`` builds a fresh instance of ``target``
  (looked up in the submission, or in ``source`` when that names a module of
  the student copy of ``mlp``), optionally sets ``instance.params``, and calls
  one method on copies of the given arrays (``{"array": i}`` in ``args``,
  ``kwargs`` or ``init`` stands for array i; other JSON is passed as is). With
  ``"method": null`` the target itself (e.g. a function) is called. Answers
  ``{"type": "result", "id", "ok": true, "returned": "array"|"list"|"scalar",
  "num_returned": n, "num_inputs": m}`` with the n returned arrays followed by
  the m array arguments as they were after the call, then the ``params``
  arrays set on the instance (when ``return_inputs``),
  or ``{"type": "result", "id", "ok": false, "error", "error_kind",
  "traceback"}``.
* ``{"type": "sequence", "id", "target", "source", "init", "objects",
  "steps"}`` builds ONE instance of ``target`` and helper ``objects``
  (``{"class", "source": "mlp.<module>", "kwargs"}``, from the student copy
  of ``mlp``), copies every sent array once into a working slot, then runs
  the steps in order. A step is ``{"method", "args", "kwargs", "record"}``;
  in ``args``/``kwargs``, ``{"array": i}`` is working slot i (the same object
  in every step, so in-place updates persist), ``{"copy": i}`` a fresh copy
  of sent array i, ``{"list": [...]}`` a list of such values, ``{"object":
  j}`` helper object j, ``{"returned": [s, k]}`` array k returned by step s
  (earlier), other JSON as is. ``record`` says what to send back after the
  step: ``{"returned": true}`` (the return value), ``{"array": i}`` (slot i),
  ``{"attribute": name}`` (of the instance, or of ``"of": {"object": j}``).
  Answers like ``call`` (``"returned": "list"``) with all recorded arrays in
  order and ``"records"``: per step, per record, the number of arrays it
  gave (null for an attribute the object lacks). A failing step answers
  like a failed call, with ``"failed_step"``: its index.
* ``{"type": "train", "id", "seed", "layers", "error", "learning_rate",
  "batch_size", "num_epochs"}`` (optionally ``"learning_rule"``,
  ``"scheduler"``, ``"error_source"``; see ``recipes.py``) with arrays ``[train_inputs (N, D),
  train_targets (N, K), eval_inputs (M, D)]`` trains a small model built from
  the given classes and answers with ``[eval_outputs (M, K),
  train_error_per_epoch (num_epochs,)]``.
* ``{"type": "exit"}`` (or the end of stdin) ends the loop.

Before reading the first request the runner sends ``{"type": "ready"}``: no
student code has run yet, so a child that ends before it is a broken
sandbox, never a submission's failure. A request may carry ``"shared":
[{"fd", "shape"}]`` instead of inline arrays: float64 arrays in sealed
memory files the child inherited (``autograder/sandbox/shared_memory.py``),
mapped copy-on-write, so the code sees ordinary writable arrays of its own.

Nothing here is trusted by the grader: a hostile submission can rewrite this
module's state or write to the response descriptor itself. The grader
validates every frame, so this file only has to be correct for honest code.
"""

import __future__
import ast
import importlib
import importlib.util
import json
import linecache
import math
import mmap
import os
import sys
import traceback
import types

#: Error messages and tracebacks are cut to this many characters.
MAX_MESSAGE_CHARS = 4000
#: At most this many student frames are shown in a traceback.
MAX_TRACEBACK_FRAMES = 5
#: At most this many names / statement errors are reported by setup, and
#: only names of at most MAX_NAME_CHARS characters.
MAX_REPORTED_ITEMS = 2000
MAX_NAME_CHARS = 1000
#: Limits for reading requests from the (trusted) grader.
MAX_REQUEST_HEADER_BYTES = 256 * 1024 * 1024
MAX_REQUEST_ARRAY_BYTES = 1 << 40

SUBMISSION_MODULE = "submission"


class RequestError(Exception):
    """The grader's request is malformed (a harness bug, not the student's)."""


def _shared_arrays(descriptors):
    """Private, writable float64 arrays with the contents of inherited (sealed) memory files.

    A copy-on-write mapping costs no copy: pages are shared until written.
    Kernels before 6.7 refuse a writable mapping of a write-sealed file, and
    there the file is mapped read-only and copied.
    """
    import numpy as np

    arrays = []
    for descriptor in descriptors:
        shape = tuple(int(n) for n in descriptor["shape"])
        size = math.prod(shape) * 8
        try:
            mapped = mmap.mmap(int(descriptor["fd"]), size, flags=mmap.MAP_PRIVATE,
                               prot=mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError:
            with mmap.mmap(int(descriptor["fd"]), size, prot=mmap.PROT_READ) as read_only:
                view = np.frombuffer(read_only, dtype="<f8")
                arrays.append(view.reshape(shape).copy())
                del view  # releases the buffer, so the mapping can close
            continue
        arrays.append(np.frombuffer(mapped, dtype="<f8").reshape(shape))  # keeps the mapping alive
    return arrays


class ResultError(Exception):
    """The student's code returned something that cannot be sent back."""


def main(argv):
    """Run the request loop.

    Args:
        argv: ``[script, config_json]`` as described in the module docstring.

    Returns:
        The process exit status (0 after an ``exit`` request or end of input).
    """
    config = json.loads(argv[1])
    request_stream, response_stream = _claim_private_streams(int(config["response_fd"]))
    runner_dir = os.path.dirname(os.path.abspath(__file__))
    stdlib = [p for p in sys.path if p and os.path.abspath(p) != runner_dir]
    sys.path[:] = [str(p) for p in config["path"]] + stdlib
    sys.dont_write_bytecode = True

    import numpy  # noqa: F401  (imported before any student code runs)

    wire = _load_runner_module(runner_dir, "wire")
    recipes = _load_runner_module(runner_dir, "recipes")
    runner = Runner(wire, [str(d) for d in config.get("student_dirs", [])], recipes)
    _spare_from_collection()
    # Before any student code: the parent knows from here on that the sandbox itself works.
    wire.write_frame(response_stream, {"type": "ready"}, [])
    while True:
        try:
            header, arrays = wire.read_frame(
                request_stream,
                max_header_bytes=MAX_REQUEST_HEADER_BYTES,
                max_array_bytes=MAX_REQUEST_ARRAY_BYTES,
            )
        except wire.WireEOF:
            return 0
        if header.get("type") == "exit":
            return 0
        response_header, response_arrays = runner.handle(header, arrays)
        if header.get("type") == "setup":
            _spare_from_collection()
        _flush_student_streams()
        try:
            wire.write_frame(response_stream, response_header, response_arrays)
        except BrokenPipeError:
            return 0


def _spare_from_collection():
    """Take every object alive now out of the cyclic garbage collector's scans (``gc.freeze``).

    What exists once numpy and the submission are loaded (modules, classes,
    functions) lives as long as the process. Left in the collector's oldest
    generation, each full collection that the requests' allocations trigger
    walks all of it again: about a tenth of a second of a lab's calls. The
    collector still runs, for everything made after this.
    """
    import gc

    gc.freeze()


def _claim_private_streams(response_fd):
    """Move the protocol pipes to high descriptors the student is unlikely to touch.

    The response descriptor goes to the highest free descriptor below
    RLIMIT_NOFILE and the request pipe (stdin) to the next free one below it;
    descriptors the parent passed on (the sealed training arrays) are never
    taken, wherever they are, and a response descriptor already in place
    stays. fd 0 is replaced by /dev/null, so that student code reading stdin
    cannot swallow requests. Both private descriptors are close-on-exec.

    Returns:
        ``(request_stream, response_stream)`` as binary file objects.
    """
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    top = (min(soft, 1024) if soft != resource.RLIM_INFINITY else 1024) - 1
    response_slot, request_slot = _free_descriptors(top, 2, keep=response_fd)
    if response_slot == response_fd:
        os.set_inheritable(response_fd, False)
    else:
        os.dup2(response_fd, response_slot, inheritable=False)
        os.close(response_fd)
    os.dup2(0, request_slot, inheritable=False)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return open(request_slot, "rb"), open(response_slot, "wb")


def _free_descriptors(top, count, keep):
    """The ``count`` highest descriptor numbers from ``top`` down that are closed, or are ``keep``."""
    found = []
    for fd in range(top, 2, -1):
        if fd == keep or not _is_open(fd):
            found.append(fd)
            if len(found) == count:
                return found
    raise OSError("no free file descriptors for the runner's pipes")


def _is_open(fd):
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _load_runner_module(runner_dir, name):
    """Load ``<name>.py`` (wire, recipes) from the runner directory without putting it on sys.path."""
    spec = importlib.util.spec_from_file_location("_sandbox_" + name, os.path.join(runner_dir, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _flush_student_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # the student may have replaced or broken them
            pass


def _safe_text(value, limit=MAX_MESSAGE_CHARS):
    """``str(value)`` that survives hostile ``__str__`` methods, cut to ``limit``."""
    try:
        text = str(value)
    except BaseException:
        text = "<unprintable>"
    if not isinstance(text, str):
        text = "<unprintable>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value):
    try:
        return _safe_text(type(value).__name__, 200)
    except BaseException:
        return "<unknown type>"


def _describe_exception(exc):
    """``"ExceptionType: message"`` (just the type if the message is empty)."""
    message = _safe_text(exc)
    return f"{_type_name(exc)}: {message}" if message else _type_name(exc)


class Runner:
    """Executes requests against the submission; one instance per child process."""

    def __init__(self, wire, student_dirs, recipes):
        self.wire = wire
        self.recipes = recipes  # the training run shared with the parent (recipes.py)
        self.student_dirs = [os.path.abspath(d) + os.sep for d in student_dirs]
        self.module = None
        self.filename = "submission.py"
        self.setup_message = "setup was not run"
        import numpy as np

        self.np = np
        self.scalar_types = frozenset(
            [float, int] + [np.dtype(code).type for code in "efdgbhilqBHILQ"]
        )

    # -- dispatch ---------------------------------------------------------

    def handle(self, header, arrays):
        """Answer one request; never raises for a student's mistake.

        Returns:
            ``(response_header, response_arrays)``.
        """
        kind = header.get("type")
        try:
            if "shared" in header:
                arrays = list(arrays) + _shared_arrays(header.pop("shared"))
            if kind == "setup":
                return self.setup(header), []
            if kind == "call":
                return self.call(header, arrays)
            if kind == "sequence":
                return self.sequence(header, arrays)
            if kind == "train":
                return self.train(header, arrays)
            raise RequestError(f"unknown request type {kind!r}")
        except RequestError as exc:
            return self._failure(header, f"bad request: {_safe_text(exc)}", "request"), []
        except BaseException as exc:  # a bug in this runner, or a student's sabotage of it
            return self._failure(header, f"internal error in the sandbox runner: {_describe_exception(exc)}",
                                 "internal"), []

    def _failure(self, header, message, kind):
        """A failed response of the right type for ``header`` (no student traceback)."""
        response = {
            "type": "setup" if header.get("type") == "setup" else "result",
            "ok": False,
            "error": _safe_text(message),
            "error_kind": kind,
            "traceback": "",
        }
        if header.get("type") == "setup":
            response.update(errors=[], names={}, message=response["error"])
        else:
            response["id"] = header.get("id")
        return response

    # -- setup ------------------------------------------------------------

    def setup(self, header):
        """Execute the submission statement by statement into module ``submission``."""
        if self.module is not None:
            raise RequestError("setup was already run in this process")
        source = header.get("source")
        filename = header.get("filename", "submission.py")
        if not isinstance(source, str) or not isinstance(filename, str):
            raise RequestError("setup needs a string 'source' and 'filename'")
        self.filename = filename
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        module = types.ModuleType(SUBMISSION_MODULE)
        module.__file__ = filename
        sys.modules[SUBMISSION_MODULE] = module
        self.module = module
        initial_names = set(module.__dict__)
        try:
            tree = ast.parse(source, filename)
        except (SyntaxError, ValueError) as exc:
            self.setup_message = f"the submission cannot be parsed: {_describe_exception(exc)}"
            return {"type": "setup", "ok": False, "errors": [], "names": {}, "message": self.setup_message}
        errors = []
        future_flags = 0
        for statement in tree.body:
            future_flags |= _future_flags(statement)
            try:
                code = compile(ast.Module(body=[statement], type_ignores=[]), filename, "exec",
                               flags=future_flags, dont_inherit=True)
                exec(code, module.__dict__)
            except BaseException as exc:  # SystemExit and KeyboardInterrupt included
                if len(errors) < MAX_REPORTED_ITEMS:
                    errors.append({"line": int(statement.lineno), "error": _describe_exception(exc)})
        names = {}
        for name, value in list(module.__dict__.items()):
            if (not isinstance(name, str) or name in initial_names or name.startswith("__")
                    or len(name) > MAX_NAME_CHARS):
                continue
            if len(names) >= MAX_REPORTED_ITEMS:
                break
            names[name] = self._kind_of(value)
        self.setup_message = (f"{len(errors)} top-level statement(s) raised an exception" if errors
                              else "the submission was loaded")
        return {"type": "setup", "ok": True, "errors": errors, "names": names, "message": self.setup_message}

    @staticmethod
    def _kind_of(value):
        if isinstance(value, type):
            return "class"
        if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
            return "function"
        return "other"

    # -- calls ------------------------------------------------------------

    def call(self, header, arrays):
        """Build a fresh instance of the target and call one method on array copies."""
        request_id = _require(header, "id", str)
        target_name = _require(header, "target", str)
        method_name = header.get("method")
        if method_name is not None and not isinstance(method_name, str):
            raise RequestError("'method' must be a string or null")
        label = f"{target_name}.{method_name}" if method_name else target_name
        inputs, param_arrays = [], []
        try:
            target = self._lookup(header.get("source", SUBMISSION_MODULE), target_name)
            if method_name is None:
                function = target
            else:
                instance = self._instance(target, header.get("init") or {}, arrays)
                params = header.get("params")
                if params is not None:
                    if not isinstance(params, list):
                        raise RequestError("'params' must be a list of array indices or null")
                    param_arrays = [self._array(i, arrays) for i in params]
                    instance.params = param_arrays
                function = getattr(instance, method_name)
            call_args = [self._resolve(a, arrays, inputs) for a in _list_of(header, "args")]
            call_kwargs = {k: self._resolve(v, arrays, inputs) for k, v in _dict_of(header, "kwargs").items()}
            value = function(*call_args, **call_kwargs)
        except RequestError:
            raise
        except BaseException as exc:
            return self._student_failure(request_id, exc), []
        try:
            returned, out_arrays = self._convert_result(value, label)
        except ResultError as exc:
            return self._result_failure(request_id, str(exc)), []
        response = {"type": "result", "id": request_id, "ok": True, "returned": returned,
                    "num_returned": len(out_arrays), "num_inputs": 0}
        if header.get("return_inputs"):
            inputs = inputs + param_arrays  # every array sent, in the order sent
            response["num_inputs"] = len(inputs)
            out_arrays = out_arrays + [self.np.array(a, dtype=self.np.float64) for a in inputs]
        return response, out_arrays

    # -- sequences ----------------------------------------------------------

    #: At most this many steps, and records per step, in one sequence request.
    MAX_STEPS = 100000
    MAX_RECORDS = 64

    def sequence(self, header, arrays):
        """Run several calls on one instance; see the module docstring."""
        request_id = _require(header, "id", str)
        target_name = _require(header, "target", str)
        steps = header.get("steps")
        if not isinstance(steps, list) or not 0 < len(steps) <= self.MAX_STEPS:
            raise RequestError("'steps' must be a non-empty list")
        for step in steps:
            if not isinstance(step, dict):
                raise RequestError("each step must be an object")
            _require(step, "method", str)
            _list_of(step, "args")
            _dict_of(step, "kwargs")
            records = _list_of(step, "record")
            if len(records) > self.MAX_RECORDS:
                raise RequestError("too many records in one step")
            for record in records:
                if not isinstance(record, dict) or not (
                        record.get("returned") is True or "array" in record
                        or isinstance(record.get("attribute"), str)):
                    raise RequestError(f"bad record {record!r}")
        object_specs = _list_of(header, "objects")
        slots = [a.copy() for a in arrays]
        objects, results, out_arrays, layout = [], [], [], []
        step_index = -1
        try:
            for spec in object_specs:
                if not isinstance(spec, dict):
                    raise RequestError("each object must be an object")
                source = _require(spec, "source", str)
                if not (source == "mlp" or source.startswith("mlp.")):
                    raise RequestError("helper objects come from the student copy of mlp")
                cls = self._lookup(source, _require(spec, "class", str))
                objects.append(cls(**_dict_of(spec, "kwargs")))
            instance = self._instance(self._lookup(header.get("source", SUBMISSION_MODULE), target_name),
                                      header.get("init") or {}, arrays)
            context = (arrays, slots, objects, results)
            for step_index, step in enumerate(steps):
                method_name = step["method"]
                label = f"{target_name}.{method_name}"
                args = [self._step_value(a, context) for a in _list_of(step, "args")]
                kwargs = {k: self._step_value(v, context) for k, v in _dict_of(step, "kwargs").items()}
                value = getattr(instance, method_name)(*args, **kwargs)
                results.append(value)
                counts = []
                for record in _list_of(step, "record"):
                    recorded = self._record(record, value, instance, context, label)
                    counts.append(None if recorded is None else len(recorded))
                    out_arrays.extend(recorded or [])
                layout.append(counts)
        except RequestError:
            raise
        except ResultError as exc:
            failure = self._result_failure(request_id, str(exc))
            failure["failed_step"] = step_index
            return failure, []
        except BaseException as exc:
            failure = self._student_failure(request_id, exc)
            failure["failed_step"] = step_index
            return failure, []
        response = {"type": "result", "id": request_id, "ok": True, "returned": "list",
                    "num_returned": len(out_arrays), "num_inputs": 0, "records": layout}
        return response, out_arrays

    def _step_value(self, value, context):
        """Resolve a step argument (see the module docstring)."""
        arrays, slots, objects, results = context
        if isinstance(value, dict) and len(value) == 1:
            (key, item), = value.items()
            if key == "array":
                if type(item) is not int or not 0 <= item < len(slots):
                    raise RequestError(f"slot {item!r} is out of range")
                return slots[item]
            if key == "copy":
                return self._array(item, arrays)
            if key == "list":
                if not isinstance(item, list):
                    raise RequestError("'list' must be a list")
                return [self._step_value(v, context) for v in item]
            if key == "object":
                if type(item) is not int or not 0 <= item < len(objects):
                    raise RequestError(f"object {item!r} is out of range")
                return objects[item]
            if key == "returned":
                if (not isinstance(item, list) or len(item) != 2 or type(item[0]) is not int
                        or type(item[1]) is not int or not 0 <= item[0] < len(results)):
                    raise RequestError(f"bad reference to an earlier result {item!r}")
                earlier = results[item[0]]
                earlier = list(earlier) if type(earlier) in (list, tuple) else [earlier]
                if not 0 <= item[1] < len(earlier):
                    raise ResultError(f"step {item[0] + 1} returned {len(earlier)} value(s), "
                                      f"the next call needs value {item[1] + 1}")
                return earlier[item[1]]
        return value

    def _record(self, record, value, instance, context, label):
        """The arrays one record sends back, or None for a missing attribute."""
        arrays, slots, objects, results = context
        if record.get("returned") is True:
            return self._convert_result(value, label)[1]
        if "array" in record:
            return [self.np.array(self._step_value({"array": record["array"]}, context),
                                  dtype=self.np.float64)]
        owner = instance
        if record.get("of") is not None:
            owner = self._step_value(record["of"], context)
        name = record["attribute"]
        try:
            attribute = getattr(owner, name)
        except AttributeError:
            return None
        return self._convert_result(attribute, f"{label}: its attribute {name}")[1]

    def _instance(self, target, init, arrays):
        """``target(*init.args, **init.kwargs)``, with ``rng`` when ``init.rng_seed`` is set."""
        if not isinstance(init, dict):
            raise RequestError("'init' must be an object")
        init_args = [self._resolve(a, arrays) for a in _list_of(init, "args")]
        init_kwargs = {k: self._resolve(v, arrays) for k, v in _dict_of(init, "kwargs").items()}
        seed = init.get("rng_seed")
        if seed is not None:
            init_kwargs["rng"] = self.np.random.RandomState(_seed(seed))
        return target(*init_args, **init_kwargs)

    def _lookup(self, source, name):
        if source == SUBMISSION_MODULE:
            if self.module is None:
                raise RequestError("setup has not been run")
            namespace = self.module.__dict__
            if name not in namespace:
                raise _MissingTarget(f"NameError: the submission does not define {name} ({self.setup_message})")
            return namespace[name]
        if not isinstance(source, str) or not (source == "mlp" or source.startswith("mlp.")):
            raise RequestError(f"'source' must be 'submission' or an mlp module, not {source!r}")
        try:
            module = importlib.import_module(source)
            return getattr(module, name)
        except BaseException as exc:
            raise _MissingTarget(f"{source}.{name} cannot be loaded: {_describe_exception(exc)}") from exc

    def _resolve(self, value, arrays, inputs=None):
        """Turn ``{"array": i}`` into a fresh copy of array i; keep other JSON as is."""
        if isinstance(value, dict) and set(value) == {"array"}:
            array = self._array(value["array"], arrays)
            if inputs is not None:
                inputs.append(array)
            return array
        return value

    @staticmethod
    def _array(index, arrays):
        if type(index) is not int or not 0 <= index < len(arrays):
            raise RequestError(f"array index {index!r} is out of range (the request has {len(arrays)})")
        return arrays[index].copy()

    def _convert_result(self, value, label):
        """Convert a student's return value to float64 arrays without calling its methods.

        Returns:
            ``(kind, arrays)`` with kind ``"array"`` (one genuine ndarray),
            ``"list"`` (a list or tuple of genuine ndarrays) or ``"scalar"``
            (a Python or numpy real number, sent as a 0-d array).

        Raises:
            ResultError: For anything else, including ndarray subclasses and
                objects with ``__array__``, which are never converted.
        """
        if type(value) is self.np.ndarray:
            return "array", [self._genuine_array(value, f"{label} returned an array")]
        if type(value) in (list, tuple):
            items = list(value)
            for position, item in enumerate(items):
                if type(item) is not self.np.ndarray:
                    raise ResultError(f"{label} returned a {type(value).__name__} whose item {position} is "
                                      f"{_type_name(item)}, expected numpy arrays")
            return "list", [self._genuine_array(item, f"{label} returned an array") for item in items]
        if type(value) in self.scalar_types:
            try:
                return "scalar", [self.np.array(float(value), dtype=self.np.float64)]
            except (OverflowError, ValueError) as exc:
                raise ResultError(f"{label} returned a number that is not a float64: {exc}") from exc
        raise ResultError(f"{label} returned {_type_name(value)}, expected a numpy array")

    def _genuine_array(self, array, what):
        if array.dtype.kind not in "fiub":
            raise ResultError(f"{what} of dtype {array.dtype.name}, expected real numbers (float64)")
        return self.np.array(array, dtype=self.np.float64, order="C", copy=True)

    def _student_failure(self, request_id, exc):
        if isinstance(exc, _MissingTarget):
            return {"type": "result", "id": request_id, "ok": False, "error": _safe_text(exc),
                    "error_kind": "missing", "traceback": ""}
        return {"type": "result", "id": request_id, "ok": False, "error": _describe_exception(exc),
                "error_kind": "student", "traceback": self._student_traceback(exc)}

    @staticmethod
    def _result_failure(request_id, message):
        return {"type": "result", "id": request_id, "ok": False, "error": _safe_text(message),
                "error_kind": "result", "traceback": ""}

    def _student_traceback(self, exc):
        """The last few traceback frames that belong to the student's code."""
        try:
            frames = [frame for frame in traceback.extract_tb(exc.__traceback__)
                      if self._is_student_file(frame.filename)]
            shown = frames[-MAX_TRACEBACK_FRAMES:]
            lines = []
            for frame in shown:
                lines.append(f'  File "{self._display_name(frame.filename)}", line {frame.lineno}, in {frame.name}')
                if frame.line:
                    lines.append(f"    {frame.line.strip()}")
            return _safe_text("\n".join(lines))
        except BaseException:
            return ""

    def _is_student_file(self, filename):
        if filename == self.filename:
            return True
        return any(os.path.abspath(filename).startswith(d) for d in self.student_dirs)

    def _display_name(self, filename):
        for directory in self.student_dirs:
            if os.path.abspath(filename).startswith(directory):
                return os.path.relpath(os.path.abspath(filename), directory)
        return filename

    # -- training ---------------------------------------------------------

    def train(self, header, arrays):
        """Train a seeded model built from the requested classes; see the module docstring."""
        np = self.np
        request_id = _require(header, "id", str)
        seed = _seed(header.get("seed"))
        layer_specs = header.get("layers")
        if not isinstance(layer_specs, list) or not layer_specs:
            raise RequestError("'layers' must be a non-empty list")
        error_name = _require(header, "error", str)
        learning_rate = _require(header, "learning_rate", (int, float))
        batch_size = _require(header, "batch_size", int)
        num_epochs = _require(header, "num_epochs", int)
        if batch_size <= 0 or num_epochs <= 0:
            raise RequestError("'batch_size' and 'num_epochs' must be positive")
        if len(arrays) != 3:
            raise RequestError("train needs the arrays [train_inputs, train_targets, eval_inputs]")
        # Each request's arrays are its own (decoded from the pipe, or a private mapping made
        # for it): what this run writes into them no later request sees, so nothing is copied.
        train_inputs, train_targets, eval_inputs = arrays
        for spec in layer_specs:
            if not isinstance(spec, dict):
                raise RequestError("each layer must be an object")
            _require(spec, "class", str)
            _dict_of(spec, "kwargs")
        label = "training"
        recipe = {"seed": seed, "layers": layer_specs, "error": error_name,
                  "learning_rate": learning_rate, "batch_size": batch_size, "num_epochs": num_epochs}
        for key in ("learning_rule", "scheduler"):  # optional pieces: {"class", "source", "kwargs"}
            piece = header.get(key)
            if piece is not None:
                if not isinstance(piece, dict):
                    raise RequestError(f"'{key}' must be an object")
                _require(piece, "class", str)
                _dict_of(piece, "kwargs")
                recipe[key] = piece
        if header.get("error_source") is not None:
            recipe["error_source"] = _require(header, "error_source", str)
        try:
            eval_outputs, epoch_errors = self.recipes.train_and_predict(
                recipe, lambda name, source: self._lookup(source, name),
                train_inputs, train_targets, eval_inputs)
            epoch_errors = [float(e) for e in epoch_errors]
        except RequestError:
            raise
        except ResultError as exc:
            return self._result_failure(request_id, f"{label}: {exc}"), []
        except BaseException as exc:
            return self._student_failure(request_id, exc), []
        if type(eval_outputs) is not np.ndarray:
            return self._result_failure(
                request_id, f"the model's output is {_type_name(eval_outputs)}, expected a numpy array"), []
        try:
            outputs = self._genuine_array(eval_outputs, "the model's output")
        except ResultError as exc:
            return self._result_failure(request_id, str(exc)), []
        response = {"type": "result", "id": request_id, "ok": True, "returned": "list",
                    "num_returned": 2, "num_inputs": 0}
        return response, [outputs, np.array(epoch_errors, dtype=np.float64)]

    def _scalar(self, value, what):
        np = self.np
        if type(value) in self.scalar_types:
            return float(value)
        if type(value) is np.ndarray and value.size == 1 and value.dtype.kind in "fiu":
            return float(value.reshape(()))
        raise ResultError(f"{what} is {_type_name(value)}, expected a number")


class _MissingTarget(Exception):
    """The requested class or function is not available."""


def _require(mapping, key, kinds):
    value = mapping.get(key)
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise RequestError(f"'{key}' is missing or has the wrong type")
    return value


def _list_of(mapping, key):
    value = mapping.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequestError(f"'{key}' must be a list")
    return value


def _dict_of(mapping, key):
    value = mapping.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestError(f"'{key}' must be an object")
    return value


def _seed(value):
    if type(value) is not int or not 0 <= value < 2**32:
        raise RequestError(f"a seed must be an integer in [0, 2**32), not {value!r}")
    return value


def _future_flags(statement):
    """Compiler flags of a ``from __future__ import ...`` statement (0 otherwise)."""
    flags = 0
    if isinstance(statement, ast.ImportFrom) and statement.module == "__future__":
        for alias in statement.names:
            feature = getattr(__future__, alias.name, None)
            if feature is not None:
                flags |= feature.compiler_flag
    return flags


if __name__ == "__main__":
    sys.exit(main(sys.argv))
