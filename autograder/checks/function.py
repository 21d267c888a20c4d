"""The function kind: a plain function the notebook defines (`single_layer_fprop`, ...).

TRUSTED. The spec names the reference (``"reference": "mlp...."`` or
``"autograder.course.reference_functions...."``). Fixed cases compare what
the function returns (an array, a tuple of arrays or a number) with the
reference's answer; a reference that returns None updates its arguments in
place, and then the arguments after the call are compared instead. The
property check uses fresh random arguments shaped like the item's first
fixed case: the result has the right shapes, the arguments are left
unmodified, and (for `batch_axis_args`, default [0]) the first two examples
alone give the first two rows of the result.

Cases: ``{"args": [array-or-number, ...], "kwargs": {...}}`` or seeded
random ``{"seed", "arg_shapes": [shape-or-number, ...], "scale"}`` (a number
in `arg_shapes` is passed as it is, e.g. a learning rate).
"""

from __future__ import annotations

import numpy as np
from mlp import checks as compare

from autograder.checks import oracle, registry
from autograder.checks.base import (
    ResponseProblem, TargetPlanner, Verdict, call_request, mutated, property_verdict, response)

PROPERTY_SEED = 4242


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def case_args(case) -> list:
    """The arguments of a function case: float64 arrays, and numbers as they are."""
    if case.data.get('args') is not None:
        return [value if _is_number(value) else np.array(value, dtype=float)
                for value in case.data['args']]
    return random_args(case.data.get('arg_shapes') or [], case.seed, case.scale)


def random_args(shapes, seed: int, scale: float) -> list:
    rng = np.random.RandomState(seed)
    return [shape if _is_number(shape) else rng.uniform(-scale, scale, size=tuple(shape))
            for shape in shapes]


def request_for(request_id: str, name: str, args: list, kwargs: dict | None = None,
                return_inputs: bool = False):
    """A call of the submission's function `name` with arrays and numbers in their order."""
    arrays = [a for a in args if not _is_number(a)]
    request = call_request(request_id, name, {}, None, arrays, return_inputs=return_inputs,
                           kwargs=kwargs)
    positions, index = [], 0
    for value in args:
        if _is_number(value):
            positions.append(value)
        else:
            positions.append({'array': index})
            index += 1
    request.header['args'] = positions
    return request


def as_list(value) -> list[np.ndarray] | None:
    """A reference answer as a list of float64 arrays (None stays None: an in-place function)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [np.asarray(v, dtype=float) for v in value]
    return [np.asarray(value, dtype=float)]


@registry.register
class FunctionPlanner(TargetPlanner):
    """Checks of a notebook function against its reference."""

    kind = 'function'
    METHOD_CHECKS = {None: ('fixed', 'property')}
    PROPERTY_TITLES = {None: 'properties: output shapes, arguments left unmodified, batch-size independent'}

    @classmethod
    def entry_problem(cls, target):
        reference = target.option('reference')
        if not isinstance(reference, str):
            return 'a function needs "reference": the dotted path of its reference solution'
        if not any(reference.startswith(prefix) for prefix in oracle.REFERENCE_PREFIXES):
            return 'reference {0!r} is outside {1}'.format(reference, ', '.join(oracle.REFERENCE_PREFIXES))
        return ''

    def reference(self):
        return oracle.reference_object(self.target.option('reference'))

    def _answer(self, args, kwargs):
        """(the reference's returned arrays or None, its array arguments after the call)."""
        copies = [a if _is_number(a) else a.copy() for a in args]
        value = self.reference()(*copies, **(kwargs or {}))
        return as_list(value), [a for a in copies if not _is_number(a)]

    def _judge_values(self, got_returned, got_after, expected, expected_after, reveal) -> Verdict | None:
        """A failed verdict when the answer differs from the reference's, else None."""
        if expected is None:
            names = ['argument {0}'.format(i) for i in range(len(expected_after))]
            pairs = list(zip(names, got_after, expected_after))
            if len(got_after) != len(expected_after):
                return Verdict(0.0, 'failed', '{0}: the arguments were not sent back.'.format(self.what))
        else:
            if len(got_returned) != len(expected):
                return Verdict(0.0, 'failed', '{0} returned {1} value(s), expected {2}.'.format(
                    self.what, len(got_returned), len(expected)))
            names = ['{0}[{1}]'.format(self.what, i) if len(expected) > 1 else self.what
                     for i in range(len(expected))]
            pairs = list(zip(names, got_returned, expected))
        for name, got, right in pairs:
            if got.shape != right.shape and got.size == right.size == 1:
                got = got.reshape(right.shape)  # a number returned as a 0-d or 1-element array
            comparison = compare.compare_arrays(got, right, name, reveal=reveal)
            if not comparison.ok:
                return Verdict(0.0, 'failed', comparison.message)
        return None

    def fixed_whole(self, check, case):
        args, kwargs = case_args(case), case.data.get('kwargs') or {}
        expected, expected_after = self._answer(args, kwargs)
        request_id = self._id(check, 'call')
        request = request_for(request_id, self.class_name, args, kwargs,
                              return_inputs=expected is None)

        def judge(responses):
            answer = response(responses, request_id, self.what)
            failed = self._judge_values(answer.returned, answer.inputs_after, expected,
                                        expected_after, case.public)
            return failed or Verdict(1.0, 'passed')

        return [request], judge

    def _property_shapes(self):
        for check in self.item.checks:
            if check.startswith('fixed:'):
                return [a if _is_number(a) else list(np.shape(a))
                        for a in case_args(self.spec.cases[check[len('fixed:'):]])]
        raise ValueError('the property check of {0} needs a fixed case to take its shapes '
                         'from'.format(self.item.target))

    def property_whole(self, check):
        args = random_args(self._property_shapes(), PROPERTY_SEED, 2.0)
        expected, expected_after = self._answer(args, {})
        batch_args = [int(i) for i in self.target.option('batch_axis_args', [0])]
        arrays = [a for a in args if not _is_number(a)]
        ids = [self._id(check, 'full'), self._id(check, 'half')]
        requests = [request_for(ids[0], self.class_name, args, return_inputs=True)]
        batch_size = arrays[batch_args[0]].shape[0] if batch_args and arrays else 0
        checks_batch = expected is not None and len(expected) == 1 and batch_size > 2 and (
            expected[0].ndim > 0 and expected[0].shape[0] == batch_size)
        if checks_batch:
            halved = [a[:2] if (not _is_number(a) and i in batch_args) else a
                      for i, a in enumerate(args)]
            requests.append(request_for(ids[1], self.class_name, halved))

        def judge(responses):
            answer = response(responses, ids[0], self.what)
            problems = []
            wrong = self._judge_values(answer.returned, answer.inputs_after, expected, expected_after, True)
            if expected is not None:
                got_shapes = [a.shape for a in answer.returned]
                if got_shapes != [a.shape for a in expected]:
                    problems.append('returns shapes {0} (expected {1})'.format(
                        got_shapes, [a.shape for a in expected]))
                problems += mutated(['argument {0}'.format(i) for i in range(len(arrays))],
                                    arrays, answer.inputs_after)
            if checks_batch:
                try:
                    part = response(responses, ids[1], self.what).returned
                    full = answer.returned[0] if answer.returned else None
                    if (full is None or len(part) != 1 or part[0].shape != (2,) + full.shape[1:]
                            or not np.allclose(part[0], full[:2], equal_nan=True)):
                        problems.append('gives different results for the first two examples when '
                                        'the batch size changes')
                except ResponseProblem as problem:
                    problems.append('fails on a batch of 2 ({0})'.format(problem))
            total = 1 + (expected is not None) + checks_batch
            return property_verdict(problems, total, wrong is None)

        return requests, judge
