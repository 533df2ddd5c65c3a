"""What every node worker shares: the request types and errors, and :class:`BaseNodeWorker`.

:class:`BaseNodeWorker` holds the state and logic common to
:class:`~edgesched.serve.worker.NodeWorker` (a child OS process per node) and
:class:`~edgesched.serve.ray_worker.RayNodeWorker` (a Ray actor per node): the argument checks,
the :meth:`~BaseNodeWorker.submit` gate, the requests pending and waiting for a restart,
draining on close, failing requests with :class:`WorkerDied` (ARCHITECTURE.md §9: no accepted
request vanishes) and the restart budget (``max_restarts`` within ``restart_window_s``). A
subclass supplies the transport: how the instances start, how a request is sent and answered,
and how they stop.

A worker's states: ``new`` → ``starting`` → ``up`` ⇄ ``restarting`` → ``down``; ``closed`` from
any of them. Requests submitted while ``restarting`` wait in a backlog and are sent once the
instances are back.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import numpy as np

from edgesched.errors import EdgeschedError, UnknownNameError


class WorkerError(EdgeschedError):
    """A worker could not load its models, or one request failed; the message says why."""


class WorkerDied(WorkerError):
    """The worker's process died (or the worker closed) before answering; retry elsewhere.

    Attributes:
        node_id: the node whose worker died.
        lost: how many requests were in flight and lost with it (this one included).
    """

    def __init__(self, node_id: str, lost: int, reason: str) -> None:
        super().__init__(
            f"worker of node {node_id!r} {reason}; {lost} request(s) lost in flight; "
            "retry them on another node"
        )
        self.node_id = node_id
        self.lost = lost


class WorkerFuture(Future):
    """The future of one request; ``exec_s`` is set before it resolves with outputs.

    Attributes:
        exec_s: seconds the executor ran the batch, measured where it ran (None on error), so
            that the caller can tell model execution time from queueing and transport overhead.
    """

    exec_s: float | None = None


@dataclass(frozen=True)
class ModelInfo:
    """What a worker reports about one model it serves.

    Attributes:
        input_shape: one sample's shape; None marks a dimension of any size.
        datatype: the KServe v2 datatype of the input (always ``FP32``).
        max_batch: the largest batch accepted (the model's fixed batch, else the worker's
            ``max_batch``), None for no limit.
        instances: concurrent instances of the model.
        executor: the first instance's :meth:`~edgesched.runtime.Executor.describe`.
    """

    input_shape: tuple[int | None, ...]
    max_batch: int | None
    instances: int
    executor: dict[str, Any]
    datatype: str = "FP32"


class BaseNodeWorker(ABC):
    """The model instances of one node behind one transport (see the module docstring).

    Thread-safe: any thread may :meth:`submit`. Use it as a context manager, or call :meth:`close`.
    """

    #: What a submit to a worker that is down says (a subclass may say why, once it knows).
    _down = "is down"

    def __init__(
        self,
        node_id: str,
        models: Mapping[str, int],
        *,
        backend: str = "onnxruntime",
        device: str = "cpu",
        threads: int | None = None,
        cpus: Sequence[int] | None = None,
        max_batch: int | None = None,
        max_restarts: int = 3,
        restart_window_s: float = 60.0,
    ) -> None:
        """Describe the worker; :meth:`start` starts its model instances.

        Args:
            node_id: the node's name, for messages.
            models: model (zoo name or ``.onnx`` path, valid where the instances run) → number
                of concurrent instances (≥ 1).
            backend: ``onnxruntime`` or ``torch`` (see :func:`~edgesched.runtime.open_executor`).
            device: ``cpu``, ``cuda``, ``cuda:N``, ``tensorrt``.
            threads: intra-op threads per instance; None: one per CPU of ``cpus`` when given,
                else the backend's default.
            cpus: logical CPUs the instances' process is pinned to; None: leave its affinity
                alone.
            max_batch: largest batch a request may carry (None: any the model takes).
            max_restarts: restarts allowed within ``restart_window_s`` seconds before the
                worker stays down (our choice, like supervisors' default of a few per minute).
            restart_window_s: the window of ``max_restarts``, in seconds.

        Raises:
            WorkerError: ``models`` is empty, a count is not a positive integer, or
                ``max_batch`` is below 1.
        """
        if not models:
            raise WorkerError(f"node {node_id!r}: give at least one model to serve")
        for model, count in models.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise WorkerError(
                    f"node {node_id!r}: instances of model {model!r} must be a positive "
                    f"integer; got {count!r}"
                )
        if max_batch is not None and (isinstance(max_batch, bool) or max_batch < 1):
            raise WorkerError(f"node {node_id!r}: max_batch must be ≥ 1 or None; got {max_batch!r}")
        self.node_id = node_id
        self._models = {str(m): int(c) for m, c in models.items()}
        self._opts = {
            "backend": backend,
            "device": device,
            "threads": threads,
            "cpus": list(cpus) if cpus is not None else None,
            "max_batch": max_batch,
        }
        self._max_restarts = max_restarts
        self._window_s = restart_window_s
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._ids = itertools.count()
        self._pending: dict[int, WorkerFuture] = {}  # sent, not answered yet
        self._held: dict[int, Any] = {}  # request id → what it holds until answered (see _free)
        self._backlog: list[tuple[int, str, np.ndarray, WorkerFuture]] = []  # for the restart
        self._restart_times: collections.deque[float] = collections.deque()
        self._state = "new"  # new → starting → up ⇄ restarting → down; closed
        self._closing = False
        self._infos: dict[str, ModelInfo] = {}
        self._start_timeout_s = 120.0
        self.restarts = 0

    # -- lifecycle -------------------------------------------------------------------------------

    @abstractmethod
    def start(self, timeout_s: float = 120.0) -> Self:
        """Start the model instances and wait until every model is loaded and warm."""

    def close(self, drain: bool = True, timeout_s: float = 30.0) -> None:
        """Stop accepting, let in-flight requests finish (``drain``), then stop the instances.

        Requests still unanswered afterwards (``drain=False``, or the timeout passed) fail with
        :class:`WorkerDied`. Idempotent.

        Args:
            drain: wait for the requests in flight before stopping.
            timeout_s: the most seconds to wait for them, and again for the instances to stop.
        """
        with self._lock:
            if self._state == "closed":
                return
            self._closing = True  # submit refuses from here on
            if drain and self._state != "new":
                self._idle.wait_for(lambda: not self._pending and not self._backlog, timeout_s)
            self._state = "closed"
        self._stop(timeout_s)
        self._fail_all("was closed before answering")

    def __enter__(self) -> Self:
        return self if self._state != "new" else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _begin_start(self, timeout_s: float) -> None:
        """Move from ``new`` to ``starting``; WorkerError if the worker was started or closed."""
        with self._lock:
            if self._state != "new":
                raise WorkerError(f"worker of node {self.node_id!r} is already {self._state}")
            self._state = "starting"
        self._start_timeout_s = timeout_s

    def _go_down(self) -> None:
        """Stay down from now on (unless closed meanwhile): every submit fails at once."""
        with self._lock:
            if self._state != "closed":
                self._state = "down"

    def _may_restart(self) -> bool:
        """Whether the restart budget allows a restart now, and if so count it (lock held)."""
        now = time.monotonic()
        while self._restart_times and now - self._restart_times[0] > self._window_s:
            self._restart_times.popleft()
        retry = not self._closing and len(self._restart_times) < self._max_restarts
        if retry:
            self._restart_times.append(now)
        return retry

    def _resume(self) -> list[tuple[int, str, np.ndarray, WorkerFuture]]:
        """Be up again after a restart: count it, and make the requests that waited pending;
        return them, to be sent (lock held)."""
        self._state = "up"
        self.restarts += 1
        backlog, self._backlog = self._backlog, []
        self._pending.update((rid, fut) for rid, _, _, fut in backlog)
        return backlog

    # -- requests --------------------------------------------------------------------------------

    def submit(self, model: str, batch: np.ndarray) -> WorkerFuture:
        """Send one batch for ``model`` to its instances; never raises for a bad request.

        Args:
            model: a model this worker serves, as named in ``models``.
            batch: float32 array of shape ``(B, *input_shape)``.

        Returns:
            A :class:`WorkerFuture` resolving to the model's outputs (``exec_s`` set first), or
            failing with :class:`WorkerError` (bad request, with the instance's one-line reason;
            worker closed) or :class:`WorkerDied` (lost in flight, or the worker is down: retry
            elsewhere). Unknown models and non-arrays fail at once, without a round trip.
        """
        fut = WorkerFuture()
        fut.set_running_or_notify_cancel()  # not cancellable: it is sent at once
        if model not in self._models:
            known = UnknownNameError("model", str(model), self._models)
            fut.set_exception(WorkerError(f"node {self.node_id!r}: {known}"))
            return fut
        if not isinstance(batch, np.ndarray):
            fut.set_exception(
                WorkerError(
                    f"node {self.node_id!r}: model {model} takes a numpy array; "
                    f"got {type(batch).__name__}"
                )
            )
            return fut
        rid = next(self._ids)
        with self._lock:
            state = self._state
            if self._closing or state in ("new", "starting", "closed"):
                why = "is closed" if self._closing else "is not started; call start()"
                fut.set_exception(WorkerError(f"worker of node {self.node_id!r} {why}"))
                return fut
            if state == "down":
                fut.set_exception(WorkerDied(self.node_id, 1, self._down))
                return fut
            if state == "restarting":
                self._backlog.append((rid, model, batch, fut))
                return fut
            self._pending[rid] = fut
            route = self._route()
        self._send(route, rid, model, batch, fut)
        return fut

    def _pop(self, rid: int) -> WorkerFuture | None:
        """Take request ``rid`` off pending (its future, None if it is not) and free its hold."""
        with self._lock:
            fut = self._pending.pop(rid, None)
            held = self._held.pop(rid, None)
            if not self._pending and not self._backlog:
                self._idle.notify_all()
        if held is not None:
            self._free(held)
        return fut

    def _unsent(self, rid: int, fut: WorkerFuture, exc: Exception) -> None:
        """Fail request ``rid``, of which nothing was sent (e.g. it does not serialise)."""
        if self._pop(rid) is not None:
            fut.set_exception(WorkerError(f"node {self.node_id!r}: cannot send: {exc}"))

    def _release_held(self) -> None:
        """Free what every request sent holds (once the instances died or stopped)."""
        with self._lock:
            held, self._held = list(self._held.values()), {}
        for item in held:
            self._free(item)

    def _fail_all(self, reason: str) -> None:
        """Fail every request still pending or waiting with WorkerDied (``reason`` in it)."""
        with self._lock:
            lost = list(self._pending.values()) + [f for *_, f in self._backlog]
            self._pending, self._backlog = {}, []
            self._idle.notify_all()
        self._release_held()
        for fut in lost:
            fut.set_exception(WorkerDied(self.node_id, len(lost), reason))

    # -- state -----------------------------------------------------------------------------------

    def info(self) -> dict[str, ModelInfo]:
        """Each served model's input shape, datatype, max batch, instances and executor."""
        return dict(self._infos)

    @property
    def in_flight(self) -> int:
        """Requests submitted and not yet answered (waiting for a restart included)."""
        with self._lock:
            return len(self._pending) + len(self._backlog)

    @property
    @abstractmethod
    def alive(self) -> bool:
        """Whether the instances are up and taking requests."""

    @property
    @abstractmethod
    def pid(self) -> int | None:
        """The id of the instances' process (None before start)."""

    @property
    def models(self) -> list[str]:
        """The models served, as named in ``models``."""
        return list(self._models)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.node_id} {self._state} {self._placement()} "
            f"models={self.models}>"
        )

    # -- the transport ---------------------------------------------------------------------------

    @abstractmethod
    def _route(self) -> Any:
        """What :meth:`_send` sends requests over while the worker is up (lock held)."""

    @abstractmethod
    def _send(self, route: Any, rid: int, model: str, batch: np.ndarray, fut: WorkerFuture) -> None:
        """Send request ``rid``, already pending, over ``route``; resolve ``fut`` on the reply
        (through :meth:`_pop`), or call :meth:`_unsent` if nothing could be sent."""

    @abstractmethod
    def _free(self, held: Any) -> None:
        """Release what a request held (``_held``) once it is answered or lost."""

    @abstractmethod
    def _stop(self, timeout_s: float) -> None:
        """Stop the instances of the closed worker, waiting up to ``timeout_s`` seconds."""

    @abstractmethod
    def _placement(self) -> str:
        """Where the instances run, for :func:`repr` (e.g. ``pid=123``)."""


__all__ = ["BaseNodeWorker", "ModelInfo", "WorkerDied", "WorkerError", "WorkerFuture"]
