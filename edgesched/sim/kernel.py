"""The event kernel: a heap of ``(time, order, callback, a, b)``.

When an event is due, the kernel sets :attr:`Kernel.now` and calls ``callback(time, a, b)``.

``order`` is ``priority * PRIORITY_STRIDE + seq``: one integer that sorts by priority first, then
by a sequence number that makes events at the same instant and priority run first-in,
first-out (one comparison instead of two on the hot path), so a
run is deterministic. At one instant, ``URGENT`` events (computations finishing) run before
``NORMAL`` ones (transfers delivering), and both before arrivals fed through :meth:`run_until`.
A callback that raises stops the run: nothing is swallowed.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from itertools import count
from typing import Any

URGENT = 0
"""Priority of events that free resources (a computation or transfer finishing)."""
NORMAL = 1
"""Priority of everything else."""
PRIORITY_STRIDE = 1 << 62
"""Sequence numbers stay below this, so the priority always decides first."""

Callback = Callable[[float, Any, Any], None]


class Kernel:
    """A discrete-event clock and queue.

    Attributes:
        now: the simulated time in seconds of the event being handled.
    """

    def __init__(self) -> None:
        self.now = 0.0
        #: The event heap. Hot loops may push ``(at, order, callback, a, b)`` with
        #: ``order = priority * PRIORITY_STRIDE + next(seq)``
        #: directly when ``at >= now`` holds by construction.
        self.heap: list[tuple[float, int, Callback, Any, Any]] = []
        #: The sequence counter that orders same-instant, same-priority events.
        self.seq = count()

    def clock(self) -> float:
        """The current simulated time (a ``clock`` callable for components)."""
        return self.now

    def schedule(self, at: float, priority: int, callback: Callback, a: Any, b: Any = None) -> None:
        """Call ``callback(at, a, b)`` at time ``at``.

        Raises:
            ValueError: ``at`` lies in the past.
        """
        if at < self.now:
            raise ValueError(f"cannot schedule at {at!r}, before now ({self.now!r})")
        heappush(self.heap, (at, priority * PRIORITY_STRIDE + next(self.seq), callback, a, b))

    def run_until(self, until: float) -> None:
        """Handle every queued event due at or before ``until``; then set ``now = until``.

        Raises:
            ValueError: ``until`` lies before ``now``.
        """
        if until < self.now:
            raise ValueError(f"cannot run until {until!r}, before now ({self.now!r})")
        heap = self.heap
        while heap and heap[0][0] <= until:
            at, _, callback, a, b = heappop(heap)
            self.now = at
            callback(at, a, b)
        self.now = until

    def run(self) -> None:
        """Handle every queued event, including those that handlers schedule."""
        heap = self.heap
        while heap:
            at, _, callback, a, b = heappop(heap)
            self.now = at
            callback(at, a, b)

    def __len__(self) -> int:
        return len(self.heap)
