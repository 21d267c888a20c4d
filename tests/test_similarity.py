"""The similarity report: what is compared, what is found, what is not, and how it is written."""

from __future__ import annotations

import ast
import json
import random
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import similarity_class as generated  # noqa: E402
from autograder.batch import find_submissions  # noqa: E402
from autograder.course.spec import load_spec  # noqa: E402
from autograder.similarity.command import SimilarityError, run_similarity  # noqa: E402
from autograder.similarity.fingerprints import kgram_hashes, winnow  # noqa: E402
from autograder.similarity.matching import Settings  # noqa: E402
from autograder.similarity.normalise import import_aliases, statement_tokens  # noqa: E402
from autograder.similarity.written import release_statements, written_code  # noqa: E402
from autograder.submission.extract import extract_code  # noqa: E402

LAB5_UNITS = ['LeakyReluLayer', 'ELULayer', 'SELULayer', 'ParametricReluLayer']


def _tokens(source: str) -> list[list[str]]:
    tree = ast.parse(source)
    aliases = import_aliases(tree)
    return [statement_tokens(node, aliases)[0] for node in tree.body
            if not isinstance(node, (ast.Import, ast.ImportFrom))]


def _json(out: Path) -> dict:
    return json.loads((out / 'similarity.json').read_text(encoding='utf-8'))


@pytest.fixture(scope='module')
def lab5():
    return load_spec(generated.LAB5)


@pytest.fixture(scope='module')
def copied_class(tmp_path_factory, lab5):
    """30 independent students, a renaming copier, a ring of two copiers of one student,
    and one who handed in the published solution."""
    folder = tmp_path_factory.mktemp('class')
    generated.write_class(folder, generated.LAB5, 30,
                          {'copy_a': 's003', 'copy_b': 's010', 'copy_c': 'copy_b'}, seed=1,
                          moved=frozenset({'copy_b'}))
    (folder / 'keen.ipynb').write_bytes(lab5.source_notebook.read_bytes())
    out = tmp_path_factory.mktemp('report')
    run = run_similarity(lab5, [folder], out)
    return folder, out, run


# --------------------------------------------------------------------------- normalising


def test_names_layout_comments_and_commutative_order_do_not_change_tokens():
    written = 'import numpy as np\nslopes = np.where(inputs > 0, 1., self.alpha)  # slope\nreturn slopes * grads'
    disguised = ('import numpy as xp\nmy_k = xp.where(0 < inputs,\n    1.0, self.alpha)\n'
                 'return (grads) * my_k')
    assert _tokens(written) == _tokens(disguised)


def test_what_the_code_does_still_changes_tokens():
    base = _tokens('y = np.maximum(0., inputs)\nreturn y * grads')
    assert base != _tokens('y = np.minimum(0., inputs)\nreturn y * grads')  # another numpy function
    assert base != _tokens('y = np.maximum(0., inputs)\nreturn y - grads')  # another operator
    assert _tokens('a = a * b') != _tokens('a = b * c')  # who is who, within a statement


def test_numpy_from_import_reads_as_numpy():
    assert _tokens('from numpy import tanh\nreturn tanh(x)') == _tokens('import numpy\nreturn numpy.tanh(x)')


def test_winnowing_finds_every_long_enough_shared_run():
    rng = random.Random(3)
    k, window = 8, 4
    for _ in range(50):
        shared = [rng.choice('abcdefgh') for _ in range(window + k - 1)]
        first = [rng.choice('xyz') for _ in range(rng.randint(0, 20))] + shared + ['q'] * rng.randint(0, 5)
        second = ['w'] * rng.randint(0, 9) + shared + [rng.choice('uv') for _ in range(rng.randint(0, 20))]
        picks = [{h for h, _ in winnow(kgram_hashes(tokens, [(0, len(tokens))], k), window)}
                 for tokens in (first, second)]
        assert picks[0] & picks[1]


def test_a_run_shorter_than_k_never_matches():
    tokens = list('abcdefg')  # 7 tokens, k = 8
    assert kgram_hashes(tokens, [(0, len(tokens))], 8) == []


# --------------------------------------------------------------------------- what is compared


def _written(nb, units=LAB5_UNITS):
    release = release_statements(generated.release_notebook(generated.LAB5), units)
    return written_code(extract_code(nb, units), units, release)


def test_untouched_release_has_no_student_code():
    code = _written(generated.release_notebook(generated.LAB5))
    assert code.tokens == [] and code.units == LAB5_UNITS


def test_only_the_methods_a_student_wrote_count():
    bodies = {key: 'raise NotImplementedError()' for key in generated.methods(generated.LAB5)}
    bodies['ELULayer', 'fprop'] = 'return np.where(inputs > 0, inputs, self.alpha * np.expm1(inputs))'
    code = _written(generated.notebook(generated.LAB5, bodies))
    written_lines = [row.text.strip() for row in code.rows if row.written]
    assert written_lines == ['return np.where(inputs > 0, inputs, self.alpha * np.expm1(inputs))']
    assert {row.unit for row in code.rows if row.written} == {'ELULayer'}


def test_a_class_extended_in_a_later_cell_keeps_its_earlier_code():
    units = ['TanhLayer', 'ReluLayer']
    release = release_statements(generated.release_notebook(generated.LAB3), units)
    bodies = {key: 'return np.tanh(inputs) * 1.5 + np.cos(inputs) - inputs ** 3'
              for key in generated.methods(generated.LAB3)}
    nb = generated.notebook(generated.LAB3, bodies)
    nb.cells.append(nb.cells[0].copy())
    nb.cells[-1].cell_type, nb.cells[-1].source = 'code', (
        'class TanhLayer(TanhLayer):\n    def bprop(self, inputs, outputs, grads_wrt_outputs):\n'
        '        return grads_wrt_outputs * np.sinh(outputs)\n')
    nb.cells[-1].outputs, nb.cells[-1].execution_count = [], None
    code = written_code(extract_code(nb, units), units, release)
    texts = [row.text.strip() for row in code.rows if row.written and row.unit == 'TanhLayer']
    assert 'return grads_wrt_outputs * np.sinh(outputs)' in texts
    assert 'return np.tanh(inputs) * 1.5 + np.cos(inputs) - inputs ** 3' in texts


# --------------------------------------------------------------------------- what is found


def test_renamed_reordered_and_moved_copies_are_clustered(copied_class):
    _, out, run = copied_class
    assert run.groups == [['copy_b', 'copy_c', 's010'], ['copy_a', 's003']]
    report = _json(out)
    pairs = {(pair['a'], pair['b']): pair for pair in report['pairs']}
    for a, b in [('copy_a', 's003'), ('copy_b', 's010'), ('copy_b', 'copy_c')]:
        pair = pairs.get((a, b)) or pairs[b, a]
        assert pair['meaningful'] and pair['score'] >= report['threshold']
        assert pair['spans']


def test_a_moved_copy_is_matched_where_it_was_moved(copied_class):
    folder, out, _ = copied_class
    pair = next(p for p in _json(out)['pairs'] if {p['a'], p['b']} == {'copy_b', 's010'})
    last_cell = len(generated.release_notebook(generated.LAB5).cells) + 1
    side = 'a' if pair['a'] == 'copy_b' else 'b'
    assert {span[side]['cell'] for span in pair['spans']} == {last_cell}
    # The spans name lines of the student's notebook that hold the matched code.
    import nbformat
    cell_lines = nbformat.read(str(folder / 'copy_b.ipynb'), as_version=4).cells[last_cell - 1].source.split('\n')
    for span in pair['spans']:
        first, last = span[side]['lines']
        assert 1 <= first <= last <= len(cell_lines)
        assert any(line.strip() and not line.strip().startswith('#') for line in cell_lines[first - 1:last])


def test_independent_students_do_not_cluster(copied_class):
    _, out, run = copied_class
    independent = [p for p in run.result.pairs if p.meaningful and 'copy' not in p.a + p.b]
    assert independent == []


def test_without_discounting_common_code_independent_students_would_cluster(copied_class, lab5, tmp_path):
    folder, _, _ = copied_class

    def independent_groups(**settings):
        run = run_similarity(lab5, [folder], tmp_path / str(len(settings)), settings=Settings(**settings))
        return [group for group in run.groups if not any(name.startswith('copy') for name in group)]

    assert independent_groups(threshold=0.5) == []
    assert independent_groups(threshold=0.5, common_share=1.0), 'the class no longer tests the common-code rule'


def test_independent_short_solutions_are_too_short_to_cluster(tmp_path):
    """Lab 3: four one-line methods; identical solutions are common and mean nothing alone."""
    spec = load_spec(generated.LAB3)
    rng = random.Random(5)
    folder = tmp_path / 'class'
    folder.mkdir()
    for number in range(5):
        bodies = {key: rng.choice(generated.VARIANTS[key]).format(a='t', b='u', c='v', i='i', j='j')
                  for key in generated.methods(generated.LAB3)}
        generated.write(generated.notebook(generated.LAB3, bodies), folder / 's{0}.ipynb'.format(number))
    run = run_similarity(spec, [folder], tmp_path / 'out')
    assert run.result.pairs, 'no identical short solutions: the test would prove nothing'
    assert run.groups == []
    report = _json(tmp_path / 'out')
    assert all(not pair['meaningful'] and 'too short' in pair['note'] for pair in report['pairs'])
    page = (tmp_path / 'out' / 'similarity.html').read_text(encoding='utf-8')
    assert 'too short to mean anything' in page
    # The rule, not chance, keeps them apart: without it they would cluster.
    strict = run_similarity(spec, [folder], tmp_path / 'strict', settings=Settings(min_tokens=1))
    assert strict.groups


def test_the_model_solution_is_a_known_source_by_default(tmp_path, lab5):
    folder = tmp_path / 'class'
    folder.mkdir()
    (folder / 'keen.ipynb').write_bytes(lab5.source_notebook.read_bytes())
    (folder / 'blank.ipynb').write_bytes((lab5.student_mlp_dir / lab5.notebook).read_bytes())
    generated.write(generated.notebook(generated.LAB5, generated.disguised(
        _model_bodies(lab5), random.Random(2))), folder / 'sly.ipynb')
    generated.write(generated.notebook(generated.LAB5, generated.independent_bodies(
        generated.LAB5, random.Random(9), personal=1.0)), folder / 'own.ipynb')
    run = run_similarity(lab5, [folder], tmp_path / 'out')
    known = {(m['a'], m['b']): m for m in _json(tmp_path / 'out')['known']}
    assert known['keen', 'model solution']['score'] == 1.0 and known['keen', 'model solution']['meaningful']
    assert known['sly', 'model solution']['score'] >= 0.8 and known['sly', 'model solution']['meaningful']
    assert ('blank', 'model solution') not in known
    assert not (known.get(('own', 'model solution')) or {}).get('meaningful')
    assert ['keen', 'sly'] in run.groups


def _model_bodies(spec) -> dict:
    """The model solution's method bodies, read from the source notebook's solution regions."""
    import nbformat
    bodies = {}
    for cell in nbformat.read(str(spec.source_notebook), as_version=4).cells:
        for match in re.finditer(r'### BEGIN SOLUTION\n(.*?)\n[ \t]*### END SOLUTION\n[ \t]*raise '
                                 r"NotImplementedError\('[^']*implement (\w+)\.(\w+)'\)", cell.source, re.S):
            lines = match.group(1).split('\n')
            indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
            bodies[match.group(2), match.group(3)] = '\n'.join(line[indent:] for line in lines)
    assert set(bodies) == set(generated.methods(spec.name))
    return bodies


def test_known_folders_are_matched_and_reported_apart(tmp_path, lab5):
    rng = random.Random(4)
    last_year = generated.independent_bodies(generated.LAB5, rng, personal=1.0)
    known = tmp_path / 'last_year'
    (known / 'found online').mkdir(parents=True)
    filled = generated.notebook(generated.LAB5, last_year)
    solution_cell = next(c.source for c in filled.cells if c.cell_type == 'code' and 'class ELULayer' in c.source)
    (known / 'found online' / 'elu.py').write_text(solution_cell, encoding='utf-8')
    generated.write(filled, known / 'old.ipynb')
    (known / 'notes.txt').write_text('not code', encoding='utf-8')
    folder = tmp_path / 'class'
    folder.mkdir()
    generated.write(generated.notebook(generated.LAB5, generated.disguised(last_year, rng)), folder / 'reuser.ipynb')
    generated.write(generated.notebook(generated.LAB5, generated.independent_bodies(
        generated.LAB5, rng, personal=1.0)), folder / 'honest.ipynb')
    run_similarity(lab5, [folder], tmp_path / 'out', known_folders=[known])
    report = _json(tmp_path / 'out')
    assert [source['name'] for source in report['known_sources']] == [
        'model solution', 'last_year/found online/elu.py', 'last_year/old.ipynb']
    matched = {(m['a'], m['b']) for m in report['known'] if m['meaningful']}
    assert ('reuser', 'last_year/old.ipynb') in matched and ('reuser', 'last_year/found online/elu.py') in matched
    assert not any(a == 'honest' for a, _ in matched)
    assert all(pair['b'] in {'reuser', 'honest'} for pair in report['pairs'])  # never a known source


def test_a_missing_known_folder_is_a_clear_error(tmp_path, lab5):
    folder = tmp_path / 'class'
    folder.mkdir()
    generated.write(generated.release_notebook(generated.LAB5), folder / 'a.ipynb')
    with pytest.raises(SimilarityError, match='no such file or folder'):
        run_similarity(lab5, [folder], tmp_path / 'out', known_folders=[tmp_path / 'nowhere'])


def test_a_student_called_similarity_does_not_take_the_report_s_name(tmp_path, lab5):
    folder = tmp_path / 'class'
    folder.mkdir()
    (folder / 'similarity.ipynb').write_bytes(lab5.source_notebook.read_bytes())
    run_similarity(lab5, [folder], tmp_path / 'out')
    report = _json(tmp_path / 'out')
    assert report['schema'] == 'mlp-autograde/similarity/1'
    assert [entry['student'] for entry in report['submissions']] == ['similarity-2']


# --------------------------------------------------------------------------- outputs


def test_json_contract(copied_class):
    folder, out, _ = copied_class
    report = _json(out)
    assert report['schema'] == 'mlp-autograde/similarity/1' and report['threshold'] == Settings().threshold
    ids = {submission.student for submission in find_submissions([folder], generated.LAB5)}
    assert {entry['student'] for entry in report['submissions']} == ids
    assert report['pairs'] and report['known']
    for entry in report['pairs'] + report['known']:
        assert entry['a'] in ids
        assert entry['b'] in (ids if entry in report['pairs'] else {s['name'] for s in report['known_sources']})
        assert 0.0 <= entry['score'] <= 1.0 and entry['score'] >= report['threshold']
        assert isinstance(entry['meaningful'], bool) and isinstance(entry['note'], str)
        for span in entry['spans']:
            for side in ('a', 'b'):
                assert set(span[side]) == {'unit', 'cell', 'lines'}
                assert span[side]['unit'] in LAB5_UNITS
                first, last = span[side]['lines']
                assert isinstance(span[side]['cell'], int) and 1 <= first <= last
    for cluster in report['clusters']:
        assert set(cluster['members']) <= ids and 0.0 < cluster['max_score'] <= 1.0


def test_pages_link_every_match_and_run_nothing(copied_class):
    _, out, run = copied_class
    overview = (out / 'similarity.html').read_text(encoding='utf-8')
    pages = sorted((out / 'similarity').glob('*.html'))
    assert len(pages) == len(run.result.pairs) + len(run.result.known)
    for page in [out / 'similarity.html', *pages]:
        text = page.read_text(encoding='utf-8')
        assert "default-src 'none'" in text and '<script' not in text.lower()
    for link in re.findall(r'href="(similarity/[^"]+)"', overview):
        assert (out / link).is_file()


def test_hostile_names_and_code_are_escaped(tmp_path, lab5):
    rng = random.Random(6)
    bodies = generated.independent_bodies(generated.LAB5, rng, personal=1.0)
    bodies['ELULayer', 'fprop'] = ('label = "</td></table><script>alert(1)</script>"\n'
                                   + bodies['ELULayer', 'fprop'])
    folder = tmp_path / 'class'
    folder.mkdir()
    generated.write(generated.notebook(generated.LAB5, bodies), folder / 'x<img src=x onerror=alert(1)>.ipynb')
    generated.write(generated.notebook(generated.LAB5, generated.disguised(bodies, rng)), folder / 'y.ipynb')
    known = tmp_path / '<b onclick=alert(1)>known'
    known.mkdir()
    generated.write(generated.notebook(generated.LAB5, bodies), known / '<script>src.ipynb')
    run = run_similarity(lab5, [folder], tmp_path / 'out', known_folders=[known])
    assert run.result.known and run.result.pairs
    texts = [path.read_text(encoding='utf-8') for path in
             [tmp_path / 'out' / 'similarity.html', *(tmp_path / 'out' / 'similarity').glob('*.html')]]
    joined = '\n'.join(texts)
    assert '<script' not in joined.lower() and '<img' not in joined and '<b ' not in joined
    assert '&lt;/td&gt;&lt;/table&gt;&lt;script&gt;alert(1)&lt;/script&gt;' in joined
    assert '&lt;b onclick=alert(1)&gt;known/&lt;script&gt;src.ipynb' in joined


def test_cli_similarity_and_its_errors(tmp_path, capsys):
    from autograder.cli import main
    folder = tmp_path / 'class'
    folder.mkdir()
    spec = load_spec(generated.LAB5)
    (folder / 'a.ipynb').write_bytes(spec.source_notebook.read_bytes())
    (folder / 'b.ipynb').write_bytes(spec.source_notebook.read_bytes())
    (folder / 'broken.ipynb').write_text('{not json', encoding='utf-8')
    out = tmp_path / 'out'
    assert main(['similarity', '--assignment', generated.LAB5, '--out', str(out), str(folder)]) == 0
    report = _json(out)
    assert report['clusters'][0]['members'] == ['a', 'b']
    assert report['clusters'][0]['known'] == ['model solution']
    assert [entry['name'] for entry in report['skipped']] == ['broken']
    assert 'similarity.html' in capsys.readouterr().out
    assert main(['similarity', '--assignment', generated.LAB5, '--out', str(out),
                 '--known', str(tmp_path / 'nowhere'), str(folder)]) == 2
    assert 'no such file or folder' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['similarity', '--assignment', generated.LAB5, '--out', str(out), '--threshold', '1.5', str(folder)])


def test_grade_with_similarity_links_the_report_from_the_summary(tmp_path, capsys):
    from autograder.cli import main
    spec = load_spec(generated.LAB3)
    folder = tmp_path / 'class'
    folder.mkdir()
    for name in ('ann', 'ben'):
        (folder / '{0}.ipynb'.format(name)).write_bytes(spec.source_notebook.read_bytes())
    out = tmp_path / 'grades'
    assert main(['grade', '--assignment', generated.LAB3, '--out', str(out), '--workers', '1',
                 '--no-progress', '--similarity', '--similarity-threshold', '0.9', str(folder)]) == 0
    assert 'too short to mean anything' in capsys.readouterr().out
    summary = (out / 'summary.html').read_text(encoding='utf-8')
    assert '<a href="similarity.html">' in summary
    report = _json(out)
    assert report['threshold'] == 0.9
    assert {(p['a'], p['b']) for p in report['pairs']} == {('ann', 'ben')}
    assert {path.stem for path in out.glob('*.json')} == {'ann', 'ben', 'summary', 'similarity'}
    for student in ('ann', 'ben'):  # nothing of it in a student's feedback
        for suffix in ('html', 'md', 'json'):
            text = (out / '{0}.{1}'.format(student, suffix)).read_text(encoding='utf-8')
            assert 'similarity.' not in text and 'Shared code' not in text


def test_odd_and_hostile_submissions_are_noted_not_fatal(tmp_path, lab5):
    rng = random.Random(8)
    folder = tmp_path / 'class'
    folder.mkdir()
    deep = generated.independent_bodies(generated.LAB5, rng)
    deep['ELULayer', 'fprop'] = 'return ' + ' + '.join('inputs * {0}'.format(n) for n in range(3000))
    nested = dict(deep)
    nested['ELULayer', 'fprop'] = 'return ' + '-(' * 90 + 'inputs' + ')' * 90
    huge = generated.independent_bodies(generated.LAB5, rng)
    huge['SELULayer', 'fprop'] = '\n'.join('x{0} = inputs * {0}'.format(n) for n in range(3000)) + '\nreturn x1'
    for name, bodies in (('deep', deep), ('nested', nested), ('huge', huge)):
        generated.write(generated.notebook(generated.LAB5, bodies), folder / '{0}.ipynb'.format(name))
    (folder / 'binary.ipynb').write_bytes(b'\x00\x01PK\x03\x04')
    run_similarity(lab5, [folder], tmp_path / 'out')
    report = _json(tmp_path / 'out')
    notes = {entry['student']: entry['notes'] for entry in report['submissions']}
    assert set(notes) == {'deep', 'nested', 'huge'}
    assert any('longer than' in note and 'SELULayer' in note for note in notes['huge'])
    assert any('syntax error' in note for note in notes['deep'])  # as the grader, which skips the cell
    assert [entry['name'] for entry in report['skipped']] == ['binary']
    assert report['skipped'][0]['reason']
