"""/stembot status: who may see it, what it shows, and the pause/resume alerts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import MagicMock

import aiohttp
import discord
import pytest

from bot.api import ApiError
from bot.discord_side.alerts import DiscordAlerter
from bot.discord_side.client import EXTENSIONS, StemBot
from bot.models import (
    ApiErrorNote,
    CallbackServerState,
    Failure,
    JobState,
    NewJob,
    OrphanedTask,
    PauseReason,
    ServerStatus,
    StatusReport,
)
from bot.product import Mode
from bot.render import operators
from bot.store import Store
from cogs.status import StatusCog
from testing.provider_api import Fault, SeparationApiSimulator
from tests.unit_helpers import GUILD_ID, embed_text, make_interaction, run_command
from tests.wiring import make_services, make_settings


def report(**overrides) -> StatusReport:
    values = dict(
        version="9.9.9",
        account_credits=1234,
        jobs_by_state={JobState.SUBMITTED: 3, JobState.SUCCEEDED: 40, JobState.FAILED: 2},
        recent_errors=(ApiErrorNote(1_700_000_000.0, "submit", 455, "maintenance"),),
        paused=None,
        paused_since=None,
        callbacks=CallbackServerState("https://bot.example.org", "0.0.0.0:8080", 17, 1_700_000_100.0),
        poll_interval=60.0,
    )
    values.update(overrides)
    return StatusReport(**values)


def test_status_shows_credits_jobs_errors_callbacks_and_version() -> None:
    text = embed_text(operators.status(report()))
    assert "**1,234** API credits" in text
    assert "enough for 123 splits (Vocals + instrumental) or 24 splits (Full split)" in text
    assert "splitting 3" in text and "done 40" in text and "failed 2" in text
    assert "sharing an identical split (waits for another member's job" in text  # what it means
    assert "`submit` 455: maintenance" in text and "<t:1700000000:R>" in text
    assert "https://bot.example.org/callback/" in text and "17 received" in text
    assert "listening on 0.0.0.0:8080" in text
    assert "9.9.9" in text
    assert "Splitting is running" in text


def test_status_lists_paid_api_tasks_no_job_holds_only_when_there_are_some() -> None:
    assert "no job holds" not in embed_text(operators.status(report()))
    orphans = (
        OrphanedTask(42, "task-b`[x](https://evil.example)", 1_700_000_300.0),
        OrphanedTask(7, "task-a", 1_700_000_200.0),
    )
    text = embed_text(operators.status(report(orphaned_tasks=orphans, orphaned_total=5)))
    assert "Paid API tasks no job holds" in text
    assert "job 42: API task `task-bxhttpsevilexample`" in text  # only an id's characters
    assert "job 7: API task `task-a`" in text and "<t:1700000300:R>" in text
    assert "and 3 more (table `orphaned_tasks`)" in text


def test_status_says_when_splitting_is_paused_and_why() -> None:
    text = embed_text(
        operators.status(
            report(paused=PauseReason.OUT_OF_CREDITS, paused_since=1_700_000_000.0, account_credits=0)
        )
    )
    assert "Splitting is paused" in text and "out of credits" in text


def test_status_without_callbacks_says_polling_only() -> None:
    text = embed_text(
        operators.status(report(callbacks=CallbackServerState(None, None, 0, None), poll_interval=10))
    )
    assert "off" in text and "polling every 10s" in text


def test_status_says_when_the_web_server_is_off_and_why() -> None:
    reason = "cannot listen on CALLBACK_HOST 127.0.0.1, CALLBACK_PORT 8080 (Address already in use)"
    text = embed_text(
        operators.status(report(callbacks=CallbackServerState(None, None, 0, None, reason), poll_interval=10))
    )
    assert "Web server **off**" in text and "Address already in use" in text


def test_alert_texts_are_plain() -> None:
    assert "out of credits" in operators.splitting_paused_alert(PauseReason.OUT_OF_CREDITS)
    assert "refused the bot's API key" in operators.splitting_paused_alert(PauseReason.KEY_REFUSED)
    assert "resumed" in operators.splitting_resumed_alert()


HERE, ELSEWHERE = GUILD_ID, GUILD_ID + 1


async def add_jobs(store: Store, guild_id: int, *, succeeded: int, failed: int, running: int) -> None:
    for n in range(succeeded + failed + running):
        track = f"{guild_id}-{n}"  # a different track each: identical requests would share one job
        job = (
            await store.reservations.reserve(
                NewJob(guild_id, 1, 500 + n, Mode.SEPARATE_VOCAL, "task", track, 10, track),
                role_ids=(),
            )
        ).job
        assert job is not None
        if n < succeeded:
            await store.reservations.settle(job.id, succeeded=True)
        elif n < succeeded + failed:
            await store.reservations.settle(job.id, succeeded=False, failure=Failure.TIMED_OUT)


@pytest.fixture
async def status_bot(tmp_path: Path) -> AsyncIterator[SimpleNamespace]:
    store = await Store.open(tmp_path / "s.db")
    async with SeparationApiSimulator(callbacks=False) as sim, aiohttp.ClientSession() as session:
        settings = make_settings(api_url=sim.base_url, account_check_interval=3600)
        operations = make_services(store, session, settings).operations
        owner = 999

        async def is_owner(user: discord.abc.User) -> bool:
            return user.id == owner

        async def status_report() -> StatusReport:
            return await operations.report(
                store,
                callback_public_url="https://stembot.operator.example",
                listening="10.1.2.3:8080",
                poll_interval=10,
            )

        async def server_status(guild_id: int) -> ServerStatus:
            return await operations.server_status(store, guild_id)

        yield SimpleNamespace(
            is_owner=is_owner,
            status_report=status_report,
            server_status=server_status,
            sim=sim,
            owner=owner,
            operations=operations,
            store=store,
            services=SimpleNamespace(settings=settings),
        )
        await operations.stop()
    await store.close()


async def test_members_without_manage_server_are_refused(status_bot) -> None:
    interaction = make_interaction(permissions=discord.Permissions.none())
    status_bot.sim.account_credits = 4321
    await run_command(StatusCog(status_bot), StatusCog.status, interaction)
    interaction.response.defer.assert_awaited_once()
    assert interaction.response.defer.await_args.kwargs["ephemeral"] is True
    interaction.followup.send.assert_awaited_once()
    reply = interaction.followup.send.await_args
    assert reply.kwargs["ephemeral"] is True
    text = embed_text(reply.kwargs["embed"])  # an embed, like every other refusal
    assert "Only server managers" in text and "Ask a server manager" in text
    assert "4321" not in text and "4,321" not in text
    assert status_bot.sim.polls() == 0 and not any(c.endpoint == "credit" for c in status_bot.sim.calls)


async def status_seen_by(status_bot, interaction) -> str:
    await run_command(StatusCog(status_bot), StatusCog.status, interaction)
    interaction.response.defer.assert_awaited_once()
    reply = interaction.followup.send.await_args
    assert reply.kwargs["ephemeral"] is True
    return embed_text(reply.kwargs["embed"])


def counts(text: str, name: str) -> dict[str, int]:
    """The job counts of the embed field `name` ("queued 0 · … · failed 1"), zeros left out."""
    lines = text.split("\n")
    pairs = (item.rsplit(" ", 1) for item in lines[lines.index(name) + 1].split(" · "))
    return {state: int(n.replace(",", "")) for state, n in pairs if n != "0"}


@pytest.mark.parametrize("rights", ["manage_guild", "administrator"])
async def test_a_server_manager_sees_their_own_servers_jobs_and_the_pause_only(status_bot, rights) -> None:
    status_bot.sim.account_credits = 4321
    await add_jobs(status_bot.store, HERE, succeeded=2, failed=1, running=1)
    await add_jobs(status_bot.store, ELSEWHERE, succeeded=7, failed=0, running=3)
    status_bot.operations.calls.api_call("submit", ApiError("upstream maintenance window", code=455))
    status_bot.operations.pause(PauseReason.OUT_OF_CREDITS)
    manager = make_interaction(guild_id=HERE, permissions=discord.Permissions(**{rights: True}))

    text = await status_seen_by(status_bot, manager)

    assert counts(text, "Jobs in this server") == {"queued": 1, "done": 2, "failed": 1}
    assert "Splitting is paused" in text
    for operator_only in ("4321", "4,321", "API credits", "every server", "succeeded 7", "done 7",
                          "maintenance window", "stembot.operator.example", "10.1.2.3", "Callbacks"):
        assert operator_only not in text
    assert not any(c.endpoint == "credit" for c in status_bot.sim.calls)  # nothing asked of the API


@pytest.mark.parametrize("manages", [False, True], ids=["without Manage Server", "also a manager"])
async def test_the_bots_owner_sees_the_whole_bot_in_any_server(status_bot, manages) -> None:
    status_bot.sim.account_credits = 4321
    await add_jobs(status_bot.store, HERE, succeeded=2, failed=1, running=0)
    await add_jobs(status_bot.store, ELSEWHERE, succeeded=7, failed=0, running=0)
    permissions = discord.Permissions(manage_guild=manages)
    owner = make_interaction(guild_id=HERE, user_id=status_bot.owner, permissions=permissions)

    text = await status_seen_by(status_bot, owner)

    assert "**4,321** API credits" in text
    assert counts(text, "Jobs in every server (all processes)") == {"done": 9, "failed": 1}
    assert counts(text, "Jobs in this server") == {"done": 2, "failed": 1}
    assert "https://stembot.operator.example/callback/" in text and "10.1.2.3:8080" in text


async def test_a_manager_gets_the_servers_view_when_discord_will_not_say_who_owns_the_bot(status_bot) -> None:
    async def unknown_owner(user: discord.abc.User) -> bool:
        raise discord.HTTPException(MagicMock(status=503, reason="Service Unavailable"), "try later")

    status_bot.is_owner = unknown_owner
    status_bot.sim.account_credits = 4321
    await add_jobs(status_bot.store, HERE, succeeded=1, failed=0, running=0)
    manager = make_interaction(permissions=discord.Permissions(manage_guild=True))

    text = await status_seen_by(status_bot, manager)

    assert counts(text, "Jobs in this server") == {"done": 1}
    assert "4321" not in text and "4,321" not in text


async def test_one_servers_job_counts_leave_other_servers_out(status_bot) -> None:
    await add_jobs(status_bot.store, HERE, succeeded=1, failed=0, running=2)
    await add_jobs(status_bot.store, ELSEWHERE, succeeded=4, failed=0, running=0)

    assert await status_bot.store.jobs.count_guild_by_state(HERE) == {
        JobState.SUCCEEDED: 1,
        JobState.RESERVED: 2,
    }
    assert await status_bot.store.jobs.count_guild_by_state(ELSEWHERE + 1) == {}


async def test_asking_for_status_resumes_a_pause_once_the_account_works(status_bot) -> None:
    status_bot.operations.pause(PauseReason.KEY_REFUSED)
    status_bot.sim.script("credit", Fault("code", 401))
    first = await status_bot.status_report()
    assert first.paused is PauseReason.KEY_REFUSED and first.account_credits is None
    assert [note.code for note in first.recent_errors] == [401]
    second = await status_bot.status_report()
    assert second.paused is None and second.account_credits == status_bot.sim.account_credits


async def test_stembot_status_command_is_for_server_managers_by_default() -> None:
    bot = StemBot(lambda bot: SimpleNamespace())  # type: ignore[arg-type]
    for extension in EXTENSIONS:
        await bot.load_extension(extension)
    [group] = [c.to_dict(bot.tree) for c in bot.tree.get_commands() if c.name == "stembot"]
    assert int(group["default_member_permissions"]) == discord.Permissions(manage_guild=True).value
    assert [o["name"] for o in group["options"]] == ["status", "budget", "report"]
    assert group["contexts"] == [0]


class ChannelDouble:
    def __init__(self, sent: list[tuple[int, str]], channel_id: int) -> None:
        self.sent, self.channel_id = sent, channel_id

    async def send(self, text: str, **kwargs) -> None:
        self.sent.append((self.channel_id, text))


async def test_alerts_go_to_every_audit_channel(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "a.db")
    try:
        await store.economy.update_settings(1, {"audit_channel_id": 111}, actor_id=5)
        await store.economy.update_settings(2, {"audit_channel_id": 222}, actor_id=5)
        await store.economy.update_settings(3, {"cooldown_seconds": 5}, actor_id=5)  # no audit channel
        sent: list[tuple[int, str]] = []
        client = SimpleNamespace(get_partial_messageable=lambda cid, guild_id: ChannelDouble(sent, cid))
        alerter = DiscordAlerter(client, store)  # type: ignore[arg-type]
        await alerter.splitting_paused(PauseReason.OUT_OF_CREDITS)
        assert sorted(cid for cid, _ in sent) == [111, 222]
        assert all("paused splitting" in text for _, text in sent)
    finally:
        await store.close()
