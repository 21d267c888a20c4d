"""JUnit XML: one file per submission, for course CI (GitHub Classroom, GitLab, Jenkins).

TRUSTED. Written by the grading parent from a report; nothing here runs
student code. The layout is the common JUnit shape that CI tools read:

    <testsuites name="mlp-autograde" tests= failures= errors= skipped= time=>
      <testsuite name="<assignment>.<student>" tests= failures= errors= skipped= time= timestamp=>
        <properties>  score, max_score, pending_points, isolation, status  </properties>
        <testcase classname="<assignment>.<grade id>" name="<target>: <check>" time=>
          <failure message="<first line>" type="failed">the student-facing message</failure>
          | <error message= type="error|timeout">...</error>
          | <skipped message="graded by your instructor"/>
        </testcase>
      </testsuite>
    </testsuites>

Each check is one test case; its message is the one the student's feedback
shows, so hidden cases stay summarised (their inputs and messages are
already withheld in the report). A rejected file is one test case in error,
saying why. Every text passes through `xml.etree.ElementTree`, which escapes
markup; characters that XML 1.0 cannot carry at all (NUL, most control
characters, lone surrogates) are replaced by '?' first, so a hostile message
never makes the file unreadable.

`python -m autograder.outputs.junit FILE...` prints the points in those
files as a Markdown table (for a CI job summary).
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ElementTree
from datetime import datetime, timezone
from pathlib import Path

from autograder.results import Report

JUNIT_DIR = 'junit'
SUITES_NAME = 'mlp-autograde'
_NOT_XML = re.compile('[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]')
_MESSAGE_LIMIT = 300


def xml_text(text: str) -> str:
    """Text that XML 1.0 can carry: characters it forbids become '?'."""
    return _NOT_XML.sub('?', str(text))


def _number(value: float) -> str:
    return '{0:g}'.format(round(value, 4))


def _first_line(text: str) -> str:
    line = (text.strip().splitlines() or [''])[0]
    return line if len(line) <= _MESSAGE_LIMIT else line[:_MESSAGE_LIMIT] + '...'


def report_tree(report: Report) -> ElementTree.ElementTree:
    """The JUnit XML document of one report (see the module docstring)."""
    from autograder.outputs.roster import pending_points

    tests = report.tests
    counts = {'failed': 0, 'error': 0, 'skipped': 0}
    for test in tests:
        if test.status == 'failed':
            counts['failed'] += 1
        elif test.status in ('error', 'timeout'):
            counts['error'] += 1
        elif test.status == 'pending':
            counts['skipped'] += 1
    total = len(tests)
    if report.status == 'rejected':
        total, counts['error'] = 1, 1
    attributes = {'tests': str(total), 'failures': str(counts['failed']), 'errors': str(counts['error']),
                  'skipped': str(counts['skipped']), 'time': '{0:.3f}'.format(report.execution_time)}
    root = ElementTree.Element('testsuites', dict(name=SUITES_NAME, **attributes))
    suite = ElementTree.SubElement(root, 'testsuite', dict(
        name=xml_text('{0}.{1}'.format(report.assignment, report.student)),
        timestamp=datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S'), **attributes))
    properties = ElementTree.SubElement(suite, 'properties')
    for name, value in (('score', _number(report.score)), ('max_score', _number(report.max_score)),
                        ('pending_points', _number(pending_points(report))),
                        ('status', report.status), ('isolation', report.isolation)):
        ElementTree.SubElement(properties, 'property', name=name, value=xml_text(value))
    if report.status == 'rejected':
        case = ElementTree.SubElement(suite, 'testcase', classname=xml_text(report.assignment),
                                      name='the submission is a gradable notebook', time='0')
        ElementTree.SubElement(case, 'error', message=xml_text(_first_line(report.error)),
                               type='rejected').text = xml_text(report.error)
        return ElementTree.ElementTree(root)
    for test in tests:
        case = ElementTree.SubElement(suite, 'testcase', dict(
            classname=xml_text('{0}.{1}'.format(report.assignment, test.grade_id)),
            name=xml_text('{0}: {1} ({2:g} / {3:g} points)'.format(
                test.target, test.name, round(test.score, 2), test.max_score)),
            time='0'))
        message = test.output or test.name
        if test.status == 'failed':
            ElementTree.SubElement(case, 'failure', message=xml_text(_first_line(message)),
                                   type='failed').text = xml_text(message)
        elif test.status in ('error', 'timeout'):
            ElementTree.SubElement(case, 'error', message=xml_text(_first_line(message)),
                                   type=test.status).text = xml_text(message)
        elif test.status == 'pending':
            ElementTree.SubElement(case, 'skipped', message='graded by your instructor')
    return ElementTree.ElementTree(root)


def junit_xml(report: Report) -> str:
    """The JUnit XML text of one report, with its XML declaration."""
    tree = report_tree(report)
    ElementTree.indent(tree)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + ElementTree.tostring(tree.getroot(), encoding='unicode') + '\n')


def write_junit(path: Path, report: Report) -> Path:
    """Writes one report's JUnit XML to `path` atomically."""
    from autograder.outputs.report import write_atomic
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, junit_xml(report))
    return path


def write_class_junit(out_dir: Path, reports: list[Report]) -> Path:
    """Writes `<out_dir>/junit/<student>.xml` for every report; returns the folder."""
    folder = Path(out_dir) / JUNIT_DIR
    for report in reports:
        write_junit(folder / '{0}.xml'.format(report.student), report)
    return folder


def points_in(path: Path) -> tuple[str, float, float]:
    """(suite name, score, max_score) read back from a JUnit file we wrote.

    Raises:
        ValueError: The file is not one of ours.
    """
    try:
        suite = ElementTree.parse(path).getroot().find('testsuite')
        values = {p.get('name'): p.get('value') for p in suite.find('properties')}
        return suite.get('name'), float(values['score']), float(values['max_score'])
    except (OSError, ElementTree.ParseError, AttributeError, KeyError, TypeError, ValueError) as error:
        raise ValueError('{0} is not a JUnit file written by mlp-autograde: {1}'.format(path, error)) from error


def main(argv: list[str] | None = None) -> int:
    """Prints the points of JUnit files as a Markdown table; 2 when a file cannot be read."""
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        print('usage: python -m autograder.outputs.junit JUNIT.xml...', file=sys.stderr)
        return 2
    rows, status = [], 0
    for path in paths:
        try:
            rows.append(points_in(path))
        except ValueError as error:
            print('mlp-autograde: {0}'.format(error), file=sys.stderr)
            status = 2
    print('| submission | points |\n|---|---|')
    for name, score, max_score in rows:
        print('| {0} | {1:g} / {2:g} |'.format(name, score, max_score))
    if rows:
        print('\nPoints: {0:g} / {1:g}'.format(sum(r[1] for r in rows), sum(r[2] for r in rows)))
    return status


if __name__ == '__main__':
    sys.exit(main())
