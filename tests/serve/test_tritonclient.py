"""Triton's own HTTP client against edgesched serve: the v2 protocol as real tooling speaks it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.serve import test_server
from tests.serve.test_server import MODEL, Served, batch_of, reference

httpclient = pytest.importorskip("tritonclient.http")

onnx_file = test_server.onnx_file
served = test_server.served


def client(served: Served) -> object:
    return httpclient.InferenceServerClient(url=served.url.removeprefix("http://"))


def test_health_metadata_and_config(served: Served) -> None:
    c = client(served)
    assert c.is_server_live() and c.is_server_ready()
    assert c.is_model_ready(MODEL)
    meta = c.get_model_metadata(MODEL)
    assert meta["name"] == MODEL
    assert meta["inputs"][0]["datatype"] == "FP32"
    config = c.get_model_config(MODEL)
    assert config["name"] == MODEL


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_matches_running_the_onnx_model(served: Served, binary: bool) -> None:
    batch = batch_of(3, seed=5)
    inp = httpclient.InferInput("input0", list(batch.shape), "FP32")
    inp.set_data_from_numpy(batch, binary_data=binary)
    out = httpclient.InferRequestedOutput("output0", binary_data=binary)
    result = client(served).infer(MODEL, [inp], outputs=[out], request_id="r1")
    np.testing.assert_allclose(
        result.as_numpy("output0"), reference(served.onnx, batch), rtol=1e-5, atol=1e-6
    )
    assert result.get_response()["id"] == "r1"


def test_errors_reach_the_client_as_exceptions(served: Served) -> None:
    from tritonclient.utils import InferenceServerException

    inp = httpclient.InferInput("input0", [1, 2], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 2), np.float32))
    with pytest.raises(InferenceServerException, match="shape"):
        client(served).infer(MODEL, [inp])
    with pytest.raises(InferenceServerException):
        client(served).infer("no-such-model", [inp])
