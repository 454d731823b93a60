"""The mixer (`bot.mixing`) on real SQLite with the simulator serving real tones and a recording
Discord side: the rules of asking, the kept attachments as the source once the links expired
(their URLs read fresh), a mix sharing the keep's place, and failures that refund and post
nothing."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from bot.errors import InsufficientCredits, UnknownJob
from bot.keeping import Upload
from bot.mixing import Reply
from bot.mixing.refusals import BadMixChoice, MixingOff, MixOfADmResult, MixSourcesGone, NothingToMix
from bot.mixing.worker import MAX_ATTEMPTS
from bot.models import (
    DeliveredMessage,
    DeliveryVia,
    Job,
    Keep,
    KeepPlace,
    LedgerKind,
    Mix,
    MixState,
    MixStems,
    Song,
)
from bot.product import LINK_LIFETIME, stem_name
from bot.quota import Actor
from bot.sandbox import STEMS_2, STEMS_12
from testing.provider_api import SeparationApiSimulator
from testing.tones import decode, spectrum_levels, tone_of
from tests.test_keeping import ANA, BOB, CHANNEL, GUILD, World, ask, delivered, keep_to_the_end, open_world
from tests.test_mixing_process import mixing_children
from tests.wiring import PostedRecord, RecordingPoster


class MixRecorder(RecordingPoster):
    """The recording Discord side, also for mixes: the files' bytes kept, each kept file's URL
    handed out fresh (and counted), the member's private answers recorded."""

    def __init__(self, sim: SeparationApiSimulator) -> None:
        super().__init__()
        self.sim = sim
        self.mix_bytes: dict[int, bytes] = {}
        self.told: list[str] = []
        self.urls_read: list[tuple[int, str]] = []
        self.gone: set[str] = set()  # kept files whose message was deleted

    async def post_mix(self, job: Job, mix: Mix, upload: Upload, *, content: str, key: str) -> int:
        await self._before("mix")
        data = upload.path.read_bytes()
        record = PostedRecord(
            mix.channel_id or 0,
            self._id(),
            content,
            [(upload.filename, hashlib.sha256(data).hexdigest(), len(data))],
            None,
        )
        self.messages.append(record)
        self.mix_bytes[record.message_id] = data
        await self._after("mix")
        return record.message_id

    async def attachment_url(self, keep: Keep, message_id: int, filename: str) -> str | None:
        self.urls_read.append((message_id, filename))
        if filename in self.gone:
            return None
        label = stem_name(next(k for k in STEMS_12 if f"{stem_name(k)}.mp3" == filename)).replace(" ", "_")
        return f"{self.sim.base_url}/files/kept/{message_id}_{label}.mp3?ex=fresh"

    async def tell(self, mix: Mix, text: str) -> bool:
        self.told.append(text)
        return True

    async def open_thread(self, job: Job, anchor: DeliveredMessage) -> int:
        return await super().open_thread(job, anchor)


@pytest.fixture
async def sim() -> AsyncIterator[SeparationApiSimulator]:
    async with SeparationApiSimulator(stem_files=True, processing_seconds=0.05) as sim:
        sim.stem_audio_seconds = 1.0
        yield sim


@pytest.fixture
async def world(tmp_path: Path, sim: SeparationApiSimulator) -> AsyncIterator[World]:
    opened = await open_world(tmp_path, sim, poster=MixRecorder(sim))
    yield opened
    await opened.close()
    await opened.session.close()


def poster(world: World) -> MixRecorder:
    assert isinstance(world.poster, MixRecorder)
    return world.poster


async def mix_to_the_end(world: World, mix_id: int, rounds: int = 10) -> Mix:
    for _ in range(rounds):
        await world.services.mixer.run_due()
        mix = await world.store.mixes.get(mix_id)
        assert mix is not None
        if mix.state in (MixState.POSTED, MixState.FAILED) and mix.told:
            folder = world.services.settings.mix_folder
            assert not folder.exists() or list(folder.iterdir()) == []  # nothing left on disk
            return mix
        world.clock.advance(700)
    raise AssertionError(f"mix {mix_id} not done: {mix}")


async def request(world: World, job: Job, positions: list[int], member: int = BOB) -> Mix:
    asked = await world.services.mixer.request(
        GUILD,
        Actor(member),
        job.id,
        positions,
        channel_id=CHANNEL,
        reply=Reply(1, "token", world.clock() + 900),
    )
    assert asked.started
    return asked.mix


def tones_in(data: bytes, tmp_path: Path) -> dict[str, float]:
    path = tmp_path / "posted.mp3"
    path.write_bytes(data)
    samples, rate = decode(path)
    names = [stem_name(k) for k in STEMS_12]
    found = spectrum_levels(samples, rate, [tone_of(n) for n in names])
    return {n: found[tone_of(n)] for n in names}


async def test_once_the_links_expired_the_kept_files_are_the_source_read_fresh(
    world: World, tmp_path: Path
) -> None:
    job = await delivered(world)
    await ask(world, job)
    keep = await keep_to_the_end(world, job.id)
    world.clock.advance(LINK_LIFETIME.total_seconds() + 60)  # the API's links are gone now
    drums = STEMS_12.index("drums")
    chosen = [p for p in range(12) if p != drums]

    mix = await mix_to_the_end(world, (await request(world, job, chosen)).id)

    assert mix.state is MixState.POSTED
    assert mix.place is KeepPlace.THREAD and mix.channel_id == keep.channel_id  # the keep's thread
    assert sorted(name for _, name in poster(world).urls_read) == sorted(
        f"{stem_name(STEMS_12[p])}.mp3" for p in chosen
    )
    requested = [
        name
        for name, _ in world.sim.file_requests
        if name.startswith(tuple(f"{m}_" for m, _ in poster(world).urls_read))
    ]
    assert len(requested) == 11  # every stem fetched from its kept file, none from the dead links
    levels = tones_in(poster(world).mix_bytes[mix.message_id or 0], tmp_path)
    assert levels["Drums"] < 0.01 and min(v for n, v in levels.items() if n != "Drums") > 0.2
    assert poster(world).told == [
        f"Your mix of Job #{job.id} is ready: [{mix.filename}]"
        f"(https://discord.com/channels/{GUILD}/{mix.channel_id}/{mix.message_id})."
    ]


async def test_a_kept_file_gone_stops_the_mix_naming_it_and_refunds(world: World) -> None:
    await world.store.economy.update_settings(GUILD, {"mix_price": 4}, actor_id=ANA)
    job = await delivered(world)
    await ask(world, job)
    await keep_to_the_end(world, job.id)
    world.clock.advance(LINK_LIFETIME.total_seconds() + 60)
    poster(world).gone.add("Bass.mp3")

    mix = await mix_to_the_end(world, (await request(world, job, [0, STEMS_12.index("bass")])).id)

    assert mix.state is MixState.FAILED and "Bass is not kept in Discord any more" in (mix.failure or "")
    assert [e.kind for e in await world.store.accounts.ledger(GUILD, BOB)][-2:] == [
        LedgerKind.MIX_CHARGE,
        LedgerKind.MIX_REFUND,
    ]
    assert poster(world).mix_bytes == {}
    assert "Your 4 credits came back." in poster(world).told[-1]


async def test_a_mix_opens_the_thread_keeping_then_uses(world: World) -> None:
    job = await delivered(world)
    mix = await mix_to_the_end(world, (await request(world, job, [0, 1])).id)

    await ask(world, job)
    keep = await keep_to_the_end(world, job.id)

    assert keep.place is KeepPlace.THREAD and keep.channel_id == mix.channel_id
    assert poster(world).calls["thread"] == 1


async def test_the_rules_of_asking(world: World) -> None:
    job = await delivered(world)
    mixer = world.services.mixer
    two = await delivered(world, stems=STEMS_2)

    with pytest.raises(UnknownJob):
        await mixer.request(GUILD + 1, Actor(BOB), job.id, [0])
    with pytest.raises(NothingToMix):
        await mixer.request(GUILD, Actor(BOB), two.id, [0])  # not a full split
    for bad in ([], list(range(12)), [12], [-1]):
        with pytest.raises(BadMixChoice):
            await mixer.request(GUILD, Actor(BOB), job.id, bad)
    await world.store.economy.update_settings(GUILD, {"mix_price": 20_000}, actor_id=ANA)
    with pytest.raises(InsufficientCredits):
        await mixer.request(GUILD, Actor(BOB), job.id, [0])
    await world.store.economy.update_settings(GUILD, {"mix_stems": MixStems.OFF}, actor_id=ANA)
    with pytest.raises(MixingOff):
        await mixer.request(GUILD, Actor(BOB), job.id, [0])
    await world.store.economy.update_settings(GUILD, {"mix_stems": MixStems.ON, "mix_price": 0}, actor_id=ANA)
    by_dm = await delivered(world, via=DeliveryVia.DM)
    with pytest.raises(MixOfADmResult):
        await mixer.request(GUILD, Actor(BOB), by_dm.id, [0])  # its mixes go to ANA's DM
    assert (await mixer.request(GUILD, Actor(ANA), by_dm.id, [0])).started
    world.clock.advance(LINK_LIFETIME.total_seconds() + 1)
    with pytest.raises(MixSourcesGone):
        await mixer.request(GUILD, Actor(BOB), job.id, [0])
    assert await world.store.mixes.of_job(job.id) == []


async def test_a_mix_of_a_named_song_is_filed_under_its_title(world: World) -> None:
    job = await delivered(world)
    assert await world.store.songs.name_job(job.id, Song(title="Midnight/Drive", duration=200.0))
    drums = STEMS_12.index("drums")

    mix = await request(world, job, [p for p in range(12) if p != drums])

    assert mix.filename == "Midnight Drive - without Drums.mp3"


@pytest.mark.parametrize(
    ("values", "chosen"),
    [
        (["0", "3", "11"], [0, 3, 11]),
        (["²", "1"], [1]),  # a digit to str.isdigit, not to int(): dropped, not a crash
        (["-1", "x", "123", 5, None], []),
        ("0", []),
    ],
)
def test_the_pickers_values_are_read_as_small_numbers_whatever_is_sent(values, chosen) -> None:
    """The stem picker's values come from the interaction's payload (untrusted): anything but a
    small ASCII number is dropped, never raised on, so the member gets an answer."""
    from types import SimpleNamespace

    from cogs.mixing import _chosen

    assert _chosen(SimpleNamespace(data={"values": values})) == chosen  # type: ignore[arg-type]


async def test_a_mix_whose_last_upload_landed_unanswered_is_posted_not_failed_and_refunded(
    world: World,
) -> None:
    """Discord failed the upload on every attempt but the last, which it took and whose answer
    was lost (an unknown outcome). Before giving up, the place is read once more: the file is
    there, so the mix is posted, the member told where, and nothing is refunded for a file they
    have."""
    await world.store.economy.update_settings(GUILD, {"mix_price": 4}, actor_id=ANA)
    job = await delivered(world)
    poster(world).fail_before += ["mix"] * (MAX_ATTEMPTS - 1)
    poster(world).lose_answer.append("mix")

    mix = await mix_to_the_end(world, (await request(world, job, [0, 1])).id)

    assert len(poster(world).mix_bytes) == 1  # posted once
    assert mix.state is MixState.POSTED and mix.message_id in poster(world).mix_bytes
    assert [e.kind for e in await world.store.accounts.ledger(GUILD, BOB)][-1] is LedgerKind.MIX_CHARGE
    assert "is ready" in poster(world).told[-1]


async def test_a_mixing_process_killed_mid_mix_fails_that_mix_and_refunds_it_once(world: World) -> None:
    await world.store.economy.update_settings(GUILD, {"mix_price": 4}, actor_id=ANA)
    job = await delivered(world)
    mix = await request(world, job, [0, STEMS_12.index("bass")])

    async def kill_the_mixing_process() -> None:
        while not (children := mixing_children(psutil.Process())):
            await asyncio.sleep(0.005)
        children[0].kill()

    killer = asyncio.create_task(asyncio.wait_for(kill_the_mixing_process(), timeout=30))
    done = await mix_to_the_end(world, mix.id)
    await killer  # it did kill one

    assert done.state is MixState.FAILED and "the mixing process stopped unexpectedly" in (done.failure or "")
    assert [e.kind for e in await world.store.accounts.ledger(GUILD, BOB)][-2:] == [
        LedgerKind.MIX_CHARGE,
        LedgerKind.MIX_REFUND,
    ]
    assert poster(world).mix_bytes == {}
    assert "Your 4 credits came back." in poster(world).told[-1]
