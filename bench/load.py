"""Load benchmark: many members splitting at once through the whole stack.

Runs the real `python -m bot` process between the local Discord stand-in (in this process) and
the API simulator (its own process), fires one `/split` per member at the same moment, and
measures what members experience. Prints a table, then one JSON line.

    python -m bench.load --members 200 --api-seconds 5 --poll-interval 0.5 --baseline
    python bench/load.py --members 200 --api-seconds 5 --poll-interval 0.5 --baseline   # the same
    python -m bench.load --ledger-only --postgres-server --stores 2   # the ledger on PostgreSQL
    python -m bench.load --ledger-only --postgres-server --processes 2 --monthly-budget 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
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
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as `python bench/load.py`: import the checkout, as -m does
    sys.path.insert(0, str(REPO_ROOT))

from bot.models import UNFINISHED_STATES, CreditPolicy, JobState, NewJob, Reservation  # noqa: E402
from bot.product import Mode  # noqa: E402
from bot.render.results import RESULT_MARK  # noqa: E402
from bot.settings import DatabaseTarget, PostgresURL, parse_database_url  # noqa: E402
from bot.store import Store  # noqa: E402
from testing.discord_standin import DEFAULT_USER_ID, BotProcess, DiscordStandIn, InteractionRecord  # noqa: E402

API_KEY = "bench-api-key"
READY = RESULT_MARK  # what every result message leads with
WORKING = "working on your track"  # the progress shown once the API has the job
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
    delivered_twice: int = 0
    ledger_mismatches: int = 0


async def start_simulator(
    args: argparse.Namespace, stats_path: Path, processing_seconds: float | None = None
) -> tuple[asyncio.subprocess.Process, str]:
    # By file, not as `bench.sim_server`: this script need not be run as part of a package.
    command = [
        sys.executable, str(Path(__file__).with_name("sim_server.py")), "--api-key", API_KEY,
        "--processing-seconds", str(args.api_seconds if processing_seconds is None else processing_seconds),
        "--stats", str(stats_path),
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


@dataclass
class Deployment:
    """The bot processes of one run: one, or one per shard (`SHARD_COUNT`) on a shared PostgreSQL."""

    bots: list[BotProcess]
    guilds: list[int | None]  # per process, the server its members split in (None: the default one)
    target: str = "bot.__main__:main"
    envs: list[dict[str, str]] = field(default_factory=list)  # per process, its environment
    workdir: Path | None = None

    def guild_of(self, member_index: int) -> int | None:
        return self.guilds[member_index % len(self.guilds)]


async def restart_process(standin: DiscordStandIn, deployment: Deployment, index: int) -> BotProcess:
    """Start process `index` again (after it stopped or was killed) with the environment it had,
    and wait until its shard is connected. Its earlier `BotProcess` (and log) is kept."""
    # Only the partial deployment a failed start tears down has no folder, and it is never restarted.
    assert deployment.workdir is not None
    bot = await standin.spawn(
        deployment.target, extra_env=deployment.envs[index], python=sys.executable, cwd=deployment.workdir
    )
    deployment.bots.append(bot)
    await standin.wait_for(lambda: standin.shard_ready(index), timeout=60)
    return bot


async def start_deployment(
    standin: DiscordStandIn,
    target: str,
    env: dict[str, str],
    workdir: Path,
    *,
    database: PostgresURL | None,
    processes: int,
    lease: float | None = None,
) -> Deployment:
    """Start `processes` bot processes (each with its own web server port; with more than one,
    `SHARD_COUNT` of them, one shard each, a server on each shard) and wait until all are ready."""
    if processes > 1 and database is None:
        raise SystemExit(
            "several bot processes need PostgreSQL: --database postgresql://… or --postgres-server"
        )
    bots: list[BotProcess] = []
    envs: list[dict[str, str]] = []
    guilds: list[int | None] = [None]
    if processes > 1:
        standin.shard_count = processes
        guilds = [
            standin.add_guild(shard=shard, name=f"Server on shard {shard}") for shard in range(processes)
        ]
    try:
        for shard in range(processes):
            own = {**env, "CALLBACK_PORT": str(free_port())}
            if database is not None:
                own["DATABASE_URL"] = database.reveal()
            if processes > 1:
                own.update(SHARD_COUNT=str(processes), SHARD_IDS=str(shard))
            if lease is not None:
                own["JOB_LEASE_SECONDS"] = str(lease)
            if "CALLBACK_PUBLIC_URL" in env:
                own["CALLBACK_PUBLIC_URL"] = f"http://127.0.0.1:{own['CALLBACK_PORT']}"
            envs.append(own)
            bots.append(await standin.spawn(target, extra_env=own, python=sys.executable, cwd=workdir))
            await standin.wait_ready(timeout=60, sessions=shard + 1)
        if processes > 1:
            await standin.wait_for(lambda: all(standin.shard_ready(s) for s in range(processes)), timeout=60)
    except BaseException:
        await stop_deployment(Deployment(bots, guilds))
        raise
    return Deployment(bots, guilds, target, envs, workdir)


async def stop_deployment(deployment: Deployment) -> None:
    for bot in deployment.bots:
        await bot.stop()
        if bot.returncode not in (0, -15, -9):
            say(bot.output()[-3000:])
        bot.cleanup()


async def run_burst(
    args: argparse.Namespace,
    *,
    target: str,
    poll_interval: float,
    database: PostgresURL | None = None,
    processes: int = 1,
) -> Run:
    """One burst of `args.members` simultaneous /split against `target` (in `processes` processes,
    members spread over their servers); returns the figures."""
    run = Run()
    workdir = Path(tempfile.mkdtemp(prefix="stembot-bench-"))
    stats_path = workdir / "sim.json"
    sim, base_url = await start_simulator(args, stats_path)
    db_path = workdir / "data" / "stembot.db"
    ours = target.startswith("bot.")
    tag = f"{time.time_ns():x}"  # tracks no earlier run on the same database has split
    try:
        async with DiscordStandIn(ack_deadline=None) as standin:
            env = bot_env(base_url, poll_interval=poll_interval, callback_port=0)
            if args.callbacks:
                # The safety-net polling stays at its slow default: delivery speed is the callbacks'.
                env["CALLBACK_PUBLIC_URL"] = "each process's own"
            deployment = await start_deployment(
                standin, target, env, workdir, database=database if ours else None, processes=processes
            )
            try:
                processes_ = [psutil.Process(bot.pid) for bot in deployment.bots]
                members = [DEFAULT_USER_ID + i for i in range(args.members)]
                started = time.monotonic()
                records: list[InteractionRecord] = list(
                    await asyncio.gather(
                        *(
                            standin.invoke(
                                "split",
                                {"task_id": "gen-bench", "audio_id": f"a-{tag}-{m}"},
                                user_id=m,
                                guild_id=deployment.guild_of(i),
                            )
                            for i, m in enumerate(members)
                        )
                    )
                )
                done_text = READY if ours else BASELINE_DONE
                deadline = started + args.api_seconds + max(60.0, poll_interval * 4) + args.members * 0.05
                pending = {r.user_id: r for r in records}
                delivered_at: dict[int, float | None] = {}
                while pending and time.monotonic() < deadline:
                    # Cheap checks only: this loop shares its process with the Discord stand-in.
                    run.rss_mb_peak = max(run.rss_mb_peak, *(p.memory_info().rss / 2**20 for p in processes_))
                    if ours:
                        in_flight = await jobs_in_flight(database or db_path)
                        run.jobs_in_flight_peak = max(run.jobs_in_flight_peak, in_flight)
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
                run.acks_ms = [latency * 1000 for r in records if (latency := r.ack_latency) is not None]
                run.not_acked = sum(not r.acked for r in records)
                run.delivered = len(delivered_at)
                run.delivered_twice = sum(times_shown(r, done_text) > 1 for r in records)
            finally:
                await stop_deployment(deployment)
        if ours:
            run.ledger_mismatches = await ledger_mismatches(database or db_path)
    finally:
        sim.terminate()
        await sim.wait()
    if stats_path.exists():
        stats = json.loads(stats_path.read_text())
        run.submits, run.polls = stats["submits"], stats["polls"]
        for task in stats["tasks"]:
            member = int(task["audio_id"].rsplit("-", 1)[1])
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


def times_shown(record: InteractionRecord, text: str) -> int:
    """How many versions of the member's response showed `text` (an edit per delivery: more than
    one is a result delivered twice; nothing else edits a result in these runs)."""
    if record.original is None:
        return 0
    return sum(
        text in (v.content or "") + json.dumps(v.embeds, ensure_ascii=False) for v in record.original.versions
    )


UNFINISHED_SQL = ", ".join(f"'{state.value}'" for state in UNFINISHED_STATES)


async def jobs_in_flight(database: DatabaseTarget) -> int:
    """Unfinished jobs in the bot's database (SQLite read-only, or PostgreSQL), 0 if unreadable."""
    sql = f"SELECT COUNT(*) FROM jobs WHERE state IN ({UNFINISHED_SQL})"
    if isinstance(database, PostgresURL):
        try:
            conn = await asyncpg.connect(database.reveal(), timeout=5)
        except (OSError, asyncpg.PostgresError):
            return 0
        try:
            return int(await conn.fetchval(sql))
        except asyncpg.PostgresError:
            return 0
        finally:
            await conn.close()
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as lite:
            return int(lite.execute(sql).fetchone()[0])
    except sqlite3.Error:
        return 0


async def ledger_mismatches(database: DatabaseTarget) -> int:
    """Accounts of the bot's database whose balance is not its ledger's sum (or is negative)."""
    store = await Store.open(database)
    try:
        mismatched = len(await store.accounts.ledger_mismatches())
        async with store.db.reading() as tx:
            negative = int(await tx.scalar("SELECT COUNT(*) FROM accounts WHERE balance < 0") or 0)
        return mismatched + negative
    finally:
        await store.close()


async def run_takeover(args: argparse.Namespace, database: PostgresURL) -> dict[str, Any]:
    """Lease takeover: two bot processes (one shard each) with `JOB_LEASE_SECONDS=args.lease`;
    `args.takeover_jobs` members of shard 0's server split at once (the API takes 1 s); once the
    API has every job, shard 0's process is SIGKILLed. Measures how long after the kill shard 1's
    process has delivered each of them, and that none was submitted, delivered or charged twice."""
    workdir = Path(tempfile.mkdtemp(prefix="stembot-bench-takeover-"))
    stats_path = workdir / "sim.json"
    sim, base_url = await start_simulator(args, stats_path, processing_seconds=1.0)
    tag = f"{time.time_ns():x}"
    lags: list[float] = []
    try:
        async with DiscordStandIn(ack_deadline=None) as standin:
            env = bot_env(base_url, poll_interval=args.poll_interval, callback_port=0)
            deployment = await start_deployment(
                standin, "bot.__main__:main", env, workdir, database=database, processes=2, lease=args.lease
            )
            try:
                members = [DEFAULT_USER_ID + i for i in range(args.takeover_jobs)]
                records = await asyncio.gather(
                    *(
                        standin.invoke(
                            "split",
                            {"task_id": "gen-takeover", "audio_id": f"t-{tag}-{m}"},
                            user_id=m,
                            guild_id=deployment.guilds[0],
                        )
                        for m in members
                    )
                )
                for record in records:
                    await record.wait_for_edit(lambda m: WORKING in m.text(), timeout=60)
                victim = deployment.bots[0]
                victim.proc.send_signal(signal.SIGKILL)
                await victim.proc.wait()
                killed = time.time()
                say(f"  [takeover] killed shard 0's process, which held {len(records)} submitted jobs")
                deadline = time.monotonic() + 4 * args.lease + 30
                seen: dict[int, float] = {}
                while len(seen) < len(records) and time.monotonic() < deadline:
                    for record in records:
                        if (
                            record.user_id not in seen
                            and (wall := delivery_wall_time(record, READY)) is not None
                        ):
                            seen[record.user_id] = wall
                    await asyncio.sleep(0.05)
                lags = [wall - killed for wall in seen.values()]
                twice = sum(times_shown(r, READY) > 1 for r in records)
            finally:
                await stop_deployment(deployment)
        mismatches = await ledger_mismatches(database)
    finally:
        sim.terminate()
        await sim.wait()
    submits = json.loads(stats_path.read_text())["submits"] if stats_path.exists() else 0
    all_over = len(lags) == args.takeover_jobs > 0
    return {
        "lease_seconds": args.lease,
        "takeover_jobs": args.takeover_jobs,
        "takeover_delivered": len(lags),
        # Not every job taken over and delivered: no time to report.
        "takeover_s_p50": round(percentile(lags, 50), 2) if all_over else None,
        "takeover_s_max": round(max(lags), 2) if all_over else None,
        "takeover_ratio": round(max(lags) / args.lease, 2) if all_over else None,
        "takeover_delivered_twice": twice,
        "takeover_submits_per_job": round(submits / max(1, args.takeover_jobs), 3),
        "takeover_ledger_mismatches": mismatches,
    }


LEDGER_COST = Mode.SEPARATE_VOCAL.cost
LEDGER_STARTING = LEDGER_COST * 10  # each member can afford ten
THIS_SCRIPT = str(Path(__file__).resolve())
WORKER_DATABASE = "STEMBOT_BENCH_DATABASE"  # the URL reaches a worker by environment, not argv


def ledger_job(guild: int, member: int, n: int) -> NewJob:
    # A different track each time: the same one would be shared (and free), not spent.
    key = f"{guild}-{member}-{n}"
    return NewJob(guild, 2, member, Mode.SEPARATE_VOCAL, "t", f"a-{key}", LEDGER_COST, f"cb-{key}")


def ledger_policy(monthly_budget: int | None = None) -> CreditPolicy:
    """`monthly_budget`: MONTHLY_BUDGET, the bot's cap for every server together (None: no cap).
    Every paid reservation counts against its one row for the month, capped or not."""
    return CreditPolicy(default_credits=LEDGER_STARTING, jobs_per_member=10**6, monthly_budget=monthly_budget)


async def ledger_worker(
    index: int, count: int, guild: int, members: int, attempts_per_member: int, monthly_budget: int | None
) -> None:
    """One of `count` OS processes sharing a ledger burst: opens its store, says "ready", waits
    for "go" on stdin, makes its share of the reservations (round robin), prints a JSON line."""
    database = parse_database_url(os.environ[WORKER_DATABASE])
    store = await Store.open(database, ledger_policy(monthly_budget))
    try:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        mine = [
            ledger_job(guild, m, n)
            for n in range(attempts_per_member)
            for m in range(members)
            if (n * members + m) % count == index
        ]
        start = time.time()
        results = await asyncio.gather(*(store.reservations.reserve(job) for job in mine))
        end = time.time()
    finally:
        await store.close()
    accepted = sum(r.job is not None for r in results)
    print(json.dumps({"attempts": len(mine), "accepted": accepted, "start": start, "end": end}), flush=True)


async def ledger_in_processes(
    database: PostgresURL,
    processes: int,
    members: int = 100,
    attempts_per_member: int = 30,
    monthly_budget: int | None = None,
) -> dict[str, Any]:
    """The ledger burst (3,000 reservations, 100 members with credit for 10 each) shared by
    `processes` OS processes on one PostgreSQL database, started together; reservations/s over
    the wall time from the first start to the last finish, and the overspend read back."""
    guild = int(time.time() * 1000)
    env = {**os.environ, WORKER_DATABASE: database.reveal()}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            THIS_SCRIPT,
            "--ledger-worker",
            f"{index}/{processes}",
            "--guild",
            str(guild),
            "--members",
            str(members),
            "--attempts",
            str(attempts_per_member),
            *(("--monthly-budget", str(monthly_budget)) if monthly_budget is not None else ()),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        for index in range(processes)
    ]
    for worker in workers:
        assert worker.stdout is not None
        line = await asyncio.wait_for(worker.stdout.readline(), 60)
        if line.strip() != b"ready":
            raise SystemExit(f"a ledger worker did not start: {line!r}")
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(b"go\n")
        await worker.stdin.drain()
    figures = []
    for worker in workers:
        out, _ = await worker.communicate()
        figures.append(json.loads(out.decode().strip().splitlines()[-1]))
    attempts = sum(f["attempts"] for f in figures)
    elapsed = max(f["end"] for f in figures) - min(f["start"] for f in figures)
    store = await Store.open(database, ledger_policy(monthly_budget))
    try:
        async with store.db.reading() as tx:
            spent = await tx.fetchall(
                "SELECT user_id, COUNT(*) FROM jobs WHERE guild_id = ? GROUP BY user_id", (guild,)
            )
        overspend = sum(max(0, int(row[1]) * LEDGER_COST - LEDGER_STARTING) for row in spent)
        overspend += len(await store.accounts.ledger_mismatches())
        overspend += await bot_budget_overspend(store)
    finally:
        await store.close()
    return {
        "database": "postgresql",
        "processes": processes,
        "monthly_budget": monthly_budget,
        "reservations_per_s": round(attempts / elapsed),
        "accepted": sum(f["accepted"] for f in figures),
        "attempts": attempts,
        "overspend": overspend,
    }


async def bot_budget_overspend(store: Store) -> int:
    """API credits counted past MONTHLY_BUDGET this month, plus any month where the bot's spend is
    not its servers' together."""
    bot = await store.budgets.bot()
    past = max(0, bot.spent - bot.budget) if bot.budget is not None else 0
    return past + len(await store.budgets.mismatches())


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
        from pgserver.postgres_server import get_server
    except ImportError:
        raise SystemExit("--postgres-server needs the pgserver package: pip install -e '.[test]'") from None
    with tempfile.TemporaryDirectory(prefix="stembot-bench-pg-") as folder:
        server = get_server(folder, cleanup_mode="stop")
        try:
            yield PostgresURL(server.get_uri())
        finally:
            server.cleanup()


@asynccontextmanager
async def fresh_database(server: PostgresURL, purpose: str) -> AsyncIterator[PostgresURL]:
    """A new database on the server `server` names (its role must be allowed to create
    databases), dropped afterwards: each part of a whole-stack run starts empty, so the bots never
    resume another part's jobs."""
    name = f"stembot_bench_{purpose}_{time.time_ns():x}"
    parts = urlsplit(server.reveal())
    url = PostgresURL(urlunsplit(parts._replace(path=f"/{name}")))
    conn = await asyncpg.connect(server.reveal())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield url
    finally:
        conn = await asyncpg.connect(server.reveal())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def ledger_on_postgres(
    server: PostgresURL, processes: int, synchronous: str, monthly_budget: int | None = None
) -> dict[str, Any]:
    async with fresh_database(server, "ledger") as url:
        if processes > 1:
            ledger = await ledger_in_processes(url, processes, monthly_budget=monthly_budget)
            ledger["reservations_per_s_while_submitting"] = None  # the one-process run measures it
            return ledger
        return await ledger_benchmark(synchronous=synchronous, database=url, monthly_budget=monthly_budget)


async def ledger_benchmark(
    members: int = 100,
    attempts_per_member: int = 30,
    synchronous: str = "submits",
    database: DatabaseTarget | None = None,
    stores: int = 1,
    monthly_budget: int | None = None,
) -> dict[str, Any]:
    """Reservations, many per member at once (credit for 10 each); then the same burst again while
    every job accepted by the first goes through its two submit transitions (`submitting`,
    `submitted` with a task id), as the runner writes them.

    `database`: a real SQLite file in a temporary folder (None), or the PostgreSQL database a URL
    names (the servers used are new ones each run, so it can run again on the same database).
    `stores`: how many stores (each with its own connections, as separate bot processes would
    have) share the burst, round robin. `synchronous` picks the durability of those writes (see
    SYNCHRONOUS; on PostgreSQL `full` is not offered). `monthly_budget`: MONTHLY_BUDGET (see
    `ledger_policy`)."""
    with tempfile.TemporaryDirectory() as folder:
        target = database or Path(folder) / "ledger.db"
        if isinstance(target, PostgresURL) and synchronous == "full":
            raise SystemExit("--synchronous full is SQLite's; on PostgreSQL use submits or normal")
        cost, starting = LEDGER_COST, LEDGER_STARTING
        opened = [await Store.open(target, ledger_policy(monthly_budget)) for _ in range(stores)]
        store = opened[0]
        if synchronous == "full":
            await store.db.write("PRAGMA synchronous = FULL")
        durable = synchronous == "submits"
        first_guild = int(time.time() * 1000)  # servers no earlier run used

        def burst(guild: int) -> list[Coroutine[Any, Any, Reservation]]:
            return [
                opened[(n * members + m) % stores].reservations.reserve(ledger_job(guild, m, n))
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
        overspend += await bot_budget_overspend(store)
        for each in opened:
            await each.close()
    return {
        "database": "postgresql" if isinstance(target, PostgresURL) else "sqlite",
        "stores": stores,
        "monthly_budget": monthly_budget,
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


async def main_async(args: argparse.Namespace, database: PostgresURL | None) -> dict[str, Any]:
    """The whole stack on SQLite (`database` None) or PostgreSQL (new databases on the server
    `database` names, one for each part), with `args.processes` bot processes; the ledger
    micro-benchmark on the same backend, shared by as many OS processes."""
    backend = "PostgreSQL" if database else "SQLite"
    say(f"Ledger micro-benchmark on {backend} ({os.cpu_count()} cores, {args.processes} process(es))…")
    if database is not None:
        ledger = await ledger_on_postgres(database, args.processes, args.synchronous, args.monthly_budget)
    else:
        ledger = await ledger_benchmark(synchronous=args.synchronous, monthly_budget=args.monthly_budget)
    say(
        f"StemBot on {backend}, {args.processes} process(es): {args.members} members at once, "
        f"API {args.api_seconds}s, poll {args.poll_interval}s…"
    )
    async with contextlib.AsyncExitStack() as scope:
        stack_database = (
            await scope.enter_async_context(fresh_database(database, "stack")) if database else None
        )
        ours = await run_burst(
            args,
            target="bot.__main__:main",
            poll_interval=args.poll_interval,
            database=stack_database,
            processes=args.processes,
        )
    baseline: Run | None = None
    if args.baseline:
        say("Baseline: a minimal discord.py bot that only defers and edits, same burst…")
        baseline = await run_burst(args, target="bench.baseline_bot:main", poll_interval=args.poll_interval)
    takeover: dict[str, Any] = {}
    if args.takeover:
        if database is None:
            raise SystemExit("--takeover needs PostgreSQL: --database postgresql://… or --postgres-server")
        say(f"Lease takeover: two processes, JOB_LEASE_SECONDS={args.lease}, {args.takeover_jobs} jobs…")
        async with fresh_database(database, "takeover") as takeover_database:
            takeover = await run_takeover(args, takeover_database)
    jobs = max(1, args.members)
    result = {
        "database": "postgresql" if database else "sqlite",
        "processes": args.processes,
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
        "delivered_twice": ours.delivered_twice,
        "delivery_lag_p50_ms": ms(percentile(ours.lags_ms, 50)),
        "delivery_lag_p99_ms": ms(percentile(ours.lags_ms, 99)),
        "api_submits_per_job": round(ours.submits / jobs, 3),
        "api_polls_per_job": round(ours.polls / jobs, 2),
        "rss_mb_peak": round(ours.rss_mb_peak, 1),
        "jobs_in_flight_peak": ours.jobs_in_flight_peak,
        "ledger_mismatches": ours.ledger_mismatches,
        "reservations_per_s": ledger["reservations_per_s"],
        "reservations_per_s_while_submitting": ledger["reservations_per_s_while_submitting"],
        "overspend": ledger["overspend"],
        "run_seconds": round(ours.seconds, 1),
        **takeover,
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
        ("delivered twice", result["delivered_twice"]),
        ("bot RSS peak (MB), per process", result["rss_mb_peak"]),
        ("jobs in flight, peak", result["jobs_in_flight_peak"]),
        ("ledger reservations / s", result["reservations_per_s"]),
        ("… while jobs are submitted", result["reservations_per_s_while_submitting"]),
        ("overspend (credits)", result["overspend"]),
        ("ledger mismatches after the burst", result["ledger_mismatches"]),
    ]
    if "takeover_s_max" in result:
        rows += [
            ("lease (JOB_LEASE_SECONDS)", result["lease_seconds"]),
            (
                "takeover after SIGKILL p50 / max (s)",
                f"{result['takeover_s_p50']} / {result['takeover_s_max']} "
                f"({result['takeover_ratio']} x the lease)",
            ),
            ("taken over and delivered", f"{result['takeover_delivered']} of {result['takeover_jobs']}"),
            (
                "… delivered twice / submits per job",
                f"{result['takeover_delivered_twice']} / {result['takeover_submits_per_job']}",
            ),
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
        help="the database: postgresql://user:password@host:5432/dbname for the whole stack and the "
        "ledger (default: new SQLite files); an sqlite:/// URL only with --ledger-only",
    )
    parser.add_argument(
        "--postgres-server",
        action="store_true",
        help="run on a throw-away PostgreSQL server of its own (needs pgserver)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="bot processes (SHARD_COUNT, one shard each; PostgreSQL only); with --ledger-only, OS "
        "processes sharing the ledger burst",
    )
    parser.add_argument(
        "--stores", type=int, default=1, help="--ledger-only: stores in this process sharing the burst"
    )
    parser.add_argument(
        "--takeover", action="store_true", help="also measure the lease takeover after a SIGKILL (PostgreSQL)"
    )
    parser.add_argument("--lease", type=float, default=5.0, help="JOB_LEASE_SECONDS for --takeover")
    parser.add_argument("--takeover-jobs", type=int, default=20, help="jobs the killed process holds")
    parser.add_argument(
        "--monthly-budget",
        type=int,
        help="MONTHLY_BUDGET for the ledger micro-benchmark: every reservation counts against the bot's "
        "one budget row, under this cap (default: no cap; make it large enough not to refuse: the "
        "burst accepts 1,000 reservations of 10 API credits each)",
    )
    parser.add_argument("--ledger-worker", help=argparse.SUPPRESS)  # INDEX/COUNT: one OS process's share
    parser.add_argument("--guild", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--attempts", type=int, default=30, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ledger_worker:
        index, count = (int(part) for part in args.ledger_worker.split("/"))
        asyncio.run(ledger_worker(index, count, args.guild, args.members, args.attempts, args.monthly_budget))
        return
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    if args.monthly_budget is not None and args.monthly_budget < 1:
        parser.error("--monthly-budget must be at least 1 (leave it out for no cap)")
    if args.ledger_only:

        async def ledger_only() -> dict[str, Any]:
            if not args.postgres_server:
                return await ledger_on(args.database)
            async with throwaway_postgres() as url:
                return await ledger_on(url)

        async def ledger_on(database: DatabaseTarget | None) -> dict[str, Any]:
            if args.processes > 1:
                if not isinstance(database, PostgresURL):
                    raise SystemExit(
                        "--processes needs PostgreSQL: --database postgresql://… or --postgres-server"
                    )
                return await ledger_in_processes(database, args.processes, monthly_budget=args.monthly_budget)
            return await ledger_benchmark(
                database=database,
                synchronous=args.synchronous,
                stores=args.stores,
                monthly_budget=args.monthly_budget,
            )

        say(f"Ledger micro-benchmark ({os.cpu_count()} cores), synchronous {args.synchronous}…")
        print(json.dumps(asyncio.run(ledger_only())))
        return
    if args.database is not None and not isinstance(args.database, PostgresURL):
        parser.error(
            "the whole-stack run takes a postgresql:// --database (new SQLite files are its default)"
        )

    async def whole_stack() -> dict[str, Any]:
        if not args.postgres_server:
            return await main_async(args, args.database)
        async with throwaway_postgres() as url:
            return await main_async(args, url)

    result = asyncio.run(whole_stack())
    print_table(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
