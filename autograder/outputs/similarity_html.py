"""The instructor's similarity pages: an overview of the class, and two submissions side by side.

TRUSTED, in the grading parent. Like the feedback pages
(:mod:`autograder.outputs.feedback_html`, whose page frame and style are reused)
every page is one offline file: inline CSS, no scripts, and a
Content-Security-Policy that forbids loading or running anything. Everything a
submission or a known source controls (student ids, file and folder names,
code, unit names) goes through ``html.escape``; links are built from page
numbers only. These pages are for the instructor: no student page links to
them.

Files: ``similarity.html`` (clusters, pairs, known-source matches, matches too
short to mean anything, files not compared or compared in part) and ``similarity/pair-NNNN.html``,
``similarity/known-NNNN.html`` (one per listed match: both sides' graded code
with line numbers of the notebook, given lines dimmed, matched regions
highlighted and numbered).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autograder.outputs.feedback_html import _e, _page

if TYPE_CHECKING:
    from autograder.similarity.command import SimilarityRun
    from autograder.similarity.matching import Document, Match

__all__ = ['PAGES_FOLDER', 'overview_page', 'pair_pages']

#: Folder (beside similarity.html) of the side-by-side pages.
PAGES_FOLDER = 'similarity'

#: Most side-by-side pages written per kind (pairs, known matches), best scores first.
MAX_PAGES = 2000

#: Most rows in each table of matches too short to mean anything.
MAX_SHORT_ROWS = 200

_REGION_COLOURS = 6

_STYLE = """
.sides{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
.code{border-collapse:collapse;width:100%;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.8rem}
.code td{border:none;padding:0 .4rem;white-space:pre-wrap;word-break:break-all}
.code td.ln{color:#8a93a6;text-align:right;white-space:nowrap;width:6rem}
.code tr.given td.src{color:#9aa3b5}.code tr.unit td{background:#f2f4f8;font-weight:600;padding:.2rem .4rem}
.code td.rg{width:1.5rem;color:#5a6477;font-size:.7rem}
.m0 td.src{background:#ffe8a3}.m1 td.src{background:#c8ecff}.m2 td.src{background:#d7f5dd}
.m3 td.src{background:#f9d5ec}.m4 td.src{background:#e3dcff}.m5 td.src{background:#ffd9c2}
.short{color:#7a5600}.note{color:#5a6477;font-size:.9rem}
"""


def _percent(value: float) -> str:
    return '{0:.0f}%'.format(100 * value)


def _bar(score: float) -> str:
    return '<span class="bar"><span style="width:{0:.0f}%"></span></span> {1}'.format(
        100 * max(0.0, min(1.0, score)), _percent(score))


def _page_names(run: SimilarityRun) -> tuple[dict[int, str], dict[int, str]]:
    pairs = {index: 'pair-{0:04d}.html'.format(index + 1)
             for index in range(min(len(run.result.pairs), MAX_PAGES))}
    known = {index: 'known-{0:04d}.html'.format(index + 1)
             for index in range(min(len(run.result.known), MAX_PAGES))}
    return pairs, known


def _link(name: str | None) -> str:
    """A link to a side-by-side page (file names are made here from numbers only)."""
    if name is None:
        return '<span class="note">no page</span>'
    return '<a href="{0}/{1}">side by side</a>'.format(PAGES_FOLDER, name)


def _match_rows(matches: list[tuple[int, Match]], pages: dict[int, str], known: bool) -> list[str]:
    rows = ['<table><tr><th>student</th><th>{0}</th><th>score</th><th>shared tokens</th>'
            '<th>share of each</th><th>note</th><th></th></tr>'.format('source' if known else 'student')]
    for index, match in matches:
        rows.append('<tr><td>{0}</td><td>{1}</td><td>{2}</td><td class="num">{3}</td>'
                    '<td class="num">{4} / {5}</td><td>{6}</td><td>{7}</td></tr>'.format(
                        _e(match.a), _e(match.b), _bar(match.score), match.matched_tokens,
                        _percent(match.a_fraction), _percent(match.b_fraction), _e(match.note),
                        _link(pages.get(index))))
    rows.append('</table>')
    return rows


def overview_page(run: SimilarityRun) -> str:
    """``similarity.html``: clusters, pairs, known-source matches, short matches, skipped files."""
    result, settings = run.result, run.settings
    pair_pages_, known_pages = _page_names(run)
    pairs = list(enumerate(result.pairs))
    known = list(enumerate(result.known))
    body = ['<h1>Shared code: {0}</h1>'.format(_e(run.assignment)),
            '<div class="meta">{0} submissions compared, {1} not compared &middot; {2} '
            '&middot; threshold {3} &middot; a match needs {4} shared tokens &middot; {5} s</div>'.format(
                len(run.students), sum(1 for s in run.skipped if not s.get('known')),
                '1 known source' if len(run.known) == 1 else '{0} known sources'.format(len(run.known)),
                _percent(settings.threshold), settings.min_tokens, _e(run.seconds.get('total'))),
            '<p>Only the code students wrote for the graded classes and functions is compared: what '
            'the release gave them (skeleton, docstrings, <code>raise NotImplementedError</code>) is '
            'left out, and comments, names, layout and the order of commutative operands do not '
            'matter. A score is the share of both submissions\' code that the other also has. A high '
            'score is a reason to look, not a proof: read the code side by side.</p>']

    body.append('<h2>Clusters</h2>')
    if run.groups:
        known_of: dict[str, set[str]] = {}
        for match in result.known:
            if match.meaningful:
                known_of.setdefault(match.a, set()).add(match.b)
        body.append('<table><tr><th>#</th><th>submissions</th><th>pairs</th><th>also matches</th></tr>')
        for number, members in enumerate(run.groups, 1):
            inside = set(members)
            links = ['{0} &ndash; {1}: {2} ({3})'.format(_e(m.a), _e(m.b), _percent(m.score),
                                                         _link(pair_pages_.get(i)))
                     for i, m in pairs if m.meaningful and m.a in inside and m.b in inside]
            sources = sorted(set().union(*(known_of.get(member, set()) for member in members)))
            body.append('<tr><td class="num">{0}</td><td>{1}</td><td>{2}</td><td>{3}</td></tr>'.format(
                number, _e(', '.join(members)), '<br>'.join(links), _e(', '.join(sources)) or '&ndash;'))
        body.append('</table>')
    else:
        body.append('<p>No two submissions share enough student-written code to form a cluster.</p>')

    meaningful_pairs = [(i, m) for i, m in pairs if m.meaningful]
    body.append('<h2>Pairs at or above the threshold</h2>')
    body += (_match_rows(meaningful_pairs, pair_pages_, known=False) if meaningful_pairs
             else ['<p>None.</p>'])

    meaningful_known = [(i, m) for i, m in known if m.meaningful]
    body.append('<h2>Matches with known sources</h2>')
    body.append('<p class="note">Known sources: {0}.</p>'.format(
        _e(', '.join(document.name for document in run.known)) or 'none'))
    body += (_match_rows(meaningful_known, known_pages, known=True) if meaningful_known
             else ['<p>None.</p>'])

    short_pairs = [(i, m) for i, m in pairs if not m.meaningful]
    short_known = [(i, m) for i, m in known if not m.meaningful]
    if short_pairs or short_known:
        body.append('<h2>Matches too short to mean anything</h2>')
        body.append('<p class="short">These reach the threshold, but the code they share is fewer than '
                    '{0} normalised tokens: short methods are often written alike by students working '
                    'alone, so they form no cluster.</p>'.format(settings.min_tokens))
        for title, rows, pages, is_known in (('between submissions', short_pairs, pair_pages_, False),
                                             ('with known sources', short_known, known_pages, True)):
            if rows:
                body.append('<details><summary>{0} {1}{2}</summary>'.format(
                    len(rows), title, ' (first {0} shown)'.format(MAX_SHORT_ROWS)
                    if len(rows) > MAX_SHORT_ROWS else ''))
                body += _match_rows(rows[:MAX_SHORT_ROWS], pages, known=is_known)
                body.append('</details>')

    noted = [document for document in run.students + run.known if document.code.notes]
    if run.skipped or noted:
        body.append('<h2>Not compared, or not all of it</h2><table><tr><th>file</th><th>why</th></tr>')
        body += ['<tr><td>{0}{1}</td><td>{2}</td></tr>'.format(
            _e(entry['name']), ' (known source)' if entry.get('known') else '', _e(entry['reason']))
            for entry in run.skipped]
        body += ['<tr><td>{0}</td><td>{1}</td></tr>'.format(_e(document.name), _e(' '.join(document.code.notes)))
                 for document in noted]
        body.append('</table>')
    silent = sum(1 for document in run.students if not document.comparable)
    if silent:
        body.append('<p class="note">{0} of the compared submissions hold no student-written code long '
                    'enough to compare (an untouched skeleton, or only one-line methods).</p>'.format(silent))
    body.append('<footer>Winnowed fingerprints of normalised tokens (k = {0}, window {1}); code found in '
                'more than {2} submissions ({3} fingerprints) counts as common and links no pair. '
                'Nothing here is shown to students.</footer>'.format(
                    settings.k, settings.window, result.common_cutoff, result.common_fingerprints))
    return _page('Shared code: {0}'.format(run.assignment), body, _STYLE)


def pair_pages(run: SimilarityRun) -> dict[str, str]:
    """The side-by-side pages, by file name (inside :data:`PAGES_FOLDER`)."""
    pair_names, known_names = _page_names(run)
    pages = {}
    for index, name in pair_names.items():
        match = run.result.pairs[index]
        pages[name] = side_by_side(run, match, run.document(match.a), run.document(match.b))
    for index, name in known_names.items():
        match = run.result.known[index]
        pages[name] = side_by_side(run, match, run.document(match.a), run.document(match.b, known=True))
    return pages


def side_by_side(run: SimilarityRun, match: Match, a: Document, b: Document) -> str:
    """Both documents' graded code, matched regions highlighted and numbered alike on both sides."""
    body = ['<p><a href="../similarity.html">&larr; all matches</a></p>',
            '<h1>{0} and {1}</h1>'.format(_e(match.a), _e(match.b)),
            '<div class="score">{0}</div>'.format(_percent(match.score)),
            '<div class="meta">{0} shared tokens; {1} of {2}\'s code ({3} tokens) and {4} of {5}\'s '
            '({6} tokens that can be compared)</div>'.format(match.matched_tokens, _percent(match.a_fraction), _e(match.a),
                                        match.a_tokens, _percent(match.b_fraction), _e(match.b),
                                        match.b_tokens)]
    if match.note:
        body.append('<p class="short">{0}.</p>'.format(_e(match.note[:1].upper() + match.note[1:])))
    body.append('<p class="note">Highlighted: regions found in both, numbered alike on both sides. '
                'Dimmed: lines that hold no student-written code (given by the release, docstrings, '
                'comments).</p>')
    body.append('<div class="sides">')
    body.append(_listing(a, [(r.a_start, r.a_end) for r in match.regions], match.a))
    body.append(_listing(b, [(r.b_start, r.b_end) for r in match.regions], match.b))
    body.append('</div>')
    return _page('Shared code: {0} and {1}'.format(match.a, match.b), body,
                 _STYLE + 'body{max-width:120rem}')


def _listing(document: Document, regions: list[tuple[int, int]], title: str) -> str:
    region_of_row: dict[int, int] = {}
    for number, (start, end) in enumerate(regions):
        for row in document.code.token_rows[start:end]:
            region_of_row.setdefault(row, number)
    parts = ['<div><h2>{0}</h2><table class="code">'.format(_e(title))]
    unit = None
    for index, row in enumerate(document.code.rows):
        if row.unit != unit:
            unit = row.unit
            parts.append('<tr class="unit"><td colspan="3">{0} (cell {1})</td></tr>'.format(
                _e(unit), row.cell))
        region = region_of_row.get(index)
        css = 'm{0}'.format(region % _REGION_COLOURS) if region is not None else (
            '' if row.written else 'given')
        parts.append('<tr class="{0}"><td class="ln">{1}</td><td class="rg">{2}</td>'
                     '<td class="src">{3}</td></tr>'.format(
                         css, row.line, '' if region is None else region + 1, _e(row.text)))
    if not document.code.rows:
        parts.append('<tr><td>No graded class or function was found.</td></tr>')
    parts.append('</table></div>')
    return ''.join(parts)
