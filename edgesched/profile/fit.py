"""Interference and catalog profiles fitted from measured profile files.

:class:`MeasuredInterference` answers from the measured performance matrix where the co-runner
mix lies inside the measured grid (a table lookup: every integer mix of the grid is measured),
and from a parametric fit outside it: ``slowdown = 1 + sum_j a_j * n_j`` per probe model, fitted
by least squares on the grid (the utilisation-additive model of the research digest, §E).
Pairs that were not measured fall back to another model (the catalog's parametric one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edgesched.core.sourced import Sourced
from edgesched.core.specs import Profile
from edgesched.profile.schema import ProfileFile
from edgesched.sim.interference import InterferenceModel

if TYPE_CHECKING:
    from edgesched.catalog import Catalog


@dataclass(frozen=True)
class ProbeFit:
    """What one probe model's measured row fitted to.

    Attributes:
        device, model: the probe.
        models: co-runner models of the grid, in order.
        table: measured slowdown by co-runner counts (the empty mix is 1.0).
        coef: parametric slowdown per running instance of each co-runner model.
        rmse: root-mean-square error of the parametric fit over the grid.
        max_rel_err: largest relative error of the parametric fit over the grid.
    """

    device: str
    model: str
    models: tuple[str, ...]
    table: dict[tuple[int, ...], float]
    coef: np.ndarray
    rmse: float
    max_rel_err: float

    def parametric(self, counts: tuple[int, ...]) -> float:
        """The fitted slowdown for ``counts`` running instances of :attr:`models`."""
        return 1.0 + float(np.dot(self.coef, counts))


def fit_probe(profile: ProfileFile, probe: str) -> ProbeFit:
    """Fit the matrix row of ``probe`` (see the module docstring).

    Raises:
        ValueError: the profile has no matrix cell for ``probe``.
    """
    models = tuple(profile.models)
    cells = [c for c in profile.matrix if c.probe == probe]
    if not cells:
        raise ValueError(f"profile of {profile.device} has no matrix cell for {probe}")
    table = {(0,) * len(models): 1.0}
    for c in cells:
        table[tuple(c.running.get(m, 0) for m in models)] = c.slowdown
    x = np.array(list(table), dtype=float)
    y = np.array(list(table.values())) - 1.0
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    coef = np.maximum(coef, 0.0)  # a co-runner never speeds a model up in this model
    pred = 1.0 + x @ coef
    actual = y + 1.0
    return ProbeFit(
        device=profile.device,
        model=probe,
        models=models,
        table=table,
        coef=coef,
        rmse=float(np.sqrt(np.mean((pred - actual) ** 2))),
        max_rel_err=float(np.max(np.abs(pred - actual) / actual)),
    )


class MeasuredInterference(InterferenceModel):
    """Measured slowdowns where profiled, ``fallback`` elsewhere (see the module docstring).

    Args:
        profiles: measured profile files (their ``device`` names the catalog device).
        fallback: the model for pairs and co-runners that were not measured.
    """

    def __init__(self, profiles: Iterable[ProfileFile], fallback: InterferenceModel) -> None:
        self.fallback = fallback
        self.fits: dict[tuple[str, str], ProbeFit] = {}
        for p in profiles:
            for probe in {c.probe for c in p.matrix}:
                self.fits[(p.device, probe)] = fit_probe(p, probe)

    def slowdown(self, device: str, model: str, co_runners: Mapping[str, int]) -> float:
        fit = self.fits.get((device, model))
        running = {m: n for m, n in co_runners.items() if n}
        if fit is None or not set(running) <= set(fit.models):
            return self.fallback.slowdown(device, model, co_runners)
        counts = tuple(running.get(m, 0) for m in fit.models)
        hit = fit.table.get(counts)
        return hit if hit is not None else max(1.0, fit.parametric(counts))


def catalog_profiles(profile: ProfileFile, catalog: Catalog) -> list[Profile]:
    """Measured catalog profiles (solo latency at batch 1, batch slope) for the catalog's models.

    The batch slope is the least-squares ``s`` in ``latency(b) = latency(1) * (1 + s (b - 1))``
    over the profiled batch sizes. Utilisation is not measured: the catalog's figure is kept.
    Models the catalog does not know are skipped.

    Raises:
        UnknownNameError: the profile's device is not in the catalog.
    """
    catalog.device(profile.device)
    out = []
    for model in profile.models:
        if model not in catalog.models:
            continue
        base = catalog.profile(profile.device, model)
        by_batch = {r.batch: r.latency_s.median for r in profile.solo if r.model == model}
        if 1 not in by_batch:
            continue
        lat1 = by_batch[1]
        bs = np.array([b for b in by_batch if b > 1], dtype=float)
        if bs.size:
            ratio = np.array([by_batch[int(b)] / lat1 - 1.0 for b in bs])
            slope = float(max(np.dot(bs - 1, ratio) / np.dot(bs - 1, bs - 1), 0.0))
            slope_src = Sourced(
                value=slope,
                source="measured",
                ref=f"profile of {profile.device} ({profile.created}): least-squares fit over "
                f"batches {sorted(by_batch)}",
            )
        else:
            slope_src = base.batch_slope
        ref = (
            f"profile of {profile.device} ({profile.created}), {profile.backend.get('backend')} "
            f"{profile.backend.get('provider')}: median of "
            f"{next(r.latency_s.n for r in profile.solo if r.model == model and r.batch == 1)} runs"
        )
        out.append(
            Profile(
                device=profile.device,
                model=model,
                latency_s=Sourced(value=lat1, source="measured", ref=ref),
                batch_slope=slope_src,
                utilisation=base.utilisation,
            )
        )
    return out
