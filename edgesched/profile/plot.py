"""Heatmaps of a profile's performance matrix (PNG, matplotlib imported only here)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from edgesched.bench.plots import import_pyplot
from edgesched.profile.schema import MixRecord, ProfileFile


def _grid(cells: list[MixRecord], probe: str, a: str, b: str, n: int, value: str) -> np.ndarray:
    """Values over (instances of a, instances of b) with every other model at 0; NaN if absent."""
    grid = np.full((n + 1, n + 1), np.nan)
    for c in cells:
        if c.probe != probe:
            continue
        others = {k: v for k, v in c.running.items() if k not in (a, b)}
        if any(others.values()):
            continue
        i, j = c.running.get(a, 0), c.running.get(b, 0)
        if value == "slowdown":
            grid[i, j] = c.slowdown
        elif value == "power" and c.power is not None:
            grid[i, j] = c.power.mean_w
        elif value == "throughput":
            grid[i, j] = c.throughput_rps
    return grid


def _alone(profile: ProfileFile, probe: str, value: str) -> float:
    """The (0, 0) cell: the probe alone, from its solo record at the matrix batch size."""
    if value == "slowdown":
        return 1.0
    batch = int(profile.settings.get("matrix_batch", 1))
    rec = next((r for r in profile.solo if r.model == probe and r.batch == batch), None)
    if rec is None:
        return float("nan")
    if value == "throughput":
        return rec.throughput_rps
    return rec.power.mean_w if rec.power is not None else float("nan")


def _heatmap(ax: object, grid: np.ndarray, a: str, b: str, title: str, fmt: str) -> None:
    im = ax.imshow(grid, origin="lower", cmap="magma_r")  # type: ignore[attr-defined]
    for (i, j), v in np.ndenumerate(grid):
        if np.isfinite(v):
            ax.text(
                j,
                i,
                format(v, fmt),
                ha="center",
                va="center",
                fontsize=8,  # type: ignore[attr-defined]
                color="white" if v > np.nanmean(grid) else "black",
            )
    ax.set_xticks(range(grid.shape[1]))  # type: ignore[attr-defined]
    ax.set_yticks(range(grid.shape[0]))  # type: ignore[attr-defined]
    ax.set_xlabel(f"running instances of {b}")  # type: ignore[attr-defined]
    ax.set_ylabel(f"running instances of {a}")  # type: ignore[attr-defined]
    ax.set_title(title, fontsize=9)  # type: ignore[attr-defined]
    ax.figure.colorbar(im, ax=ax, shrink=0.8)  # type: ignore[attr-defined]


def plot_profile(profile: ProfileFile, out: str | Path, prefix: str | None = None) -> list[Path]:
    """Write one PNG per pair of models: slowdown of each probe, device throughput and power.

    Files are named ``<prefix>-<model a>-<model b>.png`` (prefix: the device name by default).
    A profile of one model gets a single row per probe against itself. Returns the files written.
    """
    plt = import_pyplot()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n = profile.max_instances
    models = profile.models
    pairs = list(itertools.combinations(models, 2)) or [(models[0], models[0])]
    written = []
    for a, b in pairs:
        probes = [a] if a == b else [a, b]
        panels = [("slowdown", p) for p in probes] + [
            ("throughput", probes[0]),
            ("power", probes[0]),
        ]
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2))
        for ax, (value, probe) in zip(np.atleast_1d(axes), panels, strict=True):
            grid = _grid(profile.matrix, probe, a, b, n, value)
            grid[0, 0] = _alone(profile, probe, value)
            title = {
                "slowdown": f"slowdown of a new {probe}",
                "throughput": f"device throughput (samples/s), probe {probe}",
                "power": f"power (W), probe {probe}",
            }[value]
            _heatmap(ax, grid, a, b, title, ".2f" if value == "slowdown" else ".0f")
        src = profile.idle_power.source if profile.idle_power else "none"
        fig.suptitle(
            f"{profile.device}: {profile.backend.get('backend', '?')} "
            f"{profile.backend.get('provider', '')}, {profile.mode}, batch "
            f"{int(profile.settings.get('matrix_batch', 1))}, power {src}",
            fontsize=10,
        )
        fig.tight_layout(rect=(0, 0, 1, 0.94))
        path = out / f"{prefix or profile.device}-{a}-{b}.png".replace("/", "_")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
