"""PyTorch executors: a zoo model or a given ``torch.nn.Module`` on the CPU or one CUDA GPU.

Batches run under :func:`torch.inference_mode`. On CUDA an executor can run on its own CUDA
stream (``stream=``), so that several executors in one process overlap on one GPU, and can
replay CUDA graphs (``cuda_graph=True``): one graph per batch size, captured on first use after a
few eager warm-up runs, replayed with static input and output buffers. This removes the per-kernel
launch cost that dominates small batches. torch is imported only when an executor is opened.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgesched.errors import DependencyNotInstalled
from edgesched.runtime._device import cpu_name, device_label, parse_device
from edgesched.runtime.errors import ExecutorError
from edgesched.runtime.executor import Executor, check_threads

#: Eager runs before a CUDA graph is captured (PyTorch's CUDA-graph notes use three): they settle
#: lazy initialisation (cuBLAS/cuDNN handles, kernel selection, allocator) outside the capture.
GRAPH_WARMUP_RUNS = 3

_STREAMS: dict[tuple[int, int], Any] = {}  # (GPU index, stream index) -> torch.cuda.Stream
_STREAMS_LOCK = threading.Lock()


@dataclass
class _Graph:
    """A captured CUDA graph and the static buffers it reads and writes on every replay."""

    graph: Any
    static_input: Any
    static_outputs: list[Any]


class TorchExecutor(Executor):
    """A PyTorch module run eagerly, or as CUDA graphs, on the CPU or one CUDA GPU.

    ``threads`` calls :func:`torch.set_num_threads`, which is process-wide: it changes the thread
    count of every PyTorch executor in the process (:meth:`close` restores the previous one). Give
    each independent application its own process. The module is put in eval mode and moved to the
    device in place.

    Raises:
        ExecutorError: unknown device, CUDA unavailable or a missing GPU index, ``cuda_graph`` or
            ``stream`` without a CUDA device, a module without ``input_shape``, bad ``threads``
            or ``cpus``; from :meth:`run`, a model whose CUDA graph cannot be captured or whose
            output is not made of tensors.
        UnknownNameError: ``model`` is a string that is not a zoo name.
        DependencyNotInstalled: torch (or torchvision, for zoo models) is missing.
    """

    def __init__(
        self,
        model: str | Any,
        *,
        input_shape: Sequence[int] | None = None,
        device: str = "cpu",
        threads: int | None = None,
        cpus: Sequence[int] | None = None,
        cuda_graph: bool = False,
        stream: int | None = None,
        name: str | None = None,
    ) -> None:
        """Build (zoo name) or take (module) the model and move it to ``device``.

        Args:
            model: a zoo name (built with random weights by :mod:`edgesched.zoo.registry`) or a
                ``torch.nn.Module``.
            input_shape: one sample's shape; required for a module, default for a zoo name: the
                zoo entry's.
            device: ``cpu``, ``cuda`` or ``cuda:N``.
            threads: intra-op threads (:func:`torch.set_num_threads`, process-wide). None: one
                per CPU of ``cpus`` when given, else leave PyTorch's setting alone.
            cpus: pin the whole process to these logical CPUs; restored by :meth:`close`. One
                executor per process.
            cuda_graph: capture and replay one CUDA graph per batch size (needs ``device=cuda``).
                Each graph keeps its own GPU memory, so use it for a few small batch sizes.
            stream: run on CUDA stream number ``stream`` of this process (needs
                ``device=cuda``). Executors given different numbers run on different streams and
                can overlap; executors given the same number share one stream, so their work is
                serialised. None: the current stream of the calling thread.
            name: what :attr:`model` reports (default: the zoo name or the module's class name).
        """
        kind, index = parse_device(device, ("cpu", "cuda"), "torch")
        if cuda_graph and kind != "cuda":
            raise ExecutorError(
                f"CUDA graphs need device=cuda; got device={device!r} "
                "(drop cuda_graph=True to run eagerly on the CPU)"
            )
        if stream is not None:
            if kind != "cuda":
                raise ExecutorError(
                    f"CUDA streams need device=cuda; got device={device!r} with stream={stream!r}"
                )
            if isinstance(stream, bool) or not isinstance(stream, int) or stream < 0:
                raise ExecutorError(
                    f"stream must be a stream number (int >= 0) or None; got {stream!r}"
                )
        threads = check_threads(threads, cpus)
        torch = _import_torch()
        if kind == "cuda":
            _check_cuda(torch, device, index)
        label, shape, build = _resolve(torch, model, input_shape, name)
        super().__init__(label, cpus=cpus)
        self._torch = torch
        self._kind, self._index = kind, index
        self._cuda_graph = cuda_graph
        self._stream_index = stream
        self._graphs: dict[int, _Graph] = {}
        self._module: Any = None
        self._saved_threads: int | None = None
        self._device_name = torch.cuda.get_device_name(index) if kind == "cuda" else cpu_name()
        try:
            if threads is not None:
                self._saved_threads = torch.get_num_threads()
                torch.set_num_threads(threads)
            self._device = torch.device(kind, index) if kind == "cuda" else torch.device("cpu")
            self._module = build().eval().to(self._device)
            self._stream = _shared_stream(torch, index, stream) if stream is not None else None
            if kind == "cuda":
                torch.cuda.synchronize(self._device)  # weights copied before any stream uses them
            self._set_input("input", shape, None)
        except BaseException:
            self.close()
            raise

    @property
    def backend(self) -> str:
        return "torch"

    @property
    def provider(self) -> str:
        """``cpu``, ``cuda`` or ``cuda-graph``."""
        if self._kind == "cpu":
            return "cpu"
        return "cuda-graph" if self._cuda_graph else "cuda"

    @property
    def module(self) -> Any:
        """The ``torch.nn.Module`` being run (None once closed)."""
        return self._module

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            if self._kind == "cpu":
                out = self._module(torch.from_numpy(batch))
                return [t.detach().numpy() for t in _flatten(torch, out, self._model)]
            return self._run_cuda(batch)

    def _run_cuda(self, batch: np.ndarray) -> list[np.ndarray]:
        """Copy in, run eagerly or replay a graph, copy out, all on one stream, then sync it."""
        torch = self._torch
        stream = (
            self._stream if self._stream is not None else torch.cuda.current_stream(self._device)
        )
        with torch.cuda.stream(stream):  # also makes this executor's GPU the current device
            if self._cuda_graph:
                outputs = self._replay(batch)
            else:
                x = torch.from_numpy(batch).to(self._device, non_blocking=True)
                outputs = _flatten(torch, self._module(x), self._model)
            # non_blocking device->host copies land in fresh pinned tensors; new tensors each
            # call, so the next replay cannot overwrite what the caller holds.
            host = [t.to("cpu", non_blocking=True) for t in outputs]
        stream.synchronize()  # the copies above are complete only after this
        return [t.numpy() for t in host]

    def _replay(self, batch: np.ndarray) -> list[Any]:
        """Fill the static input of this batch size's graph (captured now if new) and replay it.

        Runs inside the executor's stream context; the outputs are the graph's static buffers,
        valid until the next replay of the same graph.
        """
        size = batch.shape[0]
        entry = self._graphs.get(size)
        if entry is None:
            entry = self._graphs[size] = self._capture(size)
        # Host->device copy from pageable memory: the source may be reused once it returns.
        entry.static_input.copy_(self._torch.from_numpy(batch), non_blocking=True)
        entry.graph.replay()
        return entry.static_outputs

    def _capture(self, size: int) -> _Graph:
        """Warm up eagerly on a private side stream, then capture one graph for ``size`` samples.

        The capture uses a stream of its own, never the executor's (maybe shared) stream, so no
        other executor's work can be recorded into it; ``thread_local`` capture mode lets other
        threads keep using CUDA meanwhile. ``torch.cuda.graph`` synchronises the whole device
        once when the capture starts. The graph is later replayed on the executor's stream.

        Raises:
            ExecutorError: the model cannot be captured (CPU synchronisation, data-dependent
                shapes or control flow inside ``forward``).
        """
        torch = self._torch
        device = self._device
        static_input = torch.zeros((size, *self._input_shape), device=device)
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))  # static_input is zeroed first
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP_RUNS):
                self._module(static_input)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, stream=side, capture_error_mode="thread_local"):
                static_outputs = _flatten(torch, self._module(static_input), self._model)
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExecutorError(
                f"cannot capture a CUDA graph of model {self._model} at batch size {size}: "
                f"{reason}; run it with cuda_graph=False"
            ) from exc
        return _Graph(graph, static_input, static_outputs)

    def _describe(self) -> dict[str, Any]:
        torch = self._torch
        versions = {"torch": torch.__version__}
        torchvision = sys.modules.get("torchvision")
        if torchvision is not None:
            versions["torchvision"] = torchvision.__version__
        if self._kind == "cuda":
            versions["cuda"] = torch.version.cuda
            versions["cudnn"] = torch.backends.cudnn.version()
        return {
            "device": device_label(self._kind, self._index),
            "device_name": self._device_name,
            "intra_op_threads": torch.get_num_threads(),
            "inter_op_threads": torch.get_num_interop_threads(),
            "stream": self._stream_index,
            "cuda_graph": self._cuda_graph,
            "graph_batch_sizes": sorted(self._graphs),
            "versions": versions,
        }

    def _close(self) -> None:
        self._graphs.clear()
        self._module = None
        if self._saved_threads is not None:
            self._torch.set_num_threads(self._saved_threads)
            self._saved_threads = None


def _import_torch() -> Any:
    """The torch module, or DependencyNotInstalled naming the ``zoo`` extra."""
    try:
        import torch
    except ImportError:
        raise DependencyNotInstalled("torch", "zoo") from None
    return torch


def _check_cuda(torch: Any, device: str, index: int) -> None:
    """Refuse a CUDA device that this machine (or this torch build) does not have."""
    if not torch.cuda.is_available():
        raise ExecutorError(
            f"device {device!r} needs a CUDA GPU, but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}); "
            "use device='cpu'"
        )
    count = torch.cuda.device_count()
    if index >= count:
        raise ExecutorError(
            f"device {device!r} does not exist: this machine has {count} CUDA GPU(s), "
            f"cuda:0 to cuda:{count - 1}"
        )


def _resolve(
    torch: Any, model: Any, input_shape: Sequence[int] | None, name: str | None
) -> tuple[str, tuple[int, ...], Callable[[], Any]]:
    """The model's label, sample shape and a function returning the module.

    Raises:
        UnknownNameError: ``model`` is a string that is not a zoo name.
        ExecutorError: a module without ``input_shape``, a bad shape, or neither a name nor a
            module.
    """
    if isinstance(model, str):
        from edgesched.zoo.registry import entry

        zoo = entry(model)
        shape = _checked_shape(input_shape if input_shape is not None else zoo.input_shape, model)
        return name or model, shape, zoo.build
    if isinstance(model, torch.nn.Module):
        label = name or type(model).__name__
        if input_shape is None:
            raise ExecutorError(
                f"model {label} is a torch.nn.Module, whose input shape is unknown; "
                "give input_shape=(C, H, W) (one sample, without the batch dimension)"
            )
        return label, _checked_shape(input_shape, label), lambda: model
    raise ExecutorError(
        f"model must be a zoo name or a torch.nn.Module; got {type(model).__name__} {model!r}"
    )


def _checked_shape(shape: Any, label: str) -> tuple[int, ...]:
    """``shape`` as a tuple of positive ints, or ExecutorError naming the model."""
    try:
        dims = tuple(shape)
    except TypeError:
        dims = None
    if not dims or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
        raise ExecutorError(
            f"input_shape of model {label} must be positive ints such as (3, 224, 224); "
            f"got {shape!r}"
        )
    return dims


def _flatten(torch: Any, out: Any, model: str) -> list[Any]:
    """The tensors of a model's output: a tensor, or nested tuples, lists and dicts of them."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        items = list(out.values())
    elif isinstance(out, list | tuple):
        items = list(out)
    else:
        raise ExecutorError(
            f"model {model} returned {type(out).__name__}; the executor needs a tensor, or "
            "tuples, lists or dicts of tensors"
        )
    return [t for item in items for t in _flatten(torch, item, model)]


def _shared_stream(torch: Any, device_index: int, stream_index: int) -> Any:
    """This process's CUDA stream number ``stream_index`` on GPU ``device_index`` (made once)."""
    with _STREAMS_LOCK:
        stream = _STREAMS.get((device_index, stream_index))
        if stream is None:
            stream = _STREAMS[(device_index, stream_index)] = torch.cuda.Stream(device=device_index)
        return stream


__all__ = ["GRAPH_WARMUP_RUNS", "TorchExecutor"]
