"""Grant programs end to end: a startup applies, a reviewer scores, the secretariat awards, and the
startup sees its new GPU quota (pushed to a real provider simulator), in Japanese then English.

Locators use ids, names and form actions, never button texts."""

import re

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.utils import timezone
from playwright.sync_api import expect

from apps.grants.models import Application, Assignment
from apps.providers.models import QuotaGrant
from tests.e2e.test_onboarding import current_totp, submit
from tests.factories import (
    PASSWORD,
    OrganizationFactory,
    OrgRoleFactory,
    PoolPeriodFactory,
    StaffFactory,
    UserFactory,
)
from tests.grants.factories import CallFactory, ReviewerFactory
from tests.providers.conftest import _simulator_process, simulator  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e


def login(page, base, email, totp_secret=None):
    page.goto(base + "/accounts/login/")
    page.fill("#id_login", email)
    page.fill("#id_password", PASSWORD)
    submit(page, "/accounts/login/")
    if totp_secret:
        page.wait_for_url("**/accounts/2fa/authenticate/")
        page.fill("#id_code", current_totp(totp_secret))
        submit(page, "/accounts/2fa/authenticate/")
    page.wait_for_url("**/dashboard/")


def test_startup_applies_reviewer_scores_staff_awards_startup_sees_quota(
    live_server,
    new_context,
    screenshot,
    simulator,  # noqa: F811  (the imported fixture)
    settings,
):
    settings.PROVIDER_SECRETS = {"sakura": simulator.secret}
    base = live_server.url
    today = timezone.localdate()
    period = PoolPeriodFactory(
        starts_on=today.replace(day=1), ends_on=today.replace(day=1).replace(year=today.year + 1)
    )
    provider = period.pool.provider
    provider.api_base_url, provider.api_key_id = simulator.base_url, simulator.key_id
    provider.save()
    call = CallFactory(reviews_per_application=1, budget={"H200": 10000})
    startup_owner = UserFactory(full_name="山本 翔")
    org = OrganizationFactory(kind="startup", name_ja="株式会社ニューロフォージ", name_en="NeuroForge Inc.")
    OrgRoleFactory(organization=org, user=startup_owner, role="owner")
    reviewer = UserFactory(full_name="審査 花子")
    ReviewerFactory(call=call, user=reviewer)
    staff = StaffFactory()
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)

    # --- 1. The startup finds the call and applies ------------------------------------------
    startup = new_context().new_page()
    login(startup, base, startup_owner.email)
    startup.goto(base + "/programs/")
    screenshot(startup, "programs-ja")
    startup.locator(f'main a[href="{call.get_absolute_url()}"]').first.click()
    startup.wait_for_url(f"**{call.get_absolute_url()}")
    screenshot(startup, "call-ja")
    startup.locator("#apply-link").click()
    startup.wait_for_url("**/apply/")
    startup.fill("#id_founded_on", "2024-06-01")
    startup.fill("#id_pi_name", "山本 翔")
    startup.fill("#id_pi_email", startup_owner.email)
    startup.fill("#id_title", "日本語法律文書 LLM の PoC")
    startup.fill("#id_abstract", "7B 規模の日本語 LLM を法律文書で継続事前学習する。")
    startup.fill("#id_plan", "1 か月目: コーパス整備。2–3 か月目: 学習と評価。")
    startup.fill("#id_duration_months", "3")
    startup.fill("#id_hours_H200", "1200")
    screenshot(startup, "application-form-ja")
    submit(startup, f"/programs/{call.program.slug}/calls/{call.pk}/apply/")
    startup.wait_for_url(re.compile(r"/grants/applications/\d+/$"))
    application = Application.objects.get()
    submit(startup, f"/grants/applications/{application.pk}/submit/")
    expect(startup.locator("main .badge-app-submitted")).to_be_visible()
    screenshot(startup, "application-submitted-ja")
    application.refresh_from_db()
    assert application.status == Application.Status.SUBMITTED

    # --- 2. The secretariat assigns the review ----------------------------------------------
    secretariat = new_context().new_page()
    login(secretariat, base, staff.email, secret)
    secretariat.goto(base + f"/secretariat/calls/{call.pk}/")
    submit(secretariat, f"/secretariat/calls/{call.pk}/auto-assign/")
    expect(secretariat.locator(f"#rank-{application.pk}")).to_contain_text("0 / 1")
    assignment = Assignment.objects.get()
    assert assignment.reviewer == reviewer

    # --- 3. The reviewer scores -------------------------------------------------------------
    reviewer_page = new_context().new_page()
    login(reviewer_page, base, reviewer.email)
    reviewer_page.goto(base + "/reviews/")
    reviewer_page.locator(f'#assignment-{assignment.pk} a[href="/reviews/{assignment.pk}/"]').click()
    reviewer_page.wait_for_url(f"**/reviews/{assignment.pk}/")
    novelty, feasibility = call.criteria.all()
    reviewer_page.fill(f"#id_score_{novelty.pk}", "5")
    reviewer_page.fill(f"#id_comment_{novelty.pk}", "独自データが強み。")
    reviewer_page.fill(f"#id_score_{feasibility.pk}", "4")
    screenshot(reviewer_page, "review-ja")
    submit(reviewer_page, f"/reviews/{assignment.pk}/")
    expect(reviewer_page.locator("main .badge-assignment-submitted")).to_be_visible()

    # --- 4. The secretariat ranks and awards --------------------------------------------------
    secretariat.goto(base + f"/secretariat/calls/{call.pk}/")
    expect(secretariat.locator(f"#rank-{application.pk}")).to_contain_text("93.33")
    screenshot(secretariat, "staff-call-ja")
    secretariat.locator(
        f'#rank-{application.pk} a[href="/secretariat/grant-applications/{application.pk}/"]'
    ).click()
    secretariat.wait_for_url(f"**/secretariat/grant-applications/{application.pk}/")
    secretariat.select_option("#id_decision", "award")
    secretariat.fill(f"#id_period_{period.pk}", "1000")
    secretariat.fill("#id_feedback", "採択です。1,000 時間を配分します。")
    screenshot(secretariat, "staff-decision-ja")
    submit(secretariat, f"/secretariat/grant-applications/{application.pk}/decide/")
    expect(secretariat.locator("main .badge-app-awarded")).to_be_visible()
    screenshot(secretariat, "staff-awarded-ja")
    grant = QuotaGrant.objects.get()
    assert grant.source == QuotaGrant.Source.AWARD and grant.state == QuotaGrant.State.ACTIVE
    assert simulator.state()["quotas"][str(grant.public_id)]["gpu_hours"] == "1000.00"

    # --- 5. The startup sees its award and its new quota, Japanese then English ---------------
    startup.goto(base + application.get_absolute_url())
    expect(startup.locator("main .badge-app-awarded")).to_be_visible()
    expect(startup.locator("main")).to_contain_text("採択です。")
    expect(startup.locator("main")).not_to_contain_text(reviewer.email)
    screenshot(startup, "application-awarded-ja")
    startup.goto(base + f"/orgs/{org.slug}/grants/")
    expect(startup.locator("main table")).to_contain_text(period.pool.code)
    expect(startup.locator("main table .badge-active")).to_be_visible()
    screenshot(startup, "quota-ja")
    startup.goto(base + "/dashboard/")
    screenshot(startup, "dashboard-ja")
    startup.select_option("#lang-select", "en")
    expect(startup.locator("html")).to_have_attribute("lang", "en")
    startup.goto(base + application.get_absolute_url())
    expect(startup.locator("main")).to_contain_text("Award")
    screenshot(startup, "application-awarded-en")
    startup.goto(base + "/programs/")
    screenshot(startup, "programs-en")
    secretariat.goto(base + f"/secretariat/grant-applications/{application.pk}/")
    screenshot(secretariat, "staff-application-ja")
