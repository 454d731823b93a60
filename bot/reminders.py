"""Expiry reminders: `EXPIRY_REMINDER_HOURS` before a result's links expire, its member gets one
reminder with the links (by DM, or in the channel where DMs are closed).

Scheduled from the database, not from memory: one task sleeps until the next reminder falls due
(or until a result is delivered), sends what is due, and marks each reminder sent before sending
it, so a restart never sends one twice. A reminder Discord would not take is tried again later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from bot.models import DeliveredMessage, Job
from bot.store import Store
from bot.tasks import log_failure

log = logging.getLogger(__name__)

RETRY_SECONDS = 300.0
"""How long a reminder Discord would not take waits before it is tried again."""
MAX_ATTEMPTS = 5
IDLE_SECONDS = 3600.0
"""The longest the task sleeps without looking, whatever it expects."""


class ReminderSender(Protocol):
    """Shows a member their reminder (the Discord side)."""

    async def remind(self, job: Job, result: list[DeliveredMessage]) -> bool:
        """Send the reminder for `job`, whose result was shown in `result`; whether it was sent."""
        ...


class Reminders:
    def __init__(
        self, store: Store, sender: ReminderSender, *, window: float, clock: Callable[[], float] = time.time
    ) -> None:
        """`window`: how long before the links expire the reminder is sent (0: never)."""
        self._store = store
        self._sender = sender
        self.window = window
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failures: dict[int, int] = {}
        self._retry_at: dict[int, float] = {}

    @property
    def enabled(self) -> bool:
        return self.window > 0

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="reminders")
            self._task.add_done_callback(log_failure)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def wake(self) -> None:
        """A result was just delivered: its reminder may be due sooner than the one awaited."""
        self._wake.set()

    async def send_due(self) -> int:
        """Send every reminder due now; how many went out."""
        now = self._clock()
        sent = 0
        for job in await self._store.jobs.to_remind(window=self.window, now=now):
            if self._retry_at.get(job.id, 0.0) > now:
                continue
            if not await self._store.jobs.claim_reminder(job.id):
                continue  # another sender has it
            try:
                result = await self._store.deliveries.result_messages(job.id)
                delivered = await self._sender.remind(job, result)
            except Exception:
                log.exception("job %s: sending the expiry reminder failed", job.id)
                delivered = False
            if delivered:
                sent += 1
                self._failures.pop(job.id, None)
                self._retry_at.pop(job.id, None)
                log.info("job %s guild=%s member=%s: expiry reminder sent", job.id, job.guild_id, job.user_id)
                continue
            failures = self._failures.get(job.id, 0) + 1
            if failures >= MAX_ATTEMPTS:
                log.warning(
                    "job %s: expiry reminder could not be delivered %s times; giving up", job.id, failures
                )
                self._failures.pop(job.id, None)
                continue  # stays claimed: never tried again
            self._failures[job.id] = failures
            self._retry_at[job.id] = now + RETRY_SECONDS
            await self._store.jobs.unclaim_reminder(job.id)
        return sent

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.send_due()
                delay = await self._until_next()
            except Exception:
                log.exception("Expiry reminders: a round failed; trying again later")
                delay = RETRY_SECONDS
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can lose a cancellation that races
                # with the event being set, and stop() would then wait for ever.
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _until_next(self) -> float:
        now = self._clock()
        due = await self._store.jobs.next_reminder_at(window=self.window, now=now)
        waits = [IDLE_SECONDS]
        if self._retry_at:
            waits.append(min(self._retry_at.values()) - now)
        if due is not None and (due > now or not self._retry_at):
            # A reminder already due is one waiting for its retry (those are counted above), or
            # one that fell due a moment ago: look again at once.
            waits.append(due - now)
        return max(0.05, min(waits))
