"""Requests and what happened to them.

``Request`` is what a policy sees when it decides; ``Outcome`` is the posterior measurement of one
request that learned policies receive through ``observe``. Both worlds (simulator and server)
create the same types.
"""

from __future__ import annotations

from dataclasses import dataclass


class Request:
    """One inference request.

    Attributes:
        id: request number, unique within a run.
        model: index of the requested model in ``ClusterView.model_names``.
        arrival_s: arrival time in seconds.
        input_bytes: bytes of input that must reach the serving node.
        slo_s: latency deadline in seconds from arrival.
        source: index of the node where the request arose, or -1 for the gateway.
    """

    __slots__ = ("arrival_s", "id", "input_bytes", "model", "slo_s", "source")

    def __init__(
        self,
        id: int,
        model: int,
        arrival_s: float,
        input_bytes: int,
        slo_s: float,
        source: int = -1,
    ) -> None:
        self.id = id
        self.model = model
        self.arrival_s = arrival_s
        self.input_bytes = input_bytes
        self.slo_s = slo_s
        self.source = source

    def __repr__(self) -> str:
        return (
            f"Request(id={self.id}, model={self.model}, arrival_s={self.arrival_s:.6f}, "
            f"input_bytes={self.input_bytes}, slo_s={self.slo_s})"
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one request (all times in seconds, energy in joules).

    Attributes:
        request_id: the request.
        model: model index.
        node: index of the node that served it.
        arrival_s: when it arrived.
        start_s: when its computation started (after transfer and queueing).
        finish_s: when its answer was ready.
        energy_j: its share of the serving device's dynamic energy.
        offloaded: served in the cloud.
        slo_s: its deadline.
        correct: whether its answer was right, where that is known (None elsewhere).
    """

    request_id: int
    model: int
    node: int
    arrival_s: float
    start_s: float
    finish_s: float
    energy_j: float
    offloaded: bool
    slo_s: float
    correct: bool | None = None

    @property
    def latency_s(self) -> float:
        """Arrival to answer."""
        return self.finish_s - self.arrival_s

    @property
    def slo_met(self) -> bool:
        """True when the answer came within the deadline."""
        return self.latency_s <= self.slo_s
