"""What the routing bench writes: ``routing.json``, ``routing.md``, plots, and terminal tables."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from edgesched.bench import routing_plots
from edgesched.bench.routing import ROLLING_FRACTION, WINDOW_FRACTION, BenchConfig, ScenarioResult
from edgesched.bench.routing_stats import WINDOWS, Spread

#: Columns of the metrics table: header, metric, how to show one value.
_METRICS = (
    ("mean latency (ms)", "latency_mean_s", lambda v: _ms(v)),
    ("p99 latency (ms)", "latency_p99_s", lambda v: _ms(v)),
    ("SLO attainment (%)", "slo_attainment", lambda v: f"{v * 100:.1f}"),
    ("energy/request (J)", "energy_per_request_j", lambda v: f"{v:.4f}"),
)


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 1000 else f"{ms:,.0f}"


def _spread(s: Spread, show: Any) -> str:
    return "n/a" if math.isnan(s.mean) else f"{show(s.mean)} ± {show(s.std)}"


def _plain(obj: Any) -> Any:
    """JSON-ready: arrays to lists, spreads to dicts, NaN and infinities to None."""
    if isinstance(obj, Spread):
        return {"mean": _plain(obj.mean), "std": _plain(obj.std)}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def scenario_document(result: ScenarioResult) -> dict[str, Any]:
    """One scenario's runs, summary, best heuristic, learned ratios and recovery, JSON-ready."""
    best = result.best_heuristic
    doc: dict[str, Any] = {
        "scenario": result.config.name,
        "cluster": result.cluster,
        "requests": result.config.requests,
        "seeds": result.seeds,
        "policies": result.policies,
        "learned_policy": str(result.learned_policy) if result.learned_policy else None,
        "runs": [
            {
                "policy": r.policy,
                "seed": r.seed,
                "wall_s": r.wall_s,
                "metrics": r.metrics,
                **({"recovery_latency_s": r.trace.windows} if r.trace else {}),
            }
            for r in result.runs
        ],
        "summary": result.summary,
        "best_heuristic": None
        if best is None
        else {
            "policy": best,
            "latency_mean_s": result.summary[best]["latency_mean_s"].mean,
            "energy_per_request_j": result.summary[best]["energy_per_request_j"].mean,
        },
        "learned_vs_best_heuristic": result.learned_ratios,
        "recovery": None,
    }
    slow, recovery = result.slowdown, result.recovery
    if slow is not None and recovery is not None:
        doc["recovery"] = {
            "node": slow.node,
            "factor": slow.factor,
            "slowdown_s": result.slowdown_s,
            "window_fraction": WINDOW_FRACTION,
            "rolling_fraction": ROLLING_FRACTION,
            "latency_s": recovery,
            "timeline": {
                p: dict(zip(("time_s", "latency_s"), result.timeline(p), strict=True))
                for p in result.policies
            },
        }
    return _plain(doc)


def document(results: Sequence[ScenarioResult], config: BenchConfig) -> dict[str, Any]:
    """The whole bench as one JSON-ready object (what ``routing.json`` holds)."""
    return {
        "config": {
            "scenarios": list(config.scenarios),
            "seeds": config.seeds,
            "policies": config.policy_names,
            "requests": config.requests,
            "learned_policy": str(config.learned_policy) if config.learned_policy else None,
        },
        "scenarios": {r.name: scenario_document(r) for r in results},
    }


def heading(result: ScenarioResult) -> str:
    """``name: scenario on cluster, N requests × K seeds (a–b)``."""
    seeds = result.seeds
    span = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
    return (
        f"{result.name}: {result.config.name} on {result.cluster}, "
        f"{result.config.requests:,} requests × {len(seeds)} seeds ({span})"
    )


def metric_rows(result: ScenarioResult) -> list[list[str]]:
    """Per policy: name, then mean ± std over seeds of each headline metric."""
    return [
        [policy, *(_spread(result.summary[policy][key], show) for _, key, show in _METRICS)]
        for policy in result.policies
    ]


def verdict(result: ScenarioResult) -> str:
    """The best heuristic and, when the learned router ran, its ratios to it."""
    best = result.best_heuristic
    if best is None:
        return "No heuristic ran, so there is no best heuristic to compare with."
    s = result.summary[best]
    line = (
        f"Best heuristic: {best} (mean latency {_ms(s['latency_mean_s'].mean)} ms, "
        f"{s['energy_per_request_j'].mean:.4f} J/request)."
    )
    ratios = result.learned_ratios
    if ratios is None:
        return line + " The learned router did not run."
    return (
        line + f" learned / {best}: mean latency {ratios['latency_mean']:.3f}×, "
        f"energy per request {ratios['energy_per_request']:.3f}×."
    )


def recovery_rows(result: ScenarioResult) -> list[list[str]]:
    """Per policy: mean latency (ms) before, during and after the slowdown, and after/before."""
    recovery = result.recovery or {}
    rows = []
    for policy, windows in recovery.items():
        before, after = windows["before"].mean, windows["after"].mean
        ratio = f"{after / before:.2f}×" if before > 0 and not math.isnan(after) else "n/a"
        rows.append([policy, *(_spread(windows[w], _ms) for w in WINDOWS), ratio])
    return rows


def recovery_title(result: ScenarioResult) -> str:
    """What slowed down, and when."""
    slow = result.slowdown
    if slow is None:
        return ""
    width = WINDOW_FRACTION * 100
    return (
        f"Recovery: {slow.node} {slow.factor:g}× slower from {result.slowdown_s:.1f} s "
        f"(windows of {width:g} % of the run: before, right after, and the last stretch)"
    )


_RECOVERY_HEAD = ("policy", "before (ms)", "during (ms)", "after (ms)", "after / before")


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---", *["---:"] * (len(head) - 1)]) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def markdown(results: Sequence[ScenarioResult]) -> str:
    """``routing.md``: per scenario the metrics table, the verdict and recovery figures."""
    out = [
        "# Routing bench",
        "",
        "Mean ± sample standard deviation over seeds. Latency runs from arrival to answer; energy "
        "counts idle and dynamic power of every node over the run.",
    ]
    for r in results:
        out += ["", f"## {heading(r)}", ""]
        out += _md_table(["policy", *(h for h, _, _ in _METRICS)], metric_rows(r))
        out += ["", verdict(r)]
        if r.recovery is not None:
            out += ["", f"### {recovery_title(r)}", ""]
            out += _md_table(_RECOVERY_HEAD, recovery_rows(r))
    return "\n".join(out) + "\n"


def renderables(result: ScenarioResult) -> list[Table | str]:
    """What the terminal shows of one scenario: the metrics table (best heuristic in green), the
    verdict, then the recovery table if the scenario has a slowdown."""
    metrics = Table(title=heading(result), header_style="bold")
    for i, head in enumerate(["policy", *(h for h, _, _ in _METRICS)]):
        metrics.add_column(head, justify="left" if i == 0 else "right")
    for row in metric_rows(result):
        style = "green" if row[0] == result.best_heuristic else None
        metrics.add_row(*row, style=style)
    out: list[Table | str] = [metrics, f"[bold]{verdict(result)}[/bold]"]
    if result.recovery is not None:
        rec = Table(title=recovery_title(result), header_style="bold")
        for i, head in enumerate(_RECOVERY_HEAD):
            rec.add_column(head, justify="left" if i == 0 else "right")
        for row in recovery_rows(result):
            rec.add_row(*row)
        out.append(rec)
    return out


def write_outputs(
    results: Sequence[ScenarioResult], config: BenchConfig, out: Path
) -> dict[str, Path]:
    """Write ``routing.json``, ``routing.md`` and the PNG plots into ``out``; return their paths.

    Plots: ``routing-<scenario>.png`` (metrics per policy), and ``recovery-<scenario>.png``
    (latency over time) for scenarios with a slowdown.
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "routing.json", "markdown": out / "routing.md"}
    paths["json"].write_text(json.dumps(document(results, config), indent=1), encoding="utf-8")
    paths["markdown"].write_text(markdown(results), encoding="utf-8")
    for r in results:
        paths[f"plot:{r.name}"] = routing_plots.metric_bars(r, out / f"routing-{r.name}.png")
        if r.recovery is not None:
            paths[f"recovery:{r.name}"] = routing_plots.recovery(r, out / f"recovery-{r.name}.png")
    return paths
