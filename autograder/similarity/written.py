"""What a student wrote for the graded targets: the extracted code minus what the release gives.

TRUSTED, in the grading parent. Nothing is executed: the notebook's code comes
from :func:`autograder.submission.extract.extract_code` (the grader's own
extraction, so similarity looks at exactly the code that is graded) and is
walked with :mod:`ast`.

For each graded unit (a class or function the assignment names) the last
definition in the notebook is taken, as the grader does (with the definitions it
extends, for ``class TanhLayer(TanhLayer):`` in a later cell). Its statements are
flattened in source order (a compound statement such as ``def`` or ``if``
counts by its header; the statements in its blocks count one by one) and
compared with the same unit's statements in the released notebook by a
longest-matching-subsequence alignment (:class:`difflib.SequenceMatcher`) on
the statements' text (a compound statement's header only), whitespace ignored. Statements that align with the release's
(the class and method headers, ``__init__`` bodies, helper methods such as
``__repr__``) are what the release gave and are left out, as are docstrings
and other bare strings, ``pass`` and every ``raise NotImplementedError``. What
remains is the student's code; an untouched skeleton leaves nothing, so untouched
skeletons never look alike.

Adjacent assignments that do not depend on each other are put in a canonical
order first (both in the release and in the submission), so swapping two
independent lines, a common disguise, changes nothing. The student's statements
are turned into normalised tokens (:mod:`autograder.similarity.normalise`). Each method's statements form one
*segment*: fingerprints never span two methods, so two students whose one-line
methods happen to follow each other in the same way do not get a match out of
the join.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from autograder.similarity.normalise import BLOCK_FIELDS, import_aliases, statement_shape, statement_tokens
from autograder.submission.extract import Extraction, extract_code

__all__ = ['ListingLine', 'WrittenCode', 'release_statements', 'written_code']

#: Largest graded unit compared, in characters of source (a lab's class is a few KB).
MAX_UNIT_CHARS = 40_000

#: Most tokens kept per submission; later units are left out and noted.
MAX_TOKENS = 20_000


@dataclass(frozen=True)
class ListingLine:
    """One source line of a graded unit, as shown in the side-by-side view.

    Attributes:
        unit: The class or function it belongs to.
        cell: 1-based position of the notebook cell among all cells (0 when unknown).
        line: 1-based line in that cell.
        text: The line as written.
        written: True when a student-written token comes from this line.
    """

    unit: str
    cell: int
    line: int
    text: str
    written: bool


@dataclass
class WrittenCode:
    """A submission's student-written code, as tokens and as lines to show.

    Attributes:
        rows: The lines of every graded unit, in notebook order of the units.
        tokens: Normalised tokens of the student-written statements.
        token_rows: For each token, the index in ``rows`` of its line.
        segments: ``(start, end)`` token ranges fingerprinted separately (one per
            method or function), in order, covering ``tokens``.
        units: The graded units found as a class or function definition.
        notes: Things the instructor should know (a unit too large, too deep).
    """

    rows: list[ListingLine] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    token_rows: list[int] = field(default_factory=list)
    segments: list[tuple[int, int]] = field(default_factory=list)
    units: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Statement:
    node: ast.AST
    segment: int  # id() of the enclosing function (or unit) node


def release_statements(release_notebook: Any, wanted: Iterable[str]) -> dict[str, list[str]]:
    """The statement keys of each graded unit in the released notebook.

    Args:
        release_notebook: The release (student) version of the assignment's notebook.
        wanted: The graded units' names.

    Returns:
        Unit name -> keys of its statements in order (see the module docstring);
        units the release does not define are absent.
    """
    extraction = extract_code(release_notebook, wanted)
    tree = _relevant_statements(extraction, wanted)
    lines = extraction.source.split('\n')
    aliases = import_aliases(tree)
    keys = {}
    for name, chain in _unit_nodes(tree, extraction, wanted).items():
        try:
            keys[name] = [_key(statement.node, lines) for node in chain
                          for statement in _flatten(node, aliases)]
        except RecursionError:
            continue
    return keys


def written_code(extraction: Extraction, wanted: Iterable[str],
                 release: Mapping[str, list[str]]) -> WrittenCode:
    """The student-written code of the graded units of one extracted notebook.

    Args:
        extraction: The notebook's extraction (``extract_code(notebook, wanted)``).
        wanted: The graded units' names.
        release: :func:`release_statements` of the released notebook.

    Returns:
        The :class:`WrittenCode` (empty when nothing was written).
    """
    code = WrittenCode()
    tree = _relevant_statements(extraction, wanted)
    aliases = import_aliases(tree)
    source_lines = extraction.source.split('\n')
    units = _unit_nodes(tree, extraction, wanted)
    code.units = sorted(units, key=lambda name: units[name][0].lineno)
    absent = [name for name in dict.fromkeys(wanted) if name not in units]
    if absent:
        code.notes.append('Not defined as a class or function in the notebook, so not compared: {0}{1}.'.format(
            ', '.join(absent), ' ({0} skipped for a syntax error, as in grading)'.format(
                '1 cell was' if len(extraction.syntax_errors) == 1 else '{0} cells were'.format(
                    len(extraction.syntax_errors))) if extraction.syntax_errors else ''))
    definitions = sorted(((name, node) for name, chain in units.items() for node in chain),
                         key=lambda item: item[1].lineno)
    for name, node in definitions:
        start = _first_line(node)
        end = node.end_lineno or node.lineno
        if sum(len(line) + 1 for line in source_lines[start - 1:end]) > MAX_UNIT_CHARS:
            code.notes.append('{0} is longer than {1} characters and was not compared.'.format(
                name, MAX_UNIT_CHARS))
            continue
        if len(code.tokens) >= MAX_TOKENS:
            code.notes.append('{0} was not compared: the submission already has {1} tokens.'.format(
                name, MAX_TOKENS))
            continue
        try:
            _add_unit(code, name, node, extraction, source_lines, release.get(name, []), aliases)
        except RecursionError:
            code.notes.append('{0} is nested too deeply to be compared.'.format(name))
    return code


def _add_unit(code: WrittenCode, name: str, node: ast.AST, extraction: Extraction,
              source_lines: list[str], release_keys: list[str], aliases: Mapping[str, str]) -> None:
    statements = _flatten(node, aliases)
    keys = [_key(statement.node, source_lines) for statement in statements]
    given = _aligned(release_keys, keys)
    first_row = len(code.rows)
    start = _first_line(node)
    row_of_line = {}
    for source_line in range(start, (node.end_lineno or node.lineno) + 1):
        where = extraction.locate(source_line)
        cell, line = (where[0] + 1, where[1]) if where else (0, source_line)
        row_of_line[source_line] = len(code.rows)
        code.rows.append(ListingLine(name, cell, line, source_lines[source_line - 1], False))
    tokens: list[str] = []
    rows: list[int] = []
    segment_of: list[int] = []
    for index, statement in enumerate(statements):
        if index in given:
            continue
        new_tokens, lines = statement_tokens(statement.node, aliases)
        tokens += new_tokens
        rows += [row_of_line.get(line, first_row) for line in lines]
        segment_of += [statement.segment] * len(new_tokens)
    offset = len(code.tokens)
    code.tokens += tokens
    code.token_rows += rows
    segment_start = 0
    for position in range(1, len(tokens) + 1):
        if position == len(tokens) or segment_of[position] != segment_of[segment_start]:
            code.segments.append((offset + segment_start, offset + position))
            segment_start = position
    for row in set(rows):
        line = code.rows[row]
        code.rows[row] = ListingLine(line.unit, line.cell, line.line, line.text, True)


def _relevant_statements(extraction: Extraction, wanted: Iterable[str]) -> ast.Module:
    """The extraction's imports and the statements that bind a wanted name, parsed.

    Each kept statement is one top-level statement of the extraction's source (its
    ``# cell`` comment on the line before), so each is parsed alone and moved to
    its line there; the rest (helpers, constants) is never parsed again.
    """
    wanted_set = set(wanted)
    lines = extraction.source.split('\n')
    kept = extraction.kept
    body: list[ast.stmt] = []
    for index, statement in enumerate(kept):
        if statement.kind != 'import' and not wanted_set.intersection(statement.names):
            continue
        end = kept[index + 1].source_line - 2 if index + 1 < len(kept) else len(lines)
        # Blank lines in front put every node on its line of the source (cheaper than
        # ast.increment_lineno); kept statements start at column 0, so columns agree too.
        padding = '\n' * (statement.source_line - 1)
        body.extend(ast.parse(padding + '\n'.join(lines[statement.source_line - 1:end])).body)
    return ast.Module(body=body, type_ignores=[])


def _unit_nodes(tree: ast.Module, extraction: Extraction, wanted: Iterable[str]) -> dict[str, list[ast.AST]]:
    """The definitions that make up each wanted name at the end of the notebook.

    That is the last top-level class or function definition of the name, preceded
    by the definitions it extends when it is written ``class TanhLayer(TanhLayer):``
    (students redefine one method in a later cell this way; the earlier class
    still holds the rest of their code).
    """
    wanted_set = set(wanted)
    chains: dict[str, list[ast.AST]] = {}
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in wanted_set:
            extends = isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Name) and base.id == node.name for base in node.bases)
            chains[node.name] = (chains.get(node.name, []) if extends else []) + [node]
        elif isinstance(node, (ast.Assign, ast.Import, ast.ImportFrom)):
            for name in _rebound(node) & wanted_set:
                chains.pop(name, None)  # rebound later (e.g. imported): not the student's definition
    return {name: chain for name, chain in chains.items()
            if name in extraction.found and extraction.found[name].kind in ('class', 'function')}


def _rebound(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Assign):
        return {target.id for target in node.targets if isinstance(target, ast.Name)}
    return {alias.asname or alias.name.split('.')[0] for alias in node.names}


def _first_line(node: ast.AST) -> int:
    decorators = getattr(node, 'decorator_list', None) or []
    return min([node.lineno] + [decorator.lineno for decorator in decorators])


def _flatten(unit: ast.AST, aliases: Mapping[str, str]) -> list[_Statement]:
    """The unit's statements in order (headers of compound ones), skipping filler.

    Depth-first without recursion: hostile code can be nested deeply. Runs of
    independent assignments are put in a canonical order (:func:`_canonical_order`).
    """
    statements = [_Statement(unit, id(unit))]
    stack = [(child, _segment(child, id(unit))) for child in reversed(_blocks(unit, aliases))]
    while stack:
        node, segment = stack.pop()
        if _is_filler(node):
            continue
        statements.append(_Statement(node, segment))
        stack += [(child, _segment(child, segment)) for child in reversed(_blocks(node, aliases))]
    return statements


def _blocks(node: ast.AST, aliases: Mapping[str, str]) -> list[ast.AST]:
    """The statements (and except/case clauses) directly in a node's blocks, in order."""
    children = []
    for field_name in BLOCK_FIELDS:
        block = [child for child in getattr(node, field_name, None) or [] if isinstance(child, ast.AST)]
        children += _canonical_order(block, aliases)
    return children


_ASSIGNMENTS = (ast.Assign, ast.AugAssign, ast.AnnAssign)


def _canonical_order(block: list[ast.AST], aliases: Mapping[str, str]) -> list[ast.AST]:
    """The block with adjacent independent assignments in a canonical order.

    Two adjacent assignments are independent when neither reads or assigns a
    name the other assigns; such pairs are swapped (a stable bubble sort) until
    they are ordered by their name-blind tokens. So a copier who swaps two
    independent lines gets the same stream, while code whose order matters
    keeps it. This only orders tokens for comparison; nothing is run.
    """
    if sum(isinstance(node, _ASSIGNMENTS) for node in block) < 2 or len(block) > 200:
        return block
    ordered = list(block)
    shapes = {id(node): statement_shape(node, aliases) for node in ordered if isinstance(node, _ASSIGNMENTS)}
    names = {id(node): _reads_and_writes(node) for node in ordered if isinstance(node, _ASSIGNMENTS)}
    changed = True
    while changed:
        changed = False
        for index in range(len(ordered) - 1):
            first, second = ordered[index], ordered[index + 1]
            if id(first) not in shapes or id(second) not in shapes:
                continue
            (first_reads, first_writes), (second_reads, second_writes) = names[id(first)], names[id(second)]
            independent = not (first_writes & (second_reads | second_writes) or second_writes & first_reads)
            if independent and shapes[id(second)] < shapes[id(first)]:
                ordered[index], ordered[index + 1] = second, first
                changed = True
    return ordered


def _reads_and_writes(node: ast.AST) -> tuple[set[str], set[str]]:
    """Names an assignment reads and names it assigns (the base name of ``a[i]``, ``a.b``)."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    writes = set()
    for target in targets:
        base = target
        while isinstance(base, (ast.Attribute, ast.Subscript, ast.Starred)):
            base = base.value
        writes.update(n.id for n in ast.walk(base) if isinstance(n, ast.Name))
    read_parts = [node.value] if node.value is not None else []
    read_parts += [target for target in targets if not isinstance(target, ast.Name)]
    if isinstance(node, ast.AugAssign):
        read_parts.append(node.target)
    reads = {n.id for part in read_parts for n in ast.walk(part) if isinstance(n, ast.Name)}
    return reads, writes


def _segment(node: ast.AST, enclosing: int) -> int:
    return id(node) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else enclosing


def _is_filler(node: ast.AST) -> bool:
    """Docstrings and other bare constants, ``pass``, and ``raise NotImplementedError``."""
    if isinstance(node, ast.Pass):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return True
    if isinstance(node, ast.Raise) and node.exc is not None:
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        return isinstance(exc, ast.Name) and exc.id == 'NotImplementedError'
    return False


def _key(node: ast.AST, lines: list[str]) -> str:
    """A statement's header as written, without any whitespace (its blocks left out).

    Text, not the syntax tree, because comparing trees (``ast.dump``) cost more than
    everything else here; whitespace is dropped so re-indenting changes nothing.
    """
    start = _start(node)
    children = [child for field_name in BLOCK_FIELDS for child in getattr(node, field_name, None) or []
                if isinstance(child, ast.AST)]
    end = _start(children[0]) if children else (node.end_lineno or start[0], node.end_col_offset or 0)
    return ''.join(_text(lines, start, end).split())


def _start(node: ast.AST) -> tuple[int, int]:
    if isinstance(node, ast.match_case):
        node = node.pattern
    decorators = getattr(node, 'decorator_list', None) or []
    first = min([node] + list(decorators), key=lambda item: (item.lineno, item.col_offset))
    if first is not node:
        return first.lineno, 0  # the line of the first decorator, from its "@"
    return node.lineno, node.col_offset


def _text(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> str:
    """Source between two (line, UTF-8 byte column) positions, as ``ast`` counts them."""
    chunk = lines[start[0] - 1:end[0]]
    if not chunk:
        return ''
    encoded = [line.encode('utf-8', 'surrogatepass') for line in chunk]
    if len(encoded) == 1:
        encoded[0] = encoded[0][start[1]:end[1]]
    else:
        encoded[0] = encoded[0][start[1]:]
        encoded[-1] = encoded[-1][:end[1]]
    return '\n'.join(part.decode('utf-8', 'replace') for part in encoded)


def _aligned(release_keys: list[str], keys: list[str]) -> set[int]:
    """Indexes of ``keys`` that align with the release's statements."""
    if not release_keys:
        return set()
    matcher = difflib.SequenceMatcher(None, release_keys, keys, autojunk=False)
    given = set()
    for block in matcher.get_matching_blocks():
        given.update(range(block.b, block.b + block.size))
    return given
