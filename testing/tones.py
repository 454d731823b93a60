"""Real, decodable audio for tests and benchmarks: a sine tone per stem, made with NumPy and encoded
with PyAV, so a mix of them can be checked with an FFT (which tones it holds, which it does not).

Each stem label has its own frequency, far enough from the others' that an FFT of a few seconds
tells them apart even after MP3 encoding.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import av
import numpy as np

TONE_AMPLITUDE = 0.3
DEFAULT_RATE = 44_100

# Stem label (as the API names files, e.g. "Backing_Vocals") -> its tone in Hz.
TONES: dict[str, float] = {
    "Vocals": 440.0,
    "Instrumental": 300.0,
    "Backing_Vocals": 550.0,
    "Drums": 660.0,
    "Bass": 110.0,
    "Guitar": 770.0,
    "Keyboard": 880.0,
    "Percussion": 990.0,
    "Strings": 1100.0,
    "Synth": 1210.0,
    "FX": 1320.0,
    "Brass": 1430.0,
    "Woodwinds": 1540.0,
}


_BY_NAME = {label.lower(): freq for label, freq in TONES.items()}


def tone_of(label: str) -> float:
    """The tone of a stem, by its file label or its name as members see it ("Backing_Vocals",
    "Backing vocals"); labels not listed get one of their own from their name."""
    key = label.replace(" ", "_").lower()
    return _BY_NAME.get(key, 200.0 + 10.0 * (sum(key.encode()) % 120))


def sine(
    freq: float, seconds: float, rate: int = DEFAULT_RATE, amplitude: float = TONE_AMPLITUDE
) -> np.ndarray:
    """A mono sine as float32 samples."""
    t = np.arange(int(seconds * rate), dtype=np.float64) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_audio(
    path: Path,
    samples: np.ndarray,
    *,
    rate: int = DEFAULT_RATE,
    kind: str = "mp3",
    kbps: int = 128,
) -> Path:
    """Write mono (n,) or stereo (2, n) float samples as MP3 or 16-bit WAV."""
    planar = samples.reshape(1, -1) if samples.ndim == 1 else samples
    layout = "mono" if planar.shape[0] == 1 else "stereo"
    codec, fmt = ("libmp3lame", "mp3") if kind == "mp3" else ("pcm_s16le", "wav")
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        assert isinstance(stream, av.AudioStream)
        if kind == "mp3":
            stream.bit_rate = kbps * 1000
        step = 1 << 15
        for start in range(0, planar.shape[1], step):
            block = np.ascontiguousarray(planar[:, start : start + step].astype(np.float32))
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@functools.cache
def tone_file_bytes(label: str, seconds: float, kind: str = "mp3", rate: int = DEFAULT_RATE) -> bytes:
    """The bytes of a stem's tone file, stereo like the API's stems, 192 kbps for MP3 (made once
    per process, then kept)."""
    tone = sine(tone_of(label), seconds, rate)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"tone.{kind}"
        write_audio(path, np.stack([tone, tone]), rate=rate, kind=kind, kbps=192)
        return path.read_bytes()


def decode(path: Path, seconds: float | None = None) -> tuple[np.ndarray, int]:
    """The samples of an audio file as float32 (channels, n), and its rate: all of them, or about
    the first `seconds` (small files, or the head of a large one)."""
    blocks: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = int(stream.codec_context.sample_rate)
        got = 0
        for frame in container.decode(stream):
            block = frame.to_ndarray()
            blocks.append(block if block.ndim == 2 else block.reshape(1, -1))
            got += blocks[-1].shape[1]
            if seconds is not None and got >= seconds * rate:
                break
    return np.concatenate(blocks, axis=1).astype(np.float32), rate


def spectrum_levels(samples: np.ndarray, rate: int, freqs: list[float]) -> dict[float, float]:
    """How strong each of `freqs` is in (channels, n) samples: the FFT magnitude at that frequency
    relative to the strongest bin, 0..1."""
    mono = samples.mean(axis=0)
    window = np.hanning(mono.size)
    magnitude = np.abs(np.fft.rfft(mono * window))
    bins = np.fft.rfftfreq(mono.size, 1.0 / rate)
    strongest = float(magnitude.max()) or 1.0
    levels = {}
    for freq in freqs:
        near = (bins > freq - 5) & (bins < freq + 5)
        levels[freq] = float(magnitude[near].max()) / strongest
    return levels
