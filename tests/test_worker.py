"""The durable-worker shape on its own (`bot.worker`): items due by a query, one step per item at
a time, at most `concurrency` at once, the next due time, wake-ups (of one item too), holds, a
failing round or step, stopping (with a grace); and the loop under the lease beat. (What the job
runner's in-memory scheduler promised before the runner became a durable worker is here too.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import cast

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
        self.started: list[int] = []
        self.fail: set[int] = set()
        self.reschedule: dict[int, float] = {}  # a step stores this next due time (from its end)

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

    def next_due_but(self, busy: Callable[[], frozenset[object]]) -> Callable[[], Awaitable[float | None]]:
        """A next due time that leaves out the busy items, as the job runner's does."""

        async def next_due() -> float | None:
            times = [at for key, at in self.due_at.items() if key not in busy()]
            return min(times) if times else None

        return next_due

    async def step(self, key: int) -> bool:
        assert key not in self.running  # one step per item at a time
        self.started.append(key)
        self.running.add(key)
        self.most_at_once = max(self.most_at_once, len(self.running))
        try:
            await asyncio.sleep(self.step_seconds)
            if key in self.fail:
                raise RuntimeError(f"step {key} broke")
        finally:
            self.running.discard(key)
        self.due_at.pop(key, None)
        if key in self.reschedule:
            self.due_at[key] = time.time() + self.reschedule.pop(key)
        self.done.append(key)
        return True


def worker(
    table: Table, *, concurrency: int = 2, error_delay: float = 0.05, busy_left_out: bool = False
) -> DurableWorker[int]:
    made: list[DurableWorker[int]] = []
    made.append(
        DurableWorker(
            name="test worker",
            due=table.due,
            key=lambda key: key,
            item=lambda key: cast(int, key),
            step=table.step,
            next_due=table.next_due_but(lambda: made[0].busy) if busy_left_out else table.next_due,
            clock=time.time,
            concurrency=concurrency,
            idle=3600.0,
            error_delay=error_delay,
        )
    )
    return made[0]


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


# -- one item woken, held, resting; stopping with a grace -------------------------------------


async def test_a_woken_item_is_stepped_now_whatever_its_stored_due_time() -> None:
    table = Table()
    table.due_at = {1: time.time() + 3600}
    loop = worker(table)
    loop.start()
    try:
        await asyncio.sleep(0.1)
        assert table.started == []
        loop.wake(1)  # a callback: the item may be done
        await until(lambda: table.done == [1])
    finally:
        await loop.stop()


async def test_an_item_woken_while_its_step_runs_runs_again_when_it_ends_never_twice_at_once() -> None:
    table = Table()
    table.due_at = {1: 0.0}
    table.step_seconds = 0.2
    table.reschedule[1] = 3600.0  # its step stores a later due time
    loop = worker(table)
    loop.start()
    try:
        await until(lambda: table.running == {1})
        loop.wake(1)  # while it runs: not lost, not started beside it
        await until(lambda: table.done == [1, 1])
    finally:
        await loop.stop()
    assert table.most_at_once == 1


async def test_a_held_item_waits_for_its_release_whatever_is_due_or_woken() -> None:
    table = Table()
    table.due_at = {1: 0.0, 2: 0.0}
    loop = worker(table)
    loop.hold(1)
    loop.start()
    try:
        await until(lambda: table.done == [2])
        loop.wake(1)
        await asyncio.sleep(0.1)
        assert table.started == [2]
        loop.release(1)
        await until(lambda: table.done == [2, 1])
    finally:
        await loop.stop()


async def test_a_step_that_raises_rests_its_item_and_the_worker_goes_on() -> None:
    # The step could not store its next due time: without a rest its item would be due again at
    # once, a hot loop.
    table = Table()
    table.due_at = {1: 0.0, 2: time.time() + 0.05}
    table.fail.add(1)
    loop = worker(table, error_delay=0.3)
    loop.start()
    try:
        await until(lambda: table.done == [2])
        assert table.started.count(1) == 1
        await until(lambda: table.started.count(1) == 2)  # again after the rest
    finally:
        await loop.stop()
    assert loop.running is False


async def test_an_item_due_later_is_not_kept_waiting_by_a_long_step() -> None:
    # Item 1's stored due time stays in the past while its step runs (it stores the next one when
    # it ends); item 2 still starts when it falls due, not when item 1 is done.
    table = Table()
    table.step_seconds = 1.0
    table.due_at = {1: 0.0}
    loop = worker(table, busy_left_out=True)
    loop.start()
    try:
        await until(lambda: table.running == {1})
        table.due_at[2] = time.time() + 0.2
        loop.wake()
        await until(lambda: 2 in table.started, seconds=0.7)
    finally:
        await loop.stop()


async def test_stop_lets_a_step_in_flight_finish_within_the_grace() -> None:
    table = Table()
    table.due_at = {1: 0.0}
    table.step_seconds = 0.1
    loop = worker(table)
    loop.start()
    await until(lambda: table.running == {1})
    await loop.stop(grace=1.0)
    assert table.done == [1] and not loop.running


async def test_stop_cancels_a_step_that_outlasts_the_grace() -> None:
    table = Table()
    table.due_at = {1: 0.0}
    table.step_seconds = 60
    loop = worker(table)
    loop.start()
    await until(lambda: table.running == {1})
    await loop.stop(grace=0.05)
    assert table.running == set() and table.done == []
