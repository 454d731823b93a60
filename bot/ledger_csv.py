"""The ledger as a CSV file for spreadsheets (`/quota export`): RFC 4180 (commas, CRLF line ends,
quotes doubled), UTF-8 with a byte order mark (without it, Excel reads UTF-8 as the local code page
and every accented or non-Latin name turns to mojibake), a header row, one row per ledger entry.

Written as a stream, page by page from the database into a temporary file: never the whole ledger
in memory. Cells that are text and start with `=`, `+`, `-`, `@`, a tab or a carriage return get a
leading `'`, so a spreadsheet shows them rather than running them as a formula (OWASP's advice
against CSV injection); numbers stay numbers.

The header row and the kind of each entry are in the language of whoever asked for the file (as it
is spoken when the file is started: the rows are written in a thread); dates stay ISO 8601, which
every spreadsheet reads whatever its language."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from bot.i18n import pgettext
from bot.models import LedgerKind
from bot.models.reports import ExportRow

HEADER = (
    "time_utc",
    "member_id",
    "member_name",
    "change",
    "balance_after",
    "kind",
    "job",
    "reason",
    "actor_id",
)
"""The header row in English, as the code names the columns."""
BOM = "\ufeff"


def headings() -> tuple[str, ...]:
    """The header row in the language being spoken (`HEADER` in English)."""
    # TRANSLATORS: the header row of the credit ledger exported as CSV for spreadsheets. Keep each
    # one short and without commas; "utc" says the times are in UTC.
    return (
        pgettext("CSV column", "time_utc"),
        pgettext("CSV column", "member_id"),
        pgettext("CSV column", "member_name"),
        pgettext("CSV column", "change"),
        pgettext("CSV column", "balance_after"),
        pgettext("CSV column", "kind"),
        pgettext("CSV column", "job"),
        pgettext("CSV column", "reason"),
        pgettext("CSV column", "actor_id"),
    )


def kind_words() -> dict[str, str]:
    """Each kind of ledger entry as the CSV's `kind` column says it, in the language being spoken
    (in English, as the ledger stores it). A kind missing here is shown as stored."""
    # TRANSLATORS: the kinds of credit ledger entries, in the CSV export's "kind" column: one or
    # two words each.
    return {
        LedgerKind.ALLOWANCE: pgettext("ledger entry", "allowance"),
        LedgerKind.RESERVE: pgettext("ledger entry", "reserve"),
        LedgerKind.CHARGE: pgettext("ledger entry", "charge"),
        LedgerKind.REFUND: pgettext("ledger entry", "refund"),
        LedgerKind.REFILL: pgettext("ledger entry", "refill"),
        LedgerKind.GRANT: pgettext("ledger entry", "grant"),
        LedgerKind.SET: pgettext("ledger entry", "set"),
        LedgerKind.RESET: pgettext("ledger entry", "reset"),
        LedgerKind.BLOCK: pgettext("ledger entry", "block"),
        LedgerKind.UNBLOCK: pgettext("ledger entry", "unblock"),
        LedgerKind.MIX_CHARGE: pgettext("ledger entry", "mix_charge"),
        LedgerKind.MIX_REFUND: pgettext("ledger entry", "mix_refund"),
    }


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def guarded(text: str | None) -> str:
    """A text cell a spreadsheet will not run as a formula."""
    if text is None:
        return ""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def iso_utc(epoch: float) -> str:
    """ISO 8601 in UTC to the second, as spreadsheets parse it: 2026-12-06T07:40:00Z."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cells(row: ExportRow, kinds: dict[str, str] | None = None) -> list[str | int]:
    """A row's cells; `kinds`: the words for its kind (`kind_words`), else the kind as stored."""
    return [
        iso_utc(row.created_at),
        str(row.user_id),  # text: a 19-digit id as a number loses its last digits in a spreadsheet
        guarded(row.name),
        row.amount,
        row.balance_after,
        guarded((kinds or {}).get(row.kind, row.kind)),
        "" if row.job_id is None else row.job_id,
        guarded(row.reason),
        "" if row.actor_id is None else str(row.actor_id),
    ]


class CsvLines:
    """Turns rows into encoded CSV lines, one call at a time (the csv module writes to a buffer that
    is emptied after each row, so memory stays one row). Its words are those of the language spoken
    where it is made."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")
        self._headings = headings()
        self._kinds = kind_words()

    def header(self) -> bytes:
        return (BOM + self._line(list(self._headings))).encode("utf-8")

    def row(self, row: ExportRow) -> bytes:
        return self._line(cells(row, self._kinds)).encode("utf-8")

    def _line(self, values: list[str | int]) -> str:
        self._writer.writerow(values)
        line = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return line
