"""Showing a finished job to its member: the Discord side's `Deliverer`, and the delivery attempts
counted in the database with the next one's time, retried with growing pauses until the last one
(`MAX_DELIVERY_ATTEMPTS`) leaves the result undeliverable (it stays in the database)."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bot.models import Delivery, DeliveryVia, Job, Refund
from bot.operations import Operations
from bot.store import Store

# The runner's log, as before the steps had modules of their own: operators filter on its name.
log = logging.getLogger("bot.runner")

MAX_DELIVERY_ATTEMPTS = 30
MAX_DELIVERY_BACKOFF = 600.0


class DeliveryResult(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    result: DeliveryResult
    via: DeliveryVia | None = None


class Deliverer(Protocol):
    """Shows a job to its member. Implemented by the Discord side."""

    async def deliver(self, job: Job) -> DeliveryOutcome:
        """Tell the member the finished job's outcome (links or failure)."""
        ...

    async def show_progress(self, job: Job) -> None:
        """Best-effort: tell the member the job is now being processed."""
        ...

    async def show_cancelled(self, job: Job, refund: Refund | None = None) -> None:
        """Best-effort: the job's public message says it was cancelled (and loses its button), and
        what came back (`refund`, when known)."""
        ...


class JobDelivery:
    def __init__(
        self,
        store: Store,
        deliverer: Deliverer,
        operations: Operations,
        *,
        retry_base: float,
        clock: Callable[[], float],
        on_delivered: Callable[[], None],
    ) -> None:
        """`on_delivered` hears of every result shown."""
        self._store = store
        self._deliverer = deliverer
        self._operations = operations
        self._retry_base = retry_base
        self._clock = clock
        self._on_delivered = on_delivered

    async def deliver(self, job: Job) -> None:
        outcome = await self._deliverer.deliver(job)
        if outcome.result is DeliveryResult.DELIVERED:
            await self._store.jobs.record_delivery(job.id, Delivery.DELIVERED, outcome.via)
            self._on_delivered()
            log_job(job, "delivered via %s", outcome.via)
            if job.finished_at:
                self._operations.metrics.delivery_lag.observe(max(0.0, self._clock() - job.finished_at))
            return
        await self.failed(job, "delivery failed")

    async def failed(self, job: Job, what: str) -> bool:
        """Count one failed delivery attempt; retry later, or give up after the last one (True)."""
        if job.delivery_attempts + 1 >= MAX_DELIVERY_ATTEMPTS:
            await self._store.jobs.record_delivery(job.id, Delivery.UNDELIVERABLE)
            log.error(
                "job %s guild=%s member=%s: could not reach the member after %s attempts; "
                "giving up (the result stays in the database)",
                job.id,
                job.guild_id,
                job.user_id,
                MAX_DELIVERY_ATTEMPTS,
            )
            return True
        delay = min(self._retry_base * 2**job.delivery_attempts, MAX_DELIVERY_BACKOFF)
        # The count and the next attempt are stored together: a restart or a takeover keeps both.
        await self._store.jobs.record_delivery(job.id, Delivery.PENDING, retry_at=self._clock() + delay)
        log_job(job, "%s; delivery retry in %.1fs", what, delay)
        return False


def log_job(job: Job, message: str, *args: object, level: int = logging.INFO) -> None:
    """One line about a job, led by who and what it is."""
    log.log(
        level,
        "job %s guild=%s member=%s mode=%s: " + message,
        job.id,
        job.guild_id,
        job.user_id,
        job.mode,
        *args,
    )
