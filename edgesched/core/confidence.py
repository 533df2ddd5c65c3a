"""Top-class confidence and measured confidence samples of an edge/cloud model pair.

A *confidence sample* is what the ``offload`` decision point is tuned and simulated from: for
each test input, the edge model's top-1 probability, whether the edge model and the cloud model
answered it correctly, and how long each took to run it. ``edgesched offload measure`` writes one
by running both models for real; the package ships the digits pair's sample as
``catalog/data/measured/digits-confidence.json`` (file names end in :data:`SAMPLE_SUFFIX`).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgesched.core.yamlio import load_json, save_json
from edgesched.errors import ConfigError

FORMAT = "edgesched-confidence/1"
#: Shipped samples are ``catalog/data/measured/<name>-confidence.json``.
SAMPLE_SUFFIX = "-confidence.json"


def confidence(output: np.ndarray) -> np.ndarray:
    """Top-class confidence per row: the largest probability, after a softmax unless the rows
    already are probability vectors (non-negative, summing to 1)."""
    x = output.reshape(len(output), -1).astype(np.float64)
    if not (np.all(x >= 0) and np.allclose(x.sum(axis=1), 1.0, atol=1e-3)):
        x = np.exp(x - x.max(axis=1, keepdims=True))
        x /= x.sum(axis=1, keepdims=True)
    return x.max(axis=1)


class ConfidenceSample(BaseModel):
    """Per test input: edge confidence, correctness of both models, execution times.

    Attributes:
        format: file format tag.
        edge_model: the model that answers first (on an edge node).
        cloud_model: the model asked when the edge answer is unsure.
        created: when it was measured (ISO 8601, UTC).
        command: the command that wrote the file.
        method: how the numbers were obtained.
        dataset: which inputs, with their labels.
        backend: the runtime that ran both models.
        machine: where they ran (host, CPU, Python and package versions).
        input_bytes: bytes of one request's input tensor (what an offload sends).
        confidence: edge top-1 probability per input.
        edge_correct: the edge model's top-1 class is the label, per input.
        cloud_correct: the cloud model's top-1 class is the label, per input.
        edge_exec_s: the edge model's execution time per input at batch 1, in seconds.
        cloud_exec_s: the cloud model's execution time per input at batch 1, in seconds.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    format: Literal["edgesched-confidence/1"] = FORMAT
    edge_model: str
    cloud_model: str
    created: str
    command: str
    method: str
    dataset: str
    backend: str
    machine: dict[str, object]
    input_bytes: int = Field(gt=0)
    confidence: list[float] = Field(min_length=1)
    edge_correct: list[bool]
    cloud_correct: list[bool]
    edge_exec_s: list[float]
    cloud_exec_s: list[float]

    @model_validator(mode="after")
    def _consistent(self) -> ConfidenceSample:
        n = len(self.confidence)
        for name in ("edge_correct", "cloud_correct", "edge_exec_s", "cloud_exec_s"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries, confidence {n}")
        if not all(0.0 <= c <= 1.0 for c in self.confidence):
            raise ValueError("confidence values must lie in [0, 1]")
        if not all(t > 0 for t in (*self.edge_exec_s, *self.cloud_exec_s)):
            raise ValueError("execution times must be positive")
        return self

    def __len__(self) -> int:
        return len(self.confidence)

    @property
    def edge_accuracy(self) -> float:
        """Share of inputs the edge model answers correctly."""
        return float(np.mean(self.edge_correct))

    @property
    def cloud_accuracy(self) -> float:
        """Share of inputs the cloud model answers correctly."""
        return float(np.mean(self.cloud_correct))

    def accuracy(self, offloaded: np.ndarray) -> float:
        """Accuracy when the inputs marked in the boolean ``offloaded`` get the cloud's answer."""
        ok = np.where(offloaded, self.cloud_correct, self.edge_correct)
        return float(np.mean(ok))

    def save(self, path: str | Path) -> Path:
        """Write the sample as JSON (one input per array element)."""
        return save_json(self, path)

    @classmethod
    def load(cls, path: str | Path) -> ConfidenceSample:
        """Read and validate a sample file.

        Raises:
            ConfigError: unreadable, not JSON, or not a valid sample (naming the field).
        """
        return load_json(
            path, cls, f"{FORMAT} sample", "write one with `edgesched offload measure --out FILE`"
        )


def shipped_sample_paths() -> list[Path]:
    """The confidence samples shipped with the package, by file name."""
    folder = Path(str(resources.files("edgesched.catalog").joinpath("data", "measured")))
    return sorted(folder.glob(f"*{SAMPLE_SUFFIX}"))


def find_sample(
    edge_model: str, cloud_model: str, given: Iterable[ConfidenceSample] = ()
) -> ConfidenceSample:
    """The sample measured for ``edge_model`` → ``cloud_model``: from ``given``, else shipped.

    Raises:
        ConfigError: no sample of that pair is given or shipped.
    """
    for sample in given:
        if (sample.edge_model, sample.cloud_model) == (edge_model, cloud_model):
            return sample
    for path in shipped_sample_paths():
        sample = ConfidenceSample.load(path)
        if (sample.edge_model, sample.cloud_model) == (edge_model, cloud_model):
            return sample
    raise ConfigError(
        f"no measured confidence sample for offloading {edge_model!r} to {cloud_model!r} "
        f"(shipped: {[p.name for p in shipped_sample_paths()]}); measure the pair on labelled "
        "inputs (`edgesched offload measure --out FILE` does it for the digits models) and "
        "pass the file with --confidence FILE"
    )
