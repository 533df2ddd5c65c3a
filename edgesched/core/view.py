"""The read-only view of a cluster that every policy decides from (ARCHITECTURE §3, §8).

The world that runs requests (simulator or server) owns a :class:`ClusterState` — numpy arrays per
node that it updates in place — and hands policies a :class:`ClusterView` over the same memory
with writing switched off. Nothing is copied per decision: a policy that looks at every node does
it with array operations.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import ClassVar

import numpy as np

from edgesched.core.cluster import Cluster


class ClusterState:
    """Mutable per-node state, owned by the world (never by policies).

    Each field is a numpy array over a flat :class:`array.array` buffer kept in :attr:`raw`:
    the world writes single elements through ``raw`` (several times cheaper than numpy item
    assignment), policies read whole arrays through numpy, and both see the same memory.
    Matrices ``[nodes, models]`` are stored row-major, so element ``(n, m)`` of ``raw[name]`` is
    at ``n * models + m``.

    Attributes:
        inflight: requests assigned to each node and not finished (in transfer, queued or
            running).
        inflight_model: the same, per node and model.
        running_model: instances computing now, per node and model.
        running_util: sum of the utilisation of the instances computing now, per node.
        link_active: transfers in progress on each link.
        latency_ewma_s: exponentially weighted mean of measured latencies per node (NaN until
            the first answer).
        latency_time_s: when ``latency_ewma_s`` was last updated (NaN until then).
        slowdown_ewma: exponentially weighted mean, per node, of measured computation time over
            the profile's solo latency (NaN until the first answer): how much slower the node
            runs than its profile says, from interference, throttling or a wrong profile.
    """

    _SHAPES: ClassVar[dict[str, tuple[str, str]]] = {
        "inflight": ("q", "n"),
        "inflight_model": ("q", "nm"),
        "running_model": ("q", "nm"),
        "running_util": ("d", "n"),
        "link_active": ("q", "l"),
        "latency_ewma_s": ("d", "n"),
        "latency_time_s": ("d", "n"),
        "slowdown_ewma": ("d", "n"),
    }

    #: Fields that are measurements: NaN until the first one.
    _MEASURED: ClassVar[frozenset[str]] = frozenset(
        {"latency_ewma_s", "latency_time_s", "slowdown_ewma"}
    )

    inflight: np.ndarray
    inflight_model: np.ndarray
    running_model: np.ndarray
    running_util: np.ndarray
    link_active: np.ndarray
    latency_ewma_s: np.ndarray
    latency_time_s: np.ndarray
    slowdown_ewma: np.ndarray

    def __init__(self, n_nodes: int, n_models: int, n_links: int) -> None:
        """A state with nothing running and no measurement yet."""
        self.raw: dict[str, array] = {}
        dims = {"n": (n_nodes,), "nm": (n_nodes, n_models), "l": (max(n_links, 1),)}
        for name, (code, dim) in self._SHAPES.items():
            shape = dims[dim]
            size = int(np.prod(shape))
            fill = float("nan") if name in self._MEASURED else 0
            buf = array(code, [fill] * size)
            self.raw[name] = buf
            setattr(self, name, np.frombuffer(buf, dtype=buf.typecode).reshape(shape))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of the state arrays."""
        return tuple(cls._SHAPES)


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

    ``scalars`` holds the same live arrays as flat read-only memoryviews (``scalars.inflight[n]``,
    ``scalars.inflight_model[n * len(model_names) + m]``): reading one element from them costs
    about half of a numpy element read, which matters in policies that read a few elements per
    decision.
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
        for name in ClusterState.field_names():
            setattr(self, name, _readonly(getattr(state, name)))
        self.scalars = SimpleNamespace(
            **{name: memoryview(buf).toreadonly() for name, buf in state.raw.items()}
        )

    # Live arrays, declared for type checkers (set from ClusterState in __init__).
    inflight: np.ndarray
    inflight_model: np.ndarray
    running_model: np.ndarray
    running_util: np.ndarray
    link_active: np.ndarray
    latency_ewma_s: np.ndarray
    latency_time_s: np.ndarray
    slowdown_ewma: np.ndarray

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_ids)

    def power_w(self) -> np.ndarray:
        """Power draw of every node now, in watts (linear in the running utilisation)."""
        busy = np.minimum(self.running_util, 1.0)
        return self.idle_power_w + (self.peak_power_w - self.idle_power_w) * busy

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
