"""A KServe v2 load generator over REST or gRPC: open loop (Poisson arrivals) or closed loop.

:func:`run_load` asks the server for the model's metadata, builds one seeded random request,
encodes it once and sends it again and again, then reports counts, errors and latency
percentiles as a :class:`LoadResult`. Over ``http`` it POSTs on one ``aiohttp`` session; over
``grpc`` it calls ``ModelInfer`` on one ``grpc.aio`` channel (HTTP/2 streams), with the request
serialized once from tritonclient's protobuf messages and the input in ``raw_input_contents``.

* **Open loop** (``rate_rps``): arrival times are a Poisson process at that mean rate, drawn from
  the seed before the run. Each request is sent at its scheduled time whether or not earlier ones
  have been answered, and its latency is measured from the scheduled time, so waiting in the
  client (connection pool, a late event loop) counts, as in MLPerf Inference's Server scenario.
* **Closed loop** (``concurrency``): C workers each send the next request as soon as the previous
  one is answered (MLPerf's Offline-like saturation; throughput is what the server sustains).

Sending stops at ``duration_s``; answers still outstanding are awaited up to ``timeout_s`` (each
request also has a ``timeout_s`` budget), so a run never takes longer than about
``duration_s + timeout_s``.
"""

from __future__ import annotations

import abc
import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, Literal

import numpy as np

from edgesched.errors import DependencyNotInstalled, EdgeschedError
from edgesched.serve import _datatypes as dt
from edgesched.serve.protocol import (
    GRPC_CODES,
    HEADER_LENGTH,
    ProtocolError,
    decode_response,
    encode_request,
)

#: Open loop: connections allowed per request/s of target rate (one second of arrivals in
#: flight), clamped to [``_MIN_CONNECTIONS``, ``_MAX_CONNECTIONS``].
_CONNECTIONS_PER_RPS = 1.0
_MIN_CONNECTIONS = 8
_MAX_CONNECTIONS = 256
#: Seconds allowed for the metadata request before the run.
_METADATA_TIMEOUT_S = 10.0
#: Extra seconds past ``timeout_s`` before outstanding requests are cancelled.
_GRACE_S = 1.0


@dataclass
class LoadResult:
    """What one load run measured.

    Attributes:
        mode: ``"open"`` (Poisson arrivals at ``rate_rps``) or ``"closed"`` (``concurrency``
            workers).
        target: The target rate (requests/s) or the number of workers.
        sent: Requests sent.
        ok: Requests answered with success (HTTP 200, gRPC OK) and a well-formed v2
            response.
        errors: Failed requests counted by cause: ``"HTTP 503"``, ``"gRPC RESOURCE_EXHAUSTED"``
            (the status code's name), or an exception class name (``"TimeoutError"``,
            ``"ClientConnectorError"``, ``"ProtocolError"`` for a malformed answer,
            ``"Cancelled"`` for requests still outstanding when the run gave up on them).
        duration_s: Seconds from the start of sending to the last answer (at least the send
            window).
        throughput_rps: ``ok / duration_s``.
        latency_p50_s: Median latency of successful requests, in seconds (``None`` if none).
        latency_p90_s: 90th percentile latency, seconds.
        latency_p95_s: 95th percentile latency, seconds.
        latency_p99_s: 99th percentile latency, seconds.
        latency_mean_s: Mean latency, seconds.
        latency_max_s: Largest latency, seconds.
    """

    mode: str
    target: float
    sent: int
    ok: int
    errors: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0
    throughput_rps: float = 0.0
    latency_p50_s: float | None = None
    latency_p90_s: float | None = None
    latency_p95_s: float | None = None
    latency_p99_s: float | None = None
    latency_mean_s: float | None = None
    latency_max_s: float | None = None

    @property
    def error_count(self) -> int:
        """Failed requests, all causes together."""
        return sum(self.errors.values())

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict (the fields, plus ``error_count``)."""
        out = asdict(self)
        out["errors"] = dict(self.errors)
        out["error_count"] = self.error_count
        return out


class _Tally:
    """Collects request outcomes while a run is going."""

    def __init__(self) -> None:
        self.sent = 0
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.last_done = 0.0

    def done(self, latency_s: float | None, error: str | None, now: float) -> None:
        if error is None:
            assert latency_s is not None
            self.latencies.append(latency_s)
        else:
            self.errors[error] += 1
        self.last_done = max(self.last_done, now)


async def run_load(
    url: str,
    model: str,
    *,
    rate_rps: float | None = None,
    concurrency: int | None = None,
    duration_s: float,
    batch: int = 1,
    binary: bool = True,
    timeout_s: float = 30.0,
    seed: int = 0,
    max_requests: int | None = None,
    protocol: Literal["http", "grpc"] = "http",
) -> LoadResult:
    """Drive ``model`` on the v2 server at ``url`` and measure it.

    Args:
        url: ``http``: the server base URL, e.g. ``http://127.0.0.1:8000`` (no ``/v2``);
            ``grpc``: ``HOST:PORT``, e.g. ``127.0.0.1:8001`` (a ``grpc://`` prefix is allowed).
        model: Model name.
        rate_rps: Open loop: mean arrival rate, requests/s (Poisson arrivals).
        concurrency: Closed loop: number of workers, each with one request in flight.
        duration_s: Seconds to keep sending.
        batch: Batch size used where the model's first input dimension is ``-1``.
        binary: ``http`` only: send inputs and ask for outputs with the binary tensor data
            extension (gRPC always sends raw contents).
        timeout_s: Per-request budget, and how long to wait for answers after sending stops.
        seed: Seed of the input values and of the arrival times.
        max_requests: Stop after sending this many requests (``None``: no cap).
        protocol: ``http`` (v2 REST) or ``grpc`` (v2 gRPC).

    Returns:
        The counts, errors and latency percentiles.

    Raises:
        EdgeschedError: not exactly one of ``rate_rps``/``concurrency``, a bad number or
            protocol; the server cannot be reached.
        ProtocolError: the server refuses the metadata request (404 for an unknown model).
        DependencyNotInstalled: aiohttp (``http``) or grpcio / tritonclient (``grpc``) is missing.
    """
    _check_args(rate_rps, concurrency, duration_s, batch, timeout_s, max_requests)
    client: _Client
    if protocol == "http":
        client = _HttpClient(url, model, _connections(rate_rps, concurrency), timeout_s)
    elif protocol == "grpc":
        client = _GrpcClient(url, model, timeout_s)
    else:
        raise EdgeschedError(f"protocol must be 'http' or 'grpc', got {protocol!r}")
    arrival_ss, input_ss = np.random.SeedSequence(seed).spawn(2)
    async with client:
        meta = await client.metadata()
        client.prepare(random_inputs(meta, batch, np.random.default_rng(input_ss)), binary)
        tally = _Tally()
        if concurrency is not None:
            start = time.perf_counter()
            await _closed(client, tally, concurrency, start + duration_s, max_requests, timeout_s)
            mode, target = "closed", float(concurrency)
        else:
            assert rate_rps is not None
            gaps = np.random.default_rng(arrival_ss).exponential(
                1.0 / rate_rps, _cap(rate_rps, duration_s, max_requests)
            )
            offsets = np.cumsum(gaps)
            offsets = offsets[offsets < duration_s]
            start = time.perf_counter()
            await _open(client, tally, start, offsets, timeout_s)
            mode, target = "open", float(rate_rps)
    return _result(mode, target, tally, start, duration_s)


def _check_args(
    rate_rps: float | None,
    concurrency: int | None,
    duration_s: float,
    batch: int,
    timeout_s: float,
    max_requests: int | None,
) -> None:
    if (rate_rps is None) == (concurrency is None):
        raise EdgeschedError(
            "give exactly one of rate (open loop, requests/s) or concurrency (closed loop, workers)"
        )
    if rate_rps is not None and not (math.isfinite(rate_rps) and rate_rps > 0):
        raise EdgeschedError(f"rate must be a positive number of requests/s, got {rate_rps}")
    if concurrency is not None and concurrency < 1:
        raise EdgeschedError(f"concurrency must be at least 1, got {concurrency}")
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise EdgeschedError(f"duration must be a positive number of seconds, got {duration_s}")
    if batch < 1:
        raise EdgeschedError(f"batch must be at least 1, got {batch}")
    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise EdgeschedError(f"timeout must be a positive number of seconds, got {timeout_s}")
    if max_requests is not None and max_requests < 1:
        raise EdgeschedError(f"max_requests must be at least 1, got {max_requests}")


def _cap(rate_rps: float, duration_s: float, max_requests: int | None) -> int:
    """How many inter-arrival gaps to draw: enough to cover ``duration_s`` almost surely."""
    mean = rate_rps * duration_s
    n = math.ceil(mean + 10 * math.sqrt(mean) + 10)  # Poisson tail: 10 sigma
    return n if max_requests is None else min(n, max_requests)


def random_inputs(
    meta: dict[str, Any], batch: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """One random value per input of v2 model metadata.

    A ``-1`` first dimension becomes ``batch``, any other ``-1`` becomes 1. Floats are standard
    normal, integers uniform in [0, 10), BOOL fair coins, BYTES the 4-byte string ``b"load"``.

    Raises:
        EdgeschedError: an input spec without a name, a known datatype or a list shape.
    """
    out: dict[str, np.ndarray] = {}
    for spec in meta["inputs"]:
        try:
            name, datatype = str(spec["name"]), dt.check_datatype(spec["datatype"])
            dims = [int(d) for d in spec["shape"]]
        except (KeyError, TypeError, ValueError, EdgeschedError) as exc:
            raise EdgeschedError(f"model metadata input {spec!r} is unusable: {exc}") from None
        shape = tuple((batch if i == 0 else 1) if d < 0 else d for i, d in enumerate(dims))
        dtype = dt.DATATYPES[datatype]
        if datatype == "BYTES":
            arr = np.full(shape, b"load", dtype=object)
        elif datatype == "BOOL":
            arr = rng.random(shape) < 0.5
        elif dtype.kind == "f":
            arr = rng.standard_normal(shape).astype(dtype)
        else:
            arr = rng.integers(0, 10, shape).astype(dtype)
        out[name] = arr
    return out


class _Failed(Exception):
    """A request the server answered with an error status; ``str()`` is the cause counted."""


class _Client(abc.ABC):
    """One protocol's connection: metadata, the one prepared request, and sending it.

    ``async with`` opens and closes the connection. Subclasses set :attr:`failures`: the
    exceptions that fail one request, counted by class name.
    """

    failures: tuple[type[BaseException], ...] = ()

    @abc.abstractmethod
    async def __aenter__(self) -> _Client: ...

    @abc.abstractmethod
    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    @abc.abstractmethod
    async def metadata(self) -> dict[str, Any]:
        """The model's v2 metadata (at least ``inputs``, each with name, datatype and shape)."""

    @abc.abstractmethod
    def prepare(self, inputs: dict[str, np.ndarray], binary: bool) -> None:
        """Encode the request that every call sends."""

    @abc.abstractmethod
    async def _request(self) -> float:
        """Send the request once; return the ``perf_counter`` time the answer arrived.

        Raises:
            _Failed: an error answer; or one of :attr:`failures`.
        """

    async def __call__(self, tally: _Tally, sent_at: float) -> None:
        """Send once; record latency since ``sent_at`` (a ``perf_counter`` time) or the error."""
        tally.sent += 1
        error: str | None = None
        try:
            now = await self._request()
        except asyncio.CancelledError:
            tally.done(None, "Cancelled", time.perf_counter())
            raise
        except _Failed as exc:
            now, error = time.perf_counter(), str(exc)
        except self.failures as exc:
            now, error = time.perf_counter(), type(exc).__name__
        tally.done(now - sent_at if error is None else None, error, now)


def _connections(rate_rps: float | None, concurrency: int | None) -> int:
    """HTTP connections to allow: one per worker, or per request/s of target rate (clamped)."""
    if concurrency is not None:
        return concurrency
    assert rate_rps is not None
    return min(_MAX_CONNECTIONS, max(_MIN_CONNECTIONS, math.ceil(rate_rps * _CONNECTIONS_PER_RPS)))


class _HttpClient(_Client):
    """v2 REST over one ``aiohttp`` session of at most ``limit`` connections."""

    def __init__(self, url: str, model: str, limit: int, timeout_s: float) -> None:
        try:
            import aiohttp
        except ImportError:
            raise DependencyNotInstalled("aiohttp", "serve") from None
        self._aiohttp = aiohttp
        self._base = url.rstrip("/")
        self._model_url = f"{self._base}/v2/models/{model}"
        self._infer_url = f"{self._model_url}/infer"
        self._limit = limit
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: Any = None
        self._body = b""
        self._headers: dict[str, str] = {}
        self.failures = (aiohttp.ClientError, TimeoutError, OSError, ValueError, ProtocolError)

    async def __aenter__(self) -> _Client:
        connector = self._aiohttp.TCPConnector(limit=self._limit, limit_per_host=self._limit)
        self._session = self._aiohttp.ClientSession(connector=connector)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._session.close()

    async def metadata(self) -> dict[str, Any]:
        aiohttp, where = self._aiohttp, self._model_url
        try:
            async with self._session.get(
                where, timeout=aiohttp.ClientTimeout(total=_METADATA_TIMEOUT_S)
            ) as resp:
                status, raw = resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            raise EdgeschedError(f"cannot reach the v2 server at {self._base}: {reason}") from None
        if status != 200:
            try:
                decode_response(raw, status=status)
            except ProtocolError as exc:
                raise ProtocolError(f"GET {where}: HTTP {status}: {exc}", status=status) from None
        try:
            return _checked_metadata(json.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            raise EdgeschedError(f"GET {where}: not v2 model metadata ({exc})") from None

    def prepare(self, inputs: dict[str, np.ndarray], binary: bool) -> None:
        self._body, self._headers = encode_request(
            inputs, binary_inputs=binary, binary_outputs=binary
        )

    async def _request(self) -> float:
        async with self._session.post(
            self._infer_url, data=self._body, headers=self._headers, timeout=self._timeout
        ) as resp:
            status, raw = resp.status, await resp.read()
            hl = resp.headers.get(HEADER_LENGTH)
        now = time.perf_counter()
        if status != 200:
            raise _Failed(f"HTTP {status}")
        decode_response(raw, None if hl is None else int(hl))
        return now


#: gRPC status code name -> the HTTP status it stands for (the inverse of ``GRPC_CODES``).
_HTTP_STATUS = {name: status for status, name in GRPC_CODES.items()}


class _GrpcClient(_Client):
    """v2 gRPC over one ``grpc.aio`` channel; the request is serialized once."""

    def __init__(self, url: str, model: str, timeout_s: float) -> None:
        from edgesched.serve.grpc_frontend import grpc_modules

        self._grpc, self._pb, self._pbg = grpc_modules()
        target = url.removeprefix("grpc://").rstrip("/")
        if not target or "://" in target:
            raise EdgeschedError(
                f"a gRPC url is HOST:PORT (optionally grpc://HOST:PORT), got {url!r}"
            )
        self._target = target
        self._model = model
        self._timeout_s = timeout_s
        self._channel: Any = None
        self._infer: Any = None
        self._body = b""
        self.failures = (ProtocolError,)

    async def __aenter__(self) -> _Client:
        unlimited = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
        self._channel = self._grpc.aio.insecure_channel(self._target, options=unlimited)
        # pre-serialized bytes in (no request serializer), parsed responses out
        self._infer = self._channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            response_deserializer=self._pb.ModelInferResponse.FromString,
        )
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._channel.close()

    async def metadata(self) -> dict[str, Any]:
        grpc, where = self._grpc, f"ModelMetadata({self._model!r}) at {self._target}"
        stub = self._pbg.GRPCInferenceServiceStub(self._channel)
        try:
            meta = await stub.ModelMetadata(
                self._pb.ModelMetadataRequest(name=self._model), timeout=_METADATA_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise EdgeschedError(
                    f"cannot reach the v2 server at {self._target}: {exc.details()}"
                ) from None
            raise ProtocolError(
                f"{where}: gRPC {code.name}: {exc.details()}",
                status=_HTTP_STATUS.get(code.name, 500),
            ) from None
        specs = [
            {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in meta.inputs
        ]
        try:
            return _checked_metadata({"name": meta.name, "inputs": specs})
        except ValueError as exc:
            raise EdgeschedError(f"{where}: not v2 model metadata ({exc})") from None

    def prepare(self, inputs: dict[str, np.ndarray], binary: bool) -> None:
        pb = self._pb
        request = pb.ModelInferRequest(model_name=self._model)
        for name, arr in inputs.items():
            datatype = dt.datatype_of(arr.dtype)
            request.inputs.add(name=name, datatype=datatype, shape=arr.shape)
            request.raw_input_contents.append(dt.to_bytes(arr, datatype))
        self._body = request.SerializeToString()

    async def _request(self) -> float:
        try:
            response = await self._infer(self._body, timeout=self._timeout_s)
        except self._grpc.aio.AioRpcError as exc:
            raise _Failed(f"gRPC {exc.code().name}") from None
        now = time.perf_counter()
        outputs, raws = response.outputs, response.raw_output_contents
        if not outputs or len(raws) != len(outputs):
            raise ProtocolError(
                f"response has {len(outputs)} outputs and {len(raws)} raw_output_contents"
            )
        for out, raw in zip(outputs, raws, strict=True):
            try:
                dt.from_bytes(raw, dt.check_datatype(out.datatype), tuple(out.shape))
            except ValueError as exc:
                raise ProtocolError(f"output {out.name!r}: {exc}") from None
        return now


def _checked_metadata(meta: Any) -> dict[str, Any]:
    """``meta`` if it is v2 model metadata with a non-empty ``inputs`` list, else ValueError."""
    specs = meta["inputs"]
    if not isinstance(specs, list) or not specs:
        raise ValueError("no inputs")
    return meta


async def _closed(
    send: Callable[[_Tally, float], Awaitable[None]],
    tally: _Tally,
    concurrency: int,
    end: float,
    max_requests: int | None,
    timeout_s: float,
) -> None:
    async def worker() -> None:
        while time.perf_counter() < end and (max_requests is None or tally.sent < max_requests):
            await send(tally, time.perf_counter())

    tasks = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    await _settle(tasks, end - time.perf_counter() + timeout_s + _GRACE_S)


async def _open(
    send: Callable[[_Tally, float], Awaitable[None]],
    tally: _Tally,
    start: float,
    offsets: np.ndarray,
    timeout_s: float,
) -> None:
    tasks: list[asyncio.Future[None]] = []
    try:
        for offset in offsets.tolist():
            at = start + offset
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(send(tally, at)))
    finally:
        await _settle(tasks, timeout_s + _GRACE_S)


async def _settle(tasks: list[asyncio.Future[None]], wait_s: float) -> None:
    """Wait up to ``wait_s`` for ``tasks``, then cancel what is left (they record themselves)."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=max(0.0, wait_s))
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=_GRACE_S)


def _result(mode: str, target: float, tally: _Tally, start: float, duration_s: float) -> LoadResult:
    elapsed = max(duration_s, tally.last_done - start) if tally.sent else duration_s
    lat = np.asarray(tally.latencies, dtype=np.float64)
    res = LoadResult(
        mode=mode,
        target=target,
        sent=tally.sent,
        ok=len(lat),
        errors=dict(sorted(tally.errors.items())),
        duration_s=elapsed,
        throughput_rps=len(lat) / elapsed,
    )
    if len(lat):
        p50, p90, p95, p99 = np.percentile(lat, [50, 90, 95, 99]).tolist()
        res.latency_p50_s, res.latency_p90_s = p50, p90
        res.latency_p95_s, res.latency_p99_s = p95, p99
        res.latency_mean_s, res.latency_max_s = float(lat.mean()), float(lat.max())
    return res
