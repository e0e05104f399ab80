"""The pages made for 10,000 organizations, in the browser: the staff grant form's organization
field suggests organizations as one types (htmx fills a datalist; keyboard only) and the grant is
created for the one chosen; the round result's filter swaps the list with htmx and puts the filter
in the address bar.

Locators use ids, names and form actions, never button texts (they change with the language).
"""

import datetime

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.utils import timezone
from playwright.sync_api import expect

from apps.providers.models import QuotaGrant
from tests.e2e.test_onboarding import current_totp, submit
from tests.e2e.test_rounds import log_in
from tests.factories import OrganizationFactory, PoolPeriodFactory, StaffFactory

pytestmark = pytest.mark.e2e


def _staff_page(base, new_context):
    staff = StaffFactory()
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)
    page = log_in(new_context(), base, staff.email)
    page.wait_for_url("**/accounts/2fa/authenticate/")
    page.fill("#id_code", current_totp(secret))
    submit(page, "/accounts/2fa/authenticate/")
    page.wait_for_url("**/dashboard/")
    return page


def test_grant_form_suggests_organizations_as_one_types(live_server, new_context):
    base = live_server.url
    today = timezone.localdate()
    period = PoolPeriodFactory(
        starts_on=today.replace(day=1),
        ends_on=today.replace(day=1) + datetime.timedelta(days=366),
        capacity_gpu_hours="1000.00",
    )
    for i in range(30):
        OrganizationFactory(slug=f"lab-{i:02d}", name_ja=f"研究所{i:02d}", name_en=f"Lab {i:02d}")
    robo = OrganizationFactory(slug="robo-ai", name_ja="ロボ株式会社", name_en="Robo AI")
    OrganizationFactory(
        slug="robo-gone", name_ja="ロボ休止", name_en="Robo Gone", membership__status="suspended"
    )
    page = _staff_page(base, new_context)
    page.goto(base + "/secretariat/grants/new/")
    assert page.locator("#organization-options option").count() == 0  # no list of every organization
    field = page.locator("#id_organization")
    field.focus()
    page.keyboard.type("ロボ")
    expect(page.locator('#organization-options option[value="robo-ai"]')).to_be_attached()
    expect(page.locator("#organization-options option")).to_have_count(1)  # not the suspended one
    field.fill("")
    page.keyboard.type("robo-ai")  # the value of the suggestion, as the browser fills it in
    page.select_option("#id_period", str(period.pk))
    page.fill("#id_gpu_hours", "12")
    page.locator("#id_gpu_hours").press("Enter")  # keyboard only
    page.wait_for_url("**/secretariat/grants/*-*/")
    grant = QuotaGrant.objects.get()
    assert grant.organization == robo and grant.gpu_hours == 12


def test_round_result_filter_swaps_the_list_and_the_address(live_server, new_context, staff):
    from tests.allocations.test_results_list import _round

    base = live_server.url
    kddi_pools = {
        "hokkaido": PoolPeriodFactory(pool__code="hokkaido-h200", capacity_gpu_hours="800.00").pool,
        "osaka": PoolPeriodFactory(pool__code="osaka-h200", capacity_gpu_hours="400.00").pool,
        "b200": PoolPeriodFactory(
            pool__code="tama-b200", pool__gpu_class="B200", capacity_gpu_hours="300.00"
        ).pool,
    }
    allocation_round = _round(staff, kddi_pools, 60)
    page = _staff_page(base, new_context)
    page.goto(base + f"/secretariat/rounds/{allocation_round.pk}/")
    rows = page.locator("#round-results tbody tr")
    expect(rows).to_have_count(50)
    page.select_option('select[name="kind"]', "academic")
    expect(rows).to_have_count(len({(r.organization_id, r.gpu_class) for r in _academic(allocation_round)}))
    expect(page).to_have_url(f"{base}/secretariat/rounds/{allocation_round.pk}/?kind=academic")
    page.reload()  # the address shows the whole page with the filter
    expect(page.locator('select[name="kind"]')).to_have_value("academic")
    page.locator("#id_q").press_sequentially("robotics")  # the search, as one types
    expected = {
        (r.organization_id, r.gpu_class)
        for r in _academic(allocation_round)
        if "Robotics" in r.organization.name_en
    }
    expect(rows).to_have_count(len(expected))
    expect(page).to_have_url(f"{base}/secretariat/rounds/{allocation_round.pk}/?q=robotics&kind=academic")


def _academic(allocation_round):
    from apps.allocations.models import RoundResult

    return RoundResult.objects.filter(round=allocation_round, organization__kind="academic")
