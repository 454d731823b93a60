"""Mixing audio files: decode each stem with PyAV, sum them with NumPy block by block, scale the sum
so it never clips, and encode it as MP3 at the highest bitrate that fits the upload limit.

Plain, blocking code with no asyncio and no Discord: the mix worker runs `mix_files` in a worker
thread, so the event loop goes on answering while FFmpeg and NumPy work (both release the GIL
for their heavy parts).

Memory stays bounded whatever the stems' length: every stem is read `BLOCK_FRAMES` at a time and
only one block of each is decoded at once; the sum goes to a temporary file of 32-bit floats (its
peak is known only at the end), read back block by block for the encoder. The disk holds that
file (about 21 MB per minute at 44.1 kHz) for as long as the mix takes; `mix_files` refuses
before decoding when the stems are longer than even the lowest bitrate could post.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.audio.resampler import AudioResampler

log = logging.getLogger(__name__)

BITRATES_KBPS = (192, 160, 128, 112, 96)
"""Tried from the first: the mix is posted at the highest of these whose file fits the limit."""
HEADROOM = 0.98
"""The sum's peak after scaling (as a fraction of full scale): a little room for the MP3 encoder's
own overshoot. A sum that peaks lower is left at its level: no stem is ever made louder."""
BLOCK_FRAMES = 1 << 16
"""Sample frames per stem decoded and summed at once (about 1.5 s at 44.1 kHz)."""
MAX_RATE = 48_000
MIN_RATE = 8_000
CHANNELS = 2
CONTAINER_OVERHEAD = 16 * 1024
"""Bytes an MP3 file carries besides its audio frames (tags, the Xing header), with room to spare."""


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


class MixTooLarge(MixError):
    """Even the lowest bitrate would make a file over the upload limit."""


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


def mp3_bytes(seconds: float, kbps: int) -> int:
    """How large an MP3 of `seconds` at `kbps` is, at most (constant bitrate, plus its headers)."""
    return math.ceil(seconds * kbps * 1000 / 8) + CONTAINER_OVERHEAD


def bitrate_for(seconds: float, max_bytes: int) -> int | None:
    """The highest bitrate whose MP3 of `seconds` fits in `max_bytes` (None: not even the lowest)."""
    return next((kbps for kbps in BITRATES_KBPS if mp3_bytes(seconds, kbps) <= max_bytes), None)


def mix_files(
    inputs: Sequence[Path], dest: Path, *, max_bytes: int, stopping: threading.Event | None = None
) -> MixResult:
    """Mix the audio files `inputs` into the MP3 `dest`, at most `max_bytes` long: aligned at
    their start (shorter ones padded with silence), resampled to one rate in stereo, summed and
    scaled by the sum's peak so no sample clips. Raises StemUnreadable, MixTooLarge (nothing is
    left at `dest` then). `stopping`, once set, drops the mix at the next block (MixStopped)."""
    stopping = stopping or threading.Event()
    if not inputs:
        raise MixError("there is nothing to mix")
    rate, longest = _probe(inputs)
    floor = BITRATES_KBPS[-1]
    if longest is not None and mp3_bytes(longest, floor) > max_bytes:
        raise MixTooLarge(f"the mix would be too large to post here, even at {floor} kbps")
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=f"{dest.name}.", suffix=".sum", dir=dest.parent)
    os.close(handle)
    try:
        frames, peak = _sum_to(Path(scratch), inputs, rate, stopping)
        seconds = frames / rate
        gain = 1.0 if peak <= HEADROOM else HEADROOM / peak
        for kbps in BITRATES_KBPS:
            if mp3_bytes(seconds, kbps) > max_bytes:
                continue
            _encode(Path(scratch), dest, rate=rate, kbps=kbps, gain=gain, stopping=stopping)
            size = dest.stat().st_size
            if size <= max_bytes:
                return MixResult(dest, size, kbps, seconds, rate, gain)
            log.info(
                "mix of %.0f s at %s kbps is %s bytes, over %s; trying lower", seconds, kbps, size, max_bytes
            )
        with contextlib.suppress(FileNotFoundError):
            dest.unlink()
        raise MixTooLarge(f"the mix would be too large to post here, even at {floor} kbps")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)


def _probe(inputs: Sequence[Path]) -> tuple[int, float | None]:
    """The rate to mix at (the highest of the stems', within MIN_RATE..MAX_RATE) and the longest
    stem's length in seconds as its container announces it (None where none says)."""
    rates: list[int] = []
    longest: float | None = None
    for index, path in enumerate(inputs):
        try:
            with av.open(str(path)) as container:
                if not container.streams.audio:
                    raise StemUnreadable(index, "the file holds no audio")
                stream = container.streams.audio[0]
                rates.append(int(stream.codec_context.sample_rate or stream.rate or 0))
                seconds = _announced_seconds(container, stream)
                if seconds is not None:
                    longest = max(longest or 0.0, seconds)
        except av.FFmpegError as error:
            raise StemUnreadable(
                index, f"the file could not be read as audio ({type(error).__name__})"
            ) from None
    rate = max((r for r in rates if r > 0), default=44_100)
    return min(MAX_RATE, max(MIN_RATE, rate)), longest


def _announced_seconds(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


class _StemReader:
    """One stem decoded at the mix's rate in stereo, handed out in blocks of a given length."""

    def __init__(self, index: int, path: Path, rate: int) -> None:
        self.index = index
        try:
            self._container = av.open(str(path))
        except av.FFmpegError as error:
            raise StemUnreadable(
                index, f"the file could not be read as audio ({type(error).__name__})"
            ) from None
        self._frames = self._decoded(rate)
        self._pending: list[np.ndarray] = []
        self._pending_frames = 0
        self.done = False

    def _decoded(self, rate: int) -> Generator[np.ndarray, None, None]:
        stream = self._container.streams.audio[0]
        channels = stream.codec_context.layout.nb_channels
        # FFmpeg's own upmix puts a mono stem 3 dB lower in each channel; copied into both channels
        # it keeps its level. More than two channels are folded to stereo by FFmpeg.
        layout = "stereo" if channels > CHANNELS else stream.codec_context.layout.name
        # Handed out in blocks of BLOCK_FRAMES: the MP3 decoder's frames are 1152 samples, and
        # turning each into an array of its own costs more than decoding it.
        resampler = AudioResampler(format="fltp", layout=layout, rate=rate, frame_size=BLOCK_FRAMES)
        try:
            for frame in self._container.decode(stream):
                for out in resampler.resample(frame):
                    yield _stereo(out.to_ndarray())
            for out in resampler.resample(None):
                yield _stereo(out.to_ndarray())
        except av.FFmpegError as error:
            raise StemUnreadable(
                self.index, f"the audio could not be decoded ({type(error).__name__})"
            ) from None

    def read(self, frames: int) -> np.ndarray:
        """The next `frames` sample frames, shape (2, n); fewer only at the end (0: finished)."""
        while self._pending_frames < frames and not self.done:
            try:
                block = next(self._frames)
            except StopIteration:
                self.done = True
                break
            self._pending.append(block)
            self._pending_frames += block.shape[1]
        if not self._pending:
            return np.zeros((CHANNELS, 0), dtype=np.float32)
        joined = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending, axis=1)
        out, rest = joined[:, :frames], joined[:, frames:]
        self._pending = [rest] if rest.shape[1] else []
        self._pending_frames = rest.shape[1]
        return out

    def close(self) -> None:
        self._frames.close()
        self._container.close()


def _stereo(block: np.ndarray) -> np.ndarray:
    return np.repeat(block, CHANNELS, axis=0) if block.shape[0] == 1 else block


def _sum_to(scratch: Path, inputs: Sequence[Path], rate: int, stopping: threading.Event) -> tuple[int, float]:
    """Sum every input block by block into `scratch` (float32, interleaved stereo); how many
    sample frames, and the sum's peak (absolute)."""
    readers: list[_StemReader] = []
    frames = 0
    peak = 0.0
    try:
        for index, path in enumerate(inputs):
            readers.append(_StemReader(index, path, rate))
        with scratch.open("wb") as out:
            total = np.zeros((CHANNELS, BLOCK_FRAMES), dtype=np.float32)
            while True:
                if stopping.is_set():
                    raise MixStopped()
                total.fill(0.0)
                length = 0
                for reader in readers:
                    if reader.done and not reader._pending:
                        continue
                    block = reader.read(BLOCK_FRAMES)
                    total[:, : block.shape[1]] += block
                    length = max(length, block.shape[1])
                if length == 0:
                    break
                part = total[:, :length]
                peak = max(peak, float(np.max(np.abs(part))))
                out.write(np.ascontiguousarray(part.T).tobytes())
                frames += length
    finally:
        for reader in readers:
            reader.close()
    return frames, peak


def _encode(
    scratch: Path, dest: Path, *, rate: int, kbps: int, gain: float, stopping: threading.Event
) -> None:
    """Encode the summed samples in `scratch`, times `gain`, as an MP3 at `kbps` into `dest`."""
    with av.open(str(dest), "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="stereo")
        stream.bit_rate = kbps * 1000
        with scratch.open("rb") as source:
            while True:
                if stopping.is_set():
                    raise MixStopped()
                raw = source.read(BLOCK_FRAMES * CHANNELS * 4)
                if not raw:
                    break
                samples = np.frombuffer(raw, dtype=np.float32).reshape(-1, CHANNELS).T * np.float32(gain)
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(samples), format="fltp", layout="stereo"
                )
                frame.sample_rate = rate
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
