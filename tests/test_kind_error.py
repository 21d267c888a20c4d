"""The error kind (checks/error.py) through the real sandbox: SumOfSquaredDiffsError written
the ways students write it, right and wrong."""

import pytest

from kind_harness import by_item, failed_outputs, grade, kind_spec

CASES = {
    'public': {'public': True, 'outputs': [[0.5, -1.0, 2.0], [0.0, 1.5, -0.5]],
               'targets': [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]},
    'random': {'seed': 31, 'shape': [6, 3], 'scale': 2.0, 'targets': 'real'},
}
CLASSES = {'SumOfSquaredDiffsError': {'kind': 'error'}}
ITEMS = [
    {'grade_id': 'call', 'target': 'SumOfSquaredDiffsError.__call__',
     'checks': ['fixed:public', 'fixed:random', 'property']},
    {'grade_id': 'grad', 'target': 'SumOfSquaredDiffsError.grad',
     'checks': ['fixed:public', 'fixed:random', 'gradcheck', 'property']},
]

VECTORISED = '''
class SumOfSquaredDiffsError(object):
    def __call__(self, outputs, targets):
        return 0.5 * np.mean(np.sum((outputs - targets) ** 2, axis=1))
    def grad(self, outputs, targets):
        return (outputs - targets) / outputs.shape[0]
'''
LOOPS = '''
class SumOfSquaredDiffsError(object):
    def __call__(self, outputs, targets):
        total = 0.
        for b in range(outputs.shape[0]):
            for k in range(outputs.shape[1]):
                total += (outputs[b, k] - targets[b, k]) ** 2
        return total / (2 * outputs.shape[0])
    def grad(self, outputs, targets):
        result = np.zeros_like(outputs)
        for b in range(outputs.shape[0]):
            result[b] = (outputs[b] - targets[b]) / len(outputs)
        return result
'''
WHOLE_SUM = '''
class SumOfSquaredDiffsError(object):
    def __call__(self, outputs, targets):
        diff = outputs - targets
        return float((diff * diff).sum()) * 0.5 / outputs.shape[0]
    def grad(self, outputs, targets):
        return np.subtract(outputs, targets) * (1.0 / outputs.shape[0])
'''


def with_methods(call, grad):
    return ('class SumOfSquaredDiffsError(object):\n'
            '    def __call__(self, outputs, targets):\n        return {0}\n'
            '    def grad(self, outputs, targets):\n        return {1}\n').format(call, grad)


RIGHT_CALL = '0.5 * np.mean(np.sum((outputs - targets) ** 2, axis=1))'
RIGHT_GRAD = '(outputs - targets) / outputs.shape[0]'


@pytest.fixture(scope='module')
def spec(tmp_path_factory):
    return kind_spec(tmp_path_factory.mktemp('error'), classes=CLASSES,
                     cases=CASES, items=ITEMS)


@pytest.mark.parametrize('source', [VECTORISED, LOOPS, WHOLE_SUM], ids=['vectorised', 'loops', 'whole-sum'])
def test_correct_variants_get_full_marks(spec, source, tmp_path):
    report = grade(spec, source, tmp_path)
    assert by_item(report) == {'call': (1.0, []), 'grad': (1.0, [])}


@pytest.mark.parametrize('call, grad, loses, diagnosis', [
    ('0.5 * np.sum((outputs - targets) ** 2)', RIGHT_GRAD, 'call', 'averages the error over the batch'),
    ('np.mean(np.sum((outputs - targets) ** 2, axis=1))', RIGHT_GRAD, 'call', 'factor 1/2'),
    ('0.5 * np.mean((outputs - targets) ** 2)', RIGHT_GRAD, 'call', 'output units too'),
    (RIGHT_CALL, 'outputs - targets', 'grad', 'not divided by the batch size'),
    (RIGHT_CALL, '(targets - outputs) / outputs.shape[0]', 'grad', 'sign is flipped'),
], ids=['sum-over-batch', 'no-half', 'mean-over-units', 'grad-no-batch-mean', 'grad-sign'])
def test_a_wrong_method_loses_its_item_only_and_is_diagnosed(spec, call, grad, loses, diagnosis, tmp_path):
    report = grade(spec, with_methods(call, grad), tmp_path)
    scores = {grade_id: score for grade_id, (score, _) in by_item(report).items()}
    other = 'grad' if loses == 'call' else 'call'
    assert scores[other] == 1.0
    assert scores[loses] < 0.5
    assert diagnosis in failed_outputs(report, loses)


def test_a_sum_over_the_batch_fails_the_batch_mean_property(spec, tmp_path):
    report = grade(spec, with_methods('0.5 * np.sum((outputs - targets) ** 2)',
                                      '(outputs - targets)'), tmp_path)
    assert 'appears twice' in failed_outputs(report, 'call')
    assert 'appears twice' in failed_outputs(report, 'grad')


def test_modifying_the_outputs_in_place_is_reported(spec, tmp_path):
    source = '''
class SumOfSquaredDiffsError(object):
    def __call__(self, outputs, targets):
        outputs -= targets
        return 0.5 * np.mean(np.sum(outputs ** 2, axis=1))
    def grad(self, outputs, targets):
        return (outputs - targets) / outputs.shape[0]
'''
    report = grade(spec, source, tmp_path)
    scores = {grade_id: score for grade_id, (score, _) in by_item(report).items()}
    assert scores['grad'] == 1.0 and 0 < scores['call'] < 1.0
    assert 'modifies its argument outputs in place' in failed_outputs(report, 'call')


def test_a_right_grad_of_a_wrong_call_is_judged_against_the_reference(spec, tmp_path):
    report = grade(spec, with_methods('0.5 * np.sum((outputs - targets) ** 2)', RIGHT_GRAD), tmp_path)
    assert by_item(report)['grad'] == (1.0, [])


def test_public_only_runs_the_notebook_case_gradcheck_and_properties(spec, tmp_path):
    report = grade(spec, VECTORISED, tmp_path, public_only=True)
    assert all(test.public for test in report.tests)
    assert sorted(test.kind for test in report.tests if test.grade_id == 'grad') == [
        'fixed', 'gradcheck', 'property']
