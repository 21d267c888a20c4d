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
  independent draws either way); a second call draws a new mask; shape;
  inputs untouched;
* bprop property, on one instance: fprop then bprop with the outputs it
  returned; the gradient must be grads_wrt_outputs where the output kept
  its input and 0 where fprop zeroed it (the mask is reused, not redrawn).
"""

from __future__ import annotations

import math

import numpy as np

from autograder.checks import diagnose, registry
from autograder.checks.base import (
    TargetPlanner, call_request, compare_or_verdict, mutated, property_verdict,
    returned, sequence_records, sequence_request, single)
from autograder.checks.training import TrainingCheck

RNG_SEED = 20170214
FRACTION_INPUTS = 50000
FALSE_FAIL_RATE = 1e-7
BATCH_SHAPE = (5, 400)


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
    METHOD_CHECKS = {'fprop': ('fixed', 'property'), 'bprop': ('property',), None: ('training',)}
    PROPERTY_TITLES = {
        'fprop': 'properties: outputs are the inputs or 0, the kept fraction matches incl_prob, a new '
                 'mask on every call, output shape, inputs left unmodified',
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

    def fixed_fprop(self, check, case):
        inputs = case.array('inputs')
        if inputs is None:
            inputs = np.random.RandomState(case.seed).uniform(-case.scale, case.scale, size=case.shape)
        expected = self.reference().fprop(inputs.copy(), stochastic=False)
        request_id = self._id(check, 'deterministic')
        request = call_request(request_id, self.class_name, self.init_kwargs, 'fprop', [inputs],
                               kwargs={'stochastic': False}, rng_seed=RNG_SEED)
        what = self.what + ' (stochastic=False)'

        def judge(responses):
            got = single(returned(responses, request_id, what), what)
            return compare_or_verdict(got, expected, what, reveal=case.public,
                                      hint=lambda: diagnose.diagnose_dropout_evaluation(inputs, got))

        return [request], judge

    def property_fprop(self, check):
        rng = np.random.RandomState(4242)
        many = nonzero_inputs(rng, (1, FRACTION_INPUTS))
        batch = nonzero_inputs(rng, BATCH_SHAPE)
        p = self.incl_prob()
        steps = [
            {'method': 'fprop', 'args': [{'copy': 0}], 'record': [{'returned': True}]},
            {'method': 'fprop', 'args': [{'array': 1}], 'record': [{'returned': True}, {'array': 1}]},
            {'method': 'fprop', 'args': [{'copy': 1}], 'record': [{'returned': True}]},
        ]
        request = sequence_request(self._id(check, 'sequence'), self.class_name, self.init_kwargs,
                                   steps, [many, batch], rng_seed=RNG_SEED)
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
            problems += mutated(['inputs'], [batch], records[1][1])
            return property_verdict(problems, 5, not problems or not problems[0].startswith('keeps'))

        return [request], judge

    def property_bprop(self, check):
        rng = np.random.RandomState(4243)
        batch = nonzero_inputs(rng, BATCH_SHAPE)
        grads = rng.normal(size=BATCH_SHAPE)
        steps = [
            {'method': 'fprop', 'args': [{'copy': 0}], 'record': [{'returned': True}]},
            {'method': 'bprop', 'args': [{'copy': 0}, {'returned': [0, 0]}, {'copy': 1}],
             'record': [{'returned': True}]},
        ]
        request = sequence_request(self._id(check, 'sequence'), self.class_name, self.init_kwargs,
                                   steps, [batch, grads], rng_seed=RNG_SEED)
        p = self.incl_prob()

        def judge(responses):
            records = sequence_records(responses, request, self.what)
            outputs = single(records[0][0], self.class_name + '.fprop')
            got = single(records[1][0], self.what)
            if outputs.shape != batch.shape or not np.all(kept_or_dropped(batch, outputs)):
                return property_verdict(['could not be judged: fprop does not return the inputs or 0 '
                                         '(see the fprop checks)'], 1, True)
            expected = grads * (outputs != 0.)
            return compare_or_verdict(got, expected, self.what, hint=lambda: diagnose.diagnose_dropout_bprop(
                outputs, grads, got, p))

        return [request], judge

    def default_training_layers(self):
        return self.sigmoid_model(self.student_piece(init_scale=None, stochastic=True))

    def training_blame(self):
        return 'fprop or bprop is wrong'
