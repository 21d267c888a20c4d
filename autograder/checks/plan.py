"""Planning and judging the checks of a graded item, whatever its target kind.

TRUSTED. `plan_item` asks the registry for the planner of the item's target
kind (`registry`), which builds the requests the sandboxed child must answer
(plain data: a header and float64 arrays) and a judge that turns the child's
responses into a verdict; `judge_plan` scores it. All expected values,
tolerances and comparisons stay in the parent; the child only ever sees
inputs.
"""

from __future__ import annotations

from autograder.checks import registry
from autograder.checks.base import (  # noqa: F401  (the pipeline's vocabulary)
    CHECK_TITLES, CheckPlan, ResponseProblem, Verdict, judge_plan)
from autograder.course.spec import AssignmentSpec, Item


def plan_item(spec: AssignmentSpec, item: Item, public_only: bool = False) -> list[CheckPlan]:
    """Builds the plans of an item's automatic checks (manual items have none)."""
    checks = [check for check in item.checks if check != 'manual']
    if not checks:
        return []
    planner = registry.planner_for(spec, item)
    plans = [planner.plan(check) for check in checks]
    return [plan for plan in plans if plan.public] if public_only else plans
