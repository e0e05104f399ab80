"""The usage lists (by month; records) and the audit log: filters, htmx partials, exports of the
same rows, permissions, and query counts that do not grow with the rows."""

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from apps.providers import services as providers
from tests.factories import (
    OrganizationFactory,
    OrgRoleFactory,
    PoolPeriodFactory,
    QuotaGrantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def _rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.reader(io.StringIO(body.decode("utf-8")[1:])))


def _ingest(grant, n, month="2026-04", start=0):
    providers.usage_ingest(
        provider=grant.pool.provider,
        records=[
            {
                "record_id": f"{grant.pk}-{month}-{i}",
                "grant_id": str(grant.public_id),
                "gpu_hours": "1.5",
                "started_at": f"{month}-10T10:00:00+09:00",
                "ended_at": f"{month}-10T11:30:00+09:00",
            }
            for i in range(start, start + n)
        ],
    )


@pytest.fixture
def usage():
    period = PoolPeriodFactory(pool__code="tokyo-h200", capacity_gpu_hours="10000.00")
    kyoto = OrganizationFactory(slug="kyoto-u")
    medi = OrganizationFactory(slug="medi-lab")
    g1 = QuotaGrantFactory(organization=kyoto, period=period)
    g2 = QuotaGrantFactory(organization=medi, period=period)
    _ingest(g1, 3, "2026-04")
    _ingest(g1, 2, "2026-05")
    _ingest(g2, 4, "2026-05")
    return {"kyoto": kyoto, "medi": medi}


def test_usage_by_month_for_staff_with_filters_and_the_same_export(staff_client, usage):
    url = reverse("reports:usage-months")
    page = staff_client.get(url, {"month": "2026-05"})
    rows = [(m.grant.organization.slug, m.gpu_hours, m.records) for m in page.context["page"]]
    assert sorted(rows) == [("kyoto-u", 3, 2), ("medi-lab", 6, 4)]
    partial = staff_client.get(url, {"month": "2026-05", "organization": "medi-lab"}, **HX)
    assert "<html" not in partial.content.decode() and "medi-lab" in partial.content.decode()
    exported = _rows(
        staff_client.get(reverse("reports:export", args=["usage-months", "csv"]), {"month": "2026-05"})
    )
    assert [(r[2], r[7], r[8]) for r in exported[1:]] == [(s, f"{h:.4f}", str(n)) for s, h, n in rows]
    bad = staff_client.get(url, {"month": "2026-13"})
    assert bad.status_code == 200 and len(bad.context["page"].object_list) == 3  # the bad filter is ignored


def test_a_member_sees_only_its_organizations_usage(usage):
    user = OrgRoleFactory(organization=usage["kyoto"], role="member").user
    client = Client()
    client.force_login(user)
    page = client.get(reverse("reports:org-usage", args=["kyoto-u"]))
    assert {m.grant.organization.slug for m in page.context["page"]} == {"kyoto-u"}
    assert "organization" not in page.context["form"].fields
    exported = _rows(client.get(reverse("reports:export", args=["usage-months", "csv"]), {"org": "kyoto-u"}))
    assert {r[2] for r in exported[1:]} == {"kyoto-u"} and len(exported) == 3
    assert client.get(reverse("reports:org-usage", args=["medi-lab"])).status_code == 404
    assert (
        client.get(reverse("reports:export", args=["usage-months", "csv"]), {"org": "medi-lab"}).status_code
        == 404
    )
    for name in ("usage-months", "usage-records", "audit"):
        assert client.get(reverse("reports:export", args=[name, "csv"])).status_code == 404
    for page_name in ("usage-months", "usage-records", "audit-log"):
        assert client.get(reverse(f"reports:{page_name}")).status_code == 404


def test_usage_records_list_and_export(staff_client, usage):
    page = staff_client.get(reverse("reports:usage-records"), {"organization": "kyoto-u", "month": "2026-04"})
    on_screen = [r.record_id for r in page.context["page"]]
    assert len(on_screen) == 3
    exported = _rows(
        staff_client.get(
            reverse("reports:export", args=["usage-records", "csv"]),
            {"organization": "kyoto-u", "month": "2026-04"},
        )
    )
    assert [r[1] for r in exported[1:]] == on_screen
    assert exported[1][5].startswith("2026-04-10 10:00:00")  # Japan time


def test_audit_log_page_filters_and_export(staff_client, usage):
    page = staff_client.get(reverse("reports:audit-log"), {"action": "grant."})
    actions = {e.action for e in page.context["page"]}
    assert actions == {"grant.created"}
    exported = _rows(staff_client.get(reverse("reports:export", args=["audit", "csv"]), {"action": "grant."}))
    assert [r[0] for r in exported[1:]] == [str(e.pk) for e in page.context["page"]]
    assert exported[1][3] == "grant.created" and '"gpu_hours"' in exported[1][8]
    anonymous = Client().get(reverse("reports:audit-log"))
    assert anonymous.status_code == 302
    other = Client()
    other.force_login(UserFactory())
    assert other.get(reverse("reports:audit-log")).status_code == 404


def test_list_query_counts_do_not_grow_with_the_rows(staff_client, usage, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for extra in (0, 30):
        if extra:
            period = PoolPeriodFactory(pool__code="osaka-h200", capacity_gpu_hours="10000.00")
            for _ in range(extra // 10):
                _ingest(QuotaGrantFactory(period=period), 10, "2026-06")
        for name in ("reports:usage-months", "reports:usage-records", "reports:audit-log"):
            with CaptureQueriesContext(connection) as queries:
                staff_client.get(reverse(name))
            counts.append((name, extra, len(queries)))
    by_page = {}
    for name, _extra, n in counts:
        by_page.setdefault(name, set()).add(n)
    assert all(len(ns) == 1 for ns in by_page.values()), counts
