"""What the learned router sees of each node, and what it is rewarded for.

One feature row per node for the arriving request (the same in training, in the simulator and in
the server, since all three read a :class:`ClusterView`). Latencies are divided by the model's
*reference latency* — its smallest solo latency over the nodes that serve it — and taken in log
scale, so that one scorer serves every model and every cluster size. Columns (``d``: changes with
the state, ``s``: fixed per node and model, ``r``: fixed per request):

====  ==  ================================================================================
 0    d   log expected completion / ref: the ``min-expected-completion`` estimate (transfer,
          queueing, interference-stretched service)
 1    s   log solo latency on the node / ref
 2    d   requests of the model waiting for an instance there, per instance
 3    d   utilisation of what computes there now (sum of instance utilisations)
 4    d   log measured slowdown of the node (computation time over profile; 0 before any)
 5    s   log1p transfer time / ref
 6    s   1 for a cloud node
 7    s   log expected dynamic energy of the request there / the model's smallest
 8    r   log SLO / ref
 9    d   the node's learned correction (log of measured over expected computation time)
10    d   log1p of the delay the request would add to what already computes there (running
          instances × interference coefficient × its utilisation × its expected computation
          time) over the estimate in column 0: the cost a placement puts on the others
====  ==  ================================================================================

:data:`N_FEATURES` counts these columns; :meth:`RoutingFeatures.rows` appends a column of ones
(the scorer's bias input; in the environment's observation it marks the nodes serving the model,
and the rows of the other nodes are all zeros). On the hot path, :meth:`RoutingFeatures.dynamic`
computes only the ``d`` columns, and :class:`~edgesched.learn.scorer.FastScorer` adds the rest
through a per-model
constant, so a decision costs a few dozen small numpy operations.

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

N_FEATURES = 11
#: Columns that change with the state, in the order :meth:`RoutingFeatures.dynamic` gives them.
DYNAMIC = (0, 2, 3, 4, 9, 10)
#: Columns fixed per node and model (the last one is the column of ones).
STATIC = (1, 5, 6, 7, N_FEATURES)
#: The column fixed per request.
SLO = 8
#: Column of the estimate, the learned correction and the delay caused (the linear prior's).
ESTIMATE, CORRECTION, HARM = 0, 9, 10
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
        self._inv_ref: list[float] = []
        self._ref_energy: list[float] = []
        self._template: list[np.ndarray] = []  # the columns that never change, per model
        self._harm_unit: list[np.ndarray] = []
        for m in range(len(view.model_names)):
            t = self._mec.table(m)
            ref = float(t.solo.min())
            energy = np.maximum(t.dyn_energy * t.solo, 1e-9)
            self._ref.append(ref)
            self._inv_ref.append(1.0 / ref)
            self._ref_energy.append(float(energy.min()))
            x = np.zeros((t.nodes.size, N_FEATURES + 1))
            x[:, 1] = np.log(t.solo / ref)
            x[:, 5] = np.log1p((t.rtt + t.send) / ref)
            x[:, 6] = view.is_cloud[t.nodes]
            x[:, 7] = np.log(energy / energy.min())
            x[:, N_FEATURES] = 1.0
            self._template.append(np.clip(x, -CLIP, CLIP))
            self._harm_unit.append(t.alpha * view.utilisation[t.nodes, m])

    def nodes(self, model: int) -> np.ndarray:
        """Indices of the nodes the router may choose for ``model``."""
        return self._mec.table(model).nodes

    def reference_latency_s(self, model: int) -> float:
        """The model's smallest solo latency over the nodes that serve it."""
        return self._ref[model]

    def reference_energy_j(self, model: int) -> float:
        """The model's smallest expected dynamic energy per request over its nodes."""
        return self._ref_energy[model]

    def static(self, model: int) -> np.ndarray:
        """The ``s`` columns of ``model``'s rows (read-only; :data:`STATIC` order)."""
        return self._template[model][:, STATIC]

    def slo_feature(self, model: int, slo_s: float) -> float:
        """Column 8 for a request of ``model`` with deadline ``slo_s``."""
        return min(max(math.log(slo_s / self._ref[model]), -CLIP), CLIP)

    def dynamic(self, model: int) -> np.ndarray:
        """The ``d`` columns (:data:`DYNAMIC` order) of the nodes serving ``model``, now."""
        view, t = self.view, self._mec.table(model)
        nodes = t.nodes
        inflight = view.inflight_model[nodes, model]
        util = view.running_util[nodes]
        service, expected = self._mec.estimate_parts(model, util, inflight, view)
        self._service = service
        # Hot path: one preallocated block filled column by column through ufuncs' ``out``
        # (np.stack, np.clip and np.nan_to_num cost several times a ufunc call here).
        d = np.empty((nodes.size, len(DYNAMIC)))
        np.log(expected * self._inv_ref[model], out=d[:, 0])
        np.maximum(inflight - t.deployed, 0, out=d[:, 1])
        d[:, 1] *= t.inv_deployed
        d[:, 2] = util
        slow = view.slowdown_ewma[nodes]
        np.log(np.where(slow > 1e-3, slow, 1.0), out=d[:, 3])  # NaN (none yet) counts as 1
        d[:, 4] = self.correction[nodes]
        running = np.add.reduce(view.running_model[nodes], axis=1)
        np.log1p(self._harm_unit[model] * running * service / expected, out=d[:, 5])
        np.minimum(d, CLIP, out=d)
        return np.maximum(d, -CLIP, out=d)

    def rows(self, model: int, slo_s: float) -> np.ndarray:
        """Feature rows ``[len(nodes(model)), N_FEATURES + 1]`` for a request of ``model``."""
        x = self._template[model].copy()
        x[:, DYNAMIC] = self.dynamic(model)
        x[:, SLO] = self.slo_feature(model, slo_s)
        return x

    def remember(self, request_id: int, node: int, position: int) -> None:
        """Keep the computation time expected by the last :meth:`dynamic` (or :meth:`rows`) call
        at ``position`` (the chosen node)."""
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
