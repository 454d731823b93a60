"""A member's library: every split they made in a server, to find again, show, share or cancel.

Who may do what: members their own jobs; moderators (see `bot.quota`) any job of their server.
Knows members only as integer ids.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.errors import NotAModerator, NotYourJob, UnknownJob
from bot.i18n import N_
from bot.models import Cancellation, CancelOutcome, Job, Keep, LibraryPage, Refund
from bot.quota import Actor, QuotaService
from bot.runner import Deliverer
from bot.store import Store

log = logging.getLogger(__name__)

LIBRARY_PAGE_SIZE = 10
SUGGESTIONS = 25  # Discord shows at most 25 autocomplete choices


class LibraryService:
    def __init__(self, store: Store, quota: QuotaService, deliverer: Deliverer) -> None:
        self._store = store
        self._quota = quota
        self._deliverer = deliverer

    async def page(
        self, guild_id: int, actor: Actor, member_id: int, *, page: int = 0, newest_id: int | None = None
    ) -> LibraryPage:
        """A page of a member's splits in this server, newest first, with the keeps of those
        being kept in Discord. Anyone may see their own."""
        if member_id != actor.user_id and not await self._quota.is_moderator(guild_id, actor):
            # TRANSLATORS: completes "Only moderators can …".
            raise NotAModerator(N_("see other members' splits"), None)
        shown = await self._store.jobs.library_page(
            guild_id, member_id, page=page, page_size=LIBRARY_PAGE_SIZE, newest_id=newest_id
        )
        keeps = await self._store.keeps.of_jobs(job.id for job in shown.jobs)
        return replace(shown, keeps=keeps)

    async def job(self, guild_id: int, actor: Actor, job_id: int, *, action: str = "see") -> Job:
        """Job #`job_id` of this server, if the actor may `action` it (their own, or a moderator)."""
        job = await self._store.jobs.get(job_id)
        if job is None or job.guild_id != guild_id:
            raise UnknownJob(job_id)
        if job.user_id != actor.user_id and not await self._quota.is_moderator(guild_id, actor):
            raise NotYourJob(job_id, action)
        return job

    async def keep_of(self, job: Job) -> Keep | None:
        """How keeping the job's stems in Discord stands, if anyone asked (pass a job `job` gave)."""
        return await self._store.keeps.get(job.id)

    async def refund_of(self, job: Job) -> Refund | None:
        """What came back of a cancelled or failed job's credits (pass a job `job` gave)."""
        return await self._store.accounts.refund_of(job.id)

    async def track_of(self, guild_id: int, job_id: int) -> Job:
        """Job #`job_id` of this server, whoever made it: its track is anyone's to split (the
        result message that offers it is public)."""
        job = await self._store.jobs.get(job_id)
        if job is None or job.guild_id != guild_id:
            raise UnknownJob(job_id)
        return job

    async def suggestions(self, guild_id: int, actor: Actor, typed: str = "") -> list[Job]:
        """Jobs to offer as someone types a job number: their own recent ones, or (moderators)
        the server's."""
        member = None if await self._quota.is_moderator(guild_id, actor) else actor.user_id
        return await self._store.jobs.recent(guild_id, member, SUGGESTIONS, number=typed)

    async def server_suggestions(self, guild_id: int, typed: str = "") -> list[Job]:
        """Jobs of the whole server to offer as someone types a job number, for what any member may
        do with any job there (`/stems mix`: remix channels are shared)."""
        return await self._store.jobs.recent(guild_id, None, SUGGESTIONS, number=typed)

    async def own_recent(self, guild_id: int, user_id: int) -> list[Job]:
        """The member's own recent splits here, for suggesting the ids of a new one."""
        return await self._store.jobs.recent(guild_id, user_id, SUGGESTIONS)

    async def cancel(
        self, guild_id: int, actor: Actor, job_id: int, *, mark_message: bool = True
    ) -> Cancellation:
        """Call off a job nothing has been sent for (see `Reservations.cancel`): the job as it is
        now (never None) and what came back. The member's own cancel counts their roles' refills;
        a moderator's refunds it in full. `mark_message`: the job's queued message is updated here
        (a Cancel button press updates it itself)."""
        job = await self.job(guild_id, actor, job_id, action="cancel")
        own = actor.user_id == job.user_id
        done = await self._store.reservations.cancel(job.id, member_roles=actor.role_ids if own else None)
        if mark_message and done.outcome is CancelOutcome.CANCELLED and done.job is not None:
            await self._deliverer.show_cancelled(done.job, done.refund)
        log.info(
            "job %s guild=%s member=%s: cancel asked by %s: %s%s",
            job.id,
            guild_id,
            job.user_id,
            actor.user_id,
            done.outcome,
            f" ({done.refund.total} back, {done.refund.expired} expired)" if done.refund else "",
        )
        return replace(done, job=done.job or job)

    async def reminders(self, user_id: int) -> bool:
        return await self._store.members.reminders(user_id)

    async def set_reminders(self, user_id: int, enabled: bool) -> None:
        await self._store.members.set_reminders(user_id, enabled)
