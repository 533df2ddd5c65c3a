"""The KServe v2 / Open Inference Protocol HTTP frontend (ARCHITECTURE §5).

:class:`InferenceServer` runs one :class:`NodeWorker` per cluster node, keeps a live
:class:`ClusterView` of them (:mod:`edgesched.serve._state`), routes every request with a route
policy and serves the v2 REST endpoints over its own HTTP/1.1 server (:mod:`._http1`, which
receives tensor bodies straight into one buffer):

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
import functools
import hmac
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from edgesched.core.cluster import Cluster
from edgesched.errors import ConfigError
from edgesched.serve._http import Accounting, ServedModel, is_loopback
from edgesched.serve._http1 import HttpRequest, HttpResponse, HttpServer, Later
from edgesched.serve._shm import MIN_SHARED_BYTES
from edgesched.serve.core import VERSION, InferResult, ServingCore
from edgesched.serve.protocol import (
    HEADER_LENGTH,
    InferRequest,
    ProtocolError,
    decode_request,
    encode_response,
    error_body,
    http_status,
    unavailable,
)
from edgesched.serve.records import RecordWriter

if TYPE_CHECKING:
    from edgesched.policies.route import RoutePolicy
    from edgesched.profile.power import PowerMeter

_HEADER_KEY = HEADER_LENGTH.lower()
#: Alignment in bytes of a binary tensor body's data in its shared block (a cache line).
_ALIGN = 64
#: What every model route ends with, → its handler's name.
_MODEL_ROUTES = {"": "_model_meta_h", "ready": "_model_ready_h", "config": "_model_config_h"}


def json_response(obj: Any, status: int = 200) -> HttpResponse:
    """``obj`` as a JSON response."""
    return HttpResponse(status, json.dumps(obj).encode("utf-8"))


def error_response(status: int, exc: BaseException | str) -> HttpResponse:
    """A v2 error body ``{"error": ...}`` with ``status``."""
    return HttpResponse(status, error_body(exc))


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
        self._http: HttpServer | None = None
        self._leases: dict[int, Any] = {}  # id of a request → the block its body lies in
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
            DependencyNotInstalled: for gRPC, grpcio is missing.
        """
        if not is_loopback(host) and not self._token:
            raise ConfigError(
                f"refusing to bind {host!r} without an auth token; bind 127.0.0.1, or set "
                "--auth-token / EDGESCHED_AUTH_TOKEN"
            )
        await self.core.start()
        self._http = HttpServer(
            self._handle,
            max_body_bytes=self.max_payload_bytes,
            refused=self._refused,
            body_buffer=self._body_buffer,
            body_done=self._body_done,
        )
        try:
            bound = await self._http.start(host, port)
            if grpc_port is not None:
                from edgesched.serve.grpc_frontend import GrpcFrontend

                self._grpc = GrpcFrontend(
                    self.core, max_message_bytes=self.max_payload_bytes, auth_token=self._token
                )
                await self._grpc.start(host, grpc_port)
        except BaseException:
            self._grpc = None
            await self.stop(drain_timeout_s=0)
            raise
        return bound

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
        http, self._http = self._http, None
        if http is not None:
            http.close()  # idle connections close now, busy ones after their answer
        grpc_stop = None
        if self._grpc is not None:
            grpc_stop = asyncio.ensure_future(self._grpc.stop(drain_timeout_s))
        await self.core.stop(drain_timeout_s)
        if grpc_stop is not None:
            await grpc_stop
            self._grpc = None
        if http is not None:
            await http.wait_closed(max(drain_timeout_s, 1.0))

    # -- plumbing --------------------------------------------------------------------------------

    def _handle(self, request: HttpRequest) -> HttpResponse | Later | Awaitable[HttpResponse]:
        """Answer one request: auth check, route, handler; every exception becomes a v2 error
        body (the server never crashes); infer requests are counted in the metrics. An infer
        request of a model that is neither batched nor offloaded is answered from callbacks
        (a :class:`Later`); other requests run as tasks."""
        try:
            if self._token is not None:
                given = request.headers.get("authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode()):
                    raise ProtocolError("missing or wrong 'Authorization: Bearer' token", 401)
            handler, model = self._resolve(request.method, request.path)
            if handler != self._infer_h:
                m = None if model is None else self.core.model(*model)
                return self._guarded(handler(request, m))
        except Exception as exc:
            return error_response(http_status(exc), exc)
        acct = Accounting(time.monotonic())
        try:
            m = self.core.model(*model)
            req = self._decode(request, m, acct)
            later = Later()
            answer = functools.partial(self._answer, later, m, req, acct)
            if self.core.infer_soon(m, req, acct, answer):
                return later
        except Exception as exc:
            response = error_response(http_status(exc), exc)
            self.core.account(acct, response.status)
            return response
        return self._infer_h(m, req, acct)

    @staticmethod
    async def _guarded(pending: Awaitable[HttpResponse]) -> HttpResponse:
        """``pending``'s response, or its exception as a v2 error body."""
        try:
            return await pending
        except Exception as exc:
            return error_response(http_status(exc), exc)

    def _resolve(
        self, method: str, path: str
    ) -> tuple[Callable[..., Awaitable[HttpResponse]], tuple[str, str | None] | None]:
        """The handler of a request, and the (model, version) it names (None for the server
        routes); a 404 or 405 ProtocolError for no route."""
        parts = path.split("/")
        model = None
        want = "GET"
        if path == "/v2/health/live":
            handler: Any = self._live_h
        elif path == "/v2/health/ready":
            handler = self._ready_h
        elif path == "/v2":
            handler = self._server_meta_h
        elif path == "/metrics":
            handler = self._metrics_h
        elif len(parts) >= 4 and parts[:3] == ["", "v2", "models"] and parts[3]:
            version = None
            rest = parts[4:]
            if len(rest) >= 2 and rest[0] == "versions" and rest[1]:
                version, rest = rest[1], rest[2:]
            action = rest[0] if len(rest) == 1 else "" if not rest else None
            if action == "infer":
                handler, want = self._infer_h, "POST"
            elif action in _MODEL_ROUTES:
                handler = getattr(self, _MODEL_ROUTES[action])
            else:
                raise ProtocolError(f"Not Found: {method} {path}", 404)
            model = (parts[3], version)
        else:
            raise ProtocolError(f"Not Found: {method} {path}", 404)
        if method != want:
            raise ProtocolError(f"Method Not Allowed: {method} {path}", 405)
        return handler, model

    def _refused(self, request: HttpRequest, status: int, message: str) -> HttpResponse:
        """The answer to a request refused before its body was read (413, 411)."""
        if request.method == "POST" and request.path.endswith("/infer"):
            self.core.account(Accounting(time.monotonic()), status)
        return error_response(status, message)

    def _body_buffer(self, head: HttpRequest, length: int) -> Any:
        """Where a request body is received: for a binary tensor body big enough, a block
        shared with the local workers (so that the tensor reaches them without a copy), with
        the tensor data 64-byte aligned; else a new bytearray."""
        pool = self.core.pool
        header = head.headers.get(_HEADER_KEY)
        if pool is None or length < MIN_SHARED_BYTES or header is None or not header.isdigit():
            return bytearray(length)
        pad = -int(header) % _ALIGN
        block = pool.take(pad + length)
        self._leases[id(head)] = block
        return block.buf[pad : pad + length]

    def _body_done(self, request: HttpRequest) -> None:
        """Take back the block of a request answered (or lost) whose body lay in one."""
        block = self._leases.pop(id(request), None)
        if block is not None and self.core.pool is not None:
            self.core.pool.release(block)

    # -- handlers --------------------------------------------------------------------------------

    async def _live_h(self, request: HttpRequest, m: None) -> HttpResponse:
        return json_response({"live": True})

    async def _ready_h(self, request: HttpRequest, m: None) -> HttpResponse:
        if not self.core.ready:
            raise unavailable("not ready (draining, or a worker is down)")
        return json_response({"ready": True})

    async def _metrics_h(self, request: HttpRequest, m: None) -> HttpResponse:
        self.core.sync_metrics()
        payload, content_type = self.core.metrics.render()
        return HttpResponse(200, payload, content_type)

    async def _server_meta_h(self, request: HttpRequest, m: None) -> HttpResponse:
        return json_response(self.core.server_metadata())

    async def _model_meta_h(self, request: HttpRequest, m: ServedModel) -> HttpResponse:
        return json_response(self.core.model_metadata(m))

    async def _model_ready_h(self, request: HttpRequest, m: ServedModel) -> HttpResponse:
        if not self.core.model_ready(m):
            raise unavailable(f"model {m.name!r} has no worker up")
        return json_response({"name": m.name, "ready": True})

    async def _model_config_h(self, request: HttpRequest, m: ServedModel) -> HttpResponse:
        return json_response(self.core.model_config(m))

    def _decode(self, request: HttpRequest, m: ServedModel, acct: Accounting) -> InferRequest:
        """Admit an infer request for ``m`` and decode its body; a ProtocolError if it cannot
        be admitted or does not decode."""
        acct.model = m.name
        self.core.admit()
        header = request.headers.get(_HEADER_KEY)
        try:
            header_length = None if header is None else int(header)
        except ValueError:
            raise ProtocolError(f"{HEADER_LENGTH} {header!r} is not an integer") from None
        return decode_request(request.body, header_length, max_bytes=self.max_payload_bytes)

    async def _infer_h(self, m: ServedModel, req: InferRequest, acct: Accounting) -> HttpResponse:
        """Answer a decoded infer request through a task (a batched or offloaded model)."""
        try:
            outcome: InferResult | Exception = await self.core.infer(m, req, acct)
        except Exception as exc:
            outcome = exc
        return self._response(m, req, acct, outcome)

    def _answer(
        self,
        later: Later,
        m: ServedModel,
        req: InferRequest,
        acct: Accounting,
        outcome: InferResult | Exception,
    ) -> None:
        """Give ``later`` the response to an infer request answered from callbacks."""
        later.set(self._response(m, req, acct, outcome))

    def _response(
        self, m: ServedModel, req: InferRequest, acct: Accounting, outcome: InferResult | Exception
    ) -> HttpResponse:
        """The response to an infer request, counted in the metrics: its outputs, or the v2
        error body of the exception it failed with."""
        try:
            if isinstance(outcome, Exception):
                raise outcome
            payload, headers = encode_response(
                m.name,
                VERSION,
                outcome.outputs,
                request_id=req.id,
                binary=req.binary_outputs(),
                parameters=outcome.parameters or None,
            )
            content_type = headers.pop("Content-Type", "application/json")
            response = HttpResponse(200, payload, content_type, headers)
        except Exception as exc:
            response = error_response(http_status(exc), exc)
        self.core.account(acct, response.status)
        return response
