"""The words of mixes (issue 20): the stem picker, the private answers, and the line above the
posted file."""

from __future__ import annotations

from collections.abc import Sequence

from bot import i18n, reasons
from bot.i18n import N_, _, listing, ngettext
from bot.models import Job, KeepPlace, Mix, MixState
from bot.product import stem_name
from bot.render.text import plain

PLACEHOLDER = N_("Choose the stems to keep in the mix")
"""The stem picker's placeholder (at most 150 characters once translated: `placeholder`)."""
PLACEHOLDER_LIMIT = 150


def placeholder() -> str:
    """The stem picker's placeholder in the language being spoken, cut to Discord's limit."""
    return _(PLACEHOLDER)[:PLACEHOLDER_LIMIT]


def picker(job: Job, price: int) -> str:
    """Above the stem picker: what choosing does."""
    if not price:
        return _(
            "**Mix stems of Job #{job}:** choose the stems to keep (at least one; leave at least one "
            "out). The mix is posted as one audio file in the result's thread.",
            job=job.id,
        )
    return ngettext(
        "**Mix stems of Job #{job}:** choose the stems to keep (at least one; leave at least one "
        "out). The mix is posted as one audio file in the result's thread. It costs {count} credit.",
        "**Mix stems of Job #{job}:** choose the stems to keep (at least one; leave at least one "
        "out). The mix is posted as one audio file in the result's thread. It costs {count} credits.",
        price,
        job=job.id,
    )


def mix_url(mix: Mix) -> str | None:
    """A link that opens the posted mix (None until it is posted)."""
    if mix.channel_id is None or mix.message_id is None:
        return None
    where = "@me" if mix.place is KeepPlace.DM else mix.guild_id
    return f"https://discord.com/channels/{where}/{mix.channel_id}/{mix.message_id}"


def asked_answer(job: Job, mix: Mix, *, started: bool) -> str:
    """The private answer to choosing stems."""
    url = mix_url(mix)
    name = plain(mix.filename)
    if mix.state is MixState.POSTED and url is not None:
        # TRANSLATORS: {name} is the mix's file name, {url} its link.
        return _("This mix of Job #{job} is already made: [{name}]({url}).", job=job.id, name=name, url=url)
    if started:
        if not mix.price:
            return _(
                "Mixing **{name}**. It will be posted in the result's thread; this message will link to it.",
                name=name,
            )
        return ngettext(
            "Mixing **{name}**. It will be posted in the result's thread; this message will link to it. "
            "{count} credit charged (refunded if it fails).",
            "Mixing **{name}**. It will be posted in the result's thread; this message will link to it. "
            "{count} credits charged (refunded if it fails).",
            mix.price,
            name=name,
        )
    return _(
        "This mix of Job #{job} (**{name}**) is already on its way: it will be posted in the "
        "result's thread.",
        job=job.id,
        name=name,
    )


def file_line(job: Job, mix: Mix, stem_names: Sequence[str]) -> str:
    """The line above the posted file: who asked for it and what it holds, in the language being
    spoken (the server's). The same every time for one mix in one language: it is how the mix is
    found again after an unknown outcome (`file_lines`)."""
    kept = [stem_names[p] for p in mix.positions]
    left = [name for i, name in enumerate(stem_names) if i not in set(mix.positions)]
    member = f"<@{mix.requested_by}>"
    # TRANSLATORS: above a posted mix. {member} mentions who asked; {kept} and {left} list stems.
    return _(
        "🎚️ {member} asked for a mix of Job #{job}: {kept} (without {left}).",
        member=member,
        job=job.id,
        kept=listing(kept),
        left=listing(left),
    )


def file_lines(job: Job, mix: Mix) -> frozenset[str]:
    """The mix's line in every language: the server's language may have changed since it was
    posted, and the line is still how the mix is found again."""
    lines = set()
    for language in i18n.LANGUAGES:
        with i18n.speaking(language):
            lines.add(file_line(job, mix, [stem_name(stem.key) for stem in job.stems]))
    return frozenset(lines)


def posted_answer(job: Job, mix: Mix) -> str:
    url = mix_url(mix)
    # The file's name holds the song's title (the API's, untrusted): escaped in Markdown.
    name = plain(mix.filename)
    if url:
        return _("Your mix of Job #{job} is ready: [{name}]({url}).", job=job.id, name=name, url=url)
    return _("Your mix of Job #{job} is ready: **{name}**.", job=job.id, name=name)


def failed_answer(job: Job, mix: Mix, refunded: int) -> str:
    """Why the mix failed (its stored reason, said in the language being spoken), and the refund."""
    why = reasons.shown(mix.failure) if mix.failure else _(reasons.UNEXPECTED)
    if not refunded:
        # TRANSLATORS: {why} is why the mix failed, such as "the file holds no audio".
        return _("The mix of Job #{job} couldn't be made: {why}. Nothing was posted.", job=job.id, why=why)
    # TRANSLATORS: {why} is why the mix failed; {count} the credits given back.
    return ngettext(
        "The mix of Job #{job} couldn't be made: {why}. Nothing was posted. Your {count} credit came back.",
        "The mix of Job #{job} couldn't be made: {why}. Nothing was posted. Your {count} credits came back.",
        refunded,
        job=job.id,
        why=why,
    )
