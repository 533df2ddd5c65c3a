"""What a plan is predicted to do: cost, power at the demanded load, capacity, efficiency.

Every plan (the MILP's and the baselines') is judged the same way: with its devices fixed, an LP
spreads the demanded mean load over them at least power (the ``efficiency`` objective with ``x``
fixed), and another finds the largest mean rate of the same model mix its devices sustain without
headroom (the ``throughput`` objective with ``x`` fixed and a provisioning factor of 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgesched.plan.configs import Configs
from edgesched.plan.demand import Demand
from edgesched.plan.ilp import Bounds, solve
from edgesched.plan.network import Network


@dataclass(frozen=True)
class Figures:
    """A plan's devices and predicted behaviour.

    Attributes:
        x: devices per configuration.
        load_rps: mean requests/s per configuration (all its devices) and model.
        cost_usd: price of the devices.
        nodes: number of devices.
        power_w: power at the demanded mean load (idle plus dynamic), watts.
        busy_power_w: power with every instance busy, watts.
        rate_rps: demanded mean rate served, requests/s.
        capacity_rps: largest mean rate of the same mix the devices sustain, requests/s.
    """

    x: np.ndarray
    load_rps: np.ndarray
    cost_usd: float
    nodes: int
    power_w: float
    busy_power_w: float
    rate_rps: float
    capacity_rps: float

    @property
    def efficiency(self) -> float:
        """Inferences per joule at the demanded load."""
        return self.rate_rps / self.power_w

    @property
    def energy_per_request_j(self) -> float:
        """Joules per request at the demanded load."""
        return self.power_w / self.rate_rps


def evaluate(configs: Configs, demand: Demand, network: Network, x: np.ndarray) -> Figures | None:
    """The figures of the plan running ``x[c]`` devices of configuration ``c``; None when those
    devices cannot carry the demand with its headroom."""
    x = np.asarray(x, dtype=np.int64)
    spread = solve(configs, demand, network, Bounds(), "efficiency", fixed_x=x)
    if not spread.feasible:
        return None
    peak = solve(configs, demand, network, Bounds(), "throughput", fixed_x=x, provision=1.0)
    assert spread.y is not None and spread.objective is not None
    return Figures(
        x=x,
        load_rps=spread.y,
        cost_usd=float(x @ configs.price_usd[configs.kind]),
        nodes=int(x.sum()),
        power_w=spread.objective,
        busy_power_w=float(x @ configs.full_power_w),
        rate_rps=demand.total_rps,
        capacity_rps=peak.scale * demand.total_rps,
    )
