"""Mixing audio (`bot.mixing.audio`) on synthetic signals: real files made with PyAV, decoded
back and checked with an FFT. A mix holds exactly the chosen stems' tones, never clips, aligns
stems of different lengths, rates and channel counts, leaves a single stem at its level, and
fits the upload limit (a lower bitrate, or nothing at all)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from bot.mixing.audio import (
    BITRATES_KBPS,
    BLOCK_FRAMES,
    MixStopped,
    MixTooLarge,
    StemUnreadable,
    bitrate_for,
    mix_files,
    mp3_bytes,
    summed_blocks,
)
from bot.mixing.splice import layout, splice
from testing.tones import decode, sine, spectrum_levels, write_audio

RATE = 44_100
TONES = {"vocals": 440.0, "drums": 660.0, "bass": 110.0, "guitar": 990.0}
PRESENT = 0.2  # an FFT level above this: the tone is in the mix
ABSENT = 0.01  # below this: it is not


def stems(folder: Path, seconds: float = 2.0, amplitude: float = 0.3) -> dict[str, Path]:
    return {
        name: write_audio(folder / f"{name}.mp3", sine(freq, seconds, RATE, amplitude))
        for name, freq in TONES.items()
    }


def test_a_mix_holds_exactly_the_chosen_stems_tones(tmp_path: Path) -> None:
    files = stems(tmp_path)
    chosen = ["vocals", "bass", "guitar"]  # everything but the drums

    result = mix_files([files[n] for n in chosen], tmp_path / "mix.mp3", max_bytes=10_000_000)

    samples, rate = decode(result.path)
    levels = spectrum_levels(samples, rate, list(TONES.values()))
    for name, freq in TONES.items():
        if name in chosen:
            assert levels[freq] > PRESENT, (name, levels)
        else:
            assert levels[freq] < ABSENT, (name, levels)
    assert result.bitrate_kbps == 192 and result.path.stat().st_size == result.size


def test_a_loud_sum_is_scaled_so_no_sample_clips(tmp_path: Path) -> None:
    files = stems(tmp_path, amplitude=0.9)  # four stems near full scale: the raw sum reaches ~3

    result = mix_files(list(files.values()), tmp_path / "mix.mp3", max_bytes=10_000_000)

    samples, _ = decode(result.path)
    assert result.gain < 0.5
    assert float(np.max(np.abs(samples))) <= 1.0
    assert float(np.max(np.abs(samples))) > 0.8  # scaled to its peak, not squashed


def test_a_single_stem_passes_through_at_its_level(tmp_path: Path) -> None:
    # A lossless stem, so the only loss measured is the mix's own (one MP3 encoding).
    only = write_audio(tmp_path / "vocals.wav", sine(440.0, 2.0, RATE, 0.3), kind="wav")

    result = mix_files([only], tmp_path / "mix.mp3", max_bytes=10_000_000)

    samples, _ = decode(result.path)
    assert result.gain == 1.0
    peak = float(np.max(np.abs(samples[:, RATE // 4 : -RATE // 4])))
    assert peak == pytest.approx(0.3, rel=0.05)


def test_stems_of_different_lengths_rates_and_channels_are_aligned_at_their_start(tmp_path: Path) -> None:
    long = write_audio(tmp_path / "long.mp3", sine(440.0, 2.0, RATE))
    short_mono_wav = write_audio(tmp_path / "short.wav", sine(660.0, 1.0, 22_050), rate=22_050, kind="wav")
    stereo = np.stack([sine(110.0, 1.5, 48_000), sine(110.0, 1.5, 48_000)])
    wide = write_audio(tmp_path / "stereo.mp3", stereo, rate=48_000)

    result = mix_files([long, short_mono_wav, wide], tmp_path / "mix.mp3", max_bytes=10_000_000)

    samples, rate = decode(result.path)
    assert rate == 48_000  # the highest of the stems' rates
    assert samples.shape[0] == 2
    assert samples.shape[1] / rate == pytest.approx(2.0, abs=0.06)  # the longest stem's length
    head = samples[:, : int(0.9 * rate)]
    tail = samples[:, int(1.6 * rate) : int(1.95 * rate)]
    assert spectrum_levels(head, rate, [660.0])[660.0] > PRESENT  # the short stem starts with the rest
    assert spectrum_levels(tail, rate, [660.0, 110.0, 440.0]) == pytest.approx(
        {660.0: 0.0, 110.0: 0.0, 440.0: 1.0}, abs=0.02
    )  # after the short ones end, only the long stem sounds (they were padded with silence)
    # The mono stem sits in both channels at its own level, not 3 dB lower.
    mono_part = spectrum_levels(samples[:1, : int(0.9 * rate)], rate, [660.0, 440.0])
    assert mono_part[660.0] == pytest.approx(mono_part[440.0], rel=0.15)


def test_the_bitrate_comes_down_to_fit_the_upload_limit(tmp_path: Path) -> None:
    files = stems(tmp_path, seconds=4.0)
    limit = mp3_bytes(4.0, 128) + 2_000  # 192 and 160 do not fit, 128 does

    result = mix_files(list(files.values()), tmp_path / "mix.mp3", max_bytes=limit)

    assert result.bitrate_kbps == 128 and result.size <= limit


def test_a_mix_that_would_not_fit_even_at_96_kbps_makes_no_file(tmp_path: Path) -> None:
    files = stems(tmp_path, seconds=4.0)
    dest = tmp_path / "mix.mp3"

    with pytest.raises(MixTooLarge, match="96 kbps"):
        mix_files(list(files.values()), dest, max_bytes=mp3_bytes(4.0, 96) - 4_000)

    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".mp3")] == []  # no scratch left


def test_a_stem_that_is_not_audio_is_named_by_its_place(tmp_path: Path) -> None:
    files = stems(tmp_path)
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00not audio at all" * 100)

    with pytest.raises(StemUnreadable) as raised:
        mix_files([files["vocals"], broken], tmp_path / "mix.mp3", max_bytes=10_000_000)

    assert raised.value.index == 1


def test_bitrate_for_picks_the_highest_that_fits() -> None:
    assert bitrate_for(240.0, 25 * 1024 * 1024) == 192
    assert bitrate_for(240.0, mp3_bytes(240.0, 112)) == 112
    assert bitrate_for(240.0, mp3_bytes(240.0, 96) - 1) is None
    assert BITRATES_KBPS[0] == 192 and BITRATES_KBPS[-1] == 96


def test_a_mix_stops_at_the_next_block_when_the_bot_stops(tmp_path: Path) -> None:
    files = stems(tmp_path)
    stopping = threading.Event()
    stopping.set()

    with pytest.raises(MixStopped):
        mix_files(list(files.values()), tmp_path / "mix.mp3", max_bytes=10_000_000, stopping=stopping)

    assert not (tmp_path / "mix.mp3").exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".mp3")] == []


def test_decoding_lanes_sum_to_what_one_graph_sums(tmp_path: Path) -> None:
    # Lossless stems of four lengths, none a whole number of blocks: with two lanes the helper's
    # ends first; with three, the mixing thread's own lane ends before another's.
    lengths = {"vocals": 1.0, "drums": 4.0, "bass": 2.5, "guitar": 3.2}
    files = [
        write_audio(tmp_path / f"{name}.wav", sine(TONES[name], seconds, RATE, 0.3), kind="wav")
        for name, seconds in lengths.items()
    ]

    def summed(lanes: int) -> tuple[np.ndarray, list[int]]:
        blocks = list(summed_blocks(files, RATE, [1] * len(files), threading.Event(), lanes=lanes))
        return np.concatenate(blocks, axis=1), [block.shape[1] for block in blocks]

    one, sizes = summed(1)
    assert one.shape == (2, round(4.0 * RATE))  # the longest stem, in stereo
    assert set(sizes[:-1]) == {BLOCK_FRAMES}  # only the last block is short
    for lanes in (2, 3):
        many, many_sizes = summed(lanes)
        assert many_sizes == sizes
        # The same sum, added in another order: equal to float32 rounding.
        np.testing.assert_allclose(many, one, rtol=0, atol=1e-6)
    # Where only the longest stem is left, the sum is that stem alone (the others padded).
    np.testing.assert_allclose(
        one[0, round(3.3 * RATE) :], sine(660.0, 4.0, RATE, 0.3)[round(3.3 * RATE) :], atol=1e-4
    )


def test_a_stem_failing_in_a_decoding_lane_is_named_by_its_place(tmp_path: Path) -> None:
    files = stems(tmp_path)
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00not audio at all" * 100)
    inputs = [files["vocals"], files["drums"], broken, files["bass"]]  # lanes: [0, 2] and [1, 3]

    with pytest.raises(StemUnreadable) as raised:
        list(summed_blocks(inputs, RATE, [2, 2, 2, 2], threading.Event(), lanes=2))

    assert raised.value.index == 2
    assert [t.name for t in threading.enumerate() if t.name == "mixer-lane"] == []  # none left running


def music_like(seconds: float) -> np.ndarray:
    """A stereo signal the encoder has to work on: a tone, a gated bass line and some noise."""
    t = np.arange(round(seconds * RATE)) / RATE
    gate = np.sin(2 * np.pi * 0.5 * t) > 0
    rng = np.random.default_rng(7)
    mono = 0.2 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 110 * t) * gate
    mono = (mono + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    return np.stack([mono, np.roll(mono, 37)])


def frame_errors(decoded: np.ndarray, original: np.ndarray) -> np.ndarray:
    """The largest error in each 1152-sample frame (the decoder drops the encoder's delay)."""
    n = min(decoded.shape[1], original.shape[1]) // 1152 * 1152
    return np.abs(decoded[:, :n] - original[:, :n]).max(axis=0).reshape(-1, 1152).max(axis=1)


def test_a_long_mix_is_encoded_in_two_halves_joined_without_a_seam(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seconds = 24.0  # over SPLIT_MIN_SECONDS: two encoders
    original = music_like(seconds)
    source = write_audio(tmp_path / "song.wav", original, kind="wav")

    halves = mix_files([source], tmp_path / "halves.mp3", max_bytes=10_000_000)
    monkeypatch.setattr("bot.mixing.audio.SPLIT_MIN_SECONDS", 1e9)
    whole = mix_files([source], tmp_path / "whole.mp3", max_bytes=10_000_000)

    joined, rate = decode(halves.path)
    serial, _ = decode(whole.path)
    assert joined.shape == serial.shape and rate == RATE
    assert halves.size == whole.size  # constant bitrate: as many frames
    assert not np.array_equal(joined, serial)  # the second half came from the second encoder
    errors, serial_errors = frame_errors(joined, original), frame_errors(serial, original)
    middle = round(seconds * RATE / 2) // 1152
    # No seam: around the join the error stays at what the encoder's error is anywhere else.
    assert errors[middle - 4 : middle + 40].max() <= 1.1 * np.percentile(serial_errors, 99.5)
    assert np.percentile(errors, 99) <= 1.05 * np.percentile(serial_errors, 99)
    assert errors[: middle - 8].max() == serial_errors[: middle - 8].max()  # the first half as before


def test_frames_that_are_not_mpeg1_layer3_are_never_joined() -> None:
    garbage = [b"\x00" * 417] * 40
    assert splice(garbage, garbage, 20, 8) is None
    assert layout(b"ID3\x04") is None


def test_a_sum_of_tones_encoded_in_two_halves_decodes_to_the_samples_of_one_encode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The benchmark's kind of mix: stems of steady tones, long enough to be encoded in halves.
    seconds = 24.0
    files = [
        write_audio(tmp_path / f"{name}.wav", sine(freq, seconds, RATE, 0.2), kind="wav")
        for name, freq in TONES.items()
    ]

    with caplog.at_level(logging.INFO, logger="bot.mixing.audio"):
        halves = mix_files(files, tmp_path / "halves.mp3", max_bytes=10_000_000)
    assert "no frame to join" not in caplog.text  # the two encodings were joined
    monkeypatch.setattr("bot.mixing.audio.SPLIT_MIN_SECONDS", 1e9)
    whole = mix_files(files, tmp_path / "whole.mp3", max_bytes=10_000_000)

    joined, rate = decode(halves.path)
    serial, _ = decode(whole.path)
    assert rate == RATE and joined.shape == serial.shape
    np.testing.assert_array_equal(joined, serial)
