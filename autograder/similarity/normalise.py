"""Turn a statement's syntax tree into the normalised token stream that is fingerprinted.

TRUSTED, in the grading parent. Nothing is executed: the code was parsed with
:mod:`ast` by :mod:`autograder.submission.extract` and is only walked here.

Copying is disguised by editing what does not change the program; the stream
keeps what the program does and drops the rest:

* **Comments, whitespace, parentheses, line breaks** vanish because the stream is
  made from the syntax tree, not the text.
* **Docstrings and string statements** are dropped by the caller
  (:mod:`autograder.similarity.written`); other string literals become ``str``,
  since copiers reword messages.
* **Local identifiers** (variables, parameters) become positional placeholders
  ``V1, V2, ...`` numbered by first appearance *within one statement*. Numbering per
  statement (not per function) is deliberate: with one numbering for the whole
  function, swapping two independent statements, the commonest disguise after
  renaming, would renumber every later name and destroy every fingerprint after
  the swap; per statement, each statement's tokens stay the same wherever it moves,
  while ``a = a * b`` and ``a = b * c`` still differ.
* **Kept as written**: attribute names (``.tanh``, ``.T``, ``.shape``,
  ``self.alpha``), because they are the API the code calls and carry its meaning
  (renaming every ``np.X`` to one placeholder would make ``np.tanh`` and
  ``np.maximum`` alike); builtins (``len``, ``range``, ``max``); keyword-argument
  names (``axis=``); and names bound by imports, written as the module they name,
  so ``import numpy as xp; xp.tanh`` gives the same tokens as ``np.tanh`` and
  ``from numpy import tanh; tanh`` (``numpy .tanh``).
* **Numbers** are written as floats (``1``, ``1.`` and ``1.0`` are one token).
* **Commutative operations** are put in a canonical order where that is cheap:
  the operands of chains of ``+``, ``*``, ``&``, ``|``, ``^`` (flattened, so
  ``a*(b*c)`` equals ``c*b*a``), of ``and``/``or``, of ``==``, ``!=``, ``is``,
  ``is not``, and the two arguments of ``np.maximum``, ``np.minimum``,
  ``np.add``, ``np.multiply`` and numpy's logical and/or/xor; ``a < b`` is written
  as ``b > a`` (and ``<=`` as ``>=``). Operands are ordered by their own
  stream with every local name written ``V``, so the order does not depend on the
  names chosen.

Each token carries the source line of the node it came from, so a match can be
shown where it is in the notebook.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable, Mapping

__all__ = ['StatementTokens', 'import_aliases', 'statement_shape', 'statement_tokens']

#: Builtin names kept as written (a student's ``len`` is everyone's ``len``).
BUILTIN_NAMES = frozenset(name for name in dir(builtins) if not name.startswith('_'))

_COMMUTATIVE_BINOPS = (ast.Add, ast.Mult, ast.BitAnd, ast.BitOr, ast.BitXor)
_SYMMETRIC_COMPARISONS = (ast.Eq, ast.NotEq, ast.Is, ast.IsNot)
_MIRRORED_COMPARISONS = {ast.Lt: ast.Gt, ast.LtE: ast.GtE}
_COMMUTATIVE_NUMPY = frozenset({'maximum', 'minimum', 'fmax', 'fmin', 'add', 'multiply',
                                'logical_and', 'logical_or', 'logical_xor'})

#: Largest number of syntax-tree nodes whose commutative operands are reordered.
MAX_REORDERED_NODES = 400

#: Fields that hold nested statements; their contents are separate statements.
BLOCK_FIELDS = ('body', 'orelse', 'finalbody', 'handlers', 'cases')

# Fields that say nothing a copier controls, or that are handled elsewhere.
_SKIPPED_FIELDS = frozenset({'ctx', 'type_comment', 'kind', 'type_params', *BLOCK_FIELDS})

StatementTokens = tuple[list[str], list[int]]


def import_aliases(tree: ast.AST) -> dict[str, str]:
    """Names bound by the imports in ``tree`` (in any block), mapped to what they import.

    ``import numpy as np`` gives ``{"np": "numpy"}``; ``import os.path`` gives
    ``{"os": "os"}``; ``from numpy import tanh as t`` gives ``{"t": "numpy.tanh"}``.

    Args:
        tree: A parsed module (e.g. an extraction's source).

    Returns:
        Alias -> dotted name; later imports of a name win, as when run.
    """
    aliases: dict[str, str] = {}
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split('.')[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != '*':
                    aliases[alias.asname or alias.name] = '{0}.{1}'.format(node.module, alias.name)
    return aliases


def _imports(tree: ast.AST):
    """Import statements at the top level and in function and class bodies, in order."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        for field_name in BLOCK_FIELDS:
            stack.extend(reversed([child for child in getattr(node, field_name, None) or []
                                   if isinstance(child, ast.stmt)]))


def statement_tokens(node: ast.AST, aliases: Mapping[str, str]) -> StatementTokens:
    """The normalised tokens of one statement, without the statements nested in it.

    For a compound statement (``def``, ``if``, ``for``, ``with``, ``try``, an
    ``except`` clause, ...) only its header is serialised (the test, the loop
    target, the parameters); the statements of its blocks are serialised one by
    one by the caller, each with its own placeholder numbering. A ``def`` or
    ``class`` contributes its parameters or bases, not its name (method names
    are given by the skeleton; where a student's helper is called, its name shows
    as an attribute).

    Args:
        node: A statement, ``ast.ExceptHandler`` or ``ast.match_case``.
        aliases: Import aliases (see :func:`import_aliases`).

    Returns:
        ``(tokens, lines)``: the token strings and, for each, the 1-based source
        line of the node it came from.
    """
    namer = _PositionalNamer()
    emitter = _Emitter(aliases, namer)
    emitter.emit(node, getattr(node, 'lineno', 1))
    return emitter.tokens, emitter.lines


def statement_shape(node: ast.AST, aliases: Mapping[str, str]) -> tuple[str, ...]:
    """A statement's tokens with every local name written ``V``: an order that ignores names."""
    emitter = _Emitter(aliases, _generic_name)
    emitter.emit(node, 0)
    return tuple(emitter.tokens)


class _PositionalNamer:
    """``V1, V2, ...`` by first appearance; one instance per statement."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        placeholder = self.names.get(name)
        if placeholder is None:
            placeholder = self.names[name] = 'V{0}'.format(len(self.names) + 1)
        return placeholder


def _generic_name(name: str) -> str:
    return 'V'


class _Emitter:
    """Pre-order serialisation of a syntax tree into tokens with line numbers."""

    def __init__(self, aliases: Mapping[str, str], namer: Callable[[str], str],
                 sort_keys: dict[int, tuple[str, ...]] | None = None) -> None:
        self.aliases = aliases
        self.namer = namer
        self.tokens: list[str] = []
        self.lines: list[int] = []
        # Name-blind streams of the nodes already ordered, shared by the emitters of
        # one statement, so nested commutative chains are serialised once each.
        self.sort_keys = {} if sort_keys is None else sort_keys

    def _put(self, token: str, line: int) -> None:
        self.tokens.append(token)
        self.lines.append(line)

    def _sort_key(self, node: ast.AST) -> tuple[str, ...]:
        key = self.sort_keys.get(id(node))
        if key is None:
            sketch = _Emitter(self.aliases, _generic_name, self.sort_keys)
            sketch.emit(node, 0)
            key = self.sort_keys[id(node)] = tuple(sketch.tokens)
        return key

    def _canonical(self, nodes: list[ast.AST]) -> list[ast.AST]:
        """``nodes`` in canonical order; as written when they are large.

        Ordering serialises each operand once more, so nested commutative chains
        cost time quadratic in their depth; operands of more than
        ``MAX_REORDERED_NODES`` nodes in all keep their order, which bounds that
        cost on hostile code and never matters for real exercise code.
        """
        if not _at_most_nodes(nodes, MAX_REORDERED_NODES):
            return list(nodes)
        return sorted(nodes, key=self._sort_key)

    def emit(self, node: ast.AST, line: int) -> None:  # noqa: C901 - one case per node kind
        line = getattr(node, 'lineno', line)
        if isinstance(node, ast.Name):
            self._name(node.id, line)
        elif isinstance(node, ast.Attribute):
            self.emit(node.value, line)
            self._put('.' + node.attr, line)
        elif isinstance(node, ast.Constant):
            self._put(_constant(node.value), line)
        elif isinstance(node, ast.BinOp):
            op = type(node.op)
            self._put('op:' + op.__name__, line)
            if issubclass(op, _COMMUTATIVE_BINOPS):
                for operand in self._canonical(_flatten(node, op)):
                    self.emit(operand, line)
            else:
                self.emit(node.left, line)
                self.emit(node.right, line)
        elif isinstance(node, ast.BoolOp):
            self._put('bool:' + type(node.op).__name__, line)
            for value in self._canonical(list(node.values)):
                self.emit(value, line)
        elif isinstance(node, ast.Compare):
            self._compare(node, line)
        elif isinstance(node, ast.UnaryOp):
            self._put('unary:' + type(node.op).__name__, line)
            self.emit(node.operand, line)
        elif isinstance(node, ast.Call):
            self._call(node, line)
        elif isinstance(node, ast.keyword):
            self._put('kw=' + (node.arg or '**'), line)
            self.emit(node.value, line)
        elif isinstance(node, ast.arg):
            self._put(self.namer(node.arg), line)
            if node.annotation is not None:
                self.emit(node.annotation, line)
        elif isinstance(node, ast.alias):
            self._put('import:' + node.name, line)
        else:
            self._generic(node, line)

    def _name(self, name: str, line: int) -> None:
        target = self.aliases.get(name)
        if target is not None:
            module, _, member = target.rpartition('.')
            if module:
                self._put(module, line)
                self._put('.' + member, line)
            else:
                self._put(member, line)
        elif name in BUILTIN_NAMES:
            self._put(name, line)
        else:
            self._put(self.namer(name), line)

    def _compare(self, node: ast.Compare, line: int) -> None:
        if len(node.ops) == 1:
            op = type(node.ops[0])
            left, right = node.left, node.comparators[0]
            if op in _MIRRORED_COMPARISONS:
                op, left, right = _MIRRORED_COMPARISONS[op], right, left
            elif issubclass(op, _SYMMETRIC_COMPARISONS):
                left, right = self._canonical([left, right])
            self._put('cmp:' + op.__name__, line)
            self.emit(left, line)
            self.emit(right, line)
            return
        self._put('cmp:' + ','.join(type(op).__name__ for op in node.ops), line)
        self.emit(node.left, line)
        for comparator in node.comparators:
            self.emit(comparator, line)

    def _call(self, node: ast.Call, line: int) -> None:
        self._put('call', line)
        self.emit(node.func, line)
        arguments = list(node.args)
        if (self._is_commutative_numpy(node.func) and len(arguments) == 2 and not node.keywords
                and not any(isinstance(argument, ast.Starred) for argument in arguments)):
            arguments = self._canonical(arguments)
        for argument in arguments:
            self.emit(argument, line)
        for keyword in node.keywords:
            self.emit(keyword, line)

    def _is_commutative_numpy(self, func: ast.AST) -> bool:
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            return self.aliases.get(func.value.id) == 'numpy' and func.attr in _COMMUTATIVE_NUMPY
        if isinstance(func, ast.Name):
            target = self.aliases.get(func.id, '')
            return target.startswith('numpy.') and target[6:] in _COMMUTATIVE_NUMPY
        return False

    def _generic(self, node: ast.AST, line: int) -> None:
        self._put(type(node).__name__, line)
        for field, value in ast.iter_fields(node):
            if field in _SKIPPED_FIELDS or (field == 'name' and isinstance(node, (
                    ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))):
                continue
            if isinstance(value, ast.AST):
                self.emit(value, line)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self.emit(item, line)
                    elif isinstance(item, str):  # Global/Nonlocal names
                        self._put(self.namer(item), line)
            elif isinstance(value, str):
                if field == 'name' and isinstance(node, ast.ExceptHandler):
                    self._put(self.namer(value), line)
                else:
                    self._put('{0}={1}'.format(field, value), line)
            elif value is not None:
                self._put('{0}={1!r}'.format(field, value), line)


def _at_most_nodes(nodes: list[ast.AST], limit: int) -> bool:
    """True when the trees in ``nodes`` have at most ``limit`` nodes together (stops early)."""
    stack = list(nodes)
    count = 0
    while stack:
        count += 1
        if count > limit:
            return False
        stack.extend(ast.iter_child_nodes(stack.pop()))
    return True


def _flatten(node: ast.BinOp, op: type) -> list[ast.AST]:
    """The operands of a chain of one associative operator, left to right."""
    operands: list[ast.AST] = []
    stack: list[ast.AST] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.BinOp) and type(item.op) is op:
            stack.append(item.right)
            stack.append(item.left)
        else:
            operands.append(item)
    return operands


def _constant(value: object) -> str:
    if isinstance(value, bool) or value is None or value is Ellipsis:
        return repr(value)
    if isinstance(value, (int, float)):
        try:
            return repr(float(value))
        except OverflowError:  # an int too large for a float
            return 'int'
    if isinstance(value, str):
        return 'str'
    if isinstance(value, bytes):
        return 'bytes'
    return type(value).__name__
