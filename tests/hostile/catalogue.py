"""The attacks: what a hostile or careless submission can do, one entry each.

Every attack is the body of a function ``_attack_<name>(inputs)`` (written at
column 0 here; the builders indent it). ``inputs`` is the array a layer method
was called with, or None when the attack runs at load time (module level or
class body). The function returns:

* ``True`` when it obtained something the sandbox should have denied (a hidden
  file, the reference package, a connection to the grader's host, a file
  written outside the sandbox, ...). The submission then "cheats": its layers
  return the correct answers. So any capability that leaks turns into points,
  and "no points beyond the honest baseline" proves that it did not leak;
* ``False``/``None`` otherwise (the layers return zeros, the honest baseline);
* any other object (return-value attacks, method placement only): the object
  itself is returned by ``TanhLayer.fprop`` as its answer.

Snippets are :class:`string.Template` text. Placeholders, filled per run by
:class:`tests.hostile.submissions.Targets`: ``$repo`` (this repository),
``$submissions_dir`` and ``$out_dir`` (the batch's input and grade
directories), ``$victim`` (an honest student's id), ``$site_dirs`` (a Python
list of the grading interpreter's site-packages folders), ``$tcp_port``,
``$unix_socket`` and ``$abstract_socket`` (listeners of the test, standing in
for services on the grader's host), ``$tag`` (unique file-name marker),
``$sleep_marker`` (a unique ``sleep`` argument, to find stray processes) and
``$grader_pidns`` (the grading process's pid namespace, for safety interlocks).

Placements (where the attack sits in the notebook):

* ``method``: first thing in ``TanhLayer.fprop`` (runs on every fprop request,
  the first of which is the first request of the whole submission);
* ``module``: at load time, through a decorator (``@_at_load`` on a ``def``),
  because the code extractor skips bare top-level calls but keeps decorated
  definitions: exactly what a student hiding code would do;
* ``class_body``: a statement in the body of ``class TanhLayer``.

Safety: some attacks would harm the machine if the isolation level cannot
contain them (``kill(-1)`` as root outside a pid namespace kills every process
on the machine). ``unsafe_at`` names those levels and why; the tests never run
an attack there. The most dangerous snippets also carry an interlock of their
own (they refuse to act when they share the grader's pid namespace, or when
RLIMIT_NPROC is not in force), so that a bug in the tests' bookkeeping cannot
turn them loose.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

METHOD = 'method'
MODULE = 'module'
CLASS_BODY = 'class_body'
PLACEMENTS = (METHOD, MODULE, CLASS_BODY)

LEVELS = ('bwrap', 'unshare', 'rlimits')
FILE_SYSTEM_HIDDEN = ('bwrap',)
PROCESSES_HIDDEN = ('bwrap', 'unshare')

FAMILIES = {
    'patch': 'monkeypatching numpy, np.testing, builtins, sys.modules or the student mlp copy',
    'return': 'returning objects that pretend to be arrays',
    'introspect': 'looking for expected answers in the child\'s own memory',
    'read': 'reading files or memory near the grader',
    'network': 'reaching the grader\'s host over TCP or Unix sockets',
    'write': 'writing outside the sandbox (site-packages, repository, grade directory, /tmp)',
    'disrupt': 'exits, signals, kills, hangs, bombs and runaway resources',
    'protocol': 'tampering with the sandbox\'s response channel or its request loop',
    'output': 'output meant to break or bloat the reports',
    'exfiltrate': 'carrying hidden test inputs out through the feedback',
    'bound': 'replies that would make the grader\'s own work unbounded (memory, CPU, a dead reader thread)',
}

_WRITES_TO_HOST = ('the file system is visible and writable at this level, so the attack would '
                   'change files on the grading machine')
_FILLS_DISK = ('the working directory is on the host\'s disk at this level; only the time limit '
               'bounds how much it could write')
_KILLS_GRADER = 'there is no pid namespace at this level: the parent of the child is the grader itself'
_KILLS_EVERYTHING = ('there is no pid namespace at this level: kill(-1) would signal every process '
                     'the grader may signal (as root: every process on the machine)')
_ESCAPES = ('there is no pid namespace at this level: a process that calls setsid() escapes the '
            'process-group kill and would outlive the grader')
_NO_NPROC = ('RLIMIT_NPROC is not in force at this level (the child is root or shares the grader\'s '
             'uid), so nothing would stop the fork bomb')


@dataclass(frozen=True)
class Attack:
    """One attack of the catalogue.

    Attributes:
        name: Identifier (used in student ids and test ids).
        family: A key of :data:`FAMILIES`.
        summary: What the attack tries, in one sentence.
        code: The body of ``_attack_<name>(inputs)`` (a ``string.Template``).
        placements: Where it is tried (subset of :data:`PLACEMENTS`).
        must_hold: What the grader must guarantee against it.
        held_at: Isolation levels at which the sandbox is expected to hold
            (the attack gains nothing). At other levels it is a documented
            leak (SECURITY.md) and is not run in the batch.
        unsafe_at: Isolation level -> why the attack must never run there.
        needs_nproc: Run it only where RLIMIT_NPROC binds the child (fork bombs).
        combinable: It neither crashes, hangs nor disturbs other attacks, so it
            can share one submission with other combinable attacks.
        exact: The score must equal the honest baseline exactly (the attack
            changes nothing the parent sees); otherwise at most the baseline.
        expect: Regular expression the report (notes and check outputs) must
            match: the clear message the student gets.
        forbid_in_hidden: Regular expression that no output of a check on a
            hidden test case may match.
        forbid_anywhere: Regular expression that nothing a student reads in
            the report (error, notes, any check's output) may match.
        strongest_only: The outcome does not depend on the isolation level
            (everything is judged in the parent, or another attack already
            covers the weaker levels), so the batch runs it at the strongest
            level only.
        why_strongest_only: The reason for ``strongest_only``, when it is not
            "judged in the parent".
        layer_source: Replaces the standard layer classes (for attacks that
            need both fprop and bprop); method placement only.
        prelude: Extra top-level code (``module`` placement) placed before
            the layer classes.
    """

    name: str
    family: str
    summary: str
    code: str
    placements: tuple[str, ...]
    must_hold: str
    held_at: tuple[str, ...] = LEVELS
    unsafe_at: dict[str, str] = field(default_factory=dict)
    needs_nproc: bool = False
    combinable: bool = False
    exact: bool = False
    expect: str = ''
    forbid_in_hidden: str = ''
    forbid_anywhere: str = ''
    strongest_only: bool = False
    why_strongest_only: str = ''
    layer_source: str = ''
    prelude: str = ''

    def body(self) -> str:
        """The snippet, dedented, without surrounding blank lines."""
        return textwrap.dedent(self.code).strip('\n')


def _code(text: str) -> str:
    return textwrap.dedent(text).strip('\n')


NO_POINTS = 'no points beyond the honest baseline; every other submission graded as if alone'
SAME_POINTS = 'exactly the honest baseline\'s points: the parent never sees the patched objects'


# --------------------------------------------------------------------------
# Monkeypatching
# --------------------------------------------------------------------------

PATCH_ATTACKS = [
    Attack(
        'patch_numpy_comparisons', 'patch',
        'Replace np.allclose, np.isclose, np.array_equal and np.testing asserts by always-true versions.',
        _code('''
            import numpy as np
            always = lambda *args, **kwargs: True
            np.allclose = always
            np.array_equal = always
            np.array_equiv = always
            np.isclose = lambda a, b, *args, **kwargs: np.ones(np.broadcast(a, b).shape, dtype=bool)
            np.testing.assert_allclose = lambda *args, **kwargs: None
            np.testing.assert_array_equal = lambda *args, **kwargs: None
            np.testing.assert_array_almost_equal = lambda *args, **kwargs: None
            try:
                np.ndarray.__eq__ = always
            except TypeError:
                pass
            return False
        '''),
        PLACEMENTS, SAME_POINTS, combinable=True, exact=True, strongest_only=True),
    Attack(
        'patch_sys_modules', 'patch',
        'Install fake numpy.testing, mlp.checks and autograder modules in sys.modules.',
        _code('''
            import sys
            import types
            testing = types.ModuleType('numpy.testing')
            testing.assert_allclose = lambda *args, **kwargs: None
            sys.modules['numpy.testing'] = testing
            checks = types.ModuleType('mlp.checks')
            checks.compare_arrays = lambda *args, **kwargs: types.SimpleNamespace(ok=True, message='')
            sys.modules['mlp.checks'] = checks
            for name in ('autograder', 'autograder.checks.plan', 'autograder.checks.oracle', 'autograder.grade'):
                fake = types.ModuleType(name)
                fake.judge_plan = lambda *args, **kwargs: None
                sys.modules[name] = fake
            return False
        '''),
        PLACEMENTS, SAME_POINTS, combinable=True, exact=True, strongest_only=True),
    Attack(
        'patch_student_mlp', 'patch',
        'Rewrite the student copy of mlp in memory: a zero error function, an optimiser that does nothing.',
        _code('''
            import mlp.errors
            import mlp.learning_rules

            class NoError:
                def __call__(self, outputs, targets):
                    return 0.0

                def grad(self, outputs, targets):
                    return outputs * 0.0

            mlp.errors.CrossEntropySoftmaxError = NoError
            rule = getattr(mlp.learning_rules, 'GradientDescentLearningRule', None)
            if rule is not None:
                rule.update_params = lambda self, grads: None
            return False
        '''),
        PLACEMENTS, NO_POINTS, strongest_only=True),
    Attack(
        'patch_builtins', 'patch',
        'Replace isinstance, len, abs, min, max, all and any in builtins (breaks the request loop too).',
        _code('''
            import builtins
            builtins.isinstance = lambda obj, kind: True
            builtins.len = lambda obj: 0
            builtins.abs = lambda value: 0
            builtins.min = builtins.max = lambda *args, **kwargs: 0
            builtins.all = builtins.any = lambda iterable: True
            return False
        '''),
        PLACEMENTS, NO_POINTS, strongest_only=True),
]


# --------------------------------------------------------------------------
# Return values that pretend to be arrays (judged in the parent: level-independent)
# --------------------------------------------------------------------------

_LOOKALIKE = '''
    class Lookalike:
        """Agrees with everything and converts to anything."""
        shape = property(lambda self: inputs.shape)
        dtype = np.dtype(float)
        ndim = property(lambda self: inputs.ndim)
        __array_priority__ = 1e9
        __eq__ = __le__ = __ge__ = lambda self, other: True
        __ne__ = __lt__ = __gt__ = lambda self, other: False
        __sub__ = __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = lambda self, other: 0.0
        __abs__ = __neg__ = lambda self: 0.0
        __float__ = lambda self: 0.0
        __index__ = __len__ = lambda self: 0
        __bool__ = lambda self: True
        __iter__ = lambda self: iter(())
        __getitem__ = lambda self, key: 0.0
        __hash__ = object.__hash__

        def __array__(self, dtype=None, copy=None):
            return np.zeros(inputs.shape)

        @property
        def __array_interface__(self):
            return np.zeros(inputs.shape).__array_interface__
'''

RETURN_ATTACKS = [
    Attack(
        'return_ndarray_subclass', 'return',
        'Return an ndarray subclass whose ==, -, abs and ufuncs always report a match.',
        _code('''
            import numpy as np
            if inputs is None:
                return False

            class Agreeable(np.ndarray):
                __eq__ = lambda self, other: True
                __ne__ = lambda self, other: False
                __sub__ = __rsub__ = lambda self, other: np.zeros(np.shape(self))
                __abs__ = lambda self: np.zeros(np.shape(self))

                def __array_ufunc__(self, ufunc, method, *args, **kwargs):
                    return np.zeros(np.shape(self), dtype=bool) if ufunc is np.isnan else True

            return np.zeros(inputs.shape).view(Agreeable)
        '''),
        (METHOD,), NO_POINTS, expect=r'returned Agreeable, expected a numpy array', strongest_only=True),
    Attack(
        'return_lookalike_object', 'return',
        'Return a non-array object with __eq__, __sub__, __abs__, __array__, __float__ and friends overridden.',
        _code('import numpy as np\nif inputs is None:\n    return False\n' + textwrap.dedent(_LOOKALIKE)
              + '\nreturn Lookalike()'),
        (METHOD,), NO_POINTS, expect=r'returned Lookalike, expected a numpy array', strongest_only=True),
    Attack(
        'return_float_subclass', 'return',
        'Return a float subclass that equals everything.',
        _code('''
            class Agreeable(float):
                __eq__ = lambda self, other: True
                __ne__ = lambda self, other: False
                __hash__ = float.__hash__
            return Agreeable(0.0) if inputs is not None else False
        '''),
        (METHOD,), NO_POINTS, expect=r'returned Agreeable, expected a numpy array', strongest_only=True),
    Attack(
        'return_masked_array', 'return',
        'Return a fully masked numpy.ma array (masked entries compare as equal in many helpers).',
        _code('''
            import numpy as np
            return np.ma.masked_all(inputs.shape) if inputs is not None else False
        '''),
        (METHOD,), NO_POINTS, expect=r'returned MaskedArray, expected a numpy array', strongest_only=True),
    Attack(
        'return_object_array', 'return',
        'Return a genuine ndarray of dtype object filled with agreeable objects.',
        _code('import numpy as np\nif inputs is None:\n    return False\n' + textwrap.dedent(_LOOKALIKE) + '''
answer = np.empty(inputs.shape, dtype=object)
for index in np.ndindex(inputs.shape):
    answer[index] = Lookalike()
return answer'''),
        (METHOD,), NO_POINTS, expect=r'of dtype object, expected real numbers', strongest_only=True),
    Attack(
        'return_complex_array', 'return',
        'Return a complex array (its real part is zeros).',
        _code('''
            import numpy as np
            return np.zeros(inputs.shape, dtype=complex) if inputs is not None else False
        '''),
        (METHOD,), NO_POINTS, expect=r'of dtype complex128, expected real numbers', strongest_only=True),
    Attack(
        'return_nan_array', 'return',
        'Return NaN everywhere (NaN compares unequal, and sloppy checks skip it).',
        _code('''
            import numpy as np
            return np.full(inputs.shape, np.nan) if inputs is not None else False
        '''),
        (METHOD,), NO_POINTS, strongest_only=True),
    Attack(
        'return_huge_array', 'return',
        'Return 40 million floats (320 MB), more than a response may hold.',
        _code('''
            import numpy as np
            return np.zeros(40_000_000) if inputs is not None else False
        '''),
        (METHOD,), NO_POINTS, expect=r'malformed data', strongest_only=True),
    Attack(
        'return_many_arrays', 'return',
        'Return a list of 400,000 empty arrays (a response header larger than allowed).',
        _code('''
            import numpy as np
            return [np.zeros(0)] * 400_000 if inputs is not None else False
        '''),
        (METHOD,), NO_POINTS, expect=r'malformed data|did not answer within', strongest_only=True),
]


# --------------------------------------------------------------------------
# Looking for expected answers in the child's own memory
# --------------------------------------------------------------------------

_IS_LEAKED_ANSWER = '''
    def is_leaked_answer(value):
        """An array equal to tanh(inputs) that is neither the inputs nor computed here."""
        return (type(value) is np.ndarray and value is not correct and value.shape == correct.shape
                and value.dtype.kind == 'f' and bool((abs(value - correct) < 1e-12).all())
                and not bool((abs(value - inputs) < 1e-12).all()))
'''

INTROSPECT_ATTACKS = [
    Attack(
        'inspect_call_stack', 'introspect',
        'Walk the call stack (sys._getframe) for expected values, references or tolerances.',
        _code('import sys\nimport numpy as np\ncorrect = np.tanh(inputs) if inputs is not None else None\n'
              + textwrap.dedent(_IS_LEAKED_ANSWER) + '''
suspicious = {'expected', 'expected_left', 'expected_right', 'reference', 'oracle', 'tolerance', 'rtol', 'atol'}
frame = sys._getframe(1)
while frame is not None:
    for namespace in (frame.f_locals, frame.f_globals):
        for key, value in list(namespace.items()):
            if key in suspicious and frame.f_code.co_filename != 'submission.py':
                return True
            if correct is not None and is_leaked_answer(value):
                return True
    frame = frame.f_back
return False'''),
        PLACEMENTS, NO_POINTS, combinable=True, exact=True),
    Attack(
        'inspect_gc_objects', 'introspect',
        'Scan every object the garbage collector knows for an array holding the expected answer.',
        _code('import gc\nimport numpy as np\ncorrect = np.tanh(inputs) if inputs is not None else None\n'
              + textwrap.dedent(_IS_LEAKED_ANSWER) + '''
for container in gc.get_objects():
    if correct is None:
        continue
    if type(container) is dict:
        values = list(container.values())
    elif type(container) in (list, tuple):
        values = list(container)
    else:
        continue
    if any(is_leaked_answer(value) for value in values):
        return True
return False'''),
        PLACEMENTS, NO_POINTS, combinable=True, exact=True),
    Attack(
        'replay_reference_outputs', 'introspect',
        'Remember every array the grader sends (bprop gets reference outputs) and replay them in fprop.',
        _code('return False'),
        (METHOD,), NO_POINTS, exact=True,
        layer_source=_code('''
            _seen = {}


            def _remember(inputs, outputs):
                _seen[(inputs.shape, inputs.tobytes())] = outputs.copy()
                for row, output_row in zip(inputs, outputs):
                    _seen[(row.shape, row.tobytes())] = output_row.copy()


            def _replay(inputs):
                whole = _seen.get((inputs.shape, inputs.tobytes()))
                if whole is not None:
                    return whole
                rows = [_seen.get((row.shape, row.tobytes())) for row in inputs]
                if rows and all(row is not None for row in rows):
                    return np.array(rows)
                return np.zeros_like(inputs)


            class TanhLayer(Layer):
                def fprop(self, inputs):
                    return _replay(inputs)

                def bprop(self, inputs, outputs, grads_wrt_outputs):
                    _remember(inputs, outputs)
                    return np.zeros_like(inputs)


            class ReluLayer(Layer):  # honest: the baseline's points
                def fprop(self, inputs):
                    return np.maximum(inputs, 0.)

                def bprop(self, inputs, outputs, grads_wrt_outputs):
                    _remember(inputs, outputs)
                    return grads_wrt_outputs * (outputs > 0)
        ''')),
]


# --------------------------------------------------------------------------
# Reading near the grader (held where the file system or other processes are hidden)
# --------------------------------------------------------------------------

READ_ATTACKS = [
    Attack(
        'read_hidden_specs', 'read',
        'Read the hidden test cases in autograder/course/specs/*.json.',
        _code('''
            import os
            for path in ('$repo/autograder/course/specs/03_multiple_layer_models.json', '$repo/autograder/course/specs'):
                try:
                    if os.path.isdir(path):
                        return any(name.endswith('.json') for name in os.listdir(path))
                    with open(path, 'rb') as handle:
                        return b'"cases"' in handle.read()
                except OSError:
                    continue
            return False
        '''),
        PLACEMENTS, NO_POINTS, held_at=FILE_SYSTEM_HIDDEN, combinable=True, exact=True),
    Attack(
        'read_reference_package', 'read',
        'Read the reference solution in reference/mlp/layers.py.',
        _code('''
            try:
                with open('$repo/reference/mlp/layers.py', 'rb') as handle:
                    return b'class TanhLayer' in handle.read()
            except OSError:
                return False
        '''),
        PLACEMENTS, NO_POINTS, held_at=FILE_SYSTEM_HIDDEN, combinable=True, exact=True),
    Attack(
        'import_reference_framework', 'read',
        'Import the reference framework\'s layers module from its file and use its TanhLayer.',
        _code('''
            import importlib.util
            try:
                spec = importlib.util.spec_from_file_location('_stolen_layers', '$repo/reference/mlp/layers.py')
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            except BaseException:
                return False
            return hasattr(module, 'TanhLayer')
        '''),
        PLACEMENTS, NO_POINTS, held_at=FILE_SYSTEM_HIDDEN, combinable=True, exact=True),
    Attack(
        'import_autograder_package', 'read',
        'Put the repository on sys.path and import the autograder package.',
        _code('''
            import sys
            sys.path.insert(0, '$repo')
            try:
                import autograder
                return hasattr(autograder, '__version__')
            except BaseException:
                return False
            finally:
                sys.path.remove('$repo')
                sys.modules.pop('autograder', None)
        '''),
        PLACEMENTS, NO_POINTS, held_at=FILE_SYSTEM_HIDDEN, combinable=True, exact=True),
    Attack(
        'read_other_submissions', 'read',
        'List the batch\'s submission folder and read another student\'s notebook.',
        _code('''
            import os
            try:
                names = os.listdir('$submissions_dir')
            except OSError:
                return False
            for name in names:
                try:
                    with open(os.path.join('$submissions_dir', name), 'rb') as handle:
                        if b'class TanhLayer' in handle.read():
                            return True
                except OSError:
                    continue
            return False
        '''),
        PLACEMENTS, NO_POINTS, held_at=FILE_SYSTEM_HIDDEN, combinable=True, exact=True),
    Attack(
        'read_other_processes_environ', 'read',
        'Read /proc/*/environ of processes outside the sandbox (the grader\'s environment).',
        _code('''
            import os

            def keys(data):
                return {item.split(b'=', 1)[0] for item in data.split(b'\\0') if item}

            with open('/proc/self/environ', 'rb') as handle:
                mine = keys(handle.read()) | {b'PWD', b'OLDPWD', b'SHLVL', b'_'}
            for pid in os.listdir('/proc'):
                if not pid.isdigit():
                    continue
                try:
                    with open('/proc/%s/environ' % pid, 'rb') as handle:
                        data = handle.read()
                except OSError:
                    continue
                if keys(data) - mine:
                    return True
            return False
        '''),
        PLACEMENTS, NO_POINTS, held_at=PROCESSES_HIDDEN, combinable=True, exact=True),
    Attack(
        'read_grader_memory', 'read',
        'Read the memory of the parent process (/proc/<ppid>/mem): the grader holds the expected arrays.',
        _code('''
            import os
            ppid = os.getppid()
            try:
                with open('/proc/%d/cmdline' % ppid, 'rb') as handle:
                    command = handle.read()
            except OSError:
                return False
            if ppid <= 1 or any(word in command for word in (b'bwrap', b'sandbox-init', b'unshare', b'setpriv', b'prlimit')):
                return False  # the parent is part of the sandbox, not the grader
            try:
                with open('/proc/%d/maps' % ppid) as maps:
                    start = int(maps.readline().split('-')[0], 16)
                with open('/proc/%d/mem' % ppid, 'rb', buffering=0) as memory:
                    memory.seek(start)
                    return len(memory.read(64)) > 0
            except (OSError, ValueError, OverflowError):
                return False
        '''),
        PLACEMENTS, NO_POINTS, held_at=PROCESSES_HIDDEN, combinable=True, exact=True),
    Attack(
        'spy_on_other_sandboxes', 'read',
        'Find other students\' sandboxes (other child_runner processes) and read their environment and files.',
        _code('''
            import os
            own = {os.getpid(), os.getppid()}
            for pid in os.listdir('/proc'):
                if not pid.isdigit() or int(pid) in own:
                    continue
                try:
                    with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                        if b'child_runner.py' not in handle.read():
                            continue
                    os.listdir('/proc/%s/cwd' % pid)
                    return True
                except OSError:
                    continue
            return False
        '''),
        PLACEMENTS, NO_POINTS, held_at=PROCESSES_HIDDEN, combinable=True, exact=True),
]


# --------------------------------------------------------------------------
# Network (the listeners belong to the test; connecting harms nothing)
# --------------------------------------------------------------------------

NETWORK_ATTACKS = [
    Attack(
        'connect_tcp_to_grader_host', 'network',
        'Open a TCP connection to a service on the grader\'s host (127.0.0.1).',
        _code('''
            import socket
            try:
                with socket.create_connection(('127.0.0.1', $tcp_port), timeout=1.0) as connection:
                    connection.sendall(b'hello from the sandbox')
                    return True
            except OSError:
                return False
        '''),
        PLACEMENTS, NO_POINTS, held_at=PROCESSES_HIDDEN, combinable=True, exact=True),
    Attack(
        'connect_unix_socket_path', 'network',
        'Connect to a Unix socket in the host\'s file system (like the Docker or X11 sockets).',
        _code('''
            import socket
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                    connection.settimeout(1.0)
                    connection.connect('$unix_socket')
                    return True
            except OSError:
                return False
        '''),
        PLACEMENTS, NO_POINTS, held_at=FILE_SYSTEM_HIDDEN, combinable=True, exact=True),
    Attack(
        'connect_abstract_unix_socket', 'network',
        'Connect to an abstract-namespace Unix socket (no file; scoped by the network namespace).',
        _code('''
            import socket
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                    connection.settimeout(1.0)
                    connection.connect('\\0$abstract_socket')
                    return True
            except OSError:
                return False
        '''),
        PLACEMENTS, NO_POINTS, held_at=PROCESSES_HIDDEN, combinable=True, exact=True),
]


# --------------------------------------------------------------------------
# Writing outside the sandbox (never run where the file system is writable)
# --------------------------------------------------------------------------

_CREATE_NEW = _code('''
    import os

    def create(path):
        """Create a NEW empty file (never clobbers anything); True if it worked."""
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            return True
        except OSError:
            return False
''') + '\n'
_WRITE_UNSAFE = {'unshare': _WRITES_TO_HOST, 'rlimits': _WRITES_TO_HOST}

WRITE_ATTACKS = [
    Attack(
        'plant_in_site_packages', 'write',
        'Plant a .pth file and a sitecustomize.py in the grader\'s site-packages (run on its next start).',
        _code(_CREATE_NEW + '''
planted = False
for directory in $site_dirs:
    planted |= create(os.path.join(directory, 'mlp_hostile_$tag.pth'))
    if not os.path.exists(os.path.join(directory, 'sitecustomize.py')):
        planted |= create(os.path.join(directory, 'sitecustomize.py'))
return planted'''),
        PLACEMENTS, 'nothing in site-packages changes; ' + NO_POINTS, held_at=FILE_SYSTEM_HIDDEN,
        unsafe_at=_WRITE_UNSAFE, combinable=True, exact=True),
    Attack(
        'write_into_repository', 'write',
        'Create files in the repository (specs, released mlp copy) and open a hidden spec for writing.',
        _code(_CREATE_NEW + '''
planted = False
for path in ('$repo/mlp-hostile-$tag.txt', '$repo/autograder/course/specs/mlp-hostile-$tag.json',
             '$repo/release/03_multiple_layer_models/mlp/mlp_hostile_$tag.py'):
    planted |= create(path)
try:
    os.close(os.open('$repo/autograder/course/specs/03_multiple_layer_models.json', os.O_WRONLY | os.O_APPEND))
    planted = True
except OSError:
    pass
return planted'''),
        PLACEMENTS, 'no file of the repository changes; ' + NO_POINTS, held_at=FILE_SYSTEM_HIDDEN,
        unsafe_at=_WRITE_UNSAFE, combinable=True, exact=True),
    Attack(
        'forge_report_files', 'write',
        'Write a forged report for another student, and a stray file, into the grade directory.',
        _code(_CREATE_NEW + '''
forged = create('$out_dir/mlp-hostile-$tag.json')
try:
    with open('$out_dir/$victim.json', 'w') as handle:
        handle.write('{"student": "$victim", "score": 13.0, "max_score": 13.0}')
    forged = True
except OSError:
    pass
return forged'''),
        PLACEMENTS, 'the grade directory holds only the grader\'s reports; ' + NO_POINTS,
        held_at=FILE_SYSTEM_HIDDEN, unsafe_at=_WRITE_UNSAFE, combinable=True, exact=True),
    Attack(
        'write_host_temporary_folders', 'write',
        'Create files in /tmp, /var/tmp and /dev/shm (inside the sandbox these are private or absent).',
        _code(_CREATE_NEW + '''
for folder in ('/tmp', '/var/tmp', '/dev/shm'):
    create(os.path.join(folder, 'mlp-hostile-$tag'))
return False  # a private /tmp is allowed: the file-system snapshot decides'''),
        PLACEMENTS, 'no new file in the host\'s temporary folders', held_at=FILE_SYSTEM_HIDDEN,
        unsafe_at=_WRITE_UNSAFE, combinable=True, exact=True),
    Attack(
        'fill_disk', 'write',
        'Write 16 MiB files into the working directory and /tmp until the disk is full (at most 3 GiB).',
        _code('''
            import os
            import signal
            import sys
            if getattr(sys, '_hostile_filled', False):
                return False
            sys._hostile_filled = True
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over RLIMIT_FSIZE: EFBIG instead of death
            chunk = b'\\0' * (1 << 20)
            written = 0
            for folder in ('.', '/tmp', os.environ.get('HOME', '.')):
                for index in range(64):
                    try:
                        with open(os.path.join(folder, 'fill-%d.bin' % index), 'wb') as handle:
                            for _ in range(16):
                                handle.write(chunk)
                                written += len(chunk)
                    except OSError:
                        break
            return written > 512 * 2 ** 20  # more than 512 MiB stored: the size cap did not hold
        '''),
        (METHOD, MODULE), 'the sandbox\'s writable space is capped; ' + NO_POINTS,
        held_at=FILE_SYSTEM_HIDDEN, unsafe_at={'unshare': _FILLS_DISK, 'rlimits': _FILLS_DISK}),
]


# --------------------------------------------------------------------------
# Exits, signals, kills, hangs, bombs, runaway resources
# --------------------------------------------------------------------------

_CRASH = r'exit status|killed by|crash|malformed'
_TIMEOUT = r'did not answer within|did not finish within|time budget'
_LIKE_INFINITE_LOOP = ('the parent times it out and SIGKILLs it like infinite_loop, which runs at every '
                       'level; how the child waits (or which signals it ignores) makes no difference')
_IN_OWN_PID_NAMESPACE = _code('''
    import os
    if os.readlink('/proc/self/ns/pid') == '$grader_pidns':
        return False  # safety interlock: never act in the grader's own pid namespace
''') + '\n'

DISRUPT_ATTACKS = [
    Attack('os_exit', 'disrupt', 'Call os._exit(0): the process vanishes without a word.',
           _code('import os\nos._exit(0)'), PLACEMENTS, NO_POINTS, expect=r'exit status 0'),
    Attack('sys_exit', 'disrupt', 'Call sys.exit(0) (raises SystemExit).',
           _code('import sys\nsys.exit(0)'), PLACEMENTS, NO_POINTS, expect=r'SystemExit'),
    Attack('raise_keyboard_interrupt', 'disrupt', 'Raise KeyboardInterrupt from a method.',
           _code('raise KeyboardInterrupt'), (METHOD,), NO_POINTS, expect=r'KeyboardInterrupt'),
    Attack('ignore_signals_and_sleep', 'disrupt',
           'Ignore SIGTERM, SIGINT, SIGHUP, SIGXCPU and SIGALRM, then sleep forever.',
           _code('''
               import signal
               import time
               for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU, signal.SIGALRM):
                   signal.signal(number, signal.SIG_IGN)
               while True:
                   time.sleep(3600)
           '''), (METHOD, MODULE), NO_POINTS, expect=_TIMEOUT, strongest_only=True,
           why_strongest_only=_LIKE_INFINITE_LOOP),
    Attack('kill_parent', 'disrupt', 'Send SIGTERM and SIGKILL to the parent process and its process group.',
           _code(_IN_OWN_PID_NAMESPACE + '''
import signal
parent = os.getppid()
for number in (signal.SIGTERM, signal.SIGKILL):
    try:
        os.kill(parent, number)
    except OSError:
        pass
try:
    os.killpg(os.getpgid(parent), signal.SIGKILL)
except OSError:
    pass
return False'''), (METHOD, MODULE), NO_POINTS,
           unsafe_at={'rlimits': _KILLS_GRADER}),
    Attack('kill_own_process_group', 'disrupt', 'SIGKILL its own process group (kill(0)).',
           _code('''
               import os
               import signal
               if os.getsid(0) != os.getpid() and os.getpid() > 10:
                   return False  # safety interlock: only when the group is the sandbox's own
               os.killpg(0, signal.SIGKILL)
           '''), (METHOD, MODULE), NO_POINTS, expect=r'SIGKILL|exit status|crash'),
    Attack('kill_everything', 'disrupt', 'kill(-1, SIGKILL): signal every process it may signal.',
           _code(_IN_OWN_PID_NAMESPACE + '''
import signal
os.kill(-1, signal.SIGKILL)
return False'''), (METHOD, MODULE), NO_POINTS,
           unsafe_at={'rlimits': _KILLS_EVERYTHING}),
    Attack('fork_bomb', 'disrupt', 'fork() in an endless loop, in every child too.',
           _code('''
               import os
               import resource
               limit = resource.getrlimit(resource.RLIMIT_NPROC)[0]
               if os.getuid() == 0 or limit == resource.RLIM_INFINITY or limit > 4096:
                   return False  # safety interlock: only where RLIMIT_NPROC binds
               while True:
                   try:
                       os.fork()
                   except OSError:
                       pass
           '''), (METHOD, MODULE), NO_POINTS, needs_nproc=True, expect=_TIMEOUT,
           unsafe_at={'unshare': _NO_NPROC, 'rlimits': _NO_NPROC}),
    Attack('fork_bomb_new_sessions', 'disrupt',
           'A fork bomb whose children each call setsid() (one scheduler group each, to starve others).',
           _code('''
               import os
               import resource
               limit = resource.getrlimit(resource.RLIMIT_NPROC)[0]
               if os.getuid() == 0 or limit == resource.RLIM_INFINITY or limit > 4096:
                   return False  # safety interlock: only where RLIMIT_NPROC binds
               while True:
                   try:
                       if os.fork() == 0:
                           os.setsid()
                   except OSError:
                       pass
           '''), (METHOD,), NO_POINTS, needs_nproc=True, expect=_TIMEOUT,
           unsafe_at={'unshare': _NO_NPROC, 'rlimits': _NO_NPROC}),
    Attack('setsid_escape', 'disrupt',
           'Double-fork a grandchild into a new session (escaping the process group) that sleeps on.',
           _code(_IN_OWN_PID_NAMESPACE + '''
child = os.fork()
if child == 0:
    try:
        os.setsid()
        if os.fork() == 0:
            os.execv('/bin/sleep', ['sleep', '$sleep_marker'])
    finally:
        os._exit(0)
os.waitpid(child, 0)
return False'''), (METHOD, MODULE), 'no process of the submission outlives its grading; ' + NO_POINTS,
           unsafe_at={'rlimits': _ESCAPES}),
    Attack('threads_left_running', 'disrupt',
           'Start a non-daemon and a daemon thread that never end (the interpreter cannot exit).',
           _code('''
               import sys
               import threading
               import time
               if not getattr(sys, '_hostile_threads', False):
                   sys._hostile_threads = True
                   def linger():
                       while True:
                           time.sleep(0.5)
                   threading.Thread(target=linger).start()
                   threading.Thread(target=linger, daemon=True).start()
               return False
           '''), (METHOD, MODULE), NO_POINTS),
    Attack('infinite_loop', 'disrupt', 'while True: pass.',
           _code('while True:\n    pass'), PLACEMENTS, NO_POINTS, expect=_TIMEOUT),
    Attack('sleep_forever', 'disrupt', 'time.sleep for a million seconds.',
           _code('import time\ntime.sleep(10 ** 6)'), (METHOD, MODULE), NO_POINTS, expect=_TIMEOUT,
           strongest_only=True, why_strongest_only=_LIKE_INFINITE_LOOP),
    Attack('deep_recursion', 'disrupt', 'Lift the recursion limit and recurse until the C stack overflows.',
           _code('''
               import sys
               sys.setrecursionlimit(10 ** 7)
               def down(depth):
                   return max(map(down, [depth + 1]))  # through C, so the C stack overflows
               return down(0)
           '''), (METHOD, MODULE), NO_POINTS, expect=r'SIGSEGV|RecursionError|segmentation|' + _TIMEOUT),
    Attack('allocate_4gb', 'disrupt', 'Allocate a 4 GiB array.',
           _code('''
               import numpy as np
               block = np.ones(4 * 2 ** 30 // 8 + 1)
               return False
           '''), PLACEMENTS, NO_POINTS, expect=r'MemoryError|memory'),
    Attack('many_large_processes', 'disrupt',
           'Fork four children that each fill 1.5 GiB (the address-space limit is per process), then wait.',
           _code('''
               import os
               import time
               import numpy as np
               for _ in range(4):
                   if os.fork() == 0:
                       try:
                           block = np.ones(3 * 2 ** 30 // 16)
                           time.sleep(60)
                       finally:
                           os._exit(0)
               time.sleep(60)
           '''), (METHOD,), 'the children die with the sandbox; ' + NO_POINTS, expect=_TIMEOUT),
    Attack('print_flood', 'output', 'Print 120 MB to stdout and 20 MB to stderr.',
           _code('''
               import sys
               if getattr(sys, '_hostile_flooded', False):
                   return False
               sys._hostile_flooded = True
               block = ('x' * 1023 + '\\n') * 1024
               for _ in range(120):
                   sys.stdout.write(block)
               for _ in range(20):
                   sys.stderr.write(block)
               sys.stdout.flush()
               return False
           '''), (METHOD, MODULE), SAME_POINTS, exact=True),
]


# --------------------------------------------------------------------------
# The response channel and the request loop
# --------------------------------------------------------------------------

PROTOCOL_ATTACKS = [
    Attack(
        'poison_shared_training_data', 'protocol',
        'Write into, shrink or map writable every inherited regular file (the sealed training-set files).',
        _code('''
import mmap
import os
import stat
changed = False
for fd in range(3, 1024):
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            continue
    except OSError:
        continue
    for attempt in (lambda: os.pwrite(fd, b'\\xff' * 4096, 0), lambda: os.ftruncate(fd, 0),
                    lambda: mmap.mmap(fd, 4096, flags=mmap.MAP_SHARED, prot=mmap.PROT_WRITE)):
        try:
            attempt()
            changed = True
        except (OSError, ValueError, OverflowError):
            pass
return changed'''),
        PLACEMENTS, 'the training set every later submission trains on is unchanged; ' + NO_POINTS,
        combinable=True, exact=True),
    Attack('close_all_descriptors', 'protocol', 'Close every file descriptor (the protocol pipes included).',
           _code('import os\nos.closerange(0, 65536)\nreturn False'), (METHOD, MODULE), NO_POINTS,
           expect=_CRASH + r'|loading the submission failed'),
    Attack('forge_response_frames', 'protocol',
           'Write forged result (or setup) frames to the private response descriptor, then garbage.',
           _code('''
               import json
               import os
               import resource
               import struct
               import sys
               import numpy as np
               descriptor = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1

               def frame(header, arrays):
                   header = dict(header, arrays=[{'shape': list(a.shape), 'dtype': '<f8'} for a in arrays])
                   data = json.dumps(header).encode()
                   return struct.pack('<I', len(data)) + data + b''.join(a.astype('<f8').tobytes() for a in arrays)

               request_id = None
               caller = sys._getframe(1)
               while caller is not None and request_id is None:
                   header = caller.f_locals.get('header')
                   if type(header) is dict and 'id' in header:
                       request_id = header['id']
                   caller = caller.f_back
               try:
                   if request_id is None:
                       os.write(descriptor, frame({'type': 'setup', 'ok': True, 'errors': [], 'message': 'forged',
                                                   'names': {'TanhLayer': 'class', 'ReluLayer': 'class'}}, []))
                   else:
                       os.write(descriptor, frame({'type': 'result', 'id': request_id, 'ok': True, 'returned': 'array',
                                                   'num_returned': 1, 'num_inputs': 0}, [np.zeros(inputs.shape)]))
                   os.write(descriptor, struct.pack('<I', 0xFFFFFFF0) + b'{"type": "result"')
               except OSError:
                   pass
               return False
           '''), (METHOD, MODULE), NO_POINTS),
    Attack('hijack_request_loop', 'protocol',
           'Find the request loop\'s Runner object and make it answer every request "ok" with zeros.',
           _code('''
               import gc
               import numpy as np

               def forged(header, arrays):
                   reply = {'type': 'result', 'id': header.get('id'), 'ok': True, 'num_inputs': 0}
                   if header.get('type') == 'train':
                       return dict(reply, returned='list', num_returned=2), [
                           np.zeros((len(arrays[2]), 10)), np.zeros(header.get('num_epochs', 1))]
                   return dict(reply, returned='array', num_returned=1), [np.zeros(np.shape(arrays[0]))]

               for candidate in gc.get_objects():
                   if type(candidate).__name__ == 'Runner' and hasattr(candidate, 'handle'):
                       if getattr(candidate, 'module', None) is not None:
                           candidate.handle = forged
               return False
           '''), (METHOD, MODULE), NO_POINTS),
    Attack('traps_in_the_working_directory', 'protocol',
           'Leave symlinks to / and the repository, a locked folder and a FIFO in the working directory.',
           _code('''
               import os
               import sys
               if getattr(sys, '_hostile_traps', False):
                   return False
               sys._hostile_traps = True
               for target, name in (('/', 'root-link'), ('$repo', 'repo-link')):
                   try:
                       os.symlink(target, name)
                   except OSError:
                       pass
               try:
                   os.makedirs('locked/inner', exist_ok=True)
                   with open('locked/inner/file', 'w') as handle:
                       handle.write('x')
                   os.chmod('locked/inner', 0)
                   os.chmod('locked', 0)
                   os.mkfifo('fifo')
               except OSError:
                   pass
               return False
           '''), (METHOD,), 'the grader removes the sandbox\'s folders; ' + SAME_POINTS, exact=True),
]


# --------------------------------------------------------------------------
# Output meant to break or bloat the reports
# --------------------------------------------------------------------------

_MANY_FAILURES = 3000
_FAILING_DEFINITIONS = '\n\n'.join(
    '@_fail_loudly\ndef _failing_{0}():\n    pass'.format(index) for index in range(_MANY_FAILURES))

OUTPUT_ATTACKS = [
    Attack('unencodable_messages', 'output',
           'Raise exceptions whose messages hold lone surrogates, NUL, terminal escapes and bidi overrides.',
           _code('''
               raise ValueError('lone surrogates \\udcff\\ud800, NUL \\x00, escapes \\x1b[2J\\x1b[31m, '
                                'bidi \\u202e, bell \\x07, done')
           '''), PLACEMENTS, 'the reports are written and readable; ' + NO_POINTS, expect=r'ValueError'),
    Attack('giant_messages', 'output',
           'Raise an exception with a 10 MB message; at load time, 3000 failing definitions with 4 KB messages.',
           _code('''
               if inputs is None:
                   return False
               raise ValueError('x' * 10 ** 7)
           '''), (METHOD, MODULE), 'reports stay small; ' + NO_POINTS, expect=r'ValueError',
           prelude='_fail_loudly = lambda function: (_ for _ in ()).throw(ValueError("y" * 4000))\n\n'
                   + _FAILING_DEFINITIONS),
]


EXFILTRATE_ATTACKS = [
    Attack('exfiltrate_hidden_inputs', 'exfiltrate',
           'Put the inputs of each call in an exception message, an exception class name, a function name '
           'in the traceback, or the name of a returned type, hoping the feedback shows them.',
           _code('''
               import sys
               if inputs is None:
                   return False
               calls = getattr(sys, '_hostile_calls', 0)
               sys._hostile_calls = calls + 1
               secret = 'LEAK<' + repr(inputs.tolist())[:300] + '>LEAK'
               if calls % 2:
                   return type(secret, (), {})()  # "returned <its type name>"
               carrier_type = type(secret, (ValueError,), {})

               def carrier():
                   raise carrier_type(secret)

               carrier.__code__ = carrier.__code__.replace(co_name=secret)
               carrier()
           '''), (METHOD,), 'hidden inputs never appear in the feedback; ' + NO_POINTS,
           forbid_in_hidden=r'LEAK', strongest_only=True),
]


# --------------------------------------------------------------------------
# Remembering hidden inputs and showing them later in a public check (issue 10, class 4).
# Each snippet notes the request it is called for and the first inputs, keeps the note
# somewhere, and raises every note kept so far: a public check that came after a hidden
# case in the same sandbox would show the hidden case's note in full.
# --------------------------------------------------------------------------

_NOTE_THE_CALL = """
    import sys
    if inputs is None:
        return False
    frame, answering = sys._getframe(1), '?'
    while frame is not None:  # the runner's frame names the request being answered
        if isinstance(frame.f_locals.get('request_id'), str):
            answering = frame.f_locals['request_id']
            break
        frame = frame.f_back
    note = 'SEEN[%s]=%r' % (answering, inputs.ravel()[:2].tolist())
"""
_RAISE_THE_NOTES = """
    raise ValueError('I remember: ' + ' '.join(kept))
"""
#: A note of a hidden case (request ids name the case: tanh_fprop/fixed:edges/fprop).
_HIDDEN_NOTE = r'SEEN\[[^\]]*/fixed:(?!notebook/)'
_REMEMBERED = ('hidden inputs never appear in any feedback, public checks included; ' + NO_POINTS)
_ORDER_IN_PARENT = ('the parent sends every public request before the first hidden one, whatever the '
                    'isolation')


def _remembering(name: str, where: str, keep: str, **options) -> Attack:
    return Attack(name, 'exfiltrate',
                  'Remember the inputs of every call {0} and raise all of them in each later call, '
                  'hoping a public check (shown in full) comes after a hidden case.'.format(where),
                  _code(_NOTE_THE_CALL) + '\n' + _code(keep) + '\n' + _code(_RAISE_THE_NOTES),
                  (METHOD,), _REMEMBERED, expect=r'SEEN\[', forbid_anywhere=_HIDDEN_NOTE, **options)


REMEMBER_ATTACKS = [
    _remembering('remember_in_module_global', 'in a module global', """
        kept = globals().setdefault('_kept_notes', [])
        kept.append(note)
    """, strongest_only=True, why_strongest_only=_ORDER_IN_PARENT),
    _remembering('remember_in_class_attribute', 'in an attribute of mlp.layers.Layer', """
        from mlp.layers import Layer
        Layer.kept_notes = getattr(Layer, 'kept_notes', ()) + (note,)
        kept = Layer.kept_notes
    """, strongest_only=True, why_strongest_only=_ORDER_IN_PARENT),
    _remembering('remember_in_environment', 'in an environment variable', """
        import os
        os.environ['KEPT_NOTES'] = os.environ.get('KEPT_NOTES', '') + '|' + note
        kept = os.environ['KEPT_NOTES'].split('|')[1:]
    """, strongest_only=True, why_strongest_only=_ORDER_IN_PARENT),
    _remembering('remember_in_working_directory', 'in a file of the working directory', """
        with open('kept-notes', 'a') as handle:
            handle.write(note + '\\n')
        with open('kept-notes') as handle:
            kept = handle.read().split()
    """, strongest_only=True, why_strongest_only=_ORDER_IN_PARENT),
    _remembering('remember_in_tmp', 'in a file in /tmp', """
        path = '/tmp/kept-notes-$tag'
        with open(path, 'a') as handle:
            handle.write(note + '\\n')
        with open(path) as handle:
            kept = handle.read().split()
    """, held_at=FILE_SYSTEM_HIDDEN, unsafe_at=_WRITE_UNSAFE),
    _remembering('remember_in_a_child_process', 'in a forked process serving them on an abstract socket', """
        import os
        import signal
        import socket
        name = '\\0kept-notes-$tag'

        def talk(text):
            with socket.socket(socket.AF_UNIX) as client:
                client.settimeout(5)
                client.connect(name)
                client.sendall(text.encode())
                client.shutdown(socket.SHUT_WR)
                return b''.join(iter(lambda: client.recv(65536), b'')).decode()

        try:
            answer = talk(note)
        except OSError:
            server = socket.socket(socket.AF_UNIX)
            server.bind(name)
            server.listen(8)
            if os.fork() == 0:  # the keeper: stays in the sandbox's process group, ends within 60 s
                signal.alarm(60)
                notes = []
                try:
                    while True:
                        connection, _ = server.accept()
                        with connection:
                            notes.append(b''.join(iter(lambda: connection.recv(65536), b'')).decode())
                            connection.sendall(' '.join(notes).encode())
                finally:
                    os._exit(0)
            server.close()
            answer = talk(note)
        kept = [answer]
    """, held_at=PROCESSES_HIDDEN),
]


# --------------------------------------------------------------------------
# Issue 10, classes 2, 3 and 8: replies and words that the parent must bound and escape
# --------------------------------------------------------------------------

#: Marker of text a submission wants rendered; it must only ever appear inside code in the feedback.
RENDERED_MARKER = 'PWNED'

_PARENT_BOUNDS = ('the parent refuses the reply before reading it, whatever the isolation: only the '
                  'frames the child sends matter')

BOUND_ATTACKS = [
    Attack('flood_every_reply', 'bound',
           'Answer every fprop with a 128 MB array, hoping the grader holds them all (gigabytes per worker).',
           _code('''
               import numpy as np
               if inputs is None:
                   return False
               return np.zeros((4000, 4000))
           '''), (METHOD,), 'each reply is refused unread; ' + NO_POINTS,
           expect=r'malformed data|did not answer within|restarted',
           strongest_only=True, why_strongest_only=_PARENT_BOUNDS),
    Attack('flood_with_lists', 'bound',
           'Answer with a list of three 72 MB arrays, and with many small ones, to pass a per-array check.',
           _code('''
               import numpy as np
               import sys
               if inputs is None:
                   return False
               calls = getattr(sys, '_hostile_list_calls', 0)
               sys._hostile_list_calls = calls + 1
               if calls % 2:
                   return [np.zeros(8) for _ in range(200000)]
               return [np.zeros((3000, 3000))] * 3
           '''), (METHOD,), 'each reply is refused unread; ' + NO_POINTS,
           expect=r'malformed data|did not answer within|restarted',
           strongest_only=True, why_strongest_only=_PARENT_BOUNDS),
    Attack('unbuildable_shape_frame', 'bound',
           'Send the grader a reply frame declaring shape [2**62, 2**62, 0] (0 bytes, but no numpy array), '
           'then a header of unknown keys, to kill its reader thread.',
           _code('''
               import json
               import os
               import resource
               import struct
               import sys
               descriptor = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1
               request_id = None
               caller = sys._getframe(1)
               while caller is not None and request_id is None:
                   header = caller.f_locals.get('header')
                   if type(header) is dict and 'id' in header:
                       request_id = header['id']
                   caller = caller.f_back
               frames = [{'type': 'result', 'id': request_id, 'ok': True, 'returned': 'array', 'num_returned': 1,
                          'num_inputs': 0, 'arrays': [{'shape': [2 ** 62, 2 ** 62, 0], 'dtype': '<f8'}]},
                         {'type': 'result', 'id': request_id, 'ok': True, 'returned': 'array',
                          'num_returned': 1, 'num_inputs': 0, 'score': 10, 'arrays': []}]
               try:
                   for frame in frames:
                       data = json.dumps(frame).encode()
                       os.write(descriptor, struct.pack('<I', len(data)) + data)
               except OSError:
                   pass
               return False
           '''), (METHOD,), 'the request is "malformed data", the batch and the reader go on; ' + NO_POINTS,
           expect=r'malformed data|crash', strongest_only=True, why_strongest_only=_PARENT_BOUNDS),
    Attack('huge_finite_training_errors', 'bound',
           'Make every output enormous but finite, so that training errors and plots hold values near 1e300.',
           _code('''
               import numpy as np
               if inputs is None:
                   return False
               return np.tanh(inputs) * 1e150 + 1e280
           '''), (METHOD,), 'the feedback pages are written; ' + NO_POINTS, strongest_only=True,
           why_strongest_only='the values are judged and drawn in the parent, whatever the isolation'),
    Attack('markdown_in_messages', 'output',
           'Raise exceptions whose messages hold headings, a fake score line, an external image, raw HTML and '
           'a fence of backticks, hoping the Markdown and HTML feedback render them.',
           _code('''
               raise ValueError('```\\n\\n# Score: 10 / 10 PWNED\\n\\n**PWNED** ![x](http://198.51.100.1/PWNED.png) '
                                '<img src=x onerror=alert("PWNED")> [PWNED](javascript:alert(1)) `` ` ``')
           '''), PLACEMENTS, 'the words are shown as code, never rendered; ' + NO_POINTS, expect=r'ValueError',
           strongest_only=True, why_strongest_only='the feedback is written by the parent, whatever the isolation'),
]


# --------------------------------------------------------------------------
# The sandbox shows the student's world only, in every install layout (issue 10, class 5):
# installed packages (the grader's own, the reference mlp) and writable tmpfs mounts of bwrap's.
# tests/test_install_layouts.py runs the same kind of search in each layout.
# --------------------------------------------------------------------------

_PACKAGE_FOLDERS = _code("""
    import glob
    import os
    import sys
    folders = set($site_dirs)
    for root in (sys.base_prefix, os.path.dirname(os.path.dirname(os.__file__)), '/usr', '/usr/local', '/opt/*',
                 '/opt/conda', '/root/.pyenv/versions/*', '/home/*/.local', '/home/*/.pyenv/versions/*'):
        for pattern in ('lib*/python3*/*-packages', 'python3*/*-packages'):
            folders.update(glob.glob(os.path.join(root, pattern)))
    folders.update(glob.glob('/autograder/source*'))  # Gradescope's harness folder
""")

LAYOUT_ATTACKS = [
    Attack(
        'import_from_installed_packages', 'read',
        'Put every site-packages folder in view (and Gradescope\'s harness) on sys.path and import the '
        'reference mlp and the autograder from there.',
        _PACKAGE_FOLDERS + '\n' + _code("""
            import importlib.util
            import sys
            for folder in sorted(folders):
                for target in ('mlp/layers.py', 'harness/mlp/layers.py'):
                    try:
                        spec = importlib.util.spec_from_file_location('_stolen_layers', os.path.join(folder, target))
                        module = importlib.util.module_from_spec(spec)
                        spec.loader.exec_module(module)
                        if hasattr(module, 'TanhLayer'):
                            return True
                    except BaseException:
                        pass
                sys.path.insert(0, folder)
                try:
                    import autograder.course.spec
                    return True
                except BaseException:
                    pass
                finally:
                    sys.path.remove(folder)
                    for name in [name for name in sys.modules if name.split('.')[0] == 'autograder']:
                        del sys.modules[name]
            return False
        """),
        PLACEMENTS, NO_POINTS, held_at=FILE_SYSTEM_HIDDEN, combinable=True, exact=True),
    Attack(
        'find_installed_packages', 'read',
        'Look for anything installed besides numpy in the package folders in view: the specs, the '
        'grader\'s package, any distribution.',
        _PACKAGE_FOLDERS + '\n' + _code("""
            for folder in folders:
                try:
                    names = set(os.listdir(folder))
                except OSError:
                    continue
                if names - {'numpy', 'numpy.libs'}:
                    return True
                if glob.glob(os.path.join(folder, '*', 'course', 'specs', '*.json')):
                    return True
            return False
        """),
        PLACEMENTS, NO_POINTS, held_at=FILE_SYSTEM_HIDDEN, combinable=True, exact=True),
    Attack(
        'write_sandbox_root', 'write',
        'Write into the sandbox\'s root, /dev, /dev/shm and its own folders: tmpfs mounts of bwrap\'s that '
        'would have no size cap (they are the sandbox user\'s when the grader is not root).',
        _CREATE_NEW + _code("""
            written = False
            for folder in ('/', '/dev', '/dev/shm', '/sandbox', '/usr', '/etc'):
                written |= create(os.path.join(folder, 'mlp-hostile-$tag'))
            return written
        """),
        PLACEMENTS, 'only the capped /tmp and working directory are writable; ' + NO_POINTS,
        held_at=FILE_SYSTEM_HIDDEN, unsafe_at=_WRITE_UNSAFE, combinable=True, exact=True),
]


ATTACKS: tuple[Attack, ...] = tuple(
    PATCH_ATTACKS + RETURN_ATTACKS + INTROSPECT_ATTACKS + READ_ATTACKS + NETWORK_ATTACKS
    + WRITE_ATTACKS + DISRUPT_ATTACKS + PROTOCOL_ATTACKS + OUTPUT_ATTACKS + EXFILTRATE_ATTACKS
    + REMEMBER_ATTACKS + BOUND_ATTACKS + LAYOUT_ATTACKS)

BY_NAME = {attack.name: attack for attack in ATTACKS}


def skip_reason(attack: Attack, level: str, *, nproc_binds: bool, strongest: str) -> str | None:
    """Why ``attack`` is not run in the batch at ``level`` (None: it is run).

    Args:
        attack: The attack.
        level: An isolation level.
        nproc_binds: Whether RLIMIT_NPROC binds the child at ``level`` here.
        strongest: The strongest level available on this machine.
    """
    if level in attack.unsafe_at:
        return 'unsafe at {0}: {1}'.format(level, attack.unsafe_at[level])
    if attack.needs_nproc and not nproc_binds:
        return 'unsafe at {0}: {1}'.format(level, _NO_NPROC)
    if level not in attack.held_at:
        return ('not held at {0} (documented in SECURITY.md); the capability probes record it '
                'instead'.format(level))
    if attack.strongest_only and level != strongest:
        return 'run at the strongest level ({0}) only: {1}'.format(
            strongest, attack.why_strongest_only or 'the outcome is decided in the grading parent, '
                                                   'whatever the isolation')
    return None


# --------------------------------------------------------------------------
# Issue 10, classes 1, 7 and 8: the file system and the names are input too
# --------------------------------------------------------------------------
# These are not code: they are entries of the submissions folder. What happens to
# them is decided in the grading parent before any sandbox starts, so they are
# graded at the strongest level only (the isolation level plays no part).


@dataclass(frozen=True)
class FileCase:
    """One hostile entry of a submissions folder.

    Attributes:
        name: Identifier (test id).
        family: ``'files'`` (what a submission may be) or ``'names'`` (ids, escapes).
        summary: What it tries.
        entry: The entry's name in the submissions folder (str, or bytes for names
            that are not UTF-8).
        make: ``make(path, course_root, scratch, baseline_text)`` creates the entry
            at ``path`` (``scratch`` is a folder outside the submissions folder).
        student: The id its report must have.
        status: The report status it must have.
        expect: Regular expression the report's error or notes must match ('' for none).
        forbid: Regular expression the report's files must not match ('' for none).
    """

    name: str
    family: str
    summary: str
    entry: str | bytes
    make: object
    student: str
    status: str
    expect: str = ''
    forbid: str = ''


def _source_notebook(course_root):
    return sorted((course_root / 'source' / '03_multiple_layer_models').glob('*.ipynb'))[0]


def _link_to_source(path, course_root, scratch, baseline):
    path.symlink_to(_source_notebook(course_root))


def _relative_link_to_source(path, course_root, scratch, baseline):
    import os
    path.symlink_to(os.path.relpath(_source_notebook(course_root), path.parent))


def _link_to_dev_zero(path, course_root, scratch, baseline):
    path.symlink_to('/dev/zero')


def _link_to_fifo(path, course_root, scratch, baseline):
    import os
    fifo = scratch / 'pipe-{0}'.format(path.stem)
    os.mkfifo(fifo)
    path.symlink_to(fifo)


def _fifo(path, course_root, scratch, baseline):
    import os
    os.mkfifo(path)


def _link_to_folder(path, course_root, scratch, baseline):
    folder = scratch / 'private-{0}'.format(path.stem)
    folder.mkdir()
    (folder / 'other_student_secret.ipynb').write_text(baseline, encoding='utf-8')
    path.symlink_to(folder)


def _dangling_link(path, course_root, scratch, baseline):
    path.symlink_to(scratch / 'nowhere.ipynb')


def _link_to_a_copy_of_an_honest_file(path, course_root, scratch, baseline):
    copy = scratch / 'honest-copy.ipynb'
    copy.write_text(baseline, encoding='utf-8')
    path.symlink_to(copy)


def _copy_of_baseline(path, course_root, scratch, baseline):
    path.write_text(baseline, encoding='utf-8')


_LINK = r'symbolic link'

FILE_CASES: tuple[FileCase, ...] = (
    FileCase('link_to_the_source_notebook', 'files', 'A link to the assignment\'s source notebook (the solutions).',
             'link_source.ipynb', _link_to_source, 'link_source', 'rejected', _LINK),
    FileCase('relative_link_to_the_source', 'files', 'The same link, relative (../../source/...).',
             'link_relative.ipynb', _relative_link_to_source, 'link_relative', 'rejected', _LINK),
    FileCase('link_to_dev_zero', 'files', 'A link to /dev/zero (endless bytes).',
             'link_zero.ipynb', _link_to_dev_zero, 'link_zero', 'rejected', _LINK),
    FileCase('link_to_a_fifo', 'files', 'A link to a FIFO nobody writes (a read would block).',
             'link_fifo.ipynb', _link_to_fifo, 'link_fifo', 'rejected', _LINK),
    FileCase('fifo_as_submission', 'files', 'A FIFO named like a notebook.',
             'fifo_here.ipynb', _fifo, 'fifo_here', 'rejected', r'not a regular file'),
    FileCase('link_to_a_folder', 'files', 'A link to another folder, hoping its listing appears in the report.',
             'link_folder.ipynb', _link_to_folder, 'link_folder', 'rejected', _LINK,
             forbid=r'other_student_secret'),
    FileCase('dangling_link', 'files', 'A link to nothing.',
             'link_dangling.ipynb', _dangling_link, 'link_dangling', 'rejected', _LINK),
    FileCase('link_to_an_honest_copy', 'files', 'Even a link to a readable, honest notebook is not followed.',
             'link_honest.ipynb', _link_to_a_copy_of_an_honest_file, 'link_honest', 'rejected', _LINK),
    FileCase('named_like_the_class_summary', 'names', 'summary.ipynb, whose report would be summary.json.',
             'summary.ipynb', _copy_of_baseline, 'summary-2', 'graded'),
    FileCase('named_like_the_grade_sheet', 'names', 'GRADES.ipynb, against grades.csv on a case-blind disk.',
             'GRADES.ipynb', _copy_of_baseline, 'GRADES-2', 'graded'),
    FileCase('terminal_escapes_in_the_name', 'names', 'A file name that clears the screen and sets its title.',
             '\x1b[2J\x1b]0;PWNED\x07.ipynb', _copy_of_baseline, '2J_0_PWNED', 'graded'),
    FileCase('name_not_utf8', 'names', 'A file name whose bytes are not UTF-8.',
             b'\xff\xfePWNED.ipynb', _copy_of_baseline, 'PWNED', 'graded'),
    FileCase('formula_in_the_name', 'names', 'Ids a spreadsheet would run as formulas: +, -, @.',
             '+SUM(1)PWNED.ipynb', _copy_of_baseline, '+SUM_1_PWNED', 'graded'),
    FileCase('at_formula_in_the_name', 'names', 'An id starting with @.',
             '@cmdPWNED.ipynb', _copy_of_baseline, '@cmdPWNED', 'graded'),
    FileCase('markdown_in_the_name', 'names', 'Backticks, a heading and an image in the file name.',
             '`# PWNED ![x](http:x) `.ipynb', _copy_of_baseline, 'PWNED_x_http_x', 'graded'),
)

FILE_CASES_BY_NAME = {case.name: case for case in FILE_CASES}
