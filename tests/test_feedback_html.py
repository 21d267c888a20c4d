"""Tests of autograder.outputs.feedback_html: student and class pages that are safe, self-contained and readable."""

import base64
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from autograder.outputs import feedback_html
from autograder.batch import Submission, grade_batch, write_report_files
from autograder.outputs.report import summary as class_summary
from autograder.results import CheckResult, Report
from autograder.course.spec import load_spec

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = '03_multiple_layer_models'
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
HOSTILE = '<script>alert("pwned")</script>'


class _Tags(HTMLParser):
    """Collects start tags and their attributes."""

    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags_of(page: str):
    parser = _Tags()
    parser.feed(page)
    return parser.tags


def check(grade_id='tanh_bprop', kind='fixed', status='failed', score=0.0, max_score=0.4,
          output='', public=False, diagnosis='', details=None, target='TanhLayer.bprop',
          name='TanhLayer.bprop matches the reference'):
    return CheckResult(grade_id=grade_id, name=name, target=target, kind=kind, status=status,
                       score=score, max_score=max_score, output=output, public=public,
                       diagnosis=diagnosis, details=details or {})


def report_with(tests, student='alice', status='graded', error='', notes=None):
    return Report(student=student, assignment=ASSIGNMENT, submission='subs/{0}.ipynb'.format(student),
                  sha256='ab' * 32, status=status, score=sum(t.score for t in tests),
                  max_score=13.0, isolation='bwrap', execution_time=1.5, tests=tests, error=error,
                  notes=notes or [])


def training_details(diverged=False):
    student = [1.8, 1.2, float('nan') if diverged else 1.1]
    return {'student_errors': student, 'reference_errors': [1.75, 0.94, 0.65],
            'reference_accuracy': 0.821, 'student_accuracy': 0.742}


def data_uris(page: str) -> list[str]:
    return [attrs['src'] for tag, attrs in tags_of(page) if tag == 'img']


def assert_png(uri: str) -> None:
    prefix = 'data:image/png;base64,'
    assert uri.startswith(prefix)
    assert base64.b64decode(uri[len(prefix):]).startswith(PNG_MAGIC)


def test_student_controlled_text_is_escaped_everywhere():
    tests = [check(output='got ' + HOSTILE, diagnosis='<img src=x onerror=alert(1)>', public=True),
             check(kind='training', target='Tanh<script>', details=training_details())]
    page = feedback_html.student_page(report_with(tests, student='eve<script>x</script>',
                                                  notes=['note ' + HOSTILE]))
    assert '<script' not in page.lower()
    assert '&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;' in page
    assert 'eve&lt;script&gt;x&lt;/script&gt;' in page
    assert not any(tag in ('script', 'iframe', 'object', 'embed') for tag, _ in tags_of(page))
    for _, attrs in tags_of(page):
        assert not any(name.startswith('on') for name in attrs), attrs


def test_page_is_self_contained_and_forbids_loading_anything():
    page = feedback_html.student_page(report_with([check(kind='training', details=training_details())]))
    for tag, attrs in tags_of(page):
        for name in ('src', 'href'):
            if name in attrs:
                assert attrs[name].startswith('data:'), (tag, attrs)
        assert tag != 'link'
    assert "default-src 'none'" in page
    uris = data_uris(page)
    assert len(uris) == 1
    assert_png(uris[0])


def test_visible_failure_shows_expected_and_got_hidden_one_does_not():
    message = ('TanhLayer.bprop returned wrong values at [1, 2]: got 15.3705, expected 7.11578 '
               '(max abs error 8.25; 83% of entries wrong).')
    visible = feedback_html.student_page(report_with([check(output=message, public=True)]))
    assert '<td>[1, 2]</td><td class="num">15.3705</td><td class="num">7.11578</td>' in visible
    hidden = feedback_html.student_page(report_with([check(output=message, public=False)]))
    assert '<th>your value</th>' not in hidden


def test_expected_and_got_arrays_from_details_are_shown_for_visible_cases():
    details = {'got': '[[0.1, 0.2]]', 'expected': '[[0.1, 0.3]]', 'where': 'outputs'}
    page = feedback_html.student_page(report_with([check(public=True, details=details)]))
    assert '[[0.1, 0.3]]' in page and '[[0.1, 0.2]]' in page


def test_training_checks_get_a_plot_even_when_the_run_diverged():
    failed = check(kind='training', target='TanhLayer', details=training_details(diverged=True))
    passed = check(grade_id='relu_training', kind='training', status='passed', score=1.0, max_score=1.0,
                   target='ReluLayer', details=training_details())
    page = feedback_html.student_page(report_with([failed, passed]))
    uris = data_uris(page)
    assert len(uris) == 2
    for uri in uris:
        assert_png(uri)
    assert 'your layer 74.2%, reference 82.1%' in page


def test_training_plot_needs_data():
    assert feedback_html.training_plot({}) == ''
    assert feedback_html.training_plot({'student_errors': [float('inf')]}) == ''


def test_curves_that_match_to_the_eye_share_one_drawing(monkeypatch):
    """A class of correct runs (the reference run up to rounding) draws its plot once, not per student."""
    drawn = []
    real = feedback_html._png_data_uri
    monkeypatch.setattr(feedback_html, '_png_data_uri', lambda figure: drawn.append(1) or real(figure))
    feedback_html._training_plot_of.cache_clear()
    reference = [2.30251, 0.61, 0.4137, 0.35]
    runs = [[value * (1 + k * 1e-12) for value in reference] for k in range(5)]
    uris = {feedback_html.training_plot({'student_errors': run, 'reference_errors': reference}) for run in runs}
    assert len(uris) == 1 and len(drawn) == 1
    assert_png(uris.pop())


def test_curves_that_differ_get_their_own_drawing():
    """The sharing never shows one student another's curve: any visible difference is drawn anew."""
    reference = [2.30251, 0.61, 0.4137, 0.35]
    slower = [2.30251, 0.65, 0.4137, 0.35]
    one_epoch_less = reference[:-1]
    uris = [feedback_html.training_plot({'student_errors': run, 'reference_errors': reference})
            for run in (reference, slower, one_epoch_less)]
    assert len(set(uris)) == 3
    assert feedback_html.training_plot({'student_errors': reference}) not in uris  # no reference curve


DRAW_ONE_PLOT = """
import sys
from autograder.outputs import feedback_html
if sys.argv[1] == 'warm':
    feedback_html.start_loading_matplotlib()
    feedback_html.start_loading_matplotlib()  # once per process, however often it is asked
print(feedback_html.training_plot({'student_errors': [2.3, 0.61, 0.41], 'reference_errors': [2.3, 0.6, 0.4]}))
"""


def test_matplotlib_loaded_ahead_draws_the_same_plot():
    """Loading matplotlib on a thread ahead of the first page changes nothing on the page."""
    plots = {mode: subprocess.run([sys.executable, '-c', DRAW_ONE_PLOT, mode], capture_output=True, text=True,
                                  check=True, cwd=REPO_ROOT).stdout.strip() for mode in ('cold', 'warm')}
    assert_png(plots['cold'])
    assert plots['warm'] == plots['cold']


def test_rejected_submission_says_why():
    page = feedback_html.student_page(report_with([], status='rejected', error='not JSON ' + HOSTILE))
    assert 'could not be graded' in page
    assert 'not JSON &lt;script&gt;' in page


def test_score_table_lists_every_item_and_manual_items_are_pending():
    tests = [check(grade_id='tanh_fprop', status='passed', score=2.0, max_score=2.0),
             check(grade_id='deeper_models_answer', kind='manual', status='pending', max_score=3.0,
                   target='Exercise 2 written answers')]
    page = feedback_html.student_page(report_with(tests))
    assert '<td>tanh_fprop</td>' in page and '<td>deeper_models_answer</td>' in page
    assert 'graded by your instructor' in page
    assert 'Every automatic check passed' in page


def _class(spec):
    good = report_with([check(grade_id='tanh_fprop', status='passed', score=2.0, max_score=2.0)],
                       student='bob')
    bad = report_with([check(diagnosis='looks like <1 - y>', output='wrong')], student='<b>eve</b>')
    rejected = report_with([], student='oscar', status='rejected', error='empty file')
    reports = [good, bad, rejected]
    return reports, class_summary(spec, reports, 3.0, 3)


def test_summary_page_has_histogram_pass_rates_diagnoses_and_escaped_links():
    spec = load_spec(ASSIGNMENT, REPO_ROOT)
    reports, summary = _class(spec)
    page = feedback_html.summary_page(spec, reports, summary)
    assert_png(data_uris(page)[0])
    for item in spec.items:
        assert '<td>{0}</td>'.format(item.grade_id) in page
    assert 'looks like &lt;1 - y&gt;' in page
    links = [attrs['href'] for tag, attrs in tags_of(page) if tag == 'a']
    assert 'bob.html' in links
    assert '%3Cb%3Eeve%3C/b%3E.html' in links
    assert '<b>eve</b>' not in page
    assert 'empty file' in page


def test_write_report_files_writes_html_next_to_json(tmp_path):
    report = report_with([check(kind='training', details=training_details())])
    write_report_files(tmp_path, report)
    assert json.loads((tmp_path / 'alice.json').read_text())['student'] == 'alice'
    page = (tmp_path / 'alice.html').read_text(encoding='utf-8')
    assert page.startswith('<!DOCTYPE html>')
    assert_png(data_uris(page)[0])


def test_grade_batch_writes_student_pages_and_the_class_summary(tmp_path):
    spec = load_spec(ASSIGNMENT, REPO_ROOT)
    broken = tmp_path / 'oscar.ipynb'
    broken.write_text('not a notebook', encoding='utf-8')
    out = tmp_path / 'grades'
    grade_batch(spec, [Submission('oscar', broken)], out, workers=1, progress=False)
    assert 'could not be graded' in (out / 'oscar.html').read_text(encoding='utf-8')
    assert 'Class summary' in (out / 'summary.html').read_text(encoding='utf-8')


@pytest.mark.skipif(shutil.which('chromium') is None, reason='chromium is not installed')
def test_pages_render_in_headless_chromium(tmp_path):
    spec = load_spec(ASSIGNMENT, REPO_ROOT)
    reports, summary = _class(spec)
    page = tmp_path / 'carol.html'
    page.write_text(feedback_html.student_page(report_with(
        [check(kind='training', details=training_details())])), encoding='utf-8')
    (tmp_path / 'summary.html').write_text(feedback_html.summary_page(spec, reports, summary),
                                           encoding='utf-8')
    script = REPO_ROOT / 'scripts' / 'screenshot_feedback.sh'
    done = subprocess.run(['sh', str(script), str(tmp_path / 'shots'), str(page), str(tmp_path / 'summary.html')],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    for name in ('carol.png', 'summary.png'):
        shot = (tmp_path / 'shots' / name).read_bytes()
        assert shot.startswith(PNG_MAGIC) and len(shot) > 10000
