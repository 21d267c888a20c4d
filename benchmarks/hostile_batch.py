"""Benchmark: the grader's own peak memory and CPU on a batch of issue 10's hostile cases.

One batch mixes honest notebooks with every file case of tests/hostile/catalogue.py
(links, FIFOs, names), the new code attacks (replies of 128 MB, unbuildable frame
shapes, huge finite values, Markdown in messages) and notebooks at the parser's
caps (generated here): 10,000 cells, one 1 MB cell with an IPython escape and a
quote every few lines, 2 MiB of dense code, 100,000 outputs. It is graded in this
process (workers=1), so the numbers are the grader's alone; the sandbox children
are measured apart (RUSAGE_CHILDREN).

Printed, against the bounds SECURITY.md states:

* the grader's peak resident memory (ru_maxrss of this process, after imports
  and after the batch) and its CPU seconds for the whole batch;
* then, per cap notebook, the grader's CPU seconds for load + extract alone.

Usage (MNIST in $MLP_DATA_DIR or ../shared/data/mnist):
    python benchmarks/hostile_batch.py

Nothing is asserted; the numbers are printed.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO_ROOT.parent / 'shared' / 'data' / 'mnist'
ASSIGNMENT = '03_multiple_layer_models'
MIB = 1024 * 1024

sys.path.insert(0, str(REPO_ROOT / 'tests'))
sys.modules.setdefault('rfc3987_syntax', None)  # as the CLI does: an import nobody needs

#: What SECURITY.md states (keep in step with its "Bounds of the grader's own work").
STATED_LOAD_EXTRACT_SECONDS = 15.0
STATED_PEAK_MIB = 1024 + 128 + 16


def _code_cell(index: int, source: str, outputs: list | None = None) -> dict:
    return {'cell_type': 'code', 'id': 'c{0}'.format(index), 'metadata': {}, 'source': source,
            'execution_count': None, 'outputs': outputs or []}


def cap_notebooks(solution: str) -> dict[str, dict]:
    """Notebooks at the caps of load.py and extract.py, each with the honest solution in it."""
    def notebook(cells: list[dict]) -> dict:
        cells = cells + [_code_cell(len(cells), solution)]
        return {'nbformat': 4, 'nbformat_minor': 5, 'metadata': {}, 'cells': cells}

    filler = 'y = 1\n' * 500
    escapes = ''.join('!echo "{0}"\n'.format(index) + filler for index in range(340))
    output = {'output_type': 'stream', 'name': 'stdout', 'text': 'x'}
    return {
        'cap_many_cells': notebook([_code_cell(i, 'x{0} = {0}'.format(i)) for i in range(9_999)]),
        'cap_escapes_in_one_cell': notebook([_code_cell(0, escapes[: 1024 * 1024 - 1])]),
        'cap_dense_code': notebook([_code_cell(i, 'big{0} = ['.format(i) + '1,' * 350_000 + ']\n')
                                    for i in range(3)]),
        'cap_many_outputs': notebook([_code_cell(0, 'x = 1', [output] * 100_000)]),
    }


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    if 'MLP_DATA_DIR' not in os.environ and SHARED_MNIST.is_dir():
        os.environ['MLP_DATA_DIR'] = str(SHARED_MNIST)
    from autograder import batch, demo
    from autograder.course.spec import load_spec
    from autograder.submission.extract import extract_code
    from autograder.submission.load import load_submission
    from hostile import catalogue
    from hostile.submissions import Targets, baseline_notebook, hostile_notebook, write

    spec = load_spec(ASSIGNMENT)
    base = Path(tempfile.mkdtemp(prefix='hostile-batch-'))
    class_dir, scratch, out_dir = base / 'class', base / 'scratch', base / 'grades'
    class_dir.mkdir()
    scratch.mkdir()
    write(demo.submission_notebook(REPO_ROOT, ASSIGNMENT), class_dir / 'honest_solution.ipynb')
    write(baseline_notebook(), class_dir / 'baseline.ipynb')
    baseline_text = (class_dir / 'baseline.ipynb').read_text(encoding='utf-8')
    for case in catalogue.FILE_CASES:
        entry = os.fsdecode(case.entry) if isinstance(case.entry, bytes) else case.entry
        case.make(class_dir / entry, REPO_ROOT, scratch, baseline_text)
    targets = Targets(repo=str(REPO_ROOT), submissions_dir=str(class_dir), out_dir=str(out_dir),
                      victim='honest_solution', site_dirs=(), tcp_port=0, unix_socket='', abstract_socket='',
                      tag='bench', sleep_marker='7998.1', grader_pidns=os.readlink('/proc/self/ns/pid'))
    for attack in catalogue.ATTACKS:
        if attack.family == 'bound' or attack.name == 'markdown_in_messages':
            write(hostile_notebook([attack], attack.placements[0], targets),
                  class_dir / '{0}.ipynb'.format(attack.name))
    solution = demo.solution_source(REPO_ROOT, ASSIGNMENT)
    caps = cap_notebooks(solution)
    for name, notebook in caps.items():
        (class_dir / '{0}.ipynb'.format(name)).write_text(json.dumps(notebook), encoding='utf-8')

    print('machine: {0} CPUs, load average {1}'.format(os.cpu_count(), os.getloadavg()))
    before_peak = _peak_mib()
    cpu_before, children_before = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    wall = time.monotonic()
    submissions = batch.find_submissions([class_dir], spec.name)
    reports, summary = batch.grade_batch(spec, submissions, out_dir, workers=1, progress=False)
    wall = time.monotonic() - wall
    cpu = _cpu(resource.RUSAGE_SELF) - cpu_before
    children = _cpu(resource.RUSAGE_CHILDREN) - children_before

    statuses: dict[str, int] = {}
    for report in reports:
        statuses[report.status] = statuses.get(report.status, 0) + 1
    print('\nbatch: {0} entries in the folder, {1} reports ({2}), harness failures: {3}'.format(
        len(os.listdir(class_dir)), len(reports), ', '.join('{0} {1}'.format(n, s) for s, n in statuses.items()),
        summary['harness_failures'] or 'none'))
    print('grader peak RSS: {0:.0f} MiB (after imports: {1:.0f} MiB); stated bound {2} MiB'.format(
        _peak_mib(), before_peak, STATED_PEAK_MIB))
    print('grader CPU for the batch: {0:.1f} s; wall: {2:.1f} s; CPU of waited-for children: {1:.1f} s '
          '(sandboxes killed inside their pid namespace are not counted)'.format(cpu, children, wall))
    for report in reports:
        if report.harness_failed:
            print('  harness failure (the machine, not the student): {0}: {1}'.format(
                report.student, report.error[:200]))
    print('per submission: {0:.2f} s grader CPU'.format(cpu / max(1, len(reports))))
    print('\nload + extract alone, grader CPU seconds (stated bound {0:g} s per notebook):'.format(
        STATED_LOAD_EXTRACT_SECONDS))
    for name in caps:
        path = class_dir / '{0}.ipynb'.format(name)
        started = _cpu(resource.RUSAGE_SELF)
        loaded = load_submission(path)
        extraction = extract_code(loaded.notebook, spec.classes.keys()) if hasattr(loaded, 'notebook') else None
        spent = _cpu(resource.RUSAGE_SELF) - started
        print('  {0:<26} {1:6.1f} MiB  {2:6.2f} s  {3}'.format(
            name, path.stat().st_size / MIB, spent,
            extraction.summary()[:90] if extraction else getattr(loaded, 'reason', '')[:90]))

    print('\ngrade directory: {0}'.format(out_dir))


if __name__ == '__main__':
    main()
