"""Numbers that say where they came from.

Every figure in the catalog is a :class:`Sourced` value: a published figure with its reference, a
measurement with the file it came from, or an estimate with its formula.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Source = Literal["measured", "published", "estimated"]

#: Which source wins when two disagree: measured beats published beats estimated.
SOURCE_RANK: dict[str, int] = {"measured": 2, "published": 1, "estimated": 0}


class Sourced(BaseModel):
    """A number with its provenance.

    Attributes:
        value: the figure, in SI units (seconds, watts, bytes, hertz, USD, FLOP/s).
        source: ``measured``, ``published`` or ``estimated``.
        ref: a URL or file for published and measured figures; the formula and its inputs for
            estimates.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float
    source: Source
    ref: str = Field(min_length=1)

    def better_than(self, other: Sourced | None) -> bool:
        """True when this figure should override ``other`` (a stronger source)."""
        return other is None or SOURCE_RANK[self.source] > SOURCE_RANK[other.source]


def estimated(value: float, formula: str) -> Sourced:
    """Shorthand for an estimate and the formula that produced it."""
    return Sourced(value=value, source="estimated", ref=formula)
