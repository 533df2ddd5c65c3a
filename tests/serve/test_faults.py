"""A worker killed under load: every request still gets an answer, and the server keeps serving."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from edgesched.serve import encode_request
from tests.serve import test_server
from tests.serve.test_server import MODEL, _serve, _shutdown, batch_of, infer

aiohttp = pytest.importorskip("aiohttp")
onnx_file = test_server.onnx_file

REQUESTS = 300
CONCURRENCY = 8


@pytest.mark.slow
def test_killing_a_worker_under_load_loses_no_request(onnx_file: Path) -> None:
    s = _serve(onnx_file, policy="round-robin")
    try:
        victim = s.server.core.workers[0]
        old_pid = victim.pid
        body, headers = encode_request({"input0": batch_of(2)}, binary_outputs=True)
        url = f"{s.url}/v2/models/{MODEL}/infer"

        async def load() -> tuple[list[int], list[BaseException]]:
            statuses: list[int] = []
            failures: list[BaseException] = []
            todo = iter(range(REQUESTS))
            timeout = aiohttp.ClientTimeout(total=60)
            async with aiohttp.ClientSession(timeout=timeout) as session:

                async def client() -> None:
                    for _ in todo:
                        try:
                            async with session.post(url, data=body, headers=headers) as r:
                                await r.read()
                                statuses.append(r.status)
                        except Exception as exc:  # a request without an answer
                            failures.append(exc)

                async def killer() -> None:
                    while len(statuses) < REQUESTS // 4:
                        await asyncio.sleep(0.001)
                    os.kill(old_pid, signal.SIGKILL)

                await asyncio.gather(killer(), *(client() for _ in range(CONCURRENCY)))
            return statuses, failures

        statuses, failures = asyncio.run(load())
        assert failures == []
        assert len(statuses) == REQUESTS  # every request got an answer
        assert set(statuses) == {200}  # lost ones were retried on the other node
        deadline = time.monotonic() + 60
        while not (victim.alive and victim.pid != old_pid):
            assert time.monotonic() < deadline, "the worker did not come back"
            time.sleep(0.05)
        assert victim.restarts == 1
        status, out = infer(s.url, batch_of(1))
        assert status == 200 and isinstance(out, np.ndarray)
        s.server.core.sync_metrics()
        text = s.server.metrics.render()[0].decode()
        assert 'edgesched_worker_restarts_total{node="left"} 1.0' in text
    finally:
        _shutdown(s)
