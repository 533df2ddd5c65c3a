"""The device-selection and placement MILP, solved with HiGHS (``scipy.optimize.milp``).

Variables: ``x_c`` in Z>=0, devices running configuration ``c``; ``y_{c,m}`` >= 0, mean requests/s
of model ``m`` sent to them; ``a`` >= 1, the scale of the demand served (1 unless maximising
throughput). With ``rho`` the provisioning factor (busiest arrival state × headroom):

* demand:    ``sum_c y_{c,m} = a * lambda_m`` for every model ``m``
* capacity:  ``rho * y_{c,m} <= cap_{c,m} * x_c``
* WAN:       ``rho * sum_{c cloud, m} bytes_m * y_{c,m} <= bandwidth_wan``
* budget:    ``sum_c price_c * x_c <= B``;  nodes: ``sum_c x_c <= N``
* power cap: ``sum_c P^busy_c * x_c <= P_max`` (every instance busy: what the supply must carry)

Objectives: ``efficiency`` minimises the power at the demanded load,
``sum_c P^idle_c x_c + sum_{c,m} E_{c,m} y_{c,m}`` (at a fixed delivered rate this maximises
inferences per joule); ``throughput`` maximises ``a``; ``cost`` minimises the price. ``nodes`` and
``busy-power`` (minimise node count or power cap) serve the infeasibility diagnosis.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from edgesched.plan._lp import (
    Goal,
    Problem,
    Program,
    Relaxation,
    build,
    dive,
    relax,
    run_milp,
    status_name,
)
from edgesched.plan.configs import Configs
from edgesched.plan.demand import Demand
from edgesched.plan.greedy import greedy_cover
from edgesched.plan.network import Network

Objective = Literal["efficiency", "throughput", "cost"]
OBJECTIVES: tuple[Objective, ...] = ("efficiency", "throughput", "cost")

DEFAULT_TIME_LIMIT_S = 10.0
DEFAULT_GAP = 1e-3

_BATCH = 200  # configurations brought into the MILP per round, at least
_SEEDS = 10  # single-configuration plans tried as incumbents
_AGGREGATE_SHARE = 0.5  # of the time limit, for the aggregated relaxation of ``efficiency``
_DIVE_SHARE = 0.25  # of the time left, for rounding the LP relaxation by diving
_NEIGHBOURHOODS = (100, 300)  # configurations of least reduced cost in the first short runs
_NEIGHBOURHOOD_S = 2.0  # longest short run, seconds
_NEIGHBOURHOOD_SHARE = 0.25  # of the time left, at most, per short run
_AGGREGATE_LIMIT = 20_000  # most configurations for which the aggregated program is solved
_INNER_GAP = 0.5  # HiGHS's gap, as a share of the target: its bound covers only the columns in
# its program, the reported gap is against the weaker bound over every configuration


@dataclass(frozen=True)
class Bounds:
    """Right-hand sides of the side constraints; None leaves a constraint out.

    Attributes:
        budget_usd: most money spent on devices.
        max_nodes: most devices.
        power_cap_w: most power with every instance busy, watts.
    """

    budget_usd: float | None = None
    max_nodes: int | None = None
    power_cap_w: float | None = None


@dataclass(frozen=True)
class Solution:
    """What HiGHS returned.

    Attributes:
        status: ``optimal``, ``time limit``, ``infeasible``, ``unbounded`` or ``error``.
        x: devices per configuration (None when no feasible point was found).
        y: mean requests/s per configuration and model.
        scale: ``a``, the scale of the demand served.
        objective: the objective value (watts, scale, USD, nodes or watts).
        gap: HiGHS's relative optimality gap (None for a plain LP).
        solve_s: wall-clock seconds in the solver.
        message: HiGHS's message.
    """

    status: str
    x: np.ndarray | None
    y: np.ndarray | None
    scale: float
    objective: float | None
    gap: float | None
    solve_s: float
    message: str

    @property
    def feasible(self) -> bool:
        """True when a plan was found (optimal or not)."""
        return self.x is not None


def solve(
    configs: Configs,
    demand: Demand,
    network: Network,
    bounds: Bounds,
    goal: Goal = "efficiency",
    *,
    fixed_x: np.ndarray | None = None,
    provision: float | None = None,
    kinds: np.ndarray | None = None,
    starts: Sequence[np.ndarray] = (),
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    gap: float = DEFAULT_GAP,
) -> Solution:
    """Solve the MILP (see the module docstring) within ``time_limit_s``.

    1. The LP relaxation over every configuration, by column generation
       (:func:`edgesched.plan._lp.relax`): its optimum ``z_LP`` bounds the MILP, and a plan
       running configuration ``c`` costs at least ``z_LP + d_c`` (``d_c`` its reduced cost).
    2. Incumbents: the ``starts``, the relaxation rounded by diving
       (:func:`edgesched.plan._lp.dive`) and rounded down then completed greedily (side
       constraints priced at their duals), and the best plans running one configuration only.
    3. Up to 20,000 configurations, the aggregated program (one ``y`` per device kind and model,
       :func:`edgesched.plan._lp.build`): for every objective but ``efficiency`` it is the same
       program and its answer is final; for ``efficiency`` (each kind's least energy per
       inference) it is a relaxation whose bound holds and whose plan is one more incumbent.
    4. The exact program over the configurations the column generation and the incumbents
       brought in; then, only for better plans, again with every configuration whose ``d_c`` is
       below the incumbent minus ``z_LP``, until none is left out or time runs out.

    The gap reported is the best incumbent against the best bound that holds for every
    configuration: the aggregated bound, or the last exact program's bound when no configuration
    is left out, else the smaller of it and ``z_LP`` plus the least ``d_c`` left out.

    Args:
        configs: the configurations.
        demand: per-model mean rates, bytes and provisioning factor.
        network: the WAN bandwidth.
        bounds: budget, node count and power cap.
        goal: what to optimise.
        fixed_x: devices per configuration, fixed (an LP over ``y`` and ``a`` only).
        provision: overrides ``demand.provision`` (1 gives raw capacity).
        kinds: boolean mask of the device kinds allowed (default: all).
        starts: known plans (devices per configuration) to start from.
        time_limit_s: time limit of the whole solve, seconds.
        gap: relative gap at which to stop.
    """
    began = time.perf_counter()
    deadline = began + time_limit_s
    sides = tuple(
        (float(limit), coef)
        for limit, coef in (
            (bounds.budget_usd, configs.price_usd[configs.kind]),
            (bounds.max_nodes, np.ones(len(configs))),
            (bounds.power_cap_w, configs.full_power_w),
        )
        if limit is not None
    )
    rho = demand.provision if provision is None else provision
    problem = Problem(configs, demand, network, sides, goal, rho)
    allowed = np.ones(len(configs), bool) if kinds is None else kinds[configs.kind]
    if fixed_x is not None:
        return _fixed(problem, allowed, np.asarray(fixed_x), began)
    lp = relax(problem, allowed, deadline)
    if lp.status != "optimal":
        return _failed(lp.status, lp.message, began)
    candidates = _incumbents(problem, allowed, lp, bounds, starts, deadline)
    bound = lp.value
    cols = np.flatnonzero(allowed)
    if len(cols) <= _AGGREGATE_LIMIT:
        share = _AGGREGATE_SHARE if goal == "efficiency" else 1.0
        left = deadline - time.perf_counter()
        res = run_milp(build(problem, cols, aggregate=True), True, share * left, gap)
        if res.status == 2:
            return _failed("infeasible", str(res.message), began)
        if res.mip_dual_bound is not None:
            bound = max(bound, float(res.mip_dual_bound))
        if res.x is not None:
            found = np.zeros(len(configs), dtype=np.int64)
            found[cols] = np.rint(res.x[: len(cols)]).astype(np.int64)
            if res.status == 0 and goal != "efficiency":
                best = _fixed(problem, allowed, found, began)
                return replace(best, gap=_rel_gap(float(res.fun), bound))
            candidates.insert(0, found)
    tried = [sol for x in candidates if (sol := _fixed(problem, allowed, x, began)).feasible]
    best = min(tried, key=lambda sol: _minimised(sol, goal), default=None)
    return _refine(problem, allowed, lp, best, bound, candidates, began, deadline, gap)


def _incumbents(
    problem: Problem,
    allowed: np.ndarray,
    lp: Relaxation,
    bounds: Bounds,
    starts: Sequence[np.ndarray],
    deadline: float,
) -> list[np.ndarray]:
    """Step 2 of :func:`solve`: plans to start from (feasible or not; they are checked)."""
    configs = problem.configs
    out = [np.asarray(s) for s in starts]
    cols = np.flatnonzero(allowed & lp.active)
    left = deadline - time.perf_counter()
    dived = dive(problem, cols, lp.x[cols], time.perf_counter() + _DIVE_SHARE * left)
    if dived is not None:
        out.append(dived)
    for start in (np.floor(lp.x + 1e-9), None):  # the relaxation rounded down, or nothing
        rounded = greedy_cover(
            configs,
            problem.demand,
            problem.network,
            bounds.budget_usd,
            bounds.max_nodes,
            bounds.power_cap_w,
            weight=lp.device_cost,
            value=lp.model_value,
            start=start,
            allowed=allowed & lp.active,
        )
        if rounded is not None:
            out.append(rounded)
            break
    for c, n in _single_config_plans(problem, allowed):
        x = np.zeros(len(configs), dtype=np.int64)
        x[c] = n
        out.append(x)
    return out


def _minimised(sol: Solution, goal: Goal) -> float:
    """The value the program minimises (the negated scale when maximising throughput)."""
    return -sol.scale if goal == "throughput" else float(sol.objective)  # type: ignore[arg-type]


def _refine(
    problem: Problem,
    allowed: np.ndarray,
    lp: Relaxation,
    best: Solution | None,
    bound: float,
    candidates: list[np.ndarray],
    began: float,
    deadline: float,
    gap: float,
) -> Solution:
    """Step 4 of :func:`solve`: improve ``best`` with the exact program while time is left.

    Short runs over small neighbourhoods come first (the relaxation's support, the incumbents'
    configurations and the configurations of least reduced cost): on large plans they find good
    incumbents far sooner than a run over every configuration brought in.
    """
    incumbent = np.inf if best is None else _minimised(best, problem.goal)
    order = np.argsort(lp.reduced, kind="stable")
    core = allowed & ((lp.x > 1e-9) | np.any([x > 0 for x in candidates], axis=0))
    for size in _NEIGHBOURHOODS:
        if best is not None and _rel_gap(incumbent, bound) <= gap:
            break
        near = core.copy()
        near[order[:size]] = True
        prog = build(problem, np.flatnonzero(near & allowed))
        left = deadline - time.perf_counter()
        res = run_milp(prog, True, min(_NEIGHBOURHOOD_S, _NEIGHBOURHOOD_SHARE * left), gap)
        if res.x is not None and res.fun < incumbent:
            best = _solution(problem.configs, prog, res, "", None, began)
            incumbent = float(res.fun)
    if best is not None and (_rel_gap(incumbent, bound) <= gap or time.perf_counter() >= deadline):
        return replace(
            best,
            status=_status(incumbent, bound, gap),
            gap=_rel_gap(incumbent, bound),
            solve_s=time.perf_counter() - began,
        )
    active = lp.active | core
    inside = -np.inf  # a bound over the plans that use active configurations only
    cutoff = None  # the first round searches freely; later ones only for better plans
    while True:
        prog = build(problem, np.flatnonzero(active))
        res = run_milp(prog, True, deadline - time.perf_counter(), gap * _INNER_GAP, cutoff)
        if res.x is not None and res.fun < incumbent:
            best = _solution(problem.configs, prog, res, "", None, began)
            incumbent = float(res.fun)
        if res.status == 2:
            inside = np.inf if cutoff is None else cutoff
        else:
            inside = -np.inf if res.mip_dual_bound is None else float(res.mip_dual_bound)
        out_of_time = res.status == 1 or time.perf_counter() >= deadline
        room = incumbent - lp.value - gap * abs(incumbent)
        wanted = allowed & ~active & (lp.reduced < room)
        if out_of_time or not wanted.any():
            break
        active[order[wanted[order]][: max(_BATCH, int(active.sum()))]] = True
        cutoff = incumbent - gap * abs(incumbent)
    if best is None:
        return _failed("infeasible" if not out_of_time else "time limit", str(res.message), began)
    left_out = allowed & ~active
    outside = lp.value + lp.reduced[left_out].min() if left_out.any() else np.inf
    bound = max(bound, min(inside, outside))
    status = _status(incumbent, bound, gap)
    note = "gap within target" if status == "optimal" else "stopped at the time limit"
    return replace(
        best,
        status=status,
        gap=_rel_gap(incumbent, bound),
        solve_s=time.perf_counter() - began,
        message=f"{note}; last HiGHS run: {res.message}",
    )


def _rel_gap(incumbent: float, bound: float) -> float:
    return max(incumbent - bound, 0.0) / max(abs(incumbent), 1e-12)


def _status(incumbent: float, bound: float, gap: float) -> str:
    return "optimal" if _rel_gap(incumbent, bound) <= gap * (1 + 1e-6) else "time limit"


def _fixed(problem: Problem, allowed: np.ndarray, x: np.ndarray, began: float) -> Solution:
    """The best spread of the load over the devices ``x`` (an LP)."""
    cols = np.flatnonzero(allowed & (x > 0))
    prog = build(problem, cols, fixed_x=x[cols])
    res = run_milp(prog, False, DEFAULT_TIME_LIMIT_S, DEFAULT_GAP)
    if res.x is None:
        return _failed(status_name(res.status), str(res.message), began)
    return _solution(problem.configs, prog, res, "optimal", None, began)


def _single_config_plans(problem: Problem, allowed: np.ndarray) -> list[tuple[int, int]]:
    """``(configuration, devices)`` of the best few plans that run one configuration only, within
    the side constraints (their objective estimated with every device's load at its share)."""
    cf, demand, rho = problem.configs, problem.demand, problem.provision
    need = rho * demand.rate_rps
    with np.errstate(divide="ignore", invalid="ignore"):
        covered = np.where(need > 0, cf.capacity_rps / need, np.inf).min(axis=1)  # per device
        devices = np.ceil(1.0 / covered - 1e-9)
    wan_ok = ~cf.cloud[cf.kind] | (
        rho * demand.rate_rps @ demand.input_bytes <= problem.network.wan.bandwidth_bytes_per_s
    )
    ok = allowed & wan_ok & np.isfinite(devices)
    devices = np.where(ok, devices, 0.0)
    for limit, coef in problem.sides:
        ok &= devices * coef <= limit + 1e-9
    value = devices * problem.x_cost() + (problem.y_cost() * demand.rate_rps).sum(axis=1)
    picks = np.flatnonzero(ok)[np.argsort(value[ok], kind="stable")][:_SEEDS]
    return [(int(c), int(devices[c])) for c in picks]


def _failed(status: str, message: str, began: float) -> Solution:
    return Solution(status, None, None, 0.0, None, None, time.perf_counter() - began, message)


def _solution(
    configs: Configs, prog: Program, res: Any, status: str, gap: float | None, began: float
) -> Solution:
    n_c = len(prog.cols)
    x = np.zeros(len(configs), dtype=np.int64)
    x[prog.cols] = np.rint(res.x[:n_c]).astype(np.int64)
    y = np.zeros(configs.capacity_rps.shape)
    y[prog.cols[prog.pc], prog.pm] = np.maximum(res.x[n_c : n_c + len(prog.pc)], 0.0)
    scale = float(res.x[n_c + len(prog.pc)])
    value = scale if prog.cost[n_c + len(prog.pc)] < 0 else float(res.fun)
    took = time.perf_counter() - began
    return Solution(status, x, y, scale, value, gap, took, str(res.message))
