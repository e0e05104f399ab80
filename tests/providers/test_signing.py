import pytest

from apps.providers import signing

BODY = b'{"grant_id": "g"}'


def _verify(headers, **overrides):
    kwargs = {
        "secret": "s3cret",
        "method": "PUT",
        "path": "/v1/quotas/g",
        "body": BODY,
        "timestamp": headers[signing.HEADER_TIMESTAMP],
        "signature": headers[signing.HEADER_SIGNATURE],
        "now": 1_800_000_000,
    }
    kwargs.update(overrides)
    signing.verify(**kwargs)


def test_a_signed_request_verifies():
    headers = signing.sign(
        secret="s3cret", method="PUT", path="/v1/quotas/g", body=BODY, timestamp=1_800_000_000
    )
    _verify(headers)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"secret": "other"}, "does not match"),
        ({"body": b'{"grant_id": "h"}'}, "does not match"),
        ({"path": "/v1/quotas/h"}, "does not match"),
        ({"method": "DELETE"}, "does not match"),
        ({"now": 1_800_000_301}, "replay window"),
        ({"now": 1_799_999_699}, "replay window"),
        ({"signature": None}, "missing"),
        ({"timestamp": "soon"}, "not an integer"),
        ({"signature": "v2=abc"}, "unknown signature version"),
    ],
)
def test_tampering_or_replays_are_refused(overrides, reason):
    headers = signing.sign(
        secret="s3cret", method="PUT", path="/v1/quotas/g", body=BODY, timestamp=1_800_000_000
    )
    with pytest.raises(signing.SignatureError, match=reason):
        _verify(headers, **overrides)
