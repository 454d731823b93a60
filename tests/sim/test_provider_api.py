"""Tests of the provider API simulator itself."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from aiohttp import web

from testing.provider_api import (
    PRICES,
    STEMS_2,
    STEMS_12,
    CallbackAttempt,
    Fault,
    SeparationApiSimulator,
    camel_key,
)

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SUBMIT = "/api/v1/vocal-removal/generate"
RECORD = "/api/v1/vocal-removal/record-info"
CREDIT = "/api/v1/generate/credit"
ALL_CAMEL = {camel_key(s) for s in ("vocal", "instrumental", *STEMS_12)}


@pytest.fixture
async def sim():
    async with SeparationApiSimulator(api_key=KEY, processing_seconds=0.05) as s:
        yield s


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(headers=AUTH) as session:
        yield session


class Receiver:
    """A local callback receiver."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        self.event = asyncio.Event()
        self.status = 200
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.path, await request.json()))
        self.event.set()
        return web.json_response({"ok": True}, status=self.status)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self.base

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    async def wait_for(self, count: int, wait: float = 2.0) -> None:
        deadline = time.monotonic() + wait
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"only {len(self.received)} callbacks"
            self.event.clear()
            try:
                await asyncio.wait_for(self.event.wait(), deadline - time.monotonic())
            except TimeoutError:
                pass


@pytest.fixture
async def receiver():
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


def body(**overrides):
    base = {
        "taskId": "gen-task-1",
        "audioId": "audio-1",
        "callBackUrl": "http://bot.invalid/cb/token",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


async def submit(http, sim, **overrides):
    async with http.post(sim.base_url + SUBMIT, json=body(**overrides)) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        return await resp.json()


async def record(http, sim, task_id):
    async with http.get(sim.base_url + RECORD, params={"taskId": task_id}) as resp:
        assert resp.status == 200
        return await resp.json()


async def wait_done(http, sim, task_id, wait=2.0):
    deadline = time.monotonic() + wait
    while True:
        env = await record(http, sim, task_id)
        if env["data"]["successFlag"] != "PENDING":
            return env
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


# --------------------------------------------------------------------------- happy paths


async def test_separate_vocal_pending_then_success(sim, http):
    env = await submit(http, sim)
    assert env["code"] == 200 and env["msg"] == "success"
    task_id = env["data"]["taskId"]
    assert len(task_id) == 32 and int(task_id, 16) >= 0
    assert set(sim.tasks) == {task_id}
    assert sim.charged() == PRICES["separate_vocal"]
    assert sim.account_credits == 10_000 - 10

    pending = await record(http, sim, task_id)
    data = pending["data"]
    assert pending["code"] == 200
    assert data["successFlag"] == "PENDING"
    assert data["response"] is None and data["completeTime"] is None
    assert data["taskId"] == task_id and data["musicId"] == "audio-1"
    assert data["callbackUrl"] == "http://bot.invalid/cb/token"
    assert isinstance(data["createTime"], int)

    done = (await wait_done(http, sim, task_id))["data"]
    assert done["successFlag"] == "SUCCESS"
    assert done["errorCode"] is None and done["errorMessage"] is None
    assert isinstance(done["completeTime"], int) and done["completeTime"] >= done["createTime"]
    response = done["response"]
    assert set(response) == ALL_CAMEL | {"originUrl", "originData"}
    assert response["originUrl"] == ""
    produced = {k for k in ALL_CAMEL if response[k] is not None}
    assert produced == {"vocalUrl", "instrumentalUrl"}
    assert response["vocalUrl"].startswith("https://file.aiquickdraw.com/s/")
    assert "_Vocals.mp3" in response["vocalUrl"]
    assert "_Instrumental.mp3" in response["instrumentalUrl"]
    assert [d["audio_url"] for d in response["originData"]] == [
        response["vocalUrl"],
        response["instrumentalUrl"],
    ]
    assert set(response["originData"][0]) == {"duration", "audio_url", "stem_type_group_name", "id"}

    task = sim.tasks[task_id]
    assert tuple(task.stems) == STEMS_2
    assert task.stems["vocal"] == response["vocalUrl"]
    assert task.mode == "separate_vocal" and task.source_task_id == "gen-task-1"
    assert task.complete_at == pytest.approx(task.created_at + 0.05)
    assert sim.polls(task_id) >= 2 and sim.polls() == sim.polls(task_id)
    assert sim.submits[0].code == 200 and sim.submits[0].task_id == task_id
    assert sim.submits[0].body == body()


async def test_split_stem_twelve_stems(sim, http):
    env = await submit(http, sim, type="split_stem")
    task_id = env["data"]["taskId"]
    assert sim.charged() == 50
    response = (await wait_done(http, sim, task_id))["data"]["response"]
    expected = {camel_key(s) for s in STEMS_12}
    assert {k for k in ALL_CAMEL if response[k] is not None} == expected
    assert "backingVocalsUrl" in expected and "woodwindsUrl" in expected
    assert response["instrumentalUrl"] is None
    assert len(response["originData"]) == 12
    assert tuple(sim.tasks[task_id].stems) == STEMS_12


async def test_split_stem_advanced_one_stem(sim, http):
    env = await submit(http, sim, type="split_stem_advanced", stemName="Drums")
    task_id = env["data"]["taskId"]
    assert sim.charged() == 20
    response = (await wait_done(http, sim, task_id))["data"]["response"]
    assert {k for k in ALL_CAMEL if response[k] is not None} == {"drumsUrl"}
    bad = await submit(http, sim, type="split_stem_advanced")
    assert bad["code"] == 400


async def test_each_submit_is_charged_again(sim, http):
    a = await submit(http, sim)
    b = await submit(http, sim)
    assert a["data"]["taskId"] != b["data"]["taskId"]
    assert sim.charged() == 20 and len(sim.tasks) == 2


async def test_credit_endpoint(sim, http):
    async with http.get(sim.base_url + CREDIT) as resp:
        assert await resp.json() == {"code": 200, "msg": "success", "data": 10_000}
    await submit(http, sim, type="split_stem")
    async with http.get(sim.base_url + CREDIT) as resp:
        assert (await resp.json())["data"] == 9_950


async def test_url_padding():
    async with (
        SeparationApiSimulator(processing_seconds=0, url_length=420) as sim,
        aiohttp.ClientSession(headers=AUTH) as http,
    ):
        task_id = (await submit(http, sim, type="split_stem"))["data"]["taskId"]
        response = (await wait_done(http, sim, task_id))["data"]["response"]
        urls = [response[camel_key(s)] for s in STEMS_12]
        assert all(len(u) == 420 for u in urls)
        assert all(u.startswith("https://file.aiquickdraw.com/s/") and "?" in u for u in urls)
        assert len(set(urls)) == 12
        # Changing url_length affects tasks submitted afterwards only.
        sim.url_length = 10
        short = sim.tasks[(await submit(http, sim))["data"]["taskId"]]
        assert all("?" not in u for u in short.stems.values())
        assert all(len(u) == 420 for u in sim.tasks[task_id].stems.values())


async def test_deterministic_ids():
    async def run() -> list[str]:
        async with (
            SeparationApiSimulator(seed=7) as sim,
            aiohttp.ClientSession(headers=AUTH) as http,
        ):
            ids = [(await submit(http, sim))["data"]["taskId"] for _ in range(3)]
            return ids + [u for i in ids for u in sim.tasks[i].stems.values()]

    assert await run() == await run()


# --------------------------------------------------------------------------- errors


async def test_auth_failure(sim):
    async with aiohttp.ClientSession() as anon:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            async with anon.post(sim.base_url + SUBMIT, json=body(), headers=headers) as resp:
                assert resp.status == 200
                env = await resp.json()
                assert env["code"] == 401 and env["msg"]
            async with anon.get(sim.base_url + CREDIT, headers=headers) as resp:
                assert (await resp.json())["code"] == 401
    assert sim.tasks == {} and sim.charged() == 0
    assert [s.code for s in sim.submits] == [401, 401, 401]


async def test_invalid_parameters(sim, http):
    sim.unknown_ids.update({"bad-task", "bad-audio"})
    assert (await submit(http, sim, taskId="bad-task"))["code"] == 400
    assert (await submit(http, sim, audioId="bad-audio"))["code"] == 400
    for missing in ("taskId", "audioId", "callBackUrl"):
        env = await submit(http, sim, **{missing: None})
        assert env["code"] == 400 and missing in env["msg"]
    assert (await submit(http, sim, audioId=""))["code"] == 400
    assert (await submit(http, sim, type="karaoke"))["code"] == 400
    assert (await submit(http, sim, callBackUrl="not a url"))["code"] == 400
    async with http.post(sim.base_url + SUBMIT, data=b"{nope") as resp:
        assert (await resp.json())["code"] == 400
    assert sim.tasks == {} and sim.charged() == 0
    assert len(sim.submits) == 9

    unknown = await record(http, sim, "0" * 32)
    assert unknown["code"] == 400 and "not found" in unknown["msg"]
    async with http.get(sim.base_url + RECORD) as resp:
        assert (await resp.json())["code"] == 400


async def test_wrong_path_is_404(sim, http):
    async with http.get(sim.base_url + "/api/v1/nope") as resp:
        assert resp.status == 404
        assert (await resp.json())["code"] == 404
    async with http.get(sim.base_url + SUBMIT) as resp:  # wrong method
        assert resp.status == 404


async def test_out_of_account_credits(http):
    async with SeparationApiSimulator(account_credits=15) as sim:
        assert (await submit(http, sim))["code"] == 200
        env = await submit(http, sim)
        assert env["code"] == 429 and "credit" in env["msg"]
        assert len(sim.tasks) == 1 and sim.charged() == 10 and sim.account_credits == 5
        sim.account_credits = 100
        assert (await submit(http, sim))["code"] == 200


async def test_outcomes_failure_and_callback_exception(sim, http):
    sim.outcome = "GENERATE_AUDIO_FAILED"
    sim.outcome_for_audio["ok"] = "SUCCESS"
    sim.outcome_for_audio["cbx"] = "CALLBACK_EXCEPTION"
    failed = (await submit(http, sim))["data"]["taskId"]
    ok = (await submit(http, sim, audioId="ok"))["data"]["taskId"]
    cbx = (await submit(http, sim, audioId="cbx"))["data"]["taskId"]
    data = (await wait_done(http, sim, failed))["data"]
    assert data["successFlag"] == "GENERATE_AUDIO_FAILED"
    assert data["response"] is None and data["errorCode"] == 500 and data["errorMessage"]
    assert data["completeTime"] is not None
    assert (await wait_done(http, sim, ok))["data"]["successFlag"] == "SUCCESS"
    data = (await wait_done(http, sim, cbx))["data"]
    assert data["successFlag"] == "CALLBACK_EXCEPTION"
    assert data["response"]["vocalUrl"] == sim.tasks[cbx].stems["vocal"]


async def test_unknown_flag_and_never_finishing(sim, http):
    sim.outcome = "SOMETHING_NEW"
    weird = (await submit(http, sim))["data"]["taskId"]
    sim.outcome = "PENDING"
    stuck = (await submit(http, sim))["data"]["taskId"]
    await asyncio.sleep(0.1)
    assert (await record(http, sim, weird))["data"]["successFlag"] == "SOMETHING_NEW"
    assert (await record(http, sim, stuck))["data"]["successFlag"] == "PENDING"


# --------------------------------------------------------------------------- faults


async def test_fault_code_and_http(sim, http):
    sim.script("submit", Fault("code", 455, "maintenance"), Fault("http", 503, "busy"))
    env = await submit(http, sim)
    assert env == {"code": 455, "msg": "maintenance", "data": None}
    async with http.post(sim.base_url + SUBMIT, json=body()) as resp:
        assert resp.status == 503
        assert (await resp.json())["code"] == 503
    assert sim.tasks == {} and sim.charged() == 0
    assert (await submit(http, sim))["code"] == 200  # faults consumed, normal again
    assert [(s.code, s.fault) for s in sim.submits] == [(455, "code"), (503, "http"), (200, None)]
    assert sim.pending_faults("submit") == 0


async def test_fault_html_and_garbage(sim, http):
    task_id = (await submit(http, sim))["data"]["taskId"]
    sim.script("record", Fault("html", 502, "Bad Gateway"), Fault("garbage"))
    async with http.get(sim.base_url + RECORD, params={"taskId": task_id}) as resp:
        assert resp.status == 502
        assert resp.content_type == "text/html"
        text = await resp.text()
        assert "<html>" in text
        with pytest.raises(ValueError):
            json.loads(text)
    async with http.get(sim.base_url + RECORD, params={"taskId": task_id}) as resp:
        assert resp.status == 200
        with pytest.raises(ValueError):
            json.loads(await resp.text())
    assert (await record(http, sim, task_id))["code"] == 200
    assert sim.polls(task_id) == 3


async def test_fault_body_answers_exactly_the_scripted_body(sim, http):
    shaped = {"code": 200, "msg": "success", "data": {"taskId": "t", "response": {"originData": 5}}}
    sim.script(
        "record",
        Fault("body", body=shaped),
        Fault("body", 503, body="Service Unavailable", content_type="text/plain"),
    )
    async with http.get(sim.base_url + RECORD, params={"taskId": "t"}) as resp:
        assert resp.status == 200 and json.loads(await resp.read()) == shaped
    async with http.get(sim.base_url + RECORD, params={"taskId": "t"}) as resp:
        assert resp.status == 503 and await resp.text() == "Service Unavailable"
    assert [c.code for c in sim.calls] == [200, 503]


async def test_fault_on_credit_endpoint(sim, http):
    sim.script("credit", Fault("code", 500))
    async with http.get(sim.base_url + CREDIT) as resp:
        assert (await resp.json())["code"] == 500
    async with http.get(sim.base_url + CREDIT) as resp:
        assert (await resp.json())["code"] == 200


async def test_fault_hang_client_timeout(sim, http):
    # The hang is ten times the client's patience, so a loaded machine that wakes the client late
    # still gives up well before the hang would end.
    sim.script("submit", Fault("hang", seconds=1.0))
    with pytest.raises(TimeoutError):
        async with http.post(sim.base_url + SUBMIT, json=body(), timeout=aiohttp.ClientTimeout(total=0.1)):
            pass
    await asyncio.sleep(1.1)
    # The client gave up before the hang ended: the request was dropped, nothing created.
    assert sim.tasks == {} and sim.charged() == 0
    assert sim.submits[0].fault == "hang" and sim.submits[0].code is None


async def test_fault_hang_then_normal_answer(sim, http):
    sim.script("record", Fault("hang", seconds=0.1))
    task_id = (await submit(http, sim))["data"]["taskId"]
    started = time.monotonic()
    env = await record(http, sim, task_id)
    assert env["code"] == 200 and time.monotonic() - started >= 0.1


async def test_fault_accept_and_hang_creates_and_charges(sim, http):
    sim.script("submit", Fault("accept_and_hang", seconds=5))
    with pytest.raises(TimeoutError):
        async with http.post(sim.base_url + SUBMIT, json=body(), timeout=aiohttp.ClientTimeout(total=0.1)):
            pass
    assert len(sim.tasks) == 1 and sim.charged() == 10
    assert sim.submits[0].task_id in sim.tasks and sim.submits[0].code is None
    with pytest.raises(ValueError):
        sim.script("record", Fault("accept_and_hang"))


async def test_fault_disconnect(sim, http):
    sim.script("submit", Fault("disconnect"))
    # aiohttp's client silently retries an idempotent GET once after a disconnect, so a
    # client only sees the error on a GET when two disconnects come in a row.
    sim.script("record", Fault("disconnect"), Fault("disconnect"))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with http.post(sim.base_url + SUBMIT, json=body()):
            pass
    assert sim.tasks == {} and sim.charged() == 0
    assert sim.submits[0].code is None and sim.submits[0].fault == "disconnect"
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with http.get(sim.base_url + RECORD, params={"taskId": "x"}):
            pass
    assert sim.polls("x") == 2
    assert (await submit(http, sim))["code"] == 200
    assert sim.calls[0].fault == "disconnect" and sim.calls[0].status is None


async def test_stop_wakes_hanging_requests(http):
    sim = SeparationApiSimulator()
    await sim.start()
    sim.script("submit", Fault("hang", seconds=30))
    request = asyncio.ensure_future(http.post(sim.base_url + SUBMIT, json=body()))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await sim.stop()
    assert time.monotonic() - started < 1.5
    with pytest.raises(aiohttp.ClientError):
        resp = await request
        resp.release()
    assert sim.tasks == {}


def test_script_validation():
    sim = SeparationApiSimulator()
    with pytest.raises(ValueError):
        sim.script("nope", Fault("code"))
    with pytest.raises(ValueError):
        sim.script("submit", Fault("explode"))


# --------------------------------------------------------------------------- callbacks


async def test_callback_success_with_duplicates_and_alt_key(http, receiver):
    async with SeparationApiSimulator(
        processing_seconds=0.05, callback_duplicates=2, callback_key="vocal_separation_info"
    ) as sim:
        url = receiver.base + "/cb/secret-token"
        task_id = (await submit(http, sim, type="split_stem", callBackUrl=url))["data"]["taskId"]
        await receiver.wait_for(2)
        await sim.wait_callbacks()
        task = sim.tasks[task_id]
        assert task.callbacks_sent == 2 and task.callback_statuses == [200, 200]
        assert task.callback_skipped is None
        # The callback comes no earlier than the completion.
        assert (await record(http, sim, task_id))["data"]["successFlag"] == "SUCCESS"
    paths = [p for p, _ in receiver.received]
    assert paths == ["/cb/secret-token"] * 2
    payload = receiver.received[0][1]
    assert payload == receiver.received[1][1]
    assert payload["code"] == 200
    assert payload["data"]["task_id"] == task_id
    info = payload["data"]["vocal_separation_info"]
    assert "vocal_removal_info" not in payload["data"]
    assert info["origin_url"] == ""
    assert set(info) == {"origin_url"} | {f"{s}_url" for s in STEMS_12}
    assert info["backing_vocals_url"] == task.stems["backing_vocals"]


async def test_callback_default_key_and_failure(http, receiver):
    async with SeparationApiSimulator(processing_seconds=0.05) as sim:
        sim.outcome_for_audio["broken"] = "CREATE_TASK_FAILED"
        ok = (await submit(http, sim, callBackUrl=receiver.base + "/a"))["data"]["taskId"]
        bad = await submit(http, sim, audioId="broken", callBackUrl=receiver.base + "/b")
        await receiver.wait_for(2)
    by_path = dict(receiver.received)
    assert set(by_path["/a"]["data"]["vocal_removal_info"]) == {
        "origin_url",
        "vocal_url",
        "instrumental_url",
    }
    assert by_path["/a"]["data"]["task_id"] == ok
    failure = by_path["/b"]
    assert failure["code"] == 500 and failure["msg"]
    assert failure["data"] == {"task_id": bad["data"]["taskId"], "vocal_removal_info": None}


async def test_callbacks_never_sent_to_invalid_or_remote_hosts(http, receiver):
    async with SeparationApiSimulator(processing_seconds=0.02) as sim:
        invalid = (await submit(http, sim))["data"]["taskId"]  # bot.invalid
        remote = (await submit(http, sim, callBackUrl="https://example.com/cb"))["data"]["taskId"]
        await asyncio.sleep(0.1)
        await sim.wait_callbacks()
        assert sim.tasks[invalid].callback_skipped == "invalid_tld"
        assert sim.tasks[remote].callback_skipped == "non_local_host"
        assert sim.tasks[invalid].callbacks_sent == sim.tasks[remote].callbacks_sent == 0
        assert len(sim.callback_log) == 0
        assert (await record(http, sim, invalid))["data"]["successFlag"] == "SUCCESS"


async def test_callbacks_disabled_and_dead_receiver(http, receiver):
    async with SeparationApiSimulator(processing_seconds=0.02, callbacks=False) as sim:
        task_id = (await submit(http, sim, callBackUrl=receiver.base + "/x"))["data"]["taskId"]
        assert sim.tasks[task_id].callback_skipped == "disabled"
        sim.callbacks = True
        # A receiver that is down: the simulator records the failure and carries on.
        dead = (await submit(http, sim, callBackUrl="http://127.0.0.1:9/cb"))["data"]["taskId"]
        await sim.wait_callbacks()
        task = sim.tasks[dead]
        assert task.callbacks_sent == 0 and task.callback_attempts == 1
        assert isinstance(task.callback_statuses[0], str)
        attempt = sim.callback_log[0]
        assert isinstance(attempt, CallbackAttempt) and attempt.status is None and attempt.error
    assert receiver.received == []


async def test_callback_retries_on_server_error(http, receiver):
    receiver.status = 500
    async with SeparationApiSimulator(
        processing_seconds=0.01, callback_retries=2, callback_retry_delay=0.01
    ) as sim:
        task_id = (await submit(http, sim, callBackUrl=receiver.base + "/r"))["data"]["taskId"]
        await sim.wait_callbacks()
        assert sim.tasks[task_id].callback_statuses == [500, 500, 500]
    assert len(receiver.received) == 3


async def test_finish_now(http, receiver):
    async with SeparationApiSimulator(processing_seconds=60) as sim:
        url = receiver.base + "/f"
        task_id = (await submit(http, sim, callBackUrl=url))["data"]["taskId"]
        other = (await submit(http, sim))["data"]["taskId"]
        assert (await record(http, sim, task_id))["data"]["successFlag"] == "PENDING"
        before = time.monotonic()
        sim.finish_now(task_id)
        task = sim.tasks[task_id]
        assert before <= task.completed_at_monotonic <= time.monotonic()
        assert task.complete_at <= time.time()
        assert (await record(http, sim, task_id))["data"]["successFlag"] == "SUCCESS"
        await receiver.wait_for(1)
        assert receiver.received[0][1]["data"]["task_id"] == task_id

        sim.finish_now(other, "GENERATE_AUDIO_FAILED")
        data = (await record(http, sim, other))["data"]
        assert data["successFlag"] == "GENERATE_AUDIO_FAILED" and data["response"] is None
        # On a finished task finish_now only changes the outcome.
        sim.finish_now(other, "SUCCESS")
        assert (await record(http, sim, other))["data"]["response"]["vocalUrl"]
        with pytest.raises(KeyError):
            sim.finish_now("0" * 32)


async def test_processing_seconds_applies_to_later_tasks(sim, http):
    first = (await submit(http, sim))["data"]["taskId"]
    sim.processing_seconds = 60
    second = (await submit(http, sim))["data"]["taskId"]
    await wait_done(http, sim, first)
    assert (await record(http, sim, second))["data"]["successFlag"] == "PENDING"


async def test_calls_log(sim, http):
    task_id = (await submit(http, sim))["data"]["taskId"]
    await record(http, sim, task_id)
    async with http.get(sim.base_url + CREDIT):
        pass
    assert [(c.method, c.path, c.endpoint, c.status, c.code) for c in sim.calls] == [
        ("POST", SUBMIT, "submit", 200, 200),
        ("GET", RECORD, "record", 200, 200),
        ("GET", CREDIT, "credit", 200, 200),
    ]
    assert sim.calls[1].task_id == task_id
    assert all(isinstance(c.time, float) for c in sim.calls)


async def test_many_concurrent_jobs():
    """A small version of the benchmark: 300 jobs polled concurrently."""
    async with (
        SeparationApiSimulator(processing_seconds=0.2, url_length=400, account_credits=10**6) as sim,
        aiohttp.ClientSession(headers=AUTH, connector=aiohttp.TCPConnector(limit=0)) as http,
    ):

        async def job(i: int) -> str:
            env = await submit(http, sim, audioId=f"a{i}", type="split_stem")
            return (await wait_done(http, sim, env["data"]["taskId"], wait=5))["data"]["successFlag"]

        results = await asyncio.gather(*(job(i) for i in range(300)))
        assert results == ["SUCCESS"] * 300
        assert len(sim.tasks) == 300 and sim.charged() == 300 * 50
