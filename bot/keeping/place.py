"""Where a result's files go, for keeping and for mixes alike: the place one of them already chose
(so both share one thread), else a thread on the first message of the result, replies to it where
no thread can be made, or the DM for a result delivered by DM."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from bot import reasons
from bot.i18n import ENGLISH, Language
from bot.keeping.poster import PlaceRefused, ThreadsUnavailable
from bot.models import DeliveredMessage, DeliveryVia, Job, Keep, KeepPlace
from bot.reasons import because
from bot.store import Store

log = logging.getLogger(__name__)


class ThreadOpener(Protocol):
    async def open_thread(self, job: Job, anchor: DeliveredMessage) -> int: ...


class Languages(Protocol):
    """Which language to speak where no interaction says it (`bot.languages.Languages`)."""

    async def public(self, guild_id: int, seen: object = None) -> Language:
        """The server's language, for what everyone there reads (`seen`: the server's Discord
        locale as an interaction at hand shows it)."""
        ...

    async def member(self, user_id: int) -> Language:
        """The member's language, for what they alone read."""
        ...


class EnglishOnly:
    """Languages where none are known: English everywhere (tests that don't look at languages)."""

    async def public(self, guild_id: int, seen: object = None) -> Language:
        return ENGLISH

    async def member(self, user_id: int) -> Language:
        return ENGLISH


ENGLISH_ONLY = EnglishOnly()


async def place_language(languages: Languages, job: Job, *, seen: object = None) -> Language:
    """The language of what is posted beside the job's result (the thread's name and notes, the
    files' names): the server's (`seen`: its Discord locale as an interaction at hand shows it),
    or the member's for a result delivered in their DMs."""
    if job.delivered_via is DeliveryVia.DM:
        return await languages.member(job.user_id)
    return await languages.public(job.guild_id, seen)


@dataclass(frozen=True, slots=True)
class ResultPlace:
    place: KeepPlace
    channel_id: int
    anchor_message_id: int | None


async def result_place(store: Store, opener: ThreadOpener, job: Job) -> ResultPlace:
    """Where the job's files go (see the module's docstring). Raises PlaceRefused, PostRetry."""
    return await place_beside(await store.keeps.get(job.id), store, opener, job)


async def place_beside(keep: Keep | None, store: Store, opener: ThreadOpener, job: Job) -> ResultPlace:
    """`result_place` for a caller that holds the job's keep as it is now (the keep worker: no
    second read of it)."""
    if keep is not None and keep.place is not None and keep.channel_id is not None:
        return ResultPlace(keep.place, keep.channel_id, keep.anchor_message_id)
    mixed = await store.mixes.place_of(job.id)
    if mixed is not None and mixed.place is not None and mixed.channel_id is not None:
        return ResultPlace(mixed.place, mixed.channel_id, mixed.anchor_message_id)
    result = await store.deliveries.result_messages(job.id)
    if not result or result[0].channel_id is None:
        raise PlaceRefused(because(reasons.RESULT_MESSAGE_GONE))
    anchor = result[0]
    assert anchor.channel_id is not None
    if anchor.via is DeliveryVia.DM:
        return ResultPlace(KeepPlace.DM, anchor.channel_id, anchor.message_id)
    try:
        return ResultPlace(KeepPlace.THREAD, await opener.open_thread(job, anchor), anchor.message_id)
    except ThreadsUnavailable as error:
        log.info("job %s: no thread (%s); posting the files as replies", job.id, error.reason)
        return ResultPlace(KeepPlace.REPLIES, anchor.channel_id, anchor.message_id)
