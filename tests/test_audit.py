"""The audit: mutation operators, fairness rewrites, equivalence, and whole audits.

Operator tests run on small sources and say which mutants they expect; the
audits grade real notebooks in the real sandbox (a few targets at a time,
except the slow test that audits every assignment in full).
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from autograder.audit import equivalence, mutants, probes
from autograder.audit.run import AuditError, make_variants, run_audit, terminal_report
from autograder.audit.solutions import strip_solution_markers
from autograder.course import spec as spec_module
from autograder.course.spec import default_course_root, list_assignments, load_spec

ROOT = default_course_root()


def _changes(source: str, operator: str, lines=None) -> set[str]:
    """The mutated bodies of `f` for one operator, as normalised source lines."""
    found = set()
    for mutant in mutants.generate_mutants(source, lines, operators=(operator,)):
        function = next(node for node in ast.walk(ast.parse(mutant.source)) if isinstance(node, ast.FunctionDef))
        found.add('; '.join(ast.unparse(statement) for statement in function.body))
    return found


def _function(body: str, arguments: str = 'x, y, g') -> str:
    return 'import numpy as np\n\ndef f({0}):\n    {1}\n'.format(arguments, body)


# --------------------------------------------------------------------------
# Operators on small examples
# --------------------------------------------------------------------------


def test_derivative_slip_drops_the_square():
    assert _changes(_function('return g * (1 - y * y)'), 'derivative_slip') == {'return g * (1 - y)'}
    assert _changes(_function('return g * (1 - y ** 2)'), 'derivative_slip') == {'return g * (1 - y)'}


def test_sign_flip_and_swapped_operands():
    assert _changes(_function('return -x + y'), 'sign_flip') == {'return x + y', 'return -x - y'}
    assert _changes(_function('return np.where(x > 0, g, 0.)'), 'swapped_operands') == {
        'return np.where(x > 0, 0.0, g)'}
    assert _changes(_function('return x / y'), 'swapped_operands') == {'return y / x'}


def test_comparison_and_min_max():
    assert _changes(_function('return g * (x > 0)'), 'comparison') == {
        'return g * (x >= 0)', 'return g * (x < 0)'}
    assert _changes(_function('return np.maximum(0., x)'), 'min_max_swap') == {'return np.minimum(0.0, x)'}


def test_axis_keepdims_and_full_reductions():
    assert _changes(_function('return x.sum(axis=1, keepdims=True)'), 'axis') == {
        'return x.sum(axis=0, keepdims=True)', 'return x.sum(keepdims=True)', 'return x.sum(axis=1)'}
    assert _changes(_function('return np.sum(x)'), 'axis') == {'return np.sum(x, axis=0)'}


def test_batch_averaging():
    assert _changes(_function('return (x - y) / x.shape[0]'), 'batch_averaging') == {'return x - y'}
    assert _changes(_function('return np.mean(x)'), 'batch_averaging') == {'return np.sum(x)'}
    assert _changes(_function('return x.sum()'), 'batch_averaging') == {'return x.mean()'}


def test_transpose():
    assert _changes(_function('return g.T @ x', 'x, g'), 'transpose') == {
        'return g @ x', 'return g.T.T @ x', 'return g.T @ x.T', 'return (g.T @ x).T'}
    assert _changes(_function('return np.dot(x, g)', 'x, g'), 'transpose') == {
        'return np.dot(x.T, g)', 'return np.dot(x, g.T)', 'return np.dot(x, g).T'}


def test_transposed_result_of_a_layer_method():
    source = 'import numpy as np\n\nclass L:\n    def fprop(self, inputs):\n        return np.tanh(inputs)\n'
    notes = {m.note for m in mutants.generate_mutants(source, operators=('transpose',))}
    assert notes == {'returns `np.tanh(inputs)` transposed'}


def test_in_place_modification_of_an_argument():
    assert _changes(_function('return np.tanh(x)'), 'in_place') == {'return np.tanh(x, out=x)'}
    assert _changes(_function('return (1 - y) * g'), 'in_place') == {
        'return np.multiply(1 - y, g, out=g)', 'return np.subtract(1, y, out=y) * g'}


def test_integer_cast_dropped_terms_and_statements():
    assert _changes(_function('return g * y'), 'integer_cast') == {'return (g * y).astype(int)'}
    assert _changes(_function('return [x.sum()]'), 'integer_cast') == {'return [x.sum().astype(int)]'}
    assert _changes(_function('return g * (1 - y)'), 'dropped_term') == {
        'return g', 'return 1 - y', 'return g * 1', 'return g * y'}
    assert _changes(_function('return np.expm1(x)'), 'dropped_term') == {'return np.exp(x)'}
    assert _changes(_function('x += 1\n    return x'), 'dropped_term') == {'pass; return x'}


def test_off_by_one_and_constants():
    assert _changes(_function('return x[1:]'), 'off_by_one') == {'return x[2:]', 'return x[0:]'}
    assert _changes(_function('return x[0] + y[:, :-1]'), 'off_by_one') == {
        'return x[1] + y[:, :-1]', 'return x[0] + y[:, :0]', 'return x[0] + y[:, :-2]'}
    assert _changes(_function('return 0.5 * x'), 'constant') == {
        'return 0.0 * x', 'return -0.5 * x', 'return 0.505 * x'}
    assert _changes(_function('return x[0]'), 'constant') == set()  # indices belong to off_by_one


def test_wrong_argument():
    assert _changes(_function('return g * (1 - y ** 2)'), 'wrong_argument') == {
        'return x * (1 - y ** 2)', 'return y * (1 - y ** 2)', 'return g * (1 - x ** 2)',
        'return g * (1 - g ** 2)'}


def test_only_solution_region_lines_change_and_each_mutant_is_one_change():
    cell = ('import numpy as np\n\nclass L:\n    def fprop(self, inputs):\n        scale = 2.\n'
            '        ### BEGIN SOLUTION\n        return scale * inputs\n        ### END SOLUTION\n')
    source, region = strip_solution_markers(cell)
    assert region == {6}
    generated = mutants.generate_mutants(source, region)
    assert generated, 'the region line has mutants'
    for mutant in generated:
        assert mutant.source.split('\n')[:5] == source.split('\n')[:5], 'lines outside the region are kept'
        changed = [line for line in mutant.diff.split('\n')[2:] if line[:1] in '+-' and line]
        assert len(changed) == 2, mutant.diff
        assert mutant.target == 'L.fprop'
    assert len({m.source for m in generated}) == len(generated), 'no duplicates'


def test_docstrings_are_not_mutated():
    source = 'def f(x):\n    """Returns 2 x."""\n    return 2 * x\n'
    assert all('"""Returns 2 x."""' in m.source for m in mutants.generate_mutants(source))


# --------------------------------------------------------------------------
# Fairness rewrites and audit files
# --------------------------------------------------------------------------

_LAYER = ('import numpy as np\n\nclass L:\n    def bprop(self, inputs, outputs, grads_wrt_outputs):\n'
          '        """Doc."""\n        active = inputs > 0\n        return np.where(active, grads_wrt_outputs, 0.)\n')


def _run(source: str, class_name: str, method: str, *args):
    namespace: dict = {}
    exec(compile(source, 'probe', 'exec'), namespace)  # the test's own source, not a submission
    return getattr(namespace[class_name](), method)(*args)


def test_generic_rewrites_compute_the_same_values():
    import numpy as np
    x = np.array([[-1., 0., 2.], [3., -4., 0.5]])
    g = np.arange(6.).reshape(2, 3) + 1
    y = np.maximum(x, 0.)
    expected = _run(_LAYER, 'L', 'bprop', x, y, g)
    copied = probes.explicit_copy(_LAYER, 'L.bprop')
    assert 'inputs = inputs.copy()' in copied and 'grads_wrt_outputs = grads_wrt_outputs.copy()' in copied
    looped = probes.row_loop(_LAYER, 'L.bprop')
    for source in (copied, looped):
        assert np.array_equal(_run(source, 'L', 'bprop', x, y, g), expected)
    kink = probes.other_kink_convention(_LAYER, 'L.bprop')
    assert 'inputs >= 0' in kink
    assert _run(kink, 'L', 'bprop', x, y, g)[0, 1] == g[0, 1]  # slope 1 at x = 0 now


_PENALISED = ('import numpy as np\n\nclass L:\n    def __init__(self, penalty=None):\n'
              '        self.penalty, self.weights = penalty, np.array([[1., -2., 0.5], [0.25, 3., -1.]])\n'
              '    def grads_wrt_params(self, inputs, grads_wrt_outputs):\n'
              '        grads_wrt_weights = grads_wrt_outputs.T.dot(inputs)\n'
              '        if self.penalty is not None:\n'
              '            grads_wrt_weights = grads_wrt_weights + self.penalty * self.weights\n'
              '        return [grads_wrt_weights, grads_wrt_outputs.sum(axis=0)]\n')


@pytest.mark.parametrize('penalty', [None, 0.5])
def test_the_row_loop_of_grads_wrt_params_adds_a_penalty_once(penalty):
    import numpy as np
    x, g = np.arange(12.).reshape(4, 3) - 5., np.linspace(-1., 2., 8).reshape(4, 2)
    namespace: dict = {}
    exec(compile(probes.row_loop(_PENALISED, 'L.grads_wrt_params'), 'probe', 'exec'), namespace)
    looped = namespace['L'](penalty).grads_wrt_params(x, g)
    namespace = {}
    exec(compile(_PENALISED, 'solution', 'exec'), namespace)
    expected = namespace['L'](penalty).grads_wrt_params(x, g)
    assert all(np.allclose(a, b) for a, b in zip(looped, expected))


def test_replace_definition_keeps_the_rest():
    changed = probes.replace_definition(_LAYER, 'L.bprop', 'def bprop(self, inputs, outputs, grads_wrt_outputs):\n'
                                                           '    return grads_wrt_outputs * (inputs > 0)')
    assert changed.startswith('import numpy as np\n\nclass L:\n    def bprop(')
    assert '        return grads_wrt_outputs * (inputs > 0)' in changed
    with pytest.raises(ValueError, match='is not defined'):
        probes.replace_definition(_LAYER, 'L.fprop', 'def fprop(self, inputs):\n    return inputs')
    with pytest.raises(ValueError, match='must be one `def bprop'):
        probes.replace_definition(_LAYER, 'L.bprop', 'x = 1')


@pytest.mark.parametrize('entry, message', [
    ({'id': 'a b', 'target': 'L.f', 'description': '', 'code': 'def f(self): pass'}, 'must be letters'),
    ({'id': 'a', 'target': 'L.f', 'description': ''}, 'missing code'),
    ({'id': 'a', 'target': 'L.f', 'description': '', 'code': 3}, 'code must be'),
])
def test_malformed_audit_files_are_clear_errors(tmp_path, entry, message):
    path = tmp_path / 'x.json'
    path.write_text(json.dumps({'assignment': 'x', 'probes': [entry]}))
    with pytest.raises(probes.AuditFileError, match=message):
        probes.load_audit_file('x', path)
    path.write_text('{')
    with pytest.raises(probes.AuditFileError, match='not readable JSON'):
        probes.load_audit_file('x', path)


def test_every_course_audit_file_is_valid_and_targets_its_solution():
    for name in list_assignments():
        spec = load_spec(name)
        variants = make_variants(spec, ROOT, include_reference=False)
        graded = {item.target for item in spec.items}
        classes = {target.split('.')[0] for target in graded}
        for variant in variants:
            if variant.kind == 'probe' or variant.origin == 'audit file':
                assert variant.target in graded, (name, variant.id)
            elif variant.kind == 'mutant':  # e.g. a learning rule's reset, graded through update_params
                assert variant.target.split('.')[0] in classes, (name, variant.id)


# --------------------------------------------------------------------------
# Equivalence (sandboxed dense probes)
# --------------------------------------------------------------------------


def test_dense_probes_tell_equivalent_from_wrong():
    spec = load_spec('03_multiple_layer_models')
    same = ('import numpy as np\nfrom mlp.layers import Layer\nclass ReluLayer(Layer):\n'
            '    def fprop(self, inputs):\n        return np.maximum(inputs, 0.)\n'
            '    def bprop(self, inputs, outputs, grads_wrt_outputs):\n'
            '        return grads_wrt_outputs * (outputs > 0)\n')
    verdict = equivalence.decide(spec, same, 'ReluLayer')
    assert verdict.decided and verdict.equivalent, verdict.detail
    kink = same.replace('(outputs > 0)', '(inputs >= 0)')  # differs only at x = 0, where either is right
    assert equivalence.decide(spec, kink, 'ReluLayer').equivalent
    wrong = same.replace('np.maximum(inputs, 0.)', 'np.maximum(inputs, 1e-6)')
    verdict = equivalence.decide(spec, wrong, 'ReluLayer')
    assert verdict.decided and not verdict.equivalent and 'fprop' in verdict.detail
    in_place = same.replace('return np.maximum(inputs, 0.)', 'return np.maximum(inputs, 0., out=inputs)')
    assert 'modified in place' in equivalence.decide(spec, in_place, 'ReluLayer').detail


def test_dense_probes_of_an_image_layer_take_the_specs_input_shape():
    spec = load_spec('07_convolutional_networks')
    same = ('import numpy as np\nfrom mlp.layers import Layer\n'
            'class MaxPooling2DLayer(Layer):\n'
            '    def __init__(self, pool_size=2):\n'
            '        self.pool_size = pool_size\n'
            '    def fprop(self, inputs):\n'
            '        s = self.pool_size\n'
            '        n, c, d1, d2 = inputs.shape\n'
            '        return inputs.reshape(n, c, d1 // s, s, d2 // s, s).max(axis=(3, 5))\n'
            '    def bprop(self, inputs, outputs, grads_wrt_outputs):\n'
            '        s = self.pool_size\n'
            '        grads = np.zeros(inputs.shape)\n'
            '        for index in np.ndindex(*grads_wrt_outputs.shape):\n'
            '            n, c, i, j = index\n'
            '            window = inputs[n, c, i * s:(i + 1) * s, j * s:(j + 1) * s]\n'
            '            p, q = np.unravel_index(np.argmax(window), window.shape)\n'
            '            grads[n, c, i * s + p, j * s + q] = grads_wrt_outputs[index]\n'
            '        return grads\n')
    verdict = equivalence.decide(spec, same, 'MaxPooling2DLayer')
    assert verdict.decided and verdict.equivalent, verdict.detail
    average = same.replace('.max(axis=(3, 5))', '.mean(axis=(3, 5))')
    verdict = equivalence.decide(spec, average, 'MaxPooling2DLayer')
    assert verdict.decided and not verdict.equivalent and 'fprop on a ' in verdict.detail


# --------------------------------------------------------------------------
# Whole audits through the real pipeline
# --------------------------------------------------------------------------


def _course_copy(tmp_path: Path, monkeypatch, assignment: str) -> Path:
    """A copy of one assignment's course files; the spec folder is the copy's."""
    course = tmp_path / 'course'
    for part in ('source', 'release'):
        shutil.copytree(ROOT / part / assignment, course / part / assignment)
    specs = tmp_path / 'specs'
    shutil.copytree(spec_module.SPEC_DIR, specs)
    monkeypatch.setattr(spec_module, 'SPEC_DIR', specs)
    return course


def _edit_spec(course_specs: Path, assignment: str, edit) -> None:
    path = course_specs / '{0}.json'.format(assignment)
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))


def test_the_audit_command_writes_the_contract(tmp_path, capsys, mnist_env):
    from autograder.cli import main
    status = main(['audit', '--assignment', '03_multiple_layer_models', '--target', 'ReluLayer.fprop',
                   '--no-reference', '--workers', '1', '--out', str(tmp_path)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert 'relu_fprop' in printed and 'Result: no surviving mutant' in printed
    paths = [tmp_path / 'audit.json', tmp_path / 'audit.html']
    data = json.loads(paths[0].read_text())
    assert data['schema'] == 'mlp-autograde/audit/1'
    assert data['mutants'] and data['probes']
    for mutant in data['mutants']:
        assert {'id', 'target', 'operator', 'diff', 'status', 'points'} <= set(mutant)
        assert mutant['status'] in ('killed', 'survived', 'equivalent') and mutant['target'] == 'ReluLayer.fprop'
    for probe in data['probes']:
        assert {'id', 'target', 'description', 'status', 'points'} <= set(probe)
        assert probe['status'] == 'kept'
    relu = next(row for row in data['items'] if row['grade_id'] == 'relu_fprop')
    assert relu['mutants'] == relu['killed'] + relu['survived'] + relu['equivalent'] > 0
    page = paths[1].read_text()
    assert "Content-Security-Policy" in page and '<script' not in page


def test_a_weakened_spec_lets_a_mutant_survive(tmp_path, monkeypatch, mnist_env):
    course = _course_copy(tmp_path, monkeypatch, '05_activation_functions')
    target = 'ParametricReluLayer.bprop'
    full = run_audit(load_spec('05_activation_functions', course), course_root=course, targets={target},
                     include_reference=False, operators=('in_place',))
    in_place = [m for m in full.mutants if m.operator == 'in_place']
    assert in_place and all(m.status == 'killed' for m in in_place), terminal_report(full)

    def weaken(raw):  # prelu_bprop keeps only the notebook's public case
        for item in raw['items']:
            if item['grade_id'] == 'prelu_bprop':
                item['checks'] = ['fixed:public']
    _edit_spec(spec_module.SPEC_DIR, '05_activation_functions', weaken)
    weakened = run_audit(load_spec('05_activation_functions', course), course_root=course, targets={target},
                         include_reference=False, operators=('in_place',))
    assert weakened.survivors, terminal_report(weakened)
    assert {m.operator for m in weakened.survivors} == {'in_place'}
    assert all(m.item == 'prelu_bprop' for m in weakened.survivors)
    assert 'SURVIVED' in terminal_report(weakened) and not weakened.clean


def test_an_unfair_check_makes_a_fairness_probe_lose_points(tmp_path, monkeypatch, mnist_env):
    course = _course_copy(tmp_path, monkeypatch, '05_activation_functions')

    def unfair(raw):  # a slope above 1, outside the course's leaky ReLU (0 < alpha < 1)
        raw['classes']['LeakyReluLayer'] = {'alpha': 1.5}
    _edit_spec(spec_module.SPEC_DIR, '05_activation_functions', unfair)
    spec = load_spec('05_activation_functions', course)
    result = run_audit(spec, course_root=course, targets={'LeakyReluLayer.fprop'}, include_reference=False,
                       operators=())
    lost = {p.id for p in result.lost_probes}
    assert lost == {'leaky_fprop_maximum'}, terminal_report(result)  # max(x, alpha x) needs alpha <= 1
    assert {check['grade_id'] for p in result.lost_probes for check in p.failed_checks} >= {'leaky_relu_fprop'}
    assert 'LOST leaky_fprop_maximum' in terminal_report(result)


def test_a_tolerance_the_solution_itself_cannot_meet_stops_the_audit(tmp_path, monkeypatch, mnist_env):
    course = _course_copy(tmp_path, monkeypatch, '03_multiple_layer_models')

    def tighten(raw):  # held-out accuracy 50 points above the reference run's: nothing can meet it
        raw['training']['accuracy_tolerance'] = -0.5
    _edit_spec(spec_module.SPEC_DIR, '03_multiple_layer_models', tighten)
    spec = load_spec('03_multiple_layer_models', course)
    with pytest.raises(AuditError, match='solution itself loses points'):
        run_audit(spec, course_root=course, targets={'TanhLayer.fprop'}, include_reference=False, operators=())


def test_the_audit_command_refuses_bad_arguments(tmp_path, capsys):
    from autograder.cli import main
    assert main(['audit', '--assignment', 'no_such_lab']) == 2
    assert main(['audit', '--assignment', '03_multiple_layer_models', '--target', 'Nope.fprop',
                 '--out', str(tmp_path)]) == 2
    assert 'Nope.fprop' in capsys.readouterr().err


def test_an_audit_file_naming_an_unknown_target_is_an_error(tmp_path):
    path = tmp_path / 'audit.json'
    path.write_text(json.dumps({'probes': [{'id': 'x', 'target': 'TanhLayer.nothing', 'description': 'd',
                                            'code': 'def nothing(self):\n    return 1'}]}))
    with pytest.raises(AuditError, match='no solution cell defines'):
        make_variants(load_spec('03_multiple_layer_models'), ROOT, path, include_reference=False)


# The assignments whose full audit (notebook and reference regions, and the course's audit file) is
# clean: every one of them. Lab 7's audit is the longest (477 mutants and 36 probes, 5 to 7 min
# with one worker on this 2-core machine), still short enough for the slow suite.
AUDITED_CLEAN = ['02_single_layer_models', '03_multiple_layer_models', '04_regularisation',
                 '05_activation_functions', '06_learning_rules', '07_convolutional_networks']


@pytest.mark.slow
@pytest.mark.parametrize('assignment', AUDITED_CLEAN)
def test_audited_assignments_have_no_surviving_mutant_and_no_lost_probe(assignment, mnist_env):
    spec = load_spec(assignment)
    if not (spec.student_mlp_dir / 'mlp').is_dir():
        pytest.skip('{0} is not released'.format(assignment))
    result = run_audit(spec, workers=2)
    assert result.clean, terminal_report(result)


def test_the_audit_page_escapes_everything_and_runs_nothing():
    from autograder.audit.run import AuditResult, MutantResult, ProbeResult
    from autograder.outputs.audit_html import audit_page
    hostile = '<script>alert(1)</script>'
    result = AuditResult('03_multiple_layer_models', 'bwrap', 2, 1.0, 10.0, 10.0,
                         [{'grade_id': hostile, 'target': 'T.f', 'points': 1.0, 'mutants': 1, 'killed': 0,
                           'survived': 1, 'equivalent': 0, 'kills': 0, 'probes': 1, 'probes_lost': 1}],
                         [MutantResult('m001', 'T.f', 'constant', 'notebook', hostile, '-a\n+' + hostile,
                                       'survived', 10.0, 10.0, 'x')],
                         [ProbeResult('p1', 'T.f', hostile, 'audit file', hostile, 'lost', 9.0, 10.0,
                                      [{'grade_id': 'x', 'name': hostile, 'status': 'failed', 'output': hostile}])],
                         [hostile])
    page = audit_page(result)
    assert '<script' not in page and '&lt;script&gt;' in page
    assert "default-src 'none'" in page
    report = terminal_report(result)
    assert 'SURVIVED m001' in report and 'LOST p1' in report
    assert result.to_json()['totals'] == {'mutants': 1, 'killed': 0, 'survived': 1, 'equivalent': 0,
                                          'probes': 1, 'kept': 0, 'lost': 1}
