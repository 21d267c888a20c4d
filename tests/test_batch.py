"""Tests of autograder/batch.py: discovery, resume, parallel workers, leaving nothing behind.

The class graded here is the demo's (autograder/demo.py): a solution, the
untouched release, three one-bug submissions, moved cells, a hostile notebook
and a file that is not a notebook.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from autograder import batch, cli
from autograder.demo import DEMO_ASSIGNMENT
from autograder.course.spec import default_course_root, load_spec
from grade_dirs import comparable

@pytest.fixture(scope='module')
def spec():
    return load_spec(DEMO_ASSIGNMENT, default_course_root())


@pytest.fixture(scope='module')
def private_tmp(tmp_path_factory):
    """A private temporary folder for everything the grader creates (checked for leftovers)."""
    folder = tmp_path_factory.mktemp('grader-tmp')
    previous = tempfile.tempdir
    tempfile.tempdir = str(folder)
    yield folder
    tempfile.tempdir = previous


@pytest.fixture(scope='module')
def serial_run(spec, demo_class, mnist_env, private_tmp, tmp_path_factory):
    """The demo class graded in this process (workers=1)."""
    out_dir = tmp_path_factory.mktemp('serial') / 'grades'
    submissions = batch.find_submissions([demo_class], spec.name)
    reports, summary = batch.grade_batch(spec, submissions, out_dir, workers=1, progress=False)
    return out_dir, reports, summary


# --- discovery ----------------------------------------------------------------------------


def test_find_submissions_in_an_nbgrader_tree_uses_student_ids(tmp_path):
    for student in ('bob', 'alice'):
        folder = tmp_path / 'submitted' / student / DEMO_ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / 'lab.ipynb').write_text('{}')
    (tmp_path / 'submitted' / 'carol' / 'other_assignment').mkdir(parents=True)
    (tmp_path / 'submitted' / 'carol' / 'other_assignment' / 'lab.ipynb').write_text('{}')
    found = batch.find_submissions([tmp_path], DEMO_ASSIGNMENT)
    assert [s.student for s in found] == ['alice', 'bob']
    assert found == batch.find_submissions([tmp_path / 'submitted'], DEMO_ASSIGNMENT)


def test_find_submissions_in_a_folder_uses_file_stems_and_keeps_files_as_given(tmp_path):
    for name in ('b.ipynb', 'a.ipynb', 'notes.txt'):
        (tmp_path / name).write_text('{}')
    other = tmp_path / 'more'
    other.mkdir()
    (other / 'a.ipynb').write_text('{}')
    found = batch.find_submissions([tmp_path, other / 'a.ipynb', tmp_path / 'notes.txt'], DEMO_ASSIGNMENT)
    assert [(s.student, s.path.name) for s in found] == [
        ('a', 'a.ipynb'), ('b', 'b.ipynb'), ('a-2', 'a.ipynb'), ('notes', 'notes.txt')]


def test_student_ids_are_safe_file_names(tmp_path):
    path = tmp_path / '..weird name;rm -rf.ipynb'
    path.write_text('{}')
    [submission] = batch.find_submissions([path], DEMO_ASSIGNMENT)
    assert '/' not in submission.student and ' ' not in submission.student
    assert not submission.student.startswith('.')


# --- one run ------------------------------------------------------------------------------


def test_every_submission_gets_a_report_feedback_and_a_row(serial_run, demo_class, spec):
    out_dir, reports, summary = serial_run
    students = sorted(path.stem for path in demo_class.glob('*.ipynb'))
    assert sorted(r.student for r in reports) == students
    for student in students:
        assert json.loads((out_dir / (student + '.json')).read_text())['student'] == student
        assert (out_dir / (student + '.md')).is_file()
    rows = (out_dir / 'grades.csv').read_text().splitlines()
    assert [row.split(',')[0] for row in rows[1:]] == students
    assert summary['submissions'] == len(students) and summary['graded_this_run'] == len(students)
    assert json.loads((out_dir / 'summary.json').read_text())['submissions'] == len(students)


def test_returned_reports_follow_the_submission_order_and_match_the_files(serial_run, demo_class, spec):
    out_dir, reports, _ = serial_run
    order = [s.student for s in batch.find_submissions([demo_class], spec.name)]
    assert [r.student for r in reports] == order
    for report in reports:
        on_disk = json.loads((out_dir / (report.student + '.json')).read_text())
        assert report.to_json() == on_disk


def test_nothing_is_left_behind_after_a_run(serial_run, private_tmp):
    out_dir = serial_run[0]
    assert sorted(private_tmp.iterdir()) == []
    assert not [p.name for p in out_dir.iterdir() if p.name.startswith('.')]


def test_parallel_workers_write_the_same_grade_directory_as_a_serial_run(
        serial_run, spec, demo_class, private_tmp, tmp_path):
    out_dir = tmp_path / 'parallel'
    submissions = batch.find_submissions([demo_class], spec.name)
    reports, summary = batch.grade_batch(spec, submissions, out_dir, workers=2, progress=False)
    assert summary['graded_this_run'] == len(submissions)
    assert comparable(out_dir) == comparable(serial_run[0])
    assert sorted(private_tmp.iterdir()) == []


# --- resume -------------------------------------------------------------------------------


def _copy_of_run(serial_run, destination: Path) -> Path:
    shutil.copytree(serial_run[0], destination)
    return destination


def test_a_second_run_grades_nothing_and_rewrites_no_report(serial_run, spec, demo_class, tmp_path):
    out_dir = _copy_of_run(serial_run, tmp_path / 'grades')
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out_dir.glob('*_*.*')}
    _, summary = batch.grade_batch(spec, batch.find_submissions([demo_class], spec.name), out_dir,
                                   progress=False)
    assert summary['graded_this_run'] == 0
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out_dir.glob('*_*.*')} == before
    assert comparable(out_dir) == comparable(serial_run[0])


def test_only_a_changed_or_incomplete_submission_is_graded_again(serial_run, spec, demo_class, tmp_path):
    out_dir = _copy_of_run(serial_run, tmp_path / 'grades')
    submissions_dir = tmp_path / 'class'
    shutil.copytree(demo_class, submissions_dir)
    untouched = (submissions_dir / 'bob_untouched.ipynb').read_text()
    solution = (submissions_dir / 'alice_solution.ipynb').read_text()
    (submissions_dir / 'bob_untouched.ipynb').write_text(solution)  # bob finished his work
    (out_dir / 'carol_tanh_bprop_slip.md').unlink()  # a run killed between the two files
    (out_dir / 'dave_relu_abs.json').write_text('{"student": "dave_relu_abs"')  # damaged by hand
    submissions = batch.find_submissions([submissions_dir], spec.name)
    reports, summary = batch.grade_batch(spec, submissions, out_dir, progress=False)
    assert summary['graded_this_run'] == 3
    by_student = {r.student: r for r in reports}
    assert by_student['bob_untouched'].score == by_student['alice_solution'].score > 0
    assert by_student['bob_untouched'].sha256 != json.loads(
        (serial_run[0] / 'bob_untouched.json').read_text())['sha256']
    assert untouched != solution
    assert (out_dir / 'carol_tanh_bprop_slip.md').is_file()


def test_a_report_for_another_assignment_is_not_reused(serial_run, spec, demo_class, tmp_path):
    out_dir = _copy_of_run(serial_run, tmp_path / 'grades')
    path = out_dir / 'alice_solution.json'
    data = json.loads(path.read_text())
    data['assignment'] = 'another_assignment'
    path.write_text(json.dumps(data))
    [alice] = [s for s in batch.find_submissions([demo_class], spec.name) if s.student == 'alice_solution']
    assert batch.existing_report(out_dir, alice, spec) is None


def test_an_internal_grader_error_is_reported_then_graded_again(spec, demo_class, mnist_env, tmp_path, monkeypatch):
    out_dir = tmp_path / 'grades'
    [alice] = [s for s in batch.find_submissions([demo_class], spec.name) if s.student == 'alice_solution']

    def broken(*args, **kwargs):
        raise RuntimeError('grader bug')

    monkeypatch.setattr('autograder.grade.grade_submission', broken)
    [report], _ = batch.grade_batch(spec, [alice], out_dir, progress=False)
    assert report.status == 'rejected' and batch.is_internal_failure(report)
    assert 'RuntimeError: grader bug' in report.error
    assert batch.existing_report(out_dir, alice, spec) is None
    monkeypatch.undo()
    [report], summary = batch.grade_batch(spec, [alice], out_dir, progress=False)
    assert summary['graded_this_run'] == 1 and report.status == 'graded' and report.score > 0


# --- stale files, locks -------------------------------------------------------------------


def test_stale_temporary_files_in_the_grade_directory_are_removed(serial_run, spec, demo_class, tmp_path):
    out_dir = _copy_of_run(serial_run, tmp_path / 'grades')
    stale = ['.alice_solution.json.ab3_x9zq.tmp', '.grades.csv.00000000.tmp', '.write-test']
    kept = ['.hidden-by-the-instructor', 'alice_solution.json.tmp']
    for name in stale + kept:
        (out_dir / name).write_text('half')
    _, summary = batch.grade_batch(spec, batch.find_submissions([demo_class], spec.name), out_dir,
                                   progress=False)
    assert summary['graded_this_run'] == 0
    names = {p.name for p in out_dir.iterdir()}
    assert not names & set(stale)
    assert set(kept) <= names


def test_stale_run_directories_are_removed_and_live_ones_kept(tmp_path):
    dead = tmp_path / (batch.RUN_DIR_PREFIX + '999999-dead')
    live = tmp_path / (batch.RUN_DIR_PREFIX + '1-live')
    other = tmp_path / 'mlp-autograde-something-else'
    for folder in (dead, live, other):
        (folder / 'mlp-sandbox-x' / 'work').mkdir(parents=True)
    fd = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        removed = batch.remove_stale_run_dirs(str(tmp_path))
    finally:
        os.close(fd)
    assert removed == [str(dead)]
    assert not dead.exists() and live.exists() and other.exists()


def test_a_grade_directory_in_use_by_another_grader_is_refused(spec, demo_class, tmp_path, capsys):
    out_dir = tmp_path / 'grades'
    out_dir.mkdir()
    fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(batch.BatchError, match='another mlp-autograde process'):
            batch.grade_batch(spec, batch.find_submissions([demo_class], spec.name), out_dir,
                              progress=False)
        status = cli.main(['grade', '--assignment', spec.name, '--out', str(out_dir), '--no-progress',
                           str(demo_class / 'alice_solution.ipynb')])
    finally:
        os.close(fd)
    assert status == cli.EXIT_HARNESS
    assert 'another mlp-autograde process is writing' in capsys.readouterr().err
    assert list(out_dir.iterdir()) == []


def test_grade_one_grades_content_sent_with_the_job(spec, demo_class, mnist_env, private_tmp):
    source = demo_class / 'alice_solution.ipynb'
    shown = '/nowhere/alice_solution.ipynb'
    from autograder.sandbox.limits import Limits
    report = batch.grade_one(spec.name, str(spec.course_root), 'alice', shown, Limits(),
                             content=source.read_bytes())
    assert report.status == 'graded' and report.score > 0
    assert report.submission == shown and report.sha256 == batch.file_sha256(source)
    assert sorted(private_tmp.iterdir()) == []


def test_an_nbgrader_student_folder_without_a_notebook_is_rejected_not_dropped(tmp_path):
    from autograder.submission.load import Rejection, load_submission
    notebook_folder = tmp_path / 'submitted' / 'alice' / DEMO_ASSIGNMENT
    notebook_folder.mkdir(parents=True)
    (notebook_folder / 'lab.ipynb').write_text('{}')
    pdf_folder = tmp_path / 'submitted' / 'bob' / DEMO_ASSIGNMENT
    pdf_folder.mkdir(parents=True)
    (pdf_folder / 'answers.pdf').write_bytes(b'%PDF-1.4')
    found = batch.find_submissions([tmp_path], DEMO_ASSIGNMENT)
    assert [(s.student, s.path) for s in found] == [
        ('alice', notebook_folder / 'lab.ipynb'), ('bob', pdf_folder)]
    rejection = load_submission(pdf_folder)
    assert isinstance(rejection, Rejection) and 'answers.pdf' in rejection.reason
