"""What the bot's operator and server managers read: `/stembot status`, `/stembot budget`, pause
alerts and budget alerts."""

from __future__ import annotations

from collections.abc import Mapping

import discord

from bot.i18n import N_, _, listing, ngettext, number, pgettext
from bot.models import (
    BudgetAlert,
    BudgetChange,
    BudgetLevel,
    BudgetOverview,
    DeploymentAlert,
    DeploymentBudget,
    JobState,
    PauseReason,
    ServerBudget,
    ServerStatus,
    StatusReport,
)
from bot.product import Mode
from bot.render.common import (
    EMBED_DESCRIPTION_LIMIT,
    INFO,
    MODERATOR,
    REFUSED_WAIT,
    budget_figures,
    budget_month_name,
    timestamp,
)
from bot.render.text import plain

_PAUSE_TEXT = {
    PauseReason.KEY_REFUSED: N_("the separation API refused the bot's API key (SEPARATION_API_KEY)"),
    PauseReason.OUT_OF_CREDITS: N_("the separation API account is out of credits"),
}


def _pause_text(reason: PauseReason) -> str:
    return _(_PAUSE_TEXT[reason])


def splitting_paused_alert(reason: PauseReason) -> str:
    # TRANSLATORS: {reason} says why, in words of its own: "the separation API account is out of credits".
    return _(
        "⏸️ **StemBot paused splitting**: {reason}. Members who try `/split` are told it is paused and "
        "are not charged. The bot checks the account regularly and resumes by itself; the bot's "
        "operator needs to fix the account.",
        reason=_pause_text(reason),
    )


def splitting_resumed_alert() -> str:
    return _("▶️ **StemBot resumed splitting**: the separation API accepts the bot's account again.")


SANDBOX_STATUS = N_(
    "🧪 **Sandbox**: splits are simulated by the bot itself (SEPARATION_API_URL=sandbox): free, "
    "with short generated stems, never shared with real results. Members' credits are spent as usual."
)


def _status_embed(paused: PauseReason | None, paused_since: float | None, sandbox: bool) -> discord.Embed:
    embed = discord.Embed(
        title=_("Sandbox · StemBot status") if sandbox else _("StemBot status"),
        description=(
            # TRANSLATORS: {since} is a Discord timestamp each reader sees as "3 hours ago" (when
            # splitting was paused; it is still paused); {reason} says why ("the separation API
            # account is out of credits").
            _(
                "⏸️ **Splitting is paused** (it stopped {since}): {reason}.",
                since=timestamp(paused_since or 0, "R"),
                reason=_pause_text(paused),
            )
            if paused is not None
            else _("✅ Splitting is running.")
        ),
        colour=REFUSED_WAIT if paused is not None else INFO,
    )
    if sandbox:
        embed.description = f"{embed.description}\n{_(SANDBOX_STATUS)}"
    return embed


_STATE_COUNTS: dict[JobState, str] = {
    # TRANSLATORS: how many jobs are in each state, in a line "queued 3 · being sent 0 · splitting 1 …".
    JobState.RESERVED: N_("queued {count}"),
    JobState.SUBMITTING: N_("being sent {count}"),
    JobState.SUBMITTED: N_("splitting {count}"),
    JobState.FOLLOWING: N_("sharing an identical split {count}"),
    JobState.SUCCEEDED: N_("done {count}"),
    JobState.FAILED: N_("failed {count}"),
    JobState.CANCELLED: N_("cancelled {count}"),
}


def _job_counts(jobs_by_state: Mapping[JobState, int]) -> str:
    return " · ".join(
        _(_STATE_COUNTS[state], count=number(jobs_by_state.get(state, 0))) for state in JobState
    )


_JOB_STATES_HELP = N_(
    "Jobs: queued (credits held, not sent yet) · being sent to the API · splitting (the API works on "
    "it) · sharing an identical split (waits for another member's job for the same track and mode, "
    "no API call of its own) · done · failed (refunded) · cancelled (by its member, before it was sent; "
    "refunded)."
)


def _splits_left(account_credits: int) -> str:
    """How many splits of each mode the API account's credits still pay for."""
    counts = ((account_credits // mode.api_price, mode) for mode in Mode if mode.api_price > 0)
    return listing(
        # TRANSLATORS: {mode} is a mode's short name ("Full split").
        [
            ngettext("{count} split ({mode})", "{count} splits ({mode})", n, mode=mode.short_label)
            for n, mode in counts
        ],
        alternatives=True,
    )


JOBS_HERE = N_("Jobs in this server")


def server_status(status: ServerStatus) -> discord.Embed:
    """`/stembot status` for a server's managers: their server's jobs and whether splitting is paused."""
    embed = _status_embed(status.paused, status.paused_since, status.sandbox)
    embed.add_field(name=_(JOBS_HERE), value=_job_counts(status.jobs_by_state), inline=False)
    owner_only = _("The API account, other servers and callbacks are shown to the bot's owner only.")
    embed.set_footer(text=f"{_(_JOB_STATES_HELP)}\nStemBot {status.version} · {owner_only}")
    return embed


EVERY_SERVERS_JOBS = N_("Jobs in every server (all processes)")


def status(report: StatusReport, server: ServerStatus | None = None) -> discord.Embed:
    """`/stembot status` for the bot's owner: account-wide figures, and `server`'s jobs if given."""
    embed = _status_embed(report.paused, report.paused_since, report.sandbox)
    if report.sandbox:
        credits = _("Sandbox: free, no API account is used")
    elif report.account_credits is not None:
        # TRANSLATORS: {splits} reads "3 splits (Vocals + instrumental) or 1 split (Full split)".
        credits = ngettext(
            "**{count}** API credit: enough for {splits}",
            "**{count}** API credits: enough for {splits}",
            report.account_credits,
            splits=_splits_left(report.account_credits),
        )
    else:
        credits = _("unknown: the API did not answer (see the errors below)")
    embed.add_field(name=_("API account"), value=credits, inline=False)
    if report.bot_budget is not None:
        embed.add_field(
            name=_("Monthly budget, every server together"),
            value=bot_budget_text(report.bot_budget, report.server_budget_default)[:1024],
            inline=False,
        )
    # Jobs are counted in the database: every process's. Errors and callbacks are this process's own.
    embed.add_field(name=_(EVERY_SERVERS_JOBS), value=_job_counts(report.jobs_by_state), inline=False)
    if server is not None:
        embed.add_field(name=_(JOBS_HERE), value=_job_counts(server.jobs_by_state), inline=False)
    errors = "\n".join(
        f"{timestamp(note.at, 'R')} `{note.endpoint}` "
        f"{note.code if note.code is not None else pgettext('an API error', 'network')}: "
        f"{plain(note.message, limit=120)}"  # the API's own words, as they came
        for note in report.recent_errors[:8]
    )
    embed.add_field(
        name=_("Recent API errors (this process)"),
        value=errors[:1024] or pgettext("no API errors", "none"),
        inline=False,
    )
    if report.orphaned_total:
        embed.add_field(name=_("Paid API tasks no job holds"), value=_orphans(report), inline=False)
    embed.add_field(name=_("Callbacks (this process)"), value=_callbacks(report)[:1024], inline=False)
    embed.set_footer(text=f"{_(_JOB_STATES_HELP)}\nStemBot {report.version}")
    return embed


def _callbacks(report: StatusReport) -> str:
    """Whether the API's callbacks reach this process, and how often it polls besides."""
    callbacks = report.callbacks
    every = number(report.poll_interval)
    if callbacks.public_url:
        last = (
            timestamp(callbacks.last_received_at, "R")
            if callbacks.last_received_at
            else pgettext("last callback", "never")
        )
        where = (
            _("listening on {address}", address=callbacks.listening)
            if callbacks.listening
            else _("**not listening**")
        )
        # TRANSLATORS: {url} is the bot's callback address; {where} says whether it listens; {last}
        # reads "5 minutes ago" or "never"; {every} is a number of seconds.
        return ngettext(
            "on: {url}/callback/… ({where}); {count} received, last {last}; polling every {every}s as a "
            "safety net",
            "on: {url}/callback/… ({where}); {count} received, last {last}; polling every {every}s as a "
            "safety net",
            callbacks.received,
            url=callbacks.public_url,
            where=where,
            last=last,
            every=every,
        )
    text = _("off (CALLBACK_PUBLIC_URL unset): polling every {every}s", every=every)
    if callbacks.web_server_error:
        # TRANSLATORS: {error} is the operating system's own words, untranslated.
        off = _("Web server **off**, no /healthz or /metrics: {error}", error=callbacks.web_server_error)
        text = f"{text}\n{off}"
    return text


def _orphans(report: StatusReport) -> str:
    """The API tasks a process paid for after it had lost its job to another (see
    docs/internals/jobs.md, "Several processes"): the newest, and how many there are in all."""
    lines = [
        # TRANSLATORS: {when} reads "3 hours ago"; {job} is a job's number; {task} the API's task id.
        _(
            "{when} job {job}: API task `{task}`",
            when=timestamp(task.at, "R"),
            job=task.job_id,
            task=_plain_id(task.api_task_id),
        )
        for task in report.orphaned_tasks
    ]
    more = report.orphaned_total - len(report.orphaned_tasks)
    if more > 0:
        lines.append(
            ngettext(
                "and {count} more (table `orphaned_tasks`)", "and {count} more (table `orphaned_tasks`)", more
            )
        )
    return "\n".join(lines)[:1024]


def _plain_id(value: str) -> str:
    """An id from the API shown in a code span: only the characters its ids use (it is untrusted)."""
    return "".join(ch for ch in value[:64] if ch.isascii() and (ch.isalnum() or ch in "-_")) or "?"


# -- the owner's wallet ----------------------------------------------------------------------


def budget_alert(alert: BudgetAlert) -> str:
    """One line for a server's audit channel: its monthly budget is 80% used, or used up."""
    budget = alert.budget
    # TRANSLATORS: {figures} reads "40 of 100 API credits (40%)"; {renews} reads "in 3 days".
    values = {"figures": budget_figures(budget), "renews": timestamp(budget.renews_at, "R")}
    if alert.level is BudgetLevel.USED_UP:
        return _(
            "⛔ **This server's monthly StemBot budget is used up**: {figures} this month. New splits are "
            "refused (members are not charged) until it renews {renews}; stems already split here can "
            "still be shared. Only the bot's owner can raise it.",
            **values,
        )
    return _(
        "💰 **This server has used 80% of its monthly StemBot budget**: {figures} this month. Once it is "
        "used up, new splits are refused until it renews {renews}; only the bot's owner can raise it.",
        **values,
    )


def bot_budget_alert(alert: DeploymentAlert) -> str:
    """The DM to the bot's owner: the bot's monthly budget (every server together) is 80% used, or
    used up."""
    budget = alert.budget
    # TRANSLATORS: {figures} reads "40 of 100 API credits (40%)"; {renews} reads "in 3 days".
    values = {"figures": budget_figures(budget), "renews": timestamp(budget.renews_at, "R")}
    if alert.level is BudgetLevel.USED_UP:
        return _(
            "⛔ **StemBot's monthly budget is used up**: {figures} spent this month by every server "
            "together (MONTHLY_BUDGET). New splits are refused in every server (members are not "
            "charged) until it renews {renews}. Raise MONTHLY_BUDGET and restart to allow more.",
            **values,
        )
    return _(
        "💰 **StemBot has used 80% of its monthly budget**: {figures} spent this month by every server "
        "together (MONTHLY_BUDGET). Once it is used up, new splits are refused in every server until it "
        "renews {renews}.",
        **values,
    )


def bot_budget_text(bot: DeploymentBudget, server_default: int | None) -> str:
    """The bot's budget for the owner (`/stembot status`, `/stembot budget`); without any budget,
    a plain warning that nothing caps what a public bot spends."""
    month = budget_month_name(bot.month)
    if bot.budget is not None:
        left = bot.left or 0
        # TRANSLATORS: {figures} reads "40 of 100 API credits (40%)"; {month} "March 2026"; {splits}
        # "3 splits (Vocals + instrumental) or 1 split (Full split)"; {renews} "in 3 days".
        return _(
            "{figures} spent in {month} by every server together (MONTHLY_BUDGET); {left} left, enough "
            "for {splits}; renews {renews}",
            figures=budget_figures(bot),
            month=month,
            left=number(left),
            splits=_splits_left(left),
            renews=timestamp(bot.renews_at, "R"),
        )
    spent = ngettext(
        "{count} API credit spent in {month} by every server together",
        "{count} API credits spent in {month} by every server together",
        bot.spent,
        month=month,
    )
    if server_default is None:
        # TRANSLATORS: {spent} reads "40 API credits spent in March 2026 by every server together".
        return _(
            "**No cap.** {spent}. Neither MONTHLY_BUDGET nor SERVER_MONTHLY_BUDGET is set: a public bot can "
            "be added to any number of servers, whose managers can grant credits, and nothing caps what "
            "they spend of the API account. Set MONTHLY_BUDGET.",
            spent=spent,
        )
    # TRANSLATORS: {spent} reads "40 API credits spent in March 2026 by every server together".
    return ngettext(
        "**No cap for all servers together** (MONTHLY_BUDGET unset). {spent}; each server may spend "
        "{count} a month (SERVER_MONTHLY_BUDGET), but a public bot can be added to any number of servers.",
        "**No cap for all servers together** (MONTHLY_BUDGET unset). {spent}; each server may spend "
        "{count} a month (SERVER_MONTHLY_BUDGET), but a public bot can be added to any number of servers.",
        server_default,
        spent=spent,
    )


def _default_text(default: int | None) -> str:
    if default is None:
        return pgettext("a budget", "no cap")
    return ngettext("{count} API credit", "{count} API credits", default)


def _server_name(guild_id: int, names: Mapping[int, str]) -> str:
    name = names.get(guild_id)
    shown = f"**{plain(name, limit=40)}** " if name else ""
    return f"{shown}`{guild_id}`"


BUDGET_LIST_LINES = 40
"""Servers listed at most in `/stembot budget` (the rest are counted): one embed, easy to read."""


def budget_overview(overview: BudgetOverview, names: Mapping[int, str]) -> discord.Embed:
    """`/stembot budget` without options: every server's spend and budget this month, most spent
    first, as many as one embed holds, and how many more there are."""
    listed = len(overview.servers)
    head = [
        # TRANSLATORS: {spent} is a number of API credits; {renews} reads "in 3 days".
        ngettext(
            "**{spent}** API credits spent this month by {count} server listed here. Budgets renew "
            "{renews} (the 1st, 00:00 UTC).",
            "**{spent}** API credits spent this month by {count} servers listed here. Budgets renew "
            "{renews} (the 1st, 00:00 UTC).",
            listed,
            spent=number(overview.total_spent),
            renews=timestamp(overview.renews_at, "R"),
        ),
        # TRANSLATORS: {budget} reads "100 API credits" or "no cap".
        _(
            "Default for every server: {budget} a month (SERVER_MONTHLY_BUDGET).",
            budget=_default_text(overview.default_budget),
        ),
    ]
    if overview.bot is not None:
        head.append(_whole_bot(overview.bot, overview.default_budget))
    head.append("")
    lines: list[str] = []
    size = sum(len(line) + 1 for line in head)
    room = EMBED_DESCRIPTION_LIMIT - 100  # for the "and N more" line
    own = pgettext("a server's budget", "own budget")
    for server in overview.servers:
        line = f"{_server_name(server.guild_id, names)} · {budget_figures(server)}" + (
            f" · {own}" if server.own else ""
        )
        if len(lines) >= BUDGET_LIST_LINES or size + len(line) + 1 > room:
            break
        lines.append(line)
        size += len(line) + 1
    hidden = listed - len(lines)
    if hidden:
        lines.append(
            ngettext(
                "…and {count} more server: ask for one with `server_id`.",
                "…and {count} more servers: ask for one with `server_id`.",
                hidden,
            )
        )
    if not overview.servers:
        lines.append(_("No server has spent anything this month, and none has a budget of its own."))
    embed = discord.Embed(
        # TRANSLATORS: an embed's title; {month} reads "March 2026".
        title=_("Monthly budgets · {month}", month=budget_month_name(overview.month)),
        description="\n".join(head + lines),
        colour=INFO,
    )
    embed.set_footer(
        text=_("Most spent first. Set one server's budget with server_id and amount (-1: the default).")
    )
    return embed


def _whole_bot(bot: DeploymentBudget, default: int | None) -> str:
    # TRANSLATORS: {budget} describes the bot's monthly budget in a sentence of its own.
    return _("**The whole bot:** {budget}", budget=bot_budget_text(bot, default))


def server_budget(
    budget: ServerBudget, names: Mapping[int, str], default: int | None, bot: DeploymentBudget | None = None
) -> discord.Embed:
    """`/stembot budget server_id:…`: one server's spend, budget and what is left this month, and
    the whole bot's (`bot`) below."""
    amount = _default_text(budget.budget)
    if budget.own:
        # TRANSLATORS: {budget} and {default} read "100 API credits" or "no cap".
        budget_line = _(
            "**Budget:** {budget} a month, this server's own; the default is {default}",
            budget=amount,
            default=_default_text(default),
        )
    else:
        budget_line = _("**Budget:** {budget} a month, the default (SERVER_MONTHLY_BUDGET)", budget=amount)
    lines = [
        _server_name(budget.guild_id, names),
        # TRANSLATORS: {month} reads "March 2026".
        ngettext(
            "**Spent in {month}:** {count} API credit",
            "**Spent in {month}:** {count} API credits",
            budget.spent,
            month=budget_month_name(budget.month),
        ),
        budget_line,
    ]
    if budget.left is not None:
        # TRANSLATORS: {splits} reads "3 splits (Vocals + instrumental) or 1 split (Full split)".
        lines.append(
            _(
                "**Left:** {left}, enough for {splits}",
                left=number(budget.left),
                splits=_splits_left(budget.left),
            )
        )
    # TRANSLATORS: {renews} reads "in 3 days"; {date} is that day and time.
    lines.append(
        _(
            "**Renews** {renews} ({date})",
            renews=timestamp(budget.renews_at, "R"),
            date=timestamp(budget.renews_at, "f"),
        )
    )
    if bot is not None:
        lines.append(_whole_bot(bot, default))
    used_up = budget.left is not None and budget.left < min(mode.api_price for mode in Mode)
    colour = REFUSED_WAIT if used_up else INFO
    return discord.Embed(title=_("Monthly budget"), description="\n".join(lines), colour=colour)


def budget_change(
    change: BudgetChange, names: Mapping[int, str], default: int | None, bot: DeploymentBudget | None = None
) -> discord.Embed:
    """The owner's reply after setting a server's budget."""
    before, after = change.before, change.after
    embed = server_budget(after, names, default, bot)
    embed.title = _("Monthly budget set") if after.own else _("Monthly budget back to the default")
    if embed.colour != REFUSED_WAIT:
        embed.colour = MODERATOR
    values = {"before": _default_text(before.budget), "after": _default_text(after.budget)}
    # TRANSLATORS: {before} and {after} read "100 API credits" or "no cap".
    was = (
        _("**Was** {before} a month (its own), **now** {after}.", **values)
        if before.own
        else _("**Was** {before} a month (the default), **now** {after}.", **values)
    )
    embed.description = f"{was}\n{embed.description or ''}"
    return embed
