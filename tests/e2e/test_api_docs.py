"""The member API in a real browser: the offline Swagger UI renders every operation under the
strict CSP (no console errors) and calls the API with a token; a member creates a token on the
profile page (htmx, shown once), uses it, and revokes it, in Japanese then English."""

import json
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from apps.api.models import PersonalAccessToken
from tests.api.factories import TokenFactory
from tests.factories import PASSWORD, OrganizationFactory, OrgRoleFactory, UserFactory

pytestmark = pytest.mark.e2e


class ConsoleProblems(list):
    """Console errors and warnings and uncaught exceptions of a page (CSP violations among them).

    Left out: the expected "400" of a form re-rendered with its errors, and /favicon.ico (the site
    has none). Screenshots go through ``shot``, which stops listening meanwhile: Playwright hides
    the caret with an inline style of its own, which the CSP rightly refuses."""

    def __init__(self, page, screenshot):
        super().__init__()
        self.page, self.screenshot, self.listening = page, screenshot, True
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.append(f"pageerror: {exc}"))

    def _console(self, msg) -> None:
        url = (msg.location or {}).get("url", "")
        if not self.listening or msg.type not in ("error", "warning") or url.endswith("/favicon.ico"):
            return
        if "status of 400" in msg.text and url.endswith("/accounts/tokens/new/"):
            return
        self.append(f"{msg.type}: {msg.text} ({url})")

    def shot(self, name: str) -> None:
        self.page.evaluate("0")  # messages sent before now have been delivered
        self.listening = False
        self.screenshot(self.page, name)
        self.page.evaluate("0")
        self.listening = True


def _api_get(base: str, path: str, secret: str) -> tuple[int, dict]:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {secret}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_swagger_ui_renders_the_operations_and_calls_the_api(live_server, new_context, screenshot):
    org = OrganizationFactory(slug="kyoto-u", name_ja="京都大学", name_en="Kyoto University", kind="academic")
    user = UserFactory(language="en")
    OrgRoleFactory(organization=org, user=user, role="owner")
    token = TokenFactory(user=user)

    page = new_context().new_page()
    problems = ConsoleProblems(page, screenshot)
    page.goto(live_server.url + "/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("GPU Alliance Portal member API")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() == 16  # a GET on each of the 12 paths, and POST, PUT, PATCH, DELETE of requests
    problems.shot("swagger-ui")

    # Authorize with the token and try GET /api/v1/organizations/.
    page.locator("button.authorize").click()
    page.locator(".modal-ux input[type=text], .modal-ux input[type=password]").first.fill(token.secret)
    page.locator(".modal-ux button.authorize").click()
    page.locator(".modal-ux button.btn-done").click()
    block = page.locator("#operations-organizations-organizations_list")
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    response = block.locator(".live-responses-table .response")
    expect(response.locator(".response-col_status").first).to_contain_text("200")
    expect(response.locator(".highlight-code").first).to_contain_text("kyoto-u")
    problems.shot("swagger-try-it-out")
    assert problems == [], "\n".join(problems)


def test_member_creates_uses_and_revokes_a_token(live_server, new_context, screenshot):
    base = live_server.url
    org = OrganizationFactory(slug="kyoto-u", name_ja="京都大学", name_en="Kyoto University", kind="academic")
    second = OrganizationFactory(slug="medi-lab", name_ja="メディラボ株式会社", name_en="Medi Lab KK")
    user = UserFactory(email="hanako@kyoto-u.example.jp", full_name="京大 花子", language="ja")
    OrgRoleFactory(organization=org, user=user, role="owner")
    OrgRoleFactory(organization=second, user=user, role="member")
    TokenFactory(user=user, name="旧いスクリプト", organizations=[second])

    page = new_context().new_page()
    problems = ConsoleProblems(page, screenshot)
    page.goto(base + "/accounts/login/")
    page.fill("#id_login", user.email)
    page.fill("#id_password", PASSWORD)
    page.locator('main form[action="/accounts/login/"] button[type="submit"]').click()
    page.wait_for_url("**/dashboard/")
    page.goto(base + "/accounts/profile/")
    section = page.locator("#api-tokens")
    expect(section.locator("h2")).to_have_text("API アクセストークン")
    problems.shot("profile-tokens-ja")

    # A form error first: no name.
    section.locator('input[name="token-scope"][value="write"]').check()
    section.locator('form[action="/accounts/tokens/new/"] button[type="submit"]').click()
    expect(section.locator(".errorlist").first).to_be_visible()
    problems.shot("form-error-ja")
    assert PersonalAccessToken.objects.count() == 1

    section = page.locator("#api-tokens")
    section.locator("#id_token-name").fill("夜間の利用量エクスポート")
    section.locator('input[name="token-scope"][value="write"]').check()
    section.locator(f'input[name="token-organizations"][value="{org.pk}"]').check()
    section.locator('form[action="/accounts/tokens/new/"] button[type="submit"]').click()
    secret_box = page.locator("#api-token-value")
    expect(secret_box).to_be_visible()
    secret = secret_box.inner_text().strip()
    assert secret.startswith("gap_")
    assert page.url.endswith("/accounts/profile/")  # swapped in by htmx, not a new page
    problems.shot("token-created-ja")

    status, body = _api_get(base, "/api/v1/organizations/", secret)
    assert status == 200
    assert [o["slug"] for o in body["results"]] == ["kyoto-u"]

    # English, after the language switch; the secret is not shown again.
    page.select_option("#lang-select", "en")
    page.wait_for_load_state("load")
    section = page.locator("#api-tokens")
    expect(section.locator("h2")).to_have_text("API access tokens")
    expect(page.locator("#api-token-value")).to_have_count(0)
    problems.shot("profile-tokens-en")

    token = PersonalAccessToken.objects.get(name="夜間の利用量エクスポート")
    page.on("dialog", lambda dialog: dialog.accept())
    section.locator(f'form[action="/accounts/tokens/{token.pk}/revoke/"] button').click()
    expect(page.locator(f"#api-token-{token.pk} .badge")).to_have_text("Revoked")
    problems.shot("token-revoked-en")
    status, body = _api_get(base, "/api/v1/organizations/", secret)
    assert status == 401
    assert body["code"] == "revoked_token"
    assert problems == [], "\n".join(problems)
