"""The MILP against brute-force enumeration of every plan of tiny instances."""

from __future__ import annotations

import numpy as np
import pytest

from edgesched.plan.ilp import OBJECTIVES, Bounds, solve
from tests.plan.builders import (
    NETWORK,
    brute_force,
    plan_value,
    rates,
    tiny_catalog,
    tiny_configs,
    tiny_demand,
)

CASES = {
    # name: (per-model mean rates, bounds)
    "one model, budget binds": ([300.0], Bounds(budget_usd=700, max_nodes=4)),
    "two models, nodes bind": ([300.0, 60.0], Bounds(budget_usd=1500, max_nodes=3)),
    "two models, power cap": ([200.0, 40.0], Bounds(budget_usd=1200, max_nodes=4, power_cap_w=30)),
    "two models, cloud and WAN": ([1500.0, 300.0], Bounds(budget_usd=2500, max_nodes=3)),
}


@pytest.mark.parametrize("goal", OBJECTIVES)
@pytest.mark.parametrize("case", list(CASES))
def test_milp_optimum_equals_the_best_enumerated_plan(case: str, goal: str) -> None:
    values, bounds = CASES[case]
    demand = tiny_demand(rates(values))
    configs = tiny_configs(tiny_catalog(), demand)
    best = brute_force(configs, demand, bounds, goal)
    sol = solve(configs, demand, NETWORK, bounds, goal, gap=0.0)  # type: ignore[arg-type]
    assert best is not None, "the case should be feasible"
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(best, rel=1e-6)
    assert sol.gap == pytest.approx(0.0, abs=1e-6)


def test_solution_respects_every_constraint() -> None:
    demand = tiny_demand(rates([300.0, 60.0]))
    configs = tiny_configs(tiny_catalog(), demand)
    bounds = Bounds(budget_usd=1500, max_nodes=3, power_cap_w=60)
    sol = solve(configs, demand, NETWORK, bounds, "efficiency", gap=0.0)
    assert sol.x is not None and sol.y is not None
    assert sol.x @ configs.price_usd[configs.kind] <= 1500
    assert sol.x.sum() <= 3
    assert sol.x @ configs.full_power_w <= 60 + 1e-9
    np.testing.assert_allclose(sol.y.sum(axis=0), demand.rate_rps, rtol=1e-6)
    assert np.all(demand.provision * sol.y <= configs.capacity_rps * sol.x[:, None] + 1e-6)
    power = sol.x @ configs.idle_w[configs.kind] + (configs.energy_j * sol.y).sum()
    assert sol.objective == pytest.approx(power)


def test_infeasible_is_reported_as_such() -> None:
    demand = tiny_demand(rates([300.0, 60.0]))
    configs = tiny_configs(tiny_catalog(), demand)
    sol = solve(configs, demand, NETWORK, Bounds(budget_usd=150, max_nodes=3), "efficiency")
    assert sol.status == "infeasible"
    assert not sol.feasible
    assert brute_force(configs, demand, Bounds(budget_usd=150, max_nodes=3), "efficiency") is None


def test_kinds_mask_keeps_to_one_kind() -> None:
    demand = tiny_demand(rates([300.0]))
    configs = tiny_configs(tiny_catalog(), demand)
    small = np.array([kind == "small" for kind in configs.kinds])
    sol = solve(configs, demand, NETWORK, Bounds(budget_usd=1000, max_nodes=8), "cost", kinds=small)
    assert sol.x is not None
    used = {configs.kinds[k] for k in configs.kind[sol.x > 0]}
    assert used == {"small"}
    # 300 req/s x 1.25 at 83.3 req/s per small board: 5 boards
    assert sol.objective == pytest.approx(500.0)


def test_fixed_plan_spreads_load_at_least_power() -> None:
    demand = tiny_demand(rates([300.0]))
    configs = tiny_configs(tiny_catalog(), demand)
    x = np.zeros(len(configs), dtype=np.int64)
    for c in range(len(configs)):
        if configs.describe(c) == {"a": 1} and configs.kinds[configs.kind[c]] != "cloud":
            x[c] = 2  # two big and two small boards, one instance each
    sol = solve(configs, demand, NETWORK, Bounds(), "efficiency", fixed_x=x)
    assert sol.y is not None
    assert sol.objective == pytest.approx(plan_value(configs, demand, x, "efficiency"))
    big = next(c for c in np.flatnonzero(x) if configs.kinds[configs.kind[c]] == "big")
    assert sol.y[big, 0] > 0, "the efficient big boards carry load"
