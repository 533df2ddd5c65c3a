"""The θ sweep's figure: accuracy and offload rate (top), latency (bottom), against θ."""

from __future__ import annotations

from pathlib import Path

from edgesched.offload.sweep import Sweep


def plot_sweep(sweep: Sweep, path: Path) -> Path:
    """Draw ``sweep`` to the PNG ``path``; the chosen θ and both references are marked.

    Raises:
        DependencyNotInstalled: matplotlib is missing (``edgesched[report]``).
    """
    from edgesched.bench.plots import import_pyplot

    plt = import_pyplot()
    theta = [p.theta for p in sweep.curve]
    chosen, edge, cloud = sweep.chosen, sweep.edge_only, sweep.cloud_only
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7.5, 7.0))

    top.plot(theta, [p.accuracy for p in sweep.curve], color="tab:blue", lw=1.8, label="accuracy")
    top.axhline(edge.accuracy, color="tab:green", ls="--", lw=1, label="edge-only accuracy")
    top.axhline(cloud.accuracy, color="tab:purple", ls="--", lw=1, label="cloud-only accuracy")
    top.axhline(sweep.target, color="black", ls=":", lw=1, label=f"target {sweep.target:g}")
    top.set_ylabel("accuracy")
    rate = top.twinx()
    rate.plot(
        theta, [p.offload_rate for p in sweep.curve], color="tab:orange", lw=1.4, label="offload"
    )
    rate.set_ylim(0, 1)
    rate.set_ylabel("offload rate", color="tab:orange")
    top.axvline(chosen.theta, color="tab:red", lw=1.2, label="chosen θ")
    lines = top.get_legend_handles_labels()
    more = rate.get_legend_handles_labels()
    top.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper left")

    ms = 1e3
    bottom.plot(
        theta, [p.latency_mean_s * ms for p in sweep.curve], color="tab:blue", lw=1.8, label="mean"
    )
    bottom.plot(
        theta, [p.latency_p99_s * ms for p in sweep.curve], color="tab:brown", lw=1.4, label="p99"
    )
    bottom.axhline(edge.latency_mean_s * ms, color="tab:green", ls="--", lw=1, label="edge-only")
    bottom.axhline(cloud.latency_mean_s * ms, color="tab:purple", ls="--", lw=1, label="cloud-only")
    bottom.set_yscale("log")
    bottom.set_ylabel("latency (ms, log scale)")
    bottom.set_xlabel("confidence threshold θ (offload when the edge's top-1 probability < θ)")
    bottom.legend(fontsize=8, loc="upper left")

    bottom.axvline(chosen.theta, color="tab:red", lw=1.2)
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    top.annotate(
        f"θ = {chosen.theta:.3f}: accuracy {chosen.accuracy:.3f}, "
        f"{chosen.offload_rate:.0%} offloaded",
        (chosen.theta, sweep.target),
        xytext=(-6, 6),
        textcoords="offset points",
        ha="right",
        fontsize=8,
        color="tab:red",
    )
    bottom.annotate(
        f"mean {chosen.latency_mean_s * ms:.3g} ms, p99 {chosen.latency_p99_s * ms:.3g} ms",
        (chosen.theta, chosen.latency_mean_s * ms),
        xytext=(-6, 6),
        textcoords="offset points",
        ha="right",
        fontsize=8,
        color="tab:red",
    )
    s, link = sweep.sample, sweep.link
    top.set_title(
        f"{s.edge_model} → {s.cloud_model}: {link.bandwidth_bytes_per_s * 8 / 1e6:g} Mbit/s, "
        f"{link.rtt_s * 1e3:g} ms RTT, {len(s)} test images"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
