"""Grading on a Dask cluster (`--scheduler`): same reports as a serial run.

A `LocalCluster` of two single-threaded worker processes on 127.0.0.1 stands
in for a real cluster. The workers receive each submission's bytes with its
task, run the student's code in their own sandbox, and return reports; only
the client writes the grade directory. Workers that die are replaced without
changing a grade; a worker without MNIST gives reports that say the grader
failed (never a lower grade), and the next run grades those again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from autograder import batch, cli
from autograder.demo import DEMO_ASSIGNMENT
from autograder.course.spec import default_course_root, load_spec
from grade_dirs import comparable

distributed = pytest.importorskip('dask.distributed')


@pytest.fixture(scope='module')
def cluster(mnist_env):
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host='127.0.0.1', dashboard_address=None,
                                  silence_logs=40) as local_cluster:
        yield local_cluster


@pytest.fixture(scope='module')
def spec():
    return load_spec(DEMO_ASSIGNMENT, default_course_root())


@pytest.fixture(scope='module')
def serial_grades(spec, demo_class, mnist_env, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp('serial') / 'grades'
    batch.grade_batch(spec, batch.find_submissions([demo_class], spec.name), out_dir, workers=1,
                      progress=False)
    return out_dir


def test_a_dask_cluster_writes_the_same_grade_directory_as_a_serial_run(
        cluster, spec, demo_class, serial_grades, tmp_path):
    out_dir = tmp_path / 'grades'
    submissions = batch.find_submissions([demo_class], spec.name)
    reports, summary = batch.grade_batch(spec, submissions, out_dir,
                                         scheduler=cluster.scheduler_address, progress=False)
    assert summary['graded_this_run'] == len(submissions) == len(reports)
    assert comparable(out_dir) == comparable(serial_grades)
    assert {r.isolation for r in reports if r.status == 'graded'} == set(
        json.loads((serial_grades / 'summary.json').read_text())['isolation'])


def test_workers_need_not_see_the_submissions(cluster, spec, demo_class, serial_grades, tmp_path):
    """The bytes travel with the task: a file the client removes after submitting still grades."""
    folder = tmp_path / 'class'
    shutil.copytree(demo_class, folder)
    out_dir = tmp_path / 'grades'
    submissions = [s for s in batch.find_submissions([folder], spec.name) if s.student == 'alice_solution']
    client = distributed.Client(cluster.scheduler_address, set_as_default=False)
    try:
        future = client.submit(batch.grade_one, spec.name, str(spec.course_root), 'alice_solution',
                               str(submissions[0].path), batch.Limits(), False,
                               submissions[0].path.read_bytes(), pure=False)
        (folder / 'alice_solution.ipynb').unlink()
        report = future.result(timeout=120)
    finally:
        client.close()
    expected = json.loads((serial_grades / 'alice_solution.json').read_text())
    assert report.status == 'graded' and round(report.score, 4) == expected['score']
    assert report.submission == str(submissions[0].path)
    assert not out_dir.exists(), 'a worker must not write the grade directory'


def test_resuming_on_a_cluster_grades_only_what_changed(cluster, spec, demo_class, serial_grades, tmp_path):
    out_dir = tmp_path / 'grades'
    shutil.copytree(serial_grades, out_dir)
    (out_dir / 'frank_moved_cells.json').unlink()
    _, summary = batch.grade_batch(spec, batch.find_submissions([demo_class], spec.name), out_dir,
                                   scheduler=cluster.scheduler_address, progress=False)
    assert summary['graded_this_run'] == 1
    assert comparable(out_dir) == comparable(serial_grades)


def test_the_cli_sends_work_to_the_scheduler(cluster, spec, demo_class, serial_grades, tmp_path, capsys):
    out_dir = tmp_path / 'grades'
    status = cli.main(['grade', '--assignment', spec.name, '--out', str(out_dir), '--no-progress',
                       '--scheduler', cluster.scheduler_address, str(demo_class)])
    assert status == cli.EXIT_OK
    assert comparable(out_dir) == comparable(serial_grades)


def test_an_unreachable_scheduler_is_a_clear_harness_error(spec, demo_class, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(batch, 'DASK_CONNECT_TIMEOUT', 2)
    with socket_that_refuses() as address:
        status = cli.main(['grade', '--assignment', spec.name, '--out', str(tmp_path / 'grades'),
                           '--no-progress', '--scheduler', address, str(demo_class)])
    assert status == cli.EXIT_HARNESS
    assert 'cannot reach the Dask scheduler at ' + address in capsys.readouterr().err
    assert not [p for p in (tmp_path / 'grades').iterdir() if p.suffix == '.json']
    leftovers = [p for p in Path(tempfile.gettempdir()).glob(batch.RUN_DIR_PREFIX + '{0}-*'.format(os.getpid()))]
    assert leftovers == []


class socket_that_refuses:
    """A 127.0.0.1 port with nothing listening on it (bound, never listened on)."""

    def __enter__(self) -> str:
        import socket
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(('127.0.0.1', 0))
        return 'tcp://127.0.0.1:{0}'.format(self._socket.getsockname()[1])

    def __exit__(self, *exc_info) -> None:
        self._socket.close()


# --------------------------------------------------------------------------
# Workers that die or lack data: the run says so, never a silent wrong grade
# --------------------------------------------------------------------------


#: A small class for the failure tests: a correct submission and two with typical mistakes.
SMALL_CLASS = ('alice_solution', 'carol_tanh_bprop_slip', 'dave_relu_abs')


@pytest.fixture(scope='module')
def small_class(demo_class, tmp_path_factory):
    folder = tmp_path_factory.mktemp('small-class')
    for student in SMALL_CLASS:
        shutil.copy(demo_class / '{0}.ipynb'.format(student), folder)
    return folder


@pytest.fixture(scope='module')
def small_serial(spec, small_class, mnist_env, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp('small-serial') / 'grades'
    batch.grade_batch(spec, batch.find_submissions([small_class], spec.name), out_dir, workers=1, progress=False)
    return out_dir


def local_cluster(n_workers: int, **worker_options):
    return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host='127.0.0.1',
                                    dashboard_address=None, silence_logs=50, **worker_options)


@pytest.mark.slow  # over a minute on a 2-core machine
def test_a_worker_that_dies_while_grading_is_replaced_and_the_grades_are_unchanged(
        spec, small_class, small_serial, mnist_env, tmp_path):
    out_dir = tmp_path / 'grades'
    killed = []
    with local_cluster(2) as two_workers, distributed.Client(two_workers, set_as_default=False) as client:

        def kill_a_busy_worker() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not killed:
                busy = [worker for worker, keys in client.processing().items()
                        if any(str(key).startswith('grade-') for key in keys)]
                if busy:
                    killed.append(busy[0])
                    with contextlib.suppress(Exception):  # the worker is gone before it can answer
                        client.run(os._exit, 1, workers=busy[:1], wait=False)
                time.sleep(0.1)

        killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
        killer.start()
        _, summary = batch.grade_batch(spec, batch.find_submissions([small_class], spec.name), out_dir,
                                       scheduler=two_workers.scheduler_address, progress=False)
        killer.join(timeout=130)
    assert killed, 'no worker was ever busy grading'
    assert summary['graded_this_run'] == len(batch.find_submissions([small_class], spec.name))
    assert comparable(out_dir) == comparable(small_serial)


@pytest.mark.slow  # over a minute on a 2-core machine
def test_a_worker_without_mnist_never_gives_a_silent_wrong_grade(
        spec, small_class, small_serial, mnist_env, tmp_path, capsys):
    out_dir = tmp_path / 'grades'
    nowhere = {'MLP_DATA_DIR': str(tmp_path / 'no-mnist-here'), 'HOME': str(tmp_path),
               'XDG_CACHE_HOME': str(tmp_path / 'cache')}
    with local_cluster(1, env=nowhere) as no_data:
        status = cli.main(['grade', '--assignment', spec.name, '--out', str(out_dir), '--no-progress',
                           '--scheduler', no_data.scheduler_address, str(small_class)])
    assert status == cli.EXIT_HARNESS, 'a run with a harness failure must not exit 0'
    expected = {path.stem: json.loads(path.read_text()) for path in small_serial.glob('*.json')
                if path.stem != 'summary'}
    flagged = []
    for student, serial in expected.items():
        report = batch._report_from_json(json.loads((out_dir / '{0}.json'.format(student)).read_text()))
        harness_failure = batch.is_internal_failure(report) or any(
            test.status == 'error' and batch.INTERNAL_ERROR_MARK in test.output for test in report.tests)
        if harness_failure:
            flagged.append(student)
        else:  # nothing of it needed MNIST: then it is graded exactly as the serial run did
            assert round(report.score, 4) == serial['score'], student
    assert flagged, 'the training checks need MNIST: some reports must say the grader failed'
    # The next run, on workers that have the data, grades exactly those again.
    with local_cluster(1) as with_data:
        _, summary = batch.grade_batch(spec, batch.find_submissions([small_class], spec.name), out_dir,
                                       scheduler=with_data.scheduler_address, progress=False)
    assert summary['graded_this_run'] == len(flagged)
    assert comparable(out_dir) == comparable(small_serial)


@pytest.mark.slow  # over a minute on a 2-core machine
def test_a_submission_failed_by_a_worker_without_mnist_is_graded_again_elsewhere(
        spec, small_class, small_serial, mnist_env, tmp_path, capsys):
    """One good worker and one without MNIST: the run retries on the good one and exits 0."""
    nowhere = {'MLP_DATA_DIR': str(tmp_path / 'no-mnist-here'), 'HOME': str(tmp_path),
               'XDG_CACHE_HOME': str(tmp_path / 'cache')}
    workers = {'without-data': {'cls': distributed.Nanny, 'options': {'nthreads': 1, 'env': nowhere,
                                                                      'host': '127.0.0.1'}},
               'with-data': {'cls': distributed.Nanny, 'options': {'nthreads': 1, 'host': '127.0.0.1'}}}
    scheduler = {'cls': distributed.Scheduler, 'options': {'dashboard_address': None, 'host': '127.0.0.1'}}
    out_dir = tmp_path / 'grades'
    with distributed.SpecCluster(workers=workers, scheduler=scheduler, silence_logs=50) as mixed:
        status = cli.main(['grade', '--assignment', spec.name, '--out', str(out_dir), '--no-progress',
                           '--scheduler', mixed.scheduler_address, str(small_class)])
    assert 'grading it again on another worker' in capsys.readouterr().err
    assert status == cli.EXIT_OK
    assert comparable(out_dir) == comparable(small_serial)
