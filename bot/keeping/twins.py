"""Twins: other keeps of the same stems in the same server (shared, reused or split again). A
kept twin next to a result stands for it (the keep is linked, not uploaded again); a twin still at
work is waited for."""

from __future__ import annotations

from bot.models import Job, Keep, KeepPlace, KeepState
from bot.store import Store


class Twins:
    """The keeps of the same stems next to a result."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def kept(self, job: Job) -> Keep | None:
        """The keep of the same stems in this server that holds the files, if one is done, next
        to this result (see `here`)."""
        for other in await self.here(job):
            if other.state is KeepState.KEPT and other.linked_to is None:
                return other
        return None

    async def here(self, job: Job) -> list[Keep]:
        """The keeps of the same stems whose result is in the same channel as this job's: only
        their files may stand for this one's. A thread elsewhere may be in a channel the member
        cannot see (a staff-only one): a link there would reveal it and leave nothing where their
        result is, so the stems are kept again here. A member's DM is theirs alone."""
        here = await self._result_channel(job.id)
        if here is None:
            return []
        twins = []
        for other in await self._store.keeps.same_track(job):
            if other.place is KeepPlace.DM:
                continue
            if await self._result_channel(other.job_id) == here:
                twins.append(other)
        return twins

    async def at_work(self, job: Job, keep: Keep) -> bool:
        """Whether a keep of the same stems here, asked for before this one, is still being
        worked on: this one then waits for it and links to it rather than uploading the files
        twice. One that has begun posting carries on (it has a place); a twin that would not be
        linked (a DM, another channel) is not waited for."""
        if keep.place is not None:
            return False
        return any(
            other.state in (KeepState.PENDING, KeepState.WORKING)
            and (other.created_at, other.job_id) < (keep.created_at, keep.job_id)
            for other in await self.here(job)
        )

    async def _result_channel(self, job_id: int) -> int | None:
        """The channel the job's result was posted in: where its keep's thread opens (the
        thread's parent) or its replies go."""
        result = await self._store.deliveries.result_messages(job_id)
        return result[0].channel_id if result else None
