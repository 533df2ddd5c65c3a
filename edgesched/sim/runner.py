"""``simulate(cluster, scenario, policy) -> Result``: the simulator's front door."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesched.core.cluster import Cluster
from edgesched.core.metrics import Metrics, compute_metrics
from edgesched.core.scenario import ScenarioConfig, TraceArrivals
from edgesched.errors import ConfigError
from edgesched.policies import RoutePolicy, make
from edgesched.sim.arrivals import Workload, build_workload
from edgesched.sim.capacity import capacity_rps
from edgesched.sim.engine import Engine, RunRecords
from edgesched.sim.interference import (
    InterferenceModel,
    NoInterference,
    ParametricInterference,
)
from edgesched.sim.offload import OffloadSpec, plan_offload
from edgesched.sim.power import PowerModel


@dataclass
class Result:
    """A finished run: the workload, per-request columns, energy and metrics.

    Attributes:
        cluster: the cluster simulated.
        workload: the requests (with offload, its model names include the cloud models).
        node: serving node index per request (for an offloaded one, the edge node).
        start_s: computation start per request.
        finish_s: answer time per request.
        energy_j: dynamic energy share per request.
        node_energy_j: total (idle + dynamic) energy per node.
        metrics: the aggregates.
        wall_s: wall-clock seconds the simulation took.
        offloaded: per request, answered in the cloud (served there, or offloaded to it).
        correct: per request, 1 if its answer was right, 0 if wrong, -1 where not known.
    """

    cluster: Cluster
    workload: Workload
    node: np.ndarray
    start_s: np.ndarray
    finish_s: np.ndarray
    energy_j: np.ndarray
    node_energy_j: np.ndarray
    metrics: Metrics
    wall_s: float
    offloaded: np.ndarray
    correct: np.ndarray

    @property
    def latency_s(self) -> np.ndarray:
        """Arrival to answer, per request."""
        return self.finish_s - self.workload.times

    def write_records(self, path: str | Path) -> None:
        """Write one CSV row per request.

        A run that knows answers' correctness (offloading models) adds a ``correct`` column:
        1, 0, or empty where not known.
        """
        wl, names = self.workload, self.workload.model_names
        ids = [node.id for node in self.cluster.nodes]
        lat = self.latency_s
        with_correct = bool((self.correct >= 0).any())
        with Path(path).open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(
                [
                    "id",
                    "model",
                    "node",
                    "arrival_s",
                    "start_s",
                    "finish_s",
                    "latency_s",
                    "slo_s",
                    "slo_met",
                    "energy_j",
                    "offloaded",
                    *(["correct"] if with_correct else []),
                ]
            )
            cols = zip(
                wl.models.tolist(),
                self.node.tolist(),
                wl.times.tolist(),
                self.start_s.tolist(),
                self.finish_s.tolist(),
                lat.tolist(),
                wl.slo_s.tolist(),
                self.energy_j.tolist(),
                self.offloaded.tolist(),
                self.correct.tolist(),
                strict=True,
            )
            for i, (m, n, a, s, fin, la, slo, e, off, ok) in enumerate(cols):
                row = [
                    i,
                    names[m],
                    ids[n],
                    f"{a:.9f}",
                    f"{s:.9f}",
                    f"{fin:.9f}",
                    f"{la:.9f}",
                    slo,
                    int(la <= slo),
                    f"{e:.6g}",
                    int(off),
                ]
                if with_correct:
                    row.append("" if ok < 0 else ok)
                w.writerow(row)


def make_interference(cluster: Cluster) -> InterferenceModel:
    """The interference model named in the cluster file, measured matrices first where given."""
    if cluster.interference.kind == "none":
        return NoInterference()
    model: InterferenceModel = ParametricInterference(
        cluster.catalog, cluster.interference.alpha_scale
    )
    if cluster.measured:
        from edgesched.profile.fit import MeasuredInterference

        model = MeasuredInterference(cluster.measured, fallback=model)
    return model


def resolve_rate(cluster: Cluster, scenario: ScenarioConfig) -> float | None:
    """The scenario's absolute arrival rate (``load`` × estimated capacity), or None for traces."""
    if isinstance(scenario.arrivals, TraceArrivals):
        return None
    if scenario.rate_rps is not None:
        return scenario.rate_rps
    assert scenario.load is not None
    mix = {m: ml.weight for m, ml in scenario.models.items()}
    return scenario.load * capacity_rps(cluster, mix, default_input_bytes(cluster, scenario))


def default_input_bytes(cluster: Cluster, scenario: ScenarioConfig) -> dict[str, int]:
    """Bytes per request for each scenario model (the scenario's, else the raw input size)."""
    out = {}
    for name, ml in scenario.models.items():
        size = ml.input_bytes
        out[name] = cluster.catalog.model(name).input_bytes if size is None else size
    return out


def _seeds(seed: int) -> list[np.random.SeedSequence]:
    """Independent streams for the workload, the routing policy and offload, from one seed.

    Spawned children do not depend on how many are spawned, so adding a stream leaves the
    others (and every earlier result) unchanged.
    """
    return np.random.SeedSequence(seed).spawn(3)


def draw_workload(cluster: Cluster, scenario: ScenarioConfig, seed: int | None = None) -> Workload:
    """The requests :func:`simulate` runs for this scenario and seed (to replay them for real)."""
    seed = scenario.seed if seed is None else seed
    return build_workload(
        scenario,
        resolve_rate(cluster, scenario),
        default_input_bytes(cluster, scenario),
        np.random.default_rng(_seeds(seed)[0]),
    )


def simulate(
    cluster: Cluster,
    scenario: ScenarioConfig,
    policy: str | RoutePolicy,
    seed: int | None = None,
    progress: Callable[[int], None] | None = None,
    offload: OffloadSpec | None = None,
) -> Result:
    """Run ``scenario`` on ``cluster`` with a routing policy (a registry name or an instance).

    Args:
        cluster: the cluster.
        scenario: the validated scenario.
        policy: e.g. ``"pow2"`` or a :class:`RoutePolicy`.
        seed: overrides the scenario's seed.
        progress: called with the number of arrivals handled, now and then.
        offload: confidence offload of the cluster's ``serving.offload`` pairs (None: none; see
            :mod:`edgesched.sim.offload`).

    Raises:
        ConfigError: the scenario asks for a model the cluster does not serve, or the offload
            cannot be set up (see :func:`~edgesched.sim.offload.plan_offload`).
        UnknownNameError: unknown policy name.
    """
    missing = sorted(set(scenario.models) - set(cluster.model_names))
    if missing:
        raise ConfigError(
            f"scenario {scenario.name!r} requests {missing}, which cluster {cluster.name!r} "
            f"does not deploy (it serves {list(cluster.model_names)})"
        )
    route = make("route", policy) if isinstance(policy, str) else policy
    seed = scenario.seed if seed is None else seed
    workload = draw_workload(cluster, scenario, seed)
    began = time.perf_counter()
    engine = make_engine(cluster, scenario, workload, route, seed, progress, offload)
    rec = engine.run()
    wall = time.perf_counter() - began
    return collect(engine, rec, route.name, wall)


def make_engine(
    cluster: Cluster,
    scenario: ScenarioConfig,
    workload: Workload,
    route: RoutePolicy,
    seed: int,
    progress: Callable[[int], None] | None = None,
    offload: OffloadSpec | None = None,
) -> Engine:
    """The engine that :func:`simulate` runs (a training environment steps it instead)."""
    seeds = _seeds(seed)
    plan = None
    if offload is not None:
        workload, plan = plan_offload(cluster, workload, offload, np.random.default_rng(seeds[2]))
    return Engine(
        cluster,
        workload,
        route,
        make_interference(cluster),
        PowerModel(cluster.catalog),
        np.random.default_rng(seeds[1]),
        progress,
        resolve_slowdowns(cluster, scenario, workload),
        plan,
    )


def resolve_slowdowns(
    cluster: Cluster, scenario: ScenarioConfig, workload: Workload
) -> list[tuple[float, int, float]]:
    """The scenario's node slowdowns as ``(time_s, node index, factor)``.

    Raises:
        ConfigError: a slowdown names a node the cluster does not have.
    """
    index = {node.id: node.index for node in cluster.nodes}
    begin = float(workload.times[0]) if len(workload) else 0.0
    span = float(workload.times[-1]) - begin if len(workload) else 0.0
    out = []
    for s in scenario.slowdowns:
        if s.node not in index:
            raise ConfigError(
                f"scenario {scenario.name!r}: slowdown of node {s.node!r}, which cluster "
                f"{cluster.name!r} does not have (its nodes: {sorted(index)})"
            )
        at = begin + (s.at_s if s.at_s is not None else (s.at_fraction or 0.0) * span)
        out.append((at, index[s.node], s.factor))
    return out


def collect(engine: Engine, rec: RunRecords, policy_name: str, wall: float) -> Result:
    """The :class:`Result` of a finished engine run."""
    cluster, workload = engine.cluster, engine.workload
    node = np.frombuffer(rec.node, dtype=np.int32)
    start = np.frombuffer(rec.start_s, dtype=np.float64)
    finish = np.frombuffer(rec.finish_s, dtype=np.float64)
    energy = np.frombuffer(rec.energy_j, dtype=np.float64)
    end = float(finish.max())
    idle = np.array([nd.device.idle_power_w.value for nd in cluster.nodes])
    begin = float(workload.times[0])
    node_energy = idle * (end - begin) + np.array(engine.dynamic_energy_j)
    is_cloud = np.array([nd.is_cloud for nd in cluster.nodes])
    offloaded = is_cloud[node] | np.frombuffer(rec.offloaded, dtype=np.int8).astype(bool)
    correct = np.frombuffer(rec.correct, dtype=np.int8)
    metrics = compute_metrics(
        policy_name,
        finish - workload.times,
        workload.slo_s,
        workload.models,
        workload.model_names,
        offloaded,
        begin,
        end,
        float(node_energy.sum()),
        correct,
    )
    return Result(
        cluster,
        workload,
        node,
        start,
        finish,
        energy,
        node_energy,
        metrics,
        wall,
        offloaded,
        correct,
    )
