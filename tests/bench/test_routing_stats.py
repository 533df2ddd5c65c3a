"""The routing bench's arithmetic on constructed inputs: spreads, best heuristic, recovery."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgesched.bench import routing_stats as stats
from edgesched.bench.routing_stats import LEARNED, Spread


def _run(policy: str, mean_s: float, energy_j: float) -> tuple[str, dict[str, float]]:
    return policy, {"latency_mean_s": mean_s, "energy_per_request_j": energy_j}


METRICS = ("latency_mean_s", "energy_per_request_j")


def test_spread_is_the_mean_and_sample_standard_deviation() -> None:
    assert Spread.of([1.0, 2.0, 3.0]) == Spread(2.0, 1.0)
    assert Spread.of([4.0]) == Spread(4.0, 0.0)
    assert Spread.of([1.0, float("nan"), 3.0]) == Spread(2.0, math.sqrt(2.0))
    assert math.isnan(Spread.of([float("nan")]).mean)
    with pytest.raises(ValueError, match="no values"):
        Spread.of([])


def test_summarise_groups_runs_by_policy_in_first_seen_order() -> None:
    runs = [_run("b", 0.010, 1.0), _run("a", 0.004, 2.0), _run("b", 0.030, 3.0)]
    summary = stats.summarise(runs, METRICS)
    assert list(summary) == ["b", "a"]
    assert summary["b"]["latency_mean_s"].mean == pytest.approx(0.020)
    assert summary["b"]["latency_mean_s"].std == pytest.approx(np.std([0.010, 0.030], ddof=1))
    assert summary["b"]["energy_per_request_j"] == Spread(2.0, pytest.approx(math.sqrt(2.0)))
    assert summary["a"]["latency_mean_s"] == Spread(0.004, 0.0)


def test_the_best_heuristic_has_the_lowest_mean_latency_and_is_never_the_learned_router() -> None:
    runs = [
        _run("pow2", 0.020, 1.0),
        _run("pow2", 0.040, 1.0),  # mean 30 ms
        _run("min-expected-completion", 0.025, 2.0),
        _run("min-expected-completion", 0.027, 2.0),  # mean 26 ms: best heuristic
        _run("cloud-only", 0.500, 9.0),
        _run(LEARNED, 0.013, 2.1),
        _run(LEARNED, 0.013, 2.1),
    ]
    summary = stats.summarise(runs, METRICS)
    best = stats.best_heuristic(summary)
    assert best == "min-expected-completion"
    ratios = stats.learned_ratios(summary, best)
    assert ratios == {
        "latency_mean": pytest.approx(0.013 / 0.026),
        "energy_per_request": pytest.approx(2.1 / 2.0),
    }


def test_no_ratio_without_the_learned_router_or_without_a_heuristic() -> None:
    only_heuristics = stats.summarise([_run("pow2", 0.02, 1.0)], METRICS)
    assert stats.best_heuristic(only_heuristics) == "pow2"
    assert stats.learned_ratios(only_heuristics, "pow2") is None
    only_learned = stats.summarise([_run(LEARNED, 0.02, 1.0)], METRICS)
    assert stats.best_heuristic(only_learned) is None
    assert stats.learned_ratios(only_learned, None) is None


def test_recovery_windows_are_before_right_after_and_at_the_end() -> None:
    windows = stats.recovery_windows(slowdown_s=50.0, span_s=100.0, window_fraction=0.1)
    assert windows == {"before": (40.0, 50.0), "during": (50.0, 60.0), "after": (90.0, 100.0)}
    with pytest.raises(ValueError, match="window_fraction"):
        stats.recovery_windows(50.0, 100.0, 0.0)


def test_window_means_on_a_latency_series_that_jumps_then_partly_recovers() -> None:
    times = np.arange(100.0)  # one arrival per second, 0 … 99
    latency = np.where(times < 50, 1.0, np.where(times < 60, 3.0, 1.5))
    latency[49] = 100.0  # the last request before the slowdown still counts as "before"
    windows = stats.recovery_windows(50.0, 99.0, 0.1)  # width 9.9 s
    means = stats.window_means(times, latency, windows)
    assert means["before"] == pytest.approx((8 * 1.0 + 100.0) / 9)  # arrivals 41 … 49
    assert means["during"] == pytest.approx(3.0)  # arrivals 50 … 59
    assert means["after"] == pytest.approx(1.5)  # arrivals 90 … 99, the last one included


def test_an_empty_window_gives_nan() -> None:
    means = stats.window_means(np.array([0.0, 1.0]), np.array([1.0, 2.0]), {"during": (5, 6)})
    assert math.isnan(means["during"])


def test_rolling_mean_is_a_trailing_window() -> None:
    times = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    out = stats.rolling_mean(times, values, np.array([0.0, 2.0, 4.0, 10.0]), width_s=2.0)
    np.testing.assert_allclose(out[:3], [1.0, 2.5, 4.5])  # (t-2, t]: {0}, {1, 2}, {3, 4}
    assert math.isnan(out[3])


def test_mean_curve_averages_over_the_shared_range_and_skips_gaps() -> None:
    a = (np.array([-2.0, 10.0]), np.array([-2.0, 10.0]))
    b = (np.array([0.0, 5.0, 8.0]), np.array([2.0, np.nan, 2.0]))
    grid, mean = stats.mean_curve([a, b], points=3)
    np.testing.assert_allclose(grid, [0.0, 4.0, 8.0])
    # a is 0, 4, 8 there; b is 2, NaN (next to its gap), 2.
    np.testing.assert_allclose(mean, [1.0, 4.0, 5.0])
    with pytest.raises(ValueError, match="no curves"):
        stats.mean_curve([], 3)
    with pytest.raises(ValueError, match="no time range"):
        stats.mean_curve([a, (np.array([11.0, 12.0]), np.array([1.0, 1.0]))], 3)
