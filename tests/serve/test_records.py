"""Served requests written as records, then set beside the simulator's run of the same trace."""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgesched.cli import app
from edgesched.core.cluster import Cluster
from edgesched.errors import ConfigError
from edgesched.serve.compare import compare_records, read_records
from edgesched.serve.records import COLUMNS
from tests.serve import test_server
from tests.serve.test_server import CLUSTER, MODEL, _serve, _shutdown, batch_of, infer

onnx_file = test_server.onnx_file
REQUESTS = 30
SERVED = CLUSTER + "serving:\n  slo_s: {mobilenet_v2: 0.5}\n"


@pytest.fixture(scope="module")
def records(onnx_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "served.csv"
    s = _serve(onnx_file, SERVED, policy="least-loaded", records=path)
    try:
        for i in range(REQUESTS):
            assert infer(s.url, batch_of(1, seed=i))[0] == 200
            time.sleep(0.002)
    finally:
        _shutdown(s)
    return path


def test_every_answered_request_has_a_record(records: Path) -> None:
    with records.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == REQUESTS
    assert tuple(rows[0]) == COLUMNS
    assert {r["model"] for r in rows} == {MODEL}
    assert {r["node"] for r in rows} <= {"left", "right"}
    assert {r["slo_s"] for r in rows} == {"0.5"}  # the model's deadline from serving.slo_s
    for r in rows:
        assert 0 < float(r["exec_s"]) <= float(r["latency_s"]) < 5
    times = [float(r["time_s"]) for r in rows]
    assert times == sorted(times) and times[0] >= 0


def test_compare_simulates_the_same_requests(records: Path) -> None:
    result = compare_records(records, Cluster.parse(CLUSTER), "least-loaded")
    assert result.real.requests == result.simulated.requests == REQUESTS
    rows = {label: (real, sim) for label, real, sim, _ in result.rows()}
    real_p50, sim_p50 = rows["p50 latency (ms)"]
    assert 0 < real_p50 < 1000 and 0 < sim_p50 < 1000
    assert math.isclose(rows["SLO met (%)"][0], 100.0)


def test_the_compare_command(records: Path, tmp_path: Path) -> None:
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(CLUSTER)
    runner = CliRunner()
    out = runner.invoke(app, ["compare", str(records), "--cluster", str(cluster), "--json"])
    assert out.exit_code == 0, out.output
    obj = json.loads(out.output)
    assert obj["real"]["requests"] == obj["simulated"]["requests"] == REQUESTS
    out = runner.invoke(app, ["compare", str(records), "-c", str(cluster), "-p", "least-loaded"])
    assert out.exit_code == 0 and "p99 latency (ms)" in out.output


def test_bad_records_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("time_s,model\n0.1,x\n")
    with pytest.raises(ConfigError, match="missing columns"):
        read_records(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(COLUMNS) + "\n")
    with pytest.raises(ConfigError, match="no records"):
        read_records(empty)
