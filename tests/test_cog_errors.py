"""Each cog's one error handler (`cog_app_command_error`) together with the tree's last resort, run
as discord.py runs them: the cog's handler first, then `StemTree.on_error`, for the same error.

Expected failures get one private, friendly answer from the cog; an option Discord could not
resolve gets its own answer; a command cooldown is answered by the tree; anything else is logged
once with its traceback and answered once by the tree. Never two answers for one error.
"""

from __future__ import annotations

import logging
import re
import time
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock

import discord
import pytest
from discord import app_commands

from bot.discord_side.client import ERROR_ANSWERED, StemTree
from bot.errors import InvalidTrackId, MemberBlocked, NotAModerator, SplittingPaused, StemBotError
from bot.render import common, results
from cogs.credits import CreditsCog
from cogs.quota import QuotaCog
from cogs.split import SplitCog
from cogs.status import StatusCog
from tests.unit_helpers import Replies, embed_text, fail_command, make_interaction
from tests.wiring import make_settings

# (cog, one of its commands, whether the command's "thinking…" is public, an error it may raise)
COGS = [
    pytest.param(SplitCog, SplitCog.split, True, MemberBlocked("spam", 40), id="split"),
    pytest.param(QuotaCog, QuotaCog.grant, False, NotAModerator("grant credits"), id="quota"),
    pytest.param(CreditsCog, CreditsCog.credits, False, StemBotError("No credits here yet."), id="credits"),
    pytest.param(StatusCog, StatusCog.status, False, StemBotError("Not for you."), id="status"),
]

BOT = SimpleNamespace(services=SimpleNamespace(settings=make_settings()))
"""A bot double with what the cogs' error handlers read (whether this is the sandbox)."""


def cooldown(retry_after: float) -> app_commands.CommandOnCooldown:
    return app_commands.CommandOnCooldown(app_commands.Cooldown(1, 30.0), retry_after)


def unresolved_member() -> app_commands.TransformerError:
    return app_commands.TransformerError(
        "333", discord.AppCommandOptionType.user, app_commands.transformers.MemberTransformer()
    )


def wrapped(command: Any, error: Exception) -> app_commands.CommandInvokeError:
    return app_commands.CommandInvokeError(command, error)


def answers(interaction: MagicMock) -> list[Any]:
    """Every answer the member got: initial responses and follow-ups."""
    return [*interaction.response.send_message.await_args_list, *interaction.followup.send.await_args_list]


def logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name.startswith(("bot", "cogs"))]


def answer_text(call: Any) -> str:
    embed = call.kwargs.get("embed")
    return embed_text(embed) if embed is not None else (call.args[0] if call.args else call.kwargs["content"])


@pytest.mark.parametrize(("cog_class", "command", "public", "error"), COGS)
async def test_an_expected_failure_after_the_defer_is_answered_once_and_privately(
    cog_class, command, public, error, caplog
):
    interaction = make_interaction()
    replies = Replies(interaction, public=public)

    with caplog.at_level(logging.WARNING):
        await fail_command(cog_class(BOT), command, interaction, wrapped(command, error))

    assert replies.seen_by_others() == []
    [seen] = replies.seen_by_invoker_alone()
    assert str(error) in seen
    assert logged(caplog) == []  # expected: nothing to log
    assert interaction.extras[ERROR_ANSWERED] is True


@pytest.mark.parametrize(("cog_class", "command", "public", "error"), COGS)
async def test_an_unresolvable_option_gets_its_own_answer_before_any_reply(
    cog_class, command, public, error, caplog
):
    interaction = make_interaction()

    with caplog.at_level(logging.WARNING):
        await fail_command(cog_class(BOT), command, interaction, unresolved_member())

    [call] = answers(interaction)
    assert call.kwargs["ephemeral"] is True
    text = answer_text(call)
    assert "member" in text and "again" in text and "Nothing was changed" in text
    assert "Failed to convert" not in text  # not discord.py's words
    assert logged(caplog) == []


@pytest.mark.parametrize(("cog_class", "command", "public", "error"), COGS)
async def test_a_command_cooldown_is_answered_once_with_when_to_try_again(
    cog_class, command, public, error, caplog
):
    interaction = make_interaction()
    before = time.time()

    with caplog.at_level(logging.WARNING):
        await fail_command(cog_class(BOT), command, interaction, cooldown(90.0))

    [call] = answers(interaction)
    assert call.kwargs["ephemeral"] is True
    text = answer_text(call)
    assert "too often" in text
    [when] = re.findall(r"<t:(\d+):R>", text)
    assert int(before) + 90 <= int(when) <= time.time() + 91
    assert logged(caplog) == []


@pytest.mark.parametrize(("cog_class", "command", "public", "error"), COGS)
async def test_an_unexpected_error_is_logged_once_and_answered_once_by_the_tree(
    cog_class, command, public, error, caplog
):
    interaction = make_interaction()
    replies = Replies(interaction, public=public)

    with caplog.at_level(logging.WARNING):
        await fail_command(cog_class(BOT), command, interaction, wrapped(command, KeyError("x")))

    [record] = logged(caplog)
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert replies.seen_by_others() == []
    assert replies.seen_by_invoker_alone() == [common.unexpected_error()]
    assert ERROR_ANSWERED not in interaction.extras


async def test_a_bad_id_before_the_defer_is_answered_at_once_with_the_bad_input_words():
    interaction = make_interaction()
    error = InvalidTrackId("audio_id", "contains spaces; paste the id alone.")

    await fail_command(SplitCog(BOT), SplitCog.split, interaction, wrapped(SplitCog.split, error))

    interaction.response.send_message.assert_awaited_once()
    call = interaction.response.send_message.await_args
    assert call.kwargs["ephemeral"] is True
    assert "audio_id" in embed_text(call.kwargs["embed"])
    interaction.followup.send.assert_not_awaited()


async def test_split_unavailable_is_explained_privately_after_the_public_defer():
    interaction = make_interaction()
    replies = Replies(interaction, public=True, fail=("delete",))

    await fail_command(SplitCog(BOT), SplitCog.split, interaction, wrapped(SplitCog.split, SplittingPaused()))

    assert replies.seen_by_others() == [results.NOT_STARTED]
    [seen] = replies.seen_by_invoker_alone()
    assert "paused" in seen


async def test_when_the_cogs_answer_fails_it_is_logged_and_the_tree_does_not_answer_instead(caplog):
    interaction = make_interaction()
    interaction.response.is_done.return_value = True
    interaction.followup.send.side_effect = discord.HTTPException(MagicMock(status=500), "down")

    with caplog.at_level(logging.WARNING):
        await fail_command(
            QuotaCog(BOT),
            QuotaCog.grant,
            interaction,
            wrapped(QuotaCog.grant, NotAModerator("x")),
        )

    interaction.followup.send.assert_awaited_once()  # the cog's try, not a second one from the tree
    assert [r.levelno for r in logged(caplog)] == [logging.WARNING]
    assert "why their command was refused" in caplog.text


async def test_the_tree_leaves_alone_an_error_a_cog_answered():
    interaction = make_interaction()
    interaction.extras[ERROR_ANSWERED] = True
    tree = StemTree(discord.Client(intents=discord.Intents(guilds=True)))

    await tree.on_error(interaction, wrapped(MagicMock(), RuntimeError("boom")))

    interaction.response.send_message.assert_not_awaited()
    interaction.followup.send.assert_not_awaited()
