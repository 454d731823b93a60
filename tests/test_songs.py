"""Songs by title: the API client's "Get Music Generation Details" against the local simulator, and
the song book's bounded, coalesced and cached lookups over a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from bot.api import MAX_GENERATION_BYTES, ApiError, SeparationClient
from bot.metrics import Metrics
from bot.models import NewJob, Song
from bot.product import Mode
from bot.settings import DatabaseTarget, Secret
from bot.songs import MAX_CALLS, SongBook
from bot.store import Store
from testing.provider_api import Fault, SeparationApiSimulator

Databases = Callable[..., Awaitable[DatabaseTarget]]


@pytest.fixture
async def sim() -> AsyncIterator[SeparationApiSimulator]:
    async with SeparationApiSimulator(processing_seconds=0.05, callbacks=False) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: SeparationApiSimulator) -> AsyncIterator[SeparationClient]:
    async with aiohttp.ClientSession() as session:
        yield SeparationClient(session, sim.base_url, Secret("test-key"), timeout=5.0)


def lookups(sim: SeparationApiSimulator, task_id: str | None = None) -> int:
    return sum(1 for call in sim.calls if call.endpoint == "tracks" and task_id in (None, call.task_id))


def counted(metrics: Metrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value("stembot_song_lookups_total", {"outcome": outcome})
    return value or 0.0


# -- the client ------------------------------------------------------------------------------


async def test_one_track_is_read_with_title_duration_and_cover(client, sim) -> None:
    sim.add_generation("gen-1", titles=("Iron Man",))
    found = await client.tracks("gen-1", within=2.0)
    assert found is not None
    [track] = found.tracks
    assert (track.audio_id, track.title, track.duration, track.take) == (
        "gen-1-audio-1",
        "Iron Man",
        193.5,
        1,
    )
    assert track.cover_url == "https://cdn.example.test/covers/gen-1-1.jpeg"
    assert sim.calls[-1].path == "/api/v1/generate/record-info"


async def test_two_takes_with_the_same_title_are_told_apart_by_take(client, sim) -> None:
    sim.add_generation("gen-2", titles=("Midnight Drive", "Midnight Drive"))
    found = await client.tracks("gen-2", within=2.0)
    assert found is not None
    assert [(t.title, t.take, t.audio_id) for t in found.tracks] == [
        ("Midnight Drive", 1, "gen-2-audio-1"),
        ("Midnight Drive", 2, "gen-2-audio-2"),
    ]


async def test_a_finished_generation_without_tracks_has_none(client, sim) -> None:
    sim.add_generation("gen-empty", [])
    found = await client.tracks("gen-empty", within=2.0)
    assert found is not None and found.tracks == ()


async def test_an_unknown_task_is_an_error_with_code_400(client, sim) -> None:
    with pytest.raises(ApiError) as raised:
        await client.tracks("nobody-knows", within=2.0)
    assert raised.value.code == 400


@pytest.mark.parametrize(
    "status", ["PENDING", "FIRST_SUCCESS", "TEXT_SUCCESS", "GENERATE_AUDIO_FAILED", None]
)
async def test_only_a_success_answer_is_final(client, sim, status) -> None:
    sim.add_generation("gen-3", titles=("Half Done",), status=status)  # type: ignore[arg-type]
    assert await client.tracks("gen-3", within=2.0) is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # duration as a string, nulls everywhere: the track stays, without what is unusable
        (
            {"status": "SUCCESS", "response": {"sunoData": [{"id": "a1", "title": None, "duration": "198.4",
                                                              "imageUrl": None}]}},
            [("a1", None, None, None)],
        ),
        # a track without a usable id is left out; a cover that is not http(s) is dropped
        (
            {"status": "SUCCESS", "response": {"sunoData": [
                None, {"id": None}, {"id": "bad id!"}, {"title": "no id"},
                {"id": "a2", "title": 7, "duration": True, "imageUrl": "javascript:alert(1)"},
                {"id": "a3", "title": "Ok", "duration": float("nan"), "imageUrl": "ftp://x/y.jpg"},
                {"id": "a3", "title": "twice"},
            ]}},
            [("a2", None, None, None), ("a3", "Ok", None, None)],
        ),
    ],
)  # fmt: skip
async def test_malformed_answers_are_read_defensively(client, sim, data, expected) -> None:
    sim.script("tracks", Fault("body", body={"code": 200, "msg": "success", "data": data}))
    found = await client.tracks("gen-x", within=2.0)
    assert found is not None
    assert [(t.audio_id, t.title, t.duration, t.cover_url) for t in found.tracks] == expected


@pytest.mark.parametrize(
    "data",
    [
        {"status": "SUCCESS", "response": {"taskId": "x"}},  # sunoData missing
        {"status": "SUCCESS", "response": {"sunoData": "nope"}},  # not a list
        {"status": "SUCCESS", "response": None},
        {"status": "SUCCESS"},
        {"status": "SUCCESS", "response": {"sunoData": [None, {"id": "bad id!"}, {"title": "no id"}]}},
    ],
)
async def test_a_success_without_readable_tracks_is_malformed_not_final(client, sim, data) -> None:
    """Only a well-formed SUCCESS is final: read as "no tracks", a glitch would be kept for good."""
    sim.script("tracks", Fault("body", body={"code": 200, "msg": "success", "data": data}))
    with pytest.raises(ApiError):
        await client.tracks("gen-x", within=2.0)


@pytest.mark.parametrize(
    "fault",
    [
        Fault("code", status=500),
        Fault("http", status=503),
        Fault("html", status=502),
        Fault("garbage"),
        Fault("body", body={"code": 200, "data": None}),
        Fault("body", body={"code": 200, "data": ["not", "a", "dict"]}),
        Fault("disconnect"),
    ],
)
async def test_errors_and_malformed_envelopes_raise(client, sim, fault) -> None:
    sim.add_generation("gen-4", titles=("Fine",))
    sim.script("tracks", fault, fault)  # twice: the HTTP library may send a GET again once
    with pytest.raises(ApiError):
        await client.tracks("gen-4", within=2.0)


async def test_a_hung_lookup_gives_up_at_its_own_time_limit(client, sim) -> None:
    sim.add_generation("gen-5", titles=("Slow",))
    sim.script("tracks", Fault("hang", seconds=10))
    started = time.monotonic()
    with pytest.raises(ApiError):
        await client.tracks("gen-5", within=0.3)
    assert time.monotonic() - started < 2.0  # not the client's 5 s


async def test_an_answer_larger_than_the_cap_is_refused(client, sim) -> None:
    huge = [{"id": f"a{i}", "title": "x" * 1000} for i in range(MAX_GENERATION_BYTES // 1000 + 10)]
    sim.add_generation("gen-big", huge)
    with pytest.raises(ApiError, match="larger than"):
        await client.tracks("gen-big", within=5.0)


async def test_long_titles_are_capped_and_control_characters_removed(client, sim) -> None:
    sim.add_generation("gen-long", [{"id": "a1", "title": "\u202eEvil\x00 " + "y" * 5000}])
    found = await client.tracks("gen-long", within=2.0)
    assert found is not None
    title = found.tracks[0].title
    assert title is not None and len(title) <= 300 and title.startswith("Evil y")


async def test_the_sandbox_answers_any_task_with_two_made_up_takes() -> None:
    from aiohttp import web

    from bot.sandbox import SandboxApi

    sandbox = SandboxApi(api_key="k")
    app = web.Application()
    sandbox.add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            api = SeparationClient(session, f"http://127.0.0.1:{port}", Secret("k"), timeout=5)
            first = await api.tracks("any-task", within=2.0)
            again = await api.tracks("any-task", within=2.0)
            wrong = SeparationClient(session, f"http://127.0.0.1:{port}", Secret("nope"), timeout=5)
            with pytest.raises(ApiError):
                await wrong.tracks("any-task", within=2.0)
    finally:
        await runner.cleanup()
    assert first is not None and first == again  # the same id always names the same song
    assert [t.take for t in first.tracks] == [1, 2]
    assert first.tracks[0].title and first.tracks[0].title == first.tracks[1].title
    assert all(t.duration and 120 <= t.duration < 260 for t in first.tracks)
    assert first.tracks[0].audio_id != first.tracks[1].audio_id


# -- the song book ---------------------------------------------------------------------------


@pytest.fixture
async def store(databases: Databases) -> AsyncIterator[Store]:
    opened = await Store.open(await databases())
    yield opened
    await opened.close()


def book(
    store: Store, client: SeparationClient, metrics: Metrics | None = None, timeout: float = 2.0
) -> SongBook:
    return SongBook(store.songs, client, metrics or Metrics(), timeout=timeout, sandbox=False)


async def test_concurrent_lookups_of_one_task_make_one_call(store, client, sim) -> None:
    sim.add_generation("gen-c", titles=("Together", "Together"))
    sim.script("tracks", Fault("hang", seconds=0.3))
    songs = book(store, client)
    answers = await asyncio.gather(*(songs.tracks("gen-c") for _ in range(8)))
    assert lookups(sim, "gen-c") == 1
    assert all(answer is not None and len(answer.tracks) == 2 for answer in answers)


async def test_at_most_a_few_calls_run_at_once(store, client, sim) -> None:
    for n in range(12):
        sim.add_generation(f"gen-many-{n}", titles=("Many",))
    sim.script("tracks", *[Fault("hang", seconds=0.4)] * 12)
    songs = book(store, client)
    answers = await asyncio.gather(*(songs.tracks(f"gen-many-{n}") for n in range(12)))
    assert all(answer is not None for answer in answers)
    times = sorted(call.time for call in sim.calls if call.endpoint == "tracks")
    assert times[MAX_CALLS] - times[0] >= 0.3  # the ninth waited for a turn


async def test_a_finished_task_is_kept_in_the_database_and_never_asked_again(
    store, client, sim, databases
) -> None:
    sim.add_generation("gen-k", titles=("Kept",))
    metrics = Metrics()
    first = await book(store, client, metrics).tracks("gen-k")
    # Another process (or the next start) on the same database asks nobody.
    other = await Store.open(await databases())
    try:
        again = await book(other, client, metrics).tracks("gen-k")
    finally:
        await other.close()
    assert first == again and again is not None and again.tracks[0].title == "Kept"
    assert lookups(sim, "gen-k") == 1
    assert counted(metrics, "found") == 1 and counted(metrics, "kept") == 1


async def test_a_finished_task_without_tracks_is_kept_too(store, client, sim) -> None:
    sim.add_generation("gen-none", [])
    songs = book(store, client)
    assert (await songs.tracks("gen-none")) is not None
    assert (await book(store, client).tracks("gen-none")) is not None
    assert lookups(sim, "gen-none") == 1


async def test_an_unfinished_task_is_not_kept_and_not_asked_again_at_once(store, client, sim) -> None:
    sim.add_generation("gen-p", titles=("Later",), status="PENDING")
    metrics = Metrics()
    songs = book(store, client, metrics)
    assert await songs.tracks("gen-p") is None
    assert await songs.tracks("gen-p") is None  # from memory: no call per keystroke
    assert lookups(sim, "gen-p") == 1
    assert await store.songs.tracks("gen-p", sandbox=False) is None
    assert counted(metrics, "not_final") == 1


@pytest.mark.parametrize("fault", [Fault("code", status=500), Fault("garbage"), Fault("disconnect")])
async def test_failures_are_counted_and_mean_not_known_now(store, client, sim, fault) -> None:
    sim.add_generation("gen-f", titles=("Fails",))
    sim.script("tracks", fault, fault)
    metrics = Metrics()
    assert await book(store, client, metrics).tracks("gen-f") is None
    assert counted(metrics, "failed") == 1
    assert (
        metrics.registry.get_sample_value("stembot_api_calls_total", {"endpoint": "tracks", "code": "200"})
        is None
    )  # the client's own counting is the operations observer's, not wired here


async def test_a_malformed_success_is_not_kept_and_the_task_is_asked_again_later(store, client, sim) -> None:
    """A SUCCESS whose tracks cannot be read is "not known now": nothing is kept, so a later
    lookup (after the pause, or another process) still finds the song."""
    sim.add_generation("gen-m", titles=("Glitch",))
    sim.script("tracks", Fault("body", body={"code": 200, "msg": "success", "data": {"status": "SUCCESS"}}))
    metrics = Metrics()
    assert await book(store, client, metrics).tracks("gen-m") is None
    assert await store.songs.tracks("gen-m", sandbox=False) is None
    assert counted(metrics, "failed") == 1
    again = await book(store, client).tracks("gen-m")  # a fresh book: the next start, say
    assert again is not None and [t.title for t in again.tracks] == ["Glitch"]


async def test_an_unknown_task_is_not_known(store, client, sim) -> None:
    metrics = Metrics()
    assert await book(store, client, metrics).tracks("gen-unknown") is None
    assert counted(metrics, "failed") == 1


async def test_a_short_wait_gives_up_but_the_lookup_finishes_for_the_next_question(
    store, client, sim
) -> None:
    sim.add_generation("gen-w", titles=("Patience",))
    sim.script("tracks", Fault("hang", seconds=0.5))
    songs = book(store, client)
    started = time.monotonic()
    assert await songs.tracks("gen-w", wait=0.05) is None
    assert time.monotonic() - started < 0.4
    await asyncio.sleep(0.8)
    found = await songs.tracks("gen-w", wait=0.05)
    assert found is not None and found.tracks[0].title == "Patience"
    assert lookups(sim, "gen-w") == 1


async def test_a_hung_lookup_ends_at_the_books_time_limit(store, client, sim) -> None:
    sim.add_generation("gen-h", titles=("Hung",))
    sim.script("tracks", Fault("hang", seconds=10))
    started = time.monotonic()
    assert await book(store, client, timeout=0.3).tracks("gen-h") is None
    assert time.monotonic() - started < 2.0


async def _new_job(store: Store, task_id: str, audio_id: str) -> int:
    accepted = await store.reservations.reserve(
        NewJob(
            guild_id=1,
            channel_id=2,
            user_id=3,
            mode=Mode.SEPARATE_VOCAL,
            source_task_id=task_id,
            audio_id=audio_id,
            cost=Mode.SEPARATE_VOCAL.cost,
            callback_token=f"tok-{audio_id}",
        )
    )
    assert accepted.job is not None
    return accepted.job.id


async def test_a_job_is_named_in_the_background_and_keeps_its_song(store, client, sim) -> None:
    sim.add_generation("gen-n", titles=("First Name", "First Name"))
    job_id = await _new_job(store, "gen-n", "gen-n-audio-2")
    job = await store.jobs.get(job_id)
    assert job is not None and job.song is None
    songs = book(store, client)
    assert (await songs.named(job)).song is None  # not known yet: looked up in the background
    for _ in range(100):
        named = await store.jobs.get(job_id)
        if named is not None and named.song is not None:
            break
        await asyncio.sleep(0.02)
    assert named is not None
    assert named.song == Song("First Name", 206.5, "https://cdn.example.test/covers/gen-n-2.jpeg", 2, 2)
    # A job keeps the song it was named with.
    assert not await store.songs.name_job(job_id, Song("Another"))
    # Known now: the next job of that task is named at once.
    other = await store.jobs.get(await _new_job(store, "gen-n", "gen-n-audio-1"))
    assert other is not None
    cover = "https://cdn.example.test/covers/gen-n-1.jpeg"
    assert (await songs.named(other)).song == Song("First Name", 193.5, cover, 1, 2)
    assert (await store.jobs.get(other.id)).song == Song("First Name", 193.5, cover, 1, 2)
    await songs.stop()


async def test_a_job_whose_task_cannot_be_looked_up_keeps_its_ids(store, client, sim) -> None:
    sim.script("tracks", Fault("hang", seconds=10))
    job = await store.jobs.get(await _new_job(store, "gen-z", "audio-z"))
    assert job is not None
    songs = book(store, client, timeout=0.2)
    assert (await songs.named(job)).song is None
    await asyncio.sleep(0.5)
    after = await store.jobs.get(job.id)
    assert after is not None and after.song is None
    await songs.stop()


def test_the_sandbox_path_is_the_documented_one(tmp_path: Path) -> None:
    from bot.api import GENERATION_PATH
    from bot.sandbox import GENERATION_PATH as SANDBOX_PATH

    assert GENERATION_PATH == SANDBOX_PATH == "/api/v1/generate/record-info"


async def test_history_lines_of_a_job_carry_its_songs_title(store) -> None:
    job_id = await _new_job(store, "gen-h", "audio-h")
    await store.songs.name_job(job_id, Song("Midnight Drive", 194.0, None, 1, 2))
    page = await store.accounts.history_page(1, 3, page=0, page_size=10)
    reserve = next(entry for entry in page.entries if entry.job_id == job_id)
    assert reserve.job_song == "Midnight Drive"


async def test_an_unknown_task_is_counted_but_not_listed_among_the_operators_api_errors(sim) -> None:
    from bot.operations import ApiCalls

    metrics = Metrics()
    calls = ApiCalls(metrics)
    sim.script("tracks", Fault("code", status=500))
    async with aiohttp.ClientSession() as session:
        client = SeparationClient(session, sim.base_url, Secret("test-key"), timeout=5.0, observer=calls)
        for _ in range(2):
            with pytest.raises(ApiError):
                await client.tracks("nobody-knows", within=2.0)
    assert [(note.endpoint, note.code) for note in calls.recent_errors] == [("tracks", 500)]
    assert (
        metrics.registry.get_sample_value("stembot_api_calls_total", {"endpoint": "tracks", "code": "400"})
        == 1
    )
