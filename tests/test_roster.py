"""Tests of autograder.outputs.roster and the LMS-friendly grades.csv."""

import csv
import io
from pathlib import Path

import pytest

from autograder import cli
from autograder.outputs.report import grades_csv
from autograder.results import CheckResult, Report
from autograder.outputs.roster import (NO_SUBMISSION, NOT_IN_ROSTER, RosterError, grades_csv_with_roster,
                               load_roster, match_key, unmatched_students, write_roster_grades)
from autograder.course.spec import load_spec

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = '03_multiple_layer_models'


@pytest.fixture(scope='module')
def spec():
    return load_spec(ASSIGNMENT, REPO_ROOT)


def make_report(student, points, status='graded'):
    tests = [CheckResult(grade_id=grade_id, name='check', target='T', kind='fixed', status='passed',
                         score=score, max_score=score) for grade_id, score in points.items()]
    return Report(student=student, assignment=ASSIGNMENT, submission=student + '.ipynb', sha256='0' * 64,
                  status=status, score=sum(points.values()), max_score=13.0, isolation='bwrap',
                  execution_time=1.0, tests=tests)


def write(tmp_path, text, name='roster.csv', encoding='utf-8'):
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_roster_columns_follow_the_id_column_which_may_be_anywhere(tmp_path):
    roster = load_roster(write(tmp_path, 'name,Student,lms_id\nAlice Liddell,alice,s001\n\nBob,bob,s002\n'))
    assert roster.columns == ['name', 'lms_id']
    assert roster.lookup('alice') == {'name': 'Alice Liddell', 'lms_id': 's001'}
    assert roster.lookup('carol') is None


def test_first_column_is_the_id_without_a_student_column_and_a_bom_is_ignored(tmp_path):
    roster = load_roster(write(tmp_path, '\ufeffgithub,lms\nAlice-L,7\n', encoding='utf-8'))
    assert roster.columns == ['lms']
    assert roster.lookup('alice_l') == {'lms': '7'}


def test_ids_match_ignoring_case_and_punctuation_the_grader_rewrites():
    assert match_key('Jane Doe') == match_key('jane_doe') == match_key('JANE.DOE')
    assert match_key('jane') != match_key('janet')


@pytest.mark.parametrize('text, message', [
    ('', 'empty'),
    ('student,lms_id\nalice,1\nALICE,2\n', 'matches'),
    ('student,lms_id\nalice,1\n,2\n', 'line 3'),
])
def test_bad_rosters_are_refused_with_the_reason(tmp_path, text, message):
    with pytest.raises(RosterError, match=message):
        load_roster(write(tmp_path, text))


def test_missing_roster_file_is_a_roster_error(tmp_path):
    with pytest.raises(RosterError, match='cannot read'):
        load_roster(tmp_path / 'nope.csv')


def test_grades_csv_keeps_unknown_ids_flags_them_and_adds_missing_students(tmp_path, spec):
    roster = load_roster(write(tmp_path, 'student,lms_id,name\nAlice,s001,"Liddell, Alice"\nzoe,s026,Zoe\n'))
    reports = [make_report('alice', {'tanh_fprop': 2.0, 'relu_fprop': 1.5}),
               make_report('mallory', {'tanh_fprop': 2.0}),
               make_report('oscar', {}, status='rejected')]
    table = rows(grades_csv_with_roster(spec, reports, roster))
    header = list(table[0])
    assert header[:7] == ['student', 'lms_id', 'name', 'roster', 'score', 'max_score', 'status']
    assert header[7:] == [item.grade_id for item in spec.items]
    by_student = {row['student']: row for row in table}
    assert set(by_student) == {'alice', 'mallory', 'oscar', 'zoe'}
    alice = by_student['alice']
    assert (alice['lms_id'], alice['name'], alice['roster']) == ('s001', 'Liddell, Alice', 'ok')
    assert (alice['score'], alice['max_score'], alice['tanh_fprop'], alice['relu_fprop']) == ('3.5', '13', '2', '1.5')
    assert by_student['mallory']['roster'] == NOT_IN_ROSTER and by_student['mallory']['score'] == '2'
    assert by_student['oscar']['status'] == 'rejected'
    zoe = by_student['zoe']
    assert (zoe['roster'], zoe['status'], zoe['score'], zoe['tanh_fprop']) == (NO_SUBMISSION, 'missing', '', '')
    assert unmatched_students(reports, roster) == ['mallory', 'oscar']


def test_text_a_spreadsheet_would_run_as_a_formula_is_quoted(tmp_path, spec):
    roster = load_roster(write(tmp_path, 'student,name\n+alice,=HYPERLINK("http://x")\n'))
    table = rows(grades_csv_with_roster(spec, [make_report('+alice', {'tanh_fprop': 2.0})], roster))
    assert table[0]['student'] == "'+alice"
    assert table[0]['name'] == '\'=HYPERLINK("http://x")'


def test_without_roster_grades_csv_keeps_its_contract(spec):
    header = next(csv.reader(io.StringIO(grades_csv(spec, [make_report('alice', {'tanh_fprop': 2.0})]))))
    assert header[:4] == ['student', 'score', 'max_score', 'status']
    assert header[4:] == [item.grade_id for item in spec.items]


def test_write_roster_grades_replaces_grades_csv(tmp_path, spec):
    roster = load_roster(write(tmp_path, 'student,lms_id\nalice,s001\n'))
    (tmp_path / 'grades.csv').write_text('old\n')
    unknown = write_roster_grades(tmp_path, spec, [make_report('bob', {})], roster)
    assert unknown == ['bob']
    assert [row['student'] for row in rows((tmp_path / 'grades.csv').read_text())] == ['bob', 'alice']


def test_cli_refuses_a_bad_roster_before_grading(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('MLP_COURSE_ROOT', str(REPO_ROOT))
    notebook = write(tmp_path, '{}', name='alice.ipynb')
    roster = write(tmp_path, 'student\nalice\nAlice\n')
    out = tmp_path / 'grades'
    status = cli.main(['grade', '--assignment', ASSIGNMENT, '--out', str(out), '--workers', '1',
                       '--no-progress', '--roster', str(roster), str(notebook)])
    assert status == cli.EXIT_USAGE
    assert 'matches' in capsys.readouterr().err
    assert not (out / 'alice.json').exists()


def test_cli_joins_the_roster_into_grades_csv(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('MLP_COURSE_ROOT', str(REPO_ROOT))
    notebook = write(tmp_path, 'not a notebook', name='alice.ipynb')
    roster = write(tmp_path, 'student,lms_id\nalice,s001\nbob,s002\n')
    out = tmp_path / 'grades'
    status = cli.main(['grade', '--assignment', ASSIGNMENT, '--out', str(out), '--workers', '1',
                       '--no-progress', '--roster', str(roster), str(notebook)])
    assert status == cli.EXIT_OK
    table = {row['student']: row for row in rows((out / 'grades.csv').read_text())}
    assert table['alice']['lms_id'] == 's001' and table['alice']['status'] == 'rejected'
    assert table['bob']['roster'] == NO_SUBMISSION
