"""Scenario suites, the experiment runner and reports."""

from __future__ import annotations

from edgesched.bench.scenarios import default_cluster_path, default_scenario_path

__all__ = ["default_cluster_path", "default_scenario_path"]
