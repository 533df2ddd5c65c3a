"""A lean HTTP/1.1 client for the serving benchmarks: keep-alive connections, requests encoded once.

Timing a server with a client written in Python charges the client's own CPU time to the server
whenever both share a core, as they must on this 2-core machine. This client keeps that cost
small (Triton's ``perf_analyzer`` is C++ for the same reason): the request bytes are built once,
and an answer is parsed only as far as its status line, ``Content-Length`` and the v2
``Inference-Header-Content-Length``. It speaks just enough HTTP/1.1 for the edgesched server
(bodies with a ``Content-Length``; no chunked encoding).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    """One response: status code, lower-cased headers, body."""

    status: int
    headers: dict[bytes, bytes]
    body: bytes


class RawClient:
    """Keep-alive connections to one server; a connection is reused once its answer is read.

    Args:
        host, port: the server.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    def encode(self, path: str, body: bytes, headers: dict[str, str]) -> bytes:
        """The whole POST request, to send as is (once per request)."""
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def send(self, request: bytes) -> Answer:
        """Send one encoded request and read its answer."""
        if self._idle:
            reader, writer = self._idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                key, _, value = line.partition(b":")
                headers[key.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
        if headers.get(b"connection", b"").lower() == b"close":
            writer.close()
        else:
            self._idle.append((reader, writer))
        return Answer(status, headers, body)

    async def close(self) -> None:
        """Close every idle connection."""
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()
