"""The transactions that span jobs and accounts: reserving a job's price (with the member's
limits, sharing an earlier or running job, and the server's monthly budget), and settling it
(charge or refund) when it ends, also for the jobs that followed it. Each is one transaction;
nowhere else do these aggregates change together.

Each locks its rows in the store's one order (see `bot.store.database`): the jobs first (the job
to follow, the jobs settled, by id), then the member accounts (by guild and user), then the
budgets; the job counts go last, as it commits. Each runs through `Database.transact`, so one that
PostgreSQL aborts for a deadlock all the same runs again: their bodies only touch the database."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from bot import economy
from bot.leases import Lease
from bot.models import (
    CANCELLABLE_STATES,
    UNFINISHED_STATES,
    BudgetAlert,
    Cancellation,
    CancelOutcome,
    Delivery,
    Failure,
    Job,
    JobState,
    LedgerKind,
    NewJob,
    Outcome,
    Refund,
    Refusal,
    Reservation,
    ReuseCharge,
    Share,
    StemLink,
)
from bot.store import accounts, acks, budgets, jobs, sharing
from bot.store.accounts import Accounts
from bot.store.budgets import Budgets
from bot.store.database import Database, Tx

_ATTEMPTS = 5
_LEADER_STATES_LITERAL = ", ".join(f"'{state.value}'" for state in sharing.LEADER_STATES)


class _StartOver(Exception):
    """Another transaction changed what this reservation found to share (it made the leader for the
    same track and mode first, or the job found finished without a result): roll this reservation
    back and start it again, to see what there is now."""


class _BotBudgetSpent(Exception):
    """The bot's monthly budget cannot pay for this split, as its count found out last, right
    before commit (it was not read first, or another process counted since): roll the reservation
    back and refuse it."""

    def __init__(self, refusal: Reservation) -> None:
        super().__init__("the bot's monthly budget is spent")
        self.refusal = refusal


class Reservations:
    def __init__(self, db: Database, member_accounts: Accounts, server_budgets: Budgets) -> None:
        self._db = db
        self._accounts = member_accounts
        self._budgets = server_budgets

    async def reserve(
        self, new: NewJob, *, role_ids: Sequence[int] = (), lease: Lease | None = None
    ) -> Reservation:
        """Atomically: bring the account up to date (open, refill), check the member is not
        blocked, the in-flight limit and the cooldown, then record the job and take its price.

        If this deployment already has the same track and mode split with links fresh for at
        least `sharing.REUSE_MIN_LINK_LIFE`, the job reuses that result; if such a job is in
        flight, the new one follows it. Either way the API is not called again, and the price is
        the server's `reuse_charge` (free, or the full cost). The cost is taken allowance first,
        then bonus, with a conditional update; the reserve ledger row says how much came from each
        part so a refund can put it back.

        A job that will make its own API call (not a shared one) also counts the mode's API price
        against the server's budget for this month (UTC) and then the bot's (`MONTHLY_BUDGET`,
        every server together), with conditional updates too: a job either budget cannot pay for
        is refused, and no credits move. The reservation carries an alert when either budget just
        reached 80% or was used up (once per month each).

        The budget rows are locked after every other row, the server's month row and then the
        bot's, as in a settlement. The bot's is the one row every paid reservation of the
        deployment counts on, so it is counted last, right before commit, and held only that long;
        the server's, counted just before it, likewise.

        Two requests for the same track at the same moment (possible on PostgreSQL, where
        reservations run side by side) may both find no job to follow; the `jobs_one_leader`
        index lets one of them become the leader, and the other starts over and follows it. The job
        to share is locked and read again, so it cannot finish unseen before the new one follows it
        (settling a leader waits for the reservations that follow it, and sees them).

        `lease`: the new job is claimed by that process from the start (see `bot.leases`), so no
        other process takes it while this one shows the member it is queued."""
        for _ in range(_ATTEMPTS - 1):
            try:
                return await self._reserve_once(new, role_ids, lease)
            except _StartOver:
                continue
        return await self._reserve_once(new, role_ids, lease)

    async def _reserve_once(self, new: NewJob, role_ids: Sequence[int], lease: Lease | None) -> Reservation:
        try:
            return await self._db.running_again(
                lambda: self._reserve(new, role_ids, lease),
                what=f"guild={new.guild_id} member={new.user_id}: reserving a split",
            )
        except _BotBudgetSpent as spent:  # rolled back: nothing was charged or recorded
            # The owner's alert, if one is due, is recorded apart: the reservation's writes are gone.
            refusal = spent.refusal

            async def record_alert(tx: Tx) -> Reservation:
                bot_budget = await self._budgets.bot_read(tx, self._db.now())
                alert = await self._budgets.bot_alert_due(tx, bot_budget)
                return replace(refusal, bot_budget=bot_budget, bot_budget_alert=alert)

            return await self._db.transact(record_alert, what="the bot's budget alert")

    async def _reserve(self, new: NewJob, role_ids: Sequence[int], lease: Lease | None) -> Reservation:
        """One run of the reservation's transaction (see `Database.transact`)."""
        async with self._db.transaction() as tx:
            now = self._db.now()
            # The job to share is locked before the member's account (the store's lock order):
            # settling that job locks it, then its members' accounts.
            shared_id = await sharing.to_share(tx, new, now)
            source = await jobs.get(tx, shared_id, lock=True) if shared_id is not None else None
            account, settings = await self._accounts.current(
                tx, new.guild_id, new.user_id, role_ids=role_ids, now=now
            )
            balance = account.balance.total
            limit = settings.jobs_per_member or self._accounts.policy.jobs_per_member
            # Counted once the account is locked: the member's other reservations are done by now.
            in_flight = await jobs.in_flight(tx, new.guild_id, new.user_id)

            def refused(refusal: Refusal, **extra: Any) -> Reservation:
                return Reservation(None, balance, in_flight, refusal, jobs_per_member=limit, **extra)

            if account.blocked:
                return refused(Refusal.BLOCKED, blocked_reason=account.blocked_reason)
            if in_flight >= limit:
                return refused(Refusal.TOO_MANY_IN_FLIGHT)
            cooldown_until = await jobs.cooldown_until(tx, settings, new.user_id, now)
            if cooldown_until is not None:
                return refused(Refusal.COOLDOWN, retry_at=cooldown_until)

            if source is not None and source.state not in (JobState.SUCCEEDED, *sharing.LEADER_STATES):
                raise _StartOver
            share = None if source is None else Share.REUSED if source.state.finished else Share.COALESCED
            # Only a job making its own API call costs the owner anything (a follower's leader paid).
            api_price = new.mode.api_price if share is None else 0
            budget = await self._budgets.for_reservation(tx, new.guild_id, now) if api_price else None
            alert: BudgetAlert | None = None
            if budget is not None and not budget.fits(api_price):
                alert = await self._budgets.alert_due(tx, budget)
                return refused(Refusal.BUDGET_USED_UP, budget=budget, budget_alert=alert)
            bot_budget = await self._budgets.bot_for_reservation(tx, now) if api_price else None
            if bot_budget is not None and not bot_budget.fits(api_price):
                bot_alert = await self._budgets.bot_alert_due(tx, bot_budget)
                return refused(Refusal.BOT_BUDGET_USED_UP, bot_budget=bot_budget, bot_budget_alert=bot_alert)
            cost = new.cost if share is None or settings.reuse_charge is ReuseCharge.FULL else 0
            from_allowance, from_bonus = economy.spend(cost, account.balance)
            if cost and not await accounts.debit(tx, account, from_allowance, from_bonus):
                refills = economy.RefillSchedule.of(settings).next_refill(max(now, settings.schedule_from))
                return refused(Refusal.INSUFFICIENT_CREDITS, next_refill_at=refills)
            job = await _insert_job(
                tx,
                new,
                cost=cost,
                share=share,
                source=source,
                now=now,
                budget_cost=api_price,
                budget_month=budget.month if budget is not None else None,
                lease=lease,
            )
            if new.interaction_id is not None:
                await acks.became_job(tx, new.interaction_id, lease.holder if lease is not None else None)
            after = account.balance
            if cost:
                moved = await accounts.move(
                    tx,
                    account,
                    LedgerKind.RESERVE,
                    -from_allowance,
                    -from_bonus,
                    now=now,
                    job_id=job.id,
                    applied=True,
                )
                assert moved is not None
                after = moved
                if share is Share.REUSED:  # delivered from stored links: settled at once
                    await accounts.move(
                        tx,
                        replace(account, balance=after),
                        LedgerKind.CHARGE,
                        0,
                        0,
                        now=now,
                        job_id=job.id,
                        applied=True,
                    )
            bot_alert = None
            if budget is not None:  # the budget rows last (see above): server, then bot
                counted = await self._budgets.count(tx, budget, api_price)
                if counted is None:  # cannot happen after the check above, in this transaction
                    raise RuntimeError(f"guild {new.guild_id}: the monthly budget changed mid-reservation")
                alert = await self._budgets.alert_due(tx, counted)
            if bot_budget is not None:
                bot_counted, bot_alert = await self._budgets.count_bot(tx, bot_budget, api_price)
                if bot_counted is None:  # roll everything back, then refuse
                    raise _BotBudgetSpent(refused(Refusal.BOT_BUDGET_USED_UP))
        return Reservation(
            job,
            after.total,
            in_flight + 1,
            jobs_per_member=limit,
            budget_alert=alert,
            bot_budget_alert=bot_alert,
        )

    async def settle(
        self,
        job_id: int,
        *,
        succeeded: bool,
        stems: Sequence[StemLink] = (),
        links_expire_at: float | None = None,
        failure: Failure | None = None,
        failure_detail: str | None = None,
        from_states: Sequence[JobState] = UNFINISHED_STATES,
    ) -> Job | None:
        """Finish an unfinished job and settle its reservation, in one transaction.

        Success charges the reservation; failure refunds it. Returns the finished job, or None if
        the job was already finished, or not in one of `from_states` (settling twice changes
        nothing).
        """
        outcome = Outcome(succeeded, tuple(stems), links_expire_at, failure, failure_detail)

        async def body(tx: Tx) -> Job | None:
            settled = await self._settle(tx, [job_id], outcome, self._db.now(), from_states=from_states)
            return settled[0][0] if settled else None

        return await self._db.transact(body, what=f"job {job_id}: settling it")

    async def cancel(self, job_id: int, *, member_roles: Sequence[int] | None = None) -> Cancellation:
        """Call off a job nothing has been sent for, refunding it once, in one transaction.

        A queued job (`reserved`) is cancelled unless other members' splits follow it; a job
        following another stops following (refunded if it cost anything). A job whose submit is on
        the wire or accepted cannot be stopped (the API has no cancel), and the runner's move to
        `submitting` and this are both compare-and-set on the job's state: exactly one wins.

        `member_roles`: the job's own member cancels it, with these roles. Their account is
        brought up to date first, and the allowance the job took from a period that has ended
        since is not returned (see `economy.refund`); None (a moderator calls it off) refunds it
        like a failure of ours. Returns what happened, the job as it is now, and what came back."""
        return await self._db.transact(
            lambda tx: self._cancel(tx, job_id, member_roles), what=f"job {job_id}: cancelling it"
        )

    async def _cancel(self, tx: Tx, job_id: int, member_roles: Sequence[int] | None) -> Cancellation:
        job = await jobs.get(tx, job_id, lock=True)
        if job is None:
            return Cancellation(CancelOutcome.FINISHED, None)
        if job.state.finished:
            return Cancellation(CancelOutcome.FINISHED, job)
        if job.state not in CANCELLABLE_STATES:
            return Cancellation(CancelOutcome.ALREADY_SENT, job)
        if job.state is JobState.RESERVED and await sharing.following(tx, job.id, limit=1):
            return Cancellation(CancelOutcome.OTHERS_WAITING, job)
        now = self._db.now()
        own = member_roles is not None and job.cost > 0
        if own:
            # The job is locked before the account (the store's lock order), as `_settle` locks them.
            await self._accounts.current(tx, job.guild_id, job.user_id, role_ids=member_roles or (), now=now)
        [(cancelled, refund)] = await self._settle(  # the transaction saw it in that state
            tx,
            [job.id],
            Outcome(succeeded=False, cancelled=True),
            now,
            from_states=(job.state,),
            own_cancel=own,
        )
        return Cancellation(CancelOutcome.CANCELLED, cancelled, refund)

    async def settle_followers(self, leader: Job) -> list[Job]:
        """Give a finished job's outcome to every job following it, settling each like its own:
        charged (if it cost anything) on success, refunded on failure. Returns the finished ones."""
        assert leader.state.finished
        # Most jobs have no followers: find out with one read before opening a transaction. (None
        # can join once the leader is finished: new requests then reuse it or start afresh.)
        async with self._db.reading() as tx:
            if not await sharing.following(tx, leader.id, limit=1):
                return []
        outcome, now = Outcome.of(leader), self._db.now()

        async def body(tx: Tx) -> list[Job]:
            # Every follower locked first, by id (the store's lock order), before any account.
            following = await sharing.following(tx, leader.id, lock=True)
            return [job for job, _ in await self._settle(tx, following, outcome, now)]

        return await self._db.transact(body, what=f"job {leader.id}: settling the jobs that follow it")

    async def _settle(
        self,
        tx: Tx,
        job_ids: Sequence[int],
        outcome: Outcome,
        now: float,
        *,
        from_states: Sequence[JobState] = UNFINISHED_STATES,
        own_cancel: bool = False,
    ) -> list[tuple[Job, Refund | None]]:
        """Finish the jobs still in `from_states` and settle their credits and budgets: each job
        finished, with what came back if it was refunded credits (`own_cancel`: see
        `Accounts.refund`). Those already settled are left out: nothing moves twice.

        In the store's lock order: the jobs by id, then their members' accounts by guild and user,
        then the budgets released, every server's month (by server and month) before the bot's."""
        finished = [
            job
            for job_id in sorted(job_ids)
            if (job := await jobs.finish(tx, job_id, outcome, now, from_states=from_states)) is not None
        ]
        refunds: dict[int, Refund] = {}
        # A free shared result held no credits: none move.
        for job in sorted((j for j in finished if j.cost), key=lambda j: (j.guild_id, j.user_id, j.id)):
            account = await accounts.read(tx, job.guild_id, job.user_id)
            assert account is not None
            if outcome.succeeded:
                settled = await accounts.move(
                    tx, account, LedgerKind.CHARGE, 0, 0, now=now, job_id=job.id, applied=True
                )
                assert settled is not None
            else:
                refunds[job.id] = await self._accounts.refund(tx, account, job, now, own_cancel=own_cancel)
        if not outcome.succeeded:
            released = [j for j in finished if j.budget_cost and j.budget_month is not None]
            for job in sorted(released, key=lambda j: (j.guild_id, j.budget_month or "", j.id)):
                assert job.budget_month is not None
                await budgets.release(tx, job.guild_id, job.budget_month, job.budget_cost)
            for job in sorted(released, key=lambda j: (j.budget_month or "", j.id)):
                assert job.budget_month is not None
                await budgets.release_bot(tx, job.budget_month, job.budget_cost)
        return [(job, refunds.get(job.id)) for job in finished]


async def _insert_job(
    tx: Tx,
    new: NewJob,
    *,
    cost: int,
    share: Share | None,
    source: Job | None,
    now: float,
    budget_cost: int,
    budget_month: str | None,
    lease: Lease | None,
) -> Job:
    state, stems, links_expire_at, finished_at, delivery = JobState.RESERVED, None, None, None, Delivery.NONE
    if share is Share.REUSED:
        assert source is not None
        state, links_expire_at, finished_at = JobState.SUCCEEDED, source.links_expire_at, now
        stems, delivery = json.dumps([[x.key, x.url] for x in source.stems]), Delivery.PENDING
    elif share is Share.COALESCED:
        state = JobState.FOLLOWING
    rows = await tx.fetchall(
        "INSERT INTO jobs (guild_id, channel_id, user_id, mode, source_task_id, audio_id, "
        "cost, state, callback_token, application_id, interaction_token, "
        "interaction_expires_at, created_at, share, source_job_id, stems, links_expire_at, "
        "finished_at, delivery, response_message_id, budget_cost, budget_month, app_permissions, sandbox, "
        "filesize_limit, claimed_by, lease_until) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        + (f"?, {tx.current_time} + ?) " if lease is not None else "NULL, NULL) ")
        +
        # The conflict target is the partial index `jobs_one_leader` (migration 011).
        "ON CONFLICT (source_task_id, audio_id, mode, sandbox) "
        f"WHERE state IN ({_LEADER_STATES_LITERAL}) DO NOTHING RETURNING *",
        (
            new.guild_id,
            new.channel_id,
            new.user_id,
            new.mode,
            new.source_task_id,
            new.audio_id,
            cost,
            state,
            new.callback_token,
            new.application_id,
            new.interaction_token,
            new.interaction_expires_at,
            now,
            share,
            source.id if source else None,
            stems,
            links_expire_at,
            finished_at,
            delivery,
            new.response_message_id,
            budget_cost,
            budget_month,
            new.app_permissions,
            new.sandbox,
            new.filesize_limit,
            *((lease.holder, lease.seconds) if lease is not None else ()),
        ),
    )
    if not rows:
        raise _StartOver
    return jobs.job_from_row(rows[0])
