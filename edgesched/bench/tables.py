"""Rich tables for metrics and the catalog."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from edgesched.catalog import Catalog
from edgesched.catalog.measured import MeasuredProfile, measured_profiles
from edgesched.core.metrics import Metrics
from edgesched.core.sourced import Sourced


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 1000 else f"{ms:,.0f}"


def metrics_table(rows: Sequence[Metrics], title: str = "") -> Table:
    """One row per run: latency (ms), SLO attainment, throughput, energy, offload rate."""
    table = Table(title=title, header_style="bold")
    for col in (
        "policy",
        "mean ms",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "SLO met",
        "req/s",
        "good req/s",
        "J/request",
        "offload",
    ):
        table.add_column(col, justify="left" if col == "policy" else "right")
    best_p99 = min(m.latency_p99_s for m in rows)
    for m in rows:
        p99 = _ms(m.latency_p99_s)
        table.add_row(
            m.policy,
            _ms(m.latency_mean_s),
            _ms(m.latency_p50_s),
            _ms(m.latency_p95_s),
            f"[green]{p99}[/green]" if m.latency_p99_s == best_p99 and len(rows) > 1 else p99,
            f"{m.slo_attainment:.1%}",
            f"{m.throughput_rps:,.0f}",
            f"{m.goodput_rps:,.0f}",
            f"{m.energy_per_request_j:.3f}",
            f"{m.offload_rate:.1%}",
        )
    return table


def catalog_tables(cat: Catalog) -> list[Table]:
    """A devices table and a models table."""
    dev = Table(title="Devices", header_style="bold")
    for col in (
        "name",
        "kind",
        "accelerator",
        "price USD",
        "memory GB",
        "idle W",
        "peak W",
        "eff. TFLOP/s",
    ):
        dev.add_column(col)
    for d in cat.devices.values():
        dev.add_row(
            d.name,
            d.kind,
            d.accelerator,
            f"{d.price_usd.value:,.0f}",
            f"{d.memory_bytes.value / 1e9:g}",
            f"{d.idle_power_w.value:g}",
            f"{d.peak_power_w.value:g}",
            f"{d.effective_flops.value / 1e12:.3g}",
        )
    mod = Table(title="Models", header_style="bold")
    for col in ("name", "task", "input", "GFLOP", "params M", "accuracy"):
        mod.add_column(col)
    for m in cat.models.values():
        acc = f"{m.accuracy.value:.3g}" if m.accuracy else "-"
        mod.add_row(
            m.name,
            m.task,
            "×".join(map(str, m.input_shape)),
            f"{m.flops.value / 1e9:.3g}",
            f"{m.params.value / 1e6:.3g}",
            acc,
        )
    return [dev, mod]


def _sourced_rows(table: Table, obj: object) -> None:
    for field, value in obj:  # type: ignore[attr-defined]
        if isinstance(value, Sourced):
            table.add_row(field, f"{value.value:g}", value.source, value.ref)
        elif value is not None and field != "name":
            table.add_row(field, str(value), "", "")


def describe(cat: Catalog, name: str) -> list[Table]:
    """Tables describing a device or model: every number with its source, then profiles."""
    spec = cat.devices.get(name) or cat.models[name]
    facts = Table(title=name, header_style="bold", show_lines=False)
    for col in ("field", "value", "source", "reference / formula"):
        facts.add_column(col, overflow="fold")
    _sourced_rows(facts, spec)
    prof = Table(title=f"profiles of {name}", header_style="bold")
    other = "model" if name in cat.devices else "device"
    for col in (other, "latency b=1 ms", "batch slope", "utilisation", "source"):
        prof.add_column(col)
    pairs = (
        [(name, m) for m in cat.models] if name in cat.devices else [(d, name) for d in cat.devices]
    )
    for device, model in pairs:
        p = cat.profile(device, model)
        prof.add_row(
            model if other == "model" else device,
            f"{p.latency_s.value * 1e3:.3g}",
            f"{p.batch_slope.value:.2f}",
            f"{p.utilisation.value:.2f}",
            p.source,
        )
    tables = [facts, prof]
    measured = measured_profiles(name if name in cat.devices else None)
    if name in cat.models:
        measured = [m for m in measured if name in m.profile.models]
    if measured:
        tables.append(measured_table(measured, f"measured profiles with {name}"))
    return tables


def measured_table(entries: Sequence[MeasuredProfile], title: str = "Measured profiles") -> Table:
    """One row per shipped measured profile: where, how, worst slowdown, power range, files."""
    table = Table(title=title, header_style="bold")
    for col in (
        "device",
        "models",
        "backend",
        "mode",
        "batches",
        "max inst.",
        "worst slowdown",
        "power W",
        "file",
        "heatmaps",
    ):
        table.add_column(col, overflow="fold")
    for e in entries:
        p = e.profile
        worst = e.worst_slowdown
        power = e.power_range_w
        src = p.idle_power.source if p.idle_power else "none"
        table.add_row(
            p.device,
            ", ".join(p.models),
            f"{p.backend.get('backend', '?')} {p.backend.get('provider', '')}",
            p.mode,
            ",".join(map(str, p.batches)),
            str(p.max_instances),
            f"{worst:.2f}×" if worst is not None else "-",
            f"{power[0]:.0f}–{power[1]:.0f} ({src})" if power else "-",
            e.path.name,
            f"{len(e.heatmaps)} PNG" if e.heatmaps else "-",
        )
    if entries:
        table.caption = f"files in {entries[0].path.parent}"
    return table
