"""``edgesched offload`` and ``simulate --offload`` through Typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from edgesched.cli import app
from edgesched.core.confidence import ConfidenceSample, shipped_sample_paths
from edgesched.errors import ConfigError, EdgeschedError, UnknownNameError

EXAMPLES = Path(__file__).parents[2] / "examples"
SHIPPED = str(shipped_sample_paths()[0])
OFFLOAD = [
    "-c",
    str(EXAMPLES / "offload-cluster.yaml"),
    "-s",
    str(EXAMPLES / "offload-scenario.yaml"),
]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["offload", "--help"], ["measure", "sweep", "threshold"]),
        (["offload", "sweep", "--help"], ["--link-mbps", "--rtt-ms", "--accuracy-target", "--out"]),
        (["offload", "measure", "--help"], ["--out", "--repeats", "held-out"]),
        (["simulate", "--help"], ["--offload", "--threshold", "--accuracy-target", "--confidence"]),
    ],
)
def test_help_explains_the_options(args: list[str], words: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    for word in words:
        assert word in result.output


def test_sweep_of_the_shipped_sample_writes_json_and_a_plot(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    result = invoke("offload", "sweep", "--sample", SHIPPED, "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    saved = json.loads((out / "sweep.json").read_text())
    assert summary["chosen"] == saved["chosen"]
    assert saved["link"] == {"bandwidth_bytes_per_s": 12.5e6, "rtt_s": 0.040}  # the defaults
    assert len(saved["curve"]["theta"]) == 101
    assert saved["chosen"]["accuracy"] >= 0.97 > saved["edge_only"]["accuracy"]
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_prints_a_table_with_both_references(tmp_path: Path) -> None:
    args = ["--sample", SHIPPED, "--out", str(tmp_path), "--link-mbps", "10", "--rtt-ms", "5"]
    result = invoke("offload", "sweep", *args)
    assert result.exit_code == 0, result.output
    for word in ("edge-only", "chosen θ", "cloud-only", "10 Mbit/s", "5 ms RTT"):
        assert word in result.output
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert saved["link"] == {"bandwidth_bytes_per_s": 1.25e6, "rtt_s": 0.005}


def test_an_unreachable_target_fails_with_advice(tmp_path: Path) -> None:
    result = invoke(
        "offload",
        "sweep",
        "--sample",
        SHIPPED,
        "--out",
        str(tmp_path),
        "--accuracy-target",
        "0.999",
    )
    assert isinstance(result.exception, ConfigError)
    assert "lower the target" in str(result.exception)


def test_measure_writes_a_loadable_sample(tmp_path: Path, measured: ConfidenceSample) -> None:
    out = tmp_path / "s.json"
    result = invoke("offload", "measure", "--out", str(out), "--repeats", "1", "--json")
    assert result.exit_code == 0, result.output
    sample = ConfidenceSample.load(out)
    assert sample.command.startswith("edgesched")
    assert sample.edge_correct == measured.edge_correct
    assert json.loads(result.stdout)["edge_accuracy"] == sample.edge_accuracy


def test_simulate_with_offload_reports_accuracy() -> None:
    result = invoke("simulate", *OFFLOAD, "--requests", "3000", "--threshold", "0.9", "--json")
    assert result.exit_code == 0, result.output
    m = json.loads(result.stdout)
    assert 0.1 < m["offload_rate"] < 0.3
    assert 0.95 < m["accuracy"] < 0.99
    text = invoke("simulate", *OFFLOAD, "--requests", "3000", "--offload", "always")
    assert text.exit_code == 0, text.output
    assert "offload always: 100.0% answered in the cloud, accuracy" in text.output


def test_simulate_without_offload_knows_no_accuracy() -> None:
    result = invoke("simulate", *OFFLOAD, "--requests", "500", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accuracy"] is None


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (["--offload", "sometimes"], UnknownNameError, "unknown offload policy"),
        (["--threshold", "0.5", "--accuracy-target", "0.9"], EdgeschedError, "not both"),
        (["--confidence", SHIPPED], EdgeschedError, "--offload"),
        (["--offload", "threshold", "--accuracy-target", "0.9"], ConfigError, "bad arguments"),
    ],
)
def test_bad_offload_options(args: list[str], error: type, message: str) -> None:
    result = invoke("simulate", *OFFLOAD, "--requests", "100", *args)
    assert isinstance(result.exception, error), result.output
    assert message in str(result.exception)
