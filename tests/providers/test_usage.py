import json
from decimal import Decimal

import pytest
from django.urls import reverse

from apps.providers import services, signing
from apps.providers.models import UsageRecord
from tests.factories import OrganizationFactory, PoolPeriodFactory, ProviderFactory, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def grant():
    period = PoolPeriodFactory()
    period.pool.provider.api_key_id = "sakura-key"
    period.pool.provider.save()
    return services.grant_create(
        organization=OrganizationFactory(), period_id=period.pk, gpu_hours="500", actor=StaffFactory()
    )


def _records(grant, n=3, start=0, **overrides):
    return [
        {
            "record_id": f"r-{i}",
            "grant_id": str(grant.public_id),
            "gpu_hours": "1.25",
            "started_at": "2026-04-02T00:00:00+09:00",
            "ended_at": "2026-04-02T01:15:00+09:00",
            **overrides,
        }
        for i in range(start, start + n)
    ]


def test_records_are_stored_once_whatever_the_redeliveries(grant):
    provider = grant.pool.provider
    result = services.usage_ingest(provider=provider, records=_records(grant, 3))
    assert (result.accepted, result.duplicates) == (3, 0)
    result = services.usage_ingest(provider=provider, records=_records(grant, 5))
    assert (result.accepted, result.duplicates) == (2, 3)
    assert UsageRecord.objects.count() == 5
    assert UsageRecord.objects.get(record_id="r-0").gpu_hours == Decimal("1.2500")


def test_duplicates_inside_one_batch_count_once(grant):
    records = _records(grant, 2) + _records(grant, 1)
    result = services.usage_ingest(provider=grant.pool.provider, records=records)
    assert (result.accepted, result.duplicates) == (2, 1)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"gpu_hours": "-1"}, "gpu_hours"),
        ({"gpu_hours": "NaN"}, "gpu_hours"),
        ({"gpu_hours": "lots"}, "gpu_hours"),
        ({"started_at": "yesterday"}, "started_at"),
        ({"started_at": "2026-04-02T00:00:00"}, "started_at"),  # no time zone
        ({"ended_at": "2026-04-01T00:00:00+09:00"}, "ended_at"),  # before the start
        ({"grant_id": "00000000-0000-0000-0000-000000000000"}, "grant_id"),
        ({"grant_id": "not-a-uuid"}, "grant_id"),
        ({"record_id": ""}, "record_id"),
    ],
)
def test_one_bad_record_refuses_the_batch_with_a_per_record_error(grant, overrides, field):
    records = _records(grant, 3)
    records[1].update(overrides)
    with pytest.raises(services.UsageRejected) as exc:
        services.usage_ingest(provider=grant.pool.provider, records=records)
    assert [e["index"] for e in exc.value.errors] == [1]
    assert field in exc.value.errors[0]["errors"]
    assert not UsageRecord.objects.exists()


def test_records_for_another_providers_grant_are_refused(grant):
    other = ProviderFactory(slug="kddi")
    with pytest.raises(services.UsageRejected):
        services.usage_ingest(provider=other, records=_records(grant, 1))


def test_lenient_mode_skips_bad_records_and_keeps_good_ones(grant):
    records = _records(grant, 3)
    records[0]["gpu_hours"] = "-3"
    result = services.usage_ingest(provider=grant.pool.provider, records=records, strict=False)
    assert result.accepted == 2 and len(result.skipped) == 1


# --- the signed push endpoint ---------------------------------------------------------------------


def _post(client, provider, body, *, secret=None, key_id=None, timestamp=None):
    url = reverse("providers:api-usage-push", args=[provider.slug])
    data = json.dumps(body).encode() if not isinstance(body, bytes) else body
    headers = signing.sign(
        secret=secret or provider.api_secret, method="POST", path=url, body=data, timestamp=timestamp
    )
    headers[signing.HEADER_KEY_ID] = key_id or provider.api_key_id
    return client.post(url, data, content_type="application/json", headers={k: v for k, v in headers.items()})


def test_push_stores_records_and_is_idempotent(client, grant):
    provider = grant.pool.provider
    response = _post(client, provider, {"records": _records(grant, 4)})
    assert response.status_code == 200 and response.json() == {"accepted": 4, "duplicates": 0}
    response = _post(client, provider, {"records": _records(grant, 4)})
    assert response.json() == {"accepted": 0, "duplicates": 4}


def test_push_with_bad_records_answers_400_with_each_error_and_writes_nothing(client, grant):
    records = _records(grant, 3)
    records[2]["gpu_hours"] = "x"
    response = _post(client, grant.pool.provider, {"records": records})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_records" and body["errors"][0]["index"] == 2
    assert body["errors"][0]["record_id"] == "r-2"
    assert not UsageRecord.objects.exists()


@pytest.mark.parametrize("problem", ["secret", "key_id", "stale"])
def test_push_refuses_bad_signatures(client, grant, problem):
    kwargs = (
        {"secret": "wrong"}
        if problem == "secret"
        else {"key_id": "nobody"}
        if problem == "key_id"
        else {"timestamp": 1_000_000_000}
    )
    response = _post(client, grant.pool.provider, {"records": _records(grant, 1)}, **kwargs)
    assert response.status_code == 401 and response.json()["code"] == "bad_signature"
    assert not UsageRecord.objects.exists()


def test_push_refuses_malformed_bodies_with_json_errors(client, grant):
    provider = grant.pool.provider
    assert _post(client, provider, b"{not json").status_code == 400
    assert _post(client, provider, {"rows": []}).status_code == 400
    response = _post(client, provider, {"records": [{}] * 10_001})
    assert response.status_code == 400 and response.json()["code"] == "too_many"
    assert client.get(reverse("providers:api-usage-push", args=[provider.slug])).status_code == 405
    url = reverse("providers:api-usage-push", args=["unknown"])
    assert client.post(url, b"{}", content_type="application/json").status_code == 404


def test_push_accepts_thousands_of_records_in_one_request(client, grant):
    response = _post(client, grant.pool.provider, {"records": _records(grant, 5000)})
    assert response.status_code == 200 and response.json()["accepted"] == 5000


# --- the monthly rollup --------------------------------------------------------------------------


def _months(grant) -> dict[str, tuple[Decimal, int]]:
    from apps.providers.models import UsageMonth

    return {
        f"{m.month:%Y-%m}": (m.gpu_hours, m.records)
        for m in UsageMonth.objects.filter(grant=grant).order_by("month")
    }


def test_the_monthly_rollup_counts_each_record_once_in_its_tokyo_month(grant):
    provider = grant.pool.provider
    # 30 April 15:30 UTC is 1 May 00:30 in Tokyo: a May record.
    may = _records(grant, 1, start=9, started_at="2026-04-30T15:30:00Z", ended_at="2026-04-30T16:00:00Z")
    records = _records(grant, 2) + may
    services.usage_ingest(provider=provider, records=records)
    assert _months(grant) == {"2026-04": (Decimal("2.5000"), 2), "2026-05": (Decimal("1.2500"), 1)}
    # Re-delivered and new records: only the new ones are added.
    services.usage_ingest(provider=provider, records=records + _records(grant, 1, start=20, gpu_hours="0.5"))
    assert _months(grant) == {"2026-04": (Decimal("3.0000"), 3), "2026-05": (Decimal("1.2500"), 1)}


@pytest.mark.django_db(transaction=True)
def test_concurrent_pushes_of_the_same_records_count_and_roll_up_once():
    """Four threads push the same 300 records (and 100 of their own) at once."""
    import threading

    from django.db import connection, connections
    from django.db.models import Sum

    if connection.vendor != "postgresql":
        pytest.skip("the race is proven on PostgreSQL")
    period = PoolPeriodFactory()
    grant = services.grant_create(
        organization=OrganizationFactory(), period_id=period.pk, gpu_hours="500", actor=StaffFactory()
    )
    barrier = threading.Barrier(4)
    accepted = []

    def push(k):
        try:
            barrier.wait()
            records = _records(grant, 300) + _records(grant, 100, start=1000 + 100 * k)
            accepted.append(services.usage_ingest(provider=grant.pool.provider, records=records).accepted)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=push, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(accepted) == UsageRecord.objects.count() == 700
    stored = UsageRecord.objects.aggregate(total=Sum("gpu_hours"))["total"]
    assert _months(grant) == {"2026-04": (stored, 700)}
