"""The training check: a short seeded MNIST run that uses only the student's piece.

TRUSTED. A kind whose targets can be judged by training mixes `TrainingCheck`
into its planner and lists ``None: ('training',)`` in its METHOD_CHECKS. The
run is a recipe (plain data, `recipes`) sent to the child, which trains with
the student's piece and the student copy of mlp for everything else; the
parent runs the same recipe with the reference in place of the student's
piece (`oracle.reference_training_run`), computes the accuracy from the
predictions the child returns for images whose labels it never sees, and
compares the per-epoch training errors with the reference run's. Kinds
choose the model (`training_layers`) and where their piece goes
(`training_recipe`): the hidden activation, a penalty on the weights, the
learning rule, the scheduler, a dropout layer.
"""

from __future__ import annotations

import numpy as np

from autograder.checks import oracle
from autograder.checks.base import Verdict, returned
from autograder.sandbox.isolation import Request

TRAINING_REQUEST_SECONDS = 60.0  # a training run takes well under a second on an idle core


class TrainingCheck:
    """Mixin of a `base.TargetPlanner`: the 'training' check of a whole target."""

    TRAINING_TITLE = 'a short seeded MNIST training run using this class matches the reference run'
    #: Whether a training run must follow the reference run epoch by epoch
    #: (False for stochastic pieces, whose random draws may differ).
    training_follows_reference = True

    def training_layers(self) -> list[dict]:
        """The model of the training run (recipe layers).

        A spec's ``training_layers`` wins: ``"class": "$target"`` stands for
        the student's class, other classes come from the student copy of
        mlp. Otherwise the kind's `default_training_layers`.
        """
        given = self.target.option('training_layers')
        if given:
            return [self.recipe_layer(entry) for entry in given]
        return self.default_training_layers()

    def default_training_layers(self) -> list[dict]:
        """The lab-3 model with the target as the hidden activation; kinds override it."""
        training = self.spec.training
        return [
            affine_layer(784, training.hidden_dim, training.init_scale),
            {'class': self.class_name, 'source': 'submission', 'kwargs': self.init_kwargs,
             'init_scale': None},
            affine_layer(training.hidden_dim, 10, training.init_scale),
        ]

    def student_piece(self, **extra) -> dict:
        """The student's class as a recipe piece, with the reference that stands for it."""
        piece = {'class': self.class_name, 'source': 'submission', 'kwargs': self.init_kwargs,
                 'reference_source': self.reference_source()}
        piece.update(extra)
        return piece

    def sigmoid_model(self, *middle: dict, **affine_extra) -> list[dict]:
        """Affine(784, H) - Sigmoid - `middle` - Affine(H, 10): the model for pieces that are not activations.

        `affine_extra` goes into both affine entries (e.g. ``penalties``).
        """
        training = self.spec.training
        return [affine_layer(784, training.hidden_dim, training.init_scale, **affine_extra),
                {'class': 'SigmoidLayer', 'source': 'mlp.layers', 'kwargs': {}, 'init_scale': None},
                *middle,
                affine_layer(training.hidden_dim, 10, training.init_scale, **affine_extra)]

    def recipe_layer(self, entry: dict) -> dict:
        if entry.get('class') == '$target':
            kwargs = dict(self.init_kwargs, **(entry.get('kwargs') or {}))
            return {'class': self.class_name, 'source': 'submission', 'kwargs': kwargs,
                    'init_scale': entry.get('init_scale'),
                    'reference_source': self.reference_source()}
        return {'class': entry['class'], 'source': entry.get('source', 'mlp.layers'),
                'kwargs': dict(entry.get('kwargs') or {}), 'init_scale': entry.get('init_scale')}

    def reference_source(self) -> str:
        """The reference module that stands for 'submission' in the reference run."""
        reference = self.target.option('reference')
        return reference.rsplit('.', 1)[0] if reference else self.reference_module

    def training_recipe(self) -> dict:
        """The recipe of the training run (`recipes`); kinds add their piece."""
        training = self.spec.training
        return {
            'seed': training.seed, 'learning_rate': training.learning_rate,
            'batch_size': training.batch_size, 'num_epochs': training.num_epochs,
            'error': 'CrossEntropySoftmaxError', 'layers': self.training_layers(),
        }

    def model_name(self) -> str:
        """The training model in words: '784-64-10', or its layers when the spec lists them."""
        given = self.target.option('training_layers')
        if given:
            return ' - '.join(self.class_name if entry.get('class') == '$target' else str(entry.get('class'))
                              for entry in given)
        return '784-{0}-10'.format(self.spec.training.hidden_dim)

    def training_subject(self) -> str:
        return '{0} in a {1} model'.format(self.class_name, self.model_name())

    def training_whole(self, check):
        training = self.spec.training
        recipe = self.training_recipe()
        request_id = self._id(check, 'run')
        try:
            train_inputs, train_targets, eval_inputs, eval_labels = oracle.mnist_subset(
                training.num_train, training.num_eval)
        except oracle.OracleError as error:
            message = 'the grader could not load MNIST for the training check: {0}'.format(error)

            def unavailable(responses):
                raise oracle.OracleError(message)  # a HarnessError: the machine's, not the student's

            return [], unavailable
        header = dict(recipe, type='train', id=request_id)
        request = Request(header=header, arrays=[train_inputs, train_targets, eval_inputs],
                          timeout=TRAINING_REQUEST_SECONDS, shared=True)
        what = self.training_subject()
        follows = self.training_follows_reference

        def judge(responses):
            arrays = returned(responses, request_id, 'training run with ' + what)
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
                               '(check for overflow or a wrong sign).'.format(what), details=details)
            accuracy = float(np.mean(outputs.argmax(-1) == eval_labels))
            details['student_accuracy'] = accuracy
            summary = 'held-out accuracy after {0} epochs: {1:.1%} (reference {2:.1%})'.format(
                training.num_epochs, accuracy, reference_accuracy)
            departure = training_departure(errors, reference_errors, training.error_rtol) if follows else None
            if departure is not None:
                return Verdict(0.0, 'failed', 'training with {0} does not follow the reference run '
                               '(same seed, data and initial weights): {1}; {2}; this usually means '
                               '{3}.'.format(what, departure, summary, self.training_blame()),
                               details=details)
            if accuracy >= reference_accuracy - training.accuracy_tolerance:
                return Verdict(1.0, 'passed', summary + '.', details=details)
            return Verdict(0.0, 'failed', 'training with {0} learns less than the reference: {1}; '
                           'this usually means {2}.'.format(what, summary, self.training_blame()),
                           details=details)

        return [request], judge

    def training_blame(self) -> str:
        return 'fprop or bprop is wrong'


def affine_layer(input_dim: int, output_dim: int, init_scale: float, **extra) -> dict:
    """A recipe entry for the student copy's AffineLayer with uniform initialisation."""
    entry = {'class': 'AffineLayer', 'source': 'mlp.layers', 'init_scale': init_scale,
             'kwargs': {'input_dim': input_dim, 'output_dim': output_dim}}
    entry.update(extra)
    return entry


def training_departure(errors: np.ndarray, reference_errors, rtol: float) -> str | None:
    """Where a training run's per-epoch mean errors leave the reference run's, or None.

    A seeded run of a correct piece repeats the reference run up to rounding,
    so its mean training error per epoch stays within `rtol` (relative) of
    the reference's. A wrong one, or a stand-in such as the identity that
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
