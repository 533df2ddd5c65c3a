"""The profiler on tiny real models: a 2×2 grid in seconds, the file, the plots, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgesched.profile.runner import ProfileError, Profiler, ProfileSettings, mixes
from edgesched.profile.schema import ProfileFile
from tests.runtime.conftest import export, tiny_module

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny ONNX models with a dynamic batch, and one with a fixed batch of 1."""
    d = tmp_path_factory.mktemp("models")
    return {
        "a": export(tiny_module(), d / "a.onnx", dynamic=True),
        "b": export(tiny_module(), d / "b.onnx", dynamic=True),
        "fixed": export(tiny_module(), d / "fixed.onnx", dynamic=False),
    }


def settings(models: dict[str, Path], mode: str) -> ProfileSettings:
    return ProfileSettings(
        device_name="x86-mini-pc",
        models=(str(models["a"]), str(models["b"])),
        batches=(1, 2),
        max_instances=1,
        mode=mode,  # type: ignore[arg-type]
        solo_time_s=0.15,
        cell_time_s=0.15,
        settle_s=0.05,
    )


def test_mixes_cover_the_grid_without_the_empty_mix() -> None:
    assert mixes(["a", "b"], 1) == [{"a": 0, "b": 1}, {"a": 1, "b": 0}, {"a": 1, "b": 1}]
    assert len(mixes(["a", "b", "c"], 4)) == 5**3 - 1


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_two_by_two_grid(models: dict[str, Path], mode: str, tmp_path: Path) -> None:
    seen: list[tuple[int, int, str]] = []
    profiler = Profiler(settings(models, mode), progress=lambda *a: seen.append(a))
    profile = profiler.run()
    assert profile.models == ["a", "b"]
    assert len(profile.solo) == 4  # 2 models × 2 batch sizes
    assert len(profile.matrix) == 6  # 3 mixes × 2 probes
    assert seen[-1][:2] == (profiler.total_steps, profiler.total_steps)
    for cell in profile.matrix:
        assert cell.slowdown > 0.3
        assert cell.probe_latency_s.n >= 1
        assert cell.throughput_rps > 0
        assert set(cell.steady_latency_s) <= set(cell.running)
        assert cell.power is not None and cell.power.mean_w > 0
    assert profile.backend["backend"] == "onnxruntime"
    assert profile.idle_power is not None
    path = profile.save(tmp_path / "p.json")
    assert ProfileFile.load(path) == profile  # the file validates against its schema
    assert profile.mode == mode


def test_the_cli_writes_a_profile_and_draws_it(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    cmd = [
        sys.executable,
        "-m",
        "edgesched.cli",
        "profile",
        "--models",
        f"{models['a']},{models['b']}",
        "--max-instances",
        "1",
        "--batches",
        "1",
        "--solo-time",
        "0.15",
        "--cell-time",
        "0.15",
        "--mode",
        "threads",
        "--name",
        "x86-mini-pc",
        "--out",
        str(out),
        "--json",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["worst_slowdown"] > 0
    assert summary["power_source"] in ("measured", "estimated")
    profile = ProfileFile.load(out)
    plot = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgesched.cli",
            "profile",
            "plot",
            str(out),
            "--out",
            str(tmp_path / "plots"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert plot.returncode == 0, plot.stderr
    pngs = list((tmp_path / "plots").glob("*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes()[:4] == b"\x89PNG"
    assert profile.device == "x86-mini-pc"


def cli_error(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgesched.cli", "profile", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_unknown_model_is_one_line_and_exit_2() -> None:
    done = cli_error("--models", "resnet19", "--out", "/dev/null")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "Did you mean" in done.stderr


def solo_only(model: Path, batches: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Profile one model solo (threads mode) through the CLI."""
    out = str(tmp_path / "p.json")
    args = ["--models", str(model), "--batches", batches, "--max-instances", "0"]
    return cli_error(*args, "--mode", "threads", "--out", out)


def test_an_unreadable_onnx_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    done = solo_only(bad, "1", tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert "bad.onnx" in done.stderr


def test_a_batch_the_model_cannot_take_is_one_line_and_exit_2(
    models: dict[str, Path], tmp_path: Path
) -> None:
    done = solo_only(models["fixed"], "1,4", tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert "batch" in done.stderr


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ProfileError, match="matrix batch"):
        ProfileSettings(device_name="x", models=("a",), batches=(2,), matrix_batch=1)
    with pytest.raises(ProfileError, match="repeated"):
        ProfileSettings(device_name="x", models=("a", "a"))


def test_zoo_models_on_a_two_by_two_grid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The profiler takes zoo names: it exports them to ONNX (into a temporary cache) and runs."""
    pytest.importorskip("torch")
    monkeypatch.setenv("EDGESCHED_CACHE", str(tmp_path))
    profile = Profiler(
        ProfileSettings(
            device_name="x86-mini-pc",
            models=("mobilenet_v3_small", "digits-edge"),
            max_instances=1,
            mode="threads",
            solo_time_s=0.15,
            cell_time_s=0.15,
            settle_s=0.05,
        )
    ).run()
    assert profile.models == ["mobilenet_v3_small", "digits-edge"]
    assert len(profile.matrix) == 6
    assert (tmp_path / "zoo" / "mobilenet_v3_small.onnx").is_file()
    assert profile.solo_latency("mobilenet_v3_small", 1) > profile.solo_latency("digits-edge", 1)
