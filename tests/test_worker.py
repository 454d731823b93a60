"""The durable-worker shape on its own (`bot.worker`): items due by a query, one step per item at
a time, at most `concurrency` at once, the next due time, wake-ups, a failing round, stopping;
and the loop under the lease beat."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from bot.worker import Backoff, DurableWorker, Loop


class Table:
    """Items with due times, as a database table would hold them; a step marks its item done."""

    def __init__(self) -> None:
        self.due_at: dict[int, float] = {}
        self.done: list[int] = []
        self.running: set[int] = set()
        self.most_at_once = 0
        self.step_seconds = 0.0
        self.fail_queries = 0
        self.queries = 0

    async def due(self) -> list[int]:
        self.queries += 1
        if self.fail_queries:
            self.fail_queries -= 1
            raise ConnectionError("the database is down")
        now = time.time()
        return sorted(key for key, at in self.due_at.items() if at <= now)

    async def next_due(self) -> float | None:
        now = time.time()
        later = [at for at in self.due_at.values() if at > now]
        return min(later) if later else None

    async def step(self, key: int) -> bool:
        assert key not in self.running  # one step per item at a time
        self.running.add(key)
        self.most_at_once = max(self.most_at_once, len(self.running))
        try:
            await asyncio.sleep(self.step_seconds)
        finally:
            self.running.discard(key)
        del self.due_at[key]
        self.done.append(key)
        return True


def worker(table: Table, *, concurrency: int = 2, error_delay: float = 0.05) -> DurableWorker[int]:
    return DurableWorker(
        name="test worker",
        due=table.due,
        key=lambda key: key,
        step=table.step,
        next_due=table.next_due,
        clock=time.time,
        concurrency=concurrency,
        idle=3600.0,
        error_delay=error_delay,
    )


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


async def test_run_due_starts_at_most_concurrency_items_and_waits_for_them() -> None:
    table = Table()
    table.due_at = {1: 0.0, 2: 0.0, 3: 0.0}
    table.step_seconds = 0.05

    assert await worker(table, concurrency=2).run_due() == [True, True]
    assert table.done == [1, 2] and table.most_at_once == 2


async def test_the_loop_works_everything_due_within_its_bound_and_sleeps_until_the_next() -> None:
    table = Table()
    table.due_at = {key: 0.0 for key in range(5)}
    table.step_seconds = 0.02
    loop = worker(table, concurrency=2)
    loop.start()
    try:
        await until(lambda: len(table.done) == 5)  # each finished step wakes it for the next
        table.due_at[9] = time.time() + 0.2
        loop.wake()  # something was asked for: it looks again and sleeps until it falls due
        await until(lambda: 9 in table.done)
    finally:
        await loop.stop()
    assert table.most_at_once == 2


async def test_a_failing_round_is_tried_again_after_the_error_delay() -> None:
    table = Table()
    table.due_at = {1: 0.0}
    table.fail_queries = 2
    loop = worker(table, error_delay=0.05)
    loop.start()
    try:
        await until(lambda: table.done == [1])
    finally:
        await loop.stop()
    assert table.queries >= 3


async def test_stopping_cancels_steps_in_flight() -> None:
    table = Table()
    table.due_at = {1: 0.0}
    table.step_seconds = 60
    loop = worker(table)
    loop.start()
    await until(lambda: table.running == {1})
    await loop.stop()
    assert table.running == set() and table.done == [] and not loop.running


async def test_a_loop_sleeps_what_its_round_says_unless_woken() -> None:
    rounds: list[float] = []

    async def round() -> float:
        rounds.append(time.monotonic())
        return 3600.0

    loop = Loop(round, name="test loop", error_delay=1.0)
    loop.start()
    try:
        await until(lambda: len(rounds) == 1)
        await asyncio.sleep(0.1)
        assert len(rounds) == 1  # sleeping
        loop.wake()
        await until(lambda: len(rounds) == 2)
    finally:
        await loop.stop()


@pytest.mark.parametrize(("failures", "pause"), [(0, 5.0), (1, 10.0), (3, 40.0), (20, 900.0)])
def test_backoff_doubles_from_its_base_up_to_its_cap(failures: int, pause: float) -> None:
    backoff = Backoff(base=5.0, cap=900.0, max_attempts=8)
    assert backoff.delay(failures) == pause
    assert not backoff.exhausted(7) and backoff.exhausted(8)
