"""Interference models: the parametric slowdown formula and its knobs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgesched.catalog import Catalog
from edgesched.core.view import ClusterView
from edgesched.policies.route_baselines import LeastLoadedRoute
from edgesched.sim.interference import NoInterference, ParametricInterference
from edgesched.sim.runner import make_interference, simulate
from tests.builders import CatalogBuilder, toy_catalog, toy_cluster, toy_scenario


@pytest.fixture
def cat() -> Catalog:
    """Device ``d`` (alpha 0.5) running ``a`` (utilisation 0.6) and ``b`` (0.3);
    device ``t`` (alpha 1) running ``full`` (utilisation 1)."""
    return (
        CatalogBuilder()
        .device("d", alpha=0.5)
        .device("t", alpha=1.0)
        .model("a")
        .model("b")
        .model("full")
        .profile("d", "a", 0.010, utilisation=0.6)
        .profile("d", "b", 0.020, utilisation=0.3)
        .profile("d", "full", 0.020, utilisation=1.0)
        .profile("t", "a", 0.010, utilisation=0.6)
        .profile("t", "b", 0.010, utilisation=0.3)
        .profile("t", "full", 0.010, utilisation=1.0)
        .build()
    )


@pytest.mark.parametrize(
    ("co_runners", "expected"),
    [
        ({}, 1.0),
        ({"a": 0}, 1.0),  # a zero count is no co-runner
        ({"a": 1}, 1.0 + 0.5 * 0.6),
        ({"b": 1}, 1.0 + 0.5 * 0.3),
        ({"a": 1, "b": 2}, 1.0 + 0.5 * (0.6 + 2 * 0.3)),  # 1.6
        ({"a": 3, "b": 0, "full": 1}, 1.0 + 0.5 * (3 * 0.6 + 1.0)),  # 2.4
    ],
)
def test_parametric_slowdown_known_numbers(
    cat: Catalog, co_runners: dict[str, int], expected: float
) -> None:
    model = ParametricInterference(cat)
    assert model.slowdown("d", "a", co_runners) == pytest.approx(expected, rel=1e-12)
    # the victim's own utilisation does not enter the formula, only the co-runners'
    assert model.slowdown("d", "b", co_runners) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7])
def test_pure_time_slicing_gives_n_plus_one(cat: Catalog, n: int) -> None:
    """alpha = 1 and utilisation 1: n co-runners stretch a job n + 1 times."""
    assert ParametricInterference(cat).slowdown("t", "full", {"full": n}) == pytest.approx(n + 1)


def test_slowdown_is_monotone_in_co_runners(cat: Catalog) -> None:
    model = ParametricInterference(cat)
    grid = list(itertools.product(range(4), range(4)))
    value = {(i, j): model.slowdown("d", "a", {"a": i, "b": j}) for i, j in grid}
    for i, j in grid:
        assert value[i, j] >= 1.0
        if i + 1 < 4:
            assert value[i + 1, j] > value[i, j]
        if j + 1 < 4:
            assert value[i, j + 1] > value[i, j]


def test_no_interference_is_always_one(cat: Catalog) -> None:
    model = NoInterference()
    for co in ({}, {"a": 5}, {"a": 100, "b": 100, "full": 3}):
        assert model.slowdown("d", "a", co) == 1.0


@pytest.mark.parametrize("scale", [0.0, 0.5, 1.0, 2.0, 4.0])
def test_alpha_scale_multiplies_alpha(cat: Catalog, scale: float) -> None:
    model = ParametricInterference(cat, scale=scale)
    assert model.slowdown("d", "a", {"a": 1, "b": 2}) == pytest.approx(1.0 + scale * 0.5 * 1.2)


def test_negative_scale_is_refused(cat: Catalog) -> None:
    with pytest.raises(ValueError, match="scale"):
        ParametricInterference(cat, scale=-0.1)


def test_cluster_file_chooses_the_model_and_scale() -> None:
    none = make_interference(toy_cluster(interference={"kind": "none"}))
    assert isinstance(none, NoInterference)
    scaled = make_interference(toy_cluster(interference={"alpha_scale": 3.0}))
    assert isinstance(scaled, ParametricInterference)
    # toy "fast" device: alpha 1, utilisation of "a" is 1 → two co-runners give 1 + 3 * 2
    assert scaled.slowdown("fast", "a", {"a": 2}) == pytest.approx(7.0)
    default = make_interference(toy_cluster(toy_catalog(alpha=0.25)))
    assert default.slowdown("fast", "a", {"a": 2}) == pytest.approx(1.5)


class ViewKeeper(LeastLoadedRoute):
    """Least-loaded routing that keeps the view the simulator hands it."""

    def reset(self, view: ClusterView, rng: np.random.Generator) -> None:
        super().reset(view, rng)
        self.view = view


def test_policies_see_the_scaled_interference_coefficient() -> None:
    policy = ViewKeeper()
    simulate(toy_cluster(interference={"alpha_scale": 3.0}), toy_scenario(requests=10), policy)
    np.testing.assert_allclose(policy.view.alpha, [3.0, 3.0, 0.6])  # toy alphas 1, 1, 0.2


def test_policies_see_no_interference_when_there_is_none() -> None:
    policy = ViewKeeper()
    simulate(toy_cluster(interference={"kind": "none"}), toy_scenario(requests=10), policy)
    np.testing.assert_allclose(policy.view.alpha, 0.0)
