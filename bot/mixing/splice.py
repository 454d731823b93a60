"""Joining two MP3 encodings of one signal at a frame boundary, so a mix's encode runs on two
cores: the first half by one LAME encoder, the second by another that starts `PRE_ROLL_FRAMES`
early (its filter bank and psychoacoustic model warmed on the same samples), their frames joined
where both encoders agree well enough for a decoder not to notice.

An MPEG-1 Layer III frame's audio data may begin in the frames before it (the bit reservoir:
`main_data_begin` bytes back). Where the second encoder's frame `k` reaches back `m` bytes, those
bytes are copied into the last `m` bytes that the first encoder's frames before `k` left for its
own frame `k` (which is dropped), so nothing the first half's frames need is overwritten. The
join is made only where the granule before it has the same window (block type) in both
encodings, so the decoder overlaps the first encoding's last granule with a granule whose window
was chosen to follow that same window, and where the first encoding left room enough. Where
no frame qualifies, `splice` returns None and the caller encodes the rest with the first
encoder: slower, never wrong.

Plain byte work on whole frames; no FFmpeg, no Discord.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SAMPLES_PER_FRAME = 1152
"""Sample frames in one MPEG-1 Layer III frame."""
PRE_ROLL_FRAMES = 8
"""How many frames before the join the second encoder starts (its analysis warmed up)."""
JOIN_WINDOW_FRAMES = 32
"""How many frames after the midpoint the first encoder runs on, to find a frame to join at."""


@dataclass(frozen=True, slots=True)
class FrameLayout:
    """What the join needs of one frame: how far back its audio data begins, where its own
    audio-data bytes start within it, and its second granule's window in each channel
    (window switching, block type and mixed-block flags)."""

    main_data_begin: int
    data_start: int
    second_granule_windows: tuple[int, ...]


def layout(frame: bytes) -> FrameLayout | None:
    """The frame's layout, or None where it is not one whole MPEG-1 Layer III frame."""
    if len(frame) < 4:
        return None
    header = int.from_bytes(frame[:4], "big")
    sync, version, layer = header >> 21, (header >> 19) & 3, (header >> 17) & 3
    if sync != 0x7FF or version != 3 or layer != 1:
        return None
    protected = not (header >> 16) & 1
    channels = 1 if (header >> 6) & 3 == 3 else 2
    side_bytes = 17 if channels == 1 else 32
    start = 4 + (2 if protected else 0)
    if len(frame) < start + side_bytes:
        return None
    bits = int.from_bytes(frame[start : start + side_bytes], "big")
    width = side_bytes * 8

    def field(at: int, size: int) -> int:
        return (bits >> (width - at - size)) & ((1 << size) - 1)

    # main_data_begin 9 bits, private bits (5 mono, 3 stereo), scfsi 4 per channel, then 59
    # bits per granule and channel; in each, window_switching_flag is bit 33, then block_type
    # (2 bits) and mixed_block_flag, which matter only where the flag is set.
    at = 9 + (5 if channels == 1 else 3) + 4 * channels + 59 * channels  # granule 1, channel 0
    windows = tuple(
        field(at + 59 * ch + 33, 4) if field(at + 59 * ch + 33, 1) else 0 for ch in range(channels)
    )
    return FrameLayout(field(0, 9), start + side_bytes, windows)


def splice(
    first: Sequence[bytes], second: Sequence[bytes], join: int, offset: int
) -> tuple[int, list[bytes]] | None:
    """The frames of `first` before the join, then `second`'s from the join on, `first`'s last
    frames patched with the reservoir bytes `second`'s join frame reaches back to. `second`'s
    frame `i` is `first`'s frame `i + offset` (it started `offset` frames later); the join is
    tried from frame `join` on, while both have frames. The frame joined at and the frames; None
    where no frame qualifies."""
    for k in range(max(join, offset + 1), min(len(first), len(second) + offset)):
        own, theirs = layout(first[k]), layout(second[k - offset])
        before_own, before_theirs = layout(first[k - 1]), layout(second[k - 1 - offset])
        if own is None or theirs is None or before_own is None or before_theirs is None:
            return None
        if before_own.second_granule_windows != before_theirs.second_granule_windows:
            continue
        if theirs.main_data_begin > own.main_data_begin:
            continue  # the first half left too little room for the second's reservoir
        head = _with_reservoir(first[:k], second[: k - offset], theirs.main_data_begin)
        if head is None:
            continue
        return k, head + list(second[k - offset :])
    return None


def _with_reservoir(head: Sequence[bytes], donor: Sequence[bytes], count: int) -> list[bytes] | None:
    """`head` with the last `count` audio-data bytes of its frames replaced by the last `count`
    audio-data bytes of `donor`'s frames (frame headers and side information skipped)."""
    frames = [bytearray(frame) for frame in head]
    need = count
    h, d = len(frames) - 1, len(donor) - 1
    h_end, d_end = len(frames[h]), len(donor[d])
    while need:
        if h < 0 or d < 0:
            return None
        h_layout, d_layout = layout(bytes(frames[h])), layout(donor[d])
        if h_layout is None or d_layout is None:
            return None
        n = min(need, h_end - h_layout.data_start, d_end - d_layout.data_start)
        frames[h][h_end - n : h_end] = donor[d][d_end - n : d_end]
        need, h_end, d_end = need - n, h_end - n, d_end - n
        if h_end == h_layout.data_start:
            h -= 1
            h_end = len(frames[h]) if h >= 0 else 0
        if d_end == d_layout.data_start:
            d -= 1
            d_end = len(donor[d]) if d >= 0 else 0
    return [bytes(frame) for frame in frames]
