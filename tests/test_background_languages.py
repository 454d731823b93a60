"""Alerts are sent without an interaction, in the language of whoever reads them: an alert in an
audit channel the server's language (the moderators' choice, else the server's Discord language as
last seen); the bot's budget alert by DM its owner's language; the log English. Each test records
the language the real renderer was called in."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bot import i18n
from bot.discord_side.alerts import DiscordAlerter
from bot.models import BudgetAlert, BudgetLevel, PauseReason, ServerBudget
from bot.render import operators
from bot.store import Store
from tests.test_bot_budget import OWNER, USED_UP, OwnerClient
from tests.test_budget import ChannelDouble

GERMAN, FRENCH = i18n.known_language("de"), i18n.known_language("fr")


@pytest.fixture
def rendered_in(monkeypatch) -> dict[str, list[i18n.Language]]:
    """The language each alert was rendered in, by renderer (the real renderers, watched)."""
    seen: dict[str, list[i18n.Language]] = {}
    for name in ("budget_alert", "bot_budget_alert", "splitting_paused_alert"):
        real = getattr(operators, name)

        def watched(*args: Any, _real: Any = real, _name: str = name) -> str:
            seen.setdefault(_name, []).append(i18n.current())
            return str(_real(*args))

        monkeypatch.setattr(operators, name, watched)
    return seen


async def test_alerts_in_audit_channels_speak_each_servers_language_and_the_log_english(
    tmp_path: Path, rendered_in, caplog
) -> None:
    store = await Store.open(tmp_path / "alerts.db")
    try:
        await store.economy.update_settings(1, {"audit_channel_id": 111, "language": "de"}, actor_id=5)
        await store.economy.update_settings(2, {"audit_channel_id": 222}, actor_id=5)
        await store.languages.record(guild_id=2, server="fr")  # server 2's Discord language, as seen
        sent: list[tuple[int, str]] = []
        client = SimpleNamespace(get_partial_messageable=lambda cid, guild_id: ChannelDouble(sent, cid))
        alerter = DiscordAlerter(client, store)  # type: ignore[arg-type]

        await alerter.splitting_paused(PauseReason.OUT_OF_CREDITS)
        await alerter.budget_alert(
            BudgetAlert(BudgetLevel.USED_UP, ServerBudget(1, "2025-03", 100, 100, False, 0.0))
        )
        await alerter.budget_alert(
            BudgetAlert(BudgetLevel.USED_UP, ServerBudget(3, "2025-03", 1, 1, False, 0.0))
        )

        assert [cid for cid, _text in sent] == [111, 222, 111]
        # Each channel its server's language; the log (server 3 has no channel) English.
        assert rendered_in["splitting_paused_alert"] == [GERMAN, FRENCH]
        assert rendered_in["budget_alert"] == [GERMAN, i18n.ENGLISH]
        assert any("has no audit channel" in record.getMessage() for record in caplog.records)
    finally:
        await store.close()


async def test_the_bots_budget_alert_speaks_its_owners_language(tmp_path: Path, rendered_in) -> None:
    store = await Store.open(tmp_path / "dm.db")
    try:
        await store.languages.record(user_id=OWNER, member="de")
        client = OwnerClient()

        await DiscordAlerter(client, store).bot_budget_alert(USED_UP)  # type: ignore[arg-type]

        [(user_id, _text)] = client.dms
        assert user_id == OWNER
        assert rendered_in["bot_budget_alert"] == [GERMAN]
    finally:
        await store.close()
