"""``edgesched offload``: measure the digits edge/cloud pair and sweep the confidence threshold."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer
from rich.table import Table

from edgesched._console import JsonOpt, console, progress
from edgesched._outputs import check_output_file, prepare_output_dir
from edgesched.core.confidence import ConfidenceSample
from edgesched.errors import EdgeschedError
from edgesched.offload.sweep import DEFAULT_LINK_MBPS, DEFAULT_RTT_MS, DEFAULT_TARGET, Point

if TYPE_CHECKING:
    from edgesched.sim.offload import OffloadSpec

offload_app = typer.Typer(
    help=(
        "Confidence offload: the edge model answers first; when its top-1 probability is below "
        "a threshold θ, the cloud model answers instead. Measure the digits pair for real and "
        "sweep θ for accuracy against latency."
    ),
    no_args_is_help=True,
)

#: Keys of sweep.json that ``sweep --json`` prints (everything but the curve).
_SUMMARY = ("sample", "link", "accuracy_target", "chosen", "edge_only", "cloud_only")

RepeatsOpt = Annotated[
    int, typer.Option(min=1, help="Timed runs per image and model; the median is recorded.")
]


# Options of `edgesched simulate` that switch on confidence offload.
OffloadOpt = Annotated[
    str | None,
    typer.Option(
        "--offload",
        help="Offload policy for the cluster's serving.offload pairs: never, always, threshold "
        "(θ from --threshold, else the pair's configured threshold) or accuracy-target. Each "
        "edge answer's confidence is drawn from the pair's measured sample. Default: no "
        "offload, unless --threshold or --accuracy-target is given.",
    ),
]
ThresholdOpt = Annotated[
    float | None,
    typer.Option("--threshold", min=0, help="θ of --offload threshold (implies it)."),
]
TargetOpt = Annotated[
    float | None,
    typer.Option(
        "--accuracy-target",
        min=0,
        max=1,
        help="Accuracy of --offload accuracy-target (implies it); θ is tuned on the sample.",
    ),
]
ConfidenceOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--confidence",
        help="A measured confidence sample (offload measure --out F) to use for its model pair "
        "instead of the shipped one; repeatable.",
    ),
]


def offload_spec(
    policy: str | None,
    threshold: float | None,
    target: float | None,
    confidence: list[Path] | None,
) -> OffloadSpec | None:
    """The simulator's offload settings from `simulate`'s options (None: no offload)."""
    from edgesched.sim.offload import OffloadSpec

    if policy is None:
        if threshold is not None and target is not None:
            raise EdgeschedError("give --threshold or --accuracy-target, not both")
        policy = "threshold" if threshold is not None else None
        policy = "accuracy-target" if target is not None else policy
    if policy is None:
        if confidence:
            raise EdgeschedError("--confidence needs --offload POLICY")
        return None
    kwargs: dict[str, float] = {}
    if threshold is not None:
        kwargs["theta"] = threshold
    if target is not None:
        kwargs["target"] = target
    samples = tuple(ConfidenceSample.load(p) for p in confidence or ())
    return OffloadSpec(policy, kwargs, samples)


def _measure(repeats: int, quiet: bool) -> ConfidenceSample:
    """Run both digits models on the held-out images, with a progress bar."""
    from edgesched.offload.measure import measure_digits

    command = shlex.join(["edgesched", *sys.argv[1:]])
    with progress(quiet) as bar:
        task = bar.add_task("running digits-edge and digits-cloud", total=2 * repeats * 450)
        return measure_digits(
            repeats=repeats,
            command=command,
            progress=lambda n: bar.update(task, completed=n),
        )


@offload_app.command("measure")
def measure(
    out: Annotated[Path, typer.Option(help="Where to write the sample (JSON).")] = Path(
        "digits-confidence.json"
    ),
    repeats: RepeatsOpt = 5,
    as_json: JsonOpt = False,
) -> None:
    """Run digits-edge and digits-cloud in onnxruntime on the 450 held-out digits images and
    write, per image, the edge confidence, whether each model is right, and both execution times.

    The package ships one such file (catalog/data/measured/digits-confidence.json); `simulate
    --offload` draws from it.
    """
    check_output_file(out, "sample")
    sample = _measure(repeats, as_json)
    try:
        sample.save(out)
    except OSError as exc:
        raise EdgeschedError(f"cannot write {out}: {exc.strerror}") from None
    summary = {
        "out": str(out),
        "inputs": len(sample),
        "edge_accuracy": sample.edge_accuracy,
        "cloud_accuracy": sample.cloud_accuracy,
        "edge_exec_median_s": float(np.median(sample.edge_exec_s)),
        "cloud_exec_median_s": float(np.median(sample.cloud_exec_s)),
    }
    if as_json:
        print(json.dumps(summary))
        return
    console.print(
        f"{len(sample)} images: digits-edge accuracy {sample.edge_accuracy:.4f} "
        f"(median {summary['edge_exec_median_s'] * 1e6:.1f} µs), digits-cloud "
        f"{sample.cloud_accuracy:.4f} (median {summary['cloud_exec_median_s'] * 1e6:.1f} µs); "
        f"written to [bold]{out}[/bold]"
    )


def _row(table: Table, name: str, p: Point) -> None:
    table.add_row(
        name,
        "—" if p.theta is None else f"{p.theta:.4f}",
        f"{p.accuracy:.4f}",
        f"{p.offload_rate:.1%}",
        f"{p.latency_mean_s * 1e3:.3f}",
        f"{p.latency_p99_s * 1e3:.3f}",
    )


@offload_app.command("sweep")
def sweep(
    link_mbps: Annotated[
        float,
        typer.Option(
            min=1e-6, help="Edge-to-cloud bandwidth in Mbit/s (default: the default cluster's WAN)."
        ),
    ] = DEFAULT_LINK_MBPS,
    rtt_ms: Annotated[
        float, typer.Option(min=0, help="Edge-to-cloud round-trip time in ms.")
    ] = DEFAULT_RTT_MS,
    accuracy_target: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            help="Accuracy the chosen θ must reach (edge alone: ~0.938, cloud alone: ~0.978).",
        ),
    ] = DEFAULT_TARGET,
    points: Annotated[int, typer.Option(min=2, help="θ values from 0 to 1 on the curve.")] = 101,
    sample: Annotated[
        Path | None,
        typer.Option(
            help="Sweep this saved sample (offload measure --out F) instead of measuring now."
        ),
    ] = None,
    repeats: RepeatsOpt = 5,
    out: Annotated[Path, typer.Option(help="Folder for sweep.json and sweep.png.")] = Path(
        "offload-sweep"
    ),
    as_json: JsonOpt = False,
) -> None:
    """Sweep the offload threshold θ from 0 to 1 on the digits pair's real outputs.

    For each θ: accuracy, offload rate, and mean and p99 latency, where a request's latency is
    the edge model's measured execution time, plus, when offloaded, RTT + input bytes /
    bandwidth + the cloud model's measured execution time. Picks the θ that reaches the accuracy
    target at the lowest latency, and compares it with edge-only and cloud-only. Writes
    OUT/sweep.json and OUT/sweep.png.
    """
    from edgesched.offload.plot import plot_sweep
    from edgesched.offload.sweep import CloudLink, run_sweep

    prepare_output_dir(out, "sweep")
    measured = ConfidenceSample.load(sample) if sample else _measure(repeats, as_json)
    result = run_sweep(measured, CloudLink.from_cli(link_mbps, rtt_ms), accuracy_target, points)
    data = result.to_dict()
    (out / "sweep.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    png = plot_sweep(result, out / "sweep.png")
    if as_json:
        print(json.dumps({"out": str(out), **{k: data[k] for k in _SUMMARY}}))
        return
    console.print(
        f"[bold]{measured.edge_model} → {measured.cloud_model}[/bold] on {len(measured)} test "
        f"images: {link_mbps:g} Mbit/s, {rtt_ms:g} ms RTT, accuracy target {accuracy_target:g}"
    )
    table = Table()
    for col in ("answer", "θ", "accuracy", "offloaded", "mean (ms)", "p99 (ms)"):
        table.add_column(col, justify="left" if col == "answer" else "right")
    _row(table, "edge-only", result.edge_only)
    _row(table, "chosen θ", result.chosen)
    _row(table, "cloud-only", result.cloud_only)
    console.print(table)
    console.print(f"Curve over {points} θ values: [bold]{out / 'sweep.json'}[/bold], plot: {png}")
