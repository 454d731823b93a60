"""The job runner's driver: a durable worker (`bot.worker.DurableWorker`) drives every unfinished
job through its steps.

The database is the source of truth, its schedule too: each job stores when it is next due
(`next_step_at`) and its API calls' failures in a row, so a restart or a takeover keeps a job's
pause and count. The driver's due query finds the jobs this process holds that are due, steps them
one at a time per job with a bounded number at once, and sleeps until the next one falls due. In
memory it keeps only what is not a schedule: a new job held while its member is shown "queued"
(no database round trip on the acknowledgement's path), a job woken at once by a callback or a
settled leader, and a job resting after even storing its retry failed. The job's steps (submit,
poll, settle, deliver: the state machine) are `bot.job_steps`; this module decides when a job is
stepped and by which process, and hears the API's callbacks.

Several processes may share one database (PostgreSQL): each works only on the jobs it claimed
(`bot.leases`), renews those claims while it runs, takes over jobs whose holder's lease lapsed, and
wakes the holder of a job it cannot work on itself (a callback that reached it, a follower it
settled) with a notification.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import cast

from bot.api import SeparationClient
from bot.callbacks import Callback, CallbackVerdict
from bot.job_delivery import (
    MAX_DELIVERY_ATTEMPTS,
    MAX_DELIVERY_BACKOFF,
    Deliverer,
    DeliveryOutcome,
    DeliveryResult,
)
from bot.job_steps import MAX_BACKOFF, MAX_SUBMIT_ATTEMPTS, JobSteps, failure_for
from bot.leases import Beat, Lease
from bot.models import Job, JobState
from bot.operations import Operations
from bot.store import Store
from bot.worker import DurableWorker

__all__ = [
    "INVALID_CALLBACK_BASE",
    "JOB_CHANNEL",
    "MAX_BACKOFF",
    "MAX_DELIVERY_ATTEMPTS",
    "MAX_DELIVERY_BACKOFF",
    "MAX_SUBMIT_ATTEMPTS",
    "Deliverer",
    "DeliveryOutcome",
    "DeliveryResult",
    "JobRunner",
    "failure_for",
]

log = logging.getLogger(__name__)

INVALID_CALLBACK_BASE = "https://stembot-callback.invalid"
"""Where callbacks go until the bot receives them itself: a reserved TLD that never resolves."""

JOB_CHANNEL = "stembot_job"
"""The notification channel on which a process wakes the holder of a job (payload: the job id)."""

STEPS_AT_ONCE = 256
"""Job steps at once (API calls are bounded apart, by `max_concurrency`): deliveries waiting on
Discord's rate limits must not keep due polls waiting for a slot."""


class JobRunner:
    def __init__(
        self,
        store: Store,
        client: SeparationClient,
        deliverer: Deliverer,
        operations: Operations,
        *,
        lease: Lease,
        poll_interval: float,
        job_timeout: float,
        callback_base_url: str = INVALID_CALLBACK_BASE,
        max_concurrency: int = 32,
        delivery_retry_base: float = 2.0,
        stop_grace: float = 30.0,
        clock: Callable[[], float] = time.time,
        on_delivered: Callable[[], None],
    ) -> None:
        """`lease`: this process's claims on jobs. `on_delivered` hears of every result shown to its
        member (expiry reminders wake on it)."""
        self._store = store
        self._lease = lease
        self._deliverer = deliverer
        self._operations = operations
        self._stop_grace = stop_grace
        self._clock = clock
        self.stopping = False
        self._steps = JobSteps(
            store,
            client,
            deliverer,
            operations,
            self,
            lease=lease,
            poll_interval=poll_interval,
            job_timeout=job_timeout,
            callback_base_url=callback_base_url,
            max_concurrency=max_concurrency,
            delivery_retry_base=delivery_retry_base,
            clock=clock,
            on_delivered=on_delivered,
        )
        self._worker: DurableWorker[int] = DurableWorker(
            name="job",
            due=self._due,
            key=lambda job_id: job_id,
            item=lambda job_id: cast(int, job_id),  # a woken key is the job's id
            step=self._steps.step,
            next_due=self._next_due,
            clock=clock,
            concurrency=STEPS_AT_ONCE,
            # The net under a lost wake (another process's notification while reconnecting): the
            # due query runs at least every poll interval, as the holder's next poll was before.
            idle=poll_interval,
            error_delay=poll_interval,
        )
        self._beat = Beat(self._keep_claims, lease.renew_every, name="job leases")

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._worker.running

    @property
    def poll_interval(self) -> float:
        return self._steps.poll_interval

    @property
    def job_timeout(self) -> float:
        return self._steps.job_timeout

    async def start(self) -> None:
        """Claim and resume every job the database says is unfinished or undelivered and no other
        live process holds, then dispatch. (On SQLite, whatever an earlier process held: it is
        gone. On PostgreSQL, the jobs of a process that died are taken when their lease lapses.)"""
        jobs = await self._store.jobs.claim_needing_work(self._lease, starting=True)
        await self._steps.adopt(jobs, "after restart")
        if jobs:
            log.info("Resuming %s job(s) from the database", len(jobs))
        await self._store.db.listen(JOB_CHANNEL, self._heard)
        self._worker.start()
        self._beat.start()

    async def stop(self, grace: float | None = None, *, release: bool = True) -> None:
        """Stop dispatching; let in-flight steps finish, then cancel what is left; then give up
        this process's claims, so other processes carry on with its jobs at once.

        The default grace outlasts one API call, so a submit the API accepted is stored, not lost.
        Claims are renewed until the steps are done. `release=False` leaves them to lapse, as a
        crash would (for tests).
        """
        self.stopping = True
        await self._worker.stop(self._stop_grace if grace is None else grace)
        await self._beat.stop()
        try:
            await self._store.db.unlisten(JOB_CHANNEL, self._heard)
            if release:
                released = await self._store.jobs.release(self._lease.holder)
                if released:
                    log.info("Released %s unfinished job(s) to other processes", released)
        except Exception as error:  # the database is down: the claims lapse instead
            log.warning("Could not release this process's jobs (%s: %.200s)", type(error).__name__, error)

    async def _keep_claims(self) -> None:
        """Every third of the lease: renew this process's claims, and take over the jobs nobody
        holds any more (released, or their process died and the lease lapsed)."""
        await self._store.jobs.renew(self._lease)
        if self.stopping:
            return
        taken = await self._store.jobs.claim_needing_work(self._lease)
        if taken:
            log.info("Took over %s job(s) no process was holding: %s", len(taken), [job.id for job in taken])
            self._operations.metrics.takeovers.inc(len(taken))
            await self._steps.adopt(taken, "after its process stopped")
            self._worker.wake()  # each at its stored due time: a pause in progress stands

    def _heard(self, payload: str) -> None:
        """Another process asks whoever holds a job to look at it now (the step checks it is ours)."""
        if payload.isdigit() and len(payload) < 20 and not self.stopping:
            self._worker.wake(int(payload))

    async def wake(self, job: Job) -> None:
        """Have `job` looked at now, by this process if it holds it (or nobody does), else by its
        holder. If the notification cannot be sent, the holder's next poll is the safety net."""
        if job.claimed_by in (None, self._lease.holder):
            if not self.stopping:
                self._worker.wake(job.id)
            return
        try:
            await self._store.db.notify(JOB_CHANNEL, str(job.id))
        except Exception as error:
            log.warning(
                "job %s: could not wake the process holding it (%s: %.200s)",
                job.id,
                type(error).__name__,
                error,
            )

    def hold(self, job_id: int) -> None:
        """Keep a new job from being worked on (its member's "queued" message is on its way).

        Called right after the job is stored, before anything else can run, so not even a shared
        job's early result can overtake the "queued" message and be hidden under it.
        """
        self._worker.hold(job_id)

    def release(self, job_id: int) -> None:
        """The member was shown the job is queued: work on it now (in memory: no database round
        trip on the acknowledgement's path)."""
        self._worker.release(job_id)

    def rest(self, job_id: int, seconds: float) -> None:
        """Leave the job alone for `seconds` (a step could not store its next due time)."""
        if not self.stopping:
            self._worker.rest(job_id, seconds)

    async def _due(self) -> list[int]:
        return await self._store.jobs.due(self._lease.holder, now=self._clock(), limit=STEPS_AT_ONCE)

    async def _next_due(self) -> float | None:
        # The jobs in work store their own next due time when their step ends (which wakes the
        # worker): until then theirs says nothing.
        busy = [key for key in self._worker.busy if isinstance(key, int)]
        return await self._store.jobs.next_due(self._lease.holder, excluding=busy)

    # -- callbacks --------------------------------------------------------------------------

    async def knows_token(self, token: str) -> bool:
        return await self._store.jobs.by_callback_token(token) is not None

    async def callback_received(self, token: str, callback: Callback) -> CallbackVerdict:
        """A hint that a job may be done. Never trusted: it only makes the job poll now, and the
        poll (record-info) decides. Unknown tokens and other tasks' ids change nothing. A job
        another process holds is polled there: this one only wakes it."""
        job = await self._store.jobs.by_callback_token(token)
        if job is None:
            verdict = CallbackVerdict.UNKNOWN
        elif job.api_task_id is not None and callback.task_id != job.api_task_id:
            log.warning("job %s: callback for another API task (%.40r); ignored", job.id, callback.task_id)
            verdict = CallbackVerdict.MISMATCH
        elif job.state.finished:
            verdict = CallbackVerdict.DUPLICATE
        else:
            if job.state in (JobState.SUBMITTING, JobState.SUBMITTED):
                await self.wake(job)
            verdict = CallbackVerdict.ACCEPTED
        self._operations.callback_received(verdict)
        return verdict
