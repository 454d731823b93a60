"""What members and moderators read about credits: within Discord's limits at worst-case sizes,
and saying what the figures are."""

from __future__ import annotations

import discord
import pytest

from bot.models import (
    SERVER_WIDE,
    Adjustment,
    AllowanceUpdate,
    Balance,
    BlockChange,
    Correction,
    CreditSummary,
    EconomyOverview,
    EconomySettings,
    HistoryPage,
    KeepStems,
    LedgerEntry,
    LedgerKind,
    Period,
    SettingsUpdate,
)
from bot.quota import (
    HISTORY_PAGE_SIZE,
    MAX_REASON_LENGTH,
)
from bot.render import common, quota
from tests.test_render import discord_limit_violations
from tests.unit_helpers import HOSTILE, embed_text, markdown_dangers

BIG = 999_999_999_999  # far beyond any real balance
SNOWFLAKE = 999_999_999_999_999_999
LONG_REASON = "x" * MAX_REASON_LENGTH
NOW = 1_741_168_800.0


def summary(**overrides) -> CreditSummary:
    values = dict(
        allowance_left=40,
        bonus=25,
        allowance=100,
        next_allowance=100,
        period=Period.WEEKLY,
        next_refill_at=NOW + 86_400,
        period_started_at=NOW - 86_400,
        spent_this_period=60,
        jobs_in_flight=1,
        jobs_per_member=2,
    )
    values.update(overrides)
    return CreditSummary(**values)  # type: ignore[arg-type]


def entry(n: int, kind: LedgerKind = LedgerKind.GRANT, **overrides) -> LedgerEntry:
    values = dict(
        id=n,
        guild_id=1,
        user_id=2,
        kind=kind,
        amount=-BIG,
        balance_after=BIG,
        job_id=SNOWFLAKE,
        actor_id=SNOWFLAKE,
        reason=LONG_REASON,
        created_at=NOW,
    )
    values.update(overrides)
    return LedgerEntry(**values)  # type: ignore[arg-type]


def fits(*embeds: discord.Embed) -> None:
    assert discord_limit_violations(common.Message(embeds=list(embeds))) == []


# -- /credits and /quota view ------------------------------------------------------------------------


def test_the_account_view_shows_every_figure():
    text = embed_text(quota.credits(summary()))

    assert "**65** credits" in text
    assert "100 credits per week\n40 left this period" in text
    assert "25 credits\nkept until spent" in text
    assert "Spent this period\n60 credits" in text
    assert f"<t:{int(NOW + 86_400)}:R>" in text and "back to 100 credits" in text
    assert "1 of 2 at once" in text


def test_the_account_view_says_when_a_new_allowance_starts():
    text = embed_text(quota.credits(summary(next_allowance=300)))

    assert "back to 300 credits (new allowance)" in text


def test_a_one_off_allowance_never_refills():
    text = embed_text(quota.credits(summary(period=Period.NEVER, next_refill_at=None)))

    assert "Never" in text and "Spent so far" in text and "this period" not in text


def test_the_account_view_of_someone_else_names_them():
    text = embed_text(quota.credits(summary(), member_id=SNOWFLAKE))

    assert f"<@{SNOWFLAKE}>" in text and "Your credits" not in text


def test_the_account_view_fits_discord_at_worst_case_sizes():
    worst = summary(
        allowance_left=BIG,
        bonus=BIG,
        allowance=BIG,
        next_allowance=BIG - 1,
        spent_this_period=BIG,
        jobs_in_flight=100,
        jobs_per_member=100,
        blocked=True,
        blocked_reason=LONG_REASON,
        next_split_at=NOW,
    )

    fits(quota.credits(worst, member_id=SNOWFLAKE))


# -- history -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(LedgerKind))
def test_a_full_history_page_of_the_longest_lines_fits_one_embed(kind):
    page = HistoryPage(tuple(entry(n, kind) for n in range(HISTORY_PAGE_SIZE)), 0, 99_999, BIG, BIG)

    fits(quota.history(page, SNOWFLAKE))


def test_each_history_line_has_time_change_balance_what_and_who():
    line = quota.history_line(
        entry(1, LedgerKind.RESERVE, amount=-50, balance_after=70, job_id=12, actor_id=None)
    )

    assert line == f"<t:{int(NOW)}:f> · **-50** → 70 · Job #12 started (credits held) · StemBot"


def test_a_moderators_line_names_them_and_the_reason():
    line = quota.history_line(entry(1, amount=25, balance_after=125, actor_id=42, reason="contest"))

    assert "**+25** → 125" in line and "bonus granted: contest" in line and line.endswith("<@42>")


def test_an_empty_history_says_so():
    text = embed_text(quota.history(HistoryPage((), 0, 1, 0, 0), 5))

    assert "No credit changes yet" in text and "Page 1 of 1" in text


# -- moderators' replies and audit lines --------------------------------------------------------------


def correction(amount: int | None = 50) -> Correction:
    return Correction(SNOWFLAKE, Adjustment(Balance(BIG, BIG), Balance(BIG, BIG), 100), LONG_REASON, amount)


@pytest.mark.parametrize("kind", [LedgerKind.GRANT, LedgerKind.SET, LedgerKind.RESET])
def test_correction_replies_and_audit_lines_fit(kind):
    fits(quota.correction(kind, correction()))
    line = quota.audit_correction(kind, SNOWFLAKE, correction())
    assert len(line) <= 2000 and "\n" not in line


def test_taking_credits_away_reads_as_such():
    done = Correction(7, Adjustment(Balance(100, 0), Balance(60, 0), 0), None, -40)

    assert quota.correction(LedgerKind.GRANT, done).title == "Credits taken away"
    assert "took 40 credits from <@7>: 100 → 60" in quota.audit_correction(LedgerKind.GRANT, 1, done)


def test_block_replies_and_audit_lines_fit():
    change = BlockChange(SNOWFLAKE, True, True, LONG_REASON)

    fits(quota.block_change(change))
    assert len(quota.audit_block(SNOWFLAKE, change)) <= 2000


@pytest.mark.parametrize("applied_now", [False, True])
@pytest.mark.parametrize("role_id", [SERVER_WIDE, SNOWFLAKE])
def test_allowance_replies_fit_and_say_when_they_apply(applied_now, role_id):
    update = AllowanceUpdate(role_id, BIG, BIG, Period.MONTHLY, Period.WEEKLY, applied_now, NOW)

    embed = quota.allowance_update(update)

    fits(embed)
    assert ("Applied now" in embed_text(embed)) is applied_now
    assert ("Takes effect at the next refill" in embed_text(embed)) is not applied_now


def settings_update(tiers: int) -> SettingsUpdate:
    settings = EconomySettings(
        guild_id=1,
        period=Period.WEEKLY,
        refill_minute=1439,
        timezone="America/Argentina/ComodRivadavia",
        jobs_per_member=100,
        cooldown_seconds=86_399,
        moderator_role_id=SNOWFLAKE,
        audit_channel_id=SNOWFLAKE,
        keep_stems=KeepStems.ALWAYS,
    )
    overview = EconomyOverview(settings, BIG, tuple((SNOWFLAKE - n, BIG) for n in range(tiers)), 100, NOW)
    return SettingsUpdate(EconomySettings(guild_id=1), overview)


@pytest.mark.parametrize("tiers", [0, 1, 30, 250])
def test_the_settings_overview_fits_even_with_every_role_a_tier(tiers):
    messages = quota.settings_overview(settings_update(tiers))

    assert all(discord_limit_violations(message) == [] for message in messages)
    tier_embeds = [e for m in messages for e in m.embeds][1:]
    assert sum(embed_text(e).count("<@&") for e in tier_embeds) == tiers  # none left out


def test_the_settings_audit_line_lists_every_change_on_one_line():
    line = quota.audit_settings(SNOWFLAKE, settings_update(0))

    assert "\n" not in line and len(line) <= 2000
    for change in ("refill time", "splits at once", "cooldown", "moderator role", "audit channel"):
        assert change in line
    assert "keep in Discord members choose → always" in line


@pytest.mark.parametrize(
    ("keep", "words", "needs_permissions"),
    [
        (KeepStems.BUTTON, "Members choose: each result has a Keep in Discord button", True),
        (KeepStems.ALWAYS, "Always: every successful split is kept in Discord", True),
        (KeepStems.OFF, "Off: no button; stems are links only, which expire after 14 days.", False),
    ],
)
def test_the_settings_overview_explains_keep_in_discord_and_what_it_needs(keep, words, needs_permissions):
    settings = EconomySettings(guild_id=1, keep_stems=keep)
    update = SettingsUpdate(settings, EconomyOverview(settings, 100, (), 2, NOW))

    [message] = quota.settings_overview(update)

    [field] = [f for f in message.embeds[0].fields if f.name == "Keep in Discord"]
    assert field.value is not None and field.value.startswith(words)
    needs = "StemBot needs Create Public Threads, Send Messages in Threads and Attach Files in the channel."
    assert (needs in field.value) is needs_permissions


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "none"),
        (1, "1 second"),
        (90, "1 minute 30 seconds"),
        (3600, "1 hour"),
        (86_399, "23 hours 59 minutes 59 seconds"),
    ],
)
def test_durations_read_naturally(seconds, words):
    assert common.duration(seconds) == words


# -- moderators' reasons are shown as words ------------------------------------------------------


def test_a_blocked_members_reason_is_shown_as_words_in_their_credits():
    blocked = summary(blocked=True, blocked_reason=HOSTILE)

    for embed in (quota.my_credits(blocked), quota.credits(blocked, member_id=SNOWFLAKE)):
        assert markdown_dangers(embed_text(embed)) == [] and "Verify" in embed_text(embed)


@pytest.mark.parametrize("kind", [LedgerKind.GRANT, LedgerKind.SET, LedgerKind.RESET])
def test_a_corrections_reason_is_shown_as_words_in_the_reply_and_the_audit_channel(kind):
    done = Correction(7, Adjustment(Balance(100, 0), Balance(150, 0), 0), HOSTILE, 50)

    assert markdown_dangers(embed_text(quota.correction(kind, done))) == []
    line = quota.audit_correction(kind, 1, done)
    assert markdown_dangers(line) == [] and "<@1>" in line and "<@7>" in line  # the bot's own mentions stay


def test_a_blocks_reason_is_shown_as_words_in_the_reply_and_the_audit_channel():
    change = BlockChange(7, True, True, HOSTILE)

    assert markdown_dangers(embed_text(quota.block_change(change))) == []
    assert markdown_dangers(quota.audit_block(1, change)) == []


def test_a_reason_in_the_history_is_shown_as_words():
    line = quota.history_line(entry(1, amount=25, balance_after=125, actor_id=43, reason=HOSTILE))

    assert markdown_dangers(line) == [] and line.endswith("<@43>")


@pytest.mark.parametrize("kind", list(LedgerKind))
def test_a_history_page_of_reasons_made_of_markdown_still_fits(kind):
    # Escaping doubles such a reason; the page must still fit one embed.
    reasons = ("*_`|[]<>" * 40)[:MAX_REASON_LENGTH]
    page = HistoryPage(
        tuple(entry(n, kind, reason=reasons) for n in range(HISTORY_PAGE_SIZE)), 0, 99_999, BIG, BIG
    )

    fits(quota.history(page, SNOWFLAKE))


def test_replies_with_reasons_made_of_markdown_still_fit():
    reasons = ("*_`|[]<>" * 40)[:MAX_REASON_LENGTH]
    done = Correction(SNOWFLAKE, Adjustment(Balance(BIG, BIG), Balance(BIG, BIG), 100), reasons, 50)

    fits(
        quota.correction(LedgerKind.GRANT, done),
        quota.block_change(BlockChange(SNOWFLAKE, True, True, reasons)),
    )
    fits(quota.credits(summary(blocked=True, blocked_reason=reasons), member_id=SNOWFLAKE))
    assert len(quota.audit_correction(LedgerKind.GRANT, SNOWFLAKE, done)) <= 2000
