"""Who may keep a result, and when it is refused: the request and authorisation rules.

A result is kept by its member or a moderator (`bot.library`), where the server's `keep_stems`
setting is not 'off', once it was delivered with stems whose links still live (or the same stems
are already kept next to it), where the bot may attach files. Asking only records the wish
(`store.keeps`); the worker (`bot.keeping.worker`) does the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.errors import CannotAttachFiles, KeepingOff, LinksExpired, NothingToKeep, UnknownJob
from bot.invite import PERMISSIONS
from bot.keeping.twins import Twins
from bot.library import LibraryService
from bot.models import Delivery, DeliveryVia, Job, JobState, Keep, KeepState, KeepStems
from bot.product import DEFAULT_UPLOAD_LIMIT
from bot.quota import Actor
from bot.store import Store

log = logging.getLogger(__name__)


async def offers_keep_button(store: Store, job: Job) -> bool:
    """Whether the job's result message carries the Keep in Discord button: a success with stems,
    where the server has not turned keeping off."""
    if job.state is not JobState.SUCCEEDED or not job.stems:
        return False
    settings, _ = await store.economy.get(job.guild_id)
    return settings.keep_stems is not KeepStems.OFF


@dataclass(frozen=True, slots=True)
class KeepRequest:
    """What asking to keep a result did: the job, its keep, and whether this ask started it
    (False: it was already kept, or being kept)."""

    job: Job
    keep: Keep
    started: bool
    last_failure: str | None = None  # why the previous try failed, when this one starts over


class KeepRequests:
    """Asking to keep a result: the rules, and the wish recorded."""

    def __init__(
        self,
        store: Store,
        library: LibraryService,
        twins: Twins,
        *,
        clock: Callable[[], float],
        asked: Callable[[], None],
    ) -> None:
        """`asked` hears of every keep asked for (the worker wakes on it)."""
        self._store = store
        self._library = library
        self._twins = twins
        self._clock = clock
        self._asked = asked

    async def setting(self, guild_id: int) -> KeepStems:
        settings, _ = await self._store.economy.get(guild_id)
        return settings.keep_stems

    async def request(
        self,
        guild_id: int | None,
        actor: Actor,
        job_id: int,
        *,
        channel_id: int | None = None,
        attach_here: bool = True,
        upload_limit: int | None = None,
    ) -> KeepRequest:
        """Keep job #`job_id`'s stems in Discord, asked in `guild_id` (None: in a DM, where only
        the member's own results can be kept). `attach_here`: whether Discord says the bot may
        attach files in `channel_id`, where this was asked (elsewhere, what Discord said at the
        /split counts); `upload_limit`: the limit Discord reported with this ask (the job's own
        wins). Raises a `KeepRefused` (or UnknownJob / NotYourJob) with plain words; nothing is
        changed then."""
        if guild_id is None:
            found = await self._store.jobs.get(job_id)
            if found is None or found.user_id != actor.user_id:
                raise UnknownJob(job_id)
            job = found
        else:
            job = await self._library.job(guild_id, actor, job_id, action="keep")
        if await self.setting(job.guild_id) is KeepStems.OFF:
            raise KeepingOff()
        existing = await self._store.keeps.get(job.id)
        if existing is not None and existing.state is not KeepState.FAILED:
            return KeepRequest(job, existing, started=False)
        if job.state is not JobState.SUCCEEDED or not job.stems:
            raise NothingToKeep(job.id, job.state, delivered=job.delivery is Delivery.DELIVERED)
        if job.delivery is not Delivery.DELIVERED:
            raise NothingToKeep(job.id, job.state, delivered=False)
        twin = await self._twins.kept(job)
        if twin is None:
            if job.links_expire_at is not None and job.links_expire_at <= self._clock():
                raise LinksExpired(job.id, job.links_expire_at)
            if job.delivered_via is not DeliveryVia.DM and not may_attach(job, channel_id, attach_here):
                raise CannotAttachFiles()
        limit = positive(job.filesize_limit) or positive(upload_limit) or DEFAULT_UPLOAD_LIMIT
        keep, started = await self._store.keeps.request(job, requested_by=actor.user_id, upload_limit=limit)
        if started and twin is not None:
            keep = await self._store.keeps.apply(keep.linked(twin, self._clock()))
        log.info(
            "job %s guild=%s: keep in Discord asked by %s (%s)",
            job.id,
            job.guild_id,
            actor.user_id,
            "linked to the same stems" if twin else "started" if started else "already asked",
        )
        self._asked()
        last_failure = existing.failure if existing is not None and started else None
        return KeepRequest(job, keep, started, last_failure)


def may_attach(job: Job, channel_id: int | None, attach_here: bool) -> bool:
    """Whether the bot may attach files in the job's channel: Discord's word with this ask if it
    came from there, else its word at the /split (jobs from before that was stored: assumed)."""
    if channel_id == job.channel_id:
        return attach_here
    return job.app_permissions is None or bool(job.app_permissions & PERMISSIONS["Attach Files"])


def positive(value: int | None) -> int | None:
    return value if isinstance(value, int) and value > 0 else None
