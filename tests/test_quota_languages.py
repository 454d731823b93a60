"""Credits and moderation in other languages: each answer in the language of whoever reads it.
The moderator's private answers speak their own language; the audit channel, which is public,
speaks the server's (the moderators' `/quota settings language`). Test catalogs stand in for the
translators' (whose catalogs are filled later), so each test sees exactly which words were
translated and into which language."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from babel.messages.catalog import Catalog
from discord import app_commands

from bot import i18n
from bot.errors import InsufficientCredits, InvalidOption, NotAModerator
from bot.models import CreditSummary, HistoryPage, Period
from bot.quota import SERVER_LANGUAGE, clean_reason
from bot.render import quota as render
from cogs.quota import LANGUAGE_CHOICES
from tests import test_quota_cogs
from tests.test_quota_cogs import MOD_ID, member, reply, reply_text
from tests.unit_helpers import GUILD_ID, USER_ID, embed_text

# The cog tests' world: the real services on SQLite, the audit channel a double.
clock, world = test_quota_cogs.clock, test_quota_cogs.world

GERMAN = i18n.known_language("de")
FRENCH = i18n.known_language("fr")
SPANISH = i18n.known_language("es-ES")
assert GERMAN is not None and FRENCH is not None and SPANISH is not None

CATALOGS: dict[str, dict[str | tuple[str, str], str | tuple[str, str]]] = {
    "de": {
        "{moderator} granted {member} {change}: {before} → {after}": (
            "{moderator} hat {member} {change} gegeben: {before} → {after}"
        ),
        "Reason: {reason}": "Grund: {reason}",
        "{moderator} changed the credit settings: {changes}": (
            "{moderator} hat die Credit-Einstellungen geändert: {changes}"
        ),
        "{setting} {old} → {new}": "{setting}: {old} → {new}",
        "language": "Sprache",
        "the server's own": "die eigene des Servers",
        "Credits granted": "Credits vergeben",
        ("**{count}** credit", "**{count}** credits"): ("**{count}** Credit", "**{count}** Credits"),
    },
    "fr": {
        "Credits granted": "Crédits accordés",
        "Reason: {reason}": "Raison : {reason}",
        "Credit settings for this server": "Réglages des crédits de ce serveur",
        "Language": "Langue",
        (
            "{language}: what results, threads and the audit channel say in public here (each member's "
            "own answers speak their Discord language)"
        ): "{language} : la langue des messages publics",
        "the server's own": "celle du serveur",
    },
    "es_ES": {
        "This costs {cost} and you have {balance}. {then}": "Esto cuesta {cost} y tienes {balance}. {then}",
        ("{count} credit", "{count} credits"): ("{count} crédito", "{count} de créditos", "{count} créditos"),
        "Your allowance refills {when}.": "Tu asignación se recarga {when}.",
        "`{option}` is too long ({length} characters; at most {most}). Nothing was changed.": (
            "`{option}` es demasiado largo ({length} caracteres; como máximo {most}). No se cambió nada."
        ),
        "grant credits": "dar créditos",
        (
            "Only moderators can {action}: that needs the Manage Server permission. Nothing was "
            "changed; ask a moderator if it needs doing."
        ): "Solo los moderadores pueden {action}: hace falta el permiso Gestionar servidor.",
    },
}


def catalog(babel_locale: str) -> i18n.gettext.NullTranslations:
    built = Catalog(locale=babel_locale, domain=i18n.DOMAIN)
    for message, translation in CATALOGS[babel_locale].items():
        if isinstance(translation, tuple):  # every plural form the language has: the last repeated
            translation = (*translation, *[translation[-1]] * (built.num_plurals - len(translation)))
        built.add(message, translation)
    return i18n.compiled(built)


@pytest.fixture(autouse=True)
def test_catalogs(monkeypatch) -> Iterator[None]:
    compiled = {language.babel: catalog(language.babel) for language in (GERMAN, FRENCH, SPANISH)}
    original = i18n.translations
    monkeypatch.setattr(
        i18n, "translations", lambda language: compiled.get(language.babel) or original(language)
    )
    yield


def language_choice(value: str) -> app_commands.Choice[str]:
    return next(c for c in LANGUAGE_CHOICES if c.value == value)


# -- the language option, through the cog ----------------------------------------------------------


async def test_moderators_choose_the_public_language_and_the_overview_and_audit_line_show_it(world):
    await world.enable_audit()

    with i18n.speaking(FRENCH):
        interaction = await world.run("settings", world.mod_interaction(), language=language_choice("de"))

    settings, _rules = await world.store.economy.get(GUILD_ID)
    assert settings.language == "de"
    shown = reply_text(interaction)
    assert (
        "Réglages des crédits de ce serveur" in shown and "Deutsch : la langue des messages publics" in shown
    )
    # The audit line is public: the server's language, which is now German.
    (line,) = [call.args[0] for call in world.audit_channel.send.await_args_list]
    assert (
        line
        == f"🧾 <@{MOD_ID}> hat die Credit-Einstellungen geändert: Sprache: die eigene des Servers → Deutsch"
    )


async def test_the_servers_own_language_puts_the_choice_back(world):
    await world.run("settings", world.mod_interaction(), language=language_choice("ja"))

    with i18n.speaking(FRENCH):
        interaction = await world.run(
            "settings", world.mod_interaction(), language=language_choice(SERVER_LANGUAGE)
        )

    settings, _rules = await world.store.economy.get(GUILD_ID)
    assert settings.language is None
    shown = reply_text(interaction)
    assert "celle du serveur : la langue des messages publics" in shown
    assert "日本語 → celle du serveur" in shown


async def test_an_audit_line_speaks_the_servers_language_while_the_moderator_reads_their_own(world):
    await world.enable_audit()
    await world.run("settings", world.mod_interaction(), language=language_choice("de"))
    await world.run("set_balance", world.mod_interaction(), member(), 1000)
    world.audit_channel.send.reset_mock()

    with i18n.speaking(FRENCH):
        interaction = await world.run("grant", world.mod_interaction(), member(), 50, reason="concours")

    (line,) = [call.args[0] for call in world.audit_channel.send.await_args_list]
    assert line == f"🧾 <@{MOD_ID}> hat <@{USER_ID}> +50 credits gegeben: 1.000 → 1.050 · Grund: concours"
    answer = embed_text(reply(interaction))
    assert "Crédits accordés" in answer and "Raison : concours" in answer
    assert "gegeben" not in answer and "Grund" not in answer


# -- refusals and answers, rendered ----------------------------------------------------------------


def test_a_refusal_is_in_the_members_language_with_its_plural_and_numbers():
    with i18n.speaking(SPANISH):
        one = str(InsufficientCredits(1, 0, refills_at=1_741_176_000.0))
        many = str(InsufficientCredits(1500, 1200, refills_at=1_741_176_000.0))

    assert one == "Esto cuesta 1 crédito y tienes 0 créditos. Tu asignación se recarga <t:1741176000:R>."
    assert many == (
        "Esto cuesta 1.500 créditos y tienes 1.200 créditos. Tu asignación se recarga <t:1741176000:R>."
    )


def test_an_option_refusal_and_a_moderators_action_are_translated_as_whole_sentences():
    with i18n.speaking(SPANISH), pytest.raises(InvalidOption) as caught:
        clean_reason("x" * 1234)
    too_long = str(caught.value)
    with i18n.speaking(SPANISH):
        refused = str(NotAModerator(i18n.N_("grant credits")))

    assert too_long == "`reason` es demasiado largo (1.234 caracteres; como máximo 200). No se cambió nada."
    assert refused == "Solo los moderadores pueden dar créditos: hace falta el permiso Gestionar servidor."
    assert NotAModerator(i18n.N_("grant credits")).action == "grant credits"  # logged in English


def test_numbers_in_a_members_history_are_written_the_languages_way():
    page = HistoryPage(entries=(), page=0, pages=1, total=12_345, newest_id=0)

    with i18n.speaking(GERMAN):
        footer = render.history(page, 42).footer.text or ""

    assert footer.startswith("Page 1 of 1 · 12.345 changes")
    assert re.search(r"\b12,345\b", footer) is None


def summary(balance: int) -> CreditSummary:
    return CreditSummary(
        allowance_left=balance,
        bonus=0,
        allowance=100,
        next_allowance=100,
        period=Period.NEVER,
        next_refill_at=None,
        period_started_at=0.0,
        spent_this_period=0,
        jobs_in_flight=0,
        jobs_per_member=2,
    )


def test_a_balance_uses_the_languages_plural_forms_and_numbers():
    with i18n.speaking(GERMAN):
        one = render.my_credits(summary(1)).description or ""
        many = render.my_credits(summary(12_000)).description or ""

    assert one.startswith("**1** Credit ·") and many.startswith("**12.000** Credits ·")
