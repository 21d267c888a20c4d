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
import site
import socket
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder import batch, demo, sandbox
from autograder.limits import Limits
from autograder.sandbox import Request, exec_untrusted
from autograder.spec import load_spec
from hostile import catalogue
from hostile.catalogue import ATTACKS, CLASS_BODY, METHOD, MODULE, Attack
from hostile.submissions import Targets, attack_functions, baseline_notebook, hostile_notebook, write

REPO_ROOT = Path(__file__).resolve().parents[1]
LAB3 = '03_multiple_layer_models'

AVAILABLE_LEVELS = [level for level in sandbox.ISOLATION_LEVELS
                    if level == 'rlimits' or sandbox._probe(level)]
STRONGEST = AVAILABLE_LEVELS[0]

#: Limits of the hostile batches: the defaults, with shorter waits so that the
#: hangs of the catalogue cost seconds, not minutes.
STRONGEST_LIMITS = Limits(request_seconds=3.0, setup_seconds=8.0, wall_seconds=90.0)
WEAKER_LIMITS = Limits(request_seconds=2.0, setup_seconds=5.0, wall_seconds=60.0, max_restarts=1)

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
# Stand-ins for services on the grader's host
# --------------------------------------------------------------------------


class Listeners:
    """A TCP, a Unix-socket and an abstract-socket listener that record every connection."""

    def __init__(self, folder: Path, name: str) -> None:
        self.connections: list[str] = []
        self._stop = threading.Event()
        self.tcp = socket.socket()
        self.tcp.bind(('127.0.0.1', 0))
        self.unix_path = str(folder / 'grader.sock')
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(self.unix_path)
        os.chmod(self.unix_path, 0o777)
        self.abstract_name = 'mlp-hostile-{0}-{1}'.format(os.getpid(), name)
        self.abstract = socket.socket(socket.AF_UNIX)
        self.abstract.bind('\0' + self.abstract_name)
        self._threads = []
        for label, server in (('tcp', self.tcp), ('unix', self.unix), ('abstract', self.abstract)):
            server.listen(16)
            server.settimeout(0.2)
            thread = threading.Thread(target=self._accept, args=(label, server), daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def tcp_port(self) -> int:
        return self.tcp.getsockname()[1]

    def _accept(self, label: str, server: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections.append(label)
            connection.close()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        for server in (self.tcp, self.unix, self.abstract):
            server.close()


# --------------------------------------------------------------------------
# Snapshots of everything outside the grade directory
# --------------------------------------------------------------------------

_NEVER_COMPARED = {'.git', '__pycache__', '.pytest_cache'}
#: Top-level entries of the shared temporary folders that other programs on the
#: machine create and remove at any time (this batch uses a private folder).
_SHARED_TEMP_CHURN = re.compile(r'^(pytest-of-|mlp-sandbox-|mlp-autograde-|tmp|pymp-|\.)')


def site_directories() -> tuple[str, ...]:
    """site-packages folders of the grading interpreter and of the base installation."""
    candidates = [sysconfig.get_paths()['purelib'], sysconfig.get_paths()['platlib']]
    candidates += site.getsitepackages()
    candidates.append(sysconfig.get_paths(vars={'base': sys.base_prefix, 'platbase': sys.base_prefix})['purelib'])
    found = []
    for candidate in candidates:
        real = os.path.realpath(candidate)
        if os.path.isdir(real) and real not in found:
            found.append(real)
    return tuple(found)


def snapshot_tree(root: str) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file and folder below ``root`` (no symlink followed)."""
    entries = {}
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in _NEVER_COMPARED]
        for name in subfolders + files:
            path = os.path.join(folder, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            entries[path] = (info.st_size if not os.path.isdir(path) else 0, info.st_mtime_ns)
    return entries


def snapshot_top_level(folder: str) -> dict[str, tuple[int, int]]:
    entries = {}
    try:
        names = os.listdir(folder)
    except OSError:
        return entries
    for name in names:
        if _SHARED_TEMP_CHURN.match(name):
            continue
        try:
            info = os.lstat(os.path.join(folder, name))
        except OSError:
            continue
        entries[os.path.join(folder, name)] = (info.st_size, info.st_mtime_ns)
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
    left_in_temp: list[str]
    stray_processes: list[int]
    connections: list[str]
    files_in_out_dir: set[str] = field(default_factory=set)


@pytest.fixture(scope='session')
def course_root(tmp_path_factory) -> Path:
    """The repository, whose release/ holds the student copy of mlp (generated if missing)."""
    if (REPO_ROOT / 'release' / LAB3 / 'mlp').is_dir():
        return REPO_ROOT
    from autograder.release import release_assignment
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


def hostile_run(level: str, course_root: Path, tmp_path_factory) -> HostileRun:
    """Grade (once per session) the hostile class at ``level``; see the module docstring."""
    if level in _RUNS:
        return _RUNS[level]
    spec = load_spec(LAB3, course_root)
    limits = STRONGEST_LIMITS if level == STRONGEST else WEAKER_LIMITS
    base = tmp_path_factory.mktemp('hostile-' + level)
    honest_dir, class_dir, out_dir = base / 'honest', base / 'class', base / 'grades'
    private_temp = base / 'tmp'
    for folder in (honest_dir, class_dir, private_temp):
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
        _grade(spec, honest_dir, base / 'alone', level, limits, monkeypatch)
        before = snapshot_outside(targets.site_dirs)
        _grade(spec, class_dir, out_dir, level, limits, monkeypatch)
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
        left_in_temp=[str(path) for path in private_temp.rglob('*')],
        stray_processes=processes_with('sleep ' + targets.sleep_marker),
        connections=list(listeners.connections),
        files_in_out_dir={path.name for path in out_dir.iterdir()})
    _RUNS[level] = run
    return run


@pytest.fixture(scope='session', params=AVAILABLE_LEVELS)
def run(request, course_root, data_environment, tmp_path_factory) -> HostileRun:
    return hostile_run(request.param, course_root, tmp_path_factory)


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
        assert check_summary(run.reports[student]) == check_summary(run.alone[student]), student
        assert run.reports[student]['score'] == run.alone[student]['score'], student


def test_no_file_outside_the_grade_directory_changes(run):
    assert run.changed_outside == []


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
                                               tmp_path_factory):
    if name != COMBINED:
        reason = skip_reason(catalogue.BY_NAME[name], level)
        if reason:
            pytest.skip(reason)
    student = student_id(name, placement)
    run = hostile_run(level, course_root, tmp_path_factory)
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


# --------------------------------------------------------------------------
# What each level denies: one probe per capability
# --------------------------------------------------------------------------

PROBED = [attack for attack in ATTACKS if attack.family in ('read', 'network', 'write', 'introspect')
          and not attack.layer_source and attack.name != 'fill_disk']


@pytest.mark.parametrize('level', AVAILABLE_LEVELS)
def test_capability_probes(level, course_root, tmp_path):
    """Each capability attack, called directly in one child; held ones must find nothing.

    Write probes run only where the file system is hidden (elsewhere they would
    really write). The leaks of weaker levels are not asserted (they depend on
    the user running the tests); they are what SECURITY.md documents.
    """
    probes = [attack for attack in PROBED if attack.name not in attack.unsafe_at
              and level not in attack.unsafe_at]
    listeners = Listeners(tmp_path, 'probe-' + level)
    try:
        targets = Targets(
            repo=str(REPO_ROOT), submissions_dir=str(REPO_ROOT / 'tests' / 'fixtures' / 'notebooks'),
            out_dir=str(tmp_path / 'grades'), victim='nobody', site_dirs=site_directories(),
            tcp_port=listeners.tcp_port, unix_socket=listeners.unix_path,
            abstract_socket=listeners.abstract_name, tag='probe-{0}-{1}'.format(os.getpid(), level),
            sleep_marker='0', grader_pidns=os.readlink('/proc/self/ns/pid'))
        (tmp_path / 'grades').mkdir()
        source = attack_functions(probes, targets) + '\n\ndef probe(x):\n    import numpy as np\n' + ''.join(
            '    flag_{0} = bool(_attack_{0}(x) is True)\n'.format(a.name) for a in probes) + (
            '    return np.array([{0}], dtype=float)\n'.format(
                ', '.join('flag_{0}'.format(a.name) for a in probes)))
        request = Request({'type': 'call', 'id': 'probe', 'target': 'probe', 'args': [{'array': 0}]},
                          [np.random.RandomState(0).uniform(-2, 2, (3, 4))], timeout=30.0)
        outcome = exec_untrusted(source, [request], student_mlp_dir=course_root / 'release' / LAB3,
                                 isolation=level)
    finally:
        listeners.close()
    response = outcome.responses['probe']
    assert response.status == 'ok', response.message
    flags = dict(zip((a.name for a in probes), response.returned[0]))
    leaked_but_held = [name for name, flag in flags.items() if flag and level in catalogue.BY_NAME[name].held_at]
    assert leaked_but_held == []
    if level in ('bwrap', 'unshare'):
        assert listeners.connections.count('tcp') == 0
    if level == 'bwrap':
        assert listeners.connections == []


# --------------------------------------------------------------------------
# The catalogue itself (no sandbox)
# --------------------------------------------------------------------------


def test_catalogue_entries_are_complete_and_build_into_gradable_notebooks(tmp_path):
    from autograder.extract import extract_code
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
