"""The ``edgesched`` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from edgesched._console import JsonOpt, console, err_console, progress
from edgesched._outputs import check_output_file, prepare_output_dir
from edgesched.bench.routing_cli import routing
from edgesched.errors import EdgeschedError
from edgesched.learn.cli import train_app
from edgesched.offload.cli import (
    ConfidenceOpt,
    OffloadOpt,
    TargetOpt,
    ThresholdOpt,
    offload_app,
    offload_spec,
)
from edgesched.plan.cli import plan
from edgesched.profile.cli import profile_app
from edgesched.serve.cli import compare, serve
from edgesched.serve.load_cli import load
from edgesched.zoo.cli import zoo_app

app = typer.Typer(
    help="Profile, plan, schedule and simulate DNN inference on edge devices plus a cloud.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
catalog_app = typer.Typer(
    help="Browse the built-in devices, models and profiles.", no_args_is_help=True
)
app.add_typer(catalog_app, name="catalog")
app.add_typer(profile_app, name="profile")
app.add_typer(zoo_app, name="zoo")
app.add_typer(offload_app, name="offload")
app.command("serve")(serve)
app.command("load")(load)
app.command("compare")(compare)
app.command("plan")(plan)
app.add_typer(train_app, name="train")
bench_app = typer.Typer(
    help="Run scenario suites over several seeds and write tables, JSON and plots.",
    no_args_is_help=True,
)
bench_app.command("routing")(routing)
app.add_typer(bench_app, name="bench")

ClusterOpt = Annotated[
    Path | None,
    typer.Option("--cluster", "-c", help="cluster.yaml (default: the built-in default cluster)."),
]
ScenarioOpt = Annotated[
    Path | None,
    typer.Option(
        "--scenario", "-s", help="scenario.yaml (default: the built-in default scenario)."
    ),
]
ProfileOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--profile",
        help="A measured profile (edgesched profile --out F) calibrating the cluster; repeatable.",
    ),
]


def _load(
    cluster: Path | None,
    scenario: Path | None,
    requests: int | None = None,
    profiles: list[Path] | None = None,
):
    from edgesched.bench.scenarios import default_cluster_path, default_scenario_path
    from edgesched.core.cluster import Cluster
    from edgesched.core.scenario import ScenarioConfig

    cl = Cluster.load(cluster or default_cluster_path())
    if profiles:
        from edgesched.profile.schema import ProfileFile

        cl = cl.with_measured([ProfileFile.load(p) for p in profiles])
    sc = ScenarioConfig.load_file(scenario or default_scenario_path())
    if requests is not None:
        if requests < 1:
            raise EdgeschedError(f"--requests must be at least 1, got {requests}")
        sc = sc.model_copy(update={"requests": requests})
    return cl, sc


@app.command()
def simulate(
    policy: Annotated[str, typer.Option("--policy", "-p", help="Routing policy name.")] = "pow2",
    policy_file: Annotated[
        Path | None,
        typer.Option(help="Trained file of --policy learned (default: the shipped one)."),
    ] = None,
    cluster: ClusterOpt = None,
    scenario: ScenarioOpt = None,
    profile: ProfileOpt = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    requests: Annotated[
        int | None, typer.Option(help="Override the scenario's number of requests.")
    ] = None,
    records: Annotated[
        Path | None, typer.Option(help="Write one CSV row per request to this file.")
    ] = None,
    offload: OffloadOpt = None,
    threshold: ThresholdOpt = None,
    accuracy_target: TargetOpt = None,
    confidence: ConfidenceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a scenario on a cluster under one routing policy and report latency, SLO and energy.

    With --offload, requests of the cluster's serving.offload edge models may be answered again
    by the cloud model (see `edgesched offload --help`); accuracy and offload rate are reported.
    """
    from edgesched.policies import make_route
    from edgesched.sim.runner import simulate as run_sim

    route = make_route(policy, policy_file)
    if records is not None:
        check_output_file(records)
    spec = offload_spec(offload, threshold, accuracy_target, confidence)
    cl, sc = _load(cluster, scenario, requests, profile)
    with progress(as_json) as bar:
        task = bar.add_task(f"simulating {policy}", total=sc.requests)
        result = run_sim(
            cl,
            sc,
            route,
            seed=seed,
            progress=lambda n: bar.update(task, completed=n),
            offload=spec,
        )
    if records is not None:
        try:
            result.write_records(records)
        except OSError as exc:
            raise EdgeschedError(f"cannot write {records}: {exc.strerror}") from None
    m = result.metrics.to_dict()
    if as_json:
        m.update(wall_s=result.wall_s, cluster=cl.name, scenario=sc.name)
        print(json.dumps(m))
        return
    from edgesched.bench.tables import metrics_table

    console.print(metrics_table([result.metrics], title=f"{sc.name} on {cl.name}"))
    if spec is not None:
        console.print(
            f"offload {spec.policy}: {result.metrics.offload_rate:.1%} answered in the cloud, "
            f"accuracy {result.metrics.accuracy:.4f}"
        )
    console.print(
        f"{result.metrics.requests:,} requests simulated in {result.wall_s:.2f} s "
        f"({result.metrics.requests / result.wall_s:,.0f} requests/s)"
        + (f"; records in {records}" if records else "")
    )


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the HTML report and PNG plots.")] = Path(
        "edgesched-report"
    ),
    cluster: ClusterOpt = None,
    scenario: ScenarioOpt = None,
    profile: ProfileOpt = None,
    requests: Annotated[
        int | None, typer.Option(help="Override the scenario's number of requests.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the default scenario under every routing policy; print a table and write a report."""
    from edgesched.bench.demo import run_all
    from edgesched.bench.report import write_report
    from edgesched.bench.tables import metrics_table

    prepare_output_dir(out)
    cl, sc = _load(cluster, scenario, requests, profile)
    with progress(as_json) as bar:
        results = run_all(cl, sc, bar)
    page = write_report(results, out, title=f"edgesched: {sc.name} on {cl.name}")
    if as_json:
        print(json.dumps({"report": str(page), "policies": [r.metrics.to_dict() for r in results]}))
        return
    console.print(metrics_table([r.metrics for r in results], title=f"{sc.name} on {cl.name}"))
    console.print(f"Report: [bold]{page}[/bold] (plots beside it)")


@app.command("policies")
def list_policies() -> None:
    """List the routing policies."""
    from edgesched.policies import names, resolve

    for name in names("route"):
        doc = (resolve("route", name).__doc__ or "").strip().splitlines()[0]
        console.print(f"[bold]{name:<24}[/bold] {doc}")


@catalog_app.command("list")
def catalog_list(as_json: JsonOpt = False) -> None:
    """List devices and models."""
    from edgesched.bench.tables import catalog_tables
    from edgesched.catalog import load_catalog

    cat = load_catalog()
    if as_json:
        from edgesched.catalog.measured import measured_profiles

        shipped = [str(m.path) for m in measured_profiles()]
        print(
            json.dumps(
                {"devices": sorted(cat.devices), "models": sorted(cat.models), "measured": shipped}
            )
        )
        return
    for table in catalog_tables(cat):
        console.print(table)
    from edgesched.bench.tables import measured_table
    from edgesched.catalog.measured import measured_profiles

    shipped = measured_profiles()
    if shipped:
        console.print(measured_table(shipped))


@catalog_app.command("show")
def catalog_show(
    name: Annotated[str, typer.Argument(help="A device or model name.")],
    as_json: JsonOpt = False,
) -> None:
    """Show one device or model with every number's source, and its profiles."""
    from edgesched.bench.tables import describe
    from edgesched.catalog import load_catalog
    from edgesched.errors import UnknownNameError

    cat = load_catalog()
    if name in cat.devices:
        spec = cat.devices[name]
    elif name in cat.models:
        spec = cat.models[name]
    else:
        raise UnknownNameError("device or model", name, [*cat.devices, *cat.models])
    if as_json:
        print(json.dumps(spec.model_dump(mode="json")))
        return
    for renderable in describe(cat, name):
        console.print(renderable)


def main() -> None:
    """Entry point: usage and edgesched errors print one line and exit with code 2."""
    try:
        app()
    except EdgeschedError as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
