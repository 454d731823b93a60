"""Chaos soak: two real bot processes on one PostgreSQL, killed and restarted at random, with API
faults at random, then every invariant checked (`testing.chaos.check`).

Two `python -m bot` processes (one shard each, a server on each shard) run against the Discord
stand-in and the API simulator (both in this process) on a throw-away PostgreSQL server
(`--postgres-server`, pgserver) or a database you name (`--database`: a new database is made on
that server and dropped afterwards). Members split in waves in both servers, many of them the
same tracks (shared jobs across the servers); one process is SIGKILLed and restarted several
times at random moments; the API answers 5xx, 455 maintenance, garbage polls and a proxy's HTML
error page after accepting a submit, at random. `JOB_LEASE_SECONDS` is short, so jobs of a killed
process are taken over within the run. Every choice (who splits what in which wave, when the
process dies and for how long, which faults, when) comes from `--seed`, so a run is reproducible
in its choices (not in its timing: two cores shared with other work decide that).

Prints a table, the violations found, then one JSON line; exits 1 if any invariant was violated.

    python -m bench.chaos --postgres-server --seed 1
    python bench/chaos.py --postgres-server --seed 2 --members 90 --waves 6 --kills 4 --minutes 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as `python bench/chaos.py`: import the checkout, as -m does
    sys.path.insert(0, str(REPO_ROOT))

from bench.load import (  # noqa: E402
    API_KEY,
    Deployment,
    bot_env,
    fresh_database,
    print_rows,
    restart_process,
    say,
    start_deployment,
    stop_deployment,
    throwaway_postgres,
)
from bot.product import Mode  # noqa: E402
from bot.settings import PostgresURL, parse_database_url  # noqa: E402
from testing.chaos import Evidence, Findings, answer_of, check, describe, gather  # noqa: E402
from testing.discord_standin import DEFAULT_USER_ID, BotProcess, DiscordStandIn, InteractionRecord  # noqa: E402
from testing.provider_api import Fault, SeparationApiSimulator  # noqa: E402

PROCESSES = 2
VICTIM = 0  # the shard whose process is killed (the other one survives and takes over)

FAULTS: list[tuple[str, str, Fault, float]] = [
    # (name, endpoint, fault, weight)
    ("submit 500", "submit", Fault("http", status=500, msg="Internal Server Error"), 2),
    ("submit 503", "submit", Fault("http", status=503, msg="Service Unavailable"), 1),
    ("submit 455 maintenance", "submit", Fault("code", status=455, msg="system maintenance"), 2),
    ("proxy 502 page after an accepted submit", "submit", Fault("accept_and_html", status=502), 1),
    ("poll 500", "record", Fault("http", status=500, msg="Internal Server Error"), 1),
    ("poll 455 maintenance", "record", Fault("code", status=455, msg="system maintenance"), 1),
    ("garbage poll", "record", Fault("garbage"), 2),
]


@dataclass(frozen=True)
class Split:
    member: int  # index of the member (user id DEFAULT_USER_ID + member)
    shard: int  # the server (on that shard) they split in
    track: int
    mode: Mode


@dataclass(frozen=True)
class Kill:
    at: float  # seconds after the first wave
    down: float  # seconds the process stays dead before it is started again
    wave: int  # the wave it falls in
    on_ack: int | None = None  # kill the instant the victim acknowledged this many of the wave's splits


@dataclass(frozen=True)
class Plan:
    """Every random choice of a run, made up front from the seed."""

    waves: list[list[Split]]
    wave_at: list[float]  # seconds after the first wave
    kills: list[Kill]
    faults: list[tuple[float, int]]  # (seconds after the first wave, index into FAULTS)
    processing: dict[int, float]  # per track, the API's processing time

    @classmethod
    def make(cls, args: argparse.Namespace) -> Plan:
        rng = random.Random(args.seed)
        tracks = plan_tracks(args)
        members = list(range(args.members))
        rng.shuffle(members)
        per_wave = -(-args.members // args.waves)
        waves = [
            [
                Split(
                    member=m,
                    shard=m % PROCESSES,
                    track=rng.randrange(tracks),
                    mode=Mode.SPLIT_STEM if rng.random() < 0.2 else Mode.SEPARATE_VOCAL,
                )
                for m in members[w * per_wave : (w + 1) * per_wave]
            ]
            for w in range(args.waves)
        ]
        wave_at = [0.0]
        for _ in range(args.waves - 1):
            wave_at.append(wave_at[-1] + args.wave_seconds * rng.uniform(0.6, 1.4))
        span = wave_at[-1] + args.wave_seconds
        # Kills in random waves, while acknowledgements, reservations and submits are in flight
        # (sorted; the runner waits out each downtime and restart before the next): half at a random
        # moment of the wave's first two seconds, half the instant the victim has acknowledged a
        # random number of the wave's splits in its server. Down for a few seconds: the restarted
        # process has a new identity, so the dead one's jobs are taken over when its lease lapses.
        kills = []
        for _ in range(args.kills):
            wave = rng.randrange(args.waves)
            down = rng.uniform(0.5, 4.0)
            if rng.random() < 0.5:
                kills.append(Kill(wave_at[wave] + rng.uniform(0.0, 2.0), down, wave))
            else:
                victims = sum(s.shard == VICTIM for s in waves[wave])
                kills.append(Kill(wave_at[wave], down, wave, on_ack=rng.randint(1, max(1, victims))))
        kills.sort(key=lambda k: k.at)
        weights = [weight for *_, weight in FAULTS]
        faults, at = [], 0.0
        while True:
            at += rng.expovariate(args.fault_rate)
            if at >= span:
                break
            faults.append((at, rng.choices(range(len(FAULTS)), weights)[0]))
        processing = {t: rng.uniform(0.5 * args.api_seconds, 1.5 * args.api_seconds) for t in range(tracks)}
        return cls(waves, wave_at, kills, faults, processing)


@dataclass
class Run:
    kills: int = 0
    restarts: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    not_acked: int = 0
    seconds: float = 0.0
    settled: bool = False


def audio_id(seed: int, track: int) -> str:
    return f"chaos-{seed}-{track}"


async def split(standin: DiscordStandIn, deployment: Deployment, seed: int, s: Split) -> InteractionRecord:
    return await standin.invoke(
        "split",
        {"task_id": f"gen-chaos-{seed}", "audio_id": audio_id(seed, s.track), "mode": s.mode.value},
        user_id=DEFAULT_USER_ID + s.member,
        guild_id=deployment.guilds[s.shard],
    )


async def kill(bot: BotProcess) -> None:
    with contextlib.suppress(ProcessLookupError):
        bot.proc.send_signal(signal.SIGKILL)
    await bot.proc.wait()


async def unsettled(url: str) -> int:
    """Jobs not yet finished and delivered (the run waits for none before it checks)."""
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval(
                "SELECT COUNT(*) FROM jobs WHERE state NOT IN ('succeeded', 'failed', 'cancelled') "
                "OR delivery = 'pending'"
            )
        )
    finally:
        await conn.close()


async def soak(args: argparse.Namespace, url: PostgresURL) -> tuple[Run, Findings, Plan]:
    plan = Plan.make(args)
    run = Run()
    workdir = Path(tempfile.mkdtemp(prefix="stembot-chaos-"))
    api = SeparationApiSimulator(
        api_key=API_KEY, processing_seconds=args.api_seconds, callbacks=False, seed=args.seed,
        account_credits=10**9,
        processing_for_audio={audio_id(args.seed, t): s for t, s in plan.processing.items()},
    )  # fmt: skip
    logs: dict[str, str] = {}
    async with api, DiscordStandIn() as standin:
        env = bot_env(api.base_url, poll_interval=args.poll_interval, callback_port=0)
        env.update(LOG_LEVEL="INFO", DEFAULT_CREDITS="200", JOBS_PER_MEMBER="5")
        deployment = await start_deployment(
            standin, "bot.__main__:main", env, workdir, database=url, processes=PROCESSES, lease=args.lease
        )
        live = {shard: deployment.bots[shard] for shard in range(PROCESSES)}
        records: list[InteractionRecord] = []
        by_wave: dict[int, list[InteractionRecord]] = {}
        try:
            started = time.monotonic()
            deadline = started + args.minutes * 60

            async def waves() -> None:
                for number, (at, wave) in enumerate(zip(plan.wave_at, plan.waves, strict=True)):
                    await asyncio.sleep(max(0.0, started + at - time.monotonic()))
                    if time.monotonic() > deadline:
                        say("  time is up: no more waves")
                        return
                    say(f"  t={time.monotonic() - started:5.1f}s wave of {len(wave)} splits")
                    sent = await asyncio.gather(*(split(standin, deployment, args.seed, s) for s in wave))
                    by_wave[number] = sent
                    records.extend(sent)

            def acked_by_victim(wave: int) -> int:
                victim_guild = deployment.guilds[VICTIM]
                return sum(r.acked and r.guild_id == victim_guild for r in by_wave.get(wave, []))

            async def kills() -> None:
                for k in plan.kills:
                    await asyncio.sleep(max(0.0, started + k.at - time.monotonic()))
                    if time.monotonic() > deadline:
                        return
                    moment = "at a random moment"
                    if k.on_ack is not None:
                        wave, n = k.wave, k.on_ack

                        def reached(wave: int = wave, n: int = n) -> bool:
                            return acked_by_victim(wave) >= n

                        with contextlib.suppress(TimeoutError):
                            await standin.wait_for(reached, timeout=10)
                        moment = f"at its acknowledgement #{n} of wave {wave + 1}"
                    await kill(live[VICTIM])
                    t = time.monotonic() - started
                    say(f"  t={t:5.1f}s SIGKILLed shard {VICTIM}'s process {moment}, down {k.down:.1f}s")
                    run.kills += 1
                    await asyncio.sleep(k.down)
                    live[VICTIM] = await restart_process(standin, deployment, VICTIM)
                    run.restarts += 1

            async def faults() -> None:
                for at, index in plan.faults:
                    await asyncio.sleep(max(0.0, started + at - time.monotonic()))
                    if time.monotonic() > deadline:
                        return
                    name, endpoint, fault, _ = FAULTS[index]
                    if api.pending_faults(endpoint) < 2:  # no backlog while the endpoint is idle
                        api.script(endpoint, fault)
                        run.faults[name] += 1

            await asyncio.gather(waves(), kills(), faults())
            say(f"  t={time.monotonic() - started:5.1f}s waves done; waiting for every job to settle…")
            settle_by = time.monotonic() + args.settle_seconds
            while time.monotonic() < settle_by:
                left = await unsettled(url.reveal())
                thinking = sum(answer_of(r) == "thinking" and r.acked for r in records)
                if left == 0 and time.monotonic() - started > 5:
                    run.settled = True
                    break
                t = time.monotonic() - started
                say(f"  t={t:5.1f}s {left} job(s) unsettled, {thinking} member(s) thinking")
                await asyncio.sleep(2.0)
            await asyncio.sleep(1.0)  # a duplicate delivery would come now
            run.seconds = time.monotonic() - started
        finally:
            for index, bot in enumerate(deployment.bots):
                await bot.stop()
                shard = index if index < PROCESSES else VICTIM  # the restarts come after the first ones
                logs[f"shard {shard} pid {bot.pid}"] = bot.output()
                if args.logs is not None:
                    args.logs.mkdir(parents=True, exist_ok=True)
                    (args.logs / f"seed{args.seed}-shard{shard}-pid{bot.pid}.log").write_text(bot.output())
            await stop_deployment(deployment)
        run.not_acked = sum(not r.acked for r in records)
        evidence: Evidence = await gather(standin, api, url.reveal(), logs)
    return run, check(evidence), plan


def plan_tracks(args: argparse.Namespace) -> int:
    return max(1, round(float(args.members) * float(args.track_share)))


def table(args: argparse.Namespace, run: Run, findings: Findings) -> list[tuple[str, Any]]:
    f = findings
    return [
        ("seed", args.seed),
        ("members / waves / tracks", f"{args.members} / {args.waves} / {plan_tracks(args)}"),
        ("splits sent", f.splits),
        ("not acknowledged (process down)", run.not_acked),
        ("acks", f.acks),
        ("answered", f"{f.answered} (results {f.results}, failures {f.failures}, refusals {f.refusals})"),
        ("delivered (jobs)", f.delivered),
        ("failed + refunded (jobs)", f.failed_refunded),
        ("submits / paid tasks", f"{f.submits} / {f.paid_tasks}"),
        ("duplicates", f.duplicates),
        ("repeated deliveries (same message, same result)", f.repeated_deliveries),
        ("kills / restarts", f"{run.kills} / {run.restarts}"),
        ("takeovers / resumed", f"{f.takeovers} / {f.resumed}"),
        ("API faults injected", sum(run.faults.values())),
        ("deadlocks / serialization failures", f"{f.deadlocks} / {f.serialization_failures}"),
        ("violations", f"{f.count()} ({', '.join(f.violated) or 'none'})"),
        ("run seconds", round(run.seconds, 1)),
    ]


async def main_async(args: argparse.Namespace) -> int:
    async with contextlib.AsyncExitStack() as scope:
        server = args.database
        if server is None:
            server = await scope.enter_async_context(throwaway_postgres())
        url = await scope.enter_async_context(fresh_database(server, "chaos"))
        say(
            f"Chaos soak, seed {args.seed}: {args.members} members in {args.waves} waves, "
            f"{args.kills} kills, lease {args.lease}s…"
        )
        run, findings, _ = await soak(args, url)
    print_rows(table(args, run, findings))
    if run.faults:
        print("API faults injected: " + ", ".join(f"{name} x{n}" for name, n in sorted(run.faults.items())))
    if findings.allowed_log_lines:
        print("allowed log lines: " + json.dumps(dict(findings.allowed_log_lines)))
    if not run.settled:
        print(f"(not every job settled within --settle-seconds {args.settle_seconds})")
    if findings.count():
        print("\nVIOLATIONS\n" + describe(findings))
    summary = {
        "seed": args.seed,
        "kills": run.kills,
        "restarts": run.restarts,
        "not_acked": run.not_acked,
        "faults": dict(run.faults),
        "settled": run.settled,
        "seconds": round(run.seconds, 1),
    }
    print(json.dumps({**summary, **findings.figures()}))
    return 1 if findings.count() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description="Chaos soak of two StemBot processes on PostgreSQL.")
    parser.add_argument("--seed", type=int, default=1, help="every random choice of the run comes from it")
    parser.add_argument("--members", type=int, default=90, help="members splitting, once each")
    parser.add_argument("--waves", type=int, default=6)
    parser.add_argument("--wave-seconds", type=float, default=10.0, help="mean pause between waves")
    parser.add_argument(
        "--track-share", type=float, default=0.6, help="distinct tracks per member (the rest are shared)"
    )
    parser.add_argument("--kills", type=int, default=4, help="SIGKILLs of one process, each restarted")
    parser.add_argument("--lease", type=float, default=5.0, help="JOB_LEASE_SECONDS (5: the shortest)")
    parser.add_argument("--fault-rate", type=float, default=1.0, help="API faults injected per second")
    parser.add_argument("--api-seconds", type=float, default=2.0, help="mean simulated processing time")
    parser.add_argument("--poll-interval", type=float, default=0.5)
    parser.add_argument("--minutes", type=float, default=3.0, help="no wave, kill or fault starts after this")
    parser.add_argument(
        "--settle-seconds", type=float, default=90.0, help="afterwards, how long to wait for jobs to settle"
    )
    parser.add_argument(
        "--database",
        type=parse_database_url,
        help="a PostgreSQL server to use: postgresql://user:password@host:5432/dbname (its role must "
        "be allowed to create databases); default: a throw-away server of its own (pgserver)",
    )
    parser.add_argument("--logs", type=Path, help="a folder to keep every bot process's log in")
    parser.add_argument(
        "--postgres-server", action="store_true", help="a throw-away PostgreSQL server (the default)"
    )
    args = parser.parse_args()
    if args.database is not None and not isinstance(args.database, PostgresURL):
        parser.error("--database must be a postgresql:// URL: two processes share it")
    if args.members < 1 or args.waves < 1 or args.kills < 0:
        parser.error("--members and --waves must be at least 1, --kills at least 0")
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
