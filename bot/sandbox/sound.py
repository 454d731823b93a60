"""The sandbox's sound: short WAV files made with the standard library, each stem its own sound,
so a listener hears which is which."""

from __future__ import annotations

import array
import functools
import io
import math
import random
import wave

WAV_RATE = 22_050
WAV_SECONDS = 3.0

# (fundamental Hz, kind): every stem sounds different, so a listener hears which is which.
_VOICES: dict[str, tuple[float, str]] = {
    "vocal": (440.0, "vibrato"),
    "instrumental": (220.0, "chord"),
    "backing_vocals": (554.37, "vibrato"),
    "drums": (0.0, "kick"),
    "bass": (55.0, "tone"),
    "guitar": (329.63, "pluck"),
    "keyboard": (261.63, "chord"),
    "percussion": (0.0, "noise"),
    "strings": (392.0, "swell"),
    "synth": (110.0, "square"),
    "fx": (200.0, "sweep"),
    "brass": (233.08, "saw"),
    "woodwinds": (698.46, "tone"),
}


def _sample(kind: str, freq: float, t: float, noise: random.Random) -> float:
    tau = 2 * math.pi
    if kind == "vibrato":
        return math.sin(tau * freq * t + 3 * math.sin(tau * 5 * t))
    if kind == "chord":
        return sum(math.sin(tau * freq * r * t) for r in (1.0, 1.25, 1.5)) / 3
    if kind == "kick":
        beat = t % 0.5
        return math.sin(tau * (60 + 90 * math.exp(-beat * 30)) * beat) * math.exp(-beat * 8)
    if kind == "noise":
        beat = t % 0.25
        return noise.uniform(-1, 1) * math.exp(-beat * 25)
    if kind == "pluck":
        beat = t % 0.75
        return math.sin(tau * freq * t) * math.exp(-beat * 6)
    if kind == "swell":
        return math.sin(tau * freq * t) * (0.5 - 0.5 * math.cos(tau * t / 1.5))
    if kind == "square":
        return 0.6 if math.sin(tau * freq * t) >= 0 else -0.6
    if kind == "sweep":
        return math.sin(tau * (freq + 400 * t) * t)
    if kind == "saw":
        return 0.8 * (2 * ((freq * t) % 1.0) - 1)
    return math.sin(tau * freq * t)


@functools.cache
def stem_wav(stem: str, seconds: float = WAV_SECONDS, rate: int = WAV_RATE) -> bytes:
    """A short mono 16-bit WAV for `stem`, its own sound (made once, then kept)."""
    freq, kind = _VOICES[stem]
    noise = random.Random(stem)
    frames = int(seconds * rate)
    fade = rate // 50  # no click at either end
    samples = array.array("h")
    for i in range(frames):
        gain = min(1.0, i / fade, (frames - 1 - i) / fade)
        value = _sample(kind, freq, i / rate, noise) * gain * 0.5
        samples.append(int(max(-1.0, min(1.0, value)) * 32767))
    if samples.itemsize != 2 or array.array("h", [1]).tobytes()[0] != 1:
        samples.byteswap()  # WAV is little-endian
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(samples.tobytes())
    return out.getvalue()
