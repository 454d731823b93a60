"""What members read about their library: `/stems list`, `/stems show`, `/stems cancel`,
`/stems reminders`, and the job suggestions offered while typing."""

from __future__ import annotations

import discord

from bot.i18n import N_, _, ngettext, number, pgettext
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
        return pgettext("job state", "queued")
    if job.state is JobState.FOLLOWING:
        return pgettext("job state", "processing (sharing another member's split)")
    if job.state in (JobState.SUBMITTING, JobState.SUBMITTED):
        return pgettext("job state", "processing")
    if job.state is JobState.SUCCEEDED:
        if job.share is None:
            words = pgettext("job state", "ready")
        elif free:
            words = pgettext("job state", "ready, shared: free")
        else:
            words = pgettext("job state", "ready, shared")
        if job.delivery is Delivery.UNDELIVERABLE:
            # TRANSLATORS: {state} is a job's state ("ready", "ready, shared"), translated on its own.
            return _("{state} (Discord refused every way to deliver it: `/stems show` has it)", state=words)
        return words
    if job.state is JobState.CANCELLED:
        return pgettext("job state", "cancelled") if free else pgettext("job state", "cancelled, refunded")
    if free:
        return pgettext("job state", "failed, nothing was charged")
    return pgettext("job state", "failed, refunded")


def _short(value: str) -> str:
    return value if len(value) <= _ID_SHOWN else value[: _ID_SHOWN - 1] + "…"


def _expiry(job: Job, now: float) -> str | None:
    if job.state is not JobState.SUCCEEDED or job.links_expire_at is None:
        return None
    if job.links_expire_at <= now:
        return _("links expired")
    # TRANSLATORS: {when} is a Discord timestamp that reads "in 3 days", in the reader's language.
    return _("links expire {when}", when=timestamp(job.links_expire_at, "R"))


KEPT = N_("Kept in Discord")


def kept_link(keep: Keep | None) -> str | None:
    """The words "Kept in Discord", linking to where the stems were posted, for a result that is
    kept (None for any other)."""
    if keep is None or keep.state is not KeepState.KEPT:
        return None
    if keep.channel_id is None:  # every kept result has its place; never link nowhere
        return _(KEPT)
    return f"[{_(KEPT)}]({results.kept_url(keep)})"


def job_number(job: Job) -> str:
    """ "Job #12": a job's name in titles and lists (its number is an id: no separators)."""
    return _("Job #{id}", id=job.id)


def library_line(job: Job, now: float, keep: Keep | None = None) -> str:
    """One split in `/stems list`: its song (the ids where no title is known), mode, state, age."""
    song = song_markdown(job, limit=80)
    parts = [
        f"**{job_number(job)}**",
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
    title = _("Your splits in this server") if own else _("Splits in this server")
    lines = [library_line(job, now, page.keeps.get(job.id)) for job in page.jobs]
    if not own:
        mention = f"<@{member_id}>"
        # TRANSLATORS: {member} is a mention of the member whose list this is.
        lines.insert(0, _("{member}'s splits, newest first.", member=mention))
    if not page.jobs:
        lines = [_("No splits yet. `/split` starts one; they all appear here.")]
    embed = discord.Embed(title=title, description="\n".join(lines)[:4096], colour=INFO)
    footer = [
        _("Page {page} of {pages}", page=number(page.page + 1), pages=number(page.pages)),
        ngettext("{count} split", "{count} splits", page.total),
        # TRANSLATORS: a footer (no Markdown); "/stems show job:" is the command, as typed.
        _("/stems show job: to see one again"),
    ]
    embed.set_footer(text=" · ".join(footer))
    return embed


def shown(job: Job, now: float, keep: Keep | None = None, refund: Refund | None = None) -> list[Message]:
    """A job as `/stems show` shows it: its result (or why it failed) as it was delivered, and
    where its stems are kept in Discord, if they are; a cancelled one with what came back
    (`refund`)."""
    if job.state is JobState.SUCCEEDED:
        messages = results.stems_ready(job)
        kept = kept_link(keep)
        if job.links_expire_at is not None and job.links_expire_at <= now:
            when = timestamp(job.links_expire_at, "R")
            # TRANSLATORS: {when} reads "3 days ago"; {kept} is the link "Kept in Discord".
            messages[0].content = (
                _(
                    "These links expired {when}, but the stems are still in Discord: {kept}.",
                    when=when,
                    kept=kept,
                )
                if kept
                else _(
                    "These links expired {when}: the files can no longer be downloaded. "
                    "Run `/split` again for new ones.",
                    when=when,
                )
            )
        elif kept:
            # TRANSLATORS: {kept} is the link "Kept in Discord", translated on its own.
            messages[0].content = _("{kept}: the stems stay there after these links expire.", kept=kept)
        return messages
    if job.state is JobState.FAILED:
        return [results.failed(job)]
    if job.state is JobState.CANCELLED:
        return [Message(embeds=[cancelled(job, refund)])]
    song = song_markdown(job)
    # TRANSLATORS: {mode} is a split's mode ("Vocals + instrumental"); {when} reads "5 minutes ago".
    waiting = _(
        "{mode}, asked {when}. The result appears where you ran `/split` as soon as it is ready.",
        mode=job.mode.label,
        when=timestamp(job.created_at, "R"),
    )
    embed = discord.Embed(
        # TRANSLATORS: an embed's title: "Job #12: queued".
        title=_("{job}: {state}", job=job_number(job), state=state_words(job)),
        description=f"{song}\n{waiting}" if song else waiting,
        colour=WORKING,
    )
    return [Message(embeds=[add_song(embed, job)])]


def cancelled(job: Job, refund: Refund | None = None) -> discord.Embed:
    """A cancelled job, with what came back of its credits when that is known (`refund`)."""
    song = song_markdown(job)
    refunded = refund_words(job, refund)
    return discord.Embed(
        title=_("Job #{id} cancelled", id=job.id),
        description=(
            # TRANSLATORS: {song} is the song's title (a link); {refund} says what came back of the credits.
            _("{song}: It was never sent to the separation service. {refund}", song=song, refund=refunded)
            if song
            else _("It was never sent to the separation service. {refund}", refund=refunded)
        ),
        colour=DONE,
    )


def refund_words(job: Job, refund: Refund | None) -> str:
    """What came back of a cancelled job's credits. Allowance from a period that has ended
    since is not returned (`economy.refund`), and the member is told so."""
    if job.cost == 0:
        return _("Nothing was charged.")
    if refund is None or refund.expired == 0:
        return ngettext("Your {count} credit is back.", "Your {count} credits are back.", job.cost)
    if refund.total == 0:
        return ngettext(
            "Its {count} credit was your previous allowance, which has renewed since, so none come back.",
            "Its {count} credits were your previous allowance, which has renewed since, so none come back.",
            refund.expired,
        )
    # TRANSLATORS: {back} is an amount of credits ("5 credits") that came back.
    return ngettext(
        "{back} back; the other {count} credit was your previous allowance, which has renewed since.",
        "{back} back; the other {count} credits were your previous allowance, which has renewed since.",
        refund.expired,
        back=credit_amount(refund.total),
    )


def cancel_answer(done: Cancellation) -> discord.Embed:
    outcome, job = done.outcome, done.job
    assert job is not None
    if outcome is CancelOutcome.CANCELLED:
        return cancelled(job, done.refund)
    if outcome is CancelOutcome.ALREADY_SENT:
        text = _(
            "It has already been sent to the separation service, which cannot call a job off. "
            "It will finish and be delivered as usual."
        )
    elif outcome is CancelOutcome.OTHERS_WAITING:
        text = _(
            "Other members' splits of the same track are waiting on it, so it goes ahead. "
            "You will get the result as usual."
        )
    else:
        # TRANSLATORS: {state} is the job's state ("failed, refunded").
        text = _("It has already ended ({state}).", state=state_words(job))
    return discord.Embed(title=_("Job #{id} can't be cancelled", id=job.id), description=text, colour=INFO)


def _plural_of(amount: float) -> int:
    """The whole number to choose a plural form by: plural rules are for whole numbers, and a
    fraction ("1.5 hours") reads as the plural."""
    return int(amount) if float(amount).is_integer() else 2


def reminders_answer(enabled: bool, hours: float) -> discord.Embed:
    if enabled and hours > 0:
        text = ngettext(
            "You will get a reminder {count} hour before your stems' download links expire, by DM (or, "
            "if your DMs are closed, in the channel where you ran `/split`, mentioning you).",
            "You will get a reminder {count} hours before your stems' download links expire, by DM (or, "
            "if your DMs are closed, in the channel where you ran `/split`, mentioning you).",
            _plural_of(hours),
            count=number(hours),
        )
    elif enabled:
        text = _("Reminders are on for you, but this bot sends none (its operator turned them off).")
    else:
        text = _(
            "No more expiry reminders for you, in any server. "
            "`/stems reminders enabled:True` turns them back on."
        )
    return discord.Embed(title=_("Expiry reminders"), description=text, colour=DONE)


def _cut(text: str) -> str:
    """An autocomplete label cut to Discord's limit, after translation."""
    return text if len(text) <= SUGGESTION_LIMIT else text[: SUGGESTION_LIMIT - 1] + "…"


def suggestion(job: Job, now: float) -> str:
    """How a job is offered while someone types a job number (at most 100 characters): by its
    song where known, else by its ids."""
    age = _age(now - job.created_at)
    tail = f" · {job.mode.label} · {age}"
    title = song_title(job, SUGGESTION_LIMIT - len(f"#{job.id} · ") - len(tail))
    if title:
        return _cut(f"#{job.id} · {title}{tail}")
    return _cut(f"#{job.id} · {job.mode.label} · {job.source_task_id} / {job.audio_id} · {age}")


def track_suggestion(job: Job, value: str, now: float) -> str:
    """An id offered for `/split` while typing, labelled with the split it comes from (its song's
    title first, where known)."""
    # TRANSLATORS: an autocomplete label (at most 100 characters with a song title): {mode} is a
    # split's mode, shared from another member's identical split.
    mode = job.mode.label if job.share is not Share.REUSED else _("{mode} (shared)", mode=job.mode.label)
    tail = f" · {mode} · {_age(now - job.created_at)}"
    title = song_title(job, 60)
    return _cut(f"{as_written(title, 60)} · {value}{tail}" if title else f"{value}{tail}")


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds >= 86400:
        return ngettext("{count} day ago", "{count} days ago", int(seconds // 86400))
    if seconds >= 3600:
        return ngettext("{count} hour ago", "{count} hours ago", int(seconds // 3600))
    if seconds >= 60:
        return ngettext("{count} minute ago", "{count} minutes ago", int(seconds // 60))
    return _("just now")


def pager_refused() -> discord.Embed:
    return refusal(
        _(
            "Only whoever ran this `/stems list` can turn its pages. "
            "Run `/stems list` yourself to see your own."
        )
    )
