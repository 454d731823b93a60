"""What the bot's operator and server managers read: `/stembot status`, `/stembot budget`, pause
alerts and budget alerts."""

from __future__ import annotations

from collections.abc import Mapping

import discord

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
    number,
    timestamp,
)
from bot.render.text import plain

_PAUSE_TEXT = {
    PauseReason.KEY_REFUSED: "the separation API refused the bot's API key (SEPARATION_API_KEY)",
    PauseReason.OUT_OF_CREDITS: "the separation API account is out of credits",
}


def splitting_paused_alert(reason: PauseReason) -> str:
    return (
        f"⏸️ **StemBot paused splitting**: {_PAUSE_TEXT[reason]}. Members who try `/split` are told "
        "it is paused and are not charged. The bot checks the account regularly and resumes by itself; "
        "the bot's operator needs to fix the account."
    )


def splitting_resumed_alert() -> str:
    return "▶️ **StemBot resumed splitting**: the separation API accepts the bot's account again."


SANDBOX_STATUS = (
    "🧪 **Sandbox**: splits are simulated by the bot itself (SEPARATION_API_URL=sandbox): free, "
    "with short generated stems, never shared with real results. Members' credits are spent as usual."
)


def _status_embed(paused: PauseReason | None, paused_since: float | None, sandbox: bool) -> discord.Embed:
    embed = discord.Embed(
        title="Sandbox · StemBot status" if sandbox else "StemBot status",
        description=(
            f"⏸️ **Splitting is paused** since {timestamp(paused_since or 0, 'R')}: {_PAUSE_TEXT[paused]}."
            if paused is not None
            else "✅ Splitting is running."
        ),
        colour=REFUSED_WAIT if paused is not None else INFO,
    )
    if sandbox:
        embed.description = f"{embed.description}\n{SANDBOX_STATUS}"
    return embed


_STATE_WORDS: dict[JobState, str] = {
    JobState.RESERVED: "queued",
    JobState.SUBMITTING: "being sent",
    JobState.SUBMITTED: "splitting",
    JobState.FOLLOWING: "sharing an identical split",
    JobState.SUCCEEDED: "done",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "cancelled",
}


def _job_counts(jobs_by_state: Mapping[JobState, int]) -> str:
    return " · ".join(f"{_STATE_WORDS[state]} {number(jobs_by_state.get(state, 0))}" for state in JobState)


_JOB_STATES_HELP = (
    "Jobs: queued (credits held, not sent yet) · being sent to the API · splitting (the API works on "
    "it) · sharing an identical split (waits for another member's job for the same track and mode, "
    "no API call of its own) · done · failed (refunded) · cancelled (by its member, before it was sent; "
    "refunded)."
)


def _splits_left(account_credits: int) -> str:
    """How many splits of each mode the API account's credits still pay for."""
    counts = ((account_credits // mode.api_price, mode) for mode in Mode if mode.api_price > 0)
    return " or ".join(f"{number(n)} split{'' if n == 1 else 's'} ({mode.short_label})" for n, mode in counts)


def server_status(status: ServerStatus) -> discord.Embed:
    """`/stembot status` for a server's managers: their server's jobs and whether splitting is paused."""
    embed = _status_embed(status.paused, status.paused_since, status.sandbox)
    embed.add_field(name="Jobs in this server", value=_job_counts(status.jobs_by_state), inline=False)
    embed.set_footer(
        text=f"{_JOB_STATES_HELP}\nStemBot {status.version} · The API account, other servers and "
        "callbacks are shown to the bot's owner only."
    )
    return embed


EVERY_SERVERS_JOBS = "Jobs in every server (all processes)"


def status(report: StatusReport, server: ServerStatus | None = None) -> discord.Embed:
    """`/stembot status` for the bot's owner: account-wide figures, and `server`'s jobs if given."""
    embed = _status_embed(report.paused, report.paused_since, report.sandbox)
    credits = (
        f"**{number(report.account_credits)}** API credits: enough for {_splits_left(report.account_credits)}"
        if report.account_credits is not None
        else "unknown: the API did not answer (see the errors below)"
    )
    if report.sandbox:
        credits = "Sandbox: free, no API account is used"
    embed.add_field(name="API account", value=credits, inline=False)
    if report.bot_budget is not None:
        embed.add_field(
            name="Monthly budget, every server together",
            value=bot_budget_text(report.bot_budget, report.server_budget_default)[:1024],
            inline=False,
        )
    # Jobs are counted in the database: every process's. Errors and callbacks are this process's own.
    embed.add_field(name=EVERY_SERVERS_JOBS, value=_job_counts(report.jobs_by_state), inline=False)
    if server is not None:
        embed.add_field(name="Jobs in this server", value=_job_counts(server.jobs_by_state), inline=False)
    errors = "\n".join(
        f"{timestamp(note.at, 'R')} `{note.endpoint}` {note.code if note.code is not None else 'network'}: "
        f"{plain(note.message, limit=120)}"
        for note in report.recent_errors[:8]
    )
    embed.add_field(name="Recent API errors (this process)", value=errors[:1024] or "none", inline=False)
    if report.orphaned_total:
        embed.add_field(name="Paid API tasks no job holds", value=_orphans(report), inline=False)
    callbacks = report.callbacks
    if callbacks.public_url:
        last = timestamp(callbacks.last_received_at, "R") if callbacks.last_received_at else "never"
        where = f"listening on {callbacks.listening}" if callbacks.listening else "**not listening**"
        text = (
            f"on: {callbacks.public_url}/callback/… ({where}); {number(callbacks.received)} received, "
            f"last {last}; "
            f"polling every {report.poll_interval:g}s as a safety net"
        )
    else:
        text = f"off (CALLBACK_PUBLIC_URL unset): polling every {report.poll_interval:g}s"
        if callbacks.web_server_error:
            text += f"\nWeb server **off**, no /healthz or /metrics: {callbacks.web_server_error}"
    embed.add_field(name="Callbacks (this process)", value=text[:1024], inline=False)
    embed.set_footer(text=f"{_JOB_STATES_HELP}\nStemBot {report.version}")
    return embed


def _orphans(report: StatusReport) -> str:
    """The API tasks a process paid for after it had lost its job to another (see
    docs/internals/jobs.md, "Several processes"): the newest, and how many there are in all."""
    lines = [
        f"{timestamp(task.at, 'R')} job {task.job_id}: API task `{_plain_id(task.api_task_id)}`"
        for task in report.orphaned_tasks
    ]
    more = report.orphaned_total - len(report.orphaned_tasks)
    if more > 0:
        lines.append(f"and {number(more)} more (table `orphaned_tasks`)")
    return "\n".join(lines)[:1024]


def _plain_id(value: str) -> str:
    """An id from the API shown in a code span: only the characters its ids use (it is untrusted)."""
    return "".join(ch for ch in value[:64] if ch.isascii() and (ch.isalnum() or ch in "-_")) or "?"


# -- the owner's wallet ----------------------------------------------------------------------


def budget_alert(alert: BudgetAlert) -> str:
    """One line for a server's audit channel: its monthly budget is 80% used, or used up."""
    budget = alert.budget
    renews = timestamp(budget.renews_at, "R")
    if alert.level is BudgetLevel.USED_UP:
        return (
            f"⛔ **This server's monthly StemBot budget is used up**: {budget_figures(budget)} this "
            f"month. New splits are refused (members are not charged) until it renews {renews}; stems "
            "already split here can still be shared. Only the bot's owner can raise it."
        )
    return (
        f"💰 **This server has used 80% of its monthly StemBot budget**: {budget_figures(budget)} this "
        f"month. Once it is used up, new splits are refused until it renews {renews}; only the bot's "
        "owner can raise it."
    )


def bot_budget_alert(alert: DeploymentAlert) -> str:
    """The DM to the bot's owner: the bot's monthly budget (every server together) is 80% used, or
    used up."""
    budget = alert.budget
    renews = timestamp(budget.renews_at, "R")
    if alert.level is BudgetLevel.USED_UP:
        return (
            f"⛔ **StemBot's monthly budget is used up**: {budget_figures(budget)} spent this month by "
            f"every server together (MONTHLY_BUDGET). New splits are refused in every server (members "
            f"are not charged) until it renews {renews}. Raise MONTHLY_BUDGET and restart to allow more."
        )
    return (
        f"💰 **StemBot has used 80% of its monthly budget**: {budget_figures(budget)} spent this month "
        f"by every server together (MONTHLY_BUDGET). Once it is used up, new splits are refused in every "
        f"server until it renews {renews}."
    )


def bot_budget_text(bot: DeploymentBudget, server_default: int | None) -> str:
    """The bot's budget for the owner (`/stembot status`, `/stembot budget`); without any budget,
    a plain warning that nothing caps what a public bot spends."""
    if bot.budget is not None:
        left = bot.left or 0
        return (
            f"{budget_figures(bot)} spent in {budget_month_name(bot.month)} by every server together "
            f"(MONTHLY_BUDGET); {number(left)} left, enough for {_splits_left(left)}; renews "
            f"{timestamp(bot.renews_at, 'R')}"
        )
    spent = (
        f"{number(bot.spent)} API credits spent in {budget_month_name(bot.month)} by every server together"
    )
    if server_default is None:
        return (
            f"**No cap.** {spent}. Neither MONTHLY_BUDGET nor SERVER_MONTHLY_BUDGET is set: a public "
            "bot can be added to any number of servers, whose managers can grant credits, and nothing "
            "caps what they spend of the API account. Set MONTHLY_BUDGET."
        )
    return (
        f"**No cap for all servers together** (MONTHLY_BUDGET unset). {spent}; each server may spend "
        f"{number(server_default)} a month (SERVER_MONTHLY_BUDGET), but a public bot can be added to "
        "any number of servers."
    )


def _default_text(default: int | None) -> str:
    return f"{number(default)} API credits" if default is not None else "no cap"


def _server_name(guild_id: int, names: Mapping[int, str]) -> str:
    name = names.get(guild_id)
    shown = f"**{plain(name, limit=40)}** " if name else ""
    return f"{shown}`{guild_id}`"


BUDGET_LIST_LINES = 40
"""Servers listed at most in `/stembot budget` (the rest are counted): one embed, easy to read."""


def budget_overview(overview: BudgetOverview, names: Mapping[int, str]) -> discord.Embed:
    """`/stembot budget` without options: every server's spend and budget this month, most spent
    first, as many as one embed holds, and how many more there are."""
    head = [
        f"**{overview.total_spent}** API credits spent this month by {len(overview.servers)} "
        f"server{'' if len(overview.servers) == 1 else 's'} listed here. Budgets renew "
        f"{timestamp(overview.renews_at, 'R')} (the 1st, 00:00 UTC).",
        f"Default for every server: {_default_text(overview.default_budget)} a month "
        "(SERVER_MONTHLY_BUDGET).",
    ]
    if overview.bot is not None:
        head.append(f"**The whole bot:** {bot_budget_text(overview.bot, overview.default_budget)}")
    head.append("")
    lines: list[str] = []
    size = sum(len(line) + 1 for line in head)
    room = EMBED_DESCRIPTION_LIMIT - 100  # for the "and N more" line
    for server in overview.servers:
        line = f"{_server_name(server.guild_id, names)} · {budget_figures(server)}" + (
            " · own budget" if server.own else ""
        )
        if len(lines) >= BUDGET_LIST_LINES or size + len(line) + 1 > room:
            break
        lines.append(line)
        size += len(line) + 1
    hidden = len(overview.servers) - len(lines)
    if hidden:
        lines.append(f"…and {hidden} more server{'' if hidden == 1 else 's'}: ask for one with `server_id`.")
    if not overview.servers:
        lines.append("No server has spent anything this month, and none has a budget of its own.")
    embed = discord.Embed(
        title=f"Monthly budgets · {budget_month_name(overview.month)}",
        description="\n".join(head + lines),
        colour=INFO,
    )
    embed.set_footer(
        text="Most spent first. Set one server's budget with server_id and amount (-1: the default)."
    )
    return embed


def server_budget(
    budget: ServerBudget, names: Mapping[int, str], default: int | None, bot: DeploymentBudget | None = None
) -> discord.Embed:
    """`/stembot budget server_id:…`: one server's spend, budget and what is left this month, and
    the whole bot's (`bot`) below."""
    own = "this server's own" if budget.own else "the default (SERVER_MONTHLY_BUDGET)"
    lines = [
        _server_name(budget.guild_id, names),
        f"**Spent in {budget_month_name(budget.month)}:** {number(budget.spent)} API credits",
        f"**Budget:** {_default_text(budget.budget)} a month, {own}"
        + (f"; the default is {_default_text(default)}" if budget.own else ""),
    ]
    if budget.left is not None:
        lines.append(f"**Left:** {number(budget.left)}, enough for {_splits_left(budget.left)}")
    lines.append(f"**Renews** {timestamp(budget.renews_at, 'R')} ({timestamp(budget.renews_at, 'f')})")
    if bot is not None:
        lines.append(f"**The whole bot:** {bot_budget_text(bot, default)}")
    used_up = budget.left is not None and budget.left < min(mode.api_price for mode in Mode)
    colour = REFUSED_WAIT if used_up else INFO
    return discord.Embed(title="Monthly budget", description="\n".join(lines), colour=colour)


def budget_change(
    change: BudgetChange, names: Mapping[int, str], default: int | None, bot: DeploymentBudget | None = None
) -> discord.Embed:
    """The owner's reply after setting a server's budget."""
    before, after = change.before, change.after
    embed = server_budget(after, names, default, bot)
    embed.title = "Monthly budget set" if after.own else "Monthly budget back to the default"
    if embed.colour != REFUSED_WAIT:
        embed.colour = MODERATOR
    embed.description = (
        f"**Was** {_default_text(before.budget)} a month"
        + (" (its own)" if before.own else " (the default)")
        + f", **now** {_default_text(after.budget)}.\n"
        + (embed.description or "")
    )
    return embed
