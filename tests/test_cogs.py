"""The cogs' command callbacks, called directly with a spec'd interaction and the real services.

The store is real SQLite on tmp_path; only the job runner is replaced, by a double that records
`schedule` calls (the split service needs nothing else from it).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from unittest.mock import MagicMock

import aiohttp
import discord
import pytest
from discord import app_commands

from bot.errors import InvalidTrackId
from bot.models import CreditPolicy, Failure, JobState, LedgerKind, StemLink
from bot.product import Mode
from bot.render import common, results
from bot.store import Store
from cogs.credits import CreditsCog
from cogs.split import SplitCog
from tests.unit_helpers import (
    APPLICATION_ID,
    CHANNEL_ID,
    GUILD_ID,
    USER_ID,
    RecordingScheduler,
    embed_text,
    make_interaction,
    run_command,
)
from tests.wiring import make_services

DEFAULT_CREDITS = 100
TASK_ID = "5c79a1b2e6f04d7a9c3b8e2f1a0d4c6b"
AUDIO_ID = "e231f4a8-6b0d-4c3e-9a7f-1d2b3c4e5f60"


class World:
    """The real services on a real database, a recording scheduler and a shared event log."""

    def __init__(self, store: Store, session: aiohttp.ClientSession) -> None:
        self.store = store
        self.events: list[tuple[str, object]] = []
        self.scheduler = RecordingScheduler(self.events)
        self.services = make_services(store, session, queue=self.scheduler)
        self.bot = SimpleNamespace(services=self.services)
        self.split_cog = SplitCog(self.bot)  # type: ignore[arg-type]
        self.credits_cog = CreditsCog(self.bot)  # type: ignore[arg-type]

    def interaction(self, **kwargs) -> MagicMock:
        return make_interaction(self.events, **kwargs)

    async def split(self, interaction, task_id=TASK_ID, audio_id=AUDIO_ID, mode: Mode | None = None) -> None:
        choice = app_commands.Choice(name=common.mode_label(mode), value=mode.value) if mode else None
        await run_command(self.split_cog, SplitCog.split, interaction, task_id, audio_id, choice)

    async def balance(self, user_id: int = USER_ID) -> int:
        return await self.store.accounts.balance(GUILD_ID, user_id)

    async def jobs(self, user_id: int = USER_ID):
        return await self.store.jobs.recent(GUILD_ID, user_id, limit=100)


@pytest.fixture
async def make_world(tmp_path):
    stores: list[Store] = []

    async def build(*, default_credits: int = DEFAULT_CREDITS, jobs_per_member: int = 2) -> World:
        store = await Store.open(
            tmp_path / f"t{len(stores)}.db", CreditPolicy(default_credits, jobs_per_member)
        )
        stores.append(store)
        return World(store, session)

    async with aiohttp.ClientSession() as session:
        yield build
    for store in stores:
        await store.close()


@pytest.fixture
async def world(make_world) -> World:
    return await make_world()


def interaction_call_names(interaction: MagicMock) -> list[str]:
    """The calls that reach Discord, in order (`response.is_done` is a local question)."""
    return [name for name, _, _ in interaction.mock_calls if name != "response.is_done"]


def sent_embed(call) -> discord.Embed:
    embed = call.kwargs.get("embed")
    assert isinstance(embed, discord.Embed), call
    return embed


# -- bad ids -----------------------------------------------------------------------------------

BAD_IDS = [
    pytest.param("", id="empty"),
    pytest.param("   \t ", id="blank-after-strip"),
    pytest.param("abc def", id="inner-space"),
    pytest.param("abc\ndef", id="newline"),
    pytest.param("abc\x00def", id="nul"),
    pytest.param("abc\x1b[31mdef", id="escape"),
    pytest.param("abc\u200bdef", id="zero-width-space"),
    pytest.param("a" * 101, id="101-chars"),
]


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("option", ["task_id", "audio_id"])
async def test_bad_id_is_answered_privately_at_once(world, option, bad):
    interaction = world.interaction()

    await world.split(interaction, **{option: bad})

    assert interaction_call_names(interaction) == ["response.send_message"]
    assert interaction.response.send_message.await_args.kwargs.get("ephemeral") is True
    assert option in embed_text(sent_embed(interaction.response.send_message.await_args))


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("option", ["task_id", "audio_id"])
async def test_bad_id_records_no_job_no_ledger_row_and_schedules_nothing(world, option, bad):
    await world.split(world.interaction(), **{option: bad})

    assert await world.jobs() == []
    assert await world.store.accounts.ledger(GUILD_ID, USER_ID) == []
    assert world.scheduler.calls == []


HOSTILE_IDS = [
    pytest.param("x`[Verify](https://evil.example)`", id="link-breaking-out-of-a-code-span"),
    pytest.param("[Verify](https://evil.example)", id="markdown-link"),
    pytest.param("<@&123456789012345678>", id="role-mention"),
    pytest.param("@everyone", id="everyone"),
    pytest.param("abc||spoiler||", id="spoiler"),
    pytest.param("abc.def", id="dot"),
    pytest.param("abc/def", id="slash"),
    pytest.param("\uff41\uff42\uff43", id="fullwidth-letters"),
    pytest.param("caf\u00e9", id="non-ascii-letter"),
    pytest.param("\u0661\u0662", id="non-ascii-digits"),
]
"""Ids the API never issues: they are shown in public messages, so anything but letters, digits,
`-` and `_` could turn into Markdown, a mention or a link under the bot's name."""


@pytest.mark.parametrize("bad", HOSTILE_IDS)
@pytest.mark.parametrize("option", ["task_id", "audio_id"])
async def test_an_id_with_characters_ids_never_have_is_refused_privately_and_costs_nothing(
    world, option, bad
):
    interaction = world.interaction()

    await world.split(interaction, **{option: bad})

    assert interaction_call_names(interaction) == ["response.send_message"]
    call = interaction.response.send_message.await_args
    assert call.kwargs.get("ephemeral") is True
    text = embed_text(sent_embed(call))
    assert option in text and "letters, digits" in text and "Nothing was charged" in text
    assert "evil.example" not in text and "<@&" not in text and "@everyone" not in text
    assert await world.jobs() == []
    assert await world.store.accounts.ledger(GUILD_ID, USER_ID) == []
    assert world.scheduler.calls == []


@pytest.mark.parametrize("bad", HOSTILE_IDS)
async def test_the_split_service_refuses_hostile_ids_whoever_calls_it(world, bad):
    # The rule lives in the service: a caller other than /split (a button, a future command)
    # cannot store an id the cog would have refused.
    with pytest.raises(InvalidTrackId) as refused:
        await world.services.split.reserve(
            guild_id=GUILD_ID, channel_id=CHANNEL_ID, user_id=USER_ID, mode=Mode.SEPARATE_VOCAL,
            task_id=TASK_ID, audio_id=bad,
        )  # fmt: skip

    assert refused.value.option == "audio_id"
    assert await world.jobs() == [] and world.scheduler.calls == []


async def test_ids_of_letters_digits_dashes_and_underscores_are_accepted(world):
    await world.split(world.interaction(), task_id="Gen_2025-abc_XYZ", audio_id="e231f4a8-6b0d_4c3e")

    [job] = await world.jobs()
    assert (job.source_task_id, job.audio_id) == ("Gen_2025-abc_XYZ", "e231f4a8-6b0d_4c3e")


async def test_an_id_of_exactly_100_chars_is_accepted(world):
    interaction = world.interaction()

    await world.split(interaction, task_id="t" * 100, audio_id="a" * 100)

    [job] = await world.jobs()
    assert (job.source_task_id, job.audio_id) == ("t" * 100, "a" * 100)


async def test_ids_are_stored_without_surrounding_whitespace(world):
    await world.split(world.interaction(), task_id=f"  {TASK_ID}\n", audio_id=f"\t{AUDIO_ID} ")

    [job] = await world.jobs()
    assert (job.source_task_id, job.audio_id) == (TASK_ID, AUDIO_ID)


# -- a valid request ---------------------------------------------------------------------------


async def test_valid_request_defers_publicly_before_anything_else(world):
    interaction = world.interaction()
    jobs_at_defer: list[int] = []

    async def defer(**kwargs):
        world.events.append(("defer", kwargs))
        jobs_at_defer.append(len(await world.jobs()))

    interaction.response.defer.side_effect = defer

    await world.split(interaction)

    assert interaction_call_names(interaction)[0] == "response.defer"
    assert interaction.response.defer.await_args.kwargs.get("ephemeral", False) is False
    assert jobs_at_defer == [0]


async def test_valid_request_reserves_then_shows_queued_then_schedules(world):
    interaction = world.interaction()
    seen_at_edit: list[tuple[int, int]] = []

    async def edit_original_response(**kwargs):
        world.events.append(("edit_original_response", kwargs))
        seen_at_edit.append((len(await world.jobs()), await world.balance()))

    interaction.edit_original_response.side_effect = edit_original_response

    await world.split(interaction)

    [job] = await world.jobs()
    assert [name for name, _ in world.events] == ["defer", "edit_original_response", "schedule"]
    assert seen_at_edit == [(1, DEFAULT_CREDITS - Mode.SEPARATE_VOCAL.cost)]
    assert world.scheduler.calls == [(job.id, 0.0)]


async def test_valid_request_takes_the_cost_and_writes_the_ledger(world):
    await world.split(world.interaction())

    [job] = await world.jobs()
    assert job.state is JobState.RESERVED
    assert (job.mode, job.cost) == (Mode.SEPARATE_VOCAL, Mode.SEPARATE_VOCAL.cost)
    assert await world.balance() == DEFAULT_CREDITS - Mode.SEPARATE_VOCAL.cost
    ledger = await world.store.accounts.ledger(GUILD_ID, USER_ID)
    assert [(e.kind, e.amount, e.balance_after, e.job_id) for e in ledger] == [
        (LedgerKind.ALLOWANCE, DEFAULT_CREDITS, DEFAULT_CREDITS, None),
        (LedgerKind.RESERVE, -Mode.SEPARATE_VOCAL.cost, DEFAULT_CREDITS - Mode.SEPARATE_VOCAL.cost, job.id),
    ]
    assert await world.store.accounts.ledger_mismatches() == []


async def test_valid_request_records_where_and_for_whom_the_job_runs(world):
    created = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

    await world.split(world.interaction(token="tok-xyz", created_at=created))

    [job] = await world.jobs()
    assert (job.guild_id, job.channel_id, job.user_id) == (GUILD_ID, CHANNEL_ID, USER_ID)
    assert (job.source_task_id, job.audio_id) == (TASK_ID, AUDIO_ID)
    assert (job.application_id, job.interaction_token) == (APPLICATION_ID, "tok-xyz")
    # Discord's interaction token lives 15 minutes; the job must not count on it for longer.
    assert job.interaction_expires_at is not None
    assert created.timestamp() < job.interaction_expires_at <= (created + timedelta(minutes=15)).timestamp()


async def test_a_split_stores_the_upload_limit_discord_reported_with_it(world):
    await world.split(world.interaction(filesize_limit=25 * 1024 * 1024))

    [job] = await world.jobs()
    assert job.filesize_limit == 25 * 1024 * 1024


@pytest.mark.parametrize(
    "reported",
    [None, 0, -1, True, 10.5, "26214400", 2**63, MagicMock()],
    ids=["missing", "zero", "negative", "bool", "float", "string", "too-big", "not-a-number"],
)
async def test_an_upload_limit_that_is_not_a_positive_whole_number_is_not_stored(world, reported):
    await world.split(world.interaction(filesize_limit=reported))

    [job] = await world.jobs()
    assert job.filesize_limit is None
    assert job.state is JobState.RESERVED  # the split itself goes ahead


async def test_queued_message_shows_the_job_and_its_cost_but_never_the_balance(world):
    interaction = world.interaction()

    await world.split(interaction)

    [job] = await world.jobs()
    interaction.edit_original_response.assert_awaited_once()
    text = embed_text(sent_embed(interaction.edit_original_response.await_args))
    assert f"Job #{job.id}" in text
    assert f"{Mode.SEPARATE_VOCAL.cost} credits held" in text
    # The queued message is public: what the member has left is nobody else's business.
    assert str(DEFAULT_CREDITS - Mode.SEPARATE_VOCAL.cost) not in text and "left" not in text
    interaction.followup.send.assert_not_awaited()
    interaction.delete_original_response.assert_not_awaited()


async def test_job_is_still_scheduled_when_the_queued_message_cannot_be_shown(world):
    interaction = world.interaction()
    interaction.edit_original_response.side_effect = discord.HTTPException(
        MagicMock(status=503, reason="Service Unavailable"), "unavailable"
    )

    await world.split(interaction)

    [job] = await world.jobs()
    assert world.scheduler.calls == [(job.id, 0.0)]


async def test_split_stem_choice_reserves_its_cost(world):
    await world.split(world.interaction(), mode=Mode.SPLIT_STEM)

    [job] = await world.jobs()
    assert (job.mode, job.cost) == (Mode.SPLIT_STEM, 50)
    assert await world.balance() == DEFAULT_CREDITS - 50
    ledger = await world.store.accounts.ledger(GUILD_ID, USER_ID)
    assert [(e.kind, e.amount) for e in ledger if e.kind is LedgerKind.RESERVE] == [(LedgerKind.RESERVE, -50)]


async def test_separate_vocal_choice_reserves_its_cost(world):
    await world.split(world.interaction(), mode=Mode.SEPARATE_VOCAL)

    [job] = await world.jobs()
    assert (job.mode, job.cost) == (Mode.SEPARATE_VOCAL, 10)
    assert await world.balance() == DEFAULT_CREDITS - 10


# -- refusals ----------------------------------------------------------------------------------


async def test_insufficient_credits_replaces_the_public_reply_with_a_private_one(make_world):
    world = await make_world(default_credits=40)
    interaction = world.interaction()

    await world.split(interaction, mode=Mode.SPLIT_STEM)

    assert interaction_call_names(interaction) == [
        "response.defer",
        "delete_original_response",
        "followup.send",
    ]
    assert interaction.followup.send.await_args.kwargs.get("ephemeral") is True


async def test_insufficient_credits_reply_shows_balance_and_cost(make_world):
    world = await make_world(default_credits=40)
    interaction = world.interaction()

    await world.split(interaction, mode=Mode.SPLIT_STEM)

    text = embed_text(sent_embed(interaction.followup.send.await_args))
    assert "40 credits" in text
    assert f"{Mode.SPLIT_STEM.cost} credits" in text


async def test_insufficient_credits_changes_nothing_and_schedules_nothing(make_world):
    world = await make_world(default_credits=40)

    await world.split(world.interaction(), mode=Mode.SPLIT_STEM)

    assert await world.balance() == 40
    assert await world.jobs() == []
    assert [e.kind for e in await world.store.accounts.ledger(GUILD_ID, USER_ID)] == [LedgerKind.ALLOWANCE]
    assert world.scheduler.calls == []


async def test_too_many_jobs_in_flight_is_refused_privately(make_world):
    world = await make_world(jobs_per_member=1)
    await world.split(world.interaction())
    second = world.interaction()

    await world.split(second, audio_id="another-audio-id")

    assert interaction_call_names(second) == [
        "response.defer",
        "delete_original_response",
        "followup.send",
    ]
    assert second.followup.send.await_args.kwargs.get("ephemeral") is True
    text = embed_text(sent_embed(second.followup.send.await_args))
    assert "1 split running" in text and "Try again as soon as one has finished" in text


async def test_no_public_message_about_a_split_shows_the_members_balance(make_world):
    world = await make_world(default_credits=12_345)
    interaction = world.interaction()

    await world.split(interaction, mode=Mode.SPLIT_STEM)

    [job] = await world.jobs()
    balance = await world.balance()
    public = [embed_text(sent_embed(interaction.edit_original_response.await_args))]
    public.append(embed_text(results.processing(job)))
    for state, failure in ((JobState.SUCCEEDED, None), (JobState.FAILED, Failure.TIMED_OUT)):
        finished = replace(job, state=state, failure=failure, stems=(StemLink("vocal", "https://x/v"),))
        for late in (False, True):
            for message in results.outcome(finished, mention=True, late=late):
                public.append(" ".join([message.content or "", *map(embed_text, message.embeds)]))
    for text in public:
        assert f"{balance:,}" not in text and str(balance) not in text, text


async def test_too_many_jobs_in_flight_changes_nothing_and_schedules_nothing(make_world):
    world = await make_world(jobs_per_member=1)
    await world.split(world.interaction())
    [first] = await world.jobs()

    await world.split(world.interaction(), audio_id="another-audio-id")

    assert await world.jobs() == [first]
    assert await world.balance() == DEFAULT_CREDITS - Mode.SEPARATE_VOCAL.cost
    assert world.scheduler.calls == [(first.id, 0.0)]


async def test_refusal_is_still_sent_when_deleting_the_public_reply_fails(make_world):
    world = await make_world(default_credits=0)
    interaction = world.interaction()
    interaction.delete_original_response.side_effect = discord.NotFound(
        MagicMock(status=404, reason="Not Found"), "unknown message"
    )

    await world.split(interaction)

    interaction.followup.send.assert_awaited_once()
    assert interaction.followup.send.await_args.kwargs.get("ephemeral") is True
    # The public reply was ended with words that reveal nothing (no balance, no block reason),
    # so the private refusal is a message of its own rather than filling the public one.
    public = interaction.edit_original_response.await_args.kwargs
    assert public["content"] == results.NOT_STARTED and public["embed"] is None


async def test_a_refusal_is_not_sent_when_the_public_reply_can_be_neither_deleted_nor_ended(make_world):
    world = await make_world(default_credits=0)
    interaction = world.interaction()
    interaction.delete_original_response.side_effect = discord.NotFound(
        MagicMock(status=404, reason="Not Found"), "unknown message"
    )
    interaction.edit_original_response.side_effect = discord.Forbidden(
        MagicMock(status=403, reason="Forbidden"), "no"
    )

    await world.split(interaction)

    # A follow-up now would fill the public "thinking…" with the member's balance.
    interaction.followup.send.assert_not_awaited()
    assert await world.jobs() == []


async def test_members_have_separate_balances(world):
    await world.split(world.interaction(user_id=USER_ID), mode=Mode.SPLIT_STEM)

    await world.split(world.interaction(user_id=USER_ID + 1))

    assert await world.balance(USER_ID) == DEFAULT_CREDITS - Mode.SPLIT_STEM.cost
    assert await world.balance(USER_ID + 1) == DEFAULT_CREDITS - Mode.SEPARATE_VOCAL.cost


# -- /credits ----------------------------------------------------------------------------------


async def test_credits_defers_privately_first(world):
    interaction = world.interaction()

    await run_command(world.credits_cog, CreditsCog.credits, interaction)

    assert interaction_call_names(interaction)[0] == "response.defer"
    assert interaction.response.defer.await_args.kwargs.get("ephemeral") is True


async def test_credits_shows_the_balance_privately(world):
    await world.split(world.interaction(), mode=Mode.SPLIT_STEM)
    interaction = world.interaction()

    await run_command(world.credits_cog, CreditsCog.credits, interaction)

    interaction.followup.send.assert_awaited_once()
    assert interaction.followup.send.await_args.kwargs.get("ephemeral") is True
    text = embed_text(sent_embed(interaction.followup.send.await_args))
    assert f"**{DEFAULT_CREDITS - Mode.SPLIT_STEM.cost}** credits" in text
    assert "1 of 2" in text


async def test_credits_for_a_new_member_shows_the_starting_allowance(world):
    interaction = world.interaction(user_id=USER_ID + 7)

    await run_command(world.credits_cog, CreditsCog.credits, interaction)

    text = embed_text(sent_embed(interaction.followup.send.await_args))
    assert f"**{DEFAULT_CREDITS}** credits" in text
    assert "0 of 2" in text


async def test_the_acknowledgement_is_recorded_before_the_member_sees_thinking(world):
    """A process killed the moment Discord shows "thinking…" must leave a record to answer."""
    interaction = world.interaction()
    stored: list[int] = []
    record = world.store.acks.record

    async def recording(acks, lease):
        await record(acks, lease)
        stored.extend(ack.interaction_id for ack in acks)

    world.store.acks.record = recording
    stored_at_defer: list[list[int]] = []

    async def defer(**_: object) -> None:
        stored_at_defer.append(list(stored))  # what was committed when Discord was told

    interaction.response.defer.side_effect = defer
    await world.split(interaction)

    assert stored_at_defer == [[interaction.id]]
    assert len(await world.jobs()) == 1  # and the record went with the job's insert
    assert await world.store.db.fetchall("SELECT * FROM acknowledged_splits") == []
