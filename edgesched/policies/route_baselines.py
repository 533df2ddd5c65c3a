"""Load-oblivious and load-aware routing baselines that ignore device differences.

``random`` and ``round-robin`` look at nothing; ``least-loaded`` (join-shortest-queue) and
``pow2`` (power of two choices, Ray Serve's default router) look at requests in flight per node.
"""

from __future__ import annotations

import numpy as np

from edgesched.core.request import Request
from edgesched.core.view import ClusterView
from edgesched.policies.route import RoutePolicy, UniformStream


class RandomRoute(RoutePolicy):
    """Pick a node serving the model uniformly at random."""

    name = "random"

    def reset(self, view: ClusterView, rng: np.random.Generator) -> None:
        super().reset(view, rng)
        self._u = UniformStream(rng)
        self._cands = [c.tolist() for c in map(view.candidates, range(len(view.model_names)))]

    def decide(self, request: Request, view: ClusterView) -> int:
        cands = self._cands[request.model]
        return cands[int(self._u.next() * len(cands))]


class RoundRobinRoute(RoutePolicy):
    """Cycle through the nodes serving each model, one counter per model."""

    name = "round-robin"

    def reset(self, view: ClusterView, rng: np.random.Generator) -> None:
        super().reset(view, rng)
        self._cands = [c.tolist() for c in map(view.candidates, range(len(view.model_names)))]
        self._next = [0] * len(self._cands)

    def decide(self, request: Request, view: ClusterView) -> int:
        m = request.model
        cands = self._cands[m]
        i = self._next[m]
        self._next[m] = (i + 1) % len(cands)
        return cands[i]


class LeastLoadedRoute(RoutePolicy):
    """Join the shortest queue: fewest requests in flight (lowest node index on ties)."""

    name = "least-loaded"

    def reset(self, view: ClusterView, rng: np.random.Generator) -> None:
        super().reset(view, rng)
        self._cands = [view.candidates(m) for m in range(len(view.model_names))]

    def decide(self, request: Request, view: ClusterView) -> int:
        cands = self._cands[request.model]
        return int(cands[np.argmin(view.inflight[cands])])


class PowerOfTwoRoute(RoutePolicy):
    """Sample two distinct nodes serving the model; take the one with fewer requests in flight.

    This is Ray Serve's default request router (``PowerOfTwoChoicesRequestRouter``).
    """

    name = "pow2"

    def reset(self, view: ClusterView, rng: np.random.Generator) -> None:
        super().reset(view, rng)
        self._u = UniformStream(rng)
        self._cands = [c.tolist() for c in map(view.candidates, range(len(view.model_names)))]

    def decide(self, request: Request, view: ClusterView) -> int:
        cands = self._cands[request.model]
        n = len(cands)
        if n == 1:
            return cands[0]
        i = int(self._u.next() * n)
        j = int(self._u.next() * (n - 1))
        j += j >= i  # a second node distinct from the first
        a, b = cands[i], cands[j]
        inflight = view.inflight
        return a if inflight[a] <= inflight[b] else b
