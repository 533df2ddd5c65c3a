"""Routing policies: table tests over hand-filled views, the registry, imports and feedback."""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

import edgesched.policies
from edgesched.core.cluster import Cluster
from edgesched.core.request import Outcome, Request
from edgesched.core.view import ClusterState, ClusterView
from edgesched.errors import ConfigError, UnknownNameError
from edgesched.policies import make, names, register, registry, resolve
from edgesched.policies.route import RoutePolicy
from edgesched.policies.route_aware import MinExpectedCompletionRoute
from edgesched.policies.route_baselines import LeastLoadedRoute
from edgesched.sim.runner import Result
from tests.builders import CatalogBuilder, toy_cluster, toy_scenario

FAST, SLOW, CLOUD = 0, 1, 2
A, B = 0, 1
BYTES = 3072  # the toy models' raw input: 3 × 32 × 32


class World:
    """A real ClusterView over a ClusterState that the test fills by hand, as a world would."""

    def __init__(self, cluster: Cluster, models: Sequence[str] = ("a", "b")) -> None:
        self.cluster = cluster
        self.state = ClusterState(len(cluster.nodes), len(models), len(cluster.links))
        self.view = ClusterView(cluster, models, [BYTES] * len(models), self.state, lambda: 0.0)
        self.n_models = len(models)

    def set(self, field: str, values: Sequence[float]) -> World:
        buf = self.state.raw[field]
        for i, v in enumerate(values):
            buf[i] = v
        return self

    def set_model(self, field: str, node: int, model: int, value: float) -> World:
        self.state.raw[field][node * self.n_models + model] = value
        return self

    def policy(self, name: str, seed: int = 0) -> RoutePolicy:
        p = make("route", name)
        p.reset(self.view, np.random.default_rng(seed))
        return p


def req(model: int = A, slo_s: float = 0.1, rid: int = 0) -> Request:
    return Request(rid, model, 0.0, BYTES, slo_s)


def decisions(policy: RoutePolicy, world: World, n: int, model: int = A) -> list[int]:
    return [int(policy.decide(req(model, rid=i), world.view)) for i in range(n)]


@pytest.fixture
def world() -> World:
    return World(toy_cluster())


@pytest.fixture
def partial() -> World:
    """Model ``b`` is served on fast and cloud only; ``slow`` serves only ``a``."""
    return World(
        toy_cluster(
            nodes=[
                {"id": "fast", "device": "fast", "models": {"a": 2, "b": 1}, "link": "lan"},
                {"id": "slow", "device": "slow", "models": {"a": 1}, "link": "lan"},
                {"id": "cloud", "device": "cloud", "models": {"a": 4, "b": 4}, "link": "wan"},
            ]
        )
    )


def test_the_view_reads_what_the_world_writes(world: World) -> None:
    world.set("inflight", [3, 1, 2]).set_model("inflight_model", SLOW, B, 5)
    assert world.view.inflight.tolist() == [3, 1, 2]
    assert world.view.inflight_model[SLOW, B] == 5
    with pytest.raises(ValueError):
        world.view.inflight[0] = 7  # read-only for policies


# ----------------------------------------------------------------------------- least-loaded
@pytest.mark.parametrize(
    ("inflight", "expected"),
    [
        ([3, 1, 2], SLOW),
        ([0, 0, 0], FAST),
        ([5, 5, 1], CLOUD),
        ([2, 1, 1], SLOW),
        ([0, 9, 9], FAST),
    ],
)
def test_least_loaded_picks_the_fewest_in_flight(
    world: World, inflight: list[int], expected: int
) -> None:
    world.set("inflight", inflight)
    assert world.policy("least-loaded").decide(req(), world.view) == expected


def test_least_loaded_only_considers_nodes_serving_the_model(partial: World) -> None:
    partial.set("inflight", [4, 0, 3])
    policy = partial.policy("least-loaded")
    assert policy.decide(req(A), partial.view) == SLOW
    assert policy.decide(req(B), partial.view) == CLOUD


# ------------------------------------------------------------------------------------- pow2
def test_pow2_never_picks_the_more_loaded_of_two(world: World) -> None:
    """In flight 5, 0, 3: pairs {0,1}→1, {0,2}→2, {1,2}→1, so node 0 is never chosen and
    node 1 is chosen about twice as often as node 2."""
    world.set("inflight", [5, 0, 3])
    counts = Counter(decisions(world.policy("pow2"), world, 3000))
    assert counts[FAST] == 0
    assert counts[SLOW] / 3000 == pytest.approx(2 / 3, abs=0.05)
    assert counts[CLOUD] / 3000 == pytest.approx(1 / 3, abs=0.05)


def test_pow2_reads_the_live_state(world: World) -> None:
    policy = world.policy("pow2")
    world.set("inflight", [5, 0, 3])
    assert FAST not in decisions(policy, world, 500)
    world.set("inflight", [0, 5, 3])  # the same policy object sees the change
    assert SLOW not in decisions(policy, world, 500)


def test_pow2_only_picks_nodes_serving_the_model(partial: World) -> None:
    policy = partial.policy("pow2")
    picks = Counter(decisions(policy, partial, 1000, model=B))
    assert set(picks) == {FAST, CLOUD}
    partial.set("inflight", [0, 0, 7])
    assert set(decisions(policy, partial, 500, model=B)) == {FAST}


def b_only_in_cloud() -> World:
    """Model ``a`` on an edge node and in the cloud; model ``b`` only in the cloud; no links."""
    return World(
        toy_cluster(
            nodes=[
                {"id": "fast", "device": "fast", "models": {"a": 1}},
                {"id": "cloud", "device": "cloud", "models": {"a": 1, "b": 1}},
            ],
            links=[],
        )
    )


def test_pow2_with_a_single_candidate() -> None:
    world = b_only_in_cloud()
    assert set(decisions(world.policy("pow2"), world, 100, model=B)) == {1}


# ------------------------------------------------------------------- round-robin and random
def test_round_robin_cycles_per_model(partial: World) -> None:
    policy = partial.policy("round-robin")
    got = [policy.decide(req(m), partial.view) for m in (A, A, B, A, B, A, B, A)]
    assert got == [FAST, SLOW, FAST, CLOUD, CLOUD, FAST, FAST, SLOW]


def test_round_robin_ignores_load(world: World) -> None:
    world.set("inflight", [100, 0, 0])
    assert decisions(world.policy("round-robin"), world, 6) == [0, 1, 2, 0, 1, 2]


def test_random_covers_every_candidate_evenly(world: World) -> None:
    counts = Counter(decisions(world.policy("random", seed=3), world, 3000))
    assert set(counts) == {FAST, SLOW, CLOUD}
    for node in (FAST, SLOW, CLOUD):
        assert counts[node] / 3000 == pytest.approx(1 / 3, abs=0.05)


def test_random_only_picks_candidates_and_repeats_per_seed(partial: World) -> None:
    first = decisions(partial.policy("random", seed=9), partial, 400, model=B)
    assert set(first) == {FAST, CLOUD}
    assert decisions(partial.policy("random", seed=9), partial, 400, model=B) == first
    assert decisions(partial.policy("random", seed=10), partial, 400, model=B) != first


# ------------------------------------------------------------------ min-expected-completion
LAN = 0.0005 + BYTES / 125e6
WAN = 0.040 + BYTES / 2.5e6


def test_min_expected_completion_estimates_by_hand(world: World) -> None:
    policy = world.policy("min-expected-completion")
    assert isinstance(policy, MinExpectedCompletionRoute)
    est = policy.expected_completion(A, world.view)
    np.testing.assert_allclose(est, [LAN + 0.010, LAN + 0.040, WAN + 0.005])
    # fast: 2 instances, 5 requests of a in flight → 4 ahead, half each; 1.0 utilisation running
    world.set_model("inflight_model", FAST, A, 5).set("running_util", [1.0, 0.0, 0.0])
    world.set("link_active", [0, 3])  # 3 transfers on the shared WAN
    est = policy.expected_completion(A, world.view)
    service = 0.010 * (1 + 1.0 * 1.0)
    assert est[FAST] == pytest.approx(LAN + 4 / 2 * service + service)
    assert est[CLOUD] == pytest.approx(0.040 + 4 * BYTES / 2.5e6 + 0.005)


def test_min_expected_completion_prefers_the_faster_idle_node(world: World) -> None:
    policy = world.policy("min-expected-completion")
    assert policy.decide(req(A), world.view) == FAST
    assert policy.decide(req(B), world.view) == FAST


@pytest.mark.parametrize(
    ("queued_on_fast", "expected"),
    [(0, FAST), (2, FAST), (6, FAST), (8, SLOW), (50, SLOW)],
)
def test_min_expected_completion_moves_away_from_a_deep_queue(
    world: World, queued_on_fast: int, expected: int
) -> None:
    """Fast's estimate is LAN + max(q - 1, 0) / 2 × 10 ms + 10 ms; slow's is LAN + 40 ms."""
    world.set_model("inflight_model", FAST, A, queued_on_fast)
    assert world.policy("min-expected-completion").decide(req(A), world.view) == expected


def test_min_expected_completion_counts_interference(world: World) -> None:
    world.set("running_util", [4.0, 0.0, 0.0])  # service on fast: 10 ms × 5
    assert world.policy("min-expected-completion").decide(req(A), world.view) == SLOW


# ----------------------------------------------------------------------- edge- and cloud-only
@pytest.mark.parametrize("model", [A, B])
def test_edge_only_never_offloads(world: World, model: int) -> None:
    policy = world.policy("edge-only")
    for depth in (0, 10, 1000):
        world.set_model("inflight_model", FAST, model, depth)
        world.set_model("inflight_model", SLOW, model, depth)
        assert policy.decide(req(model), world.view) in (FAST, SLOW)


@pytest.mark.parametrize("model", [A, B])
def test_cloud_only_always_offloads(world: World, model: int) -> None:
    policy = world.policy("cloud-only")
    for depth in (0, 10, 1000):
        world.set_model("inflight_model", CLOUD, model, depth)
        assert policy.decide(req(model), world.view) == CLOUD


def test_edge_only_refuses_a_model_served_only_in_the_cloud() -> None:
    world = b_only_in_cloud()
    with pytest.raises(ConfigError, match="'b'"):
        world.policy("edge-only")


# --------------------------------------------------------------------------------- min-energy
@pytest.fixture
def eco_world() -> World:
    """``eco`` is slow and frugal (50 ms, 1 W dynamic → 0.05 J); ``hot`` is fast and hungry
    (10 ms, 90 W dynamic → 0.9 J). No links."""
    cat = (
        CatalogBuilder()
        .device("eco", idle_w=1.0, peak_w=2.0)
        .device("hot", idle_w=10.0, peak_w=100.0)
        .model("a")
        .profile("eco", "a", 0.050)
        .profile("hot", "a", 0.010)
        .build()
    )
    cluster = toy_cluster(
        cat,
        nodes=[
            {"id": "hot", "device": "hot", "models": {"a": 1}},
            {"id": "eco", "device": "eco", "models": {"a": 1}},
        ],
        links=[],
    )
    return World(cluster, models=("a",))


@pytest.mark.parametrize(
    ("slo_s", "expected"),
    [
        (0.100, 1),  # both meet the SLO: the frugal one
        (0.050, 1),  # eco exactly meets it
        (0.030, 0),  # only hot meets it
        (0.001, 0),  # nobody does: the fastest
    ],
)
def test_min_energy_picks_the_cheapest_node_that_meets_the_slo(
    eco_world: World, slo_s: float, expected: int
) -> None:
    policy = eco_world.policy("min-energy")
    assert policy.decide(req(A, slo_s=slo_s), eco_world.view) == expected
    assert (
        eco_world.policy("min-expected-completion").decide(req(A, slo_s=slo_s), eco_world.view) == 0
    )


def test_min_energy_leaves_a_node_whose_queue_breaks_the_slo(eco_world: World) -> None:
    eco_world.set_model("inflight_model", 1, A, 1)  # one ahead on eco: 100 ms expected
    assert eco_world.policy("min-energy").decide(req(A, slo_s=0.080), eco_world.view) == 0


def test_min_energy_on_the_toy_cluster(world: World) -> None:
    """Dynamic energy of ``a``: fast 8 W × 10 ms, slow 3 W × 40 ms, cloud 200 W × 0.2 × 5 ms."""
    policy = world.policy("min-energy")
    assert policy.decide(req(A, slo_s=0.1), world.view) == FAST
    world.set_model("inflight_model", FAST, A, 20)  # fast now far over the SLO
    assert policy.decide(req(A, slo_s=0.045), world.view) == SLOW


# ----------------------------------------------------------------------------------- registry
@pytest.mark.parametrize("name", names("route"))
def test_every_registry_entry_is_a_route_policy_named_by_its_key(name: str) -> None:
    cls = resolve("route", name)
    assert isinstance(cls, type) and issubclass(cls, RoutePolicy)
    assert cls.name == name
    assert isinstance(make("route", name), cls)


def test_the_registry_lists_the_documented_baselines() -> None:
    assert set(names("route")) >= {
        "random",
        "round-robin",
        "least-loaded",
        "pow2",
        "min-expected-completion",
        "min-energy",
        "edge-only",
        "cloud-only",
    }


def test_unknown_names_suggest_close_ones() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'pow2'") as err:
        resolve("route", "pow3")
    assert isinstance(err.value, KeyError)
    with pytest.raises(UnknownNameError, match="Did you mean 'least-loaded'"):
        make("route", "least_loaded")
    with pytest.raises(UnknownNameError, match="unknown"):
        resolve("no-such-point", "pow2")


def test_duplicate_registration_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    table = {point: dict(entries) for point, entries in registry._REGISTRY.items()}
    monkeypatch.setattr(registry, "_REGISTRY", table)
    with pytest.raises(ValueError, match="already registered"):
        register("route", "pow2", "edgesched.policies.route_baselines:PowerOfTwoRoute")
    register("route", "lazy", "edgesched.no_such_module:Nothing")  # nothing imported yet
    assert "lazy" in names("route")
    with pytest.raises(ValueError, match="already registered"):
        register("route", "lazy", "edgesched.no_such_module:Other")


def test_bad_policy_arguments_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="pow2"):
        make("route", "pow2", no_such_argument=1)


FORBIDDEN = ("edgesched.sim", "edgesched.serve", "torch", "ray", "stable_baselines3")


@pytest.mark.parametrize(
    "path",
    sorted(Path(edgesched.policies.__file__).parent.glob("*.py")),
    ids=lambda p: p.name,
)
def test_policies_do_not_import_the_worlds_or_heavy_dependencies(path: Path) -> None:
    imported: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
            imported.extend(f"{node.module}.{alias.name}" for alias in node.names)
    bad = [m for m in imported for f in FORBIDDEN if m == f or m.startswith(f + ".")]
    assert not bad, f"{path.name} imports {bad}"


# ------------------------------------------------------------------------------------ observe
class Recorder(LeastLoadedRoute):
    """Least-loaded routing that keeps every outcome it observes."""

    def reset(self, view: ClusterView, rng: np.random.Generator) -> None:
        super().reset(view, rng)
        self.outcomes: list[Outcome] = []
        self.view = view

    def observe(self, outcome: Outcome) -> None:
        assert outcome.finish_s == self.view.now()  # feedback arrives when the answer does
        self.outcomes.append(outcome)


def test_observe_is_opt_in() -> None:
    assert Recorder().wants_outcomes
    for name in names("route"):
        # only the learned router learns from outcomes, and only while online
        assert make("route", name).wants_outcomes == (name == "learned")
    assert not make("route", "learned", online=False).wants_outcomes


def test_observe_gets_one_consistent_outcome_per_request(
    run_sim: Callable[..., Result],
) -> None:
    policy = Recorder()
    r = run_sim(toy_cluster(), toy_scenario(requests=800), policy)
    outs = policy.outcomes
    assert sorted(o.request_id for o in outs) == list(range(800))
    finish = [o.finish_s for o in outs]
    assert finish == sorted(finish)  # delivered as answers come in
    is_cloud = [n.is_cloud for n in r.cluster.nodes]
    for o in outs:
        i = o.request_id
        assert o.model == r.workload.models[i]
        assert o.node == r.node[i]
        assert o.arrival_s == r.workload.times[i]
        assert o.start_s == r.start_s[i] and o.finish_s == r.finish_s[i]
        assert o.energy_j == r.energy_j[i] >= 0
        assert o.slo_s == r.workload.slo_s[i]
        assert o.offloaded == is_cloud[o.node]
        assert o.arrival_s <= o.start_s < o.finish_s
        assert o.latency_s == pytest.approx(o.finish_s - o.arrival_s)
        assert o.slo_met == (o.latency_s <= o.slo_s)
    assert sum(o.slo_met for o in outs) / 800 == pytest.approx(r.metrics.slo_attainment)
