"""Planning and judging the checks of a graded item.

TRUSTED. For every check named in the spec, `plan_item` builds the requests
the sandboxed child must answer (plain data: a header and float64 arrays)
and a judge that turns the child's responses into a `CheckResult`. All
expected values, tolerances and comparisons stay here, in the parent; the
child only ever sees inputs. Inputs used to score bprop differ from those
used to score fprop, so the reference outputs handed to bprop never answer
an fprop case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from mlp import checks as compare

from autograder.checks import diagnose
from autograder.checks import oracle
from autograder.results import CheckResult
from autograder.sandbox.isolation import Request, Response
from autograder.course.spec import AssignmentSpec, Case, Item

GRADCHECK_SHAPE = (3, 4)
PROPERTY_SHAPE = (5, 4)
LARGE_MAGNITUDE = 1e3
TRAINING_REQUEST_SECONDS = 60.0  # a training run takes well under a second on an idle core
CHECK_TITLES = {
    'gradcheck': 'agrees with central finite differences on random inputs',
    'property': 'properties: output shape, inputs left unmodified, finite for inputs of magnitude 1e3, batch-size independent',
    'training': 'a short seeded MNIST training run using this class matches the reference run',
    'manual': 'written answer (graded by a person)',
}


@dataclass
class Verdict:
    """What a judge concluded: the fraction of the check's points earned and why."""

    fraction: float
    status: str
    output: str = ''
    diagnosis: str = ''
    details: dict = field(default_factory=dict)


@dataclass
class CheckPlan:
    """A check ready to run: its requests and the judge of their responses."""

    item: Item
    check: str
    kind: str
    public: bool
    name: str
    requests: list[Request]
    judge: Callable[[dict[str, Response]], Verdict]


class ResponseProblem(Exception):
    """A needed response is missing or failed; carries the check status to report.

    Attributes:
        status: The check status to report ('error', 'timeout', 'failed').
        redacted: The message to show for a hidden case, when the full one
            could carry the case's inputs (a student's exception message can
            print its arguments); None when the full message is safe.
    """

    def __init__(self, status: str, message: str, redacted: str | None = None):
        super().__init__(message)
        self.status = status
        self.redacted = redacted


def _call(request_id: str, class_name: str, init_kwargs: dict, method: str,
          arrays: list[np.ndarray], *, params: list[np.ndarray] | None = None,
          return_inputs: bool = False) -> Request:
    """A request to call `ClassName(**init_kwargs).method(*arrays)` in the child."""
    arrays = [np.asarray(a, dtype=float) for a in arrays]
    all_arrays = list(arrays) + [np.asarray(p, dtype=float) for p in (params or [])]
    header = {
        'type': 'call', 'id': request_id, 'target': class_name, 'source': 'submission',
        'init': {'args': [], 'kwargs': init_kwargs, 'rng_seed': None},
        'params': list(range(len(arrays), len(all_arrays))) if params else None,
        'method': method, 'args': [{'array': i} for i in range(len(arrays))],
        'return_inputs': return_inputs,
    }
    return Request(header=header, arrays=all_arrays)


def _response(responses: dict[str, Response], request_id: str, what: str) -> Response:
    """A successful response, or a ResponseProblem saying what went wrong."""
    response = responses.get(request_id)
    if response is None:
        raise ResponseProblem('error', '{0}: no answer from the sandbox.'.format(what))
    if response.status == 'timeout':
        raise ResponseProblem('timeout', '{0}: {1}'.format(what, response.message))
    if response.status != 'ok':
        redacted = None
        if response.header.get('error_kind') == 'student':
            exception_type = str(response.header.get('error', '')).split(':', 1)[0] or 'an exception'
            redacted = ('{0} raised {1} on this hidden case (its message is not shown, since it '
                        'could print the hidden inputs; the public checks show messages).'.format(
                            what, exception_type))
        raise ResponseProblem('error', '{0}: {1}'.format(what, response.message), redacted)
    return response


def _result(responses: dict[str, Response], request_id: str, what: str) -> list[np.ndarray]:
    """The arrays the student's method returned (not the inputs sent back after the call)."""
    return _response(responses, request_id, what).returned


def _single(arrays: list[np.ndarray], what: str) -> np.ndarray:
    """The one array a method returned (fprop and bprop return one array, not a list)."""
    if len(arrays) < 1:
        raise ResponseProblem('failed', '{0} returned nothing.'.format(what))
    if len(arrays) > 1:
        raise ResponseProblem('failed', '{0} returned {1} arrays, expected a single array.'.format(
            what, len(arrays)))
    return arrays[0]


def _case_arrays(case: Case, rng_offset: int = 0):
    """(fprop inputs, bprop inputs, grads_wrt_outputs for bprop) of a case, float64."""
    if case.inputs is not None:
        inputs = np.array(case.inputs, dtype=float)
        bprop_inputs = np.array(case.bprop_inputs if case.bprop_inputs is not None
                                else case.inputs, dtype=float)
        grads = np.array(case.grads_wrt_outputs, dtype=float)
        return inputs, bprop_inputs, grads
    rng = np.random.RandomState(case.seed + rng_offset)
    inputs = rng.uniform(-case.scale, case.scale, size=case.shape)
    bprop_inputs = rng.uniform(-case.scale, case.scale, size=case.shape)
    grads = rng.normal(size=case.shape)
    return inputs, bprop_inputs, grads


def _accept_kink(spec: AssignmentSpec, class_name: str, inputs: np.ndarray, got: np.ndarray,
                 expected_left: np.ndarray, expected_right: np.ndarray) -> np.ndarray:
    """Where the derivative is ambiguous (x == 0), the expected value the student chose.

    At exact zeros of a layer with a kink, any value between the left and
    right derivatives is a valid subgradient; the closest one to the
    student's answer becomes the expected value there.
    """
    expected = np.array(expected_right, dtype=float)
    if class_name not in spec.kink_at_zero or got.shape != expected.shape:
        return expected
    zeros = (inputs == 0.) & np.isfinite(got)
    low = np.minimum(expected_left, expected_right)
    high = np.maximum(expected_left, expected_right)
    expected[zeros] = np.clip(got[zeros], low[zeros], high[zeros])
    return expected


class ItemPlanner:
    """Builds the check plans of one graded item."""

    def __init__(self, spec: AssignmentSpec, item: Item):
        self.spec = spec
        self.item = item
        self.class_name = item.class_name
        self.method = item.method
        self.init_kwargs = spec.init_kwargs(self.class_name)
        self.what = item.target

    def reference(self):
        return oracle.reference_layer(self.class_name, self.init_kwargs)

    def _id(self, check: str, part: str) -> str:
        return '{0}/{1}/{2}'.format(self.item.grade_id, check, part)

    def plan(self, check: str) -> CheckPlan:
        kind = check.split(':', 1)[0]
        if kind == 'fixed':
            case = self.spec.cases[check.split(':', 1)[1]]
            title = ('the notebook\'s test arrays' if case.public
                     else 'hidden test case "{0}"'.format(case.name))
            requests, judge = getattr(self, '_fixed_' + self.method)(check, case)
            return CheckPlan(self.item, check, 'fixed', case.public,
                             '{0} matches the reference on {1}'.format(self.what, title),
                             requests, judge)
        if kind == 'gradcheck':
            requests, judge = getattr(self, '_gradcheck_' + self.method)(check)
            return CheckPlan(self.item, check, kind, True,
                             '{0} {1}'.format(self.what, CHECK_TITLES[kind]), requests, judge)
        if kind == 'property':
            requests, judge = getattr(self, '_property_' + self.method)(check)
            return CheckPlan(self.item, check, kind, True,
                             '{0} {1}'.format(self.what, CHECK_TITLES[kind]), requests, judge)
        if kind == 'training':
            requests, judge = self._training(check)
            return CheckPlan(self.item, check, kind, False,
                             '{0}: {1}'.format(self.what, CHECK_TITLES[kind]), requests, judge)
        raise ValueError('unknown check {0!r} for item {1}'.format(check, self.item.grade_id))

    # fixed cases -----------------------------------------------------------

    def _fixed_fprop(self, check, case):
        inputs, _, _ = _case_arrays(case)
        request_id = self._id(check, 'fprop')
        expected = self.reference().fprop(inputs.copy())

        def judge(responses):
            got = _single(_result(responses, request_id, self.what), self.what)
            comparison = compare.compare_arrays(got, expected, self.what, reveal=case.public)
            if comparison.ok:
                return Verdict(1.0, 'passed')
            hint = diagnose.diagnose_fprop(self.class_name, inputs, got)
            return Verdict(0.0, 'failed', _with_hint(comparison.message, hint), hint)

        return [_call(request_id, self.class_name, self.init_kwargs, 'fprop', [inputs])], judge

    def _fixed_bprop(self, check, case):
        _, inputs, grads = _case_arrays(case)
        reference = self.reference()
        outputs = reference.fprop(inputs.copy())
        request_id = self._id(check, 'bprop')
        right = reference.bprop(oracle.one_sided_zero_inputs(inputs, 1.), outputs, grads)
        left = reference.bprop(oracle.one_sided_zero_inputs(inputs, -1.), outputs, grads)

        def judge(responses):
            got = _single(_result(responses, request_id, self.what), self.what)
            expected = _accept_kink(self.spec, self.class_name, inputs, got, left, right)
            comparison = compare.compare_arrays(got, expected, self.what, reveal=case.public)
            if comparison.ok:
                return Verdict(1.0, 'passed')
            hint = diagnose.diagnose_bprop(self.class_name, inputs, outputs, grads, got)
            return Verdict(0.0, 'failed', _with_hint(comparison.message, hint), hint)

        request = _call(request_id, self.class_name, self.init_kwargs, 'bprop',
                        [inputs, outputs, grads])
        return [request], judge

    def _fixed_grads_wrt_params(self, check, case):
        _, inputs, grads = _case_arrays(case, rng_offset=1)
        expected = self.reference().grads_wrt_params(inputs, grads)
        request_id = self._id(check, 'grads')

        def judge(responses):
            got = _result(responses, request_id, self.what)
            if len(got) != len(expected):
                return Verdict(0.0, 'failed', '{0} returned {1} arrays, expected {2} (one per parameter).'.format(
                    self.what, len(got), len(expected)))
            for index, (got_grad, expected_grad) in enumerate(zip(got, expected)):
                comparison = compare.compare_arrays(
                    got_grad, expected_grad, '{0}[{1}]'.format(self.what, index), reveal=case.public)
                if not comparison.ok:
                    return Verdict(0.0, 'failed', comparison.message)
            return Verdict(1.0, 'passed')

        request = _call(request_id, self.class_name, self.init_kwargs, 'grads_wrt_params',
                        [inputs, grads])
        return [request], judge

    # finite differences ------------------------------------------------------

    def _gradcheck_inputs(self, seed_offset: int):
        """Random inputs kept at least 0.1 away from 0, where layers may have a kink."""
        rng = np.random.RandomState(9176 + seed_offset)
        magnitudes = rng.uniform(0.1, 2.0, size=GRADCHECK_SHAPE)
        signs = np.where(rng.uniform(size=GRADCHECK_SHAPE) < 0.5, -1., 1.)
        return magnitudes * signs, rng.normal(size=GRADCHECK_SHAPE)

    def _gradcheck_bprop(self, check):
        inputs, grads = self._gradcheck_inputs(0)
        reference = self.reference()
        outputs = reference.fprop(inputs.copy())
        exact = reference.bprop(inputs, outputs, grads)
        perturbed = compare.perturbed_inputs(inputs)
        requests = [_call(self._id(check, 'bprop'), self.class_name, self.init_kwargs,
                          'bprop', [inputs, outputs, grads])]
        for k, (_, plus, minus) in enumerate(perturbed):
            requests.append(_call(self._id(check, 'plus{0}'.format(k)), self.class_name,
                                  self.init_kwargs, 'fprop', [plus]))
            requests.append(_call(self._id(check, 'minus{0}'.format(k)), self.class_name,
                                  self.init_kwargs, 'fprop', [minus]))
        fprop_name = self.class_name + '.fprop'

        def judge(responses):
            got = _single(_result(responses, self._id(check, 'bprop'), self.what), self.what)
            truth, source = _derivative_to_judge_by(
                responses, [self._id(check, 'plus{0}'.format(k)) for k in range(len(perturbed))],
                [self._id(check, 'minus{0}'.format(k)) for k in range(len(perturbed))],
                grads, exact, fprop_name)
            comparison = compare.compare_arrays(got, truth, self.what, compare.GRADCHECK_RTOL,
                                                compare.GRADCHECK_ATOL)
            if comparison.ok:
                return Verdict(1.0, 'passed')
            hint = diagnose.diagnose_bprop(self.class_name, inputs, outputs, grads, got)
            message = '{0} (compared with {1}).'.format(comparison.message.rstrip('.'), source)
            return Verdict(0.0, 'failed', _with_hint(message, hint), hint)

        return requests, judge

    def _gradcheck_grads_wrt_params(self, check):
        inputs, grads = self._gradcheck_inputs(1)
        reference = self.reference()
        params = [np.array(p, dtype=float) for p in reference.params]
        exact = reference.grads_wrt_params(inputs, grads)
        requests = [_call(self._id(check, 'grads'), self.class_name, self.init_kwargs,
                          'grads_wrt_params', [inputs, grads])]
        layout = []
        for p_index, param in enumerate(params):
            for k, (_, plus, minus) in enumerate(compare.perturbed_inputs(param)):
                for sign, value in (('plus', plus), ('minus', minus)):
                    values = [value if j == p_index else other for j, other in enumerate(params)]
                    requests.append(_call(self._id(check, '{0}{1}.{2}'.format(sign, p_index, k)),
                                          self.class_name, self.init_kwargs, 'fprop', [inputs],
                                          params=values))
            layout.append((p_index, param.size))

        def judge(responses):
            got = _result(responses, self._id(check, 'grads'), self.what)
            if len(got) != len(exact):
                return Verdict(0.0, 'failed', '{0} returned {1} arrays, expected {2}.'.format(
                    self.what, len(got), len(exact)))
            for p_index, size in layout:
                truth, source = _derivative_to_judge_by(
                    responses, [self._id(check, 'plus{0}.{1}'.format(p_index, k)) for k in range(size)],
                    [self._id(check, 'minus{0}.{1}'.format(p_index, k)) for k in range(size)],
                    grads, exact[p_index], self.what)
                comparison = compare.compare_arrays(
                    got[p_index], truth, '{0}[{1}]'.format(self.what, p_index),
                    compare.GRADCHECK_RTOL, compare.GRADCHECK_ATOL)
                if not comparison.ok:
                    return Verdict(0.0, 'failed', '{0} (compared with {1}).'.format(
                        comparison.message.rstrip('.'), source))
            return Verdict(1.0, 'passed')

        return requests, judge

    # properties ------------------------------------------------------------

    def _property_inputs(self, seed_offset: int = 0):
        """Random inputs, inputs of magnitude 1e3 (and 0), and output gradients.

        fprop and bprop use different seeds: bprop is sent the reference
        outputs of its inputs, which must never answer an fprop check.
        """
        rng = np.random.RandomState(4242 + seed_offset)
        inputs = rng.uniform(-3., 3., size=PROPERTY_SHAPE)
        large = rng.choice([-LARGE_MAGNITUDE, LARGE_MAGNITUDE, 0.], size=PROPERTY_SHAPE)
        return inputs, large, rng.normal(size=PROPERTY_SHAPE)

    def _property_fprop(self, check):
        inputs, large, _ = self._property_inputs()
        reference = self.reference()
        expected, expected_large = reference.fprop(inputs.copy()), reference.fprop(large.copy())
        ids = [self._id(check, part) for part in ('full', 'large', 'half')]
        requests = [
            _call(ids[0], self.class_name, self.init_kwargs, 'fprop', [inputs], return_inputs=True),
            _call(ids[1], self.class_name, self.init_kwargs, 'fprop', [large]),
            _call(ids[2], self.class_name, self.init_kwargs, 'fprop', [inputs[:2]]),
        ]

        def judge(responses):
            response = _response(responses, ids[0], self.what)
            full = _single(response.returned, self.what)
            problems = _shape_and_mutation(self.what, full, expected, [inputs], response.inputs_after)
            problems += _finite_large(self.what, responses, ids[1], expected_large)
            problems += _batch_independence(self.what, responses, ids[2], full)
            return _property_verdict(problems, 4, _values_right(self.what, full, expected))

        return requests, judge

    def _property_bprop(self, check):
        inputs, large, grads = self._property_inputs(seed_offset=1)
        reference = self.reference()
        outputs = reference.fprop(inputs.copy())
        expected = reference.bprop(inputs, outputs, grads)
        ids = [self._id(check, part) for part in ('full', 'large', 'half')]
        large = np.where(large == 0., LARGE_MAGNITUDE, large)  # away from any kink at 0
        large_outputs = reference.fprop(large.copy())
        large_request = _call(ids[1], self.class_name, self.init_kwargs, 'bprop',
                              [large, large_outputs, grads])
        expected_large = reference.bprop(large, large_outputs, grads)
        requests = [
            _call(ids[0], self.class_name, self.init_kwargs, 'bprop', [inputs, outputs, grads],
                  return_inputs=True),
            large_request,
            _call(ids[2], self.class_name, self.init_kwargs, 'bprop',
                  [inputs[:2], outputs[:2], grads[:2]]),
        ]

        def judge(responses):
            response = _response(responses, ids[0], self.what)
            full = _single(response.returned, self.what)
            problems = _shape_and_mutation(self.what, full, expected, [inputs, outputs, grads],
                                           response.inputs_after)
            problems += _finite_large(self.what, responses, ids[1], expected_large)
            problems += _batch_independence(self.what, responses, ids[2], full)
            return _property_verdict(problems, 4, _values_right(self.what, full, expected))

        return requests, judge

    # training --------------------------------------------------------------

    def _training(self, check):
        training = self.spec.training
        recipe = {
            'seed': training.seed, 'learning_rate': training.learning_rate,
            'batch_size': training.batch_size, 'num_epochs': training.num_epochs,
            'error': 'CrossEntropySoftmaxError',
            'layers': [
                {'class': 'AffineLayer', 'source': 'mlp.layers', 'init_scale': training.init_scale,
                 'kwargs': {'input_dim': 784, 'output_dim': training.hidden_dim}},
                {'class': self.class_name, 'source': 'submission', 'kwargs': self.init_kwargs,
                 'init_scale': None},
                {'class': 'AffineLayer', 'source': 'mlp.layers', 'init_scale': training.init_scale,
                 'kwargs': {'input_dim': training.hidden_dim, 'output_dim': 10}},
            ],
        }
        request_id = self._id(check, 'run')
        try:
            train_inputs, train_targets, eval_inputs, eval_labels = oracle.mnist_subset(
                training.num_train, training.num_eval)
        except oracle.OracleError as error:
            message = 'the grader could not load MNIST for the training check: {0}'.format(error)

            def unavailable(responses):
                return Verdict(0.0, 'error', message)

            return [], unavailable
        header = dict(recipe, type='train', id=request_id)
        request = Request(header=header, arrays=[train_inputs, train_targets, eval_inputs],
                          timeout=TRAINING_REQUEST_SECONDS)
        what = '{0} in a {1}-{2}-10 model'.format(self.class_name, 784, training.hidden_dim)

        def judge(responses):
            arrays = _result(responses, request_id, 'training run with ' + what)
            reference_accuracy, reference_errors = oracle.reference_training_run(
                recipe, training.num_train, training.num_eval)
            if len(arrays) < 2 or arrays[0].shape != (training.num_eval, 10):
                return Verdict(0.0, 'failed', 'the training run with {0} returned outputs of the wrong shape.'.format(what))
            outputs, errors = arrays[0], arrays[1]
            details = {'student_errors': [float(e) for e in errors.ravel()],
                       'reference_errors': [float(e) for e in reference_errors],
                       'reference_accuracy': reference_accuracy}
            if not np.all(np.isfinite(outputs)) or not np.all(np.isfinite(errors)):
                return Verdict(0.0, 'failed', 'training with {0} diverged: the outputs contain NaN or inf '
                               '(check fprop/bprop for overflow).'.format(what), details=details)
            accuracy = float(np.mean(outputs.argmax(-1) == eval_labels))
            details['student_accuracy'] = accuracy
            summary = 'held-out accuracy after {0} epochs: {1:.1%} (reference {2:.1%})'.format(
                training.num_epochs, accuracy, reference_accuracy)
            departure = _training_departure(errors, reference_errors, training.error_rtol)
            if departure is not None:
                return Verdict(0.0, 'failed', 'training with {0} does not follow the reference run '
                               '(same seed, data and initial weights): {1}; {2}; this usually means '
                               'fprop or bprop is wrong.'.format(what, departure, summary),
                               details=details)
            if accuracy >= reference_accuracy - training.accuracy_tolerance:
                return Verdict(1.0, 'passed', summary + '.', details=details)
            return Verdict(0.0, 'failed', 'training with {0} learns less than the reference: {1}; '
                           'this usually means bprop is wrong.'.format(what, summary), details=details)

        return [request], judge


def _training_departure(errors: np.ndarray, reference_errors, rtol: float) -> str | None:
    """Where a training run's per-epoch mean errors leave the reference run's, or None.

    A seeded run of a correct layer repeats the reference run up to rounding,
    so its mean training error per epoch stays within `rtol` (relative) of
    the reference's. A wrong layer, or a stand-in such as the identity that
    still learns a linear model, does not.
    """
    errors = np.asarray(errors, dtype=float).ravel()
    reference = np.asarray(reference_errors, dtype=float).ravel()
    if errors.shape != reference.shape:
        return 'it reported {0} epoch errors instead of {1}'.format(errors.size, reference.size)
    relative = np.abs(errors - reference) / np.maximum(np.abs(reference), 1e-12)
    if np.all(relative <= rtol):
        return None
    worst = int(np.argmax(np.where(np.isfinite(relative), relative, np.inf)))
    return 'its mean training error differs from the reference run\'s by up to {0:.1%} (epoch {1})'.format(
        relative[worst], worst + 1)


def _derivative_to_judge_by(responses, plus_ids, minus_ids, grads_wrt_outputs, exact, fprop_name):
    """The derivative a gradient is judged against, and how it was obtained.

    Central differences of the student's own fprop (answers to `plus_ids` and
    `minus_ids`, one pair per perturbed element) when they agree with the
    exact reference derivative; otherwise the reference derivative itself,
    so a wrong fprop never costs the points of a right bprop.

    Returns:
        (derivative shaped like `exact`, a phrase naming where it came from).
    """
    fallback = (exact, 'the reference derivative (your fprop is not right, so its finite '
                       'differences were not used)')
    try:
        plus = [_single(_result(responses, request_id, fprop_name), fprop_name) for request_id in plus_ids]
        minus = [_single(_result(responses, request_id, fprop_name), fprop_name) for request_id in minus_ids]
    except ResponseProblem:
        return fallback
    if any(output.shape != grads_wrt_outputs.shape for output in plus + minus):
        return fallback
    estimate = compare.central_differences(np.shape(exact), plus, minus, grads_wrt_outputs)
    if compare.compare_arrays(estimate, exact, '', compare.GRADCHECK_RTOL, compare.GRADCHECK_ATOL).ok:
        return estimate, 'finite differences of your fprop'
    return fallback


def _with_hint(message: str, hint: str) -> str:
    return '{0} Diagnosis: {1}.'.format(message, hint) if hint else message


def _shape_and_mutation(what, got, expected, sent_inputs, returned_inputs):
    problems = []
    if got.shape != expected.shape:
        problems.append('returns shape {0} for inputs of shape {1} (expected {2})'.format(
            got.shape, sent_inputs[0].shape, expected.shape))
    if returned_inputs and len(returned_inputs) == len(sent_inputs):
        names = ['inputs', 'outputs', 'grads_wrt_outputs']
        for name, before, after in zip(names, sent_inputs, returned_inputs):
            if after.shape != before.shape or not np.array_equal(before, after, equal_nan=True):
                problems.append('modifies its argument {0} in place'.format(name))
    return problems


def _finite_large(what, responses, request_id, expected):
    try:
        got = _single(_result(responses, request_id, what), what)
    except ResponseProblem as problem:
        return ['fails for inputs of magnitude 1e3 ({0})'.format(problem)]
    if got.shape == expected.shape and not np.all(np.isfinite(got)):
        return ['gives NaN or inf for inputs of magnitude 1e3 (use a numerically stable form)']
    if not compare.compare_arrays(got, expected, what).ok:
        return ['gives wrong values for inputs of magnitude 1e3']
    return []


def _batch_independence(what, responses, request_id, full):
    try:
        part = _single(_result(responses, request_id, what), what)
    except ResponseProblem as problem:
        return ['fails on a batch of 2 ({0})'.format(problem)]
    if part.shape != (2,) + full.shape[1:] or not np.allclose(part, full[:2], equal_nan=True):
        return ['gives different results for the first two examples when the batch size changes']
    return []


def _values_right(what: str, got: np.ndarray, expected: np.ndarray) -> bool:
    """Whether the answer on the property inputs is right (shape and values)."""
    return compare.compare_arrays(got, expected, what).ok


def _property_verdict(problems: list[str], total: int, values_right: bool = True) -> Verdict:
    """Partial credit per property, but only for a method whose values are right.

    Shape, immutability and batch-size independence are properties of a
    correct answer: an identity function has them all, so a method that
    computes the wrong values earns nothing here (the fixed cases say
    where it is wrong).
    """
    if not values_right:
        problems = ['gives wrong values on the property inputs, so no property is credited'] + problems
        return Verdict(0.0, 'failed', 'It ' + '; it '.join(problems) + '.')
    if not problems:
        return Verdict(1.0, 'passed')
    fraction = max(0.0, 1.0 - len(problems) / total)
    return Verdict(fraction, 'failed', 'It ' + '; it '.join(problems) + '.')


def plan_item(spec: AssignmentSpec, item: Item, public_only: bool = False) -> list[CheckPlan]:
    """Builds the plans of an item's automatic checks (manual items have none)."""
    planner = ItemPlanner(spec, item)
    plans = [planner.plan(check) for check in item.checks if check != 'manual']
    return [plan for plan in plans if plan.public] if public_only else plans


def judge_plan(plan: CheckPlan, responses: dict[str, Response], max_score: float) -> CheckResult:
    """Runs a plan's judge and turns the verdict into a scored CheckResult."""
    try:
        verdict = plan.judge(responses)
    except ResponseProblem as problem:
        # Only hidden fixed cases have inputs to protect; a training run's inputs are MNIST images.
        hidden_case = plan.kind == 'fixed' and not plan.public
        message = problem.redacted if hidden_case and problem.redacted is not None else str(problem)
        verdict = Verdict(0.0, problem.status, message)
    return CheckResult(
        grade_id=plan.item.grade_id, name=plan.name, target=plan.item.target, kind=plan.kind,
        status=verdict.status, score=max_score * verdict.fraction, max_score=max_score,
        output=verdict.output, public=plan.public, diagnosis=verdict.diagnosis,
        details=verdict.details)
