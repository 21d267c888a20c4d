"""Hidden inputs never reach words that are shown in full (issue 10, class 4), end to end.

The attacks are the catalogue's ``remember_*`` entries (``tests/hostile/catalogue.py``):
each keeps a note of every call it serves (the request being answered and its
first inputs) in a module global, a class attribute, the environment, a file
or a forked process, and raises every note kept so far. If a public check,
whose messages are shown in full, were answered by a sandbox that had already
seen a hidden case, the note of the hidden case would appear in the
feedback. Each submission is graded through the real pipeline at the
strongest isolation level here, and every format a student reads is
searched: the JSON report, the Markdown and HTML feedback and Gradescope's
results.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from autograder import grade
from autograder.checks import plan as checks
from autograder.course.spec import load_spec
from autograder.outputs import feedback_html, gradescope, report as report_writer
from autograder.sandbox import isolation as sandbox
from autograder.sandbox.limits import Limits
from hostile import catalogue
from hostile.catalogue import METHOD, REMEMBER_ATTACKS
from hostile.submissions import Targets, hostile_notebook, write

REPO_ROOT = Path(__file__).resolve().parents[1]
LAB3 = '03_multiple_layer_models'
STRONGEST = sandbox.detect_isolation()
LIMITS = Limits(request_seconds=5.0, setup_seconds=6.0, wall_seconds=60.0, max_restarts=1)

#: The note of a hidden case (its request id names the case); one of the public case.
HIDDEN_NOTE = re.compile(r'SEEN\[[^\]]*/fixed:(?!notebook/)')
PUBLIC_NOTE = re.compile(r'SEEN\[[^\]]*/fixed:notebook/')


@pytest.fixture(scope='module')
def spec():
    return load_spec(LAB3, REPO_ROOT)


def _targets(tmp_path: Path) -> Targets:
    return Targets(repo=str(REPO_ROOT), submissions_dir=str(tmp_path), out_dir=str(tmp_path / 'grades'),
                   victim='nobody', site_dirs=(), tcp_port=9, unix_socket=str(tmp_path / 'no.sock'),
                   abstract_socket='no-listener', tag='hidden-inputs-{0}'.format(os.getpid()),
                   sleep_marker='0', grader_pidns='')


def _graded(attack, spec, tmp_path):
    path = write(hostile_notebook([attack], METHOD, _targets(tmp_path)), tmp_path / 'submission.ipynb')
    return grade.grade_submission(path, spec, student='student', limits=LIMITS)


def _everything_shown(report, spec) -> dict[str, str]:
    results = gradescope.results_json(report, spec)
    visible = [test for test in results.get('tests', []) if test.get('visibility') != 'hidden']
    return {
        'json': report_writer.report_json(report),
        'markdown': report_writer.feedback_markdown(report),
        'html': feedback_html.student_page(report),
        'gradescope visible tests': json.dumps(visible),
    }


@pytest.mark.parametrize('attack', REMEMBER_ATTACKS, ids=lambda attack: attack.name)
def test_no_hidden_input_reaches_any_feedback(attack, spec, tmp_path, mnist_env):
    reason = catalogue.skip_reason(attack, STRONGEST, nproc_binds=False, strongest=STRONGEST)
    if reason:
        pytest.skip(reason)
    report = _graded(attack, spec, tmp_path)
    assert report.status == 'graded', report.error
    for where, text in _everything_shown(report, spec).items():
        found = HIDDEN_NOTE.search(text)
        assert found is None, '{0}: {1}'.format(where, text[max(0, found.start() - 300):found.end() + 100])
    # The attack did run and its words are shown: the public notes are there.
    assert any(PUBLIC_NOTE.search(test.output) for test in report.tests if test.public)


def test_the_attacks_would_leak_if_public_checks_ran_after_hidden_ones(spec, tmp_path, mnist_env,
                                                                       monkeypatch):
    """The test above can fail: with the requests in plan order, unmarked, the notes leak."""
    monkeypatch.setattr(grade, '_requests_of',
                        lambda plans: [request for plan in plans for request in plan.requests])
    report = _graded(catalogue.BY_NAME['remember_in_module_global'], spec, tmp_path)
    leaked = [test.name for test in report.tests if test.public and HIDDEN_NOTE.search(test.output)]
    assert leaked


def test_exactly_the_requests_of_hidden_cases_are_marked_hidden(spec):
    for item in spec.items:
        if 'manual' in item.checks:
            continue
        plans = checks.plan_item(spec, item)
        requests = {request.id: request for request in grade._requests_of(plans)}
        for plan in plans:
            case_is_hidden = plan.kind == 'fixed' and not spec.cases[plan.check.split(':', 1)[1]].public
            for request in plan.requests:
                assert requests[request.id].hidden == case_is_hidden, request.id
    # The training runs (not public checks, but on MNIST) are answered with the public ones.
    training = [plan for item in spec.items if 'training' in item.checks
                for plan in checks.plan_item(spec, item)]
    assert training and not any(request.hidden for request in grade._requests_of(training))
