"""Tests of autograder.checks.diagnose: recognising common mistakes from wrong answers."""

import numpy as np
import pytest

from autograder.checks.diagnose import diagnose_bprop, diagnose_fprop

RNG = np.random.RandomState(31)
X = RNG.uniform(-3., 3., size=(4, 5))
G = RNG.normal(size=(4, 5))


def tanh_case():
    y = np.tanh(X)
    return X, y, G


def relu_case():
    return X, np.maximum(0., X), G


@pytest.mark.parametrize('got, phrase', [
    (lambda x, y, g: g * (1. - y), '1 - y instead of 1 - y^2'),
    (lambda x, y, g: g * (1. - x ** 2), '1 - x^2 was used'),
    (lambda x, y, g: 1. - y ** 2, 'without multiplying by grads_wrt_outputs'),
    (lambda x, y, g: g * y * (1. - y), 'sigmoid derivative'),
    (lambda x, y, g: g * (1. + y ** 2), '1 + y^2'),
    (lambda x, y, g: g, 'returns grads_wrt_outputs unchanged'),
    (lambda x, y, g: -g, 'returns -grads_wrt_outputs'),
    (lambda x, y, g: (g * (1. - y ** 2)).T, 'transposed'),
])
def test_tanh_bprop_slips_are_named(got, phrase):
    x, y, g = tanh_case()
    assert phrase in diagnose_bprop('TanhLayer', x, y, g, got(x, y, g))


@pytest.mark.parametrize('got, phrase', [
    (lambda x, y, g: (x > 0).astype(float), 'mask (x > 0) was returned'),
    (lambda x, y, g: g * x, 'multiplied by x'),
    (lambda x, y, g: g * y, 'multiplied by the outputs'),
    (lambda x, y, g: g * (x < 0), 'reversed'),
])
def test_relu_bprop_slips_are_named(got, phrase):
    x, y, g = relu_case()
    assert phrase in diagnose_bprop('ReluLayer', x, y, g, got(x, y, g))


@pytest.mark.parametrize('class_name, got, phrase', [
    ('TanhLayer', lambda x: 1. / (1. + np.exp(-x)), 'logistic sigmoid'),
    ('ReluLayer', np.abs, 'abs(x)'),
    ('ReluLayer', lambda x: np.minimum(x, 0.), 'min(x, 0)'),
    ('LeakyReluLayer', lambda x: np.maximum(x, 0.), 'plain ReLU'),
    ('TanhLayer', lambda x: x, 'inputs unchanged'),
    ('ReluLayer', lambda x: np.max(x, axis=1), 'reduced over an axis'),
    ('ReluLayer', lambda x: np.array(np.sum(x)), 'reduced over an axis'),
])
def test_fprop_slips_are_named(class_name, got, phrase):
    assert phrase in diagnose_fprop(class_name, X, got(X))


def test_elu_and_selu_slips():
    alpha = 1.5
    y = np.where(X > 0, X, alpha * np.expm1(np.minimum(X, 0)))
    assert 'y + alpha' in diagnose_bprop('ELULayer', X, y, G, G * np.where(X > 0, 1., y))
    assert 'factor alpha seems to be missing' in diagnose_fprop(
        'ELULayer', X, np.where(X > 0, X, np.expm1(np.minimum(X, 0))))


def test_a_correct_answer_or_an_unknown_mistake_gets_no_diagnosis():
    x, y, g = tanh_case()
    assert diagnose_bprop('TanhLayer', x, y, g, g * (1. - y ** 2)) == ''
    assert diagnose_bprop('TanhLayer', x, y, g, g * 0.123) == ''
    assert diagnose_fprop('TanhLayer', x, np.tanh(x)) == ''
    assert diagnose_fprop('TanhLayer', x, np.zeros((7, 7))) == ''
    assert diagnose_bprop('TanhLayer', x, y, g, np.zeros((7, 7))) == ''


def test_non_finite_answers_do_not_raise():
    x, y, g = tanh_case()
    got = np.full_like(x, np.nan)
    with np.errstate(all='raise'):
        assert diagnose_bprop('TanhLayer', x, y, g, got) == ''
        assert diagnose_fprop('ReluLayer', x, np.full_like(x, np.inf)) == ''


def test_unknown_class_falls_back_to_generic_mistakes():
    x, y, g = relu_case()
    assert 'unchanged' in diagnose_bprop('SomeNewLayer', x, y, g, g)
    assert diagnose_bprop('SomeNewLayer', x, y, g, g * 2.) == ''


# Diagnoses of the other target kinds ---------------------------------------------------


def test_scaled_answers_are_recognised_and_others_are_not():
    from autograder.checks.diagnose import scaled_by
    expected = np.array([[1.0, -2.0], [0.5, 3.0]])
    factors = [(4., 'four'), (-1., 'flipped')]
    assert scaled_by(4 * expected, expected, factors) == 'four'
    assert scaled_by(-expected, expected, factors) == 'flipped'
    assert scaled_by(expected + 1., expected, factors) == ''
    assert scaled_by(np.zeros(2), np.zeros(2), factors) == ''


def test_the_learning_rule_replays_are_right_when_no_mistake_is_made():
    """The mistakes are variants of these replays, so the replays must match the reference."""
    import mlp.learning_rules as rules
    from autograder.checks import diagnose
    rng = np.random.RandomState(0)
    params = [rng.normal(size=(3, 2)), rng.normal(size=3)]
    grads = [[rng.normal(size=(3, 2)), rng.normal(size=3)] for _ in range(6)]
    replays = {'MomentumLearningRule': (diagnose._momentum_variant(), {'learning_rate': 0.1, 'mom_coeff': 0.8}),
               'RMSPropLearningRule': (diagnose._rmsprop_variant(), {'learning_rate': 0.1, 'beta': 0.8}),
               'AdamLearningRule': (diagnose._adam_variant(), {'learning_rate': 0.1})}
    for name, (step, kwargs) in replays.items():
        rule = getattr(rules, name)(**kwargs)
        working = [p.copy() for p in params]
        rule.initialise(working)
        expected = []
        for number, grad in enumerate(grads, start=1):
            rule.update_params(grad)
            expected.append([p.copy() for p in working])
            if number == 3:
                rule.reset()
        replay = diagnose.simulate_learning_rule(step, kwargs, params, grads, reset_after=(3,))
        assert diagnose._same_trajectory(replay, expected), name
        assert diagnose.diagnose_learning_rule(name, kwargs, params, grads, (3,), expected) == ''


def test_a_schedule_one_epoch_early_is_recognised():
    from autograder.checks.diagnose import diagnose_schedule

    def replay(epochs, **changes):
        return np.cos(np.arange(epochs) / 3.) * changes.get('max_learning_rate_discount_factor', 1.)

    assert 'one epoch early' in diagnose_schedule(replay(7)[1:], {}, replay)
    assert diagnose_schedule(replay(6), {}, replay) == ''
