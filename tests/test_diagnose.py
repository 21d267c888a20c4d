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
