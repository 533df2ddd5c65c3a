"""Real replay of a workload on an emulated node (the sim-to-real check's real half)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgesched.profile.replay import replay
from edgesched.sim.arrivals import Workload
from tests.runtime.conftest import export, tiny_module

pytest.importorskip("onnxruntime")


def test_every_request_is_answered_in_order_per_model(tmp_path: Path) -> None:
    a = export(tiny_module(), tmp_path / "a.onnx", dynamic=True)
    b = export(tiny_module(), tmp_path / "b.onnx", dynamic=True)
    n = 60
    rng = np.random.default_rng(0)
    models = rng.integers(0, 2, n)
    wl = Workload(
        model_names=(str(a), str(b)),
        times=np.cumsum(rng.exponential(0.005, n)),
        models=models,
        slo_s=np.ones(n),
        input_bytes=np.zeros(n, np.int64),
        model_input_bytes=np.zeros(2, np.int64),
    )
    result = replay(wl, {str(a): 1, str(b): 1}, {"backend": "onnxruntime", "threads": 1})
    assert np.all(result.finish > result.start)
    assert np.all(result.start >= result.released)
    assert np.all(result.latency_s < 5)
    released_gaps = np.diff(result.released)
    assert np.allclose(released_gaps, np.diff(wl.times), atol=0.05)  # released on schedule
    for m in (0, 1):  # one instance per model: served first in, first out
        starts = result.start[models == m]
        assert np.all(np.diff(starts) > 0)
