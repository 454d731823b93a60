"""Who may mix what, and when it is refused: the rules of asking for a mix (issue 20).

Any member of the server may mix any full split there (remix channels are shared) where the
server's `mix_stems` is 'on'; blocked members are refused; the member's limits on splits running
at once do not apply (a mix calls no API). Asking stores the mix and takes its price in one
transaction (`store.mixes.request`); the same stems of the same job asked again are that mix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot import i18n
from bot.errors import (
    BadMixChoice,
    CannotAttachFiles,
    InsufficientCredits,
    MixBlocked,
    MixingOff,
    MixOfADmResult,
    MixSourcesGone,
    NothingToMix,
    UnknownJob,
)
from bot.keeping.place import ENGLISH_ONLY, Languages, place_language
from bot.keeping.requests import may_attach, positive
from bot.mixing.names import mix_filename
from bot.models import Delivery, DeliveryVia, Job, JobState, KeepState, Mix, MixStems, StemKeepState, mask_of
from bot.product import DEFAULT_UPLOAD_LIMIT, Mode, stem_name
from bot.quota import Actor
from bot.store import Store
from bot.store.mixes import NewMix

log = logging.getLogger(__name__)

MAX_STEMS = 12
"""The most stems a result can have (a full split): the mask fits any integer column."""


@dataclass(frozen=True, slots=True)
class Reply:
    """The member's private answer, to edit with the link once the mix is posted."""

    application_id: int
    token: str
    until: float


@dataclass(frozen=True, slots=True)
class MixRequest:
    """What asking for a mix did: the job, the mix, and whether this ask started it."""

    job: Job
    mix: Mix
    started: bool


async def offers_mix_button(store: Store, job: Job) -> bool:
    """Whether the job's result carries the Mix stems button: a full split with two stems or more,
    in a server that has not turned mixing off."""
    if not mixable(job):
        return False
    settings, _ = await store.economy.get(job.guild_id)
    return settings.mix_stems is MixStems.ON


def mixable(job: Job) -> bool:
    return (
        job.state is JobState.SUCCEEDED and job.mode is Mode.SPLIT_STEM and 2 <= len(job.stems) <= MAX_STEMS
    )


def stem_names(job: Job) -> list[str]:
    """The result's stems as the result names them, in its order."""
    return [stem_name(stem.key) for stem in job.stems]


class MixRequests:
    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float],
        asked: Callable[[], None],
        languages: Languages = ENGLISH_ONLY,
    ) -> None:
        """`languages`: the mix's file name is public, so it is named in the place's language
        (`place_language`), not the language of the member asking."""
        self._languages = languages
        self._store = store
        self._clock = clock
        self._asked = asked

    async def job(self, guild_id: int, job_id: int) -> Job:
        """The job to mix, checked: of this server, mixing on, a full split whose stems can still
        be had (links alive, or kept in Discord). Raises a MixRefused or UnknownJob."""
        job = await self._store.jobs.get(job_id)
        if job is None or job.guild_id != guild_id:
            raise UnknownJob(job_id)
        settings, _ = await self._store.economy.get(guild_id)
        if settings.mix_stems is not MixStems.ON:
            raise MixingOff()
        if not mixable(job) or job.delivery is not Delivery.DELIVERED:
            raise NothingToMix(job.id)
        return job

    async def price(self, guild_id: int) -> int:
        """What a mix costs in this server (0: free)."""
        settings, _ = await self._store.economy.get(guild_id)
        return settings.mix_price

    async def request(
        self,
        guild_id: int,
        actor: Actor,
        job_id: int,
        positions: Sequence[int],
        *,
        channel_id: int | None = None,
        attach_here: bool = True,
        upload_limit: int | None = None,
        reply: Reply | None = None,
        server_locale: object = None,
    ) -> MixRequest:
        """Mix the stems at `positions` of job #`job_id`, asked by `actor` in `guild_id`. Raises a
        MixRefused (or UnknownJob, InsufficientCredits) with plain words; nothing is stored or
        charged then. `server_locale`: the server's Discord locale as the interaction shows it (the
        file's name is public: named in the server's language)."""
        job = await self.job(guild_id, job_id)
        chosen = sorted(set(positions))
        if not chosen or len(chosen) >= len(job.stems) or chosen[0] < 0 or chosen[-1] >= len(job.stems):
            raise BadMixChoice(len(job.stems))
        if not await self.sources_kept(job, chosen) and self._links_expired(job):
            assert job.links_expire_at is not None
            raise MixSourcesGone(job.id, job.links_expire_at)
        if job.delivered_via is DeliveryVia.DM and actor.user_id != job.user_id:
            raise MixOfADmResult(job.id)  # the mix would go to their DM, out of this member's sight
        if job.delivered_via is not DeliveryVia.DM and not may_attach(job, channel_id, attach_here):
            raise CannotAttachFiles()
        settings, _ = await self._store.economy.get(guild_id)
        limit = positive(job.filesize_limit) or positive(upload_limit) or DEFAULT_UPLOAD_LIMIT
        with i18n.speaking(await place_language(self._languages, job, seen=server_locale)):
            filename = mix_filename(job.song.title if job.song else None, job.id, stem_names(job), chosen)
        asked = await self._store.mixes.request(
            NewMix(
                job=job,
                stems=mask_of(chosen),
                requested_by=actor.user_id,
                role_ids=actor.role_ids,
                price=settings.mix_price,
                upload_limit=limit,
                filename=filename,
                reply_application_id=reply.application_id if reply else None,
                reply_token=reply.token if reply else None,
                reply_until=reply.until if reply else None,
            )
        )
        if asked.blocked:
            raise MixBlocked(asked.blocked_reason)
        if asked.mix is None:
            raise InsufficientCredits(settings.mix_price, asked.balance, asked.refills_at)
        log.info(
            "job %s guild=%s: mix %s of stems %s asked by %s (%s)",
            job.id,
            guild_id,
            asked.mix.id,
            chosen,
            actor.user_id,
            "started" if asked.started else "already asked",
        )
        if asked.started:
            self._asked()
        return MixRequest(job, asked.mix, asked.started)

    def _links_expired(self, job: Job) -> bool:
        return job.links_expire_at is not None and job.links_expire_at <= self._clock()

    async def sources_kept(self, job: Job, positions: Sequence[int]) -> bool:
        """Whether every one of these stems is kept in Discord (its file posted with this result,
        or with the same stems' result it links to)."""
        keep = await self._store.keeps.get(job.id)
        if keep is None or keep.state is not KeepState.KEPT:
            return False
        stems = {s.position: s for s in await self._store.keeps.stems(keep.linked_to or job.id)}
        return all(
            p in stems and stems[p].state is StemKeepState.POSTED and stems[p].message_id is not None
            for p in positions
        )
