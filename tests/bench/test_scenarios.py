"""The built-in scenarios load by name and validate against the default catalog."""

from __future__ import annotations

import numpy as np
import pytest

from edgesched.bench.scenarios import (
    builtin_names,
    builtin_paths,
    default_cluster_path,
    default_scenario_path,
)
from edgesched.core.cluster import Cluster
from edgesched.core.scenario import ScenarioConfig
from edgesched.errors import UnknownNameError
from edgesched.sim.runner import simulate

MID_RANGE = {"jetson-nano-4gb", "jetson-xavier-nx", "jetson-orin-nano-8gb", "raspberry-pi-5"}


def _load(name: str) -> tuple[Cluster, ScenarioConfig]:
    cluster, scenario = builtin_paths(name)
    return Cluster.load(cluster), ScenarioConfig.load_file(scenario)


@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_scenario_loads_and_its_models_and_nodes_exist(name: str) -> None:
    cluster, scenario = _load(name)
    assert set(scenario.models) <= set(cluster.model_names)
    assert {s.node for s in scenario.slowdowns} <= {n.id for n in cluster.nodes}
    assert 20_000 <= scenario.requests <= 200_000


def test_the_default_entry_is_the_default_files() -> None:
    assert builtin_names()[0] == "default"
    assert builtin_paths("default") == (default_cluster_path(), default_scenario_path())


def test_an_unknown_name_suggests_the_close_one() -> None:
    with pytest.raises(UnknownNameError, match="throttling"):
        builtin_paths("throttle")


def test_interference_heavy_packs_mid_range_boards_under_strong_interference() -> None:
    cluster, scenario = _load("interference-heavy")
    assert scenario.name == "interference-heavy"  # the name the shipped learned policy uses
    assert cluster.interference.kind == "parametric"
    assert cluster.interference.alpha_scale > 1.0
    edge = [n for n in cluster.nodes if not n.is_cloud]
    assert {n.device.name for n in edge} <= MID_RANGE
    assert any(n.is_cloud for n in cluster.nodes)
    for node in edge:
        assert 3 <= len(node.models) <= 5, node.id
        assert set(node.models.values()) <= {1, 2}, node.id
    assert len(scenario.models) >= 4


def test_throttling_slows_a_busy_edge_node_three_times_halfway() -> None:
    cluster, scenario = _load("throttling")
    assert scenario.name == "throttling"
    assert cluster.name == Cluster.load(default_cluster_path()).name
    (slow,) = scenario.slowdowns
    assert (slow.at_fraction, slow.factor) == (0.5, 3.0)
    node = next(n for n in cluster.nodes if n.id == slow.node)
    assert not node.is_cloud
    # "busy": before the slowdown, min-expected-completion sends it a large share of requests.
    short = scenario.model_copy(update={"requests": 3000, "slowdowns": []})
    result = simulate(cluster, short, "min-expected-completion")
    share = np.mean(result.node == node.index)
    assert share > 0.3
