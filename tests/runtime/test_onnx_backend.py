"""ONNX Runtime executors: outputs match torch, session settings, describe(), pinning, zoo names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgesched.runtime import Executor, OnnxExecutor, open_executor
from tests.runtime.conftest import CLASSES, SAMPLE

ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")


def batch(size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((size, *SAMPLE), dtype=np.float32)


@pytest.mark.parametrize("size", [1, 4])
def test_outputs_match_torch(module: Any, onnx_dynamic: Path, size: int) -> None:
    x = batch(size)
    with torch.inference_mode():
        want = module(torch.from_numpy(x)).numpy()
    with open_executor(onnx_dynamic, threads=1) as ex:
        out = ex.run(x)
    assert len(out) == 1
    assert out[0].shape == (size, CLASSES)
    np.testing.assert_allclose(out[0], want, rtol=1e-4, atol=1e-5)


def test_properties(onnx_dynamic: Path, onnx_fixed: Path) -> None:
    with open_executor(onnx_dynamic, threads=1) as ex:
        assert isinstance(ex, OnnxExecutor) and isinstance(ex, Executor)
        assert ex.backend == "onnxruntime"
        assert ex.provider == "CPUExecutionProvider"
        assert ex.model == str(onnx_dynamic)
        assert ex.input_shape == SAMPLE
        assert ex.max_batch is None
    with open_executor(str(onnx_fixed), threads=1) as ex:
        assert ex.max_batch == 1
        assert ex.run(batch(1))[0].shape == (1, CLASSES)


def test_session_options(onnx_dynamic: Path) -> None:
    with OnnxExecutor(onnx_dynamic, threads=2) as ex:
        opts = ex._session.get_session_options()
        assert opts.intra_op_num_threads == 2
        assert opts.inter_op_num_threads == 1
        assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
        assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        assert ex.describe()["intra_op_threads"] == 2
    with OnnxExecutor(onnx_dynamic) as ex:  # ONNX Runtime's own default
        assert ex._session.get_session_options().intra_op_num_threads == 0
        assert ex.describe()["intra_op_threads"] is None


def test_describe(onnx_dynamic: Path) -> None:
    with open_executor(onnx_dynamic, threads=1) as ex:
        info = ex.describe()
    json.dumps(info)  # JSON-ready
    assert info["backend"] == "onnxruntime"
    assert info["provider"] == "CPUExecutionProvider"
    assert info["providers"] == ["CPUExecutionProvider"]
    assert info["device"] == "cpu"
    assert isinstance(info["device_name"], str) and info["device_name"]
    assert info["intra_op_threads"] == 1
    assert info["inter_op_threads"] == 1
    assert info["input_shape"] == list(SAMPLE)
    assert info["max_batch"] is None
    assert info["cpu_affinity"] and all(isinstance(c, int) for c in info["cpu_affinity"])
    assert info["versions"]["onnxruntime"] == ort.__version__
    assert {"python", "numpy"} <= set(info["versions"])
    assert info["model_path"] == str(onnx_dynamic)


def test_warmup_and_close(onnx_dynamic: Path) -> None:
    ex = open_executor(onnx_dynamic, threads=1)
    ex.warmup(2, runs=2)
    ex.close()
    ex.close()  # idempotent
    assert "closed" in repr(ex)
    assert ex.describe()["backend"] == "onnxruntime"  # still describable


def test_cpus_pin_while_open(onnx_dynamic: Path, restore_affinity: list[int]) -> None:
    cpu = restore_affinity[-1]
    with open_executor(onnx_dynamic, cpus=[cpu]) as ex:
        info = ex.describe()
        assert info["cpu_affinity"] == [cpu]
        assert info["intra_op_threads"] == 1  # one thread per pinned CPU by default
        assert ex.run(batch(2))[0].shape == (2, CLASSES)
    # restore_affinity checks that close() gave the CPUs back


def test_non_contiguous_batch(module: Any, onnx_dynamic: Path) -> None:
    x = np.asfortranarray(batch(3))
    with torch.inference_mode():
        want = module(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    with open_executor(onnx_dynamic, threads=1) as ex:
        np.testing.assert_allclose(ex.run(x)[0], want, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_zoo_name_exports_then_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("edgesched.zoo.export", reason="edgesched.zoo.export not written yet")
    monkeypatch.setenv("EDGESCHED_CACHE", str(tmp_path))  # keep the export out of ~/.cache
    with open_executor("squeezenet1_1", threads=2) as ex:
        assert ex.model == "squeezenet1_1"
        assert ex.input_shape == (3, 224, 224)
        out = ex.run(np.zeros((2, 3, 224, 224), dtype=np.float32))
    assert out[0].shape == (2, 1000)
    assert list(tmp_path.rglob("squeezenet1_1.onnx")), "the export went outside EDGESCHED_CACHE"
