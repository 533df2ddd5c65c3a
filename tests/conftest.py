"""Shared fixtures: toy worlds, trace-driven scenarios, fixed routes and a lossless-run check."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from edgesched.core.cluster import Cluster
from edgesched.core.request import Request
from edgesched.core.scenario import ScenarioConfig
from edgesched.core.view import ClusterView
from edgesched.policies.route import RoutePolicy
from edgesched.sim.runner import Result, simulate
from tests.builders import toy_cluster

TraceRow = tuple[float, str] | tuple[float, str, Any, Any]


@pytest.fixture
def toy() -> Cluster:
    """The toy cluster of :func:`tests.builders.toy_cluster` (nodes fast, slow, cloud)."""
    return toy_cluster()


@pytest.fixture
def run_sim() -> Iterator[Callable[..., Result]]:
    """``simulate`` whose teardown asserts that no request of any run was lost."""
    results: list[Result] = []

    def run(
        cluster: Cluster,
        scenario: ScenarioConfig,
        policy: str | RoutePolicy = "least-loaded",
        seed: int | None = None,
    ) -> Result:
        result = simulate(cluster, scenario, policy, seed=seed)
        results.append(result)
        return result

    yield run
    for r in results:
        n = len(r.workload)
        assert len(r.finish_s) == len(r.node) == n
        assert r.metrics.requests == n
        assert np.all(np.isfinite(r.finish_s)), "a request never finished"
        assert np.all(r.finish_s >= r.workload.times), "a request finished before it arrived"


@pytest.fixture
def trace_scenario(tmp_path: Path) -> Callable[..., ScenarioConfig]:
    """Build a trace-driven scenario: exact arrival times, so tests can work results out by hand.

    Call it with rows ``(time_s, model)`` or ``(time_s, model, slo_s, input_bytes)`` and the
    scenario's ``models`` mapping (default: model ``a`` with a 1 s SLO and 1000-byte inputs).
    """
    counter = iter(range(1_000_000))

    def make(
        rows: Sequence[TraceRow],
        models: dict[str, dict[str, Any]] | None = None,
        requests: int | None = None,
    ) -> ScenarioConfig:
        path = tmp_path / f"trace-{next(counter)}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["time_s", "model", "slo_s", "input_bytes"])
            for row in rows:
                w.writerow([*row, "", ""][:4])
        cfg = {
            "name": "trace",
            "requests": requests or len(rows),
            "models": models or {"a": {"weight": 1, "slo_s": 1.0, "input_bytes": 1000}},
            "arrivals": {"kind": "trace", "path": str(path)},
        }
        return ScenarioConfig.parse(yaml.safe_dump(cfg))

    return make


class FixedRoute(RoutePolicy):
    """Send every request to one node, or to ``pick(request)`` when given a function."""

    name = "fixed"

    def __init__(self, node: int | Callable[[Request], int]) -> None:
        self._pick = node if callable(node) else (lambda _request: node)

    def decide(self, request: Request, view: ClusterView) -> int:
        return self._pick(request)  # type: ignore[return-value]


@pytest.fixture
def fixed_route() -> type[FixedRoute]:
    """The :class:`FixedRoute` policy class (build it with a node index or a function)."""
    return FixedRoute
