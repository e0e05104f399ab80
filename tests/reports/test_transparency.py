"""The public transparency report: per published round and per fiscal year, figures by class,
provider and kind of organization, fairness (max-min level, Jain's index among unmet orgs), program
budgets; no organization named; unpublished rounds are 404."""

import pytest
from django.urls import reverse

from apps.allocations import services as rounds
from apps.providers import services as providers
from apps.reports import selectors
from tests.factories import (
    AllocationRoundFactory,
    OrganizationFactory,
    OrgRoleFactory,
    PoolPeriodFactory,
    StaffFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def published():
    """H200: hokkaido (800) for anyone, osaka (400); four orgs ask 500 each; two may only use osaka.
    Fair result: the two osaka-only orgs share osaka (200 each, unmet), the two others share
    hokkaido (400 each, unmet at the level 400)."""
    staff = StaffFactory()
    PoolPeriodFactory(pool__code="hokkaido-h200", capacity_gpu_hours="800.00")
    osaka = PoolPeriodFactory(pool__code="osaka-h200", capacity_gpu_hours="400.00").pool
    allocation_round = AllocationRoundFactory(name="2026年度 第1四半期")
    orgs = []
    for slug, kind, only_osaka in [
        ("secret-startup", "startup", True),
        ("quiet-univ", "academic", True),
        ("big-corp", "enterprise", False),
        ("other-corp", "enterprise", False),
    ]:
        org = OrganizationFactory(slug=slug, kind=kind, name_ja=f"{slug} 株式会社", name_en=f"{slug} Inc.")
        orgs.append(org)
        rounds.request_submit(
            round_id=allocation_round.pk,
            organization=org,
            gpu_class="H200",
            demand_gpu_hours=500,
            justification="x",
            actor=OrgRoleFactory(organization=org, role="owner").user,
            eligible_pool_ids=[osaka.pk] if only_osaka else None,
        )
    rounds.round_close(round_id=allocation_round.pk, actor=staff)
    rounds.round_compute(round_id=allocation_round.pk, actor=staff)
    grants = rounds.round_publish(round_id=allocation_round.pk, actor=staff)
    startup_grant = next(g for g in grants if g.organization.slug == "secret-startup")
    providers.usage_ingest(
        provider=startup_grant.pool.provider,
        records=[
            {
                "record_id": "t-1",
                "grant_id": str(startup_grant.public_id),
                "gpu_hours": "50",
                "started_at": "2026-04-05T10:00:00+09:00",
                "ended_at": "2026-04-05T11:00:00+09:00",
            }
        ],
    )
    allocation_round.refresh_from_db()
    return allocation_round


def test_round_figures_and_fairness(published, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        report = selectors.round_report(allocation_round=published)
    [h200] = report.classes
    assert (h200.capacity, h200.requested, h200.granted, h200.used) == (1200, 2000, 1200, 50)
    assert h200.organizations == 4 and h200.unmet == 4
    assert h200.level == pytest.approx(400)
    # x = granted / (weight 1 * level 400): 0.5, 0.5, 1, 1 -> (3)^2 / (4 * 2.5) = 0.9
    assert h200.jain == pytest.approx(0.9)
    kinds = {k.key: (k.organizations, k.granted, round(k.share, 1)) for k in report.kinds}
    assert kinds["startup"] == (1, 200, 16.7)
    assert kinds["enterprise"] == (2, 800, 66.7)
    assert kinds["public_body"] == (0, 0, 0.0)


def test_jain_index():
    assert selectors.jain_index([1, 1, 1]) == pytest.approx(1.0)
    assert selectors.jain_index([1, 0, 0, 0]) == pytest.approx(0.25)
    assert selectors.jain_index([]) is None


def test_the_public_pages_show_numbers_and_no_organization(client, published):
    page = client.get(reverse("reports:transparency-round", args=[published.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "2026年度 第1四半期" in text and "0.900" in text
    for org in ("secret-startup", "quiet-univ", "big-corp", "株式会社"):
        assert org not in text
    assert 'data-chart="class-chart"' in text and 'data-chart="kind-chart"' in text
    index = client.get(reverse("reports:transparency")).content.decode()
    assert reverse("reports:transparency-round", args=[published.pk]) in index
    year = client.get(reverse("reports:transparency-year", args=[2026]))
    assert year.status_code == 200 and "secret-startup" not in year.content.decode()
    [h200] = year.context["report"].classes
    assert (h200.granted, h200.used) == (1200, 50)


def test_unpublished_rounds_and_empty_years_are_404(client):
    computed = AllocationRoundFactory(status="computed")
    assert client.get(reverse("reports:transparency-round", args=[computed.pk])).status_code == 404
    assert client.get(reverse("reports:transparency-year", args=[2031])).status_code == 404


def test_query_count_does_not_grow_with_the_organizations(client, published, django_assert_max_num_queries):
    url = reverse("reports:transparency-round", args=[published.pk])
    client.get(url)
    with django_assert_max_num_queries(14):
        client.get(url)
