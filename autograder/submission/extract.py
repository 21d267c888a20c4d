"""Pull the gradable code out of a notebook: imports, definitions, simple constants.

Runs TRUSTED, in the grading parent. Nothing is executed here: cells are only parsed
with :mod:`ast`. The result is a Python source string that the sandbox later runs,
so this filter is *not* a security boundary (class bodies and decorators still run
code there); it exists so that a notebook with hours of experiments grades in
seconds and so that the report can say what was left out.

Rules, applied to every code cell in notebook order (cell metadata is ignored,
because students move, copy and re-create cells):

0. **Size**: a code cell longer than ``MAX_CELL_CHARS`` (1 MiB), and any cell that
   would take the notebook's parsed code past ``MAX_NOTEBOOK_CODE_CHARS`` (2 MiB), is
   skipped whole and reported: parsing happens in the grading process, and a huge
   cell would cost it gigabytes of memory.
1. **IPython syntax is neutralised** before parsing, keeping line numbers: a line
   magic (``%matplotlib inline``), a shell escape (``!pip install x``), an
   assignment from either (``files = !ls``, ``t = %time f()``), a help request
   (``np.dot?``, ``?np.dot``) and IPython's autocall escapes (``/f x``, ``,f a b``)
   are each replaced by ``pass`` at the same indentation (continuation lines become
   blank). Detection reuses IPython's own token-based finders, so the same text
   inside a string or comment is left alone. Cells that are valid Python are never
   touched. A cell whose first line is indented is dedented first, as IPython does.
   IPython's tokenizer is given at most ``MAX_TOKENISED_CHARS`` per notebook (it
   re-tokenises after each escape, which is quadratic); beyond that, escapes are
   found line by line in one pass, so extraction stays linear in the code's size.
2. **Cell magics**: a cell starting with ``%%time`` or ``%%capture`` keeps its body
   (those run the body as Python in the notebook's namespace, so their definitions
   persist); any other cell magic (``%%bash``, ``%%script``, ``%%writefile``,
   ``%%timeit``, ``%%html``, ...) skips the whole cell, because its body is not
   Python or its definitions do not persist in Jupyter either.
3. **Syntax errors**: a cell that still does not compile (after step 1) is skipped
   whole and reported with its line and message, exactly as Jupyter would fail to
   run it. ``from __future__ import annotations`` carries over to later cells, as in
   IPython.
4. **Top-level statements kept**: ``import`` and ``from ... import``; function and
   class definitions (with their decorators); and assignments to plain names
   (``seed = 6102016``, ``input_dim, output_dim = 784, 10``, ``act = lambda x: x``)
   whose right-hand side calls nothing, except ``np.array(...)`` / ``numpy.array``
   of a literal (nested lists/tuples of numbers, strings, ``True``/``False``/
   ``None``, ``np.nan``/``np.inf``/``np.pi``) with an optional ``dtype``, so the
   notebook's visible test arrays survive. Calls inside a lambda body do not count
   (they do not run at assignment). ``from __future__ import annotations`` is
   hoisted to the top of the output.
5. **Everything else is skipped and counted**: loops, ``if``/``with``/``try``
   blocks (``if __name__ == "__main__":`` included), expression statements,
   assignments that call code or assign to attributes/items, ``del``, etc. Skip
   reasons ("training loop", "plot", "data loading", ...) are heuristics based on
   the names a statement mentions; they only make the summary readable.

The output has one kept statement after each ``# cell <n>, line <m>`` comment (``n``
is the 1-based position of the cell among *all* cells, ``m`` the 1-based line in
the cell), reproduced exactly as written, in notebook order; a class or function
defined twice appears twice, so the later definition wins when run, as it would
when running the notebook top to bottom. Each kept statement is exactly one
top-level statement of the output, so the sandbox can ``ast.parse`` the source and
run it statement by statement. The output always compiles with
``compile(source, "submission.py", "exec")``.
"""

from __future__ import annotations

import __future__
import ast
import bisect
import difflib
import re
import textwrap
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Definition",
    "Extraction",
    "KeptStatement",
    "SkippedItem",
    "SyntaxIssue",
    "extract_code",
]

# Cell magics whose body is Python run in the user's namespace.
PYTHON_BODY_CELL_MAGICS = frozenset({"time", "capture"})

# Re-tokenising after every IPython escape is quadratic; a cell needing more passes
# than this is reported as a syntax error instead.
_MAX_NEUTRALISE_PASSES = 200

#: Most characters given to IPython's tokenizer per notebook, over all passes of
#: all cells (tokenising costs about 3 microseconds per character, and a cell
#: with an escape and a quote on every few lines needs a pass per escape: one
#: 1 MB cell took over ten minutes). Past it, escapes are found line by line
#: (linear, not string-aware), so the work stays linear in the notebook's size.
MAX_TOKENISED_CHARS = 512 * 1024

#: Largest code cell that is parsed, in characters. Parsing builds a syntax tree in
#: the grading process, and dense code (a literal list of a million numbers) costs
#: about 500 bytes of memory and 5 microseconds per character: a 10 MB cell would
#: take 5 GB and a minute. Lab code cells are a few kilobytes; larger cells are
#: skipped and reported.
MAX_CELL_CHARS = 1024 * 1024

#: Most code parsed from one notebook, in characters; later cells are skipped.
MAX_NOTEBOOK_CODE_CHARS = 2 * 1024 * 1024

_FUTURE_ANNOTATIONS = __future__.annotations.compiler_flag
_CELL_COMPILE_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT

# difflib ratio above which a defined name is suggested for a missing one. Names
# sharing only the "Layer" suffix (SoftmaxLayer vs TanhLyer: 0.6) stay below it.
_NEAR_MISS_CUTOFF = 0.75

_NUMPY_CONSTANTS = frozenset({"nan", "inf", "pi", "e", "newaxis", "NaN", "Inf"})
_DTYPE_NAMES = frozenset({"float", "int", "bool", "complex", "object", "str"})


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Definition:
    """Where a name was last bound by a kept statement.

    Attributes:
        name: The bound name.
        kind: ``"class"`` or ``"function"`` for definitions; ``"assignment"`` when the
            name was last bound by a kept simple assignment (e.g. ``TanhLayer = MyTanh``)
            and ``"import"`` when by an import (e.g. ``from mlp.layers import TanhLayer``).
        cell_index: 0-based index of the cell in ``notebook.cells`` (all cell types).
        line: 1-based line in that cell where the statement starts (its first decorator
            for a decorated definition).
    """

    name: str
    kind: str
    cell_index: int
    line: int

    @property
    def location(self) -> str:
        """``"cell 20, line 3"`` (cells counted from 1 among all cells)."""
        return f"cell {self.cell_index + 1}, line {self.line}"


@dataclass(frozen=True)
class SkippedItem:
    """A statement or whole cell left out of the extracted source.

    Attributes:
        cell_index: 0-based index of the cell in ``notebook.cells``.
        line: 1-based line in the cell.
        reason: Short label, e.g. ``"training loop"``, ``"plot"``, ``"shell command"``,
            ``"%%bash cell"``.
        scope: ``"statement"`` or ``"cell"`` (the whole cell was skipped).
    """

    cell_index: int
    line: int
    reason: str
    scope: str = "statement"


@dataclass(frozen=True)
class SyntaxIssue:
    """A code cell skipped because Python cannot compile it.

    Attributes:
        cell_index: 0-based index of the cell in ``notebook.cells``.
        line: 1-based line in the cell (1 when Python gives none).
        column: 1-based column, or 0 when unknown.
        message: Python's message, e.g. ``"invalid syntax"``.
    """

    cell_index: int
    line: int
    column: int
    message: str

    def describe(self) -> str:
        """``"cell 7, line 3: invalid syntax"``."""
        return f"cell {self.cell_index + 1}, line {self.line}: {self.message}"


@dataclass(frozen=True)
class KeptStatement:
    """One statement copied into :attr:`Extraction.source`.

    Attributes:
        cell_index: 0-based index of the cell in ``notebook.cells``.
        line: 1-based line in the cell where the statement starts.
        kind: ``"import"``, ``"class"``, ``"function"`` or ``"assignment"``.
        names: Names the statement binds, in order.
        source_line: 1-based line in ``Extraction.source`` where the statement's text
            starts (the ``# cell`` comment is on the line before).
    """

    cell_index: int
    line: int
    kind: str
    names: tuple[str, ...]
    source_line: int


@dataclass(frozen=True)
class Extraction:
    """What :func:`extract_code` kept and skipped.

    Attributes:
        source: Python source of the kept statements (always compiles).
        found: For each wanted name that a kept statement binds, its last binding.
        missing: Wanted names that no kept statement binds, in the order asked.
        near_misses: For each missing name, defined class/function names that look
            similar (e.g. ``{"TanhLayer": ["TanhLyer"]}``); empty lists are omitted.
        skipped: Statements and cells left out, in notebook order.
        syntax_errors: Cells skipped because they do not compile, in notebook order.
        kept: The kept statements, in output order.
        code_cells: Number of code cells examined.
        class_methods: For each class name whose last binding is a class definition,
            the names of the functions defined directly in its body.
    """

    source: str
    found: dict[str, Definition]
    missing: list[str]
    near_misses: dict[str, list[str]]
    skipped: list[SkippedItem]
    syntax_errors: list[SyntaxIssue]
    kept: list[KeptStatement] = field(default_factory=list)
    code_cells: int = 0
    class_methods: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def defined_methods(self, class_name: str) -> set[str]:
        """Names of the methods defined directly in a class's (last) definition.

        Counts ``def``/``async def`` in the class body (decorated ones too, e.g.
        properties) and class-level aliases such as ``__call__ = fprop``; inherited
        methods are not included.

        Args:
            class_name: A class defined in the notebook.

        Returns:
            The method names (a new set).

        Raises:
            KeyError: ``class_name`` is not bound to a class definition at the end of
                the extracted code.
        """
        try:
            return set(self.class_methods[class_name])
        except KeyError:
            raise KeyError(f"{class_name} is not defined as a class in the notebook") from None

    def locate(self, source_line: int) -> tuple[int, int] | None:
        """Map a line of :attr:`source` back to ``(cell_index, line_in_cell)``.

        Useful to turn a traceback from the sandbox into a place in the notebook.

        Args:
            source_line: 1-based line in :attr:`source`.

        Returns:
            ``(cell_index, line)`` (0-based cell index, 1-based line), or None for a
            line outside any kept statement.
        """
        starts = [statement.source_line for statement in self.kept]
        position = bisect.bisect_right(starts, source_line) - 1
        if position < 0:
            return None
        statement = self.kept[position]
        end = starts[position + 1] - 2 if position + 1 < len(starts) else self.source.count("\n")
        if source_line > end:
            return None
        return statement.cell_index, statement.line + (source_line - statement.source_line)

    def summary(self) -> str:
        """One line saying what was kept and skipped.

        Example: ``"kept 3 definitions and 5 imports from 12 code cells; skipped 4
        statements (2 training loops, 1 plot, 1 data loading) and 1 cell with a syntax
        error"``.
        """
        counts = Counter(statement.kind for statement in self.kept)
        kept_parts = []
        definitions = counts["class"] + counts["function"]
        if definitions:
            kept_parts.append(_count(definitions, "definition"))
        if counts["import"]:
            kept_parts.append(_count(counts["import"], "import"))
        if counts["assignment"]:
            kept_parts.append(_count(counts["assignment"], "assignment"))
        kept_text = "kept " + _join_and(kept_parts) if kept_parts else "kept nothing"
        kept_text += f" from {_count(self.code_cells, 'code cell')}"

        statements = [item.reason for item in self.skipped if item.scope == "statement"]
        cells = [item.reason for item in self.skipped if item.scope == "cell"]
        skipped_parts = []
        if statements:
            breakdown = ", ".join(_count(n, label) for label, n in Counter(statements).most_common())
            skipped_parts.append(f"{_count(len(statements), 'statement')} ({breakdown})")
        skipped_parts.extend(_count(n, label) for label, n in Counter(cells).most_common())
        if self.syntax_errors:
            skipped_parts.append(f"{_count(len(self.syntax_errors), 'cell')} with a syntax error")
        skipped_text = "skipped " + _join_and(skipped_parts) if skipped_parts else "skipped nothing"
        return f"{kept_text}; {skipped_text}"


_PLURALS = {
    "data loading": "data loading",
    "__future__ import": "__future__ imports",
    "assignment that runs code": "assignments that run code",
    "cell without text": "cells without text",
    "unreadable cell": "unreadable cells",
    "statement that does not compile alone": "statements that do not compile alone",
    "assignment to an attribute or item": "assignments to attributes or items",
}


def _count(number: int, label: str) -> str:
    if number == 1:
        return f"1 {label}"
    return f"{number} {_PLURALS.get(label, label + 's')}"


def _join_and(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


# --------------------------------------------------------------------------- entry point


def extract_code(notebook: Any, wanted: Iterable[str]) -> Extraction:
    """Extract imports, definitions and simple assignments from every code cell.

    See the module docstring for the rules. Never raises on odd notebooks: cells that
    are not mappings, have no text source, contain null bytes or fail to parse are
    reported, not fatal.

    Args:
        notebook: An ``nbformat.NotebookNode`` (or a plain dict) with a ``cells`` list.
        wanted: Names the assignment needs (e.g. ``["TanhLayer", "ReluLayer"]``).

    Returns:
        The :class:`Extraction`.
    """
    wanted_names = list(dict.fromkeys(str(name) for name in wanted))
    builder = _ExtractionBuilder()
    with warnings.catch_warnings():
        # compile() warns about things like "is" with a literal; not our business here.
        warnings.simplefilter("ignore")
        for index, cell in enumerate(_notebook_cells(notebook)):
            if not isinstance(cell, Mapping) or cell.get("cell_type") != "code":
                continue
            builder.code_cells += 1
            try:
                builder.add_cell(index, cell.get("source", ""))
            except Exception:  # noqa: BLE001 - last resort: one odd cell never stops grading
                builder.skip(index, 1, "unreadable cell", scope="cell")
        return builder.finish(wanted_names)


def _notebook_cells(notebook: Any) -> list:
    try:
        cells = notebook.get("cells") if isinstance(notebook, Mapping) else getattr(notebook, "cells", None)
    except Exception:  # noqa: BLE001
        return []
    return list(cells) if isinstance(cells, (list, tuple)) else []


def _cell_text(source: Any) -> str | None:
    """The cell's source as one string with ``\\n`` line ends, or None if it is not text."""
    if isinstance(source, (list, tuple)):
        if not all(isinstance(piece, str) for piece in source):
            return None
        source = "".join(source)
    if not isinstance(source, str):
        return None
    if "\r" in source:
        source = source.replace("\r\n", "\n").replace("\r", "\n")
    return source


# --------------------------------------------------------------------------- builder


@dataclass(frozen=True)
class _Statement:
    """A kept statement before assembly (``methods`` only for classes)."""

    cell_index: int
    line: int
    kind: str
    names: tuple[str, ...]
    text: str
    methods: frozenset[str] | None


class _ExtractionBuilder:
    """Accumulates kept statements, skips and bindings across cells."""

    def __init__(self) -> None:
        self.code_cells = 0
        self.statements: list[_Statement] = []
        self.skipped: list[SkippedItem] = []
        self.syntax_errors: list[SyntaxIssue] = []
        self.future_flags = 0
        self.future_origin: tuple[int, int] | None = None
        self.numpy_aliases = {"np", "numpy"}
        self.array_aliases: set[str] = set()
        self.parsed_chars = 0
        self.tokenised_chars = 0

    # ---- bookkeeping

    def skip(self, cell_index: int, line: int, reason: str, scope: str = "statement") -> None:
        self.skipped.append(SkippedItem(cell_index, line, reason, scope))

    def syntax_error(self, cell_index: int, line: int | None, column: int | None, message: str) -> None:
        self.syntax_errors.append(SyntaxIssue(cell_index, max(int(line or 1), 1), max(int(column or 0), 0), message))

    # ---- one cell

    def add_cell(self, cell_index: int, source: Any) -> None:
        text = _cell_text(source)
        if text is None:
            self.skip(cell_index, 1, "cell without text", scope="cell")
            return
        if not text.strip():
            return
        if len(text) > MAX_CELL_CHARS:
            self.skip(cell_index, 1, "cell too large to grade", scope="cell")
            return
        if self.parsed_chars + len(text) > MAX_NOTEBOOK_CODE_CHARS:
            self.skip(cell_index, 1, "code beyond the notebook's size limit", scope="cell")
            return
        self.parsed_chars += len(text)
        if "\x00" in text:
            line = text.count("\n", 0, text.index("\x00")) + 1
            self.syntax_error(cell_index, line, 0, "the cell contains a null byte, which Python cannot compile")
            return
        text = self._strip_cell_magic(cell_index, text)
        if text is None:
            return
        compiled = self._compile_cell(cell_index, text)
        if compiled is None:
            return
        tree, text = compiled
        lines = text.split("\n")
        for node in tree.body:
            self._visit(cell_index, node, lines)

    def _strip_cell_magic(self, cell_index: int, text: str) -> str | None:
        """Blank a ``%%time``-like first line, or skip the cell for other cell magics.

        Returns:
            The text to parse (the magic line blanked), or None when the whole cell is
            skipped.
        """
        lines = text.split("\n")
        first = next(i for i, line in enumerate(lines) if line.strip())
        head = lines[first].lstrip()
        if not head.startswith("%%"):
            return text
        name = re.match(r"%%\s*([\w.-]*)", head).group(1)
        if name in PYTHON_BODY_CELL_MAGICS and not head.rstrip().endswith("?"):
            self.skip(cell_index, first + 1, "IPython magic")
            lines[first] = ""
            return "\n".join(lines)
        self.skip(cell_index, first + 1, f"%%{name or '?'} cell", scope="cell")
        return None

    def _compile_cell(self, cell_index: int, text: str) -> tuple[ast.Module, str] | None:
        """Parse a cell (neutralising IPython syntax if needed) and check it compiles.

        Returns:
            The tree and the text its positions refer to (rewritten if IPython syntax
            was neutralised), or None when the cell was reported as a syntax error.
        """
        flags = _CELL_COMPILE_FLAGS | self.future_flags
        tree, error = _parse(text, flags)
        if tree is None:
            rewritten, escapes, tokenised = _neutralise_ipython(
                _dedent_if_indented(text), MAX_TOKENISED_CHARS - self.tokenised_chars)
            self.tokenised_chars += tokenised
            tree, second_error = _parse(rewritten, flags)
            if tree is None:
                error = second_error or error
                self.syntax_error(cell_index, *error)
                return None
            for line, label in escapes:
                self.skip(cell_index, line, label)
            text = rewritten
        try:
            compile(tree, f"<cell {cell_index + 1}>", "exec", flags=flags, dont_inherit=True)
        except SyntaxError as err:
            self.syntax_error(cell_index, err.lineno, err.offset, err.msg or "invalid syntax")
            return None
        except (ValueError, RecursionError, MemoryError, OverflowError, TypeError) as err:
            self.syntax_error(cell_index, 1, 0, _compile_failure(err))
            return None
        return tree, text

    # ---- one top-level statement

    def _visit(self, cell_index: int, node: ast.stmt, lines: list[str]) -> None:
        start_line = _start_line(node)
        if isinstance(node, ast.Pass) or (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        ):
            return  # a neutralised magic, a bare string or "...": nothing to run or report
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            self._visit_future(cell_index, node, start_line)
            return
        kind = _kept_kind(node, self.numpy_aliases, self.array_aliases)
        if kind is None:
            self.skip(cell_index, start_line, _skip_reason(node))
            return
        methods = _class_methods(node) if isinstance(node, ast.ClassDef) else None
        text = _segment(lines, node, start_line)
        self.statements.append(_Statement(cell_index, start_line, kind, _bound_names(node), text, methods))
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            self._track_numpy(node)

    def _visit_future(self, cell_index: int, node: ast.ImportFrom, start_line: int) -> None:
        if any(alias.name == "annotations" for alias in node.names):
            self.future_flags |= _FUTURE_ANNOTATIONS
            if self.future_origin is None:
                self.future_origin = (cell_index, start_line)
        if any(alias.name != "annotations" for alias in node.names):
            self.skip(cell_index, start_line, "__future__ import")

    def _track_numpy(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "numpy":
                    self.numpy_aliases.add(alias.asname or "numpy")
        elif node.module == "numpy" and not node.level:
            for alias in node.names:
                if alias.name == "array":
                    self.array_aliases.add(alias.asname or "array")

    # ---- result

    def finish(self, wanted: list[str]) -> Extraction:
        source, kept = self._assemble()
        bindings: dict[str, Definition] = {}
        class_methods: dict[str, frozenset[str]] = {}
        for statement in self.statements:  # replay in order: the last binding wins
            for name in statement.names:
                bindings[name] = Definition(name, statement.kind, statement.cell_index, statement.line)
                class_methods.pop(name, None)
            if statement.methods is not None:
                class_methods[statement.names[0]] = statement.methods
        return Extraction(
            source=source,
            found={name: bindings[name] for name in wanted if name in bindings},
            missing=[name for name in wanted if name not in bindings],
            near_misses=_near_misses([name for name in wanted if name not in bindings], wanted, bindings),
            skipped=self.skipped,
            syntax_errors=self.syntax_errors,
            kept=kept,
            code_cells=self.code_cells,
            class_methods=class_methods,
        )

    def _assemble(self) -> tuple[str, list[KeptStatement]]:
        """Join kept statements under ``# cell`` comments; guarantee the result compiles."""
        prefix = ""
        if self.future_origin is not None:
            cell_index, line = self.future_origin
            prefix = f"# cell {cell_index + 1}, line {line}\nfrom __future__ import annotations\n"
        source, kept = _join_statements(prefix, self.statements)
        if _compiles(source):
            return source, kept
        # Some statement compiled only in its own cell's context (e.g. under a
        # __future__ feature we do not hoist): drop what does not compile on its own.
        survivors = []
        for statement in self.statements:
            if _compiles(prefix + statement.text + "\n"):
                survivors.append(statement)
            else:
                self.skip(statement.cell_index, statement.line, "statement that does not compile alone")
        self.statements = survivors
        return _join_statements(prefix, survivors)


def _compiles(source: str) -> bool:
    try:
        compile(source, "submission.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError, TypeError):
        return False
    return True


def _join_statements(prefix: str, statements: list[_Statement]) -> tuple[str, list[KeptStatement]]:
    parts = [prefix] if prefix else []
    line = prefix.count("\n") + 1
    kept = []
    for statement in statements:
        block = f"# cell {statement.cell_index + 1}, line {statement.line}\n{statement.text}\n"
        kept.append(KeptStatement(statement.cell_index, statement.line, statement.kind, statement.names, line + 1))
        parts.append(block)
        line += block.count("\n")
    return "".join(parts), kept


# --------------------------------------------------------------------------- parsing


def _parse(text: str, flags: int) -> tuple[ast.Module | None, tuple[int | None, int | None, str] | None]:
    """``(tree, None)`` or ``(None, (line, column, message))``."""
    try:
        tree = compile(text, "<cell>", "exec", flags=flags | ast.PyCF_ONLY_AST, dont_inherit=True)
        return tree, None
    except SyntaxError as err:
        return None, (err.lineno, err.offset, err.msg or "invalid syntax")
    except (ValueError, RecursionError, MemoryError, OverflowError, TypeError) as err:
        return None, (1, 0, _compile_failure(err))


def _compile_failure(err: BaseException) -> str:
    if isinstance(err, (RecursionError, MemoryError)):
        return "the code is nested too deeply for Python to compile"
    if isinstance(err, UnicodeError):
        return "the cell contains characters that are not valid Unicode text"
    return f"Python cannot compile the cell ({type(err).__name__}: {err})"


def _dedent_if_indented(text: str) -> str:
    """IPython runs a cell whose first line is indented by dedenting it; so do we."""
    first = next((line for line in text.split("\n") if line.strip()), "")
    return textwrap.dedent(text) if first[:1] in (" ", "\t") else text


# --------------------------------------------------------------------------- IPython syntax


def _neutralise_ipython(text: str, budget: int = MAX_TOKENISED_CHARS) -> tuple[str, list[tuple[int, str]], int]:
    """Replace IPython-only lines by ``pass`` (continuations by blanks), keeping line numbers.

    Args:
        text: The cell.
        budget: Characters IPython's tokenizer may still be given; a pass that
            would exceed it uses the line-by-line filter instead.

    Returns:
        The rewritten text, ``(line, label)`` for each replaced command, and the
        characters given to the tokenizer.
    """
    lines = text.split("\n")
    found: list[tuple[int, str]] = []
    tokenised = 0
    try:
        finders = _ipython_finders()
    except Exception:  # noqa: BLE001 - IPython missing or changed: use the plain filter
        finders = None
    for _ in range(_MAX_NEUTRALISE_PASSES):
        size = sum(len(line) + 1 for line in lines)
        use_tokenizer = finders is not None and tokenised + size <= budget
        try:
            if use_tokenizer:
                tokenised += size
                matches = _find_escapes(lines, finders)
            else:
                matches = _find_escapes_plainly(lines)
        except Exception:  # noqa: BLE001 - tokenizer trouble: fall back to the plain filter
            matches = _find_escapes_plainly(lines)
        if not matches:
            break
        for first, last, label in matches:
            line = lines[first]
            lines[first] = line[: len(line) - len(line.lstrip())] + "pass"
            for index in range(first + 1, last + 1):
                lines[index] = ""
            found.append((first + 1, label))
        if not use_tokenizer:
            break  # the line filter finds every escape in one pass
    return "\n".join(lines), found, tokenised


def _ipython_finders() -> tuple[Any, ...]:
    from IPython.core import inputtransformer2 as it2  # noqa: PLC0415 - heavy, import on demand

    return (it2.HelpEnd, it2.MagicAssign, it2.SystemAssign, it2.EscapedCommand)


def _find_escapes(lines: list[str], finders: tuple[Any, ...]) -> list[tuple[int, int, str]]:
    """IPython-syntax lines found by IPython's own token-based finders, in one pass.

    Every logical line is checked; after a command whose line contains a quote (which
    may have confused the tokenizer about where strings start), the pass stops so the
    caller re-tokenises, as IPython does after every transformation.
    """
    from IPython.core.inputtransformer2 import (  # noqa: PLC0415
        HelpEnd,
        find_end_of_continued_line,
        make_tokens_by_line,
    )

    with_ends = [line + "\n" for line in lines]
    matches: list[tuple[int, int, str]] = []
    for logical_line in make_tokens_by_line(with_ends):
        for finder in finders:
            match = finder.find([logical_line])
            if match is None:
                continue
            if not 0 <= match.start_line < len(lines):
                break
            first = min(match.start_line, logical_line[0].start[0] - 1)
            last = find_end_of_continued_line(with_ends, match.start_line)
            if isinstance(match, HelpEnd):
                last = max(last, match.q_line)
            first, last = max(first, 0), min(last, len(lines) - 1)
            escape = lines[match.start_line][match.start_col : match.start_col + 1]
            matches.append((first, last, _escape_label(escape, isinstance(match, HelpEnd))))
            if any(quote in "".join(lines[first : last + 1]) for quote in "'\""):
                return matches
            break
    return matches


def _escape_label(escape: str, is_help: bool) -> str:
    if is_help or escape == "?":
        return "help request"
    if escape == "!":
        return "shell command"
    if escape == "%":
        return "IPython magic"
    return "IPython autocall"


_PLAIN_ESCAPE = re.compile(
    r"""^\s*(?:
        [%!?]                                   # %magic, !shell, ?help
      | [/,;]\w                                 # IPython autocall escapes
      | [\w.\[\]\s,*()]+=\s*[%!]                # x = %magic, files = !ls
      | [\w.]+\?{1,2}\s*$                       # obj? / obj??
    )""",
    re.VERBOSE,
)


def _find_escapes_plainly(lines: list[str]) -> list[tuple[int, int, str]]:
    """Line-regex fallback when IPython's tokenizer helpers are unusable (not string-aware)."""
    matches = []
    for index, line in enumerate(lines):
        if line.strip() == "pass" or not _PLAIN_ESCAPE.match(line):
            continue
        last = index
        while lines[last].endswith("\\") and last + 1 < len(lines):
            last += 1
        matches.append((index, last, _plain_label(line)))
    return matches


def _plain_label(line: str) -> str:
    stripped = line.strip()
    if stripped.endswith("?") and stripped[:1] not in ("%", "!"):
        return "help request"
    escape = next((char for char in stripped if char in "%!?"), "")
    return _escape_label(escape, False)


# --------------------------------------------------------------------------- statement rules


def _start_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None)
    if decorators:
        return min(node.lineno, *(decorator.lineno for decorator in decorators))
    return node.lineno


def _kept_kind(node: ast.stmt, numpy_aliases: set[str], array_aliases: set[str]) -> str | None:
    """``"import"``, ``"class"``, ``"function"``, ``"assignment"`` or None (skip)."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return "import"
    if isinstance(node, ast.ClassDef):
        return "class"
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return "function"
    if isinstance(node, ast.Assign):
        if all(_is_plain_target(target) for target in node.targets) and _runs_nothing(
            node.value, numpy_aliases, array_aliases
        ):
            return "assignment"
        return None
    if isinstance(node, ast.AnnAssign):
        if (
            node.value is not None
            and isinstance(node.target, ast.Name)
            and _runs_nothing(node.value, numpy_aliases, array_aliases)
            and _runs_nothing(node.annotation, numpy_aliases, array_aliases)
        ):
            return "assignment"
        return None
    return None


def _is_plain_target(target: ast.expr) -> bool:
    """Names, possibly unpacked (``a, (b, *c) = ...``); never attributes or items."""
    stack = [target]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Name):
            continue
        if isinstance(item, (ast.Tuple, ast.List)):
            stack.extend(item.elts)
        elif isinstance(item, ast.Starred):
            stack.append(item.value)
        else:
            return False
    return True


def _runs_nothing(expr: ast.expr, numpy_aliases: set[str], array_aliases: set[str]) -> bool:
    """True when evaluating ``expr`` calls no function except ``np.array(<literal>)``.

    Lambda bodies are not evaluated at assignment, so calls there are fine (their
    default values are evaluated, so those are checked).
    """
    stack: list[ast.AST] = [expr]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Call):
            if _is_literal_array(item, numpy_aliases, array_aliases):
                continue
            return False
        if isinstance(item, (ast.Await, ast.Yield, ast.YieldFrom)):
            return False
        if isinstance(item, ast.Lambda):
            stack.extend(item.args.defaults)
            stack.extend(default for default in item.args.kw_defaults if default is not None)
            continue
        stack.extend(ast.iter_child_nodes(item))
    return True


def _is_literal_array(call: ast.Call, numpy_aliases: set[str], array_aliases: set[str]) -> bool:
    """``np.array([[0.1, -0.2], [0.3, 0.4]])``, optionally with a dtype."""
    func = call.func
    is_array = (
        isinstance(func, ast.Attribute)
        and func.attr == "array"
        and isinstance(func.value, ast.Name)
        and func.value.id in numpy_aliases
    ) or (isinstance(func, ast.Name) and func.id in array_aliases)
    if not is_array or not 1 <= len(call.args) <= 2:
        return False
    if not _is_literal(call.args[0], numpy_aliases):
        return False
    dtypes = list(call.args[1:])
    for keyword in call.keywords:
        if keyword.arg != "dtype":
            return False
        dtypes.append(keyword.value)
    return all(_is_dtype(dtype, numpy_aliases) for dtype in dtypes)


def _is_literal(node: ast.expr, numpy_aliases: set[str]) -> bool:
    """Nested lists/tuples of constants (signs allowed) and ``np.nan``-like constants."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Constant):
            continue
        if isinstance(item, (ast.List, ast.Tuple)):
            stack.extend(item.elts)
        elif isinstance(item, ast.UnaryOp) and isinstance(item.op, (ast.USub, ast.UAdd)):
            stack.append(item.operand)
        elif _is_numpy_constant(item, numpy_aliases):
            continue
        else:
            return False
    return True


def _is_numpy_constant(node: ast.expr, numpy_aliases: set[str]) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr in _NUMPY_CONSTANTS
        and isinstance(node.value, ast.Name)
        and node.value.id in numpy_aliases
    )


def _is_dtype(node: ast.expr, numpy_aliases: set[str]) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.Name):
        return node.id in _DTYPE_NAMES
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in numpy_aliases


def _bound_names(node: ast.stmt) -> tuple[str, ...]:
    """Names a kept statement binds at top level, in order."""
    if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return (node.name,)
    if isinstance(node, ast.Import):
        return tuple(alias.asname or alias.name.split(".")[0] for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        return tuple(alias.asname or alias.name for alias in node.names if alias.name != "*")
    targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
    names: list[str] = []
    stack = [target for target in reversed(targets) if target is not None]
    while stack:  # depth-first, left to right: the order the names appear in
        item = stack.pop()
        if isinstance(item, ast.Name):
            names.append(item.id)
        elif isinstance(item, (ast.Tuple, ast.List)):
            stack.extend(reversed(item.elts))
        elif isinstance(item, ast.Starred):
            stack.append(item.value)
    return tuple(dict.fromkeys(names))


def _class_methods(node: ast.ClassDef) -> frozenset[str]:
    """Functions defined directly in a class body, plus aliases like ``__call__ = fprop``."""
    methods = set()
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            methods.add(item.name)
        elif isinstance(item, ast.Assign) and isinstance(item.value, (ast.Lambda, ast.Name, ast.Attribute)):
            methods.update(target.id for target in item.targets if isinstance(target, ast.Name))
    return frozenset(methods)


def _segment(lines: list[str], node: ast.stmt, start_line: int) -> str:
    """The statement's exact text (from its first decorator), using byte offsets as ast does."""
    end_line = node.end_lineno or node.lineno
    end_col = node.end_col_offset
    start_col = 0 if start_line != node.lineno else node.col_offset
    first = lines[start_line - 1]
    if start_line == end_line:
        return _byte_slice(first, start_col, end_col)
    head = _byte_slice(first, start_col, None)
    tail = _byte_slice(lines[end_line - 1], 0, end_col)
    return "\n".join([head, *lines[start_line : end_line - 1], tail])


def _byte_slice(line: str, start: int, end: int | None) -> str:
    """Slice by UTF-8 byte offsets (ast's column unit)."""
    if line.isascii():
        return line[start:end]
    return line.encode("utf-8", "surrogatepass")[start:end].decode("utf-8", "surrogatepass")


# --------------------------------------------------------------------------- skip reasons

_TEST_WORDS = frozenset(
    {"allclose", "assert_allclose", "array_equal", "assert_array_equal", "assert_almost_equal", "isclose", "all_correct"}
)
_LOADER_WORDS = frozenset(
    {"open", "load", "loadtxt", "genfromtxt", "read_csv", "urlopen", "urlretrieve", "fetch_openml", "load_data", "download"}
)
_TRAINING_WORDS = frozenset(
    {"fit", "optimiser", "optimizer", "optimisers", "learning_rule", "sgd", "update_params", "backward", "n_epochs"}
)
_PLOT_WORDS = frozenset(
    {
        "plt", "pyplot", "matplotlib", "sns", "seaborn", "plot", "imshow", "matshow", "subplots",
        "subplot", "add_subplot", "figure", "savefig", "show", "hist", "scatter", "legend", "xlabel",
        "ylabel", "set_xlabel", "set_ylabel", "set_title", "colorbar", "errorbar", "tight_layout", "fig", "ax", "axes",
    }
)


def _skip_reason(node: ast.stmt) -> str:
    """A short, human label for a skipped statement (a heuristic, for the summary only)."""
    if isinstance(node, ast.If) and _is_main_guard(node.test):
        return "__main__ block"
    names, called = _mentioned_names(node)
    if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
        return "training loop" if _is_training(names) else "loop"
    if any("dataprovider" in name or "data_provider" in name or name in _LOADER_WORDS for name in called):
        return "data loading"
    if isinstance(node, ast.Assert) or names & _TEST_WORDS or any(name.startswith("test") for name in names):
        return "test"
    if _is_training(names):
        return "training run"
    if names & _PLOT_WORDS:
        return "plot"
    if isinstance(node, ast.Expr) and called == {"print"}:
        return "print"
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        if called:
            return "assignment that runs code"
        return "assignment to an attribute or item"
    if isinstance(node, ast.Expr):
        return "expression"
    labels = {ast.If: "if block", ast.With: "with block", ast.AsyncWith: "with block", ast.Try: "try block"}
    return labels.get(type(node), "other statement")


def _is_main_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    has_name = any(isinstance(side, ast.Name) and side.id == "__name__" for side in sides)
    has_main = any(isinstance(side, ast.Constant) and side.value == "__main__" for side in sides)
    return has_name and has_main


def _mentioned_names(node: ast.stmt) -> tuple[set[str], set[str]]:
    """Lower-cased identifiers/attributes mentioned, and those that are called."""
    names: set[str] = set()
    called: set[str] = set()
    for item in ast.walk(node):
        if isinstance(item, ast.Name):
            names.add(item.id.lower())
        elif isinstance(item, ast.Attribute):
            names.add(item.attr.lower())
        elif isinstance(item, ast.Call):
            func = item.func
            if isinstance(func, ast.Name):
                called.add(func.id.lower())
            elif isinstance(func, ast.Attribute):
                called.add(func.attr.lower())
    return names, called


def _is_training(names: set[str]) -> bool:
    return bool(names & _TRAINING_WORDS) or any("train" in name or "epoch" in name for name in names)


# --------------------------------------------------------------------------- near misses


def _near_misses(missing: list[str], wanted: list[str], bindings: dict[str, Definition]) -> dict[str, list[str]]:
    """Similar class/function names for each missing name.

    Similarity is difflib's ratio on lower-cased names (so ``tanhlayer`` and
    ``TanhLyer`` both match ``TanhLayer``); a defined name that contains the wanted
    one (``MyTanhLayer``, ``TanhLayer2``) also counts. Other wanted names are never
    suggested. At most three suggestions, best first.
    """
    wanted_set = set(wanted)
    candidates = [
        name
        for name, definition in bindings.items()
        if definition.kind in ("class", "function") and name not in wanted_set
    ]
    suggestions: dict[str, list[str]] = {}
    for name in missing:
        target = name.lower()
        matcher = difflib.SequenceMatcher(b=target, autojunk=False)
        scored = []
        for candidate in candidates:
            lower = candidate.lower()
            matcher.set_seq1(lower)
            score = 0.9 if target in lower else 0.0
            if matcher.real_quick_ratio() >= _NEAR_MISS_CUTOFF and matcher.quick_ratio() >= _NEAR_MISS_CUTOFF:
                score = max(score, matcher.ratio())
            if score >= _NEAR_MISS_CUTOFF:
                scored.append((-score, candidate))
        if scored:
            suggestions[name] = [candidate for _, candidate in sorted(scored)[:3]]
    return suggestions
