"""Load benchmark: many members splitting at once through the whole stack.

Runs the real `python -m bot` process between the local Discord stand-in (in this process) and
the API simulator (its own process), fires one `/split` per member at the same moment, and
measures what members experience. Prints a table, then one JSON line.

    python -m bench.load --members 200 --api-seconds 5 --poll-interval 0.5 --baseline
    python bench/load.py --members 200 --api-seconds 5 --poll-interval 0.5 --baseline   # the same
    python -m bench.load --ledger-only --postgres-server --stores 2   # the ledger on PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as `python bench/load.py`: import the checkout, as -m does
    sys.path.insert(0, str(REPO_ROOT))

from bot.models import UNFINISHED_STATES, CreditPolicy, JobState, NewJob, Reservation  # noqa: E402
from bot.product import Mode  # noqa: E402
from bot.render.results import RESULT_MARK  # noqa: E402
from bot.settings import DatabaseTarget, PostgresURL, parse_database_url  # noqa: E402
from bot.store import Store  # noqa: E402
from testing.discord_standin import DEFAULT_USER_ID, DiscordStandIn, InteractionRecord  # noqa: E402

API_KEY = "bench-api-key"
READY = RESULT_MARK  # what every result message leads with
BASELINE_DONE = "queued"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_env(api_url: str, *, poll_interval: float, callback_port: int) -> dict[str, str]:
    """The environment of a benchmarked bot process: this checkout, the API at `api_url`, its
    database under the process's working directory, quiet logs."""
    return {
        "SEPARATION_API_KEY": API_KEY,
        "SEPARATION_API_URL": api_url,
        "DATABASE_URL": "sqlite:///data/stembot.db",
        "POLL_INTERVAL_SECONDS": str(poll_interval),
        "JOB_TIMEOUT_MINUTES": "60",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO_ROOT),
        "DEV_GUILD_ID": "",
        "CALLBACK_HOST": "127.0.0.1",
        "CALLBACK_PORT": str(callback_port),
    }


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Run:
    acks_ms: list[float] = field(default_factory=list)
    lags_ms: list[float] = field(default_factory=list)
    delivered: int = 0
    not_acked: int = 0
    rss_mb_peak: float = 0.0
    jobs_in_flight_peak: int = 0
    submits: int = 0
    polls: int = 0
    seconds: float = 0.0


async def start_simulator(
    args: argparse.Namespace, stats_path: Path
) -> tuple[asyncio.subprocess.Process, str]:
    # By file, not as `bench.sim_server`: this script need not be run as part of a package.
    command = [
        sys.executable, str(Path(__file__).with_name("sim_server.py")), "--api-key", API_KEY,
        "--processing-seconds", str(args.api_seconds), "--stats", str(stats_path),
    ]  # fmt: skip
    if args.callbacks:
        command.append("--callbacks")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = await asyncio.create_subprocess_exec(
        *command, cwd=REPO_ROOT, env=env, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    base_url = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
    return proc, base_url


async def run_burst(args: argparse.Namespace, *, target: str, poll_interval: float) -> Run:
    """One burst of `args.members` simultaneous /split against `target`; returns the figures."""
    run = Run()
    workdir = Path(tempfile.mkdtemp(prefix="stembot-bench-"))
    stats_path = workdir / "sim.json"
    sim, base_url = await start_simulator(args, stats_path)
    db_path = workdir / "data" / "stembot.db"
    ours = target.startswith("bot.")
    try:
        async with DiscordStandIn(ack_deadline=None) as standin:
            port = free_port()
            env = bot_env(base_url, poll_interval=poll_interval, callback_port=port)
            if args.callbacks:
                # The safety-net polling stays at its slow default: delivery speed is the callbacks'.
                env["CALLBACK_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
            bot = await standin.spawn(target, extra_env=env, python=sys.executable, cwd=workdir)
            try:
                await standin.wait_ready(timeout=60)
                process = psutil.Process(bot.pid)
                members = [DEFAULT_USER_ID + i for i in range(args.members)]
                started = time.monotonic()
                records: list[InteractionRecord] = list(
                    await asyncio.gather(
                        *(
                            standin.invoke("split", {"task_id": "gen-bench", "audio_id": f"a-{m}"}, user_id=m)
                            for m in members
                        )
                    )
                )
                done_text = READY if ours else BASELINE_DONE
                deadline = started + args.api_seconds + max(60.0, poll_interval * 4) + args.members * 0.05
                pending = {r.user_id: r for r in records}
                delivered_at: dict[int, float | None] = {}
                while pending and time.monotonic() < deadline:
                    # Cheap checks only: this loop shares its process with the Discord stand-in.
                    run.rss_mb_peak = max(run.rss_mb_peak, process.memory_info().rss / 2**20)
                    if ours and db_path.exists():
                        run.jobs_in_flight_peak = max(run.jobs_in_flight_peak, jobs_in_flight(db_path))
                    for member, record in list(pending.items()):
                        seen = delivery_wall_time(record, done_text)
                        if seen is not None:
                            delivered_at[member] = seen
                            del pending[member]
                    acked = sum(r.acked for r in records)
                    say(
                        f"  [{target.split('.')[0]}] t={time.monotonic() - started:5.1f}s acked {acked}/"
                        f"{len(records)} delivered {len(delivered_at)}/{len(records)} "
                        f"in flight (peak) {run.jobs_in_flight_peak if ours else '-'} rss "
                        f"{run.rss_mb_peak:.0f} MB"
                    )
                    await asyncio.sleep(1.0)
                run.seconds = time.monotonic() - started
                run.acks_ms = [r.ack_latency * 1000 for r in records if r.acked]
                run.not_acked = sum(not r.acked for r in records)
                run.delivered = len(delivered_at)
            finally:
                await bot.stop()
                if bot.returncode not in (0, -15):
                    say(bot.output()[-3000:])
                bot.cleanup()
    finally:
        sim.terminate()
        await sim.wait()
    if stats_path.exists():
        stats = json.loads(stats_path.read_text())
        run.submits, run.polls = stats["submits"], stats["polls"]
        for task in stats["tasks"]:
            member = int(task["audio_id"].removeprefix("a-"))
            seen = delivered_at.get(member)
            if seen is not None:
                run.lags_ms.append((seen - task["complete_at"]) * 1000)
    return run


def delivery_wall_time(record: InteractionRecord, text: str) -> float | None:
    """When the member could first read `text` in their response (wall clock)."""
    if record.original is None or not record.original.edits:
        return None
    for version in record.original.edits:
        shown = version.content or ""
        shown += json.dumps(version.embeds, ensure_ascii=False)
        if text in shown:
            return version.wall
    return None


def jobs_in_flight(db_path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1) as conn:
            states = ", ".join(f"'{state.value}'" for state in UNFINISHED_STATES)
            row = conn.execute(f"SELECT COUNT(*) FROM jobs WHERE state IN ({states})").fetchone()
            return int(row[0])
    except sqlite3.Error:
        return 0


SYNCHRONOUS = {
    "submits": "NORMAL, FULL around the two submit transitions (what the bot does)",
    "normal": "NORMAL for every write",
    "full": "FULL for every write",
}


@asynccontextmanager
async def throwaway_postgres() -> AsyncIterator[PostgresURL]:
    """A PostgreSQL server of its own for one run (the `pgserver` package, from the test extra),
    stopped and deleted afterwards."""
    try:
        import pgserver  # type: ignore[import-untyped]
    except ImportError:
        raise SystemExit("--postgres-server needs the pgserver package: pip install -e '.[test]'") from None
    with tempfile.TemporaryDirectory(prefix="stembot-bench-pg-") as folder:
        server = pgserver.get_server(folder, cleanup_mode="stop")
        try:
            yield PostgresURL(server.get_uri())
        finally:
            server.cleanup()


async def ledger_benchmark(
    members: int = 100,
    attempts_per_member: int = 30,
    synchronous: str = "submits",
    database: DatabaseTarget | None = None,
    stores: int = 1,
) -> dict[str, Any]:
    """Reservations, many per member at once (credit for 10 each); then the same burst again while
    every job accepted by the first goes through its two submit transitions (`submitting`,
    `submitted` with a task id), as the runner writes them.

    `database`: a real SQLite file in a temporary folder (None), or the PostgreSQL database a URL
    names (the servers used are new ones each run, so it can run again on the same database).
    `stores`: how many stores (each with its own connections, as separate bot processes would
    have) share the burst, round robin. `synchronous` picks the durability of those writes (see
    SYNCHRONOUS; on PostgreSQL `full` is not offered)."""
    with tempfile.TemporaryDirectory() as folder:
        target = database or Path(folder) / "ledger.db"
        if isinstance(target, PostgresURL) and synchronous == "full":
            raise SystemExit("--synchronous full is SQLite's; on PostgreSQL use submits or normal")
        cost = Mode.SEPARATE_VOCAL.cost
        starting = cost * 10
        policy = CreditPolicy(default_credits=starting, jobs_per_member=10**6)
        opened = [await Store.open(target, policy) for _ in range(stores)]
        store = opened[0]
        if synchronous == "full":
            await store.db.write("PRAGMA synchronous = FULL")
        durable = synchronous == "submits"
        first_guild = int(time.time() * 1000)  # servers no earlier run used

        def job(guild: int, member: int, n: int) -> NewJob:
            # A different track each time: the same one would be shared (and free), not spent.
            key = f"{guild}-{member}-{n}"
            return NewJob(guild, 2, member, Mode.SEPARATE_VOCAL, "t", f"a-{key}", cost, f"cb-{key}")

        def burst(guild: int) -> list[Coroutine[Any, Any, Reservation]]:
            return [
                opened[(n * members + m) % stores].reservations.reserve(job(guild, m, n))
                for n in range(attempts_per_member)
                for m in range(members)
            ]

        async def submit(job_id: int) -> None:
            await store.jobs.transition(job_id, [JobState.RESERVED], JobState.SUBMITTING, durable=durable)
            await store.jobs.transition(
                job_id, [JobState.SUBMITTING], JobState.SUBMITTED, durable=durable, api_task_id=f"t-{job_id}"
            )

        started = time.perf_counter()
        results = await asyncio.gather(*burst(first_guild))
        elapsed = time.perf_counter() - started
        accepted = [r.job for r in results if r.job is not None]

        started = time.perf_counter()
        submitting = asyncio.gather(*(submit(j.id) for j in accepted))
        mixed = await asyncio.gather(*burst(first_guild + 1))
        mixed_elapsed = time.perf_counter() - started
        await submitting
        submit_elapsed = time.perf_counter() - started

        spent: dict[tuple[int, int], int] = {}
        for r in [*results, *mixed]:
            if r.job is not None:
                key = (r.job.guild_id, r.job.user_id)
                spent[key] = spent.get(key, 0) + 1
        overspend = sum(max(0, n * cost - starting) for n in spent.values())
        overspend += len(await store.accounts.ledger_mismatches())
        for each in opened:
            await each.close()
    return {
        "database": "postgresql" if isinstance(target, PostgresURL) else "sqlite",
        "stores": stores,
        "synchronous": synchronous,
        "reservations_per_s": round(len(results) / elapsed),
        "reservations_per_s_while_submitting": round(len(mixed) / mixed_elapsed),
        "submit_transitions_per_s": round(2 * len(accepted) / submit_elapsed),
        "accepted": len(accepted),
        "attempts": len(results),
        "overspend": overspend,
    }


def ms(value: float) -> float:
    return round(value, 1)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    say(f"Ledger micro-benchmark ({os.cpu_count()} cores)…")
    ledger = await ledger_benchmark(synchronous=args.synchronous)  # the whole-stack run is SQLite's
    say(f"StemBot: {args.members} members at once, API {args.api_seconds}s, poll {args.poll_interval}s…")
    ours = await run_burst(args, target="bot.__main__:main", poll_interval=args.poll_interval)
    baseline: Run | None = None
    if args.baseline:
        say("Baseline: a minimal discord.py bot that only defers and edits, same burst…")
        baseline = await run_burst(args, target="bench.baseline_bot:main", poll_interval=args.poll_interval)
    jobs = max(1, args.members)
    result = {
        "members": args.members,
        "api_seconds": args.api_seconds,
        "poll_interval": args.poll_interval,
        "callbacks": args.callbacks,
        "ack_p50_ms": ms(percentile(ours.acks_ms, 50)),
        "ack_p99_ms": ms(percentile(ours.acks_ms, 99)),
        "ack_max_ms": ms(max(ours.acks_ms, default=0)),
        "not_acked": ours.not_acked,
        "baseline_ack_p99_ms": ms(percentile(baseline.acks_ms, 99)) if baseline else None,
        "ack_p99_ratio": round(percentile(ours.acks_ms, 99) / max(percentile(baseline.acks_ms, 99), 0.001), 2)
        if baseline
        else None,
        "delivered": ours.delivered,
        "delivery_lag_p50_ms": ms(percentile(ours.lags_ms, 50)),
        "delivery_lag_p99_ms": ms(percentile(ours.lags_ms, 99)),
        "api_submits_per_job": round(ours.submits / jobs, 3),
        "api_polls_per_job": round(ours.polls / jobs, 2),
        "rss_mb_peak": round(ours.rss_mb_peak, 1),
        "jobs_in_flight_peak": ours.jobs_in_flight_peak,
        "reservations_per_s": ledger["reservations_per_s"],
        "reservations_per_s_while_submitting": ledger["reservations_per_s_while_submitting"],
        "overspend": ledger["overspend"],
        "run_seconds": round(ours.seconds, 1),
    }
    return result


def print_table(result: dict[str, Any]) -> None:
    rows = [
        ("members splitting at once", result["members"]),
        (
            "ack p50 / p99 / max (ms)",
            f"{result['ack_p50_ms']} / {result['ack_p99_ms']} / {result['ack_max_ms']}",
        ),
        ("baseline ack p99 (ms)", result["baseline_ack_p99_ms"]),
        ("ack p99 ratio (ours / baseline)", result["ack_p99_ratio"]),
        ("delivered", f"{result['delivered']} of {result['members']}"),
        ("delivery lag p50 / p99 (ms)", f"{result['delivery_lag_p50_ms']} / {result['delivery_lag_p99_ms']}"),
        ("API submits per job", result["api_submits_per_job"]),
        ("API polls per job", result["api_polls_per_job"]),
        ("bot RSS peak (MB)", result["rss_mb_peak"]),
        ("jobs in flight, peak", result["jobs_in_flight_peak"]),
        ("ledger reservations / s", result["reservations_per_s"]),
        ("… while jobs are submitted", result["reservations_per_s_while_submitting"]),
        ("overspend (credits)", result["overspend"]),
    ]
    print_rows(rows)


def print_rows(rows: list[tuple[str, Any]]) -> None:
    """A benchmark's figures as two aligned columns."""
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description="Load benchmark of the whole StemBot stack.")
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--api-seconds", type=float, default=5.0, help="simulated processing time")
    parser.add_argument("--poll-interval", type=float, default=0.5)
    parser.add_argument("--baseline", action="store_true", help="also run the minimal bot for ack_p99_ratio")
    parser.add_argument("--callbacks", action="store_true", help="let the API call the bot back")
    parser.add_argument(
        "--ledger-only", action="store_true", help="run only the ledger micro-benchmark (a few seconds)"
    )
    parser.add_argument(
        "--synchronous",
        choices=sorted(SYNCHRONOUS),
        default="submits",
        help="durability of the ledger micro-benchmark's writes: "
        + "; ".join(f"{k}: {v}" for k, v in SYNCHRONOUS.items()),
    )
    parser.add_argument(
        "--database",
        type=parse_database_url,
        help="the ledger micro-benchmark's database: postgresql://user:password@host:5432/dbname "
        "(default: a new SQLite file)",
    )
    parser.add_argument(
        "--postgres-server",
        action="store_true",
        help="run the ledger micro-benchmark on a throw-away PostgreSQL server (needs pgserver)",
    )
    parser.add_argument(
        "--stores", type=int, default=1, help="stores (connection sets, as bot processes) sharing the burst"
    )
    args = parser.parse_args()
    if args.ledger_only or args.database or args.postgres_server:

        async def ledger_only() -> dict[str, Any]:
            options = {"synchronous": args.synchronous, "stores": args.stores}
            if not args.postgres_server:
                return await ledger_benchmark(database=args.database, **options)
            async with throwaway_postgres() as url:
                return await ledger_benchmark(database=url, **options)

        say(f"Ledger micro-benchmark ({os.cpu_count()} cores), synchronous {args.synchronous}…")
        print(json.dumps(asyncio.run(ledger_only())))
        return
    result = asyncio.run(main_async(args))
    print_table(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
