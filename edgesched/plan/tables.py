"""Rich tables for ``edgesched plan``: the nodes, the comparison with the baselines, the check."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from edgesched.plan.figures import Figures
from edgesched.plan.output import node_groups
from edgesched.plan.planner import Plan
from edgesched.plan.verify import Check


def nodes_table(plan: Plan) -> Table:
    """One row per node group: device, count, instances per model, mean load per node."""
    cf, fig = plan.configs, plan.figures
    table = Table(title="planned nodes", header_style="bold")
    for col in ("node", "device", "count", "instances", "load per node (req/s)"):
        table.add_column(col, justify="right" if col == "count" else "left")
    for node_id, c in node_groups(plan, fig.x):
        load = ", ".join(
            f"{m} {fig.load_rps[c, j] / fig.x[c]:,.0f}"
            for j, m in enumerate(cf.models)
            if cf.counts[c, j]
        )
        instances = ", ".join(f"{m}×{k}" for m, k in cf.describe(c).items())
        table.add_row(node_id, cf.kinds[cf.kind[c]], str(fig.x[c]), instances, load)
    return table


def _row(name: str, fig: Figures | None) -> list[str]:
    if fig is None:
        return [name, "no plan", "", "", "", "", ""]
    return [
        name,
        f"{fig.cost_usd:,.0f}",
        str(fig.nodes),
        f"{fig.power_w:,.2f}",
        f"{fig.efficiency:,.1f}",
        f"{fig.energy_per_request_j * 1e3:,.3f}",
        f"{fig.capacity_rps:,.0f}",
    ]


def comparison_table(plan: Plan) -> Table:
    """The MILP's plan beside the baselines and the MILP at each baseline's cost."""
    table = Table(title="plans compared (power at the demanded load)", header_style="bold")
    for col in ("plan", "cost $", "nodes", "power W", "inf/J", "mJ/request", "capacity req/s"):
        table.add_column(col, justify="left" if col == "plan" else "right")
    table.add_row(*_row("MILP", plan.figures))
    for b in plan.baselines:
        label = f"{b.name} ({b.device})" if b.device else b.name
        table.add_row(*_row(label, b.figures))
        if b.figures is not None:
            table.add_row(*_row(f"  MILP at ≤ {b.name}'s cost", b.matched))
    return table


def check_table(check: Check) -> Table:
    """Predicted against simulated throughput, energy per request, power and SLO attainment."""
    table = Table(
        title=f"predicted vs simulated ({check.requests:,} requests, {check.policy})",
        header_style="bold",
    )
    for col in ("figure", "predicted", "simulated", "simulated / predicted"):
        table.add_column(col, justify="left" if col == "figure" else "right")
    formats: dict[str, Any] = {
        "throughput_rps": ("throughput req/s", "{:,.1f}"),
        "energy_per_request_j": ("energy mJ/request", "{:,.4f}"),
        "power_w": ("power W", "{:,.2f}"),
        "slo_attainment": ("SLO attainment", "{:.2%}"),
    }
    ratios = check.ratios
    for key, (label, fmt) in formats.items():
        scale = 1e3 if key == "energy_per_request_j" else 1.0
        table.add_row(
            label,
            fmt.format(check.predicted[key] * scale),
            fmt.format(check.simulated[key] * scale),
            f"{ratios[key]:.3f}",
        )
    return table
