"""The built-in catalog: device kinds, model kinds and how each model behaves on each device.

Every number says where it came from (:class:`~edgesched.core.sourced.Sourced`). Profiles with a
published solo latency come from ``data/profiles.yaml``; every other (device, model) pair is
estimated on first use by the formulas of :mod:`edgesched.catalog._estimate`. Measured profiles
(``Catalog.with_profiles``) override published ones, which override estimates.

Example:
    >>> from edgesched.catalog import load_catalog
    >>> cat = load_catalog()
    >>> cat.profile("jetson-agx-orin-64gb", "resnet50").latency_s.source
    'published'
"""

from __future__ import annotations

from edgesched.catalog._catalog import Catalog, merge_profile
from edgesched.catalog._estimate import estimate_profile
from edgesched.catalog._loader import load_catalog

__all__ = ["Catalog", "estimate_profile", "load_catalog", "merge_profile"]
