"""Stand-ins for the grader's host, and a probe of what each isolation level denies.

Test support. :class:`Listeners` plays the services on the grading machine
(a TCP port, a Unix socket in the file system, an abstract Unix socket) and
records every connection. :func:`probe_capabilities` calls each capability
attack of the catalogue once, directly, in one sandboxed child at a given
isolation level, and returns which of them obtained something.
"""

from __future__ import annotations

import os
import site
import socket
import sys
import sysconfig
import threading
from pathlib import Path

import numpy as np

from .catalogue import ATTACKS, Attack
from .submissions import Targets, attack_functions

#: Attacks that ask for a capability (and can be called on their own, once).
PROBED: tuple[Attack, ...] = tuple(
    attack for attack in ATTACKS
    if attack.family in ('read', 'network', 'write', 'introspect')
    and not attack.layer_source and attack.name != 'fill_disk')


class Listeners:
    """A TCP, a Unix-socket and an abstract-socket listener that record every connection.

    Args:
        folder: Where the Unix socket file goes.
        name: Makes the abstract socket's name unique.
    """

    def __init__(self, folder: Path, name: str) -> None:
        self.connections: list[str] = []
        self._stop = threading.Event()
        self.tcp = socket.socket()
        self.tcp.bind(('127.0.0.1', 0))
        self.unix_path = str(Path(folder) / 'grader.sock')
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
        """Stop accepting and close the sockets (the Unix socket file stays)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        for server in (self.tcp, self.unix, self.abstract):
            server.close()

    def __enter__(self) -> Listeners:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def site_directories() -> tuple[str, ...]:
    """site-packages folders of the grading interpreter and of its base installation."""
    paths = sysconfig.get_paths()
    candidates = [paths['purelib'], paths['platlib']] + list(site.getsitepackages())
    candidates.append(sysconfig.get_paths(vars={'base': sys.base_prefix, 'platbase': sys.base_prefix})['purelib'])
    found: list[str] = []
    for candidate in candidates:
        real = os.path.realpath(candidate)
        if os.path.isdir(real) and real not in found:
            found.append(real)
    return tuple(found)


def probe_source(probes: list[Attack], targets: Targets) -> str:
    """Source defining the attack functions and ``probe(x)``: one 0/1 flag per attack."""
    calls = ''.join('    flag_{0} = bool(_attack_{0}(x) is True)\n'.format(a.name) for a in probes)
    flags = ', '.join('flag_{0}'.format(a.name) for a in probes)
    return (attack_functions(probes, targets) + '\n\ndef probe(x):\n    import numpy as np\n' + calls
            + '    return np.array([{0}], dtype=float)\n'.format(flags))


def probe_capabilities(level: str, student_mlp_dir: Path, targets: Targets,
                       probes: list[Attack]) -> dict[str, bool]:
    """Call every probe once in one sandboxed child at ``level``.

    Args:
        level: Isolation level ("bwrap", "unshare" or "rlimits").
        student_mlp_dir: The folder holding the student copy of ``mlp``.
        targets: Placeholder values (listeners, paths).
        probes: The attacks to call; the caller leaves out those unsafe at ``level``.

    Returns:
        Attack name -> whether it obtained what it was after.

    Raises:
        RuntimeError: The child did not answer.
    """
    from autograder.sandbox.isolation import Request, exec_untrusted
    request = Request({'type': 'call', 'id': 'probe', 'target': 'probe', 'args': [{'array': 0}]},
                      [np.random.RandomState(0).uniform(-2, 2, (3, 4))], timeout=30.0)
    outcome = exec_untrusted(probe_source(probes, targets), [request], student_mlp_dir=student_mlp_dir,
                             isolation=level)
    response = outcome.responses['probe']
    if response.status != 'ok':
        raise RuntimeError('the probe did not answer at {0}: {1}'.format(level, response.message))
    return {attack.name: bool(flag) for attack, flag in zip(probes, response.returned[0])}
