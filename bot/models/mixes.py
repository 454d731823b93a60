"""Mixes: a few of a result's stems summed into one file, posted next to the result (issue 20;
see `bot.mixing`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bot.models.keeps import KeepPlace


class MixStems(enum.StrEnum):
    """Whether a server's results offer the Mix stems button (a per-server setting)."""

    ON = "on"
    OFF = "off"


class MixState(enum.StrEnum):
    """Where one mix stands."""

    PENDING = "pending"  # asked for (and paid); the worker has not started
    WORKING = "working"  # stems downloaded and mixed
    POSTING = "posting"  # the upload went out; outcome unknown until it is found or sent again
    POSTED = "posted"
    FAILED = "failed"  # gave up (why is stored; refunded); asking again makes a new mix


@dataclass(frozen=True, slots=True)
class Mix:
    """One mix of a result's stems (see `bot.mixing`)."""

    id: int
    job_id: int
    guild_id: int
    stems: int  # bit mask of the result's stem positions kept in the mix
    state: MixState
    requested_by: int
    price: int  # credits charged for it (0: free)
    upload_limit: int  # bytes the file may have
    filename: str
    place: KeepPlace | None = None  # where it is posted: the result's thread, replies, or the DM
    channel_id: int | None = None
    anchor_message_id: int | None = None  # the result message the thread is on (or replies answer)
    message_id: int | None = None  # the message with the file
    failure: str | None = None
    attempts: int = 0
    retry_at: float | None = None
    reply_application_id: int | None = None  # the ephemeral answer to edit with the link ...
    reply_token: str | None = None
    reply_until: float | None = None  # ... while its token lives
    told: bool = False  # the member was told where it is (or could not be any more)
    created_at: float = 0.0
    finished_at: float | None = None

    @property
    def positions(self) -> tuple[int, ...]:
        """The kept stems' positions in the result, in order."""
        return positions_of(self.stems)

    def __repr__(self) -> str:  # the reply token is a secret: never in a log line
        return f"Mix(id={self.id}, job_id={self.job_id}, state={self.state}, stems={self.positions})"


def mask_of(positions: list[int] | tuple[int, ...] | frozenset[int]) -> int:
    return sum(1 << p for p in set(positions))


def positions_of(mask: int) -> tuple[int, ...]:
    return tuple(p for p in range(mask.bit_length()) if mask >> p & 1)
