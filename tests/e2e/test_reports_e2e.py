"""Usage reports end to end: the real bot process draws `/quota report`'s chart in its worker
process and attaches it, and attaches `/quota export`'s CSV, through the local Discord (which keeps
small uploads, so the test reads both files back)."""

from __future__ import annotations

import csv
import io

from testing.discord_standin import DEFAULT_MEMBER_PERMISSIONS, DEFAULT_USER_ID, Perm
from tests.e2e.conftest import Stack

MEMBER = DEFAULT_USER_ID
MODERATOR = DEFAULT_USER_ID + 1
READY = "download now, they cannot be renewed"
TIMEOUT = 30.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def test_report_attaches_a_png_chart_and_export_a_csv_of_the_ledger(stack: Stack) -> None:
    stack.standin.add_member(MEMBER, username="=cmd|' /C calc'!A0")
    stack.standin.add_member(MODERATOR, permissions=DEFAULT_MEMBER_PERMISSIONS | Perm.MANAGE_GUILD)
    await stack.start_bot()
    split = await stack.split(user_id=MEMBER)
    await split.wait_for_edit(lambda m: READY in m.text(), timeout=20)

    record = await stack.standin.invoke("quota", {"days": 7}, subcommand="report", user_id=MODERATOR)
    reply = await record.wait_for_response(lambda m: bool(m.attachments), timeout=TIMEOUT)
    assert reply.ephemeral
    [chart] = reply.attachments
    assert chart["filename"] == "stembot-usage.png" and chart["content_type"] == "image/png"
    png = stack.standin.upload_content(chart["id"])
    assert png is not None and png.startswith(PNG_SIGNATURE) and len(png) == chart["size"]
    [embed] = reply.embeds
    assert embed["image"]["url"] == "attachment://stembot-usage.png"
    assert "Failure rate" in reply.text() and "days in UTC" in reply.text()

    record = await stack.standin.invoke("quota", {"days": 7}, subcommand="export", user_id=MODERATOR)
    reply = await record.wait_for_response(lambda m: bool(m.attachments), timeout=TIMEOUT)
    assert reply.ephemeral and "entries, times in UTC" in reply.text()
    [export] = reply.attachments
    assert export["filename"].startswith("stembot-ledger-") and export["filename"].endswith(".csv")
    assert export["content_type"].startswith("text/csv")
    content = stack.standin.upload_content(export["id"])
    assert content is not None
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    assert rows[0][:4] == ["time_utc", "member_id", "member_name", "change"]
    with stack.db() as conn:
        ledger = [
            tuple(r) for r in conn.execute("SELECT user_id, amount, kind FROM ledger ORDER BY created_at, id")
        ]
    assert [(int(r[1]), int(r[3]), r[5]) for r in rows[1:]] == ledger
    assert {r[2] for r in rows[1:] if int(r[1]) == MEMBER} == {"'=cmd|' /C calc'!A0"}  # no formula

    # A member who is not a moderator gets neither.
    record = await stack.standin.invoke("quota", {}, subcommand="export", user_id=MEMBER)
    refused = await record.wait_for_response(timeout=TIMEOUT)
    assert "Only moderators can export" in refused.text() and not refused.attachments
