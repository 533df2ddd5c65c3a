"""Triton-style dynamic batching of one model in the frontend's event loop.

Requests wait in one queue until ``max_batch_size`` samples are queued or the oldest has waited
``max_queue_delay_s``; then the queue runs as one batch (the rows of its requests concatenated
in arrival order) and each request gets back its own rows of every output. A request that alone
fills the batch runs at once by itself. Several formed batches may run at the same time (on
different nodes or instances); the batcher never holds a request back for a running batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import numpy as np

from edgesched.core.serving import BatchingConfig

Info = TypeVar("Info")
#: Runs one formed batch: its outputs (batch-major) and what the caller wants to know of the run.
RunBatch = Callable[[np.ndarray], Awaitable[tuple[list[np.ndarray], Info]]]


class DynamicBatcher(Generic[Info]):
    """The queue and timer of one model (see the module docstring). Use from one event loop."""

    def __init__(self, config: BatchingConfig, run: RunBatch[Info]) -> None:
        """Args:
        config: the model's batch size and queue delay.
        run: coroutine function running one formed batch.
        """
        self.max_batch_size = config.max_batch_size
        self.max_queue_delay_s = config.max_queue_delay_ms / 1000.0
        self._run = run
        self._queue: list[tuple[np.ndarray, asyncio.Future]] = []
        self._samples = 0
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task] = set()

    @property
    def queued(self) -> int:
        """Requests waiting for their batch to form."""
        return len(self._queue)

    async def submit(self, batch: np.ndarray) -> tuple[list[np.ndarray], Info, slice, int]:
        """Run ``batch`` (rows of one request) within a formed batch.

        Returns:
            The request's rows of every output, the run's info, where the request's rows were in
            the formed batch, and the formed batch's size.

        Raises:
            Whatever running the formed batch raised (every request in it gets the error).
        """
        rows = len(batch)
        if rows >= self.max_batch_size:
            arrays, info = await self._run(batch)
            return arrays, info, slice(0, rows), rows
        if self._samples + rows > self.max_batch_size:
            self._flush()
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.append((batch, fut))
        self._samples += rows
        if self._samples >= self.max_batch_size:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.max_queue_delay_s, self._flush)
        return await fut

    def _flush(self) -> None:
        """Start running what is queued as one batch."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, self._queue, self._samples = self._queue, [], 0
        if items:
            task = asyncio.ensure_future(self._execute(items))
            self._running.add(task)  # keep a reference until it is done
            task.add_done_callback(self._running.discard)

    async def _execute(self, items: list[tuple[np.ndarray, asyncio.Future]]) -> None:
        batch = items[0][0] if len(items) == 1 else np.concatenate([b for b, _ in items])
        size = len(batch)
        try:
            arrays, info = await self._run(batch)
            bad = [list(a.shape) for a in arrays if a.ndim == 0 or a.shape[0] != size]
            if bad:
                raise ValueError(
                    f"dynamic batching needs batch-major outputs; a batch of {size} gave outputs "
                    f"of shapes {bad}; turn batching off for this model"
                )
        except BaseException as exc:
            for _, fut in items:
                if not fut.done():
                    fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        start = 0
        for b, fut in items:
            end = start + len(b)
            if not fut.done():
                fut.set_result(([a[start:end] for a in arrays], info, slice(start, end), size))
            start = end


__all__ = ["DynamicBatcher", "RunBatch"]
