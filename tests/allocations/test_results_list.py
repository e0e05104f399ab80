"""The secretariat's round result at scale: paginated, filtered (GPU class, provider, pool,
organization kind, demand met or not) and searched (organization name), with totals computed by
SQL aggregates; the export follows the same filters; the query count does not grow with the
organizations, on any page, with or without filters."""

import csv
import io

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from apps.allocations import services
from apps.allocations.models import RoundResult
from tests.factories import (
    AllocationRoundFactory,
    OrganizationFactory,
    OrgRoleFactory,
    PoolPeriodFactory,
    ProviderFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
KINDS = ["enterprise", "startup", "academic", "public_body"]


@pytest.fixture
def staff_client(staff_client):
    staff_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return staff_client


@pytest.fixture
def pools():
    kddi = ProviderFactory(slug="kddi", name_ja="KDDI", name_en="KDDI")
    return {
        "hokkaido": PoolPeriodFactory(pool__code="hokkaido-h200", capacity_gpu_hours="800.00").pool,
        "osaka": PoolPeriodFactory(
            pool__code="osaka-h200", pool__provider=kddi, capacity_gpu_hours="400.00"
        ).pool,
        "b200": PoolPeriodFactory(
            pool__code="tama-b200", pool__provider=kddi, pool__gpu_class="B200", capacity_gpu_hours="300.00"
        ).pool,
    }


def _round(staff, pools, n: int, *, prefix: str = "org"):
    """A computed round for ``n`` organizations of every kind: each asks for H200 (some only on the
    Osaka pool, every fifth a little, so that its demand is met), every third also for B200."""
    allocation_round = AllocationRoundFactory(created_by=staff)
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        org = OrganizationFactory(
            slug=f"{prefix}-{i:03d}",
            name_en=f"{'Robotics' if i % 7 == 0 else 'Test'} {prefix} {i}",
            name_ja=f"組織{i}",
            kind=kind,
            **({"corporate_number": None} if kind in ("academic", "public_body") else {}),
        )
        user = OrgRoleFactory(organization=org, role="owner").user
        services.request_submit(
            round_id=allocation_round.pk,
            organization=org,
            gpu_class="H200",
            demand_gpu_hours=5 if i % 5 == 0 else 100 + 10 * i,
            justification="x",
            actor=user,
            eligible_pool_ids=[pools["osaka"].pk] if i % 3 == 1 else None,
        )
        if i % 3 == 0:
            services.request_submit(
                round_id=allocation_round.pk,
                organization=org,
                gpu_class="B200",
                demand_gpu_hours=20 + i,
                justification="x",
                actor=user,
            )
    services.round_close(round_id=allocation_round.pk, actor=staff)
    services.round_compute(round_id=allocation_round.pk, actor=staff)
    result = RoundResult.objects.filter(round=allocation_round, pool__isnull=False).first()
    services.result_adjust(result_id=result.pk, amount=result.amount, reason="checked", actor=staff)
    allocation_round.refresh_from_db()
    return allocation_round


def _expected(allocation_round, **filters):
    """What the list must show, computed here in Python from every result row."""
    rows = RoundResult.objects.filter(round=allocation_round).select_related("organization", "pool__provider")
    keys: dict = {}
    granted = 0
    for r in rows:
        o = r.organization
        if filters.get("gpu_class") and r.gpu_class != filters["gpu_class"]:
            continue
        if filters.get("kind") and o.kind != filters["kind"]:
            continue
        if filters.get("q") and filters["q"].lower() not in f"{o.name_ja} {o.name_en} {o.slug}".lower():
            continue
        if filters.get("provider") and not (r.pool and r.pool.provider.slug == filters["provider"]):
            continue
        if filters.get("pool") and not (r.pool and r.pool.code == filters["pool"]):
            continue
        met = r.stopped_reason == "demand_met"
        if filters.get("met") and met != (filters["met"] == "met"):
            continue
        keys[(r.gpu_class, o.slug)] = (r.demand, met)
        granted += r.final_amount
    return {
        "keys": sorted(keys),
        "demand": sum(d for d, _ in keys.values()),
        "met": sum(1 for _, m in keys.values() if m),
        "granted": granted,
    }


def _listed(client, allocation_round, **params) -> tuple[list, object]:
    """Every (class, slug) the list shows, page after page, and the first page's results."""
    url = reverse("allocations:round-results", args=[allocation_round.pk])
    first = client.get(url, params, **HX).context["results"]
    shown, number = [], 1
    while True:
        results = client.get(url, {**params, "page": number}, **HX).context["results"]
        shown += [(row.gpu_class, row.organization.slug) for row in results.rows]
        if not results.page.has_next():
            return shown, first
        number += 1


FILTERS = [
    {},
    {"gpu_class": "B200"},
    {"provider": "kddi"},
    {"pool": "hokkaido-h200"},
    {"kind": "academic"},
    {"met": "met"},
    {"met": "unmet", "kind": "startup"},
    {"q": "robotics"},
    {"q": "組織1"},
    {"q": "nothing-matches"},
]


def test_filters_search_pages_and_totals_match_the_rows(staff_client, staff, pools):
    allocation_round = _round(staff, pools, 60)
    for filters in FILTERS:
        expected = _expected(allocation_round, **filters)
        shown, results = _listed(staff_client, allocation_round, **filters)
        assert shown == expected["keys"], filters  # every row once, in order, over all pages
        assert (results.count, results.demand, results.granted, results.met) == (
            len(expected["keys"]),
            expected["demand"],
            expected["granted"],
            expected["met"],
        ), filters
    assert len(_expected(allocation_round)["keys"]) > 50  # more than one page unfiltered
    assert _expected(allocation_round, met="met")["keys"]  # the data has both kinds of rows
    assert _expected(allocation_round, met="unmet")["keys"]


def test_class_totals_come_from_every_row(staff_client, staff, pools):
    allocation_round = _round(staff, pools, 55)
    page = staff_client.get(reverse("allocations:round-detail", args=[allocation_round.pk]))
    classes = {c.gpu_class: c for c in page.context["classes"]}
    for gpu_class in ("B200", "H200"):
        expected = _expected(allocation_round, gpu_class=gpu_class)
        cls = classes[gpu_class]
        assert (cls.orgs, cls.demand, cls.granted, cls.met) == (
            len(expected["keys"]),
            expected["demand"],
            expected["granted"],
            expected["met"],
        )
        assert cls.granted == sum(p.granted for p in cls.pools)
    assert len(page.context["results"].rows) == 50  # one page, not every row


def test_page_shows_the_filter_form_and_the_export_follows_it(staff_client, staff, pools):
    allocation_round = _round(staff, pools, 12)
    detail = reverse("allocations:round-detail", args=[allocation_round.pk])
    text = staff_client.get(detail, {"kind": "academic", "met": "unmet"}).content.decode()
    assert 'name="kind"' in text and 'name="q"' in text and 'name="provider"' in text
    assert f"/exports/round-results.csv?round={allocation_round.pk}&amp;kind=academic&amp;met=unmet" in text
    export = reverse("reports:export", args=["round-results", "csv"])
    for filters in ({}, {"kind": "academic", "met": "unmet"}, {"provider": "kddi"}, {"q": "robotics"}):
        response = staff_client.get(export, {"round": allocation_round.pk, **filters})
        rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
        expected = RoundResult.objects.filter(round=allocation_round)
        keys = {(gpu_class, slug) for gpu_class, slug in _expected(allocation_round, **filters)["keys"]}
        expected = [
            r for r in expected.select_related("organization") if (r.gpu_class, r.organization.slug) in keys
        ]
        if filters.get("provider"):
            expected = [r for r in expected if r.pool and r.pool.provider.slug == filters["provider"]]
        assert sorted((r[2], r[1], r[4]) for r in rows[1:]) == sorted(
            (r.gpu_class, r.organization.slug, r.pool.code if r.pool else "") for r in expected
        ), filters


def test_bad_filters_are_ignored_not_errors(staff_client, staff, pools):
    allocation_round = _round(staff, pools, 6)
    url = reverse("allocations:round-results", args=[allocation_round.pk])
    for params in ({"kind": "pirate"}, {"page": "x"}, {"page": "999"}, {"pool": "nowhere"}, {"met": "1"}):
        response = staff_client.get(url, params, **HX)
        assert response.status_code == 200, params
        assert response.context["results"].rows, params
    detail = reverse("allocations:round-detail", args=[allocation_round.pk])
    assert staff_client.get(detail, {"gpu_class": "Z9", "page": "-1"}).status_code == 200


def test_results_partial_is_staff_only_and_pushes_the_pages_address(staff_client, staff, pools):
    allocation_round = _round(staff, pools, 4)
    url = reverse("allocations:round-results", args=[allocation_round.pk])
    response = staff_client.get(url, {"kind": "startup"}, **HX)
    assert response.status_code == 200
    assert "<html" not in response.content.decode()
    assert response["HX-Push-Url"] == (
        reverse("allocations:round-detail", args=[allocation_round.pk]) + "?kind=startup"
    )
    for user in (UserFactory(), OrgRoleFactory(role="owner").user):
        other = Client()
        other.force_login(user)
        assert other.get(url, **HX).status_code == 404
        assert other.get(url).status_code == 404
    open_round = AllocationRoundFactory(created_by=staff)
    assert staff_client.get(reverse("allocations:round-results", args=[open_round.pk])).status_code == 404


def test_query_count_does_not_grow_with_the_organizations(
    staff_client, staff, pools, django_assert_max_num_queries
):
    def counts(n, prefix):
        allocation_round = _round(staff, pools, n, prefix=prefix)
        detail = reverse("allocations:round-detail", args=[allocation_round.pk])
        partial = reverse("allocations:round-results", args=[allocation_round.pk])
        found = []
        for url, params, headers in (
            (detail, {}, {}),
            (detail, {"page": "2"}, {}),
            (detail, {"kind": "academic", "met": "met", "q": "test"}, {}),
            (partial, {"provider": "kddi", "page": "999"}, HX),  # the last page
        ):
            with django_assert_max_num_queries(30) as captured:
                response = staff_client.get(url, params, **headers)
            assert response.status_code == 200
            found.append(len(captured.captured_queries))
        return found

    small = counts(6, "s")
    large = counts(130, "l")  # more than two pages of H200 rows alone
    assert large == small
