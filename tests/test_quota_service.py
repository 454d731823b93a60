"""The quota service's own checks, beyond what Discord enforces on options (which users and
clients can get around): bounds, reasons, moderator rights. Real store on tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot import economy
from bot.credits import CreditService
from bot.errors import InvalidOption, NeedsManageServer, NotAModerator
from bot.models import KeepStems, MixStems, Period
from bot.quota import Actor, Clearable, Member, QuotaService, SettingsChange, clean_reason
from bot.store import Store
from tests.unit_helpers import FakeClock

GUILD = 10
MOD = Actor(1, manage_guild=True)
MEMBER = Member(2)


@pytest.fixture
async def quota(tmp_path) -> AsyncIterator[QuotaService]:
    clock = FakeClock()
    store = await Store.open(tmp_path / "service.db", clock=clock)
    yield QuotaService(store, CreditService(store.accounts), clock=clock)
    assert await store.accounts.ledger_mismatches() == []
    await store.close()


@pytest.mark.parametrize("amount", [1_000_001, -1_000_001, 0])
async def test_grants_beyond_the_bounds_are_refused(quota, amount):
    with pytest.raises(InvalidOption, match="amount"):
        await quota.grant(GUILD, MOD, MEMBER, amount)


async def test_a_grant_of_exactly_a_million_is_fine(quota):
    done = await quota.grant(GUILD, MOD, MEMBER, 1_000_000)

    assert done.adjustment.after is not None and done.adjustment.after.total == 1_000_100


@pytest.mark.parametrize("amount", [-1, 1_000_001])
async def test_set_and_allowance_amounts_beyond_the_bounds_are_refused(quota, amount):
    with pytest.raises(InvalidOption):
        await quota.set_balance(GUILD, MOD, MEMBER, amount)
    with pytest.raises(InvalidOption):
        await quota.set_allowance(GUILD, MOD, amount)


async def test_a_reason_over_200_characters_is_refused(quota):
    with pytest.raises(InvalidOption, match="reason"):
        await quota.grant(GUILD, MOD, MEMBER, 5, "x" * 201)


def test_reasons_become_one_clean_line_or_nothing():
    assert clean_reason("  two\n\nlines\t here ") == "two lines here"
    assert clean_reason(" \n ") is None
    assert clean_reason(None) is None


async def test_settings_out_of_bounds_are_refused(quota):
    with pytest.raises(InvalidOption, match="jobs_per_member"):
        await quota.update_settings(GUILD, MOD, SettingsChange(jobs_per_member=101))
    with pytest.raises(InvalidOption, match="cooldown_seconds"):
        await quota.update_settings(GUILD, MOD, SettingsChange(cooldown_seconds=86_401))


async def test_a_setting_cannot_be_set_and_cleared_at_once(quota):
    with pytest.raises(InvalidOption, match="clear"):
        await quota.update_settings(
            GUILD, MOD, SettingsChange(audit_channel_id=5, clear=frozenset({Clearable.AUDIT_CHANNEL}))
        )


async def test_keep_stems_is_members_choice_until_a_moderator_changes_it(quota):
    assert (await quota.overview(GUILD)).settings.keep_stems is KeepStems.BUTTON

    update = await quota.update_settings(GUILD, MOD, SettingsChange(keep_stems=KeepStems.ALWAYS))

    assert update.before.keep_stems is KeepStems.BUTTON
    assert update.after.settings.keep_stems is KeepStems.ALWAYS
    assert (await quota.overview(GUILD)).settings.keep_stems is KeepStems.ALWAYS


async def test_a_member_cannot_change_keep_stems(quota):
    with pytest.raises(NotAModerator):
        await quota.update_settings(GUILD, Actor(3), SettingsChange(keep_stems=KeepStems.OFF))

    assert (await quota.overview(GUILD)).settings.keep_stems is KeepStems.BUTTON


async def test_anyone_may_view_themselves_without_rights(quota):
    summary = await quota.view(GUILD, Actor(MEMBER.user_id))

    assert summary.balance == 100


async def test_a_role_allowance_may_repeat_the_servers_period(quota):
    await quota.set_allowance(GUILD, MOD, 100, period=Period.WEEKLY)

    update = await quota.set_allowance(GUILD, MOD, 300, period=Period.WEEKLY, role_id=77)

    assert (update.period, update.previous_period) == (Period.WEEKLY, Period.WEEKLY)


@pytest.mark.parametrize(
    "action",
    [
        lambda q, a: q.grant(GUILD, a, MEMBER, 5),
        lambda q, a: q.set_balance(GUILD, a, MEMBER, 5),
        lambda q, a: q.reset(GUILD, a, MEMBER),
        lambda q, a: q.block(GUILD, a, MEMBER),
        lambda q, a: q.unblock(GUILD, a, MEMBER),
        lambda q, a: q.set_allowance(GUILD, a, 5),
        lambda q, a: q.update_settings(GUILD, a, SettingsChange()),
        lambda q, a: q.view(GUILD, a, MEMBER),
        lambda q, a: q.history(GUILD, a, MEMBER.user_id),
    ],
)
async def test_every_moderator_action_needs_a_moderator(quota, action):
    with pytest.raises(NotAModerator):
        await action(quota, Actor(3, role_ids=(4,), manage_guild=False))


ROLE_MOD = Actor(5, role_ids=(77,), manage_guild=False)


@pytest.fixture
async def role_mod_quota(quota) -> QuotaService:
    """A server whose moderator role (77) is set and audit channel (88) chosen by a manager."""
    await quota.update_settings(GUILD, MOD, SettingsChange(moderator_role_id=77, audit_channel_id=88))
    return quota


@pytest.mark.parametrize(
    "change",
    [
        SettingsChange(moderator_role_id=99),
        SettingsChange(audit_channel_id=99),
        SettingsChange(clear=frozenset({Clearable.MODERATOR_ROLE})),
        SettingsChange(clear=frozenset({Clearable.AUDIT_CHANNEL})),
        SettingsChange(cooldown_seconds=5, audit_channel_id=99),
    ],
)
async def test_a_role_moderator_cannot_change_who_moderates_or_the_audit_channel(role_mod_quota, change):
    with pytest.raises(NeedsManageServer, match="Manage Server"):
        await role_mod_quota.update_settings(GUILD, ROLE_MOD, change)

    settings = (await role_mod_quota.overview(GUILD)).settings
    assert (settings.moderator_role_id, settings.audit_channel_id, settings.cooldown_seconds) == (77, 88, 0)


async def test_a_role_moderator_may_still_change_the_other_settings(role_mod_quota):
    update = await role_mod_quota.update_settings(
        GUILD,
        ROLE_MOD,
        SettingsChange(
            cooldown_seconds=30, keep_stems=KeepStems.OFF, clear=frozenset({Clearable.JOBS_PER_MEMBER})
        ),
    )

    assert update.after.settings.cooldown_seconds == 30
    assert update.after.settings.keep_stems is KeepStems.OFF
    assert (update.after.settings.moderator_role_id, update.after.settings.audit_channel_id) == (77, 88)


async def test_manage_server_may_change_who_moderates_and_the_audit_channel(role_mod_quota):
    update = await role_mod_quota.update_settings(
        GUILD, MOD, SettingsChange(moderator_role_id=99, clear=frozenset({Clearable.AUDIT_CHANNEL}))
    )

    assert (update.after.settings.moderator_role_id, update.after.settings.audit_channel_id) == (99, None)


@pytest.fixture
def listed_but_unloadable_zone(monkeypatch) -> str:
    """A zone name this machine lists but has no data for (as on hosts with partial zone data)."""
    listed = economy.available_timezones() | {"Mars/Olympus_Mons"}
    monkeypatch.setattr(economy, "available_timezones", lambda: listed)
    economy.timezone_names.cache_clear()
    yield "Mars/Olympus_Mons"
    economy.timezone_names.cache_clear()


async def test_a_time_zone_that_cannot_be_loaded_is_refused_and_nothing_is_stored(
    quota, listed_but_unloadable_zone
):
    with pytest.raises(InvalidOption, match="`timezone` is not a time zone StemBot knows here"):
        await quota.update_settings(
            GUILD, MOD, SettingsChange(refill_time="18:00", timezone=listed_but_unloadable_zone.lower())
        )

    settings = (await quota.overview(GUILD)).settings
    assert (settings.timezone, settings.refill_time) == ("UTC", "00:00")


async def test_mixing_is_on_and_free_until_a_moderator_changes_it(quota):
    settings = (await quota.overview(GUILD)).settings
    assert (settings.mix_stems, settings.mix_price) == (MixStems.ON, 0)

    update = await quota.update_settings(GUILD, MOD, SettingsChange(mix_stems=MixStems.OFF, mix_price=15))

    assert (update.before.mix_stems, update.before.mix_price) == (MixStems.ON, 0)
    assert (update.after.settings.mix_stems, update.after.settings.mix_price) == (MixStems.OFF, 15)
    settings = (await quota.overview(GUILD)).settings
    assert (settings.mix_stems, settings.mix_price) == (MixStems.OFF, 15)


@pytest.mark.parametrize("price", [-1, economy.MAX_AMOUNT + 1])
async def test_a_mix_price_out_of_bounds_is_refused(quota, price):
    with pytest.raises(InvalidOption, match="mix_price"):
        await quota.update_settings(GUILD, MOD, SettingsChange(mix_price=price))

    assert (await quota.overview(GUILD)).settings.mix_price == 0


async def test_a_member_cannot_change_the_mix_settings(quota):
    with pytest.raises(NotAModerator):
        await quota.update_settings(GUILD, Actor(3), SettingsChange(mix_price=5))
