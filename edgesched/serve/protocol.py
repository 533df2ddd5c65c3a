"""KServe v2 / Open Inference Protocol codec: request and response bodies, and errors.

Pure functions over ``bytes`` (numpy and json only, no server; where the ``serve`` extra
installed orjson, JSON is parsed, and where it may be, written with it). Both sides are
covered: the server decodes requests and encodes responses, the client (tests, load generator)
does the reverse.
The binary tensor data extension is supported in both directions: the JSON header is the first
``Inference-Header-Content-Length`` bytes and tensors marked with ``binary_data_size`` take their
bytes, in order, from the rest. The datatype table and the model metadata / Triton config
helpers live in ``_datatypes``. Sources: the Open Inference Protocol REST spec and Triton's
binary tensor data extension (see ``shared/research/serving.md`` §3).
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgesched.errors import EdgeschedError
from edgesched.serve import _datatypes as dt

try:
    import orjson as _orjson
except ImportError:  # no serve extra: Python's json alone
    _orjson = None

#: HTTP header that gives the length of the JSON part of a binary-extension body.
HEADER_LENGTH = "Inference-Header-Content-Length"

#: HTTP status -> gRPC status code name, for the gRPC frontend.
GRPC_CODES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    413: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class ProtocolError(EdgeschedError):
    """A v2 request or response is malformed or cannot be served; carries its HTTP ``status``.

    400: malformed JSON, wrong shape, unknown datatype, byte-size mismatch. 404: unknown model.
    413: payload over the limit. 503: overloaded (gRPC RESOURCE_EXHAUSTED) or unavailable
    (gRPC UNAVAILABLE: shutting down, no worker up).
    """

    def __init__(self, message: str, status: int = 400, grpc_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self._grpc_code = grpc_code

    @property
    def grpc_code(self) -> str:
        """The gRPC status code name: the one given, else the one matching :attr:`status`
        (``UNKNOWN`` if unmapped)."""
        return self._grpc_code or GRPC_CODES.get(self.status, "UNKNOWN")


def model_not_found(
    name: str, version: str | None = None, known: Iterable[str] = ()
) -> ProtocolError:
    """Return the 404 error for a model (or model version) this server does not serve."""
    what = f"model {name!r}" + (f" version {version!r}" if version is not None else "")
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    listing = f" Served models: {', '.join(known)}." if known else ""
    return ProtocolError(f"unknown {what}.{hint}{listing}", status=404)


def overloaded(reason: str) -> ProtocolError:
    """Return the 503 (gRPC RESOURCE_EXHAUSTED) of a request refused past the queue bound."""
    return ProtocolError(
        f"server overloaded: {reason}; retry later", status=503, grpc_code="RESOURCE_EXHAUSTED"
    )


def unavailable(reason: str) -> ProtocolError:
    """Return the 503 (gRPC UNAVAILABLE) of a request that cannot be served now: the server is
    shutting down, or no worker serving the model is up."""
    return ProtocolError(f"unavailable: {reason}; retry later", status=503)


def http_status(exc: BaseException) -> int:
    """HTTP status for any exception on the serving path (400 for user errors, else 500)."""
    if isinstance(exc, ProtocolError):
        return exc.status
    return 400 if isinstance(exc, EdgeschedError) else 500


def error_body(exc: BaseException | str) -> bytes:
    """Return the v2 error body ``{"error": "<message>"}`` for an exception or message."""
    if isinstance(exc, str):
        message = exc
    elif isinstance(exc, EdgeschedError):
        message = str(exc)
    else:
        message = f"{type(exc).__name__}: {exc}"
    return json.dumps({"error": message}).encode("utf-8")


@dataclass(frozen=True, slots=True)
class InferTensor:
    """One named tensor of a request or response.

    Attributes:
        name: Tensor name.
        datatype: v2 datatype name (``FP32``, ``BYTES``, ...).
        shape: Tensor shape.
        data: The values; BYTES tensors are object arrays of ``bytes``. Binary numeric tensors
            are read-only views of the body.
        parameters: The tensor's ``parameters`` (including ``binary_data_size`` if binary).
    """

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    """An output named in a request, and whether it asked for binary data."""

    name: str
    binary_data: bool = False
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InferRequest:
    """A decoded inference request."""

    id: str | None
    inputs: list[InferTensor]
    outputs: list[RequestedOutput] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        """The inputs as a ``{name: array}`` dict."""
        return {t.name: t.data for t in self.inputs}

    def binary_outputs(self) -> set[str] | bool:
        """The ``binary=`` argument for :func:`encode_response` that honours this request.

        ``True`` when the request-level ``binary_data_output`` is set and no output overrides
        it; otherwise the names of the requested outputs that want binary data.
        """
        default = bool(self.parameters.get("binary_data_output", False))
        if default and all(o.parameters.get("binary_data", True) for o in self.outputs):
            return True
        return {o.name for o in self.outputs if o.parameters.get("binary_data", default) is True}


@dataclass(frozen=True, slots=True)
class InferResponse:
    """A decoded inference response."""

    model_name: str
    model_version: str | None
    id: str | None
    outputs: list[InferTensor]
    parameters: dict[str, Any] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        """The outputs as a ``{name: array}`` dict."""
        return {t.name: t.data for t in self.outputs}


# --------------------------------------------------------------------------- decoding


def decode_request(
    body: bytes | memoryview, header_length: int | None = None, *, max_bytes: int | None = None
) -> InferRequest:
    """Decode a v2 ``POST .../infer`` body.

    Args:
        body: The whole HTTP body.
        header_length: The ``Inference-Header-Content-Length`` header value, or ``None`` when
            the body is pure JSON.
        max_bytes: Refuse bodies longer than this many bytes with a 413.

    Raises:
        ProtocolError: 400 for any malformed body, 413 for one over ``max_bytes``.
    """
    if max_bytes is not None and len(body) > max_bytes:
        raise ProtocolError(
            f"request body of {len(body)} bytes exceeds the limit of {max_bytes} bytes; "
            "send smaller batches",
            status=413,
        )
    obj, tail = _split(body, header_length, "request")
    params = _params(obj.get("parameters"), "request")
    request_id = obj.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError(f"request 'id' must be a string, got {request_id!r}")
    entries = obj.get("inputs")
    if not isinstance(entries, list) or not entries:
        raise ProtocolError("request needs a non-empty 'inputs' list")
    inputs = _tensors(entries, tail, "input")
    outputs: list[RequestedOutput] = []
    raw_outputs = obj.get("outputs", [])
    if not isinstance(raw_outputs, list):
        raise ProtocolError("request 'outputs' must be a list of {'name': ...} objects")
    for entry in raw_outputs:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ProtocolError(f"requested output {entry!r} needs a string 'name'")
        oparams = _params(entry.get("parameters"), f"output {entry['name']!r}")
        outputs.append(RequestedOutput(entry["name"], oparams.get("binary_data") is True, oparams))
    _unique([o.name for o in outputs], "output")
    return InferRequest(request_id, inputs, outputs, params)


def decode_response(
    body: bytes, header_length: int | None = None, *, status: int = 200
) -> InferResponse:
    """Decode a v2 inference response body (the client side).

    Args:
        body: The whole HTTP body.
        header_length: The ``Inference-Header-Content-Length`` header value, if any.
        status: The HTTP status; an error status or an ``{"error": ...}`` body raises.

    Raises:
        ProtocolError: the server's error (with its status), or a malformed body (400).
    """
    if status >= 400:
        try:
            message = parse_json(body[:header_length])["error"]
        except (ValueError, TypeError, KeyError, RecursionError):
            message = body[:200].decode("utf-8", "replace")
        raise ProtocolError(str(message), status=status)
    obj, tail = _split(body, header_length, "response")
    if "error" in obj:
        raise ProtocolError(str(obj["error"]), status=500)
    name, version, rid = obj.get("model_name"), obj.get("model_version"), obj.get("id")
    if not isinstance(name, str):
        raise ProtocolError("response needs a string 'model_name'")
    if not isinstance(version, str | None) or not isinstance(rid, str | None):
        raise ProtocolError("response 'model_version' and 'id' must be strings")
    entries = obj.get("outputs", [])
    if not isinstance(entries, list):
        raise ProtocolError("response 'outputs' must be a list")
    outputs = _tensors(entries, tail, "output")
    return InferResponse(name, version, rid, outputs, _params(obj.get("parameters"), "response"))


def parse_json(text: bytes | memoryview) -> Any:
    """Parse one JSON document: with orjson where installed (tensor data parses about five
    times faster), else, and for what orjson refuses but Python's json reads (NaN, Infinity),
    with json, whose errors (ValueError, RecursionError) name the problem. orjson reads
    integers beyond 64 bits as floats; no v2 datatype holds them either way."""
    if _orjson is not None:
        try:
            return _orjson.loads(text)
        except _orjson.JSONDecodeError:
            pass
    return json.loads(bytes(text) if isinstance(text, memoryview) else text)


def dump_json(obj: Any, finite: bool = False) -> bytes:
    """``obj`` as compact JSON: with orjson where installed and ``finite`` (orjson writes NaN
    and Infinity as null, Python's json as NaN and Infinity, which its readers expect), else,
    and for what orjson cannot write (integers beyond 64 bits), with json."""
    if _orjson is not None and finite:
        try:
            return _orjson.dumps(obj)
        except _orjson.JSONEncodeError:
            pass
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def _split(
    body: bytes | memoryview, header_length: int | None, what: str
) -> tuple[dict[str, Any], memoryview | None]:
    if header_length is not None and not 0 < header_length <= len(body):
        raise ProtocolError(
            f"{HEADER_LENGTH} is {header_length} but the body has {len(body)} bytes; "
            "it must give the length of the JSON part"
        )
    head = body if header_length is None else body[:header_length]
    try:
        obj = parse_json(head)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ProtocolError(f"{what} JSON is malformed: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"{what} JSON must be an object, got {type(obj).__name__}")
    tail = None if header_length is None else memoryview(body)[header_length:]
    return obj, tail


def _tensors(entries: list[Any], tail: memoryview | None, kind: str) -> list[InferTensor]:
    tensors = []
    offset = 0
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ProtocolError(f"{kind} {str(entry)[:80]} needs a string 'name'")
        where = f"{kind} {entry['name']!r}"
        params = _params(entry.get("parameters"), where)
        try:
            datatype = dt.check_datatype(entry.get("datatype"))
            shape = _shape(entry.get("shape"))
            size = params.get("binary_data_size")
            if size is None:
                if "data" not in entry:
                    raise ValueError("has neither 'data' nor parameters.binary_data_size")
                data = dt.from_json(entry["data"], datatype, shape)
            else:
                if tail is None:
                    raise ValueError(
                        f"has binary_data_size but the {HEADER_LENGTH} header is missing"
                    )
                if type(size) is not int or size < 0 or offset + size > len(tail):
                    raise ValueError(
                        f"binary_data_size {size!r} is not a byte count within the "
                        f"{len(tail) - offset} binary bytes left"
                    )
                data = dt.from_bytes(tail[offset : offset + size], datatype, shape)
                offset += size
        except ValueError as exc:
            raise ProtocolError(f"{where}: {exc}") from None
        tensors.append(InferTensor(entry["name"], datatype, shape, data, params))
    _unique([t.name for t in tensors], kind)
    if tail is not None and offset != len(tail):
        raise ProtocolError(
            f"{len(tail) - offset} binary bytes after the JSON header are not claimed by any "
            f"{kind}'s binary_data_size; fix {HEADER_LENGTH} or the sizes"
        )
    return tensors


def _shape(shape: object) -> tuple[int, ...]:
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise ValueError(f"shape {shape!r} must be a list of non-negative integers")
    return tuple(shape)


def _params(params: object, where: str) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ProtocolError(f"{where} 'parameters' must be an object, got {params!r}")
    return params


def _unique(names: list[str], kind: str) -> None:
    if len(set(names)) != len(names):
        dups = sorted({n for n in names if names.count(n) > 1})
        raise ProtocolError(f"{kind} names must be unique; repeated: {', '.join(dups)}")


# --------------------------------------------------------------------------- encoding


def encode_response(
    model_name: str,
    model_version: str | None,
    outputs: Mapping[str, np.ndarray],
    *,
    request_id: str | None = None,
    binary: set[str] | bool = False,
    parameters: Mapping[str, Any] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Encode a v2 inference response.

    Args:
        model_name: The model's name.
        model_version: Its version, or ``None`` to omit it.
        outputs: ``{name: array}``; the datatype comes from the dtype.
        request_id: The request's ``id``, echoed back.
        binary: Outputs to send as binary data: a set of names, or ``True`` for all
            (see :meth:`InferRequest.binary_outputs`).
        parameters: Response-level parameters.

    Returns:
        The body and the headers to send (``Inference-Header-Content-Length`` when any output
        is binary).

    Raises:
        ProtocolError: an output's dtype has no v2 datatype, or non-UTF-8 BYTES sent as JSON (500).
    """
    obj: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        obj["model_version"] = model_version
    return _encode(obj, request_id, parameters, "outputs", outputs, binary, 500)


def encode_request(
    inputs: Mapping[str, np.ndarray],
    *,
    outputs: Sequence[str] | None = None,
    request_id: str | None = None,
    binary_inputs: set[str] | bool = False,
    binary_outputs: set[str] | bool = False,
    parameters: Mapping[str, Any] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Encode a v2 inference request (the client side).

    Args:
        inputs: ``{name: array}``; the datatype comes from the dtype.
        outputs: Output names to request, or ``None`` for all of them.
        request_id: The request ``id``.
        binary_inputs: Inputs to send as binary data (a set of names, or ``True`` for all).
        binary_outputs: Outputs to ask for as binary data; with ``outputs=None`` any truthy
            value sets the request-level ``binary_data_output``.
        parameters: Request-level parameters.

    Returns:
        The body and the headers to send.
    """
    params = dict(parameters or {})
    obj: dict[str, Any] = {}
    if outputs is not None:
        obj["outputs"] = [
            {"name": n, "parameters": {"binary_data": _chosen(binary_outputs, n)}} for n in outputs
        ]
    elif binary_outputs:
        params["binary_data_output"] = True
    return _encode(obj, request_id, params, "inputs", inputs, binary_inputs, 400)


def _chosen(binary: set[str] | bool, name: str) -> bool:
    return binary if isinstance(binary, bool) else name in binary


def _encode(
    obj: dict[str, Any],
    request_id: str | None,
    parameters: Mapping[str, Any] | None,
    key: str,
    tensors: Mapping[str, np.ndarray],
    binary: set[str] | bool,
    status: int,
) -> tuple[bytes, dict[str, str]]:
    if request_id is not None:
        obj["id"] = request_id
    # every number finite (v2 parameters are flat): orjson may write the header
    finite = True
    if parameters:
        obj["parameters"] = dict(parameters)
        finite = all(not isinstance(v, float) or math.isfinite(v) for v in parameters.values())
    chunks: list[bytes] = []
    entries = []
    for name, value in tensors.items():
        arr = np.asarray(value)
        try:
            datatype = dt.datatype_of(arr.dtype)
            entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
            if _chosen(binary, name):
                chunks.append(dt.to_bytes(arr, datatype))
                entry["parameters"] = {"binary_data_size": len(chunks[-1])}
            else:
                entry["data"] = dt.to_json(arr, datatype)
                finite = finite and (arr.dtype.kind != "f" or bool(np.isfinite(arr).all()))
        except ValueError as exc:
            raise ProtocolError(f"{key[:-1]} {name!r}: {exc}", status=status) from None
        entries.append(entry)
    obj[key] = entries
    head = dump_json(obj, finite)
    if not chunks:
        return head, {"Content-Type": "application/json"}
    headers = {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(head))}
    return b"".join([head, *chunks]), headers
