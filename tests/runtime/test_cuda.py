"""CUDA paths: eager runs, CUDA graphs and streams (skipped on machines without a CUDA GPU)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgesched.runtime import ExecutorError, TorchExecutor, open_executor
from edgesched.runtime.torch_backend import _shared_stream
from tests.runtime.conftest import CLASSES, SAMPLE, tiny_module

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def batch(size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((size, *SAMPLE), dtype=np.float32)


def expected(x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return tiny_module()(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("cuda_graph", [False, True], ids=["eager", "graph"])
def test_matches_cpu(cuda_graph: bool) -> None:
    with TorchExecutor(
        tiny_module(), input_shape=SAMPLE, device="cuda", cuda_graph=cuda_graph
    ) as ex:
        assert ex.provider == ("cuda-graph" if cuda_graph else "cuda")
        for size in (1, 4, 1):  # back to a captured size
            x = batch(size, seed=size)
            out = ex.run(x)
            assert out[0].shape == (size, CLASSES)
            np.testing.assert_allclose(out[0], expected(x), rtol=1e-3, atol=1e-4)
        info = ex.describe()
    assert info["device"] == "cuda:0" and info["device_name"]
    assert info["versions"]["cuda"] == torch.version.cuda
    assert info["graph_batch_sizes"] == ([1, 4] if cuda_graph else [])


def test_graph_outputs_are_not_overwritten() -> None:
    with TorchExecutor(tiny_module(), input_shape=SAMPLE, device="cuda", cuda_graph=True) as ex:
        ex.warmup(2, runs=1)
        a, b = batch(2, seed=1), batch(2, seed=2)
        first = ex.run(a)[0]
        second = ex.run(b)[0]
    np.testing.assert_allclose(first, expected(a), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(second, expected(b), rtol=1e-3, atol=1e-4)


def test_streams_shared_by_index() -> None:
    assert _shared_stream(torch, 0, 7) is _shared_stream(torch, 0, 7)
    assert _shared_stream(torch, 0, 7) != _shared_stream(torch, 0, 8)
    assert _shared_stream(torch, 0, 7) != torch.cuda.default_stream(0)


@pytest.mark.parametrize("cuda_graph", [False, True], ids=["eager", "graph"])
def test_executors_on_two_streams_in_threads(cuda_graph: bool) -> None:
    executors = [
        TorchExecutor(
            tiny_module(), input_shape=SAMPLE, device="cuda", stream=i, cuda_graph=cuda_graph
        )
        for i in range(2)
    ]
    results: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {0: [], 1: []}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for k in range(20):
                x = batch(1 + (k % 2), seed=100 * i + k)
                results[i].append((x, executors[i].run(x)[0]))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for ex in executors:
        assert ex.describe()["stream"] in (0, 1)
        ex.close()
    assert not errors, errors
    for pairs in results.values():
        assert len(pairs) == 20
        for x, out in pairs:
            np.testing.assert_allclose(out, expected(x), rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_zoo_model_with_graph() -> None:
    pytest.importorskip("torchvision")
    with open_executor("squeezenet1_1", backend="torch", device="cuda", cuda_graph=True) as ex:
        ex.warmup(2)
        out = ex.run(np.zeros((2, 3, 224, 224), np.float32))
    assert out[0].shape == (2, 1000)


def test_missing_gpu_index() -> None:
    count = torch.cuda.device_count()
    with pytest.raises(ExecutorError, match=f"this machine has {count} CUDA GPU"):
        TorchExecutor(tiny_module(), input_shape=SAMPLE, device=f"cuda:{count}")


def test_onnxruntime_cuda(onnx_dynamic: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime without CUDAExecutionProvider")
    with open_executor(onnx_dynamic, device="cuda") as ex:
        assert ex.provider == "CUDAExecutionProvider"
        x = batch(4)
        np.testing.assert_allclose(ex.run(x)[0], expected(x), rtol=1e-3, atol=1e-4)


class _Syncs(torch.nn.Module):
    """A model that reads a value back to the host inside forward: it cannot be captured."""

    def forward(self, x: Any) -> Any:
        return x * 2 if x.sum().item() > 0 else x


def test_uncapturable_model_is_refused_last() -> None:
    """Run last in this file: a failed capture is the one test that leaves CUDA state behind."""
    ex = TorchExecutor(_Syncs(), input_shape=SAMPLE, device="cuda", cuda_graph=True)
    try:
        with pytest.raises(ExecutorError, match="cannot capture a CUDA graph of model _Syncs"):
            ex.run(batch(1))
    finally:
        ex.close()
