"""Replay a workload for real on one emulated node: model instances as processes behind queues.

This mirrors the simulator's node: each model has instances (one process each, pinned to
``threads`` intra-op threads), requests of a model wait in one first-in-first-out queue shared by
its instances, and an instance serves one request at a time. Requests are released at their
arrival times; latency is measured from the actual release to the end of the inference, on the
system-wide monotonic clock. It is how ``benchmarks/sim_vs_real.py`` checks the simulator.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgesched.sim.arrivals import Workload


@dataclass(frozen=True)
class ReplayResult:
    """Per-request times of a real replay, in seconds on the monotonic clock."""

    released: np.ndarray
    start: np.ndarray
    finish: np.ndarray

    @property
    def latency_s(self) -> np.ndarray:
        """Release to answer, per request."""
        return self.finish - self.released


def _instance(model: str, opts: dict[str, Any], inbox: Any, outbox: Any, ready: Any) -> None:
    from edgesched.runtime import open_executor

    ex = open_executor(model, **opts)
    x = np.random.default_rng(0).random((1, *ex.input_shape), dtype=np.float32)
    ex.warmup(1, runs=10)
    ready.put(model)
    clock = time.perf_counter
    while True:
        rid = inbox.get()
        if rid is None:
            break
        t0 = clock()
        ex.run(x)
        outbox.put((rid, t0, clock()))
    ex.close()


def replay(
    workload: Workload,
    instances: Mapping[str, int],
    opts: Mapping[str, Any],
    timeout_s: float = 600.0,
) -> ReplayResult:
    """Serve every request of ``workload`` on real instances and time it.

    Args:
        workload: the requests (model names must be keys of ``instances``).
        instances: model → number of instance processes.
        opts: keyword arguments of :func:`edgesched.runtime.open_executor` for each instance.
        timeout_s: give up when an answer takes longer than this.
    """
    ctx = mp.get_context("spawn")
    inboxes = {m: ctx.Queue() for m in instances}
    outbox, ready = ctx.Queue(), ctx.Queue()
    procs = [
        ctx.Process(target=_instance, args=(m, dict(opts), inboxes[m], outbox, ready), daemon=True)
        for m, k in instances.items()
        for _ in range(k)
    ]
    for p in procs:
        p.start()
    n = len(workload)
    released, start, finish = np.zeros(n), np.zeros(n), np.zeros(n)
    try:
        for _ in procs:
            ready.get(timeout=timeout_s)
        names = workload.model_names
        models = workload.models.tolist()
        base = time.perf_counter() + 0.2
        for i, t in enumerate(workload.times.tolist()):
            wait = base + t - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            released[i] = time.perf_counter()
            inboxes[names[models[i]]].put(i)
        for _ in range(n):
            rid, t0, t1 = outbox.get(timeout=timeout_s)
            start[rid], finish[rid] = t0, t1
    except queue.Empty:
        raise TimeoutError(f"an instance gave no answer within {timeout_s} s") from None
    finally:
        for m, k in instances.items():
            for _ in range(k):
                inboxes[m].put(None)
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.terminate()
    return ReplayResult(released, start, finish)
