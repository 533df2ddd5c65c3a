"""ONNX Runtime executors: one ``InferenceSession`` per model instance.

Sessions use ``intra_op_num_threads`` threads inside each operator, one inter-op thread,
sequential execution and every graph optimisation (``ORT_ENABLE_ALL``), the settings ONNX
Runtime's threading guide names for latency on CPU. The execution provider follows the device:
``cpu`` → ``CPUExecutionProvider``; ``cuda`` → ``CUDAExecutionProvider`` (CPU for operators it
lacks); ``tensorrt`` → ``TensorrtExecutionProvider`` then CUDA then CPU. onnxruntime is imported
only when a session is opened.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgesched.errors import DependencyNotInstalled
from edgesched.runtime._device import cpu_name, device_label, gpu_name, parse_device
from edgesched.runtime.errors import ExecutorError
from edgesched.runtime.executor import Executor, check_threads

#: Device kinds this backend runs on, and the execution provider each one asks for.
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
_INSTALL_HINT = {
    "cpu": "reinstall onnxruntime",
    "cuda": "install onnxruntime-gpu (and CUDA/cuDNN) or use device='cpu'",
    "tensorrt": "install onnxruntime-gpu with TensorRT, or use device='cuda' or 'cpu'",
}


def session_options(ort: Any, threads: int | None) -> Any:
    """The session options of every executor: ``threads`` intra-op threads (None: the library's
    default), one inter-op thread, sequential execution, all graph optimisations, errors-only
    logging (a provider fallback is checked by the executor)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


class OnnxExecutor(Executor):
    """An ONNX file run by an ONNX Runtime session.

    Attributes:
        path: the ONNX file.

    Raises:
        ExecutorError: the device is unknown or its execution provider is missing, the file is
            missing or not a loadable ONNX model, the model has more than one input or a
            non-float input, ``threads`` is not a positive integer, or ``cpus`` cannot be used.
        DependencyNotInstalled: onnxruntime is missing.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        device: str = "cpu",
        threads: int | None = None,
        cpus: Sequence[int] | None = None,
        name: str | None = None,
        provider_options: dict[str, Any] | None = None,
    ) -> None:
        """Open a session for ``path``.

        Args:
            path: the ONNX file.
            device: ``cpu``, ``cuda``, ``cuda:N``, ``tensorrt`` or ``tensorrt:N``.
            threads: intra-op threads of this session. None: one per CPU of ``cpus`` when given,
                else ONNX Runtime's default (one per physical core, with its own thread
                affinity, which does not mix well with pinning).
            cpus: pin the whole process to these logical CPUs before the session (and its thread
                pool) is created; restored by :meth:`close`. One executor per process.
            name: what :attr:`model` reports (default: ``path`` as given), e.g. a zoo name.
            provider_options: extra options for the device's execution provider (such as
                TensorRT's ``trt_engine_cache_enable``); ``device_id`` comes from ``device``.
        """
        self.path = Path(path)
        kind, index = parse_device(device, tuple(PROVIDERS), "onnxruntime")
        threads = check_threads(threads, cpus)
        ort = _import_onnxruntime()
        providers = _providers(ort, kind, index, provider_options or {})
        if not self.path.is_file():
            reason = "it is a directory" if self.path.is_dir() else "no such file"
            raise ExecutorError(f"cannot load model {self.path}: {reason}; check the path")
        super().__init__(name or str(path), cpus=cpus)
        self._session: Any = None
        self._device = device_label(kind, index)
        self._kind, self._index = kind, index
        self._threads = threads
        self._version = ort.__version__
        try:
            self._session = self._open(ort, providers)
            self._providers = list(self._session.get_providers())
            self._read_io()
        except BaseException:
            self.close()
            raise

    def _open(self, ort: Any, providers: list[Any]) -> Any:
        """Create the session, refusing one that silently fell back to another provider."""
        options = session_options(ort, self._threads)
        try:
            session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:  # onnxruntime's pybind errors share no base but Exception
            raise ExecutorError(
                f"cannot load model {self.path}: {_reason(exc)}; is it an ONNX file?"
            ) from exc
        wanted = providers[0] if isinstance(providers[0], str) else providers[0][0]
        got = session.get_providers()
        if not got or got[0] != wanted:
            raise ExecutorError(
                f"onnxruntime could not start {wanted} for model {self.path} (it fell back to "
                f"{', '.join(got)}); check that the CUDA, cuDNN and TensorRT libraries match "
                f"onnxruntime {ort.__version__}"
            )
        return session

    def _read_io(self) -> None:
        """Read the single float input (sample shape, batch dimension) and the output names."""
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            names = ", ".join(repr(i.name) for i in inputs)
            raise ExecutorError(
                f"model {self._model} has {len(inputs)} inputs ({names}); "
                "the executor runs models with exactly one input"
            )
        inp = inputs[0]
        if inp.type != "tensor(float)":
            raise ExecutorError(
                f"model {self._model} takes {inp.type} input {inp.name!r}; "
                "the executor feeds float32 (tensor(float)) batches"
            )
        dims = list(inp.shape or [])
        if not dims:
            raise ExecutorError(
                f"model {self._model} input {inp.name!r} has no batch dimension (shape {dims}); "
                "export it with a leading batch axis"
            )
        self._set_input(inp.name, tuple(_static(d) for d in dims[1:]), _static(dims[0]))
        self._outputs = [o.name for o in self._session.get_outputs()]
        self._feed_name = inp.name

    @property
    def backend(self) -> str:
        return "onnxruntime"

    @property
    def provider(self) -> str:
        """The execution provider that runs the model (the first of the session's list)."""
        return self._providers[0]

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        return self._session.run(self._outputs, {self._feed_name: batch})

    def _describe(self) -> dict[str, Any]:
        return {
            "device": self._device,
            "device_name": _hardware_name(self._kind, self._index),
            "intra_op_threads": self._threads,
            "inter_op_threads": 1,
            "execution_mode": "sequential",
            "graph_optimization": "all",
            "providers": list(self._providers),
            "model_path": str(self.path),
            "versions": {"onnxruntime": self._version},
        }

    def _close(self) -> None:
        self._session = None


def _import_onnxruntime() -> Any:
    """The onnxruntime module, or DependencyNotInstalled naming the ``zoo`` extra."""
    try:
        import onnxruntime
    except ImportError:
        raise DependencyNotInstalled("onnxruntime", "zoo") from None
    return onnxruntime


def _providers(ort: Any, kind: str, index: int, options: dict[str, Any]) -> list[Any]:
    """The provider list for a device kind, checked against the providers this build has.

    Raises:
        ExecutorError: the device's provider is not available, naming the ones that are.
    """
    wanted = PROVIDERS[kind]
    available = ort.get_available_providers()
    if wanted not in available:
        raise ExecutorError(
            f"device {kind!r} needs onnxruntime's {wanted}, which this installation lacks "
            f"(available: {', '.join(available)}); {_INSTALL_HINT[kind]}"
        )
    if kind == "cpu":
        return [(wanted, options)] if options else [wanted]
    chain: list[Any] = [(wanted, {"device_id": index, **options})]
    if kind == "tensorrt" and "CUDAExecutionProvider" in available:
        chain.append(("CUDAExecutionProvider", {"device_id": index}))
    return [*chain, "CPUExecutionProvider"]


def _static(dim: Any) -> int | None:
    """A fixed dimension as an int; None for a symbolic, zero or negative (dynamic) one."""
    return dim if isinstance(dim, int) and dim > 0 else None


def _reason(exc: Exception) -> str:
    """onnxruntime's message on one line, without its ``[ONNXRuntimeError] : 7 :`` prefix."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*", "", text)


def _hardware_name(kind: str, index: int) -> str | None:
    """The CPU's or GPU's name for :meth:`OnnxExecutor.describe`."""
    return cpu_name() if kind == "cpu" else gpu_name(index)


__all__ = ["PROVIDERS", "OnnxExecutor"]
