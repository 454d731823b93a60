"""The credit economy in the store, on real SQLite files with a settable clock: refills, bonus,
role tiers, refunds across refills, moderators' corrections, blocks, cooldowns, history, races,
and the migration of databases from before the economy. Every test ends with ledger = balance."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import AsyncIterator
from importlib import resources

import asyncpg
import pytest

from bot.models import (
    SERVER_WIDE,
    Balance,
    CancelOutcome,
    CreditPolicy,
    Failure,
    JobState,
    LedgerKind,
    NewJob,
    Period,
    Refund,
    Refusal,
)
from bot.product import Mode
from bot.store import Store
from tests.unit_helpers import FakeClock

GUILD, MEMBER, MOD = 1000, 2000, 9000
STARTING = 100
POLICY = CreditPolicy(default_credits=STARTING, jobs_per_member=1000)
VIP, PATRON = 51, 52  # role ids
_tokens = itertools.count()
INTEGRITY_ERRORS = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock("2025-03-05 10:00")  # a Wednesday


@pytest.fixture
async def store(databases, clock: FakeClock) -> AsyncIterator[Store]:
    opened = await Store.open(await databases("economy"), POLICY, clock=clock)
    yield opened
    assert await opened.accounts.ledger_mismatches() == []
    await opened.close()


def new_job(member: int = MEMBER, mode: Mode = Mode.SPLIT_STEM) -> NewJob:
    n = next(_tokens)  # a different track each time: identical requests would share one API job
    return NewJob(GUILD, 3000, member, mode, "task", f"audio-{n}", mode.cost, f"tok-{n}")


async def reserve(store: Store, *, member: int = MEMBER, mode: Mode = Mode.SPLIT_STEM, roles=()):
    return await store.reservations.reserve(new_job(member, mode), role_ids=roles)


async def summary(store: Store, member: int = MEMBER, roles=()):
    return await store.accounts.summary(GUILD, member, role_ids=roles)


async def parts(store: Store, member: int = MEMBER, roles=()) -> Balance:
    current = await summary(store, member, roles)
    return Balance(current.allowance_left, current.bonus)


async def allowance(store: Store, amount: int, *, period=Period.WEEKLY, role=SERVER_WIDE, apply_now=False):
    return await store.economy.set_allowance(
        GUILD, amount, role_id=role, period=period, apply_now=apply_now, actor_id=MOD
    )


async def grant(store: Store, amount: int, member: int = MEMBER, roles=(), reason: str | None = "thanks"):
    return await store.accounts.grant(GUILD, member, amount, actor_id=MOD, reason=reason, role_ids=roles)


def kinds(entries) -> list[tuple[LedgerKind, int]]:
    return [(e.kind, e.amount) for e in entries]


# -- allowances and refills --------------------------------------------------------------------


async def test_members_start_with_the_default_allowance_and_by_default_it_never_refills(store, clock):
    await reserve(store)
    clock.set("2026-06-01 00:00")

    current = await summary(store)
    assert (current.balance, current.allowance, current.period) == (50, 100, Period.NEVER)
    assert current.next_refill_at is None


async def test_a_weekly_allowance_refills_to_full_on_monday(store, clock):
    await allowance(store, 100)
    await reserve(store)
    clock.set("2025-03-09 23:59:59")  # Sunday
    assert (await summary(store)).balance == 50

    clock.set("2025-03-10 00:00")

    current = await summary(store)
    assert current.balance == 100
    refill = (await store.accounts.ledger(GUILD, MEMBER))[-1]
    assert (refill.kind, refill.amount, refill.balance_after, refill.actor_id) == (
        LedgerKind.REFILL,
        50,
        100,
        None,
    )
    assert refill.created_at == clock.now


async def test_the_summary_says_when_the_next_refill_is(store, clock):
    await allowance(store, 100)

    current = await summary(store)

    assert current.next_refill_at == clock.set("2025-03-10 00:00")


async def test_unused_allowance_does_not_roll_over(store, clock):
    await allowance(store, 100)
    await summary(store)
    clock.set("2025-03-17 12:00")  # two refills later

    assert (await summary(store)).balance == 100
    assert [e.kind for e in await store.accounts.ledger(GUILD, MEMBER)] == [LedgerKind.ALLOWANCE]


async def test_bonus_credits_are_kept_across_refills(store, clock):
    await allowance(store, 100)
    await grant(store, 30)
    await reserve(store)  # all from the allowance
    clock.set("2025-03-10 00:00")

    assert await parts(store) == Balance(100, 30)


async def test_spending_takes_the_allowance_first_then_bonus(store):
    await grant(store, 40)  # 100 allowance + 40 bonus

    first = await reserve(store)
    second = await reserve(store)

    assert first.job and second.job
    reserves = [e for e in await store.accounts.ledger(GUILD, MEMBER) if e.kind is LedgerKind.RESERVE]
    assert [(e.allowance_change, e.bonus_change) for e in reserves] == [(-50, 0), (-50, 0)]
    third = await reserve(store, mode=Mode.SEPARATE_VOCAL)
    assert third.job is not None
    last = (await store.accounts.ledger(GUILD, MEMBER))[-1]
    assert (last.allowance_change, last.bonus_change) == (0, -10)
    assert await parts(store) == Balance(0, 30)


async def test_a_spend_across_both_parts_records_how_much_came_from_each(store):
    await store.accounts.set_balance(GUILD, MEMBER, 30, actor_id=MOD, reason=None, role_ids=())
    await grant(store, 40)  # 30 allowance + 40 bonus

    await reserve(store)

    last = (await store.accounts.ledger(GUILD, MEMBER))[-1]
    assert (last.kind, last.allowance_change, last.bonus_change) == (LedgerKind.RESERVE, -30, -20)
    assert await parts(store) == Balance(0, 20)


async def test_a_refund_returns_each_part_where_it_came_from(store):
    await store.accounts.set_balance(GUILD, MEMBER, 30, actor_id=MOD, reason=None, role_ids=())
    await grant(store, 40)
    job = (await reserve(store)).job
    assert job is not None

    await store.reservations.settle(job.id, succeeded=False, failure=Failure.SEPARATION_FAILED)

    assert await parts(store) == Balance(30, 40)


async def test_a_refund_after_a_refill_comes_back_as_bonus(store, clock):
    await allowance(store, 100)
    job = (await reserve(store)).job  # 50 from this week's allowance
    assert job is not None
    clock.set("2025-03-10 00:05")  # Monday: a refill is due, not yet applied

    await store.reservations.settle(job.id, succeeded=False, failure=Failure.TIMED_OUT)

    assert await parts(store) == Balance(100, 50)
    refund = [e for e in await store.accounts.ledger(GUILD, MEMBER) if e.kind is LedgerKind.REFUND]
    assert [(e.allowance_change, e.bonus_change) for e in refund] == [(0, 50)]


async def test_a_refund_after_an_applied_refill_comes_back_as_bonus(store, clock):
    await allowance(store, 100)
    job = (await reserve(store)).job
    assert job is not None
    clock.set("2025-03-10 00:05")
    assert await parts(store) == Balance(100, 0)  # the refill is applied

    await store.reservations.settle(job.id, succeeded=False, failure=Failure.TIMED_OUT)

    assert await parts(store) == Balance(100, 50)


async def a_split_of_30_allowance_and_20_bonus(store):
    await allowance(store, 100)
    await store.accounts.set_balance(GUILD, MEMBER, 30, actor_id=MOD, reason=None, role_ids=())
    await grant(store, 40)
    job = (await reserve(store)).job  # 30 from this week's allowance, 20 from bonus
    assert job is not None and await parts(store) == Balance(0, 20)
    return job


async def test_a_members_own_cancel_after_a_refill_lets_the_old_allowance_expire(store, clock):
    job = await a_split_of_30_allowance_and_20_bonus(store)
    clock.set("2025-03-10 00:05")  # Monday: a refill is due, not yet applied

    cancellation = await store.reservations.cancel(job.id, member_roles=())

    assert cancellation.outcome is CancelOutcome.CANCELLED
    assert cancellation.refund == Refund(0, 20, expired=30)
    assert await parts(store) == Balance(100, 40)  # not Balance(100, 70): no allowance became bonus
    refund = [e for e in await store.accounts.ledger(GUILD, MEMBER) if e.kind is LedgerKind.REFUND]
    assert [(e.allowance_change, e.bonus_change) for e in refund] == [(0, 20)]
    assert await store.accounts.refund_of(job.id) == cancellation.refund  # as the ledger says


async def test_a_members_own_cancel_in_the_same_period_returns_everything(store, clock):
    job = await a_split_of_30_allowance_and_20_bonus(store)
    clock.set("2025-03-09 23:00")

    cancellation = await store.reservations.cancel(job.id, member_roles=())

    assert cancellation.refund == Refund(30, 20) and await parts(store) == Balance(30, 40)


async def test_a_refill_for_a_role_counts_for_a_members_own_cancel_only_if_they_have_it(store, clock):
    job = await a_split_of_30_allowance_and_20_bonus(store)
    clock.set("2025-03-06 10:00")
    await allowance(store, 100, role=VIP, apply_now=True)  # a refill now, for VIP members only

    cancellation = await store.reservations.cancel(job.id, member_roles=())

    assert cancellation.refund == Refund(30, 20) and await parts(store) == Balance(30, 40)


async def test_a_moderators_cancel_after_a_refill_returns_everything_as_bonus(store, clock):
    job = await a_split_of_30_allowance_and_20_bonus(store)
    clock.set("2025-03-10 00:05")

    cancellation = await store.reservations.cancel(job.id)  # not the member's own

    assert cancellation.refund == Refund(0, 50) and await parts(store) == Balance(100, 70)


async def test_a_refund_in_the_same_period_returns_to_the_allowance(store, clock):
    await allowance(store, 100)
    job = (await reserve(store)).job
    assert job is not None
    clock.set("2025-03-09 23:00")

    await store.reservations.settle(job.id, succeeded=False, failure=Failure.TIMED_OUT)

    assert await parts(store) == Balance(100, 0)


async def test_a_restart_never_refills_twice(databases, clock):
    path = await databases("restart")
    store = await Store.open(path, POLICY, clock=clock)
    await allowance(store, 100)
    await reserve(store)
    clock.set("2025-03-10 09:00")
    assert (await summary(store)).balance == 100  # Monday's refill
    await reserve(store)
    await store.close()

    reopened = await Store.open(path, POLICY, clock=clock)
    try:
        assert (await summary(reopened)).balance == 50
        clock.advance(3600)
        assert (await summary(reopened)).balance == 50
        refills = [e for e in await reopened.accounts.ledger(GUILD, MEMBER) if e.kind is LedgerKind.REFILL]
        assert len(refills) == 1
        assert await reopened.accounts.ledger_mismatches() == []
    finally:
        await reopened.close()


async def test_two_connections_racing_over_a_due_refill_refill_once(databases, clock):
    path = await databases("shared")
    one, two = await Store.open(path, POLICY, clock=clock), await Store.open(path, POLICY, clock=clock)
    try:
        await allowance(one, 100)
        await reserve(one)
        clock.set("2025-03-10 00:00")

        balances = await asyncio.gather(*(s.accounts.balance(GUILD, MEMBER) for s in [one, two] * 10))

        assert set(balances) == {100}
        assert [e.kind for e in await one.accounts.ledger(GUILD, MEMBER)].count(LedgerKind.REFILL) == 1
        assert await one.accounts.ledger_mismatches() == []
    finally:
        await one.close()
        await two.close()


async def test_an_allowance_change_waits_for_the_next_refill(store, clock):
    await allowance(store, 100)
    await reserve(store)

    update = await allowance(store, 200)

    assert not update.applied_now and update.previous_amount == 100
    assert update.next_refill_at == FakeClock("2025-03-10 00:00").now
    current = await summary(store)
    assert (current.balance, current.allowance, current.next_allowance) == (50, 100, 200)
    clock.set("2025-03-10 00:00")
    assert (await summary(store)).balance == 200


async def test_apply_now_refills_everyone_to_the_new_allowance_now(store, clock):
    await allowance(store, 100)
    await reserve(store)
    await grant(store, 5)

    update = await allowance(store, 200, apply_now=True)

    assert update.applied_now
    current = await summary(store)
    assert (current.allowance_left, current.bonus, current.allowance) == (200, 5, 200)


async def test_new_members_start_with_the_current_allowance(store):
    await allowance(store, 30, period=Period.NEVER)

    assert (await summary(store, member=MEMBER + 1)).balance == 30


async def test_a_one_off_allowance_change_leaves_existing_members_alone(store, clock):
    await reserve(store)  # 50 left of the default 100

    await allowance(store, 300, period=Period.NEVER)
    clock.set("2026-01-01")

    assert (await summary(store)).balance == 50


async def test_a_refill_due_before_a_change_gives_the_amount_of_its_time(store, clock):
    await allowance(store, 100)
    await reserve(store)
    clock.set("2025-03-11 12:00")  # Monday's refill is due, the member has not been seen

    await allowance(store, 500)
    assert await parts(store) == Balance(100, 0)

    clock.set("2025-03-17 00:00")
    assert await parts(store) == Balance(500, 0)


async def test_switching_from_one_off_to_weekly_starts_at_the_next_monday(store, clock):
    await reserve(store)

    update = await allowance(store, 100, period=Period.WEEKLY)

    assert (update.previous_period, update.period) == (Period.NEVER, Period.WEEKLY)
    assert (await summary(store)).balance == 50
    clock.set("2025-03-10 00:00")
    assert (await summary(store)).balance == 100


async def test_switching_weekly_to_daily_midweek_does_not_refill_at_once(store, clock):
    await allowance(store, 100)
    await reserve(store)

    await allowance(store, 100, period=Period.DAILY)

    assert (await summary(store)).balance == 50
    clock.set("2025-03-06 00:00")
    assert (await summary(store)).balance == 100


async def test_a_new_refill_time_neither_refills_early_nor_loses_a_due_refill(store, clock):
    await allowance(store, 100, period=Period.DAILY)
    await reserve(store)  # Wednesday 10:00, refilled at 00:00 Wednesday
    await reserve(store, member=MEMBER + 1)
    clock.set("2025-03-06 10:00")  # Thursday's refill is due for both
    assert (await summary(store, MEMBER + 1)).balance == 100  # ... and given to one of them

    before, after = await store.economy.update_settings(GUILD, {"refill_minute": 6 * 60}, actor_id=MOD)

    assert (before.refill_time, after.refill_time) == ("00:00", "06:00")
    assert (await summary(store)).balance == 100  # the member not seen since still gets it
    await reserve(store)
    await reserve(store, member=MEMBER + 1)
    clock.set("2025-03-07 05:59")
    assert (await summary(store)).balance == 50  # no refill at the old 00:00, nor at 06:00 today
    clock.set("2025-03-07 06:00")
    assert (await summary(store)).balance == 100
    assert (await summary(store, MEMBER + 1)).balance == 100


async def test_the_refill_follows_the_servers_time_zone(store, clock):
    await allowance(store, 100, period=Period.DAILY)
    await store.economy.update_settings(GUILD, {"timezone": "Asia/Tokyo"}, actor_id=MOD)
    await reserve(store)
    clock.set("2025-03-05 14:59")  # 23:59 in Tokyo
    assert (await summary(store)).balance == 50

    clock.set("2025-03-05 15:00")  # midnight in Tokyo

    assert (await summary(store)).balance == 100


async def test_the_store_refuses_to_keep_a_time_zone_it_cannot_load(store):
    with pytest.raises(ValueError, match="cannot be loaded"):
        await store.economy.update_settings(GUILD, {"timezone": "Mars/Olympus_Mons"}, actor_id=MOD)

    settings, _ = await store.economy.get(GUILD)
    assert settings.timezone == "UTC"


async def test_a_stored_time_zone_that_cannot_be_loaded_falls_back_to_utc(tmp_path, clock, caplog):
    """Written straight into SQLite, as a zone chosen on a host whose time zone data differed."""
    path = tmp_path / "zone.db"
    store = await Store.open(path, clock=clock)
    await allowance(store, 100, period=Period.DAILY)
    await store.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE economy_settings SET timezone = ? WHERE guild_id = ?", ("Mars/Jezero_Crater", GUILD))
    conn.commit()
    conn.close()
    store = await Store.open(path, clock=clock)
    try:
        job = (await reserve(store)).job
        assert job is not None
        assert await parts(store) == Balance(50, 0)

        await store.reservations.settle(job.id, succeeded=False, failure=Failure.TIMED_OUT)

        assert await parts(store) == Balance(100, 0)
        assert (await summary(store)).next_refill_at == clock.set("2025-03-06 00:00")  # midnight UTC
        assert "'Mars/Jezero_Crater' cannot be loaded" in caplog.text
        assert await store.accounts.ledger_mismatches() == []
    finally:
        await store.close()


# -- role tiers --------------------------------------------------------------------------------


async def test_a_members_allowance_is_the_highest_of_the_server_and_their_roles(store):
    await allowance(store, 100, period=Period.NEVER)
    await allowance(store, 300, period=None, role=VIP)
    await allowance(store, 200, period=None, role=PATRON)

    assert (await summary(store, MEMBER, roles=[VIP, PATRON])).allowance == 300
    assert (await summary(store, MEMBER + 1, roles=[PATRON])).allowance == 200
    assert (await summary(store, MEMBER + 2, roles=[777])).allowance == 100


async def test_a_server_allowance_above_a_role_tier_wins(store):
    await allowance(store, 50, period=None, role=VIP)

    assert (await summary(store, roles=[VIP])).allowance == STARTING


async def test_a_new_role_tier_reaches_existing_members_at_the_next_refill(store, clock):
    await allowance(store, 100)
    await summary(store, roles=[VIP])

    await allowance(store, 300, period=None, role=VIP)

    current = await summary(store, roles=[VIP])
    assert (current.balance, current.next_allowance) == (100, 300)
    clock.set("2025-03-10 00:00")
    assert (await summary(store, roles=[VIP])).balance == 300


async def test_apply_now_for_a_role_refills_only_members_with_that_role(store):
    await allowance(store, 100)
    await reserve(store, member=MEMBER, roles=[VIP])
    await reserve(store, member=MEMBER + 1)

    await allowance(store, 300, period=None, role=VIP, apply_now=True)

    assert (await summary(store, MEMBER, roles=[VIP])).balance == 300
    assert (await summary(store, MEMBER + 1)).balance == 50


async def test_a_role_allowance_does_not_change_the_servers_period(store):
    await allowance(store, 100, period=Period.MONTHLY)

    update = await allowance(store, 300, period=None, role=VIP)

    assert update.period is Period.MONTHLY
    settings, _ = await store.economy.get(GUILD)
    assert settings.period is Period.MONTHLY


# -- moderators' corrections -------------------------------------------------------------------


async def test_a_grant_adds_bonus_credits_with_actor_and_reason(store):
    adjustment = await grant(store, 25, reason="won the contest")

    assert adjustment.before == Balance(100, 0) and adjustment.after == Balance(100, 25)
    last = (await store.accounts.ledger(GUILD, MEMBER))[-1]
    assert (last.kind, last.amount, last.balance_before, last.balance_after) == (
        LedgerKind.GRANT,
        25,
        100,
        125,
    )
    assert (last.actor_id, last.reason) == (MOD, "won the contest")


async def test_a_negative_grant_takes_bonus_first_then_allowance(store):
    await grant(store, 20)

    adjustment = await grant(store, -50)

    assert adjustment.after == Balance(70, 0)


async def test_a_grant_that_would_make_the_balance_negative_is_refused(store):
    await reserve(store)

    adjustment = await grant(store, -51)

    assert adjustment.after is None and adjustment.before == Balance(50, 0)
    assert await parts(store) == Balance(50, 0)
    assert LedgerKind.GRANT not in [e.kind for e in await store.accounts.ledger(GUILD, MEMBER)]


async def test_a_grant_may_take_the_balance_to_exactly_zero(store):
    adjustment = await grant(store, -100)

    assert adjustment.after == Balance(0, 0)


async def test_set_fills_the_allowance_then_bonus(store):
    low = await store.accounts.set_balance(GUILD, MEMBER, 40, actor_id=MOD, reason="x", role_ids=())
    high = await store.accounts.set_balance(GUILD, MEMBER, 250, actor_id=MOD, reason=None, role_ids=())

    assert low.after == Balance(40, 0)
    assert high.after == Balance(100, 150)
    last = (await store.accounts.ledger(GUILD, MEMBER))[-1]
    assert (last.kind, last.amount, last.balance_after) == (LedgerKind.SET, 210, 250)


async def test_reset_restores_the_allowance_and_clears_bonus(store):
    await grant(store, 40)
    await reserve(store)

    adjustment = await store.accounts.reset_balance(GUILD, MEMBER, actor_id=MOD, reason="oops", role_ids=())

    assert adjustment.after == Balance(100, 0)
    assert adjustment.jobs_in_flight == 1


async def test_a_refund_after_a_reset_never_overfills_the_allowance(store):
    job = (await reserve(store)).job
    assert job is not None
    await store.accounts.reset_balance(GUILD, MEMBER, actor_id=MOD, reason=None, role_ids=())

    await store.reservations.settle(job.id, succeeded=False, failure=Failure.TIMED_OUT)

    assert await parts(store) == Balance(100, 50)


# -- blocks, cooldowns, limits -------------------------------------------------------------------


async def test_a_blocked_member_cannot_reserve_and_nothing_is_recorded(store):
    assert await store.accounts.set_blocked(GUILD, MEMBER, True, actor_id=MOD, reason="spamming", role_ids=())
    ledger_before = await store.accounts.ledger(GUILD, MEMBER)

    refused = await reserve(store)

    assert (refused.refusal, refused.job, refused.blocked_reason) == (Refusal.BLOCKED, None, "spamming")
    assert await store.jobs.count_by_state() == {}
    assert await store.accounts.ledger(GUILD, MEMBER) == ledger_before
    assert (ledger_before[-1].kind, ledger_before[-1].amount, ledger_before[-1].actor_id) == (
        LedgerKind.BLOCK,
        0,
        MOD,
    )


async def test_blocking_twice_changes_nothing_and_unblocking_lets_them_split(store):
    await store.accounts.set_blocked(GUILD, MEMBER, True, actor_id=MOD, reason=None, role_ids=())
    assert not await store.accounts.set_blocked(GUILD, MEMBER, True, actor_id=MOD, reason=None, role_ids=())

    assert await store.accounts.set_blocked(GUILD, MEMBER, False, actor_id=MOD, reason=None, role_ids=())

    assert (await reserve(store)).job is not None
    assert [e.kind for e in await store.accounts.ledger(GUILD, MEMBER)][1:3] == [
        LedgerKind.BLOCK,
        LedgerKind.UNBLOCK,
    ]


async def test_a_cooldown_refuses_a_split_until_it_has_passed(store, clock):
    await store.economy.update_settings(GUILD, {"cooldown_seconds": 60}, actor_id=MOD)
    first = await reserve(store)
    clock.advance(59)

    refused = await reserve(store)

    assert refused.refusal is Refusal.COOLDOWN and refused.job is None
    assert first.job is not None and refused.retry_at == first.job.created_at + 60
    clock.now = refused.retry_at - 0.01
    assert (await reserve(store)).refusal is Refusal.COOLDOWN
    clock.now = refused.retry_at
    assert (await reserve(store)).job is not None


async def test_the_cooldown_is_per_member(store):
    await store.economy.update_settings(GUILD, {"cooldown_seconds": 600}, actor_id=MOD)
    await reserve(store)

    assert (await reserve(store, member=MEMBER + 1)).job is not None


async def test_a_servers_jobs_per_member_overrides_the_default(store):
    await store.economy.update_settings(GUILD, {"jobs_per_member": 1}, actor_id=MOD)
    await reserve(store, mode=Mode.SEPARATE_VOCAL)

    refused = await reserve(store, mode=Mode.SEPARATE_VOCAL)

    assert (refused.refusal, refused.jobs_per_member) == (Refusal.TOO_MANY_IN_FLIGHT, 1)
    assert (await summary(store)).jobs_per_member == 1


async def test_clearing_jobs_per_member_returns_to_the_default(store):
    await store.economy.update_settings(GUILD, {"jobs_per_member": 1}, actor_id=MOD)

    await store.economy.update_settings(GUILD, {"jobs_per_member": None}, actor_id=MOD)

    assert (await summary(store)).jobs_per_member == POLICY.jobs_per_member


async def test_settings_are_per_server(store):
    await store.economy.update_settings(GUILD, {"jobs_per_member": 1}, actor_id=MOD)
    await allowance(store, 5)

    other, rules = await store.economy.get(GUILD + 1)
    assert (other.jobs_per_member, other.period, rules) == (None, Period.NEVER, [])


# -- spent this period ---------------------------------------------------------------------------


async def test_spent_this_period_counts_splits_started_this_period_less_refunds(store, clock):
    await allowance(store, 100)
    await grant(store, 200)
    old = (await reserve(store)).job
    clock.set("2025-03-10 09:00")
    await reserve(store)
    failed = (await reserve(store, mode=Mode.SEPARATE_VOCAL)).job
    assert old and failed
    await store.reservations.settle(failed.id, succeeded=False, failure=Failure.TIMED_OUT)
    await store.reservations.settle(old.id, succeeded=False, failure=Failure.TIMED_OUT)

    current = await summary(store)
    assert current.spent_this_period == 50
    assert current.period_started_at == clock.set("2025-03-10 00:00")


# -- history -----------------------------------------------------------------------------------


async def test_history_pages_newest_first_without_zero_charge_rows(store):
    for amount in range(1, 24):
        await grant(store, amount)
    job = (await reserve(store)).job
    assert job is not None
    await store.reservations.settle(job.id, succeeded=True)  # a zero-amount charge row

    first = await store.accounts.history_page(GUILD, MEMBER, page=0, page_size=10)
    last = await store.accounts.history_page(GUILD, MEMBER, page=2, page_size=10, newest_id=first.newest_id)

    assert (first.total, first.pages) == (25, 3)  # starting credits, 23 grants, 1 reserve
    assert [e.kind for e in first.entries[:2]] == [LedgerKind.RESERVE, LedgerKind.GRANT]
    assert [e.amount for e in first.entries[1:4]] == [23, 22, 21]
    assert [e.kind for e in last.entries] == [
        LedgerKind.GRANT,
        LedgerKind.GRANT,
        LedgerKind.GRANT,
        LedgerKind.GRANT,
        LedgerKind.ALLOWANCE,
    ]
    ids = [e.id for e in first.entries]
    assert ids == sorted(ids, reverse=True)


async def test_history_pages_stay_put_while_new_rows_arrive(store):
    for amount in range(1, 15):
        await grant(store, amount)
    first = await store.accounts.history_page(GUILD, MEMBER, page=0, page_size=10)
    second_before = await store.accounts.history_page(
        GUILD, MEMBER, page=1, page_size=10, newest_id=first.newest_id
    )

    await grant(store, 99)

    second_after = await store.accounts.history_page(
        GUILD, MEMBER, page=1, page_size=10, newest_id=first.newest_id
    )
    assert second_after == second_before


async def test_history_of_someone_without_an_account_is_one_empty_page(store):
    page = await store.accounts.history_page(GUILD, 424242, page=3, page_size=10)

    assert (page.entries, page.page, page.pages, page.total) == ((), 0, 1, 0)


# -- races -------------------------------------------------------------------------------------


async def test_grants_racing_with_spends_and_a_refill_keep_the_books_straight(store, clock):
    await allowance(store, 100)
    await reserve(store)
    await reserve(store)  # nothing left of this week's allowance
    clock.set("2025-03-10 00:00")  # Monday: a refill is due to whoever comes first

    results = await asyncio.gather(
        *(grant(store, 5) for _ in range(20)),
        *(reserve(store, mode=Mode.SEPARATE_VOCAL) for _ in range(25)),
        *(summary(store) for _ in range(5)),
    )

    accepted = sum(1 for r in results[20:45] if getattr(r, "job", None) is not None)
    assert accepted >= 10  # this week's allowance alone pays for ten
    entries = await store.accounts.ledger(GUILD, MEMBER)
    assert [e.kind for e in entries].count(LedgerKind.REFILL) == 1
    assert (await summary(store)).balance == 100 + 20 * 5 - 10 * accepted
    assert all(r.refusal is Refusal.INSUFFICIENT_CREDITS for r in results[20:45] if r.job is None)
    assert await store.accounts.ledger_mismatches() == []


async def test_grants_racing_with_refunds_keep_the_books_straight(store):
    jobs = [(await reserve(store, mode=Mode.SEPARATE_VOCAL)).job for _ in range(10)]

    await asyncio.gather(
        *(store.reservations.settle(j.id, succeeded=False, failure=Failure.TIMED_OUT) for j in jobs if j),
        *(grant(store, -1) for _ in range(10)),
    )

    assert (await summary(store)).balance == 90
    assert await store.accounts.ledger_mismatches() == []


# -- the ledger check itself -------------------------------------------------------------------


async def test_ledger_mismatches_catches_a_balance_changed_behind_the_ledgers_back(tmp_path, clock):
    path = tmp_path / "tampered.db"
    store = await Store.open(path, POLICY, clock=clock)
    await reserve(store)
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE accounts SET bonus = bonus + 7")

    store = await Store.open(path, POLICY, clock=clock)
    try:
        assert await store.accounts.ledger_mismatches() == [(GUILD, MEMBER, 57, 50)]
    finally:
        await store.close()


# -- migrating a database from before the economy ------------------------------------------------


async def test_a_database_from_before_the_economy_migrates_balances_and_jobs_intact(tmp_path, clock):
    path = tmp_path / "old.db"
    script = (resources.files("bot") / "migrations" / "001_initial.sql").read_text(encoding="utf-8")
    with sqlite3.connect(path) as conn:
        conn.executescript(script)
        conn.executescript(
            "CREATE TABLE schema_version (version INTEGER NOT NULL);"
            "INSERT INTO schema_version VALUES (1);"
            f"INSERT INTO accounts VALUES ({GUILD}, {MEMBER}, 10, 1.0);"
            f"INSERT INTO jobs (id, guild_id, channel_id, user_id, mode, source_task_id, audio_id, cost, "
            f"state, callback_token, created_at) VALUES (1, {GUILD}, 3, {MEMBER}, 'split_stem', 't', 'a', "
            f"50, 'succeeded', 'cb1', 2.0), (2, {GUILD}, 3, {MEMBER}, 'separate_vocal', 't', 'a', 40, "
            "'submitted', 'cb2', 3.0);"
            "INSERT INTO ledger (guild_id, user_id, kind, amount, balance_after, job_id, reason, created_at) "
            f"VALUES ({GUILD}, {MEMBER}, 'allowance', 100, 100, NULL, 'starting credits', 1.0),"
            f"({GUILD}, {MEMBER}, 'reserve', -50, 50, 1, NULL, 2.0),"
            f"({GUILD}, {MEMBER}, 'charge', 0, 50, 1, NULL, 2.5),"
            f"({GUILD}, {MEMBER}, 'reserve', -40, 10, 2, NULL, 3.0);"
        )

    store = await Store.open(path, POLICY, clock=clock)
    try:
        assert await store.accounts.ledger_mismatches() == []
        current = await summary(store)
        assert (current.allowance_left, current.bonus, current.allowance, current.period) == (
            10,
            0,
            100,
            Period.NEVER,
        )
        await store.reservations.settle(2, succeeded=False, failure=Failure.TIMED_OUT)
        assert await parts(store) == Balance(50, 0)
        assert (await store.jobs.get(2)) is not None
        assert (await store.jobs.get(2)).state is JobState.FAILED  # type: ignore[union-attr]
        assert await store.accounts.ledger_mismatches() == []
    finally:
        await store.close()


async def test_a_failed_settings_change_leaves_the_settings_as_they_were(store):
    await allowance(store, 100)
    await store.economy.get(GUILD)  # cached

    with pytest.raises(INTEGRITY_ERRORS):
        await store.economy.update_settings(GUILD, {"cooldown_seconds": -5}, actor_id=MOD)

    settings, rules = await store.economy.get(GUILD)
    assert (settings.period, settings.cooldown_seconds, [r.amount for r in rules]) == (
        Period.WEEKLY,
        0,
        [100],
    )


async def test_a_settings_change_applies_to_the_very_next_split(store):
    assert (await reserve(store)).job is not None
    await store.economy.update_settings(GUILD, {"cooldown_seconds": 600}, actor_id=MOD)

    assert (await reserve(store)).refusal is Refusal.COOLDOWN
