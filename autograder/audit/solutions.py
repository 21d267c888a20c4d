"""Where an assignment's solution code is, and how a changed solution becomes a submission.

TRUSTED. Reads the instructor's files only (the source notebook, the
reference `mlp` package) as text; nothing here executes them. Two origins:

* the source notebook's solution cells: code cells with nbgrader
  `### BEGIN SOLUTION` / `### END SOLUTION` regions; mutants change lines
  inside those regions only;
* the reference package's exercise regions: classes between
  `# BEGIN EXERCISE <assignment>` and `# END EXERCISE <assignment>`; mutants
  change the bodies of graded methods only.

A variant (a mutant or a fairness probe) becomes a notebook the way a
student's does: the released notebook with its solution cells filled in
(the same cells, found by nbgrader grade id), plus, for a reference-region
variant, one later cell that redefines the changed class, as students do.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

_SOLUTION_MARKER = re.compile(r'^\s*### (BEGIN|END) SOLUTION\s*$')
_EXERCISE_MARKER = re.compile(r'^[ \t]*# (BEGIN|END) EXERCISE (\S+)[ \t]*$')


class SolutionError(Exception):
    """The assignment's solution cannot be found or read (an instructor's file to fix)."""


@dataclass(frozen=True)
class SolutionCell:
    """One solution cell of the source notebook.

    Attributes:
        key: The cell's nbgrader grade id (or 'cell-<index>' without one),
            also found in the released notebook.
        index: The cell's index in the source notebook.
        source: The cell's code with the solution markers removed (what a
            student who solved it would have).
        region_lines: 1-based lines of `source` inside solution regions.
    """

    key: str
    index: int
    source: str
    region_lines: frozenset


@dataclass(frozen=True)
class ReferenceRegion:
    """One exercise region of the reference package.

    Attributes:
        module: The module's dotted name, e.g. 'mlp.layers'.
        source: A cell's worth of code: the module's imports, an import of
            the module-level names the region uses, then the region's text.
        region_lines: 1-based lines of `source` that belong to the region.
    """

    module: str
    source: str
    region_lines: frozenset


def _cell_key(cell, index: int) -> str:
    grade_id = cell.get('metadata', {}).get('nbgrader', {}).get('grade_id')
    return str(grade_id) if grade_id else 'cell-{0}'.format(index)


def strip_solution_markers(text: str) -> tuple[str, frozenset]:
    """Removes nbgrader solution markers; returns (code, lines inside regions).

    Args:
        text: A code cell's source with `### BEGIN SOLUTION` / `### END SOLUTION` lines.

    Returns:
        The code without marker lines, and the 1-based numbers of its lines
        that were between a BEGIN and its END.
    """
    kept, inside, region = [], False, set()
    for line in text.split('\n'):
        match = _SOLUTION_MARKER.match(line)
        if match:
            inside = match.group(1) == 'BEGIN'
            continue
        kept.append(line)
        if inside:
            region.add(len(kept))
    return '\n'.join(kept), frozenset(region)


def notebook_solution_cells(notebook_path: Path) -> list[SolutionCell]:
    """The solution cells of a source notebook (code cells with solution regions).

    Raises:
        SolutionError: The notebook cannot be read, or has no solution region in code.
    """
    try:
        notebook = nbformat.read(str(notebook_path), as_version=4)
    except (OSError, ValueError) as error:
        raise SolutionError('cannot read the source notebook {0}: {1}'.format(notebook_path, error)) from error
    cells = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != 'code' or '### BEGIN SOLUTION' not in cell.source:
            continue
        source, region = strip_solution_markers(cell.source)
        cells.append(SolutionCell(_cell_key(cell, index), index, source, region))
    if not cells:
        raise SolutionError('the source notebook {0} has no code cell with a ### BEGIN SOLUTION '
                            'region'.format(notebook_path))
    return cells


def reference_package_dir(course_root: Path) -> Path:
    """The reference `mlp` package: the course's reference/mlp, else the importable one."""
    candidate = Path(course_root) / 'reference' / 'mlp'
    if candidate.is_dir():
        return candidate
    import mlp
    return Path(mlp.__file__).resolve().parent


def reference_regions(assignment: str, course_root: Path) -> list[ReferenceRegion]:
    """The exercise regions of `assignment` in the reference package, as cells.

    Each region becomes self-contained code: the module's own import lines,
    `from mlp.<module> import <names>` for the module-level names (defined
    outside the region) that the region uses, then the region.
    """
    regions = []
    package = reference_package_dir(course_root)
    for path in sorted(package.glob('*.py')):
        text = path.read_text(encoding='utf-8')
        if 'BEGIN EXERCISE {0}'.format(assignment) not in text:
            continue
        lines = text.split('\n')
        inside, body = False, []
        for line in lines:
            match = _EXERCISE_MARKER.match(line)
            if match and match.group(2) == assignment:
                inside = match.group(1) == 'BEGIN'
                continue
            if inside and not (match and match.group(2) != assignment):
                body.append(line)
        module = 'mlp.' + path.stem if path.stem != '__init__' else 'mlp'
        regions.append(_self_contained(module, text, '\n'.join(body)))
    return regions


def _self_contained(module: str, module_text: str, region: str) -> ReferenceRegion:
    tree = ast.parse(module_text)
    imports = [ast.get_source_segment(module_text, node) for node in tree.body
               if isinstance(node, (ast.Import, ast.ImportFrom))]
    region_tree = ast.parse(region)
    defined_in_region = {node.name for node in region_tree.body
                         if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
    module_level = {node.name for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
    used = {node.id for node in ast.walk(region_tree) if isinstance(node, ast.Name)}
    needed = sorted((used & module_level) - defined_in_region)
    header = list(imports)
    if needed:
        header.append('from {0} import {1}'.format(module, ', '.join(needed)))
    header_text = '\n'.join(header) + '\n\n'
    offset = header_text.count('\n')
    source = header_text + region.strip('\n') + '\n'
    region_lines = frozenset(range(offset + 1, source.count('\n') + 1))
    return ReferenceRegion(module, source, region_lines)


def class_source(source: str, class_name: str) -> str | None:
    """The text of the top-level class `class_name` in `source` (None if absent)."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            lines = source.split('\n')
            return '\n'.join(lines[start - 1:node.end_lineno]) + '\n'
    return None


def imports_of(source: str) -> str:
    """The top-level import statements of `source`, one per line."""
    tree = ast.parse(source)
    return '\n'.join(ast.get_source_segment(source, node) for node in tree.body
                     if isinstance(node, (ast.Import, ast.ImportFrom)))


def submission_notebook(released, replacements: dict[str, str], extra_cells: tuple[str, ...] = ()):
    """A submission made from the released notebook.

    Args:
        released: The released student notebook (an nbformat notebook).
        replacements: Solution cell key (nbgrader grade id) -> the code that
            goes into that cell.
        extra_cells: Code cells appended at the end (later redefinitions).

    Returns:
        A new nbformat notebook.

    Raises:
        SolutionError: A cell of `replacements` is not in the released notebook.
    """
    notebook = nbformat.from_dict(released)
    missing = set(replacements)
    for index, cell in enumerate(notebook.cells):
        key = _cell_key(cell, index)
        if cell.cell_type == 'code' and key in replacements:
            cell.source = replacements[key]
            missing.discard(key)
    if missing:
        raise SolutionError('the released notebook has no solution cell {0}; run `mlp-autograde '
                            'release` again'.format(', '.join(sorted(missing))))
    for source in extra_cells:
        notebook.cells.append(nbformat.v4.new_code_cell(source))
    return notebook
