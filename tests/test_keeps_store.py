"""The keeps repository (`store.keeps`) on real SQLite: one keep per result however many ask, a
failed keep asked again, what the worker has to do and when, each stem's states (and what an
unknown outcome turns back), twins, and the keep `keep_stems: always` queues with the delivery."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from pathlib import Path

import pytest

from bot.models import (
    CreditPolicy,
    Delivery,
    DeliveryVia,
    Job,
    KeepPlace,
    KeepState,
    KeepStems,
    NewJob,
    StemKeepState,
    StemLink,
)
from bot.product import DEFAULT_UPLOAD_LIMIT, LINK_LIFETIME, Mode
from bot.store import Store
from bot.store.keeps import _TO_DO
from tests.unit_helpers import FakeClock, keep_change

GUILD, OTHER_GUILD, ANA, BOB, MOD = 10, 11, 21, 22, 90
_serial = itertools.count(1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock("2026-11-02 12:00")


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock):
    opened = await Store.open(
        tmp_path / "keeps.db", CreditPolicy(default_credits=1000, jobs_per_member=50), clock
    )
    yield opened
    await opened.close()


async def succeeded(
    store: Store,
    clock: FakeClock,
    *,
    member: int = ANA,
    guild: int = GUILD,
    audio_id: str | None = None,
    mode: Mode = Mode.SEPARATE_VOCAL,
    filesize_limit: int | None = None,
) -> Job:
    n = next(_serial)
    new = NewJob(
        guild, 1, member, mode, "task", audio_id or f"audio-{n}", mode.cost, f"tok-{n}",
        filesize_limit=filesize_limit,
    )  # fmt: skip
    job = (await store.reservations.reserve(new)).job
    assert job is not None
    done = await store.reservations.settle(
        job.id,
        succeeded=True,
        stems=[StemLink("vocal", "https://x/v.mp3"), StemLink("instrumental", "https://x/i.mp3")],
        links_expire_at=clock() + LINK_LIFETIME.total_seconds(),
    )
    found = done or await store.jobs.get(job.id)  # a reused result was finished at once
    assert found is not None
    return found


async def test_one_keep_per_result_however_many_ask_at_once(store: Store, clock: FakeClock) -> None:
    job = await succeeded(store, clock)

    asked = await asyncio.gather(
        *(store.keeps.request(job, requested_by=member, upload_limit=1000) for member in (ANA, MOD, ANA))
    )

    assert [started for _, started in asked].count(True) == 1
    keep = await store.keeps.get(job.id)
    assert keep is not None and keep.state is KeepState.PENDING and keep.upload_limit == 1000
    assert keep.requested_by == next(k.requested_by for k, started in asked if started)


async def test_a_failed_keep_asked_again_starts_over_and_a_kept_one_does_not(
    store: Store, clock: FakeClock
) -> None:
    failing, done = await succeeded(store, clock), await succeeded(store, clock)
    for job in (failing, done):
        await store.keeps.request(job, requested_by=ANA, upload_limit=1000)
        await store.keeps.start(job.id, [(0, "Vocals.mp3")])
    await keep_change(store, failing.id, lambda k: k.retrying(clock() + 60, "Discord did not answer"))
    await keep_change(store, failing.id, lambda k: k.failed("gave up", clock()))
    await keep_change(store, done.id, lambda k: k.kept(clock()))

    again, started = await store.keeps.request(failing, requested_by=MOD, upload_limit=1000)
    kept, restarted = await store.keeps.request(done, requested_by=MOD, upload_limit=1000)

    assert started and again.state is KeepState.PENDING and again.requested_by == MOD
    assert again.failure is None and again.attempts == 0 and again.retry_at is None
    assert not restarted and kept.state is KeepState.KEPT and kept.requested_by == ANA


async def test_the_worker_is_given_keeps_with_work_left_once_due(store: Store, clock: FakeClock) -> None:
    pending, waiting, unmarked, marked, failed = [await succeeded(store, clock) for _ in range(5)]
    for job in (pending, waiting, unmarked, marked, failed):
        await store.keeps.request(job, requested_by=ANA, upload_limit=1000)
        clock.advance(1)  # asked in this order
    await keep_change(store, waiting.id, lambda k: k.retrying(clock() + 60, "Discord did not answer"))
    await keep_change(store, unmarked.id, lambda k: k.kept(clock()))
    await keep_change(store, marked.id, lambda k: k.kept(clock()))
    await keep_change(store, marked.id, lambda k: k.shown_kept())
    await keep_change(store, failed.id, lambda k: k.failed("no permission", clock()))

    assert [k.job_id for k in await store.keeps.to_do(clock())] == [pending.id, unmarked.id]
    assert await store.keeps.next_retry_at(after=clock()) == pytest.approx(clock() + 60)
    assert await store.keeps.next_retry_at(after=clock() + 60) is None  # taken up by then
    assert [k.job_id for k in await store.keeps.to_do(clock() + 60)] == [pending.id, waiting.id, unmarked.id]


async def test_a_keep_waiting_for_another_is_not_counted_as_failing(store: Store, clock: FakeClock) -> None:
    job = await succeeded(store, clock)
    await store.keeps.request(job, requested_by=ANA, upload_limit=1000)

    assert (
        await keep_change(store, job.id, lambda k: k.retrying(clock() + 5, "waiting", count=False))
    ).attempts == 0
    assert (
        await keep_change(store, job.id, lambda k: k.retrying(clock() + 5, "Discord did not answer"))
    ).attempts == 1
    assert (
        await keep_change(store, job.id, lambda k: k.retrying(clock() + 5, "Discord did not answer"))
    ).attempts == 2


async def test_starting_again_keeps_each_stems_state(store: Store, clock: FakeClock) -> None:
    job = await succeeded(store, clock)
    await store.keeps.request(job, requested_by=ANA, upload_limit=1000)
    first = await store.keeps.start(job.id, [(0, "Vocals.mp3"), (1, "Instrumental.mp3")])
    await store.keeps.posting(job.id, [0])
    await store.keeps.posted(job.id, [0], 555)

    again = await store.keeps.start(job.id, [(0, "Vocals.mp3"), (1, "Instrumental.mp3")])

    assert [s.state for s in first] == [StemKeepState.PENDING, StemKeepState.PENDING]
    assert [(s.state, s.message_id) for s in again] == [
        (StemKeepState.POSTED, 555),
        (StemKeepState.PENDING, None),
    ]
    keep = await store.keeps.get(job.id)
    assert keep is not None and keep.state is KeepState.WORKING


async def test_an_unknown_outcome_turns_back_only_what_was_posting(store: Store, clock: FakeClock) -> None:
    job = await succeeded(store, clock, mode=Mode.SPLIT_STEM)
    await store.keeps.request(job, requested_by=ANA, upload_limit=1000)
    await store.keeps.start(job.id, [(i, f"s{i}.mp3") for i in range(4)])
    await store.keeps.posted(job.id, [0], 500)  # posted, known
    await store.keeps.posting(job.id, [1])  # a file whose upload's outcome is unknown
    await store.keeps.skipped(job.id, 2, "an HTML page")
    await store.keeps.posting(job.id, [2])  # its note's outcome is unknown
    await store.keeps.skipped(job.id, 3, "too large", size=123)
    await store.keeps.noted(job.id, [3], 600)

    await store.keeps.unsent(job.id, [0, 1, 2, 3])

    stems = await store.keeps.stems(job.id)
    assert [(s.state, s.message_id) for s in stems] == [
        (StemKeepState.POSTED, 500),
        (StemKeepState.PENDING, None),
        (StemKeepState.SKIPPED, None),  # its note is still to be sent
        (StemKeepState.SKIPPED, 600),
    ]
    assert stems[2].skipped_why == "an HTML page" and stems[3].size == 123


async def test_posting_is_on_disk_before_the_upload(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "keeps.db"
    store = await Store.open(path, CreditPolicy(default_credits=1000), clock)
    job = await succeeded(store, clock)
    await store.keeps.request(job, requested_by=ANA, upload_limit=1000)
    await store.keeps.start(job.id, [(0, "Vocals.mp3")])
    await store.keeps.posting(job.id, [0])
    await store.close()

    reopened = await Store.open(path, CreditPolicy(default_credits=1000), clock)
    try:
        [stem] = await reopened.keeps.stems(job.id)
        assert stem.state is StemKeepState.POSTING
    finally:
        await reopened.close()


async def test_the_upload_limit_is_only_ever_lowered(store: Store, clock: FakeClock) -> None:
    job = await succeeded(store, clock)
    await store.keeps.request(job, requested_by=ANA, upload_limit=1000)

    await keep_change(store, job.id, lambda k: k.packed_smaller(700))
    await keep_change(store, job.id, lambda k: k.packed_smaller(900))

    keep = await store.keeps.get(job.id)
    assert keep is not None and keep.upload_limit == 700


async def test_a_finished_keep_is_not_failed_or_linked_afterwards(store: Store, clock: FakeClock) -> None:
    job, twin = await succeeded(store, clock), await succeeded(store, clock)
    for each in (job, twin):
        await store.keeps.request(each, requested_by=ANA, upload_limit=1000)
    await keep_change(
        store, twin.id, lambda k: k.placed(KeepPlace.THREAD, channel_id=77, anchor_message_id=77)
    )
    await keep_change(store, job.id, lambda k: k.kept(clock()))
    await keep_change(store, twin.id, lambda k: k.kept(clock()))
    twin_keep = await store.keeps.get(twin.id)
    assert twin_keep is not None

    await keep_change(store, job.id, lambda k: k.failed("late failure", clock()))
    await keep_change(store, job.id, lambda k: k.linked(twin_keep, clock()))

    keep = await store.keeps.get(job.id)
    assert keep is not None and keep.state is KeepState.KEPT and keep.failure is None
    assert keep.linked_to is None and keep.channel_id is None


async def test_linking_points_a_keep_at_its_twins_place(store: Store, clock: FakeClock) -> None:
    job, twin = await succeeded(store, clock), await succeeded(store, clock)
    for each in (job, twin):
        await store.keeps.request(each, requested_by=ANA, upload_limit=1000)
        clock.advance(1)
    await keep_change(
        store, twin.id, lambda k: k.placed(KeepPlace.REPLIES, channel_id=77, anchor_message_id=78)
    )
    twin_keep = await store.keeps.get(twin.id)
    assert twin_keep is not None

    await keep_change(store, job.id, lambda k: k.linked(twin_keep, clock()))

    keep = await store.keeps.get(job.id)
    assert keep is not None and keep.state is KeepState.KEPT and keep.linked_to == twin.id
    assert (keep.place, keep.channel_id, keep.anchor_message_id) == (KeepPlace.REPLIES, 77, 78)
    assert not keep.marked and [k.job_id for k in await store.keeps.to_do(clock())] == [job.id, twin.id]


async def test_twins_are_the_same_track_and_mode_in_the_same_server(store: Store, clock: FakeClock) -> None:
    job = await succeeded(store, clock, audio_id="track")
    reused = await succeeded(store, clock, member=BOB, audio_id="track")
    other_mode = await succeeded(store, clock, audio_id="track", mode=Mode.SPLIT_STEM)
    other_server = await succeeded(store, clock, guild=OTHER_GUILD, audio_id="track")
    other_track = await succeeded(store, clock, audio_id="another")
    for each in (job, reused, other_mode, other_server, other_track):
        await store.keeps.request(each, requested_by=ANA, upload_limit=1000)

    assert [k.job_id for k in await store.keeps.same_track(job)] == [reused.id]
    assert [k.job_id for k in await store.keeps.same_track(reused)] == [job.id]


async def test_the_messages_other_keeps_recorded_in_a_channel(store: Store, clock: FakeClock) -> None:
    mine, other, elsewhere = [await succeeded(store, clock) for _ in range(3)]
    for job, channel in ((mine, 5), (other, 5), (elsewhere, 6)):
        await store.keeps.request(job, requested_by=ANA, upload_limit=1000)
        keep = await store.keeps.get(job.id)
        assert keep is not None
        await store.keeps.apply(keep.placed(KeepPlace.DM, channel_id=channel, anchor_message_id=None))
        await store.keeps.start(job.id, [(0, "Vocals.mp3"), (1, "Instrumental.mp3")])
    await store.keeps.posted(mine.id, [0], 100)
    await store.keeps.posted(other.id, [0], 200)
    await store.keeps.skipped(other.id, 1, "an HTML page")
    await store.keeps.noted(other.id, [1], 201)
    await store.keeps.posted(elsewhere.id, [0], 300)

    assert await store.keeps.messages_of_others(mine.id, 5) == {200, 201}


@pytest.mark.parametrize(
    ("setting", "limit", "queued"),
    [
        (KeepStems.ALWAYS, 25 * 1024 * 1024, True),
        (KeepStems.ALWAYS, None, True),
        (KeepStems.BUTTON, None, False),
        (KeepStems.OFF, None, False),
    ],
)
async def test_a_delivered_success_is_queued_where_the_server_keeps_always(
    store: Store, clock: FakeClock, setting: KeepStems, limit: int | None, queued: bool
) -> None:
    await store.economy.update_settings(GUILD, {"keep_stems": setting}, actor_id=MOD)
    job = await succeeded(store, clock, filesize_limit=limit)
    assert await store.keeps.get(job.id) is None  # not before it is delivered

    await store.jobs.record_delivery(job.id, Delivery.DELIVERED, DeliveryVia.INTERACTION)

    keep = await store.keeps.get(job.id)
    if not queued:
        assert keep is None
        return
    assert keep is not None and keep.state is KeepState.PENDING and keep.requested_by is None
    assert keep.upload_limit == (limit or DEFAULT_UPLOAD_LIMIT)


async def test_a_failed_split_is_not_queued_even_where_the_server_keeps_always(
    store: Store, clock: FakeClock
) -> None:
    await store.economy.update_settings(GUILD, {"keep_stems": KeepStems.ALWAYS}, actor_id=MOD)
    n = next(_serial)
    reserved = (
        await store.reservations.reserve(
            NewJob(GUILD, 1, ANA, Mode.SEPARATE_VOCAL, "task", f"audio-{n}", 1, f"tok-{n}")
        )
    ).job
    assert reserved is not None
    await store.reservations.settle(reserved.id, succeeded=False)

    await store.jobs.record_delivery(reserved.id, Delivery.DELIVERED, DeliveryVia.INTERACTION)

    assert await store.keeps.get(reserved.id) is None


async def test_the_keepers_query_reads_the_partial_index_not_the_table(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "keeps.db"
    with sqlite3.connect(path) as conn:
        plan = " / ".join(
            row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN SELECT * FROM keeps WHERE {_TO_DO}")
        )
    assert "USING INDEX keeps_to_do" in plan and "SCAN keeps" not in plan.replace(
        "SCAN keeps USING INDEX", ""
    ), plan
