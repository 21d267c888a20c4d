"""A catalogue of hostile submissions, and builders that turn them into notebooks.

Test support only (never shipped, never imported by the grader). Every entry of
:data:`tests.hostile.catalogue.ATTACKS` is one attack a student could put in a
notebook: a short Python snippet plus metadata saying where it can sit (inside
a layer method, at module level, or in a class body), at which isolation
levels it may be run at all, at which levels the sandbox is expected to hold
against it, and what must hold afterwards. :mod:`tests.hostile.submissions`
wraps snippets into submission notebooks; ``tests/test_hostile.py`` grades them
in a batch together with honest submissions and checks the outcome.

Run ``python -m tests.hostile`` from the repository root to print the
catalogue as a table (name, family, placements, where it must not run).
"""
