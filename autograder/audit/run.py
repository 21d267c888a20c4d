"""Running an audit: every mutant and probe graded as a submission, then judged.

TRUSTED. The pipeline:

1. the solution's variants are made as text (`mutants`, `probes`) and each
   is written as a submission notebook (`solutions.submission_notebook`);
2. all of them, with the unchanged solution as a baseline, are graded by
   `batch.grade_batch` (the real pipeline, in the real sandbox, in parallel
   on local workers or a Dask cluster, exactly as `grade` does);
3. a mutant that lost points anywhere is `killed`; one that kept full marks
   is run once more in the sandbox on dense probes (`equivalence`) and is
   `equivalent` if it agrees with the reference there, else `survived`;
4. a probe that lost points is `lost`, else `kept`.

The grade directory is a fresh temporary folder each run (a resumed grade
directory would reuse reports made under an older spec).
"""

from __future__ import annotations

import concurrent.futures
import json
import resource
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from autograder.audit import equivalence, probes as probe_rewrites
from autograder.audit.mutants import OPERATORS, generate_mutants
from autograder.audit.solutions import (SolutionError, class_source, imports_of, notebook_solution_cells,
                                        reference_regions, submission_notebook)

AUDIT_SCHEMA = 'mlp-autograde/audit/1'

#: A score this close to the baseline's counts as full marks (float sums of shares).
_POINTS_EPSILON = 1e-6


class AuditError(Exception):
    """The audit cannot run (no release, the solution itself loses points, a bad audit file)."""


@dataclass
class Variant:
    """One submission the audit grades: the baseline, a mutant or a probe."""

    id: str
    kind: str  # 'baseline' | 'mutant' | 'probe'
    target: str
    operator: str
    origin: str  # 'notebook' | 'reference' | 'audit file'
    description: str
    diff: str
    replacements: dict
    extra_cells: tuple = ()


@dataclass
class MutantResult:
    id: str
    target: str
    operator: str
    origin: str
    description: str
    diff: str
    status: str  # killed | survived | equivalent
    points: float
    max_points: float
    item: str | None
    lost_items: list = field(default_factory=list)
    killed_by: list = field(default_factory=list)
    equivalence: str = ''


@dataclass
class ProbeResult:
    id: str
    target: str
    description: str
    origin: str
    diff: str
    status: str  # kept | lost
    points: float
    max_points: float
    failed_checks: list = field(default_factory=list)


@dataclass
class AuditResult:
    """Everything `audit.json`, the page and the table are made from."""

    assignment: str
    isolation: str
    workers: int
    wall_seconds: float
    baseline_points: float
    max_points: float
    items: list
    mutants: list
    probes: list
    notes: list
    cpu_seconds: float = 0.0

    @property
    def survivors(self) -> list:
        return [m for m in self.mutants if m.status == 'survived']

    @property
    def lost_probes(self) -> list:
        return [p for p in self.probes if p.status == 'lost']

    @property
    def clean(self) -> bool:
        return not self.survivors and not self.lost_probes

    def totals(self) -> dict:
        count = lambda rows, status: sum(r.status == status for r in rows)  # noqa: E731
        return {'mutants': len(self.mutants), 'killed': count(self.mutants, 'killed'),
                'survived': count(self.mutants, 'survived'), 'equivalent': count(self.mutants, 'equivalent'),
                'probes': len(self.probes), 'kept': count(self.probes, 'kept'), 'lost': count(self.probes, 'lost')}

    def to_json(self) -> dict:
        return {'schema': AUDIT_SCHEMA, 'assignment': self.assignment, 'isolation': self.isolation,
                'workers': self.workers, 'wall_seconds': round(self.wall_seconds, 2),
                'cpu_seconds': round(self.cpu_seconds, 2),
                'baseline': {'points': self.baseline_points, 'max_points': self.max_points},
                'totals': self.totals(), 'items': self.items,
                'mutants': [asdict(m) for m in self.mutants], 'probes': [asdict(p) for p in self.probes],
                'notes': self.notes}


# --------------------------------------------------------------------------
# Making the variants
# --------------------------------------------------------------------------


def _graded_targets(spec) -> list[str]:
    """Methods ('Class.method') and functions that graded items check."""
    return [item.target for item in spec.items if 'manual' not in item.checks and (
        item.method or equivalence.target_kind(spec, item.target)[0] == 'function')]


def _batch_independent(spec) -> set[str]:
    return {item.class_name for item in spec.items if 'property' in item.checks
            and item.method == 'fprop' and equivalence.target_kind(spec, item.class_name)[0] == 'layer'}


def _kink_classes(spec) -> set[str]:
    return set(getattr(spec, 'kink_at_zero', ()) or ())


def _notebook_mutants(spec, cells, operators) -> list[Variant]:
    baseline = {cell.key: cell.source for cell in cells}
    variants = []
    for cell in cells:
        for mutant in generate_mutants(cell.source, cell.region_lines, name=cell.key, operators=operators):
            variants.append(Variant('m{0:03d}'.format(len(variants) + 1), 'mutant', mutant.target,
                                    mutant.operator, 'notebook', mutant.note, mutant.diff,
                                    dict(baseline, **{cell.key: mutant.source})))
    return variants


def _reference_variants(spec, cells, course_root: Path, operators) -> tuple[Variant | None, list[Variant]]:
    """The reference regions' classes as a later cell: one baseline, and their mutants."""
    baseline = {cell.key: cell.source for cell in cells}
    targets = set(_graded_targets(spec))
    classes = [name for name in spec.classes]
    regions = reference_regions(spec.name, course_root)
    pieces, variants = [], []
    for region in regions:
        header = imports_of(region.source)
        present = [name for name in classes if class_source(region.source, name)]
        if not present:
            continue
        pieces.append(header + '\n\n' + '\n\n'.join(class_source(region.source, n) for n in present))
        for mutant in generate_mutants(region.source, region.region_lines, targets=targets, operators=operators,
                                       name=region.module.replace('.', '/') + '.py'):
            class_name = mutant.target.split('.')[0]
            cell = header + '\n\n' + class_source(mutant.source, class_name)
            variants.append(Variant('r{0:03d}'.format(len(variants) + 1), 'mutant', mutant.target,
                                    mutant.operator, 'reference', mutant.note, mutant.diff, dict(baseline),
                                    (cell,)))
    if not pieces:
        return None, []
    return Variant('reference', 'baseline', '', '', 'reference', 'the reference classes as a later cell',
                   '', dict(baseline), tuple(pieces)), variants


def _cell_defining(cells, target: str):
    for cell in cells:
        if probe_rewrites.defines(cell.source, target):
            return cell
    return None


def _file_variants(spec, cells, audit_file) -> tuple[list[Variant], list[Variant]]:
    baseline = {cell.key: cell.source for cell in cells}
    made = {'mutant': [], 'probe': []}
    for kind, entries in (('mutant', audit_file.mutants), ('probe', audit_file.probes)):
        for entry in entries:
            cell = _cell_defining(cells, entry.target)
            if cell is None:
                raise AuditError('{0}: {1} {2} targets {3}, which no solution cell defines'.format(
                    audit_file.path, kind, entry.id, entry.target))
            try:
                changed = probe_rewrites.replace_definition(cell.source, entry.target, entry.code)
            except ValueError as error:
                raise AuditError('{0}: {1} {2}: {3}'.format(audit_file.path, kind, entry.id, error)) from error
            made[kind].append(Variant(entry.id, kind, entry.target, 'audit file' if kind == 'mutant' else entry.id,
                                      'audit file', entry.description,
                                      probe_rewrites.diff(cell.source, changed, cell.key),
                                      dict(baseline, **{cell.key: changed})))
    return made['mutant'], made['probe']


def _generic_probes(spec, cells) -> list[Variant]:
    baseline = {cell.key: cell.source for cell in cells}
    variants = []
    for cell in cells:
        for rewrite in probe_rewrites.generic_rewrites(
                cell.source, _graded_targets(spec), batch_independent=_batch_independent(spec),
                kink_classes=_kink_classes(spec)):
            variants.append(Variant('p-{0}-{1}'.format(rewrite.target, rewrite.name), 'probe', rewrite.target,
                                    rewrite.name, 'generic', rewrite.description, rewrite.diff,
                                    dict(baseline, **{cell.key: rewrite.source})))
    return variants


def make_variants(spec, course_root: Path, audit_file_path: Path | None = None,
                  include_reference: bool = True, targets: set[str] | None = None,
                  operators: tuple[str, ...] = OPERATORS) -> list[Variant]:
    """The baseline(s), mutants and probes of an assignment, in report order.

    Args:
        spec: The assignment's spec.
        course_root: The course folder.
        audit_file_path: The assignment's audit file (default: the course's).
        include_reference: Also mutate the reference package's exercise regions.
        targets: Keep only mutants and probes of these targets (None: all).
        operators: The mutation operators to apply (default: all).

    Raises:
        AuditError: The solution or the audit file cannot be used.
    """
    try:
        cells = notebook_solution_cells(spec.source_notebook)
    except SolutionError as error:
        raise AuditError(str(error)) from error
    try:
        audit_file = probe_rewrites.load_audit_file(spec.name, audit_file_path)
    except probe_rewrites.AuditFileError as error:
        raise AuditError(str(error)) from error
    solution = Variant('solution', 'baseline', '', '', 'notebook', "the source notebook's solution", '',
                       {cell.key: cell.source for cell in cells})
    variants = [solution] + _notebook_mutants(spec, cells, operators)
    if include_reference:
        reference, reference_mutants = _reference_variants(spec, cells, course_root, operators)
        if reference is not None:
            variants += [reference] + reference_mutants
    file_mutants, file_probes = _file_variants(spec, cells, audit_file)
    variants += file_mutants + _generic_probes(spec, cells) + file_probes
    if targets is not None:
        unknown = set(targets) - {v.target for v in variants}
        if unknown:
            raise AuditError('no mutant or probe has the target(s) {0}'.format(', '.join(sorted(unknown))))
        variants = [v for v in variants if v.kind == 'baseline' or v.target in targets]
    return variants


# --------------------------------------------------------------------------
# Grading and judging
# --------------------------------------------------------------------------


def _auto_points(report) -> tuple[float, float]:
    tests = [t for t in report.tests if t.kind != 'manual']
    return sum(t.score for t in tests), sum(t.max_score for t in tests)


def _lost_items(report) -> list[str]:
    lost = {}
    for test in report.tests:
        if test.kind != 'manual' and test.score < test.max_score - _POINTS_EPSILON:
            lost.setdefault(test.grade_id, None)
    return list(lost)


def _failed_checks(report) -> list[dict]:
    return [{'grade_id': t.grade_id, 'name': t.name, 'status': t.status, 'output': t.output}
            for t in report.tests if t.kind != 'manual' and t.score < t.max_score - _POINTS_EPSILON]


def _killing_checks(report) -> list[str]:
    """'grade_id: check name' of every automatic check that lost points."""
    return ['{0}: {1}'.format(c['grade_id'], c['name']) for c in _failed_checks(report)]


def _item_of(spec, target: str) -> str | None:
    """The item a variant of `target` should fail: the one checking it, else one of its class's methods.

    (A learning rule's `reset` is graded through `update_params`, say.)
    """
    for item in spec.items:
        if item.target == target:
            return item.grade_id
    for item in spec.items:
        if item.method and item.class_name == target.split('.')[0] and 'manual' not in item.checks:
            return item.grade_id
    return None


def _harness_failed(report) -> bool:
    """True when the grader, not the variant, failed (an error report or a harness check)."""
    return report.status != 'graded' or any(getattr(t, 'harness', False) for t in report.tests)


def _grade_all(spec, variants, released, workers: int, scheduler: str | None, limits, progress: bool):
    """Grades every variant with `batch.grade_batch`; harness failures are graded once more.

    Raises:
        AuditError: A variant could still not be graded (a problem of the
            grader or the machine, never counted as a killed mutant).
    """
    from autograder import batch
    with tempfile.TemporaryDirectory(prefix='mlp-autograde-audit-') as folder:
        submissions_dir = Path(folder) / 'submissions'
        submissions_dir.mkdir()
        for variant in variants:
            notebook = submission_notebook(released, variant.replacements, variant.extra_cells)
            nbformat.write(notebook, str(submissions_dir / '{0}.ipynb'.format(variant.id)))
        submissions = batch.find_submissions([submissions_dir], spec.name)
        reports, _ = batch.grade_batch(spec, submissions, Path(folder) / 'grades', workers=workers,
                                       scheduler=scheduler, limits=limits, progress=progress)
        by_id = {report.student: report for report in reports}
        again = [s for s in submissions if _harness_failed(by_id[s.student])]
        if again:
            retried, _ = batch.grade_batch(spec, again, Path(folder) / 'retried', workers=min(workers, len(again)),
                                           scheduler=scheduler, limits=limits, progress=False)
            by_id.update({report.student: report for report in retried})
        failed = [student for student, report in by_id.items() if _harness_failed(report)]
        if failed:
            report = by_id[failed[0]]
            raise AuditError('the grader failed on {0} variant(s) ({1}): {2}'.format(
                len(failed), ', '.join(failed[:5]), report.error or '; '.join(
                    t.output for t in report.tests if getattr(t, 'harness', False))[:500]))
        return by_id


def _extracted_source(spec, released, variant) -> str:
    from autograder.submission.extract import extract_code
    notebook = submission_notebook(released, variant.replacements, variant.extra_cells)
    return extract_code(notebook, list(spec.classes) + list(getattr(spec, 'functions', {}) or {})).source


def run_audit(spec, *, course_root: Path | None = None, workers: int = 1, scheduler: str | None = None,
              limits=None, progress: bool = False, audit_file_path: Path | None = None,
              include_reference: bool = True, targets: set[str] | None = None,
              operators: tuple[str, ...] = OPERATORS) -> AuditResult:
    """Audits one assignment: grades its mutants and probes, decides their statuses.

    Args:
        spec: The assignment's spec (as `load_spec` gives it; workers reload it by name).
        course_root: The course folder (default: the spec's).
        workers: Local worker processes for grading (as `grade --workers`).
        scheduler: A Dask scheduler address instead of local workers.
        limits: Sandbox limits (defaults if None).
        progress: Show grade_batch's progress bar.
        audit_file_path: The assignment's audit file (default: the course's).
        include_reference: Also mutate the reference package's exercise regions.
        targets: Audit only these targets ('Class.method'); None: every graded one.
        operators: The mutation operators to apply (default: all; () for probes only).

    Returns:
        The audit's result.

    Raises:
        AuditError: The audit cannot be run, or the solution itself loses points.
    """
    from autograder.demo import released_notebook
    from autograder.sandbox.limits import Limits
    started, cpu_started = time.monotonic(), _cpu_seconds()
    course_root = Path(course_root or spec.course_root)
    limits = limits or Limits()
    try:
        released = released_notebook(course_root, spec.name)
    except (OSError, ValueError) as error:
        raise AuditError('cannot read the released notebook of {0} ({1}); run `mlp-autograde release '
                         '--assignment {0}` first'.format(spec.name, error)) from error
    variants = make_variants(spec, course_root, audit_file_path, include_reference, targets, operators)
    try:
        reports = _grade_all(spec, variants, released, workers, scheduler, limits, progress)
    except SolutionError as error:
        raise AuditError(str(error)) from error
    notes = []
    baseline = reports['solution']
    points, max_points = _auto_points(baseline)
    if points < max_points - _POINTS_EPSILON:
        lost = '; '.join('{0}: {1}'.format(c['grade_id'], c['output'][:300]) for c in _failed_checks(baseline))
        raise AuditError("the source notebook's solution itself loses points ({0:g} of {1:g}): {2}".format(
            points, max_points, lost))
    skipped_reference = False
    if 'reference' in reports:
        ref_points, _ = _auto_points(reports['reference'])
        if ref_points < max_points - _POINTS_EPSILON:
            skipped_reference = True
            notes.append('The reference classes, pasted as a later cell, lose points ({0:g} of {1:g}: {2}); '
                         'their mutants are left out.'.format(ref_points, max_points,
                                                              ', '.join(_lost_items(reports['reference']))))
    mutants, probes, survivors = [], [], []
    for variant in variants:
        if variant.kind == 'baseline' or (skipped_reference and variant.origin == 'reference'):
            continue
        report = reports[variant.id]
        earned, _ = _auto_points(report)
        full = earned >= max_points - _POINTS_EPSILON
        if variant.kind == 'probe':
            probes.append(ProbeResult(variant.id, variant.target, variant.description, variant.origin,
                                      variant.diff, 'kept' if full else 'lost', round(earned, 4), max_points,
                                      [] if full else _failed_checks(report)))
            continue
        result = MutantResult(variant.id, variant.target, variant.operator, variant.origin,
                              variant.description, variant.diff, 'killed' if not full else 'survived',
                              round(earned, 4), max_points, _item_of(spec, variant.target),
                              _lost_items(report), _killing_checks(report))
        mutants.append(result)
        if full:
            survivors.append((result, variant))
    _decide_equivalence(spec, released, survivors, workers, limits, variants[0])
    items = _item_rows(spec, mutants, probes)
    isolation = baseline.isolation
    return AuditResult(spec.name, isolation, workers, time.monotonic() - started, points, max_points,
                       items, mutants, probes, notes, _cpu_seconds() - cpu_started)


def _cpu_seconds() -> float:
    """CPU seconds used by this process and its finished descendants (workers, sandboxes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _decide_equivalence(spec, released, survivors, workers: int, limits, solution) -> None:
    if not survivors:
        return
    solution_source = _extracted_source(spec, released, solution)

    def decide(pair):
        result, variant = pair
        source = _extracted_source(spec, released, variant)
        return result, equivalence.decide(spec, source, variant.target.split('.')[0], limits=limits,
                                          solution_source=solution_source)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for result, verdict in pool.map(decide, survivors):
            result.equivalence = verdict.detail
            if verdict.decided and verdict.equivalent:
                result.status = 'equivalent'


def _item_rows(spec, mutants, probes) -> list[dict]:
    rows = []
    for item in spec.items:
        if 'manual' in item.checks:
            continue
        own = [m for m in mutants if m.item == item.grade_id]
        own_probes = [p for p in probes if p.target == item.target]
        rows.append({'grade_id': item.grade_id, 'target': item.target, 'points': item.points,
                     'mutants': len(own), 'killed': sum(m.status == 'killed' for m in own),
                     'survived': sum(m.status == 'survived' for m in own),
                     'equivalent': sum(m.status == 'equivalent' for m in own),
                     'kills': sum(item.grade_id in m.lost_items for m in mutants),
                     'probes': len(own_probes), 'probes_lost': sum(p.status == 'lost' for p in own_probes)})
    other = [m for m in mutants if m.item is None]
    if other:
        rows.append({'grade_id': '(other)', 'target': 'not a graded target', 'points': 0.0,
                     'mutants': len(other), 'killed': sum(m.status == 'killed' for m in other),
                     'survived': sum(m.status == 'survived' for m in other),
                     'equivalent': sum(m.status == 'equivalent' for m in other), 'kills': 0,
                     'probes': 0, 'probes_lost': 0})
    return rows


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def terminal_report(result: AuditResult) -> str:
    """The terminal table per item, then every survivor (with its diff) and every lost probe."""
    header = ('item', 'target', 'mutants', 'killed', 'survived', 'equivalent', 'kills', 'probes', 'lost')
    rows = [header] + [(r['grade_id'], r['target'], r['mutants'], r['killed'], r['survived'], r['equivalent'],
                        r['kills'], r['probes'], r['probes_lost']) for r in result.items
                       if r['mutants'] or r['probes'] or r['kills']]
    totals = result.totals()
    rows.append(('total', '', totals['mutants'], totals['killed'], totals['survived'], totals['equivalent'],
                 '', totals['probes'], totals['lost']))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = ['Audit of {0} ({1} isolation, {2} worker(s), {3:.1f} s wall, {4:.0f} CPU s)'.format(
        result.assignment, result.isolation, result.workers, result.wall_seconds, result.cpu_seconds), '']
    for index, row in enumerate(rows):
        lines.append('  '.join(str(cell).ljust(widths[i]) if i < 2 else str(cell).rjust(widths[i])
                               for i, cell in enumerate(row)))
        if index == 0 or index == len(rows) - 2:
            lines.append('  '.join('-' * w for w in widths))
    lines.append('("kills": mutants for which that item lost points)')
    for mutant in result.survivors:
        lines += ['', 'SURVIVED {0} [{1}, {2}] {3}: {4}; should have failed {5}'.format(
            mutant.id, mutant.operator, mutant.origin, mutant.target, mutant.description,
            mutant.item or 'an item of ' + mutant.target), mutant.diff.rstrip('\n')]
        if mutant.equivalence:
            lines.append('  (dense probes: {0})'.format(mutant.equivalence))
    for probe in result.lost_probes:
        lines += ['', 'LOST {0} [{1}] {2}: {3}; {4:g} of {5:g} points'.format(
            probe.id, probe.origin, probe.target, probe.description, probe.points, probe.max_points)]
        lines += ['  {0} {1}: {2}'.format(c['grade_id'], c['status'], c['output'].split('\n')[0][:300])
                  for c in probe.failed_checks]
        lines.append(probe.diff.rstrip('\n'))
    lines += [''] + result.notes
    verdict = ('no surviving mutant and no probe lost points' if result.clean else
               '{0} surviving mutant(s), {1} probe(s) lost points'.format(len(result.survivors),
                                                                          len(result.lost_probes)))
    lines.append('Result: {0}.'.format(verdict))
    return '\n'.join(lines)


def write_outputs(result: AuditResult, out_dir: Path) -> list[Path]:
    """Writes audit.json and audit.html into `out_dir` atomically; returns their paths."""
    from autograder.outputs.audit_html import audit_page
    from autograder.outputs.report import write_atomic
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / 'audit.json', out_dir / 'audit.html'
    write_atomic(json_path, json.dumps(result.to_json(), indent=2) + '\n')
    write_atomic(html_path, audit_page(result))
    return [json_path, html_path]
