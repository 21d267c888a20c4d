"""Tests of autograder.demo: the example class and the submission helpers.

The whole demo (release + grading, through the console script) runs in
tests/test_cli.py; here the example notebooks are checked, and the four whose
outcome is specific to the demo are graded.
"""

import json
from pathlib import Path

import nbformat
import pytest

from autograder import batch, demo
from autograder.submission.extract import extract_code
from autograder.course.spec import load_spec

REPO_ROOT = Path(__file__).resolve().parents[1]
LAB3 = '03_multiple_layer_models'
LAB5 = '05_activation_functions'
STUDENTS = ['alice_solution', 'bob_untouched', 'carol_tanh_bprop_slip', 'dave_relu_abs',
            'erin_relu_forgot_grads', 'frank_moved_cells', 'mallory_hostile', 'oscar_not_a_notebook']


@pytest.fixture(scope='module')
def example_class(tmp_path_factory):
    folder = tmp_path_factory.mktemp('demo-class')
    paths = demo.write_example_submissions(REPO_ROOT, folder)
    return folder, paths


def _read(folder, name):
    return nbformat.read(str(folder / '{0}.ipynb'.format(name)), as_version=4)


def test_the_example_class(example_class):
    folder, paths = example_class
    assert sorted(p.stem for p in paths) == STUDENTS
    assert all(p.parent == folder and p.suffix == '.ipynb' for p in paths)
    with pytest.raises(ValueError):
        json.loads((folder / 'oscar_not_a_notebook.ipynb').read_text())
    for name in STUDENTS[:-1]:
        nbformat.validate(_read(folder, name))


def test_mistakes_are_later_cells_on_top_of_the_solution(example_class):
    folder, _ = example_class
    solution = _read(folder, 'alice_solution')
    for name, class_name in (('carol_tanh_bprop_slip', 'TanhLayer'), ('dave_relu_abs', 'ReluLayer'),
                             ('erin_relu_forgot_grads', 'ReluLayer')):
        notebook = _read(folder, name)
        assert len(notebook.cells) == len(solution.cells) + 1
        assert notebook.cells[-1].source.startswith('class {0}({0}):'.format(class_name))
        assert [c.source for c in notebook.cells[:-1]] == [c.source for c in solution.cells]


def test_the_untouched_notebook_is_the_release(example_class):
    folder, _ = example_class
    release = demo.released_notebook(REPO_ROOT, LAB3)
    assert [c.source for c in _read(folder, 'bob_untouched').cells] == [c.source for c in release.cells]


def test_the_moved_notebook_has_no_nbgrader_metadata_and_keeps_experiments(example_class):
    folder, _ = example_class
    notebook = _read(folder, 'frank_moved_cells')
    assert not any('nbgrader' in cell.metadata for cell in notebook.cells)
    extraction = extract_code(notebook, ['TanhLayer', 'ReluLayer'])
    assert set(extraction.found) == {'TanhLayer', 'ReluLayer'}
    assert any(item.reason == 'training loop' or 'loop' in item.reason for item in extraction.skipped)


@pytest.mark.parametrize('assignment', [LAB3, LAB5])
def test_solution_source_is_the_model_answer_without_markers(assignment):
    source = demo.solution_source(REPO_ROOT, assignment)
    assert 'BEGIN SOLUTION' not in source and 'END SOLUTION' not in source
    spec = load_spec(assignment)
    for class_name in spec.classes:
        assert 'class {0}('.format(class_name) in source
    compile(source, 'solution', 'exec')


@pytest.mark.parametrize('assignment', [LAB3, LAB5])
def test_submission_notebook_fills_the_released_solution_cell(assignment):
    release = demo.released_notebook(REPO_ROOT, assignment)
    notebook = demo.submission_notebook(REPO_ROOT, assignment, 'x = 1')
    solution = demo.solution_source(REPO_ROOT, assignment)
    changed = [i for i, (a, b) in enumerate(zip(release.cells, notebook.cells)) if a.source != b.source]
    assert len(changed) == 1 and notebook.cells[changed[0]].source == solution
    assert 'YOUR CODE HERE' in release.cells[changed[0]].source
    assert notebook.cells[-1].source == 'x = 1' and len(notebook.cells) == len(release.cells) + 1


def test_the_demo_specific_students_get_what_the_demo_promises(example_class, mnist_dir, tmp_path,
                                                               monkeypatch):
    monkeypatch.setenv('MLP_DATA_DIR', str(mnist_dir))
    folder, _ = example_class
    spec = load_spec(LAB3)
    wanted = ['erin_relu_forgot_grads', 'frank_moved_cells', 'mallory_hostile', 'oscar_not_a_notebook']
    submissions = batch.find_submissions([folder / '{0}.ipynb'.format(name) for name in wanted], spec.name)
    reports, summary = batch.grade_batch(spec, submissions, tmp_path, workers=2, progress=False)
    by_student = {report.student: report for report in reports}
    assert summary['graded'] == 3 and summary['rejected'] == 1
    assert by_student['frank_moved_cells'].score == pytest.approx(10.0)
    assert by_student['mallory_hostile'].score == 0.0
    erin = by_student['erin_relu_forgot_grads'].item_scores()
    assert erin['relu_bprop'] == 0.0 and erin['relu_fprop'] == 2.0
    assert erin['tanh_fprop'] == 2.0 and erin['tanh_bprop'] == 2.0 and erin['tanh_training'] == 1.0
    diagnoses = {t.diagnosis for t in by_student['erin_relu_forgot_grads'].tests}
    assert any('without multiplying by grads_wrt_outputs' in d for d in diagnoses)
    assert by_student['oscar_not_a_notebook'].status == 'rejected'


def test_the_example_class_is_the_same_file_for_file_on_every_run(example_class, tmp_path):
    folder, paths = example_class
    again = demo.write_example_submissions(REPO_ROOT, tmp_path)
    assert [p.name for p in again] == [p.name for p in paths]
    for first, second in zip(paths, again):
        assert first.read_bytes() == second.read_bytes(), first.name  # cell ids included
    ids = [cell.id for cell in _read(folder, 'frank_moved_cells').cells]
    assert len(set(ids)) == len(ids)


def test_demo_course_copies_what_a_release_reads_into_the_demo_folder(tmp_path):
    course = demo.demo_course(REPO_ROOT, tmp_path / 'out')
    assert course == tmp_path / 'out' / 'course'
    assert (course / 'nbgrader_config.py').is_file() and (course / 'reference' / 'mlp' / 'layers.py').is_file()
    assert sorted(p.name for p in (course / 'source').iterdir()) == [LAB3]
    assert not (course / 'release').exists()
