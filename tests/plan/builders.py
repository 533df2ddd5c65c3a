"""Tiny planning problems: a three-kind catalog, demands and a network, small enough to
enumerate every plan by hand."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations_with_replacement

import numpy as np
import yaml
from scipy.optimize import linprog

from edgesched.catalog import Catalog
from edgesched.core.cluster import LinkConfig
from edgesched.core.scenario import ScenarioConfig
from edgesched.plan.configs import Configs, Limits, enumerate_configs
from edgesched.plan.demand import Demand
from edgesched.plan.ilp import Bounds
from edgesched.plan.network import Network
from edgesched.sim.interference import ParametricInterference
from tests.builders import CatalogBuilder, est

NETWORK = Network(
    lan=LinkConfig(id="lan", bandwidth_bytes_per_s=125e6, rtt_s=0.0005),
    wan=LinkConfig(id="wan", bandwidth_bytes_per_s=2.5e6, rtt_s=0.02, shared=True),
)


def tiny_catalog() -> Catalog:
    """``big`` ($300, 5-20 W), ``small`` ($100, 1.5-5 W) edge boards and a ``cloud`` ($1000)."""
    catalog = (
        CatalogBuilder()
        .device("big", idle_w=5.0, peak_w=20.0, alpha=0.5)
        .device("small", idle_w=1.5, peak_w=5.0, alpha=1.0)
        .device("cloud", kind="cloud", idle_w=30.0, peak_w=100.0, alpha=0.2)
        .model("a")
        .model("b", flops=4e9)
        .profile("big", "a", 0.004, 0.3)
        .profile("big", "b", 0.010, 0.5)
        .profile("small", "a", 0.012)
        .profile("small", "b", 0.040)
        .profile("cloud", "a", 0.001, 0.05)
        .profile("cloud", "b", 0.002, 0.1)
        .build()
    )
    prices = {"big": 300.0, "small": 100.0, "cloud": 1000.0}
    devices = [
        d.model_copy(update={"price_usd": est(prices[d.name])}) for d in catalog.devices.values()
    ]
    return Catalog(
        devices, catalog.models.values(), [catalog.profile(d, m) for d in prices for m in "ab"]
    )


def tiny_demand(rates: dict[str, float], slo_s: float = 0.1, headroom: float = 1.25) -> Demand:
    """Poisson demand at ``rates`` (model → requests/s), 1000-byte requests."""
    return Demand(
        models=tuple(rates),
        rate_rps=np.array(list(rates.values()), dtype=float),
        slo_s=np.full(len(rates), slo_s),
        input_bytes=np.full(len(rates), 1000.0),
        headroom=headroom,
    )


def tiny_configs(catalog: Catalog, demand: Demand, limits: Limits | None = None) -> Configs:
    """Every kept configuration of the tiny catalog's three kinds (two instances at most)."""
    interference = ParametricInterference(catalog)
    limits = limits or Limits(max_instances=2, max_total=2)
    return enumerate_configs(catalog, interference, list(catalog.devices), demand, NETWORK, limits)


def plan_value(cf: Configs, demand: Demand, x: np.ndarray, goal: str) -> float | None:
    """Best objective of the plan ``x``: an LP over the load split, written independently of
    :mod:`edgesched.plan._lp` (variables: one ``y`` per served (config, model), then ``a``)."""
    pairs = [
        (c, m)
        for c in np.flatnonzero(x)
        for m in range(len(cf.models))
        if cf.capacity_rps[c, m] > 0
    ]
    n = len(pairs) + 1
    a_eq = np.zeros((len(cf.models), n))
    for j, (_, m) in enumerate(pairs):
        a_eq[m, j] = 1.0
    a_eq[:, -1] = -demand.rate_rps
    a_ub = np.zeros((len(pairs) + 1, n))
    b_ub = np.zeros(len(pairs) + 1)
    for j, (c, m) in enumerate(pairs):
        a_ub[j, j] = demand.provision
        b_ub[j] = cf.capacity_rps[c, m] * x[c]
        if cf.cloud[cf.kind[c]]:
            a_ub[-1, j] = demand.provision * demand.input_bytes[m]
    b_ub[-1] = NETWORK.wan.bandwidth_bytes_per_s
    cost = np.zeros(n)
    if goal == "efficiency":
        cost[:-1] = [cf.energy_j[c, m] for c, m in pairs]
    elif goal == "throughput":
        cost[-1] = -1.0
    bounds = [(0, None)] * len(pairs) + [(1, None if goal == "throughput" else 1)]
    res = linprog(
        cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=np.zeros(len(cf.models)), bounds=bounds
    )
    if res.status != 0:
        return None
    if goal == "efficiency":
        return float(res.fun + x @ cf.idle_w[cf.kind])
    if goal == "throughput":
        return float(res.x[-1])
    return float(x @ cf.price_usd[cf.kind])


def brute_force(cf: Configs, demand: Demand, bounds: Bounds, goal: str) -> float | None:
    """The best objective over every multiset of at most ``bounds.max_nodes`` configurations."""
    assert bounds.max_nodes is not None
    best: float | None = None
    for n in range(1, bounds.max_nodes + 1):
        for combo in combinations_with_replacement(range(len(cf)), n):
            x = np.bincount(np.array(combo), minlength=len(cf))
            if bounds.budget_usd is not None and x @ cf.price_usd[cf.kind] > bounds.budget_usd:
                continue
            if bounds.power_cap_w is not None and x @ cf.full_power_w > bounds.power_cap_w:
                continue
            value = plan_value(cf, demand, x, goal)
            if value is None:
                continue
            if best is None or (value > best if goal == "throughput" else value < best):
                best = value
    return best


def scenario(models: dict[str, dict[str, float]], **extra: object) -> ScenarioConfig:
    """A scenario of catalog models (``weight``, ``slo_s`` per model) with ``extra`` fields."""
    cfg = {"name": "test", "requests": 2000, "models": models, **extra}
    return ScenarioConfig.parse(yaml.safe_dump(cfg))


def rates(values: Sequence[float]) -> dict[str, float]:
    """``{"a": values[0], "b": values[1], ...}``."""
    return dict(zip("ab", values, strict=False))
