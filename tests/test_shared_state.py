"""What several processes on one PostgreSQL database share beyond the rows themselves: cached
settings dropped everywhere when a moderator changes them, notifications between processes. Each
"process" is a `Store` of its own on the same real database (its own pool and listening connection).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bot.models import SERVER_WIDE, CreditPolicy, NewJob, Refusal
from bot.product import Mode
from bot.store import Store
from bot.store.database import RECONNECTED
from tests.postgres import PostgresServer

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
