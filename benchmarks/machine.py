"""What the benchmarks print about the machine they ran on: its CPU and its load.

Imported by the benchmark scripts as `from machine import ...` (running
`python benchmarks/<script>.py` puts this folder first on `sys.path`).
Numbers measured on a shared machine mean little without its load, so each
script prints the load average at the start and at the end.
"""

from __future__ import annotations

import ctypes
import glob
import os


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or 'unknown CPU'."""
    try:
        with open('/proc/cpuinfo') as handle:
            for line in handle:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return 'unknown CPU'


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages from /proc/loadavg, e.g. '0.52 0.61 0.70', or 'n/a'."""
    try:
        with open('/proc/loadavg') as handle:
            return ' '.join(handle.read().split()[:3])
    except OSError:
        return 'n/a'


def blas_description() -> str:
    """numpy's BLAS library, version and the kernel (core type) OpenBLAS chose at run time."""
    try:
        from threadpoolctl import threadpool_info
        infos = [info for info in threadpool_info() if info.get('user_api') == 'blas']
        if infos:
            info = infos[0]
            return '{0} {1}, kernel {2}, {3} thread(s) (threadpoolctl)'.format(
                info.get('internal_api'), info.get('version'), info.get('architecture'),
                info.get('num_threads'))
    except ImportError:
        pass
    import numpy as np
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__) + '.libs', '*openblas*.so*'))
    for path in libs:
        library = ctypes.CDLL(path)
        for prefix, suffix in (('scipy_openblas_', '64_'), ('scipy_openblas_', ''), ('openblas_', '')):
            try:
                corename = getattr(library, prefix + 'get_corename' + suffix)
                config = getattr(library, prefix + 'get_config' + suffix)
                threads = getattr(library, prefix + 'get_num_threads' + suffix)
            except AttributeError:
                continue
            corename.restype = config.restype = ctypes.c_char_p
            return '{0}: {1}, kernel {2}, {3} thread(s)'.format(
                os.path.basename(path), config().decode(), corename().decode(), threads())
    return 'unknown (no threadpoolctl, no OpenBLAS bundled with numpy)'


def blas_kernel(env=None) -> str:
    """`blas_description()` as a fresh interpreter started with `env` sees it.

    OPENBLAS_CORETYPE and the thread settings apply at start-up, so a benchmark that sets them
    for the grader's children asks a child like them (`env`: this environment by default).
    """
    import subprocess
    import sys
    probe = 'import sys; sys.path.insert(0, {0!r}); from machine import blas_description; print(blas_description())'
    try:
        return subprocess.run([sys.executable, '-c', probe.format(os.path.dirname(os.path.abspath(__file__)))],
                              capture_output=True, text=True, timeout=60, env=env).stdout.strip() or 'unknown'
    except (OSError, subprocess.SubprocessError):
        return 'unknown'
