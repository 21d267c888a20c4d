"""The child runner's "sequence" request (one instance, several calls), which the learning-rule,
scheduler, stochastic-layer and objective kinds are built on; answered by a real sandbox."""

import numpy as np
import pytest

from autograder.checks.base import ResponseProblem, sequence_records, sequence_request
from autograder.sandbox.isolation import exec_untrusted
from autograder.sandbox.limits import Limits
from kind_harness import REFERENCE_DIR

SOURCE = '''
import numpy as np

class Counter(object):
    def __init__(self, start=0.):
        self.total = start
    def add(self, array):
        array += 1.
        self.total += float(array.sum())
        return array * 2.
    def twice(self, array):
        return [array, array]
    def set_rate(self, rule, value):
        rule.learning_rate = value
    def fail(self):
        raise ValueError('no')
'''


def run(*requests):
    outcome = exec_untrusted(SOURCE, list(requests), student_mlp_dir=REFERENCE_DIR,
                             limits=Limits(request_seconds=20.0, setup_seconds=20.0))
    assert outcome.setup.ok, outcome.setup.message
    return outcome.responses


def test_slots_persist_copies_are_fresh_and_results_can_be_passed_on():
    steps = [
        {'method': 'add', 'args': [{'array': 0}], 'record': [{'returned': True}, {'array': 0}]},
        {'method': 'add', 'args': [{'array': 0}], 'record': [{'array': 0}, {'attribute': 'total'}]},
        {'method': 'add', 'args': [{'copy': 0}], 'record': [{'array': 0}]},
        {'method': 'twice', 'args': [{'returned': [0, 0]}], 'record': [{'returned': True}]},
        {'method': 'add', 'args': [{'array': 0}], 'record': [{'attribute': 'missing'}]},
    ]
    request = sequence_request('seq', 'Counter', {'start': 1.}, steps, [np.zeros(3)])
    records = sequence_records(run(request), request, 'Counter')
    assert np.array_equal(records[0][0][0], 2 * np.ones(3)) and np.array_equal(records[0][1][0], np.ones(3))
    assert np.array_equal(records[1][0][0], 2 * np.ones(3)) and float(records[1][1][0]) == 1. + 3. + 6.
    assert np.array_equal(records[2][0][0], 2 * np.ones(3))  # a copy was updated, not the slot
    assert len(records[3][0]) == 2 and np.array_equal(records[3][0][1], 2 * np.ones(3))
    assert records[4][0] is None


def test_helper_objects_come_from_the_student_copy_of_mlp():
    steps = [{'method': 'set_rate', 'args': [{'object': 0}, 0.25],
              'record': [{'attribute': 'learning_rate', 'of': {'object': 0}}]}]
    objects = [{'class': 'GradientDescentLearningRule', 'source': 'mlp.learning_rules',
                'kwargs': {'learning_rate': 0.5}}]
    request = sequence_request('rule', 'Counter', {}, steps, [], objects=objects)
    assert float(sequence_records(run(request), request, 'Counter')[0][0][0]) == 0.25


def test_a_failing_step_is_named():
    steps = [{'method': 'add', 'args': [{'array': 0}]}, {'method': 'fail'}]
    request = sequence_request('fails', 'Counter', {}, steps, [np.zeros(2)])
    with pytest.raises(ResponseProblem, match=r'call 2 of 2: fail.*ValueError: no'):
        sequence_records(run(request), request, 'Counter')


@pytest.mark.parametrize('steps', [
    [{'method': 'add', 'args': [{'array': 5}]}],
    [{'method': 'add', 'args': [{'returned': [3, 0]}]}],
    [{'method': 'add', 'record': [{'nonsense': 1}]}],
    [{'args': []}],
    [],
], ids=['slot-out-of-range', 'result-from-the-future', 'bad-record', 'no-method', 'no-steps'])
def test_malformed_sequences_are_a_harness_error_not_the_students(steps):
    request = sequence_request('bad', 'Counter', {}, steps, [np.zeros(2)])
    response = run(request)['bad']
    assert response.status == 'error' and response.header.get('error_kind') == 'request'


def test_a_reply_whose_layout_does_not_match_is_malformed():
    steps = [{'method': 'add', 'args': [{'array': 0}], 'record': [{'array': 0}]}]
    request = sequence_request('seq', 'Counter', {}, steps, [np.zeros(2)])
    responses = run(request)
    responses['seq'].header['records'] = [[2]]
    with pytest.raises(ResponseProblem, match='malformed'):
        sequence_records(responses, request, 'Counter')
