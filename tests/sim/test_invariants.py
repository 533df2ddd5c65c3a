"""Invariants every run must keep, under every registered routing policy, plus exact cases.

Registry-wide: every request ends exactly once, at a valid node, after its transfer; energy is
at least idle power over the run; runs repeat exactly per seed; the live state drains to zero.
Exact cases: latency on an idle node, processor sharing, queueing, bad decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from edgesched.catalog import Catalog
from edgesched.core.cluster import MAX_INSTANCES, Cluster
from edgesched.core.request import Outcome, Request
from edgesched.core.scenario import ScenarioConfig
from edgesched.core.view import ClusterView
from edgesched.errors import ConfigError, EdgeschedError
from edgesched.policies import names, resolve
from edgesched.policies.route import RoutePolicy
from edgesched.sim import ENGINE_KIND, PolicyDecisionError, _engine, runner
from edgesched.sim.runner import Result, simulate
from tests.builders import CatalogBuilder, toy_cluster, toy_scenario

POLICIES = names("route")
REQUESTS = 1500
EPS = 1e-9


def instrumented(name: str) -> RoutePolicy:
    """The registered policy ``name``, keeping its view and every outcome it observes."""
    base = resolve("route", name)

    class Instrumented(base):  # type: ignore[valid-type,misc]
        def reset(self, view: ClusterView, rng: np.random.Generator) -> None:
            super().reset(view, rng)
            self.view = view
            self.outcomes: list[Outcome] = []

        def observe(self, outcome: Outcome) -> None:
            super().observe(outcome)  # a learning policy keeps learning
            self.outcomes.append(outcome)

    return Instrumented()


@dataclass
class Run:
    plain: Result
    watched: Result
    policy: RoutePolicy


@pytest.fixture(scope="module", params=POLICIES)
def run(request: pytest.FixtureRequest) -> Run:
    """The toy scenario under one policy: once by name, once instrumented (same seed)."""
    cluster, scenario = toy_cluster(), toy_scenario(requests=REQUESTS)
    policy = instrumented(request.param)
    return Run(
        simulate(cluster, scenario, request.param), simulate(cluster, scenario, policy), policy
    )


def transfer_floor(r: Result) -> np.ndarray:
    """Per request: RTT + bytes / bandwidth of the serving node's link (0 without a link)."""
    rtt = np.array([n.link.rtt_s if n.link else 0.0 for n in r.cluster.nodes])
    bw = np.array([n.link.bandwidth_bytes_per_s if n.link else np.inf for n in r.cluster.nodes])
    return rtt[r.node] + r.workload.input_bytes / bw[r.node]


def test_every_request_ends_exactly_once(run: Run) -> None:
    r, n = run.plain, REQUESTS
    wl = r.workload
    assert len(wl) == n == len(r.node) == len(r.finish_s)
    assert np.all(np.isfinite(r.finish_s)) and np.all(r.finish_s > 0)
    assert np.all((r.node >= 0) & (r.node < len(r.cluster.nodes)))
    for node, model in {(int(a), int(b)) for a, b in zip(r.node, wl.models, strict=True)}:
        assert wl.model_names[model] in r.cluster.nodes[node].models
    assert np.all(r.start_s >= wl.times + transfer_floor(r) - EPS)
    assert np.all(r.finish_s > r.start_s)
    solo = np.array(
        [
            [r.cluster.profile(nd, m).latency_s.value for m in wl.model_names]
            for nd in r.cluster.nodes
        ]
    )
    assert np.all(r.finish_s - r.start_s >= solo[r.node, wl.models] * (1 - EPS))
    # the policy heard of every request exactly once, with what the records say
    outs = run.policy.outcomes  # type: ignore[attr-defined]
    ids = np.array([o.request_id for o in outs])
    assert len(outs) == n and np.array_equal(np.bincount(ids, minlength=n), np.ones(n, int))
    w = run.watched
    for o in outs[:: max(1, n // 100)]:
        i = o.request_id
        assert (o.node, o.model) == (w.node[i], wl.models[i])
        assert (o.start_s, o.finish_s, o.energy_j) == (w.start_s[i], w.finish_s[i], w.energy_j[i])


def test_observing_does_not_change_decisions(run: Run) -> None:
    for field in ("node", "start_s", "finish_s", "energy_j"):
        assert np.array_equal(getattr(run.plain, field), getattr(run.watched, field)), field


def test_energy_is_at_least_idle_power_over_the_run(run: Run) -> None:
    r = run.plain
    makespan = float(r.finish_s.max() - r.workload.times[0])
    assert makespan == pytest.approx(r.metrics.duration_s)
    idle = np.array([n.device.idle_power_w.value for n in r.cluster.nodes])
    assert r.node_energy_j.sum() >= idle.sum() * makespan
    assert np.all(r.node_energy_j >= idle * makespan)
    assert np.all(r.energy_j >= 0)
    assert r.metrics.energy_total_j == pytest.approx(r.node_energy_j.sum())
    # the per-request shares add up to each node's dynamic energy: what is left is idle power
    # over one window common to every node, no shorter than the run
    shares = np.bincount(r.node, weights=r.energy_j, minlength=len(idle))
    window = (r.node_energy_j - shares) / idle
    np.testing.assert_allclose(window, window[0], rtol=1e-9)
    assert makespan * (1 - EPS) <= window[0] <= r.finish_s.max() * (1 + EPS)


def test_same_seed_same_records_other_seed_other_records(run: Run) -> None:
    cluster, scenario = toy_cluster(), toy_scenario(requests=REQUESTS)
    name = run.plain.metrics.policy
    again = simulate(cluster, scenario, name)
    other = simulate(cluster, scenario, name, seed=scenario.seed + 1)
    for field in ("node", "start_s", "finish_s", "energy_j", "node_energy_j"):
        assert np.array_equal(getattr(run.plain, field), getattr(again, field)), field
    assert not np.array_equal(run.plain.finish_s, other.finish_s)
    assert not np.array_equal(run.plain.workload.times, other.workload.times)


def test_the_pure_python_engine_gives_the_same_records(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled engine is a build of the pure-Python one: results must not differ."""
    if ENGINE_KIND != "compiled":
        pytest.skip("no compiled engine in this install")
    monkeypatch.setattr(runner, "Engine", _engine.Engine)
    pure = simulate(toy_cluster(), toy_scenario(requests=REQUESTS), run.plain.metrics.policy)
    for field in ("node", "start_s", "finish_s", "energy_j", "node_energy_j"):
        assert np.array_equal(getattr(run.plain, field), getattr(pure, field)), field


def test_live_state_drains_to_zero(run: Run) -> None:
    view: ClusterView = run.policy.view  # type: ignore[attr-defined]
    assert not np.any(view.inflight)
    assert not np.any(view.inflight_model)
    assert not np.any(view.running_model)
    assert not np.any(view.link_active)
    np.testing.assert_allclose(view.running_util, 0.0, atol=1e-12)
    assert np.all(np.isfinite(view.latency_ewma_s[np.unique(run.watched.node)]))


# ---------------------------------------------------------------------------- exact cases
@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (0, 0.0005 + 3072 / 125e6 + 0.010),  # fast, LAN
        (1, 0.0005 + 3072 / 125e6 + 0.040),  # slow, LAN
        (2, 0.040 + 3072 / 2.5e6 + 0.005),  # cloud, shared WAN
    ],
    ids=["fast", "slow", "cloud"],
)
def test_single_request_latency_is_transfer_plus_solo(
    node: int,
    expected: float,
    run_sim: Callable[..., Result],
    fixed_route: Callable[[int], RoutePolicy],
) -> None:
    scenario = toy_scenario(
        requests=1, load=None, rate_rps=10.0, models={"a": {"weight": 1, "slo_s": 1}}
    )
    r = run_sim(toy_cluster(), scenario, fixed_route(node))
    assert r.node[0] == node
    assert r.latency_s[0] == pytest.approx(expected, rel=1e-9)
    assert r.metrics.latency_mean_s == pytest.approx(expected, rel=1e-9)


SOLO = 0.020


def sharing_cluster(instances: int, *, alpha: float = 1.0, kind: str = "parametric") -> Cluster:
    """One node without a link; model ``a`` at utilisation 1 and a 20 ms solo latency."""
    cat: Catalog = (
        CatalogBuilder()
        .device("d", alpha=alpha, idle_w=2.0, peak_w=10.0)
        .model("a")
        .profile("d", "a", SOLO, utilisation=1.0)
        .build()
    )
    return toy_cluster(
        cat,
        nodes=[{"id": "n", "device": "d", "models": {"a": instances}}],
        links=[],
        interference={"kind": kind},
    )


@pytest.mark.parametrize("k", [2, 3])
def test_k_concurrent_requests_with_time_slicing_take_k_times_solo(
    k: int, run_sim: Callable[..., Result], trace_scenario: Callable[..., ScenarioConfig]
) -> None:
    r = run_sim(sharing_cluster(k), trace_scenario([(0.0, "a")] * k))
    np.testing.assert_allclose(r.start_s, 0.0)
    np.testing.assert_allclose(r.latency_s, k * SOLO, rtol=1e-9)
    # the node draws peak power (utilisation k >= 1) for k * SOLO, split k ways
    np.testing.assert_allclose(r.energy_j, (10.0 - 2.0) * SOLO, rtol=1e-9)


def test_staggered_requests_share_the_device(
    run_sim: Callable[..., Result], trace_scenario: Callable[..., ScenarioConfig]
) -> None:
    """A at 0 runs alone for SOLO/2; B joins and both run at half speed; A ends at 1.5 SOLO,
    when B has done SOLO/2 of work; B finishes the rest alone at 2 SOLO."""
    r = run_sim(sharing_cluster(2), trace_scenario([(0.0, "a"), (SOLO / 2, "a")]))
    np.testing.assert_allclose(r.finish_s, [1.5 * SOLO, 2.0 * SOLO], rtol=1e-9)


def test_no_interference_lets_instances_run_at_solo_speed(
    run_sim: Callable[..., Result], trace_scenario: Callable[..., ScenarioConfig]
) -> None:
    r = run_sim(sharing_cluster(3, kind="none"), trace_scenario([(0.0, "a")] * 3))
    np.testing.assert_allclose(r.latency_s, SOLO, rtol=1e-9)


def test_requests_beyond_the_instances_queue_in_arrival_order(
    run_sim: Callable[..., Result], trace_scenario: Callable[..., ScenarioConfig]
) -> None:
    r = run_sim(sharing_cluster(1), trace_scenario([(0.0, "a"), (0.001, "a"), (0.002, "a")]))
    np.testing.assert_allclose(r.start_s, [0.0, SOLO, 2 * SOLO], rtol=1e-9)
    np.testing.assert_allclose(r.finish_s, [SOLO, 2 * SOLO, 3 * SOLO], rtol=1e-9)


def test_a_node_at_the_instance_limit_runs_them_all(
    run_sim: Callable[..., Result], trace_scenario: Callable[..., ScenarioConfig]
) -> None:
    r = run_sim(
        sharing_cluster(MAX_INSTANCES, kind="none"), trace_scenario([(0.0, "a")] * MAX_INSTANCES)
    )
    np.testing.assert_allclose(r.latency_s, SOLO, rtol=1e-9)


def test_instances_beyond_what_the_engine_encodes_are_refused_or_served(
    trace_scenario: Callable[..., ScenarioConfig],
) -> None:
    """1100 instances of one model: refused when the cluster is loaded, or served correctly
    (the engine packs a node's running mix in 10 bits per model)."""
    try:
        cluster = sharing_cluster(1100, kind="none")
    except ConfigError:
        return
    r = simulate(cluster, trace_scenario([(0.0, "a")] * 1100), "round-robin")
    np.testing.assert_allclose(r.latency_s, SOLO, rtol=1e-9)


@pytest.mark.parametrize("bad", [-1, 3, 99, None, 1.5], ids=repr)
def test_a_decision_outside_the_cluster_raises(
    bad: object, fixed_route: Callable[[object], RoutePolicy]
) -> None:
    with pytest.raises(PolicyDecisionError, match="fixed") as err:
        simulate(toy_cluster(), toy_scenario(requests=20), fixed_route(bad))
    assert isinstance(err.value, EdgeschedError)


def test_a_decision_for_a_node_not_serving_the_model_raises(
    fixed_route: Callable[[int], RoutePolicy],
) -> None:
    cluster = toy_cluster(
        nodes=[
            {"id": "fast", "device": "fast", "models": {"a": 2, "b": 1}},
            {"id": "slow", "device": "slow", "models": {"a": 1}},
        ],
        links=[],
    )
    with pytest.raises(PolicyDecisionError, match=r"'b'.*'slow'|node 1"):
        simulate(cluster, toy_scenario(requests=50), fixed_route(1))


def test_energy_does_not_depend_on_when_the_clock_started(
    run_sim: Callable[..., Result], trace_scenario: Callable[..., ScenarioConfig]
) -> None:
    rows = [(i * 0.01, "a") for i in range(50)]
    models = {"a": {"weight": 1, "slo_s": 0.1}}
    now = run_sim(toy_cluster(), trace_scenario(rows, models))
    later = run_sim(toy_cluster(), trace_scenario([(t + 100.0, m) for t, m in rows], models))
    np.testing.assert_allclose(later.latency_s, now.latency_s, atol=1e-9)
    assert later.metrics.duration_s == pytest.approx(now.metrics.duration_s)
    assert later.metrics.energy_per_request_j == pytest.approx(now.metrics.energy_per_request_j)


def test_an_error_inside_a_policy_stops_the_run(
    fixed_route: Callable[[Callable[[Request], int]], RoutePolicy],
) -> None:
    def pick(request: Request) -> int:
        if request.id == 7:
            raise RuntimeError("policy bug at request 7")
        return 0

    with pytest.raises(RuntimeError, match="request 7"):
        simulate(toy_cluster(), toy_scenario(requests=50), fixed_route(pick))
