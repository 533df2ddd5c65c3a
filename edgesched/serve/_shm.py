"""Shared-memory blocks that carry large request tensors from the frontend to a worker process.

Pickling a 224×224 image batch through a pipe copies it four times and costs about 0.8 ms per
request on a small CPU; writing it once into shared memory and sending only the block's name
costs about 0.1 ms, and receiving the HTTP body straight into a block (:meth:`BlockPool.take`)
spares even that copy. :class:`BlockPool` (the frontend's side) hands out blocks by size class,
finds the block a tensor already lies in (:meth:`BlockPool.locate`) and takes blocks back when
they are done with; :class:`BlockViews` (the worker's side) maps each block once and returns
numpy views of it. Tensors below :data:`MIN_SHARED_BYTES` still go through the socket, where
they are cheaper.
"""

from __future__ import annotations

import contextlib
import threading
from multiprocessing import shared_memory

import numpy as np

#: Tensors of at least this many bytes travel through shared memory (our choice: below it the
#: pipe's copies cost less than a block's bookkeeping).
MIN_SHARED_BYTES = 32 * 1024
#: Smallest block size; sizes are powers of two from here, so a few classes cover all inputs.
MIN_BLOCK_BYTES = 64 * 1024


def size_class(nbytes: int) -> int:
    """The block size serving ``nbytes``: the next power of two, at least MIN_BLOCK_BYTES."""
    return max(MIN_BLOCK_BYTES, 1 << (max(nbytes, 1) - 1).bit_length())


class BlockPool:
    """Blocks of shared memory owned by the frontend (or one worker). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: dict[int, list[shared_memory.SharedMemory]] = {}
        self._all: list[shared_memory.SharedMemory] = []
        self._spans: list[tuple[int, int, str]] = []  # (address, size, name) of every block

    def take(self, nbytes: int) -> shared_memory.SharedMemory:
        """A block of at least ``nbytes`` bytes (give it back with :meth:`release`)."""
        size = size_class(nbytes)
        with self._lock:
            free = self._free.get(size)
            if free:
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
        view = np.ndarray(array.shape, array.dtype, buffer=block.buf)
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
        """Take back a block whose request was answered (or lost)."""
        with self._lock:
            self._free.setdefault(block.size, []).append(block)

    def close(self) -> None:
        """Unmap and remove every block. The pool must not be used afterwards."""
        with self._lock:
            blocks, self._all, self._free, self._spans = self._all, [], {}, []
        for block in blocks:
            with contextlib.suppress(OSError, BufferError):
                block.close()
            with contextlib.suppress(OSError):
                block.unlink()


class BlockViews:
    """The worker side: numpy views of the frontend's blocks, each mapped once."""

    def __init__(self) -> None:
        self._blocks: dict[str, shared_memory.SharedMemory] = {}

    def view(self, name: str, shape: tuple[int, ...], dtype: str, offset: int = 0) -> np.ndarray:
        """The tensor of ``shape`` and ``dtype`` at byte ``offset`` of block ``name``."""
        block = self._blocks.get(name)
        if block is None:
            block = self._blocks[name] = shared_memory.SharedMemory(name=name)
        return np.ndarray(shape, np.dtype(dtype), buffer=block.buf, offset=offset)

    def close(self) -> None:
        """Unmap every block (the frontend removes them)."""
        for block in self._blocks.values():
            with contextlib.suppress(OSError, BufferError):
                block.close()
        self._blocks.clear()


__all__ = ["MIN_SHARED_BYTES", "BlockPool", "BlockViews", "size_class"]
