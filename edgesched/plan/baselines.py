"""Baselines the MILP is compared with, under the same constraints.

* **greedy**: buy, one device at a time, the configuration that adds the most still-needed
  capacity per dollar (:func:`edgesched.plan.greedy.greedy_cover`), until every model's demand ×
  provision is covered; stop when nothing affordable within the node count and power cap helps.
* **homogeneous**: the MILP restricted to one device kind, for every kind; the best of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgesched.plan.configs import Configs
from edgesched.plan.demand import Demand
from edgesched.plan.greedy import greedy_cover
from edgesched.plan.ilp import DEFAULT_TIME_LIMIT_S, Bounds, Objective, Solution, solve
from edgesched.plan.network import Network


def greedy(configs: Configs, demand: Demand, network: Network, bounds: Bounds) -> np.ndarray | None:
    """Devices per configuration chosen by throughput per dollar; None when it gets stuck."""
    return greedy_cover(
        configs, demand, network, bounds.budget_usd, bounds.max_nodes, bounds.power_cap_w
    )


@dataclass(frozen=True)
class Homogeneous:
    """The best one-kind plan: its kind and its solution."""

    kind: str
    solution: Solution


def homogeneous(
    configs: Configs,
    demand: Demand,
    network: Network,
    bounds: Bounds,
    objective: Objective,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    gap: float = 1e-3,
) -> Homogeneous | None:
    """The best plan using a single device kind (None when no kind alone is feasible)."""
    best: Homogeneous | None = None
    for k, kind in enumerate(configs.kinds):
        if not (configs.kind == k).any():
            continue
        mask = np.arange(len(configs.kinds)) == k
        sol = solve(
            configs,
            demand,
            network,
            bounds,
            objective,
            kinds=mask,
            time_limit_s=time_limit_s,
            gap=gap,
        )
        if not sol.feasible:
            continue
        assert sol.objective is not None
        better = best is None or (
            sol.objective > best.solution.objective  # type: ignore[operator]
            if objective == "throughput"
            else sol.objective < best.solution.objective  # type: ignore[operator]
        )
        if better:
            best = Homogeneous(kind, sol)
    return best
