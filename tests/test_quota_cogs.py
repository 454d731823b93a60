"""/quota, /credits and /split together: the command callbacks called with spec'd interaction and
member doubles, the real services on a real SQLite file with a settable clock, and a channel double
for the audit channel. Every test ends with the ledger agreeing with the balances."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import aiohttp
import discord
import pytest
from discord import app_commands

from bot.models import Delivery, KeepState, KeepStems, LedgerKind, MixStems, Period, StemLink
from bot.product import Mode
from bot.quota import HISTORY_PAGE_SIZE, Actor
from bot.render import common
from bot.store import Store
from cogs.credits import CreditsCog
from cogs.paging import Pager
from cogs.quota import KEEP_STEMS_CHOICES, MIX_STEMS_CHOICES, PERIOD_CHOICES, QuotaCog
from cogs.split import SplitCog
from tests.unit_helpers import (
    GUILD_ID,
    USER_ID,
    FakeClock,
    RecordingScheduler,
    embed_text,
    make_interaction,
    run_command,
)
from tests.wiring import make_services

MOD_ID = USER_ID + 1
OTHER_ID = USER_ID + 2
AUDIT_CHANNEL_ID = 555_555_555_555_555_555
MOD_ROLE, VIP_ROLE = 777_000_000_000_000_001, 777_000_000_000_000_002
TASK_ID, AUDIO_ID = "5c79a1b2e6f04d7a9c3b8e2f1a0d4c6b", "e231f4a8-6b0d-4c3e-9a7f-1d2b3c4e5f60"
MANAGE = discord.Permissions(manage_guild=True)


def member(user_id: int = USER_ID, role_ids: tuple[int, ...] = ()) -> MagicMock:
    """A `discord.Member` option value: a member with these roles."""
    double = MagicMock(spec=discord.Member)
    double.id = user_id
    double.roles = [discord.Object(role_id) for role_id in role_ids]
    return double


def role(role_id: int, *, everyone: bool = False) -> MagicMock:
    double = MagicMock(spec=discord.Role)
    double.id = role_id
    double.is_default.return_value = everyone
    return double


class World:
    def __init__(self, store: Store, session: aiohttp.ClientSession, clock: FakeClock) -> None:
        self.store, self.clock = store, clock
        self.scheduler = RecordingScheduler()
        services = make_services(store, session, queue=self.scheduler, clock=clock)
        self.quota = services.quota
        self.audit_channel = AsyncMock(spec=discord.TextChannel)
        self.bot = SimpleNamespace(
            services=services,
            get_channel=MagicMock(
                side_effect=lambda i: self.audit_channel if i == AUDIT_CHANNEL_ID else None
            ),
            fetch_channel=AsyncMock(side_effect=discord.NotFound(MagicMock(status=404), "unknown channel")),
        )
        self.cog = QuotaCog(self.bot)  # type: ignore[arg-type]
        self.split_cog = SplitCog(self.bot)  # type: ignore[arg-type]
        self.credits_cog = CreditsCog(self.bot)  # type: ignore[arg-type]

    # Interactions: a plain member, a moderator (Manage Server), or anyone with given rights.
    def member_interaction(self, user_id: int = USER_ID, **kwargs: Any) -> MagicMock:
        return make_interaction(user_id=user_id, **kwargs)

    def mod_interaction(self, **kwargs: Any) -> MagicMock:
        return make_interaction(user_id=MOD_ID, permissions=MANAGE, **kwargs)

    async def run(self, name: str, interaction: MagicMock, *args: Any, **kwargs: Any) -> MagicMock:
        command = getattr(QuotaCog, name)
        await run_command(self.cog, command, interaction, *args, **kwargs)
        return interaction

    async def split(self, interaction: MagicMock, mode: Mode = Mode.SEPARATE_VOCAL) -> MagicMock:
        choice = app_commands.Choice(name=common.mode_label(mode), value=mode.value)
        await run_command(self.split_cog, SplitCog.split, interaction, TASK_ID, AUDIO_ID, choice)
        return interaction

    async def credits(self, interaction: MagicMock) -> MagicMock:
        await run_command(self.credits_cog, CreditsCog.credits, interaction)
        return interaction

    async def balance(self, user_id: int = USER_ID) -> int:
        summary = await self.store.accounts.summary(GUILD_ID, user_id, role_ids=())
        return summary.balance

    async def enable_audit(self) -> None:
        await self.run("settings", self.mod_interaction(), audit_channel=SimpleNamespace(id=AUDIT_CHANNEL_ID))
        self.audit_channel.send.reset_mock()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock("2025-03-05 10:00")  # a Wednesday


@pytest.fixture
async def world(tmp_path, clock) -> AsyncIterator[World]:
    store = await Store.open(tmp_path / "quota.db", clock=clock)
    async with aiohttp.ClientSession() as session:
        yield World(store, session, clock)
    assert await store.accounts.ledger_mismatches() == []
    await store.close()


def reply(interaction: MagicMock) -> discord.Embed:
    """The one private reply the command sent, as a single embed."""
    interaction.followup.send.assert_awaited_once()
    call = interaction.followup.send.await_args
    assert call.kwargs.get("ephemeral") is True
    embeds = call.kwargs.get("embeds") or [call.kwargs.get("embed")]
    assert all(isinstance(e, discord.Embed) for e in embeds)
    return embeds[0]


def reply_text(interaction: MagicMock) -> str:
    call = interaction.followup.send.await_args
    embeds = call.kwargs.get("embeds") or [call.kwargs.get("embed")]
    return "\n".join(embed_text(e) for e in embeds)


def choice(value: str) -> app_commands.Choice[str]:
    return next(c for c in PERIOD_CHOICES if c.value == value)


def keep_choice(value: str) -> app_commands.Choice[str]:
    return next(c for c in KEEP_STEMS_CHOICES if c.value == value)


# -- every reply is private and deferred first ---------------------------------------------------


async def test_quota_commands_defer_privately_before_anything_else(world):
    interaction = await world.run("view", world.member_interaction())

    assert interaction.mock_calls[0][0] == "response.defer"
    assert interaction.response.defer.await_args.kwargs.get("ephemeral") is True


# -- /quota view and /credits --------------------------------------------------------------------


async def test_quota_view_of_yourself_shows_the_same_figures_as_credits(world):
    await world.run("allowance", world.mod_interaction(), 100, period=choice("weekly"))
    await world.run("grant", world.mod_interaction(), member(), 25)
    await world.split(world.member_interaction())

    view = embed_text(reply(await world.run("view", world.member_interaction())))
    quick = embed_text(reply(await world.credits(world.member_interaction())))

    # /credits: the essentials in a few lines; /quota view: the same figures, in full.
    assert "**115** credits · 90 allowance + 25 bonus" in quick  # 100 allowance + 25 bonus - 10 for the split
    assert "Refills to 100 credits <t:1741564800:R> (<t:1741564800:f>)" in quick  # next Monday 00:00 UTC
    assert "Splits running: 1 of 2" in quick
    assert len(quick.splitlines()) <= 9
    assert "**115** credits" in view
    assert "90 left this period" in view and "25 credits" in view
    assert "<t:1741564800:R> (<t:1741564800:f>)" in view
    assert "1 of 2" in view


async def test_a_member_cannot_view_someone_elses_credits(world):
    interaction = await world.run("view", world.member_interaction(), member(OTHER_ID))

    text = embed_text(reply(interaction))
    assert "Only moderators" in text and "Manage Server" in text
    assert await world.store.accounts.ledger(GUILD_ID, OTHER_ID) == []


async def test_a_moderator_can_view_anyones_credits(world):
    interaction = await world.run("view", world.mod_interaction(), member(OTHER_ID))

    text = embed_text(reply(interaction))
    assert f"<@{OTHER_ID}>" in text and "**100** credits" in text


async def test_an_administrator_counts_as_a_moderator(world):
    admin = world.member_interaction(permissions=discord.Permissions(administrator=True))

    await world.run("grant", admin, member(OTHER_ID), 5)

    assert await world.balance(OTHER_ID) == 105


async def test_a_members_role_tier_shows_in_credits(world):
    await world.run("allowance", world.mod_interaction(), 300, role=role(VIP_ROLE))

    text = embed_text(reply(await world.credits(world.member_interaction(role_ids=(VIP_ROLE,)))))

    assert "**300** credits" in text


# -- permissions ---------------------------------------------------------------------------------

MODERATOR_ACTIONS = [
    pytest.param("grant", (50,), {}, id="grant"),
    pytest.param("set_balance", (5,), {}, id="set"),
    pytest.param("reset", (), {}, id="reset"),
    pytest.param("block", (), {"reason": "x"}, id="block"),
    pytest.param("unblock", (), {}, id="unblock"),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), MODERATOR_ACTIONS)
async def test_a_member_without_rights_is_refused_every_member_action_and_nothing_changes(
    world, name, args, kwargs
):
    await world.run("grant", world.mod_interaction(), member(OTHER_ID), 7)
    ledger_before = await world.store.accounts.ledger(GUILD_ID, OTHER_ID)
    interaction = world.member_interaction(
        permissions=discord.Permissions(manage_messages=True, kick_members=True)
    )

    await world.run(name, interaction, member(OTHER_ID), *args, **kwargs)

    assert "Only moderators can" in embed_text(reply(interaction))
    assert "Nothing was changed" in embed_text(reply(interaction))
    assert await world.store.accounts.ledger(GUILD_ID, OTHER_ID) == ledger_before


async def test_a_member_without_rights_cannot_change_allowances(world):
    interaction = await world.run(
        "allowance", world.member_interaction(), 999, period=choice("daily"), apply_now=True
    )

    assert "Only moderators can change allowances" in embed_text(reply(interaction))
    settings, rules = await world.store.economy.get(GUILD_ID)
    assert (settings.period, rules) == (Period.NEVER, [])


async def test_a_member_without_rights_cannot_see_or_change_settings(world):
    interaction = await world.run("settings", world.member_interaction(), cooldown_seconds=999)

    assert "Only moderators" in embed_text(reply(interaction))
    settings, _ = await world.store.economy.get(GUILD_ID)
    assert settings.cooldown_seconds == 0


async def test_a_member_cannot_make_themselves_a_moderator(world):
    interaction = await world.run("settings", world.member_interaction(), moderator_role=role(MOD_ROLE))

    assert "Only moderators" in embed_text(reply(interaction))
    assert not await world.quota.is_moderator(
        GUILD_ID,
        SimpleNamespace(user_id=USER_ID, role_ids=(MOD_ROLE,), manage_guild=False),  # type: ignore[arg-type]
    )


async def test_everyone_cannot_be_the_moderator_role(world):
    interaction = await world.run(
        "settings", world.mod_interaction(), moderator_role=role(GUILD_ID, everyone=True)
    )

    assert "`moderator_role`" in embed_text(reply(interaction))
    assert not await world.quota.is_moderator(GUILD_ID, Actor(USER_ID, (GUILD_ID,), manage_guild=False))


async def test_the_moderator_role_grants_moderator_rights(world):
    await world.run("settings", world.mod_interaction(), moderator_role=role(MOD_ROLE))
    helper = world.member_interaction(user_id=OTHER_ID, role_ids=(MOD_ROLE,))

    await world.run("grant", helper, member(), 40, reason="event prize")

    assert await world.balance() == 140
    assert (await world.store.accounts.ledger(GUILD_ID, USER_ID))[-1].actor_id == OTHER_ID


@pytest.mark.parametrize(
    "options",
    [
        {"moderator_role": "every member's role"},
        {"clear": "moderator_role"},
        {"audit_channel": "another channel"},
        {"clear": "audit_channel"},
    ],
    ids=["moderator_role", "clear moderator_role", "audit_channel", "clear audit_channel"],
)
async def test_a_role_moderator_cannot_change_who_moderates_or_where_it_is_recorded(world, options):
    await world.run("settings", world.mod_interaction(), moderator_role=role(MOD_ROLE))
    await world.enable_audit()
    values = {
        "moderator_role": role(VIP_ROLE),
        "audit_channel": SimpleNamespace(id=AUDIT_CHANNEL_ID + 1),
        "clear": app_commands.Choice(name="x", value=options.get("clear", "")),
    }
    helper = world.member_interaction(user_id=OTHER_ID, role_ids=(MOD_ROLE, VIP_ROLE))

    interaction = await world.run("settings", helper, **{name: values[name] for name in options})

    text = embed_text(reply(interaction))
    assert "Only members with the Manage Server permission" in text and "Nothing was changed" in text
    settings, _ = await world.store.economy.get(GUILD_ID)
    assert (settings.moderator_role_id, settings.audit_channel_id) == (MOD_ROLE, AUDIT_CHANNEL_ID)
    world.audit_channel.send.assert_not_awaited()
    assert not await world.quota.is_moderator(GUILD_ID, Actor(USER_ID, (VIP_ROLE,), manage_guild=False))


async def test_a_role_moderator_may_change_the_other_settings(world):
    await world.run("settings", world.mod_interaction(), moderator_role=role(MOD_ROLE))
    await world.enable_audit()
    helper = world.member_interaction(user_id=OTHER_ID, role_ids=(MOD_ROLE,))

    interaction = await world.run("settings", helper, cooldown_seconds=60)

    assert "cooldown between splits none → 1 minute" in reply_text(interaction)
    settings, _ = await world.store.economy.get(GUILD_ID)
    assert settings.cooldown_seconds == 60
    world.audit_channel.send.assert_awaited_once()


async def test_the_refusal_names_the_moderator_role_when_one_is_set(world):
    await world.run("settings", world.mod_interaction(), moderator_role=role(MOD_ROLE))

    interaction = await world.run("grant", world.member_interaction(), member(), 40)

    assert f"<@&{MOD_ROLE}>" in embed_text(reply(interaction))


# -- grants, set, reset ----------------------------------------------------------------------------


async def test_a_grant_adds_bonus_the_member_then_sees(world):
    interaction = await world.run("grant", world.mod_interaction(), member(), 50, reason="won the contest")

    text = embed_text(reply(interaction))
    assert "**100** → **150**" in text and "won the contest" in text
    credits = embed_text(reply(await world.credits(world.member_interaction())))
    assert "**150** credits · 100 allowance + 50 bonus" in credits
    view = embed_text(reply(await world.run("view", world.member_interaction())))
    assert "**150** credits" in view and "50 credits\nkept until spent" in view


async def test_a_grant_that_would_go_negative_is_refused_with_the_balance(world):
    interaction = await world.run("grant", world.mod_interaction(), member(), -101)

    text = embed_text(reply(interaction))
    assert "has 100 credits" in text and "101" in text and "Nothing was changed" in text
    assert await world.balance() == 100


async def test_a_grant_of_nothing_is_refused(world):
    interaction = await world.run("grant", world.mod_interaction(), member(), 0)

    assert "`amount`" in embed_text(reply(interaction))
    assert [e.kind for e in await world.store.accounts.ledger(GUILD_ID, USER_ID)] == []


async def test_set_and_reset_say_what_they_did(world):
    await world.run("grant", world.mod_interaction(), member(), 20)

    set_reply = embed_text(reply(await world.run("set_balance", world.mod_interaction(), member(), 250)))
    reset_reply = embed_text(
        reply(await world.run("reset", world.mod_interaction(), member(), reason="new season"))
    )

    assert "**120** → **250**" in set_reply and "100 allowance + 150 bonus" in set_reply
    assert "**250** → **100**" in reset_reply and "new season" in reset_reply
    assert await world.balance() == 100


async def test_every_change_is_a_ledger_row_with_actor_reason_and_before_after(world):
    await world.run("grant", world.mod_interaction(), member(), 30, reason="thanks")
    await world.run("set_balance", world.mod_interaction(), member(), 70, reason="typo fix")

    rows = (await world.store.accounts.ledger(GUILD_ID, USER_ID))[-2:]
    assert [(r.kind, r.actor_id, r.reason, r.balance_before, r.balance_after) for r in rows] == [
        (LedgerKind.GRANT, MOD_ID, "thanks", 100, 130),
        (LedgerKind.SET, MOD_ID, "typo fix", 130, 70),
    ]


async def test_a_reason_is_kept_to_one_line(world):
    await world.run("grant", world.mod_interaction(), member(), 3, reason="line one\nline two\t\x00end")

    assert (await world.store.accounts.ledger(GUILD_ID, USER_ID))[-1].reason == "line one line two end"


# -- blocks ----------------------------------------------------------------------------------------


async def test_a_blocked_member_is_told_and_nothing_is_charged_or_sent(world):
    await world.run("block", world.mod_interaction(), member(), reason="abusing the bot")

    interaction = await world.split(world.member_interaction())

    assert interaction.followup.send.await_args.kwargs.get("ephemeral") is True
    text = embed_text(interaction.followup.send.await_args.kwargs["embed"])
    assert "blocked you from starting splits" in text and "abusing the bot" in text
    assert "Nothing was charged" in text
    assert await world.store.jobs.recent(GUILD_ID, USER_ID) == []
    assert world.scheduler.calls == []
    assert await world.balance() == 100


async def test_an_unblocked_member_can_split_again(world):
    await world.run("block", world.mod_interaction(), member())
    await world.run("unblock", world.mod_interaction(), member())

    await world.split(world.member_interaction())

    assert len(world.scheduler.calls) == 1


async def test_blocking_twice_says_so_and_records_once(world):
    await world.run("block", world.mod_interaction(), member())

    again = await world.run("block", world.mod_interaction(), member())

    assert "already blocked" in embed_text(reply(again))
    assert [e.kind for e in await world.store.accounts.ledger(GUILD_ID, USER_ID)].count(LedgerKind.BLOCK) == 1


async def test_a_blocked_member_sees_it_in_credits(world):
    await world.run("block", world.mod_interaction(), member(), reason="spam")

    text = embed_text(reply(await world.credits(world.member_interaction())))

    assert "Blocked from starting splits" in text and "spam" in text


# -- cooldowns and splits at once -------------------------------------------------------------------


async def test_a_cooldown_refusal_says_when_they_can_split_again(world, clock):
    await world.run("settings", world.mod_interaction(), cooldown_seconds=300)
    await world.split(world.member_interaction())
    clock.advance(60)

    interaction = await world.split(world.member_interaction())

    text = embed_text(interaction.followup.send.await_args.kwargs["embed"])
    [job] = await world.store.jobs.recent(GUILD_ID, USER_ID)
    assert f"<t:{int(job.created_at + 300 + 0.999)}:R>" in text
    assert "Nothing was charged" in text
    assert len(world.scheduler.calls) == 1


async def test_a_servers_jobs_per_member_limits_splits_at_once(world):
    await world.run("settings", world.mod_interaction(), jobs_per_member=1)
    await world.split(world.member_interaction())

    interaction = await world.split(world.member_interaction())

    text = embed_text(interaction.followup.send.await_args.kwargs["embed"])
    assert "already have 1 split running" in text
    assert len(world.scheduler.calls) == 1


# -- allowances --------------------------------------------------------------------------------------


async def test_an_allowance_change_says_it_waits_for_the_next_refill_and_when(world):
    interaction = await world.run("allowance", world.mod_interaction(), 200, period=choice("weekly"))

    text = embed_text(reply(interaction))
    assert "Takes effect at the next refill" in text
    assert "<t:1741564800:R> (<t:1741564800:f>)" in text  # Monday 2025-03-10 00:00 UTC
    assert "200 credits** per week" in text and "was 100 once" in text


async def test_apply_now_says_it_was_applied_and_refills_at_once(world):
    await world.split(world.member_interaction())

    interaction = await world.run("allowance", world.mod_interaction(), 200, apply_now=True)

    assert "Applied now" in embed_text(reply(interaction))
    assert await world.balance() == 200


async def test_a_one_off_allowance_change_says_who_it_reaches(world):
    interaction = await world.run("allowance", world.mod_interaction(), 30)

    assert "New members start with it" in embed_text(reply(interaction))


async def test_a_role_cannot_have_its_own_period(world):
    await world.run("allowance", world.mod_interaction(), 100, period=choice("weekly"))

    interaction = await world.run(
        "allowance", world.mod_interaction(), 300, period=choice("daily"), role=role(VIP_ROLE)
    )

    assert "`period`" in embed_text(reply(interaction))
    _, rules = await world.store.economy.get(GUILD_ID)
    assert [r.role_id for r in rules] == [0]


async def test_everyone_as_the_role_sets_the_servers_allowance(world):
    interaction = await world.run(
        "allowance", world.mod_interaction(), 40, role=role(GUILD_ID, everyone=True)
    )

    assert "Server allowance changed" in embed_text(reply(interaction))
    assert (await world.quota.overview(GUILD_ID)).server_allowance == 40


# -- settings ------------------------------------------------------------------------------------------


async def test_settings_without_options_show_the_current_values(world):
    interaction = await world.run("settings", world.mod_interaction())

    text = reply_text(interaction)
    assert "100 credits once" in text and "00:00" in text and "UTC" in text
    assert "2 per member (bot default)" in text and "Cooldown\nnone" in text
    assert "Changed" not in text


async def test_settings_change_and_show_what_changed(world):
    interaction = await world.run(
        "settings",
        world.mod_interaction(),
        refill_time="18:30",
        timezone="europe/berlin",
        cooldown_seconds=90,
    )

    text = reply_text(interaction)
    assert "refill time 00:00 UTC → 18:30 Europe/Berlin" in text
    assert "cooldown between splits none → 1 minute 30 seconds" in text
    settings, _ = await world.store.economy.get(GUILD_ID)
    assert (settings.refill_time, settings.timezone, settings.cooldown_seconds) == (
        "18:30",
        "Europe/Berlin",
        90,
    )


@pytest.mark.parametrize(
    ("option", "value"),
    [("refill_time", "25:00"), ("refill_time", "noon"), ("timezone", "Mars/Olympus_Mons")],
)
async def test_bad_settings_are_refused_and_change_nothing(world, option, value):
    interaction = await world.run("settings", world.mod_interaction(), **{option: value})

    assert f"`{option}`" in embed_text(reply(interaction))
    settings, _ = await world.store.economy.get(GUILD_ID)
    assert (settings.refill_time, settings.timezone) == ("00:00", "UTC")


async def test_clear_unsets_a_setting(world):
    await world.run("settings", world.mod_interaction(), moderator_role=role(MOD_ROLE))

    await world.run(
        "settings", world.mod_interaction(), clear=app_commands.Choice(name="x", value="moderator_role")
    )

    settings, _ = await world.store.economy.get(GUILD_ID)
    assert settings.moderator_role_id is None


async def test_settings_say_in_plain_words_that_members_choose_to_keep_stems_by_default(world):
    text = reply_text(await world.run("settings", world.mod_interaction()))

    assert "Keep in Discord\nMembers choose: each result has a Keep in Discord button" in text
    assert "Create Public Threads, Send Messages in Threads and Attach Files" in text


async def test_a_moderator_sets_keep_stems_and_sees_what_it_means(world):
    interaction = await world.run("settings", world.mod_interaction(), keep_stems=keep_choice("always"))

    text = reply_text(interaction)
    assert "keep in Discord members choose → always" in text
    assert "Always: every successful split is kept in Discord" in text
    settings, _ = await world.store.economy.get(GUILD_ID)
    assert settings.keep_stems is KeepStems.ALWAYS


async def test_keep_stems_off_says_there_is_no_button_and_asks_for_no_permissions(world):
    text = reply_text(await world.run("settings", world.mod_interaction(), keep_stems=keep_choice("off")))

    assert "Off: no button" in text and "14 days" in text
    assert "Create Public Threads" not in text


async def test_a_member_without_rights_cannot_change_keep_stems(world):
    interaction = await world.run("settings", world.member_interaction(), keep_stems=keep_choice("off"))

    assert "Only moderators" in embed_text(reply(interaction))
    settings, _ = await world.store.economy.get(GUILD_ID)
    assert settings.keep_stems is KeepStems.BUTTON


async def test_a_role_moderator_may_change_keep_stems(world):
    await world.run("settings", world.mod_interaction(), moderator_role=role(MOD_ROLE))
    helper = world.member_interaction(user_id=OTHER_ID, role_ids=(MOD_ROLE,))

    await world.run("settings", helper, keep_stems=keep_choice("off"))

    settings, _ = await world.store.economy.get(GUILD_ID)
    assert settings.keep_stems is KeepStems.OFF


async def test_with_keep_stems_always_a_delivered_split_is_queued_to_be_kept_with_its_upload_limit(world):
    await world.run("settings", world.mod_interaction(), keep_stems=keep_choice("always"))
    await world.split(world.member_interaction(filesize_limit=25 * 1024 * 1024))
    [job] = await world.store.jobs.recent(GUILD_ID, USER_ID)
    stems = [
        StemLink("vocal", "https://cdn.example/v.mp3"),
        StemLink("instrumental", "https://cdn.example/i.mp3"),
    ]
    await world.store.reservations.settle(job.id, succeeded=True, stems=stems, links_expire_at=2e9)

    await world.store.jobs.record_delivery(job.id, Delivery.DELIVERED)

    keep = await world.store.keeps.get(job.id)
    assert keep is not None and keep.state is KeepState.PENDING and keep.requested_by is None
    assert keep.upload_limit == 25 * 1024 * 1024


async def test_with_keep_stems_members_choose_nothing_is_kept_without_a_press(world):
    await world.split(world.member_interaction())
    [job] = await world.store.jobs.recent(GUILD_ID, USER_ID)
    stems = [StemLink("vocal", "https://cdn.example/v.mp3")]
    await world.store.reservations.settle(job.id, succeeded=True, stems=stems, links_expire_at=2e9)

    await world.store.jobs.record_delivery(job.id, Delivery.DELIVERED)

    assert await world.store.keeps.get(job.id) is None


async def test_time_zone_autocomplete_suggests_matching_zones_within_discords_limit(world):
    interaction = world.mod_interaction()

    berlin = await QuotaCog.settings._params["timezone"].autocomplete(world.cog, interaction, "berl")  # type: ignore[union-attr]
    everything = await QuotaCog.settings._params["timezone"].autocomplete(world.cog, interaction, "a")  # type: ignore[union-attr]

    assert [c.value for c in berlin] == ["Europe/Berlin"]
    assert len(everything) == 25


# -- history ------------------------------------------------------------------------------------------


async def test_history_is_one_page_without_buttons_when_short(world):
    await world.run("grant", world.mod_interaction(), member(), 5, reason="hello")

    interaction = await world.run("history", world.member_interaction())

    call = interaction.followup.send.await_args
    assert "view" not in call.kwargs
    text = embed_text(call.kwargs["embed"])
    assert "**+5** → 105" in text and "bonus granted: hello" in text and f"<@{MOD_ID}>" in text
    assert "**+100** → 100" in text and "starting credits" in text and "StemBot" in text
    assert text.index("+5") < text.index("+100")  # newest first


async def test_history_pages_with_prev_and_next_buttons(world):
    for n in range(1, 25):
        await world.run("grant", world.mod_interaction(), member(), n)
    interaction = world.member_interaction()
    interaction.followup.send.return_value = MagicMock(spec=discord.WebhookMessage)

    await world.run("history", interaction)

    call = interaction.followup.send.await_args
    pager = call.kwargs["view"]
    assert isinstance(pager, Pager) and call.kwargs.get("wait") is True
    assert pager.timeout and pager.timeout > 0
    assert (pager.prev_page.disabled, pager.next_page.disabled) == (True, False)
    assert embed_text(call.kwargs["embed"]).count("\n<t:") == HISTORY_PAGE_SIZE
    assert "Page 1 of 3" in embed_text(call.kwargs["embed"])

    press = world.member_interaction()
    assert await pager.interaction_check(press)
    await pager.next_page.callback(press)
    await pager.next_page.callback(press)

    shown = press.response.edit_message.await_args.kwargs
    assert "Page 3 of 3" in embed_text(shown["embed"])
    assert "starting credits" in embed_text(shown["embed"])
    assert (pager.prev_page.disabled, pager.next_page.disabled) == (False, True)


async def test_only_whoever_ran_history_can_turn_its_pages(world):
    for n in range(1, 25):
        await world.run("grant", world.mod_interaction(), member(), n)
    interaction = world.member_interaction()
    await world.run("history", interaction)
    pager = interaction.followup.send.await_args.kwargs["view"]
    stranger = world.member_interaction(user_id=OTHER_ID)

    assert await pager.interaction_check(stranger) is False

    assert stranger.response.send_message.await_args.kwargs.get("ephemeral") is True
    stranger.response.edit_message.assert_not_awaited()


async def test_history_buttons_are_greyed_out_when_they_time_out(world):
    for n in range(1, 25):
        await world.run("grant", world.mod_interaction(), member(), n)
    interaction = world.member_interaction()
    message = AsyncMock(spec=discord.WebhookMessage)
    interaction.followup.send.return_value = message
    await world.run("history", interaction)
    pager = interaction.followup.send.await_args.kwargs["view"]

    await pager.on_timeout()

    assert pager.prev_page.disabled and pager.next_page.disabled
    message.edit.assert_awaited_once_with(view=pager)


async def test_a_moderator_who_loses_their_rights_cannot_turn_the_pages_any_further(world):
    await world.run("settings", world.mod_interaction(), moderator_role=role(MOD_ROLE))
    for n in range(1, 25):
        await world.run("grant", world.mod_interaction(), member(), n)
    helper = world.member_interaction(user_id=OTHER_ID, role_ids=(MOD_ROLE,))
    await world.run("history", helper, member())
    pager = helper.followup.send.await_args.kwargs["view"]
    await world.run("settings", world.mod_interaction(), moderator_role=role(VIP_ROLE))
    press = world.member_interaction(user_id=OTHER_ID)

    await pager.next_page.callback(press)

    assert "Only moderators" in embed_text(press.response.send_message.await_args.kwargs["embed"])
    press.response.edit_message.assert_not_awaited()


async def test_a_member_cannot_see_someone_elses_history(world):
    interaction = await world.run("history", world.member_interaction(), member(OTHER_ID))

    assert "Only moderators" in embed_text(reply(interaction))


async def test_a_moderator_can_see_anyones_history(world):
    await world.split(world.member_interaction())

    interaction = await world.run("history", world.mod_interaction(), member())

    text = embed_text(reply(interaction))
    assert "Job #1 started" in text and "**-10** → 90" in text


# -- audit channel -------------------------------------------------------------------------------------


async def test_each_moderator_action_posts_one_line_to_the_audit_channel(world):
    await world.enable_audit()

    await world.run("grant", world.mod_interaction(), member(), 50, reason="contest")
    await world.run("set_balance", world.mod_interaction(), member(), 10)
    await world.run("reset", world.mod_interaction(), member())
    await world.run("block", world.mod_interaction(), member(), reason="spam")
    await world.run("unblock", world.mod_interaction(), member())
    await world.run("allowance", world.mod_interaction(), 70, period=choice("daily"))
    await world.run("settings", world.mod_interaction(), cooldown_seconds=5)
    await world.run("settings", world.mod_interaction(), keep_stems=keep_choice("off"))

    lines = [call.args[0] for call in world.audit_channel.send.await_args_list]
    assert len(lines) == 8
    assert all("\n" not in line and len(line) <= 2000 for line in lines)
    assert all(f"<@{MOD_ID}>" in line for line in lines)
    assert "granted" in lines[0] and "+50" in lines[0] and "contest" in lines[0] and "100 → 150" in lines[0]
    assert "blocked" in lines[3] and "spam" in lines[3]
    assert "70 credits per day" in lines[5]
    assert "keep in Discord members choose → off" in lines[7]
    assert all(
        call.kwargs["allowed_mentions"].to_dict()["parse"] == []
        for call in world.audit_channel.send.await_args_list
    )


async def test_looking_is_not_posted_to_the_audit_channel(world):
    await world.enable_audit()

    await world.run("view", world.mod_interaction(), member())
    await world.run("history", world.mod_interaction(), member())
    await world.run("settings", world.mod_interaction())

    world.audit_channel.send.assert_not_awaited()


async def test_a_failed_audit_post_never_blocks_the_action_and_the_moderator_is_told(world):
    await world.enable_audit()
    world.audit_channel.send.side_effect = discord.Forbidden(MagicMock(status=403), "Missing Access")

    interaction = await world.run("grant", world.mod_interaction(), member(), 50)

    assert await world.balance() == 150
    assert "Couldn't post this in the audit channel" in embed_text(reply(interaction))


async def test_an_audit_channel_that_is_gone_is_logged_not_fatal(world, caplog):
    await world.run(
        "settings", world.mod_interaction(), audit_channel=SimpleNamespace(id=AUDIT_CHANNEL_ID + 1)
    )

    interaction = await world.run("grant", world.mod_interaction(), member(), 50)

    assert await world.balance() == 150
    assert "Credits granted" in embed_text(reply(interaction))
    assert any("audit channel" in r.getMessage() for r in caplog.records)


async def test_no_audit_channel_means_no_post(world):
    await world.run("grant", world.mod_interaction(), member(), 50)

    world.bot.get_channel.assert_not_called()
    world.audit_channel.send.assert_not_awaited()


# -- the books ----------------------------------------------------------------------------------------


async def test_the_ledger_agrees_with_balances_after_a_mixed_session(world, clock):
    await world.run("allowance", world.mod_interaction(), 100, period=choice("daily"))
    await world.run("allowance", world.mod_interaction(), 150, role=role(VIP_ROLE))
    for day in range(3):
        await world.split(world.member_interaction(role_ids=(VIP_ROLE,)), Mode.SPLIT_STEM)
        await world.run("grant", world.mod_interaction(), member(role_ids=(VIP_ROLE,)), 7)
        await world.run("grant", world.mod_interaction(), member(role_ids=(VIP_ROLE,)), -3)
        assert await world.store.accounts.ledger_mismatches() == []
        clock.set(f"2025-03-0{6 + day} 00:00")

    text = embed_text(reply(await world.credits(world.member_interaction(role_ids=(VIP_ROLE,)))))
    assert re.search(r"\*\*\d+\*\* credits", text)
    assert await world.store.accounts.ledger_mismatches() == []


async def test_settings_say_that_members_may_mix_stems_for_free_by_default(world):
    text = reply_text(await world.run("settings", world.mod_interaction()))

    assert "Mix stems\nOn, free: each full split has a Mix stems button" in text


async def test_a_moderator_turns_mixing_off_and_prices_it(world):
    interaction = await world.run(
        "settings", world.mod_interaction(), mix_stems=mix_choice("off"), mix_price=20
    )

    text = reply_text(interaction)
    assert "mix stems on → off" in text and "mix price free → 20 credits" in text
    assert "Off: no Mix stems button" in text
    settings, _ = await world.store.economy.get(GUILD_ID)
    assert (settings.mix_stems, settings.mix_price) == (MixStems.OFF, 20)


def mix_choice(value: str) -> app_commands.Choice[str]:
    return next(c for c in MIX_STEMS_CHOICES if c.value == value)
