"""DiscordDeliverer against spec'd Discord doubles that fail the way discord.py fails.

The webhook, channel and DM doubles are autospecs of discord.py's own classes; every error is
one of discord.py's exception types, built as its HTTP layer builds them (the response's status
and reason, the JSON body's `code` and `message`). `FakeDiscord` records every call that would
reach Discord, in order, and which of them went through, so each test can check the route taken
(edit the /split response → channel message → DM), the outcome, and that nothing was shown twice.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any
from unittest.mock import DEFAULT, MagicMock, create_autospec

import aiohttp
import discord
import pytest

from bot.discord_side import delivery
from bot.discord_side.delivery import DiscordDeliverer
from bot.models import DeliveredMessage, DeliveryVia, Failure, Job, JobState, NewJob, Refund
from bot.render import results
from bot.runner import DeliveryOutcome, DeliveryResult
from bot.store import Store
from tests.unit_helpers import (
    APPLICATION_ID,
    CHANNEL_ID,
    GUILD_ID,
    TWELVE_STEMS,
    TWO_STEMS,
    USER_ID,
    embed_text,
    make_job,
    succeeded_job,
)

NOW = 1_760_000_000.0
TOKEN = "interaction-token"

DELIVERED_BY_EDIT = DeliveryOutcome(DeliveryResult.DELIVERED, DeliveryVia.INTERACTION)
DELIVERED_IN_CHANNEL = DeliveryOutcome(DeliveryResult.DELIVERED, DeliveryVia.CHANNEL)
DELIVERED_BY_DM = DeliveryOutcome(DeliveryResult.DELIVERED, DeliveryVia.DM)
RETRY = DeliveryOutcome(DeliveryResult.RETRY)
RESPONSE_ID = 777_000_000_000_000_001  # the /split response message
POSTED_ID = 888_000_000_000_000_000  # posted messages get ids from here on
DM_CHANNEL_ID = 999_000_000_000_000_001


# -- discord.py's errors, built the way discord.py builds them -----------------------------------


def http_error(status: int, body: dict[str, Any] | str) -> discord.HTTPException:
    """What discord.py raises for a non-2xx answer (discord/webhook/async_.py, discord/http.py)."""
    response = MagicMock(spec=aiohttp.ClientResponse)
    response.status = status
    response.reason = HTTPStatus(status).phrase
    if status == 403:
        return discord.Forbidden(response, body)
    if status == 404:
        return discord.NotFound(response, body)
    if status >= 500:
        return discord.DiscordServerError(response, body)
    return discord.HTTPException(response, body)


def invalid_webhook_token() -> discord.HTTPException:
    return http_error(401, {"code": 50027, "message": "Invalid Webhook Token"})


def unauthorized() -> discord.HTTPException:
    return http_error(401, {"code": 0, "message": "401: Unauthorized"})


def unknown_webhook() -> discord.HTTPException:
    return http_error(404, {"code": 10015, "message": "Unknown Webhook"})


def unknown_interaction() -> discord.HTTPException:
    return http_error(404, {"code": 10062, "message": "Unknown interaction"})


def missing_access() -> discord.HTTPException:
    return http_error(403, {"code": 50001, "message": "Missing Access"})


def missing_permissions() -> discord.HTTPException:
    return http_error(403, {"code": 50013, "message": "Missing Permissions"})


def unknown_channel() -> discord.HTTPException:
    return http_error(404, {"code": 10003, "message": "Unknown Channel"})


def cannot_dm() -> discord.HTTPException:
    return http_error(403, {"code": 50007, "message": "Cannot send messages to this user"})


def invalid_form_body() -> discord.HTTPException:
    return http_error(400, {"code": 50035, "message": "Invalid Form Body"})


def rate_limited() -> discord.HTTPException:
    return http_error(429, {"message": "You are being rate limited.", "retry_after": 3.5, "global": False})


def server_error() -> discord.HTTPException:
    return http_error(500, {"code": 0, "message": "500: Internal Server Error"})


def bad_gateway() -> discord.HTTPException:
    # Discord's edge answers 502/503 with an HTML page: discord.py passes the text on, code 0.
    return http_error(502, "<html><title>502 Bad Gateway</title></html>")


def connection_reset() -> aiohttp.ClientConnectionError:
    return aiohttp.ClientConnectionError("Connection reset by peer")


def server_disconnected() -> aiohttp.ClientConnectionError:
    return aiohttp.ServerDisconnectedError()


def timed_out() -> TimeoutError:
    return TimeoutError()  # asyncio.TimeoutError and aiohttp's timeouts are (subclasses of) this


Error = Callable[[], BaseException]

# Errors after which the same request may work later: the outcome is RETRY, no other route.
PASSING_TROUBLE = [
    pytest.param(rate_limited, id="429"),
    pytest.param(server_error, id="500"),
    pytest.param(bad_gateway, id="502"),
    pytest.param(connection_reset, id="connection-error"),
    pytest.param(server_disconnected, id="server-disconnected"),
    pytest.param(timed_out, id="timeout"),
]

# Errors meaning the member's /split response can no longer be edited.
RESPONSE_GONE = [
    pytest.param(invalid_webhook_token, id="401-invalid-webhook-token-50027"),
    pytest.param(unauthorized, id="401"),
    pytest.param(unknown_webhook, id="404-unknown-webhook-10015"),
    pytest.param(unknown_interaction, id="404-unknown-interaction-10062"),
    pytest.param(missing_access, id="403-missing-access-50001"),
    pytest.param(invalid_form_body, id="400-invalid-form-body-50035"),
]

# Errors meaning the bot cannot post in the job's channel.
CHANNEL_CLOSED = [
    pytest.param(missing_access, id="403-missing-access-50001"),
    pytest.param(missing_permissions, id="403-missing-permissions-50013"),
    pytest.param(unknown_channel, id="404-unknown-channel-10003"),
    pytest.param(invalid_form_body, id="400-invalid-form-body-50035"),
]


# -- Discord, as the deliverer sees it -----------------------------------------------------------


class FakeDiscord:
    """A spec'd client whose webhook, channel and DM doubles answer from per-route scripts.

    Routes: "edit" (the /split response), "follow-up" (more messages on the interaction
    webhook), "channel", "open-dm" (creating the DM channel) and "dm". Each call takes the next
    scripted outcome of its route (an error factory, or None for success; success once the
    script runs out). `calls` lists every call in order; `shown` the messages that went through.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        self.shown: list[tuple[str, dict[str, Any]]] = []
        self.webhooks_built: list[tuple[int, str]] = []
        self._scripts: dict[str, list[Error | None]] = {}

        self.webhook = create_autospec(discord.Webhook, instance=True)
        self.webhook.edit_message.side_effect = self._route("edit")
        self.webhook.send.side_effect = self._route("follow-up")
        self.channel = create_autospec(discord.PartialMessageable, instance=True)
        self.channel.send.side_effect = self._route("channel")
        # The channel's messages, by id: posting returns one; editing the /split response is "point".
        self.pointed: list[tuple[int, dict[str, Any]]] = []
        self.channel.get_partial_message.side_effect = self._channel_message
        self.dm = create_autospec(discord.DMChannel, instance=True)
        self.dm.id = DM_CHANNEL_ID
        self.dm.send.side_effect = self._route("dm")
        self.client = create_autospec(discord.Client, instance=True)
        self.client.get_partial_messageable.return_value = self.channel
        self.client.create_dm.return_value = self.dm
        self.client.create_dm.side_effect = self._route("open-dm", shows_message=False)
        monkeypatch.setattr(discord.Webhook, "partial", self._partial)

    def _channel_message(self, message_id: int) -> MagicMock:
        message = create_autospec(discord.PartialMessage, instance=True)
        message.id = message_id
        message.jump_url = f"https://discord.com/channels/{GUILD_ID}/{CHANNEL_ID}/{message_id}"
        point = self._route("point", shows_message=False)

        async def edit(**kwargs: Any) -> None:
            point(**kwargs)
            self.pointed.append((message_id, kwargs))

        message.edit.side_effect = edit
        return message

    def script(self, route: str, *outcomes: Error | None) -> None:
        self._scripts[route] = list(outcomes)

    def shown_routes(self) -> list[str]:
        return [route for route, _ in self.shown]

    def _partial(self, application_id: int, token: str, **kwargs: Any) -> MagicMock:
        assert kwargs.get("client") is self.client
        self.webhooks_built.append((application_id, token))
        return self.webhook

    def _route(self, route: str, *, shows_message: bool = True) -> Callable[..., Any]:
        def answer(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(route)
            script = self._scripts.get(route)
            outcome = script.pop(0) if script else None
            if outcome is not None:
                raise outcome()
            if shows_message:
                self.shown.append((route, kwargs))
                return SimpleNamespace(id=POSTED_ID + len(self.shown))
            return DEFAULT

        return answer


@pytest.fixture
def fake(monkeypatch) -> FakeDiscord:
    return FakeDiscord(monkeypatch)


class MemoryParts:
    """The delivered parts in memory (the store keeps them in `delivered_messages`)."""

    def __init__(self) -> None:
        self.parts: dict[tuple[int, DeliveryVia], list[DeliveredMessage]] = {}

    async def shown(self, job_id: int, via: DeliveryVia) -> list[DeliveredMessage]:
        return list(self.parts.get((job_id, via), []))

    async def record(
        self, job_id: int, via: DeliveryVia, part: int, *, channel_id: int | None, message_id: int
    ) -> None:
        shown = self.parts.setdefault((job_id, via), [])
        if part == len(shown):
            shown.append(DeliveredMessage(job_id, via, part, channel_id, message_id))


@pytest.fixture
def parts() -> MemoryParts:
    return MemoryParts()


@pytest.fixture
def deliverer(fake, parts) -> DiscordDeliverer:
    return DiscordDeliverer(fake.client, parts, clock=lambda: NOW)


def live_token_job(**overrides: Any) -> Job:
    """A two-stem result (one message) whose /split response can still be edited."""
    return succeeded_job(TWO_STEMS, 120, **{"interaction_expires_at": NOW + 600, **overrides})


def expired_token_job(**overrides: Any) -> Job:
    return live_token_job(**{"interaction_expires_at": NOW - 1, **overrides})


def long_result_job(parts: int, **overrides: Any) -> Job:
    """Twelve stems with long signed URLs: too much for one message, so `parts` of them."""
    url_length = {2: 900, 3: 1000}[parts]
    job = succeeded_job(TWELVE_STEMS, url_length, **{"interaction_expires_at": NOW + 600, **overrides})
    assert len(results.outcome(job)) == parts
    return job


def part(kwargs: dict[str, Any]) -> str:
    """Which part of a long result a sent message is ("part 2 of 3"), from its first embed's title."""
    title = kwargs["embeds"][0].title
    return title[title.rindex("(part ") + 1 : -1]


# -- the /split response -------------------------------------------------------------------------


async def test_a_live_token_delivers_by_editing_the_split_response(fake, deliverer):
    job = live_token_job()

    assert await deliverer.deliver(job) == DELIVERED_BY_EDIT
    assert fake.calls == ["edit"]
    assert fake.webhooks_built == [(APPLICATION_ID, TOKEN)]
    assert fake.webhook.edit_message.await_args.args == ("@original",)
    [expected] = results.outcome(job)
    assert fake.webhook.edit_message.await_args.kwargs["embeds"] == expected.embeds


async def test_an_edited_response_does_not_mention_the_member(fake, deliverer):
    await deliverer.deliver(live_token_job())

    assert f"<@{USER_ID}>" not in (fake.webhook.edit_message.await_args.kwargs["content"] or "")


async def test_a_result_too_long_for_one_message_continues_in_follow_ups_in_order(fake, deliverer):
    job = long_result_job(2)

    assert await deliverer.deliver(job) == DELIVERED_BY_EDIT
    assert fake.calls == ["edit", "follow-up"]
    first, second = results.outcome(job)
    assert fake.webhook.edit_message.await_args.kwargs["embeds"] == first.embeds
    assert fake.webhook.send.await_args.kwargs["embeds"] == second.embeds
    assert fake.webhook.send.await_args.kwargs["wait"] is True


async def test_a_failed_job_is_told_by_editing_the_split_response(fake, deliverer):
    job = make_job(state=JobState.FAILED, failure=Failure.SEPARATION_FAILED, interaction_expires_at=NOW + 600)

    assert await deliverer.deliver(job) == DELIVERED_BY_EDIT
    [expected] = results.outcome(job)
    assert fake.webhook.edit_message.await_args.kwargs["embeds"] == expected.embeds


async def test_a_token_past_its_safe_lifetime_is_not_used_the_channel_is(fake, deliverer):
    assert await deliverer.deliver(expired_token_job()) == DELIVERED_IN_CHANNEL
    assert fake.webhooks_built == []
    assert fake.calls == ["channel"]


async def test_the_token_is_not_used_in_its_last_safety_minute(fake):
    created = NOW - delivery.INTERACTION_TOKEN_LIFETIME + delivery.TOKEN_SAFETY_MARGIN
    job = live_token_job(interaction_expires_at=delivery.token_usable_until(created))

    assert (
        await DiscordDeliverer(fake.client, MemoryParts(), clock=lambda: NOW).deliver(job)
        == DELIVERED_IN_CHANNEL
    )
    assert fake.webhooks_built == []


async def test_a_job_without_an_interaction_token_is_posted_in_the_channel(fake, deliverer):
    job = live_token_job(interaction_token=None)

    assert await deliverer.deliver(job) == DELIVERED_IN_CHANNEL
    assert fake.webhooks_built == []
    assert fake.calls == ["channel"]


@pytest.mark.parametrize("error", RESPONSE_GONE)
async def test_a_response_discord_will_not_edit_falls_back_to_the_channel(fake, deliverer, error):
    fake.script("edit", error)

    assert await deliverer.deliver(live_token_job()) == DELIVERED_IN_CHANNEL
    assert fake.calls == ["edit", "channel"]
    assert fake.shown_routes() == ["channel"]


@pytest.mark.parametrize("error", PASSING_TROUBLE)
async def test_passing_trouble_editing_the_response_is_retried_without_trying_the_channel(
    fake, deliverer, error
):
    fake.script("edit", error)

    assert await deliverer.deliver(live_token_job()) == RETRY
    assert fake.calls == ["edit"]
    assert fake.shown == []


@pytest.mark.parametrize("error", RESPONSE_GONE)
async def test_a_follow_up_discord_refuses_sends_the_whole_result_to_the_channel(fake, deliverer, error):
    job = long_result_job(2)
    fake.script("follow-up", error)

    assert await deliverer.deliver(job) == DELIVERED_IN_CHANNEL
    assert fake.calls == ["edit", "follow-up", "channel", "channel"]
    first, second = results.outcome(job, mention=True)
    assert [kwargs["embeds"] for route, kwargs in fake.shown if route == "channel"] == [
        first.embeds,
        second.embeds,
    ]


# -- a message in the channel --------------------------------------------------------------------


async def test_a_channel_message_mentions_the_member_and_only_them(fake, deliverer):
    job = expired_token_job()

    await deliverer.deliver(job)

    fake.client.get_partial_messageable.assert_called_once_with(CHANNEL_ID, guild_id=GUILD_ID)
    kwargs = fake.channel.send.await_args.kwargs
    assert kwargs["content"].startswith(f"<@{USER_ID}>")
    allowed = kwargs["allowed_mentions"].to_dict()
    assert allowed["parse"] == []
    assert allowed["users"] == [USER_ID]


@pytest.mark.parametrize("error", CHANNEL_CLOSED)
async def test_a_channel_the_bot_cannot_post_in_falls_back_to_a_dm(fake, deliverer, error):
    fake.script("channel", error)

    assert await deliverer.deliver(expired_token_job()) == DELIVERED_BY_DM
    assert fake.calls == ["channel", "open-dm", "dm"]
    fake.client.create_dm.assert_awaited_once()
    assert fake.client.create_dm.await_args.args[0].id == USER_ID


@pytest.mark.parametrize("error", PASSING_TROUBLE)
async def test_passing_trouble_in_the_channel_is_retried_without_trying_a_dm(fake, deliverer, error):
    fake.script("channel", error)

    assert await deliverer.deliver(expired_token_job()) == RETRY
    assert fake.calls == ["channel"]
    assert fake.shown == []


async def test_a_result_too_long_for_one_message_is_posted_as_consecutive_channel_messages(fake, deliverer):
    job = long_result_job(2, interaction_expires_at=NOW - 1)

    assert await deliverer.deliver(job) == DELIVERED_IN_CHANNEL
    first, second = results.outcome(job, mention=True)
    assert [kwargs["embeds"] for _, kwargs in fake.shown] == [first.embeds, second.embeds]
    assert [kwargs["content"] for _, kwargs in fake.shown] == [f"<@{USER_ID}> {results.LATE_NOTE}", None]


# -- a late result: a reply to the /split response, which then points to it -------------------


async def test_a_late_result_replies_to_the_split_response_and_says_why(fake, deliverer):
    job = expired_token_job(response_message_id=RESPONSE_ID)

    assert await deliverer.deliver(job) == DELIVERED_IN_CHANNEL

    [(_, kwargs)] = fake.shown
    reference = kwargs["reference"]
    assert (reference.message_id, reference.channel_id) == (RESPONSE_ID, CHANNEL_ID)
    assert reference.fail_if_not_exists is False  # a deleted response: posted all the same
    assert kwargs["content"] == f"<@{USER_ID}> {results.LATE_NOTE}"
    assert "15 minutes" in results.LATE_NOTE


async def test_the_split_response_is_pointed_to_the_reply_once_it_went_out(fake, deliverer):
    job = expired_token_job(response_message_id=RESPONSE_ID)

    await deliverer.deliver(job)

    assert fake.calls == ["channel", "point"]
    [(edited, kwargs)] = fake.pointed
    assert edited == RESPONSE_ID
    text = embed_text(kwargs["embed"])
    assert f"/{CHANNEL_ID}/{POSTED_ID + 1})" in kwargs["embed"].description
    assert "reply" in text and f"Job #{job.id}" in text


async def test_only_the_first_part_of_a_long_late_result_is_a_reply_and_it_is_what_the_pointer_shows(
    fake, deliverer
):
    job = long_result_job(3, interaction_expires_at=NOW - 1, response_message_id=RESPONSE_ID)
    fake.script("channel", None, bad_gateway)

    assert await deliverer.deliver(job) == RETRY
    assert fake.pointed == []  # not before the whole result is out
    assert await deliverer.deliver(job) == DELIVERED_IN_CHANNEL

    assert [part(kwargs) for _, kwargs in fake.shown] == ["part 1 of 3", "part 2 of 3", "part 3 of 3"]
    assert ["reference" in kwargs for _, kwargs in fake.shown] == [True, False, False]
    [(_, kwargs)] = fake.pointed
    assert f"/{POSTED_ID + 1})" in kwargs["embed"].description


@pytest.mark.parametrize("error", [invalid_form_body, missing_permissions])
async def test_a_reply_discord_refuses_is_posted_as_a_plain_message(fake, deliverer, error):
    job = expired_token_job(response_message_id=RESPONSE_ID)
    fake.script("channel", error)

    assert await deliverer.deliver(job) == DELIVERED_IN_CHANNEL

    assert fake.calls == ["channel", "channel", "point"]
    [(_, kwargs)] = fake.shown
    assert "reference" not in kwargs and results.LATE_NOTE in kwargs["content"]


@pytest.mark.parametrize("error", [missing_access, server_error, connection_reset])
async def test_a_pointer_discord_refuses_changes_nothing_about_the_delivery(fake, deliverer, error):
    job = expired_token_job(response_message_id=RESPONSE_ID)
    fake.script("point", error)

    assert await deliverer.deliver(job) == DELIVERED_IN_CHANNEL
    assert fake.calls == ["channel", "point"]


async def test_no_pointer_when_the_response_itself_carries_the_result_or_a_dm_does(fake, deliverer):
    assert await deliverer.deliver(live_token_job(response_message_id=RESPONSE_ID)) == DELIVERED_BY_EDIT
    fake.script("channel", missing_permissions, missing_permissions)
    assert await deliverer.deliver(expired_token_job(response_message_id=RESPONSE_ID)) == DELIVERED_BY_DM

    assert "point" not in fake.calls and fake.pointed == []
    assert ["reference" in kwargs for _, kwargs in fake.shown] == [False, False]


async def test_a_job_from_before_response_ids_were_kept_is_posted_without_a_reply(fake, deliverer):
    assert await deliverer.deliver(expired_token_job()) == DELIVERED_IN_CHANNEL

    assert "reference" not in fake.shown[0][1] and fake.calls == ["channel"]


# -- a DM ----------------------------------------------------------------------------------------


async def test_a_dm_does_not_mention_the_member(fake, deliverer):
    fake.script("channel", missing_permissions)

    await deliverer.deliver(expired_token_job())

    assert fake.dm.send.await_args.kwargs["content"] is None


async def test_closed_dms_are_retried_later_as_the_last_resort(fake, deliverer):
    fake.script("channel", missing_access)
    fake.script("dm", cannot_dm)

    assert await deliverer.deliver(expired_token_job()) == RETRY
    assert fake.calls == ["channel", "open-dm", "dm"]
    assert fake.shown == []


@pytest.mark.parametrize("error", [*PASSING_TROUBLE, pytest.param(missing_access, id="403")])
async def test_a_dm_channel_that_cannot_be_opened_is_retried(fake, deliverer, error):
    fake.script("channel", missing_permissions)
    fake.script("open-dm", error)

    assert await deliverer.deliver(expired_token_job()) == RETRY
    assert fake.calls == ["channel", "open-dm"]


@pytest.mark.parametrize("error", [*PASSING_TROUBLE, pytest.param(invalid_form_body, id="400")])
async def test_a_dm_that_fails_is_retried(fake, deliverer, error):
    fake.script("channel", missing_permissions)
    fake.script("dm", error)

    assert await deliverer.deliver(expired_token_job()) == RETRY
    assert fake.calls == ["channel", "open-dm", "dm"]


# -- the whole chain -----------------------------------------------------------------------------


async def test_each_route_is_tried_once_in_order_edit_channel_dm(fake, deliverer):
    fake.script("edit", invalid_webhook_token)
    fake.script("channel", missing_permissions)

    assert await deliverer.deliver(live_token_job()) == DELIVERED_BY_DM
    assert fake.calls == ["edit", "channel", "open-dm", "dm"]
    assert fake.shown_routes() == ["dm"]


async def test_when_every_route_is_closed_the_outcome_is_retry_after_one_try_of_each(fake, deliverer):
    fake.script("edit", unknown_webhook)
    fake.script("channel", missing_access)
    fake.script("dm", cannot_dm)

    assert await deliverer.deliver(live_token_job()) == RETRY
    assert fake.calls == ["edit", "channel", "open-dm", "dm"]
    assert fake.shown == []


async def test_a_delivered_result_is_not_sent_again_along_another_route(fake, deliverer):
    assert await deliverer.deliver(expired_token_job()) == DELIVERED_IN_CHANNEL
    fake.client.create_dm.assert_not_awaited()
    fake.dm.send.assert_not_awaited()


# -- retries after a partial delivery ------------------------------------------------------------


async def test_a_retry_after_a_failed_follow_up_sends_only_the_parts_not_yet_shown(fake, deliverer):
    job = long_result_job(3)
    fake.script("follow-up", None, server_error)

    assert await deliverer.deliver(job) == RETRY
    assert await deliverer.deliver(job) == DELIVERED_BY_EDIT
    assert [(route, part(kwargs)) for route, kwargs in fake.shown] == [
        ("edit", "part 1 of 3"),
        ("follow-up", "part 2 of 3"),
        ("follow-up", "part 3 of 3"),
    ]


async def test_a_retry_after_a_failed_channel_message_posts_only_the_parts_not_yet_shown(fake, deliverer):
    job = long_result_job(3, interaction_expires_at=NOW - 1)
    fake.script("channel", None, None, bad_gateway)

    assert await deliverer.deliver(job) == RETRY
    assert await deliverer.deliver(job) == DELIVERED_IN_CHANNEL
    assert [part(kwargs) for _, kwargs in fake.shown] == ["part 1 of 3", "part 2 of 3", "part 3 of 3"]


async def test_the_mention_of_a_resumed_channel_post_stays_on_its_first_message(fake, deliverer):
    job = long_result_job(3, interaction_expires_at=NOW - 1)
    fake.script("channel", None, connection_reset)

    await deliverer.deliver(job)
    await deliverer.deliver(job)

    assert [kwargs["content"] for _, kwargs in fake.shown] == [
        f"<@{USER_ID}> {results.LATE_NOTE}",
        None,
        None,
    ]


async def test_a_retry_after_a_failed_dm_sends_only_the_parts_not_yet_shown(fake, deliverer):
    job = long_result_job(3, interaction_expires_at=NOW - 1)
    fake.script("channel", missing_permissions, missing_permissions)
    fake.script("dm", None, timed_out)

    assert await deliverer.deliver(job) == RETRY
    assert await deliverer.deliver(job) == DELIVERED_BY_DM
    assert [(route, part(kwargs)) for route, kwargs in fake.shown] == [
        ("dm", "part 1 of 3"),
        ("dm", "part 2 of 3"),
        ("dm", "part 3 of 3"),
    ]


async def test_a_completed_delivery_forgets_its_progress(fake, deliverer):
    job = long_result_job(2, interaction_expires_at=NOW - 1)
    fake.script("channel", None, server_error)
    await deliverer.deliver(job)
    await deliverer.deliver(job)

    assert await deliverer.deliver(job) == DELIVERED_IN_CHANNEL
    assert [part(kwargs) for _, kwargs in fake.shown][-2:] == ["part 1 of 2", "part 2 of 2"]


# -- progress on the /split response -------------------------------------------------------------


async def test_progress_is_shown_by_editing_the_split_response(fake, deliverer):
    job = live_token_job(state=JobState.SUBMITTED)

    await deliverer.show_progress(job)

    assert fake.calls == ["edit"]
    assert fake.webhook.edit_message.await_args.kwargs["embed"] == results.processing(job)


async def test_progress_is_not_shown_once_the_token_is_past_its_safe_lifetime(fake, deliverer):
    await deliverer.show_progress(expired_token_job(state=JobState.SUBMITTED))

    assert fake.calls == []


@pytest.mark.parametrize("state", [JobState.SUCCEEDED, JobState.FAILED, JobState.RESERVED])
async def test_progress_never_replaces_a_message_that_is_not_waiting_for_the_api(fake, deliverer, state):
    await deliverer.show_progress(live_token_job(state=state))

    assert fake.calls == []


@pytest.mark.parametrize(
    "error", [*PASSING_TROUBLE, *RESPONSE_GONE, pytest.param(missing_permissions, id="403")]
)
async def test_a_failed_progress_update_is_skipped_quietly(fake, deliverer, error):
    fake.script("edit", error)

    await deliverer.show_progress(live_token_job(state=JobState.SUBMITTED))

    assert fake.calls == ["edit"]


# -- parts kept in the database; channels without Embed Links --------------------------------------


async def test_a_restart_resumes_a_half_delivered_result_from_the_database(fake, tmp_path):
    store = await Store.open(tmp_path / "parts.db")
    try:
        template = long_result_job(3, interaction_expires_at=NOW - 1)
        new = NewJob(
            template.guild_id, template.channel_id, template.user_id, template.mode, "t", "a", 10, "cb"
        )
        reserved = (await store.reservations.reserve(new)).job
        job = await store.reservations.settle(
            reserved.id, succeeded=True, stems=template.stems, links_expire_at=template.links_expire_at
        )
        fake.script("channel", None, None, bad_gateway)

        assert await DiscordDeliverer(fake.client, store.deliveries, clock=lambda: NOW).deliver(job) == RETRY
        after_restart = DiscordDeliverer(fake.client, store.deliveries, clock=lambda: NOW)  # a new process
        assert await after_restart.deliver(job) == DELIVERED_IN_CHANNEL

        assert [part(kwargs) for _, kwargs in fake.shown] == ["part 1 of 3", "part 2 of 3", "part 3 of 3"]
        recorded = await store.deliveries.shown(job.id, DeliveryVia.CHANNEL)
        assert [m.part for m in recorded] == [0, 1, 2] and len({m.message_id for m in recorded}) == 3
    finally:
        await store.close()


async def test_without_embed_links_the_result_is_posted_as_plain_text(fake, deliverer):
    no_embeds = discord.Permissions(view_channel=True, send_messages=True).value
    job = expired_token_job(app_permissions=no_embeds)

    assert await deliverer.deliver(job) == DELIVERED_IN_CHANNEL

    [(route, kwargs)] = fake.shown
    assert route == "channel" and kwargs["embeds"] == []
    assert "Links expire" in kwargs["content"] and f"<@{USER_ID}>" in kwargs["content"]
    # The stems stay with it, once each: as link buttons (they need no Embed Links).
    buttons = [item for item in kwargs["view"].children if getattr(item, "url", None)]
    assert {button.label for button in buttons} == {"Vocals", "Instrumental"}
    assert len(kwargs["content"]) <= 2000


async def test_with_embed_links_the_result_keeps_its_embeds(fake, deliverer):
    job = expired_token_job(app_permissions=discord.Permissions(embed_links=True, send_messages=True).value)

    assert await deliverer.deliver(job) == DELIVERED_IN_CHANNEL
    [(_, kwargs)] = fake.shown
    assert kwargs["embeds"] and "[Vocals](" not in (kwargs["content"] or "")


async def test_a_cancelled_split_is_marked_through_the_live_token(fake, deliverer):
    job = live_token_job(state=JobState.CANCELLED)

    await deliverer.show_cancelled(job)

    kwargs = fake.webhook.edit_message.await_args.kwargs
    assert kwargs["view"] is None and f"Job #{job.id} cancelled" in kwargs["embed"].title


async def test_a_cancelled_split_says_what_came_back_when_allowance_expired_meanwhile(fake, deliverer):
    job = live_token_job(state=JobState.CANCELLED)

    await deliverer.show_cancelled(job, Refund(0, 5, expired=job.cost - 5))

    text = fake.webhook.edit_message.await_args.kwargs["embed"].description
    assert "5 credits back" in text and "were your previous allowance" in text and "are back" not in text


async def test_a_cancelled_split_is_marked_as_the_bots_own_message_once_the_token_is_gone(fake, deliverer):
    job = expired_token_job(state=JobState.CANCELLED, response_message_id=RESPONSE_ID)

    await deliverer.show_cancelled(job)

    [(message_id, kwargs)] = fake.pointed
    assert message_id == RESPONSE_ID and kwargs["view"] is None
    assert fake.webhooks_built == []
