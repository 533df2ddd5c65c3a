"""A small HTTP/1.1 server on :class:`asyncio.BufferedProtocol`: the transport of the v2 frontend.

Why it exists: inference requests carry large tensor bodies (hundreds of KB to MB). A general
HTTP server such as aiohttp receives a body as a stream of chunks that are copied, queued and
joined; on a small edge host that costs about twice as much per request as the inference
frontend's own work. Here the socket reads the body straight into one buffer of exactly
Content-Length bytes: :meth:`~asyncio.BufferedProtocol.get_buffer` hands the transport a
memoryview into it, so the kernel copies the bytes once and nothing is joined. The application
may supply that buffer itself (``body_buffer``), e.g. a preallocated tensor or a shared-memory
slot. Responses are written as the head plus the body buffers, without joining large bodies.

The subset of HTTP/1.1 it speaks (RFC 9112), which is what an inference frontend needs:

- HTTP/1.1 and HTTP/1.0 requests with origin-form targets (absolute-form and ``*`` are accepted);
- request bodies framed by ``Content-Length`` only: a request with ``Transfer-Encoding`` (chunked)
  is refused with 411, one larger than ``max_body_bytes`` with 413, both before the body is read;
- persistent connections (HTTP/1.1 by default, HTTP/1.0 with ``Connection: keep-alive``) with an
  idle timeout, and pipelining: the requests of one connection are handled one at a time, in order;
- ``Expect: 100-continue``;
- malformed heads get 400, heads over ``max_head_bytes`` 431, other HTTP versions 505.

Not spoken: chunked bodies, trailers, upgrades (WebSocket, h2c), ``CONNECT`` tunnels, TLS.
Every response carries a ``Content-Length``. After a response that ends the connection the
server half-closes it and drains what the client still sends for a moment ("lingering close"),
so that a client still uploading a refused body reads the answer instead of a reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["BodyBuffer", "Handler", "HttpRequest", "HttpResponse", "HttpServer", "Later"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class HttpRequest:
    """One request: its head and its body (exactly Content-Length bytes)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: memoryview | bytes
    version: str


@dataclass(slots=True)
class HttpResponse:
    """One response. ``body`` is one bytes-like object or a sequence of them, written in order;
    ``headers`` are extra headers (not Content-Type, Content-Length or Connection, which the
    server writes; ``Connection: close`` here makes the server close after the response)."""

    status: int
    body: bytes | bytearray | memoryview | Sequence[bytes | bytearray | memoryview] = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] | None = None


class Later:
    """A response that a handler gives later, without a task of its own.

    The handler returns a ``Later`` and, from the event loop's thread, calls :meth:`set` once,
    when the response is ready (it may do so before it returns). A response that comes back from
    callbacks this way costs no :class:`asyncio.Task` and no extra turn of the event loop.
    """

    __slots__ = ("_response", "_then")

    def __init__(self) -> None:
        self._then: Callable[[HttpResponse], None] | None = None
        self._response: HttpResponse | None = None

    def set(self, response: HttpResponse) -> None:
        """Give the response (dropped if the client went away meanwhile); a second call is
        ignored."""
        then, self._then = self._then, None
        if then is not None:
            then(response)
        elif self._response is None:
            self._response = response

    def _bind(self, then: Callable[[HttpResponse], None]) -> None:
        """Call ``then`` with the response once it is given (now, if it was)."""
        if self._response is not None:
            then(self._response)
        else:
            self._then = then


Handler = Callable[[HttpRequest], "HttpResponse | Later | Awaitable[HttpResponse]"]
BodyBuffer = Callable[[HttpRequest, int], Any]
Refused = Callable[[HttpRequest, int, str], HttpResponse]

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_TCHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_VCHARS = bytes(range(0x21, 0x7F))
_HEAD_BUFFER_BYTES = 64 * 1024
_PIPELINED_BYTES = 64 * 1024  # read at most this much of the next requests while one is handled
_MIN_READ_ROOM = 4096  # move unread bytes to the front when less room than this is left
_COALESCE_BYTES = 16 * 1024  # a response up to this size goes out as one joined write
_LINGER_S = 2.0
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_CLOSE = "Connection: close\r\n"
_KEEP_ALIVE = "Connection: keep-alive\r\n"
# Before 3.12 the selector transport's writelines() joins its arguments into one bytes object;
# from 3.12 on it sends them with one sendmsg() without copying.
_VECTORED_WRITELINES = sys.version_info >= (3, 12)

# connection states
_HEAD, _BODY, _BUSY, _LINGER, _CLOSED = range(5)


def _error_response(status: int, message: str) -> HttpResponse:
    return HttpResponse(status, json.dumps({"error": message}).encode())


def _default_refused(head: HttpRequest, status: int, message: str) -> HttpResponse:
    return _error_response(status, message)


class _HeadError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _byte_view(obj: Any) -> memoryview:
    """``obj`` as a flat memoryview of bytes (so lengths and slices count bytes)."""
    view = obj if isinstance(obj, memoryview) else memoryview(obj)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _parse_head(block: bytearray) -> tuple[HttpRequest, int, bool, bool, bool]:
    """Parse a request head (without its final blank line).

    Returns (request with ``body=b""``, Content-Length, keep-alive, expects 100-continue,
    has Transfer-Encoding). Raises :class:`_HeadError` for a head that does not parse.
    """
    crlf = block.count(b"\r\n")
    if block.count(b"\r") != crlf or block.count(b"\n") != crlf:
        raise _HeadError(400, "bare CR or LF in the request head")
    lines = block.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise _HeadError(400, "malformed request line")
    method, target, proto = parts
    if not method or method.translate(None, _TCHARS):
        raise _HeadError(400, "malformed request method")
    if proto == b"HTTP/1.1":
        version = "1.1"
    elif proto == b"HTTP/1.0":
        version = "1.0"
    elif (
        len(proto) == 8
        and proto.startswith(b"HTTP/")
        and proto[5:6].isdigit()
        and proto[6:7] == b"."
        and proto[7:8].isdigit()
    ):
        raise _HeadError(505, f"HTTP version {proto[5:].decode()} is not supported")
    else:
        raise _HeadError(400, "malformed request line")
    if not target or target.translate(None, _VCHARS):
        raise _HeadError(400, "malformed request target")
    if target[0] == 0x2F:  # origin-form "/path?query"
        path_bytes, _, query_bytes = target.partition(b"?")
        path, query = path_bytes.decode("ascii"), query_bytes.decode("ascii")
    elif target == b"*":
        path, query = "*", ""
    elif b"://" in target:  # absolute-form
        split = urlsplit(target.decode("ascii"))
        path, query = split.path or "/", split.query
    else:
        raise _HeadError(400, "malformed request target")

    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name.translate(None, _TCHARS):
            raise _HeadError(400, "malformed header line")
        key = name.decode("ascii").lower()
        text = value.strip(b" \t").decode("latin-1")
        previous = headers.get(key)
        headers[key] = text if previous is None else f"{previous}, {text}"

    length = 0
    declared = headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise _HeadError(400, f"invalid Content-Length {declared!r}")
        try:
            length = int(declared)
        except ValueError:  # more digits than int() parses
            raise _HeadError(400, "invalid Content-Length") from None
    connection = headers.get("connection")
    if connection is None:
        keep_alive = version == "1.1"
    else:
        tokens = [t.strip() for t in connection.lower().split(",")]
        keep_alive = "close" not in tokens if version == "1.1" else "keep-alive" in tokens
    expect = version == "1.1" and headers.get("expect", "").lower() == "100-continue"
    request = HttpRequest(method.decode("ascii"), unquote(path), query, headers, b"", version)
    return request, length, keep_alive, expect, "transfer-encoding" in headers


def _encode(
    response: HttpResponse, keep_alive: bool, version: str
) -> tuple[bytes, list[bytes | bytearray | memoryview], int, bool]:
    """The response's head, body parts and body size, and whether the connection stays open."""
    body = response.body
    parts: list[bytes | bytearray | memoryview]
    if isinstance(body, bytes | bytearray):
        parts, total = [body], len(body)
    elif isinstance(body, memoryview):
        view = _byte_view(body)
        parts, total = [view], view.nbytes
    else:
        parts, total = [], 0
        for part in body:
            if not isinstance(part, bytes | bytearray):
                part = _byte_view(part)
            parts.append(part)
            total += len(part)
    extra = ""
    if response.headers:
        for name, value in response.headers.items():
            if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
                raise ValueError(f"response header {name!r} contains CR or LF")
            if name.lower() == "connection":
                if value.strip().lower() == "close":
                    keep_alive = False
                continue
            extra += f"{name}: {value}\r\n"
    status = response.status
    if not isinstance(status, int) or not 100 <= status <= 999:
        raise ValueError(f"invalid response status {status!r}")
    content_type = response.content_type
    if "\r" in content_type or "\n" in content_type:
        raise ValueError("Content-Type contains CR or LF")
    if not keep_alive:
        extra += _CLOSE
    elif version == "1.0":
        extra += _KEEP_ALIVE
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
        + (f"Content-Type: {content_type}\r\n" if content_type else "")
        + f"Content-Length: {total}\r\n{extra}\r\n"
    ).encode("latin-1")
    return head, parts, total, keep_alive


class _Connection(asyncio.BufferedProtocol):
    """One client connection: a state machine over a reused head buffer."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray(max(_HEAD_BUFFER_BYTES, server._max_head))
        self._view = memoryview(self._buf)
        self._start = 0  # first unconsumed byte of _buf
        self._end = 0  # end of the received bytes in _buf
        self._scanned = 0  # _buf[_start:_scanned] holds no end of head
        self._state = _HEAD
        self._request: HttpRequest | None = None
        self._keep_alive = False
        self._body: memoryview | None = None
        self._got = 0
        self._length = 0
        self._last = 0.0  # last time bytes arrived or a response went out
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._dispatching = False  # inside the handler's call: a response now is written there
        self._reading_paused = False
        self._writing_paused = False
        self._peer_eof = False

    # -- asyncio protocol callbacks -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods
        self._transport = transport  # type: ignore[assignment]
        self._server._connections.add(self)
        if self._server._closing:
            transport.close()
            return
        self._last = self._loop.time()
        self._timer = self._loop.call_at(self._last + self._server._keepalive, self._on_timer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._state == _BODY and self._request is not None:
            self._server._release(self._request)  # its body will never be complete
        self._state = _CLOSED
        self._body = self._request = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._server._detach(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._state == _BODY:
            assert self._body is not None
            return self._body[self._got :]
        if self._state in (_LINGER, _CLOSED):
            return self._view  # drained and dropped
        start, end = self._start, self._end
        if start == end:
            self._start = self._end = self._scanned = 0
        elif len(self._buf) - end < _MIN_READ_ROOM:
            if start:  # move the unread bytes to the front
                count = end - start
                self._view[:count] = self._view[start:end]
                self._scanned -= start
                self._start, self._end = 0, count
            if self._end == len(self._buf):  # only while busy: pipelined bytes piling up
                grown = bytearray(2 * len(self._buf))
                grown[: self._end] = self._buf
                self._buf, self._view = grown, memoryview(grown)
        return self._view[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        state = self._state
        if state == _BODY:
            self._got += nbytes
            self._last = self._loop.time()
            if self._got == self._length:
                assert self._request is not None
                self._dispatch(self._request, self._keep_alive)
                if self._state == _HEAD:  # answered at once: pipelined requests may wait
                    self._parse()
            return
        if state in (_LINGER, _CLOSED):
            return
        self._end += nbytes
        self._last = self._loop.time()
        if state == _HEAD:
            self._parse()
        elif self._end - self._start >= _PIPELINED_BYTES:
            self._update_reading()  # enough of the next requests: wait for this answer

    def eof_received(self) -> bool | None:
        if self._state == _BUSY:  # half-closed after its request: answer it, then close
            self._peer_eof = True
            return True
        return None

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._update_reading()

    # -- request handling -------------------------------------------------------------------------

    def _parse(self) -> None:
        """Start the requests whose heads are complete in the buffer, one at a time: the next
        only once the one before it was answered."""
        while self._parse_one() and self._state == _HEAD:
            pass
        self._update_reading()

    def _parse_one(self) -> bool:
        """Look for a complete head in the buffer; start the request it opens. Whether one was
        handed to the handler."""
        buf, start, end = self._buf, self._start, self._end
        while end - start >= 2 and buf[start] == 13 and buf[start + 1] == 10:
            start += 2  # empty lines before a request line are ignored
        self._start = start
        if start == end:
            return False
        max_head = self._server._max_head
        at = buf.find(b"\r\n\r\n", max(start, self._scanned - 3), end)
        if at < 0:
            self._scanned = end
            if end - start >= max_head:
                self._reject(431, f"request head exceeds the limit of {max_head} bytes")
            return False
        head_end = at + 4
        if head_end - start > max_head:
            self._reject(431, f"request head exceeds the limit of {max_head} bytes")
            return False
        try:
            request, length, keep_alive, expect, chunked = _parse_head(buf[start:at])
        except _HeadError as exc:
            self._reject(exc.status, exc.message)
            return False
        except UnicodeDecodeError:
            self._reject(400, "malformed request head")
            return False
        self._start = self._scanned = head_end
        server = self._server
        if chunked:
            self._refuse(
                request,
                411,
                "Transfer-Encoding is not supported; send the body with a Content-Length header",
            )
            return False
        if length > server._max_body:
            self._refuse(
                request,
                413,
                f"request body of {length} bytes exceeds the limit of {server._max_body} bytes",
            )
            return False
        if length == 0:
            self._dispatch(request, keep_alive)
            return True
        try:
            if server._body_buffer is None:
                body = memoryview(bytearray(length))
            else:
                body = _byte_view(server._body_buffer(request, length))
                if body.readonly or body.nbytes < length:
                    raise ValueError(
                        f"body_buffer returned a {'read-only ' if body.readonly else ''}"
                        f"buffer of {body.nbytes} bytes for a body of {length} bytes"
                    )
                body = body[:length]
        except Exception as exc:
            logger.exception("could not allocate the body of %s %s", request.method, request.path)
            self._reject(500, f"{type(exc).__name__}: {exc}")
            return False
        request.body = body
        take = min(end - head_end, length)
        if take:
            body[:take] = self._view[head_end : head_end + take]
            self._start = self._scanned = head_end + take
        if take == length:
            self._dispatch(request, keep_alive)
            return True
        self._state = _BODY
        self._request, self._keep_alive = request, keep_alive
        self._body, self._got, self._length = body, take, length
        if expect:
            assert self._transport is not None
            self._transport.write(_CONTINUE)
        return False

    def _dispatch(self, request: HttpRequest, keep_alive: bool) -> None:
        """Hand ``request`` to the handler. What it returns says when the response comes: a
        response now, a :class:`Later` from its callbacks, else an awaitable run as a task."""
        self._state = _BUSY
        self._body = self._request = None
        self._update_reading()
        self._dispatching = True
        try:
            result = self._server._handler(request)
        except Exception as exc:
            result = self._failed(request, exc)
        try:
            if isinstance(result, HttpResponse):
                self._finish(request, keep_alive, result)
            elif isinstance(result, Later):
                result._bind(functools.partial(self._finish, request, keep_alive))
            else:
                task = self._loop.create_task(self._run(request, keep_alive, result))
                self._task = task
                tasks = self._server._tasks
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            self._dispatching = False

    async def _run(
        self, request: HttpRequest, keep_alive: bool, pending: Awaitable[HttpResponse]
    ) -> None:
        try:
            response = await pending
        except asyncio.CancelledError:
            self._server._release(request)
            if self._transport is not None and self._state != _CLOSED:
                self._transport.abort()
            raise
        except Exception as exc:
            response = self._failed(request, exc)
        self._finish(request, keep_alive, response)

    @staticmethod
    def _failed(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.exception("handler failed for %s %s", request.method, request.path, exc_info=exc)
        return _error_response(500, f"{type(exc).__name__}: {exc}")

    def _finish(self, request: HttpRequest, keep_alive: bool, response: HttpResponse) -> None:
        """The handler is done with ``request``: give its body back, write ``response`` (unless
        the client went away), then go on with the requests pipelined after it."""
        self._server._release(request)
        self._task = None
        if self._state == _CLOSED:
            return  # the client went away: drop the response
        keep_alive = keep_alive and not self._peer_eof
        self._respond(response, keep_alive, request.version)
        if self._state == _HEAD and not self._dispatching:
            self._parse()  # a pipelined request may be waiting in the buffer

    def _respond(self, response: HttpResponse, keep_alive: bool, version: str) -> None:
        """Write ``response``; then wait for the next request or close the connection."""
        transport = self._transport
        assert transport is not None
        if transport.is_closing():
            return
        keep_alive = keep_alive and not self._server._closing
        try:
            head, parts, total, keep_alive = _encode(response, keep_alive, version)
        except Exception as exc:
            logger.exception("could not encode the response")
            fallback = _error_response(500, f"{type(exc).__name__}: {exc}")
            head, parts, total, keep_alive = _encode(fallback, keep_alive, version)
        if total <= _COALESCE_BYTES:
            transport.write(head + parts[0] if len(parts) == 1 else b"".join([head, *parts]))
        elif _VECTORED_WRITELINES:
            transport.writelines([head, *parts])
        else:
            transport.write(head)
            for part in parts:
                transport.write(part)
        if keep_alive:
            self._state = _HEAD
            self._last = self._loop.time()
        else:
            self._linger()

    def _reject(self, status: int, message: str) -> None:
        """Answer a head that cannot be served with a JSON error, then close."""
        self._state = _BUSY
        self._respond(_error_response(status, message), False, "1.1")

    def _refuse(self, request: HttpRequest, status: int, message: str) -> None:
        """Answer a parsed request whose body will not be read (via ``refused``), then close."""
        self._state = _BUSY
        try:
            response = self._server._refused(request, status, message)
        except Exception:
            logger.exception("the refused hook failed")
            response = _error_response(status, message)
        self._respond(response, False, request.version)

    # -- connection management --------------------------------------------------------------------

    def _linger(self) -> None:
        """Half-close, then drain what the client still sends until it closes or time is up."""
        transport = self._transport
        assert transport is not None
        self._state = _LINGER
        if not transport.can_write_eof():
            transport.close()
            return
        try:
            transport.write_eof()
        except OSError:  # the client is gone already
            transport.close()
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(_LINGER_S, self._on_timer)
        self._update_reading()

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        state = self._state
        # while a request is handled, the next ones may arrive (pipelining) up to a bound, so
        # that a connection costs no pause/resume system calls per request
        want = state == _LINGER or (
            not self._writing_paused
            and (state != _BUSY or self._end - self._start < _PIPELINED_BYTES)
        )
        if want and self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        elif not want and not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()

    def _on_timer(self) -> None:
        self._timer = None
        transport = self._transport
        if self._state == _CLOSED or transport is None:
            return
        if self._state == _LINGER:
            transport.abort()
            return
        timeout = self._server._keepalive
        now = self._loop.time()
        if self._state == _BUSY:
            deadline = now + timeout
        else:  # idle, or a client that stopped sending mid-request
            deadline = self._last + timeout
            if now >= deadline:
                if transport.get_write_buffer_size():
                    transport.abort()
                else:
                    transport.close()
                return
        self._timer = self._loop.call_at(deadline, self._on_timer)

    def _close_if_idle(self) -> None:
        """On server close: close now unless a request is in progress."""
        if self._state == _HEAD and self._start == self._end and self._transport is not None:
            self._transport.close()

    def _abort(self) -> None:
        if self._task is not None:
            self._task.cancel()

        if self._transport is not None:
            self._transport.abort()


class HttpServer:
    """An HTTP/1.1 server that hands each request, body received in full, to ``handler``.

    Args:
        handler: called with each request, body received in full; returns its response: an
            :class:`HttpResponse` now, a :class:`Later` it sets from callbacks, or an awaitable
            (e.g. an ``async def`` handler's coroutine), which runs as a task. An exception
            becomes a 500 response.
        max_body_bytes: larger request bodies are refused with 413 before they are read.
        refused: builds the response for a request refused before its body is read (413 too
            large, 411 Transfer-Encoding) from ``(head, status, message)``; default: a JSON
            ``{"error": message}``. The connection closes after it.
        body_buffer: ``(head, length) -> writable buffer of >= length bytes`` that the body is
            received into; default: a new ``bytearray(length)``.
        body_done: called with each request whose body came from ``body_buffer`` once it is
            done with: its handler returned, or the connection was lost before the body was
            complete (so that the buffer can be reused).
        keepalive_timeout_s: an idle connection (or a client stalled mid-request) is closed after
            this long.
        max_head_bytes: larger request heads get 431.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        max_body_bytes: int,
        refused: Refused | None = None,
        body_buffer: BodyBuffer | None = None,
        body_done: Callable[[HttpRequest], None] | None = None,
        keepalive_timeout_s: float = 75.0,
        max_head_bytes: int = 64 * 1024,
    ) -> None:
        if max_body_bytes < 0 or max_head_bytes <= 0 or keepalive_timeout_s <= 0:
            raise ValueError("max_body_bytes >= 0, max_head_bytes > 0, keepalive_timeout_s > 0")
        self._handler = handler
        self._max_body = max_body_bytes
        self._refused: Refused = refused or _default_refused
        self._body_buffer = body_buffer
        self._body_done = body_done
        self._keepalive = keepalive_timeout_s
        self._max_head = max_head_bytes
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._closing = False
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._all_closed: asyncio.Future[None] | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (port 0: any free port); return the bound port."""
        if self._server is not None:
            raise RuntimeError("the server is already started")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port)
        self._port = self._server.sockets[0].getsockname()[1]
        return self._port

    @property
    def port(self) -> int | None:
        """The bound port (the first socket's, if the host resolved to several), once started."""
        return self._port

    @property
    def connections(self) -> int:
        """How many client connections are open."""
        return len(self._connections)

    def close(self) -> None:
        """Stop listening and close idle connections; a request in progress is answered (with
        ``Connection: close``) before its connection closes."""
        if self._closing:
            return
        self._closing = True
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection._close_if_idle()

    async def wait_closed(self, timeout_s: float) -> None:
        """Wait until every connection is closed (calls :meth:`close` first if needed); after
        ``timeout_s`` abort the connections left and cancel their handlers."""
        self.close()
        if self._connections:
            waiter = self._all_closed = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout_s)
            except TimeoutError:
                for connection in list(self._connections):
                    connection._abort()
                with contextlib.suppress(TimeoutError):  # aborted transports report next turn
                    await asyncio.wait_for(asyncio.shield(waiter), 1.0)
        if self._server is not None:
            await self._server.wait_closed()

    def _release(self, request: HttpRequest) -> None:
        """Hand ``request``'s body back to ``body_done`` (when it came from ``body_buffer``)."""
        if self._body_done is not None and self._body_buffer is not None and request.body:
            try:
                self._body_done(request)
            except Exception:
                logger.exception("the body_done hook failed")

    def _detach(self, connection: _Connection) -> None:
        self._connections.discard(connection)
        waiter = self._all_closed
        if not self._connections and waiter is not None and not waiter.done():
            waiter.set_result(None)
