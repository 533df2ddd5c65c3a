"""``edgesched/Routing-v0``: Gymnasium's checker, masks, rewards matched by request id."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from edgesched.learn.env import RoutingEnv
from edgesched.learn.features import N_FEATURES
from tests.builders import toy_cluster, toy_scenario


def _env(**kw) -> RoutingEnv:  # type: ignore[no-untyped-def]
    return RoutingEnv(toy_cluster(), toy_scenario(), episode_requests=200, **kw)


def _run(env: RoutingEnv, choose) -> tuple[float, list[dict]]:  # type: ignore[no-untyped-def]
    env.reset(seed=3)
    total, infos, done = 0.0, [], False
    while not done:
        _, reward, done, _, info = env.step(choose(env))
        total += reward
        infos.append(info)
    return total, infos


def test_the_registered_environment_passes_gymnasiums_checker() -> None:
    env = gym.make("edgesched/Routing-v0", episode_requests=100)
    check_env(env.unwrapped)
    assert env.unwrapped.observation_space.shape == (8, N_FEATURES + 1)


def test_the_toy_environment_passes_the_checker_without_randomizing() -> None:
    env = gym.make(
        "edgesched/Routing-v0",
        cluster=toy_cluster(),
        scenario=toy_scenario(),
        episode_requests=100,
        randomize=False,
    )
    check_env(env.unwrapped)


def test_every_request_is_credited_once_by_its_id_and_the_rewards_add_up() -> None:
    env = _env()
    total, infos = _run(env, lambda e: int(np.flatnonzero(e.action_masks())[0]))
    credited = [rid for info in infos for rid, _ in info["outcomes"]]
    assert sorted(credited) == list(range(200))
    assert sorted(info["request_id"] for info in infos) == list(range(200))
    assert total == pytest.approx(sum(r for info in infos for _, r in info["outcomes"]))
    assert all(r < 0 for info in infos for _, r in info["outcomes"])


def test_the_mask_marks_the_nodes_serving_the_pending_model() -> None:
    env = _env()
    obs, _ = env.reset(seed=0)
    mask = env.action_masks()
    np.testing.assert_array_equal(obs[:, -1] > 0.5, mask)
    assert mask.any() and mask.sum() <= 3


def test_an_invalid_action_is_penalised_and_served_elsewhere() -> None:
    cluster = toy_cluster(
        nodes=[
            {"id": "fast", "device": "fast", "models": {"a": 1}, "link": "lan"},
            {"id": "slow", "device": "slow", "models": {"b": 1}, "link": "lan"},
        ],
        links=[{"id": "lan", "bandwidth_bytes_per_s": 125e6, "rtt_s": 0.0005}],
    )
    env = RoutingEnv(cluster, toy_scenario(), episode_requests=50, randomize=False)
    env.reset(seed=0)
    wrong = int(np.flatnonzero(~env.action_masks())[0])
    _, reward, _, _, info = env.step(wrong)
    assert info["invalid"] and info["node"] != wrong
    assert reward <= -env.invalid_penalty


def test_sending_everything_to_the_slow_node_earns_less_than_spreading_it() -> None:
    env = _env(randomize=False)
    slow, _ = _run(env, lambda e: 1)  # the slow node serves both models
    spread, _ = _run(env, lambda e: int(np.flatnonzero(e.action_masks())[e.np_random.integers(3)]))
    assert spread > slow


def test_episodes_repeat_per_seed_and_randomized_ones_differ() -> None:
    env = _env()
    first = _run(env, lambda e: int(np.flatnonzero(e.action_masks())[0]))[0]
    again = _run(env, lambda e: int(np.flatnonzero(e.action_masks())[0]))[0]
    assert first == again
    env.reset(seed=4)
    loads = {env._episode_scenario().load for _ in range(5)}
    assert len(loads) == 5


def test_a_scenario_asking_for_a_model_the_cluster_lacks_is_refused() -> None:
    from edgesched.errors import ConfigError

    scenario = toy_scenario(models={"zzz": {"weight": 1, "slo_s": 0.1}})
    with pytest.raises(ConfigError, match="zzz"):
        RoutingEnv(toy_cluster(), scenario)
