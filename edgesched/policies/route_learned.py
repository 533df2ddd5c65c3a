"""The learned router: a trained per-node scorer over features that keep learning online.

``decide`` scores every node serving the request's model with the exported network
(:class:`~edgesched.learn.scorer.NodeScorer`, plain numpy: no torch at run time) and takes the
best. ``observe`` hands each measured :class:`Outcome` to the features, which match it to its
decision by request id and update the serving node's learned correction of the latency estimate
(:class:`~edgesched.learn.features.RoutingFeatures`), so the router learns device differences its
training never saw — a throttled board, a wrong profile — while it serves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesched.core.request import Outcome, Request
from edgesched.core.view import ClusterView
from edgesched.learn.features import RoutingFeatures
from edgesched.learn.scorer import NodeScorer
from edgesched.learn.shipped import policy_for
from edgesched.policies.route import RoutePolicy


class LearnedRoute(RoutePolicy):
    """A trained network scores each node; per-node corrections are learned from outcomes online.

    Args:
        policy_file: a file from ``edgesched train routing`` (default: the shipped policy), or
            a scorer already loaded.
        online: keep learning from outcomes during the run.
    """

    name = "learned"

    def __init__(
        self, policy_file: str | Path | NodeScorer | None = None, online: bool = True
    ) -> None:
        if isinstance(policy_file, NodeScorer):
            self.policy_file: Path | None = None
            self.scorer = policy_file
        else:
            self.policy_file = Path(policy_file) if policy_file is not None else policy_for()
            self.scorer = NodeScorer.load(self.policy_file)
        self.online = online

    def reset(self, view: ClusterView, rng: np.random.Generator) -> None:
        super().reset(view, rng)
        self.features = RoutingFeatures(view)
        self._fast = self.scorer.fast(self.features)
        self._nodes = [self.features.nodes(m) for m in range(len(view.model_names))]

    def decide(self, request: Request, view: ClusterView) -> int:
        m = request.model
        features = self.features
        scores = self._fast.scores(m, features.dynamic(m), features.slo_feature(m, request.slo_s))
        best = int(np.argmax(scores))
        node = int(self._nodes[m][best])
        if self.online:
            self.features.remember(request.id, node, best)
        return node

    def observe(self, outcome: Outcome) -> None:
        self.features.learn(outcome)

    @property
    def wants_outcomes(self) -> bool:
        return self.online
