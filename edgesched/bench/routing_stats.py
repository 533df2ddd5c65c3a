"""The routing bench's arithmetic: spread over seeds, the best heuristic, recovery windows.

Pure functions over plain numbers and arrays, so each can be checked on constructed inputs.

Recovery after a slowdown is read from requests by *arrival* time. With ``span`` the time from
the first to the last arrival, ``W = window_fraction × span`` (10 % by default) and ``t_s`` the
moment the first slowdown starts (all relative to the first arrival):

* **before**: requests arriving in ``[t_s − W, t_s)``, the steady state the router had reached;
* **during**: requests arriving in ``[t_s, t_s + W)``, the first window right after the slowdown;
* **after**: requests arriving in ``[span − W, span]``, the last stretch of the run.

A router that recovers has ``after`` close to ``before``; one that does not stays near
``during`` or worse. Each figure is the mean latency of the requests in the window (NaN when
the window holds none).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: Registry name of the learned router; every other routing policy counts as a heuristic.
LEARNED = "learned"
#: A reference, not a policy: ``min-expected-completion`` told of each slowdown when it starts.
TOLD = "told-min-expected-completion"

#: Metrics averaged over seeds for every scenario × policy.
AGGREGATED = (
    "latency_mean_s",
    "latency_p50_s",
    "latency_p95_s",
    "latency_p99_s",
    "slo_attainment",
    "throughput_rps",
    "goodput_rps",
    "energy_per_request_j",
    "offload_rate",
)

#: Names of the three recovery windows, in time order.
WINDOWS = ("before", "during", "after")


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation (``ddof=1``; 0 for a single value) over seeds."""

    mean: float
    std: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        """The spread of ``values``, NaNs ignored (NaN when none is left).

        Raises:
            ValueError: ``values`` is empty.
        """
        arr = np.asarray(list(values), dtype=float)
        if arr.size == 0:
            raise ValueError("no values to aggregate")
        arr = arr[~np.isnan(arr)]
        if arr.size == 0:
            return cls(float("nan"), float("nan"))
        std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
        return cls(float(arr.mean()), std)


def summarise(
    runs: Iterable[tuple[str, Mapping[str, float]]], metrics: Sequence[str] = AGGREGATED
) -> dict[str, dict[str, Spread]]:
    """Policy → metric → spread over the runs of that policy.

    Args:
        runs: ``(policy, metrics)`` per run, one per seed; policies keep their first-seen order.
        metrics: the metric names to aggregate.
    """
    grouped: dict[str, list[Mapping[str, float]]] = {}
    for policy, values in runs:
        grouped.setdefault(policy, []).append(values)
    return {
        policy: {m: Spread.of(v[m] for v in rows) for m in metrics}
        for policy, rows in grouped.items()
    }


def best_heuristic(summary: Mapping[str, Mapping[str, Spread]]) -> str | None:
    """The non-learned policy with the lowest mean latency (first on ties), or None if none ran.

    The told reference (:data:`TOLD`) knows what no router can, so it never counts.
    """
    heuristics = [p for p in summary if p not in (LEARNED, TOLD)]
    if not heuristics:
        return None
    return min(heuristics, key=lambda p: summary[p]["latency_mean_s"].mean)


def learned_ratios(
    summary: Mapping[str, Mapping[str, Spread]], best: str | None
) -> dict[str, float] | None:
    """The learned router's mean latency and energy per request over the best heuristic's.

    Both are ratios of means over seeds; None when the learned router or a heuristic did not run.
    """
    if best is None or LEARNED not in summary:
        return None
    ours, theirs = summary[LEARNED], summary[best]
    return {
        "latency_mean": ours["latency_mean_s"].mean / theirs["latency_mean_s"].mean,
        "energy_per_request": ours["energy_per_request_j"].mean
        / theirs["energy_per_request_j"].mean,
    }


def recovery_windows(
    slowdown_s: float, span_s: float, window_fraction: float = 0.1
) -> dict[str, tuple[float, float]]:
    """``{before, during, after}`` → ``(start, end)`` in seconds after the first arrival.

    Raises:
        ValueError: ``window_fraction`` is not in (0, 1].
    """
    if not 0.0 < window_fraction <= 1.0:
        raise ValueError(f"window_fraction must be in (0, 1], got {window_fraction}")
    width = window_fraction * span_s
    return {
        "before": (slowdown_s - width, slowdown_s),
        "during": (slowdown_s, slowdown_s + width),
        "after": (span_s - width, span_s),
    }


def window_means(
    times_s: np.ndarray, values: np.ndarray, windows: Mapping[str, tuple[float, float]]
) -> dict[str, float]:
    """Mean of ``values`` whose time falls in each window (``start <= t < end``; the ``after``
    window also keeps ``t == end``, the last arrival); NaN for an empty window."""
    out = {}
    for name, (lo, hi) in windows.items():
        inside = (times_s >= lo) & ((times_s <= hi) if name == "after" else (times_s < hi))
        out[name] = float(values[inside].mean()) if inside.any() else float("nan")
    return out


def rolling_mean(
    times_s: np.ndarray, values: np.ndarray, grid_s: np.ndarray, width_s: float
) -> np.ndarray:
    """Trailing mean at each grid time ``t`` of the values with time in ``(t − width_s, t]``.

    ``times_s`` must be sorted. NaN where the window holds no value.
    """
    csum = np.concatenate([[0.0], np.cumsum(values, dtype=float)])
    hi = np.searchsorted(times_s, grid_s, side="right")
    lo = np.searchsorted(times_s, grid_s - width_s, side="right")
    count = hi - lo
    return np.where(count > 0, (csum[hi] - csum[lo]) / np.maximum(count, 1), np.nan)


def mean_curve(
    curves: Sequence[tuple[np.ndarray, np.ndarray]], points: int
) -> tuple[np.ndarray, np.ndarray]:
    """Average ``(time, value)`` curves over the time range they all cover.

    The grid runs from the latest first time to the earliest last time; each curve is
    interpolated onto it and the mean skips NaNs (NaN where every curve is NaN).

    Raises:
        ValueError: no curves, or curves that share no time range.
    """
    if not curves:
        raise ValueError("no curves to average")
    start = max(float(t[0]) for t, _ in curves)
    end = min(float(t[-1]) for t, _ in curves)
    if end < start:
        raise ValueError(f"the curves share no time range ({start} > {end})")
    grid = np.linspace(start, end, points)
    stacked = np.vstack([np.interp(grid, t, v) for t, v in curves])
    valid = ~np.isnan(stacked)
    count = valid.sum(axis=0)
    total = np.where(valid, stacked, 0.0).sum(axis=0)
    return grid, np.where(count > 0, total / np.maximum(count, 1), np.nan)
