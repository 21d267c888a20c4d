"""What error and penalty kinds share: a scalar `__call__` and its derivative `grad`.

TRUSTED. Not a kind itself: `error` and `penalty` subclass `ObjectivePlanner`
and say which arguments a case gives (`arguments`), which of them `grad`
differentiates (the first), and which properties and diagnoses apply.
Checks:
    __call__  fixed (value vs the reference), property (returns one number,
              arguments untouched, plus the kind's own properties)
    grad      fixed, gradcheck (central differences of the student's OWN
              __call__, all in one sequence request; the reference
              derivative when their __call__ is wrong), property (shape,
              arguments untouched, plus the kind's own)
"""

from __future__ import annotations

import numpy as np
from mlp import checks as compare

from autograder.checks import oracle
from autograder.checks.base import (
    TargetPlanner, Verdict, call_request, compare_or_verdict,
    derivative_to_judge_by, mutated, property_verdict, response, returned, scalar,
    sequence_records, subgradient_at_zeros,
    sequence_request, single, values_right, with_hint)

PROPERTY_SEED = 4242
GRADCHECK_SEED = 9176


class ObjectivePlanner(TargetPlanner):
    """Checks of a scalar objective's `__call__` and `grad`."""

    METHOD_CHECKS = {
        '__call__': ('fixed', 'property'),
        'grad': ('fixed', 'gradcheck', 'property'),
    }
    ARGUMENT_NAMES: tuple = ()

    # what the subclasses say -------------------------------------------------------

    def arguments(self, case) -> list[np.ndarray]:
        """The arguments of a fixed case (explicit or seeded)."""
        raise NotImplementedError

    def random_arguments(self, seed: int, away_from_zero: bool = False) -> list[np.ndarray]:
        """Random arguments for property and gradient checks."""
        raise NotImplementedError

    def call_properties(self, responses, ids, args, expected) -> list[str]:
        return []

    def grad_properties(self, responses, ids, args, expected) -> list[str]:
        return []

    def extra_call_requests(self, check, args) -> tuple[list, list]:
        """(requests, their ids) the kind's own __call__ properties need."""
        return [], []

    def extra_grad_requests(self, check, args) -> tuple[list, list]:
        return [], []

    def diagnose_call(self, args, got: float) -> str:
        return ''

    def diagnose_grad(self, args, got: np.ndarray) -> str:
        return ''

    # shared machinery --------------------------------------------------------------

    def _request(self, request_id, method, args, **options):
        return call_request(request_id, self.class_name, self.init_kwargs, method, args, **options)

    def expected(self, method: str, args: list[np.ndarray]):
        reference = self.reference()
        value = getattr(reference, method)(*[a.copy() for a in args])
        return np.asarray(value, dtype=float)

    def fixed_call(self, check, case):
        args = self.arguments(case)
        expected = float(self.expected('__call__', args))
        request_id = self._id(check, 'call')

        def judge(responses):
            got = scalar(returned(responses, request_id, self.what), self.what)
            return compare_or_verdict(np.array(got), np.array(expected), self.what,
                                      reveal=case.public, hint=lambda: self.diagnose_call(args, got))

        return [self._request(request_id, '__call__', args)], judge

    def fixed_grad(self, check, case):
        args = self.arguments(case)
        sides = [self.expected('grad', [oracle.one_sided_zero_inputs(args[0], side)] + args[1:])
                 for side in (-1., 1.)]
        request_id = self._id(check, 'grad')

        def judge(responses):
            got = single(returned(responses, request_id, self.what), self.what)
            expected = subgradient_at_zeros(args[0], got, *sides)  # |w| at w = 0: any of [-c, c]
            return compare_or_verdict(got, expected, self.what, reveal=case.public,
                                      hint=lambda: self.diagnose_grad(args, got))

        return [self._request(request_id, 'grad', args)], judge

    def gradcheck_grad(self, check):
        args = self.random_arguments(GRADCHECK_SEED, away_from_zero=True)
        exact = self.expected('grad', args)
        perturbed = compare.perturbed_inputs(args[0])
        rest = list(args[1:])
        # Slots: 0 .. n-1 the arguments; then plus_k, minus_k for every element k.
        arrays = list(args)
        steps = [{'method': 'grad', 'args': [{'copy': i} for i in range(len(args))],
                  'record': [{'returned': True}]}]
        for _, plus, minus in perturbed:
            for value in (plus, minus):
                arrays.append(value)
                steps.append({'method': '__call__',
                              'args': [{'copy': len(arrays) - 1}] + [{'copy': i + 1} for i in range(len(rest))],
                              'record': [{'returned': True}]})
        request = sequence_request(self._id(check, 'sequence'), self.class_name, self.init_kwargs,
                                   steps, arrays)
        call_name = '{0}.__call__'.format(self.class_name)

        def judge(responses):
            records = sequence_records(responses, request, self.what)
            got = single(records[0][0], self.what)

            def outputs_of(_, index):
                return np.asarray(scalar(records[index][0], call_name))

            plus_ids = [1 + 2 * k for k in range(len(perturbed))]
            minus_ids = [2 + 2 * k for k in range(len(perturbed))]
            truth, source = derivative_to_judge_by(responses, plus_ids, minus_ids, np.ones(()),
                                                   exact, call_name, outputs_of, forward='__call__')
            comparison = compare.compare_arrays(got, truth, self.what, compare.GRADCHECK_RTOL,
                                                compare.GRADCHECK_ATOL)
            if comparison.ok:
                return Verdict(1.0, 'passed')
            hint = self.diagnose_grad(args, got)
            message = '{0} (compared with {1}).'.format(comparison.message.rstrip('.'), source)
            return Verdict(0.0, 'failed', with_hint(message, hint), hint)

        return [request], judge

    def property_call(self, check):
        args = self.random_arguments(PROPERTY_SEED)
        expected = self.expected('__call__', args)
        main_id = self._id(check, 'full')
        extra, extra_ids = self.extra_call_requests(check, args)
        requests = [self._request(main_id, '__call__', args, return_inputs=True)] + extra

        def judge(responses):
            answer = response(responses, main_id, self.what)
            got = single(answer.returned, self.what)
            problems = []
            if got.shape != ():
                problems.append('returns an array of shape {0} instead of a single number'.format(got.shape))
            problems += mutated(list(self.ARGUMENT_NAMES), args, answer.inputs_after)
            problems += self.call_properties(responses, extra_ids, args, expected)
            right = got.size == 1 and values_right(self.what, got.reshape(()), expected)
            return property_verdict(problems, 2 + len(extra_ids), right)

        return requests, judge

    def property_grad(self, check):
        args = self.random_arguments(PROPERTY_SEED + 1)
        expected = self.expected('grad', args)
        main_id = self._id(check, 'full')
        extra, extra_ids = self.extra_grad_requests(check, args)
        requests = [self._request(main_id, 'grad', args, return_inputs=True)] + extra

        def judge(responses):
            answer = response(responses, main_id, self.what)
            got = single(answer.returned, self.what)
            problems = []
            if got.shape != expected.shape:
                problems.append('returns shape {0} for an argument of shape {1}'.format(
                    got.shape, expected.shape))
            problems += mutated(list(self.ARGUMENT_NAMES), args, answer.inputs_after)
            problems += self.grad_properties(responses, extra_ids, args, expected)
            return property_verdict(problems, 2 + len(extra_ids), values_right(self.what, got, expected))

        return requests, judge


def answer_of(responses, request_id, what) -> np.ndarray:
    """The single array a request returned, or a ResponseProblem."""
    return single(response(responses, request_id, what).returned, what)
