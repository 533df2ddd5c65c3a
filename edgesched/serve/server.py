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
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from edgesched.core.cluster import Cluster
from edgesched.errors import ConfigError, DependencyNotInstalled
from edgesched.serve._http import (
    CURRENT_ACCT,
    Accounting,
    ServedModel,
    error_response,
    is_loopback,
    json_response,
)
from edgesched.serve.core import VERSION, ServingCore
from edgesched.serve.protocol import (
    HEADER_LENGTH,
    ProtocolError,
    decode_request,
    encode_response,
    http_status,
    unavailable,
)
from edgesched.serve.records import RecordWriter

if TYPE_CHECKING:
    from edgesched.policies.route import RoutePolicy
    from edgesched.profile.power import PowerMeter


class InferenceServer:
    """A v2 inference server over the workers of one cluster (see the module docstring).

    Use from one asyncio event loop: ``port = await server.start()`` … ``await server.stop()``.
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
        max_payload_bytes: int = 64 * 2**20,
        max_in_flight: int = 1024,
        auth_token: str | None = None,
        slo_s: float = 1.0,
        seed: int = 0,
        records: str | Path | None = None,
        power_meter: PowerMeter | None = None,
    ) -> None:
        """Describe the server; :meth:`start` starts the workers and binds the ports.

        Args:
            cluster: the nodes, the models deployed on each, and the ``serving:`` section.
            policy: route policy name (``edgesched.policies.names("route")``) or instance.
            model_files: model name → ONNX file; other models are zoo names.
            backend: executor backend of every worker (``onnxruntime`` or ``torch``) where the
                cluster's ``serving.nodes`` does not say.
            threads_per_node: intra-op threads per model instance (None: backend default).
            workers: ``local`` (an OS process per node) or ``ray`` (a Ray actor per node).
            ray_address: the Ray cluster to join (``HOST:PORT``); None starts a local one.
            max_payload_bytes: largest request body in bytes (64 MiB, like Triton's gRPC
                default message limit order of magnitude; our choice); larger ones get 413.
            max_in_flight: most requests in progress at once; more get 503.
            auth_token: when set, every request needs ``Authorization: Bearer <token>`` (401
                otherwise) and the server may bind non-loopback addresses.
            slo_s: latency deadline in seconds given to the policy with each request (our
                choice; SLO-aware policies read it).
            seed: seed of the policy's random generator.
            records: CSV file to write one record per answered request to
                (:mod:`edgesched.serve.records`); None writes none.

        Raises:
            ConfigError: a ``model_files`` name no node serves, or a bad limit.
            UnknownNameError: an unknown policy.
        """
        if max_payload_bytes < 1:
            raise ConfigError("max_payload_bytes must be ≥ 1")
        self.core = ServingCore(
            cluster,
            policy=policy,
            model_files=model_files,
            backend=backend,
            threads_per_node=threads_per_node,
            workers=workers,
            ray_address=ray_address,
            max_in_flight=max_in_flight,
            slo_s=slo_s,
            seed=seed,
            records=None if records is None else RecordWriter(records),
            power_meter=power_meter,
        )
        self.cluster = cluster
        self.policy_name = self.core.policy_name
        self.max_payload_bytes = max_payload_bytes
        self._token = auth_token
        self._runner: Any = None
        self._site: Any = None
        self._grpc: Any = None

    @property
    def metrics(self) -> Any:
        """The server's :class:`~edgesched.serve.metrics.ServerMetrics`."""
        return self.core.metrics

    @property
    def outcomes(self) -> int:
        """Requests answered so far."""
        return self.core.outcomes

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(
        self, host: str = "127.0.0.1", port: int = 8000, grpc_port: int | None = None
    ) -> int:
        """Start the workers, then listen on ``host:port`` (and gRPC on ``host:grpc_port``).

        Args:
            host: address to bind; anything but loopback needs ``auth_token``.
            port: HTTP port; 0 picks a free one.
            grpc_port: gRPC port (0 picks a free one, :attr:`grpc_port` tells which); None
                serves no gRPC.

        Returns:
            The bound HTTP port.

        Raises:
            ConfigError: a non-loopback ``host`` without an auth token.
            WorkerError: a worker could not load its models.
            DependencyNotInstalled: aiohttp (or, for gRPC, grpcio) is missing.
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
        await self.core.start()
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
        if grpc_port is not None:
            from edgesched.serve.grpc_frontend import GrpcFrontend

            self._grpc = GrpcFrontend(
                self.core, max_message_bytes=self.max_payload_bytes, auth_token=self._token
            )
            try:
                await self._grpc.start(host, grpc_port)
            except BaseException:
                self._grpc = None
                await self.stop(drain_timeout_s=0)
                raise
        return int(self._runner.addresses[0][1])

    @property
    def grpc_port(self) -> int | None:
        """The bound gRPC port (None when gRPC is not served)."""
        return None if self._grpc is None else self._grpc.port

    async def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Stop accepting, let the requests in flight finish, then close the workers.

        Requests still arriving on open connections meanwhile get 503. Idempotent.

        Args:
            drain_timeout_s: the most seconds to wait for requests in flight.
        """
        self.core.draining = True
        if self._site is not None:
            await self._site.stop()
            self._site = None
        grpc_stop = None
        if self._grpc is not None:
            grpc_stop = asyncio.ensure_future(self._grpc.stop(drain_timeout_s))
        await self.core.stop(drain_timeout_s)
        if grpc_stop is not None:
            await grpc_stop
            self._grpc = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- plumbing --------------------------------------------------------------------------------

    def _middleware(self, web: Any) -> Any:
        """Auth check, every exception → a v2 error body (the server never crashes), and the
        metrics of every answered infer request."""

        @web.middleware
        async def middleware(request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
            if getattr(request.match_info.route, "handler", None) != self._infer_h:
                return await answer(request, handler)
            acct = Accounting(time.monotonic())
            token = CURRENT_ACCT.set(acct)
            try:
                response = await answer(request, handler)
            finally:
                CURRENT_ACCT.reset(token)
            self.core.account(acct, response.status)
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

    def _model(self, request: Any) -> ServedModel:
        return self.core.model(request.match_info["model"], request.match_info.get("version"))

    # -- handlers --------------------------------------------------------------------------------

    async def _live_h(self, request: Any) -> Any:
        return json_response({"live": True})

    async def _ready_h(self, request: Any) -> Any:
        if not self.core.ready:
            raise unavailable("not ready (draining, or a worker is down)")
        return json_response({"ready": True})

    async def _metrics_h(self, request: Any) -> Any:
        from aiohttp import web

        self.core.sync_metrics()
        payload, content_type = self.core.metrics.render()
        return web.Response(body=payload, headers={"Content-Type": content_type})

    async def _server_meta_h(self, request: Any) -> Any:
        return json_response(self.core.server_metadata())

    async def _model_meta_h(self, request: Any) -> Any:
        return json_response(self.core.model_metadata(self._model(request)))

    async def _model_ready_h(self, request: Any) -> Any:
        m = self._model(request)
        if not self.core.model_ready(m):
            raise unavailable(f"model {m.name!r} has no worker up")
        return json_response({"name": m.name, "ready": True})

    async def _model_config_h(self, request: Any) -> Any:
        return json_response(self.core.model_config(self._model(request)))

    async def _infer_h(self, request: Any) -> Any:
        from aiohttp import web

        acct = CURRENT_ACCT.get() or Accounting(time.monotonic())
        m = self._model(request)
        acct.model = m.name
        self.core.admit()
        length = request.content_length
        if length is not None and length > self.max_payload_bytes:
            raise ProtocolError(
                f"request body of {length} bytes exceeds the limit of "
                f"{self.max_payload_bytes} bytes; send smaller batches",
                status=413,
            )
        body = await request.read()
        header = request.headers.get(HEADER_LENGTH)
        try:
            header_length = None if header is None else int(header)
        except ValueError:
            raise ProtocolError(f"{HEADER_LENGTH} {header!r} is not an integer") from None
        req = decode_request(body, header_length, max_bytes=self.max_payload_bytes)
        result = await self.core.infer(m, req, acct)
        payload, headers = encode_response(
            m.name,
            VERSION,
            result.outputs,
            request_id=req.id,
            binary=req.binary_outputs(),
            parameters=result.parameters or None,
        )
        return web.Response(body=payload, headers=headers)
