"""Servers only, end to end: the bot serves servers that added it. A member's own install of the
app (a user install) reaches the bot in servers that never added it; those interactions are
refused before anything starts, while the servers that added the bot, and the DMs its results
are delivered to, work as before."""

from __future__ import annotations

from testing.discord_standin import DEFAULT_CHANNEL_ID, DEFAULT_USER_ID
from tests.e2e.conftest import Stack, button

READY = "download now, they cannot be renewed"  # leads every result message
REFUSED = "this server hasn't"
TIMEOUT = 20.0
MEMBER = DEFAULT_USER_ID


def other_server(stack: Stack) -> int:
    """A server that never added the bot (the member installed the app for themselves)."""
    return stack.standin.add_guild(name="Never added StemBot", bot_added=False)


async def test_every_synced_command_is_for_server_installs_in_servers(stack: Stack) -> None:
    await stack.start_bot()

    # As the bot sent them: Discord fills in defaults for what a sync leaves out.
    [sync] = stack.standin.sync_calls
    commands = sync.commands
    assert commands
    assert {c["name"]: (c.get("integration_types"), c.get("contexts")) for c in commands} == {
        c["name"]: ([0], [0]) for c in commands
    }


async def test_a_split_from_a_members_own_install_in_a_server_without_the_bot_starts_nothing(
    stack: Stack,
) -> None:
    await stack.start_bot()
    guild = other_server(stack)
    calls = len(stack.api.calls)

    record = await stack.split(guild_id=guild, user_install=True)

    answer = await record.wait_for_response()
    assert answer.ephemeral and REFUSED in answer.text() and "Nothing was started or charged" in answer.text()
    assert record.visible_text(include_ephemeral=False) == ""  # nobody else sees a thing
    assert [ack.type for ack in record.acks] == [4]  # answered at once: no "thinking…", no work
    assert stack.api.submits == [] and len(stack.api.calls) == calls  # no API call
    assert stack.jobs() == []
    with stack.db() as conn:
        assert conn.execute("SELECT COUNT(*) FROM accounts WHERE guild_id = ?", (guild,)).fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM ledger WHERE guild_id = ?", (guild,)).fetchone()[0] == 0
    assert not [r for r in stack.standin.requests if r.method == "POST" and r.path.startswith("/channels/")]


async def test_a_split_in_a_server_that_added_the_bot_still_works(stack: Stack) -> None:
    await stack.start_bot()
    other_server(stack)

    record = await stack.split()

    result = await record.wait_for_edit(lambda m: READY in m.text(), timeout=TIMEOUT)
    assert not result.ephemeral and REFUSED not in record.visible_text()
    assert len(stack.api.submits) == 1


async def test_the_members_own_install_in_a_server_that_added_the_bot_is_served(stack: Stack) -> None:
    # Discord names both installs then; the server's is what counts.
    await stack.start_bot()

    record = await stack.split(user_install=True)

    await record.wait_for_edit(lambda m: READY in m.text(), timeout=TIMEOUT)
    assert len(stack.api.submits) == 1


async def test_other_commands_in_a_server_without_the_bot_are_refused_too(stack: Stack) -> None:
    await stack.start_bot()
    guild = other_server(stack)

    record = await stack.standin.invoke("credits", guild_id=guild, user_install=True)

    answer = await record.wait_for_response()
    assert answer.ephemeral and REFUSED in answer.text()
    with stack.db() as conn:
        assert conn.execute("SELECT COUNT(*) FROM accounts WHERE guild_id = ?", (guild,)).fetchone()[0] == 0


async def test_autocomplete_in_a_server_without_the_bot_suggests_nothing(stack: Stack) -> None:
    await stack.start_bot()
    first = await stack.split(task_id="gen-known", audio_id="audio-known")
    await first.wait_for_edit(lambda m: READY in m.text(), timeout=TIMEOUT)
    guild = other_server(stack)

    here = await stack.standin.autocomplete("split", {"task_id": ""}, "task_id")
    there = await stack.standin.autocomplete(
        "split", {"task_id": ""}, "task_id", guild_id=guild, user_install=True
    )

    assert (await here.wait_for_ack()).type == 8 and (await there.wait_for_ack()).type == 8
    # Suggestions are per server: here the member's own id; there, where nothing may run, none.
    assert [c["value"] for c in here.choices] == ["gen-known"]
    assert there.choices == []


async def test_buttons_on_a_result_delivered_by_dm_keep_working(stack: Stack) -> None:
    # A DM is no server that did not add the bot: its interactions carry no server at all.
    stack.serve_stem_files(24 * 1024)
    stack.api.processing_seconds = 1.0
    stack.standin.channel_forbidden.add(DEFAULT_CHANNEL_ID)
    await stack.start_bot()
    record = await stack.split()
    await record.wait_for_edit(lambda m: "working on your track" in m.text(), timeout=TIMEOUT)
    record.expire_token()
    result = await stack.standin.wait_for_dm(MEMBER, lambda m: READY in m.text(), timeout=TIMEOUT)
    await stack.eventually(lambda: [j for j in stack.jobs() if j["delivered_via"] == "dm"])

    click = await stack.standin.click(result, button(result, "Keep in Discord")["custom_id"])

    answer = await click.wait_for_response(timeout=TIMEOUT)
    assert click.payload["authorizing_integration_owners"] == {"0": "0"} and "guild_id" not in click.payload
    assert answer.ephemeral and REFUSED not in answer.text() and "your DMs" in answer.text()
