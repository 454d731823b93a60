"""The pause switch and the operator's record of API trouble, against the API simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.api import ApiError, SeparationClient
from bot.models import PauseReason
from bot.operations import Operations
from bot.product import Mode
from bot.settings import Settings
from bot.store import Store
from testing.provider_api import Fault, SeparationApiSimulator
from tests.wiring import AlerterDouble, make_services, make_settings


@pytest.fixture
async def sim() -> AsyncIterator[SeparationApiSimulator]:
    async with SeparationApiSimulator(callbacks=False) as simulator:
        yield simulator


def settings_for(sim: SeparationApiSimulator, check_interval: float = 3600) -> Settings:
    return make_settings(api_url=sim.base_url, api_timeout=1, account_check_interval=check_interval)


@pytest.fixture
async def ops(
    sim: SeparationApiSimulator, store: Store
) -> AsyncIterator[tuple[Operations, SeparationClient, AlerterDouble]]:
    alerter = AlerterDouble()
    async with aiohttp.ClientSession() as session:
        services = make_services(store, session, settings_for(sim), alerter=alerter)
        yield services.operations, services.api, alerter
        await services.operations.stop()


async def test_every_call_is_counted_and_errors_are_kept_for_the_operator(ops, sim) -> None:
    operations, client, _ = ops
    sim.script("credit", Fault("code", 455, msg="maintenance"))
    with pytest.raises(ApiError):
        await client.account_credits()
    await client.account_credits()
    [note] = operations.calls.recent_errors
    assert (note.endpoint, note.code, note.message) == ("credit", 455, "maintenance")
    text = operations.metrics.render().decode()
    assert 'stembot_api_calls_total{code="455",endpoint="credit"} 1.0' in text
    assert 'stembot_api_calls_total{code="200",endpoint="credit"} 1.0' in text


def test_pause_reason_for_account_errors() -> None:
    assert ApiError("x", code=401).pause_reason is PauseReason.KEY_REFUSED
    assert ApiError("x", code=429).pause_reason is PauseReason.OUT_OF_CREDITS
    assert ApiError("x", code=402).pause_reason is PauseReason.OUT_OF_CREDITS
    assert ApiError("x", code=430).pause_reason is None


async def test_pause_alerts_once_and_resumes_when_credits_return(ops, sim) -> None:
    operations, _, alerter = ops
    operations.pause(PauseReason.OUT_OF_CREDITS)
    operations.pause(PauseReason.OUT_OF_CREDITS)
    operations.pause(PauseReason.KEY_REFUSED)  # another reason while paused: still one alert
    await operations.wait_alerts()
    assert alerter.events == ["paused:out_of_credits"]
    assert operations.paused is PauseReason.KEY_REFUSED
    assert "stembot_submissions_paused 1.0" in operations.metrics.render().decode()

    # Enough for a 2-stem split but not a 12-stem one: resuming now would only pause again.
    sim.account_credits = Mode.SPLIT_STEM.api_price - 1
    assert await operations.check_account() == Mode.SPLIT_STEM.api_price - 1
    assert operations.paused is PauseReason.OUT_OF_CREDITS

    sim.account_credits = 5000
    assert await operations.check_account() == 5000
    await operations.wait_alerts()
    assert operations.paused is None
    assert alerter.events == ["paused:out_of_credits", "resumed"]
    assert "stembot_submissions_paused 0.0" in operations.metrics.render().decode()


class BrokenAlerter:
    async def splitting_paused(self, reason: PauseReason) -> None:
        raise ConnectionResetError("Discord went away")

    async def splitting_resumed(self) -> None:
        raise ConnectionResetError("Discord went away")


async def test_a_failing_alert_never_reaches_the_caller(sim, store) -> None:
    async with aiohttp.ClientSession() as session:
        operations = make_services(store, session, settings_for(sim), alerter=BrokenAlerter()).operations
        operations.pause(PauseReason.KEY_REFUSED)  # returns at once, whatever Discord does
        await operations.wait_alerts()
        assert operations.paused is PauseReason.KEY_REFUSED
        await operations.stop()


async def test_refused_key_stays_paused_until_the_api_accepts_it(ops, sim) -> None:
    operations, _, alerter = ops
    operations.pause(PauseReason.KEY_REFUSED)
    sim.script("credit", Fault("code", 401))
    assert await operations.check_account() is None
    assert operations.paused is PauseReason.KEY_REFUSED
    assert await operations.check_account() == sim.account_credits
    assert operations.paused is None
    await operations.wait_alerts()
    assert alerter.events[-1] == "resumed"


async def test_the_watch_resumes_by_itself(sim, store) -> None:
    alerter = AlerterDouble()
    async with aiohttp.ClientSession() as session:
        operations = make_services(store, session, settings_for(sim, 0.05), alerter=alerter).operations
        sim.account_credits = 0
        operations.pause(PauseReason.OUT_OF_CREDITS)
        sim.account_credits = 100
        async with asyncio.timeout(5):
            while operations.paused is not None:
                await asyncio.sleep(0.02)
        await operations.stop()
    assert alerter.events == ["paused:out_of_credits", "resumed"]
