"""The serving worker of one node: its model instances in one child OS process.

A :class:`NodeWorker` spawns one child process (the ``spawn`` context, so CUDA works there) that
pins itself to the node's CPUs and runs each model's instances
(:mod:`edgesched.serve._worker_child`).
Parent and child talk in frames over a Unix socket pair (:mod:`edgesched.serve._frames`). The
parent's end lives in an asyncio event loop: the frontend's own (``start(loop=...)``), so that an
answer wakes the loop that awaits it directly, or else one the worker runs in a thread of its own.
Writes never block, whatever the child is doing; numpy arrays cross as they are, and large ones
through shared memory. No process or thread is created per request.

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

import asyncio
import contextlib
import logging
import multiprocessing as mp
import socket
import threading
from collections.abc import Mapping
from typing import Any, Self

import numpy as np

from edgesched.serve._frames import FrameReader, encode, recv_frame, unpack_arrays
from edgesched.serve._shm import MIN_SHARED_BYTES, BlockPool
from edgesched.serve._worker_base import (
    BaseNodeWorker,
    ModelInfo,
    WorkerDied,
    WorkerError,
    WorkerFuture,
)
from edgesched.serve._worker_child import child_main
from edgesched.serve.eventloop import new_event_loop

log = logging.getLogger("edgesched.serve")


class _Link(asyncio.Protocol):
    """The parent's end of one child's socket, living in the worker's event loop."""

    def __init__(self, worker: NodeWorker) -> None:
        self._worker = worker
        self._frames = FrameReader()
        self.transport: asyncio.Transport | None = None
        self.retired = False  # closed on purpose: its end is no death

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        for msg in self._frames.feed(data):
            self._worker._answer(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.retired:
            self.retired = True
            threading.Thread(
                target=self._worker._on_death,
                name=f"worker-{self._worker.node_id}-restart",
                daemon=True,
            ).start()

    def close(self) -> None:
        """Close the connection (loop thread only)."""
        if self.transport is not None:
            self.transport.close()

    def write(self, frame: tuple[bytes, bytes]) -> None:
        """Queue one frame (loop thread only); dropped once the child is gone."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.writelines(frame)


class NodeWorker(BaseNodeWorker):
    """The model instances of one node, in one child process (see the module docstring).

    Thread-safe: any thread may :meth:`submit`; :meth:`close` from any thread but the event
    loop's it was started with. Use it as a context manager, or call :meth:`close`.
    """

    _down = "is down (too many restarts)"  # what a submit says once it is down

    def __init__(
        self,
        node_id: str,
        models: Mapping[str, int],
        *,
        pool: BlockPool | None = None,
        **options: Any,
    ) -> None:
        """Describe the worker; :meth:`start` spawns it.

        Args:
            node_id: the node's name, for messages.
            models: model (zoo name or ``.onnx`` path) → number of concurrent instances (≥ 1).
            pool: the frontend's shared-memory blocks, shared by its workers, where request
                bodies may already lie (its owner closes it); None: the worker's own.
            options: ``backend``, ``device``, ``threads``, ``cpus`` (those the child process is
                pinned to), ``max_batch``, ``max_restarts`` and ``restart_window_s``, as for
                :class:`~edgesched.serve._worker_base.BaseNodeWorker`.

        Raises:
            WorkerError: ``models`` is empty, a count is not a positive integer, or
                ``max_batch`` is below 1.
        """
        super().__init__(node_id, models, **options)
        self._ctx = mp.get_context("spawn")
        # large inputs travel through shared memory: a block they were copied to is in _held
        self._own_pool = pool is None
        self._pool = BlockPool() if pool is None else pool
        self._proc: Any = None
        self._link: _Link | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None  # the id of the thread running _loop
        self._own_loop: threading.Thread | None = None  # runs _loop when no loop was given
        self._pool.on_retire(self._forget)  # the child unmaps what the pool retires

    # -- lifecycle -------------------------------------------------------------------------------

    def start(
        self, timeout_s: float = 120.0, loop: asyncio.AbstractEventLoop | None = None
    ) -> Self:
        """Spawn the child and wait until every model is loaded and warm.

        Args:
            timeout_s: how long to wait, in seconds (also used for each automatic restart).
            loop: the running event loop to do the worker's I/O in (a frontend's, which then
                gets answers without a thread hop); call ``start`` from another thread than
                that loop's, e.g. through ``loop.run_in_executor``. None: the worker runs an
                event loop in a thread of its own.

        Returns:
            The worker itself.

        Raises:
            WorkerError: the child could not load a model (the child's one-line reason), died,
                or was not ready within ``timeout_s``; or the worker was started or closed;
                or ``start`` was called from ``loop``'s own thread.
        """
        if loop is not None and _running_loop() is loop:
            raise WorkerError(
                f"worker of node {self.node_id!r}: start it from another thread than its event "
                "loop's (e.g. loop.run_in_executor), since it waits for the child"
            )
        self._begin_start(timeout_s)
        if loop is None:
            loop = new_event_loop()
            self._own_loop = threading.Thread(
                target=loop.run_forever, name=f"worker-{self.node_id}-io", daemon=True
            )
            self._own_loop.start()
        self._loop = loop
        try:
            proc, sock, infos = self._spawn(timeout_s)
            link = self._attach(proc, sock, timeout_s)
        except WorkerError:
            self._go_down()
            self._stop_own_loop()
            raise
        with self._lock:
            self._proc, self._link, self._state = proc, link, "up"
            self._infos = {m: ModelInfo(**i) for m, i in infos.items()}
        return self

    def close(self, drain: bool = True, timeout_s: float = 30.0) -> None:
        """As :meth:`BaseNodeWorker.close`; WorkerError when called from the worker's event loop,
        whose answers the drain waits for."""
        if self._loop is not None and self._loop_thread == threading.get_ident():
            raise WorkerError(
                f"worker of node {self.node_id!r}: close it from another thread than its event "
                "loop's (e.g. loop.run_in_executor), since it waits for answers"
            )
        super().close(drain, timeout_s)

    def _stop(self, timeout_s: float) -> None:
        """Let the child finish what it has queued and exit (else kill it); free the blocks."""
        proc, link = self._proc, self._link
        if link is not None:
            link.retired = True
            self._write(link, encode(("stop",)))
        if proc is not None:
            proc.join(timeout_s)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        if link is not None and self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop has stopped: nothing to close
                self._loop.call_soon_threadsafe(link.close)
        self._stop_own_loop()
        self._release_held()
        if self._own_pool:
            self._pool.close()

    def _stop_own_loop(self) -> None:
        """Stop and close the event loop the worker runs itself, if it does."""
        thread, loop = self._own_loop, self._loop
        if thread is None or loop is None:
            return
        self._own_loop = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()

    # -- requests --------------------------------------------------------------------------------

    def _route(self) -> Any:
        return self._link

    def _message(self, rid: int, model: str, batch: np.ndarray) -> tuple:
        """The request's message: a large tensor is named by its place in a shared-memory
        block, where it already lies (a request body received there) or is copied to."""
        if batch.nbytes < MIN_SHARED_BYTES or batch.dtype.hasobject:
            return ("infer", rid, model, batch)
        place = self._pool.locate(batch)
        if place is None:
            block = self._pool.put(batch)
            with self._lock:
                self._held[rid] = block
            place = (block.name, 0)
        return ("infer_shm", rid, model, *place, batch.shape, batch.dtype.str)

    def _send(
        self, link: _Link, rid: int, model: str, batch: np.ndarray, fut: WorkerFuture
    ) -> None:
        """Send one request; a dead child is left to the death handler, which fails it."""
        try:
            frame = encode(self._message(rid, model, batch))
        except Exception as exc:  # does not pickle: nothing was written
            self._unsent(rid, fut, exc)
            return
        self._write(link, frame)

    def _write(self, link: _Link, frame: tuple[bytes, bytes]) -> None:
        """Write ``frame`` on ``link`` from any thread (in order, from the loop's thread)."""
        loop = self._loop
        if self._loop_thread == threading.get_ident():
            link.write(frame)
        elif loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the child is gone
                loop.call_soon_threadsafe(link.write, frame)

    def _answer(self, msg: tuple) -> None:
        """Resolve the future of the request ``msg`` answers (in the loop's thread)."""
        fut = self._pop(msg[1])
        if fut is None:
            return
        kind = msg[0]
        if kind == "okr" or kind == "ok":
            fut.exec_s = msg[3]
            fut.set_result(unpack_arrays(msg[2]) if kind == "okr" else msg[2])
        else:
            fut.set_exception(WorkerError(f"node {self.node_id!r}: {msg[2]}"))

    def _free(self, held: Any) -> None:
        self._pool.release(held)

    def _forget(self, name: str) -> None:
        """Tell the child to unmap block ``name``, which the pool retired (any thread)."""
        link = self._link
        if self._state == "up" and link is not None:
            self._write(link, encode(("forget", name)))

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

    def _spawn(self, timeout_s: float) -> tuple[Any, socket.socket, dict[str, dict[str, Any]]]:
        """Start a child and wait for its ``ready``; kill it and raise WorkerError otherwise."""
        ours, theirs = socket.socketpair()
        proc = self._ctx.Process(
            target=child_main,
            args=(theirs, self._models, self._opts),
            name=f"edgesched-worker-{self.node_id}",
            daemon=True,
        )
        proc.start()
        theirs.close()  # so that the child's death reads as end of file here
        ours.settimeout(timeout_s)
        try:
            status, payload = recv_frame(ours)
        except TimeoutError:
            proc.kill()
            proc.join(5)
            ours.close()
            raise WorkerError(
                f"worker of node {self.node_id!r} was not ready within {timeout_s:g} s"
            ) from None
        except (EOFError, OSError):
            proc.join(5)
            status, payload = "error", f"its process exited with code {proc.exitcode}"
        if status != "ready":
            proc.join(5)
            ours.close()
            raise WorkerError(f"worker of node {self.node_id!r} failed to start: {payload}")
        ours.settimeout(None)
        return proc, ours, payload

    def _attach(self, proc: Any, sock: socket.socket, timeout_s: float) -> _Link:
        """Hand the parent's end of child ``proc``'s socket to the event loop; its link. On
        failure the child is killed."""
        loop = self._loop
        assert loop is not None
        link = _Link(self)

        async def connect() -> None:
            self._loop_thread = threading.get_ident()
            await loop.create_connection(lambda: link, sock=sock)

        try:
            asyncio.run_coroutine_threadsafe(connect(), loop).result(timeout_s)
        except Exception as exc:
            sock.close()
            proc.kill()
            proc.join(5)
            raise WorkerError(
                f"worker of node {self.node_id!r}: its event loop did not take the connection "
                f"({type(exc).__name__}: {exc})"
            ) from None
        return link

    def _on_death(self) -> None:
        """The child died (run in a thread of its own): fail what was in flight, then restart
        the child, and send it the requests that waited."""
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
            return
        try:
            proc, sock, _ = self._spawn(self._start_timeout_s)
            link = self._attach(proc, sock, self._start_timeout_s)
        except WorkerError as exc:
            self._go_down()
            self._fail_all(f"could not restart: {exc}")
            return
        with self._lock:
            closed = self._state == "closed"
            if not closed:
                self._proc, self._link = proc, link
                for rid, model, batch, fut in self._resume():
                    self._send(link, rid, model, batch, fut)
                log.info(
                    "worker restarted",
                    extra={
                        "event": "worker_restarted",
                        "node": self.node_id,
                        "pid": proc.pid,
                        "restarts": self.restarts,
                    },
                )
        if closed:
            link.retired = True
            proc.kill()
            proc.join(5)
            self._write(link, encode(("stop",)))
            self._fail_all("was closed before answering")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


__all__ = ["ModelInfo", "NodeWorker", "WorkerDied", "WorkerError", "WorkerFuture"]
