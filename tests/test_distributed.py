"""Grading on a Dask cluster (`--scheduler`): same reports as a serial run.

A `LocalCluster` of two single-threaded worker processes on 127.0.0.1 stands
in for a real cluster. The workers receive each submission's bytes with its
task, run the student's code in their own sandbox, and return reports; only
the client writes the grade directory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
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
