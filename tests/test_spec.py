"""Tests of autograder.course.spec: grading specs, and their agreement with the source notebooks."""

import json
import shutil

import nbformat
import pytest

from autograder.course import spec as spec_module
from autograder.course.spec import (
    AssignmentSpec, Item, SpecError, default_course_root, list_assignments, load_spec,
    notebook_points)

LAYER_LABS = ['03_multiple_layer_models', '05_activation_functions']
ASSIGNMENTS = ['02_single_layer_models', '03_multiple_layer_models', '04_regularisation',
               '05_activation_functions', '06_learning_rules']


def test_every_assignment_has_a_spec_in_course_order():
    known = list_assignments()
    assert known == sorted(known) and set(ASSIGNMENTS) <= set(known)


@pytest.mark.parametrize('name', ASSIGNMENTS)
def test_every_target_has_a_registered_kind_and_every_item_plans(name):
    from autograder.checks import plan, registry
    spec = load_spec(name)
    assert set(spec.targets) == set(spec.classes)
    for target in spec.targets.values():
        assert target.kind in registry.KINDS
    for item in spec.items:
        plans = plan.plan_item(spec, item)
        assert (plans == []) == ('manual' in item.checks)


@pytest.mark.parametrize('name', ASSIGNMENTS)
def test_points_and_ids_come_from_the_source_notebook(name):
    spec = load_spec(name)
    assert isinstance(spec, AssignmentSpec)
    points = notebook_points(spec.source_notebook)
    assert sorted(item.grade_id for item in spec.items) == sorted(points)
    assert {item.grade_id: item.points for item in spec.items} == points
    assert spec.max_score == pytest.approx(sum(points.values()))
    assert spec.student_mlp_dir == spec.course_root / 'release' / name


@pytest.mark.parametrize('name', LAYER_LABS)
def test_every_graded_class_is_checked_by_fixed_cases_and_a_training_run(name):
    spec = load_spec(name)
    for class_name in spec.classes:
        targets = {item.target: item for item in spec.items}
        assert class_name in targets, class_name
        assert targets[class_name].checks == ('training',)
        for method in ('fprop', 'bprop'):
            checks = targets['{0}.{1}'.format(class_name, method)].checks
            assert any(check.startswith('fixed:') and spec.cases[check[6:]].public for check in checks)
            assert any(check.startswith('fixed:') and not spec.cases[check[6:]].public for check in checks)
    manual = [item for item in spec.items if item.checks == ('manual',)]
    assert len(manual) == 1


def test_lab3_numbers():
    spec = load_spec('03_multiple_layer_models')
    assert spec.max_score == 13.0
    assert sorted(spec.classes) == ['ReluLayer', 'TanhLayer']
    assert spec.kink_at_zero == ('ReluLayer',)
    edges = spec.cases['edges']
    assert not edges.public and edges.inputs[0][0] == 0.0 and edges.bprop_inputs[0][0] == 0.0
    random_case = spec.cases['random']
    assert random_case.inputs is None and random_case.shape == (6, 7) and random_case.seed == 20161006
    assert spec.training.error_rtol == 0.01  # the default when the spec does not say


def test_item_class_and_method():
    assert Item('a', 'TanhLayer.bprop', 2., ('gradcheck',)).class_name == 'TanhLayer'
    assert Item('a', 'TanhLayer.bprop', 2., ('gradcheck',)).method == 'bprop'
    assert Item('a', 'TanhLayer', 1., ('training',)).method is None


def test_unknown_assignment_names_the_known_ones():
    with pytest.raises(SpecError, match="unknown assignment 'lab99'.*03_multiple_layer_models"):
        load_spec('lab99')


def test_course_root_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv('MLP_COURSE_ROOT', str(tmp_path))
    assert default_course_root() == tmp_path.resolve()
    monkeypatch.delenv('MLP_COURSE_ROOT')
    assert (default_course_root() / 'autograder' / 'course' / 'spec.py').is_file()


# A course copy whose notebook or spec is edited --------------------------------------


@pytest.fixture
def course(tmp_path):
    """A course root holding a copy of lab 3's source notebook."""
    name = '03_multiple_layer_models'
    real = load_spec(name)
    (tmp_path / 'source' / name).mkdir(parents=True)
    shutil.copy(real.source_notebook, tmp_path / 'source' / name / real.notebook)
    return tmp_path, name, tmp_path / 'source' / name / real.notebook


def _edit_notebook(path, edit):
    notebook = nbformat.read(str(path), as_version=4)
    for cell in notebook.cells:
        meta = cell.metadata.get('nbgrader', {})
        if meta.get('grade_id'):
            edit(meta)
    nbformat.write(notebook, str(path))


def test_points_changed_in_the_notebook_change_the_spec(course):
    root, name, notebook = course

    def double(meta):
        if meta['grade_id'] == 'tanh_bprop':
            meta['points'] = 4
    _edit_notebook(notebook, double)
    spec = load_spec(name, root)
    assert {item.grade_id: item.points for item in spec.items}['tanh_bprop'] == 4.0
    assert spec.max_score == 15.0


def test_notebook_and_spec_must_name_the_same_items(course):
    root, name, notebook = course

    def rename(meta):
        if meta['grade_id'] == 'relu_bprop':
            meta['grade_id'] = 'relu_backward'
    _edit_notebook(notebook, rename)
    with pytest.raises(SpecError, match=r"only in spec \['relu_bprop'\], only in notebook \['relu_backward'\]"):
        load_spec(name, root)


def test_missing_source_notebook(tmp_path):
    with pytest.raises(SpecError, match='source notebook .* is missing'):
        load_spec('03_multiple_layer_models', tmp_path)


@pytest.fixture
def edited_spec(course, monkeypatch, tmp_path):
    """Returns edit(change) -> load_spec of a copy of lab 3's spec with `change` applied."""
    root, name, _ = course
    spec_dir = tmp_path / 'specs'
    spec_dir.mkdir()
    raw = json.loads((spec_module.SPEC_DIR / '{0}.json'.format(name)).read_text())
    monkeypatch.setattr(spec_module, 'SPEC_DIR', spec_dir)

    def edit(change):
        data = json.loads(json.dumps(raw))
        change(data)
        (spec_dir / '{0}.json'.format(name)).write_text(json.dumps(data))
        return load_spec(name, root)
    return edit


def _item(data, grade_id):
    return next(item for item in data['items'] if item['grade_id'] == grade_id)


def test_the_unedited_copy_loads(edited_spec):
    assert edited_spec(lambda data: None).max_score == 13.0


@pytest.mark.parametrize('change, message', [
    (lambda d: _item(d, 'tanh_fprop')['checks'].append('fuzz'), "unknown check 'fuzz'"),
    (lambda d: _item(d, 'tanh_fprop')['checks'].append('fixed:nowhere'), "unknown case 'fixed:nowhere'"),
    (lambda d: _item(d, 'tanh_fprop')['checks'].append('gradcheck'), "check 'gradcheck' cannot test TanhLayer.fprop"),
    (lambda d: _item(d, 'tanh_bprop').update(target='TanhLayer.backward'), 'cannot test TanhLayer.backward'),
    (lambda d: d['classes'].pop('ReluLayer'), 'targets ReluLayer, which is not listed'),
    (lambda d: _item(d, 'deeper_models_answer')['checks'].append('property'), 'cannot have automatic checks'),
    (lambda d: _item(d, 'tanh_training')['checks'].append('property'), 'only "training" checks a class'),
    (lambda d: _item(d, 'tanh_fprop').update(checks=[]), 'has no checks'),
    (lambda d: d.update(assignment='05_activation_functions'), "is for assignment '05_activation_functions'"),
])
def test_a_spec_the_planner_could_not_run_is_refused_when_loaded(edited_spec, change, message):
    with pytest.raises(SpecError, match=message):
        edited_spec(change)


def test_duplicate_items_are_refused(edited_spec):
    def duplicate(data):
        data['items'].append(dict(_item(data, 'tanh_fprop')))
    with pytest.raises(SpecError, match='disagree'):
        edited_spec(duplicate)
