"""What every target kind shares: plans, verdicts, requests, reading replies, judging.

TRUSTED. A target kind (one module of `autograder.checks`, registered in
`registry`) subclasses `TargetPlanner` and writes, per method it can check,
request builders and judges (`fixed_<method>`, `gradcheck_<method>`,
`property_<method>`). Everything generic lives here: the `CheckPlan` handed
to the pipeline, the `Verdict` a judge returns, the two request shapes the
child runner answers (`call_request`, `sequence_request`), the validation of
replies (`response`, `returned`, `single`, `sequence_records`), the training
check every class kind can run, and `judge_plan`, which scores a verdict.
All expected values, tolerances and comparisons stay in the parent; the
child only ever sees inputs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
from mlp import checks as compare

from autograder.checks import oracle
from autograder.course.spec import AssignmentSpec, Item
from autograder.results import CheckResult, HarnessError, harness_message
from autograder.sandbox.isolation import Request, Response

#: Said with a RecursionError: the usual cause in notebooks that redefine a class.
RECURSION_HINT = (' Diagnosis: infinite recursion; a usual cause is a cell that redefines a class '
                  'as `class DropoutLayer(DropoutLayer)` while its methods call '
                  '`super(DropoutLayer, self)`: the name now means the new class, so the call '
                  'repeats forever; use `super()` without arguments, or give the new class '
                  'another name.')
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


# Requests ------------------------------------------------------------------------------


def as_arrays(arrays) -> list[np.ndarray]:
    return [np.asarray(a, dtype=float) for a in arrays]


def call_request(request_id: str, class_name: str, init_kwargs: dict, method: str | None,
                 arrays: list[np.ndarray], *, params: list[np.ndarray] | None = None,
                 return_inputs: bool = False, kwargs: dict | None = None,
                 rng_seed: int | None = None, extra_args: list | None = None) -> Request:
    """A request to call `ClassName(**init_kwargs).method(*arrays, **kwargs)` in the child.

    With `method` None the target itself is called (a function). `params`
    are set as `instance.params` before the call; `extra_args` (plain JSON)
    follow the arrays as positional arguments.
    """
    arrays = as_arrays(arrays)
    all_arrays = list(arrays) + as_arrays(params or [])
    header = {
        'type': 'call', 'id': request_id, 'target': class_name, 'source': 'submission',
        'init': {'args': [], 'kwargs': init_kwargs, 'rng_seed': rng_seed},
        'params': list(range(len(arrays), len(all_arrays))) if params else None,
        'method': method,
        'args': [{'array': i} for i in range(len(arrays))] + list(extra_args or []),
        'return_inputs': return_inputs,
    }
    if kwargs:
        header['kwargs'] = kwargs
    return Request(header=header, arrays=all_arrays)


def sequence_request(request_id: str, class_name: str, init_kwargs: dict, steps: list[dict],
                     arrays: list[np.ndarray], *, objects: list[dict] | None = None,
                     rng_seed: int | None = None, timeout: float | None = None) -> Request:
    """A request to run several calls on ONE instance and record arrays after each.

    Args:
        request_id: The request id.
        class_name: The submission's class to instantiate once.
        init_kwargs: Its constructor kwargs (plain JSON).
        steps: ``{"method", "args", "kwargs", "record"}`` per step, run in
            order (see `autograder.sandbox.child_runner`): ``{"array": i}``
            is the ONE working copy of sent array i kept for the whole
            sequence (so in-place updates are seen), ``{"copy": i}`` a fresh
            copy, ``{"list": [...]}`` a list, ``{"object": j}`` helper
            object j, ``{"returned": [step, k]}`` array k returned by an
            earlier step. ``record`` lists what to send back after the step:
            ``{"returned": true}``, ``{"array": i}``, or ``{"attribute":
            name}`` (of the instance, or of ``"of": {"object": j}``).
        arrays: The arrays sent.
        objects: Helper instances built first from the student copy of
            mlp: ``{"class", "source": "mlp.<module>", "kwargs"}``.
        rng_seed: When set, the instance gets ``rng=RandomState(rng_seed)``.
        timeout: Wall-clock seconds for the whole sequence, or None.
    """
    header = {
        'type': 'sequence', 'id': request_id, 'target': class_name, 'source': 'submission',
        'init': {'args': [], 'kwargs': init_kwargs, 'rng_seed': rng_seed},
        'objects': list(objects or []), 'steps': steps,
    }
    return Request(header=header, arrays=as_arrays(arrays), timeout=timeout)


# Reading replies -----------------------------------------------------------------------


def response(responses: dict[str, Response], request_id: str, what: str) -> Response:
    """A successful response, or a ResponseProblem saying what went wrong."""
    found = responses.get(request_id)
    if found is None:
        raise ResponseProblem('error', '{0}: no answer from the sandbox.'.format(what))
    if found.status == 'timeout':
        raise ResponseProblem('timeout', '{0}: {1}'.format(what, found.message))
    if found.status != 'ok':
        redacted, hint = None, ''
        if found.header.get('error_kind') == 'student':
            exception_type = str(found.header.get('error', '')).split(':', 1)[0] or 'an exception'
            hint = RECURSION_HINT if exception_type == 'RecursionError' else ''
            redacted = ('{0} raised {1} on this hidden case (its message is not shown, since it '
                        'could print the hidden inputs; the public checks show messages).{2}'.format(
                            what, exception_type, hint))
        raise ResponseProblem('error', '{0}: {1}{2}'.format(what, found.message, hint), redacted)
    return found


def returned(responses: dict[str, Response], request_id: str, what: str) -> list[np.ndarray]:
    """The arrays the student's method returned (not the inputs sent back after the call)."""
    return response(responses, request_id, what).returned


def single(arrays: list[np.ndarray], what: str) -> np.ndarray:
    """The one array a method returned (fprop and bprop return one array, not a list)."""
    if len(arrays) < 1:
        raise ResponseProblem('failed', '{0} returned nothing.'.format(what))
    if len(arrays) > 1:
        raise ResponseProblem('failed', '{0} returned {1} arrays, expected a single array.'.format(
            what, len(arrays)))
    return arrays[0]


def scalar(arrays: list[np.ndarray], what: str) -> float:
    """The one number a method returned (a 0-d array or an array of one element)."""
    value = single(arrays, what)
    if value.size != 1:
        raise ResponseProblem('failed', '{0} returned an array of shape {1}, expected a single '
                                        'number.'.format(what, value.shape))
    return float(value.reshape(()))


def sequence_records(responses: dict[str, Response], request: Request, what: str):
    """The arrays a sequence request recorded: records[step][record] -> list of arrays.

    A record the child could not take (an attribute the instance lacks) is
    None. The layout the child reports is checked against the steps asked.

    Raises:
        ResponseProblem: The sequence failed (its message names the step),
            or the reply does not match the request.
    """
    found = responses.get(request.id)
    if found is not None and found.status == 'error' and isinstance(found.header.get('failed_step'), int):
        step = found.header['failed_step']
        steps = request.header['steps']
        if 0 <= step < len(steps):
            what = '{0} (call {1} of {2}: {3})'.format(what, step + 1, len(steps),
                                                       steps[step].get('method'))
    arrays = response(responses, request.id, what).returned
    layout = found.header.get('records')
    steps = request.header['steps']
    malformed = ResponseProblem('error', '{0}: the sandbox returned malformed data.'.format(what))
    if not isinstance(layout, list) or len(layout) != len(steps):
        raise malformed
    records, position = [], 0
    for counts, step in zip(layout, steps):
        if not isinstance(counts, list) or len(counts) != len(step.get('record', [])):
            raise malformed
        step_records = []
        for count in counts:
            if count is None:
                step_records.append(None)
                continue
            if type(count) is not int or count < 0 or position + count > len(arrays):
                raise malformed
            step_records.append(arrays[position:position + count])
            position += count
        records.append(step_records)
    if position != len(arrays):
        raise malformed
    return records


# Judging helpers -----------------------------------------------------------------------


def with_hint(message: str, hint: str) -> str:
    return '{0} Diagnosis: {1}.'.format(message, hint) if hint else message


def compare_or_verdict(got, expected, what, *, reveal=True, hint: Callable[[], str] | None = None,
                       rtol=compare.DEFAULT_RTOL, atol=compare.DEFAULT_ATOL) -> Verdict:
    """Passed when `got` matches `expected`; else failed with the comparison and a diagnosis."""
    comparison = compare.compare_arrays(got, expected, what, rtol, atol, reveal=reveal)
    if comparison.ok:
        return Verdict(1.0, 'passed')
    diagnosis = hint() if hint is not None else ''
    message = comparison.message.replace(' at []:', ':')  # a single number has no position
    return Verdict(0.0, 'failed', with_hint(message, diagnosis), diagnosis)


def subgradient_at_zeros(inputs: np.ndarray, got: np.ndarray, expected_left: np.ndarray,
                         expected_right: np.ndarray) -> np.ndarray:
    """The expected derivative, taking the student's choice where the derivative is ambiguous.

    At exact zeros of the inputs of a function with a kink there (ReLU, |w|),
    any value between the left and right derivatives is a valid subgradient;
    the closest one to the student's answer becomes the expected value
    there. Where both one-sided derivatives agree nothing changes.
    """
    expected = np.array(expected_right, dtype=float)
    if got.shape != expected.shape or np.shape(inputs) != expected.shape:
        return expected
    zeros = (np.asarray(inputs) == 0.) & np.isfinite(got)
    low = np.minimum(expected_left, expected_right)
    high = np.maximum(expected_left, expected_right)
    expected[zeros] = np.clip(got[zeros], low[zeros], high[zeros])
    return expected


def values_right(what: str, got: np.ndarray, expected: np.ndarray) -> bool:
    """Whether the answer on the property inputs is right (shape and values)."""
    return compare.compare_arrays(got, expected, what).ok


def property_verdict(problems: list[str], total: int, values_are_right: bool = True) -> Verdict:
    """Partial credit per property, but only for a method whose values are right.

    Shape, immutability and batch-size independence are properties of a
    correct answer: an identity function has them all, so a method that
    computes the wrong values earns nothing here (the fixed cases say
    where it is wrong).
    """
    if not values_are_right:
        problems = ['gives wrong values on the property inputs, so no property is credited'] + problems
        return Verdict(0.0, 'failed', 'It ' + '; it '.join(problems) + '.')
    if not problems:
        return Verdict(1.0, 'passed')
    fraction = max(0.0, 1.0 - len(problems) / total)
    return Verdict(fraction, 'failed', 'It ' + '; it '.join(problems) + '.')


def mutated(names: list[str], before: list[np.ndarray], after: list[np.ndarray]) -> list[str]:
    """One problem per argument whose value changed during the call."""
    problems = []
    if after and len(after) == len(before):
        for name, old, new in zip(names, before, after):
            if new.shape != np.shape(old) or not np.array_equal(old, new, equal_nan=True):
                problems.append('modifies its argument {0} in place'.format(name))
    return problems


def derivative_to_judge_by(responses, plus_ids, minus_ids, grads_wrt_outputs, exact, fprop_name,
                           outputs_of=None, forward='fprop'):
    """The derivative a gradient is judged against, and how it was obtained.

    Central differences of the student's own forward function (answers to
    `plus_ids` and `minus_ids`, one pair per perturbed element) when they
    agree with the exact reference derivative; otherwise the reference
    derivative itself, so a wrong forward function never costs the points
    of a right gradient.

    Args:
        outputs_of: Callable (responses, request_id) -> the forward value of
            one perturbed input; by default the single array a call returned.
        forward: The name of the forward method, for the phrase.

    Returns:
        (derivative shaped like `exact`, a phrase naming where it came from).
    """
    fallback = (exact, 'the reference derivative; your {0} is not right, so its finite '
                       'differences were not used'.format(forward))
    if outputs_of is None:
        def outputs_of(responses, request_id):
            return single(returned(responses, request_id, fprop_name), fprop_name)
    try:
        plus = [outputs_of(responses, request_id) for request_id in plus_ids]
        minus = [outputs_of(responses, request_id) for request_id in minus_ids]
    except ResponseProblem:
        return fallback
    if any(np.shape(output) != np.shape(grads_wrt_outputs) for output in plus + minus):
        return fallback
    estimate = compare.central_differences(np.shape(exact), plus, minus, grads_wrt_outputs)
    if compare.compare_arrays(estimate, exact, '', compare.GRADCHECK_RTOL, compare.GRADCHECK_ATOL).ok:
        return estimate, 'finite differences of your {0}'.format(forward)
    return fallback


# Planners ------------------------------------------------------------------------------


def method_key(method: str | None) -> str:
    """The handler suffix of a method: 'fprop', 'call' for '__call__', 'whole' for None."""
    return method.strip('_') if method else 'whole'


class TargetPlanner:
    """Builds the check plans of one graded item of one target kind.

    Subclasses set `kind`, `reference_module` and `METHOD_CHECKS` (method,
    None for the whole target, -> the checks that apply) and write the
    handlers `<check>_<method_key>(check[, case])` returning (requests,
    judge); kinds with a training run mix in `training.TrainingCheck`. They
    register with `registry.register`.
    """

    kind = ''
    reference_module = 'mlp.layers'
    METHOD_CHECKS: dict = {}
    PROPERTY_TITLES: dict = {}  # method -> what its property check tests

    @classmethod
    def entry_problem(cls, target) -> str:
        """What is wrong with a spec entry of this kind ('' if nothing)."""
        return ''

    def __init__(self, spec: AssignmentSpec, item: Item):
        self.spec = spec
        self.item = item
        self.target = spec.targets[item.class_name]
        self.class_name = item.class_name
        self.method = item.method
        self.init_kwargs = dict(self.target.kwargs)
        self.what = item.target

    def case_twin(self, override: dict, **options):
        """A copy of this planner for one case that builds the target as its ``"layer"`` entry says.

        Args:
            override: The case's ``"layer"`` entry; its ``"kwargs"`` (when
                given) replace the target's constructor kwargs.
            **options: Target options replaced for that case (e.g. ``params``).
        """
        target = replace(self.target, kwargs=dict(override.get('kwargs', self.target.kwargs)),
                         options=dict(self.target.options, **options))
        twin = copy.copy(self)
        twin.target, twin.init_kwargs = target, dict(target.kwargs)
        return twin

    def reference(self):
        """A fresh reference instance (or the reference function) of the target."""
        return oracle.reference_instance(self.target, self.reference_module)

    def _id(self, check: str, part: str) -> str:
        return '{0}/{1}/{2}'.format(self.item.grade_id, check, part)

    def _handler(self, check_kind: str):
        handler = getattr(self, '{0}_{1}'.format(check_kind, method_key(self.method)), None)
        if handler is None or check_kind not in self.METHOD_CHECKS.get(self.method, ()):
            raise ValueError('check {0!r} does not apply to {1} ({2})'.format(
                check_kind, self.item.target, self.kind))
        return handler

    def plan(self, check: str) -> CheckPlan:
        check_kind = check.split(':', 1)[0]
        if check_kind == 'fixed':
            case = self.spec.cases[check.split(':', 1)[1]]
            title = ('the notebook\'s test arrays' if case.public
                     else 'hidden test case "{0}"'.format(case.name))
            requests, judge = self._handler('fixed')(check, case)
            return CheckPlan(self.item, check, 'fixed', case.public,
                             '{0} matches the reference on {1}'.format(self.what, title),
                             requests, judge)
        if check_kind == 'gradcheck':
            requests, judge = self._handler('gradcheck')(check)
            return CheckPlan(self.item, check, check_kind, True,
                             '{0} {1}'.format(self.what, CHECK_TITLES['gradcheck']), requests, judge)
        if check_kind == 'property':
            requests, judge = self._handler('property')(check)
            title = self.PROPERTY_TITLES.get(self.method, CHECK_TITLES['property'])
            return CheckPlan(self.item, check, check_kind, True,
                             '{0} {1}'.format(self.what, title), requests, judge)
        if check_kind == 'training':
            requests, judge = self._handler('training')(check)
            title = getattr(self, 'TRAINING_TITLE', CHECK_TITLES['training'])
            return CheckPlan(self.item, check, check_kind, False,
                             '{0}: {1}'.format(self.what, title), requests, judge)
        raise ValueError('unknown check {0!r} for item {1}'.format(check, self.item.grade_id))

def judge_plan(plan: CheckPlan, responses: dict[str, Response], max_score: float) -> CheckResult:
    """Runs a plan's judge and turns the verdict into a scored CheckResult."""
    try:
        verdict = plan.judge(responses)
    except HarnessError as failure:  # missing data, a broken reference: never the student's failure
        return CheckResult(
            grade_id=plan.item.grade_id, name=plan.name, target=plan.item.target, kind=plan.kind,
            status='error', score=0.0, max_score=max_score, output=harness_message(failure),
            public=plan.public, harness=True)
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

