"""Class integrity: find submissions that share their graded code, with each other or known sources.

TRUSTED, in the grading parent. The pipeline, one module per step:
:mod:`~autograder.similarity.written` (the code a student wrote: the grader's
extraction minus the release), :mod:`~autograder.similarity.normalise` (tokens
that ignore what copying disguises), :mod:`~autograder.similarity.fingerprints`
(winnowing), :mod:`~autograder.similarity.matching` (inverted index, scores,
clusters) and :mod:`~autograder.similarity.command` (the run and its JSON);
the pages are :mod:`autograder.outputs.similarity_html`.
"""
