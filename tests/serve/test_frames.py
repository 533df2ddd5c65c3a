"""Frames between a worker and its child: whole messages out of any split of the byte stream."""

from __future__ import annotations

import pickle
import socket
import threading

import numpy as np
import pytest

from edgesched.serve._frames import (
    FrameReader,
    encode,
    pack_arrays,
    recv_frame,
    send_frame,
    unpack_arrays,
)
from edgesched.serve._worker_child import _messages


def test_messages_come_out_whole_however_the_stream_is_cut() -> None:
    msgs = [("ok", i, [np.arange(i * 100, dtype=np.float32)], 0.001 * i) for i in range(5)]
    stream = b"".join(b"".join(encode(m)) for m in msgs)
    for cut in (1, 7, 100, len(stream)):
        reader = FrameReader()
        got = []
        for at in range(0, len(stream), cut):
            got += reader.feed(stream[at : at + cut])
        assert [g[1] for g in got] == [m[1] for m in msgs]
        for g, m in zip(got, msgs, strict=True):
            np.testing.assert_array_equal(g[2][0], m[2][0])


def test_blocking_send_and_receive_over_a_socket_pair() -> None:
    a, b = socket.socketpair()
    with a, b:
        big = np.ones(300_000, np.float32)  # more than a socket buffer holds at once
        sender = threading.Thread(target=send_frame, args=(a, ("infer", 1, "m", big)))
        sender.start()
        kind, rid, model, got = recv_frame(b)
        sender.join()
        assert (kind, rid, model) == ("infer", 1, "m")
        np.testing.assert_array_equal(got, big)
        a.close()
        with pytest.raises(EOFError):  # a closed peer reads as end of file
            recv_frame(b)


def test_the_child_reads_every_waiting_frame_in_order_until_end_of_file() -> None:
    a, b = socket.socketpair()
    with a, b:
        msgs = [("infer", i, "m", np.full(i + 1, i, np.float32)) for i in range(3)]
        big = ("infer", 3, "m", np.ones(100_000, np.float32))  # spans several reads
        stream = b"".join(b"".join(encode(m)) for m in [*msgs, big, ("stop",)])
        # the last frame arrives in two parts
        sender = threading.Thread(target=a.sendall, args=(stream[:-5],))
        sender.start()
        got = _messages(b)
        for m in msgs:
            g = next(got)
            assert g[:3] == m[:3]
            np.testing.assert_array_equal(g[3], m[3])
        np.testing.assert_array_equal(next(got)[3], big[3])
        sender.join()
        a.sendall(stream[-5:])
        assert next(got) == ("stop",)
        a.close()
        assert list(got) == []  # end of file ends the messages


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.arange(12, dtype=np.int64).reshape(3, 4)[:, ::2],  # not contiguous
        np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
        np.array([True, False]),
        np.array(["cat", "dog"]),
        np.zeros((0, 10), np.float32),
        np.array(3.5, np.float32),  # 0-d
    ],
)
def test_packed_arrays_come_back_equal(array: np.ndarray) -> None:
    packed = pack_arrays([array, array.copy()])
    assert packed is not None and all(type(p[2]) is bytes for p in packed)
    for got in unpack_arrays(pickle.loads(pickle.dumps(packed, protocol=5))):
        assert got.dtype == array.dtype and got.shape == array.shape
        np.testing.assert_array_equal(got, array)


@pytest.mark.parametrize(
    "outputs",
    [
        [np.ones(3, np.float32), [{"0": 0.1, "1": 0.9}]],  # a ZipMap output: list of dicts
        [np.array([{"a": 1}], dtype=object)],
        [np.zeros(2, dtype=[("x", "<f4"), ("y", "<i4")])],  # structured: fields would be lost
    ],
)
def test_outputs_that_do_not_pack_are_sent_as_they_are(outputs: list) -> None:
    assert pack_arrays(outputs) is None
