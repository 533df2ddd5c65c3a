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

    This is Ray Serve's default request router (``PowerOfTwoChoicesRequestRouter``). Pairs are
    drawn ahead in vectorised blocks per model, which keeps a decision to a few list lookups.
    """

    name = "pow2"
    _BLOCK = 4096

    def reset(self, view: ClusterView, rng: np.random.Generator) -> None:
        super().reset(view, rng)
        self._cands = [view.candidates(m) for m in range(len(view.model_names))]
        self._pairs: list[list[tuple[int, int]]] = [[] for _ in self._cands]
        self._inflight = view.scalars.inflight  # live and read-only: no copy, always current

    def _draw(self, model: int) -> list[tuple[int, int]]:
        cands = self._cands[model]
        n = len(cands)
        if n == 1:
            pairs = [(int(cands[0]), int(cands[0]))] * self._BLOCK
        else:
            i = self.rng.integers(n, size=self._BLOCK)
            j = self.rng.integers(n - 1, size=self._BLOCK)
            j += j >= i  # a second node distinct from the first
            pairs = list(zip(cands[i].tolist(), cands[j].tolist(), strict=True))
        pairs.reverse()  # consumed from the end with pop()
        self._pairs[model] = pairs
        return pairs

    def decide(self, request: Request, view: ClusterView) -> int:
        pairs = self._pairs[request.model] or self._draw(request.model)
        a, b = pairs.pop()
        inflight = self._inflight
        return a if inflight[a] <= inflight[b] else b
