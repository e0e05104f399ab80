"""Pages of the allocation round: the secretariat's round list and detail (actions, compute
progress, inline adjustments), an organization's requests and its explained result. Who may see
what (404 for everybody else), htmx partials and a query count that does not grow with the orgs."""

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from apps.allocations import services
from apps.allocations.models import AllocationRequest, AllocationRound, RoundResult
from apps.governance.models import AuditEvent
from apps.organizations.models import Membership
from apps.providers.models import QuotaGrant
from tests.factories import (
    AllocationRoundFactory,
    FairSharePolicyFactory,
    OrganizationFactory,
    OrgRoleFactory,
    PoolPeriodFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
JUST = "LLM の継続事前学習"


@pytest.fixture
def pools():
    hokkaido = PoolPeriodFactory(pool__code="hokkaido-h200", capacity_gpu_hours="800.00")
    osaka = PoolPeriodFactory(pool__code="osaka-h200", capacity_gpu_hours="400.00")
    return {"hokkaido": hokkaido.pool, "osaka": osaka.pool}


@pytest.fixture
def allocation_round(staff):
    return AllocationRoundFactory(created_by=staff)


@pytest.fixture
def org():
    return OrganizationFactory(slug="kyoto-u", name_en="Kyoto University", kind="academic")


def _client(user) -> Client:
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(staff_client):
    staff_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return staff_client


@pytest.fixture
def admin_client(org):
    return _client(OrgRoleFactory(organization=org, role="admin").user)


@pytest.fixture(params=["outsider", "plain_member"])
def other_client(request, org):
    if request.param == "outsider":
        return _client(UserFactory())
    return _client(OrgRoleFactory(organization=org, role="member").user)


def _request_data(demand, *, gpu_class="H200", floor="", pools=(), justification=JUST):
    prefix = f"req-{gpu_class}-"
    data = {
        prefix + "demand_gpu_hours": demand,
        prefix + "floor_gpu_hours": floor,
        prefix + "justification": justification,
    }
    if pools:
        data[prefix + "eligible_pools"] = [p.pk for p in pools]
    return data


def _computed(allocation_round, staff, pools, orgs):
    for i, organization in enumerate(orgs):
        user = OrgRoleFactory(organization=organization, role="owner").user
        services.request_submit(
            round_id=allocation_round.pk,
            organization=organization,
            gpu_class="H200",
            demand_gpu_hours=100 + 10 * i,
            justification=JUST,
            actor=user,
            eligible_pool_ids=[pools["osaka"].pk] if i % 3 == 0 else None,
        )
    services.round_close(round_id=allocation_round.pk, actor=staff)
    services.round_compute(round_id=allocation_round.pk, actor=staff)
    allocation_round.refresh_from_db()
    return allocation_round


# --- who may see what ----------------------------------------------------------------------------


def test_staff_pages_render(staff_client, allocation_round, pools, staff, org):
    assert staff_client.get(reverse("allocations:round-list")).status_code == 200
    _computed(allocation_round, staff, pools, [org])
    response = staff_client.get(reverse("allocations:round-detail", args=[allocation_round.pk]))
    assert response.status_code == 200
    assert "hokkaido-h200" in response.content.decode()
    assert response.context["classes"][0].gpu_class == "H200"


def test_staff_pages_are_404_for_everybody_else(
    other_client, admin_client, allocation_round, pools, staff, org
):
    _computed(allocation_round, staff, pools, [org])
    result = RoundResult.objects.filter(round=allocation_round).first()
    detail = reverse("allocations:round-detail", args=[allocation_round.pk])
    for client in (other_client, admin_client):
        assert client.get(reverse("allocations:round-list")).status_code == 404
        assert client.post(reverse("allocations:round-list"), {"name": "x"}).status_code == 404
        assert client.get(detail).status_code == 404
        assert client.get(detail, **HX).status_code == 404
        for action in ("close", "reopen", "compute", "publish"):
            url = reverse(f"allocations:round-{action}", args=[allocation_round.pk])
            assert client.post(url).status_code == 404
        adjust = reverse("allocations:result-adjust", args=[result.pk])
        assert client.post(adjust, {"amount": 1, "reason": "x"}, **HX).status_code == 404
    allocation_round.refresh_from_db()
    assert allocation_round.status == "computed"
    assert not RoundResult.objects.filter(adjusted_amount__isnull=False).exists()


def test_member_pages_for_org_admins_and_staff(admin_client, staff_client, allocation_round, pools, org):
    for client in (admin_client, staff_client):
        response = client.get(reverse("allocations:org-rounds", args=[org.slug]))
        assert response.status_code == 200
        assert [e["gpu_class"] for e in response.context["sections"][0]["entries"]] == ["H200"]
        content = response.content.decode()
        assert 'type="checkbox"' in content and "osaka-h200" in content
        url = reverse("allocations:org-round-detail", args=[org.slug, allocation_round.pk])
        assert client.get(url).status_code == 200
    assert (
        reverse("allocations:org-rounds", args=[org.slug])
        in admin_client.get(reverse("organizations:org-manage", args=[org.slug])).content.decode()
    )


def test_member_pages_are_404_for_outsiders_and_plain_members(
    other_client, admin_client, allocation_round, pools, org
):
    admin_client.post(
        reverse("allocations:org-request-save", args=[org.slug, allocation_round.pk, "H200"]),
        _request_data(100),
    )
    req = AllocationRequest.objects.get()
    urls_get = [
        reverse("allocations:org-rounds", args=[org.slug]),
        reverse("allocations:org-round-detail", args=[org.slug, allocation_round.pk]),
    ]
    for url in urls_get:
        assert other_client.get(url).status_code == 404
        assert other_client.get(url, **HX).status_code == 404
    save = reverse("allocations:org-request-save", args=[org.slug, allocation_round.pk, "H200"])
    assert other_client.post(save, _request_data(500)).status_code == 404
    withdraw = reverse("allocations:org-request-withdraw", args=[org.slug, req.pk])
    assert other_client.post(withdraw).status_code == 404
    req.refresh_from_db()
    assert req.demand_gpu_hours == 100
    # An admin of another organization cannot reach this one's requests either.
    stranger = _client(OrgRoleFactory(organization=OrganizationFactory(), role="owner").user)
    assert stranger.post(withdraw).status_code == 404
    assert AllocationRequest.objects.filter(pk=req.pk).exists()


def test_anonymous_users_are_sent_to_log_in(client, allocation_round, org):
    response = client.get(reverse("allocations:org-rounds", args=[org.slug]))
    assert response.status_code == 302
    assert client.get(reverse("allocations:round-list")).status_code == 302


# --- the whole flow ------------------------------------------------------------------------------


def test_create_request_close_compute_adjust_publish_and_explain(
    staff_client, admin_client, pools, org, django_capture_on_commit_callbacks
):
    FairSharePolicyFactory(is_default=True)
    # The secretariat opens a round; a bad period is refused with the service's message.
    bad = staff_client.post(
        reverse("allocations:round-list"),
        {"name": "Q1", "fiscal_year": 2026, "period_start": "2026-04-15", "period_end": "2026-07-01"},
    )
    assert bad.status_code == 400
    assert "whole months" in bad.content.decode()
    response = staff_client.post(
        reverse("allocations:round-list"),
        {"name": "2026 Q1", "fiscal_year": 2026, "period_start": "2026-04-01", "period_end": "2026-07-01"},
    )
    allocation_round = AllocationRound.objects.get()
    detail = reverse("allocations:round-detail", args=[allocation_round.pk])
    assert response.status_code == 302 and response.url == detail

    # Members file requests: Kyoto anywhere, Medi only on the Osaka pool.
    save = reverse("allocations:org-request-save", args=[org.slug, allocation_round.pk, "H200"])
    invalid = admin_client.post(save, _request_data(""))
    assert invalid.status_code == 400
    assert admin_client.post(save, _request_data(500)).status_code == 302
    assert admin_client.post(save, _request_data(700)).status_code == 302  # an update
    assert AllocationRequest.objects.get(organization=org).demand_gpu_hours == 700
    medi = OrganizationFactory(slug="medi-lab", name_en="Medi Lab")
    medi_client = _client(OrgRoleFactory(organization=medi, role="owner").user)
    medi_save = reverse("allocations:org-request-save", args=[medi.slug, allocation_round.pk, "H200"])
    assert medi_client.post(medi_save, _request_data(600, pools=[pools["osaka"]])).status_code == 302
    assert [p.code for p in AllocationRequest.objects.get(organization=medi).eligible_pools.all()] == [
        "osaka-h200"
    ]

    # Closed: requests can no longer change (the service's refusal is shown).
    staff_client.post(reverse("allocations:round-close", args=[allocation_round.pk]))
    allocation_round.refresh_from_db()
    assert allocation_round.status == "closed"
    refused = admin_client.post(save, _request_data(10))
    assert refused.status_code == 400
    assert "only be filed or changed while the round is open" in refused.content.decode()

    # While a compute task runs, the page polls its progress partial every second.
    AllocationRound.objects.filter(pk=allocation_round.pk).update(task_id="t", progress=30)
    page = staff_client.get(detail).content.decode()
    assert 'hx-trigger="every 1s"' in page and "<progress" in page
    partial = staff_client.get(detail, **HX)
    assert partial.status_code == 200 and 'hx-trigger="every 1s"' in partial.content.decode()
    assert "<html" not in partial.content.decode()
    assert "HX-Refresh" not in partial.headers

    # Computing (eager): the task finishes at once; the partial then asks for a refresh.
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(reverse("allocations:round-compute", args=[allocation_round.pk]))
    allocation_round.refresh_from_db()
    assert allocation_round.status == "computed" and allocation_round.progress == 100
    done = staff_client.get(detail, **HX)
    assert done.headers["HX-Refresh"] == "true"
    assert 'hx-trigger="every 1s"' not in done.content.decode()
    page = staff_client.get(detail)
    assert "Eligible pools exhausted" in page.content.decode()
    [h200] = page.context["classes"]
    assert (h200.capacity, h200.demand, h200.granted) == (1200, 1300, 1100)

    # The member does not see an unpublished result; the secretariat does.
    member_detail = reverse("allocations:org-round-detail", args=[org.slug, allocation_round.pk])
    assert "not published yet" in admin_client.get(member_detail).content.decode()
    assert staff_client.get(member_detail).context["visible"] is True

    # Adjusting inline: an error comes back in the row with status 400; a valid one swaps the row.
    result = RoundResult.objects.get(round=allocation_round, organization=org, pool=pools["hokkaido"])
    adjust = reverse("allocations:result-adjust", args=[result.pk])
    too_much = staff_client.post(adjust, {"amount": 900, "reason": "more"}, **HX)
    assert too_much.status_code == 400
    body = too_much.content.decode()
    assert body.strip().startswith(f'<tr id="row-{org.pk}-h200"')
    assert "row-error" in body and "at most" in body
    no_reason = staff_client.post(adjust, {"amount": 650, "reason": ""}, **HX)
    assert no_reason.status_code == 400 and "Give a reason" in no_reason.content.decode()
    ok = staff_client.post(adjust, {"amount": 650, "reason": "moved 50 h to next quarter"}, **HX)
    assert ok.status_code == 200 and "row-error" not in ok.content.decode()
    assert "650" in ok.content.decode()
    result.refresh_from_db()
    assert result.final_amount == 650
    assert AuditEvent.objects.filter(action="round_result.adjusted").count() == 1

    # Publishing creates the grants; the member reads the explanation.
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(reverse("allocations:round-publish", args=[allocation_round.pk]))
    allocation_round.refresh_from_db()
    assert allocation_round.status == "published"
    assert sorted(int(g.gpu_hours) for g in QuotaGrant.objects.all()) == [400, 650]
    text = admin_client.get(member_detail).content.decode()
    assert "Your weight was 1" in text
    assert "Every organization in H200 was raised together to the level" in text
    assert "Your demand was met." in text
    assert "moved 50 h to next quarter" in text
    medi_text = medi_client.get(
        reverse("allocations:org-round-detail", args=[medi.slug, allocation_round.pk])
    )
    assert "the pools you can use ran out: osaka-h200" in medi_text.content.decode()
    assert "hokkaido" not in medi_text.content.decode()  # nothing of the other org's placement
    assert (
        reverse("allocations:org-round-detail", args=[org.slug, allocation_round.pk])
        in admin_client.get(reverse("allocations:org-rounds", args=[org.slug])).content.decode()
    )


def test_withdraw_removes_the_request(admin_client, allocation_round, pools, org):
    save = reverse("allocations:org-request-save", args=[org.slug, allocation_round.pk, "H200"])
    admin_client.post(save, _request_data(100))
    req = AllocationRequest.objects.get()
    response = admin_client.post(reverse("allocations:org-request-withdraw", args=[org.slug, req.pk]))
    assert response.status_code == 302
    assert not AllocationRequest.objects.exists()


def test_an_unknown_class_is_404(admin_client, allocation_round, pools, org):
    url = reverse("allocations:org-request-save", args=[org.slug, allocation_round.pk, "A100"])
    assert admin_client.post(url, _request_data(100, gpu_class="A100")).status_code == 404


def test_action_refusal_becomes_a_message(staff_client, allocation_round):
    response = staff_client.post(
        reverse("allocations:round-publish", args=[allocation_round.pk]), follow=True
    )
    assert "Only a computed round can be published." in response.content.decode()


# --- query counts --------------------------------------------------------------------------------


def test_staff_round_detail_query_count_does_not_grow_with_the_orgs(
    staff_client, staff, pools, django_assert_max_num_queries, django_assert_num_queries
):
    def count(n):
        allocation_round = _computed(
            AllocationRoundFactory(created_by=staff), staff, pools, [OrganizationFactory() for _ in range(n)]
        )
        result = RoundResult.objects.filter(round=allocation_round, pool__isnull=False).first()
        services.result_adjust(result_id=result.pk, amount=result.amount, reason="checked", actor=staff)
        url = reverse("allocations:round-detail", args=[allocation_round.pk])
        with django_assert_max_num_queries(100) as captured:
            response = staff_client.get(url)
        assert len({r.organization.pk for r in response.context["results"].rows}) == n
        return url, len(captured.captured_queries)

    _, small = count(10)
    url, large = count(40)
    assert large == small
    with django_assert_num_queries(small):
        staff_client.get(url)


def test_the_explanation_in_japanese_names_the_cap_and_a_left_out_request(staff, pools):
    """Japanese is the default language: a member reads its explained result in Japanese, including
    the policy's cap; a member whose membership lapsed is told why its request was not considered."""
    allocation_round = AllocationRoundFactory(policy=FairSharePolicyFactory(class_caps={"H200": 300}))
    capped = OrganizationFactory(slug="capped-lab")
    lapsed = OrganizationFactory(slug="lapsed-lab")
    clients = {}
    for organization in (capped, lapsed):
        owner = OrgRoleFactory(organization=organization, role="owner").user
        services.request_submit(
            round_id=allocation_round.pk,
            organization=organization,
            gpu_class="H200",
            demand_gpu_hours=500,
            justification=JUST,
            actor=owner,
        )
        clients[organization.slug] = Client()
        clients[organization.slug].force_login(owner)  # no language cookie: Japanese
    Membership.objects.filter(organization=lapsed).update(status="lapsed")
    services.round_close(round_id=allocation_round.pk, actor=staff)
    services.round_compute(round_id=allocation_round.pk, actor=staff)
    services.round_publish(round_id=allocation_round.pk, actor=staff)

    url = reverse("allocations:org-round-detail", args=[capped.slug, allocation_round.pk])
    text = clients["capped-lab"].get(url).content.decode()
    assert '<html lang="ja"' in text
    assert "あなたの重みは" in text
    assert "上限" in text and "300" in text and "500" in text
    assert "上限までの需要は満たされました" in text
    url = reverse("allocations:org-round-detail", args=[lapsed.slug, allocation_round.pk])
    text = clients["lapsed-lab"].get(url).content.decode()
    assert "会員資格が有効でなかったため" in text
