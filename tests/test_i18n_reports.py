"""The library, `/stembot`, the usage reports, their charts and the ledger export speak the
reader's language: a catalog installed for a language is used for its words, its plural forms, its
numbers, lists and dates, and labels are cut after translation. (The English the other tests read
is the source: these install a small catalog of their own.)"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import discord
import pytest
from babel.messages.catalog import Catalog

from bot import charts, i18n
from bot.errors import InvalidOption
from bot.ledger_csv import HEADER, CsvLines
from bot.models import (
    ApiErrorNote,
    CallbackServerState,
    JobState,
    LibraryPage,
    PauseReason,
    Share,
    StatusReport,
)
from bot.models.reports import ExportRow, JobOutcomes, OwnerReport, Series, UsageReport
from bot.models.songs import Song
from bot.render import library, operators, usage
from bot.reports import check_days
from cogs.paging import Pager
from tests.unit_helpers import FINISHED_AT, embed_text, make_job

Entry = tuple[str | tuple[str, str], str | tuple[str, ...], str | None]
"""(message or (singular, plural), translation or its plural forms, context)."""


@pytest.fixture
def catalog(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, list[Entry]], i18n.Language]:
    """Installs a catalog of a few entries for one of our languages (by its code), as the lead's
    `.po` files will be: only those messages are translated, everything else stays English."""
    original = i18n.translations

    def install(code: str, entries: list[Entry]) -> i18n.Language:
        language = i18n.known_language(code)
        assert language is not None
        built = Catalog(locale=language.babel, domain=i18n.DOMAIN)
        for message, translation, context in entries:
            built.add(message, translation, context=context)
        table = i18n.compiled(built)
        monkeypatch.setattr(
            i18n, "translations", lambda spoken: table if spoken is language else original(spoken)
        )
        return language

    return install


# -- the library ----------------------------------------------------------------------------------


def test_the_library_page_speaks_the_readers_language_with_its_plurals_and_numbers(catalog) -> None:
    german = catalog(
        "de",
        [
            ("Your splits in this server", "Deine Splits auf diesem Server", None),
            (("{count} split", "{count} splits"), ("{count} Split", "{count} Splits"), None),
            ("Page {page} of {pages}", "Seite {page} von {pages}", None),
            ("Job #{id}", "Auftrag #{id}", None),
            ("ready", "fertig", "job state"),
        ],
    )
    many = LibraryPage(jobs=(make_job(),), page=0, pages=1590, total=15_900, newest_id=42, keeps={})
    one = dataclasses.replace(many, pages=1, total=1)

    with i18n.speaking(german):
        embed = library.library(many, 7, own=True, now=FINISHED_AT)
        single = library.library(one, 7, own=True, now=FINISHED_AT)

    assert embed.title == "Deine Splits auf diesem Server"
    assert embed.footer.text is not None and embed.footer.text.startswith(
        "Seite 1 von 1.590 · 15.900 Splits · "
    )
    assert single.footer.text is not None and "· 1 Split ·" in single.footer.text
    assert "**Auftrag #42**" in (embed.description or "") and "· fertig ·" in (embed.description or "")
    # The same page for someone reading English, in the same process: untouched.
    english = library.library(many, 7, own=True, now=FINISHED_AT)
    assert english.title == "Your splits in this server"
    assert english.footer.text is not None and "Page 1 of 1,590 · 15,900 splits" in english.footer.text


def test_what_came_back_of_a_cancelled_job_takes_the_languages_plural_form(catalog) -> None:
    german = catalog(
        "de",
        [
            (
                ("Your {count} credit is back.", "Your {count} credits are back."),
                ("Dein {count} Credit ist zurück.", "Deine {count} Credits sind zurück."),
                None,
            )
        ],
    )
    with i18n.speaking(german):
        one = library.refund_words(make_job(state=JobState.CANCELLED, cost=1), None)
        many = library.refund_words(make_job(state=JobState.CANCELLED, cost=1500), None)
    assert (one, many) == ("Dein 1 Credit ist zurück.", "Deine 1.500 Credits sind zurück.")
    assert library.refund_words(make_job(state=JobState.CANCELLED, cost=1), None) == "Your 1 credit is back."


LONG = "x" * 150


def test_suggestion_labels_are_cut_to_discords_limit_after_translation(catalog) -> None:
    french = catalog(
        "fr",
        [
            (
                ("{count} day ago", "{count} days ago"),
                # French has three forms: one, many (millions) and other.
                (
                    f"il y a {{count}} jour {LONG}",
                    f"il y a {{count}} jours {LONG}",
                    f"il y a {{count}} jours {LONG}",
                ),
                None,
            ),
            ("{mode} (shared)", f"{{mode}} (partagé) {LONG}", None),
        ],
    )
    job = make_job(created_at=FINISHED_AT - 3 * 86400, song=Song(title="Midnight Drive"), share=Share.REUSED)
    english = library.suggestion(job, FINISHED_AT)
    assert english.endswith("3 days ago") and len(english) < library.SUGGESTION_LIMIT

    with i18n.speaking(french):
        offered = library.suggestion(job, FINISHED_AT)
        track = library.track_suggestion(job, "e231f4a8", FINISHED_AT)

    assert len(offered) == library.SUGGESTION_LIMIT and offered.endswith("…")
    assert "il y a 3 jours" in offered  # the translation, cut
    assert len(track) == library.SUGGESTION_LIMIT and "(partagé) xxx" in track
    assert library.track_suggestion(job, "e231f4a8", FINISHED_AT).endswith("(shared) · 3 days ago")


async def test_the_page_buttons_are_labelled_in_the_readers_language_and_cut_after_translation(
    catalog,
) -> None:
    german = catalog("de", [("◀ Prev", "◀ Zurück", None), ("Next ▶", "Weiter ▶ " + LONG, None)])

    async def turn(interaction: Any, page: int) -> tuple[discord.Embed, int, int]:
        return discord.Embed(), page, 3

    with i18n.speaking(german):
        pager = Pager(turn, owner_id=7, page=0, pages=3, refused=discord.Embed())
    english = Pager(turn, owner_id=7, page=0, pages=3, refused=discord.Embed())

    assert pager.prev_page.label == "◀ Zurück"
    assert pager.next_page.label is not None and len(pager.next_page.label) == 80
    assert pager.next_page.label.startswith("Weiter ▶ xxx") and pager.next_page.label.endswith("…")
    assert (english.prev_page.label, english.next_page.label) == ("◀ Prev", "Next ▶")


# -- /stembot -------------------------------------------------------------------------------------


def status_report(**overrides: Any) -> StatusReport:
    values: dict[str, Any] = dict(
        version="9.9.9",
        account_credits=12_345,
        jobs_by_state={JobState.SUBMITTED: 1234},
        recent_errors=(ApiErrorNote(1_700_000_000.0, "submit", 455, "maintenance"),),
        paused=PauseReason.OUT_OF_CREDITS,
        paused_since=1_700_000_000.0,
        callbacks=CallbackServerState("https://bot.example.org", "0.0.0.0:8080", 17, 1_700_000_100.0),
        poll_interval=60.0,
    )
    values.update(overrides)
    return StatusReport(**values)


def test_the_owners_status_speaks_their_language_with_its_numbers_and_lists(catalog) -> None:
    german = catalog(
        "de",
        [
            (
                "the separation API account is out of credits",
                "das Konto der Trenn-API hat kein Guthaben mehr",
                None,
            ),
            (
                "⏸️ **Splitting is paused** (it stopped {since}): {reason}.",
                "⏸️ **Splitten pausiert** (angehalten {since}): {reason}.",
                None,
            ),
            ("splitting {count}", "in Arbeit: {count}", None),
            (
                ("{count} split ({mode})", "{count} splits ({mode})"),
                ("{count} Split ({mode})", "{count} Splits ({mode})"),
                None,
            ),
            ("API account", "API-Konto", None),
        ],
    )
    with i18n.speaking(german):
        text = embed_text(operators.status(status_report()))

    # A reason stored as an English constant (N_) is translated where it is shown.
    assert (
        "⏸️ **Splitten pausiert** (angehalten <t:1700000000:R>): "
        "das Konto der Trenn-API hat kein Guthaben mehr." in text
    )
    assert "in Arbeit: 1.234" in text and "API-Konto" in text
    # Numbers the German way, and the splits left listed with German's "or".
    assert (
        "**12.345** API credits: enough for 1.234 Splits (Vocals + instrumental) oder 246 Splits (Full split)"
        in text
    )
    assert "`submit` 455: maintenance" in text  # the API's own words, as they came


def test_the_owners_alerts_and_budget_words_follow_the_language_being_spoken(catalog) -> None:
    french = catalog(
        "fr",
        [
            (
                "▶️ **StemBot resumed splitting**: the separation API accepts the bot's account again.",
                "▶️ **StemBot a repris**.",
                None,
            )
        ],
    )
    with i18n.speaking(french):
        assert operators.splitting_resumed_alert() == "▶️ **StemBot a repris**."
    assert operators.splitting_resumed_alert().startswith("▶️ **StemBot resumed splitting**")


def test_the_problems_a_report_raises_are_in_the_readers_language(catalog) -> None:
    spanish = catalog(
        "es-ES",
        [
            (
                "`{option}` must be a whole number from 1 to {max}. Nothing was changed.",
                "`{option}` debe ser un número entero del 1 al {max}. No se ha cambiado nada.",
                None,
            )
        ],
    )
    with i18n.speaking(spanish), pytest.raises(InvalidOption) as refused:
        check_days(0)
    assert "debe ser un número entero del 1 al 365." in str(refused.value)


# -- the usage reports and their charts -----------------------------------------------------------

DAYS = tuple(date(2025, 3, 1) + timedelta(days=i) for i in range(5))
JAPANESE: list[Entry] = [
    ("API credits by server", "サーバー別APIクレジット", None),
    ("API credits per day", "1日あたりのAPIクレジット", None),
    ("Refunded", "返金", None),
    ("Every server this month", "今月の全サーバー", None),
    ("API credits this month", "今月のAPIクレジット", None),
    ("Other servers", "その他のサーバー", None),
    (
        ("Last {count} day · {period} · days in {zone}", "Last {count} days · {period} · days in {zone}"),
        ("過去{count}日間 · {period} · {zone}の日付",),
        None,
    ),
]


def owner_report() -> OwnerReport:
    return OwnerReport(
        days=DAYS,
        servers=(Series("1", (10, 20, 0, 5, 5)), Series("2", (5, 5, 5, 5, 5))),
        names={1: "音楽サーバー", 2: "Beat Lab"},
        released=(0, 3, 0, 0, 0),
        account_credits=1000,
        monthly_budget=5000,
        server_monthly_budget=None,
        month_spent=(15, 40, 45, 55, 65),
    )


def test_a_japanese_chart_has_japanese_words_dates_and_the_fonts_that_draw_them(catalog) -> None:
    japanese = catalog("ja", JAPANESE)
    with i18n.speaking(japanese):
        spec = usage.owner_chart(owner_report())

    assert spec.title.text == "サーバー別APIクレジット" and spec.y_label == "1日あたりのAPIクレジット"
    assert spec.day_labels == ("3月1日", "3月2日", "3月3日", "3月4日", "3月5日")  # Babel's dates
    assert spec.subtitle == "過去5日間 · 2025年3月1日\uff5e5日 · UTCの日付"
    # The shipped Japanese font is found, and together the fonts draw every word of the chart,
    # the server's Japanese name included (not its id, as an English chart must).
    fonts = charts.available(spec.fonts)
    assert "IPAexGothic" in fonts
    assert all(charts.covers(text, fonts) for text in charts.words(spec))
    assert charts.legible(spec.stacks[0].label, fonts) == "音楽サーバー"
    assert charts.legible(spec.stacks[0].label) == "Server 1"
    # Its English twin, for a host without any Japanese font.
    assert spec.english is not None and spec.english.title.text == "API credits by server"
    assert spec.english.day_labels[0] == "Mar 1" and spec.english.english is None


def test_a_chart_is_drawn_in_english_where_no_font_at_hand_draws_its_language(catalog) -> None:
    japanese = catalog("ja", JAPANESE)
    with i18n.speaking(japanese):
        spec = usage.owner_chart(owner_report())
    assert spec.english is not None
    without = dataclasses.replace(spec, fonts=(charts.FONT, "No Such Gothic"))

    english = charts.draw(spec.english)
    assert charts.draw(spec.english) == english  # drawing is deterministic: the bytes compare
    assert charts.draw(without) == english  # never empty boxes: the English chart instead
    assert charts.draw(spec) != english  # with the font, the Japanese chart itself


def test_the_day_labels_thin_out_where_the_language_writes_days_wider() -> None:
    from matplotlib.figure import Figure

    axes = Figure().add_subplot()
    charts._day_ticks(axes, [f"Mar {n}" for n in range(1, 31)])
    latin = len(axes.get_xticks())
    charts._day_ticks(axes, [f"3月{n}日" for n in range(1, 31)])
    assert latin == 8 and len(axes.get_xticks()) < latin


def usage_report() -> UsageReport:
    return UsageReport(
        guild_id=1,
        member_id=None,
        member_name=None,
        server_name="Beat Lab",
        timezone="Europe/Paris",
        days=DAYS,
        spent=(Series("split_stem", (50, 0, 0, 0, 1500)),),
        refunded=(0, 0, 0, 0, 0),
        api_spent=(50, 0, 0, 0, 1500),
        api_month_spent=(50, 50, 50, 50, 1550),
        budget=9000,
        top=(),
        outcomes=JobOutcomes(finished=3, failed=1),
    )


def test_the_usage_summary_writes_numbers_percentages_and_dates_the_languages_way(catalog) -> None:
    french = catalog(
        "fr",
        [
            (
                (
                    "The last {count} day ({period}), days in {zone}.",
                    "The last {count} days ({period}), days in {zone}.",
                ),
                (
                    "Le dernier jour ({period}), jours de {zone}.",
                    "Les {count} derniers jours ({period}), jours de {zone}.",
                    "Les {count} derniers jours ({period}), jours de {zone}.",
                ),
                None,
            ),
            ("Failure rate", "Taux d'échec", None),
        ],
    )
    with i18n.speaking(french):
        text = embed_text(usage.usage_summary(usage_report(), with_chart=True))
        spec = usage.usage_chart(usage_report())

    assert "Les 5 derniers jours (1\u20135 mars 2025), jours de Europe/Paris." in text
    assert "Taux d'échec" in text and "33\xa0%: 1 of 3" in text and "1\u202f550" in text
    assert spec.fonts == (charts.FONT,)  # Latin letters: DejaVu Sans alone, as in English
    assert spec.limit == ("Monthly budget (9\u202f000)", 9000)


# -- the ledger export ----------------------------------------------------------------------------


def test_the_csv_header_and_kinds_are_in_the_moderators_language_dates_stay_iso(catalog) -> None:
    german = catalog(
        "de",
        [
            ("time_utc", "zeit_utc", "CSV column"),
            ("kind", "art", "CSV column"),
            ("reserve", "reserviert", "ledger entry"),
        ],
    )
    row = ExportRow(1, 1_741_161_600.0, 7, "Zoë", -50, 950, "reserve", 42, None, None)
    odd = dataclasses.replace(row, kind="tip")  # a kind with no words of its own: as stored
    with i18n.speaking(german):
        lines = CsvLines()
    written: list[bytes] = []
    # Rows are written in a thread, where the language spoken is not set: the words were fixed
    # when the file was started.
    worker = threading.Thread(target=lambda: written.extend([lines.header(), lines.row(row), lines.row(odd)]))
    worker.start()
    worker.join()

    header, entry, other = (line.decode("utf-8") for line in written)
    assert header == "\ufeffzeit_utc,member_id,member_name,change,balance_after,art,job,reason,actor_id\r\n"
    assert entry == "2025-03-05T08:00:00Z,7,Zoë,-50,950,reserviert,42,,\r\n"
    assert other.split(",")[5] == "tip"
    assert CsvLines().header().decode("utf-8") == "\ufeff" + ",".join(HEADER) + "\r\n"


@pytest.fixture(autouse=True)
def _english_after() -> Iterator[None]:
    yield
    assert i18n.current() is i18n.ENGLISH
