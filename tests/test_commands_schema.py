"""The slash command JSON exactly as a sync would send it, and when the bot syncs at all."""

from __future__ import annotations

import re
from types import SimpleNamespace
from unittest.mock import AsyncMock

import pytest
from discord import app_commands

from bot.discord_side.client import EXTENSIONS, StemBot
from bot.product import Mode
from bot.store import Store

STRING = 3
GUILD_CONTEXT = 0
DEV_GUILD_ID = 123_456_789_012_345_678
NAME = re.compile(r"^[-_a-z0-9]{1,32}$")


async def loaded_bot(services: object, **kwargs) -> StemBot:
    bot = StemBot(lambda client: services, **kwargs)  # type: ignore[arg-type,return-value]
    await bot.load_extension("cogs.split")
    await bot.load_extension("cogs.credits")
    return bot


@pytest.fixture
async def commands() -> dict[str, dict]:
    bot = await loaded_bot(SimpleNamespace())
    payload = [c.to_dict(bot.tree) for c in bot.tree.get_commands()]
    return {c["name"]: c for c in payload}


def every_option(commands: dict[str, dict]):
    for command in commands.values():
        yield from command.get("options", [])


# -- the command JSON --------------------------------------------------------------------------


def test_the_commands_are_split_and_credits(commands):
    assert sorted(commands) == ["credits", "split"]


def test_split_options_are_task_id_audio_id_and_mode_in_that_order(commands):
    assert [o["name"] for o in commands["split"]["options"]] == ["task_id", "audio_id", "mode"]


@pytest.mark.parametrize(("name", "required"), [("task_id", True), ("audio_id", False)])
def test_track_id_options_are_strings_of_1_to_100_chars_and_only_the_task_id_is_required(
    commands, name, required
):
    option = next(o for o in commands["split"]["options"] if o["name"] == name)

    assert option["type"] == STRING
    assert option.get("required", False) is required  # without audio_id, the track is chosen by title
    assert (option["min_length"], option["max_length"]) == (1, 100)
    # Suggestions (the member's own recent ids) while typing; any value may still be typed.
    assert "choices" not in option and option.get("autocomplete") is True


def test_mode_is_an_optional_string_choosing_between_the_two_modes(commands):
    option = next(o for o in commands["split"]["options"] if o["name"] == "mode")

    assert option["type"] == STRING
    assert option.get("required", False) is False
    assert sorted(c["value"] for c in option["choices"]) == ["separate_vocal", "split_stem"]


@pytest.mark.parametrize("mode", list(Mode))
def test_mode_choice_names_show_the_cost(commands, mode):
    option = next(o for o in commands["split"]["options"] if o["name"] == "mode")

    name = next(c["name"] for c in option["choices"] if c["value"] == mode.value)
    assert re.search(rf"\b{mode.cost} credits\b", name), name
    assert mode.label in name


def test_vocal_choice_reads_as_documented(commands):
    option = next(o for o in commands["split"]["options"] if o["name"] == "mode")

    names = {c["value"]: c["name"] for c in option["choices"]}
    assert names["separate_vocal"] == f"Vocals + instrumental (2 stems) — {Mode.SEPARATE_VOCAL.cost} credits"


def test_credits_takes_no_options(commands):
    assert commands["credits"].get("options", []) == []


def test_every_name_is_1_to_32_lowercase_chars(commands):
    names = [c["name"] for c in commands.values()] + [o["name"] for o in every_option(commands)]

    assert all(NAME.match(name) for name in names), names


def test_every_description_is_1_to_100_chars(commands):
    descriptions = [c["description"] for c in commands.values()]
    descriptions += [o["description"] for o in every_option(commands)]

    assert all(1 <= len(d) <= 100 for d in descriptions), descriptions


def test_every_choice_name_and_value_is_1_to_100_chars(commands):
    choices = [c for o in every_option(commands) for c in o.get("choices", [])]

    assert choices
    assert all(1 <= len(c["name"]) <= 100 and 1 <= len(str(c["value"])) <= 100 for c in choices)


def test_at_most_25_options_and_25_choices(commands):
    assert all(len(c.get("options", [])) <= 25 for c in commands.values())
    assert all(len(o.get("choices", [])) <= 25 for o in every_option(commands))


def test_required_options_come_before_optional_ones(commands):
    for command in commands.values():
        required = [bool(o.get("required")) for o in command.get("options", [])]
        assert required == sorted(required, reverse=True), command["name"]


@pytest.mark.parametrize("name", ["split", "credits"])
def test_commands_are_guild_only(commands, name):
    assert commands[name]["contexts"] == [GUILD_CONTEXT]
    assert commands[name]["dm_permission"] is False


# -- syncing only when needed ------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path):
    store = await Store.open(tmp_path / "t.db")
    yield store
    await store.close()


async def bot_with_fake_sync(store: Store, **kwargs) -> StemBot:
    bot = await loaded_bot(SimpleNamespace(store=store), **kwargs)
    bot.tree.sync = AsyncMock(return_value=[])  # type: ignore[method-assign]
    return bot


async def test_first_start_syncs(store):
    bot = await bot_with_fake_sync(store)

    assert await bot.sync_commands() is True
    bot.tree.sync.assert_awaited_once()
    assert bot.tree.sync.await_args.kwargs.get("guild") is None


async def test_unchanged_commands_are_not_synced_again(store):
    bot = await bot_with_fake_sync(store)
    await bot.sync_commands()

    assert await bot.sync_commands() is False
    bot.tree.sync.assert_awaited_once()


async def test_unchanged_commands_are_not_synced_after_a_restart(tmp_path):
    store = await Store.open(tmp_path / "t.db")
    await (await bot_with_fake_sync(store)).sync_commands()
    await store.close()

    store = await Store.open(tmp_path / "t.db")
    try:
        restarted = await bot_with_fake_sync(store)
        assert await restarted.sync_commands() is False
        restarted.tree.sync.assert_not_awaited()
    finally:
        await store.close()


async def test_force_sync_syncs_unchanged_commands(store):
    await (await bot_with_fake_sync(store)).sync_commands()
    forced = await bot_with_fake_sync(store, force_sync=True)

    assert await forced.sync_commands() is True
    forced.tree.sync.assert_awaited_once()


async def test_a_changed_command_set_is_synced_again(store):
    await (await bot_with_fake_sync(store)).sync_commands()
    changed = await bot_with_fake_sync(store)

    @app_commands.command(name="ping", description="Check the bot is alive")
    async def ping(interaction) -> None: ...

    changed.tree.add_command(ping)

    assert await changed.sync_commands() is True
    changed.tree.sync.assert_awaited_once()


async def test_a_removed_command_is_synced_again(store):
    await (await bot_with_fake_sync(store)).sync_commands()
    changed = await bot_with_fake_sync(store)
    changed.tree.remove_command("credits")

    assert await changed.sync_commands() is True


async def test_a_failed_sync_is_retried_next_time(store):
    failing = await bot_with_fake_sync(store)
    failing.tree.sync.side_effect = RuntimeError("Discord said no")
    with pytest.raises(RuntimeError):
        await failing.sync_commands()
    retry = await bot_with_fake_sync(store)

    assert await retry.sync_commands() is True
    retry.tree.sync.assert_awaited_once()


async def test_dev_guild_syncs_to_that_guild(store):
    bot = await bot_with_fake_sync(store, dev_guild_id=DEV_GUILD_ID)

    assert await bot.sync_commands() is True
    guild = bot.tree.sync.await_args.kwargs.get("guild")
    assert guild is not None and guild.id == DEV_GUILD_ID


async def test_dev_guild_sync_carries_both_commands(store):
    bot = await bot_with_fake_sync(store, dev_guild_id=DEV_GUILD_ID)

    await bot.sync_commands()

    guild = bot.tree.sync.await_args.kwargs["guild"]
    assert sorted(c.name for c in bot.tree.get_commands(guild=guild)) == ["credits", "split"]


async def test_a_global_sync_does_not_stand_in_for_a_dev_guild_sync(store):
    await (await bot_with_fake_sync(store)).sync_commands()
    dev = await bot_with_fake_sync(store, dev_guild_id=DEV_GUILD_ID)

    assert await dev.sync_commands() is True
    assert dev.tree.sync.await_args.kwargs["guild"].id == DEV_GUILD_ID


async def test_unchanged_dev_guild_commands_are_not_synced_again(store):
    await (await bot_with_fake_sync(store, dev_guild_id=DEV_GUILD_ID)).sync_commands()
    again = await bot_with_fake_sync(store, dev_guild_id=DEV_GUILD_ID)

    assert await again.sync_commands() is False
    again.tree.sync.assert_not_awaited()


# -- servers only: how every command may be installed and where it runs -------------------------

GUILD_INSTALL = 0


@pytest.fixture
async def every_command() -> dict[str, dict]:
    bot = StemBot(lambda client: SimpleNamespace())  # type: ignore[arg-type,return-value]
    for extension in EXTENSIONS:
        await bot.load_extension(extension)
    return {c.name: c.to_dict(bot.tree) for c in bot.tree.get_commands()}


def test_every_command_is_for_server_installs_only(every_command):
    # Unset, Discord follows the developer portal: with User Install on there, a member's own
    # install would run every command in servers that never added the bot.
    assert every_command
    assert {name: c.get("integration_types") for name, c in every_command.items()} == {
        name: [GUILD_INSTALL] for name in every_command
    }


def test_every_command_runs_in_server_channels_only(every_command):
    assert {name: c.get("contexts") for name, c in every_command.items()} == {
        name: [GUILD_CONTEXT] for name in every_command
    }


def test_subcommands_declare_no_install_type_of_their_own(every_command):
    # Discord takes integration types and contexts on top-level commands only.
    subcommands = [o for c in every_command.values() for o in c.get("options", []) if o.get("type") in (1, 2)]
    assert subcommands
    assert all("integration_types" not in o and "contexts" not in o for o in subcommands)
