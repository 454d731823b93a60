"""Building the bot's services: the one place every part is made and handed its dependencies.

`build_services` is used by `python -m bot`, the tests and the benchmark alike. Each part gets
everything it needs in its constructor; nothing is attached afterwards. The Discord side is given
as the two things the services need from it (a deliverer and an alerter), so this module knows
nothing of Discord.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from bot.acks import Acknowledgements, SplitAnswerer
from bot.api import SeparationClient
from bot.budget import BudgetService
from bot.credits import CreditService
from bot.downloads import StemDownloader
from bot.jobs import JobQueue, SplitService
from bot.keeping import Downloader, Keeper, Poster
from bot.languages import Languages
from bot.leases import Lease
from bot.library import LibraryService
from bot.metrics import Metrics
from bot.mixing import Mixer, MixPoster
from bot.models import KeepState
from bot.operations import AccountApi, Alerter, ApiCalls, Operations
from bot.quota import QuotaService
from bot.reminders import Reminders, ReminderSender
from bot.reports import ReportService
from bot.runner import INVALID_CALLBACK_BASE, Deliverer, JobRunner
from bot.sandbox import SandboxApi, TaskBook
from bot.settings import Settings
from bot.songs import SongBook
from bot.store import Store
from bot.web import HealthCheck, WebServer

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the cogs and the client use, built once by `build_services`."""

    settings: Settings
    store: Store
    api: SeparationClient
    runner: JobRunner
    credits: CreditService
    split: SplitService
    quota: QuotaService
    budget: BudgetService
    library: LibraryService
    reminders: Reminders
    keeper: Keeper
    mixer: Mixer
    operations: Operations
    web: WebServer
    lease: Lease
    acks: Acknowledgements
    songs: SongBook
    reports: ReportService
    languages: Languages
    downloads: StemDownloader | None = None

    async def start(self) -> None:
        """Resume the jobs in the database and start working on them; answer the splits an earlier
        process acknowledged but never stored; start the reminders and the keeper (which resumes
        keeps left unfinished). Follow the deployment's pause switch
        first, so no job is sent while another process has paused splitting."""
        await self.operations.start()
        await self.runner.start()
        await self.acks.start()
        self.reminders.start()
        self.keeper.start()
        self.mixer.start()

    async def stop(self) -> None:
        """Take no new splits, let work in flight finish (see `JobRunner.stop`), stop the checks.
        A keep stopped mid-way resumes at the next start."""
        self.split.close()
        await self.songs.stop()
        await self.acks.stop()
        await self.runner.stop()
        await self.reminders.stop()
        await self.keeper.stop()
        await self.mixer.stop()
        if self.downloads is not None:
            await self.downloads.close()
        self.reports.close()
        await self.operations.stop()


def build_services(
    settings: Settings,
    *,
    store: Store,
    session: aiohttp.ClientSession,
    deliverer: Deliverer,
    reminder_sender: ReminderSender,
    split_answerer: SplitAnswerer,
    keep_poster: Poster,
    mix_poster: MixPoster,
    alerter: Alerter,
    gateway_connected: Callable[[], bool],
    metrics: Metrics | None = None,
    api: SeparationClient | None = None,
    account_api: AccountApi | None = None,
    queue: JobQueue | None = None,
    download: Downloader | None = None,
    lease: Lease | None = None,
    languages: Languages | None = None,
    clock: Clock = time.time,
) -> Services:
    """Make every service for `settings` over an open `store` and HTTP `session`.

    `deliverer`, `reminder_sender`, `split_answerer`, `keep_poster`, `mix_poster` and `alerter`
    are the Discord side (or a test's recorders); `gateway_connected` feeds `/healthz`. The keyword overrides
    replace a part a test or benchmark wants to control: its own `metrics` registry, an `api`
    client, what the pause switch asks for the account's credits, where accepted splits wait
    (`queue`: the runner unless a test records them), faster delivery or keep retries, how stems
    are downloaded, this process's `lease` (by default a new holder id and `JOB_LEASE_SECONDS`),
    the `languages` the Discord side also speaks from (one instance: it caches what it saw).
    """
    metrics = metrics or Metrics()
    metrics.job_timeout.set(settings.job_timeout)
    lease = lease or Lease.for_this_process(settings.job_lease)
    calls = ApiCalls(metrics, clock)
    sandbox: SandboxApi | None = None
    if settings.sandbox:
        # Free and in this process: the account never runs dry, stems are links to WAVs this web
        # server makes. Callbacks reach the bot only through CALLBACK_PUBLIC_URL. Its API answers
        # only the deployment's own key, and keeps a task no longer than a job can need it.
        sandbox = SandboxApi(
            api_key=settings.sandbox_api_key.reveal(),
            processing_seconds=settings.sandbox_seconds,
            public_url=settings.callback_public_url,
            tasks=TaskBook(lifetime=2 * settings.job_timeout),
        )
    if api is None:
        base_url: str | Callable[[], str] = settings.api_url
        if sandbox is not None:
            base_url = lambda: sandbox.api_url  # noqa: E731 -- known once the web server listens
        api_key = settings.sandbox_api_key if sandbox is not None else settings.api_key
        api = SeparationClient(session, base_url, api_key, timeout=settings.api_timeout, observer=calls)
    operations = Operations(
        metrics,
        calls,
        account_api or api,
        alerter,
        store.pause,
        check_interval=settings.account_check_interval,
        clock=clock,
        sandbox=settings.sandbox,
    )
    reminders = Reminders(store, reminder_sender, window=settings.expiry_reminder, clock=clock)
    credits = CreditService(store.accounts)
    quota = QuotaService(store, credits, clock=clock)
    library = LibraryService(store, quota, deliverer)
    downloads: StemDownloader | None = None
    if download is None:
        # Stems come from the API's file host or public addresses; in the sandbox, from this
        # bot's own web server (its address is known once it listens).
        downloads = download = StemDownloader(
            lambda: urlsplit(sandbox.api_url if sandbox is not None else settings.api_url).hostname
        )
    # One for the whole bot (the Discord side's, where it gives one): it caches the languages
    # seen, and the keeper and the mixer speak the servers' languages with no interaction to say them.
    languages = languages or Languages(store)
    keeper = Keeper(
        store,
        library,
        keep_poster,
        download,
        lease=lease,
        folder=settings.keep_folder,
        concurrency=settings.keep_concurrency,
        clock=clock,
        retry_base=settings.keep_retry,
        languages=languages,
    )
    mixer = Mixer(
        store,
        mix_poster,
        download,
        lease=lease,
        folder=settings.mix_folder,
        concurrency=settings.mix_concurrency,
        max_stem_bytes=settings.mix_max_stem_bytes,
        clock=clock,
        retry_base=settings.keep_retry,
        languages=languages,
    )
    runner = JobRunner(
        store,
        api,
        deliverer,
        operations,
        lease=lease,
        poll_interval=settings.effective_poll_interval,
        job_timeout=settings.job_timeout,
        callback_base_url=settings.callback_public_url or INVALID_CALLBACK_BASE,
        delivery_retry_base=settings.delivery_retry,
        stop_grace=settings.api_timeout + 10,  # a submit on the wire gets its answer stored
        clock=clock,
        on_delivered=lambda: _wake(reminders, keeper),
    )
    web = WebServer(
        host=settings.callback_host,
        port=settings.callback_port,
        metrics=metrics,
        health=[
            HealthCheck("database", store.ping),
            HealthCheck("gateway", _async(gateway_connected)),
            HealthCheck("runner", _async(lambda: runner.running)),
        ],
        callbacks=runner if settings.callbacks_enabled else None,
        refresh_metrics=lambda: _refresh_metrics(store, metrics, operations, lease),
        sandbox=sandbox,
    )
    return Services(
        settings=settings,
        store=store,
        api=api,
        runner=runner,
        credits=credits,
        split=SplitService(
            store.reservations, queue or runner, operations, lease=lease, sandbox=settings.sandbox
        ),
        quota=quota,
        budget=BudgetService(store),
        library=library,
        reminders=reminders,
        keeper=keeper,
        mixer=mixer,
        downloads=downloads,
        operations=operations,
        web=web,
        lease=lease,
        acks=Acknowledgements(store, split_answerer, lease=lease, clock=clock),
        songs=SongBook(
            store.songs,
            api,
            metrics,
            timeout=settings.track_lookup_timeout,
            sandbox=settings.sandbox,
        ),
        reports=ReportService(store, quota, operations.check_account, clock=clock),
        languages=languages,
    )


def _wake(reminders: Reminders, keeper: Keeper) -> None:
    """A result was delivered: its reminder may be due sooner, and it may be kept automatically."""
    reminders.wake()
    keeper.wake()


async def _refresh_metrics(store: Store, metrics: Metrics, operations: Operations, lease: Lease) -> None:
    """What `/metrics` reads at each scrape: the database's figures, and the API account's credits
    when they were last asked for longer ago than the account check interval (asked on the side:
    a scrape never waits on the API)."""
    metrics.set_job_counts(await store.jobs.count_by_state())
    gauges = await store.reports.gauges(lease.holder)
    metrics.set_keeps_unfinished({KeepState(k): n for k, n in gauges.keeps_unfinished.items()})
    oldest = gauges.oldest_unfinished_job_at
    metrics.oldest_unfinished_job_age.set(max(0.0, store.db.now() - oldest) if oldest is not None else 0)
    metrics.jobs_held.set(gauges.jobs_held)
    overview = await store.budgets.overview()
    used_up = sum(1 for s in overview.servers if s.budget is not None and s.spent >= s.budget)
    bot = overview.bot if overview.bot is not None else await store.budgets.bot()
    metrics.set_monthly_budget(bot.spent, bot.budget, used_up)
    operations.refresh_account_credits()


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def run_check() -> bool:
        return check()

    return run_check
