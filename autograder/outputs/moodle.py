"""Moodle: a grade import CSV (Grades > Import > CSV file), made from a roster exported by Moodle.

TRUSTED. Reads a Moodle export of the course (Grades > Export > Plain text
file, or the participants list) and writes `moodle_import.csv`. Moodle's CSV
grade import has the layout of its export: a header row, one row per
student, user columns and grade columns. On import the instructor maps one
user column to a Moodle user field ("Map from" the column, "Map to"
`useremail`, `useridnumber` or `username`) and the grade column to a grade
item. Moodle compares e-mail addresses case-sensitively, so the addresses are
written exactly as the export has them.

Columns written: the export's user columns (Username, ID number, Email
address, First name, Last name, when present) and one grade column: the
export's grade column for this assignment (e.g. "Assignment: Lab 3 (Real)"),
the one named by --moodle-column, or the assignment's name (mapped to a new
grade item on import). A student with nothing graded gets a blank cell,
which Moodle skips; a rejected file gets 0. No feedback column is written:
Moodle would overwrite the activity's feedback with it. The score written is
the score after any late penalty; points pending manual grading are not in it.
"""

from __future__ import annotations

from pathlib import Path

from autograder.course.spec import AssignmentSpec
from autograder.outputs.canvas import LmsExport, assignment_keys, export_csv
from autograder.outputs.roster import (MOODLE, MOODLE_ID_COLUMNS, MOODLE_NAME_COLUMNS, Roster, RosterError,
                                       match_key)
from autograder.results import Report

MOODLE_IMPORT_FILE = 'moodle_import.csv'
_NOT_GRADES = {match_key(name) for name in ('Institution', 'Department', 'Last downloaded from this course',
                                            'Groups', 'Roles', 'Last access to course', 'Status')}


def grade_columns(roster: Roster) -> list[str]:
    """The export's columns that are not user fields (its grade columns)."""
    users = {match_key(name) for name in tuple(MOODLE_ID_COLUMNS) + MOODLE_NAME_COLUMNS}
    return [name for name in roster.header if match_key(name) not in users | _NOT_GRADES and name]


def choose_column(roster: Roster, spec: AssignmentSpec, wanted: str | None) -> str:
    """The grade column: --moodle-column if given, else the export's one column naming the assignment,
    else the assignment's name (a new grade item)."""
    if wanted:
        return wanted.strip()
    keys = assignment_keys(spec)
    found = [column for column in grade_columns(roster) if any(key in match_key(column) for key in keys)]
    if len(found) > 1:
        raise RosterError('several Moodle grade columns match {0} ({1}); name one with --moodle-column'.format(
            spec.name, '; '.join(found)))
    return found[0] if found else spec.name


def moodle_csv(spec: AssignmentSpec, reports: list[Report], roster: Roster, column: str,
               policy=None) -> tuple[str, LmsExport]:
    """The text of moodle_import.csv and what it holds (see the module docstring).

    Raises:
        RosterError: `roster` is not a Moodle export.
    """
    if roster.kind != MOODLE:
        raise RosterError('--moodle needs a Moodle export with a Username, ID number or Email address '
                          'column; this file has {0}'.format(', '.join(roster.header[:6])))
    user_columns = [name for name in tuple(MOODLE_ID_COLUMNS) + MOODLE_NAME_COLUMNS
                    if any(match_key(name) == match_key(h) for h in roster.header)]
    return export_csv(spec, reports, roster, user_columns, column, policy, Path(MOODLE_IMPORT_FILE))


def write_moodle(out_dir: Path, spec: AssignmentSpec, reports: list[Report], roster: Roster,
                 column: str | None, policy=None) -> LmsExport:
    """Writes `out_dir/moodle_import.csv` atomically and returns what it holds."""
    from autograder.outputs.report import write_atomic
    text, result = moodle_csv(spec, reports, roster, choose_column(roster, spec, column), policy)
    result.path = Path(out_dir) / MOODLE_IMPORT_FILE
    write_atomic(result.path, text)
    return result
