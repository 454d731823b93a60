"""What the bot's operator and server managers read: `/stembot status` and pause alerts."""

from __future__ import annotations

from collections.abc import Mapping

import discord

from bot.models import JobState, PauseReason, ServerStatus, StatusReport
from bot.product import Mode
from bot.render.common import INFO, REFUSED_WAIT, number, timestamp

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


def _status_embed(paused: PauseReason | None, paused_since: float | None) -> discord.Embed:
    return discord.Embed(
        title="StemBot status",
        description=(
            f"⏸️ **Splitting is paused** since {timestamp(paused_since or 0, 'R')}: {_PAUSE_TEXT[paused]}."
            if paused is not None
            else "✅ Splitting is running."
        ),
        colour=REFUSED_WAIT if paused is not None else INFO,
    )


_STATE_WORDS: dict[JobState, str] = {
    JobState.RESERVED: "queued",
    JobState.SUBMITTING: "being sent",
    JobState.SUBMITTED: "splitting",
    JobState.FOLLOWING: "sharing an identical split",
    JobState.SUCCEEDED: "done",
    JobState.FAILED: "failed",
}


def _job_counts(jobs_by_state: Mapping[JobState, int]) -> str:
    return " · ".join(f"{_STATE_WORDS[state]} {number(jobs_by_state.get(state, 0))}" for state in JobState)


_JOB_STATES_HELP = (
    "Jobs: queued (credits held, not sent yet) · being sent to the API · splitting (the API works on "
    "it) · sharing an identical split (waits for another member's job for the same track and mode, "
    "no API call of its own) · done · failed (refunded)."
)


def _splits_left(account_credits: int) -> str:
    """How many splits of each mode the API account's credits still pay for."""
    counts = ((account_credits // mode.api_price, mode) for mode in Mode if mode.api_price > 0)
    return " or ".join(f"{number(n)} split{'' if n == 1 else 's'} ({mode.short_label})" for n, mode in counts)


def server_status(status: ServerStatus) -> discord.Embed:
    """`/stembot status` for a server's managers: their server's jobs and whether splitting is paused."""
    embed = _status_embed(status.paused, status.paused_since)
    embed.add_field(name="Jobs in this server", value=_job_counts(status.jobs_by_state), inline=False)
    embed.set_footer(
        text=f"{_JOB_STATES_HELP}\nStemBot {status.version} · The API account, other servers and "
        "callbacks are shown to the bot's owner only."
    )
    return embed


def status(report: StatusReport, server: ServerStatus | None = None) -> discord.Embed:
    """`/stembot status` for the bot's owner: account-wide figures, and `server`'s jobs if given."""
    embed = _status_embed(report.paused, report.paused_since)
    credits = (
        f"**{number(report.account_credits)}** API credits: enough for "
        f"{_splits_left(report.account_credits)}"
        if report.account_credits is not None
        else "unknown: the API did not answer (see the errors below)"
    )
    embed.add_field(name="API account", value=credits, inline=False)
    embed.add_field(name="Jobs in every server", value=_job_counts(report.jobs_by_state), inline=False)
    if server is not None:
        embed.add_field(name="Jobs in this server", value=_job_counts(server.jobs_by_state), inline=False)
    errors = "\n".join(
        f"{timestamp(note.at, 'R')} `{note.endpoint}` {note.code if note.code is not None else 'network'}: "
        f"{note.message[:120]}"
        for note in report.recent_errors[:8]
    )
    embed.add_field(name="Recent API errors", value=errors[:1024] or "none", inline=False)
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
    embed.add_field(name="Callbacks", value=text[:1024], inline=False)
    embed.set_footer(text=f"{_JOB_STATES_HELP}\nStemBot {report.version}")
    return embed
