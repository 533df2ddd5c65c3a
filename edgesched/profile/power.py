"""Power meters: NVML (NVIDIA GPUs), RAPL powercap (x86), INA3221 rails (Jetson), or an estimate.

Every meter says what it is (``name``) and whether its numbers are ``measured`` or ``estimated``.
Meters that expose a cumulative energy counter (NVML on Volta and newer, RAPL) are read as energy
differences over a window, which is more accurate than averaging instantaneous samples; the others
are sampled. :func:`detect_meter` picks the best meter present. Sysfs roots are parameters so the
readers are tested against fake trees.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

from edgesched.profile import _nvml


class PowerMeter(ABC):
    """Reads the power of one device.

    Attributes:
        name: ``nvml``, ``rapl``, ``ina3221`` or ``estimated``.
        source: ``measured`` or ``estimated``.
        detail: what exactly is read (a device, a rail, a zone list).
    """

    name: str
    source: str = "measured"
    detail: str = ""

    @abstractmethod
    def power_w(self) -> float:
        """Power now (or over the meter's own short averaging window), in watts."""

    def energy_j(self) -> float | None:
        """A cumulative energy counter in joules, or None when the meter has none."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the meter."""


class NvmlMeter(PowerMeter):
    """An NVIDIA GPU through NVML (``libnvidia-ml``, loaded with ctypes; no Python package).

    Args:
        index: GPU index.
    """

    name = "nvml"

    def __init__(self, index: int = 0) -> None:
        self._lib = _nvml.Nvml()
        self._handle = self._lib.device(index)
        self.detail = f"GPU {index}: {self._lib.name(self._handle)}"
        self._has_energy = self._lib.total_energy_mj(self._handle) is not None

    def power_w(self) -> float:
        return self._lib.power_mw(self._handle) / 1000.0

    def energy_j(self) -> float | None:
        if not self._has_energy:
            return None
        mj = self._lib.total_energy_mj(self._handle)
        return None if mj is None else mj / 1000.0

    def close(self) -> None:
        self._lib.shutdown()


class RaplMeter(PowerMeter):
    """Intel/AMD package energy through the Linux powercap interface (``energy_uj`` counters).

    Sums the top-level ``intel-rapl:N`` package zones, handling counter wrap-around.

    Args:
        root: the powercap folder (``/sys/class/powercap``).
    """

    name = "rapl"

    def __init__(self, root: Path = Path("/sys/class/powercap")) -> None:
        self._zones = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
        if not self._zones:
            raise FileNotFoundError(f"no RAPL package zones under {root}")
        self._max = [float((z / "max_energy_range_uj").read_text()) for z in self._zones]
        self._last = [self._read(z) for z in self._zones]  # raises PermissionError if not root
        self._total_uj = 0.0
        self.detail = ", ".join((z / "name").read_text().strip() for z in self._zones)
        self._t = time.monotonic()
        self._e = 0.0

    @staticmethod
    def _read(zone: Path) -> float:
        return float((zone / "energy_uj").read_text())

    def energy_j(self) -> float:
        for i, zone in enumerate(self._zones):
            now = self._read(zone)
            delta = now - self._last[i]
            if delta < 0:  # the counter wrapped
                delta += self._max[i]
            self._total_uj += delta
            self._last[i] = now
        return self._total_uj / 1e6

    def power_w(self) -> float:
        t, e = time.monotonic(), self.energy_j()
        watts = (e - self._e) / (t - self._t) if t > self._t else 0.0
        self._t, self._e = t, e
        return watts


class Ina3221Meter(PowerMeter):
    """Jetson board power from the INA3221 monitors.

    JetPack 5/6 (hwmon): ``in<N>_label`` names a rail, ``in<N>_input`` is mV and ``curr<N>_input``
    mA. JetPack 4 (iio, ``ina3221x``): ``in_power<N>_input`` is mW. The ``VDD_IN`` /
    ``POM_5V_IN`` rail (the whole module) is used when present, else the sum of all rails.

    Args:
        root: the I2C drivers folder (``/sys/bus/i2c/drivers``).
    """

    name = "ina3221"
    _TOTAL = ("VDD_IN", "POM_5V_IN")

    def __init__(self, root: Path = Path("/sys/bus/i2c/drivers")) -> None:
        self._read_rails = self._hwmon(root) or self._iio(root)
        if self._read_rails is None:
            raise FileNotFoundError(f"no INA3221 monitor under {root}")

    def _hwmon(self, root: Path) -> Callable[[], float] | None:
        rails: dict[str, tuple[Path, Path]] = {}
        for label in sorted(root.glob("ina3221/*/hwmon/hwmon*/in*_label")):
            n = label.name[2:].split("_")[0]
            volt, curr = label.with_name(f"in{n}_input"), label.with_name(f"curr{n}_input")
            if volt.exists() and curr.exists():
                rails[label.read_text().strip()] = (volt, curr)
        if not rails:
            return None
        chosen = [r for r in self._TOTAL if r in rails][:1] or list(rails)
        self.detail = "hwmon rails " + "+".join(chosen)
        pairs = [rails[r] for r in chosen]
        return lambda: sum(float(v.read_text()) * float(c.read_text()) for v, c in pairs) / 1e6

    def _iio(self, root: Path) -> Callable[[], float] | None:
        files = sorted(root.glob("ina3221x/*/iio:device*/in_power*_input"))
        if not files:
            return None
        rail_names = {
            f: f.with_name(f.name.replace("in_power", "rail_name_").replace("_input", ""))
            for f in files
        }
        total = [
            f for f, n in rail_names.items() if n.exists() and n.read_text().strip() in self._TOTAL
        ]
        chosen = total[:1] or files
        self.detail = "iio " + "+".join(f.name for f in chosen)
        return lambda: sum(float(f.read_text()) for f in chosen) / 1e3

    def power_w(self) -> float:
        assert self._read_rails is not None
        return self._read_rails()


class EstimatedMeter(PowerMeter):
    """No sensor: power estimated as idle + (peak − idle) × CPU utilisation of the machine.

    Utilisation comes from ``/proc/stat`` between reads; idle and peak power from a catalog device
    (or the given watts). Always labelled ``estimated``.

    Args:
        idle_w: power with nothing running.
        peak_w: power with every core busy.
        stat: the ``/proc/stat`` file.
    """

    name = "estimated"
    source = "estimated"

    def __init__(self, idle_w: float, peak_w: float, stat: Path = Path("/proc/stat")) -> None:
        if not 0 <= idle_w <= peak_w:
            raise ValueError(f"need 0 <= idle_w <= peak_w, got {idle_w}, {peak_w}")
        self.idle_w, self.peak_w, self._stat = idle_w, peak_w, stat
        self.detail = f"idle {idle_w:g} W + ({peak_w:g} − {idle_w:g}) W × CPU utilisation"
        self._busy, self._total = self._times()

    def _times(self) -> tuple[float, float]:
        fields = [float(x) for x in self._stat.read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
        return sum(fields) - idle, sum(fields)

    def utilisation(self) -> float:
        """Share of CPU time busy since the previous read."""
        busy, total = self._times()
        db, dt = busy - self._busy, total - self._total
        self._busy, self._total = busy, total
        return min(max(db / dt, 0.0), 1.0) if dt > 0 else 0.0

    def power_w(self) -> float:
        return self.idle_w + (self.peak_w - self.idle_w) * self.utilisation()


def detect_meter(
    *,
    prefer_gpu: bool = True,
    gpu_index: int = 0,
    idle_w: float = 10.0,
    peak_w: float = 65.0,
    powercap: Path = Path("/sys/class/powercap"),
    i2c: Path = Path("/sys/bus/i2c/drivers"),
) -> PowerMeter:
    """The best meter present: NVML (when ``prefer_gpu``), INA3221, RAPL, else an estimate.

    ``idle_w``/``peak_w`` parameterise the estimate (callers pass the catalog device's figures).
    """
    candidates: list[Callable[[], PowerMeter]] = []
    if prefer_gpu:
        candidates.append(lambda: NvmlMeter(gpu_index))
    candidates += [lambda: Ina3221Meter(i2c), lambda: RaplMeter(powercap)]
    for make in candidates:
        try:
            return make()
        except (OSError, _nvml.NvmlError):
            continue
    return EstimatedMeter(idle_w, peak_w)


class PowerWindow:
    """Average power over a measurement window, sampled in a background thread.

    Use as a context manager around the work being measured. Meters with an energy counter give
    the window's mean as energy difference over time; samples (every ``interval_s``) give the
    spread either way.

    Args:
        meter: the meter.
        interval_s: sampling period in seconds.
    """

    def __init__(self, meter: PowerMeter, interval_s: float = 0.05) -> None:
        self.meter = meter
        self.interval_s = interval_s
        self.samples: list[float] = []
        self.mean_w: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.samples.append(self.meter.power_w())

    def __enter__(self) -> PowerWindow:
        self._e0, self._t0 = self.meter.energy_j(), time.monotonic()
        self.meter.power_w()  # start a fresh interval for meters that difference counters
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        e1, t1 = self.meter.energy_j(), time.monotonic()
        if self._e0 is not None and e1 is not None and t1 > self._t0:
            self.mean_w = (e1 - self._e0) / (t1 - self._t0)
        elif self.samples:
            self.mean_w = sum(self.samples) / len(self.samples)
        else:
            self.mean_w = self.meter.power_w()
