"""Songs, not ids, end to end (issue 19): `/split` with the task id alone, the menu of takes, the
song named in the result, suggestions by title, and a lookup that fails or hangs never costing a
member anything or delaying a split that has both ids."""

from __future__ import annotations

import signal
import time
from typing import Any

from testing.discord_standin import DEFAULT_USER_ID, InteractionRecord, MessageRecord
from testing.provider_api import Fault
from tests.e2e.conftest import Stack

READY = "download now, they cannot be renewed"
TIMEOUT = 20.0
OTHER_MEMBER = DEFAULT_USER_ID + 5
COVER = "https://cdn.example.test/covers/gen-twins-2.jpeg"


async def by_task(stack: Stack, task_id: str, **kwargs: Any) -> InteractionRecord:
    return await stack.standin.invoke("split", {"task_id": task_id}, **kwargs)


def select_of(message: MessageRecord) -> dict[str, Any]:
    for row in message.components:
        for component in row.get("components") or []:
            if component.get("type") == 3:
                return component
    raise AssertionError(f"no select menu on {message!r}")


def submitted_audio_ids(stack: Stack) -> list[str]:
    return [submit.body["audioId"] for submit in stack.api.submits]


async def test_task_id_alone_shows_a_menu_of_takes_and_the_second_one_is_split_once(stack: Stack) -> None:
    stack.api.add_generation("gen-twins", titles=("Midnight Drive", "Midnight Drive"))
    await stack.start_bot()
    record = await by_task(stack, "gen-twins")
    await record.wait_for_ack()
    assert record.ack_latency is not None and record.ack_latency < 3.0
    menu = await record.wait_for_response(lambda m: m.components)
    assert menu.ephemeral  # the menu is the asker's alone
    select = select_of(menu)
    labels = [option["label"] for option in select["options"]]
    assert labels == ["Midnight Drive — take 1 · 3:14", "Midnight Drive — take 2 · 3:26"]
    assert "10 credits" in menu.text()
    # Nothing is reserved or sent before the choice.
    assert stack.jobs() == [] and stack.api.submits == []

    # Someone else cannot use it.
    stranger = await stack.standin.click(
        menu, select["custom_id"], values=["gen-twins-audio-2"], user_id=OTHER_MEMBER
    )
    refusal = await stranger.wait_for_response()
    assert refusal.ephemeral and "isn't yours" in refusal.text()
    assert stack.jobs() == []

    choice = await stack.standin.click(menu, select["custom_id"], values=["gen-twins-audio-2"])
    assert (await choice.wait_for_ack(timeout=TIMEOUT)).type == 5  # a public reply, like /split's
    result = await choice.wait_for_response(lambda m: READY in m.text(), timeout=TIMEOUT)
    assert not result.ephemeral
    assert submitted_audio_ids(stack) == ["gen-twins-audio-2"]
    [job] = stack.jobs()
    assert (job["source_task_id"], job["audio_id"], job["song_title"], job["song_take"]) == (
        "gen-twins",
        "gen-twins-audio-2",
        "Midnight Drive",
        2,
    )
    assert stack.ledger_kinds(job["id"]) == ["reserve", "charge"]
    assert "**90** credits" in await stack.credits()
    embed = result.embeds[0]
    assert embed["title"] == "Midnight Drive (take 2 · 3:26): 2 stems"
    assert embed["thumbnail"]["url"] == COVER
    # The menu says what was chosen, and cannot start a second split.
    chosen = await record.wait_for_edit(lambda m: "You chose" in m.text())
    assert "Midnight Drive" in chosen.text() and not chosen.components
    assert not menu.components
    assert len(stack.api.submits) == 1


async def test_a_task_with_one_track_goes_straight_through(stack: Stack) -> None:
    stack.api.add_generation("gen-solo", titles=("Solo Flight",))
    await stack.start_bot()
    record = await by_task(stack, "gen-solo")
    assert (await record.wait_for_ack()).type == 5
    result = await record.wait_for_edit(lambda m: READY in m.text(), timeout=TIMEOUT)
    assert not result.ephemeral and "Solo Flight" in result.embeds[0]["title"]
    assert submitted_audio_ids(stack) == ["gen-solo-audio-1"]


async def test_the_menu_works_after_a_restart(stack: Stack) -> None:
    stack.api.add_generation("gen-later", titles=("Later", "Later"))
    bot = await stack.start_bot()
    record = await by_task(stack, "gen-later")
    menu = await record.wait_for_response(lambda m: m.components)
    bot.proc.send_signal(signal.SIGTERM)
    await bot.proc.wait()
    await stack.start_bot()
    choice = await stack.standin.click(menu, select_of(menu)["custom_id"], values=["gen-later-audio-1"])
    result = await choice.wait_for_response(lambda m: READY in m.text(), timeout=TIMEOUT)
    assert "Later (take 1" in result.embeds[0]["title"]
    assert submitted_audio_ids(stack) == ["gen-later-audio-1"]
    # The menu could not be changed (its /split belonged to the process before), but it starts
    # nothing more, even from yet another process: the database knows a split came from it.
    second = stack.bots[-1]
    second.proc.send_signal(signal.SIGTERM)
    await second.proc.wait()
    await stack.start_bot()
    again = await stack.standin.click(menu, select_of(menu)["custom_id"], values=["gen-later-audio-2"])
    answer = await again.wait_for_response()
    assert answer.ephemeral and "already chosen" in answer.text()
    assert len(stack.jobs()) == 1
    assert len([call for call in stack.api.calls if call.endpoint == "tracks"]) == 1  # kept in the database


async def test_suggestions_for_a_task_never_split_before(stack: Stack) -> None:
    stack.api.add_generation("gen-new", titles=("Brand New", "Brand New"))
    await stack.start_bot()
    started = time.monotonic()
    record = await stack.standin.autocomplete(
        "split", {"task_id": "gen-new", "audio_id": ""}, focused="audio_id"
    )
    await record.wait_for(lambda r: r.acks)
    assert time.monotonic() - started < 3.0
    assert [(c["name"], c["value"]) for c in record.choices] == [
        ("Brand New — take 1 · 3:14", "gen-new-audio-1"),
        ("Brand New — take 2 · 3:26", "gen-new-audio-2"),
    ]


async def test_both_ids_name_the_job_in_the_background(stack: Stack) -> None:
    stack.api.add_generation("gen-bg", titles=("Background", "Background"))
    await stack.start_bot()
    record = await stack.split("gen-bg", "gen-bg-audio-1")
    result = await record.wait_for_edit(lambda m: READY in m.text(), timeout=TIMEOUT)
    assert "Background (take 1 · 3:14)" in result.embeds[0]["title"]


async def test_with_the_lookup_down_both_ids_still_split_and_the_task_alone_is_told_what_to_do(
    stack: Stack,
) -> None:
    stack.api.script("tracks", *[Fault("code", 500)] * 20)
    await stack.start_bot()
    record = await stack.split("gen-1", "audio-1")
    result = await record.wait_for_edit(lambda m: READY in m.text(), timeout=TIMEOUT)
    assert "Vocals + instrumental" in result.embeds[0]["title"]  # no song known: as today

    alone = await by_task(stack, "gen-2")
    answer = await alone.wait_for_response()
    assert answer.ephemeral and "Give the audio id too" in answer.text()
    assert "task_id" in answer.text() and "audio_id" in answer.text()
    assert len(stack.jobs()) == 1 and submitted_audio_ids(stack) == ["audio-1"]
    assert "**90** credits" in await stack.credits()


async def test_a_hung_lookup_never_delays_the_acknowledgement(stack: Stack) -> None:
    stack.api.script("tracks", *[Fault("hang", seconds=60)] * 10)
    await stack.start_bot(TRACK_LOOKUP_SECONDS="2")
    record = await stack.split("gen-1", "audio-1")
    assert (await record.wait_for_ack()).type == 5 and record.ack_latency < 3.0
    await record.wait_for_edit(lambda m: READY in m.text(), timeout=TIMEOUT)

    # Suggestions answer within Discord's 3 seconds all the same (the member's own recent ids).
    started = time.monotonic()
    suggest = await stack.standin.autocomplete(
        "split", {"task_id": "gen-1", "audio_id": ""}, focused="audio_id"
    )
    await suggest.wait_for(lambda r: r.acks, timeout=5)
    assert time.monotonic() - started < 2.5  # room for the way to Discord within its 3 s
    assert [c["value"] for c in suggest.choices] == ["audio-1"]

    alone = await by_task(stack, "gen-hung")
    await alone.wait_for_ack()
    assert alone.ack_latency < 3.0
    answer = await alone.wait_for_response(lambda m: "Give the audio id too" in m.text(), timeout=TIMEOUT)
    assert answer.ephemeral
    assert len(stack.jobs()) == 1


async def test_the_keep_thread_and_its_files_message_are_named_after_the_song(stack: Stack) -> None:
    stack.api.add_generation("gen-keep", titles=("Midnight Drive", "Midnight Drive"))
    stack.serve_stem_files(24 * 1024)
    await stack.start_bot()
    record = await stack.split("gen-keep", "gen-keep-audio-2")
    result = await record.wait_for_edit(lambda m: READY in m.text(), timeout=TIMEOUT)
    [job] = await stack.eventually(lambda: [j for j in stack.jobs() if j["delivery"] == "delivered"])
    keep = next(
        c for row in result.components for c in row["components"] if c.get("label") == "Keep in Discord"
    )
    await stack.standin.click(result, keep["custom_id"])
    thread = await stack.eventually(lambda: stack.standin.thread_on(result.id), timeout=TIMEOUT)
    assert thread.name == f"Midnight Drive · 2 stems · job #{job['id']}"
    files = await stack.eventually(lambda: stack.standin.messages_in(thread.id), timeout=TIMEOUT)
    assert "**Midnight Drive** (take 2 · 3:26)" in files[0].text()


async def test_a_hostile_and_overlong_title_reaches_members_as_words_within_discords_limits(
    stack: Stack,
) -> None:
    from tests.unit_helpers import HOSTILE, markdown_dangers

    title = f"{HOSTILE} {'L' * 400}"
    stack.api.add_generation("gen-evil", titles=(title, title))
    await stack.start_bot()
    record = await by_task(stack, "gen-evil")
    menu = await record.wait_for_response(lambda m: m.components)
    select = select_of(menu)
    assert all(len(option["label"]) <= 100 for option in select["options"])
    choice = await stack.standin.click(menu, select["custom_id"], values=["gen-evil-audio-1"])
    result = await choice.wait_for_response(lambda m: READY in m.text(), timeout=TIMEOUT)
    assert len(result.embeds[0]["title"]) <= 256
    assert "<@42>" not in result.embeds[0]["title"] and "@everyone" not in result.embeds[0]["title"]
    descriptions = "\n".join(
        [e.get("description", "") for e in result.embeds]
        + [f["value"] for e in result.embeds for f in e.get("fields", [])]
    )
    assert markdown_dangers(descriptions) == []
    for message in [menu, result]:
        assert message.pinged_user_ids == []
    # The stand-in refused nothing (limits) and nobody was pinged: checked at teardown too.
