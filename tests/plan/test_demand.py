"""Where a plan's demand comes from: rate_rps, --rate, load against a cluster, a trace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgesched.bench.scenarios import default_cluster_path, default_scenario_path
from edgesched.catalog import load_catalog
from edgesched.core.cluster import Cluster
from edgesched.core.scenario import ScenarioConfig
from edgesched.errors import ConfigError
from edgesched.plan.demand import arrival_states, demand_for
from edgesched.sim.runner import resolve_rate
from tests.plan.builders import scenario

SITE = Cluster("plan", (), (), load_catalog())
MIX = {"mobilenet_v2": {"weight": 3, "slo_s": 0.05}, "resnet18": {"weight": 1, "slo_s": 0.08}}


def test_rate_is_split_by_weight() -> None:
    demand = demand_for(scenario(MIX, rate_rps=400.0), SITE)
    np.testing.assert_allclose(demand.rate_rps, [300.0, 100.0])
    assert demand.provision == pytest.approx(1.25)
    assert demand.input_bytes.tolist() == [3 * 224 * 224] * 2


def test_rate_option_overrides_the_scenario() -> None:
    demand = demand_for(scenario(MIX, rate_rps=400.0), SITE, rate_rps=80.0)
    assert demand.total_rps == pytest.approx(80.0)
    assert "--rate" in demand.basis


def test_load_needs_a_reference_cluster() -> None:
    loaded = ScenarioConfig.load_file(default_scenario_path())
    with pytest.raises(ConfigError, match="--capacity-of"):
        demand_for(loaded, SITE)
    reference = Cluster.load(default_cluster_path())
    demand = demand_for(loaded, SITE, reference=reference)
    assert demand.total_rps == pytest.approx(resolve_rate(reference, loaded))


def test_mmpp_provisions_for_the_busiest_state() -> None:
    bursty = scenario(
        MIX,
        rate_rps=100.0,
        arrivals={
            "kind": "mmpp",
            "states": [
                {"rate_factor": 3.0, "mean_dwell_s": 1.0},
                {"rate_factor": 1.0, "mean_dwell_s": 3.0},
            ],
        },
    )
    states = arrival_states(bursty)
    assert sum(f * share for f, share in states) == pytest.approx(1.0)
    assert [share for _, share in states] == pytest.approx([0.25, 0.75])
    demand = demand_for(bursty, SITE, headroom=1.1)
    assert demand.peak_factor == pytest.approx(2.0)  # 3 / (0.25 * 3 + 0.75 * 1)
    assert demand.provision == pytest.approx(2.2)


def test_trace_gives_its_mean_rate(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("time_s,model\n" + "".join(f"{i * 0.01},resnet18\n" for i in range(101)))
    replay = scenario(MIX, arrivals={"kind": "trace", "path": str(trace)})
    assert demand_for(replay, SITE).total_rps == pytest.approx(100.0)


def test_headroom_below_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="headroom"):
        demand_for(scenario(MIX, rate_rps=10.0), SITE, headroom=0.9)
