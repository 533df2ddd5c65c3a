"""The θ sweep on hand-made samples, where every figure can be worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgesched.core.confidence import ConfidenceSample, confidence
from edgesched.errors import ConfigError
from edgesched.offload.sweep import CloudLink, run_sweep
from tests.offload.builders import TEN, sample

# 1000 input bytes at 1e6 B/s is 1 ms; with a 10 ms RTT and 2 ms in the cloud an offload adds 13 ms
# to the edge's 1 ms.
LINK = CloudLink(bandwidth_bytes_per_s=1e6, rtt_s=0.010)


def test_points_are_worked_out_from_the_sample() -> None:
    sweep = run_sweep(TEN, LINK, target=0.8, points=11)  # θ = 0, 0.1, …, 1
    at = {round(p.theta, 3): p for p in sweep.curve}
    p = at[0.5]  # the four inputs below 0.5 are offloaded
    assert p.offload_rate == pytest.approx(0.4)
    assert p.accuracy == pytest.approx(0.8)
    assert p.latency_mean_s == pytest.approx(0.001 + 0.4 * 0.013)
    assert p.latency_p99_s == pytest.approx(0.014)
    assert at[0.0].offload_rate == 0 and at[0.0].accuracy == pytest.approx(0.5)
    assert at[1.0].offload_rate == 1 and at[1.0].accuracy == pytest.approx(0.9)


def test_references_are_edge_only_and_cloud_only() -> None:
    sweep = run_sweep(TEN, LINK, target=0.8)
    assert sweep.edge_only.accuracy == pytest.approx(0.5)
    assert sweep.edge_only.offload_rate == 0
    assert sweep.edge_only.latency_mean_s == pytest.approx(0.001)
    assert sweep.cloud_only.accuracy == pytest.approx(0.9)
    assert sweep.cloud_only.offload_rate == 1
    assert sweep.cloud_only.latency_mean_s == pytest.approx(0.013)  # no edge run first


@pytest.mark.parametrize("target", [0.6, 0.7, 0.8, 0.9])
def test_the_chosen_theta_is_the_lowest_latency_one_that_meets_the_target(target: float) -> None:
    # Uneven times, so that latency is not just a function of the offload count.
    rng = np.random.default_rng(1)
    s = sample(
        TEN.confidence,
        TEN.edge_correct,
        TEN.cloud_correct,
        edge_exec_s=rng.uniform(1e-3, 3e-3, 10).tolist(),
        cloud_exec_s=rng.uniform(1e-3, 9e-3, 10).tolist(),
    )
    sweep = run_sweep(s, LINK, target=target, points=201)
    assert sweep.chosen.accuracy >= target
    feasible = [p for p in sweep.curve if p.accuracy >= target]
    assert feasible, "the grid must hold a θ that meets the target"
    assert sweep.chosen.latency_mean_s <= min(p.latency_mean_s for p in feasible) + 1e-15
    assert sweep.chosen.latency_p99_s <= min(p.latency_p99_s for p in feasible) + 1e-15


def test_an_unreachable_target_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="lower the target"):
        run_sweep(TEN, LINK, target=0.95)


def test_offload_rate_grows_with_theta_and_latency_with_it() -> None:
    sweep = run_sweep(TEN, LINK, target=0.8)
    rate = [p.offload_rate for p in sweep.curve]
    mean = [p.latency_mean_s for p in sweep.curve]
    assert rate == sorted(rate)
    assert mean == sorted(mean)
    assert [p.theta for p in sweep.curve] == pytest.approx(np.linspace(0, 1, 101).tolist())


def test_bad_sweep_arguments() -> None:
    with pytest.raises(ValueError, match="2 points"):
        run_sweep(TEN, LINK, points=1)
    with pytest.raises(ValueError, match="bandwidth"):
        run_sweep(TEN, CloudLink(0.0, 0.01))


def test_the_json_holds_the_curve_and_the_three_summaries() -> None:
    data = json.loads(json.dumps(run_sweep(TEN, LINK, target=0.8, points=5).to_dict()))
    assert data["curve"]["theta"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert data["curve"]["offload_rate"] == [0.0, 0.2, 0.4, 0.7, 1.0]
    assert data["chosen"]["theta"] == pytest.approx(0.5)
    assert data["edge_only"]["theta"] is None
    assert data["link"] == {"bandwidth_bytes_per_s": 1e6, "rtt_s": 0.010}


def test_cli_units_convert_to_si() -> None:
    assert CloudLink.from_cli(100, 40) == CloudLink(12.5e6, 0.040)


def test_confidence_of_probabilities_and_of_logits() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    np.testing.assert_allclose(confidence(probs), [0.7, 0.8], rtol=1e-6)
    np.testing.assert_allclose(confidence(np.log(probs) + 3.0), [0.7, 0.8], rtol=1e-5)


def test_sample_files_round_trip_and_bad_ones_name_the_field(tmp_path) -> None:
    path = TEN.save(tmp_path / "s.json")
    assert ConfidenceSample.load(path) == TEN
    data = json.loads(path.read_text())
    data["edge_correct"] = data["edge_correct"][:-1]
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="edge_correct has 9 entries"):
        ConfidenceSample.load(path)
    data = json.loads(TEN.model_dump_json())
    data["confidence"][0] = 1.5
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        ConfidenceSample.load(path)
