"""Why no plan exists, in one line that names the binding constraint and what would fix it.

* A model no allowed device kind can serve alone within its SLO (or memory) is named with the
  fastest device's latency, before anything is solved.
* When the MILP is infeasible, each side constraint (budget, node count, power cap) is dropped in
  turn and its quantity minimised under the others: the least budget, node count or power cap
  that would be feasible. When no single one is to blame, the message gives the cheapest plan with
  none of them; when even that fails, the WAN (the only limit left) is named.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edgesched.catalog import Catalog
from edgesched.errors import ConfigError
from edgesched.plan.configs import MEMORY_FACTOR, Configs
from edgesched.plan.demand import Demand
from edgesched.plan.ilp import DEFAULT_TIME_LIMIT_S, Bounds, Goal, solve
from edgesched.plan.network import Network


class PlanInfeasible(ConfigError):
    """No plan meets the demand under the given constraints.

    Attributes:
        constraint: ``slo``, ``memory``, ``budget``, ``max_nodes``, ``power_cap``, ``together``
            or ``wan``.
        smallest: the least value of that constraint that would be feasible, where known.
    """

    def __init__(self, message: str, constraint: str, smallest: float | None = None) -> None:
        super().__init__(message)
        self.constraint = constraint
        self.smallest = smallest


def check_coverage(
    configs: Configs, catalog: Catalog, demand: Demand, network: Network, devices: list[str]
) -> None:
    """Raise :class:`PlanInfeasible` for a model no configuration serves."""
    served = (configs.counts > 0).any(axis=0)
    for m in np.flatnonzero(~served):
        name, slo = demand.models[m], float(demand.slo_s[m])
        latency = {
            d: network.transfer_s(catalog.device(d).kind == "cloud", demand.input_bytes[m])
            + catalog.profile(d, name).latency_s.value
            for d in devices
        }
        fastest = min(latency, key=latency.__getitem__)
        if latency[fastest] > slo:
            raise PlanInfeasible(
                f"model {name!r} has an SLO of {slo * 1e3:.1f} ms that no allowed device meets "
                f"even alone: the fastest, {fastest}, needs {latency[fastest] * 1e3:.1f} ms "
                "(transfer + compute); relax the SLO or allow a faster device",
                "slo",
                latency[fastest],
            )
        need = MEMORY_FACTOR * catalog.model(name).weight_bytes
        raise PlanInfeasible(
            f"model {name!r} needs {need / 2**20:.0f} MiB per instance ({MEMORY_FACTOR:g} × its "
            "FP32 weights), more than any allowed device that meets its SLO has; allow a device "
            "with more memory",
            "memory",
            need,
        )


_RELAX: tuple[tuple[str, Goal, str, str], ...] = (  # field, goal, constraint, in words
    ("budget_usd", "cost", "budget", "budget"),
    ("max_nodes", "nodes", "max_nodes", "node count"),
    ("power_cap_w", "busy-power", "power_cap", "power cap"),
)


def _describe(field: str, value: float) -> str:
    return {
        "budget_usd": f"a budget of ${value:,.0f} (--budget {value:.0f})",
        "max_nodes": f"{value:.0f} nodes (--max-nodes {value:.0f})",
        "power_cap_w": f"a power cap of {value:,.1f} W (--power-cap {value:.1f})",
    }[field]


def diagnose(
    configs: Configs,
    demand: Demand,
    network: Network,
    bounds: Bounds,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> PlanInfeasible:
    """The error to raise when the MILP under ``bounds`` is infeasible."""
    given = {
        "budget_usd": bounds.budget_usd and f"budget ${bounds.budget_usd:,.0f}",
        "max_nodes": bounds.max_nodes and f"{bounds.max_nodes} nodes",
        "power_cap_w": bounds.power_cap_w and f"power cap {bounds.power_cap_w:,.1f} W",
    }
    head = (
        f"no plan carries {demand.total_rps:,.0f} requests/s (capacity × {demand.provision:.3g} "
        f"for bursts and headroom) within {', '.join(str(t) for t in given.values() if t)}"
    )
    fixes: list[tuple[str, str, str, float]] = []
    for field, goal, name, words in _RELAX:
        if getattr(bounds, field) is None:
            continue
        relaxed = replace(bounds, **{field: None})
        sol = solve(configs, demand, network, relaxed, goal, time_limit_s=time_limit_s)
        if sol.feasible and sol.objective is not None:
            step = 0.1 if field == "power_cap_w" else 1.0  # round up to what the message prints
            value = float(np.ceil(sol.objective / step - 1e-6) * step)
            note = "" if sol.status == "optimal" else " or less (best found in the time limit)"
            fixes.append((name, words, f"{_describe(field, value)}{note}", value))
    if fixes:
        binding = " and ".join(words for _, words, _, _ in fixes)
        others = "; ".join(text for _, _, text, _ in fixes)
        return PlanInfeasible(
            f"{head}: the {binding} binds; smallest feasible with the other limits as given: "
            f"{others}",
            fixes[0][0],
            fixes[0][3],
        )
    free = solve(configs, demand, network, Bounds(), "cost", time_limit_s=time_limit_s)
    if free.feasible and free.x is not None:
        cost = float(free.x @ configs.price_usd[configs.kind])
        return PlanInfeasible(
            f"{head}: no single limit is to blame, they bind together; without them the cheapest "
            f"plan costs ${cost:,.0f} with {int(free.x.sum())} nodes and "
            f"{float(free.x @ configs.full_power_w):,.1f} W busy",
            "together",
            cost,
        )
    return PlanInfeasible(
        f"{head}: no number of the allowed devices carries it; the cloud devices share the WAN "
        f"link ({network.wan.bandwidth_bytes_per_s:,.0f} bytes/s) and the edge devices cannot "
        "take the rest; allow more edge devices or lower the rate",
        "wan",
    )
