"""One shape for the bot's background workers: a loop that wakes, does a round, and sleeps until
the next due time or until woken; and, on it, a durable worker of items kept in the database.

The durable worker knows nothing of what it works on. It is given:

- a due query (`due()`: the items due now, from the database, so a restart carries on);
- a step (`step(item)`: one round of work on one item; it claims the item first, with a lease or
  a conditional update, so two processes never work on one item at once, and stores its outcome
  and any retry state in the database: a restart or a takeover keeps the back-off);
- the next due time (`next_due()`: when the earliest item not due yet falls due, on `clock`; it
  may leave out the items in `busy`, whose stored due time says nothing of when they start next);
- a bound on concurrency: at most `concurrency` steps at once, one per item (an item due while its
  step runs is not started twice).

A finished step wakes the loop (its item, or one waiting for a free slot, may be due), within
`MIN_DELAY`, so that the steps ending meanwhile share one look; `wake()` wakes it at once
(something was just asked for). Three things live in memory only, for the moment they
matter, never as the item's schedule: `wake(key)` has one item stepped now, whatever its stored
due time says (a hint that it may be done: if its step is running, it runs again as soon as that
ends); `hold(key)` keeps a new item from being started until `release(key)` (its requester is
still being answered); `rest(key, seconds)` keeps an item whose step could not store its own retry
(the database refused the write) from being started again at once. The loop never sleeps longer
than `idle`, and a round that fails is logged and tried again after `error_delay`.

`leases.Beat` (renewing claims) is the plain loop; the job runner, the keeper and the expiry
reminders are durable workers.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bot.tasks import log_failure

log = logging.getLogger(__name__)

Item = TypeVar("Item")

MIN_DELAY = 0.05
"""The shortest sleep between rounds: something due a moment ago is looked at again at once, but
the loop never spins."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Pauses between retries of one item, doubling from `base` up to `cap`, given up after
    `max_attempts` failures. The count lives in the database, next to the item."""

    base: float
    cap: float
    max_attempts: int

    def delay(self, failures: int) -> float:
        """The pause after `failures` earlier failures (0: the first retry waits `base`)."""
        return min(self.cap, self.base * 2.0 ** min(max(0, failures), 60))

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


class Loop:
    """A background task that runs `round()` and then sleeps for the seconds it returns, or until
    `wake()`. A failing round is logged (with its traceback the first time, then a line per round:
    a database outage fails every round) and the next comes after `error_delay`."""

    def __init__(
        self,
        round: Callable[[], Awaitable[float]],
        *,
        name: str,
        error_delay: float,
        first_delay: float = 0.0,
    ) -> None:
        self._round = round
        self.name = name
        self._error_delay = error_delay
        self._first_delay = first_delay
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)
            self._task.add_done_callback(log_failure)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def wake(self) -> None:
        """Run the next round now (or as soon as the current one ends)."""
        self._wake.set()

    async def _run(self) -> None:
        delay = self._first_delay
        failures = 0
        while True:
            if delay > 0:
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can lose a cancellation that
                    # races with the event being set, and stop() would then wait for ever.
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            self._wake.clear()
            try:
                delay = await self._round()
            except Exception as error:
                failures += 1
                log.warning(
                    "%s failed (%s in a row): %s: %.200s; trying again later",
                    self.name,
                    failures,
                    type(error).__name__,
                    error,
                    exc_info=error if failures == 1 else None,
                )
                delay = self._error_delay
            else:
                failures = 0


class DurableWorker(Generic[Item]):
    """Works on items stored in the database, due by time, with a bounded number of steps at once
    (see the module's docstring)."""

    def __init__(
        self,
        *,
        name: str,
        due: Callable[[], Awaitable[Sequence[Item]]],
        key: Callable[[Item], Hashable],
        step: Callable[[Item], Coroutine[Any, Any, bool]],
        next_due: Callable[[], Awaitable[float | None]],
        clock: Callable[[], float],
        concurrency: int,
        idle: float,
        error_delay: float,
        item: Callable[[Hashable], Item] | None = None,
    ) -> None:
        """`step(item)` says whether it did the item's work (False: another process had it, or it
        could not be done now); `run_due` counts those. `item(key)`: the item to step for a key
        woken by `wake(key)` (needed only by a worker whose keys are woken one by one)."""
        self.name = name
        self._due = due
        self._key = key
        self._step = step
        self._next_due = next_due
        self._clock = clock
        self._concurrency = max(1, concurrency)
        self._idle = idle
        self._error_delay = error_delay
        self._item = item
        self._loop = Loop(self._round, name=name, error_delay=error_delay)
        self._working: dict[Hashable, asyncio.Task[bool]] = {}
        self._woken: set[Hashable] = set()  # to step now, whatever their stored due time
        self._held: set[Hashable] = set()
        self._resting: dict[Hashable, float] = {}  # not started again before then (on `clock`)
        self._look_soon: asyncio.TimerHandle | None = None
        self._must_look = True  # asked to look (or a step ended); else only when `_look_at` comes
        self._look_at = 0.0  # on `clock`: when the loop's sleep ends, by the last look

    @property
    def running(self) -> bool:
        return self._loop.running

    @property
    def busy(self) -> frozenset[Hashable]:
        """The keys whose stored due time does not say when they start next: in work (their step
        stores the next one), held, or resting. A `next_due` may leave them out."""
        return frozenset(self._working.keys() | self._held | self._resting.keys())

    def start(self) -> None:
        self._loop.start()

    async def stop(self, grace: float = 0.0) -> None:
        """Stop looking; give the steps in flight `grace` seconds to end, then cancel the rest
        (each item's stored state stands: the next start, here or in another process, carries on
        from it)."""
        await self._loop.stop()
        if self._look_soon is not None:
            self._look_soon.cancel()
            self._look_soon = None
        tasks = list(self._working.values())
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._working.clear()
        if self._look_soon is not None:  # set by the steps just cancelled
            self._look_soon.cancel()
            self._look_soon = None

    def wake(self, key: Hashable | None = None) -> None:
        """Something may be due now: look again. With `key`: step that item now (or as soon as
        its step in work ends, or it is released), whatever its stored due time says, without
        asking the database what else is due."""
        if key is None:
            self._must_look = True
        else:
            assert self._item is not None, "a worker whose keys are woken needs `item`"
            self._woken.add(key)
            self._resting.pop(key, None)
        self._loop.wake()

    def hold(self, key: Hashable) -> None:
        """Start nothing for `key` until `release(key)`, whatever is due or woken meanwhile."""
        self._held.add(key)

    def release(self, key: Hashable) -> None:
        """Let a held key be worked on again, now."""
        self._held.discard(key)
        self.wake(key)

    def rest(self, key: Hashable, seconds: float) -> None:
        """Start nothing for `key` for `seconds` (its step could not store when it is next due)."""
        self._resting[key] = self._clock() + seconds
        self._woken.discard(key)

    async def run_due(self) -> list[bool]:
        """Start the items due now (as many as the bound allows, none already in work) and wait
        for those steps; what each returned. The loop's round, waited for (tests drive it)."""
        started = self._start(await self._due())
        results = await asyncio.gather(*started, return_exceptions=True)
        return [result is True for result in results]  # a step that raised did nothing

    async def _round(self) -> float:
        now = self._clock()
        if not self._must_look and now < self._look_at:
            # Woken for one item (a release, a callback): it is started without asking the
            # database again, and the loop sleeps on until the look it had planned.
            self._start([])
            return self._look_at - now
        self._must_look = False
        try:
            delay = await self._look()
        except BaseException:
            self._must_look = True  # the next round (after the loop's error delay) looks again
            raise
        self._look_at = self._clock() + delay
        return delay

    async def _look(self) -> float:
        """Ask the database what is due, start it, and say how long to sleep."""
        looked_again = False
        while True:
            started = self._start(await self._due())
            if looked_again and not started:
                # Still due now, and nothing of it could start: it is in work, held or resting,
                # or waits for a slot. A step's end, a release or a rest's end wakes the loop.
                return self._wait()
            at = await self._next_due()
            if at is None:
                return self._wait()
            delay = at - self._clock()
            if delay > 0:
                return max(MIN_DELAY, min(self._wait(), delay))
            if len(self._working) >= self._concurrency:
                return self._wait()  # a step's end frees a slot and wakes the loop
            looked_again = True  # due now: it came due since the query, or it is busy

    def _wait(self) -> float:
        """The longest sleep: `idle`, or until the first rest ends."""
        if not self._resting:
            return self._idle
        return max(MIN_DELAY, min(self._idle, min(self._resting.values()) - self._clock()))

    def _start(self, items: Sequence[Item]) -> list[asyncio.Task[bool]]:
        now = self._clock()
        for key, until in list(self._resting.items()):
            if until <= now:
                del self._resting[key]
        # Woken keys first (a hint that they may be done); each stays woken until it starts.
        candidates: list[tuple[Hashable, Item | None]] = [(key, None) for key in self._woken]
        candidates += [(self._key(item), item) for item in items]
        started = []
        for key, item in candidates:
            if len(self._working) >= self._concurrency:
                break  # the rest wait for a free slot (a step ending wakes the loop)
            if key in self._working or key in self._held or key in self._resting:
                continue
            if item is None:
                assert self._item is not None
                item = self._item(key)
            self._woken.discard(key)
            task = asyncio.create_task(self._step(item), name=f"{self.name}-{key}")
            self._working[key] = task
            task.add_done_callback(functools.partial(self._finished, key))
            started.append(task)
        return started

    def _finished(self, key: Hashable, task: asyncio.Task[bool]) -> None:
        if self._working.get(key) is task:
            del self._working[key]
        if not task.cancelled() and task.exception() is not None:
            # Its step could not store what comes next: not again at once (a hot loop).
            self._resting.setdefault(key, self._clock() + self._error_delay)
        log_failure(task)
        # Its next step (or an item waiting for a slot) may be due: look again shortly. The steps
        # that end meanwhile share that look (a busy worker's steps end many times a second, and
        # each look is a query or two).
        if self._look_soon is None or self._look_soon.cancelled():
            self._look_soon = asyncio.get_running_loop().call_later(MIN_DELAY, self._look_again)

    def _look_again(self) -> None:
        self._look_soon = None
        self.wake()
