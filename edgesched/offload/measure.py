"""Measure the digits pair for real: confidence, correctness and execution time per test image.

``digits-edge`` and ``digits-cloud`` (:mod:`edgesched.zoo.digits`) are exported to ONNX (or taken
from the zoo cache) and run in onnxruntime on the CPU, one intra-op thread, at batch 1 on each of
the 450 held-out images. Each image runs ``repeats`` times per model; its recorded time is the
median of those runs (the output does not change between runs). The result is a
:class:`~edgesched.core.confidence.ConfidenceSample` with its provenance.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edgesched.core.confidence import ConfidenceSample, confidence
from edgesched.errors import ConfigError

EDGE, CLOUD = "digits-edge", "digits-cloud"
DATASET = (
    "scikit-learn load_digits, held-out split (25 %, stratified, random_state=0): 450 images "
    "of 8x8 pixels scaled to [0, 1], with their labels (edgesched.zoo.digits.held_out)"
)
_WARMUP = 20  # untimed runs per model before timing


def _timed_runs(
    sess: Any, x: np.ndarray, repeats: int, tick: Callable[[], None]
) -> tuple[np.ndarray, np.ndarray]:
    """Batch-1 outputs (first run) and median execution seconds of every row of ``x``."""
    name = sess.get_inputs()[0].name
    feeds = [{name: np.ascontiguousarray(x[i : i + 1])} for i in range(len(x))]
    for feed in feeds[:_WARMUP]:  # first runs allocate and fill caches
        sess.run(None, feed)
    times = np.empty((repeats, len(x)))
    outputs = []
    clock = time.perf_counter
    for r in range(repeats):
        for i, feed in enumerate(feeds):
            began = clock()
            out = sess.run(None, feed)
            times[r, i] = clock() - began
            if r == 0:
                outputs.append(out[0][0])
            tick()
    return np.stack(outputs), np.median(times, axis=0)


def measure_digits(
    *,
    cache: Path | None = None,
    repeats: int = 5,
    command: str = "",
    progress: Callable[[int], None] | None = None,
) -> ConfidenceSample:
    """Run both digits models on every held-out image and return the measured sample.

    Args:
        cache: the zoo cache folder holding (or receiving) the ONNX exports; default the zoo's.
        repeats: timed runs per image and model (the median is kept).
        command: the command line to record as the sample's provenance.
        progress: called with the number of timed runs done so far (``2 * repeats * 450`` in all).

    Raises:
        ConfigError: ``repeats`` is below 1.
        DependencyNotInstalled: torch, onnx, onnxruntime or scikit-learn is missing.
    """
    if repeats < 1:
        raise ConfigError(f"repeats must be at least 1, got {repeats}")
    from edgesched.profile.machine import machine_info
    from edgesched.zoo import export_onnx, held_out
    from edgesched.zoo._deps import version
    from edgesched.zoo._ort import session

    x, y = held_out()
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None and done % 100 == 0:
            progress(done)

    edge_out, edge_s = _timed_runs(session(export_onnx(EDGE, cache=cache)), x, repeats, tick)
    cloud_out, cloud_s = _timed_runs(session(export_onnx(CLOUD, cache=cache)), x, repeats, tick)
    ort = version("onnxruntime")
    return ConfidenceSample(
        edge_model=EDGE,
        cloud_model=CLOUD,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        command=command,
        method=(
            "each model's ONNX export run in onnxruntime at batch 1 on every image; confidence "
            "is the edge output's largest probability, correct means the top-1 class equals the "
            f"label; execution time is the median of {repeats} timed session.run calls per "
            f"image (time.perf_counter, after {_WARMUP} untimed warm-up runs)"
        ),
        dataset=DATASET,
        backend=f"onnxruntime {ort} CPUExecutionProvider, 1 intra-op thread",
        machine=machine_info().model_dump(),
        input_bytes=int(x[0].nbytes),
        confidence=confidence(edge_out).tolist(),
        edge_correct=(edge_out.argmax(axis=1) == y).tolist(),
        cloud_correct=(cloud_out.argmax(axis=1) == y).tolist(),
        edge_exec_s=edge_s.tolist(),
        cloud_exec_s=cloud_s.tolist(),
    )
