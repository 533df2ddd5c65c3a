"""edgesched: profile, plan, schedule and serve DNN inference on edge devices plus a cloud.

The simulator's front door is :func:`simulate`::

    from edgesched import Cluster, ScenarioConfig, simulate
    cluster = Cluster.load("cluster.yaml")
    result = simulate(cluster, ScenarioConfig.load_file("scenario.yaml"), "pow2")
    print(result.metrics)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from edgesched.core.cluster import Cluster
    from edgesched.core.scenario import ScenarioConfig
    from edgesched.sim.runner import Result, simulate

_LAZY = {
    "Cluster": "edgesched.core.cluster",
    "ScenarioConfig": "edgesched.core.scenario",
    "Result": "edgesched.sim.runner",
    "simulate": "edgesched.sim.runner",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgesched' has no attribute {name!r}")


__all__ = ["Cluster", "Result", "ScenarioConfig", "__version__", "simulate"]
