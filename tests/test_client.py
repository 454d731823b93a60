"""The command tree's last-resort error handler and the private answer after a public defer, with
interaction doubles that behave as Discord does: the first follow-up after a defer fills the
"thinking…" message and takes its visibility, whatever `ephemeral` says."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock

import discord
import pytest
from discord import app_commands

from bot.client import StemBot, answer_privately
from bot.render import common, results
from tests.unit_helpers import Replies, make_interaction

ERROR_TEXT = common.unexpected_error()


@pytest.fixture
def tree() -> app_commands.CommandTree[Any]:
    return StemBot(lambda bot: SimpleNamespace()).tree  # type: ignore[arg-type]


async def fail(tree: app_commands.CommandTree[Any], interaction: MagicMock) -> None:
    await tree.on_error(interaction, app_commands.CommandInvokeError(MagicMock(), RuntimeError("boom")))


async def test_an_error_after_a_public_defer_never_fills_the_public_reply(tree):
    interaction = make_interaction()
    replies = Replies(interaction, public=True)

    await fail(tree, interaction)

    assert replies.original is None  # the public "thinking…" is gone
    assert replies.seen_by_others() == []
    assert replies.seen_by_invoker_alone() == [ERROR_TEXT]


async def test_a_public_reply_discord_will_not_delete_is_ended_with_neutral_words(tree):
    interaction = make_interaction()
    replies = Replies(interaction, public=True, fail=("delete",))

    await fail(tree, interaction)

    assert replies.seen_by_others() == [common.NOT_FINISHED]
    assert replies.seen_by_invoker_alone() == [ERROR_TEXT]


async def test_the_error_is_not_sent_at_all_when_the_public_reply_cannot_be_ended(tree, caplog):
    interaction = make_interaction()
    replies = Replies(interaction, public=True, fail=("delete", "edit"))

    with caplog.at_level(logging.WARNING):
        await fail(tree, interaction)

    assert ERROR_TEXT not in replies.seen_by_others()
    interaction.followup.send.assert_not_awaited()
    assert "not sending them the private answer" in caplog.text


async def test_an_error_after_a_private_defer_fills_the_private_reply(tree):
    interaction = make_interaction()
    replies = Replies(interaction, public=False)

    await fail(tree, interaction)

    interaction.delete_original_response.assert_not_awaited()
    assert replies.seen_by_others() == []
    assert replies.seen_by_invoker_alone() == [ERROR_TEXT]


async def test_an_error_after_the_public_reply_was_filled_leaves_it_and_answers_privately(tree):
    interaction = make_interaction()
    replies = Replies(interaction, public=True, thinking=False, content="Split queued")

    await fail(tree, interaction)

    interaction.delete_original_response.assert_not_awaited()
    interaction.edit_original_response.assert_not_awaited()
    assert replies.seen_by_others() == ["Split queued"]
    assert replies.seen_by_invoker_alone() == [ERROR_TEXT]


async def test_when_discord_will_not_say_what_the_reply_is_nothing_is_sent(tree, caplog):
    interaction = make_interaction()
    replies = Replies(interaction, public=True, fail=("get",))

    with caplog.at_level(logging.WARNING):
        await fail(tree, interaction)

    assert replies.seen_by_others() == []
    interaction.followup.send.assert_not_awaited()
    assert "Could not tell member" in caplog.text


async def test_an_error_before_any_reply_is_answered_privately(tree):
    interaction = make_interaction()
    interaction.command = SimpleNamespace(qualified_name="credits")

    await fail(tree, interaction)

    interaction.response.send_message.assert_awaited_once_with(ERROR_TEXT, ephemeral=True)


async def test_answer_privately_sends_keywords_as_a_private_follow_up():
    interaction = make_interaction()
    replies = Replies(interaction, public=True)
    embed = discord.Embed(description="your balance is 3")

    sent = await answer_privately(interaction, results.NOT_STARTED, embed=embed)

    assert sent is True
    assert replies.seen_by_others() == []
    assert replies.seen_by_invoker_alone() == ["your balance is 3"]
