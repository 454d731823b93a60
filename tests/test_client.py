"""The command tree's last-resort error handler and the private answer after a public defer, with
interaction doubles that behave as Discord does: the first follow-up after a defer fills the
"thinking…" message and takes its visibility, whatever `ephemeral` says."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import discord
import pytest
from discord import app_commands

from bot.discord_side.client import StemBot, answer_privately, installed_here, refuse_if_not_installed
from bot.render import common, results
from tests.unit_helpers import USER_ID, Replies, make_interaction

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


# -- servers only: interactions in a server that did not add the bot -----------------------------

GUILD, MEMBER, APP = 555_000_000_000_000_001, 555_000_000_000_000_002, 555_000_000_000_000_003


def real_interaction(
    owners: dict[str, str], *, guild_id: int | None = GUILD, itype: int = 2
) -> discord.Interaction:
    """A discord.py Interaction built from the payload Discord sends, with its
    `authorizing_integration_owners` (who installed the app for this interaction)."""
    bot = StemBot(lambda client: SimpleNamespace())  # type: ignore[arg-type,return-value]
    user = {"id": str(MEMBER), "username": "member", "discriminator": "0", "avatar": None}
    payload: dict[str, Any] = {
        "id": "1",
        "application_id": str(APP),
        "type": itype,
        "token": "token",
        "version": 1,
        "locale": "en-US",
        "entitlements": [],
        "attachment_size_limit": 10 * 1024 * 1024,
        "authorizing_integration_owners": owners,
        "data": {"id": "2", "name": "split", "type": 1},
    }
    if guild_id is None:
        payload.update(channel_id="3", user=user, context=1)
    else:
        payload.update(
            guild_id=str(guild_id),
            channel_id="3",
            member={"user": user, "roles": [], "joined_at": None, "permissions": "0", "flags": 0},
            context=0,
        )
    state = bot._connection
    state.user = discord.ClientUser(
        state=state, data={"id": str(APP), "username": "StemBot", "discriminator": "0", "avatar": None}
    )
    return discord.Interaction(data=payload, state=state)  # type: ignore[arg-type]


def test_a_server_that_added_the_bot_is_served():
    assert installed_here(real_interaction({"0": str(GUILD)}))
    # The member may have installed it too: the server's install is what counts.
    assert installed_here(real_interaction({"0": str(GUILD), "1": str(MEMBER)}))


def test_a_members_own_install_in_a_server_that_did_not_add_the_bot_is_not_served():
    assert not installed_here(real_interaction({"1": str(MEMBER)}))


def test_another_servers_install_does_not_count_here():
    assert not installed_here(real_interaction({"0": "999"}))


def test_a_dm_is_served_the_buttons_under_a_result_delivered_there_keep_working():
    assert installed_here(real_interaction({"0": "0"}, guild_id=None))


async def test_a_command_in_a_server_that_did_not_add_the_bot_is_refused_privately(tree):
    interaction = make_interaction()
    interaction.is_guild_integration.return_value = False
    interaction.type = discord.InteractionType.application_command

    assert await tree.interaction_check(interaction) is False

    interaction.response.send_message.assert_awaited_once()
    text = interaction.response.send_message.await_args.args[0]
    assert interaction.response.send_message.await_args.kwargs == {"ephemeral": True}
    assert "hasn't" in text and "Nothing was started or charged" in text
    assert "oauth2/authorize" in text  # how a server manager adds it
    interaction.response.defer.assert_not_awaited()


async def test_autocomplete_in_a_server_that_did_not_add_the_bot_suggests_nothing(tree):
    interaction = make_interaction()
    interaction.is_guild_integration.return_value = False
    interaction.type = discord.InteractionType.autocomplete

    assert await tree.interaction_check(interaction) is False

    interaction.response.autocomplete.assert_awaited_once_with([])
    interaction.response.send_message.assert_not_awaited()


async def test_a_server_that_added_the_bot_passes_the_check_untouched(tree):
    interaction = make_interaction()
    interaction.is_guild_integration.return_value = True

    assert await tree.interaction_check(interaction) is True
    assert await refuse_if_not_installed(interaction) is False
    interaction.response.send_message.assert_not_awaited()


async def test_a_dm_passes_the_check_whatever_the_owners(tree):
    interaction = make_interaction(guild_id=None)  # type: ignore[arg-type]
    interaction.is_guild_integration.return_value = False  # discord.py says so outside servers

    assert await tree.interaction_check(interaction) is True


@pytest.mark.parametrize("button", ["upgrade", "cancel", "keep"])
async def test_a_button_pressed_in_a_server_that_did_not_add_the_bot_is_refused(button):
    from cogs.stems import CancelButton, KeepButton, UpgradeButton

    item = {"upgrade": UpgradeButton, "cancel": CancelButton, "keep": KeepButton}[button](7)
    interaction = make_interaction()
    interaction.is_guild_integration.return_value = False
    interaction.type = discord.InteractionType.component

    assert await item.interaction_check(interaction) is False
    interaction.response.send_message.assert_awaited_once()
    assert interaction.response.send_message.await_args.kwargs == {"ephemeral": True}


async def test_a_button_pressed_in_a_dm_passes_the_check():
    from cogs.stems import KeepButton

    interaction = make_interaction(guild_id=None)  # type: ignore[arg-type]
    interaction.is_guild_integration.return_value = False

    assert await KeepButton(7).interaction_check(interaction) is True


async def test_page_buttons_in_a_server_that_did_not_add_the_bot_are_refused():
    from cogs.paging import Pager

    pager = Pager(AsyncMock(), owner_id=USER_ID, page=0, pages=2, refused=common.refusal("not yours"))
    interaction = make_interaction(user_id=USER_ID)
    interaction.is_guild_integration.return_value = False
    interaction.type = discord.InteractionType.component

    assert await pager.interaction_check(interaction) is False
    assert "hasn't" in interaction.response.send_message.await_args.args[0]


def test_the_bot_pings_nobody_unless_a_message_names_whom():
    # Every reply, follow-up and channel message inherits this: untrusted text can't ping anyone.
    # (Delivery names the member a late result is for; see test_delivery.)
    bot = StemBot(lambda client: SimpleNamespace())  # type: ignore[arg-type,return-value]

    assert bot.allowed_mentions is not None
    assert bot.allowed_mentions.to_dict() == {"parse": []}
