"""Device selection and model placement by integer linear programming (``edgesched plan``).

Example:
    >>> from edgesched.plan import PlanRequest, make_plan  # doctest: +SKIP
    >>> plan = make_plan(PlanRequest(scenario, budget_usd=1000, max_nodes=20))  # doctest: +SKIP
    >>> plan.figures.efficiency  # inferences per joule  # doctest: +SKIP

Names are imported on first use, so ``import edgesched.plan`` (and the CLI) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Bounds": "edgesched.plan.ilp",
    "Configs": "edgesched.plan.configs",
    "Demand": "edgesched.plan.demand",
    "Figures": "edgesched.plan.figures",
    "Limits": "edgesched.plan.configs",
    "Plan": "edgesched.plan.planner",
    "PlanInfeasible": "edgesched.plan.infeasible",
    "PlanRequest": "edgesched.plan.planner",
    "Solution": "edgesched.plan.ilp",
    "cluster_config": "edgesched.plan.output",
    "make_plan": "edgesched.plan.planner",
    "solve": "edgesched.plan.ilp",
    "verify": "edgesched.plan.verify",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'edgesched.plan' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
