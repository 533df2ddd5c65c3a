"""``--verify``: simulate the planned cluster on the scenario's workload and compare.

The cluster file the plan wrote is loaded as ``edgesched simulate`` would load it, and the
scenario runs at the plan's rate (a scenario ``load`` is replaced by that absolute rate). Arrivals
are random, so the drawn workload's mean rate and mix differ from the nominal ones (a bursty
process over a short run by several percent); the prediction is therefore re-evaluated at the
drawn per-model rates, scaling the plan's load split, before it is set beside the simulation.
The plan does not model queueing: its SLO prediction is that every request meets its SLO (each
configuration meets every SLO with every instance busy), so simulated attainment below 1 is
queueing delay, mostly in bursts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgesched.core.cluster import Cluster
from edgesched.core.scenario import TraceArrivals

if TYPE_CHECKING:
    from edgesched.plan.planner import Plan

DEFAULT_POLICY = "min-expected-completion"
"""Routing for the check: it sends each request where it is expected to finish first, from the
same profiles and interference model the plan used, so load lands on the fast, efficient
configurations the plan loads most."""


@dataclass(frozen=True)
class Check:
    """Predicted against simulated figures.

    Attributes:
        policy: routing policy of the simulation.
        requests: requests simulated.
        nominal_rate_rps: the plan's mean rate.
        predicted: throughput_rps, energy_per_request_j, power_w and slo_attainment predicted
            at the drawn workload's rates.
        simulated: the same figures from the simulation.
        metrics: the simulation's full metrics.
    """

    policy: str
    requests: int
    nominal_rate_rps: float
    predicted: dict[str, float]
    simulated: dict[str, float]
    metrics: dict[str, Any]

    @property
    def ratios(self) -> dict[str, float]:
        """Simulated over predicted, per figure."""
        return {k: self.simulated[k] / self.predicted[k] for k in self.predicted}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "policy": self.policy,
            "requests": self.requests,
            "nominal_rate_rps": self.nominal_rate_rps,
            "predicted": self.predicted,
            "simulated": self.simulated,
            "ratio": self.ratios,
        }


def verify(
    plan: Plan,
    cluster_path: Path,
    policy: str = DEFAULT_POLICY,
    requests: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Check:
    """Simulate the cluster written to ``cluster_path`` and compare it with ``plan``."""
    from edgesched.sim.runner import simulate

    scenario = plan.request.scenario
    if not isinstance(scenario.arrivals, TraceArrivals):
        scenario = scenario.model_copy(update={"rate_rps": plan.demand.total_rps, "load": None})
    if requests is not None:
        scenario = scenario.model_copy(update={"requests": requests})
    result = simulate(Cluster.load(cluster_path), scenario, policy, progress=progress)
    wl = result.workload
    span = float(wl.times[-1] - wl.times[0])
    index = {m: i for i, m in enumerate(wl.model_names)}
    counts = np.bincount(wl.models, minlength=len(wl.model_names))
    drawn = np.array([counts[index[m]] for m in plan.demand.models]) / span
    fig, cf = plan.figures, plan.configs
    rates = plan.demand.rate_rps
    scale = np.divide(drawn, rates, out=np.zeros_like(drawn), where=rates > 0)
    power = float(fig.x @ cf.idle_w[cf.kind] + (cf.energy_j * fig.load_rps * scale).sum())
    rate = float(drawn.sum())
    metrics = result.metrics
    return Check(
        policy=metrics.policy,
        requests=metrics.requests,
        nominal_rate_rps=plan.demand.total_rps,
        predicted={
            "throughput_rps": rate,
            "energy_per_request_j": power / rate,
            "power_w": power,
            "slo_attainment": 1.0,
        },
        simulated={
            "throughput_rps": metrics.throughput_rps,
            "energy_per_request_j": metrics.energy_per_request_j,
            "power_w": metrics.energy_total_j / metrics.duration_s,
            "slo_attainment": metrics.slo_attainment,
        },
        metrics=metrics.to_dict(),
    )
