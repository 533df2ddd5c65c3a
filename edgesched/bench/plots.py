"""PNG plots comparing runs (matplotlib, imported only when plotting)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgesched.errors import DependencyNotInstalled
from edgesched.sim.runner import Result


def import_pyplot() -> Any:
    """matplotlib.pyplot with the Agg backend, or DependencyNotInstalled naming the extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DependencyNotInstalled("matplotlib", "report") from None
    return plt


def _policy_ticks(ax: Any, names: Sequence[str]) -> None:
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)


def latency_cdf(results: Sequence[Result], path: Path) -> Path:
    """Empirical CDF of request latency per policy, log-scaled milliseconds."""
    plt = import_pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for r in results:
        lat = np.sort(r.latency_s) * 1e3
        y = np.arange(1, len(lat) + 1) / len(lat)
        step = max(1, len(lat) // 2000)  # thin the curve; keep the tail exactly
        idx = np.unique(np.concatenate([np.arange(0, len(lat), step), [len(lat) - 1]]))
        ax.plot(lat[idx], y[idx], label=r.metrics.policy, lw=1.6)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("share of requests answered")
    ax.set_title("Latency CDF per policy")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def p99_and_slo(results: Sequence[Result], path: Path) -> Path:
    """Bars of p99 latency (left) and SLO attainment (right) per policy."""
    plt = import_pyplot()
    names = [r.metrics.policy for r in results]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2))
    a.bar(names, [r.metrics.latency_p99_s * 1e3 for r in results], color="tab:red")
    a.set_yscale("log")
    a.set_ylabel("p99 latency (ms, log scale)")
    a.set_title("p99 latency")
    b.bar(names, [r.metrics.slo_attainment * 100 for r in results], color="tab:green")
    b.set_ylim(0, 100)
    b.set_ylabel("requests within SLO (%)")
    b.set_title("SLO attainment")
    for ax in (a, b):
        _policy_ticks(ax, names)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def energy_per_request(results: Sequence[Result], path: Path) -> Path:
    """Bars of energy per request per policy, split into edge and cloud nodes."""
    plt = import_pyplot()
    names = [r.metrics.policy for r in results]
    edge, cloud = [], []
    for r in results:
        is_cloud = np.array([n.is_cloud for n in r.cluster.nodes])
        edge.append(r.node_energy_j[~is_cloud].sum() / r.metrics.requests)
        cloud.append(r.node_energy_j[is_cloud].sum() / r.metrics.requests)
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    ax.bar(names, edge, label="edge nodes", color="tab:blue")
    ax.bar(names, cloud, bottom=edge, label="cloud nodes", color="tab:gray")
    ax.set_ylabel("energy per request (J, idle + dynamic)")
    ax.set_title("Energy per request")
    _policy_ticks(ax, names)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
