"""RayNodeWorker on a real two-node Ray cluster on this machine (head "left" + node "right").

The cluster gets its own temp dir and ports; the teardown ends only its processes (``ray stop``
would end every Ray process on the machine, other clusters' included).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from edgesched.serve import WorkerDied, WorkerError, eventloop
from edgesched.serve.ray_worker import RayNodeWorker, ensure_ray, node_resource
from tests.runtime.conftest import SAMPLE, export, tiny_module
from tests.serve.test_worker import tally

ray = pytest.importorskip("ray")
ort = pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.slow  # every test needs the Ray cluster (about 10 s to start)

RAY = Path(sys.executable).parent / "ray"
MARK = "EDGESCHED_TEST_RAY"  # in the environment of every Ray process the tests start
NODES = ("left", "right")


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _env(mark: str) -> dict[str, str]:
    """The environment of Ray processes we start: our mark, no usage stats, and no token auth
    (else a head finding ``~/.ray/auth_token`` turns it on, and a joining node does not)."""
    return {**os.environ, MARK: mark, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def _ray_start(mark: str, *args: str) -> None:
    cmd = [str(RAY), "start", *args]
    out = subprocess.run(cmd, env=_env(mark), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}"


def _ours(mark: str) -> set[int]:
    """Running processes that we started with ``mark``: by their inherited environment, their
    command line (naming the temp dir ``mark``), or their parent; zombies count as gone."""
    needle = f"{MARK}={mark}".encode()
    procs: dict[int, int] = {}
    found = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            state, ppid = (d / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            if state == "Z":
                continue
            procs[int(d.name)] = int(ppid)
            cmd = (d / "cmdline").read_bytes()
            if mark.encode() in cmd or needle in (d / "environ").read_bytes().split(b"\0"):
                found.add(int(d.name))
        except (OSError, ValueError):
            continue
    while kids := {p for p, ppid in procs.items() if ppid in found} - found:
        found |= kids
    found.discard(os.getpid())
    return found


def _end(mark: str) -> None:
    """Kill every process we started with ``mark`` (as ``ray stop --force`` would, but only ours:
    a graceful SIGTERM makes the GCS and raylets linger for about 10 s)."""
    deadline = time.monotonic() + 10
    while (pids := _ours(mark)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    assert not _ours(mark), "a Ray process of the test outlived it"


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    """The address of a Ray cluster of head "left" and a second Ray node "right", both on this
    machine, 1 CPU each; this process is connected to it."""
    temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Unix socket paths live here
    port, client, dashboard, agent_left, agent_right = _free_ports(5)
    address = f"127.0.0.1:{port}"
    try:
        _ray_start(
            temp_dir,
            "--head",
            f"--port={port}",
            "--num-cpus=1",
            f"--resources={json.dumps({node_resource('left'): 1})}",
            f"--temp-dir={temp_dir}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--ray-client-server-port={client}",
            f"--dashboard-port={dashboard}",
            f"--dashboard-agent-listen-port={agent_left}",
        )
        _ray_start(
            temp_dir,
            f"--address={address}",
            "--num-cpus=1",
            f"--resources={json.dumps({node_resource('right'): 1})}",
            "--disable-usage-stats",
            f"--dashboard-agent-listen-port={agent_right}",
        )
        ensure_ray(address)
        wanted = {node_resource(n) for n in NODES}
        wait_for(lambda: wanted <= set(ray.cluster_resources()), 30)
        yield address
    finally:
        ray.shutdown()
        _end(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(export(tiny_module(), tmp_path_factory.mktemp("ray") / "tiny.onnx", dynamic=True))


@pytest.fixture(scope="module")
def reference(onnx_path: str) -> object:
    """The model run directly by onnxruntime, with one thread like the workers' instances."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def workers(address: str, onnx_path: str) -> Iterator[dict[str, RayNodeWorker]]:
    """One worker per node of the cluster, 2 instances each, batches of at most 8."""
    ws = {
        n: RayNodeWorker(n, {onnx_path: 2}, threads=1, max_batch=8, address=address) for n in NODES
    }
    try:
        with ThreadPoolExecutor(len(ws)) as pool:
            list(pool.map(lambda w: w.start(timeout_s=90), ws.values()))
        yield ws
        assert all(w.in_flight == 0 for w in ws.values()), "a request was left unanswered"
    finally:
        for w in ws.values():
            w.close()


def batch(size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((size, *SAMPLE), dtype=np.float32)


def wait_for(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not true within {timeout_s} s"
        time.sleep(0.1)


def test_both_nodes_serve_exactly_what_onnxruntime_returns(workers, onnx_path, reference) -> None:
    for seed, size in enumerate([1, 3, 8]):
        x = batch(size, seed)
        (want,) = reference.run(None, {"input": x})
        for w in workers.values():
            fut = w.submit(onnx_path, x)
            (got,) = fut.result(timeout=30)
            np.testing.assert_array_equal(got, want)
            assert fut.exec_s is not None and fut.exec_s > 0
    left, right = workers["left"], workers["right"]
    assert left.ray_node_id != right.ray_node_id  # pinned to two Ray nodes by the resource
    assert left.pid != right.pid and left.alive and right.alive
    info = left.info()[onnx_path]
    assert (info.input_shape, info.max_batch, info.instances) == (SAMPLE, 8, 2)
    assert info.executor["backend"] == "onnxruntime"


def test_concurrent_submits_all_complete(workers, onnx_path, reference) -> None:
    x = batch(4, seed=7)
    (want,) = reference.run(None, {"input": x})
    futures = [w.submit(onnx_path, x) for _ in range(50) for w in workers.values()]
    for fut in futures:
        np.testing.assert_array_equal(fut.result(timeout=30)[0], want)


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (np.zeros((2, 2, 8, 8), np.float32), "takes input of shape (B, 3, 8, 8); got (2, 2, 8, 8)"),
        (np.zeros((9, *SAMPLE), np.float32), "at most 8 samples"),
    ],
)
def test_bad_request_fails_that_request_only(workers, onnx_path, bad, words) -> None:
    w = workers["left"]
    exc = w.submit(onnx_path, bad).exception(timeout=30)
    assert isinstance(exc, WorkerError) and not isinstance(exc, WorkerDied)
    assert words in str(exc) and "left" in str(exc) and "\n" not in str(exc)
    assert w.submit(onnx_path, batch(2)).result(timeout=30)[0].shape == (2, 5)
    assert w.alive and w.restarts == 0


def test_unknown_model_fails_fast(workers, onnx_path) -> None:
    fut = workers["right"].submit(onnx_path + "x", batch(1))
    assert fut.done() and "unknown model" in str(fut.exception())


def test_missing_node_names_the_ray_start_command(address, onnx_path) -> None:
    w = RayNodeWorker("nowhere", {onnx_path: 1}, address=address)
    with pytest.raises(WorkerError) as err:
        w.start(timeout_s=30)
    msg = str(err.value)
    assert "'edgesched-node:nowhere'" in msg
    assert f"""ray start --address={address} --resources='{{"edgesched-node:nowhere": 1}}'""" in msg
    assert not w.alive
    assert isinstance(w.submit(onnx_path, batch(1)).exception(), WorkerError)
    w.close()


def test_killed_actor_fails_in_flight_and_restarts(address, onnx_path) -> None:
    with RayNodeWorker("right", {onnx_path: 2}, threads=1, address=address) as w:
        first_pid, first_node = w.pid, w.ray_node_id
        assert first_pid is not None
        futures = [w.submit(onnx_path, batch(16)) for _ in range(300)]
        os.kill(first_pid, signal.SIGKILL)  # the right node is this machine too
        futures += [w.submit(onnx_path, batch(16)) for _ in range(20)]  # during the restart
        ok, died = tally(futures, timeout_s=60)
        assert ok + died == len(futures) and died >= 1
        wait_for(lambda: w.alive, 60)
        assert w.submit(onnx_path, batch(2)).result(timeout=30)[0].shape == (2, 5)
        assert w.restarts == 1 and w.pid != first_pid and w.ray_node_id == first_node
        assert w.in_flight == 0
        exc = next(f.exception() for f in futures if f.exception() is not None)
        assert "'right'" in str(exc) and "lost in flight" in str(exc) and exc.lost >= 1
    assert not w.alive
    assert isinstance(w.submit(onnx_path, batch(1)).exception(), WorkerError)


def test_worker_stays_down_after_the_restart_cap(address, onnx_path) -> None:
    with RayNodeWorker("left", {onnx_path: 1}, max_restarts=0, address=address) as w:
        ray.kill(w._handle, no_restart=False)
        wait_for(lambda: not w.alive, 30)
        fut = w.submit(onnx_path, batch(1))
        assert fut.done() and isinstance(fut.exception(), WorkerDied)
        assert "down" in str(fut.exception()) and w.restarts == 0


def test_server_over_the_ray_cluster(address, onnx_path, reference) -> None:
    pytest.importorskip("aiohttp")
    from edgesched.core.cluster import Cluster
    from edgesched.serve import HEADER_LENGTH, decode_response, encode_request
    from edgesched.serve.server import InferenceServer

    if "workers" not in inspect.signature(InferenceServer).parameters:
        pytest.skip("server has no ray backend yet")
    spec = textwrap.dedent(
        """
        name: two-boards
        nodes:
          - {id: left, device: x86-mini-pc, models: {mobilenet_v2: 1}}
          - {id: right, device: x86-mini-pc, models: {mobilenet_v2: 1}}
        """
    )
    server = InferenceServer(
        Cluster.parse(spec),
        model_files={"mobilenet_v2": onnx_path},
        policy="least-loaded",
        workers="ray",
        ray_address=address,
    )
    loop = eventloop.new_event_loop()  # as `edgesched serve` runs
    threading.Thread(target=loop.run_forever, daemon=True).start()
    try:
        port = asyncio.run_coroutine_threadsafe(server.start("127.0.0.1", 0), loop).result(120)
        assert all(isinstance(w, RayNodeWorker) and w.alive for w in server.core.workers)
        x = batch(3, seed=5)
        body, headers = encode_request({"input0": x}, binary_inputs=True, binary_outputs=True)
        url = f"http://127.0.0.1:{port}/v2/models/mobilenet_v2/infer"
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=30) as r:
            length = r.headers.get(HEADER_LENGTH)
            got = decode_response(r.read(), None if length is None else int(length)).arrays()
        np.testing.assert_array_equal(got["output0"], reference.run(None, {"input": x})[0])
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(drain_timeout_s=10), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)


def test_local_ray_runtime_without_address(onnx_path) -> None:
    """address=None starts a Ray runtime in this process offering every worker's resource."""
    code = textwrap.dedent(
        f"""
        import numpy as np, ray
        from edgesched.serve.ray_worker import RayNodeWorker
        ws = [RayNodeWorker(n, {{{onnx_path!r}: 1}}, threads=1) for n in ("a", "b")]
        for w in ws:
            w.start(timeout_s=90)
        x = np.ones((2, 3, 8, 8), np.float32)
        print(*(w.submit({onnx_path!r}, x).result(timeout=30)[0].shape for w in ws))
        for w in ws:
            w.close()
        ray.shutdown()
        """
    )
    temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    env = {**_env(temp_dir), "RAY_TMPDIR": temp_dir}  # the runtime's files go under temp_dir
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180
        )
    finally:
        _end(temp_dir)  # Ray's agents outlive their driver by up to a minute
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-2:] == ["(2,", "5)"]


def test_import_is_light_and_an_unreachable_head_fails_fast() -> None:
    port = _free_ports(1)[0]  # nothing listens there
    code = textwrap.dedent(
        f"""
        import sys, time
        from edgesched.serve import WorkerError
        from edgesched.serve.ray_worker import ensure_ray
        print("ray" in sys.modules)
        t0 = time.monotonic()
        try:
            ensure_ray("127.0.0.1:{port}")
        except WorkerError as exc:
            print(f"{{time.monotonic() - t0:.1f}} {{exc}}")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    imported, line = out.stdout.splitlines()
    seconds, _, msg = line.partition(" ")
    assert imported == "False" and float(seconds) < 10
    assert f"cannot reach the Ray head at 127.0.0.1:{port}" in msg
    assert f"ray start --head --port={port}" in msg
