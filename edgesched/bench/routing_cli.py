"""``edgesched bench routing``: every routing policy on the built-in scenarios, over seeds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgesched._console import JsonOpt, console, progress


def _names(value: str | None) -> tuple[str, ...] | None:
    """``"a, b,c"`` → ``("a", "b", "c")``; None stays None."""
    if value is None:
        return None
    return tuple(n.strip() for n in value.split(",") if n.strip())


def routing(
    scenarios: Annotated[
        str,
        typer.Option(
            help="Comma-separated built-in scenarios: default, interference-heavy, throttling."
        ),
    ] = "default,interference-heavy,throttling",
    seeds: Annotated[
        int, typer.Option(help="Runs per scenario and policy; seed i is the scenario's seed + i.")
    ] = 5,
    policies: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated routing policies (default: every registered one; "
            "see `edgesched policies`)."
        ),
    ] = None,
    requests: Annotated[
        int | None, typer.Option(help="Override every scenario's number of requests.")
    ] = None,
    learned_policy: Annotated[
        Path | None,
        typer.Option(
            "--learned-policy",
            exists=True,
            dir_okay=False,
            help="Policy file for the learned router (default: the one shipped per scenario).",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Simulations run side by side in separate processes.")
    ] = 2,
    out: Annotated[
        Path, typer.Option(help="Folder for routing.json, routing.md and the PNG plots.")
    ] = Path("edgesched-bench-routing"),
    as_json: JsonOpt = False,
) -> None:
    """Run every routing policy on the built-in scenarios over several seeds.

    Per scenario and policy it reports mean and p99 latency, SLO attainment and energy per
    request (mean ± standard deviation over seeds), names the best heuristic (lowest mean latency
    among non-learned policies) and, when the learned router ran, its mean latency and energy
    per request relative to that heuristic. Scenarios with a node slowdown (throttling) also get
    the latency before, right after and at the end of the run, and a latency-over-time plot.
    """
    from edgesched._outputs import prepare_output_dir
    from edgesched.bench.routing import BenchConfig, run_bench
    from edgesched.bench.routing_report import document, renderables, write_outputs

    config = BenchConfig(
        scenarios=_names(scenarios) or (),
        seeds=seeds,
        policies=_names(policies),
        requests=requests,
        learned_policy=learned_policy,
        workers=workers,
    )
    prepare_output_dir(out)
    with progress(as_json) as bar:
        results = run_bench(config, bar)
    paths = write_outputs(results, config, out)
    if as_json:
        print(json.dumps({"out": str(out), **document(results, config)}))
        return
    for result in results:
        for renderable in renderables(result):
            console.print(renderable)
    console.print(
        f"Wrote [bold]{paths['json']}[/bold], {paths['markdown'].name} and "
        f"{len(paths) - 2} plots into {out}"
    )
