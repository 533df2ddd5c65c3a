"""Hand-made confidence samples: a handful of inputs whose answers a test can work out."""

from __future__ import annotations

from collections.abc import Sequence

from edgesched.core.confidence import ConfidenceSample


def sample(
    confidence: Sequence[float],
    edge_correct: Sequence[bool],
    cloud_correct: Sequence[bool],
    edge_exec_s: float | Sequence[float] = 1e-3,
    cloud_exec_s: float | Sequence[float] = 2e-3,
    input_bytes: int = 1000,
) -> ConfidenceSample:
    """A sample of ``edge-m`` → ``cloud-m`` (times: one value for every input, or one each)."""
    n = len(confidence)

    def per_input(v: float | Sequence[float]) -> list[float]:
        return [float(v)] * n if isinstance(v, int | float) else [float(x) for x in v]

    return ConfidenceSample(
        edge_model="edge-m",
        cloud_model="cloud-m",
        created="2026-01-01T00:00:00+00:00",
        command="tests/offload/builders.py",
        method="hand-made",
        dataset="hand-made",
        backend="none",
        machine={},
        input_bytes=input_bytes,
        confidence=list(confidence),
        edge_correct=list(edge_correct),
        cloud_correct=list(cloud_correct),
        edge_exec_s=per_input(edge_exec_s),
        cloud_exec_s=per_input(cloud_exec_s),
    )


#: Ten inputs: the edge is wrong on the four least confident ones (0.1 … 0.4) and on 0.9; the
#: cloud is wrong only on 0.2. Offloading the k least confident gives accuracy
#: k=0: .5, k=1: .6, k=2: .6, k=3: .7, k=4…8: .8, k=9 and k=10: .9.
TEN = sample(
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95],
    [False, False, False, False, True, True, True, True, False, True],
    [True, False, True, True, True, True, True, True, True, True],
)
