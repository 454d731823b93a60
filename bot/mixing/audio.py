"""Mixing audio files: decode each stem with PyAV, sum them, scale the sum so it never clips, and
encode it as MP3 at the highest bitrate that fits the upload limit.

Plain, blocking code with no asyncio and no Discord: the mix worker runs `mix_files` in a mixing
process of its own (`bot.mixing.process`), so the bot's event loop never waits for this code's
turn at the interpreter's lock, while the threads here (PyAV releases the lock while FFmpeg
decodes, filters and encodes) use the machine's cores.

The decoding and summing happen inside FFmpeg filter graphs (`amovie` per stem, `amix`), handed
back `BLOCK_FRAMES` at a time: no Python step per decoded frame, and memory bounded whatever the
stems' length (FFmpeg holds a few frames of each stem). The stems are shared between
`DECODE_LANES` graphs, one decoded by a thread of its own, so decoding uses a second core; NumPy
adds their partial sums. The sum goes to a temporary file of 32-bit floats (its peak is known
only at the end), read back block by block for the encoder (NumPy scales each block). The disk
holds that file (about 21 MB per minute at 44.1 kHz) while the mix is made; `mix_files` refuses
before decoding when the stems are longer than even the lowest bitrate could post.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import tempfile
import threading
from collections.abc import Generator, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.filter import Graph

from bot import reasons
from bot.mixing.outcomes import MixError, MixResult, MixStopped, MixTooLarge, StemUnreadable
from bot.mixing.splice import JOIN_WINDOW_FRAMES, PRE_ROLL_FRAMES, SAMPLES_PER_FRAME, splice
from bot.reasons import because

log = logging.getLogger(__name__)

BITRATES_KBPS = (192, 160, 128, 112, 96)
"""Tried from the first: the mix is posted at the highest of these whose file fits the limit."""
HEADROOM = 0.98
"""The sum's peak after scaling (as a fraction of full scale): a little room for the MP3 encoder's
own overshoot. A sum that peaks lower is left at its level: no stem is ever made louder."""
BLOCK_FRAMES = 1 << 16
"""Sample frames per stem decoded and summed at once (about 1.5 s at 44.1 kHz)."""
DECODE_LANES = 2
"""Filter graphs the stems are shared among, each decoded by a thread of its own: the mixing
thread and one more, so decoding uses the machine's second core (the two partial sums are added
with NumPy)."""
ENCODER_QUALITY: int | None = None
"""LAME's algorithm quality, 0 (best, slowest) to 9 (fastest); None: LAME's own default (3), full
quality. 7 would skip the noise-shaping loop and the best Huffman table split (the encode about
45 % cheaper on music-like audio, but a real loss of quality); with the encode on two cores it is
not needed to make a 4-minute mix in under 10 s (docs/internals/benchmarks.md)."""
LANE_QUEUE = 2
"""Blocks a decoding lane may hold ahead of the mixing thread (each 0.5 MiB at BLOCK_FRAMES)."""
SPLIT_MIN_SECONDS = 20.0
"""Mixes at least this long are encoded in two halves on two threads; shorter ones on one."""
MAX_RATE = 48_000
MIN_RATE = 8_000
CHANNELS = 2
CONTAINER_OVERHEAD = 16 * 1024
"""Bytes an MP3 file carries besides its audio frames (tags, the Xing header), with room to spare."""


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
    left at `dest` then). `stopping`, once set, drops the mix at the next block (MixStopped).
    The sum waits in a scratch file beside `dest` whose name starts with `dest`'s, removed at the
    end (`bot.mixing.process` removes it where the process making the mix was killed)."""
    stopping = stopping or threading.Event()
    if not inputs:
        raise MixError(because(reasons.NOTHING_TO_MIX))
    rate, longest, channels = _probe(inputs)
    floor = BITRATES_KBPS[-1]
    if longest is not None and mp3_bytes(longest, floor) > max_bytes:
        raise MixTooLarge(because(reasons.MIX_TOO_LARGE, floor=floor))
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=f"{dest.name}.", suffix=".sum", dir=dest.parent)
    os.close(handle)
    try:
        frames, peak = _sum_to(Path(scratch), inputs, rate, channels, stopping)
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
        raise MixTooLarge(because(reasons.MIX_TOO_LARGE, floor=floor))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)


def _probe(inputs: Sequence[Path]) -> tuple[int, float | None, list[int]]:
    """The rate to mix at (the highest of the stems', within MIN_RATE..MAX_RATE), the longest
    stem's length in seconds as its container announces it (None where none says), and each
    stem's number of channels."""
    rates: list[int] = []
    channels: list[int] = []
    longest: float | None = None
    for index, path in enumerate(inputs):
        try:
            with av.open(str(path)) as container:
                if not container.streams.audio:
                    raise StemUnreadable(index, because(reasons.NO_AUDIO_IN_FILE))
                stream = container.streams.audio[0]
                rates.append(int(stream.codec_context.sample_rate or stream.rate or 0))
                channels.append(stream.codec_context.layout.nb_channels)
                seconds = _announced_seconds(container, stream)
                if seconds is not None:
                    longest = max(longest or 0.0, seconds)
        except av.FFmpegError as error:
            raise StemUnreadable(
                index, because(reasons.FILE_NOT_AUDIO, error=type(error).__name__)
            ) from None
    rate = max((r for r in rates if r > 0), default=44_100)
    return min(MAX_RATE, max(MIN_RATE, rate)), longest, channels


def _announced_seconds(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _mixing_graph(inputs: Sequence[Path], rate: int, channels: Sequence[int]) -> Graph:
    """FFmpeg's filter graph that reads every input (`amovie`), brings it to stereo at `rate`,
    and sums them sample by sample (`amix`, unscaled), padding the shorter ones with silence: the
    decoding and summing happen in FFmpeg, without a Python step per decoded frame. Options go
    in as a dictionary, never parsed from a string, so a file name is only a file name."""
    graph = Graph()
    mix = graph.add("amix", inputs=str(len(inputs)), duration="longest", normalize="0")
    for index, (path, count) in enumerate(zip(inputs, channels, strict=True)):
        try:
            source = graph.add("amovie", filename=str(path))
        except av.FFmpegError as error:
            raise StemUnreadable(
                index, because(reasons.FILE_NOT_AUDIO, error=type(error).__name__)
            ) from None
        if count == 1:
            # FFmpeg's own upmix puts a mono stem 3 dB lower in each channel; copied into both
            # channels it keeps its level.
            widened = graph.add("pan", "stereo|c0=c0|c1=c0")
            source.link_to(widened)
            source = widened
        # More than two channels are folded to stereo by FFmpeg's own downmix.
        shaped = graph.add("aformat", sample_fmts="fltp", sample_rates=str(rate), channel_layouts="stereo")
        source.link_to(shaped)
        shaped.link_to(mix, 0, index)
    sink = graph.add("abuffersink")
    mix.link_to(sink)
    graph.configure()
    graph.set_audio_frame_size(BLOCK_FRAMES)
    return graph


def _lanes(count: int, lanes: int) -> list[list[int]]:
    """Which inputs each of (at most) `lanes` decoding lanes takes: every `lanes`-th, so the
    lanes hold about as many stems each (the calling thread's lane, the last, never more)."""
    lanes = max(1, min(lanes, count))
    return [list(range(lane, count, lanes)) for lane in range(lanes)]


def _lane_graph(inputs: Sequence[Path], lane: Sequence[int], rate: int, channels: Sequence[int]) -> Graph:
    """The mixing graph of one lane's inputs; a stem it cannot open is named by its place in all
    the inputs."""
    try:
        return _mixing_graph([inputs[i] for i in lane], rate, [channels[i] for i in lane])
    except StemUnreadable as error:
        raise StemUnreadable(lane[error.index], error.reason) from None


def _pull(graph: Graph) -> np.ndarray | None:
    """The graph's next block of summed samples (planar: channels x frames), None at the end."""
    try:
        return graph.pull().to_ndarray()
    except (EOFError, av.error.EOFError):
        return None


class _Lane:
    """A graph decoded and summed by a thread of its own, a block ahead: its blocks wait in a
    queue of `LANE_QUEUE` (so memory stays bounded whatever the stems' length)."""

    def __init__(self, graph: Graph) -> None:
        self._graph = graph
        self._blocks: queue.Queue[np.ndarray | BaseException | None] = queue.Queue(LANE_QUEUE)
        self._done = threading.Event()
        # A new thread takes the CPU priority of the thread that starts it (Linux gives each
        # thread its own): the mixing thread's, below the event loop's.
        self._thread = threading.Thread(target=self._run, name="mixer-lane", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._done.is_set():
                block = _pull(self._graph)
                self._put(block)
                if block is None:
                    return
        except BaseException as error:  # handed over to the mixing thread, which raises it
            self._put(error)

    def _put(self, item: np.ndarray | BaseException | None) -> None:
        while not self._done.is_set():
            try:
                self._blocks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self) -> np.ndarray | None:
        item = self._blocks.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        """Stop the thread (at its next block) and wait for it: nothing runs on after the mix."""
        self._done.set()
        self._thread.join()


def summed_blocks(
    inputs: Sequence[Path],
    rate: int,
    channels: Sequence[int],
    stopping: threading.Event,
    *,
    lanes: int = DECODE_LANES,
) -> Generator[np.ndarray]:
    """The inputs' sum, block by block (planar float32: channels x frames, `BLOCK_FRAMES` each,
    only the last shorter), aligned at their start, the shorter ones padded with silence.

    The inputs are shared among `lanes` filter graphs: the others decode and sum in threads of
    their own while this thread runs the last one and adds the lanes' blocks (aligned: every
    graph hands back `BLOCK_FRAMES` at a time, only its last block shorter). Raises
    StemUnreadable, MixStopped."""
    shares = _lanes(len(inputs), lanes)
    graphs = [_lane_graph(inputs, share, rate, channels) for share in shares]
    helpers: list[_Lane] = []
    try:
        helpers = [_Lane(graph) for graph in graphs[:-1]]
        running: list[_Lane | Graph] = [*helpers, graphs[-1]]
        frames = 0
        while running:
            if stopping.is_set():
                raise MixStopped()
            parts: list[np.ndarray] = []
            for source in list(running):
                block = source.next() if isinstance(source, _Lane) else _pull(source)
                if block is None:
                    running.remove(source)
                else:
                    parts.append(block)
            if not parts:
                break
            if frames % BLOCK_FRAMES:
                # Only the last block may be short: a short one in the middle would shift every
                # block after it when the encoder reads them back.
                raise MixError(because(reasons.NOT_MIXED, error="BlocksOutOfStep"))
            total = _add(parts)
            frames += total.shape[1]
            yield total
    except av.FFmpegError as error:
        raise _which_stem_fails(inputs, error) from None
    finally:
        for lane in helpers:
            lane.close()


def _sum_to(
    scratch: Path, inputs: Sequence[Path], rate: int, channels: Sequence[int], stopping: threading.Event
) -> tuple[int, float]:
    """Sum every input block by block into `scratch` (float32, each block planar: its left
    channel, then its right, as the encoder takes it); how many sample frames, and the sum's
    peak (absolute)."""
    frames = 0
    peak = 0.0
    with scratch.open("wb") as out:
        blocks = contextlib.closing(summed_blocks(inputs, rate, channels, stopping))
        with blocks as sums:
            for total in sums:
                if total.size:
                    peak = max(peak, float(total.max()), -float(total.min()))
                out.write(total.data)
                frames += total.shape[1]
    return frames, peak


def _add(parts: Sequence[np.ndarray]) -> np.ndarray:
    """The lanes' blocks summed; shorter ones (a lane that ended within this block) count as
    silence after their end. Returned C-contiguous, to be written as it is."""
    ordered = sorted(parts, key=lambda block: block.shape[1], reverse=True)
    total = np.ascontiguousarray(ordered[0], dtype=np.float32)
    if len(ordered) > 1:
        total = total.copy()  # never add into a decoder's own buffer
        for block in ordered[1:]:
            total[:, : block.shape[1]] += block
    return total


def _which_stem_fails(inputs: Sequence[Path], error: av.FFmpegError) -> MixError:
    """The graph failed while decoding: find the stem that does (rare, so decoding each again is
    fine), to name it."""
    for index, path in enumerate(inputs):
        try:
            with av.open(str(path)) as container:
                for _ in container.decode(container.streams.audio[0]):
                    pass
        except av.FFmpegError as own:
            return StemUnreadable(index, because(reasons.NOT_DECODED, error=type(own).__name__))
    return MixError(because(reasons.NOT_MIXED, error=type(error).__name__))


def _encode(
    scratch: Path, dest: Path, *, rate: int, kbps: int, gain: float, stopping: threading.Event
) -> None:
    """Encode the summed samples in `scratch`, times `gain`, as an MP3 at `kbps` into `dest`.
    A long enough mix at an MPEG-1 rate is encoded in two halves on two threads, joined at a
    frame boundary (`bot.mixing.splice`); where no frame qualifies, the first encoder goes on."""
    total = scratch.stat().st_size // (CHANNELS * 4)
    with av.open(str(dest), "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="stereo", options=_encoder_options())
        stream.bit_rate = kbps * 1000
        join = (total // 2) // SAMPLES_PER_FRAME
        if rate < 32_000 or total < SPLIT_MIN_SECONDS * rate:
            join = 0
        if join:
            second_from = (join - PRE_ROLL_FRAMES) * SAMPLES_PER_FRAME
            first_to = (join + JOIN_WINDOW_FRAMES) * SAMPLES_PER_FRAME
            later = _SecondHalf(scratch, second_from, total, rate, kbps, gain, stopping)
            try:
                first = _encoded(stream, _frames(scratch, 0, first_to, rate, gain, stopping))
            finally:
                second = later.result()
            joined = splice(
                [bytes(p) for p in first], [bytes(p) for p in second], join, join - PRE_ROLL_FRAMES
            )
            if joined is not None:
                at, frames = joined
                for packet, data in zip(first[:at], frames, strict=False):
                    if bytes(packet) != data:
                        packet.update(data)
                    container.mux(packet)
                for packet in second[at - join + PRE_ROLL_FRAMES :]:
                    shift = Fraction(second_from, rate) / packet.time_base
                    packet.pts = None if packet.pts is None else packet.pts + int(shift)
                    packet.dts = None if packet.dts is None else packet.dts + int(shift)
                    packet.stream = stream
                    container.mux(packet)
                return
            log.info("mix of %s samples: no frame to join the halves at; encoding on one thread", total)
            rest = _encoded(stream, _frames(scratch, first_to, total, rate, gain, stopping))
            for packet in [*first, *rest]:
                container.mux(packet)
        else:
            for packet in _encoded(stream, _frames(scratch, 0, total, rate, gain, stopping)):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _encoder_options() -> dict[str, str]:
    return {} if ENCODER_QUALITY is None else {"compression_level": str(ENCODER_QUALITY)}


def _frames(
    scratch: Path, start: int, stop: int, rate: int, gain: float, stopping: threading.Event
) -> Iterator[av.AudioFrame]:
    """Sample frames `start` to `stop` of the sum in `scratch`, times `gain`, as audio frames
    for the encoder (the file holds planar blocks of `BLOCK_FRAMES`, only the last shorter)."""
    with scratch.open("rb") as source:
        for block in range(start // BLOCK_FRAMES, -(-stop // BLOCK_FRAMES)):
            if stopping.is_set():
                raise MixStopped()
            source.seek(block * BLOCK_FRAMES * CHANNELS * 4)
            raw = source.read(BLOCK_FRAMES * CHANNELS * 4)
            if not raw:
                return
            # One block as `_sum_to` wrote it: planar, as the encoder takes it.
            samples = np.frombuffer(raw, dtype=np.float32).reshape(CHANNELS, -1)
            first = block * BLOCK_FRAMES
            samples = samples[:, max(0, start - first) : stop - first]
            if gain != 1.0:
                samples = samples * np.float32(gain)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp", layout="stereo")
            frame.sample_rate = rate
            yield frame


def _encoded(
    encoder: av.AudioStream | av.AudioCodecContext, frames: Iterator[av.AudioFrame]
) -> list[av.Packet[Any]]:
    return [packet for frame in frames for packet in encoder.encode(frame)]


class _SecondHalf:
    """The second half of a mix encoded by an encoder of its own, in a thread of its own (at
    the mixing thread's priority, which it takes at its start); its packets kept in memory (at
    most half the file)."""

    def __init__(
        self,
        scratch: Path,
        start: int,
        stop: int,
        rate: int,
        kbps: int,
        gain: float,
        stopping: threading.Event,
    ) -> None:
        self._outcome: list[av.Packet[Any]] | BaseException = []
        encoder = av.AudioCodecContext.create("libmp3lame", "w")
        encoder.sample_rate = rate
        encoder.layout = "stereo"
        encoder.format = "fltp"
        encoder.bit_rate = kbps * 1000
        encoder.options = _encoder_options()

        def run() -> None:
            try:
                packets = _encoded(encoder, _frames(scratch, start, stop, rate, gain, stopping))
                self._outcome = packets + list(encoder.encode(None))
            except BaseException as error:  # raised in the mixing thread by result()
                self._outcome = error

        self._thread = threading.Thread(target=run, name="mixer-encoder", daemon=True)
        self._thread.start()

    def result(self) -> list[av.Packet[Any]]:
        self._thread.join()
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        return self._outcome
