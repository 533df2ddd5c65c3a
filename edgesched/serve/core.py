"""The serving core shared by the HTTP and gRPC frontends: workers, routing, batching, offload.

:class:`ServingCore` runs one worker per cluster node (a local process, or a Ray actor), keeps a
live :class:`ClusterView` of them (:mod:`edgesched.serve._state`) and answers one infer request:

1. **admission**: 503 while draining or past ``max_in_flight``;
2. **batching** (models with ``serving.batching``): the request joins its model's
   :class:`~edgesched.serve._batcher.DynamicBatcher`;
3. **routing**: the route policy picks a node for the (formed) batch from the live view; if that
   node's worker dies with the batch in flight, the batch is retried once on the least-loaded
   other node serving the model (no accepted request vanishes: ARCHITECTURE §9);
4. **offload** (models with ``serving.offload``): rows the edge answered with confidence below
   the threshold run again on a cloud node serving the cloud model, whose rows replace them;
5. **feedback**: one :class:`Outcome` per request, given to the policy's ``observe`` and to the
   optional :class:`~edgesched.serve.records.RecordWriter`.

Two ways in: :meth:`ServingCore.infer`, a coroutine, for every model; and
:meth:`ServingCore.infer_soon` for a model that is neither batched nor offloaded, which routes and
sends the request at once and hands the answer to a callback when the worker's reply arrives, so
that the request costs no task and no extra turn of the event loop (the HTTP frontend's path for
those models; a retry after a worker died still runs as a task).

The frontends own the wire (decoding, encoding, status codes); the core speaks numpy arrays and
raises :class:`ProtocolError` (with its HTTP status) for everything a client did wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from edgesched.core.cluster import Cluster
from edgesched.core.confidence import confidence
from edgesched.core.request import Outcome, Request
from edgesched.errors import ConfigError
from edgesched.serve._batcher import DynamicBatcher
from edgesched.serve._datatypes import TensorSpec, datatype_of, model_config, model_metadata
from edgesched.serve._http import Accounting, ServedModel, check_batch
from edgesched.serve._shm import BlockPool
from edgesched.serve._state import LiveState
from edgesched.serve.metrics import ServerMetrics, reason_of
from edgesched.serve.protocol import (
    InferRequest,
    ProtocolError,
    model_not_found,
    overloaded,
    unavailable,
)
from edgesched.serve.records import RecordWriter
from edgesched.serve.worker import NodeWorker, WorkerDied, WorkerFuture

if TYPE_CHECKING:
    from edgesched.policies.route import RoutePolicy
    from edgesched.profile.power import PowerMeter

VERSION = "1"
PLATFORM = "onnxruntime_onnx"

log = logging.getLogger("edgesched.serve")
_LOCAL = object()  # the workers are local processes, not Ray actors
#: ``node`` label of the serving machine's own power meter (the local workers share it).
HOST = "host"


def when_done(fut: WorkerFuture, fn: Callable[[WorkerFuture], None]) -> None:
    """Call ``fn(fut)`` in the running loop's thread once ``fut`` is done. Unlike a hop through
    :func:`asyncio.wrap_future`, a worker answering in this loop's own thread (a local worker)
    calls ``fn`` directly, without waking the loop through its self-pipe."""
    loop = asyncio.get_running_loop()
    tid = threading.get_ident()

    def on_done(done: WorkerFuture) -> None:
        if threading.get_ident() == tid:
            fn(done)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(fn, done)

    fut.add_done_callback(on_done)


def awaitable(fut: WorkerFuture) -> asyncio.Future:
    """``fut`` as a future of the running loop (resolved as :func:`when_done` calls back)."""
    out = asyncio.get_running_loop().create_future()

    def copy(done: WorkerFuture) -> None:
        if out.cancelled():
            return
        exc = done.exception()
        if exc is None:
            out.set_result(done.result())
        else:
            out.set_exception(exc)

    when_done(fut, copy)
    return out


@dataclass(slots=True)
class RunInfo:
    """What running one (formed) batch learned.

    Attributes:
        node: the node that ran it.
        exec_s: seconds its executor ran (None: not measured).
        offloaded: per row, whether the cloud answered it (None: nothing offloaded).
    """

    node: int
    exec_s: float | None
    offloaded: np.ndarray | None = None


@dataclass(slots=True)
class InferResult:
    """The answer to one request: named outputs and response parameters."""

    outputs: dict[str, np.ndarray]
    parameters: dict[str, Any]


class ServingCore:
    """Workers, live state, policy, batchers and offload of one served cluster.

    Use from one asyncio event loop: ``await core.start()`` … ``await core.stop()``.
    """

    def __init__(
        self,
        cluster: Cluster,
        *,
        policy: str | RoutePolicy = "min-expected-completion",
        model_files: Mapping[str, str | Path] | None = None,
        backend: str = "onnxruntime",
        threads_per_node: int | None = 1,
        workers: Literal["local", "ray"] = "local",
        ray_address: str | None = None,
        max_in_flight: int = 1024,
        slo_s: float = 1.0,
        seed: int = 0,
        records: RecordWriter | None = None,
        power_meter: PowerMeter | None = None,
        power_interval_s: float = 1.0,
    ) -> None:
        """Describe the core; :meth:`start` starts the workers.

        Args:
            cluster: the nodes, their models, and its ``serving:`` section.
            policy: route policy name (``edgesched.policies.names("route")``) or instance.
            model_files: model name → ONNX file, over ``serving.model_files``; other models are
                zoo names.
            backend: executor backend of nodes whose ``serving.nodes`` entry does not say.
            threads_per_node: intra-op threads per instance where ``serving.nodes`` does not say
                (None: one per pinned CPU, else the backend's default).
            workers: ``local`` (one OS process per node) or ``ray`` (one Ray actor per node,
                pinned by the custom resource ``edgesched-node:<id>``).
            ray_address: the Ray cluster to join (``HOST:PORT``); None starts a local one.
            max_in_flight: most requests in progress at once; more get 503.
            slo_s: latency deadline in seconds given to the policy with each request of a model
                that ``serving.slo_s`` does not name.
            seed: seed of the policy's random generator.
            records: where to write one record per answered request (None: nowhere).
            power_meter: a meter of the serving machine (:mod:`edgesched.profile.power`), read
                every ``power_interval_s`` seconds into the ``host`` node's power gauge; None
                reads none.
            power_interval_s: seconds between power readings.

        Raises:
            ConfigError: a ``model_files`` name no node serves, an offload without a cloud node,
                an unknown worker kind, or a bad limit.
            UnknownNameError: an unknown policy.
        """
        from edgesched.policies import make

        unknown = set(model_files or {}) - set(cluster.model_names)
        if unknown:
            raise ConfigError(
                f"model_files names {sorted(unknown)} but the cluster serves only "
                f"{list(cluster.model_names)}; fix the NAME of NAME=PATH"
            )
        if max_in_flight < 1:
            raise ConfigError("max_in_flight must be ≥ 1")
        if workers not in ("local", "ray"):
            raise ConfigError(f"workers must be 'local' or 'ray'; got {workers!r}")
        self.cluster = cluster
        self._policy = make("route", policy) if isinstance(policy, str) else policy
        self.policy_name = self._policy.name
        self._sources = {
            m: str((model_files or {}).get(m) or cluster.model_file(m)) for m in cluster.model_names
        }
        self._offload_nodes = self._check_offload(cluster)
        #: shared-memory blocks of the local workers, which request bodies may be received into
        free_bytes = int(cluster.serving.shared_memory_free_mb * 2**20)
        self.pool = BlockPool(free_bytes) if workers == "local" else None
        self._workers = [
            self._worker(node, backend, threads_per_node, workers, ray_address)
            for node in cluster.nodes
        ]
        self._ray_address = ray_address if workers == "ray" else _LOCAL
        self.max_in_flight = max_in_flight
        self._slo_s = [cluster.serving.slo_s.get(m, slo_s) for m in cluster.model_names]
        self._seed = seed
        self._records = records
        self._meter = power_meter
        self._power_interval_s = power_interval_s
        self._power_task: asyncio.Task | None = None
        self.models: dict[str, ServedModel] = {}
        self._batchers: dict[str, DynamicBatcher[RunInfo]] = {}
        self._live: LiveState | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the one start() ran in
        self._ids = itertools.count()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._retries: set[asyncio.Task[None]] = set()  # infer_soon's, after a worker died
        self.draining = False
        self.outcomes = 0  # answered requests (for tests and logs)
        self.node_ids = [node.id for node in cluster.nodes]
        self.metrics = ServerMetrics(cluster.model_names, self.node_ids)
        self._epoch = time.monotonic()

    def _worker(
        self, node: Any, backend: str, threads: int | None, kind: str, address: str | None
    ) -> Any:
        opts = self.cluster.node_serving(node)
        models = {self._sources[m]: c for m, c in node.models.items()}
        fields = opts.model_fields_set
        kw: dict[str, Any] = {
            "backend": opts.backend if "backend" in fields else backend,
            "device": opts.device,
            "threads": opts.threads if opts.threads is not None or opts.cpus else threads,
            "cpus": opts.cpus,
        }
        if kind == "ray":
            from edgesched.serve.ray_worker import RayNodeWorker

            return RayNodeWorker(node.id, models, address=address, **kw)
        return NodeWorker(node.id, models, pool=self.pool, **kw)

    @staticmethod
    def _check_offload(cluster: Cluster) -> dict[str, list[int]]:
        """Cloud nodes serving each offloading model's cloud model; ConfigError if none."""
        out: dict[str, list[int]] = {}
        for model, off in cluster.serving.offload.items():
            target = off.cloud_model or model
            nodes = [n.index for n in cluster.nodes if n.is_cloud and target in n.models]
            if not nodes:
                raise ConfigError(
                    f"serving.offload.{model}: no cloud node serves {target!r}; deploy it on a "
                    "node whose device is a cloud server, or remove the offload"
                )
            out[model] = nodes
        return out

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every worker, learn the models, reset the policy, build the batchers.

        Raises:
            WorkerError: a worker could not load its models (the others are closed again).
            ConfigError: an offload pairs models whose inputs or outputs differ.
        """
        if self._ray_address is not _LOCAL:
            from edgesched.serve.ray_worker import ensure_ray

            # connect from this (the main) thread, offering every node's resource if local
            ensure_ray(self._ray_address, self.node_ids)
        loop = self._loop = asyncio.get_running_loop()
        # local workers do their I/O in this loop: an answer wakes the request awaiting it
        starts = [
            functools.partial(w.start, loop=loop) if isinstance(w, NodeWorker) else w.start
            for w in self._workers
        ]
        results = await asyncio.gather(
            *(loop.run_in_executor(None, start) for start in starts), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            await loop.run_in_executor(None, self._close_workers, False, 5.0)
            raise failed[0]
        await self._describe_models()
        self._check_offload_shapes()
        live = self._live
        assert live is not None
        self._policy.reset(live.view, np.random.default_rng(self._seed))
        for model, cfg in self.cluster.serving.batching.items():
            m = self.models[model]
            self._batchers[model] = DynamicBatcher(cfg, lambda b, m=m: self._run(m, b))
        self._epoch = time.monotonic()
        if self._meter is not None:
            self._power_task = asyncio.ensure_future(self._read_power(self._meter))
        # what start-up allocated lives as long as the server: keep the collector off it, so
        # that full collections while serving stay short
        gc.freeze()
        log.info(
            "serving",
            extra={
                "event": "start",
                "nodes": self.node_ids,
                "models": list(self.models),
                "policy": self.policy_name,
                "batching": sorted(self._batchers),
                "offload": sorted(self._offload_nodes),
            },
        )

    async def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Refuse new requests, let those in flight finish, then close the workers. Idempotent.

        Args:
            drain_timeout_s: the most seconds to wait for requests in flight.
        """
        self.draining = True
        if self._power_task is not None:
            self._power_task.cancel()
            self._power_task = None
        if self._in_flight:
            self._idle.clear()
            # past the timeout, the workers' close fails what is left with WorkerDied
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), drain_timeout_s)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._close_workers, True, drain_timeout_s)
        if self._records is not None:
            self._records.close()
        log.info("stopped", extra={"event": "stop", "answered": self.outcomes})

    async def _read_power(self, meter: PowerMeter) -> None:
        """Read ``meter`` into the ``host`` power gauge until cancelled (a failing meter is
        logged once and no longer read)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._power_interval_s)
            try:
                watts = await loop.run_in_executor(None, meter.power_w)
            except OSError as exc:
                log.warning("power meter failed", extra={"event": "power", "error": str(exc)})
                return
            self.metrics.set_power(HOST, watts, meter.name)

    def _close_workers(self, drain: bool, timeout_s: float) -> None:
        for w in self._workers:
            w.close(drain=drain, timeout_s=timeout_s)
        if self.pool is not None:
            self.pool.close()

    async def _describe_models(self) -> None:
        """Learn each model's input from the workers and its outputs from one probe batch."""
        names = list(self.cluster.model_names)
        nodes = {m: [n.index for n in self.cluster.nodes if m in n.models] for m in names}
        infos = {m: self._workers[nodes[m][0]].info()[self._sources[m]] for m in names}
        input_bytes = [
            4 * int(np.prod([d or 1 for d in infos[m].input_shape], dtype=np.int64)) for m in names
        ]
        self._live = LiveState(self.cluster, names, input_bytes, time.monotonic)
        for j, m in enumerate(names):
            info = infos[m]
            outputs: list[TensorSpec] = []
            if all(d is not None for d in info.input_shape):
                probe = np.zeros((1, *info.input_shape), np.float32)
                fut = self._workers[nodes[m][0]].submit(self._sources[m], probe)
                arrays = await awaitable(fut)
                outputs = [
                    TensorSpec(f"output{i}", datatype_of(a.dtype), (-1, *a.shape[1:]))
                    for i, a in enumerate(arrays)
                ]
            self.models[m] = ServedModel(m, j, self._sources[m], nodes[m], info, outputs)

    def _check_offload_shapes(self) -> None:
        for model, off in self.cluster.serving.offload.items():
            edge, cloud = self.models[model], self.models[off.cloud_model or model]
            if edge.info.input_shape != cloud.info.input_shape or edge.outputs != cloud.outputs:
                raise ConfigError(
                    f"serving.offload.{model}: cloud model {cloud.name!r} must take the same "
                    f"input and give the same outputs; inputs {edge.inputs} vs {cloud.inputs}, "
                    f"outputs {edge.outputs} vs {cloud.outputs}"
                )

    # -- state -----------------------------------------------------------------------------------

    def model(self, name: str, version: str | None = None) -> ServedModel:
        """The served model ``name`` (any version, or ``"1"``), else a 404 ProtocolError."""
        model = self.models.get(name)
        if model is None or version not in (None, "", VERSION):
            raise model_not_found(name, version if model else None, self.models)
        return model

    @property
    def ready(self) -> bool:
        """Not draining, and every worker up."""
        return not self.draining and all(w.alive for w in self._workers)

    def model_ready(self, m: ServedModel) -> bool:
        """Not draining, and a worker serving ``m`` is up."""
        return not self.draining and any(self._workers[n].alive for n in m.nodes)

    @property
    def view(self) -> Any:
        """The live, read-only :class:`ClusterView` the policy decides from (after start)."""
        if self._live is None:
            raise RuntimeError("the serving core is not started")
        return self._live.view

    @property
    def power_meter(self) -> PowerMeter | None:
        """The serving machine's meter read into ``/metrics`` (None: none)."""
        return self._meter

    @property
    def in_flight(self) -> int:
        """Requests admitted and not yet answered."""
        return self._in_flight

    @property
    def workers(self) -> list[Any]:
        """The node workers, in node order."""
        return list(self._workers)

    def server_metadata(self) -> dict[str, Any]:
        """The v2 server metadata object."""
        from edgesched import __version__

        extensions = ["binary_tensor_data", "model_configuration"]
        return {"name": "edgesched", "version": __version__, "extensions": extensions}

    def model_metadata(self, m: ServedModel) -> dict[str, Any]:
        """The v2 model metadata object of ``m``."""
        return model_metadata(m.name, [VERSION], PLATFORM, m.inputs, m.outputs)

    def model_config(self, m: ServedModel) -> dict[str, Any]:
        """The Triton-style model configuration of ``m``."""
        cfg = model_config(
            m.name, PLATFORM, m.inputs, m.outputs, max_batch_size=m.info.max_batch or 0
        )
        batching = self.cluster.serving.batching.get(m.name)
        if batching is not None:
            cfg["dynamic_batching"] = {
                "max_queue_delay_microseconds": int(batching.max_queue_delay_ms * 1000)
            }
        return cfg

    def sync_metrics(self) -> None:
        """Bring what is counted outside the metrics into them: the requests in flight per
        node (the live state's) and the restarts the workers' own threads count."""
        live = self._live
        for node, (node_id, w) in enumerate(zip(self.node_ids, self._workers, strict=True)):
            self.metrics.sync_restarts(node_id, w.restarts)
            if live is not None:
                self.metrics.set_in_flight(node_id, int(live.view.inflight[node]))
        for name, b in self._batchers.items():
            self.metrics.set_queue_depth(name, b.queued)

    def account(self, acct: Accounting, status: int) -> None:
        """Count one answered infer request of status ``status`` in the metrics, once the
        event loop is done with the task at hand (see :meth:`_later`)."""
        self._later(self._count, acct, status, time.monotonic() - acct.start)

    def _count(self, acct: Accounting, status: int, latency_s: float) -> None:
        batch = acct.batch if status < 400 else None
        self.metrics.observe_request(acct.model, acct.node, status, latency_s, acct.exec_s, batch)
        if status >= 400:
            self.metrics.error(acct.model, reason_of(status))
            if status >= 500:
                log.warning(
                    "request failed",
                    extra={"event": "error", "model": acct.model, "status": status},
                )

    # -- inference -------------------------------------------------------------------------------

    def admit(self) -> None:
        """Raise 503 while draining or when ``max_in_flight`` requests are in progress."""
        if self.draining:
            raise unavailable("the server is shutting down")
        if self._in_flight >= self.max_in_flight:
            raise overloaded(f"{self._in_flight} requests in flight (limit {self.max_in_flight})")

    async def infer(self, m: ServedModel, req: InferRequest, acct: Accounting) -> InferResult:
        """Answer one decoded request for ``m``.

        Raises:
            ProtocolError: 400 for a bad input or output name, 503 when overloaded or no worker
                serving ``m`` is left; WorkerError for a request the model rejected.
        """
        batch = self._begin(m, req, acct)
        try:
            batcher = self._batchers.get(m.name)
            if batcher is None:
                arrays, info = await self._run(m, batch)
                rows, size = slice(0, len(batch)), len(batch)
            else:
                arrays, info, rows, size = await batcher.submit(batch)
            return self._result(m, req, acct, batch, arrays, info, rows, size)
        finally:
            self._end()

    def infer_soon(
        self,
        m: ServedModel,
        req: InferRequest,
        acct: Accounting,
        then: Callable[[InferResult | Exception], None],
    ) -> bool:
        """Start answering one decoded request for ``m`` without a task of its own, when nothing
        on its way needs one (``m`` is neither batched nor offloaded): route it, send it, and
        call ``then`` in the loop's thread with the result, or the exception :meth:`infer` would
        raise, once the worker answers. Only a retry after a worker died takes a task.

        Returns:
            False, having done nothing, when ``m`` needs :meth:`infer` instead.

        Raises:
            ProtocolError: the request cannot be admitted or has a bad input (nothing was sent).
        """
        if m.name in self._batchers or m.name in self._offload_nodes:
            return False
        batch = self._begin(m, req, acct)
        try:
            node = self._route(m, batch)
            fut, sent = self._submit(m, batch, node)
        except BaseException:
            self._end()
            raise

        def landed(fut: WorkerFuture) -> None:
            try:
                exc = fut.exception()
                if isinstance(exc, WorkerDied):
                    retry = self._after_death(m, node, m.nodes, [node], exc)
                    task = asyncio.ensure_future(
                        self._retry(m, req, acct, batch, retry, node, then)
                    )
                    self._retries.add(task)
                    task.add_done_callback(self._retries.discard)
                    return
                arrays = self._landed(m, batch, node, sent, fut)
                self._later(self.metrics.observe_formed_batch, m.name, len(batch))
                outcome: InferResult | Exception = self._result(
                    m, req, acct, batch, arrays, RunInfo(node, fut.exec_s)
                )
            except Exception as exc:
                outcome = exc
            self._end()
            then(outcome)

        when_done(fut, landed)
        return True

    async def _retry(
        self,
        m: ServedModel,
        req: InferRequest,
        acct: Accounting,
        batch: np.ndarray,
        node: int,
        died: int,
        then: Callable[[InferResult | Exception], None],
    ) -> None:
        """:meth:`infer_soon`'s request, after the worker of node ``died`` died with it: run it
        on ``node`` (retrying no further), then hand the outcome to ``then``."""
        try:
            arrays, node, exec_s = await self._dispatch(m, batch, node, m.nodes, [died])
            outcome: InferResult | Exception = self._result(
                m, req, acct, batch, arrays, RunInfo(node, exec_s)
            )
        except Exception as exc:
            outcome = exc
        self._end()
        then(outcome)

    def _begin(self, m: ServedModel, req: InferRequest, acct: Accounting) -> np.ndarray:
        """Admit one request for ``m`` and check its input; count it in flight. Its batch."""
        acct.model = m.name
        self.admit()
        first = req.inputs[0]
        batch = check_batch(m, first.name, first.datatype, first.data)
        acct.batch = int(batch.shape[0])
        self._in_flight += 1
        return batch

    def _end(self) -> None:
        """One request admitted by :meth:`_begin` is answered."""
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.set()

    def _result(
        self,
        m: ServedModel,
        req: InferRequest,
        acct: Accounting,
        batch: np.ndarray,
        arrays: list[np.ndarray],
        info: RunInfo,
        rows: slice = slice(None),
        size: int | None = None,
    ) -> InferResult:
        """The answer to ``req`` from its batch's run (``rows`` of a formed batch of ``size``;
        by default the batch ran alone), with its feedback queued; a 400 ProtocolError for an
        output ``m`` does not have."""
        size = len(batch) if size is None else size
        acct.node = self.node_ids[info.node]
        acct.exec_s = info.exec_s
        outputs = {f"output{i}": a for i, a in enumerate(arrays)}
        if req.outputs:
            missing = [o.name for o in req.outputs if o.name not in outputs]
            if missing:
                raise ProtocolError(
                    f"model {m.name!r} has no output {missing}; it has {list(outputs)}"
                )
            outputs = {o.name: outputs[o.name] for o in req.outputs}
        offloaded = 0 if info.offloaded is None else int(info.offloaded[rows].sum())
        self.outcomes += 1
        self._later(
            self._feedback,
            m,
            acct.start,
            time.monotonic(),
            batch.nbytes,
            info,
            offloaded,
            len(batch) / size,
            self.outcomes - 1,
        )
        params: dict[str, Any] = {}
        if info.exec_s is not None:
            # the worker's execution time in seconds, so clients can split off the overhead
            params["execution_s"] = float(info.exec_s)
        if m.name in self._offload_nodes:
            params["offloaded"] = offloaded
        if size > len(batch):
            params["batch_size"] = size
        return InferResult(outputs, params)

    def _route(self, m: ServedModel, batch: np.ndarray) -> int:
        """The node the route policy picks for one batch of ``m``."""
        live = self._live
        assert live is not None
        slo = self._slo_s[m.index]
        request = Request(next(self._ids), m.index, time.monotonic(), batch.nbytes, slo)
        node = int(self._policy.decide(request, live.view))
        if node not in m.nodes:  # the driver checks each decision once (STYLE rule 7)
            raise RuntimeError(
                f"route policy {self.policy_name!r} chose node {node}, which does not serve "
                f"model {m.name!r} (nodes {m.nodes})"
            )
        return node

    async def _run(self, m: ServedModel, batch: np.ndarray) -> tuple[list[np.ndarray], RunInfo]:
        """Route and run one batch of ``m``; then offload its unsure rows if configured."""
        node = self._route(m, batch)
        arrays, node, exec_s = await self._dispatch(m, batch, node, m.nodes)
        info = RunInfo(node, exec_s)
        cloud_nodes = self._offload_nodes.get(m.name)
        if cloud_nodes and not self.cluster.nodes[node].is_cloud:
            await self._offload(m, batch, arrays, info, cloud_nodes)
        return arrays, info

    async def _offload(
        self,
        m: ServedModel,
        batch: np.ndarray,
        arrays: list[np.ndarray],
        info: RunInfo,
        cloud_nodes: list[int],
    ) -> None:
        """Re-run the rows answered below the confidence threshold on a cloud node, in place."""
        off = self.cluster.serving.offload[m.name]
        unsure = confidence(arrays[0]) < off.threshold
        info.offloaded = unsure
        if not unsure.any():
            return
        cloud = self.models[off.cloud_model or m.name]
        live = self._live
        assert live is not None
        up = [n for n in cloud_nodes if self._workers[n].alive] or cloud_nodes
        node = min(up, key=lambda n: live.view.inflight[n])
        answers, _, _ = await self._dispatch(cloud, batch[unsure], node, cloud_nodes, formed=False)
        for i, ans in enumerate(answers):
            out = np.array(arrays[i])  # a worker's arrays may be read-only
            out[unsure] = ans
            arrays[i] = out
        self.metrics.offload(m.name, int(unsure.sum()))

    async def _dispatch(
        self,
        m: ServedModel,
        batch: np.ndarray,
        node: int,
        nodes: list[int],
        tried: list[int] | None = None,
        formed: bool = True,
    ) -> tuple[list[np.ndarray], int, float | None]:
        """Run ``batch`` on ``node``; if its worker died, retry once on the least-loaded other
        node of ``nodes`` that is up (``tried``: nodes whose workers died with it before).
        ``formed``: count it in the batch-size metrics (not the rows an offload re-runs).
        Returns outputs, the node that answered, exec seconds."""
        live = self._live
        assert live is not None
        tried = [] if tried is None else tried
        while True:
            fut, sent = self._submit(m, batch, node)
            try:
                await awaitable(fut)
            except WorkerDied as exc:
                tried.append(node)
                node = self._after_death(m, node, nodes, tried, exc)
                continue
            except BaseException:
                live.finish(node, m.index, None)
                raise
            arrays = self._landed(m, batch, node, sent, fut)
            if formed:
                self._later(self.metrics.observe_formed_batch, m.name, len(batch))
            return arrays, node, fut.exec_s

    def _submit(self, m: ServedModel, batch: np.ndarray, node: int) -> tuple[WorkerFuture, float]:
        """Send ``batch`` to ``node``'s worker; its future, and when it was sent."""
        live = self._live
        assert live is not None
        live.dispatch(node, m.index)
        sent = time.monotonic()
        return self._workers[node].submit(m.source, batch), sent

    def _landed(
        self, m: ServedModel, batch: np.ndarray, node: int, sent: float, fut: WorkerFuture
    ) -> list[np.ndarray]:
        """``node``'s worker answered ``batch`` (sent at ``sent``): update the live state; the
        outputs, else raise what the worker raised."""
        live = self._live
        assert live is not None
        exc = fut.exception()
        if exc is not None:
            live.finish(node, m.index, None)
            raise exc
        live.finish(node, m.index, time.monotonic() - sent, fut.exec_s, len(batch))
        return list(fut.result())

    def _after_death(
        self, m: ServedModel, node: int, nodes: list[int], tried: list[int], exc: WorkerDied
    ) -> int:
        """``node``'s worker died with a batch of ``m`` in flight: the least-loaded node of
        ``nodes`` to retry it on, untried and up; a 503 ProtocolError when ``tried`` (which
        includes ``node``) already holds two nodes or no other is up."""
        live = self._live
        assert live is not None
        live.finish(node, m.index, None)
        others = [n for n in nodes if n not in tried and self._workers[n].alive]
        log.warning(
            "worker died",
            extra={"event": "worker_died", "node": self.node_ids[node], "retry": bool(others)},
        )
        if len(tried) > 1 or not others:
            raise unavailable(f"{exc}; no other node serving {m.name!r} is up") from None
        return min(others, key=lambda n: live.view.inflight[n])

    def _later(self, fn: Callable[..., None], *args: Any) -> None:
        """Call ``fn(*args)`` once the event loop is done with the task at hand: bookkeeping
        (metrics, the policy's ``observe``, records) waits until the answer is written, so the
        client does not wait for it (it runs before the loop reads the next request)."""
        loop = self._loop
        assert loop is not None, "the core is not started"
        loop.call_soon(fn, *args)

    def _feedback(
        self,
        m: ServedModel,
        arrival: float,
        now: float,
        nbytes: int,
        info: RunInfo,
        offloaded: int,
        share: float,
        outcome_id: int,
    ) -> None:
        """Build the request's Outcome (answered at ``now``); give it to the policy and the
        records."""
        if not self._policy.wants_outcomes and self._records is None:
            return
        view = self._live.view  # type: ignore[union-attr]
        node = info.node
        exec_s = info.exec_s or 0.0
        dynamic_w = float(view.peak_power_w[node] - view.idle_power_w[node])
        energy = exec_s * dynamic_w * float(view.utilisation[node, m.index]) * share
        outcome = Outcome(
            outcome_id,
            m.index,
            node,
            arrival,
            now - exec_s,
            now,
            energy,
            bool(offloaded) or bool(view.is_cloud[node]),
            self._slo_s[m.index],
        )
        if self._policy.wants_outcomes:
            self._policy.observe(outcome)
        if self._records is not None:
            self._records.write(outcome, m.name, self.node_ids[node], nbytes, self._epoch)
