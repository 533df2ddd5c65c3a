"""Length-prefixed pickle frames between a :class:`~edgesched.serve.worker.NodeWorker` and its
child process, over one Unix socket pair.

Each frame is an 8-byte little-endian payload length, then the payload: one message pickled with
protocol 5. Both sides split what they read with a :class:`FrameReader`: the child feeds it
whatever one blocking read returns (so requests that queued up cost one system call) and writes
with :func:`send_frame`; the frontend feeds it in its event loop and writes through the loop's
non-blocking transport, so that neither side's writes can stall the other's reads.
:func:`recv_frame` reads exactly one frame (the parent's wait for the child's first message).

A worker's outputs cross as ``(dtype, shape, bytes)`` triples (:func:`pack_arrays`,
:func:`unpack_arrays`) rather than as pickled arrays: pickle then never enters numpy's reduce
machinery, which on a CPU just back from idle, with cold caches, costs about 50 µs more on each
side per answer.
"""

from __future__ import annotations

import pickle
import socket
import struct
from typing import Any

import numpy as np

#: The frame header: the payload's length in bytes.
HEADER = struct.Struct("<Q")
#: dtype kinds that :func:`pack_arrays` takes: booleans, numbers, fixed-width strings.
_PACKED_KINDS = frozenset("biufcSU")


def pack_arrays(arrays: list[Any]) -> list[tuple[str, tuple[int, ...], bytes]] | None:
    """``arrays`` as ``(dtype, shape, bytes)`` triples; None when one of them is not an ndarray
    of booleans, numbers or fixed-width strings (send those as they are)."""
    packed = []
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype.kind not in _PACKED_KINDS:
            return None
        packed.append((a.dtype.str, a.shape, a.tobytes()))
    return packed


def unpack_arrays(packed: list[tuple[str, tuple[int, ...], bytes]]) -> list[np.ndarray]:
    """The arrays that :func:`pack_arrays` packed, in C order (read-only views of the bytes)."""
    return [np.frombuffer(data, dtype).reshape(shape) for dtype, shape, data in packed]


def encode(msg: Any) -> tuple[bytes, bytes]:
    """The frame of ``msg``: header and payload, to be written one after the other."""
    payload = pickle.dumps(msg, protocol=5)
    return HEADER.pack(len(payload)), payload


def send_frame(sock: socket.socket, msg: Any) -> None:
    """Write one message (blocking)."""
    head, payload = encode(msg)
    sent = sock.sendmsg([head, payload])  # the whole frame, unless a signal cut it short
    if sent < len(head) + len(payload):
        sock.sendall((head + payload)[sent:])


def _recv_exactly(sock: socket.socket, n: int) -> memoryview:
    buf = memoryview(bytearray(n))
    got = 0
    while got < n:
        k = sock.recv_into(buf[got:])
        if not k:
            raise EOFError("the other end closed the socket")
        got += k
    return buf


def recv_frame(sock: socket.socket) -> Any:
    """Read one message (blocking). Raises EOFError when the other end is gone."""
    (length,) = HEADER.unpack(_recv_exactly(sock, HEADER.size))
    return pickle.loads(_recv_exactly(sock, length))


class FrameReader:
    """Splits a byte stream into messages: :meth:`feed` what arrives, iterate what is complete."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> list[Any]:
        """Add ``data``; return every message now complete, in order."""
        buf = self._buf
        buf += data
        msgs = []
        start, end = 0, len(buf)
        while end - start >= HEADER.size:
            (length,) = HEADER.unpack_from(buf, start)
            stop = start + HEADER.size + length
            if stop > end:
                break
            with memoryview(buf) as view:
                msgs.append(pickle.loads(view[start + HEADER.size : stop]))
            start = stop
        if start:
            del buf[:start]
        return msgs


__all__ = [
    "HEADER",
    "FrameReader",
    "encode",
    "pack_arrays",
    "recv_frame",
    "send_frame",
    "unpack_arrays",
]
