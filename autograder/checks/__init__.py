"""TRUSTED planning and judging of graded items: requests for the child, judges in the parent,
the reference oracle, diagnoses of common mistakes, and the training recipes."""
