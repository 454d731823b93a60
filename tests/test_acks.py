"""Every acknowledged split ends in an answer: the record of an acknowledgement that never became a
job is answered once after a restart or by another process, on real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.acks import Acknowledgements
from bot.errors import AckTaken
from bot.leases import Lease
from bot.models import AcknowledgedSplit, CreditPolicy
from bot.product import Mode
from bot.settings import PostgresURL
from bot.store import Store
from tests.postgres import PostgresServer
from tests.wiring import RecordingAnswerer, make_services

GUILD, MEMBER = 10, 20
LEASE = 0.5


def ack(interaction_id: int = 1001, *, age: float = 1.0) -> AcknowledgedSplit:
    now = time.time()
    return AcknowledgedSplit(
        interaction_id=interaction_id,
        application_id=555,
        token=f"token-{interaction_id}",
        guild_id=GUILD,
        channel_id=1,
        user_id=MEMBER,
        mode=Mode.SEPARATE_VOCAL,
        task_id="gen-1",
        audio_id="audio-1",
        acknowledged_at=now - age,
        expires_at=now - age + 14 * 60,
    )


async def left(store: Store) -> list[int]:
    return [
        r["interaction_id"] for r in await store.db.fetchall("SELECT interaction_id FROM acknowledged_splits")
    ]


async def test_a_split_acknowledged_but_never_stored_is_answered_once_after_a_restart(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "bot.db")
    try:
        before = Acknowledgements(store, RecordingAnswerer(), lease=Lease("before", 30))
        await before.record(ack())  # ... and the process died before the job was stored
        answerer = RecordingAnswerer()
        after = Acknowledgements(store, answerer, lease=Lease("after", 30))
        await after.start()
        await after.stop()
        assert [a.interaction_id for a in answerer.answered] == [1001]
        assert answerer.answered[0].token == "token-1001" and answerer.answered[0].mode is Mode.SEPARATE_VOCAL
        assert await left(store) == []
        again = RecordingAnswerer()
        third = Acknowledgements(store, again, lease=Lease("third", 30))
        await third.start()
        await third.stop()
        assert again.answered == []  # answered once
        assert await store.jobs.recent(GUILD, MEMBER) == []
    finally:
        await store.close()


async def test_a_split_that_became_a_job_is_not_answered(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "bot.db", CreditPolicy(default_credits=100))
    try:
        async with aiohttp.ClientSession() as session:
            services = make_services(store, session, lease=Lease("one", 30))
            await services.acks.record(ack())
            accepted = await services.split.reserve(
                guild_id=GUILD,
                channel_id=1,
                user_id=MEMBER,
                mode=Mode.SEPARATE_VOCAL,
                task_id="gen-1",
                audio_id="audio-1",
                interaction_id=1001,
            )
            assert await left(store) == []  # gone in the job's own transaction
        answerer = RecordingAnswerer()
        after = Acknowledgements(store, answerer, lease=Lease("after", 30))
        await after.start()
        await after.stop()
        assert answerer.answered == []
        assert [job.id for job in await store.jobs.recent(GUILD, MEMBER)] == [accepted.job.id]
    finally:
        await store.close()


async def test_a_stale_record_is_dropped_unanswered_and_a_failed_answer_is_tried_again(
    tmp_path: Path,
) -> None:
    store = await Store.open(tmp_path / "bot.db")
    try:
        before = Acknowledgements(store, RecordingAnswerer(), lease=Lease("before", 30))
        await before.record(ack(1, age=15 * 60))  # its token is dead: nobody can be answered
        await before.record(ack(2))
        answerer = RecordingAnswerer(failures=1)  # Discord unreachable at the first try
        after = Acknowledgements(store, answerer, lease=Lease("after", 0.3))  # looks every 0.1 s
        await after.start()
        assert answerer.answered == [] and await left(store) == [2]
        async with asyncio.timeout(5):
            while not answerer.answered:
                await asyncio.sleep(0.02)
        await after.stop()
        assert [a.interaction_id for a in answerer.answered] == [2] and await left(store) == []
    finally:
        await store.close()


@pytest.fixture
async def database(postgres_server: PostgresServer) -> AsyncIterator[PostgresURL]:
    url = await postgres_server.new_database()
    yield url
    await postgres_server.drop(url)


async def test_two_processes_answer_a_dead_processs_split_once_and_a_live_ones_never(
    database: PostgresURL,
) -> None:
    stores = [await Store.open(database) for _ in range(3)]
    try:
        dead = Acknowledgements(stores[0], RecordingAnswerer(), lease=Lease("dead", LEASE))
        await dead.record(ack(1))  # and then it died
        live = Acknowledgements(stores[0], RecordingAnswerer(), lease=Lease("live", 30))
        await live.record(ack(2))  # being taken right now by a live process
        answerers = [RecordingAnswerer(), RecordingAnswerer()]
        others = [
            Acknowledgements(store, answerer, lease=Lease(f"p{n}", LEASE))
            for n, (store, answerer) in enumerate(zip(stores[1:], answerers, strict=True))
        ]
        await asyncio.gather(*(other.start() for other in others))  # the dead one's lease still runs
        assert [a.answered for a in answerers] == [[], []]
        await asyncio.sleep(LEASE * 2)  # lapsed; both look a few times meanwhile, side by side
        await asyncio.gather(*(other.stop() for other in others))
        answered = [a.interaction_id for answerer in answerers for a in answerer.answered]
        assert answered == [1]  # once, by one of them; the live process's split untouched
        assert await left(stores[0]) == [2]
    finally:
        for store in stores:
            await store.close()


async def test_a_stalled_process_whose_split_was_answered_elsewhere_stores_nothing(
    database: PostgresURL,
) -> None:
    a, b = await Store.open(database, CreditPolicy(default_credits=100)), await Store.open(database)
    try:
        async with aiohttp.ClientSession() as session:
            services = make_services(a, session, lease=Lease("a", LEASE))
            await services.acks.record(ack())
            await asyncio.sleep(LEASE + 0.1)  # A stalls past its lease
            answerer = RecordingAnswerer()
            other = Acknowledgements(b, answerer, lease=Lease("b", 30))
            await other.start()  # B tells the member it did not start
            await other.stop()
            assert [x.interaction_id for x in answerer.answered] == [1001]
            with pytest.raises(AckTaken):
                await services.split.reserve(
                    guild_id=GUILD,
                    channel_id=1,
                    user_id=MEMBER,
                    mode=Mode.SEPARATE_VOCAL,
                    task_id="gen-1",
                    audio_id="audio-1",
                    interaction_id=1001,
                )
        assert await a.jobs.recent(GUILD, MEMBER) == []
        assert await a.accounts.balance(GUILD, MEMBER) == 100  # nothing charged
    finally:
        await a.close()
        await b.close()


async def test_a_burst_of_acknowledgements_shares_a_few_commits(tmp_path: Path) -> None:
    """Recorded before the acknowledgement, so a burst must not queue one commit per member."""
    store = await Store.open(tmp_path / "bot.db")
    try:
        writes: list[int] = []
        record = store.acks.record

        async def counted(acks, lease):
            writes.append(len(acks))
            await record(acks, lease)

        store.acks.record = counted  # type: ignore[method-assign]
        acks = Acknowledgements(store, RecordingAnswerer(), lease=Lease("one", 30))
        await asyncio.gather(*(acks.record(ack(2000 + n)) for n in range(300)))

        assert sorted(await left(store)) == [2000 + n for n in range(300)]  # every one stored
        assert sum(writes) == 300 and len(writes) <= 3, writes
    finally:
        await store.close()


async def test_a_failed_record_write_fails_every_acknowledgement_waiting_for_it(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "bot.db")
    try:
        async def broken(acks, lease):
            raise OSError("disk gone")

        store.acks.record = broken  # type: ignore[method-assign]
        acks = Acknowledgements(store, RecordingAnswerer(), lease=Lease("one", 30))
        waiting = (acks.record(ack(3000 + n)) for n in range(5))
        results = await asyncio.gather(*waiting, return_exceptions=True)

        assert all(isinstance(r, OSError) for r in results)
    finally:
        await store.close()


async def test_a_record_its_live_process_let_go_of_is_answered_by_that_process(tmp_path: Path) -> None:
    """An error nobody answered (a button's unexpected failure, Discord refusing the error's
    answer): the process stops renewing that record, its claim lapses, and its own look answers."""
    store = await Store.open(tmp_path / "bot.db")
    try:
        answerer = RecordingAnswerer()
        live = Acknowledgements(store, answerer, lease=Lease("live", LEASE))
        await live.start()
        await live.record(ack(4001))
        await live.record(ack(4002))
        live.taken(4001)  # handed to an error handler that never answered
        await asyncio.sleep(LEASE * 3)  # looks every third of the lease meanwhile
        await live.stop()

        assert [a.interaction_id for a in answerer.answered] == [4001]
        assert await left(store) == [4002]  # still being taken: renewed, not answered
    finally:
        await store.close()
