"""Every message, in every language, within Discord's limits; and a pseudo-locale that finds any
member-facing words that bypassed the catalog (issue 24, "Quality").

The messages are `tests.messages.registry()`, rendered at worst-case values. The pseudo-locale is
built from a FRESH extraction (`tools.catalogs.template()`): every translation is the English
with each letter swapped for an accented one ("Ĵöƀ #{job}"), wrapped in ⟦…⟧ and 40% longer, its
placeholders, Markdown, code spans and links kept. Rendered in it, a message may show plain
ASCII words only where they are values the test passed in (titles, names, ids, the API's words),
links, mentions, timestamps or code: any other English word came from a string the catalog never
saw (an f-string, an English constant, `strftime`, a fragment spliced into a sentence).
"""

from __future__ import annotations

import gettext
import inspect
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import discord
import pytest
from babel.messages.catalog import Catalog

from bot import i18n
from bot.render import common
from tests import messages
from tests.messages import LIMITLESS, VALUES, Rendered, Text
from tests.test_render import discord_limit_violations
from tools import catalogs

PSEUDO = i18n.Language("qps-ploc", "ru", "Pseudo", "Pseudo")
"""A throw-away language whose numbers, lists and plural rules are Russian's (three forms, and
CLDR words that are not ASCII): whatever English is left came from the code."""

Shown = common.Message | Text


def shown(rendered: Rendered) -> list[Shown]:
    """What a builder returned, as the messages and stand-alone words Discord gets."""
    items = rendered if isinstance(rendered, list) else [rendered]
    found: list[Shown] = []
    embeds = [item for item in items if isinstance(item, discord.Embed)]
    if embeds:
        found.append(common.Message(embeds=embeds))
    for item in items:
        if isinstance(item, (common.Message, Text)):
            found.append(item)
        elif isinstance(item, str):
            found.append(common.Message(content=item))
        elif isinstance(item, discord.ui.View):
            found.append(common.Message(content="-", view=item))
        elif not isinstance(item, discord.Embed):
            raise TypeError(f"a builder returned {type(item).__name__}")
    return found


def components(message: common.Message) -> Iterator[dict[str, Any]]:
    for row in message.view.to_components() if message.view is not None else []:
        yield from row.get("components") or []


def violations(item: Shown) -> list[str]:
    """Everything about one message (its embeds, buttons and menus: `tests.test_render`) or one
    piece of words on its own (a thread name, a choice) that Discord would refuse."""
    if isinstance(item, Text):
        if not 1 <= len(item.text) <= item.limit:
            return [f"{item.place} of {len(item.text)} chars (1-{item.limit}): {item.text[:60]!r}"]
        return []
    return discord_limit_violations(item)


def words(item: Shown) -> list[str]:
    """Every piece of text a member reads in it."""
    if isinstance(item, Text):
        return [item.text]
    texts = [item.content or ""]
    for embed in item.embeds:
        data = embed.to_dict()
        texts += [data.get("title", ""), data.get("description", "")]
        texts += [f"{f.get('name', '')}\n{f.get('value', '')}" for f in data.get("fields", [])]
        texts += [data.get("footer", {}).get("text", ""), data.get("author", {}).get("name", "")]
    for component in components(item):
        texts += [component.get("label") or "", component.get("placeholder") or ""]
        for option in component.get("options") or []:
            texts += [option.get("label") or "", option.get("description") or ""]
    return [text for text in texts if text and text != "-"]


def render(build: Callable[[], Rendered], language: i18n.Language) -> list[Shown]:
    with i18n.speaking(language):
        return shown(build())


REGISTRY = messages.registry()


# -- the pseudo-locale --------------------------------------------------------------------------

_PLAIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ACCENTED = "åƀçďéƒğĥïĵķĺɱñöþǫŕšŧüṽŵẋýžÅƁÇĎÉƑĞĤÏĴĶĹṀÑÖÞǪŔŠŦÜṼŴẊÝŽ"
ACCENTS = str.maketrans(_PLAIN, _ACCENTED)
_KEPT = re.compile(r"(\{[^{}]*\}|`[^`]*`|<[^<>\s]*>|\]\([^)\s]*\)|https?://\S+)")
"""What a translation keeps as it is: placeholders, code spans, mentions and timestamps, link
targets."""


def pseudo(english: str, grow: float = 0.4) -> str:
    pieces = _KEPT.split(english)
    # split() with a group: the kept pieces are the odd ones.
    text = "".join(piece if n % 2 else piece.translate(ACCENTS) for n, piece in enumerate(pieces))
    return f"⟦{text}{'·' * round(len(english) * grow)}⟧"


def pseudo_catalog(template: Catalog) -> Catalog:
    catalog = Catalog(locale=PSEUDO.babel, domain=i18n.DOMAIN)
    for message in template:
        if not message.id:
            continue
        if isinstance(message.id, (tuple, list)):
            singular, plural = message.id
            string: Any = (pseudo(singular), *([pseudo(plural)] * (catalog.num_plurals - 1)))
        else:
            string = pseudo(message.id)
        catalog.add(message.id, string, context=message.context)
    return catalog


@pytest.fixture(scope="module")
def template() -> Catalog:
    return catalogs.template()


@pytest.fixture(scope="module")
def pseudo_translations(template: Catalog) -> gettext.NullTranslations:
    return i18n.compiled(pseudo_catalog(template))


@pytest.fixture
def speaking_pseudo(monkeypatch: pytest.MonkeyPatch, pseudo_translations: gettext.NullTranslations) -> None:
    """The pseudo-locale installed for `PSEUDO` alone; every other language as it is."""
    real = i18n.translations
    monkeypatch.setattr(
        i18n, "translations", lambda language: pseudo_translations if language == PSEUDO else real(language)
    )


_NOT_WORDS = re.compile(
    r"https?://[^\s)\]>]+"  # links
    r"|<[^<>\s]*>"  # mentions, channels, roles, timestamps, custom emoji
    r"|`[^`]*`"  # code: commands, options, ids
    r"|\][(][^)\s]*[)]"  # a link's target
    r"|@\u200b?(?:everyone|here)\b"  # a mass mention, defused or not (untrusted text)
)
_ASCII_WORD = re.compile(r"[A-Za-z]{2,}")
_ALLOWED = {
    "mp3",
    "wav",
    "flac",
    "ogg",
    "m4a",
    "csv",
    "png",
    "jpeg",
    "zip",
    "MB",
    "KB",
    "GB",
    "MiB",
    "KiB",
    "GiB",
}
_VALUE_WORDS = {word.lower() for value in VALUES for word in _ASCII_WORD.findall(value)} - {
    "everyone",
    "here",
}
"""The words of the values passed in; mass mentions are taken out as mentions instead ("here" is
also the product's word)."""


def _a_value(word: str, cut: bool) -> bool:
    """A word of the values passed in, or the start of one where a value was cut (`cut`: the
    word ends the text or "…" follows it)."""
    lower = word.lower()
    return lower in _VALUE_WORDS or (cut and any(value.startswith(lower) for value in _VALUE_WORDS))


def bypassed(text: str) -> list[str]:
    """The English words in `text` that are neither values passed in nor code, links, mentions,
    units or identifiers in capitals (API, SEPARATION_API_KEY): words no translation saw."""
    left = _NOT_WORDS.sub(" ", text.replace("\\", "")).rstrip()
    return [
        found.group()
        for found in _ASCII_WORD.finditer(left)
        if found.group() not in _ALLOWED
        and not found.group().isupper()
        and not _a_value(found.group(), found.end() == len(left) or left.startswith("…", found.end()))
    ]


def test_the_pseudo_locale_keeps_placeholders_markup_and_links() -> None:
    english = "**Job #{job}** is in [this thread]({url}): run `/stems show` <t:{when}:R>."

    translated = pseudo(english, grow=0)

    assert catalogs.placeholders(translated) == catalogs.placeholders(english)
    assert translated == "⟦**Ĵöƀ #{job}** ïš ïñ [ŧĥïš ŧĥŕéåď]({url}): ŕüñ `/stems show` <t:{when}:R>.⟧"
    assert bypassed(translated.format(job=1, url="https://x.test/", when=1)) == []


def test_the_bypass_check_itself_finds_english_words_and_lets_values_pass() -> None:
    assert bypassed(f"⟦Ĵöƀ⟧ {messages.TITLE[:30]}… <@1> `audio_id` https://x.test/a b") == []
    assert bypassed("⟦Ĵöƀ #1⟧: the split didn't work · Sep 2025 · API") == [
        "the",
        "split",
        "didn",
        "work",
        "Sep",
    ]


def test_a_message_through_the_catalog_reads_pseudo_and_one_that_is_not_does_not(
    speaking_pseudo: None, template: Catalog
) -> None:
    """The pseudo-locale is installed: a message of the fresh extraction comes back marked;
    English the catalog never saw comes back as it is."""
    known = next(m.id for m in template if m.id and isinstance(m.id, str) and not m.context)
    with i18n.speaking(PSEUDO):
        assert i18n._(known) == pseudo(known)
    with i18n.speaking(i18n.ENGLISH):
        assert i18n._(known) == known
    with i18n.speaking(PSEUDO):
        assert i18n._("Nobody ever wrote this sentence") == "Nobody ever wrote this sentence"
        assert i18n.ngettext("{count} credit", "{count} credits", 5) in (
            "5 credits",  # not in the catalog (yet)
            pseudo("{count} credits").format(count=5),
        )


@pytest.mark.usefixtures("speaking_pseudo")
def test_no_message_shows_words_that_bypassed_the_catalog() -> None:
    found = []
    for name, build in REGISTRY:
        try:
            rendered = render(build, PSEUDO)
        except Exception as error:  # one broken entry is reported with the others
            found.append(f"{name}: raised {error!r}")
            continue
        texts = [text for item in rendered for text in words(item)]
        left = {word: text for text in texts for word in bypassed(text)}
        if left:
            first = next(iter(left.values()))
            found.append(f"{name}: {' '.join(left)}  <- e.g. {first[:100]!r}")
    assert not found, f"{len(found)} message(s) with English that bypassed the catalog:\n" + "\n".join(found)


# -- Discord's limits in every language -----------------------------------------------------------

LIMIT_LANGUAGES = [pytest.param(language, id=language.code) for language in i18n.LANGUAGES] + [
    pytest.param(PSEUDO, id="pseudo+40%")
]


@pytest.mark.parametrize("language", LIMIT_LANGUAGES)
def test_every_message_fits_discords_limits_in_every_language(
    language: i18n.Language, speaking_pseudo: None
) -> None:
    """The real catalogs, and the pseudo-locale whose every translation is 40% longer than the
    English (German and French grow that much): cutting helpers must cut the translated text."""
    found = []
    for name, build in REGISTRY:
        try:
            rendered = render(build, language)
        except Exception as error:
            found.append(f"{name}: raised {error!r}")
            continue
        found += [f"{name}: {problem}" for item in rendered for problem in violations(item)]
    assert not found, f"{language.code}: {len(found)} problem(s):\n" + "\n".join(found)


def test_the_limit_checks_themselves_catch_oversized_menus_and_names() -> None:
    view = discord.ui.View()
    view.add_item(
        discord.ui.Select(
            placeholder="p" * 151,
            options=[discord.SelectOption(label="l" * 101, value="v", description="d" * 101)],
        )
    )

    assert len(violations(common.Message(content="x", view=view))) == 3
    assert violations(Text("t" * 101, 100, "thread name")) != []
    assert violations(Text("", 100, "thread name")) != []
    assert violations(Text("t" * 10_000, LIMITLESS, "file name")) == []


# -- the registry is complete, and quick -----------------------------------------------------------


def test_every_renderer_is_in_the_registry() -> None:
    """A new function in bot/render/* is a new message: register it in tests/messages.py (or say
    in NOT_MESSAGES why it is not one)."""
    source = Path(messages.__file__).read_text().split("NOT_MESSAGES: dict")[0]
    aliases = {"keep": "keeping", "mix": "mixing"}
    missing = []
    render_dir = Path(common.__file__).parent
    for path in sorted(render_dir.glob("*.py")):
        module = path.stem
        if module == "__init__":
            continue
        imported = __import__(f"bot.render.{module}", fromlist=["_"])
        for name, function in inspect.getmembers(imported, inspect.isfunction):
            if name.startswith("_") or function.__module__ != imported.__name__:
                continue
            called = re.compile(rf"\b{aliases.get(module, module)}\.{name}\b")
            if not called.search(source) and f"{module}.{name}" not in messages.NOT_MESSAGES:
                missing.append(f"{module}.{name}")
    assert not missing, missing


def test_every_entry_renders_in_english() -> None:
    broken = []
    for name, build in REGISTRY:
        try:
            assert render(build, i18n.ENGLISH)
        except Exception as error:
            broken.append(f"{name}: {error!r}")
    assert not broken, "\n".join(broken)
    assert len(REGISTRY) > 300
