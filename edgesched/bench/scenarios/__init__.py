"""Built-in scenarios shipped with the package, loadable by name."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from edgesched.errors import UnknownNameError

#: Built-in scenario name → (cluster file, scenario file), both in this folder.
_BUILTIN: dict[str, tuple[str, str]] = {
    "default": ("default-cluster.yaml", "default-scenario.yaml"),
    "interference-heavy": ("interference-heavy-cluster.yaml", "interference-heavy-scenario.yaml"),
    "throttling": ("default-cluster.yaml", "throttling-scenario.yaml"),
}


def _path(filename: str) -> Path:
    return Path(str(files(__package__).joinpath(filename)))


def default_cluster_path() -> Path:
    """The default cluster: several edge device kinds plus the cloud."""
    return _path("default-cluster.yaml")


def default_scenario_path() -> Path:
    """The default scenario: bursty load at about 70 % of the default cluster's capacity."""
    return _path("default-scenario.yaml")


def builtin_names() -> list[str]:
    """Names of the built-in scenarios, the default first."""
    return list(_BUILTIN)


def builtin_paths(name: str) -> tuple[Path, Path]:
    """The cluster file and scenario file of built-in scenario ``name``.

    Raises:
        UnknownNameError: no built-in scenario has that name.
    """
    if name not in _BUILTIN:
        raise UnknownNameError("built-in scenario", name, _BUILTIN)
    cluster, scenario = _BUILTIN[name]
    return _path(cluster), _path(scenario)
