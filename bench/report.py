"""Report benchmark: the usage reports over a year of a busy server's ledger.

Fills a database (SQLite on a temporary file, or PostgreSQL with `--postgres-server`) with
`--rows` ledger rows over the last 365 days (a million by default): one busy server whose jobs
are reserved and charged, a few percent refunded, with refills and moderators' grants between,
and `--servers` quieter servers for the owner's report. Then times, through the real report
service: `/quota report` over 365 and 30 days (the whole server, and one member), `/stembot report`
over 365 days, `/quota export` over 30 days; drawing the chart in-process and in the worker process
(its first chart includes starting it); and the peak memory the report's queries allocate in the
bot's process (tracemalloc) and the processes' resident memory. Prints a table, then one JSON line.

    python -m bench.report                       # SQLite, 1,000,000 rows
    python bench/report.py --postgres-server     # the same on a throw-away PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as `python bench/report.py`: import the checkout, as -m does
    sys.path.insert(0, str(REPO_ROOT))

from bench.load import print_rows, throwaway_postgres  # noqa: E402
from bot import charts  # noqa: E402
from bot.credits import CreditService  # noqa: E402
from bot.models import CreditPolicy  # noqa: E402
from bot.quota import Actor, QuotaService, SettingsChange  # noqa: E402
from bot.render import usage  # noqa: E402
from bot.reports import ReportService  # noqa: E402
from bot.settings import PostgresURL  # noqa: E402
from bot.store import Store  # noqa: E402

BUSY = 100_000_000_000_000_001
MODERATOR = Actor(1, manage_guild=True)
DAY = 86_400.0
JOB_COLUMNS = (
    "id",
    "guild_id",
    "channel_id",
    "user_id",
    "mode",
    "source_task_id",
    "audio_id",
    "cost",
    "state",
    "callback_token",
    "created_at",
    "finished_at",
    "budget_cost",
    "budget_month",
)
LEDGER_COLUMNS = (
    "guild_id",
    "user_id",
    "kind",
    "amount",
    "allowance_change",
    "bonus_change",
    "balance_after",
    "job_id",
    "actor_id",
    "reason",
    "created_at",
)


def month(epoch: float) -> str:
    return time.strftime("%Y-%m", time.gmtime(epoch))


def generate(
    rows: int, servers: int, members: int, now: float, seed: int = 1
) -> Iterator[tuple[list[Any], list[Any]]]:
    """(jobs, ledger rows) in chunks: about two ledger rows per job (reserve, then charge or refund),
    one in twenty-five rows a refill or a grant."""
    rng = random.Random(seed)
    job_id = 0
    made = 0
    start = now - 365 * DAY
    while made < rows:
        jobs: list[Any] = []
        ledger: list[Any] = []
        for _ in range(5000):
            at = start + rng.random() * 365 * DAY
            guild = BUSY if rng.random() < 0.9 or servers == 0 else BUSY + 1 + rng.randrange(servers)
            user = 1000 + rng.randrange(members)
            if rng.random() < 0.04:
                kind = rng.choice(("refill", "grant"))
                amount = rng.choice((10, 50, 100))
                ledger.append(
                    (
                        guild,
                        user,
                        kind,
                        amount,
                        amount,
                        0,
                        500,
                        None,
                        1 if kind == "grant" else None,
                        "bench" if kind == "grant" else None,
                        at,
                    )
                )
                made += 1
                continue
            job_id += 1
            two = rng.random() < 0.7
            mode, cost = ("separate_vocal", 10) if two else ("split_stem", 50)
            failed = rng.random() < 0.05
            done = at + 30 + rng.random() * 600
            jobs.append(
                (
                    job_id,
                    guild,
                    1,
                    user,
                    mode,
                    "gen",
                    f"a{job_id}",
                    cost,
                    "failed" if failed else "succeeded",
                    f"cb{job_id}",
                    at,
                    done,
                    cost,
                    month(at),
                )
            )
            ledger.append((guild, user, "reserve", -cost, -cost, 0, 500, job_id, None, None, at))
            if failed:
                ledger.append((guild, user, "refund", cost, cost, 0, 500, job_id, None, None, done))
            else:
                ledger.append((guild, user, "charge", 0, 0, 0, 500, job_id, None, None, done))
            made += 2
        yield jobs, ledger


async def fill(target: Path | PostgresURL, args: argparse.Namespace, now: float) -> float:
    """The database, migrated and filled; seconds it took."""
    began = time.perf_counter()
    await (await Store.open(target)).close()  # the schema
    chunks = generate(args.rows, args.servers, args.members, now)
    if isinstance(target, Path):
        conn = sqlite3.connect(target)
        for jobs, ledger in chunks:
            conn.executemany(
                f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({', '.join('?' * len(JOB_COLUMNS))})",
                jobs,
            )
            conn.executemany(
                f"INSERT INTO ledger ({', '.join(LEDGER_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(LEDGER_COLUMNS))})",
                ledger,
            )
        conn.commit()
        conn.execute("ANALYZE")
        conn.close()
    else:
        pg = await asyncpg.connect(target.reveal())  # noqa: ASYNC240 -- a URL, not a path
        try:
            for jobs, ledger in chunks:
                await pg.copy_records_to_table("jobs", records=jobs, columns=JOB_COLUMNS)
                await pg.copy_records_to_table("ledger", records=ledger, columns=LEDGER_COLUMNS)
            await pg.execute(
                "SELECT setval(pg_get_serial_sequence('jobs', 'id'), (SELECT MAX(id) FROM jobs))"
            )
            await pg.execute("ANALYZE")
        finally:
            await pg.close()
    return time.perf_counter() - began


async def timed(work: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, Any, int]:
    """The median seconds of `runs` runs, the last result, and the peak Python memory one run
    allocated (tracemalloc, bytes)."""
    seconds = []
    result = None
    peak = 0
    for _ in range(runs):
        tracemalloc.start()
        began = time.perf_counter()
        result = await work()
        seconds.append(time.perf_counter() - began)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return statistics.median(seconds), result, peak


async def no_account() -> int | None:
    return None


async def measure(target: Path | PostgresURL, args: argparse.Namespace, now: float) -> dict[str, Any]:
    store = await Store.open(target, CreditPolicy(server_monthly_budget=100_000), clock=lambda: now)
    quota = QuotaService(store, CreditService(store.accounts), clock=lambda: now)
    await quota.update_settings(BUSY, MODERATOR, SettingsChange(timezone="Europe/Berlin"))
    reports = ReportService(store, quota, no_account, clock=lambda: now)
    figures: dict[str, Any] = {}
    process = psutil.Process()
    try:
        for name, work in (
            ("report_365_days", lambda: reports.usage(BUSY, MODERATOR, 365)),
            ("report_30_days", lambda: reports.usage(BUSY, MODERATOR, 30)),
            ("report_member_365_days", lambda: reports.usage(BUSY, MODERATOR, 365, member_id=1000)),
            ("owner_365_days", lambda: reports.owner(365)),
        ):
            seconds, _, peak = await timed(work, args.runs)
            figures[name] = {"seconds": round(seconds, 3), "peak_python_mib": round(peak / 2**20, 2)}
        year = await reports.usage(BUSY, MODERATOR, 365)
        figures["report_365_days"]["spent"] = year.total_spent

        with tempfile.TemporaryDirectory() as folder:

            async def export() -> Any:
                made = await reports.export(BUSY, MODERATOR, 30, upload_limit=25 * 2**20, folder=Path(folder))
                os.unlink(made.path)
                return made

            seconds, made, peak = await timed(export, args.runs)
        figures["export_30_days"] = {
            "seconds": round(seconds, 3),
            "rows": made.rows,
            "mib": round(made.size / 2**20, 2),
            "peak_python_mib": round(peak / 2**20, 2),
        }

        spec = usage.usage_chart(year)
        began = time.perf_counter()
        png = charts.draw(spec)
        figures["draw_in_process"] = {
            "seconds": round(time.perf_counter() - began, 3),
            "png_kib": len(png) // 1024,
        }
        began = time.perf_counter()
        await reports.draw(spec)
        first = time.perf_counter() - began
        began = time.perf_counter()
        await reports.draw(spec)
        warm = time.perf_counter() - began
        workers = [p.memory_info().rss for p in process.children(recursive=True)]
        figures["draw_in_worker"] = {
            "first_seconds": round(first, 3),
            "seconds": round(warm, 3),
            "worker_rss_mib": round(max(workers, default=0) / 2**20, 1),
        }
        figures["bot_rss_mib"] = round(process.memory_info().rss / 2**20, 1)
    finally:
        reports.close()
        await store.close()
    return figures


async def run(args: argparse.Namespace) -> dict[str, Any]:
    now = time.time()
    async with contextlib.AsyncExitStack() as scope:
        if args.postgres_server:
            target: Path | PostgresURL = await scope.enter_async_context(throwaway_postgres())
        else:
            folder = scope.enter_context(tempfile.TemporaryDirectory(prefix="stembot-bench-report-"))
            target = Path(folder) / "report.db"
        filled = await fill(target, args, now)
        figures = await measure(target, args, now)
    return {
        "backend": "postgresql" if args.postgres_server else "sqlite",
        "rows": args.rows,
        "fill_seconds": round(filled, 1),
        **figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="The usage reports over a year of a busy server's ledger.")
    parser.add_argument("--rows", type=int, default=1_000_000, help="ledger rows over the last 365 days")
    parser.add_argument("--servers", type=int, default=30, help="quieter servers beside the busy one")
    parser.add_argument("--members", type=int, default=2000, help="members of the busy server")
    parser.add_argument("--runs", type=int, default=3, help="runs of each query (the median is shown)")
    parser.add_argument("--postgres-server", action="store_true", help="a throw-away PostgreSQL (pgserver)")
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    rows = [(key, json.dumps(value)) for key, value in figures.items()]
    print_rows(rows)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
