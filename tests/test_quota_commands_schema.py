"""The /quota command JSON exactly as a sync would send it."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from bot.discord_side.client import EXTENSIONS, StemBot

SUBCOMMAND, STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE = 1, 3, 4, 5, 6, 7, 8
GUILD_TEXT, GUILD_ANNOUNCEMENT = 0, 5
NAME = re.compile(r"^[-_a-z0-9]{1,32}$")


@pytest.fixture
async def commands() -> dict[str, dict]:
    bot = StemBot(lambda bot: SimpleNamespace())  # type: ignore[arg-type]
    for extension in EXTENSIONS:
        await bot.load_extension(extension)
    return {c.name: c.to_dict(bot.tree) for c in bot.tree.get_commands()}


@pytest.fixture
def quota(commands) -> dict[str, dict]:
    return {sub["name"]: sub for sub in commands["quota"]["options"]}


def options(subcommand: dict) -> list[tuple[str, int, bool]]:
    return [(o["name"], o["type"], bool(o.get("required"))) for o in subcommand.get("options", [])]


def test_the_bot_has_credits_quota_and_split(commands):
    assert sorted(commands) == ["credits", "quota", "split", "stembot", "stems"]


def test_quota_has_the_subcommands_the_issue_names(quota):
    assert sorted(quota) == sorted(
        [
            "view",
            "grant",
            "set",
            "reset",
            "allowance",
            "history",
            "block",
            "unblock",
            "settings",
            "report",
            "export",
        ]
    )
    assert all(sub["type"] == SUBCOMMAND for sub in quota.values())


def test_quota_is_guild_only(commands):
    assert commands["quota"]["contexts"] == [0]
    assert commands["quota"]["dm_permission"] is False


def test_quota_is_visible_to_members_because_view_and_history_are_for_everyone(commands):
    # Discord sets default_member_permissions per top-level command only; the service checks
    # moderator rights in code for every moderator subcommand (docs/moderators/index.md).
    assert commands["quota"]["default_member_permissions"] is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("view", [("member", USER, False)]),
        ("history", [("member", USER, False)]),
        ("grant", [("member", USER, True), ("amount", INTEGER, True), ("reason", STRING, False)]),
        ("set", [("member", USER, True), ("amount", INTEGER, True), ("reason", STRING, False)]),
        ("reset", [("member", USER, True), ("reason", STRING, False)]),
        ("block", [("member", USER, True), ("reason", STRING, False)]),
        ("unblock", [("member", USER, True)]),
        (
            "allowance",
            [
                ("amount", INTEGER, True),
                ("period", STRING, False),
                ("role", ROLE, False),
                ("apply_now", BOOLEAN, False),
            ],
        ),
        (
            "settings",
            [
                ("refill_time", STRING, False),
                ("timezone", STRING, False),
                ("jobs_per_member", INTEGER, False),
                ("cooldown_seconds", INTEGER, False),
                ("moderator_role", ROLE, False),
                ("audit_channel", CHANNEL, False),
                ("reuse_charge", STRING, False),
                ("keep_stems", STRING, False),
                ("mix_stems", STRING, False),
                ("mix_price", INTEGER, False),
                ("language", STRING, False),
                ("clear", STRING, False),
            ],
        ),
    ],
)
def test_subcommand_options(quota, name, expected):
    assert options(quota[name]) == expected


def test_amounts_are_bounded_to_a_million(quota):
    def bounds(sub: str) -> tuple[int, int]:
        amount = next(o for o in quota[sub]["options"] if o["name"] == "amount")
        return amount["min_value"], amount["max_value"]

    assert bounds("grant") == (-1_000_000, 1_000_000)
    assert bounds("set") == (0, 1_000_000)
    assert bounds("allowance") == (0, 1_000_000)


def test_period_choices_are_the_four_periods(quota):
    period = next(o for o in quota["allowance"]["options"] if o["name"] == "period")

    assert sorted(c["value"] for c in period["choices"]) == ["daily", "monthly", "never", "weekly"]


def test_keep_stems_offers_the_three_choices_in_members_words_button_first(quota):
    keep = next(o for o in quota["settings"]["options"] if o["name"] == "keep_stems")

    assert [(c["value"], c["name"]) for c in keep["choices"]] == [
        ("button", "Members choose: a Keep in Discord button on each result"),
        ("always", "Always: every successful split is kept in Discord"),
        ("off", "Off: no button"),
    ]
    assert "default" in keep["description"] and len(keep["description"]) <= 100


def test_timezone_is_autocompleted_and_the_audit_channel_is_one_that_takes_messages(quota):
    by_name = {o["name"]: o for o in quota["settings"]["options"]}

    assert by_name["timezone"]["autocomplete"] is True
    assert by_name["audit_channel"]["channel_types"] == [GUILD_TEXT, GUILD_ANNOUNCEMENT]


def test_names_descriptions_and_reasons_fit_discord(commands, quota):
    everything = [commands["quota"], *quota.values()]
    everything += [o for sub in quota.values() for o in sub.get("options", [])]

    assert all(NAME.match(item["name"]) for item in everything)
    assert all(1 <= len(item["description"]) <= 100 for item in everything)
    assert all(len(sub.get("options", [])) <= 25 for sub in quota.values())
    reasons = [o for sub in quota.values() for o in sub.get("options", []) if o["name"] == "reason"]
    assert reasons and all(o["max_length"] == 200 for o in reasons)


def test_required_options_come_first(quota):
    for sub in quota.values():
        required = [bool(o.get("required")) for o in sub.get("options", [])]
        assert required == sorted(required, reverse=True), sub["name"]


def test_language_offers_the_seven_languages_each_named_in_itself_and_the_servers_own(quota):
    language = next(o for o in quota["settings"]["options"] if o["name"] == "language")

    assert [(c["value"], c["name"]) for c in language["choices"]] == [
        ("en-US", "English"),
        ("es-ES", "Español (España)"),
        ("es-419", "Español (Latinoamérica)"),
        ("pt-BR", "Português (Brasil)"),
        ("fr", "Français"),
        ("de", "Deutsch"),
        ("ja", "日本語"),
        ("server", "The server's own language"),
    ]
    assert "default" in language["description"] and len(language["description"]) <= 100
