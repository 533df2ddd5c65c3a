"""A self-contained HTML report (PNG plots embedded) with the plots also written beside it."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path

from edgesched.bench import plots
from edgesched.sim.runner import Result

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
img{max-width:100%;margin:1em 0;border:1px solid #eee}
.note{color:#555;font-size:13px}
"""

_COLUMNS = (
    ("policy", lambda m: m.policy),
    ("mean ms", lambda m: f"{m.latency_mean_s * 1e3:,.1f}"),
    ("p50 ms", lambda m: f"{m.latency_p50_s * 1e3:,.1f}"),
    ("p95 ms", lambda m: f"{m.latency_p95_s * 1e3:,.1f}"),
    ("p99 ms", lambda m: f"{m.latency_p99_s * 1e3:,.1f}"),
    ("SLO met", lambda m: f"{m.slo_attainment:.1%}"),
    ("throughput req/s", lambda m: f"{m.throughput_rps:,.1f}"),
    ("goodput req/s", lambda m: f"{m.goodput_rps:,.1f}"),
    ("J/request", lambda m: f"{m.energy_per_request_j:.3f}"),
    ("offload", lambda m: f"{m.offload_rate:.1%}"),
)


def _table(results: Sequence[Result]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c, _ in _COLUMNS)
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(str(f(r.metrics)))}</td>" for _, f in _COLUMNS)
        + "</tr>"
        for r in results
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def write_report(
    results: Sequence[Result], out: str | Path, title: str = "edgesched report"
) -> Path:
    """Write ``index.html``, three PNG plots and ``metrics.json`` into ``out``; return the page."""
    if not results:
        raise ValueError("no results to report")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pngs = [
        (plots.latency_cdf(results, out / "latency_cdf.png"), "latency CDF per policy"),
        (plots.p99_and_slo(results, out / "p99_slo.png"), "p99 latency and SLO attainment"),
        (plots.energy_per_request(results, out / "energy.png"), "energy per request"),
    ]
    (out / "metrics.json").write_text(
        json.dumps([r.metrics.to_dict() for r in results], indent=2), encoding="utf-8"
    )
    first = results[0]
    nodes = ", ".join(sorted({f"{n.device.name}" for n in first.cluster.nodes}))
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">{len(first.cluster.nodes)} nodes ({html.escape(nodes)}); '
        f"{len(first.workload):,} requests of {html.escape(', '.join(first.workload.model_names))}"
        f" at {first.workload.mean_rate_rps:,.1f} req/s; every policy saw the same requests.</p>",
        _table(results),
        *(_img(p, alt) for p, alt in pngs),
        '<p class="note">Latency is arrival to answer (transfer, queueing, computation). Energy '
        "counts idle and dynamic power of every node over the run. Device and model numbers come "
        "from the catalog (<code>edgesched catalog show NAME</code> gives each source).</p>",
    ]
    page = out / "index.html"
    page.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>",
        encoding="utf-8",
    )
    return page
