"""The stochastic-layer kind: dropout-like layers judged by properties, not by a mask.

TRUSTED. A correct dropout layer may draw its mask in many ways
(`rng.uniform(size=...) < p`, `rng.binomial(1, p, size)`, `rng.rand(...) <
p`, a mask from `rng.choice`, one mask per batch or per example), so the
stochastic mode is never compared with the reference's draws. Instead:

* deterministic mode (`fprop(inputs, stochastic=False)`): a fixed check
  against the reference (the course scales by incl_prob at evaluation);
* fprop property, on one instance given `rng=RandomState(seed)`: every output
  is its input or 0 (the course does not rescale in training); on 50,000
  nonzero inputs the kept fraction f is within t of incl_prob p, where
  t = sqrt(ln(2 / 1e-7) / (2 n)) ~ 0.0130: by Hoeffding's inequality a
  correct layer that keeps each unit independently with probability p
  fails with probability at most 2 exp(-2 n t^2) = 1e-7 (a layer sharing
  one mask across the batch is tested on a batch of one, so n counts
  independent draws either way); a second call draws a new mask; a second
  layer given an equally seeded rng draws the same first mask (the mask
  comes from the layer's rng, not np.random); shape; inputs untouched (in
  both modes);
* bprop property, on one instance: fprop then bprop with the outputs it
  returned; the gradient must be grads_wrt_outputs where the output kept
  its input and 0 where fprop zeroed it (the mask is reused, not redrawn),
  and bprop must leave its inputs and grads_wrt_outputs untouched.

Cases. A case may build the layer with other constructor arguments than the
target entry, as for the layer kind: ``"layer": {"kwargs": {...}}`` replaces
the entry's kwargs for that case only (e.g. ``share_across_batch: false``).
A fixed fprop case checks the deterministic mode with them and, when the
case says ``"mask_sharing": true``, also one stochastic fprop of a (4, 5000)
batch of nonzero inputs: every output is its input or 0, the mask is shared
by all examples of the batch exactly when the reference's is with these
arguments (independent per-example masks of a correct layer coincide on all
5000 units with probability below (p^4 + (1 - p)^4)^5000), and the kept
fraction is within the Hoeffding margin of incl_prob for the number of
independent draws (5000 for a shared mask, 20,000 otherwise). A fixed bprop
case runs two stochastic fprops of the case's batch (its inputs when none is
0, else seeded nonzero inputs of its shape) and bprop with the outputs of the
second: the gradient must pass exactly where that last fprop kept its input.
"""

from __future__ import annotations

import math

import numpy as np

from autograder.checks import diagnose, registry
from autograder.checks.base import (
    TargetPlanner, Verdict, call_request, compare_or_verdict, mutated, property_verdict,
    returned, sequence_records, sequence_request, single)
from autograder.checks.training import TrainingCheck

RNG_SEED = 20170214
FRACTION_INPUTS = 50000
FALSE_FAIL_RATE = 1e-7
BATCH_SHAPE = (5, 400)
MASK_SHAPE = (4, 5000)


def hoeffding_margin(num_draws: int, false_fail_rate: float = FALSE_FAIL_RATE) -> float:
    """t with P(|f - p| >= t) <= 2 exp(-2 n t^2) = false_fail_rate for a mean f of n Bernoulli(p)."""
    return math.sqrt(math.log(2. / false_fail_rate) / (2. * num_draws))


def nonzero_inputs(rng: np.random.RandomState, shape) -> np.ndarray:
    """Inputs of magnitude in [0.5, 2) and random sign: a zero output always means 'dropped'."""
    return rng.uniform(0.5, 2., size=shape) * np.where(rng.uniform(size=shape) < 0.5, -1., 1.)


def kept_or_dropped(inputs: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Where each output equals its input (kept) or is 0 (dropped): True, else False."""
    with np.errstate(all='ignore'):
        return np.isclose(outputs, inputs, rtol=1e-12, atol=0.) | (outputs == 0.)


@registry.register
class StochasticLayerPlanner(TrainingCheck, TargetPlanner):
    """Checks of a stochastic layer (dropout) fair to any way of drawing the mask."""

    kind = 'stochastic_layer'
    reference_module = 'mlp.layers'
    METHOD_CHECKS = {'fprop': ('fixed', 'property'), 'bprop': ('fixed', 'property'), None: ('training',)}
    PROPERTY_TITLES = {
        'fprop': 'properties: outputs are the inputs or 0, the kept fraction matches incl_prob, a new '
                 'mask on every call, masks drawn from the layer\'s rng, output shape, inputs left unmodified',
        'bprop': 'properties: after fprop, the gradient passes exactly where fprop kept the inputs',
    }
    TRAINING_TITLE = ('a short seeded MNIST training run with this layer reaches the reference '
                      'run\'s accuracy')
    training_follows_reference = False  # the student's masks may be drawn differently

    def incl_prob(self) -> float:
        return float(getattr(self.reference(), 'incl_prob', 0.5))

    def reference(self):
        from autograder.checks import oracle
        cls = oracle.reference_object(oracle.reference_path(self.target, self.reference_module))
        return cls(rng=np.random.RandomState(RNG_SEED), **self.init_kwargs)

    def _for_case(self, case):
        """This planner, or a copy built with the case's ``"layer": {"kwargs": {...}}``."""
        override = case.data.get('layer')
        return self.case_twin(override) if override else self

    def _with_arguments(self, what: str) -> str:
        """`what`, naming the constructor arguments when a case changed them."""
        if self.init_kwargs == dict(self.spec.targets[self.class_name].kwargs):
            return what
        return '{0} with {1}'.format(what, ', '.join(
            '{0}={1!r}'.format(key, value) for key, value in sorted(self.init_kwargs.items())))

    def fixed_fprop(self, check, case):
        return self._for_case(case)._fixed_fprop(check, case)

    def fixed_bprop(self, check, case):
        return self._for_case(case)._fixed_bprop(check, case)

    def _fixed_fprop(self, check, case):
        inputs = case.array('inputs')
        if inputs is None:
            inputs = np.random.RandomState(case.seed).uniform(-case.scale, case.scale, size=case.shape)
        expected = self.reference().fprop(inputs.copy(), stochastic=False)
        request_id = self._id(check, 'deterministic')
        requests = [call_request(request_id, self.class_name, self.init_kwargs, 'fprop', [inputs],
                                 kwargs={'stochastic': False}, rng_seed=RNG_SEED)]
        what = self._with_arguments(self.what) + ' (stochastic=False)'
        sharing = self._mask_sharing(check, case) if case.data.get('mask_sharing') else None
        if sharing is not None:
            requests.append(sharing[0])

        def judge(responses):
            got = single(returned(responses, request_id, what), what)
            verdict = compare_or_verdict(got, expected, what, reveal=case.public,
                                         hint=lambda: diagnose.diagnose_dropout_evaluation(inputs, got))
            if verdict.fraction < 1. or sharing is None:
                return verdict
            return sharing[1](responses)

        return requests, judge

    def _mask_sharing(self, check, case):
        """One stochastic fprop: values, the mask shared across the batch as the reference's, the fraction."""
        batch = nonzero_inputs(np.random.RandomState(case.seed + 1), MASK_SHAPE)
        reference_mask = self.reference().fprop(batch.copy()) != 0.
        shared = bool(np.all(reference_mask == reference_mask[:1]))
        request_id = self._id(check, 'stochastic')
        request = call_request(request_id, self.class_name, self.init_kwargs, 'fprop', [batch],
                               rng_seed=RNG_SEED)
        what = self._with_arguments(self.what)
        p = self.incl_prob()
        draws = batch.shape[1] if shared else batch.size
        margin = hoeffding_margin(draws)

        def judge(responses):
            outputs = single(returned(responses, request_id, what), what)
            if outputs.shape != batch.shape or not np.all(kept_or_dropped(batch, outputs)):
                return Verdict(0.0, 'failed', '{0} in training mode returns values that are neither the '
                               'inputs nor 0 (or the wrong shape) on a batch of shape {1}.'.format(
                                   what, batch.shape))
            mask = outputs != 0.
            same_rows = bool(np.all(mask == mask[:1]))
            if shared and not same_rows:
                return Verdict(0.0, 'failed', '{0} draws a different mask for each example of the batch; '
                               'with these arguments one mask must be drawn per batch and shared by all '
                               'its examples.'.format(what))
            if not shared and same_rows:
                return Verdict(0.0, 'failed', '{0} gives every example of the batch the same mask; with '
                               'these arguments each example must get its own mask.'.format(what))
            fraction = float(np.mean(mask[:1] if shared else mask))
            if abs(fraction - p) > margin:
                hint = (' (it looks like 1 - incl_prob was used as the probability of keeping a unit)'
                        if abs(fraction - (1. - p)) <= margin else '')
                return Verdict(0.0, 'failed', '{0} keeps {1:.1%} of {2:,} independent draws, but incl_prob '
                               'is {3:g}{4}; a correct layer is this far off with probability below '
                               '{5:g}.'.format(what, fraction, draws, p, hint, FALSE_FAIL_RATE))
            return Verdict(1.0, 'passed')

        return request, judge

    def property_fprop(self, check):
        rng = np.random.RandomState(4242)
        many = nonzero_inputs(rng, (1, FRACTION_INPUTS))
        batch = nonzero_inputs(rng, BATCH_SHAPE)
        p = self.incl_prob()
        steps = [
            {'method': 'fprop', 'args': [{'copy': 0}], 'record': [{'returned': True}]},
            {'method': 'fprop', 'args': [{'array': 1}], 'record': [{'returned': True}, {'array': 1}]},
            {'method': 'fprop', 'args': [{'copy': 1}], 'record': [{'returned': True}]},
            {'method': 'fprop', 'args': [{'array': 2}], 'kwargs': {'stochastic': False},
             'record': [{'array': 2}]},
        ]
        request = sequence_request(self._id(check, 'sequence'), self.class_name, self.init_kwargs,
                                   steps, [many, batch, batch], rng_seed=RNG_SEED)
        twin_id = self._id(check, 'same-seed')
        twin = call_request(twin_id, self.class_name, self.init_kwargs, 'fprop', [many], rng_seed=RNG_SEED)
        margin = hoeffding_margin(FRACTION_INPUTS)

        def judge(responses):
            records = sequence_records(responses, request, self.what)
            first = single(records[0][0], self.what)
            outputs = single(records[1][0], self.what)
            again = single(records[2][0], self.what)
            problems = []
            if first.shape != many.shape or outputs.shape != batch.shape:
                problems.append('returns outputs of shape {0} for inputs of shape {1}'.format(
                    outputs.shape, batch.shape))
                return property_verdict(problems, 5, False)
            values_ok = bool(np.all(kept_or_dropped(many, first)) and np.all(kept_or_dropped(batch, outputs)))
            if not values_ok:
                kept = first != 0.
                if np.allclose(first[kept], many[kept] / p):
                    problems.append('scales the kept inputs by 1 / incl_prob ("inverted dropout"): the '
                                    'course keeps them as they are in training and scales by incl_prob '
                                    'when stochastic=False')
                else:
                    problems.append('returns values that are neither the inputs nor 0')
                return property_verdict(problems, 5, False)
            fraction = float(np.mean(first != 0.))
            if abs(fraction - p) > margin:
                hint = (' (it looks like 1 - incl_prob was used as the probability of keeping a unit)'
                        if abs(fraction - (1. - p)) <= margin else '')
                problems.append('keeps {0:.1%} of 50,000 inputs, but incl_prob is {1:g}{2}; a correct '
                                'layer is this far off with probability below {3:g}'.format(
                                    fraction, p, hint, FALSE_FAIL_RATE))
            if 0. < p < 1. and np.array_equal(outputs != 0., again != 0.):
                problems.append('drops the same units on two calls: draw a new mask in every '
                                'stochastic fprop')
            if 0. < p < 1. and not np.array_equal(single(returned(responses, twin_id, self.what), self.what),
                                                  first):
                problems.append('draws different masks in two layers given equally seeded rngs: draw the '
                                'mask from the layer\'s own rng (self.rng), not from np.random')
            problems += mutated(['inputs'], [batch], records[1][1])
            problems += [problem + ' when stochastic=False' for problem in
                         mutated(['inputs'], [batch], records[3][0]) if problem not in problems]
            return property_verdict(problems, 6, not problems or not problems[0].startswith('keeps'))

        return [request, twin], judge

    def property_bprop(self, check):
        rng = np.random.RandomState(4243)
        batch = nonzero_inputs(rng, BATCH_SHAPE)
        grads = rng.normal(size=BATCH_SHAPE)
        return self._bprop_after_fprop(self._id(check, 'sequence'), batch, grads, fprops=1)

    def _fixed_bprop(self, check, case):
        rng = np.random.RandomState(case.seed)
        batch = case.array('inputs')
        if batch is None or not np.all(batch != 0.):  # a zero input would hide whether it was kept
            batch = nonzero_inputs(rng, tuple(case.shape) if batch is None else batch.shape)
        grads = case.array('grads_wrt_outputs')
        if grads is None or grads.shape != batch.shape:
            grads = rng.normal(size=batch.shape)
        return self._bprop_after_fprop(self._id(check, 'sequence'), batch, grads, fprops=2,
                                       reveal=case.public)

    def _bprop_after_fprop(self, request_id, batch, grads, fprops: int, reveal: bool = True):
        """`fprops` stochastic fprops on one instance, then bprop with the last one's outputs."""
        steps = [{'method': 'fprop', 'args': [{'copy': 0}], 'record': [{'returned': True}]}
                 for _ in range(fprops)]
        steps.append({'method': 'bprop', 'args': [{'array': 0}, {'returned': [fprops - 1, 0]}, {'array': 1}],
                      'record': [{'returned': True}, {'array': 0}, {'array': 1}]})
        request = sequence_request(request_id, self.class_name, self.init_kwargs,
                                   steps, [batch, grads], rng_seed=RNG_SEED)
        p = self.incl_prob()
        what = self._with_arguments(self.what)

        def judge(responses):
            records = sequence_records(responses, request, what)
            outputs = single(records[fprops - 1][0], self.class_name + '.fprop')
            got = single(records[fprops][0], what)
            if outputs.shape != batch.shape or not np.all(kept_or_dropped(batch, outputs)):
                return property_verdict(['could not be judged: fprop does not return the inputs or 0 '
                                         '(see the fprop checks)'], 1, True)
            expected = grads * (outputs != 0.)
            verdict = compare_or_verdict(got, expected, what, reveal=reveal,
                                         hint=lambda: diagnose.diagnose_dropout_bprop(outputs, grads, got, p))
            problems = mutated(['inputs', 'grads_wrt_outputs'], [batch, grads],
                               [single(records[fprops][1], what), single(records[fprops][2], what)])
            if verdict.fraction < 1. or not problems:
                return verdict
            return property_verdict(problems, 2)

        return [request], judge

    def default_training_layers(self):
        return self.sigmoid_model(self.student_piece(init_scale=None, stochastic=True))

    def training_blame(self):
        return 'fprop or bprop is wrong'
