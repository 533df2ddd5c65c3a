"""Greedy cover: add devices one at a time, each time the configuration that adds the most
still-needed capacity per unit of its weight.

Capacity beyond what a model still needs counts for nothing, and a cloud configuration counts
only what the WAN can still carry. With the price as weight this is the **greedy** baseline
(throughput per dollar); the MILP also uses it, with its own objective's weight, to complete the
LP relaxation's rounded-down plan into a first incumbent.
"""

from __future__ import annotations

import numpy as np

from edgesched.plan.configs import Configs
from edgesched.plan.demand import Demand
from edgesched.plan.network import Network

_EPS = 1e-9


def greedy_cover(
    configs: Configs,
    demand: Demand,
    network: Network,
    budget_usd: float | None = None,
    max_nodes: int | None = None,
    power_cap_w: float | None = None,
    *,
    weight: np.ndarray | None = None,
    value: np.ndarray | None = None,
    start: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
) -> np.ndarray | None:
    """Devices per configuration covering every model's demand × provision; None when stuck.

    Args:
        configs: the configurations.
        demand: per-model rates, bytes and provisioning factor.
        network: the WAN bandwidth.
        budget_usd, max_nodes, power_cap_w: side constraints (None: no limit).
        weight: cost of one device of each configuration (default: its price).
        value: worth of one request/s of capacity of each model (default: 1).
        start: devices already bought (default: none).
        allowed: configurations that may be added (default: all).
    """
    x = np.zeros(len(configs), dtype=np.int64) if start is None else start.astype(np.int64)
    cols = np.flatnonzero(np.ones(len(configs), bool) if allowed is None else allowed)
    price_all = configs.price_usd[configs.kind]
    cloud_all = configs.cloud[configs.kind]
    spent, busy = float(x @ price_all), float(x @ configs.full_power_w)
    need = np.maximum(demand.provision * demand.rate_rps - x @ configs.capacity_rps, 0.0)
    sent = float(x[cloud_all] @ configs.capacity_rps[cloud_all] @ demand.input_bytes)
    wan_left = max(network.wan.bandwidth_bytes_per_s - sent, 0.0)
    capacity, price = configs.capacity_rps[cols], price_all[cols]
    power, cloud = configs.full_power_w[cols], cloud_all[cols]
    weight = price if weight is None else np.maximum(weight[cols], _EPS)
    worth = np.ones(len(demand.models)) if value is None else np.maximum(value, _EPS)
    budget = np.inf if budget_usd is None else budget_usd
    nodes = np.inf if max_nodes is None else max_nodes
    power_cap = np.inf if power_cap_w is None else power_cap_w
    while need.max() > _EPS * max(1.0, demand.provision * demand.total_rps):
        useful = np.minimum(capacity, need)
        carried = useful @ demand.input_bytes
        squeeze = np.where(cloud & (carried > wan_left), wan_left / np.maximum(carried, _EPS), 1.0)
        useful = useful * squeeze[:, None]
        score = (useful @ worth) / weight
        fits = (
            (spent + price <= budget + _EPS)
            & (x.sum() + 1 <= nodes)
            & (busy + power <= power_cap + _EPS)
            & (score > 0)
        )
        if not fits.any():
            return None
        i = int(np.flatnonzero(fits)[np.argmax(score[fits])])
        x[cols[i]] += 1
        need = np.maximum(need - useful[i], 0.0)
        spent += price[i]
        busy += power[i]
        if cloud[i]:
            wan_left -= float(useful[i] @ demand.input_bytes)
    return x
