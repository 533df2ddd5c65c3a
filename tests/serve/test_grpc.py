"""The v2 gRPC frontend: a real server on 127.0.0.1, driven by tritonclient's gRPC client and by
hand-built protobuf requests, over the tiny ONNX model."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgesched.core.cluster import Cluster
from edgesched.serve import eventloop
from edgesched.serve.grpc_frontend import GrpcFrontend
from edgesched.serve.server import InferenceServer
from tests.serve import test_server
from tests.serve.test_server import CLUSTER, MODEL, Served, batch_of, reference

grpcclient = pytest.importorskip("tritonclient.grpc")
grpc = pytest.importorskip("grpc")
pb = grpcclient.service_pb2
from tritonclient.grpc import model_config_pb2  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

onnx_file = test_server.onnx_file

#: request message limit of the test server (1 MiB keeps the oversized request small)
LIMIT = 2**20


@contextlib.contextmanager
def serving_grpc(onnx: Path, **kw: Any) -> Iterator[Served]:
    """An :class:`InferenceServer` with gRPC on free ports, in a background event loop."""
    loop = eventloop.new_event_loop()  # as `edgesched serve` runs
    threading.Thread(target=loop.run_forever, daemon=True).start()
    server = InferenceServer(Cluster.parse(CLUSTER), model_files={MODEL: onnx}, **kw)
    start = server.start("127.0.0.1", 0, grpc_port=0)
    port = asyncio.run_coroutine_threadsafe(start, loop).result(120)
    s = Served(server, f"http://127.0.0.1:{port}", loop, onnx)
    try:
        yield s
    finally:
        s.call(server.stop(drain_timeout_s=10))
        loop.call_soon_threadsafe(loop.stop)


@pytest.fixture(scope="module")
def grpc_served(onnx_file: Path) -> Iterator[Served]:
    with serving_grpc(onnx_file, policy="least-loaded", max_payload_bytes=LIMIT) as s:
        yield s


def target(s: Served) -> str:
    """The ``host:port`` of the test server's gRPC frontend."""
    return f"127.0.0.1:{s.server.grpc_port}"


def client(s: Served) -> Any:
    return grpcclient.InferenceServerClient(url=target(s))


def infer(c: Any, batch: np.ndarray, datatype: str = "FP32", **kw: Any) -> Any:
    inp = grpcclient.InferInput("input0", list(batch.shape), datatype)
    inp.set_data_from_numpy(batch)
    return c.infer(MODEL, [inp], **kw)


def stub_call(s: Served, method: str, request: Any) -> Any:
    """One RPC with a hand-built request, outside tritonclient's checks."""
    with grpc.insecure_channel(target(s)) as channel:
        return getattr(grpcclient.service_pb2_grpc.GRPCInferenceServiceStub(channel), method)(
            request, timeout=30
        )


def raw_request(shape: list[int], raw: bytes, datatype: str = "FP32") -> Any:
    tensor = pb.ModelInferRequest.InferInputTensor(name="input0", datatype=datatype, shape=shape)
    return pb.ModelInferRequest(model_name=MODEL, inputs=[tensor], raw_input_contents=[raw])


def assert_serves(s: Served) -> None:
    batch = batch_of(2, seed=3)
    out = infer(client(s), batch).as_numpy("output0")
    np.testing.assert_allclose(out, reference(s.onnx, batch), rtol=1e-5, atol=1e-6)


def test_health_metadata_and_config(grpc_served: Served) -> None:
    c = client(grpc_served)
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready(MODEL)
    assert c.is_model_ready(MODEL, model_version="1")
    server = c.get_server_metadata()
    assert server.name == "edgesched" and "binary_tensor_data" in server.extensions
    meta = c.get_model_metadata(MODEL)
    assert (meta.name, list(meta.versions), meta.platform) == (MODEL, ["1"], "onnxruntime_onnx")
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [
        ("input0", "FP32", [-1, 3, 8, 8])
    ]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.outputs] == [
        ("output0", "FP32", [-1, 5])
    ]
    config = c.get_model_config(MODEL).config
    assert config.name == MODEL and config.platform == "onnxruntime_onnx"
    assert config.input[0].name == "input0"
    assert config.input[0].data_type == model_config_pb2.TYPE_FP32
    assert config.output[0].name == "output0" and list(config.output[0].dims)


def test_infer_matches_onnxruntime(grpc_served: Served) -> None:
    batch = batch_of(3, seed=11)
    before = grpc_served.server.outcomes
    outputs = [grpcclient.InferRequestedOutput("output0")]
    result = infer(client(grpc_served), batch, outputs=outputs, request_id="r-42")
    np.testing.assert_allclose(
        result.as_numpy("output0"), reference(grpc_served.onnx, batch), rtol=1e-5, atol=1e-6
    )
    response = result.get_response()
    assert response.id == "r-42" and response.model_version == "1"
    assert response.parameters["execution_s"].double_param > 0
    assert grpc_served.server.outcomes == before + 1


def test_typed_contents_are_decoded(grpc_served: Served) -> None:
    batch = batch_of(2, seed=12)
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input0",
        datatype="FP32",
        shape=batch.shape,
        contents=pb.InferTensorContents(fp32_contents=batch.ravel().tolist()),
    )
    response = stub_call(
        grpc_served, "ModelInfer", pb.ModelInferRequest(model_name=MODEL, inputs=[tensor])
    )
    out = np.frombuffer(response.raw_output_contents[0], "<f4").reshape(response.outputs[0].shape)
    np.testing.assert_allclose(out, reference(grpc_served.onnx, batch), rtol=1e-5, atol=1e-6)


def test_stream_infer(grpc_served: Served) -> None:
    answers: queue.Queue[tuple[Any, Any]] = queue.Queue()
    c = client(grpc_served)
    c.start_stream(callback=lambda result, error: answers.put((result, error)))
    try:
        batches = {f"s{i}": batch_of(1, seed=20 + i) for i in range(4)}
        for rid, batch in batches.items():
            inp = grpcclient.InferInput("input0", list(batch.shape), "FP32")
            inp.set_data_from_numpy(batch)
            c.async_stream_infer(MODEL, [inp], request_id=rid)
        bad = grpcclient.InferInput("input0", [1, 2], "FP32")
        bad.set_data_from_numpy(np.zeros((1, 2), np.float32))
        c.async_stream_infer(MODEL, [bad], request_id="bad")
        got = [answers.get(timeout=30) for _ in range(5)]
    finally:
        c.stop_stream()
    errors = [e for _, e in got if e is not None]
    assert len(errors) == 1 and "shape" in errors[0].message()
    for result, _ in (g for g in got if g[1] is None):
        rid = result.get_response().id
        want = reference(grpc_served.onnx, batches[rid])
        np.testing.assert_allclose(result.as_numpy("output0"), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("call", "code", "words"),
    [
        (lambda c: c.is_model_ready("resnet9"), "NOT_FOUND", "resnet9"),
        (lambda c: c.get_model_metadata("resnet9"), "NOT_FOUND", "Served models"),
        (lambda c: c.get_model_config(MODEL, model_version="7"), "NOT_FOUND", "version '7'"),
        (lambda c: c.infer("resnet9", []), "NOT_FOUND", "resnet9"),
        (lambda c: infer(c, np.zeros((1, 3, 8, 9), "f4")), "INVALID_ARGUMENT", "[1, 3, 8, 9]"),
        (lambda c: infer(c, np.zeros((1, 3, 8, 8), "f8"), "FP64"), "INVALID_ARGUMENT", "FP32"),
        (lambda c: infer(c, np.zeros((0, 3, 8, 8), "f4")), "INVALID_ARGUMENT", "batch"),
        (
            lambda c: infer(c, batch_of(1), outputs=[grpcclient.InferRequestedOutput("nope")]),
            "INVALID_ARGUMENT",
            "nope",
        ),
        (
            lambda c: infer(c, np.zeros((LIMIT // 768 + 1, 3, 8, 8), "f4")),
            "RESOURCE_EXHAUSTED",
            "larger than max",
        ),
    ],
    ids=[
        "unknown-model-ready",
        "unknown-model-meta",
        "unknown-version-config",
        "unknown-model-infer",
        "wrong-shape",
        "wrong-datatype",
        "empty-batch",
        "unknown-output",
        "over-message-limit",
    ],
)
def test_client_errors(grpc_served: Served, call: Any, code: str, words: str) -> None:
    with pytest.raises(InferenceServerException) as info:
        call(client(grpc_served))
    assert info.value.status() == f"StatusCode.{code}"
    assert words in info.value.message()
    assert_serves(grpc_served)


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (raw_request([1, 3, 8, 8], b"\0" * 12), "holds 12 bytes but shape [1, 3, 8, 8]"),
        (raw_request([1, 3, 8, 8], b"\0" * 768, "FP8"), "unknown datatype 'FP8'"),
        (raw_request([1, -3, 8, 8], b""), "non-negative"),
        (pb.ModelInferRequest(model_name=MODEL), "at least one input"),
        (
            pb.ModelInferRequest(
                model_name=MODEL,
                inputs=[pb.ModelInferRequest.InferInputTensor(name="input0", datatype="FP32")] * 2,
                raw_input_contents=[b""],
            ),
            "2 inputs but 1 raw_input_contents",
        ),
        (
            pb.ModelInferRequest(
                model_name=MODEL,
                inputs=[
                    pb.ModelInferRequest.InferInputTensor(
                        name="input0",
                        datatype="FP32",
                        shape=[1, 3, 8, 8],
                        contents=pb.InferTensorContents(fp32_contents=[1.0]),
                    )
                ],
            ),
            "fp32_contents has 1 values but shape [1, 3, 8, 8] needs 192",
        ),
        (
            pb.ModelInferRequest(
                model_name=MODEL,
                inputs=[pb.ModelInferRequest.InferInputTensor(name="i", datatype="FP16")],
            ),
            "FP16 has no typed contents",
        ),
    ],
    ids=[
        "byte-size-mismatch",
        "unknown-datatype",
        "negative-dim",
        "no-inputs",
        "raw-count",
        "contents-count",
        "fp16-contents",
    ],
)
def test_malformed_requests_are_invalid_argument(
    grpc_served: Served, request_: Any, words: str
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub_call(grpc_served, "ModelInfer", request_)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in info.value.details()
    assert_serves(grpc_served)


def test_overload_is_resource_exhausted(grpc_served: Served) -> None:
    core = grpc_served.server.core
    core.max_in_flight, old = 0, core.max_in_flight
    try:
        with pytest.raises(InferenceServerException) as info:
            infer(client(grpc_served), batch_of(1))
    finally:
        core.max_in_flight = old
    assert info.value.status() == "StatusCode.RESOURCE_EXHAUSTED"
    assert "overloaded" in info.value.message()
    assert_serves(grpc_served)


def test_unimplemented_rpcs(grpc_served: Served) -> None:
    with pytest.raises(InferenceServerException) as info:
        client(grpc_served).get_model_repository_index()
    assert info.value.status() == "StatusCode.UNIMPLEMENTED"


@contextlib.contextmanager
def frontend(s: Served, **kw: Any) -> Iterator[GrpcFrontend]:
    """A second gRPC frontend over the test server's core, on a free port."""
    f = GrpcFrontend(s.server.core, **kw)
    s.call(f.start("127.0.0.1", 0))
    try:
        yield f
    finally:
        s.call(f.stop(1.0))


def test_auth_token_required(grpc_served: Served) -> None:
    with frontend(grpc_served, auth_token="s3cret") as f:
        url = f"127.0.0.1:{f.port}"
        c = grpcclient.InferenceServerClient(url=url)
        for headers in (None, {"authorization": "Bearer wrong"}):
            with pytest.raises(InferenceServerException) as info:
                c.is_server_live(headers=headers)
            assert info.value.status() == "StatusCode.UNAUTHENTICATED"
            with pytest.raises(InferenceServerException) as info:
                infer(c, batch_of(1), headers=headers)
            assert info.value.status() == "StatusCode.UNAUTHENTICATED"
        answers: queue.Queue[Any] = queue.Queue()
        c.start_stream(callback=lambda result, error: answers.put(error))
        inp = grpcclient.InferInput("input0", [1, 3, 8, 8], "FP32")
        inp.set_data_from_numpy(batch_of(1))
        with contextlib.suppress(InferenceServerException):  # the stream may be refused already
            c.async_stream_infer(MODEL, [inp])
        assert "UNAUTHENTICATED" in str(answers.get(timeout=30))
        c.stop_stream()
        auth = {"authorization": "Bearer s3cret"}
        assert c.is_server_live(headers=auth)
        batch = batch_of(2, seed=9)
        out = infer(c, batch, headers=auth).as_numpy("output0")
        np.testing.assert_allclose(out, reference(grpc_served.onnx, batch), rtol=1e-5, atol=1e-6)


def test_stop_lets_in_flight_rpcs_finish(grpc_served: Served) -> None:
    core = grpc_served.server.core
    request = raw_request([64, 3, 8, 8], batch_of(64).tobytes())
    before = core.outcomes
    with frontend(grpc_served) as f:
        url = f"127.0.0.1:{f.port}"

        async def load_then_stop() -> list[Any]:
            async with grpc.aio.insecure_channel(url) as channel:
                stub = grpcclient.service_pb2_grpc.GRPCInferenceServiceStub(channel)
                calls = [asyncio.ensure_future(stub.ModelInfer(request)) for _ in range(10)]
                deadline = time.monotonic() + 30
                while core.in_flight + core.outcomes - before < 10:  # all 10 have arrived
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.0005)
                stopping = asyncio.wrap_future(
                    asyncio.run_coroutine_threadsafe(f.stop(10.0), grpc_served.loop)
                )
                answers = await asyncio.gather(*calls, return_exceptions=True)
                await stopping
                return answers

        answers = asyncio.run(load_then_stop())
        assert all(isinstance(a, pb.ModelInferResponse) for a in answers), answers
        with pytest.raises(InferenceServerException):
            grpcclient.InferenceServerClient(url=url).is_server_live(client_timeout=2)
    assert_serves(grpc_served)
