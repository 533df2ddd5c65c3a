"""``edgesched bench routing`` through Typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from edgesched.cli import app
from edgesched.errors import UnknownNameError


def test_help_explains_the_bench() -> None:
    result = CliRunner().invoke(app, ["bench", "routing", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--scenarios", "--seeds", "--policies", "--requests", "--learned-policy"):
        assert option in result.output
    assert "best heuristic" in result.output


def test_a_tiny_run_prints_json_and_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = ["bench", "routing", "--scenarios", "throttling", "--seeds", "2", "--policies"]
    args += ["pow2,min-expected-completion", "--requests", "300", "--workers", "1"]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["out"] == str(out)
    scenario = doc["scenarios"]["throttling"]
    assert scenario["seeds"] == [42, 43]
    assert scenario["best_heuristic"]["policy"] in {"pow2", "min-expected-completion"}
    told = "told-min-expected-completion"  # the reference beside min-expected-completion
    assert set(scenario["recovery"]["latency_s"]) == {"pow2", "min-expected-completion", told}
    assert {p.name for p in out.iterdir()} == {
        "routing.json",
        "routing.md",
        "routing-throttling.png",
        "recovery-throttling.png",
    }


def test_the_text_output_names_the_best_heuristic(tmp_path: Path) -> None:
    args = ["bench", "routing", "--scenarios", "default", "--seeds", "1", "--policies", "pow2"]
    result = CliRunner().invoke(app, [*args, "--requests", "200", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Best heuristic: pow2" in result.stdout
    assert "The learned router did not run." in result.stdout


def test_an_unknown_scenario_is_an_edgesched_error(tmp_path: Path) -> None:
    args = ["bench", "routing", "--scenarios", "defualt", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, UnknownNameError)
    assert "Did you mean 'default'" in str(result.exception)
