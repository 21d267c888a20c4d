"""Every target kind together: registered, documented, planned with few requests, and quick to
grade (the time is printed, never asserted: benchmarks live in benchmarks/)."""

import time

import pytest

import test_kind_error
import test_kind_function
import test_kind_learning_rule
import test_kind_penalty
import test_kind_scheduler
import test_kind_stochastic_layer
from autograder.checks import plan, registry
from autograder.course import spec as spec_module
from autograder.selfcheck import format_self_check
from kind_harness import by_item, grade, kind_spec

# kind -> (test module, a right submission) for one spec of that kind.
KINDS = {
    'error': (test_kind_error, test_kind_error.VECTORISED),
    'penalty': (test_kind_penalty, test_kind_penalty.penalties()),
    'learning_rule': (test_kind_learning_rule, test_kind_learning_rule.submission()),
    'scheduler': (test_kind_scheduler, test_kind_scheduler.CLOSED_FORM),
    'stochastic_layer': (test_kind_stochastic_layer, test_kind_stochastic_layer.RIGHT['uniform-shared-mask']),
    'function': (test_kind_function, test_kind_function.FPROP['dot'] + test_kind_function.STEP['tuple']),
}
#: No item may need more sandbox requests than this (each is a round trip to the child).
MAX_REQUESTS_PER_ITEM = 80


def spec_of(kind, tmp_path):
    module = KINDS[kind][0]
    return kind_spec(tmp_path, classes=getattr(module, 'CLASSES', None),
                     functions=getattr(module, 'FUNCTIONS', None), cases=module.CASES, items=module.ITEMS)


def test_every_kind_is_registered_and_documented_in_the_spec_module():
    assert set(registry.KINDS) == set(KINDS) | {'layer'}
    for kind in registry.KINDS:
        assert '\n    {0} '.format(kind) in spec_module.__doc__, kind
        assert registry.KINDS[kind].__module__ == 'autograder.checks.' + kind


def test_a_check_a_kind_cannot_run_is_a_clear_spec_error(tmp_path):
    with pytest.raises(spec_module.SpecError, match='cannot test AdamLearningRule.update_params'):
        kind_spec(tmp_path, classes={'AdamLearningRule': {'kind': 'learning_rule', 'kwargs': {'learning_rate': 0.1}}},
                  items=[{'grade_id': 'a', 'target': 'AdamLearningRule.update_params', 'checks': ['gradcheck']}])
    with pytest.raises(spec_module.SpecError, match="unknown kind 'optimiser'"):
        kind_spec(tmp_path, classes={'X': {'kind': 'optimiser'}}, items=[])
    with pytest.raises(spec_module.SpecError, match='needs "reference"'):
        kind_spec(tmp_path, functions={'f': {'kind': 'function'}}, items=[])


@pytest.mark.parametrize('kind', sorted(KINDS))
def test_items_need_few_requests_and_plain_data(kind, tmp_path):
    spec = spec_of(kind, tmp_path)
    for item in spec.items:
        plans = plan.plan_item(spec, item)
        requests = [request for p in plans for request in p.requests]
        assert 0 < len(requests) <= MAX_REQUESTS_PER_ITEM, (item.grade_id, len(requests))
        assert len({request.id for request in requests}) == len(requests)


@pytest.mark.parametrize('kind', sorted(KINDS))
def test_grading_one_submission_of_each_kind(kind, tmp_path, capsys):
    spec = spec_of(kind, tmp_path)
    started = time.monotonic()
    report = grade(spec, KINDS[kind][1], tmp_path)
    elapsed = time.monotonic() - started
    assert all(score == 1.0 for score, _ in by_item(report).values()), by_item(report)
    with capsys.disabled():
        print('\n  {0}: {1} checks graded in {2:.2f} s'.format(kind, len(report.tests), elapsed))


@pytest.mark.parametrize('kind', ['learning_rule', 'stochastic_layer'])
def test_the_self_check_runs_public_checks_of_every_kind(kind, tmp_path):
    spec = spec_of(kind, tmp_path)
    report = grade(spec, KINDS[kind][1], tmp_path, public_only=True)
    assert report.tests and all(test.public for test in report.tests)
    text = format_self_check(spec, report)
    passed = sum(test.status == 'passed' for test in report.tests)
    assert '{0} of {0} public checks passed'.format(passed) in text
