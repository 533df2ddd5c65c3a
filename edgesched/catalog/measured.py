"""Measured profiles shipped with the catalog (``data/measured/*.json``) and their heatmaps.

They are listed by ``edgesched catalog list`` and ``catalog show DEVICE``. The simulator uses one
when a cluster names it (``profiles:`` in ``cluster.yaml``, or ``--profile``): measurements are
tied to a backend (say, eager PyTorch on an H100) that the catalog's published figures (TensorRT
INT8) were not, so calibration is a choice, not a silent default.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from edgesched.core.confidence import SAMPLE_SUFFIX
from edgesched.profile.schema import ProfileFile


@dataclass(frozen=True)
class MeasuredProfile:
    """A shipped profile file, its heatmaps, and the figures people ask for first."""

    path: Path
    profile: ProfileFile
    heatmaps: tuple[Path, ...]

    @property
    def worst_slowdown(self) -> float | None:
        """The largest slowdown in the matrix."""
        return max((c.slowdown for c in self.profile.matrix), default=None)

    @property
    def power_range_w(self) -> tuple[float, float] | None:
        """Lowest and highest mean power over every configuration, idle included."""
        p = self.profile
        watts = [r.power.mean_w for r in (*p.solo, *p.matrix) if r.power is not None]
        if p.idle_power is not None:
            watts.append(p.idle_power.mean_w)
        return (min(watts), max(watts)) if watts else None


def measured_dir() -> Path:
    """The folder of shipped measurements."""
    return Path(str(resources.files("edgesched.catalog").joinpath("data", "measured")))


def measured_profiles(device: str | None = None) -> list[MeasuredProfile]:
    """Shipped measured profiles, all or those of ``device``, by file name."""
    out = []
    folder = measured_dir()
    for path in sorted(folder.glob("*.json")):
        if path.name.endswith(SAMPLE_SUFFIX):
            continue  # a confidence sample (edgesched.core.confidence), not a profile
        profile = ProfileFile.load(path)
        if device is None or profile.device == device:
            maps = tuple(sorted(folder.glob(f"{path.stem}*.png")))
            out.append(MeasuredProfile(path, profile, maps))
    return out
