"""Aggregates over per-request outcomes (ARCHITECTURE §2 ``Metrics``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class Metrics:
    """What a run achieved. Times in seconds, energy in joules, rates per second.

    Attributes:
        policy: routing policy name.
        requests: requests answered.
        latency_mean_s, latency_p50_s, latency_p95_s, latency_p99_s: arrival to answer.
        slo_attainment: share of requests answered within their SLO.
        throughput_rps: requests answered per second of simulated time.
        goodput_rps: requests answered within their SLO per second.
        energy_total_j: energy of every node (idle and dynamic) over the run.
        energy_per_request_j: ``energy_total_j / requests``.
        offload_rate: share of requests served in the cloud.
        duration_s: simulated time from the first arrival to the last answer.
        per_model: model name → latency mean/p99 and SLO attainment of that model's requests
            (and their accuracy, where it is known).
        accuracy: share of right answers among the requests whose correctness is known
            (offloading models); None when it is known for none.
    """

    policy: str
    requests: int
    latency_mean_s: float
    latency_p50_s: float
    latency_p95_s: float
    latency_p99_s: float
    slo_attainment: float
    throughput_rps: float
    goodput_rps: float
    energy_total_j: float
    energy_per_request_j: float
    offload_rate: float
    duration_s: float
    per_model: dict[str, dict[str, float]] = field(default_factory=dict)
    accuracy: float | None = None

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready dict."""
        return asdict(self)


def compute_metrics(
    policy: str,
    latency_s: np.ndarray,
    slo_s: np.ndarray,
    models: np.ndarray,
    model_names: tuple[str, ...],
    offloaded: np.ndarray,
    start_s: float,
    end_s: float,
    energy_total_j: float,
    correct: np.ndarray | None = None,
) -> Metrics:
    """Aggregate per-request columns into :class:`Metrics`.

    ``correct`` holds 1 (right), 0 (wrong) or -1 (not known) per request; None: none known.
    """
    n = len(latency_s)
    if n == 0:
        raise ValueError("no requests to aggregate")
    met = latency_s <= slo_s
    duration = max(end_s - start_s, 1e-12)
    p50, p95, p99 = np.percentile(latency_s, [50, 95, 99])
    if correct is None:
        correct = np.full(n, -1, dtype=np.int8)
    known = correct >= 0
    per_model = {}
    for m, name in enumerate(model_names):
        sel = models == m
        if sel.any():
            lat = latency_s[sel]
            per_model[name] = {
                "requests": int(sel.sum()),
                "latency_mean_s": float(lat.mean()),
                "latency_p99_s": float(np.percentile(lat, 99)),
                "slo_attainment": float(met[sel].mean()),
            }
            if known[sel].any():
                per_model[name]["accuracy"] = float(correct[sel & known].mean())
    return Metrics(
        policy=policy,
        requests=n,
        latency_mean_s=float(latency_s.mean()),
        latency_p50_s=float(p50),
        latency_p95_s=float(p95),
        latency_p99_s=float(p99),
        slo_attainment=float(met.mean()),
        throughput_rps=n / duration,
        goodput_rps=float(met.sum()) / duration,
        energy_total_j=energy_total_j,
        energy_per_request_j=energy_total_j / n,
        offload_rate=float(offloaded.mean()),
        duration_s=duration,
        per_model=per_model,
        accuracy=float(correct[known].mean()) if known.any() else None,
    )
