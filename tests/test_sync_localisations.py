"""The sync carries the commands' translations, and a changed translation is a changed command:
"sync only on change" hashes the translated payload (issue 24)."""

from __future__ import annotations

import gettext
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock

import pytest
from babel.messages.catalog import Catalog

from bot import i18n
from bot.discord_side.client import EXTENSIONS, StemBot
from bot.discord_side.translator import NAME_CONTEXTS, CommandTranslator, translated_commands
from bot.store import Store
from tools import catalogs


@pytest.fixture
async def store(tmp_path):
    store = await Store.open(tmp_path / "t.db")
    yield store
    await store.close()


async def bot_with_fake_sync(store: Store) -> StemBot:
    """StemBot as `setup_hook` makes it (the translator, every cog), Discord's side recorded."""
    bot = StemBot(lambda client: SimpleNamespace(store=store))  # type: ignore[arg-type,return-value]
    await bot.tree.set_translator(CommandTranslator())
    for extension in EXTENSIONS:
        await bot.load_extension(extension)
    bot.tree.sync = AsyncMock(return_value=[])  # type: ignore[method-assign]
    return bot


@pytest.fixture(scope="module")
def fresh() -> Catalog:
    return catalogs.template()


def marked_catalog(template: Catalog, language: i18n.Language, mark: str) -> Catalog:
    """Every entry of `template` translated as `mark` + the English: names stay one lowercase
    word in Discord's pattern (the mark is letters), sentences stay within 100 characters."""
    catalog = Catalog(locale=language.babel, domain=i18n.DOMAIN)
    for message in template:
        if not message.id:
            continue
        if isinstance(message.id, (tuple, list)):
            string: Any = tuple(f"{mark}{m}" for m in message.id)
        elif message.context in set(NAME_CONTEXTS.values()):
            string = f"{mark}{message.id}"[:32]
        else:
            string = f"{mark} {message.id}"[:100]
        catalog.add(message.id, string, context=message.context)
    return catalog


def install(monkeypatch: pytest.MonkeyPatch, catalogs_by_language: dict[i18n.Language, Catalog]) -> None:
    compiled = {language: i18n.compiled(catalog) for language, catalog in catalogs_by_language.items()}
    real: Callable[[i18n.Language], gettext.NullTranslations] = i18n.translations
    monkeypatch.setattr(i18n, "translations", lambda language: compiled.get(language) or real(language))


def every_language(template: Catalog, mark: str = "x") -> dict[i18n.Language, Catalog]:
    return {language: marked_catalog(template, language, mark) for language in i18n.TRANSLATED}


def walk(payload: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in payload:
        yield item
        yield from walk(item.get("options") or [])


async def test_a_changed_translation_is_synced_and_an_unchanged_one_is_not(
    store: Store, fresh: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch, every_language(fresh))
    assert await (await bot_with_fake_sync(store)).sync_commands() is True

    unchanged = await bot_with_fake_sync(store)
    assert await unchanged.sync_commands() is False
    unchanged.tree.sync.assert_not_awaited()

    # A translator corrects one word in one language: that is a change Discord must hear of.
    corrected = every_language(fresh)
    german = next(language for language in i18n.TRANSLATED if language.code == "de")
    corrected[german] = marked_catalog(fresh, german, "y")
    install(monkeypatch, corrected)
    changed = await bot_with_fake_sync(store)
    assert await changed.sync_commands() is True
    changed.tree.sync.assert_awaited_once()

    assert await (await bot_with_fake_sync(store)).sync_commands() is False


async def test_the_synced_commands_carry_localisations_for_the_six_locales(
    store: Store, fresh: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch, every_language(fresh))
    bot = await bot_with_fake_sync(store)

    payload = await translated_commands(bot.tree, None)

    locales = {language.code for language in i18n.TRANSLATED}
    for item in walk(payload):
        assert set(item.get("name_localizations") or {}) == locales, item["name"]
        assert set(item.get("description_localizations") or {}) == locales, item["name"]
        assert item["name_localizations"]["ja"] == f"x{item['name']}"[:32]
        for choice in item.get("choices") or []:
            assert set(choice.get("name_localizations") or {}) == locales, choice["name"]


async def test_the_translations_in_the_sync_are_the_ones_hashed(
    store: Store, fresh: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What goes to Discord is what was hashed: the payload discord.py builds for the sync holds
    the same localisations."""
    install(monkeypatch, every_language(fresh))
    bot = await bot_with_fake_sync(store)
    ours = await translated_commands(bot.tree, None)

    theirs = [await c.get_translated_payload(bot.tree, bot.tree.translator) for c in bot.tree.get_commands()]

    assert ours == theirs and any(item.get("name_localizations") for item in walk(ours))


async def test_the_real_catalogs_give_every_command_its_six_localisations(store: Store) -> None:
    """With the committed catalogs (not a test's): each command's description goes to Discord in
    every language. Fails until the catalogs are translated."""
    bot = await bot_with_fake_sync(store)

    payload = await translated_commands(bot.tree, None)

    locales = {language.code for language in i18n.TRANSLATED}
    lacking = {c["name"]: sorted(locales - set(c.get("description_localizations") or {})) for c in payload}
    assert not any(lacking.values()), lacking
