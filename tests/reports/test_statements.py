"""Member statements (per month and fiscal year, program awards apart, printable, exported) and the
inter-provider resale settlement (staff see all pairs, an operator only its own)."""

import csv
import datetime
import io
import uuid
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from apps.providers import services as providers
from apps.reports import selectors
from apps.reports.selectors import Window
from tests.factories import (
    OrganizationFactory,
    OrgRoleFactory,
    PoolPeriodFactory,
    ProviderFactory,
    ProviderOperatorFactory,
    QuotaGrantFactory,
    StaffFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _usage(grant, hours, started):
    providers.usage_ingest(
        provider=grant.pool.provider,
        records=[
            {
                "record_id": f"u-{uuid.uuid4()}",
                "grant_id": str(grant.public_id),
                "gpu_hours": str(hours),
                "started_at": started,
                "ended_at": started,
            }
        ],
    )


@pytest.fixture
def world():
    """Kyoto (home: KDDI) uses a KDDI pool and a Sakura pool; Medi (home: Sakura) uses the Sakura pool."""
    kddi = ProviderFactory(slug="kddi", name_ja="KDDI", name_en="KDDI")
    sakura = ProviderFactory(slug="sakura", name_ja="さくら", name_en="Sakura")
    kddi_pool = PoolPeriodFactory(
        pool__provider=kddi,
        pool__code="kddi-gb200",
        pool__gpu_class="GB200",
        pool__wholesale_rate="1000.00",
        capacity_gpu_hours="10000.00",
    )
    sakura_pool = PoolPeriodFactory(
        pool__provider=sakura,
        pool__code="sakura-h200",
        pool__wholesale_rate="400.00",
        capacity_gpu_hours="10000.00",
    )
    kyoto = OrganizationFactory(slug="kyoto-u", home_provider=kddi)
    medi = OrganizationFactory(slug="medi-lab", home_provider=sakura)
    # April-June 2026 (91 days): 910 GPU-hours on KDDI, 455 on Sakura; an award of 182 on Sakura.
    g1 = QuotaGrantFactory(organization=kyoto, period=kddi_pool, gpu_hours="910.00")
    g2 = QuotaGrantFactory(organization=kyoto, period=sakura_pool, gpu_hours="455.00")
    award = QuotaGrantFactory(organization=kyoto, period=sakura_pool, gpu_hours="182.00", source="award")
    g3 = QuotaGrantFactory(organization=medi, period=sakura_pool, gpu_hours="300.00")
    _usage(g1, "100.5", "2026-04-10T10:00:00+09:00")
    _usage(g1, "50", "2026-05-01T00:30:00+09:00")  # May in Tokyo (still April in UTC)
    _usage(g2, "20", "2026-05-03T10:00:00+09:00")
    _usage(award, "7.25", "2026-06-03T10:00:00+09:00")
    _usage(g3, "30", "2026-04-03T10:00:00+09:00")
    return {"kddi": kddi, "sakura": sakura, "kyoto": kyoto, "medi": medi}


def test_a_fiscal_year_statement_prorates_grants_and_keeps_awards_apart(world, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        statement = selectors.statement(organization=world["kyoto"], window=Window.fiscal_year(2026))
    lines = {(line.section, line.pool): (line.granted, line.used) for line in statement.lines}
    assert lines == {
        ("allocation", "kddi-gb200"): (Decimal("910.00"), Decimal("150.5000")),
        ("allocation", "sakura-h200"): (Decimal("455.00"), Decimal("20.0000")),
        ("award", "sakura-h200"): (Decimal("182.00"), Decimal("7.2500")),
    }
    assert statement.totals["award"] == {"granted": Decimal("182.00"), "used": Decimal("7.2500")}
    by_month = {f"{m:%Y-%m}": (g, u) for m, g, u in statement.by_month}
    # April has 30 of the 91 days: (910 + 455 + 182) * 30 / 91, per grant rounded to the cent.
    assert by_month["2026-04"] == (
        Decimal("300.00") + Decimal("150.00") + Decimal("60.00"),
        Decimal("100.5000"),
    )
    assert by_month["2026-05"][1] == Decimal("70.0000")
    assert by_month["2026-07"] == (Decimal("0"), Decimal("0"))


def test_a_month_statement(world):
    statement = selectors.statement(organization=world["kyoto"], window=Window.month(2026, 5))
    lines = {(line.section, line.pool): (line.granted, line.used) for line in statement.lines}
    # May: 31 of 91 days.
    assert lines[("allocation", "kddi-gb200")] == (Decimal("310.00"), Decimal("50.0000"))
    assert lines[("award", "sakura-h200")] == (Decimal("62.00"), Decimal("0"))


def test_the_statement_page_and_its_export(world):
    user = OrgRoleFactory(organization=world["kyoto"], role="member").user
    client = Client()
    client.force_login(user)
    url = reverse("reports:org-statement", args=["kyoto-u"])
    page = client.get(url, {"period": "FY2026"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "kddi-gb200" in text and "プログラム採択" in text
    assert 'data-chart="statement-chart"' in text and 'id="statement-chart"' in text
    assert "vendor/chartjs/chart.umd.min.js" in text
    assert client.get(url, {"period": "2026-05"}).context["window"] == Window.month(2026, 5)
    bad = client.get(url, {"period": "2026-13"})
    assert bad.status_code == 200 and bad.context["bad_period"]

    export = client.get(
        reverse("reports:export", args=["statement", "csv"]), {"org": "kyoto-u", "period": "FY2026"}
    )
    body = b"".join(export.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body[1:])))
    assert [r[2] for r in rows[1:]] == [line.pool for line in page.context["statement"].lines]
    assert rows[1][4:] == ["910.00", "150.5000"]


def test_statements_of_other_organizations_are_404(world):
    outsider = OrgRoleFactory(organization=world["medi"], role="owner").user
    client = Client()
    client.force_login(outsider)
    assert client.get(reverse("reports:org-statement", args=["kyoto-u"])).status_code == 404
    assert (
        client.get(reverse("reports:export", args=["statement", "csv"]), {"org": "kyoto-u"}).status_code
        == 404
    )


def test_settlement_pairs_home_and_serving_providers_at_wholesale_rates(world):
    rows = {
        (r.home_provider.slug, r.serving_provider.slug): (r.gpu_hours, r.amount, r.is_resale)
        for r in selectors.settlement(window=Window.fiscal_year(2026))
    }
    assert rows == {
        ("kddi", "kddi"): (Decimal("150.5000"), Decimal("150500"), False),
        ("kddi", "sakura"): (Decimal("27.2500"), Decimal("10900"), True),  # 27.25 h at ¥400
        ("sakura", "sakura"): (Decimal("30.0000"), Decimal("12000"), False),
    }
    april = {
        (r.home_provider.slug, r.serving_provider.slug)
        for r in selectors.settlement(window=Window.month(2026, 4))
    }
    assert april == {("kddi", "kddi"), ("sakura", "sakura")}


def test_settlement_pages_and_exports_by_role(world):
    staff = StaffFactory()
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    TOTP.activate(staff, generate_totp_secret())
    staff_client = Client()
    staff_client.force_login(staff)
    page = staff_client.get(reverse("reports:settlement"), {"period": "FY2026"})
    assert page.status_code == 200 and len(page.context["rows"]) == 3

    operator = ProviderOperatorFactory(provider=world["kddi"])
    client = Client()
    client.force_login(operator.user)
    mine = client.get(reverse("reports:provider-settlement", args=["kddi"]), {"period": "FY2026"})
    assert {(r.home_provider.slug, r.serving_provider.slug) for r in mine.context["rows"]} == {
        ("kddi", "kddi"),
        ("kddi", "sakura"),
    }
    assert client.get(reverse("reports:provider-settlement", args=["sakura"])).status_code == 404
    assert client.get(reverse("reports:settlement")).status_code == 404
    assert (
        client.get(reverse("reports:export", args=["settlement", "csv"]), {"period": "FY2026"}).status_code
        == 404
    )
    export = client.get(
        reverse("reports:export", args=["settlement", "xlsx"]), {"provider": "kddi", "period": "FY2026"}
    )
    assert export.status_code == 200
    member = Client()
    member.force_login(UserFactory())
    assert (
        member.get(reverse("reports:export", args=["settlement", "csv"]), {"provider": "kddi"}).status_code
        == 404
    )


def test_parse_window():
    assert selectors.parse_window("FY2026") == Window(
        datetime.date(2026, 4, 1), datetime.date(2027, 4, 1), "fy"
    )
    assert selectors.parse_window("2027-03") == Window(
        datetime.date(2027, 3, 1), datetime.date(2027, 4, 1), "month"
    )
    for bad in ("", "FY26", "2026-00", "2026-13", "x", "FY20261"):
        assert selectors.parse_window(bad) is None
