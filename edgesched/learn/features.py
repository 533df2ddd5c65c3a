"""What the learned router sees of each node, and what it is rewarded for.

One feature row per node for the arriving request (the same in training, in the simulator and in
the server, since all three read a :class:`ClusterView`). Latencies are divided by the model's
*reference latency* — its smallest solo latency over the nodes that serve it — and taken in log
scale, so that one scorer serves every model and every cluster size. Columns:

====  =====================================================================================
 0    log expected completion / ref: the ``min-expected-completion`` estimate (transfer,
      queueing, interference-stretched service)
 1    log solo latency on the node / ref
 2    requests of the model waiting for an instance there, per instance
 3    requests of the model in flight there, per instance
 4    utilisation of what computes there now (sum of instance utilisations)
 5    log measured slowdown of the node (computation time over profile; 0 before any answer)
 6    log1p transfer time / ref
 7    1 for a cloud node
 8    log expected dynamic energy of the request there / the model's smallest
 9    log SLO / ref
10    utilisation capped at 1 (the share of the node's power range drawn now)
11    the node's learned correction (log of measured over expected computation time)
12    log1p of the delay the request would add to what already computes there (running
      instances × interference coefficient × its utilisation × its expected computation time)
      over the estimate in column 0: the cost a placement puts on the others
====  =====================================================================================

:data:`N_FEATURES` counts these columns; :meth:`RoutingFeatures.rows` appends a column of ones
(the scorer's bias input; in the environment's observation it marks the nodes serving the model,
and the rows of the other nodes are all zeros).

**Online learning.** The profile-based estimate is wrong when a board throttles, a profile is
off, or interference is not what the model says. The features learn each node's error from
measured outcomes: :meth:`RoutingFeatures.remember` keeps the computation time the decision
expected on the chosen node (solo latency stretched by the interference there),
:meth:`RoutingFeatures.learn` compares it with the request's measured computation time and moves
the node's correction (a running mean of ``log(measured / expected)``) toward it. Computation
time, not end-to-end latency, is compared so that queueing behind later arrivals (load, not the
node) does not count against the node. Corrections fade by ``forget`` per decision, so a node
avoided after a bad spell is trusted again later. The training environment does the same, so
the scorer learns how far to trust the corrections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgesched.core.request import Outcome
from edgesched.core.view import ClusterView
from edgesched.policies.route_aware import MinExpectedCompletionRoute

N_FEATURES = 13
#: Features are clipped to ±CLIP (the observation space's bounds).
CLIP = 10.0


class RoutingFeatures:
    """Feature rows of the nodes serving a request's model (see the module docstring).

    Args:
        view: the cluster's live view (read at every call, never written).
        learning_rate: weight of a new outcome in its node's correction.
        forget: share of every correction forgotten per decision.

    Attributes:
        correction: learned log-correction of each node's estimate.
    """

    def __init__(
        self, view: ClusterView, learning_rate: float = 0.05, forget: float = 1e-3
    ) -> None:
        self.view = view
        self.learning_rate = learning_rate
        self.keep = 1.0 - forget
        self.correction = np.zeros(view.n_nodes)
        self._service = np.zeros(0)
        self._pending: dict[int, tuple[int, float]] = {}
        self._mec = MinExpectedCompletionRoute()
        self._mec.reset(view, np.random.default_rng(0))
        self._ref: list[float] = []
        self._ref_energy: list[float] = []
        self._template: list[np.ndarray] = []  # the columns that never change, per model
        self._inv_deployed: list[np.ndarray] = []
        self._harm_unit: list[np.ndarray] = []
        for m in range(len(view.model_names)):
            t = self._mec._tables[m]
            ref = float(t.solo.min())
            energy = np.maximum(t.dyn_energy * t.solo, 1e-9)
            self._ref.append(ref)
            self._ref_energy.append(float(energy.min()))
            x = np.zeros((t.nodes.size, N_FEATURES + 1))
            x[:, 1] = np.log(t.solo / ref)
            x[:, 6] = np.log1p((t.rtt + t.send) / ref)
            x[:, 7] = view.is_cloud[t.nodes]
            x[:, 8] = np.log(energy / energy.min())
            x[:, N_FEATURES] = 1.0
            self._template.append(np.clip(x, -CLIP, CLIP))
            self._inv_deployed.append(1.0 / t.deployed)
            self._harm_unit.append(t.alpha * view.utilisation[t.nodes, m])

    def nodes(self, model: int) -> np.ndarray:
        """Indices of the nodes the router may choose for ``model``."""
        return self._mec._tables[model].nodes

    def reference_latency_s(self, model: int) -> float:
        """The model's smallest solo latency over the nodes that serve it."""
        return self._ref[model]

    def reference_energy_j(self, model: int) -> float:
        """The model's smallest expected dynamic energy per request over its nodes."""
        return self._ref_energy[model]

    def rows(self, model: int, slo_s: float) -> np.ndarray:
        """Feature rows ``[len(nodes(model)), N_FEATURES + 1]`` for a request of ``model``."""
        view, t = self.view, self._mec._tables[model]
        nodes = t.nodes
        inv = self._inv_deployed[model]
        x = self._template[model].copy()
        inflight = view.inflight_model[nodes, model]
        util = view.running_util[nodes]
        expected = self._mec.estimate(model, util, inflight, view)
        self._service = t.solo * (1.0 + t.alpha * util)
        x[:, 0] = np.log(expected * (1.0 / self._ref[model]))
        x[:, 2] = np.maximum(inflight - t.deployed, 0) * inv
        x[:, 3] = inflight * inv
        x[:, 4] = util
        x[:, 5] = np.log(np.fmax(np.nan_to_num(view.slowdown_ewma[nodes], nan=1.0), 1e-3))
        x[:, 9] = math.log(slo_s / self._ref[model])
        x[:, 10] = np.minimum(util, 1.0)
        x[:, 11] = self.correction[nodes]
        running = view.running_model[nodes].sum(axis=1)
        x[:, 12] = np.log1p(self._harm_unit[model] * running * self._service / expected)
        np.clip(x, -CLIP, CLIP, out=x)
        return x

    def remember(self, request_id: int, node: int, position: int) -> None:
        """Keep the computation time expected by the last :meth:`rows` call at ``position``
        (the chosen node)."""
        self._pending[request_id] = (node, float(self._service[position]))
        self.correction *= self.keep

    def learn(self, outcome: Outcome) -> None:
        """Move the serving node's correction toward this outcome's measured error."""
        chosen = self._pending.pop(outcome.request_id, None)
        if chosen is None:
            return
        node, expected = chosen
        if outcome.offloaded and not self.view.is_cloud[node]:
            return  # the cloud answered too: the edge node's computation time is not measured
        error = math.log(max(outcome.finish_s - outcome.start_s, 1e-9) / expected)
        self.correction[node] += self.learning_rate * (error - self.correction[node])


@dataclass(frozen=True)
class RewardWeights:
    """How an outcome is scored (higher is better).

    ``reward = -(latency / ref_latency) / latency_scale - slo_miss * [missed]
    - energy * (energy / ref_energy) / latency_scale``, both ratios capped at ``cap``.

    Attributes:
        latency_scale: divides the latency ratio (keeps rewards near [-1, 0] in normal load).
        slo_miss: penalty for a missed deadline.
        energy: weight of the energy ratio relative to the latency ratio.
        cap: the largest latency ratio counted (overload should not swamp the returns).
    """

    latency_scale: float = 10.0
    slo_miss: float = 0.5
    energy: float = 0.02
    cap: float = 100.0


def outcome_reward(
    outcome: Outcome, features: RoutingFeatures, weights: RewardWeights = RewardWeights()
) -> float:
    """The reward of one measured outcome (see :class:`RewardWeights`)."""
    m = outcome.model
    ratio = min(outcome.latency_s / features.reference_latency_s(m), weights.cap)
    energy = min(outcome.energy_j / features.reference_energy_j(m), weights.cap)
    missed = 0.0 if outcome.slo_met else 1.0
    return -(ratio + weights.energy * energy) / weights.latency_scale - weights.slo_miss * missed
