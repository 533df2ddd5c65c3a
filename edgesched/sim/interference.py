"""How much co-running models slow each other down.

``slowdown(device, model, co_runners)`` is the factor (>= 1) by which a running instance of
``model`` on ``device`` is stretched while the instances in ``co_runners`` (model → count, not
counting itself) run beside it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

from edgesched.catalog import Catalog


class InterferenceModel(ABC):
    """Maps a device, a model and its co-runners to a slowdown factor >= 1."""

    @abstractmethod
    def slowdown(self, device: str, model: str, co_runners: Mapping[str, int]) -> float:
        """Factor by which ``model`` runs slower on ``device`` beside ``co_runners``."""


class NoInterference(InterferenceModel):
    """Co-runners cost nothing (an idealised device with unlimited parallel capacity)."""

    def slowdown(self, device: str, model: str, co_runners: Mapping[str, int]) -> float:
        return 1.0


class ParametricInterference(InterferenceModel):
    """Utilisation-additive slowdown with one coefficient per device.

    ``slowdown = 1 + alpha * scale * sum(count_j * utilisation_j)`` over the co-runners, where
    ``alpha`` is the device's ``interference_alpha`` and ``utilisation_j`` the share of the
    device one instance of ``j`` keeps busy (both from the catalog). With ``alpha = 1`` and
    utilisation 1, ``n`` co-runners give ``n + 1`` times the solo latency: pure time slicing.
    This is the "utilisation-additive" model of the research digest (sim_rl_devices.md §E).

    Args:
        catalog: where device coefficients and profile utilisations come from.
        scale: multiplies every ``alpha`` (sensitivity studies).
    """

    def __init__(self, catalog: Catalog, scale: float = 1.0) -> None:
        if scale < 0:
            raise ValueError(f"scale must be >= 0, got {scale}")
        self._catalog = catalog
        self._scale = scale

    def slowdown(self, device: str, model: str, co_runners: Mapping[str, int]) -> float:
        alpha = self._catalog.device(device).interference_alpha.value * self._scale
        load = sum(
            n * self._catalog.profile(device, other).utilisation.value
            for other, n in co_runners.items()
            if n
        )
        return 1.0 + alpha * load
