"""Grading on Slurm workers: scripts/slurm_workers.py (dask-jobqueue's SLURMCluster).

Without Slurm: the job script holds the checks README promises and really stops a node
that lacks the package, the course folder or MNIST; run by hand (bash, as sbatch would),
it starts a worker that grades like a serial run. With a real Slurm (`.ci/slurm-single-node`
sets one up on a Debian machine), the same happens through sbatch (slow test).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import batch
from autograder.course.spec import default_course_root, load_spec
from autograder.demo import DEMO_ASSIGNMENT
from grade_dirs import comparable

dask_jobqueue = pytest.importorskip('dask_jobqueue')
distributed = pytest.importorskip('dask.distributed')

REPO_ROOT = Path(__file__).resolve().parent.parent
#: A small class: a correct submission and one with a typical mistake.
STUDENTS = ('alice_solution', 'carol_tanh_bprop_slip')


def _script():
    location = REPO_ROOT / 'scripts' / 'slurm_workers.py'
    module_spec = importlib.util.spec_from_file_location('slurm_workers', location)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


slurm_workers = _script()


def readme_section(title: str) -> str:
    text = (REPO_ROOT / 'README.md').read_text(encoding='utf-8')
    start = text.index('## ' + title)
    end = text.find('\n## ', start + 1)
    return text[start:end if end > 0 else None]


def arguments(mnist_dir, *extra):
    return slurm_workers.parse(['--course', str(default_course_root()), '--data-dir', str(mnist_dir),
                                '--host', '127.0.0.1', '--port', '0', '--dashboard', ':0', *extra])


@pytest.fixture(scope='module')
def spec():
    return load_spec(DEMO_ASSIGNMENT, default_course_root())


@pytest.fixture(scope='module')
def small_class(demo_class, tmp_path_factory):
    folder = tmp_path_factory.mktemp('class')
    for student in STUDENTS:
        shutil.copy(demo_class / '{0}.ipynb'.format(student), folder)
    return folder


@pytest.fixture(scope='module')
def serial_grades(spec, small_class, mnist_env, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp('serial') / 'grades'
    batch.grade_batch(spec, batch.find_submissions([small_class], spec.name), out_dir, workers=1, progress=False)
    return out_dir


def test_the_job_script_checks_what_readme_says_workers_need(mnist_dir):
    args = arguments(mnist_dir, '--partition', 'teaching', '--memory', '3GB', '--walltime', '00:30:00',
                     '--sbatch=--constraint=avx2')
    with slurm_workers.slurm_cluster(args) as cluster:
        script = cluster.job_script()
    course = default_course_root().resolve()
    for directive in ('-p teaching', '--cpus-per-task=1', '-t 00:30:00', '--constraint=avx2'):
        assert re.search(r'^#SBATCH .*{0}'.format(re.escape(directive)), script, re.M), directive
    python = re.escape(sys.executable)
    expected = [
        'export MLP_DATA_DIR={0}$'.format(re.escape(str(mnist_dir.resolve()))),          # MNIST, for the grader
        '^export OPENBLAS_NUM_THREADS=1 ',                                               # one BLAS thread
        '^{0} -c "import autograder, mlp" \\|\\|'.format(python),                        # the package
        '^test -d {0} -a -d {1} \\|\\|'.format(re.escape(str(course / 'source')), re.escape(str(course / 'release'))),
        '^{0} -m autograder data verify --data-dir {1} '.format(python, re.escape(str(mnist_dir.resolve()))),
        '^command -v bwrap ',                                                             # bubblewrap
        '^{0} -m distributed.cli.dask_worker tcp://127.0.0.1:'.format(python),
    ]
    for pattern in expected:
        assert re.search(pattern, script, re.M), pattern
    worker_line = script.strip().splitlines()[-1]
    assert '--nthreads 1' in worker_line and worker_line.count('--nthreads') == 1
    section = readme_section('Grading a large class')
    for need in ('scripts/slurm_workers.py', 'bubblewrap', 'MNIST', 'course folder', 'data verify',
                 '--print-job-script', '[cluster]', 'bokeh', 'dask-jobqueue'):
        assert need in section, need


def test_weaker_isolation_must_be_asked_for(mnist_dir):
    with slurm_workers.slurm_cluster(arguments(mnist_dir, '--allow-weaker-isolation')) as cluster:
        assert 'bwrap' not in cluster.job_script()


def run_checks(python: str, course: Path, data_dir: Path) -> subprocess.CompletedProcess:
    lines = slurm_workers.worker_checks(python, course, data_dir, require_bwrap=False) + ['echo READY']
    return subprocess.run(['bash', '-c', '\n'.join(lines)], capture_output=True, text=True, timeout=120)


def test_the_job_script_stops_a_node_that_lacks_what_grading_needs(mnist_dir, tmp_path):
    course = default_course_root().resolve()
    ready = run_checks(sys.executable, course, mnist_dir)
    assert ready.returncode == 0 and ready.stdout.strip() == 'READY', ready.stderr
    nowhere = run_checks(sys.executable, course, tmp_path / 'no-mnist-here')
    empty_course = tmp_path / 'course'
    empty_course.mkdir()
    no_course = run_checks(sys.executable, empty_course, mnist_dir)
    damaged = tmp_path / 'damaged'
    shutil.copytree(mnist_dir, damaged)
    (damaged / 'mnist-valid.npz').write_bytes(b'not an npz file')
    corrupt = run_checks(sys.executable, course, damaged)
    cases = [(nowhere, 'MNIST missing or damaged'), (no_course, 'no course folder'),
             (corrupt, 'MNIST missing or damaged')]
    if Path('/usr/bin/python3').is_file() and subprocess.run(
            ['/usr/bin/python3', '-c', 'import autograder'], capture_output=True, cwd='/').returncode != 0:
        cases.append((run_checks('/usr/bin/python3', course, mnist_dir), 'cannot import autograder'))
    for done, reason in cases:
        assert done.returncode == slurm_workers.MISSING_EXIT, done.stdout + done.stderr
        assert 'READY' not in done.stdout
        assert reason in done.stderr and 'worker on ' in done.stderr


def start_job_by_hand(script: str, folder: Path) -> subprocess.Popen:
    """Runs a job script as sbatch would on a node (bash, in its own session)."""
    path = folder / 'job.sh'
    path.write_text(script)
    return subprocess.Popen(['bash', str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, cwd=folder)


def stop(job: subprocess.Popen) -> None:
    import os
    import signal
    try:
        os.killpg(job.pid, signal.SIGTERM)
        job.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(timeout=10)


def test_a_job_script_run_by_hand_starts_a_worker_that_grades_like_a_serial_run(
        mnist_dir, spec, small_class, serial_grades, tmp_path):
    with slurm_workers.slurm_cluster(arguments(mnist_dir)) as cluster:
        job = start_job_by_hand(cluster.job_script(), tmp_path)
        try:
            with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
                client.wait_for_workers(1, timeout=120)
            out_dir = tmp_path / 'grades'
            _, summary = batch.grade_batch(spec, batch.find_submissions([small_class], spec.name), out_dir,
                                           scheduler=cluster.scheduler_address, progress=False)
        finally:
            stop(job)
    assert summary['graded_this_run'] == len(STUDENTS)
    assert comparable(out_dir) == comparable(serial_grades)


def test_a_node_without_mnist_never_joins(mnist_dir, tmp_path):
    args = slurm_workers.parse(['--course', str(default_course_root()), '--data-dir', str(tmp_path / 'nowhere'),
                                '--host', '127.0.0.1', '--port', '0', '--dashboard', ':0'])
    with slurm_workers.slurm_cluster(args) as cluster:
        job = start_job_by_hand(cluster.job_script(), tmp_path)
        try:
            job.wait(timeout=120)
        finally:
            if job.returncode is None:
                stop(job)
        with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
            assert client.scheduler_info()['workers'] == {}
    assert job.returncode == slurm_workers.MISSING_EXIT
    assert 'MNIST missing or damaged' in job.stderr.read().decode()


def slurm_is_up() -> bool:
    if shutil.which('sinfo') is None or shutil.which('sbatch') is None:
        return False
    done = subprocess.run(['sinfo', '-h', '-o', '%T'], capture_output=True, text=True, timeout=30)
    return done.returncode == 0 and any(state in done.stdout for state in ('idle', 'mixed'))


@pytest.mark.slow
@pytest.mark.skipif(not slurm_is_up(), reason='no Slurm node is up here (.ci/slurm-single-node starts one)')
def test_grading_on_real_slurm_workers(mnist_dir, spec, small_class, serial_grades, tmp_path):
    args = arguments(mnist_dir, '--memory', '2GB', '--walltime', '00:20:00', '--log-dir', str(tmp_path / 'logs'))
    with slurm_workers.slurm_cluster(args) as cluster:
        cluster.scale(jobs=1)
        with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=300)
        out_dir = tmp_path / 'grades'
        _, summary = batch.grade_batch(spec, batch.find_submissions([small_class], spec.name), out_dir,
                                       scheduler=cluster.scheduler_address, progress=False)
    assert summary['graded_this_run'] == len(STUDENTS)
    assert comparable(out_dir) == comparable(serial_grades)
