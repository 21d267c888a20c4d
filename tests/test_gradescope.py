"""Tests of autograder.outputs.gradescope: results.json format, the autograder zip, and run_autograder end to end."""

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

import nbformat
import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from autograder import cli
from autograder.outputs.gradescope import (CONTAINER_REQUIREMENTS, HIDDEN_VISIBILITY, LOCK_FILE,
                                           PUBLIC_VISIBILITY, SUPPORTED_PYTHONS, build_autograder_zip,
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


# --------------------------------------------------------------------------
# The lock (what setup.sh installs)
# --------------------------------------------------------------------------


def parse_lock(text: str) -> list[tuple[Requirement, list[str]]]:
    """(requirement, its --hash values) per entry of a pip requirements file with hashes."""
    entries = []
    for line in text.replace('\\\n', ' ').splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        requirement, *hashes = line.split(' --hash=')
        entries.append((Requirement(requirement.strip()), [value.strip() for value in hashes]))
    return entries


def marker_environment(python: str) -> dict:
    return {**default_environment(), 'python_version': python, 'python_full_version': python + '.0',
            'sys_platform': 'linux', 'platform_machine': 'x86_64', 'implementation_name': 'cpython',
            'extra': ''}


def pins_for(lock, python: str) -> dict[str, str]:
    """{distribution: pinned version} that pip on `python` installs from the lock."""
    pins = {}
    for requirement, _ in lock:
        if requirement.marker is None or requirement.marker.evaluate(marker_environment(python)):
            name = canonicalize_name(requirement.name)
            assert name not in pins, '{0} is pinned twice for Python {1}'.format(name, python)
            pins[name] = str(requirement.specifier).removeprefix('==')
    return pins


def installed_closure(roots) -> set[str]:
    """The distributions `roots` require here, transitively (markers for this interpreter, no extras)."""
    needed, pending = set(), list(roots)
    while pending:
        name = canonicalize_name(pending.pop())
        if name in needed:
            continue
        needed.add(name)
        for line in importlib.metadata.distribution(name).requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({'extra': ''}):
                pending.append(requirement.name)
    return needed


@pytest.fixture(scope='module')
def lock():
    return parse_lock(LOCK_FILE.read_text(encoding='utf-8'))


def test_the_lock_pins_every_package_exactly_with_sha256_hashes(lock):
    assert lock
    for requirement, hashes in lock:
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == '==', requirement
        assert '*' not in specifiers[0].version, requirement
        assert hashes and all(re.fullmatch('sha256:[0-9a-f]{64}', value) for value in hashes), requirement
        assert not requirement.extras, requirement
    for python in SUPPORTED_PYTHONS:
        pins_for(lock, python)  # no distribution twice for one Python


def test_the_lock_pins_the_roots_within_pyprojects_ranges_for_every_python(lock):
    declared = tomllib.loads((REPO_ROOT / 'pyproject.toml').read_text())['project']['dependencies']
    ranges = {canonicalize_name(Requirement(line).name): Requirement(line).specifier for line in declared}
    for python in SUPPORTED_PYTHONS:
        pins = pins_for(lock, python)
        for root in CONTAINER_REQUIREMENTS:
            name = canonicalize_name(root)
            assert name in pins, (root, python)
            assert ranges[name].contains(pins[name]), (root, pins[name], str(ranges[name]))


def test_the_lock_holds_the_dependencies_of_what_it_pins(lock):
    """Checked against the metadata of every pinned release installed here (the network test checks all)."""
    checked = 0
    for python in SUPPORTED_PYTHONS:
        pins = pins_for(lock, python)
        for name, version in pins.items():
            try:
                distribution = importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                continue
            if distribution.version != version:
                continue
            checked += 1
            for line in distribution.requires or []:
                needed = Requirement(line)
                if needed.marker is not None and not needed.marker.evaluate(marker_environment(python)):
                    continue
                dependency = canonicalize_name(needed.name)
                assert dependency in pins, '{0} {1} needs {2} on Python {3}'.format(name, version, line, python)
                assert needed.specifier.contains(pins[dependency], prereleases=True), (name, line, pins[dependency])
    assert checked, 'no pinned release is installed here, so nothing could be checked offline'


def _lock_script():
    location = REPO_ROOT / 'scripts' / 'lock_gradescope.py'
    module_spec = importlib.util.spec_from_file_location('lock_gradescope', location)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_the_lock_script_evaluates_markers_for_each_target_python():
    """pip evaluates markers for the Python running it; the script must do so for each target."""
    script = _lock_script()
    metadata = {'app': {'version': '1.0', 'requires_dist': ['backport>=2; python_version < "3.11"',
                                                            'helper', 'docs-only; extra == "docs"']},
                'helper': {'version': '3.1', 'requires_dist': None}}
    assert script.closure('3.11', ['app'], metadata) == {'app': '1.0', 'helper': '3.1'}
    assert script.closure('3.10', ['app'], metadata) == ['backport']  # missing: resolve it too
    metadata['backport'] = {'version': '2.0', 'requires_dist': []}
    assert script.closure('3.10', ['app'], metadata) == {'app': '1.0', 'helper': '3.1', 'backport': '2.0'}
    assert script.python_marker(['3.10', '3.12']) == 'python_version == "3.10" or python_version == "3.12"'


def test_the_lock_script_accepts_every_manylinux_wheel_the_oldest_image_can_install():
    script = _lock_script()
    tags = {str(tag) for tag in script.supported_tags('3.10')}
    assert 'cp310-cp310-manylinux_2_17_x86_64' in tags and 'cp310-cp310-manylinux_2_28_x86_64' in tags
    assert 'cp310-abi3-manylinux_2_17_x86_64' in tags and 'py3-none-any' in tags
    assert 'cp310-cp310-manylinux_2_39_x86_64' not in tags  # Ubuntu 22.04 has glibc 2.35
    assert 'cp311-cp311-manylinux_2_17_x86_64' not in tags and 'cp310-cp310-win_amd64' not in tags


def test_setup_installs_exactly_the_lock_with_hashes(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as archive:
        requirements = archive.read('requirements.txt').decode()
        setup = archive.read('setup.sh').decode()
    assert requirements == LOCK_FILE.read_text(encoding='utf-8')
    install = [line for line in setup.replace('\\\n', ' ').splitlines() if 'pip install' in line]
    assert len(install) == 1
    assert '--require-hashes' in install[0] and '--only-binary=:all:' in install[0]
    assert 'requirements.txt' in install[0]
    assert all(python in setup for python in SUPPORTED_PYTHONS)


def _network_allowed() -> bool:
    return os.environ.get('MLP_TEST_NETWORK') == '1'


@pytest.mark.network
@pytest.mark.skipif(not _network_allowed(), reason='reaches PyPI; set MLP_TEST_NETWORK=1')
@pytest.mark.parametrize('python', ['3.10', '3.12'])
def test_pip_downloads_every_pinned_wheel_for_python(lock, python, tmp_path):
    """What setup.sh asks of pip on Ubuntu 22.04 (3.10) and 24.04 (3.12): every pin has a wheel
    whose hash is in the lock, and pip finds no dependency left unpinned (--require-hashes)."""
    requirements = tmp_path / 'requirements-{0}.txt'.format(python)
    pins = pins_for(lock, python)
    requirements.write_text(''.join('{0}=={1} {2}\n'.format(r.name, pins[canonicalize_name(r.name)],
                                                             ' '.join('--hash=' + h for h in hashes))
                                    for r, hashes in lock if canonicalize_name(r.name) in pins))
    command = [sys.executable, '-m', 'pip', 'download', '--isolated', '--disable-pip-version-check',
               '--index-url', 'https://pypi.org/simple', '--only-binary=:all:', '--python-version', python,
               '--implementation', 'cp', '--require-hashes', '-r', str(requirements), '-d', str(tmp_path / 'wheels')]
    for minor in range(35, 16, -1):
        command += ['--platform', 'manylinux_2_{0}_x86_64'.format(minor)]
    environment = {key: value for key, value in os.environ.items() if not key.startswith('PIP_')}
    done = subprocess.run(command + ['--platform', 'manylinux2014_x86_64'], capture_output=True, text=True,
                          timeout=600, env={**environment, 'PIP_CONFIG_FILE': os.devnull})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    wheels = sorted(path.name for path in (tmp_path / 'wheels').iterdir())
    assert len(wheels) == len(pins), wheels
    assert all(name.endswith('.whl') for name in wheels)


# --------------------------------------------------------------------------
# results.json
# --------------------------------------------------------------------------


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


def test_zip_is_reproducible(spec, mnist_dir, tmp_path):
    # Two builds one after the other (the module's zip may predate an edit of the tree).
    first = build_autograder_zip(spec, tmp_path / 'first.zip', data_dir=mnist_dir)
    again = build_autograder_zip(spec, tmp_path / 'again.zip', data_dir=mnist_dir)
    assert again.read_bytes() == first.read_bytes()


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
    # Every distribution the grading process imported that the roots require is pinned in the zip's
    # lock for this Python (the other Pythons: test_the_lock_holds_the_dependencies_...). (Libraries also import optional extras when they happen to be installed,
    # as jsonschema does here; the clean-root test grades with nothing but the lock installed.)
    lock = parse_lock((root / 'source' / 'requirements.txt').read_text())
    providers = importlib.metadata.packages_distributions()
    third_party = {canonicalize_name(distribution)
                   for name in imported - set(sys.stdlib_module_names) - {'autograder', 'mlp'}
                   for distribution in providers.get(name, [])}
    required = installed_closure(CONTAINER_REQUIREMENTS)
    assert {'numpy', 'nbformat', 'ipython'} <= third_party & required
    assert third_party & required <= set(pins_for(lock, '{0}.{1}'.format(*sys.version_info[:2])))


def test_cli_builds_the_zip(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('MLP_COURSE_ROOT', str(REPO_ROOT))
    out = tmp_path / 'ag.zip'
    assert cli.main(['gradescope', '--assignment', ASSIGNMENT, '--out', str(out), '--no-data']) == cli.EXIT_OK
    assert zipfile.is_zipfile(out)
    assert 'Gradescope' in capsys.readouterr().out
    assert cli.main(['gradescope', '--assignment', 'no_such_lab', '--out', str(out)]) == cli.EXIT_USAGE


# --------------------------------------------------------------------------
# When the harness cannot run, results.json still says so
# --------------------------------------------------------------------------


def run_autograder_with(root: Path, python: str) -> tuple[subprocess.CompletedProcess, dict]:
    env = {'PATH': '/usr/bin:/bin', 'HOME': str(root), 'LANG': 'C.UTF-8', 'MLP_GRADESCOPE_ROOT': str(root),
           'MLP_GRADESCOPE_PYTHON': python}
    done = subprocess.run([str(root / 'run_autograder')], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    return done, json.loads((root / 'results' / 'results.json').read_text(encoding='utf-8'))


def assert_harness_failure(done, results, *words):
    assert done.returncode != 0
    validate(results)
    assert results['score'] == 0 and results['tests'] == [] and results['extra_data']['status'] == 'error'
    assert 'not graded' in results['output'] and 'instructor' in results['output']
    for word in words:
        assert word in results['output'], results['output']


def test_run_autograder_without_its_venv_writes_a_failed_result(autograder_zip, tmp_path):
    root = unpack_like_gradescope(autograder_zip, tmp_path / 'autograder')
    nbformat.write(solved_notebook(), str(root / 'submission' / NOTEBOOK))
    (root / 'results' / 'results.json').write_text('{"score": 13.0, "tests": []}')  # a stale one goes
    done, results = run_autograder_with(root, str(root / 'venv' / 'bin' / 'python'))
    assert_harness_failure(done, results, 'setup.sh', 'no Python at')


@pytest.mark.parametrize('breakage', ['import error', 'syntax error', 'interpreter without numpy', 'killed'])
def test_run_autograder_with_a_broken_harness_writes_a_failed_result(autograder_zip, tmp_path, breakage):
    root = unpack_like_gradescope(autograder_zip, tmp_path / 'autograder')
    nbformat.write(solved_notebook(), str(root / 'submission' / NOTEBOOK))
    harness = root / 'source' / 'harness' / 'autograder'
    python = sys.executable
    if breakage == 'import error':
        (harness / 'results.py').write_text('import a_module_that_is_not_installed\n')
    elif breakage == 'syntax error':
        (harness / 'checks' / 'oracle.py').write_text('def broken(:\n')
    elif breakage == 'interpreter without numpy':
        python = '/usr/bin/python3'
        probe = subprocess.run([python, '-I', '-c', 'import numpy'], capture_output=True)
        if probe.returncode == 0:
            pytest.skip('{0} has numpy'.format(python))
    else:
        (harness / 'results.py').write_text('import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n')
    done, results = run_autograder_with(root, python)
    assert_harness_failure(done, results)


# --------------------------------------------------------------------------
# setup.sh + run_autograder in a clean root, with nothing but the lock installed
# --------------------------------------------------------------------------


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(('pypi.org', 443), timeout=5).close()
    except OSError:
        return False
    return True


def world_readable_root() -> Path:
    """A folder like /autograder: traversable by everyone (pytest's tmp_path is owner-only), and
    like it not below /tmp, which the sandbox replaces by its own."""
    folder = Path(tempfile.mkdtemp(prefix='mlp-gradescope-', dir='/var/tmp' if os.path.isdir('/var/tmp') else None))
    folder.chmod(0o755)
    return folder


@pytest.fixture(scope='module')
def installed_root(autograder_zip):
    """The zip unpacked like Gradescope and set up by its own setup.sh: a venv of the lock, from PyPI."""
    if not _pypi_reachable():
        pytest.skip('setup.sh installs the lock from PyPI, which is not reachable here')
    python = '/usr/bin/python3'
    version = subprocess.run([python, '-c', 'import sys; print("%d.%d" % sys.version_info[:2])'],
                             capture_output=True, text=True)
    if version.returncode != 0 or version.stdout.strip() not in SUPPORTED_PYTHONS:
        pytest.skip('no supported system Python at {0}'.format(python))
    base = world_readable_root()
    root = unpack_like_gradescope(autograder_zip, base / 'autograder')
    env = {'PATH': '/usr/bin:/bin', 'HOME': str(base), 'LANG': 'C.UTF-8', 'MLP_GRADESCOPE_ROOT': str(root)}
    done = subprocess.run(['bash', str(root / 'source' / 'setup.sh')], cwd=root / 'source', env=env,
                          capture_output=True, text=True, timeout=900)
    try:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        yield root, done
    finally:
        shutil.rmtree(base, ignore_errors=True)


def fresh_submission(root: Path, notebook) -> None:
    for path in (root / 'submission').iterdir():
        path.unlink()
    (root / 'results' / 'results.json').unlink(missing_ok=True)
    nbformat.write(notebook, str(root / 'submission' / NOTEBOOK))


def run_as_gradescope(root: Path) -> tuple[subprocess.CompletedProcess, dict]:
    """run_autograder with only what Gradescope gives it: the root and a minimal environment."""
    env = {'PATH': '/usr/bin:/bin', 'HOME': '/root', 'LANG': 'C.UTF-8', 'MLP_GRADESCOPE_ROOT': str(root)}
    done = subprocess.run([str(root / 'run_autograder')], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    return done, json.loads((root / 'results' / 'results.json').read_text(encoding='utf-8'))


@pytest.mark.slow  # setup.sh builds a venv from PyPI: over a minute
def test_setup_then_run_autograder_in_a_clean_root(installed_root, spec):
    root, setup = installed_root
    assert setup.stderr.strip() == '', setup.stderr  # quiet: pip and setup.sh only speak on failure
    venv_python = root / 'venv' / 'bin' / 'python'
    listed = subprocess.run([str(venv_python), '-m', 'pip', 'list', '--format=json'], capture_output=True, text=True)
    installed = {canonicalize_name(item['name']): item['version'] for item in json.loads(listed.stdout)}
    version = subprocess.run([str(venv_python), '-c', 'import sys; print("%d.%d" % sys.version_info[:2])'],
                             capture_output=True, text=True).stdout.strip()
    pins = pins_for(parse_lock((root / 'source' / 'requirements.txt').read_text()), version)
    assert {name: installed.get(name) for name in pins} == pins
    assert set(installed) - set(pins) <= {'pip', 'setuptools'}  # nothing beyond the lock
    fresh_submission(root, solved_notebook())
    done, results = run_as_gradescope(root)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    validate(results)
    automatic = sum(item.points for item in spec.items if 'manual' not in item.checks)
    assert results['score'] == pytest.approx(automatic)
    assert all(test['status'] == 'passed' for test in results['tests'])


# --------------------------------------------------------------------------
# Issue 10 class 6: student code never has write access to the harness or the results
# --------------------------------------------------------------------------

#: Catalogue-style attacks on the autograder's own files, each one a way that student code with
#: write access could decide its grade: rewrite a harness module the grader imports later, forge
#: or redirect results.json, plant a module, change the points, the runner of the next sandbox,
#: the student mlp of the next sandbox, or numpy (in place or by a .pth file). They run inside
#: TanhLayer.fprop and swallow their errors: failed attacks leave a correct solution, and each one
#: that works adds 1 to the answer.
ATTACKS = r'''
import os as _os


def _attempts(root):
    import numpy as _np
    harness = _os.path.join(root, 'source', 'harness')
    course = _os.path.join(root, 'source', 'course')
    site = _os.path.dirname(_os.path.dirname(_os.path.realpath(_np.__file__)))
    forged = '{"score": 100.0, "tests": [], "output": "forged"}'
    appends = [
        (_os.path.join(harness, 'autograder', 'outputs', 'gradescope.py'),
         '\ndef results_json(report, spec):\n    return ' + forged + '\n'),
        (_os.path.join(harness, 'autograder', 'sandbox', 'child_runner.py'), '\n# rewritten runner\n'),
        (_os.path.join(course, 'source', ASSIGNMENT, NOTEBOOK), ' '),
        (_os.path.join(course, 'release', ASSIGNMENT, 'mlp', 'layers.py'), '\n# rewritten student mlp\n'),
        (_os.path.join(site, 'numpy', '__init__.py'), '\n# rewritten numpy\n'),
    ]
    creates = [
        (_os.path.join(root, 'results', 'results.json'), forged),
        (_os.path.join(harness, 'autograder', 'checks', 'zz_full_marks.py'), 'FULL = True\n'),
        (_os.path.join(site, 'zz_full_marks.pth'), 'import os\n'),
    ]
    done = []
    for path, text in appends + creates:
        try:
            with open(path, 'a' if (path, text) in appends else 'w') as stream:
                stream.write(text)
            done.append(path)
        except OSError:
            pass
    try:  # make the grader's own result unwritable, or send it elsewhere
        _os.chmod(_os.path.join(root, 'results'), 0o555)
        done.append('chmod results')
    except OSError:
        pass
    try:
        _os.rename(_os.path.join(root, 'results'), _os.path.join(root, 'results.moved'))
        _os.symlink('/nonexistent', _os.path.join(root, 'results'))
        done.append('moved results')
    except OSError:
        pass
    return done


class TanhLayer(TanhLayer):
    def fprop(self, inputs):
        # Every attack that works also makes the answer wrong: no success goes unnoticed.
        return super().fprop(inputs) + len(_attempts(ROOT))
'''


def attack_cell(root: Path) -> str:
    return 'ROOT = {0!r}\nASSIGNMENT = {1!r}\nNOTEBOOK = {2!r}\n'.format(str(root), ASSIGNMENT, NOTEBOOK) + ATTACKS


def tree_fingerprint(*tops: Path) -> dict[str, str]:
    """sha256 (or the link target) of every entry below `tops`, for before/after comparisons."""
    import hashlib
    seen = {}
    for top in tops:
        for path in sorted(top.rglob('*')):
            if '__pycache__' in path.parts:
                continue
            if path.is_symlink():
                seen[str(path)] = 'link to ' + os.readlink(path)
            elif path.is_file():
                seen[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                seen[str(path)] = 'folder {0:o}'.format(path.stat().st_mode & 0o7777)
    return seen


def test_the_attacks_work_where_nothing_stops_them(tmp_path):
    """The payloads are real: run by root with no sandbox they change every file they aim at."""
    root = tmp_path / 'autograder'
    site = tmp_path / 'site'
    for relative in ('source/harness/autograder/outputs/gradescope.py',
                     'source/harness/autograder/sandbox/child_runner.py',
                     'source/course/source/{0}/{1}'.format(ASSIGNMENT, NOTEBOOK),
                     'source/course/release/{0}/mlp/layers.py'.format(ASSIGNMENT)):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text('original\n')
    (root / 'source' / 'harness' / 'autograder' / 'checks').mkdir()
    (root / 'results').mkdir()
    fake_numpy = site / 'numpy'
    fake_numpy.mkdir(parents=True)
    (fake_numpy / '__init__.py').write_text('# original\n')
    code = attack_cell(root) + '\nprint(len(_attempts(ROOT)))\n'
    code = code.replace('class TanhLayer(TanhLayer):', 'class _Unused:')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60,
                          env={'PYTHONPATH': str(site), 'PATH': '/usr/bin:/bin'})
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) == 10  # 5 rewrites, 3 new files, results made read-only and moved
    assert (root / 'results').is_symlink()


def _python_the_drop_can_use(installed_root) -> str:
    return str(installed_root[0] / 'venv' / 'bin' / 'python')


@pytest.mark.slow  # setup.sh builds a venv from PyPI: over a minute
@pytest.mark.parametrize('level', ['bwrap', 'unshare', 'rlimits'])
def test_student_code_cannot_touch_the_harness_or_the_results_at_any_level(installed_root, spec, level):
    """With the image as setup.sh leaves it, the attacks change nothing at any isolation level: the
    child is dropped to uid 65534 (or sees only read-only mounts), and the grade is the solution's."""
    root = installed_root[0]
    fresh_submission(root, solved_notebook(attack_cell(root)))
    (root / 'results').chmod(0o755)
    before = tree_fingerprint(root / 'source', root / 'venv')
    env = {'PATH': '/usr/bin:/bin', 'HOME': '/root', 'LANG': 'C.UTF-8', 'MLP_GRADESCOPE_ROOT': str(root),
           'MLP_SANDBOX_ISOLATION': level}
    done = subprocess.run([str(root / 'run_autograder')], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    results = json.loads((root / 'results' / 'results.json').read_text(encoding='utf-8'))
    assert tree_fingerprint(root / 'source', root / 'venv') == before
    assert not (root / 'results.moved').exists() and not (root / 'results').is_symlink()
    assert (root / 'results').stat().st_mode & 0o777 == 0o755
    validate(results)
    if os.geteuid() != 0 and level != 'bwrap':
        assert done.returncode == 1 and 'refused' in results['output']  # the student would run as us
        return
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert results['extra_data']['isolation'] == level
    automatic = sum(item.points for item in spec.items if 'manual' not in item.checks)
    assert results['score'] == pytest.approx(automatic), results['output']


def test_where_student_code_would_run_as_root_the_autograder_refuses(autograder_zip, tmp_path):
    """At "rlimits" with an interpreter the unprivileged user cannot run, no uid drop is possible:
    nothing of the student's runs, and results.json says why."""
    from autograder.sandbox import isolation
    if os.geteuid() == 0 and isolation._uid_drop_works():
        pytest.skip('the uid drop works with {0} here'.format(sys.executable))
    root = unpack_like_gradescope(autograder_zip, tmp_path / 'autograder')
    fresh_submission(root, solved_notebook(attack_cell(root)))
    before = tree_fingerprint(root / 'source')
    env = {'PATH': '/usr/bin:/bin', 'HOME': str(root), 'LANG': 'C.UTF-8', 'MLP_GRADESCOPE_ROOT': str(root),
           'MLP_GRADESCOPE_PYTHON': sys.executable, 'MLP_SANDBOX_ISOLATION': 'rlimits'}
    done = subprocess.run([str(root / 'run_autograder')], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    results = json.loads((root / 'results' / 'results.json').read_text(encoding='utf-8'))
    assert done.returncode == 1
    validate(results)
    assert results['score'] == 0 and results['extra_data']['status'] == 'error'
    assert 'refused' in results['output'] and 'rlimits' in results['output'] and 'bubblewrap' in results['output']
    assert tree_fingerprint(root / 'source') == before


def test_the_grader_imports_everything_it_needs_before_student_code_runs(autograder_zip, tmp_path):
    root = unpack_like_gradescope(autograder_zip, tmp_path / 'autograder')
    nbformat.write(solved_notebook(), str(root / 'submission' / NOTEBOOK))
    harness = root / 'source' / 'harness'
    code = '\n'.join([
        'import json, sys',
        'sys.path.insert(0, {0!r})'.format(str(harness)),
        'from pathlib import Path',
        'import autograder.grade as grade',
        'from autograder.outputs.gradescope import run_in_container',
        'first_seen = []',
        'original = grade.Sandbox.run',  # the submission reaches the sandbox here, not before
        'def recording(self, *args, **kwargs):',
        '    if not first_seen:',
        '        first_seen.append(set(sys.modules))',
        '    return original(self, *args, **kwargs)',
        'grade.Sandbox.run = recording',
        '_, status = run_in_container(Path({0!r}))'.format(str(root)),
        'late = {name: getattr(sys.modules[name], "__file__", None) for name in set(sys.modules) - first_seen[0]}',
        'print(json.dumps({"status": status, "late": late}))',
    ])
    done = subprocess.run([sys.executable, '-I', '-c', code], capture_output=True, text=True, timeout=600, cwd=root,
                          env={'PATH': '/usr/bin:/bin', 'HOME': str(root)})
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer['status'] == 0
    late = {name: location for name, location in answer['late'].items()
            if location and not location.startswith(sys.base_prefix)}  # the standard library is root's
    assert late == {}, 'imported only after student code had run: {0}'.format(sorted(late))


# --------------------------------------------------------------------------
# Gradescope's base image itself: Ubuntu 22.04 with Python 3.10, in a chroot
# --------------------------------------------------------------------------

UBUNTU_ROOT_ENV = 'MLP_TEST_UBUNTU_ROOT'


def in_jail(jail: Path, command: str) -> subprocess.CompletedProcess:
    """`command` run by bash as root in the chroot, with the minimal environment Gradescope gives."""
    env = ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'LANG=C.UTF-8']
    if os.environ.get('PIP_CERT'):  # a machine behind a TLS-inspecting proxy
        shutil.copy(os.environ['PIP_CERT'], jail / 'etc' / 'ssl' / 'mlp-test-ca.crt')
        env.append('PIP_CERT=/etc/ssl/mlp-test-ca.crt')
    return subprocess.run(['chroot', str(jail), '/usr/bin/env', '-i', *env, 'bash', '-c', command],
                          capture_output=True, text=True, timeout=1800)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get(UBUNTU_ROOT_ENV), reason='no Ubuntu 22.04 root (Gradescope\'s base image; make one with '
                    'debootstrap and set {0} to it)'.format(UBUNTU_ROOT_ENV))
def test_the_zip_installs_and_grades_on_ubuntu_22_04(autograder_zip, spec):
    jail = Path(os.environ[UBUNTU_ROOT_ENV])
    if os.geteuid() != 0 or not (jail / 'proc' / 'self').exists():
        pytest.skip('needs root and {0} with /proc, /sys and /dev mounted'.format(jail))
    root = jail / 'autograder'
    shutil.rmtree(root, ignore_errors=True)
    unpack_like_gradescope(autograder_zip, root)
    setup = in_jail(jail, 'bash /autograder/source/setup.sh')
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    version = in_jail(jail, '/autograder/venv/bin/python -c "import sys; print(sys.version_info[:2])"')
    assert version.stdout.strip() == '(3, 10)'
    fresh_submission(root, solved_notebook(attack_cell(Path('/autograder'))))
    before = tree_fingerprint(root / 'source', root / 'venv')
    done = in_jail(jail, 'cd /autograder && ./run_autograder')
    assert tree_fingerprint(root / 'source', root / 'venv') == before
    results = json.loads((root / 'results' / 'results.json').read_text(encoding='utf-8'))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    validate(results)
    automatic = sum(item.points for item in spec.items if 'manual' not in item.checks)
    assert results['score'] == pytest.approx(automatic), results['output']
