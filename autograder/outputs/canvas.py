"""Canvas: a gradebook CSV that Canvas imports, made from the course's own Canvas gradebook export.

TRUSTED. Reads the instructor's Canvas export (Grades > Export, a CSV) and
writes `canvas_import.csv` for Grades > Import. Canvas's gradebook CSV:

* identity columns Student, ID, SIS User ID, SIS Login ID, Section (Canvas
  matches rows by ID, its own user id; the others are shown and checked);
* a "Points Possible" row under the header, holding each assignment's points;
* one column per assignment, named "Assignment name (Canvas id)"; a column
  without an id creates a new assignment on import. Only the one assignment
  column is written, because Canvas treats every further column as an
  assignment (or a read-only total it ignores) and blank cells leave grades unchanged.

Our ids are matched to the export's rows as `autograder.outputs.roster`
explains (SIS Login ID, its part before an `@`, SIS User ID, Canvas ID).
A student of the export with nothing graded gets a blank cell (Canvas leaves
the grade alone); a rejected file gets 0. The score written is the score
after any late penalty; points still pending manual grading are not in it.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course.spec import AssignmentSpec
from autograder.outputs.roster import (CANVAS, CANVAS_ID_COLUMNS, Roster, RosterError, match_key, number,
                                       pending_points, spreadsheet_safe)
from autograder.results import Report

CANVAS_IMPORT_FILE = 'canvas_import.csv'
POINTS_POSSIBLE = 'Points Possible'
_ASSIGNMENT_COLUMN = re.compile(r'^(?P<name>.*\S)\s*\((?P<id>\d+)\)$')


@dataclass
class LmsExport:
    """What an LMS export wrote.

    Attributes:
        path: The file written.
        column: The grade column's name.
        written: Roster ids given a grade.
        not_in_export: Our graded ids the export does not know (not written).
        pending: Roster ids whose grade still lacks points awaiting manual grading.
    """

    path: Path
    column: str
    written: list[str] = field(default_factory=list)
    not_in_export: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)


def assignment_columns(roster: Roster) -> list[str]:
    """The export's assignment columns: 'Name (id)' headers."""
    return [name for name in roster.header if _ASSIGNMENT_COLUMN.match(name)]


def assignment_keys(spec: AssignmentSpec) -> set[str]:
    """Match keys an LMS column name may contain for this assignment: its folder name, its notebook's
    name, and either without the leading lab number ('03_multiple_layer_models' -> 'multiple_layer_models')."""
    names = {match_key(spec.name), match_key(Path(spec.notebook).stem)}
    return {key for name in names for key in (name, re.sub(r'^\d+_', '', name)) if key}


def choose_column(roster: Roster, spec: AssignmentSpec, wanted: str | None) -> str:
    """The assignment column to fill.

    Args:
        roster: The Canvas export.
        spec: The assignment graded.
        wanted: --canvas-column: a header, an assignment name, or a Canvas
            assignment id; a name the export lacks makes a new assignment.
            None: the one assignment column whose name contains the
            assignment's name (ignoring case and punctuation).

    Raises:
        RosterError: No column or several match without --canvas-column.
    """
    columns = assignment_columns(roster)
    if wanted:
        for column in columns:
            match = _ASSIGNMENT_COLUMN.match(column)
            if wanted in (column, match.group('id')) or match_key(wanted) == match_key(match.group('name')):
                return column
        return wanted.strip()
    keys = assignment_keys(spec)
    found = [column for column in columns
             if any(key in match_key(_ASSIGNMENT_COLUMN.match(column).group('name')) for key in keys)]
    if len(found) == 1:
        return found[0]
    raise RosterError('{0} Canvas assignment columns match {1}; name the one to fill with --canvas-column '
                      '(the export has: {2})'.format('several' if found else 'no', spec.name,
                                                     '; '.join(columns) or 'no assignment columns'))


def _reports_by_roster_id(roster: Roster, reports: list[Report]) -> tuple[dict[str, Report], list[str]]:
    matched, unknown = {}, []
    for report in sorted(reports, key=lambda r: r.student):
        roster_id = roster.roster_id(report.student)
        if roster_id is None:
            unknown.append(report.student)
        else:
            matched[roster_id] = report
    return matched, unknown


def final_score(report: Report, policy, assignment: str) -> float:
    """The score an LMS gets: after the late penalty of `policy` (None: no policy)."""
    from autograder.outputs.late import LatePolicy, apply_policy
    return apply_policy(policy or LatePolicy(), report, assignment).score_after


def canvas_csv(spec: AssignmentSpec, reports: list[Report], roster: Roster, column: str,
               policy=None) -> tuple[str, LmsExport]:
    """The text of canvas_import.csv and what it holds (see the module docstring).

    Raises:
        RosterError: `roster` is not a Canvas gradebook export.
    """
    if roster.kind != CANVAS:
        raise RosterError('--canvas needs a Canvas gradebook export (columns {0}); this file has '
                          '{1}'.format(', '.join(CANVAS_ID_COLUMNS), ', '.join(roster.header[:6])))
    points_possible = [POINTS_POSSIBLE, '', '', '', '', number(spec.max_score)]
    return export_csv(spec, reports, roster, list(CANVAS_ID_COLUMNS), column, policy,
                      Path(CANVAS_IMPORT_FILE), extra_rows=[points_possible])


def export_csv(spec: AssignmentSpec, reports: list[Report], roster: Roster, id_columns: list[str],
               column: str, policy, path: Path, extra_rows=()) -> tuple[str, LmsExport]:
    """An LMS import sheet: the export's `id_columns` as written, then one grade column.

    One row per roster record, in the export's order, after the header and `extra_rows`; a
    record with nothing graded gets a blank grade cell, which the LMS leaves alone.
    """
    matched, unknown = _reports_by_roster_id(roster, reports)
    result = LmsExport(path=path, column=column, not_in_export=unknown)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    writer.writerow(list(id_columns) + [column])
    writer.writerows(extra_rows)
    for roster_id, record in roster.records.items():
        report = matched.get(roster_id)
        cell = ''
        if report is not None:
            cell = number(final_score(report, policy, spec.name))
            result.written.append(roster_id)
            if pending_points(report):
                result.pending.append(roster_id)
        writer.writerow([spreadsheet_safe(record.get(name, '')) for name in id_columns] + [cell])
    return buffer.getvalue(), result


def write_canvas(out_dir: Path, spec: AssignmentSpec, reports: list[Report], roster: Roster,
                 column: str | None, policy=None) -> LmsExport:
    """Writes `out_dir/canvas_import.csv` atomically and returns what it holds."""
    from autograder.outputs.report import write_atomic
    text, result = canvas_csv(spec, reports, roster, choose_column(roster, spec, column), policy)
    result.path = Path(out_dir) / CANVAS_IMPORT_FILE
    write_atomic(result.path, text)
    return result


def print_export(result: LmsExport, lms: str, how_to_import: str) -> None:
    """Tells the instructor what an LMS export holds and how to import it."""
    import sys
    print('{0} import file {1}: {2} grade(s) in column {3!r}; {4}'.format(
        lms, result.path, len(result.written), result.column, how_to_import))
    if result.not_in_export:
        print('mlp-autograde: graded but not in the {0} export (not in the import file): {1}'.format(
            lms, ', '.join(result.not_in_export)), file=sys.stderr)
    if result.pending:
        print('mlp-autograde: {0} of these grades lack points still pending manual grading; import '
              'again once they are graded'.format(len(result.pending)), file=sys.stderr)
