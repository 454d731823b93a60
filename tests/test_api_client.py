"""The API client against the project's local simulator of the documented API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.api import ApiError, SeparationClient, parse_record, parse_time
from bot.product import Mode
from bot.settings import Secret
from testing.provider_api import Fault, SeparationApiSimulator

CALLBACK = "https://stembot-callback.invalid/callback/token"


@pytest.fixture
async def sim() -> AsyncIterator[SeparationApiSimulator]:
    async with SeparationApiSimulator(processing_seconds=0.05, callbacks=False) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: SeparationApiSimulator) -> AsyncIterator[SeparationClient]:
    async with aiohttp.ClientSession() as session:
        yield SeparationClient(session, sim.base_url, Secret("test-key"), timeout=1.0)


async def submit(client: SeparationClient, mode: Mode = Mode.SEPARATE_VOCAL) -> str:
    return await client.submit(task_id="gen-1", audio_id="audio-1", mode=mode, callback_url=CALLBACK)


async def test_submit_returns_new_separation_task_id_and_sends_documented_body(client, sim) -> None:
    task_id = await submit(client, Mode.SPLIT_STEM)
    assert task_id in sim.tasks
    assert sim.submits[-1].body == {
        "taskId": "gen-1",
        "audioId": "audio-1",
        "callBackUrl": CALLBACK,
        "type": "split_stem",
    }
    assert sim.charged() == 50


async def test_record_reports_pending_then_all_twelve_stems(client, sim) -> None:
    task_id = await submit(client, Mode.SPLIT_STEM)
    first = await client.record(task_id)
    assert first.pending and first.stems == ()
    sim.finish_now(task_id)
    done = await client.record(task_id)
    assert done.succeeded
    assert [s.key for s in done.stems] == [
        "vocal", "backing_vocals", "drums", "bass", "guitar", "keyboard",
        "percussion", "strings", "synth", "fx", "brass", "woodwinds",
    ]  # fmt: skip
    assert all(s.url.startswith("https://") for s in done.stems)
    assert done.completed_at is not None


async def test_two_stem_record_has_vocals_and_instrumental(client, sim) -> None:
    task_id = await submit(client)
    sim.finish_now(task_id)
    assert [s.key for s in (await client.record(task_id)).stems] == ["vocal", "instrumental"]


async def test_failed_flag_is_a_failure_not_pending(client, sim) -> None:
    sim.outcome = "GENERATE_AUDIO_FAILED"
    task_id = await submit(client)
    sim.finish_now(task_id)
    record = await client.record(task_id)
    assert record.failed and not record.pending and not record.succeeded


async def test_wrong_api_key_is_an_account_problem(sim) -> None:
    async with aiohttp.ClientSession() as session:
        client = SeparationClient(session, sim.base_url, Secret("wrong"), timeout=1.0)
        with pytest.raises(ApiError) as caught:
            await submit(client)
    assert caught.value.code == 401 and caught.value.account_problem and not caught.value.retryable
    assert "wrong" not in str(caught.value)


@pytest.mark.parametrize(
    ("code", "retryable", "account"),
    [
        (400, False, False),
        (401, False, True),
        (402, False, True),
        (404, False, False),
        (405, True, False),
        (413, False, False),
        (429, False, True),
        (430, True, False),
        (455, True, False),
        (500, True, False),
        (531, False, False),
    ],
)
async def test_every_documented_envelope_code_is_classified(client, sim, code, retryable, account) -> None:
    sim.script("submit", Fault("code", code, msg=f"scripted {code}"))
    with pytest.raises(ApiError) as caught:
        await submit(client)
    error = caught.value
    assert (error.code, error.retryable, error.account_problem) == (code, retryable, account)
    assert not error.maybe_processed
    assert error.message == f"scripted {code}"
    assert sim.tasks == {}


async def test_http_error_status_with_json_envelope_uses_body_code(client, sim) -> None:
    sim.script("submit", Fault("http", 429, msg="credits insufficient"))
    with pytest.raises(ApiError) as caught:
        await submit(client)
    assert caught.value.code == 429 and caught.value.account_problem


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_html_error_page_is_retryable_and_not_processed(client, sim, status) -> None:
    sim.script("submit", Fault("html", status))
    with pytest.raises(ApiError) as caught:
        await submit(client)
    assert caught.value.http_status == status and caught.value.retryable
    assert not caught.value.maybe_processed


async def test_gateway_timeout_page_means_outcome_unknown(client, sim) -> None:
    sim.script("submit", Fault("html", 504))
    with pytest.raises(ApiError) as caught:
        await submit(client)
    assert caught.value.maybe_processed


async def test_unreadable_success_body_on_submit_means_outcome_unknown(client, sim) -> None:
    sim.script("submit", Fault("garbage"))
    with pytest.raises(ApiError) as caught:
        await submit(client)
    assert caught.value.retryable and caught.value.maybe_processed


async def test_unreadable_body_on_poll_is_retryable(client, sim) -> None:
    task_id = await submit(client)
    sim.script("record", Fault("garbage"))
    with pytest.raises(ApiError) as caught:
        await client.record(task_id)
    assert caught.value.retryable
    assert (await client.record(task_id)).task_id == task_id  # the next poll works


async def test_slow_answer_times_out_as_retryable(sim) -> None:
    sim.script("record", Fault("hang", seconds=2.0))
    async with aiohttp.ClientSession() as session:
        client = SeparationClient(session, sim.base_url, Secret("test-key"), timeout=0.2)
        with pytest.raises(ApiError) as caught:
            await client.record("whatever")
    assert caught.value.retryable and caught.value.code is None


async def test_submit_accepted_but_answer_lost_is_flagged_maybe_processed(sim) -> None:
    sim.script("submit", Fault("accept_and_hang", seconds=2.0))
    async with aiohttp.ClientSession() as session:
        client = SeparationClient(session, sim.base_url, Secret("test-key"), timeout=0.2)
        with pytest.raises(ApiError) as caught:
            await submit(client)
    assert caught.value.maybe_processed
    assert len(sim.tasks) == 1  # the API did create (and charge) it


async def test_dropped_connection_on_submit_is_flagged_maybe_processed(client, sim) -> None:
    sim.script("submit", Fault("disconnect"))
    with pytest.raises(ApiError) as caught:
        await submit(client)
    assert caught.value.retryable and caught.value.maybe_processed


async def test_refused_connection_is_retryable_and_certainly_not_processed() -> None:
    async with aiohttp.ClientSession() as session:
        client = SeparationClient(session, "http://127.0.0.1:9", Secret("k"), timeout=1.0)
        with pytest.raises(ApiError) as caught:
            await submit(client)
    assert caught.value.retryable and not caught.value.maybe_processed


async def test_account_credits(client, sim) -> None:
    sim.account_credits = 1234
    assert await client.account_credits() == 1234


async def test_repr_never_shows_the_key(client) -> None:
    assert "test-key" not in repr(client)


def test_stems_fall_back_to_origin_data_when_url_fields_are_empty() -> None:
    record = parse_record(
        "t",
        {
            "successFlag": "SUCCESS",
            "response": {
                "vocalUrl": None,
                "originUrl": "",
                "originData": [
                    {"stem_type_group_name": "Vocals", "audio_url": "https://cdn/v.mp3", "id": "1"},
                    {"stem_type_group_name": "Backing Vocals", "audio_url": "https://cdn/b.mp3", "id": "2"},
                    {"stem_type_group_name": "Drums", "audio_url": None, "id": "3"},
                ],
            },
        },
    )
    assert [(s.key, s.url) for s in record.stems] == [
        ("vocal", "https://cdn/v.mp3"),
        ("backing_vocals", "https://cdn/b.mp3"),
    ]


def test_callback_exception_with_stems_counts_as_success() -> None:
    record = parse_record("t", {"successFlag": "CALLBACK_EXCEPTION", "response": {"vocalUrl": "https://c/v"}})
    assert record.succeeded


def test_unknown_flag_is_pending_and_success_without_stems_is_failure() -> None:
    assert parse_record("t", {"successFlag": "WEIRD"}).pending
    assert parse_record("t", {"successFlag": "SUCCESS", "response": None}).failed


def test_origin_url_and_unsafe_urls_are_not_stems() -> None:
    record = parse_record(
        "t",
        {
            "successFlag": "SUCCESS",
            "response": {
                "originUrl": "https://cdn/o.mp3",
                "vocalUrl": "javascript:alert(1)",
                "drumsUrl": "https://cdn/d.mp3",
            },
        },
    )
    assert [s.key for s in record.stems] == ["drums"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_700_000_000_000, 1_700_000_000.0),
        (1_700_000_000, 1_700_000_000.0),
        ("1700000000000", 1_700_000_000.0),
        ("2023-11-14T22:13:20Z", 1_700_000_000.0),
        ("2023-11-14 22:13:20", 1_700_000_000.0),
        ("not a date", None),
        (None, None),
        (True, None),
    ],
)
def test_complete_time_in_every_documented_shape(value, expected) -> None:
    assert parse_time(value) == expected
