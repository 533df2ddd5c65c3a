"""Device strings (``cpu``, ``cuda``, ``cuda:1``, ``tensorrt``) and the names of the hardware."""

from __future__ import annotations

import functools
import platform
from collections.abc import Sequence

from edgesched.runtime.errors import ExecutorError


def parse_device(device: str, kinds: Sequence[str], backend: str) -> tuple[str, int]:
    """Split a device string into its kind and index.

    ``"cpu"`` gives ``("cpu", 0)``, ``"cuda"`` gives ``("cuda", 0)`` and ``"cuda:1"`` gives
    ``("cuda", 1)``. Every kind but ``cpu`` takes an index.

    Args:
        device: the device string.
        kinds: the kinds the backend runs on.
        backend: the backend's name, for the error message.

    Raises:
        ExecutorError: the kind is not one of ``kinds`` or the index is not a whole number.
    """
    kind, sep, index = str(device).partition(":")
    if kind in kinds and (not sep or (kind != "cpu" and index.isdigit())):
        return kind, int(index) if sep else 0
    choices = ", ".join(k if k == "cpu" else f"{k}, {k}:N" for k in kinds)
    raise ExecutorError(
        f"unknown device {device!r} for backend {backend}; choose one of: {choices}"
    )


def device_label(kind: str, index: int) -> str:
    """``cpu`` or ``kind:index``, as measurements record it."""
    return "cpu" if kind == "cpu" else f"{kind}:{index}"


@functools.cache
def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@functools.cache
def gpu_name(index: int) -> str | None:
    """The name of NVIDIA GPU ``index`` through NVML, or None where NVML is unavailable."""
    from edgesched.profile._nvml import Nvml, NvmlError

    try:
        nvml = Nvml()
    except NvmlError:
        return None
    try:
        return nvml.name(nvml.device(index))
    except NvmlError:
        return None
    finally:
        nvml.shutdown()
