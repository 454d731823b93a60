"""What every feature's messages share: Discord's size limits, the colours, the `Message` type,
timestamps, amounts, packing embeds into messages, and the answers any command can give."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import discord

from bot.models import Job, Period, ServerBudget
from bot.product import LINK_LIFETIME, Mode

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


def timestamp(epoch: float, style: str) -> str:
    return discord.utils.format_dt(datetime.fromtimestamp(epoch, UTC), style)  # type: ignore[arg-type]


def mention_prefix(job: Job, mention: bool) -> str | None:
    return f"<@{job.user_id}>" if mention else None


def bad_input(problem: str) -> discord.Embed:
    return discord.Embed(
        title="That doesn't look like a track id",
        description=f"{problem}\n\nNothing was charged. Both ids come from the track's details in the "
        "music app: `task_id` is the generation's task id, `audio_id` the id of the one track.",
        colour=FAILURE_COLOUR,
    )


NOT_FINISHED = "This command didn't finish; the details were sent privately."


def price_list() -> str:
    return "\n".join(f"{mode.label}: **{mode.cost}** credits" for mode in Mode)


def api_price_list() -> str:
    """What each mode costs a server's monthly budget (the API's price): "10 for 2 stems, …"."""
    return ", ".join(f"{mode.api_price} for {mode.label[0].lower()}{mode.label[1:]}" for mode in Mode)


def budget_month_name(month: str) -> str:
    """ "2025-03" as "March 2025"."""
    year, number = month.split("-")
    return f"{datetime(int(year), int(number), 1, tzinfo=UTC):%B} {year}"


def budget_figures(budget: ServerBudget) -> str:
    """ "40 of 100 API credits (40%)", or "40 API credits (no cap)"."""
    if budget.budget is None:
        return f"{budget.spent} API credits (no cap)"
    share = f" ({budget.spent * 100 // budget.budget}%)" if budget.budget else ""
    return f"{budget.spent} of {budget.budget} API credits{share}"


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


def credit_amount(amount: int) -> str:
    return f"{amount} credit{'' if amount == 1 else 's'}"


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
            embeds.append(discord.Embed(title=title, description="\n".join(chunk), colour=INFO_COLOUR))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    embeds.append(discord.Embed(title=title, description="\n".join(chunk), colour=INFO_COLOUR))
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
        "If you started a split, its credits are returned automatically if it cannot finish."
    )
