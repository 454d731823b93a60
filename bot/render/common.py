"""What every feature's messages share: Discord's size limits, the colours, the `Message` type,
timestamps, amounts, packing embeds into messages, and the answers any command can give."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import discord

from bot.models import DeploymentBudget, Job, Period, ServerBudget
from bot.product import Mode
from bot.render.text import plain

# Discord's limits (see shared/discord-notes.md).
EMBEDS_PER_MESSAGE = 10


EMBED_TITLE_LIMIT = 256


EMBED_DESCRIPTION_LIMIT = 4096


MESSAGE_EMBED_TOTAL_LIMIT = 6000


LINK_BUTTON_URL_LIMIT = 512


BUTTONS_PER_MESSAGE = 25


# One colour per kind of message, so a colour means the same thing everywhere.
WORKING = discord.Colour.gold()
"""A split queued or running."""

DONE = discord.Colour.green()
"""A split's stems are ready."""

FAILED = discord.Colour.red()
"""It didn't work, or can't be done as asked: a failed split, bad input, a refusal waiting won't end."""

REFUSED_WAIT = discord.Colour.orange()
"""Not now, later: a refusal that passes (credits refill, a cooldown, splits running, paused)."""

MODERATOR = discord.Colour.purple()
"""A moderator's action took effect (grants, take-aways, blocks, allowance and settings changes)."""

INFO = discord.Colour.blurple()
"""Figures someone asked for: credits, history, settings, status."""


@dataclass(slots=True)
class Message:
    """One Discord message's worth of content."""

    content: str | None = None
    embeds: list[discord.Embed] = field(default_factory=list)
    view: discord.ui.View | None = None


def timestamp(epoch: float, style: str) -> str:
    return discord.utils.format_dt(datetime.fromtimestamp(epoch, UTC), style)  # type: ignore[arg-type]


def moment(epoch: float) -> str:
    """A moment as every message shows it: relative first, then the date and time, each in the
    reader's own locale and time zone: "in 3 days (12 March 2025 10:00)"."""
    return f"{timestamp(epoch, 'R')} ({timestamp(epoch, 'f')})"


def not_before(epoch: float) -> str:
    """`moment`, rounded up to the second: for when someone may try again, never too early."""
    return moment(math.ceil(epoch))


# -- numbers ----------------------------------------------------------------------------------


def number(amount: int) -> str:
    """An integer with thousands separators: 1,590."""
    return f"{amount:,}"


def credit_amount(amount: int) -> str:
    """ "1 credit", "1,590 credits"."""
    return f"{number(amount)} credit{'' if abs(amount) == 1 else 's'}"


def signed(amount: int) -> str:
    """A change: "+1,500", "-10", "±0"."""
    return f"+{number(amount)}" if amount > 0 else (f"-{number(-amount)}" if amount < 0 else "±0")


def credit_change(amount: int) -> str:
    """ "+1 credit", "-1,500 credits"."""
    return f"{signed(amount)} credit{'' if abs(amount) == 1 else 's'}"


def mention_prefix(job: Job, mention: bool) -> str | None:
    return f"<@{job.user_id}>" if mention else None


IDS_HELP = (
    "`task_id` is the music-generation task's id and `audio_id` the id of one track of it, both as "
    "the music-generation API returned them to the app or bot that generated the track."
)


def bad_input(problem: str) -> discord.Embed:
    return discord.Embed(
        title="That doesn't look like a track id",
        description=f"{problem}\n\n{IDS_HELP} Copy them again, then run `/split` again. Nothing was charged.",
        colour=FAILED,
    )


def not_installed_here(invite: str) -> str:
    """The private answer to anything done in a server that has not added the bot (it was
    installed by a member for themselves): nothing started, nothing charged, and how to fix it."""
    return (
        "StemBot works only in servers that added it, and this server hasn't: its credits, budgets "
        "and moderators belong to a server. Nothing was started or charged. A server manager can "
        f"add StemBot here with [this invite]({invite})."
    )


NOT_FINISHED = "This command didn't finish; the details were sent privately."


_OPTION_KINDS = {
    discord.AppCommandOptionType.user: "member",
    discord.AppCommandOptionType.role: "role",
    discord.AppCommandOptionType.channel: "channel",
    discord.AppCommandOptionType.mentionable: "member or role",
}


def refusal(reason: str) -> discord.Embed:
    """A command that could not do what was asked; `reason` says why (a `StemBotError`'s words)."""
    return discord.Embed(title="Can't do that", description=reason, colour=FAILED)


def unresolved_option(option_type: discord.AppCommandOptionType) -> discord.Embed:
    """An option value Discord could not turn into what the command takes (a member who left, a
    deleted role or channel, a channel of the wrong kind)."""
    kind = _OPTION_KINDS.get(option_type, "value")
    return discord.Embed(
        title=f"That {kind} didn't work",
        description=f"Discord couldn't use the {kind} you gave (it may have left or been deleted, or it "
        f"is not the kind this option takes). Pick the {kind} again from the list Discord shows as you "
        "type, then try again. Nothing was changed.",
        colour=FAILED,
    )


def command_cooldown(command: str, retry_at: float) -> str:
    return f"You're using `/{command}` too often. You can use it again {timestamp(retry_at, 'R')}."


def price_list() -> str:
    return "\n".join(f"{mode.label}: {credit_amount(mode.cost)}" for mode in Mode)


def mode_label(mode: Mode) -> str:
    """The label a member sees in the `/split mode` picker (at most 100 chars)."""
    return f"{mode.label} — {credit_amount(mode.cost)}"


def api_price_list() -> str:
    """What each mode costs a server's monthly budget (the API's price): "10 for 2 stems, …"."""
    return ", ".join(f"{mode.api_price} for {mode.label[0].lower()}{mode.label[1:]}" for mode in Mode)


def budget_month_name(month: str) -> str:
    """ "2025-03" as "March 2025"."""
    year, number = month.split("-")
    return f"{datetime(int(year), int(number), 1, tzinfo=UTC):%B} {year}"


def budget_figures(budget: ServerBudget | DeploymentBudget) -> str:
    """ "40 of 100 API credits (40%)", or "40 API credits (no cap)"."""
    if budget.budget is None:
        return f"{number(budget.spent)} API credits (no cap)"
    share = f" ({budget.spent * 100 // budget.budget}%)" if budget.budget else ""
    return f"{number(budget.spent)} of {number(budget.budget)} API credits{share}"


PER_PERIOD: dict[Period, str] = {
    Period.NEVER: "once (a one-off allowance)",
    Period.DAILY: "per day",
    Period.WEEKLY: "per week",
    Period.MONTHLY: "per month",
}


REFILLS: dict[Period, str] = {
    Period.NEVER: "never",
    Period.DAILY: "every day",
    Period.WEEKLY: "every Monday",
    Period.MONTHLY: "on the 1st of each month",
}


def duration(seconds: int) -> str:
    """ "90 seconds", "5 minutes", "1 hour 30 minutes"; "none" for 0."""
    if seconds <= 0:
        return "none"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "hour"), (minutes, "minute"), (secs, "second")]
    return " ".join(f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in parts if n)


def listing(title: str, lines: list[str], footer: str) -> list[discord.Embed]:
    """`lines` in as many embeds as needed, each small enough to share a message with another."""
    embeds: list[discord.Embed] = []
    chunk: list[str] = []
    size = 0
    for line in lines:
        if chunk and size + len(line) + 1 > _LISTING_CHUNK:
            embeds.append(discord.Embed(title=title, description="\n".join(chunk), colour=INFO))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    embeds.append(discord.Embed(title=title, description="\n".join(chunk), colour=INFO))
    embeds[-1].set_footer(text=footer)
    return embeds


_LISTING_CHUNK = 2500


_MESSAGE_BUDGET = MESSAGE_EMBED_TOTAL_LIMIT - 400  # room for a note the cog may add


def pack(embeds: list[discord.Embed]) -> list[Message]:
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


def unexpected_error() -> str:
    return (
        "Something went wrong on the bot's side while handling that command. It has been logged. "
        "If you started a split, its credits are returned automatically if it cannot finish. "
        "Please try again in a few minutes."
    )


MESSAGE_CONTENT_LIMIT = 2000


def as_plain_text(messages: list[Message]) -> list[Message]:
    """The same messages without embeds, for a channel where the bot may not use them (no Embed
    Links: Discord would drop the embeds and leave a bare mention). Each embed's title, text,
    fields and footer become lines, in messages of at most 2,000 characters; links keep their
    names. Buttons stay with the first message. Titles and footers are shown as written in an
    embed; as message text they would be Markdown, so they pass through `plain` (descriptions and
    fields are Markdown already, their untrusted pieces escaped where they were built)."""
    texts: list[Message] = []
    for message in messages:
        lines = [message.content] if message.content else []
        for embed in message.embeds:
            if embed.title:
                lines.append(f"**{plain(embed.title)}**")
            if embed.description:
                lines.extend(embed.description.splitlines())
            for item in embed.fields:
                lines.append(f"**{item.name}**")
                lines.extend(str(item.value).splitlines())
            if embed.footer.text:
                lines.extend(f"-# {plain(line)}" for line in embed.footer.text.splitlines() if line.strip())
        for index, chunk in enumerate(_chunks(lines, MESSAGE_CONTENT_LIMIT)):
            texts.append(Message(content=chunk, view=message.view if index == 0 else None))
    return texts


def _chunks(lines: list[str], limit: int) -> list[str]:
    chunks: list[str] = []
    current = ""
    for line in lines:
        while len(line) > limit:  # a single line longer than a message: cut it
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            chunks.append(current)
            candidate = line
        current = candidate
    if current:
        chunks.append(current)
    return chunks or [""]


# Buttons that keep working after a restart: the job is in the custom id, and the Discord side
# registers a handler for each pattern (`discord.ui.DynamicItem`).
UPGRADE_BUTTON_LABEL = "Split into 12 stems"
UPGRADE_BUTTON_ID = "stembot:upgrade:{job}"
UPGRADE_BUTTON_PATTERN = r"stembot:upgrade:(?P<job>[0-9]{1,19})"
CANCEL_BUTTON_LABEL = "Cancel"
CANCEL_BUTTON_ID = "stembot:cancel:{job}"
CANCEL_BUTTON_PATTERN = r"stembot:cancel:(?P<job>[0-9]{1,19})"
KEEP_BUTTON_LABEL = "Keep in Discord"
KEEP_BUTTON_ID = "stembot:keep:{job}"
KEEP_BUTTON_PATTERN = r"stembot:keep:(?P<job>[0-9]{1,19})"
KEPT_BUTTON_LABEL = "Kept in Discord"
MIX_BUTTON_LABEL = "Mix stems"
MIX_BUTTON_ID = "stembot:mix:{job}"
MIX_BUTTON_PATTERN = r"stembot:mix:(?P<job>[0-9]{1,19})"
MIX_PICKER_ID = "stembot:mixpick:{job}"
MIX_PICKER_PATTERN = r"stembot:mixpick:(?P<job>[0-9]{1,19})"


SANDBOX_TITLE = "Sandbox · "


def mark_sandbox(embed: discord.Embed, sandbox: bool) -> discord.Embed:
    """In sandbox mode every answer says so plainly (its title starts with "Sandbox"); once only."""
    if sandbox and not (embed.title or "").startswith(SANDBOX_TITLE):
        embed.title = f"{SANDBOX_TITLE}{embed.title or 'StemBot'}"
    return embed
