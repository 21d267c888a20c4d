"""The layer kind: fprop, bprop and grads_wrt_params of a (deterministic) layer.

TRUSTED. Fixed cases compare with the reference layer; gradient checks use
central differences of the student's own fprop; properties check shape,
immutability, large inputs and batch-size independence (where the reference
has it: not batch normalisation). Layers may have parameters given by the
spec (set as `instance.params` before each call, and on the reference) and
inputs of any rank (`input_shape`, e.g. the 4-D image batches of
convolutional layers). A case's ``"layer"`` entry may build the layer with
other kwargs, params and helper objects (penalties) for that case only
(`LayerPlanner._for_case`); a case with ``"evaluation_after": k`` checks the
evaluation mode, fprop(inputs, stochastic=False), after k training-mode
calls on the same instance (running averages). Inputs used to score bprop
differ from those used to score fprop, so the reference outputs handed to
bprop never answer an fprop case.
"""

from __future__ import annotations


import numpy as np
from mlp import checks as compare

from autograder.checks import diagnose, diagnose_image, oracle, registry, ties
from autograder.checks.base import (
    ResponseProblem, TargetPlanner, Verdict, call_request, derivative_to_judge_by,
    property_verdict, response, returned, sequence_records, sequence_request, single,
    subgradient_at_zeros, values_right, with_hint)
from autograder.checks.training import TrainingCheck
from autograder.course.spec import AssignmentSpec, Case

GRADCHECK_SHAPE = (3, 4)
PROPERTY_SHAPE = (5, 4)
LARGE_MAGNITUDE = 1e3
# fprop calls of a finite-difference estimate made on one layer, one request (see _forward_calls).
FORWARD_CALLS_PER_LAYER = 32


def spec_params(target, reference) -> list[np.ndarray] | None:
    """The parameters the spec gives a layer (explicit arrays or seeded uniform), or None."""
    given = target.option('params')
    if given is None:
        return None
    if isinstance(given, dict):
        rng = np.random.RandomState(int(given.get('seed', 0)))
        scale = float(given.get('scale', 0.5))
        return [rng.uniform(-scale, scale, size=np.shape(p)) for p in reference.params]
    return [np.array(p, dtype=float) for p in given]


def case_arrays(case: Case, rng_offset: int = 0, output_shape=None):
    """(fprop inputs, bprop inputs, grads_wrt_outputs for bprop) of a case, float64.

    Random output gradients take `output_shape(bprop_inputs)` (the reference
    output's shape; the inputs' shape when not given).
    """
    if case.inputs is not None:
        inputs = np.array(case.inputs, dtype=float)
        bprop_inputs = np.array(case.bprop_inputs if case.bprop_inputs is not None
                                else case.inputs, dtype=float)
        grads = np.array(case.grads_wrt_outputs, dtype=float)
        return inputs, bprop_inputs, grads
    rng = np.random.RandomState(case.seed + rng_offset)
    inputs = rng.uniform(-case.scale, case.scale, size=case.shape)
    bprop_inputs = rng.uniform(-case.scale, case.scale, size=case.shape)
    shape = output_shape(bprop_inputs) if output_shape is not None else case.shape
    grads = rng.normal(size=shape)
    return inputs, bprop_inputs, grads


def _accept_kink(spec: AssignmentSpec, class_name: str, inputs: np.ndarray, got: np.ndarray,
                 expected_left: np.ndarray, expected_right: np.ndarray) -> np.ndarray:
    """Where the derivative is ambiguous (x == 0), the expected value the student chose.

    Only for layers the spec lists under ``kink_at_zero`` (see `base.subgradient_at_zeros`).
    """
    if class_name not in spec.kink_at_zero:
        return np.array(expected_right, dtype=float)
    return subgradient_at_zeros(inputs, got, expected_left, expected_right)


@registry.register
class LayerPlanner(TrainingCheck, TargetPlanner):
    """Checks of a layer's fprop, bprop and grads_wrt_params."""

    kind = 'layer'
    reference_module = 'mlp.layers'
    METHOD_CHECKS = {
        'fprop': ('fixed', 'property'),
        'bprop': ('fixed', 'gradcheck', 'property'),
        'grads_wrt_params': ('fixed', 'gradcheck'),
        None: ('training',),
    }

    @classmethod
    def entry_problem(cls, target) -> str:
        shape = target.option('input_shape')
        if shape is not None and (not isinstance(shape, list) or len(shape) < 2
                                  or not all(type(n) is int and n > 0 for n in shape)):
            return 'input_shape must list at least two positive integers (batch first)'
        return ''

    def __init__(self, spec: AssignmentSpec, item):
        super().__init__(spec, item)
        self._params = None
        self._objects = {}  # constructor argument -> recipe piece, from a case's "layer" entry

    @property
    def params(self):
        """The parameters the spec gives (None: the layer's own initial ones)."""
        if self._params is None and self.target.option('params') is not None:
            self._params = spec_params(self.target, oracle.reference_instance(
                self.target, self.reference_module))
        return self._params

    def reference(self):
        if self._objects:
            cls = oracle.reference_object(oracle.reference_path(self.target, self.reference_module))
            layer = cls(**self.init_kwargs, **{name: _reference_piece(piece)
                                               for name, piece in self._objects.items()})
        else:
            layer = super().reference()
        if self.params is not None:
            layer.params = [p.copy() for p in self.params]
        return layer

    def _request(self, request_id, method, arrays, **options):
        options.setdefault('params', self.params)
        if self._objects:
            return self._request_with_objects(request_id, method, arrays, options['params'])
        return call_request(request_id, self.class_name, self.init_kwargs, method, arrays, **options)

    def _request_with_objects(self, request_id, method, arrays, params):
        """One call on a layer built with helper objects (penalties) as constructor arguments.

        A request's constructor arguments are plain JSON, so a sequence builds
        the objects from the student copy of mlp and runs the constructor once
        more with them (`__init__(**kwargs, penalty=object)`), sets the
        parameters (`params = [...]`), then makes the call.
        """
        return self._calls_on_one_layer(request_id, method, [(arrays, params)])

    def _calls_on_one_layer(self, request_id, method, calls):
        """A sequence request making several calls on ONE fresh layer, each on fresh copies.

        Args:
            request_id: The request's id.
            method: The method each call makes ('fprop', say).
            calls: ``(arrays, params)`` per call: ``method(*arrays)`` after
                ``params = [...]`` (no assignment when params is empty or None).

        Returns:
            The request; record k of its steps' records is what call k returned.
        """
        names = sorted(self._objects)
        objects = [dict(self._objects[name], source=self._objects[name].get('source', 'mlp.penalties'))
                   for name in names]
        sent, steps = [], []
        if objects:
            steps.append({'method': '__init__', 'args': [], 'kwargs': dict(
                self.init_kwargs, **{name: {'object': j} for j, name in enumerate(names)})})
        for arrays, params in calls:
            arrays = [np.asarray(a, dtype=float) for a in arrays]
            params = [np.asarray(p, dtype=float) for p in (params or [])]
            steps += self._params_steps(len(sent) + len(arrays), len(params))
            steps.append({'method': method, 'args': [{'copy': len(sent) + k} for k in range(len(arrays))],
                          'record': [{'returned': True}]})
            sent += arrays + params
        return sequence_request(request_id, self.class_name, self.init_kwargs, steps, sent,
                                objects=objects)

    def _forward_batch(self, request_id, stacked, count):
        """One fprop of `count` equal-shaped inputs, `stacked` along the batch axis.

        For a layer whose reference treats every example on its own (all but
        batch normalisation), the forward values of the hundreds of perturbed
        inputs of a finite-difference estimate come from one call. A forward
        function that mixes the examples of a batch (a mistake, for these
        layers) gives estimates that disagree with the exact reference
        derivative, which then judges the gradient (`derivative_to_judge_by`).

        Returns:
            ``([request], outputs_of)``: ``outputs_of(responses, k)`` is the
            part of the returned array that belongs to input k (raises
            `ResponseProblem` when the answer is missing or not shaped batch
            by batch).
        """
        rows = len(stacked) // count
        request = self._request(request_id, 'fprop', [stacked])
        fprop_name = self.class_name + '.fprop'

        def outputs_of(responses, k):
            outputs = single(returned(responses, request_id, fprop_name), fprop_name)
            if np.ndim(outputs) < 1 or len(outputs) != len(stacked):
                raise ResponseProblem('failed', '{0} returned {1} rows for {2} examples.'.format(
                    fprop_name, len(outputs) if np.ndim(outputs) else 0, len(stacked)))
            return outputs[k * rows:(k + 1) * rows]

        return [request], outputs_of

    def _forward_calls(self, request_id, calls):
        """fprop on each ``(inputs, params)`` of `calls`, up to FORWARD_CALLS_PER_LAYER on one layer.

        A finite-difference estimate needs one fprop per perturbed element
        (hundreds for lab 7's layers). Sent one call per request, each call
        builds a layer of its own, and the student's constructor (a seeded
        RandomState in the course's initialisers: 0.1 ms) is most of the cost
        of a call on these small inputs. Here the calls share a layer, a
        sequence of them per request. That cannot cost a fair student points:
        a forward function whose answers depend on the calls before it gives
        estimates that disagree with the exact reference derivative, and the
        judge then falls back to the reference (`derivative_to_judge_by`).
        Each request keeps the ordinary per-request time budget, ample for
        this many calls on inputs this small.

        Args:
            request_id: Prefix of the requests' ids.
            calls: ``(inputs, params)`` per call; params None means the
                planner's own (the spec's, or the layer's initial ones).

        Returns:
            ``(requests, outputs_of)``: ``outputs_of(responses, k)`` is the
            array call k returned (raises `ResponseProblem` when there is none).
        """
        requests = []
        for start in range(0, len(calls), FORWARD_CALLS_PER_LAYER):
            chunk = [([inputs], self.params if params is None else params)
                     for inputs, params in calls[start:start + FORWARD_CALLS_PER_LAYER]]
            requests.append(self._calls_on_one_layer('{0}.{1}'.format(request_id, len(requests)),
                                                     'fprop', chunk))
        fprop_name = self.class_name + '.fprop'

        def outputs_of(responses, k):
            records = sequence_records(responses, requests[k // FORWARD_CALLS_PER_LAYER], fprop_name)
            calls = [step[0] for step in records if step]  # the steps setting params record nothing
            return single(calls[k % FORWARD_CALLS_PER_LAYER], fprop_name)

        return requests, outputs_of

    def _output_shape(self, inputs):
        return np.shape(self.reference().fprop(np.array(inputs, dtype=float)))

    def _case_arrays(self, case, rng_offset=0):
        return case_arrays(case, rng_offset, self._output_shape)

    # fixed cases -----------------------------------------------------------

    def _for_case(self, case):
        """This planner, or a copy configured as the case's ``"layer"`` entry says.

        A case may construct the layer differently from the target entry (another channel
        count or kernel size, say): ``"layer": {"kwargs": {...}, "params": ...}`` replaces the
        target's ``kwargs`` and ``params`` for that case only, and ``"objects": {"kernels_penalty":
        {"class": "L2Penalty", "source": "mlp.penalties", "kwargs": {...}}}`` passes helper
        objects of the student copy of mlp (penalties) as further constructor arguments.
        """
        override = case.data.get('layer')
        if not override:
            return self
        twin = self.case_twin(override, params=override.get('params'))
        twin._params = None
        twin._objects = dict(override.get('objects') or {})
        return twin

    def fixed_fprop(self, check, case):
        return self._for_case(case)._fixed_fprop(check, case)

    def fixed_bprop(self, check, case):
        return self._for_case(case)._fixed_bprop(check, case)

    def fixed_grads_wrt_params(self, check, case):
        return self._for_case(case)._fixed_grads_wrt_params(check, case)

    def _fixed_fprop(self, check, case):
        if case.data.get('evaluation_after'):
            return self._fixed_evaluation(check, case)
        inputs, _, _ = self._case_arrays(case)
        request_id = self._id(check, 'fprop')
        expected = self.reference().fprop(inputs.copy())

        def judge(responses):
            got = single(returned(responses, request_id, self.what), self.what)
            comparison = compare.compare_arrays(got, expected, self.what, reveal=case.public)
            if comparison.ok:
                return Verdict(1.0, 'passed')
            hint = (diagnose.diagnose_fprop(self.class_name, inputs, got)
                    or diagnose_image.diagnose_image_fprop(self.reference(), inputs, got))
            return Verdict(0.0, 'failed', with_hint(comparison.message, hint), hint)

        return [self._request(request_id, 'fprop', [inputs])], judge

    def _fixed_evaluation(self, check, case):
        """fprop(inputs, stochastic=False) after k training-mode fprops, on one instance.

        For layers whose evaluation mode uses state gathered in training (batch
        normalisation's running averages): ``"evaluation_after": k`` sets the
        spec's parameters, sends k seeded training batches of the case's shape
        (each feature with its own offset and spread, the first one constant
        within every batch, so that its running variance decays towards 0,
        where epsilon matters), then the case's inputs with
        ``stochastic=False``; that last answer is compared with the reference
        doing the same, and the inputs must be left unmodified.
        """
        inputs, _, _ = self._case_arrays(case)
        rng = np.random.RandomState(case.seed + 2)
        shape = inputs.shape
        spreads = rng.uniform(0.2, 2., size=shape[1:])
        spreads.reshape(-1)[0] = 0.
        batches = [rng.uniform(-case.scale, case.scale, size=shape[1:])
                   + spreads * rng.uniform(-case.scale, case.scale, size=shape)
                   for _ in range(int(case.data['evaluation_after']))]
        reference = self.reference()
        for batch in batches:
            reference.fprop(batch.copy())
        expected = reference.fprop(inputs.copy(), stochastic=False)
        params = [np.asarray(p, dtype=float) for p in (self.params or [])]
        arrays = batches + [inputs] + params
        steps = self._params_steps(len(batches) + 1, len(params))
        steps += [{'method': 'fprop', 'args': [{'copy': k}]} for k in range(len(batches))]
        steps.append({'method': 'fprop', 'args': [{'array': len(batches)}], 'kwargs': {'stochastic': False},
                      'record': [{'returned': True}, {'array': len(batches)}]})
        request = sequence_request(self._id(check, 'evaluation'), self.class_name, self.init_kwargs, steps,
                                   arrays)
        what = '{0} (stochastic=False, after {1} training-mode calls)'.format(self.what, len(batches))

        def judge(responses):
            record = sequence_records(responses, request, what)[-1]
            got = single(record[0], what)
            comparison = compare.compare_arrays(got, expected, what, reveal=case.public)
            if not comparison.ok:
                return Verdict(0.0, 'failed', comparison.message)
            problems = _shape_and_mutation(what, got, expected, [inputs], record[1])
            return property_verdict(problems, 2) if problems else Verdict(1.0, 'passed')

        return [request], judge

    @staticmethod
    def _params_steps(first_slot: int, count: int) -> list[dict]:
        """A sequence step setting ``instance.params`` to fresh copies of `count` sent arrays."""
        if not count:
            return []
        return [{'method': '__setattr__', 'args': ['params', {'list': [
            {'copy': first_slot + k} for k in range(count)]}]}]

    def _fixed_bprop(self, check, case):
        _, inputs, grads = self._case_arrays(case)
        reference = self.reference()
        outputs = reference.fprop(inputs.copy())
        request_id = self._id(check, 'bprop')
        right = reference.bprop(oracle.one_sided_zero_inputs(inputs, 1.), outputs, grads)
        left = reference.bprop(oracle.one_sided_zero_inputs(inputs, -1.), outputs, grads)

        def judge(responses):
            got = single(returned(responses, request_id, self.what), self.what)
            expected = _accept_kink(self.spec, self.class_name, inputs, got, left, right)
            expected = self._accept_ties(inputs, got, expected)
            comparison = compare.compare_arrays(got, expected, self.what, reveal=case.public)
            if comparison.ok:
                return Verdict(1.0, 'passed')
            hint = (diagnose.diagnose_bprop(self.class_name, inputs, outputs, grads, got)
                    or diagnose_image.diagnose_image_bprop(self.reference(), inputs, grads, got))
            return Verdict(0.0, 'failed', with_hint(comparison.message, hint), hint)

        request = self._request(request_id, 'bprop',
                        [inputs, outputs, grads])
        return [request], judge

    def _accept_ties(self, inputs, got, expected):
        """`expected`, with the student's choice of maximum where a pooling window is tied."""
        if self.target.option('max_ties') != 'any_single_maximum':
            return expected
        return ties.accept_any_single_maximum(self.reference().pool_size, inputs, got, expected)

    def _fixed_grads_wrt_params(self, check, case):
        _, inputs, grads = self._case_arrays(case, rng_offset=1)
        expected = self.reference().grads_wrt_params(inputs, grads)
        request_id = self._id(check, 'grads')

        def judge(responses):
            got = returned(responses, request_id, self.what)
            if len(got) != len(expected):
                return Verdict(0.0, 'failed', '{0} returned {1} arrays, expected {2} (one per parameter).'.format(
                    self.what, len(got), len(expected)))
            for index, (got_grad, expected_grad) in enumerate(zip(got, expected)):
                comparison = compare.compare_arrays(
                    got_grad, expected_grad, '{0}[{1}]'.format(self.what, index), reveal=case.public)
                if not comparison.ok:
                    hint = diagnose_image.diagnose_image_grads(self.reference(), inputs, grads, got)
                    return Verdict(0.0, 'failed', with_hint(comparison.message, hint), hint)
            return Verdict(1.0, 'passed')

        request = self._request(request_id, 'grads_wrt_params',
                        [inputs, grads])
        return [request], judge

    # finite differences ------------------------------------------------------

    def _gradcheck_inputs(self, seed_offset: int):
        """Random inputs kept at least 0.1 away from 0, where layers may have a kink."""
        rng = np.random.RandomState(9176 + seed_offset)
        shape = tuple(self.target.option('input_shape', GRADCHECK_SHAPE))
        magnitudes = rng.uniform(0.1, 2.0, size=shape)
        signs = np.where(rng.uniform(size=shape) < 0.5, -1., 1.)
        inputs = magnitudes * signs
        return inputs, rng.normal(size=self._output_shape(inputs))

    def gradcheck_bprop(self, check):
        inputs, grads = self._gradcheck_inputs(0)
        reference = self.reference()
        outputs = reference.fprop(inputs.copy())
        exact = reference.bprop(inputs, outputs, grads)
        perturbed = compare.perturbed_inputs(inputs)
        shifted = [x for _, plus, minus in perturbed for x in (plus, minus)]
        stacked = np.concatenate(shifted, axis=0)
        if _independent_of_the_batch(reference.fprop(stacked[:2].copy()), reference.fprop(stacked.copy())):
            forward, outputs_of = self._forward_batch(self._id(check, 'differences'), stacked, len(shifted))
        else:
            forward, outputs_of = self._forward_calls(self._id(check, 'differences'), [(x, None) for x in shifted])
        requests = [self._request(self._id(check, 'bprop'), 'bprop', [inputs, outputs, grads])] + forward
        fprop_name = self.class_name + '.fprop'

        def judge(responses):
            got = single(returned(responses, self._id(check, 'bprop'), self.what), self.what)
            truth, source = derivative_to_judge_by(
                responses, range(0, 2 * len(perturbed), 2), range(1, 2 * len(perturbed), 2),
                grads, exact, fprop_name, outputs_of=outputs_of)
            comparison = compare.compare_arrays(got, truth, self.what, compare.GRADCHECK_RTOL,
                                                compare.GRADCHECK_ATOL)
            if comparison.ok:
                return Verdict(1.0, 'passed')
            hint = (diagnose.diagnose_bprop(self.class_name, inputs, outputs, grads, got)
                    or diagnose_image.diagnose_image_bprop(self.reference(), inputs, grads, got))
            message = '{0} (compared with {1}).'.format(comparison.message.rstrip('.'), source)
            return Verdict(0.0, 'failed', with_hint(message, hint), hint)

        return requests, judge

    def gradcheck_grads_wrt_params(self, check):
        inputs, grads = self._gradcheck_inputs(1)
        reference = self.reference()
        params = [np.array(p, dtype=float) for p in reference.params]
        exact = reference.grads_wrt_params(inputs, grads)
        calls, layout = [], []  # layout: (parameter index, its first call, its element count)
        for p_index, param in enumerate(params):
            layout.append((p_index, len(calls), param.size))
            for _, plus, minus in compare.perturbed_inputs(param):
                for value in (plus, minus):
                    calls.append((inputs, [value if j == p_index else other for j, other in enumerate(params)]))
        forward, outputs_of = self._forward_calls(self._id(check, 'differences'), calls)
        requests = [self._request(self._id(check, 'grads'), 'grads_wrt_params', [inputs, grads])] + forward

        def judge(responses):
            got = returned(responses, self._id(check, 'grads'), self.what)
            if len(got) != len(exact):
                return Verdict(0.0, 'failed', '{0} returned {1} arrays, expected {2}.'.format(
                    self.what, len(got), len(exact)))
            for p_index, first, size in layout:
                truth, source = derivative_to_judge_by(
                    responses, range(first, first + 2 * size, 2), range(first + 1, first + 2 * size, 2),
                    grads, exact[p_index], self.what, outputs_of=outputs_of)
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
        shape = tuple(self.target.option('input_shape', PROPERTY_SHAPE))
        inputs = rng.uniform(-3., 3., size=shape)
        large = rng.choice([-LARGE_MAGNITUDE, LARGE_MAGNITUDE, 0.], size=shape)
        return inputs, large, rng.normal(size=self._output_shape(inputs))

    def property_fprop(self, check):
        inputs, large, _ = self._property_inputs()
        reference = self.reference()
        expected, expected_large = reference.fprop(inputs.copy()), reference.fprop(large.copy())
        ids = [self._id(check, part) for part in ('full', 'large', 'half')]
        independent = _independent_of_the_batch(self.reference().fprop(inputs[:2].copy()), expected)
        requests = [
            self._request(ids[0], 'fprop', [inputs], return_inputs=True),
            self._request(ids[1], 'fprop', [large]),
        ] + ([self._request(ids[2], 'fprop', [inputs[:2]])] if independent else [])

        def judge(responses):
            answer = response(responses, ids[0], self.what)
            full = single(answer.returned, self.what)
            problems = _shape_and_mutation(self.what, full, expected, [inputs], answer.inputs_after)
            problems += _finite_large(self.what, responses, ids[1], expected_large)
            if independent:
                problems += _batch_independence(self.what, responses, ids[2], full)
            return property_verdict(problems, 3 + int(independent), values_right(self.what, full, expected))

        return requests, judge

    def property_bprop(self, check):
        inputs, large, grads = self._property_inputs(seed_offset=1)
        reference = self.reference()
        outputs = reference.fprop(inputs.copy())
        expected = reference.bprop(inputs, outputs, grads)
        ids = [self._id(check, part) for part in ('full', 'large', 'half')]
        large = np.where(large == 0., LARGE_MAGNITUDE, large)  # away from any kink at 0
        large_outputs = reference.fprop(large.copy())
        large_request = self._request(ids[1], 'bprop',
                              [large, large_outputs, grads])
        expected_large = reference.bprop(large, large_outputs, grads)
        independent = _independent_of_the_batch(
            self.reference().bprop(inputs[:2], outputs[:2], grads[:2]), expected)
        requests = [
            self._request(ids[0], 'bprop', [inputs, outputs, grads],
                  return_inputs=True),
            large_request,
        ] + ([self._request(ids[2], 'bprop', [inputs[:2], outputs[:2], grads[:2]])] if independent else [])

        def judge(responses):
            answer = response(responses, ids[0], self.what)
            full = single(answer.returned, self.what)
            problems = _shape_and_mutation(self.what, full, expected, [inputs, outputs, grads],
                                           answer.inputs_after)
            problems += _finite_large(self.what, responses, ids[1], expected_large,
                                      lambda got: self._accept_ties(large, got, expected_large))
            if independent:
                problems += _batch_independence(self.what, responses, ids[2], full)
            return property_verdict(problems, 3 + int(independent), values_right(self.what, full, expected))

        return requests, judge


def _shape_and_mutation(what, got, expected, sent_inputs, returned_inputs):
    problems = []
    if got.shape != expected.shape:
        problems.append('returns shape {0} for inputs of shape {1} (expected {2})'.format(
            got.shape, sent_inputs[0].shape, expected.shape))
    returned_inputs = returned_inputs[:len(sent_inputs)]  # the parameters set on the layer follow
    if returned_inputs and len(returned_inputs) == len(sent_inputs):
        names = ['inputs', 'outputs', 'grads_wrt_outputs']
        for name, before, after in zip(names, sent_inputs, returned_inputs):
            if after.shape != before.shape or not np.array_equal(before, after, equal_nan=True):
                problems.append('modifies its argument {0} in place'.format(name))
    return problems


def _finite_large(what, responses, request_id, expected, accept=None):
    """Problems with the answer to inputs of magnitude 1e3; `accept(got)` may adjust `expected`."""
    try:
        got = single(returned(responses, request_id, what), what)
    except ResponseProblem as problem:
        return ['fails for inputs of magnitude 1e3 ({0})'.format(problem)]
    if accept is not None:
        expected = accept(got)
    if got.shape == expected.shape and not np.all(np.isfinite(got)):
        return ['gives NaN or inf for inputs of magnitude 1e3 (use a numerically stable form)']
    if not compare.compare_arrays(got, expected, what).ok:
        return ['gives wrong values for inputs of magnitude 1e3']
    return []


def _reference_piece(piece: dict):
    """The reference instance of a helper object of a case (``{"class", "source", "kwargs"}``)."""
    dotted = '{0}.{1}'.format(piece.get('source', 'mlp.penalties'), piece['class'])
    return oracle.reference_object(dotted)(**(piece.get('kwargs') or {}))


def _independent_of_the_batch(first_two, full) -> bool:
    """Whether the reference gives the first two examples alone what it gives them in the full batch.

    Batch-size independence is a property only of layers that have it: batch
    normalisation's statistics are those of the batch, so it is not asked of it.
    """
    first_two, full = np.asarray(first_two), np.asarray(full)
    return first_two.shape == (2,) + full.shape[1:] and bool(np.allclose(first_two, full[:2]))


def _batch_independence(what, responses, request_id, full):
    try:
        part = single(returned(responses, request_id, what), what)
    except ResponseProblem as problem:
        return ['fails on a batch of 2 ({0})'.format(problem)]
    if part.shape != (2,) + full.shape[1:] or not np.allclose(part, full[:2], equal_nan=True):
        return ['gives different results for the first two examples when the batch size changes']
    return []


