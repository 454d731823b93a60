"""What a second reader of the translations found: sentences a translator could not make right
because the code handed them a fragment, a bare number, an English value or a misleading note
(issue 24). Each refusal and line here is one whole sentence with its values in the member's
words; a test catalog stands in for the translators' so each test sees what was translated."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
from babel.messages.catalog import Catalog

from bot import economy, i18n
from bot.credits import CreditService
from bot.errors import (
    OWNERS_BUDGETS,
    OWNERS_USAGE,
    BalanceWouldGoNegative,
    InsufficientCredits,
    InvalidOption,
    NotTheBotOwner,
)
from bot.models import EconomySettings, LedgerEntry, LedgerKind, PauseReason, Period
from bot.quota import Actor, QuotaService, _check_amount
from bot.render import operators, server_settings
from bot.render import quota as quota_render
from bot.render.common import duration
from bot.render.text import format_size
from bot.store import Store
from cogs.quota import PERIOD_CHOICES
from tests import messages
from tests.test_i18n_reports import status_report
from tests.unit_helpers import FakeClock, embed_text
from tools import catalogs

TEST = i18n.Language("xx-TEST", "es_ES", "Test", "Test")


@pytest.fixture
def translated(monkeypatch: pytest.MonkeyPatch) -> Iterator[Catalog]:
    """A catalog for `TEST` alone, filled by each test."""
    catalog = Catalog(locale=TEST.babel, domain=i18n.DOMAIN)
    real = i18n.translations
    monkeypatch.setattr(
        i18n, "translations", lambda language: i18n.compiled(catalog) if language == TEST else real(language)
    )
    yield catalog


def test_each_refusal_of_the_bot_owner_is_one_whole_sentence(translated: Catalog) -> None:
    translated.add(OWNERS_BUDGETS, "Solo el propietario del bot puede ver o fijar los presupuestos.")
    translated.add(OWNERS_USAGE, "Solo el propietario del bot puede ver el uso de todos los servidores.")

    with i18n.speaking(TEST):
        budgets, usage = str(NotTheBotOwner()), str(NotTheBotOwner(OWNERS_USAGE))

    assert budgets == "Solo el propietario del bot puede ver o fijar los presupuestos."
    assert usage == "Solo el propietario del bot puede ver el uso de todos los servidores."
    template = catalogs.template()
    assert not [m.id for m in template if isinstance(m.id, str) and "can {what}" in m.id]


def test_credits_in_a_refusal_are_amounts_with_their_unit() -> None:
    short = str(InsufficientCredits(10, 1, None))
    negative = str(BalanceWouldGoNegative(7, 200, 150))

    assert short.startswith("This costs 10 credits and you have 1 credit. ")
    assert "<@7> has 150 credits, so 200 credits can't be taken away" in negative
    assert "take away at most 150 credits" in negative


def test_credits_in_a_refusal_use_the_languages_plural_forms(translated: Catalog) -> None:
    # Spanish has three forms: one, a million ("1.000.000 de créditos"), and the rest.
    translated.add(
        ("{count} credit", "{count} credits"), ("{count} crédito", "{count} de créditos", "{count} créditos")
    )
    translated.add(
        "This costs {cost} and you have {balance}. {then}", "Esto cuesta {cost} y tienes {balance}. {then}"
    )

    with i18n.speaking(TEST):
        text = str(InsufficientCredits(1500, 1, None))

    assert text.startswith("Esto cuesta 1.500 créditos y tienes 1 crédito. ")


@pytest.fixture
async def quota(tmp_path) -> Iterator[QuotaService]:
    clock = FakeClock()
    store = await Store.open(tmp_path / "review.db", clock=clock)
    yield QuotaService(store, CreditService(store.accounts), clock=clock)
    await store.close()


async def a_role_period_refusal(quota: QuotaService) -> str:
    moderator = Actor(1, manage_guild=True)
    await quota.set_allowance(10, moderator, 100, period=Period.DAILY)
    with pytest.raises(InvalidOption) as refused:
        await quota.set_allowance(10, moderator, 300, period=Period.WEEKLY, role_id=77)
    return str(refused.value)


async def test_a_suggested_period_is_named_as_the_members_picker_shows_it(quota) -> None:
    text = await a_role_period_refusal(quota)

    assert "(now every day)" in text
    assert "`/quota allowance amount:100 period:Weekly (refills on Mondays)`" in text
    assert {choice.name for choice in PERIOD_CHOICES} == set(economy.PERIOD_NAMES.values())


async def test_a_suggested_period_uses_the_same_translation_as_the_picker(quota, translated: Catalog) -> None:
    translated.add("Weekly (refills on Mondays)", "Semanal (se recarga los lunes)")
    translated.add("every day", "cada día")

    with i18n.speaking(TEST):
        text = await a_role_period_refusal(quota)

    assert "(now cada día)" in text and "period:Semanal (se recarga los lunes)`" in text
    assert not re.search(r"\b(daily|weekly)\b", text)
    assert i18n.translate(TEST, None, "Weekly (refills on Mondays)") == "Semanal (se recarga los lunes)"


def test_a_pause_says_when_it_started_without_since_before_a_relative_time() -> None:
    text = embed_text(operators.status(status_report(paused=PauseReason.OUT_OF_CREDITS)))

    assert "**Splitting is paused** (it stopped <t:1700000000:R>)" in text
    assert not re.search(r"since <t:\d+:R>", text)


@pytest.mark.parametrize("option", ["`days:{fitting}`", "`apply_now: True`"])
def test_notes_on_an_option_typed_in_a_sentence_ask_for_the_catalogs_own_option_name(option: str) -> None:
    entries = [m for m in catalogs.template() if isinstance(m.id, (str, tuple)) and option in str(m.id)]

    assert entries
    for entry in entries:
        notes = " ".join(entry.auto_comments)
        assert "keep" not in notes.split(option)[-1].lower() or "as it is" not in notes
        assert "this catalog's own name" in notes


# -- what the second reading found ------------------------------------------------------------------


def test_a_file_size_is_written_the_languages_way_with_its_unit(translated: Catalog) -> None:
    translated.add("{size} MB", "{size} Mo")
    size = int(953_674.3 * 1024 * 1024)

    with i18n.speaking(TEST):
        assert format_size(size) == "953.674,3 Mo"
    assert format_size(size) == "953,674.3 MB" and format_size(25 * 1024 * 1024) == "25 MB"


def test_a_duration_and_a_list_of_changes_are_joined_the_languages_way(translated: Catalog) -> None:
    translated.add(("{count} hour", "{count} hours"), ("{count}時間",) * 3)
    translated.add(("{count} minute", "{count} minutes"), ("{count}分",) * 3)
    translated.add(("{count} second", "{count} seconds"), ("{count}秒",) * 3)
    translated.add("{before} {after}", "{before}{after}", context="parts of a duration")
    translated.add("{before}; {after}", "{before}、{after}", context="list of changes")
    before = EconomySettings(1, cooldown_seconds=0, jobs_per_member=None)
    after = replace(before, cooldown_seconds=3661, jobs_per_member=3)

    with i18n.speaking(TEST):
        assert duration(3661) == "1時間1分1秒"
        changes = server_settings._settings_diff(before, after)

    assert changes.count("、") == 1 and ";" not in changes
    assert duration(3661) == "1 hour 1 minute 1 second"


def test_a_split_named_inside_a_history_sentence_has_its_own_words(translated: Catalog) -> None:
    translated.add("Job #{job} ({song})", "trabajo #{job} ({song})", context="inside a sentence")
    translated.add("Job #{job} ({song})", "Trabajo #{job} ({song})")
    translated.add("mix of {job}", "mezcla del {job}")
    translated.add("{job} done", "{job} terminado")
    mix = LedgerEntry(
        1, 1, 2, LedgerKind.MIX_CHARGE, -5, 5, 7, 3, None, 1_700_000_000.0, job_song="Midnight Drive"
    )

    with i18n.speaking(TEST):
        mixed = quota_render.history_line(mix)
        done = quota_render.history_line(replace(mix, kind=LedgerKind.CHARGE))

    assert "mezcla del trabajo #7 (Midnight Drive)" in mixed
    assert "Trabajo #7 (Midnight Drive) terminado" in done


def test_an_option_refusal_is_one_whole_sentence_whose_option_can_move(translated: Catalog) -> None:
    translated.add("amount", "menge", context="option name")
    translated.add(
        "`{option}` must be a whole number from {low} to {high}. Nothing was changed.",
        "Für `{option}` geht nur eine ganze Zahl von {low} bis {high}. Es wurde nichts geändert.",
    )

    with i18n.speaking(TEST), pytest.raises(InvalidOption) as refused:
        _check_amount(-1, low=0)

    assert (
        str(refused.value)
        == "Für `menge` geht nur eine ganze Zahl von 0 bis 1.000.000. Es wurde nichts geändert."
    )
    assert refused.value.option == "amount"


def test_a_role_allowance_line_is_punctuated_the_languages_way(translated: Catalog) -> None:
    translated.add("{role}: {credits}", "{role}\u00a0: {credits}")
    translated.add(("{count} credit", "{count} credits"), ("{count} crédit",) + ("{count} crédits",) * 2)
    update = messages.settings_update(tiers=1)
    update = replace(update, after=replace(update.after, role_allowances=((77, 100),)))

    with i18n.speaking(TEST):
        shown = server_settings.settings_overview(update)

    text = "\n".join(embed_text(embed) for message in shown for embed in message.embeds)
    assert "<@&77>\u00a0: 100 crédits" in text
