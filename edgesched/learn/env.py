"""``edgesched/Routing-v0``: the routing decision point as a Gymnasium environment.

Each step is one arriving request of the simulated workload (the simulator's own engine, stepped
through :meth:`Engine.steps`). The observation is one feature row per node
(:mod:`edgesched.learn.features`) plus a last column that is 1 where the node serves the
request's model; the action is a node index (the cloud is a node); :meth:`RoutingEnv.action_masks`
gives the valid ones (MaskablePPO reads it). An action outside the mask sends the request to a
random valid node and costs ``invalid_penalty``.

Rewards come from **measured outcomes**: when a request finishes, its reward
(:func:`~edgesched.learn.features.outcome_reward`) is matched back to its decision by request id.
A step's reward is the sum of the rewards of the requests that finished since the previous step,
so an episode's return is the total over all its requests; ``info["outcomes"]`` lists
``(request_id, reward)`` of those requests and ``info["request_id"]`` names the request the action
routed, for learners that credit each decision with its own outcome. Outcomes also update the
features' learned per-node corrections, exactly as when the learned router serves.

Episodes vary when ``randomize`` is on: the scenario's load is scaled by a factor drawn from
``load_scale`` and, with
probability ``slowdown_prob``, one random edge node becomes 1.5–4× slower at a random moment,
so the learned router must use the measured slowdown rather than trust the profile.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from edgesched.core.cluster import Cluster
from edgesched.core.request import Outcome, Request
from edgesched.core.scenario import NodeSlowdown, ScenarioConfig
from edgesched.core.view import ClusterView
from edgesched.errors import ConfigError
from edgesched.learn.features import (
    CLIP,
    N_FEATURES,
    RewardWeights,
    RoutingFeatures,
    outcome_reward,
)
from edgesched.policies.route import RoutePolicy
from edgesched.sim.runner import draw_workload, make_engine


class _Outcomes(RoutePolicy):
    """Collects the engine's outcomes for the environment (the agent makes the decisions)."""

    name = "agent"

    def __init__(self) -> None:
        self.done: list[Outcome] = []

    def decide(self, request: Request, view: ClusterView) -> int:
        raise RuntimeError("the environment's agent decides; the engine is stepped")

    def observe(self, outcome: Outcome) -> None:
        self.done.append(outcome)


class RoutingEnv(gym.Env[np.ndarray, np.int64]):
    """The routing environment (see the module docstring).

    Args:
        cluster: the cluster (default: the built-in default cluster).
        scenario: the scenario (default: the built-in default scenario); its models, SLOs and
            arrival process are kept, its request count replaced by ``episode_requests``.
        episode_requests: requests per episode.
        randomize: vary load and node slowdowns per episode.
        load_scale: range of the factor on the scenario's load (or rate) per episode, when
            ``randomize``.
        slowdown_prob: chance that an episode has a slowed node, when ``randomize``.
        weights: the reward's weights.
        invalid_penalty: reward subtracted for an action outside the mask.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium's convention

    def __init__(
        self,
        cluster: Cluster | None = None,
        scenario: ScenarioConfig | None = None,
        episode_requests: int = 2000,
        randomize: bool = True,
        load_scale: tuple[float, float] = (0.6, 1.1),
        slowdown_prob: float = 0.5,
        weights: RewardWeights | None = None,
        invalid_penalty: float = 1.0,
    ) -> None:
        from edgesched.bench import default_cluster_path, default_scenario_path

        self.cluster = cluster if cluster is not None else Cluster.load(default_cluster_path())
        base = (
            scenario if scenario is not None else ScenarioConfig.load_file(default_scenario_path())
        )
        missing = sorted(set(base.models) - set(self.cluster.model_names))
        if missing:
            raise ConfigError(
                f"scenario {base.name!r} requests {missing}, which cluster "
                f"{self.cluster.name!r} does not deploy"
            )
        if episode_requests < 1:
            raise ConfigError(f"episode_requests must be >= 1, got {episode_requests}")
        self.scenario = base.model_copy(update={"requests": episode_requests})
        self.randomize = randomize
        self.load_scale = load_scale
        self.slowdown_prob = slowdown_prob
        self.weights = weights or RewardWeights()
        self.invalid_penalty = invalid_penalty
        n = len(self.cluster.nodes)
        self.n_nodes = n
        self.observation_space = spaces.Box(-CLIP, CLIP, (n, N_FEATURES + 1), np.float32)
        self.action_space = spaces.Discrete(n)
        self._edge = [node.id for node in self.cluster.nodes if not node.is_cloud]
        self._steps: Any = None

    # ------------------------------------------------------------------------------ episodes
    def _episode_scenario(self) -> ScenarioConfig:
        if not self.randomize:
            return self.scenario
        rng = self.np_random
        update: dict[str, Any] = {}
        scale = float(rng.uniform(*self.load_scale))
        if self.scenario.load is not None:
            update["load"] = self.scenario.load * scale
        elif self.scenario.rate_rps is not None:
            update["rate_rps"] = self.scenario.rate_rps * scale
        if self._edge and rng.random() < self.slowdown_prob:
            node = self._edge[int(rng.integers(len(self._edge)))]
            slow = NodeSlowdown(
                node=node,
                at_fraction=float(rng.uniform(0.0, 0.8)),
                factor=float(rng.uniform(1.5, 4.0)),
            )
            update["slowdowns"] = [*self.scenario.slowdowns, slow]
        return self.scenario.model_copy(update=update)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        scenario = self._episode_scenario()
        episode_seed = int(self.np_random.integers(2**31))
        workload = draw_workload(self.cluster, scenario, episode_seed)
        self._collector = _Outcomes()
        engine = make_engine(self.cluster, scenario, workload, self._collector, episode_seed)
        self.view = engine.view
        self.features = RoutingFeatures(engine.view)
        self._steps = engine.steps()
        self._request: Request = next(self._steps)
        return self._observe(), {"request_id": self._request.id}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._steps is None:
            raise RuntimeError("call reset() before step()")
        req = self._request
        node = int(action)
        nodes = self.features.nodes(req.model)
        reward = 0.0
        invalid = node not in nodes
        if invalid:
            node = int(nodes[self.np_random.integers(nodes.size)])
            reward -= self.invalid_penalty
        self.features.remember(req.id, node, int(np.searchsorted(nodes, node)))
        info: dict[str, Any] = {"request_id": req.id, "node": node, "invalid": invalid}
        try:
            self._request = self._steps.send(node)
            terminated = False
            obs = self._observe()
        except StopIteration:
            self._steps = None
            terminated = True
            obs = np.zeros(self.observation_space.shape, np.float32)
        done, self._collector.done = self._collector.done, []
        for o in done:
            self.features.learn(o)
        scored = [(o.request_id, outcome_reward(o, self.features, self.weights)) for o in done]
        reward += sum(r for _, r in scored)
        info["outcomes"] = scored
        return obs, float(reward), terminated, False, info

    # ---------------------------------------------------------------------------- observing
    def _observe(self) -> np.ndarray:
        req = self._request
        obs = np.zeros((self.n_nodes, N_FEATURES + 1), np.float32)
        nodes = self.features.nodes(req.model)
        obs[nodes] = self.features.rows(req.model, req.slo_s)  # its last column: the mask
        return obs

    def action_masks(self) -> np.ndarray:
        """Valid actions now: the nodes that serve the pending request's model."""
        mask = np.zeros(self.n_nodes, dtype=bool)
        if self._steps is not None:
            mask[self.features.nodes(self._request.model)] = True
        return mask


if "edgesched/Routing-v0" not in gym.registry:
    gym.register(id="edgesched/Routing-v0", entry_point="edgesched.learn.env:RoutingEnv")
