"""The audit page (`audit.html`): is the grading of an assignment complete and fair?

TRUSTED. Written by the grading parent from an `AuditResult`, in the style
of the class summary page and with its safeguards: one self-contained file,
inline CSS, no scripts, a Content-Security-Policy that forbids loading or
running anything, and every piece of text (targets, diffs, check outputs
that came from a sandboxed run) escaped with `html.escape`.
"""

from __future__ import annotations

from autograder.outputs.feedback_html import _e, _page, _points

_STATUS_CSS = {'killed': 'pass', 'kept': 'pass', 'equivalent': 'pending', 'survived': 'fail', 'lost': 'fail'}


def _badge(status: str) -> str:
    return '<span class="badge {0}">{1}</span>'.format(_STATUS_CSS.get(status, 'error'), _e(status))


def _count(value: int, bad: bool) -> str:
    return '<td class="num">{0}</td>'.format(_badge(str(value)) if bad and value else _e(value))


def audit_page(result) -> str:
    """The audit of one assignment as a complete, self-contained HTML document.

    Args:
        result: An `autograder.audit.run.AuditResult`.
    """
    totals = result.totals()
    body = ['<h1>Audit: {0}</h1>'.format(_e(result.assignment)),
            '<div class="meta">{0} mutants, {1} fairness probes &middot; isolation {2} &middot; '
            '{3} worker(s) &middot; {4:.1f} s</div>'.format(totals['mutants'], totals['probes'],
                                                           _e(result.isolation), result.workers,
                                                           result.wall_seconds),
            '<p class="score">{0}</p>'.format(_badge('killed') + ' complete and fair' if result.clean else
                                              _badge('survived') + ' {0} surviving mutant(s), {1} lost '
                                              'probe(s)'.format(totals['survived'], totals['lost'])),
            '<p>The solution scores {0} of {1} automatic points. A mutant is one small wrong change of '
            'the solution and should lose points (<em>killed</em>); one that keeps full marks and '
            'differs from the reference on dense probes <em>survived</em> (a gap in the grading); one '
            'that agrees with the reference everywhere is <em>equivalent</em>. A fairness probe is a '
            'correct rewrite and must keep full marks.</p>'.format(
                _points(result.baseline_points), _points(result.max_points)),
            '<h2>Per graded item</h2>',
            '<table><tr><th>item</th><th>target</th><th>points</th><th>mutants</th><th>killed</th>'
            '<th>survived</th><th>equivalent</th><th>kills</th><th>probes</th><th>lost</th></tr>']
    for row in result.items:
        body.append('<tr><td>{0}</td><td>{1}</td><td class="num">{2}</td><td class="num">{3}</td>'
                    '<td class="num">{4}</td>{5}<td class="num">{6}</td><td class="num">{7}</td>'
                    '<td class="num">{8}</td>{9}</tr>'.format(
                        _e(row['grade_id']), _e(row['target']), _points(row['points']), row['mutants'],
                        row['killed'], _count(row['survived'], True), row['equivalent'], row['kills'],
                        row['probes'], _count(row['probes_lost'], True)))
    body.append('</table><p class="meta">kills: mutants (of any target) for which that item lost points.</p>')
    body.append('<h2>Surviving mutants</h2>')
    if not result.survivors:
        body.append('<p>None: every non-equivalent mutant lost points.</p>')
    for mutant in result.survivors:
        body += ['<div class="check"><h3>{0} {1} &middot; {2} &middot; {3}</h3>'.format(
            _badge('survived'), _e(mutant.id), _e(mutant.target), _e(mutant.operator)),
            '<p>{0}; should have failed <strong>{1}</strong>. {2}</p>'.format(
                _e(mutant.description), _e(mutant.item or 'an item of ' + mutant.target),
                _e(mutant.equivalence)),
            '<div class="output">{0}</div></div>'.format(_e(mutant.diff))]
    body.append('<h2>Fairness probes that lost points</h2>')
    if not result.lost_probes:
        body.append('<p>None: every correct rewrite kept full marks.</p>')
    for probe in result.lost_probes:
        body += ['<div class="check"><h3>{0} {1} &middot; {2}</h3>'.format(
            _badge('lost'), _e(probe.id), _e(probe.target)),
            '<p>{0}: {1} of {2} points.</p><ul>'.format(_e(probe.description), _points(probe.points),
                                                       _points(probe.max_points))]
        body += ['<li>{0}: {1} &mdash; <span class="output">{2}</span></li>'.format(
            _e(check['grade_id']), _e(check['name']), _e(check['output'])) for check in probe.failed_checks]
        body += ['</ul><div class="output">{0}</div></div>'.format(_e(probe.diff))]
    body += ['<h2>All mutants</h2>', '<table><tr><th>id</th><th>target</th><th>operator</th><th>origin</th>'
             '<th>change</th><th>status</th><th>points</th></tr>']
    body += ['<tr><td>{0}</td><td>{1}</td><td>{2}</td><td>{3}</td><td>{4}</td><td>{5}</td>'
             '<td class="num">{6}</td></tr>'.format(_e(m.id), _e(m.target), _e(m.operator), _e(m.origin),
                                                   _e(m.description), _badge(m.status), _points(m.points))
             for m in result.mutants]
    body += ['</table>', '<h2>All fairness probes</h2>',
             '<table><tr><th>id</th><th>target</th><th>rewrite</th><th>status</th><th>points</th></tr>']
    body += ['<tr><td>{0}</td><td>{1}</td><td>{2}</td><td>{3}</td><td class="num">{4}</td></tr>'.format(
        _e(p.id), _e(p.target), _e(p.description), _badge(p.status), _points(p.points)) for p in result.probes]
    body.append('</table>')
    if result.notes:
        body += ['<h2>Notes</h2>'] + ['<p>{0}</p>'.format(_e(note)) for note in result.notes]
    body.append('<footer>mlp-autograde audit; machine-readable results in audit.json.</footer>')
    return _page('Audit: {0}'.format(result.assignment), body)
