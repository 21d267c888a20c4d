"""Class rosters and the class grade sheet: mapping our ids to the ids and names an LMS knows.

TRUSTED. Reads an instructor's roster CSV and writes `grades.csv`, with or
without a roster. The ids we grade under are nbgrader student ids (the
`submitted/<student>/` folder names) or notebook file stems, e.g. GitHub user
names; an LMS wants its own ids (university number, e-mail). A roster says
which is which. Three kinds are recognised from their header:

* a plain roster: a `student` column (or, without one, the first column)
  holds our ids, the other columns are copied into grades.csv:

      student,lms_id,name
      alice,s1234567,Alice Liddell

* a Canvas gradebook export (columns Student, ID, SIS User ID, SIS Login ID,
  Section, then one column per assignment): `Student` holds names, so our
  ids are matched against SIS Login ID (and its part before an `@`), SIS
  User ID and the Canvas ID; the "Points Possible" row (and any other row
  without a Canvas ID) is not a student;
* a Moodle grade export or participants list (Username, ID number, Email
  address, First name, Last name ...): our ids are matched against the
  username, the e-mail address (and its part before the `@`) and the ID number.

In grades.csv the roster's identity columns follow `student`, then a
`roster` column saying how the row matched:

    ok              in the roster and graded
    not in roster   graded, but the id is not in the roster (kept, never dropped)
    no submission   in the roster, nothing was graded for this id (score left blank)
    matched twice   two or more graded ids match the same roster row: none of them takes
                    its identity (that would give one LMS id two grades); resolve by hand

Ids match ignoring case and punctuation differences the grader itself makes
when it turns folder and file names into ids (anything outside
`[A-Za-z0-9]` compares equal). A key that two roster rows share matches
neither (an ambiguous match would give one student another's grade).

The grade sheet's columns: student, [roster columns, roster,] score,
max_score, status, one column per grade id (points, or `pending` for a
written answer waiting for a person), then pending_points (points awaiting
manual grading), max_reachable (score + pending_points), submitted_at,
time_source, late_by, penalty, score_after_penalty (see
`autograder.outputs.late`). Text cells that a spreadsheet would read as a
formula (starting with =, +, -, @, tab or carriage return) are prefixed with a quote.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from autograder.results import Report
from autograder.course.spec import AssignmentSpec

ROSTER_STATUS_COLUMN = 'roster'
IN_ROSTER = 'ok'
NOT_IN_ROSTER = 'not in roster'
NO_SUBMISSION = 'no submission'
MATCHED_TWICE = 'matched twice'
PENDING = 'pending'
PLAIN, CANVAS, MOODLE = 'plain', 'canvas', 'moodle'
SHEET_EXTRA_COLUMNS = ['pending_points', 'max_reachable', 'submitted_at', 'time_source', 'late_by',
                       'penalty', 'score_after_penalty']
_ID_COLUMN = 'student'
_FORMULA_START = ('=', '+', '-', '@', '\t', '\r')

#: Canvas's identity columns, in the order of its gradebook export.
CANVAS_ID_COLUMNS = ('Student', 'ID', 'SIS User ID', 'SIS Login ID', 'Section')
#: Optional Canvas identity columns some exports carry.
CANVAS_OPTIONAL_ID_COLUMNS = ('Integration ID', 'Root Account')
#: Moodle's user fields in its exports (column header -> import field in "Map to").
MOODLE_ID_COLUMNS = {'Username': 'username', 'ID number': 'useridnumber', 'Email address': 'useremail'}
MOODLE_NAME_COLUMNS = ('First name', 'Last name', 'Surname')


class RosterError(Exception):
    """The roster file cannot be read or is ambiguous."""


def match_key(student_id: str) -> str:
    """The form in which ids are compared: case-folded, punctuation runs collapsed to '_'."""
    return re.sub(r'[^0-9a-z]+', '_', student_id.casefold()).strip('_')


@dataclass
class Roster:
    """A parsed roster.

    Attributes:
        columns: The roster's identity columns copied into grades.csv, in file order.
        rows: Roster id (the row's first id, as written) -> {column: value}.
        kind: PLAIN, CANVAS or MOODLE.
        header: The file's header, as read.
        records: Roster id -> the whole row {header column: value} (LMS exports keep
            their assignment columns here).
        keys: match key -> roster id, for every key that one row alone has.
    """

    columns: list[str]
    rows: dict[str, dict[str, str]] = field(default_factory=dict)
    kind: str = PLAIN
    header: list[str] = field(default_factory=list)
    records: dict[str, dict[str, str]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    def roster_id(self, student: str) -> str | None:
        """The roster id one of our ids matches, or None."""
        return self.keys.get(match_key(student))

    def lookup(self, student: str) -> dict[str, str] | None:
        """The roster entry of one of our ids, or None when it is not in the roster."""
        roster_id = self.roster_id(student)
        return None if roster_id is None else self.rows[roster_id]


def _find(header: list[str], name: str) -> int | None:
    lowered = [cell.casefold() for cell in header]
    return lowered.index(name.casefold()) if name.casefold() in lowered else None


def roster_kind(header: list[str]) -> str:
    """CANVAS, MOODLE or PLAIN, from a roster's header row."""
    if all(_find(header, name) is not None for name in ('Student', 'ID', 'SIS User ID', 'SIS Login ID')):
        return CANVAS
    if _find(header, _ID_COLUMN) is None and any(_find(header, name) is not None for name in MOODLE_ID_COLUMNS):
        return MOODLE
    return PLAIN


def _key_values(kind: str, record: dict[str, str]) -> list[str]:
    """The values of a row that our ids may equal, most specific first."""
    def local_part(value):
        return value.split('@', 1)[0] if '@' in value else ''
    if kind == CANVAS:
        login = record.get('SIS Login ID', '')
        values = [login, local_part(login), record.get('SIS User ID', ''), record.get('ID', '')]
    else:
        email = record.get('Email address', '')
        values = [record.get('Username', ''), email, local_part(email), record.get('ID number', '')]
    return [value for value in values if value]


def _canonical(header: list[str], names) -> dict[int, str]:
    """Column index -> the canonical spelling, for the names (any case) the header has."""
    found = {}
    for name in names:
        index = _find(header, name)
        if index is not None:
            found[index] = name
    return found


def load_roster(path: Path) -> Roster:
    """Reads a roster CSV (UTF-8, with or without a byte-order mark; a header row is required).

    Raises:
        RosterError: Missing or unreadable file, no columns, an empty id, two
            rows whose ids match each other (plain rosters), or an LMS export
            without any usable id.
    """
    try:
        text = Path(path).read_text(encoding='utf-8-sig')
    except (OSError, UnicodeDecodeError) as error:
        raise RosterError('cannot read the roster {0}: {1}'.format(path, error)) from error
    try:
        table = list(csv.reader(io.StringIO(text)))
    except csv.Error as error:
        raise RosterError('the roster {0} is not a readable CSV file: {1}'.format(path, error)) from error
    header = table[0] if table else None
    if not header or not any(cell.strip() for cell in header):
        raise RosterError('the roster {0} is empty; it needs a header row such as '
                          '"student,lms_id,name"'.format(path))
    header = [cell.strip() for cell in header]
    kind = roster_kind(header)
    if kind == PLAIN:
        return _plain_roster(path, header, table[1:])
    return _lms_roster(path, header, table[1:], kind)


def _plain_roster(path: Path, header: list[str], body: list[list[str]]) -> Roster:
    lowered = [cell.casefold() for cell in header]
    id_index = lowered.index(_ID_COLUMN) if _ID_COLUMN in lowered else 0
    extra = [(index, name) for index, name in enumerate(header) if index != id_index]
    roster = Roster(columns=[name or 'column{0}'.format(index + 1) for index, name in extra], header=header)
    seen: dict[str, tuple[str, int]] = {}
    for line_number, row in enumerate(body, start=2):
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
        roster.records[student] = {name: (row[index].strip() if index < len(row) else '')
                                   for index, name in enumerate(header)}
        roster.keys[key] = student
    return roster


def _lms_roster(path: Path, header: list[str], body: list[list[str]], kind: str) -> Roster:
    if kind == CANVAS:
        identity = _canonical(header, CANVAS_ID_COLUMNS + CANVAS_OPTIONAL_ID_COLUMNS)
        id_column = 'ID'
    else:
        identity = _canonical(header, tuple(MOODLE_ID_COLUMNS) + MOODLE_NAME_COLUMNS)
        id_column = next(name for name in MOODLE_ID_COLUMNS if _find(header, name) is not None)
    # 'Student' holds names in Canvas: copied as 'name' so it is not mistaken for our id column.
    renamed = {'Student': 'name'}
    columns = [renamed.get(identity[index], identity[index]) for index in sorted(identity)]
    roster = Roster(columns=columns, kind=kind, header=header)
    owners: dict[str, set[str]] = {}
    for row in body:
        record = {}
        for index, name in enumerate(header):
            record[identity.get(index, name)] = row[index].strip() if index < len(row) else ''
        roster_id = record.get(id_column, '')
        if not roster_id or (kind == CANVAS and not record.get('ID', '').strip().isdigit()):
            continue  # "Points Possible", "Manual Posting" and blank rows are not students
        if roster_id in roster.rows:
            raise RosterError('{0}: {1} {2!r} appears twice'.format(path, id_column, roster_id))
        roster.records[roster_id] = record
        roster.rows[roster_id] = {renamed.get(identity[index], identity[index]): record[identity[index]]
                                  for index in sorted(identity)}
        for value in _key_values(kind, record):
            owners.setdefault(match_key(value), set()).add(roster_id)
    if not roster.rows:
        raise RosterError('{0} looks like a {1} export but has no student rows'.format(
            path, 'Canvas' if kind == CANVAS else 'Moodle'))
    roster.keys = {key: next(iter(ids)) for key, ids in owners.items() if len(ids) == 1 and key}
    return roster


def spreadsheet_safe(text: str) -> str:
    """Text that a spreadsheet shows as text, never evaluates as a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def number(value: float) -> str:
    """A score as the sheets write it: at most 4 decimals, no trailing zeros."""
    return '{0:g}'.format(round(value, 4))


def pending_items(report: Report) -> dict[str, float]:
    """grade id -> points of the items waiting for manual grading (all of their checks pending)."""
    by_item: dict[str, list] = {}
    for test in report.tests:
        by_item.setdefault(test.grade_id, []).append(test)
    return {grade_id: sum(t.max_score for t in tests) for grade_id, tests in by_item.items()
            if tests and all(t.status == PENDING for t in tests)}


def pending_points(report: Report) -> float:
    """Points of a report that await manual grading (0 for a rejected file)."""
    return sum(pending_items(report).values()) if report.status == 'graded' else 0.0


def _item_cells(spec: AssignmentSpec, report: Report) -> list[str]:
    scores = report.item_scores()
    pending = pending_items(report) if report.status == 'graded' else {}
    return [PENDING if item.grade_id in pending else number(scores.get(item.grade_id, 0.0))
            for item in spec.items]


def _extra_cells(report: Report, policy, assignment: str) -> list[str]:
    from autograder.outputs.late import LatePolicy, apply_policy, format_delay, format_time
    outcome = apply_policy(policy or LatePolicy(), report, assignment)
    waiting = pending_points(report)
    return [number(waiting), number(report.score + waiting), format_time(outcome.time.when),
            outcome.time.source, format_delay(outcome.seconds_late), number(outcome.penalty),
            number(outcome.score_after)]


def grades_csv_with_roster(spec: AssignmentSpec, reports: list[Report], roster: Roster | None,
                           policy=None) -> str:
    """The class grade sheet; with a roster, every graded id and every roster id gets a row.

    Columns: see the module docstring. Graded ids missing from the roster are
    kept (roster = 'not in roster'); roster ids with no report get status
    'missing' and blank scores (roster = 'no submission').

    Args:
        spec: The assignment's grading spec.
        reports: Every report of the grade directory.
        roster: A loaded roster, or None for the plain sheet.
        policy: An `autograder.outputs.late.LatePolicy`, or None (nothing is late).
    """
    grade_ids = [item.grade_id for item in spec.items]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    roster_columns = [] if roster is None else roster.columns + [ROSTER_STATUS_COLUMN]
    writer.writerow(['student'] + roster_columns + ['score', 'max_score', 'status'] + grade_ids
                    + SHEET_EXTRA_COLUMNS)
    matched = set()
    claims = Counter(roster.roster_id(r.student) for r in reports) if roster is not None else Counter()
    for report in sorted(reports, key=lambda r: r.student):
        identity = []
        if roster is not None:
            roster_id = roster.roster_id(report.student)
            twice = roster_id is not None and claims[roster_id] > 1
            entry = roster.rows[roster_id] if roster_id is not None and not twice else {}
            if roster_id is not None:
                matched.add(roster_id)
            status = MATCHED_TWICE if twice else IN_ROSTER if roster_id is not None else NOT_IN_ROSTER
            identity = [spreadsheet_safe(entry.get(column, '')) for column in roster.columns] + [status]
        writer.writerow([spreadsheet_safe(report.student)] + identity
                        + [number(report.score), number(report.max_score), report.status]
                        + _item_cells(spec, report) + _extra_cells(report, policy, spec.name))
    if roster is not None:
        for roster_id in sorted(set(roster.rows) - matched):
            writer.writerow([spreadsheet_safe(roster_id)]
                            + [spreadsheet_safe(roster.rows[roster_id][column]) for column in roster.columns]
                            + [NO_SUBMISSION, '', number(spec.max_score), 'missing'] + [''] * len(grade_ids)
                            + [''] * len(SHEET_EXTRA_COLUMNS))
    return buffer.getvalue()


def unmatched_students(reports: list[Report], roster: Roster) -> list[str]:
    """Graded ids that the roster does not know (for a warning on the terminal)."""
    return sorted(r.student for r in reports if roster.lookup(r.student) is None)


def write_roster_grades(out_dir: Path, spec: AssignmentSpec, reports: list[Report], roster: Roster | None,
                        policy=None) -> list[str]:
    """Rewrites `out_dir/grades.csv` (roster joined in, late policy applied); returns the ids not in the roster."""
    from autograder.outputs.report import write_atomic
    write_atomic(Path(out_dir) / 'grades.csv', grades_csv_with_roster(spec, reports, roster, policy))
    return [] if roster is None else unmatched_students(reports, roster)
