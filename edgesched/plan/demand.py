"""What the planned cluster must serve: per-model mean rates, SLOs, bytes and burstiness.

A plan is made before any cluster exists, so the scenario's arrival rate must be absolute:
``rate_rps`` in the scenario, ``--rate``, the mean rate of a trace, or ``load`` resolved against a
reference cluster's estimated capacity. Model ``m`` gets ``rate * weight_m / sum(weights)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from edgesched.core.cluster import Cluster
from edgesched.core.scenario import MmppArrivals, ScenarioConfig, TraceArrivals
from edgesched.errors import ConfigError

DEFAULT_HEADROOM = 1.25
"""Capacity kept above the busiest arrival rate (our choice: at most 80 % occupancy at the peak
keeps queueing delay bounded well below saturation)."""


@dataclass(frozen=True)
class Demand:
    """Load the plan must carry.

    Attributes:
        models: model names, in scenario order.
        rate_rps: mean arrival rate per model, requests/s.
        slo_s: latency deadline per model, seconds.
        input_bytes: bytes sent per request, per model.
        states: ``(rate factor relative to the mean, share of time)`` of each arrival state
            (one state ``(1, 1)`` for Poisson arrivals and traces).
        headroom: capacity kept above the busiest state's rate.
        basis: where the rate came from, in words.
    """

    models: tuple[str, ...]
    rate_rps: np.ndarray
    slo_s: np.ndarray
    input_bytes: np.ndarray
    states: tuple[tuple[float, float], ...] = ((1.0, 1.0),)
    headroom: float = DEFAULT_HEADROOM
    basis: str = "given"

    @property
    def total_rps(self) -> float:
        """Mean arrival rate over all models, requests/s."""
        return float(self.rate_rps.sum())

    @property
    def peak_factor(self) -> float:
        """Rate of the busiest arrival state relative to the mean."""
        return max(f for f, _ in self.states)

    @property
    def provision(self) -> float:
        """Capacity needed per unit of mean rate: busiest state's factor × headroom."""
        return self.peak_factor * self.headroom

    def with_rates(self, rate_rps: Sequence[float] | np.ndarray) -> Demand:
        """The same demand at other per-model mean rates."""
        return replace(self, rate_rps=np.asarray(rate_rps, dtype=float))


def arrival_states(scenario: ScenarioConfig) -> tuple[tuple[float, float], ...]:
    """``(rate factor relative to the mean, share of time)`` per arrival state.

    For an MMPP the share of time in a state is its mean dwell over the sum of dwells (jumps are
    uniform) and the factors are normalised to a time-weighted mean of 1, as the simulator does.
    """
    arrivals = scenario.arrivals
    if not isinstance(arrivals, MmppArrivals):
        return ((1.0, 1.0),)
    dwell = np.array([s.mean_dwell_s for s in arrivals.states])
    share = dwell / dwell.sum()
    factors = np.array([s.rate_factor for s in arrivals.states])
    factors = factors / float(share @ factors)
    return tuple((float(f), float(s)) for f, s in zip(factors, share, strict=True))


def demand_for(
    scenario: ScenarioConfig,
    site: Cluster,
    rate_rps: float | None = None,
    reference: Cluster | None = None,
    headroom: float = DEFAULT_HEADROOM,
) -> Demand:
    """The demand of ``scenario``.

    Args:
        scenario: the validated scenario.
        site: a cluster without nodes that carries the catalog the plan uses.
        rate_rps: overrides the scenario's rate (requests/s).
        reference: resolves a scenario ``load`` against this cluster's estimated capacity.
        headroom: capacity kept above the busiest state's rate (>= 1).

    Raises:
        ConfigError: no absolute rate can be found, or ``headroom`` < 1, or an unknown model.
    """
    from edgesched.sim.runner import default_input_bytes, draw_workload, resolve_rate

    if headroom < 1:
        raise ConfigError(f"--headroom must be at least 1, got {headroom}")
    for name in scenario.models:
        site.catalog.model(name)
    if rate_rps is not None:
        if rate_rps <= 0:
            raise ConfigError(f"--rate must be > 0 requests/s, got {rate_rps}")
        total, basis = rate_rps, f"--rate {rate_rps:g} rps"
    elif scenario.rate_rps is not None:
        total, basis = scenario.rate_rps, f"scenario rate_rps {scenario.rate_rps:g}"
    elif isinstance(scenario.arrivals, TraceArrivals):
        total = draw_workload(site, scenario).mean_rate_rps
        basis = f"mean rate of trace {scenario.arrivals.path}"
    elif reference is not None:
        total = resolve_rate(reference, scenario) or 0.0
        basis = f"load {scenario.load:g} × estimated capacity of cluster {reference.name!r}"
    else:
        raise ConfigError(
            f"scenario {scenario.name!r} sets load: {scenario.load:g} (a share of a cluster's "
            "capacity), but a plan has no cluster yet: give --rate RPS, or --capacity-of "
            "CLUSTER.yaml to take the load of that cluster's estimated capacity"
        )
    weights = np.array([m.weight for m in scenario.models.values()])
    size = default_input_bytes(site, scenario)
    return Demand(
        models=tuple(scenario.models),
        rate_rps=total * weights / weights.sum(),
        slo_s=np.array([m.slo_s for m in scenario.models.values()]),
        input_bytes=np.array([size[m] for m in scenario.models], dtype=float),
        states=arrival_states(scenario),
        headroom=headroom,
        basis=basis,
    )
