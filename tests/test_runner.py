"""The job runner wired to a real store and the local API simulator."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot import job_delivery
from bot.models import CreditPolicy, Delivery, Failure, Job, JobState, LedgerKind
from bot.product import LINK_LIFETIME, Mode
from bot.render import results
from bot.runner import MAX_SUBMIT_ATTEMPTS, DeliveryOutcome, JobRunner
from bot.services import Services
from bot.store import Store
from bot.store.accounts import Accounts
from bot.store.budgets import Budgets
from bot.store.database import Database
from bot.store.jobs import Jobs
from bot.store.reservations import Reservations
from testing.provider_api import Fault, SeparationApiSimulator
from tests.wiring import RecordingDeliverer, make_services, make_settings

GUILD, MEMBER = 10, 20
POLL = 0.05


class RaisingDeliverer(RecordingDeliverer):
    """A Discord side with a bug: every delivery raises."""

    async def deliver(self, job: Job) -> DeliveryOutcome:
        self.attempts += 1
        raise RuntimeError("a bug in the Discord side")


class FaultyStore(Store):
    """The real store, whose chosen repository methods raise sqlite3.OperationalError (a full disk,
    a locked database) whenever `faults["<repository>.<method>"]` says so for the call's arguments."""

    def __init__(self, db: Database, policy: CreditPolicy) -> None:
        super().__init__(db, policy)
        self.faults: dict[str, Callable[..., bool]] = {}
        self.raised: Counter[str] = Counter()
        self.reservations = _FaultyReservations(self, db, self.accounts, self.budgets)
        self.jobs = _FaultyJobs(self, db)

    def maybe_fail(self, name: str, *args: Any, **kwargs: Any) -> None:
        should_fail = self.faults.get(name)
        if should_fail is not None and should_fail(*args, **kwargs):
            self.raised[name] += 1
            raise sqlite3.OperationalError("database or disk is full")


class _FaultyReservations(Reservations):
    def __init__(self, store: FaultyStore, db: Database, accounts: Accounts, budgets: Budgets) -> None:
        super().__init__(db, accounts, budgets)
        self._store = store

    async def settle(self, job_id: int, **kwargs: Any) -> Job | None:
        self._store.maybe_fail("reservations.settle", job_id, **kwargs)
        return await super().settle(job_id, **kwargs)

    async def settle_followers(self, leader: Job) -> list[Job]:
        self._store.maybe_fail("reservations.settle_followers", leader)
        return await super().settle_followers(leader)


class _FaultyJobs(Jobs):
    def __init__(self, store: FaultyStore, db: Database) -> None:
        super().__init__(db)
        self._store = store

    async def transition(self, job_id: int, from_states: Any, to_state: JobState, **fields: Any) -> bool:
        self._store.maybe_fail("jobs.transition", job_id, from_states, to_state, **fields)
        return await super().transition(job_id, from_states, to_state, **fields)


def first(times: int, when: Callable[..., bool] = lambda *args, **kwargs: True) -> Callable[..., bool]:
    """A fault that strikes the first `times` calls matching `when`."""
    left = [times]

    def strike(*args: Any, **kwargs: Any) -> bool:
        if left[0] > 0 and when(*args, **kwargs):
            left[0] -= 1
            return True
        return False

    return strike


class Harness:
    def __init__(
        self, store: FaultyStore, sim: SeparationApiSimulator, session: aiohttp.ClientSession
    ) -> None:
        self.store, self.sim, self.session = store, sim, session
        self.services: Services | None = None
        self.runner: JobRunner | None = None
        self.deliverer = RecordingDeliverer()

    async def start_runner(
        self, *, job_timeout: float = 30.0, deliverer: RecordingDeliverer | None = None
    ) -> JobRunner:
        """The bot's services as a (new) process would build them over this database, started."""
        self.deliverer = deliverer or RecordingDeliverer()
        settings = make_settings(
            api_url=self.sim.base_url, api_timeout=0.5, poll_interval=POLL, job_timeout=job_timeout
        )
        self.services = make_services(
            self.store, self.session, settings, deliverer=self.deliverer, delivery_retry_base=0.05
        )
        self.runner = self.services.runner
        await self.runner.start()
        return self.runner

    async def split(self, mode: Mode = Mode.SEPARATE_VOCAL, audio_id: str = "audio-1") -> Job:
        assert self.services is not None
        service = self.services.split
        job = (
            await service.reserve(
                guild_id=GUILD, channel_id=30, user_id=MEMBER, mode=mode, task_id="gen-1", audio_id=audio_id
            )
        ).job
        service.start(job)
        return job

    async def balance(self) -> int:
        return await self.store.accounts.balance(GUILD, MEMBER)

    async def ledger_kinds(self, job_id: int) -> list[LedgerKind]:
        return [e.kind for e in await self.store.accounts.ledger(GUILD, MEMBER) if e.job_id == job_id]


@pytest.fixture
async def sim() -> AsyncIterator[SeparationApiSimulator]:
    async with SeparationApiSimulator(processing_seconds=0.15, callbacks=False) as simulator:
        yield simulator


@pytest.fixture
async def harness(tmp_path: Path, sim: SeparationApiSimulator) -> AsyncIterator[Harness]:
    policy = CreditPolicy(default_credits=100, jobs_per_member=10)
    store = await FaultyStore.open(tmp_path / "runner.db", policy)
    assert isinstance(store, FaultyStore)
    async with aiohttp.ClientSession() as session:
        h = Harness(store, sim, session)
        yield h
        if h.runner:
            await h.runner.stop()
    assert await store.accounts.ledger_mismatches() == []
    await store.close()


@pytest.mark.parametrize(("mode", "stems"), [(Mode.SEPARATE_VOCAL, 2), (Mode.SPLIT_STEM, 12)])
async def test_success_delivers_every_stem_and_charges_once(harness: Harness, mode: Mode, stems: int) -> None:
    await harness.start_runner()
    job = await harness.split(mode)
    [delivered] = await harness.deliverer.wait_for(1)
    assert delivered.id == job.id and delivered.state is JobState.SUCCEEDED
    assert len(delivered.stems) == stems
    assert delivered.links_expire_at is not None
    assert len(harness.sim.submits) == 1
    assert await harness.balance() == 100 - mode.cost
    assert await harness.ledger_kinds(job.id) == [LedgerKind.RESERVE, LedgerKind.CHARGE]
    stored = await harness.store.jobs.get(job.id)
    assert stored is not None and stored.delivery is Delivery.DELIVERED


async def test_member_is_shown_progress_once_submitted(harness: Harness) -> None:
    await harness.start_runner()
    await harness.split()
    await harness.deliverer.wait_for(1)
    [progress] = harness.deliverer.progress
    assert progress.state is JobState.SUBMITTED and progress.api_task_id in harness.sim.tasks


async def test_polls_at_the_interval_not_in_a_hot_loop(harness: Harness) -> None:
    harness.sim.processing_seconds = 0.5
    await harness.start_runner()
    await harness.split()
    await harness.deliverer.wait_for(1)
    # 0.5 s of processing at a 0.05 s interval: about ten polls, certainly not hundreds.
    assert 3 <= harness.sim.polls() <= 15


async def assert_refunded(harness: Harness, failure: Failure) -> Job:
    [delivered] = await harness.deliverer.wait_for(1)
    assert delivered.state is JobState.FAILED
    assert delivered.failure is failure
    assert await harness.balance() == 100
    assert await harness.ledger_kinds(delivered.id) == [LedgerKind.RESERVE, LedgerKind.REFUND]
    return delivered


async def test_unknown_ids_fail_fast_and_refund(harness: Harness) -> None:
    harness.sim.unknown_ids.add("bogus")
    await harness.start_runner()
    await harness.split(audio_id="bogus")
    await assert_refunded(harness, Failure.INVALID_IDS)
    assert len(harness.sim.submits) == 1


async def test_failed_separation_refunds_with_the_services_reason(harness: Harness) -> None:
    harness.sim.outcome = "GENERATE_AUDIO_FAILED"
    await harness.start_runner()
    await harness.split()
    job = await assert_refunded(harness, Failure.SEPARATION_FAILED)
    assert job.failure_detail


@pytest.mark.parametrize(
    ("code", "failure"),
    [(401, Failure.SERVICE_ACCOUNT), (429, Failure.SERVICE_ACCOUNT), (413, Failure.INPUT_TOO_LONG),
     (404, Failure.SERVICE_ERROR), (531, Failure.SERVICE_ERROR)],
)  # fmt: skip
async def test_permanent_api_errors_fail_without_retry(harness: Harness, code: int, failure: Failure) -> None:
    harness.sim.script("submit", Fault("code", code))
    await harness.start_runner()
    await harness.split()
    await assert_refunded(harness, failure)
    assert len(harness.sim.submits) == 1


async def test_job_times_out_and_refunds(harness: Harness) -> None:
    harness.sim.processing_seconds = 60
    await harness.start_runner(job_timeout=0.4)
    await harness.split()
    await assert_refunded(harness, Failure.TIMED_OUT)


@pytest.mark.parametrize(
    "fault",
    [Fault("code", 405), Fault("code", 430), Fault("code", 455), Fault("code", 500), Fault("http", 502),
     Fault("http", 503)],
)  # fmt: skip
async def test_transient_submit_errors_are_retried_then_succeed_with_one_paid_submit(
    harness: Harness, fault: Fault
) -> None:
    harness.sim.script("submit", fault, fault)
    await harness.start_runner()
    job = await harness.split()
    [delivered] = await harness.deliverer.wait_for(1)
    assert delivered.state is JobState.SUCCEEDED
    assert [s.code for s in harness.sim.submits] == [fault.status, fault.status, 200]
    assert len(harness.sim.tasks) == 1
    assert await harness.ledger_kinds(job.id) == [LedgerKind.RESERVE, LedgerKind.CHARGE]


async def test_transient_poll_errors_are_retried(harness: Harness) -> None:
    harness.sim.script("record", Fault("code", 500), Fault("garbage"), Fault("html", 502), Fault("code", 455))
    await harness.start_runner()
    await harness.split()
    [delivered] = await harness.deliverer.wait_for(1)
    assert delivered.state is JobState.SUCCEEDED


def record_answer(**data: object) -> Fault:
    """A record-info answer from the API itself, with `data` exactly as given."""
    return Fault("body", body={"code": 200, "msg": "success", "data": data})


async def test_a_record_whose_origin_data_is_a_number_settles_the_job(harness: Harness) -> None:
    # Once a TypeError in the parser, retried every poll for ever with the credits held.
    harness.sim.script(
        "record", record_answer(successFlag="SUCCESS", response={"vocalUrl": None, "originData": 5})
    )
    await harness.start_runner()
    await harness.split()
    await assert_refunded(harness, Failure.SEPARATION_FAILED)
    assert harness.sim.polls() == 1


async def test_a_nonsense_complete_time_does_not_make_fresh_links_look_expired(harness: Harness) -> None:
    harness.sim.script(
        "record",
        record_answer(successFlag="SUCCESS", completeTime=7, response={"vocalUrl": "https://cdn/v.mp3"}),
    )
    await harness.start_runner()
    job = await harness.split()
    [delivered] = await harness.deliverer.wait_for(1)
    assert delivered.state is JobState.SUCCEEDED and delivered.links_expire_at is not None
    assert delivered.links_expire_at > job.created_at + LINK_LIFETIME.total_seconds() - 60


async def test_server_errors_are_retried_a_bounded_number_of_times(harness: Harness) -> None:
    harness.sim.script("submit", *[Fault("code", 500)] * (MAX_SUBMIT_ATTEMPTS + 2))
    await harness.start_runner()
    await harness.split()
    await assert_refunded(harness, Failure.SERVICE_ERROR)
    assert len(harness.sim.submits) == MAX_SUBMIT_ATTEMPTS
    assert harness.sim.tasks == {}


@pytest.mark.parametrize(
    "fault",
    [Fault("html", 502), Fault("html", 503), Fault("body", 502, body={"error": "no healthy upstream"}),
     Fault("garbage", 503, content_type="text/plain")],
    ids=["html502", "html503", "json-without-code", "text503"],
)  # fmt: skip
async def test_a_proxy_error_page_on_submit_is_never_resubmitted(harness: Harness, fault: Fault) -> None:
    # Something in front of the API answered, after the submit had left: the API may have the
    # (paid) task. Even a long run of such pages must not turn one charge into several submits.
    harness.sim.script("submit", *[fault] * (MAX_SUBMIT_ATTEMPTS + 2))
    await harness.start_runner()
    await harness.split()
    job = await assert_refunded(harness, Failure.UNCONFIRMED)
    assert len(harness.sim.submits) == 1
    [embed] = results.failed(job).embeds
    assert "couldn't confirm" in (embed.description or "")
    assert any("not charged" in field.value for field in embed.fields if field.value)


async def test_lost_submit_answer_is_never_resubmitted(harness: Harness) -> None:
    harness.sim.script("submit", Fault("accept_and_hang", seconds=3))
    await harness.start_runner()
    await harness.split()
    await assert_refunded(harness, Failure.UNCONFIRMED)
    assert len(harness.sim.submits) == 1


async def test_the_submit_and_its_answer_are_stored_with_synchronous_full(harness: Harness) -> None:
    """Power lost after either write must not undo it: a lost `submitting` would submit (and
    charge the owner) again; a lost `submitted` would refund a job the API ran."""
    statements: list[str] = []
    await harness.store.db._conn.set_trace_callback(statements.append)
    await harness.start_runner()
    await harness.split()
    await harness.deliverer.wait_for(1)

    statements = [s for i, s in enumerate(statements) if i == 0 or statements[i - 1] != s]  # once each
    for state in ("submitting", "submitted"):
        [at] = [i for i, s in enumerate(statements) if s.startswith(f"UPDATE jobs SET state = '{state}'")]
        assert statements[at - 1 : at + 2 : 2] == ["PRAGMA synchronous = FULL", "PRAGMA synchronous = NORMAL"]
    assert statements.count("PRAGMA synchronous = FULL") == 2  # and no other write pays for it


async def test_restart_resumes_submitted_job_by_polling_not_resubmitting(harness: Harness) -> None:
    harness.sim.processing_seconds = 0.6
    runner = await harness.start_runner()
    job = await harness.split()
    async with asyncio.timeout(5):
        while (current := await harness.store.jobs.get(job.id)) and current.state is not JobState.SUBMITTED:
            await asyncio.sleep(0.01)
    await runner.stop()  # the bot goes away mid-job
    polls_before = harness.sim.polls()

    await harness.start_runner()  # a new process's runner on the same database
    [delivered] = await harness.deliverer.wait_for(1)
    assert delivered.id == job.id and delivered.state is JobState.SUCCEEDED
    assert len(harness.sim.submits) == 1
    assert harness.sim.polls() > polls_before
    assert await harness.ledger_kinds(job.id) == [LedgerKind.RESERVE, LedgerKind.CHARGE]


async def test_restart_refunds_a_job_interrupted_while_submitting(harness: Harness) -> None:
    runner = await harness.start_runner()
    await runner.stop()
    assert harness.services is not None
    service = harness.services.split
    job = (
        await service.reserve(
            guild_id=GUILD, channel_id=30, user_id=MEMBER, mode=Mode.SPLIT_STEM, task_id="g", audio_id="a"
        )
    ).job
    # What a crash between sending the submit and storing its answer leaves behind:
    assert await harness.store.jobs.transition(job.id, [JobState.RESERVED], JobState.SUBMITTING)

    await harness.start_runner()
    delivered = await assert_refunded(harness, Failure.UNCONFIRMED)
    assert delivered.id == job.id
    assert harness.sim.submits == []  # never sent again


async def test_restart_submits_a_reserved_job_that_never_left(harness: Harness) -> None:
    runner = await harness.start_runner()
    await runner.stop()
    assert harness.services is not None
    service = harness.services.split
    await service.reserve(
        guild_id=GUILD, channel_id=30, user_id=MEMBER, mode=Mode.SEPARATE_VOCAL, task_id="g", audio_id="a"
    )  # reserved, but the process died before scheduling it
    await harness.start_runner()
    [delivered] = await harness.deliverer.wait_for(1)
    assert delivered.state is JobState.SUCCEEDED and len(harness.sim.submits) == 1


async def test_failed_delivery_is_retried_until_it_succeeds(harness: Harness) -> None:
    await harness.start_runner(deliverer=RecordingDeliverer(failures=2))
    job = await harness.split()
    [delivered] = await harness.deliverer.wait_for(1, timeout=20)
    assert delivered.id == job.id
    assert harness.deliverer.attempts == 3
    stored = await harness.store.jobs.get(job.id)
    assert stored is not None and stored.delivery is Delivery.DELIVERED and stored.delivery_attempts == 3


async def test_undelivered_result_is_delivered_after_restart(harness: Harness) -> None:
    runner = await harness.start_runner(deliverer=RecordingDeliverer(failures=1000))
    job = await harness.split()
    async with asyncio.timeout(5):
        while harness.deliverer.attempts == 0:
            await asyncio.sleep(0.01)
    await runner.stop()
    await harness.start_runner()
    [delivered] = await harness.deliverer.wait_for(1)
    assert delivered.id == job.id and delivered.state is JobState.SUCCEEDED
    assert len(harness.sim.submits) == 1


async def test_many_jobs_share_one_dispatcher_and_all_finish(harness: Harness) -> None:
    # 60 splits at once: the server allows them and the member has the credits.
    await harness.store.economy.update_settings(GUILD, {"jobs_per_member": 60}, actor_id=1)
    await harness.store.accounts.grant(GUILD, MEMBER, 1_000, actor_id=1, reason=None, role_ids=())
    await harness.start_runner()
    jobs = [await harness.split(audio_id=f"audio-{i}") for i in range(60)]
    delivered = await harness.deliverer.wait_for(60, timeout=30)
    assert sorted(j.id for j in delivered) == sorted(j.id for j in jobs)
    assert len(harness.sim.submits) == 60


async def test_a_poll_due_while_the_job_is_still_busy_is_not_lost(harness: Harness) -> None:
    # Discord is slow to show progress: the first poll comes due before that step ends.
    harness.sim.processing_seconds = 0.05
    await harness.start_runner(deliverer=RecordingDeliverer(progress_seconds=0.3))
    job = await harness.split()
    [delivered] = await harness.deliverer.wait_for(1, timeout=5)
    assert delivered.id == job.id and delivered.state is JobState.SUCCEEDED


async def test_callback_makes_the_job_confirm_at_once_instead_of_waiting_for_the_next_poll(
    tmp_path: Path, sim: SeparationApiSimulator
) -> None:
    from bot.callbacks import Callback, CallbackVerdict

    store = await Store.open(tmp_path / "cb.db")
    try:
        async with aiohttp.ClientSession() as session:
            deliverer = RecordingDeliverer()
            settings = make_settings(api_url=sim.base_url, api_timeout=1, poll_interval=60, job_timeout=600)
            services = make_services(store, session, settings, deliverer=deliverer)  # polling won't help
            runner = services.runner
            await runner.start()
            try:
                service = services.split
                job = (
                    await service.reserve(
                        guild_id=GUILD,
                        channel_id=1,
                        user_id=MEMBER,
                        mode=Mode.SEPARATE_VOCAL,
                        task_id="g",
                        audio_id="a",
                    )
                ).job
                service.start(job)
                async with asyncio.timeout(5):
                    while not (current := await store.jobs.get(job.id)) or current.api_task_id is None:
                        await asyncio.sleep(0.01)
                api_task = current.api_task_id

                assert (
                    await runner.callback_received("nobody", Callback(200, api_task, {}))
                    is CallbackVerdict.UNKNOWN
                )
                wrong = Callback(200, "f" * 32, {"vocal": "https://evil/v"})
                assert await runner.callback_received(job.callback_token, wrong) is CallbackVerdict.MISMATCH
                # Right token and task but the API is not done: the job asks, hears "pending", waits.
                early = Callback(200, api_task, {"vocal": "https://evil/v"})
                assert await runner.callback_received(job.callback_token, early) is CallbackVerdict.ACCEPTED
                sim.finish_now(api_task)
                assert await runner.callback_received(job.callback_token, early) is CallbackVerdict.ACCEPTED
                [delivered] = await deliverer.wait_for(1, timeout=5)
                assert all("evil" not in stem.url for stem in delivered.stems)
                assert await runner.callback_received(job.callback_token, early) is CallbackVerdict.DUPLICATE
            finally:
                await runner.stop()
    finally:
        await store.close()


async def test_a_paid_task_is_not_abandoned_on_one_bad_record_info_answer(harness: Harness) -> None:
    harness.sim.script("record", Fault("code", 400, msg="task not found"), Fault("code", 401))
    await harness.start_runner()
    await harness.split()
    [delivered] = await harness.deliverer.wait_for(1)
    assert delivered.state is JobState.SUCCEEDED and len(harness.sim.submits) == 1


async def test_the_timeout_counts_from_submission_once_the_api_has_the_job(harness: Harness) -> None:
    # Two maintenance answers eat most of the timeout before the submit goes through; the job
    # still gets its full time to finish instead of being refunded while the API works on it.
    # Backoffs of about 0.2 s + 0.4 s before the submit, then 0.7 s of processing: over 1 s from
    # creation, well under 1 s from submission.
    harness.sim.processing_seconds = 0.7
    harness.sim.script("submit", Fault("code", 455), Fault("code", 455))
    await harness.start_runner(job_timeout=1.0)
    await harness.split()
    [delivered] = await harness.deliverer.wait_for(1)
    assert delivered.state is JobState.SUCCEEDED


# -- steps failing in ways nobody planned for --------------------------------------------------


async def test_a_step_that_keeps_failing_backs_off_and_refunds_the_job_at_its_timeout(
    harness: Harness,
) -> None:
    # The stems are there, but storing them fails every time (the disk is full, say).
    harness.store.faults["reservations.settle"] = lambda job_id, succeeded, **kwargs: succeeded
    await harness.start_runner(job_timeout=1.0)
    job = await harness.split()
    delivered = await assert_refunded(harness, Failure.SERVICE_ERROR)
    assert delivered.id == job.id and "OperationalError" in (delivered.failure_detail or "")
    [embed] = results.failed(delivered).embeds
    assert "gave up on this split" in (embed.description or "")
    assert len(harness.sim.submits) == 1
    # Growing pauses: a handful of attempts in the second before the timeout, not one every
    # 0.05 s poll interval (about twenty).
    assert 2 <= harness.store.raised["reservations.settle"] <= 8


async def test_a_failing_step_logs_its_traceback_once_then_one_line_per_retry(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.store.faults["reservations.settle"] = lambda job_id, succeeded, **kwargs: succeeded
    with caplog.at_level(logging.INFO, logger="bot.runner"):
        await harness.start_runner(job_timeout=1.0)
        await harness.split()
        await assert_refunded(harness, Failure.SERVICE_ERROR)
    runner_records = [r for r in caplog.records if r.name == "bot.runner"]
    assert len([r for r in runner_records if r.exc_info]) == 1
    again = [r for r in runner_records if "failed again" in r.getMessage()]
    assert len(again) == harness.store.raised["reservations.settle"] - 1 >= 1
    assert all("\n" not in r.getMessage() for r in again)


async def test_a_submitting_job_whose_step_raised_is_refunded_not_resubmitted(harness: Harness) -> None:
    # The API took the job, then storing its task id failed: it must never be sent again.
    harness.store.faults["jobs.transition"] = first(
        1, lambda job_id, sources, to, **f: to is JobState.SUBMITTED
    )
    await harness.start_runner()
    await harness.split()
    job = await assert_refunded(harness, Failure.UNCONFIRMED)
    assert len(harness.sim.submits) == 1 and len(harness.sim.tasks) == 1
    [embed] = results.failed(job).embeds
    assert "couldn't confirm" in (embed.description or "")


async def test_a_paid_task_whose_id_could_not_be_stored_is_kept_as_an_orphan_and_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # The job is refunded as unconfirmed, but the API task it paid for must not vanish with it.
    harness.store.faults["jobs.transition"] = first(
        1, lambda job_id, sources, to, **f: to is JobState.SUBMITTED
    )
    await harness.start_runner()
    with caplog.at_level(logging.ERROR):
        job = await harness.split()
        await assert_refunded(harness, Failure.UNCONFIRMED)
    [task_id] = harness.sim.tasks
    orphans, total = await harness.store.jobs.orphans()
    assert total == 1 and (orphans[0].job_id, orphans[0].api_task_id) == (job.id, task_id)
    assert any(task_id in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


async def test_a_delivery_that_keeps_raising_counts_its_attempts_and_ends_undeliverable(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_delivery, "MAX_DELIVERY_ATTEMPTS", 3)
    deliverer = RaisingDeliverer()
    await harness.start_runner(deliverer=deliverer)
    job = await harness.split()
    async with asyncio.timeout(10):
        while (
            stored := await harness.store.jobs.get(job.id)
        ) and stored.delivery is not Delivery.UNDELIVERABLE:
            await asyncio.sleep(0.02)
    assert stored is not None and stored.delivery is Delivery.UNDELIVERABLE
    assert stored.state is JobState.SUCCEEDED and stored.delivery_attempts == 3  # kept, settled once
    assert await harness.ledger_kinds(job.id) == [LedgerKind.RESERVE, LedgerKind.CHARGE]
    await asyncio.sleep(0.3)
    assert deliverer.attempts == 3  # and then left alone


# -- the retry state is stored with the job --------------------------------------------------


async def until_stored(harness: Harness, job_id: int, condition: Callable[[Job], bool]) -> Job:
    async with asyncio.timeout(10):
        while not ((job := await harness.store.jobs.get(job_id)) and condition(job)):
            await asyncio.sleep(0.01)
    return job


async def test_a_failing_submits_count_and_pause_survive_a_restart(harness: Harness) -> None:
    # Every submit fails with a 500: a runner gives up after MAX_SUBMIT_ATTEMPTS in all, however
    # many times the bot restarts meanwhile, and a restart waits out the pause it found stored.
    harness.sim.script("submit", *[Fault("code", 500)] * (MAX_SUBMIT_ATTEMPTS + 4))
    runner = await harness.start_runner()
    job = await harness.split()
    paused = await until_stored(harness, job.id, lambda j: j.api_failures == 3)
    await runner.stop()  # the bot goes away in the middle of the back-off
    assert paused.state is JobState.RESERVED and paused.next_step_at is not None
    assert len(harness.sim.submits) == 3

    await harness.start_runner()  # a new process's runner on the same database
    await assert_refunded(harness, Failure.SERVICE_ERROR)
    assert len(harness.sim.submits) == MAX_SUBMIT_ATTEMPTS  # counted on, not started again
    assert harness.sim.submits[3].time >= paused.next_step_at  # and the pause was kept


async def test_a_failing_polls_count_and_pause_survive_a_restart(harness: Harness) -> None:
    harness.sim.script("record", *[Fault("code", 500)] * 4)
    runner = await harness.start_runner()
    job = await harness.split()
    paused = await until_stored(harness, job.id, lambda j: j.api_failures == 3)
    await runner.stop()
    assert paused.state is JobState.SUBMITTED and paused.next_step_at is not None
    polls = harness.sim.polls()

    await harness.start_runner()
    # The fourth failure in a row is counted as the fourth: its pause is the fourth's.
    again = await until_stored(harness, job.id, lambda j: j.api_failures != 3)
    assert again.api_failures == 4
    [delivered] = await harness.deliverer.wait_for(1)
    assert delivered.state is JobState.SUCCEEDED and len(harness.sim.submits) == 1
    first_poll_after = [c for c in harness.sim.calls if c.endpoint == "record"][polls]
    assert first_poll_after.time >= paused.next_step_at


async def test_a_callback_wakes_a_job_at_once_even_in_the_middle_of_a_long_pause(
    harness: Harness,
) -> None:
    from bot.callbacks import Callback, CallbackVerdict

    # Failed polls left the job paused for an hour (stored); a restarted runner waits the pause
    # out, but the API's callback says the task may be done: the job asks at once.
    harness.sim.processing_seconds = 60
    harness.sim.script("record", Fault("code", 500))
    runner = await harness.start_runner()
    job = await harness.split()
    paused = await until_stored(harness, job.id, lambda j: j.api_failures == 1)
    await runner.stop(release=False)  # as a crash leaves it
    assert paused.api_task_id is not None and paused.claimed_by is not None
    assert await harness.store.jobs.next_step(job.id, time.time() + 3600, holder=paused.claimed_by)
    runner = await harness.start_runner()
    polls = harness.sim.polls()
    await asyncio.sleep(0.3)
    assert harness.sim.polls() == polls  # the stored pause stands across the restart

    harness.sim.finish_now(paused.api_task_id)
    woken = time.time()
    callback = Callback(200, paused.api_task_id, {})
    assert await runner.callback_received(job.callback_token, callback) is CallbackVerdict.ACCEPTED
    [delivered] = await harness.deliverer.wait_for(1, timeout=3)
    assert delivered.state is JobState.SUCCEEDED and time.time() - woken < 3
    assert harness.sim.polls() == polls + 1


async def test_a_job_handed_over_after_its_queued_message_costs_no_due_query(
    tmp_path: Path, sim: SeparationApiSimulator
) -> None:
    # The /split's path: reserve (the job is stored and held), "queued" shown, released. The
    # runner starts that job at once from memory, without asking the database what is due.
    store = await Store.open(tmp_path / "handover.db")
    try:
        async with aiohttp.ClientSession() as session:
            settings = make_settings(api_url=sim.base_url, api_timeout=1, poll_interval=60, job_timeout=600)
            services = make_services(store, session, settings, deliverer=RecordingDeliverer())
            await services.runner.start()
            try:
                await asyncio.sleep(0.2)  # the first look is done; the next is a minute away
                statements: list[str] = []
                await store.db._conn.set_trace_callback(statements.append)
                accepted = await services.split.reserve(
                    guild_id=GUILD,
                    channel_id=1,
                    user_id=MEMBER,
                    mode=Mode.SEPARATE_VOCAL,
                    task_id="g",
                    audio_id="a",
                )
                services.split.start(accepted.job)
                async with asyncio.timeout(5):
                    while not any(s.startswith("UPDATE jobs SET state = 'submitted'") for s in statements):
                        await asyncio.sleep(0.01)
                await store.db._conn.set_trace_callback(None)
            finally:
                await services.runner.stop()
    finally:
        await store.close()
    looks = [s for s in statements if "next_step_at" in s and s.startswith("SELECT")]
    assert looks == []


class SlowDeliverer(RecordingDeliverer):
    """Discord takes a while to show each result."""

    async def deliver(self, job: Job) -> DeliveryOutcome:
        await asyncio.sleep(0.3)
        return await super().deliver(job)


async def test_a_job_taken_over_while_submitting_is_shown_to_its_member_once(
    tmp_path: Path, sim: SeparationApiSimulator
) -> None:
    # A job left 'submitting' by a process that stopped: the process taking it over refunds it
    # (the unconfirmed rule) beside its running steps, and its member is told once, by the job's
    # own step, however slow Discord is meanwhile.
    from bot.leases import Lease

    store = await Store.open(tmp_path / "takeover.db")
    try:
        async with aiohttp.ClientSession() as session:
            settings = make_settings(api_url=sim.base_url, api_timeout=1, poll_interval=0.05, job_timeout=600)
            deliverer = SlowDeliverer()
            services = make_services(store, session, settings, deliverer=deliverer, lease=Lease("b", 0.3))
            await services.runner.start()
            try:
                gone = make_services(store, session, settings, lease=Lease("a", 0.3))
                job = (
                    await gone.split.reserve(
                        guild_id=GUILD,
                        channel_id=1,
                        user_id=MEMBER,
                        mode=Mode.SEPARATE_VOCAL,
                        task_id="g",
                        audio_id="a",
                    )
                ).job
                assert await store.jobs.transition(job.id, [JobState.RESERVED], JobState.SUBMITTING)
                assert await store.jobs.release("a") == 1  # it stopped with the submit on the wire
                [delivered] = await deliverer.wait_for(1)
                await asyncio.sleep(0.5)  # any second showing would be under way by now
            finally:
                await services.runner.stop()
    finally:
        await store.close()
    assert delivered.id == job.id and delivered.failure is Failure.UNCONFIRMED
    assert len(deliverer.delivered) == 1 and deliverer.attempts == 1
    assert sim.submits == []
