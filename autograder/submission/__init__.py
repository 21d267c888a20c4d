"""TRUSTED readers of untrusted files: loading a submitted notebook and extracting its code.

Nothing here imports, executes or unpickles what it reads.
"""
