"""The server's live :class:`ClusterState`, updated in place on every dispatch and answer.

The server owns the state and hands its routing policy the read-only :class:`ClusterView` over
the same memory (ARCHITECTURE §3), exactly as the simulator does. Only the event loop thread
writes it, so no lock is needed.

What the server can observe is less than what the simulator knows: it sees when a request is
sent to a node and when the answer comes back, not when the child starts computing it. So
``running_model`` is *approximated* as ``min(in-flight, instances)`` per node and model, and
``running_util`` as the sum of those running counts times the catalog utilisation of the model
on the node's device. ``latency_ewma_s`` is an exponentially weighted mean of measured
end-to-end latencies (dispatch to answer), and ``slowdown_ewma`` one of measured execution time
over the profile's latency for the same batch size.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Sequence

from edgesched.core.cluster import Cluster
from edgesched.core.view import ClusterState, ClusterView

#: Weight of the newest latency in ``latency_ewma_s`` (our choice: about the last 5 answers).
EWMA_WEIGHT = 0.2


class LiveState:
    """The state and view of a served cluster, with the two updates the server makes.

    Attributes:
        state: the mutable state (written only here).
        view: the read-only view the routing policy decides from.
    """

    def __init__(
        self,
        cluster: Cluster,
        model_names: Sequence[str],
        input_bytes: Sequence[int],
        clock: Callable[[], float],
    ) -> None:
        """Build an empty state (nothing in flight, no measurement) for ``cluster``.

        Args:
            cluster: the served cluster.
            model_names: the served models, in view order.
            input_bytes: bytes of one sample of each model's input.
            clock: seconds, monotonic (``time.monotonic`` in the server).
        """
        self._n_models = len(model_names)
        self.state = ClusterState(len(cluster.nodes), self._n_models, len(cluster.links))
        self.view = ClusterView(cluster, model_names, input_bytes, self.state, clock)
        self._clock = clock
        self._instances = self.view.deployed.tolist()
        self._util = self.view.utilisation.tolist()
        raw = self.state.raw
        self._inflight = raw["inflight"]
        self._inflight_model = raw["inflight_model"]
        self._running_model = raw["running_model"]
        self._running_util = raw["running_util"]
        self._ewma = raw["latency_ewma_s"]
        self._ewma_time = raw["latency_time_s"]
        self._slowdown = raw["slowdown_ewma"]
        self._profiles = [
            [cluster.profile(node, name) if name in node.models else None for name in model_names]
            for node in cluster.nodes
        ]

    def dispatch(self, node: int, model: int) -> None:
        """Record that one request of ``model`` was sent to ``node``."""
        self._inflight[node] += 1
        self._inflight_model[node * self._n_models + model] += 1
        self._update_running(node)

    def finish(
        self,
        node: int,
        model: int,
        latency_s: float | None,
        exec_s: float | None = None,
        rows: int = 1,
    ) -> None:
        """Record that a request of ``model`` on ``node`` ended (``latency_s`` None: failed).

        ``exec_s`` is the worker's execution time of the batch of ``rows`` that carried it, when
        measured; it updates the node's measured slowdown.
        """
        self._inflight[node] -= 1
        self._inflight_model[node * self._n_models + model] -= 1
        self._update_running(node)
        if latency_s is not None:
            _ewma_update(self._ewma, node, latency_s)
            self._ewma_time[node] = self._clock()
        profile = self._profiles[node][model]
        if exec_s is not None and profile is not None:
            _ewma_update(self._slowdown, node, exec_s / profile.latency_at(rows))

    def _update_running(self, node: int) -> None:
        base = node * self._n_models
        util = 0.0
        for m in range(self._n_models):
            running = min(self._inflight_model[base + m], self._instances[node][m])
            self._running_model[base + m] = running
            util += running * self._util[node][m]
        self._running_util[node] = util


def _ewma_update(buf: array, i: int, value: float) -> None:
    old = buf[i]
    buf[i] = value if math.isnan(old) else old + EWMA_WEIGHT * (value - old)
