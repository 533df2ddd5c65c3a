"""A plan as a ``cluster.yaml`` that ``edgesched simulate`` and ``serve`` use as is, and as JSON.

Nodes are named after their device kind (``kind``, or ``kind-1``, ``kind-2`` … when a kind runs
several configurations), with ``count`` for identical devices. Edge nodes sit on the ``lan`` link
and cloud nodes on the ``wan`` link (:mod:`edgesched.plan.network`). Measured profiles the plan
used are listed under ``profiles`` by absolute path, so the simulator is calibrated the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgesched.core.cluster import ClusterConfig
from edgesched.core.yamlio import dump_yaml
from edgesched.errors import EdgeschedError
from edgesched.plan.figures import Figures
from edgesched.plan.network import LAN_ID, WAN_ID
from edgesched.plan.planner import Plan


def node_groups(plan: Plan, x: np.ndarray) -> list[tuple[str, int]]:
    """``(node id, configuration)`` of every configuration ``x`` buys, by kind then config."""
    cf = plan.configs
    used = np.flatnonzero(x)
    used = used[np.lexsort((used, cf.kind[used]))]
    out = []
    for k in np.unique(cf.kind[used]):
        of_kind = used[cf.kind[used] == k]
        name = cf.kinds[k]
        if len(of_kind) == 1:
            out.append((name, int(of_kind[0])))
        else:
            out += [(f"{name}-{i + 1}", int(c)) for i, c in enumerate(of_kind)]
    return out


def cluster_config(plan: Plan) -> ClusterConfig:
    """The planned cluster, validated against the catalog."""
    cf, net = plan.configs, plan.network
    x = plan.figures.x
    nodes = [
        {
            "id": node_id,
            "device": cf.kinds[cf.kind[c]],
            "count": int(x[c]),
            "models": cf.describe(c),
            "link": WAN_ID if cf.cloud[cf.kind[c]] else LAN_ID,
        }
        for node_id, c in node_groups(plan, x)
    ]
    links = [
        link.model_dump()
        for link in (net.lan, net.wan)
        if any(node["link"] == link.id for node in nodes)
    ]
    data = {
        "name": f"plan-{plan.request.scenario.name}",
        "nodes": nodes,
        "links": links,
        "profiles": [str(Path(p).resolve()) for p in plan.request.profiles],
    }
    return ClusterConfig.model_validate(data, context={"catalog": plan.site.catalog})


def write_cluster(plan: Plan, path: Path) -> None:
    """Write the planned cluster to ``path``.

    Raises:
        EdgeschedError: the file cannot be written.
    """
    try:
        dump_yaml(cluster_config(plan), path)
    except OSError as exc:
        raise EdgeschedError(f"cannot write {path}: {exc.strerror}") from None


def figures_dict(plan: Plan, figures: Figures) -> dict[str, Any]:
    """A plan's figures as plain JSON-ready values."""
    cf = plan.configs
    devices: dict[str, int] = {}
    for c in np.flatnonzero(figures.x):
        name = cf.kinds[cf.kind[c]]
        devices[name] = devices.get(name, 0) + int(figures.x[c])
    return {
        "cost_usd": figures.cost_usd,
        "nodes": figures.nodes,
        "devices": devices,
        "power_w": figures.power_w,
        "busy_power_w": figures.busy_power_w,
        "throughput_rps": figures.rate_rps,
        "capacity_rps": figures.capacity_rps,
        "efficiency_inferences_per_j": figures.efficiency,
        "energy_per_request_j": figures.energy_per_request_j,
    }


def plan_dict(plan: Plan, out: Path) -> dict[str, Any]:
    """Everything ``edgesched plan --json`` prints (before ``--verify`` adds its check)."""
    cf, demand, fig, sol = plan.configs, plan.demand, plan.figures, plan.solution
    req = plan.request
    share = fig.capacity_rps / fig.rate_rps
    nodes = [
        {
            "id": node_id,
            "device": cf.kinds[cf.kind[c]],
            "count": int(fig.x[c]),
            "models": cf.describe(c),
            "load_rps_per_node": {
                m: float(fig.load_rps[c, j] / fig.x[c])
                for j, m in enumerate(cf.models)
                if cf.counts[c, j]
            },
        }
        for node_id, c in node_groups(plan, fig.x)
    ]
    models = {
        m: {
            "rate_rps": float(demand.rate_rps[j]),
            "capacity_rps": float(demand.rate_rps[j] * share),
            "slo_s": float(demand.slo_s[j]),
            "worst_latency_s": float(
                max(
                    plan.network.transfer_s(bool(cf.cloud[cf.kind[c]]), demand.input_bytes[j])
                    + cf.latency_s[c, j]
                    for c in np.flatnonzero(fig.x)
                    if cf.counts[c, j]
                )
            ),
        }
        for j, m in enumerate(cf.models)
    }
    baselines = {
        b.name: None
        if b.figures is None
        else {
            **figures_dict(plan, b.figures),
            **({"device": b.device} if b.device else {}),
            "ilp_at_same_cost": None if b.matched is None else figures_dict(plan, b.matched),
        }
        for b in plan.baselines
    }
    return {
        "scenario": req.scenario.name,
        "objective": req.objective,
        "out": str(out),
        "demand": {
            "rate_rps": demand.total_rps,
            "rate_basis": demand.basis,
            "peak_factor": demand.peak_factor,
            "headroom": demand.headroom,
            "provision": demand.provision,
        },
        "constraints": {
            "budget_usd": req.budget_usd,
            "max_nodes": req.max_nodes,
            "power_cap_w": req.power_cap_w,
            "devices": list(cf.kinds),
        },
        "configurations": {
            "enumerated": cf.enumerated,
            "kept": len(cf),
            "enumerate_s": plan.enumerate_s,
        },
        "solver": {
            "status": sol.status,
            "objective": sol.objective,
            "gap": sol.gap,
            "solve_s": sol.solve_s,
            "message": sol.message,
        },
        "plan": {**figures_dict(plan, fig), "nodes_by_config": nodes, "models": models},
        "baselines": baselines,
    }
