"""Capacity estimates on clusters small enough to work out by hand, and what load means."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from edgesched.catalog import Catalog
from edgesched.core.cluster import Cluster
from edgesched.errors import ConfigError
from edgesched.sim.capacity import capacity_rps
from edgesched.sim.runner import Result, resolve_rate
from tests.builders import CatalogBuilder, toy_cluster, toy_scenario

SOLO_A, SOLO_B = 0.020, 0.050  # seconds


@pytest.fixture
def cat() -> Catalog:
    """Device ``d`` (alpha 0.5) serving ``a`` (20 ms, utilisation 1) and ``b`` (50 ms, 0.5)."""
    return (
        CatalogBuilder()
        .device("d", alpha=0.5)
        .model("a")
        .model("b")
        .model("unused")
        .profile("d", "a", SOLO_A, utilisation=1.0)
        .profile("d", "b", SOLO_B, utilisation=0.5)
        .profile("d", "unused", 0.01)
        .build()
    )


def cluster(
    cat: Catalog,
    nodes: list[dict[str, Any]],
    links: list[dict[str, Any]] | None = None,
    interference: str = "parametric",
    alpha_scale: float = 1.0,
) -> Cluster:
    for i, node in enumerate(nodes):
        node.setdefault("id", f"n{i}")
        node.setdefault("device", "d")
    return toy_cluster(
        cat,
        nodes=nodes,
        links=links or [],
        interference={"kind": interference, "alpha_scale": alpha_scale},
    )


@pytest.mark.parametrize("k", [1, 2, 4, 7])
def test_k_instances_without_interference_serve_k_over_solo(cat: Catalog, k: int) -> None:
    c = cluster(cat, [{"models": {"a": k}}], interference="none")
    assert capacity_rps(c, {"a": 1.0}, {"a": 1000}) == pytest.approx(k / SOLO_A)


@pytest.mark.parametrize(("k", "scale"), [(1, 1.0), (3, 1.0), (3, 0.0), (3, 2.0)])
def test_interference_at_full_occupancy(cat: Catalog, k: int, scale: float) -> None:
    """k instances of ``a`` running together each slow to 1 + 0.5 × scale × (k - 1)."""
    c = cluster(cat, [{"models": {"a": k}}], alpha_scale=scale)
    expected = k / (SOLO_A * (1 + 0.5 * scale * (k - 1)))
    assert capacity_rps(c, {"a": 1.0}, {"a": 1000}) == pytest.approx(expected)


def test_nodes_add_up(cat: Catalog) -> None:
    c = cluster(cat, [{"models": {"a": 1}}, {"models": {"a": 2}}], interference="none")
    assert capacity_rps(c, {"a": 1.0}, {"a": 1000}) == pytest.approx(3 / SOLO_A)


@pytest.mark.parametrize(
    ("mix", "expected"),
    [
        ({"a": 1, "b": 1}, 80.0),  # a's node bounds it: 0.5 λ ≤ 50 (a), 0.5 λ ≤ 40 (b) → 80
        ({"a": 3, "b": 1}, 200 / 3),  # 0.75 λ ≤ 50 → 66.7; 0.25 λ ≤ 40 → 160
        ({"b": 1}, 40.0),  # only b: two instances of 50 ms
    ],
)
def test_the_mix_decides_which_node_binds(
    cat: Catalog, mix: dict[str, float], expected: float
) -> None:
    c = cluster(cat, [{"models": {"a": 1}}, {"models": {"b": 2}}], interference="none")
    assert capacity_rps(c, mix, {"a": 1000, "b": 1000}) == pytest.approx(expected)


def test_a_link_can_be_the_bottleneck(cat: Catalog) -> None:
    """100 kB/s carries 100 requests of 1 kB per second; compute alone would serve 400."""
    lan = {"id": "l", "bandwidth_bytes_per_s": 1e5, "rtt_s": 0.01, "shared": False}
    one = cluster(cat, [{"models": {"a": 8}, "link": "l"}], [lan], interference="none")
    assert capacity_rps(one, {"a": 1}, {"a": 1000}) == pytest.approx(100.0)
    assert capacity_rps(one, {"a": 1}, {"a": 100}) == pytest.approx(8 / SOLO_A)
    # a private port per node: two nodes carry twice as much
    two = cluster(
        cat,
        [{"models": {"a": 8}, "link": "l"}, {"models": {"a": 8}, "link": "l"}],
        [lan],
        interference="none",
    )
    assert capacity_rps(two, {"a": 1}, {"a": 1000}) == pytest.approx(200.0)
    # a shared link is one pipe for everyone behind it
    wan = {**lan, "shared": True}
    shared = cluster(
        cat,
        [{"models": {"a": 8}, "link": "l"}, {"models": {"a": 8}, "link": "l"}],
        [wan],
        interference="none",
    )
    assert capacity_rps(shared, {"a": 1}, {"a": 1000}) == pytest.approx(100.0)


def test_a_model_deployed_nowhere_is_a_config_error(cat: Catalog) -> None:
    c = cluster(cat, [{"models": {"a": 1}}])
    with pytest.raises(ConfigError, match="'b'"):
        capacity_rps(c, {"a": 1, "b": 1}, {"a": 1000, "b": 1000})


def test_simulating_a_model_the_cluster_lacks_is_a_config_error(
    run_sim: Callable[..., Result],
) -> None:
    cl = toy_cluster(nodes=[{"id": "fast", "device": "fast", "models": {"a": 1}}], links=[])
    with pytest.raises(ConfigError, match=r"\['b'\]"):
        run_sim(cl, toy_scenario())


def test_load_is_a_share_of_capacity() -> None:
    cl = toy_cluster()
    scenario = toy_scenario(load=0.5)
    cap = capacity_rps(cl, {"a": 3, "b": 1}, {"a": 3072, "b": 3072})
    assert cap > 0
    assert resolve_rate(cl, scenario) == pytest.approx(0.5 * cap)
    assert resolve_rate(cl, toy_scenario(load=None, rate_rps=12.5)) == 12.5


@pytest.mark.parametrize(("load", "bounded"), [(0.5, True), (3.0, False)])
def test_queues_stay_bounded_below_capacity_only(
    load: float, bounded: bool, run_sim: Callable[..., Result]
) -> None:
    r = run_sim(toy_cluster(), toy_scenario(requests=3000, load=load), "min-expected-completion")
    lat, duration = r.latency_s, r.metrics.duration_s
    early, late = lat[:300].mean(), lat[-300:].mean()
    if bounded:
        assert r.metrics.latency_p99_s < 0.05 * duration
        assert late < 2 * early
        assert r.metrics.throughput_rps == pytest.approx(r.workload.mean_rate_rps, rel=0.1)
    else:
        assert r.metrics.latency_p99_s > 0.3 * duration
        assert late > 4 * early  # the queue keeps growing
        assert r.metrics.throughput_rps < 0.6 * r.workload.mean_rate_rps
