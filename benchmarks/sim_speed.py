"""Simulator speed: simulated requests per wall-clock second at 10, 100 and 1,000 nodes.

Each size runs ``--repeat`` times, each in its own process so that its peak memory is its own;
the figures are the median run's (``requests_per_s_runs`` lists every run). The cluster cycles
through five edge device kinds, with five models deployed on every node (one or two instances),
1 % cloud nodes behind a shared WAN link, interference on, Poisson arrivals at 70 % of the
estimated capacity. Prints one JSON object per size:
``{nodes, requests, policy, engine, wall_s, sim_wall_s, requests_per_s, peak_rss_mb,
target_requests_per_s, ratio_to_target}`` (the target, 200,000 requests/s, applies at 100 nodes).
``wall_s`` covers the whole ``simulate`` call (arrivals, simulation, metrics); ``sim_wall_s`` the
event loop alone.

Usage: python benchmarks/sim_speed.py [--sizes 10,100,1000] [--requests 1000000] [--policy pow2]
       [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

TARGET_RPS = 200_000
EDGE = [
    "jetson-nano-4gb",
    "jetson-xavier-nx",
    "jetson-orin-nano-8gb",
    "jetson-orin-nx-16gb",
    "jetson-agx-orin-64gb",
]
MODELS = [
    "mobilenet_v2",
    "efficientnet_b0",
    "resnet18",
    "ssdlite320_mobilenet_v3_large",
    "resnet50",
]


def cluster_yaml(nodes: int) -> str:
    """A cluster of ``nodes`` nodes: edge kinds in rotation plus 1 % cloud servers (at least 1)."""
    cloud = max(1, nodes // 100)
    lines = ["name: bench", "nodes:"]
    for i in range(nodes - cloud):
        models = ", ".join(f"{m}: {1 + (i + j) % 2}" for j, m in enumerate(MODELS))
        lines.append(
            f"  - {{id: e{i}, device: {EDGE[i % len(EDGE)]}, link: lan, models: {{{models}}}}}"
        )
    models = ", ".join(f"{m}: 4" for m in MODELS)
    lines.append(
        f"  - {{id: cloud, count: {cloud}, device: cloud-a100, link: wan, models: {{{models}}}}}"
    )
    lines += [
        "links:",
        "  - {id: lan, bandwidth_bytes_per_s: 125.0e6, rtt_s: 0.0005}",
        "  - {id: wan, bandwidth_bytes_per_s: 12.5e6, rtt_s: 0.04, shared: true}",
    ]
    return "\n".join(lines) + "\n"


def scenario_yaml(requests: int) -> str:
    """Poisson arrivals of the five models at 70 % of capacity."""
    models = "\n".join(f"  {m}: {{weight: 1, slo_s: 0.1, input_bytes: 25000}}" for m in MODELS)
    return f"name: bench\nseed: 1\nrequests: {requests}\nload: 0.7\nmodels:\n{models}\n"


def run_one(nodes: int, requests: int, policy: str) -> dict[str, object]:
    """Simulate one size in this process and return its figures."""
    from edgesched.core.cluster import Cluster
    from edgesched.core.scenario import ScenarioConfig
    from edgesched.sim import ENGINE_KIND
    from edgesched.sim.runner import simulate

    cluster = Cluster.parse(cluster_yaml(nodes))
    scenario = ScenarioConfig.parse(scenario_yaml(requests))
    began = time.perf_counter()
    result = simulate(cluster, scenario, policy)
    wall = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB
    return {
        "nodes": nodes,
        "requests": requests,
        "policy": policy,
        "engine": ENGINE_KIND,
        "wall_s": round(wall, 3),
        "sim_wall_s": round(result.wall_s, 3),
        "requests_per_s": round(requests / wall),
        "sim_requests_per_s": round(requests / result.wall_s),
        "peak_rss_mb": round(peak_mb, 1),
        "target_requests_per_s": TARGET_RPS,
        "ratio_to_target": round(requests / wall / TARGET_RPS, 3),
        "p99_latency_s": round(result.metrics.latency_p99_s, 6),
    }


def main() -> None:
    """Run every size in a child process and print its JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000", help="node counts, comma-separated")
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--policy", default="pow2")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the median is kept")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.requests, args.policy)))
        return
    for size in (int(s) for s in args.sizes.split(",")):
        cmd = [
            sys.executable,
            __file__,
            "--one",
            str(size),
            "--requests",
            str(args.requests),
            "--policy",
            args.policy,
        ]
        runs = []
        for _ in range(max(1, args.repeat)):
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
        runs.sort(key=lambda r: r["requests_per_s"])
        median = dict(runs[len(runs) // 2])
        median["requests_per_s_runs"] = [r["requests_per_s"] for r in runs]
        print(json.dumps(median), flush=True)


if __name__ == "__main__":
    main()
