"""Domain types shared by every part of edgesched (ARCHITECTURE §2)."""

from __future__ import annotations

from edgesched.core.cluster import Cluster, ClusterConfig, Link, LinkConfig, Node, NodeConfig
from edgesched.core.metrics import Metrics, compute_metrics
from edgesched.core.request import Outcome, Request
from edgesched.core.scenario import ScenarioConfig
from edgesched.core.sourced import Sourced
from edgesched.core.specs import DeviceSpec, DvfsTables, ModelSpec, Profile
from edgesched.core.view import ClusterState, ClusterView

__all__ = [
    "Cluster",
    "ClusterConfig",
    "ClusterState",
    "ClusterView",
    "DeviceSpec",
    "DvfsTables",
    "Link",
    "LinkConfig",
    "Metrics",
    "ModelSpec",
    "Node",
    "NodeConfig",
    "Outcome",
    "Profile",
    "Request",
    "ScenarioConfig",
    "Sourced",
    "compute_metrics",
]
