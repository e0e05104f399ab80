"""Poison usage: whatever a provider sends, pushed or pulled, the portal answers a clear refusal (a
JSON 400 for pushes; skipped and recorded for pulls), stores the good records, moves the cursor on,
and never answers 500 or gets stuck."""

import json
import threading
import uuid

import pytest
from django.db import connection, connections
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.providers import services, signing
from apps.providers.models import UsageMonth, UsageRecord, UsageRejection
from tests.factories import OrganizationFactory, PoolPeriodFactory, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def grant():
    period = PoolPeriodFactory()
    period.pool.provider.api_key_id = "sakura-key"
    period.pool.provider.save()
    return services.grant_create(
        organization=OrganizationFactory(), period_id=period.pk, gpu_hours="500", actor=StaffFactory()
    )


def _record(grant, i=0, **overrides):
    return {
        "record_id": f"r-{i}",
        "grant_id": str(grant.public_id),
        "gpu_hours": "1.25",
        "started_at": "2026-04-02T00:00:00+09:00",
        "ended_at": "2026-04-02T01:15:00+09:00",
        **overrides,
    }


def _post(client, provider, body):
    url = reverse("providers:api-usage-push", args=[provider.slug])
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = signing.sign(secret=provider.api_secret, method="POST", path=url, body=data)
    headers[signing.HEADER_KEY_ID] = provider.api_key_id
    return client.post(url, data, content_type="application/json", headers=headers)


POISON = [
    # impossible dates and offsets
    ({"started_at": "2026-02-30T00:00:00+09:00"}, "started_at"),
    ({"started_at": "2026-13-01T00:00:00Z"}, "started_at"),
    ({"started_at": "2026-04-02T24:00:00Z"}, "started_at"),
    ({"started_at": "2026-04-02T00:00:60Z"}, "started_at"),
    ({"started_at": "2026-04-02T00:00:00+25:00"}, "started_at"),
    ({"started_at": "2026-04-02T00:00:00+09:60"}, "started_at"),
    ({"ended_at": "2026-04-02T00:00:00-24:00"}, "ended_at"),
    # out-of-range years (including ones whose UTC instant is not even representable)
    ({"started_at": "0001-01-01T00:00:00+09:00"}, "started_at"),
    ({"ended_at": "9999-12-31T23:59:59-09:00"}, "ended_at"),
    ({"started_at": "1999-12-31T23:59:59Z"}, "started_at"),
    ({"ended_at": "2101-01-01T00:00:00Z"}, "ended_at"),
    ({"started_at": "2000-01-01T00:30:00+01:00"}, "started_at"),  # 1999 in UTC
    # not strings, not the right kind of thing
    ({"started_at": 1775055600}, "started_at"),
    ({"started_at": "2026-04-02T00:00:00.1234567890+09:00" + " " * 30}, "started_at"),
    ({"grant_id": ["a", "b"]}, "grant_id"),
    ({"grant_id": {"id": 1}}, "grant_id"),
    ({"grant_id": 7}, "grant_id"),
    ({"grant_id": None}, "grant_id"),
    ({"gpu_hours": True}, "gpu_hours"),
    ({"gpu_hours": [1]}, "gpu_hours"),
    ({"gpu_hours": 1e300}, "gpu_hours"),
    ({"gpu_hours": "1e3"}, "gpu_hours"),
    ({"gpu_hours": "1000000.0001"}, "gpu_hours"),
    ({"record_id": {"nested": [1, 2]}}, "record_id"),
    ({"record_id": "x" * 101}, "record_id"),
    # text PostgreSQL cannot store (or nobody could read)
    ({"record_id": "r-\x00"}, "record_id"),
    ({"record_id": "r-\ud800"}, "record_id"),
    ({"record_id": "r-\udfff-x"}, "record_id"),
    ({"record_id": "r-\x1b[31m"}, "record_id"),
    ({"grant_id": "\x00"}, "grant_id"),
    ({"grant_id": "\ud83d"}, "grant_id"),
]


@pytest.mark.parametrize(("overrides", "field"), POISON)
def test_a_poison_record_is_refused_with_its_reason_and_nothing_is_stored(client, grant, overrides, field):
    provider = grant.pool.provider
    records = [_record(grant, 0), _record(grant, 1, **overrides), _record(grant, 2)]
    response = _post(client, provider, {"records": records})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid_records"
    assert [(e["index"], list(e["errors"])) for e in body["errors"]] == [(1, [field])]
    assert not UsageRecord.objects.exists() and not UsageMonth.objects.exists()
    # Recorded for the secretariat and the operators, whatever the record held.
    rejection = UsageRejection.objects.get(provider=provider)
    assert (rejection.source, rejection.rejected, rejection.accepted) == ("push", 1, 0)
    assert rejection.errors[0]["index"] == 1 and field in rejection.errors[0]["errors"]


def test_a_record_that_is_not_an_object_is_refused(client, grant):
    response = _post(client, grant.pool.provider, {"records": [_record(grant), "r-1", None, [1]]})
    assert response.status_code == 400
    assert [e["index"] for e in response.json()["errors"]] == [1, 2, 3]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b'{"records": [NaN]}', "not valid JSON"),
        (b'{"records": [], "x": Infinity}', "not valid JSON"),
        (b'{"records": [' + b"9" * 5000 + b"]}", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
        (b'{"records": [' + b"[" * 40 + b"]" * 40 + b"]}", "nested"),
        (b'{"records": [{"record_id": "r", "x": ' + b'{"a":' * 500 + b"1" + b"}" * 500 + b"}]}", "nested"),
        (b'{"records": "r"}', "records"),
        (b"[]", "records"),
    ],
)
def test_malformed_bodies_get_a_json_400_never_a_500(client, grant, body, reason):
    response = _post(client, grant.pool.provider, body)
    assert response.status_code == 400
    data = response.json()
    assert reason in data["error"] and data["errors"]
    assert not UsageRecord.objects.exists()


def test_a_body_larger_than_the_limit_gets_a_json_400(client, grant, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = _post(client, grant.pool.provider, {"records": [_record(grant, i) for i in range(20)]})
    assert response.status_code == 400 and response.json()["code"] == "too_large"


def test_an_absurd_signature_timestamp_is_a_401_not_a_500(client, grant):
    provider = grant.pool.provider
    url = reverse("providers:api-usage-push", args=[provider.slug])
    headers = {
        signing.HEADER_KEY_ID: provider.api_key_id,
        signing.HEADER_TIMESTAMP: "9" * 400,
        signing.HEADER_SIGNATURE: "v1=00",
    }
    response = client.post(url, b"{}", content_type="application/json", headers=headers)
    assert response.status_code == 401


def test_good_records_with_extreme_but_valid_values_are_stored(client, grant):
    records = [
        _record(grant, 0, started_at="2026-04-02T00:00:00.123456789Z", ended_at="2026-04-02T00:00:01z"),
        _record(
            grant, 1, gpu_hours=0, started_at="2026-04-01T23:00:00-14:00", ended_at="2026-04-02T13:00:00Z"
        ),
        _record(grant, 2, gpu_hours=1000000, record_id="日本語-é-" + "x" * 90),
        _record(grant, 3, grant_id=str(grant.public_id).upper().replace("-", "")),
    ]
    response = _post(client, grant.pool.provider, {"records": records})
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 4, "duplicates": 0}


# --- pulled pages ----------------------------------------------------------------------------------


@pytest.fixture
def pulling(simulator, settings, grant):
    provider = grant.pool.provider
    settings.PROVIDER_SECRETS = {provider.slug: simulator.secret}
    provider.api_base_url = simulator.base_url
    provider.api_key_id = simulator.key_id
    provider.save()
    return provider


def test_bad_records_on_a_pulled_page_are_skipped_recorded_and_the_cursor_moves(simulator, grant, pulling):
    provider = pulling
    page = [_record(grant, 0)] + [_record(grant, 10 + n, **o) for n, (o, _f) in enumerate(POISON)]
    page += [_record(grant, 1), "not a record", _record(grant, 2)]
    simulator.add_raw_usage(page)
    result = services.usage_pull(provider_id=provider.pk)
    assert result.accepted == 3 and len(result.skipped) == len(POISON) + 1
    assert set(UsageRecord.objects.values_list("record_id", flat=True)) == {"r-0", "r-1", "r-2"}
    provider.refresh_from_db()
    cursor = provider.usage_cursor
    assert cursor
    rejection = UsageRejection.objects.get(provider=provider)
    assert (rejection.source, rejection.rejected, rejection.accepted) == ("pull", len(POISON) + 1, 3)
    # The next pull starts after the page: nothing is refused again, new good records come in.
    simulator.add_raw_usage([_record(grant, 3)])
    assert services.usage_pull(provider_id=provider.pk).accepted == 1
    assert UsageRejection.objects.count() == 1
    provider.refresh_from_db()
    assert provider.usage_cursor != cursor


def test_a_page_of_only_bad_records_still_moves_the_cursor(simulator, grant, pulling):
    simulator.add_raw_usage([_record(grant, 0, grant_id=[1])] * 3)
    result = services.usage_pull(provider_id=pulling.pk)
    assert result.accepted == 0 and len(result.skipped) == 3
    pulling.refresh_from_db()
    assert pulling.usage_cursor
    simulator.add_raw_usage([_record(grant, 5)])
    assert services.usage_pull(provider_id=pulling.pk).accepted == 1


def test_the_refusals_show_on_the_provider_pages(staff_client, simulator, grant, pulling):
    from tests.factories import ProviderOperatorFactory

    simulator.add_raw_usage([_record(grant, 0, record_id="bad-\ud800"), _record(grant, 1, gpu_hours="-1")])
    services.usage_pull(provider_id=pulling.pk)
    response = staff_client.get(reverse("providers:provider-detail", args=[pulling.slug]))
    page = response.content.decode()
    assert response.status_code == 200 and "gpu_hours" in page and "bad-\\ud800" in page
    staff_client.force_login(ProviderOperatorFactory(provider=pulling).user)
    response = staff_client.get(reverse("providers:provider-console", args=[pulling.slug]))
    assert response.status_code == 200 and "gpu_hours" in response.content.decode()


# --- concurrency ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_pushes_of_the_same_records_in_opposite_orders_do_not_deadlock():
    """Before the records were inserted in a canonical order, two pushes of the same 3,000 records,
    one reversed, met in the middle and PostgreSQL aborted one with a deadlock (a 500)."""
    if connection.vendor != "postgresql":
        pytest.skip("the lock order is proven on PostgreSQL")
    period = PoolPeriodFactory()
    grants = [
        services.grant_create(
            organization=OrganizationFactory(), period_id=period.pk, gpu_hours="5", actor=StaffFactory()
        )
        for _ in range(3)
    ]
    records = [
        _record(
            grants[i % 3],
            i,
            started_at=f"2026-{4 + i % 2:02d}-02T00:00:00+09:00",
            ended_at=f"2026-{4 + i % 2:02d}-02T01:00:00+09:00",
        )
        for i in range(3000)
    ]
    orders = [records, records[::-1], records[1500:] + records[:1500], records[::2] + records[1::2]]
    barrier = threading.Barrier(len(orders))
    outcomes = []

    def push(batch):
        try:
            barrier.wait()
            outcomes.append(services.usage_ingest(provider=period.pool.provider, records=batch).accepted)
        except Exception as exc:  # a deadlock surfaces here
            outcomes.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=push, args=(order,)) for order in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(isinstance(o, int) for o in outcomes), outcomes
    assert sum(outcomes) == UsageRecord.objects.count() == 3000
    assert sum(UsageMonth.objects.values_list("records", flat=True)) == 3000


# --- fuzzing ---------------------------------------------------------------------------------------

JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
NOT_TEXT = JUNK.filter(lambda v: not isinstance(v, str))
BAD_CHAR = st.sampled_from(["\x00", "\x07", "\x1f", "\x7f", "\x9b", "\ud800", "\udbff", "\udc00"])


@st.composite
def bad_times(draw):
    """Strings shaped like RFC 3339 that name no instant in the years 2000-2100, or not strings."""
    kind = draw(st.sampled_from(["field", "year", "junk"]))
    parts = {
        "year": draw(st.integers(2000, 2100)),
        "month": draw(st.integers(1, 12)),
        "day": draw(st.integers(1, 28)),
        "hour": draw(st.integers(0, 23)),
        "minute": draw(st.integers(0, 59)),
        "second": draw(st.integers(0, 59)),
        "oh": draw(st.integers(0, 14)),
        "om": draw(st.integers(0, 59)),
    }
    if kind == "field":
        name = draw(st.sampled_from(["month", "day", "hour", "minute", "second", "oh", "om"]))
        low = {"month": 13, "day": 32, "hour": 24, "minute": 60, "second": 60, "oh": 24, "om": 60}[name]
        parts[name] = draw(st.integers(low, 99) | (st.just(0) if name in ("month", "day") else st.nothing()))
    elif kind == "year":
        parts["year"] = draw(st.integers(0, 1998) | st.integers(2102, 9999))
    else:
        return draw(NOT_TEXT | st.text(max_size=30).filter(lambda t: "T" not in t))
    sign = draw(st.sampled_from("+-"))
    p = parts
    return (
        f"{p['year']:04d}-{p['month']:02d}-{p['day']:02d}T{p['hour']:02d}:{p['minute']:02d}:"
        f"{p['second']:02d}{sign}{p['oh']:02d}:{p['om']:02d}"
    )


POISONED_FIELD = {
    "record_id": st.just("")
    | st.text(min_size=101, max_size=120)
    | NOT_TEXT
    | st.tuples(st.text(max_size=5), BAD_CHAR, st.text(max_size=5)).map("".join),
    "grant_id": NOT_TEXT | st.text(max_size=40) | st.uuids().map(str),  # unknown uuids too
    "gpu_hours": st.floats(max_value=-0.0001, allow_infinity=False)
    | st.floats(min_value=1_000_001, allow_infinity=False)
    | st.booleans()
    | st.text(max_size=10).filter(lambda t: not t.replace(".", "", 1).isdigit())
    | st.lists(st.integers(), max_size=2)
    | st.just(None),
    "started_at": bad_times(),
    "ended_at": bad_times(),
}


@st.composite
def batches_with_poison(draw):
    """A batch of good records (ids r-0…, grant id "GRANT" for the test to fill in) with one field
    poisoned or missing in some of them; returns the batch and the set of poisoned indexes."""
    size = draw(st.integers(1, 6))
    poisoned = draw(st.sets(st.integers(0, size - 1), min_size=1))
    batch = []
    for i in range(size):
        record = {
            "record_id": f"r-{i}",
            "grant_id": "GRANT",
            "gpu_hours": draw(st.sampled_from(["2.5", 2.5, 0, "1000000"])),
            "started_at": "2026-04-02T00:00:00+09:00",
            "ended_at": "2026-04-02T02:00:00+09:00",
        }
        if i in poisoned:
            name = draw(st.sampled_from(sorted(POISONED_FIELD)))
            if draw(st.integers(0, 4)) == 0:
                del record[name]
            else:
                record[name] = draw(POISONED_FIELD[name])
            record.update(draw(st.dictionaries(st.sampled_from(["note", "x"]), JUNK, max_size=1)))
        batch.append(record)
    return batch, poisoned


def _fill_grant(batch, grant):
    for record in batch:
        if record.get("grant_id") == "GRANT":
            record["grant_id"] = str(grant.public_id)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=batches_with_poison())
def test_fuzzed_pushes_refuse_exactly_the_poisoned_records_and_store_nothing(client, grant, case):
    batch, poisoned = case
    _fill_grant(batch, grant)
    response = _post(client, grant.pool.provider, {"records": batch})
    assert response.status_code == 400, response.content
    assert {e["index"] for e in response.json()["errors"]} == poisoned
    assert not UsageRecord.objects.exists()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=60) | JUNK.map(lambda v: json.dumps({"records": v}).encode()))
def test_fuzzed_bodies_get_a_json_answer_never_a_500(client, grant, body):
    response = _post(client, grant.pool.provider, body)
    assert response.status_code in (200, 400)
    assert response["Content-Type"] == "application/json"
    if response.status_code == 400:
        assert response.json()["errors"]
    assert not UsageRecord.objects.exists()  # junk never carries a valid record


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=batches_with_poison())
def test_fuzzed_pulled_pages_store_the_good_records_and_move_on(simulator, grant, pulling, case):
    batch, poisoned = case
    marker = uuid.uuid4().hex[:8]  # examples share the database: fresh record ids each time
    _fill_grant(batch, grant)
    for record in batch:
        if isinstance(record.get("record_id"), str) and record["record_id"].startswith("r-"):
            record["record_id"] = f"{marker}-{record['record_id']}"
    simulator.reset()
    pulling.usage_cursor = ""
    pulling.save(update_fields=["usage_cursor"])
    simulator.add_raw_usage(batch)
    before = UsageRecord.objects.count()
    result = services.usage_pull(provider_id=pulling.pk)
    assert {e["index"] for e in result.skipped} == poisoned
    assert result.accepted == UsageRecord.objects.count() - before == len(batch) - len(poisoned)
    pulling.refresh_from_db()
    assert pulling.usage_cursor
