"""CSV and XLSX writers for exports, with flat memory whatever the number of rows.

CSV is UTF-8 with a byte-order mark (so that Excel opens Japanese text correctly) and CRLF line
ends; numbers are written plainly (``1234.50``), dates as ``YYYY-MM-DD`` and times in Asia/Tokyo as
``YYYY-MM-DD HH:MM:SS``. XLSX uses openpyxl's write-only mode: rows go to a temporary file as they
come, numbers are number cells, dates and times are date cells with a format.

Text is what users typed (an organization's name, a title, a reason), so every text cell of every
export is made safe here, and nowhere else needs to think of it: characters XML cannot
hold become U+FFFD (an old row with a control character never makes an export fail), and a text
that a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@``, tab, carriage return first)
is neutralised: in CSV with a leading apostrophe, in XLSX as a string cell marked as text
(``quotePrefix``), never a formula cell. Numbers stay number cells, a negative one too; a string in a
number column is treated as text.
"""

from __future__ import annotations

import csv
import datetime
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone

from apps.core.text import MAYBE_FORMULA_FIRST, XML_ILLEGAL, escape_formula, formula_like, sanitize_cell_text

BOM = "\ufeff"
TEXT, INT, DECIMAL, DATE, DATETIME = "text", "int", "decimal", "date", "datetime"


@dataclass(frozen=True)
class Column:
    """One column of an export. ``get`` takes the row's object; or, when ``paths`` are given (ORM
    lookups), the values of those paths, fetched with ``values_list`` (no model instances: the
    fast path of the large lists)."""

    key: str
    header: Any  # a lazily translated string
    get: Callable[..., Any]
    kind: str = TEXT
    paths: tuple = ()


_NUMBERS = (int, float, Decimal)


_has_illegal = XML_ILLEGAL.search


def cell_text(value) -> str:
    """A text cell's content: characters XML cannot hold replaced (see the module's docstring)."""
    return sanitize_cell_text(value if isinstance(value, str) else str(value))


def csv_text(value) -> str:
    """A value of a text column as CSV text: numbers plainly, formula-like text escaped. (What XML
    cannot hold is replaced per line, by ``csv_lines``: one search per row, not per cell.)"""
    if type(value) is str:
        return escape_formula(value) if value and value[0] in MAYBE_FORMULA_FIRST else value
    if isinstance(value, _NUMBERS) and not isinstance(value, bool):
        return format(value, "f") if isinstance(value, Decimal) else str(value)
    return escape_formula(str(value))


def value_rows(columns: list[Column], rows) -> Iterator[list]:
    """The values of each row, column by column, from a queryset or a list of objects."""
    if not isinstance(rows, list) and columns and all(c.paths for c in columns):
        flat = [path for c in columns for path in c.paths]
        bounds, start = [], 0
        for c in columns:
            bounds.append((c.get, start, start + len(c.paths)))
            start += len(c.paths)
        for values in rows.values_list(*flat).iterator(chunk_size=5000):
            yield [get(*values[a:b]) for get, a, b in bounds]
        return
    iterable = iter(rows) if isinstance(rows, list) else rows.iterator(chunk_size=2000)
    for row in iterable:
        yield [c.get(row) for c in columns]


def _local(value: datetime.datetime) -> datetime.datetime:
    return timezone.localtime(value) if timezone.is_aware(value) else value


def csv_value(value, kind: str) -> str:
    if value is None:
        return ""
    if kind == DATETIME and isinstance(value, datetime.datetime):
        return _local(value).strftime("%Y-%m-%d %H:%M:%S")
    if kind == DATE and isinstance(value, datetime.date):
        return value.isoformat()
    return sanitize_cell_text(csv_text(value))


class _Echo:
    """A file-like object whose write() returns what it was given (csv.writer → generator)."""

    def write(self, value: str) -> str:
        return value


def _csv_formatter(kind: str, tz) -> Callable[[Any], str]:
    """A function that formats one column's values (chosen once per column, not per value)."""
    if kind == DATETIME:
        return lambda v: (
            ""
            if v is None
            else (v.astimezone(tz) if v.tzinfo else v).strftime("%Y-%m-%d %H:%M:%S")
            if isinstance(v, datetime.datetime)
            else csv_text(v)
        )
    if kind == DATE:
        return lambda v: "" if v is None else (v.isoformat() if isinstance(v, datetime.date) else csv_text(v))
    return _csv_text_cell


def _csv_text_cell(v) -> str:
    if v.__class__ is str:  # the common case first, without another call (millions of cells)
        return escape_formula(v) if v and v[0] in MAYBE_FORMULA_FIRST else v
    return "" if v is None else csv_text(v)


def csv_lines(columns: list[Column], rows) -> Iterator[str]:
    """The CSV text, line by line, BOM first: for a StreamingHttpResponse or a file."""
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    tz = timezone.get_current_timezone()
    formatters = [_csv_formatter(c.kind, tz) for c in columns]
    yield BOM + writer.writerow([str(c.header) for c in columns])
    for values in value_rows(columns, rows):
        line = writer.writerow([f(v) for f, v in zip(formatters, values, strict=True)])
        # Quoting adds no such character and U+FFFD starts no formula: cleaning the line is
        # cleaning each cell. (A lone surrogate would stop the stream's UTF-8 encoding halfway.)
        yield line if _has_illegal(line) is None else sanitize_cell_text(line)


def xlsx_value(value, kind: str):
    if value is None:
        return None
    if kind == DATETIME and isinstance(value, datetime.datetime):
        return _local(value).replace(tzinfo=None)  # Excel has no time zones: Tokyo wall time
    if kind in (INT, DECIMAL, DATE) and not isinstance(value, str):
        return value
    return cell_text(value)


def write_xlsx(path, columns: list[Column], rows, *, title: str, on_row=None) -> int:
    """Write ``rows`` to an XLSX file at ``path``; returns the number of rows. ``on_row(n)`` is
    called after each row (progress). Numbers are number cells; dates and times are date cells
    (openpyxl gives them its date formats); the header is bold."""
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
    tz = timezone.get_current_timezone()

    def text(v):
        if v is None:
            return None
        if type(v) is str and v and v[0] not in MAYBE_FORMULA_FIRST and _has_illegal(v) is None:
            return v  # the common case, checked cheaply
        if isinstance(v, _NUMBERS) and not isinstance(v, bool):
            return v  # a number in a text column is a number cell
        content = cell_text(v)
        if not formula_like(content):
            return content
        cell = WriteOnlyCell(sheet, value=content)  # openpyxl makes "=…" a formula: undo that
        cell.data_type = "s"
        cell.quotePrefix = True  # what Excel itself stores for text typed after an apostrophe
        return cell

    def naive_tokyo(v):  # Excel has no time zones: the wall time in Japan
        if isinstance(v, datetime.datetime):
            return v.astimezone(tz).replace(tzinfo=None) if v.tzinfo else v
        return text(v)

    def same_unless_text(v):
        return text(v) if isinstance(v, str) else v

    converters = [
        naive_tokyo if c.kind == DATETIME else (same_unless_text if c.kind in (INT, DECIMAL, DATE) else text)
        for c in columns
    ]
    count = 0
    for values in value_rows(columns, rows):
        sheet.append([f(v) for f, v in zip(converters, values, strict=True)])
        count += 1
        if on_row is not None:
            on_row(count)
    workbook.save(path)
    return count
