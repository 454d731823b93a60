"""Usage at a glance: a server's credits per day for its moderators (`/quota report`), its ledger as
a CSV (`/quota export`), every server's API credits for the bot's owner (`/stembot report`), and
the display names those show (seen with interactions: the bot has no members intent).

The database sums (`bot.store.reports`); this module turns the sums into days and series: days are
the server's local days (the economy's `timezone`, else UTC), budgets' months are UTC as the
budgets themselves. Who may see what is decided here for moderators; only the cog can tell the
bot's owner (only Discord knows who owns the application).
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from bot import economy
from bot.charts import ChartDrawer, ChartSpec
from bot.errors import ExportTooLarge, InvalidOption, option_name
from bot.i18n import N_, _
from bot.ledger_csv import CsvLines
from bot.models import LedgerKind
from bot.models.reports import (
    OTHER_SERVERS,
    BudgetDay,
    ExportFile,
    ExportRow,
    LedgerDay,
    OffsetSpan,
    OwnerReport,
    Series,
    UsageReport,
)
from bot.product import Mode
from bot.quota import Actor, QuotaService
from bot.store import Store

log = logging.getLogger(__name__)

DEFAULT_DAYS = 30
MAX_DAYS = 365
TOP_MEMBERS = 5
TOP_SERVERS = 5
MAX_MEMBER_NAME = 32  # Discord's own limit for display names
MAX_SERVER_NAME = 100  # ... and for server names
EXPORT_PAGE = 5000  # ledger rows read per query while writing the CSV (about 250 KiB)
UPLOAD_HEADROOM = 64 * 1024  # the multipart envelope and the message around the file

NOT_SPENDING = frozenset(
    {
        LedgerKind.ALLOWANCE,
        LedgerKind.REFILL,
        LedgerKind.GRANT,
        LedgerKind.SET,
        LedgerKind.RESET,
        LedgerKind.BLOCK,
        LedgerKind.UNBLOCK,
        LedgerKind.CHARGE,  # amount 0: the reserve already moved the credits
    }
)
"""Ledger kinds that are not members spending: moderators' corrections, allowances. Every other kind
is spending (a debit) or giving back (a credit): `reserve` by the job's mode, `refund` as refunds,
and any kind this module does not know (a priced mix's, say) as a category of its own."""

AccountCredits = Callable[[], Awaitable[int | None]]


def clean_name(text: str | None, limit: int) -> str | None:
    """A name as shown: printable characters only, whitespace folded, at most `limit` characters
    (cut with "…"); None when nothing is left."""
    if text is None:
        return None
    folded = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if len(folded) > limit:
        folded = folded[: limit - 1].rstrip() + "…"
    return folded or None


def check_days(days: int) -> int:
    if not 1 <= days <= MAX_DAYS:
        raise InvalidOption(
            "days",
            # TRANSLATORS: {option} is the option: "`days` must be a whole number from 1 to 365."
            _(
                "`{option}` must be a whole number from 1 to {max}. Nothing was changed.",
                option=option_name("days"),
                max=MAX_DAYS,
            ),
        )
    return days


def zone_of(name: str) -> tuple[str, tzinfo]:
    """The time zone `name`, or UTC where it cannot be loaded (as refills do, see `economy`)."""
    if name != "UTC" and economy.timezone_loads(name):
        return name, ZoneInfo(name)
    return "UTC", UTC


def local_days(zone: tzinfo, days: int, now: float) -> tuple[float, float, tuple[date, ...]]:
    """The last `days` whole local days, today included: (their start, their end, the days)."""
    today = datetime.fromtimestamp(now, zone).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), tzinfo=zone).timestamp()
    end = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=zone).timestamp()
    return start, end, tuple(first + timedelta(days=i) for i in range(days))


def offset_spans(zone: tzinfo, since: float, until: float) -> list[OffsetSpan]:
    """The UTC offsets in force from `since` to `until`, one span per change (daylight saving)."""

    def offset(moment: float) -> int:
        delta = datetime.fromtimestamp(moment, zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    spans = [OffsetSpan(since, offset(since))]
    step = 6 * 3600.0  # no zone changes its offset twice within six hours
    low = since
    while low < until:
        high = min(low + step, until)
        if offset(high) != spans[-1].offset:
            a, b = low, high  # the change is after a and at or before b: find its second
            while b - a > 1:
                middle = (a + b) // 2
                a, b = (middle, b) if offset(middle) == spans[-1].offset else (a, middle)
            spans.append(OffsetSpan(float(b), offset(b)))
        low = high
    return spans


def month_to_date(days: Sequence[date], rows: Sequence[BudgetDay]) -> list[int]:
    """For each of `days`, what its budget month had spent by the end of it: counted minus given
    back, each in the month the job counted in. `rows` may start before `days` (the first month's
    earlier days)."""
    running: dict[str, int] = defaultdict(int)
    pending = sorted(rows, key=lambda r: r.day)
    totals: list[int] = []
    index = 0
    for day in days:
        while index < len(pending) and pending[index].day <= day:
            row = pending[index]
            running[row.month] += row.counted - row.released
            index += 1
        totals.append(running[f"{day.year:04d}-{day.month:02d}"])
    return totals


class ReportService:
    def __init__(
        self,
        store: Store,
        quota: QuotaService,
        account_credits: AccountCredits,
        *,
        drawer: ChartDrawer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._quota = quota
        self._account_credits = account_credits
        self._drawer = drawer or ChartDrawer()
        self._clock = clock
        # The names last stored, so that a name seen again unchanged costs no write.
        self._known: dict[tuple[int, int], str] = {}

    # -- names ------------------------------------------------------------------------------

    async def saw(
        self, guild_id: int, server_name: str | None, members: Sequence[tuple[int, str | None]]
    ) -> None:
        """Remember the names an interaction showed: the server's, and its members' display names.
        Untrusted: cleaned and cut here; unchanged names are not written again."""
        server = clean_name(server_name, MAX_SERVER_NAME)
        seen = {
            user_id: name
            for user_id, raw in members
            if (name := clean_name(raw, MAX_MEMBER_NAME)) is not None
        }
        new = [(u, n) for u, n in seen.items() if self._known.get((guild_id, u)) != n]
        server_new = server is not None and self._known.get((guild_id, 0)) != server
        if not new and not server_new:
            return
        await self._store.reports.record_names(guild_id, server if server_new else None, new)
        if len(self._known) > 50_000:  # a cache, not a copy of the table: start again
            self._known.clear()
        for user_id, name in new:
            self._known[guild_id, user_id] = name
        if server is not None:
            self._known[guild_id, 0] = server  # no member has id 0

    # -- moderators -------------------------------------------------------------------------

    async def usage(
        self, guild_id: int, actor: Actor, days: int = DEFAULT_DAYS, member_id: int | None = None
    ) -> UsageReport:
        """The server's (or one member's) credits per local day over the last `days` days."""
        check_days(days)
        # TRANSLATORS: completes "Only moderators can …".
        await self._quota.require_moderator(guild_id, actor, N_("see the server's usage report"))
        settings, _offset = await self._store.economy.get(guild_id)
        zone_name, zone = zone_of(settings.timezone)
        since, until, day_list = local_days(zone, days, self._clock())
        spans = offset_spans(zone, since, until)
        reports = self._store.reports
        ledger = await reports.ledger_days(guild_id, since, until, spans, member_id)
        modes = await reports.mode_days(guild_id, since, until, spans, member_id)
        spent, refunded = spending_series(day_list, ledger, modes)
        api_daily: list[int] = []
        api_month: list[int] = []
        budget = None
        if member_id is None:
            # From the start of the first day's month, so the month's line starts where it stood.
            month_start = datetime.combine(day_list[0].replace(day=1), datetime.min.time(), tzinfo=zone)
            early = min(since, month_start.timestamp())
            rows = await reports.budget_days(early, until, offset_spans(zone, early, until), guild_id)
            net = _net_by_day(rows)
            api_daily = [net.get(day, 0) for day in day_list]
            api_month = month_to_date(day_list, rows)
            budget = (await self._store.budgets.server(guild_id)).budget
        names = await reports.server_names([guild_id])
        return UsageReport(
            guild_id=guild_id,
            member_id=member_id,
            member_name=await reports.member_name(guild_id, member_id) if member_id is not None else None,
            server_name=names.get(guild_id),
            timezone=zone_name,
            days=day_list,
            spent=spent,
            refunded=refunded,
            api_spent=tuple(api_daily),
            api_month_spent=tuple(api_month),
            budget=budget,
            top=tuple(
                await reports.top_spenders(
                    guild_id, since, until, not_spending=sorted(NOT_SPENDING), limit=TOP_MEMBERS
                )
            )
            if member_id is None
            else (),
            outcomes=await reports.job_outcomes(guild_id, since, until, member_id),
        )

    async def export(
        self, guild_id: int, actor: Actor, days: int, *, upload_limit: int, folder: Path | None = None
    ) -> ExportFile:
        """The ledger of the last `days` local days as a CSV file in `folder` (the system's temporary
        folder by default), written page by page; the caller sends and deletes it. Refused
        (`ExportTooLarge`) when it would not fit within `upload_limit`."""
        check_days(days)
        # TRANSLATORS: completes "Only moderators can …".
        await self._quota.require_moderator(guild_id, actor, N_("export the server's credit ledger"))
        settings, _offset = await self._store.economy.get(guild_id)
        _zone_name, zone = zone_of(settings.timezone)
        since, until, day_list = local_days(zone, days, self._clock())
        room = max(upload_limit - UPLOAD_HEADROOM, 0)
        lines = CsvLines()
        handle, name = tempfile.mkstemp(prefix="stembot-ledger-", suffix=".csv", dir=folder)
        try:
            with os.fdopen(handle, "wb") as file:
                size, rows = await self._write_rows(file, lines, guild_id, since, until, room, days)
        except BaseException:
            await asyncio.to_thread(Path(name).unlink, missing_ok=True)
            raise
        log.info("guild=%s member=%s: exported %s ledger rows (%s days)", guild_id, actor.user_id, rows, days)
        return ExportFile(
            path=name,
            filename=f"stembot-ledger-{guild_id}-{day_list[0].isoformat()}-{day_list[-1].isoformat()}.csv",
            rows=rows,
            size=size,
        )

    async def _write_rows(
        self,
        file: IO[bytes],
        lines: CsvLines,
        guild_id: int,
        since: float,
        until: float,
        room: int,
        days: int,
    ) -> tuple[int, int]:
        header = lines.header()
        await asyncio.to_thread(file.write, header)
        size, rows = len(header), 0
        after: tuple[float, int] | None = None
        while True:
            page = await self._store.reports.ledger_rows(
                guild_id, since, until, after=after, limit=EXPORT_PAGE
            )
            # Formatted and written in a thread: a page's CSV is tens of milliseconds of CPU.
            fits, length = await asyncio.to_thread(_write_page, file, lines, page, room - size)
            if not fits:
                entries = await self._store.reports.ledger_count(guild_id, since, until)
                rows_that_fit = rows + (room - size) * len(page) // max(length, 1)
                fitting = max(1, min(days - 1, days * rows_that_fit // max(entries, 1)))
                raise ExportTooLarge(days, entries, fitting, room + UPLOAD_HEADROOM)
            rows += len(page)
            size += length
            if len(page) < EXPORT_PAGE:
                return size, rows
            after = (page[-1].created_at, page[-1].id)

    # -- the bot's owner --------------------------------------------------------------------

    async def owner(self, days: int = DEFAULT_DAYS) -> OwnerReport:
        """Every server's API credits per UTC day over the last `days` days (the caller checked
        that the bot's owner asks)."""
        check_days(days)
        since, until, day_list = local_days(UTC, days, self._clock())
        month_start = datetime.combine(day_list[0].replace(day=1), datetime.min.time(), tzinfo=UTC)
        early = min(since, month_start.timestamp())
        rows = await self._store.reports.budget_days(early, until, [OffsetSpan(early, 0)])
        in_period = [r for r in rows if r.day >= day_list[0]]
        by_server: dict[int, dict[date, int]] = defaultdict(lambda: defaultdict(int))
        released: dict[date, int] = defaultdict(int)
        for row in in_period:
            by_server[row.guild_id][row.day] += row.counted
            released[row.day] += row.released
        ranked = sorted(by_server, key=lambda g: (-sum(by_server[g].values()), g))
        top, rest = ranked[:TOP_SERVERS], ranked[TOP_SERVERS:]
        servers = [Series(str(g), tuple(by_server[g].get(d, 0) for d in day_list)) for g in top]
        if rest:
            servers.append(
                Series(OTHER_SERVERS, tuple(sum(by_server[g].get(d, 0) for g in rest) for d in day_list))
            )
        budgets = self._store.budgets
        return OwnerReport(
            days=day_list,
            servers=tuple(servers),
            names=await self._store.reports.server_names(top),
            released=tuple(released.get(d, 0) for d in day_list),
            account_credits=await self._account_credits(),
            monthly_budget=budgets.bot_budget,
            server_monthly_budget=budgets.default_budget,
            month_spent=tuple(month_to_date(day_list, rows)),
        )

    # -- drawing ----------------------------------------------------------------------------

    async def draw(self, spec: ChartSpec) -> bytes:
        """The chart as a PNG, drawn in the worker process."""
        return await self._drawer.draw(spec)

    def close(self) -> None:
        self._drawer.close()


def _write_page(file: IO[bytes], lines: CsvLines, page: Sequence[ExportRow], room: int) -> tuple[bool, int]:
    """Append the page's rows to the file if they fit in `room` bytes (else write nothing): whether
    they fitted, and their length."""
    chunk = b"".join(lines.row(row) for row in page)
    if len(chunk) > room:
        return False, len(chunk)
    file.write(chunk)
    return True, len(chunk)


def spending_series(
    days: Sequence[date], ledger: Sequence[LedgerDay], modes: Sequence[LedgerDay] = ()
) -> tuple[tuple[Series, ...], tuple[int, ...]]:
    """The ledger's sums as series per category and the refunds per day (see `NOT_SPENDING`).

    The ledger's reservations are split by mode as their jobs' costs say (`modes`: the store's
    `mode_days`); whatever of a day's reservations the jobs do not account for stays a category of
    its own ("reserve"), so the series always add up to the ledger."""
    index = {day: i for i, day in enumerate(days)}
    spent: dict[str, list[int]] = {}
    refunded = [0] * len(days)
    by_mode: dict[int, int] = defaultdict(int)
    for row in modes:
        if row.day in index and row.mode is not None and row.debited:
            spent.setdefault(row.mode, [0] * len(days))[index[row.day]] += row.debited
            by_mode[index[row.day]] += row.debited
    for row in ledger:
        if row.kind in NOT_SPENDING or row.day not in index:
            continue
        i = index[row.day]
        debited = row.debited
        if row.kind == LedgerKind.RESERVE:
            debited -= by_mode[i]  # already in the modes' series
        if debited > 0:
            spent.setdefault(row.kind, [0] * len(days))[i] += debited
        refunded[i] += row.credited
    order = sorted((c for c in spent if any(spent[c])), key=_category_order)
    return tuple(Series(c, tuple(spent[c])) for c in order), tuple(refunded)


def _category_order(category: str) -> tuple[int, str]:
    modes = [mode.value for mode in Mode]
    return (modes.index(category), "") if category in modes else (len(modes), category)


def _net_by_day(rows: Sequence[BudgetDay]) -> dict[date, int]:
    net: dict[date, int] = defaultdict(int)
    for row in rows:
        net[row.day] += row.counted - row.released
    return dict(net)
