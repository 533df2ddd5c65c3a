"""Serving overhead: what the v2 frontend adds on top of the model's own execution time.

One node on this machine (one instance, one intra-op thread) serves one model; the frontend runs
in a child process of this script, the client in this process: by default a lean HTTP/1.1
client on plain sockets that sends requests encoded once (``benchmarks/raw_http.py``), so that
little of the client's own CPU time, spent on the frontend's core, is counted as overhead;
``--client aiohttp`` uses the aiohttp client of ``edgesched load`` instead.

Placement: the worker is pinned to the last CPU (``--worker-cpu``); the frontend and this
client to the others, so model execution has its core to itself, as on a board where the
frontend runs beside the accelerator. The frontend runs on the event loop ``edgesched serve``
picks (``--event-loop``; by default uvloop when it is installed).

1. **Saturation**: closed loops at concurrency 2, 4 and 8 with the tensors of step 3, same
   client, twice each for ``--sat-duration``/4 seconds (in the order 2 4 8 8 4 2); the best
   concurrency is then measured in four more chunks of ``--sat-duration``/2 seconds,
   interleaved with four of the ceiling.
2. **Ceiling**: raw ONNX Runtime throughput of the same model with the same session options (one
   intra-op thread), batch 1, run back to back in-process on the worker's CPU while the server
   is idle. This machine's speed drifts by tens of per cent within a minute, so saturation and
   ceiling are the means of their interleaved chunks. Target: saturation / ceiling ≥ 0.9 (with
   binary tensors). On a virtual machine the share of the worker's CPU that the hypervisor gave
   to others (steal time, from ``/proc/stat``) is reported for both, since it can differ: served,
   the frontend's CPU is busy too, which on a host that shares cores between them grows it.
3. **Overhead at fixed load**: open-loop Poisson arrivals at ``--rate`` (default ``--load`` ×
   the saturation throughput) with binary tensors (``--json`` for JSON tensors); per request,
   overhead = client end-to-end latency (from the moment the client sends) − the worker's
   execution time (the ``execution_s`` response parameter). Waiting behind another request at
   the worker counts as overhead too, so the figure grows with the load. Target: p50 overhead
   ≤ 1 ms. ``overhead_p50_from_schedule_ms`` measures from the scheduled send time instead, so
   it adds how late the client's own event loop was. **Floor**: in chunks alternating with the
   served ones, the same client sends the same bodies at the same rate to a no-op server on the
   frontend's CPUs that relays each request to a stand-in worker on the worker's CPU, which spins
   as long as the model runs (``http_floor.py --relay-ms``); its p50 overhead is what this
   machine costs before any serving logic (``floor_overhead_p50_ms``), and
   ``overhead_above_floor_p50_ms`` is the server's own share.
4. **Memory**: resident set size (``VmRSS``) of the frontend and of the worker process, against
   the targets: frontend < 250 MB; worker < the model's ONNX Runtime footprint + 150 MB, where
   the footprint is the RSS of a fresh process that only loads the session.

Prints one JSON object (keys: model, overhead_p50_ms, overhead_p99_ms,
overhead_p50_from_schedule_ms, e2e_p50_ms, e2e_p99_ms, target_overhead_p50_ms,
overhead_ratio_to_target, floor_overhead_p50_ms, floor_overhead_p99_ms,
overhead_above_floor_p50_ms, saturation_rps, ceiling_rps, saturation_ratio,
target_saturation_ratio, saturation_worker_cpu_steal, ceiling_worker_cpu_steal, frontend_rss_mb,
worker_rss_mb, ort_footprint_mb, worker_budget_mb, requests, event_loop, ...), then exits.
Takes about ``6 × --sat-duration + 2 × --duration + 25`` seconds.

Usage: python benchmarks/serve_overhead.py [--model mobilenet_v3_small | path.onnx]
       [--served-as NAME] [--rate RPS] [--duration 10] [--sat-duration 4] [--load 0.25]
       [--json] [--client raw|aiohttp] [--event-loop auto|uvloop|asyncio] [--worker-cpu N]
       [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from http_floor import no_op_server
from raw_http import Answer, RawClient, aiohttp_load

from edgesched.serve.eventloop import LOOP_KINDS, resolve

TARGET_OVERHEAD_P50_MS = 1.0  # issue "Serve for real", item 6
TARGET_SATURATION_RATIO = 0.9  # ditto
FRONTEND_BUDGET_MB = 250.0  # ditto
WORKER_MARGIN_MB = 150.0  # ditto: worker < ORT footprint + this
CONCURRENCIES = (2, 4, 8)
SATURATION_ROUNDS = 4  # served and raw chunks, interleaved
T = TypeVar("T")
FLOOR_ROUNDS = 4  # open-loop chunks served and sent to the floor's no-op server, interleaved
STAND_IN = "mobilenet_v2"  # catalog name for models the device catalog lacks
STARTUP_TIMEOUT_S = 120.0
CLUSTER = """
name: serve-overhead
nodes:
  - id: local
    device: x86-mini-pc
    models: {{{name}: 1}}
"""
PINNED = """
serving:
  nodes:
    local: {{cpus: [{cpu}], threads: 1}}
"""


def rss_mb(pid: int) -> float:
    """Resident set size of process ``pid`` in MB (10⁶ bytes), from ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


# -- child modes ---------------------------------------------------------------------------------


def pin_others(cpu: int) -> None:
    """Pin this process, all its threads, to every CPU but ``cpu`` (all of them on a one-CPU
    machine)."""
    from edgesched.runtime import available_cpus, pin_process

    pin_process([c for c in available_cpus() if c != cpu] or [cpu])


def serve_child(onnx: str, name: str, worker_cpu: int | None, event_loop: str) -> None:
    """Frontend process: serve ``onnx`` as ``name`` on 127.0.0.1 until stdin closes, on an
    ``event_loop`` loop; the worker pinned to ``worker_cpu`` and this process to the other CPUs
    (None: nothing pinned)."""
    from edgesched.core.cluster import Cluster
    from edgesched.serve import eventloop
    from edgesched.serve.server import InferenceServer

    text = CLUSTER.format(name=name)
    if worker_cpu is not None:
        pin_others(worker_cpu)
        text += PINNED.format(cpu=worker_cpu)

    async def main() -> None:
        server = InferenceServer(
            Cluster.parse(text),
            policy="least-loaded",
            model_files={name: onnx},
            threads_per_node=1,
        )
        port = await server.start("127.0.0.1", 0)
        worker_pid = server.core.workers[0].pid  # the one node's NodeWorker
        print(json.dumps({"port": port, "worker_pid": worker_pid}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
        await server.stop(drain_timeout_s=10)

    eventloop.run(main(), event_loop)


def footprint_child(onnx: str) -> None:
    """Fresh process that only loads the session (one intra-op thread); prints its RSS in MB."""
    from edgesched.runtime import open_executor

    with open_executor(onnx, threads=1):
        print(json.dumps({"rss_mb": rss_mb(os.getpid())}), flush=True)


# -- measurements --------------------------------------------------------------------------------


class Ceiling:
    """Raw batch-1 runs of the model in this process: one session, one intra-op thread (open
    it with ``with``)."""

    def __init__(self, onnx: str) -> None:
        from edgesched.runtime import open_executor

        self._ex = open_executor(onnx, threads=1)
        sample = tuple(d or 1 for d in self._ex.input_shape)  # a sample's shape, no batch axis
        self._batch = np.random.default_rng(0).standard_normal((1, *sample)).astype(np.float32)

    def __enter__(self) -> Ceiling:
        return self

    def __exit__(self, *exc: object) -> None:
        self._ex.close()

    def rps(self, cpu: int | None, seconds: float) -> float:
        """Throughput of runs back to back on ``cpu`` (None: wherever the OS puts them) for
        ``seconds``."""
        before = os.sched_getaffinity(0)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        try:
            for _ in range(5):  # warm-up
                self._ex.run(self._batch)
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds and n < 100_000:
                self._ex.run(self._batch)
                n += 1
            return n / (time.perf_counter() - start)
        finally:
            os.sched_setaffinity(0, before)


class Sender:
    """Sends one fixed inference request again and again through the chosen client.

    ``raw`` (default): :class:`raw_http.RawClient`, plain sockets and one thread, which keeps
    the client's own CPU time, on the frontend's core, small; ``aiohttp``: the aiohttp client
    that ``edgesched load`` uses. Both give :class:`raw_http.Answer` records.
    """

    def __init__(
        self, url: str, path: str, body: bytes, headers: dict[str, str], client: str
    ) -> None:
        self.url, self.path, self.body, self.headers, self.client = url, path, body, headers, client
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self._raw = RawClient(host, int(port))
        self._request = self._raw.encode(self.path, self.body, self.headers)

    @classmethod
    def infer(cls, url: str, name: str, seed: int, binary: bool, client: str) -> Sender:
        """A sender of one batch-1 infer request of model ``name``, random inputs of the shape
        the server's model metadata gives, as binary (or JSON) tensors."""
        import urllib.request

        from edgesched.serve.loadgen import random_inputs
        from edgesched.serve.protocol import encode_request

        with urllib.request.urlopen(f"{url}/v2/models/{name}", timeout=30) as resp:
            meta = json.loads(resp.read())
        inputs = random_inputs(meta, 1, np.random.default_rng(seed))
        body, headers = encode_request(inputs, binary_inputs=binary, binary_outputs=binary)
        return cls(url, f"/v2/models/{name}/infer", body, headers, client)

    def close(self) -> None:
        self._raw.close()

    def closed_loop(self, concurrency: int, duration_s: float) -> list[Answer]:
        """``concurrency`` requests kept in flight for ``duration_s`` seconds."""
        if self.client == "raw":
            return self._raw.closed_loop(self._request, concurrency, duration_s)
        return asyncio.run(
            aiohttp_load(
                self.url + self.path,
                self.body,
                self.headers,
                concurrency=concurrency,
                duration_s=duration_s,
            )
        )

    def open_loop(self, offsets: list[float], warm: int) -> list[Answer]:
        """``warm`` requests one after another, then one at each of ``offsets`` (seconds after
        them); the answers to the latter."""
        if self.client == "raw":
            return self._raw.open_loop(self._request, offsets, warm)
        return asyncio.run(
            aiohttp_load(self.url + self.path, self.body, self.headers, offsets=offsets, warm=warm)
        )


def execution_s(answer: Answer) -> float:
    """The worker's execution seconds that ``answer`` reports; a RuntimeError for an error."""
    from edgesched.serve.protocol import HEADER_LENGTH, decode_response

    if answer.status != 200:
        raise RuntimeError(f"HTTP {answer.status}: {answer.body[:200]!r}")
    hl = answer.headers.get(HEADER_LENGTH.lower().encode())
    params = decode_response(answer.body, None if hl is None else int(hl)).parameters
    return float(params["execution_s"])


def closed_loop_rps(sender: Sender, concurrency: int, duration_s: float) -> tuple[float, float]:
    """Throughput of a closed loop of ``concurrency`` for ``duration_s`` seconds, and the mean
    execution seconds its answers report."""
    began = time.perf_counter()
    answers = sender.closed_loop(concurrency, duration_s)
    rps = len(answers) / (time.perf_counter() - began)
    return rps, float(np.mean([execution_s(a) for a in answers]))  # each must have succeeded


def alternating(r: int, first: T, second: T) -> tuple[T, T]:
    """The two sides' order in round ``r``: first then second, then second then first, and so
    on, so that a drift of the machine's speed favours neither."""
    return (first, second) if r % 2 == 0 else (second, first)


def cpu_ticks(cpu: int | None) -> list[int] | None:
    """The time ``cpu`` has spent in each state since boot, in ticks (the ``cpuN`` line of
    ``/proc/stat``: user, nice, system, idle, iowait, irq, softirq, steal, ...); None where it
    cannot be read."""
    try:
        with open("/proc/stat") as stat:
            for line in stat:
                name, *ticks = line.split()
                if name == f"cpu{cpu}":
                    return [int(t) for t in ticks]
    except OSError:
        pass
    return None


def steal_share(before: list[int] | None, after: list[int] | None) -> float | None:
    """The share of a CPU's time between two :func:`cpu_ticks` readings that the hypervisor
    gave to others (steal time); None without readings."""
    if before is None or after is None or len(before) < 8:
        return None
    spent = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(spent[:8])
    return spent[7] / total if total else None


def saturation(
    sender: Sender, onnx: str, cpu: int | None, duration_s: float
) -> tuple[int, list[tuple[float, float, float | None]], list[tuple[float, float | None]]]:
    """The concurrency of :data:`CONCURRENCIES` with the best closed-loop throughput (two runs
    of ``duration_s / 4`` each, in the order 2 4 8 8 4 2, so that a drift of the machine's speed
    favours none), then :data:`SATURATION_ROUNDS` pairs of chunks of ``duration_s / 2`` seconds,
    served at that concurrency and raw (the ceiling), in alternating order. Returns the
    concurrency, the served chunks' (throughput, mean execution seconds, steal share of the
    worker's CPU) and the raw chunks' (throughput, steal share)."""
    chunk = duration_s / 2
    scan = {c: 0.0 for c in CONCURRENCIES}
    for c in (*CONCURRENCIES, *reversed(CONCURRENCIES)):
        scan[c] += closed_loop_rps(sender, c, chunk / 2)[0]
    best = max(scan, key=scan.__getitem__)
    served: list[tuple[float, float, float | None]] = []
    raw: list[tuple[float, float | None]] = []
    with Ceiling(onnx) as ceiling:
        for r in range(SATURATION_ROUNDS):
            for step in alternating(r, "served", "raw"):
                before = cpu_ticks(cpu)
                if step == "served":
                    rps, exec_s = closed_loop_rps(sender, best, chunk)
                    served.append((rps, exec_s, steal_share(before, cpu_ticks(cpu))))
                else:
                    rps = ceiling.rps(cpu, chunk)
                    raw.append((rps, steal_share(before, cpu_ticks(cpu))))
    return best, served, raw


def _mean(values: list[float | None]) -> float | None:
    """The mean of ``values``, None if any is None."""
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known and len(known) == len(values) else None


def poisson_answers(sender: Sender, rate_rps: float, duration_s: float, seed: int) -> list[Answer]:
    """The answers to Poisson arrivals at ``rate_rps`` for ``duration_s`` seconds, after 20
    requests one after another that warm the connection and the worker."""
    rng = np.random.default_rng(seed + 1)
    offsets = np.cumsum(rng.exponential(1.0 / rate_rps, int(rate_rps * duration_s * 2) + 10))
    return sender.open_loop(offsets[offsets < duration_s].tolist(), warm=20)


def open_loop(
    sender: Sender, rate_rps: float, duration_s: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson arrivals at ``rate_rps``; per request (end-to-end seconds from the send, from
    the scheduled send time, execution seconds). The two end-to-end figures differ by how late
    the client sent the request."""
    answers = poisson_answers(sender, rate_rps, duration_s, seed)
    e2e = np.array([a.done - a.sent for a in answers])
    scheduled = np.array([a.done - a.due for a in answers])
    exe = np.array([execution_s(a) for a in answers])
    return e2e, scheduled, exe


def open_loop_and_floor(
    sender: Sender, floor: Sender, rate_rps: float, duration_s: float, seed: int, floor_ms: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`open_loop` for ``duration_s`` seconds in :data:`FLOOR_ROUNDS` chunks, alternating
    with as many sent to ``floor`` (the no-op server relaying to a stand-in worker that spins
    ``floor_ms``), so that the machine's drift falls on both alike. Its three arrays, then each
    floor request's overhead in seconds (end to end less ``floor_ms``)."""
    chunk = duration_s / FLOOR_ROUNDS
    served: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    floor_s: list[float] = []
    for r in range(FLOOR_ROUNDS):
        for side in alternating(r, "served", "floor"):
            if side == "served":
                served.append(open_loop(sender, rate_rps, chunk, seed + r))
            else:
                answers = poisson_answers(floor, rate_rps, chunk, seed + r)
                floor_s += [a.done - a.sent - floor_ms / 1e3 for a in answers]
    e2e, scheduled, exe = (np.concatenate(parts) for parts in zip(*served, strict=True))
    return e2e, scheduled, exe, np.array(floor_s)


@contextlib.contextmanager
def frontend(
    script: Path,
    onnx: str,
    name: str,
    cpu: int | None,
    event_loop: str | None,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Run ``script --_serve`` (this file, or another tree's copy of it, with ``env``): the
    frontend serving ``onnx`` as ``name``, its worker on ``cpu``, on ``event_loop`` (None: not
    passed, the script's default). Yields its pid and its ready line (``port``,
    ``worker_pid``); stops it on exit."""
    cmd = [sys.executable, str(script), "--_serve", onnx, "--served-as", name]
    cmd += [] if cpu is None else ["--worker-cpu", str(cpu)]
    cmd += [] if event_loop is None else ["--event-loop", event_loop]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()  # blocks until started (or the child died)
        if not line:
            raise RuntimeError(f"the frontend of {script} exited before it started serving")
        yield proc.pid, json.loads(line)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the four measurements; the result dict (see the module docstring)."""
    onnx, name = _resolve(args.model, args.served_as)
    me = [sys.executable, __file__]
    out = subprocess.run(
        [*me, "--_footprint", onnx], capture_output=True, text=True, timeout=60, check=True
    )
    footprint = float(json.loads(out.stdout.strip().splitlines()[-1])["rss_mb"])
    cpu = _worker_cpu(args.worker_cpu)
    if cpu is not None:
        pin_others(cpu)  # the client shares the frontend's CPUs

    with frontend(Path(__file__), onnx, name, cpu, args.event_loop) as (pid, ready):
        url = f"http://127.0.0.1:{ready['port']}"
        # saturation with the tensors of the fixed-load run: JSON tensors saturate far sooner
        sender = Sender.infer(url, name, args.seed, not args.json, args.client)
        try:
            concurrency, served, raw = saturation(sender, onnx, cpu, args.sat_duration)
            sat, ceiling = (
                float(np.mean([s[0] for s in served])),
                float(np.mean([r[0] for r in raw])),
            )
            sat_steal, ceiling_steal = _mean([s[2] for s in served]), _mean([r[1] for r in raw])
            served_exec_ms = float(np.mean([s[1] for s in served])) * 1e3
            rate = args.rate if args.rate is not None else args.load * sat
            floor_ms = 1e3 / ceiling  # the stand-in worker spins as long as the model runs
            others = sorted(os.sched_getaffinity(0))
            relay_cpu = cpu if cpu is not None else others[0]
            with no_op_server("edgesched", floor_ms, others, relay_cpu) as port:
                floor = Sender(
                    f"http://127.0.0.1:{port}", "/", sender.body, sender.headers, args.client
                )
                try:
                    e2e, scheduled, exe, floor_s = open_loop_and_floor(
                        sender, floor, rate, args.duration, args.seed, floor_ms
                    )
                finally:
                    floor.close()
        finally:
            sender.close()
        frontend_mb, worker_mb = rss_mb(pid), rss_mb(int(ready["worker_pid"]))

    overhead = e2e - exe
    o50, o99 = (float(v) * 1e3 for v in np.percentile(overhead, [50, 99]))
    f50, f99 = (float(v) * 1e3 for v in np.percentile(floor_s, [50, 99]))
    s50 = float(np.percentile(scheduled - exe, 50)) * 1e3
    e50, e99 = (float(v) * 1e3 for v in np.percentile(e2e, [50, 99]))
    return {
        "model": args.model,
        "overhead_p50_ms": round(o50, 3),
        "overhead_p99_ms": round(o99, 3),
        "overhead_p50_from_schedule_ms": round(s50, 3),
        "e2e_p50_ms": round(e50, 3),
        "e2e_p99_ms": round(e99, 3),
        "target_overhead_p50_ms": TARGET_OVERHEAD_P50_MS,
        "overhead_ratio_to_target": round(o50 / TARGET_OVERHEAD_P50_MS, 3),
        # the same load on a no-op server that relays each request to a stand-in worker: the
        # part of the overhead that is this machine's, before any serving logic
        "floor_overhead_p50_ms": round(f50, 3),
        "floor_overhead_p99_ms": round(f99, 3),
        "floor_ratio_to_target": round(f50 / TARGET_OVERHEAD_P50_MS, 3),
        "overhead_above_floor_p50_ms": round(o50 - f50, 3),
        "saturation_rps": round(sat, 1),
        "ceiling_rps": round(ceiling, 1),
        "saturation_concurrency": concurrency,
        "saturation_chunks_rps": [round(s[0], 1) for s in served],
        "ceiling_chunks_rps": [round(r[0], 1) for r in raw],
        "saturation_ratio": round(sat / ceiling, 3),
        # the worker's own execution time per request at saturation, against the raw run's:
        # where they differ, the model ran slower while served (a cold input, a busy core)
        "saturation_exec_ms": round(served_exec_ms, 3),
        "ceiling_exec_ms": round(1e3 / ceiling, 3),
        "target_saturation_ratio": TARGET_SATURATION_RATIO,
        # on a virtual machine: the share of the worker's CPU the hypervisor gave to others
        # (steal time) while served and while raw; served, the frontend's CPU is busy as well,
        # and where both CPUs share a host core the steal grows with it
        "saturation_worker_cpu_steal": None if sat_steal is None else round(sat_steal, 3),
        "ceiling_worker_cpu_steal": None if ceiling_steal is None else round(ceiling_steal, 3),
        "frontend_rss_mb": round(frontend_mb, 1),
        "worker_rss_mb": round(worker_mb, 1),
        "ort_footprint_mb": round(footprint, 1),
        "worker_budget_mb": round(footprint + WORKER_MARGIN_MB, 1),
        "requests": len(e2e),
        "rate_rps": round(rate, 1),
        "load_of_saturation": round(rate / sat, 3),
        "tensors": "json" if args.json else "binary",
        "client": args.client,
        "worker_cpu": cpu,
        "event_loop": resolve(args.event_loop),
    }


def _worker_cpu(asked: int | None) -> int | None:
    """The CPU the worker gets: ``asked``, else the last one; None on a one-CPU machine."""

    cpus = sorted(os.sched_getaffinity(0))
    if asked is not None:
        if asked not in cpus:
            raise SystemExit(f"--worker-cpu {asked}: this process may use CPUs {cpus} only")
        return asked
    return cpus[-1] if len(cpus) > 1 else None


def _resolve(model: str, served_as: str | None) -> tuple[str, str]:
    """(ONNX path, served model name) of ``--model``: an ``.onnx`` path or a zoo name.

    The served name must be a device-catalog model; a zoo name or file stem the catalog lacks
    is served as :data:`STAND_IN` (the catalog entry only feeds the route policy's estimates).
    """
    from edgesched.core.cluster import Cluster
    from edgesched.errors import ConfigError

    if model.endswith(".onnx") or "/" in model:
        path = Path(model)
        if not path.is_file():
            raise SystemExit(f"--model {model!r}: no such ONNX file")
        onnx, name = str(path.resolve()), served_as or path.stem
    else:
        from edgesched.zoo.export import export_onnx

        onnx, name = str(export_onnx(model)), served_as or model
    try:
        Cluster.parse(CLUSTER.format(name=name))
    except ConfigError:
        if served_as is not None:
            raise
        name = STAND_IN
    return onnx, name


def model_parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser described by ``doc``, with ``--model`` and ``--served-as``."""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog="\n\n".join(doc.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        default="mobilenet_v3_small",
        help="zoo name (exported to ONNX, cached) or an .onnx path (default: %(default)s)",
    )
    parser.add_argument(
        "--served-as",
        default=None,
        help="catalog model name the cluster serves the file as (default: the zoo name or the "
        f"file's stem, else {STAND_IN}; it only feeds the route policy's estimates)",
    )
    return parser


def main() -> None:
    """Parse the arguments; run a child mode, or the benchmark and print its JSON."""
    parser = model_parser(__doc__)
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="open-loop arrival rate, requests/s (default: --load × the saturation throughput)",
    )
    parser.add_argument(
        "--load",
        type=float,
        default=0.25,
        help="open-loop rate as a fraction of the saturation throughput (default: %(default)s)",
    )
    parser.add_argument(
        "--json", action="store_true", help="JSON tensors in the open loop (default: binary)"
    )
    parser.add_argument(
        "--client",
        choices=("raw", "aiohttp"),
        default="raw",
        help="the benchmark's HTTP client: raw (lean, requests encoded once) or aiohttp (as "
        "`edgesched load`) (default: %(default)s)",
    )
    parser.add_argument(
        "--worker-cpu",
        type=int,
        default=None,
        help="CPU the worker is pinned to (default: the last one; the rest run the frontend "
        "and the client)",
    )
    parser.add_argument(
        "--event-loop",
        choices=LOOP_KINDS,
        default="auto",
        help="the frontend's event loop, as `edgesched serve --event-loop` (default: "
        "%(default)s: uvloop when installed)",
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="open-loop seconds (default: %(default)s)"
    )
    parser.add_argument(
        "--sat-duration",
        type=float,
        default=4.0,
        help="closed-loop seconds per concurrency (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="input and arrival seed")
    parser.add_argument("--_serve", metavar="ONNX", help=argparse.SUPPRESS)
    parser.add_argument("--_footprint", metavar="ONNX", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._serve:
        serve_child(args._serve, args.served_as, args.worker_cpu, args.event_loop)
    elif args._footprint:
        footprint_child(args._footprint)
    else:
        print(json.dumps(measure(args)), flush=True)


if __name__ == "__main__":
    main()
