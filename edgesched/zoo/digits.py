"""Two classifiers trained here on scikit-learn's bundled 8×8 handwritten digits.

``digits-edge`` is a light MLP (64→8→10, about 93 % held-out accuracy) and ``digits-cloud`` a
small CNN (three 3×3 convolutions, about 98 %): a cheap model that is often unsure, and an
expensive one that is rarely wrong, for confidence-based offloading. Both end with a softmax, so
their outputs are class probabilities.

Data: the 1797 samples of ``sklearn.datasets.load_digits`` (shipped with scikit-learn, nothing is
downloaded), float32 of shape ``(N, 1, 8, 8)`` scaled to [0, 1] (pixel / 16). The held-out split
is fixed: 25 % stratified by class with ``random_state=0``.

Training is deterministic: fixed seeds in a forked RNG, ``torch.use_deterministic_algorithms``
and one thread, so two trainings give identical weights. A trained state dict is cached as
``<cache>/digits/<name>-<recipe hash>.npz`` (no pickle), keyed by a hash of everything that
shapes the weights (layers, optimiser settings, seed, split), so the second call is instant.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from edgesched.errors import UnknownNameError
from edgesched.zoo._deps import require
from edgesched.zoo.metadata import cache_dir

#: Held-out fraction and split seed (fixed: recorded accuracies refer to this split).
TEST_SIZE = 0.25
SPLIT_SEED = 0
#: Bump when the training code changes in a way the recipe fields do not show.
RECIPE_VERSION = 1

Layer = tuple[str | int | float, ...]


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a digits model's weights.

    Attributes:
        name: zoo name.
        layers: the ``nn.Sequential`` as specs: ``("flatten",)``, ``("linear", in, out)``,
            ``("conv", in, out, kernel, padding)``, ``("relu",)``, ``("maxpool", k)``,
            ``("dropout", p)``, ``("softmax",)`` (last).
        epochs: passes over the training split.
        batch_size: samples per Adam step.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        seed: seed of initialisation, shuffling and dropout.
    """

    name: str
    layers: tuple[Layer, ...]
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    seed: int = 0

    def digest(self) -> str:
        """A short hash of the recipe, the split and :data:`RECIPE_VERSION`."""
        data = {
            **asdict(self),
            "split": [TEST_SIZE, SPLIT_SEED],
            "version": RECIPE_VERSION,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


RECIPES: dict[str, Recipe] = {
    "digits-edge": Recipe(
        name="digits-edge",
        layers=(("flatten",), ("linear", 64, 8), ("relu",), ("linear", 8, 10), ("softmax",)),
        epochs=20,
        batch_size=32,
        lr=1e-2,
    ),
    "digits-cloud": Recipe(
        name="digits-cloud",
        layers=(
            ("conv", 1, 16, 3, 1),
            ("relu",),
            ("conv", 16, 32, 3, 1),
            ("relu",),
            ("maxpool", 2),
            ("conv", 32, 64, 3, 1),
            ("relu",),
            ("maxpool", 2),
            ("flatten",),
            ("linear", 256, 64),
            ("relu",),
            ("dropout", 0.2),
            ("linear", 64, 10),
            ("softmax",),
        ),
        epochs=20,
        batch_size=32,
        lr=2e-3,
    ),
}


def recipe(name: str) -> Recipe:
    """The training recipe of ``digits-edge`` or ``digits-cloud``.

    Raises:
        UnknownNameError: ``name`` is not a digits model.
    """
    try:
        return RECIPES[name]
    except KeyError:
        raise UnknownNameError("digits model", name, RECIPES) from None


@lru_cache(maxsize=1)
def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    datasets = require("sklearn.datasets")
    model_selection = require("sklearn.model_selection")
    data = datasets.load_digits()
    x = (data.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = data.target.astype(np.int64)
    parts = model_selection.train_test_split(
        x, y, test_size=TEST_SIZE, stratify=y, random_state=SPLIT_SEED
    )
    for a in parts:
        a.setflags(write=False)
    x_train, x_test, y_train, y_test = parts
    return x_train, y_train, x_test, y_test


def training_data() -> tuple[np.ndarray, np.ndarray]:
    """The training split ``(x, y)``: float32 ``(1347, 1, 8, 8)`` in [0, 1] and int64 labels."""
    x, y, _, _ = _split()
    return x, y


def held_out() -> tuple[np.ndarray, np.ndarray]:
    """The held-out split ``(x, y)``: float32 ``(450, 1, 8, 8)`` in [0, 1] and int64 labels."""
    _, _, x, y = _split()
    return x, y


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows of ``probs`` whose largest entry is at the label ``y``."""
    return float(np.mean(np.asarray(probs).argmax(axis=1) == y))


def onnx_accuracy(path: Path) -> float:
    """Held-out accuracy of a digits ONNX file run in onnxruntime on the CPU."""
    from edgesched.zoo._ort import run_onnx

    x, y = held_out()
    return accuracy(run_onnx(Path(path), x)[0], y)


def build(r: Recipe) -> Any:
    """An untrained ``nn.Sequential`` for ``r`` (initialised from the global torch RNG)."""
    nn = require("torch.nn")
    makers = {
        "flatten": lambda: nn.Flatten(),
        "linear": lambda i, o: nn.Linear(i, o),
        "conv": lambda i, o, k, p: nn.Conv2d(i, o, k, padding=p),
        "relu": lambda: nn.ReLU(),
        "maxpool": lambda k: nn.MaxPool2d(k),
        "dropout": lambda p: nn.Dropout(p),
        "softmax": lambda: nn.Softmax(dim=1),
    }
    return nn.Sequential(*(makers[str(kind)](*args) for kind, *args in r.layers))


@contextlib.contextmanager
def _deterministic(seed: int) -> Iterator[None]:
    """One thread, deterministic kernels and a forked, seeded RNG; all restored on exit."""
    torch = require("torch")
    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.use_deterministic_algorithms(det, warn_only=warn_only)
        torch.set_num_threads(threads)


def _fit(r: Recipe) -> Any:
    """Train a fresh model for ``r`` with Adam on the cross-entropy of the pre-softmax logits."""
    torch = require("torch")
    functional = require("torch.nn.functional")
    with _deterministic(r.seed):
        model = build(r)
        logits = model[:-1]  # shares the modules; the softmax is applied only at inference
        x_np, y_np = training_data()
        x, y = torch.from_numpy(x_np.copy()), torch.from_numpy(y_np.copy())
        shuffle = torch.Generator().manual_seed(r.seed)
        opt = torch.optim.Adam(model.parameters(), lr=r.lr, weight_decay=r.weight_decay)
        model.train()
        for _ in range(r.epochs):
            order = torch.randperm(len(x), generator=shuffle)
            for start in range(0, len(x), r.batch_size):
                idx = order[start : start + r.batch_size]
                loss = functional.cross_entropy(logits(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    return model.eval()


def _state_path(r: Recipe, cache: Path | None) -> Path:
    root = cache if cache is not None else cache_dir()
    return root / "digits" / f"{r.name}-{r.digest()}.npz"


def _load_state(model: Any, path: Path) -> bool:
    """Load ``path`` into ``model``; ``False`` when it is missing or does not fit."""
    torch = require("torch")
    try:
        with np.load(path, allow_pickle=False) as f:
            state = {k: torch.from_numpy(f[k].copy()) for k in f.files}
        model.load_state_dict(state, strict=True)
    except (OSError, ValueError, KeyError, RuntimeError):
        return False
    return True


def _save_state(model: Any, path: Path) -> None:
    """Write the state dict as ``.npz`` atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def train(name: str, *, cache: Path | None = None, use_cache: bool = True) -> Any:
    """The trained digits model ``name``, in eval mode.

    Args:
        name: ``digits-edge`` or ``digits-cloud``.
        cache: the zoo cache folder; default :func:`edgesched.zoo.cache_dir`.
        use_cache: read and write the cached state dict; ``False`` always trains and writes
            nothing.

    Raises:
        UnknownNameError: ``name`` is not a digits model.
        DependencyNotInstalled: torch or scikit-learn is missing.
    """
    r = recipe(name)
    if use_cache:
        path = _state_path(r, cache)
        if path.exists():
            torch = require("torch")
            with torch.random.fork_rng(devices=[]):
                model = build(r)  # initialisation is overwritten; keep the caller's RNG
            if _load_state(model, path):
                return model.eval()
    model = _fit(r)
    if use_cache:
        _save_state(model, path)
    return model


def edge_model(cache: Path | None = None) -> Any:
    """The trained ``digits-edge`` MLP (registry builder); see :func:`train`."""
    return train("digits-edge", cache=cache)


def cloud_model(cache: Path | None = None) -> Any:
    """The trained ``digits-cloud`` CNN (registry builder); see :func:`train`."""
    return train("digits-cloud", cache=cache)
