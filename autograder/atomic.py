"""Atomic file output: readers see either the old file or the complete new one.

TRUSTED. The one place that writes a temporary file next to its target
(named `.<name>.<random>.tmp`, the pattern the batch clean-up looks for),
flushes it to disk and moves it into place with `os.replace`; on any
failure the temporary file is removed and the target is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_output(path: Path, mode: str = 'w', permissions: int | None = None):
    """Opens a temporary file that replaces `path` when the block ends without error.

    Args:
        path: The file to write.
        mode: 'w' (UTF-8 text, newlines as written) or 'wb'.
        permissions: Mode bits for the final file (mkstemp makes it 0600 otherwise).

    Yields:
        The open temporary file.
    """
    path = Path(path)
    handle, temp_name = tempfile.mkstemp(prefix='.' + path.name + '.', suffix='.tmp',
                                         dir=str(path.parent))
    try:
        text = {'encoding': 'utf-8', 'newline': ''} if 'b' not in mode else {}
        with os.fdopen(handle, mode, **text) as temp_file:
            yield temp_file
            temp_file.flush()
            os.fsync(temp_file.fileno())
        if permissions is not None:
            os.chmod(temp_name, permissions)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
