"""Late work: when each submission came in, and the course's late policy applied to our grade sheet.

TRUSTED. Runs in the grading parent after grading; reads only the instructor's
files (nbgrader's configuration and gradebook) and the submission tree's
metadata, never a notebook's content.

Submission time, for every submission:

* In an nbgrader `submitted/<student>/<assignment>/` tree, nbgrader's
  `timestamp.txt` in the notebook's folder, whatever the notebook is called
  (a renamed notebook still gets its folder's time). This is nbgrader's own
  record of the hand-in, so penalties are based on it.
* Otherwise the file's modification time, recorded with `time_source`
  `file modified` for information only: copying, unzipping or a git checkout
  rewrites it, so no penalty is ever applied from it (a wrong penalty would be
  a silent wrong grade). Give nbgrader timestamps, or grade the nbgrader tree,
  to apply a policy.

The policy (first found wins):

1. the command line: `--due "2026-11-20 17:00 UTC"` and `--late-penalty`
   `none` | `zero` | `<P>%/day` (P percent of the maximum score per started
   day late, never below 0);
2. the nbgrader course: the assignment's `duedate` in its gradebook
   (`nbgrader db assignment add NAME --duedate=...`), and the penalty of
   `c.AssignLatePenalties.plugin_class` (nbgrader's `LateSubmissionPlugin`
   with `penalty_method` `none` or `zero`, or the course's own plugin class,
   called as nbgrader calls it: `late_submission_penalty(student, score, seconds_late)`).

Without a due date nothing is late. Penalties apply to the automatic score we
know; written answers graded later are not in it (nbgrader's own export then
applies nbgrader's rule to the total).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from autograder.results import Report

TIMESTAMP_FILE = 'timestamp.txt'
FROM_NBGRADER = 'timestamp.txt'
FROM_FILE_TIME = 'file modified'
_PER_DAY = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*%\s*/\s*day\s*$', re.I)
_TIMESTAMP_LIMIT = 200  # bytes: a timestamp.txt is one short line


class LatePolicyError(Exception):
    """The late policy cannot be read (bad date, unknown penalty, broken nbgrader plugin)."""


@dataclass(frozen=True)
class SubmissionTime:
    """When a submission came in.

    Attributes:
        when: The time (timezone-aware, UTC), or None when unknown.
        source: FROM_NBGRADER or FROM_FILE_TIME ('' when unknown).
    """

    when: datetime | None
    source: str = ''


@dataclass(frozen=True)
class LatePolicy:
    """A course's rule for late work.

    Attributes:
        due: The deadline (UTC), or None (nothing is late).
        method: 'none', 'zero', 'per_day' or 'plugin'.
        percent_per_day: For 'per_day': percent of the maximum score lost per started day.
        plugin: For 'plugin': an object with nbgrader's `late_submission_penalty`.
        source: Where the policy was read, for the terminal.
    """

    due: datetime | None = None
    method: str = 'none'
    percent_per_day: float = 0.0
    plugin: object | None = None
    source: str = 'no late policy'


@dataclass(frozen=True)
class LateOutcome:
    """The policy applied to one report.

    Attributes:
        time: When it was submitted.
        seconds_late: Seconds after the deadline (0 when on time or unknown).
        penalty: Points taken off (0 when on time, or when only a file time is known).
        score_after: The score after the penalty, never below 0.
    """

    time: SubmissionTime
    seconds_late: float
    penalty: float
    score_after: float


def parse_time(text: str) -> datetime:
    """A date and time as nbgrader writes and reads them ('2026-11-20 17:00:00.000000 UTC'); naive means UTC.

    Raises:
        LatePolicyError: The text is not a date.
    """
    try:
        from nbgrader.utils import parse_utc
        value = parse_utc(text.strip())
    except Exception as error:  # dateutil raises several kinds for bad text
        raise LatePolicyError('cannot read {0!r} as a date and time (e.g. "2026-11-20 17:00 UTC"): '
                              '{1}'.format(text[:80], error)) from error
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def submission_time(path: Path) -> SubmissionTime:
    """When the submission at `path` came in: its folder's nbgrader timestamp.txt, else the file's time."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    stamp = folder / TIMESTAMP_FILE
    try:
        if stamp.is_file() and not stamp.is_symlink():
            with open(stamp, 'rb') as handle:
                text = handle.read(_TIMESTAMP_LIMIT).decode('utf-8', 'replace')
            return SubmissionTime(parse_time(text), FROM_NBGRADER)
    except (OSError, LatePolicyError):
        pass  # an unreadable timestamp falls back to the file's time
    try:
        seconds = os.lstat(path).st_mtime
    except OSError:
        return SubmissionTime(None)
    return SubmissionTime(datetime.fromtimestamp(seconds, timezone.utc), FROM_FILE_TIME)


def parse_penalty(text: str) -> tuple[str, float]:
    """('none' | 'zero' | 'per_day', percent) from a --late-penalty value.

    Raises:
        LatePolicyError: Anything else.
    """
    lowered = text.strip().casefold()
    if lowered in ('none', 'zero'):
        return lowered, 0.0
    match = _PER_DAY.match(text)
    if match and float(match.group(1)) <= 100:
        return 'per_day', float(match.group(1))
    raise LatePolicyError('--late-penalty must be none, zero or a percentage per day such as 10%/day, '
                          'got {0!r}'.format(text))


def policy_from_nbgrader(course_root: Path | None, gradebook: Path | None, assignment: str) -> LatePolicy:
    """The late policy of an nbgrader course: the gradebook's due date and the configured penalty plugin.

    Args:
        course_root: The nbgrader course folder (its nbgrader_config.py is read), or None.
        gradebook: Its gradebook file (default `<course_root>/gradebook.db`), or None.
        assignment: The assignment name.

    Raises:
        LatePolicyError: The configured plugin cannot be loaded.
    """
    if course_root is None and gradebook is None:
        return LatePolicy()
    course_root = Path(course_root) if course_root is not None else Path(gradebook).parent
    gradebook = Path(gradebook) if gradebook is not None else course_root / 'gradebook.db'
    due = _gradebook_due_date(gradebook, assignment, course_root)
    if due is None:
        return LatePolicy(source='nbgrader course {0}: no due date for {1}'.format(course_root, assignment))
    from autograder.outputs.gradebook import course_config
    config = course_config(course_root, gradebook)
    plugin = _nbgrader_plugin(config)
    method = getattr(plugin, 'penalty_method', None)
    source = 'nbgrader course {0}'.format(course_root)
    if type(plugin).__module__.startswith('nbgrader.') and method in ('none', 'zero'):
        return LatePolicy(due=due, method=method, source=source)
    return LatePolicy(due=due, method='plugin', plugin=plugin, source=source)


def _gradebook_due_date(gradebook: Path, assignment: str, course_root: Path) -> datetime | None:
    """The assignment's duedate in an nbgrader gradebook, read read-only (nbgrader stores it in UTC).

    Raises:
        LatePolicyError: The file is not an nbgrader gradebook.
    """
    import sqlite3
    if not gradebook.is_file():
        return None
    from autograder.outputs.gradebook import course_config
    course_id = course_config(course_root, gradebook).CourseDirectory.get('course_id', 'default_course')
    try:
        connection = sqlite3.connect('file:{0}?mode=ro'.format(gradebook.resolve()), uri=True)
        try:
            rows = connection.execute('select duedate from assignment where name = ? and '
                                      '(course_id = ? or course_id is null)', (assignment, course_id)).fetchall()
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise LatePolicyError('cannot read the due date from {0}: {1}'.format(gradebook, error)) from error
    due = next((row[0] for row in rows if row[0]), None)
    return None if due is None else parse_time(str(due))


def _nbgrader_plugin(config):
    """An instance of the course's AssignLatePenalties.plugin_class, configured as nbgrader would."""
    try:
        from nbgrader.preprocessors import AssignLatePenalties
        preprocessor = AssignLatePenalties(config=config)
        return preprocessor.plugin_class(parent=preprocessor)
    except Exception as error:
        raise LatePolicyError('cannot load the late penalty plugin of the nbgrader configuration: '
                              '{0}'.format(error)) from error


def choose_policy(due: str | None, penalty: str | None, course_root: Path | None,
                  gradebook: Path | None, assignment: str) -> LatePolicy:
    """The command line's policy when it gives one, else the nbgrader course's (see the module docstring).

    Raises:
        LatePolicyError: A bad --due or --late-penalty, or a broken nbgrader plugin.
    """
    if penalty is not None and due is None:
        from_course = policy_from_nbgrader(course_root, gradebook, assignment)
        if from_course.due is None:
            raise LatePolicyError('--late-penalty needs a due date: give --due, or set the assignment\'s '
                                  'duedate in the nbgrader gradebook')
        method, percent = parse_penalty(penalty)
        return LatePolicy(due=from_course.due, method=method, percent_per_day=percent,
                          source='due date of {0}, --late-penalty'.format(from_course.source))
    if due is not None:
        method, percent = parse_penalty(penalty or 'none')
        return LatePolicy(due=parse_time(due), method=method, percent_per_day=percent,
                          source='--due/--late-penalty')
    return policy_from_nbgrader(course_root, gradebook, assignment)


def nbgrader_student(report: Report, assignment: str) -> str:
    """The nbgrader student id of a report from a submitted/ tree, else the report's id."""
    path = Path(report.submission)
    if path.parent.name == assignment and len(path.parts) >= 3:
        return path.parent.parent.name
    return report.student


def apply_policy(policy: LatePolicy, report: Report, assignment: str) -> LateOutcome:
    """The policy applied to one report (see the module docstring for what counts)."""
    time = submission_time(Path(report.submission))
    late = 0.0
    if policy.due is not None and time.when is not None:
        late = max(0.0, (time.when - policy.due).total_seconds())
    penalty = 0.0
    if late > 0 and time.source == FROM_NBGRADER and report.status == 'graded':
        penalty = _penalty(policy, report, assignment, late)
    penalty = min(max(penalty, 0.0), report.score)
    return LateOutcome(time, late, penalty, report.score - penalty)


def _penalty(policy: LatePolicy, report: Report, assignment: str, late: float) -> float:
    if policy.method == 'zero':
        return report.score
    if policy.method == 'per_day':
        return report.max_score * policy.percent_per_day / 100.0 * math.ceil(late / 86400.0)
    if policy.method == 'plugin':
        try:
            value = policy.plugin.late_submission_penalty(nbgrader_student(report, assignment),
                                                          report.score, late)
            return float(value or 0.0)
        except Exception as error:
            raise LatePolicyError('the nbgrader late penalty plugin failed: {0}'.format(error)) from error
    return 0.0


def format_time(when: datetime | None) -> str:
    """'2026-11-20 17:00:00 UTC', or '' when unknown."""
    return '' if when is None else when.astimezone(timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')


def format_delay(seconds: float) -> str:
    """A delay for the grade sheet: '' when on time, else e.g. '1d 02:03:04'."""
    if seconds <= 0:
        return ''
    whole = int(math.ceil(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return '{0}d {1:02d}:{2:02d}:{3:02d}'.format(days, hours, minutes, secs)
