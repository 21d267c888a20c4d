"""Wording of the grader's notes for a first reader (autograder/grade.py helpers).

Plain words for what the grade rests on, cells named by their first line (Jupyter
shows no cell numbers), and no blame for a cell the course itself wrote.
"""

from types import SimpleNamespace

import nbformat

from autograder import grade
from autograder.submission.extract import extract_code

CLASS_CELL = 'import numpy as np\nfrom mlp.layers import Layer\nclass TanhLayer(Layer):\n    pass\n'
COURSE_CELL = 'train_data = MNISTDataProvider("train", batch_size=batch_size)'


def notebook(*sources):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])


def test_the_extraction_note_says_what_the_grade_rests_on_in_plain_words():
    nb = notebook(CLASS_CELL, 'for epoch in range(100):\n    pass\n', '%matplotlib inline')
    note = grade._extraction_note(extract_code(nb, ['TanhLayer', 'ReluLayer']))
    assert note.startswith('Your grade is based on TanhLayer (cell 1) and the imports and helper code')
    assert 'was not run by the grader and does not change your score' in note
    assert 'kept' not in note and 'definitions' not in note
    assert grade._extraction_note(extract_code(notebook('x = 1'), ['TanhLayer'])).startswith(
        'The grader found none of the classes')


def test_cells_are_named_by_their_first_line_too():
    cells = notebook('\n\n# my Tanh layer\nclass TanhLayer:\n    pass', '', 'y = "' + 'a' * 100 + '"').cells
    assert grade._cell_start(cells, 0) == ', in the cell starting "# my Tanh layer"'
    assert grade._cell_start(cells, 1) == ''  # an empty cell has no first line to show
    assert grade._cell_start(cells, 2).endswith('..."') and len(grade._cell_start(cells, 2)) < 90
    assert grade._cell_start(cells, 7) == ''
    extraction = extract_code(notebook(CLASS_CELL), ['TanhLayer'])
    place = grade._statement_place(extraction, extraction.kept[-1].source_line, notebook(CLASS_CELL).cells)
    assert place.startswith('cell 1, line ') and place.endswith(', in the cell starting "import numpy as np"')
    assert '((' not in place and '))' not in place


def test_a_failing_cell_that_came_with_the_assignment_is_not_blamed_on_the_student():
    nb = notebook(CLASS_CELL, COURSE_CELL, 'z = my_undefined_name')
    extraction = SimpleNamespace(locate=lambda line: (1, 1) if line == 10 else (2, 1))
    course = grade._load_failure_note(extraction, nb.cells, SimpleNamespace(line=10, error="NameError: name "
                                      "'batch_size' is not defined"), frozenset({COURSE_CELL}))
    assert course.startswith('A cell that came with the assignment, unchanged, failed when the grader loaded it')
    assert 'not a mistake of yours' in course and 'NameError' in course
    assert 'in the cell starting "train_data = MNISTDataProvider' in course
    own = grade._load_failure_note(extraction, nb.cells, SimpleNamespace(line=20, error='NameError: x'),
                                   frozenset({COURSE_CELL}))
    assert own.startswith('A statement of your notebook failed when loaded (cell 3, line 1, in the cell '
                          'starting "z = my_undefined_name"): NameError')
    # The same cell edited by the student is the student's own code again.
    edited = notebook(CLASS_CELL, COURSE_CELL + '  # changed')
    assert grade._load_failure_note(extraction, edited.cells, SimpleNamespace(line=10, error='NameError: b'),
                                    frozenset({COURSE_CELL})).startswith('A statement of your notebook')


def test_the_release_notebooks_code_cells_are_what_counts_as_the_courses(tmp_path):
    from autograder.course.spec import load_spec
    spec = load_spec('03_multiple_layer_models')
    sources = grade._release_sources(spec)
    released = nbformat.read(str(spec.student_mlp_dir / spec.notebook), as_version=4)
    assert sources and all(cell.source.strip() in sources for cell in released.cells if cell.cell_type == 'code')
