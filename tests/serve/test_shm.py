"""Shared-memory blocks: reuse by size class, and retiring what is over the free budget."""

from __future__ import annotations

import gc
import os
import warnings

import numpy as np

from edgesched.serve._shm import MIN_BLOCK_BYTES, BlockPool, BlockViews, size_class


def _exists(name: str) -> bool:
    return os.path.exists(f"/dev/shm/{name.lstrip('/')}")


def test_blocks_given_back_are_reused_by_size_class() -> None:
    pool = BlockPool()
    try:
        a = pool.take(100_000)
        assert a.size == size_class(100_000) == 128 * 1024
        pool.release(a)
        assert pool.free_bytes == a.size
        assert pool.take(70_000) is a  # same class: the same block
        assert pool.free_bytes == 0
        assert pool.take(10).size == MIN_BLOCK_BYTES
    finally:
        pool.close()


def test_blocks_beyond_the_free_budget_are_retired_and_listeners_told() -> None:
    size = size_class(200_000)
    pool = BlockPool(max_free_bytes=2 * size)
    retired: list[str] = []
    pool.on_retire(retired.append)
    try:
        blocks = [pool.take(200_000) for _ in range(5)]  # a burst: five in use at once
        arrays = [np.ndarray((10,), np.float32, buffer=b.buf[:40]) for b in blocks]
        names = [b.name for b in blocks]
        for block in blocks:
            pool.release(block)
        assert pool.free_bytes == 2 * size
        assert retired == names[2:]  # the first two are kept, the rest retired
        assert all(_exists(n) for n in names[:2]) and not any(_exists(n) for n in names[2:])
        assert pool.locate(arrays[4]) is None  # no longer a block of this pool
        assert pool.locate(arrays[0]) == (names[0], 0)
        kept = {pool.take(200_000).name for _ in range(2)}
        assert kept == set(names[:2])
    finally:
        pool.close()
    assert not any(_exists(n) for n in names)


def test_a_retired_block_with_live_views_is_unmapped_once_they_are_gone() -> None:
    pool = BlockPool(max_free_bytes=0)
    try:
        block = pool.take(100_000)
        body = block.buf[:400]  # a request body still held, as the frontend receives it
        view = np.frombuffer(body, np.float32)
        view[:] = 1.0
        pool.release(block)  # retired at once: the budget is 0
        assert not _exists(block.name)
        assert float(view.sum()) == 100.0  # the mapping outlives the name
        del view, body
        gc.collect()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pool.release(pool.take(100_000))  # a later release unmaps it
        assert block.buf is None  # closed
    finally:
        pool.close()


def test_views_forget_a_block_once_no_view_of_it_is_left() -> None:
    pool = BlockPool()
    views = BlockViews()
    try:
        block = pool.take(100_000)
        first = views.view(block.name, (4,), "<f4")
        assert views.view(block.name, (4,), "<f4", 16).base is not None
        views.forget(block.name)
        assert block.name not in views._blocks
        assert len(views._unmapped) == 1  # ``first`` keeps it mapped
        del first
        gc.collect()
        views.forget("no-such-block")  # any later forget retries the unmapping
        assert views._unmapped == []
    finally:
        views.close()
        pool.close()
