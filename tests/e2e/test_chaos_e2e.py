"""The chaos soak (`bench/chaos.py`) in small and deterministic, for CI: two real bot processes on
PostgreSQL, eight members in both servers (shared tracks among them), API faults scripted in a fixed
order, one SIGKILL at a fixed moment (the instant a member's /split is acknowledged), a restart,
then the same invariant checks as the soak (`testing.chaos.check`).

The checks are shown to bite on the run's own evidence: a planted second paid submit, a result
shown twice and a balance off by one credit are each reported.
"""

from __future__ import annotations

import asyncio
import copy
import signal
from dataclasses import replace

from bot.render.results import RESULT_MARK
from testing.chaos import Evidence, Findings, answer_of, check, describe, gather
from testing.discord_standin import DEFAULT_USER_ID, InteractionRecord
from testing.provider_api import Fault
from tests.e2e.test_processes_e2e import Deployment, deployment  # noqa: F401  (the fixture)

PLANTED_DEADLOCK = """\
2026-12-06 05:18:34,908 ERROR   bot.runner: job 23: unexpected error in its step
Traceback (most recent call last):
  File "bot/runner.py", line 262, in _step
asyncpg.exceptions.DeadlockDetectedError: deadlock detected
DETAIL:  Process 1 waits for ShareLock on transaction 2; blocked by process 3.
2026-12-06 05:18:34,918 WARNING bot.runner: job 23 guild=1 member=2 mode=split_stem: step failed; retry in 1s
"""


async def split(d: Deployment, member: int, shard: int, track: str) -> InteractionRecord:
    return await d.stack.split("gen-chaos", track, guild_id=d.guilds[shard], user_id=DEFAULT_USER_ID + member)


async def under_way(d: Deployment, jobs: int) -> bool:
    """The API has (or had) every one of the first `jobs` jobs, or they follow one it has."""
    stored = await d.jobs()
    return len(stored) == jobs and all(
        job["state"] in ("submitted", "following", "succeeded") for job in stored
    )


def answered(record: InteractionRecord) -> bool:
    return answer_of(record) in ("result", "failed", "refused")


async def settled(d: Deployment) -> bool:
    jobs = await d.jobs()
    return bool(jobs) and all(
        job["state"] in ("succeeded", "failed", "cancelled") and job["delivery"] == "delivered"
        for job in jobs
    )


async def run_small_chaos(d: Deployment) -> tuple[Evidence, Findings]:
    d.api.processing_seconds = 1.5
    # Shard 0's first jobs outlast the kill and the lease: another process must take them over
    # (and nothing of theirs is being delivered at the kill).
    d.api.processing_for_audio.update({"track-a": 8.0, "track-b": 8.0})
    await d.start_both()
    # Two faults the submits meet in turn (a 500, then maintenance: both retried) and a garbage poll.
    d.api.script("submit", Fault("http", status=500), Fault("code", status=455, msg="maintenance"))
    d.api.script("record", Fault("garbage"))
    wave = [
        await split(d, 0, 0, "track-a"),
        await split(d, 1, 1, "track-a"),  # the same track in the other server: shares job 1
        await split(d, 2, 0, "track-b"),
        await split(d, 3, 1, "track-c"),
    ]
    for record in wave:
        await record.wait_for_ack()
    await d.eventually(lambda: under_way(d, 4), timeout=30)

    # The kill: shard 0's process dies the moment it has acknowledged a /split, while it holds
    # submitted jobs of the first wave.
    doomed = await split(d, 4, 0, "track-d")
    await doomed.wait_for_ack()
    d.bots[0].proc.send_signal(signal.SIGKILL)
    await d.bots[0].proc.wait()
    await asyncio.sleep(1.0)
    await d.start(0)

    # A proxy's error page after the API accepted the next submit: refunded, never sent again.
    d.api.script("submit", Fault("accept_and_html"))
    proxied = await split(d, 5, 1, "track-e")
    await proxied.wait_for(answered, timeout=30)

    later = [await split(d, 6, 0, "track-a"), await split(d, 7, 1, "track-f")]
    await d.eventually(lambda: settled(d), timeout=45)
    for record in [*wave, *later]:
        await record.wait_for(answered, timeout=10)
    # The member whose acknowledgement died with its process is answered by whichever process
    # claims the record once the dead one's lease lapses: wait for that too (under load it can come
    # after every job has settled), rather than check before it could have come.
    await doomed.wait_for(answered, timeout=20)
    await asyncio.sleep(1.0)  # a second delivery would come now
    for bot in d.stack.bots:
        await bot.stop()
    logs = {f"process {n} pid {bot.pid}": bot.output() for n, bot in enumerate(d.stack.bots)}
    evidence = await gather(d.standin, d.api, d.url, logs)
    return evidence, check(evidence)


async def test_a_small_chaos_run_keeps_every_invariant(deployment: Deployment) -> None:  # noqa: F811
    evidence, findings = await run_small_chaos(deployment)

    assert findings.acks == 8 and findings.paid_tasks >= 5
    assert findings.takeovers + findings.resumed >= 1, "the killed process's jobs were never taken over"
    assert not any(findings.violations.values()), describe(findings)  # every member answered too

    # The checks catch what they are there for, on this run's own evidence:
    paid = next(s for s in evidence.submits if s.task_id)
    twice = replace(
        evidence, submits=[*evidence.submits, replace(paid, task_id="planted", time=paid.time + 0.1)]
    )
    assert check(twice).violations["submits"], "a second paid submit of a job went unseen"
    result = next(m for m in evidence.messages if RESULT_MARK in m.text())
    posted_twice = copy.copy(result)  # the same result in a second message
    assert check(replace(evidence, messages=[*evidence.messages, posted_twice])).violations["results"]
    redelivered = copy.copy(result)  # the same message edited again to what it already showed
    redelivered.versions = [*result.versions, result.versions[-1]]
    messages = [redelivered if m is result else m for m in evidence.messages]
    again = check(replace(evidence, messages=messages))
    assert not again.violations["results"] and again.repeated_deliveries == findings.repeated_deliveries + 1
    [first, *rest] = evidence.accounts
    robbed = replace(evidence, accounts=[{**first, "balance": first["balance"] - 1}, *rest])
    assert check(robbed).violations["ledger"], "a balance off by one credit went unseen"

    deadlocked = check(replace(evidence, logs={**evidence.logs, "planted": PLANTED_DEADLOCK}))
    assert deadlocked.deadlocks == 1 and len(deadlocked.violations["logs"]) == 2  # the error, the retry
