"""What the keeper needs from Discord and from the file host: the `Poster` (implemented by the
Discord side, `bot.discord_side.keeper`), the `Downloader`, and the outcomes they report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.downloads import Downloaded
from bot.models import DeliveredMessage, Job, Keep, KeptStem


class PostRetry(Exception):
    """Discord failed in a way that may pass (5xx, network, rate limit): try again later. Whether
    the request took effect is unknown."""


class PlaceRefused(Exception):
    """Discord refused for good: no permission here, or a channel that cannot hold this. `reason`
    is plain words, safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ThreadsUnavailable(PlaceRefused):
    """A thread cannot be opened on this message (permission, or a channel without threads)."""


class UploadTooLarge(Exception):
    """Discord answered 413: the files of this message together are over what it accepts. Nothing
    was posted."""


@dataclass(frozen=True, slots=True)
class Upload:
    path: Path
    filename: str


@dataclass(frozen=True, slots=True)
class PostedMessage:
    """One of the bot's own messages in a place, as far as finding what it posted needs."""

    message_id: int
    content: str
    filenames: tuple[str, ...]


class Poster(Protocol):
    """Posts a kept result's files (the Discord side, `bot.discord_side.keeper`)."""

    async def open_thread(self, job: Job, anchor: DeliveredMessage) -> int:
        """Open a thread on the result message `anchor`, or find the one already on it; its id.
        Raises ThreadsUnavailable, PostRetry."""
        ...

    async def post_files(
        self, job: Job, keep: Keep, files: Sequence[Upload], *, first: bool, key: str
    ) -> int:
        """Post one message with these files in the keep's place (for REPLIES, a reply to its
        anchor), led by a few words if it is the `first`; its id. `key` names this message's
        content: the same key sent again within minutes must not post it twice (Discord's
        enforced nonce). Raises UploadTooLarge, PlaceRefused, PostRetry."""
        ...

    async def post_note(
        self, job: Job, keep: Keep, stems: Sequence[tuple[KeptStem, str]], *, key: str
    ) -> int:
        """Post the note that these stems (each with its URL) stay links, and why, naming each
        by its filename; its id. Raises PlaceRefused, PostRetry."""
        ...

    async def recent(self, keep: Keep) -> list[PostedMessage]:
        """The bot's own recent messages in the keep's place. Raises PostRetry."""
        ...

    async def show_kept(self, job: Job, keep: Keep, result: list[DeliveredMessage]) -> None:
        """Make the result's messages say the stems are kept, with a link. Raises PostRetry."""
        ...


class Downloader(Protocol):
    """Fetches one stem into `dest`, at most `max_bytes` (`bot.downloads.download_stem`)."""

    async def __call__(self, url: str, dest: Path, max_bytes: int) -> Downloaded: ...
