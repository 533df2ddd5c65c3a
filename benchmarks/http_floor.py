"""The HTTP floor: latency of an HTTP server that does nothing, as the serving benchmarks see it.

A server process (pinned to CPU 0, like the frontend in ``serve_overhead.py``) reads each POST
body and answers 4 kB; this process (also on CPU 0) sends Poisson arrivals with the same client
(``--client raw``, the default, or ``aiohttp``). Whatever a real frontend adds comes on top of
these figures, so they bound from below the ``overhead_p50_ms`` that ``serve_overhead.py`` can
report on this machine. ``--server edgesched`` (the default) is the frontend's own HTTP/1.1
server (``edgesched/serve/_http1.py``), which receives each body straight into a buffer of its
announced size (reused from one request to the next, as the frontend reuses its shared-memory
blocks); ``--server aiohttp`` is aiohttp's, for comparison; ``--server blocking`` is the leanest
server Python can be (blocking sockets, a thread per connection, no event loop, no parsing
beyond ``Content-Length``), the floor under any design in Python.

With ``--relay-ms W`` the no-op server also hands every request to a stand-in worker: a process
pinned to CPU 1 (the worker's CPU in ``serve_overhead.py``) that, per byte it receives over a
Unix socket pair, spins W ms (like a model run) and sends the byte back; the handler awaits that
answer before it responds, and the latencies reported are less W. That is the floor of any
frontend that hands each request to a worker process on another CPU, which is what
``serve_overhead.py``'s ``overhead_p50_ms`` measures, before any serving logic runs.

Prints one JSON object: per (body bytes, rate) the p50 and p99 latency in ms, and the ratio of
the p50 to the 1 ms overhead target.

Usage: python benchmarks/http_floor.py [--bodies 602112,1000] [--rates 25,120] [--requests 600]
       [--client raw|aiohttp] [--server edgesched|aiohttp|blocking] [--relay-ms 2.5]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import multiprocessing as mp
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from edgesched.runtime import pin_process

TARGET_OVERHEAD_P50_MS = 1.0  # issue "Serve for real", item 6
CPU = 0  # the frontend's CPU in serve_overhead.py
RELAY_CPU = 1  # the worker's CPU there


def _server(
    ports: Any,
    kind: str,
    relay_ms: float | None,
    cpus: tuple[list[int], int],
) -> None:
    """The no-op server: read the body (hand it to the relay, if any), answer 4 kB. It runs on
    ``cpus[0]``, the relay on ``cpus[1]``."""
    pin_process(cpus[0])
    relay = None
    if relay_ms is not None:
        relay, theirs = socket.socketpair()
        if os.fork() == 0:
            relay.close()
            _relay(theirs, relay_ms / 1e3, cpus[1])
            os._exit(0)
        theirs.close()
    if kind == "edgesched":
        from edgesched.serve import eventloop

        eventloop.run(_edgesched_server(ports, relay))  # as `edgesched serve` does
        return
    if kind == "blocking":
        _blocking_server(ports, relay)
        return
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"x" * 4000)

    async def main() -> None:
        app = web.Application(client_max_size=2**26)
        app.router.add_post("/", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        ports.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


def _blocking_server(ports: Any, relay: socket.socket | None) -> None:
    """The leanest server in Python: a thread per connection, blocking sockets, no event loop,
    no parsing beyond ``Content-Length``; each body read into the connection's one buffer, then
    (given the ``relay`` process's socket) one blocking round trip to the relay."""
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    ports.put(listener.getsockname()[1])
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: 4000\r\n\r\n" + b"x" * 4000
    )
    relay_lock = threading.Lock()

    def serve(conn: socket.socket) -> None:
        buf = bytearray(2**21)
        view = memoryview(buf)
        have = 0
        while True:
            while (end := buf.find(b"\r\n\r\n", 0, have)) < 0:
                got = conn.recv_into(view[have:])
                if not got:
                    return
                have += got
            head = bytes(buf[:end]).lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15 :].split(b"\r\n")[0]) if at >= 0 else 0
            total = end + 4 + length
            while have < total:
                have += conn.recv_into(view[have:])
            if relay is not None:
                with relay_lock:
                    relay.send(b"x")
                    relay.recv(64)
            conn.sendall(answer)
            view[: have - total] = view[total:have]
            have -= total

    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def _relay(sock: socket.socket, work_s: float, cpu: int) -> None:
    """The stand-in worker on ``cpu``: per byte received, spin ``work_s`` (like a model run),
    answer it."""
    pin_process([cpu])
    while data := sock.recv(64):
        end = time.perf_counter() + work_s
        while time.perf_counter() < end:
            pass
        sock.send(data)


class _RelayLink(asyncio.Protocol):
    """The server's end of the relay's socket: each byte back resolves the oldest waiter."""

    def __init__(self) -> None:
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        for _ in data:
            self.waiters.popleft().set_result(None)

    async def round_trip(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        self.transport.write(b"x")
        await waiter


async def _edgesched_server(ports: Any, relay: socket.socket | None) -> None:
    """The frontend's own HTTP/1.1 server (:mod:`edgesched.serve._http1`) with a no-op handler
    that, given the ``relay`` process's socket, first waits for one round trip to it."""
    from edgesched.serve._http1 import HttpRequest, HttpResponse, HttpServer

    link: _RelayLink | None = None
    if relay is not None:
        link = _RelayLink()
        await asyncio.get_running_loop().create_connection(lambda: link, sock=relay)

    async def handle(request: HttpRequest) -> HttpResponse:
        if link is not None:
            await link.round_trip()
        return HttpResponse(200, b"x" * 4000, "application/octet-stream")

    # bodies land in reused buffers, as the frontend's land in its pooled shared-memory blocks:
    # a fresh buffer per body would add its page faults to the floor
    free: list[bytearray] = []
    lent: dict[int, bytearray] = {}

    def body_buffer(head: HttpRequest, length: int) -> bytearray:
        buffer = next((b for b in free if len(b) >= length), None)
        if buffer is None:
            buffer = bytearray(length)
        else:
            free.remove(buffer)
        lent[id(head)] = buffer
        return buffer

    def body_done(request: HttpRequest) -> None:
        free.append(lent.pop(id(request)))

    server = HttpServer(handle, max_body_bytes=2**26, body_buffer=body_buffer, body_done=body_done)
    ports.put(await server.start("127.0.0.1", 0))
    await asyncio.Event().wait()


@contextlib.contextmanager
def no_op_server(
    kind: str, relay_ms: float | None, cpus: list[int], relay_cpu: int
) -> Iterator[int]:
    """Run the no-op server of ``kind`` on ``cpus`` in a process of its own, relaying every
    request (with ``relay_ms``) to a stand-in worker on ``relay_cpu`` that spins that long;
    yields its port."""
    ctx = mp.get_context("spawn")
    ports = ctx.Queue()
    server = ctx.Process(
        target=_server, args=(ports, kind, relay_ms, (cpus, relay_cpu)), daemon=True
    )
    server.start()
    try:
        yield ports.get(timeout=60)
    finally:
        server.kill()
        server.join(5)


def _open_loop(port: int, rate: float, n: int, size: int, seed: int, client: str) -> np.ndarray:
    """Latencies in seconds of ``n`` Poisson arrivals at ``rate`` with ``size``-byte bodies,
    after 20 requests one after another to warm up."""
    from raw_http import RawClient, aiohttp_load

    body = b"y" * size
    headers = {"Content-Type": "application/octet-stream"}
    offsets = np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, n)).tolist()
    if client == "aiohttp":
        url = f"http://127.0.0.1:{port}/"
        answers = asyncio.run(aiohttp_load(url, body, headers, offsets=offsets, warm=20))
    else:
        raw = RawClient("127.0.0.1", port)
        try:
            answers = raw.open_loop(raw.encode("/", body, headers), offsets, warm=20)
        finally:
            raw.close()
    return np.array([a.done - a.sent for a in answers])


def main() -> None:
    """Parse the arguments, run every (body, rate), print the JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bodies", default="602112,1000", help="body sizes in bytes")
    parser.add_argument("--rates", default="25,120", help="arrival rates, requests/s")
    parser.add_argument("--requests", type=int, default=600, help="requests per point")
    parser.add_argument("--seed", type=int, default=0, help="arrival seed")
    parser.add_argument(
        "--client",
        choices=("raw", "aiohttp"),
        default="raw",
        help="the client, as in serve_overhead.py (default: %(default)s)",
    )
    parser.add_argument(
        "--server",
        choices=("edgesched", "aiohttp", "blocking"),
        default="edgesched",
        help="the frontend's own HTTP/1.1 server, aiohttp's, or the leanest Python server "
        "(blocking sockets, a thread per connection) (default: %(default)s)",
    )
    parser.add_argument(
        "--relay-ms",
        type=float,
        default=None,
        help="hand every request to a relay process on CPU 1 that spins this many ms (like a "
        "model run) and answers; the latencies reported are then less this time (not with "
        "--server aiohttp)",
    )
    args = parser.parse_args()
    if args.relay_ms is not None and args.server == "aiohttp":
        parser.error("--relay-ms needs --server edgesched or blocking")
    work_ms = args.relay_ms or 0.0
    pin_process([CPU])
    with no_op_server(args.server, args.relay_ms, [CPU], RELAY_CPU) as port:
        points = []
        for size in (int(b) for b in args.bodies.split(",")):
            for rate in (float(r) for r in args.rates.split(",")):
                lat = 1e3 * _open_loop(port, rate, args.requests, size, args.seed, args.client)
                lat -= work_ms
                p50, p99 = (float(v) for v in np.percentile(lat, [50, 99]))
                points.append(
                    {
                        "body_bytes": size,
                        "rate_rps": rate,
                        "p50_ms": round(p50, 3),
                        "p99_ms": round(p99, 3),
                        "p50_ratio_to_overhead_target": round(p50 / TARGET_OVERHEAD_P50_MS, 3),
                    }
                )
    server_kind = f"{args.server} no-op" + (
        f", relaying to a process spinning {work_ms:g} ms" if args.relay_ms is not None else ""
    )
    print(json.dumps({"server": server_kind, "client": args.client, "points": points}))


if __name__ == "__main__":
    main()
