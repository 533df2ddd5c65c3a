"""Estimated profiles: how a model behaves on a device when nothing better is known.

Every (device, model) pair without a published or measured profile gets one from these formulas.
Each number carries its formula, with the inputs plugged in, in its ``ref``.

* ``latency_s = flops / effective_flops + overhead``: the model's FLOP per sample over the
  device's sustained batch-1 FLOP/s, plus a fixed per-inference overhead of the device class
  (:data:`CLASS_PARAMS`).
* ``utilisation``: CPU-only classes keep the whole device busy (1.0: one instance uses every
  intra-op thread). GPU classes: ``clip(t_compute / T_SAT, 0.05, 1)`` with
  ``t_compute = flops / effective_flops``; ``T_SAT`` = 5 ms is the geometric mean, over six
  MLPerf systems, of ResNet-50's ``t_compute`` divided by its published batch-1 share of the
  device (SingleStream QPS / Offline QPS).
* ``batch_slope``: the class value of :data:`CLASS_PARAMS`; on GPU classes at least the
  utilisation, since a device that one batch-1 instance already fills cannot amortise a batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgesched.core.sourced import Sourced, estimated
from edgesched.core.specs import DeviceSpec, ModelSpec, Profile

#: Compute time at which one batch-1 instance keeps a GPU fully busy (seconds).
T_SAT_S = 5e-3

#: Lowest utilisation an instance is given (a running instance always costs something).
MIN_UTILISATION = 0.05

_T_SAT_BASIS = (
    "T_SAT = 5 ms = geometric mean of t_compute(ResNet-50) / (SingleStream QPS / Offline QPS) "
    "over MLPerf AGX Orin 2.6 ms, Orin NX 3.1 ms, Xavier NX 4.9 ms, AGX Xavier 6.9 ms, "
    "T4 7.1 ms, A100 8.5 ms"
)


@dataclass(frozen=True)
class ClassParams:
    """Estimation constants of one device class.

    Attributes:
        gpu: whether models run on a GPU (utilisation grows with model size) or on CPU cores.
        overhead_s: fixed time per inference on top of the compute time.
        overhead_basis: why that overhead.
        batch_slope: latency growth per extra sample in a batch (see :class:`Profile`).
        batch_basis: why that slope.
    """

    gpu: bool
    overhead_s: float
    overhead_basis: str
    batch_slope: float
    batch_basis: str


CLASS_PARAMS: dict[str, ClassParams] = {
    "jetson": ClassParams(
        gpu=True,
        overhead_s=0.3e-3,
        overhead_basis=(
            "assumed TensorRT enqueue + stream sync + input copy on the ARM host of a Jetson"
        ),
        batch_slope=0.5,
        batch_basis=(
            "assumed: an embedded GPU amortises weights and launches over a batch; MLPerf AGX "
            "Orin ResNet-50 Offline/SingleStream throughput ratio 4.1 implies an asymptotic "
            "slope near 0.25, 0.5 is kept for small batches"
        ),
    ),
    "datacenter-gpu": ClassParams(
        gpu=True,
        overhead_s=0.15e-3,
        overhead_basis=(
            "assumed kernel launches + PCIe copy of one input; kept below 0.27 ms so that the "
            "published A100 ResNet-50 latency stays above the ResNet-18 estimate"
        ),
        batch_slope=0.3,
        batch_basis=(
            "assumed: a large GPU is mostly idle at batch 1 (MLPerf A100 ResNet-50 "
            "SingleStream/Offline share 0.057), so extra samples cost little"
        ),
    ),
    "sbc": ClassParams(
        gpu=False,
        overhead_s=1.0e-3,
        overhead_basis="assumed framework dispatch and thread-pool wake-up on Cortex-A cores",
        batch_slope=0.95,
        batch_basis=(
            "assumed: batch 1 already keeps every core busy; only weight reuse in cache is gained"
        ),
    ),
    "x86": ClassParams(
        gpu=False,
        overhead_s=0.3e-3,
        overhead_basis="assumed framework dispatch and thread-pool wake-up on a desktop CPU",
        batch_slope=0.9,
        batch_basis=(
            "assumed: batch 1 already keeps every core busy; weight reuse in the larger caches "
            "saves ~10%"
        ),
    ),
}

#: Conservative constants for a device class the table does not know.
DEFAULT_PARAMS = ClassParams(
    gpu=False,
    overhead_s=1.0e-3,
    overhead_basis="unknown device class: conservative assumed overhead",
    batch_slope=1.0,
    batch_basis="unknown device class: assume no batching gain",
)


def class_params(device_class: str) -> ClassParams:
    """The estimation constants of ``device_class`` (conservative defaults when unknown)."""
    return CLASS_PARAMS.get(device_class, DEFAULT_PARAMS)


def estimate_latency(device: DeviceSpec, model: ModelSpec) -> Sourced:
    """Batch-1 solo latency: compute time at the device's sustained FLOP/s plus overhead."""
    params = class_params(device.device_class)
    flops = model.flops.value
    rate = device.effective_flops.value
    compute = flops / rate
    value = compute + params.overhead_s
    return estimated(
        value,
        f"latency = flops / effective_flops + overhead = {flops:.4g} FLOP / {rate:.4g} FLOP/s "
        f"+ {params.overhead_s * 1e3:.3g} ms = {compute * 1e3:.4g} ms + "
        f"{params.overhead_s * 1e3:.3g} ms = {value * 1e3:.4g} ms; overhead: "
        f"{device.device_class} class, {params.overhead_basis}",
    )


def estimate_utilisation(device: DeviceSpec, model: ModelSpec) -> Sourced:
    """Share of the device one running instance keeps busy."""
    params = class_params(device.device_class)
    if not params.gpu:
        return estimated(
            1.0,
            f"utilisation = 1.0: {device.device_class} runs models on CPU cores and one "
            "instance uses every intra-op thread",
        )
    flops = model.flops.value
    rate = device.effective_flops.value
    compute = flops / rate
    raw = compute / T_SAT_S
    value = min(1.0, max(MIN_UTILISATION, raw))
    return estimated(
        value,
        f"utilisation = clip(t_compute / T_SAT, {MIN_UTILISATION}, 1) with t_compute = "
        f"flops / effective_flops = {flops:.4g} / {rate:.4g} = {compute * 1e3:.4g} ms, "
        f"T_SAT = {T_SAT_S * 1e3:g} ms -> clip({raw:.4g}) = {value:.4g}; {_T_SAT_BASIS}",
    )


def estimate_batch_slope(device: DeviceSpec, utilisation: float) -> Sourced:
    """Latency growth per extra sample in a batch, per device class."""
    params = class_params(device.device_class)
    if params.gpu and utilisation > params.batch_slope:
        return estimated(
            utilisation,
            f"batch_slope = max(class slope {params.batch_slope}, utilisation {utilisation:.4g})"
            f" = {utilisation:.4g}: one batch-1 instance already fills this much of the GPU; "
            f"class slope: {params.batch_basis}",
        )
    return estimated(
        params.batch_slope,
        f"batch_slope = {params.batch_slope} ({device.device_class} class): {params.batch_basis}",
    )


def estimate_profile(device: DeviceSpec, model: ModelSpec) -> Profile:
    """A fully estimated profile of ``model`` on ``device``."""
    utilisation = estimate_utilisation(device, model)
    return Profile(
        device=device.name,
        model=model.name,
        latency_s=estimate_latency(device, model),
        batch_slope=estimate_batch_slope(device, utilisation.value),
        utilisation=utilisation,
    )
