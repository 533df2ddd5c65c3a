"""The planned cluster file loads and simulates as is, and --verify agrees with the plan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgesched.catalog.measured import measured_profiles
from edgesched.core.cluster import Cluster
from edgesched.plan.output import plan_dict, write_cluster
from edgesched.plan.planner import Plan, PlanRequest, make_plan
from edgesched.plan.verify import verify
from edgesched.sim.runner import Result
from tests.plan.builders import scenario

MIX = scenario(
    {
        "mobilenet_v2": {"weight": 3, "slo_s": 0.08, "input_bytes": 25000},
        "resnet18": {"weight": 1, "slo_s": 0.1, "input_bytes": 25000},
    },
    rate_rps=300.0,
    seed=3,
)
EDGE = ["jetson-nano-4gb", "raspberry-pi-5", "x86-mini-pc"]


def plan(**kw: Any) -> Plan:
    args: dict[str, Any] = {
        "scenario": MIX,
        "budget_usd": 1000.0,
        "max_nodes": 6,
        "devices": EDGE,
        "time_limit_s": 5.0,
        **kw,
    }
    return make_plan(PlanRequest(**args))


@pytest.fixture(scope="module")
def edge_plan() -> Plan:
    return plan()


def test_cluster_file_loads_and_simulates(
    edge_plan: Plan, tmp_path: Path, run_sim: Callable[..., Result]
) -> None:
    out = tmp_path / "cluster.yaml"
    write_cluster(edge_plan, out)
    cluster = Cluster.load(out)
    cf = edge_plan.configs
    assert len(cluster.nodes) == edge_plan.figures.nodes
    planned = sorted(
        (cf.kinds[cf.kind[c]], tuple(sorted(cf.describe(c).items())))
        for c in range(len(cf))
        for _ in range(int(edge_plan.figures.x[c]))
    )
    built = sorted((n.device.name, tuple(sorted(n.models.items()))) for n in cluster.nodes)
    assert built == planned
    assert {n.link.id for n in cluster.nodes if n.link} == {"lan"}
    result = run_sim(cluster, MIX, "min-expected-completion")
    assert result.metrics.requests == MIX.requests


def test_plan_beats_or_matches_the_baselines_at_their_cost(edge_plan: Plan) -> None:
    assert edge_plan.baselines, "baselines are computed by default"
    for baseline in edge_plan.baselines:
        if baseline.figures is None:
            continue
        matched = baseline.matched
        assert matched is not None
        assert matched.cost_usd <= baseline.figures.cost_usd + 1e-6
        assert matched.efficiency >= baseline.figures.efficiency * (1 - 1e-9)
    homogeneous = edge_plan.baselines[1]
    assert homogeneous.device in EDGE


def test_json_has_the_plan_the_solver_and_the_baselines(edge_plan: Plan, tmp_path: Path) -> None:
    data = plan_dict(edge_plan, tmp_path / "c.yaml")
    assert data["solver"]["status"] in {"optimal", "time limit"}
    assert data["solver"]["gap"] >= 0
    figures = data["plan"]
    assert figures["throughput_rps"] == pytest.approx(300.0)
    assert figures["efficiency_inferences_per_j"] == pytest.approx(300.0 / figures["power_w"])
    assert set(figures["models"]) == {"mobilenet_v2", "resnet18"}
    assert sum(figures["devices"].values()) == figures["nodes"]
    assert set(data["baselines"]) == {"greedy", "homogeneous"}


def test_verify_agrees_with_the_prediction(edge_plan: Plan, tmp_path: Path) -> None:
    out = tmp_path / "cluster.yaml"
    write_cluster(edge_plan, out)
    check = verify(edge_plan, out, requests=20_000)
    ratios = check.ratios
    assert ratios["throughput_rps"] == pytest.approx(1.0, abs=0.05)
    assert ratios["energy_per_request_j"] == pytest.approx(1.0, abs=0.10)
    assert 0 < check.simulated["slo_attainment"] <= 1


def test_cloud_nodes_sit_on_the_shared_wan(tmp_path: Path) -> None:
    cloud = plan(devices=["cloud-t4"], budget_usd=20_000.0, baselines=False)
    out = tmp_path / "cloud.yaml"
    write_cluster(cloud, out)
    cluster = Cluster.load(out)
    assert {n.link.id for n in cluster.nodes if n.link} == {"wan"}
    assert all(link.shared for link in cluster.links)


def test_measured_profiles_calibrate_the_plan_and_travel_with_the_cluster(tmp_path: Path) -> None:
    shipped = measured_profiles("cloud-h100")[0]
    measured = plan(
        devices=["cloud-h100"], budget_usd=50_000.0, baselines=False, profiles=[shipped.path]
    )
    solo = shipped.profile.solo_latency("resnet18", 1)
    assert measured.site.catalog.profile("cloud-h100", "resnet18").latency_s.value == solo
    out = tmp_path / "h100.yaml"
    write_cluster(measured, out)
    cluster = Cluster.load(out)
    assert cluster.measured and cluster.measured[0].device == "cloud-h100"
