"""Tests of mlp.checks (comparisons, finite differences, notebook checks), and a
package-wide check that no function in mlp has a mutable default argument."""

import importlib
import inspect
import pkgutil
import warnings

import numpy as np
import pytest

import mlp
from mlp import checks
from mlp.checks import CheckFailed
from mlp.layers import AffineLayer, TanhLayer
from mlp.initialisers import UniformInit

INPUTS = np.array([[0.1, -0.2, 0.3], [-0.4, 0.5, -0.6]])
GRADS = np.array([[5., 10., -10.], [-5., 0., 10.]])


# compare_arrays.

def test_compare_equal_arrays_is_ok():
    result = checks.compare_arrays([[1., 2.]], np.array([[1., 2.]]), 'f')
    assert result.ok and result.message == '' and result.max_abs_error == 0.
    assert result.worst_index is None and result.wrong_fraction == 0.


def test_compare_within_tolerance_reports_max_error():
    result = checks.compare_arrays([1. + 1e-7, 2.], [1., 2.], 'f')
    assert result.ok and result.max_abs_error == pytest.approx(1e-7)
    assert not checks.compare_arrays([1. + 1e-3, 2.], [1., 2.], 'f').ok
    assert checks.compare_arrays([1. + 1e-3, 2.], [1., 2.], 'f', rtol=1e-2).ok


def test_compare_shape_mismatch_message():
    result = checks.compare_arrays(np.zeros((2, 3)), np.zeros((3, 2)), 'TanhLayer.fprop')
    assert not result.ok
    assert result.message == ('TanhLayer.fprop returned an array of shape (2, 3), '
                              'expected shape (3, 2).')
    assert result.max_abs_error == float('inf') and result.wrong_fraction == 1.


def test_compare_non_numeric_value():
    result = checks.compare_arrays('not numbers', [1.], 'f')
    assert not result.ok and 'not a numeric array' in result.message


def test_compare_worst_index_and_values():
    expected = np.zeros((2, 3))
    got = expected.copy()
    got[0, 1] = 0.5
    got[1, 2] = -2.
    result = checks.compare_arrays(got, expected, 'ReluLayer.bprop')
    assert not result.ok
    assert result.worst_index == (1, 2)
    assert result.got_value == -2. and result.expected_value == 0.
    assert result.max_abs_error == 2. and result.wrong_fraction == pytest.approx(2. / 6.)
    assert result.message.startswith('ReluLayer.bprop returned wrong values at [1, 2]: got -2,')
    assert '33% of entries wrong' in result.message


def test_compare_nan_in_result_is_wrong_and_ranked_first():
    got = np.array([1., np.nan, 3.5])
    result = checks.compare_arrays(got, [1., 2., 3.], 'f')
    assert not result.ok
    assert result.worst_index == (1,)
    assert result.max_abs_error == float('inf')
    assert 'NaN or infinite' in result.message
    np.testing.assert_array_equal(got[[0, 2]], [1., 3.5])  # Input not modified.


def test_compare_infinite_result_is_wrong():
    result = checks.compare_arrays([np.inf, 1.], [1., 1.], 'f')
    assert not result.ok and 'NaN or infinite' in result.message


def test_compare_matching_nan_and_inf_pass_with_finite_max_error():
    with np.errstate(all='raise'):
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            result = checks.compare_arrays([np.nan, np.inf, 1.], [np.nan, np.inf, 1.], 'f')
            only_nan = checks.compare_arrays([np.nan], [np.nan], 'f')
    assert result.ok and result.max_abs_error == 0.
    assert only_nan.ok and only_nan.max_abs_error == 0.
    assert not checks.compare_arrays([-np.inf], [np.inf], 'f').ok
    wrong_finite = checks.compare_arrays([0., 5.], [0., np.inf], 'f')
    assert not wrong_finite.ok and wrong_finite.worst_index == (1,)
    assert not checks.compare_arrays([1.], [np.nan], 'f').ok


def test_compare_reveal_false_hides_values_and_position():
    got = np.array([[1.25, 7.75]])
    result = checks.compare_arrays(got, [[1.25, 3.5]], 'hidden case', reveal=False)
    assert not result.ok
    assert result.message == 'hidden case returned wrong values (50% of entries wrong).'
    for secret in ('7.75', '3.5', '[0, 1]', '4.25'):
        assert secret not in result.message
    # The structured fields still carry the details for trusted callers.
    assert result.worst_index == (0, 1)


def test_compare_empty_arrays():
    assert checks.compare_arrays(np.zeros((0, 3)), np.zeros((0, 3)), 'f').ok


# Finite differences.

def test_perturbed_inputs_order_and_step():
    inputs = np.arange(6.).reshape(2, 3)
    perturbed = checks.perturbed_inputs(inputs, step=0.5)
    assert [index for index, _, _ in perturbed] == list(np.ndindex(2, 3))
    for index, plus, minus in perturbed:
        delta = np.zeros((2, 3))
        delta[index] = 0.5
        np.testing.assert_array_equal(plus, inputs + delta)
        np.testing.assert_array_equal(minus, inputs - delta)
    np.testing.assert_array_equal(inputs, np.arange(6.).reshape(2, 3))


def test_central_differences_of_a_linear_map_are_exact():
    matrix = np.array([[1., 2.], [3., -4.], [0.5, 0.]])
    inputs = np.array([0.3, -0.7])
    grads = np.array([1., -1., 2.])
    perturbed = checks.perturbed_inputs(inputs, 0.25)
    estimate = checks.central_differences(
        inputs.shape, [matrix.dot(p) for _, p, _ in perturbed],
        [matrix.dot(m) for _, _, m in perturbed], grads, 0.25)
    np.testing.assert_allclose(estimate, grads.dot(matrix), rtol=1e-12)


def test_numerical_gradient_accuracy_on_known_function():
    rng = np.random.RandomState(0)
    inputs = rng.uniform(-2., 2., size=(3, 4))
    grads = rng.normal(size=(3, 4))
    estimate = checks.numerical_gradient(lambda x: np.sin(x) * x ** 2, inputs, grads)
    exact = grads * (np.cos(inputs) * inputs ** 2 + 2. * inputs * np.sin(inputs))
    assert estimate.shape == inputs.shape
    np.testing.assert_allclose(estimate, exact, rtol=1e-7, atol=1e-8)


def test_numerical_gradient_of_scalar_function():
    inputs = np.array([[1., 2.], [3., 4.]])
    estimate = checks.numerical_gradient(lambda x: np.sum(x ** 3), inputs, np.array(1.))
    np.testing.assert_allclose(estimate, 3. * inputs ** 2, rtol=1e-8)


# Notebook checks.

class TanhWithWrongFprop(TanhLayer):
    def fprop(self, inputs):
        return np.tanh(inputs) * 1.01


class TanhWithWrongBprop(TanhLayer):
    """A classic slip: 1 - y instead of 1 - y^2."""

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        return grads_wrt_outputs * (1. - outputs)


class AffineWithWrongWeightGrads(AffineLayer):
    def grads_wrt_params(self, inputs, grads_wrt_outputs):
        grads_wrt_weights, grads_wrt_biases = super().grads_wrt_params(inputs, grads_wrt_outputs)
        return [2. * grads_wrt_weights, grads_wrt_biases]


def test_check_fprop_prints_on_a_right_layer(capsys):
    checks.check_fprop(TanhLayer(), INPUTS, np.tanh(INPUTS))
    assert capsys.readouterr().out == 'TanhLayer.fprop gives the expected outputs.\n'


def test_check_fprop_raises_on_a_wrong_layer(capsys):
    with pytest.raises(CheckFailed) as raised:
        checks.check_fprop(TanhWithWrongFprop(), INPUTS, np.tanh(INPUTS))
    message = str(raised.value)
    assert message.startswith('TanhWithWrongFprop.fprop returned wrong values at [1, 2]')
    assert 'expected -0.53705' in message
    assert capsys.readouterr().out == ''
    assert issubclass(CheckFailed, AssertionError)


def test_check_fprop_reports_wrong_shape():
    class Transposed(TanhLayer):
        def fprop(self, inputs):
            return np.tanh(inputs).T

    with pytest.raises(CheckFailed, match=r'shape \(3, 2\), expected shape \(2, 3\)'):
        checks.check_fprop(Transposed(), INPUTS, np.tanh(INPUTS))


def test_check_bprop_prints_on_a_right_layer(capsys):
    expected = GRADS * (1. - np.tanh(INPUTS) ** 2)
    checks.check_bprop(TanhLayer(), INPUTS, GRADS, expected)
    assert 'TanhLayer.bprop gives the expected gradients' in capsys.readouterr().out


def test_check_bprop_raises_on_a_wrong_layer():
    expected = GRADS * (1. - np.tanh(INPUTS) ** 2)
    with pytest.raises(CheckFailed, match=r'^TanhWithWrongBprop\.bprop returned wrong values at \['):
        checks.check_bprop(TanhWithWrongBprop(), INPUTS, GRADS, expected)


def make_affine(cls=AffineLayer):
    rng = np.random.RandomState(5)
    return cls(3, 2, UniformInit(-1., 1., rng=rng), UniformInit(-1., 1., rng=rng))


def test_check_grads_wrt_params(capsys):
    layer = make_affine()
    grads = np.array([[1., 0.], [0., -1.]])
    expected = [grads.T.dot(INPUTS), grads.sum(axis=0)]
    checks.check_grads_wrt_params(layer, INPUTS, grads, expected)
    assert 'AffineLayer.grads_wrt_params gives the expected' in capsys.readouterr().out
    with pytest.raises(CheckFailed, match=r'grads_wrt_params\[0\] returned wrong values'):
        checks.check_grads_wrt_params(make_affine(AffineWithWrongWeightGrads), INPUTS, grads,
                                      expected)
    with pytest.raises(CheckFailed, match='returned 2 arrays, expected 3'):
        checks.check_grads_wrt_params(layer, INPUTS, grads, expected + [np.zeros(1)])


def test_check_gradients_passes_a_right_layer_and_restores_params(capsys):
    layer = make_affine()
    weights, biases = layer.weights.copy(), layer.biases.copy()
    checks.check_gradients(layer, input_shape=(4, 3))
    assert capsys.readouterr().out == 'AffineLayer: gradients agree with finite differences of fprop.\n'
    np.testing.assert_array_equal(layer.weights, weights)
    np.testing.assert_array_equal(layer.biases, biases)


def test_check_gradients_catches_one_minus_y_bprop(capsys):
    with pytest.raises(CheckFailed) as raised:
        checks.check_gradients(TanhWithWrongBprop())
    assert 'TanhWithWrongBprop.bprop (against finite differences of fprop)' in str(raised.value)
    assert capsys.readouterr().out == ''


def test_check_gradients_catches_wrong_param_grads():
    with pytest.raises(CheckFailed, match=r'grads_wrt_params\[0\] \(against finite differences'):
        checks.check_gradients(make_affine(AffineWithWrongWeightGrads), input_shape=(4, 3))


# No mutable default arguments anywhere in mlp.

MUTABLE_TYPES = (list, dict, set, bytearray, np.ndarray)


def mutable_defaults(function):
    """Names of the parameters of `function` whose default is a mutable container."""
    return [name for name, parameter in inspect.signature(function).parameters.items()
            if isinstance(parameter.default, MUTABLE_TYPES)]


def functions_defined_in(module):
    """Every function and method (incl. property accessors) defined in `module`."""
    found = []
    for name, value in vars(module).items():
        if inspect.isfunction(value) and value.__module__ == module.__name__:
            found.append((name, value))
        elif inspect.isclass(value) and value.__module__ == module.__name__:
            for attr_name, attr in vars(value).items():
                qualified = '{0}.{1}'.format(name, attr_name)
                if isinstance(attr, (staticmethod, classmethod)):
                    attr = attr.__func__
                if isinstance(attr, property):
                    found.extend((qualified, accessor) for accessor in (attr.fget, attr.fset)
                                 if accessor is not None)
                elif inspect.isfunction(attr):
                    found.append((qualified, attr))
    return found


def test_mutable_default_detector_works():
    def bad(a, b=[], c=None):
        return a, b, c

    assert mutable_defaults(bad) == ['b']
    assert mutable_defaults(lambda x=(), y=None, z='': x) == []


def test_no_mutable_default_arguments_in_mlp():
    modules = [mlp] + [importlib.import_module(info.name)
                       for info in pkgutil.walk_packages(mlp.__path__, 'mlp.')]
    names = {module.__name__ for module in modules}
    assert {'mlp.checks', 'mlp.data_providers', 'mlp.errors', 'mlp.initialisers', 'mlp.layers',
            'mlp.learning_rules', 'mlp.models', 'mlp.optimisers'} <= names
    offenders, count = [], 0
    for module in modules:
        for qualified, function in functions_defined_in(module):
            count += 1
            offenders.extend('{0}.{1}({2}=...)'.format(module.__name__, qualified, name)
                             for name in mutable_defaults(function))
    assert count > 100  # The walk really saw the package.
    assert offenders == []
