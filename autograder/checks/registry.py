"""The registry of target kinds: which module plans and judges which kind of target.

TRUSTED. Each kind is one module of `autograder.checks` whose planner class
(a `base.TargetPlanner`) registers itself with `register`; `KIND_MODULES`
lists those modules, so adding a kind is writing its module and adding its
name here. Nothing else in the grader branches on a kind.
"""

from __future__ import annotations

import importlib

#: The modules that define the kinds (imported once, on first use).
KIND_MODULES = ('layer', 'stochastic_layer', 'function', 'error', 'penalty', 'learning_rule',
                'scheduler')

KINDS: dict = {}


def register(planner_class):
    """Class decorator: makes `planner_class.kind` plannable."""
    if planner_class.kind in KINDS and KINDS[planner_class.kind] is not planner_class:
        raise ValueError('target kind {0!r} is registered twice'.format(planner_class.kind))
    KINDS[planner_class.kind] = planner_class
    return planner_class


def _load_kinds() -> None:
    for name in KIND_MODULES:
        importlib.import_module('autograder.checks.' + name)


def planner_class(kind: str):
    """The planner class of a kind (KeyError for an unknown kind)."""
    return KINDS[kind]


def allowed_checks(kind: str, method: str | None) -> tuple[str, ...]:
    """The check kinds a target kind can run on a method (None: the whole target)."""
    return tuple(KINDS[kind].METHOD_CHECKS.get(method, ()))


def planner_for(spec, item):
    """A planner of the item's target kind."""
    return KINDS[spec.targets[item.class_name].kind](spec, item)


_load_kinds()
