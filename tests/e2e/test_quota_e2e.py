"""Moderators run the credit economy from Discord, end to end: the real bot process, a local
Discord (members with permissions and roles), the API simulator and the bot's database."""

from __future__ import annotations

import datetime as dt
import re
import signal
import time
from typing import Any
from zoneinfo import ZoneInfo

from testing.discord_standin import (
    DEFAULT_CHANNEL_ID,
    DEFAULT_MEMBER_PERMISSIONS,
    DEFAULT_USER_ID,
    InteractionRecord,
    MessageRecord,
    Perm,
)
from tests.e2e.conftest import Stack, button

MEMBER = DEFAULT_USER_ID
MODERATOR = DEFAULT_USER_ID + 1
BYSTANDER = DEFAULT_USER_ID + 2
SUPPORTER = DEFAULT_USER_ID + 3
MOD_PERMISSIONS = DEFAULT_MEMBER_PERMISSIONS | Perm.MANAGE_GUILD
READY = "download now, they cannot be renewed"  # leads every result message
NOT_A_MODERATOR = "Only moderators can"
TIMEOUT = 15.0


async def quota(
    stack: Stack,
    subcommand: str,
    options: dict[str, Any] | None = None,
    *,
    user_id: int = MEMBER,
    **kwargs: Any,
) -> tuple[InteractionRecord, MessageRecord]:
    """Run `/quota <subcommand>` as `user_id`; the record and the reply the member sees."""
    record = await stack.standin.invoke(
        "quota", options or {}, subcommand=subcommand, user_id=user_id, **kwargs
    )
    return record, await record.wait_for_response(timeout=TIMEOUT)


def assert_private(record: InteractionRecord) -> None:
    """Every /quota reply is for the one who ran the command only."""
    assert record.messages and all(m.ephemeral for m in record.messages), record
    assert record.visible_text(include_ephemeral=False) == ""


def ledger(stack: Stack, user_id: int) -> list[tuple[Any, ...]]:
    """The member's ledger rows, oldest first: (kind, amount, bonus change, balance after, actor, reason)."""
    with stack.db() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                "SELECT kind, amount, bonus_change, balance_after, actor_id, reason FROM ledger "
                "WHERE user_id = ? ORDER BY id",
                (user_id,),
            )
        ]


def add_moderator(stack: Stack, user_id: int = MODERATOR) -> int:
    return stack.standin.add_member(user_id, permissions=MOD_PERMISSIONS)


async def test_moderator_grant_shows_in_the_members_credits_and_history(stack: Stack) -> None:
    add_moderator(stack)
    await stack.start_bot()

    record, reply = await quota(
        stack, "grant", {"member": MEMBER, "amount": 50, "reason": "contest winner"}, user_id=MODERATOR
    )
    assert_private(record)
    text = reply.text()
    assert "Credits granted" in text
    assert f"<@{MEMBER}>: **100** → **150** credits (+50)" in text
    assert "Now 100 allowance + 50 bonus." in text and "Reason: contest winner" in text

    credits = await stack.credits(MEMBER)
    assert "**150** credits" in credits
    assert "**150** credits · 100 allowance + 50 bonus" in credits  # the bonus, apart from the allowance

    grant_line = f"**+50** → 150 · bonus granted: contest winner · <@{MODERATOR}>"
    own, own_page = await quota(stack, "history", user_id=MEMBER)
    assert_private(own)
    assert grant_line in own_page.text()
    assert "**+100** → 100 · starting credits · StemBot" in own_page.text()
    assert own_page.components == []  # one page: no buttons
    moderators, page = await quota(stack, "history", {"member": MEMBER}, user_id=MODERATOR)
    assert_private(moderators)
    assert grant_line in page.text() and "Page 1 of 1 · 2 changes" in page.text()

    # Taking away more than they have is refused with their balance; nothing changes.
    _, refused = await quota(stack, "grant", {"member": MEMBER, "amount": -200}, user_id=MODERATOR)
    assert f"<@{MEMBER}> has 150 credits, so 200 credits can't be taken away" in refused.text()

    assert ledger(stack, MEMBER) == [
        ("allowance", 100, 0, 100, None, "starting credits"),
        ("grant", 50, 50, 150, MODERATOR, "contest winner"),
    ]
    assert ledger(stack, MODERATOR) == []  # a moderator's own credits are untouched
    assert stack.api.submits == []


async def test_non_moderator_is_told_why_and_nothing_changes(stack: Stack) -> None:
    role = stack.standin.add_role("Regulars")
    stack.standin.add_member(BYSTANDER, roles=[role])  # a role, but no Manage Server
    await stack.start_bot()

    record, reply = await quota(
        stack, "grant", {"member": MEMBER, "amount": 50, "reason": "please"}, user_id=BYSTANDER
    )
    assert_private(record)
    assert "Can't do that" in reply.text()
    assert (
        "Only moderators can grant credits: that needs the Manage Server permission. Nothing was changed; "
        "ask a moderator if it needs doing." in reply.text()
    )
    assert ledger(stack, MEMBER) == []  # not even an account was opened

    record, reply = await quota(stack, "history", {"member": MEMBER}, user_id=BYSTANDER)
    assert_private(record)
    assert "Only moderators can see other members' history" in reply.text()

    assert "**100** credits" in await stack.credits(MEMBER)
    assert [row[0] for row in ledger(stack, MEMBER)] == ["allowance"]
    assert stack.api.submits == []


async def test_the_configured_moderator_role_may_grant(stack: Stack) -> None:
    mods = stack.standin.add_role("Credit Mods")
    other = stack.standin.add_role("Regulars")
    # An administrator (Discord's Administrator flag, without the Manage Server bit itself).
    admin = stack.standin.add_member(
        DEFAULT_USER_ID + 10, permissions=DEFAULT_MEMBER_PERMISSIONS | Perm.ADMINISTRATOR
    )
    helper = stack.standin.add_member(DEFAULT_USER_ID + 11, roles=[mods])
    regular = stack.standin.add_member(DEFAULT_USER_ID + 12, roles=[other])
    await stack.start_bot()

    # Before the role is configured, it means nothing.
    _, before = await quota(stack, "grant", {"member": MEMBER, "amount": 25}, user_id=helper)
    assert NOT_A_MODERATOR in before.text()

    record, reply = await quota(stack, "settings", {"moderator_role": mods}, user_id=admin)
    assert_private(record)
    assert f"**Changed:** moderator role none → <@&{mods}>" in reply.text()
    assert f"Manage Server, or <@&{mods}>" in reply.text()

    record, reply = await quota(
        stack, "grant", {"member": MEMBER, "amount": 25, "reason": "helping out"}, user_id=helper
    )
    assert_private(record)
    assert f"<@{MEMBER}>: **100** → **125** credits (+25)" in reply.text()

    _, refused = await quota(stack, "grant", {"member": MEMBER, "amount": 25}, user_id=regular)
    assert f"that needs the Manage Server permission or the <@&{mods}> role" in refused.text()

    # Unset again: the role holder is an ordinary member once more.
    _, cleared = await quota(stack, "settings", {"clear": "moderator_role"}, user_id=admin)
    assert f"moderator role <@&{mods}> → none" in cleared.text()
    _, after = await quota(stack, "grant", {"member": MEMBER, "amount": 25}, user_id=helper)
    assert NOT_A_MODERATOR in after.text()

    assert [(kind, amount, actor) for kind, amount, _, _, actor, _ in ledger(stack, MEMBER)] == [
        ("allowance", 100, None),
        ("grant", 25, helper),
    ]
    assert "**125** credits" in await stack.credits(MEMBER)


async def test_blocked_member_cannot_split_until_unblocked(stack: Stack) -> None:
    add_moderator(stack)
    await stack.start_bot()

    record, reply = await quota(
        stack, "block", {"member": MEMBER, "reason": "posting other people's tracks"}, user_id=MODERATOR
    )
    assert_private(record)
    assert f"<@{MEMBER}> can no longer start splits here" in reply.text()
    assert "Reason: posting other people's tracks" in reply.text()

    split = await stack.split(user_id=MEMBER)
    blocked = "A moderator has blocked you from starting splits in this server."
    await split.wait_for(lambda r: any(blocked in m.text() for m in r.messages), timeout=TIMEOUT)
    [message] = split.messages  # the public "thinking…" is gone; only the member sees why
    assert message.ephemeral
    assert split.visible_text(include_ephemeral=False).strip() == ""
    text = message.text()
    assert "Reason given: posting other people's tracks" in text
    assert "Ask a moderator if you think this is a mistake." in text and "Nothing was charged." in text
    assert "100 credits" not in text and "Prices" not in text  # no figures that don't help here
    assert stack.api.submits == []
    assert stack.jobs() == []
    assert "Blocked from starting splits" in await stack.credits(MEMBER)

    record, reply = await quota(stack, "unblock", {"member": MEMBER}, user_id=MODERATOR)
    assert_private(record)
    assert f"<@{MEMBER}> can start splits again." in reply.text()

    split = await stack.split(user_id=MEMBER)
    await split.wait_for_edit(lambda m: READY in m.text(), timeout=20)
    assert not split.original.ephemeral  # type: ignore[union-attr]
    assert len(stack.api.submits) == 1
    [job] = await stack.eventually(lambda: [j for j in stack.jobs() if j["delivery"] == "delivered"])
    assert job["user_id"] == MEMBER and job["state"] == "succeeded"
    assert [(kind, actor, reason) for kind, _, _, _, actor, reason in ledger(stack, MEMBER)][:3] == [
        ("allowance", None, "starting credits"),
        ("block", MODERATOR, "posting other people's tracks"),
        ("unblock", MODERATOR, None),
    ]


async def test_moderator_actions_post_one_line_each_in_the_audit_channel(stack: Stack) -> None:
    add_moderator(stack)
    log_channel = stack.standin.add_text_channel("stembot-log")
    await stack.start_bot()

    def lines() -> list[str]:
        return [m.content for m in stack.standin.channel_messages(log_channel)]

    record, reply = await quota(stack, "settings", {"audit_channel": log_channel}, user_id=MODERATOR)
    assert f"audit channel none → <#{log_channel}>" in reply.text()
    await stack.standin.wait_for(lambda: lines(), timeout=TIMEOUT)

    # Nothing for a refused grant or a mere look.
    await quota(stack, "grant", {"member": MEMBER, "amount": 5}, user_id=BYSTANDER)
    await quota(stack, "view", {"member": MEMBER}, user_id=MODERATOR)

    await quota(
        stack, "grant", {"member": MEMBER, "amount": 50, "reason": "contest winner"}, user_id=MODERATOR
    )
    grant = await stack.standin.wait_for_channel_message(
        log_channel, lambda m: "granted" in m.content, timeout=TIMEOUT
    )
    assert grant.content == (
        f"🧾 <@{MODERATOR}> granted <@{MEMBER}> +50 credits: 100 → 150 · Reason: contest winner"
    )
    assert grant.pinged_user_ids == []  # mentions name people without pinging them
    assert len(lines()) == 2 and sum("granted" in line for line in lines()) == 1
    assert stack.standin.channel_messages(DEFAULT_CHANNEL_ID) == []  # not in the members' channel

    await quota(stack, "block", {"member": BYSTANDER, "reason": "spam"}, user_id=MODERATOR)
    block = await stack.standin.wait_for_channel_message(log_channel, lambda m: "blocked" in m.content)
    assert block.content == f"🧾 <@{MODERATOR}> blocked <@{BYSTANDER}> from starting splits · Reason: spam"
    assert len(lines()) == 3

    # StemBot may not post there: the action still happens and the moderator is told.
    stack.standin.channel_forbidden.add(log_channel)
    record, reply = await quota(stack, "grant", {"member": MEMBER, "amount": -20}, user_id=MODERATOR)
    assert_private(record)
    assert "Couldn't post this in the audit channel" in reply.text()
    assert f"<@{MEMBER}>: **150** → **130** credits (-20)" in reply.text()
    assert len(lines()) == 3
    assert ledger(stack, MEMBER)[-1][:5] == ("grant", -20, -20, 130, MODERATOR)


def next_monday_midnight_utc(now: float) -> int:
    today = dt.datetime.fromtimestamp(now, dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((today + dt.timedelta(days=7 - today.weekday())).timestamp())


async def test_weekly_allowance_applied_now_and_a_role_tier(stack: Stack) -> None:
    add_moderator(stack)
    supporters = stack.standin.add_role("Supporter")
    stack.standin.add_member(SUPPORTER, roles=[supporters])
    bot = await stack.start_bot()
    assert "**100** credits" in await stack.credits(MEMBER)  # an account from before the change

    started = time.time()
    record, reply = await quota(
        stack, "allowance", {"amount": 30, "period": "weekly", "apply_now": True}, user_id=MODERATOR
    )
    assert_private(record)
    assert "Every member: **30 credits** per week" in reply.text()
    assert "**Applied now:**" in reply.text() and "Next refill: <t:" in reply.text()

    _, view = await quota(stack, "view", user_id=MEMBER)
    text = view.text()
    assert "**30** credits" in text
    assert "30 credits per week\n30 left this period" in text
    refill = re.search(r"<t:(\d+):R> \(<t:\1:f>\)\nback to 30 credits", text)
    assert refill is not None, text
    assert int(refill[1]) == next_monday_midnight_utc(started)  # the next Monday, 00:00 UTC
    assert ledger(stack, MEMBER)[-1][:4] == ("refill", -70, 0, 30)

    record, reply = await quota(stack, "allowance", {"amount": 80, "role": supporters}, user_id=MODERATOR)
    assert f"Members with <@&{supporters}>: **80 credits** per week" in reply.text()
    assert "**Takes effect at the next refill**" in reply.text()

    # A member with the role who starts now gets the tier; members without it stay at 30.
    _, view = await quota(stack, "view", user_id=SUPPORTER)
    assert "**80** credits" in view.text() and "80 credits per week" in view.text()
    _, view = await quota(stack, "view", user_id=MEMBER)
    assert "**30** credits" in view.text() and "back to 30 credits" in view.text()
    # The moderator sees a member's figures with that member's roles (from the USER option).
    _, seen = await quota(stack, "view", {"member": SUPPORTER}, user_id=MODERATOR)
    assert f"**80** credits · <@{SUPPORTER}>" in seen.text() and "80 credits per week" in seen.text()

    # The member gets the role: the tier waits for the next refill, unless applied now.
    stack.standin.add_member(MEMBER, roles=[supporters])
    _, view = await quota(stack, "view", user_id=MEMBER)
    assert "**30** credits" in view.text() and "back to 80 credits (new allowance)" in view.text()
    await quota(stack, "allowance", {"amount": 80, "role": supporters, "apply_now": True}, user_id=MODERATOR)
    _, view = await quota(stack, "view", user_id=MEMBER)
    assert "**80** credits" in view.text() and "80 credits per week\n80 left this period" in view.text()
    assert ledger(stack, MEMBER)[-1][:4] == ("refill", 50, 0, 80)

    # A restart never refills twice: the "apply now" was taken once and stays taken.
    rows = ledger(stack, MEMBER)
    bot.proc.send_signal(signal.SIGKILL)
    await bot.proc.wait()
    await stack.start_bot()
    _, view = await quota(stack, "view", user_id=MEMBER)
    assert "**80** credits" in view.text() and "80 credits per week" in view.text()
    assert ledger(stack, MEMBER) == rows


async def test_history_pages_through_the_real_buttons(stack: Stack) -> None:
    add_moderator(stack)
    await stack.start_bot()
    for n in range(1, 12):  # 11 grants + the starting credits: 12 rows, two pages of 10
        _, reply = await quota(
            stack, "grant", {"member": MEMBER, "amount": n, "reason": f"grant {n}"}, user_id=MODERATOR
        )
        assert "Credits granted" in reply.text()
    assert len(ledger(stack, MEMBER)) == 12

    record, page = await quota(stack, "history", user_id=MEMBER)
    assert_private(record)
    first = page.text()
    assert "Page 1 of 2 · 12 changes" in first
    assert "bonus granted: grant 11" in first and "bonus granted: grant 2 ·" in first
    assert "grant 1 ·" not in first and "starting credits" not in first
    assert button(page, "◀ Prev").get("disabled") and not button(page, "Next ▶").get("disabled")

    # A grant meanwhile doesn't shift the pages the member is turning.
    await quota(stack, "grant", {"member": MEMBER, "amount": 12, "reason": "grant 12"}, user_id=MODERATOR)
    click = await stack.standin.click(page, button(page, "Next ▶")["custom_id"], user_id=MEMBER)
    await click.wait_for_ack(timeout=TIMEOUT)
    assert click.acks[0].type == 7  # the page itself changes; no new message
    second = page.text()
    assert "Page 2 of 2 · 12 changes" in second
    assert "bonus granted: grant 1 ·" in second and "starting credits" in second
    assert "grant 2 ·" not in second
    assert button(page, "Next ▶").get("disabled") and not button(page, "◀ Prev").get("disabled")
    assert page.ephemeral

    versions = len(page.versions)
    other = await stack.standin.click(page, button(page, "◀ Prev")["custom_id"], user_id=BYSTANDER)
    refusal = await other.wait_for_response(timeout=TIMEOUT)
    assert refusal.ephemeral
    assert "Only whoever ran this `/quota history` can turn its pages." in refusal.text()
    assert len(page.versions) == versions and "Page 2 of 2" in page.text()

    back = await stack.standin.click(page, button(page, "◀ Prev")["custom_id"], user_id=MEMBER)
    await back.wait_for_ack(timeout=TIMEOUT)
    assert "Page 1 of 2" in page.text()


async def test_history_pager_stops_when_its_moderator_loses_the_role(stack: Stack) -> None:
    mods = stack.standin.add_role("Credit Mods")
    helper = stack.standin.add_member(DEFAULT_USER_ID + 11, roles=[mods])
    add_moderator(stack)
    await stack.start_bot()
    await quota(stack, "settings", {"moderator_role": mods}, user_id=MODERATOR)
    for n in range(1, 11):
        await quota(stack, "grant", {"member": MEMBER, "amount": n}, user_id=helper)

    record, page = await quota(stack, "history", {"member": MEMBER}, user_id=helper)
    assert_private(record)
    assert "Page 1 of 2 · 11 changes" in page.text()
    await quota(stack, "settings", {"clear": "moderator_role"}, user_id=MODERATOR)

    click = await stack.standin.click(page, button(page, "Next ▶")["custom_id"], user_id=helper)
    refusal = await click.wait_for_response(timeout=TIMEOUT)
    assert refusal.ephemeral
    assert "Only moderators can see other members' history" in refusal.text()
    assert "Page 1 of 2" in page.text()


def next_monday_at(now: float, hour: int, zone: str) -> int:
    tz = ZoneInfo(zone)
    local = dt.datetime.fromtimestamp(now, tz)
    day = local.date() + dt.timedelta(days=-local.weekday())
    while True:
        moment = dt.datetime.combine(day, dt.time(hour), tz)
        if moment.timestamp() > now:
            return int(moment.timestamp())
        day += dt.timedelta(days=7)


async def test_readme_example_weekly_allowance_in_berlin_with_a_supporter_tier_and_cooldown(
    stack: Stack,
) -> None:
    add_moderator(stack)
    supporters = stack.standin.add_role("Supporter")
    stack.standin.add_member(SUPPORTER, roles=[supporters])
    await stack.start_bot()

    suggested = await stack.standin.autocomplete(
        "quota", {"timezone": "Europe/Ber"}, "timezone", subcommand="settings", user_id=MODERATOR
    )
    await suggested.wait_for_ack(timeout=TIMEOUT)
    assert "Europe/Berlin" in [choice["value"] for choice in suggested.choices]

    started = time.time()
    _, reply = await quota(
        stack,
        "settings",
        {"refill_time": "18:00", "timezone": "Europe/Berlin", "cooldown_seconds": 60, "jobs_per_member": 1},
        user_id=MODERATOR,
    )
    assert "refill time 00:00 UTC → 18:00 Europe/Berlin" in reply.text()
    await quota(stack, "allowance", {"amount": 100, "period": "weekly"}, user_id=MODERATOR)
    _, reply = await quota(
        stack, "allowance", {"amount": 300, "role": supporters, "apply_now": True}, user_id=MODERATOR
    )
    assert f"Members with <@&{supporters}>: **300 credits** per week" in reply.text()

    _, view = await quota(stack, "view", user_id=SUPPORTER)
    text = view.text()
    assert "**300** credits" in text and "300 credits per week" in text
    refill = re.search(r"<t:(\d+):R>", text)
    assert refill is not None and int(refill[1]) == next_monday_at(started, 18, "Europe/Berlin"), text

    # jobs_per_member:1 while the first split runs; then the cooldown. Both refused privately,
    # without an API call.
    first = await stack.split(audio_id="a", user_id=SUPPORTER)
    await first.wait_for_edit(lambda m: "Splitting" in m.text(), timeout=TIMEOUT)
    second = await stack.split(audio_id="b", user_id=SUPPORTER)
    await second.wait_for(
        lambda r: any("already have 1 split running" in m.text() for m in r.messages), timeout=TIMEOUT
    )
    await first.wait_for_edit(lambda m: READY in m.text(), timeout=20)
    third = await stack.split(audio_id="c", user_id=SUPPORTER)
    await third.wait_for(
        lambda r: any("wait between splits" in m.text() for m in r.messages), timeout=TIMEOUT
    )
    [message] = third.messages
    assert message.ephemeral and "You can split again <t:" in message.text()
    assert all(m.ephemeral for m in second.messages)
    assert len(stack.api.submits) == 1 and len(stack.jobs()) == 1
