"""The linear utilisation power model: idle, peak, the cap and everything in between."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgesched.catalog import Catalog
from edgesched.core.view import ClusterState, ClusterView
from edgesched.sim.power import PowerModel
from tests.builders import CatalogBuilder, toy_cluster

IDLE, PEAK = 2.0, 10.0


@pytest.fixture
def cat() -> Catalog:
    """Device ``d`` (2 W idle, 10 W peak) running ``a`` (utilisation 0.25) and ``b`` (0.5)."""
    return (
        CatalogBuilder()
        .device("d", idle_w=IDLE, peak_w=PEAK)
        .device("flat", idle_w=5.0, peak_w=5.0)
        .model("a")
        .model("b")
        .profile("d", "a", 0.01, utilisation=0.25)
        .profile("d", "b", 0.01, utilisation=0.5)
        .profile("flat", "a", 0.01, utilisation=0.25)
        .build()
    )


def test_idle_with_nothing_running(cat: Catalog) -> None:
    model = PowerModel(cat)
    assert model.idle("d") == IDLE
    assert model.power("d", {}) == IDLE
    assert model.power("d", {"a": 0}) == IDLE


@pytest.mark.parametrize(
    ("running", "watts"),
    [
        ({"a": 1}, IDLE + (PEAK - IDLE) * 0.25),  # 4 W
        ({"a": 2}, IDLE + (PEAK - IDLE) * 0.50),  # 6 W
        ({"a": 3}, IDLE + (PEAK - IDLE) * 0.75),  # 8 W
        ({"a": 1, "b": 1}, IDLE + (PEAK - IDLE) * 0.75),
    ],
)
def test_linear_between_idle_and_peak(cat: Catalog, running: dict[str, int], watts: float) -> None:
    assert PowerModel(cat).power("d", running) == pytest.approx(watts)


@pytest.mark.parametrize("running", [{"a": 4}, {"b": 2}, {"a": 2, "b": 1}])
def test_peak_at_saturation(cat: Catalog, running: dict[str, int]) -> None:
    assert PowerModel(cat).power("d", running) == pytest.approx(PEAK)


@pytest.mark.parametrize("running", [{"a": 5}, {"a": 40}, {"a": 4, "b": 4}])
def test_capped_at_peak(cat: Catalog, running: dict[str, int]) -> None:
    assert PowerModel(cat).power("d", running) == pytest.approx(PEAK)


def test_monotone_in_running_instances(cat: Catalog) -> None:
    model = PowerModel(cat)
    watts = [model.power("d", {"a": k}) for k in range(8)]
    assert all(b >= a for a, b in itertools.pairwise(watts))
    assert watts[0] == IDLE and watts[-1] == PEAK


def test_flat_device_draws_the_same_power_busy_or_idle(cat: Catalog) -> None:
    assert PowerModel(cat).power("flat", {"a": 3}) == 5.0


def test_view_power_matches_the_model() -> None:
    """``ClusterView.power_w`` reads the same linear model off the live utilisation."""
    cluster = toy_cluster()
    state = ClusterState(len(cluster.nodes), 2, len(cluster.links))
    view = ClusterView(cluster, ("a", "b"), (1000, 1000), state, lambda: 0.0)
    model = PowerModel(cluster.catalog)
    running = [{"a": 1}, {}, {"a": 2, "b": 1}]  # fast: util 1; slow: idle; cloud: 0.8
    for n, mix in enumerate(running):
        util = sum(
            k * cluster.profile(cluster.nodes[n], m).utilisation.value for m, k in mix.items()
        )
        state.raw["running_util"][n] = util
    expected = [
        model.power(node.device.name, mix) for node, mix in zip(cluster.nodes, running, strict=True)
    ]
    np.testing.assert_allclose(view.power_w(), expected)
    assert expected == pytest.approx([10.0, 1.0, 50.0 + 200.0 * 0.8])
