"""CPU affinity of the current process: which logical CPUs its threads may run on.

Pinning is how independent applications share one machine without sharing cores: each emulated
node (or each independent application on a real device) is one process pinned to its own CPUs,
with one executor in it. Affinity is a property of the process, so two executors in one process
cannot have different CPU sets.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Sequence

from edgesched.runtime.errors import ExecutorError


def available_cpus() -> list[int]:
    """The logical CPUs the current process may run on, sorted.

    Uses :func:`os.sched_getaffinity` where the platform has it (Linux); elsewhere every CPU of
    the machine (``range(os.cpu_count())``).
    """
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return list(range(os.cpu_count() or 1))
    return sorted(getaffinity(0))


def pin_process(cpus: Sequence[int]) -> None:
    """Restrict the current process, all its threads included, to the logical CPUs ``cpus``.

    Linux applies :func:`os.sched_setaffinity` to one thread, so every thread listed in
    ``/proc/self/task`` is pinned, not only the caller; threads started later inherit the set from
    the thread that starts them. Pin before loading a model, so that the thread pools of ONNX
    Runtime and PyTorch are created inside the set. On platforms without
    :func:`os.sched_setaffinity` (macOS, Windows) this warns and does nothing.

    Args:
        cpus: logical CPU numbers, each in ``range(os.cpu_count())``; see :func:`available_cpus`.

    Raises:
        ExecutorError: ``cpus`` is empty, holds something other than a CPU number, names a CPU
            the machine lacks, or the operating system refuses the set (for example a container's
            cpuset excludes it).
    """
    wanted = _checked(cpus)
    setaffinity = getattr(os, "sched_setaffinity", None)
    if setaffinity is None:
        warnings.warn(
            "CPU pinning is not supported on this platform; the process runs on all CPUs",
            RuntimeWarning,
            stacklevel=2,
        )
        return
    try:
        setaffinity(0, wanted)
    except OSError as exc:
        raise ExecutorError(
            f"cannot pin the process to CPUs {sorted(wanted)}: {exc.strerror or exc}; "
            f"this process may use CPUs {available_cpus()}"
        ) from None
    for tid in _thread_ids():
        with contextlib.suppress(OSError):  # the thread may have ended meanwhile
            setaffinity(tid, wanted)


def _checked(cpus: Sequence[int]) -> set[int]:
    """``cpus`` as a set, after checking that each one exists on this machine."""
    if isinstance(cpus, str | bytes) or not isinstance(cpus, Sequence | set | frozenset):
        raise ExecutorError(f"cpus must be a list of CPU numbers such as [0, 1]; got {cpus!r}")
    if not cpus:
        raise ExecutorError(f"cpus is empty; give at least one CPU number from {available_cpus()}")
    count = os.cpu_count() or 1
    for cpu in cpus:
        if isinstance(cpu, bool) or not isinstance(cpu, int):
            raise ExecutorError(f"cpus must hold CPU numbers (int); got {cpu!r} in {list(cpus)}")
        if not 0 <= cpu < count:
            raise ExecutorError(
                f"cannot pin the process to CPU {cpu}: this machine has CPUs 0-{count - 1}; "
                f"pick from {available_cpus()}"
            )
    return set(cpus)


def _thread_ids() -> list[int]:
    """Ids of this process's threads (Linux ``/proc/self/task``), or none where unreadable."""
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except (OSError, ValueError):
        return []


__all__ = ["available_cpus", "pin_process"]
