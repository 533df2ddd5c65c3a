"""The KServe v2 codec: round trips for every datatype, error statuses, metadata, fuzzing."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgesched.errors import ConfigError, EdgeschedError
from edgesched.serve import (
    DATATYPES,
    ELEMENT_SIZES,
    GRPC_CODES,
    HEADER_LENGTH,
    ProtocolError,
    TensorSpec,
    datatype_of,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    error_body,
    http_status,
    model_config,
    model_metadata,
    model_not_found,
    overloaded,
    protocol,
    unavailable,
)
from edgesched.serve.protocol import parse_json

NUMERIC = [d for d in DATATYPES if d != "BYTES"]


def sample(datatype: str, shape: tuple[int, ...] = (2, 3)) -> np.ndarray:
    """A deterministic array of ``datatype`` and ``shape`` with values the type can hold."""
    n = int(np.prod(shape))
    if datatype == "BYTES":
        arr = np.empty(n, dtype=object)
        arr[:] = [f"s{i}é".encode() for i in range(n)]
        return arr.reshape(shape)
    if datatype == "BOOL":
        return (np.arange(n) % 2 == 0).reshape(shape)
    return (np.arange(n) % 100).astype(DATATYPES[datatype]).reshape(shape)


def header_len(headers: dict[str, str]) -> int | None:
    value = headers.get(HEADER_LENGTH)
    return None if value is None else int(value)


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == DATATYPES[datatype_of(want.dtype)]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_request_round_trip_every_datatype(datatype: str, binary: bool) -> None:
    arr = sample(datatype)
    body, headers = encode_request({"x": arr}, request_id="r1", binary_inputs=binary)
    assert (HEADER_LENGTH in headers) is binary
    req = decode_request(body, header_len(headers))
    assert req.id == "r1"
    [tensor] = req.inputs
    assert (tensor.name, tensor.datatype, tensor.shape) == ("x", datatype, (2, 3))
    assert_same(tensor.data, arr)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_response_round_trip_every_datatype(datatype: str, binary: bool) -> None:
    arr = sample(datatype, (4,))
    body, headers = encode_response("m", "1", {"y": arr}, request_id="7", binary=binary)
    resp = decode_response(body, header_len(headers))
    assert (resp.model_name, resp.model_version, resp.id) == ("m", "1", "7")
    assert_same(resp.arrays()["y"], arr)


def test_element_sizes() -> None:
    assert ELEMENT_SIZES["BOOL"] == 1 and ELEMENT_SIZES["FP16"] == 2
    assert ELEMENT_SIZES["INT64"] == 8 and ELEMENT_SIZES["BYTES"] is None


@pytest.mark.parametrize(
    ("dtype", "name"),
    [
        (np.float32, "FP32"),
        (np.dtype(">i4"), "INT32"),
        ("U3", "BYTES"),
        ("S2", "BYTES"),
        (bool, "BOOL"),
    ],
)
def test_datatype_of(dtype: Any, name: str) -> None:
    assert datatype_of(dtype) == name


def test_datatype_of_rejects_complex() -> None:
    with pytest.raises(ValueError, match="complex128"):
        datatype_of(np.complex128)


def test_mixed_binary_and_json_inputs_in_order() -> None:
    inputs = {"a": sample("FP32"), "b": sample("INT8"), "c": sample("BYTES"), "d": sample("FP16")}
    body, headers = encode_request(inputs, binary_inputs={"a", "c", "d"})
    arrays = decode_request(body, header_len(headers)).arrays()
    for name, arr in inputs.items():
        assert_same(arrays[name], arr)


def test_nested_and_flat_json_data_and_parameters() -> None:
    body = json.dumps(
        {
            "id": "42",
            "parameters": {"priority": 2, "binary_data_output": True},
            "inputs": [
                {"name": "n", "shape": [2, 2], "datatype": "UINT32", "data": [[1, 2], [3, 4]]},
                {
                    "name": "f",
                    "shape": [2, 2],
                    "datatype": "FP32",
                    "data": [1, 2.5, 3, 4],
                    "parameters": {"tag": "x"},
                },
                {"name": "s", "shape": [1, 2], "datatype": "BYTES", "data": [["a", "bé"]]},
                {"name": "k", "shape": [], "datatype": "BOOL", "data": [True]},
            ],
            "outputs": [{"name": "o", "parameters": {"binary_data": True}}, {"name": "p"}],
        }
    ).encode()
    req = decode_request(body)
    assert req.id == "42" and req.parameters["priority"] == 2
    arrays = req.arrays()
    np.testing.assert_array_equal(arrays["n"], np.array([[1, 2], [3, 4]], dtype=np.uint32))
    np.testing.assert_array_equal(arrays["f"], np.array([[1, 2.5], [3, 4]], dtype=np.float32))
    assert arrays["s"].tolist() == [[b"a", "bé".encode()]]
    assert arrays["k"].shape == () and bool(arrays["k"])
    assert req.inputs[1].parameters == {"tag": "x"}
    assert [(o.name, o.binary_data) for o in req.outputs] == [("o", True), ("p", False)]
    assert req.binary_outputs() is True  # the request-level default covers "p" too


def test_binary_outputs_selection() -> None:
    body, _ = encode_request({"x": sample("FP32")}, binary_outputs=True)
    assert decode_request(body).binary_outputs() is True
    body, _ = encode_request({"x": sample("FP32")}, outputs=["a", "b"], binary_outputs={"b"})
    assert decode_request(body).binary_outputs() == {"b"}
    body, _ = encode_request(
        {"x": sample("FP32")},
        outputs=["a", "b"],
        binary_outputs={"b"},
        parameters={"binary_data_output": True},
    )
    assert decode_request(body).binary_outputs() == {"b"}  # "a" overrides the default


def test_response_mixes_binary_and_json_outputs() -> None:
    outs = {"a": sample("FP64"), "b": sample("BYTES"), "c": sample("UINT16")}
    body, headers = encode_response("m", None, outs, binary={"b"}, parameters={"t": 1})
    resp = decode_response(body, header_len(headers))
    assert resp.model_version is None and resp.parameters == {"t": 1}
    for name, arr in outs.items():
        assert_same(resp.arrays()[name], arr)


def test_empty_and_big_endian_tensors() -> None:
    arrs = {"e": np.zeros((0, 3), np.int16), "b": np.arange(5, dtype=">f8")}
    for binary in (False, True):
        body, headers = encode_request(arrs, binary_inputs=binary)
        got = decode_request(body, header_len(headers)).arrays()
        assert got["e"].shape == (0, 3) and got["e"].dtype == np.int16
        np.testing.assert_array_equal(got["b"], np.arange(5.0))


# --------------------------------------------------------------------------- errors


def request(inputs: list[dict[str, Any]], **extra: Any) -> bytes:
    return json.dumps({"inputs": inputs, **extra}).encode()


def fp32(**over: Any) -> dict[str, Any]:
    return {"name": "x", "shape": [2], "datatype": "FP32", "data": [1.0, 2.0], **over}


BAD_REQUESTS: list[tuple[str, bytes, int | None, str]] = [
    ("not json", b"{nope", None, "malformed"),
    ("not utf-8", b"\xff\xfe", None, "malformed"),
    ("not an object", b"[1]", None, "must be an object"),
    ("no inputs", b"{}", None, "non-empty 'inputs'"),
    ("input not object", request([3]), None, "needs a string 'name'"),
    ("unknown datatype", request([fp32(datatype="FP8")]), None, "unknown datatype 'FP8'"),
    ("wrong count", request([fp32(shape=[3])]), None, "2 elements but shape \\[3\\] needs 3"),
    ("bad shape", request([fp32(shape=[-1, 2])]), None, "non-negative"),
    ("bool shape", request([fp32(shape=[True, 2])]), None, "non-negative"),
    ("ragged", request([fp32(shape=[3], data=[[1], [2, 3]])]), None, "regular nested"),
    ("string in numbers", request([fp32(data=["a", "b"])]), None, "numbers"),
    ("float in ints", request([fp32(datatype="INT32", data=[1.5, 2])]), None, "integers"),
    ("out of range", request([fp32(datatype="UINT8", data=[1, 256])]), None, "out of range"),
    ("fp16 overflow", request([fp32(datatype="FP16", data=[1e10, 0])]), None, "overflows"),
    ("int as bool", request([fp32(datatype="BOOL", data=[1, 0])]), None, "true/false"),
    ("number as bytes", request([fp32(datatype="BYTES", data=[1, 2])]), None, "strings"),
    ("no data", request([{"name": "x", "shape": [1], "datatype": "FP32"}]), None, "neither"),
    ("dup names", request([fp32(), fp32()]), None, "repeated: x"),
    ("dup outputs", request([fp32()], outputs=[{"name": "o"}, {"name": "o"}]), None, "repeated"),
    ("bad id", request([fp32()], id=3), None, "'id' must be a string"),
    ("bad params", request([fp32()], parameters=[1]), None, "'parameters' must be an object"),
    (
        "binary without header",
        request([fp32(data=None, parameters={"binary_data_size": 8})]),
        None,
        "header is missing",
    ),
    ("header too long", b"{}", 5, HEADER_LENGTH),
    ("header zero", b"{}", 0, HEADER_LENGTH),
]


@pytest.mark.parametrize(
    ("body", "header", "match"), [c[1:] for c in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS]
)
def test_bad_requests_are_400(body: bytes, header: int | None, match: str) -> None:
    with pytest.raises(ProtocolError, match=match) as info:
        decode_request(body, header)
    assert info.value.status == 400 and info.value.grpc_code == "INVALID_ARGUMENT"


def binary_body(
    size: int, tail: bytes, datatype: str = "FP32", shape: list[int] | None = None
) -> tuple[bytes, int]:
    head = request(
        [
            {
                "name": "x",
                "shape": shape or [2],
                "datatype": datatype,
                "parameters": {"binary_data_size": size},
            }
        ]
    )
    return head + tail, len(head)


@pytest.mark.parametrize(
    ("size", "tail", "datatype", "match"),
    [
        (4, b"\0" * 4, "FP32", "needs 2 x 4 = 8"),
        (8, b"\0" * 12, "FP32", "4 binary bytes .* not claimed"),
        (16, b"\0" * 8, "FP32", "binary bytes left"),
        (-1, b"", "FP32", "binary bytes left"),
        (6, struct.pack("<I", 9) + b"ab", "BYTES", "claims 9 bytes"),
        (6, struct.pack("<I", 2) + b"ab", "BYTES", "1 elements but the shape needs 2"),
        (2, b"ab", "BYTES", "length prefix"),
    ],
)
def test_binary_size_mismatches_are_400(size: int, tail: bytes, datatype: str, match: str) -> None:
    body, hl = binary_body(size, tail, datatype)
    with pytest.raises(ProtocolError, match=match) as info:
        decode_request(body, hl)
    assert info.value.status == 400


def test_payload_over_limit_is_413() -> None:
    body, _ = encode_request({"x": sample("FP64", (100,))})
    decode_request(body, max_bytes=len(body))
    with pytest.raises(ProtocolError, match="exceeds the limit") as info:
        decode_request(body, max_bytes=len(body) - 1)
    assert info.value.status == 413 and info.value.grpc_code == "RESOURCE_EXHAUSTED"


def test_model_not_found_and_overloaded() -> None:
    err = model_not_found("resnet5", known=["resnet50", "mobilenet"])
    assert err.status == 404 and err.grpc_code == "NOT_FOUND"
    assert "'resnet50'" in str(err) and "mobilenet" in str(err)
    assert "version '3'" in str(model_not_found("m", "3"))
    busy = overloaded("queue full (64 waiting)")
    assert busy.status == 503 and busy.grpc_code == "RESOURCE_EXHAUSTED"
    assert isinstance(busy, EdgeschedError)
    down = unavailable("no worker up")
    assert down.status == 503 and down.grpc_code == "UNAVAILABLE"
    assert GRPC_CODES == {
        400: "INVALID_ARGUMENT",
        404: "NOT_FOUND",
        413: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
    }


def test_error_body_and_status() -> None:
    err = overloaded("busy")
    assert json.loads(error_body(err)) == {"error": str(err)}
    assert json.loads(error_body(KeyError("k"))) == {"error": "KeyError: 'k'"}
    assert json.loads(error_body("plain")) == {"error": "plain"}
    assert http_status(err) == 503
    assert http_status(ConfigError("x")) == 400 and http_status(RuntimeError()) == 500


def test_decode_response_raises_server_errors() -> None:
    with pytest.raises(ProtocolError, match="unknown model") as info:
        decode_response(error_body(model_not_found("m")), status=404)
    assert info.value.status == 404
    with pytest.raises(ProtocolError, match="boom") as info:
        decode_response(b'{"error": "boom"}')
    with pytest.raises(ProtocolError, match="<html>") as info:
        decode_response(b"<html>", status=502)
    assert info.value.status == 502


def test_encode_errors() -> None:
    with pytest.raises(ProtocolError, match=r"output 'z'.*complex") as info:
        encode_response("m", "1", {"z": np.zeros(2, np.complex64)})
    assert info.value.status == 500
    raw = np.array([b"\xff"], dtype=object)
    with pytest.raises(ProtocolError, match="send this tensor as binary") as info:
        encode_request({"s": raw})
    assert info.value.status == 400
    body, headers = encode_request({"s": raw}, binary_inputs=True)  # binary is fine
    assert decode_request(body, header_len(headers)).arrays()["s"].tolist() == [b"\xff"]


# --------------------------------------------------------------------------- metadata


def test_model_metadata_and_config() -> None:
    inputs = [TensorSpec("image", "FP32", (-1, 3, 224, 224))]
    outputs = [("logits", np.float32, [-1, 1000]), ("label", "BYTES", (-1,))]
    meta = model_metadata("resnet50", ["1"], "onnxruntime_onnx", inputs, outputs)
    assert meta == {
        "name": "resnet50",
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 3, 224, 224]}],
        "outputs": [
            {"name": "logits", "datatype": "FP32", "shape": [-1, 1000]},
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
        ],
    }
    config = model_config("resnet50", "onnxruntime_onnx", inputs, outputs, max_batch_size=8)
    assert config["max_batch_size"] == 8
    assert config["input"] == [{"name": "image", "data_type": "TYPE_FP32", "dims": [3, 224, 224]}]
    assert config["output"][1] == {"name": "label", "data_type": "TYPE_STRING", "dims": []}
    unbatched = model_config("m", "p", [("x", "INT8", [4])], [])
    assert unbatched["max_batch_size"] == 0 and unbatched["input"][0]["dims"] == [4]
    json.dumps(config)


def test_model_config_errors() -> None:
    with pytest.raises(ConfigError, match="first \\(batch\\) dimension -1"):
        model_config("m", "p", [("x", "FP32", [4])], [], max_batch_size=2)
    with pytest.raises(ConfigError, match="model 'm' tensor 'x'"):
        model_metadata("m", [], "p", [("x", "FP8", [4])], [])


# --------------------------------------------------------------------------- properties


@st.composite
def tensors(draw: st.DrawFn) -> np.ndarray:
    datatype = draw(st.sampled_from(list(DATATYPES)))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    if datatype == "BYTES":
        n = int(np.prod(shape))
        items = draw(st.lists(st.text(max_size=5).map(str.encode), min_size=n, max_size=n))
        arr = np.empty(n, dtype=object)
        arr[:] = items
        return arr.reshape(shape)
    return draw(hnp.arrays(DATATYPES[datatype], shape))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    arrays=st.lists(tensors(), min_size=1, max_size=3),
    binary=st.booleans() | st.sets(st.sampled_from(["t0", "t1", "t2"])),
)
def test_encode_decode_is_identity(arrays: list[np.ndarray], binary: Any) -> None:
    named = {f"t{i}": a for i, a in enumerate(arrays)}
    body, headers = encode_request(named, binary_inputs=binary)
    for name, arr in decode_request(body, header_len(headers)).arrays().items():
        assert_same(arr, named[name])
    body, headers = encode_response("m", "1", named, binary=binary)
    for name, arr in decode_response(body, header_len(headers)).arrays().items():
        assert_same(arr, named[name])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)
request_like = st.fixed_dictionaries(
    {
        "inputs": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "name": st.text(max_size=2) | json_values,
                    "datatype": st.sampled_from(list(DATATYPES)) | json_values,
                    "shape": st.lists(st.integers(-1, 3), max_size=3) | json_values,
                    "data": json_values,
                    "parameters": st.fixed_dictionaries({"binary_data_size": st.integers(-2, 20)})
                    | json_values,
                },
            ),
            max_size=3,
        )
        | json_values
    },
    optional={"id": json_values, "parameters": json_values, "outputs": json_values},
)


@settings(max_examples=100, deadline=None)
@given(
    body=st.binary(max_size=64) | request_like.map(lambda r: json.dumps(r).encode()),
    tail=st.binary(max_size=24),
    use_header=st.booleans(),
)
def test_garbage_gives_protocol_error_only(body: bytes, tail: bytes, use_header: bool) -> None:
    for decode in (decode_request, decode_response):
        try:
            decode(body + tail, len(body) if use_header else None)
        except ProtocolError as exc:
            assert exc.status == 400 or decode is decode_response


# --------------------------------------------------------------------------- tritonclient


def test_tritonclient_request_body_decodes() -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    image = sample("FP32", (1, 3))
    names = np.array([b"a", b"bc"], dtype=object)
    inputs = [
        httpclient.InferInput("image", [1, 3], "FP32"),
        httpclient.InferInput("names", [2], "BYTES"),
    ]
    inputs[0].set_data_from_numpy(image, binary_data=True)
    inputs[1].set_data_from_numpy(names, binary_data=False)
    outputs = [httpclient.InferRequestedOutput("logits", binary_data=True)]
    body, json_size = httpclient.InferenceServerClient.generate_request_body(
        inputs, outputs=outputs, request_id="9"
    )
    req = decode_request(body, json_size)
    assert req.id == "9" and req.binary_outputs() == {"logits"}
    np.testing.assert_array_equal(req.arrays()["image"], image)
    assert req.arrays()["names"].tolist() == [b"a", b"bc"]


def test_uint64_above_int64_round_trips_exactly_in_json() -> None:
    """A mix of values above 2**63 and small ones must not pass through float64."""
    big = np.array([2**63, 1, 2**64 - 1], dtype=np.uint64)
    body, _ = encode_request({"t0": big})
    (tensor,) = decode_request(body).inputs
    assert tensor.data.dtype == np.uint64
    np.testing.assert_array_equal(tensor.data, big)


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": [1, 2.5, -0.0, 1e-7, true, null, "x\\u00e9"], "b": {"c": []}}',
        b'{"nan": NaN, "inf": [Infinity, -Infinity]}',  # Python's json dialect
        b'{"dup": 1, "dup": 2}',
        b"[" * 500 + b"]" * 500,
    ],
)
def test_parse_json_reads_what_json_reads(text: bytes) -> None:
    want = json.loads(text)
    got = parse_json(memoryview(text))
    assert json.dumps(got) == json.dumps(want)


@pytest.mark.parametrize(
    "text", [b"{", b'{"a": 1,}', b"\xff\xfe", b'{"a": nan}', b"[" * 5000 + b"]" * 5000]
)
def test_parse_json_errors_are_json_errors(text: bytes) -> None:
    with pytest.raises((ValueError, RecursionError)):
        parse_json(text)


@pytest.mark.parametrize("fast", [True, False])
def test_json_tensors_decode_with_and_without_orjson(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the serve extra's orjson the codec falls back to json; with it, NaN and Infinity
    (which orjson refuses) still decode."""
    if not fast:
        monkeypatch.setattr(protocol, "_orjson", None)
    x = np.array([[0.5, np.nan], [np.inf, -2.0]], dtype=np.float32)
    body, _ = encode_request({"t0": x})
    np.testing.assert_array_equal(decode_request(body).arrays()["t0"], x)
    y = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    body, _ = encode_request({"t0": y})
    np.testing.assert_array_equal(decode_request(memoryview(body)).arrays()["t0"], y)
    # orjson reads integers beyond 64 bits as floats, json as ints: a 400 either way
    for value in (2**64, -(2**63) - 1):
        body = json.dumps(
            {"inputs": [{"name": "t0", "datatype": "INT64", "shape": [1], "data": [value]}]}
        ).encode()
        with pytest.raises(ProtocolError) as err:
            decode_request(body)
        assert err.value.status == 400 and "INT64" in str(err.value)


@pytest.mark.parametrize("fast", [True, False])
def test_json_tensors_and_parameters_encode_with_and_without_orjson(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finite JSON numbers may go through orjson; NaN and Infinity keep Python's json dialect
    (orjson would write null), and integers beyond 64 bits fall back to json."""
    if not fast:
        monkeypatch.setattr(protocol, "_orjson", None)
    y = (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5) / 7
    body, _ = encode_response("m", "1", {"out": y}, parameters={"execution_s": 0.25})
    assert json.loads(body)["parameters"] == {"execution_s": 0.25}
    np.testing.assert_array_equal(decode_response(body).arrays()["out"], y)
    x = np.array([np.nan, np.inf, -1.0], dtype=np.float32)
    body, _ = encode_response("m", "1", {"out": x})
    assert b"NaN" in body and b"Infinity" in body
    np.testing.assert_array_equal(decode_response(body).arrays()["out"], x)
    body, _ = encode_request({"t": y}, parameters={"p": float("nan"), "big": 2**70})
    assert json.loads(body)["parameters"]["big"] == 2**70
    assert math.isnan(json.loads(body)["parameters"]["p"])
    body, _ = encode_request({"t": y}, parameters={"big": 2**70})
    assert json.loads(body)["parameters"]["big"] == 2**70
