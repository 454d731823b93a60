"""The translation catalogs: extract every translatable string from the code and the slash
commands, update each language's `.po` from it, and check them.

    python -m tools.catalogs extract   # bot/locales/stembot.pot from the code; each .po updated
    python -m tools.catalogs check     # every catalog complete, no fuzzy entry, placeholders kept

Babel does the work (extraction, the catalog format, merging); this adds what Babel cannot see:
the names and descriptions of the slash commands, options and choices, read from the command tree
exactly as a sync sends them to Discord (`bot.discord_side.translator`), each name under its own
context since a name is one lowercase word and not a sentence.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import re
import string
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po
from discord import app_commands

from bot import __version__, i18n
from bot.discord_side.client import EXTENSIONS, StemBot
from bot.discord_side.translator import NAME_CONTEXTS

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "bot" / "locales"
TEMPLATE = LOCALES / f"{i18n.DOMAIN}.pot"
SOURCES = ("bot", "cogs")
KEYWORDS: dict[str, Any] = {"_": None, "N_": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}
HEADER = "The messages of StemBot, the Discord bot that splits songs into stems."


def code_messages() -> Iterable[tuple[str | tuple[str, ...], str | None, str, list[str]]]:
    """(message or (singular, plural), context, where, notes to translators) for every marked
    string in the code; with those Babel's extractor does not see: marked inside an f-string's
    `{…}` (`f"{period}\n{_('Nothing to draw.')}"`), which Python 3.11 tokenizes as one string."""
    found: set[tuple[str | tuple[str, ...], str | None]] = set()
    for source in SOURCES:
        for filename, lineno, message, comments, context in extract_from_dir(
            ROOT / source, method_map=[("**.py", "python")], keywords=KEYWORDS, comment_tags=("TRANSLATORS:",)
        ):
            found.add((message, context))
            yield message, context, f"{source}/{filename}:{lineno}", comments
    for message, context, where in marked_in_code():
        if (message, context) not in found:
            found.add((message, context))
            yield message, context, where, []


def marked_in_code() -> Iterable[tuple[str | tuple[str, ...], str | None, str]]:
    """(message or (singular, plural), context, where) for every call of `_`, `N_`, `ngettext` or
    `pgettext` (by name or as `i18n._`) whose message is a string literal, read from the code's
    syntax tree: wherever it is, f-strings included."""
    for source in SOURCES:
        for path in sorted((ROOT / source).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if isinstance(node, ast.Call) and (marked := _marked(node)) is not None:
                    yield *marked, f"{path.relative_to(ROOT).as_posix()}:{node.lineno}"


def _marked(call: ast.Call) -> tuple[str | tuple[str, ...], str | None] | None:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    literals = [
        a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None for a in call.args
    ]
    if name in ("_", "N_") and literals[:1] and literals[0] is not None:
        return literals[0], None
    if name == "ngettext" and len(literals) >= 2 and literals[0] is not None and literals[1] is not None:
        return (literals[0], literals[1]), None
    if name == "pgettext" and len(literals) >= 2 and literals[0] is not None and literals[1] is not None:
        return literals[1], literals[0]
    return None


class _Recorder(app_commands.Translator):
    """Answers nothing; notes every string a sync would ask a translator for, and where."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None, str]] = []

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        if locale is discord.Locale.american_english:  # every locale asks the same: note one
            self.seen.append((string.message, NAME_CONTEXTS.get(context.location), context.location.name))
        return None


async def command_messages() -> list[tuple[str, str | None, str]]:
    """(message, context, where) for each name and description of the slash commands."""
    bot = StemBot(lambda client: SimpleNamespace())  # type: ignore[arg-type,return-value]
    for extension in EXTENSIONS:
        await bot.load_extension(extension)
    recorder = _Recorder()
    for command in bot.tree.get_commands():
        await command.get_translated_payload(bot.tree, recorder)
    return recorder.seen


@cache
def _extracted() -> tuple[
    tuple[tuple[str | tuple[str, ...], str | None, str, tuple[str, ...]], ...],
    tuple[tuple[str, str | None, str], ...],
]:
    """What the code and the command tree mark, read once per process (the tests ask often)."""
    code = tuple(
        (message, context, where, tuple(notes)) for message, context, where, notes in code_messages()
    )
    return code, tuple(asyncio.run(command_messages()))


def template() -> Catalog:
    """The catalog of every string to translate, as the code stands (a new catalog each call)."""
    catalog = Catalog(
        project="StemBot", version=__version__, domain=i18n.DOMAIN, header_comment=f"# {HEADER}", fuzzy=False
    )
    code, commands = _extracted()
    for message, context, where, notes in code:
        path, line = where.rsplit(":", 1)
        catalog.add(message, None, [(path, int(line))], auto_comments=list(notes), context=context)
    for message, context, where in commands:
        place = (f"slash-commands/{where}", None)  # no line (and no colon: Babel reads one as "path:line")
        catalog.add(message, None, [place], context=context)  # type: ignore[list-item]
    return catalog


def read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=locale, domain=i18n.DOMAIN)


def write(catalog: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        write_po(file, catalog, width=100, sort_output=False, omit_header=False, include_lineno=False)


def extract() -> None:
    """Write the template, then bring each language's catalog up to it (new strings untranslated,
    changed ones fuzzy, gone ones dropped)."""
    fresh = template()
    write(fresh, TEMPLATE)
    for language in i18n.TRANSLATED:
        path = LOCALES / i18n.catalog_path(language).removeprefix("locales/")
        catalog = (
            read(path, language.babel)
            if path.is_file()
            else Catalog(locale=language.babel, domain=i18n.DOMAIN)
        )
        catalog.update(fresh, update_header_comment=True)
        catalog.project, catalog.version, catalog.fuzzy = "StemBot", __version__, False
        catalog.obsolete.clear()
        write(catalog, path)
        print(f"{language.code}: {len(problems(catalog))} to translate or check ({path.relative_to(ROOT)})")


# -- checks (tests/test_catalogs.py runs these) ----------------------------------------------


def placeholders(text: str) -> set[str]:
    """The `{named}` placeholders of a message."""
    return {field for _literal, field, _spec, _conv in string.Formatter().parse(text) if field is not None}


MARKUP = re.compile(r"</?[a-z]+>|<[@#][!&]?\{?\w+\}?>|`[^`]*\{\w+\}[^`]*`")


def problems(catalog: Catalog) -> list[str]:
    """What keeps a language's catalog from being complete: untranslated and fuzzy entries,
    placeholders lost or invented."""
    found: list[str] = []
    for message in catalog:
        if not message.id:
            continue
        found.extend(f"{_where(message)}: {p}" for p in _entry_problems(message))
    return found


def _entry_problems(message: Message) -> Iterable[str]:
    ids = [str(i) for i in (message.id if isinstance(message.id, (tuple, list)) else (message.id,))]
    raw = message.string if isinstance(message.string, (tuple, list)) else (message.string,)
    strings = [s or "" for s in raw]
    if message.fuzzy:
        yield "fuzzy (its English changed: check the translation, then remove the fuzzy flag)"
    if not all(strings):
        yield "not translated"
        return
    expected = set().union(*(placeholders(i) for i in ids))
    for translated in strings:
        try:
            got = placeholders(translated)
        except ValueError as error:
            yield f"broken braces in {translated!r}: {error}"
            continue
        # A plural form may leave out {count} (Japanese, or "one" written as a word), never add one.
        missing = expected - got - ({"count"} if len(ids) > 1 else set())
        if missing or got - expected:
            yield f"placeholders {sorted(got)} in {translated!r}, the English has {sorted(expected)}"


def _where(message: Message) -> str:
    text = message.id if isinstance(message.id, str) else message.id[0]
    return f"{message.context + ' | ' if message.context else ''}{text[:60]!r}"


def check() -> int:
    fresh = {(m.id if isinstance(m.id, str) else m.id[0], m.context) for m in template() if m.id}
    bad = 0
    for language in i18n.TRANSLATED:
        path = LOCALES / i18n.catalog_path(language).removeprefix("locales/")
        catalog = read(path, language.babel)
        have = {(m.id if isinstance(m.id, str) else m.id[0], m.context) for m in catalog if m.id}
        issues = problems(catalog) + [f"missing: {c + ' | ' if c else ''}{i[:60]!r}" for i, c in fresh - have]
        for issue in issues:
            print(f"{language.code}: {issue}")
        bad += len(issues)
    print("catalogs complete" if not bad else f"{bad} problem(s)")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.catalogs", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("extract", "check"))
    args = parser.parse_args(argv)
    if args.action == "extract":
        extract()
        return 0
    return check()


if __name__ == "__main__":
    sys.exit(main())
