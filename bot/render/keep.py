"""What members read about keeping stems in Discord: the thread's name and words, the note about
stems that stay links, and the private answers to the Keep in Discord button and `/stems keep`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import discord

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
    not known), at most Discord's 100 characters, the title cut first. The one place a result's
    thread is named: whatever else posts in that thread calls this."""
    count = len(job.stems)
    tail = f" · {count} stem{'' if count == 1 else 's'} · job #{job.id}"
    title = song_title(job, THREAD_NAME_LIMIT - len(tail), details=False)  # the job number tells twins apart
    return (f"{title}{tail}" if title else f"Stems{tail}")[:THREAD_NAME_LIMIT]


def first_post(job: Job) -> str:
    """The words above the first files."""
    song = song_markdown(job)
    what = f"{song} · {job.mode.short_label}" if song else f"**Job #{job.id} · {job.mode.short_label}**"
    return (
        f"{what}: the stems, kept in Discord. Press play on any of "
        "them, or download it. They stay here as long as this thread does, long after the links expire."
    )[:2000]


def skipped_note(job: Job, stems: Sequence[tuple[KeptStem, str]]) -> str:
    """The note that some stems stay links, each with why and its link while it lasts."""
    lines = [
        "These stems stay download links, so get them before the links expire"
        + (f" {moment(job.links_expire_at)}:" if job.links_expire_at else ":")
    ]
    for stem, url in stems:
        size = f", {format_size(stem.size)}" if stem.size else ""
        why = plain(stem.skipped_why or "it could not be downloaded", limit=300)
        lines.append(f"• **{stem.filename}**{size}: {why}. [Download {stem.filename}]({markdown_url(url)})")
    return "\n".join(lines)[:2000]


def keep_answer(keep: Keep, job: Job, *, started: bool, last_failure: str | None = None) -> discord.Embed:
    """The private answer to a Keep in Discord press or `/stems keep` (`last_failure`: why the
    previous try stopped, when this one starts over)."""
    if keep.state is KeepState.KEPT:
        return discord.Embed(
            title=f"Job #{job.id} is kept in Discord",
            description=f"Every stem plays and downloads [here]({kept_url(keep)}), for good.",
            colour=DONE,
        )
    if started:
        description = (
            "The bot is downloading the stems and posting them in a thread on the result message: "
            "they'll appear there within a few minutes, playable and downloadable for good."
        )
        if job.delivered_via is DeliveryVia.DM:
            description = description.replace("a thread on the result message", "your DMs, under the result")
        if last_failure:
            description = (
                f"The last try stopped: {plain(last_failure, limit=500)}. Trying again now.\n{description}"
            )
        return discord.Embed(
            title=f"Keeping Job #{job.id} in Discord", description=description, colour=WORKING
        )
    where = f" in [this thread]({kept_url(keep)})" if keep.channel_id is not None else ""
    return discord.Embed(
        title=f"Job #{job.id} is being kept in Discord",
        description=f"Someone already asked: the stems are being posted{where}. Nothing more to do.",
        colour=INFO,
    )
