"""Exports of the lists: same rows as the page for the same filters, same permissions (404 for
everybody else), CSV with a BOM and headers in the user's language, XLSX with typed cells, and
large lists written in the background with progress, then downloaded by their owner only."""

import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from apps.governance.models import AuditEvent
from apps.reports import services
from apps.reports.models import ExportJob
from tests.factories import (
    OrganizationFactory,
    OrgRoleFactory,
    PoolPeriodFactory,
    ProviderOperatorFactory,
    QuotaGrantFactory,
    UsageRecordFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def grants():
    """Five grants of two organizations on two pools; one of them with usage."""
    tokyo = PoolPeriodFactory(pool__code="tokyo-h200", capacity_gpu_hours="5000.00")
    osaka = PoolPeriodFactory(pool__code="osaka-b200", pool__gpu_class="B200", capacity_gpu_hours="5000.00")
    kyoto = OrganizationFactory(slug="kyoto-u", name_ja="京都大学", name_en="Kyoto University")
    medi = OrganizationFactory(slug="medi-lab", name_ja="メディラボ", name_en="Medi Lab")
    made = [
        QuotaGrantFactory(organization=kyoto, period=tokyo, gpu_hours="100.50"),
        QuotaGrantFactory(organization=kyoto, period=osaka, gpu_hours="200.00"),
        QuotaGrantFactory(organization=medi, period=tokyo, gpu_hours="300.00"),
        QuotaGrantFactory(organization=medi, period=osaka, gpu_hours="400.00"),
        QuotaGrantFactory(organization=medi, period=tokyo, gpu_hours="50.00", state="active"),
    ]
    UsageRecordFactory(grant=made[0], gpu_hours="12.5000")
    return {"kyoto": kyoto, "medi": medi, "tokyo": tokyo, "osaka": osaka, "grants": made}


def _csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    text = body.decode("utf-8")
    assert text.startswith("\ufeff"), "CSV starts with a byte-order mark for Excel"
    return list(csv.reader(io.StringIO(text[1:])))


def _client(user, language=None) -> Client:
    client = Client()
    if language:
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    client.force_login(user)
    return client


# --- same rows as the list, same filters ------------------------------------------------------------


def test_the_staff_grant_export_has_the_rows_of_the_filtered_list(staff_client, grants):
    query = "?organization=medi-lab&pool=tokyo-h200"
    page = staff_client.get(reverse("providers:grant-list") + query)
    on_screen = [str(g.public_id) for g in page.context["grants"]]
    assert len(on_screen) == 2
    assert "/exports/grants.csv?organization=medi-lab&amp;pool=tokyo-h200" in page.content.decode()

    rows = _csv(staff_client.get(reverse("reports:export", args=["grants", "csv"]) + query))
    header, body = rows[0], rows[1:]
    assert header[0] == "割当ID"  # Japanese first
    assert [row[0] for row in body] == on_screen  # same rows, same order
    by_id = {row[0]: dict(zip(header, row, strict=True)) for row in body}
    active = grants["grants"][4]
    assert by_id[str(active.public_id)]["割当 GPU 時間"] == "50.00"
    assert by_id[str(active.public_id)]["有効期間の開始"] == "2026-04-01"


def test_headers_follow_the_users_language(grants):
    user = OrgRoleFactory(organization=grants["kyoto"], role="member").user
    url = reverse("reports:export", args=["org-grants", "csv"]) + "?org=kyoto-u"
    rows = _csv(_client(user, "en").get(url))
    assert rows[0][:3] == ["Provider", "Pool", "GPU class"]
    assert {row[1] for row in rows[1:]} == {"tokyo-h200", "osaka-b200"}
    first = next(row for row in rows[1:] if row[1] == "tokyo-h200")
    assert first[5:7] == ["100.50", "12.5000"]  # granted, used


def test_xlsx_has_typed_cells(staff_client, grants):
    response = staff_client.get(reverse("reports:export", args=["grants", "xlsx"]) + "?organization=kyoto-u")
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert response["Content-Disposition"].startswith('attachment; filename="grants-')
    workbook = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    sheet = workbook.active
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    assert sheet.cell(1, 1).font.bold
    assert len(rows) == 3
    col = {name: i for i, name in enumerate(header)}
    row = next(r for r in rows[1:] if r[col["プール"]] == "tokyo-h200")
    assert row[col["割当 GPU 時間"]] == pytest.approx(100.5)
    assert isinstance(row[col["割当 GPU 時間"]], int | float | Decimal)
    assert isinstance(row[col["有効期間の開始"]], datetime.datetime)  # a date cell
    assert row[col["有効期間の開始"]].date() == datetime.date(2026, 4, 1)
    assert sheet.cell(2, col["有効期間の開始"] + 1).number_format == "yyyy-mm-dd"


def test_round_results_and_applications_exports(staff_client, staff):
    from apps.allocations import services as rounds
    from tests.factories import AllocationRoundFactory, ApplicationFactory

    PoolPeriodFactory(pool__code="tokyo-h200", capacity_gpu_hours="100.00")
    allocation_round = AllocationRoundFactory()
    for slug in ("a-lab", "b-lab"):
        org = OrganizationFactory(slug=slug)
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
    page = staff_client.get(reverse("allocations:round-detail", args=[allocation_round.pk])).content.decode()
    assert f"/exports/round-results.csv?round={allocation_round.pk}" in page
    rows = _csv(
        staff_client.get(
            reverse("reports:export", args=["round-results", "csv"]) + f"?round={allocation_round.pk}"
        )
    )
    assert [(r[1], r[4], r[8]) for r in rows[1:]] == [
        ("a-lab", "tokyo-h200", "50"),
        ("b-lab", "tokyo-h200", "50"),
    ]

    ApplicationFactory(status="submitted", name_ja="株式会社テスト")
    rows = _csv(staff_client.get(reverse("reports:export", args=["applications", "csv"])))
    assert [r[0] for r in rows[1:]] == ["株式会社テスト"]


# --- permissions --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "grants.csv",
        "applications.xlsx",
        "org-grants.csv?org=medi-lab",  # another organization's grants
        "org-grants.csv?org=nobody",
        "provider-grants.csv?provider=kddi",  # operator of another provider
        "round-results.csv?round=1",
        "round-results.csv?round=x",
        "unknown.csv",
        "grants.pdf",
    ],
)
def test_what_a_user_may_not_see_is_404(grants, path):
    user = OrgRoleFactory(organization=grants["kyoto"], role="admin").user
    ProviderOperatorFactory(user=user)  # operator of "sakura", not of "kddi"
    assert _client(user).get("/exports/" + path).status_code == 404


def test_anonymous_users_are_sent_to_log_in(grants):
    response = Client().get(reverse("reports:export", args=["org-grants", "csv"]) + "?org=kyoto-u")
    assert response.status_code == 302 and "/accounts/login/" in response.url


def test_the_provider_operator_exports_only_its_pools(grants):
    operator = ProviderOperatorFactory(provider=grants["tokyo"].pool.provider)
    rows = _csv(_client(operator.user).get("/exports/provider-grants.csv?provider=" + operator.provider.slug))
    assert len(rows) == 6  # every grant here is on that provider's pools


# --- large lists: in the background ---------------------------------------------------------------------


def test_a_large_export_runs_in_the_background_with_progress_and_expires(
    settings, grants, staff_client, staff, django_capture_on_commit_callbacks
):
    settings.EXPORT_STREAM_MAX_ROWS = 2
    url = reverse("reports:export", args=["grants", "csv"]) + "?state=pending"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.get(url)
    job = ExportJob.objects.get()
    assert response.status_code == 302 and response.url == job.get_absolute_url()
    assert (job.status, job.total_rows, job.query) == ("pending", 4, "state=pending")
    assert AuditEvent.objects.filter(action="export.requested").count() == 1

    # While waiting, the page polls its progress partial.
    partial = staff_client.get(job.get_absolute_url(), **HX)
    assert 'hx-trigger="every 1s"' in partial.content.decode() and "<html" not in partial.content.decode()
    assert staff_client.get(reverse("reports:export-download", args=[job.public_id])).status_code == 404

    for callback in callbacks:  # the worker (eager here)
        callback()
    job.refresh_from_db()
    assert (job.status, job.rows_written, job.progress) == ("done", 4, 100)
    page = staff_client.get(job.get_absolute_url()).content.decode()
    assert 'hx-trigger="every 1s"' not in page
    download = staff_client.get(reverse("reports:export-download", args=[job.public_id]))
    background = _csv(download)

    settings.EXPORT_STREAM_MAX_ROWS = 5000
    assert background == _csv(staff_client.get(url))  # the same file as a streamed export

    # Nobody else can see or download it.
    other = _client(UserFactory(is_staff=False))
    assert other.get(job.get_absolute_url()).status_code == 404
    assert other.get(reverse("reports:export-download", args=[job.public_id])).status_code == 404

    # It expires: the file is deleted and the download is gone.
    path = job.file.path
    assert services.export_jobs_expire(now=timezone.now() + datetime.timedelta(hours=25)) == 1
    job.refresh_from_db()
    assert job.status == "expired" and not job.file
    import os

    assert not os.path.exists(path)
    assert staff_client.get(reverse("reports:export-download", args=[job.public_id])).status_code == 404


def test_a_background_export_of_a_user_who_lost_access_fails(
    settings, grants, django_capture_on_commit_callbacks
):
    settings.EXPORT_STREAM_MAX_ROWS = 0
    role = OrgRoleFactory(organization=grants["kyoto"], role="member")
    client = _client(role.user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.get(reverse("reports:export", args=["org-grants", "xlsx"]) + "?org=kyoto-u")
    role.delete()
    for callback in callbacks:
        callback()
    job = ExportJob.objects.get()
    assert job.status == "failed" and not job.file
    assert job.error == "この一覧を閲覧する権限がなくなりました。"  # in the language of the request


def test_xlsx_in_the_background(settings, grants, staff_client, django_capture_on_commit_callbacks):
    settings.EXPORT_STREAM_MAX_ROWS = 1
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.get(reverse("reports:export", args=["grants", "xlsx"]))
    job = ExportJob.objects.get()
    assert job.status == "done" and job.file_name.endswith(".xlsx")
    response = staff_client.get(reverse("reports:export-download", args=[job.public_id]))
    workbook = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)
    assert len(list(workbook.active.iter_rows(values_only=True))) == 6


def test_too_many_running_exports_are_refused(settings, grants, staff_client, staff):
    settings.EXPORT_STREAM_MAX_ROWS = 0
    for _ in range(settings.EXPORT_MAX_RUNNING_PER_USER):
        ExportJob.objects.create(user=staff, export="grants", format="csv", language="ja")
    response = staff_client.get(reverse("reports:export", args=["grants", "csv"]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("reports:export-list")
    assert ExportJob.objects.count() == settings.EXPORT_MAX_RUNNING_PER_USER


def test_the_member_directory_export_has_the_public_rows_of_the_filtered_list(client):
    OrganizationFactory(slug="robo-lab", name_ja="ロボ研究所", kind="startup")
    OrganizationFactory(slug="hidden-lab", name_ja="ロボ非公開", kind="startup", is_listed=False)
    OrganizationFactory(slug="big-corp", name_ja="大企業", kind="enterprise")
    page = client.get(reverse("organizations:directory"), {"kind": "startup"})
    on_screen = [o.slug for o in page.context["page"]]
    assert "/exports/members.csv?kind=startup" in page.content.decode()
    rows = _csv(client.get(reverse("reports:export", args=["members", "csv"]), {"kind": "startup"}))
    assert [r[1] for r in rows[1:]] == on_screen == ["robo-lab"]


def test_a_program_calls_ranking_export(staff_client):
    from tests.grants.factories import ApplicationFactory as GrantApplicationFactory

    application = GrantApplicationFactory(status="submitted", title="日本語 LLM の PoC")
    url = reverse("grants:staff-call", args=[application.call_id])
    assert f"/exports/call-ranking.csv?call={application.call_id}" in staff_client.get(url).content.decode()
    rows = _csv(
        staff_client.get(
            reverse("reports:export", args=["call-ranking", "csv"]), {"call": application.call_id}
        )
    )
    assert [(r[0], r[1]) for r in rows[1:]] == [("1", "日本語 LLM の PoC")]
    member = _client(UserFactory())
    assert (
        member.get(
            reverse("reports:export", args=["call-ranking", "csv"]), {"call": application.call_id}
        ).status_code
        == 404
    )
    assert (
        staff_client.get(reverse("reports:export", args=["call-ranking", "csv"]), {"call": "x"}).status_code
        == 404
    )


def test_rounds_drifts_and_working_groups_exports(staff_client, grants):
    from apps.providers.models import GrantDrift
    from tests.factories import AllocationRoundFactory
    from tests.workinggroups.factories import WorkingGroupFactory

    AllocationRoundFactory(name="2026年度 第1四半期")
    page = staff_client.get(reverse("allocations:round-list"))
    assert "/exports/rounds.csv" in page.content.decode()
    rows = _csv(staff_client.get(reverse("reports:export", args=["rounds", "csv"])))
    assert [r[0] for r in rows[1:]] == [r.name for r in page.context["rounds"]]

    grant = grants["grants"][0]
    GrantDrift.objects.create(
        grant=grant, grant_public_id=str(grant.public_id), provider=grant.pool.provider, kind="missing"
    )
    rows = _csv(staff_client.get(reverse("reports:export", args=["drifts", "csv"])))
    assert [(r[1], r[3]) for r in rows[1:]] == [(str(grant.public_id), grant.pool.code)]

    WorkingGroupFactory(name_ja="医療AI分科会", slug="medical-ai", visibility="public")
    WorkingGroupFactory(name_ja="非公開の分科会", slug="secret-wg", visibility="private")
    visitor = Client()
    page = visitor.get(reverse("workinggroups:directory"))
    on_screen = [g.slug for g in page.context["page"]]
    rows = _csv(visitor.get(reverse("reports:export", args=["groups", "csv"])))
    assert [r[1] for r in rows[1:]] == on_screen == ["medical-ai"]  # never the private group

    member = _client(UserFactory())
    for name in ("rounds", "drifts"):
        assert member.get(reverse("reports:export", args=[name, "csv"])).status_code == 404


def test_streamed_exports_are_audited_and_a_vanished_file_is_404(
    settings, grants, staff_client, staff, client
):
    staff_client.get(reverse("reports:export", args=["grants", "csv"]) + "?state=pending")
    event = AuditEvent.objects.get(action="export.downloaded")
    assert (event.actor_id, event.after["export"], event.after["query"], event.after["rows"]) == (
        staff.pk,
        "grants",
        "state=pending",
        4,
    )
    _csv(Client().get(reverse("reports:export", args=["members", "csv"])))  # a visitor: nobody to name
    assert AuditEvent.objects.filter(action="export.downloaded").count() == 1

    settings.EXPORT_STREAM_MAX_ROWS = 0
    staff_client.get(reverse("reports:export", args=["grants", "csv"]))
    job = ExportJob.objects.get()
    services.export_job_run(job_id=job.pk)
    job.refresh_from_db()
    job.file.storage.delete(job.file.name)
    assert staff_client.get(reverse("reports:export-download", args=[job.public_id])).status_code == 404
