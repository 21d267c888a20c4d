"""The learning-rule kind: `initialise` / `update_params` / `reset` over many steps.

TRUSTED. A fixed case is a sequence: one instance of the student's rule is
given parameter arrays (`initialise(params)`), then `update_params(grads)`
once per step, with `reset()` after listed steps. The parameter arrays the
grader passed in are read back after EVERY step (one `sequence` request)
and compared with the reference rule run on the same sequence, so state
kept between calls (momentum, RMSProp's running mean, Adam's moments and
bias correction, the step count) must be right over many steps.

The course's model holds references to its parameter arrays, so a rule must
update them IN PLACE; `param = param - ...` rebinds a name and trains
nothing. The arrays passed in are the ones judged, and when they never
change while the rule's own `params` attribute does, the message says so.
The property check also covers gradients left unmodified and reset()
clearing the state.

Cases: explicit ``{"params": [p, ...], "grads": [[g, ...] per step],
"reset_after": [k, ...]}`` or seeded random ``{"seed", "param_shapes",
"num_steps", "scale", "reset_after"}`` (steps counted from 1).
"""

from __future__ import annotations

import numpy as np
from mlp import checks as compare

from autograder.checks import diagnose, registry
from autograder.checks.base import (
    TargetPlanner, Verdict, property_verdict, sequence_records, sequence_request, with_hint)
from autograder.checks.training import TrainingCheck

PROPERTY_PARAM_SHAPES = ((3, 4), (3,))
NOT_IN_PLACE = ('the parameter arrays given to initialise never change: update_params must update '
                'them in place (param = param - ... only rebinds a name); a model holds references '
                'to its parameters, so it would train nothing; write param -= ... or param[...] = ...')


def sequence_arrays(case):
    """(initial params, grads per step, reset_after) of a learning-rule case."""
    data = case.data
    reset_after = tuple(int(k) for k in data.get('reset_after') or ())
    if data.get('params') is not None:
        params = [np.array(p, dtype=float) for p in data['params']]
        grads = [[np.array(g, dtype=float) for g in step] for step in data['grads']]
        return params, grads, reset_after
    rng = np.random.RandomState(case.seed)
    shapes = [tuple(shape) for shape in data.get('param_shapes', PROPERTY_PARAM_SHAPES)]
    scale = float(data.get('scale', 1.0))
    params = [rng.uniform(-scale, scale, size=shape) for shape in shapes]
    grads = [[rng.normal(scale=scale, size=shape) for shape in shapes]
             for _ in range(int(data.get('num_steps', 10)))]
    return params, grads, reset_after


@registry.register
class LearningRulePlanner(TrainingCheck, TargetPlanner):
    """Checks of a learning rule's steps, and a training run using it."""

    kind = 'learning_rule'
    reference_module = 'mlp.learning_rules'
    METHOD_CHECKS = {'update_params': ('fixed', 'property'), None: ('training',)}
    PROPERTY_TITLES = {'update_params': 'properties: updates the parameter arrays in place, leaves '
                                        'the gradients unmodified, reset() clears its state'}
    TRAINING_TITLE = ('a short seeded MNIST training run of a reference model with this learning '
                      'rule matches the reference run')

    @classmethod
    def entry_problem(cls, target):
        return '' if 'learning_rate' in target.kwargs else 'kwargs must give the learning_rate'

    # the sequence -------------------------------------------------------------------

    def _sequence(self, request_id, params, grads_per_step, reset_after, *, grads_as_slots=False):
        """The request, and the index of each update step among the request's steps.

        Slots 0..P-1 are the parameters; then the gradients of step 1, 2, ...
        Each update records the parameter slots, the gradient slots when
        `grads_as_slots`, and the rule's `params` attribute.
        """
        count = len(params)
        arrays = list(params) + [g for grads in grads_per_step for g in grads]
        steps = [{'method': 'initialise', 'args': [{'list': [{'array': i} for i in range(count)]}]}]
        update_steps = []
        for number, _ in enumerate(grads_per_step, start=1):
            first = count * number
            ref = 'array' if grads_as_slots else 'copy'
            record = [{'array': i} for i in range(count)]
            if grads_as_slots:
                record += [{'array': first + i} for i in range(count)]
            record.append({'attribute': 'params'})
            update_steps.append(len(steps))
            steps.append({'method': 'update_params',
                          'args': [{'list': [{ref: first + i} for i in range(count)]}], 'record': record})
            if number in reset_after:
                steps.append({'method': 'reset'})
        request = sequence_request(request_id, self.class_name, self.init_kwargs, steps, arrays)
        return request, update_steps

    def accepted_trajectories(self, params, grads_per_step, reset_after):
        """The reference's params after every step, then those of its equivalent forms.

        Where epsilon enters (inside or outside the square root, or Adam's
        step-size form) changes the steps by about epsilon / sqrt(v), which
        is visible for small gradients; every such form is right.
        """
        trajectories = [self.reference_trajectory(params, grads_per_step, reset_after)]
        for step in diagnose.LEARNING_RULE_EQUIVALENTS.get(self.class_name, []):
            trajectories.append(diagnose.simulate_learning_rule(
                step, self.init_kwargs, params, grads_per_step, reset_after))
        return trajectories

    @staticmethod
    def _follows(trajectory, expected, steps=None) -> bool:
        """Whether a trajectory matches an expected one (at the given step indices, or all).

        Every array must pass `compare_arrays` against its expected one. The
        arrays of all the steps are compared at once, as two long vectors:
        elementwise, that is the same test as one comparison per array.
        """
        indices = range(len(expected)) if steps is None else steps
        got, wanted = [], []
        for i in indices:
            if len(trajectory[i]) != len(expected[i]):
                return False
            for array, right in zip(trajectory[i], expected[i]):
                try:
                    array = np.asarray(array, dtype=float)
                except (TypeError, ValueError):
                    return False
                if array.shape != np.shape(right):
                    return False
                got.append(array.ravel())
                wanted.append(np.ravel(right))
        return not got or compare.compare_arrays(np.concatenate(got), np.concatenate(wanted), '').ok

    def reference_trajectory(self, params, grads_per_step, reset_after, honour_reset=True):
        """The reference rule's params after every step."""
        rule = self.reference()
        working = [p.copy() for p in params]
        rule.initialise(working)
        trajectory = []
        for number, grads in enumerate(grads_per_step, start=1):
            rule.update_params([g.copy() for g in grads])
            trajectory.append([p.copy() for p in working])
            if honour_reset and number in reset_after:
                rule.reset()
        return trajectory

    def _student_trajectories(self, records, update_steps, count):
        """(params passed in, after each step), (the rule's `params` attribute, or None per step)."""
        passed, held = [], []
        for index in update_steps:
            step = records[index]
            passed.append([step[i][0] if step[i] and len(step[i]) == 1 else np.full(1, np.nan)
                           for i in range(count)])
            held.append(step[-1])
        return passed, held

    # fixed: the whole sequence -----------------------------------------------------

    def fixed_update_params(self, check, case):
        params, grads_per_step, reset_after = sequence_arrays(case)
        accepted = self.accepted_trajectories(params, grads_per_step, reset_after)
        expected = accepted[0]
        request, update_steps = self._sequence(self._id(check, 'sequence'), params, grads_per_step,
                                               reset_after)
        total = len(grads_per_step)

        def judge(responses):
            records = sequence_records(responses, request, self.what)
            passed, held = self._student_trajectories(records, update_steps, len(params))
            if self._follows(passed, expected):  # one comparison; the loop finds the first wrong step
                return Verdict(1.0, 'passed')
            for number, (got_params, want) in enumerate(zip(passed, expected), start=1):
                for index, (got, right) in enumerate(zip(got_params, want)):
                    what = '{0}: parameter {1} after step {2} of {3}'.format(self.what, index, number, total)
                    comparison = compare.compare_arrays(got, right, what, reveal=case.public)
                    if comparison.ok:
                        continue
                    # Off the reference's own form: right if it follows an equivalent form throughout.
                    if any(self._follows(passed, other) for other in accepted[1:]):
                        return Verdict(1.0, 'passed')
                    if not self._changed(passed, params):
                        # Nothing the model holds ever changed: the rule rebinds names (its own
                        # `params` may hold the right values) or never writes at all.
                        return Verdict(0.0, 'failed', NOT_IN_PLACE + '.', NOT_IN_PLACE)
                    hint = diagnose.diagnose_learning_rule(
                        self.class_name, self.init_kwargs, params, grads_per_step, reset_after, passed,
                        self.reference_trajectory(params, grads_per_step, reset_after, honour_reset=False))
                    return Verdict(0.0, 'failed', with_hint(comparison.message, hint), hint)
            return Verdict(1.0, 'passed')

        return [request], judge

    @staticmethod
    def _changed(passed, initial) -> bool:
        """Whether any parameter array passed in ever changed."""
        return any(not np.array_equal(got, start) for step in passed for got, start in zip(step, initial))

    # property: in place, gradients untouched, reset -------------------------------

    def property_update_params(self, check):
        rng = np.random.RandomState(4242)
        params = [rng.uniform(-1., 1., size=shape) for shape in PROPERTY_PARAM_SHAPES]
        grads_per_step = [[rng.normal(size=shape) for shape in PROPERTY_PARAM_SHAPES] for _ in range(4)]
        reset_after = (2,)
        accepted = self.accepted_trajectories(params, grads_per_step, reset_after)
        request, update_steps = self._sequence(self._id(check, 'sequence'), params, grads_per_step,
                                               reset_after, grads_as_slots=True)
        count = len(params)

        def judge(responses):
            records = sequence_records(responses, request, self.what)
            passed, held = self._student_trajectories(records, update_steps, count)
            problems = []
            if not self._changed(passed, params):
                problems.append('does not update the parameter arrays in place (param = param - ... '
                                'rebinds a name; a model holding the arrays would train nothing)')
                trajectory = [h if h is not None else [] for h in held]
            else:
                trajectory = passed
            for number, index in enumerate(update_steps):
                sent = grads_per_step[number]
                after = [records[index][count + i][0] for i in range(count)]
                if any(not np.array_equal(a, b) for a, b in zip(after, sent)):
                    problems.append('modifies the gradients it is given')
                    break

            def right(*steps):
                return any(self._follows(trajectory, expected, steps) for expected in accepted)

            values_are_right = right(0, 1)
            if values_are_right and not right(0, 1, 2, 3):
                problems.append('gives wrong values after reset(): reset() must clear the state '
                                '(velocities, moments, step count) but keep the parameters')
            return property_verdict(problems, 3, values_are_right)

        return [request], judge

    # training -----------------------------------------------------------------------

    def default_training_layers(self):
        return self.sigmoid_model()

    def training_recipe(self):
        recipe = super().training_recipe()
        recipe['learning_rule'] = self.student_piece()
        return recipe

    def training_subject(self):
        return '{0} training a {1} model'.format(self.class_name, self.model_name())

    def training_blame(self):
        return 'update_params is wrong'
