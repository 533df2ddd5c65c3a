"""Sim-to-real check: does the simulator, calibrated from a profile, predict real latency?

1. Profile two models on this CPU (ONNX Runtime, one intra-op thread per instance, solo latency
   and the 2×2 performance matrix, instances as processes).
2. Replay a Poisson workload of both models on one emulated node for real: one instance of each
   model, each a process, requests queued first-in-first-out per model.
3. Simulate the same requests (same seed, same arrival times) on a one-node cluster calibrated
   from that profile.
Prints one JSON object: predicted and measured mean and p95 latency and their ratios
(target: predicted mean within 15 % of measured).

Usage: python benchmarks/sim_vs_real.py [--models mobilenet_v2,resnet18] [--requests 1000]
       [--load 0.5] [--profile-out sim_vs_real_profile.json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

DEVICE = "x86-mini-pc"  # the catalog device this CPU stands in for


def main() -> None:
    """Profile, replay, simulate, compare."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mobilenet_v2,resnet18")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument(
        "--load", type=float, default=0.5, help="busiest instance's utilisation, 0-1"
    )
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--profile-out", default="sim_vs_real_profile.json")
    args = parser.parse_args()

    from edgesched.core.cluster import Cluster
    from edgesched.core.scenario import ScenarioConfig
    from edgesched.profile.replay import replay
    from edgesched.profile.runner import Profiler, ProfileSettings
    from edgesched.sim.runner import draw_workload, simulate

    models = tuple(args.models.split(","))
    settings = ProfileSettings(
        device_name=DEVICE,
        models=models,
        batches=(1,),
        max_instances=1,
        threads=1,
        solo_time_s=3.0,
        cell_time_s=3.0,
        settle_s=0.5,
    )
    profile = Profiler(settings).run()
    profile.save(args.profile_out)

    # Equal shares; the rate puts the busier instance at --load when both run side by side.
    both = {
        m: next(
            c.slowdown
            for c in profile.matrix
            if c.probe == m
            and len(c.running) == 1
            and c.running.get(next(o for o in models if o != m)) == 1
        )
        for m in models
    }
    busy = max(profile.solo_latency(m, 1) * both[m] for m in models) / len(models)
    rate = args.load / busy
    lines = [
        f"name: sim-vs-real\nseed: {args.seed}\nrequests: {args.requests}",
        f"rate_rps: {rate:.6f}",
        "arrivals: {kind: poisson}",
        "models:",
    ]
    lines += [f"  {m}: {{weight: 1, slo_s: 1.0}}" for m in models]
    scenario = ScenarioConfig.parse("\n".join(lines) + "\n")
    deployed = ", ".join(f"{m}: 1" for m in models)
    cluster = Cluster.parse(
        f"name: one-node\nnodes:\n  - {{id: cpu, device: {DEVICE}, models: {{{deployed}}}}}\n"
    ).with_measured([profile])

    workload = draw_workload(cluster, scenario)
    real = replay(workload, {m: 1 for m in models}, {"backend": "onnxruntime", "threads": 1})
    sim = simulate(cluster, scenario, "round-robin")

    measured, predicted = real.latency_s, sim.latency_s
    out = {
        "models": list(models),
        "requests": len(workload),
        "rate_rps": round(rate, 3),
        "solo_latency_s": {m: profile.solo_latency(m, 1) for m in models},
        "slowdown_side_by_side": both,
        "measured_mean_s": float(measured.mean()),
        "predicted_mean_s": float(predicted.mean()),
        "mean_ratio": float(predicted.mean() / measured.mean()),
        "measured_p95_s": float(np.percentile(measured, 95)),
        "predicted_p95_s": float(np.percentile(predicted, 95)),
        "p95_ratio": float(np.percentile(predicted, 95) / np.percentile(measured, 95)),
        "target_mean_error": 0.15,
        "mean_error": float(abs(predicted.mean() / measured.mean() - 1)),
        "profile": args.profile_out,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
