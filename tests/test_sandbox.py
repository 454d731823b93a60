"""The sandbox (`bot.sandbox`) served by the bot's own web server, against the API's contract,
through the bot's real API client; its generated WAV stems; sandbox jobs never shared."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator
from types import SimpleNamespace

import aiohttp
import pytest

from bot.api import ApiError, SeparationClient
from bot.errors import MemberBlocked
from bot.metrics import Metrics
from bot.product import Mode
from bot.sandbox import SANDBOX_API_URL, STEMS_12, SandboxApi, stem_wav
from bot.settings import Secret, load_settings
from bot.store import Store
from bot.web import WebServer
from cogs.credits import CreditsCog
from tests.unit_helpers import embed_text, make_interaction, run_command
from tests.wiring import make_services, make_settings


@pytest.fixture
async def served() -> AsyncIterator[tuple[SandboxApi, WebServer, SeparationClient, aiohttp.ClientSession]]:
    sandbox = SandboxApi(processing_seconds=0.1, charge=False)
    web = WebServer(host="127.0.0.1", port=0, metrics=Metrics(), health=[], callbacks=None, sandbox=sandbox)
    await web.start()
    async with aiohttp.ClientSession() as session:
        client = SeparationClient(session, lambda: sandbox.api_url, Secret("anything"), timeout=5)
        yield sandbox, web, client, session
    await web.stop()


async def wait_done(client: SeparationClient, task_id: str, seconds: float = 5.0):  # type: ignore[no-untyped-def]
    async with asyncio.timeout(seconds):
        while True:
            record = await client.record(task_id)
            if record.flag != "PENDING":
                return record
            await asyncio.sleep(0.05)


def parse_wav(data: bytes) -> tuple[int, int, float, bytes]:
    with wave.open(io.BytesIO(data)) as reader:
        frames = reader.readframes(reader.getnframes())
        return (
            reader.getnchannels(),
            reader.getframerate(),
            reader.getnframes() / reader.getframerate(),
            frames,
        )


@pytest.mark.parametrize("mode", [Mode.SEPARATE_VOCAL, Mode.SPLIT_STEM])
async def test_a_sandbox_split_follows_the_contract_and_its_links_are_playable_wavs(served, mode) -> None:
    sandbox, web, client, session = served
    task_id = await client.submit(
        task_id="gen-1", audio_id="a-1", mode=mode, callback_url="https://x.invalid/cb"
    )
    assert len(task_id) == 32
    record = await wait_done(client, task_id)
    assert record.flag == "SUCCESS"
    assert len(record.stems) == (2 if mode is Mode.SEPARATE_VOCAL else 12)
    sounds = set()
    for stem in record.stems:
        assert stem.url.startswith(web.local_url + "/sandbox/files/")
        async with session.get(stem.url) as response:
            assert response.status == 200 and response.content_type == "audio/wav"
            channels, rate, duration, frames = parse_wav(await response.read())
        assert (channels, rate) == (1, 22_050) and duration > 1
        sounds.add(frames)
    assert len(sounds) == len(record.stems), "each stem sounds different"
    assert await client.account_credits() > 1000  # free: never charged
    assert sandbox.charged() == 0


async def test_failure_ids_show_each_documented_failure_without_pausing(served) -> None:
    _, _, client, _ = served
    with pytest.raises(ApiError) as refused:
        await client.submit(
            task_id="fail-400-x", audio_id="a", mode=Mode.SEPARATE_VOCAL, callback_url="https://x.invalid/"
        )
    assert refused.value.code == 400
    failed = await client.submit(
        task_id="fail-x", audio_id="a", mode=Mode.SEPARATE_VOCAL, callback_url="https://x.invalid/"
    )
    assert (await wait_done(client, failed)).flag == "GENERATE_AUDIO_FAILED"
    never = await client.submit(
        task_id="fail-timeout-x", audio_id="a", mode=Mode.SEPARATE_VOCAL, callback_url="https://x.invalid/"
    )
    await asyncio.sleep(0.3)
    assert (await client.record(never)).flag == "PENDING"


async def test_sandbox_sends_callbacks_to_the_callback_url(served) -> None:
    _, _, client, _ = served
    received: list[dict] = []
    from aiohttp import web as aioweb

    async def handler(request: aioweb.Request) -> aioweb.Response:
        received.append(await request.json())
        return aioweb.json_response({"ok": True})

    app = aioweb.Application()
    app.router.add_post("/callback/{token}", handler)
    runner = aioweb.AppRunner(app)
    await runner.setup()
    await aioweb.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/callback/t"
        task_id = await client.submit(task_id="gen", audio_id="a", mode=Mode.SEPARATE_VOCAL, callback_url=url)
        async with asyncio.timeout(5):
            while not received:
                await asyncio.sleep(0.02)
        assert received[0]["data"]["task_id"] == task_id
        assert set(received[0]["data"]["vocal_removal_info"]) >= {"vocal_url", "instrumental_url"}
    finally:
        await runner.cleanup()


async def test_unknown_sandbox_files_are_404(served) -> None:
    _, web, _, session = served
    async with session.get(web.local_url + "/sandbox/files/abc/Nope.wav") as response:
        assert response.status == 404


def test_every_stem_wav_is_valid_and_distinct() -> None:
    frames = {stem: parse_wav(stem_wav(stem)) for stem in (*STEMS_12, "instrumental")}
    assert len({f[3] for f in frames.values()}) == len(frames)
    assert all(f[2] > 1 for f in frames.values())


def test_sandbox_needs_no_api_key_and_hides_nothing_else() -> None:
    settings = load_settings({"DISCORD_TOKEN": "tok", "SEPARATION_API_URL": "sandbox"})
    assert settings.sandbox and settings.web_server_required and settings.sandbox_seconds == 5
    assert settings.secrets == ("tok",)
    assert (
        load_settings(
            {"DISCORD_TOKEN": "t", "SEPARATION_API_URL": "sandbox", "SANDBOX_SECONDS": "1"}
        ).sandbox_seconds
        == 1
    )
    with pytest.raises(Exception, match="SEPARATION_API_KEY"):
        load_settings({"DISCORD_TOKEN": "tok"})


def test_every_result_message_of_a_sandbox_job_says_sandbox() -> None:
    from bot.models import Failure, JobState, StemLink
    from bot.render import results
    from tests.unit_helpers import make_job

    done = make_job(sandbox=True, stems=(StemLink("vocal", "http://127.0.0.1/sandbox/files/a/Vocals.wav"),))
    failed = make_job(sandbox=True, state=JobState.FAILED, failure=Failure.SEPARATION_FAILED)
    assert (results.queued(done).title or "").startswith("Sandbox")
    assert (results.processing(done).title or "").startswith("Sandbox")
    assert all((m.embeds[0].title or "").startswith("Sandbox") for m in results.outcome(done))
    assert (results.failed(failed).embeds[0].title or "").startswith("Sandbox")
    assert not (results.queued(make_job()).title or "").startswith("Sandbox")


async def test_sandbox_jobs_are_never_shared_with_real_ones(tmp_path) -> None:
    import dataclasses

    from bot.models import CreditPolicy
    from bot.store import Store
    from tests.test_store import new_job

    store = await Store.open(tmp_path / "s.db", CreditPolicy(100, 5))
    try:
        real = await store.reservations.reserve(new_job(audio_id="same"))
        sandbox = await store.reservations.reserve(
            dataclasses.replace(new_job(member=7, audio_id="same"), sandbox=True)
        )
        again = await store.reservations.reserve(
            dataclasses.replace(new_job(member=8, audio_id="same"), sandbox=True)
        )
    finally:
        await store.close()
    assert real.job is not None and sandbox.job is not None and again.job is not None
    assert sandbox.job.sandbox and sandbox.job.share is None, "a sandbox job never follows a real one"
    assert again.job.source_job_id == sandbox.job.id, "sandbox jobs share among themselves"


async def test_in_sandbox_mode_credits_and_refusals_say_sandbox(tmp_path) -> None:
    store = await Store.open(tmp_path / "sandbox.db")
    try:
        async with aiohttp.ClientSession() as session:
            services = make_services(store, session, make_settings(api_url=SANDBOX_API_URL))
            assert services.settings.sandbox
            cog = CreditsCog(SimpleNamespace(services=services))  # type: ignore[arg-type]
            shown = make_interaction()
            await run_command(cog, CreditsCog.credits, shown)
            refused = make_interaction()
            await cog.cog_app_command_error(refused, MemberBlocked(None, 0))  # type: ignore[arg-type]
    finally:
        await store.close()

    assert embed_text(shown.followup.send.await_args.kwargs["embed"]).startswith("Sandbox · ")
    assert embed_text(refused.response.send_message.await_args.kwargs["embed"]).startswith("Sandbox · ")
