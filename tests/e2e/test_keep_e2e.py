"""Keeping stems in Discord (issue 9) end to end: the real bot process, the Discord stand-in
(threads, hashed uploads, history, permissions) and the API simulator serving the stem files.
Each test checks what a member sees and what Discord received, down to the bytes of every file."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any
from urllib.parse import urlsplit

import pytest

from testing.discord_standin import (
    DEFAULT_APP_PERMISSIONS,
    DEFAULT_CHANNEL_ID,
    DEFAULT_GUILD_ID,
    DEFAULT_MEMBER_PERMISSIONS,
    DEFAULT_USER_ID,
    AttachmentRecord,
    InteractionRecord,
    MessageRecord,
    Perm,
)
from tests.e2e.conftest import Stack, button

READY = "download now, they cannot be renewed"  # leads every result message
KEEP = "Keep in Discord"
KEPT = "Kept in Discord"
STEM_BYTES = 24 * 1024
TIMEOUT = 20.0
MEMBER = DEFAULT_USER_ID
OTHER_MEMBER = DEFAULT_USER_ID + 7
MODERATOR = DEFAULT_USER_ID + 1
MOD_PERMISSIONS = DEFAULT_MEMBER_PERMISSIONS | Perm.MANAGE_GUILD


# -- helpers ---------------------------------------------------------------------------------


async def finished_split(stack: Stack, **kwargs: Any) -> tuple[InteractionRecord, MessageRecord, int]:
    """A /split to its result: the record, the result message and the job's number."""
    record = await stack.split(**kwargs)
    result = await record.wait_for_edit(lambda m: READY in m.text(), timeout=TIMEOUT)
    [job] = await stack.eventually(lambda: [j for j in stack.jobs() if j["delivery"] == "delivered"][-1:])
    return record, result, int(job["id"])


def file_label(url: str) -> str:
    """The simulator's label of a stem file (`<uuid>_Backing_Vocals.mp3` -> `Backing_Vocals`)."""
    return urlsplit(url).path.rsplit("/", 1)[-1].rsplit(".", 1)[0].split("_", 1)[1]


def hashes(attachments: list[AttachmentRecord]) -> dict[str, str]:
    names = [a.filename for a in attachments]
    assert len(names) == len(set(names)), f"a stem was posted twice: {names}"
    return {a.filename: a.sha256 for a in attachments}


def labels(message: MessageRecord) -> list[str]:
    return [str(c.get("label")) for row in message.components for c in row.get("components") or []]


def keep_row(stack: Stack, job_id: int) -> Any:
    with stack.db() as conn:
        return conn.execute("SELECT * FROM keeps WHERE job_id = ?", (job_id,)).fetchone()


async def kept(stack: Stack, job_id: int) -> Any:
    """The keep once done and shown on the result message."""

    def done() -> Any:
        row = keep_row(stack, job_id)
        return row is not None and row["state"] == "kept" and row["marked"] and row

    return await stack.eventually(done, timeout=TIMEOUT)


async def press_keep(stack: Stack, message: MessageRecord, **kwargs: Any) -> MessageRecord:
    """Press Keep in Discord on a result; the private answer."""
    click = await stack.standin.click(message, button(message, KEEP)["custom_id"], **kwargs)
    answer = await click.wait_for_response(timeout=TIMEOUT)
    assert answer.ephemeral, answer
    return answer


async def stems_keep(stack: Stack, job_id: int, **kwargs: Any) -> MessageRecord:
    """`/stems keep job:N`; the private answer."""
    record = await stack.standin.invoke("stems", {"job": job_id}, subcommand="keep", **kwargs)
    answer = await record.wait_for_response(timeout=TIMEOUT)
    assert answer.ephemeral and record.visible_text(include_ephemeral=False) == "", record
    return answer


def thread_url(thread_id: int) -> str:
    return f"https://discord.com/channels/{DEFAULT_GUILD_ID}/{thread_id}"


# -- scenarios -------------------------------------------------------------------------------


async def test_keep_a_2_stem_result_with_the_button(stack: Stack) -> None:
    stack.serve_stem_files(STEM_BYTES)
    await stack.start_bot()
    record, result, job_id = await finished_split(stack)

    first, second = await asyncio.gather(press_keep(stack, result), press_keep(stack, result))

    assert f"Keeping Job #{job_id} in Discord" in first.text()
    assert f"Job #{job_id} is " in second.text()  # being kept, or kept: one keep either way
    await kept(stack, job_id)
    thread = stack.standin.thread_on(result.id)
    assert thread is not None and thread.parent_id == DEFAULT_CHANNEL_ID
    assert (thread.name, thread.auto_archive_duration) == (f"Stems · 2 stems · job #{job_id}", 10080)
    files = stack.standin.attachments_in(thread.id)
    assert [a.filename for a in files] == ["Vocals.mp3", "Instrumental.mp3"]
    assert hashes(files) == stack.stem_hashes(job_id)
    assert {a.content_type for a in files} == {"audio/mpeg"}
    [files_message] = stack.standin.messages_in(thread.id)
    assert f"Job #{job_id}" in files_message.text()

    shown = await record.wait_for_edit(lambda m: KEPT in labels(m), timeout=TIMEOUT)
    assert KEEP not in labels(shown)
    assert button(shown, KEPT)["url"] == thread_url(thread.id)
    assert thread_url(thread.id) in shown.text()

    # Asked again, by the button or the command: pointed to the thread, nothing posted.
    posted = len(stack.standin.messages_in(thread.id))
    again = await stems_keep(stack, job_id)
    assert f"Job #{job_id} is kept in Discord" in again.text() and thread_url(thread.id) in again.text()
    assert len(stack.standin.messages_in(thread.id)) == posted
    assert len(stack.standin.attachments_in(thread.id)) == 2
    assert len([f for f in stack.api.file_requests if f[1] == 200]) == 2  # each file downloaded once


async def test_keep_a_12_stem_result_with_the_command_in_messages_within_discords_limits(
    stack: Stack,
) -> None:
    stack.serve_stem_files(STEM_BYTES)
    stack.standin.attachment_size_limit = 4 * STEM_BYTES + 1000  # reported with the /split
    await stack.start_bot()
    _, result, job_id = await finished_split(stack, mode="split_stem")

    answer = await stems_keep(stack, job_id)

    assert f"Keeping Job #{job_id} in Discord" in answer.text()
    await kept(stack, job_id)
    thread = stack.standin.thread_on(result.id)
    assert thread is not None and thread.name == f"Stems · 12 stems · job #{job_id}"
    files = stack.standin.attachments_in(thread.id)
    assert len(files) == 12
    assert hashes(files) == stack.stem_hashes(job_id)
    assert "Backing vocals.mp3" in hashes(files)
    messages = stack.standin.messages_in(thread.id)
    per_message = [[a for a in files if a.message_id == m.id] for m in messages]
    assert [len(m) for m in per_message] == [4, 4, 4]  # packed in order, each message filled
    assert all(sum(a.size for a in m) <= stack.standin.attachment_size_limit for m in per_message)


async def test_a_12_stem_result_goes_ten_files_to_a_message_under_a_large_limit(stack: Stack) -> None:
    stack.serve_stem_files(STEM_BYTES)
    await stack.start_bot()
    _, result, job_id = await finished_split(stack, mode="split_stem")

    await stems_keep(stack, job_id)

    await kept(stack, job_id)
    files = stack.standin.attachments_in(result.id)
    assert hashes(files) == stack.stem_hashes(job_id)
    assert [len(m.attachments) for m in stack.standin.messages_in(result.id)] == [10, 2]


async def test_a_stem_over_the_upload_limit_stays_a_link_named_with_its_size(stack: Stack) -> None:
    stack.serve_stem_files(STEM_BYTES)
    stack.standin.attachment_size_limit = 1024 * 1024
    stack.api.stem_sizes["Instrumental"] = 1536 * 1024
    await stack.start_bot()
    record, result, job_id = await finished_split(stack)

    await press_keep(stack, result)

    await kept(stack, job_id)
    files = stack.standin.attachments_in(result.id)
    assert [a.filename for a in files] == ["Vocals.mp3"]
    assert files[0].sha256 == stack.stem_hashes(job_id)["Vocals.mp3"]
    note = stack.standin.messages_in(result.id)[-1]
    assert not note.attachments
    assert "**Instrumental.mp3**, 1.5 MB" in note.text()
    [(_, instrumental)] = [s for s in json.loads(stack.jobs()[0]["stems"]) if s[0] == "instrumental"]
    assert instrumental in note.text()  # the link, while it lasts
    await record.wait_for_edit(lambda m: KEPT in labels(m), timeout=TIMEOUT)


async def test_an_html_page_instead_of_a_stem_is_never_posted(stack: Stack) -> None:
    stack.serve_stem_files(STEM_BYTES)
    stack.api.html_stems.add("Vocals")
    await stack.start_bot()
    _, result, job_id = await finished_split(stack)

    await press_keep(stack, result)

    await kept(stack, job_id)
    files = stack.standin.attachments_in(result.id)
    assert [a.filename for a in files] == ["Instrumental.mp3"]
    assert files[0].sha256 == stack.stem_hashes(job_id)["Instrumental.mp3"]
    note = stack.standin.messages_in(result.id)[-1]
    assert "**Vocals.mp3**" in note.text() and not note.attachments
    downloaded = {name.rsplit("_", 1)[-1] for name, _ in stack.api.file_requests}
    assert downloaded == {"Vocals.mp3", "Instrumental.mp3"}


@pytest.mark.parametrize(
    ("lost_answer", "stop"),
    [
        ("500", None),  # discord.py sends it again itself, with the same nonce
        ("closed", None),  # the keeper tries again later: the thread already has the file
        (None, signal.SIGTERM),
        (None, signal.SIGKILL),
        ("closed", signal.SIGKILL),  # the answer lost, then the bot gone before it knew
    ],
)
async def test_a_restart_or_a_lost_answer_in_the_middle_posts_every_stem_once(
    stack: Stack, lost_answer: str | None, stop: signal.Signals | None
) -> None:
    stack.serve_stem_files(STEM_BYTES)
    stack.standin.attachment_size_limit = STEM_BYTES + 1000  # one stem to a message
    bot = await stack.start_bot()
    _, result, job_id = await finished_split(stack, mode="split_stem")
    if lost_answer:
        route = f"POST /channels/{result.id}/messages"
        stack.standin.lose_response_next(1, route, close=lost_answer == "closed")
    if stop is not None:
        # The third stem's file fails once first: a moment after the first files message to stop in.
        stack.api.failing_stems[file_label(stack.stem_urls(job_id)[2])] = 1

    await stems_keep(stack, job_id)

    await stack.standin.wait_for(lambda: stack.standin.attachments_in(result.id), timeout=TIMEOUT)
    if stop is not None:
        bot.proc.send_signal(stop)
        await bot.proc.wait()
        assert len(stack.standin.attachments_in(result.id)) < 12  # stopped in the middle
        await stack.start_bot()
    await kept(stack, job_id)
    files = stack.standin.attachments_in(result.id)
    assert hashes(files) == stack.stem_hashes(job_id)
    assert len(files) == 12 and [len(m.attachments) for m in stack.standin.messages_in(result.id)] == [1] * 12
    if lost_answer:
        posts = [r.status for r in stack.standin.requests if r.path == f"/channels/{result.id}/messages"]
        assert posts[0] == (500 if lost_answer == "500" else 0)  # the answer was lost


async def set_keep_stems(stack: Stack, value: str) -> MessageRecord:
    record = await stack.standin.invoke(
        "quota", {"keep_stems": value}, subcommand="settings", user_id=MODERATOR
    )
    return await record.wait_for_response(timeout=TIMEOUT)


async def test_keep_stems_always_keeps_every_result_without_a_click(stack: Stack) -> None:
    stack.serve_stem_files(STEM_BYTES)
    stack.standin.add_member(MODERATOR, permissions=MOD_PERMISSIONS)
    await stack.start_bot()
    await set_keep_stems(stack, "always")

    record, result, job_id = await finished_split(stack)

    await kept(stack, job_id)
    assert keep_row(stack, job_id)["requested_by"] is None  # nobody asked
    files = stack.standin.attachments_in(result.id)
    assert hashes(files) == stack.stem_hashes(job_id)
    shown = await record.wait_for_edit(lambda m: KEPT in labels(m), timeout=TIMEOUT)
    assert KEEP not in labels(shown) and button(shown, KEPT)["url"] == thread_url(result.id)
    assert [i.name for i in stack.standin.interactions] == ["quota settings", "split"]  # no click, no command


async def test_keep_stems_off_offers_no_button_and_refuses_the_command(stack: Stack) -> None:
    stack.serve_stem_files(STEM_BYTES)
    stack.standin.add_member(MODERATOR, permissions=MOD_PERMISSIONS)
    await stack.start_bot()
    await set_keep_stems(stack, "off")

    _, result, job_id = await finished_split(stack)

    assert KEEP not in labels(result)
    refused = await stems_keep(stack, job_id)
    assert "Keeping stems in Discord is turned off in this server" in refused.text()
    assert keep_row(stack, job_id) is None
    assert stack.standin.thread_on(result.id) is None and stack.api.file_requests == []


@pytest.mark.parametrize("why", ["threadless channel", "no Create Public Threads"])
async def test_where_no_thread_can_be_made_the_files_reply_to_the_result(stack: Stack, why: str) -> None:
    stack.serve_stem_files(STEM_BYTES)
    channel = stack.standin.add_text_channel("voice-chat")
    if why == "threadless channel":
        stack.standin.no_thread_channels.add(channel)
    else:
        stack.standin.channel_permissions[channel] = DEFAULT_APP_PERMISSIONS & ~Perm.CREATE_PUBLIC_THREADS
    await stack.start_bot()
    record, result, job_id = await finished_split(stack, channel_id=channel)

    await press_keep(stack, result)

    row = await kept(stack, job_id)
    assert row["place"] == "replies" and stack.standin.thread_on(result.id) is None
    files = stack.standin.attachments_in(channel)
    assert hashes(files) == stack.stem_hashes(job_id)
    [reply] = stack.standin.channel_messages(channel)
    assert reply.reference_id == result.id and len(reply.attachments) == 2
    shown = await record.wait_for_edit(lambda m: KEPT in labels(m), timeout=TIMEOUT)
    assert (
        button(shown, KEPT)["url"] == f"https://discord.com/channels/{DEFAULT_GUILD_ID}/{channel}/{result.id}"
    )


async def test_without_attach_files_the_member_is_told_privately_and_nothing_changes(stack: Stack) -> None:
    stack.serve_stem_files(STEM_BYTES)
    channel = stack.standin.add_text_channel("no-files")
    stack.standin.channel_permissions[channel] = DEFAULT_APP_PERMISSIONS & ~Perm.ATTACH_FILES
    await stack.start_bot()
    _, result, job_id = await finished_split(stack, channel_id=channel)
    before = [m.text() for m in stack.standin.messages_in(channel)]
    edits = len(result.edits)

    refused = await press_keep(stack, result)

    assert "Attach Files" in refused.text() and "nothing was changed" in refused.text()
    assert keep_row(stack, job_id) is None and stack.api.file_requests == []
    assert stack.standin.thread_on(result.id) is None
    assert [m.text() for m in stack.standin.messages_in(channel)] == before
    assert KEEP in labels(result) and len(result.edits) == edits


async def test_a_result_delivered_by_dm_is_kept_in_the_dm(stack: Stack) -> None:
    stack.serve_stem_files(STEM_BYTES)
    stack.api.processing_seconds = 1.0
    stack.standin.channel_forbidden.add(DEFAULT_CHANNEL_ID)
    await stack.start_bot()
    record = await stack.split()
    await record.wait_for_edit(lambda m: "working on your track" in m.text(), timeout=TIMEOUT)
    record.expire_token()
    result = await stack.standin.wait_for_dm(MEMBER, lambda m: READY in m.text(), timeout=TIMEOUT)
    [job] = await stack.eventually(lambda: [j for j in stack.jobs() if j["delivery"] == "delivered"])
    assert job["delivered_via"] == "dm"

    answer = await press_keep(stack, result)

    assert "your DMs" in answer.text()
    row = await kept(stack, job["id"])
    dm = stack.standin.dm_channel_id(MEMBER)
    assert (row["place"], row["channel_id"]) == ("dm", dm)
    assert hashes(stack.standin.attachments_in(dm)) == stack.stem_hashes(job["id"])
    assert stack.standin.thread_on(result.id) is None
    shown = await stack.standin.wait_for(lambda: KEPT in labels(result) and result, timeout=TIMEOUT)
    assert button(shown, KEPT)["url"] == f"https://discord.com/channels/@me/{dm}"


async def test_another_member_may_not_keep_a_result_but_a_moderator_may(stack: Stack) -> None:
    stack.serve_stem_files(STEM_BYTES)
    stack.standin.add_member(MODERATOR, permissions=MOD_PERMISSIONS)
    bot = await stack.start_bot()
    _, result, job_id = await finished_split(stack)

    refused = await press_keep(stack, result, user_id=OTHER_MEMBER)

    assert f"Job #{job_id} is another member's split" in refused.text()
    assert keep_row(stack, job_id) is None and stack.standin.thread_on(result.id) is None
    assert stack.api.file_requests == [] and KEEP in labels(result)
    bot.proc.send_signal(signal.SIGTERM)  # the button still works after a restart
    await bot.proc.wait()
    await stack.start_bot()

    answer = await press_keep(stack, result, user_id=MODERATOR)

    assert f"Keeping Job #{job_id} in Discord" in answer.text()
    assert (await kept(stack, job_id))["requested_by"] == MODERATOR
    assert hashes(stack.standin.attachments_in(result.id)) == stack.stem_hashes(job_id)


async def test_discord_refusing_packs_it_reported_as_allowed_still_posts_every_stem_once(
    stack: Stack,
) -> None:
    stack.serve_stem_files(STEM_BYTES)
    stack.standin.enforced_upload_limit = 3 * STEM_BYTES + 1000  # below the 10 MB it reports
    await stack.start_bot()
    _, result, job_id = await finished_split(stack, mode="split_stem")

    await stems_keep(stack, job_id)

    await kept(stack, job_id)
    files = stack.standin.attachments_in(result.id)
    assert hashes(files) == stack.stem_hashes(job_id)
    sizes = [sum(a["size"] for a in m.attachments) for m in stack.standin.messages_in(result.id)]
    assert all(0 < size <= stack.standin.upload_limit for size in sizes)
    assert keep_row(stack, job_id)["upload_limit"] < stack.standin.attachment_size_limit  # learnt
    # Discord's 413s were the point here (the fixture would count them as the bot's mistakes).
    assert stack.standin.rejected and {r.status for r in stack.standin.rejected} == {413}
    stack.standin.rejected.clear()


@pytest.mark.parametrize("close", [False, True])
async def test_a_lost_answer_to_opening_the_thread_still_makes_one_thread(stack: Stack, close: bool) -> None:
    stack.serve_stem_files(STEM_BYTES)
    await stack.start_bot()
    record, result, job_id = await finished_split(stack)
    stack.standin.lose_response_next(1, f"/messages/{result.id}/threads", close=close)

    await press_keep(stack, result)

    row = await kept(stack, job_id)
    assert (row["place"], row["channel_id"]) == ("thread", result.id)
    assert hashes(stack.standin.attachments_in(result.id)) == stack.stem_hashes(job_id)
    opened = [r.status for r in stack.standin.requests if r.path.endswith(f"/messages/{result.id}/threads")]
    assert opened[0] == (0 if close else 500) and opened[1:] == [400]  # "already created": found it
    await record.wait_for_edit(lambda m: KEPT in labels(m), timeout=TIMEOUT)


async def test_a_result_in_several_messages_gets_its_thread_on_the_first(stack: Stack) -> None:
    stack.serve_stem_files(STEM_BYTES)
    stack.api.url_length = 900  # long links: twelve of them take more than one message
    await stack.start_bot()
    record, _, job_id = await finished_split(stack, mode="split_stem")
    first, *rest = [m for m in record.messages if not m.ephemeral]
    assert rest and KEEP in labels(rest[-1])

    await press_keep(stack, rest[-1])

    await kept(stack, job_id)
    assert stack.standin.thread_on(first.id) is not None
    assert all(stack.standin.thread_on(m.id) is None for m in rest)
    assert await stack.standin.wait_for(lambda: thread_url(first.id) in first.text(), timeout=TIMEOUT)
    assert hashes(stack.standin.attachments_in(first.id)) == stack.stem_hashes(job_id)
    shown = await stack.standin.wait_for(lambda: KEPT in labels(rest[-1]) and rest[-1], timeout=TIMEOUT)
    assert KEEP not in labels(shown) and button(shown, KEPT)["url"] == thread_url(first.id)


async def test_a_late_result_posted_in_the_channel_is_kept_in_a_thread_on_it(stack: Stack) -> None:
    stack.serve_stem_files(STEM_BYTES)
    stack.api.processing_seconds = 1.0
    await stack.start_bot()
    record = await stack.split()
    await record.wait_for_edit(lambda m: "working on your track" in m.text(), timeout=TIMEOUT)
    record.expire_token()
    result = await stack.standin.wait_for_channel_message(
        DEFAULT_CHANNEL_ID, lambda m: READY in m.text(), timeout=TIMEOUT
    )
    [job] = await stack.eventually(lambda: [j for j in stack.jobs() if j["delivery"] == "delivered"])

    await press_keep(stack, result)

    await kept(stack, job["id"])
    assert hashes(stack.standin.attachments_in(result.id)) == stack.stem_hashes(job["id"])
    shown = await stack.standin.wait_for(lambda: KEPT in labels(result) and result, timeout=TIMEOUT)
    assert shown.text().startswith(f"<@{MEMBER}>") and thread_url(result.id) in shown.text()
