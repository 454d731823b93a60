"""Expiry reminders: `EXPIRY_REMINDER_HOURS` before a result's links expire, its member gets one
reminder with the links (by DM, or in the channel where DMs are closed).

Scheduled from the database, not from memory (a `bot.worker.DurableWorker`): it sleeps until the
next reminder falls due (or until a result is delivered), sends what is due, and marks each
reminder sent before sending it, so a restart never sends one twice. A reminder Discord would not
take is tried again later, up to `MAX_ATTEMPTS` times; its count and its next try are stored with
the job, so a restart or another process taking over neither resends it early nor starts again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from bot.models import DeliveredMessage, Job
from bot.store import Store
from bot.worker import Backoff, DurableWorker

log = logging.getLogger(__name__)

RETRY_SECONDS = 300.0
"""How long a reminder Discord would not take waits before it is tried again."""
MAX_ATTEMPTS = 5
BACKOFF = Backoff(base=RETRY_SECONDS, cap=RETRY_SECONDS, max_attempts=MAX_ATTEMPTS)
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
        # One at a time, as Discord's rate limits would have it anyway.
        self._worker: DurableWorker[Job] = DurableWorker(
            name="reminders",
            due=self._due,
            key=lambda job: job.id,
            step=self._remind,
            next_due=self._next_due,
            clock=clock,
            concurrency=1,
            idle=IDLE_SECONDS,
            error_delay=RETRY_SECONDS,
        )

    @property
    def enabled(self) -> bool:
        return self.window > 0

    def start(self) -> None:
        if self.enabled:
            self._worker.start()

    async def stop(self) -> None:
        await self._worker.stop()

    def wake(self) -> None:
        """A result was just delivered: its reminder may be due sooner than the one awaited."""
        self._worker.wake()

    async def send_due(self) -> int:
        """Send every reminder due now, one after another, with the worker's own step; how many
        went out (the worker's round, waited for: tests drive it)."""
        return sum([await self._remind(job) for job in await self._due()])

    async def _due(self) -> list[Job]:
        return await self._store.jobs.to_remind(window=self.window, now=self._clock())

    async def _next_due(self) -> float | None:
        return await self._store.jobs.next_reminder_at(window=self.window, now=self._clock())

    async def _remind(self, job: Job) -> bool:
        """Send one reminder; whether it went out."""
        if not await self._store.jobs.claim_reminder(job.id):
            return False  # another sender has it
        try:
            result = await self._store.deliveries.result_messages(job.id)
            delivered = await self._sender.remind(job, result)
        except Exception:
            log.exception("job %s: sending the expiry reminder failed", job.id)
            delivered = False
        if delivered:
            log.info("job %s guild=%s member=%s: expiry reminder sent", job.id, job.guild_id, job.user_id)
            return True
        failures = await self._store.jobs.reminder_failed(
            job.id, retry_at=self._clock() + BACKOFF.delay(0), max_attempts=MAX_ATTEMPTS
        )
        if BACKOFF.exhausted(failures):
            log.warning(
                "job %s: expiry reminder could not be delivered %s times; giving up", job.id, failures
            )
        return False
