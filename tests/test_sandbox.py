"""The sandbox (`bot.sandbox`) served by the bot's own web server, against the API's contract,
through the bot's real API client; its generated WAV stems; sandbox jobs never shared."""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import wave
from collections.abc import AsyncIterator
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web as aioweb

from bot.api import ApiError, SeparationClient
from bot.errors import MemberBlocked
from bot.metrics import Metrics
from bot.product import Mode
from bot.runner import INVALID_CALLBACK_BASE
from bot.sandbox import (
    CREDIT_PATH,
    RECORD_PATH,
    SANDBOX_API_URL,
    STEMS_12,
    SUBMIT_PATH,
    Call,
    CallbackAttempt,
    SandboxApi,
    SandboxTask,
    SubmitCall,
    TaskBook,
    stem_wav,
)
from bot.sandbox import tasks as sandbox_tasks
from bot.services import Services
from bot.settings import Secret, load_settings
from bot.store import Store
from bot.web import WebServer
from cogs.credits import CreditsCog
from tests.unit_helpers import embed_text, make_interaction, run_command
from tests.wiring import make_services, make_settings


@pytest.fixture
async def served() -> AsyncIterator[tuple[SandboxApi, WebServer, SeparationClient, aiohttp.ClientSession]]:
    sandbox = SandboxApi(api_key="sandbox-key", processing_seconds=0.1)
    web = WebServer(host="127.0.0.1", port=0, metrics=Metrics(), health=[], callbacks=None, sandbox=sandbox)
    await web.start()
    async with aiohttp.ClientSession() as session:
        client = SeparationClient(session, lambda: sandbox.api_url, Secret("sandbox-key"), timeout=5)
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
    sandbox, _, client, _ = served
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
        sandbox.public_url = url.removesuffix("/callback/t")  # CALLBACK_PUBLIC_URL: the bot's own address
        task_id = await client.submit(task_id="gen", audio_id="a", mode=Mode.SEPARATE_VOCAL, callback_url=url)
        async with asyncio.timeout(5):
            while not received:
                await asyncio.sleep(0.02)
        assert received[0]["data"]["task_id"] == task_id
        assert set(received[0]["data"]["vocal_removal_info"]) >= {"vocal_url", "instrumental_url"}
    finally:
        await runner.cleanup()


class Watcher:
    """An observer that writes down what the sandbox tells it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def requested(self, call: Call) -> None:
        self.events.append(("requested", (call.endpoint, call.status, call.code)))

    def submitted(self, submit: SubmitCall) -> None:
        self.events.append(("submitted", submit))

    def polled(self, task_id: str | None) -> None:
        self.events.append(("polled", task_id))

    def completed(self, task: SandboxTask) -> None:
        self.events.append(("completed", task.task_id))

    def callback_sent(self, attempt: CallbackAttempt) -> None:
        self.events.append(("callback_sent", (attempt.task_id, attempt.status)))


async def test_an_observer_is_told_of_each_request_and_task_event() -> None:
    received: list[str] = []

    async def handler(request: aioweb.Request) -> aioweb.Response:
        received.append(request.path)
        return aioweb.json_response({"ok": True})

    app = aioweb.Application()
    app.router.add_post("/callback/{token}", handler)
    runner = aioweb.AppRunner(app)
    await runner.setup()
    await aioweb.TCPSite(runner, "127.0.0.1", 0).start()
    own = f"http://127.0.0.1:{runner.addresses[0][1]}"
    watcher = Watcher()
    sandbox = SandboxApi(api_key="k", processing_seconds=0.1, public_url=own, observer=watcher)
    web = WebServer(host="127.0.0.1", port=0, metrics=Metrics(), health=[], callbacks=None, sandbox=sandbox)
    await web.start()
    try:
        async with aiohttp.ClientSession() as session:
            client = SeparationClient(session, lambda: sandbox.api_url, Secret("k"), timeout=5)
            task_id = await client.submit(
                task_id="gen", audio_id="a", mode=Mode.SEPARATE_VOCAL, callback_url=own + "/callback/t"
            )
            await wait_done(client, task_id)
            async with asyncio.timeout(5):
                while not any(kind == "callback_sent" for kind, _ in watcher.events):
                    await asyncio.sleep(0.02)
    finally:
        await web.stop()
        await runner.cleanup()
    kinds = [kind for kind, _ in watcher.events]
    submits = [event for kind, event in watcher.events if kind == "submitted"]
    assert len(submits) == 1 and isinstance(submits[0], SubmitCall)
    assert submits[0].task_id == task_id and submits[0].code == 200
    assert kinds.index("submitted") < kinds.index("requested") < kinds.index("polled")
    assert ("requested", ("submit", 200, 200)) in watcher.events
    assert ("polled", task_id) in watcher.events and ("requested", ("record", 200, 200)) in watcher.events
    assert watcher.events.count(("completed", task_id)) == 1
    assert ("callback_sent", (task_id, 200)) in watcher.events and received == ["/callback/t"]
    assert kinds.index("completed") < kinds.index("callback_sent")


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


# ------------------------------------------------------------------ the sandbox is no relay


class Listener:
    """A local server standing for any address in the operator's network: records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self._runner: aioweb.AppRunner | None = None
        self.base_url = ""

    async def __aenter__(self) -> Listener:
        async def record(request: aioweb.Request) -> aioweb.Response:
            self.requests.append((request.method, request.path))
            return aioweb.json_response({"ok": True})

        app = aioweb.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        self._runner = aioweb.AppRunner(app, access_log=None)
        await self._runner.setup()
        await aioweb.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def bot_sandbox(tmp_path) -> AsyncIterator[tuple[Services, aiohttp.ClientSession]]:
    """The bot's own sandbox as `python -m bot` builds it (SEPARATION_API_URL=sandbox), served by
    its web server; the bot's API client talks to it."""
    store = await Store.open(tmp_path / "relay.db")
    settings = make_settings(api_url=SANDBOX_API_URL, callback_port=0, sandbox_seconds=0.2, job_timeout=0.5)
    async with aiohttp.ClientSession() as session:
        services = make_services(store, session, settings)
        await services.web.start()
        try:
            yield services, session
        finally:
            await services.web.stop()
            await store.close()


def submit_body(callback_url: str, task_id: str = "gen-1") -> dict[str, str]:
    return {"taskId": task_id, "audioId": "a-1", "callBackUrl": callback_url, "type": "separate_vocal"}


async def post_submit(
    session: aiohttp.ClientSession, services: Services, body: dict[str, str], key: str | None
) -> dict:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    url = services.web.local_url + "/sandbox" + SUBMIT_PATH
    async with session.post(url, json=body, headers=headers) as response:
        return await response.json(content_type=None)


def the_sandbox(services: Services) -> SandboxApi:
    sandbox = services.web._sandbox
    assert sandbox is not None
    return sandbox


async def test_a_stranger_without_the_key_is_refused_and_nothing_is_submitted(bot_sandbox) -> None:
    services, session = bot_sandbox
    async with Listener() as target:
        answer = await post_submit(session, services, submit_body(target.base_url + "/x"), key=None)
        for path in (RECORD_PATH + "?taskId=abc", CREDIT_PATH):
            async with session.get(services.web.local_url + "/sandbox" + path) as response:
                assert (await response.json(content_type=None))["code"] == 401
        await asyncio.sleep(0.5)  # longer than a sandbox separation takes
    assert answer["code"] == 401 and answer["data"] is None
    assert the_sandbox(services).tasks == {}, "nothing was submitted"
    assert target.requests == [], "the bot never called the stranger's address"


async def test_a_wrong_key_is_refused_and_never_shown(bot_sandbox) -> None:
    services, session = bot_sandbox
    right = services.settings.sandbox_api_key.reveal()
    own = f"{services.web.local_url}/callback/tok"
    for wrong in ("anything", "", right[:-1] + ("0" if right[-1] != "0" else "1"), right + "x"):
        answer = await post_submit(session, services, submit_body(own), key=wrong)
        assert answer["code"] == 401, wrong
        assert right not in json.dumps(answer) and (not wrong or wrong not in answer["msg"])
    assert the_sandbox(services).tasks == {}


async def test_the_bots_own_client_holds_the_key_and_its_flow_still_works(bot_sandbox) -> None:
    services, _ = bot_sandbox
    assert services.settings.sandbox_api_key.reveal() not in repr(services.settings)
    task_id = await services.api.submit(
        task_id="gen-1",
        audio_id="a-1",
        mode=Mode.SEPARATE_VOCAL,
        callback_url=INVALID_CALLBACK_BASE + "/callback/t",
    )
    assert (await wait_done(services.api, task_id)).flag == "SUCCESS"
    assert await services.api.account_credits() > 1000


def test_the_key_is_derived_from_the_discord_token_alone() -> None:
    one = load_settings({"DISCORD_TOKEN": "tok", "SEPARATION_API_URL": "sandbox"}).sandbox_api_key.reveal()
    again = load_settings({"DISCORD_TOKEN": "tok", "SEPARATION_API_URL": "sandbox"}).sandbox_api_key.reveal()
    other = load_settings({"DISCORD_TOKEN": "tok2", "SEPARATION_API_URL": "sandbox"}).sandbox_api_key.reveal()
    assert one == again, "every process of one deployment accepts the others' requests"
    assert one != other and "tok" not in one and len(one) >= 32


async def test_a_foreign_callback_url_is_refused_and_never_called(bot_sandbox) -> None:
    services, session = bot_sandbox
    key = services.settings.sandbox_api_key.reveal()
    local = services.web.local_url
    async with Listener() as target:
        foreign = [
            target.base_url + "/callback/tok",  # another port on this machine
            target.base_url + "/",
            local + "/sandbox/api/v1/generate/credit",  # the bot itself, but not its callback path
            local + "/callback/",
            local + "/callback/tok/more",
            local + "/callback/tok?next=" + target.base_url,
            local.replace("http://", "http://user@") + "/callback/tok",
            local.replace("http://", "https://") + "/callback/tok",
            "http://169.254.169.254/latest/meta-data/",
            "file:///etc/passwd",
        ]
        for url in foreign:
            answer = await post_submit(session, services, submit_body(url), key=key)
            assert answer["code"] == 400, url
            assert "callBackUrl" in answer["msg"]
        await asyncio.sleep(0.5)
    assert the_sandbox(services).tasks == {}
    assert target.requests == [], "no callback was sent to a foreign address"


async def test_the_bots_own_callback_addresses_are_accepted(bot_sandbox) -> None:
    services, session = bot_sandbox
    key = services.settings.sandbox_api_key.reveal()
    own = [
        f"{services.web.local_url}/callback/{'A-_b' * 8}",
        f"{INVALID_CALLBACK_BASE}/callback/tok",  # the bot's address when callbacks are off: never called
    ]
    for url in own:
        answer = await post_submit(session, services, submit_body(url), key=key)
        assert answer["code"] == 200, (url, answer)
    assert len(the_sandbox(services).tasks) == 2


async def test_own_public_callback_url_is_accepted_and_called(tmp_path) -> None:
    """With CALLBACK_PUBLIC_URL (the proxy in front of the bot), callbacks go there, path and all."""
    store = await Store.open(tmp_path / "public.db")
    async with Listener() as proxy, aiohttp.ClientSession() as session:
        settings = make_settings(
            api_url=SANDBOX_API_URL,
            callback_port=0,
            sandbox_seconds=0.1,
            callback_public_url=proxy.base_url + "/bot",
        )
        services = make_services(store, session, settings)
        await services.web.start()
        try:
            key = settings.sandbox_api_key.reveal()
            accepted = await post_submit(
                session, services, submit_body(proxy.base_url + "/bot/callback/t1"), key
            )
            refused = await post_submit(session, services, submit_body(proxy.base_url + "/callback/t2"), key)
            async with asyncio.timeout(5):
                while not proxy.requests:
                    await asyncio.sleep(0.02)
        finally:
            await services.web.stop()
            await store.close()
    assert accepted["code"] == 200 and refused["code"] == 400
    assert proxy.requests == [("POST", "/bot/callback/t1")]


async def test_tasks_expire_after_twice_the_job_timeout_and_their_timers_are_cancelled(bot_sandbox) -> None:
    services, _ = bot_sandbox  # JOB_TIMEOUT 0.5 s: tasks live 1 s
    sandbox = the_sandbox(services)
    sandbox.processing_seconds = 30.0  # still running when it expires
    task_id = await services.api.submit(
        task_id="gen-1",
        audio_id="a-1",
        mode=Mode.SEPARATE_VOCAL,
        callback_url=services.web.local_url + "/callback/t",
    )
    timer = sandbox.book.timers[task_id]
    assert (await services.api.record(task_id)).flag == "PENDING"
    await asyncio.sleep(1.5)
    assert task_id not in sandbox.tasks, "dropped from memory without another request"
    assert timer.cancelled() and sandbox.book.timers == {}
    with pytest.raises(ApiError) as gone:
        await services.api.record(task_id)
    assert gone.value.code == 400


async def test_the_number_of_tasks_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_tasks, "MAX_TASKS", 3)
    sandbox = SandboxApi(api_key="k", processing_seconds=0.1, tasks=TaskBook(lifetime=1.5))
    web = WebServer(host="127.0.0.1", port=0, metrics=Metrics(), health=[], callbacks=None, sandbox=sandbox)
    await web.start()
    try:
        async with aiohttp.ClientSession() as session:
            client = SeparationClient(session, lambda: sandbox.api_url, Secret("k"), timeout=5)
            for n in range(3):
                await client.submit(
                    task_id=f"g{n}", audio_id="a", mode=Mode.SEPARATE_VOCAL, callback_url="https://x.invalid/"
                )
            with pytest.raises(ApiError) as full:
                await client.submit(
                    task_id="g4", audio_id="a", mode=Mode.SEPARATE_VOCAL, callback_url="https://x.invalid/"
                )
            assert len(sandbox.tasks) == 3
            await asyncio.sleep(1.7)  # the first ones expire: room again
            await client.submit(
                task_id="g5", audio_id="a", mode=Mode.SEPARATE_VOCAL, callback_url="https://x.invalid/"
            )
    finally:
        await web.stop()
    assert full.value.code == 430 and full.value.retryable and "tasks" in full.value.message
    assert len(sandbox.tasks) == 1


def test_the_sandbox_takes_only_what_the_product_sets_and_the_simulator_wraps_it() -> None:
    # Fault injection, call logs, charging and callback shapes are the tests' simulator's: the
    # product's constructor takes its settings, its task book and an observer, nothing more.
    from testing.provider_api import SeparationApiSimulator

    assert set(inspect.signature(SandboxApi).parameters) == {
        "api_key",
        "processing_seconds",
        "public_url",
        "tasks",
        "observer",
    }
    assert not issubclass(SeparationApiSimulator, SandboxApi)
    assert isinstance(SeparationApiSimulator().sandbox, SandboxApi)
    # Its task book: the lifetime the bot derives from its job timeout, and randomness injected
    # (seeded, a run is reproducible); how many tasks it keeps is the product's constant.
    assert set(inspect.signature(TaskBook).parameters) == {"lifetime", "rng"}
