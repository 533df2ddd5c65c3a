"""The profile file: what ``edgesched profile`` measured on one device, as JSON.

A profile records the machine and software, the backend that ran the models, solo latency per
model and batch size, the concurrency performance matrix (with ``running`` instances of each model
busy, the latency of a newly added ``probe`` instance divided by its solo latency), each running
instance's steady latency, the device's throughput in each mix, and the power in every
configuration with the meter that measured it. Every figure keeps its spread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgesched.core.yamlio import load_json, save_json

FORMAT = "edgesched-profile/1"


class Stat(BaseModel):
    """Summary of repeated measurements (seconds, watts …)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    median: float
    p95: float
    mean: float
    std: float
    n: int = Field(ge=1)

    @classmethod
    def of(cls, samples: list[float] | np.ndarray) -> Stat:
        """Summarise ``samples`` (at least one)."""
        a = np.asarray(samples, dtype=float)
        if a.size == 0:
            raise ValueError("no samples")
        return cls(
            median=float(np.median(a)),
            p95=float(np.percentile(a, 95)),
            mean=float(a.mean()),
            std=float(a.std()),
            n=int(a.size),
        )


class PowerFigure(BaseModel):
    """Power over one configuration and the meter behind it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    meter: str
    source: Literal["measured", "estimated"]
    detail: str
    mean_w: float
    samples_w: Stat | None = None


class SoloRecord(BaseModel):
    """One model alone on the device at one batch size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    batch: int = Field(ge=1)
    latency_s: Stat
    throughput_rps: float
    power: PowerFigure | None = None


class MixRecord(BaseModel):
    """One cell of the performance matrix.

    Attributes:
        running: instances of each model running continuously before the probe is added.
        batch: batch size of every instance.
        probe: model of the newly added instance.
        probe_latency_s: its latency while the others run.
        slowdown: ``probe_latency_s.median`` / solo median latency of the probe's model.
        steady_latency_s: per running model, the latency of its instances during the cell.
        throughput_rps: samples per second of the whole device during the cell.
        power: the device's power during the cell.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    running: dict[str, int]
    batch: int = Field(ge=1)
    probe: str
    probe_latency_s: Stat
    slowdown: float = Field(gt=0)
    steady_latency_s: dict[str, Stat]
    throughput_rps: float
    power: PowerFigure | None = None


class MachineInfo(BaseModel):
    """Where the profile was taken."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hostname: str
    platform: str
    processor: str
    cpu_count: int
    gpus: list[str] = Field(default_factory=list)
    python: str
    packages: dict[str, str] = Field(default_factory=dict)


class ProfileFile(BaseModel):
    """A complete profile (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["edgesched-profile/1"] = FORMAT
    device: str
    created: str
    machine: MachineInfo
    backend: dict[str, object]
    mode: Literal["processes", "streams", "threads"]
    models: list[str]
    batches: list[int]
    max_instances: int = Field(ge=0)
    settings: dict[str, float]
    idle_power: PowerFigure | None = None
    solo: list[SoloRecord]
    matrix: list[MixRecord] = Field(default_factory=list)

    def solo_latency(self, model: str, batch: int) -> float:
        """Median solo latency in seconds.

        Raises:
            KeyError: that model and batch were not profiled.
        """
        for rec in self.solo:
            if rec.model == model and rec.batch == batch:
                return rec.latency_s.median
        raise KeyError(f"no solo record for {model} at batch {batch}")

    def save(self, path: str | Path) -> Path:
        """Write the profile as indented JSON."""
        return save_json(self, path)

    @classmethod
    def load(cls, path: str | Path) -> ProfileFile:
        """Read and validate a profile file.

        Raises:
            ConfigError: unreadable, not JSON, or not a valid profile (naming the field).
        """
        return load_json(path, cls, f"{FORMAT} profile")

    @classmethod
    def json_schema(cls) -> dict[str, object]:
        """The JSON Schema of the file format."""
        return cls.model_json_schema()
