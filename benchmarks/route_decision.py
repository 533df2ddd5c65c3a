"""Decision time of the exported learned router at 10, 100 and 1,000 nodes.

The shipped policy (numpy, no torch) routes a simulated workload on the clusters of
``benchmarks/sim_speed.py`` (every node serves the five models, so every node is a candidate);
each ``decide`` call is timed with ``perf_counter_ns`` in the live states the run goes through,
and so is each online update (``observe``). Prints one JSON object per size:
``{nodes, decisions, decide_p50_us, decide_p99_us, observe_p50_us, observe_p99_us,
target_p99_us, ratio_to_target}`` (the target, 100 µs at p99, applies at 100 nodes).

Usage: python benchmarks/route_decision.py [--sizes 10,100,1000] [--requests 20000]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sim_speed import cluster_yaml, scenario_yaml

TARGET_P99_US = 100.0


def run_one(nodes: int, requests: int) -> dict[str, object]:
    """Route ``requests`` on a cluster of ``nodes`` nodes, timing every decision."""
    from edgesched.core.cluster import Cluster
    from edgesched.core.scenario import ScenarioConfig
    from edgesched.policies.route_learned import LearnedRoute
    from edgesched.sim.runner import simulate

    decide_ns: list[int] = []
    observe_ns: list[int] = []

    class Timed(LearnedRoute):
        def decide(self, request, view):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter_ns()
            node = super().decide(request, view)
            decide_ns.append(time.perf_counter_ns() - t0)
            return node

        def observe(self, outcome):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter_ns()
            super().observe(outcome)
            observe_ns.append(time.perf_counter_ns() - t0)

    cluster = Cluster.parse(cluster_yaml(nodes))
    scenario = ScenarioConfig.parse(scenario_yaml(requests))
    simulate(cluster, scenario, Timed())
    d = np.asarray(decide_ns[100:]) / 1e3  # the first decisions warm caches up
    o = np.asarray(observe_ns[100:]) / 1e3
    p99 = float(np.percentile(d, 99))
    return {
        "nodes": nodes,
        "decisions": int(d.size),
        "decide_p50_us": round(float(np.percentile(d, 50)), 2),
        "decide_p99_us": round(p99, 2),
        "observe_p50_us": round(float(np.percentile(o, 50)), 2),
        "observe_p99_us": round(float(np.percentile(o, 99)), 2),
        "target_p99_us": TARGET_P99_US,
        "ratio_to_target": round(p99 / TARGET_P99_US, 3),
    }


def main() -> None:
    """Print one JSON line per cluster size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000", help="node counts, comma-separated")
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        print(json.dumps(run_one(size, args.requests)), flush=True)


if __name__ == "__main__":
    main()
