"""Prometheus metrics for operators (served at GET /metrics). One registry per bot, not global,
so tests and several bots in one process never share counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.models import JobState

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


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

    def api_call(self, endpoint: str, code: int | None) -> None:
        self.api_calls.labels(endpoint=endpoint, code=str(code) if code is not None else "network").inc()

    def set_job_counts(self, counts: dict[JobState, int]) -> None:
        for state in JobState:
            self.jobs.labels(state=state.value).set(counts.get(state, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
