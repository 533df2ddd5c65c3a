"""A shared link: concurrent transfers split its bandwidth equally (processor sharing).

Every active transfer receives ``bandwidth / k`` bytes per second while ``k`` are active, so all
of them advance by the same number of bytes. The link therefore keeps one *virtual clock* — the
bytes each active transfer has received since the link started — and each transfer's virtual
finish (clock at start + its bytes) in a heap. Adding or finishing a transfer costs O(log k)
instead of touching every transfer.
"""

from __future__ import annotations

from heapq import heappop, heappush
from itertools import count
from typing import Any

_REL = 1e-9  # a transfer with less than this share of its virtual finish left counts as done


class SharedLink:
    """Processor-sharing bandwidth of one link.

    Args:
        bandwidth_bytes_per_s: the link's capacity.
    """

    def __init__(self, bandwidth_bytes_per_s: float) -> None:
        if bandwidth_bytes_per_s <= 0:
            raise ValueError(f"bandwidth must be > 0, got {bandwidth_bytes_per_s}")
        self.bandwidth = bandwidth_bytes_per_s
        self.virtual = 0.0  # bytes received by each active transfer so far
        self.last = 0.0
        self._heap: list[tuple[float, int, Any]] = []
        self._seq = count()

    def __len__(self) -> int:
        return len(self._heap)

    def advance(self, t: float) -> None:
        """Move the link's clock to ``t`` seconds."""
        if self._heap:
            self.virtual += (t - self.last) * self.bandwidth / len(self._heap)
        self.last = t

    def add(self, t: float, size_bytes: float, payload: Any) -> None:
        """Start a transfer of ``size_bytes`` at ``t``; ``payload`` comes back when it is done."""
        self.advance(t)
        heappush(self._heap, (self.virtual + size_bytes, next(self._seq), payload))

    def next_finish(self) -> float | None:
        """When the next transfer completes if nothing is added, or None when idle."""
        if not self._heap:
            return None
        left = self._heap[0][0] - self.virtual
        return self.last + max(left, 0.0) * len(self._heap) / self.bandwidth

    def pop_done(self, t: float) -> list[Any]:
        """Advance to ``t`` and return the payloads of every transfer complete by then."""
        self.advance(t)
        heap, done = self._heap, []
        while heap and heap[0][0] - self.virtual <= _REL * max(1.0, heap[0][0]):
            done.append(heappop(heap)[2])
        return done
