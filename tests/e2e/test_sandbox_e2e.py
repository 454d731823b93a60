"""The real bot in sandbox mode (SEPARATION_API_URL=sandbox, no API key) through the Discord
stand-in: playable stems for both modes, and a documented failure with its refund."""

from __future__ import annotations

import hashlib
import io
import re
import wave

import aiohttp
import pytest
from aiohttp import web as aioweb

from bot.sandbox import derive_api_key, stem_wav
from testing.tones import decode
from tests.e2e.conftest import Stack, button

SANDBOX = {"SEPARATION_API_URL": "sandbox", "SEPARATION_API_KEY": "", "SANDBOX_SECONDS": "0.3"}


@pytest.mark.parametrize(("mode", "stems"), [(None, 2), ("split_stem", 12)])
async def test_sandbox_split_delivers_playable_stems(stack: Stack, mode: str | None, stems: int) -> None:
    bot = await stack.start_bot(**SANDBOX)
    record = await stack.split(mode=mode)
    message = await record.wait_for_edit(lambda m: "/sandbox/files/" in m.text())
    text = message.text()
    assert "Sandbox" in text
    # Each stem once (a link button, see bot.render.results.stems_ready).
    urls = re.findall(r"(http://127\.0\.0\.1:\d+/sandbox/files/[^)\s]+\.wav)", text)
    assert len(urls) == len(set(urls)) == stems
    async with aiohttp.ClientSession() as session, session.get(urls[0]) as response:
        assert response.status == 200
        with wave.open(io.BytesIO(await response.read())) as reader:
            assert reader.getnchannels() == 1 and reader.getnframes() / reader.getframerate() > 1
    [job] = await stack.eventually(lambda: [j for j in stack.jobs() if j["delivery"] == "delivered"])
    assert job["sandbox"] == 1
    assert "SANDBOX MODE" in bot.output()
    assert stack.api.submits == [], "the test simulator was not used"


async def test_sandbox_failure_id_fails_and_refunds(stack: Stack) -> None:
    await stack.start_bot(**SANDBOX)
    record = await stack.split(task_id="fail-demo")
    message = await record.wait_for_edit(lambda m: "didn't work" in m.text())
    assert "Sandbox" in message.text()
    [job] = await stack.eventually(lambda: [j for j in stack.jobs() if j["state"] == "failed"])
    assert stack.ledger_kinds(job["id"]) == ["reserve", "refund"]
    assert "**100** credits" in await stack.credits()


async def test_sandbox_results_can_be_kept_in_discord(stack: Stack) -> None:
    """A newcomer trying the bot for free can try keeping too: the sandbox's WAVs, served by the
    bot's own web server, are downloaded (its host is the API's) and posted in a thread."""
    await stack.start_bot(**SANDBOX)
    record = await stack.split()
    result = await record.wait_for_edit(lambda m: "/sandbox/files/" in m.text())
    [job] = await stack.eventually(lambda: [j for j in stack.jobs() if j["delivery"] == "delivered"])

    click = await stack.standin.click(result, button(result, "Keep in Discord")["custom_id"])
    answer = await click.wait_for_response()
    assert answer.ephemeral and f"Keeping Job #{job['id']} in Discord" in answer.text()
    thread = await stack.eventually(lambda: stack.standin.thread_on(result.id))
    files = await stack.eventually(
        lambda: stack.standin.attachments_in(thread.id)[1:] and stack.standin.attachments_in(thread.id)
    )

    assert [f.filename for f in files] == ["Vocals.wav", "Instrumental.wav"]
    assert [f.sha256 for f in files] == [
        hashlib.sha256(stem_wav(stem)).hexdigest() for stem in ("vocal", "instrumental")
    ]


async def test_sandbox_results_can_be_mixed(stack: Stack) -> None:
    """The sandbox's mono WAVs at 22.05 kHz are mixed like any stems: one stereo MP3 in the thread."""
    stack.standin.keep_upload_bytes = True
    await stack.start_bot(**SANDBOX)
    record = await stack.split(mode="split_stem")
    result = await record.wait_for_edit(lambda m: "/sandbox/files/" in m.text())
    [job] = await stack.eventually(lambda: [j for j in stack.jobs() if j["delivery"] == "delivered"])

    click = await stack.standin.click(result, button(result, "Mix stems")["custom_id"])
    picker = await click.wait_for_response()
    [select] = [c for row in picker.components for c in row.get("components") or [] if c.get("type") == 3]
    chosen = [o["value"] for o in select["options"] if o["label"] in ("Vocals", "Bass")]
    await stack.standin.click(picker, select["custom_id"], values=chosen)

    thread = await stack.standin.wait_for(lambda: stack.standin.thread_on(result.id), timeout=20)
    [mix] = await stack.standin.wait_for(lambda: stack.standin.attachments_in(thread.id), timeout=20)
    assert mix.filename == f"Job {job['id']} - Vocals + Bass.mp3"
    path = stack.tmp_path / "mix.mp3"
    path.write_bytes(stack.standin.attachment_bytes(mix))
    samples, rate = decode(path)
    assert samples.shape[0] == 2 and rate == 22_050
    assert samples.shape[1] / rate == pytest.approx(3.0, abs=0.1)  # the sandbox's stems' length


async def test_the_sandbox_is_no_relay_and_a_members_split_still_delivers(stack: Stack) -> None:
    """A stranger who reaches the bot's web server tries to use the sandbox's API as a relay into
    the operator's network: without the key, with a wrong one, and (as if the key had leaked) with
    a callBackUrl of their own. Each is refused, the target hears nothing; members split as ever."""
    bot = await stack.start_bot(**SANDBOX)
    port = re.search(r"Web server listening on 127\.0\.0\.1:(\d+)", bot.output())
    assert port is not None, bot.output()
    submit = f"http://127.0.0.1:{port.group(1)}/sandbox/api/v1/vocal-removal/generate"
    heard: list[str] = []

    async def listen(request: aioweb.Request) -> aioweb.Response:
        heard.append(request.path)
        return aioweb.json_response({"ok": True})

    app = aioweb.Application()
    app.router.add_route("*", "/{tail:.*}", listen)
    runner = aioweb.AppRunner(app, access_log=None)
    await runner.setup()
    await aioweb.TCPSite(runner, "127.0.0.1", 0).start()
    target = f"http://127.0.0.1:{runner.addresses[0][1]}"
    body = {
        "taskId": "gen-1",
        "audioId": "a-1",
        "callBackUrl": f"{target}/callback/x",
        "type": "separate_vocal",
    }
    key = derive_api_key(stack.standin.token)
    try:
        answers = []
        async with aiohttp.ClientSession() as session:
            for headers in ({}, {"Authorization": "Bearer guessed"}, {"Authorization": f"Bearer {key}"}):
                async with session.post(submit, json=body, headers=headers) as response:
                    answers.append((await response.json(content_type=None))["code"])
        record = await stack.split()
        await record.wait_for_edit(lambda m: "/sandbox/files/" in m.text())
    finally:
        await runner.cleanup()
    assert answers == [401, 401, 400]
    assert heard == [], "the bot sent nothing to the stranger's address"
    assert key not in bot.output()
    [job] = await stack.eventually(lambda: [j for j in stack.jobs() if j["delivery"] == "delivered"])
    assert job["sandbox"] == 1


async def test_the_sandbox_offers_two_made_up_takes_by_title_and_names_the_result(stack: Stack) -> None:
    """The whole by-title flow, for free: any task id has two takes of a made-up song."""
    await stack.start_bot(**SANDBOX)
    record = await stack.standin.invoke("split", {"task_id": "my-first-try"})
    menu = await record.wait_for_response(lambda m: m.components)
    [select] = [c for row in menu.components for c in row["components"] if c["type"] == 3]
    labels = [option["label"] for option in select["options"]]
    assert len(labels) == 2 and "take 1" in labels[0] and "take 2" in labels[1]
    title = labels[0].split(" — ")[0]
    choice = await stack.standin.click(menu, select["custom_id"], values=[select["options"][1]["value"]])
    result = await choice.wait_for_response(lambda m: "/sandbox/files/" in m.text(), timeout=20)
    assert f"{title} (take 2" in result.embeds[0]["title"]
    assert "only on the machine running the bot" in result.text() and "Keep in Discord" in result.text()
    assert stack.api.submits == [], "the test simulator was not used"
