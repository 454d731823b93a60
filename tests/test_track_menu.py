"""The menu of tracks (`/split` with the task id alone), its callback called directly with a spec'd
interaction and the real services over real SQLite and the API simulator."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import aiohttp
import pytest

from bot.models import CreditPolicy
from bot.store import Store
from cogs.split import SplitCog, TrackMenu
from testing.provider_api import SeparationApiSimulator
from tests.unit_helpers import GUILD_ID, USER_ID, RecordingScheduler, embed_text, make_interaction
from tests.wiring import make_services, make_settings


@pytest.fixture
async def world(tmp_path) -> AsyncIterator[SimpleNamespace]:
    store = await Store.open(tmp_path / "t.db", CreditPolicy(100, 2))
    async with SeparationApiSimulator(callbacks=False) as sim, aiohttp.ClientSession() as session:
        settings = make_settings(api_url=sim.base_url)
        services = make_services(store, session, settings, queue=RecordingScheduler())
        bot = SimpleNamespace(services=services)
        cog = SplitCog(bot)  # type: ignore[arg-type]
        bot.get_cog = lambda name: cog if name == SplitCog.__cog_name__ else None
        yield SimpleNamespace(store=store, sim=sim, services=services, bot=bot)
        await services.songs.stop()
    await store.close()


def chose(world: SimpleNamespace, audio_id: str, user_id: int = USER_ID):
    interaction = make_interaction(user_id=user_id)
    interaction.client = world.bot
    interaction.data = {"custom_id": "x", "component_type": 3, "values": [audio_id]}
    return interaction


async def test_a_menu_chosen_from_after_ten_minutes_says_it_stopped_and_starts_nothing(world) -> None:
    world.sim.add_generation("gen-old", titles=("Old", "Old"))
    assert await world.services.songs.tracks("gen-old") is not None
    menu = TrackMenu(USER_ID, "separate_vocal", int(time.time()) - 1, 77)
    interaction = chose(world, "gen-old-audio-1")
    await menu.callback(interaction)
    call = interaction.response.send_message.await_args
    assert call.kwargs["ephemeral"] is True and "stopped" in embed_text(call.kwargs["embed"])
    assert await world.store.jobs.recent(1, USER_ID, limit=10) == []
    assert world.sim.submits == []


async def test_a_choice_of_a_track_the_bot_does_not_know_starts_nothing(world) -> None:
    menu = TrackMenu(USER_ID, "separate_vocal", int(time.time()) + 600, 78)
    interaction = chose(world, "never-looked-up")
    await menu.callback(interaction)
    call = interaction.response.send_message.await_args
    assert call.kwargs["ephemeral"] is True and "isn't known" in embed_text(call.kwargs["embed"])
    interaction.response.defer.assert_not_awaited()


async def test_a_hostile_choice_value_is_refused_as_bad_input(world) -> None:
    menu = TrackMenu(USER_ID, "separate_vocal", int(time.time()) + 600, 79)
    interaction = chose(world, "<@everyone> [x](https://evil.example)")
    await menu.callback(interaction)
    call = interaction.response.send_message.await_args
    assert call.kwargs["ephemeral"] is True and "evil.example" not in embed_text(call.kwargs["embed"])
    interaction.response.defer.assert_not_awaited()


def test_the_menus_custom_id_fits_discord_and_matches_its_template() -> None:
    menu = TrackMenu(2**63, "separate_vocal", 99_999_999_999, 2**63)
    custom_id = menu.item.custom_id
    assert custom_id is not None and len(custom_id) <= 100
    assert TrackMenu.__discord_ui_compiled_template__.fullmatch(custom_id)


async def test_menus_of_one_task_for_two_modes_each_start_their_own_split(world) -> None:
    """A member who ran `/split` with the task id alone twice, once per mode, has two menus: a
    choice from the second is not "already chosen" because the first menu started a split of
    another mode (a menu's mode is in its custom id: that split cannot be this menu's)."""
    world.sim.add_generation("gen-modes", titles=("Twin", "Twin"))
    assert await world.services.songs.tracks("gen-modes") is not None
    until = int(time.time()) + 600
    vocals = TrackMenu(USER_ID, "separate_vocal", until, 90)
    twelve = TrackMenu(USER_ID, "split_stem", until, 91)

    await vocals.callback(first := chose(world, "gen-modes-audio-1"))
    await twelve.callback(second := chose(world, "gen-modes-audio-1"))

    for interaction in (first, second):
        interaction.response.defer.assert_awaited_once()
        interaction.response.send_message.assert_not_awaited()
    jobs = await world.store.jobs.recent(GUILD_ID, USER_ID, limit=10)
    assert sorted(job.mode.value for job in jobs) == ["separate_vocal", "split_stem"]

    # The same menu (or another of the same mode) still starts nothing more.
    await twelve.callback(again := chose(world, "gen-modes-audio-2"))
    assert "already chosen" in embed_text(again.response.send_message.await_args.kwargs["embed"])
    assert len(await world.store.jobs.recent(GUILD_ID, USER_ID, limit=10)) == 2
