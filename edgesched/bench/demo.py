"""Run one scenario under every routing policy."""

from __future__ import annotations

from collections.abc import Sequence

from rich.progress import Progress

from edgesched.core.cluster import Cluster
from edgesched.core.scenario import ScenarioConfig
from edgesched.policies import names
from edgesched.sim.runner import Result, simulate


def run_all(
    cluster: Cluster,
    scenario: ScenarioConfig,
    progress: Progress | None = None,
    policies: Sequence[str] | None = None,
) -> list[Result]:
    """Simulate ``scenario`` once per routing policy (all registered ones by default).

    Every run uses the scenario's seed, so all policies see the same requests.
    """
    results = []
    chosen = list(policies) if policies is not None else names("route")
    overall = progress.add_task("policies", total=len(chosen)) if progress else None
    for name in chosen:
        task = progress.add_task(f"  {name}", total=scenario.requests) if progress else None

        def tick(n: int, task: object = task) -> None:
            if progress is not None and task is not None:
                progress.update(task, completed=n)  # type: ignore[arg-type]

        results.append(simulate(cluster, scenario, name, progress=tick))
        if progress is not None and task is not None and overall is not None:
            progress.remove_task(task)
            progress.advance(overall)
    return results
