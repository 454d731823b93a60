"""Keeping and mixing in the reader's language: what is posted beside a result (the thread's name,
its notes, a mix's file name and line) in the server's language, what only the member reads in
theirs, stored reasons said again in whoever reads them, and Discord's limits held after
translation. Test catalogs are installed for Spanish and German; the real flows run on SQLite
with the simulator and the recording Discord side (`tests.test_keeping`, `tests.test_mixing`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from babel.messages.catalog import Catalog

from bot import i18n, reasons
from bot.i18n import Language
from bot.mixing.names import mix_filename
from bot.models import CreditPolicy, Keep, KeepPlace, KeepState, MixState, Song, StemLink
from bot.product import stem_name
from bot.reasons import because
from bot.render import buttons, common
from bot.render import keep as keep_words
from bot.render import library as library_words
from bot.render import mix as mix_words
from bot.sandbox import STEMS_12
from bot.store import Store
from cogs.stems import CancelButton, StemsCog
from testing.provider_api import SeparationApiSimulator
from tests.test_keeping import BOB, GUILD, World, delivered, kept, notes, open_world
from tests.test_mixing import MixRecorder, mix_to_the_end, poster, request
from tests.test_stems_cog import World as StemsWorld
from tests.unit_helpers import GUILD_ID, USER_ID, make_interaction, make_job, run_command


def _language(code: str) -> Language:
    language = i18n.known_language(code)
    assert language is not None
    return language


SPANISH = _language("es-ES")
GERMAN = _language("de")

Entries = Mapping[str | tuple[str, str], str | tuple[str, str]]

TAIL = "einzeln getrennt und für immer in Discord aufbewahrt · Auftrag Nummer"
"""A long German thread name's words after the title."""

SPANISH_WORDS: Entries = {
    "Bass": "Bajo",
    "Drums": "Batería",
    reasons.HTML_PAGE: "una página HTML",
    reasons.LINK_GONE: "el enlace ya no funciona (HTTP {status})",
    reasons.STEM_NOT_FETCHED: "{stem} no se pudo descargar: {why}",
    reasons.STEM_EXPIRED: "los enlaces caducaron y {stem} ya no está guardada en Discord",
    "These stems stay download links, so get them before the links expire {moment}:": (
        "Estas pistas se quedan como enlaces de descarga; descárgalas antes de que caduquen {moment}:"
    ),
    "• **{file}**: {why}. [Download {file}]({url})": "• **{file}**: {why}. [Descargar {file}]({url})",
    "{title} - without {stem}": "{title} - sin {stem}",
    "🎚️ {member} asked for a mix of Job #{job}: {kept} (without {left}).": (
        "🎚️ {member} pidió una mezcla del trabajo #{job}: {kept} (sin {left})."
    ),
    ("{title} · {count} stem · job #{job}", "{title} · {count} stems · job #{job}"): (
        "{title} · {count} pista · trabajo #{job}",
        "{title} · {count} pistas · trabajo #{job}",
    ),
}
GERMAN_WORDS: Entries = {
    "Your mix of Job #{job} is ready: [{name}]({url}).": (
        "Dein Mix von Auftrag #{job} ist fertig: [{name}]({url})."
    ),
    (
        "The mix of Job #{job} couldn't be made: {why}. Nothing was posted. Your {count} credit came back.",
        "The mix of Job #{job} couldn't be made: {why}. Nothing was posted. Your {count} credits came back.",
    ): (
        "Der Mix von Auftrag #{job} ging nicht: {why}. Nichts gepostet. Dein {count} Credit ist zurück.",
        "Der Mix von Auftrag #{job} ging nicht: {why}. Nichts gepostet. Deine {count} Credits sind zurück.",
    ),
    ("{title} · {count} stem · job #{job}", "{title} · {count} stems · job #{job}"): (
        "{title} · {count} Spur, " + TAIL + " #{job}",
        "{title} · {count} Spuren, " + TAIL + " #{job}",
    ),
    "Keep in Discord": "In Discord aufbewahren, " + "sehr lange " * 10,
}


@pytest.fixture
def catalogs(monkeypatch: pytest.MonkeyPatch) -> Callable[[Language, Entries], None]:
    """Install a test catalog for a language (the others keep theirs)."""
    installed: dict[Language, object] = {}
    real = i18n.translations

    def install(language: Language, entries: Entries) -> None:
        catalog = Catalog(locale=language.babel, domain=i18n.DOMAIN)
        for msgid, msgstr in entries.items():
            catalog.add(msgid, msgstr)
        installed[language] = i18n.compiled(catalog)

    monkeypatch.setattr(i18n, "translations", lambda language: installed.get(language) or real(language))
    return install


@pytest.fixture
def spoken(catalogs: Callable[[Language, Entries], None]) -> None:
    catalogs(SPANISH, SPANISH_WORDS)
    catalogs(GERMAN, GERMAN_WORDS)


# -- stored reasons ------------------------------------------------------------------------------


def test_a_stored_reason_is_english_and_said_again_in_the_readers_language(spoken: None) -> None:
    stored = because(reasons.STEM_NOT_FETCHED, stem="Bass", why=because(reasons.LINK_GONE, status=404))
    assert stored == "Bass could not be fetched: the link no longer works (HTTP 404)"  # stored, logged

    with i18n.speaking(SPANISH):
        bass = stem_name("bass")
        assert reasons.shown(stored) == f"{bass} no se pudo descargar: el enlace ya no funciona (HTTP 404)"
        # Words not ours (the API's, Discord's, an older version's) are shown as they are.
        assert reasons.shown("Missing Access") == "Missing Access"
    assert reasons.shown(stored) == stored


def test_every_reason_is_read_back_as_itself() -> None:
    # A sentence is read as the most particular message it can be: never as another one.
    for message in reasons.MESSAGES:
        values = {name: f"<{name}>" for name in reasons._PLACEHOLDER.findall(message)}
        assert reasons.shown(because(message, **values)) == because(message, **values)
        (found,) = [m for m, p in reasons._patterns() if p.fullmatch(because(message, **values))][:1]
        assert found == message


def test_a_keep_asked_again_says_why_the_last_try_stopped_in_the_members_language(spoken: None) -> None:
    keep = replace(_keep(), state=KeepState.PENDING)
    job = make_job(stems=(StemLink("vocal", "https://x/v.mp3"),))

    with i18n.speaking(SPANISH):
        answer = keep_words.keep_answer(keep, job, started=True, last_failure=because(reasons.HTML_PAGE))

    assert answer.description is not None and "una página HTML" in answer.description


# -- Discord's limits, after translation ----------------------------------------------------------


def test_the_thread_name_is_cut_after_translation_and_keeps_its_plural(spoken: None) -> None:
    title = "A Very Long Song Title " * 6
    twelve = make_job(
        job_id=123456,
        stems=tuple(StemLink(k, f"https://x/{k}.mp3") for k in STEMS_12),
        song=Song(title=title),
    )
    one = make_job(job_id=7, stems=(StemLink("vocal", "https://x/v.mp3"),), song=Song(title="Short"))

    with i18n.speaking(GERMAN):
        long_name = keep_words.thread_name(twelve)
        short_name = keep_words.thread_name(one)

    assert len(long_name) <= keep_words.THREAD_NAME_LIMIT
    # The title is cut, never the translated words after it.
    assert long_name.endswith(
        "12 Spuren, einzeln getrennt und für immer in Discord aufbewahrt · Auftrag Nummer #123456"
    )
    assert long_name.startswith("A Very L") and len(long_name) == keep_words.THREAD_NAME_LIMIT
    assert (
        short_name
        == "Short · 1 Spur, einzeln getrennt und für immer in Discord aufbewahrt · Auftrag Nummer #7"
    )


def test_a_button_label_is_cut_after_translation(spoken: None) -> None:
    job = make_job(stems=(StemLink("vocal", "https://x/v.mp3"),))
    with i18n.speaking(GERMAN):
        view = buttons.result_view(job, in_server=True, keep_button=True, stem_buttons=False)
    assert view is not None
    [keep_button] = [item for item in view.children if getattr(item, "emoji", None) is not None]
    label = getattr(keep_button, "label", "")
    assert label.startswith("In Discord aufbewahren") and len(label) == buttons.BUTTON_LABEL_LIMIT
    assert common.KEEP_BUTTON_LABEL == "Keep in Discord"


def test_a_mix_file_name_in_another_language_stays_file_system_safe(
    catalogs: Callable[[Language, Entries], None],
) -> None:
    catalogs(SPANISH, {"{title} - without {stem}": "{title}: sin/{stem}"})
    with i18n.speaking(SPANISH):
        name = mix_filename("Midnight Drive", 12, ["Vocals", "Drums"], [0])
    assert name == "Midnight Drive sin Drums.mp3"


# -- the flows: public words in the server's language, private in the member's ------------------


@pytest.fixture
async def sim() -> AsyncIterator[SeparationApiSimulator]:
    async with SeparationApiSimulator(stem_files=True, processing_seconds=0.05) as sim:
        sim.stem_audio_seconds = 1.0
        yield sim


@pytest.fixture
async def world(tmp_path: Path, sim: SeparationApiSimulator) -> AsyncIterator[World]:
    opened = await open_world(tmp_path, sim, poster=MixRecorder(sim))
    yield opened
    await opened.close()
    await opened.session.close()


async def test_a_keeps_note_speaks_the_servers_language(world: World, spoken: None) -> None:
    await world.services.languages.saw(BOB, "de", GUILD, "es-ES")
    world.sim.html_stems.add("Drums")
    job = await delivered(world)

    await kept(world, job)

    with i18n.speaking(SPANISH):
        drums = f"{stem_name('drums')}.mp3"  # the posted files are named in the server's language
    [note] = notes(world.poster)
    assert note.startswith("Estas pistas se quedan como enlaces de descarga")
    assert f"• **{drums}**: una página HTML. [Descargar {drums}]" in note
    stems = {s.filename: s for s in await world.store.keeps.stems(job.id)}
    assert stems[drums].skipped_why == "an HTML page"  # stored in English, said in Spanish
    assert drums in stems and "Batería.mp3" == drums


async def test_a_mix_is_named_in_the_servers_language_and_answered_in_the_members(
    world: World, spoken: None
) -> None:
    await world.services.languages.saw(BOB, "de", GUILD, "es-ES")
    job = await delivered(world)
    assert await world.store.songs.name_job(job.id, Song(title="Midnight Drive", duration=200.0))
    drums = STEMS_12.index("drums")
    with i18n.speaking(GERMAN):  # BOB asks in German: the file's name is public all the same
        asked = await request(world, job, [p for p in range(12) if p != drums])

    mix = await mix_to_the_end(world, asked.id)

    with i18n.speaking(SPANISH):
        spanish_drums = stem_name("drums")
    assert mix.state is MixState.POSTED and mix.filename == f"Midnight Drive - sin {spanish_drums}.mp3"
    [posted] = [m for m in poster(world).messages if m.files]
    assert posted.content.startswith(f"🎚️ <@{BOB}> pidió una mezcla del trabajo #{job.id}:")
    assert poster(world).told[-1].startswith(f"Dein Mix von Auftrag #{job.id} ist fertig:")


async def test_a_failed_mix_tells_the_member_why_in_their_language(world: World, spoken: None) -> None:
    await world.store.economy.update_settings(GUILD, {"mix_price": 4}, actor_id=BOB)
    await world.services.languages.saw(BOB, "de", GUILD, "es-ES")
    job = await delivered(world)
    await kept(world, job)
    world.clock.advance(60 * 60 * 24 * 15)  # the links expired: the kept files are the source
    with i18n.speaking(SPANISH):  # the kept files were named in the server's language
        poster(world).gone.add(f"{stem_name('bass')}.mp3")

    mix = await mix_to_the_end(world, (await request(world, job, [0, STEMS_12.index("bass")])).id)

    assert mix.failure == "the links expired and Bass is not kept in Discord any more"
    assert poster(world).told[-1].startswith(f"Der Mix von Auftrag #{job.id} ging nicht: the links expired")
    assert poster(world).told[-1].endswith("Deine 4 Credits sind zurück.")
    with i18n.speaking(SPANISH):
        assert "ya no está guardada en Discord" in mix_words.failed_answer(job, mix, 4)


async def test_a_mix_posted_before_the_server_changed_language_is_found_not_posted_twice(
    world: World, spoken: None
) -> None:
    await world.services.languages.saw(BOB, "de", GUILD, "es-ES")
    job = await delivered(world)
    poster(world).lose_answer.append("mix")  # posted, but the answer is lost: an unknown outcome
    asked = await request(world, job, [0, 1])
    await world.services.mixer.run_due()
    await world.services.languages.saw(BOB, "de", GUILD, "de")  # the server now speaks German

    mix = await mix_to_the_end(world, asked.id)

    posted = [m for m in poster(world).messages if m.files]
    assert mix.state is MixState.POSTED and [m.message_id for m in posted] == [mix.message_id]
    assert "pidió una mezcla" in posted[0].content


def _keep() -> Keep:
    return Keep(
        job_id=42, guild_id=1, state=KeepState.KEPT, requested_by=BOB, upload_limit=10 * 2**20,
        place=KeepPlace.THREAD, channel_id=5, anchor_message_id=6,
    )  # fmt: skip


# -- /stems: what goes to the channel speaks the server's language ---------------------------------


@pytest.fixture
async def stems_world(tmp_path: Path) -> AsyncIterator[StemsWorld]:
    store = await Store.open(tmp_path / "stems.db", CreditPolicy(default_credits=1000, jobs_per_member=50))
    async with aiohttp.ClientSession() as session:
        world = StemsWorld(store, session)
        await world.services.languages.saw(USER_ID, "de", GUILD_ID, "es-ES")
        yield world
    await store.close()


def spoken_while(monkeypatch: pytest.MonkeyPatch, name: str) -> list[Language]:
    """The language each call of the library's `name` renders in (the real function still renders)."""
    heard: list[Language] = []
    real = getattr(library_words, name)

    def listening(*args: object, **kwargs: object) -> object:
        heard.append(i18n.current())
        return real(*args, **kwargs)

    monkeypatch.setattr(library_words, name, listening)
    return heard


async def test_a_split_shown_to_the_channel_speaks_the_servers_language_and_privately_the_members(
    stems_world: StemsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    heard = spoken_while(monkeypatch, "shown")
    job = await stems_world.job(succeed=True)

    with i18n.speaking(GERMAN):  # the member's language, as the entry point sets it
        await run_command(stems_world.cog, StemsCog.show, make_interaction(), job.id)
        await run_command(stems_world.cog, StemsCog.show, make_interaction(), job.id, True)

    assert heard == [GERMAN, SPANISH]


async def test_the_cancel_button_marks_the_queued_message_in_the_servers_language(
    stems_world: StemsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    heard = spoken_while(monkeypatch, "cancelled")
    job = await stems_world.job()
    member = make_interaction()
    member.client = stems_world.bot

    with i18n.speaking(GERMAN):
        await CancelButton(job.id).callback(member)

    assert heard == [SPANISH]
    assert member.response.edit_message.await_args.kwargs["view"] is None
