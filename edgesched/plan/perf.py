"""Throughput, latency and energy of one device kind running a mix of model instances.

For a configuration ``k`` (instances per model) on device ``d``, with every instance busy:

* latency of model ``m``: ``L_m = T0_m * S_m(k - e_m)``, the solo latency stretched by the
  interference of the other running instances (the simulator's interference model, so measured
  matrices apply where a profile gives them);
* capacity of model ``m``: ``k_m / L_m`` requests/s (each instance serves one request at a time);
* power: the simulator's :class:`~edgesched.sim.power.PowerModel` with every instance running.

The dynamic energy per inference is taken at the occupancy the plan runs a device at, not at
full occupancy: in arrival state ``s`` a device filled to its provisioned share carries
``f_s = factor_s / provision`` of its capacity. Each instance of model ``j`` is then busy with
probability ``b_j`` and, independently of the others (a mean-field approximation), its
co-runners slow it by ``S̄_m = 1 + (S_m - 1) * b̄_m`` with ``b̄_m`` the co-runners' mean busy
probability weighted by utilisation (exact for the utilisation-additive model); by Little's law
``b_j = f_s * S̄_j / S_j``, solved by fixed-point iteration. The power model is
``idle + (peak - idle) * min(1, X)`` with ``X = sum_j u_j B_j`` and ``B_j ~ Binomial(k_j, b_j)``;
``E[min(1, X)]`` is ``E[X]`` when ``X`` cannot exceed 1 and otherwise comes from a normal
approximation of ``X``. Model ``m``'s share of the dynamic power is its share of ``E[X]``, so its
energy per inference is
``(peak - idle) * u_m * T0_m * S̄_m * E[min(1, X)] / E[X]``, averaged over the arrival states
weighted by the requests each carries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edgesched.catalog import Catalog

if TYPE_CHECKING:
    from edgesched.sim.interference import InterferenceModel

_FIXED_POINT_ITERATIONS = 12


@dataclass(frozen=True)
class KindPerf:
    """Per-configuration figures of one device kind (rows: configurations, columns: models).

    Attributes:
        latency_s: compute latency with every instance busy (0 where the model is absent).
        capacity_rps: requests/s each model's instances serve with every instance busy.
        energy_j: dynamic energy per inference at the planned occupancy.
        full_power_w: power with every instance busy.
    """

    latency_s: np.ndarray
    capacity_rps: np.ndarray
    energy_j: np.ndarray
    full_power_w: np.ndarray


def full_slowdowns(
    interference: InterferenceModel, device: str, models: Sequence[str], counts: np.ndarray
) -> np.ndarray:
    """Slowdown of each present model with every other instance of its configuration running.

    Args:
        interference: the simulator's interference model.
        device: device kind.
        models: model names, one per column of ``counts``.
        counts: instances per configuration (rows) and model (columns).

    Returns:
        An array shaped like ``counts``: 1 where a model is absent.
    """
    out = np.ones(counts.shape)
    cache: dict[tuple[int, tuple[int, ...]], float] = {}
    for c, row in enumerate(counts.tolist()):
        for m, k in enumerate(row):
            if not k:
                continue
            others = list(row)
            others[m] -= 1
            key = (m, tuple(others))
            hit = cache.get(key)
            if hit is None:
                co = {models[j]: n for j, n in enumerate(others) if n}
                hit = cache[key] = interference.slowdown(device, models[m], co)
            out[c, m] = hit
    return out


def _expected_capped(mu: np.ndarray, var: np.ndarray) -> np.ndarray:
    """``E[min(1, X)]`` for ``X`` normal with mean ``mu`` and variance ``var``."""
    from scipy.special import ndtr

    sd = np.sqrt(var)
    safe = np.where(sd > 0, sd, 1.0)
    z = (mu - 1.0) / safe
    excess = (mu - 1.0) * ndtr(z) + safe * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
    excess = np.where(sd > 0, excess, np.maximum(mu - 1.0, 0.0))
    return mu - excess


def dynamic_energy(
    counts: np.ndarray,
    solo_s: np.ndarray,
    util: np.ndarray,
    slowdown: np.ndarray,
    dynamic_w: float,
    occupancy: Sequence[tuple[float, float]],
) -> np.ndarray:
    """Dynamic energy per inference, joules (see the module docstring).

    Args:
        counts: instances per configuration and model, shape (C, M).
        solo_s: solo latency per model, seconds, shape (M,).
        util: utilisation of one instance per model, shape (M,).
        slowdown: full-occupancy slowdowns, shape (C, M).
        dynamic_w: peak minus idle power of the device, watts.
        occupancy: ``(share of capacity in use, weight)`` per arrival state.
    """
    k = counts.astype(float)
    eye = np.eye(k.shape[1])
    co = util[None, None, :] * np.maximum(k[:, None, :] - eye[None, :, :], 0.0)  # (C, m, j)
    co_sum = co.sum(axis=2)
    total = np.zeros(k.shape)
    weights = 0.0
    for f, weight in occupancy:
        busy = np.full(k.shape, f)
        for _ in range(_FIXED_POINT_ITERATIONS):
            mean_busy = np.einsum("cmj,cj->cm", co, busy) / np.where(co_sum > 0, co_sum, 1.0)
            stretch = 1.0 + (slowdown - 1.0) * mean_busy
            busy = np.minimum(f * stretch / slowdown, 1.0)
        mu = (k * busy * util).sum(axis=1)
        var = (k * busy * (1.0 - busy) * util**2).sum(axis=1)
        ratio = _expected_capped(mu, var) / np.where(mu > 0, mu, 1.0)
        ratio = np.where((k * util).sum(axis=1) > 1.0, ratio, 1.0)  # never above peak: exact
        total += weight * dynamic_w * util * solo_s * stretch * ratio[:, None]
        weights += weight
    return np.where(k > 0, total / weights, 0.0)


def kind_perf(
    catalog: Catalog,
    interference: InterferenceModel,
    device: str,
    models: Sequence[str],
    counts: np.ndarray,
    occupancy: Sequence[tuple[float, float]],
) -> KindPerf:
    """Latency, capacity, energy and power of each configuration of ``device``.

    Args:
        catalog: profiles and device specs.
        interference: the simulator's interference model.
        device: device kind.
        models: model names, one per column of ``counts``.
        counts: instances per configuration (rows) and model (columns).
        occupancy: ``(share of capacity in use, weight)`` per arrival state.
    """
    from edgesched.sim.power import PowerModel

    profiles = [catalog.profile(device, m) for m in models]
    solo = np.array([p.latency_s.value for p in profiles])
    util = np.array([p.utilisation.value for p in profiles])
    slow = full_slowdowns(interference, device, models, counts)
    latency = np.where(counts > 0, solo * slow, 0.0)
    capacity = np.where(counts > 0, counts / np.where(latency > 0, latency, 1.0), 0.0)
    power = PowerModel(catalog)
    spec = catalog.device(device)
    full = np.array(
        [power.power(device, dict(zip(models, row, strict=True))) for row in counts.tolist()]
    )
    dyn = spec.peak_power_w.value - spec.idle_power_w.value
    energy = dynamic_energy(counts, solo, util, slow, dyn, occupancy)
    return KindPerf(latency, capacity, energy, full)
