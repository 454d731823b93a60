"""The generic scheduler on its own: due times, sooner wins, one step at a time per key,
hold/release, errors, and stopping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.scheduler import Scheduler


class Steps:
    """Records every step; a step can be made slow or made to fail."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.finished: list[int] = []
        self.errors: list[tuple[int, BaseException]] = []
        self.running: dict[int, int] = {}
        self.most_at_once: dict[int, int] = {}
        self.seconds: dict[int, float] = {}
        self.fail: set[int] = set()
        self.changed = asyncio.Event()

    async def step(self, key: int) -> None:
        self.started.append(key)
        self.running[key] = self.running.get(key, 0) + 1
        self.most_at_once[key] = max(self.most_at_once.get(key, 0), self.running[key])
        try:
            await asyncio.sleep(self.seconds.get(key, 0))
            if key in self.fail:
                raise RuntimeError(f"step {key} broke")
        finally:
            self.running[key] -= 1
            self.finished.append(key)
            self.changed.set()

    def on_error(self, key: int, error: BaseException) -> None:
        self.errors.append((key, error))

    async def until(self, count: int, timeout: float = 2.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.finished) < count:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def steps() -> Steps:
    return Steps()


@pytest.fixture
async def scheduler(steps: Steps) -> AsyncIterator[Scheduler]:
    scheduler = Scheduler(steps.step, on_error=steps.on_error, name="test")
    scheduler.start()
    yield scheduler
    await scheduler.stop(grace=1)


async def test_a_key_is_stepped_once_it_comes_due_not_before(scheduler: Scheduler, steps: Steps) -> None:
    scheduler.schedule(1, 0.2)
    await asyncio.sleep(0.1)
    assert steps.started == []
    await steps.until(1)
    assert steps.started == [1]


async def test_a_sooner_schedule_wins_and_the_key_is_stepped_once(scheduler: Scheduler, steps: Steps) -> None:
    scheduler.schedule(1, 5.0)
    scheduler.schedule(1, 0.0)
    await steps.until(1)
    await asyncio.sleep(0.1)
    assert steps.started == [1]
    assert scheduler.due_in(1) is None  # the later time was dropped, not kept as a second step


async def test_a_later_schedule_does_not_postpone_an_earlier_one(scheduler: Scheduler, steps: Steps) -> None:
    scheduler.schedule(1, 0.05)
    scheduler.schedule(1, 10.0)
    await steps.until(1, timeout=1.0)
    assert steps.started == [1]


async def test_a_key_never_runs_two_steps_at_once(scheduler: Scheduler, steps: Steps) -> None:
    steps.seconds[1] = 0.2
    scheduler.schedule(1)
    await asyncio.sleep(0.05)
    scheduler.schedule(1)  # due while the first step is still running
    await steps.until(2)
    assert steps.started == [1, 1]
    assert steps.most_at_once[1] == 1


async def test_due_while_its_step_runs_is_not_lost(scheduler: Scheduler, steps: Steps) -> None:
    steps.seconds[1] = 0.2
    scheduler.schedule(1)
    await asyncio.sleep(0.05)
    scheduler.schedule(1, 0.05)  # comes due (0.1 s) before the step ends (0.2 s)
    await steps.until(2)
    assert steps.finished == [1, 1]


async def test_different_keys_run_side_by_side(scheduler: Scheduler, steps: Steps) -> None:
    for key in (1, 2, 3):
        steps.seconds[key] = 0.3
        scheduler.schedule(key)
    started = asyncio.get_running_loop().time()
    await steps.until(3)
    assert asyncio.get_running_loop().time() - started < 0.6


async def test_a_held_key_waits_for_release(scheduler: Scheduler, steps: Steps) -> None:
    scheduler.hold(1)
    scheduler.schedule(1)
    await asyncio.sleep(0.1)
    assert steps.started == []
    scheduler.release(1)
    await steps.until(1)
    assert steps.started == [1]


async def test_a_failing_step_is_reported_and_the_scheduler_goes_on(
    scheduler: Scheduler, steps: Steps
) -> None:
    steps.fail.add(1)
    scheduler.schedule(1)
    scheduler.schedule(2, 0.05)
    await steps.until(2)
    assert [(key, str(error)) for key, error in steps.errors] == [(1, "step 1 broke")]
    assert scheduler.running


async def test_stop_lets_a_step_in_flight_finish_within_the_grace(steps: Steps) -> None:
    scheduler = Scheduler(steps.step, on_error=steps.on_error)
    scheduler.start()
    steps.seconds[1] = 0.1
    scheduler.schedule(1)
    await asyncio.sleep(0.02)
    await scheduler.stop(grace=1)
    assert steps.finished == [1] and not scheduler.running and scheduler.stopping


async def test_stop_cancels_a_step_that_outlasts_the_grace(steps: Steps) -> None:
    scheduler = Scheduler(steps.step, on_error=steps.on_error)
    scheduler.start()
    steps.seconds[1] = 10
    scheduler.schedule(1)
    await asyncio.sleep(0.02)
    await scheduler.stop(grace=0.05)
    assert steps.finished == [1]  # ended by the cancellation (the finally ran)
    assert steps.errors == []  # a cancellation is not a step error
