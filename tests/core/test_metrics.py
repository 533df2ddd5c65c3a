"""Metrics over per-request columns, and the per-request CSV records."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edgesched.core.metrics import Metrics, compute_metrics
from edgesched.sim.runner import Result
from tests.builders import toy_cluster, toy_scenario

HEADER = "id,model,node,arrival_s,start_s,finish_s,latency_s,slo_s,slo_met,energy_j,offloaded"


@pytest.fixture
def hundred() -> Metrics:
    """Latencies 1, 2, …, 100 ms; SLO 50 ms; the first 80 are model a, the last 20 model b;
    every fourth request offloaded; 10 s from first arrival to last answer; 200 J in all."""
    latency = np.arange(1, 101) / 1000.0
    models = np.array([0] * 80 + [1] * 20)
    offloaded = np.arange(100) % 4 == 0
    return compute_metrics(
        "hand", latency, np.full(100, 0.050), models, ("a", "b", "c"), offloaded, 5.0, 15.0, 200.0
    )


def test_latency_statistics(hundred: Metrics) -> None:
    assert hundred.policy == "hand"
    assert hundred.requests == 100
    assert hundred.latency_mean_s == pytest.approx(0.0505)
    # linear interpolation between order statistics: rank p/100 × 99
    assert hundred.latency_p50_s == pytest.approx(0.0505)
    assert hundred.latency_p95_s == pytest.approx(0.09505)
    assert hundred.latency_p99_s == pytest.approx(0.09901)


def test_rates_energy_and_offload(hundred: Metrics) -> None:
    assert hundred.slo_attainment == pytest.approx(0.50)  # 1 … 50 ms, 50 ms itself included
    assert hundred.duration_s == pytest.approx(10.0)
    assert hundred.throughput_rps == pytest.approx(10.0)
    assert hundred.goodput_rps == pytest.approx(5.0)
    assert hundred.energy_total_j == pytest.approx(200.0)
    assert hundred.energy_per_request_j == pytest.approx(2.0)
    assert hundred.offload_rate == pytest.approx(0.25)


def test_per_model_breakdown(hundred: Metrics) -> None:
    assert set(hundred.per_model) == {"a", "b"}  # c had no requests
    a, b = hundred.per_model["a"], hundred.per_model["b"]
    assert a["requests"] == 80 and b["requests"] == 20
    assert a["latency_mean_s"] == pytest.approx(0.0405)
    assert b["latency_mean_s"] == pytest.approx(0.0905)
    assert a["latency_p99_s"] == pytest.approx(np.percentile(np.arange(1, 81), 99) / 1000)
    assert a["slo_attainment"] == pytest.approx(50 / 80)
    assert b["slo_attainment"] == 0.0


def test_per_request_slos_are_respected() -> None:
    latency = np.array([0.1, 0.2, 0.3, 0.4])
    slo = np.array([0.05, 0.2, 1.0, 0.39])
    m = compute_metrics("x", latency, slo, np.zeros(4, int), ("a",), np.zeros(4, bool), 0, 2, 0)
    assert m.slo_attainment == pytest.approx(0.5)
    assert m.goodput_rps == pytest.approx(1.0)
    assert m.offload_rate == 0.0
    assert m.energy_per_request_j == 0.0


def test_single_request_and_zero_duration() -> None:
    m = compute_metrics(
        "x", np.array([0.25]), np.array([1.0]), np.array([0]), ("a",), np.array([True]), 3, 3, 1
    )
    assert m.latency_p50_s == m.latency_p99_s == m.latency_mean_s == 0.25
    assert m.offload_rate == 1.0
    assert np.isfinite(m.throughput_rps) and m.throughput_rps > 0


def test_no_requests_is_an_error() -> None:
    empty = np.array([])
    with pytest.raises(ValueError, match="no requests"):
        compute_metrics("x", empty, empty, empty.astype(int), ("a",), empty.astype(bool), 0, 1, 0)


def test_metrics_are_json_ready(hundred: Metrics) -> None:
    data = json.loads(json.dumps(hundred.to_dict()))
    assert data["latency_p99_s"] == pytest.approx(0.09901)
    assert data["per_model"]["b"]["requests"] == 20


# ------------------------------------------------------------------------------ via a run
@pytest.fixture
def result(run_sim: Callable[..., Result]) -> Result:
    return run_sim(toy_cluster(), toy_scenario(requests=400), "min-expected-completion")


def test_run_metrics_agree_with_the_records(result: Result) -> None:
    m, wl = result.metrics, result.workload
    lat = result.finish_s - wl.times
    assert m.requests == 400
    assert m.latency_mean_s == pytest.approx(lat.mean())
    assert m.latency_p99_s == pytest.approx(np.percentile(lat, 99))
    assert m.slo_attainment == pytest.approx(np.mean(lat <= wl.slo_s))
    cloud = np.array([n.is_cloud for n in result.cluster.nodes])
    assert m.offload_rate == pytest.approx(cloud[result.node].mean())
    assert m.duration_s == pytest.approx(result.finish_s.max() - wl.times[0])
    assert m.energy_total_j == pytest.approx(result.node_energy_j.sum())
    assert sum(pm["requests"] for pm in m.per_model.values()) == 400


def test_write_records_has_one_row_per_request(result: Result, tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    result.write_records(path)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [dict(zip(header, row, strict=True)) for row in reader]
    assert ",".join(header) == HEADER
    assert len(rows) == 400
    assert [int(r["id"]) for r in rows] == list(range(400))
    ids = [n.id for n in result.cluster.nodes]
    cloud = {n.id: n.is_cloud for n in result.cluster.nodes}
    wl = result.workload
    for i, row in enumerate(rows):
        assert row["model"] == wl.model_names[wl.models[i]]
        assert row["node"] == ids[result.node[i]]
        assert float(row["arrival_s"]) == pytest.approx(wl.times[i], abs=1e-9)
        assert float(row["start_s"]) == pytest.approx(result.start_s[i], abs=1e-9)
        assert float(row["finish_s"]) == pytest.approx(result.finish_s[i], abs=1e-9)
        latency = float(row["latency_s"])
        assert latency == pytest.approx(float(row["finish_s"]) - float(row["arrival_s"]), abs=2e-9)
        assert float(row["slo_s"]) == wl.slo_s[i]
        assert row["slo_met"] == str(int(result.latency_s[i] <= wl.slo_s[i]))
        assert float(row["energy_j"]) == pytest.approx(result.energy_j[i], rel=1e-5)
        assert row["offloaded"] == str(int(cloud[row["node"]]))
    met = sum(r["slo_met"] == "1" for r in rows) / 400
    assert met == pytest.approx(result.metrics.slo_attainment)
