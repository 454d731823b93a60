"""What several processes on one PostgreSQL database share beyond the rows themselves: cached
settings dropped everywhere when a moderator changes them, the pause switch, notifications between
processes. Each "process" is a `Store` of its own on the same real database (its own pool and
listening connection), with its own services where a test needs them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from bot.errors import SplittingPaused
from bot.models import SERVER_WIDE, CreditPolicy, JobState, NewJob, PauseReason, Refusal
from bot.operations import Operations
from bot.product import Mode
from bot.render import operators
from bot.services import Services
from bot.settings import DatabaseTarget
from bot.store import Store
from bot.store.database import RECONNECTED
from testing.provider_api import SeparationApiSimulator
from tests.postgres import PostgresServer
from tests.wiring import AlerterDouble, make_services, make_settings

GUILD, MEMBER, MODERATOR = 1000, 2000, 3000


@pytest.fixture
async def two_processes(postgres_server: PostgresServer) -> AsyncIterator[tuple[Store, Store]]:
    url = await postgres_server.new_database()
    first = await Store.open(url, CreditPolicy(default_credits=100, jobs_per_member=5))
    second = await Store.open(url, CreditPolicy(default_credits=100, jobs_per_member=5))
    yield first, second
    await first.close()
    await second.close()
    await postgres_server.drop(url)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 2.0) -> None:
    """Until `check()` holds: a notification crosses to the other process in milliseconds."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.01)


def new_job(n: int, member: int = MEMBER, mode: Mode = Mode.SEPARATE_VOCAL) -> NewJob:
    """A split of track `n` (each its own track: none shares another's job)."""
    return NewJob(
        guild_id=GUILD,
        channel_id=4000,
        user_id=member,
        mode=mode,
        source_task_id="task",
        audio_id=f"audio-{n}",
        cost=mode.cost,
        callback_token=f"tok-{n}",
    )


async def test_a_notification_reaches_every_process_listening_on_its_channel(two_processes) -> None:
    first, second = two_processes
    heard: dict[str, list[str]] = {"first": [], "second": []}
    await first.db.listen("stembot_test", heard["first"].append)
    await second.db.listen("stembot_test", heard["second"].append)
    await first.db.notify("stembot_test", "hello")

    async def both_heard() -> bool:
        return heard["first"] == ["hello"] and heard["second"] == ["hello"]

    await eventually(both_heard)


async def test_a_notification_reaches_this_process_on_sqlite(sqlite_store: Store) -> None:
    heard: list[str] = []
    await sqlite_store.db.listen("stembot_test", heard.append)
    await sqlite_store.db.notify("stembot_test", "hello")
    await asyncio.sleep(0)  # heard once the notifier goes on, as on PostgreSQL
    assert heard == ["hello"]


async def test_economy_settings_are_cached_per_process(two_processes) -> None:
    """What makes the notification necessary: a change behind the store's back is not seen."""
    first, second = two_processes
    await first.economy.update_settings(GUILD, {"jobs_per_member": 3}, actor_id=MODERATOR)
    await eventually(lambda: _jobs_per_member_is(second, 3))
    await second.db.write("UPDATE economy_settings SET jobs_per_member = 4 WHERE guild_id = ?", (GUILD,))
    await asyncio.sleep(0.2)
    assert (await second.economy.get(GUILD))[0].jobs_per_member == 3


async def test_a_settings_change_through_one_process_is_seen_by_the_other_at_once(two_processes) -> None:
    first, second = two_processes
    assert (await second.economy.get(GUILD))[0].jobs_per_member is None  # now cached there
    await first.economy.update_settings(GUILD, {"jobs_per_member": 1}, actor_id=MODERATOR)
    await eventually(lambda: _jobs_per_member_is(second, 1))

    # And the rule holds there: the second process's reservations obey the new limit.
    assert (await second.reservations.reserve(new_job(0))).job is not None
    assert (await second.reservations.reserve(new_job(1))).refusal is Refusal.TOO_MANY_IN_FLIGHT


async def test_an_allowance_set_through_one_process_is_seen_by_the_other_at_once(two_processes) -> None:
    first, second = two_processes
    assert (await second.economy.get(GUILD))[1] == []
    await first.economy.set_allowance(
        GUILD, 500, role_id=SERVER_WIDE, period=None, apply_now=False, actor_id=MODERATOR
    )

    async def seen() -> bool:
        return [rule.amount for rule in (await second.economy.get(GUILD))[1]] == [500]

    await eventually(seen)


async def test_a_budget_set_through_one_process_is_seen_by_the_other_at_once(two_processes) -> None:
    first, second = two_processes
    assert (await second.reservations.reserve(new_job(1, member=MEMBER + 1))).job is not None  # no cap
    await first.budgets.set_budget(GUILD, 0, actor_id=MODERATOR)
    tries = iter(range(2, 1000))

    async def refused_there() -> bool:
        reservation = await second.reservations.reserve(new_job(next(tries), member=MEMBER + 2))
        return reservation.refusal is Refusal.BUDGET_USED_UP

    await eventually(refused_there)


async def test_after_a_lost_listening_connection_every_cached_copy_is_dropped(two_processes) -> None:
    _, second = two_processes
    await second.economy.get(GUILD)
    await second.db.write("INSERT INTO economy_settings (guild_id, jobs_per_member) VALUES (?, 4)", (GUILD,))
    second.changed_elsewhere(RECONNECTED)
    assert (await second.economy.get(GUILD))[0].jobs_per_member == 4


async def test_the_listening_connection_is_reopened_after_the_server_drops_it(two_processes) -> None:
    first, second = two_processes
    await second.economy.get(GUILD)
    await first.db.write(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'stembot-listen'"
    )
    # Changed while nobody listened: the second process learns it once it listens again.
    await first.db.write("INSERT INTO economy_settings (guild_id, jobs_per_member) VALUES (?, 2)", (GUILD,))
    await eventually(lambda: _jobs_per_member_is(second, 2), timeout=5)
    await first.economy.update_settings(GUILD, {"jobs_per_member": 3}, actor_id=MODERATOR)
    await eventually(lambda: _jobs_per_member_is(second, 3))


async def _jobs_per_member_is(store: Store, value: int) -> bool:
    return (await store.economy.get(GUILD))[0].jobs_per_member == value


# -- the pause switch ------------------------------------------------------------------------------


class Process:
    """One bot process's services over its own store on the shared database."""

    def __init__(self, store: Store, services: Services, alerter: AlerterDouble) -> None:
        self.store, self.services, self.alerter = store, services, alerter

    @property
    def operations(self) -> Operations:
        return self.services.operations


@pytest.fixture
async def sim() -> AsyncIterator[SeparationApiSimulator]:
    async with SeparationApiSimulator(callbacks=False) as simulator:
        yield simulator


@pytest.fixture
async def start_process(
    postgres_server: PostgresServer, sim: SeparationApiSimulator
) -> AsyncIterator[Callable[..., Awaitable[Process]]]:
    """`await start_process()`: a bot process on the test's database (one per test), its pause
    switch followed as `Services.start` does."""
    url = await postgres_server.new_database()
    opened: list[Process] = []
    async with aiohttp.ClientSession() as session:

        async def start(check_interval: float = 3600, target: DatabaseTarget = url) -> Process:
            store = await Store.open(target)
            alerter = AlerterDouble()
            settings = make_settings(
                api_url=sim.base_url, api_timeout=1, account_check_interval=check_interval
            )
            process = Process(store, make_services(store, session, settings, alerter=alerter), alerter)
            opened.append(process)
            await process.operations.start()
            return process

        yield start
        for process in opened:
            await process.operations.stop()
            await process.store.close()
    await postgres_server.drop(url)


async def split(process: Process, n: int) -> None:
    await process.services.split.reserve(
        guild_id=GUILD,
        channel_id=4000,
        user_id=MEMBER,
        mode=Mode.SEPARATE_VOCAL,
        task_id=f"t{n}",
        audio_id=f"a{n}",
    )


async def test_a_pause_in_one_process_refuses_splits_in_every_process_with_one_alert(start_process) -> None:
    first, second = await start_process(), await start_process()
    first.operations.pause(PauseReason.OUT_OF_CREDITS)

    async def second_paused() -> bool:
        return second.operations.paused is PauseReason.OUT_OF_CREDITS

    await eventually(second_paused)
    with pytest.raises(SplittingPaused):
        await split(second, 1)  # refused up front: nothing reserved
    assert await second.store.jobs.count_by_state() == {}
    assert second.operations.paused_since == first.operations.paused_since
    assert "stembot_submissions_paused 1.0" in second.operations.metrics.render().decode()
    for process in (first, second):
        await process.operations.wait_alerts()
    assert (first.alerter.events, second.alerter.events) == (["paused:out_of_credits"], [])


async def test_processes_meeting_the_error_at_once_alert_once(start_process) -> None:
    processes = [await start_process() for _ in range(3)]
    for process in processes:
        process.operations.pause(PauseReason.KEY_REFUSED)
    for process in processes:
        await process.operations.wait_alerts()
    assert sum(process.alerter.events.count("paused:key_refused") for process in processes) == 1


async def test_every_process_resumes_together_with_one_alert(start_process, sim) -> None:
    first, second = await start_process(), await start_process()
    first.operations.pause(PauseReason.OUT_OF_CREDITS)
    await first.operations.wait_alerts()
    await eventually(lambda: _paused(second))

    sim.account_credits = 5000
    assert await second.operations.check_account() == 5000  # the second process finds it works

    async def first_resumed() -> bool:
        return first.operations.paused is None

    await eventually(first_resumed)
    assert "stembot_submissions_paused 0.0" in first.operations.metrics.render().decode()
    await split(first, 2)  # taken again
    for process in (first, second):
        await process.operations.wait_alerts()
    assert first.alerter.events + second.alerter.events == ["paused:out_of_credits", "resumed"]
    assert await first.operations.check_account() == 5000  # nothing left to resume: no second alert
    await first.operations.wait_alerts()
    assert first.alerter.events + second.alerter.events == ["paused:out_of_credits", "resumed"]


async def test_a_process_started_while_splitting_is_paused_starts_paused(start_process, sim) -> None:
    first = await start_process()
    sim.account_credits = 0
    first.operations.pause(PauseReason.OUT_OF_CREDITS)
    await first.operations.wait_alerts()
    later = await start_process()  # it checks the account at once: still empty
    assert later.operations.paused is PauseReason.OUT_OF_CREDITS
    await later.operations.wait_alerts()
    assert later.alerter.events == []


async def test_a_pause_outlives_a_restart_and_resumes_once_the_account_works(start_process, sim) -> None:
    first = await start_process()
    first.operations.pause(PauseReason.KEY_REFUSED)
    await first.operations.wait_alerts()
    await first.operations.stop()
    sim.account_credits = 5000
    restarted = await start_process(check_interval=0.05)  # the key was fixed meanwhile
    await eventually(lambda: _resumed(restarted))
    await restarted.operations.wait_alerts()
    assert restarted.alerter.events == ["resumed"]
    assert await restarted.store.pause.state() is None


# -- /stembot status ------------------------------------------------------------------------------


async def test_the_owners_status_counts_the_jobs_of_every_process(start_process) -> None:
    first, second = await start_process(), await start_process()
    await split(first, 1)
    await split(second, 2)
    report = await second.operations.report(
        second.store, callback_public_url=None, listening=None, poll_interval=10
    )
    assert report.jobs_by_state == {JobState.RESERVED: 2}
    names = [field.name for field in operators.status(report).fields]
    assert "Jobs in every server (all processes)" in names
    assert "Recent API errors (this process)" in names and "Callbacks (this process)" in names


async def _paused(process: Process) -> bool:
    return process.operations.paused is not None


async def _resumed(process: Process) -> bool:
    return process.operations.paused is None
