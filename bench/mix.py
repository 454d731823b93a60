"""Mix benchmark: 12 stems of 4 minutes mixed and posted through the real bot, the time each mix
takes, the bot's memory meanwhile, and how fast `/split` bursts are acknowledged while it mixes.

Runs the real `python -m bot` process between the local Discord stand-in and the API simulator
(both in this process) serving real audio: every stem a stereo MP3 at 192 kbps of its own tone
(`testing.tones`), `--seconds` long. One member splits a track into 12 stems; then `--mixes`
mixes of eleven stems each (a different stem left out every time) are asked one after another
through the Mix stems button and its picker, each timed from the choice to the file in the
result's thread, and by the CPU seconds of the bot's mixing processes (which the machine's other
load does not inflate). While each mix is made, a burst of `--burst` members runs `/split` every
`--burst-every` seconds; before each, `--bursts` such bursts run with the bot idle: idle and
mixing windows alternate, so the two ack latencies compare under the same background load. The
bot's resident memory is sampled every 50 ms: VmRSS of the bot plus that of its child processes
(the mixing processes, multiprocessing's resource tracker), summed at each sample.
Every posted mix is decoded and checked: the stem left out is not in it, the others are.

Prints a table, then one JSON line; exits 1 if a mix is missing or wrong, or over the targets
(`--target-seconds` per mix, `--target-mb` peak RSS).

    python -m bench.mix                      # 3 mixes of 12 stems of 4 minutes
    python bench/mix.py --mixes 5 --concurrency 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as `python bench/mix.py`: import the checkout, as -m does
    sys.path.insert(0, str(REPO_ROOT))

from bench.keep import RssSampler  # noqa: E402
from bench.load import API_KEY, bot_env, free_port, percentile, print_rows, say  # noqa: E402
from bot.product import stem_name  # noqa: E402
from bot.render.common import MIX_BUTTON_LABEL  # noqa: E402
from bot.render.results import RESULT_MARK  # noqa: E402
from bot.sandbox import STEM_LABELS, STEMS_12  # noqa: E402
from testing.discord_standin import DEFAULT_USER_ID, DiscordStandIn, InteractionRecord, MessageRecord  # noqa: E402
from testing.provider_api import SeparationApiSimulator  # noqa: E402
from testing.tones import decode, spectrum_levels, tone_file_bytes, tone_of  # noqa: E402

MiB = 2**20
TARGET_SECONDS = 10.0
TARGET_MB = 200.0
SLOW_ACK_MS = 100.0
"""Acks slower than this while mixing are listed with where in their mix they fell."""
CHECK_SECONDS = 10.0
"""How much of each mix is decoded to check its tones (the whole would only take longer)."""


@dataclass
class Figures:
    stems: int
    seconds: float
    mixes: int
    concurrency: int
    mix_seconds: list[float] = field(default_factory=list)
    mix_cpu_seconds: list[float] = field(default_factory=list)
    posted: int = 0
    wrong: int = 0
    sizes: list[int] = field(default_factory=list)
    baseline_rss: int = 0
    peak_rss: int = 0
    children: int = 0
    child_peak_rss: int = 0
    folder_peak: int = 0
    idle_acks_ms: list[float] = field(default_factory=list)
    mixing_acks_ms: list[float] = field(default_factory=list)
    bot_cpu: float = 0.0
    load: list[float] = field(default_factory=list)  # the 1-minute load average, before and after
    windows: list[tuple[float, float]] = field(default_factory=list)  # each mix's start and end
    slow_acks: list[str] = field(default_factory=list)  # where in its mix each slow ack fell
    notes: list[str] = field(default_factory=list)

    def to_json(self, target_seconds: float, target_mb: float) -> dict[str, Any]:
        return {
            "stems": self.stems,
            "stem_seconds": self.seconds,
            "mixes": self.mixes,
            "concurrency": self.concurrency,
            "posted": self.posted,
            "wrong": self.wrong,
            "mix_seconds": [round(s, 2) for s in self.mix_seconds],
            "mix_seconds_max": round(max(self.mix_seconds, default=0.0), 2),
            "mix_cpu_seconds": [round(s, 2) for s in self.mix_cpu_seconds],
            "mix_mb": [round(s / MiB, 2) for s in self.sizes],
            "rss_mb_baseline": round(self.baseline_rss / MiB, 1),
            "rss_mb_peak": round(self.peak_rss / MiB, 1),
            "child_processes": self.children,
            "rss_mb_children_peak": round(self.child_peak_rss / MiB, 1),
            "disk_mb_peak": round(self.folder_peak / MiB, 1),
            "acks_idle": len(self.idle_acks_ms),
            "ack_ms_p50_idle": round(percentile(self.idle_acks_ms, 50), 1),
            "ack_ms_p99_idle": round(percentile(self.idle_acks_ms, 99), 1),
            "acks_mixing": len(self.mixing_acks_ms),
            "ack_ms_p50_mixing": round(percentile(self.mixing_acks_ms, 50), 1),
            "ack_ms_p99_mixing": round(percentile(self.mixing_acks_ms, 99), 1),
            "ack_ms_max_mixing": round(max(self.mixing_acks_ms, default=0.0), 1),
            "bot_cpu_s": round(self.bot_cpu, 2),
            "load_1m": [round(load, 2) for load in self.load],
            "target_seconds": target_seconds,
            "target_mb": target_mb,
            "ok": self.ok(target_seconds, target_mb),
        }

    def ok(self, target_seconds: float, target_mb: float) -> bool:
        complete = self.posted == self.mixes and not self.wrong
        fast = max(self.mix_seconds, default=float("inf")) <= target_seconds
        return complete and fast and self.peak_rss <= target_mb * MiB


class Bursts:
    """`/split` bursts from new members, every `every` seconds until stopped; their ack latencies."""

    def __init__(self, standin: DiscordStandIn, size: int, every: float, first_member: int) -> None:
        self._standin = standin
        self._size = size
        self._every = every
        self._next_member = first_member
        self.records: list[InteractionRecord] = []

    async def run(self, until: asyncio.Event) -> None:
        while not until.is_set():
            await self.burst()
            try:
                await asyncio.wait_for(until.wait(), timeout=self._every)
            except TimeoutError:
                pass

    async def burst(self) -> None:
        members = range(self._next_member, self._next_member + self._size)
        self._next_member += self._size
        self.records += await asyncio.gather(
            *(
                self._standin.invoke("split", {"task_id": f"burst-{m}", "audio_id": f"b-{m}"}, user_id=m)
                for m in members
            )
        )

    async def latencies_ms(self) -> list[float]:
        for record in self.records:
            try:
                await record.wait_for_ack(timeout=30)
            except TimeoutError:
                pass
        return [r.ack_latency * 1000 for r in self.records if r.ack_latency is not None]


def child_pids(pid: int) -> list[int]:
    """The process's children (its mixing processes, multiprocessing's resource tracker)."""
    pids: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                pids += [int(child) for child in (task / "children").read_text().split()]
    return pids


def vm_rss(pid: int) -> int:
    """A process's resident memory in bytes (0 once it has ended)."""
    with contextlib.suppress(OSError):
        match = re.search(r"^VmRSS:\s+(\d+) kB$", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
        return int(match[1]) * 1024 if match else 0
    return 0


class TreeRssSampler(RssSampler):
    """The resident memory of the bot and of its child processes together, at each sample: a
    mix is made in a mixing process (`bot.mixing.process`), whose memory is the bot's cost too.
    `child_peak`: the most the children held at one sample."""

    def __init__(self, pid: int, folder: Path) -> None:
        super().__init__(pid, folder)
        self._pid = pid
        self.child_peak = 0

    def read(self, field_name: str) -> int | None:
        own = super().read(field_name)
        if own is None or field_name != "VmRSS":
            return own
        children = sum(vm_rss(child) for child in child_pids(self._pid))
        self.child_peak = max(self.child_peak, children)
        return own + children


class MixingCpu:
    """CPU seconds used by the bot's child processes (the mixing processes; the resource tracker
    uses next to none), read from /proc every `interval` seconds from a thread of the bench. A
    process's counts include its threads that ended; each process's last reading is kept, so one
    that ended (killed, or replaced) still counts (all but its last `interval`)."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self._pid = pid
        self._interval = interval
        self._seen: dict[int, float] = {}  # process id -> its CPU seconds when last read
        self._retired = 0.0  # processes whose id was reused: their last reading
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mixing-cpu", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def total(self) -> float:
        """CPU seconds of every child process seen so far, read afresh."""
        self._read()
        with self._lock:
            return self._retired + sum(self._seen.values())

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._read()

    def _read(self) -> None:
        ticks = os.sysconf("SC_CLK_TCK")
        for child in child_pids(self._pid):
            try:
                fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # After the name: state is field 3; utime 14, stime 15 (1-based, man 5 proc).
            cpu = (int(fields[11]) + int(fields[12])) / ticks
            with self._lock:
                last = self._seen.get(child, 0.0)
                if cpu < last:  # the id now belongs to a new process
                    self._retired += last
                self._seen[child] = cpu


def slow_acks(
    records: list[InteractionRecord], windows: list[tuple[float, float]], over_ms: float
) -> list[str]:
    """Where the acks slower than `over_ms` of the mixing windows fell in their mix: seconds
    after the choice and before the file arrived (the stems download at the start, the file is
    uploaded at the end, the mixing process works in between)."""
    found = []
    for record in records:
        if record.ack_latency is None or record.ack_latency * 1000 <= over_ms:
            continue
        for index, (start, end) in enumerate(windows):
            if start <= record.created_at <= end:
                found.append(
                    f"mix {index + 1}: {record.ack_latency * 1000:.0f} ms, "
                    f"{record.created_at - start:.1f} s after the choice, "
                    f"{end - record.created_at:.1f} s before the file"
                )
    return found


def mix_button(message: MessageRecord) -> str | None:
    for row in message.components:
        for component in row.get("components") or []:
            if component.get("label") == MIX_BUTTON_LABEL:
                return str(component["custom_id"])
    return None


def picker(message: MessageRecord) -> dict[str, Any]:
    [select] = [c for row in message.components for c in row.get("components") or [] if c.get("type") == 3]
    return dict(select)


def check_mix(data: bytes, left_out: str, names: list[str], folder: Path) -> bool:
    """Whether the mix holds every stem's tone but the one left out (in its first seconds)."""
    path = folder / "check.mp3"
    path.write_bytes(data)
    samples, rate = decode(path, CHECK_SECONDS)
    levels = spectrum_levels(samples, rate, [tone_of(n) for n in names])
    return all((levels[tone_of(n)] < 0.01) if n == left_out else (levels[tone_of(n)] > 0.2) for n in names)


async def run(args: argparse.Namespace) -> Figures:
    figures = Figures(stems=12, seconds=args.seconds, mixes=args.mixes, concurrency=args.concurrency)
    figures.load.append(os.getloadavg()[0])
    names = [stem_name(key) for key in STEMS_12]
    say(f"Making 12 stereo MP3 stems of {args.seconds:g} s (once)…")
    for key in STEMS_12:
        await asyncio.to_thread(tone_file_bytes, STEM_LABELS[key].replace(" ", "_"), args.seconds)
    workdir = Path(tempfile.mkdtemp(prefix="stembot-mix-bench-"))
    member = DEFAULT_USER_ID
    async with (
        SeparationApiSimulator(
            api_key=API_KEY,
            processing_seconds=args.api_seconds,
            callbacks=False,
            account_credits=10**9,
            stem_files=True,
        ) as sim,
        DiscordStandIn(ack_deadline=None, attachment_size_limit=args.upload_limit) as standin,
    ):
        sim.stem_audio_seconds = args.seconds
        standin.keep_upload_bytes = True
        env = bot_env(sim.base_url, poll_interval=0.2, callback_port=free_port())
        env.update(MIX_CONCURRENCY=str(args.concurrency), DEFAULT_CREDITS="1000")
        bot = await standin.spawn("bot.__main__:main", extra_env=env, python=sys.executable, cwd=workdir)
        sampler = TreeRssSampler(bot.pid, workdir / "data" / "mix-work")
        mixing_cpu = MixingCpu(bot.pid)
        try:
            await standin.wait_ready(timeout=60)
            sampler.start()
            mixing_cpu.start()
            process = psutil.Process(bot.pid)
            record = await standin.invoke(
                "split", {"task_id": "gen-1", "audio_id": "a-1", "mode": "split_stem"}, user_id=member
            )
            result = await record.wait_for_edit(
                lambda m: RESULT_MARK in m.text(), timeout=60 + args.api_seconds
            )
            if mix_button(result) is None:
                raise RuntimeError("the 12-stem result did not arrive with a Mix stems button")
            await asyncio.sleep(1.0)
            # Idle and mixing windows alternate, so whatever else the machine runs weighs on both.
            idle = Bursts(standin, args.burst, args.burst_every, first_member=DEFAULT_USER_ID + 1000)
            mixing = Bursts(standin, args.burst, args.burst_every, first_member=DEFAULT_USER_ID + 500_000)
            baseline_at = time.monotonic()
            cpu_before = sum(process.cpu_times()[:2])
            thread = None
            to_check: list[tuple[Any, str]] = []
            for index in range(args.mixes):
                for _ in range(args.bursts):  # idle: the bot is not mixing
                    await idle.burst()
                    await asyncio.sleep(args.burst_every)
                await asyncio.sleep(1.0)  # the idle bursts' jobs delivered
                if index == 0:
                    figures.baseline_rss = sampler.peak(since=baseline_at)
                left_out = names[index % len(names)]
                click = await standin.click(result, mix_button(result) or "", user_id=member)
                answer = await click.wait_for_response(timeout=30)
                select = picker(answer)
                values = [o["value"] for o in select["options"] if o["label"] != left_out]
                before = len(standin.attachments_in(thread)) if thread is not None else 0
                mixer_cpu = mixing_cpu.total()
                done = asyncio.Event()
                started = time.monotonic()
                await standin.click(answer, select["custom_id"], values=values, user_id=member)
                bursting = asyncio.create_task(mixing.run(done))
                posted = None
                while time.monotonic() - started < args.timeout:
                    thread = thread or (t.id if (t := standin.thread_on(result.id)) else None)
                    files = standin.attachments_in(thread) if thread is not None else []
                    if len(files) > before:
                        posted = files[-1]
                        break
                    await asyncio.sleep(0.02)
                done.set()
                await bursting
                if posted is None:
                    figures.notes.append(f"mix {index + 1} (without {left_out}) was not posted in time")
                    break
                figures.mix_seconds.append(time.monotonic() - started)
                figures.windows.append((started, time.monotonic()))
                figures.mix_cpu_seconds.append(mixing_cpu.total() - mixer_cpu)
                figures.posted += 1
                figures.sizes.append(posted.size)
                say(
                    f"  mix {index + 1}: without {left_out}, {figures.mix_seconds[-1]:.2f} s "
                    f"({figures.mix_cpu_seconds[-1]:.2f} s CPU in the mixing processes), "
                    f"{posted.size / MiB:.2f} MiB, rss peak {sampler.peak() / MiB:.0f} MB"
                )
                to_check.append((posted, left_out))
            figures.bot_cpu = sum(process.cpu_times()[:2]) - cpu_before
            figures.load.append(os.getloadavg()[0])
            figures.peak_rss = sampler.peak(since=baseline_at)
            figures.children = len(psutil.Process(bot.pid).children(recursive=True))
            figures.child_peak_rss = sampler.child_peak
            figures.folder_peak = sampler.folder_peak
            figures.idle_acks_ms = await idle.latencies_ms()
            figures.mixing_acks_ms = await mixing.latencies_ms()
            figures.slow_acks = slow_acks(mixing.records, figures.windows, SLOW_ACK_MS)
            # Checked once every mix is done: decoding here would compete with the bot for the CPU.
            for posted, left_out in to_check:
                if not await asyncio.to_thread(
                    check_mix, standin.attachment_bytes(posted), left_out, names, workdir
                ):
                    figures.wrong += 1
            if standin.rejected:
                figures.notes.append(f"the stand-in refused {len(standin.rejected)} request(s)")
        finally:
            sampler.stop()
            mixing_cpu.stop()
            await bot.stop()
            if bot.returncode not in (0, -15) or "Traceback" in bot.output():
                say(bot.output()[-3000:])
                figures.notes.append(f"the bot exited with {bot.returncode} or logged a traceback")
            bot.cleanup()
    return figures


def print_table(result: dict[str, Any]) -> None:
    rows = [
        ("mixes", f"{result['posted']} of {result['mixes']} posted, {result['wrong']} wrong"),
        ("stems per mix / length", f"11 of {result['stems']} / {result['stem_seconds']:g} s"),
        ("MIX_CONCURRENCY", result["concurrency"]),
        ("time per mix (s)", ", ".join(str(s) for s in result["mix_seconds"])),
        ("CPU per mix, mixing processes (s)", ", ".join(str(s) for s in result["mix_cpu_seconds"])),
        ("mix file (MiB)", ", ".join(str(s) for s in result["mix_mb"])),
        ("bot RSS before mixing (MB)", result["rss_mb_baseline"]),
        (
            "RSS peak while mixing, bot + children (MB)",
            f"{result['rss_mb_peak']} (children at most {result['rss_mb_children_peak']}; "
            f"{result['child_processes']} child processes)",
        ),
        (
            "/split ack p50 / p99, idle (ms)",
            f"{result['ack_ms_p50_idle']} / {result['ack_ms_p99_idle']} ({result['acks_idle']} acks)",
        ),
        (
            "/split ack p50 / p99 / max, mixing (ms)",
            f"{result['ack_ms_p50_mixing']} / {result['ack_ms_p99_mixing']} / {result['ack_ms_max_mixing']} "
            f"({result['acks_mixing']} acks)",
        ),
        ("files waiting on disk, peak (MB)", result["disk_mb_peak"]),
        ("bot CPU s, whole run", result["bot_cpu_s"]),
        ("load average (1 min), before / after", " / ".join(str(x) for x in result["load_1m"])),
        (
            "targets",
            f"{result['target_seconds']} s per mix, {result['target_mb']} MB: "
            f"{'met' if result['ok'] else 'NOT MET'}",
        ),
    ]
    print_rows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description="Mixing 12 stems through the real bot: time, memory, acks.")
    parser.add_argument("--mixes", type=int, default=3, help="mixes asked one after another")
    parser.add_argument("--seconds", type=float, default=240.0, help="length of every stem")
    parser.add_argument("--concurrency", type=int, default=1, help="the bot's MIX_CONCURRENCY")
    parser.add_argument("--upload-limit", type=int, default=25 * MiB, help="the upload limit, bytes")
    parser.add_argument("--burst", type=int, default=10, help="members in each /split burst")
    parser.add_argument("--burst-every", type=float, default=1.0, help="seconds between bursts")
    parser.add_argument("--bursts", type=int, default=5, help="idle bursts before each mix")
    parser.add_argument("--api-seconds", type=float, default=0.5, help="simulated processing time")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one mix may take at most")
    parser.add_argument("--target-seconds", type=float, default=TARGET_SECONDS)
    parser.add_argument("--target-mb", type=float, default=TARGET_MB)
    args = parser.parse_args()
    say(f"Mix benchmark ({os.cpu_count()} cores)…")
    figures = asyncio.run(run(args))
    result = figures.to_json(args.target_seconds, args.target_mb)
    print_table(result)
    for slow in sorted(set(figures.slow_acks)):
        say(f"slow ack while mixing: {slow}")
    for note in figures.notes:
        say(f"note: {note}")
    print(json.dumps(result))
    sys.exit(0 if result["ok"] and not figures.notes else 1)


if __name__ == "__main__":
    main()
