"""Routing that knows the devices: profiles, interference, links and power.

``min-expected-completion`` estimates, for every node serving the model, transfer + queueing +
computation (solo latency from the profile, stretched by the interference of what runs there now)
and takes the smallest. ``min-energy`` takes the node with the least expected dynamic energy among
those expected to meet the SLO. ``edge-only`` and ``cloud-only`` are ``min-expected-completion``
restricted to edge or cloud nodes.
"""

from __future__ import annotations

import numpy as np

from edgesched.core.request import Request
from edgesched.core.view import ClusterView
from edgesched.errors import ConfigError
from edgesched.policies.route import RoutePolicy


class ModelTable:
    """Per-model constants over the eligible nodes serving it, gathered once at reset."""

    def __init__(self, view: ClusterView, model: int, nodes: np.ndarray) -> None:
        self.nodes = nodes
        self.solo = view.solo_latency_s[nodes, model]
        self.alpha = view.alpha[nodes]
        self.deployed = view.deployed[nodes, model]
        self.inv_deployed = 1.0 / self.deployed
        self.deployed_less_one = self.deployed - 1
        self.solo_alpha = self.solo * self.alpha
        self.rtt = view.rtt_s[nodes]
        self.send = view.send_s[nodes, model]
        link = view.link[nodes]
        self.link = np.maximum(link, 0)
        shared = (link >= 0) & view.link_shared[self.link]
        self.fixed_transfer = self.rtt + self.send
        self.shared_send = self.send * shared
        self.any_shared = bool(shared.any())
        self.dyn_energy = (view.peak_power_w - view.idle_power_w)[nodes] * view.utilisation[
            nodes, model
        ]

    def scale_solo(self, node: int, ratio: float) -> None:
        """Multiply ``node``'s solo latency by ``ratio``, keeping what derives from it in step."""
        at = self.nodes == node
        self.solo = np.where(at, self.solo * ratio, self.solo)
        self.solo_alpha = self.solo * self.alpha


class MinExpectedCompletionRoute(RoutePolicy):
    """Send each request where it is expected to finish first.

    The estimate for node ``n`` and model ``m`` is::

        transfer = rtt + send * (1 + transfers on the link, if shared)
        service  = solo_latency * (1 + alpha * utilisation of what runs on n now)
        queue    = max(in-flight of m on n - instances + 1, 0) / instances * service
        expected = transfer + queue + service
    """

    name = "min-expected-completion"

    def eligible(self, view: ClusterView) -> np.ndarray:
        """Hook: boolean mask of the nodes this policy may use (default: all)."""
        return np.ones(view.n_nodes, dtype=bool)

    def reset(self, view: ClusterView, rng: np.random.Generator) -> None:
        super().reset(view, rng)
        mask = self.eligible(view)
        self._tables: list[ModelTable] = []
        for m, model in enumerate(view.model_names):
            nodes = view.candidates(m)
            nodes = nodes[mask[nodes]]
            if nodes.size == 0:
                raise ConfigError(
                    f"policy {self.name!r} has no node serving model {model!r}; "
                    "deploy it on an eligible node or choose another policy"
                )
            self._tables.append(ModelTable(view, m, nodes))

    def table(self, model: int) -> ModelTable:
        """The constants of ``model`` (an index) over the eligible nodes, after :meth:`reset`."""
        return self._tables[model]

    def expected_completion(self, model: int, view: ClusterView) -> np.ndarray:
        """Expected seconds to answer a new request of ``model`` on each eligible node."""
        t = self._tables[model]
        nodes = t.nodes
        util, inflight = view.running_util[nodes], view.inflight_model[nodes, model]
        return self.estimate_parts(model, util, inflight, view)[1]

    def estimate_parts(
        self, model: int, util: np.ndarray, inflight: np.ndarray, view: ClusterView
    ) -> tuple[np.ndarray, np.ndarray]:
        """(service, expected completion) on the eligible nodes, from their running
        utilisation and in-flight requests of ``model``, for callers that read those already."""
        t = self._tables[model]
        service = t.solo + t.solo_alpha * util
        queue = np.maximum(inflight - t.deployed_less_one, 0) * t.inv_deployed * service
        transfer = t.fixed_transfer
        if t.any_shared:
            transfer = transfer + t.shared_send * view.link_active[t.link]
        return service, transfer + queue + service

    def decide(self, request: Request, view: ClusterView) -> int:
        est = self.expected_completion(request.model, view)
        return int(self._tables[request.model].nodes[np.argmin(est)])


class MinEnergyRoute(MinExpectedCompletionRoute):
    """Least expected dynamic energy among nodes expected to meet the SLO.

    Dynamic energy of one request on a node is estimated as (peak − idle power) × the model's
    utilisation of the device × its solo latency. When no node is expected to meet the SLO, the
    request goes where it is expected to finish first.
    """

    name = "min-energy"

    def decide(self, request: Request, view: ClusterView) -> int:
        t = self._tables[request.model]
        est = self.expected_completion(request.model, view)
        ok = est <= request.slo_s
        if not ok.any():
            return int(t.nodes[np.argmin(est)])
        energy = np.where(ok, t.dyn_energy * t.solo, np.inf)
        return int(t.nodes[np.argmin(energy)])


class EdgeOnlyRoute(MinExpectedCompletionRoute):
    """``min-expected-completion`` over edge nodes only (never offloads to the cloud)."""

    name = "edge-only"

    def eligible(self, view: ClusterView) -> np.ndarray:
        return ~view.is_cloud


class CloudOnlyRoute(MinExpectedCompletionRoute):
    """``min-expected-completion`` over cloud nodes only (everything offloaded)."""

    name = "cloud-only"

    def eligible(self, view: ClusterView) -> np.ndarray:
        return view.is_cloud.copy()
