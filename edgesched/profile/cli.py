"""``edgesched profile``: measure models on this machine, and draw a profile's matrices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgesched._console import console, progress
from edgesched.errors import EdgeschedError

profile_app = typer.Typer(
    help="Measure solo latency, the concurrency performance matrix and power on this machine.",
    invoke_without_command=True,
)


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise EdgeschedError(
            f"{what} must be comma-separated whole numbers, got {text!r}"
        ) from None
    if not values:
        raise EdgeschedError(f"{what} is empty")
    return values


def _check_models(models: list[str]) -> None:
    from edgesched.zoo.registry import ZOO

    for m in models:
        if m.endswith(".onnx"):
            if not Path(m).is_file():
                raise EdgeschedError(f"model file {m} does not exist")
        elif m not in ZOO:
            from edgesched.errors import UnknownNameError

            raise UnknownNameError("zoo model (or .onnx file)", m, ZOO)


@profile_app.callback()
def profile(
    ctx: typer.Context,
    models: Annotated[
        str | None,
        typer.Option(help="Comma-separated zoo names or .onnx files, e.g. resnet18,mobilenet_v2."),
    ] = None,
    max_instances: Annotated[
        int, typer.Option(help="Most running instances of each model in the matrix (0: solo only).")
    ] = 2,
    batches: Annotated[str, typer.Option(help="Batch sizes for solo latency, e.g. 1,2,4,8.")] = "1",
    matrix_batch: Annotated[
        int, typer.Option(help="Batch size of every instance in the matrix.")
    ] = 1,
    name: Annotated[
        str,
        typer.Option(
            help="Device name recorded in the profile (a catalog name lets the simulator use it)."
        ),
    ] = "this-machine",
    out: Annotated[Path, typer.Option(help="Profile JSON to write.")] = Path("profile.json"),
    backend: Annotated[str, typer.Option(help="onnxruntime or torch.")] = "onnxruntime",
    device: Annotated[str, typer.Option(help="cpu, cuda, or tensorrt (onnxruntime).")] = "cpu",
    mode: Annotated[
        str,
        typer.Option(
            help="processes (independent applications) or threads (one app; a CUDA stream each)."
        ),
    ] = "processes",
    threads: Annotated[int, typer.Option(help="Intra-op threads per instance.")] = 1,
    solo_time: Annotated[
        float, typer.Option(help="Seconds measured per solo configuration.")
    ] = 1.0,
    cell_time: Annotated[float, typer.Option(help="Seconds measured per matrix cell.")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Profile models: solo latency by batch, slowdown beside co-runners, throughput and power.

    Example: edgesched profile --models resnet18,mobilenet_v2 --max-instances 2 --batches 1,2,4
    --name x86-mini-pc --out profile.json
    """
    if ctx.invoked_subcommand is not None:
        return
    if not models:
        raise EdgeschedError("give --models (e.g. --models resnet18,mobilenet_v2); see --help")
    if mode not in ("processes", "threads"):
        raise EdgeschedError(f"--mode must be processes or threads, got {mode!r}")
    from edgesched.catalog import load_catalog
    from edgesched.profile.runner import Profiler, ProfileSettings

    model_list = [m.strip() for m in models.split(",") if m.strip()]
    _check_models(model_list)
    idle_w, peak_w = 10.0, 65.0
    cat = load_catalog()
    if name in cat.devices:  # the estimate, when no meter exists, uses the device's figures
        idle_w, peak_w = cat.device(name).idle_power_w.value, cat.device(name).peak_power_w.value
    settings = ProfileSettings(
        device_name=name,
        models=tuple(model_list),
        batches=_ints(batches, "--batches"),
        max_instances=max_instances,
        matrix_batch=matrix_batch,
        backend=backend,
        device=device,
        threads=threads,
        mode=mode,  # type: ignore[arg-type]
        solo_time_s=solo_time,
        cell_time_s=cell_time,
        idle_w=idle_w,
        peak_w=peak_w,
    )
    with progress(as_json) as bar:
        profiler = Profiler(settings)
        task = bar.add_task("loading models", total=profiler.total_steps)
        profiler.progress = lambda done, total, what: bar.update(
            task, completed=done, description=what
        )
        result = profiler.run()
    result.save(out)
    worst = max(result.matrix, key=lambda c: c.slowdown, default=None)
    powers = [r.power.mean_w for r in (*result.solo, *result.matrix) if r.power]
    summary = {
        "profile": str(out),
        "device": result.device,
        "backend": result.backend.get("backend"),
        "provider": result.backend.get("provider"),
        "power_meter": result.idle_power.meter if result.idle_power else None,
        "power_source": result.idle_power.source if result.idle_power else None,
        "solo_latency_s": {f"{r.model}@{r.batch}": r.latency_s.median for r in result.solo},
        "worst_slowdown": worst.slowdown if worst else None,
        "worst_slowdown_cell": {"probe": worst.probe, "running": worst.running} if worst else None,
        "power_w_range": [min(powers), max(powers)] if powers else None,
        "fit": fit_rows(out) if result.matrix else [],
    }
    if as_json:
        print(json.dumps(summary))
        return
    console.print(
        f"Profile written to [bold]{out}[/bold] ({len(result.solo)} solo runs, "
        f"{len(result.matrix)} matrix cells)."
    )
    if worst is not None:
        console.print(
            f"Worst slowdown: {worst.slowdown:.2f}× for a new {worst.probe} beside {worst.running}."
        )
    if powers:
        console.print(
            f"Power: {min(powers):.1f}–{max(powers):.1f} W ({summary['power_meter']}, "
            f"{summary['power_source']})."
        )


@profile_app.command("plot")
def plot(
    profile_file: Annotated[
        Path, typer.Argument(help="A profile JSON written by edgesched profile.")
    ],
    out: Annotated[Path, typer.Option(help="Folder for the PNG heatmaps.")] = Path("profile-plots"),
) -> None:
    """Draw a profile's performance matrix as heatmaps (slowdown, throughput, power).

    One PNG per pair of models, named after the profile file, with every other model at zero.
    """
    from edgesched.profile.plot import plot_profile
    from edgesched.profile.schema import ProfileFile

    files = plot_profile(ProfileFile.load(profile_file), out, prefix=profile_file.stem)
    for f in files:
        console.print(str(f))


def fit_rows(profile_path: Path) -> list[dict[str, object]]:
    """Per probe model: parametric coefficients and the fit's error over the measured grid."""
    from edgesched.profile.fit import fit_probe
    from edgesched.profile.schema import ProfileFile

    profile = ProfileFile.load(profile_path)
    rows = []
    for probe in profile.models:
        if not any(c.probe == probe for c in profile.matrix):
            continue
        f = fit_probe(profile, probe)
        rows.append(
            {
                "probe": probe,
                "slowdown_per_instance": dict(zip(f.models, map(float, f.coef), strict=True)),
                "rmse": f.rmse,
                "max_rel_err": f.max_rel_err,
                "cells": len(f.table),
            }
        )
    return rows


@profile_app.command("fit")
def fit(
    profile_file: Annotated[
        Path, typer.Argument(help="A profile JSON written by edgesched profile.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Fit the interference model to a profile and print the fit error.

    Inside the measured grid the simulator uses the measured slowdowns as they are; outside it, the
    fitted ``1 + sum_j a_j * n_j``. The error says how far that line is from the measurements.
    """
    rows = fit_rows(profile_file)
    if as_json:
        print(json.dumps({"profile": str(profile_file), "fits": rows}))
        return
    from rich.table import Table

    table = Table(title=f"interference fit of {profile_file}", header_style="bold")
    for col in ("probe", "slowdown added per running instance", "RMSE", "max rel. error", "cells"):
        table.add_column(col)
    for r in rows:
        coef = ", ".join(f"{m} {a:.3f}" for m, a in r["slowdown_per_instance"].items())  # type: ignore[attr-defined]
        table.add_row(
            str(r["probe"]), coef, f"{r['rmse']:.3f}", f"{r['max_rel_err']:.1%}", str(r["cells"])
        )
    console.print(table)
