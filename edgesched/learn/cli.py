"""``edgesched train routing``: train the learned router in the simulator and export it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgesched._console import JsonOpt, console, progress

train_app = typer.Typer(
    help="Train learned policies in the simulator (needs the package's learn extra).",
    no_args_is_help=True,
)


@train_app.command("routing")
def routing(
    out: Annotated[Path, typer.Option("--out", "-o", help="Policy file to write (.npz).")],
    cluster: Annotated[
        Path | None, typer.Option("--cluster", "-c", help="cluster.yaml (default: built-in).")
    ] = None,
    scenario: Annotated[
        Path | None, typer.Option("--scenario", "-s", help="scenario.yaml (default: built-in).")
    ] = None,
    algo: Annotated[
        str,
        typer.Option(help="ppo (MaskablePPO) or dqn (each decision credited with its outcome)."),
    ] = "ppo",
    steps: Annotated[int, typer.Option(help="Routing decisions to train on.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Seed of the learner and the episodes.")] = 0,
    episode_requests: Annotated[int, typer.Option(help="Requests per training episode.")] = 2000,
    randomize: Annotated[
        bool,
        typer.Option(help="Vary load and slow a random node in training episodes."),
    ] = True,
    eval_requests: Annotated[
        int, typer.Option(help="Requests of the evaluation run (0: skip the evaluation).")
    ] = 20_000,
    as_json: JsonOpt = False,
) -> None:
    """Train a router with Stable-Baselines3, export it for numpy, and compare it with every
    routing baseline on the scenario.

    The policy file runs without torch. `--policy learned` (simulate, demo, serve) uses the
    shipped one; add `--policy-file OUT` (simulate, serve) to use yours.
    """
    from edgesched.bench.scenarios import default_cluster_path, default_scenario_path
    from edgesched.core.cluster import Cluster
    from edgesched.core.scenario import ScenarioConfig
    from edgesched.errors import EdgeschedError
    from edgesched.learn.train import TrainConfig, evaluate, summary_row, train_routing
    from edgesched.policies import names

    if out.suffix != ".npz":
        raise EdgeschedError(f"--out {out}: policy files end in .npz")
    config = TrainConfig(algo, steps, seed, episode_requests, randomize=randomize)
    cl = Cluster.load(cluster or default_cluster_path())
    sc = ScenarioConfig.load_file(scenario or default_scenario_path())
    scorer = train_routing(cl, sc, config, out, progress=not as_json)
    rows: list[dict[str, float | str]] = []
    if eval_requests > 0:
        ev = sc.model_copy(update={"requests": eval_requests})
        baselines = [n for n in names("route") if n != "learned"]
        with progress(as_json) as bar:
            task = bar.add_task("evaluating", total=len(baselines) + 1)
            results = evaluate(cl, ev, out, baselines, tick=lambda _: bar.advance(task))
        rows = [summary_row(m) for m in results]
        scorer.meta["evaluation"] = rows
        scorer.save(out)
    if as_json:
        print(json.dumps({"policy_file": str(out), "meta": scorer.meta}))
        return
    console.print(f"policy written to [bold]{out}[/bold] ({scorer.meta['train_wall_s']} s)")
    if rows:
        from rich.table import Table

        table = Table(title=f"{sc.name} on {cl.name}, {eval_requests:,} requests")
        for col in rows[0]:
            table.add_column(col, justify="left" if col == "policy" else "right")
        for row in rows:
            table.add_row(*(str(v) for v in row.values()))
        console.print(table)
