"""``edgesched zoo`` through Typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from edgesched.errors import UnknownNameError
from edgesched.zoo import ZOO, load_metadata
from edgesched.zoo.cli import zoo_app


def invoke(*args: str) -> Result:
    return CliRunner().invoke(zoo_app, list(args))


def test_list_json_on_an_empty_cache(tmp_path: Path) -> None:
    result = invoke("list", "--json", "--cache", str(tmp_path))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["cache"] == str(tmp_path)
    assert [m["name"] for m in data["models"]] == list(ZOO)
    assert not any(m["cached"] or m["int8_cached"] for m in data["models"])
    resnet = next(m for m in data["models"] if m["name"] == "resnet18")
    assert resnet["input_shape"] == [3, 224, 224] and resnet["source"] == "torchvision"


def test_list_uses_the_default_cache(_private_cache: Path) -> None:
    data = json.loads(invoke("list", "--json").stdout)
    assert data["cache"] == str(_private_cache)


def test_export_then_list(zoo_cache: Path, digits_onnx: object) -> None:
    result = invoke("export", "digits-edge", "--int8", "--cache", str(zoo_cache), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["path"] == str(zoo_cache / "digits-edge.onnx")
    assert data["flops"] > 0 and data["params"] > 0 and data["accuracy"] > 0.9
    assert data["int8"]["path"] == str(zoo_cache / "digits-edge-int8.onnx")
    assert data["int8"]["precision"] == "int8" and data["int8"]["accuracy"] > 0.9

    listed = json.loads(invoke("list", "--json", "--cache", str(zoo_cache)).stdout)
    row = next(m for m in listed["models"] if m["name"] == "digits-edge")
    assert row["cached"] and row["int8_cached"] and row["flops"] == data["flops"]

    table = invoke("list", "--cache", str(zoo_cache))
    assert table.exit_code == 0
    line = next(x for x in table.stdout.splitlines() if "digits-edge" in x)
    assert "yes" in line and "kB" in line


def test_export_prints_path_params_flops_and_accuracy(zoo_cache: Path, digits_onnx: object) -> None:
    result = invoke("export", "digits-cloud", "--cache", str(zoo_cache))
    assert result.exit_code == 0, result.output
    assert str(zoo_cache / "digits-cloud.onnx") in result.stdout
    meta = load_metadata("digits-cloud", zoo_cache)
    assert f"{meta.params:,} params" in result.stdout
    assert "FLOP/sample" in result.stdout
    assert f"held-out accuracy {meta.accuracy:.2%}" in result.stdout


@pytest.mark.parametrize("args", [["export", "resnet19"], ["export", "resnet19", "--int8"]])
def test_unknown_name_is_an_edgesched_error(args: list[str], tmp_path: Path) -> None:
    result = invoke(*args, "--cache", str(tmp_path))
    assert isinstance(result.exception, UnknownNameError)
    assert "Did you mean 'resnet18'" in str(result.exception)
    assert list(tmp_path.iterdir()) == []


def test_no_arguments_shows_help() -> None:
    result = invoke()
    assert "export" in result.output and "list" in result.output
