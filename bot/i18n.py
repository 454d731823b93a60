"""The languages StemBot speaks, and the one it is speaking right now.

Every word a member or moderator reads goes through this module: `_` for a sentence, `ngettext`
for one whose words change with a number, `pgettext` where the same English word needs telling
apart (a command's name against the same word in a sentence), `N_` to mark a sentence defined at
import time and translated where it is shown. Placeholders are named (`{credits}`) and filled
here, after translation, so a translator can move them. Numbers and lists are written the
language's way (`number`, `listing`).

Which language: each interaction's task speaks the member's language from its first line (the
entry points call `use`); public messages, and everything sent without an interaction, say which
language they speak with `speaking`. Logs and operator output are English and never come here.

The catalogs are gettext `.po` files under `bot/locales/`, managed with Babel (`python -m
tools.catalogs`); they are compiled in memory the first time a language is used, so there is no
compiled file to go stale.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from importlib import resources

from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

DOMAIN = "stembot"


@dataclass(frozen=True, slots=True)
class Language:
    """One language StemBot speaks."""

    code: str
    """Discord's locale code: "es-ES", "ja"; English is "en-US"."""
    babel: str
    """Its Babel (CLDR) locale and the name of its catalog's folder: "es_ES", "ja"."""
    name: str
    """Its name in itself, as a member picks it: "Español (España)"."""
    english_name: str
    """Its name in English, for logs and docs."""


ENGLISH = Language("en-US", "en_US", "English", "English")
LANGUAGES: tuple[Language, ...] = (
    ENGLISH,
    Language("es-ES", "es_ES", "Español (España)", "Spanish (Spain)"),
    Language("es-419", "es_419", "Español (Latinoamérica)", "Spanish (Latin America)"),
    Language("pt-BR", "pt_BR", "Português (Brasil)", "Portuguese (Brazil)"),
    Language("fr", "fr", "Français", "French"),
    Language("de", "de", "Deutsch", "German"),
    Language("ja", "ja", "日本語", "Japanese"),
)
TRANSLATED: tuple[Language, ...] = LANGUAGES[1:]
"""The languages with a catalog: all but English, the language the code is written in."""

_BY_CODE: dict[str, Language] = {language.code: language for language in LANGUAGES}


def language_for(locale: object) -> Language:
    """The language to speak to someone whose Discord locale is `locale` (a `discord.Locale`, its
    code, or anything untrusted): one of ours, English for every English variety and for the
    locales we don't speak yet."""
    code = getattr(locale, "value", locale)
    return _BY_CODE.get(code, ENGLISH) if isinstance(code, str) else ENGLISH


def known_language(code: object) -> Language | None:
    """One of our languages by its exact code, None for anything else (a stored or chosen code)."""
    return _BY_CODE.get(code) if isinstance(code, str) else None


# -- the language being spoken ----------------------------------------------------------------

_speaking: ContextVar[Language] = ContextVar("speaking", default=ENGLISH)


def current() -> Language:
    return _speaking.get()


def use(language: Language) -> None:
    """Speak `language` for the rest of this task: an interaction's entry point calls it with the
    member's language before anything is said."""
    _speaking.set(language)


@contextmanager
def speaking(language: Language) -> Iterator[None]:
    """Speak `language` inside the block: a public message, a DM, a reminder."""
    token = _speaking.set(language)
    try:
        yield
    finally:
        _speaking.reset(token)


# -- catalogs ---------------------------------------------------------------------------------


def catalog_path(language: Language) -> str:
    """Where a language's catalog lives, relative to the `bot` package."""
    return f"locales/{language.babel}/LC_MESSAGES/{DOMAIN}.po"


@cache
def translations(language: Language) -> gettext.NullTranslations:
    """A language's translations, compiled from its `.po` in memory. English (and a language
    whose catalog is missing) translates nothing: the code's English is the source."""
    if language is ENGLISH:
        return gettext.NullTranslations()
    source = resources.files("bot").joinpath(catalog_path(language))
    if not source.is_file():
        return gettext.NullTranslations()
    with source.open("rb") as po:
        catalog = read_po(po, locale=language.babel, domain=DOMAIN)
    return compiled(catalog)


def compiled(catalog: object) -> Translations:
    """A Babel catalog as gettext translations: untranslated and fuzzy entries fall back to
    English."""
    mo = io.BytesIO()
    write_mo(mo, catalog)  # type: ignore[arg-type]
    mo.seek(0)
    return Translations(mo, domain=DOMAIN)


def _fill(text: str, values: dict[str, object]) -> str:
    return text.format_map(values) if values else text


def _(message: str, /, **values: object) -> str:
    """`message` in the language being spoken, its `{placeholders}` filled with `values`."""
    return _fill(translations(current()).gettext(message), values)


def ngettext(singular: str, plural: str, n: int, /, **values: object) -> str:
    """The form of a sentence for the number `n`, in the language being spoken; `{count}` is `n`
    written the language's way unless `values` gives it."""
    values.setdefault("count", number(n))
    return _fill(translations(current()).ngettext(singular, plural, n), values)


def pgettext(context: str, message: str, /, **values: object) -> str:
    """`message` in the sense `context` gives it (the same English word, told apart)."""
    return _fill(translations(current()).pgettext(context, message), values)


def translate(language: Language, context: str | None, message: str) -> str | None:
    """`message`'s translation into `language`, or None where the catalog has none (Discord then
    shows the English): the command names and descriptions synced to Discord."""
    table = translations(language)
    found = table.pgettext(context, message) if context else table.gettext(message)
    return None if found == message else found


def N_(message: str, /) -> str:
    """Marks a sentence defined at import time for the catalogs; `_` translates it where shown."""
    return message


# -- numbers and lists ------------------------------------------------------------------------


def number(amount: int | float) -> str:
    """A number written the language's way: 1,590 · 1.590 · 1 590."""
    return format_decimal(amount, locale=current().babel)


def listing(items: Sequence[str], *, alternatives: bool = False) -> str:
    """Words joined the language's way: "Drums, Bass and Piano"; with `alternatives`, "… or …"."""
    if not items:
        return ""
    return format_list(list(items), style="or" if alternatives else "standard", locale=current().babel)
