"""What a member reads about their split: queued, processing, the stems, or why it failed; and,
privately, why a split could not start.

Public messages (queued, processing, the result) show what a split costs, never the member's
balance: that is in `/credits` and in the private refusals.
"""

from __future__ import annotations

import discord

from bot.errors import CooldownActive, InsufficientCredits, MemberBlocked, SplitRefused, TooManyJobsInFlight
from bot.models import (
    DeliveredMessage,
    DeliveryVia,
    Failure,
    Job,
    JobState,
    Keep,
    KeepPlace,
    Share,
)
from bot.product import LINK_LIFETIME, Mode, stem_name
from bot.render.buttons import result_view, stem_buttons_fit
from bot.render.common import (
    DONE,
    EMBED_DESCRIPTION_LIMIT,
    EMBED_TITLE_LIMIT,
    EMBEDS_PER_MESSAGE,
    FAILED,
    MESSAGE_EMBED_TOTAL_LIMIT,
    REFUSED_WAIT,
    WORKING,
    Message,
    credit_amount,
    mention_prefix,
    mode_label,
    moment,
    not_before,
    price_list,
)
from bot.render.songs import add_song, local_links, song_markdown, song_title
from bot.render.text import code, plain

NOT_STARTED = "This split didn't start; the details were sent privately."


INTERRUPTED_TITLE = "This split didn't start"


def interrupted(mode: Mode) -> discord.Embed:
    """The answer to a split whose bot restarted after acknowledging it, before it was recorded
    (see `bot.acks`): nothing happened, nothing was charged, try again."""
    return discord.Embed(
        title=INTERRUPTED_TITLE,
        description=f"StemBot restarted before your split ({mode_label(mode)}) was recorded, so "
        "it never started and **nothing was charged**. Please run `/split` again.",
        colour=FAILED,
    )


def refused(error: SplitRefused) -> discord.Embed:
    """Why `/split` did not start, with what to do next; nothing was charged. Only the figures
    that help with this refusal: balance and prices when credits are short, nothing else."""
    if isinstance(error, InsufficientCredits):
        if error.refills_at is not None:
            then, colour = f"Your allowance refills {moment(error.refills_at)}.", REFUSED_WAIT
        else:
            then, colour = (
                "Your allowance is one-off and doesn't refill: a moderator can grant you bonus credits.",
                FAILED,
            )
        embed = discord.Embed(
            title="Not enough credits",
            description=f"This split costs {credit_amount(error.needed)} and you have "
            f"{credit_amount(error.balance)}.\n{then}",
            colour=colour,
        )
        embed.add_field(name="Prices", value=price_list(), inline=False)
    elif isinstance(error, MemberBlocked):
        embed = discord.Embed(title="You can't start splits here", description=str(error), colour=FAILED)
    elif isinstance(error, CooldownActive):
        embed = discord.Embed(
            title="Please wait a little",
            description="This server asks members to wait between splits. "
            f"You can split again {not_before(error.retry_at)}.",
            colour=REFUSED_WAIT,
        )
    elif isinstance(error, TooManyJobsInFlight):
        embed = discord.Embed(title="Splits already running", description=str(error), colour=REFUSED_WAIT)
    else:
        embed = discord.Embed(title="Can't start this split", description=str(error), colour=FAILED)
    embed.set_footer(text="Nothing was charged.")
    return embed


def unavailable(reason: str) -> discord.Embed:
    return discord.Embed(title="Splitting is unavailable right now", description=reason, colour=REFUSED_WAIT)


_QUEUED_TEXT = {
    None: "Queued. This message will show your stems when they are ready (usually one to three minutes).",
    Share.COALESCED: "Someone is already splitting this exact track in this mode, so you'll share "
    "their result instead of paying for the same stems twice. Your links will appear here.",
    Share.REUSED: "This track was already split in this mode recently, so the stored links are "
    "used instead of paying for the same stems twice. They'll appear here in a moment.",
}


SANDBOX_QUEUED = "Queued. In the sandbox a split takes seconds; this message will show the stems then."
SANDBOX_PREFIX = "Sandbox · "
SANDBOX_NOTE = "Sandbox: a free try-out, the stems are short generated sounds, not your track."
LOCAL_LINKS_NOTE = (
    "These sandbox links work only on the machine running the bot. To hear the stems on a phone, "
    "press **Keep in Discord**: they are posted here as files."
)


def _title(job: Job, title: str) -> str:
    """Every message about a sandbox job says so first (SEPARATION_API_URL=sandbox)."""
    return SANDBOX_PREFIX + title if job.sandbox else title


def _working_title(job: Job) -> str:
    """ "Splitting: Midnight Drive (take 2 · 3:14)", or the mode where the song is not known."""
    room = EMBED_TITLE_LIMIT - len("Splitting: ") - (len(SANDBOX_PREFIX) if job.sandbox else 0)
    return _title(job, f"Splitting: {song_title(job, room) or job.mode.label}")


def queued(job: Job) -> discord.Embed:
    """The public answer to `/split`: what is happening and what it costs; never the balance."""
    text = SANDBOX_QUEUED if job.sandbox and job.share is None else _QUEUED_TEXT[job.share]
    embed = discord.Embed(title=_working_title(job), description=text, colour=WORKING)
    _describe_job(embed, job)
    embed.set_footer(text=_working_footer(job))
    return embed


def _working_footer(job: Job) -> str:
    if not job.cost:
        return f"Job #{job.id} · free"
    return f"Job #{job.id} · {credit_amount(job.cost)} held, returned if the split fails"


def charge_text(job: Job) -> str:
    """What the member paid for a successful job, and why, for shared results."""
    if job.share is None:
        return f"{credit_amount(job.cost)} charged"
    if job.cost == 0:
        return "free: a shared result of the same split"
    return f"{credit_amount(job.cost)} charged (this server charges for shared results)"


def processing(job: Job) -> discord.Embed:
    embed = discord.Embed(
        title=_working_title(job),
        description="The separation service is working on your track. This message will show your "
        "stems when they are ready.",
        colour=WORKING,
    )
    _describe_job(embed, job)
    embed.set_footer(text=_working_footer(job))
    return embed


def _describe_job(embed: discord.Embed, job: Job) -> None:
    """The song (its cover as the thumbnail) and the mode; the ids where no title is known."""
    song = song_markdown(job)
    if song is not None:
        embed.add_field(name="Song", value=song)
        embed.add_field(name="Split", value=job.mode.label)
        add_song(embed, job)
        return
    # Ids are checked at the door; older ones, or any other way in, still show as words only.
    embed.add_field(name="Task id", value=code(job.source_task_id))
    embed.add_field(name="Audio id", value=code(job.audio_id))


LATE_NOTE = (
    "The original message could no longer be updated (Discord allows that for 15 minutes after a "
    "command), so your result comes as this reply."
)


def outcome(
    job: Job,
    *,
    mention: bool = False,
    late: bool = False,
    in_server: bool = True,
    keep_button: bool = False,
    kept_url: str | None = None,
    mix_button: bool = False,
) -> list[Message]:
    """The messages that tell the member how a finished job ended. `late`: they go out as new
    messages in the channel rather than in the `/split` reply, so the first one says why.
    `in_server`: shown in the server (not a DM), so the result's server buttons belong on it.
    `keep_button`: a success offers the Keep in Discord button; `kept_url`: it is kept, there;
    `mix_button`: a full split in a server offers Mix stems."""
    messages = (
        stems_ready(
            job,
            mention=mention,
            in_server=in_server,
            keep_button=keep_button,
            kept_url=kept_url,
            mix_button=mix_button,
        )
        if job.state is JobState.SUCCEEDED
        else [failed(job, mention=mention)]
    )
    if late:
        first = messages[0]
        first.content = f"{first.content} {LATE_NOTE}" if first.content else LATE_NOTE
    return messages


def pointer(job: Job, jump_url: str) -> discord.Embed:
    """What the original `/split` reply becomes once a late result was posted separately."""
    if job.state is JobState.SUCCEEDED:
        name = song_title(job, EMBED_TITLE_LIMIT - 20) or job.mode.short_label
        title, colour, what = f"Done: {name}", DONE, "Your download links are"
    else:
        title, colour, what = "The split didn't work", FAILED, "The details are"
    embed = discord.Embed(
        title=_title(job, title),
        description=f"{what} in [the reply to this message]({jump_url}): the split took longer than "
        "Discord lets the bot update this message.",
        colour=colour,
    )
    embed.set_footer(text=f"Job #{job.id}")
    return embed


RESULT_MARK = "download now, they cannot be renewed"
"""Words every result message leads with (how a benchmark or a test knows a result arrived)."""


def links_expire_line(job: Job) -> str:
    expires = job.links_expire_at or (job.finished_at or 0) + LINK_LIFETIME.total_seconds()
    return f"**Links expire {moment(expires)}: {RESULT_MARK}.**"


def stems_ready(
    job: Job,
    *,
    mention: bool = False,
    in_server: bool = True,
    keep_button: bool = False,
    kept_url: str | None = None,
    mix_button: bool = False,
) -> list[Message]:
    """The stems, led by the song's name and when the links expire (and, once kept, where the files
    are for good). Each stem is shown once: as a link button where Discord allows (a button is
    easier to tap on a phone than a link in text), else as a text link, packed into as few embeds
    and messages as Discord allows."""
    count = len(job.stems)
    what = f"{count} stem{'' if count == 1 else 's'}"
    room = EMBED_TITLE_LIMIT - len(f": {what} (part 10 of 10)") - (len(SANDBOX_PREFIX) if job.sandbox else 0)
    title = _title(job, f"{song_title(job, room) or job.mode.short_label}: {what}")
    lead = links_expire_line(job)
    if kept_url is not None:
        lead = f"{lead}\n{kept_line(kept_url)}"
    elif job.sandbox and keep_button and local_links(job):
        lead = f"{lead}\n{LOCAL_LINKS_NOTE}"
    named = job.song is not None and bool(job.song.title)
    # Named after its song, the mode is what remains to say; otherwise the audio id, as always.
    which = job.mode.short_label if named else f"audio id {job.audio_id}"
    footer = f"Job #{job.id} · {charge_text(job)} · {which}"
    if job.sandbox:
        footer = f"{SANDBOX_NOTE}\n{footer}"
    buttons = stem_buttons_fit(
        job, in_server=in_server, keep_button=keep_button, kept_url=kept_url, mix_button=mix_button
    )
    # Room for the lines once the title (with a part number), the lead and footer are counted.
    description_budget = EMBED_DESCRIPTION_LIMIT - len(lead) - 2
    message_budget = (
        MESSAGE_EMBED_TOTAL_LIMIT - len(title) - len(" (part 10 of 10)") - len(footer) - len(lead) - 2
    )

    groups: list[list[list[str]]] = [[[]]]  # messages -> embeds -> lines
    used = 0  # characters of lines in the current message
    lines = [] if buttons else [_stem_line(stem.key, stem.url) for stem in job.stems]
    for line in lines:
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
        embeds = [discord.Embed(description="\n".join(lines), colour=DONE) for lines in group]
        embeds[0].title = title + part
        embeds[0].description = f"{lead}\n\n{embeds[0].description}".rstrip()
        embeds[-1].set_footer(text=footer)
        messages.append(Message(embeds=embeds))
    add_song(messages[0].embeds[0], job)
    messages[0].content = mention_prefix(job, mention)
    messages[-1].view = result_view(
        job,
        in_server=in_server,
        keep_button=keep_button,
        kept_url=kept_url,
        stem_buttons=buttons,
        mix_button=mix_button,
    )
    return messages


def kept_line(url: str) -> str:
    """What a kept result says about where its files are."""
    return f"📌 **Kept in Discord:** every stem plays and downloads in [this thread]({url}), for good."


def _stem_line(key: str, url: str) -> str:
    line = f"[{stem_name(key)}]({markdown_url(url)})"
    if len(line) > EMBED_DESCRIPTION_LIMIT - 400:
        # No real stem URL is this long; still, never produce a message Discord would refuse.
        return f"{stem_name(key)}: the service returned a link too long for Discord to show."
    return line


def markdown_url(url: str) -> str:
    """A URL safe inside a Markdown link's parentheses."""
    return url.replace("(", "%28").replace(")", "%29")


_FAILURE_TEXT: dict[Failure, str] = {
    Failure.INVALID_IDS: "The separation service doesn't recognise this track. Check that `task_id` and "
    "`audio_id` were copied from the same generation, then try again: with the right ids it should work.",
    Failure.INPUT_TOO_LONG: "This track is too long for the separation service. Trying again won't "
    "help; a shorter track will work.",
    Failure.SEPARATION_FAILED: "The separation service tried but couldn't split this track. You can "
    "try once more; if it fails again, this track probably can't be split.",
    Failure.TIMED_OUT: "The separation service took far longer than usual, so the bot stopped waiting. "
    "Try again later: the service is probably busy.",
    Failure.SERVICE_ACCOUNT: "Splitting isn't available right now, and the bot's operator has been "
    "alerted. Please try again later.",
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
        description += f"\nThe service said: “{plain(job.failure_detail, limit=300)}”"
    embed = discord.Embed(title=_title(job, "The split didn't work"), description=description, colour=FAILED)
    embed.add_field(
        name="Charge",
        value=f"You were not charged: the {credit_amount(job.cost)} {'is' if job.cost == 1 else 'are'} back."
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


def kept_url(keep: Keep) -> str:
    """A link that opens where a result's stems are kept in Discord: the thread; the result
    message the files reply to (in a channel without threads); the DM they were posted in. The
    keep must have its place (every kept one has)."""
    if keep.channel_id is None:
        raise ValueError(f"the keep of job {keep.job_id} has no channel yet")
    where = "@me" if keep.place is KeepPlace.DM else keep.guild_id
    if keep.place is KeepPlace.REPLIES and keep.anchor_message_id is not None:
        return f"https://discord.com/channels/{where}/{keep.channel_id}/{keep.anchor_message_id}"
    return f"https://discord.com/channels/{where}/{keep.channel_id}"


def reminder(job: Job, result: list[DeliveredMessage], *, mention: bool = False) -> list[Message]:
    """The expiry reminder: the result again (every stem, each named), led by when its links
    expire and a link to where it was first shown."""
    assert job.links_expire_at is not None
    messages = stems_ready(job, mention=mention, in_server=False)
    where = None
    if result:
        where = jump_url(None if result[0].via is DeliveryVia.DM else job.guild_id, result[0])
    song = song_markdown(job)
    which = f"{song} (job #{job.id})" if song else f"Job #{job.id}"
    note = (
        f"⏰ Reminder: the links of {which} expire {moment(job.links_expire_at)}. "
        "Download what you need now: they cannot be renewed."
    )
    if where:
        note += f" [Your result]({where})"
    first = messages[0]
    first.content = f"{first.content} {note}" if first.content else note
    return messages
