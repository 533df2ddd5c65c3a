"""Training a few hundred steps, exporting to numpy, and routing with the exported policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgesched.learn.features import N_FEATURES
from edgesched.learn.nets import node_mlp
from edgesched.learn.scorer import NodeScorer
from edgesched.learn.train import TrainConfig, build_model, train_routing
from edgesched.policies.route_learned import LearnedRoute
from edgesched.sim.runner import simulate
from tests.builders import toy_cluster, toy_scenario


def _with_ones(rows: np.ndarray) -> np.ndarray:
    """Feature rows with the trailing column of ones that the scorer takes."""
    return np.hstack([rows, np.ones((rows.shape[0], 1))])


@pytest.fixture(scope="module", params=["dqn", "ppo"])
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp(request.param) / "policy.npz"
    config = TrainConfig(
        algo=request.param,
        steps=300,
        episode_requests=100,
        hidden=(8,),
        validate_every=100,
        validation_requests=300,
    )
    scorer = train_routing(toy_cluster(), toy_scenario(), config, out, progress=False)
    return request.param, out, scorer


def test_training_writes_a_policy_file_that_loads_back_identically(trained) -> None:  # type: ignore[no-untyped-def]
    algo, out, scorer = trained
    loaded = NodeScorer.load(out)
    assert loaded.kind == ("q" if algo == "dqn" else "logits")
    assert loaded.meta["algo"] == algo and loaded.meta["steps"] == 300
    # checkpoints before training, every 100 steps, and at the end; the file keeps the best
    steps = [v["steps"] for v in loaded.meta["validation"]]
    assert steps[0] == 0 and steps[-1] >= 300 and len(steps) >= 4
    best = min(v["mean_latency_s"] for v in loaded.meta["validation"])
    validation = toy_scenario(requests=300, seed=toy_scenario().seed + 1000)
    again = simulate(toy_cluster(), validation, LearnedRoute(out)).metrics.latency_mean_s
    assert again == pytest.approx(best)
    x = _with_ones(np.random.default_rng(0).normal(size=(5, N_FEATURES)))
    np.testing.assert_allclose(loaded.scores(x), scorer.scores(x))


def test_the_exported_policy_routes_a_simulation_without_misrouting(trained) -> None:  # type: ignore[no-untyped-def]
    _, out, _ = trained
    result = simulate(toy_cluster(), toy_scenario(requests=500), LearnedRoute(out))
    assert result.metrics.requests == 500
    assert result.metrics.policy == "learned"


@pytest.mark.parametrize("algo", ["dqn", "ppo"])
def test_numpy_scores_equal_the_torch_networks(algo: str) -> None:
    from edgesched.learn.env import RoutingEnv

    env = RoutingEnv(toy_cluster(), toy_scenario(), episode_requests=50)
    env.reset(seed=0)
    model = build_model(env, TrainConfig(algo=algo, steps=10, hidden=(16, 8)))
    mlp = node_mlp(model)
    with torch.no_grad():
        for p in mlp.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # away from the near-zero initial output layer
    rows = np.random.default_rng(1).normal(size=(7, N_FEATURES)).astype(np.float32)
    with torch.no_grad():
        expected = mlp(torch.as_tensor(rows)[None])[0][0].numpy()
    scores = mlp.export("q", {}).scores(_with_ones(rows))
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


def test_a_new_network_ranks_nodes_like_the_heuristic_estimate() -> None:
    from edgesched.learn.nets import NodeMLP

    mlp = NodeMLP((8,), prior=5.0)
    rows = np.zeros((4, N_FEATURES))
    rows[:, 0] = [0.3, 0.1, 0.9, 0.5]  # log expected completion
    scores = mlp.export("logits", {}).scores(_with_ones(rows))
    assert int(np.argmax(scores)) == 1


def test_a_policy_file_of_another_feature_count_is_refused(tmp_path: Path) -> None:
    from edgesched.errors import ConfigError

    w = [(np.zeros((N_FEATURES + 1, 4)), np.zeros(4)), (np.zeros((4, 1)), np.zeros(1))]
    with pytest.raises(ConfigError, match="retrain"):
        NodeScorer(w, "q")
    with pytest.raises(ConfigError, match="train one"):
        NodeScorer.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="not a routing policy"):
        NodeScorer.load(tmp_path / "junk.npz")


def test_a_bad_algorithm_or_step_count_is_a_config_error() -> None:
    from edgesched.errors import ConfigError

    with pytest.raises(ConfigError, match="--algo"):
        TrainConfig(algo="a2c")
    with pytest.raises(ConfigError, match="--steps"):
        TrainConfig(steps=0)


def test_training_without_the_learn_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from edgesched.errors import DependencyNotInstalled

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sb3_contrib" else real(name)
    )
    with pytest.raises(DependencyNotInstalled, match=r"edgesched\[learn\]"):
        train_routing(toy_cluster(), toy_scenario(), TrainConfig(steps=10), tmp_path / "p.npz")
