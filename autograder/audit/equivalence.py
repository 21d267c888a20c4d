"""Is a surviving mutant really wrong? Dense probes answered in the sandbox, judged here.

TRUSTED. A mutant that kept full marks is either a gap in the grading or an
equivalent program (`np.maximum(0, x)` for `np.maximum(x, 0)`). To tell
them apart, the mutant's extracted code is run by `exec_untrusted` (the
sandbox: the mutant is derived from the instructor's code, but it is still
a submission) on many more inputs than grading uses: random arrays of
several shapes and scales, a dense grid through 0, tiny and huge values.
Its outputs, and its array arguments after the call, are compared here,
in the parent, with the reference `mlp` package run on the same inputs.

Values at exactly x = 0 of the derivative of a class the spec lists under
`kink_at_zero` are not compared (either one-sided derivative is right).

Kinds: layers (`fprop`, `bprop`, `grads_wrt_params`, with parameters of
both signs; image layers in the spec's `input_shape`), errors and
penalties (`__call__`, `grad`), functions (new random arguments shaped
like the spec's cases), learning rules (long step
sequences with resets, parameters compared after every step) and schedulers
(the rate of every epoch of a long run). A stochastic layer's draws can
legitimately differ from the reference's, so a mutant of one is compared
instead with the unchanged solution, both sandboxed with the same seeded
rng (fprop in both modes, then bprop on the same instance), for every
value of each boolean constructor option (e.g. `share_across_batch`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from autograder.sandbox.isolation import Request, exec_untrusted
from autograder.sandbox.limits import Limits

#: Outputs agreeing to this relative / absolute tolerance count as equal:
#: far tighter than grading, loose enough for rounding of rearranged formulas.
RTOL, ATOL = 1e-9, 1e-12

_REFERENCE_MODULES = {'layer': 'mlp.layers', 'error': 'mlp.errors', 'penalty': 'mlp.penalties',
                      'learning_rule': 'mlp.learning_rules', 'scheduler': 'mlp.schedulers',
                      'stochastic_layer': 'mlp.layers'}
_TRUSTED_PREFIXES = ('mlp', 'autograder.course.reference_functions')


@dataclass(frozen=True)
class Verdict:
    """The equivalence decision for one mutant.

    Attributes:
        decided: False when the target's kind has no dense probes (or the
            reference could not be built): the mutant stays 'survived'.
        equivalent: True when every probe agreed with the reference.
        detail: Where it first disagreed, or why it was not decided.
    """

    decided: bool
    equivalent: bool
    detail: str


def target_kind(spec, name: str) -> tuple[str, dict, dict]:
    """(kind, constructor kwargs, other options) of a spec target, old or new spec form."""
    targets = getattr(spec, 'targets', None)
    if targets is not None and name in targets:
        target = targets[name]
        return target.kind, dict(target.kwargs), dict(target.options)
    entry = spec.classes.get(name)
    if isinstance(entry, dict) and 'kind' in entry:
        return str(entry['kind']), dict(entry.get('kwargs') or {}), dict(entry)
    return 'layer', dict(entry or {}), {}


def _reference_class(name: str, kind: str, options: dict):
    dotted = options.get('reference')
    module_name, _, attribute = dotted.rpartition('.') if dotted else (_REFERENCE_MODULES.get(kind, ''), '', name)
    if not module_name.startswith(_TRUSTED_PREFIXES):
        return None
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError):
        return None


def _layer_inputs(rng: np.random.RandomState) -> list[np.ndarray]:
    grid = np.linspace(-6., 6., 61)
    extremes = np.array([0., -0., 1e-8, -1e-8, 1e-300, -1e-300, 30., -30., 700., -700.])
    arrays = [grid.reshape(1, -1), extremes.reshape(2, 5), np.zeros((3, 4))]
    for shape, scale in (((4, 5), 1.), ((7, 3), 3.), ((1, 6), 0.3), ((20, 10), 5.), ((6, 6), 30.)):
        arrays.append(rng.uniform(-scale, scale, size=shape))
    return arrays


def _parameter_settings(reference_class, kwargs: dict, rng) -> list:
    """None (the constructor's parameters), then random ones of both signs, for layers with params."""
    params = getattr(reference_class(**kwargs), 'params', None)
    if not params:
        return [None]
    magnitudes = lambda p: rng.uniform(0.1, 2., size=np.shape(p))  # noqa: E731
    return [None, [magnitudes(p) for p in params], [-magnitudes(p) for p in params],
            [rng.uniform(-2., 2., size=np.shape(p)) for p in params]]


def _shaped_like(inputs: np.ndarray, input_shape, index: int) -> np.ndarray:
    """The probe's values laid out in the spec's input shape (other batch sizes), e.g. 4-D images."""
    shape = (1 + index % 4,) + tuple(input_shape[1:])
    return np.resize(inputs, shape)  # repeats the grid / extremes / random values in order


def _layer_probes(spec, class_name: str, kwargs: dict, reference_class, methods: set[str],
                  input_shape=None):
    """(request, expected outputs, mask or None, arguments, description) for each probe of a layer.

    Layers with parameters are probed with their constructor's parameters
    and with random parameters of both signs (set as `instance.params`).
    A layer whose spec gives an `input_shape` of more than two axes (image
    batches) gets each probe's values in that shape, with batches of 1 to 4.
    """
    rng = np.random.RandomState(14)
    probes = []
    settings = _parameter_settings(reference_class, kwargs, rng)
    for index, inputs in enumerate(_layer_inputs(rng)):
        params = settings[index % len(settings)]
        reference = reference_class(**kwargs)
        if params is not None:
            reference.params = [p.copy() for p in params]
        if input_shape is not None and len(input_shape) > 2:
            inputs = _shaped_like(inputs, input_shape, index)
        elif getattr(reference, 'input_dim', None) is not None and inputs.shape[-1] != reference.input_dim:
            inputs = rng.uniform(-3., 3., size=(inputs.shape[0], reference.input_dim))
        with np.errstate(all='ignore'):
            outputs = reference.fprop(inputs)
        grads = rng.uniform(-2., 2., size=outputs.shape)
        kink = class_name in tuple(getattr(spec, 'kink_at_zero', ()) or ())
        calls = {'fprop': ([inputs], lambda: reference.fprop(inputs), None),
                 'bprop': ([inputs, outputs, grads], lambda: reference.bprop(inputs, outputs, grads),
                           (inputs != 0) if kink else None),
                 'grads_wrt_params': ([inputs, grads], lambda: reference.grads_wrt_params(inputs, grads), None)}
        for method, (arrays, expected, mask) in calls.items():
            if method not in methods or not hasattr(reference, method):
                continue
            with np.errstate(all='ignore'):
                try:
                    value = expected()
                except Exception:  # noqa: BLE001 - a probe the reference refuses is not asked
                    continue
            header = {'type': 'call', 'id': 'eq-{0}-{1}'.format(method, index), 'target': class_name,
                      'init': {'args': [], 'kwargs': kwargs}, 'method': method,
                      'args': [{'array': i} for i in range(len(arrays))], 'return_inputs': True}
            sent = [a.copy() for a in arrays]
            if params is not None:
                header['params'] = list(range(len(arrays), len(arrays) + len(params)))
                sent += [p.copy() for p in params]
            probes.append((Request(header, sent), value, mask, arrays,
                           '{0} on a {1} array{2}'.format(method, 'x'.join(map(str, inputs.shape)),
                                                          '' if params is None else ' with params {0}'.format(
                                                              np.round(np.concatenate([np.ravel(p) for p in params]), 3)))))
    return probes


def _error_probes(class_name: str, kwargs: dict, reference_class, methods: set[str], kind: str):
    rng = np.random.RandomState(15)
    probes = []
    for index, shape in enumerate(((4, 3), (10, 5), (1, 7))):
        if kind == 'penalty':
            arrays = [rng.uniform(-2., 2., size=shape)]
        else:
            logits = rng.normal(size=shape)
            outputs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
            targets = np.eye(shape[1])[rng.randint(shape[1], size=shape[0])]
            arrays = [outputs, targets]
        reference = reference_class(**kwargs)
        for method in ('__call__', 'grad'):
            if method not in methods:
                continue
            with np.errstate(all='ignore'):
                try:
                    value = getattr(reference, method)(*arrays)
                except Exception:  # noqa: BLE001
                    continue
            header = {'type': 'call', 'id': 'eq-{0}-{1}'.format(method.strip('_'), index),
                      'target': class_name, 'init': {'args': [], 'kwargs': kwargs}, 'method': method,
                      'args': [{'array': i} for i in range(len(arrays))], 'return_inputs': True}
            probes.append((Request(header, [a.copy() for a in arrays]), value, None, arrays,
                           '{0} on a {1} batch'.format(method, 'x'.join(map(str, shape)))))
    return probes


def _case_templates(spec, name: str) -> list[list]:
    """Argument templates of a function from its cases: arrays (as shapes) and numbers."""
    templates = []
    for item in spec.items:
        if item.target != name:
            continue
        for check in item.checks:
            case = spec.cases.get(check.split(':', 1)[1]) if check.startswith('fixed:') else None
            data = getattr(case, 'data', None) or {}
            if data.get('args') is not None:
                templates.append([np.shape(a) if isinstance(a, list) else a for a in data['args']])
            elif data.get('arg_shapes') is not None:
                templates.append([tuple(a) if isinstance(a, list) else a for a in data['arg_shapes']])
    return templates


def _function_probes(spec, name: str, reference):
    rng = np.random.RandomState(16)
    probes = []
    for t_index, template in enumerate(_case_templates(spec, name)):
        for scale in (0.5, 3.0, 20.0):
            args = [rng.uniform(-scale, scale, size=a) if isinstance(a, tuple) else a for a in template]
            arrays = [a for a in args if isinstance(a, np.ndarray)]
            with np.errstate(all='ignore'):
                try:
                    value = reference(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
                except Exception:  # noqa: BLE001
                    continue
            positions, json_args = iter(range(len(arrays))), []
            for a in args:
                json_args.append({'array': next(positions)} if isinstance(a, np.ndarray) else a)
            header = {'type': 'call', 'id': 'eq-{0}-{1}'.format(t_index, scale), 'target': name,
                      'method': None, 'args': json_args, 'return_inputs': True}
            probes.append((Request(header, [a.copy() for a in arrays]), value, None, arrays,
                           '{0} on arguments shaped like case {1} (scale {2})'.format(name, t_index + 1, scale)))
    return probes


def _rule_probes(name: str, kwargs: dict, reference_class):
    """Long step sequences (with resets) of a learning rule; parameters recorded after each step."""
    rng = np.random.RandomState(17)
    probes = []
    for index, (shapes, steps, resets) in enumerate((([(3, 4), (3,)], 30, {10}), ([(2, 5), (5,), (4,)], 20, {3, 4}))):
        params = [rng.uniform(-1., 1., size=s) for s in shapes]
        grads = [[rng.uniform(-2., 2., size=s) for s in shapes] for _ in range(steps)]
        reference = reference_class(**kwargs)
        working = [p.copy() for p in params]
        reference.initialise(working)
        expected = []
        step_list = [{'method': 'initialise', 'args': [{'list': [{'array': i} for i in range(len(shapes))]}]}]
        for step in range(steps):
            reference.update_params([g.copy() for g in grads[step]])
            expected += [w.copy() for w in working]
            first = len(shapes) * (1 + step)
            step_list.append({'method': 'update_params',
                              'args': [{'list': [{'copy': first + k} for k in range(len(shapes))]}],
                              'record': [{'array': k} for k in range(len(shapes))]})
            if step + 1 in resets:
                reference.reset()
                step_list.append({'method': 'reset', 'args': []})
        arrays = params + [g for step in grads for g in step]
        header = {'type': 'sequence', 'id': 'eq-rule-{0}'.format(index), 'target': name,
                  'init': {'args': [], 'kwargs': kwargs}, 'steps': step_list}
        probes.append((Request(header, [a.copy() for a in arrays]), expected, None, None,
                       '{0} steps on {1} parameters'.format(steps, len(shapes))))
    return probes


def _scheduler_probes(name: str, kwargs: dict, reference_class):
    from mlp.learning_rules import GradientDescentLearningRule
    reference = reference_class(**kwargs)
    rule = GradientDescentLearningRule(learning_rate=0.5)
    expected, steps = [], []
    for epoch in range(60):
        reference.update_learning_rule(rule, epoch)
        expected.append(np.array([rule.learning_rate], dtype=float))
        steps.append({'method': 'update_learning_rule', 'args': [{'object': 0}, epoch],
                      'record': [{'attribute': 'learning_rate', 'of': {'object': 0}}]})
    header = {'type': 'sequence', 'id': 'eq-schedule', 'target': name, 'init': {'args': [], 'kwargs': kwargs},
              'objects': [{'class': 'GradientDescentLearningRule', 'source': 'mlp.learning_rules',
                           'kwargs': {'learning_rate': 0.5}}], 'steps': steps}
    return [(Request(header, []), expected, None, None, '60 epochs of the schedule')]


def _boolean_options(reference_class, kwargs: dict) -> list[dict]:
    """The spec's kwargs, then each boolean constructor option flipped."""
    import inspect
    settings = [dict(kwargs)]
    try:
        parameters = inspect.signature(reference_class).parameters.values()
    except (TypeError, ValueError):
        return settings
    for parameter in parameters:
        if isinstance(parameter.default, bool):
            current = kwargs.get(parameter.name, parameter.default)
            settings.append(dict(kwargs, **{parameter.name: not current}))
    return settings


def _stochastic_probes(name: str, kwargs: dict, reference_class):
    rng = np.random.RandomState(18)
    probes = []
    for k_index, options in enumerate(_boolean_options(reference_class, kwargs)):
        for index, shape in enumerate(((4, 5), (30, 20), (1, 7))):
            inputs = rng.uniform(-3., 3., size=shape)
            grads = rng.uniform(-2., 2., size=shape)
            steps = [{'method': 'fprop', 'args': [{'copy': 0}], 'kwargs': {'stochastic': False},
                      'record': [{'returned': True}]},
                     {'method': 'fprop', 'args': [{'copy': 0}], 'record': [{'returned': True}]},
                     {'method': 'bprop', 'args': [{'copy': 0}, {'returned': [1, 0]}, {'copy': 1}],
                      'record': [{'returned': True}]}]
            header = {'type': 'sequence', 'id': 'eq-{0}-{1}'.format(k_index, index), 'target': name,
                      'init': {'args': [], 'kwargs': options, 'rng_seed': 1000 + index}, 'steps': steps}
            probes.append((Request(header, [inputs, grads]), None, None, None,
                           'fprop and bprop of a {0} batch with {1}'.format('x'.join(map(str, shape)), options)))
    return probes


def _agrees(got: list[np.ndarray], expected, mask) -> bool:
    wanted = [np.asarray(v, dtype=float) for v in (expected if isinstance(expected, (list, tuple)) else [expected])]
    if len(got) != len(wanted):
        return False
    for have, want in zip(got, wanted):
        if have.shape != want.shape and have.size == want.size == 1:
            have, want = have.reshape(()), want.reshape(())
        if have.shape != want.shape:
            return False
        if mask is not None and mask.shape == have.shape:
            have, want = have[mask], want[mask]
        if not np.allclose(have, want, rtol=RTOL, atol=ATOL, equal_nan=True):
            return False
    return True


def decide(spec, source: str, class_name: str, *, limits: Limits | None = None,
           solution_source: str | None = None) -> Verdict:
    """Runs dense probes of `class_name` on a mutant's extracted source (in the sandbox).

    Args:
        spec: The assignment's spec (classes, kinds, kink classes, the student copy of mlp).
        source: The mutant submission's extracted code (as grading runs it).
        class_name: The class the mutant changed.
        limits: Sandbox limits.
        solution_source: The unchanged solution's extracted code: stochastic
            layers are compared with it rather than with the reference.

    Returns:
        The verdict; never raises for what the mutant does.
    """
    kind, kwargs, options = target_kind(spec, class_name)
    reference_class = _reference_class(class_name, kind, options)
    if kind == 'stochastic_layer' and solution_source is not None and reference_class is not None:
        return _decide_against_solution(spec, source, solution_source, class_name,
                                        _stochastic_probes(class_name, kwargs, reference_class), limits)
    if reference_class is None or kind == 'stochastic_layer' or kind not in tuple(_REFERENCE_MODULES) + ('function',):
        return Verdict(False, False, 'equivalence is not decided for targets of kind {0}'.format(kind))
    methods = {item.method for item in spec.items if item.class_name == class_name and item.method}
    try:
        if kind == 'layer':
            probes = _layer_probes(spec, class_name, kwargs, reference_class, methods,
                                   options.get('input_shape'))
        elif kind == 'function':
            probes = _function_probes(spec, class_name, reference_class)
        elif kind == 'learning_rule':
            probes = _rule_probes(class_name, kwargs, reference_class)
        elif kind == 'scheduler':
            probes = _scheduler_probes(class_name, kwargs, reference_class)
        else:
            probes = _error_probes(class_name, kwargs, reference_class, methods, kind)
    except Exception as error:  # noqa: BLE001 - the reference cannot be built with these kwargs
        return Verdict(False, False, 'the reference {0} cannot be probed: {1}'.format(class_name, error))
    if not probes:
        return Verdict(False, False, 'no dense probes for {0}'.format(class_name))
    outcome = exec_untrusted(source, [p[0] for p in probes], student_mlp_dir=spec.student_mlp_dir,
                             limits=limits or Limits())
    for request, expected, mask, arrays, description in probes:
        response = outcome.responses.get(request.id)
        if response is None or response.status != 'ok':
            return Verdict(True, False, '{0}: {1}'.format(description, getattr(response, 'message', 'no answer')
                                                           or getattr(response, 'status', '')))
        if not _agrees(response.returned, expected, mask):
            return Verdict(True, False, '{0}: values differ from the reference'.format(description))
        if arrays is None:  # a sequence: its records are the values compared above
            continue
        after = response.inputs_after[:len(arrays)]  # parameters set by the request may follow
        if len(after) != len(arrays) or not all(
                a.shape == b.shape and np.array_equal(a, b, equal_nan=True) for a, b in zip(after, arrays)):
            return Verdict(True, False, '{0}: an argument was modified in place'.format(description))
    return Verdict(True, True, 'agreed with the reference on {0} dense probes'.format(len(probes)))


def _decide_against_solution(spec, source: str, solution_source: str, class_name: str, probes,
                             limits: Limits | None) -> Verdict:
    """Equivalence as agreement with the unchanged solution on the same (seeded) requests."""
    requests = [p[0] for p in probes]
    answers = [exec_untrusted(code, requests, student_mlp_dir=spec.student_mlp_dir, limits=limits or Limits())
               for code in (solution_source, source)]
    for request, _, _, _, description in probes:
        expected, got = (outcome.responses.get(request.id) for outcome in answers)
        if expected is None or expected.status != 'ok':
            return Verdict(False, False, 'the solution itself could not answer {0}'.format(description))
        if got is None or got.status != 'ok':
            return Verdict(True, False, '{0}: {1}'.format(description, getattr(got, 'message', 'no answer')))
        if not _agrees(got.returned, expected.returned, None):
            return Verdict(True, False, '{0}: values differ from the solution\'s'.format(description))
    return Verdict(True, True, 'agreed with the solution on {0} seeded probes'.format(len(probes)))
