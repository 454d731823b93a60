"""Usage reports (`/quota report`, `/quota export`, `/stembot report`): the figures per day against
a ledger made by the real store's reservations, settlements and the quota service, on SQLite and
PostgreSQL; the chart as a PNG; the CSV read back; who may see what; empty periods."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord
import pytest
from PIL import Image

from bot import charts
from bot.credits import CreditService
from bot.errors import ExportTooLarge, NotAModerator
from bot.ledger_csv import HEADER
from bot.models import CreditPolicy, Failure, NewJob
from bot.models.reports import OffsetSpan
from bot.product import Mode
from bot.quota import Actor, Member, QuotaService, SettingsChange
from bot.render import usage
from bot.reports import MAX_MEMBER_NAME, UPLOAD_HEADROOM, ReportService, clean_name, offset_spans, zone_of
from bot.store import Store
from cogs.quota import QuotaCog
from cogs.status import StatusCog
from tests.unit_helpers import GUILD_ID, FakeClock, embed_text, make_interaction, run_command
from tests.wiring import make_settings

GUILD = GUILD_ID
MOD = Actor(1, manage_guild=True)
TWO, TWELVE = Mode.SEPARATE_VOCAL, Mode.SPLIT_STEM


@dataclass
class World:
    store: Store
    clock: FakeClock
    quota: QuotaService
    reports: ReportService


@pytest.fixture
async def world(databases: Any) -> AsyncIterator[World]:
    clock = FakeClock("2025-03-05 10:00")
    store = await Store.open(
        await databases(),
        CreditPolicy(default_credits=10_000, jobs_per_member=50, server_monthly_budget=900),
        clock=clock,
    )
    quota = QuotaService(store, CreditService(store.accounts), clock=clock)
    reports = ReportService(store, quota, _no_account, clock=clock)
    yield World(store, clock, quota, reports)
    reports.close()
    await store.close()


async def _no_account() -> int | None:
    return None


async def split(w: World, member: int, mode: Mode, at: str, *, audio: str) -> int:
    w.clock.set(at)
    new = NewJob(GUILD, 1, member, mode, "gen-1", audio, mode.cost, f"cb-{audio}")
    reservation = await w.store.reservations.reserve(new)
    assert reservation.job is not None, reservation.refusal
    return reservation.job.id


async def finish(w: World, job_id: int, at: str, *, ok: bool) -> None:
    w.clock.set(at)
    done = await w.store.reservations.settle(
        job_id, succeeded=ok, failure=None if ok else Failure.SEPARATION_FAILED
    )
    assert done is not None


async def build_ledger(w: World) -> None:
    """Two members in Europe/Berlin around the switch to summer time (30 March 2025, 01:00 UTC)."""
    await w.quota.update_settings(GUILD, MOD, SettingsChange(timezone="Europe/Berlin"))
    # 29 March 23:30 UTC is 30 March 00:30 in Berlin (CET, +1).
    a = await split(w, 2, TWO, "2025-03-29 23:30", audio="a")
    await finish(w, a, "2025-03-29 23:40", ok=True)
    # 30 March 22:30 UTC is 31 March 00:30 (CEST, +2): a full split that fails the next day.
    b = await split(w, 3, TWELVE, "2025-03-30 22:30", audio="b")
    c = await split(w, 2, TWELVE, "2025-03-31 12:00", audio="c")
    await finish(w, c, "2025-03-31 12:05", ok=True)
    w.clock.set("2025-03-31 13:00")
    await w.quota.grant(GUILD, MOD, Member(2), 500, "a gift")  # a moderator's: not spending
    await finish(w, b, "2025-04-01 09:00", ok=False)  # refunded on 1 April
    w.clock.set("2025-04-02 08:00")


def by_label(report: Any) -> dict[str, dict[date, int]]:
    return {s.label: {d: v for d, v in zip(report.days, s.values, strict=True) if v} for s in report.spent}


async def test_the_days_sum_the_ledger_per_mode_in_the_servers_time_zone(world: World) -> None:
    await build_ledger(world)

    report = await world.reports.usage(GUILD, MOD, days=5)

    assert report.timezone == "Europe/Berlin"
    assert report.days == (
        date(2025, 3, 29),
        date(2025, 3, 30),
        date(2025, 3, 31),
        date(2025, 4, 1),
        date(2025, 4, 2),
    )
    assert by_label(report) == {
        TWO.value: {date(2025, 3, 30): 10},
        TWELVE.value: {date(2025, 3, 31): 100},  # members 3 and 2, 50 each, both on local 31 March
    }
    refunds = dict(zip(report.days, report.refunded, strict=True))
    assert refunds[date(2025, 4, 1)] == 50 and sum(report.refunded) == 50  # on the day it happened
    assert report.total_spent == 110
    # API credits counted on the reservation's day, given back on the refund's.
    api = dict(zip(report.days, report.api_spent, strict=True))
    assert api[date(2025, 3, 30)] == 10 and api[date(2025, 3, 31)] == 100 and api[date(2025, 4, 1)] == -50
    # The month's line: a refund gives back to the month its job counted in (March), not April.
    assert report.api_month_spent == (0, 10, 110, 0, 0)
    assert report.budget == 900
    assert [(s.user_id, s.credits) for s in report.top] == [(2, 60), (3, 0)][:1]  # 3 got it all back
    assert (report.outcomes.finished, report.outcomes.failed) == (3, 1)


async def test_one_members_days_are_theirs_alone(world: World) -> None:
    await build_ledger(world)

    report = await world.reports.usage(GUILD, MOD, days=5, member_id=3)

    assert by_label(report) == {TWELVE.value: {date(2025, 3, 31): 50}}
    assert report.total_refunded == 50 and report.top == () and report.api_spent == ()
    assert report.outcomes.finished == 1 and report.outcomes.failed == 1


async def test_priced_mixes_and_a_kind_the_report_does_not_know_are_categories_of_their_own(
    world: World,
) -> None:
    await split(world, 2, TWO, "2025-03-05 09:00", audio="a")
    async with world.store.db.transaction() as tx:  # as a priced mix's charge and refund would be
        for kind, amount in (("mix_charge", -30), ("mix_refund", 12), ("tip", -4)):
            await tx.execute(
                "INSERT INTO ledger (guild_id, user_id, kind, amount, allowance_change, bonus_change, "
                "balance_after, created_at) VALUES (?, 2, ?, ?, ?, 0, 5000, ?)",
                (GUILD, kind, amount, amount, world.clock.set("2025-03-05 09:30")),
            )

    report = await world.reports.usage(GUILD, MOD, days=1)

    assert by_label(report) == {
        TWO.value: {date(2025, 3, 5): 10},
        "mix_charge": {date(2025, 3, 5): 30},
        "tip": {date(2025, 3, 5): 4},
    }
    assert report.total_refunded == 12
    assert usage.category_label("mix_charge") == "Mixes"
    assert usage.category_label("tip") == "Tip"


def test_offsets_follow_daylight_saving_to_the_second() -> None:
    _, zone = zone_of("Europe/Berlin")
    start = FakeClock("2025-03-29 00:00").now
    spans = offset_spans(zone, start, start + 3 * 86400)
    assert [(s.offset, s.start - start) for s in spans] == [(3600, 0), (7200, 86400 + 3600)]
    assert zone_of("Not/AZone")[0] == "UTC"


# -- who may see it -------------------------------------------------------------------------------


async def test_members_who_are_not_moderators_are_refused_both(world: World) -> None:
    member = Actor(2)
    with pytest.raises(NotAModerator):
        await world.reports.usage(GUILD, member)
    with pytest.raises(NotAModerator):
        await world.reports.export(GUILD, member, 30, upload_limit=10_000_000)


# -- the chart ------------------------------------------------------------------------------------


async def test_the_chart_is_a_png_of_the_size_for_phones_drawn_in_a_worker_process(world: World) -> None:
    await build_ledger(world)
    report = await world.reports.usage(GUILD, MOD, days=30)

    png = await world.reports.draw(usage.usage_chart(report))

    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == charts.SIZE == (1280, 960)
    # Opaque, on a light neutral card: legible on Discord's dark theme as on its light one.
    assert image.convert("RGBA").getpixel((5, 5)) == (0xF2, 0xF3, 0xF5, 255)


def test_names_in_a_script_the_font_lacks_fall_back_to_the_id() -> None:
    assert charts.legible(charts.Label("Zoë & Ørjan", "Server 1")) == "Zoë & Ørjan"
    assert charts.legible(charts.Label("音楽サーバー", "Server 42")) == "Server 42"
    assert charts.legible(charts.Label("Credits spent · 山田", "Credits spent · member 7")) == (
        "Credits spent · member 7"
    )


@pytest.mark.parametrize("name", ["A $x^$ B", "Mo$ney$", "$\\nosuchcommand$", "Ca$h \\$ Crew$"])
def test_names_with_dollar_signs_are_drawn_as_written_not_as_math(name: str) -> None:
    """Names are untrusted: a pair of dollar signs would make matplotlib read a name as mathtext,
    drawn in italics as a formula, or failing the whole chart (the report with it) when it does
    not parse."""
    from matplotlib import cbook

    shown = charts.legible(charts.Label(name, "Server 1"))
    assert not cbook.is_math_text(shown)
    spec = charts.ChartSpec(
        title=charts.Label(f"Credits spent · {name}", "Credits spent · member 7"),
        subtitle="Last 2 days · days in UTC",
        day_labels=("1 Dec", "2 Dec"),
        y_label="Member credits per day",
        stacks=(charts.Stack(charts.Label(name, "Server 1"), (3, 4)),),
        below=charts.Stack(charts.Label("Refunded"), (1, 0)),
    )
    image = Image.open(io.BytesIO(charts.draw(spec)))
    assert image.size == charts.SIZE


async def test_the_chart_says_the_time_zone_and_draws_the_budget_line(world: World) -> None:
    await build_ledger(world)
    spec = usage.usage_chart(await world.reports.usage(GUILD, MOD, days=5))
    assert "Europe/Berlin" in spec.subtitle
    assert spec.limit == ("Monthly budget (900)", 900) and spec.line is not None


# -- the export -----------------------------------------------------------------------------------

HOSTILE_NAMES = {
    2: '=HYPERLINK("http://evil.example","click")',
    3: "+1 (555) 0100",
    4: "-2+3",
    5: '@SUM(A1) "quoted", with comma',
    6: "山田 太郎",
}


async def test_the_csv_reads_back_as_the_ledger_exactly_with_hostile_names(world: World) -> None:
    for user_id, name in HOSTILE_NAMES.items():
        await world.reports.saw(GUILD, "Server", [(user_id, name)])
        await split(world, user_id, TWO, f"2025-03-05 0{user_id}:00", audio=f"t{user_id}")
    world.clock.set("2025-03-05 09:00")
    await world.quota.grant(GUILD, MOD, Member(4), -5, "=1+1 line\ttwo")
    world.clock.set("2025-03-05 10:00")

    made = await world.reports.export(GUILD, MOD, 1, upload_limit=10 * 1024 * 1024)
    try:
        raw = Path(made.path).read_bytes()  # noqa: ASYNC240 -- a test reading a small file
    finally:
        os.unlink(made.path)

    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert tuple(rows[0]) == HEADER
    ledger = sorted(
        [e for u in HOSTILE_NAMES for e in await world.store.accounts.ledger(GUILD, u)],
        key=lambda e: (e.created_at, e.id),
    )
    assert made.rows == len(ledger) == len(rows) - 1
    for entry, row in zip(ledger, rows[1:], strict=True):
        shown = clean_name(HOSTILE_NAMES[entry.user_id], MAX_MEMBER_NAME)  # cut: untrusted
        assert shown is not None and len(shown) <= 32
        assert row[2] == ("'" + shown if entry.user_id != 6 else shown)
        assert (
            int(row[1]) == entry.user_id
            and int(row[3]) == entry.amount
            and int(row[4]) == entry.balance_after
        )
        assert row[5] == entry.kind and row[6] == (str(entry.job_id) if entry.job_id else "")
        assert row[7] == (
            "'" + entry.reason if entry.reason and entry.reason[0] in "=+-@" else entry.reason or ""
        )
        assert row[8] == (str(entry.actor_id) if entry.actor_id else "")
        assert row[0].endswith("Z") and row[0].startswith("2025-03-05T")
    assert "'=1+1 line two" in [r[7] for r in rows]


async def test_an_export_over_the_upload_limit_is_refused_and_leaves_no_file(world: World, tmp_path) -> None:
    for n in range(30):  # 60 ledger rows yesterday, 60 today
        await split(world, 100 + n, TWO, "2025-03-04 09:00", audio=f"x{n}")
    for n in range(30):
        await split(world, 200 + n, TWO, "2025-03-05 09:00", audio=f"y{n}")
    folder = tmp_path / "exports"
    folder.mkdir()
    whole = await world.reports.export(GUILD, MOD, 2, upload_limit=10 * 1024 * 1024, folder=folder)
    os.unlink(whole.path)
    limit = UPLOAD_HEADROOM + whole.size * 6 // 10  # room for about 60% of it

    with pytest.raises(ExportTooLarge, match="Try fewer days") as refused:
        await world.reports.export(GUILD, MOD, 2, upload_limit=limit, folder=folder)

    assert refused.value.entries == 120 and refused.value.fitting_days == 1
    assert list(folder.iterdir()) == []
    fewer = await world.reports.export(
        GUILD, MOD, refused.value.fitting_days, upload_limit=limit, folder=folder
    )
    assert fewer.rows == 60 and fewer.size <= limit
    os.unlink(fewer.path)


# -- the commands: empty periods, the owner ---------------------------------------------------------


def cog_bot(w: World, **more: Any) -> Any:
    return SimpleNamespace(services=SimpleNamespace(reports=w.reports, settings=make_settings()), **more)


async def test_an_empty_period_says_so_instead_of_drawing(world: World) -> None:
    interaction = make_interaction(permissions=discord.Permissions(manage_guild=True))
    await run_command(QuotaCog(cog_bot(world)), QuotaCog.report, interaction, days=7)  # type: ignore[arg-type]

    reply = interaction.followup.send.await_args
    assert "file" not in reply.kwargs and reply.kwargs["ephemeral"] is True
    assert "nothing to draw" in embed_text(reply.kwargs["embed"])


async def test_the_report_attaches_its_chart_to_the_embed(world: World) -> None:
    await build_ledger(world)
    interaction = make_interaction(permissions=discord.Permissions(manage_guild=True))
    await run_command(QuotaCog(cog_bot(world)), QuotaCog.report, interaction, days=30)  # type: ignore[arg-type]

    reply = interaction.followup.send.await_args.kwargs
    assert reply["file"].filename == usage.CHART_FILENAME
    assert reply["embed"].image.url == f"attachment://{usage.CHART_FILENAME}"
    assert "Failure rate" in embed_text(reply["embed"]) and "33%" in embed_text(reply["embed"])


async def test_the_owners_report_is_refused_to_a_server_manager(world: World) -> None:
    async def is_owner(user: discord.abc.User) -> bool:
        return user.id == 999

    bot = cog_bot(world, is_owner=is_owner, get_guild=lambda _id: None)
    manager = make_interaction(
        user_id=5, permissions=discord.Permissions(manage_guild=True, administrator=True)
    )
    await run_command(StatusCog(bot), StatusCog.report, manager)  # type: ignore[arg-type]

    reply = manager.followup.send.await_args
    text = embed_text(reply.kwargs["embed"]) if "embed" in reply.kwargs else str(reply.args[0])
    assert "Only the bot's owner can see every server's usage" in text and "file" not in reply.kwargs


async def test_the_owner_sees_every_servers_api_credits_per_utc_day(world: World) -> None:
    await build_ledger(world)
    await world.reports.saw(GUILD, "Beat Makers", [])

    report = await world.reports.owner(days=5)

    assert [s.label for s in report.servers] == [str(GUILD)] and report.names == {GUILD: "Beat Makers"}
    counted = dict(zip(report.days, report.servers[0].values, strict=True))
    assert counted[date(2025, 3, 29)] == 10  # 23:30 UTC: the 29th in UTC, the 30th in Berlin
    assert counted[date(2025, 3, 30)] == 50 and counted[date(2025, 3, 31)] == 50
    assert dict(zip(report.days, report.released, strict=True))[date(2025, 4, 1)] == 50
    assert report.total == 60 and report.server_monthly_budget == 900


async def test_on_sqlite_the_reports_read_beside_the_bots_connection_never_waiting_for_it(tmp_path) -> None:
    store = await Store.open(tmp_path / "side.db")
    try:
        async with store.db.transaction() as tx:  # the bot's connection busy with a write
            await tx.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
            days = await asyncio.wait_for(
                store.reports.ledger_days(GUILD, 0, 2e9, [OffsetSpan(0, 0)]), timeout=5
            )
        assert days == []
        async with store.db.reporting() as side:  # read-only: a report can never write
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                await side.execute("INSERT INTO meta (key, value) VALUES ('z', 'w')")
    finally:
        await store.close()


async def test_the_owners_report_attaches_its_chart_with_the_names_this_process_sees(world: World) -> None:
    await build_ledger(world)
    await world.reports.saw(GUILD, "Old Name", [])

    async def is_owner(user: discord.abc.User) -> bool:
        return True

    guilds = {GUILD: SimpleNamespace(name="Live *Name*")}
    bot = cog_bot(world, is_owner=is_owner, get_guild=guilds.get)
    owner = make_interaction(user_id=999, guild_id=GUILD + 1)
    await run_command(StatusCog(bot), StatusCog.report, owner, days=10)  # type: ignore[arg-type]

    reply = owner.followup.send.await_args.kwargs
    assert reply["ephemeral"] is True and reply["file"].filename == usage.CHART_FILENAME
    text = embed_text(reply["embed"])
    assert r"Live \*Name\*" in text and "Old Name" not in text and "days in UTC" in text
    assert "MONTHLY_BUDGET:** not set (no cap)" in text and "SERVER_MONTHLY_BUDGET:** 900" in text
