"""What members read about their library: `/stems list`, `/stems show`, `/stems cancel`,
`/stems reminders`, and the job suggestions offered while typing."""

from __future__ import annotations

import discord

from bot.models import (
    Cancellation,
    CancelOutcome,
    Delivery,
    Job,
    JobState,
    Keep,
    KeepState,
    LibraryPage,
    Refund,
    Share,
)
from bot.render import results
from bot.render.common import DONE, INFO, WORKING, Message, credit_amount, refusal, timestamp
from bot.render.songs import add_song, song_markdown, song_title
from bot.render.text import as_written, code

SUGGESTION_LIMIT = 100  # Discord's limit on an autocomplete choice's name
_ID_SHOWN = 12  # characters of each id shown in a list line


def state_words(job: Job) -> str:
    """A job's state as members say it."""
    free = job.cost == 0
    if job.state is JobState.RESERVED:
        return "queued"
    if job.state is JobState.FOLLOWING:
        return "processing (sharing another member's split)"
    if job.state in (JobState.SUBMITTING, JobState.SUBMITTED):
        return "processing"
    if job.state is JobState.SUCCEEDED:
        words = "ready"
        if job.share is not None:
            words += ", shared: free" if free else ", shared"
        if job.delivery is Delivery.UNDELIVERABLE:
            words += " (Discord refused every way to deliver it: `/stems show` has it)"
        return words
    if job.state is JobState.CANCELLED:
        return "cancelled" if free else "cancelled, refunded"
    return "failed, nothing was charged" if free else "failed, refunded"


def _short(value: str) -> str:
    return value if len(value) <= _ID_SHOWN else value[: _ID_SHOWN - 1] + "…"


def _expiry(job: Job, now: float) -> str | None:
    if job.state is not JobState.SUCCEEDED or job.links_expire_at is None:
        return None
    if job.links_expire_at <= now:
        return "links expired"
    return f"links expire {timestamp(job.links_expire_at, 'R')}"


KEPT = "Kept in Discord"


def kept_link(keep: Keep | None) -> str | None:
    """The words "Kept in Discord", linking to where the stems were posted, for a result that is
    kept (None for any other)."""
    if keep is None or keep.state is not KeepState.KEPT:
        return None
    if keep.channel_id is None:  # every kept result has its place; never link nowhere
        return KEPT
    return f"[{KEPT}]({results.kept_url(keep)})"


def library_line(job: Job, now: float, keep: Keep | None = None) -> str:
    """One split in `/stems list`: its song (the ids where no title is known), mode, state, age."""
    song = song_markdown(job, limit=80)
    parts = [
        f"**Job #{job.id}**",
        song or f"{code(_short(job.source_task_id))} / {code(_short(job.audio_id))}",
        job.mode.label,
        state_words(job),
        timestamp(job.created_at, "R"),
    ]
    expiry = _expiry(job, now)
    if expiry:
        parts.append(expiry)
    kept = kept_link(keep)
    if kept:
        parts.append(kept)
    return " · ".join(parts)


def library(page: LibraryPage, member_id: int, *, own: bool, now: float) -> discord.Embed:
    title = "Your splits in this server" if own else "Splits in this server"
    lines = [library_line(job, now, page.keeps.get(job.id)) for job in page.jobs]
    if not own:
        lines.insert(0, f"<@{member_id}>'s splits, newest first.")
    if not page.jobs:
        lines = ["No splits yet. `/split` starts one; they all appear here."]
    embed = discord.Embed(title=title, description="\n".join(lines)[:4096], colour=INFO)
    embed.set_footer(
        text=f"Page {page.page + 1} of {page.pages} · {page.total} split{'s' if page.total != 1 else ''} · "
        "/stems show job: to see one again"
    )
    return embed


def shown(job: Job, now: float, keep: Keep | None = None, refund: Refund | None = None) -> list[Message]:
    """A job as `/stems show` shows it: its result (or why it failed) as it was delivered, and
    where its stems are kept in Discord, if they are; a cancelled one with what came back
    (`refund`)."""
    if job.state is JobState.SUCCEEDED:
        messages = results.stems_ready(job)
        kept = kept_link(keep)
        if job.links_expire_at is not None and job.links_expire_at <= now:
            expired = f"These links expired {timestamp(job.links_expire_at, 'R')}"
            messages[0].content = (
                f"{expired}, but the stems are still in Discord: {kept}."
                if kept
                else f"{expired}: the files can no longer be downloaded. Run `/split` again for new ones."
            )
        elif kept:
            messages[0].content = f"{kept}: the stems stay there after these links expire."
        return messages
    if job.state is JobState.FAILED:
        return [results.failed(job)]
    if job.state is JobState.CANCELLED:
        return [Message(embeds=[cancelled(job, refund)])]
    song = song_markdown(job)
    embed = discord.Embed(
        title=f"Job #{job.id}: {state_words(job)}",
        description=(f"{song}\n" if song else "")
        + f"{job.mode.label}, asked {timestamp(job.created_at, 'R')}. "
        "The result appears where you ran `/split` as soon as it is ready.",
        colour=WORKING,
    )
    return [Message(embeds=[add_song(embed, job)])]


def cancelled(job: Job, refund: Refund | None = None) -> discord.Embed:
    """A cancelled job, with what came back of its credits when that is known (`refund`)."""
    song = song_markdown(job)
    return discord.Embed(
        title=f"Job #{job.id} cancelled",
        description=(f"{song}: " if song else "")
        + f"It was never sent to the separation service. {refund_words(job, refund)}",
        colour=DONE,
    )


def refund_words(job: Job, refund: Refund | None) -> str:
    """What came back of a cancelled job's credits. Allowance from a period that has ended
    since is not returned (`economy.refund`), and the member is told so."""
    if job.cost == 0:
        return "Nothing was charged."
    if refund is None or refund.expired == 0:
        return f"Your {credit_amount(job.cost)} are back."
    expired = f"{credit_amount(refund.expired)} were your previous allowance, which has renewed since"
    if refund.total == 0:
        return f"Its {expired}, so none come back."
    return f"{credit_amount(refund.total)} back; the other {expired}."


def cancel_answer(done: Cancellation) -> discord.Embed:
    outcome, job = done.outcome, done.job
    assert job is not None
    if outcome is CancelOutcome.CANCELLED:
        return cancelled(job, done.refund)
    if outcome is CancelOutcome.ALREADY_SENT:
        text = (
            "It has already been sent to the separation service, which cannot call a job off. "
            "It will finish and be delivered as usual."
        )
    elif outcome is CancelOutcome.OTHERS_WAITING:
        text = (
            "Other members' splits of the same track are waiting on it, so it goes ahead. "
            "You will get the result as usual."
        )
    else:
        text = f"It has already ended ({state_words(job)})."
    return discord.Embed(title=f"Job #{job.id} can't be cancelled", description=text, colour=INFO)


def reminders_answer(enabled: bool, hours: float) -> discord.Embed:
    if enabled and hours > 0:
        text = (
            f"You will get a reminder {hours:g} hours before your stems' download links expire, "
            "by DM (or, if your DMs are closed, in the channel where you ran `/split`, mentioning you)."
        )
    elif enabled:
        text = "Reminders are on for you, but this bot sends none (its operator turned them off)."
    else:
        text = (
            "No more expiry reminders for you, in any server. "
            "`/stems reminders enabled:True` turns them back on."
        )
    return discord.Embed(title="Expiry reminders", description=text, colour=DONE)


def suggestion(job: Job, now: float) -> str:
    """How a job is offered while someone types a job number (at most 100 characters): by its
    song where known, else by its ids."""
    age = _age(now - job.created_at)
    tail = f" · {job.mode.label} · {age}"
    title = song_title(job, SUGGESTION_LIMIT - len(f"#{job.id} · ") - len(tail))
    if title:
        return f"#{job.id} · {title}{tail}"
    text = f"#{job.id} · {job.mode.label} · {job.source_task_id} / {job.audio_id} · {age}"
    return text if len(text) <= SUGGESTION_LIMIT else text[: SUGGESTION_LIMIT - 1] + "…"


def track_suggestion(job: Job, value: str, now: float) -> str:
    """An id offered for `/split` while typing, labelled with the split it comes from (its song's
    title first, where known)."""
    shared = "" if job.share is not Share.REUSED else " (shared)"
    tail = f" · {job.mode.label}{shared} · {_age(now - job.created_at)}"
    title = song_title(job, 60)
    text = f"{as_written(title, 60)} · {value}{tail}" if title else f"{value}{tail}"
    return text if len(text) <= SUGGESTION_LIMIT else text[: SUGGESTION_LIMIT - 1] + "…"


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def pager_refused() -> discord.Embed:
    return refusal(
        "Only whoever ran this `/stems list` can turn its pages. Run `/stems list` yourself to see your own."
    )
