"""The scheduler kind: the learning rate `update_learning_rule` sets, epoch by epoch.

TRUSTED. A fixed case is a run: one instance of the student's scheduler is
called with `update_learning_rule(learning_rule, epoch_number)` for epochs
0, 1, ..., N - 1 in order (as the optimiser does), on one
`GradientDescentLearningRule` from the student copy of mlp, and the rule's
`learning_rate` is read after every call (one `sequence` request). The
rates are compared with the reference scheduler's; choose N to span several
restarts. A scheduler may keep state between calls or not: only the rates
are judged. Diagnoses replay the reference with one ingredient missing (no
discount at restarts, no period expansion, every epoch one early or late).

Cases: ``{"num_epochs": N, "learning_rate": initial rate of the rule}``.
"""

from __future__ import annotations

import numpy as np
from mlp import checks as compare

from autograder.checks import diagnose, oracle, registry
from autograder.checks.base import (
    ResponseProblem, TargetPlanner, Verdict, sequence_records, sequence_request, with_hint)
from autograder.checks.training import TrainingCheck


class _RateHolder:
    """Stands in for a learning rule in the parent: just a `learning_rate`."""

    def __init__(self, learning_rate):
        self.learning_rate = learning_rate


@registry.register
class SchedulerPlanner(TrainingCheck, TargetPlanner):
    """Checks of a learning-rate scheduler over a run, and a training run using it."""

    kind = 'scheduler'
    reference_module = 'mlp.schedulers'
    METHOD_CHECKS = {'update_learning_rule': ('fixed',), None: ('training',)}
    TRAINING_TITLE = ('a short seeded MNIST training run driven by this scheduler matches the '
                      'reference run')

    def reference_rates(self, num_epochs: int, learning_rate: float, **changes) -> np.ndarray:
        """The rates the reference scheduler (kwargs changed by `changes`) sets for epochs 0..N-1."""
        kwargs = dict(self.init_kwargs, **changes)
        scheduler = oracle.reference_object(oracle.reference_path(self.target, self.reference_module))(**kwargs)
        rule = _RateHolder(learning_rate)
        rates = []
        for epoch in range(num_epochs):
            scheduler.update_learning_rule(rule, epoch)
            rates.append(float(rule.learning_rate))
        return np.array(rates)

    def fixed_update_learning_rule(self, check, case):
        num_epochs = int(case.data.get('num_epochs', 20))
        learning_rate = float(case.data.get('learning_rate', 0.5))
        expected = self.reference_rates(num_epochs, learning_rate)
        steps = [{'method': 'update_learning_rule', 'args': [{'object': 0}, epoch],
                  'record': [{'attribute': 'learning_rate', 'of': {'object': 0}}]}
                 for epoch in range(num_epochs)]
        objects = [{'class': 'GradientDescentLearningRule', 'source': 'mlp.learning_rules',
                    'kwargs': {'learning_rate': learning_rate}}]
        request = sequence_request(self._id(check, 'run'), self.class_name, self.init_kwargs, steps,
                                   [], objects=objects)

        def judge(responses):
            records = sequence_records(responses, request, self.what)
            rates = []
            for epoch, step in enumerate(records):
                arrays = step[0]
                if arrays is None or len(arrays) != 1 or arrays[0].size != 1:
                    raise ResponseProblem('failed', '{0}: after the call for epoch {1} the learning '
                                                    'rule has no numeric learning_rate.'.format(self.what, epoch))
                rates.append(float(arrays[0].reshape(())))
            rates = np.array(rates)
            comparison = compare.compare_arrays(rates, expected, self.what + ': the learning rates',
                                                reveal=case.public)
            if comparison.ok:
                return Verdict(1.0, 'passed')
            wrong = np.flatnonzero(~np.isclose(rates, expected, rtol=compare.DEFAULT_RTOL,
                                               atol=compare.DEFAULT_ATOL))
            message = comparison.message
            if case.public and wrong.size:
                message = '{0} The first wrong rate is the one set for epoch {1} (epochs counted from 0).'.format(
                    message, int(wrong[0]))
            hint = diagnose.diagnose_schedule(
                rates, self.init_kwargs,
                lambda epochs, **changes: self.reference_rates(epochs, learning_rate, **changes))
            return Verdict(0.0, 'failed', with_hint(message, hint), hint)

        return [request], judge

    def default_training_layers(self):
        return self.sigmoid_model()

    def training_recipe(self):
        recipe = super().training_recipe()
        recipe['scheduler'] = self.student_piece()
        return recipe

    def training_subject(self):
        return '{0} driving gradient descent on a {1} model'.format(self.class_name, self.model_name())

    def training_blame(self):
        return 'update_learning_rule sets wrong rates'
