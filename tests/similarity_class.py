"""Generated classes for the similarity tests and benchmark: release notebooks filled in as students do.

A student replaces each ``# YOUR CODE HERE`` / ``raise NotImplementedError`` stub of
the released notebook with a method body. Independent students pick, for every
method, one of several correct ways of writing it (``np.where``, masks, loops,
``np.maximum``...), their own variable names and, now and then, a line of their
own (a clip, a shape check, with constants of their choosing). A copier takes
another student's bodies and disguises them: new local names, operands of ``+``
and ``*`` and comparisons swapped, independent statements reordered, the code
re-printed (``ast.unparse``: other spacing and parentheses, comments gone),
comments added, and optionally every class moved into a new cell at the end of
the notebook in reverse order.
"""

from __future__ import annotations

import ast
import copy
import random
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
LAB5 = '05_activation_functions'
LAB3 = '03_multiple_layer_models'

_STUB = re.compile(r"(?P<indent>[ \t]*)# YOUR CODE HERE\n[ \t]*raise NotImplementedError\("
                   r"'[^']*implement (?P<cls>\w+)\.(?P<method>\w+)'\)")

_NAMES = ['out', 'result', 'res', 'y', 'z', 'h', 'act', 'tmp', 'values', 'activ', 'mask', 'pos', 'neg',
          'grad', 'deriv', 'slope', 'slopes', 'g', 'd', 'dx', 'k', 'arr', 'buf', 'val', 'acc', 'total',
          'keep', 'sel', 'flag', 'part', 'piece', 'lin', 'expo', 'e', 'scaled', 'ratio', 'w', 'q']

#: Correct ways of writing each method; {a}, {b}, {c}: local names, {i}, {j}: loop indexes.
VARIANTS: dict[tuple[str, str], list[str]] = {
    ('LeakyReluLayer', 'fprop'): [
        'return np.where(inputs > 0, inputs, self.alpha * inputs)',
        'return np.maximum(inputs, 0.) + self.alpha * np.minimum(inputs, 0.)',
        '{a} = inputs.copy()\n{a}[inputs <= 0] *= self.alpha\nreturn {a}',
        '{a} = np.zeros_like(inputs)\nfor {i} in range(inputs.shape[0]):\n    for {j} in range(inputs.shape[1]):\n'
        '        {a}[{i}, {j}] = inputs[{i}, {j}] if inputs[{i}, {j}] > 0 else self.alpha * inputs[{i}, {j}]\n'
        'return {a}',
        '{b} = (inputs > 0).astype(float)\nreturn {b} * inputs + (1 - {b}) * self.alpha * inputs',
    ],
    ('LeakyReluLayer', 'bprop'): [
        'return np.where(inputs > 0, grads_wrt_outputs, self.alpha * grads_wrt_outputs)',
        '{a} = np.ones_like(inputs)\n{a}[inputs <= 0] = self.alpha\nreturn {a} * grads_wrt_outputs',
        '{b} = inputs > 0\nreturn grads_wrt_outputs * ({b} + self.alpha * ~{b})',
        '{a} = np.where(inputs > 0, 1.0, self.alpha)\nreturn grads_wrt_outputs * {a}',
        '{a} = np.empty_like(inputs)\nfor {i} in range(inputs.shape[0]):\n    for {j} in range(inputs.shape[1]):\n'
        '        {a}[{i}, {j}] = 1.0 if inputs[{i}, {j}] > 0 else self.alpha\nreturn {a} * grads_wrt_outputs',
    ],
    ('ELULayer', 'fprop'): [
        'return np.where(inputs > 0, inputs, self.alpha * (np.exp(inputs) - 1))',
        '{a} = np.minimum(inputs, 0.)\nreturn np.maximum(inputs, 0.) + self.alpha * np.expm1({a})',
        '{a} = inputs.copy()\n{b} = inputs <= 0\n{a}[{b}] = self.alpha * (np.exp(inputs[{b}]) - 1.)\nreturn {a}',
        '{c} = self.alpha * np.expm1(np.minimum(0., inputs))\nreturn np.where(inputs > 0, inputs, {c})',
    ],
    ('ELULayer', 'bprop'): [
        'return np.where(inputs > 0, grads_wrt_outputs, (outputs + self.alpha) * grads_wrt_outputs)',
        '{a} = np.where(inputs > 0, 1., self.alpha * np.exp(inputs))\nreturn {a} * grads_wrt_outputs',
        '{a} = np.ones_like(inputs)\n{b} = inputs <= 0\n{a}[{b}] = outputs[{b}] + self.alpha\n'
        'return grads_wrt_outputs * {a}',
        '{c} = self.alpha * np.exp(np.minimum(inputs, 0.))\nreturn grads_wrt_outputs * np.where(inputs > 0, 1., {c})',
    ],
    ('SELULayer', 'fprop'): [
        'return self.scale * np.where(inputs > 0, inputs, self.alpha * (np.exp(inputs) - 1))',
        '{a} = self.alpha * np.expm1(np.minimum(inputs, 0.))\nreturn self.scale * np.where(inputs > 0, inputs, {a})',
        '{a} = inputs.copy()\n{b} = inputs <= 0\n{a}[{b}] = self.alpha * (np.exp(inputs[{b}]) - 1)\n'
        'return self.scale * {a}',
        '{c} = np.maximum(inputs, 0.)\n{a} = self.alpha * (np.exp(np.minimum(inputs, 0.)) - 1.)\n'
        'return self.scale * ({c} + {a})',
    ],
    ('SELULayer', 'bprop'): [
        'return grads_wrt_outputs * np.where(inputs > 0, self.scale, outputs + self.scale * self.alpha)',
        '{a} = np.where(inputs > 0, 1., self.alpha * np.exp(inputs))\nreturn self.scale * {a} * grads_wrt_outputs',
        '{a} = np.full_like(inputs, self.scale)\n{b} = inputs <= 0\n'
        '{a}[{b}] = self.scale * self.alpha * np.exp(inputs[{b}])\nreturn {a} * grads_wrt_outputs',
        '{c} = self.scale * self.alpha * np.exp(np.minimum(inputs, 0.))\n'
        'return np.where(inputs > 0, self.scale, {c}) * grads_wrt_outputs',
    ],
    ('ParametricReluLayer', 'fprop'): [
        'return np.where(inputs > 0, inputs, self.alpha[0] * inputs)',
        'return np.maximum(inputs, 0.) + self.alpha[0] * np.minimum(inputs, 0.)',
        '{a} = inputs.copy()\n{a}[inputs <= 0] *= self.alpha[0]\nreturn {a}',
        '{b} = inputs > 0\nreturn {b} * inputs + ~{b} * self.alpha[0] * inputs',
    ],
    ('ParametricReluLayer', 'bprop'): [
        'return np.where(inputs > 0, grads_wrt_outputs, self.alpha[0] * grads_wrt_outputs)',
        '{a} = np.where(inputs > 0, 1., self.alpha[0])\nreturn {a} * grads_wrt_outputs',
        '{a} = np.ones_like(inputs)\n{a}[inputs <= 0] = self.alpha[0]\nreturn grads_wrt_outputs * {a}',
    ],
    ('ParametricReluLayer', 'grads_wrt_params'): [
        'return [np.array([(grads_wrt_outputs * np.minimum(inputs, 0.)).sum()])]',
        '{a} = np.where(inputs > 0, 0., inputs)\n{b} = np.sum({a} * grads_wrt_outputs)\nreturn [np.array([{b}])]',
        '{b} = inputs <= 0\n{c} = (inputs[{b}] * grads_wrt_outputs[{b}]).sum()\nreturn [np.array([{c}])]',
        '{c} = 0.\nfor {i} in range(inputs.shape[0]):\n    for {j} in range(inputs.shape[1]):\n'
        '        if inputs[{i}, {j}] <= 0:\n            {c} += inputs[{i}, {j}] * grads_wrt_outputs[{i}, {j}]\n'
        'return [np.array([{c}])]',
    ],
    ('TanhLayer', 'fprop'): ['return np.tanh(inputs)', 'return np.tanh(inputs)',
                             '{a} = np.tanh(inputs)\nreturn {a}'],
    ('TanhLayer', 'bprop'): ['return (1. - outputs ** 2) * grads_wrt_outputs',
                             'return grads_wrt_outputs * (1 - outputs * outputs)',
                             'return (1 - np.tanh(inputs) ** 2) * grads_wrt_outputs'],
    ('ReluLayer', 'fprop'): ['return np.maximum(0., inputs)', 'return np.maximum(inputs, 0)',
                             'return inputs * (inputs > 0)'],
    ('ReluLayer', 'bprop'): ['return (inputs > 0) * grads_wrt_outputs',
                             'return np.where(inputs > 0, grads_wrt_outputs, 0.)',
                             'return grads_wrt_outputs * (inputs > 0)'],
}

#: Lines a student adds of their own accord, with a constant of their choosing.
_PERSONAL = [
    'inputs = np.clip(inputs, -{n}, {n})',
    'assert inputs.ndim == 2, "expected a batch of shape (batch_size, {n})"',
    'inputs = np.asarray(inputs, dtype=float) * {one}',
    '{x} = {n} * np.finfo(float).eps',
]


def release_notebook(assignment: str) -> nbformat.NotebookNode:
    folder = ROOT / 'release' / assignment
    return nbformat.read(str(sorted(folder.glob('*.ipynb'))[0]), as_version=4)


def methods(assignment: str) -> list[tuple[str, str]]:
    """The (class, method) stubs of the release, in order."""
    found = []
    for cell in release_notebook(assignment).cells:
        if cell.cell_type == 'code':
            found += [(match['cls'], match['method']) for match in _STUB.finditer(cell.source)]
    return found


def independent_bodies(assignment: str, rng: random.Random, personal: float = 0.5) -> dict:
    """One independent student's method bodies (source without indentation)."""
    bodies = {}
    for key in methods(assignment):
        names = rng.sample(_NAMES, 5)
        body = rng.choice(VARIANTS[key]).format(a=names[0], b=names[1], c=names[2], i=names[3] + '_i',
                                                 j=names[4] + '_j')
        body = _restyled(body, rng, rng.choice(_NAMES) + '_r')
        if rng.random() < personal:
            line = rng.choice(_PERSONAL).format(n=rng.randint(20, 900), one=1.0, x=rng.choice(_NAMES) + '_eps')
            body = line + '\n' + body
        bodies[key] = body
    return bodies


def _restyled(body: str, rng: random.Random, result_name: str) -> str:
    """Small choices students make differently: the convention at 0, a named result."""
    if rng.random() < 0.5:
        body = re.sub(r'> 0\b', '>= 0', body)
        body = re.sub(r'<= 0\b', '< 0', body)
    lines = body.split('\n')
    if rng.random() < 0.4 and lines[-1].startswith('return ') and not lines[-1].startswith('return ['):
        lines[-1:] = ['{0} = {1}'.format(result_name, lines[-1][7:]), 'return ' + result_name]
    return '\n'.join(lines)


def disguised(bodies: dict, rng: random.Random) -> dict:
    """A copier's version of ``bodies``: renamed, reordered, commuted, re-printed, commented."""
    copied = {}
    for key, body in bodies.items():
        tree = ast.parse(body)
        _Disguise(rng).visit(tree)
        _swap_independent_statements(tree, rng)
        lines = ast.unparse(tree).split('\n')
        lines.insert(0, '# {0} done after the lecture'.format(key[1]))
        copied[key] = '\n'.join(lines)
    return copied


class _Disguise(ast.NodeTransformer):
    """New names for locals; operands of + and * and comparisons swapped."""

    _KEEP = {'np', 'self', 'inputs', 'outputs', 'grads_wrt_outputs', 'range', 'float'}

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.renamed: dict[str, str] = {}

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id not in self._KEEP:
            if node.id not in self.renamed:
                self.renamed[node.id] = 'my_{0}{1}'.format(self.rng.choice(_NAMES), len(self.renamed))
            node.id = self.renamed[node.id]
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, (ast.Add, ast.Mult)) and self.rng.random() < 0.7:
            node.left, node.right = node.right, node.left
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        mirrored = {ast.Gt: ast.Lt, ast.Lt: ast.Gt, ast.GtE: ast.LtE, ast.LtE: ast.GtE}
        if len(node.ops) == 1 and type(node.ops[0]) in mirrored and self.rng.random() < 0.7:
            node.left, node.comparators = node.comparators[0], [node.left]
            node.ops = [mirrored[type(node.ops[0])]()]
        return node


def _swap_independent_statements(tree: ast.Module, rng: random.Random) -> None:
    """Swap two adjacent assignments when neither uses what the other assigns."""
    body = tree.body
    for index in range(len(body) - 1):
        first, second = body[index], body[index + 1]
        if not (isinstance(first, ast.Assign) and isinstance(second, ast.Assign)):
            continue
        first_names = {n.id for n in ast.walk(first) if isinstance(n, ast.Name)}
        second_names = {n.id for n in ast.walk(second) if isinstance(n, ast.Name)}
        first_targets = {n.id for t in first.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        second_targets = {n.id for t in second.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        if not (first_targets & second_names) and not (second_targets & first_names) and rng.random() < 0.8:
            body[index], body[index + 1] = second, first
            return


def notebook(assignment: str, bodies: dict, move_classes: bool = False) -> nbformat.NotebookNode:
    """The release notebook with its stubs replaced by ``bodies``.

    With ``move_classes`` the release cell keeps its stubs and the filled classes
    are written again, in reverse order, in a new cell at the end.
    """
    nb = copy.deepcopy(release_notebook(assignment))

    def fill(match: re.Match) -> str:
        indent = match['indent']
        body = bodies[match['cls'], match['method']]
        return '\n'.join(indent + line if line else line for line in body.split('\n'))

    for cell in nb.cells:
        if cell.cell_type != 'code' or not _STUB.search(cell.source):
            continue
        filled = _STUB.sub(fill, cell.source)
        if not move_classes:
            cell.source = filled
            continue
        tree = ast.parse(filled)
        classes = [ast.get_source_segment(filled, node) for node in tree.body if isinstance(node, ast.ClassDef)]
        nb.cells.append(nbformat.v4.new_code_cell('\n\n\n'.join(reversed(classes))))
    return nb


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    nbformat.write(nb, str(path))
    return path


def write_class(folder: Path, assignment: str, independent: int, copies: dict[str, str], seed: int,
                personal: float = 0.5, moved: frozenset[str] = frozenset()) -> dict[str, dict]:
    """Writes ``s000.ipynb``... (independent) and the copies (name -> whom they copy).

    Args:
        folder: Where to write (created).
        assignment: The released assignment to fill in.
        independent: How many independent students.
        copies: Copier's name -> the student copied (independent or an earlier copier).
        seed: Seed of everything random.
        personal: Chance that a method gets a line of the student's own.
        moved: Copiers who move their classes into a new last cell, in reverse order.

    Returns:
        Student id -> its bodies.
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for number in range(independent):
        name = 's{0:03d}'.format(number)
        written[name] = independent_bodies(assignment, rng, personal)
        write(notebook(assignment, written[name]), folder / '{0}.ipynb'.format(name))
    for name, original in copies.items():
        written[name] = disguised(written[original], rng)
        write(notebook(assignment, written[name], move_classes=name in moved),
              folder / '{0}.ipynb'.format(name))
    return written
