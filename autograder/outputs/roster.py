"""Class rosters: mapping the ids we grade under to the ids and names an LMS knows.

TRUSTED. Reads an instructor's roster CSV and writes the roster-aware variant
of `grades.csv`. The ids we grade under are nbgrader student ids (the
`submitted/<student>/` folder names) or notebook file stems, e.g. GitHub user
names; an LMS wants its own ids (university number, e-mail). A roster says
which is which:

    student,lms_id,name
    alice,s1234567,Alice Liddell

The `student` column (or, without one, the first column) holds our ids; every
other column is copied into grades.csv right after `student`, followed by a
`roster` column saying how the row matched:

    ok              in the roster and graded
    not in roster   graded, but the id is not in the roster (kept, never dropped)
    no submission   in the roster, nothing was graded for this id (score left blank)

Ids match ignoring case and punctuation differences the grader itself makes
when it turns folder and file names into ids (anything outside
`[A-Za-z0-9]` compares equal). Text cells that a spreadsheet would read as a
formula (starting with =, +, -, @) are prefixed with a quote.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from autograder.results import Report
from autograder.course.spec import AssignmentSpec

ROSTER_STATUS_COLUMN = 'roster'
IN_ROSTER = 'ok'
NOT_IN_ROSTER = 'not in roster'
NO_SUBMISSION = 'no submission'
_ID_COLUMN = 'student'
_FORMULA_START = ('=', '+', '-', '@', '\t', '\r')


class RosterError(Exception):
    """The roster file cannot be read or is ambiguous."""


def match_key(student_id: str) -> str:
    """The form in which ids are compared: case-folded, punctuation runs collapsed to '_'."""
    return re.sub(r'[^0-9a-z]+', '_', student_id.casefold()).strip('_')


@dataclass
class Roster:
    """A parsed roster.

    Attributes:
        columns: The roster's extra columns (all but the id column), in file order.
        rows: Our id (as written in the roster) -> {column: value}.
    """

    columns: list[str]
    rows: dict[str, dict[str, str]] = field(default_factory=dict)

    def _by_key(self) -> dict[str, str]:
        return {match_key(student): student for student in self.rows}

    def lookup(self, student: str) -> dict[str, str] | None:
        """The roster entry of one of our ids, or None when it is not in the roster."""
        roster_id = self._by_key().get(match_key(student))
        return None if roster_id is None else self.rows[roster_id]


def load_roster(path: Path) -> Roster:
    """Reads a roster CSV (UTF-8, with or without a byte-order mark; a header row is required).

    Raises:
        RosterError: Missing or unreadable file, no columns, an empty id, or two
            rows whose ids match each other.
    """
    try:
        text = Path(path).read_text(encoding='utf-8-sig')
    except (OSError, UnicodeDecodeError) as error:
        raise RosterError('cannot read the roster {0}: {1}'.format(path, error)) from error
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise RosterError('the roster {0} is empty; it needs a header row such as '
                          '"student,lms_id,name"'.format(path))
    header = [cell.strip() for cell in header]
    lowered = [cell.casefold() for cell in header]
    id_index = lowered.index(_ID_COLUMN) if _ID_COLUMN in lowered else 0
    extra = [(index, name) for index, name in enumerate(header) if index != id_index]
    roster = Roster(columns=[name or 'column{0}'.format(index + 1) for index, name in extra])
    seen: dict[str, tuple[str, int]] = {}
    for line_number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        student = row[id_index].strip() if id_index < len(row) else ''
        if not student:
            raise RosterError('{0}, line {1}: the {2!r} column is empty'.format(
                path, line_number, header[id_index]))
        key = match_key(student)
        if key in seen:
            raise RosterError('{0}, line {1}: id {2!r} matches {3!r} of line {4}'.format(
                path, line_number, student, *seen[key]))
        seen[key] = (student, line_number)
        roster.rows[student] = {column: (row[index].strip() if index < len(row) else '')
                                for (index, _), column in zip(extra, roster.columns)}
    return roster


def spreadsheet_safe(text: str) -> str:
    """Text that a spreadsheet shows as text, never evaluates as a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _number(value: float) -> str:
    return '{0:g}'.format(round(value, 4))


def grades_csv_with_roster(spec: AssignmentSpec, reports: list[Report], roster: Roster) -> str:
    """grades.csv with the roster's columns: every graded id and every roster id gets a row.

    Columns: student, the roster's columns, roster, score, max_score, status,
    then points per grade id. Graded ids missing from the roster are kept
    (roster = 'not in roster'); roster ids with no report get
    status 'missing' and blank scores (roster = 'no submission').
    """
    grade_ids = [item.grade_id for item in spec.items]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    writer.writerow(['student'] + roster.columns + [ROSTER_STATUS_COLUMN, 'score', 'max_score', 'status']
                    + grade_ids)
    matched_keys = set()
    for report in sorted(reports, key=lambda r: r.student):
        entry = roster.lookup(report.student)
        if entry is not None:
            matched_keys.add(match_key(report.student))
        scores = report.item_scores()
        writer.writerow(
            [spreadsheet_safe(report.student)]
            + [spreadsheet_safe((entry or {}).get(column, '')) for column in roster.columns]
            + [IN_ROSTER if entry is not None else NOT_IN_ROSTER,
               _number(report.score), _number(report.max_score), report.status]
            + [_number(scores.get(g, 0.0)) for g in grade_ids])
    for student in sorted(roster.rows):
        if match_key(student) in matched_keys:
            continue
        writer.writerow([spreadsheet_safe(student)]
                        + [spreadsheet_safe(roster.rows[student][column]) for column in roster.columns]
                        + [NO_SUBMISSION, '', _number(spec.max_score), 'missing'] + [''] * len(grade_ids))
    return buffer.getvalue()


def unmatched_students(reports: list[Report], roster: Roster) -> list[str]:
    """Graded ids that the roster does not know (for a warning on the terminal)."""
    return sorted(r.student for r in reports if roster.lookup(r.student) is None)


def write_roster_grades(out_dir: Path, spec: AssignmentSpec, reports: list[Report], roster: Roster) -> list[str]:
    """Rewrites `out_dir/grades.csv` with the roster joined in; returns the graded ids not in the roster."""
    from autograder.outputs.report import write_atomic
    write_atomic(Path(out_dir) / 'grades.csv', grades_csv_with_roster(spec, reports, roster))
    return unmatched_students(reports, roster)
