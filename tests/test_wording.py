"""What members read, as an interface: numbers people can read, a next step in every refusal, one
colour per kind of message, one name and one timestamp order for the same thing, and every new
text within Discord's limits. (That public messages never show a balance: tests/test_cogs.py.)"""

from __future__ import annotations

import re

import discord
import pytest

from bot.errors import (
    BalanceWouldGoNegative,
    CooldownActive,
    InsufficientCredits,
    MemberBlocked,
    NeedsManageServer,
    NotAModerator,
    NotAServerManager,
    ShuttingDown,
    SplittingPaused,
    TooManyJobsInFlight,
)
from bot.models import (
    SERVER_WIDE,
    AllowanceUpdate,
    CallbackServerState,
    CreditSummary,
    Delivery,
    EconomyOverview,
    EconomySettings,
    Failure,
    JobState,
    Keep,
    KeepPlace,
    KeepState,
    KeepStems,
    LedgerEntry,
    LedgerKind,
    LibraryPage,
    Period,
    SettingsUpdate,
    Share,
    StatusReport,
)
from bot.product import Mode
from bot.render import common, library, operators, quota, results
from cogs.quota import KEEP_STEMS_CHOICES
from tests.test_render import discord_limit_violations
from tests.unit_helpers import (
    FINISHED_AT,
    TWELVE_STEMS,
    TWO_STEMS,
    embed_text,
    make_job,
    succeeded_job,
)

LATER = FINISHED_AT + 3 * 86_400
NEXT_STEP = re.compile(
    r"try again|try once more|trying again won't help|run (`)?/split(`)? again|ask a moderator|"
    r"ask a server manager|ask one of them|a moderator can grant|<t:\d+:R>|take away at most|"
    r"run `/quota history` yourself|pick the [a-z ]+ again",
    re.IGNORECASE,
)


# -- numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "plain", "credits", "change"),
    [
        (0, "0", "0 credits", "±0 credits"),
        (1, "1", "1 credit", "+1 credit"),
        (-1, "-1", "-1 credit", "-1 credit"),
        (1590, "1,590", "1,590 credits", "+1,590 credits"),
        (-1500, "-1,500", "-1,500 credits", "-1,500 credits"),
        (1_000_000, "1,000,000", "1,000,000 credits", "+1,000,000 credits"),
    ],
)
def test_numbers_have_thousands_separators_and_one_is_singular(amount, plain, credits, change):
    assert common.number(amount) == plain
    assert common.credit_amount(amount) == credits
    assert common.credit_change(amount) == change


def test_the_api_account_says_how_many_splits_its_credits_pay_for():
    text = embed_text(operators.status(status_report(account_credits=9_900)))

    assert "**9,900** API credits" in text
    for mode in Mode:
        assert f"{9_900 // mode.api_price:,} splits ({mode.short_label})" in text


def test_big_figures_are_shown_with_separators_everywhere_a_member_reads_them():
    texts = [
        embed_text(quota.my_credits(summary(allowance_left=1_590, bonus=12_000))),
        embed_text(quota.credits(summary(allowance_left=1_590, bonus=12_000))),
        quota.history_line(ledger_entry(amount=1_500, balance_after=1_590)),
        embed_text(results.refused(InsufficientCredits(5_000, 1_590, LATER))),
        embed_text(operators.status(status_report(account_credits=12_345))),
    ]
    for text in texts:
        assert not re.search(r"\d{4,}(?![\d:>])", re.sub(r"<t:\d+:\w>", "", text)), text


# -- a next step in every refusal ------------------------------------------------------------


def refusals() -> list[tuple[str, str]]:
    """Every refusal and failure a member or moderator can be shown, as (which, text)."""
    texts = [
        ("credits, refilling", embed_text(results.refused(InsufficientCredits(50, 40, LATER)))),
        ("credits, one-off", embed_text(results.refused(InsufficientCredits(50, 40, None)))),
        ("blocked", embed_text(results.refused(MemberBlocked(None, 40)))),
        ("blocked, with reason", embed_text(results.refused(MemberBlocked("spam", 40)))),
        ("cooldown", embed_text(results.refused(CooldownActive(LATER, 40)))),
        ("too many running", embed_text(results.refused(TooManyJobsInFlight(2, 40)))),
        ("paused", embed_text(results.unavailable(str(SplittingPaused())))),
        ("restarting", embed_text(results.unavailable(str(ShuttingDown())))),
        ("bad id", embed_text(common.bad_input("`audio_id` contains spaces; paste the id alone."))),
        ("not a moderator", embed_text(common.refusal(str(NotAModerator("grant credits", 5))))),
        ("needs Manage Server", embed_text(common.refusal(str(NeedsManageServer("set the audit channel"))))),
        ("below zero", embed_text(common.refusal(str(BalanceWouldGoNegative(7, 50, 20))))),
        ("status", embed_text(common.refusal(str(NotAServerManager())))),
        ("history pages", embed_text(quota.pager_refused())),
        ("unresolved member", embed_text(common.unresolved_option(discord.AppCommandOptionType.user))),
        ("command cooldown", common.command_cooldown("quota view", LATER)),
        ("unexpected", common.unexpected_error()),
    ]
    for failure in Failure:
        job = make_job(state=JobState.FAILED, failure=failure, failure_detail="could not separate")
        texts.append((f"failed: {failure}", embed_text(results.failed(job).embeds[0])))
    return texts


@pytest.mark.parametrize(("which", "text"), [pytest.param(w, t, id=w) for w, t in refusals()])
def test_every_refusal_says_what_to_do_next(which, text):
    assert NEXT_STEP.search(text), f"{which}: no next step in {text!r}"


def test_the_insufficient_credits_refusal_says_when_the_allowance_refills():
    embed = results.refused(InsufficientCredits(50, 40, LATER))

    text = embed_text(embed)
    assert f"<t:{int(LATER)}:R> (<t:{int(LATER)}:f>)" in text
    assert "50 credits" in text and "40 credits" in text and "Prices" in text


@pytest.mark.parametrize(
    "error",
    [MemberBlocked("spam", 40), CooldownActive(LATER, 40), TooManyJobsInFlight(2, 40)],
    ids=["blocked", "cooldown", "too-many"],
)
def test_refusals_other_than_credits_show_neither_prices_nor_the_balance(error):
    embed = results.refused(error)

    assert embed.fields == []
    assert "40" not in embed_text(embed)


def test_a_failure_from_the_api_account_tells_the_channel_nothing_internal():
    job = make_job(state=JobState.FAILED, failure=Failure.SERVICE_ACCOUNT)

    text = embed_text(results.failed(job).embeds[0])

    assert "operator has been alerted" in text
    assert "account" not in text.lower() and "key" not in text.lower()


# -- the result --------------------------------------------------------------------------------


def test_a_result_is_titled_with_the_actual_stem_count_and_names_each_link():
    job = succeeded_job(TWELVE_STEMS, 200)
    [message] = results.stems_ready(job)

    embed = message.embeds[0]
    assert embed.title == "Full split: 12 stems"
    assert "up to" not in embed.title
    # Each link named for its stem: a button labelled "Drums" (text links where buttons cannot be).
    labels = [item.label for item in message.view.children] if message.view else []
    assert "Drums" in labels and "download" not in labels
    text_links = results.stems_ready(succeeded_job(TWELVE_STEMS, 900))
    description = "\n".join(embed.description or "" for m in text_links for embed in m.embeds)
    assert "[Drums](https://" in description and "[download](" not in description


def test_two_stems_read_as_such():
    [message] = results.stems_ready(succeeded_job(TWO_STEMS, 120))

    assert message.embeds[0].title == "Vocals + instrumental: 2 stems"


def test_a_late_result_says_why_it_arrives_separately_and_fits_discord():
    job = succeeded_job(TWELVE_STEMS, 3500)
    messages = results.outcome(job, mention=True, late=True)

    assert messages[0].content.startswith(f"<@{job.user_id}> ")
    assert results.LATE_NOTE in messages[0].content
    assert all(results.LATE_NOTE not in (m.content or "") for m in messages[1:])
    for message in messages:
        assert discord_limit_violations(message) == []


@pytest.mark.parametrize("state", [JobState.SUCCEEDED, JobState.FAILED])
def test_the_pointer_on_the_split_message_links_the_reply_and_fits(state):
    job = make_job(state=state, job_id=2**53, failure=Failure.TIMED_OUT if state is JobState.FAILED else None)
    url = f"https://discord.com/channels/{2**63}/{2**63}/{2**63}"

    embed = results.pointer(job, url)

    assert f"]({url})" in embed.description and "reply" in embed.description
    assert discord_limit_violations(common.Message(embeds=[embed])) == []


# -- one colour per kind of message ------------------------------------------------------------


def test_each_kind_of_message_has_its_own_colour():
    assert results.queued(make_job(state=JobState.RESERVED)).colour == common.WORKING
    assert results.stems_ready(succeeded_job(TWO_STEMS, 120))[0].embeds[0].colour == common.DONE
    failed = make_job(state=JobState.FAILED, failure=Failure.TIMED_OUT)
    assert results.failed(failed).embeds[0].colour == common.FAILED
    assert results.refused(CooldownActive(LATER, 0)).colour == common.REFUSED_WAIT
    assert results.refused(TooManyJobsInFlight(2, 0)).colour == common.REFUSED_WAIT
    assert results.refused(InsufficientCredits(50, 0, LATER)).colour == common.REFUSED_WAIT
    assert results.refused(MemberBlocked(None, 0)).colour == common.FAILED
    assert quota.my_credits(summary()).colour == common.INFO
    assert len({common.WORKING, common.DONE, common.FAILED, common.REFUSED_WAIT, common.MODERATOR}) == 5


def test_moderator_actions_are_never_success_green():
    from bot.models import BlockChange

    block = quota.block_change(BlockChange(member_id=7, blocked=True, changed=True, reason="spam"))
    update = AllowanceUpdate(SERVER_WIDE, 10, 100, Period.DAILY, Period.NEVER, True, LATER)

    assert block.colour == common.MODERATOR != common.DONE
    assert quota.allowance_update(update).colour == common.MODERATOR


# -- one vocabulary ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [LedgerKind.RESERVE, LedgerKind.CHARGE, LedgerKind.REFUND])
def test_history_names_a_split_as_the_messages_do(kind):
    line = quota.history_line(ledger_entry(kind=kind, job_id=12))

    assert "Job #12" in line and "split #" not in line


def test_credits_held_for_a_split_are_held_everywhere_never_reserved():
    job = make_job(state=JobState.RESERVED)
    texts = [
        embed_text(results.queued(job)),
        embed_text(results.processing(job)),
        quota.history_line(ledger_entry(kind=LedgerKind.RESERVE, job_id=1)),
        embed_text(quota.credits(summary())),
    ]
    for text in texts:
        assert "reserved" not in text.lower(), text
    assert "held" in texts[0] and "held" in texts[2]


def test_moments_are_relative_first_then_the_date_everywhere():
    update = AllowanceUpdate(SERVER_WIDE, 10, 100, Period.DAILY, Period.NEVER, False, LATER)
    texts = [
        embed_text(quota.allowance_update(update)),
        embed_text(quota.my_credits(summary(next_refill_at=LATER))),
        embed_text(quota.credits(summary(next_refill_at=LATER))),
        embed_text(results.refused(CooldownActive(LATER, 0))),
        embed_text(results.stems_ready(succeeded_job(TWO_STEMS, 120, links_expire_at=LATER))[0].embeds[0]),
    ]
    pair = f"<t:{int(LATER)}:R> (<t:{int(LATER)}:f>)"
    for text in texts:
        assert pair in text, text
        assert ":F>" not in text


def test_status_says_what_each_job_state_means():
    text = embed_text(operators.status(status_report()))

    assert "following" not in text
    assert "sharing an identical split" in text and "waits for another member's job" in text


def test_keeping_stems_is_called_keep_in_discord_wherever_it_is_offered_or_shown():
    job = succeeded_job(TWO_STEMS, 120)
    keep = Keep(job.id, job.guild_id, KeepState.KEPT, None, 10 * 2**20, KeepPlace.THREAD, 5)
    settings = EconomySettings(guild_id=job.guild_id, keep_stems=KeepStems.BUTTON)
    [overview] = quota.settings_overview(SettingsUpdate(settings, EconomyOverview(settings, 1, (), 2, None)))
    texts = [
        KEEP_STEMS_CHOICES[0].name,
        embed_text(overview.embeds[0]),
        library.library_line(job, FINISHED_AT, keep),
        library.shown(job, FINISHED_AT, keep)[0].content or "",
    ]
    for text in texts:
        assert re.search(r"\b(Keep|Kept) in Discord\b", text), text


# -- /credits on a phone -----------------------------------------------------------------------


def test_credits_fits_a_phone_screen():
    embed = quota.my_credits(summary(next_refill_at=LATER))

    assert embed.fields == []
    assert len(embed_text(embed).splitlines()) <= 9


@pytest.mark.parametrize("blocked", [False, True])
def test_credits_at_worst_case_sizes_fits_discord(blocked):
    worst = summary(
        allowance_left=10**9,
        bonus=10**9,
        next_allowance=10**9,
        jobs_in_flight=100,
        jobs_per_member=100,
        blocked=blocked,
        blocked_reason="x" * 200,
        next_split_at=LATER,
        next_refill_at=LATER,
    )
    assert discord_limit_violations(common.Message(embeds=[quota.my_credits(worst)])) == []


def test_a_page_of_kept_results_at_worst_case_sizes_fits_discord_whole():
    biggest = 2**63 - 1
    jobs = tuple(
        make_job(
            job_id=2**53 - n,
            state=JobState.SUCCEEDED,
            source_task_id="t" * 100,
            audio_id="a" * 100,
            cost=0,
            share=Share.REUSED,
            delivery=Delivery.UNDELIVERABLE,
        )
        for n in range(10)
    )
    keeps = {
        job.id: Keep(job.id, biggest, KeepState.KEPT, biggest, biggest, KeepPlace.THREAD, biggest)
        for job in jobs
    }
    page = LibraryPage(jobs, 0, 1, 10, jobs[0].id, keeps)

    embed = library.library(page, biggest, own=False, now=FINISHED_AT)

    assert discord_limit_violations(common.Message(embeds=[embed])) == []
    assert embed.description is not None and embed.description.count("[Kept in Discord](") == 10
    assert embed.description.endswith(f"/{biggest}/{biggest})")  # nothing cut off


def test_refusals_and_status_at_worst_case_sizes_fit_discord():
    embeds = [
        results.refused(InsufficientCredits(10**9, 10**9, LATER)),
        results.refused(MemberBlocked("x" * 200, 10**9)),
        operators.status(status_report(account_credits=10**15)),
        quota.pager_refused(),
    ]
    for embed in embeds:
        assert discord_limit_violations(common.Message(embeds=[embed])) == []


# -- builders ----------------------------------------------------------------------------------


def summary(**overrides) -> CreditSummary:
    values = dict(
        allowance_left=40,
        bonus=25,
        allowance=100,
        next_allowance=100,
        period=Period.WEEKLY,
        next_refill_at=LATER,
        period_started_at=FINISHED_AT,
        spent_this_period=60,
        jobs_in_flight=1,
        jobs_per_member=2,
    )
    values.update(overrides)
    return CreditSummary(**values)  # type: ignore[arg-type]


def ledger_entry(**overrides) -> LedgerEntry:
    values = dict(
        id=1,
        guild_id=1,
        user_id=2,
        kind=LedgerKind.RESERVE,
        amount=-10,
        balance_after=90,
        job_id=1,
        actor_id=None,
        reason=None,
        created_at=FINISHED_AT,
    )
    values.update(overrides)
    return LedgerEntry(**values)  # type: ignore[arg-type]


def status_report(**overrides) -> StatusReport:
    values = dict(
        version="1.0",
        account_credits=1_234,
        jobs_by_state={JobState.FOLLOWING: 2, JobState.SUCCEEDED: 4_000},
        recent_errors=(),
        paused=None,
        paused_since=None,
        callbacks=CallbackServerState(None, None, 0, None),
        poll_interval=10.0,
    )
    values.update(overrides)
    return StatusReport(**values)  # type: ignore[arg-type]
