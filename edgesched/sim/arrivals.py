"""Arrival processes: Poisson, bursty MMPP and trace replay, drawn as whole arrays.

Arrival times are generated up front with vectorised numpy draws (a million requests take well
under a second) and consumed by the simulator in order.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesched.core.scenario import MmppArrivals, PoissonArrivals, ScenarioConfig, TraceArrivals
from edgesched.errors import ConfigError


@dataclass(frozen=True)
class Workload:
    """Every request of a run, as columns.

    Attributes:
        model_names: model names; ``models`` holds indices into it.
        times: arrival times in seconds, non-decreasing.
        models: model index per request.
        slo_s: deadline per request in seconds.
        input_bytes: bytes sent per request.
        model_input_bytes: the usual bytes per request of each model (what policies plan with).
    """

    model_names: tuple[str, ...]
    times: np.ndarray
    models: np.ndarray
    slo_s: np.ndarray
    input_bytes: np.ndarray
    model_input_bytes: np.ndarray

    def __len__(self) -> int:
        return len(self.times)

    @property
    def mean_rate_rps(self) -> float:
        """Requests per second over the span of arrivals."""
        span = float(self.times[-1] - self.times[0]) if len(self) > 1 else 0.0
        return (len(self) - 1) / span if span > 0 else float("inf")


def poisson_times(rate_rps: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` arrival times of a Poisson process of rate ``rate_rps``, starting at 0."""
    if rate_rps <= 0:
        raise ValueError(f"rate must be > 0, got {rate_rps}")
    return np.cumsum(rng.exponential(1.0 / rate_rps, n))


def mmpp_times(rate_rps: float, spec: MmppArrivals, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` arrival times of a Markov-modulated Poisson process with long-run mean ``rate_rps``.

    The process stays in state ``s`` for an exponential time of mean ``mean_dwell_s``, then jumps
    to another state chosen uniformly. State rates are ``rate_factor`` scaled so that the
    time-weighted mean rate equals ``rate_rps``.
    """
    factors = np.array([s.rate_factor for s in spec.states])
    dwell = np.array([s.mean_dwell_s for s in spec.states])
    share = dwell / dwell.sum()  # long-run share of time in each state (uniform jumps)
    rates = rate_rps * factors / float(share @ factors)
    chunks: list[np.ndarray] = []
    total, t, state, k = 0, 0.0, int(rng.integers(len(rates))), len(rates)
    while total < n:
        period = rng.exponential(dwell[state])
        m = int(rng.poisson(rates[state] * period))
        if m:
            chunks.append(t + np.sort(rng.uniform(0.0, period, m)))
            total += m
        t += period
        state = (state + 1 + int(rng.integers(k - 1))) % k
    return np.concatenate(chunks)[:n]


def _trace_row(row: dict[str, str | None], known: dict[str, int]) -> tuple[float, int, float, int]:
    """Parse one trace row; raise ValueError with a message on anything wrong."""
    model = row.get("model")
    if model is None or row.get("time_s") is None:
        raise ValueError("the row has fewer cells than the header")
    try:
        t = float(row["time_s"] or "nan")
        slo = float(row["slo_s"]) if row.get("slo_s") else math.nan
        size = int(row["input_bytes"]) if row.get("input_bytes") else -1
    except ValueError as exc:
        raise ValueError(f"bad number: {exc}") from None
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"time_s must be a finite number >= 0, got {row['time_s']!r}")
    if not (math.isnan(slo) or (math.isfinite(slo) and slo > 0)):
        raise ValueError(f"slo_s must be a finite number > 0, got {row['slo_s']!r}")
    if row.get("input_bytes") and size < 0:
        raise ValueError(f"input_bytes must be >= 0, got {size}")
    if model not in known:
        raise ValueError(f"model {model!r} is not in the scenario's models {sorted(known)}")
    return t, known[model], slo, size


def read_trace(path: Path, known: dict[str, int], limit: int) -> tuple[np.ndarray, ...]:
    """Read ``time_s,model[,slo_s,input_bytes]`` rows; returns (times, models, slo, bytes).

    Missing ``slo_s``/``input_bytes`` cells come back as NaN / -1 for the caller to fill.

    Raises:
        ConfigError: unreadable file, missing columns, unknown model, bad or unsorted numbers;
            the message names the file and the line.
    """
    times: list[float] = []
    models: list[int] = []
    slos: list[float] = []
    sizes: list[int] = []
    line = 1
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            cols = set(reader.fieldnames or ())
            if not {"time_s", "model"} <= cols:
                raise ConfigError(
                    f"{path}: a trace needs columns time_s,model; found {sorted(cols)}"
                )
            for line, row in enumerate(reader, start=2):
                if len(times) >= limit:
                    break
                try:
                    t, m, slo, size = _trace_row(row, known)
                except ValueError as exc:
                    raise ConfigError(f"{path}:{line}: {exc}") from None
                if times and t < times[-1]:
                    raise ConfigError(f"{path}:{line}: time_s {t} is earlier than the row before")
                times.append(t)
                models.append(m)
                slos.append(slo)
                sizes.append(size)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path}:{line}: cannot read trace: {exc}") from None
    if not times:
        raise ConfigError(f"{path}: the trace has no rows")
    return np.array(times), np.array(models, np.int64), np.array(slos), np.array(sizes, np.int64)


def build_workload(
    scenario: ScenarioConfig,
    rate_rps: float | None,
    default_input_bytes: dict[str, int],
    rng: np.random.Generator,
) -> Workload:
    """Draw the requests of ``scenario``.

    Args:
        scenario: the validated scenario.
        rate_rps: the absolute mean rate (the caller resolves ``load`` against capacity);
            ignored for traces.
        default_input_bytes: model name → bytes per request where the scenario gives none.
        rng: the run's generator.
    """
    names = tuple(scenario.models)
    index = {name: i for i, name in enumerate(names)}
    slo_of = np.array([scenario.models[m].slo_s for m in names])
    bytes_of = np.array(
        [
            default_input_bytes[m]
            if scenario.models[m].input_bytes is None
            else scenario.models[m].input_bytes
            for m in names
        ],
        np.int64,
    )
    arrivals = scenario.arrivals
    n = scenario.requests
    if isinstance(arrivals, TraceArrivals):
        path = Path(arrivals.path)
        if not path.is_absolute() and scenario.base_dir is not None:
            path = scenario.base_dir / path
        times, models, slo, size = read_trace(path, index, n)
        slo = np.where(np.isnan(slo), slo_of[models], slo)
        size = np.where(size < 0, bytes_of[models], size)
        return Workload(names, times, models, slo, size, bytes_of)
    assert rate_rps is not None
    if isinstance(arrivals, PoissonArrivals):
        times = poisson_times(rate_rps, n, rng)
    else:
        times = mmpp_times(rate_rps, arrivals, n, rng)
    weights = np.array([scenario.models[m].weight for m in names])
    models = rng.choice(len(names), size=n, p=weights / weights.sum())
    return Workload(names, times, models, slo_of[models], bytes_of[models], bytes_of)
