"""What a member reads about their split: queued, processing, the stems, or why it failed; and,
privately, why a split could not start.

Public messages (queued, processing, the result) show what a split costs, never the member's
balance: that is in `/credits` and in the private refusals.

Everything is said in the language being spoken (`bot.i18n`): the caller speaks the server's
language for a public message and the member's for a private one or a DM. Constants marked `N_`
are English msgids, translated where they are shown.
"""

from __future__ import annotations

import discord

from bot.errors import CooldownActive, InsufficientCredits, MemberBlocked, SplitRefused, TooManyJobsInFlight
from bot.i18n import N_, _, ngettext, pgettext
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
    sandbox_title,
    title_room,
)
from bot.render.failures import failure_text
from bot.render.songs import add_song, local_links, song_markdown, song_title
from bot.render.text import code, plain

NOT_STARTED = N_("This split didn't start; the details were sent privately.")
"""English msgid of the words that end a refused split's public "thinking…" (translated into the
server's language by `answer_privately`)."""


INTERRUPTED_TITLE = N_("This split didn't start")
"""English msgid: `_(INTERRUPTED_TITLE)` where shown."""


def interrupted(mode: Mode) -> discord.Embed:
    """The answer to a split whose bot restarted after acknowledging it, before it was recorded
    (see `bot.acks`): nothing happened, nothing was charged, try again. Public (it fills the
    split's public "thinking…")."""
    return discord.Embed(
        title=_(INTERRUPTED_TITLE),
        # TRANSLATORS: {mode} is the separation mode with its price: "Full split (up to 12 stems) —
        # 50 credits".
        description=_(
            "{bot} restarted before your split ({mode}) was recorded, so it never started and "
            "**nothing was charged**. Please run `/split` again.",
            bot="StemBot",
            mode=mode_label(mode),
        ),
        colour=FAILED,
    )


def refused(error: SplitRefused) -> discord.Embed:
    """Why `/split` did not start, with what to do next; nothing was charged. Only the figures
    that help with this refusal: balance and prices when credits are short, nothing else."""
    if isinstance(error, InsufficientCredits):
        if error.refills_at is not None:
            then = _("Your allowance refills {when}.", when=moment(error.refills_at))
            colour = REFUSED_WAIT
        else:
            then = _("Your allowance is one-off and doesn't refill: a moderator can grant you bonus credits.")
            colour = FAILED
        # TRANSLATORS: {cost} and {balance} are amounts of credits ("50 credits"); {then} says
        # when the allowance refills (a sentence of its own).
        description = _(
            "This split costs {cost} and you have {balance}.\n{then}",
            cost=credit_amount(error.needed),
            balance=credit_amount(error.balance),
            then=then,
        )
        embed = discord.Embed(title=_("Not enough credits"), description=description, colour=colour)
        embed.add_field(name=_("Prices"), value=price_list(), inline=False)
    elif isinstance(error, MemberBlocked):
        embed = discord.Embed(title=_("You can't start splits here"), description=str(error), colour=FAILED)
    elif isinstance(error, CooldownActive):
        embed = discord.Embed(
            title=_("Please wait a little"),
            # TRANSLATORS: {when} is a Discord timestamp: "in 2 minutes (12 March 2025 10:00)".
            description=_(
                "This server asks members to wait between splits. You can split again {when}.",
                when=not_before(error.retry_at),
            ),
            colour=REFUSED_WAIT,
        )
    elif isinstance(error, TooManyJobsInFlight):
        embed = discord.Embed(title=_("Splits already running"), description=str(error), colour=REFUSED_WAIT)
    else:
        embed = discord.Embed(title=_("Can't start this split"), description=str(error), colour=FAILED)
    embed.set_footer(text=_("Nothing was charged."))
    return embed


def unavailable(reason: str) -> discord.Embed:
    return discord.Embed(
        title=_("Splitting is unavailable right now"), description=reason, colour=REFUSED_WAIT
    )


_QUEUED_TEXT = {
    None: N_("Queued. This message will show your stems when they are ready (usually one to three minutes)."),
    Share.COALESCED: N_(
        "Someone is already splitting this exact track in this mode, so you'll share their result "
        "instead of paying for the same stems twice. Your links will appear here."
    ),
    Share.REUSED: N_(
        "This track was already split in this mode recently, so the stored links are used instead of "
        "paying for the same stems twice. They'll appear here in a moment."
    ),
}


# English msgids: `_(CONSTANT)` where shown.
SANDBOX_QUEUED = N_("Queued. In the sandbox a split takes seconds; this message will show the stems then.")
SANDBOX_PREFIX = "Sandbox · "
"""How a sandbox job's titles start in English (see `common.sandbox_title`)."""
SANDBOX_NOTE = N_("Sandbox: a free try-out, the stems are short generated sounds, not your track.")
LOCAL_LINKS_NOTE = N_(
    "These sandbox links work only on the machine running the bot. To hear the stems on a phone, "
    "press **Keep in Discord**: they are posted here as files."
)


def _title(job: Job, title: str) -> str:
    """Every message about a sandbox job says so first (SEPARATION_API_URL=sandbox)."""
    return sandbox_title(title) if job.sandbox else title


def _working_title(job: Job) -> str:
    """ "Splitting: Midnight Drive (take 2 · 3:14)", or the mode where the song is not known; the
    song's title cut to what the translated title leaves."""
    # TRANSLATORS: an embed title (at most 256 characters): {song} is the song's title, or the mode.
    template = _("Splitting: {song}")
    room = title_room(template, "{song}", sandbox=job.sandbox)
    return _title(job, _("Splitting: {song}", song=song_title(job, room) or job.mode.label))


def queued(job: Job) -> discord.Embed:
    """The public answer to `/split`: what is happening and what it costs; never the balance."""
    text = _(SANDBOX_QUEUED) if job.sandbox and job.share is None else _(_QUEUED_TEXT[job.share])
    embed = discord.Embed(title=_working_title(job), description=text, colour=WORKING)
    _describe_job(embed, job)
    embed.set_footer(text=_working_footer(job))
    return embed


def _working_footer(job: Job) -> str:
    if not job.cost:
        # TRANSLATORS: {job} is the job's number.
        return _("Job #{job} · free", job=job.id)
    return ngettext(
        "Job #{job} · {count} credit held, returned if the split fails",
        "Job #{job} · {count} credits held, returned if the split fails",
        job.cost,
        job=job.id,
    )


def charge_text(job: Job) -> str:
    """What the member paid for a successful job, and why, for shared results."""
    if job.share is None:
        return ngettext("{count} credit charged", "{count} credits charged", job.cost)
    if job.cost == 0:
        return _("free: a shared result of the same split")
    return ngettext(
        "{count} credit charged (this server charges for shared results)",
        "{count} credits charged (this server charges for shared results)",
        job.cost,
    )


def processing(job: Job) -> discord.Embed:
    embed = discord.Embed(
        title=_working_title(job),
        description=_(
            "The separation service is working on your track. This message will show your stems when "
            "they are ready."
        ),
        colour=WORKING,
    )
    _describe_job(embed, job)
    embed.set_footer(text=_working_footer(job))
    return embed


def _describe_job(embed: discord.Embed, job: Job) -> None:
    """The song (its cover as the thumbnail) and the mode; the ids where no title is known."""
    song = song_markdown(job)
    if song is not None:
        # TRANSLATORS: a field's name: the song being split.
        embed.add_field(name=_("Song"), value=song)
        # TRANSLATORS: a field's name: the separation mode chosen ("Full split (up to 12 stems)").
        embed.add_field(name=pgettext("field", "Split"), value=job.mode.label)
        add_song(embed, job)
        return
    # Ids are checked at the door; older ones, or any other way in, still show as words only.
    # TRANSLATORS: a field's name: the music-generation task's id (`task_id`).
    embed.add_field(name=_("Task id"), value=code(job.source_task_id))
    # TRANSLATORS: a field's name: the id of one track of the task (`audio_id`).
    embed.add_field(name=_("Audio id"), value=code(job.audio_id))


LATE_NOTE = N_(
    "The original message could no longer be updated (Discord allows that for 15 minutes after a "
    "command), so your result comes as this reply."
)
"""English msgid: `_(LATE_NOTE)` where shown."""


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
        note = _(LATE_NOTE)
        first.content = f"{first.content} {note}" if first.content else note
    return messages


def pointer(job: Job, jump_url: str) -> discord.Embed:
    """What the original `/split` reply becomes once a late result was posted separately."""
    if job.state is JobState.SUCCEEDED:
        # TRANSLATORS: an embed title (at most 256 characters): {song} is the song's title, or the mode.
        template = _("Done: {song}")
        name = song_title(job, title_room(template, "{song}", sandbox=job.sandbox)) or job.mode.short_label
        title, colour = _("Done: {song}", song=name), DONE
        # TRANSLATORS: {url} is a link to the reply that carries the result.
        text = _(
            "Your download links are in [the reply to this message]({url}): the split took longer than "
            "Discord lets the bot update this message.",
            url=jump_url,
        )
    else:
        title, colour = _("The split didn't work"), FAILED
        text = _(
            "The details are in [the reply to this message]({url}): the split took longer than Discord "
            "lets the bot update this message.",
            url=jump_url,
        )
    embed = discord.Embed(title=_title(job, title), description=text, colour=colour)
    embed.set_footer(text=_("Job #{job}", job=job.id))
    return embed


RESULT_MARK = "download now, they cannot be renewed"
"""Words every result message leads with in English (how a benchmark or a test knows a result
arrived): part of the msgid of `links_expire_line`, keep the two in step."""


def links_expire_line(job: Job) -> str:
    expires = job.links_expire_at or (job.finished_at or 0) + LINK_LIFETIME.total_seconds()
    # TRANSLATORS: {when} is a Discord timestamp: "in 14 days (20 March 2025 10:00)".
    return _("**Links expire {when}: download now, they cannot be renewed.**", when=moment(expires))


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
    # TRANSLATORS: an embed title (at most 256 characters): {song} is the song's title, or the mode.
    template = ngettext("{song}: {count} stem", "{song}: {count} stems", count, song="{song}")
    part_room = len(_part(title="", index=10, parts=10))
    room = title_room(template, "{song}", EMBED_TITLE_LIMIT - part_room, sandbox=job.sandbox)
    song = song_title(job, room) or job.mode.short_label
    title = _title(job, ngettext("{song}: {count} stem", "{song}: {count} stems", count, song=song))
    lead = links_expire_line(job)
    if kept_url is not None:
        lead = f"{lead}\n{kept_line(kept_url)}"
    elif job.sandbox and keep_button and local_links(job):
        lead = f"{lead}\n{_(LOCAL_LINKS_NOTE)}"
    named = job.song is not None and bool(job.song.title)
    # Named after its song, the mode is what remains to say; otherwise the audio id, as always.
    # TRANSLATORS: {audio_id} is the id of the track that was split.
    which = job.mode.short_label if named else _("audio id {audio_id}", audio_id=job.audio_id)
    # TRANSLATORS: a result's footer: {job} its number, {charge} what was charged ("50 credits
    # charged"), {which} the mode or the track's id.
    footer = _("Job #{job} · {charge} · {which}", job=job.id, charge=charge_text(job), which=which)
    if job.sandbox:
        footer = f"{_(SANDBOX_NOTE)}\n{footer}"
    buttons = stem_buttons_fit(
        job, in_server=in_server, keep_button=keep_button, kept_url=kept_url, mix_button=mix_button
    )
    # Room for the lines once the title (with a part number), the lead and footer are counted.
    description_budget = EMBED_DESCRIPTION_LIMIT - len(lead) - 2
    message_budget = MESSAGE_EMBED_TOTAL_LIMIT - len(title) - part_room - len(footer) - len(lead) - 2

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
        embeds = [discord.Embed(description="\n".join(lines), colour=DONE) for lines in group]
        embeds[0].title = _part(title, index, len(groups)) if len(groups) > 1 else title
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


def _part(title: str, index: int, parts: int) -> str:
    # TRANSLATORS: a result's title when it takes several messages: "Midnight Drive: 12 stems (part 1 of 2)".
    return _("{title} (part {index} of {parts})", title=title, index=index, parts=parts)


def kept_line(url: str) -> str:
    """What a kept result says about where its files are."""
    # TRANSLATORS: {url} is a link to the thread (or message) where the stems were posted as files.
    return _(
        "📌 **Kept in Discord:** every stem plays and downloads in [this thread]({url}), for good.", url=url
    )


def _stem_line(key: str, url: str) -> str:
    line = f"[{stem_name(key)}]({markdown_url(url)})"
    if len(line) > EMBED_DESCRIPTION_LIMIT - 400:
        # No real stem URL is this long; still, never produce a message Discord would refuse.
        # TRANSLATORS: {stem} is a stem's name ("Drums").
        return _("{stem}: the service returned a link too long for Discord to show.", stem=stem_name(key))
    return line


def markdown_url(url: str) -> str:
    """A URL safe inside a Markdown link's parentheses."""
    return url.replace("(", "%28").replace(")", "%29")


def failed(job: Job, *, mention: bool = False) -> Message:
    failure = job.failure or Failure.SERVICE_ERROR
    description = failure_text(failure)
    if failure is Failure.SEPARATION_FAILED and job.failure_detail:
        # The service's own words, quoted as they are: not ours to translate.
        # TRANSLATORS: {detail} is the separation service's own message, in its language (English).
        said = _("The service said: “{detail}”", detail=plain(job.failure_detail, limit=300))
        description = f"{description}\n{said}"
    title = _title(job, _("The split didn't work"))
    embed = discord.Embed(title=title, description=description, colour=FAILED)
    embed.add_field(
        # TRANSLATORS: a field's name: what the failed split cost the member (nothing).
        name=_("Charge"),
        value=ngettext(
            "You were not charged: the {count} credit is back.",
            "You were not charged: the {count} credits are back.",
            job.cost,
        )
        if job.cost
        else _("Nothing was charged."),
    )
    _describe_job(embed, job)
    embed.set_footer(text=_("Job #{job}", job=job.id))
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
    when = moment(job.links_expire_at)
    if song:
        # TRANSLATORS: {song} is the song's title (bold), {job} the job's number, {when} a Discord timestamp.
        note = _(
            "⏰ Reminder: the links of {song} (job #{job}) expire {when}. Download what you need now: "
            "they cannot be renewed.",
            song=song,
            job=job.id,
            when=when,
        )
    else:
        note = _(
            "⏰ Reminder: the links of Job #{job} expire {when}. Download what you need now: they cannot "
            "be renewed.",
            job=job.id,
            when=when,
        )
    if where:
        # TRANSLATORS: a link to the message that first showed the result.
        note = f"{note} {_('[Your result]({url})', url=where)}"
    first = messages[0]
    first.content = f"{first.content} {note}" if first.content else note
    return messages
