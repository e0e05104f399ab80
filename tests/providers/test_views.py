"""Pages for providers and grants: the secretariat's console, a member's grants, a provider
operator's console. Who may see what (404 for everybody else), htmx partials, inline actions going
through the services, and query counts that do not grow with the number of grants."""

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from apps.governance.models import AuditEvent
from apps.providers.models import GrantDrift, GrantOutbox, QuotaGrant
from tests.factories import (
    OrganizationFactory,
    OrgRoleFactory,
    PoolFactory,
    PoolPeriodFactory,
    ProviderFactory,
    ProviderOperatorFactory,
    QuotaGrantFactory,
    UsageRecordFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
S = QuotaGrant.State
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def sakura(db):
    return ProviderFactory(slug="sakura", name_ja="さくら", name_en="Sakura")


@pytest.fixture
def highreso(db):
    return ProviderFactory(slug="highreso", name_ja="ハイレゾ", name_en="HIGHRESO")


@pytest.fixture
def period(sakura):
    """A current capacity period (Q3 of the fiscal year 2026) on a Sakura H200 pool."""
    pool = PoolFactory(provider=sakura, code="sakura-h200-ishikari", gpu_class="H200")
    return PoolPeriodFactory(
        pool=pool,
        starts_on=datetime.date(2026, 10, 1),
        ends_on=datetime.date(2027, 1, 1),
        capacity_gpu_hours="1000.00",
    )


@pytest.fixture
def other_period(highreso):
    pool = PoolFactory(provider=highreso, code="highreso-h200-kagawa", gpu_class="H200")
    return PoolPeriodFactory(
        pool=pool,
        starts_on=datetime.date(2026, 10, 1),
        ends_on=datetime.date(2027, 1, 1),
        capacity_gpu_hours="1000.00",
    )


@pytest.fixture
def grant(period):
    return QuotaGrantFactory(
        period=period, gpu_hours="200", organization=OrganizationFactory(name_ja="量子AI株式会社")
    )


@pytest.fixture
def drift(grant):
    return GrantDrift.objects.create(
        provider=grant.pool.provider,
        grant=grant,
        grant_public_id=str(grant.public_id),
        kind=GrantDrift.Kind.MISSING,
        ours={"version": 1, "state": "active", "gpu_hours": "200.00"},
        theirs=None,
    )


def _staff_urls(grant, drift) -> list[str]:
    slug = grant.pool.provider.slug
    return [
        reverse("providers:provider-list"),
        reverse("providers:provider-detail", args=[slug]),
        reverse("providers:grant-list"),
        reverse("providers:grant-create"),
        reverse("providers:grant-detail", args=[grant.public_id]),
        reverse("providers:drift-list"),
    ]


def _staff_posts(grant, drift) -> list[tuple[str, dict]]:
    return [
        (reverse("providers:provider-reconcile", args=[grant.pool.provider.slug]), {}),
        (reverse("providers:grant-resend", args=[grant.public_id]), {}),
        (reverse("providers:grant-revoke", args=[grant.public_id]), {"reason": "契約終了"}),
        (reverse("providers:drift-resend", args=[drift.pk]), {}),
        (reverse("providers:drift-accept", args=[drift.pk]), {"note": "意図どおり"}),
        (reverse("providers:drift-bulk"), {"action": "accept", "note": "意図どおり", "drift": [drift.pk]}),
        (reverse("providers:drift-bulk"), {"action": "resend", "all_matching": "on"}),
        (reverse("providers:grant-create"), {}),
    ]


# --- who sees what -------------------------------------------------------------------------------


def test_staff_pages_render_in_japanese(staff_client, grant, drift, other_period):
    UsageRecordFactory(grant=grant, gpu_hours="50")
    expected = {
        "providers:provider-list": ["プロバイダ", "sakura-h200-ishikari", "<meter"],
        "providers:grant-list": ["量子AI株式会社", "組織", "状態"],
        "providers:drift-list": ["量子AI株式会社"],
    }
    for url in _staff_urls(grant, drift):
        response = staff_client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert '<html lang="ja"' in body
        assert ' style="' not in body  # CSP: no inline styles
    for name, needles in expected.items():
        body = staff_client.get(reverse(name)).content.decode()
        for needle in needles:
            assert needle in body, (name, needle)


def test_provider_pages_never_show_secrets(admin_client, sakura, settings):
    settings.PROVIDER_SECRETS = {"sakura": "very-secret-value"}
    sakura.api_base_url, sakura.api_key_id = "https://api.sakura.example/v1", "key-1"
    sakura.save()
    for url in (
        reverse("providers:provider-list"),
        reverse("providers:provider-detail", args=["sakura"]),
        reverse("providers:provider-console", args=["sakura"]),
        reverse("admin:providers_provider_change", args=[sakura.pk]),
    ):
        response = admin_client.get(url)
        body = response.content.decode()
        assert response.status_code == 200, url
        assert "very-secret-value" not in body, url


def test_outsider_gets_404_on_every_staff_page_partial_and_action(client, grant, drift):
    client.force_login(UserFactory())
    for url in _staff_urls(grant, drift):
        assert client.get(url).status_code == 404, url
        assert client.get(url, **HX).status_code == 404, url
    for url, data in _staff_posts(grant, drift):
        assert client.post(url, data).status_code == 404, url
        assert client.post(url, data, **HX).status_code == 404, url
    grant.refresh_from_db()
    drift.refresh_from_db()
    assert grant.state == S.PENDING and grant.version == 1 and drift.resolved_at is None


def test_anonymous_visitors_are_sent_to_log_in(client, grant, drift):
    urls = [
        *_staff_urls(grant, drift),
        reverse("providers:org-grants", args=[grant.organization.slug]),
        reverse("providers:provider-console", args=["sakura"]),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def test_operator_sees_only_its_own_provider(client, grant, other_period):
    QuotaGrantFactory(period=other_period, organization=OrganizationFactory(name_ja="他社向け株式会社"))
    operator = ProviderOperatorFactory(provider=grant.pool.provider).user
    client.force_login(operator)

    response = client.get(reverse("providers:provider-console", args=["sakura"]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "量子AI株式会社" in body and str(grant.public_id) in body
    assert "他社向け株式会社" not in body and "highreso-h200-kagawa" not in body
    assert reverse("providers:provider-console", args=["sakura"]) in body  # its navigation link
    assert reverse("providers:provider-list") not in body  # no staff navigation

    for url in (
        reverse("providers:provider-console", args=["highreso"]),
        reverse("providers:provider-console", args=["no-such-provider"]),
        reverse("providers:provider-detail", args=["sakura"]),
        reverse("providers:grant-list"),
        reverse("providers:grant-detail", args=[grant.public_id]),
        reverse("providers:org-grants", args=[grant.organization.slug]),
    ):
        assert client.get(url).status_code == 404, url
        assert client.get(url, **HX).status_code == 404, url


def test_operator_console_filters_through_an_htmx_partial(client, period):
    failed = QuotaGrantFactory(
        period=period, state=S.FAILED, organization=OrganizationFactory(name_ja="失敗社")
    )
    QuotaGrantFactory(period=period, state=S.ACTIVE, organization=OrganizationFactory(name_ja="同期社"))
    client.force_login(ProviderOperatorFactory(provider=period.pool.provider).user)
    url = reverse("providers:provider-console", args=["sakura"])
    response = client.get(url, {"sync": "failing"}, **HX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body and "HX-Request" in response["Vary"]
    assert "失敗社" in body and "同期社" not in body and str(failed.public_id) in body


def test_member_sees_its_grants_with_usage_and_outsiders_get_404(client, period, other_period):
    org = OrganizationFactory(name_ja="自社株式会社")
    mine = QuotaGrantFactory(organization=org, period=period, gpu_hours="200", state=S.ACTIVE)
    QuotaGrantFactory(organization=org, period=other_period, gpu_hours="300", state=S.ACTIVE)
    UsageRecordFactory(grant=mine, gpu_hours="30.5")
    UsageRecordFactory(grant=mine, gpu_hours="19.5")
    stranger = QuotaGrantFactory(period=period, gpu_hours="123.45", organization=OrganizationFactory())
    url = reverse("providers:org-grants", args=[org.slug])

    client.force_login(OrgRoleFactory(organization=org, role="member").user)
    response = client.get(url)
    body = response.content.decode()
    assert response.status_code == 200
    assert "sakura-h200-ishikari" in body and "highreso-h200-kagawa" in body
    assert "123.45" not in body and stranger.organization.name_ja not in body
    [row] = [g for g in response.context["grants"] if g.pk == mine.pk]
    assert row.used_hours == Decimal("50") and row.usage_pct == Decimal("25.0")
    totals = response.context["totals"]
    assert totals["granted"] == Decimal("500") and totals["used"] == Decimal("50") and totals["live"] == 2
    assert "<meter" in body

    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    client.force_login(OrgRoleFactory(role="owner").user)  # a member of another organization
    assert client.get(url).status_code == 404
    assert client.get(reverse("providers:org-grants", args=["no-such-org"])).status_code == 404


def test_member_pages_link_to_the_grants_page(client):
    org = OrganizationFactory()
    client.force_login(OrgRoleFactory(organization=org, role="owner").user)
    url = reverse("providers:org-grants", args=[org.slug])
    assert url in client.get(reverse("dashboard")).content.decode()
    assert url in client.get(reverse("organizations:org-manage", args=[org.slug])).content.decode()


def test_staff_navigation_links_to_providers_and_grants(staff_client):
    body = staff_client.get(reverse("dashboard")).content.decode()
    assert reverse("providers:provider-list") in body and reverse("providers:grant-list") in body


# --- the staff grant list -------------------------------------------------------------------------


def test_grant_list_filters_by_sync_state_provider_and_search_in_a_partial(
    staff_client, period, other_period, settings
):
    failed = QuotaGrantFactory(
        period=period, state=S.FAILED, organization=OrganizationFactory(name_ja="失敗社")
    )
    retrying = QuotaGrantFactory(period=period, organization=OrganizationFactory(name_ja="再送社"))
    GrantOutbox.objects.filter(grant=retrying).update(attempts=settings.OUTBOX_FAILING_AFTER_ATTEMPTS)
    QuotaGrantFactory(period=period, organization=OrganizationFactory(name_ja="送信中社"))
    synced = QuotaGrantFactory(
        period=period, state=S.ACTIVE, organization=OrganizationFactory(name_ja="同期社")
    )
    GrantOutbox.objects.filter(grant=synced).update(state="done")
    elsewhere = QuotaGrantFactory(period=other_period, organization=OrganizationFactory(name_ja="他社"))
    url = reverse("providers:grant-list")

    def names(**params):
        response = staff_client.get(url, params, **HX)
        assert response.status_code == 200 and "<html" not in response.content.decode()
        assert "HX-Request" in response["Vary"]
        return {g.organization.name_ja for g in response.context["grants"]}

    assert names(sync="failing") == {"失敗社", "再送社"}
    assert names(sync="sending") == {"送信中社", "他社"}
    assert names(sync="in_sync") == {"同期社"}
    assert names(state="failed") == {"失敗社"}
    assert names(provider="highreso") == {"他社"}
    assert names(pool="sakura-h200-ishikari", sync="sending") == {"送信中社"}
    assert names(organization=elsewhere.organization.slug) == {"他社"}
    assert names(q="同期") == {"同期社"}
    assert names(q=str(failed.public_id)[:8]) == {"失敗社"}
    assert names(sync="nonsense") == {"失敗社", "再送社", "送信中社", "同期社", "他社"}  # invalid: ignored
    assert names(sync="nonsense", provider="highreso") == {"他社"}  # ...but not the other filters
    page = staff_client.get(url).content.decode()
    assert "<html" in page and 'id="grant-results"' in page


def test_provider_list_shows_health_and_utilisation(staff_client, period, settings):
    from apps.providers.models import DeliveryAttempt

    g1 = QuotaGrantFactory(period=period, gpu_hours="600", state=S.ACTIVE)
    QuotaGrantFactory(period=period, gpu_hours="150", state=S.FAILED)
    revoked = QuotaGrantFactory(period=period, gpu_hours="100")
    QuotaGrant.objects.filter(pk=revoked.pk).update(state=S.REVOKED)  # frees its capacity
    outbox = GrantOutbox.objects.filter(grant=g1).first()
    DeliveryAttempt.objects.create(provider=period.pool.provider, outbox=outbox, ok=True)
    DeliveryAttempt.objects.create(provider=period.pool.provider, outbox=outbox, ok=False, error="HTTP 503")
    response = staff_client.get(reverse("providers:provider-list"))
    [provider] = [p for p in response.context["providers"] if p.slug == "sakura"]
    assert provider.last_success_at is not None
    assert (provider.attempts_1h, provider.errors_1h, provider.error_rate_1h) == (2, 1, Decimal("50.0"))
    assert provider.failing_count == 1 and provider.open_drifts == 0
    [pool] = provider.pool_list
    [p] = pool.period_list
    assert p.granted_hours == Decimal("750") and p.utilisation == Decimal("75.0") and p.free_hours == 250
    assert 'value="75.0"' in response.content.decode()


# --- actions ----------------------------------------------------------------------------------------


def test_resend_from_the_grant_list_moves_a_failed_grant_back_to_pending(staff_client, period):
    grant = QuotaGrantFactory(period=period, state=S.FAILED)
    url = reverse("providers:grant-resend", args=[grant.public_id])
    response = staff_client.post(url, **HX)
    body = response.content.decode()
    assert response.status_code == 200 and f'id="grant-{grant.pk}"' in body and "<html" not in body
    grant.refresh_from_db()
    assert grant.state == S.PENDING
    assert AuditEvent.objects.filter(action="grant.resent", target_id=str(grant.pk)).count() == 1
    assert GrantOutbox.objects.filter(grant=grant, state="pending").count() == 1

    response = staff_client.post(url)  # without htmx: back to the grant's page with a message
    assert response.status_code == 302 and response["Location"] == grant.get_absolute_url()


def test_revoke_needs_a_reason_and_is_audited(staff_client, grant):
    url = reverse("providers:grant-revoke", args=[grant.public_id])
    response = staff_client.post(url, {"reason": "  "})
    assert response.status_code == 400 and response.context["revoke_form"].errors
    grant.refresh_from_db()
    assert grant.state == S.PENDING

    response = staff_client.post(url, {"reason": "契約終了"}, follow=True)
    assert response.status_code == 200
    grant.refresh_from_db()
    assert grant.state == S.REVOKING and grant.version == 2
    event = AuditEvent.objects.get(action="grant.revoked", target_id=str(grant.pk))
    assert event.after["reason"] == "契約終了"
    # Twice: the service refuses, the page says why.
    response = staff_client.post(url, {"reason": "再度"}, follow=True)
    assert response.status_code == 200 and len(list(response.context["messages"])) == 1
    assert AuditEvent.objects.filter(action="grant.revoked").count() == 1


def test_grant_detail_shows_outbox_attempts_drifts_and_audit(staff_client, grant, drift):
    response = staff_client.get(reverse("providers:grant-detail", args=[grant.public_id]))
    assert response.status_code == 200  # (not `"404" not in body`: hashes and ids may contain it)
    body = response.content.decode()
    assert "grant.created" in body and "量子AI株式会社" in body
    assert grant.get_absolute_url() == reverse("providers:grant-detail", args=[grant.public_id])
    assert str(drift.get_kind_display()) in body


def test_drift_accept_inline_needs_a_note_and_resolves_it(staff_client, drift):
    url = reverse("providers:drift-accept", args=[drift.pk])
    response = staff_client.post(url, {"note": ""}, **HX)
    assert response.status_code == 400 and f'id="drift-{drift.pk}"' in response.content.decode()
    drift.refresh_from_db()
    assert drift.resolved_at is None

    response = staff_client.post(url, {"note": "プロバイダ側の手動調整で合意済み"}, **HX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body and f'id="drift-{drift.pk}"' in body
    drift.refresh_from_db()
    assert drift.resolution == GrantDrift.Resolution.ACCEPTED and drift.resolved_at is not None
    event = AuditEvent.objects.get(action="drift.accepted")
    assert event.after["note"] == "プロバイダ側の手動調整で合意済み"

    response = staff_client.post(url, {"note": "again"}, **HX)  # already resolved: inline error
    assert response.status_code == 400 and 'role="alert"' in response.content.decode()


def test_drift_resend_sends_the_grant_again(staff_client, drift):
    QuotaGrant.objects.filter(pk=drift.grant_id).update(state=S.ACTIVE, applied_version=1)
    response = staff_client.post(reverse("providers:drift-resend", args=[drift.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("providers:drift-list")
    drift.refresh_from_db()
    assert drift.resolution == GrantDrift.Resolution.RESENT
    assert AuditEvent.objects.filter(action="drift.resent").count() == 1
    assert AuditEvent.objects.filter(action="grant.resent", target_id=str(drift.grant_id)).count() == 1
    assert GrantOutbox.objects.filter(grant_id=drift.grant_id, state="pending").exists()
    assert staff_client.get(reverse("providers:drift-list")).context["page"].paginator.count == 0


def test_drift_without_a_grant_cannot_be_resent(staff_client, sakura):
    drift = GrantDrift.objects.create(
        provider=sakura,
        grant=None,
        grant_public_id="ext-1",
        kind=GrantDrift.Kind.EXTRA,
        theirs={"version": 3},
    )
    response = staff_client.post(reverse("providers:drift-resend", args=[drift.pk]), **HX)
    assert response.status_code == 400 and 'role="alert"' in response.content.decode()


def test_manual_grant_is_created_through_the_service(staff_client, period):
    org = OrganizationFactory()
    url = reverse("providers:grant-create")
    assert 'list="organization-options"' in staff_client.get(url).content.decode()
    response = staff_client.post(
        url, {"organization": org.slug, "period": period.pk, "gpu_hours": "250.5", "source_ref": "WG-7"}
    )
    grant = QuotaGrant.objects.get(organization=org)
    assert response.status_code == 302 and response["Location"] == grant.get_absolute_url()
    assert grant.gpu_hours == Decimal("250.50") and grant.source == "manual" and grant.source_ref == "WG-7"
    assert grant.valid_from == period.starts_on and grant.valid_until == period.ends_on
    assert AuditEvent.objects.filter(action="grant.created", target_id=str(grant.pk)).exists()


def test_manual_grant_beyond_capacity_is_a_form_error(staff_client, period):
    QuotaGrantFactory(period=period, gpu_hours="900")
    org = OrganizationFactory()
    response = staff_client.post(
        reverse("providers:grant-create"),
        {"organization": org.slug, "period": period.pk, "gpu_hours": "100.01"},
    )
    assert response.status_code == 400
    errors = response.context["form"].non_field_errors()
    assert len(errors) == 1 and "100.01" in errors[0]
    assert errors[0] in response.content.decode()
    assert not QuotaGrant.objects.filter(organization=org).exists()


def test_manual_grant_refuses_dates_outside_the_period_and_inactive_members(staff_client, period):
    url = reverse("providers:grant-create")
    org = OrganizationFactory()
    response = staff_client.post(
        url, {"organization": org.slug, "period": period.pk, "gpu_hours": "10", "valid_until": "2027-02-01"}
    )
    assert response.status_code == 400 and response.context["form"].non_field_errors()
    suspended = OrganizationFactory(membership__status="suspended")
    response = staff_client.post(
        url, {"organization": suspended.slug, "period": period.pk, "gpu_hours": "10"}
    )
    assert response.status_code == 400 and "organization" in response.context["form"].errors
    assert not QuotaGrant.objects.exists()


def test_reconcile_now_reports_an_unreachable_provider(staff_client, sakura):
    url = reverse("providers:provider-reconcile", args=["sakura"])
    response = staff_client.post(url, {"next": reverse("providers:provider-list")}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("providers:provider-list")
    [message] = list(response.context["messages"])
    assert message.level_tag == "error" and "API base URL" in message.message
    response = staff_client.post(url, {"next": "https://evil.example/"})
    assert response["Location"] == reverse("providers:provider-detail", args=["sakura"])


def test_reconcile_now_finds_a_grant_missing_at_the_provider(staff_client, period, simulator, settings):
    provider = period.pool.provider
    provider.api_base_url, provider.api_key_id = simulator.base_url, "test"
    provider.save()
    settings.PROVIDER_SECRETS = {provider.slug: "test-secret"}
    grant = QuotaGrantFactory(period=period, state=S.ACTIVE)
    GrantOutbox.objects.filter(grant=grant).update(state="done")
    response = staff_client.post(reverse("providers:provider-reconcile", args=[provider.slug]), follow=True)
    [message] = list(response.context["messages"])
    assert message.level_tag == "success", message.message
    assert GrantDrift.objects.get(grant=grant).kind == GrantDrift.Kind.MISSING


# --- query counts -----------------------------------------------------------------------------------

SMALL, LARGE = 10, 60


def _seed(n: int, *, period, org=None, start: int = 0) -> None:
    """Grants of every sync state with usage and drifts, so that every per-row figure is used."""
    for i in range(start, n):
        grant = QuotaGrantFactory(
            period=period,
            gpu_hours="5",
            organization=org or OrganizationFactory(),
            state=[S.PENDING, S.ACTIVE, S.FAILED, S.REVOKING][i % 4],
        )
        if i % 3 == 0:
            UsageRecordFactory(grant=grant, gpu_hours="1.5")
        if i % 5 == 0:
            GrantDrift.objects.create(
                provider=period.pool.provider,
                grant=grant,
                grant_public_id=str(grant.public_id),
                kind=GrantDrift.Kind.DIFFERENT,
            )


def _count_queries(client, url, django_assert_max_num_queries, **extra) -> int:
    with django_assert_max_num_queries(25) as captured:
        response = client.get(url, **extra)
    assert response.status_code == 200
    return len(captured.captured_queries)


def _assert_constant(client, url, grow, django_assert_max_num_queries, django_assert_num_queries, **extra):
    small = _count_queries(client, url, django_assert_max_num_queries, **extra)
    grow()
    with django_assert_num_queries(small):
        response = client.get(url, **extra)
    assert len(response.context["grants"]) == 50  # a full page of the larger set
    return small


@pytest.fixture
def big_period(period):
    period.capacity_gpu_hours = "100000"
    period.save()
    return period


def test_staff_grant_list_query_count_is_constant(
    staff_client, big_period, django_assert_max_num_queries, django_assert_num_queries
):
    _seed(SMALL, period=big_period)
    url = reverse("providers:grant-list")
    for extra in ({}, HX):
        _count_queries(staff_client, url, django_assert_max_num_queries, **extra)
    small = _assert_constant(
        staff_client,
        url,
        lambda: _seed(LARGE, period=big_period, start=SMALL),
        django_assert_max_num_queries,
        django_assert_num_queries,
    )
    with django_assert_num_queries(small):
        staff_client.get(url, {"page": 2})
    partial = _count_queries(staff_client, url, django_assert_max_num_queries, **HX)
    with django_assert_num_queries(partial):
        staff_client.get(url, {"sync": "failing"}, **HX)


def test_member_grant_page_query_count_is_constant(
    client, big_period, django_assert_max_num_queries, django_assert_num_queries
):
    org = OrganizationFactory()
    client.force_login(OrgRoleFactory(organization=org).user)
    _seed(SMALL, period=big_period, org=org)
    _assert_constant(
        client,
        reverse("providers:org-grants", args=[org.slug]),
        lambda: _seed(LARGE, period=big_period, org=org, start=SMALL),
        django_assert_max_num_queries,
        django_assert_num_queries,
    )


def test_operator_console_query_count_is_constant(
    client, big_period, django_assert_max_num_queries, django_assert_num_queries
):
    client.force_login(ProviderOperatorFactory(provider=big_period.pool.provider).user)
    _seed(SMALL, period=big_period)
    url = reverse("providers:provider-console", args=[big_period.pool.provider.slug])
    _assert_constant(
        client,
        url,
        lambda: _seed(LARGE, period=big_period, start=SMALL),
        django_assert_max_num_queries,
        django_assert_num_queries,
    )


def test_provider_list_query_count_does_not_grow_with_pools(
    staff_client, period, django_assert_max_num_queries, django_assert_num_queries
):
    url = reverse("providers:provider-list")
    small = _count_queries(staff_client, url, django_assert_max_num_queries)
    for i in range(5):
        PoolPeriodFactory(
            pool=PoolFactory(provider=ProviderFactory()),
            starts_on=datetime.date(2026, 10 + i % 3, 1),
            ends_on=datetime.date(2027, 1, 1),
        )
    with django_assert_num_queries(small):
        staff_client.get(url)


# --- admin ------------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(staff_client, staff):
    staff.is_superuser = True
    staff.save()
    return staff_client


def test_admin_lists_every_provider_model_with_data(admin_client, grant, drift):
    from django.contrib import admin

    from apps.providers.models import DeliveryAttempt, ProviderOperator

    UsageRecordFactory(grant=grant, record_id="rec-abc")
    DeliveryAttempt.objects.create(provider=grant.pool.provider, outbox=grant.outbox.first(), ok=True)
    ProviderOperatorFactory(provider=grant.pool.provider)
    for model in admin.site._registry:
        if model._meta.app_label != "providers":
            continue
        name = f"admin:providers_{model._meta.model_name}"
        response = admin_client.get(reverse(f"{name}_changelist"), {"q": "rec-abc"})
        assert response.status_code == 200, model
        obj = model.objects.first()
        assert admin_client.get(reverse(f"{name}_change", args=[obj.pk])).status_code == 200, model
    body = admin_client.get(reverse("admin:providers_usagerecord_changelist"), {"q": "rec-abc"}).content
    assert b"rec-abc" in body
    assert ProviderOperator.objects.exists()


def test_admin_grant_and_drift_actions_go_through_the_services(admin_client, grant, drift):
    url = reverse("admin:providers_quotagrant_changelist")
    admin_client.post(url, {"action": "revoke", "_selected_action": [grant.pk]})
    grant.refresh_from_db()
    assert grant.state == S.REVOKING
    assert AuditEvent.objects.filter(action="grant.revoked", target_id=str(grant.pk)).exists()

    url = reverse("admin:providers_grantdrift_changelist")
    admin_client.post(url, {"action": "accept", "_selected_action": [drift.pk]})
    drift.refresh_from_db()
    assert drift.resolution == GrantDrift.Resolution.ACCEPTED
    assert AuditEvent.objects.filter(action="drift.accepted").exists()


def test_admin_delivery_records_are_read_only(admin_client, grant):
    outbox = grant.outbox.first()
    url = reverse("admin:providers_grantoutbox_change", args=[outbox.pk])
    admin_client.post(url, {"state": "done"})
    outbox.refresh_from_db()
    assert outbox.state == "pending"
    assert admin_client.get(reverse("admin:providers_grantoutbox_add")).status_code == 403


def test_sync_state_counts_agree_with_each_grants_sync_state(settings):
    """The counts are computed from the few grants not in sync; they must match the per-row state."""
    from collections import Counter

    from apps.providers import selectors
    from apps.providers.models import GrantDrift, GrantOutbox

    period = PoolPeriodFactory(capacity_gpu_hours="100000.00")
    grants = [QuotaGrantFactory(period=period, gpu_hours="10.00", state="active") for _ in range(8)]
    GrantOutbox.objects.filter(grant__in=grants).update(state="done")
    QuotaGrant.objects.filter(pk=grants[0].pk).update(state="failed")
    GrantOutbox.objects.filter(grant=grants[1]).update(
        state="pending", attempts=settings.OUTBOX_FAILING_AFTER_ATTEMPTS
    )
    GrantDrift.objects.create(
        grant=grants[2],
        grant_public_id=str(grants[2].public_id),
        provider=period.pool.provider,
        kind="missing",
    )
    GrantDrift.objects.create(
        grant=grants[1],
        grant_public_id=str(grants[1].public_id),
        provider=period.pool.provider,
        kind="missing",
    )
    GrantOutbox.objects.filter(grant=grants[3]).update(state="in_flight")
    QuotaGrant.objects.filter(pk=grants[4].pk).update(state="revoking")
    GrantOutbox.objects.filter(grant=grants[2]).update(state="pending")  # drifted and sending: drifted
    expected = Counter(g.sync_state for g in selectors.grant_list())
    counts = {value: n for value, _label, n in selectors.sync_state_counts(selectors.grant_list())}
    assert counts == {"failing": 2, "drifted": 1, "sending": 2, "in_sync": 3}
    assert counts == {k: expected.get(k, 0) for k in counts}


# --- bulk resend / accept on the drift page --------------------------------------------------------


def _drifts(grant_period, n, *, kind=GrantDrift.Kind.MISSING):
    drifts = []
    for _ in range(n):
        grant = QuotaGrantFactory(period=grant_period, gpu_hours="10")
        QuotaGrant.objects.filter(pk=grant.pk).update(state=S.ACTIVE, applied_version=1)
        drifts.append(
            GrantDrift.objects.create(
                provider=grant.pool.provider,
                grant=grant,
                grant_public_id=str(grant.public_id),
                kind=kind,
                ours={"version": 1, "state": "active", "gpu_hours": "10.00"},
                theirs={"version": 2, "status": "revoked", "gpu_hours": ""},
            )
        )
    return drifts


def test_the_drift_page_offers_the_bulk_form_with_a_checkbox_per_open_difference(staff_client, period):
    drifts = _drifts(period, 3)
    body = staff_client.get(reverse("providers:drift-list")).content.decode()
    assert 'id="drift-bulk"' in body and reverse("providers:drift-bulk") in body
    for drift in drifts:
        assert f'name="drift" value="{drift.pk}" form="drift-bulk"' in body
    assert "選択した差異に適用" in body


def test_bulk_resend_through_htmx_resends_each_grant_above_the_providers_version(staff_client, period):
    drifts = _drifts(period, 3)
    response = staff_client.post(
        reverse("providers:drift-bulk"), {"action": "resend", "drift": [drifts[0].pk, drifts[1].pk]}, **HX
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert "2 件の差異を再送しました" in body
    for drift in drifts[:2]:
        drift.refresh_from_db()
        assert drift.resolution == GrantDrift.Resolution.RESENT
        assert GrantOutbox.objects.get(grant_id=drift.grant_id, state="pending").version == 3
        assert f'value="{drift.pk}"' not in body  # no longer open: gone from the list
    assert f'value="{drifts[2].pk}"' in body
    assert AuditEvent.objects.filter(action="drift.resent").count() == 2


def test_bulk_accept_needs_a_note_and_keeps_the_selection(staff_client, period):
    drifts = _drifts(period, 2)
    url = reverse("providers:drift-bulk")
    response = staff_client.post(url, {"action": "accept", "drift": [d.pk for d in drifts]}, **HX)
    body = response.content.decode()
    assert response.status_code == 400 and "メモを入力してください" in body
    assert f'value="{drifts[0].pk}" form="drift-bulk"' in body and "checked" in body
    assert not GrantDrift.objects.filter(resolved_at__isnull=False).exists()

    response = staff_client.post(
        url, {"action": "accept", "note": "合意済み", "drift": [d.pk for d in drifts]}
    )
    assert response.status_code == 302 and response["Location"] == reverse("providers:drift-list")
    assert GrantDrift.objects.filter(resolution=GrantDrift.Resolution.ACCEPTED).count() == 2
    assert [e.after["note"] for e in AuditEvent.objects.filter(action="drift.accepted")] == ["合意済み"] * 2


@pytest.mark.parametrize(
    "data",
    [
        {"action": "resend"},  # nothing selected
        {"action": "resend", "drift": ["abc"]},
        {"action": "resend", "drift": ["9" * 40]},
        {"action": "explode", "drift": ["1"]},
        {"drift": ["1"]},
    ],
)
def test_bad_bulk_requests_are_a_form_error_never_a_500(staff_client, period, data):
    drifts = _drifts(period, 1)
    response = staff_client.post(reverse("providers:drift-bulk"), data, **HX)
    assert response.status_code == 400 and 'role="alert"' in response.content.decode()
    drifts[0].refresh_from_db()
    assert drifts[0].resolved_at is None


def test_bulk_all_matching_resolves_only_what_the_filter_shows(staff_client, period, other_period):
    ours, theirs = _drifts(period, 2), _drifts(other_period, 2)
    response = staff_client.post(
        reverse("providers:drift-bulk"),
        {"action": "accept", "note": "一括", "all_matching": "on", "provider": "sakura"},
        **HX,
    )
    assert response.status_code == 200 and "2 件の差異を承認しました" in response.content.decode()
    assert {d.pk for d in GrantDrift.objects.filter(resolved_at__isnull=False)} == {d.pk for d in ours}
    assert all(GrantDrift.objects.get(pk=d.pk).resolved_at is None for d in theirs)


def test_bulk_reports_what_it_skipped(staff_client, period, sakura):
    drifts = _drifts(period, 1)
    extra = GrantDrift.objects.create(
        provider=sakura,
        grant=None,
        grant_public_id="ext-9",
        kind=GrantDrift.Kind.EXTRA,
        theirs={"version": 1},
    )
    response = staff_client.post(
        reverse("providers:drift-bulk"), {"action": "resend", "drift": [drifts[0].pk, extra.pk]}, **HX
    )
    body = response.content.decode()
    assert response.status_code == 200 and "1 件の差異を再送しました" in body and "1 件をスキップ" in body
