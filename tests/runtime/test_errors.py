"""Every refusal is an ExecutorError (or UnknownNameError) with a one-line message."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgesched.errors import EdgeschedError, UnknownNameError
from edgesched.runtime import ExecutorError, OnnxExecutor, TorchExecutor, open_executor
from tests.runtime.conftest import SAMPLE


def refused(fn: Callable[[], Any], *parts: str, error: type[Exception] = ExecutorError) -> str:
    """Call ``fn``, expect ``error`` whose one-line message holds every string in ``parts``."""
    with pytest.raises(error) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message


def test_executor_error_is_an_edgesched_error() -> None:
    assert issubclass(ExecutorError, EdgeschedError)


def test_garbage_file(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"this is not a protobuf \x00\xff" * 10)
    refused(lambda: open_executor(bad), f"cannot load model {bad}:", "is it an ONNX file?")


def test_empty_file(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    empty = tmp_path / "empty.onnx"
    empty.touch()
    refused(lambda: open_executor(empty), f"cannot load model {empty}", "ONNX file")


def test_missing_file(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    missing = tmp_path / "nowhere" / "model.onnx"
    refused(lambda: open_executor(missing), f"cannot load model {missing}: no such file")
    refused(lambda: open_executor(str(tmp_path) + "/"), "it is a directory")


def test_wrong_input_shape(onnx_dynamic: Path) -> None:
    with open_executor(onnx_dynamic, threads=1) as ex:
        msg = refused(
            lambda: ex.run(np.zeros((4, 3, 32, 32), np.float32)),
            "takes input of shape (B, 3, 8, 8); got (4, 3, 32, 32)",
        )
        assert str(onnx_dynamic) in msg
        refused(lambda: ex.run(np.zeros((3, 8, 8), np.float32)), "got (3, 8, 8)")
        refused(lambda: ex.run(np.zeros((0, *SAMPLE), np.float32)), "empty batch")


def test_wrong_dtype(onnx_dynamic: Path) -> None:
    with open_executor(onnx_dynamic, threads=1) as ex:
        refused(lambda: ex.run(np.zeros((1, *SAMPLE))), "takes a float32 numpy array; got float64")
        refused(lambda: ex.run([[0.0]]), "got list")  # type: ignore[arg-type]


def test_fixed_batch_model_given_four(onnx_fixed: Path) -> None:
    with open_executor(onnx_fixed, threads=1) as ex:
        refused(
            lambda: ex.run(np.zeros((4, *SAMPLE), np.float32)),
            f"model {onnx_fixed} takes batch size 1 only",
            "(its input 'input' has a fixed first dimension); got 4",
        )
        refused(lambda: ex.warmup(4), "batch size 1 only")


def test_run_after_close(onnx_dynamic: Path) -> None:
    ex = open_executor(onnx_dynamic, threads=1)
    ex.close()
    refused(lambda: ex.run(np.zeros((1, *SAMPLE), np.float32)), "is closed")


@pytest.mark.parametrize(
    ("backend", "device", "choices"),
    [
        ("onnxruntime", "gpu", "choose one of: cpu, cuda, cuda:N, tensorrt, tensorrt:N"),
        ("onnxruntime", "cpu:1", "choose one of: cpu,"),
        ("torch", "tensorrt", "choose one of: cpu, cuda, cuda:N"),
        ("torch", "cuda:x", "choose one of: cpu, cuda, cuda:N"),
    ],
)
def test_unknown_device(onnx_dynamic: Path, backend: str, device: str, choices: str) -> None:
    model = str(onnx_dynamic) if backend == "onnxruntime" else "squeezenet1_1"
    refused(
        lambda: open_executor(model, backend=backend, device=device),
        f"unknown device {device!r} for backend {backend}",
        choices,
    )


def test_unknown_backend(onnx_dynamic: Path) -> None:
    refused(
        lambda: open_executor(onnx_dynamic, backend="tensorflow"),
        "unknown backend 'tensorflow'; choose one of: onnxruntime, torch",
    )


def test_unknown_zoo_name() -> None:
    for backend in ("onnxruntime", "torch"):
        refused(
            lambda b=backend: open_executor("resnet19", backend=b),
            "unknown zoo model 'resnet19'",
            "resnet18",
            error=UnknownNameError,
        )


def test_cuda_where_unavailable_onnxruntime(onnx_dynamic: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    available = ort.get_available_providers()
    for device, provider in (("cuda", "CUDAExecutionProvider"), ("tensorrt", "Tensorrt")):
        if any(p.startswith(provider) for p in available):
            continue
        refused(
            lambda d=device: open_executor(onnx_dynamic, device=d),
            f"device {device!r} needs onnxruntime's {provider}",
            f"(available: {', '.join(available)})",
        )


def test_cuda_where_unavailable_torch(module: Any) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    refused(
        lambda: TorchExecutor(module, input_shape=SAMPLE, device="cuda"),
        "device 'cuda' needs a CUDA GPU",
        "use device='cpu'",
    )


def test_cuda_graph_on_cpu(module: Any) -> None:
    pytest.importorskip("torch")
    refused(
        lambda: TorchExecutor(module, input_shape=SAMPLE, cuda_graph=True),
        "CUDA graphs need device=cuda; got device='cpu'",
    )
    refused(
        lambda: open_executor("squeezenet1_1", backend="torch", cuda_graph=True),
        "CUDA graphs need device=cuda",
    )


def test_options_the_backend_lacks(module: Any, onnx_dynamic: Path) -> None:
    pytest.importorskip("torch")
    refused(
        lambda: TorchExecutor(module, input_shape=SAMPLE, stream=0), "CUDA streams need device=cuda"
    )
    refused(lambda: open_executor(onnx_dynamic, cuda_graph=True), "needs backend='torch'")
    refused(lambda: open_executor(onnx_dynamic, stream=1), "needs backend='torch'")
    refused(lambda: open_executor(onnx_dynamic, backend="torch"), "backend 'torch' runs zoo models")


def test_bad_threads_and_shapes(module: Any, onnx_dynamic: Path) -> None:
    pytest.importorskip("torch")
    refused(lambda: OnnxExecutor(onnx_dynamic, threads=0), "threads must be a positive integer")
    refused(lambda: TorchExecutor(module), "give input_shape=(C, H, W)")
    refused(lambda: TorchExecutor(module, input_shape=(3, 0)), "must be positive ints")
    refused(lambda: TorchExecutor(42), "model must be a zoo name or a torch.nn.Module")


def test_bad_cpus_leave_affinity_alone(onnx_dynamic: Path, restore_affinity: list[int]) -> None:
    refused(lambda: open_executor(onnx_dynamic, cpus=[10_000]), "cannot pin the process to CPU")


def test_import_is_light() -> None:
    code = (
        "import sys, edgesched.runtime\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'onnx') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
