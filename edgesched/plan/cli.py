"""``edgesched plan``: choose devices and model placement by integer linear programming."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgesched._console import JsonOpt, console, progress
from edgesched.errors import EdgeschedError
from edgesched.plan.configs import Limits
from edgesched.plan.demand import DEFAULT_HEADROOM
from edgesched.plan.ilp import DEFAULT_GAP, DEFAULT_TIME_LIMIT_S
from edgesched.plan.verify import DEFAULT_POLICY

if TYPE_CHECKING:
    from edgesched.plan.planner import Plan
    from edgesched.plan.verify import Check


class ObjectiveName(StrEnum):
    """What the plan optimises."""

    efficiency = "efficiency"
    throughput = "throughput"
    cost = "cost"


def _writable(path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir() or not parent.is_dir():
        raise EdgeschedError(f"cannot write --out {path}: give a file in an existing folder")


def plan(
    budget: Annotated[float, typer.Option(help="Most money for devices, USD.")],
    max_nodes: Annotated[int, typer.Option(help="Most devices (nodes) in the cluster.")],
    out: Annotated[Path, typer.Option(help="Where to write the planned cluster.yaml.")] = Path(
        "cluster.yaml"
    ),
    scenario: Annotated[
        Path | None,
        typer.Option(
            "--scenario", "-s", help="scenario.yaml (default: the built-in default scenario)."
        ),
    ] = None,
    objective: Annotated[
        ObjectiveName,
        typer.Option(
            help="efficiency: least power at the demanded load (most inferences per joule); "
            "throughput: most capacity for the mix; cost: cheapest."
        ),
    ] = ObjectiveName.efficiency,
    power_cap: Annotated[
        float | None,
        typer.Option(help="Most power with every instance busy, W (what the supply must carry)."),
    ] = None,
    devices: Annotated[
        str | None,
        typer.Option(help="Comma-separated device kinds allowed (default: the whole catalog)."),
    ] = None,
    profile: Annotated[
        list[Path] | None,
        typer.Option(
            "--profile",
            help="A measured profile (edgesched profile --out F) calibrating the catalog; "
            "repeatable. The cluster file lists it so simulate uses it too.",
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(help="Mean arrival rate, requests/s (overrides the scenario's)."),
    ] = None,
    capacity_of: Annotated[
        Path | None,
        typer.Option(
            help="For a scenario that sets load: take load × this cluster's estimated "
            "capacity as the rate (default for the built-in scenario: the built-in cluster)."
        ),
    ] = None,
    headroom: Annotated[
        float,
        typer.Option(help="Capacity kept above the busiest arrival state's rate (>= 1)."),
    ] = DEFAULT_HEADROOM,
    max_instances: Annotated[
        int, typer.Option(min=1, help="Most instances of one model on one device.")
    ] = Limits.max_instances,
    max_total: Annotated[
        int, typer.Option(min=1, help="Most model instances on one device.")
    ] = Limits.max_total,
    max_models: Annotated[
        int | None,
        typer.Option(min=1, help="Most distinct models on one device (default: as many as fit)."),
    ] = None,
    time_limit: Annotated[
        float, typer.Option(help="Time limit of each MILP solve, seconds.")
    ] = DEFAULT_TIME_LIMIT_S,
    gap: Annotated[
        float, typer.Option(help="Relative optimality gap at which a solve stops.")
    ] = DEFAULT_GAP,
    baselines: Annotated[
        bool,
        typer.Option(help="Also plan greedily and with one device kind, and compare."),
    ] = True,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Simulate the planned cluster on the scenario and compare with the prediction.",
        ),
    ] = False,
    policy: Annotated[
        str, typer.Option(help="Routing policy of the --verify simulation.")
    ] = DEFAULT_POLICY,
    requests: Annotated[
        int | None,
        typer.Option(min=1, help="Requests of the --verify simulation (default: the scenario's)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Choose which devices to buy and which models to run on each, by integer linear program.

    Every device kind's feasible mixes of model instances (fitting memory, every model within its
    SLO under the interference of the mix) are enumerated; integer variables count the devices
    running each mix. The plan meets every model's demand (its mean rate × the busiest arrival
    state's factor × --headroom) within --budget, --max-nodes and --power-cap, at the best
    --objective. It is written as a cluster file that `edgesched simulate -c OUT` runs as is, and
    compared with a greedy plan (throughput per dollar) and the best one-kind plan. See
    docs/planner.md for the formulation.
    """
    from edgesched.bench.scenarios import default_cluster_path, default_scenario_path
    from edgesched.core.scenario import ScenarioConfig
    from edgesched.plan.output import plan_dict, write_cluster
    from edgesched.plan.planner import PlanRequest, make_plan
    from edgesched.plan.verify import verify as run_check

    _writable(out)
    request = PlanRequest(
        scenario=ScenarioConfig.load_file(scenario or default_scenario_path()),
        budget_usd=budget,
        max_nodes=max_nodes,
        objective=objective.value,  # type: ignore[arg-type]
        power_cap_w=power_cap,
        devices=[d.strip() for d in devices.split(",") if d.strip()] if devices else None,
        profiles=tuple(profile or ()),
        rate_rps=rate,
        reference=capacity_of or (None if scenario else default_cluster_path()),
        headroom=headroom,
        limits=Limits(max_instances, max_total, max_models),
        time_limit_s=time_limit,
        gap=gap,
        baselines=baselines,
    )
    with progress(as_json) as bar:
        tasks: dict[str, int] = {}

        def report(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done)

        result = make_plan(request, report)
    write_cluster(result, out)
    check = None
    if verify:
        total = requests or request.scenario.requests
        with progress(as_json) as bar:
            task = bar.add_task(f"simulating with {policy}", total=total)
            check = run_check(
                result, out, policy, requests, lambda n: bar.update(task, completed=n)
            )
    if as_json:
        data = plan_dict(result, out)
        if check is not None:
            data["verify"] = check.to_dict()
        print(json.dumps(data))
        return
    _print(result, out, check)


def _print(result: Plan, out: Path, check: Check | None) -> None:
    from edgesched.plan.tables import check_table, comparison_table, nodes_table

    demand, sol = result.demand, result.solution
    console.print(
        f"[bold]{result.request.scenario.name}[/bold]: {demand.total_rps:,.0f} requests/s "
        f"({demand.basis}); capacity provisioned × {demand.provision:.3g} "
        f"(busiest arrival state × {demand.peak_factor:.3g}, headroom × {demand.headroom:.3g})"
    )
    console.print(nodes_table(result))
    console.print(comparison_table(result))
    gap = "n/a" if sol.gap is None else f"{sol.gap:.2%}"
    console.print(
        f"MILP: {sol.status}, objective {sol.objective:,.6g}, gap {gap}, {sol.solve_s:.2f} s; "
        f"{len(result.configs):,} configurations kept of {result.configs.enumerated:,} "
        f"enumerated ({result.enumerate_s:.2f} s)"
    )
    console.print(f"cluster written to {out} (edgesched simulate -c {out})")
    if check is not None:
        console.print(check_table(check))
