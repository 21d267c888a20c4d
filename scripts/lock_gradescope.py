#!/usr/bin/env python3
"""Writes the hash-pinned lock that the Gradescope autograder's setup.sh installs.

TRUSTED (a maintainer's tool; it never sees a submission). Run it from the repository
with the project's venv whenever the grading-time dependencies should move:

    .venv/bin/python scripts/lock_gradescope.py            # writes the lock
    .venv/bin/python scripts/lock_gradescope.py --check    # exit 1 if the lock is stale

What it does, for the roots in `autograder.outputs.gradescope.CONTAINER_REQUIREMENTS`
(numpy and nbformat, with the version ranges pyproject.toml gives them):

1. Resolves the roots for the oldest supported Python with
   `pip install --dry-run --report --only-binary=:all: --python-version X --platform manylinux...`
   (binary wheels only: Gradescope's image build must not compile anything).
2. Resolves every other supported Python with the first answer as constraints, so that each
   package has ONE version on every image where that is possible; where it is not (no wheel
   of that version for that Python), that Python is resolved on its own and the lock gets
   `python_version` markers for the packages that differ.
3. Computes each Python's dependency closure itself from the wheels' metadata, evaluating
   markers for THAT Python (pip evaluates them for the interpreter running it, so a
   `python_version < "3.11"` dependency would be lost when locking on 3.11).
4. Writes, for every pinned release, the sha256 of each of its wheels that some supported
   image could choose (every manylinux tag up to the oldest image's glibc, any abi3 or pure
   wheel), read from the index's JSON project pages (PEP 691), so `pip install --require-hashes` accepts whichever
   file pip picks there.

Only pip, the standard library and `packaging` (vendored by pip if not installed) are used.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

try:
    from packaging.markers import Marker
    from packaging.requirements import Requirement
    from packaging.tags import compatible_tags, cpython_tags
    from packaging.utils import canonicalize_name, parse_wheel_filename
except ImportError:  # pip always carries a copy
    from pip._vendor.packaging.markers import Marker
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.tags import compatible_tags, cpython_tags
    from pip._vendor.packaging.utils import canonicalize_name, parse_wheel_filename

try:
    import tomllib
except ImportError:  # Python 3.10
    from pip._vendor import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.outputs.gradescope import (CONTAINER_REQUIREMENTS, LOCK_FILE,  # noqa: E402
                                           SUPPORTED_PYTHONS)

#: Gradescope's images are x86-64 Ubuntu; the oldest supported one (22.04) has glibc 2.35.
OLDEST_GLIBC = (2, 35)
ARCH = 'x86_64'
SIMPLE_JSON = 'application/vnd.pypi.simple.v1+json'
INDEX_URL = 'https://pypi.org/simple'


def platforms() -> list[str]:
    """Every manylinux platform tag a glibc-2.35 x86-64 machine accepts, most specific first."""
    tags = ['manylinux_2_{0}_{1}'.format(minor, ARCH) for minor in range(OLDEST_GLIBC[1], 16, -1)]
    return tags + ['manylinux2014_{0}'.format(ARCH), 'manylinux2010_{0}'.format(ARCH),
                   'manylinux1_{0}'.format(ARCH), 'linux_{0}'.format(ARCH)]


def version_tuple(python: str) -> tuple[int, int]:
    major, minor = python.split('.')
    return int(major), int(minor)


def supported_tags(python: str) -> set:
    """The wheel tags pip on CPython `python` (Linux x86-64, glibc 2.35) would install."""
    version = version_tuple(python)
    interpreter = 'cp{0}{1}'.format(*version)
    return set(cpython_tags(version, abis=[interpreter, 'abi3', 'none'], platforms=platforms())) | set(
        compatible_tags(version, interpreter=interpreter, platforms=platforms()))


def marker_environment(python: str) -> dict[str, str]:
    return {'python_version': python, 'python_full_version': python + '.0',
            'implementation_name': 'cpython', 'platform_python_implementation': 'CPython',
            'sys_platform': 'linux', 'platform_system': 'Linux', 'os_name': 'posix',
            'platform_machine': ARCH}


def root_requirements() -> list[str]:
    """The roots with pyproject.toml's version ranges (one source of truth)."""
    declared = tomllib.loads((REPO / 'pyproject.toml').read_text(encoding='utf-8'))['project']['dependencies']
    by_name = {canonicalize_name(Requirement(line).name): line for line in declared}
    missing = [name for name in CONTAINER_REQUIREMENTS if canonicalize_name(name) not in by_name]
    if missing:
        raise SystemExit('pyproject.toml does not declare {0}'.format(', '.join(missing)))
    return [by_name[canonicalize_name(name)] for name in CONTAINER_REQUIREMENTS]


def resolve(python: str, requirements: list[str], constraints: dict[str, str] | None,
            index_url: str) -> dict[str, dict] | None:
    """pip's resolution for one Python: {name: wheel metadata from the report}, or None if impossible."""
    with tempfile.TemporaryDirectory(prefix='mlp-lock-') as folder:
        report = Path(folder) / 'report.json'
        command = [sys.executable, '-m', 'pip', 'install', '--isolated', '--disable-pip-version-check',
                   '--quiet', '--dry-run', '--ignore-installed', '--only-binary=:all:',
                   '--index-url', index_url, '--python-version', python, '--implementation', 'cp',
                   '--report', str(report)]
        for platform in platforms():
            command += ['--platform', platform]
        if constraints:
            constraint_file = Path(folder) / 'constraints.txt'
            constraint_file.write_text(''.join('{0}=={1}\n'.format(n, v) for n, v in sorted(constraints.items())))
            command += ['--constraint', str(constraint_file)]
        environment = {key: value for key, value in os.environ.items() if not key.startswith('PIP_')}
        environment['PIP_CONFIG_FILE'] = os.devnull
        done = subprocess.run(command + requirements, capture_output=True, text=True, env=environment)
        if done.returncode != 0:
            if constraints:
                return None
            raise SystemExit('pip could not resolve {0} for Python {1}:\n{2}'.format(
                ' '.join(requirements), python, done.stderr[-3000:]))
        installed = json.loads(report.read_text(encoding='utf-8'))['install']
    return {canonicalize_name(item['metadata']['name']): item['metadata'] for item in installed}


def closure(python: str, roots: list[str], metadata: dict[str, dict]) -> dict[str, str] | list[str]:
    """{name: version} that `python` needs, with markers evaluated for it; or the names missing from `metadata`."""
    environment = marker_environment(python)
    needed: dict[str, str] = {}
    missing: list[str] = []
    pending = [Requirement(line) for line in roots]
    while pending:
        requirement = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({**environment, 'extra': ''}):
            continue
        name = canonicalize_name(requirement.name)
        if name in needed:
            continue
        if name not in metadata:
            missing.append(requirement.name)
            continue
        needed[name] = metadata[name]['version']
        pending += [Requirement(line) for line in metadata[name].get('requires_dist') or []]
    return missing or needed


def resolve_for(python: str, roots: list[str], constraints: dict[str, str] | None,
                index_url: str) -> dict[str, str] | None:
    """The closure for one Python, re-resolving while markers pip skipped turn out to be needed."""
    requirements = list(roots)
    for _ in range(10):
        metadata = resolve(python, requirements, constraints, index_url)
        if metadata is None:
            return None
        needed = closure(python, roots, metadata)
        if isinstance(needed, dict):
            return needed
        requirements += [name for name in needed if name not in requirements]
    raise SystemExit('the dependency closure for Python {0} does not settle'.format(python))


def wheel_hashes(name: str, version: str, pythons: list[str], index_url: str) -> list[str]:
    """sha256 of every wheel of name==version that one of `pythons` could install.

    Read from the index's JSON project page (PEP 691), which lists every file with its hash.
    """
    accepted = set().union(*(supported_tags(python) for python in pythons))
    request = urllib.request.Request('{0}/{1}/'.format(index_url.rstrip('/'), name),
                                     headers={'Accept': SIMPLE_JSON})
    with urllib.request.urlopen(request, timeout=60) as answer:
        project = json.load(answer)
    hashes = []
    for file in project['files']:
        if not file['filename'].endswith('.whl') or file.get('yanked'):
            continue
        _, wheel_version, _, tags = parse_wheel_filename(file['filename'])
        if str(wheel_version) == version and tags & accepted and 'sha256' in file.get('hashes', {}):
            hashes.append(file['hashes']['sha256'])
    if not hashes:
        raise SystemExit('{0}=={1} has no wheel for Python {2}'.format(name, version, ', '.join(pythons)))
    return sorted(hashes)


def python_marker(pythons: list[str]) -> str:
    return ' or '.join('python_version == "{0}"'.format(python) for python in pythons)


def lock_text(index_url: str = INDEX_URL) -> str:
    """The lock file's text (deterministic for a given state of the index)."""
    roots = root_requirements()
    pythons = list(SUPPORTED_PYTHONS)
    first = resolve_for(pythons[0], roots, None, index_url)
    per_python = {pythons[0]: first}
    for python in pythons[1:]:
        per_python[python] = resolve_for(python, roots, first, index_url) or resolve_for(
            python, roots, None, index_url)
    pins: dict[tuple[str, str], list[str]] = {}
    for python, needed in per_python.items():
        for name, version in needed.items():
            pins.setdefault((name, version), []).append(python)
    lines = ['# Hash-pinned grading-time dependencies of the Gradescope autograder (setup.sh installs',
             '# them with `pip install --require-hashes --only-binary=:all:`).',
             '# GENERATED by scripts/lock_gradescope.py; do not edit. Roots: {0}.'.format('; '.join(roots)),
             '# Pythons: {0} (CPython, Linux x86-64, glibc >= {1}.{2}).'.format(', '.join(pythons), *OLDEST_GLIBC)]
    for (name, version), used_by in sorted(pins.items()):
        marker = '' if used_by == pythons else ' ; ' + python_marker(used_by)
        Marker(marker[3:]) if marker else None  # a malformed marker fails here, not in pip
        hashes = wheel_hashes(name, version, used_by, index_url)
        lines.append('{0}=={1}{2} \\'.format(name, version, marker))
        lines += ['    --hash=sha256:{0}{1}'.format(digest, ' \\' if index < len(hashes) - 1 else '')
                  for index, digest in enumerate(hashes)]
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--check', action='store_true', help='exit 1 if the lock differs from a fresh one')
    parser.add_argument('--index-url', default=INDEX_URL, help='package index (default: PyPI)')
    parser.add_argument('--out', type=Path, default=LOCK_FILE, help='lock file (default: %(default)s)')
    args = parser.parse_args(argv)
    text = lock_text(args.index_url)
    if args.check:
        current = args.out.read_text(encoding='utf-8') if args.out.is_file() else ''
        if current != text:
            print('{0} is stale: run scripts/lock_gradescope.py'.format(args.out), file=sys.stderr)
            return 1
        print('{0} is up to date.'.format(args.out))
        return 0
    args.out.write_text(text, encoding='utf-8')
    print('Wrote {0} ({1} pins).'.format(args.out, sum(1 for line in text.splitlines() if '==' in line)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
