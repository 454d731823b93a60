"""Keeps: one result's stems kept in Discord, stem by stem (see `bot.keeping`)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any


class KeepStems(enum.StrEnum):
    """Whether a server's members keep their stems in Discord (a per-server setting)."""

    BUTTON = "button"  # a Keep in Discord button on every result: members choose
    ALWAYS = "always"  # every successful result is kept without a click
    OFF = "off"


class KeepState(enum.StrEnum):
    """Where keeping a result in Discord stands."""

    PENDING = "pending"  # asked for; the worker has not started
    WORKING = "working"  # stems are being posted
    KEPT = "kept"  # every stem posted, or noted in the thread as a link
    FAILED = "failed"  # gave up (why is stored); asking again starts over


class KeepPlace(enum.StrEnum):
    """Where a kept result's files are posted."""

    THREAD = "thread"  # a thread on the result message
    REPLIES = "replies"  # replies to the result message, where threads cannot be made
    DM = "dm"  # the DM the result was delivered in


class StemKeepState(enum.StrEnum):
    """Where one stem of a kept result stands."""

    PENDING = "pending"
    POSTING = "posting"  # an upload (or the note that it stays a link) went out; outcome unknown
    POSTED = "posted"
    SKIPPED = "skipped"  # stays a link (why is stored); noted in the thread once its note is sent


UNFINISHED_KEEP_STATES = (KeepState.PENDING, KeepState.WORKING)
"""A keep still being worked on: it may yet be kept, linked or failed."""


@dataclass(frozen=True, slots=True)
class Keep:
    """Keeping one result's stems in Discord (see `bot.keeping`).

    Its transitions say what comes next (`placed`, `packed_smaller`, `kept`, `linked`, `failed`,
    `retrying`, `shown_kept`): each returns the change, which the store applies
    (`Keeps.apply`), and the keep as it stands after, which the worker carries on with instead of
    reading it again."""

    job_id: int
    guild_id: int
    state: KeepState
    requested_by: int | None  # None: kept automatically
    upload_limit: int  # bytes per message
    place: KeepPlace | None = None  # None until the worker has chosen where
    channel_id: int | None = None  # the thread, or the channel or DM the files go to
    anchor_message_id: int | None = None  # the result message the thread is on (or replies answer)
    linked_to: int | None = None  # the job whose keep already holds the same stems
    failure: str | None = None
    attempts: int = 0
    retry_at: float | None = None
    marked: bool = False  # the result message says it is kept
    created_at: float = 0.0
    finished_at: float | None = None

    @property
    def unfinished(self) -> bool:
        return self.state in UNFINISHED_KEEP_STATES

    def placed(self, place: KeepPlace, *, channel_id: int, anchor_message_id: int | None) -> KeepChange:
        """Its files go there (a thread, replies to the result, the DM)."""
        return self._change(place=place, channel_id=channel_id, anchor_message_id=anchor_message_id)

    def packed_smaller(self, upload_limit: int) -> KeepChange:
        """Discord refused a pack the limit allowed: pack smaller from now on (never larger)."""
        return self._change(upload_limit=min(self.upload_limit, upload_limit))

    def kept(self, now: float) -> KeepChange:
        """Every stem is posted or noted: the result is kept (if it was still being worked on)."""
        return self._finish(state=KeepState.KEPT, finished_at=now, failure=None, retry_at=None)

    def linked(self, to: Keep, now: float) -> KeepChange:
        """The same stems are already kept with another job here: this keep points there."""
        return self._finish(
            state=KeepState.KEPT,
            linked_to=to.job_id,
            place=to.place,
            channel_id=to.channel_id,
            anchor_message_id=to.anchor_message_id,
            finished_at=now,
            failure=None,
            retry_at=None,
        )

    def failed(self, why: str, now: float) -> KeepChange:
        """Given up, for `why` (asking again starts over)."""
        return self._finish(state=KeepState.FAILED, failure=why, finished_at=now, retry_at=None)

    def retrying(self, at: float, why: str, *, count: bool = True) -> KeepChange:
        """Discord or the download failed in a way that may pass: try again at `at`. `count`:
        this attempt is one of the failures (a keep waiting for another is not failing)."""
        return self._change(attempts=self.attempts + int(count), retry_at=at, failure=why)

    def shown_kept(self) -> KeepChange:
        """The result message now says the stems are kept, with a link."""
        return self._change(marked=True, retry_at=None)

    def _change(self, **fields: Any) -> KeepChange:
        return KeepChange(self, replace(self, **fields), fields)

    def _finish(self, **fields: Any) -> KeepChange:
        """A change to a finished state, made only while the keep is unfinished (else none)."""
        if not self.unfinished:
            return KeepChange(self, self, {})
        return KeepChange(self, replace(self, **fields), fields, only_from=UNFINISHED_KEEP_STATES)


@dataclass(frozen=True, slots=True)
class KeepChange:
    """One transition of a keep: the fields it writes, the states it may be made from (None: any),
    and the keep as it stands after."""

    before: Keep
    after: Keep
    fields: Mapping[str, Any] = field(default_factory=dict)
    only_from: tuple[KeepState, ...] | None = None


@dataclass(frozen=True, slots=True)
class KeptStem:
    """One stem of a kept result."""

    job_id: int
    position: int  # its place in the job's stems
    filename: str  # the attachment's name: the stem's name and its file's extension
    state: StemKeepState
    size: int | None = None
    skipped_why: str | None = None
    message_id: int | None = None  # the message with the file, or the note that it stays a link
