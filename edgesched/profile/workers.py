"""Model instances that run back to back on command, as processes or as threads.

A worker loads one model once, warms it up at every batch size, then waits. ``start(batch)``
makes it run inferences back to back, recording ``(start, end)`` stamps from the system-wide
monotonic clock (``time.perf_counter`` on Linux), so stamps from different processes compare;
``stop()`` returns them. Process workers are how independent applications share a device;
thread workers (one CUDA stream each on a GPU) are instances inside one application.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

Stamps = list[tuple[float, float]]


def _load(model: str, batches: Sequence[int], opts: dict[str, Any]) -> tuple[Any, dict[int, Any]]:
    from edgesched.runtime import open_executor

    ex = open_executor(model, **opts)
    rng = np.random.default_rng(0)
    inputs = {b: rng.random((b, *ex.input_shape), dtype=np.float32) for b in batches}
    for b in batches:
        ex.warmup(b)
    return ex, inputs


def _serve(conn: Any, model: str, batches: Sequence[int], opts: dict[str, Any]) -> None:
    """Process worker main loop (see module docstring)."""
    try:
        ex, inputs = _load(model, batches, opts)
        conn.send(("ready", ex.describe()))
    except Exception as exc:  # reported to the parent, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        cmd = conn.recv()
        if cmd[0] == "quit":
            ex.close()
            return
        x, stamps = inputs[cmd[1]], []
        clock, run, poll = time.perf_counter, ex.run, conn.poll
        while not poll():
            t0 = clock()
            run(x)
            stamps.append((t0, clock()))
        conn.recv()  # the stop message
        conn.send(stamps)


class Worker(ABC):
    """One model instance under the profiler's control."""

    model: str
    info: dict[str, Any]

    @abstractmethod
    def start(self, batch: int) -> None:
        """Begin running inferences of ``batch`` back to back."""

    @abstractmethod
    def stop(self) -> Stamps:
        """Stop and return the stamps of the inferences completed since ``start``."""

    @abstractmethod
    def close(self) -> None:
        """Release the instance."""


class ProcessWorker(Worker):
    """A model instance in its own process (spawned, so CUDA works in the child)."""

    def __init__(self, model: str, batches: Sequence[int], opts: dict[str, Any]) -> None:
        ctx = mp.get_context("spawn")
        self.model = model
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(child, model, list(batches), opts), daemon=True
        )
        self._proc.start()

    def wait_ready(self, timeout_s: float = 600.0) -> None:
        """Block until the model is loaded and warm; raise what the child reported on failure."""
        if not self._conn.poll(timeout_s):
            raise TimeoutError(f"worker for {self.model} did not start within {timeout_s:.0f} s")
        status, payload = self._conn.recv()
        if status != "ready":
            raise RuntimeError(f"worker for {self.model} failed: {payload}")
        self.info = payload

    def start(self, batch: int) -> None:
        self._conn.send(("run", batch))

    def stop(self) -> Stamps:
        self._conn.send(("stop",))
        return self._conn.recv()

    def close(self) -> None:
        if self._proc.is_alive():
            with contextlib.suppress(BrokenPipeError, OSError):
                self._conn.send(("quit",))
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.terminate()


class ThreadWorker(Worker):
    """A model instance on a thread of this process (its own CUDA stream on a GPU)."""

    def __init__(self, model: str, batches: Sequence[int], opts: dict[str, Any]) -> None:
        self.model = model
        self._ex, self._inputs = _load(model, batches, opts)
        self.info = self._ex.describe()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stamps: Stamps = []

    def wait_ready(self, timeout_s: float = 600.0) -> None:
        """Thread workers are ready once built."""

    def _loop(self, x: np.ndarray) -> None:
        clock, run, stop, stamps = time.perf_counter, self._ex.run, self._stop, self._stamps
        while not stop.is_set():
            t0 = clock()
            run(x)
            stamps.append((t0, clock()))

    def start(self, batch: int) -> None:
        self._stop.clear()
        self._stamps = []
        self._thread = threading.Thread(target=self._loop, args=(self._inputs[batch],), daemon=True)
        self._thread.start()

    def stop(self) -> Stamps:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self._stamps

    def close(self) -> None:
        self._ex.close()
