"""Measure models on this machine: solo latency, the concurrency performance matrix, power.

For every model the profiler keeps ``max_instances + 1`` loaded instances (processes or threads):
up to ``max_instances`` run in the background of a matrix cell, and one more is the *probe* — the
newly added instance whose latency, divided by its solo latency, is the cell's slowdown. Instances
are loaded and warmed once; a cell only starts and stops them. Power is read over each measuring
window with the best meter present.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from edgesched.errors import EdgeschedError
from edgesched.profile.machine import machine_info
from edgesched.profile.power import PowerMeter, PowerWindow, detect_meter
from edgesched.profile.schema import MixRecord, PowerFigure, ProfileFile, SoloRecord, Stat
from edgesched.profile.workers import ProcessWorker, Stamps, ThreadWorker, Worker


class ProfileError(EdgeschedError):
    """The profiler could not run a model as asked (bad model, batch or backend)."""


@dataclass(frozen=True)
class ProfileSettings:
    """What to profile and how.

    Attributes:
        device_name: name recorded in the profile (a catalog device name lets the simulator use it).
        models: zoo names or ONNX file paths.
        batches: batch sizes for solo latency.
        max_instances: most background instances of each model in the matrix (0: no matrix).
        matrix_batch: batch size of every instance in the matrix (must be in ``batches``).
        backend: ``onnxruntime`` or ``torch``.
        device: ``cpu`` or ``cuda`` (or ``tensorrt`` with onnxruntime).
        threads: intra-op threads per instance.
        mode: ``processes`` (independent applications) or ``threads`` (one application; one CUDA
            stream per instance on a GPU).
        solo_time_s: measuring time of each solo configuration.
        cell_time_s: measuring time of each matrix cell.
        settle_s: time the background runs before a measurement starts.
        idle_w, peak_w: parameters of the estimated power meter when no sensor exists.
    """

    device_name: str
    models: tuple[str, ...]
    batches: tuple[int, ...] = (1,)
    max_instances: int = 2
    matrix_batch: int = 1
    backend: str = "onnxruntime"
    device: str = "cpu"
    threads: int | None = 1
    mode: Literal["processes", "threads"] = "processes"
    solo_time_s: float = 1.0
    cell_time_s: float = 1.0
    settle_s: float = 0.2
    idle_w: float = 10.0
    peak_w: float = 65.0

    def __post_init__(self) -> None:
        if not self.models:
            raise ProfileError("give at least one model to profile")
        if len(set(self.models)) != len(self.models):
            raise ProfileError(f"models are repeated: {list(self.models)}")
        if not self.batches or any(b < 1 for b in self.batches):
            raise ProfileError(f"batch sizes must be >= 1, got {list(self.batches)}")
        if self.matrix_batch not in self.batches:
            raise ProfileError(
                f"the matrix batch {self.matrix_batch} is not in {list(self.batches)}"
            )
        if self.max_instances < 0:
            raise ProfileError(f"--max-instances must be >= 0, got {self.max_instances}")


def mixes(models: Sequence[str], max_instances: int) -> list[dict[str, int]]:
    """Every mix of 0..max_instances running instances per model, except the empty one."""
    grid = itertools.product(range(max_instances + 1), repeat=len(models))
    return [dict(zip(models, counts, strict=True)) for counts in grid if any(counts)]


def model_key(model: str) -> str:
    """The name a model goes by in the profile: its zoo name, or an ONNX file's stem."""
    return Path(model).stem if model.endswith(".onnx") else model


def _durations(stamps: Stamps, w0: float, w1: float) -> list[float]:
    return [b - a for a, b in stamps if a >= w0 and b <= w1]


def _power(window: PowerWindow | None, meter: PowerMeter | None) -> PowerFigure | None:
    if window is None or meter is None or window.mean_w is None:
        return None
    return PowerFigure(
        meter=meter.name,
        source=meter.source,  # type: ignore[arg-type]
        detail=meter.detail,
        mean_w=window.mean_w,
        samples_w=Stat.of(window.samples) if window.samples else None,
    )


class Profiler:
    """Runs one profile (see the module docstring).

    Args:
        settings: what to measure.
        progress: called with (done, total, description) after each configuration.
        meter: a power meter; default: :func:`detect_meter`.
    """

    def __init__(
        self,
        settings: ProfileSettings,
        progress: Callable[[int, int, str], None] | None = None,
        meter: PowerMeter | None = None,
    ) -> None:
        self.s = settings
        self.progress = progress
        self.meter = meter
        self.keys = [model_key(m) for m in settings.models]
        self._pool: dict[str, list[Worker]] = {}

    @property
    def total_steps(self) -> int:
        """Configurations to measure: solo runs plus matrix cells."""
        cells = len(mixes(self.keys, self.s.max_instances)) * len(self.keys)
        return len(self.keys) * len(self.s.batches) + cells

    def _opts(self, stream: int) -> dict[str, object]:
        opts: dict[str, object] = {"backend": self.s.backend, "device": self.s.device}
        if self.s.threads is not None:
            opts["threads"] = self.s.threads
        if self.s.mode == "threads" and self.s.device == "cuda":
            opts["stream"] = stream
        return opts

    def _start_pool(self) -> None:
        cls = ProcessWorker if self.s.mode == "processes" else ThreadWorker
        workers: list[Worker] = []
        try:
            for model, key in zip(self.s.models, self.keys, strict=True):
                self._pool[key] = []
                for _ in range(self.s.max_instances + 1):
                    w = cls(model, self.s.batches, self._opts(len(workers)))
                    self._pool[key].append(w)
                    workers.append(w)
            for w in workers:
                w.wait_ready()  # type: ignore[attr-defined]
        except (RuntimeError, TimeoutError) as exc:
            self.close()
            raise ProfileError(str(exc)) from None
        except EdgeschedError as exc:
            self.close()
            raise ProfileError(str(exc)) from None

    def close(self) -> None:
        """Stop every instance."""
        for ws in self._pool.values():
            for w in ws:
                w.close()
        self._pool.clear()

    def _window(self, seconds: float) -> tuple[float, float, PowerWindow | None]:
        window = PowerWindow(self.meter) if self.meter is not None else None
        if window is not None:
            with window:
                w0 = time.perf_counter()
                time.sleep(seconds)
                w1 = time.perf_counter()
        else:
            w0 = time.perf_counter()
            time.sleep(seconds)
            w1 = time.perf_counter()
        return w0, w1, window

    def _measure(
        self, background: list[Worker], probe: Worker, batch: int, seconds: float
    ) -> tuple[Stamps, dict[Worker, Stamps], float, float, PowerWindow | None]:
        for w in background:
            w.start(batch)
        if background:
            time.sleep(self.s.settle_s)
        probe.start(batch)
        w0, w1, window = self._window(seconds)
        probe_stamps = probe.stop()
        bg = {w: w.stop() for w in background}
        return probe_stamps, bg, w0, w1, window

    def run(self) -> ProfileFile:
        """Measure everything; return the profile.

        Raises:
            ProfileError: a model cannot be loaded or run as asked.
        """
        s = self.s
        if self.meter is None:
            self.meter = detect_meter(
                prefer_gpu=s.device in ("cuda", "tensorrt"), idle_w=s.idle_w, peak_w=s.peak_w
            )
        self._start_pool()
        try:
            idle = _power(self._window(min(1.0, s.solo_time_s))[2], self.meter)
            done, total = 0, self.total_steps
            solo: list[SoloRecord] = []
            for key in self.keys:
                for b in s.batches:
                    stamps, _, w0, w1, window = self._measure(
                        [], self._pool[key][0], b, s.solo_time_s
                    )
                    solo.append(self._solo_record(key, b, stamps, w0, w1, window))
                    done += 1
                    self._tick(done, total, f"solo {key} batch {b}")
            matrix: list[MixRecord] = []
            for mix in mixes(self.keys, s.max_instances):
                for probe_key in self.keys:
                    matrix.append(self._cell(mix, probe_key, solo))
                    done += 1
                    self._tick(done, total, f"{probe_key} beside {mix}")
            backend = dict(self._pool[self.keys[0]][0].info)
        finally:
            self.close()
        return ProfileFile(
            device=s.device_name,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            machine=machine_info(),
            backend=backend,
            mode="streams" if s.mode == "threads" and s.device == "cuda" else s.mode,
            models=self.keys,
            batches=list(s.batches),
            max_instances=s.max_instances,
            settings={
                "solo_time_s": s.solo_time_s,
                "cell_time_s": s.cell_time_s,
                "settle_s": s.settle_s,
                "matrix_batch": s.matrix_batch,
                "threads": float(s.threads or 0),
            },
            idle_power=idle,
            solo=solo,
            matrix=matrix,
        )

    def _tick(self, done: int, total: int, what: str) -> None:
        if self.progress is not None:
            self.progress(done, total, what)

    def _solo_record(
        self, key: str, batch: int, stamps: Stamps, w0: float, w1: float, window: PowerWindow | None
    ) -> SoloRecord:
        lat = _durations(stamps, w0, w1) or [b - a for a, b in stamps]
        if not lat:
            raise ProfileError(
                f"{key} at batch {batch} finished no inference within {self.s.solo_time_s} s; "
                "raise --solo-time"
            )
        return SoloRecord(
            model=key,
            batch=batch,
            latency_s=Stat.of(lat),
            throughput_rps=batch * len(lat) / (w1 - w0),
            power=_power(window, self.meter),
        )

    def _cell(self, mix: dict[str, int], probe_key: str, solo: list[SoloRecord]) -> MixRecord:
        s = self.s
        background = [w for key, n in mix.items() for w in self._pool[key][1 : n + 1]]
        probe = self._pool[probe_key][0]
        stamps, bg, w0, w1, window = self._measure(background, probe, s.matrix_batch, s.cell_time_s)
        lat = _durations(stamps, w0, w1) or [b - a for a, b in stamps]
        if not lat:
            raise ProfileError(
                f"{probe_key} finished no inference beside {mix} within {s.cell_time_s} s; "
                "raise --cell-time"
            )
        steady: dict[str, list[float]] = {}
        completed = len(lat)
        for w, st in bg.items():
            d = _durations(st, w0, w1)
            steady.setdefault(model_key(w.model), []).extend(d)
            completed += len(d)
        solo_med = next(
            r.latency_s.median for r in solo if r.model == probe_key and r.batch == s.matrix_batch
        )
        probe_stat = Stat.of(lat)
        return MixRecord(
            running={k: n for k, n in mix.items() if n},
            batch=s.matrix_batch,
            probe=probe_key,
            probe_latency_s=probe_stat,
            slowdown=probe_stat.median / solo_med,
            steady_latency_s={k: Stat.of(v) for k, v in steady.items() if v},
            throughput_rps=s.matrix_batch * completed / (w1 - w0),
            power=_power(window, self.meter),
        )


def profile(
    settings: ProfileSettings, progress: Callable[[int, int, str], None] | None = None
) -> ProfileFile:
    """Run :class:`Profiler` with ``settings`` and return the profile."""
    return Profiler(settings, progress).run()
