"""The learning-rule kind (checks/learning_rule.py) through the real sandbox: momentum, RMSProp
and Adam written the ways students write them, right and wrong (in place or not)."""

import pytest

from kind_harness import by_item, failed_outputs, grade, kind_spec

CLASSES = {
    'MomentumLearningRule': {'kind': 'learning_rule', 'kwargs': {'learning_rate': 0.05, 'mom_coeff': 0.9}},
    'RMSPropLearningRule': {'kind': 'learning_rule', 'kwargs': {'learning_rate': 0.01, 'beta': 0.9}},
    'AdamLearningRule': {'kind': 'learning_rule', 'kwargs': {'learning_rate': 0.01}},
}
CASES = {
    'public': {'public': True, 'seed': 3, 'param_shapes': [[2, 3], [3]], 'num_steps': 3},
    'long': {'seed': 5, 'param_shapes': [[3, 4], [4]], 'num_steps': 25, 'reset_after': [12]},
    'small': {'seed': 8, 'param_shapes': [[2, 5], [5]], 'num_steps': 15, 'scale': 0.2, 'reset_after': [5]},
}
ITEMS = [{'grade_id': name, 'target': name + '.update_params',
          'checks': ['fixed:public', 'fixed:long', 'fixed:small', 'property']} for name in CLASSES]

HEADER = 'from mlp.learning_rules import GradientDescentLearningRule\n'

MOMENTUM = {
    'reference-style': '''
class MomentumLearningRule(GradientDescentLearningRule):
    def __init__(self, learning_rate=1e-3, mom_coeff=0.9):
        super().__init__(learning_rate)
        self.mom_coeff = mom_coeff
    def initialise(self, params):
        super().initialise(params)
        self.moms = [np.zeros_like(p) for p in self.params]
    def reset(self):
        for mom in self.moms:
            mom *= 0.
    def update_params(self, grads_wrt_params):
        for param, mom, grad in zip(self.params, self.moms, grads_wrt_params):
            mom *= self.mom_coeff
            mom -= self.learning_rate * grad
            param += mom
''',
    'indexed-rebinding-moms': '''
class MomentumLearningRule(GradientDescentLearningRule):
    def __init__(self, learning_rate=1e-3, mom_coeff=0.9):
        super(MomentumLearningRule, self).__init__(learning_rate)
        self.mom_coeff = mom_coeff
    def initialise(self, params):
        self.params = params
        self.moms = [np.zeros(p.shape) for p in params]
    def reset(self):
        self.moms = [np.zeros(p.shape) for p in self.params]
    def update_params(self, grads_wrt_params):
        for i in range(len(self.params)):
            self.moms[i] = self.mom_coeff * self.moms[i] + self.learning_rate * grads_wrt_params[i]
            self.params[i] -= self.moms[i]
''',
    'slice-assignment': '''
class MomentumLearningRule(GradientDescentLearningRule):
    def __init__(self, learning_rate=1e-3, mom_coeff=0.9):
        super().__init__(learning_rate)
        self.mom_coeff = mom_coeff
    def initialise(self, params):
        super().initialise(params)
        self.moms = [0. * p for p in params]
    def reset(self):
        for mom in self.moms:
            mom[...] = 0.
    def update_params(self, grads_wrt_params):
        for param, mom, grad in zip(self.params, self.moms, grads_wrt_params):
            mom[:] = self.mom_coeff * mom - self.learning_rate * grad
            param[:] = param + mom
''',
}
RMSPROP = '''
class RMSPropLearningRule(GradientDescentLearningRule):
    def __init__(self, learning_rate=1e-3, beta=0.9, epsilon=1e-8):
        super().__init__(learning_rate)
        self.beta, self.epsilon = beta, epsilon
    def initialise(self, params):
        super().initialise(params)
        self.mean_sq = [np.zeros_like(p) for p in params]
    def reset(self):
        for s in self.mean_sq:
            s.fill(0.)
    def update_params(self, grads_wrt_params):
        for param, s, grad in zip(self.params, self.mean_sq, grads_wrt_params):
            s[:] = self.beta * s + (1 - self.beta) * grad ** 2
            param -= self.learning_rate * grad / (np.sqrt(s) + self.epsilon)
'''
ADAM = '''
class AdamLearningRule(GradientDescentLearningRule):
    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        super().__init__(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
    def initialise(self, params):
        super().initialise(params)
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0
    def reset(self):
        for m, v in zip(self.m, self.v):
            m *= 0.
            v *= 0.
        self.t = 0
    def update_params(self, grads_wrt_params):
        self.t += 1
        for param, m, v, grad in zip(self.params, self.m, self.v, grads_wrt_params):
            m *= self.beta_1
            m += (1 - self.beta_1) * grad
            v *= self.beta_2
            v += (1 - self.beta_2) * grad * grad
            m_hat = m / (1 - self.beta_1 ** self.t)
            v_hat = v / (1 - self.beta_2 ** self.t)
            param -= self.learning_rate * m_hat / (np.sqrt(v_hat) + self.epsilon)
'''


def submission(momentum=MOMENTUM['reference-style'], rmsprop=RMSPROP, adam=ADAM):
    return HEADER + momentum + rmsprop + adam


@pytest.fixture(scope='module')
def spec(tmp_path_factory):
    return kind_spec(tmp_path_factory.mktemp('rules'), classes=CLASSES, cases=CASES, items=ITEMS)


def scores(report):
    return {grade_id: score for grade_id, (score, _) in by_item(report).items()}


@pytest.mark.parametrize('variant', sorted(MOMENTUM))
def test_correct_variants_get_full_marks(spec, variant, tmp_path):
    report = grade(spec, submission(momentum=MOMENTUM[variant]), tmp_path)
    assert scores(report) == {name: 1.0 for name in CLASSES}, [
        t.output for t in report.tests if t.status != 'passed']


EPSILON_FORMS = {
    'rmsprop-epsilon-inside-sqrt': {'rmsprop': RMSPROP.replace(
        'grad / (np.sqrt(s) + self.epsilon)', 'grad / np.sqrt(s + self.epsilon)')},
    'adam-epsilon-inside-sqrt': {'adam': ADAM.replace(
        'm_hat / (np.sqrt(v_hat) + self.epsilon)', 'm_hat / np.sqrt(v_hat + self.epsilon)')},
    'adam-step-size-form': {'adam': ADAM.replace(
        '            m_hat = m / (1 - self.beta_1 ** self.t)\n'
        '            v_hat = v / (1 - self.beta_2 ** self.t)\n'
        '            param -= self.learning_rate * m_hat / (np.sqrt(v_hat) + self.epsilon)\n',
        '            alpha = self.learning_rate * np.sqrt(1 - self.beta_2 ** self.t) / (1 - self.beta_1 ** self.t)\n'
        '            param -= alpha * m / (np.sqrt(v) + self.epsilon)\n')},
}


@pytest.mark.parametrize('form', sorted(EPSILON_FORMS))
def test_where_epsilon_enters_does_not_matter(spec, form, tmp_path):
    (argument, source), = EPSILON_FORMS[form].items()
    assert source != {'rmsprop': RMSPROP, 'adam': ADAM}[argument]
    report = grade(spec, submission(**{argument: source}), tmp_path)
    assert scores(report) == {name: 1.0 for name in CLASSES}, [
        t.output for t in report.tests if t.status != 'passed']


def _only_loses(report, loses):
    got = scores(report)
    assert got.pop(loses) < 0.5, failed_outputs(report, loses)
    assert set(got.values()) == {1.0}, got


def test_param_equals_param_minus_is_not_in_place(spec, tmp_path):
    rebinding = MOMENTUM['reference-style'].replace('param += mom', 'param = param + mom')
    report = grade(spec, submission(momentum=rebinding), tmp_path)
    _only_loses(report, 'MomentumLearningRule')
    assert 'in place' in failed_outputs(report, 'MomentumLearningRule')
    assert 'would train nothing' in failed_outputs(report, 'MomentumLearningRule')


def test_replacing_the_list_entries_is_not_in_place_either(spec, tmp_path):
    replacing = MOMENTUM['indexed-rebinding-moms'].replace(
        'self.params[i] -= self.moms[i]', 'self.params[i] = self.params[i] - self.moms[i]')
    report = grade(spec, submission(momentum=replacing), tmp_path)
    _only_loses(report, 'MomentumLearningRule')
    assert 'does not update the parameter arrays in place' in failed_outputs(report, 'MomentumLearningRule')


def test_momentum_with_the_wrong_sign_is_diagnosed(spec, tmp_path):
    wrong = MOMENTUM['reference-style'].replace('mom -= self.learning_rate', 'mom += self.learning_rate')
    report = grade(spec, submission(momentum=wrong), tmp_path)
    _only_loses(report, 'MomentumLearningRule')
    assert 'wrong sign' in failed_outputs(report, 'MomentumLearningRule')


def test_adam_without_bias_correction_is_diagnosed(spec, tmp_path):
    wrong = ADAM.replace('m / (1 - self.beta_1 ** self.t)', 'm').replace('v / (1 - self.beta_2 ** self.t)', 'v')
    report = grade(spec, submission(adam=wrong), tmp_path)
    _only_loses(report, 'AdamLearningRule')
    assert 'bias correction is missing' in failed_outputs(report, 'AdamLearningRule')


def test_adam_counting_steps_per_parameter_is_diagnosed(spec, tmp_path):
    wrong = ADAM.replace('        self.t += 1\n', '').replace(
        '            m *= self.beta_1\n', '            self.t += 1\n            m *= self.beta_1\n')
    report = grade(spec, submission(adam=wrong), tmp_path)
    _only_loses(report, 'AdamLearningRule')
    assert 'once per parameter' in failed_outputs(report, 'AdamLearningRule')


def test_a_reset_that_keeps_the_state_is_diagnosed(spec, tmp_path):
    wrong = RMSPROP.replace('            s.fill(0.)\n', '            pass\n')
    report = grade(spec, submission(rmsprop=wrong), tmp_path)
    got = scores(report)
    assert got.pop('RMSPropLearningRule') < 0.7  # the public case has no reset: it passes
    assert set(got.values()) == {1.0}
    assert 'reset() does not clear the state' in failed_outputs(report, 'RMSPropLearningRule')


def test_rmsprop_without_one_minus_beta_is_diagnosed(spec, tmp_path):
    wrong = RMSPROP.replace('(1 - self.beta) * grad ** 2', 'grad ** 2')
    report = grade(spec, submission(rmsprop=wrong), tmp_path)
    _only_loses(report, 'RMSPropLearningRule')
    assert '(1 - beta)' in failed_outputs(report, 'RMSPropLearningRule')


def test_modifying_the_gradients_costs_part_of_the_property(spec, tmp_path):
    wrong = RMSPROP.replace('            param -= self.learning_rate * grad / (np.sqrt(s) + self.epsilon)',
                            '            grad /= np.sqrt(s) + self.epsilon\n'
                            '            param -= self.learning_rate * grad')
    report = grade(spec, submission(rmsprop=wrong), tmp_path)
    got = scores(report)
    assert 0.5 < got['RMSPropLearningRule'] < 1.0
    assert 'modifies the gradients' in failed_outputs(report, 'RMSPropLearningRule')


def test_a_slip_that_starts_late_is_reported_at_its_first_wrong_step(spec, tmp_path):
    """A momentum rule that goes wrong from its 21st update on (after the reset at step 12)."""
    late = MOMENTUM['reference-style'].replace(
        '    def update_params(self, grads_wrt_params):\n',
        '    def update_params(self, grads_wrt_params):\n'
        '        self.calls = getattr(self, "calls", 0) + 1\n'
        '        if self.calls > 20:\n'
        '            self.params[0][0, 0] += 1e-3\n')
    report = grade(spec, submission(momentum=late), tmp_path)
    momentum = {t.name: t for t in report.tests if t.grade_id == 'MomentumLearningRule'}
    failed = [t for t in momentum.values() if t.status != 'passed']
    assert len(failed) == 1 and 'after step 21 of 25' in failed[0].output, [t.output for t in failed]
    assert set(scores(report).values()) - {scores(report)['MomentumLearningRule']} == {1.0}


def test_following_a_trajectory_is_every_array_passing_its_own_comparison():
    """`_follows` compares all steps at once; that must be the per-array verdict of compare_arrays."""
    import numpy as np
    from mlp.checks import compare_arrays
    from autograder.checks.learning_rule import LearningRulePlanner

    rng = np.random.RandomState(0)
    expected = [[rng.normal(size=(2, 3)), rng.normal(size=3)] for _ in range(4)]
    expected[1][1][2] = np.nan  # expected NaN: matched only by NaN
    expected[2][0][1, 1] = np.inf

    def per_array(trajectory):
        return all(len(got) == len(want) and all(compare_arrays(a, b, '').ok for a, b in zip(got, want))
                   for got, want in zip(trajectory, expected))

    def variant(change):
        trajectory = [[array.copy() for array in step] for step in expected]
        change(trajectory)
        return trajectory

    def set_(step, index, position, value):
        return lambda t: t[step][index].__setitem__(position, value)

    variants = [
        variant(lambda t: None),
        variant(lambda t: t[3][0].__iadd__(1e-9)),                    # within tolerance
        variant(set_(3, 0, (1, 2), expected[3][0][1, 2] + 1e-3)),       # one element off, last step
        variant(set_(1, 1, 2, 0.0)),                                    # a number where NaN is due
        variant(set_(2, 0, (1, 1), -np.inf)),                           # the wrong infinity
        variant(set_(0, 1, 0, np.nan)),                                 # NaN where a number is due
        variant(lambda t: t[2].__setitem__(1, t[2][1][:2])),            # a wrong shape
        variant(lambda t: t[2].__setitem__(1, t[2][1].reshape(1, 3))),  # same size, other shape
        variant(lambda t: t[0].__setitem__(0, 'not numbers')),
        variant(lambda t: t[1].pop()),                                  # a parameter missing
    ]
    verdicts = [LearningRulePlanner._follows(trajectory, expected) for trajectory in variants]
    assert verdicts == [per_array(trajectory) for trajectory in variants]
    assert verdicts == [True, True] + [False] * 8


def test_a_hidden_sequence_never_shows_values(spec, tmp_path):
    wrong = ADAM.replace('m / (1 - self.beta_1 ** self.t)', 'm')
    report = grade(spec, submission(adam=wrong), tmp_path)
    hidden = [t for t in report.tests if t.grade_id == 'AdamLearningRule' and not t.public]
    assert hidden and all('got' not in t.output and 'expected' not in t.output for t in hidden)
    public = [t for t in report.tests if t.grade_id == 'AdamLearningRule' and t.name.endswith("test arrays")]
    assert 'after step 1 of 3' in public[0].output


TRAINING_ITEMS = [{'grade_id': 'adam_training', 'target': 'AdamLearningRule', 'checks': ['training']}]


def test_training_with_the_students_learning_rule(tmp_path, mnist_env):
    spec = kind_spec(tmp_path, classes={'AdamLearningRule': CLASSES['AdamLearningRule']}, items=TRAINING_ITEMS)
    assert by_item(grade(spec, HEADER + ADAM, tmp_path, student='right')) == {'adam_training': (1.0, [])}
    wrong = HEADER + ADAM.replace('param -= self.learning_rate', 'param += self.learning_rate')
    report = grade(spec, wrong, tmp_path, student='wrong')
    assert by_item(report)['adam_training'][0] == 0.0
    assert 'update_params is wrong' in failed_outputs(report, 'adam_training')
