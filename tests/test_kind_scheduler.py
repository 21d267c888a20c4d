"""The scheduler kind (checks/scheduler.py) through the real sandbox: cosine annealing with warm
restarts written the ways students write it (closed form, state between calls), right and wrong."""

import pytest

from kind_harness import by_item, failed_outputs, grade, kind_spec

KWARGS = {'min_learning_rate': 0.01, 'max_learning_rate': 0.5, 'total_iters_per_period': 3,
          'max_learning_rate_discount_factor': 0.8, 'period_iteration_expansion_factor': 2.0}
CLASSES = {'CosineAnnealingWithWarmRestarts': {'kind': 'scheduler', 'kwargs': KWARGS}}
CASES = {'public': {'public': True, 'num_epochs': 10, 'learning_rate': 0.1},
         'long': {'num_epochs': 40, 'learning_rate': 0.1}}
ITEMS = [{'grade_id': 'cosine', 'target': 'CosineAnnealingWithWarmRestarts.update_learning_rule',
          'checks': ['fixed:public', 'fixed:long']}]

INIT = '''
    def __init__(self, min_learning_rate, max_learning_rate, total_iters_per_period,
                 max_learning_rate_discount_factor, period_iteration_expansion_factor):
        self.min_learning_rate = min_learning_rate
        self.max_learning_rate = max_learning_rate
        self.total_iters_per_period = total_iters_per_period
        self.max_learning_rate_discount_factor = max_learning_rate_discount_factor
        self.period_iteration_expansion_factor = period_iteration_expansion_factor
'''
CLOSED_FORM = 'import math\nclass CosineAnnealingWithWarmRestarts(object):' + INIT + '''
    def update_learning_rule(self, learning_rule, epoch_number):
        start, length, index = 0, self.total_iters_per_period, 0
        while epoch_number >= start + length:
            start += length
            length *= self.period_iteration_expansion_factor
            index += 1
        top = self.max_learning_rate * self.max_learning_rate_discount_factor ** index
        rate = self.min_learning_rate + 0.5 * (top - self.min_learning_rate) * (
            1 + math.cos(math.pi * (epoch_number - start) / length))
        learning_rule.learning_rate = rate
        return rate
'''
STATEFUL = 'class CosineAnnealingWithWarmRestarts(object):' + INIT + '''
        self.t_cur = 0
        self.period = total_iters_per_period
        self.top = max_learning_rate
    def update_learning_rule(self, learning_rule, epoch_number):
        if self.t_cur >= self.period:
            self.t_cur = 0
            self.period = self.period * self.period_iteration_expansion_factor
            self.top = self.top * self.max_learning_rate_discount_factor
        learning_rule.learning_rate = self.min_learning_rate + (self.top - self.min_learning_rate) * (
            1 + np.cos(np.pi * self.t_cur / self.period)) / 2
        self.t_cur += 1
'''


@pytest.fixture(scope='module')
def spec(tmp_path_factory):
    return kind_spec(tmp_path_factory.mktemp('scheduler'), classes=CLASSES, cases=CASES, items=ITEMS)


@pytest.mark.parametrize('source', [CLOSED_FORM, STATEFUL], ids=['closed-form', 'stateful'])
def test_correct_variants_get_full_marks(spec, source, tmp_path):
    report = grade(spec, source, tmp_path)
    assert by_item(report) == {'cosine': (1.0, [])}


@pytest.mark.parametrize('old, new, diagnosis', [
    (' * self.max_learning_rate_discount_factor ** index', '', 'not discounted at restarts'),
    ('length *= self.period_iteration_expansion_factor', 'pass', 'periods do not grow'),
    ('(epoch_number - start) / length', '(epoch_number + 1 - start) / length', None),
], ids=['no-discount', 'no-expansion', 'off-by-one-inside-period'])
def test_wrong_schedules_fail_with_a_diagnosis(spec, old, new, diagnosis, tmp_path):
    assert old in CLOSED_FORM
    report = grade(spec, CLOSED_FORM.replace(old, new), tmp_path)
    assert by_item(report)['cosine'][0] == 0.0
    output = failed_outputs(report, 'cosine')
    assert 'first wrong rate is the one set for epoch' in output
    if diagnosis:
        assert diagnosis in output


def test_a_scheduler_that_sets_nothing_fails_clearly(spec, tmp_path):
    source = 'class CosineAnnealingWithWarmRestarts(object):' + INIT + '''
    def update_learning_rule(self, learning_rule, epoch_number):
        return 0.1
'''
    report = grade(spec, source, tmp_path)
    assert by_item(report)['cosine'][0] == 0.0
    assert 'learning rates' in failed_outputs(report, 'cosine')


def test_training_driven_by_the_students_scheduler(tmp_path, mnist_env):
    items = [{'grade_id': 'cosine_training', 'target': 'CosineAnnealingWithWarmRestarts', 'checks': ['training']}]
    kwargs = dict(KWARGS, total_iters_per_period=1, max_learning_rate=0.5)
    spec = kind_spec(tmp_path, classes={'CosineAnnealingWithWarmRestarts': {'kind': 'scheduler', 'kwargs': kwargs}},
                     items=items, training={'num_epochs': 3})
    assert by_item(grade(spec, CLOSED_FORM, tmp_path, student='right')) == {'cosine_training': (1.0, [])}
    wrong = CLOSED_FORM.replace(' * self.max_learning_rate_discount_factor ** index', ' * 0.1')
    report = grade(spec, wrong, tmp_path, student='wrong')
    assert by_item(report)['cosine_training'][0] == 0.0
    assert 'sets wrong rates' in failed_outputs(report, 'cosine_training')
