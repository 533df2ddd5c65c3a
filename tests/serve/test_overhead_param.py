"""The ``execution_s`` response parameter: the worker's execution time of each answer."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edgesched.serve import HEADER_LENGTH, decode_response, encode_request
from tests.runtime.conftest import export, tiny_module
from tests.serve.test_server import MODEL, _serve, _shutdown, batch_of, http

pytest.importorskip("aiohttp")
pytest.importorskip("onnxruntime")

ONE_NODE = """
name: one-mini
nodes:
  - id: only
    device: x86-mini-pc
    models: {mobilenet_v2: 1}
"""


def test_infer_response_carries_execution_time(tmp_path: Path) -> None:
    onnx = export(tiny_module(), tmp_path / "tiny.onnx", dynamic=True)
    s = _serve(onnx, ONE_NODE, policy="least-loaded")
    try:
        body, headers = encode_request({"input0": batch_of(2)})
        start = time.perf_counter()
        status, rh, raw = http(f"{s.url}/v2/models/{MODEL}/infer", body, headers)
        e2e_s = time.perf_counter() - start
        assert status == 200
        hl = rh.get(HEADER_LENGTH)
        params = decode_response(raw, None if hl is None else int(hl)).parameters
        assert "execution_s" in params and 0 < params["execution_s"] < e2e_s
    finally:
        _shutdown(s)
