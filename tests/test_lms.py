"""Tests of the Canvas and Moodle import files (autograder.outputs.canvas, autograder.outputs.moodle).

The inputs are written the way each LMS documents its own files: Canvas's
gradebook export (identity columns Student, ID, SIS User ID, SIS Login ID,
Section; a "Points Possible" row; assignment columns "Name (id)"; read-only
totals), and Moodle's plain-text grade export (user fields, then
"Assignment: NAME (Real)" grade columns; the import file has the same layout).
"""

import csv
import io
from pathlib import Path

import pytest

from autograder import cli
from autograder.course.spec import load_spec
from autograder.outputs.canvas import (CANVAS_IMPORT_FILE, POINTS_POSSIBLE, canvas_csv, choose_column,
                                       write_canvas)
from autograder.outputs.moodle import MOODLE_IMPORT_FILE, moodle_csv, write_moodle
from autograder.outputs.moodle import choose_column as choose_moodle_column
from autograder.outputs.roster import RosterError, load_roster
from autograder.results import CheckResult, Report

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = '03_multiple_layer_models'
CANVAS_ID_HEADER = ['Student', 'ID', 'SIS User ID', 'SIS Login ID', 'Section']

CANVAS_EXPORT = '''Student,ID,SIS User ID,SIS Login ID,Section,Lab 2: Single layer models (4410),\
Lab 3: Multiple layer models (4411),Current Score,Unposted Current Score,Final Score
    Points Possible,,,,,10,13,(read only),(read only),(read only)
"Liddell, Alice",101,s0001,alice@uni.example,Tue 10am,8,,,,
"=HYPERLINK(""http://x"")",102,s0002,mallory,Tue 10am,9,,,,
"Hatter, Mad",103,s0003,hatter,Wed 2pm,7,,,,
"Rabbit, White",104,s0004,rabbit,Wed 2pm,,,,,
'''

MOODLE_EXPORT = '''First name,Last name,ID number,Institution,Department,Email address,\
Assignment: Lab 3 multiple layer models (Real),Last downloaded from this course
Alice,Liddell,900,Uni,CS,Alice.Liddell@Uni.Example,-,1732000000
Mad,Hatter,901,Uni,CS,hatter@uni.example,-,1732000000
White,Rabbit,902,Uni,CS,rabbit@uni.example,-,1732000000
'''


@pytest.fixture(scope='module')
def spec():
    return load_spec(ASSIGNMENT, REPO_ROOT)


def report(student, score, status='graded', pending=0.0):
    tests = [CheckResult(grade_id='tanh_fprop', name='check', target='TanhLayer.fprop', kind='fixed',
                         status='passed', score=score, max_score=score)]
    if pending:
        tests.append(CheckResult(grade_id='deeper_models_answer', name='written answer', target='x',
                                 kind='manual', status='pending', score=0.0, max_score=pending))
    return Report(student=student, assignment=ASSIGNMENT, submission='/nowhere/{0}.ipynb'.format(student),
                  sha256='0' * 64, status=status, score=score if status == 'graded' else 0.0, max_score=13.0,
                  isolation='bwrap', execution_time=1.0, tests=tests if status == 'graded' else [])


def write(tmp_path, text, name):
    path = tmp_path / name
    path.write_text(text, encoding='utf-8')
    return path


def table(text):
    return list(csv.reader(io.StringIO(text)))


def test_canvas_import_has_canvas_columns_points_possible_and_one_assignment(tmp_path, spec):
    roster = load_roster(write(tmp_path, CANVAS_EXPORT, 'canvas.csv'))
    column = choose_column(roster, spec, None)
    assert column == 'Lab 3: Multiple layer models (4411)'
    text, result = canvas_csv(spec, [report('alice', 10.0, pending=3.0), report('mallory', 0.0, 'rejected'),
                                     report('hatter', 6.5), report('stranger', 13.0)], roster, column)
    rows = table(text)
    assert rows[0] == CANVAS_ID_HEADER + [column]
    assert rows[1][0] == POINTS_POSSIBLE and rows[1][1:5] == ['', '', '', ''] and rows[1][5] == '13'
    by_id = {row[1]: row for row in rows[2:]}
    assert sorted(by_id) == ['101', '102', '103', '104']  # every student of the export, in its order
    assert by_id['101'] == ['Liddell, Alice', '101', 's0001', 'alice@uni.example', 'Tue 10am', '10']
    assert by_id['102'][5] == '0' and by_id['102'][0].startswith("'=")  # rejected: 0; name not a formula
    assert by_id['103'][5] == '6.5' and by_id['104'][5] == ''  # nothing graded: blank, Canvas keeps the grade
    assert result.not_in_export == ['stranger'] and result.pending == ['101']
    assert sorted(result.written) == ['101', '102', '103']


def test_canvas_column_can_be_named_by_id_or_name_and_a_new_name_makes_a_new_assignment(tmp_path, spec):
    roster = load_roster(write(tmp_path, CANVAS_EXPORT, 'canvas.csv'))
    assert choose_column(roster, spec, '4410') == 'Lab 2: Single layer models (4410)'
    assert choose_column(roster, spec, 'lab 2: single layer models') == 'Lab 2: Single layer models (4410)'
    assert choose_column(roster, spec, 'Lab 3 resubmission') == 'Lab 3 resubmission'


def test_canvas_without_a_matching_column_asks_for_one(tmp_path, spec):
    export = CANVAS_EXPORT.replace('Lab 3: Multiple layer models (4411)', 'Quiz (4412)')
    roster = load_roster(write(tmp_path, export, 'canvas.csv'))
    with pytest.raises(RosterError, match='--canvas-column'):
        choose_column(roster, spec, None)


def test_canvas_refuses_a_file_that_is_not_a_canvas_export(tmp_path, spec):
    roster = load_roster(write(tmp_path, 'student,lms_id\nalice,1\n', 'plain.csv'))
    with pytest.raises(RosterError, match='Canvas gradebook export'):
        canvas_csv(spec, [], roster, 'x')


def test_moodle_import_keeps_user_fields_exactly_and_fills_the_assignment_column(tmp_path, spec):
    roster = load_roster(write(tmp_path, MOODLE_EXPORT, 'moodle.csv'))
    column = choose_moodle_column(roster, spec, None)
    assert column == 'Assignment: Lab 3 multiple layer models (Real)'
    text, result = moodle_csv(spec, [report('alice_liddell', 12.25), report('901', 4.0)], roster, column)
    rows = table(text)
    assert rows[0] == ['ID number', 'Email address', 'First name', 'Last name', column]
    assert rows[1] == ['900', 'Alice.Liddell@Uni.Example', 'Alice', 'Liddell', '12.25']  # case kept
    assert rows[2][4] == '4' and rows[3][4] == ''
    assert not any('feedback' in name.casefold() for name in rows[0])
    assert result.not_in_export == [] and sorted(result.written) == ['900', '901']


def test_moodle_without_a_grade_column_uses_the_assignment_name(tmp_path, spec):
    roster = load_roster(write(tmp_path, 'Username,Email address\nalice,a@x.example\n', 'moodle.csv'))
    assert choose_moodle_column(roster, spec, None) == ASSIGNMENT
    assert choose_moodle_column(roster, spec, 'Lab 3 (final)') == 'Lab 3 (final)'
    text, _ = moodle_csv(spec, [report('alice', 3.0)], roster, ASSIGNMENT)
    assert table(text) == [['Username', 'Email address', ASSIGNMENT], ['alice', 'a@x.example', '3']]


def test_moodle_refuses_a_canvas_export(tmp_path, spec):
    roster = load_roster(write(tmp_path, CANVAS_EXPORT, 'canvas.csv'))
    with pytest.raises(RosterError, match='Moodle export'):
        moodle_csv(spec, [], roster, 'x')


def test_writers_put_the_files_in_the_grade_directory(tmp_path, spec):
    canvas = write_canvas(tmp_path, spec, [report('hatter', 5.0)],
                          load_roster(write(tmp_path, CANVAS_EXPORT, 'canvas.csv')), None)
    moodle = write_moodle(tmp_path, spec, [report('hatter', 5.0)],
                          load_roster(write(tmp_path, MOODLE_EXPORT, 'moodle.csv')), None)
    assert canvas.path == tmp_path / CANVAS_IMPORT_FILE and canvas.path.is_file()
    assert moodle.path == tmp_path / MOODLE_IMPORT_FILE and moodle.path.is_file()


def test_cli_writes_canvas_and_moodle_files(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('MLP_COURSE_ROOT', str(REPO_ROOT))
    notebook = write(tmp_path, 'not a notebook', 'hatter.ipynb')
    out = tmp_path / 'grades'
    status = cli.main(['grade', '--assignment', ASSIGNMENT, '--out', str(out), '--workers', '1', '--no-progress',
                       '--canvas', str(write(tmp_path, CANVAS_EXPORT, 'canvas.csv')),
                       '--moodle', str(write(tmp_path, MOODLE_EXPORT, 'moodle.csv')), str(notebook)])
    assert status == cli.EXIT_OK
    canvas = {row[1]: row for row in table((out / CANVAS_IMPORT_FILE).read_text())[2:]}
    assert canvas['103'][5] == '0' and canvas['101'][5] == ''
    moodle = table((out / MOODLE_IMPORT_FILE).read_text())
    assert moodle[2][:2] == ['901', 'hatter@uni.example'] and moodle[2][-1] == '0'
    printed = capsys.readouterr().out
    assert 'Canvas import file' in printed and 'Grades > Import' in printed


def test_cli_refuses_a_plain_roster_as_canvas_export_before_grading(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('MLP_COURSE_ROOT', str(REPO_ROOT))
    notebook = write(tmp_path, 'not a notebook', 'alice.ipynb')
    out = tmp_path / 'grades'
    status = cli.main(['grade', '--assignment', ASSIGNMENT, '--out', str(out), '--no-progress',
                       '--canvas', str(write(tmp_path, 'student,lms\nalice,1\n', 'plain.csv')), str(notebook)])
    assert status == cli.EXIT_USAGE
    assert 'is not a Canvas export' in capsys.readouterr().err
    assert not (out / 'alice.json').exists()
