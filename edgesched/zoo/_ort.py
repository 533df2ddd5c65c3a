"""Run ONNX files with onnxruntime on the CPU (one intra-op thread: results do not depend on
how busy the machine is, and checks stay polite on shared machines)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgesched.zoo._deps import require


def session(path: Path) -> Any:
    """An onnxruntime ``InferenceSession`` for ``path`` on the CPU execution provider."""
    ort = require("onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_onnx(model: Path | Any, x: np.ndarray) -> list[np.ndarray]:
    """Every output of ``model`` (a path or a session) for the float32 batch ``x``."""
    sess = session(model) if isinstance(model, Path) else model
    name = sess.get_inputs()[0].name
    return list(sess.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)}))
