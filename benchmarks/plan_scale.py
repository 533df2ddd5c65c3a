"""Planner scale: MILP solve time and optimality gap as device kinds, models and nodes grow.

Sizes (device kinds, models, max nodes): (5, 3, 20) and (13, 7, 100) on the built-in catalog,
(50, 20, 1000) on a synthetic catalog. Each size plans for Poisson demand under the
``efficiency`` objective with the planner's defaults (4 instances per model, 8 per device,
distinct models per device as many as keep 5,000 count vectors per kind, time limit 10 s,
relative gap 0.1 %), a budget of $400 per node on average and a rate at which covering each
model with its cheapest one-model edge configuration takes at most half the budget, and covering
it with its most capable one takes at most half the nodes.

Synthetic catalog (seeded, ``--seed``): 45 edge kinds (device class drawn from jetson, sbc, x86;
sustained FLOP/s log-uniform 2e10-2e12; price log-uniform $50-$2,500; memory 2-64 GiB; idle
2-10 W; peak idle × 3-8; interference alpha 0.3-1.0) and 5 cloud kinds (datacenter-gpu;
5e12-3e13 FLOP/s; $5,000-$40,000; 16-80 GiB; idle 30-60 W; peak idle × 4-7; alpha 0.2-0.5).
Models: FLOP log-uniform 3e8-2e10, parameters 1e6-5e7, 3×224×224 inputs, 25 kB per request,
weights 0.5-2, SLO 4 × the FLOP over the median edge FLOP/s (at least 20 ms, at most 400 ms).
Profiles come from the catalog's estimation formulas, as for any pair without a published one.

Prints one JSON object: ``{"target_solve_s": 10, "target_gap": 0.01, "sizes": [{kinds, models,
max_nodes, rate_rps, budget_usd, configurations, enumerated, variables, status, objective_w,
gap, solve_s, enumerate_s, solve_ratio_to_target, gap_ratio_to_target}, ...]}``.

Usage: python benchmarks/plan_scale.py [--sizes 5x3x20,13x7x100,50x20x1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from edgesched.catalog import Catalog, load_catalog
from edgesched.core.cluster import Cluster
from edgesched.core.sourced import Sourced
from edgesched.core.specs import DeviceSpec, ModelSpec
from edgesched.plan.configs import Configs, enumerate_configs
from edgesched.plan.demand import Demand
from edgesched.plan.ilp import Bounds, solve
from edgesched.plan.network import default_network
from edgesched.sim.runner import make_interference

TARGET_SOLVE_S = 10.0
TARGET_GAP = 0.01
BUDGET_PER_NODE_USD = 400.0
SMALL = (
    ["jetson-nano-4gb", "jetson-orin-nano-8gb", "raspberry-pi-5", "x86-mini-pc", "cloud-t4"],
    {"mobilenet_v2": 0.05, "resnet18": 0.08, "resnet50": 0.15},
)
MEDIUM_MODELS = {
    "mobilenet_v2": 0.05,
    "efficientnet_b0": 0.06,
    "resnet18": 0.08,
    "ssdlite320_mobilenet_v3_large": 0.10,
    "resnet50": 0.15,
    "yolov8n": 0.15,
    "vit_b_16": 0.30,
}


def _synthetic(value: float, what: str) -> Sourced:
    return Sourced(value=float(value), source="estimated", ref=f"synthetic benchmark {what}")


def synthetic_catalog(kinds: int, models: int, seed: int) -> tuple[Catalog, dict[str, float]]:
    """A seeded catalog of ``kinds`` devices (one in ten cloud) and ``models`` models, and each
    model's SLO (see the module docstring for the ranges)."""
    rng = np.random.default_rng(seed)

    def logu(lo: float, hi: float) -> float:
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))

    devices = []
    n_cloud = max(1, kinds // 10)
    for i in range(kinds):
        cloud = i >= kinds - n_cloud
        idle = rng.uniform(30, 60) if cloud else rng.uniform(2, 10)
        devices.append(
            DeviceSpec(
                name=f"{'cloud' if cloud else 'edge'}-{i:02d}",
                kind="cloud" if cloud else "edge",
                device_class="datacenter-gpu"
                if cloud
                else str(rng.choice(["jetson", "sbc", "x86"])),
                accelerator="synthetic",
                price_usd=_synthetic(logu(5000, 40000) if cloud else logu(50, 2500), "price"),
                memory_bytes=_synthetic(
                    2**30 * (rng.uniform(16, 80) if cloud else rng.uniform(2, 64)), "memory"
                ),
                cpu_cores=_synthetic(rng.integers(4, 33), "cores"),
                idle_power_w=_synthetic(idle, "idle power"),
                peak_power_w=_synthetic(idle * rng.uniform(*((4, 7) if cloud else (3, 8))), "peak"),
                effective_flops=_synthetic(
                    logu(5e12, 3e13) if cloud else logu(2e10, 2e12), "flops"
                ),
                interference_alpha=_synthetic(
                    rng.uniform(0.2, 0.5) if cloud else rng.uniform(0.3, 1.0), "alpha"
                ),
            )
        )
    median_edge = float(np.median([d.effective_flops.value for d in devices if d.kind == "edge"]))
    specs, slos = [], {}
    for j in range(models):
        flops = logu(3e8, 2e10)
        name = f"model-{j:02d}"
        specs.append(
            ModelSpec(
                name=name,
                task="classification",
                input_shape=(3, 224, 224),
                flops=_synthetic(flops, "flops"),
                params=_synthetic(logu(1e6, 5e7), "params"),
            )
        )
        slos[name] = float(np.clip(4 * flops / median_edge, 0.02, 0.4))
    return Catalog(devices, specs), slos


def cover(configs: Configs, unit: Demand, what: str) -> float:
    """Price or node count per 1 request/s of the mix when each model gets the edge one-model
    configuration cheapest (or most capable) for it (the WAN keeps cloud shares small)."""
    single = ((configs.counts > 0).sum(axis=1) == 1) & ~configs.cloud[configs.kind]
    each = configs.price_usd[configs.kind] if what == "price" else np.ones(len(configs))
    capacity = configs.capacity_rps[single]
    with np.errstate(divide="ignore"):
        per_rps = np.where(capacity > 0, each[single, None] / capacity, np.inf)
    return unit.provision * float(unit.rate_rps @ per_rps.min(axis=0))


def run_size(kinds: int, models: int, max_nodes: int, seed: int) -> dict[str, object]:
    """Enumerate, calibrate the demand and solve one size; return its figures."""
    if (kinds, models) == (len(SMALL[0]), len(SMALL[1])):
        catalog, devices, slos = load_catalog(), SMALL[0], SMALL[1]
    elif kinds == len(load_catalog().devices) and models == len(MEDIUM_MODELS):
        catalog, slos = load_catalog(), MEDIUM_MODELS
        devices = list(catalog.devices)
    else:
        catalog, slos = synthetic_catalog(kinds, models, seed)
        devices = list(catalog.devices)
    rng = np.random.default_rng(seed + 1)
    names = tuple(slos)
    weights = rng.uniform(0.5, 2.0, len(names))
    unit = Demand(
        models=names,
        rate_rps=weights / weights.sum(),
        slo_s=np.array([slos[m] for m in names]),
        input_bytes=np.full(len(names), 25_000.0),
    )
    network = default_network()
    site = Cluster("bench", (), (), catalog)
    began = time.perf_counter()
    configs = enumerate_configs(catalog, make_interference(site), devices, unit, network)
    enumerate_s = time.perf_counter() - began
    budget = BUDGET_PER_NODE_USD * max_nodes
    rate = 0.5 * min(
        budget / cover(configs, unit, "price"), max_nodes / cover(configs, unit, "nodes")
    )
    demand = Demand(
        models=names,
        rate_rps=unit.rate_rps * rate,
        slo_s=unit.slo_s,
        input_bytes=unit.input_bytes,
    )
    sol = solve(configs, demand, network, Bounds(budget, max_nodes), "efficiency", gap=TARGET_GAP)
    gap = sol.gap if sol.gap is not None else float("inf")
    return {
        "kinds": kinds,
        "models": models,
        "max_nodes": max_nodes,
        "rate_rps": rate,
        "budget_usd": budget,
        "configurations": len(configs),
        "enumerated": configs.enumerated,
        "variables": len(configs) + int(np.count_nonzero(configs.capacity_rps)) + 1,
        "status": sol.status,
        "objective_w": sol.objective,
        "nodes": None if sol.x is None else int(sol.x.sum()),
        "gap": gap,
        "solve_s": sol.solve_s,
        "enumerate_s": enumerate_s,
        "solve_ratio_to_target": sol.solve_s / TARGET_SOLVE_S,
        "gap_ratio_to_target": gap / TARGET_GAP,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5x3x20,13x7x100,50x20x1000")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    results = [run_size(k, m, n, args.seed) for k, m, n in sizes]
    print(
        json.dumps({"target_solve_s": TARGET_SOLVE_S, "target_gap": TARGET_GAP, "sizes": results})
    )


if __name__ == "__main__":
    main()
