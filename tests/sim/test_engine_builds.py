"""Which build of the engine runs: the compiled one only when it matches the source."""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType

import pytest

from edgesched.sim import _engine, engine


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The compiled build of the engine (skips where none was built)."""
    try:
        module = importlib.import_module("edgesched.sim._engine_c")
    except ImportError:
        pytest.skip("no compiled engine in this install")
    if not str(module.__file__).endswith(".so"):
        pytest.skip("the compiled engine was not built")
    monkeypatch.delenv("EDGESCHED_PURE_PYTHON", raising=False)
    return module


def test_the_environment_variable_forces_pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESCHED_PURE_PYTHON", "1")
    module, kind = engine._choose()
    assert (module, kind) == (_engine, "python")


def test_a_stale_compiled_build_is_not_used(
    compiled: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compiled, "_SOURCE_SHA256", "0" * 64)
    with pytest.warns(UserWarning, match="older than"):
        module, kind = engine._choose()
    assert (module, kind) == (_engine, "python")


def test_a_current_compiled_build_is_used(compiled: ModuleType) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module, kind = engine._choose()
    assert (module, kind) == (compiled, "compiled")
