"""The secretariat repairs differences with providers in a real browser: on the drift page it ticks
two differences and resends them at once (htmx), then accepts a third with a note; the provider
simulator ends up holding the portal's hours at a new version, and the accepted difference stays
accepted at the next reconciliation.

Locators use ids, names and form actions, never button texts."""

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.urls import reverse
from playwright.sync_api import expect

from apps.providers import services
from apps.providers.models import GrantDrift, QuotaGrant
from tests.e2e.test_grants import login
from tests.factories import OrganizationFactory, PoolPeriodFactory, StaffFactory
from tests.providers.conftest import _simulator_process, simulator  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e


def test_staff_resends_two_differences_at_once_and_accepts_a_third(
    live_server,
    new_context,
    screenshot,
    simulator,  # noqa: F811  (the imported fixture)
    settings,
):
    settings.PROVIDER_SECRETS = {"sakura": simulator.secret}
    period = PoolPeriodFactory(capacity_gpu_hours="100000")
    provider = period.pool.provider
    provider.api_base_url, provider.api_key_id = simulator.base_url, simulator.key_id
    provider.save()
    staff = StaffFactory()
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)
    grants = [
        services.grant_create(
            organization=OrganizationFactory(), period_id=period.pk, gpu_hours="100", actor=staff
        )
        for _ in range(3)
    ]
    assert set(QuotaGrant.objects.values_list("state", flat=True)) == {"active"}  # delivered on commit
    for grant in grants:  # the provider changed the hours on its side
        simulator.force_quota(str(grant.public_id), version=1, status="active", gpu_hours="60.00", pool="x")
    services.provider_reconcile(provider_id=provider.pk)
    drifts = [GrantDrift.objects.get(grant=g, resolved_at__isnull=True) for g in grants]

    page = new_context().new_page()
    login(page, live_server.url, staff.email, secret)
    page.goto(live_server.url + reverse("providers:drift-list"))
    screenshot(page, "drifts-ja")
    page.check(f"#select-{drifts[0].pk}")
    page.check(f"#select-{drifts[1].pk}")
    page.select_option("#drift-bulk select[name=action]", "resend")
    page.locator("#drift-bulk [type=submit]").click()
    expect(page.locator("#drift-bulk [role=status]")).to_contain_text(
        "2 件", timeout=20_000
    )  # two deliveries
    expect(page.locator(f"#drift-{drifts[0].pk}")).to_have_count(0)
    expect(page.locator(f"#drift-{drifts[2].pk}")).to_have_count(1)
    screenshot(page, "resent")

    page.check(f"#select-{drifts[2].pk}")
    page.select_option("#drift-bulk select[name=action]", "accept")
    page.locator("#drift-bulk [type=submit]").click()  # no note: refused, the selection kept
    expect(page.locator("#drift-bulk .row-error")).to_have_count(1, timeout=20_000)
    expect(page.locator(f"#select-{drifts[2].pk}")).to_be_checked()
    page.fill("#drift-bulk textarea[name=note]", "プロバイダ側の調整で合意済み")
    page.locator("#drift-bulk [type=submit]").click()
    expect(page.locator("#drift-bulk [role=status]")).to_contain_text("1 件", timeout=20_000)
    expect(page.locator(f"#drift-{drifts[2].pk}")).to_have_count(0)
    screenshot(page, "accepted")

    quotas = simulator.state()["quotas"]
    for grant in grants[:2]:
        grant.refresh_from_db()
        assert grant.state == "active" and grant.version == 2
        assert (quotas[str(grant.public_id)]["version"], quotas[str(grant.public_id)]["gpu_hours"]) == (
            2,
            "100.00",
        )
    report = services.provider_reconcile(provider_id=provider.pk)
    assert (report.different, report.accepted) == (0, 1)
    assert not GrantDrift.objects.filter(resolved_at__isnull=True).exists()
