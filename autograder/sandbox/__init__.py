"""Everything that starts or talks to untrusted processes.

``isolation`` chooses the isolation level and holds the one unsafe entry point,
``exec_untrusted`` (and ``Sandbox``, the same in two steps: the child boots, then it
gets the submission); ``child_runner`` runs INSIDE THE SANDBOX; ``wire`` is the framed
format both sides speak; ``limits`` holds the budgets. Nothing outside this package
runs or talks to student code.
"""
