"""Onboarding end to end: sign-up, e-mail verification, application, secretariat approval,
and the new member's dashboard in Japanese then English.

Locators use ids, names and form actions, never button texts: the texts change with the
language and with the Japanese catalogue.
"""

import re
import time
from urllib.parse import urlsplit

import pytest
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.core import mail
from playwright.sync_api import expect

from apps.organizations.models import MembershipApplication, Organization, OrgRole
from tests.factories import PASSWORD, ProviderFactory, StaffFactory, TermsFactory, valid_corporate_number

pytestmark = pytest.mark.e2e

APPLICANT_EMAIL = "hanako.yamada@neuro-example.jp"
APPLICANT_PASSWORD = "Tsukuba-GPU-2026!"
APPLICANT_NAME = "山田 花子"
ORG_NAME_JA = "株式会社ニューロ演算"
ORG_NAME_EN = "Neuro Compute KK"
CONFIRM_LINK = re.compile(r"https?://[^\s]+/accounts/confirm-email/[^\s/]+/")


def submit(page, action: str):
    """Click the submit button of the form posting to ``action`` (inside <main>)."""
    page.locator(f'main form[action="{action}"] button[type="submit"]:not([form])').click()


def current_totp(secret: str) -> str:
    # A code typed in the last second of its 30-second window may be checked in the next one.
    if 30 - time.time() % 30 < 2:
        time.sleep(2)
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def test_visitor_signs_up_applies_gets_approved_and_sees_the_dashboard(live_server, new_context, screenshot):
    provider = ProviderFactory(slug="sakura-e2e", name_ja="さくらGPU", name_en="Sakura GPU")
    TermsFactory()
    base = live_server.url

    # --- 1. Sign up -------------------------------------------------------------------------
    applicant = new_context().new_page()
    applicant.goto(base + "/")
    screenshot(applicant, "home")
    applicant.locator('header a[href="/accounts/signup/"]').click()
    applicant.wait_for_url("**/accounts/signup/")
    applicant.fill("#id_email", APPLICANT_EMAIL)
    applicant.fill("#id_full_name", APPLICANT_NAME)
    applicant.select_option("#id_language", "ja")
    applicant.fill("#id_password1", APPLICANT_PASSWORD)
    applicant.fill("#id_password2", APPLICANT_PASSWORD)
    screenshot(applicant, "signup")
    submit(applicant, "/accounts/signup/")
    applicant.wait_for_url("**/accounts/confirm-email/")
    screenshot(applicant, "verification-sent")

    # --- 2. Verify the e-mail address -----------------------------------------------------------
    confirmations = [m for m in mail.outbox if APPLICANT_EMAIL in m.to]
    assert len(confirmations) == 1, [m.subject for m in mail.outbox]
    link = CONFIRM_LINK.search(confirmations[0].body)
    assert link, confirmations[0].body
    confirm_path = urlsplit(link.group(0)).path
    applicant.goto(base + confirm_path)
    screenshot(applicant, "confirm-email")
    # Not submit(applicant, confirm_path): allauth signs a fresh key (with a timestamp) every time
    # it renders one, so the form's action differs from the e-mailed link after a second.
    applicant.locator(
        'main form[action^="/accounts/confirm-email/"] button[type="submit"]:not([form])'
    ).click()
    applicant.wait_for_url("**/dashboard/")
    # Logged in by the confirmation: the header offers to log out.
    expect(applicant.locator('header form[action="/accounts/logout/"]')).to_be_visible()
    screenshot(applicant, "dashboard-new-user")

    # --- 3. Apply for membership ------------------------------------------------------------
    applicant.goto(base + "/apply/")
    applicant.fill("#id_name_ja", ORG_NAME_JA)
    applicant.fill("#id_name_en", ORG_NAME_EN)
    applicant.select_option("#id_kind", "startup")
    applicant.fill("#id_corporate_number", valid_corporate_number(424242))
    applicant.fill("#id_postal_code", "305-0047")
    applicant.fill("#id_address", "茨城県つくば市千現2-1-6")
    applicant.fill("#id_website", "neuro-example.jp")
    applicant.select_option("#id_home_provider", str(provider.pk))
    applicant.fill("#id_contact_name", APPLICANT_NAME)
    applicant.fill("#id_contact_email", APPLICANT_EMAIL)
    applicant.fill("#id_contact_phone", "029-000-0000")
    applicant.fill("#id_technical_contact_email", "gpu@neuro-example.jp")
    applicant.fill("#id_intended_use", "医療画像の基盤モデルの学習。H100 で月 2,000 GPU 時間程度。")
    screenshot(applicant, "application-form")
    submit(applicant, "/apply/")
    applicant.wait_for_url(re.compile(r"/applications/\d+/$"))
    application_path = re.search(r"/applications/\d+/$", applicant.url).group(0)
    application_id = int(application_path.split("/")[2])
    screenshot(applicant, "application-draft")
    applicant.check("#id_accept_terms")
    submit(applicant, application_path)
    expect(applicant.locator("main .badge-submitted")).to_be_visible()
    screenshot(applicant, "application-submitted")

    application = MembershipApplication.objects.get(pk=application_id)
    assert application.status == MembershipApplication.Status.SUBMITTED
    assert application.applicant.email == APPLICANT_EMAIL
    assert application.accepted_terms_id is not None

    # --- 4. The secretariat approves ----------------------------------------------------------
    staff = StaffFactory()
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)

    secretariat = new_context().new_page()
    secretariat.goto(base + "/accounts/login/")
    secretariat.fill("#id_login", staff.email)
    secretariat.fill("#id_password", PASSWORD)
    screenshot(secretariat, "staff-login")
    submit(secretariat, "/accounts/login/")
    secretariat.wait_for_url("**/accounts/2fa/authenticate/")
    secretariat.fill("#id_code", current_totp(secret))
    screenshot(secretariat, "staff-totp")
    submit(secretariat, "/accounts/2fa/authenticate/")
    secretariat.wait_for_url("**/dashboard/")

    secretariat.goto(base + "/secretariat/applications/")
    row = secretariat.locator(f"#application-{application_id}")
    expect(row).to_contain_text(ORG_NAME_JA)
    expect(row.locator(".badge-submitted")).to_be_visible()
    screenshot(secretariat, "review-queue")
    # htmx: the row is replaced by its "under review" version, with the decision form.
    review_path = f"/secretariat/applications/{application_id}/"
    row.locator(f'form[action="{review_path}start/"] button[type="submit"]').click()
    expect(row.locator(".badge-under_review")).to_be_visible()
    row.locator(f"#decision-{application_id}").select_option("approve")
    screenshot(secretariat, "review-under-review")
    row.locator(f'form[action="{review_path}decide/"] button[type="submit"]').click()
    expect(row.locator(".badge-approved")).to_be_visible()
    expect(row.locator(".row-message")).to_be_visible()
    screenshot(secretariat, "review-approved")

    application.refresh_from_db()
    assert application.status == MembershipApplication.Status.APPROVED
    organization = Organization.objects.get(corporate_number=valid_corporate_number(424242))
    assert application.organization_id == organization.pk
    assert (organization.name_ja, organization.name_en) == (ORG_NAME_JA, ORG_NAME_EN)
    assert organization.home_provider_id == provider.pk
    assert organization.membership.status == "active"
    assert OrgRole.objects.filter(
        organization=organization, user=application.applicant, role=OrgRole.Role.OWNER
    ).exists()

    # --- 5. The new member's dashboard, Japanese then English ----------------------------------
    applicant.goto(base + "/dashboard/")
    expect(applicant.locator("html")).to_have_attribute("lang", "ja")
    expect(applicant.locator("main table").first).to_contain_text(ORG_NAME_JA)
    screenshot(applicant, "dashboard-ja")
    # Checked at the very end, so that the English half still runs while the Japanese
    # catalogue is incomplete.
    ja_heading = applicant.locator("main h1").inner_text()

    # portal.js hides the switcher's button and submits the form when the choice changes; the
    # view redirects back here.
    switch_button = applicant.locator("header form[action='/i18n/setlang/'] button[type=submit]")
    expect(switch_button).to_have_class(re.compile(r"\bvisually-hidden\b"))
    applicant.select_option("#lang-select", "en")
    expect(applicant.locator("html")).to_have_attribute("lang", "en")
    assert urlsplit(applicant.url).path == "/dashboard/"
    expect(applicant.locator("main h1")).to_contain_text("Welcome")
    expect(applicant.locator("main")).to_contain_text("Your organizations")
    expect(applicant.locator("main table").first).to_contain_text(ORG_NAME_EN)
    screenshot(applicant, "dashboard-en")
    application.applicant.refresh_from_db()
    assert application.applicant.language == "en"  # the switch is remembered on the account

    assert "ようこそ" in ja_heading, f"the Japanese dashboard's heading is {ja_heading!r}"
