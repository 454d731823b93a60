"""Everything a member reads, as Discord embeds, kept within Discord's size limits.

It turns jobs, balances and errors into messages; the Discord side (cogs, the client, delivery,
alerts) sends them. Wording lives here; figures come from `bot.product` and the job itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import discord

from bot.models import (
    SERVER_WIDE,
    AllowanceUpdate,
    Balance,
    CreditSummary,
    EconomySettings,
    Failure,
    HistoryPage,
    Job,
    JobState,
    LedgerEntry,
    LedgerKind,
    Period,
    ReuseCharge,
    Share,
)
from bot.operations import PauseReason, ServerStatus, StatusReport
from bot.product import LINK_LIFETIME, Mode, stem_name
from bot.quota import BlockChange, Correction, SettingsUpdate

# Discord's limits (see shared/discord-notes.md).
EMBEDS_PER_MESSAGE = 10
EMBED_DESCRIPTION_LIMIT = 4096
MESSAGE_EMBED_TOTAL_LIMIT = 6000
LINK_BUTTON_URL_LIMIT = 512
BUTTONS_PER_MESSAGE = 25

SUCCESS_COLOUR = discord.Colour.green()
FAILURE_COLOUR = discord.Colour.red()
INFO_COLOUR = discord.Colour.blurple()
WORKING_COLOUR = discord.Colour.gold()

LIFETIME_DAYS = LINK_LIFETIME.days


@dataclass(slots=True)
class Message:
    """One Discord message's worth of content."""

    content: str | None = None
    embeds: list[discord.Embed] = field(default_factory=list)
    view: discord.ui.View | None = None


def _timestamp(epoch: float, style: str) -> str:
    return discord.utils.format_dt(datetime.fromtimestamp(epoch, UTC), style)  # type: ignore[arg-type]


def _mention_prefix(job: Job, mention: bool) -> str | None:
    return f"<@{job.user_id}>" if mention else None


# -- /split ---------------------------------------------------------------------------------


def bad_input(problem: str) -> discord.Embed:
    return discord.Embed(
        title="That doesn't look like a track id",
        description=f"{problem}\n\nNothing was charged. Both ids come from the track's details in the "
        "music app: `task_id` is the generation's task id, `audio_id` the id of the one track.",
        colour=FAILURE_COLOUR,
    )


def refused(reason: str, balance: int) -> discord.Embed:
    embed = discord.Embed(title="Can't start this split", description=reason, colour=FAILURE_COLOUR)
    embed.add_field(name="Your balance", value=f"{balance} credits")
    embed.add_field(name="Prices", value=price_list(), inline=False)
    embed.set_footer(text="Nothing was charged.")
    return embed


NOT_STARTED = "This split didn't start; the details were sent privately."
NOT_FINISHED = "This command didn't finish; the details were sent privately."


def unavailable(reason: str) -> discord.Embed:
    return discord.Embed(
        title="Splitting is unavailable right now", description=reason, colour=FAILURE_COLOUR
    )


_QUEUED_TEXT = {
    None: "Queued. This message will show your download links when the stems are ready "
    "(usually one to three minutes).",
    Share.COALESCED: "Someone is already splitting this exact track in this mode, so you'll share "
    "their result instead of paying for the same stems twice. Your links will appear here.",
    Share.REUSED: "This track was already split in this mode recently, so the stored links are "
    "used instead of paying for the same stems twice. They'll appear here in a moment.",
}


def queued(job: Job, balance: int) -> discord.Embed:
    embed = discord.Embed(
        title=f"Splitting: {job.mode.title}", description=_QUEUED_TEXT[job.share], colour=WORKING_COLOUR
    )
    _describe_job(embed, job)
    held = f"{job.cost} credits reserved" if job.cost else "free"
    embed.set_footer(text=f"Job #{job.id} · {held} · {balance} credits left")
    return embed


def charge_text(job: Job) -> str:
    """What the member paid for a successful job, and why, for shared results."""
    if job.share is None:
        return f"{job.cost} credits charged"
    if job.cost == 0:
        return "free: a shared result of the same split"
    return f"{job.cost} credits charged (this server charges for shared results)"


def processing(job: Job) -> discord.Embed:
    embed = discord.Embed(
        title=f"Splitting: {job.mode.title}",
        description="The separation service is working on your track. This message will show your "
        "download links when the stems are ready.",
        colour=WORKING_COLOUR,
    )
    _describe_job(embed, job)
    embed.set_footer(
        text=f"Job #{job.id} · {job.cost} credits reserved" if job.cost else f"Job #{job.id} · free"
    )
    return embed


def _describe_job(embed: discord.Embed, job: Job) -> None:
    embed.add_field(name="Task id", value=f"`{job.source_task_id}`")
    embed.add_field(name="Audio id", value=f"`{job.audio_id}`")


def outcome(job: Job, *, mention: bool = False) -> list[Message]:
    """The messages that tell the member how a finished job ended."""
    if job.state is JobState.SUCCEEDED:
        return stems_ready(job, mention=mention)
    return [failed(job, mention=mention)]


def stems_ready(job: Job, *, mention: bool = False) -> list[Message]:
    """The download links, packed into as few embeds and messages as Discord's limits allow."""
    expires = job.links_expire_at or (job.finished_at or 0) + LINK_LIFETIME.total_seconds()
    title = f"Your stems are ready: {job.mode.title}"
    warning = (
        f"⚠️ **Download within {LIFETIME_DAYS} days.** The links expire {_timestamp(expires, 'R')} "
        f"({_timestamp(expires, 'f')}) and cannot be renewed."
    )
    footer = f"Job #{job.id} · {charge_text(job)} · audio id {job.audio_id}"
    # Room for the lines once the title (with a part number), warning and footer are counted.
    description_budget = EMBED_DESCRIPTION_LIMIT - len(warning) - 2
    message_budget = (
        MESSAGE_EMBED_TOTAL_LIMIT - len(title) - len(" (part 10 of 10)") - len(footer) - len(warning) - 2
    )

    groups: list[list[list[str]]] = [[[]]]  # messages -> embeds -> lines
    used = 0  # characters of lines in the current message
    for line in (_stem_line(stem.key, stem.url) for stem in job.stems):
        message = groups[-1]
        cost = len(line) + 1
        fits_message = used + cost <= message_budget
        if fits_message and sum(len(x) + 1 for x in message[-1]) + cost <= description_budget:
            message[-1].append(line)
            used += cost
        elif fits_message and len(message) < EMBEDS_PER_MESSAGE:
            message.append([line])
            used += cost
        else:
            groups.append([[line]])
            used = cost

    messages: list[Message] = []
    for index, group in enumerate(groups, start=1):
        part = f" (part {index} of {len(groups)})" if len(groups) > 1 else ""
        embeds = [discord.Embed(description="\n".join(lines), colour=SUCCESS_COLOUR) for lines in group]
        embeds[0].title = title + part
        embeds[-1].description = f"{embeds[-1].description}\n\n{warning}".lstrip()
        embeds[-1].set_footer(text=footer)
        messages.append(Message(embeds=embeds))
    messages[0].content = _mention_prefix(job, mention)
    messages[-1].view = _link_buttons(job)
    return messages


def _stem_line(key: str, url: str) -> str:
    line = f"**{stem_name(key)}**: [download]({_markdown_url(url)})"
    if len(line) > EMBED_DESCRIPTION_LIMIT - 400:
        # No real stem URL is this long; still, never produce a message Discord would refuse.
        return f"**{stem_name(key)}**: the service returned a link too long for Discord to show."
    return line


def _markdown_url(url: str) -> str:
    return url.replace("(", "%28").replace(")", "%29")


def _link_buttons(job: Job) -> discord.ui.View | None:
    if not job.stems or len(job.stems) > BUTTONS_PER_MESSAGE:
        return None
    if any(len(stem.url) > LINK_BUTTON_URL_LIMIT for stem in job.stems):
        return None  # the text links above carry them
    view = discord.ui.View(timeout=None)
    for stem in job.stems:
        view.add_item(discord.ui.Button(label=stem_name(stem.key), url=stem.url))
    return view


_FAILURE_TEXT: dict[Failure, str] = {
    Failure.INVALID_IDS: "The separation service doesn't recognise this track. Check that `task_id` and "
    "`audio_id` were copied from the same generation, then try again.",
    Failure.INPUT_TOO_LONG: "This track is too long for the separation service.",
    Failure.SEPARATION_FAILED: "The separation service tried but couldn't split this track.",
    Failure.TIMED_OUT: "The separation service took far longer than usual, so the bot stopped waiting.",
    Failure.SERVICE_ACCOUNT: "The separation service isn't accepting jobs from this bot right now (a "
    "problem with the bot's service account, which the bot's operator has to fix). Please try later.",
    Failure.SERVICE_ERROR: "Something kept going wrong between the bot and the separation service, so "
    "the bot gave up on this split. Please try again in a few minutes.",
    Failure.UNCONFIRMED: "The bot couldn't confirm that the separation service started your job: the "
    "connection broke, or an error page came back instead of the service's answer. To be safe it won't "
    "send it twice. Please run /split again.",
}


def failed(job: Job, *, mention: bool = False) -> Message:
    failure = job.failure or Failure.SERVICE_ERROR
    description = _FAILURE_TEXT[failure]
    if failure is Failure.SEPARATION_FAILED and job.failure_detail:
        description += f"\nThe service said: “{job.failure_detail[:300]}”"
    embed = discord.Embed(title="The split didn't work", description=description, colour=FAILURE_COLOUR)
    embed.add_field(
        name="Charge",
        value=f"You were not charged: the {job.cost} credits are back."
        if job.cost
        else "Nothing was charged.",
    )
    _describe_job(embed, job)
    embed.set_footer(text=f"Job #{job.id}")
    return Message(content=_mention_prefix(job, mention), embeds=[embed])


# -- /credits and /quota view ------------------------------------------------------------------


def price_list() -> str:
    return "\n".join(f"{mode.title}: **{mode.cost}** credits" for mode in Mode)


_PER_PERIOD: dict[Period, str] = {
    Period.NEVER: "once (a one-off allowance)",
    Period.DAILY: "per day",
    Period.WEEKLY: "per week",
    Period.MONTHLY: "per month",
}
_REFILLS: dict[Period, str] = {
    Period.NEVER: "never",
    Period.DAILY: "every day",
    Period.WEEKLY: "every Monday",
    Period.MONTHLY: "on the 1st of each month",
}


def _credits(amount: int) -> str:
    return f"{amount} credit{'' if amount == 1 else 's'}"


def credits(summary: CreditSummary, *, member_id: int | None = None) -> discord.Embed:
    """A member's credits: the same figures for `/credits` (yourself) and `/quota view` (anyone)."""
    own = member_id is None
    lines = [f"**{summary.balance}** credits" + ("" if own else f" · <@{member_id}>")]
    if summary.blocked:
        blocked = "🚫 **Blocked from starting splits** by a moderator"
        if summary.blocked_reason:
            blocked += f": {summary.blocked_reason}"
        lines.append(blocked)
    if summary.next_split_at is not None:
        lines.append(f"Next split possible {_timestamp(summary.next_split_at, 'R')} (cooldown).")
    embed = discord.Embed(
        title="Your credits in this server" if own else "Credits in this server",
        description="\n".join(lines),
        colour=FAILURE_COLOUR if summary.blocked else INFO_COLOUR,
    )
    embed.add_field(
        name="Allowance",
        value=f"{_credits(summary.allowance)} {_PER_PERIOD[summary.period]}\n"
        f"{summary.allowance_left} left" + (" this period" if summary.period is not Period.NEVER else ""),
    )
    embed.add_field(name="Bonus", value=f"{_credits(summary.bonus)}\nkept until spent")
    embed.add_field(
        name="Spent this period" if summary.period is not Period.NEVER else "Spent so far",
        value=_credits(summary.spent_this_period),
    )
    if summary.next_refill_at is not None:
        refill = f"{_timestamp(summary.next_refill_at, 'R')} ({_timestamp(summary.next_refill_at, 'f')})"
        refill += f"\nback to {_credits(summary.next_allowance)}"
        if summary.next_allowance != summary.allowance:
            refill += " (new allowance)"
    else:
        refill = "Never: this server's allowance is one-off."
    embed.add_field(name="Next refill", value=refill, inline=False)
    embed.add_field(
        name="Splits running",
        value=f"{summary.jobs_in_flight} of {summary.jobs_per_member} at once",
        inline=False,
    )
    embed.add_field(name="Prices", value=price_list(), inline=False)
    embed.set_footer(
        text="Splits use the allowance first, then bonus. Credits are held when a split starts and "
        "returned if it fails."
    )
    return embed


# -- /quota: moderators' actions ------------------------------------------------------------------


def quota_refused(reason: str) -> discord.Embed:
    return discord.Embed(title="Can't do that", description=reason, colour=FAILURE_COLOUR)


def _parts(balance: Balance) -> str:
    return f"{balance.allowance_left} allowance + {balance.bonus} bonus"


def _change(amount: int) -> str:
    return f"+{amount}" if amount > 0 else (f"-{-amount}" if amount < 0 else "±0")


_CORRECTION_TITLES: dict[LedgerKind, str] = {
    LedgerKind.GRANT: "Credits granted",
    LedgerKind.SET: "Balance set",
    LedgerKind.RESET: "Balance reset to the allowance",
}


def correction(kind: LedgerKind, done: Correction) -> discord.Embed:
    """The moderator's reply after a grant, set or reset."""
    before, after = done.adjustment.before, done.adjustment.after
    assert after is not None
    if kind is LedgerKind.GRANT and (done.amount or 0) < 0:
        title = "Credits taken away"
    else:
        title = _CORRECTION_TITLES[kind]
    lines = [
        f"<@{done.member_id}>: **{before.total}** → **{after.total}** credits "
        f"({_change(after.total - before.total)})",
        f"Now {_parts(after)}.",
    ]
    if kind is LedgerKind.GRANT and (done.amount or 0) > 0:
        lines.append("Bonus credits are kept across refills until spent.")
    if done.reason:
        lines.append(f"Reason: {done.reason}")
    running = done.adjustment.jobs_in_flight
    if running:
        lines.append(
            f"{running} of their splits {'is' if running == 1 else 'are'} still running: "
            "credits held for a split come back if it fails."
        )
    embed = discord.Embed(title=title, description="\n".join(lines), colour=SUCCESS_COLOUR)
    embed.set_footer(text="Recorded in their /quota history.")
    return embed


def audit_correction(kind: LedgerKind, actor_id: int, done: Correction) -> str:
    before, after = done.adjustment.before, done.adjustment.after
    assert after is not None
    verb = {
        LedgerKind.GRANT: "granted" if (done.amount or 0) > 0 else "took",
        LedgerKind.SET: "set the balance of",
        LedgerKind.RESET: "reset the balance of",
    }[kind]
    if kind is LedgerKind.GRANT:
        what = f"<@{done.member_id}> {_change(done.amount or 0)} credits"
        if (done.amount or 0) < 0:
            what = f"{-(done.amount or 0)} credits from <@{done.member_id}>"
    else:
        what = f"<@{done.member_id}>"
    return _audit(f"<@{actor_id}> {verb} {what}: {before.total} → {after.total}", done.reason)


def _audit(text: str, reason: str | None = None) -> str:
    return f"🧾 {text}" + (f" · Reason: {reason}" if reason else "")


def block_change(change: BlockChange) -> discord.Embed:
    who = f"<@{change.member_id}>"
    if change.blocked:
        text = (
            f"{who} can no longer start splits here; they are told so if they try."
            if change.changed
            else f"{who} was already blocked."
        )
        if change.changed and change.reason:
            text += f"\nReason: {change.reason}"
    else:
        text = f"{who} can start splits again." if change.changed else f"{who} wasn't blocked."
    colour = SUCCESS_COLOUR if change.changed else INFO_COLOUR
    return discord.Embed(title="Blocked" if change.blocked else "Unblocked", description=text, colour=colour)


def audit_block(actor_id: int, change: BlockChange) -> str:
    verb = "blocked" if change.blocked else "unblocked"
    return _audit(f"<@{actor_id}> {verb} <@{change.member_id}> from starting splits", change.reason)


def _refill_moment(epoch: float) -> str:
    return f"{_timestamp(epoch, 'F')} ({_timestamp(epoch, 'R')})"


def allowance_update(update: AllowanceUpdate) -> discord.Embed:
    """The moderator's reply to `/quota allowance`: what changed, and when it takes effect."""
    per = _PER_PERIOD[update.period]
    if update.role_id == SERVER_WIDE:
        title = "Server allowance changed"
        lines = [
            f"Every member: **{_credits(update.amount)}** {per} "
            f"(was {update.previous_amount} {_PER_PERIOD[update.previous_period]})."
        ]
    else:
        title = "Role allowance changed"
        if update.amount == 0:
            lines = [
                f"<@&{update.role_id}> no longer has an allowance of its own (was {update.previous_amount})."
            ]
        else:
            lines = [
                f"Members with <@&{update.role_id}>: **{_credits(update.amount)}** {per} "
                f"(was {update.previous_amount}), or the server's allowance if that is higher."
            ]
    if update.applied_now:
        lines.append(
            "**Applied now:** everyone it concerns has their allowance refilled to the new amount; "
            "bonus credits are kept."
        )
    elif update.next_refill_at is not None:
        lines.append(
            f"**Takes effect at the next refill**, {_refill_moment(update.next_refill_at)}. "
            "Until then members keep what they have."
        )
    else:
        lines.append(
            "**New members start with it.** The allowance is one-off, so existing members keep their "
            "credits; run this again with `apply_now: True` to refill everyone now."
        )
    if update.applied_now and update.next_refill_at is not None:
        lines.append(f"Next refill: {_refill_moment(update.next_refill_at)}.")
    return discord.Embed(title=title, description="\n".join(lines), colour=SUCCESS_COLOUR)


def audit_allowance(actor_id: int, update: AllowanceUpdate) -> str:
    whom = (
        "the server allowance" if update.role_id == SERVER_WIDE else f"the allowance of <@&{update.role_id}>"
    )
    when = "applied now" if update.applied_now else "from the next refill"
    return _audit(
        f"<@{actor_id}> set {whom} to {update.amount} {_PER_PERIOD[update.period]} "
        f"(was {update.previous_amount} {_PER_PERIOD[update.previous_period]}), {when}"
    )


# -- /quota settings ------------------------------------------------------------------------------


def duration(seconds: int) -> str:
    """ "90 seconds", "5 minutes", "1 hour 30 minutes"; "none" for 0."""
    if seconds <= 0:
        return "none"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "hour"), (minutes, "minute"), (secs, "second")]
    return " ".join(f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in parts if n)


def _setting_values(s: EconomySettings) -> dict[str, str]:
    return {
        "refill time": f"{s.refill_time} {s.timezone}",
        "splits at once per member": str(s.jobs_per_member) if s.jobs_per_member else "the bot's default",
        "cooldown between splits": duration(s.cooldown_seconds),
        "moderator role": f"<@&{s.moderator_role_id}>" if s.moderator_role_id else "none",
        "audit channel": f"<#{s.audit_channel_id}>" if s.audit_channel_id else "none",
        "shared results": _REUSE_CHARGE_TEXT[s.reuse_charge],
    }


_REUSE_CHARGE_TEXT = {
    ReuseCharge.FREE: "free",
    ReuseCharge.FULL: "full price",
}


def settings_overview(update: SettingsUpdate) -> list[Message]:
    """The server's economy: allowances, refills, limits, who moderates, where actions are logged.
    Many role tiers spill over into further embeds and messages rather than being cut off."""
    overview = update.after
    s = overview.settings
    embed = discord.Embed(title="Credit settings for this server", colour=INFO_COLOUR)
    if update.changed:
        embed.description = "**Changed:** " + _settings_diff(update.before, s)
    embed.add_field(
        name="Allowance", value=f"{_credits(overview.server_allowance)} {_PER_PERIOD[s.period]}", inline=False
    )
    refills = f"{_REFILLS[s.period]}"
    if s.period is not Period.NEVER:
        refills += f" at {s.refill_time} ({s.timezone})"
        if overview.next_refill_at is not None:
            refills += f"\nnext {_refill_moment(overview.next_refill_at)}"
    else:
        refills += f" (refill time {s.refill_time}, {s.timezone}, once a period is set)"
    embed.add_field(name="Refills", value=refills, inline=False)
    embed.add_field(
        name="Splits at once",
        value=f"{overview.jobs_per_member} per member" + ("" if s.jobs_per_member else " (bot default)"),
    )
    embed.add_field(name="Cooldown", value=duration(s.cooldown_seconds))
    embed.add_field(
        name="Moderators",
        value="Manage Server" + (f", or <@&{s.moderator_role_id}>" if s.moderator_role_id else ""),
    )
    embed.add_field(name="Audit channel", value=f"<#{s.audit_channel_id}>" if s.audit_channel_id else "none")
    embed.add_field(
        name="Shared results",
        value=f"{_REUSE_CHARGE_TEXT[s.reuse_charge]}: what a member pays when the same track and mode "
        "was already split (or is being split) here, so no new paid job is needed",
        inline=False,
    )
    embeds = [embed]
    lines = [f"<@&{role_id}>: {_credits(amount)}" for role_id, amount in overview.role_allowances]
    if lines:
        embeds += _listing(
            "Role allowances", lines, "A member gets the highest of the server's allowance and their roles'."
        )
    return _pack(embeds)


def _settings_diff(before: EconomySettings, after: EconomySettings) -> str:
    old, new = _setting_values(before), _setting_values(after)
    changes = [f"{name} {old[name]} → {new[name]}" for name in new if old[name] != new[name]]
    return "; ".join(changes) or "nothing"


def audit_settings(actor_id: int, update: SettingsUpdate) -> str:
    return _audit(
        f"<@{actor_id}> changed the credit settings: {_settings_diff(update.before, update.after.settings)}"
    )


def _listing(title: str, lines: list[str], footer: str) -> list[discord.Embed]:
    """`lines` in as many embeds as needed, each small enough to share a message with another."""
    embeds: list[discord.Embed] = []
    chunk: list[str] = []
    size = 0
    for line in lines:
        if chunk and size + len(line) + 1 > _LISTING_CHUNK:
            embeds.append(discord.Embed(title=title, description="\n".join(chunk), colour=INFO_COLOUR))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    embeds.append(discord.Embed(title=title, description="\n".join(chunk), colour=INFO_COLOUR))
    embeds[-1].set_footer(text=footer)
    return embeds


_LISTING_CHUNK = 2500
_MESSAGE_BUDGET = MESSAGE_EMBED_TOTAL_LIMIT - 400  # room for a note the cog may add


def _pack(embeds: list[discord.Embed]) -> list[Message]:
    """Embeds into as few messages as Discord's per-message limits (count, total size) allow."""
    messages: list[Message] = [Message()]
    for embed in embeds:
        current = messages[-1].embeds
        if current and (
            len(current) >= EMBEDS_PER_MESSAGE or sum(map(len, current)) + len(embed) > _MESSAGE_BUDGET
        ):
            messages.append(Message())
        messages[-1].embeds.append(embed)
    return messages


# -- /quota history -------------------------------------------------------------------------------


def _history_what(entry: LedgerEntry) -> str:
    kind = entry.kind
    if kind is LedgerKind.RESERVE:
        return f"split #{entry.job_id}"
    if kind is LedgerKind.REFUND:
        return f"refund, split #{entry.job_id}"
    if kind is LedgerKind.CHARGE:
        return f"split #{entry.job_id} done"
    what = {
        LedgerKind.ALLOWANCE: "starting credits",
        LedgerKind.REFILL: "allowance refilled",
        LedgerKind.GRANT: "bonus granted" if entry.amount >= 0 else "credits taken away",
        LedgerKind.SET: "balance set",
        LedgerKind.RESET: "reset to allowance",
        LedgerKind.BLOCK: "blocked from splitting",
        LedgerKind.UNBLOCK: "unblocked",
    }[kind]
    return f"{what}: {entry.reason}" if entry.reason and kind is not LedgerKind.ALLOWANCE else what


def history_line(entry: LedgerEntry) -> str:
    who = f"<@{entry.actor_id}>" if entry.actor_id is not None else "StemBot"
    return (
        f"{_timestamp(entry.created_at, 'f')} · **{_change(entry.amount)}** → {entry.balance_after} · "
        f"{_history_what(entry)} · {who}"
    )


def history(page: HistoryPage, member_id: int) -> discord.Embed:
    """One page of a member's credit history, newest first."""
    if page.entries:
        body = "\n".join(history_line(entry) for entry in page.entries)
    else:
        body = "No credit changes yet."
    embed = discord.Embed(
        title="Credit history",
        description=f"<@{member_id}> · newest first\n\n{body}",
        colour=INFO_COLOUR,
    )
    embed.set_footer(
        text=f"Page {page.page + 1} of {page.pages} · {page.total} change{'' if page.total == 1 else 's'} · "
        "time · change → balance after · what · who"
    )
    return embed


def unexpected_error() -> str:
    return (
        "Something went wrong on the bot's side while handling that command. It has been logged. "
        "If you started a split, its credits are returned automatically if it cannot finish."
    )


# -- operators ------------------------------------------------------------------------------

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
            f"⏸️ **Splitting is paused** since {_timestamp(paused_since or 0, 'R')}: {_PAUSE_TEXT[paused]}."
            if paused is not None
            else "✅ Splitting is running."
        ),
        colour=FAILURE_COLOUR if paused is not None else SUCCESS_COLOUR,
    )


def _job_counts(jobs_by_state: Mapping[JobState, int]) -> str:
    return " · ".join(f"{state.value} {jobs_by_state.get(state, 0)}" for state in JobState)


def server_status(status: ServerStatus) -> discord.Embed:
    """`/stembot status` for a server's managers: their server's jobs and whether splitting is paused."""
    embed = _status_embed(status.paused, status.paused_since)
    embed.add_field(name="Jobs in this server", value=_job_counts(status.jobs_by_state), inline=False)
    embed.set_footer(
        text=f"StemBot {status.version} · The API account, other servers and callbacks are shown to "
        "the bot's owner only."
    )
    return embed


def status(report: StatusReport, server: ServerStatus | None = None) -> discord.Embed:
    """`/stembot status` for the bot's owner: account-wide figures, and `server`'s jobs if given."""
    embed = _status_embed(report.paused, report.paused_since)
    credits = (
        f"**{report.account_credits}** API credits"
        if report.account_credits is not None
        else "unknown: the API did not answer (see the errors below)"
    )
    embed.add_field(name="API account", value=credits, inline=False)
    embed.add_field(name="Jobs in every server", value=_job_counts(report.jobs_by_state), inline=False)
    if server is not None:
        embed.add_field(name="Jobs in this server", value=_job_counts(server.jobs_by_state), inline=False)
    errors = "\n".join(
        f"{_timestamp(note.at, 'R')} `{note.endpoint}` {note.code if note.code is not None else 'network'}: "
        f"{note.message[:120]}"
        for note in report.recent_errors[:8]
    )
    embed.add_field(name="Recent API errors", value=errors[:1024] or "none", inline=False)
    callbacks = report.callbacks
    if callbacks.public_url:
        last = _timestamp(callbacks.last_received_at, "R") if callbacks.last_received_at else "never"
        where = f"listening on {callbacks.listening}" if callbacks.listening else "**not listening**"
        text = (
            f"on: {callbacks.public_url}/callback/… ({where}); {callbacks.received} received, last {last}; "
            f"polling every {report.poll_interval:g}s as a safety net"
        )
    else:
        text = f"off (CALLBACK_PUBLIC_URL unset): polling every {report.poll_interval:g}s"
        if callbacks.web_server_error:
            text += f"\nWeb server **off**, no /healthz or /metrics: {callbacks.web_server_error}"
    embed.add_field(name="Callbacks", value=text[:1024], inline=False)
    embed.set_footer(text=f"StemBot {report.version}")
    return embed
