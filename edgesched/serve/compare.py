"""Set a served run beside the simulator's run of the same requests (``edgesched compare``).

The records a server writes (:mod:`edgesched.serve.records`) hold every answered request's
arrival time, model, SLO and size, which is a trace. :func:`compare_records` replays that trace
in the simulator on the same cluster with the same routing policy and aggregates both runs into
:class:`~edgesched.core.metrics.Metrics`, so the difference between the two is the simulator's
error on this workload.
"""

from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesched.core.cluster import Cluster
from edgesched.core.metrics import Metrics, compute_metrics
from edgesched.core.scenario import ModelLoad, ScenarioConfig, TraceArrivals
from edgesched.errors import ConfigError
from edgesched.serve.records import COLUMNS

#: Figures set side by side, with how they are shown.
COMPARED = (
    ("latency_mean_s", "mean latency (ms)", 1e3),
    ("latency_p50_s", "p50 latency (ms)", 1e3),
    ("latency_p95_s", "p95 latency (ms)", 1e3),
    ("latency_p99_s", "p99 latency (ms)", 1e3),
    ("slo_attainment", "SLO met (%)", 1e2),
    ("throughput_rps", "throughput (req/s)", 1.0),
    ("offload_rate", "offloaded (%)", 1e2),
)


@dataclass(frozen=True)
class Comparison:
    """The measured and the simulated metrics of one workload."""

    real: Metrics
    simulated: Metrics

    def rows(self) -> list[tuple[str, float, float, float]]:
        """``(figure, real, simulated, simulated / real)`` per compared figure, in display
        units; the ratio is NaN where the real figure is 0."""
        out = []
        for key, label, scale in COMPARED:
            real = float(getattr(self.real, key)) * scale
            sim = float(getattr(self.simulated, key)) * scale
            out.append((label, real, sim, sim / real if real else float("nan")))
        return out

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready dict: both metrics and the ratios."""
        ratios = {key: row[3] for (key, _, _), row in zip(COMPARED, self.rows(), strict=True)}
        return {"real": self.real.to_dict(), "simulated": self.simulated.to_dict(), "ratio": ratios}


def read_records(path: Path) -> dict[str, np.ndarray]:
    """The records' columns as arrays, sorted by arrival time.

    Raises:
        ConfigError: unreadable file, missing columns, bad numbers or no rows.
    """
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = set(COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise ConfigError(
                    f"{path}: not a served-request record file; missing columns {sorted(missing)}"
                )
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path}: cannot read records: {exc}") from None
    if not rows:
        raise ConfigError(f"{path}: no records; serve some requests with --records first")
    try:
        cols = {
            "time_s": np.array([float(r["time_s"]) for r in rows]),
            "latency_s": np.array([float(r["latency_s"]) for r in rows]),
            "slo_s": np.array([float(r["slo_s"]) for r in rows]),
            "offloaded": np.array([r["offloaded"] == "1" for r in rows]),
            "model": np.array([r["model"] for r in rows]),
            "input_bytes": np.array([int(r["input_bytes"]) for r in rows]),
        }
    except ValueError as exc:
        raise ConfigError(f"{path}: bad number in the records: {exc}") from None
    order = np.argsort(cols["time_s"], kind="stable")
    return {k: v[order] for k, v in cols.items()}


def compare_records(path: str | Path, cluster: Cluster, policy: str, seed: int = 0) -> Comparison:
    """Simulate the requests recorded in ``path`` on ``cluster`` with ``policy``; compare.

    Raises:
        ConfigError: bad records, or records of models the cluster does not deploy.
        UnknownNameError: an unknown policy.
    """
    from edgesched.sim.runner import simulate

    path = Path(path)
    rec = read_records(path)
    names = tuple(dict.fromkeys(rec["model"].tolist()))
    models = np.array([names.index(m) for m in rec["model"]])
    times = rec["time_s"]
    with tempfile.TemporaryDirectory(prefix="edgesched-compare-") as tmp:
        trace = Path(tmp) / "trace.csv"
        with trace.open("w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle)
            out.writerow(("time_s", "model", "slo_s", "input_bytes"))
            for row in zip(times, rec["model"], rec["slo_s"], rec["input_bytes"], strict=True):
                out.writerow(row)
        loads = {
            m: ModelLoad(weight=1.0, slo_s=float(rec["slo_s"][models == i][0]))
            for i, m in enumerate(names)
        }
        scenario = ScenarioConfig(
            name=f"records {path.name}",
            seed=seed,
            requests=len(times),
            models=loads,
            arrivals=TraceArrivals(kind="trace", path=str(trace)),
        )
        simulated = simulate(cluster, scenario, policy, seed=seed).metrics
    end = float((times + rec["latency_s"]).max())
    real = compute_metrics(
        policy,
        rec["latency_s"],
        rec["slo_s"],
        models,
        names,
        rec["offloaded"],
        float(times[0]),
        end,
        0.0,
    )
    return Comparison(real, simulated)


__all__ = ["COMPARED", "Comparison", "compare_records", "read_records"]
