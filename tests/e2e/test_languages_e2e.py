"""The member's language and the server's, end to end (issue 24): the real bot process, the
Discord stand-in sending `locale` and `guild_locale` as Discord does, the API simulator.

Expected words are looked up in the catalogs here, the way the bot looks them up
(`i18n.speaking(language)` and `_()` of the English), and each check includes words that differ
from the English: a message that did not go through the catalog, or went through it in the wrong
language, fails, and so does one that silently fell back to English. (A word may be the same in
some language, "Instrumental" in Spanish, German and French: it must be in the catalog, and the
check leans on the words that differ.)

The flows wait on what does not depend on a language (a response, the job delivered) and then
read the words, so each test runs its whole flow even while the catalogs are still empty.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot import i18n
from bot.render import common
from testing.discord_standin import DEFAULT_MEMBER_PERMISSIONS, DEFAULT_USER_ID, MessageRecord, Perm
from tests.e2e.conftest import Stack

MODERATOR = DEFAULT_USER_ID + 1
TIMEOUT = 20.0


def said(code: str, english: str, **values: Any) -> str:
    """`english` as the catalog of the language `code` says it; the catalog must translate it."""
    language = i18n.known_language(code)
    assert language is not None, code
    assert english in getattr(i18n.translations(language), "_catalog", {}), (
        f"{code}: the catalog has no translation of {english!r}"
    )
    with i18n.speaking(language):
        return i18n._(english, **values)


def said_otherwise(code: str, english: str) -> str:
    """`said`, and not the English: a silent fallback to English cannot pass for it."""
    translated = said(code, english)
    assert translated != english, f"{code}: {english!r} is translated as the English"
    return translated


def titles(message: MessageRecord) -> list[str]:
    return [embed.get("title", "") for embed in message.embeds]


def labels(message: MessageRecord) -> list[str]:
    return [c.get("label", "") for row in message.components for c in row.get("components") or []]


async def delivered_result(stack: Stack, record: Any, job_count: int) -> MessageRecord:
    """The public result of a split, once the bot says it delivered it (whatever its words)."""
    await stack.eventually(
        lambda: len([j for j in stack.jobs() if j["delivery"] == "delivered"]) >= job_count, timeout=TIMEOUT
    )
    message = await record.wait_for_edit(lambda m: not m.loading and m.components, timeout=TIMEOUT)
    assert not message.ephemeral
    return message


def assert_result_in(code: str, message: MessageRecord) -> None:
    """A two-stem result in `code`: its stems' buttons and its upgrade button, as the catalog says
    (the stem Vocals and the upgrade button are other words than the English in every language)."""
    shown = labels(message)
    for english in ("Vocals", common.UPGRADE_BUTTON_LABEL):
        assert said_otherwise(code, english) in shown, (code, english, shown)
    assert said(code, "Instrumental") in shown, (code, shown)


@pytest.mark.parametrize("code", ["es-ES", "ja"])
async def test_credits_read_in_the_members_language(stack: Stack, code: str) -> None:
    await stack.start_bot()

    record = await stack.standin.invoke("credits", locale=code)
    reply = await record.wait_for_response(timeout=TIMEOUT)

    assert reply.ephemeral
    assert said_otherwise(code, "Your credits") in titles(reply)


@pytest.mark.parametrize("code", ["es-ES", "ja"])
async def test_a_split_result_reads_in_the_language_of_a_server_and_member_who_speak_it(
    stack: Stack, code: str
) -> None:
    stack.standin.set_guild_locale(code)
    await stack.start_bot()

    record = await stack.split(locale=code)
    result = await delivered_result(stack, record, 1)

    assert_result_in(code, result)


async def test_a_public_result_follows_the_server_and_private_answers_the_member(stack: Stack) -> None:
    """A German server, a Japanese member: the result everybody sees is German; what only the
    member sees is Japanese."""
    stack.standin.set_guild_locale("de")
    await stack.start_bot()

    record = await stack.split(locale="ja")
    result = await delivered_result(stack, record, 1)
    credits = await (await stack.standin.invoke("credits", locale="ja")).wait_for_response(timeout=TIMEOUT)
    refused = await (await stack.split(task_id="two words", locale="ja")).wait_for_response(timeout=TIMEOUT)

    assert_result_in("de", result)
    assert credits.ephemeral and said_otherwise("ja", "Your credits") in titles(credits)
    assert refused.ephemeral and said_otherwise("ja", "That doesn't look like a track id") in titles(refused)


async def test_a_moderator_chooses_the_servers_language_and_goes_back_to_discords(stack: Stack) -> None:
    """`/quota settings language:` overrides the server's Discord language for public messages;
    "server" goes back to it. Private answers stay in the member's language."""
    stack.standin.set_guild_locale("de")
    stack.standin.add_member(MODERATOR, permissions=DEFAULT_MEMBER_PERMISSIONS | Perm.MANAGE_GUILD)
    await stack.start_bot()

    chosen = await stack.standin.invoke(
        "quota", {"language": "fr"}, subcommand="settings", user_id=MODERATOR, locale="es-ES"
    )
    settings = await chosen.wait_for_response(timeout=TIMEOUT)
    french = await delivered_result(stack, await stack.split(audio_id="audio-1", locale="ja"), 1)
    back = await stack.standin.invoke(
        "quota", {"language": "server"}, subcommand="settings", user_id=MODERATOR, locale="es-ES"
    )
    await back.wait_for_response(timeout=TIMEOUT)
    german = await delivered_result(stack, await stack.split(audio_id="audio-2", locale="ja"), 2)

    assert settings.ephemeral and said_otherwise("es-ES", "Credit settings for this server") in titles(
        settings
    )
    assert_result_in("fr", french)
    assert_result_in("de", german)


async def test_the_synced_commands_carry_the_catalogs_localisations(stack: Stack) -> None:
    await stack.start_bot()

    [sync] = stack.standin.sync_calls
    assert sync.commands
    for command in sync.commands:
        for language in i18n.TRANSLATED:
            description = i18n.translate(language, None, command["description"])
            assert description is not None, (
                f"{language.code}: no translation of /{command['name']}'s description"
            )
            assert command.get("description_localizations", {}).get(language.code) == description
            name = i18n.translate(language, "command name", command["name"])
            assert command.get("name_localizations", {}).get(language.code) == name, command["name"]
