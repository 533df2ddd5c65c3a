"""Infeasible input: one clear message naming the binding constraint and what would fix it."""

from __future__ import annotations

from typing import Any

import pytest

from edgesched.errors import ConfigError, UnknownNameError
from edgesched.plan.infeasible import PlanInfeasible
from edgesched.plan.planner import Plan, PlanRequest, make_plan
from tests.plan.builders import scenario

EDGE = ["raspberry-pi-5", "jetson-nano-4gb"]
MOBILENET = scenario({"mobilenet_v2": {"weight": 1, "slo_s": 0.05}}, rate_rps=2000.0)


def plan(**kw: Any) -> Plan:
    args: dict[str, Any] = {
        "scenario": MOBILENET,
        "budget_usd": 10_000.0,
        "max_nodes": 20,
        "devices": EDGE,
        "baselines": False,
        "time_limit_s": 5.0,
        **kw,
    }
    return make_plan(PlanRequest(**args))


def test_budget_too_small_names_the_least_feasible_budget() -> None:
    with pytest.raises(PlanInfeasible) as err:
        plan(budget_usd=300.0)
    assert err.value.constraint == "budget"
    least = err.value.smallest
    assert least is not None and least > 300
    assert f"${least:,.0f}" in str(err.value)
    assert "\n" not in str(err.value)
    assert plan(budget_usd=least).figures.cost_usd <= least
    with pytest.raises(PlanInfeasible):
        plan(budget_usd=least - 1)


def test_node_count_too_small_names_the_least_feasible_count() -> None:
    with pytest.raises(PlanInfeasible) as err:
        plan(max_nodes=2)
    assert err.value.constraint == "max_nodes"
    least = int(err.value.smallest or 0)
    assert least > 2
    assert f"--max-nodes {least}" in str(err.value)
    assert plan(max_nodes=least).figures.nodes <= least
    with pytest.raises(PlanInfeasible):
        plan(max_nodes=least - 1)


def test_power_cap_too_small_names_the_least_feasible_cap() -> None:
    with pytest.raises(PlanInfeasible) as err:
        plan(power_cap_w=5.0)
    assert err.value.constraint == "power_cap"
    least = err.value.smallest
    assert least is not None and least > 5
    assert f"--power-cap {least:.1f}" in str(err.value)
    assert plan(power_cap_w=least).figures.busy_power_w <= least


def test_slo_no_device_meets_names_the_model_and_the_fastest_device() -> None:
    resnet = scenario({"resnet50": {"weight": 1, "slo_s": 0.010}}, rate_rps=10.0)
    with pytest.raises(PlanInfeasible) as err:
        plan(scenario=resnet)
    message = str(err.value)
    assert err.value.constraint == "slo"
    assert "'resnet50'" in message and "10.0 ms" in message
    assert "jetson-nano-4gb" in message, "the Nano (35 ms) is faster than the Pi 5 (179 ms)"


def test_unknown_device_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'jetson-nano-4gb'"):
        plan(devices=["jetson-nano-4g"])


def test_wan_limits_a_cloud_only_plan() -> None:
    fast = scenario({"mobilenet_v2": {"weight": 1, "slo_s": 0.2}}, rate_rps=500.0)
    with pytest.raises(PlanInfeasible) as err:
        plan(devices=["cloud-t4"], scenario=fast)
    assert err.value.constraint == "wan"
    assert "WAN" in str(err.value)


def test_load_without_a_reference_cluster_asks_for_a_rate() -> None:
    loaded = scenario({"mobilenet_v2": {"weight": 1, "slo_s": 0.05}}, load=0.5)
    with pytest.raises(ConfigError, match="--rate"):
        plan(scenario=loaded)
