"""Tests of autograder.checks.plan (the layer kind, checks/layer.py): planning requests and judging the answers, in the parent.

No sandbox here: a small stand-in answers the planned requests in this process
with classes the test chooses (the reference layers, or reference layers with
one deliberate mistake), so each judge can be tested quickly and exactly.
"""

import json

import numpy as np
import pytest

import mlp.layers as reference_layers
from autograder.checks import base, registry, training
from autograder.checks import layer as layer_kind
from autograder.checks import plan as checks
from autograder.checks import oracle
from autograder.checks import recipes
from autograder.grade import single_threaded_blas
from autograder.sandbox.isolation import Request, Response
from autograder.course.spec import load_spec

LAB3 = '03_multiple_layer_models'
LAB5 = '05_activation_functions'


# A stand-in for the sandboxed child --------------------------------------------------


def answer(requests, classes, *, fail=()):
    """Answers requests the way the child runner does, with `classes` as the submission.

    Args:
        requests: Planned `Request`s.
        classes: Class name -> class playing the student's submission.
        fail: Request ids to leave unanswered (as if the child never replied).

    Returns:
        Request id -> `Response`.
    """
    responses = {}
    for request in requests:
        header = request.header
        if header['id'] in fail:
            continue
        arrays = [np.array(a, dtype=float) for a in request.arrays]
        try:
            if header['type'] == 'train':
                def resolve(name, source):
                    return classes[name] if source == 'submission' else oracle._resolve_reference_class(name, source)
                outputs, errors = recipes.train_and_predict(header, resolve, *arrays)
                returned, inputs_after = [outputs, errors], []
            elif header['type'] == 'sequence':
                responses[header['id']] = answer_sequence(header, arrays, classes)
                continue
            else:
                layer = classes[header['target']](**header['init']['kwargs'])
                if header.get('params') is not None:
                    layer.params = [arrays[i].copy() for i in header['params']]
                args = [arrays[a['array']].copy() for a in header['args']]
                value = getattr(layer, header['method'])(*args)
                returned = list(value) if isinstance(value, (list, tuple)) else [value]
                inputs_after = args if header.get('return_inputs') else []
        except Exception as error:  # noqa: BLE001 - reported like the child does
            responses[header['id']] = Response(header['id'], 'error', message='{0}: {1}'.format(
                type(error).__name__, error))
            continue
        returned = [np.array(a, dtype=float) for a in returned]
        responses[header['id']] = Response(
            header['id'], 'ok',
            header={'returned': 'array', 'num_returned': len(returned), 'num_inputs': len(inputs_after)},
            arrays=returned + [np.array(a, dtype=float) for a in inputs_after])
    return responses


def answer_sequence(header, arrays, classes):
    """A sequence request's answer: one layer, its steps in order, what each records (returned values)."""
    layer = classes[header['target']](**header['init']['kwargs'])

    def value_of(argument):
        if isinstance(argument, dict) and 'copy' in argument:
            return arrays[argument['copy']].copy()
        if isinstance(argument, dict) and 'list' in argument:
            return [value_of(item) for item in argument['list']]
        return argument

    recorded, layout = [], []
    for step in header['steps']:
        value = getattr(layer, step['method'])(*[value_of(a) for a in step.get('args', [])])
        counts = []
        for record in step.get('record', []):
            assert record == {'returned': True}, record  # all the layer kind's sequences record here
            values = list(value) if isinstance(value, (list, tuple)) else [value]
            recorded += [np.array(v, dtype=float) for v in values]
            counts.append(len(values))
        layout.append(counts)
    return Response(header['id'], 'ok', header={'returned': 'list', 'num_returned': len(recorded),
                                                'num_inputs': 0, 'records': layout}, arrays=recorded)


def grade_item(spec, grade_id, classes, public_only=False):
    """Plans, answers and judges every automatic check of one item."""
    item = next(item for item in spec.items if item.grade_id == grade_id)
    plans = checks.plan_item(spec, item, public_only=public_only)
    share = item.points / len(item.checks)
    with single_threaded_blas():  # as grade_submission does: small BLAS work runs faster so
        return [checks.judge_plan(plan, answer(plan.requests, classes), share) for plan in plans]


def reference_classes(spec):
    return {name: getattr(reference_layers, name) for name in spec.classes}


@pytest.fixture(scope='module')
def data_env(mnist_dir):
    """Points the oracle at the course's MNIST copy for training checks."""
    patch = pytest.MonkeyPatch()
    patch.setenv('MLP_DATA_DIR', str(mnist_dir))
    oracle.mnist_subset.cache_clear()
    yield mnist_dir
    patch.undo()


@pytest.fixture(scope='module')
def lab3():
    return load_spec(LAB3)


@pytest.fixture(scope='module')
def lab5():
    return load_spec(LAB5)


# Mistaken layers ---------------------------------------------------------------------


class TanhOneMinusY(reference_layers.TanhLayer):
    def bprop(self, inputs, outputs, grads_wrt_outputs):
        return grads_wrt_outputs * (1. - outputs)


class IdentityTanh(reference_layers.TanhLayer):
    def fprop(self, inputs):
        return inputs

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        return grads_wrt_outputs


class TanhInPlace(reference_layers.TanhLayer):
    def fprop(self, inputs):
        np.tanh(inputs, out=inputs)
        return inputs


class TanhTwoArrays(reference_layers.TanhLayer):
    def fprop(self, inputs):
        return [np.tanh(inputs), inputs]


class ReluGreaterEqual(reference_layers.ReluLayer):
    def bprop(self, inputs, outputs, grads_wrt_outputs):
        return grads_wrt_outputs * (inputs >= 0)


class ReluHalfAtZero(reference_layers.ReluLayer):
    def bprop(self, inputs, outputs, grads_wrt_outputs):
        return grads_wrt_outputs * np.where(inputs == 0, 0.5, inputs > 0)


class ReluNanAtZero(reference_layers.ReluLayer):
    def bprop(self, inputs, outputs, grads_wrt_outputs):
        with np.errstate(invalid='ignore', divide='ignore'):
            step = (np.sign(inputs) + 1.) / 2. * (inputs / inputs)
        return grads_wrt_outputs * step


class PReluGradsWithoutMin(reference_layers.ParametricReluLayer):
    def grads_wrt_params(self, inputs, grads_wrt_outputs):
        return [np.array([(grads_wrt_outputs * inputs).sum()])]


# The reference passes everything ------------------------------------------------------


@pytest.mark.parametrize('assignment', [LAB3, LAB5])
def test_the_reference_passes_every_automatic_check_with_full_points(assignment, data_env):
    spec = load_spec(assignment)
    classes = reference_classes(spec)
    for item in spec.items:
        if 'manual' in item.checks:
            assert checks.plan_item(spec, item) == []
            continue
        results = grade_item(spec, item.grade_id, classes)
        assert len(results) == len(item.checks)
        for result in results:
            assert result.status == 'passed', (item.grade_id, result.name, result.output)
        assert sum(r.score for r in results) == pytest.approx(item.points)
        assert sum(r.max_score for r in results) == pytest.approx(item.points)


# Fixed cases --------------------------------------------------------------------------


def test_one_minus_y_slip_fails_every_bprop_check_with_the_diagnosis(lab3):
    classes = dict(reference_classes(lab3), TanhLayer=TanhOneMinusY)
    results = grade_item(lab3, 'tanh_bprop', classes)
    assert [r.status for r in results] == ['failed'] * 5
    assert sum(r.score for r in results) == 0
    fixed_and_gradcheck = [r for r in results if r.kind in ('fixed', 'gradcheck')]
    for result in fixed_and_gradcheck:
        assert '1 - y instead of 1 - y^2' in result.output, result.output
        assert result.diagnosis == 'looks like d tanh/dx was taken as 1 - y instead of 1 - y^2'
    # fprop is untouched by the slip.
    assert all(r.status == 'passed' for r in grade_item(lab3, 'tanh_fprop', classes))


def test_a_visible_case_shows_index_got_and_expected(lab3):
    classes = dict(reference_classes(lab3), TanhLayer=TanhOneMinusY)
    notebook = next(r for r in grade_item(lab3, 'tanh_bprop', classes) if r.public and r.kind == 'fixed')
    case = lab3.cases['notebook']
    inputs, grads = np.array(case.bprop_inputs), np.array(case.grads_wrt_outputs)
    outputs = np.tanh(inputs)
    got, expected = grads * (1. - outputs), grads * (1. - outputs ** 2)
    worst = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape)
    assert 'at [{0}, {1}]'.format(*worst) in notebook.output
    assert 'got {0:.6g}'.format(got[worst]) in notebook.output
    assert 'expected {0:.6g}'.format(expected[worst]) in notebook.output


def _hidden_values(spec, case_name, class_name, method):
    """The expected values of a hidden fixed case, computed with the reference."""
    case = spec.cases[case_name]
    fprop_inputs, bprop_inputs, grads = layer_kind.case_arrays(case)
    layer = getattr(reference_layers, class_name)(**spec.init_kwargs(class_name))
    if method == 'fprop':
        return layer.fprop(fprop_inputs)
    return layer.bprop(bprop_inputs, layer.fprop(bprop_inputs), grads)


def _digit_strings(values):
    """Printed forms of the non-trivial values (what a message could have leaked)."""
    forms = set()
    for value in np.ravel(values):
        if not np.isfinite(value) or value == round(value):
            continue  # 0, 1, -1: these digits appear in any message
        for pattern in ('{0:.6g}', '{0:.4g}', '{0:.3g}', '{0:.3f}', '{0:.2f}'):
            text = pattern.format(value).lstrip('-')
            if len(text.replace('.', '').lstrip('0')) >= 2:
                forms.add(text)
    return forms


@pytest.mark.parametrize('case_name', ['edges', 'random'])
def test_a_hidden_case_never_shows_values_or_positions(lab3, case_name):
    classes = dict(reference_classes(lab3), TanhLayer=TanhOneMinusY)
    results = [r for r in grade_item(lab3, 'tanh_bprop', classes)
               if r.kind == 'fixed' and case_name in r.name]
    assert len(results) == 1
    hidden = results[0]
    assert hidden.status == 'failed' and not hidden.public
    assert 'got' not in hidden.output and 'expected' not in hidden.output
    assert ' at [' not in hidden.output
    expected = _hidden_values(lab3, case_name, 'TanhLayer', 'bprop')
    leaked = [text for text in _digit_strings(expected) if text in hidden.output]
    assert leaked == [], hidden.output
    # The same comparison in the open would have shown the worst value: the test can fail.
    assert 'expected' in base.compare.compare_arrays(np.zeros_like(expected), expected, 'x').message


@pytest.mark.parametrize('mistake, passes', [
    (ReluGreaterEqual, True),
    (ReluHalfAtZero, True),      # any subgradient in [0, 1] at the kink
    (ReluNanAtZero, False),      # NaN is never a derivative
])
def test_relu_derivative_at_exactly_zero(lab3, mistake, passes):
    classes = dict(reference_classes(lab3), ReluLayer=mistake)
    edges = next(r for r in grade_item(lab3, 'relu_bprop', classes) if 'edges' in r.name)
    assert lab3.cases['edges'].bprop_inputs[0][0] == 0.0  # the case really probes x = 0
    assert (edges.status == 'passed') is passes, edges.output


def test_grads_wrt_params_mistake_fails_and_is_not_shown_for_hidden_cases(lab5):
    classes = dict(reference_classes(lab5), ParametricReluLayer=PReluGradsWithoutMin)
    results = grade_item(lab5, 'prelu_grads_wrt_params', classes)
    assert [r.status for r in results] == ['failed'] * 4
    public = next(r for r in results if r.public and r.kind == 'fixed')
    assert 'got' in public.output and 'expected' in public.output
    for hidden in (r for r in results if not r.public):
        assert 'got' not in hidden.output


# Properties ---------------------------------------------------------------------------


def test_identity_layer_earns_nothing_for_properties(lab3):
    """Shape and immutability are worth nothing for a function that computes wrong values."""
    classes = dict(reference_classes(lab3), TanhLayer=IdentityTanh)
    for grade_id in ('tanh_fprop', 'tanh_bprop'):
        prop = next(r for r in grade_item(lab3, grade_id, classes) if r.kind == 'property')
        assert prop.status == 'failed' and prop.score == 0.0
        assert 'wrong values' in prop.output


def test_in_place_modification_is_reported_and_costs_part_of_the_property_points(lab3):
    classes = dict(reference_classes(lab3), TanhLayer=TanhInPlace)
    prop = next(r for r in grade_item(lab3, 'tanh_fprop', classes) if r.kind == 'property')
    assert prop.status == 'failed'
    assert 'modifies its argument inputs in place' in prop.output
    assert 0 < prop.score < prop.max_score


def test_returning_a_list_instead_of_an_array_fails_clearly(lab3):
    classes = dict(reference_classes(lab3), TanhLayer=TanhTwoArrays)
    results = grade_item(lab3, 'tanh_fprop', classes)
    assert all(r.status == 'failed' for r in results)
    assert all('returned 2 arrays, expected a single array' in r.output for r in results)


# Missing answers ----------------------------------------------------------------------


def test_a_missing_or_timed_out_answer_is_an_error_or_timeout_not_an_exception(lab3):
    item = next(item for item in lab3.items if item.grade_id == 'tanh_fprop')
    plan = checks.plan_item(lab3, item)[0]
    responses = answer(plan.requests, reference_classes(lab3), fail={plan.requests[0].id})
    result = checks.judge_plan(plan, responses, 0.5)
    assert (result.status, result.score) == ('error', 0.0)
    assert 'no answer from the sandbox' in result.output
    timeout = {plan.requests[0].id: Response(plan.requests[0].id, 'timeout', message='ran over 10 s')}
    result = checks.judge_plan(plan, timeout, 0.5)
    assert (result.status, result.score) == ('timeout', 0.0)
    assert 'ran over 10 s' in result.output


# Training -----------------------------------------------------------------------------


def test_training_with_an_identity_layer_does_not_pass_although_it_learns(lab3, data_env):
    """An identity 'activation' trains a linear model about as accurate as the reference:
    only following the reference run's per-epoch errors tells it apart."""
    classes = dict(reference_classes(lab3), TanhLayer=IdentityTanh)
    result, = grade_item(lab3, 'tanh_training', classes)
    assert result.status == 'failed' and result.score == 0
    assert 'does not follow the reference run' in result.output
    # It does learn: accuracy alone would have let it pass.
    accuracy, reference = result.details['student_accuracy'], result.details['reference_accuracy']
    assert accuracy >= reference - lab3.training.accuracy_tolerance


def test_training_with_the_one_minus_y_slip_fails(lab3, data_env):
    classes = dict(reference_classes(lab3), TanhLayer=TanhOneMinusY)
    result, = grade_item(lab3, 'tanh_training', classes)
    assert result.status == 'failed' and result.kind == 'training'
    assert result.target == 'TanhLayer'


@pytest.mark.parametrize('rows', [1, 7, 25, 61])
def test_the_evaluation_outputs_come_a_training_batch_at_a_time_in_order(rows):
    """Batch by batch, as the course's optimiser evaluates: the whole set's outputs, row for row."""
    from mlp.models import MultipleLayerModel
    rng = np.random.RandomState(3)
    model = MultipleLayerModel([reference_layers.AffineLayer(6, 4), reference_layers.TanhLayer(),
                                reference_layers.AffineLayer(4, 3)])
    inputs = rng.normal(size=(rows, 6))
    seen = []
    original = model.fprop
    model.fprop = lambda batch: seen.append(len(batch)) or original(batch)
    outputs = recipes._evaluation_outputs(model, {'layers': [], 'batch_size': 25}, inputs)
    assert seen == [min(25, rows - start) for start in range(0, rows, 25)]
    np.testing.assert_allclose(outputs, original(inputs)[-1], rtol=1e-12, atol=1e-12)


def test_training_departure_measure():
    reference = [1.0, 0.5, 0.25]
    assert training.training_departure([1.0, 0.5, 0.25], reference, 0.01) is None
    assert training.training_departure([1.005, 0.5, 0.25], reference, 0.01) is None
    message = training.training_departure([1.0, 0.6, 0.25], reference, 0.01)
    assert '20.0%' in message and 'epoch 2' in message
    assert 'epoch errors' in training.training_departure([1.0], reference, 0.01)
    assert training.training_departure([1.0, np.nan, 0.25], reference, 0.01) is not None


# What the child is sent ---------------------------------------------------------------


@pytest.mark.parametrize('assignment', [LAB3, LAB5])
def test_no_request_carries_the_answer_to_a_scored_fprop_check(assignment):
    """bprop needs the outputs y = f(x); those must never answer an fprop check that is scored
    against the reference (hidden fixed cases and property checks; the notebook's own test
    arrays and their outputs are printed in the notebook anyway)."""
    spec = load_spec(assignment)
    requests, answers = [], []
    for item in spec.items:
        if 'manual' in item.checks:
            continue
        for plan in checks.plan_item(spec, item):
            requests.extend(plan.requests)
            scored = plan.kind == 'property' or (plan.kind == 'fixed' and not plan.public)
            for request in plan.requests:
                header = request.header
                if header['type'] == 'call' and header['method'] == 'fprop' and scored:
                    layer = getattr(reference_layers, header['target'])(**header['init']['kwargs'])
                    answers.append(layer.fprop(np.array(request.arrays[0])))
    assert answers
    for request in requests:
        if request.header['type'] != 'call' or request.header['method'] != 'bprop':
            continue
        for sent in request.arrays:
            for secret in answers:
                assert not (sent.shape == secret.shape and np.allclose(sent, secret)), request.id


def test_requests_are_plain_data():
    spec = load_spec(LAB5)
    for item in spec.items:
        if 'manual' in item.checks:
            continue
        for plan in checks.plan_item(spec, item):
            for request in plan.requests:
                json.dumps(request.header)
                assert all(isinstance(a, np.ndarray) and a.dtype == np.float64 for a in request.arrays)


def test_public_only_keeps_notebook_cases_gradchecks_and_properties(lab3):
    for item in lab3.items:
        if 'manual' in item.checks:
            continue
        plans = checks.plan_item(lab3, item, public_only=True)
        assert all(plan.public for plan in plans)
        kinds = sorted(plan.kind for plan in plans)
        if item.method is None:
            assert kinds == []
        else:
            assert 'fixed' in kinds and 'training' not in kinds
            assert all('hidden' not in plan.name for plan in plans)


def test_every_check_name_says_what_it_tests(lab5):
    item = next(item for item in lab5.items if item.grade_id == 'prelu_bprop')
    names = [plan.name for plan in checks.plan_item(lab5, item)]
    assert names[0] == "ParametricReluLayer.bprop matches the reference on the notebook's test arrays"
    assert names[1] == 'ParametricReluLayer.bprop matches the reference on hidden test case "edges"'
    assert 'finite differences' in names[3] and 'properties' in names[4]


def test_unknown_check_in_a_plan_is_a_value_error(lab3):
    item = next(item for item in lab3.items if item.grade_id == 'tanh_fprop')
    with pytest.raises(ValueError, match='unknown check'):
        registry.planner_for(lab3, item).plan('fuzzing')


def test_request_helper_refers_to_arrays_by_index():
    request = base.call_request('id-1', 'TanhLayer', {}, 'bprop', [np.ones((2, 2))] * 3, return_inputs=True)
    assert isinstance(request, Request)
    assert request.header['args'] == [{'array': 0}, {'array': 1}, {'array': 2}]
    assert request.header['source'] == 'submission' and request.header['return_inputs'] is True


def test_a_students_exception_message_is_hidden_on_hidden_cases():
    """A submission must not be able to print hidden inputs through its own exception."""
    from autograder.checks.plan import CheckPlan, judge_plan
    from autograder.sandbox.isolation import Response
    from autograder.course.spec import Item

    item = Item('tanh_fprop', 'TanhLayer.fprop', 2.0, ('fixed:edges',))
    secret = 'inputs were [[0.0, -0.0, 1e-07]]'
    response = Response(id='r', status='error', message='ValueError: ' + secret,
                        header={'error_kind': 'student', 'error': 'ValueError: ' + secret})

    def judge(responses):
        base.response(responses, 'r', 'TanhLayer.fprop')

    for public in (False, True):
        plan = CheckPlan(item, 'fixed:edges', 'fixed', public, 'a case', [], judge)
        result = judge_plan(plan, {'r': response}, 1.0)
        assert result.status == 'error' and 'ValueError' in result.output
        assert (secret in result.output) == public
    training = CheckPlan(item, 'training', 'training', False, 'a run', [], judge)
    assert secret in judge_plan(training, {'r': response}, 1.0).output  # MNIST inputs: not secret


@pytest.mark.parametrize('compressed', [False, True])
def test_leading_rows_reads_the_same_rows_as_a_full_load(tmp_path, compressed):
    from autograder.checks.oracle import leading_rows
    rng = np.random.RandomState(3)
    inputs = rng.uniform(size=(50, 7)).astype(np.float16)
    targets = rng.randint(0, 10, size=50).astype(np.int8)
    path = tmp_path / 'split.npz'
    (np.savez_compressed if compressed else np.savez)(path, inputs=inputs, targets=targets)
    for rows in (0, 1, 13, 50, 80):
        assert np.array_equal(leading_rows(path, 'inputs', rows), inputs[:rows])
        assert leading_rows(path, 'inputs', rows).dtype == np.float16
        assert np.array_equal(leading_rows(path, 'targets', rows), targets[:rows])
    fortran = tmp_path / 'fortran.npz'
    np.savez(fortran, inputs=np.asfortranarray(inputs))
    assert np.array_equal(leading_rows(fortran, 'inputs', 5), inputs[:5])


def test_the_mnist_subset_matches_the_data_provider_files(mnist_dir):
    from autograder.checks.oracle import leading_rows
    with np.load(mnist_dir / 'mnist-train.npz') as train:
        expected = train['inputs'][:300]
    assert np.array_equal(leading_rows(mnist_dir / 'mnist-train.npz', 'inputs', 300), expected)
