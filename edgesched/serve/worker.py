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

The request types and errors, and the bookkeeping this worker shares with
:class:`~edgesched.serve.ray_worker.RayNodeWorker`, live in :mod:`edgesched.serve._worker_base`;
this module exports them too.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import threading
from collections.abc import Mapping
from typing import Any, Self

import numpy as np

from edgesched.serve._shm import MIN_SHARED_BYTES, BlockPool
from edgesched.serve._worker_base import (
    BaseNodeWorker,
    ModelInfo,
    WorkerDied,
    WorkerError,
    WorkerFuture,
)
from edgesched.serve._worker_child import child_main

log = logging.getLogger("edgesched.serve")


class NodeWorker(BaseNodeWorker):
    """The model instances of one node, in one child process (see the module docstring).

    Thread-safe: any thread may :meth:`submit`. Use it as a context manager, or call :meth:`close`.
    """

    _down = "is down (too many restarts)"  # what a submit says once it is down

    def __init__(self, node_id: str, models: Mapping[str, int], **options: Any) -> None:
        """Describe the worker; :meth:`start` spawns it.

        Args:
            node_id: the node's name, for messages.
            models: model (zoo name or ``.onnx`` path) → number of concurrent instances (≥ 1).
            options: ``backend``, ``device``, ``threads``, ``cpus`` (those the child process is
                pinned to), ``max_batch``, ``max_restarts`` and ``restart_window_s``, as for
                :class:`~edgesched.serve._worker_base.BaseNodeWorker`.

        Raises:
            WorkerError: ``models`` is empty, a count is not a positive integer, or
                ``max_batch`` is below 1.
        """
        super().__init__(node_id, models, **options)
        self._ctx = mp.get_context("spawn")
        self._send_lock = threading.Lock()
        self._pool = BlockPool()  # large inputs travel through shared memory, held in _held
        self._proc: Any = None
        self._conn: Any = None
        self._reader: threading.Thread | None = None

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
        self._begin_start(timeout_s)
        try:
            proc, conn, infos = self._spawn(timeout_s)
        except WorkerError:
            self._go_down()
            raise
        with self._lock:
            self._proc, self._conn, self._state = proc, conn, "up"
            self._infos = {m: ModelInfo(**i) for m, i in infos.items()}
        self._reader = threading.Thread(
            target=self._read_loop, name=f"worker-{self.node_id}-reader", daemon=True
        )
        self._reader.start()
        return self

    def _stop(self, timeout_s: float) -> None:
        """Let the child finish what it has queued and exit (else kill it); free the blocks."""
        proc, conn = self._proc, self._conn
        if proc is not None:
            with self._send_lock, contextlib.suppress(OSError, ValueError):
                conn.send(("stop",))
            proc.join(timeout_s)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(5)
        self._release_held()
        self._pool.close()
        if conn is not None:
            conn.close()

    # -- requests --------------------------------------------------------------------------------

    def _route(self) -> Any:
        return self._conn

    def _message(self, rid: int, model: str, batch: np.ndarray) -> tuple:
        """The request's message: large tensors go into a shared-memory block, named in it."""
        if batch.nbytes < MIN_SHARED_BYTES or batch.dtype.hasobject:
            return ("infer", rid, model, batch)
        block = self._pool.put(batch)
        with self._lock:
            self._held[rid] = block
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
            self._unsent(rid, fut, exc)

    def _free(self, held: Any) -> None:
        self._pool.release(held)

    # -- state -----------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """Whether the child is up and taking requests."""
        proc = self._proc
        return self._state == "up" and proc is not None and proc.is_alive()

    @property
    def pid(self) -> int | None:
        """The child process's id (None before start)."""
        return None if self._proc is None else self._proc.pid

    def _placement(self) -> str:
        return f"pid={self.pid}"

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
        self._release_held()
        with self._lock:
            lost, self._pending = list(self._pending.values()), {}
            retry = self._may_restart()
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
        try:
            proc, conn, _ = self._spawn(self._start_timeout_s)
        except WorkerError as exc:
            self._go_down()
            self._fail_all(f"could not restart: {exc}")
            return None
        with self._send_lock:
            with self._lock:
                closed = self._state == "closed"
                backlog = []
                if not closed:
                    self._proc, self._conn = proc, conn
                    backlog = self._resume()
                    log.info(
                        "worker restarted",
                        extra={
                            "event": "worker_restarted",
                            "node": self.node_id,
                            "pid": proc.pid,
                            "restarts": self.restarts,
                        },
                    )
            for rid, model, batch, fut in backlog:
                try:
                    conn.send(self._message(rid, model, batch))
                except (OSError, ValueError):
                    pass  # the new child died too: the reader fails what is pending
                except Exception as exc:  # does not pickle: nothing was written
                    self._unsent(rid, fut, exc)
        if closed:
            proc.kill()
            proc.join(5)
            conn.close()
            self._fail_all("was closed before answering")
            return None
        return conn


__all__ = ["ModelInfo", "NodeWorker", "WorkerDied", "WorkerError", "WorkerFuture"]
