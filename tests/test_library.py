"""The library and the reminders as services, with the real store, runner and API simulator:
who may see and cancel what, cancelling while the API is in maintenance, and reminders that are
sent once, also across a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.errors import NotAModerator, NotYourJob, UnknownJob
from bot.models import CancelOutcome, CreditPolicy, Delivery, DeliveryVia, JobState, LedgerKind
from bot.product import LINK_LIFETIME, Mode
from bot.quota import Actor
from bot.reminders import MAX_ATTEMPTS, RETRY_SECONDS, Reminders
from bot.services import Services
from bot.store import Store
from testing.provider_api import Fault, SeparationApiSimulator
from tests.wiring import RecordingDeliverer, RecordingReminders, make_services, make_settings

GUILD, OTHER_GUILD, ANA, BOB, MOD = 10, 11, 21, 22, 90
ANA_ACTOR, BOB_ACTOR, MOD_ACTOR = Actor(ANA), Actor(BOB), Actor(MOD, manage_guild=True)
LIFETIME = LINK_LIFETIME.total_seconds()


class World:
    def __init__(self, store: Store, sim: SeparationApiSimulator, services: Services) -> None:
        self.store, self.sim, self.services = store, sim, services
        self.deliverer: RecordingDeliverer = services.runner._deliverer  # type: ignore[assignment]

    async def split(
        self, member: int = ANA, audio_id: str = "audio-1", guild: int = GUILD, start: bool = True
    ):
        accepted = await self.services.split.reserve(
            guild_id=guild,
            channel_id=1,
            user_id=member,
            mode=Mode.SEPARATE_VOCAL,
            task_id="gen",
            audio_id=audio_id,
        )
        if start:
            self.services.split.start(accepted.job)
        return accepted.job


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = await Store.open(tmp_path / "library.db", CreditPolicy(default_credits=100, jobs_per_member=5))
    async with (
        SeparationApiSimulator(processing_seconds=0.2, callbacks=False) as sim,
        aiohttp.ClientSession() as session,
    ):
        settings = make_settings(api_url=sim.base_url, api_timeout=1, poll_interval=0.05, job_timeout=30)
        services = make_services(store, session, settings, delivery_retry_base=0.05)
        await services.start()
        yield World(store, sim, services)
        await services.stop()
    assert await store.accounts.ledger_mismatches() == []
    await store.close()


# -- who may see and cancel what -------------------------------------------------------------------


async def test_members_see_their_own_library_and_moderators_anyones(world: World) -> None:
    job = await world.split(ANA, start=False)
    library = world.services.library

    assert [j.id for j in (await library.page(GUILD, ANA_ACTOR, ANA)).jobs] == [job.id]
    assert [j.id for j in (await library.page(GUILD, MOD_ACTOR, ANA)).jobs] == [job.id]
    with pytest.raises(NotAModerator):
        await library.page(GUILD, BOB_ACTOR, ANA)


async def test_another_members_job_is_refused_and_another_servers_does_not_exist(world: World) -> None:
    job = await world.split(ANA, start=False)
    library = world.services.library

    assert (await library.job(GUILD, MOD_ACTOR, job.id)).id == job.id
    with pytest.raises(NotYourJob, match=f"Job #{job.id} is another member's"):
        await library.job(GUILD, BOB_ACTOR, job.id)
    with pytest.raises(UnknownJob):
        await library.job(OTHER_GUILD, ANA_ACTOR, job.id)
    with pytest.raises(NotYourJob):
        await library.cancel(GUILD, BOB_ACTOR, job.id)
    assert (await world.store.jobs.get(job.id)).state is JobState.RESERVED


async def test_suggestions_are_the_members_own_or_for_moderators_the_servers(world: World) -> None:
    ana = await world.split(ANA, "a", start=False)
    bob = await world.split(BOB, "b", start=False)
    library = world.services.library

    assert [j.id for j in await library.suggestions(GUILD, ANA_ACTOR)] == [ana.id]
    assert [j.id for j in await library.suggestions(GUILD, MOD_ACTOR)] == [bob.id, ana.id]


# -- cancel while the API is in maintenance --------------------------------------------------------


async def test_a_job_cancelled_while_its_submit_waits_for_maintenance_is_never_sent(world: World) -> None:
    world.sim.script("submit", *[Fault("code", 455, msg="maintenance")] * 3)
    job = await world.split(ANA)
    async with asyncio.timeout(5):
        while not world.sim.submits:  # the first try met the maintenance window; a retry is due
            await asyncio.sleep(0.01)

    done = await world.services.library.cancel(GUILD, ANA_ACTOR, job.id)
    outcome, cancelled = done.outcome, done.job
    tried = len(world.sim.submits)
    await asyncio.sleep(1.0)  # well past the retry it had scheduled

    assert outcome is CancelOutcome.CANCELLED and cancelled.state is JobState.CANCELLED
    assert len(world.sim.submits) == tried  # nothing reached the API afterwards
    kinds = [e.kind for e in await world.store.accounts.ledger(GUILD, ANA) if e.job_id == job.id]
    assert kinds == [LedgerKind.RESERVE, LedgerKind.REFUND]
    assert world.deliverer.delivered == []  # a cancelled job has nothing to deliver


async def test_a_job_the_api_accepted_cannot_be_cancelled(world: World) -> None:
    job = await world.split(ANA)
    async with asyncio.timeout(5):
        while (await world.store.jobs.get(job.id)).state is not JobState.SUBMITTED:
            await asyncio.sleep(0.01)

    outcome = (await world.services.library.cancel(GUILD, MOD_ACTOR, job.id)).outcome

    assert outcome is CancelOutcome.ALREADY_SENT
    [delivered] = await world.deliverer.wait_for(1)
    assert delivered.state is JobState.SUCCEEDED  # it finishes and is delivered as usual


# -- reminders -------------------------------------------------------------------------------------


async def test_a_reminder_comes_due_and_is_sent_once_also_after_a_restart(world: World) -> None:
    sender = RecordingReminders()
    window = LIFETIME - 0.5  # due half a second after the links were made
    job = await world.split(ANA)
    [delivered] = await world.deliverer.wait_for(1)
    await world.store.deliveries.record(job.id, DeliveryVia.CHANNEL, 0, channel_id=1, message_id=500)
    await world.store.jobs.record_delivery(job.id, Delivery.DELIVERED, DeliveryVia.CHANNEL)

    first = Reminders(world.store, sender, window=window)
    first.start()
    async with asyncio.timeout(5):
        while not sender.sent:
            sender.changed.clear()
            await sender.changed.wait()
    await first.stop()
    restarted = Reminders(world.store, sender, window=window)  # the next process on the same database
    restarted.start()
    await asyncio.sleep(0.5)
    await restarted.stop()

    [(reminded, result)] = sender.sent
    assert reminded.id == delivered.id and [m.message_id for m in result] == [500]


async def test_a_reminder_discord_would_not_take_is_tried_again(world: World) -> None:
    sender = RecordingReminders(refusals=1)
    offset = [0.0]
    await world.split(ANA)
    await world.deliverer.wait_for(1)
    reminders = Reminders(world.store, sender, window=LIFETIME - 0.1, clock=lambda: time.time() + offset[0])
    await asyncio.sleep(0.2)

    assert await reminders.send_due() == 0  # refused: put back
    offset[0] += RETRY_SECONDS  # the retry comes RETRY_SECONDS later
    assert await reminders.send_due() == 1
    assert await reminders.send_due() == 0


async def test_a_reminders_back_off_survives_a_restart(world: World) -> None:
    """A reminder Discord refused waits out its pause and counts towards giving up even when the
    process restarts (or another takes over) in between: the retry state is in the database."""
    sender = RecordingReminders(refusals=100)
    offset = [0.0]
    clock = lambda: time.time() + offset[0]  # noqa: E731
    await world.split(ANA)
    await world.deliverer.wait_for(1)
    await asyncio.sleep(0.2)

    first = Reminders(world.store, sender, window=LIFETIME - 0.1, clock=clock)
    assert await first.send_due() == 0 and sender.refusals == 99  # refused once
    restarted = Reminders(world.store, sender, window=LIFETIME - 0.1, clock=clock)
    assert await restarted.send_due() == 0
    assert sender.refusals == 99  # not asked again before its pause is over
    for tries in range(2, MAX_ATTEMPTS + 2):
        offset[0] += RETRY_SECONDS + 1
        restarted = Reminders(world.store, sender, window=LIFETIME - 0.1, clock=clock)
        assert await restarted.send_due() == 0
        assert sender.refusals == 100 - min(tries, MAX_ATTEMPTS)  # given up after the last try


async def test_no_reminder_for_members_who_turned_them_off(world: World) -> None:
    sender = RecordingReminders()
    await world.services.library.set_reminders(ANA, False)
    await world.split(ANA)
    await world.deliverer.wait_for(1)
    reminders = Reminders(world.store, sender, window=LIFETIME - 0.1)
    await asyncio.sleep(0.2)

    assert await reminders.send_due() == 0 and sender.sent == []
    assert await world.services.library.reminders(ANA) is False
