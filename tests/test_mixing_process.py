"""The mixing processes (`bot.mixing.process`): a mix made across the process boundary, the
process kept for the next mix at a lower priority, light (no discord.py, no store, no HTTP client),
a killed process failing only its mix, and no process outliving the bot that started it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from bot.mixing.outcomes import MixProcessLost, MixStopped, StemUnreadable
from bot.mixing.process import MIXING_NICENESS, STOP_GRACE, MixingProcesses
from testing.tones import decode, sine, spectrum_levels, write_audio

RATE = 44_100
TONES = {"vocals": 440.0, "drums": 660.0, "bass": 110.0, "guitar": 990.0}
LONG_SECONDS = 90.0  # long enough for a mix to be caught in the middle


@pytest.fixture(scope="module")
def long_stems(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("long")
    return [
        write_audio(folder / f"{name}.wav", sine(freq, LONG_SECONDS, RATE, 0.2), kind="wav")
        for name, freq in TONES.items()
    ]


def short_stems(folder: Path) -> dict[str, Path]:
    folder.mkdir(exist_ok=True)
    return {
        name: write_audio(folder / f"{name}.wav", sine(freq, 2.0, RATE, 0.3), kind="wav")
        for name, freq in TONES.items()
    }


def mixing_children(parent: psutil.Process) -> list[psutil.Process]:
    """The parent's mixing processes (not multiprocessing's resource tracker)."""
    return [c for c in parent.children() if "spawn_main" in " ".join(c.cmdline())]


async def eventually(check: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


def autogroup_nice(pid: int) -> int | None:
    """The niceness of the process's scheduling group (None where the kernel has none)."""
    try:
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
    except OSError:
        return None


def names_in(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir()]


def scratch_of(dest: Path) -> list[Path]:
    return [p for p in dest.parent.iterdir() if p.name.startswith(dest.name) and p != dest]


async def test_a_mix_is_made_in_a_process_of_its_own_kept_for_the_next_at_a_lower_priority(
    tmp_path: Path,
) -> None:
    files = short_stems(tmp_path)
    chosen = ["vocals", "bass", "guitar"]
    processes = MixingProcesses(1)
    try:
        first = await processes.mix([files[n] for n in chosen], tmp_path / "one.mp3", max_bytes=10**7)
        [child] = mixing_children(psutil.Process())
        second = await processes.mix([files["drums"]], tmp_path / "two.mp3", max_bytes=10**7)

        assert mixing_children(psutil.Process()) == [child]  # the same process made both
        assert child.nice() == os.nice(0) + MIXING_NICENESS
        # A session of its own, and where Linux schedules by session (autogroup), niced as one.
        assert os.getsid(child.pid) == child.pid != os.getsid(0)
        assert autogroup_nice(child.pid) in (None, MIXING_NICENESS)
        samples, rate = decode(first.path)
        levels = spectrum_levels(samples, rate, list(TONES.values()))
        assert all((levels[f] > 0.2) == (n in chosen) for n, f in TONES.items()), levels
        assert {first.bitrate_kbps, second.bitrate_kbps} == {192} and second.path.exists()
    finally:
        await processes.close()
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


async def test_no_more_processes_than_the_bound_whatever_is_asked_at_once(tmp_path: Path) -> None:
    files = short_stems(tmp_path)
    processes = MixingProcesses(2)
    most = 0

    async def count() -> None:
        nonlocal most
        while True:
            most = max(most, len(mixing_children(psutil.Process())))
            await asyncio.sleep(0.005)

    counting = asyncio.create_task(count())
    try:
        made = await asyncio.gather(
            *(processes.mix([files[n]], tmp_path / f"{n}.mp3", max_bytes=10**7) for n in TONES)
        )
    finally:
        counting.cancel()
        await processes.close()

    assert [m.path.name for m in made] == [f"{n}.mp3" for n in TONES]  # four mixes, two at a time
    assert most == 2


async def test_the_mixing_process_loads_neither_discord_nor_the_bots_store_or_http_client(
    tmp_path: Path,
) -> None:
    files = short_stems(tmp_path)
    processes = MixingProcesses(1)
    try:
        await processes.mix(list(files.values()), tmp_path / "mix.mp3", max_bytes=10**7)
        [child] = mixing_children(psutil.Process())
        mapped = {m.path for m in child.memory_maps()}
    finally:
        await processes.close()
    # aiohttp (which discord.py needs) and the database drivers have compiled parts: a process
    # that imported them has them mapped. PyAV's FFmpeg is mapped: the check can see a library.
    assert any("/av/" in path or "libavcodec" in path for path in mapped)
    assert not [p for p in mapped if any(name in p for name in ("aiohttp", "asyncpg", "multidict", "yarl"))]


def test_what_the_mixing_process_imports_leaves_out_discord_the_store_and_the_http_client() -> None:
    # What the child imports (the module it runs, then the audio code), in a fresh interpreter:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, multiprocessing.spawn, bot.mixing.process, bot.mixing.audio;"
            "print(' '.join(sorted(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "av" in loaded and "bot.mixing.audio" in loaded
    assert not [m for m in loaded if m.split(".")[0] in ("discord", "aiohttp", "asyncpg", "aiosqlite")]
    assert "bot.store" not in loaded and "bot.mixing.worker" not in loaded


async def test_what_the_process_raises_crosses_back_as_it_is(tmp_path: Path) -> None:
    files = short_stems(tmp_path)
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00not audio at all" * 100)
    processes = MixingProcesses(1)
    try:
        with pytest.raises(StemUnreadable) as raised:
            await processes.mix([files["vocals"], broken], tmp_path / "mix.mp3", max_bytes=10**7)
        assert raised.value.index == 1 and "could not be read as audio" in raised.value.reason
        # The process carries on: a refused mix is not a crash.
        [child] = mixing_children(psutil.Process())
        await processes.mix([files["vocals"]], tmp_path / "mix.mp3", max_bytes=10**7)
        assert mixing_children(psutil.Process()) == [child]
    finally:
        await processes.close()


async def test_a_killed_mixing_process_fails_its_mix_alone_and_the_next_mix_gets_a_new_one(
    tmp_path: Path, long_stems: list[Path]
) -> None:
    dest = tmp_path / "mix.part"
    processes = MixingProcesses(1)
    try:
        mixing = asyncio.create_task(processes.mix(long_stems, dest, max_bytes=10**9))
        await eventually(lambda: scratch_of(dest))  # the process is mixing
        [child] = mixing_children(psutil.Process())
        child.send_signal(signal.SIGKILL)

        with pytest.raises(MixProcessLost):
            await mixing
        assert names_in(tmp_path) == []  # what it left is removed

        files = short_stems(tmp_path / "short")
        made = await processes.mix([files["bass"]], tmp_path / "next.mp3", max_bytes=10**7)
        assert made.path.exists()
        assert [c.pid for c in mixing_children(psutil.Process())] != [child.pid]
    finally:
        await processes.close()


async def test_closing_stops_a_mix_at_its_next_block_and_ends_the_process(
    tmp_path: Path, long_stems: list[Path]
) -> None:
    dest = tmp_path / "mix.part"
    processes = MixingProcesses(1)
    mixing = asyncio.create_task(processes.mix(long_stems, dest, max_bytes=10**9))
    await eventually(lambda: scratch_of(dest))
    [child] = mixing_children(psutil.Process())

    started = time.monotonic()
    await processes.close()

    assert time.monotonic() - started < STOP_GRACE
    with pytest.raises(MixStopped):
        await mixing
    assert not child.is_running()
    assert scratch_of(dest) == []  # the process removed its scratch file as it stopped


PARENT = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from bot.mixing.process import MixingProcesses

    async def main():
        processes = MixingProcesses(1)
        *inputs, dest = sys.argv[1:]
        await processes.mix([Path(p) for p in inputs], Path(dest), max_bytes=10**9)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("death", [signal.SIGKILL, signal.SIGTERM])
async def test_a_mixing_process_never_outlives_the_bot(
    tmp_path: Path, long_stems: list[Path], death: signal.Signals
) -> None:
    # A parent killed outright (SIGKILL), or ended by SIGTERM without stopping its mixer.
    dest = tmp_path / "mix.part"
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PARENT, *map(str, long_stems), str(dest)
    )
    try:
        await eventually(lambda: scratch_of(dest))
        [child] = mixing_children(psutil.Process(parent.pid))
        parent.send_signal(death)
        await asyncio.wait_for(parent.wait(), timeout=10)

        gone, alive = psutil.wait_procs([child], timeout=STOP_GRACE + 5)
        assert alive == [] and gone == [child]
        assert scratch_of(dest) == []  # it stopped at a block, not killed mid-write
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()


async def test_the_process_makes_the_very_file_the_audio_code_makes_here(tmp_path: Path) -> None:
    from bot.mixing.audio import mix_files

    files = short_stems(tmp_path)
    here = mix_files(list(files.values()), tmp_path / "here.mp3", max_bytes=10**7)
    processes = MixingProcesses(1)
    try:
        there = await processes.mix(list(files.values()), tmp_path / "there.mp3", max_bytes=10**7)
    finally:
        await processes.close()

    assert there.path.read_bytes() == here.path.read_bytes()
    assert (there.seconds, there.gain, there.size) == (here.seconds, here.gain, here.size)
