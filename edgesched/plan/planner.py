"""``make_plan``: from a scenario and limits to the MILP's plan and the baselines beside it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgesched.core.cluster import Cluster
from edgesched.core.scenario import ScenarioConfig
from edgesched.errors import ConfigError, UnknownNameError
from edgesched.plan.baselines import greedy, homogeneous
from edgesched.plan.configs import Configs, Limits, enumerate_configs
from edgesched.plan.demand import DEFAULT_HEADROOM, Demand, demand_for
from edgesched.plan.figures import Figures, evaluate
from edgesched.plan.ilp import DEFAULT_GAP, DEFAULT_TIME_LIMIT_S, Bounds, Objective, Solution, solve
from edgesched.plan.infeasible import check_coverage, diagnose
from edgesched.plan.network import Network, default_network
from edgesched.sim.runner import make_interference

#: Reports progress: (step description, steps done, steps in all).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PlanRequest:
    """What to plan for.

    Attributes:
        scenario: the workload.
        budget_usd: most money for devices.
        max_nodes: most devices.
        objective: ``efficiency``, ``throughput`` or ``cost``.
        power_cap_w: most power with every instance busy, watts.
        devices: device kinds allowed (default: every catalog device).
        profiles: measured profile files that calibrate the catalog.
        rate_rps: overrides the scenario's mean rate.
        reference: cluster whose capacity resolves a scenario ``load``.
        headroom: capacity kept above the busiest arrival state's rate.
        limits: bounds of the per-kind enumeration.
        time_limit_s: time limit of each MILP solve, seconds.
        gap: relative optimality gap at which a solve stops.
        baselines: also compute the greedy and homogeneous baselines.
    """

    scenario: ScenarioConfig
    budget_usd: float
    max_nodes: int
    objective: Objective = "efficiency"
    power_cap_w: float | None = None
    devices: Sequence[str] | None = None
    profiles: Sequence[Path] = ()
    rate_rps: float | None = None
    reference: Path | None = None
    headroom: float = DEFAULT_HEADROOM
    limits: Limits = field(default_factory=Limits)
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    gap: float = DEFAULT_GAP
    baselines: bool = True

    @property
    def bounds(self) -> Bounds:
        """The side constraints."""
        return Bounds(self.budget_usd, self.max_nodes, self.power_cap_w)


@dataclass(frozen=True)
class Baseline:
    """A baseline plan and the MILP's plan with the baseline's cost as budget.

    Attributes:
        name: ``greedy`` or ``homogeneous``.
        figures: the baseline plan's figures (None when it found no plan).
        device: the one device kind of the homogeneous plan.
        matched: the MILP's plan for the same objective with ``budget = figures.cost_usd``.
    """

    name: str
    figures: Figures | None
    device: str | None = None
    matched: Figures | None = None


@dataclass(frozen=True)
class Plan:
    """The MILP's plan and everything needed to report, write and check it."""

    request: PlanRequest
    site: Cluster
    demand: Demand
    network: Network
    configs: Configs
    solution: Solution
    figures: Figures
    baselines: tuple[Baseline, ...]
    enumerate_s: float


def _site(request: PlanRequest) -> Cluster:
    """A cluster without nodes: the catalog (measured profiles applied) the plan uses."""
    from edgesched.catalog import load_catalog
    from edgesched.profile.schema import ProfileFile

    site = Cluster("plan", (), (), load_catalog())
    if request.profiles:
        site = site.with_measured([ProfileFile.load(p) for p in request.profiles])
    return site


def _devices(request: PlanRequest, site: Cluster) -> list[str]:
    known = site.catalog.devices
    names = list(dict.fromkeys(request.devices or known))
    for name in names:
        if name not in known:
            raise UnknownNameError("device", name, known)
    return names


def _check_limits(request: PlanRequest) -> None:
    checks = (
        (request.budget_usd > 0, f"--budget must be > 0 USD, got {request.budget_usd}"),
        (request.max_nodes >= 1, f"--max-nodes must be at least 1, got {request.max_nodes}"),
        (
            request.power_cap_w is None or request.power_cap_w > 0,
            f"--power-cap must be > 0 W, got {request.power_cap_w}",
        ),
        (request.time_limit_s > 0, f"--time-limit must be > 0 s, got {request.time_limit_s}"),
        (0 <= request.gap < 1, f"--gap must be in [0, 1), got {request.gap}"),
    )
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def make_plan(request: PlanRequest, progress: Progress | None = None) -> Plan:
    """Enumerate configurations, solve the MILP and the baselines, and evaluate them.

    Raises:
        ConfigError: bad limits, or no absolute rate for the scenario.
        UnknownNameError: an unknown device or model.
        PlanInfeasible: no plan meets the demand; the message names the binding constraint.
    """
    _check_limits(request)
    report = progress or (lambda _step, _done, _total: None)
    site = _site(request)
    devices = _devices(request, site)
    reference = Cluster.load(request.reference) if request.reference is not None else None
    demand = demand_for(request.scenario, site, request.rate_rps, reference, request.headroom)
    network = default_network()
    began = time.perf_counter()
    configs = enumerate_configs(
        site.catalog,
        make_interference(site),
        devices,
        demand,
        network,
        request.limits,
        lambda done: report("enumerating configurations", done, len(devices)),
    )
    enumerate_s = time.perf_counter() - began
    check_coverage(configs, site.catalog, demand, network, devices)

    def plan_for(bounds: Bounds, starts: list[np.ndarray]) -> tuple[Solution, Figures | None]:
        sol = solve(
            configs,
            demand,
            network,
            bounds,
            request.objective,
            starts=starts,
            time_limit_s=request.time_limit_s,
            gap=request.gap,
        )
        return sol, _figures(configs, demand, network, sol.x)

    starts: list[np.ndarray] = []
    baseline_plans: dict[str, tuple[str | None, Figures | None]] = {}
    if request.baselines:
        report("baselines", 0, 2)
        by_greedy = greedy(configs, demand, network, request.bounds)
        if by_greedy is not None:
            starts.append(by_greedy)
        baseline_plans["greedy"] = (None, _figures(configs, demand, network, by_greedy))
        report("baselines", 1, 2)
        kinds = len(np.unique(configs.kind))
        limit = request.time_limit_s / kinds
        best = homogeneous(
            configs, demand, network, request.bounds, request.objective, limit, request.gap
        )
        by_kind = None if best is None else best.solution.x
        if by_kind is not None:
            starts.append(by_kind)
        baseline_plans["homogeneous"] = (
            best and best.kind,
            _figures(configs, demand, network, by_kind),
        )
        report("baselines", 2, 2)
    report("solving the MILP", 0, 1)
    solution, figures = plan_for(request.bounds, starts)
    if figures is None:
        raise diagnose(configs, demand, network, request.bounds, request.time_limit_s)
    starts.append(figures.x)
    report("comparing at equal cost", 0, 1)
    baselines = []
    # cheapest baseline first, so that each comparison starts from the plans found before it
    for name, (device, plan) in sorted(
        baseline_plans.items(),
        key=lambda item: np.inf if item[1][1] is None else item[1][1].cost_usd,
    ):
        matched = plan
        if plan is not None and figures.cost_usd <= plan.cost_usd + 1e-9:
            matched = figures
        elif plan is not None:
            bounds = Bounds(plan.cost_usd, request.max_nodes, request.power_cap_w)
            matched = plan_for(bounds, starts)[1]
            if matched is not None:
                starts.append(matched.x)
        baselines.append(Baseline(name, plan, device, matched))
    baselines.sort(key=lambda b: list(baseline_plans).index(b.name))
    return Plan(
        request, site, demand, network, configs, solution, figures, tuple(baselines), enumerate_s
    )


def _figures(
    configs: Configs, demand: Demand, network: Network, x: np.ndarray | None
) -> Figures | None:
    return None if x is None else evaluate(configs, demand, network, x)
