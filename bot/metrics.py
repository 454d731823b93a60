"""Prometheus metrics for operators (served at GET /metrics). One registry per bot, not global,
so tests and several bots in one process never share counters.

Two kinds of gauge: what this process knows of itself (the jobs it holds), which adds up
across processes with `sum`; and what every process reads alike from the shared database at each
scrape (`DATABASE_GAUGES`: jobs by state, unfinished keeps, the oldest unfinished job, budgets, the
API account), which the dashboard and the alert rules take with `max`, never `sum` (two processes
would double it). `deploy/grafana/stembot.json` and `deploy/prometheus/alerts.yml` use these names;
tests/test_monitoring.py checks every name they use against a real `/metrics`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.models import JobState, KeepState

__all__ = ["CONTENT_TYPE_LATEST", "DATABASE_GAUGES", "Metrics"]

DATABASE_GAUGES = frozenset(
    {
        "stembot_jobs",
        "stembot_keeps_unfinished",
        "stembot_oldest_unfinished_job_age_seconds",
        "stembot_monthly_budget_spent",
        "stembot_monthly_budget",
        "stembot_servers_budget_used_up",
        "stembot_api_account_credits",
        "stembot_submissions_paused",
    }
)
"""Gauges every process reads alike (from the database, or the shared pause switch and API account):
aggregate them across processes with `max`."""


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Gauge("stembot_jobs", "Jobs in the database by state.", ["state"], registry=self.registry)
        self.api_calls = Counter(
            "stembot_api_calls",
            "Calls to the separation API by endpoint and answer code ('network' when none came).",
            ["endpoint", "code"],
            registry=self.registry,
        )
        self.credits = Counter(
            "stembot_credits",
            "Member credits moved by jobs: reserved, charged, refunded.",
            ["kind"],
            registry=self.registry,
        )
        self.callbacks = Counter(
            "stembot_callbacks",
            "Callbacks received from the API, by verdict.",
            ["verdict"],
            registry=self.registry,
        )
        self.delivery_lag = Histogram(
            "stembot_delivery_lag_seconds",
            "From the API finishing a job to the member being shown the result.",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
            registry=self.registry,
        )
        self.song_lookups = Counter(
            "stembot_song_lookups",
            "Looking up a generation's tracks by title, by outcome: 'kept' (from the database), "
            "'found' (asked the API, final), 'not_final' (the API answered, not finished), "
            "'failed' (an error, a timeout, an unknown task or a malformed answer).",
            ["outcome"],
            registry=self.registry,
        )
        self.submissions_paused = Gauge(
            "stembot_submissions_paused",
            "1 while new splits are paused because the API refused our account.",
            registry=self.registry,
        )

        self.keeps_unfinished = Gauge(
            "stembot_keeps_unfinished",
            "Results being kept in Discord, by state: waiting for the worker, or being posted.",
            ["state"],
            registry=self.registry,
        )
        self.oldest_unfinished_job_age = Gauge(
            "stembot_oldest_unfinished_job_age_seconds",
            "Age of the oldest job not finished yet (0 when there is none).",
            registry=self.registry,
        )
        self.job_timeout = Gauge(
            "stembot_job_timeout_seconds",
            "JOB_TIMEOUT_MINUTES in seconds: a job older than this should have ended.",
            registry=self.registry,
        )
        self.monthly_budget_spent = Gauge(
            "stembot_monthly_budget_spent",
            "API credits every server together spent this UTC month (what MONTHLY_BUDGET caps).",
            registry=self.registry,
        )
        # Labelled only so that it is absent until set: a 0 would read as a budget of nothing.
        self.monthly_budget = Gauge(
            "stembot_monthly_budget",
            "MONTHLY_BUDGET in API credits; absent when it is not set (no cap).",
            ["scope"],
            registry=self.registry,
        )
        self.servers_budget_used_up = Gauge(
            "stembot_servers_budget_used_up",
            "Servers whose monthly budget is used up this month (their new paid splits are refused).",
            registry=self.registry,
        )
        self.api_account_credits = Gauge(
            "stembot_api_account_credits",
            "The separation API account's credits when last asked; absent until the API said. "
            "sandbox: 'true' for the free sandbox's made-up account.",
            ["sandbox"],
            registry=self.registry,
        )
        self.jobs_held = Gauge(
            "stembot_jobs_held",
            "Unfinished jobs this process holds a lease on (add up across processes).",
            registry=self.registry,
        )
        self.takeovers = Counter(
            "stembot_job_takeovers",
            "Jobs this process took over because no process held them (a lease lapsed or was released).",
            registry=self.registry,
        )

    def api_call(self, endpoint: str, code: int | None) -> None:
        self.api_calls.labels(endpoint=endpoint, code=str(code) if code is not None else "network").inc()

    def set_job_counts(self, counts: dict[JobState, int]) -> None:
        for state in JobState:
            self.jobs.labels(state=state.value).set(counts.get(state, 0))

    def set_keeps_unfinished(self, counts: dict[KeepState, int]) -> None:
        for state in (KeepState.PENDING, KeepState.WORKING):
            self.keeps_unfinished.labels(state=state.value).set(counts.get(state, 0))

    def set_monthly_budget(self, spent: int, budget: int | None, servers_used_up: int) -> None:
        self.monthly_budget_spent.set(spent)
        self.servers_budget_used_up.set(servers_used_up)
        if budget is not None:
            self.monthly_budget.labels(scope="bot").set(budget)

    def set_account_credits(self, credits: int, *, sandbox: bool) -> None:
        self.api_account_credits.labels(sandbox="true" if sandbox else "false").set(credits)

    def render(self) -> bytes:
        return generate_latest(self.registry)
