"""Train the learned router in ``edgesched/Routing-v0`` with Stable-Baselines3, export, evaluate.

Two learners:

* ``dqn`` (the thesis's learner): DQN whose Q-network scores every node with one shared
  perceptron. Each decision is credited with **its own** measured outcome, matched by request id
  when the request finishes, and ``gamma = 0``: Q(state, node) is then the expected reward of
  sending this request there, which is also what the router keeps correcting online.
* ``ppo``: MaskablePPO (sb3-contrib) with per-node logits from the same perceptron, trained on
  the environment's summed rewards (``gamma = 0.99``), so it also weighs the delay a placement
  causes to the requests already running there.

Reinforcement learning is noisy: a run can wander away from a good policy. So every
``validate_every`` steps (and before the first), the current network is exported and simulated on
a held-out draw of the scenario (seed + 1000, which ``edgesched bench routing`` never uses), and
the file keeps the network with the lowest mean latency there (the ``validation`` entry of its
``meta`` lists every checkpoint). The exported file is then evaluated against every routing
baseline on the training scenario.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesched.core.cluster import Cluster
from edgesched.core.metrics import Metrics
from edgesched.core.scenario import ScenarioConfig
from edgesched.errors import ConfigError
from edgesched.learn.scorer import NodeScorer

ALGOS = ("dqn", "ppo")


@dataclass(frozen=True)
class TrainConfig:
    """What to train and how.

    Attributes:
        algo: ``dqn`` or ``ppo``.
        steps: environment steps (routing decisions) to train for.
        seed: seed of the learner and the episodes.
        episode_requests: requests per training episode.
        hidden: hidden layer widths of the per-node perceptron.
        randomize: vary load and node slowdowns per episode (see :class:`RoutingEnv`).
        validate_every: steps between checkpoints validated in the simulator (0: keep the last).
        validation_requests: requests of each validation run.
        prior_q, prior_logits: the starting weight of the heuristic's estimate in the score
            (see :class:`~edgesched.learn.nets.NodeMLP`), for DQN's values and PPO's logits.
    """

    algo: str = "ppo"
    steps: int = 100_000
    seed: int = 0
    episode_requests: int = 2000
    hidden: tuple[int, ...] = (32,)
    randomize: bool = True
    validate_every: int = 5000
    validation_requests: int = 10_000
    prior_q: float = 0.5
    prior_logits: float = 5.0

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ConfigError(f"--algo must be one of {ALGOS}, got {self.algo!r}")
        if self.steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {self.steps}")


def _own_outcome_credit() -> Any:
    """A callback that gives each stored DQN transition the reward of its own request."""
    from stable_baselines3.common.callbacks import BaseCallback

    class OwnOutcomeCredit(BaseCallback):
        """Writes each finished request's reward into the replay slot of its decision.

        SB3 stores a step's transition right after the callback runs, at ``buffer.pos``; the
        environment wrapper already returns the own reward of a request that finished within
        its own step, so only later finishes are written back here.
        """

        def _on_training_start(self) -> None:
            self._slot: dict[int, int] = {}

        def _on_step(self) -> bool:
            buffer = self.model.replay_buffer
            info = self.locals["infos"][0]
            own = info["request_id"]
            for rid, reward in info["outcomes"]:
                slot = self._slot.pop(rid, None)
                if slot is not None:
                    buffer.rewards[slot, 0] = reward
            if not info.get("own_done"):
                self._slot[own] = buffer.pos
            if self.locals["dones"][0]:
                self._slot.clear()
            return True

    return OwnOutcomeCredit()


def _own_reward_env(env: Any) -> Any:
    """Wrap the environment so a step's reward is its own request's (when already known)."""
    import gymnasium as gym

    class OwnReward(gym.Wrapper):
        def step(self, action: Any) -> Any:
            obs, _, terminated, truncated, info = self.env.step(action)
            own = info["request_id"]
            reward = -self.env.unwrapped.invalid_penalty if info["invalid"] else 0.0
            for rid, r in info["outcomes"]:
                if rid == own:
                    reward += r
                    info["own_done"] = True
            return obs, reward, terminated, truncated, info

    return OwnReward(env)


def _rich_progress(total: int) -> Any:
    """A callback that shows training steps on the shared progress bar."""
    from stable_baselines3.common.callbacks import BaseCallback

    from edgesched._console import progress

    class RichSteps(BaseCallback):
        def _on_training_start(self) -> None:
            self._bar = progress()
            self._bar.start()
            self._task = self._bar.add_task("training (steps)", total=total)

        def _on_step(self) -> bool:
            self._bar.update(self._task, completed=self.num_timesteps)
            return True

        def _on_training_end(self) -> None:
            self._bar.stop()

    return RichSteps()


def build_model(env: Any, config: TrainConfig) -> Any:
    """The SB3 model for ``config.algo`` on ``env`` (torch is imported here)."""
    import torch

    from edgesched.learn.nets import NodeActorCriticPolicy, NodeQPolicy

    torch.set_num_threads(1)
    if config.algo == "dqn":
        kwargs: dict[str, Any] = {"hidden": config.hidden, "prior": config.prior_q}
        from stable_baselines3 import DQN

        return DQN(
            NodeQPolicy,
            env,
            gamma=0.0,
            learning_rate=1e-3,
            buffer_size=50_000,
            learning_starts=min(1000, max(config.steps // 10, 1)),
            batch_size=128,
            train_freq=4,
            target_update_interval=1000,
            exploration_fraction=0.3,
            exploration_final_eps=0.02,
            policy_kwargs=kwargs,
            seed=config.seed,
            verbose=0,
        )
    from sb3_contrib import MaskablePPO

    kwargs = {"hidden": config.hidden, "prior": config.prior_logits}
    return MaskablePPO(
        NodeActorCriticPolicy,
        env,
        gamma=0.99,
        learning_rate=3e-4,
        n_steps=min(2048, max(config.steps, 64)),
        batch_size=256,
        ent_coef=0.001,
        policy_kwargs=kwargs,
        seed=config.seed,
        verbose=0,
    )


def train_routing(
    cluster: Cluster,
    scenario: ScenarioConfig,
    config: TrainConfig,
    out: Path,
    progress: bool = True,
) -> NodeScorer:
    """Train, export to ``out`` and return the numpy scorer (its ``meta`` says how it was made).

    Raises:
        DependencyNotInstalled: Gymnasium, Stable-Baselines3, sb3-contrib or torch is missing.
    """
    import importlib.util

    from edgesched.errors import DependencyNotInstalled

    for module, package in (
        ("gymnasium", "gymnasium"),
        ("stable_baselines3", "stable-baselines3"),
        ("sb3_contrib", "sb3-contrib"),
        ("torch", "torch"),
    ):
        if importlib.util.find_spec(module) is None:
            raise DependencyNotInstalled(package, "learn")
    from edgesched.learn.env import RoutingEnv
    from edgesched.learn.nets import node_mlp

    env: Any = RoutingEnv(
        cluster,
        scenario,
        episode_requests=config.episode_requests,
        randomize=config.randomize,
    )
    if config.algo == "dqn":
        env = _own_reward_env(env)
    env.reset(seed=config.seed)
    model = build_model(env, config)
    callbacks = [_own_outcome_credit()] if config.algo == "dqn" else []
    kind = "q" if config.algo == "dqn" else "logits"
    best = _BestOnValidation(cluster, scenario, config, kind)
    if config.validate_every > 0:
        callbacks.append(best.callback())
    if progress:
        callbacks.append(_rich_progress(config.steps))
    began = time.perf_counter()
    model.learn(total_timesteps=config.steps, callback=callbacks)
    best.check(model)
    meta = {
        "algo": config.algo,
        "steps": config.steps,
        "seed": config.seed,
        "episode_requests": config.episode_requests,
        "randomize": config.randomize,
        "cluster": cluster.name,
        "scenario": scenario.name,
        "train_wall_s": round(time.perf_counter() - began, 1),
        "command": "edgesched " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else "",
    }
    scorer = best.best if config.validate_every > 0 else node_mlp(model).export(kind, {})
    scorer.meta = {**meta, "validation": best.history}
    scorer.save(out)
    return scorer


class _BestOnValidation:
    """Keeps the checkpoint with the lowest mean latency on a held-out draw of the scenario."""

    def __init__(
        self, cluster: Cluster, scenario: ScenarioConfig, config: TrainConfig, kind: str
    ) -> None:
        self.cluster = cluster
        self.scenario = scenario.model_copy(
            update={"requests": config.validation_requests, "seed": scenario.seed + 1000}
        )
        self.every = config.validate_every
        self.kind = kind
        self.best: NodeScorer | None = None
        self.best_latency = float("inf")
        self.history: list[dict[str, float]] = []

    def check(self, model: Any) -> None:
        """Validate the model's current network; keep it if it is the best so far."""
        from edgesched.learn.nets import node_mlp
        from edgesched.policies.route_learned import LearnedRoute
        from edgesched.sim.runner import simulate

        scorer = node_mlp(model).export(self.kind, {})
        latency = simulate(self.cluster, self.scenario, LearnedRoute(scorer)).metrics.latency_mean_s
        self.history.append({"steps": int(model.num_timesteps), "mean_latency_s": latency})
        if latency < self.best_latency:
            self.best, self.best_latency = scorer, latency

    def callback(self) -> Any:
        """The SB3 callback that calls :meth:`check` before training and every ``every`` steps."""
        from stable_baselines3.common.callbacks import BaseCallback

        outer = self

        class Validate(BaseCallback):
            def _on_training_start(self) -> None:
                outer.check(self.model)

            def _on_step(self) -> bool:
                if self.num_timesteps % outer.every == 0:
                    outer.check(self.model)
                return True

        return Validate()


def evaluate(
    cluster: Cluster,
    scenario: ScenarioConfig,
    policy_file: Path,
    baselines: list[str],
    tick: Callable[[str], None] | None = None,
) -> list[Metrics]:
    """Metrics of the learned policy and of every baseline on ``scenario`` (same seed)."""
    from edgesched.policies.route_learned import LearnedRoute
    from edgesched.sim.runner import simulate

    results = []
    for name in ["learned", *baselines]:
        if tick is not None:
            tick(name)
        policy = LearnedRoute(policy_file) if name == "learned" else name
        results.append(simulate(cluster, scenario, policy).metrics)
    return results


def summary_row(m: Metrics) -> dict[str, float | str]:
    """The figures of one policy's run that the training report prints."""
    return {
        "policy": m.policy,
        "mean_ms": round(m.latency_mean_s * 1e3, 3),
        "p99_ms": round(m.latency_p99_s * 1e3, 3),
        "slo_attainment": round(m.slo_attainment, 4),
        "energy_per_request_j": round(m.energy_per_request_j, 4),
    }
