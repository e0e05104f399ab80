"""CSV and XLSX writers for exports, with flat memory whatever the number of rows.

CSV is UTF-8 with a byte-order mark (so that Excel opens Japanese text correctly) and CRLF line
ends; numbers are written plainly (``1234.50``), dates as ``YYYY-MM-DD`` and times in Asia/Tokyo as
``YYYY-MM-DD HH:MM:SS``. XLSX uses openpyxl's write-only mode: rows go to a temporary file as they
come, numbers are number cells, dates and times are date cells with a format.
"""

from __future__ import annotations

import csv
import datetime
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone

BOM = "\ufeff"
TEXT, INT, DECIMAL, DATE, DATETIME = "text", "int", "decimal", "date", "datetime"


@dataclass(frozen=True)
class Column:
    key: str
    header: Any  # a lazily translated string
    get: Callable[[Any], Any]
    kind: str = TEXT


def _local(value: datetime.datetime) -> datetime.datetime:
    return timezone.localtime(value) if timezone.is_aware(value) else value


def csv_value(value, kind: str) -> str:
    if value is None:
        return ""
    if kind == DATETIME and isinstance(value, datetime.datetime):
        return _local(value).strftime("%Y-%m-%d %H:%M:%S")
    if kind == DATE and isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


class _Echo:
    """A file-like object whose write() returns what it was given (csv.writer → generator)."""

    def write(self, value: str) -> str:
        return value


def csv_lines(columns: list[Column], rows: Iterable) -> Iterator[str]:
    """The CSV text, line by line, BOM first: for a StreamingHttpResponse or a file."""
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    yield BOM + writer.writerow([str(c.header) for c in columns])
    for row in rows:
        yield writer.writerow([csv_value(c.get(row), c.kind) for c in columns])


def xlsx_value(value, kind: str):
    if value is None:
        return None
    if kind == DATETIME and isinstance(value, datetime.datetime):
        return _local(value).replace(tzinfo=None)  # Excel has no time zones: Tokyo wall time
    if kind in (INT, DECIMAL, DATE):
        return value
    return str(value)


NUMBER_FORMATS = {DATE: "yyyy-mm-dd", DATETIME: "yyyy-mm-dd hh:mm:ss", DECIMAL: "#,##0.00", INT: "#,##0"}


def write_xlsx(path, columns: list[Column], rows: Iterable, *, title: str, on_row=None) -> int:
    """Write ``rows`` to an XLSX file at ``path``; returns the number of rows. ``on_row(n)`` is
    called after each row (progress)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31] or "export")
    bold = Font(bold=True)
    header = []
    for column in columns:
        cell = WriteOnlyCell(sheet, value=str(column.header))
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    formats = [NUMBER_FORMATS.get(c.kind) for c in columns]
    count = 0
    for row in rows:
        cells = []
        for column, number_format in zip(columns, formats, strict=True):
            value = xlsx_value(column.get(row), column.kind)
            if number_format and value is not None:
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = number_format
                cells.append(cell)
            else:
                cells.append(value)
        sheet.append(cells)
        count += 1
        if on_row is not None:
            on_row(count)
    workbook.save(path)
    return count
