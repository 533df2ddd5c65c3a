"""Fluent builders for small catalogs, clusters and scenarios used across the tests."""

from __future__ import annotations

from typing import Any

import yaml

from edgesched.catalog import Catalog
from edgesched.core.cluster import Cluster
from edgesched.core.scenario import ScenarioConfig
from edgesched.core.sourced import Sourced
from edgesched.core.specs import DeviceSpec, ModelSpec, Profile


def est(value: float) -> Sourced:
    """An estimated number for test fixtures."""
    return Sourced(value=value, source="estimated", ref="test fixture")


def device(
    name: str,
    *,
    kind: str = "edge",
    idle_w: float = 2.0,
    peak_w: float = 10.0,
    alpha: float = 1.0,
    flops: float = 1e12,
) -> DeviceSpec:
    """A device kind with the given power range and interference coefficient."""
    return DeviceSpec(
        name=name,
        kind=kind,  # type: ignore[arg-type]
        device_class="test",
        accelerator="test accelerator",
        price_usd=est(100),
        memory_bytes=est(4e9),
        cpu_cores=est(4),
        idle_power_w=est(idle_w),
        peak_power_w=est(peak_w),
        effective_flops=est(flops),
        interference_alpha=est(alpha),
    )


def model(name: str, flops: float = 1e9) -> ModelSpec:
    """A model kind with a 3×32×32 input."""
    return ModelSpec(
        name=name, task="classification", input_shape=(3, 32, 32), flops=est(flops), params=est(1e6)
    )


def profile(dev: str, mod: str, latency_s: float, utilisation: float = 1.0) -> Profile:
    """A profile with a given solo latency and utilisation."""
    return Profile(
        device=dev,
        model=mod,
        latency_s=est(latency_s),
        batch_slope=est(0.5),
        utilisation=est(utilisation),
    )


class CatalogBuilder:
    """Build a catalog step by step: ``CatalogBuilder().device(...).model(...).profile(...)``."""

    def __init__(self) -> None:
        self._devices: list[DeviceSpec] = []
        self._models: list[ModelSpec] = []
        self._profiles: list[Profile] = []

    def device(self, name: str, **kw: Any) -> CatalogBuilder:
        self._devices.append(device(name, **kw))
        return self

    def model(self, name: str, flops: float = 1e9) -> CatalogBuilder:
        self._models.append(model(name, flops))
        return self

    def profile(
        self, dev: str, mod: str, latency_s: float, utilisation: float = 1.0
    ) -> CatalogBuilder:
        self._profiles.append(profile(dev, mod, latency_s, utilisation))
        return self

    def build(self) -> Catalog:
        return Catalog(self._devices, self._models, self._profiles)


def toy_catalog(alpha: float = 1.0) -> Catalog:
    """Two edge devices (``fast`` 10 ms, ``slow`` 40 ms for model ``a``) and a ``cloud`` (5 ms)."""
    return (
        CatalogBuilder()
        .device("fast", alpha=alpha)
        .device("slow", alpha=alpha, idle_w=1.0, peak_w=4.0)
        .device("cloud", kind="cloud", idle_w=50.0, peak_w=250.0, alpha=0.2)
        .model("a")
        .model("b", flops=4e9)
        .profile("fast", "a", 0.010)
        .profile("fast", "b", 0.040)
        .profile("slow", "a", 0.040)
        .profile("slow", "b", 0.160)
        .profile("cloud", "a", 0.005, 0.2)
        .profile("cloud", "b", 0.010, 0.4)
        .build()
    )


def toy_cluster(catalog: Catalog | None = None, **overrides: Any) -> Cluster:
    """One ``fast`` and one ``slow`` edge node on a LAN, one ``cloud`` node over a shared WAN."""
    cfg: dict[str, Any] = {
        "name": "toy",
        "nodes": [
            {"id": "fast", "device": "fast", "models": {"a": 2, "b": 1}, "link": "lan"},
            {"id": "slow", "device": "slow", "models": {"a": 1, "b": 1}, "link": "lan"},
            {"id": "cloud", "device": "cloud", "models": {"a": 4, "b": 4}, "link": "wan"},
        ],
        "links": [
            {"id": "lan", "bandwidth_bytes_per_s": 125e6, "rtt_s": 0.0005},
            {"id": "wan", "bandwidth_bytes_per_s": 2.5e6, "rtt_s": 0.04, "shared": True},
        ],
    }
    cfg.update(overrides)
    return Cluster.parse(yaml.safe_dump(cfg), catalog or toy_catalog())


def toy_scenario(**overrides: Any) -> ScenarioConfig:
    """Poisson arrivals of models ``a`` and ``b`` at 60 % of the toy cluster's capacity."""
    cfg: dict[str, Any] = {
        "name": "toy",
        "seed": 7,
        "requests": 2000,
        "models": {"a": {"weight": 3, "slo_s": 0.1}, "b": {"weight": 1, "slo_s": 0.3}},
        "arrivals": {"kind": "poisson"},
        "load": 0.6,
    }
    cfg.update(overrides)
    return ScenarioConfig.parse(yaml.safe_dump(cfg))


def quiet_cluster() -> Cluster:
    """The toy cluster without interference: computation time is exactly the profile's."""
    return toy_cluster(interference={"kind": "none"})


def light_scenario(requests: int, rate_rps: float, *slowdowns: dict[str, Any]) -> ScenarioConfig:
    """Poisson requests of model ``a`` only (SLO 1 s) at ``rate_rps``, with node slowdowns."""
    return toy_scenario(
        requests=requests,
        models={"a": {"weight": 1, "slo_s": 1.0}},
        load=None,
        rate_rps=rate_rps,
        slowdowns=list(slowdowns),
    )
