"""The stochastic-layer kind (checks/stochastic_layer.py) through the real sandbox: dropout with
every usual way of drawing the mask must keep full marks; the usual slips must not."""

import numpy as np
import pytest

from autograder.checks import stochastic_layer
from kind_harness import by_item, failed_outputs, grade, kind_spec

CLASSES = {'DropoutLayer': {'kind': 'stochastic_layer', 'kwargs': {'incl_prob': 0.8}}}
CASES = {'public': {'public': True, 'inputs': [[1.0, -2.0, 0.5], [0.0, 3.0, -1.5]]},
         'random': {'seed': 11, 'shape': [6, 5], 'scale': 3.0}}
ITEMS = [{'grade_id': 'fprop', 'target': 'DropoutLayer.fprop', 'checks': ['fixed:public', 'fixed:random', 'property']},
         {'grade_id': 'bprop', 'target': 'DropoutLayer.bprop', 'checks': ['property']}]


def dropout(mask='self.rng.uniform(size=shape) < self.incl_prob', shape='(1,) + inputs.shape[1:]',
            train='inputs * self._mask', evaluate='inputs * self.incl_prob',
            backward='grads_wrt_outputs * self._mask'):
    return '''
from mlp.layers import StochasticLayer

class DropoutLayer(StochasticLayer):
    def __init__(self, rng=None, incl_prob=0.5, share_across_batch=True):
        super(DropoutLayer, self).__init__(rng)
        self.incl_prob = incl_prob
        self.share_across_batch = share_across_batch

    def fprop(self, inputs, stochastic=True):
        if not stochastic:
            return {evaluate}
        shape = {shape}
        self._mask = {mask}
        return {train}

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        return {backward}
'''.format(mask=mask, shape=shape, train=train, evaluate=evaluate, backward=backward)


RIGHT = {
    'uniform-shared-mask': dropout(),
    'binomial-per-element': dropout(mask='self.rng.binomial(1, self.incl_prob, size=shape)', shape='inputs.shape'),
    'rand-less-than': dropout(mask='self.rng.rand(*inputs.shape) < self.incl_prob', shape='None'),
    'choice': dropout(mask='self.rng.choice([0., 1.], size=inputs.shape, p=[1 - self.incl_prob, self.incl_prob])',
                      shape='None'),
    'np-where': dropout(train='np.where(self._mask, inputs, 0.)', mask='self.rng.uniform(size=inputs.shape) < self.incl_prob',
                        backward='np.where(self._mask, grads_wrt_outputs, 0.)'),
    'mask-from-outputs': dropout(backward='grads_wrt_outputs * (outputs != 0)'),
}


@pytest.fixture(scope='module')
def spec(tmp_path_factory):
    return kind_spec(tmp_path_factory.mktemp('dropout'), classes=CLASSES, cases=CASES, items=ITEMS)


@pytest.mark.parametrize('variant', sorted(RIGHT))
def test_every_way_of_drawing_the_mask_gets_full_marks(spec, variant, tmp_path):
    report = grade(spec, RIGHT[variant], tmp_path)
    assert by_item(report) == {'fprop': (1.0, []), 'bprop': (1.0, [])}


@pytest.mark.parametrize('change, loses, message', [
    ({'train': 'inputs * self._mask / self.incl_prob', 'evaluate': 'inputs'}, 'fprop', 'inverted dropout'),
    ({'mask': 'self.rng.uniform(size=shape) > self.incl_prob'}, 'fprop', '1 - incl_prob'),
    ({'evaluate': 'inputs'}, 'fprop', 'scaled by incl_prob'),
    ({'backward': 'grads_wrt_outputs * (self.rng.uniform(size=grads_wrt_outputs.shape) < self.incl_prob)'},
     'bprop', 'reuse the mask'),
    ({'backward': 'grads_wrt_outputs'}, 'bprop', 'ignores the mask'),
    ({'backward': 'grads_wrt_outputs * self.incl_prob'}, 'bprop', 'deterministic mode'),
], ids=['inverted-dropout', 'drop-probability', 'unscaled-evaluation', 'new-mask-in-bprop', 'no-mask-in-bprop',
        'scaled-bprop'])
def test_the_usual_slips_lose_their_item(spec, change, loses, message, tmp_path):
    report = grade(spec, dropout(**change), tmp_path)
    assert by_item(report)[loses][0] < 0.7, failed_outputs(report, loses)
    assert message in failed_outputs(report, loses)


def test_reseeding_in_every_call_fails_the_new_mask_property(spec, tmp_path):
    source = dropout(mask='np.random.RandomState(0).uniform(size=shape) < self.incl_prob')
    report = grade(spec, source, tmp_path)
    assert 'new mask in every' in failed_outputs(report, 'fprop')


def test_a_mask_drawn_from_the_global_rng_fails_the_seeded_rng_property(spec, tmp_path):
    source = 'import numpy as np\n' + dropout(mask='np.random.uniform(size=shape) < self.incl_prob')
    report = grade(spec, source, tmp_path)
    assert by_item(report)['fprop'][0] < 1.0
    assert "from the layer's own rng (self.rng), not from np.random" in failed_outputs(report, 'fprop')


def test_the_fraction_test_margin_has_the_stated_false_fail_rate():
    n = stochastic_layer.FRACTION_INPUTS
    margin = stochastic_layer.hoeffding_margin(n)
    assert 2 * np.exp(-2 * n * margin ** 2) == pytest.approx(stochastic_layer.FALSE_FAIL_RATE)
    assert stochastic_layer.FALSE_FAIL_RATE < 1e-6
    # A layer keeping 1 - p (p = 0.8) or 0.75 instead of 0.8 is far outside the margin.
    assert margin < 0.05 / 2


def test_training_with_the_students_dropout(tmp_path, mnist_env):
    items = [{'grade_id': 'dropout_training', 'target': 'DropoutLayer', 'checks': ['training']}]
    spec = kind_spec(tmp_path, classes=CLASSES, items=items)
    assert by_item(grade(spec, RIGHT['binomial-per-element'], tmp_path, student='right')) == {
        'dropout_training': (1.0, [])}
    wrong = dropout(evaluate='inputs * 0.', mask='self.rng.uniform(size=shape) < self.incl_prob')
    assert by_item(grade(spec, wrong, tmp_path, student='wrong'))['dropout_training'][0] == 0.0


def test_a_class_redefined_under_its_own_name_gets_a_recursion_diagnosis(spec, tmp_path):
    redefined = RIGHT['uniform-shared-mask'].replace('super(DropoutLayer, self).__init__(rng)',
                                                     'super(DropoutLayer, self).__init__(rng)\n'
                                                     '        self.extra = 1') + '''
class DropoutLayer(DropoutLayer):
    def __init__(self, rng=None, incl_prob=0.5, share_across_batch=True):
        super(DropoutLayer, self).__init__(rng, incl_prob, share_across_batch)
'''
    report = grade(spec, redefined, tmp_path)
    assert by_item(report)['fprop'][0] == 0.0
    assert 'infinite recursion' in failed_outputs(report, 'fprop')


# Cases with their own constructor arguments ("layer": {"kwargs"}) and the mask's sharing across the batch.

SHARING_CASES = {'shared': {'seed': 21, 'shape': [4, 6], 'scale': 2.0, 'mask_sharing': True},
                 'per_example': {'seed': 22, 'shape': [5, 8], 'scale': 2.0, 'mask_sharing': True,
                                 'layer': {'kwargs': {'incl_prob': 0.6, 'share_across_batch': False}}}}
SHARING_ITEMS = [{'grade_id': 'fprop', 'target': 'DropoutLayer.fprop',
                  'checks': ['fixed:shared', 'fixed:per_example']},
                 {'grade_id': 'bprop', 'target': 'DropoutLayer.bprop', 'checks': ['fixed:per_example']}]
AS_ASKED = '(1,) + inputs.shape[1:] if self.share_across_batch else inputs.shape'


@pytest.fixture(scope='module')
def sharing_spec(tmp_path_factory):
    return kind_spec(tmp_path_factory.mktemp('dropout_sharing'), classes=CLASSES, cases=SHARING_CASES,
                     items=SHARING_ITEMS)


@pytest.mark.parametrize('mask', [
    'self.rng.uniform(size=shape) < self.incl_prob',
    'self.rng.binomial(1, self.incl_prob, size=shape)',
    'self.rng.rand(*shape) < self.incl_prob',
], ids=['uniform', 'binomial', 'rand'])
def test_a_layer_that_shares_its_mask_as_the_constructor_says_gets_full_marks(sharing_spec, mask, tmp_path):
    report = grade(sharing_spec, dropout(mask=mask, shape=AS_ASKED), tmp_path)
    assert by_item(report) == {'fprop': (1.0, []), 'bprop': (1.0, [])}


@pytest.mark.parametrize('shape, case, message', [
    ('(1,) + inputs.shape[1:]', 'per_example', 'every example of the batch the same mask'),
    ('inputs.shape', 'shared', 'different mask for each example'),
], ids=['always-shared', 'never-shared'])
def test_a_layer_ignoring_share_across_batch_fails_the_case_it_gets_wrong(sharing_spec, shape, case, message,
                                                                          tmp_path):
    report = grade(sharing_spec, dropout(shape=shape), tmp_path)
    failed = [t for t in report.tests if t.grade_id == 'fprop' and t.status != 'passed']
    assert [t.name for t in failed] and all(case in t.name for t in failed), [t.name for t in failed]
    assert message in failed_outputs(report, 'fprop')
    assert 'share_across_batch' in failed_outputs(report, 'fprop') or case == 'shared'


def test_the_kept_fraction_is_checked_with_the_cases_arguments(sharing_spec, tmp_path):
    wrong_when_not_shared = dropout(
        shape=AS_ASKED, mask='(self.rng.uniform(size=shape) < self.incl_prob) if self.share_across_batch '
                             'else (self.rng.uniform(size=shape) > self.incl_prob)')
    report = grade(sharing_spec, wrong_when_not_shared, tmp_path)
    assert by_item(report)['fprop'][0] == 0.5
    message = failed_outputs(report, 'fprop')
    assert 'of 20,000 independent draws, but incl_prob is 0.6' in message and '1 - incl_prob' in message


def test_bprop_must_use_the_mask_of_the_last_fprop(sharing_spec, tmp_path):
    first_mask = dropout(shape=AS_ASKED).replace(
        '        self._mask = ', '        self._masks = getattr(self, "_masks", []) + [None]\n'
                                '        self._mask = ').replace(
        'return grads_wrt_outputs * self._mask', 'return grads_wrt_outputs * self._first') + '''
    def __setattr__(self, name, value):
        if name == '_mask' and not hasattr(self, '_first'):
            object.__setattr__(self, '_first', value)
        object.__setattr__(self, name, value)
'''
    report = grade(sharing_spec, first_mask, tmp_path)
    assert by_item(report)['bprop'][0] == 0.0
    assert by_item(report)['fprop'] == (1.0, [])


@pytest.mark.parametrize('change, grade_id, message', [
    ({'evaluate': 'np.multiply(inputs, self.incl_prob, out=inputs)'}, 'fprop',
     'modifies its argument inputs in place when stochastic=False'),
    ({'backward': 'np.multiply(grads_wrt_outputs, self._mask, out=grads_wrt_outputs)'}, 'bprop',
     'modifies its argument grads_wrt_outputs in place'),
], ids=['deterministic-fprop', 'bprop'])
def test_arguments_modified_in_place_lose_points(spec, change, grade_id, message, tmp_path):
    report = grade(spec, 'import numpy as np\n' + dropout(**change), tmp_path)
    assert by_item(report)[grade_id][0] < 1.0
    assert message in failed_outputs(report, grade_id)
