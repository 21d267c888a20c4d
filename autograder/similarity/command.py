"""The similarity report of a class: read every submission, compare, write JSON and HTML.

TRUSTED, in the grading parent (and, for a large class, in local worker
processes that only read and tokenise). Nothing from a submission is executed.

Submissions are found and named by :func:`autograder.batch.find_submissions`,
so ids are exactly those of the grade directory. Each is read with the
grader's safe loader and extractor; a file that cannot be read is listed as
skipped with the loader's reason. The release notebook (what students were
given) is subtracted; the source notebook (the model solution) is always a
known source, and ``--known`` folders add more (notebooks and ``.py`` files).

Writes into the output directory, atomically:

* ``similarity.json`` -- the contract for tooling (see ``report_json``);
* ``similarity.html`` and ``similarity/*.html`` -- the instructor's pages
  (:mod:`autograder.outputs.similarity_html`).

None of it is linked from, or copied into, a student's feedback.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import json
import multiprocessing
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.similarity.matching import Document, Match, Result, Settings, clusters, find_matches, fingerprint
from autograder.similarity.written import release_statements, written_code

if TYPE_CHECKING:
    from autograder.course.spec import AssignmentSpec

__all__ = ['SimilarityError', 'SimilarityRun', 'graded_units', 'report_json', 'run_similarity']

SCHEMA = 'mlp-autograde/similarity/1'

#: Name of the model solution among the known sources.
MODEL_SOLUTION = 'model solution'

#: Largest ``.py`` known source read, in bytes.
MAX_PY_BYTES = 2 * 2**20

#: Most files taken from the ``--known`` folders.
MAX_KNOWN_FILES = 5000

#: Classes smaller than this are read in this process (starting workers costs more).
_PARALLEL_FROM = 64


class SimilarityError(Exception):
    """The comparison cannot run (no release notebook, bad --known folder, no submissions)."""


@dataclass
class SimilarityRun:
    """What one run found, for the HTML pages and the command's summary."""

    assignment: str
    settings: Settings
    students: list[Document]
    known: list[Document]
    skipped: list[dict]
    result: Result
    groups: list[list[str]]
    seconds: dict

    def document(self, name: str, known: bool = False) -> Document:
        """The submission (or, with ``known``, the known source) of that name."""
        if not hasattr(self, '_by_name'):
            self._by_name = {(False, d.name): d for d in self.students}
            self._by_name.update({(True, d.name): d for d in self.known})
        return self._by_name[known, name]


def graded_units(spec: AssignmentSpec) -> list[str]:
    """The classes and functions whose code is compared: those the grader extracts."""
    names = list(getattr(spec, 'classes', {}) or {})
    for item in spec.items:
        if 'manual' not in item.checks and item.class_name not in names:
            names.append(item.class_name)
    return names


# --------------------------------------------------------------------------- reading


def _read_notebook(path: Path):
    """(notebook, '') or (None, reason) with the grader's loader."""
    from autograder.submission.load import LoadedNotebook, load_submission
    loaded = load_submission(path)
    if isinstance(loaded, LoadedNotebook):
        return loaded.notebook, ''
    return None, loaded.reason


def _read_python(path: Path):
    """A ``.py`` file as a one-cell notebook, or (None, reason)."""
    from autograder.batch import read_submission_bytes
    data = read_submission_bytes(path)
    if data is None:
        return None, '{0} is not a readable regular file.'.format(path.name)
    if len(data) > MAX_PY_BYTES:
        return None, '{0} is larger than {1} MB.'.format(path.name, MAX_PY_BYTES // 2**20)
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError:
        return None, '{0} is not UTF-8 text.'.format(path.name)
    return {'cells': [{'cell_type': 'code', 'source': text, 'metadata': {}}]}, ''


def _document(name: str, path: str, wanted: list[str], release: dict, settings: Settings):
    """A Document, or (name, path, reason) when the file cannot be compared."""
    from autograder.submission.extract import extract_code
    file = Path(path)
    notebook, reason = _read_python(file) if file.suffix == '.py' else _read_notebook(file)
    if notebook is None:
        return name, path, reason
    try:
        code = written_code(extract_code(notebook, wanted), wanted, release)
    except Exception as error:  # noqa: BLE001 - one odd notebook never stops the report
        return name, path, 'its code could not be read for comparison ({0})'.format(type(error).__name__)
    return fingerprint(name, path, code, settings)


def _documents(jobs: list[tuple[str, str]], wanted: list[str], release: dict, settings: Settings,
               workers: int) -> tuple[list[Document], list[dict]]:
    arguments = [(name, path, wanted, release, settings) for name, path in jobs]
    if workers > 1 and len(jobs) >= _PARALLEL_FROM:
        context = multiprocessing.get_context('spawn')
        try:
            with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                        initializer=_init_worker) as pool:
                outcomes = list(pool.map(_document_star, arguments, chunksize=16))
        except concurrent.futures.process.BrokenProcessPool:
            # A worker died (killed, or a caller script without a __main__ guard): read here.
            outcomes = [_document(*argument) for argument in arguments]
    else:
        outcomes = [_document(*argument) for argument in arguments]
    documents, skipped = [], []
    for outcome in outcomes:
        if isinstance(outcome, Document):
            documents.append(outcome)
        else:
            skipped.append({'name': outcome[0], 'path': outcome[1], 'reason': outcome[2]})
    return documents, skipped


def _document_star(arguments):
    return _document(*arguments)


def _init_worker() -> None:
    # As in autograder.cli: skip jsonschema's costly optional IRI checker.
    sys.modules.setdefault('rfc3987_syntax', None)


def _known_jobs(spec: AssignmentSpec, folders: Sequence[Path]) -> list[tuple[str, str]]:
    jobs = [(MODEL_SOLUTION, str(spec.source_notebook))]
    for folder in map(Path, folders):
        if folder.is_file():
            jobs.append((folder.name, str(folder)))
            continue
        if not folder.is_dir():
            raise SimilarityError('--known {0}: no such file or folder'.format(folder))
        files = sorted(path for pattern in ('*.ipynb', '*.py') for path in folder.rglob(pattern)
                       if not any(part.startswith('.') for part in path.relative_to(folder).parts))
        for path in files:
            jobs.append(('{0}/{1}'.format(folder.name, path.relative_to(folder).as_posix()), str(path)))
            if len(jobs) > MAX_KNOWN_FILES:
                raise SimilarityError('--known folders hold more than {0} files; give fewer'.format(
                    MAX_KNOWN_FILES))
    return jobs


def _release_notebook(spec: AssignmentSpec) -> Path:
    path = spec.student_mlp_dir / spec.notebook
    if path.is_file():
        return path
    candidates = sorted(spec.student_mlp_dir.glob('*.ipynb'))
    if candidates:
        return candidates[0]
    raise SimilarityError('{0} has no released notebook in {1}; run `mlp-autograde release '
                          '--assignment {0}` first (what the release gives is left out of the '
                          'comparison)'.format(spec.name, spec.student_mlp_dir))


# --------------------------------------------------------------------------- the run


def run_similarity(spec: AssignmentSpec, paths: Sequence[Path], out_dir: Path, *,
                   known_folders: Sequence[Path] = (), settings: Settings | None = None,
                   workers: int = 1) -> SimilarityRun:
    """Compares a class's submissions and writes the similarity report.

    Args:
        spec: The assignment.
        paths: Submissions as given to ``grade`` (files, folders, nbgrader trees).
        out_dir: Where to write (created if missing; may be the grade directory).
        known_folders: Folders (or files) of known sources.
        settings: Parameters (defaults if None).
        workers: Processes that read submissions (a class of 500 takes seconds);
            they are started with "spawn", so a script calling this with
            workers > 1 needs the usual ``if __name__ == '__main__':`` guard.

    Returns:
        The :class:`SimilarityRun`.

    Raises:
        SimilarityError: The release notebook is missing, a known folder does not
            exist, or no submission was found. (No student id is ``similarity``:
            batch reserves it, as it reserves ``summary``.)
    """
    from autograder import batch
    settings = settings or Settings()
    started = time.monotonic()
    submissions = batch.find_submissions(list(map(Path, paths)), spec.name)
    if not submissions:
        raise SimilarityError('no submissions found in {0}'.format(', '.join(map(str, paths))))
    wanted = graded_units(spec)
    notebook, reason = _read_notebook(_release_notebook(spec))
    if notebook is None:
        raise SimilarityError('the released notebook cannot be read: {0}'.format(reason))
    release = release_statements(notebook, wanted)
    known_jobs = _known_jobs(spec, known_folders)
    read_started = time.monotonic()
    students, skipped = _documents([(s.student, str(s.path)) for s in submissions], wanted, release,
                                   settings, workers)
    known, skipped_known = _documents(known_jobs, wanted, release, settings, workers)
    for entry in skipped_known:
        entry['known'] = True
    compare_started = time.monotonic()
    result = find_matches(students, known, settings)
    groups = clusters(result.pairs)
    finished = time.monotonic()
    seconds = {'reading': round(compare_started - read_started, 3),
               'comparing': round(finished - compare_started, 3),
               'total': round(finished - started, 3)}
    run = SimilarityRun(spec.name, settings, students, known, skipped + skipped_known, result, groups,
                        seconds)
    _write(run, Path(out_dir))
    return run


def _write(run: SimilarityRun, out_dir: Path) -> None:
    from autograder.outputs import report as report_files
    from autograder.outputs import similarity_html
    out_dir.mkdir(parents=True, exist_ok=True)
    pages = out_dir / similarity_html.PAGES_FOLDER
    pages.mkdir(exist_ok=True)
    stale = re.compile(r'^(pair|known)-\d+\.html$|^\..+\.tmp$')  # old pages; temp files of a killed run
    for entry in os.scandir(pages):
        if stale.match(entry.name) and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)
    for name, text in similarity_html.pair_pages(run).items():
        report_files.write_atomic(pages / name, text)
    report_files.write_atomic(out_dir / 'similarity.json', json.dumps(report_json(run), indent=2) + '\n')
    report_files.write_atomic(out_dir / 'similarity.html', similarity_html.overview_page(run))


# --------------------------------------------------------------------------- JSON


def _span(document: Document, start: int, end: int) -> dict:
    rows = [document.code.rows[row] for row in document.code.token_rows[start:end]]
    first = min(rows, key=lambda row: (row.cell, row.line))
    last = max(rows, key=lambda row: (row.cell, row.line))
    return {'unit': first.unit, 'cell': first.cell, 'lines': [first.line, last.line]}


def match_json(match: Match, a: Document, b: Document) -> dict:
    """One pair or known match as in ``similarity.json``."""
    spans = []
    seen = set()
    for region in match.regions:
        span = {'a': _span(a, region.a_start, region.a_end), 'b': _span(b, region.b_start, region.b_end),
                'tokens': min(region.a_end - region.a_start, region.b_end - region.b_start)}
        key = json.dumps([span['a'], span['b']], sort_keys=True)
        if key not in seen:
            seen.add(key)
            spans.append(span)
    return {'a': match.a, 'b': match.b, 'score': match.score, 'a_fraction': match.a_fraction,
            'b_fraction': match.b_fraction, 'matched_tokens': match.matched_tokens,
            'a_tokens': match.a_tokens, 'b_tokens': match.b_tokens, 'meaningful': match.meaningful,
            'note': match.note, 'spans': spans}


def report_json(run: SimilarityRun) -> dict:
    """The ``similarity.json`` contract.

    Keys: ``schema``; ``assignment``; ``threshold`` (pairs and known matches with
    ``score`` >= it are listed); ``min_tokens`` (matched tokens a match needs to
    mean anything); ``parameters`` (k, window, common share and cutoff);
    ``submissions`` (each ``student``, ``submission`` path, ``tokens`` of
    student-written code, ``comparable_tokens`` -- those in stretches long enough
    to be fingerprinted, the denominator of scores --, ``units``, ``notes``);
    ``known_sources`` (``name``, ``path``, ``tokens``, ``comparable_tokens``); ``skipped`` (files that could not be compared, with
    the reason); ``pairs`` and ``known`` (each with ``a`` and ``b``, the student
    ids as in the grade directory -- for ``known``, ``b`` is the source's name
    --, ``score`` in [0, 1], ``a_fraction``, ``b_fraction``,
    ``matched_tokens``, ``a_tokens`` and ``b_tokens`` (the tokens each side has that
    can match: for pairs, those not common in the class), ``meaningful``, ``note`` and ``spans``: matched regions,
    each with ``a`` and ``b`` as ``{unit, cell, lines: [first, last]}``, cell and
    lines 1-based in the notebook); ``clusters`` (``members``, ``max_score``,
    ``known``: sources that members match meaningfully); ``seconds``.
    """
    known_of: dict[str, set[str]] = {}
    for match in run.result.known:
        if match.meaningful:
            known_of.setdefault(match.a, set()).add(match.b)
    cluster_entries = []
    for members in run.groups:
        inside = set(members)
        scores = [match.score for match in run.result.pairs
                  if match.meaningful and match.a in inside and match.b in inside]
        cluster_entries.append({'members': members, 'max_score': max(scores, default=0.0),
                                'known': sorted(set().union(*(known_of.get(m, set()) for m in members)))})
    settings = run.settings
    return {
        'schema': SCHEMA,
        'assignment': run.assignment,
        'threshold': settings.threshold,
        'min_tokens': settings.min_tokens,
        'parameters': {'k': settings.k, 'window': settings.window, 'common_share': settings.common_share,
                       'common_cutoff': run.result.common_cutoff,
                       'common_fingerprints': run.result.common_fingerprints,
                       'candidate_pairs': run.result.candidate_pairs},
        'submissions': [{'student': d.name, 'submission': d.path, 'tokens': d.tokens,
                         'comparable_tokens': d.comparable, 'units': d.code.units, 'notes': d.code.notes} for d in run.students],
        'known_sources': [{'name': d.name, 'path': d.path, 'tokens': d.tokens,
                           'comparable_tokens': d.comparable} for d in run.known],
        'skipped': run.skipped,
        'pairs': [match_json(m, run.document(m.a), run.document(m.b)) for m in run.result.pairs],
        'known': [match_json(m, run.document(m.a), run.document(m.b, known=True))
                  for m in run.result.known],
        'clusters': cluster_entries,
        'seconds': run.seconds,
    }


# --------------------------------------------------------------------------- command line


def _fraction(text: str) -> float:
    import argparse
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError('must be a number between 0 and 1, got {0}'.format(text)) from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError('must be between 0 and 1, got {0}'.format(text))
    return value


def _count(text: str) -> int:
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('must be a whole number, got {0}'.format(text)) from None
    if value < 1:
        raise argparse.ArgumentTypeError('must be at least 1, got {0}'.format(text))
    return value


def add_arguments(parser, *, in_grade: bool) -> None:
    """The similarity options, on the ``similarity`` command or (prefixed) on ``grade``."""
    threshold = '--similarity-threshold' if in_grade else '--threshold'
    if in_grade:
        parser.add_argument('--similarity', action='store_true',
                            help='also write the similarity report (similarity.html, similarity.json)')
    parser.add_argument('--known', action='append', type=Path, default=[], metavar='FOLDER',
                        help='folder (or file) of known sources to match against: notebooks or .py '
                             'files (repeat for several; the model solution is always one{0})'.format(
                                 '; implies --similarity' if in_grade else ''))
    parser.add_argument(threshold, dest='threshold', type=_fraction, default=Settings.threshold,
                        help='list pairs whose score is at least this (0-1, default %(default)s)')
    parser.add_argument('--min-tokens', type=_count, default=Settings.min_tokens,
                        help='shared normalised tokens a match needs to mean anything '
                             '(default %(default)s)')


def _run_and_report(spec, args, workers: int) -> SimilarityRun:
    settings = Settings(threshold=args.threshold, min_tokens=args.min_tokens)
    run = run_similarity(spec, args.paths, args.out, known_folders=args.known, settings=settings,
                         workers=workers)
    matches = run.result.pairs + run.result.known
    meaningful = [match for match in run.result.pairs if match.meaningful]
    known = [match for match in run.result.known if match.meaningful]
    short = sum(1 for match in matches if not match.meaningful)
    print('similarity: {0} submissions, {1} clusters, {2} pairs and {3} known-source matches at or '
          'above {4:.0%}{5} ({6} s); see {7}'.format(
              len(run.students), len(run.groups), len(meaningful), len(known), args.threshold,
              ', {0} more too short to mean anything'.format(short) if short else '',
              run.seconds['total'], Path(args.out) / 'similarity.html'))
    return run


def main_similarity(args) -> int:
    """``mlp-autograde similarity``; returns the exit status."""
    from autograder.course.spec import load_spec
    spec = load_spec(args.assignment, args.course_root)
    missing = [str(path) for path in args.paths if not Path(path).exists()]
    if missing:
        print('mlp-autograde: no such file or folder: {0}'.format(', '.join(missing)), file=sys.stderr)
        return 2
    return _report_status(spec, args, args.workers or min(2, os.cpu_count() or 1))


def _report_status(spec, args, workers: int) -> int:
    """Makes and writes the report; the exit status (0, 2 for bad input, 3 when it cannot be written)."""
    try:
        _run_and_report(spec, args, workers)
    except SimilarityError as error:
        print('mlp-autograde: {0}'.format(error), file=sys.stderr)
        return 2
    except OSError as error:
        print('mlp-autograde: cannot write the similarity report to {0}: {1}'.format(args.out, error),
              file=sys.stderr)
        return 3
    return 0


def after_grading(spec, args, reports, summary) -> int:
    """``grade --similarity``: the report, then summary.html again with a link to it.

    Returns:
        The exit status (0, or 2/3 when the report could not be made).
    """
    from autograder.outputs import feedback_html
    from autograder.outputs import report as report_files
    status = _report_status(spec, args, min(2, os.cpu_count() or 1))
    if status:
        return status
    page = feedback_html.summary_page(spec, reports, summary,
                                      links=(('similarity.html', 'Shared code: the similarity report'),))
    report_files.write_atomic(Path(args.out) / 'summary.html', page)
    return 0
