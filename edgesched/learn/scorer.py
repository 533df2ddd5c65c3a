"""The exported learned router: a small per-node scoring network in plain numpy.

The same multilayer perceptron scores every candidate node from its feature row
(:mod:`edgesched.learn.features`), so one policy file serves clusters of any size and a decision
costs one small matrix product over the candidate nodes. The file is an ``.npz`` holding the
layer weights (``w0, b0, w1, b1, …``) and a JSON ``meta`` string: what the scores mean
(``kind``: ``"q"`` = expected reward of sending the request there, from DQN; ``"logits"`` =
action preferences, from PPO), the feature count, and how the file was made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesched.errors import ConfigError
from edgesched.learn.features import DYNAMIC, N_FEATURES, SLO, STATIC, RoutingFeatures

KINDS = ("q", "logits")


@dataclass
class NodeScorer:
    """Maps feature rows ``[n, N_FEATURES]`` to one score per row: ``x @ skip + MLP(x)``.

    Attributes:
        weights: ``[(W, b), ...]`` per layer of the ReLU perceptron; the last has one output.
        kind: ``"q"`` or ``"logits"`` (see the module docstring).
        meta: provenance (algorithm, steps, scenario, command, evaluation).
        skip: weights of the linear part (zeros when None).
    """

    weights: list[tuple[np.ndarray, np.ndarray]]
    kind: str
    meta: dict[str, Any] = field(default_factory=dict)
    skip: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"policy kind must be one of {KINDS}, got {self.kind!r}")
        if self.weights[0][0].shape[0] != N_FEATURES or self.weights[-1][0].shape[1] != 1:
            raise ConfigError(
                f"policy weights do not fit: first layer takes {self.weights[0][0].shape[0]} "
                f"features (this version computes {N_FEATURES}), last layer gives "
                f"{self.weights[-1][0].shape[1]} outputs (must be 1); retrain with "
                "`edgesched train routing`"
            )
        if self.skip is None:
            self.skip = np.zeros(N_FEATURES)
        self._fused = _fuse(self.weights, self.skip)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """One score per row of ``x``: ``[n, N_FEATURES + 1]``, the last column all ones (as
        :meth:`RoutingFeatures.rows <edgesched.learn.features.RoutingFeatures.rows>` gives)."""
        fused = self._fused
        h = x
        for w in fused[:-1]:
            h = h @ w
            np.maximum(h, 0.0, out=h)
        return (h @ fused[-1])[:, 0]

    def fast(self, features: RoutingFeatures) -> FastScorer:
        """The same scores from :meth:`RoutingFeatures.dynamic`, for ``features``' cluster."""
        return FastScorer(self._fused, features)

    def save(self, path: str | Path) -> Path:
        """Write the policy file; returns its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {}
        for i, (w, b) in enumerate(self.weights):
            arrays[f"w{i}"], arrays[f"b{i}"] = w.astype(np.float64), b.astype(np.float64)
        meta = {**self.meta, "kind": self.kind, "n_features": N_FEATURES}
        assert self.skip is not None
        arrays["skip"] = self.skip.astype(np.float64)
        arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
        with path.open("wb") as f:
            np.savez_compressed(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> NodeScorer:
        """Read a policy file written by :meth:`save`.

        Raises:
            ConfigError: the file is missing, not a policy file, or from an incompatible version.
        """
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"no policy file at {path}; train one with `edgesched train routing`")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                n = sum(1 for k in data.files if k.startswith("w"))
                weights = [(data[f"w{i}"], data[f"b{i}"]) for i in range(n)]
                skip = data["skip"]
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"{path} is not a routing policy file: {exc}") from None
        if n == 0:
            raise ConfigError(f"{path} holds no layers")
        return cls(weights, meta.pop("kind"), meta, skip)


class FastScorer:
    """:meth:`NodeScorer.scores` for one cluster, with the fixed columns folded in per model.

    The first layer's product splits into the fixed columns' part, computed once per model, the
    state's part (:meth:`RoutingFeatures.dynamic`) and the request's SLO column, so a decision
    never builds the full feature rows.
    """

    def __init__(self, fused: list[np.ndarray], features: RoutingFeatures) -> None:
        first = fused[0]
        self._dynamic = np.ascontiguousarray(first[list(DYNAMIC)])
        self._slo = first[SLO].copy()
        static = first[list(STATIC)]
        self._base = [features.static(m) @ static for m in range(len(features.view.model_names))]
        self._rest = fused[1:]

    def scores(self, model: int, dynamic: np.ndarray, slo_feature: float) -> np.ndarray:
        """One score per node serving ``model``."""
        h = dynamic @ self._dynamic
        h += self._base[model]
        h += slo_feature * self._slo
        np.maximum(h, 0.0, out=h)
        rest = self._rest
        for w in rest[:-1]:
            h = h @ w
            np.maximum(h, 0.0, out=h)
        return (h @ rest[-1])[:, 0]


def _fuse(weights: list[tuple[np.ndarray, np.ndarray]], skip: np.ndarray) -> list[np.ndarray]:
    """The same function as matrix products and ReLUs only: a decision's hot path.

    Biases ride on the input's column of ones, which every layer passes on as its last unit;
    the linear part ``x @ skip`` rides through the ReLUs as the two units ``relu(s)`` and
    ``relu(-s)`` and is put back together by the output layer.
    """
    fused = []
    w, b = weights[0]
    first = np.zeros((N_FEATURES + 1, w.shape[1] + 3))
    first[:N_FEATURES, : w.shape[1]] = w
    first[N_FEATURES, : w.shape[1]] = b
    first[:N_FEATURES, -3] = skip
    first[:N_FEATURES, -2] = -skip
    first[N_FEATURES, -1] = 1.0
    fused.append(first)
    for w, b in weights[1:]:
        n_in, n_out = w.shape
        layer = np.zeros((n_in + 3, n_out + 3 if n_out > 1 else 1))
        layer[:n_in, :n_out] = w
        layer[n_in + 2, :n_out] = b
        if n_out > 1:
            layer[n_in, -3] = layer[n_in + 1, -2] = layer[n_in + 2, -1] = 1.0
        else:  # the output: put the linear part back together
            layer[n_in, 0], layer[n_in + 1, 0] = 1.0, -1.0
        fused.append(np.ascontiguousarray(layer))
    return fused
