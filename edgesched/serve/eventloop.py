"""The event loop the server runs on: uvloop's where it is installed, else asyncio's own.

Every request crosses the frontend's event loop four times (its head and body arrive, the frame
goes to the worker, the worker's answer comes back, the response goes out). uvloop runs the same
asyncio protocols and transports on libuv, in compiled code, so each crossing costs far less
interpreted Python; on a small CPU whose idle cores sleep between requests that is a large share
of the serving overhead (``benchmarks/serve_overhead.py --event-loop asyncio|uvloop`` measures
it). uvloop comes with the ``serve`` extra on Linux and macOS; elsewhere, or with
``kind="asyncio"``, the standard loop serves the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

from edgesched.errors import ConfigError

T = TypeVar("T")

#: What ``kind`` may name: ``auto`` is uvloop when it is installed, else asyncio.
LOOP_KINDS: tuple[str, ...] = ("auto", "uvloop", "asyncio")


def resolve(kind: str = "auto") -> Literal["uvloop", "asyncio"]:
    """The loop ``kind`` stands for on this machine.

    Raises:
        ConfigError: ``kind`` is not one of :data:`LOOP_KINDS`, or is ``uvloop`` and uvloop is
            not installed.
    """
    if kind not in LOOP_KINDS:
        raise ConfigError(f"event loop must be one of {', '.join(LOOP_KINDS)}; got {kind!r}")
    if kind == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if kind == "uvloop":
            raise ConfigError(
                "event loop 'uvloop' is not installed here; pip install 'edgesched[serve]' "
                "(Linux or macOS), or use 'asyncio'"
            ) from None
        return "asyncio"
    return "uvloop"


def new_event_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    """A new event loop of ``kind`` (see :func:`resolve`, which raises the same errors)."""
    if resolve(kind) == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T], kind: str = "auto") -> T:
    """Run ``main`` to completion on a new loop of ``kind``, as :func:`asyncio.run` does."""
    try:
        chosen = resolve(kind)
    except ConfigError:
        main.close()  # never to be awaited: no "never awaited" warning
        raise
    with asyncio.Runner(loop_factory=lambda: new_event_loop(chosen)) as runner:
        return runner.run(main)


def name_of(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: which kind ``loop`` is."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


__all__ = ["LOOP_KINDS", "name_of", "new_event_loop", "resolve", "run"]
