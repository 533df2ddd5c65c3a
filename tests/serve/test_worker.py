"""NodeWorker: one child process per node serving tiny ONNX models over a Pipe."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from edgesched.serve import NodeWorker, WorkerDied, WorkerError
from tests.runtime.conftest import SAMPLE, export, tiny_module

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(export(tiny_module(), tmp_path_factory.mktemp("w") / "tiny.onnx", dynamic=True))


@pytest.fixture(scope="module")
def reference(onnx_path: str) -> object:
    import onnxruntime as ort

    return ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def worker(onnx_path: str) -> Iterator[NodeWorker]:
    with NodeWorker("edge-1", {onnx_path: 2}, threads=1, max_batch=8) as w:
        yield w
        assert w.in_flight == 0, "a request was left unanswered"


def batch(size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((size, *SAMPLE), dtype=np.float32)


def tally(futures: list, timeout_s: float = 30) -> tuple[int, int]:
    """(results, WorkerDied) over ``futures``, none left hanging; anything else fails the test."""
    ok = died = 0
    for fut in futures:
        exc = fut.exception(timeout=timeout_s)
        if exc is None:
            ok += 1
        else:
            assert isinstance(exc, WorkerDied), exc
            died += 1
    return ok, died


@pytest.mark.parametrize("size", [1, 3, 8])
def test_outputs_equal_onnxruntime(worker, onnx_path, reference, size) -> None:
    x = batch(size, seed=size)
    fut = worker.submit(onnx_path, x)
    (got,) = fut.result(timeout=30)
    (want,) = reference.run(None, {"input": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert fut.exec_s is not None and fut.exec_s > 0


def test_info_reports_each_model(worker, onnx_path) -> None:
    info = worker.info()[onnx_path]
    assert (info.input_shape, info.datatype, info.max_batch, info.instances) == (
        SAMPLE,
        "FP32",
        8,
        2,
    )
    assert info.executor["backend"] == "onnxruntime"
    assert worker.alive and worker.restarts == 0


def test_concurrent_submits_all_complete(worker, onnx_path, reference) -> None:
    x = batch(4, seed=7)
    (want,) = reference.run(None, {"input": x})
    with ThreadPoolExecutor(4) as pool:
        futures = list(pool.map(lambda _: worker.submit(onnx_path, x), range(100)))
    for fut in futures:
        np.testing.assert_allclose(fut.result(timeout=30)[0], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (np.zeros((2, 2, 8, 8), np.float32), "takes input of shape (B, 3, 8, 8); got (2, 2, 8, 8)"),
        (np.zeros((2, *SAMPLE), np.float64), "float32"),
        (np.zeros((9, *SAMPLE), np.float32), "at most 8 samples"),
        ([[1.0]], "takes a numpy array; got list"),
    ],
)
def test_bad_batch_fails_that_request_only(worker, onnx_path, bad, words) -> None:
    exc = worker.submit(onnx_path, bad).exception(timeout=30)
    assert isinstance(exc, WorkerError) and not isinstance(exc, WorkerDied)
    assert words in str(exc) and "edge-1" in str(exc) and "\n" not in str(exc)
    assert worker.submit(onnx_path, batch(2)).result(timeout=30)[0].shape == (2, 5)
    assert worker.alive


def test_unknown_model_fails_fast(worker, onnx_path) -> None:
    fut = worker.submit(onnx_path + "x", batch(1))
    assert fut.done()
    assert "unknown model" in str(fut.exception()) and "Did you mean" in str(fut.exception())


@pytest.mark.parametrize(
    ("model", "words"),
    [("garbage.onnx", "failed to start"), ("no-such-zoo-model", "unknown zoo model")],
)
def test_start_raises_when_a_model_cannot_load(tmp_path, model, words) -> None:
    if model.endswith(".onnx"):
        (tmp_path / model).write_bytes(b"not an onnx file")
        model = str(tmp_path / model)
    w = NodeWorker("edge-bad", {model: 1})
    with pytest.raises(WorkerError, match=words):
        w.start(timeout_s=60)
    assert not w.alive
    w.close()


@pytest.mark.parametrize(
    ("models", "kwargs", "words"),
    [
        ({}, {}, "at least one model"),
        ({"m.onnx": 0}, {}, "positive integer"),
        ({"m.onnx": True}, {}, "positive integer"),
        ({"m.onnx": 1}, {"max_batch": 0}, "max_batch"),
    ],
)
def test_constructor_rejects_bad_arguments(models, kwargs, words) -> None:
    with pytest.raises(WorkerError, match=words):
        NodeWorker("n", models, **kwargs)


def test_submit_before_start_and_after_close(onnx_path) -> None:
    w = NodeWorker("edge-2", {onnx_path: 1})
    assert "not started" in str(w.submit(onnx_path, batch(1)).exception())
    w.close()
    w.close()  # idempotent
    assert "closed" in str(w.submit(onnx_path, batch(1)).exception())


def test_killed_child_fails_in_flight_and_restarts(onnx_path) -> None:
    with NodeWorker("edge-3", {onnx_path: 2}, threads=1) as w:
        first_pid = w.pid
        futures = [w.submit(onnx_path, batch(16)) for _ in range(300)]
        os.kill(first_pid, signal.SIGKILL)
        futures += [w.submit(onnx_path, batch(16)) for _ in range(20)]  # during the restart
        ok, died = tally(futures)
        assert ok + died == len(futures)
        assert w.submit(onnx_path, batch(2)).result(timeout=60)[0].shape == (2, 5)
        assert w.restarts == 1 and w.alive and w.pid != first_pid and w.in_flight == 0
        if died:
            exc = next(f.exception() for f in futures if f.exception() is not None)
            assert "edge-3" in str(exc) and "lost in flight" in str(exc) and exc.lost >= 1


def test_worker_stays_down_after_the_restart_cap(onnx_path) -> None:
    with NodeWorker("edge-4", {onnx_path: 1}, max_restarts=0) as w:
        os.kill(w.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not (fut := w.submit(onnx_path, batch(1))).done() and time.monotonic() < deadline:
            time.sleep(0.05)  # until the death is handled: no restart allowed, so down
        assert not w.alive and w.restarts == 0
        assert fut.done() and isinstance(fut.exception(), WorkerDied)
        assert "down" in str(fut.exception())


def test_close_drains_in_flight_work(onnx_path) -> None:
    w = NodeWorker("edge-5", {onnx_path: 1}, threads=1).start()
    futures = [w.submit(onnx_path, batch(64)) for _ in range(100)]
    w.close(drain=True)
    assert all(f.done() and f.exception() is None for f in futures)
    assert w.in_flight == 0 and not w.alive


def test_close_without_drain_resolves_every_future(onnx_path) -> None:
    w = NodeWorker("edge-6", {onnx_path: 1}, threads=1).start()
    futures = [w.submit(onnx_path, batch(64)) for _ in range(200)]
    w.close(drain=False)
    assert sum(tally(futures)) == len(futures)
    assert w.in_flight == 0


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, edgesched.serve; print('onnxruntime' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_paths_in_models_are_accepted(onnx_path) -> None:
    w = NodeWorker("edge-7", {Path(onnx_path): 1})  # type: ignore[dict-item]
    assert w.models == [onnx_path]
    w.close()


def test_large_tensors_travel_through_shared_memory(onnx_path, reference) -> None:
    from edgesched.serve._shm import MIN_SHARED_BYTES

    sizes = [64, 300, 64, 1]  # 49 KB, 230 KB (shared memory), and 768 B (the pipe)
    assert batch(64).nbytes >= MIN_SHARED_BYTES > batch(1).nbytes
    with NodeWorker("edge-shm", {onnx_path: 2}, threads=1) as w:
        with ThreadPoolExecutor(4) as pool:
            futures = [
                pool.submit(w.submit, onnx_path, batch(n, seed=i)).result()
                for i, n in enumerate(sizes * 5)
            ]
        for i, (n, fut) in enumerate(zip(sizes * 5, futures, strict=True)):
            (got,) = fut.result(timeout=30)
            want = reference.run(None, {"input": batch(n, seed=i)})[0]
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        names = [b.name for b in w._pool._all]  # the blocks it made
        assert 1 <= len(names) <= 20
        assert all(os.path.exists(f"/dev/shm/{name.lstrip('/')}") for name in names)
    assert not any(os.path.exists(f"/dev/shm/{name.lstrip('/')}") for name in names)


def _mapped(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


def test_the_child_unmaps_the_blocks_its_pool_retires(onnx_path, reference) -> None:
    from edgesched.serve._shm import BlockPool, size_class

    x = [batch(300, seed=i) for i in range(8)]  # 230 KB each: shared memory
    pool = BlockPool(max_free_bytes=size_class(x[0].nbytes))  # keeps one block free
    retired: list[str] = []
    pool.on_retire(retired.append)
    try:
        with NodeWorker("edge-retire", {onnx_path: 4}, threads=1, pool=pool) as w:
            futures = [w.submit(onnx_path, b) for b in x]  # several blocks in use at once
            for b, fut in zip(x, futures, strict=True):
                (got,) = fut.result(timeout=30)
                np.testing.assert_allclose(got, reference.run(None, {"input": b})[0], rtol=1e-5)
            assert retired and pool.free_bytes <= size_class(x[0].nbytes)
            deadline = time.monotonic() + 10
            while any(n in _mapped(w.pid) for n in retired) and time.monotonic() < deadline:
                time.sleep(0.05)
            maps = _mapped(w.pid)
            assert not any(n in maps for n in retired), "the child still maps a retired block"
            (again,) = w.submit(onnx_path, x[0]).result(timeout=30)  # and it keeps serving
            np.testing.assert_allclose(again, reference.run(None, {"input": x[0]})[0], rtol=1e-5)
    finally:
        pool.close()


def test_a_tensor_already_in_the_frontends_pool_is_read_in_place(onnx_path, reference) -> None:
    from edgesched.serve._shm import BlockPool

    pool = BlockPool()
    x = batch(100, seed=7)  # 77 KB
    block = pool.take(64 + x.nbytes)
    placed = np.ndarray(x.shape, x.dtype, buffer=block.buf, offset=64)
    placed[...] = x
    assert pool.locate(placed) == (block.name, 64)
    assert pool.locate(x) is None  # not in a block: copied into one
    with NodeWorker("edge-pool", {onnx_path: 1}, threads=1, pool=pool) as w:
        (got,) = w.submit(onnx_path, placed).result(timeout=30)
        assert not w._held  # nothing was copied for it
        np.testing.assert_allclose(got, reference.run(None, {"input": x})[0], rtol=1e-5, atol=1e-6)
    assert os.path.exists(f"/dev/shm/{block.name.lstrip('/')}")  # its owner closes the pool
    del placed
    pool.close()
    assert not os.path.exists(f"/dev/shm/{block.name.lstrip('/')}")


def test_a_worker_on_the_callers_event_loop(onnx_path, reference) -> None:
    import asyncio

    from edgesched.serve.core import awaitable

    async def main() -> None:
        loop = asyncio.get_running_loop()
        w = NodeWorker("edge-loop", {onnx_path: 1}, threads=1)
        with pytest.raises(WorkerError, match="another thread"):
            w.start(loop=loop)  # it would wait for the child on the loop it blocks
        w = NodeWorker("edge-loop", {onnx_path: 1}, threads=1)
        await loop.run_in_executor(None, lambda: w.start(loop=loop))
        with pytest.raises(WorkerError, match="another thread"):
            w.close()  # the drain waits for answers this loop delivers
        x = batch(3, seed=3)
        (got,) = await awaitable(w.submit(onnx_path, x))
        np.testing.assert_allclose(got, reference.run(None, {"input": x})[0], rtol=1e-5, atol=1e-6)
        await loop.run_in_executor(None, w.close)
        assert not w.alive

    asyncio.run(main())
