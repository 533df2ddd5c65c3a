"""The routing bench end to end on tiny runs: what it runs, aggregates and writes."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgesched.bench import routing_stats as stats
from edgesched.bench.routing import BenchConfig, plan_jobs, policy_kwargs, run_bench
from edgesched.bench.routing_report import document, markdown, write_outputs
from edgesched.bench.scenarios import builtin_paths
from edgesched.core.scenario import ScenarioConfig
from edgesched.errors import ConfigError, UnknownNameError
from edgesched.policies import names

POLICIES = ("pow2", "min-expected-completion", "least-loaded")
TINY = BenchConfig(
    scenarios=("default", "throttling"), seeds=2, policies=POLICIES, requests=600, workers=1
)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The tiny bench, run once, and the folder it wrote."""
    results = run_bench(TINY)
    out = tmp_path_factory.mktemp("bench")
    return results, write_outputs(results, TINY, out), out


def test_every_scenario_runs_every_policy_on_consecutive_seeds(tiny) -> None:  # type: ignore[no-untyped-def]
    results, _, _ = tiny
    assert [r.name for r in results] == ["default", "throttling"]
    for r in results:
        base = r.config.seed
        assert r.seeds == [base, base + 1]
        # a scenario with a slowdown also runs the told reference
        expected = [*POLICIES, stats.TOLD] if r.config.slowdowns else list(POLICIES)
        assert [(run.policy, run.seed) for run in r.runs] == [
            (p, s) for p in expected for s in r.seeds
        ]
        assert all(run.metrics["requests"] == 600 for run in r.runs)


def test_the_summary_is_the_mean_and_spread_of_the_runs(tiny) -> None:  # type: ignore[no-untyped-def]
    results, _, _ = tiny
    r = results[0]
    for policy in POLICIES:
        p99 = [run.metrics["latency_p99_s"] for run in r.runs if run.policy == policy]
        spread = r.summary[policy]["latency_p99_s"]
        assert spread.mean == pytest.approx(np.mean(p99))
        assert spread.std == pytest.approx(np.std(p99, ddof=1))
    means = {p: r.summary[p]["latency_mean_s"].mean for p in POLICIES}
    assert r.best_heuristic == min(means, key=means.__getitem__)
    assert r.learned_ratios is None  # the learned router did not run


def test_policies_see_the_same_arrivals_for_a_seed(tiny) -> None:  # type: ignore[no-untyped-def]
    throttling = tiny[0][1]
    spans = {(run.seed, run.trace.span_s) for run in throttling.runs if run.trace}
    assert len(spans) == len(throttling.seeds)  # one span of arrivals per seed, not per policy


def test_only_the_scenario_with_a_slowdown_gets_recovery_figures(tiny) -> None:  # type: ignore[no-untyped-def]
    default, throttling = tiny[0]
    assert default.recovery is None and default.slowdown is None
    assert set(throttling.recovery) == {*POLICIES, stats.TOLD}
    assert throttling.best_heuristic != stats.TOLD
    for run in throttling.runs:
        assert run.trace is not None
        assert run.trace.node == "orin-nano" and run.trace.factor == 3.0
        # at_fraction 0.5 of the span of arrivals
        assert run.trace.slowdown_s == pytest.approx(0.5 * run.trace.span_s)
        assert set(run.trace.windows) == set(stats.WINDOWS)
        assert len(run.trace.time_s) == len(run.trace.rolling_latency_s)
    for policy, windows in throttling.recovery.items():
        before = [r.trace.windows["before"] for r in throttling.runs if r.policy == policy]
        assert windows["before"].mean == pytest.approx(np.nanmean(before))
    t, latency = throttling.timeline("pow2")
    assert t[0] < 0.0 < t[-1]  # seconds from the slowdown, both sides of it
    assert len(t) == len(latency) and np.isfinite(latency).any()


def test_the_json_holds_every_run_the_summary_and_the_recovery(tiny) -> None:  # type: ignore[no-untyped-def]
    results, paths, _ = tiny
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert doc == json.loads(json.dumps(document(results, TINY)))
    assert doc["config"]["policies"] == list(POLICIES)
    default, throttling = doc["scenarios"]["default"], doc["scenarios"]["throttling"]
    assert len(default["runs"]) == len(POLICIES) * 2
    assert set(default["summary"]["pow2"]["latency_mean_s"]) == {"mean", "std"}
    assert set(stats.AGGREGATED) <= set(default["summary"]["pow2"])
    assert default["best_heuristic"]["policy"] in POLICIES
    assert default["learned_vs_best_heuristic"] is None
    assert default["recovery"] is None
    rec = throttling["recovery"]
    assert rec["node"] == "orin-nano" and rec["factor"] == 3.0
    assert set(rec["latency_s"]["pow2"]) == set(stats.WINDOWS)
    timeline = rec["timeline"]["min-expected-completion"]
    assert len(timeline["time_s"]) == len(timeline["latency_s"]) > 10
    assert "recovery_latency_s" in throttling["runs"][0]


def test_the_markdown_and_plots_are_written(tiny) -> None:  # type: ignore[no-untyped-def]
    results, paths, out = tiny
    md = paths["markdown"].read_text(encoding="utf-8")
    assert md == markdown(results)
    assert md.count("\n## ") == 2 and "### Recovery: orin-nano 3× slower" in md
    for policy in POLICIES:
        assert f"| {policy} | " in md
    assert "Best heuristic: " in md
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["recovery-throttling.png", "routing-default.png", "routing-throttling.png"]
    assert all((out / name).read_bytes().startswith(PNG) for name in pngs)


def test_policy_kwargs_hand_only_the_learned_router_a_policy_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = ScenarioConfig.load_file(builtin_paths("throttling")[1])
    assert policy_kwargs("pow2", scenario, tmp_path / "x.npz") == {}
    given = tmp_path / "mine.npz"
    assert policy_kwargs(stats.LEARNED, scenario, given) == {"policy_file": given}
    monkeypatch.setitem(sys.modules, "edgesched.learn.shipped", None)  # not installed
    assert policy_kwargs(stats.LEARNED, scenario) == {}


def test_the_shipped_policy_for_the_scenario_is_used_when_installed() -> None:
    shipped = pytest.importorskip("edgesched.learn.shipped")
    scenario = ScenarioConfig.load_file(builtin_paths("interference-heavy")[1])
    kwargs = policy_kwargs(stats.LEARNED, scenario)
    assert kwargs == {"policy_file": shipped.policy_for("interference-heavy")}


def test_by_default_every_registered_policy_runs() -> None:
    config = replace(TINY, policies=None)
    assert config.policy_names == names("route")


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"seeds": 0}, ConfigError, "seeds"),
        ({"requests": 0}, ConfigError, "requests"),
        ({"workers": 0}, ConfigError, "workers"),
        ({"scenarios": ()}, ConfigError, "scenario"),
        ({"policies": ("pow2", "pow2")}, ConfigError, "more than once"),
    ],
)
def test_bad_settings_are_refused_before_anything_runs(
    change: dict, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        replace(TINY, **change)


def test_unknown_names_fail_before_any_run() -> None:
    with pytest.raises(UnknownNameError, match="pow2"):
        plan_jobs(replace(TINY, policies=("pow3",)))
    with pytest.raises(UnknownNameError, match="built-in scenario"):
        plan_jobs(replace(TINY, scenarios=("nope",)))


@pytest.mark.skipif(stats.LEARNED not in names("route"), reason="no learned router registered")
def test_a_bad_learned_policy_file_fails_before_any_run(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a policy")
    config = replace(TINY, policies=("pow2", stats.LEARNED), learned_policy=bad)
    with pytest.raises(ConfigError, match=r"bad\.npz"):
        plan_jobs(config)


@pytest.mark.skipif(stats.LEARNED not in names("route"), reason="no learned router registered")
def test_the_learned_router_is_compared_with_the_best_heuristic() -> None:
    config = replace(TINY, scenarios=("default",), policies=("pow2", stats.LEARNED), requests=300)
    (result,) = run_bench(config)
    assert result.best_heuristic == "pow2"
    learned, pow2 = result.summary[stats.LEARNED], result.summary["pow2"]
    assert result.learned_ratios == {
        "latency_mean": pytest.approx(learned["latency_mean_s"].mean / pow2["latency_mean_s"].mean),
        "energy_per_request": pytest.approx(
            learned["energy_per_request_j"].mean / pow2["energy_per_request_j"].mean
        ),
    }
    assert result.learned_policy is not None and result.learned_policy.is_file()


@pytest.mark.slow
def test_results_do_not_depend_on_the_number_of_workers() -> None:
    config = replace(TINY, scenarios=("throttling",), requests=400)
    serial = run_bench(config)
    parallel = run_bench(replace(config, workers=2))
    for a, b in zip(serial[0].runs, parallel[0].runs, strict=True):
        assert (a.policy, a.seed, a.metrics) == (b.policy, b.seed, b.metrics)
        assert a.trace is not None and b.trace is not None
        assert a.trace.windows == b.trace.windows


def test_the_told_reference_switches_the_profile_at_the_slowdown() -> None:
    from edgesched.bench.routing import ToldMinExpectedCompletion
    from edgesched.sim.runner import simulate
    from tests.builders import light_scenario, quiet_cluster

    scenario = light_scenario(400, 5.0, {"node": "fast", "at_fraction": 0.5, "factor": 6.0})
    cluster = quiet_cluster()
    told = simulate(cluster, scenario, ToldMinExpectedCompletion([(0.0, 0, 1.0)]))
    assert (told.node == 0).mean() > 0.9  # told nothing new: the fast node
    end = told.workload.times[-1]
    told = simulate(cluster, scenario, ToldMinExpectedCompletion([(end / 2, 0, 6.0)]))
    late = told.workload.times > end / 2 + 1.0
    assert (told.node[late] == 0).mean() < 0.1  # 60 ms there now: the slow node (40 ms) wins


def test_the_told_reference_stretches_the_interference_term_with_the_profile() -> None:
    from edgesched.bench.routing import ToldMinExpectedCompletion
    from edgesched.core.request import Request
    from edgesched.sim.runner import draw_workload, make_engine
    from tests.builders import toy_cluster, toy_scenario

    cluster, scenario = toy_cluster(), toy_scenario()
    told = ToldMinExpectedCompletion([(1.0, 0, 3.0)])
    engine = make_engine(cluster, scenario, draw_workload(cluster, scenario), told, 0)
    before = told.table(0)
    solo, alpha = before.solo.copy(), before.alpha
    util = np.array([0.5, 0.0, 0.0])[: solo.size]
    told.decide(Request(0, 0, 2.0, 1000, 1.0), engine.view)  # past the slowdown
    service, _ = told.estimate_parts(0, util, np.zeros(solo.size, int), engine.view)
    expected = np.where(before.nodes == 0, 3.0, 1.0) * solo * (1.0 + alpha * util)
    np.testing.assert_allclose(service, expected)
