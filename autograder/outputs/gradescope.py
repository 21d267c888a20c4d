"""Gradescope: building the autograder zip, and grading inside Gradescope's container.

TRUSTED. Two halves that share one layout:

`build_autograder_zip` (instructor's machine, `mlp-autograde gradescope`) writes a
zip with, at its root:

    setup.sh              run once by Gradescope (as root) when it builds the image:
                          bubblewrap, and a venv of requirements.txt (--require-hashes)
    run_autograder        run for every submission: the harness below, nothing else;
                          a results.json saying so whenever the harness cannot run
    requirements.txt      LOCK_FILE: everything the container imports besides the stdlib,
                          hash-pinned for every supported Python (scripts/lock_gradescope.py)
    mlp_gradescope.json   which assignment this autograder grades
    harness/autograder/   this grader (its modules and this assignment's spec only)
    harness/mlp/          the reference framework (the oracle)
    harness/run_gradescope.py   entry point: puts harness/ first on sys.path
    course/source/<assignment>/<notebook>     points and grade ids (source of truth)
    course/release/<assignment>/              the release copy: student notebook + student mlp
    data/mnist/mnist-{train,valid}.npz        for training checks (if found when building)

`run_in_container` (Gradescope, via run_autograder) grades the notebook found in
`/autograder/submission` with the same pipeline as `mlp-autograde grade`, and writes
`/autograder/results/results.json` in Gradescope's format: `score`, `execution_time`,
`output`, and one test per check with `name`, `score`, `max_score`, `status`
("passed"/"failed"), `output` and `visibility` ("visible" for public checks,
"after_published" for hidden cases, whose output is redacted anyway). Written
answers are not in the autograder's score: grade them as a separate Gradescope
question. The root `/autograder` can be moved with $MLP_GRADESCOPE_ROOT (tests do).

Student code runs only in the sandbox's child process, never with write access to
the harness or the results (issue 10 class 6): under bubblewrap it sees read-only
mounts only; at "unshare" and "rlimits" (Gradescope's containers often forbid the
namespaces bwrap needs) it runs as the unprivileged uid 65534. Before any student code
runs, every grading module is imported and every file the grader relies on hashed and
checked to be out of that uid's reach; grading is refused, with a results.json saying
why, where it is not, and discarded if any of them changed. The isolation level reached
is printed and stored in `extra_data`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import pkgutil
import shutil
import stat
import sys
import time
import traceback
import zipfile
from pathlib import Path

from autograder.atomic import atomic_output
from autograder.results import Report
from autograder.course.spec import AssignmentSpec, SPEC_DIR, load_spec

ROOT_ENV = 'MLP_GRADESCOPE_ROOT'
DEFAULT_ROOT = '/autograder'
MANIFEST = 'mlp_gradescope.json'
HIDDEN_VISIBILITY = 'after_published'
PUBLIC_VISIBILITY = 'visible'
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_NOISE = ('__pycache__', '.ipynb_checkpoints')

#: What the container imports besides the standard library and the bundled harness: numpy,
#: nbformat and IPython (whose tokeniser the extractor uses, so that a notebook extracts as it
#: does on the instructor's machine) while grading, tqdm when setup.sh fetches MNIST. Their
#: whole dependency trees are in LOCK_FILE, hash-pinned.
CONTAINER_REQUIREMENTS = ('numpy', 'nbformat', 'ipython', 'tqdm')
#: The Pythons of the images the zip installs on (Ubuntu 22.04 has 3.10, 24.04 has 3.12).
SUPPORTED_PYTHONS = ('3.10', '3.11', '3.12', '3.13')
#: The lock written by scripts/lock_gradescope.py; it becomes the zip's requirements.txt.
LOCK_FILE = Path(__file__).resolve().with_name('gradescope-requirements.txt')

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image. It installs
# the hash-pinned lock (requirements.txt) into a venv: binary wheels only, nothing else.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
root="${MLP_GRADESCOPE_ROOT:-/autograder}"
source_dir="$root/source"
wanted="python3 python3-venv bubblewrap util-linux"  # the venv brings its own pip
missing=""
for package in $wanted; do
    dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ]; then
    apt-get update
    apt-get install -y --no-install-recommends $missing
fi
python="${MLP_GRADESCOPE_BASE_PYTHON:-/usr/bin/python3}"
version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case " SUPPORTED " in
    *" $version "*) ;;
    *) echo "setup.sh: Python $version is not supported by this autograder (supported: SUPPORTED);" \\
            "choose another base image or rebuild the lock (scripts/lock_gradescope.py)" >&2
       exit 1 ;;
esac
"$python" -m venv "$root/venv"
"$root/venv/bin/python" -m pip install --quiet --no-cache-dir --disable-pip-version-check \\
    --require-hashes --only-binary=:all: -r "$source_dir/requirements.txt"
if [ ! -f "$source_dir/data/mnist/mnist-train.npz" ]; then
    # MNIST was not bundled: fetch it now, while the image build has network access.
    "$root/venv/bin/python" -I -B "$source_dir/harness/run_gradescope.py" fetch-data "$source_dir/data/mnist"
fi
# Student code may run as an unprivileged user that sees the file system (where bubblewrap
# cannot work): it must be able to read the interpreter and numpy, and write none of this.
chmod -R a+rX,go-w "$source_dir" "$root/venv"
""".replace('SUPPORTED', ' '.join(SUPPORTED_PYTHONS))

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission (as root, in /autograder). Student code is
# only ever run by the grader's sandboxed child process, never by this script. Whatever
# happens, results/results.json says what it was: a grade, or why there is none.
set -u
root="${MLP_GRADESCOPE_ROOT:-/autograder}"
python="${MLP_GRADESCOPE_PYTHON:-$root/venv/bin/python}"
results="$root/results/results.json"
fail() {  # the harness could not run or died: a results.json saying so, and a non-zero exit
    mkdir -p "$root/results"
    message="$(printf '%s' "$1" | tr -d '\000-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
    printf '{"score": 0.0, "output": "%s", "stdout_visibility": "hidden", "tests": [], "extra_data": {"status": "error"}}\n' \
        "$message" > "$results"
    echo "run_autograder: $1" >&2
    exit 1
}
rm -f "$results"
if [ ! -x "$python" ]; then
    fail "The autograder could not start: there is no Python at $python (did setup.sh run?). Your submission was not graded; please tell your instructor."
fi
"$python" -I -B "$root/source/harness/run_gradescope.py" run --root "$root"
status=$?
if [ ! -s "$results" ]; then
    fail "The autograder itself failed (exit status $status) before writing a result. Your submission was not graded; please tell your instructor."
fi
exit "$status"
"""

RUN_GRADESCOPE_PY = '''"""Entry point of the Gradescope autograder: the bundled harness comes first on sys.path."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from autograder.outputs.gradescope import main_in_container  # noqa: E402

sys.exit(main_in_container(sys.argv[1:]))
'''


class GradescopeError(Exception):
    """The autograder zip cannot be built (e.g. the assignment was never released)."""


# --------------------------------------------------------------------------
# results.json
# --------------------------------------------------------------------------


def results_json(report: Report, spec: AssignmentSpec) -> dict:
    """A report in Gradescope's results.json format (written answers left out).

    Args:
        report: The submission's report (in memory, so each check knows whether it is public).
        spec: The assignment's grading spec.

    Returns:
        The results dict; its `score` is the sum of the tests' scores.
    """
    automatic = [item for item in spec.items if 'manual' not in item.checks]
    manual = [item for item in spec.items if 'manual' in item.checks]
    tests = []
    if report.status == 'rejected':
        for number, item in enumerate(automatic, start=1):
            tests.append({'name': '{0}: not graded'.format(item.grade_id), 'number': str(number),
                          'score': 0.0, 'max_score': float(item.points), 'status': 'failed',
                          'output': report.error, 'visibility': PUBLIC_VISIBILITY,
                          'tags': [item.grade_id]})
    else:
        item_number = {item.grade_id: index for index, item in enumerate(automatic, start=1)}
        check_number: dict[str, int] = {}
        for test in report.tests:
            if test.kind == 'manual':
                continue
            check_number[test.grade_id] = check_number.get(test.grade_id, 0) + 1
            tests.append({
                'name': '{0}: {1}'.format(test.grade_id, test.name),
                'number': '{0}.{1}'.format(item_number.get(test.grade_id, 0), check_number[test.grade_id]),
                'score': round(float(test.score), 4), 'max_score': round(float(test.max_score), 4),
                'status': 'passed' if test.status == 'passed' else 'failed',
                'output': test.output if test.status != 'passed' else (test.output or 'Passed.'),
                'visibility': PUBLIC_VISIBILITY if test.public else HIDDEN_VISIBILITY,
                'tags': [test.grade_id, test.kind],
            })
    lines = []
    if report.status == 'rejected':
        lines.append('Your notebook could not be graded: {0}'.format(report.error))
    else:
        lines.append('Automatic checks: {0:g} / {1:g} points. Hidden test cases are shown after grades '
                     'are published, and then only summarised.'.format(
                         round(sum(t['score'] for t in tests), 2), sum(i.points for i in automatic)))
    if manual:
        lines.append('Written answers ({0}) are graded by your instructor, outside this score.'.format(
            ', '.join(item.grade_id for item in manual)))
    lines += report.notes
    return {
        'score': round(sum(t['score'] for t in tests), 4),
        'execution_time': round(report.execution_time, 3),
        'output': '\n'.join(lines),
        'stdout_visibility': 'hidden',
        'tests': tests,
        'extra_data': {'assignment': report.assignment, 'sha256': report.sha256,
                       'isolation': report.isolation, 'status': report.status},
    }


def error_results(message: str) -> dict:
    """results.json for a run in which the harness itself could not grade."""
    return {'score': 0.0, 'output': message, 'stdout_visibility': 'hidden', 'tests': [],
            'extra_data': {'status': 'error'}}


# --------------------------------------------------------------------------
# Inside the container
# --------------------------------------------------------------------------


def find_submitted_notebook(submission_dir: Path, notebook_name: str) -> Path | str:
    """The notebook to grade in Gradescope's submission folder.

    Returns:
        Its path: the file named like the assignment's notebook (anywhere below),
        else the only `.ipynb`; or a sentence for the student when there is none
        or it is ambiguous.
    """
    notebooks = sorted(p for p in submission_dir.rglob('*.ipynb')
                       if not any(part in _NOISE or part.startswith('.') for part in
                                  p.relative_to(submission_dir).parts))
    named = [p for p in notebooks if p.name == notebook_name]
    if len(named) >= 1:
        return min(named, key=lambda p: len(p.parts))
    if len(notebooks) == 1:
        return notebooks[0]
    if not notebooks:
        return 'No notebook was uploaded; upload {0}.'.format(notebook_name)
    return 'Several notebooks were uploaded ({0}); upload only {1}.'.format(
        ', '.join(p.name for p in notebooks[:5]), notebook_name)


def _write_results(root: Path, results: dict) -> Path:
    folder = root / 'results'
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / 'results.json'
    with atomic_output(path, 'w', permissions=0o644) as stream:
        stream.write(json.dumps(results, indent=2) + '\n')
    return path


def _reference_problem(harness: Path) -> str:
    """'' when the reference mlp and this grader are the bundled copies, else what is wrong."""
    import mlp
    here = Path(__file__).resolve().parent
    for name, location in (('autograder', here), ('mlp', Path(mlp.__file__).resolve().parent)):
        if harness.resolve() not in location.parents:
            return 'the grader imported {0} from {1}, not from the bundled harness {2}'.format(
                name, location, harness)
    return ''


# Everything the grader needs is imported and hashed BEFORE any student code runs: student code
# that could write a harness file (or a module the grader would import later) would otherwise
# decide the score. These are the modules grading uses; each package is imported whole.
_GRADING_MODULES = ('autograder.atomic', 'autograder.results', 'autograder.grade', 'autograder.course.spec',
                    'autograder.outputs.gradescope')
_GRADING_PACKAGES = ('autograder.sandbox', 'autograder.submission', 'autograder.checks', 'mlp')
_CHILD_ONLY = ('autograder.sandbox.child_runner',)  # run as a script in the sandbox, never imported


def import_grading_modules() -> list[str]:
    """Imports every module the grader uses in the container (see _GRADING_MODULES/_PACKAGES).

    Returns:
        Their names. An ImportError here is a broken harness, before any student code ran.
    """
    names = list(_GRADING_MODULES)
    for package_name in _GRADING_PACKAGES:
        package = importlib.import_module(package_name)
        names.append(package_name)
        names += [info.name for info in pkgutil.walk_packages(package.__path__, package_name + '.')]
    names = [name for name in names if name not in _CHILD_ONLY]
    for name in names:
        importlib.import_module(name)
    return names


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, 'rb') as stream:
            for block in iter(lambda: stream.read(1 << 20), b''):
                digest.update(block)
    except OSError as error:
        return 'unreadable: {0}'.format(error.strerror)
    return digest.hexdigest()


def grader_files(root: Path) -> list[Path]:
    """The files the grader relies on: the unpacked zip (harness, course, data) and every loaded module."""
    files = {path for path in (root / 'source').rglob('*')
             if path.is_file() and '__pycache__' not in path.parts}
    for module in list(sys.modules.values()):
        location = getattr(module, '__file__', None)
        if location and os.path.isfile(location):
            files.add(Path(location))
    return sorted(files)


def fingerprint(files: list[Path]) -> dict[str, str]:
    """{path: sha256} of `files`."""
    return {str(path): _sha256(path) for path in files}


def _student_uid(level: str) -> int:
    """The uid student code runs as at `level` (the sandbox says; else assume the grader's own)."""
    from autograder.sandbox import isolation
    ask = getattr(isolation, 'student_uid', None)
    if ask is not None:
        return ask(level)
    if level == 'bwrap' and os.geteuid() == 0 and os.path.exists('/usr/bin/setpriv'):
        return isolation.SANDBOX_UID
    return os.geteuid()


def _writable_by(path: Path, uid: int, gid: int) -> bool:
    """Whether a process of uid/gid (no supplementary groups) may change `path` (file or folder)."""
    if uid == 0:
        return True
    try:
        info = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISLNK(info.st_mode):
        return False  # a link is changed only through its folder (checked too); its target is checked itself
    if stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX and info.st_uid != uid:
        return False  # sticky (like /tmp): others' entries cannot be replaced
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IWUSR)
    if info.st_gid == gid:
        return bool(info.st_mode & stat.S_IWGRP)
    return bool(info.st_mode & stat.S_IWOTH)


def containment_problem(level: str, root: Path, files: list[Path]) -> str:
    """'' when student code at `level` can change none of `files` nor the results folder, else why.

    Under bubblewrap the child sees only read-only copies and mounts. At "unshare" and
    "rlimits" it sees the whole file system, so it must run as another, unprivileged user
    (the sandbox drops to uid 65534 where the grader is root) who cannot write any of them.
    """
    if level == 'bwrap':
        return ''
    uid = _student_uid(level)
    if uid == os.geteuid():
        how = ('the sandbox cannot run it as an unprivileged user here (no setpriv, or that user cannot '
               'read the interpreter {0} or numpy)'.format(os.path.realpath(sys.executable)) if uid == 0 else
               'run the autograder as root, so that student code can run as an unprivileged user')
        return ('student code would run at isolation level "{0}" as the grader\'s own user (uid {1}), which '
                'could rewrite the autograder and its results; install bubblewrap (setup.sh does), or {2}'.format(
                    level, uid, how))
    watched = set(files) | {root, root / 'results', root / 'source'}
    watched |= {path.resolve() for path in watched}
    for path in list(watched):
        watched.update(path.parents)
    writable = sorted(str(path) for path in watched if _writable_by(path, uid, uid))
    if writable:
        return ('student code would run as uid {0} at isolation level "{1}" and could change {2}{3}'.format(
            uid, level, ', '.join(writable[:3]), ' and {0} more'.format(len(writable) - 3) if len(writable) > 3 else ''))
    return ''


def _failure(root: Path, sentence: str) -> tuple[dict, int]:
    results = error_results(sentence)
    _write_results(root, results)
    print(results['output'])
    return results, 1


def run_in_container(root: Path) -> tuple[dict, int]:
    """Grades `<root>/submission` and writes `<root>/results/results.json`.

    Before any student code runs, every module grading needs is imported, and the
    files the grader relies on are hashed and checked to be out of the student's reach
    (`containment_problem`); grading is refused, with a results.json saying why, where
    they are not. After grading the hashes are checked again.

    Args:
        root: Gradescope's /autograder folder (or a stand-in).

    Returns:
        (the results dict, exit status: 0 graded or rejected, 1 the harness failed or refused).
    """
    source = root / 'source'
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding='utf-8'))
        course_root = source / 'course'
        os.environ['MLP_COURSE_ROOT'] = str(course_root)
        bundled_data = source / 'data' / 'mnist'
        if 'MLP_DATA_DIR' not in os.environ and (bundled_data / 'mnist-train.npz').is_file():
            os.environ['MLP_DATA_DIR'] = str(bundled_data)
        problem = _reference_problem(source / 'harness')
        if problem:
            raise RuntimeError(problem)
        import_grading_modules()
        spec = load_spec(manifest['assignment'], course_root)
        from autograder.grade import grade_submission, rejected_report
        from autograder.sandbox.isolation import detect_isolation
        level = detect_isolation()
        (root / 'results').mkdir(parents=True, exist_ok=True)
        files = grader_files(root)
        before = fingerprint(files)
        refusal = containment_problem(level, root, files)
    except Exception as error:  # noqa: BLE001 - the instructor must see any set-up failure
        return _failure(root, 'The autograder is misconfigured ({0}: {1}); your submission was not graded. Please tell '
                              'your instructor.'.format(
            type(error).__name__, error))
    if refusal:
        return _failure(root, 'The autograder refused to run your code, because {0}. Nothing was graded; '
                              'please tell your instructor.'.format(refusal))
    found = find_submitted_notebook(root / 'submission', spec.notebook)
    if isinstance(found, str):
        report = rejected_report(spec, 'submission', spec.notebook, '', found)
    else:
        report = grade_submission(found, spec, student='submission', root=root / 'submission',
                                  display_path=str(found.relative_to(root / 'submission')))
    changed = [path for path, digest in fingerprint(files).items() if before[path] != digest]
    if changed:
        return _failure(root, 'The autograder\'s own files changed while the submission ran ({0}); the '
                              'result cannot be trusted and nothing was graded. Please tell your '
                              'instructor.'.format(', '.join(changed[:3])))
    results = results_json(report, spec)
    _write_results(root, results)
    print('{0}: {1} {2:g} / {3:g} (isolation: {4}; grader: {5})'.format(
        spec.name, report.status, results['score'], sum(t['max_score'] for t in results['tests']),
        report.isolation, Path(__file__).resolve().parent))
    for test in results['tests']:
        print('  [{0}] {1}'.format(test['status'], test['name']))
    return results, 0


def main_in_container(argv: list[str]) -> int:
    """`run_gradescope.py run --root DIR` or `run_gradescope.py fetch-data DIR`.

    Any failure of the harness itself still leaves a results.json saying so (exit 1).
    """
    parser = argparse.ArgumentParser(prog='run_gradescope.py')
    commands = parser.add_subparsers(dest='command', required=True)
    run = commands.add_parser('run')
    run.add_argument('--root', type=Path, default=Path(os.environ.get(ROOT_ENV, DEFAULT_ROOT)))
    fetch = commands.add_parser('fetch-data')
    fetch.add_argument('folder', type=Path)
    args = parser.parse_args(argv)
    for name in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ.setdefault(name, '1')
    if args.command == 'fetch-data':
        from autograder.course.data import main_data
        return main_data('fetch', str(args.folder))
    try:
        _, status = run_in_container(args.root)
    except Exception as error:  # noqa: BLE001 - Gradescope must show a failure, not a blank
        traceback.print_exc()
        _, status = _failure(args.root, 'The autograder itself failed ({0}); your submission was not graded. '
                                        'Please tell your instructor.'.format(type(error).__name__))
    return status


# --------------------------------------------------------------------------
# Building the zip
# --------------------------------------------------------------------------


def _python_files(package: Path):
    for path in sorted(package.rglob('*.py')):
        if not any(part in _NOISE for part in path.relative_to(package).parts):
            yield path


def _requirements() -> str:
    """The hash-pinned lock (numpy, nbformat and everything they import), for every supported Python."""
    try:
        return LOCK_FILE.read_text(encoding='utf-8')
    except OSError as error:
        raise GradescopeError('the dependency lock {0} is missing ({1}); run scripts/lock_gradescope.py'.format(
            LOCK_FILE, error.strerror)) from error


def _find_mnist(data_dir: Path | None) -> Path | None:
    from mlp.data_providers import resolve_data_dir
    folder = Path(data_dir) if data_dir else resolve_data_dir()
    ok = all((folder / 'mnist-{0}.npz'.format(split)).is_file() for split in ('train', 'valid'))
    return folder if ok else None


def zip_members(spec: AssignmentSpec, data_dir: Path | None = None,
                include_data: bool = True) -> list[tuple[str, Path | str, int]]:
    """Everything that goes into the zip: (name in the zip, file or text, permission bits).

    Raises:
        GradescopeError: The assignment has not been released (no student mlp copy).
    """
    import mlp

    import autograder
    release_dir = spec.course_root / 'release' / spec.name
    if not (release_dir / 'mlp' / '__init__.py').is_file():
        raise GradescopeError('{0} has no student copy of mlp; run `mlp-autograde release --assignment {1}` '
                              'first'.format(release_dir, spec.name))
    members: list[tuple[str, Path | str, int]] = [
        ('setup.sh', SETUP_SH, 0o755), ('run_autograder', RUN_AUTOGRADER, 0o755),
        ('requirements.txt', _requirements(), 0o644),
        (MANIFEST, json.dumps({'assignment': spec.name, 'notebook': spec.notebook}, indent=2) + '\n', 0o644),
        ('harness/run_gradescope.py', RUN_GRADESCOPE_PY, 0o644),
    ]
    grader = Path(autograder.__file__).resolve().parent
    members += [('harness/autograder/' + p.relative_to(grader).as_posix(), p, 0o644) for p in _python_files(grader)]
    members.append(('harness/autograder/course/specs/{0}.json'.format(spec.name), SPEC_DIR / '{0}.json'.format(spec.name),
                    0o644))
    reference = Path(mlp.__file__).resolve().parent
    members += [('harness/mlp/' + p.relative_to(reference).as_posix(), p, 0o644) for p in _python_files(reference)]
    members.append(('course/source/{0}/{1}'.format(spec.name, spec.notebook), spec.source_notebook, 0o644))
    for path in sorted(release_dir.rglob('*')):
        relative = path.relative_to(release_dir)
        if path.is_file() and not any(part in _NOISE for part in relative.parts) and path.suffix != '.pyc':
            members.append(('course/release/{0}/{1}'.format(spec.name, relative.as_posix()), path, 0o644))
    mnist = _find_mnist(data_dir) if include_data else None
    if mnist is not None:
        members += [('data/mnist/mnist-{0}.npz'.format(split), mnist / 'mnist-{0}.npz'.format(split), 0o644)
                    for split in ('train', 'valid')]
    return members


def build_autograder_zip(spec: AssignmentSpec, out: Path, data_dir: Path | None = None,
                         include_data: bool = True) -> Path:
    """Writes the Gradescope autograder zip (byte-identical for identical inputs), atomically.

    Args:
        spec: The assignment's grading spec (its course must have been released).
        out: The zip file to write.
        data_dir: Folder with mnist-{train,valid}.npz to bundle (default: the course's look-up).
        include_data: False to leave MNIST out (setup.sh then fetches it).

    Returns:
        `out`.

    Raises:
        GradescopeError: Nothing to bundle (see `zip_members`).
    """
    out = Path(out)
    members = zip_members(spec, data_dir, include_data)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out, 'wb', permissions=0o644) as stream:
        with zipfile.ZipFile(stream, 'w', compression=zipfile.ZIP_DEFLATED) as archive:
            for name, content, mode in members:
                info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                info.external_attr = (0o100000 | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                data = content.encode('utf-8') if isinstance(content, str) else Path(content).read_bytes()
                archive.writestr(info, data)
    return out


def unpack_like_gradescope(zip_path: Path, root: Path) -> Path:
    """Lays a zip out as Gradescope does: `<root>/source` (contents), `<root>/run_autograder`,
    empty `<root>/submission` and `<root>/results`. Used by tests and for trying an autograder locally."""
    root = Path(root)
    source = root / 'source'
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            target = source / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            os.chmod(target, (info.external_attr >> 16) & 0o777 or 0o644)
    shutil.copy2(source / 'run_autograder', root / 'run_autograder')
    (root / 'submission').mkdir(parents=True, exist_ok=True)
    (root / 'results').mkdir(parents=True, exist_ok=True)
    return root


def main_gradescope(assignment: str, out: Path, course_root: Path | None = None,
                    include_data: bool = True) -> int:
    """`mlp-autograde gradescope`: builds the zip and says what is in it."""
    spec = load_spec(assignment, course_root)
    started = time.monotonic()
    try:
        path = build_autograder_zip(spec, out, include_data=include_data)
    except (GradescopeError, OSError) as error:
        print('mlp-autograde: {0}'.format(error), file=sys.stderr)
        return 3
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    data = any(name.startswith('data/') for name in names)
    print('Wrote {0} ({1} files, {2:.1f} MB) in {3:.1f} s: upload it as the Gradescope autograder of {4}.'.format(
        path, len(names), path.stat().st_size / 1e6, time.monotonic() - started, spec.name))
    if not data:
        print('MNIST was not bundled; setup.sh will fetch it when Gradescope builds the image.')
    return 0
