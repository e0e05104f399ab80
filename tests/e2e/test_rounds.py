"""An allocation round end to end in the browser: the secretariat opens a round, two members file
requests (one restricted to a single pool), the secretariat closes and computes it (the task runs),
adjusts one amount inline (htmx) and publishes; a member reads its explained result in Japanese
and finds the new grant among its quota.

Locators use ids, names and form actions, never button texts (they change with the language).
"""

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from playwright.sync_api import expect

from apps.allocations.models import AllocationRound, RoundResult
from apps.providers.models import QuotaGrant
from tests.e2e.test_onboarding import current_totp, submit
from tests.factories import (
    PASSWORD,
    FairSharePolicyFactory,
    OrganizationFactory,
    OrgRoleFactory,
    PoolPeriodFactory,
    StaffFactory,
)

pytestmark = pytest.mark.e2e


def log_in(context, base: str, email: str):
    page = context.new_page()
    page.goto(base + "/accounts/login/")
    page.fill("#id_login", email)
    page.fill("#id_password", PASSWORD)
    submit(page, "/accounts/login/")
    return page


def test_a_round_from_opening_to_the_members_explained_result(live_server, new_context, screenshot):
    base = live_server.url
    hokkaido = PoolPeriodFactory(pool__code="hokkaido-h200", capacity_gpu_hours="800.00").pool
    osaka = PoolPeriodFactory(pool__code="osaka-h200", capacity_gpu_hours="400.00").pool
    FairSharePolicyFactory(name="標準ポリシー", is_default=True)
    kyoto = OrganizationFactory(
        slug="kyoto-u", name_ja="京都大学", name_en="Kyoto University", kind="academic"
    )
    medi = OrganizationFactory(slug="medi-lab", name_ja="メディラボ株式会社", name_en="Medi Lab")
    kyoto_owner = OrgRoleFactory(organization=kyoto, role="owner").user
    medi_owner = OrgRoleFactory(organization=medi, role="owner").user
    staff = StaffFactory()
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)

    # --- the secretariat opens a round ----------------------------------------------------------
    secretariat = log_in(new_context(), base, staff.email)
    secretariat.wait_for_url("**/accounts/2fa/authenticate/")
    secretariat.fill("#id_code", current_totp(secret))
    submit(secretariat, "/accounts/2fa/authenticate/")
    secretariat.wait_for_url("**/dashboard/")
    secretariat.on("dialog", lambda dialog: dialog.accept())  # the data-confirm prompts
    # The secretariat's pages are in a header menu that opens without JavaScript (<details>).
    menu = secretariat.locator("header .nav-menu")
    expect(menu.locator('a[href="/secretariat/rounds/"]')).to_be_hidden()
    menu.locator("summary").click()
    expect(menu.locator('a[href="/secretariat/audit/"]')).to_be_visible()
    screenshot(secretariat, "secretariat-menu")
    menu.locator('a[href="/secretariat/rounds/"]').click()
    secretariat.wait_for_url("**/secretariat/rounds/")
    secretariat.fill("#id_name", "2026年度 第1四半期")
    secretariat.fill("#id_fiscal_year", "2026")
    secretariat.fill("#id_period_start", "2026-04-01")
    secretariat.fill("#id_period_end", "2026-07-01")
    submit(secretariat, "/secretariat/rounds/")
    secretariat.wait_for_url("**/secretariat/rounds/*/")
    allocation_round = AllocationRound.objects.get()
    detail = f"/secretariat/rounds/{allocation_round.pk}/"
    expect(secretariat.locator(".badge-round-open")).to_be_visible()
    screenshot(secretariat, "round-open")

    # --- members file their requests --------------------------------------------------------------
    member = log_in(new_context(), base, kyoto_owner.email)
    member.wait_for_url("**/dashboard/")
    member.goto(base + f"/orgs/{kyoto.slug}/rounds/")
    save = f"/orgs/{kyoto.slug}/rounds/{allocation_round.pk}/requests/H200/"
    member.fill("#id_req-H200-demand_gpu_hours", "700")
    member.fill("#id_req-H200-justification", "大規模言語モデルの継続事前学習")
    screenshot(member, "request-form")
    submit(member, save)
    member.wait_for_url(f"**/orgs/{kyoto.slug}/rounds/")
    expect(member.locator(".messages, [role=status]").first).to_be_visible()

    medi_page = log_in(new_context(), base, medi_owner.email)
    medi_page.wait_for_url("**/dashboard/")
    medi_page.goto(base + f"/orgs/{medi.slug}/rounds/")
    medi_page.fill("#id_req-H200-demand_gpu_hours", "600")
    medi_page.fill("#id_req-H200-justification", "医用画像の基盤モデル（国内データのみ）")
    medi_page.locator(f'input[name="req-H200-eligible_pools"][value="{osaka.pk}"]').check()
    submit(medi_page, f"/orgs/{medi.slug}/rounds/{allocation_round.pk}/requests/H200/")
    medi_page.wait_for_url(f"**/orgs/{medi.slug}/rounds/")

    # --- close, compute, adjust, publish ------------------------------------------------------------
    secretariat.goto(base + detail)
    submit(secretariat, detail + "close/")
    expect(secretariat.locator(".badge-round-closed")).to_be_visible()
    submit(secretariat, detail + "compute/")
    expect(secretariat.locator(".badge-round-computed")).to_be_visible()
    # Medi Lab can only use Osaka; Kyoto gets Hokkaido (and nothing of Osaka: Medi needs it all).
    result = RoundResult.objects.get(round=allocation_round, organization=kyoto, pool=hokkaido)
    assert result.amount == 700
    assert RoundResult.objects.get(round=allocation_round, organization=medi).amount == 400
    row = secretariat.locator(f"#row-{kyoto.pk}-h200")
    expect(row).to_contain_text("700")
    screenshot(secretariat, "round-computed")

    # An adjustment above the request is refused in the row, without reloading the page.
    row.locator(f"#amount-{result.pk}").fill("750")
    row.locator(f"#reason-{result.pk}").fill("増枠")
    row.locator(f'form[action="/secretariat/round-results/{result.pk}/adjust/"] button').click()
    expect(secretariat.locator(f"#row-{kyoto.pk}-h200 .row-error")).to_be_visible()
    screenshot(secretariat, "adjust-refused")
    row = secretariat.locator(f"#row-{kyoto.pk}-h200")
    row.locator(f"#amount-{result.pk}").fill("650")
    row.locator(f"#reason-{result.pk}").fill("50 GPU時間は第2四半期へ")
    row.locator(f'form[action="/secretariat/round-results/{result.pk}/adjust/"] button').click()
    expect(secretariat.locator(f"#row-{kyoto.pk}-h200 .badge-adjusted")).to_be_visible()
    result.refresh_from_db()
    assert result.final_amount == 650

    submit(secretariat, detail + "publish/")
    expect(secretariat.locator(".badge-round-published")).to_be_visible()
    screenshot(secretariat, "round-published")
    assert sorted(int(g.gpu_hours) for g in QuotaGrant.objects.all()) == [400, 650]

    # --- the member reads its result (Japanese: the default) --------------------------------------
    member.goto(base + f"/orgs/{kyoto.slug}/rounds/{allocation_round.pk}/")
    explanation = member.locator("section.explanation")
    expect(explanation).to_contain_text("あなたの重みは")
    expect(explanation).to_contain_text("50 GPU時間は第2四半期へ")
    expect(explanation).to_contain_text("hokkaido-h200")
    expect(member.locator("main")).not_to_contain_text("osaka-h200")
    screenshot(member, "member-result-ja")
    member.goto(base + f"/orgs/{kyoto.slug}/grants/")
    expect(member.locator("main")).to_contain_text("hokkaido-h200")
    screenshot(member, "member-grants")
