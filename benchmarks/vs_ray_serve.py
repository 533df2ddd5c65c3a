"""Our v2 server against a plain Ray Serve deployment: same model, same cores, same closed loop.

One run serves the same ONNX file first with our frontend (``InferenceServer``, one node, in a
child process of this script), then with Ray Serve (``ray.init`` + one ``@serve.deployment``, in
another child process), and drives each with the same closed-loop client from this process.
Reports each side's throughput, p50 and p99 latency and the resident memory of its processes.
Target (issue "Serve for real" vs Ray Serve): our throughput ≥ 1.5 × Ray Serve's at an equal or
lower p99.

Fairness rules:

* **Model**: the same ONNX file; on both sides one ``onnxruntime.InferenceSession`` per
  instance with the same options (``--threads`` intra-op threads, default 1; one inter-op
  thread; sequential execution; ``ORT_ENABLE_ALL``; CPU execution provider), ``--instances``
  model instances (ours: instances in the node's worker; Ray: replicas), each instance running
  one batch at a time (the Ray replica calls ``session.run`` on its event loop, so one replica
  never runs two batches at once, like one of our instances).
* **Cores**: the process that runs the model is pinned, all of its threads, to the CPUs of
  ``--cpus`` (default: the last CPU this process may use): our node's worker process (through
  ``serving.nodes.<node>.cpus`` in the cluster YAML, so it pins itself before loading; the
  frontend child also pins it from outside, which changes nothing then), and each Ray replica's
  actor process (``edgesched.runtime.pin_process`` in the replica's constructor, before the
  session is created; the replica also asks Ray for ``--threads`` logical CPUs). Everything
  else (our frontend; Ray's proxy, controller, raylet, GCS and agents; the client) is left to
  the operating system on all CPUs.
* **Load**: the same closed loop, ``--concurrency`` workers (default 4) each sending the next
  request as soon as the previous one is answered, for ``--duration`` seconds (default 10) after
  a 1 s warm-up; latency per request from send to the full response, throughput = answered /
  elapsed (ours: ``edgesched.serve.loadgen.run_load``; Ray: the same loop, tally and result
  code of that module with a sender that POSTs raw bytes). The same input tensor (same seed,
  same float32 bytes, batch 1 per request): v2 binary tensors to ours, the raw little-endian
  float32 body to Ray (the cheapest protocol Ray Serve's HTTP proxy offers; no JSON). Ray Serve
  runs as deployed by default: its Python HTTP proxy (no HAProxy, no direct ingress).
* **Batching**: ``--batch N`` > 1 turns on dynamic batching on both sides with the same limits:
  ours through ``serving.batching.<model>: {max_batch_size: N, max_queue_delay_ms: D}`` in the
  cluster YAML, Ray through ``@serve.batch(max_batch_size=N, batch_wait_timeout_s=D/1000)``
  (``--delay-ms D``, default 2).
* **Order**: one after the other (ours, then Ray), never at the same time; each side's server
  is stopped before the other starts.
* **Logging**: per-request access logs off on both sides (ours has none; Ray Serve's are
  turned off with ``enable_access_log: False`` and level WARNING unless ``--ray-access-log``).

Memory: resident set size (``VmRSS``) and proportional set size (PSS, shared pages split
between the processes that map them, so sums are not inflated by shared libraries) of every
process each side started, found by walking the child's process tree in ``/proc`` and named
by command line: ours the frontend, the worker and multiprocessing's resource tracker; Ray its
replicas, HTTP proxy, Serve controller, raylet, GCS, dashboard head (started even with
``include_dashboard=False``) and agents, log and autoscaler monitors, idle workers, and the
driver (the child that called ``ray.init``; it stays alive, as ``serve run`` does; subtract
``ray_rss_mb.driver`` to leave it out). ``ray_model_cpus`` is one replica's CPU set.

Prints one JSON object on stdout (throughput, p50/p99 of each side, ``throughput_ratio`` =
ours / Ray, ``ratio_to_target`` = that / 1.5, ``p99_not_worse``, the memory breakdowns and the
settings), progress on stderr. Takes about ``2 × (--duration + 1) + 15`` seconds on a 2-core
machine (Ray's start is 7-12 s of that); the first run of a zoo model adds its ONNX export.

Usage: python benchmarks/vs_ray_serve.py [--model mobilenet_v3_small | path.onnx]
       [--concurrency 4] [--duration 10] [--threads 1] [--instances 1] [--cpus auto]
       [--batch 1] [--delay-ms 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_overhead import STARTUP_TIMEOUT_S, _resolve, model_parser, rss_mb

TARGET_THROUGHPUT_RATIO = 1.5  # issue: ours ≥ 1.5 × Ray Serve's throughput ...
WARMUP_S = 1.0  # closed-loop seconds before each measured run
RAY_STARTUP_TIMEOUT_S = 300.0  # ray.init + serve.start + one deployment on a busy small box
STOP_TIMEOUT_S = 60.0  # how long a child may take to shut down after stdin closes
READY = "VS_RAY_SERVE_READY "  # prefix of a child's ready line
APP = "vs_ray_serve"  # Ray Serve application name
_T0 = time.perf_counter()


def say(msg: str) -> None:
    """One progress line on stderr."""
    print(f"[vs_ray_serve {time.perf_counter() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def cluster_yaml(
    name: str, instances: int, threads: int, cpus: Sequence[int] | None, batch: int, delay_ms: float
) -> str:
    """Our cluster: one node ``local`` serving ``name`` with ``instances`` instances."""
    node = {"threads": threads} | ({"cpus": list(cpus)} if cpus else {})
    lines = [
        "name: vs-ray-serve",
        "nodes:",
        "  - id: local",
        "    device: x86-mini-pc",
        f"    models: {{{name}: {instances}}}",
        "serving:",
        f"  nodes: {{local: {json.dumps(node)}}}",
    ]
    if batch > 1:
        lines += [
            "  batching:",
            f"    {name}: {{max_batch_size: {batch}, max_queue_delay_ms: {delay_ms}}}",
        ]
    return "\n".join(lines) + "\n"


def pin_pid(pid: int, cpus: Sequence[int]) -> None:
    """Pin every thread of process ``pid`` to ``cpus`` (later threads inherit the set)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):  # the thread ended meanwhile
            os.sched_setaffinity(int(tid), set(cpus))


def parse_cpus(spec: str) -> list[int] | None:
    """``--cpus``: ``auto`` → the last CPU this process may use; ``none`` → None; else a list."""
    from edgesched.runtime import available_cpus

    if spec == "auto":
        return available_cpus()[-1:]
    if spec == "none":
        return None
    try:
        cpus = sorted({int(c) for c in spec.split(",") if c.strip()})
    except ValueError:
        raise SystemExit(
            f"--cpus {spec!r}: give CPU numbers like 1 or 0,1, or auto or none"
        ) from None
    allowed = available_cpus()
    if not cpus or not set(cpus) <= set(allowed):
        raise SystemExit(f"--cpus {spec!r}: pick CPUs from {allowed} (or auto, or none)")
    return cpus


def _ready_stream() -> Any:
    """A private copy of stdout for the ready line; fd 1 then goes to stderr (the child's log),
    so nothing Ray or a library prints can get in the way of the line the parent waits for."""
    fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(fd, "w")


def _announce(stream: Any, info: dict[str, Any]) -> None:
    stream.write(READY + json.dumps(info) + "\n")
    stream.flush()


# -- child modes ---------------------------------------------------------------------------------


def serve_child(args: argparse.Namespace) -> None:
    """Our frontend: serve ``--onnx`` as ``--served-as`` on 127.0.0.1 until stdin closes."""
    ready = _ready_stream()
    from edgesched.core.cluster import Cluster
    from edgesched.serve import eventloop
    from edgesched.serve.server import InferenceServer

    cpus = parse_cpus(args.cpus)
    name = args.served_as

    async def main() -> None:
        yaml = cluster_yaml(name, args.instances, args.threads, cpus, args.batch, args.delay_ms)
        server = InferenceServer(
            Cluster.parse(yaml),
            policy="least-loaded",
            model_files={name: args.onnx},
            threads_per_node=args.threads,
        )
        port = await server.start("127.0.0.1", 0)
        worker_pid = server.core.workers[0].pid  # the one node's NodeWorker
        if cpus:
            pin_pid(worker_pid, cpus)  # in case this server ignores serving.nodes.*.cpus
        _announce(
            ready,
            {
                "port": port,
                "pid": os.getpid(),
                "worker_pid": worker_pid,
                "worker_cpus": sorted(os.sched_getaffinity(worker_pid)),
            },
        )
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
        await server.stop(drain_timeout_s=10)

    eventloop.run(main())  # as `edgesched serve` does: uvloop when installed


def _ray_deployment(serve: Any, args: argparse.Namespace, logging_config: dict) -> Any:
    """The Ray Serve deployment: one ONNX Runtime session per replica, raw float32 over HTTP."""
    from starlette.requests import Request
    from starlette.responses import Response

    batch_n, delay_s = args.batch, args.delay_ms / 1000.0

    class OnnxModel:
        def __init__(
            self, onnx: str, sample: list[int], threads: int, cpus: list[int] | None
        ) -> None:
            import onnxruntime as ort

            from edgesched.runtime.onnx_backend import session_options

            if cpus:
                from edgesched.runtime import pin_process

                pin_process(cpus)  # the whole actor process, before the session exists
            self.session = ort.InferenceSession(
                onnx, session_options(ort, threads), providers=["CPUExecutionProvider"]
            )
            self.input = self.session.get_inputs()[0].name
            self.sample = tuple(sample)
            self.row_bytes = 4 * int(np.prod(self.sample))
            self.threads = threads
            warm = np.zeros((1, *self.sample), np.float32)
            for _ in range(2):  # like our worker's warm-up (2 runs at batch 1)
                self.session.run(None, {self.input: warm})

        def info(self) -> dict[str, Any]:
            return {
                "pid": os.getpid(),
                "cpus": sorted(os.sched_getaffinity(0)),
                "intra_op_threads": self.threads,
                "providers": self.session.get_providers(),
            }

        def _decode(self, body: bytes) -> np.ndarray:
            if not body or len(body) % self.row_bytes:
                raise ValueError(
                    f"body of {len(body)} bytes is not a whole number of float32 samples of "
                    f"shape {self.sample} ({self.row_bytes} bytes each)"
                )
            return np.frombuffer(body, dtype="<f4").reshape(-1, *self.sample)

        def _infer(self, batch: np.ndarray) -> list[np.ndarray]:
            return self.session.run(None, {self.input: batch})

        if batch_n > 1:

            @serve.batch(max_batch_size=batch_n, batch_wait_timeout_s=delay_s)
            async def _batched(self, arrays: list[np.ndarray]) -> list[bytes]:
                outs = self._infer(np.concatenate(arrays))
                answers, row = [], 0
                for a in arrays:
                    answers.append(b"".join(o[row : row + len(a)].tobytes() for o in outs))
                    row += len(a)
                return answers

        async def __call__(self, request: Request) -> Response:
            x = self._decode(await request.body())
            if batch_n > 1:
                out = await self._batched(x)
            else:
                out = b"".join(o.tobytes() for o in self._infer(x))
            return Response(content=out, media_type="application/octet-stream")

    return serve.deployment(
        name="OnnxModel",
        num_replicas=args.instances,
        ray_actor_options={"num_cpus": args.threads},
        max_ongoing_requests=max(5, args.concurrency, args.batch),  # 5: Ray's default
        logging_config=logging_config,
    )(OnnxModel)


def ray_child(args: argparse.Namespace) -> None:
    """Ray Serve: a local Ray instance of our own, the deployment on a free port, until stdin
    closes; then ``serve.shutdown()`` and ``ray.shutdown()`` (which stops what ray.init
    started)."""
    ready = _ready_stream()
    # SIGTERM (the parent gave up waiting) still runs the finally below: ray.shutdown()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("ray child: terminated"))
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no network here, and none wanted
    os.environ.pop("RAY_ADDRESS", None)
    import ray
    from ray import serve

    cpus = parse_cpus(args.cpus)
    logging_config = (
        {} if args.ray_access_log else {"enable_access_log": False, "log_level": "WARNING"}
    )
    # address="local": always start a new instance, never join a cluster already running here
    ray.init(
        address="local",
        num_cpus=max(os.cpu_count() or 1, args.instances * args.threads),
        include_dashboard=False,
        log_to_driver=False,
    )
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        serve.start(
            http_options={"host": "127.0.0.1", "port": port},
            logging_config=logging_config or None,
        )
        app = _ray_deployment(serve, args, logging_config).bind(
            args.onnx, json.loads(args.sample), args.threads, cpus
        )
        handle = serve.run(app, name=APP, route_prefix="/")
        info = handle.info.remote().result(timeout_s=60)
        _announce(
            ready,
            {
                "port": port,
                "pid": os.getpid(),
                "replica_pid": info["pid"],
                "replica_cpus": info["cpus"],
                "providers": info["providers"],
                "ray_version": ray.__version__,
            },
        )
        sys.stdin.read()  # until the parent closes stdin
    finally:
        with contextlib.suppress(Exception):
            serve.shutdown()
        ray.shutdown()


# -- the client ----------------------------------------------------------------------------------


class _RawSender:
    """:class:`edgesched.serve.loadgen._Sender` for raw bytes: POST the body, check the length
    of the answer, record the latency from ``sent_at`` or the error in the tally."""

    def __init__(
        self, aiohttp: Any, session: Any, url: str, body: bytes, answer_bytes: int, timeout_s: float
    ) -> None:
        self._aiohttp = aiohttp
        self._session = session
        self._url = url
        self._body = body
        self._answer_bytes = answer_bytes
        self._headers = {"Content-Type": "application/octet-stream"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def __call__(self, tally: Any, sent_at: float) -> None:
        tally.sent += 1
        error: str | None = None
        try:
            async with self._session.post(
                self._url, data=self._body, headers=self._headers, timeout=self._timeout
            ) as resp:
                status, raw = resp.status, await resp.read()
            now = time.perf_counter()
            if status != 200:
                error = f"HTTP {status}"
            elif len(raw) != self._answer_bytes:
                error = "WrongAnswerLength"
        except asyncio.CancelledError:
            tally.done(None, "Cancelled", time.perf_counter())
            raise
        except (self._aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            now = time.perf_counter()
            error = type(exc).__name__
        tally.done(now - sent_at if error is None else None, error, now)


async def run_raw_load(
    url: str,
    body: bytes,
    answer_bytes: int,
    *,
    concurrency: int,
    duration_s: float,
    timeout_s: float = 30.0,
) -> Any:
    """Closed loop of raw-bytes POSTs to ``url``: ``run_load``'s loop, tally and result code
    (same connection limit, same per-request timeout), a :class:`_RawSender` for the request."""
    import aiohttp

    from edgesched.serve.loadgen import _closed, _result, _Tally

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        send = _RawSender(aiohttp, session, url, body, answer_bytes, timeout_s)
        tally = _Tally()
        start = time.perf_counter()
        await _closed(send, tally, concurrency, start + duration_s, None, timeout_s)
    return _result("closed", float(concurrency), tally, start, duration_s)


# -- the parent ----------------------------------------------------------------------------------


def probe(onnx: str, seed: int) -> dict[str, Any]:
    """The model's input (name, sample shape, dynamic batch), the request tensor that
    ``run_load`` sends (same seed, same values) and the answer's size in bytes."""
    import onnxruntime as ort

    from edgesched.runtime.onnx_backend import session_options
    from edgesched.serve.loadgen import random_inputs

    session = ort.InferenceSession(
        onnx, session_options(ort, 1), providers=["CPUExecutionProvider"]
    )
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].type != "tensor(float)":
        raise SystemExit(
            f"{onnx}: the benchmark needs a model with one float32 input; this one has "
            f"{[(i.name, i.type) for i in inputs]}"
        )
    dims = [d if isinstance(d, int) and d > 0 else -1 for d in inputs[0].shape]
    meta = {"inputs": [{"name": inputs[0].name, "datatype": "FP32", "shape": dims}]}
    input_ss = np.random.SeedSequence(seed).spawn(2)[1]  # as run_load draws its inputs
    x = random_inputs(meta, 1, np.random.default_rng(input_ss))[inputs[0].name]
    outs = session.run(None, {inputs[0].name: x})
    return {
        "input": inputs[0].name,
        "sample": list(x.shape[1:]),
        "dynamic_batch": dims[0] == -1,
        "tensor": x,
        "answer_bytes": sum(o.nbytes for o in outs),
        "ort_version": ort.__version__,
    }


class Child:
    """A child mode of this script: started, waited for, measured, stopped."""

    def __init__(self, role: str, argv: list[str], timeout_s: float) -> None:
        self.role = role
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (kept open until stop)
            prefix=f"vs_ray_serve-{role}-", suffix=".log", delete=False
        )
        self.tree: dict[int, Proc] = {}  # pid → every process it was seen to have started
        start = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        try:
            self.ready = self._wait_ready(timeout_s)
        except BaseException:  # Ctrl-C included: never leave a half-started server behind
            self.stop()
            raise
        self.startup_s = time.perf_counter() - start

    def _wait_ready(self, timeout_s: float) -> dict[str, Any]:
        lines: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(
                    f"the {self.role} server did not start within {timeout_s:.0f} s; "
                    f"see its log {self.log.name}"
                    + ("" if self.role == "ours" else " (and /tmp/ray/session_latest/logs)")
                ) from None
            if line is None:
                self.proc.wait()
                raise RuntimeError(
                    f"the {self.role} server exited (status {self.proc.returncode}) before it "
                    f"started serving; its log {self.log.name} ends with:\n{self.tail()}"
                )
            if line.startswith(READY):
                return json.loads(line[len(READY) :])

    def tail(self, n: int = 25) -> str:
        text = Path(self.log.name).read_text(errors="replace").splitlines()
        return "\n".join(text[-n:])

    def processes(self) -> list[Proc]:
        """The child and everything under it, remembered for :meth:`stop`."""
        procs = descendants(self.proc.pid)
        for p in procs:
            self.tree.setdefault(p.pid, p)
        return procs

    def stop(self) -> int:
        """Close stdin (the child shuts down), wait, then end any process it started that is
        still alive (by pid, checked against its start time). Returns how many had to be."""
        self.processes()
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            say(f"{self.role}: the child did not stop within {STOP_TIMEOUT_S:.0f} s; ending it")
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        left = _wait_gone([p for p in self.tree.values() if p.pid != self.proc.pid], 10.0)
        for p in left:  # ray.shutdown's stragglers, if any: only what this child started
            say(f"{self.role}: ending leftover process {p.pid} ({p.cmdline()[:80]})")
            p.signal(signal.SIGTERM)
        for p in _wait_gone(left, 5.0):
            p.signal(signal.SIGKILL)
        self.log.close()
        return len(left)


@dataclass(frozen=True)
class Proc:
    """A process seen in ``/proc``; ``start`` (clock ticks after boot) tells a reused pid apart.

    Attributes:
        pid: the process id.
        ppid: its parent's id when seen.
        start: its start time, ``/proc/<pid>/stat`` field 22.
    """

    pid: int
    ppid: int
    start: int

    @classmethod
    def of(cls, pid: int) -> Proc | None:
        """The process ``pid`` now (None: gone, or a zombie)."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError):
            return None
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if fields[0] in ("Z", "X"):
            return None
        return cls(pid, int(fields[1]), int(fields[19]))

    def alive(self) -> bool:
        now = Proc.of(self.pid)
        return now is not None and now.start == self.start

    def cmdline(self) -> str:
        try:
            raw = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return ""
        return raw.replace(b"\0", b" ").decode(errors="replace").strip()

    def pss_mb(self) -> float:
        """Proportional set size in MB (10⁶ bytes), from ``/proc/<pid>/smaps_rollup``."""
        for line in Path(f"/proc/{self.pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024 / 1e6
        raise RuntimeError(f"no Pss in /proc/{self.pid}/smaps_rollup")

    def signal(self, sig: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, sig)


def descendants(root: int) -> list[Proc]:
    """Process ``root`` and every live process under it (a scan of ``/proc``)."""
    by_parent: dict[int, list[Proc]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (p := Proc.of(int(entry))) is not None:
            by_parent.setdefault(p.ppid, []).append(p)
    top = Proc.of(root)
    out, todo = [], [top] if top is not None else []
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(by_parent.get(p.pid, ()))
    return out


def _wait_gone(procs: list[Proc], timeout_s: float) -> list[Proc]:
    """Wait up to ``timeout_s`` for ``procs`` to end; those still alive."""
    deadline = time.monotonic() + timeout_s
    left = [p for p in procs if p.alive()]
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [p for p in left if p.alive()]
    return left


def memory(procs: list[Proc], role_of: Any) -> dict[str, Any]:
    """RSS per role (MB, 10⁶ bytes), the RSS and PSS totals and the process count per role."""
    rss: dict[str, float] = {}
    count: dict[str, int] = {}
    pss_total = 0.0
    for p in procs:
        try:
            role = role_of(p)
            mb = rss_mb(p.pid)
            pss_total += p.pss_mb()
        except (OSError, RuntimeError):
            continue  # ended meanwhile
        rss[role] = rss.get(role, 0.0) + mb
        count[role] = count.get(role, 0) + 1
    return {
        "rss_mb": {k: round(v, 1) for k, v in sorted(rss.items())},
        "rss_total_mb": round(sum(rss.values()), 1),
        "pss_total_mb": round(pss_total, 1),
        "processes": dict(sorted(count.items())),
    }


_RAY_ROLES = (  # (substring of the command line, role), first match wins
    ("ServeReplica", "replica"),
    ("ProxyActor", "proxy"),
    ("ServeController", "controller"),
    ("gcs_server", "gcs"),
    ("raylet", "raylet"),
    ("DashboardAgent", "dashboard_agent"),
    ("dashboard/dashboard.py", "dashboard_head"),
    ("dashboard/agent.py", "dashboard_agent"),
    ("RuntimeEnvAgent", "runtime_env_agent"),
    ("runtime_env/agent", "runtime_env_agent"),
    ("log_monitor", "log_monitor"),
    ("monitor.py", "autoscaler_monitor"),
    ("ray::IDLE", "idle_workers"),
    ("ray::", "other_workers"),
)


def _ray_role(driver_pid: int) -> Any:
    def role_of(p: Proc) -> str:
        if p.pid == driver_pid:
            return "driver"
        cmd = p.cmdline()
        return next((role for key, role in _RAY_ROLES if key in cmd), "other")

    return role_of


def _our_role(p: Proc, frontend_pid: int, worker_pid: int) -> str:
    if p.pid == frontend_pid:
        return "frontend"
    if p.pid == worker_pid:
        return "worker"
    return "mp_resource_tracker" if "resource_tracker" in p.cmdline() else "other"


def _latency_ms(res: Any) -> tuple[float | None, float | None]:
    return tuple(  # type: ignore[return-value]
        None if v is None else round(v * 1e3, 3) for v in (res.latency_p50_s, res.latency_p99_s)
    )


def _child_args(args: argparse.Namespace, onnx: str, name: str) -> list[str]:
    return [
        *("--onnx", onnx, "--served-as", name),
        *("--instances", str(args.instances), "--threads", str(args.threads)),
        *("--cpus", args.cpus, "--batch", str(args.batch), "--delay-ms", str(args.delay_ms)),
        *("--concurrency", str(args.concurrency)),
    ] + (["--ray-access-log"] if args.ray_access_log else [])


def run_ours(args: argparse.Namespace, onnx: str, name: str) -> dict[str, Any]:
    """Our server: start, warm up, measure, read memory, stop."""
    from edgesched.serve.loadgen import run_load
    from edgesched.serve.protocol import encode_request

    say(f"ours: starting the frontend and its worker ({name}, {onnx})")
    child = Child("ours", ["--child", "serve", *_child_args(args, onnx, name)], STARTUP_TIMEOUT_S)
    try:
        ready = child.ready
        url = f"http://127.0.0.1:{ready['port']}"
        say(f"ours: up on {url} in {child.startup_s:.1f} s; worker on CPUs {ready['worker_cpus']}")

        async def load() -> tuple[Any, Any]:
            import aiohttp

            async with (
                aiohttp.ClientSession() as s,
                s.get(f"{url}/v2/models/{name}/config") as resp,
            ):
                config = await resp.json()
            kw = {"concurrency": args.concurrency, "binary": True, "seed": args.seed}
            say(f"ours: warm-up {WARMUP_S:.0f} s")
            await run_load(url, name, duration_s=WARMUP_S, **kw)
            say(f"ours: measuring {args.duration:g} s at concurrency {args.concurrency}")
            return await run_load(url, name, duration_s=args.duration, **kw), config

        res, config = asyncio.run(load())
        worker = int(ready["worker_pid"])
        mem = memory(child.processes(), lambda p: _our_role(p, child.proc.pid, worker))
    finally:
        say("ours: stopping")
        leftover = child.stop()
    Path(child.log.name).unlink(missing_ok=True)
    tensor = args.probe["tensor"]
    body, _ = encode_request({args.probe["input"]: tensor}, binary_inputs=True, binary_outputs=True)
    return _side(res, len(body), mem, ready["worker_cpus"], child, leftover) | {
        "config_dynamic_batching": "dynamic_batching" in config
    }


def _side(
    res: Any, request_bytes: int, mem: Any, cpus: Any, child: Child, leftover: int
) -> dict[str, Any]:
    """What both sides report: throughput, latency, errors, memory, placement, start-up."""
    p50, p99 = _latency_ms(res)
    return {
        "rps": round(res.throughput_rps, 2),
        "p50_ms": p50,
        "p99_ms": p99,
        "requests": res.ok,
        "errors": res.errors,
        "request_bytes": request_bytes,
        "memory": mem,
        "model_cpus": cpus,
        "startup_s": round(child.startup_s, 1),
        "leftover_processes": leftover,
    }


def run_ray(args: argparse.Namespace, onnx: str, name: str) -> dict[str, Any]:
    """Ray Serve: start Ray and the deployment, warm up, measure, read memory, stop."""
    say("ray: starting a local Ray instance and the Serve deployment (about 10 s)")
    argv = ["--child", "ray", *_child_args(args, onnx, name)]
    argv += ["--sample", json.dumps(args.probe["sample"])]
    child = Child("ray", argv, RAY_STARTUP_TIMEOUT_S)
    try:
        ready = child.ready
        url = f"http://127.0.0.1:{ready['port']}/"
        say(
            f"ray: up on {url} in {child.startup_s:.1f} s (Ray {ready['ray_version']}); "
            f"replica on CPUs {ready['replica_cpus']}"
        )
        body = np.ascontiguousarray(args.probe["tensor"], dtype="<f4").tobytes()
        answer = args.probe["answer_bytes"]

        async def load() -> Any:
            kw = {"concurrency": args.concurrency}
            say(f"ray: warm-up {WARMUP_S:.0f} s")
            warm = await run_raw_load(url, body, answer, duration_s=WARMUP_S, **kw)
            if not warm.ok:
                raise RuntimeError(
                    f"Ray Serve answered none of {warm.sent} warm-up requests ({warm.errors}); "
                    f"see {child.log.name} and /tmp/ray/session_latest/logs/serve"
                )
            say(f"ray: measuring {args.duration:g} s at concurrency {args.concurrency}")
            return await run_raw_load(url, body, answer, duration_s=args.duration, **kw)

        res = asyncio.run(load())
        mem = memory(child.processes(), _ray_role(child.proc.pid))
    finally:
        say("ray: stopping (serve.shutdown, ray.shutdown)")
        leftover = child.stop()
    Path(child.log.name).unlink(missing_ok=True)
    return _side(res, len(body), mem, ready["replica_cpus"], child, leftover) | {
        "version": ready["ray_version"]
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Both sides, one after the other; the result dict (see the module docstring)."""
    try:
        import ray  # noqa: F401
        from ray import serve  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"{exc.name} is missing: pip install 'ray[serve]'") from None
    cpus = parse_cpus(args.cpus)
    args.cpus = "none" if cpus is None else ",".join(map(str, cpus))  # the same on both sides
    say(f"resolving model {args.model!r} (a zoo model is exported to ONNX the first time)")
    onnx, name = _resolve(args.model, args.served_as)
    args.probe = probe(onnx, args.seed)
    if args.batch > 1 and not args.probe["dynamic_batch"]:
        raise SystemExit(f"--batch {args.batch}: {onnx} has a fixed batch size; use --batch 1")

    ours = run_ours(args, onnx, name)
    ray_ = run_ray(args, onnx, name)
    for side, r in (("ours", ours), ("ray", ray_)):
        if r["errors"]:
            say(
                f"warning: {side} had failed requests {r['errors']}; its figures count only answers"
            )
    ratio = ours["rps"] / ray_["rps"] if ray_["rps"] else float("inf")
    p99_ok = ours["p99_ms"] is not None and (
        ray_["p99_ms"] is None or ours["p99_ms"] <= ray_["p99_ms"]
    )
    out: dict[str, Any] = {
        "model": args.model,
        "served_as": name,
        "ours_rps": ours["rps"],
        "ray_rps": ray_["rps"],
        "throughput_ratio": round(ratio, 3),
        "target_throughput_ratio": TARGET_THROUGHPUT_RATIO,
        "ratio_to_target": round(ratio / TARGET_THROUGHPUT_RATIO, 3),
        "ours_p50_ms": ours["p50_ms"],
        "ours_p99_ms": ours["p99_ms"],
        "ray_p50_ms": ray_["p50_ms"],
        "ray_p99_ms": ray_["p99_ms"],
        "p99_not_worse": p99_ok,
        "ours_rss_total_mb": ours["memory"]["rss_total_mb"],
        "ray_rss_total_mb": ray_["memory"]["rss_total_mb"],
        "ours_pss_total_mb": ours["memory"]["pss_total_mb"],
        "ray_pss_total_mb": ray_["memory"]["pss_total_mb"],
        "ours_rss_mb": ours["memory"]["rss_mb"],
        "ray_rss_mb": ray_["memory"]["rss_mb"],
        "ray_processes": ray_["memory"]["processes"],
        "ours_requests": ours["requests"],
        "ray_requests": ray_["requests"],
        "ours_errors": ours["errors"],
        "ray_errors": ray_["errors"],
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "threads": args.threads,
        "instances": args.instances,
        "batch": args.batch,
        "delay_ms": args.delay_ms if args.batch > 1 else None,
        "ours_config_dynamic_batching": ours["config_dynamic_batching"],
        "ours_model_cpus": ours["model_cpus"],
        "ray_model_cpus": ray_["model_cpus"],
        "tensor_bytes": int(args.probe["tensor"].nbytes),
        "ours_request_bytes": ours["request_bytes"],
        "ray_request_bytes": ray_["request_bytes"],
        "ours_startup_s": ours["startup_s"],
        "ray_startup_s": ray_["startup_s"],
        "leftover_processes": ours["leftover_processes"] + ray_["leftover_processes"],
        "ray_version": ray_["version"],
        "onnxruntime_version": args.probe["ort_version"],
        "cpu_count": os.cpu_count(),
        "wall_s": round(time.perf_counter() - _T0, 1),
    }
    return out


def main() -> None:
    """Parse the arguments; run a child mode, or the benchmark and print its JSON."""
    parser = model_parser(__doc__)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="closed-loop workers, each with one request in flight (default: %(default)s)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="measured seconds per side, after a 1 s warm-up (default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="ONNX Runtime intra-op threads per model instance, both sides; also the logical "
        "CPUs each Ray replica asks for (default: %(default)s)",
    )
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="model instances: ours in the node's worker, Ray's as replicas (default: %(default)s)",
    )
    parser.add_argument(
        "--cpus",
        default="auto",
        help="CPUs the model-running process is pinned to on both sides (our worker, each Ray "
        "replica): a list like 1 or 0,1; auto = the last CPU; none = no pinning "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        help="dynamic batching's max batch size on both sides; 1 = no batching (default: "
        "%(default)s)",
    )
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=2.0,
        help="dynamic batching's queue delay: ours max_queue_delay_ms, Ray's "
        "batch_wait_timeout_s × 1000 (default: %(default)s)",
    )
    parser.add_argument(
        "--ray-access-log",
        action="store_true",
        help="leave Ray Serve's per-request access logs and INFO logging on (its defaults)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the input tensor")
    parser.add_argument("--child", choices=("serve", "ray"), help=argparse.SUPPRESS)
    parser.add_argument("--onnx", help=argparse.SUPPRESS)
    parser.add_argument("--sample", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for flag, value, low in (
        ("--concurrency", args.concurrency, 1),
        ("--threads", args.threads, 1),
        ("--instances", args.instances, 1),
        ("--batch", args.batch, 1),
    ):
        if value < low:
            parser.error(f"{flag} must be at least {low}, got {value}")
    if not args.duration > 0 or not args.delay_ms >= 0:
        parser.error("--duration must be > 0 and --delay-ms ≥ 0")
    if args.child == "serve":
        serve_child(args)
    elif args.child == "ray":
        ray_child(args)
    else:
        print(json.dumps(measure(args)), flush=True)


if __name__ == "__main__":
    main()
