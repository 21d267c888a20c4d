"""The penalty kind (checks/penalty.py) through the real sandbox: L1 and L2 penalties written
the ways students write them, right and wrong, and a training run with the student's penalty."""

import pytest

from kind_harness import by_item, failed_outputs, grade, kind_spec

CLASSES = {'L1Penalty': {'kind': 'penalty', 'kwargs': {'coefficient': 0.05}},
           'L2Penalty': {'kind': 'penalty', 'kwargs': {'coefficient': 0.05}}}
CASES = {
    'public': {'public': True, 'parameter': [[0.5, -1.0, 2.0], [0.25, 1.5, -0.75]]},
    'random': {'seed': 7, 'shape': [4, 6], 'scale': 2.0},
    'zeros': {'parameter': [[0.0, 1.0, -2.0], [0.5, -0.0, -0.25]]},
}
ITEMS = [
    {'grade_id': name.lower() + '_' + method.strip('_'), 'target': '{0}.{1}'.format(name, method),
     'checks': ['fixed:public', 'fixed:random', 'fixed:zeros'] + (['gradcheck'] if method == 'grad' else []) + ['property']}
    for name in ('L1Penalty', 'L2Penalty') for method in ('__call__', 'grad')
]


def penalties(l1_call='self.coefficient * np.abs(parameter).sum()',
              l1_grad='self.coefficient * np.sign(parameter)',
              l2_call='0.5 * self.coefficient * (parameter ** 2).sum()',
              l2_grad='self.coefficient * parameter'):
    template = ('class {0}(object):\n'
                '    def __init__(self, coefficient):\n        self.coefficient = coefficient\n'
                '    def __call__(self, parameter):\n        return {1}\n'
                '    def grad(self, parameter):\n        return {2}\n')
    return template.format('L1Penalty', l1_call, l1_grad) + template.format('L2Penalty', l2_call, l2_grad)


LOOPS_AND_WHERE = '''
class L1Penalty(object):
    def __init__(self, coefficient):
        self.coefficient = coefficient
    def __call__(self, parameter):
        total = 0.
        for value in parameter.flat:
            total += abs(value)
        return self.coefficient * total
    def grad(self, parameter):
        return self.coefficient * np.where(parameter > 0, 1., np.where(parameter < 0, -1., 0.))

class L2Penalty(object):
    def __init__(self, coefficient):
        self.coefficient = coefficient
    def __call__(self, parameter):
        return self.coefficient * np.sum(parameter * parameter) / 2
    def grad(self, parameter):
        grad = parameter.copy()
        grad *= self.coefficient
        return grad
'''


@pytest.fixture(scope='module')
def spec(tmp_path_factory):
    return kind_spec(tmp_path_factory.mktemp('penalty'), classes=CLASSES, cases=CASES, items=ITEMS)


SIGN_AT_ZERO_POSITIVE = penalties(l1_grad='self.coefficient * np.where(parameter >= 0, 1., -1.)')


@pytest.mark.parametrize('source', [penalties(), LOOPS_AND_WHERE, SIGN_AT_ZERO_POSITIVE],
                         ids=['vectorised', 'loops-and-where', 'subgradient-at-zero'])
def test_correct_variants_get_full_marks(spec, source, tmp_path):
    report = grade(spec, source, tmp_path)
    assert {grade_id: score for grade_id, (score, _) in by_item(report).items()} == {
        item['grade_id']: 1.0 for item in ITEMS}, [t.output for t in report.tests if t.status != 'passed']


@pytest.mark.parametrize('change, loses, diagnosis', [
    ({'l1_grad': 'np.sign(parameter)'}, 'l1penalty_grad', 'coefficient is missing'),
    ({'l1_grad': 'self.coefficient * parameter'}, 'l1penalty_grad', 'L2 gradient'),
    ({'l2_call': 'self.coefficient * (parameter ** 2).sum()'}, 'l2penalty_call', 'factor 1/2'),
    ({'l2_grad': '2 * self.coefficient * parameter'}, 'l2penalty_grad', '1/2 convention'),
    ({'l2_grad': 'parameter'}, 'l2penalty_grad', 'coefficient is missing'),
    ({'l1_call': 'self.coefficient * np.abs(parameter).mean()'}, 'l1penalty_call', 'averages'),
], ids=['l1-no-coefficient', 'l1-as-l2', 'l2-no-half', 'l2-grad-factor-2', 'l2-grad-no-coefficient',
        'l1-mean'])
def test_a_wrong_method_loses_its_item_only_and_is_diagnosed(spec, change, loses, diagnosis, tmp_path):
    report = grade(spec, penalties(**change), tmp_path)
    scores = {grade_id: score for grade_id, (score, _) in by_item(report).items()}
    assert scores.pop(loses) < 0.5
    assert set(scores.values()) == {1.0}
    assert diagnosis in failed_outputs(report, loses)


def test_an_l1_gradient_outside_the_subgradient_at_zero_fails_the_case_with_zeros(spec, tmp_path):
    report = grade(spec, penalties(l1_grad='self.coefficient * (np.sign(parameter) + 2. * (parameter == 0))'),
                   tmp_path)
    failed = [t for t in report.tests if t.status != 'passed']
    assert [(t.grade_id, t.name.endswith('"zeros"')) for t in failed] == [('l1penalty_grad', True)]


def test_shrinking_the_parameter_in_place_is_reported(spec, tmp_path):
    report = grade(spec, penalties(l2_grad='np.multiply(parameter, self.coefficient, out=parameter)'),
                   tmp_path)
    assert 'modifies its argument parameter in place' in failed_outputs(report, 'l2penalty_grad')


TRAINING_ITEMS = [{'grade_id': 'l2_training', 'target': 'L2Penalty', 'checks': ['training']}]


@pytest.fixture(scope='module')
def training_spec(tmp_path_factory, mnist_env):
    return kind_spec(tmp_path_factory.mktemp('penalty-training'),
                     classes={'L2Penalty': {'kind': 'penalty', 'kwargs': {'coefficient': 0.01}}},
                     items=TRAINING_ITEMS)


def test_training_with_the_students_penalty(training_spec, tmp_path):
    right = grade(training_spec, penalties(), tmp_path, student='right')
    assert by_item(right) == {'l2_training': (1.0, [])}
    wrong = grade(training_spec, penalties(l2_grad='parameter'), tmp_path,
                  student='wrong')
    assert by_item(wrong)['l2_training'][0] == 0.0
    assert 'grad is wrong' in failed_outputs(wrong, 'l2_training')
