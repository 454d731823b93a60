"""The API client against the project's local simulator of the documented API."""

from __future__ import annotations

import copy
import math
import re
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


# Answers that do not come from the API itself: a proxy or load balancer in front of it spoke,
# after our request had left, so nobody can say whether the API received the submit.
NOT_FROM_THE_API = [
    Fault("html", 500),
    Fault("html", 502),
    Fault("html", 503),
    Fault("garbage", 502, content_type="text/plain"),
    Fault("body", 503, body=""),
    Fault("body", 502, body={"error": "upstream connect error"}),
    Fault("body", 503, body={"code": "503", "msg": "code is not a number"}),
    Fault("body", 502, body=[1, 2]),
]
NOT_FROM_THE_API_IDS = [
    "html500",
    "html502",
    "html503",
    "text502",
    "empty503",
    "json-no-code",
    "str-code",
    "list",
]


@pytest.mark.parametrize("fault", NOT_FROM_THE_API, ids=NOT_FROM_THE_API_IDS)
async def test_error_answer_without_the_apis_envelope_leaves_a_submit_unconfirmed(client, sim, fault) -> None:
    sim.script("submit", fault)
    with pytest.raises(ApiError) as caught:
        await submit(client)
    assert caught.value.http_status == fault.status
    assert caught.value.maybe_processed  # like a gateway timeout: never to be sent again


@pytest.mark.parametrize("fault", NOT_FROM_THE_API, ids=NOT_FROM_THE_API_IDS)
async def test_error_answer_without_the_apis_envelope_on_a_poll_is_retryable(client, sim, fault) -> None:
    task_id = await submit(client)
    sim.script("record", fault)
    with pytest.raises(ApiError) as caught:
        await client.record(task_id)
    assert caught.value.retryable
    assert (await client.record(task_id)).task_id == task_id  # the next poll works


@pytest.mark.parametrize("status", [405, 430, 455, 500, 502, 503])
async def test_enveloped_retryable_codes_say_the_api_did_not_take_the_job(client, sim, status) -> None:
    # The API's own envelope, whether on HTTP 200 or on an error status: it refused the call.
    for fault in (Fault("code", status), Fault("http", status)):
        sim.script("submit", fault)
        with pytest.raises(ApiError) as caught:
            await submit(client)
        assert caught.value.code == status and caught.value.retryable
        assert not caught.value.maybe_processed
    assert sim.tasks == {}


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


async def test_a_proxy_page_after_an_accepted_submit_is_flagged_maybe_processed(client, sim) -> None:
    # The API made (and charged) the task; a proxy in front answered its own error page instead.
    sim.script("submit", Fault("accept_and_html"))
    with pytest.raises(ApiError) as caught:
        await submit(client)
    assert caught.value.maybe_processed and caught.value.http_status == 502
    [task] = sim.tasks.values()
    [call] = sim.submits
    assert (call.task_id, call.code, call.fault) == (task.task_id, 502, "accept_and_html")
    assert sim.charged() > 0


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
        (1_700_000_000_000.0, 1_700_000_000.0),
        ("1700000000", 1_700_000_000.0),
        (" 2023-11-14T22:13:20+00:00 ", 1_700_000_000.0),
        pytest.param("²", None, id="superscript-digit"),
        pytest.param("9" * 400, None, id="huge-digits"),
        pytest.param("9" * 5000, None, id="past-int-digit-limit"),
        pytest.param(10**400, None, id="huge-int"),
        pytest.param(float("nan"), None, id="nan"),
        pytest.param(float("inf"), None, id="inf"),
        ("", None),
        ([1_700_000_000_000], None),
        ({"ms": 1}, None),
    ],
)
def test_complete_time_in_every_documented_shape(value, expected) -> None:
    assert parse_time(value) == expected


# -- record-info answers of the wrong shape ---------------------------------------------------------

GOOD_RECORD: dict = {
    "taskId": "t",
    "musicId": "m",
    "musicIndex": 0,
    "callbackUrl": "https://cb.invalid/x",
    "createTime": 1_700_000_000_000,
    "completeTime": 1_700_000_060_000,
    "successFlag": "SUCCESS",
    "errorCode": None,
    "errorMessage": None,
    "response": {
        "originUrl": "",
        "vocalUrl": "https://cdn/v.mp3",
        "instrumentalUrl": "https://cdn/i.mp3",
        "originData": [
            {"duration": 182.5, "audio_url": "https://cdn/v.mp3", "stem_type_group_name": "Vocals", "id": "1"}
        ],
    },
}
WRONG_VALUES = [
    None, 0, 7, -1, 1.5, float("nan"), float("inf"), float("-inf"), 10**400, True, "", "x", "²",
    "9" * 400, "2023-13-45T99:99", [], [None], [1, "a", None], {}, {"x": None}, {"originData": 5},
]  # fmt: skip
WRONG_VALUE_IDS = [
    "null", "0", "7", "-1", "1.5", "nan", "inf", "-inf", "huge-int", "true", "empty", "x", "superscript",
    "huge-digits", "bad-date", "list", "list-null", "list-mixed", "dict", "dict-null", "dict-origin5",
]  # fmt: skip
# Where a wrong value goes: a top-level field, a field of `response`, or a field of originData's item
# (with the URL fields emptied so that originData is where the stems are looked for).
RECORD_PLACES = [
    *[(name,) for name in GOOD_RECORD],
    *[("response", name) for name in ("vocalUrl", "instrumentalUrl", "originUrl", "originData")],
    *[("response", "originData", 0, name) for name in ("stem_type_group_name", "audio_url", "duration")],
    ("response", "originData", 0),
    ("response", "originData", "only"),
]


def record_with(place: tuple, value: object) -> dict:
    record = copy.deepcopy(GOOD_RECORD)
    if place[:2] == ("response", "originData") and len(place) > 2:
        record["response"]["vocalUrl"] = record["response"]["instrumentalUrl"] = None
    if place[-1] == "only":
        record["response"] = {"originData": value}
        return record
    target = record
    for key in place[:-1]:
        target = target[key]
    target[place[-1]] = value
    return record


@pytest.mark.parametrize("value", WRONG_VALUES, ids=WRONG_VALUE_IDS)
@pytest.mark.parametrize("place", RECORD_PLACES, ids=[".".join(map(str, p)) for p in RECORD_PLACES])
def test_a_record_with_a_wrong_typed_field_is_parsed_defensively(place: tuple, value: object) -> None:
    record = parse_record("asked-for", record_with(place, value))
    assert isinstance(record.task_id, str) and record.task_id
    assert isinstance(record.flag, str)
    assert record.completed_at is None or math.isfinite(record.completed_at)
    assert record.error_code is None or isinstance(record.error_code, int)
    assert record.error_message is None or isinstance(record.error_message, str)
    assert sum((record.succeeded, record.failed, record.pending)) == 1
    for stem in record.stems:
        assert re.fullmatch(r"[a-z0-9_]{1,40}", stem.key) and stem.url.startswith("https://")


def test_a_task_id_of_the_wrong_type_falls_back_to_the_one_asked_for() -> None:
    assert parse_record("asked-for", {"taskId": ["x"]}).task_id == "asked-for"
    assert parse_record("asked-for", {"taskId": 12}).task_id == "asked-for"


def test_origin_data_that_is_not_a_list_means_no_stems_not_a_crash() -> None:
    for origin in (5, "https://cdn/v.mp3", {"audio_url": "https://cdn/v.mp3"}, None):
        record = parse_record(
            "t", {"successFlag": "SUCCESS", "response": {"vocalUrl": None, "originData": origin}}
        )
        assert record.stems == () and record.failed


def test_stem_keys_from_odd_field_names_are_made_safe() -> None:
    record = parse_record(
        "t",
        {
            "successFlag": "SUCCESS",
            "response": {
                "Url": "https://cdn/empty-name.mp3",
                "drums<b>Url": "https://cdn/d.mp3",
                ("x" * 300) + "Url": "https://cdn/long.mp3",
                "originData": [{"stem_type_group_name": "Drums & Bass", "audio_url": "https://cdn/db.mp3"}],
            },
        },
    )
    assert all(re.fullmatch(r"[a-z0-9_]{1,40}", stem.key) for stem in record.stems)
    assert "https://cdn/d.mp3" in [stem.url for stem in record.stems]


async def test_a_wrong_shaped_record_from_the_api_is_parsed_or_an_api_error(client, sim) -> None:
    task_id = await submit(client)
    bodies = [
        {"code": 200, "msg": "success", "data": record_with(("response",), [1, 2])},
        {"code": 200, "msg": "success", "data": record_with(("response", "originData"), 5)},
        {"code": 200, "msg": "success", "data": record_with(("completeTime",), "9" * 400)},
        {"code": 200, "msg": "success", "data": "not a record"},
        {"code": 200, "msg": "success", "data": None},
    ]
    sim.script("record", *[Fault("body", body=body) for body in bodies])
    outcomes = []
    for _ in bodies:
        try:
            outcomes.append(await client.record(task_id))
        except ApiError as error:
            outcomes.append(error)
    assert [type(o).__name__ for o in outcomes] == ["SeparationRecord"] * 3 + ["ApiError"] * 2
