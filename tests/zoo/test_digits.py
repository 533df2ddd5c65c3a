"""The digits classifiers: data split, deterministic training, cached weights, ONNX accuracy."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from edgesched.errors import UnknownNameError
from edgesched.zoo import entry, held_out, load_metadata, training_data
from edgesched.zoo._ort import run_onnx
from edgesched.zoo.digits import RECIPES, accuracy, recipe, train

#: Lower bounds on held-out accuracy (the recipes reach about 0.94 and 0.98).
FLOOR = {"digits-edge": 0.90, "digits-cloud": 0.96}


def test_split_is_fixed_stratified_and_scaled() -> None:
    x_train, y_train = training_data()
    x_test, y_test = held_out()
    assert x_train.shape == (1347, 1, 8, 8) and x_test.shape == (450, 1, 8, 8)
    assert x_train.dtype == x_test.dtype == np.float32
    assert x_test.min() >= 0.0 and x_test.max() == 1.0
    test_counts = np.bincount(y_test, minlength=10)
    all_counts = test_counts + np.bincount(y_train, minlength=10)
    assert np.all(np.abs(test_counts - 0.25 * all_counts) <= 1)  # 25 % of each class
    assert not x_test.flags.writeable  # shared arrays: callers must not change them
    again_x, again_y = held_out()
    assert np.array_equal(again_x, x_test) and np.array_equal(again_y, y_test)


def _states_equal(a: object, b: object) -> bool:
    import torch

    sa, sb = a.state_dict(), b.state_dict()  # type: ignore[attr-defined]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize(
    "name", ["digits-edge", pytest.param("digits-cloud", marks=pytest.mark.slow)]
)
def test_training_is_deterministic(name: str) -> None:
    import torch

    rng_before = torch.random.get_rng_state()
    first, second = train(name, use_cache=False), train(name, use_cache=False)
    assert _states_equal(first, second)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # the caller's RNG is untouched
    assert not torch.are_deterministic_algorithms_enabled()  # restored


def test_trained_weights_are_cached_by_recipe(tmp_path: Path) -> None:
    model = entry("digits-edge").build(cache=tmp_path)
    (path,) = (tmp_path / "digits").glob("*.npz")
    assert path.name == f"digits-edge-{recipe('digits-edge').digest()}.npz"
    stamp = path.stat().st_mtime_ns
    again = entry("digits-edge").build(cache=tmp_path)
    assert path.stat().st_mtime_ns == stamp
    assert _states_equal(model, again)
    assert not again.training


def test_damaged_weights_are_retrained(tmp_path: Path) -> None:
    train("digits-edge", cache=tmp_path)
    (path,) = (tmp_path / "digits").glob("*.npz")
    path.write_bytes(b"not an npz")
    model = train("digits-edge", cache=tmp_path)
    assert _states_equal(model, train("digits-edge", cache=tmp_path))
    assert path.stat().st_size > 100


def test_the_recipe_hash_covers_the_recipe() -> None:
    r = RECIPES["digits-edge"]
    assert r.digest() == recipe("digits-edge").digest()
    assert dataclasses.replace(r, epochs=r.epochs + 1).digest() != r.digest()
    assert dataclasses.replace(r, seed=1).digest() != r.digest()
    assert RECIPES["digits-cloud"].digest() != r.digest()


def test_unknown_digits_model() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'digits-edge'"):
        recipe("digits-egde")


@pytest.mark.parametrize("name", ["digits-edge", "digits-cloud"])
def test_onnx_models_output_probabilities_and_reach_their_accuracy(
    name: str, digits_onnx: dict[str, Path], zoo_cache: Path
) -> None:
    meta = load_metadata(name, zoo_cache)
    x, y = held_out()
    (probs,) = run_onnx(digits_onnx[name], x)
    assert probs.shape == (450, 10)
    assert np.all(probs >= 0) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert meta.accuracy is not None and meta.accuracy >= FLOOR[name]
    assert accuracy(probs, y) >= meta.accuracy
    assert meta.recipe == recipe(name).digest()
    assert meta.input_shape == (1, 8, 8) and meta.output_shapes == [(10,)]
    assert meta.layers[-1].type == "Softmax"


def test_the_cloud_model_is_heavier_and_better(zoo_cache: Path, digits_onnx: object) -> None:
    edge, cloud = load_metadata("digits-edge", zoo_cache), load_metadata("digits-cloud", zoo_cache)
    assert cloud.flops > 100 * edge.flops and cloud.params > 10 * edge.params
    assert cloud.accuracy > edge.accuracy  # type: ignore[operator]
