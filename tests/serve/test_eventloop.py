"""Which event loop the server runs on: uvloop where installed, asyncio otherwise or on request."""

from __future__ import annotations

import asyncio
import sys
import warnings

import pytest

from edgesched.errors import ConfigError
from edgesched.serve import eventloop

uvloop = pytest.importorskip("uvloop")


async def _which() -> str:
    return eventloop.name_of(asyncio.get_running_loop())


def test_auto_is_uvloop_when_installed() -> None:
    assert eventloop.resolve("auto") == "uvloop"
    assert eventloop.run(_which()) == "uvloop"
    loop = eventloop.new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


@pytest.mark.parametrize("kind", ["uvloop", "asyncio"])
def test_each_kind_runs_its_own_loop(kind: str) -> None:
    assert eventloop.run(_which(), kind) == kind


def test_without_uvloop_auto_falls_back_and_uvloop_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now fails
    assert eventloop.resolve("auto") == "asyncio"
    assert eventloop.run(_which()) == "asyncio"
    with pytest.raises(ConfigError, match="'uvloop' is not installed"):
        eventloop.new_event_loop("uvloop")


def test_unknown_kind_is_refused_and_the_coroutine_closed() -> None:
    coro = _which()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "never awaited" warning would fail here
        with pytest.raises(ConfigError, match="auto, uvloop, asyncio; got 'trio'"):
            eventloop.run(coro, "trio")
    assert coro.cr_frame is None  # closed


def test_serve_cli_refuses_an_unknown_loop_before_starting(tmp_path) -> None:
    from typer.testing import CliRunner

    from edgesched.cli import app

    cluster = tmp_path / "missing.yaml"  # never read: the loop is checked first
    res = CliRunner().invoke(app, ["serve", str(cluster), "--event-loop", "trio"])
    assert isinstance(res.exception, ConfigError)
    assert "event loop must be one of" in str(res.exception)
