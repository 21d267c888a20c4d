"""Build small notebooks for tests with nbformat's v4 helpers.

``make_notebook(["import numpy as np", ("markdown", "# Title"), "x = 1"])`` gives a
format-4 ``NotebookNode`` whose cells are code cells unless a ``(kind, source)`` tuple
says otherwise; ``write_notebook(nb, path)`` saves it as UTF-8 JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import nbformat
from nbformat import v4

CellSpec = Union[str, tuple[str, str]]

_CELL_MAKERS = {
    "code": v4.new_code_cell,
    "markdown": v4.new_markdown_cell,
    "raw": v4.new_raw_cell,
}


def make_notebook(cells: list[CellSpec], **metadata: object) -> nbformat.NotebookNode:
    """A format-4 notebook with the given cells.

    Args:
        cells: Each item is either the source of a code cell, or a ``(kind, source)``
            pair with ``kind`` one of ``"code"``, ``"markdown"``, ``"raw"``.
        **metadata: Notebook-level metadata (e.g. ``kernelspec={...}``).

    Returns:
        The notebook; it passes ``nbformat.validate``.

    Raises:
        ValueError: An unknown cell kind.
    """
    built = []
    for spec in cells:
        kind, source = ("code", spec) if isinstance(spec, str) else spec
        try:
            maker = _CELL_MAKERS[kind]
        except KeyError:
            raise ValueError(f"unknown cell kind {kind!r}; use one of {sorted(_CELL_MAKERS)}") from None
        built.append(maker(source))
    return v4.new_notebook(cells=built, metadata=dict(metadata))


def write_notebook(nb: nbformat.NotebookNode, path: Path | str) -> Path:
    """Save ``nb`` as a ``.ipynb`` file (UTF-8 JSON, as Jupyter writes it).

    Args:
        nb: The notebook (any format-4 node, even an invalid one: it is not validated).
        path: Where to write; parent folders must exist.

    Returns:
        The path written, as a ``Path``.
    """
    path = Path(path)
    # nbformat's v4 writer does not validate, so deliberately broken notebooks can be written.
    path.write_text(v4.nbjson.writes(nb) + "\n", encoding="utf-8")
    return path
