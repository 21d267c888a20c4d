"""The sandbox shows the student's world only, whatever the grader's install layout (issue 10, class 5).

Each layout installs the grader the way a course would, in a temporary folder,
and runs a small driver with that layout's interpreter (a separate process, so
that the grader imports from the layout and nowhere else):

* ``editable``: this checkout (``pip install -e .``), the development set-up;
* ``wheel-in-venv``: the wheel built from this tree (``pip wheel . --no-deps``)
  installed in a fresh virtual environment;
* ``wheel-in-interpreter``: the wheel installed in the interpreter's own
  ``site-packages`` (an interpreter whose prefix holds its standard library
  and its packages, as in a ``python:3.x`` image, pyenv or conda), the layout
  in which student code used to import the reference ``mlp``;
* ``gradescope-harness``: the Gradescope zip's ``harness/`` folder on
  ``sys.path``, as ``run_autograder`` runs it;
* ``not-root``: the wheel in a virtual environment of the system's Debian
  interpreter, graded by an unprivileged user (uid 65534), where bubblewrap
  runs in a user namespace and its own root and ``/dev`` are tmpfs mounts
  owned by the sandbox's user.

In each, the driver (1) runs a probe in the sandbox that looks for the
grader's package, the hidden specs and the reference ``mlp`` (by their
installed paths, by importing them from there, and by a scan of everything
the sandbox can see) and tries to write outside its two scratch folders;
(2) runs the same direct probe without file-system isolation, to show that
the secrets are there to be found; (3) grades, public checks only, an honest
notebook (full marks: numpy and the student copy of ``mlp`` work in the
layout) and a hostile one whose ``TanhLayer`` is right only if its load-time
code finds anything installed besides numpy in a package folder in view (it
must score exactly the baseline).

Nothing is fetched: the dependencies come from this checkout's environment
(a ``.pth`` file), numpy is copied, and the wheel's build requirements come
from pip's configured index or cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import nbformat
import numpy
import pytest

from autograder import demo
from autograder.sandbox import isolation as sandbox
from hostile.catalogue import MODULE, Attack
from hostile.submissions import Targets, baseline_notebook, hostile_notebook, write

REPO_ROOT = Path(__file__).resolve().parents[1]
LAB3 = '03_multiple_layer_models'
DEPENDENCIES = sysconfig.get_paths()['purelib']  # this checkout's environment: nbformat and the rest
SYSTEM_PYTHON = Path('/usr/bin/python{0}.{1}'.format(*sys.version_info[:2]))

pytestmark = pytest.mark.skipif(not sandbox._probe('bwrap'), reason='bubblewrap does not work here')

#: Runs in the sandbox: everything it finds of the course, and where it can write.
PROBE_SOURCE = '''
import importlib.util
import json
import os
import time

SECRETS = {secrets!r}
SCAN = {scan!r}


def _course_file(path, name):
    if name == '03_multiple_layer_models.json':
        return True
    if name == 'grade.py' and os.path.basename(os.path.dirname(path)) == 'autograder':
        return True
    if name == 'layers.py':
        try:
            with open(path, 'rb') as handle:
                return b'class TanhLayer' in handle.read()
        except OSError:
            return False
    return False


def probe(x):
    findings = []
    for path in SECRETS:
        if os.path.exists(path):
            findings.append('exists: ' + path)
        layers = os.path.join(path, 'layers.py')
        try:
            spec = importlib.util.spec_from_file_location('stolen_layers', layers)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            if hasattr(module, 'TanhLayer'):
                findings.append('imported the reference from ' + layers)
        except BaseException:
            pass
    if SCAN:
        started = time.monotonic()
        for top, folders, files in os.walk('/'):
            if top in ('/proc', '/sys', '/dev'):
                folders[:] = []
                continue
            findings += ['found ' + os.path.join(top, name) for name in files
                         if _course_file(os.path.join(top, name), name)]
            if time.monotonic() - started > 60:
                findings.append('the scan did not finish')
                break
        for folder in ('/', '/dev', '/dev/shm', '/usr', '/sandbox', os.path.dirname(json.__file__)):
            try:
                with open(os.path.join(folder, 'probe-write'), 'w'):
                    pass
                os.unlink(os.path.join(folder, 'probe-write'))
                findings.append('writable ' + folder)
            except OSError:
                pass
    import numpy
    import mlp.layers
    if not hasattr(mlp.layers, 'AffineLayer') or numpy.tanh(0.0) != 0.0:
        findings.append('the student copy of mlp or numpy does not work')
    raise ValueError('FINDINGS' + json.dumps(findings))
'''

#: Run by each layout's interpreter; prints one JSON line.
DRIVER = '''
import json
import os
import sys

config = json.loads(sys.argv[1])
sys.path[:0] = config['path_first']
import numpy as np
from pathlib import Path

import autograder
import mlp
from autograder.course.spec import load_spec
from autograder.grade import grade_submission
from autograder.sandbox import isolation

package = os.path.realpath(os.path.dirname(autograder.__file__))
secrets = [package, os.path.join(package, 'course', 'specs'), os.path.realpath(os.path.dirname(mlp.__file__))]
spec = load_spec(config['assignment'], Path(config['course_root']))
request = isolation.Request({'type': 'call', 'id': 'probe', 'target': 'probe', 'method': None,
                             'args': [{'array': 0}]}, [np.zeros(1)], timeout=90.0)
findings = {}
for level, scan in (('bwrap', True), ('rlimits', False)):
    source = config['probe'].format(secrets=secrets, scan=scan)
    outcome = isolation.exec_untrusted(source, [request], student_mlp_dir=spec.student_mlp_dir, isolation=level)
    message = outcome.responses['probe'].message
    findings[level] = json.loads(message.split('FINDINGS', 1)[1].splitlines()[0]) if 'FINDINGS' in message else [message, outcome.stderr_tail[-2000:]]
scores = {}
for name, path in config['notebooks'].items():
    report = grade_submission(Path(path), spec, student=name, public_only=True)
    scores[name] = [report.status, report.score, all(test.status == 'passed' for test in report.tests),
                    report.isolation]
print(json.dumps({'autograder': package, 'mlp': secrets[2], 'uid': os.getuid(), 'findings': findings,
                  'scores': scores}))
'''

#: Load-time code of the hostile notebook: anything but numpy in a package folder in view is loot
#: (the folder numpy was imported from, the interpreter's own, the system's, Gradescope's harness).
_LOOT_SEARCH = '''
import glob
import os
import sys
import numpy
folders = {os.path.dirname(os.path.dirname(os.path.realpath(numpy.__file__)))}
for root in (sys.base_prefix, sys.prefix, '/usr', '/usr/local'):
    folders.update(glob.glob(os.path.join(root, 'lib*', 'python3*', '*-packages')))
folders.update(glob.glob('/autograder/source*'))
for folder in folders:
    try:
        if set(os.listdir(folder)) - {'numpy', 'numpy.libs'}:
            return True
    except OSError:
        pass
return False
'''
LOOT_ATTACK = Attack('search_package_folders', 'read', 'Look for installed packages where they usually are.',
                     _LOOT_SEARCH, (MODULE,), 'no points beyond the honest baseline')


# --------------------------------------------------------------------------
# Building the layouts
# --------------------------------------------------------------------------


@pytest.fixture(scope='module')
def notebooks(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp('notebooks')
    targets = Targets(repo=str(REPO_ROOT), submissions_dir=str(folder), out_dir=str(folder), victim='nobody',
                      site_dirs=(), tcp_port=9, unix_socket='/nonexistent', abstract_socket='none', tag='layout',
                      sleep_marker='0', grader_pidns='')
    honest = demo.solution_source(REPO_ROOT, LAB3)
    paths = {
        'honest': folder / 'honest.ipynb',
        'baseline': write(baseline_notebook(), folder / 'baseline.ipynb'),
        'hostile': write(hostile_notebook([LOOT_ATTACK], MODULE, targets), folder / 'hostile.ipynb'),
    }
    write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('import numpy as np\nfrom mlp.layers import Layer'),
                                          nbformat.v4.new_code_cell(honest)]), paths['honest'])
    return {name: str(path) for name, path in paths.items()}


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> Path:
    """The wheel of this tree, built from a copy (the build leaves nothing in the checkout)."""
    root = tmp_path_factory.mktemp('wheel')
    source = root / 'source'
    source.mkdir()
    for name in ('pyproject.toml', 'README.md', 'LICENSE'):
        if (REPO_ROOT / name).is_file():
            shutil.copy2(REPO_ROOT / name, source / name)
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc')
    shutil.copytree(REPO_ROOT / 'autograder', source / 'autograder', ignore=ignore)
    shutil.copytree(REPO_ROOT / 'reference', source / 'reference', ignore=ignore)
    completed = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--quiet', '-w', str(root),
                                str(source)], capture_output=True, text=True, timeout=600)
    if completed.returncode != 0:
        pytest.skip('the wheel could not be built here: ' + completed.stderr[-500:])
    return next(root.glob('mlp_autograde-*.whl'))


def _open_to_everyone(folder: Path) -> None:
    for directory, _, files in os.walk(folder):
        os.chmod(directory, 0o755)
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o444)


def _install(site_packages: Path, wheel_file: Path | None) -> None:
    """The wheel (no dependencies), a copy of numpy, and this checkout's other dependencies via a .pth."""
    site_packages.mkdir(parents=True, exist_ok=True)
    if wheel_file is not None:
        subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps', '--no-index',
                        '--target', str(site_packages), str(wheel_file)], check=True, timeout=300)
    package = Path(numpy.__file__).resolve().parent
    shutil.copytree(package, site_packages / 'numpy', ignore=shutil.ignore_patterns('__pycache__', 'tests'))
    if (package.parent / 'numpy.libs').is_dir():
        shutil.copytree(package.parent / 'numpy.libs', site_packages / 'numpy.libs')
    (site_packages / 'zz_grader_dependencies.pth').write_text(DEPENDENCIES + '\n')


def _venv(folder: Path, interpreter: str) -> tuple[Path, Path]:
    """A fresh virtual environment without pip: (its python, its site-packages)."""
    subprocess.run([interpreter, '-m', 'venv', '--without-pip', str(folder)], check=True, timeout=120)
    python = folder / 'bin' / 'python'
    site_packages = Path(subprocess.run([str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                                        capture_output=True, text=True, check=True).stdout.strip())
    return python, site_packages


def _own_prefix_interpreter(folder: Path) -> tuple[Path, Path]:
    """An interpreter whose prefix holds its standard library and its own site-packages.

    Like /usr/local in a python:3.x image: the binary is copied to
    <folder>/bin, the standard library is linked entry by entry into
    <folder>/lib/pythonX.Y, next to a real, empty site-packages.
    """
    base_lib = Path(sysconfig.get_paths(vars={'installed_base': sys.base_prefix})['stdlib'])
    version = 'python{0}.{1}'.format(*sys.version_info[:2])
    (folder / 'bin').mkdir(parents=True)
    stdlib = folder / 'lib' / version
    stdlib.mkdir(parents=True)
    for entry in base_lib.iterdir():
        if entry.name not in ('site-packages', 'dist-packages'):
            (stdlib / entry.name).symlink_to(entry)
    python = folder / 'bin' / version
    shutil.copy2(os.path.realpath(sys.executable), python)
    # Its own idea of where packages go: lib/pythonX.Y/site-packages for a python.org build,
    # local/lib/pythonX.Y/dist-packages for Debian's patched interpreter.
    listed = subprocess.run([str(python), '-I', '-c', 'import json, site; print(json.dumps(site.getsitepackages()))'],
                            capture_output=True, text=True, check=True, timeout=60).stdout
    own = [Path(path) for path in json.loads(listed) if Path(path).is_relative_to(folder)]
    return python, own[0]


def _run(python: Path, notebooks: dict, *, course_root: Path, path_first=(), cwd: Path,
         user: list[str] = (), env_extra: dict | None = None) -> dict:
    copies = {}
    for name, path in notebooks.items():  # where the grading user can read them
        copies[name] = str(cwd / os.path.basename(path))
        shutil.copyfile(path, copies[name])
        os.chmod(copies[name], 0o644)
    config = {'assignment': LAB3, 'course_root': str(course_root), 'probe': PROBE_SOURCE,
              'notebooks': copies, 'path_first': list(path_first)}
    driver = cwd / 'driver.py'
    driver.write_text(DRIVER)
    driver.chmod(0o644)
    env = {'PATH': '/usr/bin:/bin', 'HOME': str(cwd), 'LANG': 'C.UTF-8',
           'MLP_DATA_DIR': os.environ.get('MLP_DATA_DIR', str(REPO_ROOT.parent / 'shared' / 'data' / 'mnist'))}
    env.update(env_extra or {})
    completed = subprocess.run([*user, str(python), '-I', str(driver),
                                json.dumps(config)], capture_output=True, text=True, cwd=cwd, env=env,
                               timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _assert_student_world_only(result: dict, installed_in: str) -> None:
    assert result['autograder'].startswith(installed_in), result['autograder']  # the layout is as built
    assert result['findings']['bwrap'] == [], result['findings']['bwrap']
    # Without file-system isolation the same probe finds the secrets: they are there to be found.
    assert any(item.startswith('exists: ') for item in result['findings']['rlimits'])
    assert any(item.startswith('imported the reference') for item in result['findings']['rlimits'])
    scores = result['scores']
    assert all(score[3] == 'bwrap' for score in scores.values())
    status, score, all_passed, _ = scores['honest']
    assert status == 'graded' and all_passed and score > 0
    assert scores['hostile'][:2] == scores['baseline'][:2]
    assert scores['baseline'][1] < score  # the loot would have shown as points


# --------------------------------------------------------------------------
# The layouts
# --------------------------------------------------------------------------


def test_editable_checkout(notebooks, tmp_path):
    result = _run(Path(sys.executable), notebooks, course_root=REPO_ROOT, cwd=tmp_path)
    _assert_student_world_only(result, str(REPO_ROOT))


def test_wheel_in_a_fresh_virtual_environment(wheel, notebooks, tmp_path):
    python, site_packages = _venv(tmp_path / 'venv', sys.executable)
    _install(site_packages, wheel)
    result = _run(python, notebooks, course_root=REPO_ROOT, cwd=tmp_path)
    _assert_student_world_only(result, os.path.realpath(site_packages))


def test_wheel_in_the_interpreters_own_site_packages(wheel, notebooks, tmp_path):
    """The python:3.x image layout: the grader sits in site-packages under the interpreter's prefix."""
    prefix = tmp_path / 'prefix'
    python, site_packages = _own_prefix_interpreter(prefix)
    _install(site_packages, wheel)
    _open_to_everyone(prefix)  # the sandbox's uid must be able to run the interpreter
    tmp_path.chmod(0o755)
    result = _run(python, notebooks, course_root=REPO_ROOT, cwd=tmp_path)
    _assert_student_world_only(result, os.path.realpath(site_packages))


def test_gradescope_harness_folder(notebooks, tmp_path):
    from autograder.course.spec import load_spec
    from autograder.outputs import gradescope
    source = tmp_path / 'autograder' / 'source'
    for name, member, mode in gradescope.zip_members(load_spec(LAB3, REPO_ROOT), include_data=False):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(member, Path):
            shutil.copyfile(member, target)
        else:
            target.write_text(member)
    python, site_packages = _venv(tmp_path / 'venv', sys.executable)
    _install(site_packages, None)
    harness = source / 'harness'
    result = _run(python, notebooks, course_root=source / 'course', path_first=[str(harness)], cwd=tmp_path)
    _assert_student_world_only(result, os.path.realpath(harness))


def _unprivileged_bwrap_works(folder: str) -> str | None:
    """None if uid 65534 can run bwrap in a user namespace here, else why not."""
    if os.geteuid() != 0 or shutil.which('setpriv') is None:
        return 'needs root (to become uid 65534) and setpriv'
    if not SYSTEM_PYTHON.is_file():
        return 'no system interpreter {0} of this Python version'.format(SYSTEM_PYTHON)
    completed = subprocess.run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
                                'bwrap', '--unshare-user', '--ro-bind', '/', '/', '--', '/bin/true'],
                               capture_output=True, text=True, cwd=folder, timeout=60)
    if completed.returncode != 0:
        return 'bwrap does not run for an unprivileged user here: ' + completed.stderr.strip()[-300:]
    return None


def test_graded_by_an_unprivileged_user(wheel, notebooks):
    """bwrap in a user namespace: its root and /dev are the sandbox user's, so they are made read-only."""
    folder = Path(tempfile.mkdtemp(prefix='mlp-layout-'))  # not under pytest's owner-only folders
    try:
        folder.chmod(0o755)
        reason = _unprivileged_bwrap_works(str(folder))
        if reason:
            pytest.skip(reason)
        python, site_packages = _venv(folder / 'venv', str(SYSTEM_PYTHON))
        _install(site_packages, wheel)
        _open_to_everyone(folder)
        work = folder / 'work'
        work.mkdir()
        os.chown(work, 65534, 65534)
        result = _run(python, notebooks, course_root=REPO_ROOT, cwd=work,
                      user=['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'])
        assert result['uid'] == 65534
        _assert_student_world_only(result, os.path.realpath(site_packages))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
