"""A minimal NVML binding through ctypes (power and energy only), so no package is needed."""

from __future__ import annotations

import ctypes
from typing import Any


class NvmlError(OSError):
    """NVML is missing or returned an error."""


class Nvml:
    """``libnvidia-ml.so.1``: init on creation, ``shutdown()`` when done."""

    def __init__(self) -> None:
        try:
            self._lib = ctypes.CDLL("libnvidia-ml.so.1")
        except OSError as exc:
            raise NvmlError(f"NVML library not found: {exc}") from None
        self._call("nvmlInit_v2")

    def _call(self, fn: str, *args: Any) -> None:
        code = getattr(self._lib, fn)(*args)
        if code != 0:
            self._lib.nvmlErrorString.restype = ctypes.c_char_p
            raise NvmlError(f"{fn} failed: {self._lib.nvmlErrorString(code).decode()}")

    def device(self, index: int) -> ctypes.c_void_p:
        """Handle of GPU ``index``."""
        handle = ctypes.c_void_p()
        self._call("nvmlDeviceGetHandleByIndex_v2", ctypes.c_uint(index), ctypes.byref(handle))
        return handle

    def name(self, handle: ctypes.c_void_p) -> str:
        """The GPU's product name."""
        buf = ctypes.create_string_buffer(96)
        self._call("nvmlDeviceGetName", handle, buf, ctypes.c_uint(96))
        return buf.value.decode()

    def power_mw(self, handle: ctypes.c_void_p) -> int:
        """Power in milliwatts (a one-second average on Ampere and newer)."""
        mw = ctypes.c_uint()
        self._call("nvmlDeviceGetPowerUsage", handle, ctypes.byref(mw))
        return mw.value

    def total_energy_mj(self, handle: ctypes.c_void_p) -> int | None:
        """Energy in millijoules since the driver loaded, or None where unsupported (pre-Volta)."""
        mj = ctypes.c_ulonglong()
        try:
            self._call("nvmlDeviceGetTotalEnergyConsumption", handle, ctypes.byref(mj))
        except NvmlError:
            return None
        return mj.value

    def shutdown(self) -> None:
        """Release NVML."""
        self._lib.nvmlShutdown()
