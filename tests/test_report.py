"""Tests of the grade directory: report JSON, feedback, grades.csv, summary.json, resume.

One small class (a solution, an untouched release, a text file saved as
.ipynb and a .txt file) is graded once into a module-scoped directory; the
tests read what was written, then grade again to check resuming.
"""

import csv
import io
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from autograder import batch, demo
from autograder.outputs import report as report_files
from autograder.results import CHECK_KINDS, CHECK_STATUSES, REPORT_SCHEMA, CheckResult, Report
from autograder.course.spec import load_spec

LAB3 = '03_multiple_layer_models'
REPO_ROOT = Path(__file__).resolve().parents[1]

# DESIGN section 5: the report's keys and their types.
REPORT_KEYS = {
    'schema': str, 'student': str, 'assignment': str, 'submission': str, 'sha256': str,
    'status': str, 'score': (int, float), 'max_score': (int, float), 'isolation': str,
    'execution_time': (int, float), 'tests': list,
}
TEST_KEYS = {
    'grade_id': str, 'name': str, 'target': str, 'kind': str, 'status': str,
    'score': (int, float), 'max_score': (int, float), 'output': str,
}
# Beyond the DESIGN example: what was kept/skipped from the notebook, and a recognised mistake.
OPTIONAL_REPORT_KEYS = {'notes': list}
OPTIONAL_TEST_KEYS = {'diagnosis': str, 'harness_error': bool}  # harness_error: only ever true


def assert_follows_the_schema(data, spec):
    required = dict(REPORT_KEYS)
    if data.get('status') in ('rejected', 'error'):
        required['error'] = str
    assert set(required) <= set(data), set(required) - set(data)
    assert set(data) <= set(required) | set(OPTIONAL_REPORT_KEYS), set(data) - set(required)
    for key, kind in {**required, **OPTIONAL_REPORT_KEYS}.items():
        if key in data:
            assert isinstance(data[key], kind) and not isinstance(data[key], bool), (key, data[key])
    assert data['schema'] == REPORT_SCHEMA == 'mlp-autograde/report/1'
    assert data['assignment'] == spec.name
    assert re.fullmatch('[0-9a-f]{64}', data['sha256']), data['sha256']
    assert data['status'] in ('graded', 'rejected', 'error')
    assert data['isolation'] in ('bwrap', 'unshare', 'rlimits')
    assert data['max_score'] == spec.max_score
    assert all(isinstance(note, str) for note in data.get('notes', []))
    if data['status'] in ('rejected', 'error'):
        assert data['score'] == 0 and data['tests'] == [] and data['error'].strip()
        return
    assert data['score'] == pytest.approx(sum(t['score'] for t in data['tests']), abs=1e-3)
    assert sum(t['max_score'] for t in data['tests']) == pytest.approx(spec.max_score)
    assert {t['grade_id'] for t in data['tests']} == {item.grade_id for item in spec.items}
    for test in data['tests']:
        assert set(TEST_KEYS) <= set(test) <= set(TEST_KEYS) | set(OPTIONAL_TEST_KEYS), set(test)
        for key, kind in {**TEST_KEYS, **OPTIONAL_TEST_KEYS}.items():
            if key in test:
                assert isinstance(test[key], kind) and (kind is bool) == isinstance(test[key], bool), (key, test)
        assert test.get('harness_error', True) is True
        assert test['kind'] in CHECK_KINDS == ('fixed', 'gradcheck', 'property', 'training', 'manual')
        assert test['status'] in CHECK_STATUSES == ('passed', 'failed', 'error', 'timeout', 'pending')
        assert 0 <= test['score'] <= test['max_score']
        assert (test['kind'] == 'manual') == (test['status'] == 'pending')
        if test['kind'] == 'training':
            assert '.' not in test['target']
        elif test['kind'] != 'manual':
            assert re.fullmatch(r'\w+\.\w+', test['target'])


@pytest.fixture(scope='module')
def graded(tmp_path_factory, mnist_dir):
    patch = pytest.MonkeyPatch()
    patch.setenv('MLP_DATA_DIR', str(mnist_dir))
    spec = load_spec(LAB3)
    folder = tmp_path_factory.mktemp('submissions')
    nbformat.write(demo.submission_notebook(REPO_ROOT, LAB3), str(folder / 'alice.ipynb'))
    nbformat.write(demo.released_notebook(REPO_ROOT, LAB3), str(folder / 'bob.ipynb'))
    (folder / 'carl.ipynb').write_text('my answers: tanh is np.tanh\n', encoding='utf-8')
    (folder / 'dora-notes.txt').write_text('Please grade this text.\n', encoding='utf-8')
    out = tmp_path_factory.mktemp('grades')
    submissions = batch.find_submissions([folder, folder / 'dora-notes.txt'], spec.name)
    reports, summary = batch.grade_batch(spec, submissions, out, workers=2, progress=False)
    yield spec, folder, out, {r.student: r for r in reports}, summary, submissions
    patch.undo()


def test_every_submission_gets_a_report_even_the_non_notebooks(graded):
    spec, folder, out, reports, summary, submissions = graded
    assert sorted(reports) == ['alice', 'bob', 'carl', 'dora-notes']
    assert reports['alice'].status == 'graded' and reports['alice'].score == pytest.approx(10.)
    assert reports['bob'].status == 'graded' and reports['bob'].score == 0.
    for student in ('carl', 'dora-notes'):
        report = reports[student]
        assert report.status == 'rejected' and report.score == 0.0
        assert 'not valid JSON' in report.error, report.error
        assert report.error.endswith('.')
    for student in reports:
        assert (out / '{0}.json'.format(student)).is_file()
        assert (out / '{0}.md'.format(student)).is_file()


def test_report_json_follows_the_schema(graded):
    spec, folder, out, reports, summary, submissions = graded
    for student in reports:
        data = json.loads((out / '{0}.json'.format(student)).read_text(encoding='utf-8'))
        assert_follows_the_schema(data, spec)
        assert data['student'] == student
    alice = json.loads((out / 'alice.json').read_text(encoding='utf-8'))
    assert alice['submission'].endswith('alice.ipynb')
    assert alice['notes'] and alice['notes'][0].startswith('Your grade is based on ')


def test_the_schema_check_can_fail(graded):
    spec, _, out, _, _, _ = graded
    data = json.loads((out / 'alice.json').read_text(encoding='utf-8'))
    for broken in ({**data, 'score': '10'}, {**data, 'extra': 1},
                   {**data, 'tests': [{**data['tests'][0], 'kind': 'hidden'}] + data['tests'][1:]},
                   {**data, 'isolation': 'none'}):
        with pytest.raises(AssertionError):
            assert_follows_the_schema(broken, spec)


def test_grades_csv_has_one_row_per_student_and_one_column_per_item(graded):
    spec, folder, out, reports, summary, submissions = graded
    rows = list(csv.reader(io.StringIO((out / 'grades.csv').read_text(encoding='utf-8'))))
    grade_ids = [item.grade_id for item in spec.items]
    assert rows[0][:4 + len(grade_ids)] == ['student', 'score', 'max_score', 'status'] + grade_ids
    body = {row[0]: row for row in rows[1:]}
    assert sorted(body) == sorted(reports)
    alice = dict(zip(rows[0], body['alice']))
    assert (alice['score'], alice['max_score'], alice['status']) == ('10', '13', 'graded')
    assert alice['tanh_bprop'] == '2' and alice['tanh_training'] == '1' and alice['deeper_models_answer'] == 'pending'
    assert (alice['pending_points'], alice['max_reachable']) == ('3', '13')
    carl = dict(zip(rows[0], body['carl']))
    assert carl['status'] == 'rejected' and all(carl[g] == '0' for g in grade_ids)


def test_summary_has_counts_distribution_and_timing(graded):
    spec, folder, out, reports, summary, submissions = graded
    on_disk = json.loads((out / 'summary.json').read_text(encoding='utf-8'))
    assert on_disk == summary
    assert (summary['submissions'], summary['graded'], summary['rejected']) == (4, 2, 2)
    assert summary['graded_this_run'] == 4
    assert summary['max_score'] == 13.0
    assert summary['scores']['min'] == 0.0 and summary['scores']['max'] == pytest.approx(10.0)
    assert sum(bin_['count'] for bin_ in summary['scores']['histogram']) == 2
    assert summary['item_pass_rates']['tanh_fprop'] == 0.5
    assert 'deeper_models_answer' not in summary['item_pass_rates']
    assert summary['timing']['mean_seconds_per_submission'] > 0
    assert summary['isolation'] and set(summary['isolation']) <= {'bwrap', 'unshare', 'rlimits'}


def test_feedback_markdown(graded):
    spec, folder, out, reports, summary, submissions = graded
    alice = (out / 'alice.md').read_text(encoding='utf-8')
    assert '**Score: 10 / 13**' in alice
    assert 'Every automatic check passed.' in alice
    assert '| deeper_models_answer | pending / 3 | graded by your instructor |' in alice
    bob = (out / 'bob.md').read_text(encoding='utf-8')
    assert '## What to look at' in bob and 'NotImplementedError' in bob
    assert '| tanh_fprop | 0 / 2 | 0 of 4 |' in bob
    carl = (out / 'carl.md').read_text(encoding='utf-8')
    assert 'could not be graded' in carl and 'not valid JSON' in carl


def test_class_table_lists_everyone_with_score_and_status(graded):
    spec, folder, out, reports, summary, submissions = graded
    table = report_files.class_table(spec, list(reports.values()))
    lines = table.splitlines()
    assert lines[0].split() == ['student', 'score', 'status']
    assert [line.split()[0] for line in lines[1:-1]] == ['alice', 'bob', 'carl', 'dora-notes']
    assert lines[-1].startswith('6 points await manual grading (2 students)')
    assert '10 / 13' in lines[1] and 'graded' in lines[1]
    assert 'rejected' in lines[3] and 'not valid JSON' in lines[3]


def test_grading_again_grades_only_what_changed(graded):
    spec, folder, out, reports, summary, submissions = graded
    before = {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in out.glob('*.json')}
    again, second = batch.grade_batch(spec, submissions, out, workers=1, progress=False)
    assert second['graded_this_run'] == 0
    assert {r.student: r.score for r in again} == {r.student: r.score for r in reports.values()}
    for name in ('alice.json', 'bob.json', 'carl.json'):
        assert (out / name).stat().st_mtime_ns == before[name][0]

    # bob hands in the solution: only bob is graded again.
    nbformat.write(demo.submission_notebook(REPO_ROOT, LAB3), str(folder / 'bob.ipynb'))
    third_reports, third = batch.grade_batch(spec, submissions, out, workers=1, progress=False)
    assert third['graded_this_run'] == 1
    scores = {r.student: r.score for r in third_reports}
    assert scores['bob'] == pytest.approx(10.0) and scores['alice'] == pytest.approx(10.0)
    assert (out / 'alice.json').read_bytes() == before['alice.json'][1]
    assert (out / 'bob.json').read_bytes() != before['bob.json'][1]
    assert json.loads((out / 'summary.json').read_text())['graded_this_run'] == 1


def test_no_temporary_files_are_left_in_the_grade_directory(graded):
    _, _, out, _, _, _ = graded
    assert [p.name for p in out.iterdir() if p.name.startswith('.')] == []


# Unit tests -------------------------------------------------------------------------


def test_write_atomic_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / 'alice.json'
    report_files.write_atomic(target, 'old\n')

    def refuse(*args):
        raise OSError('disk full')
    monkeypatch.setattr(os, 'replace', refuse)
    with pytest.raises(OSError, match='disk full'):
        report_files.write_atomic(target, 'new\n')
    assert target.read_text() == 'old\n'
    assert [p.name for p in tmp_path.iterdir()] == ['alice.json']


def _report(tests, status='graded'):
    return Report(student='eve', assignment=LAB3, submission='eve.ipynb', sha256='a' * 64,
                  status=status, score=sum(t.score for t in tests), max_score=13.0,
                  isolation='bwrap', execution_time=1.0, tests=tests)


def test_feedback_lists_each_problem_with_its_status():
    tests = [CheckResult('tanh_fprop', 'TanhLayer.fprop check', 'TanhLayer.fprop', 'fixed', 'failed',
                         0.0, 0.5, 'TanhLayer.fprop returned wrong values (10% of entries wrong).'),
             CheckResult('tanh_fprop', 'TanhLayer.fprop other', 'TanhLayer.fprop', 'property', 'timeout',
                         0.0, 0.5, ''),
             CheckResult('tanh_bprop', 'TanhLayer.bprop check', 'TanhLayer.bprop', 'fixed', 'passed',
                         2.0, 2.0, '')]
    text = report_files.feedback_markdown(_report(tests))
    assert ('- **TanhLayer.fprop** (FAIL, TanhLayer.fprop check):\n\n  ```\n'
            '  TanhLayer.fprop returned wrong values (10% of entries wrong).\n  ```') in text
    assert '- **TanhLayer.fprop** (TIMEOUT, TanhLayer.fprop other):\n\n  ```\n  no details\n  ```' in text
    assert '| tanh_bprop | 2 / 2 | 1 of 1 |' in text
    assert 'TanhLayer.bprop check' not in text  # passed checks are not listed as problems


def test_histogram_puts_full_marks_in_the_last_bin():
    bins = report_files._histogram([0.0, 6.5, 13.0], 13.0)
    assert len(bins) == 10 and bins[0]['count'] == 1 and bins[-1]['count'] == 1
    assert bins[0]['from'] == 0 and bins[-1]['to'] == 13.0
    assert sum(b['count'] for b in bins) == 3


# --- issue 10, class 8: text is cleaned where it enters, escaped per format ----------------


@pytest.mark.parametrize('dirty, clean', [
    ('lone \udcff surrogate', 'lone ? surrogate'),
    ('clear \x1b[2J screen', 'clear ?[2J screen'),
    ('bidi \u202e override', 'bidi ? override'),
    ('bell \x07 NUL \x00 CR \r', 'bell ? NUL ? CR ?'),
    ('tab\tand\nnewline stay', 'tab\tand\nnewline stay'),
    ('accents é and CJK 변수 stay', 'accents é and CJK 변수 stay'),
])
def test_every_text_of_a_report_is_cleaned_when_the_report_is_built(dirty, clean):
    test = CheckResult('g', dirty, 'T.f', 'fixed', 'failed', 0.0, 1.0, dirty, diagnosis=dirty)
    report = Report(student=dirty, assignment=LAB3, submission=dirty, sha256='a' * 64, status='rejected',
                    score=0.0, max_score=1.0, isolation='bwrap', execution_time=0.0, tests=[test],
                    error=dirty, notes=[dirty])
    assert report.student == report.submission == report.error == report.notes[0] == clean
    assert test.name == test.output == test.diagnosis == clean
    report_files.report_json(report).encode('utf-8')  # never raises
    report_files.feedback_markdown(report).encode('utf-8')


def _rendered(markdown: str) -> str:
    """What a Markdown renderer renders: fenced blocks and code spans removed."""
    outside, fence = [], None
    for line in markdown.split('\n'):
        stripped = line.strip()
        run = re.match(r'`{3,}', stripped)
        if fence is None and run:
            fence = run.group(0)
        elif fence is not None and stripped == fence:
            fence = None
        elif fence is None:
            outside.append(re.sub(r'(`+)(.+?)\1', '', line))
    return '\n'.join(outside)


HOSTILE_WORDS = [
    '# Score: 10 / 10 PWNED',
    '```\n# PWNED\n```',
    '````` PWNED ``` `` `',
    '![x](http://198.51.100.1/PWNED.png) <img src=x onerror=alert(1)> PWNED',
    '`PWNED`',
    '| PWNED | table |',
]


@pytest.mark.parametrize('words', HOSTILE_WORDS)
def test_student_words_are_shown_as_code_in_markdown(words):
    test = CheckResult('tanh_fprop', 'TanhLayer.fprop check', 'TanhLayer.fprop', 'fixed', 'failed', 0.0, 1.0,
                       words)
    graded = _report([test])
    graded.notes = [words]
    graded.submission = words.replace('\n', ' ') + '.ipynb'
    rejected = _report([], status='rejected')
    rejected.error = words
    for report in (graded, rejected):
        text = report_files.feedback_markdown(report)
        assert 'PWNED' in text and 'PWNED' not in _rendered(text), text


def test_code_spans_and_blocks_hold_any_backticks():
    for words in ['a`b', '``', '`lead', 'trail`', '', 'x ``` y']:
        span = report_files.md_code(words)
        fence = re.match('`+', span).group(0)
        assert span.endswith(fence) and fence not in span[len(fence):-len(fence)]
    block = report_files.md_block('x\n````\ny')
    assert block[0] == block[-1] and len(block[0]) >= 5


def test_terminal_text_is_printable_only():
    assert report_files.terminal_text('a\x1b[2Jb\x07\u202ec\nd') == 'a?[2Jb??c?d'
    assert report_files.terminal_text('é 변수 ok') == 'é 변수 ok'


def test_the_class_table_prints_no_control_character():
    reports = [Report(student='ok', assignment=LAB3, submission='\x1b]0;PWNED\x07.ipynb', sha256='a' * 64,
                      status='rejected', score=0.0, max_score=1.0, isolation='bwrap', execution_time=0.0,
                      error='bad \x1b[2J file\nsecond line')]
    table = report_files.class_table(load_spec(LAB3), reports)
    assert not re.search('[\x00-\x08\x0b-\x1f\x7f-\x9f]', table.replace('\n', ''))


def test_a_harness_error_report_follows_the_schema_and_says_whose_failure_it_is():
    spec = load_spec(LAB3)
    report = batch._internal_failure_report(spec, 'x', 'x.ipynb', 'a' * 64, RuntimeError('boom'))
    data = json.loads(report_files.report_json(report))
    assert_follows_the_schema(data, spec)
    assert data['status'] == 'error' and 'not a problem with your submission' in data['error']
    assert 'not a problem with your work' in report_files.feedback_markdown(report)
    harness_check = CheckResult('g', 'n', 'T.f', 'training', 'error', 0.0, 1.0, 'x', harness=True)
    assert harness_check.to_json()['harness_error'] is True
    assert 'harness_error' not in CheckResult('g', 'n', 'T.f', 'fixed', 'failed', 0.0, 1.0).to_json()


def test_a_roster_row_matched_by_two_graded_ids_gives_neither_its_identity(tmp_path):
    """carol-2 and carol_2 match the same roster key: giving both the LMS id would grade one LMS id twice."""
    from autograder.outputs.roster import MATCHED_TWICE, grades_csv_with_roster, load_roster
    roster_file = tmp_path / 'roster.csv'
    roster_file.write_text('student,lms_id,name\ncarol-2,LMS-7,Carol Two\nalice,LMS-1,Alice\n', encoding='utf-8')
    roster = load_roster(roster_file)
    spec = load_spec(LAB3)

    def graded(student):
        return Report(student=student, assignment=LAB3, submission=student + '.ipynb', sha256='a' * 64,
                      status='graded', score=1.0, max_score=spec.max_score, isolation='bwrap', execution_time=0.0)

    rows = list(csv.DictReader(io.StringIO(grades_csv_with_roster(
        spec, [graded('carol-2'), graded('carol_2'), graded('alice')], roster))))
    by_student = {row['student']: row for row in rows}
    for student in ('carol-2', 'carol_2'):
        assert by_student[student]['roster'] == MATCHED_TWICE and by_student[student]['lms_id'] == ''
    assert by_student['alice']['roster'] == 'ok' and by_student['alice']['lms_id'] == 'LMS-1'
    assert sum(row['lms_id'] == 'LMS-7' for row in rows) == 0 and len(rows) == 3
