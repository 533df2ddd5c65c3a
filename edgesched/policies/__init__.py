"""Policies, one module per decision point, baselines beside the learned ones."""

from __future__ import annotations

from edgesched.policies.registry import make, make_route, names, register, resolve
from edgesched.policies.route import RoutePolicy

__all__ = ["RoutePolicy", "make", "make_route", "names", "register", "resolve"]
