"""What members read about keeping stems in Discord: the thread's name and words, the note about
stems that stay links, and the private answers to the Keep in Discord button and `/stems keep`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import discord

from bot import reasons
from bot.i18n import _, ngettext
from bot.models import DeliveryVia, Job, Keep, KeepState, KeptStem
from bot.render.common import DONE, INFO, WORKING, moment
from bot.render.results import kept_url, markdown_url
from bot.render.songs import song_markdown, song_title
from bot.render.text import format_size, plain

THREAD_NAME_LIMIT = 100
AUTO_ARCHIVE_MINUTES: Literal[10080] = 10080
"""A week: Discord's longest auto-archive. An archived thread keeps its files; posting reopens it."""


def thread_name(job: Job) -> str:
    """The keep thread's name: "Midnight Drive · 12 stems · job #12" ("Stems · …" where the song is
    not known), in the language being spoken (the server's), at most Discord's 100 characters
    once translated, the title cut first. The one place a result's thread is named: whatever else
    posts in that thread calls this."""
    count = len(job.stems)

    def named(title: str) -> str:
        if not title:
            # TRANSLATORS: a thread's name (at most 100 characters) where the song is not known.
            return ngettext(
                "Stems · {count} stem · job #{job}", "Stems · {count} stems · job #{job}", count, job=job.id
            )
        # TRANSLATORS: a thread's name (at most 100 characters); {title} is the song's title.
        return ngettext(
            "{title} · {count} stem · job #{job}",
            "{title} · {count} stems · job #{job}",
            count,
            title=title,
            job=job.id,
        )

    room = THREAD_NAME_LIMIT - (len(named(" ")) - 1)
    title = song_title(job, room, details=False) if room > 0 else None  # the job number tells twins apart
    return named(title or "")[:THREAD_NAME_LIMIT]


def first_post(job: Job) -> str:
    """The words above the first files."""
    song = song_markdown(job)
    if song:
        # TRANSLATORS: above the first kept files; {song} is the song's title, {mode} the kind of split.
        text = _(
            "{song} · {mode}: the stems, kept in Discord. Press play on any of them, or download it. "
            "They stay here as long as this thread does, long after the links expire.",
            song=song,
            mode=job.mode.short_label,
        )
    else:
        # TRANSLATORS: above the first kept files; {mode} is the kind of split.
        text = _(
            "**Job #{job} · {mode}**: the stems, kept in Discord. Press play on any of them, or download it. "
            "They stay here as long as this thread does, long after the links expire.",
            job=job.id,
            mode=job.mode.short_label,
        )
    return text[:2000]


def skipped_note(job: Job, stems: Sequence[tuple[KeptStem, str]]) -> str:
    """The note that some stems stay links, each with why and its link while it lasts."""
    if job.links_expire_at:
        # TRANSLATORS: {moment} is when the links expire, as Discord shows it ("in 3 days (…)").
        head = _(
            "These stems stay download links, so get them before the links expire {moment}:",
            moment=moment(job.links_expire_at),
        )
    else:
        head = _("These stems stay download links, so get them before the links expire:")
    lines = [head]
    for stem, url in stems:
        why = plain(
            reasons.shown(stem.skipped_why) if stem.skipped_why else _(reasons.NOT_DOWNLOADED), limit=300
        )
        if stem.size:
            # TRANSLATORS: a stem that stays a link: {file} its file's name, {size} its size, {why} why.
            line = _(
                "• **{file}**, {size}: {why}. [Download {file}]({url})",
                file=stem.filename,
                size=format_size(stem.size),
                why=why,
                url=markdown_url(url),
            )
        else:
            # TRANSLATORS: one stem that stays a link: {file} its file's name, {why} the reason.
            line = _(
                "• **{file}**: {why}. [Download {file}]({url})",
                file=stem.filename,
                why=why,
                url=markdown_url(url),
            )
        lines.append(line)
    return "\n".join(lines)[:2000]


def keep_answer(keep: Keep, job: Job, *, started: bool, last_failure: str | None = None) -> discord.Embed:
    """The private answer to a Keep in Discord press or `/stems keep` (`last_failure`: why the
    previous try stopped, a stored reason, when this one starts over)."""
    if keep.state is KeepState.KEPT:
        return discord.Embed(
            title=_("Job #{job} is kept in Discord", job=job.id),
            description=_("Every stem plays and downloads [here]({url}), for good.", url=kept_url(keep)),
            colour=DONE,
        )
    if started:
        if job.delivered_via is DeliveryVia.DM:
            description = _(
                "The bot is downloading the stems and posting them in your DMs, under the result: "
                "they'll appear there within a few minutes, playable and downloadable for good."
            )
        else:
            description = _(
                "The bot is downloading the stems and posting them in a thread on the result message: "
                "they'll appear there within a few minutes, playable and downloadable for good."
            )
        if last_failure:
            # TRANSLATORS: {why} is why the last try stopped, such as "an HTML page".
            stopped = _(
                "The last try stopped: {why}. Trying again now.",
                why=plain(reasons.shown(last_failure), limit=500),
            )
            description = f"{stopped}\n{description}"
        return discord.Embed(
            title=_("Keeping Job #{job} in Discord", job=job.id), description=description, colour=WORKING
        )
    if keep.channel_id is not None:
        description = _(
            "Someone already asked: the stems are being posted in [this thread]({url}). Nothing more to do.",
            url=kept_url(keep),
        )
    else:
        description = _("Someone already asked: the stems are being posted. Nothing more to do.")
    return discord.Embed(
        title=_("Job #{job} is being kept in Discord", job=job.id), description=description, colour=INFO
    )
