"""A member's library end to end (issue 8): `/stems list`, `show`, `cancel`, expiry reminders and
the suggestions offered while typing, through the real bot process, a local Discord and the API
simulator."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from testing.discord_standin import DEFAULT_CHANNEL_ID, DEFAULT_USER_ID, InteractionRecord, MessageRecord
from testing.provider_api import Fault
from tests.e2e.conftest import Stack

READY = "download now, they cannot be renewed"  # leads every result message
WORKING = "working on your track"
OTHER_MEMBER = DEFAULT_USER_ID + 7
EPHEMERAL = 64
TIMEOUT = 10.0


async def stems(
    stack: Stack, subcommand: str, options: dict[str, Any] | None = None, **kwargs: Any
) -> InteractionRecord:
    record = await stack.standin.invoke("stems", options or {}, subcommand=subcommand, **kwargs)
    await record.wait_for(lambda r: r.acked and r.messages and not any(m.loading for m in r.messages))
    return record


async def finished_split(stack: Stack, **kwargs: Any) -> InteractionRecord:
    record = await stack.split(**kwargs)
    await record.wait_for_edit(lambda m: READY in m.text(), timeout=20)
    return record


def urls_of(stack: Stack, audio_id: str) -> list[str]:
    [task] = [t for t in stack.api.tasks.values() if t.audio_id == audio_id]
    return list(task.stems.values())


def job_id_of(record: InteractionRecord) -> int:
    match = re.search(r"Job #(\d+)", record.visible_text())
    assert match, record
    return int(match[1])


async def test_stems_list_after_two_splits_shows_both_newest_first_privately(stack: Stack) -> None:
    await stack.start_bot()
    first = await finished_split(stack, audio_id="audio-1")
    stack.api.processing_seconds = 30.0  # the second is still with the API when the list is asked for
    second = await stack.split(audio_id="audio-2")
    await second.wait_for_edit(lambda m: WORKING in m.text(), timeout=TIMEOUT)
    first_id, second_id = job_id_of(first), job_id_of(second)

    record = await stems(stack, "list")

    [message] = record.messages
    assert message.flags & EPHEMERAL and record.visible_text(include_ephemeral=False) == ""
    lines = [line for line in message.text().splitlines() if "Job #" in line]
    assert [int(n) for n in re.findall(r"Job #(\d+)", "\n".join(lines))] == [second_id, first_id]
    newest, oldest = lines
    assert "`audio-2`" in newest and " · processing · " in newest and "links expire" not in newest
    assert "`audio-1`" in oldest and " · ready · " in oldest and "links expire <t:" in oldest
    assert all("Vocals + instrumental (2 stems)" in line and "`gen-1`" in line for line in lines)
    assert "Page 1 of 1 · 2 splits" in message.text()


async def test_stems_show_an_own_job_privately_then_publicly(stack: Stack) -> None:
    await stack.start_bot()
    split = await finished_split(stack)
    job = job_id_of(split)
    urls = urls_of(stack, "audio-1")

    private = await stems(stack, "show", {"job": job})
    [message] = private.messages
    assert message.flags & EPHEMERAL
    assert all(url in message.text() for url in urls) and f"Job #{job}" in message.text()
    assert READY in message.text() and "Vocals" in message.text()
    assert private.visible_text(include_ephemeral=False) == ""

    public = await stems(stack, "show", {"job": job, "public": True})
    [shared] = public.messages
    assert not shared.flags & EPHEMERAL
    seen_by_all = public.visible_text(include_ephemeral=False)
    assert all(url in seen_by_all for url in urls) and READY in seen_by_all


async def test_stems_show_refuses_another_members_job_privately_without_its_links(stack: Stack) -> None:
    await stack.start_bot()
    split = await finished_split(stack)
    job = job_id_of(split)
    urls = urls_of(stack, "audio-1")

    for options in ({"job": job}, {"job": job, "public": True}):
        record = await stems(stack, "show", options, user_id=OTHER_MEMBER)
        await record.wait_for(lambda r: any("another member's split" in m.text() for m in r.messages))
        refusal = next(m for m in record.messages if "another member's split" in m.text())
        assert refusal.ephemeral, options
        shown = [m for m in (record.original, *record.followups) if m is not None]  # deleted ones too
        everything = "\n".join(
            v.content + str(v.embeds) + str(v.components) for m in shown for v in m.versions
        )
        assert not any(url in everything for url in urls), options
        assert READY not in everything
        public_text = record.visible_text(include_ephemeral=False)
        assert f"Job #{job}" not in public_text and "another member" not in public_text, options


async def test_cancel_during_api_maintenance_stops_the_retries_and_refunds(stack: Stack) -> None:
    stack.api.script("submit", *[Fault("code", 455, msg="maintenance") for _ in range(50)])
    await stack.start_bot(POLL_INTERVAL_SECONDS=0.25)  # maintenance retries after 1 s, 2 s, 4 s...
    split = await stack.split()
    await split.wait_for_response(lambda m: "Job #" in m.text())
    job = job_id_of(split)

    def waiting_for_retry() -> bool:
        [row] = stack.jobs()
        answered = [s for s in stack.api.submits if s.code is not None]
        return len(answered) >= 2 and len(answered) == len(stack.api.submits) and row["state"] == "reserved"

    await stack.eventually(waiting_for_retry, timeout=TIMEOUT)
    submits = len(stack.api.submits)
    assert "**90** credits" in await stack.credits()

    cancelled_at = time.time()  # the simulator's clock
    record = await stems(stack, "cancel", {"job": job})
    [answer] = record.messages
    assert answer.ephemeral
    assert f"Job #{job} cancelled" in answer.text() and "Your 10 credits are back" in answer.text()

    # The retry that was due (2 s after the second refusal, at most 4.4 s after the third) passes
    # without a submit.
    await asyncio.sleep(5.0)
    assert len(stack.api.submits) == submits, [(s.time, s.code) for s in stack.api.submits]
    assert all(s.time < cancelled_at + 0.5 for s in stack.api.submits)
    [row] = stack.jobs()
    assert row["state"] == "cancelled"
    assert stack.ledger_kinds(job) == ["reserve", "refund"]
    assert "**100** credits" in await stack.credits()
    listed = await stems(stack, "list")
    assert "cancelled, refunded" in listed.visible_text()

    again = await stems(stack, "cancel", {"job": job})
    assert (
        "can't be cancelled" in again.visible_text()
        and "It has already ended (cancelled" in again.visible_text()
    )
    assert stack.ledger_kinds(job) == ["reserve", "refund"]


def reminders(stack: Stack) -> list[MessageRecord]:
    return [m for m in stack.standin.dm_messages(DEFAULT_USER_ID) if "Reminder" in m.text()]


async def test_a_reminder_comes_once_by_dm_with_the_links_also_across_a_restart(stack: Stack) -> None:
    # 336 hours are the links' lifetime: the reminder falls due 3.6 s after the stems are ready.
    bot = await stack.start_bot(EXPIRY_REMINDER_HOURS=335.999)
    split = await finished_split(stack)
    ready_at = time.monotonic()
    job = job_id_of(split)
    urls = urls_of(stack, "audio-1")
    assert reminders(stack) == []

    reminder = await stack.standin.wait_for_dm(DEFAULT_USER_ID, lambda m: "Reminder" in m.text(), timeout=20)
    waited = reminder.created_at - ready_at
    assert 2.0 < waited < 8.0, waited
    text = reminder.text()
    assert f"Reminder: the links of Job #{job} expire" in text
    assert all(url in text for url in urls)
    [row] = stack.jobs()
    [expires] = {int(t) for t in re.findall(r"<t:(\d+):", reminder.content)}
    assert expires == int(row["links_expire_at"])
    assert row["reminded_at"] is not None

    await asyncio.sleep(3.0)
    assert len(reminders(stack)) == 1

    await bot.stop()
    await stack.start_bot(EXPIRY_REMINDER_HOURS=335.999)
    assert "**90** credits" in await stack.credits()  # the new process is up and answering
    await asyncio.sleep(3.0)
    assert len(reminders(stack)) == 1
    assert stack.standin.channel_messages(DEFAULT_CHANNEL_ID) == []  # nothing in the channel


async def test_the_reminder_links_to_the_result_message(stack: Stack) -> None:
    await stack.start_bot(EXPIRY_REMINDER_HOURS=335.999)
    split = await finished_split(stack)
    reminder = await stack.standin.wait_for_dm(DEFAULT_USER_ID, lambda m: "Reminder" in m.text(), timeout=20)
    assert split.original is not None
    assert f"/{DEFAULT_CHANNEL_ID}/{split.original.id})" in reminder.text()


async def test_a_member_whose_dms_are_closed_is_reminded_in_the_channel(stack: Stack) -> None:
    stack.standin.dms_closed.add(DEFAULT_USER_ID)
    await stack.start_bot(EXPIRY_REMINDER_HOURS=335.999)
    await finished_split(stack)
    urls = urls_of(stack, "audio-1")
    reminder = await stack.standin.wait_for_channel_message(
        DEFAULT_CHANNEL_ID, lambda m: "Reminder" in m.text(), timeout=20
    )
    assert reminder.pinged_user_ids == [DEFAULT_USER_ID]
    assert all(url in reminder.text() for url in urls)
    assert stack.standin.dm_messages(DEFAULT_USER_ID) == []
    await asyncio.sleep(2.0)
    assert len([m for m in stack.standin.channel_messages() if "Reminder" in m.text()]) == 1


async def test_a_reminder_that_fell_due_while_the_bot_was_down_comes_after_the_restart(stack: Stack) -> None:
    bot = await stack.start_bot(EXPIRY_REMINDER_HOURS=335.999)
    await finished_split(stack)
    await bot.stop()  # within the 3.6 s before the reminder falls due
    assert reminders(stack) == []
    await asyncio.sleep(4.0)
    await stack.start_bot(EXPIRY_REMINDER_HOURS=335.999)
    await stack.standin.wait_for_dm(DEFAULT_USER_ID, lambda m: "Reminder" in m.text(), timeout=10)
    await asyncio.sleep(2.0)
    assert len(reminders(stack)) == 1


async def test_a_member_who_turned_reminders_off_gets_none(stack: Stack) -> None:
    await stack.start_bot(EXPIRY_REMINDER_HOURS=335.999)
    off = await stems(stack, "reminders", {"enabled": False})
    assert off.messages[0].ephemeral and "No more expiry reminders for you" in off.visible_text()
    await finished_split(stack)
    await asyncio.sleep(6.0)  # the reminder would have come 3.6 s after the result
    assert reminders(stack) == [] and stack.standin.channel_messages() == []
    [row] = stack.jobs()
    assert row["reminded_at"] is None


def assert_choices_fit_discord(record: InteractionRecord) -> list[dict[str, Any]]:
    assert record.acks and record.acks[0].type == 8, record
    choices = record.choices
    assert 1 <= len(choices) <= 25
    for choice in choices:
        assert 1 <= len(choice["name"]) <= 100, choice
        assert len(str(choice["value"])) <= 100, choice
    return choices


async def test_autocomplete_offers_the_members_own_recent_ids_and_jobs(stack: Stack) -> None:
    await stack.start_bot()
    await finished_split(stack, task_id="gen-old", audio_id="audio-old")
    await finished_split(stack, task_id="gen-new", audio_id="audio-new", mode="split_stem")
    foreign = await finished_split(stack, task_id="gen-theirs", audio_id="audio-theirs", user_id=OTHER_MEMBER)
    jobs = {row["audio_id"]: row["id"] for row in stack.jobs()}

    tasks = await stack.standin.autocomplete("split", {"task_id": ""}, "task_id")
    await tasks.wait_for_ack()
    choices = assert_choices_fit_discord(tasks)
    assert [c["value"] for c in choices] == ["gen-new", "gen-old"]
    assert choices[0]["name"].startswith("gen-new · Full split (up to 12 stems) · ")
    assert choices[1]["name"].startswith("gen-old · Vocals + instrumental (2 stems) · ")
    assert all(c["name"].endswith(("just now", "ago")) for c in choices)

    typed = await stack.standin.autocomplete("split", {"task_id": "OLD"}, "task_id")
    await typed.wait_for_ack()
    assert [c["value"] for c in assert_choices_fit_discord(typed)] == ["gen-old"]

    audio = await stack.standin.autocomplete("split", {"task_id": "gen-old", "audio_id": ""}, "audio_id")
    await audio.wait_for_ack()
    assert [c["value"] for c in assert_choices_fit_discord(audio)] == ["audio-old", "audio-new"]

    shown = await stack.standin.autocomplete("stems", {"job": ""}, "job", subcommand="show")
    await shown.wait_for_ack()
    choices = assert_choices_fit_discord(shown)
    assert [c["value"] for c in choices] == [jobs["audio-new"], jobs["audio-old"]]
    assert choices[0]["name"].startswith(
        f"#{jobs['audio-new']} · Full split (up to 12 stems) · gen-new / audio-new · "
    )

    cancel = await stack.standin.autocomplete(
        "stems", {"job": str(jobs["audio-old"])}, "job", subcommand="cancel"
    )
    await cancel.wait_for_ack()
    assert [c["value"] for c in assert_choices_fit_discord(cancel)] == [jobs["audio-old"]]

    theirs = await stack.standin.autocomplete(
        "stems", {"job": ""}, "job", subcommand="show", user_id=OTHER_MEMBER
    )
    await theirs.wait_for_ack()
    assert [c["value"] for c in assert_choices_fit_discord(theirs)] == [job_id_of(foreign)]
    assert all(
        r.ack_latency is not None and r.ack_latency < 3.0
        for r in (tasks, typed, audio, shown, cancel, theirs)
    )


async def test_autocomplete_with_many_long_ids_stays_within_discords_limits(stack: Stack) -> None:
    await stack.start_bot(DEFAULT_CREDITS=1000, JOBS_PER_MEMBER=30)
    task = "t" * 100  # the longest id /split takes
    records = await asyncio.gather(
        *(stack.split(task_id=task, audio_id=f"{i:02d}" + "a" * 98) for i in range(27))
    )
    for record in records:
        await record.wait_for_edit(lambda m: READY in m.text(), timeout=30)

    audio = await stack.standin.autocomplete("split", {"task_id": task, "audio_id": ""}, "audio_id")
    await audio.wait_for_ack()
    choices = assert_choices_fit_discord(audio)
    assert len(choices) == 25
    assert all(len(c["value"]) == 100 and c["name"].endswith("…") for c in choices)

    shown = await stack.standin.autocomplete("stems", {"job": ""}, "job", subcommand="show")
    await shown.wait_for_ack()
    choices = assert_choices_fit_discord(shown)
    assert len(choices) == 25
    newest = max(row["id"] for row in stack.jobs())
    assert [c["value"] for c in choices] == list(range(newest, newest - 25, -1))
