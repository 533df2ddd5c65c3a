"""Node slowdowns during a run (``scenario.slowdowns``) and the measured slowdown in the view."""

from __future__ import annotations

import numpy as np
import pytest

from edgesched.errors import ConfigError
from edgesched.sim.runner import simulate
from tests.builders import light_scenario, quiet_cluster, toy_cluster, toy_scenario


def _compute_s(result, node: int) -> tuple[np.ndarray, np.ndarray]:
    """(arrival, computation time) of the requests served on ``node``."""
    on = result.node == node
    return result.workload.times[on], (result.finish_s - result.start_s)[on]


def test_a_slowed_node_computes_factor_times_longer_from_the_given_moment() -> None:
    # Light load, always on the fast node: computation time is the solo latency, then 3x.
    scenario = light_scenario(400, 5.0, {"node": "fast", "at_fraction": 0.5, "factor": 3.0})
    result = simulate(quiet_cluster(), scenario, "edge-only")
    times, compute = _compute_s(result, 0)
    begin, end = result.workload.times[0], result.workload.times[-1]
    half = begin + 0.5 * (end - begin)
    before, after = compute[times < half - 0.5], compute[times > half + 0.5]
    assert before.size > 50 and after.size > 50
    np.testing.assert_allclose(before, 0.010, rtol=1e-6)
    np.testing.assert_allclose(after, 0.030, rtol=1e-6)


def test_a_job_running_when_the_slowdown_starts_stretches_only_its_remaining_work() -> None:
    scenario = light_scenario(1, 1.0, {"node": "fast", "at_s": 0.005, "factor": 2.0})
    result = simulate(quiet_cluster(), scenario, "edge-only")
    # The work done at full speed before the slowdown, then the rest at half speed.
    done = result.workload.times[0] + 0.005 - result.start_s[0]
    assert 0.0 < done < 0.010
    expected = done + 2.0 * (0.010 - done)
    assert result.finish_s[0] - result.start_s[0] == pytest.approx(expected)


def test_restoring_the_factor_restores_the_profile_latency() -> None:
    scenario = light_scenario(
        300,
        5.0,
        {"node": "fast", "at_fraction": 0.3, "factor": 4.0},
        {"node": "fast", "at_fraction": 0.6, "factor": 1.0},
    )
    result = simulate(quiet_cluster(), scenario, "edge-only")
    times, compute = _compute_s(result, 0)
    begin, end = result.workload.times[0], result.workload.times[-1]
    late = compute[times > begin + 0.7 * (end - begin)]
    np.testing.assert_allclose(late, 0.010, rtol=1e-6)


def test_an_unknown_node_is_a_config_error_naming_the_nodes() -> None:
    scenario = toy_scenario(slowdowns=[{"node": "nope", "at_s": 1.0, "factor": 2.0}])
    with pytest.raises(ConfigError, match=r"nope.*fast"):
        simulate(toy_cluster(), scenario, "pow2")


def test_a_slowdown_needs_exactly_one_time() -> None:
    with pytest.raises(ConfigError, match="exactly one of at_s or at_fraction"):
        toy_scenario(slowdowns=[{"node": "fast", "factor": 2.0}])


def test_the_view_carries_the_measured_slowdown_per_node() -> None:
    from edgesched.core.request import Outcome
    from edgesched.policies.route_aware import EdgeOnlyRoute

    seen: list[float] = []

    class Watch(EdgeOnlyRoute):
        def observe(self, outcome: Outcome) -> None:
            seen.append(float(self._view.slowdown_ewma[outcome.node]))

        def reset(self, view, rng) -> None:  # type: ignore[no-untyped-def]
            super().reset(view, rng)
            self._view = view

    scenario = light_scenario(200, 5.0, {"node": "fast", "at_fraction": 0.2, "factor": 3.0})
    simulate(quiet_cluster(), scenario, Watch())
    assert seen[0] == pytest.approx(1.0)
    assert seen[-1] == pytest.approx(3.0, rel=0.01)
