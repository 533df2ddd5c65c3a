"""The read-only view of a cluster that every policy decides from (ARCHITECTURE §3, §8).

The world that runs requests (simulator or server) owns a :class:`ClusterState` — numpy arrays per
node that it updates in place — and hands policies a :class:`ClusterView` over the same memory
with writing switched off. Nothing is copied per decision: a policy that looks at every node does
it with array operations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np

from edgesched.core.cluster import Cluster


@dataclass
class ClusterState:
    """Mutable per-node state, owned by the world (never by policies).

    Attributes:
        inflight: requests assigned to each node and not finished (in transfer, queued or
            running).
        inflight_model: the same, per node and model.
        running: instances computing now, per node.
        running_model: instances computing now, per node and model.
        running_util: sum of the utilisation of the instances computing now, per node.
        link_active: transfers in progress on each link.
        latency_ewma_s: exponentially weighted mean of measured latencies per node (NaN until
            the first answer).
        latency_time_s: when ``latency_ewma_s`` was last updated (NaN until then).
        power_w: the device's power draw now.
    """

    inflight: np.ndarray
    inflight_model: np.ndarray
    running: np.ndarray
    running_model: np.ndarray
    running_util: np.ndarray
    link_active: np.ndarray
    latency_ewma_s: np.ndarray
    latency_time_s: np.ndarray
    power_w: np.ndarray

    @classmethod
    def zeros(cls, n_nodes: int, n_models: int, n_links: int) -> ClusterState:
        """A state with nothing running and no measurement yet."""
        nan = np.full(n_nodes, np.nan)
        return cls(
            inflight=np.zeros(n_nodes, np.int64),
            inflight_model=np.zeros((n_nodes, n_models), np.int64),
            running=np.zeros(n_nodes, np.int64),
            running_model=np.zeros((n_nodes, n_models), np.int64),
            running_util=np.zeros(n_nodes),
            link_active=np.zeros(max(n_links, 1), np.int64),
            latency_ewma_s=nan,
            latency_time_s=nan.copy(),
            power_w=np.zeros(n_nodes),
        )


def _readonly(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


class ClusterView:
    """What a policy may read: static facts of the cluster and the live state, read-only.

    Static arrays (shape ``[nodes]`` or ``[nodes, models]``):
        ``is_cloud``, ``deployed`` (instances), ``solo_latency_s`` (batch-1 profile latency,
        ``inf`` where the model is not deployed), ``utilisation``, ``alpha`` (interference
        coefficient), ``idle_power_w``, ``peak_power_w``, ``link`` (link index or -1),
        ``rtt_s`` (round trip of the node's link, 0 without one), ``send_s`` (one request's
        bytes over the whole link bandwidth, ``[nodes, models]``), ``link_shared`` (per link).

    Live arrays: the fields of :class:`ClusterState`, read-only.

    Measurements carry their age (``latency_time_s``) and are NaN where missing.
    """

    def __init__(
        self,
        cluster: Cluster,
        model_names: Sequence[str],
        input_bytes: Sequence[int],
        state: ClusterState,
        clock: Callable[[], float],
        alpha_scale: float = 1.0,
    ) -> None:
        n, m = len(cluster.nodes), len(model_names)
        self.node_ids: tuple[str, ...] = tuple(node.id for node in cluster.nodes)
        self.model_names: tuple[str, ...] = tuple(model_names)
        self._model_index = {name: i for i, name in enumerate(model_names)}
        self.now: Callable[[], float] = clock
        deployed = np.zeros((n, m), np.int64)
        solo = np.full((n, m), np.inf)
        util = np.zeros((n, m))
        send = np.zeros((n, m))
        rtt = np.zeros(n)
        for node in cluster.nodes:
            for name, count in node.models.items():
                j = self._model_index.get(name)
                if j is None:
                    continue
                prof = cluster.profile(node, name)
                deployed[node.index, j] = count
                solo[node.index, j] = prof.latency_s.value
                util[node.index, j] = prof.utilisation.value
            if node.link is not None:
                rtt[node.index] = node.link.rtt_s
                send[node.index] = np.asarray(input_bytes) / node.link.bandwidth_bytes_per_s
        self.is_cloud = _readonly(np.array([node.is_cloud for node in cluster.nodes]))
        self.deployed = _readonly(deployed)
        self.solo_latency_s = _readonly(solo)
        self.utilisation = _readonly(util)
        self.rtt_s = _readonly(rtt)
        self.send_s = _readonly(send)
        self.alpha = _readonly(
            np.array([nd.device.interference_alpha.value * alpha_scale for nd in cluster.nodes])
        )
        self.idle_power_w = _readonly(
            np.array([nd.device.idle_power_w.value for nd in cluster.nodes])
        )
        self.peak_power_w = _readonly(
            np.array([nd.device.peak_power_w.value for nd in cluster.nodes])
        )
        self.link = _readonly(
            np.array([nd.link.index if nd.link else -1 for nd in cluster.nodes], np.int64)
        )
        self.link_shared = _readonly(np.array([lk.shared for lk in cluster.links] or [False]))
        self._candidates = tuple(_readonly(np.flatnonzero(deployed[:, j])) for j in range(m))
        for f in fields(ClusterState):
            setattr(self, f.name, _readonly(getattr(state, f.name)))

    # Live arrays, declared for type checkers (set from ClusterState in __init__).
    inflight: np.ndarray
    inflight_model: np.ndarray
    running: np.ndarray
    running_model: np.ndarray
    running_util: np.ndarray
    link_active: np.ndarray
    latency_ewma_s: np.ndarray
    latency_time_s: np.ndarray
    power_w: np.ndarray

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_ids)

    def model_index(self, name: str) -> int:
        """Index of model ``name`` in :attr:`model_names`."""
        from edgesched.errors import UnknownNameError

        try:
            return self._model_index[name]
        except KeyError:
            raise UnknownNameError("model", name, self.model_names) from None

    def candidates(self, model: int) -> np.ndarray:
        """Indices of the nodes where ``model`` (an index) is deployed, ascending."""
        return self._candidates[model]
