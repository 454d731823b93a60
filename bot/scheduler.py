"""A generic scheduler: "when does item N next need attention", one step at a time per item.

It knows nothing of jobs: it runs `step(key)` when a key comes due. Asking again for a key moves
it sooner, never later; a key that comes due while its previous step still runs gets its next
step as soon as that one ends; a held key is not stepped until it is released. One dispatcher
task sleeps until the next due time or until something is scheduled.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from bot.tasks import log_failure

log = logging.getLogger(__name__)

Step = Callable[[int], Coroutine[Any, Any, None]]
ErrorHandler = Callable[[int, BaseException], None]


class Scheduler:
    def __init__(self, step: Step, *, on_error: ErrorHandler, name: str = "scheduler") -> None:
        """`step(key)` does one unit of work for `key`; `on_error(key, exc)` hears of a step that
        raised (it may schedule the key again)."""
        self._step = step
        self._on_error = on_error
        self._name = name
        self._heap: list[tuple[float, int, int]] = []
        self._due: dict[int, float] = {}
        self._seq = 0
        self._active: dict[int, asyncio.Task[None]] = {}
        self._waiting: set[int] = set()  # came due while their previous step was still running
        self._held: set[int] = set()
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self.stopping = False

    @property
    def running(self) -> bool:
        return self._dispatcher is not None and not self._dispatcher.done()

    def start(self) -> None:
        self._dispatcher = asyncio.create_task(self._dispatch(), name=self._name)
        self._dispatcher.add_done_callback(log_failure)

    async def stop(self, grace: float) -> None:
        """Stop dispatching; give steps in flight `grace` seconds to finish, then cancel them."""
        self.stopping = True
        if self._dispatcher:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
        active = list(self._active.values())
        if active:
            _, pending = await asyncio.wait(active, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def schedule(self, key: int, delay: float = 0.0) -> None:
        """Ask for `key` to be stepped after `delay` seconds (sooner wins)."""
        if key in self._held:
            return  # release() schedules it
        due = asyncio.get_running_loop().time() + max(0.0, delay)
        current = self._due.get(key)
        if current is not None and current <= due:
            return
        self._due[key] = due
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, key))
        self._wake.set()

    def hold(self, key: int) -> None:
        """Keep `key` from being stepped until `release(key)`, whatever is scheduled meanwhile."""
        self._held.add(key)

    def release(self, key: int) -> None:
        """Let a held key be stepped again, now."""
        self._held.discard(key)
        self.schedule(key)

    def due_in(self, key: int) -> float | None:
        """Seconds until `key` is next stepped, if it is scheduled."""
        due = self._due.get(key)
        return None if due is None else max(0.0, due - asyncio.get_running_loop().time())

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            now = loop.time()
            while self._heap and self._heap[0][0] <= now:
                due, _, key = heapq.heappop(self._heap)
                if self._due.get(key) != due:
                    continue  # superseded by an earlier schedule
                if key in self._active:
                    self._waiting.add(key)  # due while its step runs: re-armed when it ends
                    continue
                del self._due[key]
                task = asyncio.create_task(self._step(key), name=f"{self._name}-{key}")
                self._active[key] = task
                task.add_done_callback(functools.partial(self._done, key))
            timeout = self._heap[0][0] - now if self._heap else None
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can lose a cancellation that races
                # with the event being set, and stop() would then wait for ever.
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _done(self, key: int, task: asyncio.Task[None]) -> None:
        self._active.pop(key, None)
        if key in self._waiting:
            self._waiting.discard(key)
            due = self._due.pop(key, None)
            if due is not None:
                self.schedule(key, due - asyncio.get_running_loop().time())
        if not task.cancelled() and (error := task.exception()) is not None:
            self._on_error(key, error)
