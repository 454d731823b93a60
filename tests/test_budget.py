"""The owner's wallet: each server's monthly budget of API credits, with the real store (SQLite on
tmp_path, a settable clock where months matter), the real runner and the API simulator, and
`/stembot budget` called with interaction doubles. Every test that splits ends with the budgets
agreeing with the jobs that counted against them."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock

import aiohttp
import discord
import pytest

from bot import economy
from bot.budget import BudgetService, parse_server_id
from bot.discord_side.alerts import DiscordAlerter
from bot.errors import BudgetUsedUp, InsufficientCredits, InvalidOption
from bot.models import (
    BudgetAlert,
    BudgetLevel,
    BudgetOverview,
    CreditPolicy,
    Failure,
    JobState,
    LedgerKind,
    NewJob,
    PauseReason,
    ReuseCharge,
    ServerBudget,
    Share,
)
from bot.product import Mode
from bot.quota import Actor, SettingsChange
from bot.render import operators
from bot.render import quota as quota_render
from bot.render.common import EMBED_DESCRIPTION_LIMIT
from bot.settings import SettingsError, load_settings
from bot.store import Store
from cogs.status import StatusCog
from testing.provider_api import SeparationApiSimulator
from tests.unit_helpers import (
    GUILD_ID,
    FakeClock,
    RecordingScheduler,
    embed_text,
    make_interaction,
    run_command,
)
from tests.wiring import AlerterDouble, RecordingDeliverer, make_services, make_settings

GUILD, OTHER_GUILD = 10, 20
TWO, TWELVE = Mode.SEPARATE_VOCAL, Mode.SPLIT_STEM


def new_job(member: int, *, guild: int = GUILD, mode: Mode = TWO, audio: str | None = None) -> NewJob:
    """A request for its own track (unless `audio` is given), so it never shares another's job."""
    audio = audio or f"audio-{guild}-{member}"
    return NewJob(guild, 1, member, mode, "gen-1", audio, mode.cost, f"cb-{guild}-{member}-{audio}")


async def open_store(path: Path, budget: int | None, clock: FakeClock | None = None, **policy: Any) -> Store:
    kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
    values: dict[str, Any] = {"default_credits": 1000, "jobs_per_member": 50} | policy
    return await Store.open(path, CreditPolicy(server_monthly_budget=budget, **values), **kwargs)


async def spent(store: Store, guild: int = GUILD) -> int:
    return (await store.budgets.server(guild)).spent


# -- the month, in UTC ----------------------------------------------------------------------------


def test_the_month_is_the_utc_calendar_month_and_renews_on_the_first_at_midnight_utc() -> None:
    clock = FakeClock("2025-03-31 23:59")
    assert economy.budget_month(clock.now) == "2025-03"
    assert economy.budget_renews_at(clock.now) == FakeClock("2025-04-01 00:00").now
    clock.set("2025-12-15 08:00")
    assert economy.budget_month(clock.now) == "2025-12"
    assert economy.budget_renews_at(clock.now) == FakeClock("2026-01-01 00:00").now
    assert economy.budget_month(FakeClock("2026-01-01 00:00").now) == "2026-01"


@pytest.mark.parametrize(
    ("spent_so_far", "budget", "level"),
    [(0, None, None), (10_000, None, None), (70, 100, None), (79, 100, None),
     (80, 100, BudgetLevel.NEARLY_USED), (90, 100, BudgetLevel.NEARLY_USED), (91, 100, BudgetLevel.USED_UP),
     (100, 100, BudgetLevel.USED_UP), (20, 25, BudgetLevel.USED_UP), (0, 0, BudgetLevel.USED_UP),
     (0, 9, BudgetLevel.USED_UP)],
)  # fmt: skip
def test_a_budget_is_nearly_used_at_80_percent_and_used_up_once_no_split_fits(
    spent_so_far: int, budget: int | None, level: BudgetLevel | None
) -> None:
    assert economy.budget_level(spent_so_far, budget) is level


# -- the store: counting in the reservation's transaction -----------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(tmp_path / "budget.db", budget=50)
    yield s
    assert await s.budgets.mismatches() == []
    assert await s.accounts.ledger_mismatches() == []
    await s.close()


async def test_fifty_reservations_at_once_against_a_budget_for_five_take_exactly_five(store: Store) -> None:
    reservations = await asyncio.gather(*(store.reservations.reserve(new_job(n)) for n in range(50)))

    taken = [r for r in reservations if r.job is not None]
    assert len(taken) == 5
    assert {r.refusal for r in reservations if r.job is None} == {"budget_used_up"}
    assert await spent(store) == 50
    assert all(r.job.budget_cost == TWO.api_price for r in taken if r.job)


async def test_a_refused_split_moves_no_credits_and_records_no_job(store: Store) -> None:
    for n in range(5):
        await store.reservations.reserve(new_job(n))
    refused = await store.reservations.reserve(new_job(99))

    assert refused.job is None and refused.budget is not None
    assert refused.budget.spent == 50 and refused.budget.left == 0
    assert refused.balance == 1000
    assert [e.kind for e in await store.accounts.ledger(GUILD, 99)] == [LedgerKind.ALLOWANCE]  # opened
    assert len(await store.jobs.recent(GUILD, 99)) == 0


async def test_the_budget_counts_the_api_price_of_each_mode(store: Store) -> None:
    one = await store.reservations.reserve(new_job(1, mode=TWELVE))
    assert one.job is not None and one.job.budget_cost == TWELVE.api_price == 50
    assert await spent(store) == 50
    # 50 of 50: not even a 2-stem split fits now.
    assert (await store.reservations.reserve(new_job(2))).refusal == "budget_used_up"


async def test_a_refund_gives_the_budget_back_exactly_once(store: Store) -> None:
    jobs = [(await store.reservations.reserve(new_job(n))).job for n in range(5)]
    assert await spent(store) == 50

    await store.reservations.settle(jobs[0].id, succeeded=False, failure=Failure.INVALID_IDS)
    await store.reservations.settle(jobs[0].id, succeeded=False, failure=Failure.INVALID_IDS)  # no-op
    await store.reservations.settle(jobs[1].id, succeeded=True)

    assert await spent(store) == 40
    assert (await store.reservations.reserve(new_job(10))).job is not None
    assert (await store.reservations.reserve(new_job(11))).refusal == "budget_used_up"


async def test_a_cancelled_split_gives_its_budget_back_and_the_books_agree(store: Store) -> None:
    jobs = [(await store.reservations.reserve(new_job(n))).job for n in range(5)]
    assert (await store.reservations.reserve(new_job(10))).refusal == "budget_used_up"

    outcome = (await store.reservations.cancel(jobs[0].id)).outcome

    assert outcome == "cancelled" and await spent(store) == 40
    assert await store.budgets.mismatches() == []  # a cancelled job holds no budget
    assert (await store.reservations.reserve(new_job(11))).job is not None


async def test_the_budget_follows_an_owners_change_at_once(store: Store) -> None:
    for n in range(5):
        await store.reservations.reserve(new_job(n))
    assert (await store.reservations.reserve(new_job(10))).refusal == "budget_used_up"

    await store.budgets.set_budget(GUILD, 60, actor_id=1)  # the next reservation sees it, not a cached one

    assert (await store.reservations.reserve(new_job(11))).job is not None


async def test_a_member_without_credits_is_refused_for_credits_and_counts_nothing(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "b.db", budget=50, default_credits=5)
    try:
        refused = await store.reservations.reserve(new_job(1))
        assert refused.refusal == "insufficient_credits"
        assert await spent(store) == 0
        assert await store.budgets.mismatches() == []
    finally:
        await store.close()


async def test_without_a_budget_nothing_is_refused_but_the_spend_is_counted(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "b.db", budget=None)
    try:
        for n in range(12):
            assert (await store.reservations.reserve(new_job(n, mode=TWELVE))).job is not None
        budget = await store.budgets.server(GUILD)
        assert budget.spent == 600 and budget.budget is None and budget.left is None
    finally:
        await store.close()


async def test_each_server_has_its_own_budget(store: Store) -> None:
    for n in range(5):
        await store.reservations.reserve(new_job(n, guild=GUILD))
    assert (await store.reservations.reserve(new_job(1, guild=OTHER_GUILD))).job is not None
    assert await spent(store, GUILD) == 50 and await spent(store, OTHER_GUILD) == 10


async def test_an_own_budget_overrides_the_default_and_minus_one_returns_to_it(store: Store) -> None:
    change = await store.budgets.set_budget(GUILD, 20, actor_id=1)
    assert change.before.budget == 50 and not change.before.own
    assert change.after.budget == 20 and change.after.own

    for n in range(2):
        assert (await store.reservations.reserve(new_job(n))).job is not None
    assert (await store.reservations.reserve(new_job(2))).refusal == "budget_used_up"

    await store.budgets.set_budget(GUILD, 0, actor_id=1)
    assert (await store.budgets.server(GUILD)).left == 0
    back = await store.budgets.set_budget(GUILD, None, actor_id=1)
    assert back.after.budget == 50 and not back.after.own
    assert (await store.reservations.reserve(new_job(3))).job is not None
    assert (await store.budgets.server(OTHER_GUILD)).budget == 50  # nobody else's changed


async def test_a_coalesced_job_counts_nothing_its_leader_counted_once(store: Store) -> None:
    leader = (await store.reservations.reserve(new_job(1, audio="same"))).job
    follower = (await store.reservations.reserve(new_job(2, audio="same"))).job
    assert follower is not None and follower.share is Share.COALESCED
    assert leader.budget_cost == 10 and follower.budget_cost == 0
    assert await spent(store) == 10

    # The leader fails: both are refunded, and the budget gets back what was counted, once.
    await store.reservations.settle(leader.id, succeeded=False, failure=Failure.SEPARATION_FAILED)
    [settled] = await store.reservations.settle_followers(await store.jobs.get(leader.id))
    assert settled.state is JobState.FAILED
    assert await spent(store) == 0


async def test_a_reused_result_counts_nothing_and_still_works_when_the_budget_is_used_up(
    store: Store,
) -> None:
    await store.economy.update_settings(GUILD, {"reuse_charge": ReuseCharge.FULL}, actor_id=1)
    first = (await store.reservations.reserve(new_job(1, audio="hit"))).job
    await store.reservations.settle(first.id, succeeded=True, links_expire_at=4e9)
    for n in range(2, 6):
        await store.reservations.reserve(new_job(n))
    assert (await store.reservations.reserve(new_job(6))).refusal == "budget_used_up"

    reused = await store.reservations.reserve(new_job(7, audio="hit"))

    assert reused.job is not None and reused.job.share is Share.REUSED
    assert reused.job.cost == TWO.cost  # the member pays what the server asks
    assert reused.job.budget_cost == 0  # the owner pays nothing
    assert await spent(store) == 50


async def test_a_new_utc_month_starts_a_fresh_budget_and_a_refund_goes_back_to_its_own_month(
    tmp_path: Path,
) -> None:
    clock = FakeClock("2025-03-31 23:58")
    store = await open_store(tmp_path / "m.db", budget=20, clock=clock)
    try:
        march = [(await store.reservations.reserve(new_job(n))).job for n in range(2)]
        refused = await store.reservations.reserve(new_job(2))
        assert refused.refusal == "budget_used_up"
        assert refused.budget.renews_at == FakeClock("2025-04-01 00:00").now

        clock.set("2025-04-01 00:00:01")
        april = (await store.reservations.reserve(new_job(3))).job
        assert april is not None and april.budget_month == "2025-04"
        assert march[0].budget_month == "2025-03"

        # A March job refunded in April gives March its credits back; April's stay as they are.
        await store.reservations.settle(march[0].id, succeeded=False, failure=Failure.TIMED_OUT)
        assert await spent(store) == 10  # April
        with sqlite3.connect(tmp_path / "m.db") as conn:
            months = dict(conn.execute("SELECT month, spent FROM budget_months WHERE guild_id = ?", (GUILD,)))
        assert months == {"2025-03": 10, "2025-04": 10}
        assert await store.budgets.mismatches() == []
    finally:
        await store.close()


# -- alerts: once per level and month, durable ---------------------------------------------------


async def test_alerts_come_once_at_80_percent_and_once_used_up_even_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    store = await open_store(path, budget=100)
    alerts: list[BudgetAlert | None] = []
    for n in range(7):
        alerts.append((await store.reservations.reserve(new_job(n))).budget_alert)
    assert alerts == [None] * 7
    eighth = (await store.reservations.reserve(new_job(7))).budget_alert
    assert eighth is not None and eighth.level is BudgetLevel.NEARLY_USED and eighth.budget.spent == 80
    assert (await store.reservations.reserve(new_job(8))).budget_alert is None  # 90: not again
    await store.close()

    store = await open_store(path, budget=100)  # a restart must not alert again
    try:
        tenth = (await store.reservations.reserve(new_job(9))).budget_alert
        assert tenth is not None and tenth.level is BudgetLevel.USED_UP and tenth.budget.spent == 100
        refused = await store.reservations.reserve(new_job(10))
        assert refused.refusal == "budget_used_up" and refused.budget_alert is None
        assert await store.budgets.mismatches() == []
    finally:
        await store.close()


async def test_a_jump_past_both_levels_gives_only_the_used_up_alert(store: Store) -> None:
    alert = (await store.reservations.reserve(new_job(1, mode=TWELVE))).budget_alert
    assert alert is not None and alert.level is BudgetLevel.USED_UP
    assert (await store.reservations.reserve(new_job(2))).budget_alert is None  # refused, told already
    await store.budgets.set_budget(GUILD, 60, actor_id=1)  # 50 of 60: still past 80%, already told
    last = (await store.reservations.reserve(new_job(3))).budget_alert  # 60 of 60: used up again
    assert last is not None and last.level is BudgetLevel.USED_UP


async def test_a_refusal_alerts_when_the_default_was_lowered_below_the_spend(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    store = await open_store(path, budget=None)
    for n in range(3):
        await store.reservations.reserve(new_job(n))
    await store.close()
    store = await open_store(path, budget=20)  # the owner restarted with SERVER_MONTHLY_BUDGET=20
    try:
        refused = await store.reservations.reserve(new_job(5))
        assert refused.refusal == "budget_used_up"
        assert refused.budget_alert is not None and refused.budget_alert.level is BudgetLevel.USED_UP
        assert (await store.reservations.reserve(new_job(6))).budget_alert is None
    finally:
        await store.close()


async def test_raising_the_budget_lets_its_alerts_come_again_when_reached_again(store: Store) -> None:
    for n in range(4):
        await store.reservations.reserve(new_job(n))
    last = await store.reservations.reserve(new_job(4))
    assert last.budget_alert is not None and last.budget_alert.level is BudgetLevel.USED_UP
    await store.budgets.set_budget(GUILD, 100, actor_id=1)  # 50 of 100: below both levels
    alerts = [(await store.reservations.reserve(new_job(n))).budget_alert for n in range(5, 10)]
    levels = [a.level if a else None for a in alerts]
    assert levels == [None, None, BudgetLevel.NEARLY_USED, None, BudgetLevel.USED_UP]


# -- the whole path: the split service, the runner and the API simulator --------------------------


class World:
    def __init__(self, store: Store, sim: SeparationApiSimulator, session: aiohttp.ClientSession) -> None:
        self.store, self.sim = store, sim
        self.deliverer = RecordingDeliverer()
        self.alerter = AlerterDouble()
        settings = make_settings(api_url=sim.base_url, api_timeout=1, poll_interval=0.05, job_timeout=30)
        services = make_services(
            store, session, settings, deliverer=self.deliverer, alerter=self.alerter, delivery_retry_base=0.05
        )
        self.runner, self.split, self.operations = services.runner, services.split, services.operations

    async def request(
        self, member: int, mode: Mode = TWO, audio_id: str | None = None, start: bool = True
    ) -> Any:
        accepted = await self.split.reserve(
            guild_id=GUILD,
            channel_id=1,
            user_id=member,
            mode=mode,
            task_id="gen-1",
            audio_id=audio_id or f"audio-{member}",
        )
        if start:
            self.split.start(accepted.job)
        return accepted.job


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = await open_store(tmp_path / "world.db", budget=50, default_credits=100, jobs_per_member=5)
    async with (
        SeparationApiSimulator(processing_seconds=0.2, callbacks=False) as sim,
        aiohttp.ClientSession() as session,
    ):
        w = World(store, sim, session)
        await w.runner.start()
        yield w
        await w.runner.stop()
        await w.operations.stop()
    assert await store.budgets.mismatches() == []
    assert await store.accounts.ledger_mismatches() == []
    await store.close()


async def test_fifty_splits_at_once_against_a_budget_for_five_reach_the_api_exactly_five_times(
    world: World,
) -> None:
    outcomes = await asyncio.gather(
        *(world.request(member) for member in range(100, 150)), return_exceptions=True
    )

    accepted = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(accepted) == 5 and len(refused) == 45
    assert all(isinstance(error, BudgetUsedUp) for error in refused)
    delivered = await world.deliverer.wait_for(5)
    assert all(job.state is JobState.SUCCEEDED for job in delivered)
    await asyncio.sleep(0.3)  # nothing else reaches the API afterwards either
    assert len(world.sim.submits) == 5
    assert await spent(world.store) == 50
    # The 45 refused members were charged nothing.
    balances = [await world.store.accounts.balance(GUILD, member) for member in range(100, 150)]
    assert sorted(balances) == [90] * 5 + [100] * 45


async def test_the_refusal_says_the_budget_is_used_up_and_when_it_renews(world: World) -> None:
    for member in range(5):
        await world.request(member)
    with pytest.raises(BudgetUsedUp) as refused:
        await world.request(9)

    renews = economy.budget_renews_at(world.store.db.now())
    assert f"<t:{int(renews)}:R>" in str(refused.value)
    assert "monthly StemBot budget is used up" in str(refused.value)
    assert refused.value.balance == 100
    await world.deliverer.wait_for(5)
    assert len(world.sim.submits) == 5


async def test_a_full_split_that_does_not_fit_is_told_a_two_stem_one_still_does(world: World) -> None:
    await world.request(1)  # 10 of 50 spent: 40 left
    with pytest.raises(BudgetUsedUp) as refused:
        await world.request(2, TWELVE)
    assert refused.value.still_fits is TWO
    assert "Vocals + instrumental (2 stems) split still fits" in str(refused.value)
    assert (await world.request(3)) is not None
    await world.deliverer.wait_for(2)


async def test_a_failed_job_gives_its_budget_back_and_the_next_split_passes(world: World) -> None:
    world.sim.unknown_ids.add("bogus")
    for member in range(4):
        await world.request(member)
    failed = await world.request(4, audio_id="bogus")
    delivered = await world.deliverer.wait_for(5)
    assert next(j for j in delivered if j.id == failed.id).failure is Failure.INVALID_IDS
    assert await spent(world.store) == 40
    await world.request(5)
    await world.deliverer.wait_for(6)
    assert len(world.sim.submits) == 6


async def test_a_queued_job_cancelled_by_a_pause_gives_its_budget_back(world: World) -> None:
    held = await world.request(1, start=False)
    assert await spent(world.store) == 10
    world.operations.pause(PauseReason.KEY_REFUSED)
    world.split.start(held)
    [done] = await world.deliverer.wait_for(1)
    assert done.state is JobState.FAILED and done.failure is Failure.SERVICE_ACCOUNT
    assert await spent(world.store) == 0
    assert world.sim.submits == []


async def test_a_coalesced_split_counts_once_and_is_accepted_when_the_budget_is_used_up(world: World) -> None:
    world.sim.processing_seconds = 1.0
    for member in range(5):
        await world.request(member)  # 50 of 50
    follower = await world.request(99, audio_id="audio-0")  # the same track as member 0's, in flight
    assert follower.share is Share.COALESCED and follower.budget_cost == 0
    delivered = await world.deliverer.wait_for(6)
    assert {j.user_id for j in delivered} >= {0, 99}
    assert len(world.sim.submits) == 5
    assert await spent(world.store) == 50


async def test_alerts_reach_the_alerter_from_the_split_service(world: World) -> None:
    for member in range(4):
        await world.request(member)
    await world.request(4)
    with pytest.raises(BudgetUsedUp):
        await world.request(5)
    await world.operations.wait_alerts()
    assert world.alerter.events == [f"budget:{GUILD}:nearly_used:40", f"budget:{GUILD}:used_up:50"]
    await world.deliverer.wait_for(5)


async def test_a_member_without_credits_hears_about_credits_and_the_budget_counts_nothing(
    world: World,
) -> None:
    await world.store.accounts.set_balance(GUILD, 7, 5, actor_id=1, reason="test", role_ids=())
    with pytest.raises(InsufficientCredits):
        await world.request(7)
    assert await spent(world.store) == 0


# -- /quota settings: what moderators see ---------------------------------------------------------


async def test_moderators_see_the_budget_and_what_is_left_in_quota_settings(tmp_path: Path) -> None:
    clock = FakeClock("2025-03-05 10:00")
    store = await open_store(tmp_path / "q.db", budget=100, clock=clock)
    try:
        for n in range(3):
            await store.reservations.reserve(new_job(n))
        async with aiohttp.ClientSession() as session:
            quota = make_services(store, session, queue=RecordingScheduler(), clock=clock).quota
            shown = await quota.update_settings(GUILD, Actor(1, manage_guild=True), SettingsChange())
            changed = await quota.update_settings(
                GUILD, Actor(1, manage_guild=True), SettingsChange(cooldown_seconds=5)
            )
        assert shown.after.budget is not None and shown.after.budget.left == 70
        text = "\n".join(embed_text(e) for m in quota_render.settings_overview(shown) for e in m.embeds)
        assert "Monthly StemBot budget" in text and "**70** of 100 API credits left this month" in text
        assert f"<t:{int(FakeClock('2025-04-01 00:00').now)}:R>" in text
        assert "10 for vocals + instrumental (2 stems), 50 for full split (up to 12 stems)" in text
        assert changed.after.budget is None  # a change shows what changed, not the budget
    finally:
        await store.close()


def test_moderators_without_a_budget_see_there_is_no_limit() -> None:
    text = quota_render._budget_text(ServerBudget(GUILD, "2025-03", 30, None, False, 1_743_465_600.0))
    assert "No monthly limit" in text and "30 API credits used this month" in text


# -- settings -------------------------------------------------------------------------------------


def env(**values: str) -> dict[str, str]:
    return {"DISCORD_TOKEN": "token", "SEPARATION_API_KEY": "key", **values}


def test_server_monthly_budget_is_unset_by_default_and_read_when_set() -> None:
    assert load_settings(env()).server_monthly_budget is None
    assert load_settings(env(SERVER_MONTHLY_BUDGET="")).server_monthly_budget is None
    assert load_settings(env(SERVER_MONTHLY_BUDGET="500")).server_monthly_budget == 500
    assert load_settings(env(SERVER_MONTHLY_BUDGET="0")).server_monthly_budget == 0


@pytest.mark.parametrize("raw", ["-1", "1000001", "ten", "2.5"])
def test_a_server_monthly_budget_out_of_bounds_stops_start_up_naming_it(raw: str) -> None:
    with pytest.raises(SettingsError, match="SERVER_MONTHLY_BUDGET must be a whole number of API credits"):
        load_settings(env(SERVER_MONTHLY_BUDGET=raw))


# -- the owner's command: the service's checks -----------------------------------------------------


@pytest.mark.parametrize("raw", ["", "abc", "12345", "1" * 22, "-123456789012345678", "12345678901234567x",
                                 "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨", "99999999999999999999"])  # fmt: skip
def test_a_server_id_must_be_a_snowflake(raw: str) -> None:
    with pytest.raises(InvalidOption, match="server_id"):
        parse_server_id(raw)


def test_a_server_id_is_read_with_spaces_around_it() -> None:
    assert parse_server_id(" 123456789012345678 ") == 123456789012345678


@pytest.mark.parametrize("amount", [-2, 1_000_001])
async def test_budget_amounts_beyond_the_bounds_are_refused(store: Store, amount: int) -> None:
    with pytest.raises(InvalidOption, match="amount"):
        await BudgetService(store).set_budget(str(GUILD_ID), amount, actor_id=1)
    assert (await store.budgets.server(GUILD_ID)).own is False


# -- the owner's command: the cog, with interaction doubles ----------------------------------------

OWNER = 999_000_000_000_000_001
SERVER_A, SERVER_B, SERVER_C = 123_456_789_012_345_678, 223_456_789_012_345_678, 323_456_789_012_345_678


@pytest.fixture
async def owner_bot(tmp_path: Path) -> AsyncIterator[SimpleNamespace]:
    store = await open_store(tmp_path / "owner.db", budget=20)
    guilds = {SERVER_A: SimpleNamespace(name="Beat *Makers*")}

    async def is_owner(user: discord.abc.User) -> bool:
        return user.id == OWNER

    bot = SimpleNamespace(
        is_owner=is_owner,
        get_guild=guilds.get,
        services=SimpleNamespace(budget=BudgetService(store), settings=make_settings()),
        store=store,
    )
    yield bot
    await store.close()


async def budget_command(bot: SimpleNamespace, interaction: MagicMock, **options: Any) -> str:
    await run_command(StatusCog(bot), StatusCog.budget, interaction, **options)  # type: ignore[arg-type]
    interaction.response.defer.assert_awaited_once()
    assert interaction.response.defer.await_args.kwargs["ephemeral"] is True
    reply = interaction.followup.send.await_args
    assert reply.kwargs["ephemeral"] is True
    if "embed" in reply.kwargs:
        return embed_text(reply.kwargs["embed"])
    return str(reply.args[0])


@pytest.mark.parametrize(
    "options", [{}, {"server_id": str(SERVER_A)}, {"server_id": str(SERVER_A), "amount": 1000}]
)
async def test_a_server_manager_who_is_not_the_owner_is_refused_and_nothing_changes(
    owner_bot: SimpleNamespace, options: dict[str, Any]
) -> None:
    rights = discord.Permissions(manage_guild=True, administrator=True)
    manager = make_interaction(user_id=OWNER + 1, permissions=rights)
    text = await budget_command(owner_bot, manager, **options)
    assert "Only the bot's owner" in text and "Nothing was changed" in text
    assert str(SERVER_A) not in text
    budget = await owner_bot.store.budgets.server(SERVER_A)
    assert budget.budget == 20 and not budget.own


async def test_when_discord_will_not_say_who_owns_the_bot_nobody_is_the_owner(owner_bot) -> None:
    async def unknown_owner(user: discord.abc.User) -> bool:
        raise discord.HTTPException(MagicMock(status=503, reason="Service Unavailable"), "try later")

    owner_bot.is_owner = unknown_owner
    text = await budget_command(
        owner_bot, make_interaction(user_id=OWNER), server_id=str(SERVER_A), amount=500
    )
    assert "Only the bot's owner" in text
    assert not (await owner_bot.store.budgets.server(SERVER_A)).own


async def test_the_owner_sets_a_servers_budget_from_any_server_without_manage_server(owner_bot) -> None:
    interaction = make_interaction(user_id=OWNER, guild_id=SERVER_B, permissions=discord.Permissions.none())
    text = await budget_command(owner_bot, interaction, server_id=str(SERVER_A), amount=500)

    assert (
        "Monthly budget set" in text and "**Was** 20 API credits a month (the default), **now** 500" in text
    )
    assert r"Beat \*Makers\*" in text and str(SERVER_A) in text
    budget = await owner_bot.store.budgets.server(SERVER_A)
    assert budget.budget == 500 and budget.own

    text = await budget_command(
        owner_bot, make_interaction(user_id=OWNER), server_id=str(SERVER_A), amount=-1
    )
    assert "back to the default" in text
    assert (await owner_bot.store.budgets.server(SERVER_A)).budget == 20


async def test_the_owner_sees_one_server_with_what_is_left(owner_bot) -> None:
    await owner_bot.store.reservations.reserve(new_job(1, guild=SERVER_A))
    text = await budget_command(owner_bot, make_interaction(user_id=OWNER), server_id=str(SERVER_A))
    assert "Spent in" in text and "10 API credits" in text
    assert "**Left:** 10, enough for 1 split (Vocals + instrumental) or 0 splits (Full split)" in text
    assert "the default (SERVER_MONTHLY_BUDGET)" in text


async def test_the_owner_sees_every_server_most_spent_first(owner_bot) -> None:
    await owner_bot.store.reservations.reserve(new_job(1, guild=SERVER_A))
    await owner_bot.store.reservations.reserve(new_job(1, guild=SERVER_B))
    await owner_bot.store.reservations.reserve(new_job(2, guild=SERVER_B))
    await owner_bot.store.budgets.set_budget(SERVER_C, 300, actor_id=OWNER)  # its own, spent nothing

    text = await budget_command(owner_bot, make_interaction(user_id=OWNER))

    lines = text.split("\n")
    order = [
        next(i for i, line in enumerate(lines) if str(guild) in line)
        for guild in (SERVER_B, SERVER_A, SERVER_C)
    ]
    assert order == sorted(order)
    assert "20 of 20 API credits (100%)" in text and "10 of 20 API credits (50%)" in text
    assert "0 of 300 API credits (0%) · own budget" in text
    assert (
        "**30** API credits spent this month" in text and "Default for every server: 20 API credits" in text
    )


async def test_an_amount_needs_a_server_id_and_a_bad_server_id_is_explained(owner_bot) -> None:
    text = await budget_command(owner_bot, make_interaction(user_id=OWNER, guild_id=SERVER_A), amount=100)
    assert "`amount` needs `server_id`" in text and str(SERVER_A) in text
    text = await budget_command(owner_bot, make_interaction(user_id=OWNER), server_id="my server")
    assert "`server_id` must be a server id" in text


def test_the_budget_list_stays_within_one_embed_and_says_how_many_more() -> None:
    servers = tuple(
        ServerBudget(10**17 + n, "2025-03", 1_000_000 - n, 1_000_000, True, 1_743_465_600.0)
        for n in range(500)
    )
    names = {server.guild_id: "*_" * 50 for server in servers}  # every character escaped: twice as long
    embed = operators.budget_overview(BudgetOverview("2025-03", 1_743_465_600.0, 1_000_000, servers), names)

    assert len(embed.description or "") <= EMBED_DESCRIPTION_LIMIT and len(embed) <= 6000
    shown = sum(1 for line in (embed.description or "").split("\n") if "API credits (" in line)
    assert 0 < shown <= operators.BUDGET_LIST_LINES
    assert f"…and {500 - shown} more servers" in (embed.description or "")


def test_budget_alert_lines_say_what_happened_and_until_when() -> None:
    budget = ServerBudget(GUILD, "2025-03", 80, 100, False, 1_743_465_600.0)
    nearly = operators.budget_alert(BudgetAlert(BudgetLevel.NEARLY_USED, budget))
    assert "80%" in nearly and "80 of 100 API credits" in nearly and "<t:1743465600:R>" in nearly
    used_up = ServerBudget(GUILD, "2025-03", 100, 100, False, 1_743_465_600.0)
    used = operators.budget_alert(BudgetAlert(BudgetLevel.USED_UP, used_up))
    assert "used up" in used and "refused" in used and "bot's owner" in used and len(used) < 2000


class ChannelDouble:
    def __init__(self, sent: list[tuple[int, str]], channel_id: int) -> None:
        self.sent, self.channel_id = sent, channel_id

    async def send(self, text: str, **kwargs: Any) -> None:
        self.sent.append((self.channel_id, text))


async def test_a_budget_alert_goes_to_that_servers_audit_channel_only(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "al.db")
    try:
        await store.economy.update_settings(1, {"audit_channel_id": 111}, actor_id=5)
        await store.economy.update_settings(2, {"audit_channel_id": 222}, actor_id=5)
        sent: list[tuple[int, str]] = []
        client = SimpleNamespace(get_partial_messageable=lambda cid, guild_id: ChannelDouble(sent, cid))
        alerter = DiscordAlerter(client, store)  # type: ignore[arg-type]
        budget = ServerBudget(2, "2025-03", 100, 100, False, 1_743_465_600.0)
        await alerter.budget_alert(BudgetAlert(BudgetLevel.USED_UP, budget))
        await alerter.budget_alert(
            BudgetAlert(BudgetLevel.USED_UP, ServerBudget(3, "2025-03", 1, 1, False, 0.0))
        )
        assert [cid for cid, _ in sent] == [222]  # server 3 has no audit channel: the log has it
        assert "used up" in sent[0][1]
    finally:
        await store.close()
