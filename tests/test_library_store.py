"""A member's library in the store, on real SQLite: cancelling (and its race with the runner's
submit), library pages, autocomplete suggestions, reminders, and the messages results were shown in."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from bot.models import (
    CancelOutcome,
    CreditPolicy,
    Delivery,
    DeliveryVia,
    JobState,
    LedgerKind,
    NewJob,
    ReuseCharge,
    StemLink,
)
from bot.product import LINK_LIFETIME, Mode
from bot.store import Store
from tests.unit_helpers import FakeClock

GUILD, ANA, BOB, MOD = 10, 21, 22, 90
WEEK = 7 * 24 * 3600.0
_serial = itertools.count(1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock("2026-11-02 12:00")


@pytest.fixture
async def store(databases, clock: FakeClock):
    opened = await Store.open(
        await databases("library"), CreditPolicy(default_credits=1000, jobs_per_member=50), clock
    )
    yield opened
    assert await opened.accounts.ledger_mismatches() == []
    await opened.close()


def new_job(member: int = ANA, audio_id: str = "", mode: Mode = Mode.SEPARATE_VOCAL) -> NewJob:
    n = next(_serial)
    return NewJob(GUILD, 1, member, mode, "task", audio_id or f"audio-{n}", mode.cost, f"tok-{n}")


async def reserve(store: Store, member: int = ANA, audio_id: str = "", mode: Mode = Mode.SEPARATE_VOCAL):
    job = (await store.reservations.reserve(new_job(member, audio_id, mode))).job
    assert job is not None
    return job


async def ledger(store: Store, member: int, job_id: int) -> list[tuple[LedgerKind, int]]:
    return [(e.kind, e.amount) for e in await store.accounts.ledger(GUILD, member) if e.job_id == job_id]


# -- cancel ----------------------------------------------------------------------------------------


async def test_a_queued_job_is_cancelled_and_refunded_once(store: Store) -> None:
    job = await reserve(store)

    outcome, cancelled = (done := await store.reservations.cancel(job.id)).outcome, done.job
    again = (await store.reservations.cancel(job.id)).outcome

    assert outcome is CancelOutcome.CANCELLED and again is CancelOutcome.FINISHED
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    assert cancelled.delivery is Delivery.NONE  # nothing to deliver
    assert await ledger(store, ANA, job.id) == [(LedgerKind.RESERVE, -10), (LedgerKind.REFUND, 10)]
    assert await store.accounts.balance(GUILD, ANA) == 1000
    assert job.id not in [j.id for j in await store.jobs.needing_work()]


async def test_a_job_whose_submit_may_be_on_the_wire_cannot_be_cancelled(store: Store) -> None:
    job = await reserve(store)
    await store.jobs.transition(job.id, [JobState.RESERVED], JobState.SUBMITTING)

    outcome, now = (done := await store.reservations.cancel(job.id)).outcome, done.job

    assert outcome is CancelOutcome.ALREADY_SENT and now is not None and now.state is JobState.SUBMITTING
    assert await ledger(store, ANA, job.id) == [(LedgerKind.RESERVE, -10)]


async def test_cancel_and_the_runners_submit_race_and_exactly_one_wins(store: Store) -> None:
    jobs = [await reserve(store) for _ in range(40)]

    async def submit(job_id: int) -> bool:
        return await store.jobs.transition(job_id, [JobState.RESERVED], JobState.SUBMITTING, durable=True)

    results = await asyncio.gather(
        *(asyncio.gather(submit(j.id), store.reservations.cancel(j.id)) for j in jobs)
    )

    for job, (submitted, done) in zip(jobs, results, strict=True):
        outcome = done.outcome
        assert submitted != (outcome is CancelOutcome.CANCELLED), job.id  # one or the other, never both
        refunds = [kind for kind, _ in await ledger(store, ANA, job.id) if kind is LedgerKind.REFUND]
        assert len(refunds) == (0 if submitted else 1)
        state = (await store.jobs.get(job.id)).state
        assert state is (JobState.SUBMITTING if submitted else JobState.CANCELLED)


async def test_a_job_others_follow_cannot_be_cancelled_but_a_follower_can(store: Store) -> None:
    await store.economy.update_settings(GUILD, {"reuse_charge": ReuseCharge.FULL}, actor_id=MOD)
    leader = await reserve(store, ANA, audio_id="shared")
    follower = await reserve(store, BOB, audio_id="shared")
    assert follower.state is JobState.FOLLOWING and follower.cost == 10

    assert (await store.reservations.cancel(leader.id)).outcome is CancelOutcome.OTHERS_WAITING
    outcome, stopped = (done := await store.reservations.cancel(follower.id)).outcome, done.job

    assert outcome is CancelOutcome.CANCELLED and stopped is not None
    assert await ledger(store, BOB, follower.id) == [(LedgerKind.RESERVE, -10), (LedgerKind.REFUND, 10)]
    # Nobody follows the leader now, so it can be called off too.
    assert (await store.reservations.cancel(leader.id)).outcome is CancelOutcome.CANCELLED


async def test_a_free_follower_is_cancelled_without_moving_credits(store: Store) -> None:
    await reserve(store, ANA, audio_id="shared")
    follower = await reserve(store, BOB, audio_id="shared")
    assert follower.cost == 0

    assert (await store.reservations.cancel(follower.id)).outcome is CancelOutcome.CANCELLED
    assert await ledger(store, BOB, follower.id) == []


async def test_a_cancelled_follower_is_not_settled_with_its_leader(store: Store) -> None:
    leader = await reserve(store, ANA, audio_id="shared")
    follower = await reserve(store, BOB, audio_id="shared")
    await store.reservations.cancel(follower.id)
    done = await store.reservations.settle(
        leader.id, succeeded=True, stems=[StemLink("vocal", "https://x/v")], links_expire_at=2e9
    )

    assert done is not None and await store.reservations.settle_followers(done) == []
    assert (await store.jobs.get(follower.id)).state is JobState.CANCELLED


# -- the library -----------------------------------------------------------------------------------


async def test_library_pages_are_newest_first_and_stable_while_paging(store: Store) -> None:
    mine = [await reserve(store) for _ in range(23)]
    await reserve(store, BOB)  # someone else's: not in Ana's library

    first = await store.jobs.library_page(GUILD, ANA, page=0, page_size=10)
    await reserve(store)  # made while Ana pages: does not shift her pages
    second = await store.jobs.library_page(GUILD, ANA, page=1, page_size=10, newest_id=first.newest_id)
    last = await store.jobs.library_page(GUILD, ANA, page=9, page_size=10, newest_id=first.newest_id)

    ids = [j.id for j in reversed(mine)]
    assert [j.id for j in first.jobs] == ids[:10] and [j.id for j in second.jobs] == ids[10:20]
    assert (first.pages, first.total) == (3, 23)
    assert last.page == 2 and [j.id for j in last.jobs] == ids[20:]


async def test_suggestions_are_a_members_own_or_the_whole_servers_and_match_the_typed_number(
    store: Store,
) -> None:
    ana = [await reserve(store) for _ in range(3)]
    bob = await reserve(store, BOB)

    assert [j.id for j in await store.jobs.recent(GUILD, ANA)] == [j.id for j in reversed(ana)]
    assert bob.id in [j.id for j in await store.jobs.recent(GUILD, None)]
    typed = str(ana[1].id)
    assert ana[1].id in [j.id for j in await store.jobs.recent(GUILD, ANA, number=f"#{typed}")]
    assert all(str(j.id).startswith(typed) for j in await store.jobs.recent(GUILD, ANA, number=typed))
    assert await store.jobs.recent(GUILD, ANA, number="'; DROP TABLE jobs; --") != []  # no digits: all


# -- reminders -------------------------------------------------------------------------------------


async def succeeded(
    store: Store, clock: FakeClock, member: int = ANA, *, links_left: float = LINK_LIFETIME.total_seconds()
):
    job = await reserve(store, member)
    done = await store.reservations.settle(
        job.id, succeeded=True, stems=[StemLink("vocal", "https://x/v")], links_expire_at=clock() + links_left
    )
    assert done is not None
    return done


async def test_a_reminder_is_due_its_window_before_the_links_expire_and_claimed_once(
    store: Store, clock: FakeClock
) -> None:
    job = await succeeded(store, clock)
    window = 24 * 3600.0

    assert await store.jobs.to_remind(window=window, now=clock()) == []
    assert await store.jobs.next_reminder_at(window=window, now=clock()) == pytest.approx(
        job.links_expire_at - window
    )
    clock.advance(LINK_LIFETIME.total_seconds() - window + 1)
    assert [j.id for j in await store.jobs.to_remind(window=window, now=clock())] == [job.id]
    assert await store.jobs.claim_reminder(job.id) is True
    assert await store.jobs.claim_reminder(job.id) is False  # a second sender gets nothing
    assert await store.jobs.to_remind(window=window, now=clock()) == []


async def test_an_unsent_reminder_can_be_tried_again(store: Store, clock: FakeClock) -> None:
    job = await succeeded(store, clock, links_left=3600)
    assert await store.jobs.claim_reminder(job.id)
    await store.jobs.unclaim_reminder(job.id)
    assert [j.id for j in await store.jobs.to_remind(window=2 * 3600, now=clock())] == []  # short links
    assert await store.jobs.claim_reminder(job.id)


async def test_a_failed_reminder_waits_for_its_retry_and_is_given_up_at_the_last_attempt(
    store: Store, clock: FakeClock
) -> None:
    window = LINK_LIFETIME.total_seconds() - 60
    job = await succeeded(store, clock)
    clock.advance(61)
    assert await store.jobs.claim_reminder(job.id)
    assert await store.jobs.reminder_failed(job.id, retry_at=clock() + 300, max_attempts=2) == 1
    assert await store.jobs.to_remind(window=window, now=clock()) == []  # waits for its retry
    assert await store.jobs.next_reminder_at(window=window, now=clock()) == pytest.approx(clock() + 300)
    clock.advance(300)
    assert [j.id for j in await store.jobs.to_remind(window=window, now=clock())] == [job.id]
    assert await store.jobs.claim_reminder(job.id)
    assert await store.jobs.reminder_failed(job.id, retry_at=clock() + 300, max_attempts=2) == 2
    clock.advance(300)
    assert await store.jobs.to_remind(window=window, now=clock()) == []  # given up: stays claimed
    assert await store.jobs.next_reminder_at(window=window, now=clock()) is None


async def test_no_reminder_for_short_lived_results_failed_jobs_or_members_who_said_no(
    store: Store, clock: FakeClock
) -> None:
    window = 24 * 3600.0
    short = await succeeded(store, clock, links_left=window - 60)  # a reused result near its end
    failed = await reserve(store)
    await store.reservations.settle(failed.id, succeeded=False)
    bobs = await succeeded(store, clock, BOB)
    await store.members.set_reminders(BOB, False)
    anas = await succeeded(store, clock)

    clock.advance(LINK_LIFETIME.total_seconds() - window + 1)
    due = [j.id for j in await store.jobs.to_remind(window=window, now=clock())]

    assert due == [anas.id]
    assert short.id not in due and bobs.id not in due and failed.id not in due
    assert await store.members.reminders(BOB) is False and await store.members.reminders(ANA) is True


# -- the messages a result was shown in ------------------------------------------------------------


async def test_the_parts_of_a_result_are_recorded_once_per_way_of_delivery(
    store: Store, clock: FakeClock
) -> None:
    job = await succeeded(store, clock)
    await store.deliveries.record(job.id, DeliveryVia.INTERACTION, 0, channel_id=1, message_id=100)
    await store.deliveries.record(job.id, DeliveryVia.CHANNEL, 0, channel_id=1, message_id=200)
    await store.deliveries.record(job.id, DeliveryVia.CHANNEL, 1, channel_id=1, message_id=201)
    await store.deliveries.record(job.id, DeliveryVia.CHANNEL, 1, channel_id=1, message_id=999)  # a repeat
    await store.jobs.record_delivery(job.id, Delivery.DELIVERED, DeliveryVia.CHANNEL)

    assert [m.message_id for m in await store.deliveries.shown(job.id, DeliveryVia.CHANNEL)] == [200, 201]
    assert [m.message_id for m in await store.deliveries.result_messages(job.id)] == [200, 201]
