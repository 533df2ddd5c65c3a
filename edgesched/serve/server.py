"""The KServe v2 / Open Inference Protocol HTTP frontend (ARCHITECTURE §5).

:class:`InferenceServer` runs one :class:`NodeWorker` per cluster node, keeps a live
:class:`ClusterView` of them (:mod:`edgesched.serve._state`), routes every request with a route
policy and serves the v2 REST endpoints with aiohttp (``pip install "edgesched[serve]"``):

=====================================================  ==========================================
``GET /v2/health/live``, ``GET /v2/health/ready``       liveness; readiness (every worker up)
``GET /v2``                                            server metadata
``GET /v2/models/{m}[/versions/{v}]``                  model metadata
``GET /v2/models/{m}[/versions/{v}]/ready``            model readiness (a worker serving it is up)
``GET /v2/models/{m}[/versions/{v}]/config``           Triton-style model configuration
``POST /v2/models/{m}[/versions/{v}]/infer``           inference (JSON or binary tensor extension)
``GET /metrics``                                       Prometheus metrics (:mod:`.metrics`)
=====================================================  ==========================================

Every error is a v2 error body ``{"error": ...}`` with its HTTP status: 400 bad request, 401
missing token, 404 unknown model, 413 payload too large, 503 overloaded or no worker left. Every
model has the single version ``"1"``. Source: ``shared/research/serving.md`` (v2 REST spec).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgesched.core.cluster import Cluster
from edgesched.core.request import Outcome, Request
from edgesched.errors import ConfigError, DependencyNotInstalled
from edgesched.serve._datatypes import TensorSpec, datatype_of, model_config, model_metadata
from edgesched.serve._http import (
    ACCT_KEY,
    Accounting,
    ServedModel,
    check_batch,
    error_response,
    is_loopback,
    json_response,
)
from edgesched.serve._state import LiveState
from edgesched.serve.metrics import ServerMetrics, reason_of
from edgesched.serve.protocol import (
    HEADER_LENGTH,
    ProtocolError,
    decode_request,
    encode_response,
    http_status,
    model_not_found,
    overloaded,
)
from edgesched.serve.worker import NodeWorker, WorkerDied

VERSION = "1"
PLATFORM = "onnxruntime_onnx"


class InferenceServer:
    """A v2 inference server over the workers of one cluster (see the module docstring).

    Use from one asyncio event loop: ``port = await server.start()`` … ``await server.stop()``.
    """

    def __init__(
        self,
        cluster: Cluster,
        *,
        policy: str = "min-expected-completion",
        model_files: Mapping[str, str | Path] | None = None,
        backend: str = "onnxruntime",
        threads_per_node: int | None = 1,
        max_payload_bytes: int = 64 * 2**20,
        max_in_flight: int = 1024,
        auth_token: str | None = None,
        slo_s: float = 1.0,
        seed: int = 0,
    ) -> None:
        """Describe the server; :meth:`start` spawns the workers and binds the port.

        Args:
            cluster: the nodes and the models (with instance counts) deployed on each.
            policy: route policy name (``edgesched.policies.names("route")``).
            model_files: model name → ONNX file; other models are zoo names.
            backend: executor backend of every worker (``onnxruntime`` or ``torch``).
            threads_per_node: intra-op threads per model instance (None: backend default).
            max_payload_bytes: largest request body in bytes (64 MiB, like Triton's gRPC
                default message limit order of magnitude; our choice); larger ones get 413.
            max_in_flight: most requests in progress at once; more get 503.
            auth_token: when set, every request needs ``Authorization: Bearer <token>`` (401
                otherwise) and the server may bind non-loopback addresses.
            slo_s: latency deadline in seconds given to the policy with each request (our
                choice; SLO-aware policies read it).
            seed: seed of the policy's random generator.

        Raises:
            ConfigError: a ``model_files`` name no node serves, or a bad limit.
            UnknownNameError: an unknown policy.
        """
        from edgesched.policies import make

        unknown = set(model_files or {}) - set(cluster.model_names)
        if unknown:
            raise ConfigError(
                f"model_files names {sorted(unknown)} but the cluster serves only "
                f"{list(cluster.model_names)}; fix the NAME of NAME=PATH"
            )
        if max_payload_bytes < 1 or max_in_flight < 1:
            raise ConfigError("max_payload_bytes and max_in_flight must be ≥ 1")
        self.cluster = cluster
        self.policy_name = policy
        self._policy = make("route", policy)
        self._sources = {m: str((model_files or {}).get(m, m)) for m in cluster.model_names}
        self._workers = [
            NodeWorker(
                node.id,
                {self._sources[m]: c for m, c in node.models.items()},
                backend=backend,
                threads=threads_per_node,
            )
            for node in cluster.nodes
        ]
        self.max_payload_bytes = max_payload_bytes
        self.max_in_flight = max_in_flight
        self._token = auth_token
        self._slo_s = slo_s
        self._seed = seed
        self._models: dict[str, ServedModel] = {}
        self._live: LiveState | None = None
        self._runner: Any = None
        self._site: Any = None
        self._ids = itertools.count()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._draining = False
        self.outcomes = 0  # answered requests (for tests and logs)
        self._node_ids = [node.id for node in cluster.nodes]
        self.metrics = ServerMetrics(cluster.model_names, self._node_ids)

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 8000) -> int:
        """Start the workers, then listen on ``host:port``; returns the bound port.

        Args:
            host: address to bind; anything but loopback needs ``auth_token``.
            port: TCP port; 0 picks a free one.

        Raises:
            ConfigError: a non-loopback ``host`` without an auth token.
            WorkerError: a worker could not load its models.
            DependencyNotInstalled: aiohttp is missing.
        """
        try:
            from aiohttp import web
        except ImportError:
            raise DependencyNotInstalled("aiohttp", "serve") from None
        if not is_loopback(host) and not self._token:
            raise ConfigError(
                f"refusing to bind {host!r} without an auth token; bind 127.0.0.1, or set "
                "--auth-token / EDGESCHED_AUTH_TOKEN"
            )
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(loop.run_in_executor(None, w.start) for w in self._workers), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            await loop.run_in_executor(None, self._close_workers, False, 5.0)
            raise failed[0]
        await self._describe_models()
        self._policy.reset(self._live.view, np.random.default_rng(self._seed))  # type: ignore[union-attr]
        app = web.Application(
            client_max_size=self.max_payload_bytes + 1, middlewares=[self._middleware(web)]
        )
        routes = [
            ("GET", "/v2/health/live", self._live_h),
            ("GET", "/v2/health/ready", self._ready_h),
            ("GET", "/v2", self._server_meta_h),
            ("GET", "/metrics", self._metrics_h),
        ]
        for prefix in ("/v2/models/{model}", "/v2/models/{model}/versions/{version}"):
            routes += [
                ("GET", prefix, self._model_meta_h),
                ("GET", prefix + "/ready", self._model_ready_h),
                ("GET", prefix + "/config", self._model_config_h),
                ("POST", prefix + "/infer", self._infer_h),
            ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, host, port)
        await self._site.start()
        return int(self._runner.addresses[0][1])

    async def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Stop accepting, let the requests in flight finish, then close the workers.

        Requests still arriving on open connections meanwhile get 503. Idempotent.

        Args:
            drain_timeout_s: the most seconds to wait for requests in flight.
        """
        self._draining = True
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self._in_flight:
            self._idle.clear()
            # past the timeout, the workers' close fails what is left with WorkerDied
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), drain_timeout_s)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._close_workers, True, drain_timeout_s)

    def _close_workers(self, drain: bool, timeout_s: float) -> None:
        for w in self._workers:
            w.close(drain=drain, timeout_s=timeout_s)

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
                arrays = await asyncio.wrap_future(fut)
                outputs = [
                    TensorSpec(f"output{i}", datatype_of(a.dtype), (-1, *a.shape[1:]))
                    for i, a in enumerate(arrays)
                ]
            self._models[m] = ServedModel(m, j, self._sources[m], nodes[m], info, outputs)

    # -- plumbing --------------------------------------------------------------------------------

    def _middleware(self, web: Any) -> Any:
        """Auth check, every exception → a v2 error body (the server never crashes), and the
        metrics of every answered infer request."""

        @web.middleware
        async def middleware(request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
            if getattr(request.match_info.route, "handler", None) != self._infer_h:
                return await answer(request, handler)
            acct = request[ACCT_KEY] = Accounting(time.monotonic())
            response = await answer(request, handler)
            self._account(acct, response.status)
            return response

        async def answer(request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
            try:
                if self._token is not None:
                    given = request.headers.get("Authorization", "")
                    if not hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode()):
                        raise ProtocolError("missing or wrong 'Authorization: Bearer' token", 401)
                return await handler(request)
            except web.HTTPException as exc:  # unknown route, wrong method, body too large
                if exc.status < 400:
                    raise
                msg = f"{exc.reason}: {request.method} {request.path}"
                if exc.status == 413:
                    msg = f"request body exceeds the limit of {self.max_payload_bytes} bytes"
                return error_response(web, exc.status, msg)
            except Exception as exc:
                return error_response(web, http_status(exc), exc)

        return middleware

    def _account(self, acct: Accounting, status: int) -> None:
        latency_s = time.monotonic() - acct.start
        batch = acct.batch if status < 400 else None
        self.metrics.observe_request(acct.model, acct.node, status, latency_s, acct.exec_s, batch)
        if status >= 400:
            self.metrics.error(acct.model, reason_of(status))

    def _model(self, request: Any) -> ServedModel:
        name = request.match_info["model"]
        version = request.match_info.get("version")
        model = self._models.get(name)
        if model is None or version not in (None, VERSION):
            raise model_not_found(name, version if model else None, self._models)
        return model

    # -- handlers --------------------------------------------------------------------------------

    async def _live_h(self, request: Any) -> Any:
        return json_response({"live": True})

    async def _ready_h(self, request: Any) -> Any:
        ready = not self._draining and all(w.alive for w in self._workers)
        if not ready:
            raise overloaded("not ready (draining, or a worker is down)")
        return json_response({"ready": True})

    async def _metrics_h(self, request: Any) -> Any:
        from aiohttp import web

        for node_id, w in zip(self._node_ids, self._workers, strict=True):
            self.metrics.sync_restarts(node_id, w.restarts)  # counted by its reader thread
        payload, content_type = self.metrics.render()
        return web.Response(body=payload, headers={"Content-Type": content_type})

    async def _server_meta_h(self, request: Any) -> Any:
        from edgesched import __version__

        extensions = ["binary_tensor_data", "model_configuration"]
        return json_response(
            {"name": "edgesched", "version": __version__, "extensions": extensions}
        )

    async def _model_meta_h(self, request: Any) -> Any:
        m = self._model(request)
        return json_response(model_metadata(m.name, [VERSION], PLATFORM, m.inputs, m.outputs))

    async def _model_ready_h(self, request: Any) -> Any:
        m = self._model(request)
        if self._draining or not any(self._workers[n].alive for n in m.nodes):
            raise overloaded(f"model {m.name!r} has no worker up")
        return json_response({"name": m.name, "ready": True})

    async def _model_config_h(self, request: Any) -> Any:
        m = self._model(request)
        cfg = model_config(
            m.name, PLATFORM, m.inputs, m.outputs, max_batch_size=m.info.max_batch or 0
        )
        return json_response(cfg)

    async def _infer_h(self, request: Any) -> Any:
        from aiohttp import web

        arrival = time.monotonic()
        m = self._model(request)
        acct: Accounting | None = request.get(ACCT_KEY)
        if acct is not None:
            acct.model = m.name
        if self._draining:
            raise overloaded("the server is shutting down")
        if self._in_flight >= self.max_in_flight:
            raise overloaded(f"{self._in_flight} requests in flight (limit {self.max_in_flight})")
        length = request.content_length
        if length is not None and length > self.max_payload_bytes:
            raise ProtocolError(
                f"request body of {length} bytes exceeds the limit of "
                f"{self.max_payload_bytes} bytes; send smaller batches",
                status=413,
            )
        self._in_flight += 1
        try:
            body = await request.read()
            header = request.headers.get(HEADER_LENGTH)
            try:
                header_length = None if header is None else int(header)
            except ValueError:
                raise ProtocolError(f"{HEADER_LENGTH} {header!r} is not an integer") from None
            req = decode_request(body, header_length, max_bytes=self.max_payload_bytes)
            batch = check_batch(m, req.inputs[0].name, req.inputs[0].datatype, req.inputs[0].data)
            if acct is not None:
                acct.batch = int(batch.shape[0])
            arrays = await self._run(m, batch, arrival, acct)
            outputs = {f"output{i}": a for i, a in enumerate(arrays)}
            if req.outputs:
                missing = [o.name for o in req.outputs if o.name not in outputs]
                if missing:
                    raise ProtocolError(
                        f"model {m.name!r} has no output {missing}; it has {list(outputs)}"
                    )
                outputs = {o.name: outputs[o.name] for o in req.outputs}
            exec_s = None if acct is None else acct.exec_s
            payload, headers = encode_response(
                m.name,
                VERSION,
                outputs,
                request_id=req.id,
                binary=req.binary_outputs(),
                # the worker's execution time in seconds, so clients can split off the overhead
                parameters=None if exec_s is None else {"execution_s": float(exec_s)},
            )
            return web.Response(body=payload, headers=headers)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _run(
        self, m: ServedModel, batch: np.ndarray, arrival: float, acct: Accounting | None = None
    ) -> list[np.ndarray]:
        """Route, run, and account for one batch; retry once elsewhere if a worker died."""
        live = self._live
        assert live is not None
        rid = next(self._ids)
        request = Request(rid, m.index, arrival, batch.nbytes, self._slo_s)
        node = int(self._policy.decide(request, live.view))
        if node not in m.nodes:  # the driver checks each decision once (STYLE rule 7)
            raise RuntimeError(
                f"route policy {self.policy_name!r} chose node {node}, which does not serve "
                f"model {m.name!r} (nodes {m.nodes})"
            )
        tried: list[int] = []
        while True:
            live.dispatch(node, m.index)
            self._node_gauge(node)
            if acct is not None:
                acct.node = self._node_ids[node]
            sent = time.monotonic()
            fut = self._workers[node].submit(m.source, batch)
            try:
                arrays = await asyncio.wrap_future(fut)
            except WorkerDied as exc:
                live.finish(node, m.index, None)
                self._node_gauge(node)
                tried.append(node)
                others = [n for n in m.nodes if n not in tried and self._workers[n].alive]
                if len(tried) > 1 or not others:
                    raise overloaded(f"{exc}; no other node serving {m.name!r} is up") from None
                node = min(others, key=lambda n: live.view.inflight[n])
                continue
            except BaseException:
                live.finish(node, m.index, None)
                self._node_gauge(node)
                raise
            live.finish(node, m.index, time.monotonic() - sent)
            self._node_gauge(node)
            if acct is not None:
                acct.exec_s = fut.exec_s
            break
        self.outcomes += 1
        if self._policy.wants_outcomes:
            self._policy.observe(self._outcome(request, node, fut.exec_s, time.monotonic()))
        return list(arrays)

    def _node_gauge(self, node: int) -> None:
        self.metrics.set_in_flight(self._node_ids[node], int(self._live.view.inflight[node]))  # type: ignore[union-attr]

    def _outcome(self, request: Request, node: int, exec_s: float | None, now: float) -> Outcome:
        """The measured outcome; energy is estimated as exec time × dynamic power × util."""
        view = self._live.view  # type: ignore[union-attr]
        exec_s = exec_s or 0.0
        dynamic_w = float(view.peak_power_w[node] - view.idle_power_w[node])
        energy = exec_s * dynamic_w * float(view.utilisation[node, request.model])
        return Outcome(
            request.id,
            request.model,
            node,
            request.arrival_s,
            now - exec_s,
            now,
            energy,
            bool(view.is_cloud[node]),
            request.slo_s,
        )
