"""Errors raised by edgesched.

Every error a user can cause derives from :class:`EdgeschedError`; the CLI turns them into a
one-line message and a non-zero exit code. Bugs raise ordinary Python exceptions.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EdgeschedError(Exception):
    """Base class of every error edgesched raises on bad input or environment."""


class ConfigError(EdgeschedError):
    """A cluster, scenario or catalog file is malformed; the message names file, line and field."""


class UnknownNameError(EdgeschedError, KeyError):
    """A name (policy, device, model, node) is not known; the message suggests close names."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(known) if len(known) <= 20 else f"{len(known)} known names"
        super().__init__(f"unknown {kind} {name!r}.{hint} Known: {listing}.")
        self.kind = kind
        self.name = name

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DependencyNotInstalled(EdgeschedError, ImportError):
    """An optional dependency is missing; the message gives the ``pip install`` command."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f'{package} is not installed; install it with: pip install "edgesched[{extra}]"'
        )


class PolicyDecisionError(EdgeschedError):
    """A policy chose a node that does not exist or does not serve the request's model."""


class PolicyFileError(EdgeschedError):
    """A policy file does not match the decision point or schema it is loaded for."""


__all__ = [
    "ConfigError",
    "DependencyNotInstalled",
    "EdgeschedError",
    "PolicyDecisionError",
    "PolicyFileError",
    "UnknownNameError",
]
