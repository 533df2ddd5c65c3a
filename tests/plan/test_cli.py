"""``edgesched plan`` on the command line: --help, --json, --verify and infeasible input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from edgesched.cli import app
from edgesched.core.cluster import Cluster

SCENARIO = {
    "name": "cli",
    "seed": 1,
    "requests": 3000,
    "rate_rps": 300.0,
    "models": {
        "mobilenet_v2": {"weight": 3, "slo_s": 0.08, "input_bytes": 25000},
        "resnet18": {"weight": 1, "slo_s": 0.1, "input_bytes": 25000},
    },
}
BASE = ["plan", "--budget", "1000", "--max-nodes", "6", "--devices"]
DEVICES = "jetson-nano-4gb,raspberry-pi-5,x86-mini-pc"


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(SCENARIO), encoding="utf-8")
    return path


def test_help_explains_the_options() -> None:
    result = CliRunner().invoke(app, ["plan", "--help"])
    assert result.exit_code == 0
    for option in ("--budget", "--max-nodes", "--objective", "--power-cap", "--verify"):
        assert option in result.stdout


def test_json_prints_one_object_and_writes_a_cluster(scenario_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "planned.yaml"
    args = [*BASE, DEVICES, "-s", str(scenario_file), "--out", str(out), "--json"]
    result = CliRunner().invoke(app, [*args, "--objective", "cost", "--time-limit", "5"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # exactly one JSON document
    assert data["objective"] == "cost"
    assert data["plan"]["cost_usd"] <= min(
        b["cost_usd"] for b in data["baselines"].values() if b is not None
    )
    assert data["solver"]["status"] == "optimal"
    assert Cluster.load(out).name == "plan-cli"


def test_verify_adds_predicted_and_simulated_figures(scenario_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "planned.yaml"
    args = [*BASE, DEVICES, "-s", str(scenario_file), "--out", str(out), "--json"]
    result = CliRunner().invoke(app, [*args, "--verify", "--no-baselines", "--requests", "4000"])
    assert result.exit_code == 0, result.output
    check = json.loads(result.stdout)["verify"]
    assert check["requests"] == 4000
    for key in ("throughput_rps", "energy_per_request_j", "slo_attainment"):
        assert key in check["predicted"] and key in check["simulated"] and key in check["ratio"]


def test_text_output_shows_the_comparison(scenario_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "planned.yaml"
    result = CliRunner().invoke(app, [*BASE, DEVICES, "-s", str(scenario_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "MILP at ≤ greedy's cost" in result.stdout
    assert f"cluster written to {out}" in result.stdout


def test_infeasible_budget_exits_2_with_one_line(scenario_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "never.yaml"
    args = [*BASE, DEVICES, "-s", str(scenario_file), "--out", str(out), "--budget", "50"]
    proc = subprocess.run(
        [sys.executable, "-m", "edgesched.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "COLUMNS": "400"},
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "budget" in lines[0] and "--budget" in lines[0]
    assert not out.exists()
