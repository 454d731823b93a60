"""The owner's wallet end to end: the real bot process with SERVER_MONTHLY_BUDGET or MONTHLY_BUDGET
set, the Discord stand-in (which names the application's owner in oauth2/applications/@me, so
`is_owner` works, and records DMs), the API simulator and the bot's database."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot import economy
from testing.discord_standin import (
    DEFAULT_CHANNEL_ID,
    DEFAULT_GUILD_ID,
    DEFAULT_MEMBER_PERMISSIONS,
    DEFAULT_OWNER_ID,
    DEFAULT_USER_ID,
    InteractionRecord,
    MessageRecord,
    Perm,
)
from tests.e2e.conftest import Stack

MEMBER = DEFAULT_USER_ID
MANAGER = DEFAULT_USER_ID + 1
READY = "download now, they cannot be renewed"  # leads every result message
FAILED = "The split didn't work"
USED_UP = "monthly StemBot budget is used up"
TIMEOUT = 15.0


async def stembot_budget(
    stack: Stack, options: dict[str, Any], *, user_id: int
) -> tuple[InteractionRecord, MessageRecord]:
    record = await stack.standin.invoke("stembot", options, subcommand="budget", user_id=user_id)
    return record, await record.wait_for_response(timeout=TIMEOUT)


def spent_this_month(stack: Stack) -> int:
    with stack.db() as conn:
        row = conn.execute(
            "SELECT spent FROM budget_months WHERE guild_id = ? AND month = ?",
            (DEFAULT_GUILD_ID, economy.budget_month(time.time())),
        ).fetchone()
    return row["spent"] if row else 0


async def test_a_servers_monthly_budget_stops_splits_until_the_owner_raises_it(stack: Stack) -> None:
    stack.standin.add_member(MANAGER, permissions=DEFAULT_MEMBER_PERMISSIONS | Perm.MANAGE_GUILD)
    stack.api.unknown_ids.add("bogus")
    await stack.start_bot(SERVER_MONTHLY_BUDGET=20)
    record = await stack.standin.invoke(
        "quota", {"audit_channel": DEFAULT_CHANNEL_ID}, subcommand="settings", user_id=MANAGER
    )
    await record.wait_for_response(timeout=TIMEOUT)

    # Two 2-stem splits (10 API credits each) pass: 20 of 20.
    for audio_id in ("audio-1", "audio-2"):
        split = await stack.split(audio_id=audio_id)
        await split.wait_for_edit(lambda m: READY in m.text(), timeout=TIMEOUT)
    assert spent_this_month(stack) == 20

    # The third is refused privately, with the renewal time, and never reaches the API.
    third = await stack.split(audio_id="audio-3")
    await third.wait_for(lambda r: any(USED_UP in m.text() for m in r.messages))
    [refusal] = third.messages
    assert refusal.ephemeral and third.visible_text(include_ephemeral=False).strip() == ""
    renews = int(economy.budget_renews_at(time.time()))
    assert f"<t:{renews}:R>" in refusal.text() and "Nothing was charged" in refusal.text()
    assert len(stack.api.submits) == 2
    assert "**80** credits" in await stack.credits()  # the refused split cost the member nothing
    alert = await stack.standin.wait_for_channel_message(DEFAULT_CHANNEL_ID, lambda m: USED_UP in m.text())
    assert "20 of 20 API credits" in alert.text()

    # A server manager who is not the bot's owner can neither see nor raise it.
    _, refused = await stembot_budget(
        stack, {"server_id": str(DEFAULT_GUILD_ID), "amount": 1000}, user_id=MANAGER
    )
    assert refused.ephemeral and "Only the bot's owner" in refused.text()
    _, refused = await stembot_budget(stack, {}, user_id=MANAGER)
    assert "Only the bot's owner" in refused.text() and str(DEFAULT_GUILD_ID) not in refused.text()

    # The owner, who has no Manage Server here, raises this server's budget to 30.
    _, reply = await stembot_budget(
        stack, {"server_id": str(DEFAULT_GUILD_ID), "amount": 30}, user_id=DEFAULT_OWNER_ID
    )
    assert reply.ephemeral and "Monthly budget set" in reply.text()
    assert "**Was** 20 API credits a month (the default), **now** 30" in reply.text()

    # A failed job gives its budget back: after it, there is still room for one more split.
    failing = await stack.split(audio_id="bogus")
    await failing.wait_for_edit(lambda m: FAILED in m.text(), timeout=TIMEOUT)
    assert spent_this_month(stack) == 20
    passing = await stack.split(audio_id="audio-4")
    await passing.wait_for_edit(lambda m: READY in m.text(), timeout=TIMEOUT)
    assert spent_this_month(stack) == 30
    assert len(stack.api.submits) == 4  # audio-1, audio-2, bogus, audio-4: never audio-3

    # Moderators see what is left; the owner sees every server's spend.
    settings = await stack.standin.invoke("quota", {}, subcommand="settings", user_id=MANAGER)
    shown = await settings.wait_for_response(lambda m: "Monthly StemBot budget" in m.text(), timeout=TIMEOUT)
    assert "**0** of 30 API credits left this month" in shown.text()
    _, overview = await stembot_budget(stack, {}, user_id=DEFAULT_OWNER_ID)
    assert (
        str(DEFAULT_GUILD_ID) in overview.text()
        and "30 of 30 API credits (100%) · own budget" in overview.text()
    )

    with stack.db() as conn:
        jobs = {
            row["audio_id"]: (row["state"], row["budget_cost"]) for row in conn.execute("SELECT * FROM jobs")
        }
    assert jobs == {
        "audio-1": ("succeeded", 10),
        "audio-2": ("succeeded", 10),
        "bogus": ("failed", 10),
        "audio-4": ("succeeded", 10),
    }


BOT_SPENT = "StemBot's monthly budget is spent"


async def test_two_servers_share_the_bots_monthly_budget_and_only_the_owner_hears_of_it(stack: Stack) -> None:
    second = stack.standin.add_guild(name="Second server")
    stack.standin.add_member(MANAGER, permissions=DEFAULT_MEMBER_PERMISSIONS | Perm.MANAGE_GUILD)
    await stack.start_bot(MONTHLY_BUDGET=20)
    record = await stack.standin.invoke(
        "quota", {"audit_channel": DEFAULT_CHANNEL_ID}, subcommand="settings", user_id=MANAGER
    )
    await record.wait_for_response(timeout=TIMEOUT)

    # The first server's two 2-stem splits (10 API credits each) spend the whole bot's 20.
    for audio_id in ("audio-1", "audio-2"):
        split = await stack.split(audio_id=audio_id)
        await split.wait_for_edit(lambda m: READY in m.text(), timeout=TIMEOUT)

    # The second server's member is refused privately, charged nothing, and the API never hears of it.
    refused = await stack.split(audio_id="audio-3", guild_id=second)
    await refused.wait_for(lambda r: any(BOT_SPENT in m.text() for m in r.messages))
    [refusal] = refused.messages
    assert refusal.ephemeral and refused.visible_text(include_ephemeral=False).strip() == ""
    renews = int(economy.budget_renews_at(time.time()))
    assert f"<t:{renews}:R>" in refusal.text() and "Nothing was charged" in refusal.text()
    assert "API credits" not in refusal.text()  # the bot's figures are the owner's business
    assert len(stack.api.submits) == 2
    balance = await stack.standin.invoke("credits", guild_id=second)
    shown = await balance.wait_for_response(lambda m: "credits" in m.text().lower(), timeout=TIMEOUT)
    assert "**100** credits" in shown.text()

    # The owner gets one DM; no server's channel hears of the bot's budget.
    dm = await stack.standin.wait_for_dm(DEFAULT_OWNER_ID, lambda m: "monthly budget is used up" in m.text())
    assert "20 of 20 API credits" in dm.text() and f"<t:{renews}:R>" in dm.text()
    again = await stack.split(audio_id="audio-4", guild_id=second)  # refused again: no second DM
    await again.wait_for(lambda r: any(BOT_SPENT in m.text() for m in r.messages))
    await asyncio.sleep(0.5)
    assert len(stack.standin.dm_messages(DEFAULT_OWNER_ID)) == 1
    assert len(stack.jobs()) == 2
    audit = stack.standin.channel_messages(DEFAULT_CHANNEL_ID)
    assert not any("MONTHLY_BUDGET" in m.text() or "StemBot's monthly" in m.text() for m in audit)

    # The owner sees the whole bot's budget in /stembot budget, from either server.
    _, overview = await stembot_budget(stack, {}, user_id=DEFAULT_OWNER_ID)
    assert "**The whole bot:** 20 of 20 API credits (100%)" in overview.text()
    with stack.db() as conn:
        spent = conn.execute(
            "SELECT spent FROM deployment_months WHERE month = ?", (economy.budget_month(time.time()),)
        ).fetchone()
    assert spent["spent"] == 20
