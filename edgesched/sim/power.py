"""Device power as a function of what runs on it."""

from __future__ import annotations

from collections.abc import Mapping

from edgesched.catalog import Catalog


class PowerModel:
    """Linear utilisation power model: idle plus a share of the dynamic range.

    ``power = idle + (peak - idle) * min(1, sum(count_j * utilisation_j))``, with idle and peak
    power from the device spec and utilisations from the profiles. This is the linear server model
    of LEAF and EdgeSimPy (research digest, sim_rl_devices.md §A.1).
    """

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def idle(self, device: str) -> float:
        """Power in watts with nothing running."""
        return self._catalog.device(device).idle_power_w.value

    def power(self, device: str, running: Mapping[str, int]) -> float:
        """Power in watts while ``running`` (model → instances computing) runs on ``device``."""
        spec = self._catalog.device(device)
        busy = sum(
            n * self._catalog.profile(device, m).utilisation.value for m, n in running.items()
        )
        idle = spec.idle_power_w.value
        return idle + (spec.peak_power_w.value - idle) * min(1.0, busy)
