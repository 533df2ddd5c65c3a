"""Enumerating configurations: limits, memory, SLO, interference, power and dominance."""

from __future__ import annotations

import numpy as np
import pytest

from edgesched.catalog import Catalog
from edgesched.plan.configs import MAX_VECTORS, Limits, count_vectors, dominated
from edgesched.plan.perf import dynamic_energy
from edgesched.sim.interference import ParametricInterference
from edgesched.sim.power import PowerModel
from tests.plan.builders import NETWORK, rates, tiny_catalog, tiny_configs, tiny_demand


def test_count_vectors_respect_the_limits() -> None:
    vectors = count_vectors(3, Limits(max_instances=2, max_total=3, max_models=2))
    assert vectors.min() >= 0 and vectors.max() <= 2
    assert np.all((vectors.sum(axis=1) >= 1) & (vectors.sum(axis=1) <= 3))
    assert np.all((vectors > 0).sum(axis=1) <= 2)
    assert len({tuple(v) for v in vectors}) == len(vectors)
    # 3 models x 2 counts alone, plus 3 pairs x {(1,1), (1,2), (2,1)}
    assert len(vectors) == 6 + 9


def test_distinct_models_shrink_to_stay_within_the_vector_cap() -> None:
    limits = Limits()
    assert limits.distinct_models(5) == 5
    many = limits.distinct_models(20)
    assert 1 <= many < 20
    assert len(count_vectors(20, limits)) <= MAX_VECTORS


def test_capacity_and_power_follow_the_simulator_models() -> None:
    catalog = tiny_catalog()
    demand = tiny_demand(rates([100.0, 20.0]))
    configs = tiny_configs(catalog, demand)
    interference, power = ParametricInterference(catalog), PowerModel(catalog)
    for c in range(len(configs)):
        device = configs.kinds[configs.kind[c]]
        mix = configs.describe(c)
        assert configs.full_power_w[c] == pytest.approx(power.power(device, mix))
        for j, m in enumerate(configs.models):
            if m not in mix:
                assert configs.capacity_rps[c, j] == 0
                continue
            others = {o: n - (o == m) for o, n in mix.items()}
            latency = catalog.profile(device, m).latency_s.value * interference.slowdown(
                device, m, others
            )
            assert configs.latency_s[c, j] == pytest.approx(latency)
            assert configs.capacity_rps[c, j] == pytest.approx(mix[m] / latency)


def test_slo_filters_configurations() -> None:
    tight = tiny_demand(rates([100.0, 20.0]), slo_s=0.015)
    configs = tiny_configs(tiny_catalog(), tight)
    transfer = np.where(configs.cloud[configs.kind], NETWORK.wan.rtt_s, NETWORK.lan.rtt_s)
    assert np.all((configs.counts == 0) | (configs.latency_s + transfer[:, None] <= 0.015))
    small = configs.kind == configs.kinds.index("small")
    assert not configs.counts[small, 1].any(), "b takes 40 ms on a small board, beyond 15 ms"
    assert configs.counts[small, 0].any(), "a takes 12 ms on a small board, within 15 ms"


def test_memory_filters_configurations() -> None:
    catalog = tiny_catalog()
    spec = catalog.device("big")
    tiny_memory = spec.memory_bytes.model_copy(update={"value": 1.0})
    devices = [spec.model_copy(update={"memory_bytes": tiny_memory})]
    devices += [catalog.device("small"), catalog.device("cloud")]
    profiles = [catalog.profile(d, m) for d in ("big", "small", "cloud") for m in "ab"]
    starved = Catalog(devices, catalog.models.values(), profiles)
    configs = tiny_configs(starved, tiny_demand(rates([100.0, 20.0])))
    assert configs.kinds.index("big") not in set(configs.kind.tolist())


def test_dominated_rows_are_dropped_and_ties_keep_the_first() -> None:
    capacity = np.array([[10.0, 0.0], [12.0, 0.0], [12.0, 0.0], [5.0, 5.0]])
    energy = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    power = np.array([3.0, 3.0, 3.0, 3.0])
    assert dominated(capacity, energy, power).tolist() == [True, False, True, False]
    cheaper = energy.copy()
    cheaper[0, 0] = 0.5  # less energy per inference keeps the smaller configuration
    assert dominated(capacity, cheaper, power).tolist() == [False, False, True, False]


def test_dynamic_energy_is_solo_energy_when_alone_and_saturation_caps_it() -> None:
    solo, util = np.array([0.01]), np.array([0.5])
    one = dynamic_energy(np.array([[1]]), solo, util, np.array([[1.0]]), 10.0, [(0.5, 1.0)])
    assert one[0, 0] == pytest.approx(10.0 * 0.5 * 0.01)
    # four busy CPU-bound instances (utilisation 1) at time slicing: power is capped at peak, so
    # energy per inference stays near the solo figure instead of growing with the slowdown
    four = dynamic_energy(
        np.array([[4]]), solo, np.array([1.0]), np.array([[4.0]]), 10.0, [(0.8, 1.0)]
    )
    assert 10.0 * 0.01 * 0.9 < four[0, 0] < 10.0 * 0.01 * 4.0 * 0.8


def test_dominance_agrees_with_pairwise_comparison() -> None:
    rng = np.random.default_rng(0)
    for _ in range(100):
        n, m = int(rng.integers(2, 25)), int(rng.integers(1, 4))
        capacity = rng.integers(0, 3, (n, m)).astype(float)
        energy = rng.integers(0, 3, (n, m)).astype(float)
        power = rng.integers(0, 3, n).astype(float)
        cost = np.where(capacity > 0, energy, np.inf)
        expected = [
            any(
                j != i
                and np.all(capacity[j] >= capacity[i])
                and np.all(cost[j] <= cost[i])
                and power[j] <= power[i]
                and (
                    np.any(capacity[j] > capacity[i])
                    or np.any(cost[j] < cost[i])
                    or power[j] < power[i]
                    or j < i
                )
                for j in range(n)
            )
            for i in range(n)
        ]
        assert dominated(capacity, energy, power).tolist() == expected
