"""The θ sweep: accuracy, offload rate and latency of confidence offload against the threshold.

Every request first runs the edge model. With threshold θ, a request whose edge confidence is
below θ is sent to the cloud and answered by the cloud model, so its latency is

    edge execution + RTT + input bytes / bandwidth + cloud execution

and a kept one's is the edge execution alone. Both execution times and every answer's
correctness come from a measured :class:`~edgesched.core.confidence.ConfidenceSample`, per
input, so the curves show what the real models do, not a model of them. Two references:
*edge-only* (keep every edge answer) and *cloud-only* (send every request straight to the cloud,
without running the edge model).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgesched.core.confidence import ConfidenceSample
from edgesched.policies.offload import ThresholdOffload, tune_threshold

#: The default cluster's WAN link to the cloud (``bench/scenarios/default-cluster.yaml``):
#: 100 Mbit/s with a 40 ms round trip.
DEFAULT_LINK_MBPS = 100.0
DEFAULT_RTT_MS = 40.0
#: Default accuracy target: between the digits edge model (0.938) and cloud model (0.978).
DEFAULT_TARGET = 0.97


@dataclass(frozen=True)
class CloudLink:
    """The network between an edge node and the cloud.

    Attributes:
        bandwidth_bytes_per_s: bytes per second an offload's input travels at.
        rtt_s: round-trip time in seconds.
    """

    bandwidth_bytes_per_s: float
    rtt_s: float

    @classmethod
    def from_cli(cls, mbps: float, rtt_ms: float) -> CloudLink:
        """From megabits per second and milliseconds."""
        return cls(mbps * 1e6 / 8, rtt_ms / 1e3)


@dataclass(frozen=True)
class Point:
    """How one way of answering does on the sample (times in seconds).

    Attributes:
        theta: the threshold, or None for the references.
        accuracy: share of correct answers.
        offload_rate: share of requests answered by the cloud model.
        latency_mean_s: mean request latency.
        latency_p99_s: 99th percentile request latency.
    """

    theta: float | None
    accuracy: float
    offload_rate: float
    latency_mean_s: float
    latency_p99_s: float


@dataclass(frozen=True)
class Sweep:
    """A finished sweep: the curve over θ, the chosen θ and the two references."""

    sample: ConfidenceSample
    link: CloudLink
    target: float
    curve: list[Point]
    chosen: Point
    edge_only: Point
    cloud_only: Point

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: inputs, the curve as columns, the chosen θ and the references."""
        s = self.sample
        columns = {
            key: [getattr(p, key) for p in self.curve]
            for key in ("theta", "accuracy", "offload_rate", "latency_mean_s", "latency_p99_s")
        }
        return {
            "format": "edgesched-offload-sweep/1",
            "sample": {
                "edge_model": s.edge_model,
                "cloud_model": s.cloud_model,
                "inputs": len(s),
                "input_bytes": s.input_bytes,
                "created": s.created,
                "backend": s.backend,
                "command": s.command,
            },
            "link": asdict(self.link),
            "accuracy_target": self.target,
            "curve": columns,
            "chosen": asdict(self.chosen),
            "edge_only": asdict(self.edge_only),
            "cloud_only": asdict(self.cloud_only),
        }


def offload_latency_s(sample: ConfidenceSample, link: CloudLink) -> np.ndarray:
    """Per input: what sending it to the cloud costs (network plus cloud execution)."""
    send = link.rtt_s + sample.input_bytes / link.bandwidth_bytes_per_s
    return send + np.asarray(sample.cloud_exec_s)


def evaluate(
    sample: ConfidenceSample, offloaded: np.ndarray, link: CloudLink, theta: float | None
) -> Point:
    """The :class:`Point` of answering ``sample`` with the inputs in ``offloaded`` offloaded."""
    latency = np.asarray(sample.edge_exec_s) + np.where(
        offloaded, offload_latency_s(sample, link), 0.0
    )
    return Point(
        theta=theta,
        accuracy=sample.accuracy(offloaded),
        offload_rate=float(np.mean(offloaded)),
        latency_mean_s=float(latency.mean()),
        latency_p99_s=float(np.percentile(latency, 99)),
    )


def _threshold_point(sample: ConfidenceSample, theta: float, link: CloudLink) -> Point:
    offloaded = ThresholdOffload(theta).decide_rows(np.asarray(sample.confidence))
    return evaluate(sample, offloaded, link, theta)


def run_sweep(
    sample: ConfidenceSample,
    link: CloudLink,
    target: float = DEFAULT_TARGET,
    points: int = 101,
) -> Sweep:
    """Sweep θ over ``points`` values from 0 to 1 and choose θ for ``target``.

    The chosen θ is :func:`~edgesched.policies.offload.tune_threshold`'s: the smallest threshold
    (tried at every distinct confidence, not only on the grid) whose accuracy reaches the
    target. Offloading more never lowers any request's latency, so no θ meeting the target has a
    lower mean or p99 latency.

    Raises:
        ConfigError: no θ reaches ``target`` (the message gives the best reachable accuracy).
        ValueError: fewer than 2 points, or a link with no bandwidth or a negative RTT.
    """
    if points < 2:
        raise ValueError(f"a sweep needs at least 2 points, got {points}")
    if link.bandwidth_bytes_per_s <= 0 or link.rtt_s < 0:
        raise ValueError(f"link needs bandwidth > 0 and RTT >= 0, got {link}")
    curve = [_threshold_point(sample, float(t), link) for t in np.linspace(0.0, 1.0, points)]
    chosen = _threshold_point(sample, tune_threshold(sample, target), link)
    edge_only = evaluate(sample, np.zeros(len(sample), dtype=bool), link, None)
    cloud = offload_latency_s(sample, link)
    cloud_only = Point(
        theta=None,
        accuracy=sample.cloud_accuracy,
        offload_rate=1.0,
        latency_mean_s=float(cloud.mean()),
        latency_p99_s=float(np.percentile(cloud, 99)),
    )
    return Sweep(sample, link, target, curve, chosen, edge_only, cloud_only)
