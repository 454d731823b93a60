"""The result's and the queued message's buttons through the real bot process: they keep working
after a restart, and each goes through the same rules as the command it stands for."""

from __future__ import annotations

import asyncio
import signal

from testing.discord_standin import DEFAULT_USER_ID
from testing.provider_api import Fault
from tests.e2e.conftest import Stack, button

READY = "download now, they cannot be renewed"  # leads every result message
QUEUED = "Job #"
OTHER_MEMBER = DEFAULT_USER_ID + 7
TIMEOUT = 20.0


async def test_split_into_12_stems_works_after_a_restart_for_another_member(stack: Stack) -> None:
    stack.api.processing_seconds = 0.3
    bot = await stack.start_bot()
    record = await stack.split()
    result = await record.wait_for_edit(lambda m: READY in m.text(), timeout=TIMEOUT)
    upgrade = button(result, "Split into 12 stems")
    assert upgrade["custom_id"] == f"stembot:upgrade:{stack.jobs()[0]['id']}"

    bot.proc.send_signal(signal.SIGTERM)
    await bot.proc.wait()
    await stack.start_bot()
    click = await stack.standin.click(result, upgrade["custom_id"], user_id=OTHER_MEMBER)

    assert (await click.wait_for_ack(timeout=TIMEOUT)).type == 5  # a public message of its own
    full = await click.wait_for_response(lambda m: READY in m.text(), timeout=TIMEOUT)
    assert "Full split" in full.text() and "Split into 12 stems" not in full.text()
    assert [s.body["type"] for s in stack.api.submits] == ["separate_vocal", "split_stem"]
    [_, mine] = stack.jobs()
    assert (mine["user_id"], mine["mode"], mine["cost"]) == (OTHER_MEMBER, "split_stem", 50)


async def test_the_cancel_button_calls_off_a_split_waiting_out_maintenance(stack: Stack) -> None:
    stack.api.script("submit", *[Fault("code", 455, msg="maintenance")] * 50)
    await stack.start_bot(POLL_INTERVAL_SECONDS="0.2")
    record = await stack.split()
    queued = await record.wait_for_response(lambda m: QUEUED in m.text(), timeout=TIMEOUT)
    await stack.eventually(lambda: stack.api.submits, timeout=TIMEOUT)  # met the maintenance window

    click = await stack.standin.click(queued, button(queued, "Cancel")["custom_id"])

    assert (await click.wait_for_ack(timeout=TIMEOUT)).type == 7  # the queued message itself changes
    cancelled = await record.wait_for_edit(lambda m: "cancelled" in m.text(), timeout=TIMEOUT)
    assert "Cancel" not in [
        c.get("label") for row in cancelled.components for c in row.get("components") or []
    ]
    tried = len(stack.api.submits)
    await stack.eventually(lambda: stack.jobs()[0]["state"] == "cancelled")
    [job] = stack.jobs()
    assert stack.ledger_kinds(job["id"]) == ["reserve", "refund"]
    await asyncio.sleep(2.0)  # several retry intervals: none reaches the API
    assert len(stack.api.submits) == tried
