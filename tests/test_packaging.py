"""Packaging: building and installing the project is quiet and ships its data.

The build needs setuptools >= 77 in pip's isolated build environment, fetched from the
package index, so these tests are network tests (opt-in: MLP_TEST_NETWORK=1).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.network,
              pytest.mark.skipif(os.environ.get('MLP_TEST_NETWORK') != '1',
                                 reason='builds with setuptools from PyPI; set MLP_TEST_NETWORK=1')]

#: Build output that is a warning about the project's configuration (not pip's own notes about
#: the machine's package indexes, nor "byte-compiling is disabled" when PYTHONDONTWRITEBYTECODE is set).
SETUPTOOLS_WARNING = re.compile(r'(_Warning|Warning:|SetuptoolsDeprecationWarning|is absent from the `packages`)')


@pytest.fixture(scope='module')
def project_copy(tmp_path_factory) -> Path:
    """The files a build reads, copied (a build writes build/ and *.egg-info next to them)."""
    folder = tmp_path_factory.mktemp('project')
    for name in ('pyproject.toml', 'README.md'):
        shutil.copy(REPO_ROOT / name, folder / name)
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '*.egg-info')
    shutil.copytree(REPO_ROOT / 'autograder', folder / 'autograder', ignore=ignore)
    shutil.copytree(REPO_ROOT / 'reference', folder / 'reference', ignore=ignore)
    return folder


def verbose_pip(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'pip', *arguments, '-v', '--no-deps', '--disable-pip-version-check'],
                          cwd=cwd, capture_output=True, text=True, timeout=600)


#: The notice setuptools gives for every editable install whose packages do not all sit at the top
#: of the project (ours maps `mlp` to reference/mlp, so it uses an import finder): not about us.
EDITABLE_FINDER_NOTICE = 'BuildBackendWarning: Editable installation.'
#: How ./run silences that notice, and only it.
RUN_WARNING_FILTER = 'ignore:Editable installation:UserWarning'


def configuration_warnings(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines()
            if SETUPTOOLS_WARNING.search(line) and EDITABLE_FINDER_NOTICE not in line]


def test_building_the_wheel_is_quiet_and_ships_the_specs_and_the_lock(project_copy, tmp_path):
    done = verbose_pip('wheel', '-w', str(tmp_path), '.', cwd=project_copy)
    assert done.returncode == 0, done.stderr[-3000:]
    assert configuration_warnings(done) == []
    wheel, = tmp_path.glob('mlp_autograde-*.whl')
    names = set(zipfile.ZipFile(wheel).namelist())
    specs = {path.name for path in (REPO_ROOT / 'autograder' / 'course' / 'specs').glob('*.json')}
    assert specs and {'autograder/course/specs/' + name for name in specs} <= names
    assert 'autograder/outputs/gradescope-requirements.txt' in names
    packages = {str(path.parent.relative_to(REPO_ROOT)).replace(os.sep, '/')
                for path in (REPO_ROOT / 'autograder').rglob('__init__.py')}
    assert {package + '/__init__.py' for package in packages} <= names  # every package, new ones too
    assert 'mlp/__init__.py' in names and not any(name.startswith(('tests/', 'release/')) for name in names)


def running_install() -> list[str]:
    """The files of this interpreter's own install of the project (must not change)."""
    import importlib.metadata
    try:
        return sorted(str(path) for path in importlib.metadata.distribution('mlp-autograde').files or [])
    except importlib.metadata.PackageNotFoundError:
        return []


def test_an_editable_install_is_quiet(project_copy, tmp_path):
    before = running_install()
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True, timeout=120)
    target = subprocess.run([str(venv / 'bin' / 'python'), '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
                            capture_output=True, text=True, check=True).stdout.strip()
    # --ignore-installed: without it pip (run from the project's own venv) first uninstalls the
    # editable install of the venv running these tests, wherever --prefix points.
    done = verbose_pip('install', '-e', '.', '--prefix', str(venv), '--ignore-installed',
                       '--no-warn-script-location', cwd=project_copy)
    assert done.returncode == 0, done.stderr[-3000:]
    assert configuration_warnings(done) == []
    assert list(Path(target).glob('__editable__*mlp_autograde*'))
    # As ./run installs it (--quiet, that one notice filtered): nothing at all.
    assert 'PYTHONWARNINGS="{0}"'.format(RUN_WARNING_FILTER) in (REPO_ROOT / 'run').read_text()
    plain = subprocess.run([sys.executable, '-m', 'pip', 'install', '-e', '.', '--no-deps', '--prefix', str(venv), '--ignore-installed',
                            '--disable-pip-version-check', '--no-warn-script-location', '--quiet'],
                           cwd=project_copy, capture_output=True, text=True, timeout=600,
                           env={**os.environ, 'PYTHONWARNINGS': RUN_WARNING_FILTER})
    assert plain.returncode == 0, plain.stderr[-3000:]
    noise = [line for line in (plain.stdout + plain.stderr).splitlines()
             if line.strip() and 'is ignored: it is neither a file nor a directory' not in line]  # this machine's pip.conf
    assert noise == []
    assert running_install() == before, 'the test changed the install of the interpreter running it'
