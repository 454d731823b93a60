"""Never paying twice for the same stems: reuse of fresh results and coalescing of jobs in flight,
with the real store, the real runner and the API simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.errors import InsufficientCredits, MemberBlocked
from bot.models import CreditPolicy, JobState, LedgerKind, ReuseCharge, Share, StemLink
from bot.product import LINK_LIFETIME, Mode
from bot.store import REUSE_MIN_LINK_LIFE, Store
from testing.provider_api import SeparationApiSimulator
from tests.test_runner import FaultyStore, first
from tests.unit_helpers import FakeClock
from tests.wiring import RecordingDeliverer, make_services, make_settings

GUILD, ALICE, BOB, CAROL = 10, 21, 22, 23
POLICY = CreditPolicy(default_credits=100, jobs_per_member=5)


class World:
    def __init__(
        self, store: FaultyStore, sim: SeparationApiSimulator, session: aiohttp.ClientSession
    ) -> None:
        self.store, self.sim = store, sim
        self.deliverer = RecordingDeliverer()
        settings = make_settings(api_url=sim.base_url, api_timeout=1, poll_interval=0.05, job_timeout=30)
        services = make_services(store, session, settings, deliverer=self.deliverer, delivery_retry_base=0.05)
        self.runner, self.split = services.runner, services.split

    async def request(self, member: int, mode: Mode = Mode.SPLIT_STEM, audio_id: str = "audio-1", start=True):
        job = (
            await self.split.reserve(
                guild_id=GUILD, channel_id=1, user_id=member, mode=mode, task_id="gen-1", audio_id=audio_id
            )
        ).job
        if start:
            self.split.start(job)
        return job

    async def balance(self, member: int) -> int:
        return await self.store.accounts.balance(GUILD, member)

    async def kinds(self, job_id: int) -> list[LedgerKind]:
        job = await self.store.jobs.get(job_id)
        return [e.kind for e in await self.store.accounts.ledger(GUILD, job.user_id) if e.job_id == job_id]


@pytest.fixture
async def world(databases) -> AsyncIterator[World]:
    store = await FaultyStore.open(await databases("share"), POLICY)
    async with (
        SeparationApiSimulator(processing_seconds=0.3, callbacks=False) as sim,
        aiohttp.ClientSession() as s,
    ):
        w = World(store, sim, s)
        await w.runner.start()
        yield w
        await w.runner.stop()
    assert await store.accounts.ledger_mismatches() == []
    await store.close()


async def test_two_members_splitting_one_track_at_once_share_one_api_job(world: World) -> None:
    first = await world.request(ALICE)
    second = await world.request(BOB)
    assert second.state is JobState.FOLLOWING and second.share is Share.COALESCED
    assert second.source_job_id == first.id and second.cost == 0
    delivered = await world.deliverer.wait_for(2)
    assert {j.user_id for j in delivered} == {ALICE, BOB}
    assert all(j.state is JobState.SUCCEEDED and len(j.stems) == 12 for j in delivered)
    assert delivered[0].stems == delivered[1].stems
    assert len(world.sim.submits) == 1
    assert await world.balance(ALICE) == 50  # paid for the split
    assert await world.balance(BOB) == 100  # shared result, free by default
    assert await world.kinds(second.id) == []  # nothing held, nothing moved


async def test_a_finished_split_is_reused_without_calling_the_api(world: World) -> None:
    await world.request(ALICE)
    [original] = await world.deliverer.wait_for(1)
    again = await world.request(BOB)
    assert again.state is JobState.SUCCEEDED and again.share is Share.REUSED
    assert again.stems == original.stems
    assert again.links_expire_at == original.links_expire_at  # the original expiry, not a new one
    delivered = await world.deliverer.wait_for(2)
    assert delivered[1].id == again.id
    assert len(world.sim.submits) == 1


async def test_servers_charging_for_shared_results_charge_and_settle_once(world: World) -> None:
    await world.store.economy.update_settings(GUILD, {"reuse_charge": ReuseCharge.FULL}, actor_id=1)
    await world.request(ALICE)
    follower = await world.request(BOB)
    assert follower.cost == Mode.SPLIT_STEM.cost
    await world.deliverer.wait_for(2)
    assert await world.balance(BOB) == 50
    assert await world.kinds(follower.id) == [LedgerKind.RESERVE, LedgerKind.CHARGE]
    reused = await world.request(CAROL)
    assert reused.share is Share.REUSED
    assert await world.kinds(reused.id) == [LedgerKind.RESERVE, LedgerKind.CHARGE]
    assert await world.balance(CAROL) == 50


async def test_a_member_without_credits_is_refused_even_for_a_charged_shared_job(world: World) -> None:
    await world.store.economy.update_settings(GUILD, {"reuse_charge": ReuseCharge.FULL}, actor_id=1)
    await world.store.accounts.set_balance(GUILD, BOB, 10, actor_id=1, reason="test", role_ids=())
    await world.request(ALICE)
    with pytest.raises(InsufficientCredits):
        await world.request(BOB)
    [delivered] = await world.deliverer.wait_for(1)
    assert delivered.user_id == ALICE
    assert len(world.sim.submits) == 1


async def test_a_blocked_member_cannot_join_a_shared_job(world: World) -> None:
    await world.store.accounts.set_blocked(GUILD, BOB, True, actor_id=1, reason="spam", role_ids=())
    await world.request(ALICE)
    with pytest.raises(MemberBlocked):
        await world.request(BOB)
    [delivered] = await world.deliverer.wait_for(1)
    assert delivered.user_id == ALICE


async def test_two_stem_and_twelve_stem_splits_are_never_shared(world: World) -> None:
    await world.request(ALICE, Mode.SPLIT_STEM)
    two = await world.request(BOB, Mode.SEPARATE_VOCAL)
    assert two.share is None and two.state is JobState.RESERVED
    await world.deliverer.wait_for(2)
    assert len(world.sim.submits) == 2
    reused = await world.request(CAROL, Mode.SEPARATE_VOCAL)
    assert reused.share is Share.REUSED
    assert [s.key for s in reused.stems] == ["vocal", "instrumental"]


async def test_a_failed_leader_refunds_its_followers(world: World) -> None:
    await world.store.economy.update_settings(GUILD, {"reuse_charge": ReuseCharge.FULL}, actor_id=1)
    world.sim.outcome = "GENERATE_AUDIO_FAILED"
    await world.request(ALICE)
    follower = await world.request(BOB)
    delivered = await world.deliverer.wait_for(2)
    assert all(j.state is JobState.FAILED for j in delivered)
    assert await world.balance(BOB) == 100
    assert await world.kinds(follower.id) == [LedgerKind.RESERVE, LedgerKind.REFUND]
    # A failure is not a result to reuse: the next request is a new paid job.
    world.sim.outcome = "SUCCESS"
    fresh = await world.request(CAROL)
    assert fresh.share is None


async def test_follower_of_a_leader_finished_before_a_restart_is_settled_on_start(databases) -> None:
    store = await Store.open(await databases("restart"), POLICY)
    try:
        async with SeparationApiSimulator(callbacks=False) as sim, aiohttp.ClientSession() as session:
            before = World(store, sim, session)  # the process that died
            leader = await before.request(ALICE, start=False)
            follower = await before.request(BOB, start=False)
            # The leader finished, then the process died before its followers were settled.
            await store.reservations.settle(
                leader.id, succeeded=True, stems=[StemLink("vocal", "https://c/v")], links_expire_at=2e9
            )
            world = World(store, sim, session)  # the next start
            await world.runner.start()
            try:
                delivered = await world.deliverer.wait_for(2)
            finally:
                await world.runner.stop()
        assert {j.id for j in delivered} == {leader.id, follower.id}
        settled = await store.jobs.get(follower.id)
        assert settled is not None and settled.state is JobState.SUCCEEDED
        assert sim.submits == []
    finally:
        await store.close()


async def test_results_with_less_than_a_day_of_links_left_are_not_reused(databases) -> None:
    clock = FakeClock()
    store = await Store.open(await databases("old"), POLICY, clock=clock)
    try:
        async with SeparationApiSimulator(callbacks=False) as sim, aiohttp.ClientSession() as session:
            world = World(store, sim, session)
            old = await world.request(ALICE, start=False)
            expiry = clock() + LINK_LIFETIME.total_seconds()
            await store.reservations.settle(
                old.id, succeeded=True, stems=[StemLink("vocal", "https://c/v")], links_expire_at=expiry
            )
            clock.now = expiry - REUSE_MIN_LINK_LIFE - 60  # a day and a minute left: reused
            reused = await world.request(BOB, start=False)
            assert reused.share is Share.REUSED and reused.source_job_id == old.id
            clock.now = expiry - REUSE_MIN_LINK_LIFE + 60  # 23 h 59 min left: a new paid job
            fresh = await world.request(CAROL, start=False)
            assert fresh.share is None and fresh.state is JobState.RESERVED
    finally:
        await store.close()


async def test_a_follower_is_not_delivered_before_its_member_was_shown_it_is_queued(world: World) -> None:
    leader = await world.request(ALICE)
    follower = await world.request(BOB, start=False)  # the cog is still showing "queued"
    [first] = await world.deliverer.wait_for(1)
    assert first.id == leader.id
    async with asyncio.timeout(5):
        while (job := await world.store.jobs.get(follower.id)) and job.state is not JobState.SUCCEEDED:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # time enough for a premature delivery to show up
    assert [j.id for j in world.deliverer.delivered] == [leader.id]
    world.split.start(follower)
    delivered = await world.deliverer.wait_for(2)
    assert delivered[1].id == follower.id


async def test_followers_are_settled_and_delivered_when_settling_them_failed_once(world: World) -> None:
    # The leader is settled; the transaction settling its followers then fails (database locked).
    world.store.faults["reservations.settle_followers"] = first(1)
    leader = await world.request(ALICE)
    follower = await world.request(BOB)
    assert follower.state is JobState.FOLLOWING
    delivered = await world.deliverer.wait_for(2)
    assert world.store.raised["reservations.settle_followers"] == 1
    assert {j.id for j in delivered} == {leader.id, follower.id}
    assert all(j.state is JobState.SUCCEEDED for j in delivered)
    assert len(world.sim.submits) == 1
