"""The penalty kind: `__call__(parameter)` and `grad(parameter)` of a parameter penalty.

TRUSTED. Penalties act on a whole parameter array (no batch, no mean), so
the shared objective checks (`objective`) apply as they are: values on fixed
and hidden cases, `grad` against central differences of the student's own
`__call__`, the parameter left unmodified. Random parameters for gradient
checks stay at least 0.1 away from 0, where |w| has its kink. The training
check puts the student's penalty on both weight matrices of a reference
model.

Cases: ``{"parameter": [[...]]}`` or seeded random ``{"seed", "shape", "scale"}``.
"""

from __future__ import annotations

import numpy as np

from autograder.checks import diagnose, registry
from autograder.checks.objective import ObjectivePlanner
from autograder.checks.training import TrainingCheck

PROPERTY_SHAPE = (4, 5)
GRADCHECK_SHAPE = (3, 4)


@registry.register
class PenaltyPlanner(TrainingCheck, ObjectivePlanner):
    """Checks of a penalty's value and gradient, and a training run using it."""

    kind = 'penalty'
    reference_module = 'mlp.penalties'
    ARGUMENT_NAMES = ('parameter',)
    METHOD_CHECKS = {**ObjectivePlanner.METHOD_CHECKS, None: ('training',)}
    PROPERTY_TITLES = {
        '__call__': 'properties: returns one number, leaves the parameter unmodified',
        'grad': 'properties: output shape, leaves the parameter unmodified',
    }
    TRAINING_TITLE = ('a short seeded MNIST training run with this penalty on the weights of a '
                      'reference model matches the reference run')

    def arguments(self, case):
        parameter = case.array('parameter')
        if parameter is not None:
            return [parameter]
        rng = np.random.RandomState(case.seed)
        return [rng.uniform(-case.scale, case.scale, size=case.shape)]

    def random_arguments(self, seed, away_from_zero=False):
        rng = np.random.RandomState(seed)
        shape = GRADCHECK_SHAPE if away_from_zero else PROPERTY_SHAPE
        magnitudes = rng.uniform(0.1 if away_from_zero else 0., 2., size=shape)
        return [magnitudes * np.where(rng.uniform(size=shape) < 0.5, -1., 1.)]

    def _coefficient(self) -> float:
        return float(getattr(self.reference(), 'coefficient', 1.))

    def diagnose_call(self, args, got):
        return diagnose.diagnose_penalty_value(self.class_name, args[0], self._coefficient(), got,
                                               float(self.expected('__call__', args)))

    def diagnose_grad(self, args, got):
        return diagnose.diagnose_penalty_grad(self.class_name, args[0], self._coefficient(), got,
                                              self.expected('grad', args))

    def default_training_layers(self):
        return self.sigmoid_model(penalties={'weights_penalty': self.student_piece()})

    def training_subject(self):
        return '{0} on the weights of a {1} model'.format(self.class_name, self.model_name())

    def training_blame(self):
        return 'grad is wrong'
