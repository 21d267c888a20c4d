"""Grading many submissions: discovery, resume, parallel and distributed runs.

TRUSTED. Finds the submissions named on the command line, skips those whose
report in the grade directory already matches the file's sha256, grades the
rest serially, in a local process pool (`workers`), or on a Dask cluster
(`scheduler`), and writes every report as soon as it arrives. Only this
process writes the grade directory; workers return `Report` objects.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import multiprocessing
import re
import time
from dataclasses import dataclass
from pathlib import Path

from autograder import report as report_files
from autograder.grade import grade_submission, rejected_report
from autograder.limits import Limits
from autograder.results import CheckResult, Report
from autograder.spec import AssignmentSpec, load_spec

_SAFE_ID = re.compile(r'[^A-Za-z0-9._@+-]+')


@dataclass(frozen=True)
class Submission:
    """One file to grade and whose it is."""

    student: str
    path: Path


def _student_id(raw: str) -> str:
    cleaned = _SAFE_ID.sub('_', raw).strip('._') or 'student'
    return cleaned[:100]


def find_submissions(paths: list[Path], assignment: str) -> list[Submission]:
    """Expands command-line paths into submissions.

    A file is graded as given (a non-notebook is rejected later, not skipped).
    A folder is searched for an nbgrader `submitted/<student>/<assignment>/`
    tree (itself, or a course folder containing `submitted/`); otherwise the
    `.ipynb` files directly in it are taken, student id = file stem.
    Duplicate student ids get a numeric suffix.
    """
    found: list[Submission] = []
    for path in map(Path, paths):
        if path.is_dir():
            submitted = path / 'submitted' if (path / 'submitted').is_dir() else path
            nbgrader = sorted(submitted.glob('*/{0}/*.ipynb'.format(assignment)))
            if nbgrader:
                found += [Submission(_student_id(p.parent.parent.name), p) for p in nbgrader]
            else:
                found += [Submission(_student_id(p.stem), p) for p in sorted(path.glob('*.ipynb'))]
        else:
            found.append(Submission(_student_id(path.stem), path))
    seen: dict[str, int] = {}
    unique = []
    for submission in found:
        count = seen.get(submission.student, 0)
        seen[submission.student] = count + 1
        student = submission.student if count == 0 else '{0}-{1}'.format(submission.student, count + 1)
        unique.append(Submission(student, submission.path))
    return unique


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes ('' if it cannot be read)."""
    digest = hashlib.sha256()
    try:
        with open(path, 'rb') as handle:
            for block in iter(lambda: handle.read(1 << 20), b''):
                digest.update(block)
    except OSError:
        return ''
    return digest.hexdigest()


def _report_from_json(data: dict) -> Report:
    tests = [CheckResult(**{k: t[k] for k in ('grade_id', 'name', 'target', 'kind', 'status',
                                              'score', 'max_score', 'output')},
                         diagnosis=t.get('diagnosis', '')) for t in data['tests']]
    return Report(student=data['student'], assignment=data['assignment'],
                  submission=data['submission'], sha256=data['sha256'], status=data['status'],
                  score=data['score'], max_score=data['max_score'], isolation=data['isolation'],
                  execution_time=data['execution_time'], tests=tests, error=data.get('error', ''),
                  notes=data.get('notes', []))


def existing_report(out_dir: Path, submission: Submission, spec: AssignmentSpec) -> Report | None:
    """The report already in `out_dir` for this exact file, if any."""
    path = out_dir / '{0}.json'.format(submission.student)
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
        if data.get('assignment') != spec.name or data.get('sha256') != file_sha256(submission.path):
            return None
        if not (out_dir / '{0}.md'.format(submission.student)).is_file():
            return None
        return _report_from_json(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def grade_one(assignment: str, course_root: str, student: str, path: str,
              limits: Limits, public_only: bool = False) -> Report:
    """Grades one submission; safe to run in a worker process or on a Dask worker.

    Any failure of the harness itself becomes a rejected report saying so,
    so one bad submission never stops a batch.
    """
    spec = load_spec(assignment, Path(course_root))
    try:
        return grade_submission(Path(path), spec, student=student, limits=limits,
                                public_only=public_only, display_path=path)
    except Exception as error:  # noqa: BLE001 - a batch must survive harness bugs.
        return rejected_report(spec, student, path, file_sha256(Path(path)),
                               'The grader failed on this file (internal error: {0}: {1}); '
                               'please tell your instructor.'.format(type(error).__name__, error))


def write_report_files(out_dir: Path, report: Report) -> None:
    """Writes a student's JSON report and Markdown feedback atomically."""
    report_files.write_atomic(out_dir / '{0}.md'.format(report.student),
                              report_files.feedback_markdown(report))
    report_files.write_atomic(out_dir / '{0}.json'.format(report.student),
                              report_files.report_json(report))


def _run_local(jobs, workers, limits, progress):
    if workers <= 1:
        for job in jobs:
            yield grade_one(*job, limits)
        return
    context = multiprocessing.get_context('forkserver')
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(grade_one, *job, limits) for job in jobs]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()


def _run_dask(jobs, scheduler, limits):
    from dask.distributed import Client, as_completed
    with Client(scheduler, set_as_default=False) as client:
        futures = [client.submit(grade_one, *job, limits, pure=False) for job in jobs]
        for future in as_completed(futures):
            yield future.result()


def grade_batch(spec: AssignmentSpec, submissions: list[Submission], out_dir: Path, *,
                workers: int = 1, scheduler: str | None = None, limits: Limits | None = None,
                progress: bool = True) -> tuple[list[Report], dict]:
    """Grades submissions into `out_dir`, resuming where reports already match.

    Returns:
        (all reports, the summary dict written to summary.json).
    """
    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    limits = limits or Limits()
    reports, todo = [], []
    for submission in submissions:
        previous = existing_report(out_dir, submission, spec)
        if previous is not None:
            reports.append(previous)
        else:
            todo.append(submission)
    jobs = [(spec.name, str(spec.course_root), s.student, str(s.path)) for s in todo]
    results = (_run_dask(jobs, scheduler, limits) if scheduler
               else _run_local(jobs, workers, limits, progress))
    bar = _progress(progress, len(jobs))
    for report in results:
        write_report_files(out_dir, report)
        reports.append(report)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    summary = report_files.summary(spec, reports, time.monotonic() - started, len(jobs))
    report_files.write_atomic(out_dir / 'grades.csv', report_files.grades_csv(spec, reports))
    report_files.write_atomic(out_dir / 'summary.json', json.dumps(summary, indent=2) + '\n')
    return reports, summary


def _progress(enabled: bool, total: int):
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc='grading', unit='notebook')
