"""Tests of autograder.outputs.gradescope: results.json format, the autograder zip, and run_autograder end to end."""

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import cli
from autograder.outputs.gradescope import (HIDDEN_VISIBILITY, PUBLIC_VISIBILITY, build_autograder_zip,
                                   find_submitted_notebook, results_json, unpack_like_gradescope)
from autograder.results import CheckResult, Report
from autograder.course.spec import load_spec

jsonschema = pytest.importorskip('jsonschema')

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = '03_multiple_layer_models'
NOTEBOOK = '03_Multiple_layer_models.ipynb'

# The fields of Gradescope's results.json ("Autograder Specifications", output format).
_VISIBILITY = {'enum': ['hidden', 'after_due_date', 'after_published', 'visible']}
RESULTS_SCHEMA = {
    'type': 'object',
    'additionalProperties': False,
    'required': ['score', 'tests'],
    'properties': {
        'score': {'type': 'number'},
        'execution_time': {'type': 'number'},
        'output': {'type': 'string'},
        'output_format': {'enum': ['text', 'html', 'simple_format', 'md', 'ansi']},
        'test_output_format': {'enum': ['text', 'html', 'simple_format', 'md', 'ansi']},
        'test_name_format': {'enum': ['text', 'html', 'simple_format', 'md', 'ansi']},
        'visibility': _VISIBILITY,
        'stdout_visibility': _VISIBILITY,
        'extra_data': {'type': 'object'},
        'leaderboard': {'type': 'array'},
        'tests': {'type': 'array', 'items': {
            'type': 'object',
            'additionalProperties': False,
            'required': ['name', 'score', 'max_score', 'status', 'output', 'visibility'],
            'properties': {
                'score': {'type': 'number'},
                'max_score': {'type': 'number'},
                'status': {'enum': ['passed', 'failed']},
                'name': {'type': 'string'},
                'name_format': {'type': 'string'},
                'number': {'type': 'string'},
                'output': {'type': 'string'},
                'output_format': {'type': 'string'},
                'tags': {'type': 'array', 'items': {'type': 'string'}},
                'visibility': _VISIBILITY,
                'extra_data': {'type': 'object'},
            },
        }},
    },
}


def validate(results: dict) -> None:
    jsonschema.validate(results, RESULTS_SCHEMA)
    assert results['score'] == pytest.approx(sum(test['score'] for test in results['tests']))
    for test in results['tests']:
        assert 0 <= test['score'] <= test['max_score'] + 1e-9


@pytest.fixture(scope='module')
def spec():
    return load_spec(ASSIGNMENT, REPO_ROOT)


def check(grade_id, kind, status, score, max_score, public, output=''):
    return CheckResult(grade_id=grade_id, name='{0} {1}'.format(grade_id, kind), target='T', kind=kind,
                       status=status, score=score, max_score=max_score, output=output, public=public)


def synthetic_report(status='graded', tests=(), error=''):
    return Report(student='s', assignment=ASSIGNMENT, submission=NOTEBOOK, sha256='1' * 64, status=status,
                  score=sum(t.score for t in tests), max_score=13.0, isolation='bwrap', execution_time=2.0,
                  tests=list(tests), error=error, notes=['kept 5 definitions'])


def test_results_follow_gradescope_format_and_hide_hidden_cases(spec):
    report = synthetic_report(tests=[
        check('tanh_fprop', 'fixed', 'passed', 0.5, 0.5, True),
        check('tanh_fprop', 'fixed', 'failed', 0.0, 0.5, False, 'wrong values (50% of entries wrong).'),
        check('tanh_bprop', 'gradcheck', 'error', 0.0, 0.4, True, 'NotImplementedError'),
        check('tanh_training', 'training', 'timeout', 0.0, 1.0, False, 'took too long'),
        check('deeper_models_answer', 'manual', 'pending', 0.0, 3.0, True),
    ])
    results = results_json(report, spec)
    validate(results)
    tests = results['tests']
    assert [t['status'] for t in tests] == ['passed', 'failed', 'failed', 'failed']
    assert [t['visibility'] for t in tests] == [PUBLIC_VISIBILITY, HIDDEN_VISIBILITY, PUBLIC_VISIBILITY,
                                               HIDDEN_VISIBILITY]
    assert [t['number'] for t in tests] == ['1.1', '1.2', '2.1', '5.1']
    assert tests[2]['output'] == 'NotImplementedError'
    assert not any('deeper_models_answer' in t['name'] for t in tests)
    assert 'deeper_models_answer' in results['output']
    assert results['score'] == 0.5
    assert results['extra_data']['isolation'] == 'bwrap'


def test_rejected_submission_scores_zero_on_every_automatic_item(spec):
    results = results_json(synthetic_report(status='rejected', error='not valid JSON'), spec)
    validate(results)
    automatic = [item for item in spec.items if 'manual' not in item.checks]
    assert len(results['tests']) == len(automatic)
    assert sum(t['max_score'] for t in results['tests']) == sum(item.points for item in automatic)
    assert all(t['output'] == 'not valid JSON' and t['status'] == 'failed' for t in results['tests'])
    assert results['score'] == 0


def test_finding_the_notebook_in_the_submission_folder(tmp_path):
    nested = tmp_path / 'lab3' / NOTEBOOK
    nested.parent.mkdir()
    nested.write_text('{}')
    (tmp_path / 'scratch.ipynb').write_text('{}')
    (tmp_path / '.ipynb_checkpoints').mkdir()
    (tmp_path / '.ipynb_checkpoints' / NOTEBOOK).write_text('{}')
    assert find_submitted_notebook(tmp_path, NOTEBOOK) == nested
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'mine.ipynb').write_text('{}')
    assert find_submitted_notebook(other, NOTEBOOK) == other / 'mine.ipynb'
    (other / 'second.ipynb').write_text('{}')
    assert 'Several notebooks' in find_submitted_notebook(other, NOTEBOOK)
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert NOTEBOOK in find_submitted_notebook(empty, NOTEBOOK)


@pytest.fixture(scope='module')
def autograder_zip(spec, mnist_dir, tmp_path_factory):
    return build_autograder_zip(spec, tmp_path_factory.mktemp('zip') / 'autograder.zip', data_dir=mnist_dir)


def test_zip_layout(autograder_zip, spec):
    with zipfile.ZipFile(autograder_zip) as archive:
        infos = {info.filename: info for info in archive.infolist()}
    for name in ('setup.sh', 'run_autograder'):
        assert (infos[name].external_attr >> 16) & 0o111, name
    expected = ['requirements.txt', 'mlp_gradescope.json', 'harness/run_gradescope.py',
                'harness/autograder/grade.py', 'harness/autograder/sandbox/isolation.py', 'harness/autograder/outputs/gradescope.py',
                'harness/autograder/course/specs/{0}.json'.format(ASSIGNMENT), 'harness/mlp/layers.py',
                'course/source/{0}/{1}'.format(ASSIGNMENT, NOTEBOOK),
                'course/release/{0}/{1}'.format(ASSIGNMENT, NOTEBOOK),
                'course/release/{0}/mlp/layers.py'.format(ASSIGNMENT),
                'data/mnist/mnist-train.npz', 'data/mnist/mnist-valid.npz']
    for name in expected:
        assert name in infos, name
    assert not any('__pycache__' in name or name.endswith('.pyc') for name in infos)
    other_specs = [n for n in infos if n.startswith('harness/autograder/course/specs/') and ASSIGNMENT not in n]
    assert other_specs == []


def test_zip_is_reproducible(autograder_zip, spec, mnist_dir, tmp_path):
    again = build_autograder_zip(spec, tmp_path / 'again.zip', data_dir=mnist_dir)
    assert again.read_bytes() == autograder_zip.read_bytes()


def test_zip_without_data_lets_setup_fetch_it(spec, tmp_path):
    path = build_autograder_zip(spec, tmp_path / 'small.zip', include_data=False)
    with zipfile.ZipFile(path) as archive:
        assert not any(name.startswith('data/') for name in archive.namelist())
        assert 'fetch-data' in archive.read('setup.sh').decode()


def solution_code() -> str:
    source = nbformat.read(str(REPO_ROOT / 'source' / ASSIGNMENT / NOTEBOOK), as_version=4)
    for cell in source.cells:
        if cell.get('metadata', {}).get('nbgrader', {}).get('grade_id') == 'tanh_relu_solution':
            return re.sub(r'^\s*### (BEGIN|END) SOLUTION\s*$\n?', '', cell.source, flags=re.M)
    raise AssertionError('no solution cell')


def run_autograder(root: Path, notebook=None) -> tuple[subprocess.CompletedProcess, dict]:
    """Runs root/run_autograder as Gradescope would (cwd = root), with a clean environment."""
    if notebook is not None:
        nbformat.write(notebook, str(root / 'submission' / NOTEBOOK))
    env = {'PATH': '/usr/bin:/bin', 'HOME': str(root), 'LANG': 'C.UTF-8',
           'MLP_GRADESCOPE_ROOT': str(root), 'MLP_GRADESCOPE_PYTHON': sys.executable}
    done = subprocess.run([str(root / 'run_autograder')], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600)
    results = json.loads((root / 'results' / 'results.json').read_text(encoding='utf-8'))
    return done, results


def solved_notebook(*extra_cells):
    release = nbformat.read(str(REPO_ROOT / 'release' / ASSIGNMENT / NOTEBOOK), as_version=4)
    for cell in release.cells:
        if cell.get('metadata', {}).get('nbgrader', {}).get('grade_id') == 'tanh_relu_solution':
            cell.source = solution_code()
    release.cells += [nbformat.v4.new_code_cell(source) for source in extra_cells]
    return release


def test_run_autograder_grades_a_solution_with_the_bundled_harness(autograder_zip, spec, tmp_path):
    root = unpack_like_gradescope(autograder_zip, tmp_path / 'autograder')
    done, results = run_autograder(root, solved_notebook())
    assert done.returncode == 0, done.stdout + done.stderr
    validate(results)
    automatic = sum(item.points for item in spec.items if 'manual' not in item.checks)
    assert results['score'] == pytest.approx(automatic)
    assert all(test['status'] == 'passed' for test in results['tests'])
    visibility = {test['visibility'] for test in results['tests'] if 'hidden test case' in test['name']}
    assert visibility == {HIDDEN_VISIBILITY}
    assert 'grader: {0}'.format(root / 'source' / 'harness' / 'autograder') in done.stdout


def test_student_code_runs_as_an_unprivileged_user(autograder_zip, tmp_path):
    root = unpack_like_gradescope(autograder_zip, tmp_path / 'autograder')
    probe = ('import os\nclass TanhLayer(TanhLayer):\n    def fprop(self, inputs):\n'
             '        return inputs * 0 + os.getuid()\n')
    done, results = run_autograder(root, solved_notebook(probe))
    assert done.returncode == 0, done.stdout + done.stderr
    validate(results)
    if results['extra_data']['isolation'] != 'bwrap' or os.geteuid() != 0:
        pytest.skip('the uid switch needs bubblewrap and a root grader; isolation here: {0}'.format(
            results['extra_data']['isolation']))
    visible = [t for t in results['tests'] if t['tags'][0] == 'tanh_fprop' and t['visibility'] == PUBLIC_VISIBILITY
               and 'test arrays' in t['name']]
    assert visible and visible[0]['status'] == 'failed'
    assert 'got 65534' in visible[0]['output']


def test_missing_notebook_gives_a_zero_with_the_reason(autograder_zip, tmp_path):
    root = unpack_like_gradescope(autograder_zip, tmp_path / 'autograder')
    (root / 'submission' / 'answers.pdf').write_bytes(b'%PDF-1.4')
    done, results = run_autograder(root)
    assert done.returncode == 0, done.stdout + done.stderr
    validate(results)
    assert results['score'] == 0 and 'upload' in results['output'].lower() and NOTEBOOK in results['output']


def test_harness_imports_nothing_beyond_its_requirements(autograder_zip, tmp_path):
    root = unpack_like_gradescope(autograder_zip, tmp_path / 'autograder')
    nbformat.write(solved_notebook(), str(root / 'submission' / NOTEBOOK))
    harness = root / 'source' / 'harness'
    code = ('import sys, json; sys.path.insert(0, {0!r})\n'
            'from pathlib import Path\n'
            'from autograder.outputs.gradescope import run_in_container\n'
            'run_in_container(Path({1!r}))\n'
            'print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})))\n').format(str(harness), str(root))
    done = subprocess.run([sys.executable, '-I', '-c', code], capture_output=True, text=True, timeout=600,
                          cwd=root, env={'PATH': '/usr/bin:/bin', 'HOME': str(root)})
    assert done.returncode == 0, done.stderr
    imported = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert {'numpy', 'nbformat'} <= imported
    heavy = {'nbgrader', 'dask', 'distributed', 'tqdm', 'matplotlib', 'nbclient', 'jupyter_client', 'ipykernel',
             'sqlalchemy'}
    assert not imported & heavy
    requirements = (root / 'source' / 'requirements.txt').read_text().split()
    assert sorted(line.split('==')[0] for line in requirements) == ['nbformat', 'numpy']


def test_cli_builds_the_zip(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('MLP_COURSE_ROOT', str(REPO_ROOT))
    out = tmp_path / 'ag.zip'
    assert cli.main(['gradescope', '--assignment', ASSIGNMENT, '--out', str(out), '--no-data']) == cli.EXIT_OK
    assert zipfile.is_zipfile(out)
    assert 'Gradescope' in capsys.readouterr().out
    assert cli.main(['gradescope', '--assignment', 'no_such_lab', '--out', str(out)]) == cli.EXIT_USAGE
