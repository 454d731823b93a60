"""Mixes in the store (`store.mixes`) on both backends: one mix per stem set of a job while it is
not failed, its price charged in the transaction that stores it and refunded at most once, under
the mix's own ledger key, so several members' mixes of one job never collide with each other or
with the job's own reserve and charge."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from bot.models import CreditPolicy, Job, LedgerKind, MixState, NewJob, StemLink, mask_of
from bot.product import LINK_LIFETIME, Mode
from bot.store import Store
from bot.store.mixes import NewMix

GUILD, ANA, BOB, MOD = 1000, 2001, 2002, 2090
_serial = itertools.count(1)
STEMS = ["vocal", "backing_vocals", "drums", "bass", "guitar", "keyboard"]


@pytest.fixture
async def store(databases):
    opened = await Store.open(await databases("mixes"), CreditPolicy(default_credits=100, jobs_per_member=5))
    yield opened
    await opened.close()


async def full_split(store: Store, member: int = ANA) -> Job:
    n = next(_serial)
    new = NewJob(GUILD, 1, member, Mode.SPLIT_STEM, "task", f"audio-{n}", Mode.SPLIT_STEM.cost, f"tok-{n}")
    job = (await store.reservations.reserve(new)).job
    assert job is not None
    done = await store.reservations.settle(
        job.id,
        succeeded=True,
        stems=[StemLink(key, f"https://x/{key}.mp3") for key in STEMS],
        links_expire_at=store.db.now() + LINK_LIFETIME.total_seconds(),
    )
    assert done is not None
    return done


def ask(job: Job, member: int, positions: list[int], price: int = 0) -> NewMix:
    return NewMix(
        job=job,
        stems=mask_of(positions),
        requested_by=member,
        role_ids=(),
        price=price,
        upload_limit=10_000_000,
        filename=f"Job {job.id} - mix.mp3",
    )


async def kinds(store: Store, member: int) -> list[tuple[LedgerKind, int, int | None]]:
    return [(e.kind, e.amount, e.job_id) for e in await store.accounts.ledger(GUILD, member)]


async def test_mixes_are_charged_under_their_own_key_beside_the_jobs_charge(store: Store) -> None:
    job = await full_split(store)

    ana = await store.mixes.request(ask(job, ANA, [0, 1, 3], price=7))
    bob = await store.mixes.request(ask(job, BOB, [0], price=7))
    ana_again = await store.mixes.request(ask(job, ANA, [0, 3], price=7))

    assert ana.started and bob.started and ana_again.started
    assert ana.mix is not None and bob.mix is not None and ana_again.mix is not None
    assert len({ana.mix.id, bob.mix.id, ana_again.mix.id}) == 3
    assert await kinds(store, ANA) == [
        (LedgerKind.ALLOWANCE, 100, None),
        (LedgerKind.RESERVE, -Mode.SPLIT_STEM.cost, job.id),
        (LedgerKind.CHARGE, 0, job.id),
        (LedgerKind.MIX_CHARGE, -7, job.id),
        (LedgerKind.MIX_CHARGE, -7, job.id),
    ]
    assert await kinds(store, BOB) == [(LedgerKind.ALLOWANCE, 100, None), (LedgerKind.MIX_CHARGE, -7, job.id)]
    assert await store.accounts.balance(GUILD, ANA) == 100 - Mode.SPLIT_STEM.cost - 14
    assert await store.accounts.ledger_mismatches() == []


async def test_the_same_stems_asked_at_once_by_several_members_are_one_mix_charged_once(store: Store) -> None:
    job = await full_split(store)

    asked = await asyncio.gather(
        *(store.mixes.request(ask(job, m, [0, 3], price=5)) for m in (ANA, BOB, MOD))
    )

    assert [a.started for a in asked].count(True) == 1
    assert len({a.mix.id for a in asked if a.mix is not None}) == 1
    charges = [k for m in (ANA, BOB, MOD) for k, _, _ in await kinds(store, m) if k is LedgerKind.MIX_CHARGE]
    assert charges == [LedgerKind.MIX_CHARGE]


async def test_a_failed_mix_is_refunded_once_and_asking_again_makes_a_new_one(store: Store) -> None:
    job = await full_split(store, member=BOB)
    first = (await store.mixes.request(ask(job, ANA, [1, 2], price=9))).mix
    assert first is not None

    failed, back = await store.mixes.fail(first.id, "Drums could not be fetched")
    _, again = await store.mixes.fail(first.id, "Drums could not be fetched")
    second = await store.mixes.request(ask(job, ANA, [1, 2], price=9))

    assert failed.state is MixState.FAILED and back == 9 and again == 0
    assert second.started and second.mix is not None and second.mix.id != first.id
    assert [k for k, _, _ in await kinds(store, ANA)] == [
        LedgerKind.ALLOWANCE,
        LedgerKind.MIX_CHARGE,
        LedgerKind.MIX_REFUND,
        LedgerKind.MIX_CHARGE,
    ]
    assert await store.accounts.balance(GUILD, ANA) == 100 - 9


async def test_a_free_mix_writes_no_ledger_row_and_its_failure_refunds_nothing(store: Store) -> None:
    job = await full_split(store, member=BOB)
    mix = (await store.mixes.request(ask(job, ANA, [0]))).mix
    assert mix is not None

    _, back = await store.mixes.fail(mix.id, "too large")

    assert back == 0 and await kinds(store, ANA) == [(LedgerKind.ALLOWANCE, 100, None)]


async def test_a_member_who_cannot_pay_or_is_blocked_stores_no_mix(store: Store) -> None:
    job = await full_split(store, member=BOB)
    poor = await store.mixes.request(ask(job, ANA, [0], price=101))
    await store.accounts.set_blocked(GUILD, MOD, True, actor_id=ANA, reason="spam", role_ids=())
    blocked = await store.mixes.request(ask(job, MOD, [0], price=0))

    assert poor.mix is None and not poor.started and poor.balance == 100 and poor.refills_at is None
    assert blocked.mix is None and blocked.blocked and blocked.blocked_reason == "spam"
    assert await store.mixes.of_job(job.id) == []
    assert LedgerKind.MIX_CHARGE not in [k for k, _, _ in await kinds(store, ANA)]


async def test_the_database_refuses_a_second_charge_or_refund_of_one_mix(store: Store) -> None:
    job = await full_split(store)
    mix = (await store.mixes.request(ask(job, ANA, [0], price=3))).mix
    assert mix is not None

    def row(kind: str):  # a ledger row of this mix that moves nothing
        return store.db.write(
            "INSERT INTO ledger (guild_id, user_id, kind, amount, allowance_change, bonus_change, "
            "balance_after, job_id, mix_id, created_at) VALUES (?, ?, ?, 0, 0, 0, 0, ?, ?, 0)",
            (GUILD, ANA, kind, job.id, mix.id),
        )

    with pytest.raises(Exception, match=r"(?i)unique"):
        await row("mix_charge")
    await row("mix_refund")
    with pytest.raises(Exception, match=r"(?i)unique"):
        await row("mix_refund")


async def test_priced_mixes_count_in_what_the_member_spent_this_period(store: Store) -> None:
    """/credits and /quota view show what the member spent this period beside what is left: a
    priced mix is spending too (net of its refund), or the figures would not add up."""
    job = await full_split(store, member=BOB)
    paid = (await store.mixes.request(ask(job, ANA, [0, 1], price=7))).mix
    failed = (await store.mixes.request(ask(job, ANA, [2], price=5))).mix
    assert paid is not None and failed is not None
    await store.mixes.fail(failed.id, "Drums could not be fetched")  # 5 back

    summary = await store.accounts.summary(GUILD, ANA, role_ids=())

    assert summary.allowance_left + summary.bonus == 100 - 7
    assert summary.spent_this_period == 7
    bob = await store.accounts.summary(GUILD, BOB, role_ids=())
    assert bob.spent_this_period == Mode.SPLIT_STEM.cost  # the job's owner pays nothing for others' mixes
