"""Estimate how many requests per second a cluster can serve for a given model mix.

A linear program: route ``x[n, m]`` requests/s of model ``m`` to node ``n`` and maximise the total
rate ``lam`` such that each model gets its share ``w[m] * lam``; every deployed pair keeps within
its instances (``x * solo * slowdown_at_full_occupancy <= instances``); and every link within its
bandwidth. Scenarios use it to set load as a share of capacity ("70 % load").
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.optimize import linprog

from edgesched.core.cluster import Cluster
from edgesched.errors import ConfigError


def capacity_rps(
    cluster: Cluster, mix: Mapping[str, float], input_bytes: Mapping[str, int]
) -> float:
    """Largest sustainable arrival rate, in requests per second, for the share ``mix``.

    Args:
        cluster: the cluster (profiles and interference coefficients from its catalog).
        mix: model name → relative share of requests.
        input_bytes: model name → bytes sent per request.

    Raises:
        ConfigError: a model of the mix is deployed nowhere.
    """
    names = list(mix)
    total = sum(mix.values())
    share = {m: mix[m] / total for m in names}
    use_interference = cluster.interference.kind == "parametric"
    pairs: list[tuple[int, str, float]] = []  # (node index, model, max rate of the pair)
    for node in cluster.nodes:
        util = {m: cluster.profile(node, m).utilisation.value for m in names if m in node.models}
        full = sum(node.models[m] * u for m, u in util.items())
        alpha = node.device.interference_alpha.value * cluster.interference.alpha_scale
        for m, u in util.items():
            slowdown = 1.0 + alpha * (full - u) if use_interference else 1.0
            solo = cluster.profile(node, m).latency_s.value
            pairs.append((node.index, m, node.models[m] / (solo * slowdown)))
    missing = [m for m in names if not any(p[1] == m for p in pairs)]
    if missing:
        raise ConfigError(f"model(s) {missing} are requested but deployed on no node")
    nv = len(pairs) + 1  # x per pair, then lam
    c = np.zeros(nv)
    c[-1] = -1.0
    a_eq = np.zeros((len(names), nv))
    for k, (_, m, _) in enumerate(pairs):
        a_eq[names.index(m), k] = 1.0
    a_eq[:, -1] = [-share[m] for m in names]
    rows, rhs = [], []
    link_rows: dict[object, np.ndarray] = {}
    for k, (n, m, _) in enumerate(pairs):
        link = cluster.nodes[n].link
        if link is None:
            continue
        key = link.index if link.shared else (link.index, n)
        row = link_rows.setdefault(key, np.zeros(nv))
        row[k] = input_bytes[m]
        if len(link_rows) > len(rhs):
            rhs.append(link.bandwidth_bytes_per_s)
    rows.extend(link_rows.values())
    bounds = [(0.0, cap) for _, _, cap in pairs] + [(0.0, None)]
    res = linprog(
        c,
        A_ub=np.array(rows) if rows else None,
        b_ub=np.array(rhs) if rows else None,
        A_eq=a_eq,
        b_eq=np.zeros(len(names)),
        bounds=bounds,
        method="highs",
    )
    if res.status != 0:  # pragma: no cover - the LP is always feasible (lam = 0)
        raise RuntimeError(f"capacity LP failed: {res.message}")
    return float(res.x[-1])
