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
