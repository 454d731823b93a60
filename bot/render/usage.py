"""Usage reports in words and charts: `/quota report` (a server's credits per day), `/quota export`
(the ledger as a file) and `/stembot report` (every server's API credits).

A chart is a `ChartSpec` (drawn elsewhere, in a worker process); below it an embed gives the
figures in text: totals, the top members, the failure rate. Names are untrusted: in embeds through
`plain`, in charts with the id as the fallback where the chart's font cannot draw them.
"""

from __future__ import annotations

from datetime import date

import discord

from bot.charts import ChartSpec, Label, Stack
from bot.models import LedgerKind
from bot.models.reports import OTHER_SERVERS, ExportFile, OwnerReport, Series, UsageReport
from bot.product import Mode
from bot.render.common import credit_amount, number
from bot.render.text import plain

COLOUR = discord.Colour.blurple()
CHART_FILENAME = "stembot-usage.png"


def category_label(category: str) -> str:
    """A spending category in words: a mode's short name, priced mixes as "Mixes", or a ledger kind
    printed as it is named ("grant_x" as "Grant x") until it has words of its own."""
    if category in {mode.value for mode in Mode}:
        return Mode(category).short_label
    if category == LedgerKind.MIX_CHARGE.value:
        return "Mixes"
    return category.replace("_", " ").capitalize()


def day_label(day: date) -> str:
    return f"{day.day} {day.strftime('%b')}"


def period_words(days: tuple[date, ...]) -> str:
    return (
        f"{day_label(days[0])} to {day_label(days[-1])} {days[-1].year}"
        if len(days) > 1
        else day_label(days[0])
    )


def _who(report: UsageReport) -> tuple[Label, str]:
    """The chart's title and the embed's, naming the member or the server."""
    if report.member_id is not None:
        name = report.member_name or str(report.member_id)
        return Label(f"Credits spent · {name}", f"Credits spent · member {report.member_id}"), (
            f"Credits spent by {plain(name, 100)}"
        )
    if report.server_name:
        return Label(f"Credits spent · {report.server_name}", "Credits spent in this server"), (
            f"Credits spent in {plain(report.server_name, 100)}"
        )
    return Label("Credits spent in this server"), "Credits spent in this server"


def usage_chart(report: UsageReport) -> ChartSpec:
    title, _ = _who(report)
    line = None
    limit = None
    if report.member_id is None and report.budget is not None:
        line = Stack(Label("API credits this month"), report.api_month_spent)
        limit = (f"Monthly budget ({number(report.budget)})", report.budget)
    return ChartSpec(
        title=title,
        subtitle=f"Last {len(report.days)} days · {period_words(report.days)} · days in {report.timezone}",
        day_labels=tuple(day_label(d) for d in report.days),
        y_label="Member credits per day",
        stacks=tuple(Stack(Label(category_label(s.label)), s.values) for s in report.spent),
        below=Stack(Label("Refunded"), report.refunded),
        line=line,
        line_axis_label="API credits" if line is not None else "",
        limit=limit,
    )


def usage_summary(report: UsageReport, *, with_chart: bool) -> discord.Embed:
    """The figures under the chart (or instead of it, for a period with nothing to draw)."""
    _, title = _who(report)
    embed = discord.Embed(title=title, colour=COLOUR)
    period = f"The last {len(report.days)} days ({period_words(report.days)}), days in {report.timezone}."
    if report.empty:
        embed.description = (
            f"{period}\nNothing was spent or refunded, and no split finished: nothing to draw."
        )
        return embed
    embed.description = period + ("" if with_chart else "\nNothing to draw.")
    by_category = ", ".join(
        f"{category_label(s.label)} {number(sum(s.values))}" for s in report.spent if sum(s.values)
    )
    totals = f"**Spent:** {credit_amount(report.total_spent)}"
    if by_category:
        totals += f" ({by_category})"
    totals += f"\n**Refunded:** {credit_amount(report.total_refunded)}"
    if report.member_id is None:
        totals += f"\n**API credits:** {number(sum(report.api_spent))} net of refunds"
        if report.budget is not None:
            totals += f" (monthly budget {number(report.budget)})"
    embed.add_field(name="Totals", value=totals, inline=False)
    if report.top:
        lines = [
            f"{rank}. {plain(s.name, 40) if s.name else f'<@{s.user_id}>'} · {credit_amount(s.credits)}"
            for rank, s in enumerate(report.top, start=1)
        ]
        embed.add_field(name="Top members by credits spent", value="\n".join(lines), inline=False)
    outcomes = report.outcomes
    if outcomes.failure_rate is None:
        failures = "No split asked for in these days has finished yet."
    else:
        failures = (
            f"{outcomes.failure_rate:.0%}: {number(outcomes.failed)} of {number(outcomes.finished)} "
            "finished splits failed (refunded)."
        )
    embed.add_field(name="Failure rate", value=failures, inline=False)
    return embed


def _server_label(series: Series, report: OwnerReport) -> Label:
    if series.label == OTHER_SERVERS:
        return Label("Other servers")
    name = report.names.get(int(series.label))
    return Label(name, f"Server {series.label}") if name else Label(f"Server {series.label}")


def owner_chart(report: OwnerReport) -> ChartSpec:
    limit = None
    if report.monthly_budget is not None:
        limit = (f"MONTHLY_BUDGET ({number(report.monthly_budget)})", report.monthly_budget)
    return ChartSpec(
        title=Label("API credits by server"),
        subtitle=f"Last {len(report.days)} days · {period_words(report.days)} · days in UTC",
        day_labels=tuple(day_label(d) for d in report.days),
        y_label="API credits per day",
        stacks=tuple(Stack(_server_label(s, report), s.values) for s in report.servers),
        below=Stack(Label("Refunded"), report.released),
        line=Stack(Label("Every server this month"), report.month_spent),
        line_axis_label="API credits this month",
        limit=limit,
    )


def owner_summary(report: OwnerReport, *, with_chart: bool) -> discord.Embed:
    embed = discord.Embed(title="API credits by server", colour=COLOUR)
    period = f"The last {len(report.days)} days ({period_words(report.days)}), days in UTC."
    embed.description = period if with_chart else f"{period}\nNo paid split in these days: nothing to draw."
    lines = []
    for series in report.servers:
        label = _server_label(series, report)
        name = plain(label.text, 60)
        if series.label != OTHER_SERVERS:
            name += f" (`{series.label}`)"
        lines.append(f"{name} · {number(sum(series.values))}")
    if lines:
        embed.add_field(name="Spent by server", value="\n".join(lines), inline=False)
    money = [f"**Net of refunds:** {number(report.total)} API credits"]
    money.append(
        "**API account:** "
        + (
            f"{number(report.account_credits)} credits now"
            if report.account_credits is not None
            else "unknown"
        )
    )
    money.append(
        "**MONTHLY_BUDGET:** "
        + (number(report.monthly_budget) if report.monthly_budget is not None else "not set (no cap)")
    )
    money.append(
        "**SERVER_MONTHLY_BUDGET:** "
        + (number(report.server_monthly_budget) if report.server_monthly_budget is not None else "not set")
    )
    embed.add_field(name="Totals and budgets", value="\n".join(money), inline=False)
    return embed


def export_ready(file: ExportFile, days: int) -> str:
    return (
        f"The credit ledger of the last {days} days: {number(file.rows)} entries, times in UTC. "
        "It opens in a spreadsheet as is."
        if file.rows
        else f"The credit ledger of the last {days} days has no entries: the file has the header row only."
    )
