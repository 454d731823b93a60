"""A job's steps: the state machine that takes it through the API and to its member.

Submit, poll, settle (charge or refund, and the followers sharing its outcome), deliver; each
failure counted, with growing pauses, until the job's timeout or its last delivery attempt. Each
step stores when the job is next due, with its API calls' failures in a row (`next_step_at`,
`api_failures`), in the write that records its outcome where there is one: a restart or a takeover
keeps the pause and the count. The driver (`bot.runner.JobRunner`) steps the jobs its due query
finds, one step at a time per job; a step only asks it to wake a job's holder (`Driver.wake`), or,
when even storing the retry failed, to rest the job a while (`Driver.rest`). A job whose submit
may have reached the API but whose answer was never stored is never submitted again (see
docs/internals/jobs.md, "Unconfirmed submissions").
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from typing import Protocol

from bot.api import ApiError, SeparationClient, SeparationRecord
from bot.job_delivery import Deliverer, JobDelivery, log_job
from bot.leases import Lease
from bot.models import UNFINISHED_STATES, Delivery, Failure, Job, JobState
from bot.operations import Operations
from bot.product import LINK_LIFETIME
from bot.store import Store

# The runner's log, as before the steps had a module of their own: operators filter on its name.
log = logging.getLogger("bot.runner")

MAX_SUBMIT_ATTEMPTS = 6
"""Transient submit failures tolerated before giving up (maintenance waits for the timeout)."""
MAX_BACKOFF = 300.0


def failure_for(error: ApiError) -> Failure:
    if error.maybe_processed:
        return Failure.UNCONFIRMED
    if error.account_problem:
        return Failure.SERVICE_ACCOUNT
    if error.code == 400:
        return Failure.INVALID_IDS
    if error.code == 413:
        return Failure.INPUT_TOO_LONG
    return Failure.SERVICE_ERROR


class Driver(Protocol):
    """What a step needs from the driver."""

    @property
    def stopping(self) -> bool:
        """The process is stopping: what is left is for the next start."""
        ...

    def rest(self, job_id: int, seconds: float) -> None:
        """Look at the job no sooner than `seconds` from now (its next due time could not be
        stored)."""
        ...

    async def wake(self, job: Job) -> None:
        """Have `job` looked at now, here or by the process that holds it."""
        ...


class JobSteps:
    """One step of a job: what its stored state says comes next (submit, poll, settle, deliver),
    run by the driver one at a time per job. The API calls failed in a row are stored with the
    job; steps that raised something unplanned are counted in memory (a new process logs its own
    first traceback), the pause they chose stored."""

    def __init__(
        self,
        store: Store,
        client: SeparationClient,
        deliverer: Deliverer,
        operations: Operations,
        driver: Driver,
        *,
        lease: Lease,
        poll_interval: float,
        job_timeout: float,
        callback_base_url: str,
        max_concurrency: int,
        delivery_retry_base: float,
        clock: Callable[[], float],
        on_delivered: Callable[[], None],
    ) -> None:
        self._store = store
        self._client = client
        self._deliverer = deliverer
        self._delivery = JobDelivery(
            store,
            deliverer,
            operations,
            retry_base=delivery_retry_base,
            clock=clock,
            on_delivered=on_delivered,
        )
        self._operations = operations
        self._driver = driver
        self._lease = lease
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout
        self._callback_base_url = callback_base_url.rstrip("/")
        self._clock = clock
        self._limit = asyncio.Semaphore(max_concurrency)  # API calls in flight at once
        self._step_failures: dict[int, int] = {}  # steps that raised something unplanned, in a row

    async def adopt(self, jobs: Sequence[Job], how: str) -> None:
        """Work on jobs just claimed. One found 'submitting' was being submitted by a process that
        stopped before storing the answer: submitting again could pay twice, and the API cannot
        say which task it made, so the member is refunded (the unconfirmed rule), and told by the
        job's next step, due now: a job is shown to its member only in its own steps, one at a
        time (a takeover runs beside them)."""
        for job in jobs:
            if job.state is JobState.SUBMITTING:
                log_job(
                    job,
                    "submit outcome unknown %s; refunding (the API may have charged the account once)",
                    how,
                    level=logging.WARNING,
                )
                why, states = "interrupted while submitting", [JobState.SUBMITTING]
                await self._fail(job, Failure.UNCONFIRMED, why, from_states=states, deliver=False)

    async def step(self, job_id: int) -> bool:
        """One step of the job; whether it did one (False: another process holds the job, or
        nothing is left to do)."""
        try:
            stepped = await self._advance(job_id)
        except Exception as error:
            try:
                await self._step_failed(job_id, error)
            except Exception as crash:
                self._step_crashed(job_id, crash)
            return True
        self._step_failures.pop(job_id, None)
        return stepped

    def _step_crashed(self, job_id: int, error: BaseException) -> None:
        """Even handling a step's failure failed (the database is unreachable, say): its pause
        could not be stored. The step's own failure was counted and logged; try the whole step
        again later."""
        failures = self._step_failures.setdefault(job_id, 1)
        delay = backoff(self.poll_interval, failures)
        error_text = f"{type(error).__name__}: {str(error)[:200]}"
        log.warning("job %s: handling its failed step failed (%s); retry in %.1fs", job_id, error_text, delay)
        self._driver.rest(job_id, delay)

    async def _step_failed(self, job_id: int, error: Exception) -> None:
        """A step raised something unplanned (a bug, a full disk). Retrying it for ever would hold
        the member's credits and a slot, so each failure counts: an unsettled job is retried with
        growing pauses until its timeout, then refunded; a settled one spends a delivery attempt.
        The traceback is logged the first time, then one line per retry.
        """
        failures = self._step_failures.get(job_id, 0) + 1
        self._step_failures[job_id] = failures
        detail = f"{type(error).__name__}: {error}"
        if failures == 1:
            log.error("job %s: unexpected error in its step", job_id, exc_info=error)
        job = await self._store.jobs.get(job_id)
        if job is None or job.claimed_by != self._lease.holder:
            return  # another process took it over meanwhile: it is theirs to handle
        again = f"step failed again ({detail:.200}), {failures} times in a row"
        what = "step failed" if failures == 1 else again
        if job.state is JobState.SUBMITTING:
            # The step may have sent the submit (the API may have the paid task): never resend.
            log_job(
                job,
                "%s while submitting; outcome unknown, refunding (the API may have charged it once)",
                what,
                level=logging.WARNING,
            )
            await self._fail(job, Failure.UNCONFIRMED, f"the submit step failed: {detail}")
            self._step_failures.pop(job_id, None)
        elif not job.state.finished:
            if expired(job, self._clock(), self.job_timeout):
                log_job(job, "%s; giving up at the job's timeout", what, level=logging.WARNING)
                await self._fail(job, Failure.SERVICE_ERROR, f"kept failing until the timeout: {detail}")
                self._step_failures.pop(job_id, None)
                return
            delay = backoff(self.poll_interval, failures)
            log_job(job, "%s; retry in %.1fs", what, delay, level=logging.WARNING)
            await self._next_step(job, delay)
        elif job.delivery is Delivery.PENDING:
            if await self._delivery.failed(job, what):
                self._step_failures.pop(job_id, None)
        else:
            self._step_failures.pop(job_id, None)  # nothing left to do for this job

    async def _advance(self, job_id: int) -> bool:
        job = await self._store.jobs.get(job_id)
        if job is None:
            return False
        if job.claimed_by != self._lease.holder:
            # Ours only if nobody holds it, or its holder's lease lapsed; else its holder works it.
            claimed = await self._store.jobs.claim(job.id, self._lease)
            if claimed is None:
                return False
            if claimed.state is JobState.SUBMITTING:
                await self.adopt([claimed], "after its process stopped")
                return True
            job = claimed
        if job.state is JobState.RESERVED:
            await self._submit(job)
        elif job.state is JobState.SUBMITTING:
            # Only reachable if a submit step died half-way (its own task is gone): whether the
            # API took it is unknown, so it is refunded rather than sent again.
            await self._fail(job, Failure.UNCONFIRMED, "the submit step stopped before storing its answer")
        elif job.state is JobState.SUBMITTED:
            await self._poll(job)
        elif job.state is JobState.FOLLOWING:
            # Settled when the job it follows finishes; after a restart, check that now.
            leader = await self._store.jobs.get(job.source_job_id) if job.source_job_id else None
            if leader is None:
                await self._fail(job, Failure.SERVICE_ERROR, "the shared job is missing")
            elif leader.state.finished:
                await self._settle_followers(leader)
            else:
                # Whoever settles the leader wakes this job; if that wake is lost (another
                # process's notification while this one was reconnecting), this look is the net.
                await self._next_step(job, self.poll_interval)
        elif job.state.finished and job.delivery is Delivery.PENDING:
            # Followers are settled in the step that settles their leader; if that failed after the
            # leader was stored, they are settled here, before the leader's own delivery (one
            # indexed read when there are none).
            await self._settle_followers(job)
            await self._delivery.deliver(job)
        else:
            return False
        return True

    async def _submit(self, job: Job) -> None:
        if self._operations.paused:
            await self._fail(job, Failure.SERVICE_ACCOUNT, f"splitting paused: {self._operations.paused}")
            return
        if expired(job, self._clock(), self.job_timeout):
            await self._fail(job, Failure.TIMED_OUT, "could not submit before the job timed out")
            return
        async with self._limit:
            # Written just before the request (with a slot to send it at once): if we die while
            # it is on the wire, the restart knows its outcome is unknown.
            # Only while this process holds the job: a process that lost its claim (it stalled past
            # the lease and another took over) can never send a second paid submit.
            submitting = await self._store.jobs.transition(
                job.id, [JobState.RESERVED], JobState.SUBMITTING, durable=True, holder=self._lease.holder
            )
            if not submitting:
                return
            try:
                api_task_id = await self._client.submit(
                    task_id=job.source_task_id,
                    audio_id=job.audio_id,
                    mode=job.mode,
                    callback_url=f"{self._callback_base_url}/callback/{job.callback_token}",
                )
            except ApiError as error:
                await self._submit_failed(job, error)
                return
            # Not conditional on holding the claim: while the job is still 'submitting', the
            # answer is stored whoever holds it now (its new holder then polls the task).
            try:
                now = self._clock()
                stored = await self._store.jobs.transition(
                    job.id,
                    [JobState.SUBMITTING],
                    JobState.SUBMITTED,
                    durable=True,
                    api_task_id=api_task_id,
                    submitted_at=now,
                    next_step_at=now + self.poll_interval,
                    api_failures=0,
                )
            except Exception:
                # The task is paid for and its id is only in memory: never let it go unrecorded.
                await keep_orphan(self._store, job, api_task_id, self._lease.holder, LOST_WRITE)
                raise
        if not stored:
            await keep_orphan(self._store, job, api_task_id, self._lease.holder, LOST_CLAIM)
            return
        log_job(job, "submitted as API task %s", api_task_id)
        submitted = await self._store.jobs.get(job.id)
        # Only while the job is still this process's and waiting for the API: its holder alone
        # delivers it, one step at a time, so no result can be shown before this edit lands.
        if (
            submitted is not None
            and submitted.state is JobState.SUBMITTED
            and submitted.claimed_by == self._lease.holder
        ):
            await self._deliverer.show_progress(submitted)

    async def _submit_failed(self, job: Job, error: ApiError) -> None:
        if error.maybe_processed:
            log_job(job, "submit outcome unknown (%s); not resubmitting, refunding", error)
            await self._fail(job, Failure.UNCONFIRMED, str(error))
            return
        attempts = job.api_failures + 1  # stored with the job: a restart keeps counting
        if error.retryable and (error.maintenance or attempts < MAX_SUBMIT_ATTEMPTS):
            delay = backoff(self.poll_interval, attempts, maintenance=error.maintenance)
            await self._store.jobs.transition(
                job.id,
                [JobState.SUBMITTING],
                JobState.RESERVED,
                api_failures=attempts,
                next_step_at=self._clock() + delay,
            )
            log_job(job, "submit failed (%s); retry %s in %.1fs", error, attempts, delay)
            return
        if error.account_problem:
            log.error(
                "job %s: the separation API refused our account (%s): check SEPARATION_API_KEY "
                "and the API account's credits",
                job.id,
                error,
            )
        await self._fail(job, failure_for(error), str(error))
        reason = error.pause_reason
        if reason:
            self._operations.pause(reason)

    async def _poll(self, job: Job) -> None:
        assert job.api_task_id is not None
        try:
            async with self._limit:
                record = await self._client.record(job.api_task_id)
        except ApiError as error:
            # The task exists and is paid for: whatever record-info says now, keep asking (with
            # backoff) until the job's timeout rather than abandon it on one bad answer.
            if expired(job, self._clock(), self.job_timeout):
                await self._fail(job, Failure.TIMED_OUT, f"still failing at timeout: {error}")
                return
            reason = error.pause_reason
            if reason:
                self._operations.pause(reason)
            attempts = job.api_failures + 1
            delay = backoff(self.poll_interval, attempts, maintenance=error.maintenance)
            log_job(job, "poll failed (%s); retry in %.1fs", error, delay)
            await self._next_step(job, delay, api_failures=attempts)
            return
        if record.succeeded:
            await self._succeed(job, record)
        elif record.failed:
            detail = record.error_message or record.flag
            await self._fail(job, Failure.SEPARATION_FAILED, detail)
        elif expired(job, self._clock(), self.job_timeout):
            await self._fail(job, Failure.TIMED_OUT, f"still {record.flag} at timeout")
        else:
            if record.flag != "PENDING":
                log_job(job, "unexpected successFlag %r; still waiting", record.flag)
            await self._next_step(job, self.poll_interval, api_failures=0)

    async def _succeed(self, job: Job, record: SeparationRecord) -> None:
        now = self._clock()
        # The links last 14 days from the API's finish. A finish time from before the job was
        # even submitted (an hour's clock skew allowed) or from the future is nonsense: use ours.
        earliest = (job.submitted_at or job.created_at) - 3600
        completed = record.completed_at
        finished = completed if completed is not None and earliest <= completed <= now else now
        done = await self._store.reservations.settle(
            job.id,
            succeeded=True,
            stems=record.stems,
            links_expire_at=finished + LINK_LIFETIME.total_seconds(),
        )
        if done is None:
            return
        log_job(done, "succeeded with %s stems; charged %s credits", len(record.stems), done.cost)
        count_credits(self._operations, "charged", done.cost)
        await self._settle_followers(done)
        await self._deliver_now(done)

    async def _fail(
        self,
        job: Job,
        failure: Failure,
        detail: str,
        *,
        from_states: Sequence[JobState] = UNFINISHED_STATES,
        deliver: bool = True,
    ) -> None:
        """Settle the job as failed (refunded) and, in its own step (`deliver`), show it."""
        done = await self._store.reservations.settle(
            job.id, succeeded=False, failure=failure, failure_detail=detail[:500], from_states=from_states
        )
        if done is None:
            return
        log_job(done, "failed (%s: %s); refunded %s credits", failure, detail, done.cost)
        count_credits(self._operations, "refunded", done.cost)
        await self._settle_followers(done)
        if deliver:
            await self._deliver_now(done)

    async def _next_step(self, job: Job, delay: float, *, api_failures: int | None = None) -> None:
        """Look at the job again after `delay` seconds, stored (while this process holds it)."""
        await self._store.jobs.next_step(
            job.id, self._clock() + delay, holder=self._lease.holder, api_failures=api_failures
        )

    async def _settle_followers(self, leader: Job) -> None:
        """Members who asked for the same track and mode while `leader` ran get its outcome."""
        for follower in await self._store.reservations.settle_followers(leader):
            log_job(follower, "shares the outcome of job %s (%s)", leader.id, follower.state)
            kind = "charged" if follower.state is JobState.SUCCEEDED else "refunded"
            count_credits(self._operations, kind, follower.cost)
            await self._driver.wake(follower)

    async def _deliver_now(self, job: Job) -> None:
        """Deliver a job just finished (the store returned it as stored); when stopping, the
        next start delivers it instead."""
        if not self._driver.stopping:
            await self._delivery.deliver(job)


def expired(job: Job, now: float, timeout: float) -> bool:
    """Past the job's timeout: counted from its submission once the API has it (a job that
    waited out a maintenance window still gets its full time), else from its creation."""
    start = job.submitted_at if job.submitted_at is not None else job.created_at
    return now - start > timeout


def backoff(poll_interval: float, attempts: int, *, maintenance: bool = False) -> float:
    """The pause after the `attempts`-th failure in a row: doubling from the poll interval."""
    base = poll_interval * (4 if maintenance else 1)
    doublings = min(max(1, attempts) - 1, 30)  # past MAX_BACKOFF long before; no float overflow
    return min(base * 2.0**doublings, MAX_BACKOFF) * random.uniform(0.9, 1.1)


def count_credits(operations: Operations, kind: str, amount: int) -> None:
    """Credits charged or refunded, in the metrics."""
    if amount:
        operations.metrics.credits.labels(kind=kind).inc(amount)


LOST_CLAIM = (
    "the job was settled by another process meanwhile (this one had lost its claim): the API task is "
    "paid for and orphaned"
)
LOST_WRITE = "storing it failed: the job is refunded as unconfirmed and the paid API task is orphaned"


async def keep_orphan(store: Store, job: Job, api_task_id: str, holder: str, why: str) -> None:
    """The API accepted a submit that no job will follow: this process had lost the job (it stalled
    past its lease; another process found it 'submitting', settled it by the unconfirmed rule and
    told the member), or storing the task id failed. The task is paid for: say so loudly, keep it
    for the operator (`/stembot status`) if the database takes it, and show the member nothing."""
    log.error(
        "job %s guild=%s member=%s mode=%s: the API accepted the submit as task %s, but %s; "
        "recorded in orphaned_tasks",
        job.id,
        job.guild_id,
        job.user_id,
        job.mode,
        api_task_id,
        why,
    )
    try:
        await store.jobs.record_orphan(job.id, api_task_id, holder=holder)
    except Exception:
        log.exception("job %s: could not record the orphaned API task %s", job.id, api_task_id)
