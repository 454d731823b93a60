"""The words of mixes (issue 20): the stem picker, the private answers, and the line above the
posted file."""

from __future__ import annotations

from collections.abc import Sequence

from bot.models import Job, KeepPlace, Mix, MixState
from bot.render.text import plain

PLACEHOLDER = "Choose the stems to keep in the mix"
"""The stem picker's placeholder (at most 150 characters)."""


def picker(job: Job, price: int) -> str:
    """Above the stem picker: what choosing does."""
    cost = f" It costs {price:,} credit{'s' if price != 1 else ''}." if price else ""
    return (
        f"**Mix stems of Job #{job.id}:** choose the stems to keep (at least one; leave at least one "
        f"out). The mix is posted as one audio file in the result's thread.{cost}"
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
    if mix.state is MixState.POSTED and url is not None:
        return f"This mix of Job #{job.id} is already made: [{plain(mix.filename)}]({url})."
    if started:
        paid = (
            f" {mix.price:,} credit{'s' if mix.price != 1 else ''} charged (refunded if it fails)."
            if mix.price
            else ""
        )
        return (
            f"Mixing **{plain(mix.filename)}**. It will be posted in the result's thread; this message will "
            f"link to it.{paid}"
        )
    return (
        f"This mix of Job #{job.id} (**{plain(mix.filename)}**) is already on its way: it will be posted in "
        "the result's thread."
    )


def file_line(job: Job, mix: Mix, stem_names: Sequence[str]) -> str:
    """The line above the posted file: who asked for it and what it holds (the same every time
    for one mix: it is how the mix is found again after an unknown outcome)."""
    kept = [stem_names[p] for p in mix.positions]
    left = [name for i, name in enumerate(stem_names) if i not in set(mix.positions)]
    return (
        f"🎚️ <@{mix.requested_by}> asked for a mix of Job #{job.id}: {', '.join(kept)} "
        f"(without {', '.join(left)})."
    )


def posted_answer(job: Job, mix: Mix) -> str:
    url = mix_url(mix)
    # The file's name holds the song's title (the API's, untrusted): escaped in Markdown.
    name = plain(mix.filename)
    where = f"[{name}]({url})" if url else f"**{name}**"
    return f"Your mix of Job #{job.id} is ready: {where}."


def failed_answer(job: Job, mix: Mix, refunded: int) -> str:
    back = f" Your {refunded:,} credit{'s' if refunded != 1 else ''} came back." if refunded else ""
    return f"The mix of Job #{job.id} couldn't be made: {mix.failure}. Nothing was posted.{back}"
