"""Tests of autograder.outputs.roster and the LMS-friendly grades.csv."""

import csv
import io
from pathlib import Path

import pytest

from autograder import cli
from autograder.outputs.report import grades_csv
from autograder.results import CheckResult, Report
from autograder.outputs.roster import (CANVAS, MOODLE, NO_SUBMISSION, NOT_IN_ROSTER, PENDING, PLAIN,
                                       SHEET_EXTRA_COLUMNS, RosterError, grades_csv_with_roster, load_roster,
                                       match_key, unmatched_students, write_roster_grades)
from autograder.course.spec import load_spec

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = '03_multiple_layer_models'


@pytest.fixture(scope='module')
def spec():
    return load_spec(ASSIGNMENT, REPO_ROOT)


def make_report(student, points, status='graded', pending=None):
    tests = [CheckResult(grade_id=grade_id, name='check', target='T', kind='fixed', status='passed',
                         score=score, max_score=score) for grade_id, score in points.items()]
    tests += [CheckResult(grade_id=grade_id, name='written answer', target='T', kind='manual', status='pending',
                          score=0.0, max_score=value) for grade_id, value in (pending or {}).items()]
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
    grade_ids = [item.grade_id for item in spec.items]
    assert header[7:7 + len(grade_ids)] == grade_ids and header[7 + len(grade_ids):] == SHEET_EXTRA_COLUMNS
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
    grade_ids = [item.grade_id for item in spec.items]
    assert header[4:4 + len(grade_ids)] == grade_ids
    assert header[4 + len(grade_ids):] == SHEET_EXTRA_COLUMNS


def test_a_pending_written_answer_is_pending_with_the_reachable_maximum_beside_it(spec):
    manual = next(item for item in spec.items if 'manual' in item.checks)
    automatic = [item for item in spec.items if 'manual' not in item.checks]
    points = {item.grade_id: float(item.points) for item in automatic}
    table = rows(grades_csv(spec, [make_report('alice', points, pending={manual.grade_id: float(manual.points)}),
                                   make_report('oscar', {}, status='rejected')]))
    alice, oscar = table
    assert alice[manual.grade_id] == PENDING
    assert alice['score'] == '{0:g}'.format(sum(points.values()))
    assert alice['pending_points'] == '{0:g}'.format(manual.points)
    assert float(alice['max_reachable']) == float(alice['score']) + manual.points == spec.max_score
    assert alice['status'] == 'graded' and alice[automatic[0].grade_id] == '{0:g}'.format(automatic[0].points)
    assert oscar[manual.grade_id] == '0' and oscar['pending_points'] == '0' and oscar['max_reachable'] == '0'
    assert alice['score_after_penalty'] == alice['score'] and alice['penalty'] == '0'


def test_the_class_table_says_how_many_points_await_manual_grading(spec):
    from autograder.outputs.report import class_table
    table = class_table(spec, [make_report('alice', {'tanh_fprop': 2.0}, pending={'deeper_models_answer': 3.0}),
                               make_report('bob', {'tanh_fprop': 1.0}, pending={'deeper_models_answer': 3.0}),
                               make_report('oscar', {}, status='rejected')])
    lines = table.splitlines()
    assert '(+3 pending manual grading)' in lines[1] and '2 / 13' in lines[1]
    assert 'pending' not in lines[3]
    assert lines[-1].startswith('6 points await manual grading (2 students)')
    assert 'await' not in class_table(spec, [make_report('carol', {'tanh_fprop': 2.0})])


CANVAS_EXPORT = '''Student,ID,SIS User ID,SIS Login ID,Section,Lab 3: Multiple layer models (4411),Current Score
    Points Possible,,,,,13,(read only)
"Liddell, Alice",101,s0001,alice@uni.example,Tue 10am,,
"Hatter, Mad",102,s0002,hatter,Tue 10am,5,
"Student, Test",103,,,Tue 10am,,
'''


def test_a_canvas_export_as_roster_matches_login_ids_and_skips_points_possible(tmp_path, spec):
    roster = load_roster(write(tmp_path, CANVAS_EXPORT))
    assert roster.kind == CANVAS
    assert roster.columns == ['name', 'ID', 'SIS User ID', 'SIS Login ID', 'Section']
    assert set(roster.rows) == {'101', '102', '103'}  # not "Points Possible"
    assert roster.lookup('alice')['name'] == 'Liddell, Alice'  # login id before the @
    assert roster.lookup('HATTER')['ID'] == '102' and roster.lookup('s0001')['ID'] == '101'
    assert roster.lookup('Liddell_Alice') is None  # names are not ids
    table = {row['student']: row for row in rows(grades_csv_with_roster(
        spec, [make_report('alice', {'tanh_fprop': 2.0}), make_report('zed', {})], roster))}
    assert table['alice']['roster'] == 'ok' and table['alice']['SIS User ID'] == 's0001'
    assert table['zed']['roster'] == NOT_IN_ROSTER
    assert table['102']['roster'] == NO_SUBMISSION and table['103']['roster'] == NO_SUBMISSION
    assert not any('Points Possible' in key or 'Points Possible' in row['name'] for key, row in table.items())


def test_a_moodle_export_as_roster_matches_username_email_and_id_number(tmp_path):
    roster = load_roster(write(tmp_path, 'First name,Last name,ID number,Institution,Department,Email address,'
                                         'Assignment: Lab 3 (Real)\nAlice,Liddell,900,,,Alice.L@uni.example,-\n'
                                         'Bob,Jones,901,,,bob@uni.example,-\n'))
    assert roster.kind == MOODLE
    assert roster.lookup('alice_l')['ID number'] == '900' and roster.lookup('901')['First name'] == 'Bob'
    assert roster.lookup('bob@uni.example')['Email address'] == 'bob@uni.example'


def test_a_key_two_rows_share_matches_neither(tmp_path):
    roster = load_roster(write(tmp_path, 'Student,ID,SIS User ID,SIS Login ID,Section\n'
                                         'A,1,x1,sam@one.example,\nB,2,x2,sam@two.example,\n'))
    assert roster.lookup('sam') is None
    assert roster.lookup('sam@one.example')['ID'] == '1'


def test_a_plain_roster_stays_plain(tmp_path):
    assert load_roster(write(tmp_path, 'student,ID number\nalice,1\n')).kind == PLAIN


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
