"""Kinds of devices and models, and how a model behaves on a device (ARCHITECTURE §2).

All quantities are SI: seconds, watts, bytes, hertz, FLOP (multiply-adds count as two), USD.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgesched.core.sourced import Sourced

DeviceKind = Literal["edge", "cloud"]


class DvfsTables(BaseModel):
    """Discrete frequency steps a device exposes, in hertz (empty where not published)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu_hz: tuple[float, ...] = ()
    gpu_hz: tuple[float, ...] = ()
    mem_hz: tuple[float, ...] = ()
    ref: str = Field(min_length=1)


class DeviceSpec(BaseModel):
    """A kind of device, with the provenance of every number.

    Attributes:
        name: catalog key, e.g. ``jetson-orin-nano-8gb``.
        kind: ``edge`` for boards and boxes, ``cloud`` for datacenter servers.
        device_class: the interference class (``jetson``, ``sbc``, ``x86``, ``datacenter-gpu``).
        accelerator: what runs the models, in words.
        price_usd: purchase price (for cloud servers: an amortised hardware price estimate).
        memory_bytes: memory available to models.
        cpu_cores: CPU cores.
        idle_power_w: power drawn with nothing running.
        peak_power_w: power drawn when fully busy.
        effective_flops: sustained FLOP/s on vision CNNs at batch 1, used for estimates.
        interference_alpha: slowdown per unit of co-runner utilisation (see
            :class:`edgesched.sim.interference.ParametricInterference`).
        dvfs: published frequency tables, if any.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    kind: DeviceKind
    device_class: str
    accelerator: str
    price_usd: Sourced
    memory_bytes: Sourced
    cpu_cores: Sourced
    idle_power_w: Sourced
    peak_power_w: Sourced
    effective_flops: Sourced
    interference_alpha: Sourced
    dvfs: DvfsTables | None = None

    @model_validator(mode="after")
    def _check_power(self) -> DeviceSpec:
        if self.peak_power_w.value < self.idle_power_w.value:
            raise ValueError(
                f"peak_power_w ({self.peak_power_w.value}) is below idle_power_w "
                f"({self.idle_power_w.value})"
            )
        return self


class ModelSpec(BaseModel):
    """A kind of model.

    Attributes:
        name: catalog key, e.g. ``resnet18``.
        task: ``classification``, ``detection`` …
        input_shape: one sample's input, channels first, e.g. ``(3, 224, 224)``.
        flops: FLOP per sample (two per multiply-add).
        params: number of parameters.
        accuracy: top-1 (or mAP) where published.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    task: str
    input_shape: tuple[int, ...]
    flops: Sourced
    params: Sourced
    accuracy: Sourced | None = None

    @property
    def input_bytes(self) -> int:
        """Bytes of one raw uint8 input sample (what a camera frame costs on the wire)."""
        return math.prod(self.input_shape)

    @property
    def weight_bytes(self) -> float:
        """FP32 weight size in bytes."""
        return 4.0 * self.params.value


class Profile(BaseModel):
    """How one model behaves on one device.

    Attributes:
        device: device name.
        model: model name.
        latency_s: solo latency at batch 1.
        batch_slope: latency at batch ``b`` is ``latency_s * (1 + batch_slope * (b - 1))``.
        utilisation: share of the device one running instance keeps busy (0–1]; drives the
            interference and power models.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: str
    model: str
    latency_s: Sourced
    batch_slope: Sourced
    utilisation: Sourced

    def latency_at(self, batch: int) -> float:
        """Solo latency in seconds for a batch of ``batch`` samples."""
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        return self.latency_s.value * (1.0 + self.batch_slope.value * (batch - 1))

    @property
    def source(self) -> str:
        """The weakest source among the profile's numbers."""
        ranks = {"estimated": 0, "published": 1, "measured": 2}
        parts = (self.latency_s, self.batch_slope, self.utilisation)
        return min((p.source for p in parts), key=ranks.__getitem__)
