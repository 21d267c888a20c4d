"""Tests of the JUnit XML files (autograder.outputs.junit) and of the GitHub Classroom workflow.

The files are parsed back and checked against the common JUnit shape that CI
tools read (testsuites > testsuite > testcase, with failure / error / skipped
children and consistent counts). The workflow's own `run:` commands are run
here, on a copy of the released notebook, as GitHub Actions would run them
(only the installation and the MNIST download are left out: this test uses
the installed grader and the local data).
"""

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import nbformat
import pytest
import yaml

from autograder import cli, demo
from autograder.outputs.junit import junit_xml, main as junit_main, points_in, write_class_junit, xml_text
from autograder.results import CheckResult, Report

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = '03_multiple_layer_models'
WORKFLOW = REPO_ROOT / 'examples' / 'github-classroom' / '.github' / 'workflows' / 'grade.yml'
HOSTILE = 'got <tag attr="x"> & ]]> \x00\x1b[31m\ud800 end'


def check(status, grade_id='tanh_fprop', output='', score=0.0, max_score=1.0, kind='fixed'):
    return CheckResult(grade_id=grade_id, name='{0} check'.format(kind), target='TanhLayer.fprop', kind=kind,
                       status=status, score=score, max_score=max_score, output=output)


def make_report(tests, status='graded', error=''):
    return Report(student='alice', assignment=ASSIGNMENT, submission='alice.ipynb', sha256='0' * 64,
                  status=status, score=sum(t.score for t in tests), max_score=13.0, isolation='bwrap',
                  execution_time=1.5, tests=tests, error=error)


def assert_junit_shape(root):
    """The common JUnit XML shape: counts that add up, required attributes, known children."""
    assert root.tag == 'testsuites'
    suites = root.findall('testsuite')
    assert suites and all(child.tag == 'testsuite' for child in root)
    for suite in suites:
        for name in ('name', 'tests', 'failures', 'errors', 'skipped', 'time', 'timestamp'):
            assert suite.get(name) is not None, name
        cases = suite.findall('testcase')
        assert int(suite.get('tests')) == len(cases)
        outcome = {'failure': 0, 'error': 0, 'skipped': 0}
        for case in cases:
            assert case.get('name') and case.get('classname') and float(case.get('time')) >= 0
            children = [child.tag for child in case]
            assert len(children) <= 1 and set(children) <= set(outcome)
            for tag in children:
                outcome[tag] += 1
                assert case.find(tag).get('message') is not None
        assert (int(suite.get('failures')), int(suite.get('errors')), int(suite.get('skipped'))) == \
            (outcome['failure'], outcome['error'], outcome['skipped'])
        assert {p.get('name') for p in suite.find('properties')} >= {'score', 'max_score'}
    for name in ('tests', 'failures', 'errors', 'skipped'):
        assert int(root.get(name)) == sum(int(s.get(name)) for s in suites)


def test_each_check_is_a_test_case_with_its_outcome():
    tests = [check('passed', score=1.0), check('failed', output='wrong values at [1, 2]'),
             check('error', output='NotImplementedError'), check('timeout', output='took too long'),
             check('pending', grade_id='deeper_models_answer', kind='manual', max_score=3.0)]
    root = ElementTree.fromstring(junit_xml(make_report(tests)))
    assert_junit_shape(root)
    cases = root.find('testsuite').findall('testcase')
    assert [len(list(case)) for case in cases] == [0, 1, 1, 1, 1]
    assert cases[1].find('failure').text == 'wrong values at [1, 2]'
    assert cases[2].find('error').get('type') == 'error' and cases[3].find('error').get('type') == 'timeout'
    assert cases[4].find('skipped') is not None
    assert cases[0].get('classname') == ASSIGNMENT + '.tanh_fprop'
    assert '(1 / 1 points)' in cases[0].get('name')
    assert points_in_text(junit_xml(make_report(tests))) == ('{0}.alice'.format(ASSIGNMENT), 1.0, 13.0)


def points_in_text(text, tmp=Path('/tmp')):
    import tempfile
    with tempfile.NamedTemporaryFile('w', suffix='.xml', delete=False, encoding='utf-8') as handle:
        handle.write(text)
    try:
        return points_in(Path(handle.name))
    finally:
        os.unlink(handle.name)


def test_markup_and_characters_xml_cannot_carry_are_made_safe():
    text = junit_xml(make_report([check('failed', output=HOSTILE)]))
    root = ElementTree.fromstring(text)  # parses: nothing was left unescaped
    failure = root.find('testsuite/testcase/failure')
    assert failure.text == 'got <tag attr="x"> & ]]> ??[31m? end'
    assert failure.get('message') == failure.text
    assert xml_text('a\tb\nc') == 'a\tb\nc'


def test_hidden_cases_carry_only_what_the_feedback_shows():
    withheld = ('raised ValueError on this hidden case; its message is withheld so that hidden inputs stay '
                'hidden (the public checks show such errors in full)')
    text = junit_xml(make_report([check('error', output=withheld)]))
    assert ElementTree.fromstring(text).find('testsuite/testcase/error').text == withheld


def test_a_rejected_file_is_one_test_case_in_error():
    root = ElementTree.fromstring(junit_xml(make_report([], status='rejected', error='not valid JSON')))
    assert_junit_shape(root)
    error = root.find('testsuite/testcase/error')
    assert error.get('type') == 'rejected' and error.text == 'not valid JSON'


def test_class_files_and_the_points_summary(tmp_path, capsys):
    folder = write_class_junit(tmp_path, [make_report([check('passed', score=2.0, max_score=2.0)])])
    assert sorted(p.name for p in folder.iterdir()) == ['alice.xml']
    assert junit_main([str(folder / 'alice.xml')]) == 0
    assert 'Points: 2 / 13' in capsys.readouterr().out
    (tmp_path / 'other.xml').write_text('<not-junit/>')
    assert junit_main([str(tmp_path / 'other.xml')]) == 2
    assert 'not a JUnit file' in capsys.readouterr().err


def test_grade_junit_writes_one_file_per_submission(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('MLP_COURSE_ROOT', str(REPO_ROOT))
    (tmp_path / 'bob.ipynb').write_text('not a notebook')
    out = tmp_path / 'grades'
    assert cli.main(['grade', '--assignment', ASSIGNMENT, '--out', str(out), '--workers', '1', '--no-progress',
                     '--junit', str(tmp_path / 'bob.ipynb')]) == cli.EXIT_OK
    assert_junit_shape(ElementTree.parse(out / 'junit' / 'bob.xml').getroot())


def _workflow_steps():
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding='utf-8'))
    return workflow, {step.get('name'): step for step in workflow['jobs']['grade']['steps']}


def _run_step(step, env, cwd):
    return subprocess.run(['bash', '-e', '-c', step['run']], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_the_workflow_is_well_formed():
    workflow, steps = _workflow_steps()
    assert True in workflow or 'on' in workflow  # YAML 1.1 reads the key `on` as true
    assert {'Install the grader', 'Fetch MNIST', 'Self-check', 'Points'} <= set(steps)
    assert steps['Points'].get('if') == 'always()'
    assert workflow['env']['ASSIGNMENT'] == ASSIGNMENT


@pytest.mark.parametrize('solved', [True, False])
def test_the_workflow_commands_grade_a_student_repository(tmp_path, mnist_dir, solved):
    workflow, steps = _workflow_steps()
    repo = tmp_path / 'student-repo'
    repo.mkdir()
    notebook = demo.submission_notebook(REPO_ROOT, ASSIGNMENT) if solved else demo.released_notebook(REPO_ROOT, ASSIGNMENT)
    nbformat.write(notebook, str(repo / workflow['env']['NOTEBOOK']))
    shutil.copytree(REPO_ROOT / 'release' / ASSIGNMENT / 'mlp', repo / 'mlp')
    summary = tmp_path / 'summary.md'
    env = dict(os.environ, **{key: str(value) for key, value in workflow['env'].items()})
    env.update(GRADER_DIR=str(REPO_ROOT), GITHUB_STEP_SUMMARY=str(summary), MLP_DATA_DIR=str(mnist_dir),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get('PATH', '')]))
    checked = _run_step(steps['Self-check'], env, repo)
    assert checked.returncode == (0 if solved else 1), checked.stdout + checked.stderr
    assert 'public checks passed' in checked.stdout
    points = _run_step(steps['Points'], env, repo)
    assert points.returncode == 0, points.stderr
    root = ElementTree.parse(repo / 'test-results' / 'junit.xml').getroot()
    assert_junit_shape(root)
    score = float({p.get('name'): p.get('value') for p in root.find('testsuite/properties')}['score'])
    assert (score > 0) == solved
    assert 'Points: {0:g} /'.format(score) in summary.read_text()
