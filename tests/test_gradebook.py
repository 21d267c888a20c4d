"""The whole nbgrader workflow on top of our grades (autograder.outputs.gradebook).

In a temporary course: `nbgrader generate_assignment` (with the database) on our
source notebook, submissions in `submitted/<student>/<assignment>/`,
`mlp-autograde grade --gradebook`, then nbgrader's own tools: `nbgrader export`
must report our scores, formgrader's API must see the submissions (written
answers waiting for a person), manual grades must survive a re-run, and
`nbgrader generate_feedback` must render our verdicts. A re-run that grades
nothing new changes nothing in the gradebook, and a renamed notebook still
gets its folder's submission time and the course's late penalty.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import cli
from autograder.outputs.gradebook import (GradebookError, check_gradebook_matches, find_course_root, preflight,
                                  submission_owner)
from autograder.results import Report
from autograder.course.spec import load_spec

pytest.importorskip('nbgrader')
from nbgrader.api import Gradebook  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = '03_multiple_layer_models'
NOTEBOOK = '03_Multiple_layer_models'
MANUAL = 'deeper_models_answer'
DUE_DATE = '2026-11-21 17:00:00 UTC'
TANH_BPROP_SLIP = '''class TanhLayer(TanhLayer):
    def bprop(self, inputs, outputs, grads_wrt_outputs):
        return grads_wrt_outputs * (1. - outputs)
'''


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """Runs the nbgrader command of this environment in the course folder."""
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get('PATH', '')]))
    done = subprocess.run([str(Path(sys.executable).parent / 'nbgrader'), *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def solution_code() -> str:
    source = nbformat.read(str(REPO_ROOT / 'source' / ASSIGNMENT / (NOTEBOOK + '.ipynb')), as_version=4)
    for cell in source.cells:
        if cell.get('metadata', {}).get('nbgrader', {}).get('grade_id') == 'tanh_relu_solution':
            return re.sub(r'^\s*### (BEGIN|END) SOLUTION\s*$\n?', '', cell.source, flags=re.M)
    raise AssertionError('no tanh_relu_solution cell in the source notebook')


def student_notebook(release: Path, *, solved=True, answer=None, extra=()):
    notebook = nbformat.read(str(release), as_version=4)
    for cell in notebook.cells:
        grade_id = cell.get('metadata', {}).get('nbgrader', {}).get('grade_id')
        if solved and grade_id == 'tanh_relu_solution':
            cell.source = solution_code()
        if answer is not None and grade_id == MANUAL:
            cell.source = answer
    for source in extra:
        notebook.cells.append(nbformat.v4.new_code_cell(source))
    return notebook


def submit(course: Path, student: str, notebook=None, raw: str | None = None, timestamp: str | None = None,
           name: str = NOTEBOOK + '.ipynb'):
    folder = course / 'submitted' / student / ASSIGNMENT
    folder.mkdir(parents=True)
    path = folder / name
    if raw is not None:
        path.write_text(raw, encoding='utf-8')
    else:
        nbformat.write(notebook, str(path))
    if timestamp:
        (folder / 'timestamp.txt').write_text(timestamp, encoding='utf-8')


@pytest.fixture(scope='module')
def course(tmp_path_factory):
    """A course with gradebook.db made by nbgrader from our source notebook, and five submissions."""
    root = tmp_path_factory.mktemp('course')
    shutil.copy(REPO_ROOT / 'nbgrader_config.py', root / 'nbgrader_config.py')
    with open(root / 'nbgrader_config.py', 'a', encoding='utf-8') as config:
        config.write("\nc.LateSubmissionPlugin.penalty_method = 'zero'\n")
    shutil.copytree(REPO_ROOT / 'source' / ASSIGNMENT, root / 'source' / ASSIGNMENT)
    nbgrader(root, 'generate_assignment', ASSIGNMENT)
    nbgrader(root, 'db', 'assignment', 'add', ASSIGNMENT, '--duedate=' + DUE_DATE)
    release = root / 'release' / ASSIGNMENT / (NOTEBOOK + '.ipynb')
    submit(root, 'alice', student_notebook(release, answer='Deeper models overfit sooner; see my plots.'),
           timestamp='2026-11-20 10:00:00.000000 UTC')
    submit(root, 'bob', student_notebook(release, solved=False))
    submit(root, 'carol', student_notebook(release, extra=[TANH_BPROP_SLIP]))
    moved = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('import numpy as np\nfrom mlp.layers import Layer\n' + solution_code())])
    submit(root, 'frank', moved)
    submit(root, 'oscar', raw='my answers are in an email')
    submit(root, 'renata', student_notebook(release), timestamp='2026-11-23 08:00:00.000000 UTC',
           name='lab3 renamed.ipynb')
    return root


@pytest.fixture(scope='module')
def graded(course, tmp_path_factory, mnist_dir):
    """Runs `mlp-autograde grade ... COURSE --gradebook` once; returns (grade dir, our reports by student)."""
    out = tmp_path_factory.mktemp('grades')
    patch = pytest.MonkeyPatch()
    patch.setenv('MLP_DATA_DIR', str(mnist_dir))
    patch.setenv('MLP_COURSE_ROOT', str(REPO_ROOT))
    cwd = os.getcwd()
    try:
        status = cli.main(['grade', '--assignment', ASSIGNMENT, '--out', str(out), '--workers', '1',
                           '--no-progress', str(course), '--gradebook'])
    finally:
        os.chdir(cwd)
        patch.undo()
    assert status == cli.EXIT_OK
    reports = {path.stem: json.loads(path.read_text()) for path in out.glob('*.json') if path.stem != 'summary'}
    assert set(reports) == {'alice', 'bob', 'carol', 'frank', 'oscar', 'renata'}
    return out, reports


def gradebook(course: Path) -> Gradebook:
    return Gradebook('sqlite:///{0}'.format(course / 'gradebook.db'), 'mlp')


def item_points(report: dict) -> dict:
    points = {}
    for test in report['tests']:
        points[test['grade_id']] = points.get(test['grade_id'], 0.0) + test['score']
    return points


def exported_scores(course: Path) -> dict:
    nbgrader(course, 'export', '--to', 'export.csv')
    with open(course / 'export.csv', newline='') as handle:
        return {row['student_id']: row for row in csv.DictReader(handle)}


def test_nbgrader_export_reports_our_scores(course, graded):
    _, reports = graded
    exported = exported_scores(course)
    assert set(exported) == set(reports)
    for student, report in reports.items():
        if student == 'renata':
            continue  # late: see the next test
        assert float(exported[student]['score']) == pytest.approx(report['score']), student
        assert float(exported[student]['max_score']) == pytest.approx(report['max_score'])
    assert float(exported['alice']['score']) == pytest.approx(10.0)
    assert exported['alice']['timestamp'].startswith('2026-11-20 10:00:00')
    assert 0 < float(exported['carol']['score']) < 10


def test_a_renamed_notebook_gets_its_folders_time_and_the_late_penalty(course, graded):
    _, reports = graded
    assert reports['renata']['score'] == pytest.approx(10.0)  # graded in full by us
    exported = exported_scores(course)['renata']
    assert exported['timestamp'].startswith('2026-11-23 08:00:00')
    assert float(exported['late_submission_penalty']) == pytest.approx(10.0)  # penalty_method 'zero'
    assert float(exported['score']) == pytest.approx(0.0)
    rows = {row['student']: row for row in csv.DictReader(open(graded[0] / 'grades.csv', newline=''))}
    assert rows['renata']['submitted_at'] == '2026-11-23 08:00:00 UTC'
    assert rows['renata']['late_by'] == '1d 15:00:00' and rows['renata']['score_after_penalty'] == '0'
    assert rows['alice']['late_by'] == '' and rows['alice']['score_after_penalty'] == '10'


def test_every_grade_cell_holds_our_points_and_written_answers_wait_for_formgrader(course, graded):
    _, reports = graded
    spec = load_spec(ASSIGNMENT, REPO_ROOT)
    automatic = [item.grade_id for item in spec.items if 'manual' not in item.checks]
    with gradebook(course) as gb:
        for student, report in reports.items():
            points = item_points(report)
            for grade_id in automatic:
                grade = gb.find_grade(grade_id, NOTEBOOK, ASSIGNMENT, student)
                assert grade.auto_score == pytest.approx(points.get(grade_id, 0.0)), (student, grade_id)
                assert grade.manual_score is None and not grade.needs_manual_grade
        answered = gb.find_grade(MANUAL, NOTEBOOK, ASSIGNMENT, 'alice')
        assert answered.auto_score is None and answered.needs_manual_grade
        moved = gb.find_grade(MANUAL, NOTEBOOK, ASSIGNMENT, 'frank')
        assert moved.auto_score is None and moved.needs_manual_grade
        untouched = gb.find_grade(MANUAL, NOTEBOOK, ASSIGNMENT, 'bob')
        assert untouched.auto_score == 0 and not untouched.needs_manual_grade
        assert gb.find_comment(MANUAL, NOTEBOOK, ASSIGNMENT, 'bob').auto_comment == 'No response.'
        carol = gb.find_comment('tanh_relu_solution', NOTEBOOK, ASSIGNMENT, 'carol').auto_comment
        assert 'tanh_bprop: 0 / 2' in carol and '1 - y^2' in carol
        oscar = gb.find_comment('tanh_relu_solution', NOTEBOOK, ASSIGNMENT, 'oscar').auto_comment
        assert 'not graded' in oscar and 'JSON' in oscar


def test_autograded_notebooks_carry_our_verdicts_and_no_hidden_tests(course, graded):
    for student in ('alice', 'bob', 'carol', 'frank'):
        path = course / 'autograded' / student / ASSIGNMENT / (NOTEBOOK + '.ipynb')
        notebook = nbformat.read(str(path), as_version=4)
        assert not any('BEGIN HIDDEN TESTS' in cell.source for cell in notebook.cells)
    carol = nbformat.read(str(course / 'autograded' / 'carol' / ASSIGNMENT / (NOTEBOOK + '.ipynb')), 4)
    outputs = {cell.metadata.nbgrader['grade_id']: cell.outputs for cell in carol.cells
               if cell.cell_type == 'code' and cell.metadata.get('nbgrader', {}).get('grade')}
    assert outputs['tanh_bprop'][0]['name'] == 'stderr'
    assert 'mlp-autograde: tanh_bprop 0 / 2 points' in outputs['tanh_bprop'][0]['text']
    assert outputs['tanh_fprop'][0]['name'] == 'stdout'
    assert not (course / 'autograded' / 'oscar').exists()


def test_formgrader_sees_the_submissions(course, graded):
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader('nbgrader_config.py', path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    cwd = os.getcwd()
    try:
        os.chdir(course)
        api = NbGraderAPI(CourseDirectory(config=config), config=config)
        submissions = {s['student']: s for s in api.get_submissions(ASSIGNMENT)}
    finally:
        os.chdir(cwd)
    assert submissions['alice']['autograded'] and submissions['alice']['needs_manual_grade']
    assert submissions['carol']['autograded'] and not submissions['carol']['needs_manual_grade']


def test_generate_feedback_renders_our_scores_and_messages(course, graded):
    _, reports = graded
    nbgrader(course, 'generate_feedback', ASSIGNMENT)
    page = (course / 'feedback' / 'carol' / ASSIGNMENT / (NOTEBOOK + '.html')).read_text(encoding='utf-8')
    assert 'Score: {0:.1f} / 13.0'.format(reports['carol']['score']) in page
    assert 'mlp-autograde: tanh_bprop 0 / 2 points' in page
    assert 'BEGIN HIDDEN TESTS' not in page


def gradebook_rows(course: Path) -> dict:
    """Every row of the gradebook's tables (timestamps of nbgrader's own bookkeeping included)."""
    import sqlite3
    with sqlite3.connect(str(course / 'gradebook.db')) as connection:
        tables = [name for (name,) in connection.execute("select name from sqlite_master where type='table'")]
        return {table: sorted(map(repr, connection.execute('select * from "{0}"'.format(table))))
                for table in tables}


def test_rerun_keeps_manual_grades_and_drops_stale_notebooks(course, graded, mnist_dir, monkeypatch):
    out, reports = graded
    with gradebook(course) as gb:  # as formgrader does when the instructor scores an answer
        grade = gb.find_grade(MANUAL, NOTEBOOK, ASSIGNMENT, 'alice')
        grade.manual_score = 2.0
        grade.needs_manual_grade = False
        override = gb.find_grade('tanh_fprop', NOTEBOOK, ASSIGNMENT, 'carol')
        override.manual_score = 1.0
        override.needs_manual_grade = False
        gb.db.commit()
    before = gradebook_rows(course)
    stale = course / 'autograded' / 'oscar' / ASSIGNMENT / (NOTEBOOK + '.ipynb')
    stale.parent.mkdir(parents=True)
    stale.write_text('{}')
    monkeypatch.setenv('MLP_DATA_DIR', str(mnist_dir))
    monkeypatch.setenv('MLP_COURSE_ROOT', str(REPO_ROOT))
    status = cli.main(['grade', '--assignment', ASSIGNMENT, '--out', str(out), '--workers', '1',
                       '--no-progress', str(course), '--gradebook={0}'.format(course / 'gradebook.db')])
    assert status == cli.EXIT_OK
    with gradebook(course) as gb:
        grade = gb.find_grade(MANUAL, NOTEBOOK, ASSIGNMENT, 'alice')
        assert grade.manual_score == 2.0 and not grade.needs_manual_grade  # not back on formgrader's list
        assert not gb.find_grade('tanh_fprop', NOTEBOOK, ASSIGNMENT, 'carol').needs_manual_grade
    assert gradebook_rows(course) == before  # nothing new was graded: nothing changed
    assert float(exported_scores(course)['alice']['score']) == pytest.approx(reports['alice']['score'] + 2.0)
    assert not stale.exists()  # an unreadable submission has no autograded notebook for formgrader to show


def test_missing_gradebook_is_refused_before_grading(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('MLP_COURSE_ROOT', str(REPO_ROOT))
    (tmp_path / 'submitted' / 'alice' / ASSIGNMENT).mkdir(parents=True)
    (tmp_path / 'submitted' / 'alice' / ASSIGNMENT / (NOTEBOOK + '.ipynb')).write_text('{}')
    out = tmp_path / 'grades'
    status = cli.main(['grade', '--assignment', ASSIGNMENT, '--out', str(out), '--workers', '1',
                       '--no-progress', str(tmp_path), '--gradebook'])
    assert status == cli.EXIT_USAGE
    assert 'nbgrader generate_assignment' in capsys.readouterr().err
    assert not out.exists() or not any(out.glob('*.json'))


def test_gradebook_from_another_source_version_is_refused(course, graded, tmp_path):
    copy = tmp_path / 'gradebook.db'
    shutil.copy(course / 'gradebook.db', copy)
    with Gradebook('sqlite:///{0}'.format(copy), 'mlp') as gb:
        cell = gb.find_grade_cell('tanh_fprop', NOTEBOOK, ASSIGNMENT)
        cell.max_score = 5.0
        gb.db.commit()
    spec = load_spec(ASSIGNMENT, REPO_ROOT)
    with pytest.raises(GradebookError, match='tanh_fprop'):
        preflight(spec, [course], str(copy))
    with Gradebook('sqlite:///{0}'.format(course / 'gradebook.db'), 'mlp') as gb:
        assert check_gradebook_matches(gb, spec) == NOTEBOOK


def _report(submission: str) -> Report:
    return Report(student='x', assignment=ASSIGNMENT, submission=submission, sha256='', status='graded',
                  score=0.0, max_score=13.0, isolation='bwrap', execution_time=0.0)


def test_submission_owner_reads_the_nbgrader_layout(tmp_path):
    owner = submission_owner(_report('/c/submitted/al ice/{0}/{1}.ipynb'.format(ASSIGNMENT, NOTEBOOK)), ASSIGNMENT)
    assert owner == (Path('/c'), 'al ice')
    assert submission_owner(_report('subs/alice.ipynb'), ASSIGNMENT) is None
    with pytest.raises(GradebookError, match='nbgrader course'):
        find_course_root([_report('subs/alice.ipynb')], ASSIGNMENT)
