"""Tests for autograder.submission.extract: what is kept, what is skipped, and robustness."""

from __future__ import annotations

import ast
import random
from pathlib import Path

import nbformat
import pytest

from autograder.submission.extract import Definition, Extraction, extract_code
from autograder.submission.load import LoadedNotebook, load_submission
from notebook_factory import make_notebook

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"

TANH = """class TanhLayer(Layer):
    def fprop(self, inputs):
        return np.tanh(inputs)

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        return (1. - outputs ** 2) * grads_wrt_outputs
"""

RELU_FPROP_ONLY = """class ReluLayer(Layer):
    def fprop(self, inputs):
        return np.maximum(inputs, 0.)
"""


def extract(cells, wanted=("TanhLayer", "ReluLayer")) -> Extraction:
    """Extract from a notebook built from ``cells`` and check the output compiles."""
    result = extract_code(make_notebook(list(cells)), wanted)
    compile(result.source, "submission.py", "exec")
    return result


def run(source: str) -> dict:
    """Execute extracted source from our own test fixtures (never student code)."""
    namespace: dict = {"__name__": "submission"}
    exec(compile(source, "submission.py", "exec"), namespace)  # noqa: S102 - test-authored code
    return namespace


def reasons(result: Extraction) -> list[str]:
    return [item.reason for item in result.skipped]


# --------------------------------------------------------------------------- finding definitions


def test_classes_are_found_in_any_cell_and_located():
    result = extract(
        [
            ("markdown", "# Lab 3"),
            "import numpy as np\nfrom mlp.layers import Layer",
            ("markdown", "Implement ReluLayer below"),
            "x = 1\n\n" + RELU_FPROP_ONLY,
            ("raw", "class TanhLayer: pass"),
            "# my tanh\n" + TANH,
        ]
    )
    assert result.found == {
        "ReluLayer": Definition("ReluLayer", "class", cell_index=3, line=3),
        "TanhLayer": Definition("TanhLayer", "class", cell_index=5, line=2),
    }
    assert result.found["TanhLayer"].location == "cell 6, line 2"
    assert result.missing == []
    assert "# cell 6, line 2\nclass TanhLayer(Layer):" in result.source


def test_kept_text_is_reproduced_exactly_with_comments_inside():
    cell = 'class TanhLayer(Layer):\n    """Doc."""\n\n    # a comment\n    def fprop(self, x):  # trailing\n        return x\n'
    result = extract([cell])
    assert cell.rstrip("\n") in result.source


def test_last_definition_wins_and_both_are_kept_in_order():
    first = "class TanhLayer:\n    def fprop(self, x):\n        return 'first'\n"
    second = "class TanhLayer:\n    def fprop(self, x):\n        return 'second'\n"
    result = extract([first, "y = 2", second])
    assert result.found["TanhLayer"].cell_index == 2
    assert result.source.index("'first'") < result.source.index("'second'")
    assert run(result.source)["TanhLayer"]().fprop(0) == "second"


def test_function_definitions_and_decorators_are_kept():
    cell = "import functools\n\n@functools.lru_cache(maxsize=None)\n@staticmethod\ndef helper(x):\n    return x\n"
    result = extract([cell], wanted=["helper"])
    assert result.found["helper"] == Definition("helper", "function", 0, 3)
    assert "@functools.lru_cache(maxsize=None)\n@staticmethod\ndef helper(x):" in result.source


def test_names_bound_by_imports_and_aliases_are_reported_with_their_kind():
    result = extract(
        ["class MyTanh:\n    pass\n", "TanhLayer = MyTanh", "from mlp.layers import ReluLayer"]
    )
    assert result.found["TanhLayer"].kind == "assignment"
    assert result.found["ReluLayer"].kind == "import"


def test_defined_methods_come_from_the_last_class_definition():
    result = extract([TANH, RELU_FPROP_ONLY])
    assert result.defined_methods("ReluLayer") == {"fprop"}
    assert result.defined_methods("TanhLayer") == {"fprop", "bprop"}
    with pytest.raises(KeyError, match="Softmax"):
        result.defined_methods("SoftmaxLayer")


def test_defined_methods_include_properties_and_aliases():
    cell = "class Odd:\n    @property\n    def params(self):\n        return []\n    bprop = lambda self, *a: None\n    __call__ = bprop\n    eps = 1e-8\n"
    assert extract([cell]).defined_methods("Odd") == {"params", "bprop", "__call__"}


def test_redefining_a_class_name_as_a_function_drops_its_methods():
    result = extract([TANH, "def TanhLayer():\n    pass\n"])
    assert result.found["TanhLayer"].kind == "function"
    with pytest.raises(KeyError):
        result.defined_methods("TanhLayer")


def test_missing_names_get_near_miss_suggestions():
    result = extract(
        [
            "class TanhLyer:\n    pass\n",
            "class reluLayer:\n    pass\n",
            "def MySigmoidLayer2():\n    pass\n",
            "class Unrelated:\n    pass\n",
        ],
        wanted=["TanhLayer", "ReluLayer", "SigmoidLayer", "SoftmaxLayer"],
    )
    assert result.missing == ["TanhLayer", "ReluLayer", "SigmoidLayer", "SoftmaxLayer"]
    assert result.near_misses == {
        "TanhLayer": ["TanhLyer"],
        "ReluLayer": ["reluLayer"],
        "SigmoidLayer": ["MySigmoidLayer2"],
    }


def test_other_wanted_names_are_not_suggested():
    result = extract([TANH], wanted=["TanhLayer", "ReluLayer"])
    assert result.missing == ["ReluLayer"]
    assert result.near_misses == {}


def test_non_ascii_identifiers_are_kept_exactly():
    cell = "ä = 1; ö = 'ü'  # é\nclass Ünïcode:\n    def fπ(self):\n        return 'π≈3.14'\nΣ = ä + 1\n"
    result = extract([cell], wanted=["Ünïcode", "Σ"])
    assert "ä = 1\n" in result.source and "ö = 'ü'\n" in result.source
    assert "def fπ(self):\n        return 'π≈3.14'" in result.source
    namespace = run(result.source)
    assert namespace["Ünïcode"]().fπ() == "π≈3.14"
    assert namespace["Σ"] == 2
    assert result.found["Σ"].kind == "assignment"


# --------------------------------------------------------------------------- IPython syntax


def test_magics_and_shell_escapes_never_reach_the_source():
    cells = [
        "class Layer:\n    pass\n%matplotlib inline\nimport numpy as np\n!rm -rf /\nfiles = !ls -la\nt = %timeit -o sum(range(9))\nnp.dot?\n??np\n",
        "%%time\n" + TANH,
        "%%bash\nrm -rf ~\n",
        "def f():\n    !echo inside\n    %time g()\n    return 1\n",
    ]
    result = extract(cells, wanted=["TanhLayer", "f"])
    for forbidden in ("rm -rf", "matplotlib", "!ls", "%time", "timeit", "echo", "np.dot?", "??"):
        assert forbidden not in result.source, forbidden
    assert result.found["TanhLayer"] == Definition("TanhLayer", "class", 1, 2)
    assert "def f():\n    pass\n    pass\n    return 1" in result.source
    assert reasons(result).count("shell command") == 3
    assert reasons(result).count("IPython magic") == 4  # %matplotlib, %timeit, %%time, %time
    assert reasons(result).count("help request") == 2
    assert [(item.cell_index, item.reason, item.scope) for item in result.skipped if item.scope == "cell"] == [
        (2, "%%bash cell", "cell")
    ]
    assert run(result.source)["f"]() == 1


def test_magic_line_numbers_are_preserved():
    result = extract(["%matplotlib inline\n!pip install numpy\n\nclass TanhLayer:\n    pass\n"])
    assert result.found["TanhLayer"].line == 4
    assert [(item.line, item.reason) for item in result.skipped] == [(1, "IPython magic"), (2, "shell command")]


def test_ipython_syntax_inside_strings_is_left_alone():
    cell = 'class TanhLayer:\n    """Notes:\n!important\n%% of inputs\nobj?\n"""\n%matplotlib inline\n'
    result = extract([cell])
    assert 'class TanhLayer:\n    """Notes:\n!important\n%% of inputs\nobj?\n"""' in result.source
    assert reasons(result) == ["IPython magic"]


def test_shell_escape_continued_with_backslash_is_removed_whole():
    result = extract(['!echo "one" \\\n  two three\nclass TanhLayer:\n    pass\n'])
    assert "two three" not in result.source
    assert result.found["TanhLayer"].line == 3


def test_plain_line_filter_is_used_when_ipython_helpers_are_unavailable(monkeypatch):
    import autograder.submission.extract as extract_module

    def unavailable():
        raise ImportError("no IPython here")

    monkeypatch.setattr(extract_module, "_ipython_finders", unavailable)
    result = extract(["%matplotlib inline\nfiles = !ls\nnp.dot?\n!echo a \\\n  b\n" + TANH])
    assert result.found["TanhLayer"].line == 6
    assert reasons(result) == ["IPython magic", "shell command", "help request", "shell command"]
    assert "echo" not in result.source and "  b" not in result.source


def test_cell_magics_with_non_python_bodies_skip_the_whole_cell():
    for magic in ("%%bash", "%%script bash", "%%writefile layers.py", "%%timeit", "%%html", "%%capture?"):
        result = extract([f"{magic}\n{TANH}"])
        assert result.missing == ["TanhLayer", "ReluLayer"], magic
        assert result.skipped[0].scope == "cell"
        assert result.source == ""


def test_capture_cell_magic_keeps_its_body():
    result = extract(["\n%%capture output\n" + TANH])
    assert result.found["TanhLayer"].line == 3


def test_indented_cell_is_dedented_as_ipython_does():
    result = extract(["    class TanhLayer:\n        def fprop(self, x):\n            return x\n"])
    assert "class TanhLayer:\n    def fprop(self, x):\n        return x" in result.source


# --------------------------------------------------------------------------- what is skipped


def test_training_loops_plots_and_data_loading_are_skipped_and_summarised():
    cells = [
        "import numpy as np\nimport matplotlib.pyplot as plt",
        "train_data = MNISTDataProvider('train', batch_size=100, rng=rng)",
        TANH,
        "for epoch in range(100):\n    stats = optimiser.train(num_epochs=1)\n",
        "while not done:\n    model.train_step()\n",
        "fig, ax = plt.subplots()\nax.plot(stats)\n",
        "def broken(:\n    pass\n",
    ]
    result = extract(cells)
    assert result.summary() == (
        "kept 1 definition and 2 imports from 7 code cells; skipped 5 statements "
        "(2 training loops, 2 plots, 1 data loading) and 1 cell with a syntax error"
    )
    assert "optimiser" not in result.source and "MNISTDataProvider" not in result.source


def test_summary_of_an_empty_notebook():
    result = extract([("markdown", "nothing here")])
    assert result.summary() == "kept nothing from 0 code cells; skipped nothing"


def test_main_guard_and_other_blocks_are_skipped():
    cells = [
        "if __name__ == '__main__':\n    class TanhLayer:\n        pass\n",
        "if '__main__' == __name__:\n    pass\n",
        "with open('f') as handle:\n    text = handle.read()\n",
        "try:\n    import torch\nexcept ImportError:\n    torch = None\n",
        "print('hello')",
        "assert 1 + 1 == 2",
        "del x",
    ]
    result = extract(cells)
    assert reasons(result) == [
        "__main__ block",
        "__main__ block",
        "data loading",
        "try block",
        "print",
        "test",
        "other statement",
    ]
    assert "TanhLayer" in result.missing


def test_simple_assignments_are_kept_and_calls_are_not():
    cell = """import numpy as np
seed = 6102016
input_dim, output_dim = 784, 10
a = b = 0.5
*rest, last = [1, 2, 3]
name: str = 'tanh'
relu = lambda x: np.maximum(x, 0)
test_inputs = np.array([[0.1, -0.2, 0.3], [-0.4, 0.5, -0.6]])
typed = np.array([1, 2], dtype=np.float64)
special = numpy.array([np.nan, -np.inf])
scaled = np.array([[1., 2.]]) * 0.5
rng = np.random.RandomState(seed)
reshaped = np.array([1, 2, 3, 4]).reshape(2, 2)
computed = np.array([f(1)])
from_var = np.array(test_inputs)
data.batch_size = 100
weights[0] = 1
counter += 1
bad_default = lambda x=print('hi'): x
"""
    result = extract([cell])
    kept_names = [name for statement in result.kept for name in statement.names]
    assert kept_names == [
        "np", "seed", "input_dim", "output_dim", "a", "b", "rest", "last", "name",
        "relu", "test_inputs", "typed", "special", "scaled",
    ]
    assert [item.line for item in result.skipped] == list(range(12, 20))
    namespace = run("import numpy\n" + result.source)  # the cell uses `numpy.array` without importing it
    assert namespace["test_inputs"].shape == (2, 3)
    assert namespace["relu"](namespace["test_inputs"]).min() == 0


def test_from_numpy_import_array_is_recognised():
    result = extract(["from numpy import array as arr\nx = arr([1, 2])\ny = array([1])\n"])
    assert [statement.names for statement in result.kept] == [("arr",), ("x",)]


def test_future_annotations_is_hoisted_and_applies():
    cells = ["x = 1", "from __future__ import annotations\nclass TanhLayer:\n    def same(self) -> TanhLayer:\n        return self\n"]
    result = extract(cells)
    assert result.source.startswith("# cell 2, line 1\nfrom __future__ import annotations\n")
    assert run(result.source)["TanhLayer"].same.__annotations__ == {"return": "TanhLayer"}


def test_statements_on_one_line_are_split():
    result = extract(["import numpy as np; x = 3; print(x)"])
    assert result.source == "# cell 1, line 1\nimport numpy as np\n# cell 1, line 1\nx = 3\n"
    assert reasons(result) == ["print"]


# --------------------------------------------------------------------------- syntax errors


def test_syntax_error_cell_is_reported_and_others_kept():
    result = extract([TANH, "x = 1\nclass ReluLayer(Layer:\n    pass\n", "y = 2"])
    assert [(issue.cell_index, issue.line) for issue in result.syntax_errors] == [(1, 2)]
    assert result.syntax_errors[0].message
    assert result.syntax_errors[0].describe().startswith("cell 2, line 2: ")
    assert result.missing == ["ReluLayer"]
    assert "y = 2" in result.source and "x = 1" not in result.source


def test_compile_time_errors_skip_the_cell_as_jupyter_would():
    result = extract([TANH + "\nreturn 5\n", "def f(a, a):\n    pass\n"], wanted=["TanhLayer", "f"])
    assert result.missing == ["TanhLayer", "f"]
    assert [issue.cell_index for issue in result.syntax_errors] == [0, 1]
    assert "outside function" in result.syntax_errors[0].message


def test_top_level_await_is_allowed_as_in_ipython():
    result = extract(["import asyncio\nawait asyncio.sleep(0)\nclass TanhLayer:\n    pass\n"])
    assert "TanhLayer" in result.found
    assert result.syntax_errors == []


def test_null_byte_is_reported_not_fatal():
    result = extract(["x = 1\ny = '\x00'\n", TANH])
    assert result.syntax_errors[0].line == 2
    assert "null byte" in result.syntax_errors[0].message
    assert "TanhLayer" in result.found


# --------------------------------------------------------------------------- robustness


def test_odd_cells_never_crash():
    notebook = {
        "cells": [
            "not a cell",
            None,
            {"cell_type": "code"},
            {"cell_type": "code", "source": None},
            {"cell_type": "code", "source": 42},
            {"cell_type": "code", "source": ["class Tanh", "Layer:\n", "    pass\n"]},
            {"cell_type": "code", "source": ["x = ", 1]},
            {"cell_type": "code", "source": "a = 1\r\nb = 2\rc = 3\n"},
            {"cell_type": "markdown", "source": "class ReluLayer: pass"},
            {"cell_type": "raw", "source": "class ReluLayer: pass"},
            {"cell_type": "unknown", "source": "class ReluLayer: pass"},
        ]
    }
    result = extract_code(notebook, ["TanhLayer", "ReluLayer"])
    assert result.found["TanhLayer"].cell_index == 5
    assert result.missing == ["ReluLayer"]
    assert [statement.line for statement in result.kept[1:]] == [1, 2, 3]
    assert [item.cell_index for item in result.skipped if item.reason == "cell without text"] == [3, 4, 6]
    compile(result.source, "submission.py", "exec")


@pytest.mark.parametrize("notebook", [None, {}, {"cells": None}, {"cells": "abc"}, 42, nbformat.v4.new_notebook()])
def test_notebooks_without_cells_give_an_empty_extraction(notebook):
    result = extract_code(notebook, ["TanhLayer"])
    assert result.source == "" and result.missing == ["TanhLayer"] and result.code_cells == 0


def test_very_long_lines_and_deep_nesting_are_handled():
    long_list = "values = [" + ", ".join(["1.5"] * 200_000) + "]"
    deep = "x = " + "(" * 5000 + "1" + ")" * 5000
    unary = "y = " + "-" * 100_000 + "1"
    result = extract([long_list, deep, unary, TANH])
    assert result.kept[0].names == ("values",)
    assert len(result.syntax_errors) == 2
    assert "TanhLayer" in result.found


def test_10000_cells_are_processed():
    cells = []
    for index in range(10_000):
        kind = index % 4
        if kind == 0:
            cells.append(f"class Layer{index}:\n    def fprop(self, x):\n        return x * {index}\n")
        elif kind == 1:
            cells.append(f"%matplotlib inline\nx{index} = np.array([[0.1, {index}]])\n!echo {index}\n")
        elif kind == 2:
            cells.append(f"for epoch in range({index}):\n    model.train()\n")
        else:
            cells.append(("markdown", f"Step {index}"))
    result = extract(cells, wanted=["Layer0", "Layer9996", "Layr4"])
    assert set(result.found) == {"Layer0", "Layer9996"}
    assert result.code_cells == 7500
    assert "Layer4" in result.near_misses["Layr4"]
    assert result.summary().startswith("kept 2500 definitions and 2500 assignments from 7500 code cells")


def test_locate_maps_source_lines_back_to_cells():
    result = extract(["import numpy as np", ("markdown", "text"), "x = 1\n\n" + TANH])
    lines = result.source.split("\n")
    target = lines.index("        return np.tanh(inputs)") + 1
    assert result.locate(target) == (2, 5)
    assert result.locate(1) is None  # a "# cell" comment
    assert result.locate(10_000) is None


def test_every_kept_statement_is_one_top_level_statement_after_its_comment():
    result = extract(["import os; import sys", TANH, "a, b = 1, 2", "@dec\nclass ReluLayer:\n    pass\n"])
    body = ast.parse(result.source).body
    assert len(body) == len(result.kept)
    lines = result.source.split("\n")
    for node, statement in zip(body, result.kept):
        first_line = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        assert first_line == statement.source_line
        assert lines[first_line - 2] == f"# cell {statement.cell_index + 1}, line {statement.line}"


FRAGMENTS = [
    "%matplotlib inline", "!ls", "x = !ls", "y = %time 1", "np.dot?", "?x", "%%time", "%%bash",
    "class A:", "    def f(self):", "        return 1", "    '''", '"""', "'", '"', "\\", "def g(", ")",
    "(", "[", "]", "import numpy as np", "a = np.array([[1, 2]])", "for i in range(3):", "    pass",
    "if __name__ == '__main__':", "\t", "   ", "ü = 1", "class Ü: pass", "@dec", "async def h(): await x",
    "await y", "return 1", "yield 2", "from __future__ import annotations",
    "from __future__ import barry_as_FLUFL", "1 <> 2", "x != 3", "nonlocal q", "global z", "/f a b",
    ",f a b", ";f a b", "!!ls", "\x0c", "\u2028", "\r", "# comment", "f'{x!r}'", "print(1)",
    "x: int = 5", "*a, b = 1, 2", "with open(f) as g:", "try:", "except:", "while True:", "\ud800", "1__2",
    "...", "class B(A, metaclass=M):", "    x = 1", "del", "%", "!", "?", "??", "\x00",
]


def test_random_mixtures_of_python_and_ipython_never_crash():
    rng = random.Random(20241126)
    for _ in range(300):
        cells = [
            "\n".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 10))) for _ in range(rng.randint(1, 5))
        ]
        result = extract_code(make_notebook(cells), ["A", "B", "Ü"])
        compile(result.source, "submission.py", "exec")
        assert "unreadable cell" not in reasons(result), cells
        result.summary()


def test_hostile_fixture_keeps_only_the_layers():
    loaded = load_submission(FIXTURES / "magics_and_shell.ipynb")
    assert isinstance(loaded, LoadedNotebook)
    result = extract_code(loaded.notebook, ["TanhLayer", "ReluLayer"])
    compile(result.source, "submission.py", "exec")
    assert result.found["TanhLayer"].cell_index == 2  # the broken redefinition in cell 5 never ran
    assert "rm -rf" not in result.source and "os.system" not in result.source
    assert [issue.cell_index for issue in result.syntax_errors] == [4]
    assert result.defined_methods("ReluLayer") == {"fprop", "bprop"}


# --------------------------------------------------------------------------- issue 10, class 2: linear cost


def _count_tokenised(monkeypatch) -> list[int]:
    """Record the characters handed to IPython's tokenizer, call by call."""
    from IPython.core import inputtransformer2

    sizes: list[int] = []
    real = inputtransformer2.make_tokens_by_line

    def counting(lines):
        sizes.append(sum(len(line) for line in lines))
        return real(lines)

    monkeypatch.setattr(inputtransformer2, "make_tokens_by_line", counting)
    return sizes


def _escape_cell(escapes: int, filler_lines: int) -> str:
    filler = "y = 1\n" * filler_lines
    return "".join(f'!echo "{index}"\n' + filler for index in range(escapes))


def test_tokenising_ipython_escapes_is_bounded_per_notebook(monkeypatch):
    """An escape with a quote every few lines needs a pass per escape: the budget makes it linear."""
    import autograder.submission.extract as extract_module

    monkeypatch.setattr(extract_module, "MAX_TOKENISED_CHARS", 40_000)
    sizes = _count_tokenised(monkeypatch)
    cells = [_escape_cell(60, 50) for _ in range(3)]  # ~18 KB each; unbounded: ~60 passes per cell
    result = extract_code(make_notebook(cells + ["class TanhLayer:\n    pass\n"]), ["TanhLayer"])
    assert sum(sizes) <= 40_000
    assert sum(item.reason == "shell command" for item in result.skipped) == 180  # every escape still found
    assert "TanhLayer" in result.found and not result.syntax_errors


def test_a_few_magics_still_use_the_string_aware_tokenizer(monkeypatch):
    """Fair before strict: within the budget, '!' inside a string is left alone, as before."""
    sizes = _count_tokenised(monkeypatch)
    cell = 'text = """\n!not a shell command\n"""\n!pip install numpy\n%matplotlib inline\nx = 1\n'
    result = extract_code(make_notebook([cell]), ["text"])
    assert sizes and "text" in result.found
    assert sorted(item.reason for item in result.skipped) == ["IPython magic", "shell command"]
    assert "!not a shell command" in result.source


def test_the_tokenizer_budget_is_spent_across_cells_not_per_cell(monkeypatch):
    import autograder.submission.extract as extract_module

    monkeypatch.setattr(extract_module, "MAX_TOKENISED_CHARS", 10_000)
    sizes = _count_tokenised(monkeypatch)
    cells = [_escape_cell(5, 200) for _ in range(20)]  # ~6 KB each, 20 cells
    result = extract_code(make_notebook(cells), [])
    assert sum(sizes) <= 10_000
    assert sum(item.reason == "shell command" for item in result.skipped) == 100
