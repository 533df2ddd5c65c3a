"""The error the runtime raises when a model, a batch, a device or a CPU set cannot be used."""

from __future__ import annotations

from edgesched.errors import EdgeschedError


class ExecutorError(EdgeschedError):
    """A model cannot be loaded or run as asked; the message names the model, value and fix."""


__all__ = ["ExecutorError"]
