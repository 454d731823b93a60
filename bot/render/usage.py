"""Usage reports in words and charts: `/quota report` (a server's credits per day), `/quota export`
(the ledger as a file) and `/stembot report` (every server's API credits).

A chart is a `ChartSpec` (drawn elsewhere, in a worker process); below it an embed gives the
figures in text: totals, the top members, the failure rate. Names are untrusted: in embeds through
`plain`, in charts with the id as the fallback where the chart's font cannot draw them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date

import discord
from babel.dates import format_interval, format_skeleton
from babel.numbers import format_percent as babel_percent

from bot import i18n
from bot.charts import ChartSpec, Label, Stack, fonts_for
from bot.i18n import _, ngettext, number
from bot.models import LedgerKind
from bot.models.reports import OTHER_SERVERS, ExportFile, OwnerReport, Series, UsageReport
from bot.product import Mode
from bot.render.common import credit_amount
from bot.render.text import plain

COLOUR = discord.Colour.blurple()
CHART_FILENAME = "stembot-usage.png"


def category_label(category: str) -> str:
    """A spending category in words: a mode's short name, priced mixes as "Mixes", or a ledger kind
    printed as it is named ("grant_x" as "Grant x") until it has words of its own."""
    if category in {mode.value for mode in Mode}:
        return Mode(category).short_label
    if category == LedgerKind.MIX_CHARGE.value:
        # TRANSLATORS: a spending category in a chart's legend: credits spent on mixes.
        return _("Mixes")
    return category.replace("_", " ").capitalize()


def day_label(day: date) -> str:
    """A day under the chart, the language's way: "Mar 5", "5 mars", "3月5日"."""
    return format_skeleton("MMMd", day, locale=i18n.current().babel)


def period_words(days: tuple[date, ...]) -> str:
    """The days a report covers, the language's way: "Mar 1-5, 2025"."""
    locale = i18n.current().babel
    if len(days) == 1:
        return format_skeleton("yMMMd", days[0], locale=locale)
    return format_interval(days[0], days[-1], "yMMMd", locale=locale)


def _chart(build: Callable[[], ChartSpec]) -> ChartSpec:
    """The chart in the language being spoken, with its English twin to draw instead where no
    font the chart can use draws the language's script (see `bot.charts`)."""
    spec = build()
    language = i18n.current()
    if language is i18n.ENGLISH:
        return spec
    with i18n.speaking(i18n.ENGLISH):
        english = build()
    return replace(spec, fonts=fonts_for(language.babel), english=english)


def _who(report: UsageReport) -> tuple[Label, str]:
    """The chart's title and the embed's, naming the member or the server."""
    if report.member_id is not None:
        name = report.member_name or str(report.member_id)
        # TRANSLATORS: a chart's title; {name} is a member's display name, {id} their Discord id.
        chart = Label(
            _("Credits spent · {name}", name=name),
            _("Credits spent · member {id}", id=report.member_id),
        )
        return chart, _("Credits spent by {name}", name=plain(name, 100))
    if report.server_name:
        # TRANSLATORS: a chart's title; {name} is the server's name.
        chart = Label(_("Credits spent · {name}", name=report.server_name), _("Credits spent in this server"))
        return chart, _("Credits spent in {name}", name=plain(report.server_name, 100))
    return Label(_("Credits spent in this server")), _("Credits spent in this server")


def _last_days(days: tuple[date, ...], zone: str) -> str:
    """A chart's subtitle: the period and the time zone its days are in."""
    # TRANSLATORS: a chart's subtitle: "Last 30 days · Mar 1-30, 2025 · days in Europe/Berlin".
    return ngettext(
        "Last {count} day · {period} · days in {zone}",
        "Last {count} days · {period} · days in {zone}",
        len(days),
        period=period_words(days),
        zone=zone,
    )


def _the_last_days(days: tuple[date, ...], zone: str) -> str:
    # TRANSLATORS: {period} reads "Mar 1-30, 2025"; {zone} is a time zone's name ("Europe/Berlin").
    return ngettext(
        "The last {count} day ({period}), days in {zone}.",
        "The last {count} days ({period}), days in {zone}.",
        len(days),
        period=period_words(days),
        zone=zone,
    )


def usage_chart(report: UsageReport) -> ChartSpec:
    return _chart(lambda: _usage_chart(report))


def _usage_chart(report: UsageReport) -> ChartSpec:
    title, _summary_title = _who(report)
    line = None
    limit = None
    if report.member_id is None and report.budget is not None:
        # TRANSLATORS: a chart's legend: the server's API credits spent so far this month (a line).
        line = Stack(Label(_("API credits this month")), report.api_month_spent)
        # TRANSLATORS: a chart's legend: the dashed line of the server's monthly budget.
        limit = (_("Monthly budget ({amount})", amount=number(report.budget)), report.budget)
    return ChartSpec(
        title=title,
        subtitle=_last_days(report.days, report.timezone),
        day_labels=tuple(day_label(d) for d in report.days),
        # TRANSLATORS: a chart's vertical axis.
        y_label=_("Member credits per day"),
        stacks=tuple(Stack(Label(category_label(s.label)), s.values) for s in report.spent),
        # TRANSLATORS: a chart's legend: credits given back (bars below the axis).
        below=Stack(Label(_("Refunded")), report.refunded),
        line=line,
        # TRANSLATORS: a chart's second vertical axis, on the right.
        line_axis_label=_("API credits") if line is not None else "",
        limit=limit,
    )


def usage_summary(report: UsageReport, *, with_chart: bool) -> discord.Embed:
    """The figures under the chart (or instead of it, for a period with nothing to draw)."""
    _chart_title, title = _who(report)
    embed = discord.Embed(title=title, colour=COLOUR)
    period = _the_last_days(report.days, report.timezone)
    if report.empty:
        nothing = _("Nothing was spent or refunded, and no split finished: nothing to draw.")
        embed.description = f"{period}\n{nothing}"
        return embed
    embed.description = period if with_chart else f"{period}\n{_('Nothing to draw.')}"
    by_category = i18n.listing(
        [
            # TRANSLATORS: a spending category and its credits: "Full split 150".
            _("{category} {amount}", category=category_label(s.label), amount=number(sum(s.values)))
            for s in report.spent
            if sum(s.values)
        ]
    )
    spent = credit_amount(report.total_spent)
    totals = [
        # TRANSLATORS: {spent} reads "150 credits"; {categories} lists them by category.
        _("**Spent:** {spent} ({categories})", spent=spent, categories=by_category)
        if by_category
        else _("**Spent:** {spent}", spent=spent),
        _("**Refunded:** {refunded}", refunded=credit_amount(report.total_refunded)),
    ]
    if report.member_id is None:
        api = number(sum(report.api_spent))
        totals.append(
            _(
                "**API credits:** {api} net of refunds (monthly budget {budget})",
                api=api,
                budget=number(report.budget),
            )
            if report.budget is not None
            else _("**API credits:** {api} net of refunds", api=api)
        )
    embed.add_field(name=_("Totals"), value="\n".join(totals), inline=False)
    if report.top:
        lines = [
            f"{rank}. {plain(s.name, 40) if s.name else f'<@{s.user_id}>'} · {credit_amount(s.credits)}"
            for rank, s in enumerate(report.top, start=1)
        ]
        embed.add_field(name=_("Top members by credits spent"), value="\n".join(lines), inline=False)
    outcomes = report.outcomes
    if outcomes.failure_rate is None:
        failures = _("No split asked for in these days has finished yet.")
    else:
        # TRANSLATORS: {rate} is a percentage ("12%"); {failed} of {count} are numbers of splits.
        failures = ngettext(
            "{rate}: {failed} of {count} finished split failed (refunded).",
            "{rate}: {failed} of {count} finished splits failed (refunded).",
            outcomes.finished,
            rate=format_percent(outcomes.failure_rate),
            failed=number(outcomes.failed),
        )
    embed.add_field(name=_("Failure rate"), value=failures, inline=False)
    return embed


def format_percent(rate: float) -> str:
    """A share as a whole percentage, the language's way: "12%", "12 %"."""
    return babel_percent(rate, locale=i18n.current().babel)


def _server_label(series: Series, report: OwnerReport) -> Label:
    if series.label == OTHER_SERVERS:
        # TRANSLATORS: a chart's legend: every server outside the top ones, together.
        return Label(_("Other servers"))
    name = report.names.get(int(series.label))
    # TRANSLATORS: a server without a known name, by its Discord id.
    unnamed = _("Server {id}", id=series.label)
    return Label(name, unnamed) if name else Label(unnamed)


def owner_chart(report: OwnerReport) -> ChartSpec:
    return _chart(lambda: _owner_chart(report))


def _owner_chart(report: OwnerReport) -> ChartSpec:
    limit = None
    if report.monthly_budget is not None:
        limit = (f"MONTHLY_BUDGET ({number(report.monthly_budget)})", report.monthly_budget)
    return ChartSpec(
        title=Label(_("API credits by server")),
        subtitle=_last_days(report.days, "UTC"),
        day_labels=tuple(day_label(d) for d in report.days),
        # TRANSLATORS: a chart's vertical axis.
        y_label=_("API credits per day"),
        stacks=tuple(Stack(_server_label(s, report), s.values) for s in report.servers),
        below=Stack(Label(_("Refunded")), report.released),
        # TRANSLATORS: a chart's legend: every server's API credits so far this month (a line).
        line=Stack(Label(_("Every server this month")), report.month_spent),
        # TRANSLATORS: a chart's second vertical axis, on the right.
        line_axis_label=_("API credits this month"),
        limit=limit,
    )


def owner_summary(report: OwnerReport, *, with_chart: bool) -> discord.Embed:
    embed = discord.Embed(title=_("API credits by server"), colour=COLOUR)
    period = _the_last_days(report.days, "UTC")
    embed.description = (
        period if with_chart else f"{period}\n{_('No paid split in these days: nothing to draw.')}"
    )
    lines = []
    for series in report.servers:
        label = _server_label(series, report)
        name = plain(label.text, 60)
        if series.label != OTHER_SERVERS:
            name += f" (`{series.label}`)"
        lines.append(f"{name} · {number(sum(series.values))}")
    if lines:
        embed.add_field(name=_("Spent by server"), value="\n".join(lines), inline=False)
    money = [
        ngettext(
            "**Net of refunds:** {count} API credit", "**Net of refunds:** {count} API credits", report.total
        ),
        ngettext(
            "**API account:** {count} credit now",
            "**API account:** {count} credits now",
            report.account_credits,
        )
        if report.account_credits is not None
        else _("**API account:** unknown"),
        _("**MONTHLY_BUDGET:** {amount}", amount=number(report.monthly_budget))
        if report.monthly_budget is not None
        else _("**MONTHLY_BUDGET:** not set (no cap)"),
        _("**SERVER_MONTHLY_BUDGET:** {amount}", amount=number(report.server_monthly_budget))
        if report.server_monthly_budget is not None
        else _("**SERVER_MONTHLY_BUDGET:** not set"),
    ]
    embed.add_field(name=_("Totals and budgets"), value="\n".join(money), inline=False)
    return embed


def export_ready(file: ExportFile, days: int) -> str:
    if not file.rows:
        return ngettext(
            "The credit ledger of the last {count} day has no entries: the file has the header row only.",
            "The credit ledger of the last {count} days has no entries: the file has the header row only.",
            days,
        )
    # TRANSLATORS: {days} is a number of days.
    return ngettext(
        "The credit ledger of the last {days} days: {count} entry, times in UTC. It opens in a "
        "spreadsheet as is.",
        "The credit ledger of the last {days} days: {count} entries, times in UTC. It opens in a "
        "spreadsheet as is.",
        file.rows,
        days=number(days),
    )
