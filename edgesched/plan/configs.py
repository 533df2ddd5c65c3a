"""Feasible configurations of each device kind: which model instances one device runs.

A configuration of device kind ``d`` is a vector ``k`` of instance counts per model with
``1 <= sum(k) <= max_total`` and ``k_m <= max_instances``, over at most ``max_models`` distinct
models. It is feasible when

* it fits memory: ``sum_m k_m * footprint_m <= memory_d``, with
  ``footprint_m = MEMORY_FACTOR * 4 bytes * params_m`` (FP32 weights plus activations, workspace
  and runtime per instance; the factor is our assumption), and
* every present model meets its SLO with every instance busy:
  ``transfer_{d,m} + L_{d,m}(k) <= SLO_m`` (:mod:`edgesched.plan.perf`).

Configurations another one of the same kind dominates (at least the capacity for every model, no
more energy per inference, no more power when busy) are dropped: a plan never needs them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import combinations, product
from math import comb
from typing import TYPE_CHECKING

import numpy as np

from edgesched.catalog import Catalog
from edgesched.plan.demand import Demand
from edgesched.plan.network import Network
from edgesched.plan.perf import kind_perf

if TYPE_CHECKING:
    from edgesched.sim.interference import InterferenceModel

MEMORY_FACTOR = 3.0
"""Memory of one instance per byte of FP32 weights (weights + activations + runtime; assumed)."""

MAX_VECTORS = 5000
"""Most count vectors enumerated per device kind; ``max_models`` shrinks until they fit."""

_DOMINANCE_CHUNK = 256


@dataclass(frozen=True)
class Limits:
    """Bounds of the per-kind enumeration.

    Attributes:
        max_instances: most instances of one model on one device.
        max_total: most instances on one device.
        max_models: most distinct models on one device (None: as many as
            :data:`MAX_VECTORS` allows).
    """

    max_instances: int = 4
    max_total: int = 8
    max_models: int | None = None

    def distinct_models(self, n_models: int) -> int:
        """Distinct models per device: the most (up to ``max_models``) within the vector cap."""
        top = min(n_models, self.max_models or n_models, self.max_total)
        while top > 1 and _vector_count(n_models, self, top) > MAX_VECTORS:
            top -= 1
        return top


@dataclass(frozen=True)
class Configs:
    """Every kept configuration, all device kinds together.

    Attributes:
        models: model names (columns).
        kinds: device kind names.
        price_usd, idle_w: per kind.
        cloud: per kind, whether it is a cloud server (reached over the WAN).
        kind: kind index of each configuration.
        counts: instances per configuration and model.
        latency_s, capacity_rps, energy_j: per configuration and model (see
            :class:`~edgesched.plan.perf.KindPerf`).
        full_power_w: per configuration, power with every instance busy.
        enumerated: configurations enumerated before the memory, SLO and dominance filters.
    """

    models: tuple[str, ...]
    kinds: tuple[str, ...]
    price_usd: np.ndarray
    idle_w: np.ndarray
    cloud: np.ndarray
    kind: np.ndarray
    counts: np.ndarray
    latency_s: np.ndarray
    capacity_rps: np.ndarray
    energy_j: np.ndarray
    full_power_w: np.ndarray
    enumerated: int

    def __len__(self) -> int:
        return len(self.kind)

    def select(self, keep: np.ndarray) -> Configs:
        """Only the configurations where ``keep`` is true (kinds unchanged)."""
        per_config = ("kind", "counts", "latency_s", "capacity_rps", "energy_j", "full_power_w")
        return replace(self, **{f: getattr(self, f)[keep] for f in per_config})

    def describe(self, c: int) -> dict[str, int]:
        """Model → instances of configuration ``c``."""
        return {m: int(k) for m, k in zip(self.models, self.counts[c], strict=True) if k}


def _vector_count(n_models: int, limits: Limits, distinct: int) -> int:
    return sum(
        comb(n_models, s) * len(_positive_vectors(s, limits.max_instances, limits.max_total))
        for s in range(1, distinct + 1)
    )


@functools.cache
def _positive_vectors(size: int, max_instances: int, max_total: int) -> list[tuple[int, ...]]:
    return [ks for ks in product(range(1, max_instances + 1), repeat=size) if sum(ks) <= max_total]


def count_vectors(n_models: int, limits: Limits) -> np.ndarray:
    """Every instance-count vector over ``n_models`` models within ``limits``, shape (V, M)."""
    rows: list[np.ndarray] = []
    for size in range(1, limits.distinct_models(n_models) + 1):
        vectors = np.array(_positive_vectors(size, limits.max_instances, limits.max_total))
        if not len(vectors):
            break
        for support in combinations(range(n_models), size):
            block = np.zeros((len(vectors), n_models), dtype=np.int64)
            block[:, support] = vectors
            rows.append(block)
    return np.concatenate(rows) if rows else np.zeros((0, n_models), dtype=np.int64)


def dominated(capacity: np.ndarray, energy: np.ndarray, power: np.ndarray) -> np.ndarray:
    """Rows that another row dominates: capacity >= everywhere, energy <= where present, power
    <=; among identical rows all but the first are dropped.

    Only rows serving a superset of a row's models can dominate it, so rows are compared group
    by group (groups of equal model sets).
    """
    n = len(capacity)
    energy = np.where(capacity > 0, energy, np.inf)
    support = capacity > 0
    groups, group_of = np.unique(support, axis=0, return_inverse=True)
    group_of = group_of.reshape(-1)
    covers = np.all(groups[None, :, :] >= groups[:, None, :], axis=2)  # [s, t]: t ⊇ s
    out = np.zeros(n, dtype=bool)
    for s in range(len(groups)):
        rows = np.flatnonzero(group_of == s)
        rivals = np.flatnonzero(covers[s][group_of])
        cap, en, pw = capacity[rivals], energy[rivals], power[rivals]
        for lo in range(0, len(rows), _DOMINANCE_CHUNK):
            mine = rows[lo : lo + _DOMINANCE_CHUNK]
            weak = (
                np.all(cap[None, :, :] >= capacity[mine, None, :], axis=2)
                & np.all(en[None, :, :] <= energy[mine, None, :], axis=2)
                & (pw[None, :] <= power[mine, None])
            )
            strict = (
                np.any(cap[None, :, :] > capacity[mine, None, :], axis=2)
                | np.any(en[None, :, :] < energy[mine, None, :], axis=2)
                | (pw[None, :] < power[mine, None])
            )
            earlier = rivals[None, :] < mine[:, None]
            out[mine] = np.any(weak & (strict | earlier), axis=1)
    return out


def enumerate_configs(
    catalog: Catalog,
    interference: InterferenceModel,
    devices: Sequence[str],
    demand: Demand,
    network: Network,
    limits: Limits = Limits(),
    progress: Callable[[int], None] | None = None,
) -> Configs:
    """The feasible, undominated configurations of every device kind in ``devices``.

    Args:
        catalog: devices, models and profiles (measured ones applied).
        interference: the simulator's interference model.
        devices: device kinds the plan may buy.
        demand: models, SLOs, bytes and arrival states.
        network: links and their transfer times.
        limits: enumeration bounds.
        progress: called with the number of kinds done.
    """
    if not devices:
        raise ValueError("no device kinds to enumerate")
    models = demand.models
    footprint = np.array([MEMORY_FACTOR * catalog.model(m).weight_bytes for m in models])
    occupancy = [(f / demand.provision, f * share) for f, share in demand.states]
    vectors = count_vectors(len(models), limits)
    per_config = ("counts", "latency_s", "capacity_rps", "energy_j", "full_power_w")
    parts: dict[str, list[np.ndarray]] = {f: [] for f in ("kind", *per_config)}
    for i, name in enumerate(devices):
        spec = catalog.device(name)
        cloud = spec.kind == "cloud"
        transfer = np.array([network.transfer_s(cloud, b) for b in demand.input_bytes])
        solo = np.array([catalog.profile(name, m).latency_s.value for m in models])
        usable = (transfer + solo <= demand.slo_s) & (footprint <= spec.memory_bytes.value)
        counts = vectors[np.all(vectors[:, ~usable] == 0, axis=1)]
        counts = counts[counts @ footprint <= spec.memory_bytes.value]
        perf = kind_perf(catalog, interference, name, models, counts, occupancy)
        rows = {"counts": counts, **{f: getattr(perf, f) for f in per_config[1:]}}
        meets = np.all((counts == 0) | (transfer + perf.latency_s <= demand.slo_s), axis=1)
        rows = {f: a[meets] for f, a in rows.items()}
        keep = ~dominated(rows["capacity_rps"], rows["energy_j"], rows["full_power_w"])
        parts["kind"].append(np.full(int(keep.sum()), i))
        for f in per_config:
            parts[f].append(rows[f][keep])
        if progress is not None:
            progress(i + 1)
    specs = [catalog.device(d) for d in devices]
    return Configs(
        models=tuple(models),
        kinds=tuple(devices),
        price_usd=np.array([s.price_usd.value for s in specs]),
        idle_w=np.array([s.idle_power_w.value for s in specs]),
        cloud=np.array([s.kind == "cloud" for s in specs]),
        enumerated=len(vectors) * len(devices),
        **{f: np.concatenate(a) for f, a in parts.items()},
    )
