"""Dynamic batching: the batcher's queue and timer, then a real server forming batches."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from edgesched.core.serving import BatchingConfig
from edgesched.serve._batcher import DynamicBatcher
from tests.serve import test_server
from tests.serve.test_server import MODEL, _serve, _shutdown, batch_of, reference

aiohttp = pytest.importorskip("aiohttp")
onnx_file = test_server.onnx_file


def _doubler(sizes: list[int], delay_s: float = 0.0):
    async def run(batch: np.ndarray) -> tuple[list[np.ndarray], str]:
        sizes.append(len(batch))
        await asyncio.sleep(delay_s)
        return [batch * 2, batch.sum(axis=tuple(range(1, batch.ndim)))], f"ran {len(batch)}"

    return run


def _rows(n: int, start: int = 0) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.float32).reshape(n, 1)


def test_full_batches_form_and_each_request_gets_its_rows() -> None:
    sizes: list[int] = []

    async def main() -> list:
        b = DynamicBatcher(
            BatchingConfig(max_batch_size=4, max_queue_delay_ms=1000), _doubler(sizes)
        )
        return await asyncio.gather(*(b.submit(_rows(1, i)) for i in range(8)))

    t0 = time.monotonic()
    results = asyncio.run(main())
    assert time.monotonic() - t0 < 0.5  # full batches do not wait for the delay
    assert sizes == [4, 4]
    for i, (arrays, info, rows, size) in enumerate(results):
        np.testing.assert_array_equal(arrays[0], [[2.0 * i]])
        np.testing.assert_array_equal(arrays[1], [float(i)])
        assert (info, size, rows) == ("ran 4", 4, slice(i % 4, i % 4 + 1))


def test_a_partial_batch_runs_after_the_queue_delay() -> None:
    sizes: list[int] = []

    async def main() -> float:
        b = DynamicBatcher(BatchingConfig(max_batch_size=8, max_queue_delay_ms=50), _doubler(sizes))
        t0 = time.monotonic()
        await asyncio.gather(b.submit(_rows(2)), b.submit(_rows(1, 2)))
        return time.monotonic() - t0

    waited = asyncio.run(main())
    assert sizes == [3]
    assert 0.045 <= waited < 1.0


def test_big_requests_run_alone_and_never_overfill_a_batch() -> None:
    sizes: list[int] = []

    async def main() -> None:
        b = DynamicBatcher(BatchingConfig(max_batch_size=4, max_queue_delay_ms=20), _doubler(sizes))
        outs = await asyncio.gather(
            b.submit(_rows(3)), b.submit(_rows(2, 3)), b.submit(_rows(6, 5))
        )
        np.testing.assert_array_equal(outs[1][0][0], _rows(2, 3) * 2)
        np.testing.assert_array_equal(outs[2][0][0], _rows(6, 5) * 2)

    asyncio.run(main())
    assert sorted(sizes) == [2, 3, 6]  # 3 + 2 > 4: the queue of 3 runs before the 2 joins


def test_an_error_reaches_every_request_of_the_batch() -> None:
    async def fail(batch: np.ndarray) -> tuple[list[np.ndarray], None]:
        raise RuntimeError("boom")

    async def main() -> list:
        b = DynamicBatcher(BatchingConfig(max_batch_size=2, max_queue_delay_ms=10), fail)
        return await asyncio.gather(b.submit(_rows(1)), b.submit(_rows(1)), return_exceptions=True)

    assert [str(r) for r in asyncio.run(main())] == ["boom", "boom"]


def test_outputs_that_are_not_batch_major_are_refused() -> None:
    async def scalar(batch: np.ndarray) -> tuple[list[np.ndarray], None]:
        return [np.zeros(3, np.float32)], None

    async def main() -> None:
        b = DynamicBatcher(BatchingConfig(max_batch_size=2, max_queue_delay_ms=10), scalar)
        await asyncio.gather(b.submit(_rows(1)), b.submit(_rows(1)))

    with pytest.raises(ValueError, match="batch-major"):
        asyncio.run(main())


BATCHED = """
name: batched
nodes:
  - id: left
    device: x86-mini-pc
    models: {mobilenet_v2: 1}
serving:
  batching:
    mobilenet_v2: {max_batch_size: 8, max_queue_delay_ms: 30}
"""


def test_the_server_batches_concurrent_requests(onnx_file: Path) -> None:
    from edgesched.serve import decode_response, encode_request

    s = _serve(onnx_file, BATCHED, policy="least-loaded")
    try:
        batches = [batch_of(1 + i % 2, seed=i) for i in range(12)]

        async def send_all() -> list[tuple[np.ndarray, dict]]:
            async with aiohttp.ClientSession() as session:

                async def one(batch: np.ndarray) -> tuple[np.ndarray, dict]:
                    body, headers = encode_request({"input0": batch}, binary_outputs=True)
                    url = f"{s.url}/v2/models/{MODEL}/infer"
                    async with session.post(url, data=body, headers=headers) as r:
                        raw = await r.read()
                        assert r.status == 200, raw
                        resp = decode_response(
                            raw, int(r.headers["Inference-Header-Content-Length"])
                        )
                        return resp.arrays()["output0"], resp.parameters

                return await asyncio.gather(*(one(b) for b in batches))

        results = asyncio.run(send_all())
        for batch, (out, _) in zip(batches, results, strict=True):
            np.testing.assert_allclose(out, reference(onnx_file, batch), rtol=1e-5, atol=1e-5)
        formed = [p.get("batch_size", 0) for _, p in results]
        assert max(formed) > 2  # requests were run together
        text = s.server.metrics.render()[0].decode()
        assert 'edgesched_formed_batch_size_count{model="mobilenet_v2"}' in text
        cfg = s.server.core.model_config(s.server.core.model(MODEL))
        assert cfg["dynamic_batching"] == {"max_queue_delay_microseconds": 30000}
    finally:
        _shutdown(s)
