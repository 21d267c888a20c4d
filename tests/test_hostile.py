"""Hostile submissions, graded in a batch with honest ones: the sandbox must hold.

The attacks come from the catalogue in ``tests/hostile/`` (each a snippet placed
in a layer method, at module level or in a class body). For every isolation
level that works here, one batch grades the hostile submissions together with
honest ones, through the real pipeline (``batch.grade_batch``: load, extract,
sandbox, judge, write reports). Then:

* the batch finishes and every file has a report (JSON and feedback);
* the honest submissions get exactly the reports they get when graded alone;
* no hostile submission scores above the honest baseline (the same notebook
  without the attack; any leak would be turned into points, see
  ``tests/hostile/submissions.py``), and each says clearly what went wrong;
* no file outside the grade directory changed (repository, site-packages,
  the host's temporary folders), nothing is left in the grader's temporary
  folder, no process of a submission outlives the batch, and no connection
  reached the test's stand-ins for services on the grader's host.

The strongest level runs every attack; weaker levels run only those they can
contain (never ``kill(-1)`` outside a pid namespace, never a fork bomb where
RLIMIT_NPROC does not bind) and skip the others, saying why. A separate probe
per level records which capabilities (reading hidden files, reaching the host,
...) the sandbox denies.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder import batch, demo
from autograder.sandbox import isolation as sandbox
from autograder.sandbox.limits import Limits
from autograder.course.spec import load_spec
from hostile import catalogue
from hostile.catalogue import ATTACKS, CLASS_BODY, METHOD, MODULE, Attack
from hostile.probes import PROBED, Listeners, probe_capabilities, site_directories
from hostile.submissions import Targets, baseline_notebook, hostile_notebook, write

REPO_ROOT = Path(__file__).resolve().parents[1]
LAB3 = '03_multiple_layer_models'

AVAILABLE_LEVELS = [level for level in sandbox.ISOLATION_LEVELS
                    if level == 'rlimits' or sandbox._probe(level)]
STRONGEST = AVAILABLE_LEVELS[0]

#: Limits of the hostile batches: the defaults, with shorter waits and one
#: restart, so that the catalogue's hangs cost seconds, not minutes.
LIMITS = Limits(request_seconds=2.5, setup_seconds=6.0, wall_seconds=60.0, max_restarts=1)

HONEST = ('honest_solution', 'honest_moved_cells', 'honest_tanh_slip')
BASELINE = 'baseline'
COMBINED = 'combined'

#: A report larger than this is a report a hostile submission managed to bloat.
MAX_REPORT_BYTES = 256 * 1024


def nproc_binds(level: str) -> bool:
    """Whether RLIMIT_NPROC binds a sandboxed child at ``level`` on this machine."""
    return level == 'bwrap' and sandbox._bwrap_switches_uid()


def skip_reason(attack: Attack, level: str) -> str | None:
    return catalogue.skip_reason(attack, level, nproc_binds=nproc_binds(level), strongest=STRONGEST)


def student_id(attack_name: str, placement: str) -> str:
    return '{0}--{1}'.format(attack_name, placement)


def combined_attacks(level: str, placement: str) -> list[Attack]:
    """The combinable attacks that run at ``level`` and ``placement`` (one shared submission)."""
    return [attack for attack in ATTACKS if attack.combinable and placement in attack.placements
            and skip_reason(attack, level) is None]


def solo_fixtures(level: str) -> list[tuple[Attack, str]]:
    """(attack, placement) pairs that get a submission of their own at ``level``.

    Below the strongest level, an attack is tried in its first placement only
    (the sandbox's behaviour does not depend on the placement, only the
    pipeline's does, and that is covered at the strongest level).
    """
    pairs = []
    for attack in ATTACKS:
        if attack.combinable or skip_reason(attack, level) is not None:
            continue
        placements = attack.placements if level == STRONGEST else attack.placements[:1]
        pairs += [(attack, placement) for placement in placements]
    return pairs


# --------------------------------------------------------------------------
# Snapshots of everything outside the grade directory
# --------------------------------------------------------------------------

_NEVER_COMPARED = {'.git', '__pycache__', '.pytest_cache'}
#: Top-level entries of the shared temporary folders that other programs on the
#: machine, and multiprocessing's semaphores (/dev/shm/sem.mp-*), create and
#: remove at any time (this batch's own temporary files go to a private folder).
_SHARED_TEMP_CHURN = re.compile(r'^(pytest-of-|mlp-sandbox-|mlp-autograde-|tmp|pymp-|sem\.mp-|\.)')


def _signature(path: str) -> tuple[int, int] | None:
    """(size, mtime_ns) of a file or link; (0, 0) for a folder (what it holds is listed itself)."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return (0, 0) if stat.S_ISDIR(info.st_mode) else (info.st_size, info.st_mtime_ns)


def snapshot_tree(root: str) -> dict[str, tuple[int, int]]:
    """Signatures of every file and folder below ``root`` (no symlink followed)."""
    entries = {}
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in _NEVER_COMPARED]
        for name in subfolders + files:
            signature = _signature(os.path.join(folder, name))
            if signature is not None:
                entries[os.path.join(folder, name)] = signature
    return entries


def snapshot_top_level(folder: str) -> dict[str, tuple[int, int]]:
    entries = {}
    try:
        names = os.listdir(folder)
    except OSError:
        return entries
    for name in names:
        signature = None if _SHARED_TEMP_CHURN.match(name) else _signature(os.path.join(folder, name))
        if signature is not None:
            entries[os.path.join(folder, name)] = signature
    return entries


def snapshot_outside(site_dirs: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """The repository, site-packages and the top level of /tmp, /var/tmp and /dev/shm."""
    entries = snapshot_tree(str(REPO_ROOT))
    for directory in site_dirs:
        if not directory.startswith(str(REPO_ROOT)):
            entries.update(snapshot_tree(directory))
    for folder in ('/tmp', '/var/tmp', '/dev/shm'):
        entries.update(snapshot_top_level(folder))
    return entries


def differences(before: dict, after: dict) -> list[str]:
    changed = [path for path in before.keys() & after.keys() if before[path] != after[path]]
    return sorted(['created ' + p for p in after.keys() - before.keys()]
                  + ['removed ' + p for p in before.keys() - after.keys()]
                  + ['changed ' + p for p in changed])


def processes_with(fragment: str) -> list[int]:
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/{0}/cmdline'.format(entry), 'rb') as handle:
                cmdline = handle.read().replace(b'\0', b' ').decode(errors='replace')
        except OSError:
            continue
        if fragment in cmdline:
            found.append(int(entry))
    return found


# --------------------------------------------------------------------------
# Honest submissions
# --------------------------------------------------------------------------

_TANH_SLIP = '''class TanhLayer(TanhLayer):
    def bprop(self, inputs, outputs, grads_wrt_outputs):
        return grads_wrt_outputs * (1. - outputs)
'''
_EXPERIMENT = '''for hidden in [50, 100, 200]:
    model = build(hidden)
    train(model, epochs=100)
'''


def honest_notebooks(course_root: Path) -> dict[str, nbformat.NotebookNode]:
    solution = demo.solution_source(course_root, LAB3)
    moved = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell('My lab 3 work, moved into a new notebook'),
        nbformat.v4.new_code_cell('import numpy as np\nfrom mlp.layers import Layer'),
        nbformat.v4.new_code_cell(_EXPERIMENT),
        nbformat.v4.new_code_cell(solution),
        nbformat.v4.new_code_cell(_EXPERIMENT),
    ])
    return {
        'honest_solution': demo.submission_notebook(course_root, LAB3),
        'honest_moved_cells': moved,
        'honest_tanh_slip': demo.submission_notebook(course_root, LAB3, _TANH_SLIP),
    }


# --------------------------------------------------------------------------
# One hostile batch per isolation level
# --------------------------------------------------------------------------


@dataclass
class HostileRun:
    """Everything one batch at one isolation level left behind."""

    level: str
    out_dir: Path
    reports: dict[str, dict]
    alone: dict[str, dict]
    fixtures: dict[str, tuple[list[Attack], str]]
    changed_outside: list[str]
    planted: list[str]
    left_in_temp: list[str]
    stray_processes: list[int]
    connections: list[str]
    files_in_out_dir: set[str] = field(default_factory=set)


@pytest.fixture(scope='session')
def course_root(tmp_path_factory) -> Path:
    """The repository, whose release/ holds the student copy of mlp (generated if missing)."""
    if (REPO_ROOT / 'release' / LAB3 / 'mlp').is_dir():
        return REPO_ROOT
    from autograder.course.release import release_assignment
    root = tmp_path_factory.mktemp('course')
    for name in ('source', 'reference'):
        (root / name).symlink_to(REPO_ROOT / name)
    (root / 'nbgrader_config.py').write_bytes((REPO_ROOT / 'nbgrader_config.py').read_bytes())
    release_assignment(LAB3, course_root=root)
    return root


@pytest.fixture(scope='session')
def data_environment():
    """MLP_DATA_DIR for the grading workers, when the data is here (training checks need it)."""
    from conftest import MNIST_FILES, find_mnist_dir
    directory = find_mnist_dir()
    previous = os.environ.get('MLP_DATA_DIR')
    if all((directory / name).is_file() for name in MNIST_FILES):
        os.environ['MLP_DATA_DIR'] = str(directory)
    yield
    if previous is None:
        os.environ.pop('MLP_DATA_DIR', None)
    else:
        os.environ['MLP_DATA_DIR'] = previous


_RUNS: dict[str, HostileRun] = {}


def _read_reports(out_dir: Path, students: list[str]) -> dict[str, dict]:
    reports = {}
    for student in students:
        path = out_dir / '{0}.json'.format(student)
        if path.is_file():
            reports[student] = json.loads(path.read_text(encoding='utf-8'))
    return reports


def _grade(spec, folder: Path, out_dir: Path, level: str, limits: Limits, monkeypatch) -> None:
    submissions = batch.find_submissions([folder], spec.name)
    if level == STRONGEST:
        batch.grade_batch(spec, submissions, out_dir, workers=2, limits=limits, progress=False)
    else:  # forced weaker level: in this process, where the patched detection applies
        with monkeypatch.context() as patch:
            patch.setattr(sandbox, 'detect_isolation', lambda: level)
            batch.grade_batch(spec, submissions, out_dir, workers=1, limits=limits, progress=False)


def hostile_run(level: str, course_root: Path, tmp_path_factory, reachable_tmp) -> HostileRun:
    """Grade (once per session) the hostile class at ``level``; see the module docstring."""
    if level in _RUNS:
        return _RUNS[level]
    spec = load_spec(LAB3, course_root)
    base = tmp_path_factory.mktemp('hostile-' + level)
    honest_dir, class_dir, out_dir = base / 'honest', base / 'class', base / 'grades'
    private_temp = reachable_tmp.mktemp('hostile-' + level)
    for folder in (honest_dir, class_dir):
        folder.mkdir()
    listeners = Listeners(base, level)
    counter = len(_RUNS) + 1
    targets = Targets(
        repo=str(REPO_ROOT), submissions_dir=str(class_dir), out_dir=str(out_dir), victim='honest_solution',
        site_dirs=site_directories(), tcp_port=listeners.tcp_port, unix_socket=listeners.unix_path,
        abstract_socket=listeners.abstract_name, tag='{0}-{1}'.format(os.getpid(), level),
        sleep_marker='{0}.{1}'.format(7000 + os.getpid() % 1000, counter),
        grader_pidns=os.readlink('/proc/self/ns/pid'))

    fixtures: dict[str, tuple[list[Attack], str]] = {}
    for placement in (METHOD, MODULE, CLASS_BODY):
        attacks = combined_attacks(level, placement)
        if attacks:
            fixtures[student_id(COMBINED, placement)] = (attacks, placement)
    for attack, placement in solo_fixtures(level):
        fixtures[student_id(attack.name, placement)] = ([attack], placement)
    honest = dict(honest_notebooks(course_root), **{BASELINE: baseline_notebook()})
    for name, notebook in honest.items():
        write(notebook, honest_dir / '{0}.ipynb'.format(name))
        write(notebook, class_dir / '{0}.ipynb'.format(name))
    for name, (attacks, placement) in fixtures.items():
        write(hostile_notebook(attacks, placement, targets), class_dir / '{0}.ipynb'.format(name))

    previous_temp = tempfile.tempdir
    monkeypatch = pytest.MonkeyPatch()
    tempfile.tempdir = str(private_temp)
    try:
        _grade(spec, honest_dir, base / 'alone', level, LIMITS, monkeypatch)
        before = snapshot_outside(targets.site_dirs)
        _grade(spec, class_dir, out_dir, level, LIMITS, monkeypatch)
        time.sleep(0.5)  # let killed sandboxes finish dying before looking for leftovers
        after = snapshot_outside(targets.site_dirs)
    finally:
        tempfile.tempdir = previous_temp
        monkeypatch.undo()
        listeners.close()
    deadline = time.monotonic() + 5
    while processes_with('sleep ' + targets.sleep_marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    students = list(honest) + list(fixtures)
    run = HostileRun(
        level=level, out_dir=out_dir, reports=_read_reports(out_dir, students),
        alone=_read_reports(base / 'alone', list(honest)), fixtures=fixtures,
        changed_outside=differences(before, after),
        planted=sorted(path for path in after if targets.tag in path),
        left_in_temp=[str(path) for path in private_temp.rglob('*')],
        stray_processes=processes_with('sleep ' + targets.sleep_marker),
        connections=list(listeners.connections),
        files_in_out_dir={path.name for path in out_dir.iterdir()})
    _RUNS[level] = run
    return run


@pytest.fixture(scope='session', params=AVAILABLE_LEVELS)
def run(request, course_root, data_environment, tmp_path_factory, reachable_tmp) -> HostileRun:
    return hostile_run(request.param, course_root, tmp_path_factory, reachable_tmp)


def report_text(report: dict) -> str:
    """Everything a student reads in a report: error, notes and check outputs."""
    parts = [report.get('error', '')] + list(report.get('notes', []))
    parts += [test.get('output', '') for test in report.get('tests', [])]
    return '\n'.join(parts)


def check_summary(report: dict) -> list[tuple]:
    return [(test['grade_id'], test['kind'], test['name'], test['status'], test['score'])
            for test in report['tests']]


# --------------------------------------------------------------------------
# The batch as a whole
# --------------------------------------------------------------------------


def test_every_submission_gets_a_report_and_feedback(run):
    students = list(HONEST) + [BASELINE] + list(run.fixtures)
    missing = [s for s in students if s not in run.reports]
    assert not missing, 'no report for {0}'.format(missing)
    for student in students:
        feedback = run.out_dir / '{0}.md'.format(student)
        assert feedback.is_file(), student
        feedback.read_text(encoding='utf-8')  # valid UTF-8
        assert run.reports[student]['schema'] == 'mlp-autograde/report/1'
        assert run.reports[student]['isolation'] == run.level
    rows = (run.out_dir / 'grades.csv').read_text(encoding='utf-8').splitlines()
    assert len(rows) == 1 + len(students)


def test_honest_submissions_are_graded_as_if_alone(run):
    solution = run.alone['honest_solution']['tests']
    assert [t['status'] for t in solution if t['kind'] != 'manual'] == ['passed'] * (len(solution) - 1)
    for student in list(HONEST) + [BASELINE]:
        assert check_summary(run.reports[student]) == check_summary(run.alone[student]), (
            student, run.reports[student]['notes'])
        assert run.reports[student]['score'] == run.alone[student]['score'], student


def test_no_file_planted_by_an_attack_exists(run):
    """Every file the write attacks try to create carries the run's tag in its name."""
    assert run.planted == []


def test_no_file_outside_the_grade_directory_changes(run):
    """(path, size, mtime) of the repository, site-packages and the host's temporary folders.

    This assumes that nothing else writes there while the batch runs (true in
    CI); the assertion lists the changes, so a busy machine's are easy to tell.
    """
    assert run.changed_outside == [], '\n'.join(run.changed_outside)


def test_the_grade_directory_holds_only_the_graders_files(run):
    expected = {'{0}.{1}'.format(student, suffix) for student in run.reports for suffix in ('json', 'md')}
    unexpected = {name for name in run.files_in_out_dir - expected
                  if name not in ('grades.csv', 'summary.json', 'summary.html')
                  and not name.endswith('.html')}
    assert unexpected == set()
    victim = run.reports['honest_solution']
    assert victim['student'] == 'honest_solution' and victim['tests']


def test_nothing_is_left_in_the_graders_temporary_folder(run):
    assert run.left_in_temp == []


def test_no_process_of_a_submission_outlives_the_batch(run):
    assert run.stray_processes == []


def test_no_connection_reaches_the_graders_host(run):
    """Only attacks the level holds run in the batch, so any connection is a leak."""
    assert run.connections == []


# --------------------------------------------------------------------------
# Each attack
# --------------------------------------------------------------------------

_CASES = []
for _level in AVAILABLE_LEVELS:
    for _placement in (METHOD, MODULE, CLASS_BODY):
        _CASES.append(pytest.param(_level, COMBINED, _placement, id='{0}-combined-{1}'.format(_level, _placement)))
    for _attack in ATTACKS:
        if _attack.combinable:
            continue
        for _placement in _attack.placements:
            _CASES.append(pytest.param(_level, _attack.name, _placement,
                                       id='{0}-{1}-{2}'.format(_level, _attack.name, _placement)))


@pytest.mark.parametrize('level, name, placement', _CASES)
def test_attack_gains_nothing_and_is_explained(level, name, placement, course_root, data_environment,
                                               tmp_path_factory, reachable_tmp):
    if name != COMBINED:
        reason = skip_reason(catalogue.BY_NAME[name], level)
        if reason:
            pytest.skip(reason)
    student = student_id(name, placement)
    run = hostile_run(level, course_root, tmp_path_factory, reachable_tmp)
    if student not in run.fixtures:
        pytest.skip('tried in its first placement only below the strongest level ({0})'.format(STRONGEST)
                    if name != COMBINED else 'no combinable attack runs at {0}'.format(level))
    attacks, _ = run.fixtures[student]
    report = run.reports[student]
    baseline = run.alone[BASELINE]['score']
    assert report['status'] == 'graded', report.get('error')
    assert report['score'] <= baseline + 1e-9, (
        '{0} scored {1} > honest baseline {2}: {3}'.format(student, report['score'], baseline,
                                                           [a.name for a in attacks]))
    if all(attack.exact for attack in attacks):
        assert report['score'] == pytest.approx(baseline, abs=1e-9)
        assert check_summary(report) == check_summary(run.alone[BASELINE])
    size = (run.out_dir / '{0}.json'.format(student)).stat().st_size
    assert size < MAX_REPORT_BYTES
    for attack in attacks:
        if attack.expect:
            assert re.search(attack.expect, report_text(report)), (attack.expect, report_text(report)[:2000])
        if attack.forbid_in_hidden:
            hidden = [test['output'] for test in report['tests'] if 'hidden test case' in test['name']]
            assert hidden and not any(re.search(attack.forbid_in_hidden, text) for text in hidden), hidden
            assert re.search(attack.forbid_in_hidden, report_text(report))  # shown for the public case
        if attack.forbid_anywhere:
            found = re.search(attack.forbid_anywhere, report_text(report))
            assert found is None, report_text(report)[max(0, found.start() - 500):found.end() + 200]


# --------------------------------------------------------------------------
# What each level denies: one probe per capability
# --------------------------------------------------------------------------


@pytest.mark.parametrize('level', AVAILABLE_LEVELS)
def test_capability_probes(level, course_root, tmp_path):
    """Each capability attack, called directly in one child: held ones must find nothing.

    Write probes run only where they cannot write (elsewhere they really would).
    The leaks of weaker levels are not asserted, since they depend on the user
    running the tests; SECURITY.md documents them (``python -m tests.hostile
    --probe`` prints them).
    """
    probes = [attack for attack in PROBED if level not in attack.unsafe_at]
    (tmp_path / 'grades').mkdir()
    with Listeners(tmp_path, 'probe-' + level) as listeners:
        targets = Targets(
            repo=str(REPO_ROOT), submissions_dir=str(REPO_ROOT / 'tests' / 'fixtures' / 'notebooks'),
            out_dir=str(tmp_path / 'grades'), victim='nobody', site_dirs=site_directories(),
            tcp_port=listeners.tcp_port, unix_socket=listeners.unix_path,
            abstract_socket=listeners.abstract_name, tag='probe-{0}-{1}'.format(os.getpid(), level),
            sleep_marker='0', grader_pidns=os.readlink('/proc/self/ns/pid'))
        found = probe_capabilities(level, course_root / 'release' / LAB3, targets, probes)
    assert [name for name, leaked in found.items() if leaked and level in catalogue.BY_NAME[name].held_at] == []
    if level == 'bwrap':
        assert listeners.connections == []
        assert list((tmp_path / 'grades').iterdir()) == []


# --------------------------------------------------------------------------
# The catalogue itself (no sandbox)
# --------------------------------------------------------------------------


def test_catalogue_entries_are_complete_and_build_into_gradable_notebooks(tmp_path):
    from autograder.submission.extract import extract_code
    targets = Targets(repo='/repo', submissions_dir='/subs', out_dir='/out', victim='v', site_dirs=('/site',),
                      tcp_port=1, unix_socket='/sock', abstract_socket='abstract', tag='t', sleep_marker='1.5',
                      grader_pidns='pid:[1]')
    assert len({attack.name for attack in ATTACKS}) == len(ATTACKS)
    for attack in ATTACKS:
        assert attack.family in catalogue.FAMILIES and attack.summary and attack.must_hold
        assert attack.placements and set(attack.placements) <= set(catalogue.PLACEMENTS)
        assert set(attack.held_at) <= set(catalogue.LEVELS) and set(attack.unsafe_at) <= set(catalogue.LEVELS)
        for placement in attack.placements:
            extraction = extract_code(hostile_notebook([attack], placement, targets), ['TanhLayer', 'ReluLayer'])
            assert not extraction.syntax_errors, (attack.name, placement, extraction.syntax_errors)
            assert '_attack_{0}'.format(attack.name) in extraction.source
            assert {'TanhLayer', 'ReluLayer'} <= set(extraction.found)
            if placement == MODULE:
                assert '_module_attack' in extraction.source  # the hook is kept, so it runs


def test_attacks_that_would_harm_the_host_are_never_run_unconfined():
    for name in ('kill_everything', 'kill_parent', 'setsid_escape'):
        attack = catalogue.BY_NAME[name]
        assert 'rlimits' in attack.unsafe_at
        assert '$grader_pidns' in attack.code  # and an interlock of its own
    for name in ('fork_bomb', 'fork_bomb_new_sessions'):
        attack = catalogue.BY_NAME[name]
        assert attack.needs_nproc and 'RLIMIT_NPROC' in attack.code
        assert catalogue.skip_reason(attack, 'bwrap', nproc_binds=False, strongest='bwrap')
    for attack in ATTACKS:
        if attack.family == 'write':
            assert {'unshare', 'rlimits'} <= set(attack.unsafe_at), attack.name


# --------------------------------------------------------------------------
# Hardening that the catalogue relies on
# --------------------------------------------------------------------------

_HARDENING_PROBE = '''
import os
import resource
import numpy as np

def hardening(x):
    with open('/proc/self/oom_score_adj') as handle:
        oom_score = float(handle.read())
    sizes = []
    for folder in ('.', '/tmp'):
        info = os.statvfs(folder)
        sizes.append(float(info.f_blocks * info.f_frsize))
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    return np.array([oom_score, sizes[0], sizes[1], -1.0 if nproc == resource.RLIM_INFINITY else float(nproc)])
'''


@pytest.mark.parametrize('level', AVAILABLE_LEVELS)
def test_sandbox_hardening_is_in_place(level, course_root):
    """OOM-killer preference everywhere; under bwrap, capped writable space and RLIMIT_NPROC."""
    from autograder.sandbox.isolation import Request, exec_untrusted
    limits = Limits(processes=77)
    request = Request({'type': 'call', 'id': 'h', 'target': 'hardening', 'args': [{'array': 0}]}, [np.ones(1)])
    outcome = exec_untrusted(_HARDENING_PROBE, [request], student_mlp_dir=course_root / 'release' / LAB3,
                             isolation=level, limits=limits)
    assert outcome.responses['h'].status == 'ok', outcome.responses['h'].message
    oom_score, work_size, tmp_size, nproc = outcome.responses['h'].returned[0]
    assert oom_score == 1000
    if level == 'bwrap' and sandbox._bwrap_supports_size():
        assert work_size <= sandbox.SANDBOX_TMPFS_BYTES and tmp_size <= sandbox.SANDBOX_TMPFS_BYTES
    if nproc_binds(level):
        assert nproc == 77


_HOLD_EVERY_PROCESS = '''
import os
import resource
import time

def hold(x):
    limit = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    if os.getuid() == 0 or limit == resource.RLIM_INFINITY or limit > 4096:
        raise RuntimeError('safety interlock: RLIMIT_NPROC does not bind here')
    end = time.monotonic() + float(x[0])
    while time.monotonic() < end:  # keep the sandbox uid at its process limit
        try:
            if os.fork() == 0:
                time.sleep(max(0.0, end - time.monotonic()))
                os._exit(0)
        except OSError:
            time.sleep(0.005)
    return x
'''


@pytest.mark.skipif(not nproc_binds(STRONGEST), reason='RLIMIT_NPROC binds only under bwrap as root')
def test_a_sandbox_starts_while_another_holds_every_process_of_the_sandbox_uid(course_root):
    """A fork bomb in one submission must not stop a submission graded at the same time from starting.

    RLIMIT_NPROC counts all processes of the sandbox uid. If it were set before
    the switch to that uid, the new sandbox's exec of Python would fail with
    EAGAIN while the bomb holds the count at the limit.
    """
    from autograder.sandbox.isolation import Request, exec_untrusted
    mlp_dir = course_root / 'release' / LAB3
    holder = threading.Thread(target=exec_untrusted, args=(_HOLD_EVERY_PROCESS, [Request(
        {'type': 'call', 'id': 'hold', 'target': 'hold', 'args': [{'array': 0}]}, [np.array([6.0])],
        timeout=20.0)]), kwargs={'student_mlp_dir': mlp_dir, 'isolation': STRONGEST})
    holder.start()
    try:
        time.sleep(2.0)
        for attempt in range(3):
            outcome = exec_untrusted('def double(x):\n    return 2 * x\n', [Request(
                {'type': 'call', 'id': 'd', 'target': 'double', 'args': [{'array': 0}]}, [np.ones(2)])],
                student_mlp_dir=mlp_dir, isolation=STRONGEST)
            assert outcome.setup.ok, (attempt, outcome.setup.message, outcome.stderr_tail[-500:])
            assert outcome.responses['d'].status == 'ok'
    finally:
        holder.join()


# --------------------------------------------------------------------------
# Issue 10: files, names and replies, in one batch through the CLI
# --------------------------------------------------------------------------

#: The new code attacks of issue 10 (each in its first placement), graded beside the file cases.
NEW_CODE_ATTACKS = [attack for attack in ATTACKS if attack.family == 'bound' or attack.name == 'markdown_in_messages']


def _outside_code(markdown: str) -> str:
    """The Markdown that a renderer would render: fenced blocks and code spans removed."""
    rendered, fence = [], None
    for line in markdown.split('\n'):
        stripped = line.strip()
        run = re.match(r'`{3,}', stripped)
        if fence is None and run:
            fence = run.group(0)
            continue
        if fence is not None:
            if stripped == fence:
                fence = None
            continue
        rendered.append(re.sub(r'(`+)(.+?)\1', '', line))
    return '\n'.join(rendered)


@pytest.fixture(scope='module')
def issue10_batch(course_root, data_environment, tmp_path_factory):
    """Honest notebooks, every file case and the new code attacks, graded by `mlp-autograde grade`."""
    from autograder import cli
    base = tmp_path_factory.mktemp('issue10')
    class_dir, honest_dir, scratch = base / 'class', base / 'honest', base / 'scratch'
    for folder in (class_dir, honest_dir, scratch):
        folder.mkdir()
    honest = dict(honest_notebooks(course_root), **{BASELINE: baseline_notebook()})
    for name, notebook in honest.items():
        write(notebook, class_dir / '{0}.ipynb'.format(name))
        write(notebook, honest_dir / '{0}.ipynb'.format(name))
    baseline_text = (class_dir / '{0}.ipynb'.format(BASELINE)).read_text(encoding='utf-8')
    for case in catalogue.FILE_CASES:
        entry = os.fsdecode(case.entry) if isinstance(case.entry, bytes) else case.entry
        case.make(class_dir / entry, course_root, scratch, baseline_text)
    targets = Targets(
        repo=str(REPO_ROOT), submissions_dir=str(class_dir), out_dir=str(base / 'grades'),
        victim='honest_solution', site_dirs=site_directories(), tcp_port=0, unix_socket='', abstract_socket='',
        tag='issue10-{0}'.format(os.getpid()), sleep_marker='7999.{0}'.format(os.getpid() % 1000),
        grader_pidns=os.readlink('/proc/self/ns/pid'))
    for attack in NEW_CODE_ATTACKS:
        write(hostile_notebook([attack], attack.placements[0], targets),
              class_dir / '{0}.ipynb'.format(student_id(attack.name, attack.placements[0])))
    argv = ['--course-root', str(course_root), 'grade', '--assignment', LAB3, '--workers', '2',
            '--no-progress']
    alone_status = cli.main(argv + ['--out', str(base / 'alone'), str(honest_dir)])
    out_dir = base / 'grades'
    import contextlib
    import io
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = cli.main(argv + ['--out', str(out_dir), str(class_dir)])
    return {'status': status, 'alone_status': alone_status, 'out': out_dir, 'alone': base / 'alone',
            'honest': list(honest), 'printed': printed.getvalue(), 'entries': sorted(os.listdir(class_dir))}


def test_the_issue10_batch_exits_zero_with_a_report_for_every_entry(issue10_batch):
    assert issue10_batch['alone_status'] == 0 and issue10_batch['status'] == 0
    out = issue10_batch['out']
    students = [case.student for case in catalogue.FILE_CASES] + issue10_batch['honest'] + [
        student_id(attack.name, attack.placements[0]) for attack in NEW_CODE_ATTACKS]
    assert len(students) == len(issue10_batch['entries'])  # one report per entry of the folder
    for student in students:
        for suffix in ('json', 'md', 'html'):
            assert (out / '{0}.{1}'.format(student, suffix)).is_file(), (student, sorted(os.listdir(out)))
    summary = json.loads((out / 'summary.json').read_text(encoding='utf-8'))
    assert summary['schema'] == 'mlp-autograde/summary/1' and summary['submissions'] == len(students)
    assert summary['harness_failures'] == []


def test_honest_submissions_are_unchanged_by_the_issue10_cases(issue10_batch):
    for student in issue10_batch['honest']:
        report = json.loads((issue10_batch['out'] / '{0}.json'.format(student)).read_text(encoding='utf-8'))
        alone = json.loads((issue10_batch['alone'] / '{0}.json'.format(student)).read_text(encoding='utf-8'))
        assert check_summary(report) == check_summary(alone) and report['score'] == alone['score'], student


@pytest.mark.parametrize('case', catalogue.FILE_CASES, ids=lambda case: case.name)
def test_file_case(issue10_batch, case):
    out = issue10_batch['out']
    report = json.loads((out / '{0}.json'.format(case.student)).read_text(encoding='utf-8'))
    assert report['status'] == case.status, report.get('error')
    text = report_text(report)
    if case.expect:
        assert re.search(case.expect, text), text[:500]
    files = ''.join((out / '{0}.{1}'.format(case.student, suffix)).read_text(encoding='utf-8')
                    for suffix in ('json', 'md', 'html'))
    if case.forbid:
        assert not re.search(case.forbid, files)
    if case.status == 'graded':  # a copy of the baseline notebook under an odd name: graded like it
        baseline = json.loads((out / '{0}.json'.format(BASELINE)).read_text(encoding='utf-8'))
        assert report['score'] == baseline['score'] and check_summary(report) == check_summary(baseline)
    assert report['score'] == 0 or case.status == 'graded'


def test_no_class_file_is_a_students_and_the_sheet_runs_no_formula(issue10_batch):
    out = issue10_batch['out']
    assert json.loads((out / 'summary.json').read_text(encoding='utf-8'))['schema'] == 'mlp-autograde/summary/1'
    assert '<h1>Class summary' in (out / 'summary.html').read_text(encoding='utf-8')
    import csv
    rows = list(csv.reader((out / 'grades.csv').open(encoding='utf-8')))
    assert all(not row[0].startswith(('=', '+', '-', '@')) for row in rows[1:]), [row[0] for row in rows]
    assert {"'+SUM_1_PWNED", "'@cmdPWNED"} <= {row[0] for row in rows}


def test_student_words_are_never_rendered_nor_reach_the_terminal(issue10_batch):
    out = issue10_batch['out']
    for path in out.glob('*.md'):
        rendered = _outside_code(path.read_text(encoding='utf-8'))
        assert catalogue.RENDERED_MARKER not in rendered, (path.name, rendered[:2000])
    for path in out.glob('*.html'):
        page = path.read_text(encoding='utf-8')
        assert '<img src=x' not in page and 'onerror=alert' not in page.replace('onerror=alert(&quot;', '')
    assert not re.search('[\x00-\x08\x0b-\x1f\x7f-\x9f]', issue10_batch['printed'])


@pytest.mark.parametrize('attack', NEW_CODE_ATTACKS, ids=lambda attack: attack.name)
def test_new_code_attack_gains_nothing_and_is_explained(issue10_batch, attack):
    out = issue10_batch['out']
    report = json.loads((out / '{0}.json'.format(student_id(attack.name, attack.placements[0]))).read_text(
        encoding='utf-8'))
    baseline = json.loads((out / '{0}.json'.format(BASELINE)).read_text(encoding='utf-8'))
    assert report['status'] == 'graded' and report['score'] <= baseline['score'] + 1e-9
    if attack.expect:
        assert re.search(attack.expect, report_text(report)), report_text(report)[:1500]
