"""`mlp-autograde audit --assignment NAME [--out DIR] [--workers N]`.

TRUSTED. Thin: loads the spec, runs the audit, prints the table and writes
audit.json and audit.html. Exit status 0 when no non-equivalent mutant
survived and no fairness probe lost points, 1 when one did, 2 for bad
arguments, 3 when the audit itself could not run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE, EXIT_HARNESS = 0, 1, 2, 3


def run_audit_command(args) -> int:
    from autograder import batch
    from autograder.audit.run import AuditError, run_audit, terminal_report, write_outputs
    from autograder.course.spec import load_spec
    spec = load_spec(args.assignment, args.course_root)
    if not (spec.student_mlp_dir / 'mlp').is_dir():
        print('mlp-autograde: {0} has no student copy of mlp; run `mlp-autograde release --assignment {0}` '
              'first'.format(spec.name), file=sys.stderr)
        return EXIT_HARNESS
    out = args.out or Path('audit-{0}'.format(spec.name))
    workers = args.workers or os.cpu_count() or 1
    try:
        result = run_audit(spec, course_root=args.course_root, workers=workers, scheduler=args.scheduler,
                           progress=sys.stderr.isatty(), include_reference=not args.no_reference,
                           targets=set(args.target) if args.target else None)
        paths = write_outputs(result, out)
    except AuditError as error:
        print('mlp-autograde: {0}'.format(error), file=sys.stderr)
        return EXIT_USAGE
    except (batch.BatchError, OSError) as error:
        print('mlp-autograde: the audit could not run: {0}'.format(error), file=sys.stderr)
        return EXIT_HARNESS
    print(terminal_report(result))
    print('Written: {0}'.format(', '.join(map(str, paths))))
    return EXIT_CLEAN if result.clean else EXIT_FINDINGS
