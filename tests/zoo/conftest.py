"""Zoo fixtures: a throw-away cache for every test, and exports shared by the whole session."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesched.zoo import export_onnx, quantize_int8

SMALL = "mobilenet_v3_small"  # the cheapest torchvision export (~0.5 s)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the default cache at a temporary folder: no test writes to the real home cache."""
    monkeypatch.setenv("EDGESCHED_CACHE", str(tmp_path / "edgesched-cache"))
    return tmp_path / "edgesched-cache" / "zoo"


@pytest.fixture(scope="session")
def zoo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session cache folder holding the FP32 and INT8 exports made by the fixtures below."""
    return tmp_path_factory.mktemp("zoo")


@pytest.fixture(scope="session")
def small_onnx(zoo_cache: Path) -> Path:
    """``mobilenet_v3_small`` exported to the session cache."""
    return export_onnx(SMALL, cache=zoo_cache)


@pytest.fixture(scope="session")
def digits_onnx(zoo_cache: Path) -> dict[str, Path]:
    """Both digits models, FP32 and INT8, in the session cache, by file stem."""
    paths = {}
    for name in ("digits-edge", "digits-cloud"):
        paths[name] = export_onnx(name, cache=zoo_cache)
        paths[f"{name}-int8"] = quantize_int8(name, cache=zoo_cache)
    return paths
