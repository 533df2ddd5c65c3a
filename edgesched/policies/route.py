"""The ``route`` decision point: which node (or the cloud) runs this request?

Both worlds drive a :class:`RoutePolicy` the same way:

1. ``reset(view, rng)`` once, before the first request, with the live :class:`ClusterView` and
   the run's random generator (the only randomness a policy may use);
2. ``decide(request, view)`` for every arriving request; it returns the index of a node where the
   request's model is deployed (``view.candidates(request.model)``);
3. ``observe(outcome)`` after each request ends, with the measured :class:`Outcome` — only if the
   policy overrides it, so policies without feedback cost nothing per answer.

A policy reads the view and nothing else: it never imports the simulator or the server, never
writes to the view, and keeps no handle to either world. The driver checks every decision once
(the node exists and serves the model) and raises if it does not.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from edgesched.core.request import Outcome, Request
from edgesched.core.view import ClusterView


class RoutePolicy(ABC):
    """Base class of routing policies (see the module docstring for the contract)."""

    #: Registry name, e.g. ``pow2``.
    name: ClassVar[str]

    def reset(self, view: ClusterView, rng: np.random.Generator) -> None:
        """Prepare for a run over ``view``; called once before the first ``decide``.

        Subclasses that override this call ``super().reset(view, rng)``.
        """
        self.rng = rng

    @abstractmethod
    def decide(self, request: Request, view: ClusterView) -> int:
        """Return the index of the node that will serve ``request``.

        Called once per request, on the hot path: keep it to array operations over
        ``view.candidates(request.model)``. Must not modify ``view``.
        """

    def observe(self, outcome: Outcome) -> None:  # noqa: B027 - optional hook, no-op by default
        """Receive the measured outcome of a request this policy routed (default: ignore)."""

    @property
    def wants_outcomes(self) -> bool:
        """True when the subclass overrides :meth:`observe`, so the world must build outcomes."""
        return type(self).observe is not RoutePolicy.observe


class UniformStream:
    """Uniform [0, 1) draws from a generator, served from a refilled buffer.

    Drawing one number at a time from numpy costs about a microsecond; serving from a buffer of
    ``size`` draws costs a list index. The sequence equals ``rng.random(size)`` chunk after chunk,
    so results stay reproducible per seed.
    """

    def __init__(self, rng: np.random.Generator, size: int = 8192) -> None:
        self._rng = rng
        self._size = size
        self._buf: list[float] = []
        self._pos = 0

    def next(self) -> float:
        """The next draw."""
        if self._pos >= len(self._buf):
            self._buf = self._rng.random(self._size).tolist()
            self._pos = 0
        u = self._buf[self._pos]
        self._pos += 1
        return u
