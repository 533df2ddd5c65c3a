"""The ``offload`` decision point: the edge answer is in; keep it, or ask the cloud's model?

An offload *pair* names an edge model and the cloud model that answers in its place
(``serving.offload.<edge model>: {cloud_model, threshold}`` in ``cluster.yaml``). Both worlds
drive an :class:`OffloadPolicy`, one instance per pair, the same way:

1. ``reset(context, rng)`` once, before the first decision, with the pair's
   :class:`OffloadContext` (its configured threshold and, where one was measured, its
   :class:`~edgesched.core.confidence.ConfidenceSample`) and the run's random generator;
2. ``decide(request, confidence, view)`` for every request the edge model answered on an edge
   node, with that answer's top-1 probability; ``True`` sends the request to the cloud model.
   ``decide_rows(confidence)`` answers a whole batch of rows at once.

A policy reads its arguments and nothing else: it never imports the simulator or the server and
never writes to the view. Baselines (ARCHITECTURE §3): ``never``, ``always``, ``threshold``
(fixed θ) and ``accuracy-target`` (θ tuned on the measured sample).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from edgesched.core.confidence import ConfidenceSample
from edgesched.core.request import Request
from edgesched.core.view import ClusterView
from edgesched.errors import ConfigError


@dataclass(frozen=True)
class OffloadContext:
    """What a policy knows about the pair it decides for.

    Attributes:
        edge_model: the model that answered.
        cloud_model: the model an offloaded request goes to.
        threshold: the pair's configured confidence threshold (``serving.offload``), if any.
        sample: the pair's measured confidence sample, if any.
    """

    edge_model: str
    cloud_model: str
    threshold: float | None = None
    sample: ConfidenceSample | None = None


class OffloadPolicy(ABC):
    """Base class of offload policies (see the module docstring for the contract)."""

    #: Registry name, e.g. ``threshold``.
    name: ClassVar[str]

    def reset(self, context: OffloadContext, rng: np.random.Generator) -> None:
        """Prepare to decide for ``context``'s pair; called once before the first decision.

        Subclasses that override this call ``super().reset(context, rng)``.

        Raises:
            ConfigError: the policy cannot decide for this pair (say, it needs a sample).
        """
        self.context = context
        self.rng = rng

    @abstractmethod
    def decide_rows(self, confidence: np.ndarray) -> np.ndarray:
        """``True`` per row whose edge answer (top-1 probability ``confidence``) goes to the cloud.

        Must not modify ``confidence``.
        """

    def decide(self, request: Request, confidence: float, view: ClusterView) -> bool:
        """``True`` to send ``request``, answered by the edge with ``confidence``, to the cloud.

        Called once per answered edge request, on the hot path; must not modify ``view``.
        """
        return bool(self.decide_rows(np.array([confidence]))[0])


class NeverOffload(OffloadPolicy):
    """Keep every edge answer (edge-only accuracy, no cloud cost)."""

    name = "never"

    def decide_rows(self, confidence: np.ndarray) -> np.ndarray:
        return np.zeros(len(confidence), dtype=bool)

    def decide(self, request: Request, confidence: float, view: ClusterView) -> bool:
        return False


class AlwaysOffload(OffloadPolicy):
    """Ask the cloud for every request the edge answered."""

    name = "always"

    def decide_rows(self, confidence: np.ndarray) -> np.ndarray:
        return np.ones(len(confidence), dtype=bool)

    def decide(self, request: Request, confidence: float, view: ClusterView) -> bool:
        return True


class ThresholdOffload(OffloadPolicy):
    """Ask the cloud when the edge's top-1 probability is below a fixed threshold θ.

    Args:
        theta: the threshold; ``None`` takes the pair's configured ``serving.offload`` threshold.
            0 keeps every answer; above the largest confidence, every answer is offloaded.

    Raises:
        ConfigError: ``theta`` is negative or not a number; at ``reset``, no θ was given and the
            pair configures none.
    """

    name = "threshold"

    def __init__(self, theta: float | None = None) -> None:
        if theta is not None:
            _check_theta(theta)
        self._given = None if theta is None else float(theta)
        self.theta = math.nan if theta is None else float(theta)

    def reset(self, context: OffloadContext, rng: np.random.Generator) -> None:
        super().reset(context, rng)
        self.theta = self._theta_for(context)

    def _theta_for(self, context: OffloadContext) -> float:
        """θ for ``context``'s pair: the one given, else the pair's configured threshold."""
        if self._given is not None:
            return self._given
        if context.threshold is None:
            raise ConfigError(
                f"offload policy 'threshold' for {context.edge_model!r} needs θ: pass --threshold "
                f"or set serving.offload.{context.edge_model}.threshold in the cluster file"
            )
        return float(context.threshold)

    def decide_rows(self, confidence: np.ndarray) -> np.ndarray:
        return np.asarray(confidence) < self.theta

    def decide(self, request: Request, confidence: float, view: ClusterView) -> bool:
        return confidence < self.theta


class AccuracyTargetOffload(ThresholdOffload):
    """A threshold tuned on the pair's measured sample: the smallest θ (the fewest offloads, so
    the lowest latency) whose accuracy on the sample reaches ``target``.

    Args:
        target: accuracy to reach, in (0, 1].

    Raises:
        ConfigError: ``target`` is out of range; at ``reset``, the pair has no measured sample,
            or no threshold reaches the target on it.
    """

    name = "accuracy-target"

    def __init__(self, target: float = 0.97) -> None:
        if not 0.0 < target <= 1.0:
            raise ConfigError(f"accuracy target must lie in (0, 1], got {target}")
        super().__init__()
        self.target = float(target)

    def _theta_for(self, context: OffloadContext) -> float:
        if context.sample is None:
            raise ConfigError(
                f"offload policy 'accuracy-target' for {context.edge_model!r} needs a measured "
                "confidence sample of the pair (`edgesched offload measure --out FILE`)"
            )
        return tune_threshold(context.sample, self.target)


def tune_threshold(sample: ConfidenceSample, target: float) -> float:
    """The smallest θ whose accuracy on ``sample`` reaches ``target`` (offload: confidence < θ).

    Every distinct offload set a threshold can make is tried: none, the ``k`` least confident
    inputs wherever the ``k``-th and ``k+1``-th confidences differ, and all. The smallest set that
    reaches the target wins; its θ is the confidence of the first input it keeps (above the
    largest confidence when it offloads all). Offloading fewer inputs never costs more latency,
    so this is also the lowest-latency θ that meets the target.

    Raises:
        ConfigError: no threshold reaches ``target`` on this sample.
    """
    conf = np.asarray(sample.confidence, dtype=np.float64)
    order = np.argsort(conf, kind="stable")
    c = conf[order]
    edge = np.asarray(sample.edge_correct, dtype=np.int64)[order]
    cloud = np.asarray(sample.cloud_correct, dtype=np.int64)[order]
    n = len(c)
    # correct[k]: correct answers when the k least confident inputs are offloaded.
    correct = edge.sum() + np.concatenate(([0], np.cumsum(cloud - edge)))
    realisable = np.ones(n + 1, dtype=bool)
    realisable[1:n] = c[:-1] < c[1:]  # a threshold cannot split inputs of equal confidence
    meets = realisable & (correct >= target * n - 1e-9)
    if not meets.any():
        best = int(np.argmax(np.where(realisable, correct, -1)))
        raise ConfigError(
            f"no threshold reaches accuracy {target:g} for {sample.edge_model!r} → "
            f"{sample.cloud_model!r}: the best on {n} measured inputs is "
            f"{correct[best] / n:.4f} (edge alone {sample.edge_accuracy:.4f}, cloud alone "
            f"{sample.cloud_accuracy:.4f}); lower the target"
        )
    k = int(np.argmax(meets))
    return float(c[k]) if k < n else float(np.nextafter(c[-1], np.inf))


def _check_theta(theta: float) -> None:
    if not theta >= 0.0:  # also rejects NaN
        raise ConfigError(f"offload threshold θ must be a number >= 0, got {theta}")
