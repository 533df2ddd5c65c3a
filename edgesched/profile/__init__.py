"""Real measurement: concurrent runs, power meters, profile files, fitting interference models."""

from __future__ import annotations

from edgesched.profile.runner import ProfileError, Profiler, ProfileSettings, mixes, profile
from edgesched.profile.schema import ProfileFile

__all__ = ["ProfileError", "ProfileFile", "ProfileSettings", "Profiler", "mixes", "profile"]
