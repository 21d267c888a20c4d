"""The student self-check where students run it: inside their release folder, and from a notebook cell.

In `release/<assignment>/` the current folder holds the student copy of `mlp`.
The console script `mlp-autograde` does not put the current folder on
sys.path, so it grades against the reference; `python -m autograder` does,
and must refuse rather than judge students by their own copy.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = '03_multiple_layer_models'
NOTEBOOK = '03_Multiple_layer_models.ipynb'
CONSOLE_SCRIPT = Path(sys.executable).parent / 'mlp-autograde'

pytestmark = pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason='the mlp-autograde console script is not installed')


@pytest.fixture
def release_folder(tmp_path):
    """A copy of release/<assignment>/ as a student has it (notebook + student mlp)."""
    source = REPO_ROOT / 'release' / ASSIGNMENT
    if not (source / 'mlp' / '__init__.py').is_file():
        pytest.skip('release/{0} has not been generated (mlp-autograde release)'.format(ASSIGNMENT))
    folder = tmp_path / ASSIGNMENT
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns('__pycache__'))
    return folder


def environment() -> dict:
    env = dict(os.environ)
    env['PATH'] = os.pathsep.join([str(CONSOLE_SCRIPT.parent), env.get('PATH', '')])
    env.pop('PYTHONPATH', None)
    env.pop('MLP_COURSE_ROOT', None)  # a student's shell: the grader finds its own course
    return env


def solve(folder: Path) -> None:
    source = nbformat.read(str(REPO_ROOT / 'source' / ASSIGNMENT / NOTEBOOK), as_version=4)
    solution = next(cell.source for cell in source.cells
                    if cell.get('metadata', {}).get('nbgrader', {}).get('grade_id') == 'tanh_relu_solution')
    notebook = nbformat.read(str(folder / NOTEBOOK), as_version=4)
    for cell in notebook.cells:
        if cell.get('metadata', {}).get('nbgrader', {}).get('grade_id') == 'tanh_relu_solution':
            cell.source = re.sub(r'^\s*### (BEGIN|END) SOLUTION\s*$\n?', '', solution, flags=re.M)
    nbformat.write(notebook, str(folder / NOTEBOOK))


def passed_line(text: str) -> tuple[int, int]:
    match = re.search(r'(\d+) of (\d+) public checks passed', text)
    assert match, text
    return int(match[1]), int(match[2])


def test_console_script_in_the_release_folder_checks_the_untouched_notebook(release_folder):
    done = subprocess.run([str(CONSOLE_SCRIPT), 'check', NOTEBOOK], cwd=release_folder, env=environment(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr  # some public check failed (the documented exit status)
    passed, total = passed_line(done.stdout)
    assert passed == 0 and total > 0
    assert 'NotImplementedError' in done.stdout


def test_console_script_in_the_release_folder_passes_a_solved_notebook(release_folder):
    solve(release_folder)
    done = subprocess.run([str(CONSOLE_SCRIPT), 'check', NOTEBOOK], cwd=release_folder, env=environment(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    passed, total = passed_line(done.stdout)
    assert passed == total > 0


def test_python_dash_m_in_the_release_folder_refuses_the_student_copy(release_folder):
    solve(release_folder)
    done = subprocess.run([sys.executable, '-m', 'autograder', 'check', NOTEBOOK], cwd=release_folder,
                          env=environment(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert 'refusing to grade' in done.stderr
    assert str(release_folder / 'mlp') in done.stderr and 'mlp-autograde' in done.stderr
    assert 'public checks passed' not in done.stdout


def test_self_check_from_a_notebook_cell(release_folder, monkeypatch):
    nbclient = pytest.importorskip('nbclient')
    pytest.importorskip('ipykernel')
    monkeypatch.delenv('MLP_COURSE_ROOT', raising=False)
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    cell = nbformat.v4.new_code_cell('!mlp-autograde check {0}'.format(NOTEBOOK))
    notebook = nbformat.v4.new_notebook(cells=[cell])
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name='python3',
                                     resources={'metadata': {'path': str(release_folder)}})
    client.execute()
    text = ''.join(output.get('text', '') for output in notebook.cells[0].outputs)
    passed, total = passed_line(text)
    assert passed == 0 and total > 0
