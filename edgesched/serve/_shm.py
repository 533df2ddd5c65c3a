"""Shared-memory blocks that carry large request tensors from the frontend to a worker process.

Pickling a 224×224 image batch through a pipe copies it four times and costs about 0.8 ms per
request on a small CPU; writing it once into shared memory and sending only the block's name
costs about 0.1 ms, and receiving the HTTP body straight into a block (:meth:`BlockPool.take`)
spares even that copy. :class:`BlockPool` (the frontend's side) hands out blocks by size class,
finds the block a tensor already lies in (:meth:`BlockPool.locate`) and takes blocks back when
they are done with; :class:`BlockViews` (the worker's side) maps each block once and returns
numpy views of it. Tensors below :data:`MIN_SHARED_BYTES` still go through the socket, where
they are cheaper.

A pool keeps at most ``max_free_bytes`` of blocks free for reuse; a block given back beyond that
is retired: removed from the system, and every listener (:meth:`BlockPool.on_retire`, e.g. the
workers that mapped it) told its name, so that a burst of large requests does not keep its
memory once it is over.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable
from multiprocessing import shared_memory

import numpy as np

#: Tensors of at least this many bytes travel through shared memory (our choice: below it the
#: pipe's copies cost less than a block's bookkeeping).
MIN_SHARED_BYTES = 32 * 1024
#: Smallest block size; sizes are powers of two from here, so a few classes cover all inputs.
MIN_BLOCK_BYTES = 64 * 1024
#: Bytes of free blocks a pool keeps for reuse by default (our choice: 64 MiB holds a few dozen
#: camera frames, a small share of an edge board's 4-8 GB).
MAX_FREE_BYTES = 64 * 2**20


def size_class(nbytes: int) -> int:
    """The block size serving ``nbytes``: the next power of two, at least MIN_BLOCK_BYTES."""
    return max(MIN_BLOCK_BYTES, 1 << (max(nbytes, 1) - 1).bit_length())


def _close(block: shared_memory.SharedMemory) -> bool:
    """Unmap ``block``; False while views of it are still alive (try again later). Arrays on a
    block must come from ``np.frombuffer``, which holds the buffer; ``np.ndarray(buffer=...)``
    holds only the mapping object, and would be left dangling."""
    try:
        block.close()
    except BufferError:
        return False
    except OSError:
        pass
    return True


class BlockPool:
    """Blocks of shared memory owned by the frontend (or one worker). Thread-safe.

    Args:
        max_free_bytes: the most bytes of free blocks kept for reuse; a block given back beyond
            them is retired (see the module docstring).
    """

    def __init__(self, max_free_bytes: int = MAX_FREE_BYTES) -> None:
        self._lock = threading.Lock()
        self._max_free = max_free_bytes
        self._free_bytes = 0
        self._free: dict[int, list[shared_memory.SharedMemory]] = {}
        self._all: list[shared_memory.SharedMemory] = []
        self._spans: list[tuple[int, int, str]] = []  # (address, size, name) of every block
        self._unmapped: list[shared_memory.SharedMemory] = []  # retired, views still alive
        self._listeners: list[Callable[[str], None]] = []

    def on_retire(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(name)`` whenever a block is retired (from the releasing thread)."""
        with self._lock:
            self._listeners.append(listener)

    @property
    def free_bytes(self) -> int:
        """Bytes of the blocks kept free for reuse."""
        return self._free_bytes

    def take(self, nbytes: int) -> shared_memory.SharedMemory:
        """A block of at least ``nbytes`` bytes (give it back with :meth:`release`)."""
        size = size_class(nbytes)
        with self._lock:
            free = self._free.get(size)
            if free:
                self._free_bytes -= size
                return free.pop()
        block = shared_memory.SharedMemory(create=True, size=size)
        address = np.frombuffer(block.buf, np.uint8).ctypes.data
        with self._lock:
            self._all.append(block)
            self._spans.append((address, block.size, block.name))
        return block

    def put(self, array: np.ndarray) -> shared_memory.SharedMemory:
        """A block holding a copy of ``array`` at its start (give it back with :meth:`release`)."""
        block = self.take(array.nbytes)
        view = np.frombuffer(block.buf[: array.nbytes], array.dtype).reshape(array.shape)
        view[...] = array
        return block

    def locate(self, array: np.ndarray) -> tuple[str, int] | None:
        """``(block name, byte offset)`` of a C-contiguous ``array`` that lies within one of
        this pool's blocks, else None."""
        if not array.flags.c_contiguous:
            return None
        start = array.ctypes.data
        with self._lock:
            for address, size, name in self._spans:
                if address <= start and start + array.nbytes <= address + size:
                    return name, start - address
        return None

    def release(self, block: shared_memory.SharedMemory) -> None:
        """Take back a block whose request was answered (or lost); retire it when the free
        blocks already hold ``max_free_bytes``."""
        with self._lock:
            if self._free_bytes + block.size <= self._max_free:
                self._free.setdefault(block.size, []).append(block)
                self._free_bytes += block.size
                return
            self._all.remove(block)
            self._spans = [span for span in self._spans if span[2] != block.name]
            listeners = list(self._listeners)
            unmapped, self._unmapped = self._unmapped, []
        with contextlib.suppress(OSError):
            block.unlink()  # its memory goes once every process has unmapped it
        for listener in listeners:
            listener(block.name)
        # a view of the block (a request's body) may outlive its request: unmap it later
        still = [b for b in [*unmapped, block] if not _close(b)]
        if still:
            with self._lock:
                self._unmapped += still

    def close(self) -> None:
        """Unmap and remove every block. The pool must not be used afterwards."""
        with self._lock:
            blocks, self._all, self._free, self._spans = self._all, [], {}, []
            unmapped, self._unmapped, self._free_bytes = self._unmapped, [], 0
        for block in blocks:
            _close(block)
            with contextlib.suppress(OSError):
                block.unlink()
        for block in unmapped:
            _close(block)


class BlockViews:
    """The worker side: numpy views of the frontend's blocks, each mapped once."""

    def __init__(self) -> None:
        self._blocks: dict[str, shared_memory.SharedMemory] = {}
        self._unmapped: list[shared_memory.SharedMemory] = []  # forgotten, views still alive

    def view(self, name: str, shape: tuple[int, ...], dtype: str, offset: int = 0) -> np.ndarray:
        """The tensor of ``shape`` and ``dtype`` at byte ``offset`` of block ``name``."""
        block = self._blocks.get(name)
        if block is None:
            block = self._blocks[name] = shared_memory.SharedMemory(name=name)
        # frombuffer keeps the slice of the block's memoryview, which holds the mapping while
        # the array lives: unmapping fails (BufferError) instead of leaving the array dangling
        return np.frombuffer(block.buf[offset:], dtype, math.prod(shape)).reshape(shape)

    def forget(self, name: str) -> None:
        """Unmap block ``name``, which the frontend retired (once no view of it is left)."""
        block = self._blocks.pop(name, None)
        pending = self._unmapped if block is None else [*self._unmapped, block]
        self._unmapped = [b for b in pending if not _close(b)]

    def close(self) -> None:
        """Unmap every block (the frontend removes them)."""
        for block in [*self._blocks.values(), *self._unmapped]:
            _close(block)
        self._blocks.clear()
        self._unmapped.clear()


__all__ = ["MAX_FREE_BYTES", "MIN_SHARED_BYTES", "BlockPool", "BlockViews", "size_class"]
