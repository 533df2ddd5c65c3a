"""The real digits models: the measured sample, the shipped one, and a sweep over them."""

from __future__ import annotations

import numpy as np
import pytest

from edgesched.catalog import load_catalog
from edgesched.core.confidence import ConfidenceSample, find_sample, shipped_sample_paths
from edgesched.offload.sweep import CloudLink, run_sweep


def test_the_measured_sample_covers_every_held_out_image(measured: ConfidenceSample) -> None:
    from edgesched.zoo.digits import held_out

    x, _ = held_out()
    assert len(measured) == len(x) == 450
    assert measured.input_bytes == x[0].nbytes == 256
    conf = np.asarray(measured.confidence)
    assert conf.min() >= 0.1 and conf.max() <= 1.0  # top-1 of 10 classes is at least 0.1
    assert 0.0 < np.mean(conf < 0.9) < 0.5  # the edge model is often, not always, unsure
    assert min(measured.edge_exec_s) > 0 and min(measured.cloud_exec_s) > 0
    assert measured.machine["packages"]["onnxruntime"] in measured.backend


def test_measured_accuracies_are_the_catalogs(measured: ConfidenceSample) -> None:
    cat = load_catalog()
    assert measured.edge_accuracy == pytest.approx(
        cat.model("digits-edge").accuracy.value, abs=2e-3
    )
    assert measured.cloud_accuracy == pytest.approx(
        cat.model("digits-cloud").accuracy.value, abs=2e-3
    )
    assert measured.cloud_accuracy > measured.edge_accuracy


def test_the_shipped_sample_is_what_the_models_answer(measured: ConfidenceSample) -> None:
    assert [p.name for p in shipped_sample_paths()] == ["digits-confidence.json"]
    shipped = find_sample("digits-edge", "digits-cloud")
    assert "edgesched offload measure" in shipped.command
    np.testing.assert_allclose(shipped.confidence, measured.confidence, atol=1e-5)
    assert shipped.edge_correct == measured.edge_correct
    assert shipped.cloud_correct == measured.cloud_correct


def test_a_sweep_of_the_real_outputs_trades_latency_for_accuracy(
    measured: ConfidenceSample,
) -> None:
    sweep = run_sweep(measured, CloudLink.from_cli(100, 40), target=0.97)
    edge, cloud, chosen = sweep.edge_only, sweep.cloud_only, sweep.chosen
    assert edge.accuracy < 0.97 <= chosen.accuracy
    assert 0 < chosen.offload_rate < 1
    assert edge.latency_mean_s < chosen.latency_mean_s < cloud.latency_mean_s
    assert cloud.latency_mean_s > 0.040  # every request pays the round trip
    assert sweep.curve[0].accuracy == edge.accuracy
