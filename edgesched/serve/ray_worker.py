"""The serving worker of one node as a Ray actor, so that real boards can join a fleet.

A :class:`RayNodeWorker` works like a :class:`~edgesched.serve.worker.NodeWorker` (both build on
:class:`~edgesched.serve._worker_base.BaseNodeWorker`), but its model instances live in a Ray
actor instead of a local child process. The actor asks for a sliver of the custom resource
``edgesched-node:<node id>`` (and no CPU: it pins itself to ``cpus``), so Ray places it on the
machine that offers that resource; a board joins the fleet with::

    ray start --address=HEAD:PORT --resources='{"edgesched-node:<node id>": 1}'

The actor loads its models with the same code as the local worker's child
(:func:`edgesched.serve._worker_child._load`) on the board itself, so model paths must be valid
there. Each model gets its own Ray concurrency group with one thread per instance; a request runs
on a free instance of its model (ONNX Runtime releases the GIL) and the actor measures the
executor's time. Outputs come back as numpy arrays, which Ray deserialises without a copy (they
are read-only).

Faults, as for :class:`NodeWorker` (ARCHITECTURE.md §9: no accepted request vanishes): every
actor runs one ``watch`` call that never returns, so its failure tells the worker at once that
the actor died. Then every request in flight fails with :class:`WorkerDied` (retry elsewhere),
the dead actor is killed for good and a new one is created and warmed; requests submitted
meanwhile wait and are sent to it. After ``max_restarts`` restarts within ``restart_window_s``,
or when the node's resource is gone, the worker stays down and every submit fails at once with
:class:`WorkerDied`.

Ray is imported only when a worker starts. Call :func:`ensure_ray` once before starting workers
to choose how this process joins Ray; :meth:`RayNodeWorker.start` calls it too.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import queue
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, Self

import numpy as np

from edgesched.serve._worker_base import (
    BaseNodeWorker,
    ModelInfo,
    WorkerDied,
    WorkerError,
    WorkerFuture,
)
from edgesched.serve._worker_child import _load, one_line

#: Prefix of the custom Ray resource that marks the Ray node of one edgesched node.
RESOURCE_PREFIX = "edgesched-node:"
#: The share of the node's resource each actor asks for: up to 100 workers may share a board.
RESOURCE_SHARE = 0.01
#: The concurrency group of the actor's control calls (``ready`` and ``watch``).
CONTROL_GROUP = "control"
#: Seconds between checks that the board is still there while its actor loads.
READY_POLL_S = 1.0
#: Seconds to wait for the head's TCP port before ``ray.init`` (which retries for minutes).
CONNECT_TIMEOUT_S = 5.0

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ray_lock = threading.Lock()
_local_nodes: set[str] = set()  # node ids of the workers made with address=None


def node_resource(node_id: str) -> str:
    """The custom Ray resource that marks the Ray node of edgesched node ``node_id``."""
    return f"{RESOURCE_PREFIX}{node_id}"


def join_command(address: str, node_id: str) -> str:
    """The command that makes a board the Ray node of ``node_id`` in the cluster at ``address``."""
    resources = json.dumps({node_resource(node_id): 1})
    return f"ray start --address={address} --resources='{resources}'"


def ensure_ray(address: str | None = None, node_ids: Iterable[str] = ()) -> None:
    """Connect this process to Ray, once; later calls (from any thread) do nothing.

    Ray's resources of a local runtime are fixed when it starts, so call this before any worker
    starts, from the main thread (Ray installs its SIGTERM handler only there). Workers made with
    ``address=None`` register their node ids themselves, so constructing every worker before
    starting the first one is enough.

    Args:
        address: ``HOST:PORT`` of a running Ray cluster (its head's GCS port, 6379 by default) to
            join; None starts a local Ray runtime in this process whose node offers one unit of
            ``edgesched-node:<id>`` for every id in ``node_ids`` and every worker registered.
        node_ids: node ids the local runtime must offer (with ``address=None`` only).

    Raises:
        WorkerError: the cluster at ``address`` cannot be reached, or Ray failed to start.
    """
    import ray

    with _ray_lock:
        if address is None:
            _local_nodes.update(node_ids)
        if ray.is_initialized():
            return
        try:
            if address is None:
                resources = {node_resource(n): 1.0 for n in sorted(_local_nodes)}
                ray.init(address="local", resources=resources, include_dashboard=False)
            else:
                _check_reachable(address)
                ray.init(address=address)
        except WorkerError:
            raise
        except Exception as exc:
            where = "a local Ray runtime" if address is None else f"the Ray cluster at {address}"
            raise WorkerError(f"cannot start or join {where}: {one_line(exc)}") from exc


def _check_reachable(address: str) -> None:
    """Raise WorkerError unless ``HOST:PORT`` accepts a TCP connection."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise WorkerError(f"Ray address {address!r} must be HOST:PORT, e.g. 192.168.1.10:6379")
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise WorkerError(
            f"cannot reach the Ray head at {address}: {one_line(exc)}; start it there with "
            f"`ray start --head --port={port}`, or fix the address"
        ) from None


class EdgeschedNodeActor:
    """The Ray actor of one node (``ray::EdgeschedNodeActor`` in ``ps``): every instance of every
    model, run on Ray's threads."""

    def __init__(self, models: dict[str, int], opts: dict[str, Any]) -> None:
        self._cap: int | None = opts["max_batch"]
        self._free: dict[str, queue.SimpleQueue] = {}
        self._error: str | None = None
        try:
            executors, self._infos = _load(models, opts)
        except Exception as exc:  # ready() reports it; the worker's start() raises it
            self._error = one_line(exc)
            return
        for model, insts in executors.items():
            self._free[model] = free = queue.SimpleQueue()
            for ex in insts:
                free.put(ex)

    def ready(self) -> tuple[str, Any]:
        """``("ready", {"infos", "pid", "node"})`` once every instance is warm, else
        ``("error", one_line_reason)``."""
        import ray

        if self._error is not None:
            return "error", self._error
        node = ray.get_runtime_context().get_node_id()
        return "ready", {"infos": self._infos, "pid": os.getpid(), "node": node}

    def infer(self, model: str, batch: np.ndarray) -> tuple:
        """``("ok", outputs, exec_s)``, or ``("err", one_line_reason)`` for a bad request."""
        free = self._free[model]
        ex = free.get()  # the model's group has one thread per instance: one is free
        try:
            if self._cap is not None and batch.ndim and len(batch) > self._cap:
                raise ValueError(
                    f"model {ex.model} takes batches of at most {self._cap} samples on this "
                    f"node; got {len(batch)}; split the batch"
                )
            t0 = time.perf_counter()
            outputs = list(ex.run(batch))
            return "ok", outputs, time.perf_counter() - t0
        except Exception as exc:
            return "err", one_line(exc)
        finally:
            free.put(ex)

    def watch(self) -> None:
        """Never return: the call fails when the actor dies, which is how the worker learns."""
        threading.Event().wait()


class RayNodeWorker(BaseNodeWorker):
    """The model instances of one node, in one Ray actor on that node's Ray node.

    Same interface and semantics as :class:`~edgesched.serve.worker.NodeWorker` (see the module
    docstring). Thread-safe: any thread may :meth:`submit`. Use it as a context manager, or call
    :meth:`close`, which kills the actor but leaves the Ray connection (and a local Ray runtime)
    up: see ``ray.shutdown()``.
    """

    def __init__(
        self,
        node_id: str,
        models: Mapping[str, int],
        *,
        address: str | None = None,
        **options: Any,
    ) -> None:
        """Describe the worker; :meth:`start` creates its actor.

        Args:
            node_id: the node's name; its actor runs where ``edgesched-node:<node_id>`` is.
            models: model (zoo name, or ``.onnx`` path valid on the board) → number of
                concurrent instances (≥ 1).
            address: ``HOST:PORT`` of the Ray cluster to join; None: a local Ray runtime in this
                process (see :func:`ensure_ray`).
            options: ``backend``, ``device``, ``threads``, ``cpus`` (those of the board the
                actor's process is pinned to), ``max_batch``, ``max_restarts`` and
                ``restart_window_s``, as for :class:`~edgesched.serve._worker_base.BaseNodeWorker`.

        Raises:
            WorkerError: ``models`` is empty, a count is not a positive integer, or
                ``max_batch`` is below 1.
        """
        super().__init__(node_id, models, **options)
        self.address = address
        self._groups = {m: f"model{i}" for i, m in enumerate(self._models)}
        self._actor_cls: Any = None
        self._handle: Any = None  # the actor serving, or being started
        self._gen = 0  # bumped per actor, so that news of a dead one is ignored later
        self._watch: concurrent.futures.Future | None = None
        self._placed: dict[str, Any] = {}
        if address is None:
            with _ray_lock:
                _local_nodes.add(node_id)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, timeout_s: float = 120.0) -> Self:
        """Join Ray, create the actor on the node's Ray node and wait until it is warm.

        Args:
            timeout_s: how long to wait for the actor, in seconds (also used for each
                automatic restart).

        Returns:
            The worker itself.

        Raises:
            WorkerError: Ray cannot be joined; no Ray node offers ``edgesched-node:<id>`` (the
                message gives the ``ray start`` command to run on the board); the actor could
                not load a model (its one-line reason), died, or was not ready within
                ``timeout_s``; or the worker was started or closed.
        """
        self._begin_start(timeout_s)
        try:
            ensure_ray(self.address)
            handle = self._launch(timeout_s)
        except WorkerError as exc:
            self._down = f"is down: it failed to start: {exc}"
            self._go_down()
            raise
        with self._lock:
            if self._state == "closed":
                raise WorkerError(f"worker of node {self.node_id!r} was closed while starting")
            self._state = "up"
        self._watch_actor(handle, self._gen)
        return self

    def _stop(self, timeout_s: float) -> None:
        """Kill the actor and wait until its ``watch`` call has failed."""
        handle, watch = self._handle, self._watch
        if handle is not None:
            self._kill(handle)
            if watch is not None:  # fails once the actor is dead
                concurrent.futures.wait([watch], timeout_s)

    # -- requests --------------------------------------------------------------------------------

    def _route(self) -> tuple[Any, int]:
        return self._handle, self._gen

    def _send(
        self,
        route: tuple[Any, int],
        rid: int,
        model: str,
        batch: np.ndarray,
        fut: WorkerFuture,
    ) -> None:
        """Call the actor's ``infer`` for a request already pending; resolve it on the reply."""
        handle, gen = route
        try:
            ref = handle.infer.options(concurrency_group=self._groups[model]).remote(model, batch)
        except Exception as exc:  # e.g. the batch does not serialise: nothing was sent
            self._unsent(rid, fut, exc)
            return
        with self._lock:
            if rid in self._pending:
                self._held[rid] = ref  # hold the ref until the reply
        ref.future().add_done_callback(lambda reply: self._on_reply(gen, rid, reply))

    def _on_reply(self, gen: int, rid: int, reply: concurrent.futures.Future) -> None:
        """Resolve request ``rid`` from its reply (runs on Ray's callback thread)."""
        from ray.exceptions import ActorUnavailableError, RayActorError

        exc = reply.exception()
        unreachable = isinstance(exc, ActorUnavailableError)  # maybe for a moment only
        if isinstance(exc, RayActorError) and not unreachable:
            self._on_death(gen, exc)  # fails this request with all others in flight
            return
        fut = self._pop(rid)
        if fut is None:
            return
        if unreachable:
            why = f"could not reach its Ray actor ({_summary(exc, cause=False)})"
            fut.set_exception(WorkerDied(self.node_id, 1, why))
            return
        if exc is not None:
            fut.set_exception(WorkerError(f"node {self.node_id!r}: {one_line(exc)}"))
            return
        msg = reply.result()
        if msg[0] == "ok":
            fut.exec_s = msg[2]
            fut.set_result(msg[1])
        else:
            fut.set_exception(WorkerError(f"node {self.node_id!r}: {msg[1]}"))

    def _free(self, held: Any) -> None:
        """Nothing to do: dropping the reply's ObjectRef is enough."""

    # -- state -----------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """Whether the actor is up and taking requests."""
        return self._state == "up"

    @property
    def pid(self) -> int | None:
        """The actor's process id on its Ray node (None before start)."""
        return self._placed.get("pid")

    @property
    def ray_node_id(self) -> str | None:
        """The Ray node id (hex) the actor runs on (None before start)."""
        return self._placed.get("node")

    def _placement(self) -> str:
        return f"pid={self.pid} ray_node={self.ray_node_id}"

    # -- the actor -------------------------------------------------------------------------------

    def _launch(self, timeout_s: float) -> Any:
        """Create an actor where the node's resource is and wait for its ``ready``; return it.

        Kills the actor and raises WorkerError if it is not ready.
        """
        import ray

        handle = None
        try:
            resource = node_resource(self.node_id)
            if resource not in ray.cluster_resources():
                raise WorkerError(self._missing(resource))
            if self._actor_cls is None:
                groups = {g: self._models[m] for m, g in self._groups.items()}
                self._actor_cls = ray.remote(concurrency_groups={**groups, CONTROL_GROUP: 2})(
                    EdgeschedNodeActor
                )
            handle = self._actor_cls.options(
                num_cpus=0, resources={resource: RESOURCE_SHARE}, max_restarts=0
            ).remote(self._models, self._opts)
            with self._lock:
                closed = self._state == "closed"
                if not closed:
                    self._handle = handle  # so that close() kills it
            if closed:
                raise WorkerError(f"worker of node {self.node_id!r} was closed while starting")
            ready = handle.ready.options(concurrency_group=CONTROL_GROUP).remote()
            now = time.monotonic
            deadline = now() + timeout_s
            while not ray.wait([ready], timeout=max(0.0, min(READY_POLL_S, deadline - now())))[0]:
                if now() >= deadline:
                    raise WorkerError(
                        f"worker of node {self.node_id!r} was not ready within {timeout_s:g} s; "
                        "see `ray status` and the Ray logs of its board"
                    )
                if resource not in ray.cluster_resources():  # the board left meanwhile
                    raise WorkerError(self._missing(resource))
            status, payload = ray.get(ready)
            if status != "ready":
                raise WorkerError(f"worker of node {self.node_id!r} failed to start: {payload}")
        except Exception as exc:
            if handle is not None:
                self._kill(handle)
            if isinstance(exc, WorkerError):
                raise
            why = "its Ray actor died" if isinstance(exc, ray.exceptions.RayActorError) else "Ray"
            raise WorkerError(
                f"worker of node {self.node_id!r} failed to start: {why}: {_summary(exc)}"
            ) from None
        self._placed = {"pid": payload["pid"], "node": payload["node"]}
        self._infos = {m: ModelInfo(**i) for m, i in payload["infos"].items()}
        return handle

    def _missing(self, resource: str) -> str:
        """The message for a cluster where no Ray node offers ``resource``."""
        import ray

        address = self.address or ray.get_runtime_context().gcs_address
        msg = (
            f"worker of node {self.node_id!r}: no Ray node offers the resource {resource!r}, "
            f"so the board of node {self.node_id!r} has not joined the Ray cluster; run on it: "
            f"{join_command(address, self.node_id)}"
        )
        if self.address is None:
            msg += (
                " (or, for a local Ray runtime, create every RayNodeWorker, or call "
                "ensure_ray(None, node_ids), before the first one starts)"
            )
        return msg

    @staticmethod
    def _kill(handle: Any) -> None:
        """Kill an actor for good; quietly if it is dead already or Ray is shut down."""
        import ray

        with contextlib.suppress(Exception):
            ray.kill(handle, no_restart=True)

    def _watch_actor(self, handle: Any, gen: int) -> None:
        """Call the actor's never-returning ``watch``; its failure reports the actor's death."""
        watch = handle.watch.options(concurrency_group=CONTROL_GROUP).remote().future()
        self._watch = watch
        watch.add_done_callback(lambda done: self._on_death(gen, done.exception()))

    def _on_death(self, gen: int, exc: BaseException | None) -> None:
        """Fail what was in flight on actor ``gen``, then restart it in the background."""
        with self._lock:
            if gen != self._gen or self._state != "up":
                return  # old news, or the worker is closed
            lost, self._pending = list(self._pending.values()), {}
            retry = self._may_restart()
            self._state = "restarting" if retry else "down"
            old = self._handle
            self._idle.notify_all()
        self._release_held()
        why = "its Ray actor died" + ("" if exc is None else f" ({_summary(exc, cause=False)})")
        if not retry:
            self._down = f"is down: {why} and may not restart (limit {self._max_restarts})"
        for fut in lost:
            fut.set_exception(WorkerDied(self.node_id, len(lost), why))
        # not on Ray's callback thread: killing and creating actors block on Ray
        threading.Thread(
            target=self._restart if retry else self._kill,
            args=(old,),
            name=f"ray-worker-{self.node_id}-restart",
            daemon=True,
        ).start()

    def _restart(self, old: Any) -> None:
        """Replace the dead actor ``old``; send the requests that waited, or fail them."""
        self._kill(old)
        try:
            handle = self._launch(self._start_timeout_s)
        except WorkerError as exc:
            self._down = f"is down: its Ray actor died and could not restart: {exc}"
            self._go_down()
            self._fail_all(f"could not restart: {exc}")
            return
        with self._lock:
            closed = self._state == "closed"
            if not closed:
                self._gen += 1
                backlog = self._resume()
            gen = self._gen
        if closed:
            self._kill(handle)
            self._fail_all("was closed before answering")
            return
        self._watch_actor(handle, gen)
        for rid, model, batch, fut in backlog:
            self._send((handle, gen), rid, model, batch, fut)


def _summary(exc: BaseException, cause: bool = True) -> str:
    """``Type: first line`` of a Ray error, which spans many lines and colours, and with
    ``cause`` ``… last line``, which names the root cause (e.g. ``ModuleNotFoundError``)."""
    lines = [ln.strip() for ln in _ANSI.sub("", str(exc)).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    text = f"{lines[0]} … {lines[-1]}" if cause and len(lines) > 1 else lines[0]
    return f"{type(exc).__name__}: {text}"


__all__ = ["RESOURCE_PREFIX", "RayNodeWorker", "ensure_ray", "join_command", "node_resource"]
