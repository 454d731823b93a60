"""The bot's own monthly budget (`MONTHLY_BUDGET`): every server together, counted in the same
reservation as the member's credits and the server's budget, on both backends (an SQLite file, and
several stores on one PostgreSQL database, as several bot processes); refunds, the UTC month, the
owner's alerts by DM (never a server's channel), and what the owner sees."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock

import aiohttp
import discord
import pytest

from bot.budget import BudgetService
from bot.discord_side.alerts import DiscordAlerter
from bot.errors import BotBudgetUsedUp
from bot.models import (
    BudgetLevel,
    CallbackServerState,
    CreditPolicy,
    DeploymentAlert,
    DeploymentBudget,
    Failure,
    JobState,
    NewJob,
    Refusal,
    StatusReport,
)
from bot.product import Mode
from bot.render import operators
from bot.settings import SettingsError, load_settings
from bot.store import Store
from cogs.status import StatusCog
from testing.provider_api import SeparationApiSimulator
from tests.unit_helpers import FakeClock, embed_text, make_interaction, run_command
from tests.wiring import AlerterDouble, RecordingDeliverer, make_services, make_settings

SERVER_A, SERVER_B = 1_100_000_000_000_001, 1_100_000_000_000_002
TWO, TWELVE = Mode.SEPARATE_VOCAL, Mode.SPLIT_STEM  # 10 and 50 API credits
OWNER = 77

_serial = itertools.count(1)


def new_job(guild: int, member: int, mode: Mode = TWO) -> NewJob:
    """A request for a track of its own, so it never shares another's job."""
    n = next(_serial)
    return NewJob(guild, 1, member, mode, "gen-1", f"audio-{n}", mode.cost, f"cb-{n}")


class Stores:
    """`await open_store(name, cap)`: a store on the named database of the backend under test (the
    same name again: a restart, or another process on PostgreSQL); `await open_store.close(store)`
    stops one (the books of the rest are checked at the end)."""

    def __init__(self, databases: Any) -> None:
        self._databases = databases
        self.opened: list[Store] = []

    async def __call__(
        self, name: str = "bot-budget", cap: int | None = 50, clock: FakeClock | None = None, **policy: Any
    ) -> Store:
        values: dict[str, Any] = {"default_credits": 1000, "jobs_per_member": 50} | policy
        kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
        target = await self._databases(name)
        store = await Store.open(target, CreditPolicy(monthly_budget=cap, **values), **kwargs)
        self.opened.append(store)
        return store

    async def close(self, store: Store) -> None:
        self.opened.remove(store)
        await store.close()


@pytest.fixture
async def open_store(databases: Any) -> AsyncIterator[Stores]:
    stores = Stores(databases)
    yield stores
    for store in stores.opened:
        assert await store.budgets.mismatches() == []  # the bot's months agree with its servers'
        assert await store.accounts.ledger_mismatches() == []
        await store.close()


async def bot_spent(store: Store) -> int:
    return (await store.budgets.bot()).spent


# -- the store: exact, in the reservation's transaction ---------------------------------------


@pytest.mark.parametrize("cap", [50, 59])
async def test_two_servers_at_once_in_two_processes_never_spend_one_credit_past_the_bots_budget(
    open_store: Any, backend: str, cap: int
) -> None:
    stores = [await open_store(cap=cap) for _ in range(2)]  # two processes on PostgreSQL
    requests = [
        stores[n % 2].reservations.reserve(new_job(guild, member))
        for n, (guild, member) in enumerate(itertools.product((SERVER_A, SERVER_B), range(20)))
    ]
    results = await asyncio.gather(*requests)

    taken = [r.job for r in results if r.job is not None]
    assert len(taken) == 5  # 50 of the cap; a sixth would be 60
    assert {r.refusal for r in results if r.job is None} == {Refusal.BOT_BUDGET_USED_UP}
    assert await bot_spent(stores[0]) == 50
    by_server = [(await stores[1].budgets.server(g)).spent for g in (SERVER_A, SERVER_B)]
    assert sum(by_server) == 50
    # The refused members were charged nothing and have no job.
    for r in results:
        if r.job is None:
            assert r.balance == 1000 and r.bot_budget is not None and r.bot_budget.budget == cap


async def test_a_refusal_by_the_bots_budget_says_when_it_renews_and_moves_nothing(open_store: Any) -> None:
    store = await open_store(cap=20)
    for member in (1, 2):
        assert (await store.reservations.reserve(new_job(SERVER_A, member))).job is not None

    refused = await store.reservations.reserve(new_job(SERVER_B, 3))

    assert refused.refusal is Refusal.BOT_BUDGET_USED_UP and refused.job is None
    assert refused.bot_budget is not None and refused.bot_budget.left == 0
    assert refused.bot_budget.renews_at == (await store.budgets.bot()).renews_at
    assert await store.accounts.balance(SERVER_B, 3) == 1000
    assert await store.jobs.recent(SERVER_B, 3) == []
    assert (await store.budgets.server(SERVER_B)).spent == 0  # nor did the server's budget count it


async def test_a_refund_gives_the_bots_budget_back_exactly_once(open_store: Any) -> None:
    store = await open_store(cap=50)
    jobs = [(await store.reservations.reserve(new_job(SERVER_A + n % 2, n))).job for n in range(5)]
    assert await bot_spent(store) == 50

    await store.reservations.settle(jobs[0].id, succeeded=False, failure=Failure.INVALID_IDS)
    await store.reservations.settle(jobs[0].id, succeeded=False, failure=Failure.INVALID_IDS)  # no-op
    await store.reservations.settle(jobs[1].id, succeeded=True)  # charged: counts on
    await store.reservations.cancel(jobs[2].id)
    cancelled = await store.jobs.get(jobs[2].id)
    assert cancelled is not None and cancelled.state is JobState.CANCELLED

    assert await bot_spent(store) == 30
    assert (await store.reservations.reserve(new_job(SERVER_B, 10))).job is not None
    assert (await store.reservations.reserve(new_job(SERVER_A, 11))).job is not None
    assert (await store.reservations.reserve(new_job(SERVER_A, 12))).refusal is Refusal.BOT_BUDGET_USED_UP


async def test_a_new_utc_month_starts_a_fresh_bots_budget_and_a_refund_goes_to_its_own_month(
    open_store: Any,
) -> None:
    clock = FakeClock("2025-03-31 23:58")
    store = await open_store(cap=20, clock=clock)
    march = [(await store.reservations.reserve(new_job(SERVER_A + n, n))).job for n in range(2)]
    refused = await store.reservations.reserve(new_job(SERVER_B, 5))
    assert refused.refusal is Refusal.BOT_BUDGET_USED_UP
    assert (
        refused.bot_budget is not None and refused.bot_budget.renews_at == FakeClock("2025-04-01 00:00").now
    )

    clock.set("2025-04-01 00:00:00")
    april = (await store.reservations.reserve(new_job(SERVER_B, 5))).job
    assert april is not None and april.budget_month == "2025-04"

    await store.reservations.settle(march[0].id, succeeded=False, failure=Failure.TIMED_OUT)
    assert await bot_spent(store) == 10  # April's
    async with store.db.reading() as tx:
        months = {
            r["month"]: r["spent"] for r in await tx.fetchall("SELECT month, spent FROM deployment_months")
        }
    assert months == {"2025-03": 10, "2025-04": 10}


async def test_without_a_cap_nothing_is_refused_and_every_servers_spend_is_counted(open_store: Any) -> None:
    store = await open_store(cap=None)
    for n in range(6):
        assert (await store.reservations.reserve(new_job(SERVER_A + n % 2, n, TWELVE))).job is not None
    bot = await store.budgets.bot()
    assert bot.spent == 300 and bot.budget is None and bot.left is None


async def test_a_shared_result_costs_the_bots_budget_nothing(open_store: Any) -> None:
    store = await open_store(cap=10)
    leader = (await store.reservations.reserve(new_job(SERVER_A, 1))).job
    same = NewJob(SERVER_B, 1, 2, TWO, "gen-1", leader.audio_id, TWO.cost, "cb-follower")
    follower = await store.reservations.reserve(same)  # the bot's budget is spent, but this is free
    assert follower.job is not None and follower.job.budget_cost == 0
    assert await bot_spent(store) == 10


# -- the owner's alerts: once per level and month, in any process ------------------------------


async def test_the_bots_alerts_come_once_per_level_even_across_a_restart_and_another_process(
    open_store: Any, backend: str
) -> None:
    first = await open_store(cap=100)
    levels = [(await first.reservations.reserve(new_job(SERVER_A, n))).bot_budget_alert for n in range(7)]
    assert levels == [None] * 7
    eighth = (await first.reservations.reserve(new_job(SERVER_B, 7))).bot_budget_alert
    assert eighth == DeploymentAlert(BudgetLevel.NEARLY_USED, eighth.budget) and eighth.budget.spent == 80
    assert eighth.budget.budget == 100
    await open_store.close(first)

    # A restart, and a second process: neither alerts at 80% again; the one that uses it up does.
    stores = [await open_store(cap=100) for _ in range(2)]
    results = await asyncio.gather(
        *(stores[n % 2].reservations.reserve(new_job(SERVER_A + n % 2, 10 + n)) for n in range(6))
    )
    alerts = [r.bot_budget_alert for r in results if r.bot_budget_alert is not None]
    assert [a.level for a in alerts] == [BudgetLevel.USED_UP] and alerts[0].budget.spent == 100
    assert sum(r.job is not None for r in results) == 2
    # Server budgets are not capped here: no server alert came, and the bot's never comes that way.
    assert all(r.budget_alert is None for r in results)


async def test_a_lowered_cap_alerts_the_owner_at_the_first_refusal_then_not_again(open_store: Any) -> None:
    store = await open_store(cap=None)
    for n in range(3):
        await store.reservations.reserve(new_job(SERVER_A, n))
    await open_store.close(store)
    store = await open_store(cap=20)  # the owner restarted with MONTHLY_BUDGET=20
    refused = await store.reservations.reserve(new_job(SERVER_B, 5))
    assert refused.refusal is Refusal.BOT_BUDGET_USED_UP
    assert refused.bot_budget_alert is not None and refused.bot_budget_alert.level is BudgetLevel.USED_UP
    assert (await store.reservations.reserve(new_job(SERVER_B, 6))).bot_budget_alert is None


async def test_a_new_month_alerts_the_owner_again(open_store: Any) -> None:
    clock = FakeClock("2025-03-20 10:00")
    store = await open_store(cap=10, clock=clock)
    assert (await store.reservations.reserve(new_job(SERVER_A, 1))).bot_budget_alert is not None
    clock.set("2025-04-02 10:00")
    april = (await store.reservations.reserve(new_job(SERVER_A, 2))).bot_budget_alert
    assert april is not None and april.level is BudgetLevel.USED_UP and april.budget.month == "2025-04"


class DmChannel:
    def __init__(self, client: OwnerClient, user_id: int) -> None:
        self.client, self.user_id = client, user_id

    async def send(self, text: str, **kwargs: Any) -> None:
        self.client.attempts.append(self.user_id)
        if self.user_id in self.client.dms_closed:
            response = MagicMock(status=403, reason="Forbidden")
            raise discord.Forbidden(response, {"code": 50007, "message": "Cannot send messages to this user"})
        self.client.dms.append((self.user_id, text))


class OwnerClient:
    """The Discord side the alerter uses: who owns the application, DMs, and server channels
    (which must stay silent for the bot's budget)."""

    def __init__(
        self, owner: int = OWNER, team: list[tuple[int, discord.TeamMemberRole]] | None = None
    ) -> None:
        members = [SimpleNamespace(id=uid, role=role) for uid, role in team or []]
        self.app = SimpleNamespace(
            owner=SimpleNamespace(id=owner), team=SimpleNamespace(members=members) if team else None
        )
        self.dms: list[tuple[int, str]] = []
        self.attempts: list[int] = []
        self.dms_closed: set[int] = set()
        self.channel_posts: list[int] = []

    async def application_info(self) -> SimpleNamespace:
        return self.app

    async def create_dm(self, user: discord.abc.Snowflake) -> DmChannel:
        return DmChannel(self, user.id)

    def get_partial_messageable(self, channel_id: int, guild_id: int | None = None) -> Any:
        self.channel_posts.append(channel_id)
        raise AssertionError("the bot's budget must not reach a server's channel")


USED_UP = DeploymentAlert(BudgetLevel.USED_UP, DeploymentBudget("2025-03", 1000, 1000, 1_743_465_600.0))


async def test_the_bots_budget_alert_goes_to_the_owner_by_dm_and_to_no_servers_channel(
    tmp_path: Path,
) -> None:
    store = await Store.open(tmp_path / "dm.db")
    try:
        await store.economy.update_settings(SERVER_A, {"audit_channel_id": 111}, actor_id=5)
        client = OwnerClient()
        await DiscordAlerter(client, store).bot_budget_alert(USED_UP)  # type: ignore[arg-type]
        [(user_id, text)] = client.dms
        assert user_id == OWNER and "used up" in text and "1,000 of 1,000 API credits" in text
        assert "<t:1743465600:R>" in text and "MONTHLY_BUDGET" in text
        assert client.channel_posts == []
    finally:
        await store.close()


async def test_a_team_owned_bot_alerts_its_admins_and_developers(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "team.db")
    try:
        roles = discord.TeamMemberRole
        client = OwnerClient(team=[(1, roles.admin), (2, roles.developer), (3, roles.read_only)])
        await DiscordAlerter(client, store).bot_budget_alert(USED_UP)  # type: ignore[arg-type]
        assert sorted(user_id for user_id, _ in client.dms) == [1, 2]
    finally:
        await store.close()


async def test_a_closed_dm_is_logged_once_and_the_other_owners_still_hear(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await Store.open(tmp_path / "closed.db")
    try:
        roles = discord.TeamMemberRole
        client = OwnerClient(team=[(1, roles.admin), (2, roles.admin)])
        client.dms_closed.add(1)
        with caplog.at_level(logging.WARNING, logger="bot.discord_side.alerts"):
            await DiscordAlerter(client, store).bot_budget_alert(USED_UP)  # type: ignore[arg-type]
        assert client.attempts == [1, 2]  # tried once each, never again
        assert [user_id for user_id, _ in client.dms] == [2]
        assert "Could not DM the bot's owner 1 (403 50007)" in caplog.text and "used up" in caplog.text
    finally:
        await store.close()


# -- the split service: refused privately, nothing charged, no API call ----------------------------


async def test_a_split_past_the_bots_budget_is_refused_uncharged_and_never_reaches_the_api(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await Store.open(
        tmp_path / "service.db", CreditPolicy(default_credits=100, jobs_per_member=5, monthly_budget=20)
    )
    alerter = AlerterDouble()
    async with (
        SeparationApiSimulator(processing_seconds=0.1, callbacks=False) as sim,
        aiohttp.ClientSession() as session,
    ):
        settings = make_settings(api_url=sim.base_url, api_timeout=1, poll_interval=0.05, job_timeout=30)
        services = make_services(store, session, settings, deliverer=RecordingDeliverer(), alerter=alerter)
        await services.runner.start()
        try:
            for member, guild in ((1, SERVER_A), (2, SERVER_B)):
                accepted = await services.split.reserve(
                    guild_id=guild,
                    channel_id=1,
                    user_id=member,
                    mode=TWO,
                    task_id="gen-1",
                    audio_id=f"a{member}",
                )
                services.split.start(accepted.job)
            with caplog.at_level(logging.WARNING), pytest.raises(BotBudgetUsedUp) as refused:
                await services.split.reserve(
                    guild_id=SERVER_B, channel_id=1, user_id=3, mode=TWO, task_id="gen-1", audio_id="a3"
                )
            await services.operations.wait_alerts()
            await asyncio.sleep(0.3)
        finally:
            await services.runner.stop()
            await services.operations.stop()
        assert len(sim.submits) == 2
    try:
        renews = int((await store.budgets.bot()).renews_at)
        assert "monthly budget is spent, for every server it is in" in str(refused.value)
        assert f"<t:{renews}:R>" in str(refused.value) and refused.value.balance == 100
        assert await store.accounts.balance(SERVER_B, 3) == 100
        assert alerter.events == ["bot budget:used_up:20"]  # the owner's; no server's
        assert "The bot's monthly budget (MONTHLY_BUDGET) is used up" in caplog.text
    finally:
        await store.close()


# -- what the owner sees ------------------------------------------------------------------------


async def owner_budget_text(store: Store, **options: Any) -> str:
    async def is_owner(user: discord.abc.User) -> bool:
        return user.id == OWNER

    bot = SimpleNamespace(
        is_owner=is_owner,
        get_guild=lambda _id: None,
        services=SimpleNamespace(budget=BudgetService(store), settings=make_settings()),
    )
    interaction = make_interaction(user_id=OWNER)
    await run_command(StatusCog(bot), StatusCog.budget, interaction, **options)  # type: ignore[arg-type]
    return embed_text(interaction.followup.send.await_args.kwargs["embed"])


async def test_stembot_budget_shows_the_owner_the_bots_budget_beside_the_servers(tmp_path: Path) -> None:
    store = await Store.open(
        tmp_path / "owner.db", CreditPolicy(server_monthly_budget=30, monthly_budget=100)
    )
    try:
        for n, guild in enumerate((SERVER_A, SERVER_A, SERVER_B)):
            await store.reservations.reserve(new_job(guild, n))
        overview = await owner_budget_text(store)
        assert "**The whole bot:** 30 of 100 API credits (30%) spent in" in overview
        assert "by every server together (MONTHLY_BUDGET); 70 left" in overview
        assert f"`{SERVER_A}` · 20 of 30 API credits" in overview
        one = await owner_budget_text(store, server_id=str(SERVER_B))
        assert "**The whole bot:** 30 of 100 API credits (30%)" in one
    finally:
        await store.close()


def status_report(bot_budget: DeploymentBudget | None, server_default: int | None) -> StatusReport:
    return StatusReport(
        version="test",
        account_credits=5000,
        jobs_by_state={},
        recent_errors=(),
        paused=None,
        paused_since=None,
        callbacks=CallbackServerState(None, None, 0, None, None),
        poll_interval=10.0,
        bot_budget=bot_budget,
        server_budget_default=server_default,
    )


def test_stembot_status_says_plainly_that_a_bot_without_budgets_has_no_cap() -> None:
    spent = DeploymentBudget("2025-03", 1234, None, 1_743_465_600.0)
    text = embed_text(operators.status(status_report(spent, None)))
    assert "**No cap.** 1,234 API credits spent in March 2025 by every server together" in text
    assert "Neither MONTHLY_BUDGET nor SERVER_MONTHLY_BUDGET is set" in text
    per_server = embed_text(operators.status(status_report(spent, 200)))
    assert (
        "No cap for all servers together" in per_server
        and "200 a month (SERVER_MONTHLY_BUDGET)" in per_server
    )
    capped = embed_text(operators.status(status_report(DeploymentBudget("2025-03", 900, 1000, 0.0), None)))
    assert "900 of 1,000 API credits (90%)" in capped and "No cap" not in capped


async def test_the_status_report_reads_the_bots_budget_from_the_store(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "report.db", CreditPolicy(monthly_budget=500))
    try:
        await store.reservations.reserve(new_job(SERVER_A, 1, TWELVE))
        async with aiohttp.ClientSession() as session, SeparationApiSimulator(callbacks=False) as sim:
            settings = make_settings(api_url=sim.base_url, api_timeout=1)
            operations = make_services(store, session, settings).operations
            report = await operations.report(store, callback_public_url=None, listening=None, poll_interval=1)
            await operations.stop()
        assert report.bot_budget is not None and (report.bot_budget.spent, report.bot_budget.budget) == (
            50,
            500,
        )
    finally:
        await store.close()


# -- the setting ----------------------------------------------------------------------------------


def test_monthly_budget_is_unset_by_default_and_read_when_set() -> None:
    base = {"DISCORD_TOKEN": "t", "SEPARATION_API_KEY": "k"}
    assert load_settings(base).monthly_budget is None
    assert load_settings(base | {"MONTHLY_BUDGET": ""}).monthly_budget is None
    assert load_settings(base | {"MONTHLY_BUDGET": "25000"}).monthly_budget == 25000


@pytest.mark.parametrize("raw", ["0", "-5", "ten", "1.5", "1000000001"])
def test_a_monthly_budget_that_is_not_a_positive_whole_number_stops_start_up(raw: str) -> None:
    with pytest.raises(SettingsError, match="MONTHLY_BUDGET must be a whole number of API credits from 1"):
        load_settings({"DISCORD_TOKEN": "t", "SEPARATION_API_KEY": "k", "MONTHLY_BUDGET": raw})
