"""/stems as members use it, with interaction doubles over the real services and store: the
command JSON, list and paging, show (private and public), cancel, reminders, and the job and
track-id suggestions."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import MagicMock

import aiohttp
import discord
import pytest

from bot.discord_side.client import EXTENSIONS, StemBot
from bot.models import SERVER_WIDE, CreditPolicy, Job, JobState, KeepPlace, Period, Refund, StemLink
from bot.product import Mode
from bot.render import buttons, common, results
from bot.store import Store
from cogs.paging import Pager
from cogs.split import SplitCog
from cogs.stems import CancelButton, StemsCog, UpgradeButton
from tests.unit_helpers import (
    GUILD_ID,
    USER_ID,
    RecordingScheduler,
    embed_text,
    keep_change,
    make_interaction,
    run_command,
)
from tests.wiring import make_services

SUBCOMMAND, INTEGER, BOOLEAN, USER = 1, 4, 5, 6
OTHER_ID, MOD_ID = USER_ID + 1, USER_ID + 2


# -- the command JSON ------------------------------------------------------------------------------


async def test_stems_has_the_subcommands_and_options_the_issue_names() -> None:
    bot = StemBot(lambda bot: SimpleNamespace())  # type: ignore[arg-type]
    for extension in EXTENSIONS:
        await bot.load_extension(extension)
    [stems] = [c.to_dict(bot.tree) for c in bot.tree.get_commands() if c.name == "stems"]
    subs = {sub["name"]: sub for sub in stems["options"]}

    def shape(name: str) -> list[tuple[str, int, bool, bool]]:
        return [
            (o["name"], o["type"], bool(o.get("required")), bool(o.get("autocomplete")))
            for o in subs[name].get("options", [])
        ]

    assert sorted(subs) == ["cancel", "keep", "list", "mix", "reminders", "show"]
    assert all(sub["type"] == SUBCOMMAND and 1 <= len(sub["description"]) <= 100 for sub in subs.values())
    assert shape("list") == [("member", USER, False, False)]
    assert shape("show") == [("job", INTEGER, True, True), ("public", BOOLEAN, False, False)]
    assert shape("cancel") == [("job", INTEGER, True, True)]
    assert shape("keep") == [("job", INTEGER, True, True)]
    assert shape("mix") == [("job", INTEGER, True, True)]
    assert shape("reminders") == [("enabled", BOOLEAN, True, False)]
    assert stems["contexts"] == [0]  # servers only: a library belongs to a server


# -- the commands ----------------------------------------------------------------------------------


class World:
    def __init__(self, store: Store, session: aiohttp.ClientSession) -> None:
        self.store = store
        self.services = make_services(store, session, queue=RecordingScheduler())
        self.bot = SimpleNamespace(services=self.services)
        self.cog = StemsCog(self.bot)  # type: ignore[arg-type]
        self.split_cog = SplitCog(self.bot)  # type: ignore[arg-type]

    async def job(
        self, user_id: int = USER_ID, audio_id: str = "audio-1", succeed: bool = False, expires: float = 2e9
    ):
        accepted = await self.services.split.reserve(
            guild_id=GUILD_ID, channel_id=1, user_id=user_id, mode=Mode.SEPARATE_VOCAL, task_id="task-1",
            audio_id=audio_id,
        )  # fmt: skip
        job = accepted.job
        if succeed:
            job = await self.store.reservations.settle(
                job.id, succeeded=True, stems=[StemLink("vocal", "https://cdn.example/v.mp3"),
                                               StemLink("instrumental", "https://cdn.example/i.mp3")],
                links_expire_at=expires,
            )  # fmt: skip
        return job

    async def keep(self, job: Job, place: KeepPlace, channel_id: int, *, finish: bool = True) -> None:
        """Keep the job's stems in Discord, as the keep worker records it."""
        await self.store.keeps.request(job, requested_by=job.user_id, upload_limit=10 * 2**20)
        await self.store.keeps.start(job.id, [(0, "Vocals.mp3"), (1, "Instrumental.mp3")])
        await keep_change(
            self.store, job.id, lambda k: k.placed(place, channel_id=channel_id, anchor_message_id=99)
        )
        if finish:
            await self.store.keeps.posted(job.id, [0, 1], message_id=100)
            await keep_change(self.store, job.id, lambda k: k.kept(time.time()))


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = await Store.open(tmp_path / "stems.db", CreditPolicy(default_credits=1000, jobs_per_member=50))
    async with aiohttp.ClientSession() as session:
        yield World(store, session)
    await store.close()


def sent_text(interaction: MagicMock) -> str:
    """What was sent, as a member reads it: text, embeds, and link buttons as "[label](url)"."""
    call = interaction.followup.send.await_args
    embeds = call.kwargs.get("embeds") or [call.kwargs["embed"]]
    view = call.kwargs.get("view")
    buttons = [
        f"[{item.label}]({item.url})" for item in getattr(view, "children", ()) if getattr(item, "url", None)
    ]
    return "\n".join([call.kwargs.get("content") or "", *(embed_text(e) for e in embeds), *buttons])


async def test_list_shows_the_members_splits_privately_newest_first(world: World) -> None:
    first, second = await world.job(audio_id="a"), await world.job(audio_id="b", succeed=False)
    interaction = make_interaction()

    await run_command(world.cog, StemsCog.list_, interaction)

    assert interaction.response.defer.await_args.kwargs["ephemeral"] is True
    text = sent_text(interaction)
    assert text.index(f"Job #{second.id}") < text.index(f"Job #{first.id}")
    assert "queued" in text and interaction.followup.send.await_args.kwargs["ephemeral"] is True


async def test_list_pages_with_buttons_only_the_invoker_can_press(world: World) -> None:
    for n in range(12):
        await world.job(audio_id=f"a{n}")
    interaction = make_interaction()

    await run_command(world.cog, StemsCog.list_, interaction)

    pager = interaction.followup.send.await_args.kwargs["view"]
    assert isinstance(pager, Pager) and pager.prev_page.disabled and not pager.next_page.disabled
    stranger = make_interaction(user_id=OTHER_ID)
    assert await pager.interaction_check(stranger) is False
    assert "Only whoever ran" in embed_text(stranger.response.send_message.await_args.kwargs["embed"])


async def test_another_members_list_needs_a_moderator(world: World) -> None:
    await world.job(user_id=OTHER_ID)
    member = make_interaction()
    other = MagicMock(spec=discord.Member, id=OTHER_ID)

    await run_command(world.cog, StemsCog.list_, member, other)
    assert "Only moderators" in sent_text(member)

    moderator = make_interaction(user_id=MOD_ID, permissions=discord.Permissions(manage_guild=True))
    await run_command(world.cog, StemsCog.list_, moderator, other)
    assert f"<@{OTHER_ID}>'s splits" in sent_text(moderator)


async def test_show_gives_the_result_again_privately_or_to_the_channel(world: World) -> None:
    job = await world.job(succeed=True)

    private = make_interaction()
    await run_command(world.cog, StemsCog.show, private, job.id)
    public = make_interaction()
    await run_command(world.cog, StemsCog.show, public, job.id, True)

    assert private.response.defer.await_args.kwargs["ephemeral"] is True
    assert public.response.defer.await_args.kwargs["ephemeral"] is False
    for interaction in (private, public):
        assert "[Vocals](https://cdn.example/v.mp3)" in sent_text(interaction)


THREAD_ID = 888_888_888_888_888_888
IN_THE_THREAD = f"[Kept in Discord](https://discord.com/channels/{GUILD_ID}/{THREAD_ID})"


async def test_list_links_a_kept_result_to_its_thread_and_says_nothing_of_the_others(world: World) -> None:
    kept, plain, working = [await world.job(audio_id=a, succeed=True) for a in ("a", "b", "c")]
    await world.keep(kept, KeepPlace.THREAD, THREAD_ID)
    await world.keep(working, KeepPlace.THREAD, THREAD_ID + 1, finish=False)  # still being posted
    interaction = make_interaction()

    await run_command(world.cog, StemsCog.list_, interaction)

    lines = {int(m[1]): m[0] for m in re.finditer(r".*Job #(\d+).*", sent_text(interaction))}
    assert lines[kept.id].endswith(IN_THE_THREAD)
    assert "Kept in Discord" not in lines[plain.id] and "Kept in Discord" not in lines[working.id]


async def test_list_pages_read_the_keeps_of_their_own_jobs(world: World) -> None:
    jobs = [await world.job(audio_id=f"a{n}", succeed=True) for n in range(12)]
    await world.keep(jobs[0], KeepPlace.THREAD, THREAD_ID)  # the oldest: on the second page
    interaction = make_interaction()
    await run_command(world.cog, StemsCog.list_, interaction)
    assert "Kept in Discord" not in sent_text(interaction)

    pager = interaction.followup.send.await_args.kwargs["view"]
    press = make_interaction()
    await pager.next_page.callback(press)

    shown = embed_text(press.response.edit_message.await_args.kwargs["embed"])
    assert "Page 2 of 2" in shown and IN_THE_THREAD in shown


async def test_show_links_where_the_stems_are_kept_a_dm_through_me(world: World) -> None:
    job = await world.job(succeed=True)
    await world.keep(job, KeepPlace.DM, THREAD_ID)
    interaction = make_interaction()

    await run_command(world.cog, StemsCog.show, interaction, job.id)

    text = sent_text(interaction)
    assert text.startswith(f"[Kept in Discord](https://discord.com/channels/@me/{THREAD_ID}): the stems stay")
    assert "[Vocals](https://cdn.example/v.mp3)" in text


async def test_show_of_a_kept_result_whose_links_expired_points_to_the_kept_stems(world: World) -> None:
    job = await world.job(succeed=True, expires=1_000)  # long ago
    await world.keep(job, KeepPlace.THREAD, THREAD_ID)
    interaction = make_interaction()

    await run_command(world.cog, StemsCog.show, interaction, job.id)

    text = sent_text(interaction)
    assert f"These links expired <t:1000:R>, but the stems are still in Discord: {IN_THE_THREAD}." in text
    assert "no longer be downloaded" not in text


async def test_show_of_a_result_not_kept_says_nothing_of_keeping(world: World) -> None:
    job = await world.job(succeed=True)
    await world.keep(job, KeepPlace.THREAD, THREAD_ID, finish=False)
    interaction = make_interaction()

    await run_command(world.cog, StemsCog.show, interaction, job.id)

    assert "Kept in Discord" not in sent_text(interaction)


async def test_show_refuses_another_members_job_privately(world: World) -> None:
    job = await world.job(user_id=OTHER_ID, succeed=True)
    interaction = make_interaction()

    await run_command(world.cog, StemsCog.show, interaction, job.id, True)

    assert "another member's split" in sent_text(interaction)
    assert interaction.followup.send.await_args.kwargs["ephemeral"] is True
    assert "cdn.example" not in sent_text(interaction)


async def test_cancel_after_a_refill_says_the_allowance_it_held_has_renewed(world: World) -> None:
    job = await world.job()  # 10 credits from this period's allowance
    await world.store.economy.set_allowance(
        GUILD_ID, 1000, role_id=SERVER_WIDE, period=Period.WEEKLY, apply_now=True, actor_id=OTHER_ID
    )  # a refill: the allowance the job held has renewed since
    interaction = make_interaction()

    await run_command(world.cog, StemsCog.cancel, interaction, job.id)

    text = sent_text(interaction)
    assert f"Job #{job.id} cancelled" in text and "10 credits are back" not in text
    assert "10 credits were your previous allowance, which has renewed since" in text
    assert (await world.store.accounts.summary(GUILD_ID, USER_ID, role_ids=())).balance == 1000
    # The queued message, updated too, says the same (not "Your 10 credits are back").
    assert world.services.runner._deliverer.cancel_refunds == [Refund(0, 0, expired=10)]
    shown = make_interaction()
    await run_command(world.cog, StemsCog.show, shown, job.id)
    assert "10 credits were your previous allowance" in sent_text(shown)  # and so does /stems show


async def test_cancel_calls_off_a_queued_job_and_says_the_credits_are_back(world: World) -> None:
    job = await world.job()
    interaction = make_interaction()

    await run_command(world.cog, StemsCog.cancel, interaction, job.id)

    assert f"Job #{job.id} cancelled" in sent_text(interaction) and "10 credits are back" in sent_text(
        interaction
    )
    assert (await world.store.jobs.get(job.id)).state is JobState.CANCELLED


async def test_reminders_can_be_turned_off_and_on(world: World) -> None:
    off = make_interaction()
    await run_command(world.cog, StemsCog.reminders, off, False)
    assert await world.store.members.reminders(USER_ID) is False
    assert "No more expiry reminders" in embed_text(off.response.send_message.await_args.kwargs["embed"])

    on = make_interaction()
    await run_command(world.cog, StemsCog.reminders, on, True)
    assert await world.store.members.reminders(USER_ID) is True


async def test_turning_reminders_on_says_they_come_by_dm_or_in_the_splits_channel(world: World) -> None:
    # Run anywhere (often not where the member split): the fallback is the split's channel, not "here".
    on = make_interaction()
    await run_command(world.cog, StemsCog.reminders, on, True)
    text = embed_text(on.response.send_message.await_args.kwargs["embed"])
    assert "24 hours before" in text and "by DM" in text
    assert "in the channel where you ran `/split`" in text and not re.search(r"\bhere\b", text)


async def test_job_suggestions_are_labelled_and_within_discords_limits(world: World) -> None:
    jobs = [await world.job(audio_id="x" * 98 + str(n)) for n in range(30)]
    interaction = make_interaction()

    choices = await world.cog.job_autocomplete(interaction, "")

    assert len(choices) == 25 and all(len(c.name) <= 100 for c in choices)
    assert choices[0].value == jobs[-1].id and re.match(rf"#{jobs[-1].id} · ", choices[0].name)


async def test_mix_suggests_any_job_of_the_server_not_only_the_members_own(world: World) -> None:
    """Any member may mix any result in the server (issue 20: "same `job` autocomplete as
    `/stems show`, but any job of this server"), so a member who is no moderator is offered the
    others' jobs too; `/stems show` still offers only their own."""
    mine = await world.job(audio_id="mine")
    theirs = await world.job(user_id=OTHER_ID, audio_id="theirs")
    interaction = make_interaction()  # USER_ID: no moderator

    mix = await StemsCog.mix._params["job"].autocomplete(world.cog, interaction, "")  # type: ignore[union-attr]
    show = await StemsCog.show._params["job"].autocomplete(world.cog, interaction, "")  # type: ignore[union-attr]

    assert [c.value for c in mix] == [theirs.id, mine.id]
    assert [c.value for c in show] == [mine.id]
    typed = await StemsCog.mix._params["job"].autocomplete(world.cog, interaction, str(theirs.id))  # type: ignore[union-attr]
    assert [c.value for c in typed] == [theirs.id]


async def test_split_suggests_the_members_own_recent_ids(world: World) -> None:
    await world.job(audio_id="mine-1")
    await world.job(user_id=OTHER_ID, audio_id="theirs")
    interaction = make_interaction()
    interaction.namespace = SimpleNamespace(task_id="task-1")

    audio = await world.split_cog.audio_id_autocomplete(interaction, "")
    tasks = await world.split_cog.task_id_autocomplete(interaction, "TASK")

    assert [c.value for c in audio] == ["mine-1"]  # never another member's
    assert [c.value for c in tasks] == ["task-1"] and "Vocals" in tasks[0].name


# -- the persistent buttons ------------------------------------------------------------------------


def custom_ids(view: discord.ui.View | None) -> list[str]:
    return [item.custom_id for item in (view.children if view else []) if getattr(item, "custom_id", None)]


async def test_a_two_stem_result_in_a_server_offers_the_full_split_and_a_dm_does_not(world: World) -> None:
    job = await world.job(succeed=True)

    [in_server] = results.outcome(job)
    [by_dm] = results.outcome(job, in_server=False)

    assert custom_ids(in_server.view) == [f"stembot:upgrade:{job.id}"]
    assert custom_ids(by_dm.view) == []
    assert re.fullmatch(common.UPGRADE_BUTTON_PATTERN, f"stembot:upgrade:{job.id}")["job"] == str(job.id)


async def test_a_queued_split_has_a_cancel_button_until_it_is_sent(world: World) -> None:
    job = await world.job()
    assert custom_ids(buttons.queued_view(job)) == [f"stembot:cancel:{job.id}"]
    await world.store.jobs.transition(job.id, [JobState.RESERVED], JobState.SUBMITTING)
    assert buttons.queued_view(await world.store.jobs.get(job.id)) is None


async def test_pressing_split_into_12_stems_starts_the_pressers_own_full_split(world: World) -> None:
    source = await world.job(user_id=OTHER_ID, succeed=True)
    interaction = make_interaction()  # someone else than the result's member
    interaction.client = world.bot

    await UpgradeButton(source.id).callback(interaction)

    [mine] = await world.store.jobs.recent(GUILD_ID, USER_ID)
    assert (mine.mode, mine.source_task_id, mine.audio_id) == (Mode.SPLIT_STEM, "task-1", "audio-1")
    assert await world.store.accounts.balance(GUILD_ID, USER_ID) == 1000 - Mode.SPLIT_STEM.cost
    assert interaction.response.defer.await_args.kwargs == {"thinking": True}  # a public message of its own
    shown = interaction.edit_original_response.await_args.kwargs
    assert custom_ids(shown["view"]) == [f"stembot:cancel:{mine.id}"]


async def test_an_upgrade_stores_the_upload_limit_reported_with_the_press(world: World) -> None:
    source = await world.job(user_id=OTHER_ID, succeed=True)
    interaction = make_interaction(filesize_limit=50 * 1024 * 1024)
    interaction.client = world.bot

    await UpgradeButton(source.id).callback(interaction)

    [mine] = await world.store.jobs.recent(GUILD_ID, USER_ID)
    assert mine.filesize_limit == 50 * 1024 * 1024


async def test_an_upgrade_the_presser_cannot_afford_is_refused_privately(world: World) -> None:
    source = await world.job(user_id=OTHER_ID, succeed=True)
    await world.store.accounts.set_balance(GUILD_ID, USER_ID, 5, actor_id=MOD_ID, reason=None, role_ids=())
    interaction = make_interaction()
    interaction.client = world.bot

    await UpgradeButton(source.id).callback(interaction)

    assert await world.store.jobs.recent(GUILD_ID, USER_ID) == []
    assert interaction.followup.send.await_args.kwargs["ephemeral"] is True
    assert "Not enough credits" in embed_text(interaction.followup.send.await_args.kwargs["embed"])


async def test_the_cancel_button_works_for_the_member_and_no_one_else(world: World) -> None:
    job = await world.job()
    stranger = make_interaction(user_id=OTHER_ID)
    stranger.client = world.bot

    await CancelButton(job.id).callback(stranger)

    assert "another member's split" in embed_text(stranger.response.send_message.await_args.kwargs["embed"])
    assert stranger.response.send_message.await_args.kwargs["ephemeral"] is True
    assert (await world.store.jobs.get(job.id)).state is JobState.RESERVED

    member = make_interaction()
    member.client = world.bot
    await CancelButton(job.id).callback(member)

    edited = member.response.edit_message.await_args.kwargs
    assert edited["view"] is None and f"Job #{job.id} cancelled" in embed_text(edited["embed"])
    assert world.services.runner._deliverer.cancelled == []  # the press edited the message; not twice
    assert (await world.store.jobs.get(job.id)).state is JobState.CANCELLED


async def test_cancelling_by_command_also_marks_the_queued_message(world: World) -> None:
    job = await world.job()
    interaction = make_interaction()

    await run_command(world.cog, StemsCog.cancel, interaction, job.id)

    deliverer = world.services.runner._deliverer
    assert [j.id for j in deliverer.cancelled] == [job.id]
    assert deliverer.cancelled[0].state is JobState.CANCELLED
