"""The invariants of a chaos run (bot processes killed and restarted, API faults), checked over
what everyone recorded: the Discord stand-in's interactions and messages, the API simulator's
submits, the bot's database (PostgreSQL) and the bots' logs.

One function, `check`, serves the chaos soak (`bench/chaos.py`) and its small end-to-end version
(`tests/e2e/test_chaos_e2e.py`). It returns every violation it finds, by invariant:

* ``unanswered``: a `/split` the stand-in saw acknowledged whose member never got an answer (a
  result, a failure, or a refusal): still "thinking…", or nothing left to read;
* ``unfinished``: a job still queued or processing (or its result never delivered) at the end;
* ``ledger``: a member's balance or a job's ledger rows that do not match the jobs' outcomes
  (charged once for a success, refunded once for a failure, nothing for a free shared result);
* ``submits``: a job that made more than one paid API task, a paid task no job asked for, or a
  track sent again while an earlier job for it was in flight or had succeeded (the one documented
  resubmission: a new split after the earlier job failed and was refunded);
* ``results``: a job's result posted more than once: in two messages, or a message made into
  it twice (an identical re-edit, a delivery repeated after a kill, is counted, not a violation);
* ``logs``: a deadlock or serialization failure, a traceback, a "step failed" or an ERROR line
  in a bot's log that `ALLOWED_LOG_LINES` does not explain.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from bot.render.results import RESULT_MARK
from testing.discord_standin import DiscordStandIn, InteractionRecord, MessageRecord, MessageVersion
from testing.provider_api import LoggedSubmit, SeparationApiSimulator

FAILED_TITLE = "The split didn't work"  # bot.render.results.failed and the late-result pointer
WORKING_TITLE = "Splitting:"  # the queued and processing messages (bot.render.results)
LATE_POINTER = "in [the reply to this message]"  # a late result's pointer (bot.render.results.pointer)

LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL)\s")
TOOK_OVER = re.compile(r"Took over (\d+) job\(s\)")
RESUMED = re.compile(r"Resuming (\d+) job\(s\)")
DEADLOCK = re.compile(r"DeadlockDetectedError|deadlock detected")
SERIALIZATION = re.compile(r"SerializationError|could not serialize access")
JOB_ID = re.compile(r"\bjob (\d+)\b")
JOB_NUMBER = re.compile(r"Job #(\d+)")
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b")
CALLBACK_TOKEN = re.compile(r"/callback/([^/?#]+)$")

ALLOWED_LOG_LINES: dict[str, str] = {}
"""Log records that look alarming but are expected in a chaos run: a regular expression -> why.
(Empty today: every ERROR, traceback and failed step the soaks produced is a defect.)"""

INVARIANTS = ("unanswered", "unfinished", "ledger", "submits", "results", "logs")

Row = dict[str, Any]


@dataclass
class Evidence:
    """Everything a chaos run left behind, as plain data."""

    splits: list[InteractionRecord]  # every /split dispatched to a bot
    messages: list[MessageRecord]  # every message the bots created
    submits: list[LoggedSubmit]  # every submit the API received
    jobs: list[Row]
    ledger: list[Row]
    accounts: list[Row]
    logs: dict[str, str]  # a name for each bot process ever started -> its output


@dataclass
class Findings:
    """The figures of a run and what it violated (`violations`: invariant -> descriptions)."""

    splits: int = 0
    acks: int = 0
    answered: int = 0
    results: int = 0
    failures: int = 0
    refusals: int = 0
    delivered: int = 0  # jobs that succeeded and were delivered
    failed_refunded: int = 0  # jobs that failed or were cancelled and refunded (or cost nothing)
    submits: int = 0  # submit requests the API received
    paid_tasks: int = 0  # of them, tasks the API created (and charged)
    duplicates: int = 0  # jobs with more than one paid task, or tracks paid twice
    repeated_deliveries: int = 0  # a result message edited again to the same result (harmless)
    takeovers: int = 0  # jobs taken over from a process whose lease lapsed
    resumed: int = 0  # jobs a (re)started process resumed from the database
    deadlocks: int = 0  # jobs (per process) whose step met a deadlock
    serialization_failures: int = 0  # the same for serialization failures
    allowed_log_lines: Counter[str] = field(default_factory=Counter)
    violations: dict[str, list[str]] = field(default_factory=lambda: {name: [] for name in INVARIANTS})

    @property
    def violated(self) -> list[str]:
        return [name for name, found in self.violations.items() if found]

    def count(self) -> int:
        return sum(len(found) for found in self.violations.values())

    def figures(self) -> dict[str, Any]:
        """The run's figures as JSON-able values (violations counted per invariant)."""
        return {
            "splits": self.splits,
            "acks": self.acks,
            "answered": self.answered,
            "results": self.results,
            "failures": self.failures,
            "refusals": self.refusals,
            "delivered": self.delivered,
            "failed_refunded": self.failed_refunded,
            "submits": self.submits,
            "paid_tasks": self.paid_tasks,
            "duplicates": self.duplicates,
            "repeated_deliveries": self.repeated_deliveries,
            "takeovers": self.takeovers,
            "resumed": self.resumed,
            "deadlocks": self.deadlocks,
            "serialization_failures": self.serialization_failures,
            "violations": {name: len(found) for name, found in self.violations.items()},
        }


# -- gathering --------------------------------------------------------------------------------


async def gather(
    standin: DiscordStandIn, api: SeparationApiSimulator, database_url: str, logs: Mapping[str, str]
) -> Evidence:
    """Read what the stand-ins recorded and the bot's PostgreSQL database holds now."""
    conn = await asyncpg.connect(database_url)
    try:
        jobs = [dict(row) for row in await conn.fetch("SELECT * FROM jobs ORDER BY id")]
        ledger = [dict(row) for row in await conn.fetch("SELECT * FROM ledger ORDER BY id")]
        accounts = [dict(row) for row in await conn.fetch("SELECT * FROM accounts")]
    finally:
        await conn.close()
    return Evidence(
        splits=[record for record in standin.interactions if record.name == "split"],
        messages=standin.all_messages(),
        submits=list(api.submits),
        jobs=jobs,
        ledger=ledger,
        accounts=accounts,
        logs=dict(logs),
    )


# -- what a member saw ------------------------------------------------------------------------


def version_text(version: MessageVersion) -> str:
    return (version.content or "") + json.dumps(version.embeds, ensure_ascii=False)


def answer_of(record: InteractionRecord) -> str:
    """What the member of a /split can read now: "result", "failed", "refused", or, unanswered,
    "working" (queued or processing), "thinking" (the deferred response never filled) or "none"."""
    messages = record.messages
    if not messages:
        return "none"
    if any(message.loading for message in messages):
        return "thinking"
    shown = "\n".join(message.text() for message in messages)
    if RESULT_MARK in shown:
        return "result"
    if FAILED_TITLE in shown:
        return "failed"
    if LATE_POINTER in shown:
        return "result"  # a late result's pointer ("Done: …"); the result is its reply
    if WORKING_TITLE in shown:
        return "working"
    return "refused"


# -- the check --------------------------------------------------------------------------------


def check(evidence: Evidence, *, allowed_log_lines: Mapping[str, str] = ALLOWED_LOG_LINES) -> Findings:
    """Every invariant of a chaos run over `evidence`; see the module's docstring."""
    findings = Findings()
    jobs = {int(job["id"]): job for job in evidence.jobs}
    _check_answers(evidence, jobs, findings)
    _check_jobs_and_ledger(evidence, jobs, findings)
    _check_submits(evidence, jobs, findings)
    _check_results(evidence, findings)
    _check_logs(evidence.logs, allowed_log_lines, findings)
    return findings


def _check_answers(evidence: Evidence, jobs: Mapping[int, Row], findings: Findings) -> None:
    by_message = {job["response_message_id"]: job for job in jobs.values() if job.get("response_message_id")}
    findings.splits = len(evidence.splits)
    for record in evidence.splits:
        if not record.acked:
            continue  # never acknowledged: Discord told the member the bot did not respond
        findings.acks += 1
        answer = answer_of(record)
        if answer in ("result", "failed", "refused"):
            findings.answered += 1
            findings.results += answer == "result"
            findings.failures += answer == "failed"
            findings.refusals += answer == "refused"
            continue
        job = by_message.get(record.original.id) if record.original is not None else None
        stored = f"job {job['id']} {job['state']}/{job['delivery']}" if job else "no job stored"
        findings.violations["unanswered"].append(
            f"member {record.user_id} in server {record.guild_id}: acknowledged, left {answer!r} ({stored})"
        )


def _check_jobs_and_ledger(evidence: Evidence, jobs: Mapping[int, Row], findings: Findings) -> None:
    rows_of: dict[int, list[Row]] = defaultdict(list)
    for row in evidence.ledger:
        if row["job_id"] is not None:
            rows_of[int(row["job_id"])].append(row)
    expected: dict[tuple[int, int], int] = defaultdict(int)  # member -> balance from the outcomes
    for row in evidence.ledger:
        if row["job_id"] is None:  # the starting allowance, refills, moderators' changes
            expected[(row["guild_id"], row["user_id"])] += int(row["amount"])
    for job_id, job in jobs.items():
        state, cost = job["state"], int(job["cost"])
        member = (job["guild_id"], job["user_id"])
        kinds = Counter(row["kind"] for row in rows_of.get(job_id, []))
        amounts = {row["kind"]: int(row["amount"]) for row in rows_of.get(job_id, [])}
        finished = state in ("succeeded", "failed", "cancelled")
        if not finished or job["delivery"] != "delivered":
            findings.violations["unfinished"].append(
                f"job {job_id} member {job['user_id']}: {state}, delivery {job['delivery']}"
            )
        if state == "succeeded" and job["delivery"] == "delivered":
            findings.delivered += 1
        elif state in ("failed", "cancelled"):
            findings.failed_refunded += 1
        if cost == 0:
            want: Counter[str] = Counter()
        elif state == "succeeded":
            want = Counter(reserve=1, charge=1)
        elif finished:
            want = Counter(reserve=1, refund=1)
        else:
            want = Counter(reserve=1)  # still held (reported as unfinished above)
        if kinds != want:
            findings.violations["ledger"].append(
                f"job {job_id} ({state}, cost {cost}): ledger rows {dict(kinds)}, expected {dict(want)}"
            )
        elif cost and (amounts["reserve"] != -cost or amounts.get("refund", cost) != cost):
            findings.violations["ledger"].append(f"job {job_id}: ledger amounts {amounts} for cost {cost}")
        if state not in ("failed", "cancelled"):
            expected[member] -= cost  # spent (or still held by an unfinished job)
    balances = {(a["guild_id"], a["user_id"]): int(a["balance"]) for a in evidence.accounts}
    for member in sorted(set(balances) | set(expected)):
        balance = balances.get(member)
        if balance != expected.get(member, 0) or balance < 0:
            findings.violations["ledger"].append(
                f"member {member[1]} in server {member[0]}: balance {balance}, its jobs' outcomes "
                f"leave {expected.get(member, 0)}"
            )


def _check_submits(evidence: Evidence, jobs: Mapping[int, Row], findings: Findings) -> None:
    by_token = {job["callback_token"]: job for job in jobs.values()}
    findings.submits = len(evidence.submits)
    paid = [submit for submit in evidence.submits if submit.task_id]
    findings.paid_tasks = len(paid)
    tasks_of: dict[int, list[LoggedSubmit]] = defaultdict(list)
    for submit in paid:
        body = submit.body if isinstance(submit.body, dict) else {}
        match = CALLBACK_TOKEN.search(str(body.get("callBackUrl", "")))
        job = by_token.get(match.group(1)) if match else None
        if job is None:
            findings.violations["submits"].append(f"paid task {submit.task_id}: no job asked for it")
            continue
        tasks_of[int(job["id"])].append(submit)
    for job_id, tasks in tasks_of.items():
        if len(tasks) > 1:
            findings.duplicates += 1
            findings.violations["submits"].append(
                f"job {job_id}: {len(tasks)} paid tasks {[t.task_id for t in tasks]}"
            )
    leaders_of: dict[tuple[str, str, str], list[tuple[float, Row]]] = defaultdict(list)
    for job_id, tasks in tasks_of.items():
        job = jobs[job_id]
        track = (job["source_task_id"], job["audio_id"], job["mode"])
        leaders_of[track].append((min(t.time for t in tasks), job))
    for track, leaders in leaders_of.items():
        leaders.sort(key=lambda pair: pair[0])
        for (_, earlier), (submitted, later) in itertools.pairwise(leaders):
            # The one resubmission the rules allow: the earlier job failed (refunded) before the
            # later one was made. In flight, the later should have followed it; succeeded, reused it.
            # (Its finish time is taken just before its settling transaction commits: 1 s of slack.)
            failed_before = earlier["state"] in ("failed", "cancelled") and (
                earlier["finished_at"] is not None and earlier["finished_at"] <= submitted + 1.0
            )
            if not failed_before:
                findings.duplicates += 1
                findings.violations["submits"].append(
                    f"track {track}: paid again by job {later['id']} while job {earlier['id']} was "
                    f"{earlier['state']} (finished {earlier['finished_at']}, resubmitted {submitted:.3f})"
                )


def _check_results(evidence: Evidence, findings: Findings) -> None:
    """A result is posted once: in one message, which became that result once. The same message
    edited again to exactly what it already showed (a delivery repeated because its process died
    between Discord's answer and the database's record of it) is no second post: the member sees
    nothing change and is not notified; it is counted as a repeated delivery."""
    shown: Counter[int] = Counter()
    for message in evidence.messages:
        before: tuple[str, str] | None = None
        for version in message.versions:
            text = version_text(version)
            now = (text, json.dumps(version.components, sort_keys=True))
            if RESULT_MARK in text and (number := JOB_NUMBER.search(text)):
                if now == before:
                    findings.repeated_deliveries += 1
                else:
                    shown[int(number.group(1))] += 1
            before = now
    for job_id, times in sorted(shown.items()):
        if times > 1:
            findings.violations["results"].append(f"job {job_id}: its result was posted {times} times")


def log_records(output: str) -> Iterable[tuple[str, str]]:
    """A bot's log as (level, record) pairs; a traceback belongs to the record it follows."""
    level, lines = "", list[str]()
    for line in output.splitlines():
        start = LOG_RECORD.match(line)
        if start is not None:
            if lines:
                yield level, "\n".join(lines)
            level, lines = start.group(1), [line]
        else:
            lines.append(line)
    if lines:
        yield level, "\n".join(lines)


def _check_logs(logs: Mapping[str, str], allowed: Mapping[str, str], findings: Findings) -> None:
    patterns = [re.compile(pattern) for pattern in allowed]
    deadlocked: set[tuple[str, str]] = set()  # (log, job): a job's one deadlock is logged several times
    serialized: set[tuple[str, str]] = set()
    for name, output in logs.items():
        for level, record in log_records(output):
            findings.takeovers += sum(int(n) for n in TOOK_OVER.findall(record))
            findings.resumed += sum(int(n) for n in RESUMED.findall(record))
            deadlock = DEADLOCK.search(record) is not None
            serialization = SERIALIZATION.search(record) is not None
            job = JOB_ID.search(record)
            where = (name, job.group(1) if job else record)
            if deadlock:
                deadlocked.add(where)
            if serialization:
                serialized.add(where)
            alarming = level in ("WARNING", "ERROR", "CRITICAL") and (deadlock or serialization)
            alarming = alarming or (
                level in ("ERROR", "CRITICAL") or "Traceback" in record or "step failed" in record
            )
            if not alarming:
                continue
            excused = next((p.pattern for p in patterns if p.search(record)), None)
            if excused is not None and not deadlock and not serialization:
                findings.allowed_log_lines[excused] += 1
                continue
            findings.violations["logs"].append(f"{name}: {_summary(record)}")
    findings.deadlocks = len(deadlocked)
    findings.serialization_failures = len(serialized)


def _summary(record: str) -> str:
    """A log record in one line: its first line and, for a traceback, the exception's line."""
    lines = record.splitlines()
    last = next((line for line in reversed(lines) if EXCEPTION_LINE.match(line)), "")
    return lines[0][:300] + (f" … {last[:200]}" if len(lines) > 1 and last != lines[0] else "")


def describe(findings: Findings, *, limit: int = 20) -> str:
    """The violations, grouped by invariant, at most `limit` lines each."""
    lines: list[str] = []
    for name in findings.violated:
        found: Sequence[str] = findings.violations[name]
        lines.append(f"{name}: {len(found)}")
        lines.extend(f"  - {line}" for line in found[:limit])
        if len(found) > limit:
            lines.append(f"  … and {len(found) - limit} more")
    return "\n".join(lines)
