"""What the benchmarks print about the machine they ran on: its CPU and its load.

Imported by the benchmark scripts as `from machine import ...` (running
`python benchmarks/<script>.py` puts this folder first on `sys.path`).
Numbers measured on a shared machine mean little without its load, so each
script prints the load average at the start and at the end.
"""

from __future__ import annotations


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


def blas_kernel(env=None) -> str:
    """The OpenBLAS build and core kernel numpy runs with (e.g. 'OpenBLAS 0.3.31 ... SkylakeX').

    Read through ctypes from the OpenBLAS library that numpy loaded, in a fresh interpreter
    started with this environment, so that OPENBLAS_CORETYPE and thread settings apply as they
    would to the grader (`env`: that interpreter's environment, this one's by default).
    'unknown' when numpy is not built on OpenBLAS.
    """
    import subprocess
    import sys
    probe = '''
import ctypes, glob, os
import numpy
libs = glob.glob(os.path.join(os.path.dirname(numpy.__file__), os.pardir, "numpy.libs", "libscipy_openblas*"))
libs += glob.glob(os.path.join(os.path.dirname(numpy.__file__), os.pardir, "numpy.libs", "libopenblas*"))
for path in libs:
    lib = ctypes.CDLL(path)
    for prefix, suffix in (("scipy_openblas_", "64_"), ("scipy_openblas_", ""), ("openblas_", "")):
        try:
            config = getattr(lib, prefix + "get_config" + suffix)
            core = getattr(lib, prefix + "get_corename" + suffix)
            threads = getattr(lib, prefix + "get_num_threads" + suffix)
        except AttributeError:
            continue
        config.restype = core.restype = ctypes.c_char_p
        print(config().decode(), core().decode(), "threads", threads())
        raise SystemExit
print("unknown")
'''
    try:
        return subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True,
                              timeout=60, env=env).stdout.strip() or 'unknown'
    except (OSError, subprocess.SubprocessError):
        return 'unknown'
