"""Grant lists compute each grant's usage and sync state for the rows of the page only: the page's
query (with its OFFSET) carries no per-grant subquery, the figures shown are those the annotated
selector (exports, API) gives, and totals and sync counts still cover every grant."""

import datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.providers import selectors
from apps.providers.models import GrantOutbox, QuotaGrant, UsageMonth
from tests.factories import OrganizationFactory, OrgRoleFactory, PoolPeriodFactory, ProviderFactory
from tests.providers.test_views import _seed

pytestmark = pytest.mark.django_db
N = 120  # three pages of 50


@pytest.fixture
def period():
    today = timezone.localdate()
    return PoolPeriodFactory(
        pool__provider=ProviderFactory(slug="sakura", name_ja="さくら", name_en="Sakura"),
        starts_on=today.replace(day=1),
        ends_on=today.replace(day=1, year=today.year + 1),
        capacity_gpu_hours="1000000",
    )


@pytest.fixture
def org(period):
    org = OrganizationFactory(slug="kyoto-u")
    _seed(N, period=period, org=org)
    # Some grants still on their way or retried many times, so that every sync state is shown.
    for i, grant in enumerate(QuotaGrant.objects.filter(organization=org).order_by("pk")[:12]):
        GrantOutbox.objects.create(
            grant=grant,
            provider=period.pool.provider,
            operation="apply",
            version=1,
            idempotency_key=f"k-{grant.pk}",
            payload={},
            attempts=settings.OUTBOX_FAILING_AFTER_ATTEMPTS if i % 2 else 0,
            next_attempt_at=timezone.now() + datetime.timedelta(hours=1),
        )
    return org


def _pages(client, url, pages=3, **params):
    shown = {}
    for number in range(1, pages + 1):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url, {**params, "page": number})
        assert response.status_code == 200
        offset_queries = [q["sql"] for q in captured.captured_queries if "OFFSET" in q["sql"]]
        if response.context["page"].number > 1:
            assert offset_queries, "the page is read with OFFSET"
        for sql in offset_queries if not params.get("sync") else []:  # (a sync filter evaluates it)
            # the skipped rows never run the per-grant subqueries
            assert "providers_usagemonth" not in sql and "providers_grantoutbox" not in sql, sql
        for grant in response.context["grants"]:
            shown[grant.pk] = (grant.used_hours, grant.sync_state, grant.outbox_attempts, grant.sync_label)
        if not response.context["page"].has_next():
            break
    return shown


def _annotated(queryset):
    return {
        g.pk: (g.used_hours, g.sync_state, g.outbox_attempts, selectors.SyncState.labels[g.sync_state])
        for g in queryset
    }


def test_member_grant_list_figures_come_from_the_page_only(client, org):
    client.force_login(OrgRoleFactory(organization=org, role="admin").user)
    shown = _pages(client, reverse("providers:org-grants", args=[org.slug]))
    assert shown == _annotated(selectors.grant_list_for_org(organization=org))
    assert len(shown) == N
    assert {state for _, state, _, _ in shown.values()} >= {"failing", "drifted", "sending"}


def test_staff_grant_list_figures_and_sync_filter(staff_client, org):
    shown = _pages(staff_client, reverse("providers:grant-list"))
    assert shown == _annotated(selectors.grant_list())
    for state in {row[1] for row in shown.values()}:
        filtered = _pages(staff_client, reverse("providers:grant-list"), sync=state)
        expected = {pk: row for pk, row in shown.items() if row[1] == state}
        assert filtered == expected and expected, state


def test_totals_and_sync_counts_cover_every_grant(staff_client, org):
    member = Client()
    member.force_login(OrgRoleFactory(organization=org, role="admin").user)
    response = member.get(reverse("providers:org-grants", args=[org.slug]))
    totals = response.context["totals"]
    grants = QuotaGrant.objects.filter(organization=org)
    assert totals["used"] == sum(
        (m.gpu_hours for m in UsageMonth.objects.filter(grant__organization=org)), Decimal(0)
    )
    assert totals["live"] == grants.filter(state__in=QuotaGrant.LIVE_STATES).count()
    counts = dict(
        (value, n) for value, _, n in staff_client.get(reverse("providers:grant-list")).context["sync_counts"]
    )
    annotated = _annotated(selectors.grant_list())
    for state in counts:
        assert counts[state] == sum(1 for row in annotated.values() if row[1] == state), state
