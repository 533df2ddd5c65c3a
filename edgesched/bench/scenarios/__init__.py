"""Built-in scenarios shipped with the package."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def default_cluster_path() -> Path:
    """The default cluster: several edge device kinds plus the cloud."""
    return Path(str(files(__package__).joinpath("default-cluster.yaml")))


def default_scenario_path() -> Path:
    """The default scenario: bursty load at about 70 % of the default cluster's capacity."""
    return Path(str(files(__package__).joinpath("default-scenario.yaml")))
