"""Describe the machine a profile is taken on: host, CPU, GPUs, Python and package versions."""

from __future__ import annotations

import os
import platform
import socket
from importlib import metadata
from pathlib import Path

from edgesched.profile import _nvml
from edgesched.profile.schema import MachineInfo

_PACKAGES = ("edgesched", "numpy", "onnxruntime", "onnx", "torch", "torchvision")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> list[str]:
    try:
        nv = _nvml.Nvml()
    except _nvml.NvmlError:
        return []
    names = []
    try:
        for i in range(8):
            try:
                names.append(nv.name(nv.device(i)))
            except _nvml.NvmlError:
                break
    finally:
        nv.shutdown()
    return names


def machine_info() -> MachineInfo:
    """What this machine is and which software versions are installed (nothing is imported)."""
    versions = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return MachineInfo(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        processor=_cpu_model(),
        cpu_count=os.cpu_count() or 1,
        gpus=_gpus(),
        python=platform.python_version(),
        packages=versions,
    )
