"""Reports in the browser: the transparency report and a member's statement draw their charts with
the vendored Chart.js under the site's CSP (no console errors), with the tables under them, and the
statement prints without the navigation."""

import pytest
from playwright.sync_api import expect

from tests.e2e.test_rounds import log_in
from tests.reports.test_transparency import published  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e


def _watch_console(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def test_transparency_and_statement_charts(live_server, new_context, screenshot, published):  # noqa: F811
    base = live_server.url
    visitor = new_context().new_page()
    errors = _watch_console(visitor)
    visitor.goto(base + "/transparency/")
    visitor.locator(f'a[href="/transparency/rounds/{published.pk}/"]').click()
    visitor.wait_for_url(f"**/transparency/rounds/{published.pk}/")
    for chart in ("class-chart", "provider-chart", "kind-chart"):
        expect(
            visitor.locator(f'canvas[data-chart="{chart}"]').locator("xpath=ancestor::figure")
        ).to_have_class("chart chart-drawn")
    expect(visitor.locator("main table").first).to_contain_text("H200")
    screenshot(visitor, "transparency-round-ja")
    visitor.goto(base + "/transparency/fy/2026/")
    expect(visitor.locator("figure.chart-drawn")).to_have_count(3)
    screenshot(visitor, "transparency-year-ja")
    assert errors == []

    from apps.organizations.models import Organization, OrgRole

    org = Organization.objects.get(slug="big-corp")
    owner = OrgRole.objects.filter(organization=org).first().user
    member = log_in(new_context(locale="en-US"), base, owner.email)
    member.wait_for_url("**/dashboard/")
    errors = _watch_console(member)
    member.goto(base + "/orgs/big-corp/statement/?period=FY2026")
    expect(member.locator("figure.chart-drawn")).to_have_count(1)
    expect(member.locator("main")).to_contain_text("hokkaido-h200")
    screenshot(member, "statement-ja")
    member.emulate_media(media="print")
    expect(member.locator("header.site-header")).to_be_hidden()
    expect(member.locator("form.period-form")).to_be_hidden()
    screenshot(member, "statement-print")
    assert errors == []
