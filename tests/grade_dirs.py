"""Comparing grade directories: two runs of the same class, apart from what varies per run.

``comparable(out_dir)`` reads every file of a grade directory with the fields
that vary from run to run (timings, how many were graded this run) taken out,
so that two runs of the same class compare equal.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

#: Fields of a student's report that differ between two runs of the same submission.
REPORT_TIMING_FIELDS = ('execution_time',)
#: Fields of summary.json that differ between two runs of the same class.
SUMMARY_RUN_FIELDS = ('timing', 'graded_this_run')
#: A duration in the HTML pages, e.g. the class page's timing footer ("12.3 s").
SECONDS = re.compile(r'\d+(\.\d+)? s\b')


def comparable(out_dir: Path) -> dict[str, object]:
    """Every file of a grade directory, parsed, with the run-dependent fields removed.

    Args:
        out_dir: a grade directory (reports, feedback, grades.csv, summary.json, ...).

    Returns:
        file name -> content: JSON files parsed, without their timing fields (each must
        be present); HTML with every duration replaced by ``<seconds>``; other files
        as text.

    Raises:
        KeyError: a report or the summary lacks one of the timing fields.
    """
    files: dict[str, object] = {}
    for path in sorted(Path(out_dir).iterdir()):
        text = path.read_text(encoding='utf-8')
        if path.suffix == '.json':
            data = json.loads(text)
            for field in SUMMARY_RUN_FIELDS if path.name == 'summary.json' else REPORT_TIMING_FIELDS:
                data.pop(field)
            files[path.name] = data
        elif path.suffix == '.html':
            files[path.name] = SECONDS.sub('<seconds>', text)
        else:
            files[path.name] = text
    return files

