"""The split flow in the member's and the server's languages: what English tests cannot show.

Test catalogs (a few entries, built with Babel as the real ones are) are installed for French,
German and Japanese; every other message falls back to English, as an untranslated entry does.
Public messages (the queued message, a result shown in the server, the words that end a public
"thinking…") speak the server's language; private ones and DMs the member's.
"""

from __future__ import annotations

import gettext
from collections.abc import Iterator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import discord
import pytest
from babel.messages.catalog import Catalog

from bot import i18n
from bot.discord_side.delivery import DiscordDeliverer
from bot.i18n import Language
from bot.models import (
    AcknowledgedSplit,
    DeliveredMessage,
    DeliveryVia,
    Failure,
    JobState,
    Song,
    TaskTracks,
    Track,
)
from bot.product import Mode, stem_name
from bot.render import common, results
from bot.render import songs as song_words
from tests.test_cogs import World, make_world  # noqa: F401 (a fixture)
from tests.test_delivery import (
    NOW,
    FakeDiscord,
    MemoryParts,
    expired_token_job,
    live_token_job,
    missing_access,
)
from tests.unit_helpers import (
    APPLICATION_ID,
    CHANNEL_ID,
    GUILD_ID,
    TWO_STEMS,
    USER_ID,
    embed_text,
    make_job,
    succeeded_job,
)

FRENCH = i18n.known_language("fr")
GERMAN = i18n.known_language("de")
JAPANESE = i18n.known_language("ja")
assert FRENCH is not None and GERMAN is not None and JAPANESE is not None

LONG_SPLITTING = "Wird gerade in einzelne Spuren zerlegt, bitte einen Moment Geduld: {song}"
"""A German title far longer than the English "Splitting: {song}"."""

Entries = dict[str | tuple[str, str], str | tuple[str, ...]]

CATALOGS: dict[Language, Entries] = {
    FRENCH: {
        # French has three forms: one (0 and 1), many (millions: "de crédits"), other.
        ("{count} credit", "{count} credits"): ("{count} crédit", "{count} de crédits", "{count} crédits"),
        "Splitting: {song}": "Séparation : {song}",
        (
            "Job #{job} · {count} credit held, returned if the split fails",
            "Job #{job} · {count} credits held, returned if the split fails",
        ): (
            "Tâche n° {job} · {count} crédit retenu, rendu si la séparation échoue",
            "Tâche n° {job} · {count} de crédits retenus, rendus si la séparation échoue",
            "Tâche n° {job} · {count} crédits retenus, rendus si la séparation échoue",
        ),
        results.NOT_STARTED: "Cette séparation n'a pas démarré ; les détails ont été envoyés en privé.",
        results.LATE_NOTE: "Le message d'origine ne pouvait plus être modifié : voici le résultat.",
        results.INTERRUPTED_TITLE: "Cette séparation n'a pas démarré",
        "**Links expire {when}: download now, they cannot be renewed.**": (
            "**Les liens expirent {when} : téléchargez maintenant, ils ne peuvent pas être renouvelés.**"
        ),
        "The split didn't work": "La séparation n'a pas fonctionné",
        "The separation service took far longer than usual, so the bot stopped waiting. Try again "
        "later: the service is probably busy.": "Le service a mis bien trop longtemps : réessayez plus tard.",
        "The service said: “{detail}”": "Le service a répondu : « {detail} »",
        "Drums": "Batterie",
        "Sandbox · {title}": "Bac à sable · {title}",
        "{mode} — {price}": "{mode} — {price}, retenus au lancement et rendus si la séparation échoue, "
        "quelle qu'en soit la raison",
        "Full split (up to 12 stems)": "Séparation complète (jusqu'à 12 pistes, une par instrument)",
    },
    GERMAN: {
        ("{count} credit", "{count} credits"): ("{count} Credit", "{count} Credits"),
        "Not enough credits": "Nicht genug Credits",
        "Splitting: {song}": LONG_SPLITTING,
        "Sandbox · {title}": "Testumgebung · {title}",
        "**Links expire {when}: download now, they cannot be renewed.**": (
            "**Die Links laufen {when} ab: jetzt herunterladen, sie lassen sich nicht verlängern.**"
        ),
        "Drums": "Schlagzeug",
        ("{song}: {count} stem", "{song}: {count} stems"): ("{song}: {count} Spur", "{song}: {count} Spuren"),
    },
    JAPANESE: {
        ("{count} credit", "{count} credits"): ("{count} クレジット",),
    },
}


def compiled(language: Language, entries: Entries) -> gettext.NullTranslations:
    catalog = Catalog(locale=language.babel, domain=i18n.DOMAIN)
    for msgid, msgstr in entries.items():
        catalog.add(msgid, msgstr)
    return i18n.compiled(catalog)


@pytest.fixture(autouse=True)
def catalogs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    tables = {language: compiled(language, entries) for language, entries in CATALOGS.items()}
    untranslated = gettext.NullTranslations()
    monkeypatch.setattr(i18n, "translations", lambda language: tables.get(language, untranslated))
    yield


class FixedLanguages:
    """A server that speaks `public` and a member who speaks `member`, as last seen."""

    def __init__(self, public: Language, member: Language) -> None:
        self._public, self._member = public, member

    async def public(self, guild_id: int | None, seen: object = None) -> Language:
        return self._public

    async def member(self, user_id: int) -> Language:
        return self._member


# -- amounts, plurals, numbers, dates ------------------------------------------------------------


def test_credits_take_the_plural_form_of_the_language_being_spoken():
    assert common.credit_amount(0) == "0 credits"  # English: plural for zero
    with i18n.speaking(FRENCH):
        assert common.credit_amount(0) == "0 crédit"  # French: singular for zero
        assert common.credit_amount(1) == "1 crédit"
        assert common.credit_amount(2) == "2 crédits"
        assert common.credit_amount(2_000_000) == "2\u202f000\u202f000 de crédits"
    with i18n.speaking(JAPANESE):
        assert common.credit_amount(1) == common.credit_amount(1) == "1 クレジット"
        assert common.credit_amount(5) == "5 クレジット"  # one form for every number


def test_numbers_are_written_the_way_of_the_language_being_spoken():
    assert common.credit_amount(1590) == "1,590 credits"
    with i18n.speaking(GERMAN):
        assert common.credit_amount(1590) == "1.590 Credits"
        assert common.credit_change(-1590) == "-1.590 credits"  # no entry: English words, German digits
    with i18n.speaking(FRENCH):
        assert common.number(1590) == "1\u202f590"


def test_month_names_are_those_of_the_language_being_spoken():
    assert common.budget_month_name("2025-03") == "March 2025"
    with i18n.speaking(GERMAN):
        assert common.budget_month_name("2025-03") == "März 2025"
    with i18n.speaking(JAPANESE):
        assert common.budget_month_name("2025-03") == "2025年3月"


def test_a_stem_is_named_in_the_language_being_spoken_and_an_unknown_one_as_the_api_said():
    with i18n.speaking(GERMAN):
        assert stem_name("drums") == "Schlagzeug"
        assert stem_name("sitar_drone") == "Sitar drone"
    assert stem_name("drums") == "Drums"


# -- limits kept after translation -----------------------------------------------------------------


def long_song_job(**overrides: Any):
    song = Song(title="Nachtfahrt " * 40, take=2, takes=2, duration=194.0, cover_url=None)
    return replace(make_job(**overrides), song=song)


@pytest.mark.parametrize("sandbox", [False, True])
def test_a_working_title_is_cut_after_translation(sandbox):
    job = long_song_job(sandbox=sandbox)
    with i18n.speaking(GERMAN):
        title = results.queued(job).title
    assert title is not None and len(title) <= common.EMBED_TITLE_LIMIT
    head = LONG_SPLITTING.removesuffix("{song}")
    assert title.startswith(f"Testumgebung · {head}" if sandbox else head)
    assert title.endswith("… (take 2 · 3:14)")  # the song's title was cut, never the German words


def test_a_result_title_is_cut_after_translation_with_room_for_its_part_number():
    job = replace(succeeded_job(TWO_STEMS, 120), song=long_song_job().song)
    with i18n.speaking(GERMAN):
        [message] = results.stems_ready(job)
    title = message.embeds[0].title
    assert title is not None and len(title) + len(" (part 10 of 10)") <= common.EMBED_TITLE_LIMIT
    assert title.endswith(f"(take 2 · 3:14): {len(job.stems)} Spuren")


def test_a_mode_label_is_cut_to_discords_limit_after_translation():
    with i18n.speaking(FRENCH):
        label = common.mode_label(Mode.SPLIT_STEM)
    assert len(label) == 100 and label.endswith("…")
    assert label.startswith("Séparation complète (jusqu'à 12 pistes, une par instrument) — 50 crédits, ")


def test_a_sandbox_title_is_marked_once_in_the_language_being_spoken():
    with i18n.speaking(FRENCH):
        embed = common.mark_sandbox(common.mark_sandbox(discord.Embed(title="Crédits"), True), True)
    assert embed.title == "Bac à sable · Crédits"


# -- stored failures --------------------------------------------------------------------------------


def test_a_stored_failure_reads_in_the_language_it_is_shown_in():
    job = make_job(state=JobState.FAILED, failure=Failure.TIMED_OUT)
    with i18n.speaking(FRENCH):
        text = embed_text(results.failed(job).embeds[0])
    assert "Le service a mis bien trop longtemps" in text and "La séparation n'a pas fonctionné" in text
    assert "far longer than usual" in embed_text(results.failed(job).embeds[0])


def test_the_services_own_words_are_quoted_as_they_are():
    job = make_job(state=JobState.FAILED, failure=Failure.SEPARATION_FAILED, failure_detail="audio too quiet")
    with i18n.speaking(FRENCH):
        text = embed_text(results.failed(job).embeds[0])
    assert "Le service a répondu : « audio too quiet »" in text


# -- delivered without an interaction ----------------------------------------------------------------


def deliverer(fake: FakeDiscord, public: Language, member: Language) -> DiscordDeliverer:
    return DiscordDeliverer(
        fake.client, MemoryParts(), clock=lambda: NOW, languages=FixedLanguages(public, member)
    )


async def test_a_result_in_the_split_response_speaks_the_servers_language(monkeypatch):
    fake = FakeDiscord(monkeypatch)

    await deliverer(fake, FRENCH, GERMAN).deliver(live_token_job())

    [embed] = fake.webhook.edit_message.await_args.kwargs["embeds"]
    assert "Les liens expirent" in (embed.description or "") and "[Batterie]" not in (embed.description or "")


async def test_a_late_result_in_the_channel_speaks_the_servers_language(monkeypatch):
    fake = FakeDiscord(monkeypatch)

    await deliverer(fake, FRENCH, GERMAN).deliver(expired_token_job())

    [(route, sent)] = fake.shown
    assert route == "channel"
    late_note = "Le message d'origine ne pouvait plus être modifié : voici le résultat."
    assert sent["content"] == f"<@{USER_ID}> {late_note}"
    assert "Les liens expirent" in (sent["embeds"][0].description or "")


async def test_a_result_sent_by_dm_speaks_the_members_language(monkeypatch):
    fake = FakeDiscord(monkeypatch)
    fake.script("channel", missing_access)

    await deliverer(fake, FRENCH, GERMAN).deliver(expired_token_job())

    [(route, sent)] = fake.shown
    assert route == "dm"
    assert "Die Links laufen" in (sent["embeds"][0].description or "")


async def test_a_reminder_by_dm_speaks_the_members_language_and_in_the_channel_the_servers(monkeypatch):
    job = replace(expired_token_job(), links_expire_at=NOW + 3600)
    shown = [DeliveredMessage(job.id, DeliveryVia.CHANNEL, 0, CHANNEL_ID, 1)]
    fake = FakeDiscord(monkeypatch)
    assert await deliverer(fake, FRENCH, GERMAN).remind(job, shown)
    fake_closed = FakeDiscord(monkeypatch)
    fake_closed.script("dm", missing_access)
    assert await deliverer(fake_closed, FRENCH, GERMAN).remind(job, shown)

    [(_, by_dm)] = fake.shown
    [(_, in_channel)] = fake_closed.shown
    assert "Die Links laufen" in (by_dm["embeds"][0].description or "")
    assert "Les liens expirent" in (in_channel["embeds"][0].description or "")


async def test_the_answer_to_a_split_that_never_started_speaks_the_servers_language(monkeypatch):
    fake = FakeDiscord(monkeypatch)
    ack = AcknowledgedSplit(
        interaction_id=1,
        application_id=APPLICATION_ID,
        token="t",
        guild_id=GUILD_ID,
        channel_id=CHANNEL_ID,
        user_id=USER_ID,
        mode=Mode.SPLIT_STEM,
        task_id="a",
        audio_id="b",
        acknowledged_at=NOW,
        expires_at=NOW + 600,
    )

    assert await deliverer(fake, FRENCH, GERMAN).split_not_started(ack)

    assert fake.webhook.edit_message.await_args.kwargs["embed"].title == "Cette séparation n'a pas démarré"


# -- /split: public in the server's language, private in the member's --------------------------------


def split_interaction(split_world: World) -> Any:
    """A member who speaks German, in a server that speaks French."""
    interaction = split_world.interaction()
    services = replace(split_world.services, languages=FixedLanguages(FRENCH, GERMAN))
    interaction.client = SimpleNamespace(services=services)
    interaction.locale, interaction.guild_locale = discord.Locale.german, discord.Locale.french
    return interaction


async def test_the_queued_message_speaks_the_servers_language_in_the_members_task(
    make_world,  # noqa: F811 (the fixture)
):
    world = await make_world()
    interaction = split_interaction(world)

    with i18n.speaking(GERMAN):  # the entry point speaks the member's language
        await world.split(interaction)

    embed = interaction.edit_original_response.await_args.kwargs["embed"]
    assert embed.title.startswith("Séparation : ")
    assert "crédits retenus, rendus si la séparation échoue" in (embed.footer.text or "")


async def test_a_refusal_is_private_in_the_members_language_and_ends_the_public_reply_in_the_servers(
    make_world,  # noqa: F811 (the fixture)
):
    world = await make_world(default_credits=0)
    interaction = split_interaction(world)
    interaction.delete_original_response.side_effect = discord.NotFound(
        SimpleNamespace(status=404, reason="Not Found"), "unknown message"
    )

    with i18n.speaking(GERMAN):
        await world.split(interaction)

    public = interaction.edit_original_response.await_args.kwargs
    assert public["content"] == "Cette séparation n'a pas démarré ; les détails ont été envoyés en privé."
    private = interaction.followup.send.await_args.kwargs
    assert private["ephemeral"] is True and private["embed"].title == "Nicht genug Credits"


def test_the_menu_of_tracks_speaks_the_language_being_spoken():
    tracks = TaskTracks("t", (Track("a", "Song", 194.0, None, 1), Track("b", "Song", 200.0, None, 2)))
    with i18n.speaking(FRENCH):
        [option, _second] = song_words.menu_options(tracks, Mode.SEPARATE_VOCAL)
    assert "10 crédits" in (option.description or "")
