"""Confidence offload: unsure edge answers are replaced by the cloud model's, for real."""

from __future__ import annotations

import numpy as np
import pytest

from edgesched.core.cluster import Cluster
from edgesched.errors import ConfigError
from edgesched.serve import decode_response, encode_request
from edgesched.serve.core import ServingCore, confidence
from tests.serve.test_server import _serve, _shutdown, http

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

THRESHOLD = 0.9
OFFLOADING = f"""
name: edge-and-cloud
nodes:
  - id: board
    device: raspberry-pi-5
    models: {{digits-edge: 1}}
  - id: cloud
    device: cloud-a100
    models: {{digits-cloud: 1}}
serving:
  offload:
    digits-edge: {{threshold: {THRESHOLD}, cloud_model: digits-cloud}}
"""


def _run(path: str, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def test_confidence_of_probabilities_and_of_logits() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    np.testing.assert_allclose(confidence(probs), [0.7, 0.8], rtol=1e-6)
    logits = np.log(probs) + 3.0  # softmax of these is probs again
    np.testing.assert_allclose(confidence(logits), [0.7, 0.8], rtol=1e-5)


def test_offload_needs_a_cloud_node_serving_the_cloud_model() -> None:
    text = OFFLOADING.replace("cloud-a100", "x86-mini-pc")
    with pytest.raises(ConfigError, match="no cloud node serves 'digits-cloud'"):
        ServingCore(Cluster.parse(text))


@pytest.mark.slow
def test_unsure_rows_are_answered_by_the_cloud_model(tmp_path) -> None:
    from edgesched.zoo import export_onnx
    from edgesched.zoo.digits import accuracy, held_out

    x, y = held_out()
    x = x[:200].astype(np.float32)
    edge = _run(str(export_onnx("digits-edge")), x)
    cloud = _run(str(export_onnx("digits-cloud")), x)
    unsure = confidence(edge) < THRESHOLD
    assert 0 < unsure.sum() < len(x)  # the test needs both kinds of rows

    s = _serve(tmp_path / "unused.onnx", OFFLOADING, policy="least-loaded", model_files=None)
    try:
        body, headers = encode_request({"input0": x}, binary_outputs=True)
        status, rh, raw = http(f"{s.url}/v2/models/digits-edge/infer", body, headers)
        assert status == 200, raw
        resp = decode_response(raw, int(rh["Inference-Header-Content-Length"]))
        served = resp.arrays()["output0"]
        assert resp.parameters["offloaded"] == int(unsure.sum())
        np.testing.assert_allclose(served[~unsure], edge[~unsure], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(served[unsure], cloud[unsure], rtol=1e-5, atol=1e-6)
        assert accuracy(served, y[:200]) >= accuracy(edge, y[:200])
        text = s.server.metrics.render()[0].decode()
        assert f'edgesched_offloads_total{{model="digits-edge"}} {float(unsure.sum())}' in text
    finally:
        _shutdown(s)
