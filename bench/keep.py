"""Keep benchmark: many results kept in Discord at once, and the bot's memory while it happens.

Runs the real `python -m bot` process between the local Discord stand-in and the API simulator
serving real stem files (both in this process), has every member split a track into 12 stems,
then keeps every result at once: all Keep in Discord buttons pressed together (`--trigger
button`), or `keep_stems:always` set through `/quota settings` before the splits (`--trigger
always`). It waits until the stand-in holds every stem as an attachment and every result says it
is kept, sampling the bot's resident memory (/proc/<pid>/status VmRSS) every 50 ms. Prints a
table, then one JSON line; exits 1 if the peak is over `--target-mb` or a file is missing, wrong
or posted twice.

    python -m bench.keep --results 20 --stem-bytes 8MiB --concurrency 2 --upload-limit 10MiB
    python bench/keep.py --upload-limit 25MiB --concurrency 4    # the same, run by file
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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as `python bench/keep.py`: import the checkout, as -m does
    sys.path.insert(0, str(REPO_ROOT))

from bench.load import API_KEY, bot_env, delivery_wall_time, free_port, print_rows, say  # noqa: E402
from bot.downloads import PART_SUFFIX  # noqa: E402
from bot.render.common import KEEP_BUTTON_LABEL, KEPT_BUTTON_LABEL  # noqa: E402
from bot.render.results import RESULT_MARK  # noqa: E402
from testing.discord_standin import (  # noqa: E402
    DEFAULT_MEMBER_PERMISSIONS,
    DEFAULT_USER_ID,
    DiscordStandIn,
    InteractionRecord,
    MessageRecord,
    Perm,
)
from testing.provider_api import SeparationApiSimulator, stem_sha256  # noqa: E402

MiB = 2**20
TARGET_MB = 200.0
SAMPLE_SECONDS = 0.05
MODERATOR = DEFAULT_USER_ID - 1
"""Sets `keep_stems:always` for `--trigger always`; the members are DEFAULT_USER_ID onwards."""


def size(text: str) -> int:
    """A byte count: `8388608`, `8MiB`, `512KiB`."""
    match = re.fullmatch(r"\s*(\d+)\s*(|B|KiB|MiB)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 8MiB, 512KiB or a number of bytes)")
    return int(match[1]) * {"": 1, "B": 1, "KiB": 2**10, "MiB": MiB}[match[2]]


class RssSampler:
    """A process's resident memory (VmRSS) every `interval` seconds, from a thread: the bench's
    event loop is busy serving and receiving the files, and would sample late. Also how much
    its download `folder` holds (files wait there between download and upload)."""

    def __init__(self, pid: int, folder: Path, interval: float = SAMPLE_SECONDS) -> None:
        self._status = Path(f"/proc/{pid}/status")
        self._folder = folder
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        #: (monotonic time, bytes)
        self.samples: list[tuple[float, int]] = []
        self.folder_peak = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def read(self, field_name: str) -> int | None:
        """One field of the process's status in bytes (VmRSS, VmHWM: the peak); None once it
        has ended."""
        try:
            text = self._status.read_text()
        except OSError:
            return None
        match = re.search(rf"^{field_name}:\s+(\d+) kB$", text, re.MULTILINE)
        return int(match[1]) * 1024 if match else None

    def peak(self, since: float = 0.0, until: float = float("inf")) -> int:
        return max((rss for at, rss in self.samples if since <= at <= until), default=0)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self.read("VmRSS")
            if rss is None:
                return
            self.samples.append((time.monotonic(), rss))
            self.folder_peak = max(self.folder_peak, folder_bytes(self._folder))
            self._stop.wait(self._interval)


def folder_bytes(folder: Path) -> int:
    total = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            with contextlib.suppress(OSError):
                total += entry.stat().st_size
    return total


@dataclass
class Figures:
    results: int
    stems_per_result: int
    stem_bytes: int
    concurrency: int
    upload_limit: int
    trigger: str
    delivered: int = 0
    kept: int = 0
    attachments: int = 0
    expected: int = 0
    wrong_hash: int = 0
    missing: int = 0
    duplicates: int = 0
    leftover_files: int = 0
    messages_with_files: int = 0
    files_seconds: float = 0.0
    keep_seconds: float = 0.0
    baseline_rss: int = 0
    peak_rss: int = 0
    hwm: int = 0
    folder_peak: int = 0
    bot_cpu: float = 0.0
    bench_cpu: float = 0.0
    samples: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def uploaded_bytes(self) -> int:
        return self.attachments * self.stem_bytes

    def to_json(self, target_mb: float) -> dict[str, Any]:
        return {
            "results": self.results,
            "stems_per_result": self.stems_per_result,
            "stem_mib": round(self.stem_bytes / MiB, 3),
            "concurrency": self.concurrency,
            "upload_limit_mib": round(self.upload_limit / MiB, 3),
            "trigger": self.trigger,
            "delivered": self.delivered,
            "kept": self.kept,
            "attachments": self.attachments,
            "expected": self.expected,
            "wrong_hash": self.wrong_hash,
            "missing": self.missing,
            "duplicates": self.duplicates,
            "leftover_files": self.leftover_files,
            "files_per_message": round(self.attachments / max(1, self.messages_with_files), 2),
            "files_seconds": round(self.files_seconds, 2),
            "keep_seconds": round(self.keep_seconds, 2),
            "upload_mb_per_s": round(self.uploaded_bytes / MiB / max(self.files_seconds, 0.001), 1),
            "rss_mb_baseline": round(self.baseline_rss / MiB, 1),
            "rss_mb_peak": round(self.peak_rss / MiB, 1),
            "rss_mb_growth": round((self.peak_rss - self.baseline_rss) / MiB, 1),
            "vmhwm_mb": round(self.hwm / MiB, 1),
            "rss_samples": self.samples,
            "disk_mb_peak": round(self.folder_peak / MiB, 1),
            "bot_cpu_s": round(self.bot_cpu, 2),
            "bench_cpu_s": round(self.bench_cpu, 2),
            "target_mb": target_mb,
            "ok": self.ok(target_mb),
        }

    def ok(self, target_mb: float) -> bool:
        complete = self.attachments == self.expected and self.kept == self.results
        faults = self.wrong_hash or self.missing or self.duplicates or self.leftover_files
        return complete and not faults and max(self.peak_rss, self.hwm) <= target_mb * MiB


@dataclass
class Result:
    """One member's split: the interaction and the message the thread goes on."""

    member: int
    record: InteractionRecord

    @property
    def messages(self) -> list[MessageRecord]:
        return [m for m in (self.record.original, *self.record.followups) if m is not None]

    def button(self, label: str) -> str | None:
        """The custom id (or URL) of the button labelled `label` under the result, if shown."""
        for message in self.messages:
            for row in message.components:
                for component in row.get("components") or []:
                    if component.get("label") == label:
                        return str(component.get("custom_id") or component.get("url"))
        return None


async def split_all(standin: DiscordStandIn, members: list[int], wait_seconds: float) -> list[Result]:
    """Every member splits their own track into 12 stems at once; waits for the results."""
    records = await asyncio.gather(
        *(
            standin.invoke(
                "split", {"task_id": f"gen-{m}", "audio_id": f"a-{m}", "mode": "split_stem"}, user_id=m
            )
            for m in members
        )
    )
    results = [Result(m, r) for m, r in zip(members, records, strict=True)]
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        delivered = sum(delivery_wall_time(r.record, RESULT_MARK) is not None for r in results)
        if delivered == len(results):
            break
        await asyncio.sleep(0.25)
    return [r for r in results if delivery_wall_time(r.record, RESULT_MARK) is not None]


def thread_of(standin: DiscordStandIn, result: Result) -> int | None:
    """Where the result's files are posted: the thread on its first message."""
    if result.record.original is None:
        return None
    thread = standin.thread_on(result.record.original.id)
    return thread.id if thread is not None else None


def attachments_now(standin: DiscordStandIn, results: list[Result]) -> int:
    count = 0
    for result in results:
        thread = thread_of(standin, result)
        if thread is not None:
            count += len(standin.attachments_in(thread))
    return count


def check_files(
    standin: DiscordStandIn, sim: SeparationApiSimulator, results: list[Result], figures: Figures
) -> None:
    """Every thread holds exactly its own result's files, byte for byte (sha256)."""
    tasks = {task.audio_id: task for task in sim.tasks.values()}
    for result in results:
        task = tasks[f"a-{result.member}"]
        names = [url.split("?", 1)[0].rsplit("/", 1)[-1] for url in task.stems.values()]
        expected = Counter(stem_sha256(name, sim.stem_size(name)) for name in names)
        figures.expected += sum(expected.values())
        thread = thread_of(standin, result)
        files = standin.attachments_in(thread) if thread is not None else []
        figures.messages_with_files += len({a.message_id for a in files})
        got = Counter(a.sha256 for a in files)
        for digest, count in got.items():
            if digest not in expected:
                figures.wrong_hash += count
            elif count > expected[digest]:
                figures.duplicates += count - expected[digest]
        figures.missing += sum(max(0, n - got[d]) for d, n in expected.items())


async def set_keep_always(standin: DiscordStandIn) -> None:
    record = await standin.invoke(
        "quota",
        {"keep_stems": "always"},
        subcommand="settings",
        user_id=MODERATOR,
        permissions=DEFAULT_MEMBER_PERMISSIONS | Perm.MANAGE_GUILD,
    )
    reply = await record.wait_for_response(timeout=30)
    if "always" not in reply.text().lower():
        raise RuntimeError(f"/quota settings keep_stems:always was not taken: {reply.text()[:300]}")


async def run(args: argparse.Namespace) -> Figures:
    figures = Figures(
        results=args.results,
        stems_per_result=12,
        stem_bytes=args.stem_bytes,
        concurrency=args.concurrency,
        upload_limit=args.upload_limit,
        trigger=args.trigger,
    )
    workdir = Path(tempfile.mkdtemp(prefix="stembot-keep-bench-"))
    members = [DEFAULT_USER_ID + i for i in range(args.results)]
    async with (
        SeparationApiSimulator(
            api_key=API_KEY,
            processing_seconds=args.api_seconds,
            callbacks=False,
            account_credits=10**9,
            stem_files=True,
            stem_bytes=args.stem_bytes,
        ) as sim,
        DiscordStandIn(ack_deadline=None, attachment_size_limit=args.upload_limit) as standin,
    ):
        env = bot_env(sim.base_url, poll_interval=0.2, callback_port=free_port())
        env.update(KEEP_CONCURRENCY=str(args.concurrency), DEFAULT_CREDITS="1000")
        bot = await standin.spawn("bot.__main__:main", extra_env=env, python=sys.executable, cwd=workdir)
        keep_folder = workdir / "data" / "keep-downloads"
        sampler = RssSampler(bot.pid, keep_folder)
        try:
            await standin.wait_ready(timeout=60)
            sampler.start()
            process = psutil.Process(bot.pid)
            if args.trigger == "always":
                await set_keep_always(standin)
                cpu_before = (sum(process.cpu_times()[:2]), time.process_time())
            say(f"{args.results} members split into 12 stems at once…")
            results = await split_all(standin, members, wait_seconds=60 + args.api_seconds + args.results)
            figures.delivered = len(results)
            if args.trigger == "button":
                await asyncio.sleep(1.0)  # settled: everything delivered, nothing kept yet
                presses = [(r, r.button(KEEP_BUTTON_LABEL)) for r in results]
                cpu_before = (sum(process.cpu_times()[:2]), time.process_time())
                started = time.monotonic()
                await asyncio.gather(
                    *(standin.click(r.messages[-1], cid, user_id=r.member) for r, cid in presses if cid)
                )
                if not all(cid for _, cid in presses):
                    figures.notes.append("a result offered no Keep in Discord button")
            else:
                # Each keep began as its result was delivered: the clock starts at the first one.
                first = min(delivery_wall_time(r.record, RESULT_MARK) or time.time() for r in results)
                started = time.monotonic() - (time.time() - first)
            figures.baseline_rss = sampler.peak(until=started)
            expected = len(results) * figures.stems_per_result
            total_bytes = expected * args.stem_bytes
            deadline = time.monotonic() + 60 + total_bytes / (5 * MiB)
            files_at: float | None = None
            last_report = 0.0
            while time.monotonic() < deadline:
                now = time.monotonic()
                posted = attachments_now(standin, results)
                kept = sum(r.button(KEPT_BUTTON_LABEL) is not None for r in results)
                if files_at is None and posted >= expected:
                    files_at = now
                if files_at is not None and kept == len(results):
                    break
                if now - last_report >= 1.0:
                    last_report = now
                    say(
                        f"  t={now - started:5.1f}s files {posted}/{expected} kept {kept}/{len(results)} "
                        f"rss {sampler.peak(since=now - 1.0) / MiB:.0f} MB (peak {sampler.peak() / MiB:.0f})"
                    )
                await asyncio.sleep(0.1)
            ended = time.monotonic()
            figures.bot_cpu = sum(process.cpu_times()[:2]) - cpu_before[0]
            figures.bench_cpu = time.process_time() - cpu_before[1]
            figures.files_seconds = (files_at or ended) - started
            figures.keep_seconds = ended - started
            figures.kept = sum(r.button(KEPT_BUTTON_LABEL) is not None for r in results)
            figures.attachments = attachments_now(standin, results)
            await asyncio.sleep(0.5)  # anything posted late, a second time, shows now
            figures.hwm = sampler.read("VmHWM") or 0
            figures.peak_rss = sampler.peak(since=started)
            check_files(standin, sim, results, figures)
            figures.attachments = attachments_now(standin, results)
            figures.leftover_files = (
                len(list(keep_folder.glob(f"*{PART_SUFFIX}"))) if keep_folder.exists() else 0
            )
            if standin.rejected:
                figures.notes.append(f"the stand-in refused {len(standin.rejected)} request(s)")
        finally:
            sampler.stop()
            figures.samples = len(sampler.samples)
            figures.folder_peak = sampler.folder_peak
            await bot.stop()
            if bot.returncode not in (0, -15) or "Traceback" in bot.output():
                say(bot.output()[-3000:])
                figures.notes.append(f"the bot exited with {bot.returncode} or logged a traceback")
            bot.cleanup()
    return figures


def print_table(result: dict[str, Any]) -> None:
    rows = [
        (
            "results kept at once",
            f"{result['results']} x 12 stems of {result['stem_mib']} MiB ({result['trigger']})",
        ),
        ("KEEP_CONCURRENCY / upload limit", f"{result['concurrency']} / {result['upload_limit_mib']} MiB"),
        (
            "attachments",
            f"{result['attachments']} of {result['expected']}, {result['files_per_message']} per message",
        ),
        (
            "wrong / missing / duplicated",
            f"{result['wrong_hash']} / {result['missing']} / {result['duplicates']}",
        ),
        ("results marked kept", f"{result['kept']} of {result['results']}"),
        ("time to post every file (s)", result["files_seconds"]),
        ("time to keep all (s)", result["keep_seconds"]),
        ("uploaded (MiB/s)", result["upload_mb_per_s"]),
        ("bot RSS before keeping (MB)", result["rss_mb_baseline"]),
        ("bot RSS peak while keeping (MB)", f"{result['rss_mb_peak']} (+{result['rss_mb_growth']})"),
        ("bot VmHWM at the end (MB)", result["vmhwm_mb"]),
        ("files waiting on disk, peak (MB)", result["disk_mb_peak"]),
        ("CPU s while keeping: bot / stand-ins", f"{result['bot_cpu_s']} / {result['bench_cpu_s']}"),
        ("target (MB)", f"{result['target_mb']}: {'met' if result['ok'] else 'NOT MET'}"),
    ]
    print_rows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description="Keeping many results in Discord at once: the bot's memory.")
    parser.add_argument(
        "--results", type=int, default=20, help="members whose 12-stem results are kept at once"
    )
    parser.add_argument(
        "--stem-bytes", "--stems-bytes", type=size, default=8 * MiB, help="size of every stem file"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="the bot's KEEP_CONCURRENCY")
    parser.add_argument(
        "--upload-limit", type=size, default=10 * MiB, help="the upload limit Discord reports (and enforces)"
    )
    parser.add_argument(
        "--trigger",
        choices=("button", "always"),
        default="button",
        help="every member presses Keep in Discord at once, or keep_stems:always keeps on delivery",
    )
    parser.add_argument("--api-seconds", type=float, default=0.5, help="simulated processing time")
    parser.add_argument(
        "--target-mb", type=float, default=TARGET_MB, help="the bot's RSS may not exceed this"
    )
    args = parser.parse_args()
    say(f"Keep benchmark ({os.cpu_count()} cores)…")
    figures = asyncio.run(run(args))
    result = figures.to_json(args.target_mb)
    print_table(result)
    for note in figures.notes:
        say(f"note: {note}")
    print(json.dumps(result))
    sys.exit(0 if result["ok"] and not figures.notes else 1)


if __name__ == "__main__":
    main()
