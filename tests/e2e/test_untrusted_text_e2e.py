"""Ids are not Markdown, end to end: what members type (ids, moderators' reasons) reaches every
reader as the words typed, never as a link, a mention or formatting under the bot's name."""

from __future__ import annotations

from testing.discord_standin import DEFAULT_MEMBER_PERMISSIONS, DEFAULT_USER_ID, MessageRecord, Perm
from tests.e2e.conftest import Stack
from tests.unit_helpers import HOSTILE, markdown_dangers

MEMBER = DEFAULT_USER_ID
MODERATOR = DEFAULT_USER_ID + 1
TIMEOUT = 15.0
PHISHING_ID = "x`[Verify](https://evil.example)`"


def everything_posted(stack: Stack) -> list[MessageRecord]:
    """Every message of the bot's that anyone could read: interaction replies (public and
    private), channel messages anywhere."""
    messages = [m for record in stack.standin.interactions for m in record.messages]
    channels = {stack.standin.channel_id, *(m.channel_id for m in messages)}
    return messages + [m for channel in channels for m in stack.standin.channel_messages(channel)]


async def test_an_id_that_would_post_a_link_is_refused_privately_and_costs_nothing(stack: Stack) -> None:
    await stack.start_bot()
    calls = len(stack.api.calls)

    for option in ("task_id", "audio_id"):
        record = await stack.split(**{option: PHISHING_ID})
        answer = await record.wait_for_response(timeout=TIMEOUT)
        assert answer.ephemeral and f"`{option}`" in answer.text()
        assert "letters, digits, `-` and `_` only" in answer.text() and "Nothing was charged" in answer.text()
        assert record.visible_text(include_ephemeral=False) == ""

    assert stack.api.submits == [] and len(stack.api.calls) == calls
    assert stack.jobs() == []
    with stack.db() as conn:
        assert conn.execute("SELECT COUNT(*) FROM ledger WHERE kind != 'allowance'").fetchone()[0] == 0
    posted = everything_posted(stack)
    assert posted and not any("evil.example" in m.text() for m in posted)  # the id is never repeated
    assert [m for m in posted if not m.ephemeral] == []


async def test_a_moderators_hostile_reason_reaches_the_member_and_the_audit_channel_as_words(
    stack: Stack,
) -> None:
    stack.standin.add_member(MODERATOR, permissions=DEFAULT_MEMBER_PERMISSIONS | Perm.MANAGE_GUILD)
    audit = stack.standin.add_text_channel("stembot-log")
    await stack.start_bot()
    settings = await stack.standin.invoke(
        "quota", {"audit_channel": audit}, subcommand="settings", user_id=MODERATOR
    )
    await settings.wait_for_response(timeout=TIMEOUT)

    block = await stack.standin.invoke(
        "quota", {"member": MEMBER, "reason": HOSTILE}, subcommand="block", user_id=MODERATOR
    )
    reply = await block.wait_for_response(timeout=TIMEOUT)
    line = await stack.standin.wait_for_channel_message(
        audit, lambda m: "blocked" in m.content, timeout=TIMEOUT
    )
    split = await stack.split(user_id=MEMBER)
    refusal = await split.wait_for(
        lambda r: next((m for m in r.messages if "blocked you" in m.text()), None), timeout=TIMEOUT
    )
    credits = await stack.credits(MEMBER)

    for text in (reply.text(), line.content, refusal.text(), credits):
        assert "Verify" in text and markdown_dangers(text) == [], text
    # The audit line names the moderator and the member, and pings nobody, whatever the reason says.
    assert line.content.startswith(f"🧾 <@{MODERATOR}> blocked <@{MEMBER}>")
    assert line.pinged_user_ids == [] and line.current.allowed_mentions is not None
    assert not (line.current.allowed_mentions.get("parse") or [])
    assert stack.api.submits == [] and stack.jobs() == []
