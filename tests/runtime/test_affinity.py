"""CPU pinning of the whole process, and its errors."""

from __future__ import annotations

import os
import threading

import pytest

from edgesched.runtime import ExecutorError, available_cpus, pin_process

linux_only = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity"
)


def test_available_cpus() -> None:
    cpus = available_cpus()
    assert cpus and cpus == sorted(set(cpus))
    assert all(0 <= c < (os.cpu_count() or 1) for c in cpus)


@linux_only
def test_pin_one_cpu_then_restore(restore_affinity: list[int]) -> None:
    cpu = restore_affinity[-1]
    pin_process([cpu])
    try:
        assert available_cpus() == [cpu]
    finally:
        pin_process(restore_affinity)
    assert available_cpus() == restore_affinity


@linux_only
def test_pin_reaches_other_threads(restore_affinity: list[int]) -> None:
    started, stop = threading.Event(), threading.Event()
    worker = threading.Thread(target=lambda: (started.set(), stop.wait(10)))
    worker.start()
    started.wait(10)
    cpu = restore_affinity[0]
    try:
        pin_process([cpu])
        assert os.sched_getaffinity(worker.native_id) == {cpu}
    finally:
        pin_process(restore_affinity)
        stop.set()
        worker.join()


@pytest.mark.parametrize(
    ("cpus", "match"),
    [
        ([], "cpus is empty"),
        ([10_000], "cannot pin the process to CPU 10000: this machine has CPUs 0-"),
        ([-1], "CPU -1"),
        (["0"], "cpus must hold CPU numbers"),
        ([True], "cpus must hold CPU numbers"),
        ("01", "cpus must be a list of CPU numbers"),
        (3, "cpus must be a list of CPU numbers"),
    ],
)
def test_bad_cpus(cpus: object, match: str, restore_affinity: list[int]) -> None:
    with pytest.raises(ExecutorError, match=match) as info:
        pin_process(cpus)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_no_op_where_unsupported(
    restore_affinity: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "sched_setaffinity", raising=False)
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    with pytest.warns(RuntimeWarning, match="not supported on this platform"):
        pin_process([0])
    assert available_cpus() == list(range(os.cpu_count() or 1))
