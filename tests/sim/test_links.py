"""Links: processor-sharing bandwidth on shared links, fixed delay on a node's own port."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from edgesched.catalog import Catalog
from edgesched.core.cluster import Cluster
from edgesched.core.scenario import ScenarioConfig
from edgesched.core.view import ClusterView
from edgesched.policies.route_baselines import LeastLoadedRoute
from edgesched.sim.links import SharedLink
from edgesched.sim.runner import Result
from tests.builders import CatalogBuilder, toy_cluster, toy_scenario

BW = 100.0  # bytes per second, for the unit tests


def drain(link: SharedLink) -> list[tuple[float, Any]]:
    """Run the link to empty, as the simulator does: pop at each next finish."""
    out = []
    while (at := link.next_finish()) is not None:
        out.extend((at, p) for p in link.pop_done(at))
    return out


def test_one_transfer_takes_bytes_over_bandwidth() -> None:
    link = SharedLink(BW)
    link.add(2.0, 1000, "x")
    assert len(link) == 1
    assert link.next_finish() == pytest.approx(2.0 + 1000 / BW)
    assert link.pop_done(12.0) == ["x"]
    assert len(link) == 0
    assert link.next_finish() is None


def test_two_equal_transfers_started_together_both_take_twice_as_long() -> None:
    link = SharedLink(BW)
    link.add(0.0, 1000, "a")
    link.add(0.0, 1000, "b")
    assert link.next_finish() == pytest.approx(2 * 1000 / BW)
    assert link.pop_done(20.0) == ["a", "b"]
    assert link.next_finish() is None


def test_a_transfer_added_midway() -> None:
    """A (1000 B) starts at 0; B (1000 B) joins at 5 s, when A has 500 B left.

    Both then get 50 B/s: A's 500 B take 10 s (A done at 15 s), by when B has 500 B; alone at
    100 B/s B's remaining 500 B take 5 s (B done at 20 s).
    """
    link = SharedLink(BW)
    link.add(0.0, 1000, "A")
    assert link.next_finish() == pytest.approx(10.0)
    link.add(5.0, 1000, "B")
    assert link.next_finish() == pytest.approx(15.0)
    assert link.pop_done(15.0) == ["A"]
    assert link.next_finish() == pytest.approx(20.0)
    assert link.pop_done(20.0) == ["B"]


def test_pop_done_returns_payloads_in_finishing_order() -> None:
    """300, 100 and 200 B at once: 100 B done at 3 s, 200 B at 5 s, 300 B at 6 s."""
    link = SharedLink(BW)
    for size, name in ((300, "big"), (100, "small"), (200, "mid")):
        link.add(0.0, size, name)
    got = drain(link)
    assert [p for _, p in got] == ["small", "mid", "big"]
    assert [t for t, _ in got] == pytest.approx([3.0, 5.0, 6.0])


def test_pop_done_returns_every_transfer_complete_by_then() -> None:
    link = SharedLink(BW)
    link.add(0.0, 100, "first")
    link.add(0.0, 100, "second")
    link.add(0.0, 400, "third")
    # all three share: the two 100 B transfers finish together at 3 s
    assert link.next_finish() == pytest.approx(3.0)
    assert link.pop_done(3.0) == ["first", "second"]
    assert link.next_finish() == pytest.approx(6.0)


def test_bandwidth_must_be_positive() -> None:
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="bandwidth"):
            SharedLink(bad)


def test_pop_done_before_any_finish_returns_nothing() -> None:
    link = SharedLink(BW)
    link.add(0.0, 1000, "x")
    assert link.pop_done(1.0) == []  # 100 of 1000 bytes sent
    assert link.next_finish() == pytest.approx(10.0)


# ------------------------------------------------------------------ end to end via simulate
SOLO = 0.010
RTT = 0.01
LINK_BW = 1e6


@pytest.fixture
def cat() -> Catalog:
    """Device ``d`` without interference, so compute time is always the solo latency."""
    return CatalogBuilder().device("d", alpha=0.0).model("a").profile("d", "a", SOLO).build()


def one_node(cat: Catalog, *, shared: bool, instances: int = 2) -> Cluster:
    return toy_cluster(
        cat,
        nodes=[{"id": "n", "device": "d", "models": {"a": instances}, "link": "l"}],
        links=[{"id": "l", "bandwidth_bytes_per_s": LINK_BW, "rtt_s": RTT, "shared": shared}],
    )


@pytest.mark.parametrize("shared", [False, True])
def test_single_request_arrives_after_rtt_plus_bytes_over_bandwidth(
    cat: Catalog,
    shared: bool,
    run_sim: Callable[..., Result],
    trace_scenario: Callable[..., ScenarioConfig],
) -> None:
    scenario = trace_scenario([(0.25, "a", "", 5000)])
    r = run_sim(one_node(cat, shared=shared), scenario)
    transfer = RTT + 5000 / LINK_BW
    assert r.start_s[0] - r.workload.times[0] == pytest.approx(transfer, rel=1e-9)
    assert r.finish_s[0] - r.start_s[0] == pytest.approx(SOLO, rel=1e-9)


def test_single_poisson_request_on_a_private_port(
    cat: Catalog, run_sim: Callable[..., Result]
) -> None:
    scenario = toy_scenario(
        requests=1,
        load=None,
        rate_rps=3.0,
        models={"a": {"weight": 1, "slo_s": 1, "input_bytes": 2500}},
    )
    r = run_sim(one_node(cat, shared=False), scenario)
    assert r.workload.times[0] > 0
    assert r.start_s[0] - r.workload.times[0] == pytest.approx(RTT + 2500 / LINK_BW, rel=1e-9)


@pytest.mark.parametrize(
    ("shared", "waits"),
    [
        (False, [RTT + 0.010, RTT + 0.010]),  # each transfer has the whole port
        (True, [RTT + 0.020, RTT + 0.020]),  # two 10 kB transfers split 1 MB/s
    ],
)
def test_concurrent_transfers_on_a_shared_link_slow_each_other(
    cat: Catalog,
    shared: bool,
    waits: list[float],
    run_sim: Callable[..., Result],
    trace_scenario: Callable[..., ScenarioConfig],
) -> None:
    scenario = trace_scenario([(0.0, "a", "", 10_000), (0.0, "a", "", 10_000)])
    r = run_sim(one_node(cat, shared=shared), scenario)
    np.testing.assert_allclose(r.start_s - r.workload.times, waits, rtol=1e-9)
    np.testing.assert_allclose(r.finish_s - r.start_s, [SOLO, SOLO], rtol=1e-9)


def test_staggered_transfers_on_a_shared_link(
    cat: Catalog, run_sim: Callable[..., Result], trace_scenario: Callable[..., ScenarioConfig]
) -> None:
    """A (10 kB) at 0 s, B (10 kB) at 5 ms on a shared 1 MB/s link.

    A sends 5 kB alone, then both get 0.5 MB/s: A is done at 15 ms, B has 5 kB left and sends it
    alone by 20 ms. Each then pays the RTT.
    """
    scenario = trace_scenario([(0.0, "a", "", 10_000), (0.005, "a", "", 10_000)])
    r = run_sim(one_node(cat, shared=True), scenario)
    np.testing.assert_allclose(r.start_s, [0.015 + RTT, 0.020 + RTT], rtol=1e-9)


class ViewKeeper(LeastLoadedRoute):
    """Least-loaded routing that keeps the view the simulator hands it."""

    def reset(self, view: ClusterView, rng: np.random.Generator) -> None:
        super().reset(view, rng)
        self.view = view


def test_the_view_knows_each_models_transfer_time(
    run_sim: Callable[..., Result], trace_scenario: Callable[..., ScenarioConfig]
) -> None:
    models = {
        "a": {"weight": 1, "slo_s": 1, "input_bytes": 1000},
        "b": {"weight": 1, "slo_s": 1, "input_bytes": 200_000},
    }
    policy = ViewKeeper()
    run_sim(toy_cluster(), trace_scenario([(0.0, "b"), (0.01, "a")], models), policy)
    np.testing.assert_allclose(
        policy.view.send_s,
        [[1000 / 125e6, 200_000 / 125e6], [1000 / 125e6, 200_000 / 125e6], [1000 / 2.5e6, 0.08]],
    )


def test_the_view_knows_the_transfer_time_of_a_model_first_requested_late(
    run_sim: Callable[..., Result], trace_scenario: Callable[..., ScenarioConfig]
) -> None:
    models = {
        "a": {"weight": 1, "slo_s": 1, "input_bytes": 1000},
        "b": {"weight": 1, "slo_s": 1, "input_bytes": 200_000},
    }
    rows = [(i * 0.01, "a") for i in range(4096)] + [(41.0, "b")]
    policy = ViewKeeper()
    run_sim(toy_cluster(), trace_scenario(rows, models), policy)
    np.testing.assert_allclose(policy.view.send_s[:, 1], [200_000 / 125e6] * 2 + [0.08])
