"""A lean HTTP/1.1 load client for the serving benchmarks: plain sockets, one thread, no asyncio.

Timing a server with a client written in Python charges the client's own CPU time to the server
whenever both share a core, as they must on this 2-core machine. This client keeps that cost
small (Triton's ``perf_analyzer`` is C++ for the same reason): the request bytes are built once
and sent with one ``sendall``; answers are read with ``recv_into`` into a buffer of each
connection and parsed only as far as the status line and headers; the event loop is a bare
``selectors`` loop, which costs a fraction of an asyncio stream's reads and wake-ups. It speaks
just enough HTTP/1.1 for the edgesched server (bodies with a ``Content-Length``; no chunked
encoding). :func:`aiohttp_load` runs the same loads through aiohttp's client (the one
``edgesched load`` uses), for comparison.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_END = b"\r\n\r\n"
_SEND_BUFFER = 4 << 20  # room for a whole request, so one sendall rarely waits on the server


@dataclass(frozen=True)
class Answer:
    """One response: status code, lower-cased headers, body, and when its request was due, was
    sent and was answered (``time.perf_counter`` seconds; closed loops send when due)."""

    status: int
    headers: dict[bytes, bytes]
    body: bytes
    due: float
    sent: float
    done: float


class _Connection:
    """One keep-alive connection with its receive buffer."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
        self.buf = bytearray(1 << 16)
        self.got = 0
        self.due = self.sent = 0.0

    def send(self, request: bytes, due: float | None = None) -> None:
        self.got = 0
        self.sent = time.perf_counter()
        self.due = self.sent if due is None else due
        self.sock.sendall(request)

    def read(self) -> Answer | None:
        """Read what arrived (the socket is readable); the answer once it is whole."""
        if self.got == len(self.buf):
            self.buf.extend(bytes(len(self.buf)))
        with memoryview(self.buf) as view:
            n = self.sock.recv_into(view[self.got :])
        if not n:
            raise ConnectionError("the server closed the connection mid-answer")
        self.got += n
        end = self.buf.find(_END, 0, self.got)
        if end < 0:
            return None
        lines = bytes(self.buf[:end]).split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(b":")
            headers[key.strip().lower()] = value.strip()
        length = int(headers.get(b"content-length", b"0"))
        if self.got < end + 4 + length:
            return None
        done = time.perf_counter()
        body = bytes(self.buf[end + 4 : end + 4 + length])
        status = int(lines[0].split(b" ", 2)[1])
        return Answer(status, headers, body, self.due, self.sent, done)

    def close(self) -> None:
        self.sock.close()


class RawClient:
    """Sends one encoded request to one server, open-loop or closed-loop, from one thread.

    Args:
        host, port: the server.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._idle: list[_Connection] = []

    def encode(self, path: str, body: bytes, headers: dict[str, str]) -> bytes:
        """The whole POST request, to send as is (once per request)."""
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def open_loop(self, request: bytes, offsets: Sequence[float], warm: int = 0) -> list[Answer]:
        """Send ``request`` ``warm`` times one after another (answers dropped), then at each of
        ``offsets`` (seconds after the warm-up, ascending), on an idle connection or a new one;
        the answers, in the order they came back."""
        for _ in range(warm):
            self._run(request, [], 1, 0.0)
        start = time.perf_counter()
        return self._run(request, [start + o for o in offsets], None, 0.0)

    def closed_loop(self, request: bytes, concurrency: int, duration_s: float) -> list[Answer]:
        """Keep ``concurrency`` requests in flight for ``duration_s`` seconds; the answers."""
        return self._run(request, [], concurrency, duration_s)

    def _run(
        self, request: bytes, at: list[float], concurrency: int | None, duration_s: float
    ) -> list[Answer]:
        answers: list[Answer] = []
        stop = time.perf_counter() + duration_s
        due = at[::-1]  # popped from the end: soonest last
        with selectors.DefaultSelector() as sel:
            for _ in range(concurrency or 0):
                self._send(sel, request)
            while due or sel.get_map():
                timeout = None
                if due:
                    timeout = due[-1] - time.perf_counter()
                    if timeout <= 0:
                        self._send(sel, request, due.pop())
                        continue
                for key, _ in sel.select(timeout):
                    conn: _Connection = key.data
                    answer = conn.read()
                    if answer is None:
                        continue
                    answers.append(answer)
                    if concurrency and answer.done < stop:
                        conn.send(request)
                        continue
                    sel.unregister(conn.sock)
                    if answer.headers.get(b"connection", b"").lower() == b"close":
                        conn.close()
                    else:
                        self._idle.append(conn)
        return answers

    def _send(self, sel: selectors.BaseSelector, request: bytes, due: float | None = None) -> None:
        conn = self._idle.pop() if self._idle else _Connection(self.host, self.port)
        sel.register(conn.sock, selectors.EVENT_READ, conn)
        conn.send(request, due)

    def close(self) -> None:
        """Close every idle connection."""
        for conn in self._idle:
            conn.close()
        self._idle.clear()


async def aiohttp_load(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    offsets: Sequence[float] = (),
    warm: int = 0,
    concurrency: int = 0,
    duration_s: float = 0.0,
) -> list[Answer]:
    """The loads of :class:`RawClient` through one aiohttp session: ``warm`` POSTs of ``body``
    to ``url`` one after another (answers dropped), then one at each of ``offsets`` (seconds
    after the warm-up, ascending) and ``concurrency`` closed loops for ``duration_s`` seconds;
    the answers."""
    import aiohttp

    answers: list[Answer] = []
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=256)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(due: float | None = None) -> Answer:
            sent = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as resp:
                data = await resp.read()
                got = {k.lower().encode(): v.encode() for k, v in resp.headers.items()}
                when = sent if due is None else due
                answer = Answer(resp.status, got, data, when, sent, time.perf_counter())
            answers.append(answer)
            return answer

        for _ in range(warm):
            await one()
        answers.clear()
        start = time.perf_counter()
        stop = start + duration_s

        async def loop() -> None:
            while (await one()).done < stop:
                pass

        tasks = [asyncio.ensure_future(loop()) for _ in range(concurrency)]
        for offset in offsets:
            await asyncio.sleep(max(0.0, start + offset - time.perf_counter()))
            tasks.append(asyncio.ensure_future(one(start + offset)))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    return answers
