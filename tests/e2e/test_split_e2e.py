"""What a member sees, end to end: the real bot process, a local Discord, the API simulator."""

from __future__ import annotations

import asyncio
import re
import signal
import time

from testing.discord_standin import DEFAULT_CHANNEL_ID, DEFAULT_USER_ID
from testing.provider_api import Fault
from tests.e2e.conftest import Stack

READY = "download now, they cannot be renewed"  # leads every result message
FAILED = "The split didn't work"
WORKING = "working on your track"


def stems_shown(text: str, names: list[str]) -> bool:
    return all(f"**{name}**" in text or name in text for name in names)


async def test_two_stem_split_delivers_links_in_the_members_message(stack: Stack) -> None:
    await stack.start_bot()
    record = await stack.split()
    ack = await record.wait_for_ack()
    assert ack.type == 5 and record.ack_latency < 3.0
    message = await record.wait_for_edit(lambda m: READY in m.text())
    text = message.text()
    assert "Vocals" in text and "Instrumental" in text
    for url in stack.api.tasks[next(iter(stack.api.tasks))].stems.values():
        assert url in text
    [expires] = {int(t) for t in re.findall(r"<t:(\d+):R>", text)}
    assert abs(expires - (time.time() + 14 * 86_400)) < 86_400  # the provider's 14 days
    assert "Links expire" in text and "download now, they cannot be renewed" in text
    assert not message.ephemeral
    assert len(stack.api.submits) == 1
    [job] = await stack.eventually(lambda: [j for j in stack.jobs() if j["delivery"] == "delivered"])
    assert (job["state"], job["delivered_via"]) == ("succeeded", "interaction")
    assert stack.ledger_kinds(job["id"]) == ["reserve", "charge"]
    assert "**90** credits" in await stack.credits()


async def test_a_split_records_the_upload_limit_discord_sent_with_it(stack: Stack) -> None:
    stack.standin.attachment_size_limit = 25 * 1024 * 1024  # a boosted server's
    await stack.start_bot()
    record = await stack.split()
    await record.wait_for_ack()
    [job] = await stack.eventually(stack.jobs)
    assert job["filesize_limit"] == 25 * 1024 * 1024


async def test_twelve_stem_split_with_long_urls_stays_within_discords_limits(stack: Stack) -> None:
    stack.api.url_length = 450
    await stack.start_bot()
    record = await stack.split(mode="split_stem")
    await record.wait_for_edit(lambda m: READY in m.text(), timeout=20)
    [task] = stack.api.tasks.values()

    def seen() -> str:
        return "\n".join(m.text() for m in record.messages)

    await record.wait_for(lambda r: all(url in seen() for url in task.stems.values()))
    for name in ["Vocals", "Backing vocals", "Drums", "Bass", "Guitar", "Keyboard", "Percussion",
                 "Strings", "Synth", "FX", "Brass", "Woodwinds"]:  # fmt: skip
        assert name in seen()
    assert stack.standin.rejected == []
    assert "**50** credits" in await stack.credits()


async def test_insufficient_credits_are_refused_privately_without_an_api_call(stack: Stack) -> None:
    await stack.start_bot(DEFAULT_CREDITS=5)
    record = await stack.split()
    await record.wait_for(lambda r: any("costs 10 credits and you have 5" in m.text() for m in r.messages))
    [message] = record.messages
    assert message.ephemeral
    assert record.visible_text(include_ephemeral=False).strip() == ""  # nobody else sees it
    assert stack.api.submits == []
    assert stack.jobs() == []


async def test_failed_separation_tells_the_member_and_refunds(stack: Stack) -> None:
    stack.api.outcome = "GENERATE_AUDIO_FAILED"
    await stack.start_bot()
    record = await stack.split()
    message = await record.wait_for_edit(lambda m: FAILED in m.text())
    assert "not charged" in message.text()
    [job] = stack.jobs()
    assert stack.ledger_kinds(job["id"]) == ["reserve", "refund"]
    assert "**100** credits" in await stack.credits()


async def test_transient_api_errors_then_success_pay_for_one_submit(stack: Stack) -> None:
    stack.api.script("submit", Fault("code", 455), Fault("http", 502), Fault("code", 430))
    stack.api.script("record", Fault("code", 500), Fault("garbage"))
    await stack.start_bot()
    record = await stack.split()
    await record.wait_for_edit(lambda m: READY in m.text(), timeout=20)
    assert [s.code for s in stack.api.submits] == [455, 502, 430, 200]
    assert len(stack.api.tasks) == 1 and stack.api.charged() == 10


async def test_bot_killed_mid_job_delivers_once_and_charges_once_after_restart(stack: Stack) -> None:
    stack.api.processing_seconds = 3.0
    bot = await stack.start_bot()
    record = await stack.split()
    await record.wait_for_edit(lambda m: WORKING in m.text())
    bot.proc.send_signal(signal.SIGKILL)
    await bot.proc.wait()

    await stack.start_bot()
    message = await record.wait_for_edit(lambda m: READY in m.text(), timeout=20)
    assert len(stack.api.submits) == 1 and stack.api.charged() == 10
    assert sum(READY in v.content + str(v.embeds) for v in message.versions) == 1
    [job] = stack.jobs()
    assert stack.ledger_kinds(job["id"]) == ["reserve", "charge"]
    assert "**90** credits" in await stack.credits()


async def test_a_split_acknowledged_by_a_bot_killed_before_storing_it_is_answered_after_restart(
    stack: Stack,
) -> None:
    bot = await stack.start_bot()
    held = asyncio.Event()
    stack.standin.hold_callbacks = held  # Discord takes the defer but is slow to answer it
    try:
        record = await stack.split()
        await record.wait_for_ack()  # the member sees "thinking…"
        await asyncio.sleep(1.0)  # whatever the bot does alongside its defer, it has done by now
        assert stack.jobs() == []  # it waits for the defer's answer before taking the split
        bot.proc.send_signal(signal.SIGKILL)
        await bot.proc.wait()
    finally:
        stack.standin.hold_callbacks = None
        held.set()

    await stack.start_bot()
    message = await record.wait_for_edit(lambda m: "didn't start" in m.text(), timeout=20)
    assert "nothing was charged" in message.text() and "/split" in message.text()
    assert not message.ephemeral and not message.loading
    await asyncio.sleep(0.5)
    assert len(message.edits) == 1  # answered once
    assert stack.jobs() == [] and stack.api.submits == []
    assert "**100** credits" in await stack.credits()
    with stack.db() as conn:
        assert conn.execute("SELECT COUNT(*) FROM acknowledged_splits").fetchone()[0] == 0


async def test_gateway_drop_mid_job_still_delivers_and_bot_keeps_answering(stack: Stack) -> None:
    stack.api.processing_seconds = 1.5
    await stack.start_bot()
    record = await stack.split()
    await record.wait_for_edit(lambda m: WORKING in m.text())
    await stack.standin.drop_gateway()
    await record.wait_for_edit(lambda m: READY in m.text(), timeout=20)
    await stack.standin.wait_for(lambda: stack.standin.resumes, timeout=20)
    assert "credits" in (await stack.credits()).lower()  # interactions still reach the bot
    assert len(stack.api.submits) == 1


async def test_expired_interaction_token_delivers_in_the_channel_with_a_mention(stack: Stack) -> None:
    stack.api.processing_seconds = 1.0
    await stack.start_bot()
    record = await stack.split()
    await record.wait_for_edit(lambda m: WORKING in m.text())
    record.expire_token()
    message = await stack.standin.wait_for_channel_message(
        DEFAULT_CHANNEL_ID, lambda m: READY in m.text(), timeout=20
    )
    assert DEFAULT_USER_ID in message.pinged_user_ids
    [job] = await stack.eventually(lambda: [j for j in stack.jobs() if j["delivery"] == "delivered"])
    assert job["delivered_via"] == "channel"


async def test_a_late_result_replies_to_the_split_message_which_then_points_to_it(stack: Stack) -> None:
    stack.api.processing_seconds = 1.0
    await stack.start_bot()
    record = await stack.split()
    await record.wait_for_edit(lambda m: WORKING in m.text())
    record.expire_token()
    message = await stack.standin.wait_for_channel_message(
        DEFAULT_CHANNEL_ID, lambda m: READY in m.text(), timeout=20
    )
    original = record.original
    assert original is not None and message.reference_id == original.id
    assert "15 minutes" in message.text() and DEFAULT_USER_ID in message.pinged_user_ids
    pointed = await stack.eventually(lambda: "reply to this message" in original.text())
    assert pointed and f"/{DEFAULT_CHANNEL_ID}/{message.id})" in original.text()
    assert "will show your download links" not in original.text()


async def test_no_channel_access_falls_back_to_dm(stack: Stack) -> None:
    stack.api.processing_seconds = 1.0
    stack.standin.channel_forbidden.add(DEFAULT_CHANNEL_ID)
    await stack.start_bot()
    record = await stack.split()
    await record.wait_for_edit(lambda m: WORKING in m.text())
    record.expire_token()
    dm = await stack.standin.wait_for_dm(DEFAULT_USER_ID, lambda m: READY in m.text(), timeout=20)
    assert "Vocals" in dm.text()
    [job] = await stack.eventually(lambda: [j for j in stack.jobs() if j["delivery"] == "delivered"])
    assert job["delivered_via"] == "dm"


async def test_dms_closed_and_no_channel_access_keep_the_result_until_it_can_be_delivered(
    stack: Stack,
) -> None:
    stack.api.processing_seconds = 1.0
    stack.standin.channel_forbidden.add(DEFAULT_CHANNEL_ID)
    stack.standin.dms_closed.add(DEFAULT_USER_ID)
    await stack.start_bot()
    record = await stack.split()
    await record.wait_for_edit(lambda m: WORKING in m.text())
    record.expire_token()
    # Every route is refused at least once; the result is kept, not dropped.
    await stack.eventually(lambda: stack.jobs()[0]["delivery_attempts"] >= 2, timeout=20)
    assert stack.jobs()[0]["delivery"] == "pending"
    refused = {(r.status, r.path.split("/")[1]) for r in stack.standin.requests if r.method == "POST"}
    assert (403, "channels") in refused
    stack.standin.dms_closed.clear()  # the member opens their DMs
    dm = await stack.standin.wait_for_dm(DEFAULT_USER_ID, lambda m: READY in m.text(), timeout=30)
    assert "Vocals" in dm.text()
    await stack.eventually(lambda: stack.jobs()[0]["delivery"] == "delivered")


async def test_bad_ids_get_a_private_answer_and_cost_nothing(stack: Stack) -> None:
    await stack.start_bot()
    record = await stack.split(task_id="abc def")
    message = await record.wait_for_response()
    assert message.ephemeral and "task_id" in message.text() and "Nothing was charged" in message.text()
    assert stack.api.submits == []
    assert stack.jobs() == []


async def test_five_concurrent_splits_with_credit_for_two_never_overspend(stack: Stack) -> None:
    stack.api.processing_seconds = 1.0
    await stack.start_bot(DEFAULT_CREDITS=20, JOBS_PER_MEMBER=10)
    records = await asyncio.gather(*(stack.split(audio_id=f"audio-{i}") for i in range(5)))
    for record in records:
        await record.wait_for(
            lambda r: any("Splitting" in m.text() or "Not enough credits" in m.text() for m in r.messages)
        )
    refused = [r for r in records if any("you have 0 credits" in m.text() for m in r.messages)]
    assert len(refused) == 3
    assert all(r.messages[0].ephemeral for r in refused)
    accepted = [r for r in records if r not in refused]
    for record in accepted:
        await record.wait_for_edit(lambda m: READY in m.text(), timeout=20)
    assert len(stack.api.submits) == 2
    assert "**0** credits" in await stack.credits()


async def test_jobs_in_flight_limit_refuses_a_third_split(stack: Stack) -> None:
    stack.api.processing_seconds = 2.0
    await stack.start_bot(JOBS_PER_MEMBER=2)
    first, second = await stack.split(audio_id="a"), await stack.split(audio_id="b")
    for record in (first, second):
        await record.wait_for_edit(lambda m: "Splitting" in m.text())
    third = await stack.split(audio_id="c")
    await third.wait_for(lambda r: any("already have 2 splits running" in m.text() for m in r.messages))
    assert third.messages[0].ephemeral
    assert len(stack.jobs()) == 2
    await stack.eventually(lambda: len(stack.api.submits) == 2)


async def test_forty_members_at_once_are_all_acknowledged_within_three_seconds(stack: Stack) -> None:
    await stack.start_bot()
    members = [DEFAULT_USER_ID + i for i in range(40)]
    records = await asyncio.gather(*(stack.split(audio_id=f"a-{m}", user_id=m) for m in members))
    for record in records:
        await record.wait_for_ack(timeout=5)
    latencies = sorted(r.ack_latency for r in records)
    assert latencies[-1] < 3.0, latencies
    assert not any(r.did_not_respond for r in records)
    for record in records:
        await record.wait_for_edit(lambda m: READY in m.text(), timeout=30)
    assert len(stack.api.submits) == 40
