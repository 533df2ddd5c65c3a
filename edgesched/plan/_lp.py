"""The planning program in matrix form, and its LP relaxation by column generation.

Variables are ``[x, y, a]`` (plus one artificial per model in phase one): ``x`` per configuration,
``y`` per (configuration, model) pair the configuration serves, and the demand scale ``a``.
Equality rows: demand per model. Inequality rows, in this order: capacity per pair, the WAN, then
budget, node count and power cap where given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from edgesched.plan.configs import Configs
from edgesched.plan.demand import Demand
from edgesched.plan.network import Network

Goal = Literal["efficiency", "throughput", "cost", "nodes", "busy-power"]

_BATCH = 200  # most configurations brought in per round
_STATUS = {0: "optimal", 1: "time limit", 2: "infeasible", 3: "unbounded", 4: "error"}


def status_name(code: int) -> str:
    """HiGHS's status code in words."""
    return _STATUS.get(code, "error")


@dataclass(frozen=True)
class Problem:
    """Everything the program depends on except which configurations it holds.

    Attributes:
        configs: every configuration.
        demand: per-model mean rates, bytes and provisioning factor.
        network: the WAN bandwidth.
        sides: ``(limit, coefficient per configuration)`` of budget, nodes and power cap rows.
        goal: what to optimise.
        provision: the provisioning factor ``rho``.
    """

    configs: Configs
    demand: Demand
    network: Network
    sides: tuple[tuple[float, np.ndarray], ...]
    goal: Goal
    provision: float

    def x_cost(self, phase_one: bool = False) -> np.ndarray:
        """Objective coefficient of ``x`` per configuration."""
        cf = self.configs
        if phase_one or self.goal == "throughput":
            return np.zeros(len(cf))
        return {
            "efficiency": cf.idle_w[cf.kind],
            "cost": cf.price_usd[cf.kind],
            "nodes": np.ones(len(cf)),
            "busy-power": cf.full_power_w,
        }[self.goal]

    def y_cost(self, phase_one: bool = False) -> np.ndarray:
        """Objective coefficient of ``y`` per configuration and model."""
        if self.goal == "efficiency" and not phase_one:
            return self.configs.energy_j
        return np.zeros(self.configs.energy_j.shape)


@dataclass(frozen=True)
class Program:
    """The program over the configurations ``cols`` in the form HiGHS takes.

    Attributes:
        cols: configurations (indices into :class:`Configs`) whose ``x`` it holds.
        pc, pm: configuration (local index) and model of each ``y`` (the exact program).
        cost, lb, ub: objective and variable bounds.
        a_eq, a_ub, b_ub: demand rows (right-hand side 0), then the inequality rows.
        eq_scale: factor each demand row was scaled by.
        ub_scale: factor the WAN row and each side row were scaled by.
    """

    cols: np.ndarray
    pc: np.ndarray
    pm: np.ndarray
    cost: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    a_eq: Any
    a_ub: Any
    b_ub: np.ndarray
    eq_scale: np.ndarray
    ub_scale: np.ndarray


def build(
    problem: Problem,
    cols: np.ndarray,
    fixed_x: np.ndarray | None = None,
    phase_one: bool = False,
    aggregate: bool = False,
    at_least: np.ndarray | None = None,
    at_most: np.ndarray | None = None,
) -> Program:
    """The program over configurations ``cols`` (``fixed_x``: their device counts, fixed;
    ``at_least``, ``at_most``: bounds on them).

    With ``aggregate``, ``y`` is one variable per (device kind, model) whose capacity row sums the
    kind's configurations, and its energy is the least of those configurations': for the
    objectives without energy this is the same program, for ``efficiency`` a relaxation.
    """
    from scipy.sparse import coo_array, csr_array, vstack

    cf, demand, rho = problem.configs, problem.demand, problem.provision
    capacity = cf.capacity_rps[cols]
    kind = cf.kind[cols]
    n_c, n_m = len(cols), len(cf.models)
    pc, pm = np.nonzero(capacity)
    energy = problem.y_cost(phase_one)[cols][pc, pm]
    if aggregate:
        keys, group = np.unique(kind[pc] * n_m + pm, return_inverse=True)
        pair_model, pair_cloud = keys % n_m, cf.cloud[keys // n_m]
        pair_cost = np.full(len(keys), np.inf)
        np.minimum.at(pair_cost, group, energy)
    else:
        group, pair_model, pair_cloud, pair_cost = (
            np.arange(len(pc)),
            pm,
            cf.cloud[kind[pc]],
            energy,
        )
    n_p = len(pair_model)
    a_col = n_c + n_p
    n_v = a_col + 1 + (n_m if phase_one else 0)
    pairs = np.arange(n_p)
    # Rows are scaled to right-hand sides and coefficients near 1 (HiGHS's numerics): demand by
    # 1 / lambda_m, capacity by 1 / cap, the WAN and side rows by 1 / their limit.
    rate = np.where(demand.rate_rps > 0, demand.rate_rps, 1.0)
    eq_scale = 1.0 / rate
    eq_r = [pair_model, np.arange(n_m)]
    eq_c = [n_c + pairs, np.full(n_m, a_col)]
    eq_v = [eq_scale[pair_model], -demand.rate_rps * eq_scale]
    if phase_one:
        eq_r.append(np.arange(n_m))
        eq_c.append(a_col + 1 + np.arange(n_m))
        eq_v.append(eq_scale)
    a_eq = coo_array(
        (np.concatenate(eq_v), (np.concatenate(eq_r), np.concatenate(eq_c))), shape=(n_m, n_v)
    )
    pair_cap = np.zeros(n_p)
    np.maximum.at(pair_cap, group, capacity[pc, pm])
    capacity_rows = coo_array(
        (
            np.concatenate([rho / pair_cap, -capacity[pc, pm] / pair_cap[group]]),
            (np.concatenate([pairs, group]), np.concatenate([n_c + pairs, pc])),
        ),
        shape=(n_p, n_v),
    )
    limits = np.array(
        [problem.network.wan.bandwidth_bytes_per_s, *(lim for lim, _ in problem.sides)]
    )
    wan = np.flatnonzero(pair_cloud)
    wan_row = coo_array(
        (
            rho * demand.input_bytes[pair_model[wan]] / limits[0],
            (np.zeros(len(wan), dtype=np.int64), n_c + wan),
        ),
        shape=(1, n_v),
    )
    side_rows = np.zeros((len(problem.sides), n_v))
    for i, (limit, coef) in enumerate(problem.sides):
        side_rows[i, :n_c] = coef[cols] / limit
    a_ub = vstack([capacity_rows, wan_row, csr_array(side_rows)], format="csr")
    b_ub = np.concatenate([np.zeros(n_p), np.ones(1 + len(problem.sides))])
    cost = np.zeros(n_v)
    cost[:n_c] = problem.x_cost(phase_one)[cols]
    cost[n_c:a_col] = pair_cost
    if phase_one:
        cost[a_col + 1 :] = 1.0
    elif problem.goal == "throughput":
        cost[a_col] = -1.0
    x_lo = np.zeros(n_c) if at_least is None else at_least.astype(float)
    x_lo = x_lo if fixed_x is None else fixed_x.astype(float)
    x_hi = np.full(n_c, np.inf) if at_most is None else at_most.astype(float)
    x_hi = x_hi if fixed_x is None else fixed_x.astype(float)
    a_hi = np.inf if problem.goal == "throughput" and not phase_one else 1.0
    rest = n_v - a_col - 1
    return Program(
        cols=cols,
        pc=pc,
        pm=pm,
        cost=cost,
        lb=np.concatenate([x_lo, np.zeros(n_p), [1.0], np.zeros(rest)]),
        ub=np.concatenate([x_hi, np.full(n_p, np.inf), [a_hi], np.full(rest, np.inf)]),
        a_eq=a_eq.tocsr(),
        a_ub=a_ub,
        b_ub=b_ub,
        eq_scale=eq_scale,
        ub_scale=1.0 / limits,
    )


def run_milp(
    prog: Program, integral: bool, time_limit_s: float, gap: float, cutoff: float | None = None
) -> Any:
    """Solve ``prog`` with HiGHS's MILP solver (an LP when not ``integral``); ``cutoff`` keeps
    only points whose objective is at most that."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    integrality = np.zeros(len(prog.cost))
    if integral:
        integrality[: len(prog.cols)] = 1
    zeros = np.zeros(prog.a_eq.shape[0])
    rows = [
        LinearConstraint(prog.a_eq, zeros, zeros),
        LinearConstraint(prog.a_ub, -np.inf, prog.b_ub),
    ]
    if cutoff is not None:
        rows.append(LinearConstraint(prog.cost[None, :], -np.inf, cutoff))
    return milp(
        prog.cost,
        integrality=integrality,
        bounds=Bounds(prog.lb, prog.ub),
        constraints=rows,
        options={"time_limit": max(time_limit_s, 0.01), "mip_rel_gap": gap, "disp": False},
    )


def run_lp(prog: Program) -> Any:
    """Solve ``prog`` as an LP with HiGHS (duals in ``eqlin``, ``ineqlin``, ``lower``)."""
    from scipy.optimize import linprog

    return linprog(
        prog.cost,
        A_ub=prog.a_ub,
        b_ub=prog.b_ub,
        A_eq=prog.a_eq,
        b_eq=np.zeros(prog.a_eq.shape[0]),
        bounds=np.column_stack([prog.lb, prog.ub]),
        method="highs",
    )


def _duals(prog: Program, res: Any) -> tuple[np.ndarray, np.ndarray]:
    """Demand duals and the WAN and side rows' duals of ``res``, for the unscaled rows."""
    n_p = prog.a_ub.shape[0] - len(prog.ub_scale)
    pi = np.asarray(res.eqlin.marginals) * prog.eq_scale
    mu = np.asarray(res.ineqlin.marginals)[n_p:] * prog.ub_scale
    return pi, mu


def reduced_costs(problem: Problem, prog: Program, res: Any, phase_one: bool) -> np.ndarray:
    """Reduced cost of one more device of every configuration, its ``y`` chosen at best.

    With ``pi`` the demand duals and ``mu`` the inequality duals of ``res`` (an LP over
    ``prog``): ``d_c = cx_c - sum_s mu_s coef_{s,c} + sum_m min(0, cy_{c,m} - pi_m
    - mu_wan rho bytes_m [c cloud]) cap_{c,m} / rho``.
    """
    cf, rho = problem.configs, problem.provision
    pi, mu = _duals(prog, res)
    mu_wan, mu_side = mu[0], mu[1:]
    rc = problem.x_cost(phase_one).astype(float)
    for mu_s, (_, coef) in zip(mu_side, problem.sides, strict=True):
        rc = rc - mu_s * coef
    wan = rho * problem.demand.input_bytes[None, :] * cf.cloud[cf.kind][:, None]
    per_y = problem.y_cost(phase_one) - pi[None, :] - mu_wan * wan
    return rc + (np.minimum(per_y, 0.0) * cf.capacity_rps).sum(axis=1) / rho


def dive(problem: Problem, cols: np.ndarray, x: np.ndarray, deadline: float) -> np.ndarray | None:
    """An integer plan near the LP solution ``x`` (devices per configuration of ``cols``).

    Fix every configuration at least at its rounded-down count and solve the LP over ``cols``
    again, until the counts are whole; when rounding down fixes nothing new, round the count
    closest to the next whole number up, or, if that makes the LP infeasible, down. Returns None
    when no plan is left or time runs out.
    """
    lo, hi = np.floor(x + 1e-9), np.full(len(cols), np.inf)
    while time.perf_counter() < deadline:
        res = run_lp(build(problem, cols, at_least=lo, at_most=hi))
        if res.status != 0:
            return None
        x = res.x[: len(cols)]
        whole = np.floor(x + 1e-9)
        part = x - whole
        if part.max() <= 1e-6:
            out = np.zeros(len(problem.configs), dtype=np.int64)
            out[cols] = whole.astype(np.int64)
            return out
        if np.any(whole > lo):
            lo = whole
            continue
        i = int(np.argmax(part))
        up = lo.copy()
        up[i] = whole[i] + 1
        if run_lp(build(problem, cols, at_least=up, at_most=hi)).status == 0:
            lo = up
        else:
            hi[i] = whole[i]
    return None


@dataclass(frozen=True)
class Relaxation:
    """The LP relaxation over every allowed configuration.

    Attributes:
        status: ``optimal``, ``infeasible``, ``unbounded``, ``time limit`` or ``error``.
        value: its optimum (a bound on the MILP's).
        reduced: reduced cost per configuration (at least 0 at the optimum).
        active: configurations the column generation brought in.
        x: the relaxation's devices per configuration (fractional).
        model_value: dual price of one more request/s of each model.
        device_cost: objective cost of one more device of each configuration, side constraints
            priced at their duals.
        message: what went wrong, if anything.
    """

    status: str
    value: float
    reduced: np.ndarray
    active: np.ndarray
    x: np.ndarray
    model_value: np.ndarray
    device_cost: np.ndarray
    message: str


def relax(problem: Problem, allowed: np.ndarray, deadline: float) -> Relaxation:
    """Solve the LP relaxation over the ``allowed`` configurations by column generation.

    It starts from each kind's largest-capacity configuration of each model, prices every
    configuration with :func:`reduced_costs` and brings in the most negative ones, first for
    feasibility (phase one: minimise the unmet demand), then for the objective.
    """
    cf = problem.configs
    active = np.zeros(len(cf), dtype=bool)
    for k in np.unique(cf.kind[allowed]):
        of_kind = np.flatnonzero(allowed & (cf.kind == k))
        active[of_kind[np.argmax(cf.capacity_rps[of_kind], axis=0)]] = True
    scale = max(1.0, problem.demand.total_rps)
    none = np.zeros(0)
    phase_one = True
    while True:
        prog = build(problem, np.flatnonzero(active), phase_one=phase_one)
        res = run_lp(prog)
        if res.status != 0:
            return Relaxation(
                status_name(res.status), np.nan, none, active, none, none, none, res.message
            )
        rc = reduced_costs(problem, prog, res, phase_one)
        tol = 1e-7 * max(1.0, abs(res.fun))
        fresh = allowed & ~active & (rc < -tol)
        if fresh.any() and time.perf_counter() < deadline:
            best = np.flatnonzero(fresh)[np.argsort(rc[fresh], kind="stable")[:_BATCH]]
            active[best] = True
            continue
        if fresh.any():
            return Relaxation("time limit", np.nan, rc, active, none, none, none, "out of time")
        if not phase_one:
            x = np.zeros(len(cf))
            x[prog.cols] = res.x[: len(prog.cols)]
            mu = np.asarray(res.ineqlin.marginals)[len(prog.pc) + 1 :]
            cost = problem.x_cost() - sum(
                m * c for m, (_, c) in zip(mu, problem.sides, strict=True)
            )
            pi = np.asarray(res.eqlin.marginals)
            return Relaxation(
                "optimal", float(res.fun), np.maximum(rc, 0.0), active, x, pi, cost, ""
            )
        if res.fun > 1e-7 * scale:
            return Relaxation(
                "infeasible",
                np.nan,
                rc,
                active,
                none,
                none,
                none,
                "the LP relaxation is infeasible",
            )
        phase_one = False
