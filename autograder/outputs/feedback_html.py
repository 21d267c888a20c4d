"""Feedback people want to read: a self-contained HTML page per student and one for the class.

TRUSTED. Runs in the grading parent, from the in-memory `Report`s (whose
`CheckResult.details` carry the training curves that the JSON report omits).
Every page is one file that opens offline: inline CSS, plots embedded as
base64 PNG data URIs, no scripts, and a Content-Security-Policy that forbids
loading or running anything. Every piece of text that a submission can
influence (student id, file name, check output, grader notes) goes through
`html.escape`, so a student id or an output containing `<script>` is shown,
never run.

Plots are drawn with matplotlib's object API on the Agg canvas
(`matplotlib.figure.Figure`), never `pyplot`, so no global state is touched
and no display is needed.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import math
import re
import threading
import warnings
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from autograder.results import CheckResult, Report
from autograder.course.spec import AssignmentSpec

_STATUS_LABEL = {'passed': 'pass', 'failed': 'fail', 'error': 'error', 'timeout': 'timeout',
                 'pending': 'pending'}

# Matches the got/expected part of a comparison message for a visible case,
# e.g. "wrong values at [1, 2]: got 15.37, expected 7.116 (max abs error ...".
_GOT_EXPECTED = re.compile(
    r'at (?P<where>\[[0-9, ]*\]): got (?P<got>[^,\s]+), expected (?P<expected>[^\s(]+)')

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:60rem;
color:#1d2433;line-height:1.45;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d8dde6}
.meta{color:#5a6477;font-size:.9rem}.score{font-size:2rem;font-weight:700;margin:.6rem 0}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #d8dde6;padding:.3rem .6rem;text-align:left;
vertical-align:top}th{background:#f2f4f8}td.num{text-align:right;font-variant-numeric:tabular-nums;
white-space:nowrap}
.badge{display:inline-block;padding:0 .5rem;border-radius:.6rem;font-size:.8rem;font-weight:600}
.pass{background:#d7f5dd;color:#12632a}.fail,.error,.timeout{background:#fde2e1;color:#9b1c1c}
.pending{background:#fff1c2;color:#7a5600}.rejected{background:#fde2e1;color:#9b1c1c}
.check{border:1px solid #d8dde6;border-left:4px solid #c62828;border-radius:4px;padding:.6rem .8rem;margin:.8rem 0}
.check.ok{border-left-color:#2e7d32}.check h3{font-size:1rem;margin:0 0 .3rem}
.output{white-space:pre-wrap;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem;
background:#f7f8fa;padding:.4rem .6rem;border-radius:3px;margin:.3rem 0}
.hint{background:#eef4ff;padding:.4rem .6rem;border-radius:3px}
.bar{background:#e6e9ef;width:12rem;height:.8rem;border-radius:.4rem;overflow:hidden;display:inline-block;
vertical-align:middle}.bar span{display:block;height:100%;background:#3b6fd8}
img{max-width:100%}footer{margin-top:2.5rem;color:#5a6477;font-size:.85rem}
"""


def _e(text) -> str:
    """Escapes any value for HTML text and attribute contexts."""
    return html.escape(str(text), quote=True)


def _points(value: float) -> str:
    return '{0:g}'.format(round(float(value), 2))


def _page(title: str, body: list[str], extra_style: str = '') -> str:
    return '\n'.join([
        '<!DOCTYPE html>',
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        'img-src data:; style-src \'unsafe-inline\'">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<title>{0}</title><style>{1}{2}</style></head><body>'.format(_e(title), _STYLE, extra_style),
        *body,
        '</body></html>', ''])


def _badge(status: str) -> str:
    label = _STATUS_LABEL.get(status, status)
    css = label if label in ('pass', 'fail', 'error', 'timeout', 'pending') else 'error'
    return '<span class="badge {0}">{1}</span>'.format(css, _e(label))


_warming_lock = threading.Lock()
_warming: threading.Thread | None = None


def start_loading_matplotlib() -> None:
    """Import matplotlib and draw a first figure on a thread of its own, once per process.

    The first plot of a process costs about 0.5 s (the import, then the
    fonts and the Agg renderer on first use), most of a small class's
    start-up. A grader calls this before its first submission: the thread
    runs while that submission's sandbox works on the other core (the parent
    mostly waits for it then), and every drawing first waits for the thread
    (`_matplotlib_loaded`), so no two threads ever use matplotlib at once;
    so does the class page, so that a run never ends while the thread imports.
    """
    global _warming
    with _warming_lock:
        if _warming is None:
            _warming = threading.Thread(target=_plot_or_nothing(_first_drawing), daemon=True,
                                        name='matplotlib-loader')
            _warming.start()


def _first_drawing() -> str:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1.0, 1.0))
    axes = figure.add_subplot()
    axes.plot([1, 2], [1.0, 0.5], marker='o', label='warm-up')
    axes.set_xlabel('epoch')
    axes.legend(frameon=False)
    return _png_data_uri(figure)


def _matplotlib_loaded() -> None:
    """Waits for `start_loading_matplotlib`'s thread, if one was started."""
    with _warming_lock:
        warming = _warming
    if warming is not None:
        warming.join()


def _png_data_uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=100, bbox_inches='tight')
    return 'data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode('ascii')


def _plot_or_nothing(draw):
    """Wraps a plot function: a plot matplotlib cannot draw gives no plot, never a failed page.

    The values drawn come from a sandbox (training errors: any finite float64,
    1e308 included), and matplotlib raises on some of them while laying out
    the axes or rendering.
    """
    @functools.wraps(draw)
    def drawn(*args, **kwargs) -> str:
        try:
            with warnings.catch_warnings():  # overflow warnings from matplotlib's layout
                warnings.simplefilter('ignore')
                return draw(*args, **kwargs)
        except Exception:  # noqa: BLE001 - the page is written without the plot
            return ''
    return drawn


def _finite(values) -> list[tuple[int, float]]:
    points = []
    for index, value in enumerate(values or []):
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            points.append((index + 1, number))
    return points


#: Training errors are drawn rounded to this many significant digits: far below
#: a pixel, and enough for the curves of every correct submission of a class
#: (the same seeded run up to rounding) to share one drawing.
PLOT_DIGITS = 5


def training_plot(details: dict) -> str:
    """A PNG data URI of the training error per epoch: the student's layer against the reference.

    Drawing costs about 0.1 s; the same curves are drawn once per process
    (`_training_plot_of`), so a class whose runs follow the reference pays it
    once, not per student.

    Args:
        details: A training check's `CheckResult.details`, with 'student_errors'
            and 'reference_errors' (one training-set error per epoch).

    Returns:
        'data:image/png;base64,...', or '' when there is nothing to draw or
        matplotlib cannot draw it. Non-finite errors (a diverged run) are
        left out of the curve.
    """
    return _training_plot_of(_rounded_points(details.get('student_errors')),
                             _rounded_points(details.get('reference_errors')))


def _rounded_points(values) -> tuple[tuple[int, float], ...]:
    return tuple((epoch, float('{0:.{1}g}'.format(value, PLOT_DIGITS))) for epoch, value in _finite(values))


@functools.lru_cache(maxsize=256)
@_plot_or_nothing
def _training_plot_of(student: tuple[tuple[int, float], ...], reference: tuple[tuple[int, float], ...]) -> str:
    """The drawing behind `training_plot`, of (epoch, error) points."""
    if not student and not reference:
        return ''
    _matplotlib_loaded()
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.0, 2.8))
    axes = figure.add_subplot()
    if student:
        axes.plot(*zip(*student), marker='o', color='#3b6fd8', linewidth=2.5, label='your layer')
    if reference:  # drawn on top, dashed, so it stays visible where the curves coincide
        axes.plot(*zip(*reference), marker='x', color='#d9822b', linestyle='--', label='reference layer')
    axes.set_xlabel('epoch')
    axes.set_ylabel('training error (cross-entropy)')
    epochs = sorted({x for x, _ in student + reference})
    axes.set_xticks(epochs)
    axes.grid(alpha=0.3)
    axes.legend(frameon=False)
    return _png_data_uri(figure)


def _got_expected_table(test: CheckResult) -> str:
    """Expected against got for a visible case (never for hidden ones)."""
    if not test.public:
        return ''
    details = test.details or {}
    if 'got' in details and 'expected' in details:
        return ('<table><tr><th></th><th>your value</th><th>expected</th></tr>'
                '<tr><th>{0}</th><td class="output">{1}</td><td class="output">{2}</td></tr></table>'.format(
                    _e(details.get('where', 'value')), _e(details['got']), _e(details['expected'])))
    match = _GOT_EXPECTED.search(test.output or '')
    if not match:
        return ''
    return ('<table><tr><th>entry</th><th>your value</th><th>expected</th></tr>'
            '<tr><td>{0}</td><td class="num">{1}</td><td class="num">{2}</td></tr></table>'.format(
                _e(match['where']), _e(match['got']), _e(match['expected'].rstrip('.,;'))))


def _training_block(test: CheckResult) -> list[str]:
    details = test.details or {}
    parts = []
    accuracies = []
    if 'student_accuracy' in details:
        accuracies.append('your layer {0:.1%}'.format(float(details['student_accuracy'])))
    if 'reference_accuracy' in details:
        accuracies.append('reference {0:.1%}'.format(float(details['reference_accuracy'])))
    if accuracies:
        parts.append('<p>Held-out accuracy: {0}.</p>'.format(_e(', '.join(accuracies))))
    uri = training_plot(details)
    if uri:
        parts.append('<img alt="training error per epoch, your layer against the reference" '
                     'src="{0}">'.format(uri))
    return parts


def _check_block(test: CheckResult) -> list[str]:
    ok = test.status == 'passed'
    parts = ['<div class="check{0}">'.format(' ok' if ok else ''),
             '<h3>{0} {1} <span class="meta">({2}, {3} / {4} points)</span></h3>'.format(
                 _badge(test.status), _e(test.target), _e(test.kind), _points(test.score),
                 _points(test.max_score)),
             '<div>{0}</div>'.format(_e(test.name))]
    if test.output:
        parts.append('<div class="output">{0}</div>'.format(_e(test.output)))
    parts.append(_got_expected_table(test))
    if test.diagnosis and test.diagnosis not in (test.output or ''):
        parts.append('<div class="hint">Likely cause: {0}</div>'.format(_e(test.diagnosis)))
    if test.kind == 'training':
        parts.extend(_training_block(test))
    parts.append('</div>')
    return [part for part in parts if part]


def _items(report: Report) -> dict[str, list[CheckResult]]:
    by_item: dict[str, list[CheckResult]] = {}
    for test in report.tests:
        by_item.setdefault(test.grade_id, []).append(test)
    return by_item


def _score_table(report: Report) -> list[str]:
    rows = ['<table><tr><th>item</th><th>what</th><th>points</th><th>checks passed</th></tr>']
    for grade_id, tests in _items(report).items():
        earned = sum(t.score for t in tests)
        available = sum(t.max_score for t in tests)
        if tests[0].kind == 'manual':
            passed = _badge('pending') + ' graded by your instructor'
        else:
            count = sum(t.status == 'passed' for t in tests)
            passed = '{0} of {1} {2}'.format(count, len(tests),
                                             _badge('passed' if count == len(tests) else 'failed'))
        rows.append('<tr><td>{0}</td><td>{1}</td><td class="num">{2} / {3}</td><td>{4}</td></tr>'.format(
            _e(grade_id), _e(tests[0].target), _points(earned), _points(available), passed))
    rows.append('</table>')
    return rows


def student_page(report: Report) -> str:
    """The HTML feedback page of one submission.

    Args:
        report: The submission's report (in memory, so training curves are
            available; a report read back from JSON gives a page without plots).

    Returns:
        A complete, self-contained HTML document.
    """
    body = ['<h1>Feedback: {0}</h1>'.format(_e(report.assignment)),
            '<div class="meta">Student: <b>{0}</b> &middot; submission {1} (sha256 {2}&hellip;)</div>'.format(
                _e(report.student), _e(Path(report.submission).name), _e(report.sha256[:12]))]
    if report.status == 'rejected':
        body += ['<div class="score">0 / {0} <span class="badge rejected">not graded</span></div>'.format(
                     _points(report.max_score)),
                 '<p><b>Your file could not be graded.</b></p>',
                 '<div class="output">{0}</div>'.format(_e(report.error))]
    elif report.status == 'error':
        body += ['<div class="score">0 / {0} <span class="badge error">grader error</span></div>'.format(
                     _points(report.max_score)),
                 '<p><b>The grader failed on your file; this is not a problem with your work.</b> '
                 'Your instructor has been told and it will be graded again.</p>',
                 '<div class="output">{0}</div>'.format(_e(report.error))]
    else:
        body.append('<div class="score">{0} / {1}</div>'.format(_points(report.score),
                                                                 _points(report.max_score)))
        body += _score_table(report)
        automatic = [t for t in report.tests if t.kind != 'manual']
        problems = [t for t in automatic if t.status != 'passed']
        body.append('<h2>What to look at</h2>' if problems else
                    '<h2>Every automatic check passed</h2>')
        for test in problems:
            body += _check_block(test)
        passed_training = [t for t in automatic if t.kind == 'training' and t.status == 'passed']
        if passed_training:
            body.append('<h2>Training runs</h2>')
            for test in passed_training:
                body += _check_block(test)
    if report.notes:
        body.append('<h2>Notes from the grader</h2><ul>')
        body += ['<li>{0}</li>'.format(_e(note)) for note in report.notes]
        body.append('</ul>')
    body.append('<footer>Hidden test cases are summarised, not shown. Run '
                '<code>mlp-autograde check &lt;notebook&gt;</code> to rerun the public checks yourself. '
                'Isolation: {0}.</footer>'.format(_e(report.isolation)))
    return _page('Feedback {0}: {1}'.format(report.assignment, report.student), body)


@_plot_or_nothing
def _histogram_plot(summary: dict) -> str:
    bins = summary.get('scores', {}).get('histogram') or []
    if not bins:
        return ''
    _matplotlib_loaded()
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 2.8))
    axes = figure.add_subplot()
    lefts = [b['from'] for b in bins]
    widths = [b['to'] - b['from'] for b in bins]
    axes.bar(lefts, [b['count'] for b in bins], width=widths, align='edge', color='#3b6fd8',
             edgecolor='white')
    axes.set_xlabel('score (of {0:g})'.format(summary.get('max_score') or 0))
    axes.set_ylabel('students')
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.grid(axis='y', alpha=0.3)
    return _png_data_uri(figure)


def summary_page(spec: AssignmentSpec, reports: list[Report], summary: dict,
                 links: tuple[tuple[str, str], ...] = ()) -> str:
    """The instructor's class summary: score histogram, pass rate per item, common diagnoses.

    Args:
        spec: The assignment's grading spec.
        reports: Every report of the grade directory.
        summary: The dict written to summary.json (`report.summary`).
        links: (relative URL, label) of other instructor pages in the grade
            directory, e.g. the similarity report.

    Returns:
        A complete, self-contained HTML document linking to each student's page.
    """
    _matplotlib_loaded()  # the loading thread, if any, ends before the run does
    scores = summary.get('scores', {})
    body = ['<h1>Class summary: {0}</h1>'.format(_e(spec.name)),
            '<div class="meta">{0} submissions: {1} graded, {2} rejected &middot; isolation {3}</div>'.format(
                summary.get('submissions', len(reports)), summary.get('graded', 0),
                summary.get('rejected', 0), _e(', '.join(summary.get('isolation') or []) or 'n/a'))]
    if links:
        body.append('<p>{0}</p>'.format(' &middot; '.join(
            '<a href="{0}">{1}</a>'.format(_e(quote(url)), _e(label)) for url, label in links)))
    if scores.get('mean') is not None:
        body.append('<p>Mean {0}, median {1}, min {2}, max {3} (of {4}).</p>'.format(
            *(_points(scores[k]) for k in ('mean', 'median', 'min', 'max')), _points(spec.max_score)))
    uri = _histogram_plot(summary)
    if uri:
        body += ['<h2>Scores</h2>', '<img alt="histogram of scores" src="{0}">'.format(uri)]
    body += ['<h2>Pass rate per item</h2>',
             '<table><tr><th>item</th><th>target</th><th>points</th><th>checks passed</th></tr>']
    rates = summary.get('item_pass_rates', {})
    for item in spec.items:
        if item.grade_id in rates:
            rate = float(rates[item.grade_id])
            cell = '<span class="bar"><span style="width:{0:.0f}%"></span></span> {0:.0f}%'.format(100 * rate)
        else:
            cell = _badge('pending') + ' graded by hand'
        body.append('<tr><td>{0}</td><td>{1}</td><td class="num">{2}</td><td>{3}</td></tr>'.format(
            _e(item.grade_id), _e(item.target), _points(item.points), cell))
    body.append('</table>')
    diagnoses = summary.get('common_diagnoses') or []
    body.append('<h2>Most common diagnoses</h2>')
    if diagnoses:
        body.append('<table><tr><th>diagnosis</th><th>checks</th></tr>')
        body += ['<tr><td>{0}</td><td class="num">{1}</td></tr>'.format(_e(d['diagnosis']), int(d['count']))
                 for d in diagnoses]
        body.append('</table>')
    else:
        body.append('<p>No common mistake was recognised.</p>')
    failing = Counter(t.target for r in reports if r.status == 'graded' for t in r.tests
                      if t.status in ('failed', 'error', 'timeout'))
    if failing:
        body.append('<h2>Failed checks by target</h2><table><tr><th>target</th><th>failed checks</th></tr>')
        body += ['<tr><td>{0}</td><td class="num">{1}</td></tr>'.format(_e(target), count)
                 for target, count in failing.most_common()]
        body.append('</table>')
    body += ['<h2>Students</h2>',
             '<table><tr><th>student</th><th>score</th><th>status</th><th>remark</th></tr>']
    for report in sorted(reports, key=lambda r: r.student):
        link = '<a href="{0}.html">{1}</a>'.format(_e(quote(report.student)), _e(report.student))
        remark = report.error if report.status in ('rejected', 'error') else ''
        body.append('<tr><td>{0}</td><td class="num">{1} / {2}</td><td>{3}</td><td>{4}</td></tr>'.format(
            link, _points(report.score), _points(report.max_score), _e(report.status), _e(remark)))
    body.append('</table>')
    timing = summary.get('timing', {})
    body.append('<footer>Graded in {0} s of wall time; {1} s per submission on average.</footer>'.format(
        _e(timing.get('wall_seconds')), _e(timing.get('mean_seconds_per_submission'))))
    return _page('Class summary: {0}'.format(spec.name), body)
