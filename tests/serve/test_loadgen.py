"""The v2 load generator against a real server on 127.0.0.1 serving the tiny ONNX model, over
HTTP and gRPC."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from edgesched.errors import EdgeschedError
from edgesched.serve.load_cli import load
from edgesched.serve.loadgen import LoadResult, random_inputs, run_load
from edgesched.serve.protocol import ProtocolError
from tests.runtime.conftest import SAMPLE
from tests.serve import test_server
from tests.serve.test_server import MODEL, Served

pytest.importorskip("aiohttp")

# the server tests' fixtures: a module-scoped server on 127.0.0.1 over the tiny ONNX model
onnx_file = test_server.onnx_file
served = test_server.served


def _ordered(r: LoadResult) -> None:
    lat = [r.latency_p50_s, r.latency_p90_s, r.latency_p95_s, r.latency_p99_s, r.latency_max_s]
    assert all(v is not None and v > 0 for v in lat)
    assert lat == sorted(lat)
    assert r.latency_mean_s is not None and 0 < r.latency_mean_s <= r.latency_max_s


def test_closed_loop(served: Served) -> None:
    r = asyncio.run(run_load(served.url, MODEL, concurrency=4, duration_s=1.0, timeout_s=10))
    assert (r.mode, r.target) == ("closed", 4.0)
    assert r.ok > 0 and r.errors == {} and r.sent == r.ok
    assert r.duration_s >= 1.0 and r.throughput_rps == pytest.approx(r.ok / r.duration_s)
    _ordered(r)


def test_open_loop_poisson_rate(served: Served) -> None:
    t0 = time.perf_counter()
    r = asyncio.run(run_load(served.url, MODEL, rate_rps=100, duration_s=1.0, timeout_s=10))
    assert time.perf_counter() - t0 < 12
    assert r.mode == "open" and 60 <= r.sent <= 145  # Poisson(100): sd 10
    assert r.errors == {} and r.ok == r.sent
    _ordered(r)


def test_open_loop_is_seeded(served: Served) -> None:
    kw = {"rate_rps": 200.0, "duration_s": 0.2, "timeout_s": 10.0}
    a = asyncio.run(run_load(served.url, MODEL, seed=1, **kw))  # type: ignore[arg-type]
    b = asyncio.run(run_load(served.url, MODEL, seed=1, **kw))  # type: ignore[arg-type]
    assert a.sent == b.sent > 0


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tensor_encodings_and_batch(served: Served, binary: bool) -> None:
    r = asyncio.run(
        run_load(served.url, MODEL, concurrency=2, duration_s=0.5, batch=3, binary=binary)
    )
    assert r.ok > 0 and r.errors == {} and r.sent == r.ok


def test_max_requests_caps_sent(served: Served) -> None:
    r = asyncio.run(run_load(served.url, MODEL, concurrency=3, duration_s=5.0, max_requests=5))
    assert r.sent == r.ok == 5


def test_unknown_model_is_a_404(served: Served) -> None:
    with pytest.raises(ProtocolError, match="unknown model 'mobilenet_v3'") as info:
        asyncio.run(run_load(served.url, "mobilenet_v3", concurrency=1, duration_s=0.1))
    assert info.value.status == 404


def test_dead_url_fails_fast() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    with pytest.raises(EdgeschedError, match="cannot reach the v2 server"):
        asyncio.run(run_load(f"http://127.0.0.1:{port}", MODEL, rate_rps=10, duration_s=1.0))
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"rate_rps": 1.0, "concurrency": 1},
        {"rate_rps": 0.0},
        {"concurrency": 0},
        {"concurrency": 1, "batch": 0},
    ],
    ids=["neither", "both", "zero-rate", "zero-workers", "zero-batch"],
)
def test_bad_arguments(kw: dict[str, float]) -> None:
    with pytest.raises(EdgeschedError):
        asyncio.run(run_load("http://127.0.0.1:9", MODEL, duration_s=1.0, **kw))  # type: ignore[arg-type]


def test_random_inputs_fill_the_batch_dimension() -> None:
    meta = {
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [-1, *SAMPLE]},
            {"name": "n", "datatype": "INT64", "shape": [-1, -1]},
            {"name": "s", "datatype": "BYTES", "shape": [2]},
        ]
    }
    out = random_inputs(meta, 4, np.random.default_rng(0))
    assert out["x"].shape == (4, *SAMPLE) and out["x"].dtype == np.float32
    assert out["n"].shape == (4, 1) and out["n"].dtype == np.int64
    assert out["s"].tolist() == [b"load", b"load"]
    again = random_inputs(meta, 4, np.random.default_rng(0))
    np.testing.assert_array_equal(out["x"], again["x"])
    with pytest.raises(EdgeschedError, match="unusable"):
        random_inputs({"inputs": [{"name": "x", "datatype": "FP8", "shape": [1]}]}, 1, None)  # type: ignore[arg-type]


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(load)
    app.command("noop", hidden=True)(lambda: None)  # two commands: `load` stays a subcommand
    return app


def test_cli_json(served: Served) -> None:
    args = ["load", "--url", served.url, "--model", MODEL, "--concurrency", "2"]
    res = CliRunner().invoke(_cli(), [*args, "--duration", "0.3", "--json"])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    assert obj["ok"] > 0 and obj["sent"] == obj["ok"] and obj["errors"] == {}
    for key in ("throughput_rps", "latency_p50_s", "latency_p95_s", "latency_p99_s"):
        assert obj[key] > 0


def test_cli_table(served: Served) -> None:
    args = ["load", "--url", served.url, "-m", MODEL, "--rate", "50", "--duration", "0.3"]
    res = CliRunner().invoke(_cli(), args)
    assert res.exit_code == 0, res.output
    assert "throughput" in res.stdout and "latency p99" in res.stdout


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ([], "exactly one of --rate"),
        (["--concurrency", "1", "--model", "nope"], "unknown model 'nope'"),
    ],
    ids=["no-mode", "unknown-model"],
)
def test_cli_errors_are_edgesched_errors(served: Served, extra: list[str], match: str) -> None:
    args = ["load", "--url", served.url, "--model", MODEL, "--duration", "0.2", *extra]
    res = CliRunner().invoke(_cli(), args)
    assert isinstance(res.exception, EdgeschedError)
    assert match in str(res.exception) and "\n" not in str(res.exception)


def test_timeouts_are_counted_not_hung(served: Served) -> None:
    t0 = time.perf_counter()
    r = asyncio.run(run_load(served.url, MODEL, concurrency=2, duration_s=0.3, timeout_s=1e-4))
    assert time.perf_counter() - t0 < 3
    assert r.error_count > 0 and r.ok + r.error_count == r.sent
    assert r.to_dict()["error_count"] == r.error_count


# -- gRPC -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grpc_served(onnx_file: Path) -> Iterator[Served]:
    pytest.importorskip("tritonclient.grpc")
    from tests.serve.test_grpc import serving_grpc

    with serving_grpc(onnx_file, policy="least-loaded") as s:
        yield s


def grpc_url(s: Served) -> str:
    return f"127.0.0.1:{s.server.grpc_port}"


def test_grpc_closed_loop(grpc_served: Served) -> None:
    url = f"grpc://{grpc_url(grpc_served)}"  # the scheme prefix is allowed
    r = asyncio.run(run_load(url, MODEL, concurrency=4, duration_s=1.0, batch=2, protocol="grpc"))
    assert (r.mode, r.target) == ("closed", 4.0)
    assert r.ok > 0 and r.errors == {} and r.sent == r.ok
    assert r.duration_s >= 1.0 and r.throughput_rps == pytest.approx(r.ok / r.duration_s)
    _ordered(r)


def test_grpc_open_loop_poisson_rate(grpc_served: Served) -> None:
    t0 = time.perf_counter()
    r = asyncio.run(
        run_load(grpc_url(grpc_served), MODEL, rate_rps=100, duration_s=1.0, protocol="grpc")
    )
    assert time.perf_counter() - t0 < 12
    assert r.mode == "open" and 60 <= r.sent <= 145  # Poisson(100): sd 10
    assert r.errors == {} and r.ok == r.sent
    _ordered(r)


def test_grpc_errors_are_counted_by_status_code(grpc_served: Served) -> None:
    core = grpc_served.server.core
    core.max_in_flight, old = 0, core.max_in_flight
    try:
        kw = {"concurrency": 2, "duration_s": 5.0, "max_requests": 6, "protocol": "grpc"}
        r = asyncio.run(run_load(grpc_url(grpc_served), MODEL, **kw))  # type: ignore[arg-type]
    finally:
        core.max_in_flight = old
    assert r.ok == 0 and r.errors == {"gRPC RESOURCE_EXHAUSTED": 6}


@pytest.mark.parametrize(
    ("url", "model", "error", "match"),
    [
        (None, "mobilenet_v3", ProtocolError, "unknown model 'mobilenet_v3'"),
        ("http://127.0.0.1:8001", MODEL, EdgeschedError, "HOST:PORT"),
    ],
    ids=["unknown-model", "http-url"],
)
def test_grpc_refusals(
    grpc_served: Served, url: str | None, model: str, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match) as info:
        kw = {"concurrency": 1, "duration_s": 0.1, "protocol": "grpc"}
        asyncio.run(run_load(url or grpc_url(grpc_served), model, **kw))  # type: ignore[arg-type]
    if error is ProtocolError:
        assert info.value.status == 404  # type: ignore[attr-defined]


def test_grpc_dead_target_fails_fast() -> None:
    pytest.importorskip("tritonclient.grpc")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    with pytest.raises(EdgeschedError, match="cannot reach the v2 server"):
        kw = {"rate_rps": 10, "duration_s": 1.0, "protocol": "grpc"}
        asyncio.run(run_load(f"127.0.0.1:{port}", MODEL, **kw))  # type: ignore[arg-type]
    assert time.perf_counter() - t0 < 5


def test_grpc_cli_json(grpc_served: Served) -> None:
    args = ["load", "--protocol", "grpc", "--url", grpc_url(grpc_served), "-m", MODEL]
    res = CliRunner().invoke(_cli(), [*args, "--rate", "50", "--duration", "0.3", "--json"])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    assert obj["ok"] > 0 and obj["sent"] == obj["ok"] and obj["errors"] == {}
