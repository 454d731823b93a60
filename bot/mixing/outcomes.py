"""What making a mix ends in: the file made (`MixResult`) or why not (`MixError` and its kinds).

Apart from `bot.mixing.audio` so the bot can read a mixing process's answer without importing
NumPy and PyAV itself: only the mixing processes load them. Every exception here pickles (it
crosses the process boundary as it is).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class MixError(Exception):
    """The mix could not be made. `reason` (also `str()`) is plain words, safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StemUnreadable(MixError):
    """One stem's file could not be decoded; `index` is its place in the inputs."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index

    def __reduce__(self) -> tuple[type[StemUnreadable], tuple[int, str]]:
        return (type(self), (self.index, self.reason))


class MixTooLarge(MixError):
    """Even the lowest bitrate would make a file over the upload limit."""


class MixProcessLost(MixError):
    """The process making the mix ended before it answered (killed, or crashed in FFmpeg): that
    mix fails (a file that crashes the decoder would crash it again)."""


class MixStopped(Exception):
    """The bot is stopping: the mix was dropped between two blocks (made again after the restart)."""


@dataclass(frozen=True, slots=True)
class MixResult:
    path: Path
    size: int  # bytes
    bitrate_kbps: int
    seconds: float
    sample_rate: int
    gain: float  # what the sum was multiplied by (1.0: it did not need scaling)
