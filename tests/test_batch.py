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
def private_tmp(reachable_tmp):
    """A private temporary folder for everything the grader creates (checked for leftovers)."""
    folder = reachable_tmp.mktemp('grader-tmp')
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
    assert report.status == 'error' and batch.is_internal_failure(report)
    assert 'RuntimeError: grader bug' in report.error and 'not a problem with your submission' in report.error
    assert json.loads((out_dir / 'alice_solution.json').read_text())['status'] == 'error'
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


# --- issue 10: names are input (class 7) --------------------------------------------------


def test_generated_ids_never_take_a_real_students_id(tmp_path):
    """A generated 'carol-2' must not replace the report of a real student 'carol-2'."""
    for folder, names in (('a', ['carol', 'carol-2']), ('b', ['carol', 'Carol-3'])):
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / '{0}.ipynb'.format(name)).write_text('{}')
    found = batch.find_submissions([tmp_path / 'a', tmp_path / 'b'], DEMO_ASSIGNMENT)
    by_path = {str(s.path.relative_to(tmp_path)): s.student for s in found}
    # Real ids keep their names: the first carol, the real carol-2 and Carol-3.
    assert by_path['a/carol.ipynb'] == 'carol' and by_path['a/carol-2.ipynb'] == 'carol-2'
    assert by_path['b/Carol-3.ipynb'] == 'Carol-3'
    assert by_path['b/carol.ipynb'] == 'carol-4'  # the second carol: the first free suffix
    assert len({student.casefold() for student in by_path.values()}) == 4


@pytest.mark.parametrize('stem', ['summary', 'SUMMARY', 'grades', 'Summary'])
def test_no_student_id_is_a_class_files_name(tmp_path, stem):
    from autograder.outputs.report import CLASS_FILES, STUDENT_SUFFIXES
    (tmp_path / '{0}.ipynb'.format(stem)).write_text('{}')
    (tmp_path / '{0}-2.ipynb'.format(stem)).write_text('{}')
    ids = [s.student for s in batch.find_submissions([tmp_path], DEMO_ASSIGNMENT)]
    student_files = {'{0}.{1}'.format(student, suffix).casefold() for student in ids for suffix in STUDENT_SUFFIXES}
    assert not student_files & {name.casefold() for name in CLASS_FILES}, ids
    assert len(set(ids)) == 2 and '{0}-2'.format(stem) in ids


def test_unique_student_ids_is_unique_whatever_the_input():
    import random
    generator = random.Random(10)
    pool = ['a', 'a-2', 'a-3', 'A', 'a-2-2', 'summary', 'grades', 'b']
    for _ in range(200):
        wanted = [generator.choice(pool) for _ in range(generator.randint(1, 12))]
        ids = batch.unique_student_ids(wanted)
        assert len(ids) == len(wanted) and len({i.casefold() for i in ids}) == len(ids)
        assert not {i.casefold() for i in ids} & {'summary', 'grades'}
        for original, given in zip(wanted, ids):
            assert given == original or given.startswith(original + '-')


# --- issue 10: one submission never stops the batch; harness failures (classes 3, 9) ------


def test_a_report_that_cannot_be_written_becomes_a_harness_error_and_the_batch_goes_on(
        spec, demo_class, mnist_env, tmp_path, monkeypatch):
    from autograder.outputs import feedback_html
    out_dir = tmp_path / 'grades'
    chosen = [s for s in batch.find_submissions([demo_class], spec.name)
              if s.student in ('alice_solution', 'oscar_not_a_notebook')]
    real_page = feedback_html.student_page

    def page_that_fails_for_alice(report):
        if report.student == 'alice_solution' and report.status == 'graded':
            raise OverflowError('cannot draw this')
        return real_page(report)

    monkeypatch.setattr(feedback_html, 'student_page', page_that_fails_for_alice)
    reports, summary = batch.grade_batch(spec, chosen, out_dir, progress=False)
    by_id = {r.student: r for r in reports}
    assert by_id['alice_solution'].status == 'error' and 'OverflowError' in by_id['alice_solution'].error
    assert by_id['oscar_not_a_notebook'].status == 'rejected'
    assert summary['harness_failures'] == ['alice_solution']
    for student in by_id:
        assert all((out_dir / '{0}.{1}'.format(student, suffix)).is_file() for suffix in ('json', 'md', 'html'))
    monkeypatch.undo()
    reports, summary = batch.grade_batch(spec, chosen, out_dir, progress=False)
    assert summary['graded_this_run'] == 1 and {r.student: r.status for r in reports}['alice_solution'] == 'graded'


def test_huge_finite_training_errors_still_give_a_page(spec):
    from autograder.outputs import feedback_html
    from autograder.results import CheckResult, Report
    curve = [1e308, -1e308, 1e300, 5e307]
    test = CheckResult('tanh', 'training', 'TanhLayer', 'training', 'failed', 0.0, 1.0, 'diverged',
                       details={'student_errors': curve, 'reference_errors': [0.5, 0.4, 0.3, 0.2]})
    report = Report('mallory', spec.name, 'mallory.ipynb', 'a' * 64, 'graded', 0.0, 1.0, 'bwrap', 1.0, [test])
    page = feedback_html.student_page(report)
    assert '</html>' in page and 'diverged' in page


def test_missing_mnist_is_a_harness_error_never_reused_and_the_cli_exits_non_zero(
        spec, demo_class, mnist_env, tmp_path, monkeypatch, capsys):
    from autograder.checks import oracle
    empty = tmp_path / 'no-mnist'
    empty.mkdir()
    monkeypatch.setenv('MLP_DATA_DIR', str(empty))
    oracle.mnist_subset.cache_clear()
    out_dir = tmp_path / 'grades'
    try:
        status = cli.main(['grade', '--assignment', spec.name, '--out', str(out_dir), '--workers', '1',
                           '--no-progress', str(demo_class / 'alice_solution.ipynb')])
        [alice] = batch.find_submissions([demo_class / 'alice_solution.ipynb'], spec.name)
        report = json.loads((out_dir / 'alice_solution.json').read_text())
        harness = [t for t in report['tests'] if t.get('harness_error')]
        assert harness and all(t['kind'] == 'training' and t['status'] == 'error' for t in harness)
        assert all('not a problem with your submission' in t['output'] for t in harness)
        assert status != 0 and 'alice_solution' in capsys.readouterr().err
        assert batch.existing_report(out_dir, alice, spec) is None  # never reused
    finally:
        monkeypatch.undo()
        oracle.mnist_subset.cache_clear()
    [report], summary = batch.grade_batch(spec, [alice], out_dir, progress=False)
    assert summary['graded_this_run'] == 1 and not report.harness_failed


def test_a_sandbox_that_cannot_start_is_a_harness_error(spec, demo_class, mnist_env, tmp_path, monkeypatch):
    from autograder.sandbox import isolation

    def no_processes(self):
        raise OSError(11, 'Resource temporarily unavailable')

    batch._WORKING_SANDBOXES.clear()
    monkeypatch.setattr(isolation._Child, '_start', no_processes)
    [alice] = [s for s in batch.find_submissions([demo_class], spec.name) if s.student == 'alice_solution']
    [report], summary = batch.grade_batch(spec, [alice], tmp_path / 'grades', progress=False)
    assert report.status == 'error' and 'sandbox' in report.error and batch.is_internal_failure(report)
    monkeypatch.undo()
    [report], _ = batch.grade_batch(spec, [alice], tmp_path / 'grades', progress=False)
    assert report.status == 'graded' and report.score > 0


# --- issue 10: the file system is input (class 1) -----------------------------------------


def test_linked_student_folders_in_an_nbgrader_tree_are_rejected_without_their_listing(
        spec, demo_class, mnist_env, tmp_path):
    submitted = tmp_path / 'course' / 'submitted'
    alice = submitted / 'alice' / spec.name
    alice.mkdir(parents=True)
    shutil.copy(demo_class / 'alice_solution.ipynb', alice / 'lab.ipynb')
    (submitted / 'mallory').symlink_to(submitted / 'alice')  # mallory's folder is alice's work
    secret = tmp_path / 'elsewhere' / spec.name
    secret.mkdir(parents=True)
    (secret / 'private_listing.txt').write_text('x')
    (submitted / 'trudy').symlink_to(secret.parent)  # a folder without a notebook, behind a link
    (submitted / 'victor' / spec.name).mkdir(parents=True)
    (submitted / 'victor' / spec.name / 'lab.ipynb').symlink_to(alice / 'lab.ipynb')
    found = batch.find_submissions([tmp_path / 'course'], spec.name)
    assert sorted(s.student for s in found) == ['alice', 'mallory', 'trudy', 'victor']
    reports, summary = batch.grade_batch(spec, found, tmp_path / 'grades', progress=False)
    by_id = {report.student: report for report in reports}
    assert by_id['alice'].status == 'graded' and by_id['alice'].score > 0
    for student in ('mallory', 'trudy', 'victor'):
        assert by_id[student].status == 'rejected' and 'symbolic link' in by_id[student].error, student
        assert by_id[student].score == 0 and by_id[student].sha256 == ''
    assert 'private_listing' not in (tmp_path / 'grades' / 'trudy.json').read_text()
    assert batch.file_sha256(found[0].path, found[0].root) != ''
    for submission in found:
        if submission.student != 'alice':
            assert batch.file_sha256(submission.path, submission.root) == ''
            assert batch.read_submission_bytes(submission.path, submission.root) is None
