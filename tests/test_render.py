"""The renderer: what members read, always within Discord's message, embed and component limits."""

from __future__ import annotations

import re
from dataclasses import replace

import discord
import pytest

from bot.credits import CreditSummary
from bot.models import Failure, JobState, Keep, KeepPlace, KeepState, Period, StemLink
from bot.product import Mode
from bot.render import common, quota, results
from bot.render import keep as keep_words
from bot.render import text as untrusted
from tests.unit_helpers import (
    FINISHED_AT,
    HOSTILE,
    LINKS_EXPIRE_AT,
    STEM_WORDS,
    TWELVE_STEMS,
    TWO_STEMS,
    USER_ID,
    embed_text,
    make_job,
    markdown_dangers,
    stem_url,
    succeeded_job,
)

# -- an independent check of Discord's limits (shared/discord-notes.md) -----------------------

CONTENT_MAX = 2000
EMBEDS_MAX = 10
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_NAME_MAX = 256
EMBEDS_TOTAL_MAX = 6000
ROWS_MAX = 5
BUTTONS_PER_ROW_MAX = 5
BUTTONS_MAX = 25
LINK_URL_MAX = 512
LABEL_MAX = 80
CUSTOM_ID_MAX = 100
LINK_STYLE = 5
ACTION_ROW, BUTTON, SELECT = 1, 2, 3
SELECT_OPTIONS_MAX = 25
SELECT_TEXT_MAX = 100  # an option's label, value and description
PLACEHOLDER_MAX = 150


def discord_limit_violations(message: common.Message) -> list[str]:
    """Everything about `message` that Discord would answer with 400, measured on the wire form."""
    problems: list[str] = []
    if message.content is not None and len(message.content) > CONTENT_MAX:
        problems.append(f"content is {len(message.content)} chars")
    if not message.content and not message.embeds:
        problems.append("message is empty")
    if len(message.embeds) > EMBEDS_MAX:
        problems.append(f"{len(message.embeds)} embeds")
    total = 0
    for n, embed in enumerate(message.embeds):
        data = embed.to_dict()
        title = data.get("title", "")
        description = data.get("description", "")
        footer = data.get("footer", {}).get("text", "")
        author = data.get("author", {}).get("name", "")
        fields = data.get("fields", [])
        if not (title or description or fields):
            problems.append(f"embed {n} is empty")
        for label, text, limit in (
            ("title", title, TITLE_MAX),
            ("description", description, DESCRIPTION_MAX),
            ("footer", footer, FOOTER_MAX),
            ("author", author, AUTHOR_NAME_MAX),
        ):
            if len(text) > limit:
                problems.append(f"embed {n} {label} is {len(text)} chars")
        if len(fields) > FIELDS_MAX:
            problems.append(f"embed {n} has {len(fields)} fields")
        for item in fields:
            if not 1 <= len(item["name"]) <= FIELD_NAME_MAX:
                problems.append(f"embed {n} field name is {len(item['name'])} chars")
            if not 1 <= len(item["value"]) <= FIELD_VALUE_MAX:
                problems.append(f"embed {n} field value is {len(item['value'])} chars")
        total += len(title) + len(description) + len(footer) + len(author)
        total += sum(len(item["name"]) + len(item["value"]) for item in fields)
    if total > EMBEDS_TOTAL_MAX:
        problems.append(f"embeds total {total} chars")

    rows = message.view.to_components() if message.view is not None else []
    if len(rows) > ROWS_MAX:
        problems.append(f"{len(rows)} action rows")
    buttons = 0
    for row in rows:
        if row["type"] != ACTION_ROW:
            problems.append(f"top-level component of type {row['type']}")
            continue
        if len(row["components"]) > BUTTONS_PER_ROW_MAX:
            problems.append(f"a row of {len(row['components'])} components")
        for item in row["components"]:
            buttons += item["type"] == BUTTON
            if len(item.get("label") or "") > LABEL_MAX:
                problems.append(f"button label of {len(item['label'])} chars")
            if len(item.get("custom_id") or "") > CUSTOM_ID_MAX:
                problems.append("custom_id too long")
            if item.get("style") == LINK_STYLE:
                if "custom_id" in item:
                    problems.append("link button with a custom_id")
                if not 1 <= len(item.get("url") or "") <= LINK_URL_MAX:
                    problems.append(f"link button url of {len(item.get('url') or '')} chars")
            if item["type"] == SELECT:
                problems += _select_violations(item)
    if buttons > BUTTONS_MAX:
        problems.append(f"{buttons} buttons")
    return problems


def _select_violations(select: dict) -> list[str]:
    problems = []
    if len(select.get("placeholder") or "") > PLACEHOLDER_MAX:
        problems.append(f"select placeholder of {len(select['placeholder'])} chars")
    options = select.get("options") or []
    if not 1 <= len(options) <= SELECT_OPTIONS_MAX:
        problems.append(f"select with {len(options)} options")
    for option in options:
        for field in ("label", "value", "description"):
            text = option.get(field)
            if text is not None and not 1 <= len(text) <= SELECT_TEXT_MAX:
                problems.append(f"select option {field} of {len(text)} chars: {text[:40]!r}")
    return problems


def message_text(message: common.Message) -> str:
    return "\n".join([message.content or "", *(embed_text(e) for e in message.embeds)])


def all_text(messages: list[common.Message]) -> str:
    return "\n\n".join(message_text(m) for m in messages)


def link_buttons(messages: list[common.Message]) -> list[dict]:
    found = []
    for message in messages:
        for row in message.view.to_components() if message.view is not None else []:
            found += [c for c in row["components"] if c.get("style") == LINK_STYLE]
    return found


def shown(messages: list[common.Message]) -> str:
    """A result as a member sees it: its text and the labels and links of its link buttons."""
    buttons = [f"{b['label']}: {b['url']}" for b in link_buttons(messages)]
    return "\n".join([all_text(messages), *buttons])


STEM_CASES = [
    pytest.param(TWELVE_STEMS, 400, id="12-stems-400-char-urls"),
    pytest.param(TWELVE_STEMS, 500, id="12-stems-500-char-urls"),
    pytest.param(TWELVE_STEMS, 900, id="12-stems-900-char-urls"),
    pytest.param(TWELVE_STEMS, 2000, id="12-stems-2000-char-urls"),
    pytest.param(TWELVE_STEMS, 3500, id="12-stems-3500-char-urls"),
    pytest.param(TWO_STEMS, 120, id="2-stems-short-urls"),
    pytest.param(tuple(STEM_WORDS), 700, id="13-stems-700-char-urls"),
]


def test_the_limit_check_itself_catches_an_oversized_message():
    too_big = discord.Embed(title="t" * 257, description="d" * 4097)
    too_big.add_field(name="n", value="v" * 1025)
    view = discord.ui.View()
    view.add_item(discord.ui.Button(label="l" * 81, url="https://x.test/" + "a" * 600))
    problems = discord_limit_violations(common.Message(content="c" * 2001, embeds=[too_big], view=view))
    assert len(problems) == 6, problems


# -- stems ready -------------------------------------------------------------------------------


@pytest.mark.parametrize(("keys", "url_length"), STEM_CASES)
@pytest.mark.parametrize("mention", [False, True], ids=["reply", "mention"])
def test_stem_messages_fit_every_discord_limit(keys, url_length, mention):
    messages = results.stems_ready(succeeded_job(keys, url_length), mention=mention)

    assert messages
    for message in messages:
        assert discord_limit_violations(message) == []


@pytest.mark.parametrize(("keys", "url_length"), STEM_CASES)
@pytest.mark.parametrize("keep_button", [False, True], ids=["", "keep"])
def test_every_stem_is_shown_exactly_once_as_a_button_or_a_text_link(keys, url_length, keep_button):
    job = succeeded_job(keys, url_length)

    messages = results.stems_ready(job, keep_button=keep_button)
    text, buttons = all_text(messages), [b["url"] for b in link_buttons(messages)]

    for stem in job.stems:
        assert text.count(stem.url) + buttons.count(stem.url) == 1, stem.key


def test_a_twelve_stem_result_is_short_on_a_phone():
    """Every stem once: twelve link buttons and a few lines, not 42 (issue 19)."""
    messages = results.stems_ready(succeeded_job(TWELVE_STEMS, 120), keep_button=True)

    assert len(messages) == 1 and len(link_buttons(messages)) == 12
    assert len(all_text(messages).strip().splitlines()) <= 4


@pytest.mark.parametrize(("keys", "url_length"), STEM_CASES)
def test_every_stem_is_named_in_words(keys, url_length):
    text = shown(results.stems_ready(succeeded_job(keys, url_length)))

    for key in keys:
        assert re.search(rf"(?<![\w ]){re.escape(STEM_WORDS[key])}(?![\w ])", text), STEM_WORDS[key]
    assert not any(key in text.replace(f"/stems/{key}.mp3", "") for key in keys if "_" in key)


def test_each_url_is_introduced_by_its_own_stem_name():
    job = succeeded_job(TWELVE_STEMS, 900)  # too long for buttons: text links

    text = all_text(results.stems_ready(job))

    for stem in job.stems:
        line = next(line for line in text.splitlines() if stem.url in line)
        assert STEM_WORDS[stem.key] in line.split(stem.url)[0]


def test_an_unknown_stem_key_is_shown_in_readable_words():
    job = make_job(stems=(StemLink("lead_guitar", stem_url("lead_guitar", 200)),))

    text = shown(results.stems_ready(job))

    assert "Lead guitar" in text
    assert text.count(job.stems[0].url) == 1


@pytest.mark.parametrize(("keys", "url_length"), STEM_CASES)
def test_links_expiry_is_shown_relative_and_absolute(keys, url_length):
    text = all_text(results.stems_ready(succeeded_job(keys, url_length)))

    unix = int(LINKS_EXPIRE_AT)
    assert f"<t:{unix}:R>" in text
    assert f"<t:{unix}:f>" in text


@pytest.mark.parametrize(("keys", "url_length"), STEM_CASES)
def test_every_message_of_a_result_leads_with_the_expiry_and_download_now(keys, url_length):
    unix = int(LINKS_EXPIRE_AT)
    for message in results.stems_ready(succeeded_job(keys, url_length)):
        first_line = message.embeds[0].description.splitlines()[0]
        assert first_line == (
            f"**Links expire <t:{unix}:R> (<t:{unix}:f>): download now, they cannot be renewed.**"
        )


def test_expiry_falls_back_to_14_days_after_finishing_when_unknown():
    job = succeeded_job(TWO_STEMS, 120, links_expire_at=None)

    text = all_text(results.stems_ready(job))

    assert f"<t:{int(job.finished_at + 14 * 24 * 3600)}:R>" in text


@pytest.mark.parametrize(
    ("keys", "url_length"),
    [
        pytest.param(TWELVE_STEMS, 400, id="12-stems-400"),
        pytest.param(TWELVE_STEMS, 500, id="12-stems-500"),
        pytest.param(TWELVE_STEMS, 512, id="12-stems-512"),
        pytest.param(TWO_STEMS, 120, id="2-stems-short"),
    ],
)
def test_link_buttons_carry_every_url_when_all_fit(keys, url_length):
    job = succeeded_job(keys, url_length)

    buttons = link_buttons(results.stems_ready(job))

    assert sorted(b["url"] for b in buttons) == sorted(s.url for s in job.stems)
    assert {b["url"]: b["label"] for b in buttons} == {s.url: STEM_WORDS[s.key] for s in job.stems}


@pytest.mark.parametrize(
    ("keys", "url_length"),
    [
        pytest.param(TWELVE_STEMS, 513, id="12-stems-513"),
        pytest.param(TWELVE_STEMS, 900, id="12-stems-900"),
        pytest.param(TWO_STEMS, 2000, id="2-stems-2000"),
    ],
)
def test_no_link_buttons_when_a_url_is_too_long_for_one(keys, url_length):
    assert link_buttons(results.stems_ready(succeeded_job(keys, url_length))) == []


def test_one_over_long_url_removes_all_link_buttons():
    job = succeeded_job(TWELVE_STEMS, 300)
    stems = (*job.stems[:-1], StemLink(job.stems[-1].key, stem_url(job.stems[-1].key, 513)))
    messages = results.stems_ready(make_job(stems=stems))

    assert link_buttons(messages) == []
    assert all(all_text(messages).count(s.url) == 1 for s in stems)


def test_mention_puts_the_member_mention_in_the_first_message():
    messages = results.stems_ready(succeeded_job(TWELVE_STEMS, 900), mention=True)

    assert f"<@{USER_ID}>" in (messages[0].content or "")


def test_no_mention_without_being_asked():
    messages = results.stems_ready(succeeded_job(TWELVE_STEMS, 900))

    assert all(f"<@{USER_ID}>" not in message_text(m) for m in messages)


def test_outcome_of_a_succeeded_job_is_the_stem_messages():
    job = succeeded_job(TWO_STEMS, 120)

    messages = results.outcome(job, mention=True)

    assert all(shown(messages).count(s.url) == 1 for s in job.stems)
    assert f"<@{USER_ID}>" in (messages[0].content or "")


# -- failures ----------------------------------------------------------------------------------


def failed_job(failure: Failure | None, mode: Mode = Mode.SPLIT_STEM, **overrides):
    return make_job(mode=mode, state=JobState.FAILED, failure=failure, **overrides)


@pytest.mark.parametrize("failure", list(Failure))
@pytest.mark.parametrize("mode", list(Mode))
def test_failure_message_says_the_member_was_not_charged_and_the_cost(failure, mode):
    messages = results.outcome(failed_job(failure, mode))

    text = all_text(messages).lower()
    assert "not charged" in text
    assert re.search(rf"\b{mode.cost} credits\b", text)


@pytest.mark.parametrize("failure", [*Failure, None])
def test_failure_messages_fit_every_discord_limit(failure):
    job = failed_job(failure, failure_detail="x" * 5000, source_task_id="t" * 100, audio_id="a" * 100)

    for message in results.outcome(job, mention=True):
        assert discord_limit_violations(message) == []


def test_failure_messages_differ_by_reason():
    descriptions = {
        failure: results.failed(failed_job(failure)).embeds[0].to_dict()["description"] for failure in Failure
    }

    assert len(set(descriptions.values())) == len(Failure)


def test_separation_failure_quotes_what_the_service_said():
    job = failed_job(Failure.SEPARATION_FAILED, failure_detail="audio is silent")

    assert "audio is silent" in all_text(results.outcome(job))


@pytest.mark.parametrize("failure", list(Failure))
def test_mention_puts_the_member_mention_in_a_failure_message(failure):
    messages = results.outcome(failed_job(failure), mention=True)

    assert f"<@{USER_ID}>" in (messages[0].content or "")


# -- where kept stems are ------------------------------------------------------------------------

SERVER, THREAD, DM_CHANNEL = 2**63 - 1, 2**63 - 2, 2**63 - 3


def kept(place: KeepPlace | None, channel_id: int | None) -> Keep:
    return Keep(
        job_id=7, guild_id=SERVER, state=KeepState.KEPT, requested_by=USER_ID, upload_limit=10 * 2**20,
        place=place, channel_id=channel_id, anchor_message_id=2**62,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("place", "channel_id", "url"),
    [
        (KeepPlace.THREAD, THREAD, f"https://discord.com/channels/{SERVER}/{THREAD}"),
        (KeepPlace.REPLIES, THREAD - 9, f"https://discord.com/channels/{SERVER}/{THREAD - 9}/{2**62}"),
        (KeepPlace.DM, DM_CHANNEL, f"https://discord.com/channels/@me/{DM_CHANNEL}"),
    ],
    ids=["thread", "replies-in-the-channel", "dm"],
)
def test_kept_stems_link_to_their_thread_or_channel_and_a_dm_through_me(place, channel_id, url):
    assert results.kept_url(kept(place, channel_id)) == url


def test_a_keep_that_has_no_place_yet_has_no_link():
    with pytest.raises(ValueError, match="job 7"):
        results.kept_url(kept(None, None))


# -- /credits ----------------------------------------------------------------------------------


def credit_summary(*, balance: int, jobs_in_flight: int, jobs_per_member: int) -> CreditSummary:
    """A member with `balance` credits, all of them what is left of a one-off allowance."""
    return CreditSummary(
        allowance_left=balance,
        bonus=0,
        allowance=balance,
        next_allowance=balance,
        period=Period.NEVER,
        next_refill_at=None,
        period_started_at=FINISHED_AT,
        spent_this_period=0,
        jobs_in_flight=jobs_in_flight,
        jobs_per_member=jobs_per_member,
    )


def test_credits_embed_shows_the_balance():
    text = embed_text(quota.credits(credit_summary(balance=73, jobs_in_flight=1, jobs_per_member=2)))

    assert re.search(r"\b73\b", text)


def test_credits_embed_shows_each_modes_cost():
    text = embed_text(quota.credits(credit_summary(balance=73, jobs_in_flight=1, jobs_per_member=2)))

    for mode in Mode:
        line = next(line for line in text.splitlines() if mode.label in line)
        assert re.search(rf"\b{mode.cost}\b", line), line


def test_credits_embed_shows_jobs_in_flight_against_the_limit():
    text = embed_text(quota.credits(credit_summary(balance=73, jobs_in_flight=1, jobs_per_member=3)))

    assert re.search(r"\b1 of 3\b", text)


def test_credits_embed_fits_every_discord_limit():
    embed = quota.credits(credit_summary(balance=1_000_000, jobs_in_flight=100, jobs_per_member=100))

    assert discord_limit_violations(common.Message(embeds=[embed])) == []


def test_a_keep_asked_again_after_a_failure_says_why_the_last_try_stopped():
    keep = replace(kept(KeepPlace.THREAD, THREAD), state=KeepState.PENDING)
    job = make_job(stems=(StemLink("vocal", "https://x/v.mp3"),))
    answer = keep_words.keep_answer(keep, job, started=True, last_failure="a permission is missing")
    plain = keep_words.keep_answer(keep, job, started=True)

    assert answer.description is not None and answer.description.startswith(
        "The last try stopped: a permission is missing. Trying again now."
    )
    assert plain.description is not None and "last try" not in plain.description


# -- untrusted text is shown as written, never as Markdown, a link or a mention ------------------


def unescaped(text: str) -> str:
    """What Discord shows for escaped text: each backslash escape as its character."""
    return re.sub(r"\\(.)", r"\1", text).replace("\u200b", "")


def test_plain_text_keeps_every_word_and_makes_nothing_of_them():
    shown = untrusted.plain(HOSTILE)

    assert markdown_dangers(shown) == []
    assert unescaped(shown) == HOSTILE  # the reader sees exactly what was typed


@pytest.mark.parametrize("start", ["# ", "## ", "-# ", "- ", "> ", ">>> "])
def test_plain_text_never_opens_a_headline_quote_or_list(start):
    shown = untrusted.plain(f"{start}Free credits")

    assert shown.startswith("\\") and unescaped(shown) == f"{start}Free credits"


def test_plain_text_is_one_line():
    # A line break would let "# b" open a headline; on one line it is just words.
    assert untrusted.plain("a\n# b\r\n\tc") == "a # b c"


def test_plain_text_within_a_limit_counts_the_escapes():
    shown = untrusted.plain("*" * 300, limit=200)

    assert len(shown) <= 200 and shown.endswith("…") and not shown.endswith("\\…")
    assert untrusted.plain("short", limit=200) == "short"


def test_a_code_span_holds_untrusted_text_whole():
    shown = f"Task id {untrusted.code(HOSTILE)}"

    assert shown.count("`") == 2 and markdown_dangers(shown) == []


def hostile_job(**overrides):
    return make_job(source_task_id=HOSTILE, audio_id=HOSTILE, **overrides)


def every_text(messages: list[common.Message]) -> str:
    """Every piece of the messages that Discord reads as Markdown: the content, and each embed's
    title, description and fields. (Footers are shown as written; `as_plain_text` turns them into
    content, which is checked then.)"""
    parts = []
    for message in messages:
        parts.append(message.content or "")
        for embed in message.embeds:
            parts += [embed.title or "", embed.description or ""]
            parts += [f"{field.name}\n{field.value}" for field in embed.fields]
    return "\n".join(parts)


def test_hostile_ids_in_the_public_queued_and_processing_messages_stay_words():
    # Ids stored before they were checked at the door, or from any other way in.
    for embed in (results.queued(hostile_job()), results.processing(hostile_job())):
        assert markdown_dangers(embed_text(embed)) == []


def test_hostile_ids_in_a_result_stay_words_with_and_without_embed_links():
    job = succeeded_job(TWO_STEMS, 200, source_task_id=HOSTILE, audio_id=HOSTILE)
    messages = results.outcome(job, mention=True)

    assert markdown_dangers(every_text(messages)) == []
    assert markdown_dangers(every_text(common.as_plain_text(messages))) == []


def test_a_failed_result_shows_the_services_words_as_words():
    job = hostile_job(state=JobState.FAILED, failure=Failure.SEPARATION_FAILED, failure_detail=HOSTILE)
    message = results.failed(job, mention=True)

    assert markdown_dangers(every_text([message])) == []
    assert markdown_dangers(every_text(common.as_plain_text([message]))) == []
    assert "Verify" in every_text([message])  # shown, as words


def test_without_embed_links_footers_and_titles_become_words_too():
    # Embed footers and titles are never Markdown; once they are message text, they would be.
    embed = discord.Embed(title=HOSTILE, description="ok")
    embed.set_footer(text=f"first line\n{HOSTILE}")

    [message] = common.as_plain_text([common.Message(embeds=[embed])])

    assert markdown_dangers(message.content or "") == []
    assert "-# first line\n-# x" in (message.content or "")


def test_a_blocked_members_reason_is_shown_as_words():
    from bot.errors import MemberBlocked

    refusal = results.refused(MemberBlocked(HOSTILE, 5))

    assert markdown_dangers(embed_text(refusal)) == [] and "Verify" in embed_text(refusal)


def test_hostile_ids_in_the_library_stay_words():
    from bot.models import LibraryPage
    from bot.render import library

    line = library.library_line(hostile_job(), FINISHED_AT)
    page = LibraryPage(jobs=(hostile_job(),), page=0, pages=1, total=1, newest_id=42, keeps={})

    assert markdown_dangers(line) == []
    assert markdown_dangers(embed_text(library.library(page, USER_ID, own=True, now=FINISHED_AT))) == []
    for shown in library.shown(hostile_job(), FINISHED_AT):
        assert markdown_dangers(every_text([shown])) == []


def test_why_a_keep_stopped_is_shown_as_words():
    keep = Keep(job_id=42, guild_id=1, state=KeepState.WORKING, requested_by=USER_ID, upload_limit=10)
    answer = keep_words.keep_answer(keep, hostile_job(), started=True, last_failure=HOSTILE)

    assert markdown_dangers(embed_text(answer)) == []


def test_a_server_name_in_the_owners_budget_list_is_shown_as_words():
    from bot.models import BudgetOverview, ServerBudget
    from bot.render import operators

    budget = ServerBudget(guild_id=7, month="2025-03", spent=10, budget=100, own=False, renews_at=FINISHED_AT)
    overview = BudgetOverview(month="2025-03", renews_at=FINISHED_AT, default_budget=100, servers=(budget,))

    name = "@everyone <@&123456789012345678> [Verify](https://evil.example)"
    text = embed_text(operators.budget_overview(overview, {7: name}))
    one = embed_text(operators.server_budget(budget, {7: name}, 100))

    assert markdown_dangers(text) == [] and markdown_dangers(one) == []


def test_the_apis_words_in_the_owners_status_are_shown_as_words():
    from bot.models import ApiErrorNote, CallbackServerState, StatusReport
    from bot.render import operators

    report = StatusReport(
        version="1",
        account_credits=None,
        jobs_by_state={},
        recent_errors=(ApiErrorNote(FINISHED_AT, "submit", 500, HOSTILE),),
        paused=None,
        paused_since=None,
        callbacks=CallbackServerState(None, None, 0, None),
        poll_interval=60.0,
    )

    text = embed_text(operators.status(report))

    assert "Verify" in text and markdown_dangers(text) == []


def test_the_untrusted_text_helper_keeps_the_services_free_of_discord():
    # The errors the services raise show reasons as words too; that must not load discord.py
    # below the cogs.
    import subprocess
    import sys

    probe = "import sys, bot.render.text, bot.errors, bot.jobs, bot.quota; print('discord' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    assert loaded.stdout.strip() == "False"
