"""PyTorch executors: modules and zoo names on the CPU, threads, describe(), outputs."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from edgesched.runtime import TorchExecutor, open_executor
from tests.runtime.conftest import CLASSES, SAMPLE

torch = pytest.importorskip("torch")


def batch(size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((size, *SAMPLE), dtype=np.float32)


@pytest.mark.parametrize("size", [1, 4])
def test_outputs_match_module(module: Any, size: int, restore_torch_threads: int) -> None:
    x = batch(size)
    with torch.inference_mode():
        want = module(torch.from_numpy(x)).numpy()
    with TorchExecutor(module, input_shape=SAMPLE, threads=1) as ex:
        out = ex.run(x)
    assert len(out) == 1 and out[0].shape == (size, CLASSES)
    np.testing.assert_allclose(out[0], want, rtol=1e-4, atol=1e-6)


def test_properties_and_describe(module: Any, restore_torch_threads: int) -> None:
    with TorchExecutor(module, input_shape=SAMPLE, threads=1, name="tiny") as ex:
        assert ex.backend == "torch"
        assert ex.provider == "cpu"
        assert ex.model == "tiny"
        assert ex.input_shape == SAMPLE
        assert ex.max_batch is None
        info = ex.describe()
    json.dumps(info)
    assert info["device"] == "cpu" and info["device_name"]
    assert info["intra_op_threads"] == 1
    assert isinstance(info["inter_op_threads"], int)
    assert info["stream"] is None and info["cuda_graph"] is False
    assert info["versions"]["torch"] == torch.__version__
    assert info["cpu_affinity"]


def test_threads_set_then_restored(module: Any, restore_torch_threads: int) -> None:
    before = restore_torch_threads
    wanted = 1 if before != 1 else 2
    ex = TorchExecutor(module, input_shape=SAMPLE, threads=wanted)
    assert torch.get_num_threads() == wanted
    ex.close()
    assert torch.get_num_threads() == before


def test_cpus_pin_and_set_threads(
    module: Any, restore_affinity: list[int], restore_torch_threads: int
) -> None:
    cpu = restore_affinity[0]
    with TorchExecutor(module, input_shape=SAMPLE, cpus=[cpu]) as ex:
        assert ex.describe()["cpu_affinity"] == [cpu]
        assert torch.get_num_threads() == 1  # one per pinned CPU
        ex.warmup(2, runs=1)


def test_nested_outputs_are_flattened(restore_torch_threads: int) -> None:
    class TwoHeads(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            return {"a": x.sum(dim=(1, 2, 3)), "b": (x * 2, [x.mean(dim=1)])}

    x = batch(2)
    with TorchExecutor(TwoHeads(), input_shape=SAMPLE, threads=1) as ex:
        out = ex.run(x)
    assert [o.shape for o in out] == [(2,), (2, *SAMPLE), (2, 8, 8)]
    np.testing.assert_allclose(out[1], 2 * x)


def test_outputs_are_the_callers(module: Any, restore_torch_threads: int) -> None:
    with TorchExecutor(module, input_shape=SAMPLE, threads=1) as ex:
        first = ex.run(batch(1, seed=1))[0].copy()
        kept = ex.run(batch(1, seed=1))[0]
        ex.run(batch(1, seed=2))
    np.testing.assert_array_equal(kept, first)


@pytest.mark.slow
def test_zoo_name(restore_torch_threads: int) -> None:
    pytest.importorskip("torchvision")
    with open_executor("squeezenet1_1", backend="torch", threads=2) as ex:
        assert ex.model == "squeezenet1_1"
        assert ex.input_shape == (3, 224, 224)
        out = ex.run(np.zeros((2, 3, 224, 224), dtype=np.float32))
        assert ex.describe()["versions"]["torchvision"]
    assert len(out) == 1 and out[0].shape == (2, 1000)
