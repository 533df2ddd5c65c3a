"""The child process of a :class:`~edgesched.serve.worker.NodeWorker`: model instances on threads.

The parent spawns :func:`child_main` with its end of a Unix socket pair, over which both sides
exchange frames (:mod:`edgesched.serve._frames`). The child pins itself to the node's CPUs, opens
every instance, warms it and answers ``("ready", infos)`` or ``("error", reason)``. Then its main
thread reads requests. With a single instance it runs each request itself, which spares a
thread hand-off per request; otherwise it puts each on its model's FIFO queue, from which one
thread per instance takes requests and runs them (ONNX Runtime releases the GIL, so instances
run concurrently). Answers are sent under one send lock.

Messages, parent to child: ``("infer", rid, model, batch)``, ``("infer_shm", rid, model,
block_name, offset, shape, dtype)`` for a tensor that lies in a shared-memory block
(:mod:`edgesched.serve._shm`), ``("forget", block_name)`` for a block the frontend retired, and
``("stop",)``. Child to parent: ``("okr", rid, packed_outputs, exec_s)`` (outputs packed by
:func:`~edgesched.serve._frames.pack_arrays`), ``("ok", rid, outputs, exec_s)`` for outputs it
does not pack, and ``("err", rid, one_line_reason)``. ``("stop",)`` lets every queued request
finish, then the child exits; so does end of file (the parent is gone).
"""

from __future__ import annotations

import queue
import signal
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from edgesched.serve._frames import FrameReader, pack_arrays, send_frame
from edgesched.serve._shm import BlockViews

_RECV_BYTES = 64 * 1024  # one read takes every request frame that is waiting, usually


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, for the parent's error."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _load(models: Mapping[str, int], opts: dict[str, Any]) -> tuple[dict[str, list[Any]], dict]:
    """Pin the process, open and warm every instance; return them and each model's info."""
    from edgesched.runtime import open_executor, pin_process
    from edgesched.runtime.executor import check_threads

    cpus: Sequence[int] | None = opts["cpus"]
    if cpus is not None:
        pin_process(cpus)  # once for the process; executors get cpus=None
    threads = check_threads(opts["threads"], cpus)
    cap: int | None = opts["max_batch"]
    executors: dict[str, list[Any]] = {}
    infos: dict[str, dict[str, Any]] = {}
    for model, count in models.items():
        executors[model] = insts = []
        for _ in range(count):
            ex = open_executor(
                model, backend=opts["backend"], device=opts["device"], threads=threads
            )
            insts.append(ex)
            if all(d is not None for d in ex.input_shape):
                sizes = {ex.max_batch or 1} | ({cap} if cap and ex.max_batch is None else set())
                for size in sorted(sizes):
                    ex.warmup(size, runs=2)
        first = insts[0]
        infos[model] = {
            "input_shape": tuple(first.input_shape),
            "max_batch": first.max_batch if first.max_batch is not None else cap,
            "instances": count,
            "executor": first.describe(),
        }
    return executors, infos


class _Replies:
    """The child's sending side: whole frames under one lock, whatever thread answers."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()

    def send(self, msg: tuple) -> bool:
        """Send ``msg``; False when the parent is gone."""
        with self._lock:
            try:
                send_frame(self._sock, msg)
            except OSError:
                return False
            except Exception as exc:  # outputs that do not pickle
                send_frame(self._sock, ("err", msg[1], f"cannot send the outputs: {one_line(exc)}"))
        return True


def child_main(sock: socket.socket, models: dict[str, int], opts: dict[str, Any]) -> None:
    """Entry point of the child process (see the module docstring)."""
    # Ctrl-C reaches the whole process group; the parent drains and then sends "stop"
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = _Replies(sock)
    try:
        executors, infos = _load(models, opts)
    except BaseException as exc:  # reported to the parent, whose start() raises it
        replies.send(("error", one_line(exc)))
        return
    cap: int | None = opts["max_batch"]
    queues: dict[str, queue.SimpleQueue] = {m: queue.SimpleQueue() for m in executors}
    instances = [(m, ex) for m, insts in executors.items() for ex in insts]
    inline = instances[0][1] if len(instances) == 1 else None
    threads = [
        threading.Thread(target=_instance_loop, args=(ex, queues[m], replies, cap), daemon=True)
        for m, ex in instances
        if inline is None
    ]
    for t in threads:
        t.start()
    replies.send(("ready", infos))
    views = BlockViews()
    for msg in _messages(sock):  # until the parent is gone: finish what is queued, then exit
        if msg[0] == "stop":
            break
        if msg[0] == "forget":
            views.forget(msg[1])
            continue
        if msg[0] == "infer_shm":
            _, rid, model, name, offset, shape, dtype = msg
            try:
                batch = views.view(name, shape, dtype, offset)
            except (OSError, ValueError, TypeError) as exc:
                replies.send(("err", rid, f"cannot read the request's tensor: {one_line(exc)}"))
                continue
        else:
            _, rid, model, batch = msg
        q = queues.get(model)
        answer: tuple | None = None
        if q is None:
            answer = ("err", rid, f"model {model!r} is not served by this worker")
        elif inline is not None:
            answer = _run(inline, rid, batch, cap)
        else:
            q.put((rid, batch))
        batch = None  # it may view a shared block: let go before the frontend may retire it
        if answer is not None and not replies.send(answer):
            break
    for m, _ in instances:
        queues[m].put(None)  # each instance thread ends at its sentinel
    for t in threads:
        t.join()
    views.close()
    for _, ex in instances:
        ex.close()


def _messages(sock: socket.socket) -> Iterator[tuple]:
    """The parent's messages, in order, until it closes the socket. Each read takes whatever
    has arrived, so requests that queued up while a model ran cost one system call together."""
    reader = FrameReader()
    buf = memoryview(bytearray(_RECV_BYTES))
    while True:
        try:
            n = sock.recv_into(buf)
        except OSError:
            return
        if not n:
            return
        yield from reader.feed(buf[:n])


def _run(ex: Any, rid: int, batch: Any, cap: int | None) -> tuple:
    """Run one request on executor ``ex``; its answer message."""
    t0 = time.perf_counter()
    try:
        if cap is not None and isinstance(batch, np.ndarray) and batch.ndim and len(batch) > cap:
            raise ValueError(
                f"model {ex.model} takes batches of at most {cap} samples on this node; "
                f"got {len(batch)}; split the batch"
            )
        outputs = ex.run(batch)
        exec_s = time.perf_counter() - t0
    except Exception as exc:
        return ("err", rid, one_line(exc))
    packed = pack_arrays(outputs)
    return ("ok", rid, outputs, exec_s) if packed is None else ("okr", rid, packed, exec_s)


def _instance_loop(ex: Any, q: queue.SimpleQueue, replies: _Replies, cap: int | None) -> None:
    """Run requests from ``q`` on executor ``ex`` until the ``None`` sentinel."""
    while (item := q.get()) is not None:
        answer = _run(ex, *item, cap)
        item = None  # its batch may view a shared block: let go before the frontend may retire it
        if not replies.send(answer):
            return  # the parent is gone


__all__ = ["child_main", "one_line"]
