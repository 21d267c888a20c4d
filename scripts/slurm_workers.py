#!/usr/bin/env python3
"""Starts Dask workers for `mlp-autograde grade --scheduler` as Slurm jobs (dask-jobqueue).

TRUSTED (an instructor's tool on the cluster's login node; it never sees a submission).

    python scripts/slurm_workers.py --jobs 8 --course /shared/mlp-course --data-dir /shared/mnist
    # prints the scheduler's address; in another shell, on the same node:
    mlp-autograde grade --assignment 03_multiple_layer_models --out grades/ \\
        --scheduler tcp://10.0.0.5:8786 /shared/mlp-course/submitted/

Each Slurm job runs one single-threaded Dask worker (one sandboxed submission at a time, BLAS
on one thread). Before the worker starts, the job checks what grading needs on that node and
exits with status 3, naming what is missing, instead of joining the cluster without it:

- the package: this Python imports `autograder` and `mlp`;
- the course folder at the same path as on the login node (`source/`, `release/`);
- MNIST in `--data-dir` with the published fingerprints (`mlp-autograde data verify`);
- bubblewrap (`bwrap`), unless `--allow-weaker-isolation`: without it student code runs at a
  weaker isolation level than elsewhere in the class.

Needs the `cluster` extra (`pip install -e .[cluster]`: dask-jobqueue, and bokeh for the
dashboard). `--print-job-script` shows the job script and submits nothing.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

#: Exit status of a job whose node lacks something grading needs (the worker never starts).
MISSING_EXIT = 3


def worker_checks(python: str, course: Path, data_dir: Path, require_bwrap: bool) -> list[str]:
    """Shell lines, run in each job before its worker starts, that stop a node unfit to grade."""
    def stop(what: str) -> str:
        return '{{ echo "mlp-autograde worker on $(hostname): {0}" >&2; exit {1}; }}'.format(what, MISSING_EXIT)

    q = shlex.quote
    lines = [
        'export MLP_DATA_DIR={0}'.format(q(str(data_dir))),
        'export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1',
        '{0} -c "import autograder, mlp" || {1}'.format(q(python), stop('{0} cannot import autograder and mlp'.format(python))),
        'test -d {0} -a -d {1} || {2}'.format(q(str(course / 'source')), q(str(course / 'release')),
                                              stop('no course folder at {0}'.format(course))),
        '{0} -m autograder data verify --data-dir {1} >/dev/null || {2}'.format(
            q(python), q(str(data_dir)), stop('MNIST missing or damaged in {0}'.format(data_dir))),
    ]
    if require_bwrap:
        lines.append('command -v bwrap >/dev/null || {0}'.format(
            stop('bubblewrap (bwrap) is not installed; install it or pass --allow-weaker-isolation')))
    return lines


def slurm_cluster(args: argparse.Namespace):
    """The dask-jobqueue SLURMCluster for `args` (no job is submitted until it is scaled)."""
    from dask_jobqueue import SLURMCluster
    return SLURMCluster(
        cores=1, processes=1, memory=args.memory, walltime=args.walltime, queue=args.partition,
        account=args.account, python=args.python, name='mlp-autograde',
        job_script_prologue=worker_checks(args.python, args.course.resolve(), args.data_dir.resolve(),
                                          not args.allow_weaker_isolation),
        worker_extra_args=['--no-dashboard'],  # one thread: cores=1, processes=1
        job_extra_directives=list(args.sbatch), log_directory=str(args.log_dir) if args.log_dir else None,
        scheduler_options={'host': args.host, 'port': args.port, 'dashboard_address': args.dashboard},
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--jobs', type=int, default=4, help='Slurm jobs, one worker each (default 4)')
    parser.add_argument('--course', type=Path, required=True, help='course folder (source/, release/), same path on every node')
    parser.add_argument('--data-dir', type=Path, required=True, help='MNIST folder, same path on every node')
    parser.add_argument('--python', default=sys.executable, help='the Python with mlp-autograde on the nodes (default: this one)')
    parser.add_argument('--partition', default=None, help='Slurm partition (-p)')
    parser.add_argument('--account', default=None, help='Slurm account (-A)')
    parser.add_argument('--memory', default='4GB', help='memory per job (default 4GB: grader + one sandbox)')
    parser.add_argument('--walltime', default='02:00:00', help='time limit per job (default 02:00:00)')
    parser.add_argument('--sbatch', action='append', default=[], metavar='OPTION',
                        help='extra #SBATCH option, e.g. --sbatch=--constraint=avx2 (repeatable)')
    parser.add_argument('--log-dir', type=Path, default=None, help='folder for the jobs\' output files')
    parser.add_argument('--host', default='', help='interface the scheduler listens on (default: all)')
    parser.add_argument('--port', type=int, default=8786, help='scheduler port (default 8786)')
    parser.add_argument('--dashboard', default=':8787', help='dashboard address (needs bokeh; default :8787)')
    parser.add_argument('--allow-weaker-isolation', action='store_true',
                        help='let nodes without bubblewrap grade (at a weaker isolation level)')
    parser.add_argument('--print-job-script', action='store_true', help='print the job script; submit nothing')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        cluster = slurm_cluster(args)
    except ImportError as error:
        print('slurm_workers: needs the cluster extra (pip install "mlp-autograde[cluster]"): {0}'.format(error),
              file=sys.stderr)
        return 2
    with cluster:
        if args.print_job_script:
            print(cluster.job_script())
            return 0
        cluster.scale(jobs=args.jobs)
        print('Scheduler: {0}  (dashboard: {1})'.format(cluster.scheduler_address, cluster.dashboard_link))
        print('Grade with: mlp-autograde grade --scheduler {0} --assignment NAME --out DIR PATH...'.format(
            cluster.scheduler_address))
        print('{0} Slurm jobs requested; Ctrl-C stops them.'.format(args.jobs), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
