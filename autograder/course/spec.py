"""The grading spec of an assignment: what is checked, and for how many points.

TRUSTED. A spec is data (`autograder/course/specs/<assignment>.json`): the
targets under test (classes and functions, each of a *kind*), named input
cases, and for every graded item its target and the checks behind it. Grade
ids and points come from the assignment's nbgrader source notebook, the
single source of truth; the spec must name exactly the notebook's graded
items.

Targets. ``classes`` and ``functions`` map a name to an entry
``{"kind": ..., "kwargs": {...}, ...}`` (an entry without ``kind`` is the
older form: the constructor kwargs of a ``layer``). Item targets are
``Class.method`` (``Class.__call__`` for dunders), a function's name, or
``Class`` for whole-class (training) checks. Each kind is one module of
`autograder.checks` registered in `autograder.checks.registry`, which says
which checks apply to which method:

    layer             fprop: fixed, property; bprop: fixed, gradcheck,
                      property; grads_wrt_params: fixed, gradcheck. Optional
                      ``params`` given by the spec (seeded U(-scale, scale) or
                      explicit arrays, set as ``instance.params``) and
                      ``input_shape`` of any rank (4-D convolution inputs).
    stochastic_layer  fprop: fixed (the deterministic mode, stochastic=False,
                      against the reference), property (outputs are the
                      inputs or 0; the kept fraction on 50,000 inputs is
                      within a Hoeffding bound of incl_prob whose false-fail
                      rate is below 1e-7; shape; inputs untouched); bprop:
                      fixed and property (fprop then bprop on one instance:
                      the gradient is zero exactly where the outputs were).
                      Any way of drawing the mask is accepted. A case may
                      set other constructor kwargs (``"layer": {"kwargs"}``)
                      and ask that the mask be shared across the batch
                      exactly when the reference's is (``"mask_sharing"``).
    function          fixed (returned values, or the arguments after the call
                      for functions that update in place), property (shape,
                      arguments untouched, batch-size independence).
    error             __call__: fixed, property (a scalar; the batch mean:
                      duplicating the batch keeps the value; arguments
                      untouched); grad: fixed, gradcheck (central differences
                      of the student's own __call__, else the reference),
                      property (shape, arguments untouched, batch mean).
    penalty           __call__: fixed, property; grad: fixed, gradcheck,
                      property (shape, parameter untouched).
    learning_rule     update_params: fixed (a case is a sequence: initialise,
                      then update_params per step with reset() after listed
                      steps; parameters compared after every step), property
                      (parameters updated in place, gradients untouched,
                      reset clears the state).
    scheduler         update_learning_rule: fixed (the learning rate set on a
                      GradientDescentLearningRule for every epoch of a run).
    layer, stochastic_layer, penalty, learning_rule, scheduler
                      Class: training (a short seeded MNIST run using only
                      the student's piece, against the reference's same run;
                      `autograder.checks.training`).

Keys of a target entry: ``kind``; ``kwargs`` (constructor arguments;
stochastic layers also get ``rng``); ``reference`` (dotted path of the
reference, by default ``mlp.<module of the kind>.<Name>``; required for
functions, which may also live in `autograder.course.reference_functions`);
``params`` and ``input_shape`` (layers); ``training_layers`` (the model of a
training run, ``"class": "$target"`` standing for the student's class);
``batch_axis_args`` (functions); ``max_ties`` (a pooling layer: ``"any_single_maximum"``
accepts the whole window gradient on any one of tied maxima, `autograder.checks.ties`).
Each kind reads its own fields of a case
(arrays of a layer case, ``outputs``/``targets`` of an error case,
``parameter`` of a penalty case, ``params``/``grads``/``reset_after`` or
``param_shapes``/``num_steps`` of a learning-rule sequence, ``num_epochs`` of
a scheduler run, ``args`` or ``arg_shapes`` of a function call).

Check names in the spec:
    'fixed:<case>'  compare with the reference on a named case (each kind
                    reads its own fields of the case; ``public`` cases are
                    the notebook's visible ones)
    'gradcheck'     central finite differences against the derivative
    'property'      the kind's properties (above)
    'training'      short seeded MNIST run of a model using only this target
    'manual'        written answer, graded by a person (reported 'pending')
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

SPEC_DIR = Path(__file__).resolve().parent / 'specs'
CHECK_NAMES = ('fixed', 'gradcheck', 'property', 'training', 'manual')
DEFAULT_KIND = 'layer'  # the kind of a `classes` entry written in the older form (bare kwargs)
TARGET_KEYS = ('kind', 'kwargs', 'params', 'input_shape', 'reference', 'training_layers',
               'batch_axis_args', 'max_ties')


class SpecError(Exception):
    """The assignment is unknown or its spec disagrees with its source notebook."""


@dataclass(frozen=True)
class Case:
    """A named set of inputs for fixed checks.

    Attributes:
        name: The case name used in check names ('notebook', 'edges', ...).
        public: Whether inputs and values may be shown to students.
        inputs: Fixed fprop inputs, or None for a random case.
        bprop_inputs: Different inputs used when scoring bprop (so the
            reference outputs passed to bprop never answer an fprop case).
        grads_wrt_outputs: Fixed output gradients, or None for random ones.
        seed, shape, scale: For random cases: U(-scale, scale) of `shape`.
        data: The case's whole JSON object; each target kind reads the fields
            it needs from it (see the module docstring).
    """

    name: str
    public: bool
    inputs: tuple | None = None
    bprop_inputs: tuple | None = None
    grads_wrt_outputs: tuple | None = None
    seed: int = 0
    shape: tuple = (4, 5)
    scale: float = 3.0
    data: dict = field(default_factory=dict, hash=False, compare=False)

    def array(self, key: str):
        """The case's field `key` as a float64 array, or None when absent."""
        import numpy as np
        value = self.data.get(key)
        return None if value is None else np.array(value, dtype=float)


@dataclass(frozen=True)
class Target:
    """A class or function under test, and how to build and judge it.

    Attributes:
        name: The class or function name the notebook defines.
        kind: The registered target kind (`autograder.checks.registry`).
        kwargs: Constructor keyword arguments (plain JSON).
        options: The entry's other fields (``params``, ``input_shape``,
            ``reference``, ``training_layers``, ``batch_axis_args``).
    """

    name: str
    kind: str
    kwargs: dict = field(default_factory=dict, hash=False)
    options: dict = field(default_factory=dict, hash=False)

    def option(self, key: str, default=None):
        value = self.options.get(key)
        return default if value is None else value


@dataclass(frozen=True)
class Item:
    """One graded item: an nbgrader grade id with its points and checks."""

    grade_id: str
    target: str
    points: float
    checks: tuple[str, ...]

    @property
    def class_name(self) -> str:
        return self.target.split('.')[0]

    @property
    def method(self) -> str | None:
        parts = self.target.split('.')
        return parts[1] if len(parts) > 1 else None


@dataclass(frozen=True)
class TrainingSpec:
    """The short MNIST run behind 'training' checks (see `checks.training`)."""

    seed: int
    hidden_dim: int
    num_train: int
    num_eval: int
    num_epochs: int
    batch_size: int
    learning_rate: float
    init_scale: float
    accuracy_tolerance: float
    error_rtol: float = 0.01  # per-epoch training error vs the reference run, relative


@dataclass(frozen=True)
class AssignmentSpec:
    """Everything needed to grade one assignment."""

    name: str
    notebook: str
    course_root: Path
    classes: dict = field(hash=False)  # every target name (classes and functions) -> kwargs
    kink_at_zero: tuple[str, ...]
    cases: dict = field(hash=False)
    items: tuple[Item, ...]
    training: TrainingSpec
    targets: dict = field(default_factory=dict, hash=False)  # name -> Target

    @property
    def max_score(self) -> float:
        return float(sum(item.points for item in self.items))

    @property
    def student_mlp_dir(self) -> Path:
        """Directory containing the student copy of `mlp` for this assignment."""
        return self.course_root / 'release' / self.name

    @property
    def source_notebook(self) -> Path:
        return self.course_root / 'source' / self.name / self.notebook

    def init_kwargs(self, class_name: str) -> dict:
        return dict(self.classes.get(class_name, {}))

    def target(self, name: str) -> Target:
        """The target entry of a class or function name (KeyError if not listed)."""
        return self.targets[name]


def default_course_root() -> Path:
    """The course directory: $MLP_COURSE_ROOT, else the checkout this package is in."""
    if os.environ.get('MLP_COURSE_ROOT'):
        return Path(os.environ['MLP_COURSE_ROOT']).resolve()
    return Path(__file__).resolve().parents[2]


def list_assignments() -> list[str]:
    """Names of the assignments that have a grading spec."""
    return sorted(path.stem for path in SPEC_DIR.glob('*.json'))


def notebook_points(notebook_path: Path) -> dict[str, float]:
    """Reads grade id -> points from the nbgrader metadata of a source notebook."""
    notebook = nbformat.read(str(notebook_path), as_version=4)
    points = {}
    for cell in notebook.cells:
        meta = cell.get('metadata', {}).get('nbgrader', {})
        if meta.get('grade') or meta.get('task'):
            points[meta['grade_id']] = float(meta.get('points', 0))
    return points


def load_spec(name: str, course_root: Path | None = None) -> AssignmentSpec:
    """Loads an assignment's spec and takes its points from the source notebook.

    Raises:
        SpecError: Unknown assignment, or spec and notebook disagree on items.
    """
    course_root = Path(course_root) if course_root else default_course_root()
    path = SPEC_DIR / '{0}.json'.format(name)
    if not path.is_file():
        raise SpecError('unknown assignment {0!r}; known: {1}'.format(
            name, ', '.join(list_assignments()) or 'none'))
    raw = json.loads(path.read_text(encoding='utf-8'))
    notebook_path = course_root / 'source' / name / raw['notebook']
    if not notebook_path.is_file():
        raise SpecError('source notebook {0} is missing'.format(notebook_path))
    points = notebook_points(notebook_path)
    spec_ids = [item['grade_id'] for item in raw['items']]
    if set(spec_ids) != set(points) or len(spec_ids) != len(set(spec_ids)):
        raise SpecError(
            'spec {0} and notebook {1} disagree on graded items: only in spec {2}, '
            'only in notebook {3}'.format(path.name, notebook_path.name,
                                          sorted(set(spec_ids) - set(points)),
                                          sorted(set(points) - set(spec_ids))))
    if raw.get('assignment', name) != name:
        raise SpecError('spec {0} says it is for assignment {1!r}'.format(path.name, raw['assignment']))
    return spec_from_data(raw, name, course_root, points, path.name)


def spec_from_data(raw: dict, name: str, course_root: Path, points: dict[str, float],
                   spec_name: str = 'the spec') -> AssignmentSpec:
    """Builds and validates a spec from its JSON data and the points of its items.

    Raises:
        SpecError: The data names unknown kinds, cases or checks, or a check
            its target's kind cannot run.
    """
    cases = {case_name: _case(case_name, data) for case_name, data in raw['cases'].items()}
    items = tuple(Item(item['grade_id'], item['target'], points[item['grade_id']],
                       tuple(item['checks'])) for item in raw['items'])
    targets = _targets(raw, spec_name)
    from autograder.checks import registry  # the kinds say which checks fit which method
    for item in items:
        if not item.checks:
            raise SpecError('item {0} has no checks'.format(item.grade_id))
        for check in item.checks:
            kind = check.split(':', 1)[0]
            if kind not in CHECK_NAMES:
                raise SpecError('item {0} names unknown check {1!r} (known: {2})'.format(
                    item.grade_id, check, ', '.join(CHECK_NAMES)))
            if kind == 'fixed' and check.split(':', 1)[1] not in cases:
                raise SpecError('item {0} names unknown case {1!r}'.format(item.grade_id, check))
        if 'manual' in item.checks:
            if len(item.checks) > 1:
                raise SpecError('manual item {0} cannot have automatic checks too'.format(item.grade_id))
            continue
        if item.class_name not in targets:
            raise SpecError('item {0} targets {1}, which is not listed under "classes" or '
                            '"functions"'.format(item.grade_id, item.class_name))
        target_kind = targets[item.class_name].kind
        allowed = registry.allowed_checks(target_kind, item.method)
        for check in item.checks:
            if check.split(':', 1)[0] not in allowed:
                if item.method is None and target_kind != 'function':
                    raise SpecError('item {0} targets a whole class; only "training" checks a '
                                    'class'.format(item.grade_id))
                raise SpecError('item {0}: check {1!r} cannot test {2} (a {3}; it can: {4})'.format(
                    item.grade_id, check, item.target, target_kind, ', '.join(allowed) or 'nothing'))
    return AssignmentSpec(
        name=name, notebook=raw['notebook'], course_root=course_root,
        classes={name: dict(target.kwargs) for name, target in targets.items()},
        kink_at_zero=tuple(raw.get('kink_at_zero', ())),
        cases=cases, items=items, training=TrainingSpec(**raw['training']), targets=targets)


def _targets(raw: dict, spec_name: str) -> dict:
    """The spec's `classes` and `functions` entries as Targets (see the module docstring)."""
    from autograder.checks import registry
    targets = {}
    for section, default_kind in (('classes', DEFAULT_KIND), ('functions', 'function')):
        entries = raw.get(section, {})
        if not isinstance(entries, dict):
            raise SpecError('{0}: "{1}" must be an object'.format(spec_name, section))
        for name, entry in entries.items():
            if not isinstance(entry, dict):
                raise SpecError('{0}: entry {1!r} must be an object'.format(spec_name, name))
            if name in targets:
                raise SpecError('{0}: {1} is listed twice'.format(spec_name, name))
            if 'kind' not in entry and section == 'classes':
                entry = {'kind': DEFAULT_KIND, 'kwargs': entry}  # the older form: bare kwargs
            kind = entry.get('kind', default_kind)
            if kind not in registry.KINDS:
                raise SpecError('{0}: {1} has unknown kind {2!r} (known: {3})'.format(
                    spec_name, name, kind, ', '.join(sorted(registry.KINDS))))
            unknown = sorted(set(entry) - set(TARGET_KEYS))
            if unknown:
                raise SpecError('{0}: {1} has unknown keys {2} (known: {3})'.format(
                    spec_name, name, unknown, ', '.join(TARGET_KEYS)))
            kwargs = entry.get('kwargs') or {}
            if not isinstance(kwargs, dict):
                raise SpecError('{0}: the kwargs of {1} must be an object'.format(spec_name, name))
            options = {key: value for key, value in entry.items() if key not in ('kind', 'kwargs')}
            target = Target(name=name, kind=kind, kwargs=dict(kwargs), options=options)
            problem = registry.KINDS[kind].entry_problem(target)
            if problem:
                raise SpecError('{0}: {1}: {2}'.format(spec_name, name, problem))
            targets[name] = target
    return targets


def _as_tuple(value):
    if value is None:
        return None
    return tuple(_as_tuple(v) if isinstance(v, list) else v for v in value)


def _case(name: str, data: dict) -> Case:
    return Case(name=name, public=bool(data.get('public', False)),
                inputs=_as_tuple(data.get('inputs')),
                bprop_inputs=_as_tuple(data.get('bprop_inputs')),
                grads_wrt_outputs=_as_tuple(data.get('grads_wrt_outputs')),
                seed=int(data.get('seed', 0)), shape=tuple(data.get('shape', (4, 5))),
                scale=float(data.get('scale', 3.0)), data=dict(data))
