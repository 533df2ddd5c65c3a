"""The KServe v2 / Open Inference Protocol gRPC frontend (``inference.GRPCInferenceService``).

:class:`GrpcFrontend` serves Triton's superset of the v2 gRPC service with ``grpc.aio`` over the
same :class:`~edgesched.serve.core.ServingCore` as the HTTP frontend, with the message classes
and servicer base that ship, compiled, in the tritonclient wheel (``tritonclient.grpc.service_pb2``
and ``service_pb2_grpc``; ``pip install "edgesched[serve]"``):

=====================================  ============================================================
``ServerLive``, ``ServerReady``        liveness; readiness (not draining, every worker up)
``ModelReady``                         a worker serving the model is up (unknown model: NOT_FOUND)
``ServerMetadata``, ``ModelMetadata``  the v2 metadata
``ModelConfig``                        Triton's ``ModelConfig`` (perf_analyzer needs it)
``ModelInfer``                         inference; inputs from ``raw_input_contents`` or the typed
                                       ``contents``, outputs always in ``raw_output_contents``
``ModelStreamInfer``                   the same over one bidirectional stream; answers come in
                                       completion order, errors as ``error_message``
=====================================  ============================================================

The other RPCs (repository, statistics, shared memory, trace, logs) answer UNIMPLEMENTED. Raw
contents use the binary tensor encoding (little-endian, row-major, BYTES elements length-
prefixed). Errors are gRPC statuses named after the HTTP frontend's: INVALID_ARGUMENT (400),
NOT_FOUND (404), RESOURCE_EXHAUSTED (a message over ``max_message_bytes``, or past the core's
``max_in_flight``), UNAVAILABLE (draining, or no worker left), UNAUTHENTICATED (missing
``authorization: Bearer`` metadata), INTERNAL (a bug). Source: ``shared/research/serving.md``
§3.3 (the v2 gRPC schema and Triton's field numbers).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import numbers
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import numpy as np

from edgesched.errors import ConfigError, DependencyNotInstalled, EdgeschedError
from edgesched.serve import _datatypes as dt
from edgesched.serve._http import Accounting, ServedModel
from edgesched.serve.core import VERSION, ServingCore
from edgesched.serve.protocol import (
    GRPC_CODES,
    InferRequest,
    InferTensor,
    ProtocolError,
    RequestedOutput,
    _unique,
    http_status,
)

#: v2 datatype -> (``InferTensorContents`` field, numpy dtype of that field's values).
#: FP16 has no typed field: it must travel in ``raw_input_contents``.
_CONTENTS: dict[str, tuple[str, np.dtype[Any]]] = {
    "BOOL": ("bool_contents", np.dtype(np.bool_)),
    "INT8": ("int_contents", np.dtype(np.int32)),
    "INT16": ("int_contents", np.dtype(np.int32)),
    "INT32": ("int_contents", np.dtype(np.int32)),
    "INT64": ("int64_contents", np.dtype(np.int64)),
    "UINT8": ("uint_contents", np.dtype(np.uint32)),
    "UINT16": ("uint_contents", np.dtype(np.uint32)),
    "UINT32": ("uint_contents", np.dtype(np.uint32)),
    "UINT64": ("uint64_contents", np.dtype(np.uint64)),
    "FP32": ("fp32_contents", np.dtype(np.float32)),
    "FP64": ("fp64_contents", np.dtype(np.float64)),
    "BYTES": ("bytes_contents", np.dtype(object)),
}


def grpc_modules() -> tuple[Any, Any, Any]:
    """Import ``grpc`` (with ``grpc.aio``) and tritonclient's ``service_pb2``, ``service_pb2_grpc``.

    Raises:
        DependencyNotInstalled: grpcio or tritonclient's gRPC part is missing.
    """
    try:
        import grpc
        import grpc.aio
    except ImportError:
        raise DependencyNotInstalled("grpcio", "serve") from None
    try:
        from tritonclient.grpc import service_pb2, service_pb2_grpc
    except ImportError:
        raise DependencyNotInstalled("tritonclient[grpc]", "serve") from None
    return grpc, service_pb2, service_pb2_grpc


def _message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, EdgeschedError) else f"{type(exc).__name__}: {exc}"


RpcMethod = Callable[[Any, Any, Any], Awaitable[Any]]


def _rpc(method: RpcMethod) -> RpcMethod:
    """Turn every exception of a unary RPC into a gRPC status with a message (never a crash)."""

    @functools.wraps(method)
    async def guarded(self: _Rpcs, request: Any, context: Any) -> Any:
        try:
            return await method(self, request, context)
        except Exception as exc:
            await context.abort(*self.status(exc))

    return guarded


class _Rpcs:
    """The implemented RPCs; mixed into tritonclient's servicer base, which answers
    UNIMPLEMENTED for the others (see :meth:`GrpcFrontend.start`)."""

    def __init__(self, core: ServingCore, grpc: Any, pb: Any) -> None:
        self._core = core
        self._grpc = grpc
        self._pb = pb

    def status(self, exc: BaseException) -> tuple[Any, str]:
        """The gRPC status code and message for an exception on the serving path."""
        if isinstance(exc, ProtocolError):
            name = exc.grpc_code
        else:
            name = GRPC_CODES.get(http_status(exc), "UNKNOWN")
        return getattr(self._grpc.StatusCode, name), _message(exc)

    def _parse(self, obj: Mapping[str, Any], message: Any) -> Any:
        from google.protobuf.json_format import ParseDict

        return ParseDict(obj, message, ignore_unknown_fields=True)

    # -- health and metadata ---------------------------------------------------------------------

    @_rpc
    async def ServerLive(self, request: Any, context: Any) -> Any:
        return self._pb.ServerLiveResponse(live=True)

    @_rpc
    async def ServerReady(self, request: Any, context: Any) -> Any:
        return self._pb.ServerReadyResponse(ready=self._core.ready)

    @_rpc
    async def ModelReady(self, request: Any, context: Any) -> Any:
        m = self._core.model(request.name, request.version)
        return self._pb.ModelReadyResponse(ready=self._core.model_ready(m))

    @_rpc
    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        return self._parse(self._core.server_metadata(), self._pb.ServerMetadataResponse())

    @_rpc
    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        meta = self._core.model_metadata(self._core.model(request.name, request.version))
        return self._parse(meta, self._pb.ModelMetadataResponse())

    @_rpc
    async def ModelConfig(self, request: Any, context: Any) -> Any:
        cfg = self._core.model_config(self._core.model(request.name, request.version))
        return self._parse({"config": cfg}, self._pb.ModelConfigResponse())

    # -- inference -------------------------------------------------------------------------------

    @_rpc
    async def ModelInfer(self, request: Any, context: Any) -> Any:
        return await self._infer(request)

    async def ModelStreamInfer(self, requests: AsyncIterator[Any], context: Any) -> None:
        """Answer each request of the stream as soon as it is done (concurrently, like Triton);
        a failed request yields an ``error_message`` and the stream goes on."""
        lock = asyncio.Lock()  # one write at a time on the call

        async def answer(request: Any) -> None:
            try:
                response = self._pb.ModelStreamInferResponse(
                    infer_response=await self._infer(request)
                )
            except Exception as exc:  # the id lets the client tell which request failed
                response = self._pb.ModelStreamInferResponse(
                    error_message=_message(exc),
                    infer_response=self._pb.ModelInferResponse(
                        model_name=request.model_name, id=request.id
                    ),
                )
            async with lock:
                await context.write(response)

        tasks: set[asyncio.Task[None]] = set()
        try:
            async for request in requests:
                task = asyncio.ensure_future(answer(request))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)
        finally:  # the client went away: stop the answers still running
            for task in tasks:
                task.cancel()

    async def _infer(self, request: Any) -> Any:
        """Answer one ``ModelInferRequest``, counted in the metrics with its HTTP-like status."""
        acct = Accounting(time.monotonic())
        try:
            m = self._core.model(request.model_name, request.model_version)
            acct.model = m.name
            self._core.admit()  # refuse before decoding; the core admits again
            result = await self._core.infer(m, self._decode(request), acct)
            response = self._encode(m, request.id, result.outputs, result.parameters)
        except Exception as exc:
            self._core.account(acct, http_status(exc))
            raise
        self._core.account(acct, 200)
        return response

    def _decode(self, request: Any) -> InferRequest:
        inputs, raw = request.inputs, request.raw_input_contents
        if not inputs:
            raise ProtocolError("request needs at least one input")
        if raw and len(raw) != len(inputs):
            raise ProtocolError(
                f"request has {len(inputs)} inputs but {len(raw)} raw_input_contents; send one "
                "raw_input_contents entry per input, in the inputs' order"
            )
        tensors = []
        for i, inp in enumerate(inputs):
            try:
                datatype = dt.check_datatype(inp.datatype)
                shape = tuple(inp.shape)
                if any(d < 0 for d in shape):
                    raise ValueError(f"shape {list(shape)} must be non-negative integers")
                if not raw:
                    data = _from_contents(inp.contents, datatype, shape)
                elif inp.HasField("contents"):
                    raise ValueError("has typed contents while raw_input_contents is used")
                else:
                    data = _from_raw(raw[i], datatype, shape)
            except ValueError as exc:
                raise ProtocolError(f"input {inp.name!r}: {exc}") from None
            tensors.append(InferTensor(inp.name, datatype, shape, data, _params(inp.parameters)))
        _unique([t.name for t in tensors], "input")
        outputs = [
            RequestedOutput(o.name, parameters=_params(o.parameters)) for o in request.outputs
        ]
        _unique([o.name for o in outputs], "output")
        return InferRequest(request.id or None, tensors, outputs, _params(request.parameters))

    def _encode(
        self,
        m: ServedModel,
        request_id: str,
        outputs: Mapping[str, np.ndarray],
        parameters: Mapping[str, Any],
    ) -> Any:
        response = self._pb.ModelInferResponse(
            model_name=m.name, model_version=VERSION, id=request_id
        )
        for name, arr in outputs.items():
            try:
                datatype = dt.datatype_of(arr.dtype)
                raw = dt.to_bytes(arr, datatype)
            except ValueError as exc:
                raise ProtocolError(f"output {name!r}: {exc}", status=500) from None
            response.outputs.add(name=name, datatype=datatype, shape=arr.shape)
            response.raw_output_contents.append(raw)
        for key, value in parameters.items():
            _set_param(response.parameters[key], value)
        return response


def _from_raw(buf: bytes, datatype: str, shape: tuple[int, ...]) -> np.ndarray:
    size = dt.ELEMENT_SIZES[datatype]
    count = dt.element_count(shape)
    if size is not None and len(buf) != count * size:
        raise ValueError(
            f"raw_input_contents holds {len(buf)} bytes but shape {list(shape)} of {datatype} "
            f"needs {count} x {size} = {count * size}; fix the contents or the shape"
        )
    return dt.from_bytes(buf, datatype, shape)


def _from_contents(contents: Any, datatype: str, shape: tuple[int, ...]) -> np.ndarray:
    if datatype not in _CONTENTS:
        raise ValueError(f"{datatype} has no typed contents field; send it in raw_input_contents")
    field, field_dtype = _CONTENTS[datatype]
    values = getattr(contents, field)
    count = dt.element_count(shape)
    if len(values) != count:
        raise ValueError(
            f"contents.{field} has {len(values)} values but shape {list(shape)} needs {count}; "
            "send exactly one value per element"
        )
    if datatype == "BYTES":
        arr = np.empty(count, dtype=object)
        arr[:] = list(values)
        return arr.reshape(shape)
    arr = np.array(values, dtype=field_dtype)
    want = dt.DATATYPES[datatype]
    if want != field_dtype and arr.size:
        info = np.iinfo(want)
        if int(arr.min()) < info.min or int(arr.max()) > info.max:
            raise ValueError(f"{datatype} contents out of range [{info.min}, {info.max}]")
    return arr.astype(want, copy=False).reshape(shape)


def _params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A protobuf ``map<string, InferParameter>`` as a plain dict (unset values are None)."""
    out = {}
    for key, p in params.items():
        choice = p.WhichOneof("parameter_choice")
        out[key] = None if choice is None else getattr(p, choice)
    return out


def _set_param(param: Any, value: Any) -> None:
    if isinstance(value, bool | np.bool_):
        param.bool_param = bool(value)
    elif isinstance(value, numbers.Integral):
        param.int64_param = int(value)
    elif isinstance(value, numbers.Real):
        param.double_param = float(value)
    else:
        param.string_param = str(value)


def _auth_interceptor(grpc: Any, token: str) -> Any:
    """A server interceptor that refuses every RPC without ``authorization: Bearer <token>``."""
    want = f"Bearer {token}".encode()

    async def refuse(request: Any, context: Any) -> None:
        await context.abort(
            grpc.StatusCode.UNAUTHENTICATED, "missing or wrong 'authorization: Bearer' token"
        )

    kinds = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }

    class Auth(grpc.aio.ServerInterceptor):  # type: ignore[misc]
        async def intercept_service(self, continuation: Any, details: Any) -> Any:
            handler = await continuation(details)
            given = dict(details.invocation_metadata or ()).get("authorization", "")
            if handler is None or hmac.compare_digest(str(given).encode(), want):
                return handler
            kind = kinds[handler.request_streaming, handler.response_streaming]
            return kind(refuse)

    return Auth()


class GrpcFrontend:
    """The v2 gRPC service over a started :class:`ServingCore` (see the module docstring).

    Use from the core's event loop: ``await frontend.start(host, port)`` …
    ``await frontend.stop(grace_s)``.
    """

    def __init__(
        self,
        core: ServingCore,
        *,
        max_message_bytes: int = 64 * 2**20,
        auth_token: str | None = None,
    ) -> None:
        """Describe the frontend; :meth:`start` binds it.

        Args:
            core: the serving core to answer from.
            max_message_bytes: largest request message; larger ones get RESOURCE_EXHAUSTED
                from gRPC itself. Responses are not limited.
            auth_token: when set, every RPC needs ``authorization: Bearer <token>`` metadata
                (UNAUTHENTICATED otherwise).
        """
        if max_message_bytes < 1:
            raise ConfigError("max_message_bytes must be ≥ 1")
        self.core = core
        self.max_message_bytes = max_message_bytes
        self._token = auth_token
        self._server: Any = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> None:
        """Bind ``host:port`` (0 picks a free port, then :attr:`port` tells which) and serve.

        Raises:
            ConfigError: the address cannot be bound (in use, or not an address of this host).
            DependencyNotInstalled: grpcio or tritonclient is missing.
        """
        grpc, pb, pbg = grpc_modules()
        servicer = type("Servicer", (_Rpcs, pbg.GRPCInferenceServiceServicer), {})
        server = grpc.aio.server(
            interceptors=[] if self._token is None else [_auth_interceptor(grpc, self._token)],
            options=[
                ("grpc.max_receive_message_length", self.max_message_bytes),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", 0),  # a port in use is an error, not shared
            ],
        )
        pbg.add_GRPCInferenceServiceServicer_to_server(servicer(self.core, grpc, pb), server)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError:
            bound = 0
        if not bound:
            raise ConfigError(f"cannot bind gRPC to {address}; is the port in use?")
        await server.start()
        self._server, self.port = server, bound

    async def stop(self, grace_s: float) -> None:
        """Refuse new RPCs, give those in flight ``grace_s`` seconds, then cancel them."""
        if self._server is not None:
            await self._server.stop(grace_s)
            self._server = None
