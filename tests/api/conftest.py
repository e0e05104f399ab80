import datetime

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from apps.allocations import services as allocation_services
from tests.api.factories import TokenFactory
from tests.factories import (
    AllocationRoundFactory,
    OrganizationFactory,
    OrgRoleFactory,
    PoolPeriodFactory,
    QuotaGrantFactory,
    UsageRecordFactory,
    UserFactory,
)

JUST = "LLM の継続事前学習"


def api_client(token=None, *, language: str | None = None, enforce_csrf_checks: bool = False) -> APIClient:
    client = APIClient(enforce_csrf_checks=enforce_csrf_checks)
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.secret}")
    if language:
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


@pytest.fixture
def org(db):
    return OrganizationFactory(
        slug="kyoto-u", name_ja="京都大学", name_en="Kyoto University", kind="academic"
    )


@pytest.fixture
def other_org(db):
    return OrganizationFactory(slug="rival-ai", name_ja="ライバルAI", name_en="Rival AI")


@pytest.fixture
def owner(org):
    user = UserFactory(language="en")
    OrgRoleFactory(organization=org, user=user, role="owner")
    return user


@pytest.fixture
def rival_owner(other_org):
    user = UserFactory(language="en")
    OrgRoleFactory(organization=other_org, user=user, role="owner")
    return user


@pytest.fixture
def write_token(owner):
    return TokenFactory(user=owner, scope="write")


@pytest.fixture
def read_token(owner):
    return TokenFactory(user=owner, scope="read")


@pytest.fixture
def client(write_token):
    return api_client(write_token)


@pytest.fixture
def pools(db):
    hokkaido = PoolPeriodFactory(pool__code="hokkaido-h200", capacity_gpu_hours="800.00")
    osaka = PoolPeriodFactory(pool__code="osaka-h200", capacity_gpu_hours="400.00")
    tokyo = PoolPeriodFactory(
        pool__code="tokyo-b200",
        pool__gpu_class="B200",
        pool__provider__slug="kddi",
        pool__provider__name_ja="KDDI",
        pool__provider__name_en="KDDI",
        capacity_gpu_hours="300.00",
    )
    return {"hokkaido": hokkaido, "osaka": osaka, "tokyo": tokyo}


@pytest.fixture
def open_round(staff):
    return AllocationRoundFactory(created_by=staff)


def submit(allocation_round, organization, user, demand, gpu_class="H200", **kwargs):
    return allocation_services.request_submit(
        round_id=allocation_round.pk,
        organization=organization,
        gpu_class=gpu_class,
        demand_gpu_hours=demand,
        justification=JUST,
        actor=user,
        **kwargs,
    )


def grant_with_usage(organization, period, *, records=1, started_at=None, gpu_hours="10.0000"):
    grant = QuotaGrantFactory(organization=organization, period=period, state="active")
    for _ in range(records):
        kwargs = {"grant": grant, "gpu_hours": gpu_hours}
        if started_at is not None:
            kwargs |= {"started_at": started_at, "ended_at": started_at + datetime.timedelta(hours=1)}
        UsageRecordFactory(**kwargs)
    return grant
