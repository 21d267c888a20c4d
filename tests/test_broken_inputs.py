"""Broken and odd submission files, graded in one batch with honest ones.

``tests/test_load.py`` and ``tests/test_extract.py`` check loading and code
extraction in isolation; here every file goes through the whole pipeline
(``batch.grade_batch``: load, extract, sandbox, judge, reports), in one batch
with two workers, together with honest submissions. For every file:

* the batch finishes and the file gets a report and feedback;
* a file that is not a readable notebook is ``rejected`` with a sentence that
  says what is wrong (and scores 0);
* a readable notebook is graded, and its oddity (duplicate ids, 50 MB of
  images, 10,000 cells, magics, a huge code cell, non-ASCII names ...) costs
  no points: it scores exactly what the same solution scores without it;
  a missing or misspelt class costs that class's points only, and says so;
* the honest submissions get the reports they get when graded alone;
* shell escapes in cells (``!rm -rf``) never run.
"""

from __future__ import annotations

import base64
import codecs
import json
import os
import random
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from autograder import batch, demo
from autograder.sandbox import isolation as sandbox
from autograder.sandbox.limits import Limits
from autograder.submission.load import DEFAULT_MAX_BYTES
from autograder.course.spec import load_spec

REPO_ROOT = Path(__file__).resolve().parents[1]
LAB3 = '03_multiple_layer_models'
LIMITS = Limits(request_seconds=5.0, setup_seconds=10.0, wall_seconds=90.0)

GRADED_LIKE_SOLUTION = 'like the solution'
TANH_MISSING = 'TanhLayer missing'


@dataclass(frozen=True)
class Expected:
    """What one broken file must get.

    Attributes:
        status: "rejected" or "graded".
        message: Regular expression the report's error or notes must match.
        score: For graded files: GRADED_LIKE_SOLUTION (same checks and score as
            the solution alone) or TANH_MISSING (TanhLayer's items score 0 and
            ReluLayer's score as in the solution).
    """

    status: str
    message: str = ''
    score: str = ''


def _solution(course_root: Path) -> str:
    return demo.solution_source(course_root, LAB3)


def _notebook_bytes(notebook: nbformat.NotebookNode) -> bytes:
    return (v4.nbjson.writes(notebook) + '\n').encode('utf-8')


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {'deeper': value}
    return value


def build_files(course_root: Path, folder: Path, canary: Path) -> dict[str, Expected]:
    """Write every broken file into ``folder``; return student id -> expectation."""
    solution = _solution(course_root)
    released = demo.submission_notebook(course_root, LAB3)
    expected: dict[str, Expected] = {}

    def raw(name: str, data: bytes, expectation: Expected) -> None:
        (folder / '{0}.ipynb'.format(name)).write_bytes(data)
        expected[name] = expectation

    def notebook(name: str, nb, expectation: Expected) -> None:
        raw(name, _notebook_bytes(nb), expectation)

    good = _notebook_bytes(released)
    rng = random.Random(20261126)

    # Not a readable notebook: rejected with a reason.
    raw('empty', b'', Expected('rejected', r'is empty'))
    raw('blank_space', b'  \n\t\n', Expected('rejected', r'only blank space'))
    raw('not_json', b'These are my answers; Jupyter would not start.\n', Expected('rejected', r'not valid JSON'))
    raw('truncated', good[: len(good) * 3 // 5], Expected('rejected', r'not valid JSON'))
    raw('binary', b'\x00\x01\x02' + rng.randbytes(4096), Expected('rejected', r'binary file'))
    raw('zip_archive', b'PK\x03\x04' + rng.randbytes(512), Expected('rejected', r'zip archive'))
    raw('latin1', json.dumps(v4.new_notebook(cells=[v4.new_markdown_cell('Résumé')]),
                             ensure_ascii=False).encode('latin-1'), Expected('rejected', r'not UTF-8'))
    raw('utf16_with_bom', codecs.BOM_UTF16_LE + good.decode('utf-8').encode('utf-16-le'),
        Expected('rejected', r'UTF-16'))
    raw('utf16_without_bom', good.decode('utf-8').encode('utf-16-le'), Expected('rejected', r'UTF-16'))
    raw('json_list', b'[1, 2, 3]\n', Expected('rejected', r'not a Jupyter notebook'))
    raw('json_without_cells', b'{"name": "lab 3", "answers": []}\n', Expected('rejected', r'not a Jupyter notebook'))
    raw('nbformat3', json.dumps({'nbformat': 3, 'nbformat_minor': 0, 'metadata': {},
                                 'worksheets': [{'cells': []}]}).encode(), Expected('rejected', r'format 3'))
    raw('deeply_nested_json', b'[' * 100_000 + b']' * 100_000, Expected('rejected', r'nested too deeply'))
    nested = json.loads(good)
    nested['cells'][0]['metadata']['history'] = _nested(500)
    raw('deeply_nested_metadata', json.dumps(nested).encode(), Expected('rejected', r'nested too deeply'))
    code_not_text = json.loads(good)
    code_not_text['cells'].append({'cell_type': 'code', 'source': 42, 'metadata': {}, 'outputs': [],
                                   'execution_count': None})
    raw('code_source_not_text', json.dumps(code_not_text).encode(), Expected('rejected', r'not text'))
    too_large = bytearray(good)
    too_large[-2:-2] = b' ' * (DEFAULT_MAX_BYTES + 1 - len(good))  # valid JSON, just too big
    raw('too_large', bytes(too_large), Expected('rejected', r'larger than'))
    (folder / 'folder.ipynb').mkdir()
    expected['folder'] = Expected('rejected', r'is (a|an empty) folder')
    os.mkfifo(folder / 'fifo.ipynb')
    expected['fifo'] = Expected('rejected', r'not a regular file')
    (folder / 'device.ipynb').symlink_to('/dev/zero')  # a link: never opened (issue 10, class 1)
    expected['device'] = Expected('rejected', r'symbolic link')

    # Readable, but odd: graded, at no cost.
    raw('utf8_bom', codecs.BOM_UTF8 + good, Expected('graded', r'byte-order mark', GRADED_LIKE_SOLUTION))
    duplicated = demo.submission_notebook(course_root, LAB3)
    for cell in duplicated.cells:
        cell['id'] = 'same-id'
    notebook('duplicate_ids', duplicated, Expected('graded', r'duplicate cell id', GRADED_LIKE_SOLUTION))
    images = demo.submission_notebook(course_root, LAB3)
    picture = base64.b64encode(b'\x89PNG\r\n\x1a\n' + rng.randbytes(1_500_000)).decode('ascii')
    for index in range(25):  # 25 plots of 2 MB: a 50 MB notebook
        cell = v4.new_code_cell('plt.plot(errors[{0}])\nplt.show()'.format(index), execution_count=index + 1)
        cell.outputs = [v4.new_output('display_data', data={'image/png': picture, 'text/plain': '<Figure>'})]
        images.cells.append(cell)
    notebook('images_50_mb', images, Expected('graded', '', GRADED_LIKE_SOLUTION))
    many = demo.submission_notebook(course_root, LAB3)
    kinds = ('x_{0} = {0}', 'print(x_{0})', 'for k in range(3):\n    total = k * {0}', '%matplotlib inline',
             '!ls -la', 'def helper_{0}(x):\n    return x + {0}')
    for index in range(10_000 - len(many.cells)):
        many.cells.append(v4.new_markdown_cell('Note {0}: café, 中文'.format(index)) if index % 2 else
                          v4.new_code_cell(kinds[index // 2 % len(kinds)].format(index)))
    notebook('ten_thousand_cells', many, Expected('graded', '', GRADED_LIKE_SOLUTION))
    tanh_removed = re.sub(r'class TanhLayer\(Layer\):.*?(?=\nclass ReluLayer)', '', solution, flags=re.S)
    notebook('missing_class', demo.submission_notebook(course_root, LAB3, solution=tanh_removed),
             Expected('graded', r'TanhLayer is not defined in your notebook', TANH_MISSING))
    notebook('misspelt_class', demo.submission_notebook(
        course_root, LAB3, solution=solution.replace('class TanhLayer(', 'class TanhLyer(')),
        Expected('graded', r'did you mean TanhLyer', TANH_MISSING))
    notebook('syntax_error_elsewhere', demo.submission_notebook(
        course_root, LAB3, 'for epoch in range(10)\n    train()\n'),
        Expected('graded', r'syntax error', GRADED_LIKE_SOLUTION))
    broken_tanh = solution.replace('return np.tanh(inputs)', 'return np.tanh(inputs')
    notebook('syntax_error_in_solution', v4.new_notebook(cells=[
        v4.new_code_cell(broken_tanh.split('class ReluLayer')[0]),
        v4.new_code_cell('import numpy as np\nfrom mlp.layers import Layer\n\nclass ReluLayer'
                         + solution.split('class ReluLayer')[1])]),
        Expected('graded', r'syntax error', TANH_MISSING))
    escapes = [
        '!rm -rf {0}'.format(canary),
        'files = !rm -rf {0}'.format(canary),
        '%rm -rf {0}'.format(canary),
        '%%bash\nrm -rf {0}\n'.format(canary),
        '%%writefile {0}/planted.py\nprint("planted")\n'.format(canary),
        'get_ipython().system("rm -rf {0}")'.format(canary),
        '%matplotlib inline\n' + solution + '\n!rm -rf {0}\n'.format(canary),
    ]
    notebook('magics_and_shell_escapes', demo.submission_notebook(course_root, LAB3, *escapes),
             Expected('graded', '', GRADED_LIKE_SOLUTION))
    accented = solution.replace('return np.tanh(inputs)', 'ausgänge = np.tanh(inputs)  # tanh, café\n'
                                '        return ausgänge').replace(
        'active = inputs > 0', 'aktiv_ß = inputs > 0\n        active = aktiv_ß')
    notebook('non_ascii_identifiers', demo.submission_notebook(
        course_root, LAB3, 'def größe(λ):\n    return λ * 2\n\n변수 = größe(1.5)\n', solution=accented),
        Expected('graded', '', GRADED_LIKE_SOLUTION))
    notebook('huge_code_cell', demo.submission_notebook(
        course_root, LAB3, 'big = [' + '1,' * 1_500_000 + ']\n'),
        Expected('graded', r'too large', GRADED_LIKE_SOLUTION))
    notebook('many_syntax_errors', demo.submission_notebook(
        course_root, LAB3, *['print("unclosed {0}"\n'.format(index) for index in range(300)]),
        Expected('graded', r'and \d+ more cells with syntax errors', GRADED_LIKE_SOLUTION))
    return expected


@pytest.fixture(scope='module')
def graded(tmp_path_factory, mnist_dir, reachable_tmp):
    """The broken class graded in one batch (two workers), and the solution graded alone."""
    course_root = REPO_ROOT
    spec = load_spec(LAB3, course_root)
    base = tmp_path_factory.mktemp('broken')
    folder, alone_folder, private_temp = base / 'class', base / 'alone', reachable_tmp.mktemp('broken')
    for path in (folder, alone_folder):
        path.mkdir()
    canary = base / 'canary'
    canary.mkdir()
    (canary / 'keep.txt').write_text('still here\n')
    expected = build_files(course_root, folder, canary)
    honest = {'honest_solution': demo.submission_notebook(course_root, LAB3),
              'honest_tanh_slip': demo.submission_notebook(
                  course_root, LAB3, 'class TanhLayer(TanhLayer):\n    def bprop(self, inputs, outputs, g):\n'
                  '        return g * (1. - outputs)\n')}
    for name, notebook in honest.items():
        for target in (folder, alone_folder):
            (target / '{0}.ipynb'.format(name)).write_bytes(_notebook_bytes(notebook))
    previous = (os.environ.get('MLP_DATA_DIR'), tempfile.tempdir)
    os.environ['MLP_DATA_DIR'] = str(mnist_dir)
    tempfile.tempdir = str(private_temp)
    try:
        batch.grade_batch(spec, batch.find_submissions([alone_folder], LAB3), base / 'alone-grades',
                          workers=2, limits=LIMITS, progress=False)
        reports, _ = batch.grade_batch(spec, batch.find_submissions([folder], LAB3), base / 'grades',
                                       workers=2, limits=LIMITS, progress=False)
    finally:
        if previous[0] is None:
            os.environ.pop('MLP_DATA_DIR', None)
        else:
            os.environ['MLP_DATA_DIR'] = previous[0]
        tempfile.tempdir = previous[1]
    alone = {name: json.loads((base / 'alone-grades' / '{0}.json'.format(name)).read_text(encoding='utf-8'))
             for name in honest}
    by_student = {report.student: report for report in reports}
    return {'reports': by_student, 'alone': alone, 'expected': expected, 'out': base / 'grades',
            'folder': folder,
            'canary': canary, 'private_temp': private_temp, 'honest': list(honest)}


def _summary(tests) -> list[tuple]:
    return [(t['grade_id'], t['kind'], t['status'], t['score']) if isinstance(t, dict)
            else (t.grade_id, t.kind, t.status, t.score) for t in tests]


def test_every_file_gets_a_report_and_feedback(graded):
    students = set(graded['expected']) | set(graded['honest'])
    assert set(graded['reports']) == students
    for student in students:
        assert (graded['out'] / '{0}.json'.format(student)).is_file(), student
        assert (graded['out'] / '{0}.md'.format(student)).read_text(encoding='utf-8')
    assert len((graded['out'] / 'grades.csv').read_text(encoding='utf-8').splitlines()) == 1 + len(students)


def test_honest_submissions_are_graded_as_if_alone(graded):
    for student in graded['honest']:
        report = graded['reports'][student]
        assert _summary(report.tests) == _summary(graded['alone'][student]['tests']), student
        assert report.score == graded['alone'][student]['score']


def test_shell_escapes_and_magics_never_run(graded):
    assert (graded['canary'] / 'keep.txt').read_text() == 'still here\n'
    assert not (graded['canary'] / 'planted.py').exists()


def test_nothing_is_left_in_the_graders_temporary_folder(graded):
    assert list(graded['private_temp'].rglob('*')) == []


@pytest.mark.parametrize('student', [
    'empty', 'blank_space', 'not_json', 'truncated', 'binary', 'zip_archive', 'latin1', 'utf16_with_bom',
    'utf16_without_bom', 'json_list', 'json_without_cells', 'nbformat3', 'deeply_nested_json',
    'deeply_nested_metadata', 'code_source_not_text', 'too_large', 'folder', 'fifo', 'device',
    'utf8_bom', 'duplicate_ids', 'images_50_mb', 'ten_thousand_cells', 'missing_class', 'misspelt_class',
    'syntax_error_elsewhere', 'syntax_error_in_solution', 'magics_and_shell_escapes', 'non_ascii_identifiers',
    'huge_code_cell', 'many_syntax_errors'])
def test_broken_file(graded, student):
    expected = graded['expected'][student]
    report = graded['reports'][student]
    text = '\n'.join([report.error] + list(report.notes) + [t.output for t in report.tests])
    assert report.status == expected.status, text[:1000]
    if expected.message:
        assert re.search(expected.message, text), text[:2000]
    size = (graded['out'] / '{0}.json'.format(student)).stat().st_size
    assert size < 256 * 1024
    solution = graded['alone']['honest_solution']
    if expected.status == 'rejected':
        assert report.score == 0 and report.tests == [] and report.error.endswith('.')
        assert 'internal error' not in report.error
    elif expected.score == GRADED_LIKE_SOLUTION:
        assert _summary(report.tests) == _summary(solution['tests'])
    else:
        assert expected.score == TANH_MISSING
        by_item = report.item_scores()
        solution_items = {}
        for test in solution['tests']:
            solution_items[test['grade_id']] = solution_items.get(test['grade_id'], 0.0) + test['score']
        for grade_id, score in by_item.items():
            if grade_id.startswith('tanh'):
                assert score == 0.0, grade_id
            else:
                assert score == pytest.approx(solution_items[grade_id]), grade_id


def test_resuming_next_to_a_fifo_does_not_hang(graded):
    """The second run of a batch hashes each file to see whether its report can be reused."""
    import threading
    spec = load_spec(LAB3, REPO_ROOT)
    fifo = graded['folder'] / 'fifo.ipynb'
    finished = threading.Event()

    def reuse() -> None:
        batch.existing_report(graded['out'], batch.Submission('fifo', fifo), spec)
        finished.set()

    threading.Thread(target=reuse, daemon=True).start()
    hung = not finished.wait(5.0)
    if hung:  # release the blocked open() so that no thread is left behind
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        finished.wait(5.0)
    assert not hung


def test_hashing_refuses_devices_and_fifos_at_once(tmp_path):
    """file_sha256 must neither block on a FIFO nor read a device forever."""
    fifo = tmp_path / 'pipe.ipynb'
    os.mkfifo(fifo)
    zero = tmp_path / 'zero.ipynb'
    zero.symlink_to('/dev/zero')
    regular = tmp_path / 'real.ipynb'
    regular.write_bytes(b'{}')
    assert batch.file_sha256(fifo) == '' and batch.read_submission_bytes(fifo) is None
    assert batch.file_sha256(zero) == '' and batch.read_submission_bytes(zero) is None
    assert len(batch.file_sha256(regular)) == 64 and batch.read_submission_bytes(regular) == b'{}'


def test_isolation_is_recorded_in_every_graded_report(graded):
    strongest = sandbox.detect_isolation()
    for student, report in graded['reports'].items():
        if report.status == 'graded':
            assert report.isolation == strongest, student
