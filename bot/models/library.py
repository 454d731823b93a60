"""A member's library: pages of their splits, and what asking to cancel one did."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.models.accounts import Refund
from bot.models.jobs import Job
from bot.models.keeps import Keep


@dataclass(frozen=True, slots=True)
class LibraryPage:
    """One page of a member's splits in a server, newest first, from a fixed snapshot."""

    jobs: tuple[Job, ...]
    page: int  # from 0
    pages: int  # at least 1
    total: int
    newest_id: int  # jobs made while paging are not shown, so pages stay stable
    keeps: Mapping[int, Keep] = field(default_factory=dict)  # by job id: those being kept or kept


class CancelOutcome(enum.StrEnum):
    """What asking to cancel a job did."""

    CANCELLED = "cancelled"  # called off and refunded; it will never be sent
    ALREADY_SENT = "already_sent"  # the submit is on the wire or accepted: the API has no cancel
    OTHERS_WAITING = "others_waiting"  # other members' splits follow this one
    FINISHED = "finished"  # it already ended (ready, failed or cancelled)


@dataclass(frozen=True, slots=True)
class Cancellation:
    """What asking to cancel a job did, the job as it is now, and (when it was cancelled and had
    cost something) what came back."""

    outcome: CancelOutcome
    job: Job | None
    refund: Refund | None = None
