"""Tests for autograder.submission.load: every way a submission file can be unreadable."""

from __future__ import annotations

import base64
import codecs
import hashlib
import json
import os
import random
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from autograder.submission.load import (
    MAX_JSON_DEPTH,
    LoadedNotebook,
    Rejection,
    load_submission,
)
from notebook_factory import make_notebook, write_notebook

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"


def _json(nb: nbformat.NotebookNode) -> str:
    return v4.nbjson.writes(nb) + "\n"


def _rejected(path: Path, *keywords: str, **kwargs) -> Rejection:
    """Load ``path``, require a rejection, and check the sentence mentions every keyword."""
    result = load_submission(path, **kwargs)
    assert isinstance(result, Rejection), f"expected a rejection, got {result!r}"
    assert result.path == Path(path)
    reason = result.reason
    assert "\n" not in reason and reason.endswith("."), reason
    assert len(reason) < 300, reason
    for keyword in keywords:
        assert keyword.lower() in reason.lower(), f"{keyword!r} not in {reason!r}"
    return result


def _loaded(path: Path, **kwargs) -> LoadedNotebook:
    result = load_submission(path, **kwargs)
    assert isinstance(result, LoadedNotebook), getattr(result, "reason", result)
    return result


@pytest.fixture()
def good_notebook() -> nbformat.NotebookNode:
    return make_notebook(
        [("markdown", "# Lab"), "import numpy as np", "class TanhLayer:\n    def fprop(self, x):\n        return np.tanh(x)\n"]
    )


# --------------------------------------------------------------------------- accepted


def test_valid_notebook_loads_with_hash_of_raw_bytes(tmp_path, good_notebook):
    path = write_notebook(good_notebook, tmp_path / "alice.ipynb")
    result = _loaded(path)
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.warnings == []
    assert [cell.cell_type for cell in result.notebook.cells] == ["markdown", "code", "code"]
    assert result.notebook.cells[2].source.startswith("class TanhLayer")


def test_accepts_a_string_path(tmp_path, good_notebook):
    path = write_notebook(good_notebook, tmp_path / "alice.ipynb")
    assert isinstance(load_submission(str(path)), LoadedNotebook)


def test_source_lines_are_joined_into_one_string(tmp_path, good_notebook):
    path = write_notebook(good_notebook, tmp_path / "split.ipynb")
    assert isinstance(json.loads(path.read_text())["cells"][2]["source"], list)  # as Jupyter writes it
    source = _loaded(path).notebook.cells[2].source
    assert source == "class TanhLayer:\n    def fprop(self, x):\n        return np.tanh(x)\n"


def test_duplicate_cell_ids_are_repaired_with_a_warning(tmp_path, good_notebook):
    good_notebook.cells[2].id = good_notebook.cells[1].id
    result = _loaded(write_notebook(good_notebook, tmp_path / "copied.ipynb"))
    assert any("duplicate" in warning for warning in result.warnings)
    ids = [cell.id for cell in result.notebook.cells]
    assert len(set(ids)) == len(ids)
    nbformat.validate(result.notebook)


def test_missing_cell_ids_are_added_with_a_warning(tmp_path, good_notebook):
    data = json.loads(_json(good_notebook))
    for cell in data["cells"]:
        del cell["id"]
    path = tmp_path / "no_ids.ipynb"
    path.write_text(json.dumps(data))
    result = _loaded(path)
    assert any("3 cells had no cell id" in warning for warning in result.warnings)
    assert all(cell.id for cell in result.notebook.cells)


def test_extra_metadata_and_odd_outputs_are_warnings_not_rejections(tmp_path, good_notebook):
    data = json.loads(_json(good_notebook))
    data["metadata"]["course"] = {"term": "autumn", "nested": [1, 2, {"x": None}]}
    data["cells"][1]["metadata"]["nbgrader"] = {"anything": True}
    data["cells"][1]["unexpected_key"] = 1
    data["cells"][2]["outputs"] = [{"output_type": "stream"}]  # no "name" nor "text"
    path = tmp_path / "odd.ipynb"
    path.write_text(json.dumps(data))
    result = _loaded(path)
    text = " ".join(result.warnings)
    assert "unexpected_key" in text and "cells[1]" in text
    assert "outputs" not in text  # grading never reads outputs: they are dropped before validation
    assert result.notebook.cells[2].outputs == []
    assert len(result.warnings) <= 6


def test_many_schema_problems_are_summarised(tmp_path):
    nb = make_notebook(["x = 1"] * 40)
    data = json.loads(_json(nb))
    for cell in data["cells"]:
        cell["bogus"] = True
    path = tmp_path / "bogus.ipynb"
    path.write_text(json.dumps(data))
    warnings = _loaded(path).warnings
    assert len(warnings) == 6
    assert warnings[-1] == "Ignored more problems with the nbformat schema."


def test_utf8_byte_order_mark_is_accepted_with_a_warning(tmp_path, good_notebook):
    path = tmp_path / "bom.ipynb"
    path.write_bytes(codecs.BOM_UTF8 + _json(good_notebook).encode("utf-8"))
    result = _loaded(path)
    assert any("byte-order mark" in warning for warning in result.warnings)


def test_non_ascii_content_is_fine(tmp_path):
    nb = make_notebook(["ä = 'π ≈ 3.14159 🎉'\nclass Ünïcode: pass", ("markdown", "Größe")])
    result = _loaded(write_notebook(nb, tmp_path / "unicode.ipynb"))
    assert "🎉" in result.notebook.cells[0].source


def test_metadata_nested_moderately_deep_is_accepted(tmp_path, good_notebook):
    value: object = 1
    for _ in range(40):
        value = {"level": [value]}
    good_notebook.metadata["deep"] = value  # 81 levels of nesting in all
    _loaded(write_notebook(good_notebook, tmp_path / "deep_ok.ipynb"))


def test_notebook_with_50_mb_of_images_loads(tmp_path):
    rng = random.Random(3)
    image = base64.b64encode(rng.randbytes(700_000)).decode("ascii")  # ~0.9 MB of base64
    cells = []
    for index in range(60):
        cell = v4.new_code_cell(f"plt.imshow(images[{index}])")
        cell.outputs = [v4.new_output("display_data", data={"image/png": image, "text/plain": "<Figure>"})]
        cells.append(cell)
    path = write_notebook(v4.new_notebook(cells=cells), tmp_path / "images.ipynb")
    assert path.stat().st_size > 50 * 2**20
    result = _loaded(path)
    assert len(result.notebook.cells) == 60
    assert result.warnings == []


def test_notebook_with_10000_cells_loads(tmp_path):
    cells = [
        f"class Layer{i}:\n    def fprop(self, x):\n        return x * {i}\n" if i % 2 else ("markdown", f"Step {i}")
        for i in range(10_000)
    ]
    result = _loaded(write_notebook(make_notebook(cells), tmp_path / "many.ipynb"))
    assert len(result.notebook.cells) == 10_000
    assert result.warnings == []


# --------------------------------------------------------------------------- rejected: the file


def test_missing_file_is_rejected(tmp_path):
    result = _rejected(tmp_path / "nobody.ipynb", "nobody.ipynb", "does not exist")
    assert result.sha256 is None


def test_directory_is_rejected(tmp_path):
    folder = tmp_path / "alice.ipynb"
    folder.mkdir()
    _rejected(folder, "folder")


def test_device_and_pipe_are_rejected_without_blocking(tmp_path):
    _rejected(Path("/dev/zero"), "not a regular file")
    fifo = tmp_path / "pipe.ipynb"
    os.mkfifo(fifo)
    _rejected(fifo, "not a regular file")


def test_symlink_loop_is_rejected(tmp_path):
    loop = tmp_path / "loop.ipynb"
    loop.symlink_to(loop)
    _rejected(loop, "symbolic link")


# --------------------------------------------------------------------------- links (issue 10, class 1)


def _secret_notebook(tmp_path: Path, good_notebook) -> Path:
    """A readable notebook outside the submissions folder (the course's source, say)."""
    secret = tmp_path / "course" / "source.ipynb"
    secret.parent.mkdir()
    secret.write_text(_json(good_notebook), encoding="utf-8")
    return secret


@pytest.mark.parametrize("target_kind", ["absolute", "relative", "chain", "dangling", "dev_zero", "fifo"])
def test_a_submission_that_is_a_link_is_rejected_whatever_it_points_to(tmp_path, good_notebook, target_kind):
    secret = _secret_notebook(tmp_path, good_notebook)
    folder = tmp_path / "submissions"
    folder.mkdir()
    link = folder / "mallory.ipynb"
    if target_kind == "absolute":
        link.symlink_to(secret)
    elif target_kind == "relative":
        link.symlink_to(os.path.join("..", "course", "source.ipynb"))
    elif target_kind == "chain":
        (folder / "hop.ipynb").symlink_to(secret)
        link.symlink_to("hop.ipynb")
    elif target_kind == "dangling":
        link.symlink_to(tmp_path / "nowhere.ipynb")
    elif target_kind == "dev_zero":
        link.symlink_to("/dev/zero")
    else:
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        link.symlink_to(fifo)
    result = _rejected(link, "symbolic link", root=folder)
    assert result.sha256 is None  # nothing behind the link was read


@pytest.mark.parametrize("depth", [1, 2])
def test_a_notebook_below_a_linked_folder_is_rejected(tmp_path, good_notebook, depth):
    secret = _secret_notebook(tmp_path, good_notebook)
    root = tmp_path / "submitted"
    root.mkdir()
    if depth == 1:  # submitted/mallory -> the course folder
        (root / "mallory").symlink_to(secret.parent)
        path = root / "mallory" / "source.ipynb"
    else:  # submitted/mallory/lab -> the course folder
        (root / "mallory").mkdir()
        (root / "mallory" / "lab").symlink_to(secret.parent)
        path = root / "mallory" / "lab" / "source.ipynb"
    _rejected(path, "symbolic link to a folder", root=root)


def test_a_link_to_a_folder_never_shows_its_listing(tmp_path):
    private = tmp_path / "private"
    private.mkdir()
    (private / "other_student_answers.ipynb").write_text("{}", encoding="utf-8")
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "mallory.ipynb").symlink_to(private)
    result = _rejected(folder / "mallory.ipynb", "symbolic link", root=folder)
    assert "other_student_answers" not in result.reason


def test_a_path_outside_the_folder_given_is_rejected(tmp_path, good_notebook):
    secret = _secret_notebook(tmp_path, good_notebook)
    folder = tmp_path / "submissions"
    folder.mkdir()
    _rejected(folder / ".." / "course" / "source.ipynb", "not inside", root=folder)
    _rejected(secret, "not inside", root=folder)


def test_a_real_file_in_real_folders_is_still_loaded(tmp_path, good_notebook):
    """Fair before strict: nested real folders, odd but legal names, a linked ROOT (the grader's choice)."""
    root = tmp_path / "submitted"
    path = root / "alice smith" / "lab 3" / "Lab 3 (final) é.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(_json(good_notebook), encoding="utf-8")
    _loaded(path, root=root)
    linked_root = tmp_path / "linked"
    linked_root.symlink_to(root)
    _loaded(linked_root / "alice smith" / "lab 3" / "Lab 3 (final) é.ipynb", root=linked_root)


def test_empty_file_is_rejected(tmp_path):
    path = tmp_path / "empty.ipynb"
    path.write_bytes(b"")
    result = _rejected(path, "empty")
    assert result.sha256 == hashlib.sha256(b"").hexdigest()


def test_blank_file_is_rejected(tmp_path):
    path = tmp_path / "blank.ipynb"
    path.write_text("  \n\t\n")
    _rejected(path, "blank")


def test_too_large_file_is_rejected_with_size_and_limit(tmp_path, good_notebook):
    path = write_notebook(good_notebook, tmp_path / "big.ipynb")
    result = _rejected(path, "larger than", "limit", "clear", max_bytes=100)
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_too_large_at_default_limit_states_sizes(tmp_path):
    path = tmp_path / "huge.ipynb"
    with path.open("wb") as handle:  # sparse: no disk space used
        handle.truncate(101 * 2**20)
    result = _rejected(path, "101 MB", "100 MB limit")
    assert result.sha256 is not None


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_is_rejected_and_named(tmp_path, good_notebook, encoding):
    text = _json(good_notebook)
    raw = text.encode(encoding)
    if encoding != "utf-16":  # utf-16-le/-be codecs write no BOM; add it for one of them
        raw = (codecs.BOM_UTF16_BE + raw) if encoding.endswith("be") else raw
    path = tmp_path / "wide.ipynb"
    path.write_bytes(raw)
    _rejected(path, "UTF-16", "not UTF-8")


def test_utf32_is_rejected_and_named(tmp_path, good_notebook):
    path = tmp_path / "wider.ipynb"
    path.write_bytes(_json(good_notebook).encode("utf-32"))
    _rejected(path, "UTF-32")


def test_latin1_is_rejected_with_offset(tmp_path):
    nb = make_notebook(["café = 1"])
    raw = _json(nb).encode("latin-1")
    path = tmp_path / "latin.ipynb"
    path.write_bytes(raw)
    offset = raw.index(b"\xe9")
    _rejected(path, "not UTF-8", "0xE9", f"offset {offset}")


def test_binary_garbage_is_rejected(tmp_path):
    path = tmp_path / "garbage.ipynb"
    path.write_bytes(random.Random(7).randbytes(4096))
    _rejected(path, "binary file", "not a Jupyter notebook")


def test_invalid_utf8_without_nul_bytes_is_rejected(tmp_path):
    path = tmp_path / "noise.ipynb"
    path.write_bytes(bytes(range(0x80, 0x100)) * 8)
    _rejected(path, "not UTF-8", "0x80", "offset 0")


def test_zip_archive_is_named(tmp_path):
    path = tmp_path / "submission.ipynb"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    _rejected(path, "zip archive", "unzip")


def test_html_export_is_named(tmp_path):
    path = tmp_path / "lab.ipynb"
    path.write_text("<!DOCTYPE html>\n<html><body>notebook</body></html>\n")
    _rejected(path, "HTML")


# --------------------------------------------------------------------------- rejected: the JSON


def test_truncated_json_reports_line_and_column(tmp_path, good_notebook):
    text = _json(good_notebook)
    cut = text[: len(text) // 2]
    path = tmp_path / "cut.ipynb"
    path.write_text(cut)
    try:
        json.loads(cut)
    except json.JSONDecodeError as err:
        expected = (err.lineno, err.colno)
    _rejected(path, "not valid JSON", f"line {expected[0]}", f"column {expected[1]}")


def test_python_script_renamed_to_ipynb_is_not_json(tmp_path):
    path = tmp_path / "layers.ipynb"
    path.write_text("import numpy as np\n\nclass TanhLayer:\n    pass\n")
    _rejected(path, "not valid JSON", "line 1", "column 1")


def test_deeply_nested_json_is_rejected(tmp_path):
    path = tmp_path / "nested.ipynb"
    path.write_text("[" * 100_000)
    _rejected(path, "nested too deeply")


def test_deeply_nested_but_complete_json_is_rejected(tmp_path):
    path = tmp_path / "nested.ipynb"
    path.write_text("[" * 50_000 + "]" * 50_000)
    _rejected(path, "nested too deeply")


def test_nesting_just_over_the_limit_inside_a_notebook_is_rejected(tmp_path, good_notebook):
    value: object = 0
    for _ in range(MAX_JSON_DEPTH):
        value = [value]
    good_notebook.metadata["deep"] = value
    _rejected(write_notebook(good_notebook, tmp_path / "deep.ipynb"), "nested too deeply", str(MAX_JSON_DEPTH))


def test_huge_number_of_tiny_values_is_refused_before_parsing(tmp_path):
    path = tmp_path / "bomb.ipynb"
    path.write_text('{"nbformat": 4, "cells": [' + ",".join(["{}"] * 4_100_000) + "]}")
    _rejected(path, "million JSON values")


def test_overlong_integer_is_rejected(tmp_path):
    path = tmp_path / "digits.ipynb"
    path.write_text('{"nbformat": 4, "cells": [], "x": ' + "9" * 10_000 + "}")
    _rejected(path, "JSON")


# --------------------------------------------------------------------------- rejected: not a notebook


@pytest.mark.parametrize(
    ("content", "keywords"),
    [
        ([1, 2, 3], ("not a Jupyter notebook", "a list")),
        ("just a string", ("not a Jupyter notebook", "a string")),
        ({"hello": "world"}, ("not a Jupyter notebook", '"cells"')),
        ({"cells": []}, ("not a Jupyter notebook", '"nbformat"')),
        ({"nbformat": "4", "cells": []}, ("not a valid notebook", "version is a string")),
        ({"nbformat": 0, "cells": []}, ("not a valid notebook", "not a format number")),
        ({"nbformat": 10**80, "cells": []}, ("notebook format from the future",)),
        ({"nbformat": 4, "nbformat_minor": 5}, ("not a valid notebook", '"cells"')),
        ({"nbformat": 4, "cells": {"0": {}}}, ("not a valid notebook", "an object, not a list")),
        ({"nbformat": 4, "cells": ["x = 1"]}, ("cell 1", "a string")),
        ({"nbformat": 4, "cells": [{"source": "x = 1"}]}, ("cell 1", "no cell type")),
        ({"nbformat": 4, "cells": [{"cell_type": "code", "source": 42}]}, ("code cell 1", "not text")),
        ({"nbformat": 4, "cells": [{"cell_type": "code", "source": ["a", 1]}]}, ("code cell 1", "not text")),
    ],
)
def test_json_that_is_not_a_notebook_is_rejected(tmp_path, content, keywords):
    path = tmp_path / "thing.ipynb"
    path.write_text(json.dumps(content))
    _rejected(path, *keywords)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_old_notebook_formats_are_rejected(tmp_path, version):
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps({"nbformat": version, "nbformat_minor": 0, "worksheets": [], "metadata": {}}))
    _rejected(path, f"saved in notebook format {version}", "re-save it in Jupyter 4+")


def test_future_notebook_format_is_rejected(tmp_path):
    path = tmp_path / "new.ipynb"
    path.write_text(json.dumps({"nbformat": 5, "nbformat_minor": 0, "cells": [], "metadata": {}}))
    _rejected(path, "notebook format 5")


def test_non_code_cell_with_broken_source_is_only_a_warning(tmp_path):
    path = tmp_path / "md.ipynb"
    data = json.loads(_json(make_notebook(["x = 1", ("markdown", "text")])))
    data["cells"][1]["source"] = 12
    path.write_text(json.dumps(data))
    result = _loaded(path)
    assert any("cells[1]" in warning for warning in result.warnings)


# --------------------------------------------------------------------------- committed fixtures

EXPECTED = {
    "format3.ipynb": ("rejected", "notebook format 3"),
    "utf16.ipynb": ("rejected", "UTF-16"),
    "truncated.ipynb": ("rejected", "not valid JSON"),
    "empty.ipynb": ("rejected", "empty"),
    "not_a_notebook.ipynb": ("rejected", "not a Jupyter notebook"),
    "garbage.ipynb": ("rejected", "binary"),
    "duplicate_ids.ipynb": ("loaded", "duplicate"),
    "magics_and_shell.ipynb": ("loaded", None),
}


def test_every_committed_fixture_has_an_expected_outcome():
    assert {path.name for path in FIXTURES.glob("*.ipynb")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_committed_fixtures(name):
    status, keyword = EXPECTED[name]
    if status == "rejected":
        _rejected(FIXTURES / name, name, keyword)
    else:
        result = _loaded(FIXTURES / name)
        if keyword:
            assert any(keyword in warning for warning in result.warnings)
        else:
            assert result.warnings == []


# --------------------------------------------------------------------------- bounded work (issue 10, class 2)


def _raw_notebook(cells: list, metadata=None) -> dict:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata or {}, "cells": cells}


def _code_cell(index: int, source: str = "x = 1", outputs=None, metadata=None) -> dict:
    return {"cell_type": "code", "id": f"c{index}", "metadata": metadata or {}, "source": source,
            "execution_count": None, "outputs": outputs or []}


def test_outputs_and_huge_metadata_never_reach_nbformat(tmp_path, monkeypatch):
    """A million tiny outputs cost nbformat seconds; grading never reads them, so they are dropped first."""
    import autograder.submission.load as load_module

    seen_sizes = []
    real_from_dict = load_module.nbformat.from_dict

    def recording_from_dict(obj):
        seen_sizes.append(len(json.dumps(obj)))
        return real_from_dict(obj)

    monkeypatch.setattr(load_module.nbformat, "from_dict", recording_from_dict)
    output = {"output_type": "stream", "name": "stdout", "text": "x"}
    big_metadata = {"k": list(range(5000))}
    cells = [_code_cell(0, "class TanhLayer:\n    pass\n", [output] * 20000, big_metadata)]
    path = tmp_path / "outputs.ipynb"
    path.write_text(json.dumps(_raw_notebook(cells, {"junk": list(range(5000))})), encoding="utf-8")
    loaded = _loaded(path)
    assert loaded.notebook.cells[0].source.startswith("class TanhLayer")
    assert seen_sizes and max(seen_sizes) < 2000  # what nbformat saw: the code, not the outputs


def test_small_metadata_is_kept(tmp_path):
    """Fair before strict: nbgrader's cell metadata survives loading."""
    meta = {"nbgrader": {"grade": True, "grade_id": "tanh", "points": 2}}
    path = tmp_path / "meta.ipynb"
    path.write_text(json.dumps(_raw_notebook([_code_cell(0, metadata=meta)])), encoding="utf-8")
    assert _loaded(path).notebook.cells[0].metadata["nbgrader"]["grade_id"] == "tanh"


def test_a_notebook_with_more_cells_than_the_limit_is_rejected(tmp_path, monkeypatch):
    import autograder.submission.load as load_module

    monkeypatch.setattr(load_module, "MAX_CELLS", 50)
    path = tmp_path / "cells.ipynb"
    path.write_text(json.dumps(_raw_notebook([_code_cell(i) for i in range(51)])), encoding="utf-8")
    _rejected(path, "51 cells", "more than the 50")
    path.write_text(json.dumps(_raw_notebook([_code_cell(i) for i in range(50)])), encoding="utf-8")
    _loaded(path)


def test_validation_stops_after_the_problems_shown(tmp_path, monkeypatch):
    import autograder.submission.load as load_module

    drawn = []
    depth = [0]
    real = load_module.nbformat.validator.iter_validate

    def counting(notebook, *args, **kwargs):  # nbformat calls iter_validate itself: count the outer call only
        depth[0] += 1
        try:
            for error in real(notebook, *args, **kwargs):
                if depth[0] == 1:
                    drawn.append(error)
                yield error
        finally:
            depth[0] -= 1

    monkeypatch.setattr(load_module.nbformat.validator, "iter_validate", counting)
    cells = [dict(_code_cell(i), execution_count="not a number") for i in range(200)]
    path = tmp_path / "invalid.ipynb"
    path.write_text(json.dumps(_raw_notebook(cells)), encoding="utf-8")
    loaded = _loaded(path)
    assert len(drawn) == load_module.MAX_REPORTED_PROBLEMS + 1
    assert loaded.warnings[-1] == "Ignored more problems with the nbformat schema."
