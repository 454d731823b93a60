"""Keeps: one result's stems kept in Discord, stem by stem (see `bot.keeping`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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


@dataclass(frozen=True, slots=True)
class Keep:
    """Keeping one result's stems in Discord (see `bot.keeping`)."""

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
