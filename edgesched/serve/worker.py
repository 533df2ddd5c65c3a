"""The serving worker of one node: its model instances in one child OS process.

A :class:`NodeWorker` spawns one child process (the ``spawn`` context, so CUDA works there) that
pins itself to the node's CPUs and runs each model's instances on threads pulling from that
model's FIFO queue (:mod:`edgesched.serve._worker_child`). The parent sends requests over one
Pipe and a single reader thread resolves their futures. Numpy arrays cross the pipe as they are;
no process or thread is created per request.

Faults (ARCHITECTURE.md §9: no accepted request vanishes): when the child dies, every request in
flight fails with :class:`WorkerDied`, which names the node and how many were lost, so the caller
can retry them elsewhere. The worker then restarts the child; requests submitted meanwhile wait
and are sent to the new child. After ``max_restarts`` restarts within ``restart_window_s`` the
worker stays down and every submit fails at once with :class:`WorkerDied`.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import multiprocessing as mp
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import numpy as np

from edgesched.errors import EdgeschedError, UnknownNameError
from edgesched.serve._shm import MIN_SHARED_BYTES, BlockPool
from edgesched.serve._worker_child import child_main

log = logging.getLogger("edgesched.serve")


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
        exec_s: seconds the executor ran the batch, measured in the child (None on error), so
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


class NodeWorker:
    """The model instances of one node, in one child process (see the module docstring).

    Thread-safe: any thread may :meth:`submit`. Use it as a context manager, or call :meth:`close`.
    """

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
        """Describe the worker; :meth:`start` spawns it.

        Args:
            node_id: the node's name, for messages.
            models: model (zoo name or ``.onnx`` path) → number of concurrent instances (≥ 1).
            backend: ``onnxruntime`` or ``torch`` (see :func:`~edgesched.runtime.open_executor`).
            device: ``cpu``, ``cuda``, ``cuda:N``, ``tensorrt``.
            threads: intra-op threads per instance; None: one per CPU of ``cpus`` when given,
                else the backend's default.
            cpus: logical CPUs the child process is pinned to; None: leave its affinity alone.
            max_batch: largest batch a request may carry (None: any the model takes).
            max_restarts: restarts allowed within ``restart_window_s`` seconds before the
                worker stays down (our choice, like supervisors' default of a few per minute).
            restart_window_s: the window of ``max_restarts``, in seconds.

        Raises:
            WorkerError: ``models`` is empty or a count is not a positive integer.
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
        self._ctx = mp.get_context("spawn")
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._send_lock = threading.Lock()
        self._ids = itertools.count()
        self._pending: dict[int, WorkerFuture] = {}
        self._pool = BlockPool()  # large inputs travel through shared memory
        self._blocks: dict[int, Any] = {}  # request id → its input's block
        self._backlog: list[tuple[int, str, np.ndarray, WorkerFuture]] = []
        self._restart_times: collections.deque[float] = collections.deque()
        self._state = "new"  # new → up ⇄ restarting → down; closed
        self._closing = False
        self._proc: Any = None
        self._conn: Any = None
        self._reader: threading.Thread | None = None
        self._infos: dict[str, ModelInfo] = {}
        self._start_timeout_s = 120.0
        self.restarts = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, timeout_s: float = 120.0) -> Self:
        """Spawn the child and wait until every model is loaded and warm.

        Args:
            timeout_s: how long to wait, in seconds (also used for each automatic restart).

        Returns:
            The worker itself.

        Raises:
            WorkerError: the child could not load a model (the child's one-line reason), died,
                or was not ready within ``timeout_s``; or the worker was started or closed.
        """
        with self._lock:
            if self._state != "new":
                raise WorkerError(f"worker of node {self.node_id!r} is already {self._state}")
            self._state = "starting"
        self._start_timeout_s = timeout_s
        try:
            proc, conn, infos = self._spawn(timeout_s)
        except WorkerError:
            with self._lock:
                self._state = "down"
            raise
        with self._lock:
            self._proc, self._conn, self._state = proc, conn, "up"
            self._infos = {m: ModelInfo(**i) for m, i in infos.items()}
        self._reader = threading.Thread(
            target=self._read_loop, name=f"worker-{self.node_id}-reader", daemon=True
        )
        self._reader.start()
        return self

    def close(self, drain: bool = True, timeout_s: float = 30.0) -> None:
        """Stop accepting, let in-flight requests finish (``drain``), then stop the child.

        Requests still unanswered afterwards (``drain=False``, or the timeout passed) fail with
        :class:`WorkerDied`. Idempotent.

        Args:
            drain: wait for the requests in flight before stopping.
            timeout_s: the most seconds to wait for them, and again for the child to exit.
        """
        with self._lock:
            if self._state == "closed":
                return
            self._closing = True  # submit refuses from here on
            if drain and self._state != "new":
                self._idle.wait_for(lambda: not self._pending and not self._backlog, timeout_s)
            proc, conn = self._proc, self._conn
            self._state = "closed"
        if proc is not None:
            with self._send_lock, contextlib.suppress(OSError, ValueError):
                conn.send(("stop",))
            proc.join(timeout_s)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(5)
        self._fail_all("was closed before answering")
        self._release_blocks()
        self._pool.close()
        if conn is not None:
            conn.close()

    def __enter__(self) -> Self:
        return self if self._state != "new" else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- requests --------------------------------------------------------------------------------

    def submit(self, model: str, batch: np.ndarray) -> WorkerFuture:
        """Queue one batch for ``model``; never raises for a bad request.

        Args:
            model: a model this worker serves, as named in ``models``.
            batch: float32 array of shape ``(B, *input_shape)``.

        Returns:
            A :class:`WorkerFuture` resolving to the model's outputs, or failing with
            :class:`WorkerError` (bad request, with the child's one-line reason; worker closed)
            or :class:`WorkerDied` (lost in flight, or the worker is down: retry elsewhere).
            Unknown models and non-arrays fail at once, without a round trip.
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
                fut.set_exception(WorkerDied(self.node_id, 1, "is down (too many restarts)"))
                return fut
            if state == "restarting":
                self._backlog.append((rid, model, batch, fut))
                return fut
            self._pending[rid] = fut
            conn = self._conn
        self._send(conn, rid, model, batch, fut)
        return fut

    def _message(self, rid: int, model: str, batch: np.ndarray) -> tuple:
        """The request's message: large tensors go into a shared-memory block, named in it."""
        if batch.nbytes < MIN_SHARED_BYTES or batch.dtype.hasobject:
            return ("infer", rid, model, batch)
        block = self._pool.put(batch)
        with self._lock:
            self._blocks[rid] = block
        return ("infer_shm", rid, model, block.name, batch.shape, batch.dtype.str)

    def _send(self, conn: Any, rid: int, model: str, batch: np.ndarray, fut: WorkerFuture) -> None:
        """Send one request; a broken pipe is left to the reader, which fails it."""
        try:
            msg = self._message(rid, model, batch)
            with self._send_lock:
                conn.send(msg)
        except (OSError, ValueError):
            pass  # the child died: the reader fails every pending request
        except Exception as exc:  # does not pickle: nothing was written
            if self._pop(rid) is not None:
                fut.set_exception(WorkerError(f"node {self.node_id!r}: cannot send: {exc}"))

    def _pop(self, rid: int) -> WorkerFuture | None:
        with self._lock:
            fut = self._pending.pop(rid, None)
            block = self._blocks.pop(rid, None)
            if not self._pending and not self._backlog:
                self._idle.notify_all()
        if block is not None:
            self._pool.release(block)
        return fut

    def _release_blocks(self) -> None:
        """Take back the blocks of every request sent (after the child died or closed)."""
        with self._lock:
            blocks, self._blocks = list(self._blocks.values()), {}
        for block in blocks:
            self._pool.release(block)

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
    def alive(self) -> bool:
        """Whether the child is up and taking requests."""
        proc = self._proc
        return self._state == "up" and proc is not None and proc.is_alive()

    @property
    def pid(self) -> int | None:
        """The child process's id (None before start)."""
        return None if self._proc is None else self._proc.pid

    @property
    def models(self) -> list[str]:
        """The models served, as named in ``models``."""
        return list(self._models)

    def __repr__(self) -> str:
        return f"<NodeWorker {self.node_id} {self._state} pid={self.pid} models={self.models}>"

    # -- the child process -----------------------------------------------------------------------

    def _spawn(self, timeout_s: float) -> tuple[Any, Any, dict[str, dict[str, Any]]]:
        """Start a child and wait for its ``ready``; kill it and raise WorkerError otherwise."""
        ours, theirs = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=child_main,
            args=(theirs, self._models, self._opts),
            name=f"edgesched-worker-{self.node_id}",
            daemon=True,
        )
        proc.start()
        theirs.close()  # so that the child's death reads as end of file here
        try:
            if not ours.poll(timeout_s):
                raise WorkerError(
                    f"worker of node {self.node_id!r} was not ready within {timeout_s:g} s"
                )
            status, payload = ours.recv()
        except (EOFError, OSError):
            proc.join(5)
            status, payload = "error", f"its process exited with code {proc.exitcode}"
        except WorkerError:
            proc.kill()
            proc.join(5)
            ours.close()
            raise
        if status != "ready":
            proc.join(5)
            ours.close()
            raise WorkerError(f"worker of node {self.node_id!r} failed to start: {payload}")
        return proc, ours, payload

    def _read_loop(self) -> None:
        """The reader thread: resolve futures; on the child's death fail them and restart."""
        conn = self._conn
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                conn = self._on_death()
                if conn is None:
                    return
                continue
            fut = self._pop(msg[1])
            if fut is None:
                continue
            if msg[0] == "ok":
                fut.exec_s = msg[3]
                fut.set_result(msg[2])
            else:
                fut.set_exception(WorkerError(f"node {self.node_id!r}: {msg[2]}"))

    def _on_death(self) -> Any:
        """Fail what was in flight, then restart the child; its connection, or None to stop."""
        proc = self._proc
        proc.join(5)
        code = proc.exitcode
        self._release_blocks()
        with self._lock:
            lost, self._pending = list(self._pending.values()), {}
            now = time.monotonic()
            while self._restart_times and now - self._restart_times[0] > self._window_s:
                self._restart_times.popleft()
            retry = not self._closing and len(self._restart_times) < self._max_restarts
            if not self._closing:
                self._state = "restarting" if retry else "down"
            self._idle.notify_all()
        if not self._closing:
            log.warning(
                "worker process died",
                extra={
                    "event": "worker_died",
                    "node": self.node_id,
                    "exit_code": code,
                    "lost": len(lost),
                    "restart": retry,
                },
            )
        for fut in lost:
            fut.set_exception(WorkerDied(self.node_id, len(lost), f"died (exit code {code})"))
        if not retry:
            self._fail_all(f"is down after its process died (exit code {code})")
            return None
        self._restart_times.append(now)
        try:
            proc, conn, _ = self._spawn(self._start_timeout_s)
        except WorkerError as exc:
            with self._lock:
                self._state = "down" if self._state != "closed" else "closed"
            self._fail_all(f"could not restart: {exc}")
            return None
        with self._send_lock:
            with self._lock:
                closed = self._state == "closed"
                backlog = []
                if not closed:
                    self._proc, self._conn, self._state = proc, conn, "up"
                    self.restarts += 1
                    log.info(
                        "worker restarted",
                        extra={
                            "event": "worker_restarted",
                            "node": self.node_id,
                            "pid": proc.pid,
                            "restarts": self.restarts,
                        },
                    )
                    backlog, self._backlog = self._backlog, []
                    self._pending.update((rid, fut) for rid, _, _, fut in backlog)
            for rid, model, batch, _ in backlog:
                with contextlib.suppress(OSError, ValueError):
                    conn.send(self._message(rid, model, batch))
        if closed:
            proc.kill()
            proc.join(5)
            conn.close()
            self._fail_all("was closed before answering")
            return None
        return conn

    def _fail_all(self, reason: str) -> None:
        """Fail every request still pending or waiting with WorkerDied (``reason`` in it)."""
        with self._lock:
            lost = list(self._pending.values()) + [f for *_, f in self._backlog]
            self._pending, self._backlog = {}, []
            self._idle.notify_all()
        for fut in lost:
            fut.set_exception(WorkerDied(self.node_id, len(lost), reason))


__all__ = ["ModelInfo", "NodeWorker", "WorkerDied", "WorkerError", "WorkerFuture"]
