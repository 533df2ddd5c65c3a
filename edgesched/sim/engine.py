"""The simulation engine, compiled when possible.

The engine's source is :mod:`edgesched.sim._engine`. Installing the package also compiles that same
source with Cython into ``edgesched.sim._engine_c`` (about 1.2× faster), stamped with the source's
SHA-256. This module uses the compiled build only when its stamp matches the source on disk, so an
edited ``_engine.py`` is never shadowed by a stale build; otherwise, when no compiler was
available, or when ``EDGESCHED_PURE_PYTHON=1`` is set, it uses the pure-Python engine.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import warnings
from pathlib import Path
from types import ModuleType

from edgesched.errors import PolicyDecisionError
from edgesched.sim import _engine


def _source_digest() -> str:
    return hashlib.sha256(Path(_engine.__file__).read_bytes()).hexdigest()


def _choose() -> tuple[ModuleType, str]:
    if os.environ.get("EDGESCHED_PURE_PYTHON", "") not in ("", "0"):
        return _engine, "python"
    try:
        compiled = importlib.import_module("edgesched.sim._engine_c")
    except ImportError:
        return _engine, "python"
    if Path(compiled.__file__ or "").suffix == ".py":
        return _engine, "python"  # the generated source without its build
    if getattr(compiled, "_SOURCE_SHA256", None) != _source_digest():
        warnings.warn(
            "the compiled simulator engine is older than edgesched/sim/_engine.py; using the "
            "pure-Python engine (reinstall with `pip install -e .` to rebuild it)",
            stacklevel=3,
        )
        return _engine, "python"
    return compiled, "compiled"


_module, ENGINE_KIND = _choose()
#: ``"compiled"`` or ``"python"``: which build of the engine runs.

Engine = _module.Engine
RunRecords = _module.RunRecords

__all__ = ["ENGINE_KIND", "Engine", "PolicyDecisionError", "RunRecords"]
