"""Release step: build the student version of an assignment from its source.

Runs TRUSTED, on the instructor's machine or in CI. It reads only instructor-authored files (the
source notebooks, ``reference/mlp`` and ``nbgrader_config.py``), never a submission.

:func:`release_assignment` turns ``source/<name>/`` into ``release/<name>/`` in three steps:

1. **Notebooks.** nbgrader's own ``GenerateAssignment`` converter writes the student notebooks:
   solution regions replaced by stubs, hidden-test regions removed, outputs cleared, read-only and
   test cells locked, checksums added. It is configured by ``<course_root>/nbgrader_config.py``
   alone (the user's and the system's Jupyter configuration are not read, so a release does not
   depend on who runs it), with nbgrader's database switched off: releasing needs no
   ``gradebook.db``.
2. **Student framework.** ``release/<name>/mlp/`` receives every ``.py`` file of
   ``reference/mlp/`` with this assignment's exercise regions removed (see below), so that, for
   example, ``from mlp.layers import TanhLayer`` fails in the copy released with lab 3.
3. **Clean-up.** Anything that is not part of a release (``__pycache__``, ``*.pyc``,
   ``.ipynb_checkpoints``, gradebook files, nbgrader's ``timestamp.txt``) is deleted from what
   the release wrote.

A release never deletes a file it did not write. Before nbgrader replaces ``release/<name>/``
the old folder is moved aside whole; afterwards every old file that the new release did not
write again (a notebook a student saved there, their checkpoints, a data file) is moved back to
where it was, and named on stderr. Only Python's byte-code caches (``__pycache__``, ``*.pyc``,
``*.pyo``) and ``.DS_Store`` are dropped. If the release fails, the old folder is put back as it was.

The output depends only on those inputs: releasing twice gives byte-identical files. (Source
notebooks must carry cell ids, nbformat 4.5, since nbformat would otherwise invent random ones;
Jupyter always writes them.)

Exercise regions in ``reference/mlp``
-------------------------------------
Code that an assignment asks students to write sits in the reference framework between two
marker comments, each alone on its line (indentation allowed)::

    # BEGIN EXERCISE 03_multiple_layer_models
    class TanhLayer(Layer):
        ...
    # END EXERCISE 03_multiple_layer_models

The name after the keyword is the assignment's folder name under ``source/``. In the student copy
released with that assignment the markers, everything between them and the blank lines left
doubled by the cut are removed, and so are the regions of every assignment that comes later in
the course (assignment folders sort in course order: they start with the lab number), so that an
early release never gives away a later assignment's answers. Regions of earlier assignments stay,
without their marker lines.
Regions cannot nest and every BEGIN needs an END with the same name; otherwise the release fails
with :class:`ExerciseMarkerError`.

The CLI (``mlp-autograde release [--assignment NAME]``) calls :func:`main_release`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from autograder.course.spec import default_course_root

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The course root of this repository (holds ``source/``, ``release/``, ``reference/``)."""

CONFIG_FILE_NAME = 'nbgrader_config.py'
FRAMEWORK_PACKAGE = 'mlp'
REFERENCE_DIR_NAME = 'reference'

NOISE_PATTERNS = (
    '__pycache__', '*.pyc', '*.pyo', '.ipynb_checkpoints', 'gradebook.db', 'gradebook.db-*',
    'timestamp.txt', '.DS_Store',
)
"""File and folder names (globs) that are never part of a release."""

DISPOSABLE_PATTERNS = ('__pycache__', '*.pyc', '*.pyo', '.DS_Store')
"""Names (globs) of files that may be dropped from an old release folder: caches, never anyone's work."""

FILE_MODE = 0o644  # Mode of every written framework file (nbgrader gives notebooks the same).

_MARKER = re.compile(r'^[ \t]*# (BEGIN|END) EXERCISE (\S+)[ \t]*$')


class ReleaseError(RuntimeError):
    """The release could not be built; the message says why."""


class UnknownAssignmentError(ReleaseError, ValueError):
    """The requested assignment has no folder under the source directory."""


class ExerciseMarkerError(ReleaseError):
    """The exercise markers of a framework file are unbalanced or nested."""


@dataclass(frozen=True)
class ExerciseRegion:
    """One exercise region of a framework source file.

    Attributes:
        assignment: The assignment named by the markers.
        begin: Index (0-based) of the BEGIN marker line.
        end: Index (0-based) of the END marker line.
        text: The lines strictly between the markers, line endings included.
    """

    assignment: str
    begin: int
    end: int
    text: str


def find_exercise_regions(text: str, filename: str = '<string>') -> list[ExerciseRegion]:
    """Finds the exercise regions of a framework source file.

    Args:
        text: The file's content.
        filename: Name used in error messages.

    Returns:
        The regions, in file order.

    Raises:
        ExerciseMarkerError: If markers are nested, unmatched or name different assignments.
    """
    lines = text.splitlines(keepends=True)
    regions = []
    open_name, open_index = None, None
    for index, line in enumerate(lines):
        match = _MARKER.match(line.rstrip('\r\n'))
        if match is None:
            continue
        kind, name = match.groups()
        if kind == 'BEGIN':
            if open_name is not None:
                raise ExerciseMarkerError(
                    '{0}:{1}: BEGIN EXERCISE {2} inside the region of {3} opened on line {4}; '
                    'exercise regions cannot nest.'.format(
                        filename, index + 1, name, open_name, open_index + 1))
            open_name, open_index = name, index
        else:
            if open_name != name:
                raise ExerciseMarkerError(
                    '{0}:{1}: END EXERCISE {2} without a matching BEGIN EXERCISE {2}.'.format(
                        filename, index + 1, name))
            regions.append(ExerciseRegion(name, open_index, index,
                                          ''.join(lines[open_index + 1:index])))
            open_name, open_index = None, None
    if open_name is not None:
        raise ExerciseMarkerError('{0}:{1}: BEGIN EXERCISE {2} is never closed.'.format(
            filename, open_index + 1, open_name))
    return regions


def strip_exercise_regions(text: str, assignment: str, filename: str = '<string>') -> str:
    """Returns the student version of a framework source file for one assignment.

    The regions of `assignment` and of later assignments (names sorting after it) are removed
    with their markers; a run of blank lines left directly after a removed region is dropped when
    the text before it already ends with a blank line (so the cut leaves the usual spacing).
    Earlier assignments' regions are kept without their marker lines. Line endings are preserved.

    Args:
        text: The reference file's content.
        assignment: The assignment being released.
        filename: Name used in error messages.

    Returns:
        The student file's content.

    Raises:
        ExerciseMarkerError: As :func:`find_exercise_regions`.
    """
    lines = text.splitlines(keepends=True)
    regions = find_exercise_regions(text, filename)
    removed, markers = set(), set()
    for region in regions:
        markers.update((region.begin, region.end))
        if region.assignment >= assignment:
            removed.update(range(region.begin, region.end + 1))
    output = []
    skipping_blank_lines = False
    for index, line in enumerate(lines):
        if index in removed:
            skipping_blank_lines = not output or not output[-1].strip()
            continue
        if index in markers:
            continue
        if skipping_blank_lines and not line.strip():
            continue
        skipping_blank_lines = False
        output.append(line)
    return ''.join(output)


def write_student_framework(assignment: str, reference_dir: Path, target_dir: Path) -> list[Path]:
    """Writes the student copy of the framework for one assignment.

    Args:
        assignment: The assignment being released.
        reference_dir: The reference package, e.g. ``reference/mlp``.
        target_dir: Where the copy goes, e.g. ``release/<assignment>/mlp``; replaced if present.

    Returns:
        The written files, sorted.

    Raises:
        ReleaseError: If `reference_dir` holds no Python files.
        ExerciseMarkerError: If a file's markers are malformed.
    """
    sources = sorted(
        path for path in reference_dir.rglob('*.py')
        if not any(_is_noise(part) or part.startswith('.')
                   for part in path.relative_to(reference_dir).parts))
    if not sources:
        raise ReleaseError('No Python files found in the reference framework {0}.'.format(
            reference_dir))
    if target_dir.exists():
        shutil.rmtree(target_dir)
    written = []
    for source in sources:
        relative = source.relative_to(reference_dir)
        with open(source, encoding='utf-8', newline='') as handle:
            text = handle.read()
        student_text = strip_exercise_regions(text, assignment, str(relative))
        target = target_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, 'w', encoding='utf-8', newline='') as handle:
            handle.write(student_text)
        os.chmod(target, FILE_MODE)
        written.append(target)
    return written


def _is_noise(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in NOISE_PATTERNS)


def remove_noise(directory: Path) -> list[Path]:
    """Deletes caches, checkpoints, gradebook files and timestamps below a directory.

    Args:
        directory: The folder to clean.

    Returns:
        The deleted paths.
    """
    removed = []
    for root, dirnames, filenames in os.walk(directory, topdown=True):
        for name in sorted(dirnames):
            if _is_noise(name):
                path = Path(root) / name
                shutil.rmtree(path)
                removed.append(path)
                dirnames.remove(name)
        for name in sorted(filenames):
            if _is_noise(name):
                path = Path(root) / name
                path.unlink()
                removed.append(path)
    return removed


def load_course_config(course_root: Path):
    """Loads the course's nbgrader configuration, and nothing else.

    The course root always wins over a ``CourseDirectory.root`` set in the file, and nbgrader's
    database is switched off (the equivalent of ``nbgrader generate_assignment --no-db``).

    Args:
        course_root: Folder holding ``nbgrader_config.py``.

    Returns:
        A ``traitlets.config.Config``.

    Raises:
        ReleaseError: If the configuration file is missing.
    """
    from traitlets.config.loader import PyFileConfigLoader

    if not (course_root / CONFIG_FILE_NAME).is_file():
        raise ReleaseError('No {0} in the course root {1}.'.format(CONFIG_FILE_NAME, course_root))
    config = PyFileConfigLoader(CONFIG_FILE_NAME, path=str(course_root)).load_config()
    config.CourseDirectory.root = str(course_root)
    config.GenerateAssignment.no_database = True
    config.SaveCells.enabled = False
    return config


def _course_directory(course_root: Path):
    from nbgrader.coursedir import CourseDirectory

    return CourseDirectory(config=load_course_config(course_root))


def _assignment_dir(coursedir, step_directory: str, assignment: str) -> Path:
    return Path(os.path.normpath(coursedir.format_path(step_directory, '.', assignment)))


def list_assignments(*, course_root: Path = REPO_ROOT) -> list[str]:
    """Lists the assignments of a course: the folders of its source directory.

    Args:
        course_root: The course root (this repository by default).

    Returns:
        Sorted folder names, hidden folders excluded.
    """
    course_root = Path(course_root).resolve()
    coursedir = _course_directory(course_root)
    source_root = Path(os.path.normpath(
        os.path.join(coursedir.root, coursedir.source_directory)))
    if not source_root.is_dir():
        return []
    return sorted(path.name for path in source_root.iterdir()
                  if path.is_dir() and not path.name.startswith('.') and not _is_noise(path.name))


def _check_cell_ids(source_dir: Path) -> None:
    """Refuses notebooks without cell ids, which would make the release non-deterministic."""
    for notebook in sorted(source_dir.glob('*.ipynb')):
        try:
            content = json.loads(notebook.read_text(encoding='utf-8'))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ReleaseError('Cannot read the source notebook {0}: {1}'.format(notebook, error))
        missing = [index for index, cell in enumerate(content.get('cells', []))
                   if not cell.get('id')]
        if missing:
            raise ReleaseError(
                '{0}: cells {1} have no id (nbformat {2}.{3}). Open and save the notebook in '
                'Jupyter, or upgrade it with nbformat, so that cell ids are stored; otherwise '
                'each release would invent new random ids.'.format(
                    notebook, missing[:10], content.get('nbformat'), content.get('nbformat_minor')))


class _LogRecorder(logging.Handler):
    """Keeps nbgrader's log messages so that a failure can report them."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append((record.levelno, record.getMessage()))


def _generate_notebooks(assignment: str, coursedir, config) -> None:
    """Runs nbgrader's GenerateAssignment converter for one assignment."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.converters.base import NbGraderException

    logger = logging.getLogger(__name__ + '.nbgrader')
    logger.propagate = False
    logger.setLevel(logging.INFO)
    recorder = _LogRecorder()
    logger.addHandler(recorder)
    coursedir.assignment_id = assignment
    try:
        converter = GenerateAssignment(coursedir=coursedir, config=config, log=logger)
        converter.force = True  # Replace release/<assignment>/ as a whole.
        converter.start()
    except NbGraderException as error:
        errors = [message for level, message in recorder.messages if level >= logging.ERROR]
        raise ReleaseError('nbgrader could not generate {0}: {1}\n{2}'.format(
            assignment, error, '\n'.join(errors))) from error
    finally:
        logger.removeHandler(recorder)


def release_assignment(name: str, *, course_root: Path = REPO_ROOT) -> Path:
    """Builds ``release/<name>/`` from ``source/<name>/`` and the reference framework.

    Not thread-safe: nbgrader changes the working directory while it converts.

    Args:
        name: The assignment, a folder name under the source directory.
        course_root: The course root (this repository by default); it must hold
            ``nbgrader_config.py``, the source directory and ``reference/mlp``.

    Returns:
        The released assignment folder.

    Raises:
        UnknownAssignmentError: If there is no such assignment.
        ExerciseMarkerError: If the framework's exercise markers are malformed.
        ReleaseError: If nbgrader or the framework copy fails.
    """
    course_root = Path(course_root).resolve()
    known = list_assignments(course_root=course_root)
    if name not in known:
        raise UnknownAssignmentError('Unknown assignment {0!r}; the course has: {1}.'.format(
            name, ', '.join(known) or 'none'))
    config = load_course_config(course_root)
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    source_dir = _assignment_dir(coursedir, coursedir.source_directory, name)
    release_dir = _assignment_dir(coursedir, coursedir.release_directory, name)
    reference_dir = course_root / REFERENCE_DIR_NAME / FRAMEWORK_PACKAGE
    if not reference_dir.is_dir():
        raise ReleaseError('No reference framework at {0}.'.format(reference_dir))
    if not list(source_dir.glob('*.ipynb')):
        raise ReleaseError('No notebooks in {0}.'.format(source_dir))
    _check_cell_ids(source_dir)

    with _keeping_foreign_files(release_dir) as kept:
        _generate_notebooks(name, coursedir, config)
        write_student_framework(name, reference_dir, release_dir / FRAMEWORK_PACKAGE)
        remove_noise(release_dir)
    if kept:
        print('mlp-autograde release: kept {0} file(s) in {1} that the release did not write: {2}'.format(
            len(kept), release_dir, ', '.join(str(path) for path in kept)), file=sys.stderr)
    return release_dir


def _disposable(relative: Path) -> bool:
    return any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in DISPOSABLE_PATTERNS)


@contextlib.contextmanager
def _keeping_foreign_files(release_dir: Path):
    """Moves an old release folder aside, and afterwards back every file the new release did not write.

    Yields a list that, after the block, holds the kept files (relative paths). If the
    block fails, whatever it wrote is removed and the old folder is put back unchanged.
    """
    kept: list[Path] = []
    if not release_dir.exists() and not release_dir.is_symlink():
        yield kept
        return
    release_dir.parent.mkdir(parents=True, exist_ok=True)
    stash = Path(tempfile.mkdtemp(prefix='.mlp-autograde-kept-{0}-'.format(release_dir.name),
                                  dir=release_dir.parent))
    old = stash / release_dir.name
    os.replace(release_dir, old)
    try:
        yield kept
    except BaseException:
        if release_dir.exists():
            shutil.rmtree(release_dir)
        os.replace(old, release_dir)
        stash.rmdir()
        raise
    for root, dirnames, filenames in os.walk(old):
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if (Path(root) / d).is_symlink()]:
            source = Path(root) / name
            relative = source.relative_to(old)
            target = release_dir / relative
            if _disposable(relative) or target.exists() or target.is_symlink():
                continue  # a cache, or a file the new release wrote
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            kept.append(relative)
    shutil.rmtree(stash)


def main_release(assignment: str | None, *, course_root: Path | None = None) -> int:
    """Command-line entry: releases one assignment, or all of them when `assignment` is None.

    Prints one line per released assignment on stdout and errors on stderr.

    Args:
        assignment: An assignment name, or None for every assignment.
        course_root: The course root; by default :func:`default_course_root`.

    Returns:
        0 when every release was written, 2 for an unknown assignment, 1 for any other failure.
    """
    course_root = default_course_root() if course_root is None else Path(course_root)
    try:
        names = ([assignment] if assignment is not None
                 else list_assignments(course_root=course_root))
    except ReleaseError as error:
        print('mlp-autograde release: {0}'.format(error), file=sys.stderr)
        return 1
    if not names:
        print('mlp-autograde release: no assignments found under source/.', file=sys.stderr)
        return 1
    status = 0
    for name in names:
        try:
            release_dir = release_assignment(name, course_root=course_root)
        except UnknownAssignmentError as error:
            print('mlp-autograde release: {0}'.format(error), file=sys.stderr)
            return 2
        except ReleaseError as error:
            print('mlp-autograde release: {0}: {1}'.format(name, error), file=sys.stderr)
            status = 1
            continue
        notebooks = sorted(path.name for path in release_dir.glob('*.ipynb'))
        framework_files = list((release_dir / FRAMEWORK_PACKAGE).rglob('*.py'))
        print('Released {0} -> {1} ({2}; {3} framework files in {4}/)'.format(
            name, _display_path(release_dir), ', '.join(notebooks), len(framework_files),
            FRAMEWORK_PACKAGE))
    return status


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
