"""The grading spec of an assignment: what is checked, and for how many points.

TRUSTED. A spec is data (`autograder/course/specs/<assignment>.json`): the classes
under test and their constructor arguments, named input cases, and for every
graded item its target and the checks behind it. Grade ids and points come
from the assignment's nbgrader source notebook, the single source of truth;
the spec must name exactly the notebook's graded items.

Check names in the spec:
    'fixed:<case>'  compare with the reference on a named input case
    'gradcheck'     central finite differences against bprop / grads_wrt_params
    'property'      output shape, inputs left unmodified, finite outputs for
                    large inputs, batch-size independence
    'training'      short seeded MNIST run of a model using only this class
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
# The check kinds `checks.ItemPlanner` can run on each layer method.
METHOD_CHECKS = {
    'fprop': ('fixed', 'property'),
    'bprop': ('fixed', 'gradcheck', 'property'),
    'grads_wrt_params': ('fixed', 'gradcheck'),
}


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
    """

    name: str
    public: bool
    inputs: tuple | None = None
    bprop_inputs: tuple | None = None
    grads_wrt_outputs: tuple | None = None
    seed: int = 0
    shape: tuple = (4, 5)
    scale: float = 3.0


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
    classes: dict = field(hash=False)
    kink_at_zero: tuple[str, ...]
    cases: dict = field(hash=False)
    items: tuple[Item, ...]
    training: TrainingSpec

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
    cases = {case_name: _case(case_name, data) for case_name, data in raw['cases'].items()}
    items = tuple(Item(item['grade_id'], item['target'], points[item['grade_id']],
                       tuple(item['checks'])) for item in raw['items'])
    if raw.get('assignment', name) != name:
        raise SpecError('spec {0} says it is for assignment {1!r}'.format(path.name, raw['assignment']))
    classes = raw.get('classes', {})
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
        elif item.class_name not in classes:
            raise SpecError('item {0} targets {1}, which is not listed under "classes"'.format(
                item.grade_id, item.class_name))
        elif item.method is None and set(item.checks) != {'training'}:
            raise SpecError('item {0} targets a whole class; only "training" checks a class'.format(
                item.grade_id))
        elif item.method is not None:
            allowed = METHOD_CHECKS.get(item.method, ())
            for check in item.checks:
                if check.split(':', 1)[0] not in allowed:
                    raise SpecError('item {0}: check {1!r} cannot test {2} (it can: {3})'.format(
                        item.grade_id, check, item.target, ', '.join(allowed) or 'nothing'))
    return AssignmentSpec(
        name=name, notebook=raw['notebook'], course_root=course_root,
        classes=classes, kink_at_zero=tuple(raw.get('kink_at_zero', ())),
        cases=cases, items=items, training=TrainingSpec(**raw['training']))


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
                scale=float(data.get('scale', 3.0)))
