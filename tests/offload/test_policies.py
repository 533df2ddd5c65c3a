"""The offload decision point: baseline decisions, θ tuning and the registry."""

from __future__ import annotations

import numpy as np
import pytest

from edgesched.core.request import Request
from edgesched.errors import ConfigError
from edgesched.policies import make, names, resolve
from edgesched.policies.offload import (
    AccuracyTargetOffload,
    OffloadContext,
    OffloadPolicy,
    ThresholdOffload,
    tune_threshold,
)
from tests.offload.builders import TEN, sample

REQ = Request(0, 0, 0.0, 1000, 0.1)
CONF = np.array([0.0, 0.3, 0.5, 0.7, 1.0])


def reset(policy: OffloadPolicy, threshold: float | None = None, with_sample: bool = True):
    ctx = OffloadContext("edge-m", "cloud-m", threshold, TEN if with_sample else None)
    policy.reset(ctx, np.random.default_rng(0))
    return policy


@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [
        ("never", {}, [False] * 5),
        ("always", {}, [True] * 5),
        ("threshold", {"theta": 0.5}, [True, True, False, False, False]),
        ("threshold", {"theta": 0.0}, [False] * 5),
        ("threshold", {"theta": 1.5}, [True] * 5),
        ("accuracy-target", {"target": 0.8}, [True, True, False, False, False]),  # θ = 0.5
    ],
)
def test_baseline_decisions(name: str, kwargs: dict, expected: list[bool]) -> None:
    policy = reset(make("offload", name, **kwargs))
    assert policy.decide_rows(CONF).tolist() == expected
    assert [policy.decide(REQ, float(c), None) for c in CONF] == expected  # type: ignore[arg-type]


def test_threshold_defaults_to_the_pairs_configured_threshold() -> None:
    policy = reset(ThresholdOffload(), threshold=0.75)
    assert policy.theta == 0.75
    assert policy.decide_rows(CONF).tolist() == [True, True, True, True, False]
    assert reset(ThresholdOffload(0.2), threshold=0.75).theta == 0.2  # a given θ wins


def test_threshold_without_any_theta_says_how_to_give_one() -> None:
    with pytest.raises(ConfigError, match="--threshold"):
        reset(ThresholdOffload(), threshold=None)


@pytest.mark.parametrize("theta", [-0.1, float("nan")])
def test_bad_theta_is_refused_when_built(theta: float) -> None:
    with pytest.raises(ConfigError, match="θ"):
        ThresholdOffload(theta)


def test_accuracy_target_needs_a_sample_and_a_sane_target() -> None:
    with pytest.raises(ConfigError, match="measured"):
        reset(AccuracyTargetOffload(0.8), with_sample=False)
    with pytest.raises(ConfigError, match="accuracy target"):
        AccuracyTargetOffload(1.5)


@pytest.mark.parametrize(
    ("target", "theta", "offloaded"),
    [(0.5, 0.1, 0), (0.6, 0.2, 1), (0.65, 0.4, 3), (0.8, 0.5, 4), (0.9, 0.95, 9)],
)
def test_tuning_picks_the_fewest_offloads_that_reach_the_target(
    target: float, theta: float, offloaded: int
) -> None:
    got = tune_threshold(TEN, target)
    assert got == pytest.approx(theta)
    conf = np.asarray(TEN.confidence)
    assert (conf < got).sum() == offloaded
    assert TEN.accuracy(conf < got) >= target
    if offloaded:  # one offload fewer misses the target
        assert TEN.accuracy(conf < np.sort(conf)[offloaded - 1]) < target


def test_tuning_offloads_everything_when_only_that_reaches_the_target() -> None:
    s = sample([0.5, 1.0], [True, False], [True, True])
    theta = tune_threshold(s, 1.0)
    assert theta > 1.0
    assert (np.asarray(s.confidence) < theta).all()


def test_tuning_never_splits_equal_confidences() -> None:
    s = sample([0.5, 0.5, 0.9], [False, True, True], [True, True, True])
    theta = tune_threshold(s, 0.9)  # offloading one 0.5 would do, but θ cannot pick one
    assert theta == 0.9
    assert (np.asarray(s.confidence) < theta).sum() == 2


def test_an_unreachable_target_names_the_best_reachable_accuracy() -> None:
    with pytest.raises(ConfigError, match=r"best on 10 measured inputs is 0\.9000"):
        tune_threshold(TEN, 0.95)


@pytest.mark.parametrize("name", names("offload"))
def test_every_offload_entry_is_an_offload_policy_named_by_its_key(name: str) -> None:
    cls = resolve("offload", name)
    assert issubclass(cls, OffloadPolicy)
    assert cls.name == name


def test_the_registry_lists_the_documented_offload_baselines() -> None:
    assert set(names("offload")) >= {"never", "always", "threshold", "accuracy-target"}
