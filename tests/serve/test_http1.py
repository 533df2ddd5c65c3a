"""The HTTP/1.1 transport (:mod:`edgesched.serve._http1`): a real server on 127.0.0.1 against raw
sockets, http.client and aiohttp."""

from __future__ import annotations

import array
import asyncio
import contextlib
import http.client
import json
import logging
import os
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from edgesched.serve._http1 import HttpRequest, HttpResponse, HttpServer, Later

T = 5.0  # the longest any single wait in these tests may take


async def describe(request: HttpRequest) -> HttpResponse:
    """Answer with the request, body size instead of body, as JSON."""
    described = {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": request.headers,
        "version": request.version,
        "length": len(request.body),
    }
    return HttpResponse(200, json.dumps(described).encode())


async def echo(request: HttpRequest) -> HttpResponse:
    """Answer with the request's body (as a sequence of buffers)."""
    return HttpResponse(
        200, [b"", request.body], "application/octet-stream", {"X-Path": request.path}
    )


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(main(), 3 * T))


@contextlib.asynccontextmanager
async def serving(
    handler: Callable[[HttpRequest], Awaitable[HttpResponse]] = describe, **kwargs: Any
) -> AsyncIterator[tuple[HttpServer, int]]:
    kwargs.setdefault("max_body_bytes", 4 * 2**20)
    server = HttpServer(handler, **kwargs)
    port = await server.start("127.0.0.1", 0)
    assert server.port == port
    try:
        yield server, port
    finally:
        server.close()
        await server.wait_closed(1.0)
        assert server.connections == 0


@contextlib.asynccontextmanager
async def connect(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def request_bytes(
    method: str = "GET",
    target: str = "/",
    body: bytes = b"",
    headers: tuple[str, ...] = (),
    version: str = "1.1",
) -> bytes:
    lines = [f"{method} {target} HTTP/{version}", "Host: test"]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    lines += headers
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), T)
    lines = head.decode("latin-1").split("\r\n")[:-2]
    version, status, _reason = lines[0].split(" ", 2)
    assert version == "HTTP/1.1"
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        assert name.lower() not in headers, f"duplicate response header {name}"
        headers[name.lower()] = value.strip()
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), T)
    return int(status), headers, body


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), T) == b""
    except ConnectionResetError:
        return True


# -- keep-alive and pipelining ---------------------------------------------------------------------


def test_aiohttp_client_reuses_one_connection() -> None:
    aiohttp = pytest.importorskip("aiohttp")

    async def main() -> None:
        async with (
            serving(echo) as (server, port),
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session,
        ):
            for i, size in enumerate([0, 10, 602_112, 70_000, 3]):
                payload = os.urandom(size)
                url = f"http://127.0.0.1:{port}/echo/{i}"
                async with session.post(url, data=payload) as resp:
                    assert resp.status == 200
                    assert resp.headers["X-Path"] == f"/echo/{i}"
                    assert resp.headers["Content-Type"] == "application/octet-stream"
                    assert "Connection" not in resp.headers
                    assert await resp.read() == payload
                assert server.connections == 1

    run(main)


def test_raw_socket_keep_alive_serves_several_requests() -> None:
    async def main() -> None:
        async with serving() as (server, port), connect(port) as (reader, writer):
            for i in range(3):
                writer.write(request_bytes("POST", f"/r{i}", b"x" * i))
                status, headers, body = await read_response(reader)
                assert status == 200
                assert headers["content-type"] == "application/json"
                assert "connection" not in headers
                got = json.loads(body)
                assert (got["method"], got["path"], got["length"]) == ("POST", f"/r{i}", i)
                assert server.connections == 1

    run(main)


def test_pipelined_requests_are_answered_in_order_one_at_a_time() -> None:
    order: list[str] = []
    active = [0, 0]  # now, peak

    async def handler(request: HttpRequest) -> HttpResponse:
        active[0] += 1
        active[1] = max(active)
        order.append(request.path)
        await asyncio.sleep(0.05 if request.path == "/first" else 0)
        active[0] -= 1
        return HttpResponse(200, bytes(request.body) or request.path.encode(), "text/plain")

    async def main() -> None:
        async with serving(handler) as (_, port), connect(port) as (reader, writer):
            third = request_bytes("POST", "/third", b"3" * 50)
            writer.write(
                request_bytes("GET", "/first")
                + request_bytes("POST", "/second", b"second body")
                + third[:20]
            )
            answers = [await read_response(reader)]
            writer.write(third[20:])
            answers += [await read_response(reader), await read_response(reader)]
            assert [body for _, _, body in answers] == [b"/first", b"second body", b"3" * 50]
            assert all(status == 200 for status, _, _ in answers)

    run(main)
    assert order == ["/first", "/second", "/third"]
    assert active[1] == 1


def test_reading_pauses_while_a_request_is_handled() -> None:
    """Pipelined bytes stay in the kernel (the client cannot send them all) until the answer."""
    release = asyncio.Event()
    big = 32 * 2**20

    async def handler(request: HttpRequest) -> HttpResponse:
        if request.path == "/wait":
            await release.wait()
        return HttpResponse(200, str(len(request.body)).encode())

    async def main() -> None:
        async with (
            serving(handler, max_body_bytes=big) as (_, port),
            connect(port) as (reader, writer),
        ):
            writer.write(request_bytes("GET", "/wait"))
            writer.write(request_bytes("POST", "/next", bytes(big)))
            await asyncio.sleep(0.2)
            assert writer.transport.get_write_buffer_size() > 0
            release.set()
            assert (await read_response(reader))[::2] == (200, b"0")
            assert (await read_response(reader))[::2] == (200, str(big).encode())

    run(main)


# -- handlers that answer without a task ----------------------------------------------------------


def test_a_handler_answers_now_later_or_through_a_task_in_order() -> None:
    """A plain function may return a response, or a Later it sets from a callback (before or
    after it returns); neither runs in a task. An async handler's coroutine runs as one."""
    tasks_seen: dict[str, Any] = {}

    def handler(request: HttpRequest) -> HttpResponse | Later | Awaitable[HttpResponse]:
        path = request.path
        answer = HttpResponse(200, f"{path} {len(request.body)}".encode(), "text/plain")
        if path == "/async":
            return describe(request)
        tasks_seen[path] = asyncio.current_task()
        if path == "/now":
            return answer
        later = Later()
        if path == "/set-first":
            later.set(answer)
            later.set(HttpResponse(500))  # a second answer is ignored
            return later

        def give() -> None:
            tasks_seen["/later at set"] = [
                t.get_coro().__qualname__
                for t in asyncio.all_tasks()
                if "_Connection" in t.get_coro().__qualname__
            ]
            later.set(answer)

        asyncio.get_running_loop().call_later(0.02, give)
        return later

    async def main() -> None:
        async with serving(handler) as (_, port), connect(port) as (reader, writer):
            for _ in range(2):
                writer.write(
                    request_bytes("POST", "/later", b"abc")
                    + request_bytes("GET", "/now")
                    + request_bytes("POST", "/set-first", b"xy")
                    + request_bytes("GET", "/async")
                )
                answers = [await read_response(reader) for _ in range(4)]
                assert [(status, body) for status, _, body in answers[:3]] == [
                    (200, b"/later 3"),
                    (200, b"/now 0"),
                    (200, b"/set-first 2"),
                ]
                assert json.loads(answers[3][2])["path"] == "/async"

    run(main)
    assert tasks_seen["/now"] is tasks_seen["/later"] is tasks_seen["/set-first"] is None
    assert tasks_seen["/later at set"] == []  # no task of the server's waits for it


def test_thousands_of_pipelined_requests_answered_at_once() -> None:
    """Answering each pipelined request before the next is parsed must not nest calls."""
    count = 3000

    def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, request.path.encode(), "text/plain")

    async def main() -> None:
        async with serving(handler) as (_, port), connect(port) as (reader, writer):
            writer.write(b"".join(request_bytes("GET", f"/{i}") for i in range(count)))
            for i in range(count):
                assert (await read_response(reader))[::2] == (200, f"/{i}".encode())

    run(main)


def test_a_later_given_after_its_client_left_gives_the_body_back_once() -> None:
    pending: list[Later] = []
    done: list[str] = []

    def handler(request: HttpRequest) -> Later:
        pending.append(Later())
        return pending[-1]

    async def main() -> None:
        async with serving(
            handler,
            body_buffer=lambda head, length: bytearray(length),
            body_done=lambda request: done.append(request.path),
        ) as (server, port):
            async with connect(port) as (_, writer):
                writer.write(request_bytes("POST", "/gone", b"body"))
                await writer.drain()
                for _ in range(100):
                    if pending:
                        break
                    await asyncio.sleep(0.01)
                # the client vanishes: a reset, not a half-close (which would wait for the answer)
                linger = struct.pack("ii", 1, 0)
                writer.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, linger
                )
                writer.transport.abort()
            for _ in range(100):
                if server.connections == 0:
                    break
                await asyncio.sleep(0.01)
            assert server.connections == 0
            assert done == []  # the handler is not done with the body yet
            pending[0].set(HttpResponse(200, b"too late"))
            assert done == ["/gone"]

    run(main)


# -- bodies ----------------------------------------------------------------------------------------


def test_a_1mb_body_in_many_small_writes_arrives_intact() -> None:
    payload = os.urandom(2**20)
    lengths: list[tuple[int, type]] = []

    async def handler(request: HttpRequest) -> HttpResponse:
        lengths.append((len(request.body), type(request.body)))
        return await echo(request)

    async def main() -> None:
        async with serving(handler) as (_, port), connect(port) as (reader, writer):
            head = request_bytes("POST", "/big", headers=(f"Content-Length: {len(payload)}",))
            writer.write(head[:7])
            await asyncio.sleep(0.01)
            writer.write(head[7:])
            for offset in range(0, len(payload), 1500):
                writer.write(payload[offset : offset + 1500])
                await writer.drain()
                await asyncio.sleep(0)  # let the server read each piece on its own
            status, _, body = await read_response(reader)
            assert status == 200
            assert body == payload

    run(main)
    assert lengths == [(2**20, memoryview)]


@pytest.mark.parametrize("size", [10, 200_000])
def test_a_body_that_arrives_with_its_head(size: int) -> None:
    payload = os.urandom(size)

    async def main() -> None:
        async with serving(echo) as (_, port), connect(port) as (reader, writer):
            writer.write(request_bytes("PUT", "/a", payload) + request_bytes("PUT", "/b", b"next"))
            status, headers, body = await read_response(reader)
            assert (status, headers["x-path"], body) == (200, "/a", payload)
            status, headers, body = await read_response(reader)
            assert (status, headers["x-path"], body) == (200, "/b", b"next")

    run(main)


def test_a_request_without_a_body_has_an_empty_one() -> None:
    bodies: list[Any] = []

    async def handler(request: HttpRequest) -> HttpResponse:
        bodies.append(request.body)
        return HttpResponse(204)

    async def main() -> None:
        async with serving(handler) as (_, port), connect(port) as (reader, writer):
            writer.write(request_bytes("GET", "/", headers=("Content-Length: 0",)))
            writer.write(request_bytes("DELETE", "/x"))
            assert (await read_response(reader))[:1] == (204,)
            assert (await read_response(reader))[:1] == (204,)

    run(main)
    assert bodies == [b"", b""]


def test_expect_100_continue() -> None:
    async def main() -> None:
        async with serving(echo, max_body_bytes=100) as (_, port):
            async with connect(port) as (reader, writer):
                writer.write(
                    request_bytes(
                        "POST", "/up", headers=("Content-Length: 5", "Expect: 100-continue")
                    )
                )
                interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), T)
                assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
                writer.write(b"hello")
                assert await read_response(reader) == (
                    200,
                    {
                        "content-type": "application/octet-stream",
                        "content-length": "5",
                        "x-path": "/up",
                    },
                    b"hello",
                )
            async with connect(port) as (reader, writer):  # refused: no 100, the refusal
                writer.write(
                    request_bytes(
                        "POST", "/up", headers=("Content-Length: 500", "Expect: 100-continue")
                    )
                )
                status, headers, _ = await read_response(reader)
                assert (status, headers["connection"]) == (413, "close")
                assert await closed_by_server(reader)

    run(main)


def test_body_buffer_hook_receives_the_body() -> None:
    given: list[tuple[str, int, Any]] = []
    seen: list[Any] = []

    def body_buffer(head: HttpRequest, length: int) -> Any:
        assert head.body == b""
        if head.path == "/floats":
            buffer: Any = array.array("d", bytes(8 * (length // 8 + 1)))
        else:
            buffer = bytearray(length + 16)
        given.append((head.path, length, buffer))
        return buffer

    async def handler(request: HttpRequest) -> HttpResponse:
        seen.append(request.body)
        if request.path == "/empty":
            return HttpResponse(200, b"0")
        assert isinstance(request.body, memoryview)
        assert request.body.obj is given[-1][2]
        return HttpResponse(200, str(request.body.nbytes).encode())

    payloads = {"/split": os.urandom(300_000), "/whole": b"w" * 100, "/floats": os.urandom(77)}

    async def main() -> None:
        async with (
            serving(handler, body_buffer=body_buffer) as (_, port),
            connect(port) as (reader, writer),
        ):
            data = request_bytes("POST", "/split", payloads["/split"])
            writer.write(data[:100])  # the head and a little of the body
            await asyncio.sleep(0.01)
            writer.write(data[100:])
            writer.write(request_bytes("POST", "/whole", payloads["/whole"]))
            writer.write(request_bytes("POST", "/floats", payloads["/floats"]))
            writer.write(request_bytes("GET", "/empty"))  # no body: the hook is not called
            for payload in [*payloads.values(), b""]:
                status, _, body = await read_response(reader)
                assert (status, body) == (200, str(len(payload)).encode())

    run(main)
    assert [(path, length) for path, length, _ in given] == [
        (path, len(payload)) for path, payload in payloads.items()
    ]
    for (_, length, buffer), payload in zip(given, payloads.values(), strict=True):
        assert memoryview(buffer).cast("B")[:length] == payload
    assert seen[-1] == b""


def test_a_failing_body_buffer_hook_answers_500_and_closes() -> None:
    def body_buffer(head: HttpRequest, length: int) -> Any:
        return bytearray(length - 1)  # too small

    async def main() -> None:
        async with (
            serving(body_buffer=body_buffer) as (_, port),
            connect(port) as (reader, writer),
        ):
            writer.write(request_bytes("POST", "/", b"abc"))
            status, headers, body = await read_response(reader)
            assert (status, headers["connection"]) == (500, "close")
            assert "2 bytes for a body of 3 bytes" in json.loads(body)["error"]
            assert await closed_by_server(reader)

    run(main)


# -- refusals and malformed heads ------------------------------------------------------------------


def test_too_large_body_goes_through_refused_and_closes() -> None:
    calls: list[tuple[Any, ...]] = []

    def refused(head: HttpRequest, status: int, message: str) -> HttpResponse:
        calls.append((head.method, head.path, bytes(head.body), status, message))
        return HttpResponse(status, b"too big", "text/plain", {"X-Refused": "yes"})

    async def handler(request: HttpRequest) -> HttpResponse:
        raise AssertionError("the handler must not see a refused request")

    async def main() -> None:
        async with (
            serving(handler, max_body_bytes=1000, refused=refused) as (_, port),
            connect(port) as (reader, writer),
        ):
            writer.write(
                request_bytes("POST", "/v2/models/m/infer", headers=("Content-Length: 5000",))
            )
            writer.write(b"x" * 100)  # part of the body, never read
            status, headers, body = await read_response(reader)
            assert (status, body) == (413, b"too big")
            assert headers["content-type"] == "text/plain"
            assert headers["x-refused"] == "yes"
            assert headers["connection"] == "close"
            assert await closed_by_server(reader)

    run(main)
    assert calls == [
        (
            "POST",
            "/v2/models/m/infer",
            b"",
            413,
            "request body of 5000 bytes exceeds the limit of 1000 bytes",
        )
    ]


def test_a_client_uploading_a_refused_body_still_reads_the_refusal() -> None:
    """http.client sends all 4 MB before reading: the server drains them (lingering close)."""

    def post() -> tuple[int, str | None, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port_box[0], timeout=T)
        try:
            conn.request("POST", "/infer", body=b"\0" * (4 * 2**20))
            resp = conn.getresponse()
            return resp.status, resp.getheader("Connection"), resp.read()
        finally:
            conn.close()

    port_box: list[int] = []

    async def main() -> None:
        async with serving(max_body_bytes=1024) as (_, port):
            port_box.append(port)
            status, connection, body = await asyncio.to_thread(post)
            assert (status, connection) == (413, "close")
            assert json.loads(body) == {
                "error": f"request body of {4 * 2**20} bytes exceeds the limit of 1024 bytes"
            }

    run(main)


def test_transfer_encoding_is_refused_with_411() -> None:
    calls: list[tuple[int, str]] = []

    def refused(head: HttpRequest, status: int, message: str) -> HttpResponse:
        calls.append((status, message))
        return HttpResponse(status, json.dumps({"error": message}).encode())

    async def main() -> None:
        async with serving(refused=refused) as (_, port), connect(port) as (reader, writer):
            writer.write(
                request_bytes("POST", "/", headers=("Transfer-Encoding: chunked",))
                + b"5\r\nhello\r\n0\r\n\r\n"
            )
            status, headers, body = await read_response(reader)
            assert (status, headers["connection"]) == (411, "close")
            assert "Content-Length" in json.loads(body)["error"]
            assert await closed_by_server(reader)

    run(main)
    assert [status for status, _ in calls] == [411]


@pytest.mark.parametrize(
    "head",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
        b"G(T / HTTP/1.1\r\n\r\n",
        b"GET nopath HTTP/1.1\r\n\r\n",
        b"GET / HTTX/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\r\n folded: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\nb\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1.5\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ],
)
def test_a_malformed_head_gets_400_and_closes(head: bytes) -> None:
    refused_calls: list[int] = []

    def refused(head: HttpRequest, status: int, message: str) -> HttpResponse:
        refused_calls.append(status)
        return HttpResponse(status)

    async def handler(request: HttpRequest) -> HttpResponse:
        raise AssertionError("the handler must not see a malformed request")

    async def main() -> None:
        async with (
            serving(handler, refused=refused) as (_, port),
            connect(port) as (reader, writer),
        ):
            writer.write(head)
            status, headers, body = await read_response(reader)
            assert (status, headers["connection"]) == (400, "close")
            assert headers["content-type"] == "application/json"
            assert set(json.loads(body)) == {"error"}
            assert await closed_by_server(reader)

    run(main)
    assert refused_calls == []


def test_a_head_over_the_limit_gets_431() -> None:
    async def main() -> None:
        async with serving(max_head_bytes=1024) as (_, port):
            async with connect(port) as (reader, writer):  # just under the limit: served
                writer.write(request_bytes(headers=("X-Pad: " + "p" * 900,)))
                assert (await read_response(reader))[0] == 200
            async with connect(port) as (reader, writer):  # complete, too large
                writer.write(request_bytes(headers=("X-Pad: " + "p" * 2000,)))
                status, headers, body = await read_response(reader)
                assert (status, headers["connection"]) == (431, "close")
                assert "1024 bytes" in json.loads(body)["error"]
                assert await closed_by_server(reader)
            async with connect(port) as (reader, writer):  # no end in sight
                writer.write(b"GET / HTTP/1.1\r\nX-Pad: " + b"p" * 2000)
                status, headers, _ = await read_response(reader)
                assert (status, headers["connection"]) == (431, "close")
                assert await closed_by_server(reader)

    run(main)


def test_an_unsupported_http_version_gets_505() -> None:
    async def main() -> None:
        async with serving() as (_, port), connect(port) as (reader, writer):
            writer.write(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
            status, headers, body = await read_response(reader)
            assert (status, headers["connection"]) == (505, "close")
            assert "2.0" in json.loads(body)["error"]
            assert await closed_by_server(reader)

    run(main)


# -- connection management -------------------------------------------------------------------------


def test_http10_closes_unless_keep_alive_is_asked_for() -> None:
    async def main() -> None:
        async with serving() as (server, port):
            async with connect(port) as (reader, writer):
                writer.write(request_bytes(version="1.0"))
                status, headers, body = await read_response(reader)
                assert (status, headers["connection"]) == (200, "close")
                assert json.loads(body)["version"] == "1.0"
                assert await closed_by_server(reader)
            async with connect(port) as (reader, writer):
                for _ in range(2):
                    writer.write(request_bytes(version="1.0", headers=("Connection: Keep-Alive",)))
                    status, headers, _ = await read_response(reader)
                    assert (status, headers["connection"]) == (200, "keep-alive")
                assert server.connections == 1
            async with connect(port) as (reader, writer):  # HTTP/1.1 asking to close
                writer.write(request_bytes(headers=("Connection: close",)))
                status, headers, _ = await read_response(reader)
                assert (status, headers["connection"]) == (200, "close")
                assert await closed_by_server(reader)

    run(main)


def test_a_failing_handler_gets_500_and_the_connection_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(request: HttpRequest) -> HttpResponse:
        if request.path == "/boom":
            raise ValueError("boom")
        if request.path == "/none":
            return None  # type: ignore[return-value]
        return HttpResponse(200, b"fine", "text/plain")

    async def main() -> None:
        async with serving(handler) as (server, port), connect(port) as (reader, writer):
            writer.write(request_bytes("POST", "/boom", b"abc"))
            status, headers, body = await read_response(reader)
            assert (status, json.loads(body)) == (500, {"error": "ValueError: boom"})
            assert "connection" not in headers
            writer.write(request_bytes("GET", "/none"))
            assert (await read_response(reader))[0] == 500
            writer.write(request_bytes("GET", "/ok"))
            assert (await read_response(reader))[::2] == (200, b"fine")
            assert server.connections == 1

    with caplog.at_level(logging.ERROR, logger="edgesched.serve._http1"):
        run(main)
    assert any("ValueError: boom" in r.exc_text for r in caplog.records if r.exc_text)


def test_close_finishes_requests_in_progress_and_closes_idle_connections_at_once() -> None:
    started = asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        if request.path == "/slow":
            started.set()
            await asyncio.sleep(0.3)
        return HttpResponse(200, request.path.encode(), "text/plain")

    async def main() -> None:
        server = HttpServer(handler, max_body_bytes=100)
        port = await server.start("127.0.0.1", 0)
        async with connect(port) as (idle_r, idle_w), connect(port) as (busy_r, busy_w):
            idle_w.write(request_bytes("GET", "/fast"))
            assert (await read_response(idle_r))[::2] == (200, b"/fast")
            busy_w.write(request_bytes("GET", "/slow"))
            await asyncio.wait_for(started.wait(), T)
            assert server.connections == 2

            t0 = time.monotonic()
            server.close()
            assert await closed_by_server(idle_r)
            assert time.monotonic() - t0 < 0.2  # before the slow handler is done
            status, headers, body = await read_response(busy_r)
            assert (status, headers["connection"], body) == (200, "close", b"/slow")
            assert await closed_by_server(busy_r)
            with pytest.raises(OSError):
                await asyncio.open_connection("127.0.0.1", port)
        await asyncio.wait_for(server.wait_closed(2.0), T)
        assert server.connections == 0

    run(main)


def test_wait_closed_aborts_what_is_left_after_its_timeout() -> None:
    cancelled = asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return HttpResponse(200)

    async def main() -> None:
        server = HttpServer(handler, max_body_bytes=100)
        port = await server.start("127.0.0.1", 0)
        async with connect(port) as (reader, writer):
            writer.write(request_bytes())
            await asyncio.sleep(0.05)
            t0 = time.monotonic()
            await server.wait_closed(0.2)
            assert 0.15 < time.monotonic() - t0 < 1.0
            assert server.connections == 0
            assert cancelled.is_set()
            assert await closed_by_server(reader)

    run(main)


def test_idle_connections_close_after_the_keepalive_timeout() -> None:
    async def main() -> None:
        async with serving(keepalive_timeout_s=0.2) as (server, port):
            async with connect(port) as (reader, writer):
                writer.write(request_bytes())
                assert (await read_response(reader))[0] == 200
                t0 = time.monotonic()
                assert await closed_by_server(reader)
                assert 0.15 < time.monotonic() - t0 < 1.0
            async with connect(port) as (reader, _):  # never sends anything
                assert await closed_by_server(reader)
            assert server.connections == 0

    run(main)


def test_a_client_leaving_mid_request_is_no_error(caplog: pytest.LogCaptureFixture) -> None:
    finished = asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        if request.path == "/slow":
            await asyncio.sleep(0.1)
            finished.set()
        return HttpResponse(200, b"x" * 100_000)

    async def main() -> None:
        async with serving(handler) as (server, port):
            async with connect(port) as (_, writer):
                writer.write(request_bytes("POST", "/slow", b"body"))
                await writer.drain()
            await asyncio.wait_for(finished.wait(), T)
            for _ in range(100):
                if server.connections == 0:
                    break
                await asyncio.sleep(0.01)
            assert server.connections == 0
            async with connect(port) as (reader, writer):
                writer.write(request_bytes())
                assert (await read_response(reader))[0] == 200

    with caplog.at_level(logging.WARNING):
        run(main)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


# -- request heads and responses -------------------------------------------------------------------


def test_path_is_percent_decoded_and_query_split_http_client() -> None:
    def fetch(port: int) -> list[dict[str, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=T)
        out = []
        try:
            for target in ["/v2/models/my%20model/infer?x=1&y=%20z", "/plain", "/q?"]:
                conn.request("POST", target, body=b"12345")
                resp = conn.getresponse()
                assert resp.status == 200
                out.append(json.loads(resp.read()))
        finally:
            conn.close()
        return out

    async def main() -> None:
        async with serving() as (_, port):
            got = await asyncio.to_thread(fetch, port)
            assert [(g["path"], g["query"], g["length"]) for g in got] == [
                ("/v2/models/my model/infer", "x=1&y=%20z", 5),
                ("/plain", "", 5),
                ("/q", "", 5),
            ]

    run(main)


def test_header_names_are_lower_cased_and_repeats_joined() -> None:
    async def main() -> None:
        async with serving() as (_, port), connect(port) as (reader, writer):
            writer.write(
                b"GET /h HTTP/1.1\r\nHost: x\r\nX-Foo: a\r\nx-FOO:  b \r\n"
                b"Content-Type: text/plain\r\nX-Empty:\r\n\r\n"
            )
            status, _, body = await read_response(reader)
            assert status == 200
            headers = json.loads(body)["headers"]
            assert headers == {
                "host": "x",
                "x-foo": "a, b",
                "content-type": "text/plain",
                "x-empty": "",
            }

    run(main)


def test_response_bodies_and_headers() -> None:
    floats = array.array("f", [1.0, 2.0, 3.0])

    async def handler(request: HttpRequest) -> HttpResponse:
        bodies: dict[str, Any] = {
            "/parts": [b"ab", bytearray(b"cd"), memoryview(b"ef")],
            "/floats": memoryview(floats),
            "/big": [memoryview(b"\1" * 40_000), b"\2" * 30_000],
        }
        if request.path == "/bye":
            return HttpResponse(200, b"bye", "", {"Connection": "close", "X-A": "1"})
        return HttpResponse(201, bodies[request.path], "application/x", {"X-A": "1", "X-B": "2"})

    async def main() -> None:
        async with serving(handler) as (_, port), connect(port) as (reader, writer):
            for path in ["/parts", "/floats", "/big"]:
                writer.write(request_bytes("GET", path))
            status, headers, body = await read_response(reader)
            assert (status, body) == (201, b"abcdef")
            assert (headers["x-a"], headers["x-b"], headers["content-type"]) == (
                "1",
                "2",
                "application/x",
            )
            assert (await read_response(reader))[2] == floats.tobytes()
            assert (await read_response(reader))[2] == b"\1" * 40_000 + b"\2" * 30_000
            writer.write(request_bytes("GET", "/bye"))
            status, headers, body = await read_response(reader)
            assert (status, body) == (200, b"bye")
            assert headers == {"content-length": "3", "x-a": "1", "connection": "close"}
            assert await closed_by_server(reader)

    run(main)
