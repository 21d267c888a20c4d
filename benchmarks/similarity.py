"""Similarity report for a generated class of 500: time, against reading the class alone.

Generates lab 5 submissions (``tests/similarity_class.py``: independent students
who each pick their own way of writing every method, plus copiers who rename,
reorder, commute and move another student's code), then measures in the same run:

* the baseline: reading and extracting every notebook with the grader's own
  loader and extractor, serially (what any comparison must do at least once),
  before and after the run (their mean is the baseline);
* ``run_similarity`` end to end (discovery, reading, release subtraction,
  normalising, winnowing, the inverted index, pairs, clusters, JSON and HTML),
  in one process and then with the given number of worker processes.

Prints the machine and its load (at the start and the end), seconds and ratios to the baseline, the pairs the index looked at against
all n(n-1)/2 pairs, and whether every planted copy was found. No assertion on
time: it is a measurement.

Usage: ``.venv/bin/python benchmarks/similarity.py [--students 500] [--workers 2]``
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'tests'))
sys.modules.setdefault('rfc3987_syntax', None)  # as the CLI does: jsonschema's slow optional import

import similarity_class as generated  # noqa: E402
from machine import cpu_model, load_average  # noqa: E402
from autograder.course.spec import load_spec  # noqa: E402
from autograder.similarity.command import graded_units, run_similarity  # noqa: E402
from autograder.submission.extract import extract_code  # noqa: E402
from autograder.submission.load import LoadedNotebook, load_submission  # noqa: E402


def read_class(folder: Path, wanted: list[str]) -> float:
    started = time.perf_counter()
    for path in sorted(folder.glob('*.ipynb')):
        loaded = load_submission(path)
        if isinstance(loaded, LoadedNotebook):
            extract_code(loaded.notebook, wanted)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--students', type=int, default=500)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--seed', type=int, default=2026)
    args = parser.parse_args(argv)
    print('machine: {0}, {1} cores, {2}; Python {3}; load average {4}'.format(
        platform.machine(), os.cpu_count(), cpu_model(), platform.python_version(), load_average()))
    spec = load_spec(generated.LAB5)
    copiers = max(1, args.students // 20)
    independent = args.students - copiers
    copies = {'copy{0:03d}'.format(n): 's{0:03d}'.format((7 * n) % independent) for n in range(copiers)}
    with tempfile.TemporaryDirectory(prefix='similarity-benchmark-') as work:
        folder, out = Path(work) / 'class', Path(work) / 'out'
        started = time.perf_counter()
        generated.write_class(folder, generated.LAB5, independent, copies, seed=args.seed,
                              moved=frozenset(list(copies)[::2]))
        print('generated {0} submissions ({1} copiers) in {2:.1f} s'.format(
            args.students, copiers, time.perf_counter() - started))
        before = read_class(folder, graded_units(spec))
        serial_started = time.perf_counter()
        run_similarity(spec, [folder], out, workers=1)
        serial = time.perf_counter() - serial_started
        started = time.perf_counter()
        run = run_similarity(spec, [folder], out, workers=args.workers)
        total = time.perf_counter() - started
        after = read_class(folder, graded_units(spec))
    # Measured before and after the runs, so a change of the machine's load during them shows.
    baseline = (before + after) / 2
    found = {frozenset((match.a, match.b)) for match in run.result.pairs if match.meaningful}
    missed = [name for name, original in copies.items() if frozenset((name, original)) not in found]
    planted = {frozenset((name, original)) for name, original in copies.items()}
    copied_from = {}
    for name, original in copies.items():
        copied_from.setdefault(original, []).append(name)
    planted |= {frozenset((a, b)) for group in copied_from.values() for a in group for b in group if a != b}
    others = sorted((match.score for match in run.result.pairs
                     if match.meaningful and frozenset((match.a, match.b)) not in planted), reverse=True)
    all_pairs = args.students * (args.students - 1) // 2
    print('baseline, reading and extracting every notebook serially: {0:.2f} s (before the run {1:.2f} s, '
          'after {2:.2f} s)'.format(baseline, before, after))
    print('similarity end to end, 1 process: {0:.2f} s = {1:.2f} x baseline'.format(serial, serial / baseline))
    print('similarity end to end, {0} workers: {1:.2f} s = {2:.2f} x baseline'.format(
        args.workers, total, total / baseline))
    print('  reading and fingerprinting: {0:.2f} s ({1:.2f} x baseline); comparing: {2:.2f} s '
          '({3:.3f} x baseline)'.format(run.seconds['reading'], run.seconds['reading'] / baseline,
                                       run.seconds['comparing'], run.seconds['comparing'] / baseline))
    print('  pairs looked at through the index: {0} of {1} ({2:.2%}); common fingerprints: {3} '
          '(shared by more than {4} submissions)'.format(
              run.result.candidate_pairs, all_pairs, run.result.candidate_pairs / all_pairs,
              run.result.common_fingerprints, run.result.common_cutoff))
    print('  clusters: {0}; meaningful pairs: {1}; planted copies found: {2} of {3}{4}'.format(
        len(run.groups), len(found), copiers - len(missed), copiers,
        ' (missed: {0})'.format(', '.join(missed)) if missed else ''))
    planted_scores = [match.score for match in run.result.pairs if frozenset((match.a, match.b)) in planted]
    if planted_scores:
        print('  scores of planted copies: lowest {0:.2f}, median {1:.2f}'.format(
            min(planted_scores), sorted(planted_scores)[len(planted_scores) // 2]))
    print('  meaningful pairs that are not planted copies (independent students who chose alike): '
          '{0}{1}'.format(len(others), ', scores {0}'.format(', '.join('{0:.2f}'.format(x) for x in others[:10]))
                          if others else ''))
    print('load average at the end: {0}'.format(load_average()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
