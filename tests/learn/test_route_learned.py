"""The learned router: registered, runs without torch, and learns a slowed node online."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgesched.learn.features import CORRECTION, ESTIMATE, N_FEATURES, RoutingFeatures
from edgesched.learn.scorer import NodeScorer
from edgesched.policies import make, names
from edgesched.policies.route_learned import LearnedRoute
from edgesched.sim.runner import simulate
from tests.builders import light_scenario, quiet_cluster, toy_cluster, toy_scenario


def _heuristic_policy(path: Path) -> Path:
    """A policy that ranks nodes by expected completion times the learned correction."""
    weights = [(np.zeros((N_FEATURES, 2)), np.zeros(2)), (np.zeros((2, 1)), np.zeros(1))]
    skip = np.zeros(N_FEATURES)
    skip[ESTIMATE] = skip[CORRECTION] = -1.0
    return NodeScorer(weights, "logits", {"algo": "hand"}, skip).save(path)


def _share_on_fast_after_slowdown(policy: LearnedRoute) -> float:
    scenario = light_scenario(3000, 20.0, {"node": "fast", "at_fraction": 0.3, "factor": 6.0})
    result = simulate(quiet_cluster(), scenario, policy)
    late = result.workload.times > result.workload.times[-1] * 0.6
    return float((result.node[late] == 0).mean())


def test_online_corrections_move_requests_off_a_node_that_slowed_down(tmp_path: Path) -> None:
    path = _heuristic_policy(tmp_path / "p.npz")
    static = _share_on_fast_after_slowdown(LearnedRoute(path, online=False))
    online = _share_on_fast_after_slowdown(LearnedRoute(path, online=True))
    assert static > 0.9  # the profile says "fast" is fastest, and nothing corrects it
    assert online < 0.3


def test_a_correction_tracks_the_measured_error_of_its_node() -> None:
    from edgesched.core.request import Outcome
    from edgesched.sim.runner import draw_workload, make_engine

    cluster, scenario = toy_cluster(), toy_scenario()
    workload = draw_workload(cluster, scenario)
    engine = make_engine(cluster, scenario, workload, make("route", "pow2"), 0)
    features = RoutingFeatures(engine.view, learning_rate=0.5, forget=0.0)
    features.rows(0, 0.1)
    service = engine.view.solo_latency_s[0, 0]  # expected on node 0 while it is idle
    for i in range(30):
        features.remember(i, 0, 0)
        # computed in twice the expected time, after waiting 1 s (waiting does not count)
        features.learn(Outcome(i, 0, 0, 0.0, 1.0, 1.0 + 2.0 * service, 0.0, False, 0.1))
    assert features.correction[0] == pytest.approx(np.log(2.0), rel=1e-3)
    assert features.rows(0, 0.1)[0, CORRECTION] == pytest.approx(np.log(2.0), rel=1e-3)
    assert features.correction[1] == 0.0


def test_the_fast_path_scores_exactly_like_the_full_rows() -> None:
    from edgesched.sim.runner import draw_workload, make_engine

    rng = np.random.default_rng(0)
    weights = [
        (rng.normal(size=(N_FEATURES, 6)), rng.normal(size=6)),
        (rng.normal(size=(6, 4)), rng.normal(size=4)),
        (rng.normal(size=(4, 1)), rng.normal(size=1)),
    ]
    scorer = NodeScorer(weights, "logits", {}, rng.normal(size=N_FEATURES))
    cluster, scenario = toy_cluster(), toy_scenario()
    workload = draw_workload(cluster, scenario)
    engine = make_engine(cluster, scenario, workload, make("route", "pow2"), 0)
    steps = engine.steps()
    features = RoutingFeatures(engine.view)
    fast = scorer.fast(features)
    request = next(steps)
    for _ in range(300):  # through busy states, not only the idle one
        m = request.model
        full = scorer.scores(features.rows(m, request.slo_s))
        quick = fast.scores(m, features.dynamic(m), features.slo_feature(m, request.slo_s))
        np.testing.assert_allclose(quick, full, rtol=1e-9, atol=1e-9)
        features.correction[:] = rng.normal(size=features.correction.size)
        request = steps.send(int(features.nodes(m)[np.argmax(full)]))


def test_learned_is_registered_and_ships_a_default_policy() -> None:
    assert "learned" in names("route")
    policy = make("route", "learned")
    assert policy.policy_file.is_file()
    assert policy.scorer.meta.get("command", "").startswith("edgesched train routing")


def test_the_learned_router_runs_without_torch_or_gymnasium() -> None:
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['gymnasium'] = None\n"
        "from edgesched.sim.runner import simulate\n"
        "from edgesched.bench.scenarios import default_cluster_path, default_scenario_path\n"
        "from edgesched.core.cluster import Cluster\n"
        "from edgesched.core.scenario import ScenarioConfig\n"
        "sc = ScenarioConfig.load_file(default_scenario_path())\n"
        "sc = sc.model_copy(update={'requests': 300})\n"
        "r = simulate(Cluster.load(default_cluster_path()), sc, 'learned')\n"
        "print(r.metrics.requests)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "300"


def test_simulate_takes_a_policy_file_for_the_learned_router_only(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from edgesched.cli import app
    from edgesched.errors import ConfigError

    path = _heuristic_policy(tmp_path / "mine.npz")
    args = ["simulate", "--policy", "learned", "--requests", "300", "--json"]
    result = CliRunner().invoke(app, [*args, "--policy-file", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["policy"] == "learned"
    wrong = CliRunner().invoke(app, ["simulate", "--policy", "pow2", "--policy-file", str(path)])
    assert isinstance(wrong.exception, ConfigError)
    assert "use --policy learned" in str(wrong.exception)
    missing = CliRunner().invoke(app, [*args, "--policy-file", str(tmp_path / "none.npz")])
    assert isinstance(missing.exception, ConfigError) and "train one" in str(missing.exception)
