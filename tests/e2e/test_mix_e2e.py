"""Mixes of stems (issue 20) end to end: the real bot process, the Discord stand-in (threads,
uploads kept byte for byte here, component interactions) and the API simulator serving real,
decodable audio: each stem its own sine tone. The posted file is decoded and checked with an FFT:
it holds the kept stems' tones and not the others'."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import psutil
import pytest

from bot.mixing.process import STOP_GRACE
from testing.discord_standin import (
    DEFAULT_GUILD_ID,
    DEFAULT_MEMBER_PERMISSIONS,
    DEFAULT_USER_ID,
    InteractionRecord,
    MessageRecord,
    Perm,
)
from testing.tones import decode, spectrum_levels, tone_of
from tests.e2e.conftest import Stack, button
from tests.test_mixing_process import mixing_children

READY = "download now, they cannot be renewed"
MIX = "Mix stems"
TIMEOUT = 30.0
MEMBER = DEFAULT_USER_ID
OTHER_MEMBER = DEFAULT_USER_ID + 7
MODERATOR = DEFAULT_USER_ID + 1
CLIP_SECONDS = 1.5
PRESENT, ABSENT = 0.2, 0.01


# -- helpers ---------------------------------------------------------------------------------


async def full_split(stack: Stack, **kwargs: Any) -> tuple[MessageRecord, int]:
    """A 12-stem /split to its result: the result message and the job's number."""
    record = await stack.split(mode="split_stem", **kwargs)
    result = await record.wait_for_edit(lambda m: READY in m.text(), timeout=TIMEOUT)
    [job] = await stack.eventually(lambda: [j for j in stack.jobs() if j["delivery"] == "delivered"][-1:])
    return result, int(job["id"])


def picker_of(message: MessageRecord) -> dict[str, Any]:
    [select] = [c for row in message.components for c in row.get("components") or [] if c.get("type") == 3]
    return select


async def press_mix(stack: Stack, result: MessageRecord, user_id: int = MEMBER) -> MessageRecord:
    """Press Mix stems on a result; the private answer (the stem picker, or why not)."""
    click = await stack.standin.click(result, button(result, MIX)["custom_id"], user_id=user_id)
    answer = await click.wait_for_response(timeout=TIMEOUT)
    assert answer.ephemeral, answer
    return answer


async def choose(
    stack: Stack, picker: MessageRecord, names: list[str], user_id: int = MEMBER
) -> InteractionRecord:
    """Choose these stems in the picker (by their names, as the options show them)."""
    select = picker_of(picker)
    values = [o["value"] for o in select["options"] if o["label"] in names]
    assert len(values) == len(names), (names, select["options"])
    click = await stack.standin.click(picker, select["custom_id"], values=values, user_id=user_id)
    await click.wait_for_ack(timeout=TIMEOUT)
    return click


def mix_row(stack: Stack, job_id: int) -> Any:
    with stack.db() as conn:
        return conn.execute("SELECT * FROM mixes WHERE job_id = ? ORDER BY id DESC", (job_id,)).fetchone()


async def mix_done(stack: Stack, job_id: int, state: str = "posted") -> Any:
    def done() -> Any:
        row = mix_row(stack, job_id)
        return row is not None and row["state"] == state and row["told"] and row

    return await stack.eventually(done, timeout=TIMEOUT)


def mp3s_in(stack: Stack, channel_id: int) -> list[Any]:
    return [a for a in stack.standin.attachments_in(channel_id) if a.filename.endswith(".mp3")]


def levels_of(stack: Stack, attachment: Any, tmp_path: Path, names: list[str]) -> dict[str, float]:
    path = tmp_path / "mix.mp3"
    path.write_bytes(stack.standin.attachment_bytes(attachment))
    samples, rate = decode(path)
    freqs = {name: tone_of(name.replace(" ", "_")) for name in names}
    found = spectrum_levels(samples, rate, list(freqs.values()))
    return {name: found[freq] for name, freq in freqs.items()}


def member_ledger(stack: Stack, user_id: int) -> list[tuple[str, int]]:
    with stack.db() as conn:
        return [
            (r["kind"], r["amount"])
            for r in conn.execute(
                "SELECT kind, amount FROM ledger WHERE user_id = ? AND kind LIKE 'mix%' ORDER BY id",
                (user_id,),
            )
        ]


async def quota_settings(stack: Stack, **options: Any) -> MessageRecord:
    stack.standin.add_member(MODERATOR, permissions=DEFAULT_MEMBER_PERMISSIONS | Perm.MANAGE_GUILD)
    record = await stack.standin.invoke("quota", options, subcommand="settings", user_id=MODERATOR)
    return await record.wait_for_response(timeout=TIMEOUT)


def serve_tones(stack: Stack) -> None:
    stack.serve_stem_files()
    stack.api.stem_audio_seconds = CLIP_SECONDS
    stack.standin.keep_upload_bytes = True


# -- scenarios -------------------------------------------------------------------------------


async def test_everything_but_the_drums_is_one_file_in_the_thread_holding_the_other_tones(
    stack: Stack, tmp_path: Path
) -> None:
    serve_tones(stack)
    await stack.start_bot()
    result, job_id = await full_split(stack)

    picker = await press_mix(stack, result)

    select = picker_of(picker)
    names = [o["label"] for o in select["options"]]
    assert len(names) == 12 and "Drums" in names and "Backing vocals" in names
    assert select["placeholder"] == "Choose the stems to keep in the mix"
    assert (select["min_values"], select["max_values"]) == (1, 11)
    kept = [n for n in names if n != "Drums"]
    click = await choose(stack, picker, kept)
    assert (
        "Mixing **Job" in click.source_message.text() and "without Drums.mp3" in click.source_message.text()
    )

    row = await mix_done(stack, job_id)
    thread = stack.standin.thread_on(result.id)
    assert thread is not None
    [file] = mp3s_in(stack, thread.id)
    assert file.filename == f"Job {job_id} - without Drums.mp3"
    [message] = [m for m in stack.standin.messages_in(thread.id) if m.attachments]
    assert (
        f"<@{MEMBER}> asked for a mix of Job #{job_id}" in message.text()
        and "(without Drums)" in message.text()
    )
    levels = levels_of(stack, file, tmp_path, names)
    assert levels["Drums"] < ABSENT, levels
    assert all(levels[n] > PRESENT for n in kept), levels
    # The member is told privately where it is, with a link to the message.
    link = f"https://discord.com/channels/{DEFAULT_GUILD_ID}/{thread.id}/{row['message_id']}"
    await stack.standin.wait_for(lambda: link in click.source_message.text(), timeout=TIMEOUT)
    assert member_ledger(stack, MEMBER) == []  # free by default

    # Asked again by someone else: not mixed again, linked.
    again = await choose(stack, await press_mix(stack, result, OTHER_MEMBER), kept, OTHER_MEMBER)
    assert link in again.source_message.text() and "already made" in again.source_message.text()
    assert len(mp3s_in(stack, thread.id)) == 1


async def test_a_mix_and_keeping_share_one_thread(stack: Stack) -> None:
    serve_tones(stack)
    await stack.start_bot()
    result, job_id = await full_split(stack)
    await choose(stack, await press_mix(stack, result), ["Vocals", "Bass"])
    await mix_done(stack, job_id)

    record = await stack.standin.invoke("stems", {"job": job_id}, subcommand="keep")
    await record.wait_for_response(timeout=TIMEOUT)

    def kept() -> bool:
        with stack.db() as conn:
            row = conn.execute("SELECT state FROM keeps WHERE job_id = ?", (job_id,)).fetchone()
        return row is not None and row["state"] == "kept"

    await stack.eventually(kept, timeout=TIMEOUT)
    thread = stack.standin.thread_on(result.id)
    assert thread is not None
    names = [a.filename for a in stack.standin.attachments_in(thread.id)]
    assert len(names) == 13 and f"Job {job_id} - Vocals + Bass.mp3" in names
    assert [t for t in [stack.standin.thread_on(m.id) for m in stack.standin.all_messages()] if t] == [thread]
    # The result now says it is kept, and still offers Mix stems.
    shown = await stack.standin.wait_for(
        lambda: (
            (labels := [c.get("label") for row in result.components for c in row.get("components") or []])
            and "Kept in Discord" in labels
            and labels
        ),
        timeout=TIMEOUT,
    )
    assert MIX in shown


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM])
async def test_a_restart_in_the_middle_posts_the_mix_once(stack: Stack, stop: signal.Signals) -> None:
    serve_tones(stack)
    bot = await stack.start_bot()
    result, job_id = await full_split(stack)
    # The answer to the upload is lost (the file is posted, the bot cannot know): it stops before
    # it learns, and the next process must find the file rather than post it again.
    stack.standin.lose_response_next(1, f"POST /channels/{result.id}/messages", close=True)

    await choose(stack, await press_mix(stack, result), ["Vocals", "Guitar"])
    thread = await stack.standin.wait_for(lambda: stack.standin.thread_on(result.id), timeout=TIMEOUT)
    await stack.standin.wait_for(lambda: mp3s_in(stack, thread.id), timeout=TIMEOUT)
    children = psutil.Process(bot.proc.pid).children(recursive=True)
    [mixer] = mixing_children(psutil.Process(bot.proc.pid))  # the mix was made in a process of its own
    # ...which loaded PyAV but not discord.py's HTTP client (nor the bot's: aiohttp, compiled parts).
    mapped = [m.path for m in mixer.memory_maps()]
    assert any("libavcodec" in p or "/av/" in p for p in mapped)
    assert not [p for p in mapped if "aiohttp" in p or "asyncpg" in p]
    bot.proc.send_signal(stop)
    await bot.proc.wait()
    assert mix_row(stack, job_id)["state"] == "posting"
    # Whether the bot stopped (SIGTERM) or was killed, none of its processes outlives it.
    _, alive = await asyncio.to_thread(psutil.wait_procs, children, STOP_GRACE + 5)
    assert alive == []

    await stack.start_bot()

    row = await mix_done(stack, job_id)
    [file] = mp3s_in(stack, thread.id)
    assert row["message_id"] == file.message_id


async def test_a_restart_before_the_file_is_made_still_posts_it_once(stack: Stack) -> None:
    serve_tones(stack)
    bot = await stack.start_bot()
    result, job_id = await full_split(stack)
    # The guitar's file fails twice first: the mix is still downloading when the bot is stopped.
    stack.api.failing_stems["Guitar"] = 2

    await choose(stack, await press_mix(stack, result), ["Vocals", "Guitar"])
    await stack.eventually(
        lambda: any(
            name.endswith("_Guitar.mp3") and status == 503 for name, status in stack.api.file_requests
        ),
        timeout=TIMEOUT,
    )
    bot.proc.send_signal(signal.SIGKILL)
    await bot.proc.wait()
    assert mix_row(stack, job_id)["state"] in ("pending", "working")

    await stack.start_bot()

    await mix_done(stack, job_id)
    thread = stack.standin.thread_on(result.id)
    assert thread is not None and len(mp3s_in(stack, thread.id)) == 1


async def test_a_price_is_charged_and_refunded_once_when_a_stem_cannot_be_fetched(stack: Stack) -> None:
    serve_tones(stack)
    await stack.start_bot()
    await quota_settings(stack, mix_price=7)
    result, job_id = await full_split(stack)
    stack.api.html_stems.add("Bass")  # an HTML page instead of the bass: refused, never mixed

    picker = await press_mix(stack, result)
    assert "It costs 7 credits." in picker.text()
    click = await choose(stack, picker, ["Vocals", "Bass"])
    assert "7 credits charged" in click.source_message.text()

    row = await mix_done(stack, job_id, state="failed")
    assert "Bass could not be fetched" in row["failure"]
    assert member_ledger(stack, MEMBER) == [("mix_charge", -7), ("mix_refund", 7)]
    await stack.standin.wait_for(lambda: "came back" in click.source_message.text(), timeout=TIMEOUT)
    assert "Bass could not be fetched" in click.source_message.text()
    thread = stack.standin.thread_on(result.id)
    assert thread is None or mp3s_in(stack, thread.id) == []  # nothing half-made is posted


async def test_mix_stems_off_offers_no_button_and_refuses_the_command(stack: Stack) -> None:
    serve_tones(stack)
    await stack.start_bot()
    earlier, earlier_job = await full_split(stack)
    await quota_settings(stack, mix_stems="off")

    later, later_job = await full_split(stack, audio_id="audio-2")
    answer = await press_mix(stack, earlier)  # the button on an older result answers why not
    record = await stack.standin.invoke("stems", {"job": later_job}, subcommand="mix")
    refused = await record.wait_for_response(timeout=TIMEOUT)

    assert MIX not in [c.get("label") for row in later.components for c in row.get("components") or []]
    for message in (answer, refused):
        assert "Mixing stems is turned off in this server" in message.text()
    assert mix_row(stack, earlier_job) is None and mix_row(stack, later_job) is None


async def test_expired_links_of_stems_not_kept_are_said_plainly_and_cost_nothing(stack: Stack) -> None:
    serve_tones(stack)
    await stack.start_bot()
    await quota_settings(stack, mix_price=5)
    result, job_id = await full_split(stack)
    with stack.db() as conn:
        conn.execute("UPDATE jobs SET links_expire_at = 1000 WHERE id = ?", (job_id,))

    click = await choose(stack, await press_mix(stack, result), ["Vocals"])

    answer = await click.wait_for_response(timeout=TIMEOUT)
    assert "expired" in answer.text() and "not kept in Discord" in answer.text()
    assert "Nothing was charged" in answer.text()
    assert mix_row(stack, job_id) is None and member_ledger(stack, MEMBER) == []


async def test_the_stems_mix_command_gives_the_picker_for_any_job_of_the_server(stack: Stack) -> None:
    serve_tones(stack)
    await stack.start_bot()
    _, job_id = await full_split(stack)  # the member's split

    record = await stack.standin.invoke("stems", {"job": job_id}, subcommand="mix", user_id=OTHER_MEMBER)
    picker = await record.wait_for_response(timeout=TIMEOUT)
    await choose(stack, picker, ["Drums", "Bass"], OTHER_MEMBER)

    row = await mix_done(stack, job_id)
    assert row["requested_by"] == OTHER_MEMBER and row["filename"] == f"Job {job_id} - Drums + Bass.mp3"
    await asyncio.sleep(0)
