"""Tests of the Discord stand-in, with bench/baseline_bot.py as a real discord.py bot process."""

from __future__ import annotations

import hashlib
import json
import sys
import tracemalloc

import aiohttp
import pytest

from testing.discord_standin import (
    DEFAULT_APP_PERMISSIONS,
    DEFAULT_USER_ID,
    BotProcess,
    DiscordStandIn,
    InteractionRecord,
    Perm,
)

BASELINE = "bench.baseline_bot:main"
SPLIT = {"task_id": "t-1", "audio_id": "a-1"}
EXPECTED = "Split t-1 of a-1: queued"


@pytest.fixture
async def standin():
    s = DiscordStandIn()
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def spawn_bot(standin):
    """Start the baseline bot (or another target) and wait until it is ready."""
    bots: list[BotProcess] = []

    async def spawn(target: str = BASELINE, sessions: int = 1) -> BotProcess:
        bot = await standin.spawn(target, python=sys.executable)
        bots.append(bot)
        try:
            await standin.wait_ready(timeout=20, sessions=sessions)
        except TimeoutError as exc:
            raise AssertionError(f"bot not ready: {exc}\n--- bot output ---\n{bot.output()}") from None
        return bot

    yield spawn
    for bot in bots:
        await bot.stop()
        print(f"--- output of {bot.target} (pid {bot.pid}) ---\n{bot.output()}")
        bot.cleanup()


def assert_clean(standin: DiscordStandIn) -> None:
    assert standin.rejected == []
    assert standin.unhandled == []
    assert standin.internal_errors == []


# ------------------------------------------------------------------------------------------
# With the real bot process
# ------------------------------------------------------------------------------------------


async def test_split_roundtrip(standin, spawn_bot):
    await spawn_bot()

    # Login, sync and identify happened as discord.py does them.
    methods = [(r.method, r.path, r.status) for r in standin.requests]
    assert ("GET", "/users/@me", 200) in methods
    assert ("GET", "/oauth2/applications/@me", 200) in methods
    assert len(standin.sync_calls) == 1
    assert standin.sync_calls[0].guild_id is None
    (cmd,) = standin.global_commands
    assert cmd["name"] == "split"
    assert [(o["name"], o["type"]) for o in cmd["options"]] == [("task_id", 3), ("audio_id", 3)]
    assert standin.gateway_connections[0]["v"] == "10"
    assert standin.gateway_connections[0]["compress"] in ("zlib-stream", "zstd-stream")
    assert standin.identifies[0]["intents"] > 0

    rec = await standin.invoke("split", SPLIT, user_id=42)
    msg = await rec.wait_for_edit(lambda m: m.content == EXPECTED, timeout=5)

    assert rec.payload["data"]["options"] == [
        {"name": "task_id", "type": 3, "value": "t-1"},
        {"name": "audio_id", "type": 3, "value": "a-1"},
    ]
    assert [a.type for a in rec.acks] == [5]
    assert rec.ack_latency is not None and rec.ack_latency < 1.0
    assert not rec.ephemeral and not msg.loading
    assert len(msg.edits) == 1 and msg.edits[0].at >= rec.acks[0].at
    assert rec.visible_text() == EXPECTED
    assert rec.visible_text(include_ephemeral=False) == EXPECTED
    assert not rec.did_not_respond
    calls = [(r.method, r.status) for r in standin.requests if str(rec.id) in r.path]
    assert calls == [("POST", 200), ("PATCH", 200)]  # the token embeds the interaction id
    assert_clean(standin)


async def test_many_concurrent_interactions(standin, spawn_bot):
    await spawn_bot()
    recs = [
        await standin.invoke("split", {"task_id": f"t{i}", "audio_id": "a"}, user_id=1000 + i)
        for i in range(50)
    ]
    for i, rec in enumerate(recs):
        await rec.wait_for_edit(lambda m, i=i: m.content == f"Split t{i} of a: queued", timeout=10)
    assert len({r.token for r in recs}) == 50
    assert max(r.ack_latency for r in recs) < 3.0
    assert_clean(standin)


@pytest.mark.parametrize("close_code", [None, 4000])
async def test_gateway_drop_resumes(standin, spawn_bot, close_code):
    await spawn_bot()
    first = await standin.invoke("split", SPLIT)
    await first.wait_for_edit(timeout=5)

    await standin.drop_gateway(close_code)
    # Dispatched while the bot is disconnected: buffered and replayed on RESUME.
    during = await standin.invoke("split", {"task_id": "during", "audio_id": "x"})
    await standin.wait_for(lambda: standin.resumes >= 1, timeout=10)
    await during.wait_for_edit(lambda m: "during" in m.content, timeout=10)

    after = await standin.invoke("split", {"task_id": "after", "audio_id": "x"})
    await after.wait_for_edit(lambda m: "after" in m.content, timeout=5)
    assert standin.session_count == 1  # resumed, not re-identified
    assert len(standin.gateway_connections) == 2
    assert_clean(standin)


async def test_expired_token_edit_fails(standin, spawn_bot):
    await spawn_bot()
    standin.token_max_age = 0.0  # every webhook call counts as later than the token's life
    rec = await standin.invoke("split", SPLIT)
    err = await rec.wait_for_error(timeout=5)

    assert (err.method, err.status, err.code) == ("PATCH", 401, 50027)
    assert err.message == "Invalid Webhook Token"
    assert [a.type for a in rec.acks] == [5]  # the defer itself worked
    assert rec.original is not None and rec.original.loading and not rec.edits
    assert rec.visible_text() == "StemBot is thinking..."
    assert ("PATCH", 401) in [(r.method, r.status) for r in standin.requests]


async def test_rate_limit_is_honoured(standin, spawn_bot):
    # Bot-token route (HTTPClient) at start, and webhook route (interaction edit) later.
    standin.rate_limit_next(1, retry_after=0.3, route_contains="PUT /applications/")
    await spawn_bot()
    puts = [r for r in standin.requests if r.method == "PUT"]
    assert [r.status for r in puts] == [429, 200]
    assert puts[1].at - puts[0].at >= 0.28

    standin.rate_limit_next(1, retry_after=0.3, route_contains="PATCH /webhooks/")
    rec = await standin.invoke("split", SPLIT)
    await rec.wait_for_edit(lambda m: m.content == EXPECTED, timeout=5)
    patches = [r for r in standin.requests if r.method == "PATCH"]
    assert [r.status for r in patches] == [429, 200]
    assert patches[1].at - patches[0].at >= 0.28
    assert standin.invalid_request_count == 2
    assert_clean(standin)


async def test_bot_restart_keeps_commands(standin, spawn_bot):
    first = await spawn_bot()
    await first.stop()
    await spawn_bot(sessions=2)
    assert len(standin.sync_calls) == 2
    assert standin.sync_calls[0].commands[0]["id"] == standin.sync_calls[1].commands[0]["id"]
    rec = await standin.invoke("split", SPLIT)
    await rec.wait_for_edit(lambda m: m.content == EXPECTED, timeout=5)
    assert_clean(standin)


# ------------------------------------------------------------------------------------------
# Protocol details with a raw client (no bot process)
# ------------------------------------------------------------------------------------------


class RawBot:
    """Just enough of a gateway client to receive dispatches, plus raw REST calls."""

    def __init__(self, standin: DiscordStandIn, http: aiohttp.ClientSession) -> None:
        self.standin = standin
        self.http = http
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.seq = 0
        self.session_id = ""

    async def recv(self) -> dict:
        assert self.ws is not None
        frame = json.loads(await self.ws.receive_str(timeout=5))
        if frame.get("s"):
            assert frame["s"] == self.seq + 1, "sequence numbers must increase by one"
            self.seq = frame["s"]
        return frame

    async def connect(self, *, resume: bool = False, shard: list[int] | None = None) -> list[dict]:
        self.ws = await self.http.ws_connect(self.standin.gateway_url + "?v=10&encoding=json")
        hello = await self.recv()
        assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] == 41250
        if resume:
            d = {"token": self.standin.token, "session_id": self.session_id, "seq": self.seq}
            await self.ws.send_json({"op": 6, "d": d})
            frames = []
            while not frames or frames[-1].get("t") != "RESUMED":
                frames.append(await self.recv())
            return frames
        identify: dict = {"token": self.standin.token, "intents": 1}
        if shard is not None:
            identify["shard"] = shard
        await self.ws.send_json({"op": 2, "d": identify})
        ready = await self.recv()
        guilds = [await self.recv() for _ in ready["d"]["guilds"]]
        self.session_id = ready["d"]["session_id"]
        return [ready, *guilds]

    async def hears_nothing(self, seconds: float = 0.3) -> bool:
        assert self.ws is not None
        try:
            frame = await self.ws.receive_str(timeout=seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"this session should hear nothing, got {frame}")

    async def next_interaction(self) -> dict:
        while True:
            frame = await self.recv()
            if frame.get("t") == "INTERACTION_CREATE":
                return frame["d"]

    async def call(self, method: str, path: str, payload=None, *, auth: bool = False):
        headers = {"Authorization": f"Bot {self.standin.token}"} if auth else {}
        url = self.standin.rest_base + path
        async with self.http.request(method, url, json=payload, headers=headers) as resp:
            ctype = resp.headers.get("Content-Type")
            body = await resp.json() if ctype == "application/json" else await resp.text()
            return resp.status, body


@pytest.fixture
async def raw(standin):
    async with aiohttp.ClientSession() as http:
        bot = RawBot(standin, http)
        await bot.connect()
        standin.set_commands(
            [
                {
                    "name": "split",
                    "description": "Split",
                    "options": [
                        {"name": "task_id", "type": 3, "description": "t", "required": True},
                        {"name": "count", "type": 4, "description": "n", "min_value": 1},
                    ],
                }
            ]
        )
        await standin.wait_ready(timeout=5)
        yield bot
        if bot.ws is not None:
            await bot.ws.close()


async def test_ready_and_interaction_payload(standin, raw):
    assert standin.identifies and standin.ready
    rec = await standin.invoke("split", {"task_id": "x", "count": 2}, user_id=77, roles=[555], permissions=8)
    data = await raw.next_interaction()
    assert data["id"] == str(rec.id) and data["token"] == rec.token
    assert data["attachment_size_limit"] == standin.attachment_size_limit
    assert data["app_permissions"] == str(DEFAULT_APP_PERMISSIONS)
    assert data["member"]["user"]["id"] == "77"
    assert data["member"]["roles"] == ["555"] and data["member"]["permissions"] == "8"
    assert data["data"]["options"][1] == {"name": "count", "type": 4, "value": 2}
    assert data["guild_id"] == str(standin.guild_id)
    assert data["channel"]["id"] == str(standin.channel_id)
    assert rec.dispatched_at is not None
    with pytest.raises(ValueError, match="missing required"):
        await standin.invoke("split", {"count": 2})
    with pytest.raises(ValueError, match="outside"):
        await standin.invoke("split", {"task_id": "x", "count": 0})
    with pytest.raises(LookupError):
        await standin.invoke("nope")


async def test_interactions_carry_the_members_and_the_servers_language(standin, raw):
    await standin.invoke("split", {"task_id": "x"})
    default = await raw.next_interaction()
    assert default["locale"] == "en-US" and default["guild_locale"] == "en-US"

    standin.set_guild_locale("de")
    await standin.invoke("split", {"task_id": "x"}, locale="ja")
    data = await raw.next_interaction()
    assert data["locale"] == "ja" and data["guild_locale"] == "de" and data["guild"]["locale"] == "de"

    await standin.autocomplete("split", {"task_id": "x"}, "task_id", locale="es-ES")
    assert (await raw.next_interaction())["locale"] == "es-ES"


async def test_command_localisations_discord_would_refuse_are_refused(standin, raw):
    def command(**localised) -> dict:
        option = {"name": "task_id", "type": 3, "description": "t", "required": True}
        option.update(localised.pop("option", {}))
        return {"name": "split", "description": "Split", "options": [option], **localised}

    path = f"/applications/{standin.application_id}/commands"
    good = command(
        name_localizations={"de": "aufteilen", "ja": "分割"},
        description_localizations={"fr": "Séparer"},
        option={"name_localizations": {"es-ES": "tarea"}},
    )
    status, _ = await raw.call("PUT", path, [good], auth=True)
    assert status == 200
    assert standin.sync_calls[-1].commands[0]["name_localizations"] == {"de": "aufteilen", "ja": "分割"}

    for bad in (
        command(name_localizations={"de": "Aufteilen"}),
        command(name_localizations={"de": "zwei worte"}),
        command(name_localizations={"xx": "split"}),
        command(description_localizations={"fr": "x" * 101}),
        command(option={"name_localizations": {"ja": "a" * 33}}),
        command(option={"description_localizations": {"ja": ""}}),
    ):
        status, _ = await raw.call("PUT", path, [bad], auth=True)
        assert status == 400, bad
    standin.rejected.clear()


async def test_callback_rules_and_followups(standin, raw):
    rec = await standin.invoke("split", {"task_id": "x"})
    cb = f"/interactions/{rec.id}/{rec.token}/callback?with_response=1"
    status, body = await raw.call("POST", cb, {"type": 5, "data": {"flags": 64}})
    assert status == 200
    assert body["resource"]["type"] == 5
    assert body["interaction"]["response_message_loading"] is True
    assert body["interaction"]["response_message_ephemeral"] is True
    assert body["resource"]["message"]["flags"] == 64 | 128

    status, body = await raw.call("POST", cb, {"type": 4, "data": {"content": "again"}})
    assert (status, body["code"]) == (400, 40060)

    wh = f"/webhooks/{standin.application_id}/{rec.token}"
    # The first follow-up after a defer fills the deferred message (stays ephemeral).
    status, body = await raw.call("POST", wh + "?wait=true", {"content": "first"})
    assert status == 200 and body["id"] == str(rec.original.id)
    assert rec.original.content == "first" and rec.original.ephemeral and not rec.followups
    status, body = await raw.call("POST", wh + "?wait=1", {"content": "public", "flags": 0})
    assert status == 200 and rec.followups[0].content == "public"
    status, _ = await raw.call("POST", wh + "?wait=1", {"content": "secret", "flags": 64})
    assert status == 200 and rec.followups[1].ephemeral
    status, body = await raw.call(
        "PATCH", wh + "/messages/%40original", {"embeds": [{"title": "T", "description": "D"}]}
    )
    assert status == 200 and body["content"] == "first" and body["embeds"][0]["title"] == "T"
    status, _ = await raw.call("DELETE", wh + f"/messages/{rec.followups[0].id}")
    assert status == 204
    assert rec.visible_text() == "first\nT\nD\nsecret"
    assert rec.visible_text(include_ephemeral=False) == ""

    rec.expire_token()
    status, body = await raw.call("PATCH", wh + "/messages/@original", {"content": "late"})
    assert (status, body["code"]) == (401, 50027)
    status, body = await raw.call("PATCH", f"/webhooks/{standin.application_id}/nope/messages/1")
    assert (status, body["code"]) == (404, 10015)
    assert standin.rejected == []


async def test_ack_deadline_and_unanswered(standin, raw):
    standin.ack_deadline = 0.0
    rec = await standin.invoke("split", {"task_id": "x"})
    status, body = await raw.call("POST", f"/interactions/{rec.id}/{rec.token}/callback", {"type": 5})
    assert (status, body["code"]) == (404, 10062)
    assert rec.did_not_respond
    assert rec.visible_text() == "The application did not respond"


async def test_validation_rejections(standin, raw):
    rec = await standin.invoke("split", {"task_id": "x"})
    cb = f"/interactions/{rec.id}/{rec.token}/callback"
    bad_payloads = [
        {"content": "x" * 2001},
        {"embeds": [{"title": "t"}] * 11},
        {"embeds": [{"title": "x" * 257}]},
        {"embeds": [{"description": "x" * 4097}]},
        {"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]},
        {"embeds": [{"fields": [{"name": "n", "value": "x" * 1025}]}]},
        {"embeds": [{"fields": [{"name": "x" * 257, "value": "v"}]}]},
        {"embeds": [{"footer": {"text": "x" * 2049}}]},
        {"embeds": [{"description": "x" * 4000}, {"description": "x" * 2001}]},
        {
            "components": [
                {
                    "type": 1,
                    "components": [{"type": 2, "style": 5, "label": "l", "url": "https://x/" + "a" * 503}],
                }
            ]
        },
        {
            "components": [
                {"type": 1, "components": [{"type": 2, "style": 1, "label": "x" * 81, "custom_id": "c"}]}
            ]
        },
        {
            "components": [
                {
                    "type": 1,
                    "components": [
                        {"type": 2, "style": 1, "label": "b", "custom_id": f"c{i}"} for i in range(6)
                    ],
                }
            ]
        },
        {
            "components": [
                {"type": 1, "components": [{"type": 2, "style": 1, "label": "b", "custom_id": f"r{i}"}]}
                for i in range(6)
            ]
        },
        {"content": ""},
    ]
    for payload in bad_payloads:
        status, body = await raw.call("POST", cb, {"type": 4, "data": payload})
        assert status == 400, payload
        assert body["code"] in (50035, 50006), body
        if body["code"] == 50035:
            assert body["message"] == "Invalid Form Body" and body["errors"]
    assert len(standin.rejected) == len(bad_payloads)
    assert not rec.acks

    ok = {
        "content": "x" * 2000,
        "embeds": [{"title": "t", "fields": [{"name": "n", "value": "x" * 1024}]}],
        "components": [
            {
                "type": 1,
                "components": [{"type": 2, "style": 5, "label": "x" * 80, "url": "https://x/" + "a" * 502}],
            }
        ],
    }
    status, body = await raw.call("POST", cb + "?with_response=1", {"type": 4, "data": ok})
    assert status == 200, body
    assert "x" * 80 in rec.visible_text() and "https://x/" in rec.visible_text()


async def test_channels_dms_and_faults(standin, raw):
    cid = standin.channel_id
    status, body = await raw.call("GET", f"/channels/{cid}", auth=True)
    assert status == 200 and body["type"] == 0 and body["guild_id"] == str(standin.guild_id)
    status, body = await raw.call(
        "POST", f"/channels/{cid}/messages", {"content": f"<@{DEFAULT_USER_ID}> done"}, auth=True
    )
    assert status == 200 and body["author"]["bot"] is True
    (msg,) = standin.channel_messages(cid)
    assert msg.pinged_user_ids == [DEFAULT_USER_ID]
    status, _ = await raw.call("POST", f"/channels/{cid}/messages", {"content": "x"})
    assert status == 401  # bot routes need the token

    standin.channel_forbidden.add(cid)
    status, body = await raw.call("POST", f"/channels/{cid}/messages", {"content": "x"}, auth=True)
    assert (status, body["code"]) == (403, 50013)

    status, dm = await raw.call("POST", "/users/@me/channels", {"recipient_id": "99"}, auth=True)
    assert status == 200 and dm["type"] == 1 and dm["recipients"][0]["id"] == "99"
    dm_messages = f"/channels/{dm['id']}/messages"
    status, _ = await raw.call("POST", dm_messages, {"content": "hi"}, auth=True)
    assert status == 200 and [m.content for m in standin.dm_messages(99)] == ["hi"]
    standin.dms_closed.add(99)
    status, body = await raw.call("POST", f"/channels/{dm['id']}/messages", {"content": "hi"}, auth=True)
    assert (status, body["code"]) == (403, 50007)

    standin.fail_next(500, 0, route_contains="/users/@me")
    status, _ = await raw.call("GET", "/users/@me", auth=True)
    assert status == 500
    status, _ = await raw.call("GET", "/users/@me", auth=True)
    assert status == 200
    status, _ = await raw.call("GET", "/nothing/here", auth=True)
    assert status == 404 and standin.unhandled == [("GET", "/nothing/here")]


async def test_replies_must_reference_a_message_in_the_same_channel(standin, raw):
    cid = standin.channel_id
    messages = f"/channels/{cid}/messages"
    status, first = await raw.call("POST", messages, {"content": "first"}, auth=True)
    assert status == 200 and "message_reference" not in first

    reply = {"content": "reply", "message_reference": {"message_id": first["id"], "channel_id": str(cid)}}
    status, body = await raw.call("POST", messages, reply, auth=True)
    assert status == 200 and body["message_reference"]["message_id"] == first["id"] and body["type"] == 19
    assert standin.message(int(body["id"])).reference_id == int(first["id"])

    missing = {"content": "x", "message_reference": {"message_id": "123"}}
    status, body = await raw.call("POST", messages, missing, auth=True)
    assert (status, body["code"]) == (400, 50035)
    assert "MESSAGE_REFERENCE_UNKNOWN_MESSAGE" in json.dumps(body["errors"])
    lenient = {"content": "y", "message_reference": {"message_id": "123", "fail_if_not_exists": False}}
    status, body = await raw.call("POST", messages, lenient, auth=True)
    assert status == 200 and "message_reference" not in body  # posted as a plain message

    elsewhere = {"content": "z", "message_reference": {"message_id": first["id"], "channel_id": "42"}}
    status, body = await raw.call("POST", messages, elsewhere, auth=True)
    assert (status, body["code"]) == (400, 50035)
    assert len(standin.rejected) == 2
    standin.rejected.clear()


async def test_raw_resume_replays_missed_dispatches(standin, raw):
    await raw.ws.close()
    await standin.wait_for(lambda: not standin.ready, timeout=5)
    rec = await standin.invoke("split", {"task_id": "x"})
    assert rec.dispatched_at is None
    frames = await raw.connect(resume=True)
    assert [f["t"] for f in frames] == ["INTERACTION_CREATE", "RESUMED"]
    assert rec.dispatched_at is not None
    assert standin.resumes == 1


async def test_component_click_and_autocomplete(standin, raw):
    rec = await standin.invoke("split", {"task_id": "x"})
    button = {"type": 2, "style": 1, "label": "Retry", "custom_id": "retry:42"}
    data = {"content": "failed", "components": [{"type": 1, "components": [button]}]}
    cb = f"/interactions/{rec.id}/{rec.token}/callback"
    status, _ = await raw.call("POST", cb, {"type": 4, "data": data})
    assert status == 204

    click = await standin.click(rec.original, "retry:42", user_id=9)
    await raw.next_interaction()  # the /split one
    payload = await raw.next_interaction()
    assert payload["type"] == 3
    assert payload["data"] == {"custom_id": "retry:42", "component_type": 2}
    assert payload["message"]["id"] == str(rec.original.id)
    status, _ = await raw.call(
        "POST",
        f"/interactions/{click.id}/{click.token}/callback",
        {"type": 7, "data": {"content": "retrying", "components": []}},
    )
    assert status == 204
    assert click.original is rec.original and rec.content == "retrying" and not rec.components

    auto = await standin.autocomplete("split", {"task_id": "ab"}, focused="task_id")
    payload = await raw.next_interaction()
    assert payload["type"] == 4
    focused = {"name": "task_id", "type": 3, "value": "ab", "focused": True}
    assert payload["data"]["options"] == [focused]
    choices = [{"name": "abc", "value": "abc"}]
    cb = f"/interactions/{auto.id}/{auto.token}/callback"
    status, _ = await raw.call("POST", cb, {"type": 8, "data": {"choices": choices}})
    assert status == 204 and auto.choices == choices
    assert_clean(standin)


async def test_autocomplete_answers_beyond_discords_limits_are_refused(standin, raw):
    too_many = [{"name": f"n{i}", "value": f"v{i}"} for i in range(26)]
    long_name = [{"name": "x" * 101, "value": "v"}]
    long_value = [{"name": "n", "value": "v" * 101}]
    empty_name = [{"name": "", "value": 3}]
    for choices, path in [
        (too_many, ["choices"]),
        (long_name, ["choices", "0", "name"]),
        (long_value, ["choices", "0", "value"]),
        (empty_name, ["choices", "0", "name"]),
    ]:
        auto = await standin.autocomplete("split", {"task_id": "ab"}, focused="task_id")
        await raw.next_interaction()
        cb = f"/interactions/{auto.id}/{auto.token}/callback"
        status, body = await raw.call("POST", cb, {"type": 8, "data": {"choices": choices}})
        assert status == 400 and body["code"] == 50035
        node = body["errors"]["data"]
        for part in path:
            node = node[part]
        assert node["_errors"], body
        assert auto.choices == [] and not auto.acked
        standin.rejected.clear()

    auto = await standin.autocomplete("split", {"task_id": "ab"}, focused="task_id")
    await raw.next_interaction()
    fitting = [{"name": "x" * 100, "value": "v" * 100}] + [{"name": "n", "value": i} for i in range(24)]
    cb = f"/interactions/{auto.id}/{auto.token}/callback"
    status, _ = await raw.call("POST", cb, {"type": 8, "data": {"choices": fitting}})
    assert status == 204 and auto.choices == fitting
    assert_clean(standin)


async def test_bad_token_is_refused(standin):
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(standin.gateway_url)
        assert json.loads(await ws.receive_str(timeout=5))["op"] == 10
        await ws.send_json({"op": 2, "d": {"token": "wrong"}})
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4004
        await ws.close()
        async with http.get(standin.rest_base + "/users/@me") as resp:
            assert resp.status == 401
            assert resp.headers["Content-Type"] == "application/json"


# ------------------------------------------------------------------------------------------
# The delivery paths the product uses, with a real discord.py bot defined here
# (spawned as tests.e2e.test_standin:delivery_bot_main)
# ------------------------------------------------------------------------------------------


def delivery_bot_main() -> None:
    import io
    import os

    import discord
    from discord import app_commands

    guild = discord.Object(int(os.environ["STANDIN_GUILD_ID"]))

    class DeliveryBot(discord.Client):
        def __init__(self) -> None:
            super().__init__(intents=discord.Intents.default())
            self.tree = app_commands.CommandTree(self)

        async def setup_hook(self) -> None:
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)

    bot = DeliveryBot()

    @bot.tree.command(name="deliver", description="Exercise the delivery paths")
    @app_commands.describe(mode="reply or defer")
    async def deliver(interaction: discord.Interaction, mode: str, count: int = 1) -> None:
        if mode == "reply":
            await interaction.response.send_message(f"reply x{count}", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        roles = ",".join(r.name for r in interaction.user.roles if not r.is_default())
        hook = discord.Webhook.partial(interaction.application_id, interaction.token, client=bot)
        await hook.edit_message("@original", content=f"edited via partial; roles={roles}")
        view = discord.ui.View()
        view.add_item(discord.ui.Button(label="Download", url="https://cdn.example/stem.wav"))
        await interaction.followup.send(
            embed=discord.Embed(title="Stems", description="4 stems"), view=view, ephemeral=True
        )
        channel = bot.get_partial_messageable(interaction.channel_id)
        await channel.send(
            f"{interaction.user.mention} your stems are ready",
            allowed_mentions=discord.AllowedMentions(users=[interaction.user]),
        )
        data = io.BytesIO(b"stem-bytes")
        file = discord.File(data, "stems.txt")
        await interaction.followup.send("file", file=file, ephemeral=True)
        dm = await bot.create_dm(discord.Object(interaction.user.id))
        try:
            await dm.send("dm copy")
        except discord.Forbidden as exc:
            await interaction.followup.send(f"dm failed {exc.code}", ephemeral=True)

    bot.run(os.environ["DISCORD_TOKEN"], log_handler=None)


async def test_product_delivery_paths(standin):
    bot = await standin.spawn(
        "tests.e2e.test_standin:delivery_bot_main",
        extra_env={"STANDIN_GUILD_ID": str(standin.guild_id)},
    )
    try:
        await standin.wait_ready(timeout=20)
        assert [c.guild_id for c in standin.sync_calls] == [standin.guild_id]
        assert standin.guild_commands()[0]["name"] == "deliver"

        reply = await standin.invoke("deliver", {"mode": "reply", "count": 3})
        msg = await reply.wait_for_response(timeout=5)
        assert msg.content == "reply x3" and msg.ephemeral and [a.type for a in reply.acks] == [4]

        standin.dms_closed.add(5)
        role = standin.add_role("Stem Club")
        rec = await standin.invoke("deliver", {"mode": "defer"}, user_id=5, roles=[role])
        assert rec.payload["data"]["guild_id"] == str(standin.guild_id)
        failed = await rec.wait_for_followup(lambda m: "dm failed" in m.content, timeout=5)
        assert failed.content == "dm failed 50007" and failed.ephemeral
        assert rec.ephemeral and rec.content == "edited via partial; roles=Stem Club"
        assert rec.followups[0].embeds[0]["title"] == "Stems"
        text = rec.visible_text()
        assert "Stems\n4 stems\nDownload\nhttps://cdn.example/stem.wav" in text
        assert rec.visible_text(include_ephemeral=False) == ""
        (upload,) = [m for m in rec.followups if m.content == "file"]
        assert [(a["filename"], a["size"]) for a in upload.attachments] == [("stems.txt", 10)]
        (notice,) = standin.channel_messages()
        assert notice.content == "<@5> your stems are ready" and notice.pinged_user_ids == [5]
        assert standin.dm_messages(5) == []

        rec2 = await standin.invoke("deliver", {"mode": "defer"}, user_id=6)
        await rec2.wait_for_followup(timeout=5)
        await standin.wait_for_dm(6, lambda m: m.content == "dm copy", timeout=5)
        assert_clean(standin)
    finally:
        await bot.stop()
        print(bot.output())
        bot.cleanup()


# ------------------------------------------------------------------------------------------
# Keeping stems in Discord: threads, uploads, history, permissions, lost answers (raw REST)
# ------------------------------------------------------------------------------------------


async def upload(raw: RawBot, method: str, path: str, payload: dict, files: list[tuple[str, bytes]]):
    """A multipart request as discord.py sends one: payload_json, then files[n] as octet-stream."""
    form = aiohttp.FormData(quote_fields=False)
    payload = {**payload, "attachments": [{"id": i, "filename": name} for i, (name, _) in enumerate(files)]}
    form.add_field("payload_json", json.dumps(payload))
    for i, (name, data) in enumerate(files):
        form.add_field(f"files[{i}]", data, filename=name, content_type="application/octet-stream")
    headers = {"Authorization": f"Bot {raw.standin.token}"}
    async with raw.http.request(method, raw.standin.rest_base + path, data=form, headers=headers) as resp:
        return resp.status, await resp.json()


async def post(raw: RawBot, channel_id: int, payload: dict) -> dict:
    status, body = await raw.call("POST", f"/channels/{channel_id}/messages", payload, auth=True)
    assert status == 200, body
    return body


async def test_a_thread_on_a_message_is_a_channel_with_the_messages_id(standin, raw):
    cid = standin.channel_id
    result = await post(raw, cid, {"content": "Full split: 12 stems"})
    mid = int(result["id"])

    status, thread = await raw.call(
        "POST",
        f"/channels/{cid}/messages/{mid}/threads",
        {"name": "Stems of Job #7", "auto_archive_duration": 10080, "rate_limit_per_user": None},
        auth=True,
    )
    assert status == 201, thread
    assert thread["id"] == str(mid) and thread["type"] == 11
    assert thread["parent_id"] == str(cid) and thread["guild_id"] == str(standin.guild_id)
    assert thread["name"] == "Stems of Job #7" and thread["owner_id"] == str(standin.bot_user_id)
    assert thread["thread_metadata"]["auto_archive_duration"] == 10080
    assert thread["thread_metadata"]["archived"] is False
    assert (thread["message_count"], thread["member_count"]) == (0, 1)
    record = standin.thread_on(mid)
    assert record is not None and record.name == "Stems of Job #7" and record.parent_id == cid

    status, fetched = await raw.call("GET", f"/channels/{mid}", auth=True)
    assert status == 200 and fetched["type"] == 11 and fetched["parent_id"] == str(cid)
    status, starter = await raw.call("GET", f"/channels/{cid}/messages/{mid}", auth=True)
    assert starter["thread"]["id"] == str(mid) and starter["flags"] & 32  # HAS_THREAD

    in_thread = await post(raw, mid, {"content": "vocals"})
    assert in_thread["channel_id"] == str(mid)
    assert [m.content for m in standin.messages_in(mid)] == ["vocals"]
    assert standin.message(int(in_thread["id"])).guild_id == standin.guild_id
    status, fetched = await raw.call("GET", f"/channels/{mid}", auth=True)
    assert fetched["message_count"] == 1 and fetched["last_message_id"] == in_thread["id"]

    status, body = await raw.call(
        "POST", f"/channels/{cid}/messages/{mid}/threads", {"name": "again"}, auth=True
    )
    assert (status, body["code"]) == (400, 160004)
    assert body["message"] == "A thread has already been created for this message"
    assert_clean(standin)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "", "auto_archive_duration": 60}, "name"),
        ({"name": "x" * 101, "auto_archive_duration": 60}, "name"),
        ({"auto_archive_duration": 60}, "name"),
        ({"name": "Stems", "auto_archive_duration": 30}, "auto_archive_duration"),
        ({"name": "Stems", "auto_archive_duration": 20160}, "auto_archive_duration"),
    ],
)
async def test_thread_names_and_archive_durations_are_validated(standin, raw, payload, field):
    mid = (await post(raw, standin.channel_id, {"content": "result"}))["id"]
    path = f"/channels/{standin.channel_id}/messages/{mid}/threads"
    status, body = await raw.call("POST", path, payload, auth=True)
    assert (status, body["code"]) == (400, 50035)
    assert body["errors"][field]["_errors"]
    assert standin.thread_on(int(mid)) is None
    standin.rejected.clear()

    status, _ = await raw.call("POST", path, {"name": "x" * 100, "auto_archive_duration": 4320}, auth=True)
    assert status == 201  # the limits themselves are fine


async def test_no_thread_in_dms_threadless_channels_or_threads(standin, raw):
    status, dm = await raw.call("POST", "/users/@me/channels", {"recipient_id": "99"}, auth=True)
    in_dm = await post(raw, int(dm["id"]), {"content": "your stems"})
    voice_chat = standin.add_text_channel("voice-chat")
    standin.no_thread_channels.add(voice_chat)
    in_voice_chat = await post(raw, voice_chat, {"content": "your stems"})
    parent = await post(raw, standin.channel_id, {"content": "result"})
    await raw.call(
        "POST", f"/channels/{standin.channel_id}/messages/{parent['id']}/threads", {"name": "t"}, auth=True
    )
    in_thread = await post(raw, int(parent["id"]), {"content": "vocals"})

    for channel_id, message in [(dm["id"], in_dm), (voice_chat, in_voice_chat), (parent["id"], in_thread)]:
        path = f"/channels/{channel_id}/messages/{message['id']}/threads"
        status, body = await raw.call("POST", path, {"name": "Stems"}, auth=True)
        assert (status, body["code"]) == (400, 50024), channel_id
        assert body["message"] == "Cannot execute action on this channel type"
        assert standin.thread_on(int(message["id"])) is None

    status, body = await raw.call(
        "POST", f"/channels/{standin.channel_id}/messages/123/threads", {"name": "Stems"}, auth=True
    )
    assert (status, body["code"]) == (404, 10008)
    assert_clean(standin)


async def test_channel_permissions_decide_threads_thread_posts_and_files(standin, raw):
    cid = standin.channel_id
    no_threads = DEFAULT_APP_PERMISSIONS & ~Perm.CREATE_PUBLIC_THREADS
    standin.channel_permissions[cid] = no_threads
    rec = await standin.invoke("split", {"task_id": "x"})
    assert (await raw.next_interaction())["app_permissions"] == str(no_threads)
    assert rec.payload["channel"]["id"] == str(cid)

    mid = (await post(raw, cid, {"content": "result"}))["id"]
    threads = f"/channels/{cid}/messages/{mid}/threads"
    status, body = await raw.call("POST", threads, {"name": "Stems"}, auth=True)
    assert (status, body["code"]) == (403, 50013)
    assert standin.thread_on(int(mid)) is None
    status, channel = await raw.call("GET", f"/channels/{cid}", auth=True)
    (overwrite,) = channel["permission_overwrites"]  # what discord.py's permissions_for(me) reads
    assert overwrite["id"] == str(standin.bot_user_id) and int(overwrite["allow"]) == no_threads

    standin.channel_permissions[cid] = DEFAULT_APP_PERMISSIONS
    status, _ = await raw.call("POST", threads, {"name": "Stems"}, auth=True)
    assert status == 201
    # The thread takes its parent's permissions unless it has its own.
    standin.channel_permissions[int(mid)] = DEFAULT_APP_PERMISSIONS & ~Perm.SEND_MESSAGES_IN_THREADS
    status, body = await raw.call("POST", f"/channels/{mid}/messages", {"content": "x"}, auth=True)
    assert (status, body["code"]) == (403, 50013)
    assert standin.messages_in(int(mid)) == []
    await standin.invoke("split", {"task_id": "x"}, channel_id=int(mid))
    payload = await raw.next_interaction()
    assert payload["channel"]["type"] == 11 and payload["channel_id"] == mid
    assert int(payload["app_permissions"]) & Perm.SEND_MESSAGES_IN_THREADS == 0

    standin.channel_permissions[int(mid)] = DEFAULT_APP_PERMISSIONS & ~Perm.ATTACH_FILES
    status, _ = await raw.call("POST", f"/channels/{mid}/messages", {"content": "text is fine"}, auth=True)
    assert status == 200
    status, body = await upload(raw, "POST", f"/channels/{mid}/messages", {}, [("vocals.wav", b"v")])
    assert (status, body["code"]) == (403, 50013)
    assert standin.attachments_in(int(mid)) == []
    status, body = await raw.call(
        "POST", f"/channels/{cid}/messages", {"content": "parent unaffected"}, auth=True
    )
    assert status == 200
    assert_clean(standin)


async def test_uploads_are_hashed_and_shown_as_discord_shows_attachments(standin, raw):
    cid = standin.channel_id
    stems = [("vocals.wav", b"RIFF" + bytes(range(256)) * 300), ("bass.mp3", b"ID3" + b"\x01" * 5000)]
    status, body = await upload(raw, "POST", f"/channels/{cid}/messages", {"content": "Stems 1/6"}, stems)
    assert status == 200, body
    assert [(a["filename"], a["size"], a["content_type"]) for a in body["attachments"]] == [
        ("vocals.wav", len(stems[0][1]), "audio/x-wav"),
        ("bass.mp3", len(stems[1][1]), "audio/mpeg"),
    ]
    for attachment in body["attachments"]:
        assert attachment["url"] == attachment["proxy_url"] and attachment["url"].endswith(
            attachment["filename"]
        )
        assert int(attachment["id"]) > 0
    kept = standin.attachments_in(cid)
    assert [(a.filename, a.size, a.sha256) for a in kept] == [
        (name, len(data), hashlib.sha256(data).hexdigest()) for name, data in stems
    ]
    assert {a.message_id for a in kept} == {int(body["id"])}
    assert standin.message(int(body["id"])).text() == "Stems 1/6\nvocals.wav\nbass.mp3"

    # A reply carries files too, and a DM takes uploads.
    status, reply = await upload(
        raw, "POST", f"/channels/{cid}/messages", {"message_reference": {"message_id": body["id"]}}, stems[:1]
    )
    assert status == 200 and reply["message_reference"]["message_id"] == body["id"]
    assert len(standin.attachments_in(cid)) == 3
    status, dm = await raw.call("POST", "/users/@me/channels", {"recipient_id": "99"}, auth=True)
    status, _ = await upload(raw, "POST", f"/channels/{dm['id']}/messages", {}, stems[1:])
    assert status == 200 and [a.filename for a in standin.attachments_in(int(dm["id"]))] == ["bass.mp3"]
    assert_clean(standin)


async def test_at_most_ten_files_per_message(standin, raw):
    path = f"/channels/{standin.channel_id}/messages"
    status, body = await upload(raw, "POST", path, {}, [(f"s{i}.wav", b"x") for i in range(11)])
    assert (status, body["code"]) == (400, 50035)
    assert body["errors"]["attachments"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    assert standin.messages_in(standin.channel_id) == []
    standin.rejected.clear()
    status, body = await upload(raw, "POST", path, {}, [(f"s{i}.wav", b"x") for i in range(10)])
    assert status == 200 and len(body["attachments"]) == 10


async def test_the_files_of_one_request_together_must_fit_the_upload_limit(standin, raw):
    standin.attachment_size_limit = 1000
    path = f"/channels/{standin.channel_id}/messages"
    status, body = await upload(raw, "POST", path, {}, [("a.wav", b"a" * 600), ("b.wav", b"b" * 600)])
    assert (status, body["code"]) == (413, 40005)  # each fits alone, not together
    assert standin.messages_in(standin.channel_id) == []
    assert [(r.status, r.code) for r in standin.rejected] == [(413, 40005)]
    standin.rejected.clear()
    status, _ = await upload(raw, "POST", path, {}, [("a.wav", b"a" * 500), ("b.wav", b"b" * 500)])
    assert status == 200

    # Discord may enforce less than it reports to interactions.
    standin.enforced_upload_limit = 800
    rec = await standin.invoke("split", {"task_id": "x"})
    assert (await raw.next_interaction())["attachment_size_limit"] == 1000
    assert rec.payload["attachment_size_limit"] == 1000
    status, body = await upload(raw, "POST", path, {}, [("a.wav", b"a" * 500), ("b.wav", b"b" * 400)])
    assert (status, body["code"]) == (413, 40005)
    assert len(standin.attachments_in(standin.channel_id)) == 2  # only the first pack
    standin.rejected.clear()


async def test_a_large_upload_streams_through_without_being_kept(standin, raw, tmp_path):
    standin.attachment_size_limit = 300 * 1024 * 1024
    big = tmp_path / "drums.wav"
    digest = hashlib.sha256()
    with big.open("wb") as out:
        for i in range(64):
            chunk = bytes([i]) * (1024 * 1024)
            digest.update(chunk)
            out.write(chunk)
    tracemalloc.start()
    try:
        with big.open("rb") as fp:
            status, body = await upload_file(raw, f"/channels/{standin.channel_id}/messages", fp, "drums.wav")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 200, body
    (kept,) = standin.attachments_in(standin.channel_id)
    assert (kept.size, kept.sha256) == (64 * 1024 * 1024, digest.hexdigest())
    assert peak < 16 * 1024 * 1024, f"peak {peak} bytes: the upload was held in memory"


async def upload_file(raw: RawBot, path: str, fp, filename: str):
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("payload_json", json.dumps({"attachments": [{"id": 0, "filename": filename}]}))
    form.add_field("files[0]", fp, filename=filename, content_type="application/octet-stream")
    headers = {"Authorization": f"Bot {raw.standin.token}"}
    async with raw.http.post(raw.standin.rest_base + path, data=form, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_history_is_newest_first_and_pages_like_discord(standin, raw):
    cid = standin.channel_id
    rec = await standin.invoke("split", {"task_id": "x"})
    await raw.call(
        "POST", f"/interactions/{rec.id}/{rec.token}/callback", {"type": 4, "data": {"content": "queued"}}
    )
    secret = await standin.invoke("split", {"task_id": "y"})
    await raw.call(
        "POST",
        f"/interactions/{secret.id}/{secret.token}/callback",
        {"type": 4, "data": {"content": "only you", "flags": 64}},
    )
    posted = [await post(raw, cid, {"content": f"m{i}"}) for i in range(5)]
    reply = await post(raw, cid, {"content": "reply", "message_reference": {"message_id": posted[0]["id"]}})
    ids = [rec.original.id] + [int(m["id"]) for m in posted] + [int(reply["id"])]  # oldest first
    messages = f"/channels/{cid}/messages"

    status, page = await raw.call("GET", messages, auth=True)
    assert status == 200 and [int(m["id"]) for m in page] == ids[::-1]  # ephemeral one absent
    assert page[0]["message_reference"]["message_id"] == posted[0]["id"]
    assert page[-1]["content"] == "queued" and page[-1]["author"]["id"] == str(standin.bot_user_id)
    status, page = await raw.call("GET", messages + "?limit=2", auth=True)
    assert [int(m["id"]) for m in page] == ids[:-3:-1]
    status, page = await raw.call("GET", messages + f"?limit=2&before={ids[3]}", auth=True)
    assert [int(m["id"]) for m in page] == [ids[2], ids[1]]
    status, page = await raw.call("GET", messages + f"?limit=2&after={ids[3]}", auth=True)
    assert [int(m["id"]) for m in page] == [ids[5], ids[4]]
    status, page = await raw.call("GET", messages + f"?limit=3&around={ids[3]}", auth=True)
    assert [int(m["id"]) for m in page] == [ids[4], ids[3], ids[2]]

    for bad in ("0", "101"):
        status, body = await raw.call("GET", messages + f"?limit={bad}", auth=True)
        assert (status, body["code"]) == (400, 50035)
    standin.rejected.clear()
    standin.channel_permissions[cid] = DEFAULT_APP_PERMISSIONS & ~Perm.READ_MESSAGE_HISTORY
    status, body = await raw.call("GET", messages, auth=True)
    assert (status, body["code"]) == (403, 50013)

    status, dm = await raw.call("POST", "/users/@me/channels", {"recipient_id": "99"}, auth=True)
    await post(raw, int(dm["id"]), {"content": "your stems"})
    status, page = await raw.call("GET", f"/channels/{dm['id']}/messages?limit=10", auth=True)
    assert status == 200 and [m["content"] for m in page] == ["your stems"]
    assert_clean(standin)


async def test_a_lost_answer_still_posts_the_message(standin, raw):
    cid = standin.channel_id
    standin.lose_response_next(1, f"POST /channels/{cid}/messages")
    status, body = await upload(
        raw, "POST", f"/channels/{cid}/messages", {"content": "Stems 1/2"}, [("v.wav", b"v")]
    )
    assert status == 500 and body["code"] == 0
    (msg,) = standin.messages_in(cid)
    assert msg.content == "Stems 1/2" and [a.filename for a in standin.attachments_in(cid)] == ["v.wav"]

    standin.lose_response_next(1, f"POST /channels/{cid}/messages", close=True)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await raw.call("POST", f"/channels/{cid}/messages", {"content": "Stems 2/2"}, auth=True)
    assert [m.content for m in standin.messages_in(cid)] == ["Stems 1/2", "Stems 2/2"]
    assert [r.status for r in standin.requests if r.method == "POST"][-2:] == [500, 0]

    status, _ = await raw.call("POST", f"/channels/{cid}/messages", {"content": "next"}, auth=True)
    assert status == 200  # the fault was used up
    assert_clean(standin)


async def test_enforce_nonce_returns_the_message_already_posted(standin, raw):
    cid = standin.channel_id
    first = await post(raw, cid, {"content": "Stems 1/2", "nonce": "job7-pack1", "enforce_nonce": True})
    again = await post(raw, cid, {"content": "Stems 1/2", "nonce": "job7-pack1", "enforce_nonce": True})
    assert again["id"] == first["id"] and again["nonce"] == "job7-pack1"
    unenforced = await post(raw, cid, {"content": "Stems 1/2", "nonce": "job7-pack1"})
    assert unenforced["id"] != first["id"]
    assert len(standin.messages_in(cid)) == 2
    status, body = await raw.call(
        "POST", f"/channels/{cid}/messages", {"content": "x", "nonce": "n" * 26}, auth=True
    )
    assert (status, body["code"]) == (400, 50035)
    standin.rejected.clear()


async def test_an_archived_thread_is_reopened_by_a_message_unless_locked(standin, raw):
    mid = (await post(raw, standin.channel_id, {"content": "result"}))["id"]
    await raw.call("POST", f"/channels/{standin.channel_id}/messages/{mid}/threads", {"name": "t"}, auth=True)
    standin.archive_thread(int(mid))
    status, fetched = await raw.call("GET", f"/channels/{mid}", auth=True)
    assert fetched["thread_metadata"]["archived"] is True
    await post(raw, int(mid), {"content": "late stem"})
    assert standin.thread_on(int(mid)).archived is False

    standin.archive_thread(int(mid), locked=True)
    status, body = await raw.call("POST", f"/channels/{mid}/messages", {"content": "x"}, auth=True)
    assert (status, body["code"]) == (400, 50083)
    assert [m.content for m in standin.messages_in(int(mid))] == ["late stem"]


# ------------------------------------------------------------------------------------------
# Keeping stems in Discord with a real discord.py bot defined here
# (spawned as tests.e2e.test_standin:keep_bot_main; it reports what discord.py saw)
# ------------------------------------------------------------------------------------------


def keep_bot_main() -> None:
    import os
    from pathlib import Path

    import aiohttp
    import discord
    from discord import app_commands

    guild = discord.Object(int(os.environ["STANDIN_GUILD_ID"]))
    stems = sorted(Path(os.environ["KEEP_DIR"]).iterdir())

    class KeepBot(discord.Client):
        def __init__(self) -> None:
            super().__init__(intents=discord.Intents.default())
            self.tree = app_commands.CommandTree(self)

        async def setup_hook(self) -> None:
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)

    bot = KeepBot()

    def files(paths: list[Path]) -> list[discord.File]:
        return [discord.File(path.open("rb"), filename=path.name) for path in paths]

    def names(message: discord.Message) -> str:
        return ",".join(a.filename for a in message.attachments)

    @bot.tree.command(name="keep", description="Keep stems in Discord")
    async def keep(interaction: discord.Interaction, step: str) -> None:
        await interaction.response.defer(thinking=True)
        result = await interaction.edit_original_response(content="Full split: 3 stems")
        report: list[str] = []
        if step == "deliver":
            me = interaction.guild.me
            cached = interaction.channel.permissions_for(me).create_public_threads
            report.append(
                f"may thread: app={interaction.app_permissions.create_public_threads} cache={cached}"
            )
            try:
                thread = await result.create_thread(name="Stems of Job #1", auto_archive_duration=10080)
            except discord.HTTPException as exc:
                report.append(f"no thread: {exc.status} {exc.code}")
                reply = await result.reply(files=files(stems), mention_author=False)
                report.append(f"replied: {reply.reference.message_id == result.id} {names(reply)}")
            else:
                report.append(
                    f"thread: {thread.id == result.id} {thread.parent_id} {thread.auto_archive_duration}"
                )
                await thread.send("Stems 1/2", files=files(stems[:2]))
                await thread.send("Stems 2/2", files=files(stems[2:]))
                seen = [names(m) async for m in thread.history(limit=10)]
                report.append(f"history: {';'.join(seen)}")
                fetched = await bot.fetch_channel(thread.id)
                report.append(f"fetched: {type(fetched).__name__} {fetched.parent_id}")
                try:
                    await result.create_thread(name="again")
                except discord.HTTPException as exc:
                    report.append(f"again: {exc.status} {exc.code}")
        elif step.startswith("find:"):
            thread = interaction.guild.get_thread(int(step[len("find:") :]))
            report.append(f"found: {thread is not None}")
            if thread is not None:
                report.append(f"history: {';'.join([names(m) async for m in thread.history(limit=10)])}")
        elif step == "dm":
            sent = await interaction.user.send("Your stems", files=files(stems))
            report.append(f"dm: {names(sent)}")
        elif step.startswith("send"):
            # A naive sender: when the outcome is unknown, send again (with the same nonce, if any).
            nonce = step.split(":", 1)[1] if ":" in step else None
            for _ in range(2):
                try:
                    sent = await interaction.channel.send("Stems 1/1", files=files(stems), nonce=nonce)
                except discord.HTTPException as exc:
                    report.append(f"refused: {exc.status} {exc.code}")
                    break
                except aiohttp.ClientError as exc:
                    report.append(f"lost: {type(exc).__name__}")
                else:
                    report.append(f"sent: {sent.id}")
                    break
        await interaction.followup.send("\n".join(report))

    bot.run(os.environ["DISCORD_TOKEN"], log_handler=None)


STEMS = {
    "bass.mp3": b"ID3" + b"\x02" * 3000,
    "drums.wav": b"RIFF" + b"\x01" * 4000,
    "vocals.wav": b"RIFF" + b"\x00" * 5000,
}
STEM_HASHES = sorted((name, hashlib.sha256(data).hexdigest()) for name, data in STEMS.items())


@pytest.fixture
async def keep_bot(standin, tmp_path):
    """Start keep_bot_main (again, for a restart) with the stems in tmp_path; yields the starter."""
    stems = tmp_path / "stems"
    stems.mkdir()
    for name, data in STEMS.items():
        (stems / name).write_bytes(data)
    bots: list[BotProcess] = []

    async def start() -> BotProcess:
        if bots:
            await bots[-1].stop()
        bot = await standin.spawn(
            "tests.e2e.test_standin:keep_bot_main",
            extra_env={"STANDIN_GUILD_ID": str(standin.guild_id), "KEEP_DIR": str(stems)},
        )
        bots.append(bot)
        try:
            await standin.wait_ready(timeout=20, sessions=len(bots))
        except TimeoutError as exc:
            raise AssertionError(f"bot not ready: {exc}\n{bot.output()}") from None
        return bot

    yield start
    for bot in bots:
        await bot.stop()
        print(bot.output())
        bot.cleanup()


async def keep(standin: DiscordStandIn, step: str, **kwargs) -> tuple[InteractionRecord, list[str]]:
    rec = await standin.invoke("keep", {"step": step}, **kwargs)
    report = await rec.wait_for_followup(timeout=15)
    return rec, report.content.splitlines()


async def test_discordpy_keeps_stems_in_a_thread_on_its_result_and_finds_them_after_a_restart(
    standin, keep_bot
):
    await keep_bot()
    rec, report = await keep(standin, "deliver")
    result = rec.original
    assert report == [
        "may thread: app=True cache=True",
        f"thread: True {standin.channel_id} 10080",
        "history: vocals.wav;bass.mp3,drums.wav",  # newest first
        f"fetched: Thread {standin.channel_id}",
        "again: 400 160004",
    ]
    thread = standin.thread_on(result.id)
    assert thread is not None and thread.name == "Stems of Job #1"
    kept = standin.attachments_in(thread.id)
    assert sorted((a.filename, a.sha256) for a in kept) == STEM_HASHES
    assert [m.content for m in standin.messages_in(thread.id)] == ["Stems 1/2", "Stems 2/2"]
    assert {a.content_type for a in kept} == {"audio/mpeg", "audio/x-wav"}

    await keep_bot()  # restarted: the thread comes back with GUILD_CREATE's active threads
    _, report = await keep(standin, f"find:{thread.id}")
    assert report == ["found: True", "history: vocals.wav;bass.mp3,drums.wav"]
    assert_clean(standin)


@pytest.mark.parametrize("why", ["threadless channel", "no Create Public Threads"])
async def test_discordpy_replies_with_the_stems_where_no_thread_can_be_made(standin, keep_bot, why):
    channel = standin.add_text_channel("results")
    if why == "threadless channel":
        standin.no_thread_channels.add(channel)
    await keep_bot()
    if why == "no Create Public Threads":
        # Told to the running bot (CHANNEL_UPDATE, before the interaction on the same gateway).
        standin.set_channel_permissions(channel, DEFAULT_APP_PERMISSIONS & ~Perm.CREATE_PUBLIC_THREADS)
    rec, report = await keep(standin, "deliver", channel_id=channel)
    expected_refusal = "no thread: 400 50024" if why == "threadless channel" else "no thread: 403 50013"
    allowed = why == "threadless channel"
    assert report == [
        f"may thread: app={allowed} cache={allowed}",
        expected_refusal,
        "replied: True bass.mp3,drums.wav,vocals.wav",
    ]
    assert standin.thread_on(rec.original.id) is None
    (reply,) = standin.channel_messages(channel)
    assert reply.reference_id == rec.original.id
    assert sorted((a.filename, a.sha256) for a in standin.attachments_in(channel)) == STEM_HASHES
    assert_clean(standin)


async def test_discordpy_sends_the_stems_by_dm(standin, keep_bot):
    await keep_bot()
    _, report = await keep(standin, "dm", user_id=77)
    assert report == ["dm: bass.mp3,drums.wav,vocals.wav"]
    dm = standin.dm_channel_id(77)
    assert sorted((a.filename, a.sha256) for a in standin.attachments_in(dm)) == STEM_HASHES
    assert_clean(standin)


async def test_discordpy_gets_413_when_discord_enforces_less_than_it_reports(standin, keep_bot):
    standin.enforced_upload_limit = sum(map(len, STEMS.values())) - 1
    await keep_bot()
    rec, report = await keep(standin, "send")
    assert rec.payload["attachment_size_limit"] == standin.attachment_size_limit  # what the bot believes
    assert report == ["refused: 413 40005"]
    assert standin.attachments_in(standin.channel_id) == []
    assert [r.status for r in standin.rejected] == [413]
    standin.rejected.clear()


@pytest.mark.parametrize(
    ("close", "nonce", "posts"),
    [
        (False, None, 1),  # discord.py retries the 500 with its own nonce: Discord dedupes it
        (True, None, 2),  # the bot's own second send has a new nonce: a second post
        (True, "job-1-pack-1", 1),  # the same nonce again: Discord returns the first post
    ],
)
async def test_discordpy_after_a_lost_answer_only_a_repeated_nonce_prevents_a_second_post(
    standin, keep_bot, close, nonce, posts
):
    await keep_bot()
    standin.lose_response_next(1, f"POST /channels/{standin.channel_id}/messages", close=close)
    _, report = await keep(standin, "send" if nonce is None else f"send:{nonce}")
    sent = [m for m in standin.messages_in(standin.channel_id) if m.content == "Stems 1/1"]
    assert len(sent) == posts
    lost = ["lost: ServerDisconnectedError"] if close else []
    assert report == [*lost, f"sent: {sent[-1].id}"]
    assert len(standin.attachments_in(standin.channel_id)) == 3 * posts
    statuses = [r.status for r in standin.requests if r.path == f"/channels/{standin.channel_id}/messages"]
    assert statuses == [0 if close else 500, 200]
    assert_clean(standin)


# ------------------------------------------------------------------------------------------
# Shards: one session per gateway connection, each guild's events on its shard's session
# ------------------------------------------------------------------------------------------


@pytest.fixture
async def sharded(standin):
    """Two raw sessions, shard 0 and shard 1 of 2, and a guild on each shard."""
    standin.shard_count = 2
    guilds = {shard: standin.add_guild(shard=shard, name=f"shard {shard}") for shard in (0, 1)}
    standin.set_commands([{"name": "split", "description": "Split"}])
    async with aiohttp.ClientSession() as http:
        bots = {shard: RawBot(standin, http) for shard in (0, 1)}
        readies = {shard: await bots[shard].connect(shard=[shard, 2]) for shard in (0, 1)}
        yield standin, guilds, bots, readies
        for bot in bots.values():
            await bot.ws.close()


async def test_gateway_bot_recommends_the_configured_shard_count(standin):
    standin.shard_count = 3
    async with aiohttp.ClientSession() as http:
        status, body = await RawBot(standin, http).call("GET", "/gateway/bot", auth=True)
    assert status == 200 and body["shards"] == 3


def test_a_guild_can_be_made_to_land_on_any_shard(standin):
    standin.shard_count = 5
    for shard in (4, 0, 3, 3, 1):
        guild_id = standin.add_guild(shard=shard)
        assert (guild_id >> 22) % 5 == shard == standin.shard_of(guild_id)
    with pytest.raises(ValueError):
        standin.add_guild(shard=5)


async def test_each_shard_is_told_only_of_its_own_guilds(sharded):
    standin, guilds, _, readies = sharded
    for shard in (0, 1):
        ready, *creates = readies[shard]
        expected = {g for g in (guilds[0], guilds[1], standin.guild_id) if (g >> 22) % 2 == shard}
        assert ready["d"]["shard"] == [shard, 2]
        assert {int(g["id"]) for g in ready["d"]["guilds"]} == expected
        assert {int(c["d"]["id"]) for c in creates} == expected
        assert standin.shard_ready(shard)
    assert standin.session_count == 2


async def test_a_guilds_interactions_go_to_its_shards_session_only(sharded):
    standin, guilds, bots, _ = sharded
    for shard in (1, 0):
        rec = await standin.invoke("split", guild_id=guilds[shard])
        assert (await bots[shard].next_interaction())["id"] == str(rec.id)
        assert await bots[1 - shard].hears_nothing()
    rec = await standin.invoke("split", dm=True)  # Discord sends DMs to shard 0
    assert (await bots[0].next_interaction())["id"] == str(rec.id)
    assert await bots[1].hears_nothing()


async def test_guild_channel_and_role_events_go_to_the_guilds_shard(sharded):
    standin, guilds, bots, _ = sharded
    standin.add_text_channel("news", guild_id=guilds[1])
    assert (await bots[1].recv())["t"] == "CHANNEL_CREATE"
    standin.add_role("DJ", guild_id=guilds[0])
    assert (await bots[0].recv())["t"] == "GUILD_ROLE_CREATE"
    new_guild = standin.add_guild(shard=1)
    frame = await bots[1].recv()
    assert (frame["t"], frame["d"]["id"]) == ("GUILD_CREATE", str(new_guild))
    channel_id = standin.add_text_channel("rules", guild_id=guilds[0])
    assert (await bots[0].recv())["t"] == "CHANNEL_CREATE"
    standin.set_channel_permissions(channel_id, Perm.VIEW_CHANNEL | Perm.SEND_MESSAGES)
    assert (await bots[0].recv())["t"] == "CHANNEL_UPDATE"
    assert await bots[0].hears_nothing() and await bots[1].hears_nothing()


async def test_a_new_session_for_a_shard_takes_over_its_guilds_only(sharded):
    standin, guilds, bots, _ = sharded
    async with aiohttp.ClientSession() as http:
        restarted = RawBot(standin, http)
        await restarted.connect(shard=[1, 2])
        rec = await standin.invoke("split", guild_id=guilds[1])
        assert (await restarted.next_interaction())["id"] == str(rec.id)
        rec = await standin.invoke("split", guild_id=guilds[0])
        assert (await bots[0].next_interaction())["id"] == str(rec.id)
        assert await bots[1].hears_nothing() and await restarted.hears_nothing()
        await restarted.ws.close()


@pytest.mark.parametrize("shard", [[2, 2], [-1, 2], [0, 0], [0], "0,1"])
async def test_an_invalid_shard_is_refused_with_4010(standin, shard):
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(standin.gateway_url + "?v=10&encoding=json")
        await ws.receive_str(timeout=5)  # HELLO
        await ws.send_json({"op": 2, "d": {"token": standin.token, "intents": 1, "shard": shard}})
        await ws.receive(timeout=5)
        assert ws.close_code == 4010
    assert standin.session_count == 0
