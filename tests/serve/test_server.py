"""The v2 HTTP frontend: a real server on 127.0.0.1 with real clients, over tiny ONNX models."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgesched.core.cluster import Cluster
from edgesched.errors import ConfigError
from edgesched.serve import HEADER_LENGTH, decode_response, encode_request, eventloop
from edgesched.serve.cli import parse_model_files
from edgesched.serve.server import InferenceServer
from tests.runtime.conftest import SAMPLE, export, tiny_module

aiohttp = pytest.importorskip("aiohttp")
ort = pytest.importorskip("onnxruntime")

CLUSTER = """
name: two-minis
nodes:
  - id: left
    device: x86-mini-pc
    models: {mobilenet_v2: 1}
  - id: right
    device: x86-mini-pc
    models: {mobilenet_v2: 1}
"""
MODEL = "mobilenet_v2"


@dataclass
class Served:
    server: InferenceServer
    url: str
    loop: asyncio.AbstractEventLoop
    onnx: Path

    def call(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(tiny_module(), tmp_path_factory.mktemp("srv") / "tiny.onnx", dynamic=True)


def _serve(onnx: Path, cluster: str = CLUSTER, event_loop: str = "auto", **kw: Any) -> Served:
    loop = eventloop.new_event_loop(event_loop)
    threading.Thread(target=loop.run_forever, daemon=True).start()
    kw.setdefault("model_files", {MODEL: onnx})
    server = InferenceServer(Cluster.parse(cluster), **kw)
    port = asyncio.run_coroutine_threadsafe(server.start("127.0.0.1", 0), loop).result(120)
    return Served(server, f"http://127.0.0.1:{port}", loop, onnx)


def _shutdown(s: Served) -> None:
    s.call(s.server.stop(drain_timeout_s=10))
    s.loop.call_soon_threadsafe(s.loop.stop)


@pytest.fixture(scope="module", params=["auto", "asyncio"])
def served(onnx_file: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    """The two-node server on each event loop it may run on (auto: uvloop where installed)."""
    s = _serve(onnx_file, event_loop=request.param, policy="least-loaded")
    yield s
    _shutdown(s)


def http(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def reference(onnx: Path, batch: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": batch})[0]


def infer(url: str, batch: np.ndarray, *, binary: bool = False) -> tuple[int, np.ndarray | str]:
    body, headers = encode_request({"input0": batch}, binary_inputs=binary, binary_outputs=binary)
    status, rh, raw = http(f"{url}/v2/models/{MODEL}/infer", body, headers)
    if status != 200:
        return status, json.loads(raw)["error"]
    hl = rh.get(HEADER_LENGTH)
    return status, decode_response(raw, None if hl is None else int(hl)).arrays()["output0"]


def batch_of(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *SAMPLE)).astype(np.float32)


def test_health_and_metadata(served: Served) -> None:
    assert http(f"{served.url}/v2/health/live")[0] == 200
    status, _, body = http(f"{served.url}/v2/health/ready")
    assert (status, json.loads(body)) == (200, {"ready": True})
    meta = json.loads(http(f"{served.url}/v2")[2])
    assert meta["name"] == "edgesched" and "binary_tensor_data" in meta["extensions"]
    for path in (f"/v2/models/{MODEL}", f"/v2/models/{MODEL}/versions/1"):
        status, _, body = http(served.url + path)
        m = json.loads(body)
        assert status == 200 and m["name"] == MODEL and m["versions"] == ["1"]
        assert m["inputs"] == [{"name": "input0", "datatype": "FP32", "shape": [-1, *SAMPLE]}]
        assert m["outputs"] == [{"name": "output0", "datatype": "FP32", "shape": [-1, 5]}]
    assert json.loads(http(f"{served.url}/v2/models/{MODEL}/ready")[2])["ready"] is True
    cfg = json.loads(http(f"{served.url}/v2/models/{MODEL}/config")[2])
    assert cfg["input"][0]["data_type"] == "TYPE_FP32"
    assert cfg["output"][0]["name"] == "output0"


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_matches_onnxruntime(served: Served, binary: bool) -> None:
    batch = batch_of(3, seed=int(binary))
    status, out = infer(served.url, batch, binary=binary)
    assert status == 200
    np.testing.assert_allclose(out, reference(served.onnx, batch), rtol=1e-5, atol=1e-5)


def test_requested_output_and_id_echoed(served: Served) -> None:
    body, headers = encode_request(
        {"input0": batch_of(1)}, outputs=["output0"], request_id="abc", binary_outputs=True
    )
    status, rh, raw = http(f"{served.url}/v2/models/{MODEL}/infer", body, headers)
    resp = decode_response(raw, int(rh[HEADER_LENGTH]))
    assert status == 200 and resp.id == "abc" and resp.model_version == "1"
    body, headers = encode_request({"input0": batch_of(1)}, outputs=["nope"])
    status, _, raw = http(f"{served.url}/v2/models/{MODEL}/infer", body, headers)
    assert status == 400 and "nope" in json.loads(raw)["error"]


def test_concurrent_infers_use_both_nodes(served: Served) -> None:
    batch = batch_of(1, seed=7)
    want = reference(served.onnx, batch)
    body, headers = encode_request({"input0": batch}, binary_inputs=True)
    before = served.server.outcomes

    async def fire() -> list[tuple[int, bytes, str | None]]:
        async with aiohttp.ClientSession() as session:

            async def one() -> tuple[int, bytes, str | None]:
                async with session.post(
                    f"{served.url}/v2/models/{MODEL}/infer", data=body, headers=headers
                ) as r:
                    return r.status, await r.read(), r.headers.get(HEADER_LENGTH)

            return await asyncio.gather(*(one() for _ in range(50)))

    peaks: list[int] = []
    stop = threading.Event()

    def watch() -> None:  # both nodes busy at once shows the load-aware policy spread the load
        view = served.server.core.view
        while not stop.is_set():
            peaks.append(int((view.inflight > 0).sum()))
            time.sleep(0.0005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        results = asyncio.run(fire())
    finally:
        stop.set()
        watcher.join()
    for status, raw, hl in results:
        assert status == 200
        out = decode_response(raw, None if hl is None else int(hl)).arrays()["output0"]
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    assert served.server.outcomes - before == 50
    assert max(peaks) == 2
    assert served.server.core.view.inflight.tolist() == [0, 0]


def _error(served: Served, path: str, body: bytes | None, headers: dict[str, str]) -> int:
    status, _, raw = http(served.url + path, body, headers)
    assert isinstance(json.loads(raw)["error"], str) and json.loads(raw)["error"]
    return status


@pytest.mark.parametrize(
    ("path", "body", "headers", "want"),
    [
        ("/v2/models/resnet9/infer", b"{}", {}, 404),
        ("/v2/models/resnet9", None, {}, 404),
        (f"/v2/models/{MODEL}/versions/7/infer", b"{}", {}, 404),
        ("/v2/nothing/here", None, {}, 404),
        (f"/v2/models/{MODEL}/infer", b"{not json", {}, 400),
        (f"/v2/models/{MODEL}/infer", b"[1, 2]", {}, 400),
        (f"/v2/models/{MODEL}/infer", b"{}", {HEADER_LENGTH: "x"}, 400),
        (
            f"/v2/models/{MODEL}/infer",
            encode_request({"i": np.zeros((1, 3, 8, 9), "f4")})[0],
            {},
            400,
        ),
        (
            f"/v2/models/{MODEL}/infer",
            encode_request({"i": np.zeros((1, 3, 8, 8), "f8")})[0],
            {},
            400,
        ),
        (
            f"/v2/models/{MODEL}/infer",
            encode_request({"i": np.zeros((0, 3, 8, 8), "f4")})[0],
            {},
            400,
        ),
        (f"/v2/models/{MODEL}/infer", b"x" * (2**20 + 1), {}, 413),
    ],
    ids=[
        "unknown-model",
        "unknown-model-meta",
        "unknown-version",
        "unknown-route",
        "bad-json",
        "not-object",
        "bad-header-length",
        "wrong-shape",
        "wrong-dtype",
        "empty-batch",
        "oversized",
    ],
)
def test_errors_have_v2_bodies(
    served: Served, path: str, body: bytes | None, headers: dict[str, str], want: int
) -> None:
    served.server.max_payload_bytes = 2**20  # keep the oversized body small
    try:
        assert _error(served, path, body, headers) == want
    finally:
        served.server.max_payload_bytes = 64 * 2**20
    status, _ = infer(served.url, batch_of(1))
    assert status == 200  # still serving


def test_overloaded_503(served: Served) -> None:
    served.server.core.max_in_flight, old = 0, served.server.core.max_in_flight
    try:
        status, msg = infer(served.url, batch_of(1))
    finally:
        served.server.core.max_in_flight = old
    assert status == 503 and "overloaded" in str(msg)


def test_refuses_public_bind_without_token(onnx_file: Path) -> None:
    server = InferenceServer(Cluster.parse(CLUSTER), model_files={MODEL: onnx_file})
    with pytest.raises(ConfigError, match="auth token"):
        asyncio.run(server.start("0.0.0.0", 0))


def test_unknown_model_file_name(onnx_file: Path) -> None:
    with pytest.raises(ConfigError, match="resnet9"):
        InferenceServer(Cluster.parse(CLUSTER), model_files={"resnet9": onnx_file})


def test_parse_model_files() -> None:
    assert parse_model_files(["a=x.onnx", "b=/p/y.onnx"]) == {"a": "x.onnx", "b": "/p/y.onnx"}
    for bad in (["nofile"], ["=x"], ["a=x", "a=y"]):
        with pytest.raises(ConfigError):
            parse_model_files(bad)


ONE_NODE = """
name: one
nodes:
  - id: solo
    device: x86-mini-pc
    models: {mobilenet_v2: 1}
"""


def test_token_and_stop_drains(onnx_file: Path) -> None:
    s = _serve(onnx_file, ONE_NODE, auth_token="s3cret")
    try:
        status, _, raw = http(f"{s.url}/v2/health/live")
        assert status == 401 and "error" in json.loads(raw)
        auth = {"Authorization": "Bearer s3cret"}
        assert http(f"{s.url}/v2/health/live", headers=auth)[0] == 200
        body, headers = encode_request({"input0": batch_of(64)})
        headers |= auth

        async def load_then_stop() -> list[int]:
            async with aiohttp.ClientSession() as session:

                async def one() -> int:
                    url = f"{s.url}/v2/models/{MODEL}/infer"
                    async with session.post(url, data=body, headers=headers) as r:
                        await r.read()
                        return r.status

                tasks = [asyncio.ensure_future(one()) for _ in range(20)]
                deadline = time.monotonic() + 30
                while s.server.core.in_flight + s.server.outcomes < 20:  # all 20 have arrived
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.001)
                stopping = asyncio.wrap_future(
                    asyncio.run_coroutine_threadsafe(s.server.stop(), s.loop)
                )
                statuses = await asyncio.gather(*tasks)
                await stopping
                return statuses

        assert asyncio.run(load_then_stop()) == [200] * 20
        assert s.server.outcomes == 20
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"{s.url}/v2/health/live", timeout=5)
    finally:
        _shutdown(s)


def test_latency_measurement(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    """200 sequential JSON infers: end-to-end median vs the worker's exec_s median (printed)."""
    body, headers = encode_request({"input0": batch_of(1)})
    url = f"{served.url}/v2/models/{MODEL}/infer"
    worker = served.server.core.workers[0]
    e2e, exec_s = [], []
    for _ in range(200):
        t0 = time.perf_counter()
        assert http(url, body, headers)[0] == 200
        e2e.append(time.perf_counter() - t0)
    for _ in range(200):
        fut = worker.submit(str(served.onnx), batch_of(1))
        fut.result(10)
        exec_s.append(fut.exec_s)
    with capsys.disabled():
        print(
            f"\nserve latency: e2e median {statistics.median(e2e) * 1e3:.3f} ms, "
            f"worker exec_s median {statistics.median(exec_s) * 1e3:.3f} ms"
        )
    assert statistics.median(exec_s) < statistics.median(e2e)


def test_the_serve_command_serves_until_interrupted(tmp_path: Path) -> None:
    """``edgesched serve`` as a user runs it: prints its URL, answers, stops cleanly on Ctrl-C."""
    import re
    import signal
    import subprocess
    import sys
    import urllib.request

    model = export(tiny_module(), tmp_path / "tiny.onnx", dynamic=True)
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text("nodes:\n  - {id: box, device: x86-mini-pc, models: {mobilenet_v2: 1}}\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgesched.cli",
            "serve",
            str(cluster),
            "--port",
            "0",
            "--grpc-port",
            "0",
            "--model-file",
            f"mobilenet_v2={model}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = re.search(r"http://\S+/v2", line)
        assert url, line + (proc.stderr.read() if proc.stderr else "")
        with urllib.request.urlopen(url.group(0) + "/health/ready", timeout=10) as reply:
            assert reply.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_binary_bodies_lie_in_shared_memory_and_every_block_comes_back(served: Served) -> None:
    pool = served.server.core.pool
    assert pool is not None
    x = batch_of(64, seed=5)  # 49 KB: received into a block
    for _ in range(3):
        status, got = infer(served.url, x, binary=True)
        assert status == 200
        np.testing.assert_allclose(got, reference(served.onnx, x), rtol=1e-5, atol=1e-6)
    body, headers = encode_request({"input0": x}, binary_inputs=True)
    head = f"POST /v2/models/{MODEL}/infer HTTP/1.1\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head.encode() + body[: len(body) // 2])  # then the client goes away
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    while served.server._leases and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not served.server._leases  # answered or abandoned, every body's block is back
    assert sum(len(free) for free in pool._free.values()) == len(pool._all) >= 1


def test_a_burst_of_large_requests_does_not_keep_its_shared_memory(onnx_file: Path) -> None:
    budget_mb = 0.25  # one 256 KiB block: the size class of a 300-sample body (230 KB)
    s = _serve(onnx_file, CLUSTER + f"serving: {{shared_memory_free_mb: {budget_mb}}}\n")
    try:
        pool = s.server.core.pool
        assert pool is not None
        retired: list[str] = []
        pool.on_retire(retired.append)
        batches = [batch_of(300, seed=i) for i in range(12)]
        with ThreadPoolExecutor(12) as threads:
            answers = list(threads.map(lambda b: infer(s.url, b, binary=True), batches))
        for b, (status, out) in zip(batches, answers, strict=True):
            assert status == 200
            np.testing.assert_allclose(out, reference(s.onnx, b), rtol=1e-5, atol=1e-5)
        s.call(asyncio.sleep(0))  # the last release has run
        assert pool.free_bytes <= budget_mb * 2**20
        assert len(pool._all) <= 1  # none in use, at most the budget's one kept free
        assert retired, "the burst should have needed more blocks than the budget keeps"
        assert not any(os.path.exists(f"/dev/shm/{n.lstrip('/')}") for n in retired)
    finally:
        _shutdown(s)
