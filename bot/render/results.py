"""What a member reads about their split: queued, processing, the stems, or why it failed."""

from __future__ import annotations

import discord

from bot.models import DeliveredMessage, DeliveryVia, Failure, Job, JobState, Share
from bot.product import LINK_LIFETIME, stem_name
from bot.render.common import (
    BUTTONS_PER_MESSAGE,
    EMBED_DESCRIPTION_LIMIT,
    EMBEDS_PER_MESSAGE,
    FAILURE_COLOUR,
    LIFETIME_DAYS,
    LINK_BUTTON_URL_LIMIT,
    MESSAGE_EMBED_TOTAL_LIMIT,
    SUCCESS_COLOUR,
    WORKING_COLOUR,
    Message,
    mention_prefix,
    price_list,
    timestamp,
)


def refused(reason: str, balance: int) -> discord.Embed:
    embed = discord.Embed(title="Can't start this split", description=reason, colour=FAILURE_COLOUR)
    embed.add_field(name="Your balance", value=f"{balance} credits")
    embed.add_field(name="Prices", value=price_list(), inline=False)
    embed.set_footer(text="Nothing was charged.")
    return embed


NOT_STARTED = "This split didn't start; the details were sent privately."


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
        title=f"Splitting: {job.mode.label}",
        description=_QUEUED_TEXT[job.share],
        colour=WORKING_COLOUR,
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
        title=f"Splitting: {job.mode.label}",
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
    title = f"Your stems are ready: {job.mode.label}"
    warning = (
        f"⚠️ **Download within {LIFETIME_DAYS} days.** The links expire {timestamp(expires, 'R')} "
        f"({timestamp(expires, 'f')}) and cannot be renewed."
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
    messages[0].content = mention_prefix(job, mention)
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
    return Message(content=mention_prefix(job, mention), embeds=[embed])


def jump_url(guild_id: int | None, message: DeliveredMessage) -> str | None:
    """A link that opens the message in Discord (None when its channel is unknown)."""
    if message.channel_id is None:
        return None
    return f"https://discord.com/channels/{guild_id or '@me'}/{message.channel_id}/{message.message_id}"


def reminder(job: Job, result: list[DeliveredMessage], *, mention: bool = False) -> list[Message]:
    """The expiry reminder: the result again (every stem, each named), led by when its links
    expire and a link to where it was first shown."""
    assert job.links_expire_at is not None
    messages = stems_ready(job, mention=mention)
    where = None
    if result:
        where = jump_url(None if result[0].via is DeliveryVia.DM else job.guild_id, result[0])
    note = (
        f"⏰ Reminder: the links of Job #{job.id} expire {timestamp(job.links_expire_at, 'R')} "
        f"({timestamp(job.links_expire_at, 'f')}). Download what you need now: they cannot be renewed."
    )
    if where:
        note += f" [Your result]({where})"
    first = messages[0]
    first.content = f"{first.content} {note}" if first.content else note
    return messages
