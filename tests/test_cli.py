"""Tests of the `mlp-autograde` command line: exit status and what it prints.

Most commands run in-process through `autograder.cli.main`; one `grade` and
the `demo` run the installed console script, as an instructor or CI would.
`demo` releases lab 3, so it runs in a temporary copy of the course.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import demo
from autograder.cli import EXIT_CHECKS_FAILED, EXIT_OK, EXIT_USAGE, main
from autograder.course.spec import load_spec

LAB3 = '03_multiple_layer_models'
REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name('mlp-autograde')


def run_script(args, env_extra, timeout=300):
    env = dict(os.environ, **env_extra)
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, '-m', 'autograder']
    return subprocess.run(command + args, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope='module')
def submissions(tmp_path_factory):
    folder = tmp_path_factory.mktemp('cli-submissions')
    nbformat.write(demo.submission_notebook(REPO_ROOT, LAB3), str(folder / 'alice.ipynb'))
    (folder / 'bob.ipynb').write_text('not a notebook\n', encoding='utf-8')
    return folder


@pytest.fixture
def data_env(mnist_dir, monkeypatch):
    monkeypatch.setenv('MLP_DATA_DIR', str(mnist_dir))
    return {'MLP_DATA_DIR': str(mnist_dir)}


def test_grade_writes_a_report_for_every_submission_and_exits_0(submissions, data_env, tmp_path):
    out = tmp_path / 'grades'
    completed = run_script(['grade', '--assignment', LAB3, '--out', str(out), '--workers', '1',
                            '--no-progress', str(submissions)], data_env)
    assert completed.returncode == EXIT_OK, completed.stderr
    assert sorted(p.name for p in out.glob('*.json')) == ['alice.json', 'bob.json', 'summary.json']
    assert json.loads((out / 'alice.json').read_text())['score'] == pytest.approx(10.0)
    assert json.loads((out / 'bob.json').read_text())['status'] == 'rejected'
    assert (out / 'grades.csv').is_file()
    lines = completed.stdout.splitlines()
    assert lines[0].split() == ['student', 'score', 'status']
    assert any(line.startswith('alice') and '10 / 13' in line for line in lines)
    assert any(line.startswith('bob') and 'rejected' in line for line in lines)
    assert '2 submissions (2 graded now), reports in' in completed.stdout
    assert 'Class mean: 10 / 13 (automatic points of 1 graded submission(s))' in completed.stdout
    assert 'Pending manual grading: 1 submission(s), 3 points' in completed.stdout
    assert 'Class summary: {0}'.format(out / 'summary.html') in completed.stdout
    assert '3 points await manual grading (1 student)' in completed.stdout


def test_grade_again_in_process_grades_nothing_new(submissions, data_env, tmp_path, capsys):
    out = tmp_path / 'grades'
    args = ['grade', '--assignment', LAB3, '--out', str(out), '--workers', '1', '--no-progress',
            str(submissions / 'alice.ipynb')]
    assert main(args) == EXIT_OK
    assert main(args) == EXIT_OK
    assert '1 submissions (0 graded now)' in capsys.readouterr().out


def test_unknown_assignment_exits_2_with_a_message(submissions, tmp_path, capsys):
    code = main(['grade', '--assignment', 'lab99', '--out', str(tmp_path / 'g'), str(submissions)])
    assert code == EXIT_USAGE == 2
    err = capsys.readouterr().err
    assert "unknown assignment 'lab99'" in err and LAB3 in err
    assert not (tmp_path / 'g').exists()


def test_unwritable_out_exits_non_zero_with_a_message(submissions, tmp_path, capsys):
    blocker = tmp_path / 'a-file'
    blocker.write_text('')
    code = main(['grade', '--assignment', LAB3, '--out', str(blocker / 'grades'), str(submissions)])
    assert code not in (EXIT_OK, None)
    err = capsys.readouterr().err
    assert 'cannot write to' in err and str(blocker / 'grades') in err


def test_a_path_that_does_not_exist_is_a_usage_error(tmp_path, capsys):
    code = main(['grade', '--assignment', LAB3, '--out', str(tmp_path / 'g'), str(tmp_path / 'nope.ipynb')])
    assert code == EXIT_USAGE
    assert 'no such file or folder' in capsys.readouterr().err


def test_an_empty_folder_is_a_usage_error(tmp_path, capsys):
    (tmp_path / 'empty').mkdir()
    code = main(['grade', '--assignment', LAB3, '--out', str(tmp_path / 'g'), str(tmp_path / 'empty')])
    assert code == EXIT_USAGE
    assert 'no submissions found' in capsys.readouterr().err


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(['grade', '--assignment', LAB3, '--out', 'x', '--workers', '0', 'y'])
    assert stopped.value.code == 2
    assert 'must be at least 1' in capsys.readouterr().err


def test_check_on_the_release_notebook_prints_public_checks_and_hidden_kinds(capsys):
    spec = load_spec(LAB3)
    notebook = spec.student_mlp_dir / spec.notebook
    assert main(['check', str(notebook)]) == EXIT_CHECKS_FAILED == 1
    out = capsys.readouterr().out
    assert out.startswith('Self-check of ')
    assert "[ERROR] TanhLayer.fprop matches the reference on the notebook's test arrays" in out
    assert 'NotImplementedError' in out
    assert 'public checks passed.' in out
    assert 'When grading, the grader also runs: hidden fixed test cases' in out
    assert 'MNIST training run' in out
    assert 'hidden test case' not in out


def test_check_exits_0_when_every_public_check_passes(tmp_path, capsys):
    path = tmp_path / '03_Multiple_layer_models.ipynb'
    nbformat.write(demo.submission_notebook(REPO_ROOT, LAB3), str(path))
    assert main(['check', str(path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert 'public checks passed.' in out and '[ERROR]' not in out and '[FAILED]' not in out


def test_check_of_a_file_that_is_not_a_notebook_exits_1(tmp_path, capsys):
    path = tmp_path / '03_Multiple_layer_models.ipynb'
    path.write_text('my answers')
    assert main(['check', str(path)]) == EXIT_CHECKS_FAILED
    assert 'cannot be graded' in capsys.readouterr().out


def test_check_cannot_guess_the_assignment_of_a_renamed_notebook(tmp_path, capsys):
    path = tmp_path / 'my_work.ipynb'
    nbformat.write(demo.released_notebook(REPO_ROOT, LAB3), str(path))
    assert main(['check', str(path)]) == EXIT_USAGE
    assert 'pass --assignment' in capsys.readouterr().err


def test_check_of_a_missing_notebook_is_a_usage_error(tmp_path, capsys):
    assert main(['check', str(tmp_path / '03_Multiple_layer_models.ipynb')]) == EXIT_USAGE
    assert 'no such notebook' in capsys.readouterr().err


@pytest.fixture(scope='module')
def course_copy(tmp_path_factory):
    """A copy of the course (sources, reference, nbgrader config) that demo may release into."""
    root = tmp_path_factory.mktemp('course')
    shutil.copytree(REPO_ROOT / 'source', root / 'source')
    shutil.copytree(REPO_ROOT / 'reference', root / 'reference',
                    ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
    shutil.copy(REPO_ROOT / 'nbgrader_config.py', root / 'nbgrader_config.py')
    return root


def test_demo_releases_grades_and_prints_the_class_table(course_copy, mnist_dir, tmp_path):
    out = tmp_path / 'demo'
    (course_copy / 'release' / LAB3).mkdir(parents=True, exist_ok=True)
    student_file = course_copy / 'release' / LAB3 / 'my_attempt.ipynb'
    student_file.write_text('{"mine": true}')
    completed = run_script(['--course-root', str(course_copy), 'demo', '--out', str(out)],
                           {'MLP_DATA_DIR': str(mnist_dir)})
    assert completed.returncode == 0, completed.stderr[-3000:]
    # The demo writes only under its own folder: the course's release/ is left as it was.
    assert (out / 'course' / 'release' / LAB3 / 'mlp' / 'layers.py').is_file()
    assert sorted(p.name for p in (course_copy / 'release' / LAB3).iterdir()) == ['my_attempt.ipynb']
    assert 'Class mean: ' in completed.stdout and 'Pending manual grading: ' in completed.stdout
    table = completed.stdout[completed.stdout.index('student '):].splitlines()
    students = [line.split()[0] for line in table[1:] if line.split() and line[0].isalpha()
                and not line.startswith(('Feedback', 'Isolation', 'Class', 'Pending', 'Releasing', 'Grading'))]
    assert students == sorted(path.stem for path in (out / 'submissions').iterdir())
    assert len(students) == 8
    rows = {line.split()[0]: line for line in table[1:] if line.split()}
    assert '10 / 13' in rows['alice_solution'] and ' 0 / 13' in rows['bob_untouched']
    assert ' 0 / 13' in rows['mallory_hostile'] and 'rejected' in rows['oscar_not_a_notebook']
    assert 'Isolation: ' in completed.stdout
    assert (out / 'grades' / 'grades.csv').is_file()
    # A second demo regrades nothing (same example files, same cell ids) and keeps what a student
    # put in the demo's release folder.
    reports = {path.name: path.read_bytes() for path in (out / 'grades').glob('*.json') if path.stem != 'summary'}
    (out / 'course' / 'release' / LAB3 / 'my_attempt.ipynb').write_text('{"mine": true}')
    again = run_script(['--course-root', str(course_copy), 'demo', '--out', str(out)],
                       {'MLP_DATA_DIR': str(mnist_dir)})
    assert again.returncode == 0, again.stderr[-3000:]
    assert {path.name: path.read_bytes() for path in (out / 'grades').glob('*.json')
            if path.stem != 'summary'} == reports
    assert (out / 'course' / 'release' / LAB3 / 'my_attempt.ipynb').read_text() == '{"mine": true}'
    assert 'my_attempt.ipynb' in again.stderr


def test_grading_before_the_release_exists_says_what_to_run(submissions, tmp_path, capsys, monkeypatch):
    root = tmp_path / 'course'
    shutil.copytree(REPO_ROOT / 'source' / LAB3, root / 'source' / LAB3)
    # main() would export --course-root for the whole process: give it through the environment,
    # which monkeypatch restores afterwards.
    monkeypatch.setenv('MLP_COURSE_ROOT', str(root))
    code = main(['grade', '--assignment', LAB3, '--out', str(tmp_path / 'g'), str(submissions)])
    assert code not in (EXIT_OK, EXIT_USAGE)
    assert 'run `mlp-autograde release --assignment {0}` first'.format(LAB3) in capsys.readouterr().err
    assert not (tmp_path / 'g').exists()


def test_the_tests_find_mnist_where_the_product_does(tmp_path, monkeypatch):
    """`./run demo` fetches into the per-user cache; the tests must look there too (then ../shared)."""
    import conftest
    from mlp.data_providers import resolve_data_dir
    monkeypatch.delenv('MLP_DATA_DIR', raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    cache = tmp_path / 'cache' / 'mlp' / 'mnist'
    assert conftest.find_mnist_dir() in (cache, conftest.SHARED_MNIST_DIR)  # empty cache: shared copy if any
    cache.mkdir(parents=True)
    for name in conftest.MNIST_FILES:
        (cache / name).write_bytes(b'')
    assert conftest.find_mnist_dir() == cache == Path(resolve_data_dir())
    monkeypatch.setenv('MLP_DATA_DIR', str(tmp_path / 'elsewhere'))
    assert conftest.find_mnist_dir() == tmp_path / 'elsewhere' == Path(resolve_data_dir())
