"""Synthetic profile files for tests that must not run real models."""

from __future__ import annotations

from collections.abc import Callable

from edgesched.profile.runner import mixes
from edgesched.profile.schema import (
    MachineInfo,
    MixRecord,
    PowerFigure,
    ProfileFile,
    SoloRecord,
    Stat,
)

MACHINE = MachineInfo(
    hostname="test", platform="test", processor="test", cpu_count=2, python="3.11", packages={}
)


def stat(v: float) -> Stat:
    """A stat of one repeated value."""
    return Stat.of([v, v, v])


def synthetic_profile(
    device: str,
    solo: dict[str, float],
    slowdown: Callable[[str, dict[str, int]], float],
    max_instances: int = 2,
    batches: tuple[int, ...] = (1, 2, 4),
    slope: float = 0.5,
) -> ProfileFile:
    """A profile whose matrix follows ``slowdown(probe, running)`` exactly."""
    models = list(solo)
    power = PowerFigure(meter="estimated", source="estimated", detail="test", mean_w=10.0)
    solos = [
        SoloRecord(
            model=m,
            batch=b,
            latency_s=stat(solo[m] * (1 + slope * (b - 1))),
            throughput_rps=b / (solo[m] * (1 + slope * (b - 1))),
            power=power,
        )
        for m in models
        for b in batches
    ]
    matrix = [
        MixRecord(
            running={k: v for k, v in mix.items() if v},
            batch=1,
            probe=probe,
            probe_latency_s=stat(solo[probe] * slowdown(probe, mix)),
            slowdown=slowdown(probe, mix),
            steady_latency_s={},
            throughput_rps=1.0,
            power=power,
        )
        for mix in mixes(models, max_instances)
        for probe in models
    ]
    return ProfileFile(
        device=device,
        created="2026-01-01T00:00:00+00:00",
        machine=MACHINE,
        backend={"backend": "onnxruntime", "provider": "CPUExecutionProvider"},
        mode="processes",
        models=models,
        batches=list(batches),
        max_instances=max_instances,
        settings={"matrix_batch": 1},
        idle_power=power,
        solo=solos,
        matrix=matrix,
    )
