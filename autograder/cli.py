"""The `mlp-autograde` command line.

TRUSTED. Parses arguments and calls the step that does the work; exit
status 0 means every submission got a report (whatever its score), non-zero
that the harness itself could not do its job.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# jsonschema (imported by nbformat) imports rfc3987_syntax, when installed, only to check the
# "iri" string format, which no notebook schema uses; building that parser costs about 2 s of
# start-up in the grader and in every worker. Declined, jsonschema skips that format.
sys.modules.setdefault('rfc3987_syntax', None)

from autograder.sandbox.limits import Limits  # noqa: E402
from autograder.course.spec import SpecError, default_course_root, list_assignments, load_spec  # noqa: E402

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_HARNESS = 3


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError('must be positive, got {0}'.format(text))
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError('must be at least 1, got {0}'.format(text))
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='mlp-autograde',
        description='Release, grade and self-check the mlp course assignments.')
    parser.add_argument('--course-root', type=Path, default=None,
                        help='course folder holding source/ and release/ (default: $MLP_COURSE_ROOT or this checkout)')
    commands = parser.add_subparsers(dest='command', required=True)

    release = commands.add_parser('release', help='generate release/<assignment> from source/ with nbgrader')
    release.add_argument('--assignment', default=None, help='one assignment (default: all)')

    grade = commands.add_parser('grade', help='grade submitted notebooks into a grade directory')
    grade.add_argument('--assignment', required=True)
    grade.add_argument('--out', required=True, type=Path, help='grade directory to write')
    where = grade.add_mutually_exclusive_group()
    where.add_argument('--workers', type=_positive_int, default=None,
                       help='parallel worker processes on this machine (default: number of cores)')
    where.add_argument('--scheduler', default=None, help='address of a Dask distributed scheduler')
    grade.add_argument('--timeout', type=_positive_float, default=None,
                       help='wall-clock seconds allowed for one submission\'s sandboxed run')
    grade.add_argument('--no-progress', action='store_true', help='no progress bar')
    grade.add_argument('--gradebook', nargs='?', const='', default=None, metavar='PATH',
                       help='also write the scores into an nbgrader gradebook (default PATH: '
                            '<course>/gradebook.db); give it after the paths, or as --gradebook=PATH')
    grade.add_argument('--roster', type=Path, default=None,
                       help='CSV mapping student ids to LMS ids/names, joined into grades.csv')
    grade.add_argument('paths', nargs='+', type=Path,
                       help='.ipynb files, folders of them, or an nbgrader submitted/ tree')

    check = commands.add_parser('check', help='student self-check: run the public checks on a notebook')
    check.add_argument('notebook', type=Path)
    check.add_argument('--assignment', default=None, help='assignment name (default: guessed from the notebook name)')

    demo = commands.add_parser('demo', help='release, make example submissions and grade them')
    demo.add_argument('--out', type=Path, default=Path('demo-out'))

    gradescope = commands.add_parser('gradescope', help='build the Gradescope autograder zip of an assignment')
    gradescope.add_argument('--assignment', required=True)
    gradescope.add_argument('--out', type=Path, default=Path('autograder.zip'))
    gradescope.add_argument('--no-data', action='store_true',
                            help='do not bundle MNIST (setup.sh then fetches it on Gradescope)')

    data = commands.add_parser('data', help='MNIST: fetch, verify or locate the data set')
    data.add_argument('action', choices=['fetch', 'verify', 'path'])
    data.add_argument('--data-dir', default=None, help='folder to use instead of $MLP_DATA_DIR / the cache')
    return parser


def _limits(timeout: float | None) -> Limits:
    return Limits(wall_seconds=timeout) if timeout else Limits()


def guess_assignment(notebook: Path) -> str | None:
    """The assignment whose spec names this notebook file (or whose folder holds it)."""
    for name in list_assignments():
        spec = load_spec(name)
        if notebook.name == spec.notebook or notebook.resolve().parent.name == name:
            return name
    return None


def student_copy_problem(spec) -> str:
    """'' when `import mlp` gives the reference framework; else why the grader must refuse.

    `python -m autograder` puts the current folder first on sys.path, so inside a
    release folder `import mlp` would load the student copy (the console script
    `mlp-autograde` does not); grading against it would judge students by their own code.
    """
    import mlp
    import mlp.layers
    where = Path(mlp.__file__).resolve().parent
    cwd = Path.cwd().resolve()
    from_cwd = where.parent == cwd and bool(sys.path) and sys.path[0] in ('', str(cwd), os.getcwd())
    missing = [name for name in spec.classes if not hasattr(mlp.layers, name)]
    if not from_cwd and not missing:
        return ''
    return ('refusing to grade: `import mlp` loaded {0}, {1}, not the grader\'s reference mlp. Run the '
            '`mlp-autograde` command (in a notebook cell: `!mlp-autograde check NOTEBOOK`) rather than '
            '`python -m autograder`, or run from another folder.'.format(
                where, 'a copy in the current folder' if from_cwd else
                'which lacks {0}'.format(', '.join(missing))))


def _release_missing(spec) -> bool:
    """Says so (and returns True) when the student copy of mlp the sandbox needs is missing."""
    if (spec.student_mlp_dir / 'mlp').is_dir():
        return False
    print('mlp-autograde: {0} has no student copy of mlp ({1}); run `mlp-autograde release '
          '--assignment {0}` first'.format(spec.name, spec.student_mlp_dir / 'mlp'), file=sys.stderr)
    return True


def _not_ready_to_grade(spec) -> int | None:
    """The exit status when this process cannot grade `spec` (saying why), else None.

    Refuses when the grader imported a student copy of mlp instead of the
    reference, and when the student copy the sandbox needs was never released.
    """
    problem = student_copy_problem(spec)
    if problem:
        print('mlp-autograde: {0}'.format(problem), file=sys.stderr)
        return EXIT_USAGE
    if _release_missing(spec):
        return EXIT_HARNESS
    return None


def run_grade(args) -> int:
    from autograder import batch
    from autograder.outputs.report import class_table
    spec = load_spec(args.assignment, args.course_root)
    not_ready = _not_ready_to_grade(spec)
    if not_ready is not None:
        return not_ready
    missing = [str(path) for path in args.paths if not path.exists()]
    if missing:
        print('mlp-autograde: no such file or folder: {0}'.format(', '.join(missing)), file=sys.stderr)
        return EXIT_USAGE
    submissions = batch.find_submissions(args.paths, spec.name)
    if not submissions:
        print('mlp-autograde: no submissions found in {0}'.format(
            ', '.join(map(str, args.paths))), file=sys.stderr)
        return EXIT_USAGE
    from autograder.outputs.gradebook import GradebookError, preflight
    from autograder.outputs.roster import RosterError, load_roster
    roster = gradebook = None
    try:  # a bad roster or gradebook is reported before, not after, grading the class
        if args.roster is not None:
            roster = load_roster(args.roster)
        if args.gradebook is not None:
            gradebook = preflight(spec, args.paths, args.gradebook)
    except (RosterError, GradebookError) as error:
        print('mlp-autograde: {0}'.format(error), file=sys.stderr)
        return EXIT_USAGE
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        probe = args.out / '.write-test'
        probe.write_text('')
        probe.unlink()
    except OSError as error:
        print('mlp-autograde: cannot write to {0}: {1}'.format(args.out, error), file=sys.stderr)
        return EXIT_HARNESS
    workers = args.workers or os.cpu_count() or 1
    try:
        reports, summary = batch.grade_batch(
            spec, submissions, args.out, workers=min(workers, len(submissions)),
            scheduler=args.scheduler, limits=_limits(args.timeout), progress=not args.no_progress)
    except batch.BatchError as error:
        print('mlp-autograde: {0}'.format(error), file=sys.stderr)
        return EXIT_HARNESS
    except KeyboardInterrupt:
        print('mlp-autograde: interrupted; the reports written so far are complete, and running '
              'the same command again grades the rest', file=sys.stderr)
        return 130
    print(class_table(spec, reports))
    print('{0} submissions ({1} graded now), reports in {2}'.format(
        summary['submissions'], summary['graded_this_run'], args.out))
    if roster is not None:
        from autograder.outputs.roster import write_roster_grades
        unknown = write_roster_grades(args.out, spec, reports, roster)
        if unknown:
            print('mlp-autograde: not in the roster (kept in grades.csv, flagged): {0}'.format(
                ', '.join(unknown)), file=sys.stderr)
    if gradebook is not None:
        from autograder.outputs.gradebook import print_result, write_gradebook
        try:
            print_result(write_gradebook(spec, reports, gradebook), spec.name)
        except GradebookError as error:
            print('mlp-autograde: {0}'.format(error), file=sys.stderr)
            return EXIT_HARNESS
    internal = [r for r in reports if 'internal error' in r.error]
    if internal:
        print('mlp-autograde: the grader itself failed on {0} submission(s): {1}'.format(
            len(internal), ', '.join(r.student for r in internal)), file=sys.stderr)
        return EXIT_HARNESS
    return EXIT_OK


def run_check(args) -> int:
    from autograder.grade import grade_submission
    from autograder.selfcheck import format_self_check
    if not args.notebook.is_file():
        print('mlp-autograde: no such notebook: {0}'.format(args.notebook), file=sys.stderr)
        return EXIT_USAGE
    name = args.assignment or guess_assignment(args.notebook)
    if name is None:
        print('mlp-autograde: cannot tell which assignment {0} is; pass --assignment ({1})'.format(
            args.notebook, ', '.join(list_assignments())), file=sys.stderr)
        return EXIT_USAGE
    spec = load_spec(name, args.course_root)
    not_ready = _not_ready_to_grade(spec)
    if not_ready is not None:
        return not_ready
    report = grade_submission(args.notebook, spec, student=args.notebook.stem, public_only=True)
    print(format_self_check(spec, report))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    # Parallelism comes from grading several submissions at once (--workers);
    # BLAS threads would only oversubscribe the cores. Set before numpy loads.
    for name in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ.setdefault(name, '1')
    args = build_parser().parse_args(argv)
    if args.course_root is not None:
        os.environ['MLP_COURSE_ROOT'] = str(args.course_root.resolve())
    else:
        args.course_root = default_course_root()
    try:
        if args.command == 'data':
            from autograder.course.data import main_data
            return main_data(args.action, args.data_dir)
        if args.command == 'release':
            from autograder.course.release import main_release
            return main_release(args.assignment)
        if args.command == 'grade':
            return run_grade(args)
        if args.command == 'check':
            return run_check(args)
        if args.command == 'gradescope':
            from autograder.outputs.gradescope import main_gradescope
            return main_gradescope(args.assignment, args.out, args.course_root, not args.no_data)
        if args.command == 'demo':
            from autograder.demo import main_demo
            return main_demo(args.out)
    except SpecError as error:
        print('mlp-autograde: {0}'.format(error), file=sys.stderr)
        return EXIT_USAGE
    return EXIT_USAGE


if __name__ == '__main__':
    sys.exit(main())
