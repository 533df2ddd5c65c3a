"""ONNX export: dynamic batch, metadata, the cache, and the FLOP counting rules."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgesched.errors import UnknownNameError
from edgesched.zoo import (
    ZOO,
    ZooError,
    ZooMetadata,
    cache_dir,
    entry,
    export_onnx,
    load_metadata,
    quantize_int8,
    verify,
)
from edgesched.zoo._flops import count_layers
from edgesched.zoo._ort import run_onnx, session
from tests.zoo.conftest import SMALL


def test_importing_the_zoo_loads_no_heavy_package() -> None:
    code = (
        "import sys, edgesched.zoo, edgesched.zoo.cli; "
        "heavy = {'torch', 'torchvision', 'onnx', 'onnxruntime', 'sklearn'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("env", "want"),
    [
        ({"EDGESCHED_CACHE": "{t}/e", "XDG_CACHE_HOME": "{t}/x"}, "{t}/e/zoo"),
        ({"XDG_CACHE_HOME": "{t}/x"}, "{t}/x/edgesched/zoo"),
        ({}, "{t}/home/.cache/edgesched/zoo"),
    ],
)
def test_cache_dir_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], want: str
) -> None:
    for var in ("EDGESCHED_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var, value in env.items():
        monkeypatch.setenv(var, value.format(t=tmp_path))
    path = cache_dir()
    assert path == Path(want.format(t=tmp_path))
    assert path.is_dir()


def test_export_runs_in_onnxruntime_with_a_dynamic_batch(small_onnx: Path) -> None:
    sess = session(small_onnx)
    (inp,) = sess.get_inputs()
    assert inp.name == "input"
    assert not isinstance(inp.shape[0], int)  # symbolic batch axis
    assert list(inp.shape[1:]) == list(entry(SMALL).input_shape)
    rng = np.random.default_rng(0)
    for batch in (1, 3):
        x = rng.standard_normal((batch, *entry(SMALL).input_shape), dtype=np.float32)
        (out,) = run_onnx(sess, x)
        assert out.shape == (batch, 1000)
        assert np.all(np.isfinite(out))


def test_metadata_describes_the_file(small_onnx: Path, zoo_cache: Path) -> None:
    meta = load_metadata(SMALL, zoo_cache)
    raw = json.loads((zoo_cache / f"{SMALL}.json").read_text())
    assert ZooMetadata.model_validate(raw) == meta
    assert meta.file == small_onnx.name
    assert meta.sha256 == hashlib.sha256(small_onnx.read_bytes()).hexdigest()
    assert meta.size_bytes == small_onnx.stat().st_size
    assert (meta.task, meta.source, meta.precision) == ("classification", "torchvision", "fp32")
    assert meta.input_name == "input" and meta.output_names == ["output"]
    assert meta.output_shapes == [(1000,)]
    assert meta.params == 2_542_856  # torchvision's MobileNet_V3_Small_Weights num_params
    assert meta.layers and meta.flops == sum(layer.flops for layer in meta.layers) > 0
    # torchvision lists 0.06 GMACs (rounded); 2 FLOPs per multiply-add
    assert 1.0e8 < meta.flops < 1.3e8
    assert meta.layers[0].type == "Conv2d" and meta.layers[0].output_bytes == 16 * 112 * 112 * 4
    assert meta.accuracy is None and "meaningless" in " ".join(meta.notes)
    assert meta.opset == 17 and meta.torch and meta.onnx and meta.onnxruntime
    assert verify(SMALL, zoo_cache) == meta


def test_second_export_comes_from_the_cache_and_force_exports_again(tmp_path: Path) -> None:
    path = export_onnx(SMALL, cache=tmp_path)
    meta_file = tmp_path / f"{SMALL}.json"
    stamps = path.stat().st_mtime_ns, meta_file.stat().st_mtime_ns
    assert export_onnx(SMALL, cache=tmp_path) == path
    assert (path.stat().st_mtime_ns, meta_file.stat().st_mtime_ns) == stamps
    digest = load_metadata(SMALL, tmp_path).sha256
    os.utime(path, ns=(0, 0))
    os.utime(meta_file, ns=(0, 0))
    export_onnx(SMALL, cache=tmp_path, force=True)
    assert path.stat().st_mtime_ns > 0 and meta_file.stat().st_mtime_ns > 0
    assert load_metadata(SMALL, tmp_path).sha256 == digest  # seeded weights: the same file
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{SMALL}.json", f"{SMALL}.onnx"]


def test_a_different_opset_is_a_cache_miss(tmp_path: Path) -> None:
    export_onnx("digits-edge", cache=tmp_path)
    export_onnx("digits-edge", cache=tmp_path, opset=18)
    assert load_metadata("digits-edge", tmp_path).opset == 18


def test_default_cache_is_used_without_a_cache_argument(_private_cache: Path) -> None:
    path = export_onnx("digits-edge")
    assert path == _private_cache / "digits-edge.onnx"
    assert load_metadata("digits-edge").name == "digits-edge"


@pytest.mark.parametrize(
    "call",
    [
        lambda: export_onnx("resnet19"),
        lambda: quantize_int8("resnet19"),
        lambda: load_metadata("resnet19"),
        lambda: load_metadata("resnet19-int8"),
        lambda: entry("resnet19"),
    ],
)
def test_unknown_names_raise_with_a_suggestion(call: object) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'resnet18'"):
        call()  # type: ignore[operator]


def test_missing_and_damaged_metadata_say_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(ZooError, match="zoo export resnet18 --int8"):
        load_metadata("resnet18-int8", tmp_path)
    (tmp_path / "resnet18.json").write_text('{"name": "resnet18"}')
    with pytest.raises(ZooError, match=r"damaged \(base_model: Field required; .* and 15 more\)"):
        load_metadata("resnet18", tmp_path)
    (tmp_path / "resnet18.json").write_text("{not json")
    with pytest.raises(ZooError, match="not valid JSON"):
        load_metadata("resnet18", tmp_path)


def test_verify_notices_a_changed_file(tmp_path: Path) -> None:
    path = export_onnx("digits-edge", cache=tmp_path)
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ZooError, match="does not match its metadata"):
        verify("digits-edge", tmp_path)
    # the size no longer matches the metadata, so the next export replaces the file
    export_onnx("digits-edge", cache=tmp_path)
    verify("digits-edge", tmp_path)


def _mha_flops(length: int, embed: int) -> int:
    proj = 4 * 2 * length * embed * embed  # q, k, v and out projections
    scores = 2 * 2 * length * length * embed  # Q·Kᵀ and A·V
    bias = 4 * length * embed
    return proj + scores + bias


def _cases() -> list[tuple[str, object, tuple[int, ...], int, int]]:
    """(id, module builder, sample shape, FLOPs, output bytes) for the counting rules."""
    import torch.nn as nn

    return [
        ("conv-bias", lambda: nn.Conv2d(3, 8, 3, padding=1), (3, 10, 10),
         2 * 8 * 100 * 3 * 9 + 8 * 100, 8 * 100 * 4),
        ("conv-grouped", lambda: nn.Conv2d(8, 8, 3, groups=8, bias=False), (8, 6, 6),
         2 * 8 * 16 * 1 * 9, 8 * 16 * 4),
        ("linear-tokens", lambda: nn.Linear(16, 4), (5, 16), 5 * (2 * 16 * 4 + 4), 5 * 4 * 4),
        ("relu", lambda: nn.ReLU(), (7,), 0, 28),
        ("mha", lambda: nn.MultiheadAttention(32, 4, batch_first=True), (6, 32),
         _mha_flops(6, 32), 6 * 32 * 4),
    ]  # fmt: skip


@pytest.mark.parametrize("case", range(5), ids=[c[0] for c in _cases()])
def test_flop_counting_rules(case: int) -> None:
    import torch
    import torch.nn as nn

    _, make, shape, flops, out_bytes = _cases()[case]

    class Wrap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = make()  # type: ignore[operator]

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if isinstance(self.layer, nn.MultiheadAttention):
                return self.layer(x, x, x, need_weights=False)[0]
            return self.layer(x)

    records, _ = count_layers(Wrap().eval(), torch.rand(1, *shape))
    assert [(r.name, r.flops, r.output_bytes) for r in records] == [("layer", flops, out_bytes)]


def test_resnet18_flops_match_torchvision() -> None:
    import torch

    model = entry("resnet18").build()
    records, _ = count_layers(model, torch.zeros(1, 3, 224, 224))
    total = sum(r.flops for r in records)
    assert total == pytest.approx(3.62e9, rel=0.01)  # torchvision: 1.81 GMACs
    assert [r.name for r in records].count("layer1.0.relu") == 2  # a reused module, twice
    assert records[-1].name == "fc" and records[-1].output_bytes == 4000


@pytest.mark.parametrize(
    ("name", "gflops"),
    [("resnet50", 8.18), pytest.param("vit_b_16", 35.12, marks=pytest.mark.slow)],
)
def test_large_model_flops_match_torchvision(name: str, gflops: float) -> None:
    import torch

    model = entry(name).build()
    records, _ = count_layers(model, torch.zeros(1, *entry(name).input_shape))
    assert sum(r.flops for r in records) == pytest.approx(gflops * 1e9, rel=0.01)


def test_every_zoo_entry_has_a_known_source() -> None:
    assert {e.source for e in ZOO.values()} == {"torchvision", "digits"}
