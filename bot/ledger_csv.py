"""The ledger as a CSV file for spreadsheets (`/quota export`): RFC 4180 (commas, CRLF line ends,
quotes doubled), UTF-8 with a byte order mark (without it, Excel reads UTF-8 as the local code page
and every accented or non-Latin name turns to mojibake), a header row, one row per ledger entry.

Written as a stream, page by page from the database into a temporary file: never the whole ledger
in memory. Cells that are text and start with `=`, `+`, `-`, `@`, a tab or a carriage return get a
leading `'`, so a spreadsheet shows them rather than running them as a formula (OWASP's advice
against CSV injection); numbers stay numbers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

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
BOM = "\ufeff"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def guarded(text: str | None) -> str:
    """A text cell a spreadsheet will not run as a formula."""
    if text is None:
        return ""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def iso_utc(epoch: float) -> str:
    """ISO 8601 in UTC to the second, as spreadsheets parse it: 2026-12-06T07:40:00Z."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cells(row: ExportRow) -> list[str | int]:
    return [
        iso_utc(row.created_at),
        str(row.user_id),  # text: a 19-digit id as a number loses its last digits in a spreadsheet
        guarded(row.name),
        row.amount,
        row.balance_after,
        guarded(row.kind),
        "" if row.job_id is None else row.job_id,
        guarded(row.reason),
        "" if row.actor_id is None else str(row.actor_id),
    ]


class CsvLines:
    """Turns rows into encoded CSV lines, one call at a time (the csv module writes to a buffer that
    is emptied after each row, so memory stays one row)."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")

    def header(self) -> bytes:
        return (BOM + self._line(list(HEADER))).encode("utf-8")

    def row(self, row: ExportRow) -> bytes:
        return self._line(cells(row)).encode("utf-8")

    def _line(self, values: list[str | int]) -> str:
        self._writer.writerow(values)
        line = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return line
