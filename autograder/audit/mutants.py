"""Mutation operators for numerical code, on Python's `ast`: one change per mutant.

TRUSTED. Works on the instructor's solution as text and syntax trees only;
nothing here runs it. Each operator looks at one node of a solution region
and proposes replacements for it, chosen for the mistakes students of this
course make:

=====================  =================================================
derivative_slip        `1 - y**2` -> `1 - y` (also `y * y` -> `y`)
sign_flip              `-x` -> `x`, `a - b` <-> `a + b`
swapped_operands       `a - b` -> `b - a`, `np.where(c, a, b)` -> `np.where(c, b, a)`
comparison             `>` -> `>=` / `<` (and so on for each comparison)
min_max_swap           `np.maximum` <-> `np.minimum`
axis                   `axis=1` -> `axis=0`, dropped `axis`, dropped `keepdims`,
                       a full reduction made along axis 0
batch_averaging        `/ x.shape[0]` dropped, `mean` <-> `sum`
transpose              `.T` dropped, `.T` added to an operand or a returned array
in_place               an argument overwritten (`out=inputs`)
integer_cast           a returned array cast with `.astype(int)`
dropped_term           a term or factor of `+ - * /` dropped, `expm1` -> `exp`, a statement dropped
off_by_one             slice bounds, indices and `range` arguments moved by one
constant               a number replaced by 0, its negative, or one more (a 1 % larger float)
wrong_argument         one argument used for another (`1 - x**2` for `1 - y**2`)
=====================  =================================================

A mutant is the solution's text with exactly one node's source replaced
(parenthesised where needed), so its diff shows one change; every mutant is
re-parsed and compared with the intended tree, and duplicates (same tree)
are dropped.
"""

from __future__ import annotations

import ast
import copy
import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

#: Operator names in the order mutants are generated and reported.
OPERATORS = ('derivative_slip', 'sign_flip', 'swapped_operands', 'comparison', 'min_max_swap',
             'axis', 'batch_averaging', 'transpose', 'in_place', 'integer_cast', 'dropped_term',
             'off_by_one', 'constant', 'wrong_argument')

_REDUCTIONS = {'sum', 'mean', 'max', 'min', 'prod', 'argmax', 'argmin', 'std', 'var'}
_ORDERED_CALLS = {'where': (1, 2), 'dot': (0, 1), 'matmul': (0, 1), 'subtract': (0, 1),
                  'divide': (0, 1), 'true_divide': (0, 1), 'power': (0, 1), 'outer': (0, 1),
                  'arctan2': (0, 1)}
_UFUNC_OF_OP = {ast.Add: 'add', ast.Sub: 'subtract', ast.Mult: 'multiply', ast.Div: 'divide'}
_IN_PLACE_UFUNCS = {'maximum', 'minimum', 'exp', 'expm1', 'tanh', 'multiply', 'add', 'subtract',
                    'divide', 'abs', 'absolute', 'negative', 'clip', 'log', 'log1p', 'sqrt', 'square'}
_COMPARISONS = {ast.Gt: (ast.GtE, ast.Lt), ast.GtE: (ast.Gt, ast.LtE), ast.Lt: (ast.LtE, ast.Gt),
                ast.LtE: (ast.Lt, ast.GtE), ast.Eq: (ast.NotEq,), ast.NotEq: (ast.Eq,)}
_DROPPED_ONE = {'expm1': 'exp', 'log1p': 'log'}
_ATOMIC = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.List, ast.Dict, ast.Set)


@dataclass(frozen=True)
class Site:
    """A place mutants may change: a function or method body in a solution region.

    Attributes:
        target: 'Class.method' or 'function', as reports name targets.
        function: The function's node in the parsed source.
        lines: 1-based source lines that may change (the region's lines).
    """

    target: str
    function: ast.FunctionDef
    lines: frozenset


@dataclass(frozen=True)
class Mutation:
    """One proposed change: replace `node` by `replacement` (an expression or statements)."""

    operator: str
    node: ast.AST
    replacement: object  # ast.expr, or a list of ast.stmt for statement-level changes
    note: str


@dataclass(frozen=True)
class Mutant:
    """A faulty variant of a solution source.

    Attributes:
        target: The method or function changed, e.g. 'TanhLayer.bprop'.
        operator: One of OPERATORS.
        note: The change in a phrase, e.g. '`outputs * outputs` -> `outputs`'.
        source: The whole mutated source.
        diff: Unified diff from the original source (one change).
    """

    target: str
    operator: str
    note: str
    source: str
    diff: str


# --------------------------------------------------------------------------
# Finding sites
# --------------------------------------------------------------------------


def _docstring_free(body: list[ast.stmt]) -> list[ast.stmt]:
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[1:]
    return body


def find_sites(source: str, lines: frozenset | None = None,
               targets: set[str] | None = None, tree: ast.Module | None = None) -> list[Site]:
    """The functions and methods of `source` whose bodies may be mutated.

    Args:
        source: Python source (a solution cell or a reference region).
        lines: Only these 1-based lines may change (None: any line).
        targets: Only these targets ('Class.method' / 'function'); None: all.
        tree: `source` already parsed (the sites then point into it).

    Returns:
        One site per function with at least one changeable line.
    """
    tree = tree if tree is not None else ast.parse(source)
    sites = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, child.name + '.')
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                target = prefix + child.name
                body = _docstring_free(child.body)
                if not body or (targets is not None and target not in targets):
                    continue
                body_lines = set(range(body[0].lineno, child.end_lineno + 1))
                allowed = frozenset(body_lines if lines is None else body_lines & set(lines))
                if allowed:
                    sites.append(Site(target, child, allowed))
    visit(tree, '')
    return sites


# --------------------------------------------------------------------------
# Operators: node -> proposed replacements
# --------------------------------------------------------------------------


def _text(node: ast.AST) -> str:
    return ast.unparse(node)


def _number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _call_name(node: ast.Call) -> str | None:
    """'where' for np.where(...) / numpy.where(...) / x.where(...), 'range' for range(...)."""
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    if isinstance(node.func, ast.Name):
        return node.func.id
    return None


def _np_call(name: str, args: list[ast.expr], keywords: list[ast.keyword] | None = None) -> ast.Call:
    return ast.Call(func=ast.Attribute(value=ast.Name('np', ast.Load()), attr=name, ctx=ast.Load()),
                    args=args, keywords=keywords or [])


def _derivative_slip(node, context):
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and _number(node.right) \
            and node.right.value == 2:
        yield node.left, '`{0}` -> `{1}`'.format(_text(node), _text(node.left))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) \
            and ast.dump(node.left) == ast.dump(node.right):
        yield node.left, '`{0}` -> `{1}`'.format(_text(node), _text(node.left))


def _sign_flip(node, context):
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and not _number(node.operand):
        yield node.operand, '`{0}` -> `{1}`'.format(_text(node), _text(node.operand))
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        flipped = ast.BinOp(node.left, ast.Sub() if isinstance(node.op, ast.Add) else ast.Add(), node.right)
        yield flipped, '`{0}` -> `{1}`'.format(_text(node), _text(flipped))


def _swapped_operands(node, context):
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Sub, ast.Div, ast.Pow, ast.MatMult,
                                                            ast.FloorDiv, ast.Mod)):
        swapped = ast.BinOp(node.right, node.op, node.left)
        yield swapped, '`{0}` -> `{1}`'.format(_text(node), _text(swapped))
    if isinstance(node, ast.Call) and _call_name(node) in _ORDERED_CALLS:
        first, second = _ORDERED_CALLS[_call_name(node)]
        if len(node.args) > second and not any(isinstance(a, ast.Starred) for a in node.args):
            swapped = copy.copy(node)
            swapped.args = list(node.args)
            swapped.args[first], swapped.args[second] = node.args[second], node.args[first]
            yield swapped, '`{0}` -> `{1}`'.format(_text(node), _text(swapped))


def _comparison(node, context):
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        for other in _COMPARISONS.get(type(node.ops[0]), ()):
            changed = ast.Compare(node.left, [other()], node.comparators)
            yield changed, '`{0}` -> `{1}`'.format(_text(node), _text(changed))


def _min_max_swap(node, context):
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr in ('maximum', 'minimum'):
        swapped = copy.copy(node)
        swapped.func = ast.Attribute(node.func.value, 'minimum' if node.func.attr == 'maximum' else 'maximum',
                                     ast.Load())
        yield swapped, '`{0}` -> `{1}`'.format(_text(node), _text(swapped))


def _axis(node, context):
    if not (isinstance(node, ast.Call) and _call_name(node) in _REDUCTIONS):
        return
    keywords = {keyword.arg: keyword for keyword in node.keywords}
    if 'axis' in keywords:
        value = keywords['axis'].value
        if _number(value):
            other = {0: 1, 1: 0, -1: 0}.get(value.value, 0)
            changed = copy.copy(node)
            changed.keywords = [ast.keyword('axis', ast.Constant(other)) if k.arg == 'axis' else k
                                for k in node.keywords]
            yield changed, '`{0}` -> `{1}`'.format(_text(node), _text(changed))
        dropped = copy.copy(node)
        dropped.keywords = [k for k in node.keywords if k.arg != 'axis']
        yield dropped, '`{0}` -> `{1}`'.format(_text(node), _text(dropped))
    elif _full_reduction(node):
        along = copy.copy(node)
        along.keywords = list(node.keywords) + [ast.keyword('axis', ast.Constant(0))]
        yield along, '`{0}` -> `{1}`'.format(_text(node), _text(along))
    if 'keepdims' in keywords:
        dropped = copy.copy(node)
        dropped.keywords = [k for k in node.keywords if k.arg != 'keepdims']
        yield dropped, '`{0}` -> `{1}`'.format(_text(node), _text(dropped))


def _full_reduction(node: ast.Call) -> bool:
    """`x.sum()` or `np.sum(x)`: a reduction over all axes."""
    if not isinstance(node.func, ast.Attribute):
        return False
    on_numpy = isinstance(node.func.value, ast.Name) and node.func.value.id in ('np', 'numpy')
    return len(node.args) == (1 if on_numpy else 0)


def _mentions_batch_size(node: ast.AST) -> bool:
    for part in ast.walk(node):
        if isinstance(part, ast.Attribute) and part.attr == 'shape':
            return True
        if isinstance(part, ast.Call) and _call_name(part) == 'len':
            return True
        if isinstance(part, ast.Name) and 'batch' in part.id.lower():
            return True
    return False


def _batch_averaging(node, context):
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and _mentions_batch_size(node.right):
        yield node.left, '`{0}` -> `{1}` (no averaging over the batch)'.format(_text(node), _text(node.left))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ('mean', 'sum'):
        changed = copy.copy(node)
        changed.func = ast.Attribute(node.func.value, 'sum' if node.func.attr == 'mean' else 'mean', ast.Load())
        yield changed, '`{0}` -> `{1}`'.format(_text(node), _text(changed))


def _transposed(node: ast.expr) -> ast.Attribute:
    return ast.Attribute(node, 'T', ast.Load())


def _transpose(node, context):
    if isinstance(node, ast.Attribute) and node.attr == 'T':
        yield node.value, '`{0}` -> `{1}`'.format(_text(node), _text(node.value))
    operands = []
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        operands = [('left', node.left), ('right', node.right)]
    for side, operand in operands:
        changed = ast.BinOp(_transposed(operand) if side == 'left' else node.left, node.op,
                            _transposed(operand) if side == 'right' else node.right)
        yield changed, '`{0}` -> `{1}`'.format(_text(node), _text(changed))
    if isinstance(node, ast.Call) and _call_name(node) in ('dot', 'matmul') and len(node.args) == 2:
        for index in (0, 1):
            changed = copy.copy(node)
            changed.args = list(node.args)
            changed.args[index] = _transposed(node.args[index])
            yield changed, '`{0}` -> `{1}`'.format(_text(node), _text(changed))


def _in_place(node, context):
    parameters = context['parameters']
    if not context['has_np']:
        return
    if isinstance(node, ast.BinOp) and type(node.op) in _UFUNC_OF_OP:
        for operand in (node.left, node.right):
            if isinstance(operand, ast.Name) and operand.id in parameters:
                changed = _np_call(_UFUNC_OF_OP[type(node.op)], [node.left, node.right],
                                   [ast.keyword('out', ast.Name(operand.id, ast.Load()))])
                yield changed, '`{0}` -> `{1}` (overwrites the argument {2})'.format(
                    _text(node), _text(changed), operand.id)
                break
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr in _IN_PLACE_UFUNCS and isinstance(node.func.value, ast.Name) \
            and node.func.value.id in ('np', 'numpy') and not any(k.arg == 'out' for k in node.keywords):
        for operand in node.args:
            if isinstance(operand, ast.Name) and operand.id in parameters:
                changed = copy.copy(node)
                changed.keywords = list(node.keywords) + [ast.keyword('out', ast.Name(operand.id, ast.Load()))]
                yield changed, '`{0}` -> `{1}` (overwrites the argument {2})'.format(
                    _text(node), _text(changed), operand.id)
                break


def _integer_cast(node, context):
    if isinstance(node, ast.Return) and node.value is not None:
        values = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
        if values:
            first = values[0]
            cast = ast.Call(ast.Attribute(first, 'astype', ast.Load()), [ast.Name('int', ast.Load())], [])
            yield (first, cast), '`{0}` -> `{1}`'.format(_text(first), _text(cast))


def _transpose_result(node, context):
    if isinstance(node, ast.Return) and node.value is not None \
            and not isinstance(node.value, (ast.List, ast.Tuple, ast.Constant)) and context['returns_array']:
        yield (node.value, _transposed(node.value)), 'returns `{0}` transposed'.format(_text(node.value))


def _dropped_term(node, context):
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
        yield node.left, '`{0}` -> `{1}`'.format(_text(node), _text(node.left))
        yield node.right, '`{0}` -> `{1}`'.format(_text(node), _text(node.right))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and not _mentions_batch_size(node.right):
        yield node.left, '`{0}` -> `{1}`'.format(_text(node), _text(node.left))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _DROPPED_ONE:
        changed = copy.copy(node)
        changed.func = ast.Attribute(node.func.value, _DROPPED_ONE[node.func.attr], ast.Load())
        yield changed, '`{0}` -> `{1}`'.format(_text(node), _text(changed))
    if isinstance(node, (ast.AugAssign, ast.Expr)) and not (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
        yield [ast.Pass()], 'statement `{0}` dropped'.format(_text(node).split('\n')[0])


def _off_by_one(node, context):
    if isinstance(node, ast.Slice):
        for bound in ('lower', 'upper'):
            value = getattr(node, bound)
            if value is None:
                continue
            for delta in (1, -1):
                changed = copy.copy(node)
                setattr(changed, bound, _plus(value, delta))
                yield changed, '`{0}` -> `{1}`'.format(_text(node), _text(changed))
    if isinstance(node, ast.Subscript) and _number(node.slice) and isinstance(node.slice.value, int):
        for delta in ((1, -1) if node.slice.value > 0 else (1,)):
            changed = ast.Subscript(node.value, ast.Constant(node.slice.value + delta), node.ctx)
            yield changed, '`{0}` -> `{1}`'.format(_text(node), _text(changed))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'range' and node.args:
        for delta in (1, -1):
            changed = copy.copy(node)
            changed.args = list(node.args)
            changed.args[-1 if len(node.args) < 3 else 1] = _plus(node.args[-1 if len(node.args) < 3 else 1], delta)
            yield changed, '`{0}` -> `{1}`'.format(_text(node), _text(changed))


def _wrong_argument(node, context):
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in context['parameters']:
        for other in sorted(context['parameters'] - {node.id}):
            yield ast.Name(other, ast.Load()), '`{0}` -> `{1}`'.format(node.id, other)


def _signed_number(node: ast.AST):
    """The value of `3` or `-3` (a unary minus on a number), else None."""
    if _number(node):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and _number(node.operand):
        return -node.operand.value
    return None


def _number_node(value) -> ast.expr:
    return ast.UnaryOp(ast.USub(), ast.Constant(-value)) if value < 0 else ast.Constant(value)


def _plus(value: ast.expr, delta: int) -> ast.expr:
    if _signed_number(value) is not None:
        return _number_node(_signed_number(value) + delta)
    return ast.BinOp(value, ast.Add() if delta > 0 else ast.Sub(), ast.Constant(abs(delta)))


def _constant(node, context):
    if not _number(node) or id(node) in context['index_constants']:
        return
    value = node.value
    if value == 0:
        choices = [1]
    else:
        choices = [0, -value, value + 1 if value == int(value) else value * 1.01]
    for choice in choices:
        replacement = _number_node(type(value)(choice))
        yield replacement, '`{0}` -> `{1}`'.format(_text(node), _text(replacement))


_OPERATOR_FUNCTIONS: dict[str, Callable] = {
    'derivative_slip': _derivative_slip,
    'sign_flip': _sign_flip,
    'swapped_operands': _swapped_operands,
    'comparison': _comparison,
    'min_max_swap': _min_max_swap,
    'axis': _axis,
    'batch_averaging': _batch_averaging,
    'transpose': lambda node, context: (*_transpose(node, context), *_transpose_result(node, context)),
    'in_place': _in_place,
    'integer_cast': _integer_cast,
    'dropped_term': _dropped_term,
    'off_by_one': _off_by_one,
    'constant': _constant,
    'wrong_argument': _wrong_argument,
}


# --------------------------------------------------------------------------
# Turning a proposal into source text
# --------------------------------------------------------------------------


class _LineOffsets:
    """Character offsets of (line, UTF-8 column) positions in a source text."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = source.split('\n')
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line) + 1)

    def offset(self, lineno: int, col: int) -> int:
        line = self.lines[lineno - 1]
        return self.starts[lineno - 1] + len(line.encode('utf-8')[:col].decode('utf-8', 'replace'))


def _node_lines(node: ast.AST) -> set[int]:
    return set(range(node.lineno, node.end_lineno + 1))


def _replace_in_tree(tree: ast.Module, old: ast.AST, new) -> ast.Module:
    """A copy of `tree` with `old` (found by identity) replaced by `new`."""
    class Replace(ast.NodeTransformer):
        def visit(self, node):
            if node is old:
                return new
            return super().generic_visit(node)
    return Replace().visit(_identity_copy(tree, old))


def _identity_copy(tree: ast.Module, keep: ast.AST) -> ast.Module:
    """Deep copy of `tree` whose copy of `keep` is `keep` itself (so it can be found)."""
    memo = {id(keep): keep}
    return copy.deepcopy(tree, memo)


def _splice(offsets: _LineOffsets, node: ast.AST, text: str) -> str:
    start = offsets.offset(node.lineno, node.col_offset)
    end = offsets.offset(node.end_lineno, node.end_col_offset)
    return offsets.source[:start] + text + offsets.source[end:]


def _expression_text(node: ast.AST) -> str:
    text = ast.unparse(node)
    if isinstance(node, _ATOMIC) or (_number(node) and node.value >= 0):
        return text
    return '(' + text + ')'


def _statements_text(statements: list[ast.stmt], indent: str) -> str:
    return ('\n' + indent).join(ast.unparse(statement) for statement in statements)


def _apply(source: str, offsets: _LineOffsets, tree: ast.Module, mutation: Mutation) -> str | None:
    """The mutated source, or None if the text does not parse to the intended tree."""
    node, replacement = mutation.node, mutation.replacement
    if isinstance(replacement, tuple):  # (sub-node, its replacement): change a part of `node`
        node, replacement = replacement
    if isinstance(replacement, list):
        indent = offsets.lines[node.lineno - 1][:node.col_offset]
        text = _statements_text(replacement, indent)
        expected = _replace_in_tree(tree, node, replacement)
    elif isinstance(node, ast.Slice):
        text = ast.unparse(ast.Subscript(ast.Name('x', ast.Load()), replacement, ast.Load()))[2:-1]
        expected = _replace_in_tree(tree, node, replacement)
    else:
        text = _expression_text(replacement)
        expected = _replace_in_tree(tree, node, replacement)
    mutated = _splice(offsets, node, text)
    try:
        parsed = ast.parse(mutated)
    except SyntaxError:
        return None
    if ast.dump(parsed) != ast.dump(ast.fix_missing_locations(expected)):
        return None
    return mutated


def unified_diff(original: str, mutated: str, name: str = 'solution') -> str:
    """Unified diff of two sources, one line of context (how reports show a change)."""
    return ''.join(difflib.unified_diff(original.splitlines(True), mutated.splitlines(True),
                                        'a/' + name, 'b/' + name, n=1))


def _function_context(site: Site, source_tree: ast.Module) -> dict:
    arguments = site.function.args
    parameters = {a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs} - {'self', 'cls'}
    has_np = any(isinstance(n, (ast.Import, ast.ImportFrom)) and any(
        (alias.asname or alias.name) == 'np' for alias in n.names) for n in ast.walk(source_tree))
    index_constants = set()
    for node in ast.walk(site.function):
        if isinstance(node, ast.Subscript):
            index_constants.update(id(part) for part in ast.walk(node.slice) if _number(part))
        if isinstance(node, ast.keyword) and node.arg in ('axis', 'keepdims'):
            index_constants.update(id(part) for part in ast.walk(node.value))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'range':
            index_constants.update(id(part) for arg in node.args for part in ast.walk(arg) if _number(part))
    method = site.target.rsplit('.', 1)[-1]
    return {'parameters': parameters, 'has_np': has_np, 'index_constants': index_constants,
            'returns_array': method in ('fprop', 'bprop', 'grad', '__call__') or '.' not in site.target}


def proposals(site: Site, tree: ast.Module, operators: tuple[str, ...] = OPERATORS) -> Iterator[Mutation]:
    """Every proposed single change inside a site, operator by operator."""
    context = _function_context(site, tree)
    nodes = [node for statement in _docstring_free(site.function.body) for node in ast.walk(statement)
             if hasattr(node, 'lineno') and _node_lines(node) <= site.lines]
    for name in operators:
        operator = _OPERATOR_FUNCTIONS[name]
        for node in nodes:
            for replacement, note in operator(node, context):
                yield Mutation(name, node, replacement, note)


def generate_mutants(source: str, lines: frozenset | None = None, *, targets: set[str] | None = None,
                     operators: tuple[str, ...] = OPERATORS, name: str = 'solution') -> list[Mutant]:
    """All single-change mutants of the functions of `source`.

    Args:
        source: Python source (a solution cell, or a reference region as a cell).
        lines: The 1-based lines that may change (a solution region); None: any.
        targets: Only mutate these targets ('Class.method'); None: every function.
        operators: Which operators to apply (default: all, see OPERATORS).
        name: File name shown in the diffs.

    Returns:
        Mutants in a stable order (site, operator, position), without
        duplicates (two changes giving the same tree) and without changes
        that give back the original tree.
    """
    tree = ast.parse(source)
    offsets = _LineOffsets(source)
    seen = {ast.dump(tree)}
    mutants = []
    for site in find_sites(source, lines, targets, tree):
        for mutation in proposals(site, tree, operators):
            mutated = _apply(source, offsets, tree, mutation)
            if mutated is None:
                continue
            key = ast.dump(ast.parse(mutated))
            if key in seen:
                continue
            seen.add(key)
            mutants.append(Mutant(site.target, mutation.operator, mutation.note, mutated,
                                  unified_diff(source, mutated, name)))
    return mutants
