"""The catalogs are complete and Discord accepts what they make of the commands (issue 24, "Quality").

Every check runs against a FRESH extraction from the code and the command tree
(`tools.catalogs.template()`), never against the committed template alone: a string added without
running `python -m tools.catalogs extract` is missing from every catalog, and a test says so.
"""

from __future__ import annotations

import ast
import asyncio
import unicodedata
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import discord
import pytest
from babel.messages.catalog import Catalog
from discord import app_commands
from discord.app_commands import TranslationContext
from discord.app_commands import TranslationContextLocation as Where

from bot import i18n
from bot.discord_side.client import EXTENSIONS, StemBot
from bot.discord_side.translator import CommandTranslator, translated_commands
from tools import catalogs

Key = tuple[str, str | None]
"""A catalog entry as gettext finds it: its (first) msgid and its context."""


def keys(catalog: Catalog) -> set[Key]:
    return {(m.id if isinstance(m.id, str) else m.id[0], m.context) for m in catalog if m.id}


def shown(key: Key) -> str:
    message, context = key
    return f"{context + ' | ' if context else ''}{message[:70]!r}"


@pytest.fixture(scope="module")
def fresh() -> Catalog:
    """What the code and the command tree ask to translate, as they stand."""
    return catalogs.template()


def committed(language: i18n.Language) -> Catalog:
    return catalogs.read(
        catalogs.LOCALES / i18n.catalog_path(language).removeprefix("locales/"), language.babel
    )


LANGUAGES = [pytest.param(language, id=language.code) for language in i18n.TRANSLATED]


# -- complete, and placeholders kept ---------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_catalog_is_complete_against_a_fresh_extraction(
    language: i18n.Language, fresh: Catalog
) -> None:
    """No missing, untranslated or fuzzy entry, and nothing the code no longer says."""
    catalog = committed(language)
    missing = sorted(keys(fresh) - keys(catalog))
    stale = sorted(keys(catalog) - keys(fresh))
    problems = [p for p in catalogs.problems(catalog) if "placeholders" not in p and "braces" not in p]
    found = (
        [f"missing (run `python -m tools.catalogs extract`): {shown(k)}" for k in missing]
        + [f"no longer in the code: {shown(k)}" for k in stale]
        + problems
    )
    assert not found, f"{language.code}: {len(found)} problem(s):\n" + "\n".join(found[:40])


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_translation_keeps_exactly_the_sources_placeholders(language: i18n.Language) -> None:
    """A placeholder lost or invented would show "{credits}" or raise KeyError in front of a
    member; the same check as `python -m tools.catalogs check`."""
    broken = [p for p in catalogs.problems(committed(language)) if "placeholders" in p or "braces" in p]

    assert not broken, f"{language.code}:\n" + "\n".join(broken)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_plural_has_the_forms_its_language_needs(language: i18n.Language) -> None:
    catalog = committed(language)
    wrong = [
        f"{shown((m.id[0], m.context))}: {len(m.string)} forms, {language.babel} has {catalog.num_plurals}"
        for m in catalog
        if m.id and isinstance(m.id, (tuple, list)) and any(m.string) and len(m.string) != catalog.num_plurals
    ]
    assert not wrong, "\n".join(wrong)


def test_the_placeholder_check_itself_catches_a_lost_and_an_invented_placeholder() -> None:
    catalog = Catalog(locale="de", domain=i18n.DOMAIN)
    catalog.add("{count} credits for {name}", "{count} Credits")
    catalog.add("Job #{job}", "Auftrag #{auftrag}")
    catalog.add("Balance", "")

    problems = catalogs.problems(catalog)

    assert len(problems) == 3, problems
    assert sum("placeholders" in p for p in problems) == 2


def test_the_committed_template_holds_what_a_fresh_extraction_finds(fresh: Catalog) -> None:
    """Nobody adds, changes or removes a string without running the extraction."""
    template = catalogs.read(catalogs.TEMPLATE)
    added = sorted(keys(fresh) - keys(template))
    gone = sorted(keys(template) - keys(fresh))
    plural_changed = sorted(
        shown((m.id[0], m.context))
        for m in fresh
        if isinstance(m.id, (tuple, list))
        and (old := template.get(m.id[0], context=m.context)) is not None
        and tuple(old.id if isinstance(old.id, (tuple, list)) else (old.id,)) != tuple(m.id)
    )
    assert not (added or gone or plural_changed), (
        "bot/locales/stembot.pot is out of date: run `python -m tools.catalogs extract`.\n"
        + "\n".join(
            [f"not in the template: {shown(k)}" for k in added]
            + [f"in the template, gone from the code: {shown(k)}" for k in gone]
            + [f"plural changed: {s}" for s in plural_changed]
        )
    )


def test_every_string_the_code_marks_is_extracted_f_strings_included(fresh: Catalog) -> None:
    """Babel's extractor does not look inside an f-string's `{…}` on Python 3.11: a message
    marked there (`f"{period}\n{_('Nothing to draw.')}"`) would never reach a catalog, and
    would stay English in every language. The syntax tree sees every marked literal."""
    snippet = "f\"{a}\\n{_('Inside.')} {ngettext('{count} x', '{count} xs', n)} {i18n.pgettext('c', 'P')}\""
    calls = [node for node in ast.walk(ast.parse(snippet)) if isinstance(node, ast.Call)]
    assert {catalogs._marked(call) for call in calls} == {
        ("Inside.", None),
        (("{count} x", "{count} xs"), None),
        ("P", "c"),
    }

    missing = sorted(
        f"{where}: {message!r}"
        for message, context, where in catalogs.marked_in_code()
        if ((message if isinstance(message, str) else message[0]), context) not in keys(fresh)
    )
    assert not missing, "\n".join(missing)


# -- what the catalogs make of the slash commands ------------------------------------------------

NAME_MAX = 32
DESCRIPTION_MAX = 100
CHOICE_NAME_MAX = 100


def _discord_name_char(ch: str) -> bool:
    """One character of Discord's name pattern `^[-_\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$`
    (the `regex` module is not installed: letters and numbers by Unicode category, Devanagari and
    Thai by their blocks, which hold those scripts' combining marks)."""
    return (
        ch in "-_"
        or unicodedata.category(ch)[0] in "LN"
        or "\u0900" <= ch <= "\u097f"
        or "\ua8e0" <= ch <= "\ua8ff"
        or "\u0e00" <= ch <= "\u0e7f"
    )


def name_problems(name: str) -> list[str]:
    """Why Discord would refuse `name` as a command, group or option name (empty: it takes it)."""
    problems = []
    if not 1 <= len(name) <= NAME_MAX:
        problems.append(f"{len(name)} characters (1-{NAME_MAX})")
    bad = sorted({ch for ch in name if not _discord_name_char(ch)})
    if bad:
        problems.append(f"characters outside Discord's name pattern: {bad}")
    if name != name.lower():
        problems.append("not lowercase")
    return problems


def localisation_problems(payload: list[dict[str, Any]]) -> list[str]:
    """Everything in the synced commands' localisations Discord would answer with 400: names
    (pattern, length, lowercase), siblings with one localised name, descriptions and choice names
    out of bounds. Where a locale has no localisation Discord shows the English, which counts for
    uniqueness too."""
    found: list[str] = []

    def check_names(items: list[dict[str, Any]], where: str) -> None:
        for locale in {code for item in items for code in item.get("name_localizations") or {}}:
            seen: dict[str, str] = {}
            for item in items:
                name = (item.get("name_localizations") or {}).get(locale, item["name"])
                if name in seen:
                    found.append(f"{locale}: {where}: {item['name']!r} and {seen[name]!r} are both {name!r}")
                seen[name] = item["name"]

    def check(item: dict[str, Any], where: str) -> None:
        path = f"{where} {item['name']}".strip()
        for locale, name in (item.get("name_localizations") or {}).items():
            found.extend(f"{locale}: name of {path}: {name!r}: {p}" for p in name_problems(name))
        for locale, text in (item.get("description_localizations") or {}).items():
            if not 1 <= len(text) <= DESCRIPTION_MAX:
                found.append(f"{locale}: description of {path}: {len(text)} characters")
        for choice in item.get("choices") or []:
            for locale, text in (choice.get("name_localizations") or {}).items():
                if not 1 <= len(text) <= CHOICE_NAME_MAX:
                    found.append(f"{locale}: choice {choice['name']!r} of {path}: {len(text)} characters")
        options = item.get("options") or []
        check_names(options, f"options of /{path}")
        for option in options:
            check(option, path)

    check_names(payload, "top-level commands")
    for command in payload:
        check(command, "")
    return found


async def synced_payload() -> list[dict[str, Any]]:
    """The commands exactly as StemBot syncs them, with the catalogs' localisations."""
    bot = StemBot(lambda client: SimpleNamespace())  # type: ignore[arg-type,return-value]
    await bot.tree.set_translator(CommandTranslator())
    for extension in EXTENSIONS:
        await bot.load_extension(extension)
    return await translated_commands(bot.tree, None)


def walk(payload: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in payload:
        yield item
        yield from walk(item.get("options") or [])


def test_every_localised_command_option_and_choice_is_one_discord_accepts() -> None:
    problems = localisation_problems(asyncio.run(synced_payload()))

    assert not problems, "\n".join(problems)


NAMED_IN_THEMSELVES = {language.name for language in i18n.LANGUAGES}
"""The choices of `/quota settings language`: each language is named in itself, the same for
every reader."""


def test_every_description_and_choice_is_localised_for_the_six_languages() -> None:
    """Discord shows the English wherever a localisation is missing. Descriptions and choices are
    sentences: every language words them its own way. (A NAME may stay as it is in some language,
    `task_id` say: a translation equal to the English is synced as none, so names are left out.)"""
    locales = {language.code for language in i18n.TRANSLATED}
    missing = []
    for item in walk(asyncio.run(synced_payload())):
        if item.get("description"):
            lacking = locales - set(item.get("description_localizations") or {})
            if lacking:
                missing.append(f"description of {item['name']}: lacks {sorted(lacking)}")
        for choice in item.get("choices") or []:
            if choice["name"] in NAMED_IN_THEMSELVES:
                continue
            lacking = locales - set(choice.get("name_localizations") or {})
            if lacking:
                missing.append(f"choice {choice['name']!r} of {item['name']}: lacks {sorted(lacking)}")
    assert not missing, f"{len(missing)} missing:\n" + "\n".join(missing[:40])


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("split", False),
        ("aufteilen", False),
        ("分割", False),
        ("ステム一覧", False),
        ("dividir-pista_2", False),
        ("विभाजन", False),
        ("แยก", False),
        ("Split", True),
        ("two words", True),
        ("a" * 33, True),
        ("", True),
        ("ステム・一覧", True),
        ("crédits!", True),
    ],
)
def test_the_name_check_itself_follows_discords_pattern(name: str, bad: bool) -> None:
    assert bool(name_problems(name)) is bad


def test_the_localisation_check_itself_catches_what_discord_refuses() -> None:
    payload = [
        {
            "name": "quota",
            "description": "Credits",
            "name_localizations": {"de": "Kontingent"},
            "description_localizations": {"de": "x" * 101},
            "options": [
                {"name": "grant", "description": "g", "name_localizations": {"de": "geben"}},
                {"name": "give", "description": "g", "name_localizations": {"de": "geben"}},
                {
                    "name": "period",
                    "description": "p",
                    "choices": [{"name": "Daily", "value": "d", "name_localizations": {"de": "t" * 101}}],
                },
            ],
        }
    ]

    problems = localisation_problems(payload)

    assert len(problems) == 4, problems  # uppercase name, long description, twins, long choice


def test_the_translator_leaves_english_and_the_languages_we_dont_speak_to_discord() -> None:
    """None: Discord shows the English, which is the source."""

    async def ask(locale: discord.Locale) -> str | None:
        context = TranslationContext(location=Where.command_name, data=None)
        return await CommandTranslator().translate(app_commands.locale_str("split"), locale, context)

    for locale in (discord.Locale.american_english, discord.Locale.british_english, discord.Locale.korean):
        assert asyncio.run(ask(locale)) is None, locale


def test_the_language_of_a_locale_we_dont_speak_is_english_and_translates_nothing() -> None:
    assert i18n.language_for(discord.Locale.korean) is i18n.ENGLISH
    assert i18n.language_for("xx-YY") is i18n.ENGLISH and i18n.language_for(None) is i18n.ENGLISH
    assert i18n.translate(i18n.ENGLISH, "command name", "split") is None
