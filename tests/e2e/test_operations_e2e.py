"""Callbacks, shared jobs, the pause switch, health and shutdown, as members and operators see them."""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp

from testing.discord_standin import DEFAULT_CHANNEL_ID, DEFAULT_USER_ID
from tests.e2e.conftest import Stack
from tests.ports import free_port

READY = "download now, they cannot be renewed"  # leads every result message
WORKING = "working on your track"
MANAGER = 0x20  # Manage Server
ALICE, BOB = DEFAULT_USER_ID, DEFAULT_USER_ID + 1


async def start_with_callbacks(stack: Stack, **settings: object) -> int:
    port = free_port()
    stack.api.callbacks = True
    await stack.start_bot(
        CALLBACK_PUBLIC_URL=f"http://127.0.0.1:{port}",
        CALLBACK_PORT=port,
        CALLBACK_POLL_INTERVAL_SECONDS=30,  # only a callback can make delivery fast
        **settings,
    )
    return port


async def test_callback_delivers_within_a_second_of_the_api_finishing(stack: Stack) -> None:
    stack.api.processing_seconds = 1.0
    await start_with_callbacks(stack)
    record = await stack.split()
    message = await record.wait_for_edit(lambda m: READY in m.text(), timeout=10)
    [task] = stack.api.tasks.values()
    shown = next(v.wall for v in message.versions if READY in (v.content or "") + str(v.embeds))
    assert shown - task.complete_at < 1.0
    assert task.callbacks_sent >= 1
    assert stack.api.polls() <= 2  # the confirmation, not a polling loop


async def test_forged_callbacks_are_refused_or_only_wake_a_confirming_poll(stack: Stack) -> None:
    stack.api.processing_seconds = 2.0
    port = await start_with_callbacks(stack)
    record = await stack.split()
    await record.wait_for_edit(lambda m: WORKING in m.text())
    [job] = stack.jobs()
    forged = {
        "code": 200,
        "msg": "ok",
        "data": {
            "task_id": job["api_task_id"],
            "vocal_removal_info": {"vocal_url": "https://evil.test/v.mp3"},
        },
    }
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as session:
        async with session.post("/callback/not-a-token", json=forged) as response:
            assert response.status == 404
        async with session.post(f"/callback/{job['callback_token']}", data=b"{nope") as response:
            assert response.status == 400
        async with session.post(f"/callback/{job['callback_token']}", json=forged) as response:
            assert response.status == 200  # a hint: the bot asks the API, which says "pending"
    message = await record.wait_for_edit(lambda m: READY in m.text(), timeout=10)
    assert "evil.test" not in message.text()
    [task] = stack.api.tasks.values()
    assert all(url in message.text() for url in task.stems.values())


async def test_two_members_splitting_one_track_at_once_pay_for_one_api_job(stack: Stack) -> None:
    stack.api.processing_seconds = 1.5
    await stack.start_bot()
    alice = await stack.split(user_id=ALICE)
    await alice.wait_for_edit(lambda m: "Splitting" in m.text())
    bob = await stack.split(user_id=BOB)
    queued = await bob.wait_for_edit(lambda m: "Splitting" in m.text())
    assert "share their result" in queued.text()
    for record in (alice, bob):
        await record.wait_for_edit(lambda m: READY in m.text(), timeout=15)
    assert len(stack.api.submits) == 1
    assert "free: a shared result" in "\n".join(m.text() for m in bob.messages)
    assert "**90** credits" in await stack.credits(ALICE)
    assert "**100** credits" in await stack.credits(BOB)
    # Later, a third request for the same track is served from the stored links.
    again = await stack.split(user_id=BOB + 1)
    await again.wait_for_edit(lambda m: READY in m.text())
    assert len(stack.api.submits) == 1


async def test_out_of_api_credits_pauses_splitting_alerts_and_resumes(stack: Stack) -> None:
    stack.api.account_credits = 0
    await stack.start_bot(ACCOUNT_CHECK_SECONDS=0.3)
    settings = await stack.standin.invoke(
        "quota",
        {"audit_channel": DEFAULT_CHANNEL_ID},
        subcommand="settings",
        user_id=BOB,
        permissions=MANAGER,
    )
    await settings.wait_for_response(lambda m: not m.loading)

    first = await stack.split()
    message = await first.wait_for_edit(lambda m: "didn't work" in m.text())
    assert "operator has been alerted" in message.text() and "not charged" in message.text()
    alert = await stack.standin.wait_for_channel_message(DEFAULT_CHANNEL_ID, lambda m: "paused" in m.text())
    assert "out of credits" in alert.text()

    refused = await stack.split(audio_id="audio-2")
    await refused.wait_for(lambda r: any("Splitting is paused" in m.text() for m in r.messages))
    assert refused.messages[0].ephemeral
    assert len(stack.api.submits) == 1  # the paused request never reached the API

    stack.api.account_credits = 1000
    await stack.standin.wait_for_channel_message(
        DEFAULT_CHANNEL_ID, lambda m: "resumed" in m.text(), timeout=10
    )
    later = await stack.split(audio_id="audio-3")
    await later.wait_for_edit(lambda m: READY in m.text(), timeout=15)
    assert "**90** credits" in await stack.credits()


async def test_healthz_and_metrics_are_served_by_the_bot(stack: Stack) -> None:
    port = free_port()
    await stack.start_bot(CALLBACK_PORT=port)
    record = await stack.split()
    await record.wait_for_edit(lambda m: READY in m.text())
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as session:
        # discord.py reports ready a couple of seconds after connecting (it waits for the
        # servers' data); until then the bot says it is not healthy yet.
        async with asyncio.timeout(15):
            while True:
                async with session.get("/healthz") as response:
                    body = await response.json()
                    if response.status == 200:
                        break
                    assert response.status == 503 and body["checks"]["database"] is True
                await asyncio.sleep(0.2)
        assert body == {"ok": True, "checks": {"database": True, "gateway": True, "runner": True}}
        async with session.get("/metrics") as response:
            text = await response.text()
    assert 'stembot_jobs{state="succeeded"} 1.0' in text
    assert 'stembot_api_calls_total{code="200",endpoint="submit"} 1.0' in text
    assert 'stembot_credits_total{kind="reserved"} 10.0' in text
    assert 'stembot_credits_total{kind="charged"} 10.0' in text
    assert "stembot_delivery_lag_seconds_count 1.0" in text


async def test_sigterm_mid_job_leaves_it_resumable_and_it_is_delivered_once(stack: Stack) -> None:
    stack.api.processing_seconds = 3.0
    bot = await stack.start_bot()
    record = await stack.split()
    await record.wait_for_edit(lambda m: WORKING in m.text())
    started = time.monotonic()
    bot.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(bot.proc.wait(), 15) == 0
    assert time.monotonic() - started < 10
    assert "Shutting down" in bot.output()
    [job] = stack.jobs()
    assert job["state"] == "submitted"

    await stack.start_bot()
    await record.wait_for_edit(lambda m: READY in m.text(), timeout=20)
    assert len(stack.api.submits) == 1
    assert stack.ledger_kinds(job["id"]) == ["reserve", "charge"]
