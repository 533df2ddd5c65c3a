"""Confidence offload in the simulator: rates and accuracy follow the measured sample."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from edgesched.core.cluster import Cluster
from edgesched.core.confidence import find_sample
from edgesched.core.request import Outcome, Request
from edgesched.core.scenario import ScenarioConfig
from edgesched.core.view import ClusterView
from edgesched.errors import ConfigError
from edgesched.policies.offload import tune_threshold
from edgesched.policies.route import RoutePolicy
from edgesched.sim.offload import OffloadSpec
from edgesched.sim.runner import Result, simulate
from tests.offload.builders import sample

RTT = 0.040
CLUSTER = f"""
name: digits-site
nodes:
  - {{id: pi, device: raspberry-pi-5, count: 2, models: {{digits-edge: 2}}, link: lan}}
  - {{id: cloud, device: cloud-a100, models: {{digits-cloud: 4, digits-edge: 1}}, link: wan}}
links:
  - {{id: lan, bandwidth_bytes_per_s: 125.0e6, rtt_s: 0.0005}}
  - {{id: wan, bandwidth_bytes_per_s: 12.5e6, rtt_s: {RTT}, shared: true}}
serving:
  offload:
    digits-edge: {{threshold: 0.9, cloud_model: digits-cloud}}
"""
REQUESTS = 20_000
SAMPLE = find_sample("digits-edge", "digits-cloud")


def below(theta: float) -> np.ndarray:
    """Which measured inputs a threshold θ offloads."""
    return np.asarray(SAMPLE.confidence) < theta


def scenario(
    requests: int = REQUESTS, models: str = "digits-edge: {weight: 1, slo_s: 0.1}"
) -> ScenarioConfig:
    return ScenarioConfig.parse(
        f"name: digits\nseed: 7\nrequests: {requests}\nrate_rps: 800\nmodels: {{{models}}}\n"
    )


class EdgeOnly(RoutePolicy):
    """Alternate requests between the edge nodes serving them, and keep every outcome."""

    name = "edge-alternate"

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []

    def decide(self, request: Request, view: ClusterView) -> int:
        nodes = view.candidates(request.model)
        edge = nodes[~view.is_cloud[nodes]]
        pool = edge if len(edge) else nodes  # the cloud model runs only in the cloud
        return int(pool[request.id % len(pool)])

    def observe(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)


def run(spec: OffloadSpec | None, seed: int | None = None, **kw: object) -> Result:
    result = simulate(Cluster.parse(CLUSTER), scenario(**kw), EdgeOnly(), seed, offload=spec)
    n = len(result.workload.times)
    assert len(result.finish_s) == result.metrics.requests == n
    assert np.all(np.isfinite(result.finish_s)), "a request never finished"
    return result


def within(value: float, expected: float, n: int = REQUESTS) -> bool:
    """``value`` is a sampled proportion within 4 standard errors of ``expected``."""
    return abs(value - expected) <= 4 * np.sqrt(max(expected * (1 - expected), 1e-4) / n)


@pytest.mark.parametrize("theta", [0.5, 0.9, 0.99])
def test_offload_rate_is_the_share_of_measured_confidences_below_theta(theta: float) -> None:
    m = run(OffloadSpec("threshold", {"theta": theta})).metrics
    assert within(m.offload_rate, float(below(theta).mean()))
    assert m.accuracy is not None and within(m.accuracy, SAMPLE.accuracy(below(theta)))


def test_never_offloads_nothing_and_changes_no_timing() -> None:
    plain, never = run(None), run(OffloadSpec("never"))
    assert never.metrics.offload_rate == 0 and not never.offloaded.any()
    np.testing.assert_array_equal(plain.finish_s, never.finish_s)
    assert plain.metrics.accuracy is None and (plain.correct == -1).all()
    assert never.metrics.accuracy is not None
    assert within(never.metrics.accuracy, SAMPLE.edge_accuracy)


def test_always_offloads_every_edge_answer_over_the_wan() -> None:
    r = run(OffloadSpec("always"))
    assert r.metrics.offload_rate == 1 and r.offloaded.all()
    assert r.metrics.accuracy is not None and within(r.metrics.accuracy, SAMPLE.cloud_accuracy)
    assert r.latency_s.min() > RTT
    cloud = [n.index for n in r.cluster.nodes if n.is_cloud]
    assert not np.isin(r.node, cloud).any()  # records keep the edge node that answered first


def test_accuracy_target_reaches_its_target_with_the_tuned_theta() -> None:
    m = run(OffloadSpec("accuracy-target", {"target": 0.97})).metrics
    theta = tune_threshold(SAMPLE, 0.97)
    assert within(m.offload_rate, float(below(theta).mean()))
    assert m.accuracy is not None and within(m.accuracy, SAMPLE.accuracy(below(theta)))
    assert m.per_model["digits-edge"]["accuracy"] == m.accuracy


def test_threshold_defaults_to_the_clusters_configured_threshold() -> None:
    configured = run(OffloadSpec("threshold"), requests=3000)
    given = run(OffloadSpec("threshold", {"theta": 0.9}), requests=3000)
    np.testing.assert_array_equal(configured.offloaded, given.offloaded)


def test_runs_repeat_per_seed_and_differ_across_seeds() -> None:
    spec = OffloadSpec("threshold", {"theta": 0.9})
    a, b, c = run(spec, 1, requests=3000), run(spec, 1, requests=3000), run(spec, 2, requests=3000)
    np.testing.assert_array_equal(a.finish_s, b.finish_s)
    np.testing.assert_array_equal(a.correct, b.correct)
    assert not np.array_equal(a.offloaded, c.offloaded)


def test_an_offloaded_request_runs_at_the_edge_then_in_the_cloud() -> None:
    route = EdgeOnly()
    result = simulate(Cluster.parse(CLUSTER), scenario(2000), route, offload=OffloadSpec("always"))
    assert sorted(o.request_id for o in route.outcomes) == list(range(2000))
    for o in route.outcomes[:200]:
        assert o.offloaded and o.correct is not None
        assert o.node == result.node[o.request_id] and o.node != 2  # the edge node
        assert o.start_s == result.start_s[o.request_id] < o.arrival_s + 0.01  # edge start
        assert o.latency_s > RTT
        assert o.energy_j == pytest.approx(result.energy_j[o.request_id])


def test_records_hold_offloaded_and_correct(tmp_path: Path) -> None:
    r = run(OffloadSpec("threshold", {"theta": 0.9}), requests=1000)
    path = tmp_path / "records.csv"
    r.write_records(path)
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [int(row["offloaded"]) for row in rows] == r.offloaded.astype(int).tolist()
    assert [int(row["correct"]) for row in rows] == r.correct.tolist()


def test_a_hand_made_sample_gives_exact_answers() -> None:
    # Half the inputs are sure and right at the edge, half unsure, wrong there, right in the cloud.
    made = sample([0.99, 0.2], [True, False], [True, True], input_bytes=256)
    made = made.model_copy(update={"edge_model": "digits-edge", "cloud_model": "digits-cloud"})
    r = run(OffloadSpec("threshold", {"theta": 0.5}, (made,)), requests=4000)
    assert r.metrics.accuracy == 1.0  # every unsure answer was replaced by a right one
    assert within(r.metrics.offload_rate, 0.5, 4000)


def test_the_cloud_model_asked_directly_has_no_drawn_correctness() -> None:
    models = "digits-edge: {weight: 1, slo_s: 0.1}, digits-cloud: {weight: 1, slo_s: 0.1}"
    r = run(OffloadSpec("never"), requests=2000, models=models)
    direct = r.workload.models == r.workload.model_names.index("digits-cloud")
    assert direct.any() and (r.correct[direct] == -1).all()
    assert (r.correct[~direct] >= 0).all()
    assert "accuracy" not in r.metrics.per_model["digits-cloud"]


def test_an_edge_model_served_in_the_cloud_is_not_offloaded_again() -> None:
    class ToCloud(RoutePolicy):
        name = "to-cloud"

        def decide(self, request: Request, view: ClusterView) -> int:
            return 2

    r = simulate(Cluster.parse(CLUSTER), scenario(500), ToCloud(), offload=OffloadSpec("always"))
    assert r.offloaded.all() and (r.node == 2).all()  # served in the cloud: counted as such
    assert (r.correct >= 0).all()
    assert r.latency_s.max() < 2 * RTT  # one trip, not two


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.split("serving:")[0], "offloads none of the requested models"),
        (lambda t: t.replace("cloud-a100", "x86-mini-pc"), "no cloud node serves 'digits-cloud'"),
        (lambda t: t.replace("cloud_model: digits-cloud", "cloud_model: digits-edge"), "sample"),
    ],
)
def test_offload_that_cannot_be_set_up_is_a_config_error(edit, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        simulate(Cluster.parse(edit(CLUSTER)), scenario(100), EdgeOnly(), offload=OffloadSpec())
