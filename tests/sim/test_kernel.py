"""The event kernel: ordering, the clock, and failures that stop the run."""

from __future__ import annotations

from typing import Any

import pytest

from edgesched.sim.kernel import NORMAL, URGENT, Kernel


class Log:
    """A callback that records ``(time, a, b, kernel.now)`` for every event it handles."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.calls: list[tuple[float, Any, Any, float]] = []

    def __call__(self, at: float, a: Any, b: Any) -> None:
        self.calls.append((at, a, b, self.kernel.now))

    @property
    def order(self) -> list[Any]:
        return [a for _, a, _, _ in self.calls]


@pytest.fixture
def kernel() -> Kernel:
    return Kernel()


@pytest.fixture
def log(kernel: Kernel) -> Log:
    return Log(kernel)


def test_priorities_are_named_and_urgent_sorts_first() -> None:
    assert URGENT < NORMAL


def test_same_time_and_priority_run_first_in_first_out(kernel: Kernel, log: Log) -> None:
    for i in range(10):
        kernel.schedule(1.0, NORMAL, log, i)
    kernel.run()
    assert log.order == list(range(10))


def test_urgent_runs_before_normal_at_the_same_instant(kernel: Kernel, log: Log) -> None:
    kernel.schedule(2.0, NORMAL, log, "normal-1")
    kernel.schedule(2.0, URGENT, log, "urgent-1")
    kernel.schedule(2.0, NORMAL, log, "normal-2")
    kernel.schedule(2.0, URGENT, log, "urgent-2")
    kernel.run()
    assert log.order == ["urgent-1", "urgent-2", "normal-1", "normal-2"]


def test_earlier_time_wins_over_priority(kernel: Kernel, log: Log) -> None:
    kernel.schedule(3.0, URGENT, log, "late urgent")
    kernel.schedule(1.0, NORMAL, log, "early normal")
    kernel.run()
    assert log.order == ["early normal", "late urgent"]


def test_callback_gets_time_arguments_and_now(kernel: Kernel, log: Log) -> None:
    kernel.schedule(1.5, NORMAL, log, "a", "b")
    kernel.schedule(0.5, NORMAL, log, "x")
    kernel.run()
    assert log.calls == [(0.5, "x", None, 0.5), (1.5, "a", "b", 1.5)]
    assert kernel.now == 1.5
    assert len(kernel) == 0


def test_scheduling_in_the_past_raises(kernel: Kernel, log: Log) -> None:
    kernel.run_until(2.0)
    with pytest.raises(ValueError, match="before now"):
        kernel.schedule(1.999, NORMAL, log, None)
    assert len(kernel) == 0
    kernel.schedule(2.0, NORMAL, log, "now is fine")
    kernel.run()
    assert log.order == ["now is fine"]


def test_events_scheduled_by_handlers_run(kernel: Kernel, log: Log) -> None:
    def chain(at: float, depth: int, _: Any) -> None:
        log(at, depth, None)
        if depth < 3:
            kernel.schedule(at + 1.0, NORMAL, chain, depth + 1)
            kernel.schedule(at, URGENT, log, f"urgent at {at}")

    kernel.schedule(0.0, NORMAL, chain, 0)
    kernel.run()
    assert log.order == [0, "urgent at 0.0", 1, "urgent at 1.0", 2, "urgent at 2.0", 3]
    assert kernel.now == 3.0


@pytest.mark.parametrize("runner", ["run", "run_until"])
def test_an_exception_in_a_callback_propagates(kernel: Kernel, log: Log, runner: str) -> None:
    def boom(at: float, a: Any, b: Any) -> None:
        raise RuntimeError(f"boom at {at}")

    kernel.schedule(1.0, NORMAL, log, "before")
    kernel.schedule(2.0, NORMAL, boom, None)
    kernel.schedule(3.0, NORMAL, log, "after")
    with pytest.raises(RuntimeError, match=r"boom at 2\.0"):
        kernel.run() if runner == "run" else kernel.run_until(10.0)
    assert log.order == ["before"]  # the run stopped at the failure
    assert kernel.now == 2.0
    assert len(kernel) == 1  # the later event is still queued, not silently dropped


def test_run_until_handles_due_events_and_sets_now(kernel: Kernel, log: Log) -> None:
    for t in (1.0, 3.0, 5.0, 7.0):
        kernel.schedule(t, NORMAL, log, t)
    kernel.run_until(5.0)
    assert log.order == [1.0, 3.0, 5.0]  # an event exactly at ``until`` is due
    assert kernel.now == 5.0
    assert len(kernel) == 1
    kernel.run_until(6.0)
    assert kernel.now == 6.0
    assert log.order == [1.0, 3.0, 5.0]
    kernel.run()
    assert log.order == [1.0, 3.0, 5.0, 7.0]


def test_run_until_on_an_empty_queue_moves_the_clock(kernel: Kernel) -> None:
    kernel.run_until(4.25)
    assert kernel.now == 4.25
    assert kernel.clock() == 4.25


def test_run_until_never_moves_the_clock_backwards(kernel: Kernel) -> None:
    kernel.run_until(5.0)
    with pytest.raises(ValueError):
        kernel.run_until(3.0)
    assert kernel.now == 5.0
