"""INT8 variants: they run with a dynamic batch, and digits models keep their accuracy."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from edgesched.zoo import held_out, load_metadata, quantize_int8, verify
from edgesched.zoo._ort import run_onnx, session
from edgesched.zoo.digits import accuracy
from tests.zoo.conftest import SMALL


@pytest.mark.parametrize("name", ["digits-edge", "digits-cloud"])
def test_int8_digits_keep_their_accuracy(
    name: str, digits_onnx: dict[str, Path], zoo_cache: Path
) -> None:
    fp32, int8 = load_metadata(name, zoo_cache), load_metadata(f"{name}-int8", zoo_cache)
    path = digits_onnx[f"{name}-int8"]
    assert path == zoo_cache / f"{name}-int8.onnx" == zoo_cache / int8.file
    assert (int8.precision, int8.quantization) == ("int8", "static")
    assert int8.parent_sha256 == fp32.sha256
    assert int8.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (int8.flops, int8.params, int8.layers) == (fp32.flops, fp32.params, fp32.layers)
    assert int8.accuracy is not None and fp32.accuracy is not None
    assert abs(int8.accuracy - fp32.accuracy) <= 0.03
    x, y = held_out()
    sess = session(path)
    assert accuracy(run_onnx(sess, x)[0], y) == pytest.approx(int8.accuracy)
    for batch in (1, 3):
        (probs,) = run_onnx(sess, x[:batch])
        assert probs.shape == (batch, 10)


def test_int8_torchvision_model_runs_with_a_dynamic_batch(
    small_onnx: Path, zoo_cache: Path
) -> None:
    path = quantize_int8(SMALL, cache=zoo_cache)
    meta = verify(f"{SMALL}-int8", zoo_cache)
    assert meta.accuracy is None
    assert "meaningless" in " ".join(meta.notes) and "standard-normal" in meta.notes[0]
    assert meta.size_bytes < load_metadata(SMALL, zoo_cache).size_bytes / 2
    rng = np.random.default_rng(1)
    sess = session(path)
    for batch in (1, 3):
        (out,) = run_onnx(sess, rng.standard_normal((batch, 3, 224, 224), dtype=np.float32))
        assert out.shape == (batch, 1000) and np.all(np.isfinite(out))


def test_int8_comes_from_the_cache_unless_forced(tmp_path: Path) -> None:
    path = quantize_int8("digits-edge", cache=tmp_path)
    stamp = path.stat().st_mtime_ns
    assert quantize_int8("digits-edge", cache=tmp_path) == path
    assert path.stat().st_mtime_ns == stamp
    fp32 = tmp_path / "digits-edge.onnx"
    fp32_stamp = fp32.stat().st_mtime_ns
    quantize_int8("digits-edge", cache=tmp_path, force=True)
    assert path.stat().st_mtime_ns != stamp
    assert fp32.stat().st_mtime_ns == fp32_stamp  # force re-quantizes, it does not re-export
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files


def test_dynamic_quantization_when_static_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime.quantization as quant

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("calibration exploded")

    monkeypatch.setattr(quant, "quantize_static", broken)
    path = quantize_int8("digits-edge", cache=tmp_path)
    meta = load_metadata("digits-edge-int8", tmp_path)
    assert meta.quantization == "dynamic" and "calibration exploded" in meta.notes[0]
    assert meta.accuracy is not None and meta.accuracy > 0.85
    (probs,) = run_onnx(path, held_out()[0][:3])
    assert probs.shape == (3, 10)
