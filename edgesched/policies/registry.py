"""Policies by name: ``route/pow2`` → ``"edgesched.policies.route_baselines:PowerOfTwoRoute"``.

Entries are import strings, resolved only when a policy is built, so listing names imports
nothing heavy. A duplicate registration raises; an unknown name raises with suggestions.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from edgesched.errors import ConfigError, UnknownNameError

_REGISTRY: dict[str, dict[str, str]] = {"route": {}}


def register(point: str, name: str, entry_point: str) -> None:
    """Register ``entry_point`` (``"module:Class"``) as policy ``name`` of decision ``point``.

    Raises:
        ValueError: ``name`` is already registered for ``point``.
    """
    table = _REGISTRY.setdefault(point, {})
    if name in table:
        raise ValueError(f"policy {point}/{name} is already registered ({table[name]})")
    table[name] = entry_point


def names(point: str = "route") -> list[str]:
    """Registered policy names of a decision point, in registration order."""
    return list(_REGISTRY.get(point, {}))


def resolve(point: str, name: str) -> type:
    """The class registered as ``point/name``.

    Raises:
        UnknownNameError: no such policy.
    """
    table = _REGISTRY.get(point, {})
    if name not in table:
        raise UnknownNameError(f"{point} policy", name, table)
    module, _, attr = table[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def make(point: str, name: str, **kwargs: Any) -> Any:
    """Build policy ``point/name`` with ``kwargs``.

    Raises:
        UnknownNameError: no such policy.
        ConfigError: the policy rejects ``kwargs``.
    """
    cls = resolve(point, name)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"policy {point}/{name}: bad arguments {kwargs}: {exc}") from None


def make_route(name: str, policy_file: str | Path | None = None) -> Any:
    """Route policy ``name``; ``policy_file`` is the trained file of the ``learned`` router.

    Raises:
        UnknownNameError: no such policy.
        ConfigError: a policy file for a policy that takes none, or a bad file.
    """
    if policy_file is None:
        return make("route", name)
    if name != "learned":
        raise ConfigError(
            f"--policy-file is the trained file of the learned router; policy {name!r} "
            "takes none (use --policy learned)"
        )
    return make("route", name, policy_file=policy_file)


_BASE = "edgesched.policies.route_baselines"
_AWARE = "edgesched.policies.route_aware"
_OFFLOAD = "edgesched.policies.offload"
_BUILT_IN = {
    "route": {
        "random": f"{_BASE}:RandomRoute",
        "round-robin": f"{_BASE}:RoundRobinRoute",
        "least-loaded": f"{_BASE}:LeastLoadedRoute",
        "pow2": f"{_BASE}:PowerOfTwoRoute",
        "min-expected-completion": f"{_AWARE}:MinExpectedCompletionRoute",
        "min-energy": f"{_AWARE}:MinEnergyRoute",
        "edge-only": f"{_AWARE}:EdgeOnlyRoute",
        "cloud-only": f"{_AWARE}:CloudOnlyRoute",
        "learned": "edgesched.policies.route_learned:LearnedRoute",
    },
    "offload": {
        "never": f"{_OFFLOAD}:NeverOffload",
        "always": f"{_OFFLOAD}:AlwaysOffload",
        "threshold": f"{_OFFLOAD}:ThresholdOffload",
        "accuracy-target": f"{_OFFLOAD}:AccuracyTargetOffload",
    },
}
for _point, _entries in _BUILT_IN.items():
    for _name, _entry in _entries.items():
        register(_point, _name, _entry)
