"""The error kind: `__call__(outputs, targets)` and `grad(outputs, targets)` of an error function.

TRUSTED. The course's errors are batch means: E = 1/B sum_b E_b. Besides the
shared objective checks (`objective`), the properties check exactly that:
every example given twice must leave E unchanged and halve each row of the
gradient (a sum over the batch doubles instead). Outputs and targets must
not be modified.

Cases: ``{"outputs": [[...]], "targets": [[...]]}`` or seeded random
``{"seed", "shape", "scale", "targets": "one_hot" | "binary" | "real"}``.
"""

from __future__ import annotations

import numpy as np

from autograder.checks import diagnose, registry
from autograder.checks.base import ResponseProblem, call_request
from autograder.checks.objective import ObjectivePlanner, answer_of

PROPERTY_SHAPE = (5, 4)
GRADCHECK_SHAPE = (3, 4)


def random_targets(rng: np.random.RandomState, shape, kind: str) -> np.ndarray:
    """Targets for random cases: one-of-k rows, 0/1 entries, or reals in [0, 1)."""
    if kind == 'binary':
        return (rng.uniform(size=shape) < 0.5).astype(float)
    if kind == 'real':
        return rng.uniform(size=shape)
    targets = np.zeros(shape)
    targets[np.arange(shape[0]), rng.randint(shape[-1], size=shape[0])] = 1.
    return targets


def doubled(arrays):
    """Every array with its batch repeated twice (the rows of each, then the same rows again)."""
    return [np.concatenate([a, a], axis=0) for a in arrays]


@registry.register
class ErrorPlanner(ObjectivePlanner):
    """Checks of an error function's value and gradient."""

    kind = 'error'
    reference_module = 'mlp.errors'
    ARGUMENT_NAMES = ('outputs', 'targets')
    PROPERTY_TITLES = {
        '__call__': 'properties: returns one number, averages over the batch, leaves outputs and targets unmodified',
        'grad': 'properties: output shape, averages over the batch, leaves outputs and targets unmodified',
    }

    def _targets_kind(self, case=None) -> str:
        if case is not None and case.data.get('targets') in ('one_hot', 'binary', 'real'):
            return case.data['targets']
        return 'one_hot'

    def arguments(self, case):
        outputs, targets = case.array('outputs'), case.data.get('targets')
        if outputs is not None and isinstance(targets, list):
            return [outputs, np.array(targets, dtype=float)]
        rng = np.random.RandomState(case.seed)
        outputs = rng.uniform(-case.scale, case.scale, size=case.shape)
        if self._bounded_outputs():
            outputs = rng.uniform(0.05, 0.95, size=case.shape)
        return [outputs, random_targets(rng, case.shape, self._targets_kind(case))]

    def _bounded_outputs(self) -> bool:
        """Errors of probabilities (CrossEntropyError, BinaryCrossEntropyError) need y in (0, 1)."""
        return self.class_name in ('CrossEntropyError', 'BinaryCrossEntropyError')

    def random_arguments(self, seed, away_from_zero=False):
        shape = GRADCHECK_SHAPE if away_from_zero else PROPERTY_SHAPE
        rng = np.random.RandomState(seed)
        if self._bounded_outputs():
            outputs = rng.uniform(0.1, 0.9, size=shape)
        else:
            outputs = rng.uniform(-2., 2., size=shape)
        kind = 'binary' if 'Binary' in self.class_name else 'one_hot'
        return [outputs, random_targets(rng, shape, kind)]

    def _doubled_request(self, check, method, args):
        request_id = self._id(check, 'doubled')
        return [call_request(request_id, self.class_name, self.init_kwargs, method, doubled(args))], [request_id]

    def extra_call_requests(self, check, args):
        return self._doubled_request(check, '__call__', args)

    def extra_grad_requests(self, check, args):
        return self._doubled_request(check, 'grad', args)

    def call_properties(self, responses, ids, args, expected):
        try:
            got = answer_of(responses, ids[0], self.what)
        except ResponseProblem as problem:
            return ['fails when every example appears twice ({0})'.format(problem)]
        if got.size != 1 or not np.isclose(float(got.reshape(-1)[0]), float(expected), rtol=1e-6, atol=1e-10):
            return ['changes when every example of the batch appears twice: the course\'s error is '
                    'a mean over the batch, so it should not']
        return []

    def grad_properties(self, responses, ids, args, expected):
        try:
            got = answer_of(responses, ids[0], self.what)
        except ResponseProblem as problem:
            return ['fails when every example appears twice ({0})'.format(problem)]
        halved = 0.5 * np.concatenate([expected, expected], axis=0)
        if got.shape != halved.shape or not np.allclose(got, halved, rtol=1e-6, atol=1e-10):
            return ['does not halve when every example appears twice: the gradient of a batch mean '
                    'carries the factor 1/B']
        return []

    def diagnose_call(self, args, got):
        return diagnose.diagnose_error_value(args[0], got, float(self.expected('__call__', args)))

    def diagnose_grad(self, args, got):
        return diagnose.diagnose_error_grad(args[0], got, self.expected('grad', args))
