"""Tests of late work (autograder.outputs.late) and its columns in grades.csv."""

import csv
import io
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from autograder import cli
from autograder.course.spec import load_spec
from autograder.outputs.late import (FROM_FILE_TIME, FROM_NBGRADER, LatePolicy, LatePolicyError, apply_policy,
                                     choose_policy, format_delay, parse_penalty, parse_time,
                                     policy_from_nbgrader, submission_time)
from autograder.outputs.roster import grades_csv_with_roster
from autograder.results import CheckResult, Report

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = '03_multiple_layer_models'
DUE = datetime(2026, 11, 20, 17, 0, tzinfo=timezone.utc)


def nbgrader_submission(root: Path, student: str, name: str, stamp: str | None) -> Path:
    folder = root / 'submitted' / student / ASSIGNMENT
    folder.mkdir(parents=True)
    path = folder / name
    path.write_text('{}')
    if stamp is not None:
        (folder / 'timestamp.txt').write_text(stamp)
    return path


def report_for(path: Path, score=10.0, status='graded') -> Report:
    tests = [CheckResult(grade_id='tanh_fprop', name='c', target='T', kind='fixed', status='passed',
                         score=score, max_score=score)]
    return Report(student=path.parent.parent.name if path.parent.name == ASSIGNMENT else path.stem,
                  assignment=ASSIGNMENT, submission=str(path), sha256='0' * 64, status=status, score=score,
                  max_score=13.0, isolation='bwrap', execution_time=1.0, tests=tests)


def test_a_renamed_notebook_still_gets_its_folders_nbgrader_timestamp(tmp_path):
    path = nbgrader_submission(tmp_path, 'alice', 'my lab 3 (final).ipynb', '2026-11-21 09:30:00.000000 UTC')
    time = submission_time(path)
    assert time.source == FROM_NBGRADER
    assert time.when == datetime(2026, 11, 21, 9, 30, tzinfo=timezone.utc)


def test_without_a_timestamp_the_file_time_is_recorded(tmp_path):
    path = tmp_path / 'bob.ipynb'
    path.write_text('{}')
    moment = DUE + timedelta(hours=3)
    os.utime(path, (moment.timestamp(), moment.timestamp()))
    time = submission_time(path)
    assert time.source == FROM_FILE_TIME and time.when == moment


def test_an_unreadable_timestamp_falls_back_to_the_file_time(tmp_path):
    path = nbgrader_submission(tmp_path, 'carol', 'x.ipynb', 'yesterday-ish, I think')
    assert submission_time(path).source == FROM_FILE_TIME


@pytest.mark.parametrize('text, expected', [('none', ('none', 0.0)), ('ZERO', ('zero', 0.0)),
                                            ('10%/day', ('per_day', 10.0)), (' 2.5 % / day ', ('per_day', 2.5))])
def test_penalty_options(text, expected):
    assert parse_penalty(text) == expected


@pytest.mark.parametrize('text', ['half', '10', '150%/day', '-5%/day'])
def test_bad_penalty_options_are_refused(text):
    with pytest.raises(LatePolicyError, match='--late-penalty'):
        parse_penalty(text)


def test_bad_dates_are_refused():
    with pytest.raises(LatePolicyError, match='date'):
        parse_time('next Tuesday-ish')
    assert parse_time('2026-11-20 17:00') == DUE  # naive means UTC, as nbgrader reads it


def test_zero_and_per_day_penalties_from_nbgrader_timestamps(tmp_path):
    late = report_for(nbgrader_submission(tmp_path, 'alice', 'a.ipynb', '2026-11-22 05:00:00 UTC'))  # 36 h late
    on_time = report_for(nbgrader_submission(tmp_path, 'bob', 'b.ipynb', '2026-11-20 16:59:59 UTC'))
    zero = LatePolicy(due=DUE, method='zero')
    outcome = apply_policy(zero, late, ASSIGNMENT)
    assert outcome.seconds_late == 36 * 3600 and outcome.penalty == 10.0 and outcome.score_after == 0.0
    assert apply_policy(zero, on_time, ASSIGNMENT).penalty == 0.0
    per_day = apply_policy(LatePolicy(due=DUE, method='per_day', percent_per_day=10.0), late, ASSIGNMENT)
    assert per_day.penalty == pytest.approx(2 * 1.3)  # two started days, 10% of 13 each
    assert per_day.score_after == pytest.approx(10.0 - 2.6)
    harsh = apply_policy(LatePolicy(due=DUE, method='per_day', percent_per_day=100.0), late, ASSIGNMENT)
    assert harsh.score_after == 0.0  # never below zero
    assert format_delay(36 * 3600) == '1d 12:00:00' and format_delay(0) == ''


def test_a_file_time_shows_lateness_but_never_costs_points(tmp_path):
    path = tmp_path / 'dave.ipynb'
    path.write_text('{}')
    moment = (DUE + timedelta(days=2)).timestamp()
    os.utime(path, (moment, moment))
    outcome = apply_policy(LatePolicy(due=DUE, method='zero'), report_for(path), ASSIGNMENT)
    assert outcome.seconds_late == 2 * 86400 and outcome.penalty == 0.0 and outcome.score_after == 10.0


def test_grades_csv_carries_the_late_columns(tmp_path):
    spec = load_spec(ASSIGNMENT, REPO_ROOT)
    late = report_for(nbgrader_submission(tmp_path, 'alice', 'a.ipynb', '2026-11-21 17:00:00 UTC'), score=6.0)
    rows = list(csv.DictReader(io.StringIO(grades_csv_with_roster(
        spec, [late], None, LatePolicy(due=DUE, method='per_day', percent_per_day=20.0)))))
    row = rows[0]
    assert row['submitted_at'] == '2026-11-21 17:00:00 UTC' and row['time_source'] == FROM_NBGRADER
    assert row['late_by'] == '1d 00:00:00'
    assert float(row['penalty']) == pytest.approx(2.6) and float(row['score_after_penalty']) == pytest.approx(3.4)
    assert row['score'] == '6'  # the score column keeps its meaning


@pytest.fixture
def venv_on_path(monkeypatch):
    # nbgrader creates a gradebook by running its environment's `alembic` command.
    import sys
    monkeypatch.setenv('PATH', os.pathsep.join([str(Path(sys.executable).parent), os.environ.get('PATH', '')]))


def _course_with_due_date(tmp_path, config: str) -> Path:
    from nbgrader.api import Gradebook
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / 'nbgrader_config.py').write_text('c = get_config()\n' + config)
    with Gradebook('sqlite:///{0}'.format(tmp_path / 'gradebook.db'), 'default_course') as gradebook:
        gradebook.add_assignment(ASSIGNMENT, duedate=DUE.replace(tzinfo=None))
    return tmp_path


def test_the_nbgrader_course_gives_due_date_and_penalty_method(tmp_path, venv_on_path):
    course = _course_with_due_date(tmp_path, "c.LateSubmissionPlugin.penalty_method = 'zero'\n")
    policy = policy_from_nbgrader(course, None, ASSIGNMENT)
    assert policy.due == DUE and policy.method == 'zero'
    assert policy_from_nbgrader(course, None, 'another_assignment').due is None
    assert choose_policy(None, '5%/day', course, None, ASSIGNMENT).percent_per_day == 5.0
    assert choose_policy('2026-12-01 00:00 UTC', None, course, None, ASSIGNMENT).method == 'none'


def test_a_course_plugin_class_is_called_as_nbgrader_calls_it(tmp_path, monkeypatch, venv_on_path):
    (tmp_path / 'half_off.py').write_text(
        'from nbgrader.plugins import LateSubmissionPlugin\n'
        'class HalfOff(LateSubmissionPlugin):\n'
        '    def late_submission_penalty(self, student_id, score, total_seconds_late):\n'
        '        return score / 2 if student_id == "alice" else 0\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    course = _course_with_due_date(tmp_path / 'course', "c.AssignLatePenalties.plugin_class = 'half_off.HalfOff'\n")
    policy = policy_from_nbgrader(course, None, ASSIGNMENT)
    assert policy.method == 'plugin'
    late = report_for(nbgrader_submission(course, 'alice', 'renamed.ipynb', '2026-11-21 00:00:00 UTC'))
    assert apply_policy(policy, late, ASSIGNMENT).penalty == 5.0


def test_cli_refuses_a_penalty_without_a_due_date_before_grading(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('MLP_COURSE_ROOT', str(REPO_ROOT))
    notebook = tmp_path / 'alice.ipynb'
    notebook.write_text('{}')
    out = tmp_path / 'grades'
    assert cli.main(['grade', '--assignment', ASSIGNMENT, '--out', str(out), '--late-penalty', 'zero',
                     '--no-progress', str(notebook)]) == cli.EXIT_USAGE
    assert 'needs a due date' in capsys.readouterr().err
    assert cli.main(['grade', '--assignment', ASSIGNMENT, '--out', str(out), '--due', 'soon',
                     '--no-progress', str(notebook)]) == cli.EXIT_USAGE
    assert not (out / 'alice.json').exists()
