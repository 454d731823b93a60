"""Several bot processes on one PostgreSQL database: two `Services`, each over its own `Store` (its
own pool and listening connection, as two processes have), with their own lease holder, against
one real PostgreSQL server and the API simulator. A crash is a process that stops working without
releasing anything: its tasks cancelled, its connections closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from bot.callbacks import Callback, CallbackVerdict
from bot.downloads import StemDownloader
from bot.leases import Lease
from bot.models import (
    CreditPolicy,
    Delivery,
    DeliveryVia,
    Failure,
    Job,
    JobState,
    KeepState,
    LedgerKind,
    NewJob,
    OrphanedTask,
    StemLink,
)
from bot.product import Mode
from bot.quota import Actor
from bot.runner import MAX_SUBMIT_ATTEMPTS
from bot.services import Services
from bot.settings import PostgresURL
from bot.store import Store
from testing.provider_api import Fault, SeparationApiSimulator
from tests.postgres import PostgresServer
from tests.wiring import RecordingDeliverer, RecordingPoster, make_services, make_settings

GUILD, ALICE, BOB = 10, 20, 21
LEASE = 0.6  # seconds: renewed every 0.2 s
POLICY = CreditPolicy(default_credits=100, jobs_per_member=10)


class Process:
    """One bot process's services over its own store on the shared database."""

    def __init__(self, name: str, store: Store, services: Services, deliverer: RecordingDeliverer) -> None:
        self.name, self.store, self.services, self.deliverer = name, store, services, deliverer
        self.running = False

    async def start(self) -> None:
        await self.services.runner.start()
        self.running = True

    async def reserve(self, member: int = ALICE, audio_id: str = "audio-1") -> Job:
        """A /split taken and shown as queued: the job stays with this process until `queued_shown`."""
        accepted = await self.services.split.reserve(
            guild_id=GUILD,
            channel_id=1,
            user_id=member,
            mode=Mode.SEPARATE_VOCAL,
            task_id="gen-1",
            audio_id=audio_id,
        )
        return accepted.job

    async def split(self, member: int = ALICE, audio_id: str = "audio-1") -> Job:
        job = await self.reserve(member, audio_id)
        self.services.split.start(job)
        return job

    async def crash(self) -> None:
        """Stop working at once and release nothing, as a killed process does."""
        await self.services.runner.stop(grace=0, release=False)
        await self.services.keeper.stop(release=False)
        await self.services.reminders.stop()
        await self.store.close()
        self.running = False

    async def stop(self) -> None:
        await self.services.stop()
        await self.store.close()
        self.running = False


class StalledLease(Lease):
    """A lease its process never gets round to renewing."""

    @property
    def renew_every(self) -> float:
        return 3600.0


class Deployment:
    def __init__(self, url: PostgresURL, sim: SeparationApiSimulator, session: aiohttp.ClientSession) -> None:
        self.url, self.sim, self.session = url, sim, session
        self.processes: list[Process] = []

    async def process(
        self,
        name: str,
        *,
        lease: float = LEASE,
        poll_interval: float = 0.05,
        clock: Callable[[], float] = time.time,
        api_timeout: float = 1,
        stalls: bool = False,
    ) -> Process:
        """`stalls`: the process never renews its claims (as one whose event loop is stuck, or
        whose database connection hangs), so they lapse after one lease while it goes on."""
        store = await Store.open(self.url, POLICY)
        deliverer = RecordingDeliverer()
        settings = make_settings(
            api_url=self.sim.base_url,
            api_timeout=api_timeout,
            poll_interval=poll_interval,
            job_timeout=60,
            job_lease=lease,
        )
        services = make_services(
            store,
            self.session,
            settings,
            deliverer=deliverer,
            delivery_retry_base=0.05,
            lease=StalledLease(name, lease) if stalls else Lease(name, lease),
            clock=clock,
        )
        process = Process(name, store, services, deliverer)
        self.processes.append(process)
        return process

    async def close(self) -> None:
        for process in self.processes:
            if process.running:
                await process.stop()


@pytest.fixture
async def database(postgres_server: PostgresServer) -> AsyncIterator[PostgresURL]:
    url = await postgres_server.new_database()
    yield url
    await postgres_server.drop(url)


@pytest.fixture
async def deployment(database: PostgresURL) -> AsyncIterator[Deployment]:
    async with (
        SeparationApiSimulator(processing_seconds=0.3, callbacks=False) as sim,
        aiohttp.ClientSession() as session,
    ):
        deployment = Deployment(database, sim, session)
        yield deployment
        await deployment.close()
    check = await Store.open(database, POLICY)
    try:
        assert await check.accounts.ledger_mismatches() == []
    finally:
        await check.close()


async def until(condition: Callable[[], Any], timeout: float = 5.0, step: float = 0.01) -> Any:
    """Wait for `condition()` (sync or async) to be truthy; its value."""
    async with asyncio.timeout(timeout):
        while True:
            value = condition()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(step)


async def stored(process: Process, job_id: int) -> Job:
    job = await process.store.jobs.get(job_id)
    assert job is not None
    return job


async def ledger_kinds(store: Store, job: Job) -> list[LedgerKind]:
    return [e.kind for e in await store.accounts.ledger(GUILD, job.user_id) if e.job_id == job.id]


async def test_a_job_shown_as_queued_stays_with_its_process_and_only_it_works_on_it(
    deployment: Deployment,
) -> None:
    a = await deployment.process("a")
    # B's machine clock runs an hour ahead: leases are the database's clock, so B still sees A's
    # claims as live.
    b = await deployment.process("b", clock=lambda: time.time() + 3600)
    await a.start()
    await b.start()
    job = await a.reserve()
    await asyncio.sleep(3 * LEASE)  # B scanned for work many times meanwhile
    held = await stored(b, job.id)
    assert held.state is JobState.RESERVED and held.claimed_by == "a"
    assert deployment.sim.submits == []

    a.services.split.start(job)  # A showed "queued": now it works on it
    [delivered] = await a.deliverer.wait_for(1)
    assert delivered.id == job.id and delivered.state is JobState.SUCCEEDED
    assert len(deployment.sim.submits) == 1
    assert b.deliverer.delivered == [] and b.deliverer.progress == []
    done = await until(lambda: _claimed_by(b, job.id, None))  # delivered: nothing left to hold
    assert done.lease_until is None and done.delivery is Delivery.DELIVERED


async def test_a_crashed_process_job_is_taken_over_when_its_lease_lapses_and_finished_once(
    deployment: Deployment,
) -> None:
    deployment.sim.processing_seconds = 1.5
    a = await deployment.process("a")
    b = await deployment.process("b")
    await a.start()
    await b.start()
    job = await a.split()
    await until(lambda: _state_is(a, job.id, JobState.SUBMITTED))
    lease_at_crash = (await stored(a, job.id)).lease_until
    assert lease_at_crash is not None
    crashed_at = time.monotonic()
    await a.crash()

    taken = await until(lambda: _claimed_by(b, job.id, "b"), timeout=2 * LEASE + 1)
    took = time.monotonic() - crashed_at
    assert taken.lease_until is not None
    assert taken.lease_until - LEASE >= lease_at_crash - 0.01  # not before A's lease lapsed (DB clock)
    assert took <= 2 * LEASE  # the target: takeover within twice the lease

    [delivered] = await b.deliverer.wait_for(1)
    assert delivered.id == job.id and delivered.state is JobState.SUCCEEDED
    assert len(deployment.sim.submits) == 1  # polled by B, never submitted again
    assert await ledger_kinds(b.store, job) == [LedgerKind.RESERVE, LedgerKind.CHARGE]
    assert a.deliverer.delivered == []
    await asyncio.sleep(0.3)
    assert len(b.deliverer.delivered) == 1


async def test_a_failing_submits_count_and_pause_are_taken_over_with_the_job(
    deployment: Deployment,
) -> None:
    # Every submit fails with a 500. A's count and pause are stored with the job: B, taking it
    # over, neither retries before the pause ends nor starts counting again, so the job is still
    # given up after MAX_SUBMIT_ATTEMPTS submits in all.
    deployment.sim.script("submit", *[Fault("code", 500)] * (MAX_SUBMIT_ATTEMPTS + 4))
    a = await deployment.process("a", poll_interval=0.1)
    b = await deployment.process("b", poll_interval=0.1)
    await a.start()
    await b.start()
    job = await a.split()
    paused = await until(lambda: _failed_calls(a, job.id, 3))
    await a.crash()
    assert paused.state is JobState.RESERVED and paused.next_step_at is not None
    assert len(deployment.sim.submits) == 3

    [delivered] = await b.deliverer.wait_for(1, timeout=2 * LEASE + 10)
    assert delivered.id == job.id and delivered.failure is Failure.SERVICE_ERROR
    assert len(deployment.sim.submits) == MAX_SUBMIT_ATTEMPTS
    assert deployment.sim.submits[3].time >= paused.next_step_at
    assert await ledger_kinds(b.store, job) == [LedgerKind.RESERVE, LedgerKind.REFUND]


async def test_a_failing_polls_count_is_taken_over_with_the_job(deployment: Deployment) -> None:
    deployment.sim.script("record", *[Fault("code", 500)] * 4)
    a = await deployment.process("a", poll_interval=0.1)
    b = await deployment.process("b", poll_interval=0.1)
    await a.start()
    await b.start()
    job = await a.split()
    paused = await until(lambda: _failed_calls(a, job.id, 3))
    await a.crash()
    assert paused.state is JobState.SUBMITTED

    again = await until(lambda: _failed_calls(b, job.id, 4), timeout=2 * LEASE + 10)
    assert again.claimed_by == "b"  # B's first poll failed too: the fourth in a row
    [delivered] = await b.deliverer.wait_for(1, timeout=10)
    assert delivered.state is JobState.SUCCEEDED and len(deployment.sim.submits) == 1


async def _failed_calls(process: Process, job_id: int, failures: int) -> Job | None:
    job = await stored(process, job_id)
    return job if job.api_failures == failures else None


async def test_a_job_taken_over_while_submitting_is_refunded_never_resubmitted(
    deployment: Deployment,
) -> None:
    a = await deployment.process("a")
    b = await deployment.process("b")
    await a.start()
    await b.start()
    job = await a.reserve()
    # What A leaves behind if it dies with the submit on the wire: 'submitting', claimed by A.
    assert await a.store.jobs.transition(job.id, [JobState.RESERVED], JobState.SUBMITTING, holder="a")
    await a.crash()

    [delivered] = await b.deliverer.wait_for(1, timeout=2 * LEASE + 2)
    assert delivered.id == job.id and delivered.state is JobState.FAILED
    assert delivered.failure is Failure.UNCONFIRMED
    assert deployment.sim.submits == []
    assert await ledger_kinds(b.store, job) == [LedgerKind.RESERVE, LedgerKind.REFUND]
    assert await b.store.accounts.balance(GUILD, ALICE) == 100


async def test_a_submit_answered_after_its_process_lost_the_job_is_kept_as_an_orphan_and_shows_nothing(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    """A stalls past its lease while its submit is on the wire; B takes the job over, finds it
    'submitting' and refunds it (the unconfirmed rule), telling the member. Then the API answers A:
    the task is paid for, but the job is settled. A records the orphaned task and logs it as an
    error, shows the member nothing, and leaves the job as B settled it."""
    deployment.sim.script("submit", Fault("hang", seconds=3 * LEASE + 1))
    a = await deployment.process("a", stalls=True, api_timeout=10)
    b = await deployment.process("b")
    await a.start()
    await b.start()
    job = await a.split()

    [failure] = await b.deliverer.wait_for(1, timeout=2 * LEASE + 2)
    assert failure.id == job.id and failure.state is JobState.FAILED
    assert failure.failure is Failure.UNCONFIRMED
    orphans = await until(lambda: _orphans(a), timeout=10)
    [submit] = deployment.sim.submits
    assert [(o.job_id, o.api_task_id) for o in orphans] == [(job.id, submit.task_id)]
    [logged] = [r for r in caplog.records if "orphaned" in r.getMessage()]
    assert logged.levelno == logging.ERROR
    assert f"job {job.id} " in logged.getMessage() and str(submit.task_id) in logged.getMessage()

    await asyncio.sleep(0.3)  # anything A would still do for the job
    assert a.deliverer.progress == [] and a.deliverer.delivered == []  # B's message stays as it is
    assert len(b.deliverer.delivered) == 1
    after = await stored(b, job.id)
    assert after.state is JobState.FAILED and after.failure is Failure.UNCONFIRMED
    assert after.api_task_id is None and after.delivery is Delivery.DELIVERED
    assert await ledger_kinds(b.store, job) == [LedgerKind.RESERVE, LedgerKind.REFUND]
    report = await b.services.operations.report(
        b.store, callback_public_url=None, listening=None, poll_interval=0.05
    )
    assert report.orphaned_total == 1 and report.orphaned_tasks[0].api_task_id == submit.task_id


async def _orphans(process: Process) -> list[OrphanedTask]:
    return (await process.store.jobs.orphans())[0]


async def test_a_process_that_lost_its_claim_cannot_submit(deployment: Deployment) -> None:
    a = await deployment.process("a")
    job = await a.reserve()
    await a.store.db.write("UPDATE jobs SET claimed_by = 'b' WHERE id = ?", (job.id,))
    assert not await a.store.jobs.transition(job.id, [JobState.RESERVED], JobState.SUBMITTING, holder="a")
    assert (await stored(a, job.id)).state is JobState.RESERVED


async def test_a_cleanly_stopped_process_hands_its_jobs_over_without_waiting_for_the_lease(
    deployment: Deployment,
) -> None:
    deployment.sim.processing_seconds = 1.0
    a = await deployment.process("a", lease=6.0)
    b = await deployment.process("b", lease=6.0)  # scans every 2 s
    await a.start()
    await b.start()
    job = await a.split()
    await until(lambda: _state_is(a, job.id, JobState.SUBMITTED))
    stopped_at = time.monotonic()
    await a.stop()
    released = await stored(b, job.id)
    assert released.claimed_by is None and released.state is JobState.SUBMITTED

    [delivered] = await b.deliverer.wait_for(1, timeout=4)
    assert delivered.id == job.id and delivered.state is JobState.SUCCEEDED
    assert time.monotonic() - stopped_at < 6.0  # well before A's lease would have lapsed
    assert len(deployment.sim.submits) == 1 and a.deliverer.delivered == []


async def test_a_callback_reaching_the_other_process_wakes_the_holder(deployment: Deployment) -> None:
    a = await deployment.process("a", poll_interval=60)  # only a callback can make it ask soon
    b = await deployment.process("b", poll_interval=60)
    await a.start()
    await b.start()
    job = await a.split()
    current = await until(lambda: _state_is(a, job.id, JobState.SUBMITTED))
    assert current.api_task_id is not None
    deployment.sim.finish_now(current.api_task_id)
    polls = deployment.sim.polls()

    woken_at = time.monotonic()
    verdict = await b.services.runner.callback_received(
        job.callback_token, Callback(200, current.api_task_id, {})
    )
    assert verdict is CallbackVerdict.ACCEPTED
    [delivered] = await a.deliverer.wait_for(1, timeout=3)
    assert time.monotonic() - woken_at < 3  # not the 60 s poll
    assert delivered.id == job.id and delivered.state is JobState.SUCCEEDED
    assert deployment.sim.polls() == polls + 1  # the holder asked record-info once; B did not
    assert b.deliverer.delivered == []
    assert len(deployment.sim.submits) == 1


async def test_a_callback_for_a_job_nobody_holds_is_worked_by_the_process_it_reached(
    deployment: Deployment,
) -> None:
    a = await deployment.process("a", poll_interval=60)
    b = await deployment.process("b", poll_interval=60, lease=30)
    await a.start()
    job = await a.split()
    current = await until(lambda: _state_is(a, job.id, JobState.SUBMITTED))
    assert current.api_task_id is not None
    await a.crash()
    deployment.sim.finish_now(current.api_task_id)
    await b.start()  # starting, it sees A's claim as live for up to LEASE more
    await asyncio.sleep(LEASE + 0.1)  # A's lease lapsed; B's next scan is 10 s away
    verdict = await b.services.runner.callback_received(
        job.callback_token, Callback(200, current.api_task_id, {})
    )
    assert verdict is CallbackVerdict.ACCEPTED
    [delivered] = await b.deliverer.wait_for(1, timeout=3)
    assert delivered.id == job.id and delivered.state is JobState.SUCCEEDED


async def test_a_follower_in_one_process_gets_the_result_of_a_leader_in_the_other(
    deployment: Deployment,
) -> None:
    a = await deployment.process("a")
    b = await deployment.process("b", poll_interval=60)  # its follower waits for A's wake-up
    await a.start()
    await b.start()
    leader = await a.split(ALICE)
    follower = await b.split(BOB)
    assert follower.source_job_id == leader.id and follower.claimed_by == "b"
    [lead] = await a.deliverer.wait_for(1)
    [follow] = await b.deliverer.wait_for(1, timeout=3)
    assert lead.id == leader.id and follow.id == follower.id and follow.state is JobState.SUCCEEDED
    assert len(deployment.sim.submits) == 1
    assert len(a.deliverer.delivered) == 1


async def test_the_listening_connection_comes_back_after_it_drops(
    deployment: Deployment, postgres_server: PostgresServer
) -> None:
    store = await Store.open(deployment.url, POLICY)
    heard: list[str] = []
    try:
        await store.db.listen("stembot_test", heard.append)
        await store.db.notify("stembot_test", "one")
        await until(lambda: heard == ["one"])
        admin = await asyncpg.connect(postgres_server.admin_url)
        try:
            dropped = await admin.fetchval(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'stembot-listen' AND datname = $1",
                deployment.url.reveal().split("?", 1)[0].rsplit("/", 1)[1],
            )
        finally:
            await admin.close()
        assert dropped == 1

        async def heard_again() -> bool:
            await store.db.notify("stembot_test", "two")
            await asyncio.sleep(0.1)
            return "two" in heard

        await until(heard_again, timeout=5)
    finally:
        await store.close()


async def test_on_sqlite_a_restart_takes_every_job_an_earlier_process_held(tmp_path: Path) -> None:
    # One process uses an SQLite file (a lock file refuses a second), so whatever the previous
    # one claimed is free at once: no waiting for its lease.
    store = await Store.open(tmp_path / "one.db", POLICY)
    try:
        async with (
            SeparationApiSimulator(processing_seconds=0.1, callbacks=False) as sim,
            aiohttp.ClientSession() as s,
        ):
            settings = make_settings(api_url=sim.base_url, api_timeout=1, poll_interval=0.05, job_lease=3600)
            before = make_services(store, s, settings, lease=Lease("before", 3600))
            job = (
                await before.split.reserve(
                    guild_id=GUILD,
                    channel_id=1,
                    user_id=ALICE,
                    mode=Mode.SEPARATE_VOCAL,
                    task_id="g",
                    audio_id="a",
                )
            ).job
            assert job.claimed_by == "before"
            deliverer = RecordingDeliverer()
            after = make_services(store, s, settings, deliverer=deliverer, lease=Lease("after", 3600))
            await after.runner.start()
            try:
                [delivered] = await deliverer.wait_for(1)
            finally:
                await after.runner.stop()
        assert delivered.id == job.id and len(sim.submits) == 1
    finally:
        await store.close()


async def _state_is(process: Process, job_id: int, state: JobState) -> Job | None:
    job = await stored(process, job_id)
    return job if job.state is state else None


async def _claimed_by(process: Process, job_id: int, holder: str | None) -> Job | None:
    job = await stored(process, job_id)
    return job if job.claimed_by == holder else None


async def test_a_keep_one_process_works_on_is_not_taken_by_another_until_its_lease_lapses(
    database: PostgresURL,
) -> None:
    a, b = await Store.open(database, POLICY), await Store.open(database, POLICY)
    try:
        reserved = await a.reservations.reserve(
            NewJob(GUILD, 1, ALICE, Mode.SEPARATE_VOCAL, "gen-1", "audio-1", 10, "token-1")
        )
        assert reserved.job is not None
        job = await a.reservations.settle(
            reserved.job.id, succeeded=True, stems=[StemLink("vocal", "https://c/v.mp3")], links_expire_at=2e9
        )
        assert job is not None
        await a.jobs.record_delivery(job.id, Delivery.DELIVERED, DeliveryVia.INTERACTION)
        await a.keeps.request(job, requested_by=ALICE, upload_limit=10_000_000)
        lease_a, lease_b = Lease("a", LEASE), Lease("b", LEASE)

        assert await a.keeps.claim(job.id, lease_a)
        assert not await b.keeps.claim(job.id, lease_b)
        assert await b.keeps.to_do(time.time(), holder="b") == []
        assert [k.job_id for k in await a.keeps.to_do(time.time(), holder="a")] == [job.id]
        await asyncio.sleep(LEASE / 2)
        assert await a.keeps.renew(lease_a) == 1
        await asyncio.sleep(LEASE / 2 + 0.1)  # past A's first lease, within the renewed one
        assert not await b.keeps.claim(job.id, lease_b)

        await asyncio.sleep(LEASE)  # A stopped renewing (it died)
        assert [k.job_id for k in await b.keeps.to_do(time.time(), holder="b")] == [job.id]
        assert await b.keeps.claim(job.id, lease_b)
        assert await a.keeps.release("a", job.id) == 0  # A's late release cannot free B's claim
        assert not await a.keeps.claim(job.id, lease_a)
        assert await b.keeps.release("b", job.id) == 1
        assert await a.keeps.claim(job.id, lease_a)
    finally:
        await a.close()
        await b.close()


async def test_a_keep_cut_off_by_a_crash_is_finished_by_the_other_process_posting_each_stem_once(
    database: PostgresURL, tmp_path: Path
) -> None:
    """Process A dies after its first upload of a 12-stem keep reached Discord (its answer lost
    with it); B takes the keep over once A's lease lapses, reads the thread back, and posts only
    the rest: every stem once, in A's thread."""
    poster = RecordingPoster()  # one Discord for both processes
    async with (
        SeparationApiSimulator(
            processing_seconds=0.05, callbacks=False, stem_files=True, stem_bytes=4096
        ) as sim,
        aiohttp.ClientSession() as session,
    ):
        processes: list[tuple[Store, Services, StemDownloader]] = []

        async def process(name: str) -> tuple[Store, Services]:
            store = await Store.open(database, POLICY)
            downloader = StemDownloader(lambda: "127.0.0.1", backoff=0.001)
            settings = make_settings(
                api_url=sim.base_url, poll_interval=0.05, job_lease=LEASE, database=tmp_path / name / "x.db"
            )
            services = make_services(
                store,
                session,
                settings,
                deliverer=RecordingDeliverer(record_in=store),
                keep_poster=poster,
                download=downloader,
                keep_retry_base=0.05,
                lease=Lease(name, LEASE),
            )
            processes.append((store, services, downloader))
            await services.start()
            return store, services

        try:
            store_a, a = await process("a")
            accepted = await a.split.reserve(
                guild_id=GUILD, channel_id=1, user_id=ALICE, mode=Mode.SPLIT_STEM,
                task_id="gen-1", audio_id="audio-1", filesize_limit=3 * 4096,
            )  # fmt: skip
            assert accepted.job is not None
            a.split.start(accepted.job)
            job_id = accepted.job.id
            async with asyncio.timeout(10):
                while (await store_a.deliveries.result_messages(job_id)) == []:
                    await asyncio.sleep(0.02)

            poster.hang_after.append("files#1")  # A's first upload reaches Discord, then A dies
            await a.keeper.request(GUILD, Actor(ALICE), job_id, channel_id=1)
            await asyncio.wait_for(poster.hanging.wait(), 10)
            await a.runner.stop(grace=0, release=False)
            await a.keeper.stop(release=False)
            await a.reminders.stop()
            await store_a.close()
            poster.release.set()

            store_b, _ = await process("b")
            async with asyncio.timeout(15):
                while not ((keep := await store_b.keeps.get(job_id)) and keep.marked):
                    await asyncio.sleep(0.05)
        finally:
            for store, services, _ in processes[1:]:
                await services.stop()
                await store.close()
            for _, _, downloader in processes:
                await downloader.close()

    files = poster.files()
    assert sorted(files) == sorted(set(files)) and len(files) == 12, files  # each stem once
    assert len(poster.threads) == 1 and keep.state is KeepState.KEPT
    assert {message.channel_id for message in poster.messages} == {keep.channel_id}
    assert [len(m.files) for m in poster.messages] == [3, 3, 3, 3]  # A's first message, then B's three
    assert poster.messages[0].content == "first" and all(m.content == "" for m in poster.messages[1:])
