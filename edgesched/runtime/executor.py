"""The executor contract: one loaded model instance that runs float32 batches.

The profiler times executors now and the serving workers will call them later, so both see one
interface whatever runs the model (:mod:`edgesched.runtime.onnx_backend`,
:mod:`edgesched.runtime.torch_backend`). The base class checks every batch once, cheaply, and
leaves the work to a backend's :meth:`Executor._run`; it also owns CPU pinning, so that closing an
executor gives the process its CPUs back.
"""

from __future__ import annotations

import platform
import socket
from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import numpy as np

from edgesched.runtime.affinity import available_cpus, pin_process
from edgesched.runtime.errors import ExecutorError

Shape = tuple[int | None, ...]


class Executor(ABC):
    """One model instance on one device, with its threads and CPUs.

    Subclasses load the model in ``__init__`` (after calling ``super().__init__``, which pins the
    process, then :meth:`_set_input`) and implement :meth:`_run`, :meth:`_describe` and
    :meth:`_close`. An executor is not thread-safe: one caller runs it at a time. CPU affinity and,
    for PyTorch, the intra-op thread count belong to the whole process, so independent
    applications sharing a device each get their own process with one executor in it.

    Raises:
        ExecutorError: from the constructor when the model, device, threads or CPUs cannot be
            used, and from :meth:`run` when a batch does not fit the model.
    """

    def __init__(self, model: str, *, cpus: Sequence[int] | None = None) -> None:
        """Name the model and pin the process to ``cpus`` (None: leave the affinity alone).

        Raises:
            ExecutorError: ``cpus`` cannot be used (see :func:`~edgesched.runtime.pin_process`).
        """
        self._model = model
        self._input_name = "input"
        self._input_shape: Shape = ()
        self._max_batch: int | None = None
        self._closed = False
        self._saved_affinity: list[int] | None = None
        if cpus is not None:
            saved = available_cpus()
            pin_process(cpus)
            self._saved_affinity = saved

    def _set_input(self, name: str, shape: Shape, max_batch: int | None) -> None:
        """Record the input that :meth:`run` checks batches against (subclasses call it once).

        Args:
            name: the model's input name, for messages.
            shape: one sample; None where the model takes any size.
            max_batch: the batch size the model is fixed to, or None when it is dynamic.
        """
        self._input_name = name
        self._input_shape = tuple(shape)
        self._max_batch = max_batch

    # -- what every executor reports -------------------------------------------------------------

    @property
    @abstractmethod
    def backend(self) -> str:
        """``onnxruntime`` or ``torch``."""

    @property
    @abstractmethod
    def provider(self) -> str:
        """What runs the model within the backend.

        ONNX Runtime's execution provider (``CPUExecutionProvider``, ``CUDAExecutionProvider``,
        ``TensorrtExecutionProvider``) or PyTorch's ``cpu``, ``cuda`` or ``cuda-graph``.
        """

    @property
    def model(self) -> str:
        """The zoo name, or the path of the ONNX file as given, or the module's name."""
        return self._model

    @property
    def input_shape(self) -> Shape:
        """One sample's shape, read from the model; None marks a dimension of any size."""
        return self._input_shape

    @property
    def max_batch(self) -> int | None:
        """The batch size the model is fixed to (it takes exactly that), or None when dynamic."""
        return self._max_batch

    # -- running ---------------------------------------------------------------------------------

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run one batch and return the model's outputs, in the model's order, on the host.

        Args:
            batch: float32 array of shape ``(B, *input_shape)``.

        Returns:
            One array per model output, each with first dimension ``B`` for usual models. The
            arrays are the caller's: later runs do not overwrite them.

        Raises:
            ExecutorError: the executor is closed, ``batch`` is not a float32 array of the
                model's input shape, or the model cannot take ``B`` samples.
        """
        if self._closed:
            raise ExecutorError(f"the executor of model {self._model} is closed; open a new one")
        if not isinstance(batch, np.ndarray) or batch.dtype != np.float32:
            got = batch.dtype if isinstance(batch, np.ndarray) else type(batch).__name__
            raise ExecutorError(
                f"model {self._model} takes a float32 numpy array; got {got} "
                "(convert with np.asarray(batch, dtype=np.float32))"
            )
        shape = batch.shape
        if shape[1:] != self._input_shape and not _fits(shape, self._input_shape):
            raise ExecutorError(
                f"model {self._model} takes input of shape {self._expected()}; got {shape}"
            )
        size = shape[0]
        if size < 1:
            raise ExecutorError(
                f"model {self._model} got an empty batch {shape}; pass at least one sample"
            )
        if self._max_batch is not None and size != self._max_batch:
            raise ExecutorError(
                f"model {self._model} takes batch size {self._max_batch} only (its input "
                f"{self._input_name!r} has a fixed first dimension); got {size}; "
                "export it with a dynamic batch axis to run other sizes"
            )
        if not batch.flags.c_contiguous:
            batch = np.ascontiguousarray(batch)
        return self._run(batch)

    def warmup(self, batch_size: int, runs: int = 3) -> None:
        """Run ``runs`` batches of ``batch_size`` random samples and drop the results.

        Call it before timing: the first runs pay for lazy initialisation, kernel selection and,
        with CUDA graphs, the capture for this batch size.

        Args:
            batch_size: samples per batch.
            runs: how many batches.

        Raises:
            ExecutorError: ``batch_size`` is not a positive integer, ``runs`` is negative, the
                model has dimensions of any size (call :meth:`run` with a real batch instead), or
                :meth:`run` refuses the batch.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ExecutorError(f"warmup batch_size must be a positive integer; got {batch_size!r}")
        if isinstance(runs, bool) or not isinstance(runs, int) or runs < 0:
            raise ExecutorError(f"warmup runs must be a non-negative integer; got {runs!r}")
        if any(d is None for d in self._input_shape):
            raise ExecutorError(
                f"model {self._model} takes input of shape {self._expected()} with dimensions "
                "of any size; warm it up by calling run() with a batch of the size you will use"
            )
        rng = np.random.default_rng(0)
        batch = rng.standard_normal((batch_size, *self._input_shape), dtype=np.float32)
        for _ in range(runs):
            self.run(batch)

    def describe(self) -> dict[str, Any]:
        """What every measurement taken with this executor must record.

        Returns:
            A JSON-ready dict with ``backend``, ``provider``, ``model``, ``input_shape``,
            ``max_batch``, ``device`` (``cpu``, ``cuda:0``), ``device_name``,
            ``intra_op_threads`` (None: the library's default), ``inter_op_threads``,
            ``cpu_affinity`` (the CPUs the process may use now), ``host`` and ``versions``
            (python, numpy and the backend's libraries), plus backend-specific keys.
        """
        info: dict[str, Any] = {
            "backend": self.backend,
            "provider": self.provider,
            "model": self._model,
            "input_shape": list(self._input_shape),
            "max_batch": self._max_batch,
        }
        extra = self._describe()
        versions = {
            "python": platform.python_version(),
            "numpy": np.__version__,
            **extra.pop("versions", {}),
        }
        info.update(extra)
        info["cpu_affinity"] = available_cpus()
        info["host"] = socket.gethostname()
        info["versions"] = versions
        return info

    def close(self) -> None:
        """Release the model and give the process back the CPUs it had before; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._close()
        finally:
            if self._saved_affinity is not None:
                pin_process(self._saved_affinity)
                self._saved_affinity = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self._model} {self.backend}/{self.provider} {state}>"

    # -- backend hooks ---------------------------------------------------------------------------

    @abstractmethod
    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run a checked, C-contiguous float32 batch; called only by :meth:`run`.

        Must not check the batch again, and must return arrays that later runs do not overwrite.
        """

    @abstractmethod
    def _describe(self) -> dict[str, Any]:
        """Backend-specific :meth:`describe` entries.

        Must hold ``device``, ``device_name``, ``intra_op_threads``, ``inter_op_threads`` and
        ``versions`` (a dict of the backend's library versions). Must work after :meth:`close`.
        """

    @abstractmethod
    def _close(self) -> None:
        """Release the backend's resources; called once, also on a half-built executor."""

    def _expected(self) -> str:
        """The accepted batch shape for messages, such as ``(B, 3, 224, 224)``."""
        first = "B" if self._max_batch is None else str(self._max_batch)
        dims = ", ".join("?" if d is None else str(d) for d in self._input_shape)
        return f"({first}, {dims})" if dims else f"({first},)"


def _fits(shape: tuple[int, ...], sample: Shape) -> bool:
    """Whether a batch of ``shape`` matches ``sample`` (None dims match any size)."""
    return len(shape) == len(sample) + 1 and all(
        want is None or want == got for want, got in zip(sample, shape[1:], strict=True)
    )


def check_threads(threads: int | None, cpus: Sequence[int] | None) -> int | None:
    """The intra-op thread count to use: ``threads``, else one per CPU in ``cpus``, else None.

    Raises:
        ExecutorError: ``threads`` is not a positive integer.
    """
    if threads is None:
        return len(set(cpus)) if isinstance(cpus, Sequence) and cpus else None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ExecutorError(f"threads must be a positive integer or None; got {threads!r}")
    return threads


__all__ = ["Executor", "Shape", "check_threads"]
