"""PNG plots of the routing bench (matplotlib, imported only when plotting)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgesched.bench import routing_stats as stats
from edgesched.bench.plots import import_pyplot
from edgesched.bench.routing import ROLLING_FRACTION, ScenarioResult

#: Panels of the metrics figure: metric, axis label, scale to plot units, log axis.
_PANELS = (
    ("latency_mean_s", "mean latency (ms, log scale)", 1e3, True),
    ("latency_p99_s", "p99 latency (ms, log scale)", 1e3, True),
    ("slo_attainment", "requests within SLO (%)", 100.0, False),
    ("energy_per_request_j", "energy per request (J)", 1.0, False),
)


#: Line colours of the heuristics (tab10 without orange, which marks the learned router).
_PALETTE = (
    "tab:blue",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:gray",
    "tab:olive",
    "tab:cyan",
)


def _bar_colour(policy: str, best: str | None) -> str:
    if policy == stats.LEARNED:
        return "tab:orange"
    if policy == stats.TOLD:
        return "lightgray"
    return "tab:green" if policy == best else "tab:blue"


def _line_style(policy: str, index: int) -> dict[str, Any]:
    if policy == stats.LEARNED:
        return {"color": "tab:orange", "lw": 2.4}
    if policy == stats.TOLD:
        return {"color": "black", "lw": 1.2, "ls": "--"}
    return {"color": _PALETTE[index % len(_PALETTE)], "lw": 1.3}


def metric_bars(result: ScenarioResult, path: Path) -> Path:
    """Four panels (mean latency, p99, SLO attainment, energy per request), one bar per policy:
    the mean over seeds, a ± one standard deviation whisker and a dot per seed."""
    plt = import_pyplot()
    policies = result.policies
    x = np.arange(len(policies))
    colours = [_bar_colour(p, result.best_heuristic) for p in policies]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for ax, (key, label, scale, log) in zip(axes.flat, _PANELS, strict=True):
        means = [result.summary[p][key].mean * scale for p in policies]
        stds = [result.summary[p][key].std * scale for p in policies]
        ax.bar(x, means, yerr=stds, color=colours, alpha=0.8, capsize=3)
        for i, p in enumerate(policies):
            seeds = [r.metrics[key] * scale for r in result.runs if r.policy == p]
            ax.plot([i] * len(seeds), seeds, "k.", ms=4, zorder=3)
        if log:
            ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.set_xticks(x, policies, rotation=35, ha="right", fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(
        f"{result.name}: {result.config.name} on {result.cluster}, {len(result.seeds)} seeds "
        "(green: best heuristic, orange: learned; dots: seeds)",
        fontsize=10,
    )
    return _save(plt, fig, path)


#: The close-up panel shows the policies whose mean latency is within this factor of the best.
CLOSE_UP = 1.5


def recovery(result: ScenarioResult, path: Path) -> Path:
    """Rolling mean latency per policy (seed average) against seconds from the slowdown, with
    the before / during / after windows shaded (``after`` at the end of the range all seeds
    cover; each seed's own last window ends at its last arrival). Left: every policy, log scale;
    right: a linear close-up of the policies within :data:`CLOSE_UP` of the best mean latency."""
    slow = result.slowdown
    if slow is None:
        raise ValueError(f"scenario {result.name!r} has no slowdown to plot recovery from")
    plt = import_pyplot()
    fig, (ax_all, ax_near) = plt.subplots(1, 2, figsize=(14, 5), width_ratios=(1, 1))
    curves = {p: result.timeline(p) for p in result.policies}
    end = min(float(t[-1]) for t, _ in curves.values())
    means = {p: result.summary[p]["latency_mean_s"].mean for p in result.policies}
    best = min(means.values())
    near = [p for p in result.policies if means[p] <= CLOSE_UP * best]
    for ax, shown in ((ax_all, result.policies), (ax_near, near)):
        for i, policy in enumerate(result.policies):
            if policy in shown:
                t, latency = curves[policy]
                ax.plot(t, latency * 1e3, label=policy, **_line_style(policy, i))
        _mark_slowdown(ax, slow.node, slow.factor, result.window_s, end)
        ax.set_xlabel(f"seconds from the slowdown (at {result.slowdown_s:.1f} s on average)")
        ax.grid(True, which="both", alpha=0.3)
    ax_all.set_yscale("log")
    ax_all.set_ylabel(f"mean latency (ms, log), trailing {ROLLING_FRACTION * 100:g} % of the run")
    ax_all.set_title("every policy", fontsize=9)
    ax_near.set_ylabel("mean latency (ms)")
    ax_near.set_ylim(bottom=0)
    ax_near.set_title(f"close-up: within {CLOSE_UP:g}× of the best mean latency", fontsize=9)
    ax_near.legend(fontsize=8, loc="lower right")
    ax_all.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(
        f"{result.name}: latency over time, mean of {len(result.seeds)} seeds", fontsize=10
    )
    return _save(plt, fig, path)


def _mark_slowdown(ax: Any, node: str, factor: float, width: float, end: float) -> None:
    """The slowdown line and the shaded before / during / after windows."""
    ax.axvline(0.0, color="k", ls="--", lw=1)
    ax.annotate(
        f"{node} {factor:g}× slower",
        (0.0, 0.97),
        xycoords=("data", "axes fraction"),
        xytext=(-3, 0),
        textcoords="offset points",
        ha="right",
        va="top",
        fontsize=8,
        rotation=90,
    )
    shaded = {"before": (-width, 0.0), "during": (0.0, width), "after": (end - width, end)}
    for name, (lo, hi) in shaded.items():
        ax.axvspan(lo, hi, color="0.85", alpha=0.5, lw=0)
        ax.text(
            (lo + hi) / 2,
            0.02,
            name,
            transform=ax.get_xaxis_transform(),
            ha="center",
            fontsize=8,
            color="0.3",
        )


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
