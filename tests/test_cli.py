"""The ``edgesched`` command: in-process through Typer's runner, and as a real process for exit
codes and what reaches stderr."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from edgesched.cli import app
from edgesched.errors import ConfigError, UnknownNameError
from edgesched.policies import names

KEYS = {
    "policy",
    "requests",
    "latency_mean_s",
    "latency_p50_s",
    "latency_p95_s",
    "latency_p99_s",
    "slo_attainment",
    "throughput_rps",
    "energy_per_request_j",
    "offload_rate",
}
SIMULATE = ["simulate", "--json", "--requests", "2000", "--policy", "pow2"]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m edgesched.cli`` as its own process.

    Python warnings are silenced (e.g. a stale compiled engine) so stderr holds only what the
    command itself prints.
    """
    return subprocess.run(
        [sys.executable, "-m", "edgesched.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.fixture(scope="module")
def simulated() -> dict[str, object]:
    result = invoke(*SIMULATE)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    data = json.loads(lines[0])
    assert isinstance(data, dict)
    return data


# --------------------------------------------------------------------------------- simulate
def test_simulate_json_prints_one_object_with_the_metrics(simulated: dict[str, object]) -> None:
    assert set(simulated) >= KEYS
    assert simulated["policy"] == "pow2"
    assert simulated["requests"] == 2000
    p50, p95, p99 = (float(simulated[f"latency_p{p}_s"]) for p in (50, 95, 99))  # type: ignore[arg-type]
    assert 0 < p50 <= p95 <= p99
    assert 0 <= float(simulated["slo_attainment"]) <= 1  # type: ignore[arg-type]
    assert 0 <= float(simulated["offload_rate"]) <= 1  # type: ignore[arg-type]
    assert float(simulated["throughput_rps"]) > 0  # type: ignore[arg-type]
    assert float(simulated["energy_per_request_j"]) > 0  # type: ignore[arg-type]


def test_simulate_as_a_process_prints_the_same_run(simulated: dict[str, object]) -> None:
    proc = cli(*SIMULATE)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    for key in KEYS:  # same seed, same scenario: the same numbers (wall time aside)
        assert data[key] == simulated[key], key


def test_simulate_seed_changes_the_run(simulated: dict[str, object]) -> None:
    result = invoke(*SIMULATE, "--seed", "123")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["latency_mean_s"] != simulated["latency_mean_s"]


def test_simulate_writes_records(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = invoke("simulate", "--json", "--requests", "300", "--records", str(out))
    assert result.exit_code == 0, result.output
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 300
    assert [int(r["id"]) for r in rows] == list(range(300))
    assert {"model", "node", "latency_s", "slo_met", "offloaded"} <= set(rows[0])


def test_simulate_prints_a_table_without_json() -> None:
    result = invoke("simulate", "--requests", "300", "--policy", "least-loaded")
    assert result.exit_code == 0, result.output
    assert "least-loaded" in result.stdout
    assert "300 requests simulated" in result.stdout


def test_simulate_unknown_policy_in_process() -> None:
    result = invoke("simulate", "--requests", "100", "--policy", "pow3")
    assert isinstance(result.exception, UnknownNameError)
    assert "Did you mean 'pow2'" in str(result.exception)


# ------------------------------------------------------------------------------------- demo
def test_demo_writes_a_self_contained_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = invoke("demo", "--requests", "1500", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert Path(summary["report"]) == out / "index.html"
    for name in ("index.html", "latency_cdf.png", "p99_slo.png", "energy.png", "metrics.json"):
        assert (out / name).is_file(), name
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "index.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3
    assert 'src="latency_cdf.png"' not in page  # nothing loaded from beside the page
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert [m["policy"] for m in metrics] == names("route")
    assert all(m["requests"] == 1500 for m in metrics)
    assert [m["policy"] for m in summary["policies"]] == names("route")
    for name in names("route"):
        assert name in page


# ---------------------------------------------------------------------- catalog and policies
def test_catalog_list() -> None:
    result = invoke("catalog", "list")
    assert result.exit_code == 0
    for name in ("jetson-nano-4gb", "cloud-a100", "resnet50", "mobilenet_v2"):
        assert name in result.stdout
    listed = json.loads(invoke("catalog", "list", "--json").stdout)
    assert "jetson-nano-4gb" in listed["devices"] and "resnet50" in listed["models"]


def test_catalog_show_device_mentions_sources() -> None:
    result = invoke("catalog", "show", "jetson-nano-4gb")
    assert result.exit_code == 0
    out = result.stdout
    assert "jetson-nano-4gb" in out
    assert "published" in out and "estimated" in out
    assert "https://" in out
    assert "profiles of jetson-nano-4gb" in out
    spec = json.loads(invoke("catalog", "show", "jetson-nano-4gb", "--json").stdout)
    assert spec["name"] == "jetson-nano-4gb"
    assert spec["peak_power_w"]["source"] in {"published", "measured", "estimated"}


def test_catalog_show_model() -> None:
    result = invoke("catalog", "show", "resnet50")
    assert result.exit_code == 0
    assert "resnet50" in result.stdout and "profiles of resnet50" in result.stdout
    assert "jetson-nano-4gb" in result.stdout  # a profile row per device


def test_policies_lists_every_registered_policy() -> None:
    result = invoke("policies")
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.stdout.strip().splitlines()]
    assert listed == names("route")


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["simulate"],
        ["demo"],
        ["policies"],
        ["catalog"],
        ["catalog", "list"],
        ["catalog", "show"],
    ],
    ids=lambda c: " ".join(c) or "edgesched",
)
def test_help_of_every_command(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout


# ----------------------------------------------------------------- errors, as a real process
def test_unknown_policy_exits_2_with_one_line() -> None:
    proc = cli("simulate", "--requests", "100", "--policy", "pow3")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Did you mean 'pow2'" in lines[0]
    assert proc.stdout == ""


def test_malformed_cluster_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(
        "name: bad\nnodes:\n  - id: n\n    device: jetson-nano-4g\n    models: {resnet18: 1}\n",
        encoding="utf-8",
    )
    proc = cli("simulate", "--requests", "100", "--cluster", str(path))
    assert proc.returncode == 2
    assert f"{path}:4:" in proc.stderr
    assert "jetson-nano-4gb" in proc.stderr  # the suggestion
    assert "Traceback" not in proc.stderr
    result = invoke("simulate", "--requests", "100", "--cluster", str(path))
    assert isinstance(result.exception, ConfigError)


def test_unknown_catalog_name_and_bad_request_count_exit_2() -> None:
    proc = cli("catalog", "show", "jetson-nano")
    assert proc.returncode == 2
    assert "Did you mean" in proc.stderr
    proc = cli("simulate", "--requests", "0")
    assert proc.returncode == 2
    assert "--requests" in proc.stderr


def test_help_as_a_process_exits_0() -> None:
    proc = cli("--help")
    assert proc.returncode == 0
    assert "simulate" in proc.stdout and "demo" in proc.stdout


@pytest.mark.parametrize("args", [["simulate", "--bogus"], ["no-such-command"]], ids=" ".join)
def test_usage_errors_exit_2_with_a_message(args: list[str]) -> None:
    proc = cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "No such" in proc.stderr


@pytest.mark.parametrize("command", ["simulate", "demo"])
def test_unwritable_output_exits_2_with_one_line(tmp_path: Path, command: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    if command == "simulate":
        target = tmp_path / "missing" / "out.csv"
        proc = cli("simulate", "--json", "--requests", "50", "--records", str(target))
    else:
        target = blocker
        proc = cli("demo", "--json", "--requests", "50", "--out", str(target))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert str(target) in proc.stderr
