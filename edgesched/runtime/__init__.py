"""The runtime: executors that run one model instance, shared by the profiler and the workers.

:func:`open_executor` opens a model by path or zoo name on a backend (ONNX Runtime or PyTorch)
and device, with its thread count and CPU set. Importing this package imports neither torch nor
onnxruntime; each backend imports its library when an executor is opened.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from edgesched.errors import DependencyNotInstalled
from edgesched.runtime._device import parse_device
from edgesched.runtime.affinity import available_cpus, pin_process
from edgesched.runtime.errors import ExecutorError
from edgesched.runtime.executor import Executor
from edgesched.runtime.onnx_backend import PROVIDERS, OnnxExecutor
from edgesched.runtime.torch_backend import TorchExecutor

#: Backends and the device kinds each runs on (``cuda`` and ``tensorrt`` also take ``:N``).
BACKENDS: dict[str, tuple[str, ...]] = {
    "onnxruntime": tuple(PROVIDERS),
    "torch": ("cpu", "cuda"),
}


def open_executor(
    model: str | Path,
    *,
    backend: str = "onnxruntime",
    device: str = "cpu",
    threads: int | None = None,
    cpus: Sequence[int] | None = None,
    cuda_graph: bool = False,
    stream: int | None = None,
) -> Executor:
    """Open one instance of ``model`` on ``backend`` and ``device``.

    ``model`` is a path (a :class:`~pathlib.Path`, or a string that ends in ``.onnx`` or holds a
    path separator) to an ONNX file, or else a zoo name. For ``torch`` a zoo name is built from the
    registry with random weights; for ``onnxruntime`` it is exported to ONNX first
    (:func:`edgesched.zoo.export.export_onnx`, cached).

    Args:
        model: ONNX file or zoo name.
        backend: ``onnxruntime`` or ``torch``.
        device: ``cpu``, ``cuda``, ``cuda:N``; ``tensorrt``/``tensorrt:N`` for ONNX Runtime.
        threads: intra-op threads; None: one per CPU of ``cpus`` when given, else the backend's
            default. For torch this is process-wide.
        cpus: pin the whole process to these logical CPUs (restored when the executor closes).
            Affinity belongs to the process, so independent applications sharing a device each
            run in their own process with one executor.
        cuda_graph: torch on CUDA only: replay one captured CUDA graph per batch size.
        stream: torch on CUDA only: the process's CUDA stream number to run on.

    Returns:
        An open :class:`Executor`; close it, or use it as a context manager.

    Raises:
        ExecutorError: unknown backend or device, an option the backend lacks, or anything the
            backend refuses (see :class:`OnnxExecutor`, :class:`TorchExecutor`).
        UnknownNameError: ``model`` is neither a path nor a zoo name.
        DependencyNotInstalled: the backend's library is missing.
    """
    if backend not in BACKENDS:
        raise ExecutorError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    parse_device(device, BACKENDS[backend], backend)
    path = _as_path(model)
    if backend == "torch":
        if path is not None:
            raise ExecutorError(
                f"backend 'torch' runs zoo models, not files; got {str(model)!r}; "
                "open ONNX files with backend='onnxruntime'"
            )
        return TorchExecutor(
            str(model),
            device=device,
            threads=threads,
            cpus=cpus,
            cuda_graph=cuda_graph,
            stream=stream,
        )
    if cuda_graph:
        raise ExecutorError(
            "cuda_graph=True needs backend='torch'; ONNX Runtime sessions run without it"
        )
    if stream is not None:
        raise ExecutorError(
            f"stream={stream!r} needs backend='torch'; each ONNX Runtime session manages its "
            "own CUDA stream"
        )
    name = None
    if path is None:
        name = str(model)
        path = _export(name)
    return OnnxExecutor(path, device=device, threads=threads, cpus=cpus, name=name)


def _as_path(model: str | Path) -> Path | None:
    """``model`` as a path when it is one (Path, ``*.onnx``, or with a separator), else None."""
    if isinstance(model, Path):
        return model
    if not isinstance(model, str):
        raise ExecutorError(
            f"model must be a path to an ONNX file or a zoo name; got {type(model).__name__}"
        )
    seps = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    if model.lower().endswith(".onnx") or any(s in model for s in seps):
        return Path(model)
    return None


def _export(name: str) -> Path:
    """The cached ONNX export of zoo model ``name``.

    Raises:
        UnknownNameError: ``name`` is not a zoo name.
        DependencyNotInstalled: the exporter's dependencies (torch, onnx) are missing.
    """
    from edgesched.zoo.registry import entry

    entry(name)  # an unknown name fails here, before anything heavy is imported
    try:
        from edgesched.zoo.export import export_onnx
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if not missing or missing == "edgesched":
            raise
        raise DependencyNotInstalled(missing, "zoo") from None
    return export_onnx(name)


__all__ = [
    "BACKENDS",
    "Executor",
    "ExecutorError",
    "OnnxExecutor",
    "TorchExecutor",
    "available_cpus",
    "open_executor",
    "pin_process",
]
