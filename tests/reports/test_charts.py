"""Charts on other apps' pages: the member dashboard (granted vs used per month, for each of the
user's organizations, in a fixed number of queries) and pool utilisation for providers and staff."""

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.providers import services as providers
from tests.factories import (
    OrganizationFactory,
    OrgRoleFactory,
    PoolPeriodFactory,
    ProviderOperatorFactory,
    QuotaGrantFactory,
)

pytestmark = pytest.mark.django_db


def _chart(html: str, chart_id: str) -> dict:
    start = html.index(f'<script id="{chart_id}" type="application/json">') + len(
        f'<script id="{chart_id}" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def _member_with_orgs(n: int):
    user = OrgRoleFactory(role="member").user
    period = PoolPeriodFactory(capacity_gpu_hours="100000.00")
    for k in range(n):
        org = OrganizationFactory() if k else user.org_roles.first().organization
        if k:
            OrgRoleFactory(organization=org, user=user, role="member")
        grant = QuotaGrantFactory(organization=org, period=period, gpu_hours="910.00")
        providers.usage_ingest(
            provider=grant.pool.provider,
            records=[
                {
                    "record_id": f"d-{grant.pk}",
                    "grant_id": str(grant.public_id),
                    "gpu_hours": "12",
                    "started_at": "2026-05-02T09:00:00+09:00",
                    "ended_at": "2026-05-02T10:00:00+09:00",
                }
            ],
        )
    return user


def test_the_dashboard_charts_usage_against_quota_per_month(settings, monkeypatch):
    import datetime

    from django.utils import timezone

    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: datetime.date(2026, 6, 1))
    user = _member_with_orgs(1)
    client = Client()
    client.force_login(user)
    html = client.get(reverse("dashboard")).content.decode()
    org = user.org_roles.first().organization
    spec = _chart(html, f"usage-chart-{org.pk}")
    assert spec["labels"][:3] == ["2026-04", "2026-05", "2026-06"]
    granted, used = spec["series"][0]["data"], spec["series"][1]["data"]
    assert granted[:3] == [300.0, 310.0, 300.0]  # 910 over 91 days
    assert used[:3] == [0.0, 12.0, 0.0]
    assert reverse("reports:org-statement", args=[org.slug]) in html


def test_dashboard_queries_do_not_grow_with_the_organizations(monkeypatch):
    import datetime

    from django.utils import timezone

    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: datetime.date(2026, 6, 1))
    counts = []
    for n in (1, 3):
        client = Client()
        client.force_login(_member_with_orgs(n))
        client.get(reverse("dashboard"))
        with CaptureQueriesContext(connection) as queries:
            client.get(reverse("dashboard"))
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_provider_console_charts_pool_utilisation(monkeypatch):
    import datetime

    from django.utils import timezone

    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: datetime.date(2026, 5, 1))
    period = PoolPeriodFactory(pool__code="tokyo-h200", capacity_gpu_hours="1000.00")
    QuotaGrantFactory(period=period, gpu_hours="250.00")
    operator = ProviderOperatorFactory(provider=period.pool.provider)
    client = Client()
    client.force_login(operator.user)
    html = client.get(
        reverse("providers:provider-console", args=[period.pool.provider.slug])
    ).content.decode()
    spec = _chart(html, "pool-chart")
    assert spec["labels"] == ["tokyo-h200 2026-04"]
    assert [s["data"] for s in spec["series"]] == [[1000.0], [250.0], [0.0]]
