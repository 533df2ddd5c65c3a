"""Tiny models built in the tests: a conv+linear torch module and its ONNX exports."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgesched.runtime import available_cpus, pin_process

SAMPLE = (3, 8, 8)  # one input sample of the tiny model
CLASSES = 5


def tiny_module() -> Any:
    """Conv(3→4) + ReLU + Linear(256→5), seeded, in eval mode."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 8 * 8, CLASSES),
    ).eval()


def export(module: Any, path: Path, *, dynamic: bool) -> Path:
    """Export ``module`` with the TorchScript exporter; ``dynamic`` gives a symbolic batch axis."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter announces its deprecation
        torch.onnx.export(
            module,
            (torch.zeros(1, *SAMPLE),),
            str(path),
            dynamo=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes=axes,
        )
    return path


@pytest.fixture(scope="session")
def module() -> Any:
    """The tiny torch module (do not move it to another device)."""
    return tiny_module()


@pytest.fixture(scope="session")
def onnx_dynamic(module: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model as ONNX with a dynamic batch axis."""
    return export(module, tmp_path_factory.mktemp("onnx") / "tiny.onnx", dynamic=True)


@pytest.fixture(scope="session")
def onnx_fixed(module: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model as ONNX with a fixed batch of 1."""
    return export(module, tmp_path_factory.mktemp("onnx") / "tiny-b1.onnx", dynamic=False)


@pytest.fixture
def restore_affinity() -> Iterator[list[int]]:
    """The process's CPUs before the test; the teardown checks the test gave them back."""
    before = available_cpus()
    yield before
    after = available_cpus()
    if after != before:
        pin_process(before)
    assert after == before, "the test left the process pinned"


@pytest.fixture
def restore_torch_threads() -> Iterator[int]:
    """torch's intra-op thread count before the test, put back afterwards."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)
