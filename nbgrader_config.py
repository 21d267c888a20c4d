"""nbgrader configuration of the mlp course.

nbgrader reads this file when it is run from the repository root (``nbgrader generate_assignment
03_multiple_layer_models``, ``nbgrader autograde ...``), and ``mlp-autograde release`` loads it,
and only it, so that a release does not depend on the Jupyter configuration of whoever runs it.

Course layout (see the README)::

    source/<assignment>/       instructor notebooks: solutions, visible tests, hidden tests, points
    release/<assignment>/      generated student version (committed; never edited by hand)
    submitted/<student>/<assignment>/, autograded/, feedback/   nbgrader's grading folders

Solution stubs: a code solution region is replaced by the single comment ``# YOUR CODE HERE``
(``ClearSolutions.code_stub`` below). The ``raise NotImplementedError('Exercise N: implement
Class.method')`` that a student sees is written by hand in the source notebook, on the line right
after ``### END SOLUTION`` (unreachable there, after the model answer's ``return``), so each
message can name its exercise and method. Markdown answer cells become ``YOUR ANSWER HERE``.
"""

import os

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = 'mlp'
c.CourseDirectory.source_directory = 'source'
c.CourseDirectory.release_directory = 'release'
c.CourseDirectory.submitted_directory = 'submitted'
c.CourseDirectory.autograded_directory = 'autograded'
c.CourseDirectory.feedback_directory = 'feedback'
# Files never copied from source/<assignment>/ to release/<assignment>/.
c.CourseDirectory.ignore = [
    '.ipynb_checkpoints', '__pycache__', '*.pyc', 'feedback', 'gradebook.db',
    '.DS_Store', '*~', '*.swp',
]

c.ClearSolutions.code_stub = {'python': '# YOUR CODE HERE'}
c.ClearSolutions.text_stub = 'YOUR ANSWER HERE'
