"""Every message StemBot can show a member or a moderator, rendered at worst-case values.

`registry()` lists each as a name and a builder; a builder renders when called, so a test calls it
inside `i18n.speaking(language)` and gets the message in that language. What builders return:
a `Message` or a list of them, an embed or a list of embeds (one message), a string (a message's
content), a view (its buttons and menus), or `Text` for what Discord shows on its own (a thread
name, an autocomplete choice, a file name, a chart's words).

Worst case: the longest titles, names and reasons the product takes, 100-character and hostile
ids, the largest numbers, twelve stems with long links, 250 role tiers. The words passed in (user
data, the API's words) are listed in `VALUES`, so a test can tell them from the product's own
words. Each new renderer gets an entry here: `tests/test_messages.py` checks that every public
function of `bot/render/*` is called from this file or listed in `NOT_MESSAGES` with why.
"""

from __future__ import annotations

import asyncio
import importlib
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import discord

from bot import i18n
from bot.errors import (
    OWNERS_USAGE,
    BalanceWouldGoNegative,
    BotBudgetUsedUp,
    BudgetUsedUp,
    CannotAttachFiles,
    CooldownActive,
    ExportTooLarge,
    InsufficientCredits,
    KeepingOff,
    LinksExpired,
    MemberBlocked,
    NeedsManageServer,
    NotAModerator,
    NotAServerManager,
    NothingToKeep,
    NotTheBotOwner,
    NotYourJob,
    ShuttingDown,
    SplittingPaused,
    StemBotError,
    TooManyJobsInFlight,
    UnknownJob,
)
from bot.mixing.refusals import (
    BadMixChoice,
    MixBlocked,
    MixingOff,
    MixOfADmResult,
    MixSourcesGone,
    NothingToMix,
)
from bot.models import (
    SERVER_WIDE,
    Adjustment,
    AllowanceUpdate,
    ApiErrorNote,
    Balance,
    BlockChange,
    BudgetAlert,
    BudgetChange,
    BudgetLevel,
    BudgetOverview,
    CallbackServerState,
    Cancellation,
    CancelOutcome,
    Correction,
    CreditSummary,
    DeliveredMessage,
    Delivery,
    DeliveryVia,
    DeploymentAlert,
    DeploymentBudget,
    EconomyOverview,
    EconomySettings,
    Failure,
    HistoryPage,
    Job,
    JobState,
    Keep,
    KeepPlace,
    KeepState,
    KeepStems,
    KeptStem,
    LedgerEntry,
    LedgerKind,
    LibraryPage,
    Mix,
    MixState,
    MixStems,
    PauseReason,
    Period,
    Refund,
    ReuseCharge,
    ServerBudget,
    ServerStatus,
    SettingsUpdate,
    Share,
    Song,
    StatusReport,
    StemLink,
    TaskTracks,
    Track,
)
from bot.models.keeps import StemKeepState
from bot.models.operations import OrphanedTask
from bot.models.reports import (
    OTHER_SERVERS,
    ExportFile,
    JobOutcomes,
    OwnerReport,
    Series,
    Spender,
    UsageReport,
)
from bot.product import STEMS, Mode, stem_name
from bot.render import buttons, common, library, operators, quota, results, server_settings, songs, usage
from bot.render import keep as keeping
from bot.render import mix as mixing
from tests.unit_helpers import (
    FINISHED_AT,
    HOSTILE,
    LINKS_EXPIRE_AT,
    TWELVE_STEMS,
    TWO_STEMS,
    make_job,
    stem_url,
)

# -- the values passed in: user data and the API's words, at their worst ----------------------------

BIG = 999_999_999_999
"""Credits far beyond any real balance."""
SNOWFLAKE = 999_999_999_999_999_999
JOB_ID = 2**63 - 1
"""The largest job number (19 digits: what the buttons' custom ids hold)."""
LATER = FINISHED_AT + 3 * 86_400
NOW = FINISHED_AT + 60

TITLE = " ".join(["Zorblax Quuxwyn Vrelkmor"] * 14)
"""A song title longer than any place shows whole (the API's, untrusted)."""
REASON = ("Qwyzzle plorfing " * 12).strip()[:200]
"""A moderator's reason at `MAX_REASON_LENGTH`."""
API_WORDS = "Zxqvy glorpnik vrumstream refuzzal " * 160
"""What the separation service said, far too long."""
API_SENTENCE = " ".join(API_WORDS.split()[:40])
"""The API's words, long, cut where words end (a mix's stored failure)."""
MEMBER_NAME = "Ŋorbly Zqwaxxe Magnifikorr " * 3
SERVER_NAME = "Hyperkrull Vandomir Kollektivoz " * 4
TIMEZONE = "America/Argentina/ComodRivadavia"
WEB_SERVER_ERROR = "Errno 98 bindwarp occuplex " * 12
CALLBACK_URL = "https://stembot.example.test/" + "p" * 200
ACTION = "vorpulate glimmerfax"
"""What a service says an action is ("grant credits"): a refusal's words around it are the
product's, and the action is the service's own (made up here, so no English slips through)."""
LONG_TASK_ID, LONG_AUDIO_ID = "t" * 100, "a" * 100
API_TASK_ID = "api-task-" + "9" * 55
UNKNOWN_KIND = "zyxkind_qwo"
"""A ledger kind the reports have no words for yet (shown as it is named)."""
TRACK_ID_TAIL = "x" * 80
"""The long audio ids of a task's tracks end with it."""
MIX_FILENAME = f"{TITLE[:80]} - Zqxmix.mp3"

VALUES: tuple[str, ...] = (
    TITLE,
    REASON,
    API_WORDS,
    MEMBER_NAME,
    SERVER_NAME,
    TIMEZONE,
    WEB_SERVER_ERROR,
    CALLBACK_URL,
    LONG_TASK_ID,
    LONG_AUDIO_ID,
    API_TASK_ID,
    MIX_FILENAME,
    HOSTILE,
    "5c79a1b2e6f04d7a9c3b8e2f1a0d4c6b",  # make_job's ids
    "e231f4a8-6b0d-4c3e-9a7f-1d2b3c4e5f60",
    "StemBot",  # product names are values, never translated
    "Discord",
    "127.0.0.1:8080",
    "1.0.0",
    "zorp_quaxle",
    "ZqxFault",
    ACTION,
    TRACK_ID_TAIL,
    UNKNOWN_KIND,
)
"""Words the tests pass in: not the product's, so never a sign of a string that bypassed the
catalog."""

LIMITLESS = 10**9


@dataclass(frozen=True, slots=True)
class Text:
    """Words Discord shows on their own, with Discord's limit for that place (`LIMITLESS` where
    Discord sets none: a file name, a chart's words, a CSV header)."""

    text: str
    limit: int
    place: str


Rendered = (
    common.Message
    | list[common.Message]
    | discord.Embed
    | list[discord.Embed]
    | str
    | Text
    | list[Text]
    | discord.ui.View
)

THREAD_NAME, AUTOCOMPLETE, CHOICE_NAME, FILE_NAME, CHART = (
    "thread name",
    "autocomplete choice",
    "choice name",
    "file name",
    "chart",
)


# -- builders -------------------------------------------------------------------------------------


def song(title: str | None = TITLE, **overrides: Any) -> Song:
    values: dict[str, Any] = dict(
        title=title,
        duration=35_999.4,
        cover_url="https://cdn.example.test/covers/" + "c" * 300 + ".jpeg",
        take=2,
        takes=2,
    )
    values.update(overrides)
    return Song(**values)


def job(*, titled: bool = True, hostile: bool = False, **overrides: Any) -> Job:
    """A job at its worst: the largest number, the longest ids, the longest title (or a hostile
    one, ids included), every figure at its largest."""
    values: dict[str, Any] = dict(
        job_id=JOB_ID,
        source_task_id=HOSTILE if hostile else LONG_TASK_ID,
        audio_id=HOSTILE if hostile else LONG_AUDIO_ID,
        cost=BIG,
        song=song(HOSTILE if hostile else TITLE) if titled else None,
    )
    values.update(overrides)
    return make_job(**values)


def succeeded(keys: tuple[str, ...] = TWELVE_STEMS, url_length: int = 500, **overrides: Any) -> Job:
    mode = Mode.SEPARATE_VOCAL if len(keys) <= 2 else Mode.SPLIT_STEM
    stems = tuple(StemLink(key, stem_url(key, url_length)) for key in keys)
    return job(mode=mode, stems=stems, **overrides)


def failed_job(failure: Failure | None, **overrides: Any) -> Job:
    return job(state=JobState.FAILED, failure=failure, failure_detail=API_WORDS, **overrides)


def kept_keep(place: KeepPlace = KeepPlace.THREAD, state: KeepState = KeepState.KEPT) -> Keep:
    return Keep(
        job_id=JOB_ID, guild_id=SNOWFLAKE, state=state, requested_by=SNOWFLAKE, upload_limit=10 * 2**20,
        place=place, channel_id=SNOWFLAKE, anchor_message_id=SNOWFLAKE,
    )  # fmt: skip


def summary(**overrides: Any) -> CreditSummary:
    values: dict[str, Any] = dict(
        allowance_left=BIG,
        bonus=BIG,
        allowance=BIG,
        next_allowance=BIG - 1,
        period=Period.MONTHLY,
        next_refill_at=LATER,
        period_started_at=FINISHED_AT,
        spent_this_period=BIG,
        jobs_in_flight=100,
        jobs_per_member=100,
        blocked=True,
        blocked_reason=REASON,
        next_split_at=LATER,
    )
    values.update(overrides)
    return CreditSummary(**values)


def correction(amount: int | None = BIG) -> Correction:
    return Correction(SNOWFLAKE, Adjustment(Balance(BIG, BIG), Balance(BIG, 1), 100), REASON, amount)


def entry(kind: LedgerKind, amount: int = -BIG, **overrides: Any) -> LedgerEntry:
    values: dict[str, Any] = dict(
        id=1, guild_id=1, user_id=2, kind=kind, amount=amount, balance_after=BIG, job_id=JOB_ID,
        actor_id=SNOWFLAKE, reason=REASON, created_at=FINISHED_AT, job_song=TITLE,
    )  # fmt: skip
    values.update(overrides)
    return LedgerEntry(**values)


def settings(**overrides: Any) -> EconomySettings:
    values: dict[str, Any] = dict(
        guild_id=1,
        period=Period.WEEKLY,
        refill_minute=1439,
        timezone=TIMEZONE,
        jobs_per_member=100,
        cooldown_seconds=86_399,
        moderator_role_id=SNOWFLAKE,
        audit_channel_id=SNOWFLAKE,
        reuse_charge=ReuseCharge.FULL,
        keep_stems=KeepStems.ALWAYS,
        mix_stems=MixStems.ON,
        mix_price=BIG,
    )
    if "language" in EconomySettings.__dataclass_fields__:  # the server's language, where chosen
        values["language"] = "ja"
    values.update(overrides)
    return EconomySettings(**values)


def settings_update(tiers: int = 250, *, changed: bool = True, **overrides: Any) -> SettingsUpdate:
    after = settings(**overrides)
    budget = ServerBudget(1, "2025-09", BIG, BIG, True, LATER)
    overview = EconomyOverview(
        after, BIG, tuple((SNOWFLAKE - n, BIG) for n in range(tiers)), 100, LATER, budget
    )
    return SettingsUpdate(EconomySettings(guild_id=1) if changed else after, overview)


def deployment(budget: int | None = BIG) -> DeploymentBudget:
    return DeploymentBudget("2025-09", BIG, budget, LATER)


def status_report(**overrides: Any) -> StatusReport:
    values: dict[str, Any] = dict(
        version="1.0.0",
        account_credits=BIG,
        jobs_by_state={state: BIG for state in JobState},
        recent_errors=tuple(ApiErrorNote(FINISHED_AT, "submit", 500, API_WORDS) for _ in range(10)),
        paused=PauseReason.OUT_OF_CREDITS,
        paused_since=FINISHED_AT,
        callbacks=CallbackServerState(CALLBACK_URL, "127.0.0.1:8080", BIG, FINISHED_AT),
        poll_interval=10.0,
        bot_budget=deployment(),
        server_budget_default=BIG,
        orphaned_tasks=tuple(OrphanedTask(JOB_ID, API_TASK_ID, FINISHED_AT) for _ in range(5)),
        orphaned_total=BIG,
    )
    values.update(overrides)
    return StatusReport(**values)


def server_status(**overrides: Any) -> ServerStatus:
    values: dict[str, Any] = dict(
        version="1.0.0",
        guild_id=SNOWFLAKE,
        jobs_by_state={state: BIG for state in JobState},
        paused=PauseReason.KEY_REFUSED,
        paused_since=FINISHED_AT,
    )
    values.update(overrides)
    return ServerStatus(**values)


def server_budgets(count: int) -> tuple[ServerBudget, ...]:
    return tuple(ServerBudget(SNOWFLAKE - n, "2025-09", BIG - n, BIG, True, LATER) for n in range(count))


DAYS = tuple(date(2025, 9, 1) + timedelta(days=n) for n in range(365))


def usage_report(*, member: bool = False, empty: bool = False) -> UsageReport:
    zeros = tuple(0 for _ in DAYS)
    big = tuple(BIG for _ in DAYS)
    categories = [mode.value for mode in Mode] + [LedgerKind.MIX_CHARGE.value, UNKNOWN_KIND]
    return UsageReport(
        guild_id=SNOWFLAKE,
        member_id=SNOWFLAKE if member else None,
        member_name=MEMBER_NAME if member else None,
        server_name=SERVER_NAME,
        timezone=TIMEZONE,
        days=DAYS,
        spent=() if empty else tuple(Series(c, big) for c in categories),
        refunded=zeros if empty else big,
        api_spent=zeros if empty else big,
        api_month_spent=zeros if empty else big,
        budget=BIG,
        top=()
        if empty
        else tuple(Spender(SNOWFLAKE - n, MEMBER_NAME if n % 2 else None, BIG) for n in range(10)),
        outcomes=JobOutcomes(0, 0) if empty else JobOutcomes(BIG, BIG // 3),
    )


def owner_report(*, empty: bool = False) -> OwnerReport:
    big = tuple(BIG for _ in DAYS)
    servers = (
        () if empty else (*(Series(str(SNOWFLAKE - n), big) for n in range(10)), Series(OTHER_SERVERS, big))
    )
    return OwnerReport(
        days=DAYS,
        servers=servers,
        names={SNOWFLAKE - n: SERVER_NAME for n in range(0, 10, 2)},
        released=big,
        account_credits=BIG,
        monthly_budget=BIG,
        server_monthly_budget=BIG,
        month_spent=big,
    )


def chart_words(spec: Any) -> list[Text]:
    """The words a chart draws: its title, subtitle, axes, legend and day labels."""
    labels = [spec.title, *(s.label for s in spec.stacks)]
    labels += [s.label for s in (spec.below, spec.line) if s is not None]
    words = [label.text for label in labels] + [label.fallback for label in labels if label.fallback]
    words += [spec.subtitle, spec.y_label, spec.line_axis_label, *spec.day_labels[:40], *spec.notes]
    if spec.limit is not None:
        words.append(spec.limit[0])
    return [Text(w, LIMITLESS, CHART) for w in words if w]


TRACKS = TaskTracks(
    "task-1",
    tuple(Track(f"{n}-{TRACK_ID_TAIL}", TITLE if n % 3 else None, 35_999.0, None, n + 1) for n in range(30)),
)
TWINS = TaskTracks(
    "task-2", tuple(Track(f"{n}-{TRACK_ID_TAIL}", TITLE, 200.0 + n, None, n + 1) for n in range(2))
)
ONE_TRACK = TaskTracks("task-3", (Track(f"1-{TRACK_ID_TAIL}", TITLE, None, None, 1),))


def track_menu(tracks: TaskTracks, mode: Mode) -> discord.ui.View:
    from cogs.split import TrackMenu

    view = discord.ui.View(timeout=None)
    view.add_item(
        TrackMenu(
            SNOWFLAKE,
            mode.value,
            2**39,
            SNOWFLAKE,
            songs.menu_options(tracks, mode),
            songs.menu_placeholder(mode),
        )
    )
    return view


def mix_picker() -> discord.ui.View:
    from cogs.mixing import MixPicker

    view = discord.ui.View(timeout=None)
    view.add_item(MixPicker(JOB_ID, [stem_name(stem.key) for stem in STEMS]))
    return view


def pager() -> discord.ui.View:
    from cogs.paging import Pager

    async def turn(interaction: Any, page: int) -> tuple[discord.Embed, int, int]:
        raise AssertionError("never pressed here")

    return Pager(turn, owner_id=SNOWFLAKE, page=1, pages=3, refused=quota.pager_refused())


def mix(state: MixState, **overrides: Any) -> Mix:
    values: dict[str, Any] = dict(
        id=SNOWFLAKE, job_id=JOB_ID, guild_id=SNOWFLAKE, stems=(1 << 11) - 1, state=state,
        requested_by=SNOWFLAKE, price=BIG, upload_limit=10 * 2**20, filename=MIX_FILENAME,
        place=KeepPlace.THREAD, channel_id=SNOWFLAKE, message_id=SNOWFLAKE, failure=API_SENTENCE,
    )  # fmt: skip
    values.update(overrides)
    return Mix(**values)


def lazy(module: str) -> Any:
    """A module imported when a builder runs, not when the registry is built: a module or name
    renamed breaks that message's entry alone, not the whole registry."""
    return importlib.import_module(module)


def stored_reasons() -> Iterator[tuple[str, Callable[[], str]]]:
    """Every reason a keep, a stem or a mix stores (`bot.reasons`), with values, made as the
    modules that stop them make it (in English, as stored; shown later in the reader's language)."""
    reasons = lazy("bot.reasons")
    values: dict[str, Callable[[], object]] = dict(
        status=lambda: 503,
        size=lambda: "25 MB",
        code=lambda: "HTTP 503",
        error=lambda: "ZqxFault",
        stem=lambda: "Vocals",  # stored in English, named the reader's way when shown
        why=lambda: reasons.because(reasons.NOT_AUDIO),
    )
    for name in sorted(dir(reasons)):
        message = getattr(reasons, name)
        if name.isupper() and isinstance(message, str):
            yield (
                name,
                lambda message=message: reasons.because(
                    message,
                    **{field: values.get(field, lambda: 96)() for field in catalogs_placeholders(message)},
                ),
            )


def catalogs_placeholders(message: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(message) if field is not None}


def raised(check: Callable[..., Any], *args: Any, **kwargs: Any) -> StemBotError:
    """The refusal a product check raises for `args` (its words are the product's)."""
    try:
        check(*args, **kwargs)
    except StemBotError as error:
        return error
    raise AssertionError(f"{check.__name__}{args} raised nothing")


def errors() -> Iterator[tuple[str, Callable[[], StemBotError]]]:
    """Every refusal a member or moderator can be shown, at its worst; the checks that raise
    them where they are plain functions. Made when called: an error's words are in the language
    spoken when it is raised."""
    jobs, quota_rules, reports = (lazy("bot.jobs"), lazy("bot.quota"), lazy("bot.reports"))
    budget = lazy("bot.budget")

    yield "InvalidTrackId empty", lambda: raised(jobs.clean_track_id, "audio_id", " ")
    yield "InvalidTrackId long", lambda: raised(jobs.clean_track_id, "task_id", "x" * 5000)
    yield "InvalidTrackId spaces", lambda: raised(jobs.clean_track_id, "task_id", "a b")
    yield "InvalidTrackId characters", lambda: raised(jobs.clean_track_id, "audio_id", "[x](y)")
    yield "InvalidOption reason", lambda: raised(quota_rules.clean_reason, "x" * 5000)
    yield "InvalidOption amount", lambda: raised(quota_rules._check_amount, -(10**15), low=1)
    yield "InvalidOption days", lambda: raised(reports.check_days, 10**6)
    yield "InvalidOption server_id", lambda: raised(budget.parse_server_id, "x")
    yield "InsufficientCredits refilling", lambda: InsufficientCredits(BIG, BIG, LATER)
    yield "InsufficientCredits one-off", lambda: InsufficientCredits(BIG, BIG, None)
    yield "TooManyJobsInFlight one", lambda: TooManyJobsInFlight(1, BIG)
    yield "TooManyJobsInFlight many", lambda: TooManyJobsInFlight(100, BIG)
    yield "MemberBlocked", lambda: MemberBlocked(None, BIG)
    yield "MemberBlocked reason", lambda: MemberBlocked(REASON, BIG)
    yield "MemberBlocked hostile", lambda: MemberBlocked(HOSTILE, BIG)
    yield "CooldownActive", lambda: CooldownActive(LATER, BIG)
    yield "BudgetUsedUp", lambda: BudgetUsedUp(LATER, BIG)
    yield "BudgetUsedUp still fits", lambda: BudgetUsedUp(LATER, BIG, Mode.SEPARATE_VOCAL)
    yield "BotBudgetUsedUp", lambda: BotBudgetUsedUp(LATER, BIG)
    yield "BotBudgetUsedUp still fits", lambda: BotBudgetUsedUp(LATER, BIG, Mode.SEPARATE_VOCAL)
    yield "NotAModerator", lambda: NotAModerator(ACTION, None)
    yield "NotAModerator role", lambda: NotAModerator(ACTION, SNOWFLAKE)
    yield "NotAServerManager", lambda: NotAServerManager()
    yield "NeedsManageServer", lambda: NeedsManageServer(ACTION)
    yield "BalanceWouldGoNegative", lambda: BalanceWouldGoNegative(SNOWFLAKE, BIG, BIG - 1)
    yield "SplittingPaused", lambda: SplittingPaused()
    yield "ShuttingDown", lambda: ShuttingDown()
    yield "NotTheBotOwner", lambda: NotTheBotOwner()
    yield "NotTheBotOwner usage", lambda: NotTheBotOwner(OWNERS_USAGE)
    yield "ExportTooLarge", lambda: ExportTooLarge(365, BIG, 1, 25 * 2**20)
    yield "UnknownJob", lambda: UnknownJob(JOB_ID)
    yield "NotYourJob", lambda: NotYourJob(JOB_ID, ACTION)
    yield "KeepingOff", lambda: KeepingOff()
    for state in (JobState.FAILED, JobState.CANCELLED, JobState.SUBMITTED, JobState.SUCCEEDED):
        for delivered in (False, True):
            yield (
                f"NothingToKeep {state} {delivered}",
                lambda state=state, delivered=delivered: NothingToKeep(JOB_ID, state, delivered=delivered),
            )
    yield "LinksExpired", lambda: LinksExpired(JOB_ID, FINISHED_AT)
    yield "CannotAttachFiles", lambda: CannotAttachFiles()
    yield "MixingOff", lambda: MixingOff()
    yield "NothingToMix", lambda: NothingToMix(JOB_ID)
    yield "BadMixChoice", lambda: BadMixChoice(12)
    yield "MixSourcesGone", lambda: MixSourcesGone(JOB_ID, FINISHED_AT)
    yield "MixBlocked", lambda: MixBlocked(None)
    yield "MixBlocked reason", lambda: MixBlocked(REASON)
    yield "MixOfADmResult", lambda: MixOfADmResult(JOB_ID)


async def _audit_not_posted() -> list[discord.Embed]:
    """The moderator's answer when the audit line could not be posted (the cog adds a field)."""
    from cogs.quota import _reply

    bot: Any = SimpleNamespace(services=SimpleNamespace(settings=SimpleNamespace(sandbox=True)))
    interaction = MagicMock()
    interaction.followup.send = AsyncMock()
    await _reply(bot, interaction, [quota.correction(LedgerKind.GRANT, correction())], False)
    return list(interaction.followup.send.await_args.kwargs["embeds"])


# -- the registry -----------------------------------------------------------------------------------


def registry() -> list[tuple[str, Callable[[], Rendered]]]:
    """(name, builder) for every message; builders render when called, in the language spoken."""
    entries: list[tuple[str, Callable[[], Rendered]]] = []

    def add(name: str, build: Callable[[], Rendered]) -> None:
        entries.append((name, build))

    # /split: refusals, the public queued, processing and result messages, failures.
    for mode in Mode:
        add(f"results.interrupted {mode}", lambda mode=mode: results.interrupted(mode))
    add("results.NOT_STARTED", lambda: i18n._(results.NOT_STARTED))
    add("common.NOT_FINISHED", lambda: i18n._(common.NOT_FINISHED))
    for name, error in errors():
        add(f"common.refusal {name}", lambda error=error: common.refusal(str(error())))
    for name, error in errors():
        add(f"cogs.split.split_refusal {name}", lambda error=error: lazy("cogs.split").split_refusal(error()))
    add("results.unavailable", lambda: results.unavailable(str(SplittingPaused())))
    for share in (None, Share.COALESCED, Share.REUSED):
        for titled in (True, False):
            add(
                f"results.queued {share} titled={titled}",
                lambda share=share, titled=titled: common.Message(
                    embeds=[results.queued(job(state=JobState.RESERVED, share=share, titled=titled))],
                    view=buttons.queued_view(job(state=JobState.RESERVED)),
                ),
            )
    add(
        "results.queued sandbox free",
        lambda: results.queued(job(state=JobState.RESERVED, sandbox=True, cost=0)),
    )
    add("results.queued hostile", lambda: results.queued(job(state=JobState.RESERVED, hostile=True)))
    add("results.processing", lambda: results.processing(job(state=JobState.SUBMITTED)))
    add(
        "results.processing untitled", lambda: results.processing(job(state=JobState.SUBMITTED, titled=False))
    )
    for url_length in (400, 3500):
        for keys in (TWELVE_STEMS, TWO_STEMS):
            add(
                f"results.outcome {len(keys)} stems {url_length}",
                lambda keys=keys, url_length=url_length: results.outcome(
                    succeeded(keys, url_length), mention=True, late=True, keep_button=True, mix_button=True
                ),
            )
    add(
        "results.outcome kept",
        lambda: results.outcome(
            succeeded(), mention=True, kept_url=f"https://discord.com/channels/{SNOWFLAKE}/{SNOWFLAKE}"
        ),
    )
    add(
        "results.outcome sandbox local links",
        lambda: results.outcome(
            replace(
                succeeded(TWO_STEMS),
                sandbox=True,
                stems=tuple(StemLink(k, f"http://127.0.0.1:8080/sandbox/files/{k}.mp3") for k in TWO_STEMS),
                share=Share.REUSED,
            ),
            keep_button=True,
        ),
    )
    add("results.outcome DM", lambda: results.outcome(succeeded(titled=False), in_server=False))
    add(
        "results.stems_ready unknown stem",
        lambda: results.stems_ready(job(stems=(StemLink("zorp_quaxle", "https://x.test/l.mp3"),))),
    )
    add("results.stems_ready one stem", lambda: results.stems_ready(succeeded(("vocal",))))
    for failure in [*Failure, None]:
        add(
            f"results.failed {failure}",
            lambda failure=failure: results.outcome(failed_job(failure), mention=True, late=True),
        )
    add(
        "results.failed free hostile",
        lambda: results.failed(failed_job(Failure.SEPARATION_FAILED, cost=0, hostile=True)),
    )
    add(
        "results.failed one credit",
        lambda: results.failed(failed_job(Failure.TIMED_OUT, cost=1, titled=False)),
    )
    url = f"https://discord.com/channels/{SNOWFLAKE}/{SNOWFLAKE}/{SNOWFLAKE}"
    add("results.pointer done", lambda: results.pointer(succeeded(), url))
    add("results.pointer failed", lambda: results.pointer(failed_job(Failure.TIMED_OUT), url))
    delivered = [DeliveredMessage(JOB_ID, DeliveryVia.CHANNEL, 0, SNOWFLAKE, SNOWFLAKE)]
    add("results.reminder", lambda: results.reminder(succeeded(), delivered, mention=True))
    add(
        "results.reminder untitled",
        lambda: results.reminder(succeeded(titled=False, url_length=3500), [], mention=False),
    )
    add(
        "common.as_plain_text result",
        lambda: common.as_plain_text(results.outcome(succeeded(url_length=900), mention=True)),
    )
    add(
        "common.as_plain_text failure",
        lambda: common.as_plain_text(results.outcome(failed_job(Failure.INVALID_IDS))),
    )
    add(
        "common.bad_input",
        lambda: common.bad_input(str(raised(__import__("bot.jobs").jobs.clean_track_id, "task_id", "a b"))),
    )
    add(
        "common.not_installed_here",
        lambda: common.not_installed_here("https://discord.com/oauth2/authorize?client_id=" + "1" * 19),
    )
    for option_type in (*discord.AppCommandOptionType,):
        add(
            f"common.unresolved_option {option_type.name}",
            lambda option_type=option_type: common.unresolved_option(option_type),
        )
    add("common.command_cooldown", lambda: common.command_cooldown("quota history", LATER))
    add("common.unexpected_error", common.unexpected_error)
    add("common.mark_sandbox", lambda: common.mark_sandbox(quota.my_credits(summary()), True))
    for mode in Mode:
        add(f"common.mode_label {mode}", lambda mode=mode: Text(common.mode_label(mode), 100, CHOICE_NAME))

    # Songs: the menu of tracks, suggestions.
    for name, tracks in (("30 tracks", TRACKS), ("twins", TWINS), ("one track", ONE_TRACK)):
        for mode in Mode:
            add(
                f"songs.menu {name} {mode}",
                lambda tracks=tracks, mode=mode: common.Message(
                    embeds=[songs.menu(tracks, mode)], view=track_menu(tracks, mode)
                ),
            )
        add(
            f"songs.suggestion {name}",
            lambda tracks=tracks: [
                Text(songs.suggestion(t, tracks), 100, AUTOCOMPLETE) for t in tracks.tracks
            ],
        )
    add("songs.chosen_words", lambda: songs.chosen_words(TRACKS.tracks[1], TRACKS))
    add("songs.menu_chosen untitled", lambda: songs.menu_chosen(None, ""))
    add("songs.menu_expired", songs.menu_expired)
    add("songs.menu_used", songs.menu_used)
    add("songs.menu_not_yours", songs.menu_not_yours)
    add("songs.lookup_failed", songs.lookup_failed)
    add("songs.lookup_failed no tracks", lambda: songs.lookup_failed(no_tracks=True))
    add("songs.track_gone", songs.track_gone)
    add("songs.job_name", lambda: Text(songs.job_name(job()), 100, THREAD_NAME))
    add("songs.job_name untitled", lambda: Text(songs.job_name(job(titled=False)), 100, THREAD_NAME))

    # Keeping stems in Discord.
    for titled in (True, False):
        add(
            f"keep.thread_name titled={titled}",
            lambda titled=titled: Text(keeping.thread_name(succeeded(titled=titled)), 100, THREAD_NAME),
        )
        add(
            f"keep.first_post titled={titled}",
            lambda titled=titled: keeping.first_post(succeeded(titled=titled)),
        )
    add(
        "keep.thread_name hostile",
        lambda: Text(keeping.thread_name(succeeded(hostile=True)), 100, THREAD_NAME),
    )
    add(
        "keep.thread_name one stem",
        lambda: Text(keeping.thread_name(succeeded(("vocal",), titled=False)), 100, THREAD_NAME),
    )

    def skipped() -> list[tuple[KeptStem, str]]:
        """Every stem staying a link, each named as it was posted (in the language spoken)."""
        return [
            (
                KeptStem(
                    JOB_ID,
                    n,
                    f"{stem_name(key)}.mp3",
                    StemKeepState.SKIPPED,
                    10**12,
                    REASON if n % 2 else None,
                ),
                stem_url(key, 500),
            )
            for n, key in enumerate(TWELVE_STEMS)
        ]

    add("keep.skipped_note", lambda: keeping.skipped_note(succeeded(), skipped()))
    add(
        "keep.skipped_note no expiry",
        lambda: keeping.skipped_note(succeeded(links_expire_at=None), skipped()[:1]),
    )
    add(
        "keeping.posting.filename",
        lambda: [
            Text(lazy("bot.keeping.posting").filename(key, stem_url(key, 200)), LIMITLESS, FILE_NAME)
            for key in TWELVE_STEMS
        ],
    )
    for state in KeepState:
        for started in (False, True):
            add(
                f"keep.keep_answer {state} started={started}",
                lambda state=state, started=started: keeping.keep_answer(
                    kept_keep(state=state), succeeded(), started=started, last_failure=REASON
                ),
            )
    add(
        "keep.keep_answer DM",
        lambda: keeping.keep_answer(
            kept_keep(KeepPlace.DM, KeepState.PENDING), succeeded(delivered_via=DeliveryVia.DM), started=True
        ),
    )
    add(
        "keep.keep_answer no place",
        lambda: keeping.keep_answer(
            replace(kept_keep(state=KeepState.WORKING), channel_id=None), succeeded(), started=False
        ),
    )
    for action in ("thread", "post", "read"):
        for status in (403, 400, 404, 500):
            exc = discord.HTTPException(MagicMock(status=status, reason="x"), "x")
            exc.code = {403: 50013, 400: 50024, 404: 10003}.get(status, 0)
            add(
                f"keep.keep_answer after {action} {status}",
                lambda exc=exc, action=action: keeping.keep_answer(
                    kept_keep(state=KeepState.FAILED),
                    succeeded(),
                    started=True,
                    last_failure=lazy("bot.discord_side.keeper")._refusal(action, exc),
                ),
            )
    for name, stored in stored_reasons():
        add(
            f"keep.keep_answer last failure {name}",
            lambda stored=stored: keeping.keep_answer(
                kept_keep(state=KeepState.FAILED), succeeded(), started=True, last_failure=stored()
            ),
        )
        add(
            f"keep.skipped_note {name}",
            lambda stored=stored: keeping.skipped_note(
                succeeded(),
                [
                    (
                        KeptStem(JOB_ID, 0, "Zorblax.mp3", StemKeepState.SKIPPED, 10**12, stored()),
                        stem_url("vocal", 500),
                    )
                ],
            ),
        )
        add(
            f"mix.failed_answer {name}",
            lambda stored=stored: mixing.failed_answer(
                succeeded(), mix(MixState.FAILED, failure=stored()), BIG
            ),
        )

    # Mixes.
    add("mix.picker", lambda: mixing.picker(succeeded(), BIG))
    add("mix.picker free", lambda: mixing.picker(succeeded(), 0))
    add("mix picker menu", mix_picker)
    for state in (MixState.POSTED, MixState.PENDING):
        for started in (False, True):
            add(
                f"mix.asked_answer {state} {started}",
                lambda state=state, started=started: mixing.asked_answer(
                    succeeded(), mix(state), started=started
                ),
            )
    add(
        "mix.asked_answer one credit",
        lambda: mixing.asked_answer(succeeded(), mix(MixState.PENDING, price=1), started=True),
    )

    def names() -> list[str]:
        return [stem_name(key) for key in TWELVE_STEMS]

    add(
        "mix.file_line",
        lambda: mixing.file_line(succeeded(), mix(MixState.POSTING), [stem_name(k) for k in TWELVE_STEMS]),
    )
    add("mix.posted_answer", lambda: mixing.posted_answer(succeeded(), mix(MixState.POSTED)))
    add(
        "mix.posted_answer not linked",
        lambda: mixing.posted_answer(succeeded(), mix(MixState.POSTED, channel_id=None)),
    )
    add("mix.failed_answer", lambda: mixing.failed_answer(succeeded(), mix(MixState.FAILED), BIG))
    add("mix.failed_answer free", lambda: mixing.failed_answer(succeeded(), mix(MixState.FAILED), 0))
    for kept in ([0], [0, 1, 2], list(range(9)), list(range(10)), list(range(11))):
        add(
            f"mix file name keeping {len(kept)}",
            lambda kept=kept: [
                Text(
                    lazy("bot.mixing.names").mix_filename(TITLE, JOB_ID, names(), kept), LIMITLESS, FILE_NAME
                ),
                Text(
                    lazy("bot.mixing.names").mix_filename(None, JOB_ID, names(), kept), LIMITLESS, FILE_NAME
                ),
            ],
        )

    # The library: /stems list, show, cancel, reminders, suggestions.
    every_state = tuple(
        job(job_id=JOB_ID - n, state=state, share=share, delivery=delivery, titled=n % 2 == 0, cost=cost)
        for n, (state, share, delivery, cost) in enumerate(
            [(s, None, Delivery.DELIVERED, BIG) for s in JobState]
            + [
                (JobState.SUCCEEDED, Share.REUSED, Delivery.UNDELIVERABLE, 0),
                (JobState.FAILED, None, Delivery.DELIVERED, 0),
            ]
            + [
                (JobState.CANCELLED, None, Delivery.DELIVERED, 0),
                (JobState.SUCCEEDED, Share.COALESCED, Delivery.DELIVERED, BIG),
            ]
        )
    )
    keeps = {j.id: replace(kept_keep(), job_id=j.id) for j in every_state[::2]}
    for own in (True, False):
        add(
            f"library.library own={own}",
            lambda own=own: library.library(
                LibraryPage(every_state[:10], 0, BIG, BIG, JOB_ID, keeps), SNOWFLAKE, own=own, now=NOW
            ),
        )
    add(
        "library.library empty",
        lambda: library.library(LibraryPage((), 0, 1, 0, 0, {}), SNOWFLAKE, own=True, now=NOW),
    )
    add(
        "library.library expired",
        lambda: library.library(
            LibraryPage((succeeded(links_expire_at=FINISHED_AT),), 0, 1, 1, 1, {}),
            SNOWFLAKE,
            own=True,
            now=NOW + 10**7,
        ),
    )
    for n, shown_job in enumerate(every_state):
        add(
            f"library.shown {shown_job.state} {n}",
            lambda shown_job=shown_job: library.shown(shown_job, NOW, keeps.get(shown_job.id)),
        )
    add("library.shown expired", lambda: library.shown(succeeded(), LINKS_EXPIRE_AT + 10))
    add("library.shown expired kept", lambda: library.shown(succeeded(), LINKS_EXPIRE_AT + 10, kept_keep()))
    add("library.shown kept", lambda: library.shown(succeeded(), NOW, kept_keep()))
    cancelled = job(state=JobState.CANCELLED)
    for refund in (None, Refund(BIG, 0, 0), Refund(BIG, BIG, BIG), Refund(0, 0, BIG), Refund(0, 0, 1)):
        add(f"library.cancelled {refund}", lambda refund=refund: library.cancelled(cancelled, refund))
        add(
            f"library.shown cancelled {refund}",
            lambda refund=refund: library.shown(cancelled, NOW, None, refund),
        )
    for outcome in CancelOutcome:
        add(
            f"library.cancel_answer {outcome}",
            lambda outcome=outcome: library.cancel_answer(
                Cancellation(outcome, every_state[-1], Refund(BIG, 0, 1))
            ),
        )
    for enabled, hours in ((True, 72.5), (True, 0), (False, 24)):
        add(
            f"library.reminders_answer {enabled} {hours}",
            lambda enabled=enabled, hours=hours: library.reminders_answer(enabled, hours),
        )
    for n, suggested in enumerate((*every_state, job(hostile=True))):
        add(
            f"library.suggestion {n}",
            lambda suggested=suggested, n=n: Text(
                library.suggestion(suggested, NOW + n * 10**5), 100, AUTOCOMPLETE
            ),
        )
        add(
            f"library.track_suggestion {n}",
            lambda suggested=suggested: Text(
                library.track_suggestion(suggested, LONG_TASK_ID, NOW), 100, AUTOCOMPLETE
            ),
        )
    add(
        "library.track_suggestion shared",
        lambda: Text(library.track_suggestion(job(share=Share.REUSED), "x", NOW + 1), 100, AUTOCOMPLETE),
    )
    add("library.pager_refused", library.pager_refused)
    add("library pages", pager)

    # Credits, and what moderators do with them.
    add("quota.my_credits", lambda: quota.my_credits(summary()))
    add(
        "quota.my_credits one-off",
        lambda: quota.my_credits(
            summary(
                period=Period.NEVER,
                next_refill_at=None,
                blocked=False,
                blocked_reason=None,
                next_split_at=None,
                allowance_left=1,
                bonus=0,
            )
        ),
    )
    add("quota.credits", lambda: quota.credits(summary()))
    add(
        "quota.credits of a member",
        lambda: quota.credits(summary(blocked_reason=HOSTILE), member_id=SNOWFLAKE),
    )
    add(
        "quota.credits one-off",
        lambda: quota.credits(summary(period=Period.NEVER, next_refill_at=None, next_allowance=BIG)),
    )
    add("quota.quota_refused", lambda: quota.quota_refused(str(BalanceWouldGoNegative(SNOWFLAKE, BIG, BIG))))
    add("quota.pager_refused", quota.pager_refused)
    for kind in (LedgerKind.GRANT, LedgerKind.SET, LedgerKind.RESET):
        add(f"quota.correction {kind}", lambda kind=kind: quota.correction(kind, correction()))
        add(
            f"quota.audit_correction {kind}",
            lambda kind=kind: quota.audit_correction(kind, SNOWFLAKE, correction()),
        )
    add("quota.correction take", lambda: quota.correction(LedgerKind.GRANT, correction(-BIG)))
    add(
        "quota.audit_correction take",
        lambda: quota.audit_correction(LedgerKind.GRANT, SNOWFLAKE, correction(-BIG)),
    )
    add(
        "quota.correction one running",
        lambda: quota.correction(
            LedgerKind.GRANT, Correction(1, Adjustment(Balance(0, 0), Balance(1, 0), 1), None, 1)
        ),
    )
    add("audit channel not posted", lambda: asyncio.run(_audit_not_posted()))
    for blocked in (True, False):
        for changed in (True, False):
            change = BlockChange(SNOWFLAKE, blocked, changed, REASON)
            add(f"quota.block_change {blocked} {changed}", lambda change=change: quota.block_change(change))
            add(
                f"quota.audit_block {blocked} {changed}",
                lambda change=change: quota.audit_block(SNOWFLAKE, change),
            )
    for role in (SERVER_WIDE, SNOWFLAKE):
        for amount in (BIG, 0):
            for applied_now, refill in ((True, LATER), (False, LATER), (False, None)):
                update = AllowanceUpdate(
                    role,
                    amount,
                    BIG,
                    Period.NEVER if refill is None else Period.MONTHLY,
                    Period.WEEKLY,
                    applied_now,
                    refill,
                )
                add(
                    f"quota.allowance_update {role} {amount} {applied_now} {refill}",
                    lambda update=update: server_settings.allowance_update(update),
                )
                add(
                    f"quota.audit_allowance {role} {amount} {applied_now} {refill}",
                    lambda update=update: server_settings.audit_allowance(SNOWFLAKE, update),
                )
    add("quota.settings_overview", lambda: server_settings.settings_overview(settings_update()))
    add(
        "quota.settings_overview unchanged",
        lambda: server_settings.settings_overview(settings_update(0, changed=False)),
    )
    for keep_stems in KeepStems:
        for mix_stems in MixStems:
            add(
                f"quota.settings_overview {keep_stems} {mix_stems}",
                lambda keep_stems=keep_stems, mix_stems=mix_stems: server_settings.settings_overview(
                    settings_update(
                        1,
                        keep_stems=keep_stems,
                        mix_stems=mix_stems,
                        mix_price=0,
                        period=Period.NEVER,
                        reuse_charge=ReuseCharge.FREE,
                        jobs_per_member=None,
                        moderator_role_id=None,
                        audit_channel_id=None,
                        cooldown_seconds=0,
                    )
                ),
            )
    add("quota.audit_settings", lambda: server_settings.audit_settings(SNOWFLAKE, settings_update(0)))
    add(
        "quota.history",
        lambda: quota.history(
            HistoryPage(tuple(entry(kind) for kind in list(LedgerKind)[:10]), 0, BIG, BIG, 1), SNOWFLAKE
        ),
    )
    add("quota.history empty", lambda: quota.history(HistoryPage((), 0, 1, 0, 0), SNOWFLAKE))
    for kind in LedgerKind:
        for amount in (-BIG, BIG, 1):
            add(
                f"quota.history_line {kind} {amount}",
                lambda kind=kind, amount=amount: quota.history_line(entry(kind, amount)),
            )
    add(
        "quota.history_line by StemBot",
        lambda: quota.history_line(entry(LedgerKind.REFILL, actor_id=None, reason=None, job_song=None)),
    )

    # The bot's operator and server managers.
    for reason in PauseReason:
        add(
            f"operators.splitting_paused_alert {reason}",
            lambda reason=reason: operators.splitting_paused_alert(reason),
        )
    add("operators.splitting_resumed_alert", operators.splitting_resumed_alert)
    add("operators.server_status", lambda: operators.server_status(server_status()))
    add(
        "operators.server_status sandbox",
        lambda: operators.server_status(server_status(paused=None, sandbox=True)),
    )
    add("operators.status", lambda: operators.status(status_report(), server_status()))
    add(
        "operators.status quiet",
        lambda: operators.status(
            status_report(
                account_credits=None,
                recent_errors=(),
                paused=None,
                bot_budget=deployment(None),
                server_budget_default=None,
                orphaned_tasks=(),
                orphaned_total=0,
                callbacks=CallbackServerState(None, None, 0, None, WEB_SERVER_ERROR),
            )
        ),
    )
    add(
        "operators.status sandbox",
        lambda: operators.status(
            status_report(
                sandbox=True,
                bot_budget=deployment(None),
                callbacks=CallbackServerState(CALLBACK_URL, None, 1, None),
            )
        ),
    )
    for level in BudgetLevel:
        add(
            f"operators.budget_alert {level}",
            lambda level=level: operators.budget_alert(
                BudgetAlert(level, ServerBudget(SNOWFLAKE, "2025-09", BIG, BIG, True, LATER))
            ),
        )
        add(
            f"operators.bot_budget_alert {level}",
            lambda level=level: operators.bot_budget_alert(DeploymentAlert(level, deployment())),
        )
    server_names = {SNOWFLAKE - n: SERVER_NAME if n % 3 else HOSTILE for n in range(300)}
    add(
        "operators.budget_overview",
        lambda: operators.budget_overview(
            BudgetOverview("2025-09", LATER, BIG, server_budgets(300), deployment()), server_names
        ),
    )
    add(
        "operators.budget_overview one",
        lambda: operators.budget_overview(
            BudgetOverview("2025-12", LATER, None, server_budgets(1), deployment(None)), {}
        ),
    )
    add(
        "operators.budget_overview none",
        lambda: operators.budget_overview(BudgetOverview("2025-01", LATER, None, ()), {}),
    )
    own = ServerBudget(SNOWFLAKE, "2025-09", BIG, BIG, True, LATER)
    default = ServerBudget(SNOWFLAKE, "2025-09", BIG, None, False, LATER)
    add("operators.server_budget", lambda: operators.server_budget(own, server_names, BIG, deployment()))
    add(
        "operators.server_budget default",
        lambda: operators.server_budget(default, {}, None, deployment(None)),
    )
    add(
        "operators.server_budget no bot cap, server default",
        lambda: operators.server_budget(default, {}, BIG, deployment(None)),
    )
    add(
        "operators.budget_change",
        lambda: operators.budget_change(BudgetChange(default, own), server_names, BIG, deployment()),
    )
    add("operators.budget_change back", lambda: operators.budget_change(BudgetChange(own, default), {}, None))

    # Usage reports.
    for member in (False, True):
        for with_chart in (False, True):
            add(
                f"usage.usage_summary member={member} chart={with_chart}",
                lambda member=member, with_chart=with_chart: usage.usage_summary(
                    usage_report(member=member), with_chart=with_chart
                ),
            )
        add(
            f"usage.usage_chart member={member}",
            lambda member=member: chart_words(usage.usage_chart(usage_report(member=member))),
        )
    add("usage.usage_summary empty", lambda: usage.usage_summary(usage_report(empty=True), with_chart=False))
    add(
        "usage.usage_summary one day",
        lambda: usage.usage_summary(
            replace(usage_report(), days=DAYS[:1], budget=None, server_name=None), with_chart=True
        ),
    )
    for empty in (False, True):
        add(
            f"usage.owner_summary empty={empty}",
            lambda empty=empty: usage.owner_summary(owner_report(empty=empty), with_chart=not empty),
        )
    add(
        "usage.owner_summary unknown",
        lambda: usage.owner_summary(
            replace(owner_report(), account_credits=None, monthly_budget=None, server_monthly_budget=None),
            with_chart=True,
        ),
    )
    add("usage.owner_chart", lambda: chart_words(usage.owner_chart(owner_report())))
    for rows in (BIG, 0):
        add(
            f"usage.export_ready {rows}",
            lambda rows=rows: usage.export_ready(ExportFile("/tmp/x.csv", "ledger.csv", rows, 10**9), 365),
        )
    add(
        "the CSV header",
        lambda: [Text(heading, LIMITLESS, "CSV header") for heading in lazy("bot.ledger_csv").headings()],
    )
    add(
        "the CSV's kinds",
        lambda: [Text(kind, LIMITLESS, "CSV cell") for kind in lazy("bot.ledger_csv").kind_words().values()],
    )
    return entries


NOT_MESSAGES: dict[str, str] = {
    "buttons.stem_buttons_fit": "a yes/no, no words",
    "buttons.result_view": "shown through results.outcome",
    "common.timestamp": "Discord localises <t:…>",
    "common.moment": "Discord localises <t:…>",
    "common.not_before": "Discord localises <t:…>",
    "common.number": "a number, inside messages",
    "common.credit_amount": "a piece of messages, not one",
    "common.signed": "a number, inside messages",
    "common.credit_change": "a piece of messages, not one",
    "common.mention_prefix": "a mention",
    "common.price_list": "a piece of /credits and refusals",
    "common.api_price_list": "a piece of the settings",
    "common.budget_month_name": "a piece of budgets",
    "common.budget_figures": "a piece of budgets",
    "common.duration": "a piece of the settings",
    "common.listing": "shown through quota.settings_overview",
    "common.pack": "no words",
    "library.state_words": "a piece of library lines",
    "library.kept_link": "a piece of library lines",
    "library.library_line": "shown through library.library",
    "library.refund_words": "shown through library.cancelled",
    "mix.mix_url": "a link",
    "mix.placeholder": "shown through the mix picker menu",
    "mix.file_lines": "mix.file_line in every language, to find a posted mix again",
    "server_settings.per_period": "a piece of the settings and allowance answers",
    "server_settings.audit_line": "the frame of every audit line (shown through each audit_*)",
    "buttons.label": "a piece of the views (shown through results.outcome and the menus)",
    "operators.bot_budget_text": "a piece of the status and the budgets",
    "results.refused": "shown through cogs.split.split_refusal",
    "results.charge_text": "a piece of the result's footer",
    "results.links_expire_line": "a piece of the result",
    "results.kept_line": "shown through results.outcome",
    "results.markdown_url": "a link",
    "results.jump_url": "a link",
    "results.kept_url": "a link",
    "songs.duration": "a number",
    "songs.cover_url": "a link",
    "songs.song_title": "a piece of titles",
    "songs.song_markdown": "a piece of messages",
    "songs.add_song": "a thumbnail",
    "songs.track_label": "shown through songs.menu_options and songs.suggestion",
    "songs.menu_options": "shown through the track menu",
    "songs.menu_placeholder": "shown through the track menu",
    "songs.matching": "no words",
    "songs.local_links": "a yes/no",
    "text.plain": "escapes untrusted text",
    "text.as_written": "cuts untrusted text",
    "text.code": "escapes untrusted text",
    "text.format_size": "a piece of the skipped note",
    "usage.category_label": "a piece of reports",
    "usage.day_label": "a piece of reports",
    "usage.period_words": "a piece of reports",
    "usage.format_percent": "a number",
    "common.is_sandbox_title": "a yes/no",
    "common.sandbox_overhead": "a number",
    "common.sandbox_title": "a piece of titles (shown through common.mark_sandbox and the sandbox results)",
    "common.title_room": "a number",
    "failures.failure_text": "shown through results.failed",
    "library.job_number": "a piece of titles and lists",
}
"""Public functions of `bot/render/*` that are not a message of their own, and why."""
