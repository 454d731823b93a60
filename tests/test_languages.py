"""Which language StemBot speaks where there is no interaction to ask, and for public messages:
the languages seen with commands, remembered on both backends, and the moderators' choice."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot import i18n
from bot.credits import CreditService
from bot.errors import InvalidOption
from bot.languages import Languages, clean_locale
from bot.quota import SERVER_LANGUAGE, Actor, QuotaService, SettingsChange
from bot.store import Store

GUILD, OTHER_GUILD = 10, 11
ANA, BEN = 2, 3
MOD = Actor(1, manage_guild=True)
SPANISH = i18n.known_language("es-ES")
JAPANESE = i18n.known_language("ja")
GERMAN = i18n.known_language("de")


@pytest.fixture
async def store(databases) -> AsyncIterator[Store]:
    opened = await Store.open(await databases("languages"))
    yield opened
    await opened.close()


async def test_a_members_language_seen_with_a_command_is_theirs_after_a_restart(store, databases):
    await Languages(store).saw(ANA, "ja", GUILD, "de")
    await store.close()
    again = await Store.open(await databases("languages"))
    try:
        languages = Languages(again)
        assert await languages.member(ANA) is JAPANESE
        assert await languages.public(GUILD) is GERMAN
        assert await languages.member(BEN) is i18n.ENGLISH  # never seen
        assert await languages.public(OTHER_GUILD) is i18n.ENGLISH
    finally:
        await again.close()


async def test_the_last_language_seen_wins(store):
    languages = Languages(store)
    await languages.saw(ANA, "ja", GUILD, "de")
    await languages.saw(ANA, "es-ES", GUILD, "fr")
    fresh = Languages(store)  # another process reads the table
    assert await fresh.member(ANA) is SPANISH
    assert (await fresh.public(GUILD)).code == "fr"


async def test_an_unchanged_language_is_not_written_again(store):
    languages = Languages(store)
    await languages.saw(ANA, "ja", GUILD, "de")
    assert not languages.changed(ANA, "ja", GUILD, "de")
    assert languages.changed(ANA, "fr", GUILD, "de")
    assert languages.changed(ANA, "ja", GUILD, "fr")


async def test_a_hostile_locale_is_not_stored_and_speaks_english(store):
    for user, hostile in enumerate(["x" * 5000, "ja'; DROP TABLE x", 42, None, {"a": 1}, "", "es_ES"]):
        languages = Languages(store)
        await languages.saw(user, hostile, GUILD + user, hostile)
        fresh = Languages(store)
        assert await fresh.member(user) is i18n.ENGLISH, hostile
        assert await fresh.public(GUILD + user) is i18n.ENGLISH, hostile
        assert clean_locale(hostile) is None


def test_every_english_and_unknown_locale_speaks_english_and_ours_speak_themselves():
    assert i18n.language_for("en-GB") is i18n.ENGLISH
    assert i18n.language_for("it") is i18n.ENGLISH  # not spoken yet
    for language in i18n.LANGUAGES:
        assert i18n.language_for(language.code) is language


async def test_the_moderators_choice_beats_the_servers_own_language_until_taken_back(store):
    quota = QuotaService(store, CreditService(store.accounts))
    languages = Languages(store)
    await languages.saw(ANA, "ja", GUILD, "de")

    await quota.update_settings(GUILD, MOD, SettingsChange(language="es-ES"))
    assert await languages.public(GUILD) is SPANISH
    assert await languages.public(GUILD, seen="fr") is SPANISH  # the interaction's server language too
    assert await languages.member(ANA) is JAPANESE  # a member's own language is theirs

    await quota.update_settings(GUILD, MOD, SettingsChange(language=SERVER_LANGUAGE))
    assert await languages.public(GUILD) is GERMAN
    assert await languages.public(GUILD, seen="fr") == i18n.known_language("fr")


async def test_a_language_the_bot_does_not_speak_is_refused_and_changes_nothing(store):
    quota = QuotaService(store, CreditService(store.accounts))
    with pytest.raises(InvalidOption):
        await quota.update_settings(GUILD, MOD, SettingsChange(language="it"))
    settings, _ = await store.economy.get(GUILD)
    assert settings.language is None


def test_another_members_job_is_refused_in_one_whole_sentence_per_action():
    from bot.errors import NotYourJob
    from tools.catalogs import template

    ids = {message.id for message in template()}
    for action, words in [("see", "can see it"), ("cancel", "can cancel it"), ("keep", "can keep it")]:
        text = str(NotYourJob(7, action))
        assert words in text and "Job #7" in text
        # The sentence is a message of the catalogs as a whole, not an English verb spliced in.
        assert any(isinstance(i, str) and words in i for i in ids)


def test_a_refusal_names_the_option_and_the_command_as_the_members_picker_shows_them(monkeypatch):
    from babel.messages.catalog import Catalog

    from bot.errors import InvalidOption
    from bot.quota import _check_amount
    from bot.render.common import command_cooldown

    catalog = Catalog(locale="de", domain=i18n.DOMAIN)
    catalog.add("amount", "menge", context="option name")
    catalog.add("quota", "kontingent", context="command name")
    catalog.add("grant", "gewähren", context="command name")
    german = i18n.known_language("de")
    compiled = i18n.compiled(catalog)
    monkeypatch.setattr(i18n, "translations", lambda language: compiled)

    with i18n.speaking(german):
        with pytest.raises(InvalidOption) as refused:
            _check_amount(-1, low=0)
        refusal = str(refused.value)
        cooldown = command_cooldown("quota grant", 1_700_000_000)

    assert refusal.startswith("`menge` ")
    assert "`/kontingent gewähren`" in cooldown
