"""KServe v2 datatypes: the numpy table, JSON / binary tensor conversions, model metadata.

Source: the Open Inference Protocol REST spec (datatypes, row-major ``data``) and Triton's binary
tensor data extension (little-endian, no padding, BOOL is one byte, a BYTES element is a 4-byte
little-endian length followed by its bytes). Every conversion error raises :class:`ValueError`
with a message that ``protocol`` prefixes with the tensor's name and turns into a 400.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgesched.errors import ConfigError

#: v2 datatype name -> numpy dtype (BYTES tensors are object arrays of ``bytes``).
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}

#: Bytes per element on the wire; ``None`` for BYTES, whose elements have variable length.
ELEMENT_SIZES: dict[str, int | None] = {
    name: (None if name == "BYTES" else dtype.itemsize) for name, dtype in DATATYPES.items()
}

#: v2 datatype -> Triton ``model_config`` ``data_type`` (Triton calls BYTES ``TYPE_STRING``).
TRITON_TYPES: dict[str, str] = {
    name: ("TYPE_STRING" if name == "BYTES" else f"TYPE_{name}") for name in DATATYPES
}

_BY_DTYPE: dict[np.dtype[Any], str] = {
    dtype: name for name, dtype in DATATYPES.items() if name != "BYTES"
}
_LENGTH = struct.Struct("<I")


def datatype_of(dtype: np.dtype[Any] | type | str) -> str:
    """Return the v2 datatype name for a numpy dtype (or a v2 name, checked).

    Object, ``bytes`` (``S``) and ``str`` (``U``) dtypes map to BYTES.

    Raises:
        ValueError: the dtype has no v2 datatype (complex, datetime, ...).
    """
    if isinstance(dtype, str) and dtype in DATATYPES:
        return dtype
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(
            f"{dtype!r} is neither a numpy dtype nor a v2 datatype ({', '.join(DATATYPES)})"
        ) from None
    if dt.kind in "OSU":
        return "BYTES"
    name = _BY_DTYPE.get(dt.newbyteorder("="))
    if name is None:
        raise ValueError(
            f"numpy dtype {dt} has no KServe v2 datatype; convert it to one of "
            f"bool, (u)int8..64, float16/32/64 or bytes"
        )
    return name


def check_datatype(datatype: object) -> str:
    """Return ``datatype`` if it is a known v2 datatype name, else raise ValueError."""
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise ValueError(f"unknown datatype {datatype!r}; use one of {', '.join(DATATYPES)}")
    return datatype


def element_count(shape: Sequence[int]) -> int:
    """Number of elements of a tensor of ``shape`` (1 for a scalar shape ``[]``)."""
    return math.prod(shape)


def from_json(data: object, datatype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Build the array of ``shape`` from JSON ``data`` (flat or nested, row-major)."""
    if datatype == "BYTES":
        flat: list[bytes] = []
        try:
            _flatten_bytes(data, flat)
        except RecursionError:
            raise ValueError("BYTES data is nested too deeply; send it flat") from None
        arr = np.empty(len(flat), dtype=object)
        arr[:] = flat
    else:
        arr = _numeric_from_json(data, datatype)
    if arr.size != element_count(shape):
        raise ValueError(
            f"data has {arr.size} elements but shape {list(shape)} needs "
            f"{element_count(shape)}; send exactly one value per element"
        )
    return arr.reshape(shape)


def _numeric_from_json(data: object, datatype: str) -> np.ndarray:
    if not isinstance(data, list | int | float | bool):
        raise ValueError(f"data must be a (nested) list of numbers, got {type(data).__name__}")
    try:
        raw = np.asarray(data)
    except (ValueError, TypeError) as exc:  # ragged nesting
        raise ValueError(f"data is not a regular nested list ({exc})") from None
    dtype = DATATYPES[datatype]
    if raw.size == 0:
        return raw.astype(dtype).ravel()
    kind = raw.dtype.kind
    if datatype == "BOOL":
        if kind != "b":
            raise ValueError("BOOL data must be JSON true/false values")
    elif dtype.kind in "iu":
        if kind == "f" and dtype == np.uint64:
            # numpy turns a mix of ints above 2**63 and small ints into float64 (losing
            # precision); reread such lists exactly, as Python ints.
            exact = np.array(data, dtype=object)
            if all(type(x) is int for x in exact.flat):
                raw, kind = exact, "i"
        if kind not in "iu":
            raise ValueError(f"{datatype} data must be JSON integers, got {raw.dtype} values")
        info = np.iinfo(dtype)
        if int(raw.min()) < info.min or int(raw.max()) > info.max:
            raise ValueError(
                f"{datatype} data out of range [{info.min}, {info.max}]; use a wider datatype"
            )
    elif kind not in "iuf":
        raise ValueError(f"{datatype} data must be JSON numbers, got {raw.dtype} values")
    try:
        with np.errstate(over="raise"):
            return raw.astype(dtype).ravel()
    except FloatingPointError:
        raise ValueError(f"{datatype} data overflows {datatype}; use a wider datatype") from None


def _flatten_bytes(data: object, out: list[bytes]) -> None:
    if isinstance(data, str):
        out.append(data.encode("utf-8"))
    elif isinstance(data, list):
        for item in data:
            _flatten_bytes(item, out)
    else:
        raise ValueError(f"BYTES data must be JSON strings, got {type(data).__name__}")


def to_json(arr: np.ndarray, datatype: str) -> list[Any]:
    """Return the flat row-major JSON list for ``arr`` (BYTES elements as UTF-8 strings)."""
    if datatype != "BYTES":
        return np.ascontiguousarray(arr, dtype=DATATYPES[datatype]).ravel().tolist()
    out = []
    for item in _bytes_elements(arr):
        try:
            out.append(item.decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError(
                "BYTES element is not valid UTF-8, so it cannot travel as JSON; "
                "send this tensor as binary data"
            ) from None
    return out


def to_bytes(arr: np.ndarray, datatype: str) -> bytes:
    """Return the binary-extension bytes of ``arr`` (little-endian, row-major)."""
    if datatype != "BYTES":
        wire = DATATYPES[datatype].newbyteorder("<")
        return np.ascontiguousarray(arr, dtype=wire).tobytes()
    return b"".join(_LENGTH.pack(len(item)) + item for item in _bytes_elements(arr))


def from_bytes(buf: bytes | memoryview, datatype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Build the array of ``shape`` from binary-extension bytes; the size must match exactly.

    Numeric arrays are zero-copy, read-only views of ``buf`` on little-endian hosts.
    """
    count = element_count(shape)
    if datatype == "BYTES":
        return _bytes_from_buffer(buf, count).reshape(shape)
    size = ELEMENT_SIZES[datatype]
    assert size is not None
    if len(buf) != count * size:
        raise ValueError(
            f"binary_data_size is {len(buf)} bytes but shape {list(shape)} of {datatype} "
            f"needs {count} x {size} = {count * size}; fix the size or the shape"
        )
    if datatype == "BOOL":
        return (np.frombuffer(buf, dtype=np.uint8) != 0).reshape(shape)
    wire = DATATYPES[datatype].newbyteorder("<")
    arr = np.frombuffer(buf, dtype=wire)
    return arr.astype(DATATYPES[datatype], copy=False).reshape(shape)


def _bytes_from_buffer(buf: bytes | memoryview, count: int) -> np.ndarray:
    view = memoryview(buf)
    items: list[bytes] = []
    offset = 0
    while offset < len(view):
        if offset + 4 > len(view):
            raise ValueError(f"BYTES data truncated inside a length prefix at byte {offset}")
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if offset + length > len(view):
            raise ValueError(
                f"BYTES element {len(items)} claims {length} bytes but only "
                f"{len(view) - offset} remain"
            )
        items.append(bytes(view[offset : offset + length]))
        offset += length
    if len(items) != count:
        raise ValueError(f"BYTES data holds {len(items)} elements but the shape needs {count}")
    arr = np.empty(count, dtype=object)
    arr[:] = items
    return arr


def _bytes_elements(arr: np.ndarray) -> list[bytes]:
    out = []
    for item in np.asarray(arr).ravel().tolist():
        if isinstance(item, str):
            out.append(item.encode("utf-8"))
        elif isinstance(item, bytes | bytearray | memoryview):
            out.append(bytes(item))
        else:
            raise ValueError(f"BYTES element {item!r} is a {type(item).__name__}; use bytes or str")
    return out


# --------------------------------------------------------------------------- metadata


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A model input or output as advertised in metadata: name, v2 datatype, shape (-1 = any)."""

    name: str
    datatype: str
    shape: tuple[int, ...]


TensorSpecLike = TensorSpec | tuple[str, Any, Sequence[int]]


def _specs(specs: Iterable[TensorSpecLike], model: str) -> list[TensorSpec]:
    out = []
    for spec in specs:
        if isinstance(spec, TensorSpec):
            name, datatype, shape = spec.name, spec.datatype, spec.shape
        else:
            name, datatype, shape = spec
        try:
            datatype = datatype_of(datatype)
        except ValueError as exc:
            raise ConfigError(f"model {model!r} tensor {name!r}: {exc}") from None
        out.append(TensorSpec(name, datatype, tuple(int(d) for d in shape)))
    return out


def model_metadata(
    name: str,
    versions: Sequence[str],
    platform: str,
    inputs: Iterable[TensorSpecLike],
    outputs: Iterable[TensorSpecLike],
) -> dict[str, Any]:
    """The v2 model metadata JSON (``GET /v2/models/<m>``).

    ``inputs``/``outputs`` are :class:`TensorSpec` or ``(name, datatype or dtype, shape)``
    tuples; variable dimensions are -1.
    """

    def tensor(s: TensorSpec) -> dict[str, Any]:
        return {"name": s.name, "datatype": s.datatype, "shape": list(s.shape)}

    return {
        "name": name,
        "versions": [str(v) for v in versions],
        "platform": platform,
        "inputs": [tensor(s) for s in _specs(inputs, name)],
        "outputs": [tensor(s) for s in _specs(outputs, name)],
    }


def model_config(
    name: str,
    platform: str,
    inputs: Iterable[TensorSpecLike],
    outputs: Iterable[TensorSpecLike],
    *,
    max_batch_size: int = 0,
) -> dict[str, Any]:
    """The Triton-style ``GET /v2/models/<m>/config`` JSON, which perf_analyzer requires.

    Specs use the same full shapes as :func:`model_metadata`. With ``max_batch_size > 0`` the
    first dimension must be the batch dimension (-1) and is dropped from ``dims``, as Triton does.

    Raises:
        ConfigError: an unknown datatype, or a batched model whose first dimension is not -1.
    """

    def tensor(s: TensorSpec) -> dict[str, Any]:
        dims = list(s.shape)
        if max_batch_size > 0:
            if not dims or dims[0] != -1:
                raise ConfigError(
                    f"model {name!r} tensor {s.name!r} has shape {dims} but max_batch_size "
                    f"is {max_batch_size}; make the first (batch) dimension -1"
                )
            dims = dims[1:]
        return {"name": s.name, "data_type": TRITON_TYPES[s.datatype], "dims": dims}

    return {
        "name": name,
        "platform": platform,
        "max_batch_size": max_batch_size,
        "input": [tensor(s) for s in _specs(inputs, name)],
        "output": [tensor(s) for s in _specs(outputs, name)],
    }
