"""Tests of mlp.learning_rules: hand-computed steps, in-place updates, reset, descent."""

import numpy as np
import pytest

from mlp import learning_rules as rules

GRADS_1 = [np.array([[0.5, -2.], [1., 0.]]), np.array([3., -0.25])]
GRADS_2 = [np.array([[-1., 1.], [0.5, 2.]]), np.array([0.5, 0.75])]


def fresh_params():
    return [np.array([[1., 2.], [-1., 0.5]]), np.array([0., -3.])]


def take_steps(rule, grads_sequence):
    params = fresh_params()
    originals = list(params)
    rule.initialise(params)
    for grads in grads_sequence:
        rule.update_params(grads)
    # The rule must update the very arrays it was given.
    assert all(a is b for a, b in zip(params, originals))
    return params


def assert_params_equal(got, expected):
    for got_param, expected_param in zip(got, expected):
        np.testing.assert_allclose(got_param, expected_param, rtol=1e-12, atol=1e-15)


def test_gradient_descent_step():
    params = take_steps(rules.GradientDescentLearningRule(0.1), [GRADS_1, GRADS_2])
    expected = [p - 0.1 * g1 - 0.1 * g2 for p, g1, g2 in zip(fresh_params(), GRADS_1, GRADS_2)]
    assert_params_equal(params, expected)


def test_momentum_steps():
    lr, alpha = 0.1, 0.8
    params = take_steps(rules.MomentumLearningRule(lr, alpha), [GRADS_1, GRADS_2])
    expected = []
    for p, g1, g2 in zip(fresh_params(), GRADS_1, GRADS_2):
        v1 = -lr * g1
        v2 = alpha * v1 - lr * g2
        expected.append(p + v1 + v2)
    assert_params_equal(params, expected)


def test_adagrad_steps():
    lr, eps = 0.1, 1e-8
    params = take_steps(rules.AdaGradLearningRule(lr, eps), [GRADS_1, GRADS_2])
    expected = []
    for p, g1, g2 in zip(fresh_params(), GRADS_1, GRADS_2):
        p = p - lr * g1 / (np.sqrt(g1 ** 2) + eps)
        p = p - lr * g2 / (np.sqrt(g1 ** 2 + g2 ** 2) + eps)
        expected.append(p)
    assert_params_equal(params, expected)


def test_rmsprop_steps():
    lr, beta, eps = 0.01, 0.9, 1e-8
    params = take_steps(rules.RMSPropLearningRule(lr, beta, eps), [GRADS_1, GRADS_2])
    expected = []
    for p, g1, g2 in zip(fresh_params(), GRADS_1, GRADS_2):
        s1 = (1. - beta) * g1 ** 2
        p = p - lr * g1 / (np.sqrt(s1) + eps)
        s2 = beta * s1 + (1. - beta) * g2 ** 2
        p = p - lr * g2 / (np.sqrt(s2) + eps)
        expected.append(p)
    assert_params_equal(params, expected)


def test_adam_steps_with_bias_correction():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    params = take_steps(rules.AdamLearningRule(lr, b1, b2, eps), [GRADS_1, GRADS_2])
    expected = []
    for p, g1, g2 in zip(fresh_params(), GRADS_1, GRADS_2):
        m1, v1 = (1. - b1) * g1, (1. - b2) * g1 ** 2
        p = p - lr * (m1 / (1. - b1)) / (np.sqrt(v1 / (1. - b2)) + eps)
        m2, v2 = b1 * m1 + (1. - b1) * g2, b2 * v1 + (1. - b2) * g2 ** 2
        p = p - lr * (m2 / (1. - b1 ** 2)) / (np.sqrt(v2 / (1. - b2 ** 2)) + eps)
        expected.append(p)
    assert_params_equal(params, expected)


def test_adam_first_step_has_size_learning_rate():
    # With bias correction the first step is lr * g / |g| (up to eps) per element.
    params = take_steps(rules.AdamLearningRule(0.01), [GRADS_1])
    for p, p0, g in zip(params, fresh_params(), GRADS_1):
        np.testing.assert_allclose(p0 - p, np.where(g != 0., 0.01 * np.sign(g), 0.), rtol=1e-6)


ALL_RULES = {
    'GradientDescentLearningRule': lambda: rules.GradientDescentLearningRule(0.1),
    'MomentumLearningRule': lambda: rules.MomentumLearningRule(0.05, 0.9),
    'AdaGradLearningRule': lambda: rules.AdaGradLearningRule(0.5),
    'RMSPropLearningRule': lambda: rules.RMSPropLearningRule(0.05),
    'AdamLearningRule': lambda: rules.AdamLearningRule(0.05),
}


@pytest.mark.parametrize('name', sorted(ALL_RULES))
def test_reset_clears_state(name):
    rule = ALL_RULES[name]()
    params = fresh_params()
    rule.initialise(params)
    rule.update_params(GRADS_1)
    rule.update_params(GRADS_2)
    after_two_steps = [p.copy() for p in params]
    rule.reset()
    # Parameters are untouched by reset ...
    assert_params_equal(params, after_two_steps)
    rule.update_params(GRADS_1)
    # ... and the next step is the first step of a fresh rule from the same point.
    fresh_rule = ALL_RULES[name]()
    fresh = [p.copy() for p in after_two_steps]
    fresh_rule.initialise(fresh)
    fresh_rule.update_params(GRADS_1)
    assert_params_equal(params, fresh)


@pytest.mark.parametrize('name', sorted(ALL_RULES))
def test_decreases_a_quadratic(name):
    curvature = [np.array([[1., 4.], [0.5, 2.]]), np.array([3., 1.])]

    def value(params):
        return sum(0.5 * np.sum(c * p ** 2) for c, p in zip(curvature, params))

    rule = ALL_RULES[name]()
    params = fresh_params()
    rule.initialise(params)
    start = value(params)
    previous = start
    for step in range(200):
        rule.update_params([c * p for c, p in zip(curvature, params)])
        if name == 'GradientDescentLearningRule':
            assert value(params) <= previous  # Step 0.1 < 2 / max curvature: monotone.
        previous = value(params)
    assert value(params) < 1e-2 * start


@pytest.mark.parametrize('make_rule', [
    lambda: rules.GradientDescentLearningRule(0.),
    lambda: rules.GradientDescentLearningRule(-1.),
    lambda: rules.AdamLearningRule(-0.1),
    lambda: rules.MomentumLearningRule(0.1, mom_coeff=1.5),
    lambda: rules.MomentumLearningRule(0.1, mom_coeff=-0.1),
    lambda: rules.RMSPropLearningRule(0.1, beta=1.),
    lambda: rules.RMSPropLearningRule(0.1, beta=-0.5),
    lambda: rules.RMSPropLearningRule(0.1, epsilon=0.),
    lambda: rules.AdamLearningRule(0.1, beta_1=1.),
    lambda: rules.AdamLearningRule(0.1, beta_2=1.2),
    lambda: rules.AdamLearningRule(0.1, epsilon=-1e-8),
    lambda: rules.AdaGradLearningRule(0.1, epsilon=0.),
])
def test_bad_hyperparameters_raise(make_rule):
    with pytest.raises(ValueError):
        make_rule()


def test_updates_reach_the_model_parameters():
    from mlp.layers import AffineLayer
    from mlp.models import SingleLayerModel
    model = SingleLayerModel(AffineLayer(2, 2))
    weights_before = model.params[0].copy()
    rule = rules.MomentumLearningRule(0.1)
    rule.initialise(model.params)
    rule.update_params([np.ones((2, 2)), np.ones(2)])
    np.testing.assert_allclose(model.layer.weights, weights_before - 0.1)
    np.testing.assert_allclose(model.layer.biases, -0.1)
