"""Fairness probes: correct rewrites of a solution that must keep full marks.

TRUSTED. Builds rewritten solution sources as text; nothing here runs them
(they are graded like submissions, in the sandbox). Three sources of probes:

* generic rewrites of any graded layer method, made here from the solution:
  an explicit copy of every array argument first (`inputs = inputs.copy()`),
  a loop over the examples of the batch (for layers whose spec checks
  batch-size independence: each row computed alone, then stacked, or summed
  for `grads_wrt_params`), and the other derivative convention at a kink
  (every comparison with 0 flipped between strict and not strict, for
  classes the spec lists under `kink_at_zero`);
* the course's audit file for the assignment (`autograder/course/audit/
  <assignment>.json`): the instructor's own probes (other formulas, loops,
  other rng calls) and own mutants (known mistakes), each a replacement
  definition of one method;
* nothing else: a probe is only ever a correct answer written differently.

The audit file (JSON)::

    {"assignment": "03_multiple_layer_models",
     "probes": [{"id": "tanh_fprop_logistic", "target": "TanhLayer.fprop",
                 "description": "tanh(x) = 2 sigmoid(2x) - 1",
                 "code": ["def fprop(self, inputs):",
                          "    return 2. / (1. + np.exp(-2. * inputs)) - 1."]}],
     "mutants": [{"id": "tanh_bprop_sigmoid_derivative", "target": "TanhLayer.bprop",
                  "description": "the sigmoid's derivative y (1 - y)",
                  "code": ["def bprop(self, inputs, outputs, grads_wrt_outputs):",
                           "    return grads_wrt_outputs * outputs * (1. - outputs)"]}]}

`code` is a list of lines (or one string): a complete `def` of the target
method, written at any indentation.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

from autograder.audit.mutants import find_sites, unified_diff as diff

_ID = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$')
_ARRAY_ARGUMENTS = ('inputs', 'outputs', 'grads_wrt_outputs', 'targets')
_FLIP_AT_KINK = {ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Lt: ast.LtE, ast.LtE: ast.Lt}


class AuditFileError(Exception):
    """An assignment's audit file is malformed (the message names the entry)."""


@dataclass(frozen=True)
class Rewrite:
    """A rewritten solution source.

    Attributes:
        name: Short identifier ('explicit_copy', 'row_loop', ... or the
            audit file's id).
        target: The method rewritten, e.g. 'ReluLayer.bprop'.
        description: What the rewrite is, in a phrase.
        source: The whole rewritten source.
        diff: Unified diff from the original source.
    """

    name: str
    target: str
    description: str
    source: str
    diff: str


@dataclass(frozen=True)
class Addition:
    """One entry of an audit file: a replacement definition of a method."""

    id: str
    target: str
    description: str
    code: str


@dataclass(frozen=True)
class AuditFile:
    """An assignment's own probes and mutants."""

    path: Path | None
    probes: tuple[Addition, ...] = ()
    mutants: tuple[Addition, ...] = ()


# --------------------------------------------------------------------------
# Replacing a definition
# --------------------------------------------------------------------------


def _definition(tree: ast.Module, target: str) -> ast.FunctionDef | None:
    for site in find_sites('', None, {target}, tree):
        return site.function
    for node in ast.walk(tree):  # a method whose body is only a docstring, or no site
        if isinstance(node, ast.ClassDef) and '.' in target and node.name == target.split('.')[0]:
            for child in node.body:
                if isinstance(child, ast.FunctionDef) and child.name == target.split('.', 1)[1]:
                    return child
    return None


def defines(source: str, target: str) -> bool:
    """True when `source` defines `target` ('Class.method' or 'function')."""
    return _definition(ast.parse(source), target) is not None


def replace_definition(source: str, target: str, code: str) -> str:
    """`source` with the definition of `target` replaced by `code`.

    Args:
        source: Python source that defines `target`.
        target: 'Class.method' or 'function'.
        code: A complete `def` (any indentation); re-indented to fit.

    Raises:
        ValueError: `target` is not defined in `source`, or `code` is not a
            single definition of the same name.
    """
    tree = ast.parse(source)
    node = _definition(tree, target)
    if node is None:
        raise ValueError('{0} is not defined in the solution'.format(target))
    code = textwrap.dedent(code).strip('\n')
    try:
        new = ast.parse(code)
    except SyntaxError as error:
        raise ValueError('the code for {0} does not parse: {1}'.format(target, error)) from error
    if len(new.body) != 1 or not isinstance(new.body[0], ast.FunctionDef) \
            or new.body[0].name != target.rsplit('.', 1)[-1]:
        raise ValueError('the code for {0} must be one `def {1}(...)`'.format(
            target, target.rsplit('.', 1)[-1]))
    lines = source.split('\n')
    start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    indent = re.match(r'\s*', lines[start - 1]).group(0)
    replacement = [indent + line if line.strip() else '' for line in code.split('\n')]
    return '\n'.join(lines[:start - 1] + replacement + lines[node.end_lineno:])


# --------------------------------------------------------------------------
# Generic rewrites
# --------------------------------------------------------------------------


def _body_text(source: str, function: ast.FunctionDef) -> tuple[list[str], int, int]:
    """(lines of the body after the docstring, first line, indentation width)."""
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str) and len(body) > 1:
        body = body[1:]
    lines = source.split('\n')
    first = body[0].lineno
    return lines[first - 1:function.end_lineno], first, body[0].col_offset


def _array_arguments(function: ast.FunctionDef) -> list[str]:
    return [a.arg for a in function.args.args if a.arg in _ARRAY_ARGUMENTS]


def explicit_copy(source: str, target: str) -> str | None:
    """Copies every array argument at the start of the method (`inputs = inputs.copy()`)."""
    node = _definition(ast.parse(source), target)
    if node is None or not _array_arguments(node):
        return None
    lines = source.split('\n')
    _, first, width = _body_text(source, node)
    copies = [' ' * width + '{0} = {0}.copy()'.format(name) for name in _array_arguments(node)]
    return '\n'.join(lines[:first - 1] + copies + lines[first - 1:])


def row_loop(source: str, target: str) -> str | None:
    """Computes the method one example (row) at a time, then stacks (or sums) the rows.

    Valid for batch-independent layers: `fprop`/`bprop` stack the rows'
    results; `grads_wrt_params` sums the rows' parameter gradients (the
    course's gradients are sums over the batch of the given output gradients),
    less (rows - 1) times its answer for an empty batch, which is the
    gradient of the layer's penalties (zero without them): the loop adds
    them once, not once per example.
    """
    method = target.rsplit('.', 1)[-1]
    if method not in ('fprop', 'bprop', 'grads_wrt_params'):
        return None
    node = _definition(ast.parse(source), target)
    if node is None or 'inputs' not in _array_arguments(node):
        return None
    body, first, width = _body_text(source, node)
    pad = ' ' * width
    names = [a.arg for a in node.args.args if a.arg != 'self']
    sliced = ', '.join('{0}[i:i + 1]'.format(n) if n in _ARRAY_ARGUMENTS else n for n in names)
    loop = [pad + 'def _one_example({0}):'.format(', '.join(names))]
    loop += ['    ' + line if line.strip() else '' for line in body]
    loop.append(pad + '_rows = [_one_example({0}) for i in range(inputs.shape[0])]'.format(sliced))
    if method == 'grads_wrt_params':
        empty = ', '.join('{0}[:0]'.format(n) if n in _ARRAY_ARGUMENTS else n for n in names)
        loop.append(pad + '_penalties = _one_example({0})'.format(empty))
        loop.append(pad + 'return [sum(row[k] for row in _rows) - (len(_rows) - 1) * _penalties[k] '
                          'for k in range(len(_rows[0]))]')
    else:
        loop.append(pad + 'return np.concatenate(_rows, axis=0)')
    lines = source.split('\n')
    return '\n'.join(lines[:first - 1] + loop + lines[node.end_lineno:])


def _is_zero(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float) and node.value == 0


def other_kink_convention(source: str, target: str) -> str | None:
    """Flips every comparison with 0 in the method between strict and not strict.

    At x = 0 this picks the other one-sided derivative (e.g. ReLU's 1
    instead of 0), which the course leaves open for functions with a kink.
    """
    tree = ast.parse(source)
    node = _definition(tree, target)
    if node is None:
        return None
    changes = []
    for part in ast.walk(node):
        if isinstance(part, ast.Compare) and len(part.ops) == 1 and type(part.ops[0]) in _FLIP_AT_KINK \
                and (_is_zero(part.comparators[0]) or _is_zero(part.left)):
            flipped = ast.Compare(part.left, [_FLIP_AT_KINK[type(part.ops[0])]()], part.comparators)
            changes.append((part, '(' + ast.unparse(flipped) + ')'))
    if not changes:
        return None
    lines = source.split('\n')
    for part, text in sorted(changes, key=lambda c: (c[0].lineno, c[0].col_offset), reverse=True):
        line = lines[part.lineno - 1]
        if part.lineno != part.end_lineno:
            return None
        start = len(line.encode('utf-8')[:part.col_offset].decode('utf-8'))
        end = len(line.encode('utf-8')[:part.end_col_offset].decode('utf-8'))
        lines[part.lineno - 1] = line[:start] + text + line[end:]
    return '\n'.join(lines)


def generic_rewrites(source: str, targets: list[str], *, batch_independent: set[str],
                     kink_classes: set[str]) -> list[Rewrite]:
    """The generic probes for the graded methods defined in `source`.

    Args:
        source: A solution cell.
        targets: Graded methods ('Class.method') to rewrite, where defined here.
        batch_independent: Classes whose spec checks batch-size independence
            (they get a row-loop probe).
        kink_classes: Classes whose derivative at a kink may take either
            convention (they get an other-convention probe).
    """
    rewrites = []
    for target in targets:
        if not defines(source, target):
            continue
        class_name = target.split('.')[0]
        candidates = [('explicit_copy', 'copies every array argument before using it', explicit_copy)]
        if class_name in batch_independent:
            candidates.append(('row_loop', 'computes one example at a time in a Python loop', row_loop))
        if class_name in kink_classes:
            candidates.append(('other_kink_convention', 'the other convention at the kink x = 0 '
                               '(strict and non-strict comparisons with 0 swapped)', other_kink_convention))
        for name, description, rewrite in candidates:
            changed = rewrite(source, target)
            if changed is not None and changed != source:
                rewrites.append(Rewrite(name, target, description, changed, diff(source, changed)))
    return rewrites


# --------------------------------------------------------------------------
# The course's audit files
# --------------------------------------------------------------------------


#: The course's audit files, beside its grading specs.
AUDIT_DIR = Path(__file__).resolve().parents[1] / 'course' / 'audit'


def audit_file_path(assignment: str, folder: Path | None = None) -> Path:
    """Where an assignment's audit file lives (autograder/course/audit/<assignment>.json)."""
    return Path(folder if folder is not None else AUDIT_DIR) / '{0}.json'.format(assignment)


def _addition(entry, where: str, ids: set[str]) -> Addition:
    if not isinstance(entry, dict):
        raise AuditFileError('{0}: each entry must be an object'.format(where))
    missing = [key for key in ('id', 'target', 'description', 'code') if key not in entry]
    if missing:
        raise AuditFileError('{0}: missing {1}'.format(where, ', '.join(missing)))
    entry_id, target, description, code = (entry[k] for k in ('id', 'target', 'description', 'code'))
    if not isinstance(entry_id, str) or not _ID.match(entry_id):
        raise AuditFileError('{0}: id {1!r} must be letters, digits, "_", "-" or "." (at most 81)'.format(
            where, entry_id))
    if entry_id in ids:
        raise AuditFileError('{0}: id {1!r} is used twice'.format(where, entry_id))
    if not isinstance(target, str) or not isinstance(description, str):
        raise AuditFileError('{0}: target and description must be strings'.format(where))
    if isinstance(code, list) and all(isinstance(line, str) for line in code):
        code = '\n'.join(code)
    if not isinstance(code, str):
        raise AuditFileError('{0}: code must be a string or a list of lines'.format(where))
    ids.add(entry_id)
    return Addition(entry_id, target, description, code)


def load_audit_file(assignment: str, path: Path | None = None) -> AuditFile:
    """Reads an assignment's audit file; a missing file means no additions.

    Raises:
        AuditFileError: The file is not valid JSON or an entry is malformed.
    """
    path = Path(path) if path is not None else audit_file_path(assignment)
    if not path.is_file():
        return AuditFile(None)
    try:
        raw = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError) as error:
        raise AuditFileError('{0}: not readable JSON: {1}'.format(path, error)) from error
    if not isinstance(raw, dict):
        raise AuditFileError('{0}: must hold a JSON object'.format(path))
    if raw.get('assignment', assignment) != assignment:
        raise AuditFileError('{0} says it is for assignment {1!r}'.format(path, raw.get('assignment')))
    ids: set[str] = set()
    found = {}
    for kind in ('probes', 'mutants'):
        entries = raw.get(kind, [])
        if not isinstance(entries, list):
            raise AuditFileError('{0}: "{1}" must be a list'.format(path, kind))
        found[kind] = tuple(_addition(entry, '{0}: {1}[{2}]'.format(path.name, kind, index), ids)
                            for index, entry in enumerate(entries))
    return AuditFile(path, found['probes'], found['mutants'])
