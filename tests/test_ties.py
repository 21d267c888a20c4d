"""Judging max pooling at tied maxima (autograder/checks/ties.py): any single maximum is right."""

import numpy as np

from autograder.checks.ties import accept_any_single_maximum

INPUTS = np.array([[[[2., 0.], [2., 1.]]]])   # one 2x2 window, maximum 2 shared by two elements
GRAD = 3.
FIRST = np.array([[[[3., 0.], [0., 0.]]]])     # the reference's choice


def judged(got):
    return accept_any_single_maximum(2, INPUTS, got, FIRST)


def test_the_other_maximum_is_accepted():
    other = np.array([[[[0., 0.], [3., 0.]]]])
    assert np.array_equal(judged(other), other)
    assert np.array_equal(judged(FIRST), FIRST)


def test_shared_copied_or_misplaced_gradients_are_not_accepted():
    for wrong in ([[1.5, 0.], [1.5, 0.]], [[3., 0.], [3., 0.]], [[0., 0.], [0., 3.]], [[0., 3.], [0., 0.]],
                  [[0., 0.], [2., 0.]]):
        assert np.array_equal(judged(np.array([[wrong]])), FIRST), wrong


def test_windows_without_ties_keep_the_reference_values():
    inputs = np.array([[[[2., 0.], [1., 1.]]]])
    got = np.array([[[[0., 0.], [3., 0.]]]])
    assert np.array_equal(accept_any_single_maximum(2, inputs, got, FIRST), FIRST)


def test_each_window_is_judged_on_its_own():
    inputs = np.concatenate([INPUTS, np.array([[[[5., 1.], [0., 5.]]]])], axis=3)
    expected = np.concatenate([FIRST, np.array([[[[-1., 0.], [0., 0.]]]])], axis=3)
    got = np.concatenate([np.array([[[[0., 0.], [3., 0.]]]]), np.array([[[[0., 0.], [0., -1.]]]])], axis=3)
    assert np.array_equal(accept_any_single_maximum(2, inputs, got, expected), got)
