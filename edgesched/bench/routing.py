"""The routing bench: built-in scenarios × routing policies × seeds (``edgesched bench routing``).

Every run is one :func:`~edgesched.sim.runner.simulate` call. Seed ``i`` of a scenario is the
scenario's ``seed + i``, so every policy sees the same requests for a given seed, and a run's
result depends only on its scenario, policy and seed, however many worker processes share the
runs. Runs of a scenario with node slowdowns also record how latency moved around the first
slowdown (:mod:`edgesched.bench.routing_stats` defines the windows), and such a scenario also
runs a reference when ``min-expected-completion`` runs: the same policy *told* of each slowdown
the moment it starts (:class:`ToldMinExpectedCompletion`), the latency a router that noticed at
once would reach. It is not a heuristic a user could run, so it is never the best heuristic.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress

from edgesched.bench import routing_stats as stats
from edgesched.bench.scenarios import builtin_names, builtin_paths
from edgesched.core.cluster import Cluster
from edgesched.core.request import Request
from edgesched.core.scenario import ScenarioConfig
from edgesched.core.view import ClusterView
from edgesched.errors import ConfigError
from edgesched.policies import make, names
from edgesched.policies.route_aware import MinExpectedCompletionRoute
from edgesched.sim.runner import Result, draw_workload, resolve_slowdowns, simulate

#: Scenarios the bench runs by default.
DEFAULT_SCENARIOS = ("default", "interference-heavy", "throttling")
#: Recovery windows' width, as a share of the span of arrivals.
WINDOW_FRACTION = 0.1
#: Width of the rolling mean in the latency-over-time plot, as a share of the span of arrivals.
ROLLING_FRACTION = 0.04
#: Points of the latency-over-time curve.
TIMELINE_POINTS = 300


@dataclass(frozen=True)
class BenchConfig:
    """What the bench runs.

    Attributes:
        scenarios: built-in scenario names (:func:`edgesched.bench.scenarios.builtin_names`).
        seeds: runs per scenario and policy; seed ``i`` is the scenario's ``seed + i``.
        policies: routing policy names; None means every registered one.
        requests: overrides every scenario's number of requests.
        learned_policy: policy file for the ``learned`` router instead of the shipped one.
        workers: processes running simulations side by side (1 runs them in this process).
    """

    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    seeds: int = 5
    policies: tuple[str, ...] | None = None
    requests: int | None = None
    learned_policy: Path | None = None
    workers: int = 2

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ConfigError(f"seeds must be at least 1, got {self.seeds}")
        if self.requests is not None and self.requests < 1:
            raise ConfigError(f"requests must be at least 1, got {self.requests}")
        if self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")
        if not self.scenarios:
            raise ConfigError(f"give at least one scenario (built-in: {builtin_names()})")
        if self.policies is not None and not self.policies:
            raise ConfigError(f"give at least one policy (registered: {names('route')})")
        for kind, given in (("scenario", self.scenarios), ("policy", self.policies or ())):
            twice = sorted({n for n in given if list(given).count(n) > 1})
            if twice:
                raise ConfigError(f"{kind} {', '.join(twice)} given more than once")

    @property
    def policy_names(self) -> list[str]:
        """The policies to run, in registry order unless given."""
        return list(self.policies) if self.policies is not None else names("route")


def policy_kwargs(
    policy: str, scenario: ScenarioConfig, learned_policy: Path | None = None
) -> dict[str, Any]:
    """Constructor arguments of routing policy ``policy`` for ``scenario``.

    Only the learned router takes any: ``learned_policy`` when given, else the policy file that
    ships for the scenario's name (:func:`edgesched.learn.shipped.policy_for`) when that module
    is installed, else none (the router's own default).
    """
    if policy != stats.LEARNED:
        return {}
    if learned_policy is not None:
        return {"policy_file": learned_policy}
    try:
        from edgesched.learn.shipped import policy_for
    except ImportError:
        return {}
    return {"policy_file": policy_for(scenario.name)}


class ToldMinExpectedCompletion(MinExpectedCompletionRoute):
    """``min-expected-completion`` whose profile is updated at each slowdown (a reference).

    Args:
        slowdowns: ``(time_s, node, factor)`` as :func:`~edgesched.sim.runner.resolve_slowdowns`
            gives them.
    """

    name = stats.TOLD

    def __init__(self, slowdowns: Sequence[tuple[float, int, float]]) -> None:
        self._pending = sorted(slowdowns)
        self._factor: dict[int, float] = {}

    def decide(self, request: Request, view: ClusterView) -> int:
        while self._pending and self._pending[0][0] <= request.arrival_s:
            _, node, factor = self._pending.pop(0)
            ratio = factor / self._factor.get(node, 1.0)
            self._factor[node] = factor
            for table in self._tables:
                table.scale_solo(node, ratio)
        return super().decide(request, view)


@dataclass(frozen=True)
class Job:
    """One simulation: a scenario (by built-in name and files), a policy and a seed."""

    scenario: str
    cluster_path: Path
    config: ScenarioConfig
    policy: str
    kwargs: dict[str, Any]
    seed: int


@dataclass(frozen=True)
class Trace:
    """Latency around the first slowdown of one run (times after the first arrival).

    Attributes:
        node: id of the node that slows down.
        factor: how many times slower it computes.
        slowdown_s: when the slowdown starts.
        span_s: time from the first to the last arrival.
        windows: mean latency in seconds in each recovery window (``before``, ``during``,
            ``after``).
        time_s: times of the rolling mean.
        rolling_latency_s: trailing mean latency of the requests that arrived in the last
            ``ROLLING_FRACTION × span_s`` before each time.
    """

    node: str
    factor: float
    slowdown_s: float
    span_s: float
    windows: dict[str, float]
    time_s: np.ndarray
    rolling_latency_s: np.ndarray


@dataclass(frozen=True)
class Run:
    """The outcome of one job: its metrics (``Metrics.to_dict()``) and, with slowdowns, a trace."""

    scenario: str
    policy: str
    seed: int
    metrics: dict[str, Any]
    wall_s: float
    trace: Trace | None


def trace_of(result: Result, config: ScenarioConfig) -> Trace | None:
    """The :class:`Trace` of a run of ``config``, or None when the scenario has no slowdown."""
    slowdowns = resolve_slowdowns(result.cluster, config, result.workload)
    if not slowdowns:
        return None
    at, node, factor = min(slowdowns)
    times = result.workload.times
    order = np.argsort(times, kind="stable")
    t = times[order] - times[order[0]]
    latency = result.latency_s[order]
    span = float(t[-1])
    slowdown = at - float(times[order[0]])
    grid = np.linspace(0.0, span, TIMELINE_POINTS)
    return Trace(
        node=result.cluster.nodes[node].id,
        factor=factor,
        slowdown_s=slowdown,
        span_s=span,
        windows=stats.window_means(
            t, latency, stats.recovery_windows(slowdown, span, WINDOW_FRACTION)
        ),
        time_s=grid,
        rolling_latency_s=stats.rolling_mean(t, latency, grid, ROLLING_FRACTION * span),
    )


@lru_cache(maxsize=8)
def _cluster(path: Path) -> Cluster:
    return Cluster.load(path)


def run_job(job: Job) -> Run:
    """Simulate one job (in this process or a worker)."""
    cluster = _cluster(job.cluster_path)
    if job.policy == stats.TOLD:
        workload = draw_workload(cluster, job.config, job.seed)
        route = ToldMinExpectedCompletion(resolve_slowdowns(cluster, job.config, workload))
    else:
        route = make("route", job.policy, **job.kwargs)
    result = simulate(cluster, job.config, route, seed=job.seed)
    return Run(
        job.scenario,
        job.policy,
        job.seed,
        result.metrics.to_dict(),
        result.wall_s,
        trace_of(result, job.config),
    )


@dataclass
class ScenarioResult:
    """All runs of one scenario and what they add up to.

    Attributes:
        name: built-in scenario name.
        config: the scenario as run (``--requests`` applied).
        cluster: the cluster's name.
        seeds: the seeds run, the same for every policy.
        policies: the policies run, in order.
        learned_policy: the policy file the learned router ran with, if it ran with one.
        runs: one per policy and seed, ordered by policy then seed.
    """

    name: str
    config: ScenarioConfig
    cluster: str
    seeds: list[int]
    policies: list[str]
    learned_policy: Path | None = None
    runs: list[Run] = field(default_factory=list)

    @cached_property
    def summary(self) -> dict[str, dict[str, stats.Spread]]:
        """Policy → metric → mean and standard deviation over seeds."""
        return stats.summarise((r.policy, r.metrics) for r in self.runs)

    @cached_property
    def best_heuristic(self) -> str | None:
        """The non-learned policy with the lowest mean latency."""
        return stats.best_heuristic(self.summary)

    @cached_property
    def learned_ratios(self) -> dict[str, float] | None:
        """The learned router's mean latency and energy per request over the best heuristic's."""
        return stats.learned_ratios(self.summary, self.best_heuristic)

    @cached_property
    def recovery(self) -> dict[str, dict[str, stats.Spread]] | None:
        """Policy → recovery window → mean latency spread over seeds; None without slowdowns."""
        traced = [r for r in self.runs if r.trace is not None]
        if not traced:
            return None
        out: dict[str, dict[str, stats.Spread]] = {}
        for policy in self.policies:
            windows = [r.trace.windows for r in traced if r.policy == policy and r.trace]
            out[policy] = {w: stats.Spread.of(x[w] for x in windows) for w in stats.WINDOWS}
        return out

    def timeline(self, policy: str) -> tuple[np.ndarray, np.ndarray]:
        """Seed-averaged rolling mean latency of ``policy`` (seconds) against seconds from the
        slowdown, over the time range every seed covers."""
        curves = [
            (r.trace.time_s - r.trace.slowdown_s, r.trace.rolling_latency_s)
            for r in self.runs
            if r.policy == policy and r.trace is not None
        ]
        return stats.mean_curve(curves, TIMELINE_POINTS)

    @property
    def slowdown(self) -> Trace | None:
        """The trace of the first run (which node, how much slower), or None without slowdowns."""
        return next((r.trace for r in self.runs if r.trace is not None), None)

    @property
    def slowdown_s(self) -> float:
        """When the slowdown starts, after the first arrival, averaged over runs (NaN if none)."""
        times = [r.trace.slowdown_s for r in self.runs if r.trace is not None]
        return float(np.mean(times)) if times else float("nan")

    @property
    def window_s(self) -> float:
        """Width of the recovery windows, averaged over runs (NaN without slowdowns)."""
        spans = [r.trace.span_s for r in self.runs if r.trace is not None]
        return WINDOW_FRACTION * float(np.mean(spans)) if spans else float("nan")


def plan_jobs(config: BenchConfig) -> tuple[list[ScenarioResult], list[Job]]:
    """Empty results and the jobs to fill them, checking every name and policy file first.

    Raises:
        UnknownNameError: an unknown scenario or policy.
        ConfigError: a policy rejects its arguments (e.g. a bad policy file).
    """
    results, jobs = [], []
    policies = config.policy_names
    for name in config.scenarios:
        cluster_path, scenario_path = builtin_paths(name)
        scenario = ScenarioConfig.load_file(scenario_path)
        if config.requests is not None:
            scenario = scenario.model_copy(update={"requests": config.requests})
        seeds = [scenario.seed + i for i in range(config.seeds)]
        run = list(policies)
        if scenario.slowdowns and "min-expected-completion" in run:
            run.append(stats.TOLD)
        result = ScenarioResult(name, scenario, _cluster(cluster_path).name, seeds, run)
        for policy in run:
            if policy == stats.TOLD:
                jobs.extend(Job(name, cluster_path, scenario, policy, {}, s) for s in seeds)
                continue
            kwargs = policy_kwargs(policy, scenario, config.learned_policy)
            make("route", policy, **kwargs)  # fail now, not after an hour of other runs
            jobs.extend(Job(name, cluster_path, scenario, policy, kwargs, s) for s in seeds)
            if policy == stats.LEARNED:
                result.learned_policy = kwargs.get("policy_file")
        results.append(result)
    return results, jobs


def run_bench(config: BenchConfig, progress: Progress | None = None) -> list[ScenarioResult]:
    """Run every job of ``config`` and return one result per scenario, runs in a fixed order."""
    results, jobs = plan_jobs(config)
    task = progress.add_task("routing bench", total=len(jobs)) if progress else None
    runs = []
    for run in _execute(jobs, config.workers):
        runs.append(run)
        if progress is not None and task is not None:
            progress.update(
                task, advance=1, description=f"{run.scenario} / {run.policy} / seed {run.seed}"
            )
    by_name = {r.name: r for r in results}
    rank = {(j.scenario, j.policy, j.seed): i for i, j in enumerate(jobs)}
    for run in sorted(runs, key=lambda r: rank[(r.scenario, r.policy, r.seed)]):
        by_name[run.scenario].runs.append(run)
    return results


def _execute(jobs: Sequence[Job], workers: int) -> Iterator[Run]:
    """Yield each job's :class:`Run` as it finishes."""
    if workers == 1 or len(jobs) == 1:
        yield from map(run_job, jobs)
        return
    # spawn: the parent's progress-bar thread must not be forked into the workers
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()
