"""`mlp-autograde audit`: is an assignment's grading complete (mutants) and fair (probes)?

TRUSTED. Mutants (single faulty changes of the instructor's solution) and
fairness probes (correct rewrites of it) are graded as submission notebooks
by the real pipeline, so all of their code runs only in the sandbox:

    solutions   where the solution code is (notebook regions, reference regions)
    mutants     mutation operators on Python's `ast`, one change per mutant
    probes      correct rewrites, generic and from the course's audit files
    equivalence dense probe requests answered in the sandbox, judged here
    run         grading everything in parallel, statuses, audit.json
"""
