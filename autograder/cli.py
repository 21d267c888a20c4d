"""The `mlp-autograde` command line.

TRUSTED. Parses arguments and calls the step that does the work; exit
status of `grade`: 0 means every submission got a report (whatever its
score), non-zero that the harness itself could not do its job. `check` (the
student self-check, for a notebook cell or a CI job): 0 every public check
passed, 1 some public check failed or the notebook could not be graded,
2 bad arguments, 3 the grader itself cannot run (e.g. no release).
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
EXIT_CHECKS_FAILED = 1
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
                       help='CSV mapping student ids to LMS ids/names (or a Canvas/Moodle export), '
                            'joined into grades.csv')
    grade.add_argument('--canvas', type=Path, default=None, metavar='CANVAS_EXPORT.csv',
                       help='Canvas gradebook export; writes OUT/canvas_import.csv for Grades > Import')
    grade.add_argument('--canvas-column', default=None, metavar='COLUMN',
                       help='the Canvas assignment column to fill ("Name (id)", its name or its id; '
                            'default: the one naming the assignment)')
    grade.add_argument('--moodle', type=Path, default=None, metavar='MOODLE_EXPORT.csv',
                       help='Moodle grade export or participants list; writes OUT/moodle_import.csv')
    grade.add_argument('--moodle-column', default=None, metavar='COLUMN',
                       help='the Moodle grade column to fill (default: the one naming the assignment, '
                            'else the assignment name)')
    grade.add_argument('--junit', action='store_true',
                       help='also write OUT/junit/<student>.xml (JUnit XML, one test case per check)')
    grade.add_argument('--due', default=None, metavar='DATETIME',
                       help='deadline, e.g. "2026-11-20 17:00 UTC" (default: the nbgrader gradebook\'s duedate)')
    grade.add_argument('--late-penalty', default=None, metavar='none|zero|P%%/day',
                       help='late policy (default: the nbgrader configuration\'s, else none)')
    from autograder.similarity.command import add_arguments as add_similarity_arguments
    add_similarity_arguments(grade, in_grade=True)
    grade.add_argument('paths', nargs='+', type=Path,
                       help='.ipynb files, folders of them, or an nbgrader submitted/ tree')

    similarity = commands.add_parser('similarity', help='find submissions that share their graded code '
                                                        '(for the instructor; never shown to students)')
    similarity.add_argument('--assignment', required=True)
    similarity.add_argument('--out', required=True, type=Path,
                            help='folder for similarity.html and similarity.json (e.g. the grade directory)')
    similarity.add_argument('--workers', type=_positive_int, default=None,
                            help='processes reading submissions (default: up to 2)')
    add_similarity_arguments(similarity, in_grade=False)
    similarity.add_argument('paths', nargs='+', type=Path,
                            help='.ipynb files, folders of them, or an nbgrader submitted/ tree')

    check = commands.add_parser('check', help='student self-check: run the public checks on a notebook')
    check.add_argument('notebook', type=Path)
    check.add_argument('--assignment', default=None, help='assignment name (default: guessed from the notebook name)')
    check.add_argument('--junit', type=Path, default=None, metavar='FILE',
                       help='also write the public checks as JUnit XML (for CI)')

    demo = commands.add_parser('demo', help='release, make example submissions and grade them')
    demo.add_argument('--out', type=Path, default=Path('demo-out'))
    demo.add_argument('--assignment', default='03_multiple_layer_models',
                      help='the assignment whose example class to grade (default: lab 3)')

    gradescope = commands.add_parser('gradescope', help='build the Gradescope autograder zip of an assignment')
    gradescope.add_argument('--assignment', required=True)
    gradescope.add_argument('--out', type=Path, default=Path('autograder.zip'))
    gradescope.add_argument('--no-data', action='store_true',
                            help='do not bundle MNIST (setup.sh then fetches it on Gradescope)')

    audit = commands.add_parser('audit', help='mutation and fairness audit of an assignment\'s grading')
    audit.add_argument('--assignment', required=True)
    audit.add_argument('--out', type=Path, default=None, help='folder for audit.json and audit.html (default: audit-<assignment>)')
    audit.add_argument('--workers', type=_positive_int, default=None,
                       help='parallel worker processes on this machine (default: number of cores)')
    audit.add_argument('--scheduler', default=None, help='address of a Dask distributed scheduler')
    audit.add_argument('--target', action='append', default=None, metavar='CLASS.METHOD',
                       help='audit only this target (repeatable; default: every graded target)')
    audit.add_argument('--no-reference', action='store_true',
                       help="mutate only the source notebook's solution, not the reference package's regions")

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
    from autograder.checks.oracle import missing_references
    missing = missing_references(spec)  # every target kind's reference (layers, errors, ...)
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
    from autograder.outputs.gradebook import GradebookError, course_of, preflight
    from autograder.outputs.late import LatePolicyError, choose_policy
    from autograder.outputs.roster import CANVAS, MOODLE, RosterError, load_roster
    roster = gradebook = None
    exports = {}
    try:  # a bad roster, export, gradebook or late policy is reported before, not after, grading the class
        if args.roster is not None:
            roster = load_roster(args.roster)
        for kind, path in ((CANVAS, args.canvas), (MOODLE, args.moodle)):
            if path is not None:
                exports[kind] = load_roster(path)
                if exports[kind].kind != kind:
                    raise RosterError('{0} is not a {1} export (its header starts {2})'.format(
                        path, kind.capitalize(), ', '.join(exports[kind].header[:5])))
        if args.gradebook is not None:
            gradebook = preflight(spec, args.paths, args.gradebook)
        policy = choose_policy(args.due, args.late_penalty, course_of(args.paths), gradebook, spec.name)
    except (RosterError, GradebookError, LatePolicyError) as error:
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
    status = _write_class_outputs(args, spec, reports, roster, exports, policy)
    if status is not None:
        return status
    if gradebook is not None:
        from autograder.outputs.gradebook import print_result, write_gradebook
        try:
            print_result(write_gradebook(spec, reports, gradebook), spec.name)
        except GradebookError as error:
            print('mlp-autograde: {0}'.format(error), file=sys.stderr)
            return EXIT_HARNESS
    print(class_summary(spec, reports, summary, args.out))
    if args.similarity or args.known:  # --known alone asks for the report too
        from autograder.similarity.command import after_grading
        status = after_grading(spec, args, reports, summary)
        if status:
            return status
    internal = [r for r in reports if batch.is_internal_failure(r)]
    if internal:
        from autograder.outputs.report import terminal_text
        print('mlp-autograde: the grader itself failed (harness errors, graded again on the next run) '
              'on {0} submission(s): {1}'.format(len(internal), terminal_text(', '.join(
                  '{0} ({1})'.format(r.student, r.error or 'in {0} check(s)'.format(
                      sum(t.harness for t in r.tests)))[:300] for r in internal))), file=sys.stderr)
        return EXIT_HARNESS
    return EXIT_OK


def _write_class_outputs(args, spec, reports, roster, exports, policy) -> int | None:
    """grades.csv (roster, late policy), the LMS import files and JUnit XML; an exit status on failure."""
    from autograder.outputs.late import LatePolicyError
    from autograder.outputs.roster import CANVAS, MOODLE, RosterError, write_roster_grades
    try:
        unknown = write_roster_grades(args.out, spec, reports, roster, policy)
        if unknown:
            print('mlp-autograde: not in the roster (kept in grades.csv, flagged): {0}'.format(
                ', '.join(unknown)), file=sys.stderr)
        if policy.due is not None:
            from autograder.outputs.late import FROM_FILE_TIME, apply_policy
            print('Late policy: due {0} ({1})'.format(policy.due.strftime('%Y-%m-%d %H:%M:%S UTC'),
                                                      policy.source))
            outcomes = [apply_policy(policy, report, spec.name) for report in reports]
            by_file_time = [o for o in outcomes if o.seconds_late > 0 and o.time.source == FROM_FILE_TIME]
            if by_file_time:
                print('mlp-autograde: {0} submission(s) are after the due date by their file time only; no '
                      'penalty applied (nbgrader timestamp.txt files decide penalties)'.format(
                          len(by_file_time)), file=sys.stderr)
        if CANVAS in exports:
            from autograder.outputs.canvas import print_export, write_canvas
            print_export(write_canvas(args.out, spec, reports, exports[CANVAS], args.canvas_column, policy),
                         'Canvas', 'import it in Canvas: Grades > Import')
        if MOODLE in exports:
            from autograder.outputs.canvas import print_export
            from autograder.outputs.moodle import write_moodle
            print_export(write_moodle(args.out, spec, reports, exports[MOODLE], args.moodle_column, policy),
                         'Moodle', 'import it in Moodle: Grades > Import > CSV file, mapping the e-mail, '
                         'ID number or username column to that user field')
    except (RosterError, LatePolicyError) as error:
        print('mlp-autograde: {0}'.format(error), file=sys.stderr)
        return EXIT_USAGE
    if args.junit:
        from autograder.outputs.junit import write_class_junit
        print('JUnit XML: {0}/<student>.xml'.format(write_class_junit(args.out, reports)))
    return None


def class_summary(spec, reports, summary: dict, out: Path) -> str:
    """The closing lines of `grade`: class mean, what awaits manual grading, where summary.html is."""
    from autograder.outputs.roster import pending_points
    mean = summary['scores']['mean']
    lines = ['Class mean: {0} (automatic points of {1} graded submission(s))'.format(
        'n/a' if mean is None else '{0:g} / {1:g}'.format(round(mean, 2), spec.max_score), summary['graded'])]
    waiting = [r for r in reports if pending_points(r)]
    lines.append('Pending manual grading: {0} submission(s), {1:g} points'.format(
        len(waiting), round(sum(pending_points(r) for r in waiting), 2)))
    page = out / 'summary.html'
    lines.append('Class summary: {0}'.format(page if page.is_file() else out / 'summary.json'))
    return '\n'.join(lines)


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
    from autograder.results import HarnessError
    try:
        report = grade_submission(args.notebook, spec, student=args.notebook.stem, public_only=True)
    except HarnessError as error:  # e.g. no sandbox can start here: the machine's problem, not the notebook's
        print('mlp-autograde: the grader could not check the notebook on this machine: {0}'.format(error),
              file=sys.stderr)
        return EXIT_HARNESS
    print(format_self_check(spec, report))
    if args.junit is not None:
        from autograder.outputs.junit import write_junit
        try:
            write_junit(args.junit, report)
        except OSError as error:
            print('mlp-autograde: cannot write {0}: {1}'.format(args.junit, error), file=sys.stderr)
            return EXIT_HARNESS
    return self_check_status(report)


def self_check_status(report) -> int:
    """`check`'s exit status: 0 when every public check passed, else 1 (a rejected file included)."""
    if report.status != 'graded':
        return EXIT_CHECKS_FAILED
    failed = [t for t in report.tests if t.status not in ('passed', 'pending')]
    return EXIT_CHECKS_FAILED if failed else EXIT_OK


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
        if args.command == 'similarity':
            from autograder.similarity.command import main_similarity
            return main_similarity(args)
        if args.command == 'gradescope':
            from autograder.outputs.gradescope import main_gradescope
            return main_gradescope(args.assignment, args.out, args.course_root, not args.no_data)
        if args.command == 'audit':
            from autograder.audit.cli import run_audit_command
            return run_audit_command(args)
        if args.command == 'demo':
            from autograder.demo import main_demo
            return main_demo(args.out, args.assignment)
    except SpecError as error:
        print('mlp-autograde: {0}'.format(error), file=sys.stderr)
        return EXIT_USAGE
    return EXIT_USAGE


if __name__ == '__main__':
    sys.exit(main())
