"""Keeping results in Discord (`bot.keeping`), with real components: SQLite on tmp_path, the API
simulator serving the stem files, the real stem downloader, and a `RecordingPoster` as Discord.

Who may keep a result and when it is refused, how files are packed per message, what Discord's 413
does, bad downloads, the durable worker stopped or failing at every step (each stem posted once,
in one thread), twins, the `keep_stems` setting, reminders, the temporary folder and the bound on
transfers at once. The worker is driven by `keeper.run_due()`, on a settable clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from bot.downloads import Downloaded, StemDownloader, format_size
from bot.errors import CannotAttachFiles, KeepingOff, LinksExpired, NothingToKeep, NotYourJob, UnknownJob
from bot.invite import PERMISSIONS
from bot.keeping import FILES_PER_MESSAGE, RETRY_CAP, Keeper, Upload, fits_in_one_message
from bot.models import (
    CreditPolicy,
    Delivery,
    DeliveryVia,
    Job,
    JobState,
    Keep,
    KeepPlace,
    KeepState,
    KeepStems,
    KeptStem,
    NewJob,
    StemKeepState,
    StemLink,
)
from bot.product import LINK_LIFETIME, Mode, stem_name
from bot.quota import Actor
from bot.sandbox import STEMS_2, STEMS_12
from bot.services import Services
from bot.store import Store
from testing.provider_api import SeparationApiSimulator, stem_sha256
from tests.unit_helpers import FakeClock
from tests.wiring import RecordingDeliverer, RecordingPoster, make_services, make_settings

GUILD, CHANNEL, OTHER_CHANNEL = 10, 20, 30
ANA, BOB, MODERATOR = 21, 22, 90
MIB = 1024 * 1024
STEM_BYTES = 2_000
ATTACH_FILES = PERMISSIONS["Attach Files"]
TWELVE = [f"{stem_name(key)}.mp3" for key in STEMS_12]
_serial = itertools.count(1)


class Transfers:
    """Counts downloads and uploads in progress at once, across the downloader and the poster;
    each is made to last a little, so that any two the keeper lets overlap do."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    @contextlib.asynccontextmanager
    async def one(self) -> AsyncIterator[None]:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.005)
            yield
        finally:
            self.now -= 1


class CountingDownloader:
    def __init__(self, inner: StemDownloader, transfers: Transfers) -> None:
        self.inner = inner
        self.transfers = transfers

    async def __call__(self, url: str, dest: Path, max_bytes: int) -> Downloaded:
        async with self.transfers.one():
            return await self.inner(url, dest, max_bytes)


class CountingPoster(RecordingPoster):
    def __init__(self, transfers: Transfers) -> None:
        super().__init__()
        self.transfers = transfers

    async def post_files(
        self, job: Job, keep: Keep, files: Sequence[Upload], *, first: bool, key: str
    ) -> int:
        async with self.transfers.one():
            return await super().post_files(job, keep, files, first=first, key=key)


@dataclass
class World:
    """The bot's services over a database file, with the simulator serving stems and a recording
    Discord; `restart` builds new services over the same file, as a new process would."""

    tmp: Path
    sim: SeparationApiSimulator
    session: aiohttp.ClientSession
    clock: FakeClock
    poster: RecordingPoster
    concurrency: int = 2
    transfers: Transfers | None = None
    store: Store = None  # type: ignore[assignment]
    services: Services = None  # type: ignore[assignment]
    downloader: StemDownloader = None  # type: ignore[assignment]

    @property
    def keeper(self) -> Keeper:
        return self.services.keeper

    @property
    def folder(self) -> Path:
        return self.services.settings.keep_folder

    async def open(self) -> None:
        path = self.tmp / "data" / "stembot.db"
        self.store = await Store.open(
            path, CreditPolicy(default_credits=10_000, jobs_per_member=50), self.clock
        )
        self.downloader = StemDownloader(lambda: "127.0.0.1", timeout=5.0, backoff=0.001)
        download = (
            self.downloader if self.transfers is None else CountingDownloader(self.downloader, self.transfers)
        )
        settings = make_settings(api_url=self.sim.base_url, database=path, keep_concurrency=self.concurrency)
        self.services = make_services(
            self.store,
            self.session,
            settings,
            keep_poster=self.poster,
            download=download,
            keep_retry_base=1.0,
            clock=self.clock,
        )

    async def close(self) -> None:
        await self.services.stop()
        await self.downloader.close()
        await self.store.close()

    async def restart(self) -> None:
        await self.close()
        await self.open()


@pytest.fixture
async def sim() -> AsyncIterator[SeparationApiSimulator]:
    async with SeparationApiSimulator(stem_files=True, stem_bytes=STEM_BYTES, processing_seconds=0.05) as sim:
        yield sim


async def open_world(tmp_path: Path, sim: SeparationApiSimulator, **kwargs: object) -> World:
    world = World(tmp_path, sim, aiohttp.ClientSession(), FakeClock("2026-11-02 12:00"), **kwargs)  # type: ignore[arg-type]
    await world.open()
    return world


@pytest.fixture
async def world(tmp_path: Path, sim: SeparationApiSimulator) -> AsyncIterator[World]:
    opened = await open_world(tmp_path, sim, poster=RecordingPoster())
    yield opened
    await opened.close()
    await opened.session.close()


# -- making results ----------------------------------------------------------------------------


async def delivered(
    world: World,
    *,
    member: int = ANA,
    stems: Sequence[str] = STEMS_12,
    audio_id: str | None = None,
    via: DeliveryVia = DeliveryVia.INTERACTION,
    filesize_limit: int | None = 10 * MIB,
    app_permissions: int | None = None,
    links_left: float = LINK_LIFETIME.total_seconds(),
    message_ids: Sequence[int] = (),
    deliver: bool = True,
    channel: int = CHANNEL,
) -> Job:
    """A successful split of `stems` whose result was posted (`message_ids`: its parts) in
    `channel`."""
    mode = Mode.SPLIT_STEM if len(stems) > 2 else Mode.SEPARATE_VOCAL
    n = next(_serial)
    new = NewJob(
        GUILD, channel, member, mode, "task", audio_id or f"audio-{n}", mode.cost, f"tok-{n}",
        app_permissions=app_permissions, filesize_limit=filesize_limit,
    )  # fmt: skip
    job = (await world.store.reservations.reserve(new)).job
    assert job is not None
    if job.state is not JobState.SUCCEEDED:  # a reused result is finished at once
        links = [StemLink(key, world.sim.stem_url(f"task{job.id}", key)) for key in stems]
        settled = await world.store.reservations.settle(
            job.id, succeeded=True, stems=links, links_expire_at=world.clock() + links_left
        )
        assert settled is not None
    if deliver:
        for part, message_id in enumerate(message_ids or [500_000 + job.id * 10]):
            where = 800_000 + member if via is DeliveryVia.DM else channel
            await world.store.deliveries.record(job.id, via, part, channel_id=where, message_id=message_id)
        await world.store.jobs.record_delivery(job.id, Delivery.DELIVERED, via)
    found = await world.store.jobs.get(job.id)
    assert found is not None
    return found


async def ask(world: World, job: Job, member: int = ANA, **kwargs: object) -> Keep:
    request = await world.keeper.request(GUILD, Actor(member), job.id, channel_id=CHANNEL, **kwargs)
    assert request.started
    return request.keep


async def keep_to_the_end(world: World, job_id: int, rounds: int = 15) -> Keep:
    """Run the worker, moving the clock past every wait, until the keep is done (kept and shown
    on the result, or failed). Nothing may be left in the download folder then."""
    for _ in range(rounds):
        await world.keeper.run_due()
        keep = await world.store.keeps.get(job_id)
        assert keep is not None
        if keep.state is KeepState.FAILED or (keep.state is KeepState.KEPT and keep.marked):
            assert not world.folder.exists() or list(world.folder.iterdir()) == []
            return keep
        world.clock.advance(RETRY_CAP + 1)
    raise AssertionError(f"job {job_id}: not kept after {rounds} rounds: {keep}")


async def kept(world: World, job: Job, member: int = ANA) -> Keep:
    await ask(world, job, member)
    keep = await keep_to_the_end(world, job.id)
    assert keep.state is KeepState.KEPT, keep
    return keep


def served_name(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[1]


def filenames(job: Job) -> list[str]:
    return [f"{stem_name(stem.key)}.mp3" for stem in job.stems]


def per_message(poster: RecordingPoster) -> list[int]:
    return [len(message.files) for message in poster.messages if message.files]


def notes(poster: RecordingPoster) -> list[str]:
    return [message.content for message in poster.messages if not message.files]


async def stem_states(world: World, job: Job) -> dict[str, KeptStem]:
    return {stem.filename: stem for stem in await world.store.keeps.stems(job.id)}


# -- asking --------------------------------------------------------------------------------------


async def test_a_member_keeps_their_own_result_in_a_thread_on_its_first_message(world: World) -> None:
    job = await delivered(world, message_ids=[700, 701])
    request = await world.keeper.request(GUILD, Actor(ANA), job.id, channel_id=CHANNEL)

    assert request.started and request.keep.state is KeepState.PENDING
    assert request.keep.requested_by == ANA and request.keep.upload_limit == 10 * MIB
    keep = await keep_to_the_end(world, job.id)

    assert keep.state is KeepState.KEPT and keep.marked
    assert keep.place is KeepPlace.THREAD and keep.anchor_message_id == 700
    assert world.poster.threads == {700: keep.channel_id}
    assert sorted(world.poster.files()) == sorted(TWELVE)
    assert {m.channel_id for m in world.poster.messages} == {keep.channel_id}
    assert world.poster.messages[0].content == "first" and notes(world.poster) == []
    assert world.poster.shown_kept == [(job.id, str(keep.channel_id))]
    served = {f"{stem_name(stem.key)}.mp3": served_name(stem.url) for stem in job.stems}
    for message in world.poster.messages:
        for filename, sha256, size in message.files:
            assert size == STEM_BYTES
            assert sha256 == stem_sha256(served[filename], STEM_BYTES), filename
    assert all(
        s.state is StemKeepState.POSTED and s.message_id for s in await world.store.keeps.stems(job.id)
    )
    again = await world.keeper.request(GUILD, Actor(ANA), job.id, channel_id=CHANNEL)
    assert not again.started and again.keep.state is KeepState.KEPT  # pressing again points there


async def test_another_member_is_refused_and_a_moderator_may_keep_it(world: World) -> None:
    job = await delivered(world)

    with pytest.raises(NotYourJob):
        await world.keeper.request(GUILD, Actor(BOB), job.id, channel_id=CHANNEL)
    assert await world.store.keeps.get(job.id) is None
    moderator = await world.keeper.request(
        GUILD, Actor(MODERATOR, manage_guild=True), job.id, channel_id=CHANNEL
    )

    assert moderator.started and moderator.keep.requested_by == MODERATOR


async def test_keeping_is_refused_where_the_server_turned_it_off(world: World) -> None:
    job = await delivered(world)
    await world.store.economy.update_settings(GUILD, {"keep_stems": KeepStems.OFF}, actor_id=MODERATOR)

    with pytest.raises(KeepingOff):
        await world.keeper.request(GUILD, Actor(ANA), job.id, channel_id=CHANNEL)
    assert await world.store.keeps.get(job.id) is None
    assert await world.keeper.run_due() == 0


@pytest.mark.parametrize("outcome", ["unfinished", "failed", "cancelled", "not delivered"])
async def test_a_result_without_stems_to_keep_is_refused(world: World, outcome: str) -> None:
    if outcome == "not delivered":
        job = await delivered(world, deliver=False)
    else:
        n = next(_serial)
        new = NewJob(GUILD, CHANNEL, ANA, Mode.SPLIT_STEM, "task", f"audio-{n}", 1, f"tok-{n}")
        reserved = (await world.store.reservations.reserve(new)).job
        assert reserved is not None
        job = reserved
        if outcome == "failed":
            await world.store.reservations.settle(job.id, succeeded=False)
        elif outcome == "cancelled":
            await world.store.reservations.cancel(job.id)

    with pytest.raises(NothingToKeep) as refused:
        await world.keeper.request(GUILD, Actor(ANA), job.id, channel_id=CHANNEL)
    expected = {
        "unfinished": "not finished",
        "failed": "didn't work",
        "cancelled": "cancelled",
        "not delivered": "not posted yet",
    }[outcome]
    assert expected in str(refused.value)
    assert await world.store.keeps.get(job.id) is None


async def test_expired_links_are_said_plainly_and_nothing_is_asked(world: World) -> None:
    job = await delivered(world, links_left=3600)
    world.clock.advance(3601)

    with pytest.raises(LinksExpired):
        await world.keeper.request(GUILD, Actor(ANA), job.id, channel_id=CHANNEL)
    assert await world.store.keeps.get(job.id) is None


async def test_without_attach_files_the_member_is_told_and_nothing_changes(world: World) -> None:
    asked_here = await delivered(world, app_permissions=ATTACH_FILES)
    with pytest.raises(CannotAttachFiles):  # Discord's word with this ask wins in the job's channel
        await world.keeper.request(GUILD, Actor(ANA), asked_here.id, channel_id=CHANNEL, attach_here=False)
    lacking = await delivered(world, app_permissions=PERMISSIONS["Send Messages"])
    with pytest.raises(CannotAttachFiles):  # asked elsewhere: what Discord said at the /split
        await world.keeper.request(GUILD, Actor(ANA), lacking.id, channel_id=OTHER_CHANNEL)
    assert (
        await world.store.keeps.get(asked_here.id) is None and await world.store.keeps.get(lacking.id) is None
    )

    allowed = await delivered(world, app_permissions=ATTACH_FILES | PERMISSIONS["Send Messages"])
    elsewhere = await world.keeper.request(
        GUILD, Actor(ANA), allowed.id, channel_id=OTHER_CHANNEL, attach_here=False
    )
    in_dm = await delivered(world, via=DeliveryVia.DM, app_permissions=0)
    dm = await world.keeper.request(GUILD, Actor(ANA), in_dm.id, channel_id=CHANNEL, attach_here=False)
    assert elsewhere.started and dm.started  # the DM is the member's: no channel permission counts


async def test_two_presses_at_once_make_one_keep_and_one_thread(world: World) -> None:
    job = await delivered(world)

    first, second = await asyncio.gather(
        world.keeper.request(GUILD, Actor(ANA), job.id, channel_id=CHANNEL),
        world.keeper.request(GUILD, Actor(MODERATOR, manage_guild=True), job.id, channel_id=CHANNEL),
    )
    assert sorted([first.started, second.started]) == [False, True]
    await asyncio.gather(world.keeper.run_due(), world.keeper.run_due())
    keep = await keep_to_the_end(world, job.id)

    assert keep.state is KeepState.KEPT
    assert len(world.poster.threads) == 1 and world.poster.calls["thread"] == 1
    assert sorted(world.poster.files()) == sorted(TWELVE)


async def test_a_thread_the_bot_may_not_post_in_gives_way_to_replies(world: World) -> None:
    world.poster.refuse_in_threads = True
    job = await delivered(world, stems=STEMS_2)

    keep = await kept(world, job)

    assert keep.place is KeepPlace.REPLIES and keep.channel_id == CHANNEL
    assert sorted(world.poster.files()) == ["Instrumental.mp3", "Vocals.mp3"]
    assert all(message.reply_to == keep.anchor_message_id for message in world.poster.messages)


async def test_a_failed_keep_asked_again_starts_over_and_posts_nothing_twice(world: World) -> None:
    job = await delivered(world, filesize_limit=3 * STEM_BYTES)
    await ask(world, job)
    world.poster.refuse_uploads = True
    world.poster.fail_before = []
    await world.keeper.run_due()  # refused in the thread: replies are tried instead
    await world.keeper.run_due()  # refused there too: the keep fails
    world.poster.refuse_uploads = False

    failed = await world.store.keeps.get(job.id)
    assert failed is not None and failed.state is KeepState.FAILED
    assert failed.failure == "no permission to attach files" and world.poster.files() == []
    again = await world.keeper.request(GUILD, Actor(ANA), job.id, channel_id=CHANNEL)
    assert again.started and again.keep.state is KeepState.PENDING and again.keep.failure is None
    assert again.last_failure == "no permission to attach files"
    keep = await keep_to_the_end(world, job.id)

    assert keep.state is KeepState.KEPT and keep.marked
    assert sorted(world.poster.files()) == sorted(TWELVE)


async def test_a_failed_keep_with_stems_posted_resumes_without_posting_them_again(world: World) -> None:
    job = await delivered(world, filesize_limit=3 * STEM_BYTES)
    await ask(world, job)
    world.poster.fail_before = ["files#3"]
    for _ in range(20):  # Discord keeps failing the third upload until the keep gives up
        await world.keeper.run_due()
        keep = await world.store.keeps.get(job.id)
        assert keep is not None
        if keep.state is KeepState.FAILED:
            break
        world.poster.fail_before.append(f"files#{world.poster.calls['files'] + 1}")
        world.clock.advance(RETRY_CAP + 1)
    assert keep.state is KeepState.FAILED
    posted_before = world.poster.files()
    assert len(posted_before) == 6

    world.poster.fail_before = []
    await ask(world, job)
    keep = await keep_to_the_end(world, job.id)

    assert keep.state is KeepState.KEPT
    assert sorted(world.poster.files()) == sorted(TWELVE)
    assert len(world.poster.threads) == 1


async def test_in_a_dm_only_the_members_own_results_can_be_kept(world: World) -> None:
    job = await delivered(world, via=DeliveryVia.DM)

    with pytest.raises(UnknownJob):
        await world.keeper.request(None, Actor(BOB, manage_guild=True), job.id)
    assert await world.store.keeps.get(job.id) is None
    own = await world.keeper.request(None, Actor(ANA), job.id)
    keep = await keep_to_the_end(world, job.id)

    assert own.started and keep.place is KeepPlace.DM and keep.channel_id == 800_000 + ANA
    assert world.poster.threads == {} and sorted(world.poster.files()) == sorted(TWELVE)


async def test_where_no_thread_can_be_opened_the_files_are_replies_to_the_result(world: World) -> None:
    job = await delivered(world, message_ids=[600])
    world.poster.threads_unavailable = True
    keep = await kept(world, job)

    assert keep.place is KeepPlace.REPLIES and keep.channel_id == CHANNEL
    assert {m.reply_to for m in world.poster.messages} == {600}
    assert sorted(world.poster.files()) == sorted(TWELVE)


# -- packing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stem_bytes", "limit", "expected"),
    [
        (3 * MIB, 10 * MIB, [3, 3, 3, 3]),  # an unboosted server
        (3_000, 10_240, [3, 3, 3, 3]),  # the same, scaled down
        (3_000, 25_600, [8, 4]),  # a server with a 25 MB limit, scaled down
        (100, 10 * MIB, [10, 2]),  # tiny stems: Discord's 10 files per message
    ],
)
async def test_stems_are_packed_per_message_under_the_upload_limit(
    world: World, stem_bytes: int, limit: int, expected: list[int]
) -> None:
    world.sim.stem_bytes = stem_bytes
    job = await delivered(world, filesize_limit=limit)
    await kept(world, job)

    assert per_message(world.poster) == expected
    assert world.poster.files() == TWELVE  # in the job's order
    assert all(sum(size for _, _, size in m.files) <= limit for m in world.poster.messages)


async def test_the_limit_discord_reported_with_the_ask_counts_when_the_job_has_none(world: World) -> None:
    job = await delivered(world, filesize_limit=None)
    request = await world.keeper.request(
        GUILD, Actor(ANA), job.id, channel_id=CHANNEL, upload_limit=4 * STEM_BYTES
    )
    await keep_to_the_end(world, job.id)

    assert request.keep.upload_limit == 4 * STEM_BYTES
    assert per_message(world.poster) == [4, 4, 4]


async def test_a_stem_over_the_upload_limit_stays_a_link_with_its_size_in_the_note(world: World) -> None:
    world.sim.stem_sizes["Bass"] = MIB + MIB // 2
    job = await delivered(world, filesize_limit=MIB)
    keep = await kept(world, job)

    assert "Bass.mp3" not in world.poster.files()
    assert sorted(world.poster.files()) == sorted(name for name in TWELVE if name != "Bass.mp3")
    [note] = notes(world.poster)
    assert "Bass.mp3" in note and format_size(MIB + MIB // 2) == "1.5 MB" and "1.5 MB" in note
    bass = (await stem_states(world, job))["Bass.mp3"]
    assert bass.state is StemKeepState.SKIPPED and bass.size == MIB + MIB // 2 and bass.message_id is not None
    assert keep.marked


@pytest.mark.parametrize(
    ("sizes", "fits"),
    [
        ([1000], True),  # exactly the limit
        ([1001], False),
        ([500, 500], True),
        ([500, 501], False),
        ([1] * FILES_PER_MESSAGE, True),
        ([1] * (FILES_PER_MESSAGE + 1), False),
        ([], True),
    ],
)
def test_what_fits_in_one_message(sizes: list[int], fits: bool) -> None:
    assert fits_in_one_message(sizes, 1000) is fits


# -- Discord answering 413 -------------------------------------------------------------------------


async def test_a_413_below_the_limit_packs_smaller_and_posts_every_stem_once(world: World) -> None:
    job = await delivered(world, filesize_limit=6 * STEM_BYTES)
    world.poster.accepts_up_to = 2 * STEM_BYTES
    keep = await kept(world, job)

    assert sorted(world.poster.files()) == sorted(TWELVE)
    assert all(sum(size for _, _, size in m.files) <= 2 * STEM_BYTES for m in world.poster.messages)
    assert keep.upload_limit < 3 * STEM_BYTES
    assert notes(world.poster) == []


async def test_a_single_file_discord_refuses_stays_a_link_and_lowers_the_limit(world: World) -> None:
    world.sim.stem_sizes["Bass"] = 5 * STEM_BYTES
    job = await delivered(world, filesize_limit=10 * STEM_BYTES)
    world.poster.accepts_up_to = 4 * STEM_BYTES
    keep = await kept(world, job)

    assert sorted(world.poster.files()) == sorted(name for name in TWELVE if name != "Bass.mp3")
    bass = (await stem_states(world, job))["Bass.mp3"]
    assert bass.state is StemKeepState.SKIPPED and bass.skipped_why == "larger than Discord accepts here"
    assert bass.size == 5 * STEM_BYTES
    assert keep.upload_limit < 5 * STEM_BYTES
    [note] = notes(world.poster)
    assert "Bass.mp3" in note


# -- downloads -------------------------------------------------------------------------------------


async def test_an_html_page_served_as_a_stem_is_not_posted_but_noted(world: World) -> None:
    world.sim.html_stems.add("Drums")
    job = await delivered(world)
    await kept(world, job)

    assert "Drums.mp3" not in world.poster.files() and len(world.poster.files()) == 11
    [note] = notes(world.poster)
    assert "Drums.mp3" in note and "an HTML page" in note


async def test_a_stem_whose_server_fails_then_answers_is_posted(world: World) -> None:
    world.sim.failing_stems["Guitar"] = 2
    job = await delivered(world)
    await kept(world, job)

    guitar = [status for name, status in world.sim.file_requests if name.endswith("_Guitar.mp3")]
    assert guitar == [503, 503, 200]
    assert sorted(world.poster.files()) == sorted(TWELVE) and notes(world.poster) == []


async def test_a_stem_that_keeps_failing_stays_a_link(world: World) -> None:
    world.sim.failing_stems["Guitar"] = 1000
    job = await delivered(world)
    keep = await kept(world, job)

    assert "Guitar.mp3" not in world.poster.files() and len(world.poster.files()) == 11
    [note] = notes(world.poster)
    assert "Guitar.mp3" in note and "HTTP 503" in note
    assert keep.marked


# -- durable and exactly once ----------------------------------------------------------------------

STEPS = ["thread", "files#1", "files#2", "files#4", "note", "mark"]


async def a_result_with_every_step(world: World) -> Job:
    """Twelve stems, three per message (four uploads), one an HTML page (a note)."""
    world.sim.html_stems.add("Drums")
    return await delivered(world, filesize_limit=3 * STEM_BYTES, message_ids=[4242])


def assert_kept_once(world: World, keep: Keep) -> None:
    assert keep.state is KeepState.KEPT and keep.marked
    assert Counter(world.poster.files()) == Counter(name for name in TWELVE if name != "Drums.mp3")
    assert len(notes(world.poster)) == 1 and "Drums.mp3" in notes(world.poster)[0]
    assert world.poster.threads == {4242: 4242} and keep.channel_id == 4242
    assert {m.channel_id for m in world.poster.messages} == {4242}


@pytest.mark.parametrize("knob", ["fail_before", "lose_answer"])
@pytest.mark.parametrize("step", STEPS)
async def test_discord_failing_at_any_step_posts_every_stem_once(world: World, step: str, knob: str) -> None:
    job = await a_result_with_every_step(world)
    getattr(world.poster, knob).append(step)
    await ask(world, job)
    await world.keeper.run_due()

    stalled = await world.store.keeps.get(job.id)
    assert stalled is not None and stalled.attempts == 1 and stalled.retry_at is not None
    assert getattr(world.poster, knob) == []  # the fault happened
    keep = await keep_to_the_end(world, job.id)

    assert_kept_once(world, keep)


@pytest.mark.parametrize("knob", ["hang_before", "hang_after"])
@pytest.mark.parametrize("step", STEPS)
async def test_a_restart_at_any_step_posts_every_stem_once(world: World, step: str, knob: str) -> None:
    job = await a_result_with_every_step(world)
    getattr(world.poster, knob).append(step)
    await ask(world, job)
    working = asyncio.create_task(world.keeper.run_due())
    await asyncio.wait_for(world.poster.hanging.wait(), 5)

    await world.restart()  # the bot stops mid-way; a new process opens the same database
    await working
    keep = await keep_to_the_end(world, job.id)

    assert_kept_once(world, keep)


async def test_a_restart_during_a_download_removes_its_unfinished_file(world: World) -> None:
    world.sim.stem_bytes = 256 * 1024
    job = await delivered(world, filesize_limit=3 * 256 * 1024)
    world.poster.hang_after.append("files#1")
    await ask(world, job)
    working = asyncio.create_task(world.keeper.run_due())
    await asyncio.wait_for(world.poster.hanging.wait(), 5)
    leftover = world.folder / f"{job.id}-11.part"
    leftover.write_bytes(b"ID3 half a file")  # as a crash mid-download leaves it

    await world.restart()
    await working
    world.keeper.start()
    assert not leftover.exists()
    keep = await keep_to_the_end(world, job.id)

    assert keep.state is KeepState.KEPT and sorted(world.poster.files()) == sorted(TWELVE)


# -- twins -----------------------------------------------------------------------------------------


async def test_the_same_stems_kept_here_are_linked_not_uploaded_again(world: World) -> None:
    first = await delivered(world, audio_id="same-track")
    first_keep = await kept(world, first)
    uploads = world.poster.calls["files"]
    second = await delivered(world, member=BOB, audio_id="same-track")

    request = await world.keeper.request(GUILD, Actor(BOB), second.id, channel_id=CHANNEL)
    keep = await keep_to_the_end(world, second.id)

    assert request.keep.state is KeepState.KEPT and request.keep.linked_to == first.id
    assert keep.marked and keep.channel_id == first_keep.channel_id and keep.place is KeepPlace.THREAD
    assert world.poster.calls["files"] == uploads and world.poster.files() == TWELVE
    assert (second.id, str(first_keep.channel_id)) in world.poster.shown_kept


async def test_a_twin_still_being_kept_is_waited_for_then_linked(world: World) -> None:
    first = await delivered(world, audio_id="same-track")
    second = await delivered(world, member=BOB, audio_id="same-track")
    world.poster.hang_before.append("files#1")
    await ask(world, first)
    await ask(world, second, BOB)
    working = asyncio.create_task(world.keeper.run_due())
    await asyncio.wait_for(world.poster.hanging.wait(), 5)
    await asyncio.sleep(0.05)

    waiting = await world.store.keeps.get(second.id)
    assert waiting is not None and waiting.state is KeepState.PENDING and waiting.place is None
    assert waiting.retry_at is not None and waiting.attempts == 0
    world.poster.release.set()
    await working
    keep = await keep_to_the_end(world, second.id)

    first_keep = await world.store.keeps.get(first.id)
    assert first_keep is not None and first_keep.state is KeepState.KEPT
    assert keep.linked_to == first.id and keep.channel_id == first_keep.channel_id
    assert sorted(world.poster.files()) == sorted(TWELVE) and len(world.poster.threads) == 1


async def test_a_twin_asked_first_is_waited_for_whichever_job_is_older(world: World) -> None:
    older = await delivered(world, audio_id="same-track")
    younger = await delivered(world, member=BOB, audio_id="same-track")
    world.poster.hang_before.append("files#1")
    await ask(world, younger, BOB)  # the younger job's keep is asked for first
    world.clock.advance(1)
    await ask(world, older)
    working = asyncio.create_task(world.keeper.run_due())
    await asyncio.wait_for(world.poster.hanging.wait(), 5)
    await asyncio.sleep(0.05)

    waiting = await world.store.keeps.get(older.id)
    assert waiting is not None and waiting.state is KeepState.PENDING and waiting.place is None
    world.poster.release.set()
    await working
    keep = await keep_to_the_end(world, older.id)

    assert keep.linked_to == younger.id and len(world.poster.threads) == 1
    assert sorted(world.poster.files()) == sorted(TWELVE)


async def test_stems_kept_in_a_members_dm_are_posted_again_in_the_server(world: World) -> None:
    in_dm = await delivered(world, audio_id="same-track", via=DeliveryVia.DM)
    dm_keep = await kept(world, in_dm)
    in_channel = await delivered(world, member=BOB, audio_id="same-track")

    keep = await kept(world, in_channel, BOB)

    assert dm_keep.place is KeepPlace.DM
    assert keep.linked_to is None and keep.place is KeepPlace.THREAD and keep.channel_id != dm_keep.channel_id
    assert Counter(world.poster.files()) == Counter(TWELVE * 2)


async def test_stems_kept_in_another_channel_are_kept_again_here_not_linked(world: World) -> None:
    # The first keep's thread is in a channel the second member may not see (staff-only, say):
    # a link would reveal it and leave nothing where the second result is.
    staff = await delivered(world, audio_id="same-track", channel=OTHER_CHANNEL)
    staff_keep = await kept(world, staff)
    here = await delivered(world, member=BOB, audio_id="same-track")

    request = await world.keeper.request(GUILD, Actor(BOB), here.id, channel_id=CHANNEL)
    keep = await keep_to_the_end(world, here.id)

    assert request.keep.state is KeepState.PENDING and request.keep.linked_to is None
    assert keep.linked_to is None and keep.place is KeepPlace.THREAD
    assert keep.channel_id != staff_keep.channel_id and keep.anchor_message_id == here_anchor(here)
    assert Counter(world.poster.files()) == Counter(TWELVE * 2) and len(world.poster.threads) == 2
    assert (here.id, str(staff_keep.channel_id)) not in world.poster.shown_kept


async def test_a_twin_at_work_in_another_channel_is_not_waited_for(world: World) -> None:
    staff = await delivered(world, audio_id="same-track", channel=OTHER_CHANNEL)
    here = await delivered(world, member=BOB, audio_id="same-track")
    world.poster.hang_before.append("files#1")
    await ask(world, staff)
    await ask(world, here, BOB)
    working = asyncio.create_task(world.keeper.run_due())
    await asyncio.wait_for(world.poster.hanging.wait(), 5)
    await asyncio.sleep(0.05)
    world.poster.release.set()
    await working

    keep = await keep_to_the_end(world, here.id)
    staff_keep = await world.store.keeps.get(staff.id)
    assert staff_keep is not None and staff_keep.state is KeepState.KEPT
    assert keep.linked_to is None and keep.channel_id != staff_keep.channel_id
    assert keep.attempts == 0 and Counter(world.poster.files()) == Counter(TWELVE * 2)


def here_anchor(job: Job) -> int:
    """The message id `delivered` gives a result of one part."""
    return 500_000 + job.id * 10


# -- the server setting ----------------------------------------------------------------------------


async def test_always_keeps_a_delivered_success_without_a_request(world: World) -> None:
    await world.store.economy.update_settings(GUILD, {"keep_stems": KeepStems.ALWAYS}, actor_id=MODERATOR)
    job = await delivered(world, stems=STEMS_2)

    queued = await world.store.keeps.get(job.id)
    assert queued is not None and queued.requested_by is None and queued.upload_limit == 10 * MIB
    keep = await keep_to_the_end(world, job.id)

    assert keep.state is KeepState.KEPT and sorted(world.poster.files()) == ["Instrumental.mp3", "Vocals.mp3"]


async def test_button_keeps_nothing_until_asked(world: World) -> None:
    job = await delivered(world, stems=STEMS_2)

    assert await world.store.keeps.get(job.id) is None
    assert await world.keeper.run_due() == 0 and world.poster.messages == []


async def test_always_through_the_runner_keeps_a_split_once_it_is_delivered(
    tmp_path: Path, sim: SeparationApiSimulator
) -> None:
    path = tmp_path / "stembot.db"
    store = await Store.open(path)
    poster = RecordingPoster()
    async with aiohttp.ClientSession() as session:
        settings = make_settings(api_url=sim.base_url, database=path, poll_interval=0.05)
        downloader = StemDownloader(lambda: "127.0.0.1", backoff=0.001)
        services = make_services(
            store, session, settings, keep_poster=poster, download=downloader,
            deliverer=RecordingDeliverer(record_in=store),
        )  # fmt: skip
        await store.economy.update_settings(GUILD, {"keep_stems": KeepStems.ALWAYS}, actor_id=MODERATOR)
        await services.start()
        try:
            accepted = await services.split.reserve(
                guild_id=GUILD, channel_id=CHANNEL, user_id=ANA, mode=Mode.SEPARATE_VOCAL,
                task_id="t" * 10, audio_id="a" * 10, filesize_limit=10 * MIB,
            )  # fmt: skip
            assert accepted.job is not None
            services.split.start(accepted.job)
            async with asyncio.timeout(10):
                while not poster.shown_kept:
                    await asyncio.sleep(0.02)
        finally:
            await services.stop()
            await downloader.close()
            await store.close()

    assert sorted(poster.files()) == ["Instrumental.mp3", "Vocals.mp3"]
    assert poster.shown_kept[0][0] == accepted.job.id


# -- reminders -------------------------------------------------------------------------------------


async def test_a_kept_result_gets_no_expiry_reminder_and_an_unkept_one_does(world: World) -> None:
    kept_job = await delivered(world, stems=STEMS_2)
    await kept(world, kept_job)
    unkept = await delivered(world, stems=STEMS_2)
    window = 24 * 3600.0
    world.clock.advance(LINK_LIFETIME.total_seconds() - window / 2)

    due = [job.id for job in await world.store.jobs.to_remind(window=window, now=world.clock())]

    assert due == [unkept.id]


async def test_a_kept_result_with_a_stem_left_as_a_link_still_gets_its_reminder(world: World) -> None:
    world.sim.html_stems.add("Drums")  # that stem stays a link, and its link expires
    job = await delivered(world)
    await kept(world, job)
    window = 24 * 3600.0
    world.clock.advance(LINK_LIFETIME.total_seconds() - window / 2)

    due = [due.id for due in await world.store.jobs.to_remind(window=window, now=world.clock())]

    assert due == [job.id]


# -- the download folder ---------------------------------------------------------------------------


async def test_the_download_folder_is_emptied_at_start_and_after_each_keep(world: World) -> None:
    world.folder.mkdir(parents=True, exist_ok=True)
    leftover = world.folder / "12-3.part"
    leftover.write_bytes(b"half a stem")
    world.keeper.start()
    assert not leftover.exists()
    await world.keeper.stop()

    world.sim.html_stems.add("Drums")
    world.sim.stem_sizes["Bass"] = 4 * STEM_BYTES
    world.poster.accepts_up_to = 3 * STEM_BYTES
    job = await delivered(world, filesize_limit=6 * STEM_BYTES)
    await kept(world, job)

    assert list(world.folder.iterdir()) == []


# -- transfers at once -----------------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_never_more_transfers_at_once_than_keep_concurrency(
    tmp_path: Path, sim: SeparationApiSimulator, concurrency: int
) -> None:
    transfers = Transfers()
    world = await open_world(
        tmp_path, sim, poster=CountingPoster(transfers), concurrency=concurrency, transfers=transfers
    )
    try:
        jobs = [await delivered(world, stems=STEMS_2 if n % 2 else STEMS_12) for n in range(4)]
        for job in jobs:
            await ask(world, job)
        await world.keeper.run_due()
        keeps = [await keep_to_the_end(world, job.id) for job in jobs]
    finally:
        await world.close()
        await world.session.close()

    assert all(keep.state is KeepState.KEPT for keep in keeps)
    assert len(world.poster.files()) == 2 * 12 + 2 * 2
    assert transfers.most == concurrency


async def test_at_most_keep_concurrency_results_are_worked_on_at_once(
    tmp_path: Path, sim: SeparationApiSimulator
) -> None:
    world = await open_world(tmp_path, sim, poster=RecordingPoster(), concurrency=1)
    try:
        jobs = [await delivered(world, stems=STEMS_2) for _ in range(3)]
        for job in jobs:
            await ask(world, job)

        taken = await world.keeper.run_due()  # one at a time: the disk holds one message's files
        keeps = [await keep_to_the_end(world, job.id) for job in jobs]
    finally:
        await world.close()
        await world.session.close()

    assert taken == 1 and all(keep.state is KeepState.KEPT for keep in keeps)


@pytest.mark.parametrize("place", [KeepPlace.DM, KeepPlace.REPLIES])
async def test_results_kept_in_the_same_place_are_not_mistaken_for_each_other(
    world: World, place: KeepPlace
) -> None:
    via = DeliveryVia.DM if place is KeepPlace.DM else DeliveryVia.INTERACTION
    world.poster.threads_unavailable = True
    world.sim.html_stems.add("Drums")
    first = await delivered(world, via=via, filesize_limit=3 * STEM_BYTES)
    await kept(world, first)
    second = await delivered(world, via=via, filesize_limit=3 * STEM_BYTES)
    uploads = world.poster.calls["files"]
    world.poster.fail_before += [f"files#{uploads + 1}", f"files#{uploads + 3}", "note"]

    keep = await kept(world, second)

    assert keep.place is place and keep.channel_id == (await world.store.keeps.get(first.id)).channel_id
    assert Counter(world.poster.files()) == Counter([name for name in TWELVE if name != "Drums.mp3"] * 2)
    assert len(notes(world.poster)) == 2


async def test_the_worker_does_not_poll_while_a_keep_that_was_due_is_at_work(world: World) -> None:
    job = await delivered(world)
    await ask(world, job)
    world.poster.fail_before.append("thread")
    await world.keeper.run_due()
    world.clock.advance(RETRY_CAP + 1)  # its retry is due, and stays in the past while it works
    world.poster.hang_before.append("files")
    rounds = 0
    to_do = world.store.keeps.to_do

    async def counted(now: float, limit: int = 100, **claims: Any) -> list[Keep]:
        nonlocal rounds
        rounds += 1
        return await to_do(now, limit, **claims)

    world.store.keeps.to_do = counted  # type: ignore[method-assign]
    world.keeper.start()
    await asyncio.wait_for(world.poster.hanging.wait(), 5)
    await asyncio.sleep(0.5)

    assert rounds <= 2  # the keep's end wakes the worker; nothing to look for meanwhile
    world.poster.release.set()
    async with asyncio.timeout(5):
        while not (keep := await world.store.keeps.get(job.id)) or not keep.marked:
            await asyncio.sleep(0.01)
    assert sorted(world.poster.files()) == sorted(TWELVE)


# -- the keep's transitions ----------------------------------------------------------------------


async def test_a_round_reads_its_keep_once_and_carries_what_each_transition_returns(world: World) -> None:
    job = await delivered(world, stems=STEMS_2)
    await ask(world, job)
    statements: list[str] = []
    await world.store.db._conn.set_trace_callback(statements.append)
    await world.keeper.run_due()  # place, post, keep and show it kept: one round
    await world.store.db._conn.set_trace_callback(None)

    keep = await world.store.keeps.get(job.id)
    assert keep is not None and keep.state is KeepState.KEPT and keep.marked
    reads = [s for s in statements if s.startswith("SELECT * FROM keeps WHERE job_id")]
    assert len(reads) == 1, reads  # where the round began; no read after each write


def test_the_keeps_transitions_say_what_comes_next() -> None:
    keep = Keep(job_id=1, guild_id=GUILD, state=KeepState.WORKING, requested_by=ANA, upload_limit=1000)

    assert keep.packed_smaller(700).after.upload_limit == 700
    assert keep.packed_smaller(700).after.packed_smaller(900).after.upload_limit == 700  # never larger
    waiting = keep.retrying(50.0, "the same stems are being kept", count=False).after
    failing = waiting.retrying(60.0, "Discord did not answer").after
    assert (waiting.attempts, failing.attempts, failing.retry_at) == (0, 1, 60.0)
    kept = failing.kept(70.0)
    assert kept.only_from == (KeepState.PENDING, KeepState.WORKING)
    assert (kept.after.state, kept.after.failure, kept.after.retry_at) == (KeepState.KEPT, None, None)
    late = kept.after.failed("too late", 80.0)  # a finished keep does not change
    assert late.after == kept.after and not late.fields
    assert kept.after.shown_kept().after.marked
