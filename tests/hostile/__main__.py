"""Print the catalogue of attacks, and optionally what each isolation level denies.

Usage, from the repository root::

    python -m tests.hostile            # the catalogue: family, placements, held at, unsafe at
    python -m tests.hostile --probe    # also run the capability probes at every level here

The probes are the same as in ``tests/test_hostile.py``; write probes run only
at levels that hide the file system. SECURITY.md's table was made with this.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from .catalogue import ATTACKS, LEVELS
from .probes import PROBED, Listeners, probe_capabilities, site_directories
from .submissions import Targets

REPO_ROOT = Path(__file__).resolve().parents[2]


def catalogue_table() -> str:
    rows = [('attack', 'family', 'placements', 'held at', 'never run at')]
    for attack in ATTACKS:
        rows.append((attack.name, attack.family, ', '.join(attack.placements),
                     ', '.join(attack.held_at), ', '.join(sorted(attack.unsafe_at)) + (
                         ' (needs RLIMIT_NPROC)' if attack.needs_nproc else '')))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return '\n'.join('  '.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def probe_table() -> str:
    from autograder.sandbox import isolation as sandbox
    levels = [level for level in LEVELS if level == 'rlimits' or sandbox._probe(level)]
    results = {}
    with tempfile.TemporaryDirectory(prefix='mlp-hostile-probe-') as folder:
        for level in levels:
            grades = Path(folder) / level / 'grades'
            grades.mkdir(parents=True)
            with Listeners(grades.parent, level) as listeners:
                targets = Targets(
                    repo=str(REPO_ROOT), submissions_dir=str(REPO_ROOT / 'tests' / 'fixtures' / 'notebooks'),
                    out_dir=str(grades), victim='nobody', site_dirs=site_directories(),
                    tcp_port=listeners.tcp_port, unix_socket=listeners.unix_path,
                    abstract_socket=listeners.abstract_name, tag='probe-{0}-{1}'.format(os.getpid(), level),
                    sleep_marker='0', grader_pidns=os.readlink('/proc/self/ns/pid'))
                probes = [attack for attack in PROBED if level not in attack.unsafe_at]
                results[level] = probe_capabilities(level, REPO_ROOT / 'release' / '03_multiple_layer_models',
                                                    targets, probes)
    rows = [('capability attack',) + tuple(levels)]
    for attack in PROBED:
        rows.append((attack.name,) + tuple(
            'not run' if attack.name not in results[level] else
            ('LEAKS' if results[level][attack.name] else 'denied') for level in levels))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return '\n'.join('  '.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog='python -m tests.hostile', description=__doc__.splitlines()[0])
    parser.add_argument('--probe', action='store_true', help='run the capability probes at every level here')
    arguments = parser.parse_args()
    print(catalogue_table())
    if arguments.probe:
        print()
        print(probe_table())


if __name__ == '__main__':
    main()
